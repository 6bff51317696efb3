#!/usr/bin/env python3
"""The closes a client meets most, each provoked on a fresh channel (or connection), printed as one
JSON line per case: {"case", "level", "code", "text", "class", "method"}. Run against RabbitMQ
3.10.8 it records RabbitMQ's reply texts (docs/rabbitmq-3.10.md Q58); conformance/tests/pika.rs
runs it against RabbitMQ and the reference broker and compares the two.

    reply_texts.py PORT TAG    (TAG makes the names unique on a shared broker)
"""

import json
import sys

import pika

PORT = int(sys.argv[1])
TAG = sys.argv[2]
PARAMS = pika.ConnectionParameters("127.0.0.1", PORT, credentials=pika.PlainCredentials("guest", "guest"))


def name(s):
    return f"rt-{TAG}-{s}"


def sync(ch):
    """A round trip on the channel: a close the broker sent before it arrives first."""
    ch.queue_declare("", exclusive=True)


def report(case, level, e):
    print(json.dumps({"case": case, "level": level, "code": e.reply_code, "text": e.reply_text}), flush=True)


def channel_case(case, setup, provoke):
    """`setup(conn, ch)` on a channel of its own, then `provoke(ch)` on a fresh one."""
    conn = pika.BlockingConnection(PARAMS)
    try:
        ch = conn.channel()
        setup(conn, ch)
        ch2 = conn.channel()
        try:
            provoke(ch2)
            sync(ch2)
            print(json.dumps({"case": case, "level": "none"}), flush=True)
        except pika.exceptions.ChannelClosedByBroker as e:
            report(case, "channel", e)
        except pika.exceptions.ConnectionClosedByBroker as e:
            report(case, "connection", e)
            return
        conn.close()
    except pika.exceptions.ConnectionClosedByBroker as e:
        report(case, "connection (setup)", e)


def nothing(conn, ch):
    pass


def declare_queue(q, **kw):
    return lambda conn, ch: ch.queue_declare(name(q), auto_delete=True, **kw)


def declare_exchange(x, kind="direct", **kw):
    return lambda conn, ch: ch.exchange_declare(name(x), kind, auto_delete=True, **kw)


def with_message(q):
    def setup(conn, ch):
        ch.queue_declare(name(q))
        ch.basic_publish("", name(q), b"m")
        sync(ch)

    return setup


def with_consumer(q):
    def setup(conn, ch):
        ch.queue_declare(name(q), auto_delete=True)
        ch.basic_consume(name(q), lambda *a: None, consumer_tag="held")

    return setup


def bound_exchange(x, q):
    def setup(conn, ch):
        ch.exchange_declare(name(x), "direct", auto_delete=True)
        ch.queue_declare(name(q), exclusive=True)
        ch.queue_bind(name(q), name(x), "k")

    return setup


def exclusive_elsewhere(q):
    def setup(conn, ch):
        other = pika.BlockingConnection(PARAMS)
        other.channel().queue_declare(name(q), exclusive=True)
        conn._rt_other = other

    return setup


QUORUM = {"x-queue-type": "quorum"}


def quorum_queue(q):
    return lambda conn, ch: ch.queue_declare(name(q), durable=True, arguments=QUORUM)


def cleanup():
    conn = pika.BlockingConnection(PARAMS)
    ch = conn.channel()
    for q in ["mq", "nonempty", "qq1", "qq2"]:
        ch.queue_delete(name(q))
    conn.close()


