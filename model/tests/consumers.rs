//! Who gets the next message, beyond the core's round robin (`amqp_model::basic::
//! consumer_priority`): RabbitMQ's consumer priorities, as probed on RabbitMQ 3.10.8
//! (docs/rabbitmq-3.10.md Q47); under `spec` a consumer's arguments act on nothing.

// The shared harness; this file uses a part of it.
#[allow(dead_code)]
mod support;

use amqp_model::check::config::cmd::{publish, queue};
use amqp_model::{ChanRef, Command, Content, Event, Internal, Name, Profile, Table, Value};
use support::{World, RABBIT, SPEC};

fn consume(ch: ChanRef, queue: &str, tag: &str, priority: Option<Value>) -> Command {
    Command::BasicConsume {
        ch,
        queue: queue.into(),
        consumer_tag: tag.into(),
        no_ack: false,
        exclusive: false,
        arguments: priority.map(|p| Table::from([(Name::from("x-priority"), p)])).unwrap_or_default(),
    }
}

/// Who got each delivery among `events`, by consumer tag, in order.
fn takers(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Deliver { consumer_tag, .. } => Some(consumer_tag.as_str().to_string()),
            _ => None,
        })
        .collect()
}

/// A queue `q` with consumer `low` (no argument) and `high` (x-priority 10) on their own
/// channels at prefetch 1 each; the publisher on channel 1.
fn ranked(profile: Profile) -> (World, [ChanRef; 3]) {
    let mut w = World::new(profile);
    let p = w.open(1);
    let (low, high) = (w.channel(1, 2), w.channel(1, 3));
    w.declare(queue(p, "q", false, false, false));
    for (ch, tag, prio) in [(low, "low", None), (high, "high", Some(Value::Int(10)))] {
        w.run(Command::BasicQos { ch, prefetch_count: 1, global: false });
        w.run(consume(ch, "q", tag, prio));
    }
    (w, [p, low, high])
}

#[test]
fn the_higher_priority_consumer_gets_the_message_while_it_has_room() {
    let (mut w, [p, _, high]) = ranked(RABBIT);
    let mut got = Vec::new();
    for m in ["m1", "m2", "m3"] {
        got.extend(takers(&w.run(publish(p, "", "q", false, Content::text(m)))));
    }
    // high, then low while high is blocked; m3 waits for room.
    assert_eq!(got, ["high", "low"]);
    assert_eq!(w.ready("q"), [("m3", false)]);
    let acked = w.run(Command::BasicAck { ch: high, delivery_tag: 1, multiple: false });
    assert_eq!(takers(&acked), ["high"]);
}

#[test]
fn consumers_of_one_rank_share_round_robin_and_a_lower_waits() {
    let mut w = World::new(RABBIT);
    let p = w.open(1);
    let c = w.channel(1, 2);
    w.declare(queue(p, "r", false, false, false));
    w.run(consume(c, "r", "below", Some(Value::Int(-1))));
    w.run(consume(c, "r", "a", Some(Value::Sized(amqp_model::IntType::I16, 3))));
    w.run(consume(c, "r", "b", Some(Value::Int(3))));
    let mut got = Vec::new();
    for m in ["r1", "r2", "r3", "r4"] {
        got.extend(takers(&w.run(publish(p, "", "r", false, Content::text(m)))));
    }
    assert_eq!(got, ["a", "b", "a", "b"]);
}

#[test]
fn under_spec_a_consumers_arguments_rank_nothing() {
    let (w, [p, _, _]) = ranked(SPEC);
    // Any consumer with room may take the message: both are offered.
    let outcomes = w.outcomes(&publish(p, "", "q", false, Content::text("m1")));
    assert_eq!(outcomes.len(), 1);
    let mut steps = Vec::new();
    let mut b = w.0.clone();
    b.apply(&publish(p, "", "q", false, Content::text("m1"))).unwrap();
    b.internal_steps(&mut steps);
    assert_eq!(steps.len(), 2, "{steps:?}");
}

/// RabbitMQ's checks of a consumer's arguments (Q47): `x-priority` an integer of any width,
/// `x-cancel-on-ha-failover` a boolean, no `x-stream-offset` on a classic queue (406 each);
/// arguments it does not know are taken. Under `spec`, any arguments are taken.
#[test]
fn a_consumers_arguments_are_checked_as_rabbitmq_checks_them() {
    let s = |v: &str| Value::Str(v.into());
    let cases: [(&str, Value, bool); 9] = [
        ("x-priority", Value::Int(5), true),
        ("x-priority", Value::Int(1 << 40), true),
        ("x-priority", s("5"), false),
        ("x-priority", Value::Bool(true), false),
        ("x-priority", Value::Void, false),
        ("x-cancel-on-ha-failover", Value::Bool(true), true),
        ("x-cancel-on-ha-failover", s("yes"), false),
        ("x-stream-offset", Value::Int(1), false),
        ("x-foo", Value::Int(1), true),
    ];
    for (profile, checked) in [(RABBIT, true), (SPEC, false)] {
        for (key, value, taken) in &cases {
            let mut w = World::new(profile);
            let c = w.open(1);
            w.declare(queue(c, "q", false, false, false));
            let cmd = Command::BasicConsume {
                ch: c,
                queue: "q".into(),
                consumer_tag: "k".into(),
                no_ack: false,
                exclusive: false,
                arguments: Table::from([(Name::from(*key), value.clone())]),
            };
            if *taken || !checked {
                w.replies(cmd, amqp_model::event::Reply::ConsumeOk { consumer_tag: "k".into() });
            } else {
                w.refused_any(cmd, &[amqp_model::ReplyCode::PreconditionFailed]);
            }
        }
    }
    // The queue is looked up first: a missing one is 404 whatever the arguments.
    let mut w = World::new(RABBIT);
    let c = w.open(1);
    w.refused_any(consume(c, "missing", "k", Some(Value::Bool(true))), &[amqp_model::ReplyCode::NotFound]);
}

