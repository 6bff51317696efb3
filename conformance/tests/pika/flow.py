#!/usr/bin/env python3
"""channel.flow as a pika client sends it: `active=true` is answered `flow-ok active=true` (a
channel is active from its open, and the model never pauses one), `active=false` closes the
connection with 540, as RabbitMQ 3.10.8 does both (docs/rabbitmq-3.10.md Q54).

    flow.py PORT    (run by conformance/tests/pika.rs; exit 0 when it holds)
"""

import sys

import pika

PORT = int(sys.argv[1])
PARAMS = pika.ConnectionParameters("127.0.0.1", PORT, credentials=pika.PlainCredentials("guest", "guest"))

connection = pika.BlockingConnection(PARAMS)
channel = connection.channel()
assert channel.flow(True) is True, "flow-ok active=true"
# The channel still works.
channel.queue_declare("flow-check", auto_delete=True)
channel.basic_publish("", "flow-check", b"m")
method, _, body = channel.basic_get("flow-check", auto_ack=True)
assert body == b"m", body
try:
    channel.flow(False)
    raise SystemExit("flow active=false was answered")
except pika.exceptions.ConnectionClosedByBroker as e:
    assert e.reply_code == 540, e
print("channel.flow as the model says")
