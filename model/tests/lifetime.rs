//! RabbitMQ's message-lifetime extensions in the model (`amqp_model::lifetime`): each rule as
//! RabbitMQ 3.10.8 was probed to follow it (docs/rabbitmq-3.10.md Q40, Q41, Q44), and, where a
//! deliberate fault breaks it, the fault seen.

use amqp_model::check::config::cmd;
use amqp_model::event::Reply;
use amqp_model::{
    Broker, ChanRef, Command, ConnId, Content, Event, Fault, Faults, Internal, Name, Profile, ReplyCode, Table, Value,
};

const C: ChanRef = ChanRef::new(1, 1);

fn broker(faults: Faults) -> Broker {
    let mut b = Broker::with_faults(Profile::rabbitmq(), faults);
    b.apply(&Command::ConnectionOpen { conn: ConnId(1) }).unwrap();
    b.apply(&Command::ChannelOpen { ch: C }).unwrap();
    b
}

fn args(pairs: &[(&str, Value)]) -> Table {
    pairs.iter().map(|(k, v)| (Name::from(*k), v.clone())).collect()
}

fn declare(b: &mut Broker, name: &str, arguments: Table) -> Vec<Event> {
    b.apply(&Command::QueueDeclare {
        ch: C,
        queue: name.into(),
        passive: false,
        durable: false,
        exclusive: false,
        auto_delete: false,
        arguments,
    })
    .unwrap()
}

fn publish(b: &mut Broker, exchange: &str, key: &str, content: Content) -> Vec<Event> {
    b.apply(&cmd::publish(C, exchange, key, false, content)).unwrap()
}

fn expiring(body: &str, ms: &str) -> Content {
    let mut c = Content::text(body);
    c.properties.set("expiration", Some(ms.into()));
    c
}

/// Let `ms` pass and take every step the broker may take, as a broker keeping time would.
fn pass(b: &mut Broker, ms: u32) -> Vec<Event> {
    b.apply(&Command::Pass { ms }).unwrap();
    b.settle_internal()
}

/// Land every dead-lettered copy on its way ([`Internal::Arrive`]), and nothing else.
fn land(b: &mut Broker) {
    loop {
        let mut steps = Vec::new();
        b.internal_steps(&mut steps);
        let Some(step) = steps.into_iter().find(|s| matches!(s, Internal::Arrive { .. })) else { return };
        b.step(&step);
    }
}

fn count(b: &Broker, queue: &str) -> usize {
    b.queues.get(queue).map_or(0, |q| q.ready.len())
}

fn get(b: &mut Broker, queue: &str) -> Option<String> {
    match b.apply(&Command::BasicGet { ch: C, queue: queue.into(), no_ack: true }).unwrap().as_slice() {
        [Event::Reply { reply: Reply::GetOk { message, .. }, .. }] => Some(message.0.content.body.as_str().to_string()),
        _ => None,
    }
}

fn closed(events: &[Event]) -> Option<ReplyCode> {
    events.iter().find_map(|e| match e {
        Event::ChannelClosed { code, .. } => Some(*code),
        _ => None,
    })
}

#[test]
fn a_message_expires_at_its_deadline_not_before() {
    for (faults, expired_at_99) in [(Faults::NONE, false), (Faults::only(Fault::ExpiresEarly), true)] {
        let mut b = broker(faults);
        declare(&mut b, "q", args(&[("x-message-ttl", Value::Int(100))]));
        publish(&mut b, "", "q", Content::text("m"));
        pass(&mut b, 99);
        assert_eq!(count(&b, "q") == 0, expired_at_99, "{faults:?}");
        pass(&mut b, 1);
        assert_eq!(count(&b, "q"), 0);
        assert!(!b.owes_expiry());
    }
}

#[test]
fn the_smaller_of_queue_and_message_ttl_decides() {
    let mut b = broker(Faults::NONE);
    declare(&mut b, "q", args(&[("x-message-ttl", Value::Int(60_000))]));
    publish(&mut b, "", "q", expiring("m", "100"));
    pass(&mut b, 100);
    assert_eq!(count(&b, "q"), 0);
}

#[test]
fn only_the_head_expires_and_an_expired_message_is_never_got() {
    let mut b = broker(Faults::NONE);
    declare(&mut b, "q", Table::new());
    publish(&mut b, "", "q", expiring("long", "60000"));
    publish(&mut b, "", "q", expiring("short", "1"));
    pass(&mut b, 300);
    assert_eq!(count(&b, "q"), 2, "the expired one behind the head is still counted");
    assert!(!b.owes_expiry());
    assert_eq!(get(&mut b, "q").as_deref(), Some("long"));
    assert_eq!(get(&mut b, "q"), None);
}

