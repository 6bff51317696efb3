//! The scenarios and pitfalls of the tutorial this project grew from
//! (`/work/shared/seed/SCENARIOS.md`), each stated as the outcome the model gives.
//!
//! The tutorial's scripts use queue `ja` and exchanges `m1`, `m2`, and so do these tests. Every
//! command is followed by the deliveries the broker then makes on its own, taken eagerly (round
//! robin under `rabbitmq`). Each test runs under `rabbitmq`, and also under `spec` when the
//! outcome is the same there or differs in a way worth showing.

use amqp_model::check::config::cmd::{bind, connect, consume, exchange, publish, queue};
use amqp_model::event::Reply;
use amqp_model::types::MessageData;
use amqp_model::{
    Broker, ChanRef, Command, ConnId, Content, Event, ExchangeKind, Message, Method, MsgId, Name, Profile, ReplyCode,
};
use std::sync::Arc;

// ---------------------------------------------------------------------------------------------
// A small client-side view of the model.

/// Both profiles, for outcomes they share.
const BOTH: [Profile; 2] = [Profile::rabbitmq(), Profile::spec()];

/// A broker seen from its clients: each command is followed by the deliveries it makes possible.
struct World(Broker);

impl World {
    fn new(profile: Profile) -> Self {
        // Printed only when a test fails, to tell which profile it was running.
        println!("profile {}", profile.name);
        World(Broker::new(profile))
    }

    /// Open connection `conn` and its channel 1.
    fn open(&mut self, conn: u16) -> ChanRef {
        let ch = ChanRef::new(conn, 1);
        let [open_conn, open_ch] = connect(conn);
        assert_eq!(self.run(open_conn), vec![Event::ConnectionOpenOk { conn: ConnId(conn) }]);
        assert_eq!(self.run(open_ch), vec![Event::ChannelOpenOk { ch }]);
        ch
    }

    /// Apply a command, then let the broker deliver what it can; messages lose their ghost id.
    fn run(&mut self, cmd: Command) -> Vec<Event> {
        let mut out = self.0.apply(&cmd).expect("a command the client can send");
        out.extend(self.0.settle_internal());
        out.into_iter().map(unghost).collect()
    }

    /// The name in the declare-ok answering a queue declare.
    fn declare(&mut self, cmd: Command) -> Name {
        match self.run(cmd).as_slice() {
            [Event::Reply { reply: Reply::QueueDeclareOk { queue, .. }, .. }] => queue.clone(),
            other => panic!("expected declare-ok, got {other:?}"),
        }
    }
}

/// The event with its message's ghost identity zeroed (clients never see it).
fn unghost(e: Event) -> Event {
    let strip = |m: Message| msg(m.0.exchange.as_str(), m.0.routing_key.as_str(), m.0.content.clone());
    match e {
        Event::Deliver { ch, consumer_tag, delivery_tag, redelivered, queue, message } => {
            Event::Deliver { ch, consumer_tag, delivery_tag, redelivered, queue, message: strip(message) }
        }
        Event::Reply { ch, reply: Reply::GetOk { delivery_tag, redelivered, queue, message_count, message } } => {
            let reply = Reply::GetOk { delivery_tag, redelivered, queue, message_count, message: strip(message) };
            Event::Reply { ch, reply }
        }
        other => other,
    }
}

/// A message as its consumer sees it.
fn msg(exchange: &str, key: &str, content: Content) -> Message {
    Message(Arc::new(MessageData { id: MsgId(0), exchange: exchange.into(), routing_key: key.into(), content }))
}

/// A transient message published to `ja` through the default exchange, as the tutorial does.
fn to_ja(body: &str) -> Message {
    msg("", "ja", Content::text(body))
}

/// Publish a transient message with this body (not mandatory).
fn send(ch: ChanRef, exchange: &str, key: &str, body: &str) -> Command {
    publish(ch, exchange, key, false, Content::text(body))
}

