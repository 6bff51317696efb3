//! The scenarios and pitfalls of the tutorial this project grew from
//! (`/work/shared/seed/SCENARIOS.md`), each stated as the outcome the model gives.
//!
//! The tutorial's scripts use queue `ja` and exchanges `m1`, `m2`, and so do these tests. Every
//! command is followed by the deliveries the broker then makes on its own, taken eagerly (round
//! robin under `rabbitmq`). Each test runs under `rabbitmq`, and also under `spec` when the
//! outcome is the same there or differs in a way worth showing.

mod support;

use amqp_model::check::config::cmd::{bind, consume, exchange, publish, queue};
use amqp_model::event::Reply;
use amqp_model::{ChanRef, Command, ConnId, Content, Event, ExchangeKind, Message, Method, Name, Profile, ReplyCode};
use support::{
    ack, channel_closed, connected, consume_ok, declare_ok, deliver, drop_conn, fill, get, get_ok, message, msg,
    not_equivalent, passive_queue, qos, send, World, BOTH, RABBIT, SPEC,
};

// ---------------------------------------------------------------------------------------------
// The tutorial's vocabulary (the client-side view of the model is in `support`).

/// A transient message published to `ja` through the default exchange, as the tutorial does.
fn to_ja(body: &str) -> Message {
    msg("", "ja", body)
}

/// A world with connection 1 open and `ja` declared on its channel 1, durable or not, as the
/// tutorial's producer does.
fn with_ja(profile: Profile, durable: bool) -> (World, ChanRef) {
    let (mut w, p) = connected(profile);
    w.run(queue(p, "ja", durable, false, false));
    (w, p)
}

/// A world with connection 1 open and exchange `name` of `kind` declared on its channel 1.
fn with_exchange(profile: Profile, name: &str, kind: ExchangeKind) -> (World, ChanRef) {
    let (mut w, p) = connected(profile);
    w.run(exchange(p, name, kind, false, false));
    (w, p)
}

/// Connection `conn` as a tutorial subscriber: a server-named exclusive queue, bound to
/// `exchange` with `key`, consumed with auto-ack under consumer tag `tag`. Returns the channel
/// and the queue's name.
fn subscriber(w: &mut World, conn: u16, exchange: &str, key: &str, tag: &str) -> (ChanRef, Name) {
    let c = w.open(conn);
    let q = w.declare(queue(c, "", false, true, false));
    w.replies(bind(c, q.as_str(), exchange, key), Reply::QueueBindOk);
    assert_eq!(w.run(consume(c, q.as_str(), tag, true)), vec![consume_ok(c, tag)]);
    (c, q)
}

// ---------------------------------------------------------------------------------------------
// §3.1 Hello world, auto-ack

/// §3.1: the producer declares `ja` and publishes `hello` through the default exchange with
/// key `ja`; an auto-ack consumer gets it, and when its connection drops nothing comes back.
///
/// Rules: `queue declare default-binding`, `basic publish exchange default-exchange`,
/// `basic 09` (no-ack delivery is final).
#[test]
fn s3_1_hello_world_default_exchange_and_auto_ack() {
    for profile in BOTH {
        let (mut w, p) = connected(profile);
        assert_eq!(w.run(queue(p, "ja", false, false, false)), vec![declare_ok(p, "ja", 0, 0)]);
        assert_eq!(w.run(send(p, "", "ja", "hello")), vec![]);

        let c = w.open(2);
        assert_eq!(w.run(queue(c, "ja", false, false, false)), vec![declare_ok(c, "ja", 1, 0)]);
        assert_eq!(
            w.run(consume(c, "ja", "A", true)),
            vec![consume_ok(c, "A"), deliver(c, "A", 1, false, "ja", to_ja("hello"))]
        );

        // The consumer dies without acknowledging anything: an auto-ack delivery is final.
        assert_eq!(w.run(drop_conn(c)), vec![]);
        let c3 = w.open(3);
        assert_eq!(w.run(passive_queue(c3, "ja")), vec![declare_ok(c3, "ja", 0, 0)]);
        assert_eq!(w.run(consume(c3, "ja", "B", true)), vec![consume_ok(c3, "B")]);
    }
}

// ---------------------------------------------------------------------------------------------
// §3.2 Work queue, manual ack

