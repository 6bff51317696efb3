//! The validator against the model as a target: the model passes its own validation (under both
//! profiles, whatever order its deliveries take), and a broker that drops, duplicates or reorders
//! a delivery, clears the redelivered flag or answers with the wrong reply code fails on the step
//! where it does so.

// Damage functions take the Vec they may grow or shrink.
#![allow(clippy::ptr_arg)]

use amqp_conformance::run::{replay, Verdict};
use amqp_conformance::target::model::ModelTarget;
use amqp_conformance::target::{Hint, Listen, Target};
use amqp_conformance::trace::parse;
use amqp_model::event::Reply;
use amqp_model::{Command, Event, Fault, Faults, Profile, ReplyCode};

const WORK: &str = r#"
title: a consumer, a reject with requeue, a bad redeclare
c1 connection.open
c1.1 channel.open
c1.1 queue.declare ja
c1.1 basic.publish "" ja m1
c1.1 basic.publish "" ja m2
c1.1 basic.consume ja w1
expect c1.1 basic.deliver w1 1 "" ja m1
expect c1.1 basic.deliver w1 2 "" ja m2
wait
c1.1 basic.reject 1 requeue
expect c1.1 basic.deliver w1 3 "" ja m1 redelivered
wait
c1.1 queue.declare ja durable
expect c1.1 closed 406 queue.declare
"#;

/// Lines of WORK (1-based; line 1 is the empty line after `r#"`).
const CONSUME: usize = 8;
const FIRST_WAIT: usize = 11;
const REJECT: usize = 12;
const DECLARE: usize = 15;

fn run(profile: Profile, target: &mut dyn Target) -> Verdict {
    replay(&parse(WORK, "work.trace").expect("parses"), profile, target)
}

/// WORK without its `expect` lines (kept as blank lines, so line numbers stay): the validator
/// alone must catch a damaged broker.
fn run_unexpecting(profile: Profile, target: &mut dyn Target) -> Verdict {
    let text: Vec<&str> = WORK.split('\n').map(|l| if l.starts_with("expect ") { "" } else { l }).collect();
    replay(&parse(&text.join("\n"), "work.trace").expect("parses"), profile, target)
}

#[test]
fn the_model_passes_its_own_validation() {
    assert_eq!(run(Profile::rabbitmq(), &mut ModelTarget::new(Profile::rabbitmq(), Faults::NONE)), Verdict::Pass);
}

#[test]
fn an_unmet_expectation_names_its_line() {
    let text = WORK.replace("w1 3 \"\" ja m1 redelivered", "w1 3 \"\" ja m2 redelivered");
    let trace = parse(&text, "t").unwrap();
    match replay(&trace, Profile::rabbitmq(), &mut ModelTarget::new(Profile::rabbitmq(), Faults::NONE)) {
        Verdict::Unmet { line, .. } => assert_eq!(line, REJECT + 1),
        other => panic!("{other}"),
    }
}

/// A target that damages what the model target observed, once, at the first step where `damage`
/// applies, and remembers which step that was.
struct Damaged {
    inner: ModelTarget,
    damage: fn(&mut Vec<Event>) -> bool,
    step: usize,
    damaged_at: Option<usize>,
}

impl Damaged {
    fn new(profile: Profile, damage: fn(&mut Vec<Event>) -> bool) -> Self {
        Damaged { inner: ModelTarget::new(profile, Faults::NONE), damage, step: 0, damaged_at: None }
    }
    fn observe(&mut self, mut events: Vec<Event>) -> Vec<Event> {
        self.step += 1;
        if self.damaged_at.is_none() && (self.damage)(&mut events) {
            self.damaged_at = Some(self.step);
        }
        events
    }
}

impl Target for Damaged {
    fn command(&mut self, command: &Command, hint: Hint) -> Vec<Event> {
        let events = self.inner.command(command, hint);
        self.observe(events)
    }
    fn listen(&mut self, how: Listen) -> Vec<Event> {
        let events = self.inner.listen(how);
        self.observe(events)
    }
}

fn deliveries(events: &[Event]) -> Vec<usize> {
    events.iter().enumerate().filter(|(_, e)| matches!(e, Event::Deliver { .. })).map(|(i, _)| i).collect()
}

