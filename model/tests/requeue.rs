//! Requeues that a broker carries out in parts: RabbitMQ returns a multiple nack's (or a
//! recover's) deliveries one consumer at a time and dispatches between the batches
//! (`Profile::requeue_by_consumer`), and closes a connection's channels one at a time, in
//! either order, so that a copy returned by the first may go to a consumer of the next
//! (`Broker::close_connection`). Both were found by generated traces against RabbitMQ 3.10.8
//! (fixtures/spec/basic-nack-multiple-requeue-per-consumer-rabbitmq.trace,
//! fixtures/spec/connection-close-channels-one-by-one-rabbitmq.trace).

// The shared harness; this file uses a part of it.
#[allow(dead_code)]
mod support;

use amqp_model::check::config::cmd::{publish, queue};
use amqp_model::{ChanRef, Command, ConnId, Content, Event, Profile, Reply};
use support::{World, RABBIT, SPEC};

fn consume(ch: ChanRef, tag: &str, no_ack: bool) -> Command {
    Command::BasicConsume {
        ch,
        queue: "q".into(),
        consumer_tag: tag.into(),
        no_ack,
        exclusive: false,
        arguments: Default::default(),
    }
}

/// Each delivery among `events`: consumer tag, delivery tag and body, in order.
fn deliveries(events: &[Event]) -> Vec<(String, u64, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Deliver { consumer_tag, delivery_tag, message, .. } => {
                Some((consumer_tag.as_str().to_string(), *delivery_tag, message.0.content.body.to_string()))
            }
            _ => None,
        })
        .collect()
}

fn expect(list: &[(&str, u64, &str)]) -> Vec<(String, u64, String)> {
    list.iter().map(|(c, t, b)| (c.to_string(), *t, b.to_string())).collect()
}

/// Consumers `a` and `b` on one channel of queue `q`, holding m1 and m3 (a), m2 and m4 (b).
fn two_holders(profile: Profile) -> (World, ChanRef) {
    let mut w = World::new(profile);
    let ch = w.open(1);
    w.declare(queue(ch, "q", false, false, false));
    w.run(consume(ch, "a", false));
    w.run(consume(ch, "b", false));
    let mut got = Vec::new();
    for m in ["m1", "m2", "m3", "m4"] {
        got.extend(deliveries(&w.run(publish(ch, "", "q", false, Content::text(m)))));
    }
    assert_eq!(got, expect(&[("a", 1, "m1"), ("b", 2, "m2"), ("a", 3, "m3"), ("b", 4, "m4")]));
    (w, ch)
}

#[test]
fn a_multiple_nack_goes_back_consumer_by_consumer_with_dispatch_between() {
    let (mut w, ch) = two_holders(RABBIT);
    let events = w.run(Command::BasicNack { ch, delivery_tag: 4, multiple: true, requeue: true });
    // a's batch (m1, m3) goes back and out again before b's (m2, m4) is back.
    assert_eq!(deliveries(&events), expect(&[("a", 5, "m1"), ("b", 6, "m3"), ("a", 7, "m2"), ("b", 8, "m4")]));
}

#[test]
fn without_batches_the_nack_returns_everything_at_once() {
    // The deliberate fault of the rule above: the switch off, the queue's order comes back.
    let (mut w, ch) = two_holders(Profile { requeue_by_consumer: false, ..RABBIT });
    let events = w.run(Command::BasicNack { ch, delivery_tag: 4, multiple: true, requeue: true });
    assert_eq!(deliveries(&events), expect(&[("a", 5, "m1"), ("b", 6, "m2"), ("a", 7, "m3"), ("b", 8, "m4")]));
}

#[test]
fn a_recover_goes_back_in_the_same_batches_after_its_answer() {
    let (mut w, ch) = two_holders(RABBIT);
    let events = w.run(Command::BasicRecover { ch, requeue: true });
    assert_eq!(events.first(), Some(&Event::Reply { ch, reply: Reply::RecoverOk }));
    assert_eq!(deliveries(&events), expect(&[("a", 5, "m1"), ("b", 6, "m3"), ("a", 7, "m2"), ("b", 8, "m4")]));
}

/// A transaction's nacks go back at commit in the same batches (Q53), and the commit's answer
/// may come before, between or after the deliveries the batches make at once: one outcome per
/// place, the same deliveries in each.
#[test]
fn a_commit_requeues_in_the_same_batches_its_answer_anywhere_among_them() {
    let (mut w, ch) = two_holders(RABBIT);
    w.run(Command::TxSelect { ch });
    let held = w.run(Command::BasicNack { ch, delivery_tag: 4, multiple: true, requeue: true });
    assert_eq!(held, vec![], "held until the commit");
    let commit = Command::TxCommit { ch };
    let outcomes = w.outcomes(&commit);
    let at: Vec<Option<usize>> =
        outcomes.iter().map(|o| o.iter().position(|e| *e == Event::Reply { ch, reply: Reply::TxCommitOk })).collect();
    let batches = expect(&[("a", 5, "m1"), ("b", 6, "m3"), ("a", 7, "m2"), ("b", 8, "m4")]);
    for o in &outcomes {
        assert_eq!(deliveries(o), batches);
    }
    // Before the first delivery, after each one made at once (the first batch and its
    // dispatch: the second batch's go out as the broker's own steps, later).
    let mut places: Vec<usize> = at.iter().map(|p| p.expect("answered")).collect();
    places.dedup();
    assert_eq!(places, [0, 1, 2]);
}