/// Connections 2 and 3 consume `ja` with manual ack as consumers `A` and `B`, after connection
/// 1 declared it; returns the three channels.
fn work_queue(w: &mut World) -> [ChanRef; 3] {
    let p = w.open(1);
    assert_eq!(w.run(queue(p, "ja", false, false, false)), vec![declare_ok(p, "ja", 0, 0)]);
    let a = w.open(2);
    assert_eq!(w.run(consume(a, "ja", "A", false)), vec![consume_ok(a, "A")]);
    let b = w.open(3);
    assert_eq!(w.run(consume(b, "ja", "B", false)), vec![consume_ok(b, "B")]);
    [p, a, b]
}

/// §3.2: two manual-ack consumers on `ja` take turns (RabbitMQ's round robin; the spec does not
/// say which consumer gets a message).
///
/// Rules: `basic 10` (explicit acknowledgement), `basic ack multiple exists`.
#[test]
fn s3_2_work_queue_round_robin() {
    let mut w = World::new(RABBIT);
    let [p, a, b] = work_queue(&mut w);
    assert_eq!(w.run(send(p, "", "ja", "m0")), vec![deliver(a, "A", 1, false, "ja", to_ja("m0"))]);
    assert_eq!(w.run(send(p, "", "ja", "m1")), vec![deliver(b, "B", 1, false, "ja", to_ja("m1"))]);
    // Acknowledging does not change whose turn it is.
    assert_eq!(w.run(ack(a, 1, false)), vec![]);
    assert_eq!(w.run(send(p, "", "ja", "m2")), vec![deliver(a, "A", 2, false, "ja", to_ja("m2"))]);
    assert_eq!(w.run(send(p, "", "ja", "m3")), vec![deliver(b, "B", 2, false, "ja", to_ja("m3"))]);
}

/// §3.2: an unacknowledged message goes back to `ja` flagged redelivered when its consumer's
/// channel closes (and goes to the other consumer), or when its connection drops.
///
/// Rules: `basic 10` (unacknowledged messages are redelivered after a disconnect),
/// `basic recover 01` (the redelivered flag on resent messages).
#[test]
fn s3_2_unacked_message_returns_redelivered_on_close() {
    let mut w = World::new(RABBIT);
    let [p, a, b] = work_queue(&mut w);
    fill(&mut w, p, "ja", 4);
    // A holds m0 and m2 and acks m0; B holds m1 and m3 and never acks.
    assert_eq!(w.run(ack(a, 1, false)), vec![]);
    assert_eq!(
        w.run(Command::ChannelClose { ch: b }),
        vec![
            Event::ChannelCloseOk { ch: b },
            deliver(a, "A", 3, true, "ja", to_ja("m1")),
            deliver(a, "A", 4, true, "ja", to_ja("m3")),
        ]
    );

    // The same under both profiles when the whole connection goes and nobody else consumes.
    for profile in BOTH {
        let (mut w, p) = with_ja(profile, false);
        w.run(send(p, "", "ja", "hello"));
        let c = w.open(2);
        assert_eq!(
            w.run(consume(c, "ja", "A", false)),
            vec![consume_ok(c, "A"), deliver(c, "A", 1, false, "ja", to_ja("hello"))]
        );
        assert_eq!(w.run(drop_conn(c)), vec![]);
        // Under spec the flag is a SHOULD: the get may also come without it (run_flagged).
        assert_eq!(w.run_flagged(get(p, "ja", true)), vec![get_ok(p, 1, true, "ja", 0, to_ja("hello"))]);
    }
}

/// §3.2 pitfall: the callback reads `method.deliver_tag` (a typo for `delivery_tag`) and raises
/// before acking, so the message stays unacknowledged; when that consumer goes away it is
/// redelivered to the other consumer, flagged redelivered, and only then acknowledged.
///
/// Rules: `basic 10`, `basic recover 01`, `basic ack multiple exists`.
#[test]
fn s3_2_pitfall_deliver_tag_typo_leaves_message_unacked() {
    let mut w = World::new(RABBIT);
    let [p, a, b] = work_queue(&mut w);
    assert_eq!(w.run(send(p, "", "ja", "task")), vec![deliver(a, "A", 1, false, "ja", to_ja("task"))]);
    // A's callback raises instead of acking; the script dies and its connection drops.
    assert_eq!(w.run(drop_conn(a)), vec![deliver(b, "B", 1, true, "ja", to_ja("task"))]);
    // B (with the typo fixed) acknowledges: the message is gone for good.
    assert_eq!(w.run(ack(b, 1, false)), vec![]);
    assert_eq!(w.run(passive_queue(p, "ja")), vec![declare_ok(p, "ja", 0, 1)]);
    assert_eq!(w.run(drop_conn(b)), vec![]);
    assert_eq!(w.run(passive_queue(p, "ja")), vec![declare_ok(p, "ja", 0, 0)]);
}