fn diverges_at(damage: fn(&mut Vec<Event>) -> bool, line: usize) {
    let mut target = Damaged::new(Profile::rabbitmq(), damage);
    match run_unexpecting(Profile::rabbitmq(), &mut target) {
        Verdict::Diverged { line: at, divergence } => {
            assert_eq!(at, line, "diverged at the wrong line:\n{divergence}");
            assert!(!divergence.allowed.is_empty(), "the report shows what the model allowed");
        }
        other => panic!("damage not detected: {other}"),
    }
    assert!(target.damaged_at.is_some());
}

#[test]
fn a_dropped_delivery_fails_at_the_next_wait() {
    diverges_at(
        |e| match deliveries(e).last() {
            Some(&i) => {
                e.remove(i);
                true
            }
            None => false,
        },
        FIRST_WAIT,
    );
}

#[test]
fn a_duplicated_delivery_fails_where_it_happens() {
    diverges_at(
        |e| match deliveries(e).first() {
            Some(&i) => {
                let d = e[i].clone();
                e.insert(i + 1, d);
                true
            }
            None => false,
        },
        CONSUME,
    );
}

#[test]
fn reordered_deliveries_fail_where_they_happen() {
    diverges_at(
        |e| match deliveries(e)[..] {
            [a, b, ..] => {
                e.swap(a, b);
                true
            }
            _ => false,
        },
        CONSUME,
    );
}

#[test]
fn a_cleared_redelivered_flag_fails_where_it_happens() {
    diverges_at(
        |e| {
            for ev in e.iter_mut() {
                if let Event::Deliver { redelivered: r @ true, .. } = ev {
                    *r = false;
                    return true;
                }
            }
            false
        },
        REJECT,
    );
}

#[test]
fn a_wrong_reply_code_fails_where_it_happens() {
    diverges_at(
        |e| {
            for ev in e.iter_mut() {
                if let Event::ChannelClosed { code, .. } = ev {
                    *code = ReplyCode::AccessRefused;
                    return true;
                }
            }
            false
        },
        DECLARE,
    );
}

#[test]
fn a_faulty_model_broker_fails_where_it_breaks_the_rule() {
    let mut target = ModelTarget::new(Profile::rabbitmq(), Faults::only(Fault::NoRedeliveredFlag));
    match run_unexpecting(Profile::rabbitmq(), &mut target) {
        Verdict::Diverged { line, .. } => assert_eq!(line, REJECT),
        other => panic!("{other}"),
    }
}

/// Give the first delivery to consumer `b` instead.
fn to_b(e: &mut Vec<Event>) -> bool {
    for ev in e.iter_mut() {
        if let Event::Deliver { consumer_tag, .. } = ev {
            *consumer_tag = "b".into();
            return true;
        }
    }
    false
}

/// Under the spec profile a message may go to any consumer with capacity: a broker that serves
/// the second consumer first is as conformant as one that serves the first. Under rabbitmq's
/// round robin it is not.
#[test]
fn any_consumer_order_passes_under_spec_only() {
    let text = r#"
c1 connection.open
c1.1 channel.open
c1.1 queue.declare q
c1.1 basic.consume q a
c1.1 basic.consume q b
c1.1 basic.publish "" q m
wait
"#;
    let trace = parse(text, "t").unwrap();
    let spec = Profile::spec();
    assert_eq!(replay(&trace, spec, &mut ModelTarget::new(spec, Faults::NONE)), Verdict::Pass);
    assert_eq!(replay(&trace, spec, &mut Damaged::new(spec, to_b)), Verdict::Pass);
    let rabbit = Profile::rabbitmq();
    assert!(matches!(replay(&trace, rabbit, &mut Damaged::new(rabbit, to_b)), Verdict::Diverged { line: 7, .. }));
}

