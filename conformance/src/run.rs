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

/// Something a trace can be run against.
pub trait Target {
    /// Perform a command (its variables already replaced by this target's names) and return
    /// everything observed until its reply (or, for commands without one, until the target
    /// judges the broker has acted on it), in arrival order.
    fn command(&mut self, command: &Command) -> Vec<Event>;
    /// Give the broker time to finish what it may still do, and return what it did.
    fn wait(&mut self) -> Vec<Event>;
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
    fn command(&mut self, command: &Command) -> Vec<Event> {
        let mut events = self.broker.apply(command).unwrap_or_default();
        events.extend(self.broker.settle_internal());
        events.iter().map(blank).collect()
    }

    fn wait(&mut self) -> Vec<Event> {
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

/// Replay `trace` against `target`, validating under `profile`.
pub fn replay(trace: &Trace, profile: Profile, target: &mut dyn Target) -> Verdict {
    let mut validator = Validator::new(profile);
    let mut real: BTreeMap<Name, Name> = BTreeMap::new();
    let mut model: BTreeMap<Name, Name> = BTreeMap::new();
    let mut last: Vec<Event> = Vec::new();
    let lookup = |vars: &BTreeMap<Name, Name>, n: &Name| vars.get(n).cloned().unwrap_or_else(|| n.clone());
    let mut end = 0;
    for step in &trace.steps {
        end = step.line;
        match &step.kind {
            StepKind::Command { command, capture } => {
                let observed = target.command(&command.map_names(|n| lookup(&real, n)));
                let model_command = command.map_names(|n| lookup(&model, n));
                if let Err(divergence) = validator.command(&model_command, &observed) {
                    return Verdict::Diverged { line: step.line, divergence };
                }
                if let (Some(var), Some(name)) = (capture, generated_name(&observed, command)) {
                    let model_name = validator.model_name(&name).cloned().unwrap_or_else(|| name.clone());
                    real.insert(var.clone(), name);
                    model.insert(var.clone(), model_name);
                }
                last = observed;
            }
            StepKind::Wait => {
                let observed = target.wait();
                if let Err(divergence) = validator.wait(&observed) {
                    return Verdict::Diverged { line: step.line, divergence };
                }
                last = observed;
            }
            StepKind::Expect(expected) => {
                let want = resolve_text(&write_event(&blank(expected)), &real);
                if !last.iter().any(|e| write_event(&blank(e)) == want) {
                    return Verdict::Unmet { line: step.line, expected: expected.clone(), observed: last.clone() };
                }
            }
        }
    }
    let observed = target.wait();
    match validator.wait(&observed) {
        Ok(()) => Verdict::Pass,
        Err(divergence) => Verdict::Diverged { line: end, divergence },
    }
}