fn passive(ch: ChanRef, queue: &str) -> Command {
    Command::QueueDeclare {
        ch,
        queue: queue.into(),
        passive: true,
        durable: false,
        exclusive: false,
        auto_delete: false,
        arguments: Default::default(),
    }
}

fn ack(ch: ChanRef, delivery_tag: u64) -> Command {
    Command::BasicAck { ch, delivery_tag, multiple: false }
}

fn qos(ch: ChanRef, prefetch_count: u16) -> Command {
    Command::BasicQos { ch, prefetch_count, global: false }
}

fn declare_ok(ch: ChanRef, queue: &str, message_count: u32, consumer_count: u32) -> Event {
    Event::Reply { ch, reply: Reply::QueueDeclareOk { queue: queue.into(), message_count, consumer_count } }
}

fn consume_ok(ch: ChanRef, tag: &str) -> Event {
    Event::Reply { ch, reply: Reply::ConsumeOk { consumer_tag: tag.into() } }
}

fn deliver(ch: ChanRef, tag: &str, delivery_tag: u64, redelivered: bool, queue: &str, message: Message) -> Event {
    Event::Deliver { ch, consumer_tag: tag.into(), delivery_tag, redelivered, queue: queue.into(), message }
}

fn get_ok(ch: ChanRef, delivery_tag: u64, redelivered: bool, message_count: u32, message: Message) -> Event {
    Event::Reply { ch, reply: Reply::GetOk { delivery_tag, redelivered, queue: "ja".into(), message_count, message } }
}

fn channel_closed(ch: ChanRef, code: ReplyCode, method: Method) -> Event {
    Event::ChannelClosed { ch, code, method }
}

fn drop_conn(ch: ChanRef) -> Command {
    Command::ConnectionDrop { conn: ch.conn }
}

/// Connection `conn` as a tutorial subscriber: a server-named exclusive queue, bound to
/// `exchange` with `key`, consumed with auto-ack under consumer tag `tag`. Returns the channel
/// and the queue's name.
fn subscriber(w: &mut World, conn: u16, exchange: &str, key: &str, tag: &str) -> (ChanRef, Name) {
    let c = w.open(conn);
    let q = w.declare(queue(c, "", false, true, false));
    assert_eq!(w.run(bind(c, q.as_str(), exchange, key)), vec![Event::Reply { ch: c, reply: Reply::QueueBindOk }]);
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
        let mut w = World::new(profile);
        let p = w.open(1);
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
        assert_eq!(w.run(passive(c3, "ja")), vec![declare_ok(c3, "ja", 0, 0)]);
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
    let mut w = World::new(Profile::rabbitmq());
    let [p, a, b] = work_queue(&mut w);
    assert_eq!(w.run(send(p, "", "ja", "m0")), vec![deliver(a, "A", 1, false, "ja", to_ja("m0"))]);
    assert_eq!(w.run(send(p, "", "ja", "m1")), vec![deliver(b, "B", 1, false, "ja", to_ja("m1"))]);
    // Acknowledging does not change whose turn it is.
    assert_eq!(w.run(ack(a, 1)), vec![]);
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
    let mut w = World::new(Profile::rabbitmq());
    let [p, a, b] = work_queue(&mut w);
    for body in ["m0", "m1", "m2", "m3"] {
        w.run(send(p, "", "ja", body));
    }
    // A holds m0 and m2 and acks m0; B holds m1 and m3 and never acks.
    assert_eq!(w.run(ack(a, 1)), vec![]);
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
        let mut w = World::new(profile);
        let p = w.open(1);
        w.run(queue(p, "ja", false, false, false));
        w.run(send(p, "", "ja", "hello"));
        let c = w.open(2);
        assert_eq!(
            w.run(consume(c, "ja", "A", false)),
            vec![consume_ok(c, "A"), deliver(c, "A", 1, false, "ja", to_ja("hello"))]
        );
        assert_eq!(w.run(drop_conn(c)), vec![]);
        let get = Command::BasicGet { ch: p, queue: "ja".into(), no_ack: true };
        assert_eq!(w.run(get), vec![get_ok(p, 1, true, 0, to_ja("hello"))]);
    }
}