// ---------------------------------------------------------------------------------------------
// §3.3 Durability

/// §3.3: `ja` declared durable holds a persistent message (delivery_mode=2) and a transient
/// one; after a restart the queue and the persistent message are there, the transient one is
/// not.
///
/// Rules: `queue declare durable persistence`, `basic 01` (persistent messages survive),
/// `queue declare durable types`.
#[test]
fn s3_3_durable_queue_and_persistent_message_survive_restart() {
    for profile in BOTH {
        let (mut w, p) = connected(profile);
        assert_eq!(w.run(queue(p, "ja", true, false, false)), vec![declare_ok(p, "ja", 0, 0)]);
        assert_eq!(w.run(publish(p, "", "ja", false, Content::persistent("hello"))), vec![]);
        assert_eq!(w.run(send(p, "", "ja", "transient")), vec![]);
        // Under `spec` the restart may also lose `hello` or keep `transient` (`restart_open`,
        // model/tests/rules.rs): the tutorial's answer is the first, RabbitMQ's and the
        // recommended one.
        assert_eq!(w.outcomes(&Command::Restart).len(), if profile == RABBIT { 1 } else { 4 });
        assert_eq!(
            w.take(Command::Restart, 0),
            vec![Event::ConnectionClosed { conn: ConnId(1), code: ReplyCode::ConnectionForced, method: None }]
        );

        let p = w.open(1);
        assert_eq!(w.run(passive_queue(p, "ja")), vec![declare_ok(p, "ja", 1, 0)]);
        let hello = message("", "ja", Content::persistent("hello"));
        assert_eq!(w.run(get(p, "ja", true)), vec![get_ok(p, 1, false, "ja", 0, hello)]);
        w.replies(get(p, "ja", true), Reply::GetEmpty);
    }
}

/// §3.3 (the other half): the non-durable `ja` of §3.1 does not survive a restart, even with a
/// persistent message in it.
///
/// Rules: `queue declare durable persistence`, `queue declare passive passive` (404 after).
#[test]
fn s3_3_transient_queue_is_gone_after_restart() {
    for profile in BOTH {
        let (mut w, p) = with_ja(profile, false);
        w.run(publish(p, "", "ja", false, Content::persistent("hello")));
        // Under `spec` the transient queue may also be kept, emptied: the first answer deletes it.
        assert_eq!(w.outcomes(&Command::Restart).len(), if profile == RABBIT { 1 } else { 2 });
        w.take(Command::Restart, 0);
        let p = w.open(1);
        assert_eq!(w.run(passive_queue(p, "ja")), vec![channel_closed(p, ReplyCode::NotFound, Method::QueueDeclare)]);
    }
}

/// §3.3 pitfall: `ja` already exists non-durable (from §3.1/§3.2), and §3.3 declares it
/// `durable=True`: 406 precondition-failed closes the channel; the queue is unchanged.
///
/// Rules: `queue declare passive equivalent`.
#[test]
fn s3_3_pitfall_redeclaring_ja_durable_is_406() {
    for profile in BOTH {
        let (mut w, c) = with_ja(profile, false);
        w.run(send(c, "", "ja", "hello"));
        w.refused_any(queue(c, "ja", true, false, false), not_equivalent(profile));
        assert_eq!(w.run(queue(c, "ja", false, false, false)), vec![declare_ok(c, "ja", 1, 0)]);
    }
}

// ---------------------------------------------------------------------------------------------
// §3.4 Fair dispatch