/// m1 held by `a` (c1.1); `b` consumes without acknowledgements on c1.2, `c` on c2.1.
fn closing_world(profile: Profile) -> (World, ChanRef) {
    let mut w = World::new(profile);
    let a = w.open(1);
    w.declare(queue(a, "q", false, false, false));
    w.run(consume(a, "a", false));
    let b = w.channel(1, 2);
    w.run(consume(b, "b", true));
    let c = w.open(2);
    w.run(consume(c, "c", true));
    let got = deliveries(&w.run(publish(c, "", "q", false, Content::text("m1"))));
    assert_eq!(got, expect(&[("a", 1, "m1")]));
    (w, c)
}

#[test]
fn a_closing_connection_closes_its_channels_in_either_order() {
    let (w, _) = closing_world(RABBIT);
    let close = Command::ConnectionClose { conn: ConnId(1) };
    let outcomes = w.outcomes(&close);
    // c1.1 first, m1 back at once: it goes on to b, unseen (its client is closing), and is lost
    // with c1.2. m1 back only after c1.2 closed, or c1.2 first: b is gone, and c gets it.
    let delivered: Vec<_> = outcomes.iter().map(|o| deliveries(o)).collect();
    assert_eq!(delivered, [vec![], expect(&[("c", 1, "m1")]), expect(&[("c", 1, "m1")])], "{outcomes:?}");
    for o in &outcomes {
        assert!(o.contains(&Event::ConnectionCloseOk { conn: ConnId(1) }), "{o:?}");
    }
    // The first leaves nothing behind: m1 was lost to the no-ack consumer.
    let mut lost = w.clone();
    lost.take(close.clone(), 0);
    assert!(lost.ready("q").is_empty());
    assert!(lost.0.ledger.is_empty(), "m1 settled by its no-ack delivery: {:?}", lost.0.ledger);
}

#[test]
fn the_order_is_no_choice_where_it_cannot_matter() {
    // Without b, neither the channels' order nor the moment m1 goes back changes anything:
    // one outcome, c gets m1.
    let mut w = World::new(RABBIT);
    let a = w.open(1);
    w.declare(queue(a, "q", false, false, false));
    w.run(consume(a, "a", false));
    w.channel(1, 2);
    let c = w.open(2);
    w.run(consume(c, "c", true));
    w.run(publish(c, "", "q", false, Content::text("m1")));
    let outcomes = w.outcomes(&Command::ConnectionClose { conn: ConnId(1) });
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(deliveries(&outcomes[0]), expect(&[("c", 1, "m1")]));
}

#[test]
fn the_spec_lets_a_closing_channel_hand_its_copy_to_the_next() {
    // The text gives no order for a connection's channels and no moment for a requeue: m1 may
    // go to b before c1.2 closes, and be lost, or wait for c.
    let (w, _) = closing_world(SPEC);
    let outcomes = w.outcomes(&Command::ConnectionClose { conn: ConnId(1) });
    let delivered: std::collections::BTreeSet<_> = outcomes.iter().map(|o| deliveries(o)).collect();
    assert!(delivered.contains(&vec![]), "{outcomes:?}");
    assert!(delivered.iter().any(|d| d.iter().any(|(c, _, b)| c == "c" && b == "m1")), "{outcomes:?}");
}

#[test]
fn a_closed_channels_copies_go_back_in_a_step_of_their_own() {
    // RabbitMQ answers a close before its queues have taken the copies back (Q50): a get right
    // after the close-ok may find the queue empty; after a wait it finds the copy.
    for profile in [RABBIT, SPEC] {
        let mut w = World::new(profile);
        let a = w.open(1);
        w.declare(queue(a, "q", false, false, false));
        w.run(publish(a, "", "q", false, Content::text("m1")));
        w.run(Command::BasicGet { ch: a, queue: "q".into(), no_ack: false });
        let b = w.open(2);
        let events = w.0.apply(&Command::ChannelClose { ch: a }).unwrap();
        assert_eq!(events, [Event::ChannelCloseOk { ch: a }]);
        assert!(w.ready("q").is_empty());
        assert!(w.0.owes_removal(), "the requeue is owed");
        let mut steps = Vec::new();
        w.0.internal_steps(&mut steps);
        assert_eq!(steps, [amqp_model::Internal::Return { queue: "q".into() }]);
        let early = w.clone().0.apply(&Command::BasicGet { ch: b, queue: "q".into(), no_ack: true }).unwrap();
        assert!(matches!(early[..], [Event::Reply { reply: Reply::GetEmpty, .. }]), "{early:?}");
        assert!(w.0.step(&steps[0]).is_empty(), "silent");
        assert_eq!(w.ready("q"), [("m1", true)]);
        assert!(!w.0.owes_removal());
    }
}
