//! Replaying a trace against a target and validating what it did.
//!
//! A [`Target`] performs commands and reports what it observed; [`replay`] feeds each step to
//! the [`Validator`] and checks the trace's `expect` lines, and ends every trace with a wait so
//! that missing deliveries are noticed. Variables (`$q`) are resolved separately for the target
//! (the names its broker generated) and for the model (the names the model generated).

use crate::target::live::LiveTarget;
use crate::target::model::ModelTarget;
use crate::target::raw::RawTarget;
use crate::target::{Hint, Listen, Summary, Target, TargetSpec};
use crate::trace::{write_event, write_expected, StepKind, Trace};
use crate::validate::{blank, Divergence, Validator};
use amqp_model::event::Reply;
use amqp_model::{Command, Event, Name, Profile};
use std::collections::BTreeMap;
use std::fmt;

/// The outcome of replaying one trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything the target did is a behaviour the model allows, and every expectation held.
    Pass,
    /// The target left the model's behaviours at this line.
    Diverged {
        /// The trace line.
        line: usize,
        /// What happened there.
        divergence: Box<Divergence>,
    },
    /// The model allowed what the target did, but an `expect` line was not among it.
    Unmet {
        /// The line of the `expect`.
        line: usize,
        /// The expectation: one of these events (one, unless the spec allows several answers).
        expected: Vec<Event>,
        /// What the step observed.
        observed: Vec<Event>,
    },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass => write!(f, "pass"),
            Verdict::Diverged { line, divergence } => write!(f, "line {line}: {divergence}"),
            Verdict::Unmet { line, expected, observed } => {
                writeln!(f, "line {line}: expected `{}`, but the step observed:", write_expected(expected))?;
                for e in observed {
                    writeln!(f, "  {}", write_event(e))?;
                }
                Ok(())
            }
        }
    }
}

/// What a step bound a capture to: the queue or consumer tag its reply names, or the direct
/// reply-to name (`amq.rabbitmq.reply-to.<key>`) a message it got carries as its `reply-to`.
fn generated_name(events: &[Event], command: &Command) -> Option<Name> {
    let ch = command.channel()?;
    events.iter().find_map(|e| match e {
        Event::Reply { ch: c, reply: Reply::QueueDeclareOk { queue, .. } } if *c == ch => Some(queue.clone()),
        Event::Reply { ch: c, reply: Reply::ConsumeOk { consumer_tag } } if *c == ch => Some(consumer_tag.clone()),
        Event::Reply { ch: c, reply: Reply::GetOk { message, .. } } | Event::Deliver { ch: c, message, .. }
            if *c == ch =>
        {
            let reply_to = message.0.content.properties.get("reply-to")?;
            reply_to.as_str().starts_with(amqp_model::basic::direct_reply::REPLY_PREFIX).then(|| reply_to.clone())
        }
        _ => None,
    })
}

