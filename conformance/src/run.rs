//! Replaying a trace against a target and validating what it did.
//!
//! A [`Target`] performs commands and reports what it observed; [`replay`] feeds each step to
//! the [`Validator`] and checks the trace's `expect` lines, and ends every trace with a wait so
//! that missing deliveries are noticed. Variables (`$q`) are resolved separately for the target
//! (the names its broker generated) and for the model (the names the model generated).

use crate::trace::{write_event, StepKind, Trace};
use crate::validate::{blank, Divergence, Validator};
use amqp_model::event::Reply;
use amqp_model::{Broker, Command, Event, Faults, Name, Profile};
use std::collections::BTreeMap;
use std::fmt;

/// How long [`Target::listen`] listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    /// The model says the broker still has something to do (a delivery it owes): return as soon
    /// as anything arrives, or empty-handed after the target's timeout.
    Expecting,
    /// The model says the broker may be done: gather whatever else arrives during the target's
    /// grace period (a duplicate, a delivery the model does not allow).
    Tail,
}

/// What the runner tells a target about a command, from the model and the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hint {
    /// The target must know the broker has acted on the command before it returns, even if the
    /// command has no reply (`basic.publish`, `basic.ack`...): the model says it may answer
    /// (a channel close, a returned message), or the next step is on another channel or a wait,
    /// and must come after it. When false, the next step is on the same channel, where AMQP
    /// keeps the order, and the model expects no answer.
    pub confirm: bool,
}

impl Hint {
    /// Always confirm (what a target does without a hint).
    pub const CONFIRM: Hint = Hint { confirm: true };
}

/// Something a trace can be run against.
pub trait Target {
    /// Perform a command (its variables already replaced by this target's names) and return
    /// everything observed until its reply (or, for commands without one, until the target
    /// knows the broker has acted on it, as `hint` asks), in arrival order.
    fn command(&mut self, command: &Command, hint: Hint) -> Vec<Event>;
    /// Listen for what the broker does on its own (deliveries, confirms, server closes).
    fn listen(&mut self, how: Listen) -> Vec<Event>;
}

/// The model itself as a target: it takes its own internal steps eagerly (round robin under
/// `rabbitmq`), a broker that dispatches as soon as it can.
#[derive(Debug)]
pub struct ModelTarget {
    broker: Broker,
}

impl ModelTarget {
    /// A fresh model broker under `profile`, with deliberate `faults` (none for the real model).
    pub fn new(profile: Profile, faults: Faults) -> Self {
        ModelTarget { broker: Broker::with_faults(profile, faults) }
    }
}

impl Target for ModelTarget {
    fn command(&mut self, command: &Command, _: Hint) -> Vec<Event> {
        let mut events = self.broker.apply(command).unwrap_or_default();
        events.extend(self.broker.settle_internal());
        events.iter().map(blank).collect()
    }

    fn listen(&mut self, _: Listen) -> Vec<Event> {
        self.broker.settle_internal().iter().map(blank).collect()
    }
}

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
        /// The expectation.
        expected: Event,
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
                writeln!(f, "line {line}: expected `{}`, but the step observed:", write_event(expected))?;
                for e in observed {
                    writeln!(f, "  {}", write_event(e))?;
                }
                Ok(())
            }
        }
    }
}

/// What a step bound a capture to: the queue or consumer tag its reply names.
fn generated_name(events: &[Event], command: &Command) -> Option<Name> {
    let ch = command.channel()?;
    events.iter().find_map(|e| match e {
        Event::Reply { ch: c, reply: Reply::QueueDeclareOk { queue, .. } } if *c == ch => Some(queue.clone()),
        Event::Reply { ch: c, reply: Reply::ConsumeOk { consumer_tag } } if *c == ch => Some(consumer_tag.clone()),
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
fn command_step(
    validator: &mut Validator,
    target: &mut dyn Target,
    real: &Command,
    model: &Command,
    next_on_same_channel: bool,
) -> (Vec<Event>, Result<(), Box<Divergence>>) {
    let hint = Hint { confirm: !next_on_same_channel || validator.may_answer(model) };
    let mut observed = target.command(real, hint);
    let mut retried = false;
    loop {
        let mut trial = validator.clone();
        match trial.command(model, &observed) {
            Ok(()) => {
                let more = if trial.settled() { Vec::new() } else { target.listen(Listen::Expecting) };
                if more.is_empty() {
                    *validator = trial;
                    return (observed, Ok(()));
                }
                observed.extend(more);
            }
            Err(divergence) => {
                // Something may still be on its way that explains the step: listen once more.
                let more = if retried { Vec::new() } else { target.listen(Listen::Tail) };
                retried = true;
                if more.is_empty() {
                    return (observed, Err(divergence));
                }
                observed.extend(more);
            }
        }
    }
}

/// Observe a wait: listen until the model can have nothing left to do, then for the grace
/// period; the model must then be quiescent.
fn wait_step(validator: &mut Validator, target: &mut dyn Target) -> (Vec<Event>, Result<(), Box<Divergence>>) {
    let mut observed = Vec::new();
    loop {
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

/// Replay `trace` against `target`, validating under `profile`, and keep what every step
/// observed.
pub fn record(trace: &Trace, profile: Profile, target: &mut dyn Target) -> Recording {
    let mut validator = Validator::new(profile);
    let mut real: BTreeMap<Name, Name> = BTreeMap::new();
    let mut model: BTreeMap<Name, Name> = BTreeMap::new();
    let mut steps: Vec<Observation> = Vec::new();
    let lookup = |vars: &BTreeMap<Name, Name>, n: &Name| vars.get(n).cloned().unwrap_or_else(|| n.clone());
    let done = |verdict, steps| Recording { verdict, steps };
    let mut end = 0;
    for (i, step) in trace.steps.iter().enumerate() {
        end = step.line;
        match &step.kind {
            StepKind::Command { command, capture } => {
                let real_command = command.map_names(|n| lookup(&real, n));
                let model_command = command.map_names(|n| lookup(&model, n));
                let next = trace.steps[i + 1..].iter().find(|s| !matches!(s.kind, StepKind::Expect(_)));
                let same = next.is_some_and(|s| match &s.kind {
                    StepKind::Command { command: c, .. } => c.channel().is_some() && c.channel() == command.channel(),
                    _ => false,
                });
                let (observed, result) = command_step(&mut validator, target, &real_command, &model_command, same);
                steps.push(Observation { line: step.line, command: Some(command.clone()), events: observed });
                if let Err(divergence) = result {
                    return done(Verdict::Diverged { line: step.line, divergence }, steps);
                }
                let observed = &steps.last().expect("just pushed").events;
                if let (Some(var), Some(name)) = (capture, generated_name(observed, command)) {
                    let model_name = validator.model_name(&name).cloned().unwrap_or_else(|| name.clone());
                    real.insert(var.clone(), name);
                    model.insert(var.clone(), model_name);
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
                let want = resolve_text(&write_event(&blank(expected)), &real);
                if !last.iter().any(|e| write_event(&blank(e)) == want) {
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
