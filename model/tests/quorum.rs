//! RabbitMQ's quorum queues (`amqp_model::quorum`), as probed on RabbitMQ 3.10.8
//! (docs/rabbitmq-3.10.md Q65, Q67); under `spec` `x-queue-type` is an argument like any other.

// The shared harness; this file uses a part of it.
#[allow(dead_code)]
mod support;

use amqp_model::check::config::cmd::{consume, queue};
use amqp_model::event::Reply;
use amqp_model::{ChanRef, Command, Event, IntType, Name, ReplyCode, Table, Value};
use support::{connected, declare_ok, get, passive_queue, send, World, RABBIT, SPEC};

fn args(pairs: &[(&str, Value)]) -> Table {
    pairs.iter().map(|(k, v)| (Name::from(*k), v.clone())).collect()
}

fn text(s: &str) -> Value {
    Value::Str(s.into())
}

/// `queue.declare` of `name` with these flags and arguments.
fn declare(ch: ChanRef, name: &str, durable: bool, exclusive: bool, auto_delete: bool, a: &[(&str, Value)]) -> Command {
    let mut cmd = queue(ch, name, durable, exclusive, auto_delete);
    if let Command::QueueDeclare { arguments, .. } = &mut cmd {
        *arguments = args(a);
    }
    cmd
}

/// A durable quorum queue `q` with these further arguments, holding `bodies`.
fn quorum(extra: &[(&str, Value)], bodies: &[&str]) -> (World, ChanRef) {
    let (mut w, c) = connected(RABBIT);
    let mut a = vec![("x-queue-type", text("quorum"))];
    a.extend(extra.iter().cloned());
    w.declare(declare(c, "q", true, false, false, &a));
    for b in bodies {
        w.run(send(c, "", "q", b));
    }
    (w, c)
}

fn nack(ch: ChanRef, delivery_tag: u64) -> Command {
    Command::BasicNack { ch, delivery_tag, multiple: false, requeue: true }
}

/// The body and `x-delivery-count` of each message a client got among `events`.
fn got(events: &[Event]) -> Vec<(String, Option<i64>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Deliver { message, .. } | Event::Reply { reply: Reply::GetOk { message, .. }, .. } => Some((
                message.0.content.body.as_str().to_string(),
                message.0.content.headers.get(&Name::from("x-delivery-count")).and_then(Value::int),
            )),
            _ => None,
        })
        .collect()
}

/// Get every ready message of `q` without acknowledgement.
fn drain(w: &mut World, c: ChanRef) -> Vec<(String, Option<i64>)> {
    let mut out = Vec::new();
    loop {
        let events = w.run(get(c, "q", true));
        let one = got(&events);
        if one.is_empty() {
            return out;
        }
        out.extend(one);
    }
}

fn pairs(v: &[(&str, i64)]) -> Vec<(String, Option<i64>)> {
    v.iter().map(|(b, n)| (b.to_string(), Some(*n))).collect()
}

#[test]
fn a_quorum_queue_must_be_durable_shared_and_named_and_refuses_classic_arguments() {
    let (mut w, c) = connected(RABBIT);
    let q = [("x-queue-type", text("quorum"))];
    w.refused_any(declare(c, "t", false, false, false, &q), &[ReplyCode::PreconditionFailed]);
    w.refused_any(declare(c, "t", true, true, false, &q), &[ReplyCode::PreconditionFailed]);
    w.refused_any(declare(c, "t", true, false, true, &q), &[ReplyCode::PreconditionFailed]);
    w.refused_any(declare(c, "", true, false, false, &q), &[ReplyCode::PreconditionFailed]);
    let priority = [("x-queue-type", text("quorum")), ("x-max-priority", Value::Int(5))];
    w.refused_any(declare(c, "t", true, false, false, &priority), &[ReplyCode::PreconditionFailed]);
    // And a classic queue refuses a quorum queue's own argument; an unknown type is refused.
    w.refused_any(
        declare(c, "t", true, false, false, &[("x-delivery-limit", Value::Int(1))]),
        &[ReplyCode::PreconditionFailed],
    );
    w.refused_any(
        declare(c, "t", true, false, false, &[("x-queue-type", text("lazy"))]),
        &[ReplyCode::PreconditionFailed],
    );
    w.declare(declare(c, "t", true, false, false, &q));
    // Under spec the argument means nothing: the same declares are fine.
    let (mut w, c) = connected(SPEC);
    w.declare(declare(c, "t", false, false, false, &priority));
    w.declare(declare(c, "u", true, false, false, &[("x-delivery-limit", Value::Int(1))]));
}

#[test]
fn requeued_copies_go_to_the_back_and_a_closed_channels_to_the_front() {
    let (mut w, c) = quorum(&[], &["m1", "m2", "m3"]);
    assert_eq!(got(&w.run(get(c, "q", false))), pairs(&[("m1", 0)]));
    w.run(nack(c, 1));
    let other = w.channel(1, 2);
    assert_eq!(got(&w.run(get(other, "q", false))), pairs(&[("m2", 0)]));
    w.run(Command::ChannelClose { ch: other });
    assert_eq!(drain(&mut w, c), pairs(&[("m2", 1), ("m3", 0), ("m1", 1)]));
}