#[test]
fn a_divergence_report_reads_well() {
    let mut target = Damaged::new(Profile::rabbitmq(), |e| {
        for ev in e.iter_mut() {
            if let Event::ChannelClosed { code, .. } = ev {
                *code = ReplyCode::AccessRefused;
                return true;
            }
        }
        false
    });
    let report = run_unexpecting(Profile::rabbitmq(), &mut target).to_string();
    println!("{report}");
    assert!(report.starts_with("line 15: after `c1.1 queue.declare ja durable` the broker did:\n  c1.1 closed 403"));
    assert!(report.contains("c1.1 closed 406 queue.declare"), "the allowed alternative names the right code");
}

/// A target that renames every `amq.ctag-N` consumer tag to `N_tag` (as GarageMQ's numeric tags
/// look), on every step; with `swap`, deliveries of tag 2 name the first tag instead.
struct Renamed {
    inner: ModelTarget,
    swap: bool,
}

impl Renamed {
    fn rename(&self, events: Vec<Event>) -> Vec<Event> {
        let fix = |t: &amqp_model::Name| {
            amqp_model::Name::from(t.as_str().strip_prefix("amq.ctag-").map_or(t.to_string(), |n| format!("{n}_tag")))
        };
        events
            .into_iter()
            .map(|e| match e {
                Event::Reply { ch, reply: Reply::ConsumeOk { consumer_tag } } => {
                    Event::Reply { ch, reply: Reply::ConsumeOk { consumer_tag: fix(&consumer_tag) } }
                }
                Event::Deliver { ch, consumer_tag, delivery_tag, redelivered, queue, message } => {
                    let mut consumer_tag = fix(&consumer_tag);
                    if self.swap && delivery_tag == 2 {
                        consumer_tag = amqp_model::Name::from("1_tag");
                    }
                    Event::Deliver { ch, consumer_tag, delivery_tag, redelivered, queue, message }
                }
                other => other,
            })
            .collect()
    }
}

impl Target for Renamed {
    fn command(&mut self, command: &Command, hint: Hint) -> Vec<Event> {
        let events = self.inner.command(command, hint);
        self.rename(events)
    }
    fn listen(&mut self, how: Listen) -> Vec<Event> {
        let events = self.inner.listen(how);
        self.rename(events)
    }
}

/// The specification does not say what a server-generated consumer tag looks like: any tag in the
/// consume-ok of a consume with an empty tag is bound to the model's, and must then be used
/// consistently.
#[test]
fn server_generated_tags_of_any_form_are_matched_consistently() {
    let text = "c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare q\nc1.1 basic.consume q \"\" -> $a\n\
                c1.1 basic.consume q \"\" -> $b\nc1.1 basic.publish \"\" q m1\nc1.1 basic.publish \"\" q m2\n";
    let trace = parse(text, "tags.trace").unwrap();
    let rabbit = Profile::rabbitmq();
    let mut fine = Renamed { inner: ModelTarget::new(rabbit, Faults::NONE), swap: false };
    assert_eq!(replay(&trace, rabbit, &mut fine), Verdict::Pass);
    let mut swapped = Renamed { inner: ModelTarget::new(rabbit, Faults::NONE), swap: true };
    assert!(matches!(replay(&trace, rabbit, &mut swapped), Verdict::Diverged { line: 7, .. }));
}

/// A target that names every server-named queue `srv-q`, as a broker that issues a generated
/// name again would: the model's `amq.gen-N` is renamed in what the broker says, and `srv-q` in
/// commands is the model's latest generated queue.
struct OneQueueName {
    inner: ModelTarget,
    latest: Option<amqp_model::Name>,
}

impl Target for OneQueueName {
    fn command(&mut self, command: &Command, hint: Hint) -> Vec<Event> {
        let latest = self.latest.clone();
        let command = command.map_names(|n| match (n.as_str(), &latest) {
            ("srv-q", Some(model)) => model.clone(),
            _ => n.clone(),
        });
        let events = self.inner.command(&command, hint);
        events
            .into_iter()
            .map(|e| match e {
                Event::Reply { ch, reply: Reply::QueueDeclareOk { queue, message_count, consumer_count } }
                    if queue.as_str().starts_with("amq.gen-") =>
                {
                    self.latest = Some(queue);
                    let queue = amqp_model::Name::from("srv-q");
                    Event::Reply { ch, reply: Reply::QueueDeclareOk { queue, message_count, consumer_count } }
                }
                other => other,
            })
            .collect()
    }
    fn listen(&mut self, how: Listen) -> Vec<Event> {
        self.inner.listen(how)
    }
}