/// §3.4: both consumers set `basic_qos(prefetch_count=1)` on their own channel before
/// consuming: neither ever holds more than one unacknowledged message, and each next message
/// goes to the consumer that has room. The same under the spec, where the limit is the
/// channel's.
///
/// Rules: `basic qos prefetch-count 01`.
#[test]
fn s3_4_fair_dispatch_with_prefetch_one() {
    for profile in BOTH {
        let (mut w, p) = with_ja(profile, true);
        let [a, b] = [2, 3].map(|n| w.open(n));
        for (c, tag) in [(a, "A"), (b, "B")] {
            w.replies(qos(c, 1, false), Reply::QosOk);
            assert_eq!(w.run(consume(c, "ja", tag, false)), vec![consume_ok(c, tag)]);
        }
        let m = |body: &str| message("", "ja", Content::persistent(body));
        let send = |body: &str| publish(p, "", "ja", false, Content::persistent(body));
        assert_eq!(w.run(send("slow")), vec![deliver(a, "A", 1, false, "ja", m("slow"))]);
        assert_eq!(w.run(send("m1")), vec![deliver(b, "B", 1, false, "ja", m("m1"))]);
        // Both are full: the next ones wait in the queue.
        assert_eq!(w.run(send("m2")), vec![]);
        assert_eq!(w.run(send("m3")), vec![]);
        assert_eq!(w.run(passive_queue(p, "ja")), vec![declare_ok(p, "ja", 2, 2)]);
        // A is slow and never acks; B acks each message and gets the next.
        assert_eq!(w.run(ack(b, 1, false)), vec![deliver(b, "B", 2, false, "ja", m("m2"))]);
        assert_eq!(w.run(ack(b, 2, false)), vec![deliver(b, "B", 3, false, "ja", m("m3"))]);
        for c in [a, b] {
            assert_eq!(w.unacked(c).len(), 1, "{c} holds one");
        }
    }
}

/// §3.4 pitfall: the tutorial calls `basic_qos(prefetch_count=1)` on the *publisher's* channel.
/// QoS belongs to the channel (or consumer) it is set on, so the consumers stay unlimited:
/// under RabbitMQ dispatch stays round robin whatever they acknowledge, and a slow consumer piles
/// up unacknowledged messages. Under the spec the limit is the publisher's channel's too.
///
/// Rules: `basic qos prefetch-count 01` (the limit is the channel's or consumer's own).
#[test]
fn s3_4_pitfall_qos_on_publisher_channel_changes_nothing() {
    let (mut w, p) = connected(RABBIT);
    w.replies(qos(p, 1, false), Reply::QosOk);
    w.run(queue(p, "ja", true, false, false));
    let [a, b] = [2, 3].map(|n| w.open(n));
    w.run(consume(a, "ja", "A", false));
    w.run(consume(b, "ja", "B", false));
    let mut got = Vec::new();
    for (i, body) in ["m0", "m1", "m2", "m3", "m4", "m5"].into_iter().enumerate() {
        got.extend(w.run(send(p, "", "ja", body)));
        if i % 2 == 1 {
            // B is fast and acks everything it has so far; A never acks.
            got.extend(w.run(ack(b, 0, true)));
        }
    }
    let turns = [
        (a, "A", 1, "m0"),
        (b, "B", 1, "m1"),
        (a, "A", 2, "m2"),
        (b, "B", 2, "m3"),
        (a, "A", 3, "m4"),
        (b, "B", 3, "m5"),
    ];
    let expected: Vec<Event> =
        turns.into_iter().map(|(c, tag, dt, body)| deliver(c, tag, dt, false, "ja", to_ja(body))).collect();
    assert_eq!(got, expected);
    assert_eq!(w.unacked(a).len(), 3);

    // Spec: the same qos limits only the publisher's channel; a lone consumer takes everything.
    let (mut w, p) = connected(SPEC);
    w.run(qos(p, 1, false));
    w.run(queue(p, "ja", true, false, false));
    let a = w.open(2);
    w.run(consume(a, "ja", "A", false));
    assert_eq!(w.run(send(p, "", "ja", "m0")), vec![deliver(a, "A", 1, false, "ja", to_ja("m0"))]);
    assert_eq!(w.run(send(p, "", "ja", "m1")), vec![deliver(a, "A", 2, false, "ja", to_ja("m1"))]);
}

// ---------------------------------------------------------------------------------------------
// §4.1 Fanout