#[test]
fn with_a_delivery_limit_every_copy_comes_back_to_the_front_and_ends_past_the_limit() {
    let dlx = [
        ("x-delivery-limit", Value::Int(1)),
        ("x-dead-letter-exchange", text("")),
        ("x-dead-letter-routing-key", text("dead")),
    ];
    let (mut w, c) = connected(RABBIT);
    w.declare(queue(c, "dead", false, false, false));
    let mut a = vec![("x-queue-type", text("quorum"))];
    a.extend(dlx.iter().cloned());
    w.declare(declare(c, "q", true, false, false, &a));
    for b in ["m1", "m2"] {
        w.run(send(c, "", "q", b));
    }
    w.run(get(c, "q", false));
    w.run(nack(c, 1));
    assert_eq!(got(&w.run(get(c, "q", false))), pairs(&[("m1", 1)]));
    // Back a second time: past the limit of 1, dead-lettered with reason delivery_limit.
    w.run(nack(c, 2));
    let dead = w.run(get(c, "dead", true));
    let Some(Event::Reply { reply: Reply::GetOk { message, .. }, .. }) = dead.first() else { panic!("{dead:?}") };
    let Some(Value::Array(deaths)) = message.0.content.headers.get(&Name::from("x-death")) else {
        panic!("{message:?}")
    };
    let Value::Table(first) = &deaths[0] else { panic!("{deaths:?}") };
    assert_eq!(first.get(&Name::from("reason")), Some(&text("delivery_limit")));
    assert!(!message.0.content.headers.contains_key(&Name::from("x-delivery-count")));
    assert_eq!(drain(&mut w, c), pairs(&[("m2", 0)]));
}

#[test]
fn a_consumer_sees_x_delivery_count_only_once_it_is_above_zero() {
    let (mut w, c) = quorum(&[], &["m1"]);
    let first = w.run(consume(c, "q", "k", false));
    assert_eq!(got(&first), vec![("m1".to_string(), None)]);
    let again = w.run(nack(c, 1));
    assert_eq!(got(&again), pairs(&[("m1", 1)]));
    let Some(Event::Deliver { message, .. }) = again.last() else { panic!("{again:?}") };
    let header = message.0.content.headers.get(&Name::from("x-delivery-count"));
    assert_eq!(header, Some(&Value::Sized(IntType::I64, 1)), "a long");
}

#[test]
fn what_a_quorum_queue_does_not_implement_closes_the_connection() {
    let (mut w, c) = quorum(&[], &[]);
    w.run(Command::BasicQos { ch: c, prefetch_count: 2, global: true });
    let refused = w.run(consume(c, "q", "k", false));
    assert!(matches!(refused[..], [Event::ConnectionClosed { code: ReplyCode::NotImplemented, .. }]), "{refused:?}");
    for (if_unused, if_empty) in [(true, false), (false, true)] {
        let c = w.open(2);
        let delete = Command::QueueDelete { ch: c, queue: "q".into(), if_unused, if_empty };
        let refused = w.run(delete);
        assert!(
            matches!(refused[..], [Event::ConnectionClosed { code: ReplyCode::NotImplemented, .. }]),
            "{refused:?}"
        );
    }
}

#[test]
fn the_consumer_count_counts_gets_and_cancelled_consumers_still_holding_deliveries() {
    let (mut w, c) = quorum(&[], &["m1", "m2", "m3"]);
    w.run(get(c, "q", false));
    w.run(get(c, "q", false));
    assert_eq!(w.run(passive_queue(c, "q")), vec![declare_ok(c, "q", 1, 2)]);
    let k = w.channel(1, 2);
    w.run(consume(k, "q", "k", false));
    assert_eq!(w.run(passive_queue(c, "q")), vec![declare_ok(c, "q", 0, 3)]);
    w.run(Command::BasicCancel { ch: k, consumer_tag: "k".into() });
    assert_eq!(w.run(passive_queue(c, "q")), vec![declare_ok(c, "q", 0, 3)]);
    w.run(Command::BasicAck { ch: k, delivery_tag: 1, multiple: false });
    assert_eq!(w.run(passive_queue(c, "q")), vec![declare_ok(c, "q", 0, 2)]);
}

#[test]
fn a_restart_keeps_transient_messages_and_returns_held_ones_to_the_front() {
    let (mut w, _) = quorum(&[], &["t1", "t2"]);
    let other = w.open(2);
    w.run(get(other, "q", false));
    w.run(Command::Restart);
    let c = w.open(3);
    assert_eq!(drain(&mut w, c), pairs(&[("t1", 1), ("t2", 0)]));
}
