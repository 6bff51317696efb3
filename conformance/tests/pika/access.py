#!/usr/bin/env python3
"""Virtual hosts and permissions as a pika application meets them, one JSON line per case
({"case", "ok"} or {"case", "level", "code", "text"}). conformance/tests/pika.rs runs it against
RabbitMQ 3.10.8 (user and virtual host made with rabbitmqctl) and against the reference broker
configured alike, and compares (docs/rabbitmq-3.10.md Q60):

- user `rt-app` (password `rt-secret`) may use `/` only, with configure `^(acc-cfg-.*|amq\\.gen.*)$`,
  write `^(acc-wr-.*|amq\\.default)$`, read `^acc-rd-.*$`;
- `guest` may use `/` and `rt-other`, everything.

    access.py PORT
"""

import json
import re
import sys

import pika

PORT = int(sys.argv[1])


def params(vhost="/", user="rt-app", password="rt-secret"):
    return pika.ConnectionParameters("127.0.0.1", PORT, vhost, pika.PlainCredentials(user, password))


def out(case, **kw):
    print(json.dumps(dict(case=case, **kw)), flush=True)


def opening(case, vhost, user="rt-app", password="rt-secret"):
    try:
        pika.BlockingConnection(params(vhost, user, password)).close()
        out(case, ok=True)
    except pika.exceptions.ProbableAccessDeniedError as e:
        # pika reports a close during the handshake as this, the broker's close in its words:
        # `ConnectionClosedByBroker: (530) 'TEXT'`.
        found = re.search(r"\((\d+)\) (['\"])(.*)\2$", str(e))
        code, text = (int(found.group(1)), found.group(3)) if found else (None, str(e))
        out(case, level="connection", code=code, text=text)
    except pika.exceptions.ConnectionClosedByBroker as e:
        out(case, level="connection", code=e.reply_code, text=e.reply_text)


def case(name, f):
    conn = pika.BlockingConnection(params())
    ch = conn.channel()
    try:
        f(ch)
        ch.basic_qos(prefetch_count=0)  # a round trip: a close sent before it comes first
        out(name, ok=True)
    except pika.exceptions.ChannelClosedByBroker as e:
        out(name, level="channel", code=e.reply_code, text=e.reply_text)
    except pika.exceptions.ConnectionClosedByBroker as e:
        out(name, level="connection", code=e.reply_code, text=e.reply_text)
    if conn.is_open:
        conn.close()


opening("open a virtual host without permission", "rt-other")
opening("open a virtual host that does not exist", "rt-no-such-vhost")

admin = pika.BlockingConnection(params(user="guest", password="guest"))
ach = admin.channel()
QUEUES = ["acc-cfg-q", "acc-rd-q", "acc-wr-q", "acc-other-q"]
EXCHANGES = ["acc-cfg-x", "acc-rd-x", "acc-wr-x", "acc-other-x"]
for q in QUEUES:
    ach.queue_declare(q)
for x in EXCHANGES:
    ach.exchange_declare(x, "direct")

case("queue.declare, configure allowed", lambda ch: ch.queue_declare("acc-cfg-q2", auto_delete=True))
case("queue.declare, configure refused", lambda ch: ch.queue_declare("acc-other-q2"))
case("queue.declare passive needs no permission", lambda ch: ch.queue_declare("acc-other-q", passive=True))
case("queue.declare server-named", lambda ch: ch.queue_declare("", exclusive=True))
case("exchange.declare, configure refused", lambda ch: ch.exchange_declare("acc-other-x2", "direct"))
case("exchange.declare passive needs no permission", lambda ch: ch.exchange_declare("acc-other-x", passive=True))
case("basic.publish, write allowed", lambda ch: ch.basic_publish("acc-wr-x", "k", b"m"))
case("basic.publish, write refused", lambda ch: ch.basic_publish("acc-other-x", "k", b"m"))
case("basic.publish to the default exchange (amq.default)", lambda ch: ch.basic_publish("", "acc-rd-q", b"m"))
case("basic.get, read allowed", lambda ch: ch.basic_get("acc-rd-q"))
case("basic.get, read refused", lambda ch: ch.basic_get("acc-other-q"))
case("basic.consume, read refused", lambda ch: ch.basic_consume("acc-other-q", lambda *a: None))
case("queue.purge, read refused", lambda ch: ch.queue_purge("acc-other-q"))
case("queue.delete, configure refused", lambda ch: ch.queue_delete("acc-other-q"))
case("queue.bind, write on the queue and read on the exchange", lambda ch: ch.queue_bind("acc-wr-q", "acc-rd-x", "k"))
case("queue.bind, write on the queue refused", lambda ch: ch.queue_bind("acc-other-q", "acc-rd-x", "k"))
case("queue.bind, read on the exchange refused", lambda ch: ch.queue_bind("acc-wr-q", "acc-other-x", "k"))
case("queue.unbind, write on the queue refused", lambda ch: ch.queue_unbind("acc-other-q", "acc-rd-x", "k"))
case("exchange.bind, write on the destination", lambda ch: ch.exchange_bind("acc-wr-x", "acc-rd-x", "k"))
case("exchange.bind, write on the destination refused", lambda ch: ch.exchange_bind("acc-other-x", "acc-rd-x", "k"))
case("exchange.delete, configure refused", lambda ch: ch.exchange_delete("acc-other-x"))
case("a missing queue allowed: 404", lambda ch: ch.basic_get("acc-rd-nope"))
case("a missing queue refused: 403 first", lambda ch: ch.basic_get("acc-other-nope"))

# Separation: guest declares a queue in rt-other; `/` does not have it.
other = pika.BlockingConnection(params("rt-other", "guest", "guest"))
other.channel().queue_declare("acc-separate", auto_delete=False)
try:
    ach.queue_declare("acc-separate", passive=True)
    out("a queue of another virtual host is not seen", ok=True)
except pika.exceptions.ChannelClosedByBroker as e:
    out("a queue of another virtual host is not seen", level="channel", code=e.reply_code, text=e.reply_text)
    ach = admin.channel()
other.channel().queue_delete("acc-separate")
other.close()

for q in QUEUES:
    ach.queue_delete(q)
for x in EXCHANGES:
    ach.exchange_delete(x)
admin.close()