fn declare_single_active(w: &mut World, ch: ChanRef, name: &str, value: Value) -> Vec<Event> {
    w.run(Command::QueueDeclare {
        ch,
        queue: name.into(),
        passive: false,
        durable: false,
        exclusive: false,
        auto_delete: false,
        arguments: Table::from([(Name::from("x-single-active-consumer"), value)]),
    })
}

/// Single active consumer (Q48): the first subscriber gets every message, the next one only once
/// it is gone (cancelled, or its channel closed, its unacknowledged messages coming back to the
/// queue first); priorities do not count; basic.get still takes messages.
#[test]
fn a_single_active_consumer_gets_everything_until_it_goes() {
    let mut w = World::new(RABBIT);
    let p = w.open(1);
    let (a, b) = (w.channel(1, 2), w.channel(1, 3));
    declare_single_active(&mut w, p, "s", Value::Bool(true));
    w.run(Command::BasicQos { ch: a, prefetch_count: 1, global: false });
    w.run(consume(a, "s", "a", None));
    w.run(consume(b, "s", "b", Some(Value::Int(10))));
    let mut got = Vec::new();
    for m in ["m1", "m2"] {
        got.extend(takers(&w.run(publish(p, "", "s", false, Content::text(m)))));
    }
    // a holds m1 at prefetch 1: m2 waits for a, not for b (of a higher priority).
    assert_eq!(got, ["a"]);
    assert_eq!(w.ready("s"), [("m2", false)]);
    // basic.get beside the active consumer.
    let got_m2 = w.run(Command::BasicGet { ch: p, queue: "s".into(), no_ack: true });
    assert!(matches!(got_m2.as_slice(), [Event::Reply { .. }]), "{got_m2:?}");
    w.run(publish(p, "", "s", false, Content::text("m3")));
    // a's channel closes: m1 and m3 go to b, m1 redelivered. m1 may come back after close-ok
    // (Q50), but b takes nothing before: the queue takes m1 back and hands over in one go.
    let close = Command::ChannelClose { ch: a };
    for branch in w.0.apply_all(&close).expect("sent") {
        let mut steps = Vec::new();
        branch.broker.internal_steps(&mut steps);
        assert!(!steps.is_empty() && steps.iter().all(|s| matches!(s, Internal::Return { .. })), "{steps:?}");
    }
    let closed = w.run(close);
    let delivered: Vec<(String, String, bool)> = closed
        .iter()
        .filter_map(|e| match e {
            Event::Deliver { consumer_tag, message, redelivered, .. } => {
                Some((consumer_tag.as_str().to_string(), message.0.content.body.as_str().to_string(), *redelivered))
            }
            _ => None,
        })
        .collect();
    assert_eq!(delivered, [("b".into(), "m1".into(), true), ("b".into(), "m3".into(), false)]);
}

#[test]
fn a_single_active_consumer_queue_checks_its_argument_and_takes_no_exclusive_consumer() {
    for (value, ok) in [(Value::Bool(true), true), (Value::Bool(false), true), (Value::Int(1), false)] {
        let mut w = World::new(RABBIT);
        let c = w.open(1);
        let events = declare_single_active(&mut w, c, "s", value);
        assert_eq!(matches!(events.as_slice(), [Event::Reply { .. }]), ok, "{events:?}");
    }
    let mut w = World::new(RABBIT);
    let c = w.open(1);
    declare_single_active(&mut w, c, "s", Value::Bool(true));
    let exclusive = |ch: ChanRef| Command::BasicConsume {
        ch,
        queue: "s".into(),
        consumer_tag: "x".into(),
        no_ack: false,
        exclusive: true,
        arguments: Table::new(),
    };
    w.refused_any(exclusive(c), &[amqp_model::ReplyCode::AccessRefused]);
    // Under spec the argument acts on nothing: consumers share the queue, an exclusive one is
    // taken.
    let mut w = World::new(SPEC);
    let c = w.open(1);
    declare_single_active(&mut w, c, "s", Value::Int(1));
    w.replies(exclusive(c), amqp_model::event::Reply::ConsumeOk { consumer_tag: "x".into() });
}