#[test]
fn a_message_out_does_not_expire_and_goes_once_back() {
    let mut b = broker(Faults::NONE);
    declare(&mut b, "q", args(&[("x-message-ttl", Value::Int(200))]));
    publish(&mut b, "", "q", Content::text("m"));
    b.apply(&Command::BasicGet { ch: C, queue: "q".into(), no_ack: false }).unwrap();
    pass(&mut b, 400);
    b.apply(&Command::BasicNack { ch: C, delivery_tag: 1, multiple: false, requeue: true }).unwrap();
    b.apply(&Command::Pass { ms: 1 }).unwrap();
    assert!(b.owes_expiry(), "back past its deadline: owed at once");
    b.settle_internal();
    assert_eq!(count(&b, "q"), 0);
}

fn dead_letter_setup(b: &mut Broker, queue_args: &[(&str, Value)]) {
    b.apply(&cmd::exchange(C, "dlx", amqp_model::ExchangeKind::Fanout, false, false)).unwrap();
    declare(b, "dead", Table::new());
    b.apply(&cmd::bind(C, "dead", "dlx", "")).unwrap();
    let mut a = queue_args.to_vec();
    a.push(("x-dead-letter-exchange", Value::Str("dlx".into())));
    declare(b, "src", args(&a));
}

fn death(b: &Broker, queue: &str) -> (Name, Name, Table) {
    let r = &b.queues[queue].ready[0];
    let Some(Value::Array(deaths)) = r.msg.0.content.headers.get("x-death") else { panic!("no x-death") };
    let Value::Table(first) = &deaths[0] else { panic!("x-death holds tables") };
    (r.msg.0.exchange.clone(), r.msg.0.routing_key.clone(), first.clone())
}

#[test]
fn a_rejected_message_is_dead_lettered_with_x_death() {
    for (faults, dead) in [(Faults::NONE, 1), (Faults::only(Fault::DeadLetterDropped), 0)] {
        let mut b = broker(faults);
        dead_letter_setup(&mut b, &[]);
        publish(&mut b, "", "src", expiring("m", "60000"));
        b.apply(&Command::BasicGet { ch: C, queue: "src".into(), no_ack: false }).unwrap();
        b.apply(&Command::BasicReject { ch: C, delivery_tag: 1, requeue: false }).unwrap();
        // On its way, not yet in the dead-letter queue (Q64), and owed by a wait.
        assert_eq!(count(&b, "dead"), 0);
        assert_eq!(b.owes_arrival(), dead == 1, "{faults:?}");
        assert_eq!(b.owes_removal(), dead == 1, "{faults:?}");
        land(&mut b);
        assert_eq!(count(&b, "dead"), dead, "{faults:?}");
        if dead == 0 {
            continue;
        }
        let (exchange, key, first) = death(&b, "dead");
        assert_eq!((exchange.as_str(), key.as_str()), ("dlx", "src"));
        assert_eq!(first.get("reason"), Some(&Value::Str("rejected".into())));
        assert_eq!(first.get("queue"), Some(&Value::Str("src".into())));
        assert_eq!(first.get("original-expiration"), Some(&Value::Str("60000".into())));
        assert_eq!(first.get("count"), Some(&Value::Sized(amqp_model::IntType::I64, 1)));
        let copy = &b.queues["dead"].ready[0].msg.0.content;
        assert_eq!(copy.properties.get("expiration"), None, "the copy loses its expiration");
    }
}

#[test]
fn expired_and_dropped_messages_are_dead_lettered_with_their_reasons() {
    let mut b = broker(Faults::NONE);
    dead_letter_setup(&mut b, &[("x-message-ttl", Value::Int(0))]);
    publish(&mut b, "", "src", Content::text("m"));
    pass(&mut b, 1);
    assert_eq!(death(&b, "dead").2.get("reason"), Some(&Value::Str("expired".into())));
    let mut b = broker(Faults::NONE);
    dead_letter_setup(&mut b, &[("x-max-length", Value::Int(1))]);
    publish(&mut b, "", "src", Content::text("a"));
    publish(&mut b, "", "src", Content::text("b"));
    land(&mut b);
    assert_eq!(death(&b, "dead").2.get("reason"), Some(&Value::Str("maxlen".into())));
    assert_eq!(b.queues["src"].ready[0].msg.0.content.body.as_str(), "b");
}