/// §4.1: every queue bound to the fanout exchange `m1` gets a copy, whatever the routing key;
/// the subscribers' queues are server-named (`amq.gen-...`) and distinct.
///
/// Rules: `exchange required-types` (fanout), `queue declare queue default-name`,
/// `queue bind unique`.
#[test]
fn s4_1_fanout_copies_to_every_bound_queue() {
    for profile in BOTH {
        let (mut w, p) = with_exchange(profile, "m1", ExchangeKind::Fanout);
        let (a, qa) = subscriber(&mut w, 2, "m1", "", "A");
        let (b, qb) = subscriber(&mut w, 3, "m1", "anything", "B");
        for q in [&qa, &qb] {
            assert!(q.as_str().starts_with("amq.gen-"), "{q}");
        }
        assert_ne!(qa, qb);
        let nihao = msg("m1", "ignored.key", "nihao");
        assert_eq!(
            w.run(send(p, "m1", "ignored.key", "nihao")),
            vec![deliver(a, "A", 1, false, qa.as_str(), nihao.clone()), deliver(b, "B", 1, false, qb.as_str(), nihao)]
        );
    }
}

/// §4.1: a subscriber's server-named exclusive queue vanishes with its connection, together
/// with its binding; the remaining subscriber still gets the broadcasts.
///
/// Rules: `queue declare exclusive exclusive` (exclusive to the connection, deleted with it),
/// `queue declare passive passive`.
#[test]
fn s4_1_server_named_exclusive_queue_vanishes_with_its_connection() {
    for profile in BOTH {
        let (mut w, p) = with_exchange(profile, "m1", ExchangeKind::Fanout);
        let (a, qa) = subscriber(&mut w, 2, "m1", "", "A");
        let (b, qb) = subscriber(&mut w, 3, "m1", "", "B");
        assert_eq!(w.run(drop_conn(a)), vec![]);
        assert!(!w.0.queues.contains_key(&qa));
        assert_eq!(
            w.run(passive_queue(p, qa.as_str())),
            vec![channel_closed(p, ReplyCode::NotFound, Method::QueueDeclare)]
        );
        let p = w.open(4);
        assert_eq!(
            w.run(send(p, "m1", "", "again")),
            vec![deliver(b, "B", 1, false, qb.as_str(), msg("m1", "", "again"))]
        );
    }
}