/// `queue declare queue default-name`: a generated name must differ from every existing queue's,
/// and the text does not say it may never come again. A broker that names a new queue as one it
/// deleted passes; one that gives a live queue's name to a new one fails at that declare.
#[test]
fn a_generated_queue_name_may_come_again_once_its_queue_is_gone() {
    let spec = Profile::spec();
    let again = "c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare \"\" -> $a\nc1.1 queue.delete $a\n\
                 c1.1 queue.declare \"\" -> $b\nc1.1 basic.publish \"\" $b m\nc1.1 queue.declare $b passive\n\
                 expect c1.1 queue.declare-ok $b 1 0\n";
    let trace = parse(again, "again.trace").unwrap();
    let mut target = OneQueueName { inner: ModelTarget::new(spec, Faults::NONE), latest: None };
    assert_eq!(replay(&trace, spec, &mut target), Verdict::Pass);
    let live = "c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare \"\" -> $a\nc1.1 queue.declare \"\" -> $b\n";
    let trace = parse(live, "live.trace").unwrap();
    let mut target = OneQueueName { inner: ModelTarget::new(spec, Faults::NONE), latest: None };
    assert!(matches!(replay(&trace, spec, &mut target), Verdict::Diverged { line: 4, .. }));
}

/// The model as a target whose deliveries all come late, in one batch once there are `all` of
/// them (as a broker's may on a busy machine): all at the last publish.
struct DeliversLate {
    model: ModelTarget,
    held: Vec<Event>,
    all: usize,
}

impl Target for DeliversLate {
    fn command(&mut self, command: &Command, hint: Hint) -> Vec<Event> {
        let (held, now): (Vec<Event>, Vec<Event>) =
            self.model.command(command, hint).into_iter().partition(|e| matches!(e, Event::Deliver { .. }));
        self.held.extend(held);
        now
    }
    fn listen(&mut self, _: Listen) -> Vec<Event> {
        if self.held.len() < self.all {
            return Vec::new();
        }
        std::mem::take(&mut self.held)
    }
}

/// A step that gathers 2,048 deliveries (a fanout to 8 no-ack consumers, 256 messages) is
/// explained on the thread a trace runs on. Its search is over 2 MiB deep in a debug build, more
/// than a thread has by default: on a thread of that size (this test's own), it overflows.
#[test]
fn a_step_of_two_thousand_late_deliveries_is_explained_on_a_trace_thread() {
    let mut text = String::from("c1 connection.open\nc1.1 channel.open\nc1.1 exchange.declare fx fanout\n");
    for i in 0..8 {
        text +=
            &format!("c1.1 queue.declare q{i}\nc1.1 queue.bind q{i} fx \"\"\nc1.1 basic.consume q{i} t{i} no-ack\n");
    }
    for m in 0..256 {
        text += &format!("c1.1 basic.publish fx \"\" m{m}\n");
    }
    text += "wait\n";
    let trace = parse(&text, "late-deliveries.trace").expect("parses");
    let mut target =
        DeliversLate { model: ModelTarget::new(Profile::spec(), Faults::NONE), held: Vec::new(), all: 2048 };
    let verdict = amqp_conformance::suite::on_trace_thread("late-deliveries.trace", || {
        amqp_conformance::run::record(&trace, Profile::spec(), &mut target)
    });
    assert_eq!(verdict.verdict, Verdict::Pass);
    let most = verdict.steps.iter().map(|s| deliveries(&s.events).len()).max();
    assert_eq!(most, Some(2048), "every delivery is observed in one step");
}

/// A broker that makes the deletions it owes ([`amqp_model::Internal::Remove`]) only when asked
/// again `late` times ([`Target::recheck`]), or never (`late` None): the spec profile's model,
/// its deliveries eager.
struct Late {
    broker: amqp_model::Broker,
    late: Option<usize>,
    rechecked: usize,
    forgotten: Vec<amqp_model::ChanRef>,
}

