#!/usr/bin/env python3
"""connection.update-secret (RabbitMQ's extension) as a pika client sends it when it refreshes its
credentials: answered with update-secret-ok, and the connection goes on, as on RabbitMQ 3.10.8
(docs/rabbitmq-3.10.md Q55).

    update_secret.py PORT    (run by conformance/tests/pika.rs; exit 0 when it holds)
"""

import sys

import pika

PORT = int(sys.argv[1])
PARAMS = pika.ConnectionParameters("127.0.0.1", PORT, credentials=pika.PlainCredentials("guest", "guest"))

connection = pika.BlockingConnection(PARAMS)
connection.update_secret("guest", "refresh")
channel = connection.channel()
declared = channel.queue_declare("", exclusive=True)
assert declared.method.queue, declared
connection.update_secret("guest", "again")
channel.basic_publish("", declared.method.queue, b"m")
_, _, body = channel.basic_get(declared.method.queue, auto_ack=True)
assert body == b"m", body
connection.close()
print("update-secret as the model says")