#[test]
fn a_loop_without_a_rejection_is_broken_and_one_with_counts_up() {
    let mut b = broker(Faults::NONE);
    let to_self = |q: &str, ttl: Option<i64>| {
        let mut a = vec![
            ("x-dead-letter-exchange", Value::Str("".into())),
            ("x-dead-letter-routing-key", Value::Str(q.into())),
        ];
        a.extend(ttl.map(|t| ("x-message-ttl", Value::Int(t))));
        args(&a)
    };
    declare(&mut b, "loop", to_self("loop", Some(0)));
    publish(&mut b, "", "loop", Content::text("m"));
    pass(&mut b, 1);
    assert_eq!(count(&b, "loop"), 0, "dropped after one lap");
    declare(&mut b, "self", to_self("self", None));
    publish(&mut b, "", "self", Content::text("m"));
    for lap in 1..=2i64 {
        let got = b.apply(&Command::BasicGet { ch: C, queue: "self".into(), no_ack: false }).unwrap();
        let Some(Event::Reply { reply: Reply::GetOk { delivery_tag, .. }, .. }) = got.first() else { panic!() };
        b.apply(&Command::BasicReject { ch: C, delivery_tag: *delivery_tag, requeue: false }).unwrap();
        land(&mut b);
        assert_eq!(death(&b, "self").2.get("count"), Some(&Value::Sized(amqp_model::IntType::I64, lap)));
    }
}

#[test]
fn length_limits_drop_the_oldest_or_refuse_the_publish() {
    for (faults, held) in [(Faults::NONE, 2), (Faults::only(Fault::LengthLimitIgnored), 3)] {
        let mut b = broker(faults);
        declare(&mut b, "q", args(&[("x-max-length", Value::Int(2))]));
        for m in ["a", "b", "c"] {
            publish(&mut b, "", "q", Content::text(m));
        }
        assert_eq!(count(&b, "q"), held, "{faults:?}");
    }
    let mut b = broker(Faults::NONE);
    declare(&mut b, "q", args(&[("x-max-length-bytes", Value::Int(5))]));
    for m in ["abc", "de", "f"] {
        publish(&mut b, "", "q", Content::text(m));
    }
    assert_eq!(get(&mut b, "q").as_deref(), Some("de"));
    let mut b = broker(Faults::NONE);
    b.apply(&Command::ConfirmSelect { ch: C }).unwrap();
    declare(&mut b, "q", args(&[("x-max-length", Value::Int(1)), ("x-overflow", Value::Str("reject-publish".into()))]));
    let acks: Vec<bool> = ["a", "b"]
        .iter()
        .flat_map(|m| publish(&mut b, "", "q", Content::text(m)))
        .filter_map(|e| match e {
            Event::Confirm { ack, .. } => Some(ack),
            _ => None,
        })
        .collect();
    assert_eq!(acks, [true, false]);
    assert_eq!(count(&b, "q"), 1);
}

/// Q45: a copy its queue could never hold, under drop-head, goes to a consumer with room if one
/// waits, and is dropped (dead-lettered) if none has room; reject-publish refuses it whatever
/// waits.
#[test]
fn a_waiting_consumer_gets_a_copy_its_queue_could_never_hold_under_drop_head() {
    let consume = |b: &mut Broker, queue: &str, no_ack: bool| {
        b.apply(&Command::BasicConsume {
            ch: C,
            queue: queue.into(),
            consumer_tag: queue.into(),
            no_ack,
            exclusive: false,
            arguments: Default::default(),
        })
        .unwrap()
    };
    let delivered = |events: &[Event]| events.iter().filter(|e| matches!(e, Event::Deliver { .. })).count();
    let confirmed = |events: &[Event]| {
        events.iter().find_map(|e| match e {
            Event::Confirm { ack, .. } => Some(*ack),
            _ => None,
        })
    };
    for (limit, body) in [(("x-max-length", 0), "m"), (("x-max-length-bytes", 2), "abc")] {
        for overflow in ["drop-head", "reject-publish", "reject-publish-dlx"] {
            let queue_args = [(limit.0, Value::Int(limit.1)), ("x-overflow", Value::Str(overflow.into()))];
            let mut b = broker(Faults::NONE);
            b.apply(&Command::ConfirmSelect { ch: C }).unwrap();
            b.apply(&Command::BasicQos { ch: C, prefetch_count: 1, global: false }).unwrap();
            dead_letter_setup(&mut b, &queue_args);
            let refused_dead = usize::from(overflow == "reject-publish-dlx");
            // (delivered, acked, dead-lettered) for a publish with no consumer, with one waiting,
            // and with that one full (its one unacked message the copy it was handed).
            let mut outcomes = Vec::new();
            for step in 0..3 {
                if step == 1 {
                    consume(&mut b, "src", false);
                }
                let before = count(&b, "dead");
                let events = publish(&mut b, "", "src", Content::text(body));
                land(&mut b);
                outcomes.push((delivered(&events), confirmed(&events), count(&b, "dead") - before));
                assert_eq!(count(&b, "src"), 0);
            }
            let expected = match overflow {
                "drop-head" => [(0, Some(true), 1), (1, Some(true), 0), (0, Some(true), 1)],
                _ => [(0, Some(false), refused_dead); 3],
            };
            assert_eq!(outcomes, expected, "{limit:?} {overflow}");
        }
    }
}

