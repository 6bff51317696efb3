#!/usr/bin/env python3
"""`nack 1` on the reference broker's control port under the `spec` profile, as a pika publisher
with confirms meets it: the next publish is nacked (pika raises NackError) and the message is not
in the queue, as the model's unhandled-message branch says (`confirm all messages acknowledged`);
the publish after it is acked and delivered.

    nack.py PORT CONTROL_PORT    (run by conformance/tests/pika.rs; exit 0 when it holds)
"""

import socket
import sys

import pika

PORT = int(sys.argv[1])
CONTROL = int(sys.argv[2])
PARAMS = pika.ConnectionParameters("127.0.0.1", PORT, credentials=pika.PlainCredentials("guest", "guest"))

control = socket.create_connection(("127.0.0.1", CONTROL))
answers = control.makefile("r")
control.sendall(b"nack 1\n")
answer = answers.readline().strip()
assert answer.startswith("ok: "), answer

connection = pika.BlockingConnection(PARAMS)
channel = connection.channel()
channel.confirm_delivery()
channel.queue_declare("nack-check", auto_delete=False)
try:
    channel.basic_publish("", "nack-check", b"refused")
    raise SystemExit("the publish was acked")
except pika.exceptions.NackError:
    pass
method, _, _ = channel.basic_get("nack-check", auto_ack=True)
assert method is None, "a nacked message is not in the queue"
channel.basic_publish("", "nack-check", b"taken")
_, _, body = channel.basic_get("nack-check", auto_ack=True)
assert body == b"taken", body
channel.queue_delete("nack-check")
connection.close()
print("nack as the model says")
