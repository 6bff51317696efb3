#!/usr/bin/env python3
"""What a broker rarely does, done on demand through the reference broker's control port, as a
pika application meets it (broker/src/rare.rs; docs/intro/client-authors.md):

- `block`: a publishing connection gets connection.blocked and its publish waits; a connection
  that does not publish goes on; `unblock` sends connection.unblocked and the message arrives
  (as RabbitMQ 3.10.8 does under a resource alarm, docs/rabbitmq-3.10.md Q59);
- `cancel QUEUE`: the consumer is cancelled by the broker and the queue is gone;
- `delay MS`: a round trip takes at least that long;
- `force ID`: connection.close 320 with the reason, and the unacknowledged message goes to the
  next consumer flagged redelivered.

    rare.py PORT CONTROL_PORT    (run by conformance/tests/pika.rs; exit 0 when it holds)
"""

import socket
import sys
import time

import pika

PORT = int(sys.argv[1])
CONTROL = int(sys.argv[2])
PARAMS = pika.ConnectionParameters("127.0.0.1", PORT, credentials=pika.PlainCredentials("guest", "guest"))

control = socket.create_connection(("127.0.0.1", CONTROL))
control_lines = control.makefile("r")


def order(line):
    """Send a line to the control port; its answer must be ok."""
    control.sendall((line + "\n").encode())
    answer = control_lines.readline().strip()
    assert answer.startswith("ok: "), f"{line}: {answer}"
    return answer[4:]


def pump(conns, until, what, seconds=10):
    """Process the connections' events until `until()` holds (at most `seconds`)."""
    deadline = time.time() + seconds
    while not until():
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        for c in conns:
            c.process_data_events(0.02)


def connection_id(conn):
    """The broker's name for a pika connection (c1, ...), found by its local address."""
    local = conn._impl._transport._sock.getsockname()
    for entry in order("connections").split(", "):
        cid, addr = entry.split(" ")[:2]
        if addr == f"{local[0]}:{local[1]}":
            return cid
    raise SystemExit(f"no connection at {local}")


# --- block / unblock -------------------------------------------------------------------------
events = []
publisher = pika.BlockingConnection(PARAMS)
publisher.add_on_connection_blocked_callback(lambda c, m: events.append(("blocked", m.method.reason)))
publisher.add_on_connection_unblocked_callback(lambda c, m: events.append(("unblocked", None)))
bystander = pika.BlockingConnection(PARAMS)
bystander.add_on_connection_blocked_callback(lambda c, m: events.append(("bystander blocked", None)))
consumer = pika.BlockingConnection(PARAMS)
cch = consumer.channel()
cch.queue_declare("rare-blocked", auto_delete=True)
got = []
cch.basic_consume("rare-blocked", lambda ch, m, p, b: got.append(b), auto_ack=True)
pch = publisher.channel()
order("block low on memory")
pch.basic_publish("", "rare-blocked", b"during")
pump([publisher, consumer], lambda: ("blocked", "low on memory") in events, "connection.blocked")
# The consumer hears nothing while the publisher is blocked; a connection that does not publish
# goes on (a round trip answered).
settle = time.time() + 0.3
pump([publisher, consumer], lambda: time.time() > settle, "a moment")
bystander.channel().queue_declare("", exclusive=True)
assert got == [], got
order("unblock")
pump([publisher, consumer], lambda: ("unblocked", None) in events and got == [b"during"], "unblocked and the message")
assert ("bystander blocked", None) not in events, events
bystander.close()
publisher.close()

# --- cancel QUEUE ----------------------------------------------------------------------------
cancelled = []
cch.queue_declare("rare-cancel")
cch.basic_consume("rare-cancel", lambda *a: None, consumer_tag="doomed")
cch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
assert order("cancel rare-cancel") == "queue 'rare-cancel' deleted; 1 consumer(s) cancelled"
pump([consumer], lambda: cancelled == ["doomed"], "basic.cancel")
try:
    consumer.channel().queue_declare("rare-cancel", passive=True)
    raise SystemExit("the cancelled consumer's queue is still there")
except pika.exceptions.ChannelClosedByBroker as e:
    assert e.reply_code == 404, e

# --- delay MS --------------------------------------------------------------------------------
order("delay 300")
start = time.monotonic()
cch.queue_declare("rare-blocked", passive=True)
took = time.monotonic() - start
order("delay 0")
assert took >= 0.3, f"a round trip under `delay 300` took {took:.3f} s"

# --- force ID --------------------------------------------------------------------------------
cch.queue_declare("rare-force")
cch.basic_publish("", "rare-force", b"unacked")
holder = pika.BlockingConnection(PARAMS)
hch = holder.channel()
held = []
hch.basic_consume("rare-force", lambda ch, m, p, b: held.append(m.delivery_tag))
pump([holder], lambda: held, "the delivery")
answer = order(f"force {connection_id(holder)} maintenance")
assert answer.startswith("closed with 320"), answer
try:
    pump([holder], lambda: False, "the forced close")
except pika.exceptions.ConnectionClosedByBroker as e:
    assert e.reply_code == 320 and "maintenance" in e.reply_text, e
redelivered = []
cch.basic_consume("rare-force", lambda ch, m, p, b: redelivered.append((b, m.redelivered)), auto_ack=True)
pump([consumer], lambda: redelivered, "the requeued message")
assert redelivered == [(b"unacked", True)], redelivered
cch.queue_delete("rare-force")
consumer.close()
print("block, cancel, delay and force as the model says")