#[test]
fn an_alternate_exchange_takes_what_its_exchange_cannot_route() {
    for (faults, caught) in [(Faults::NONE, 1), (Faults::only(Fault::AlternateIgnored), 0)] {
        let mut b = broker(faults);
        declare(&mut b, "caught", Table::new());
        b.apply(&cmd::bind(C, "caught", "amq.fanout", "")).unwrap();
        b.apply(&Command::ExchangeDeclare {
            ch: C,
            exchange: "main".into(),
            kind: amqp_model::ExchangeKind::Direct,
            passive: false,
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: args(&[("alternate-exchange", Value::Str("amq.fanout".into()))]),
        })
        .unwrap();
        let events = b.apply(&cmd::publish(C, "main", "nowhere", true, Content::text("m"))).unwrap();
        assert_eq!(count(&b, "caught"), caught, "{faults:?}");
        assert_eq!(events.iter().any(|e| matches!(e, Event::Return { .. })), caught == 0);
    }
}

#[test]
fn an_unused_queue_with_x_expires_is_deleted_and_a_consumer_keeps_it() {
    for (faults, deleted) in [(Faults::NONE, true), (Faults::only(Fault::QueueNeverExpires), false)] {
        let mut b = broker(faults);
        declare(&mut b, "idle", args(&[("x-expires", Value::Int(300))]));
        declare(&mut b, "used", args(&[("x-expires", Value::Int(300))]));
        b.apply(&cmd::consume(C, "used", "k", false)).unwrap();
        b.apply(&Command::Pass { ms: 301 }).unwrap();
        assert_eq!(b.owes_removal(), deleted, "{faults:?}");
        b.settle_internal();
        assert_eq!(!b.queues.contains_key("idle"), deleted, "{faults:?}");
        assert!(b.queues.contains_key("used"));
    }
    // A declare renews it.
    let mut b = broker(Faults::NONE);
    declare(&mut b, "q", args(&[("x-expires", Value::Int(300))]));
    pass(&mut b, 200);
    declare(&mut b, "q", args(&[("x-expires", Value::Int(300))]));
    pass(&mut b, 200);
    assert!(b.queues.contains_key("q"));
    let mut steps = Vec::new();
    b.internal_steps(&mut steps);
    assert!(!steps.iter().any(|s| matches!(s, Internal::Remove(_))));
}

#[test]
fn arguments_and_expirations_of_the_wrong_kind_are_406() {
    let bad = [
        ("x-message-ttl", Value::Str("abc".into())),
        ("x-message-ttl", Value::Int(-1)),
        ("x-expires", Value::Int(0)),
        ("x-max-length", Value::Int(-1)),
        ("x-overflow", Value::Str("nonsense".into())),
        ("x-dead-letter-routing-key", Value::Str("k".into())),
        ("x-dead-letter-exchange", Value::Int(5)),
        // Ten years and a millisecond (Q49).
        ("x-message-ttl", Value::Int(315_360_000_001)),
        ("x-expires", Value::Int(315_360_000_001)),
    ];
    for (k, v) in bad {
        let mut b = broker(Faults::NONE);
        assert_eq!(
            closed(&declare(&mut b, "q", args(&[(k, v.clone())]))),
            Some(ReplyCode::PreconditionFailed),
            "{k} {v:?}"
        );
    }
    let mut b = broker(Faults::NONE);
    let ok = declare(
        &mut b,
        "q",
        args(&[("x-max-length", Value::Int(0)), ("x-dead-letter-exchange", Value::Str("".into()))]),
    );
    assert_eq!(closed(&ok), None);
    assert_eq!(closed(&publish(&mut b, "", "q", expiring("m", "abc"))), Some(ReplyCode::PreconditionFailed));
    // Ten years is the longest time taken, for a TTL and an expiration alike (Q49).
    let mut b = broker(Faults::NONE);
    let ten_years = Value::Int(315_360_000_000);
    assert_eq!(
        closed(&declare(&mut b, "q", args(&[("x-message-ttl", ten_years.clone()), ("x-expires", ten_years)]))),
        None
    );
    assert_eq!(closed(&publish(&mut b, "", "q", expiring("m", "315360000000"))), None);
    assert_eq!(closed(&publish(&mut b, "", "q", expiring("m", "4294967296"))), None);
    assert_eq!(closed(&publish(&mut b, "", "q", expiring("m", "315360000001"))), Some(ReplyCode::PreconditionFailed));
    // Under `spec` the arguments mean nothing: kept and compared only.
    let mut b = Broker::new(Profile::spec());
    b.apply(&Command::ConnectionOpen { conn: ConnId(1) }).unwrap();
    b.apply(&Command::ChannelOpen { ch: C }).unwrap();
    assert_eq!(closed(&declare(&mut b, "q", args(&[("x-message-ttl", Value::Str("abc".into()))]))), None);
}