CASES = [
    ("basic.ack unknown tag", nothing, lambda ch: ch.basic_ack(7)),
    ("basic.reject unknown tag", nothing, lambda ch: ch.basic_reject(3)),
    ("basic.nack unknown tag", nothing, lambda ch: ch.basic_nack(5)),
    ("exchange.declare passive missing", nothing, lambda ch: ch.exchange_declare(name("nx"), passive=True)),
    ("queue.declare passive missing", nothing, lambda ch: ch.queue_declare(name("nq"), passive=True)),
    ("exchange.declare other type", declare_exchange("x1"), lambda ch: ch.exchange_declare(name("x1"), "fanout", auto_delete=True)),
    ("exchange.declare other durable", declare_exchange("x2"), lambda ch: ch.exchange_declare(name("x2"), "direct", durable=True, auto_delete=True)),
    ("queue.declare other durable", declare_queue("q1"), lambda ch: ch.queue_declare(name("q1"), durable=True, auto_delete=True)),
    ("queue.declare other auto-delete", declare_queue("q2"), lambda ch: ch.queue_declare(name("q2"))),
    ("exchange.declare reserved", nothing, lambda ch: ch.exchange_declare("amq.rt-" + TAG, "direct")),
    ("queue.declare reserved", nothing, lambda ch: ch.queue_declare("amq.rt-" + TAG)),
    ("exchange.declare unknown type", nothing, lambda ch: ch.exchange_declare(name("x3"), "x-no-such-type")),
    ("basic.publish missing exchange", nothing, lambda ch: ch.basic_publish(name("nx"), "k", b"m")),
    ("queue.bind missing queue", declare_exchange("x4"), lambda ch: ch.queue_bind(name("nq"), name("x4"), "k")),
    ("queue.bind missing exchange", declare_queue("q3"), lambda ch: ch.queue_bind(name("q3"), name("nx"), "k")),
    ("queue.bind default exchange", declare_queue("q4"), lambda ch: ch.queue_bind(name("q4"), "", "k")),
    ("queue.purge missing", nothing, lambda ch: ch.queue_purge(name("nq"))),
    ("basic.get missing queue", nothing, lambda ch: ch.basic_get(name("nq"))),
    ("basic.consume missing queue", nothing, lambda ch: ch.basic_consume(name("nq"), lambda *a: None)),
    ("queue.delete if-unused", with_consumer("q5"), lambda ch: ch.queue_delete(name("q5"), if_unused=True)),
    ("queue.delete if-empty", with_message("nonempty"), lambda ch: ch.queue_delete(name("nonempty"), if_empty=True)),
    ("exclusive queue of another connection", exclusive_elsewhere("q6"), lambda ch: ch.queue_declare(name("q6"), passive=True)),
    ("basic.consume exclusive in use", with_consumer("q7"), lambda ch: ch.basic_consume(name("q7"), lambda *a: None, exclusive=True)),
    ("tx.commit not transactional", nothing, lambda ch: ch.tx_commit()),
    ("tx.select in confirm mode", nothing, lambda ch: [ch.confirm_delivery(), ch.tx_select()]),
    ("confirm.select in tx mode", nothing, lambda ch: [ch.tx_select(), ch.confirm_delivery()]),
    ("basic.qos prefetch-size", nothing, lambda ch: ch.basic_qos(prefetch_size=1)),
    ("basic.recover requeue=false", nothing, lambda ch: ch.basic_recover(requeue=False)),
    ("queue.declare invalid x-max-length", nothing, lambda ch: ch.queue_declare(name("q9"), arguments={"x-max-length": -1})),
    ("basic.publish internal exchange", declare_exchange("x5", internal=True), lambda ch: ch.basic_publish(name("x5"), "k", b"m")),
    ("exchange.delete if-unused", bound_exchange("x6", "q10"), lambda ch: ch.exchange_delete(name("x6"), if_unused=True)),
    ("exchange.delete reserved", nothing, lambda ch: ch.exchange_delete("amq.direct")),
    ("quorum queue not durable", nothing, lambda ch: ch.queue_declare(name("q12"), arguments=QUORUM)),
    ("quorum queue exclusive", nothing, lambda ch: ch.queue_declare(name("q13"), durable=True, exclusive=True, arguments=QUORUM)),
    ("quorum queue server-named", nothing, lambda ch: ch.queue_declare("", durable=True, arguments=QUORUM)),
    ("quorum queue classic argument", nothing, lambda ch: ch.queue_declare(name("q14"), durable=True, arguments={**QUORUM, "x-max-priority": 5})),
    ("classic queue quorum argument", nothing, lambda ch: ch.queue_declare(name("q15"), arguments={"x-delivery-limit": 1})),
    ("queue.declare unsupported type", nothing, lambda ch: ch.queue_declare(name("q16"), arguments={"x-queue-type": "bogus"})),
    ("quorum basic.consume under global qos", quorum_queue("qq1"), lambda ch: [ch.basic_qos(prefetch_count=5, global_qos=True), ch.basic_consume(name("qq1"), lambda *a: None)]),
    ("quorum queue.delete if-empty", quorum_queue("qq2"), lambda ch: ch.queue_delete(name("qq2"), if_empty=True)),
]

for case, setup, provoke in CASES:
    channel_case(case, setup, provoke)
cleanup()