impl Late {
    fn new(late: Option<usize>) -> Self {
        Late { broker: amqp_model::Broker::new(Profile::spec()), late, rechecked: 0, forgotten: Vec::new() }
    }
    fn deliveries(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let mut steps = Vec::new();
            self.broker.internal_steps(&mut steps);
            let Some(s) = steps.into_iter().find(|s| matches!(s, amqp_model::Internal::Deliver { .. })) else {
                return out;
            };
            out.extend(self.broker.step(&s));
        }
    }
}

impl Target for Late {
    fn command(&mut self, command: &Command, _hint: Hint) -> Vec<Event> {
        let mut events = self.broker.apply(command).expect("a command the client can send");
        events.extend(self.deliveries());
        events
    }
    fn listen(&mut self, _how: Listen) -> Vec<Event> {
        self.deliveries()
    }
    fn recheck(&mut self, command: &Command) -> Option<Event> {
        let Command::ExchangeDeclare { ch, exchange, .. } = command else { return None };
        self.rechecked += 1;
        if self.late? < self.rechecked {
            return None;
        }
        if self.late == Some(self.rechecked) {
            self.broker.settle_internal();
        }
        let mut scratch = self.broker.clone();
        let ask = Command::ExchangeDeclare {
            ch: *ch,
            exchange: exchange.clone(),
            kind: amqp_model::ExchangeKind::Direct,
            passive: true,
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: Default::default(),
        };
        scratch.apply(&ask).ok()?.into_iter().find(|e| e.channel() == Some(*ch))
    }
    fn forget_channel(&mut self, ch: amqp_model::ChanRef) {
        self.forgotten.push(ch);
    }
}

const UNUSED: &str = "c1 connection.open\nc1.1 channel.open\nc1.1 exchange.declare x direct auto-delete\n\
    c1.1 queue.declare q\nc1.1 queue.bind q x k\nc1.1 queue.unbind q x k\nwait\n\
    c1.1 exchange.declare x direct passive\nexpect c1.1 closed 404 exchange.declare\n";

/// Under `spec` a broker may delete an unused auto-delete exchange after a delay: the runner asks
/// again until it is gone, and takes that answer (closing the step's channel, as the answer did).
#[test]
fn a_deletion_made_late_is_waited_for() {
    let mut late = Late::new(Some(3));
    let verdict = replay(&parse(UNUSED, "late.trace").unwrap(), Profile::spec(), &mut late);
    assert_eq!(verdict, Verdict::Pass);
    assert_eq!(late.rechecked, 3);
    assert_eq!(late.forgotten.len(), 1);
}

/// One that never deletes it fails at the check after the wait, once the runner's patience is out,
/// on its first answer; the rabbitmq profile (deletion at once) does not ask again.
#[test]
fn a_deletion_never_made_fails_after_the_wait() {
    let mut never = Late::new(None);
    match replay(&parse(UNUSED, "never.trace").unwrap(), Profile::spec(), &mut never) {
        Verdict::Diverged { line, divergence } => {
            assert_eq!(line, 8, "{divergence}");
            assert!(divergence
                .observed
                .iter()
                .any(|e| matches!(e, Event::Reply { reply: Reply::ExchangeDeclareOk, .. })));
        }
        other => panic!("a broker that never deletes passed: {other}"),
    }
    assert_eq!(never.rechecked, 1);
    let mut late = Late::new(Some(1));
    assert!(matches!(
        replay(&parse(UNUSED, "late.trace").unwrap(), Profile::rabbitmq(), &mut late),
        Verdict::Diverged { line: 8, .. }
    ));
    assert_eq!(late.rechecked, 0);
}

/// A broker that, at a connection's close, first delivers what it can to that connection's
/// consumers, which the client, having sent the close, never sees; the close then requeues those
/// messages flagged redelivered (as LavinMQ, reading the close late, does).
struct CrossingClose {
    broker: amqp_model::Broker,
}

impl Target for CrossingClose {
    fn command(&mut self, command: &Command, _hint: Hint) -> Vec<Event> {
        if let Command::ConnectionClose { .. } = command {
            self.broker.settle_internal();
        }
        let mut events = self.broker.apply(command).expect("a command the client can send");
        if !matches!(command, Command::BasicPublish { .. }) {
            events.extend(self.broker.settle_internal());
        }
        events
    }
    /// Its deliveries go out only at the close.
    fn listen(&mut self, _how: Listen) -> Vec<Event> {
        Vec::new()
    }
}

