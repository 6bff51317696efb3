#!/usr/bin/env python3
"""An RPC round trip over RabbitMQ's direct reply-to, as a pika client writes it, against the
reference broker (rabbitmq profile): the client consumes `amq.rabbitmq.reply-to` without
acknowledgements and publishes its request with that reply-to; the server answers to the name
the request arrived with, and the reply reaches the client's consumer (RabbitMQ's "Direct
Reply-to"; the model's model/src/basic/direct_reply.rs, the fixture
fixtures/spec/basic-direct-reply-to-rabbitmq.trace). The misuse RabbitMQ refuses is refused too.

    direct_reply.py PORT    (run by conformance/tests/pika.rs; exit 0 when it holds)
"""

import sys

import pika

PORT = int(sys.argv[1])
PARAMS = pika.ConnectionParameters("127.0.0.1", PORT, credentials=pika.PlainCredentials("guest", "guest"))
RT = "amq.rabbitmq.reply-to"

server = pika.BlockingConnection(PARAMS)
serving = server.channel()
serving.queue_declare("rpc", auto_delete=True)

client = pika.BlockingConnection(PARAMS)
calling = client.channel()
replies = []
calling.basic_consume(
    RT,
    lambda ch, method, properties, body: replies.append((method.delivery_tag, properties.correlation_id, body)),
    auto_ack=True,
)
for n in (1, 2):
    calling.basic_publish("", "rpc", b"ask %d" % n, pika.BasicProperties(reply_to=RT, correlation_id=str(n)))
    method, properties, body = None, None, None
    for _ in range(100):
        method, properties, body = serving.basic_get("rpc", auto_ack=True)
        if method:
            break
        server.process_data_events(time_limit=0.02)
    assert method, "the request never arrived"
    assert properties.reply_to.startswith(RT + "."), properties.reply_to
    serving.basic_publish("", properties.reply_to, b"answer to " + body, pika.BasicProperties(correlation_id=properties.correlation_id))
    for _ in range(100):
        if len(replies) >= n:
            break
        client.process_data_events(time_limit=0.02)
assert replies == [(1, "1", b"answer to ask 1"), (1, "2", b"answer to ask 2")], replies

# A request from a channel without a reply consumer is 406, as on RabbitMQ.
other = client.channel()
other.basic_publish("", "rpc", b"ask", pika.BasicProperties(reply_to=RT))
try:
    other.basic_qos(prefetch_count=0)
    raise AssertionError("a request without a reply consumer was taken")
except pika.exceptions.ChannelClosedByBroker as e:
    assert e.reply_code == 406, e
client.close()
server.close()
print("direct reply-to: as the model says")
