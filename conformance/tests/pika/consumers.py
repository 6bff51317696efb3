#!/usr/bin/env python3
"""Consumer priorities as a pika program would use them, against the reference broker (rabbitmq
profile): a consumer declared with the `x-priority` argument gets the messages while it has room;
a lower-priority one only while it is blocked (RabbitMQ's "Consumer Priorities"; the model's
model/src/basic/consumer_priority.rs, the fixture fixtures/spec/basic-consumer-priority-rabbitmq.trace).

    consumers.py PORT       (run by conformance/tests/pika.rs; exit 0 when it holds)
"""

import sys

import pika

PORT = int(sys.argv[1])

connection = pika.BlockingConnection(
    pika.ConnectionParameters("127.0.0.1", PORT, credentials=pika.PlainCredentials("guest", "guest"))
)
publisher = connection.channel()
queue = publisher.queue_declare("", exclusive=True).method.queue
got = []
channels = {}
for name, arguments in [("low", {}), ("high", {"x-priority": 10})]:
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(
        queue,
        lambda ch, method, properties, body: got.append((method.consumer_tag, method.delivery_tag, body)),
        consumer_tag=name,
        arguments=arguments,
    )
    channels[name] = channel


def wait_for(n):
    for _ in range(100):
        if len(got) >= n:
            return
        connection.process_data_events(time_limit=0.02)


for body in [b"m1", b"m2", b"m3"]:
    publisher.basic_publish("", queue, body)
    wait_for(min(2, len(got) + 1))
wait_for(2)
connection.process_data_events(time_limit=0.1)
assert [(tag, body) for tag, _, body in got] == [("high", b"m1"), ("low", b"m2")], got
channels["high"].basic_ack(got[0][1])
wait_for(3)
assert [(tag, body) for tag, _, body in got[2:]] == [("high", b"m3")], got
connection.close()
print("consumer priorities: as the model says")