/// Replace `$variables` in a written event with their values.
fn resolve_text(text: &str, vars: &BTreeMap<Name, Name>) -> String {
    text.split(' ')
        .map(|t| vars.get(t).map_or_else(|| t.to_string(), |v| crate::trace::token_of(v.as_str())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What one step of a trace observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The trace line of the step (of the last step for the runner's final wait).
    pub line: usize,
    /// The command, or None for a wait.
    pub command: Option<Command>,
    /// What the target did, in arrival order, with the trace's names.
    pub events: Vec<Event>,
}

/// A replayed trace: the verdict and what each step observed up to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    /// Pass, or where and how the target left the model.
    pub verdict: Verdict,
    /// Every step run, in order, the diverging one included.
    pub steps: Vec<Observation>,
}

/// Replay `trace` against `target`, validating under `profile`.
pub fn replay(trace: &Trace, profile: Profile, target: &mut dyn Target) -> Verdict {
    record(trace, profile, target).verdict
}

/// Observe one command step: perform it, then, while the model says the broker still owes
/// something (a delivery the command made possible), listen for it. The step's events are all
/// that arrived before the model was satisfied, or before the target stopped hearing anything.
///
/// `group` is the step's command for the model, after those sent before it unread (`pipelined`
/// steps, already given to the target, which observed `held` of them): all are judged as one.
fn command_step(
    validator: &mut Validator,
    target: &mut dyn Target,
    real: &Command,
    group: &[Command],
    held: Vec<Event>,
    next_on_same_channel: bool,
    start: Option<u64>,
) -> (Vec<Event>, Result<(), Box<Divergence>>) {
    let model = group.last().expect("a step has a command");
    // The checks that ask the broker again concern one command's own answer.
    let single = group.len() == 1;
    let hint = Hint { confirm: !next_on_same_channel || validator.may_answer(model) };
    let mut observed = held;
    observed.extend(target.command(real, hint));
    let mut retried = false;
    loop {
        // The step happened between its sending and now (`amqp_model::lifetime::clock`).
        if let (Some(start), Some(end)) = (start, target.elapsed()) {
            validator.window(start, end);
        }
        let mut trial = validator.clone();
        match trial.commands(group, &observed) {
            Ok(()) => {
                // Listen on while the model says the broker still owes something, or while
                // another answer the spec allows (a basic.cancel to another connection's
                // consumer, say) may still be on its way: what came may be its start.
                let owed = !trial.settled()
                    || group.iter().any(|c| validator.has_choices(c))
                        && validator.may_explain_with_more(group, &observed);
                let more = if owed { target.listen(Listen::Expecting) } else { Vec::new() };
                if more.is_empty() {
                    *validator = trial;
                    return (observed, Ok(()));
                }
                observed.extend(more);
            }
            Err(divergence) => {
                if let Some(fresh) = reread_counts(validator, target, real, model, &observed).filter(|_| single) {
                    observed = fresh;
                    continue;
                }
                if let Some(fresh) = recheck_late(validator, target, real, model, &observed).filter(|_| single) {
                    observed = fresh;
                    continue;
                }
                // The command's own events may not all have come yet (another connection's
                // socket, a slow network): while what came is the start of what the model
                // allows, wait for the rest, up to the timeout. Otherwise something else may
                // still be on its way that explains the step: listen once more, briefly.
                let more = if validator.may_explain_with_more(group, &observed) {
                    target.listen(Listen::Expecting)
                } else if retried {
                    Vec::new()
                } else {
                    retried = true;
                    target.listen(Listen::Tail)
                };
                if more.is_empty() {
                    return (observed, Err(divergence));
                }
                observed.extend(more);
            }
        }
    }
}

/// A `queue.declare` whose answer the model allows but for its counts: ask the target again,
/// for as long as it is patient, until an answer the model allows comes. A broker's count may
/// lag messages already on their way into the queue (RabbitMQ answers it first); one that
/// reports a wrong count for good still fails, with its first answer, once the target's
/// timeout has passed. Returns the step's events with the accepted answer in place of the first.
fn reread_counts(
    validator: &Validator,
    target: &mut dyn Target,
    real: &Command,
    model: &Command,
    observed: &[Event],
) -> Option<Vec<Event>> {
    let Command::QueueDeclare { ch, .. } = model else { return None };
    let answer = |e: &Event| matches!(e, Event::Reply { ch: c, reply: Reply::QueueDeclareOk { .. } } if c == ch);
    let at = observed.iter().position(answer)?;
    if !validator.explains_up_to_counts(model, observed) {
        return None;
    }
    loop {
        let fresh = target.reread(real)?;
        let [reply] = fresh.as_slice() else { return None };
        if !answer(reply) {
            return None;
        }
        let mut candidate = observed.to_vec();
        candidate[at] = reply.clone();
        if validator.clone().command(model, &candidate).is_ok() {
            return Some(candidate);
        }
    }
}

/// A declare whose answer the model allows only from a broker that has not yet made a deletion
/// it owed at the last `wait` ([`Validator::explains_late`]: an auto-delete exchange or a closed
/// connection's exclusive queue still there): ask the target again, with a passive declare, for as
/// long as it is patient, until the answer the model requires comes. A broker that never deletes
/// still fails, with its first answer, once the timeout has passed. Returns the step's events
/// with the accepted answer in place of the first.
fn recheck_late(
    validator: &Validator,
    target: &mut dyn Target,
    real: &Command,
    model: &Command,
    observed: &[Event],
) -> Option<Vec<Event>> {
    let (Command::ExchangeDeclare { ch, .. } | Command::QueueDeclare { ch, .. }) = model else { return None };
    let answer = |e: &Event| match e {
        Event::Reply { ch: c, reply: Reply::ExchangeDeclareOk | Reply::QueueDeclareOk { .. } } => c == ch,
        Event::ChannelClosed { ch: c, .. } => c == ch,
        _ => false,
    };
    let at = observed.iter().position(answer)?;
    if !validator.explains_late(model, observed) {
        return None;
    }
    loop {
        let fresh = target.recheck(real)?;
        let mut candidate = observed.to_vec();
        let was_open = !matches!(candidate[at], Event::ChannelClosed { .. });
        let closes = matches!(fresh, Event::ChannelClosed { .. });
        candidate[at] = fresh;
        // A channel the broker closed stays closed: only a close may replace a close.
        if (was_open || closes) && validator.clone().command(model, &candidate).is_ok() {
            if was_open && closes {
                target.forget_channel(*ch);
            }
            return Some(candidate);
        }
    }
}

/// Observe a wait: listen until the model can have nothing left to do, then for the grace
/// period; the model must then be quiescent.
fn wait_step(validator: &mut Validator, target: &mut dyn Target) -> (Vec<Event>, Result<(), Box<Divergence>>) {
    let mut observed = Vec::new();
    let start = target.elapsed();
    loop {
        if let (Some(start), Some(end)) = (start, target.elapsed()) {
            validator.window(start, end);
        }
        let mut trial = validator.clone();
        let how = match trial.wait(&observed) {
            Ok(()) => Listen::Tail,
            Err(divergence) => {
                let mut partial = validator.clone();
                if partial.observe(&observed).is_err() {
                    return (observed, Err(divergence));
                }
                Listen::Expecting
            }
        };
        let more = target.listen(how);
        if more.is_empty() {
            return match how {
                Listen::Tail => {
                    *validator = trial;
                    (observed, Ok(()))
                }
                Listen::Expecting => {
                    let result = validator.wait(&observed);
                    (observed, result)
                }
            };
        }
        observed.extend(more);
    }
}

/// Replay `trace` on a fresh target as `spec` describes it, validating under `profile`, and end
/// the target's session ([`Target::finish`]). On a broker, a trace that lapin cannot perform
/// whole (a frame it will not send) is replayed again over raw frames, and that run is the one
/// kept (unless the first had other problems, which are then reported).
pub fn record_on(spec: &TargetSpec, trace: &Trace, profile: Profile) -> (Recording, Summary) {
    match spec {
        TargetSpec::Model => {
            let mut model = ModelTarget::new(profile, amqp_model::Faults::NONE);
            let recording = record(trace, profile, &mut model);
            (recording, model.finish())
        }
        TargetSpec::Broker { uri, timing, restart } => {
            let mut live = LiveTarget::new(uri, *timing).with_restart(restart.clone());
            let recording = record(trace, profile, &mut live);
            let summary = live.finish();
            if !(summary.needs_raw && summary.problems.is_empty()) {
                return (recording, summary);
            }
            let mut raw = RawTarget::new(uri, *timing);
            let recording = record(trace, profile, &mut raw);
            // The live run's notes stay: they may explain what made it stop; so does why it needed
            // the raw target, when that cannot perform the trace either.
            let raw_summary = raw.finish();
            let incomplete = raw_summary.incomplete.map(|why| match &summary.incomplete {
                Some(live) => format!("{live}, and {why}"),
                None => why,
            });
            (recording, Summary { notes: summary.notes, incomplete, ..raw_summary })
        }
    }
}

/// Replay `trace` against `target`, validating under `profile`, and keep what every step
/// observed.
pub fn record(trace: &Trace, profile: Profile, target: &mut dyn Target) -> Recording {
    let mut validator = Validator::new(profile);
    if !target.sees_cancel_order() {
        validator.cancels_apart();
    }
    let mut real: BTreeMap<Name, Name> = BTreeMap::new();
    let mut model: BTreeMap<Name, Name> = BTreeMap::new();
    let mut steps: Vec<Observation> = Vec::new();
    let lookup = |vars: &BTreeMap<Name, Name>, n: &Name| vars.get(n).cloned().unwrap_or_else(|| n.clone());
    let done = |verdict, steps| Recording { verdict, steps };
    let mut end = 0;
    // Commands sent with the next one following unread (`pipelined`): the model's, with their
    // captures, what the target observed of them, and when the first went out.
    let mut group: Vec<(Command, Option<Name>, Command)> = Vec::new();
    let mut held: Vec<Event> = Vec::new();
    let mut group_start = None;
    for (i, step) in trace.steps.iter().enumerate() {
        end = step.line;
        match &step.kind {
            StepKind::Command { command, capture } => {
                let real_command = command.map_names(|n| lookup(&real, n));
                let model_command = command.map_names(|n| lookup(&model, n));
                if group.is_empty() {
                    group_start = target.elapsed();
                }
                if trace.steps.get(i + 1).is_some_and(|s| s.pipelined) {
                    held.extend(target.pipeline(&real_command));
                    group.push((model_command, capture.clone(), command.clone()));
                    steps.push(Observation { line: step.line, command: Some(command.clone()), events: Vec::new() });
                    continue;
                }
                let next = trace.steps[i + 1..].iter().find(|s| !matches!(s.kind, StepKind::Expect(_)));
                let same = next.is_some_and(|s| match &s.kind {
                    StepKind::Command { command: c, .. } => c.channel().is_some() && c.channel() == command.channel(),
                    _ => false,
                });
                group.push((model_command, capture.clone(), command.clone()));
                let models: Vec<Command> = group.iter().map(|(m, _, _)| m.clone()).collect();
                let (observed, result) = command_step(
                    &mut validator,
                    target,
                    &real_command,
                    &models,
                    std::mem::take(&mut held),
                    same,
                    group_start,
                );
                steps.push(Observation { line: step.line, command: Some(command.clone()), events: observed });
                if let Err(divergence) = result {
                    return done(Verdict::Diverged { line: step.line, divergence }, steps);
                }
                let observed = &steps.last().expect("just pushed").events;
                for (_, capture, command) in std::mem::take(&mut group) {
                    if let (Some(var), Some(name)) = (capture, generated_name(observed, &command)) {
                        let model_name = validator.model_name(&name).cloned().unwrap_or_else(|| name.clone());
                        real.insert(var.clone(), name);
                        model.insert(var, model_name);
                    }
                }
            }
            StepKind::Wait => {
                let (observed, result) = wait_step(&mut validator, target);
                steps.push(Observation { line: step.line, command: None, events: observed });
                if let Err(divergence) = result {
                    return done(Verdict::Diverged { line: step.line, divergence }, steps);
                }
            }
            StepKind::Expect(expected) => {
                let last = steps.last().map(|o| o.events.as_slice()).unwrap_or_default();
                let want: Vec<String> = expected.iter().map(|e| resolve_text(&write_event(&blank(e)), &real)).collect();
                if !last.iter().any(|e| want.contains(&write_event(&blank(e)))) {
                    let verdict =
                        Verdict::Unmet { line: step.line, expected: expected.clone(), observed: last.to_vec() };
                    return done(verdict, steps);
                }
            }
        }
    }
    let (observed, result) = wait_step(&mut validator, target);
    steps.push(Observation { line: end, command: None, events: observed });
    match result {
        Ok(()) => done(Verdict::Pass, steps),
        Err(divergence) => done(Verdict::Diverged { line: end, divergence }, steps),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::model::ModelTarget;
    use crate::trace::parse;
    use amqp_model::Faults;

    /// The model as a target, except that every `queue.declare-ok` first reports one message
    /// fewer, and then `lag` more answers the same when asked again (a broker whose count lags
    /// what is on its way into the queue; `u32::MAX`: one whose count is wrong for good).
    struct Lagging {
        model: ModelTarget,
        lag: u32,
        asked: u32,
        rereads: u32,
    }

    fn short(events: Vec<Event>) -> Vec<Event> {
        events
            .into_iter()
            .map(|e| match e {
                Event::Reply { ch, reply: Reply::QueueDeclareOk { queue, message_count, consumer_count } } => {
                    let message_count = message_count.saturating_sub(1);
                    Event::Reply { ch, reply: Reply::QueueDeclareOk { queue, message_count, consumer_count } }
                }
                other => other,
            })
            .collect()
    }

    impl Target for Lagging {
        fn command(&mut self, command: &Command, hint: Hint) -> Vec<Event> {
            self.asked = 0;
            short(self.model.command(command, hint))
        }
        fn listen(&mut self, how: Listen) -> Vec<Event> {
            self.model.listen(how)
        }
        fn reread(&mut self, command: &Command) -> Option<Vec<Event>> {
            let Command::QueueDeclare { ch, queue, .. } = command else { return None };
            if self.asked == 5 {
                return None; // the target's patience
            }
            self.asked += 1;
            self.rereads += 1;
            let passive = Command::QueueDeclare {
                ch: *ch,
                queue: queue.clone(),
                passive: true,
                durable: false,
                exclusive: false,
                auto_delete: false,
                arguments: Default::default(),
            };
            let events = self.model.command(&passive, Hint::CONFIRM);
            Some(if self.asked <= self.lag { short(events) } else { events })
        }
    }

    const TRACE: &str = "c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare q\n\
        c1.1 basic.publish \"\" q m1\nc1.1 queue.declare q passive\nexpect c1.1 queue.declare-ok q 1 0\n";

    fn replay_lagging(lag: u32) -> (Verdict, u32) {
        let trace = parse(TRACE, "lag.trace").expect("parses");
        let model = ModelTarget::new(Profile::rabbitmq(), Faults::NONE);
        let mut target = Lagging { model, lag, asked: 0, rereads: 0 };
        (replay(&trace, Profile::rabbitmq(), &mut target), target.rereads)
    }

    #[test]
    fn a_count_that_lags_is_asked_for_again_until_it_is_right() {
        assert_eq!(replay_lagging(0), (Verdict::Pass, 1));
        assert_eq!(replay_lagging(3), (Verdict::Pass, 4));
    }

    #[test]
    fn a_count_that_stays_wrong_fails_with_its_first_answer() {
        let (verdict, rereads) = replay_lagging(u32::MAX);
        assert_eq!(rereads, 5, "asked until the target's patience ran out");
        let Verdict::Diverged { line: 5, divergence } = verdict else { panic!("{verdict}") };
        assert!(divergence.to_string().contains("queue.declare-ok q 0 0"), "{divergence}");
    }

    /// The model as a target, except that events on other connections than the command's come
    /// late: after the grace period of a `Tail` listen, within an `Expecting` one.
    struct Late {
        model: ModelTarget,
        held: Vec<Event>,
    }

    impl Target for Late {
        fn command(&mut self, command: &Command, hint: Hint) -> Vec<Event> {
            let conn = command.connection();
            let (now, later): (Vec<Event>, Vec<Event>) =
                self.model.command(command, hint).into_iter().partition(|e| Some(e.connection()) == conn);
            self.held.extend(later);
            now
        }
        fn listen(&mut self, how: Listen) -> Vec<Event> {
            let mut events = self.model.listen(how);
            if how == Listen::Expecting {
                events.extend(std::mem::take(&mut self.held));
            }
            events
        }
    }

    #[test]
    fn events_of_a_command_on_another_connection_are_waited_for() {
        let text = "c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare q\nc2 connection.open\n\
            c2.1 channel.open\nc2.1 basic.consume q t\nc1.1 queue.delete q\nexpect c2.1 basic.cancel t\n";
        let trace = parse(text, "late.trace").expect("parses");
        let model = ModelTarget::new(Profile::rabbitmq(), Faults::NONE);
        let mut target = Late { model, held: Vec::new() };
        assert_eq!(replay(&trace, Profile::rabbitmq(), &mut target), Verdict::Pass);
    }

    /// Under the spec the consumer may be told or not: a broker that tells it late is judged
    /// on the answer it gave (the cancel is listened for once the delete-ok is explained without
    /// it), not failed at the next step.
    #[test]
    fn a_longer_allowed_answer_is_waited_for_when_a_shorter_one_already_explains() {
        let text = "c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare q\nc2 connection.open\n\
            c2.1 channel.open\nc2.1 basic.consume q t\nc1.1 queue.delete q\nc2.1 basic.cancel t\n\
            expect c2.1 basic.cancel-ok t\n";
        let trace = parse(text, "late.trace").expect("parses");
        let model = ModelTarget::new(Profile::spec(), Faults::NONE);
        let mut target = Late { model, held: Vec::new() };
        let recording = record(&trace, Profile::spec(), &mut target);
        assert_eq!(recording.verdict, Verdict::Pass);
        let delete = &recording.steps[6];
        assert!(delete.events.iter().any(|e| matches!(e, Event::Cancel { .. })), "{:?}", delete.events);
    }

    /// The model as a target that cannot hold a command back: it reads the broker's answers
    /// before it sends the next one (what the trait's `pipeline` does unless a target says
    /// otherwise), so a pipelined close comes after the broker's close was answered.
    struct Reading(ModelTarget);

    impl Target for Reading {
        fn command(&mut self, command: &Command, hint: Hint) -> Vec<Event> {
            self.0.command(command, hint)
        }
        fn listen(&mut self, how: Listen) -> Vec<Event> {
            self.0.listen(how)
        }
    }

    const CROSSING: &str = "c1 connection.open\nc1.1 channel.open\nc1.1 basic.publish nowhere k m1\n\
        pipelined c1.1 channel.close\nexpect c1.1 channel.close-ok\nc1.1 channel.open\n";

    #[test]
    fn pipelined_commands_are_judged_as_one_step() {
        let trace = parse(CROSSING, "crossing.trace").expect("parses");
        for profile in [Profile::spec(), Profile::rabbitmq()] {
            let mut model = ModelTarget::new(profile, Faults::NONE);
            let recording = record(&trace, profile, &mut model);
            assert_eq!(recording.verdict, Verdict::Pass);
            // The publish's step observed nothing: its close came with the close-ok.
            assert_eq!(recording.steps[2].events, vec![]);
            let close = &recording.steps[3].events;
            assert!(matches!(close[..], [Event::ChannelClosed { .. }, Event::ChannelCloseOk { .. }]), "{close:?}");
        }
    }

    #[test]
    fn a_close_sent_after_the_brokers_was_read_is_not_a_crossing_one() {
        let trace = parse(CROSSING, "crossing.trace").expect("parses");
        let mut target = Reading(ModelTarget::new(Profile::spec(), Faults::NONE));
        let Verdict::Diverged { line: 4, divergence } = replay(&trace, Profile::spec(), &mut target) else {
            panic!("the 504 of a close on a channel no longer open is not a crossing close's answer")
        };
        assert!(divergence.to_string().contains("c1 closed 504 channel.close"), "{divergence}");
    }

    #[test]
    fn a_count_the_model_allows_is_not_asked_for_again() {
        let trace = parse("c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare q\n", "t").expect("parses");
        let model = ModelTarget::new(Profile::rabbitmq(), Faults::NONE);
        let mut target = Lagging { model, lag: 0, asked: 0, rereads: 0 };
        assert_eq!(replay(&trace, Profile::rabbitmq(), &mut target), Verdict::Pass);
        assert_eq!(target.rereads, 0);
    }
}