/// §4.1: the producer publishes to `m1` before any subscriber has bound a queue: the message is
/// dropped, and a subscriber arriving later never sees it.
///
/// Rules: `basic publish mandatory 01` (without mandatory, an unroutable message is dropped
/// silently).
#[test]
fn s4_1_broadcast_with_nothing_bound_is_dropped() {
    for profile in BOTH {
        let (mut w, p) = with_exchange(profile, "m1", ExchangeKind::Fanout);
        assert_eq!(w.run(send(p, "m1", "", "lost")), vec![]);
        let (_, q) = subscriber(&mut w, 2, "m1", "", "A");
        assert!(w.ready(q.as_str()).is_empty());
        assert_eq!(w.0.queues.len(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// §4.2 Direct

/// §4.2: `m2` is direct; a message published with key `ja` reaches exactly the queues bound
/// with key `ja`, one copy each, and not a queue bound with another key.
///
/// Rules: `queue bind routing-key direct-exchange-key-matching`, `exchange required-types`.
#[test]
fn s4_2_direct_routes_on_exact_key() {
    for profile in BOTH {
        let (mut w, p) = with_exchange(profile, "m2", ExchangeKind::Direct);
        let (a, qa) = subscriber(&mut w, 2, "m2", "ja", "A");
        let (b, qb) = subscriber(&mut w, 3, "m2", "ja", "B");
        let (_, qc) = subscriber(&mut w, 4, "m2", "jb", "C");
        let hello = msg("m2", "ja", "hello");
        assert_eq!(
            w.run(send(p, "m2", "ja", "hello")),
            vec![deliver(a, "A", 1, false, qa.as_str(), hello.clone()), deliver(b, "B", 1, false, qb.as_str(), hello)]
        );
        assert_eq!(w.run(send(p, "m2", "JA", "case")), vec![]);
        assert_eq!(w.run(send(p, "m2", "ja.x", "longer")), vec![]);
        assert!(w.ready(qc.as_str()).is_empty());
    }
}

/// §4.2 pitfall: the consumer binds its queue to `m1` (the fanout of §4.1) instead of `m2`: it
/// gets every `m1` broadcast, whatever its key, and nothing published to `m2`.
///
/// Rules: `queue bind routing-key direct-exchange-key-matching`, `exchange required-types`.
#[test]
fn s4_2_pitfall_binding_to_m1_instead_of_m2() {
    for profile in BOTH {
        let (mut w, p) = with_exchange(profile, "m1", ExchangeKind::Fanout);
        w.run(exchange(p, "m2", ExchangeKind::Direct, false, false));
        let (c, q) = subscriber(&mut w, 2, "m1", "ja", "A");
        assert_eq!(w.run(send(p, "m2", "ja", "direct")), vec![]);
        assert_eq!(
            w.run(send(p, "m1", "other", "broadcast")),
            vec![deliver(c, "A", 1, false, q.as_str(), msg("m1", "other", "broadcast"))]
        );
    }
}

/// §4.2 pitfall: run before anything declared `m1`, the consumer's bind to `m1` fails with 404
/// and its channel closes.
///
/// Rules: `queue bind exchange exchange-existence`.
#[test]
fn s4_2_pitfall_binding_to_undeclared_m1_is_404() {
    for profile in BOTH {
        let (mut w, c) = connected(profile);
        let q = w.declare(queue(c, "", false, true, false));
        assert_eq!(
            w.run(bind(c, q.as_str(), "m1", "ja")),
            vec![channel_closed(c, ReplyCode::NotFound, Method::QueueBind)]
        );
        assert!(w.0.bindings.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// §4.3 Topic

/// §4.3: `m2` is a topic exchange; of `europe.weather` and `europe.weather.bad`, a queue bound
/// with `europe.*` gets the first (`*` is exactly one word) and one bound with `europe.#` gets
/// both (`#` is zero or more words, so it also takes plain `europe`).
///
/// Rules: `exchange recommended-types` (topic), `queue bind unique`.
#[test]
fn s4_3_topic_star_is_one_word_hash_is_any_number() {
    for profile in BOTH {
        let (mut w, p) = with_exchange(profile, "m2", ExchangeKind::Topic);
        let (star, qs) = subscriber(&mut w, 2, "m2", "europe.*", "S");
        let (hash, qh) = subscriber(&mut w, 3, "m2", "europe.#", "H");
        let m = |key: &str, body: &str| msg("m2", key, body);
        assert_eq!(
            w.run(send(p, "m2", "europe.weather", "1")),
            vec![
                deliver(star, "S", 1, false, qs.as_str(), m("europe.weather", "1")),
                deliver(hash, "H", 1, false, qh.as_str(), m("europe.weather", "1")),
            ]
        );
        assert_eq!(
            w.run(send(p, "m2", "europe.weather.bad", "2")),
            vec![deliver(hash, "H", 2, false, qh.as_str(), m("europe.weather.bad", "2"))]
        );
        assert_eq!(
            w.run(send(p, "m2", "europe", "3")),
            vec![deliver(hash, "H", 3, false, qh.as_str(), m("europe", "3"))]
        );
        assert_eq!(w.run(send(p, "m2", "asia.weather", "4")), vec![]);
    }
}

/// §4.3 pitfall: §4.2 declared `m2` as direct; §4.3 declares it again as topic: 406 closes the
/// channel and `m2` stays direct.
///
/// Rules: `exchange declare passive equivalent`, `exchange declare type typed`.
#[test]
fn s4_3_pitfall_m2_redeclared_as_topic_is_406() {
    for profile in BOTH {
        let (mut w, c) = with_exchange(profile, "m2", ExchangeKind::Direct);
        w.refused_any(exchange(c, "m2", ExchangeKind::Topic, false, false), not_equivalent(profile));
        assert_eq!(w.0.exchanges[&Name::from("m2")].kind, ExchangeKind::Direct);
    }
}

/// §4.3 pitfall: the consumer binds with `europe.` — the two words `europe` and the empty word —
/// so it matches neither `europe.weather` nor `europe.weather.bad` (only the key `europe.`
/// itself). `europe.*` would match the first, `europe.#` both.
///
/// Rules: `exchange recommended-types` (topic matching).
#[test]
fn s4_3_pitfall_binding_key_europe_dot_matches_neither() {
    for profile in BOTH {
        let (mut w, p) = with_exchange(profile, "m2", ExchangeKind::Topic);
        let (c, q) = subscriber(&mut w, 2, "m2", "europe.", "A");
        assert_eq!(w.run(send(p, "m2", "europe.weather", "1")), vec![]);
        assert_eq!(w.run(send(p, "m2", "europe.weather.bad", "2")), vec![]);
        assert_eq!(
            w.run(send(p, "m2", "europe.", "3")),
            vec![deliver(c, "A", 1, false, q.as_str(), msg("m2", "europe.", "3"))]
        );
    }
}