/// A `basic.get` whose own bounds contain the deadline of the message behind the one it takes:
/// RabbitMQ may have dropped it before counting, or not, by its timing; the model allows both
/// counts there, and only the one once the deadline has surely passed, or surely not come.
#[test]
fn a_get_may_count_a_message_whose_deadline_falls_within_its_bounds() {
    let counts = |start: u64, end: u64| -> Vec<u32> {
        let mut b = broker(Faults::NONE);
        declare(&mut b, "q", Table::new());
        publish(&mut b, "", "q", Content::text("kept"));
        publish(&mut b, "", "q", expiring("short", "100"));
        b.window(start, end);
        let get = Command::BasicGet { ch: C, queue: "q".into(), no_ack: true };
        b.apply_all(&get)
            .unwrap()
            .iter()
            .filter_map(|br| match br.events.as_slice() {
                [Event::Reply { reply: Reply::GetOk { message_count, .. }, .. }] => Some(*message_count),
                _ => None,
            })
            .collect()
    };
    assert_eq!(counts(90, 110), [1, 0]);
    assert_eq!(counts(50, 90), [1]);
    assert_eq!(counts(101, 120), [0]);
}

#[test]
fn a_dead_lettered_copy_lands_in_a_step_of_its_own_in_the_order_its_queue_killed_it() {
    let mut b = broker(Faults::NONE);
    dead_letter_setup(&mut b, &[]);
    declare(&mut b, "other", args(&[("x-dead-letter-exchange", Value::Str("dlx".into()))]));
    for (queue, body) in [("src", "a"), ("src", "b"), ("other", "c")] {
        publish(&mut b, "", queue, Content::text(body));
        b.apply(&Command::BasicGet { ch: C, queue: queue.into(), no_ack: false }).unwrap();
    }
    for tag in [2, 1, 3] {
        b.apply(&Command::BasicReject { ch: C, delivery_tag: tag, requeue: false }).unwrap();
    }
    // Published after the deaths, it may land before their copies (Q64).
    publish(&mut b, "", "dead", Content::text("p"));
    let bodies = |b: &Broker| -> Vec<String> {
        b.queues["dead"].ready.iter().map(|r| r.msg.0.content.body.as_str().to_string()).collect()
    };
    assert_eq!(bodies(&b), ["p"]);
    // One copy may land from each queue they died in: b before a, as src killed them.
    let mut steps = Vec::new();
    b.internal_steps(&mut steps);
    let from = |q: &str| Internal::Arrive { queue: "dead".into(), from: q.into() };
    assert_eq!(steps, [from("src"), from("other")]);
    b.step(&from("src"));
    b.step(&from("other"));
    assert_eq!(bodies(&b), ["p", "b", "c"]);
    land(&mut b);
    assert_eq!(bodies(&b), ["p", "b", "c", "a"]);
    assert!(!b.owes_arrival());
    // A restart loses the copies still on their way (nothing confirmed them).
    publish(&mut b, "", "src", Content::text("d"));
    b.apply(&Command::BasicGet { ch: C, queue: "src".into(), no_ack: false }).unwrap();
    b.apply(&Command::BasicReject { ch: C, delivery_tag: 4, requeue: false }).unwrap();
    assert!(b.owes_arrival());
    b.apply(&Command::Restart).unwrap();
    assert!(!b.owes_arrival());
}
