#!/usr/bin/env python3
"""A quorum queue as a pika program would use one, against the reference broker (rabbitmq
profile): declared durable with `x-queue-type` quorum and an `x-delivery-limit`, published to with
confirms; a consumer that nacks a message gets it again with `x-delivery-count` 1, and once more
past the limit it is dead-lettered with reason `delivery_limit`; a consumer under a global
prefetch limit is refused with 540 (RabbitMQ's "Quorum Queues"; the model's model/src/quorum.rs,
the fixtures fixtures/spec/quorum-*-rabbitmq.trace).

    quorum.py PORT       (run by conformance/tests/pika.rs; exit 0 when it holds)
"""

import sys

import pika

PORT = int(sys.argv[1])
PARAMS = pika.ConnectionParameters("127.0.0.1", PORT, credentials=pika.PlainCredentials("guest", "guest"))

connection = pika.BlockingConnection(PARAMS)
channel = connection.channel()
channel.confirm_delivery()
channel.queue_declare("pika-dead")
channel.queue_declare(
    "pika-quorum",
    durable=True,
    arguments={
        "x-queue-type": "quorum",
        "x-delivery-limit": 1,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "pika-dead",
    },
)
channel.basic_publish("", "pika-quorum", b"job")  # confirmed, or pika raises

seen = []


def on_message(ch, method, properties, body):
    seen.append((body, method.redelivered, (properties.headers or {}).get("x-delivery-count")))
    ch.basic_nack(method.delivery_tag, requeue=True)


channel.basic_qos(prefetch_count=1)
channel.basic_consume("pika-quorum", on_message, consumer_tag="worker")
for _ in range(200):
    if len(seen) >= 2:
        break
    connection.process_data_events(time_limit=0.02)
connection.process_data_events(time_limit=0.2)
# The first delivery carries no count, the second 1; the second nack goes past the limit.
assert seen == [(b"job", False, None), (b"job", True, 1)], seen
channel.basic_cancel("worker")
method, properties, body = None, None, None
for _ in range(100):
    method, properties, body = channel.basic_get("pika-dead", auto_ack=True)
    if method is not None:
        break
    connection.process_data_events(time_limit=0.02)
assert body == b"job", body
death = properties.headers["x-death"][0]
assert death["reason"] == "delivery_limit" and death["queue"] == "pika-quorum", properties.headers
assert "x-delivery-count" not in properties.headers, properties.headers
assert channel.queue_declare("pika-quorum", passive=True).method.message_count == 0

# A consumer under a global prefetch limit: the connection is closed, 540.
channel.basic_qos(prefetch_count=5, global_qos=True)
try:
    channel.basic_consume("pika-quorum", lambda *a: None)
    raise AssertionError("consume-ok under a global prefetch limit")
except pika.exceptions.ConnectionClosedByBroker as e:
    assert e.reply_code == 540, e

connection = pika.BlockingConnection(PARAMS)
channel = connection.channel()
channel.queue_delete("pika-quorum")
channel.queue_delete("pika-dead")
connection.close()
print("a quorum queue counted, limited and dead-lettered as the model says")