/// §3.2 pitfall: the callback reads `method.deliver_tag` (a typo for `delivery_tag`) and raises
/// before acking, so the message stays unacknowledged; when that consumer goes away it is
/// redelivered to the other consumer, flagged redelivered, and only then acknowledged.
///
/// Rules: `basic 10`, `basic recover 01`, `basic ack multiple exists`.
#[test]
fn s3_2_pitfall_deliver_tag_typo_leaves_message_unacked() {
    let mut w = World::new(Profile::rabbitmq());
    let [p, a, b] = work_queue(&mut w);
    assert_eq!(w.run(send(p, "", "ja", "task")), vec![deliver(a, "A", 1, false, "ja", to_ja("task"))]);
    // A's callback raises instead of acking; the script dies and its connection drops.
    assert_eq!(w.run(drop_conn(a)), vec![deliver(b, "B", 1, true, "ja", to_ja("task"))]);
    // B (with the typo fixed) acknowledges: the message is gone for good.
    assert_eq!(w.run(ack(b, 1)), vec![]);
    assert_eq!(w.run(passive(p, "ja")), vec![declare_ok(p, "ja", 0, 1)]);
    assert_eq!(w.run(drop_conn(b)), vec![]);
    assert_eq!(w.run(passive(p, "ja")), vec![declare_ok(p, "ja", 0, 0)]);
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
        let mut w = World::new(profile);
        let p = w.open(1);
        assert_eq!(w.run(queue(p, "ja", true, false, false)), vec![declare_ok(p, "ja", 0, 0)]);
        assert_eq!(w.run(publish(p, "", "ja", false, Content::persistent("hello"))), vec![]);
        assert_eq!(w.run(send(p, "", "ja", "transient")), vec![]);
        assert_eq!(
            w.run(Command::Restart),
            vec![Event::ConnectionClosed { conn: ConnId(1), code: ReplyCode::ConnectionForced, method: None }]
        );

        let p = w.open(1);
        assert_eq!(w.run(passive(p, "ja")), vec![declare_ok(p, "ja", 1, 0)]);
        let get = Command::BasicGet { ch: p, queue: "ja".into(), no_ack: true };
        let hello = msg("", "ja", Content::persistent("hello"));
        assert_eq!(w.run(get.clone()), vec![get_ok(p, 1, false, 0, hello)]);
        assert_eq!(w.run(get), vec![Event::Reply { ch: p, reply: Reply::GetEmpty }]);
    }
}

/// §3.3 (the other half): the non-durable `ja` of §3.1 does not survive a restart, even with a
/// persistent message in it.
///
/// Rules: `queue declare durable persistence`, `queue declare passive passive` (404 after).
#[test]
fn s3_3_transient_queue_is_gone_after_restart() {
    for profile in BOTH {
        let mut w = World::new(profile);
        let p = w.open(1);
        w.run(queue(p, "ja", false, false, false));
        w.run(publish(p, "", "ja", false, Content::persistent("hello")));
        w.run(Command::Restart);
        let p = w.open(1);
        assert_eq!(w.run(passive(p, "ja")), vec![channel_closed(p, ReplyCode::NotFound, Method::QueueDeclare)]);
    }
}