/// A delivery that crossed the client's connection.close is never seen, yet its message comes
/// back flagged redelivered: the validator allows it under both profiles (it may have been sent
/// before the broker read the close), and still refuses the flag on a message never sent.
#[test]
fn a_delivery_that_crossed_the_close_may_come_back_redelivered() {
    let trace = "c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare ja\nc1.1 basic.consume ja w1 \
                 \nc2 connection.open\nc2.1 channel.open\nc2.1 basic.publish \"\" ja m1\nc1 connection.close\n\
                 c2.1 basic.get ja\nexpect c2.1 basic.get-ok 1 \"\" ja m1 remaining=0 redelivered\n";
    for profile in [Profile::rabbitmq(), Profile::spec()] {
        let mut target = CrossingClose { broker: amqp_model::Broker::new(profile) };
        let verdict = replay(&parse(trace, "cross.trace").unwrap(), profile, &mut target);
        assert_eq!(verdict, Verdict::Pass, "{}", profile.name);
    }
    // Without a close in between, the flag is refused.
    let unflagged = "c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare ja\nc1.1 basic.publish \"\" ja m1\n\
                     c1.1 basic.get ja\n";
    let mut flagging = Damaged::new(Profile::rabbitmq(), |e| match e.as_mut_slice() {
        [Event::Reply { reply: Reply::GetOk { redelivered, .. }, .. }] => {
            *redelivered = true;
            true
        }
        _ => false,
    });
    let verdict = replay(&parse(unflagged, "flag.trace").unwrap(), Profile::rabbitmq(), &mut flagging);
    assert!(matches!(verdict, Verdict::Diverged { line: 5, .. }), "{verdict}");
}

/// A step after which something is on its way to a queue ends as soon as the model may be done:
/// a message published to a quorum queue with no consumer lands silently, so nothing is left to
/// listen for (the runner does not wait out its timeout); with a consumer on the queue, the
/// delivery that follows the landing is owed, and the runner listens for it.
#[test]
fn a_silent_landing_leaves_nothing_to_listen_for() {
    use amqp_conformance::validate::Validator;
    use amqp_model::{ChanRef, ConnId, Name, Table, Value};
    let ch = ChanRef::new(1, 1);
    let mut v = Validator::new(Profile::rabbitmq());
    v.command(&Command::ConnectionOpen { conn: ConnId(1) }, &[Event::ConnectionOpenOk { conn: ConnId(1) }]).unwrap();
    v.command(&Command::ChannelOpen { ch }, &[Event::ChannelOpenOk { ch }]).unwrap();
    let arguments: Table = [(Name::from("x-queue-type"), Value::Str("quorum".into()))].into();
    let declare = Command::QueueDeclare {
        ch,
        queue: "q".into(),
        passive: false,
        durable: true,
        exclusive: false,
        auto_delete: false,
        arguments,
    };
    let ok = Reply::QueueDeclareOk { queue: "q".into(), message_count: 0, consumer_count: 0 };
    v.command(&declare, &[Event::Reply { ch, reply: ok }]).unwrap();
    let publish = Command::BasicPublish {
        ch,
        exchange: "".into(),
        routing_key: "q".into(),
        mandatory: false,
        content: amqp_model::Content::text("m"),
    };
    let mut alone = v.clone();
    alone.command(&publish, &[]).unwrap();
    assert!(alone.settled(), "a landing nobody sees needs no listening");
    let consume = Command::BasicConsume {
        ch,
        queue: "q".into(),
        consumer_tag: "k".into(),
        no_ack: false,
        exclusive: false,
        arguments: Table::new(),
    };
    v.command(&consume, &[Event::Reply { ch, reply: Reply::ConsumeOk { consumer_tag: "k".into() } }]).unwrap();
    v.command(&publish, &[]).unwrap();
    assert!(!v.settled(), "the consumer is owed the message once it lands");
}
