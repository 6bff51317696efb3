#!/usr/bin/env python3
"""The tutorial's scenarios (../shared/seed/SCENARIOS.md) as pika programs, with the client-side
typo fixed (`method.delivery_tag`), run against the reference broker (`amqp-conformance serve`,
rabbitmq profile). Each scenario asserts the outcome the model states for it; the fixtures under
fixtures/seed/ state the same outcomes as traces.

    tutorial.py PORT [--prefix P] [SCENARIO...]

exits 0 when every scenario holds (run by conformance/tests/pika.rs and proxy.rs). `--prefix`
puts P before every queue and exchange name (for a broker other tests use at the same time);
scenarios named run alone (all by default).
"""

import sys
import time

import pika

ARGS = sys.argv[1:]
PORT = int(ARGS.pop(0))
P = ""
if ARGS[:1] == ["--prefix"]:
    P = ARGS[1]
    ARGS = ARGS[2:]


def connect():
    credentials = pika.PlainCredentials("guest", "guest")
    return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", PORT, credentials=credentials))


def drain():
    """A list of deliveries and the consumer callback that appends to it (consumer tag, delivery
    tag, redelivered, body)."""
    got = []

    def take(ch, method, properties, body):
        got.append((method.consumer_tag, method.delivery_tag, method.redelivered, body))

    return got, take


def collect(connection, got, want, seconds=2.0):
    """Process `connection`'s events until `got` holds `want` deliveries (or time is up)."""
    waited = 0.0
    while len(got) < want and waited < seconds:
        connection.process_data_events(time_limit=0.05)
        waited += 0.05


def count(ch, queue, want, seconds=2.0):
    """The queue's ready messages as a passive declare says, asked again while it is not `want`
    (for up to `seconds`): RabbitMQ answers the count ahead of publishes still on their way to the
    queue (docs/rabbitmq-3.10.md Q36), as an application that waits for its messages sees."""
    deadline = time.monotonic() + seconds
    while True:
        n = ch.queue_declare(queue=queue, passive=True).method.message_count
        if n == want or time.monotonic() >= deadline:
            return n
        time.sleep(0.01)


def hello_world_auto_ack():
    """3.1: the default exchange routes by queue name; an auto-ack delivery is never redelivered."""
    producer = connect()
    channel = producer.channel()
    channel.queue_declare(queue=P + "ja")
    channel.basic_publish(exchange="", routing_key=P + "ja", body=b"hello")
    producer.close()

    consumer = connect()
    ch = consumer.channel()
    ch.queue_declare(queue=P + "ja")
    got, take = drain()
    ch.basic_consume(P + "ja", take, auto_ack=True)
    collect(consumer, got, 1)
    assert [g[3] for g in got] == [b"hello"], got
    assert got[0][2] is False, got
    consumer.close()  # auto-ack: nothing goes back
    check = connect().channel()
    assert count(check, P + "ja", 0) == 0
    check.queue_delete(queue=P + "ja")
    check.connection.close()


def work_queue_round_robin_and_redelivery():
    """3.2: two consumers get messages in turn; an unacked one returns flagged redelivered."""
    c1, c2 = connect(), connect()
    ch1, ch2 = c1.channel(), c2.channel()
    ch1.queue_declare(queue=P + "ja")
    got1, take1 = drain()
    got2, take2 = drain()
    ch1.basic_consume(P + "ja", take1)
    ch2.basic_consume(P + "ja", take2)
    publisher = connect()
    pch = publisher.channel()
    for body in [b"m1", b"m2", b"m3", b"m4"]:
        pch.basic_publish(exchange="", routing_key=P + "ja", body=body)
    collect(c1, got1, 2)
    collect(c2, got2, 2)
    assert [g[3] for g in got1] == [b"m1", b"m3"], got1
    assert [g[3] for g in got2] == [b"m2", b"m4"], got2
    # The first consumer acks its messages (the typo fixed); the second never does and leaves.
    for g in got1:
        ch1.basic_ack(delivery_tag=g[1])
    c2.close()
    collect(c1, got1, 4)
    again = got1[2:]
    assert sorted(g[3] for g in again) == [b"m2", b"m4"], got1
    assert all(g[2] for g in again), again
    for g in again:
        ch1.basic_ack(delivery_tag=g[1])
    ch1.queue_delete(queue=P + "ja")
    c1.close()
    publisher.close()


def redeclare_durable_is_406():
    """3.3 pitfall: redeclaring the transient `ja` as durable closes the channel with 406."""
    conn = connect()
    ch = conn.channel()
    ch.queue_declare(queue=P + "ja")
    try:
        conn.channel().queue_declare(queue=P + "ja", durable=True)
        raise AssertionError("the durable redeclare was accepted")
    except pika.exceptions.ChannelClosedByBroker as e:
        assert e.reply_code == 406, e
    ch.queue_delete(queue=P + "ja")
    conn.close()