/// §3.3 pitfall: `ja` already exists non-durable (from §3.1/§3.2), and §3.3 declares it
/// `durable=True`: 406 precondition-failed closes the channel; the queue is unchanged.
///
/// Rules: `queue declare passive equivalent`.
#[test]
fn s3_3_pitfall_redeclaring_ja_durable_is_406() {
    for profile in BOTH {
        let mut w = World::new(profile);
        let c = w.open(1);
        w.run(queue(c, "ja", false, false, false));
        w.run(send(c, "", "ja", "hello"));
        assert_eq!(
            w.run(queue(c, "ja", true, false, false)),
            vec![channel_closed(c, ReplyCode::PreconditionFailed, Method::QueueDeclare)]
        );
        assert_eq!(w.run(Command::ChannelOpen { ch: c }), vec![Event::ChannelOpenOk { ch: c }]);
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
        let mut w = World::new(profile);
        let p = w.open(1);
        w.run(queue(p, "ja", true, false, false));
        let [a, b] = [2, 3].map(|n| w.open(n));
        for (c, tag) in [(a, "A"), (b, "B")] {
            assert_eq!(w.run(qos(c, 1)), vec![Event::Reply { ch: c, reply: Reply::QosOk }]);
            assert_eq!(w.run(consume(c, "ja", tag, false)), vec![consume_ok(c, tag)]);
        }
        let m = |body: &str| msg("", "ja", Content::persistent(body));
        let send = |body: &str| publish(p, "", "ja", false, Content::persistent(body));
        assert_eq!(w.run(send("slow")), vec![deliver(a, "A", 1, false, "ja", m("slow"))]);
        assert_eq!(w.run(send("m1")), vec![deliver(b, "B", 1, false, "ja", m("m1"))]);
        // Both are full: the next ones wait in the queue.
        assert_eq!(w.run(send("m2")), vec![]);
        assert_eq!(w.run(send("m3")), vec![]);
        assert_eq!(w.run(passive(p, "ja")), vec![declare_ok(p, "ja", 2, 2)]);
        // A is slow and never acks; B acks each message and gets the next.
        assert_eq!(w.run(ack(b, 1)), vec![deliver(b, "B", 2, false, "ja", m("m2"))]);
        assert_eq!(w.run(ack(b, 2)), vec![deliver(b, "B", 3, false, "ja", m("m3"))]);
        for c in [a, b] {
            assert_eq!(w.0.channel(c).expect("open").unacked.len(), 1, "{c} holds one");
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
    let mut w = World::new(Profile::rabbitmq());
    let p = w.open(1);
    assert_eq!(w.run(qos(p, 1)), vec![Event::Reply { ch: p, reply: Reply::QosOk }]);
    w.run(queue(p, "ja", true, false, false));
    let [a, b] = [2, 3].map(|n| w.open(n));
    w.run(consume(a, "ja", "A", false));
    w.run(consume(b, "ja", "B", false));
    let mut got = Vec::new();
    for (i, body) in ["m0", "m1", "m2", "m3", "m4", "m5"].into_iter().enumerate() {
        got.extend(w.run(send(p, "", "ja", body)));
        if i % 2 == 1 {
            // B is fast and acks everything it has so far; A never acks.
            got.extend(w.run(Command::BasicAck { ch: b, delivery_tag: 0, multiple: true }));
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
    assert_eq!(w.0.channel(a).expect("open").unacked.len(), 3);

    // Spec: the same qos limits only the publisher's channel; a lone consumer takes everything.
    let mut w = World::new(Profile::spec());
    let p = w.open(1);
    w.run(qos(p, 1));
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
        let mut w = World::new(profile);
        let p = w.open(1);
        w.run(exchange(p, "m1", ExchangeKind::Fanout, false, false));
        let (a, qa) = subscriber(&mut w, 2, "m1", "", "A");
        let (b, qb) = subscriber(&mut w, 3, "m1", "anything", "B");
        for q in [&qa, &qb] {
            assert!(q.as_str().starts_with("amq.gen-"), "{q}");
        }
        assert_ne!(qa, qb);
        let nihao = msg("m1", "ignored.key", Content::text("nihao"));
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
        let mut w = World::new(profile);
        let p = w.open(1);
        w.run(exchange(p, "m1", ExchangeKind::Fanout, false, false));
        let (a, qa) = subscriber(&mut w, 2, "m1", "", "A");
        let (b, qb) = subscriber(&mut w, 3, "m1", "", "B");
        assert_eq!(w.run(drop_conn(a)), vec![]);
        assert!(!w.0.queues.contains_key(&qa));
        assert_eq!(w.run(passive(p, qa.as_str())), vec![channel_closed(p, ReplyCode::NotFound, Method::QueueDeclare)]);
        let p = w.open(4);
        assert_eq!(
            w.run(send(p, "m1", "", "again")),
            vec![deliver(b, "B", 1, false, qb.as_str(), msg("m1", "", Content::text("again")))]
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
        let mut w = World::new(profile);
        let p = w.open(1);
        w.run(exchange(p, "m1", ExchangeKind::Fanout, false, false));
        assert_eq!(w.run(send(p, "m1", "", "lost")), vec![]);
        let (_, q) = subscriber(&mut w, 2, "m1", "", "A");
        assert!(w.0.queues[&q].ready.is_empty());
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
        let mut w = World::new(profile);
        let p = w.open(1);
        w.run(exchange(p, "m2", ExchangeKind::Direct, false, false));
        let (a, qa) = subscriber(&mut w, 2, "m2", "ja", "A");
        let (b, qb) = subscriber(&mut w, 3, "m2", "ja", "B");
        let (_, qc) = subscriber(&mut w, 4, "m2", "jb", "C");
        let hello = msg("m2", "ja", Content::text("hello"));
        assert_eq!(
            w.run(send(p, "m2", "ja", "hello")),
            vec![deliver(a, "A", 1, false, qa.as_str(), hello.clone()), deliver(b, "B", 1, false, qb.as_str(), hello)]
        );
        assert_eq!(w.run(send(p, "m2", "JA", "case")), vec![]);
        assert_eq!(w.run(send(p, "m2", "ja.x", "longer")), vec![]);
        assert!(w.0.queues[&qc].ready.is_empty());
    }
}

/// §4.2 pitfall: the consumer binds its queue to `m1` (the fanout of §4.1) instead of `m2`: it
/// gets every `m1` broadcast, whatever its key, and nothing published to `m2`.
///
/// Rules: `queue bind routing-key direct-exchange-key-matching`, `exchange required-types`.
#[test]
fn s4_2_pitfall_binding_to_m1_instead_of_m2() {
    for profile in BOTH {
        let mut w = World::new(profile);
        let p = w.open(1);
        w.run(exchange(p, "m1", ExchangeKind::Fanout, false, false));
        w.run(exchange(p, "m2", ExchangeKind::Direct, false, false));
        let (c, q) = subscriber(&mut w, 2, "m1", "ja", "A");
        assert_eq!(w.run(send(p, "m2", "ja", "direct")), vec![]);
        assert_eq!(
            w.run(send(p, "m1", "other", "broadcast")),
            vec![deliver(c, "A", 1, false, q.as_str(), msg("m1", "other", Content::text("broadcast")))]
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
        let mut w = World::new(profile);
        let c = w.open(1);
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
        let mut w = World::new(profile);
        let p = w.open(1);
        w.run(exchange(p, "m2", ExchangeKind::Topic, false, false));
        let (star, qs) = subscriber(&mut w, 2, "m2", "europe.*", "S");
        let (hash, qh) = subscriber(&mut w, 3, "m2", "europe.#", "H");
        let m = |key: &str, body: &str| msg("m2", key, Content::text(body));
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
        let mut w = World::new(profile);
        let c = w.open(1);
        w.run(exchange(c, "m2", ExchangeKind::Direct, false, false));
        assert_eq!(
            w.run(exchange(c, "m2", ExchangeKind::Topic, false, false)),
            vec![channel_closed(c, ReplyCode::PreconditionFailed, Method::ExchangeDeclare)]
        );
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
        let mut w = World::new(profile);
        let p = w.open(1);
        w.run(exchange(p, "m2", ExchangeKind::Topic, false, false));
        let (c, q) = subscriber(&mut w, 2, "m2", "europe.", "A");
        assert_eq!(w.run(send(p, "m2", "europe.weather", "1")), vec![]);
        assert_eq!(w.run(send(p, "m2", "europe.weather.bad", "2")), vec![]);
        assert_eq!(
            w.run(send(p, "m2", "europe.", "3")),
            vec![deliver(c, "A", 1, false, q.as_str(), msg("m2", "europe.", Content::text("3")))]
        );
    }
}