def fair_dispatch_prefetch_1():
    """3.4: with prefetch 1 on the consumers' channels, a busy consumer gets no second message."""
    c1, c2 = connect(), connect()
    ch1, ch2 = c1.channel(), c2.channel()
    ch1.queue_declare(queue=P + "ja", durable=True)
    for ch in (ch1, ch2):
        ch.basic_qos(prefetch_count=1)
    got1, take1 = drain()
    got2, take2 = drain()
    ch1.basic_consume(P + "ja", take1)
    ch2.basic_consume(P + "ja", take2)
    publisher = connect()
    pch = publisher.channel()
    for body in [b"slow", b"a", b"b"]:
        pch.basic_publish(exchange="", routing_key=P + "ja", body=body, properties=pika.BasicProperties(delivery_mode=2))
    # The first consumer never acks "slow"; the second acks as it goes and gets the rest.
    acked, waited = set(), 0.0
    while len(got2) < 2 and waited < 2.0:
        c1.process_data_events(time_limit=0.02)
        c2.process_data_events(time_limit=0.02)
        for g in got2:
            if g[1] not in acked:
                ch2.basic_ack(delivery_tag=g[1])
                acked.add(g[1])
        waited += 0.04
    assert [g[3] for g in got1] == [b"slow"], got1
    assert [g[3] for g in got2] == [b"a", b"b"], got2
    ch1.basic_ack(delivery_tag=got1[0][1])
    ch1.queue_delete(queue=P + "ja")
    for c in (c1, c2, publisher):
        c.close()


def fanout_broadcast():
    """4.1: every bound server-named queue gets a copy; with no queue bound a message is dropped."""
    publisher = connect()
    pch = publisher.channel()
    pch.exchange_declare(exchange=P + "m1", exchange_type="fanout")
    pch.basic_publish(exchange=P + "m1", routing_key="", body=b"nobody")
    consumers = []
    for _ in range(2):
        conn = connect()
        ch = conn.channel()
        name = ch.queue_declare(queue="", exclusive=True).method.queue
        assert name.startswith("amq.gen-"), name
        ch.queue_bind(exchange=P + "m1", queue=name)
        got, take = drain()
        ch.basic_consume(queue=name, on_message_callback=take, auto_ack=True)
        consumers.append((conn, got, name))
    pch.basic_publish(exchange=P + "m1", routing_key="ignored", body=b"nihao")
    for conn, got, _ in consumers:
        collect(conn, got, 1)
        assert [g[3] for g in got] == [b"nihao"], got
    conn, _, name = consumers[0]
    conn.close()
    # The exclusive server-named queue went with its connection.
    try:
        publisher.channel().queue_declare(queue=name, passive=True)
        raise AssertionError("the exclusive queue outlived its connection")
    except pika.exceptions.ChannelClosedByBroker as e:
        assert e.reply_code == 404, e
    consumers[1][0].close()
    pch.exchange_delete(exchange=P + "m1")
    publisher.close()


def direct_and_topic_routing():
    """4.2, 4.3: direct routes by exact key; `*` is one word, `#` any; `europe.` matches neither;
    redeclaring m2 as topic is 406; binding to a missing exchange is 404."""
    conn = connect()
    ch = conn.channel()
    ch.exchange_declare(exchange=P + "m2", exchange_type="direct")
    for q in (P + "qd", P + "qd2"):  # every queue bound with the key gets a copy
        ch.queue_declare(queue=q)
        ch.queue_bind(exchange=P + "m2", queue=q, routing_key=P + "ja")
    ch.basic_publish(exchange=P + "m2", routing_key=P + "ja", body=b"hit")
    ch.basic_publish(exchange=P + "m2", routing_key="jb", body=b"miss")
    # A purge-ok counts every message published before it (a declare-ok may lag on RabbitMQ).
    copies = {q: ch.queue_purge(q).method.message_count for q in (P + "qd", P + "qd2")}
    assert copies == {P + "qd": 1, P + "qd2": 1}, copies
    try:
        conn.channel().exchange_declare(exchange=P + "m2", exchange_type="topic")
        raise AssertionError("m2 redeclared with another type")
    except pika.exceptions.ChannelClosedByBroker as e:
        assert e.reply_code == 406, e
    try:
        conn.channel().queue_bind(exchange=P + "nope", queue=P + "qd")
        raise AssertionError("a bind to a missing exchange was accepted")
    except pika.exceptions.ChannelClosedByBroker as e:
        assert e.reply_code == 404, e
    ch.exchange_declare(exchange=P + "m3", exchange_type="topic")
    counts = {}
    for key in ["europe.*", "europe.#", "europe."]:
        q = P + "q-" + key.replace("*", "star").replace("#", "hash")
        ch.queue_declare(queue=q)
        ch.queue_bind(exchange=P + "m3", queue=q, routing_key=key)
        counts[key] = q
    for key in ["europe.weather", "europe.weather.bad"]:
        ch.basic_publish(exchange=P + "m3", routing_key=key, body=key.encode())
    want = {"europe.*": 1, "europe.#": 2, "europe.": 0}
    seen = {k: count(ch, q, want[k]) for k, q in counts.items()}
    assert seen == want, seen
    for q in list(counts.values()) + [P + "qd", P + "qd2"]:
        ch.queue_delete(queue=q)
    ch.exchange_delete(exchange=P + "m2")
    ch.exchange_delete(exchange=P + "m3")
    conn.close()


SCENARIOS = [
    hello_world_auto_ack,
    work_queue_round_robin_and_redelivery,
    redeclare_durable_is_406,
    fair_dispatch_prefetch_1,
    fanout_broadcast,
    direct_and_topic_routing,
]

if __name__ == "__main__":
    failed = 0
    unknown = set(ARGS) - {s.__name__ for s in SCENARIOS}
    if unknown:
        sys.exit(f"tutorial.py: no scenario named {', '.join(sorted(unknown))}")
    chosen = [s for s in SCENARIOS if not ARGS or s.__name__ in ARGS]
    for scenario in chosen:
        try:
            scenario()
            print(f"pass  {scenario.__name__}")
        except Exception as e:  # report every scenario, then fail
            failed += 1
            print(f"FAIL  {scenario.__name__}: {type(e).__name__}: {e}")
    print(f"{len(chosen)} scenarios, {failed} failed")
    sys.exit(1 if failed else 0)
