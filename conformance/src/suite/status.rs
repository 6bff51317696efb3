//! How one trace came out: a [`Status`], and for a failure the typed [`Failure`] (the line, what
//! the broker did there and what else the session noted), kept as values until a report renders
//! them ([`Failure::detail`], [`Status::detail`]).

use crate::run::Verdict;
use crate::target::{Problem, Summary};
use crate::trace::{write_event, write_expected};
use crate::validate::Divergence;
use amqp_model::Event;
use std::fmt;

/// How one trace came out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// The target did what the model allows, and every `expect` held.
    Pass,
    /// The target left the model (or missed an `expect`).
    Fail(Failure),
    /// Failed (or went wrong, or passed this time), as the deviations file says this broker does.
    Known {
        /// What was seen before the deviations file was read: a [`Status::Fail`], a
        /// [`Status::Error`], or a [`Status::Pass`] of an intermittent deviation.
        seen: Box<Status>,
        /// The rule the deviations file names.
        rule: String,
        /// Why, as the deviations file says.
        reason: String,
    },
    /// Failed a trace that checks only what a SHOULD rule recommends (its `recommends:` line),
    /// under the `spec` profile: the target departs from a recommendation, as the specification
    /// lets a server with a reason do. Reported, but not a failure of conformance.
    Departs {
        /// Where and how it failed.
        failure: Failure,
        /// The rule whose recommendation it does not follow.
        rule: String,
    },
    /// Listed in the deviations file, but passed: the entry may be out of date (or the broker
    /// shows the deviation only sometimes, e.g. when it depends on timing). A warning: it does
    /// not make the run non-conformant.
    Stale {
        /// The rule the deviations file names.
        rule: String,
    },
    /// Not run, or run without a verdict about the broker (a step the target cannot perform).
    Skip {
        /// Why.
        reason: String,
    },
    /// The run itself went wrong: cleanup failed, the broker stopped answering, a restart
    /// command failed. The trace says nothing about conformance; the run is not conformant
    /// either (exit 1), since the broker did not answer as it must.
    Error {
        /// What went wrong, each naming the connection, command or name at fault.
        problems: Vec<Problem>,
        /// What was noticed after (the broker stopped answering after the trace).
        notes: Vec<String>,
    },
}

/// Where and how a target left the model, with what else its session noted: the report's
/// `FAIL` (or, listed in the deviations file, its `known`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The trace line.
    pub line: usize,
    /// What the target did there.
    pub finding: Finding,
    /// What went wrong besides (a timeout, a failed cleanup), told beside the finding.
    pub problems: Vec<Problem>,
    /// What may help read it: a close that followed a method the target did not confirm, a
    /// broker that stopped answering after the trace.
    pub notes: Vec<String>,
}

/// What a target did at a failing line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Something the model does not allow.
    Diverged(Box<Divergence>),
    /// Something the model allows, but not what an `expect` line asks for.
    Unmet {
        /// The expectation: one of these events.
        expected: Vec<Event>,
        /// What the step observed.
        observed: Vec<Event>,
    },
}

impl fmt::Display for Finding {
    /// The verdict text, without the line (a report names it): what was observed and what the
    /// model allowed, over several lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Diverged(divergence) => write!(f, "{divergence}"),
            Finding::Unmet { expected, observed } => {
                writeln!(f, "expected `{}`, but the step observed:", write_expected(expected))?;
                for e in observed {
                    writeln!(f, "  {}", write_event(e))?;
                }
                Ok(())
            }
        }
    }
}

impl Failure {
    /// The failure of a verdict (None for a pass), before anything is noted beside it.
    pub fn of(verdict: &Verdict) -> Option<Failure> {
        let (line, finding) = match verdict {
            Verdict::Pass => return None,
            Verdict::Diverged { line, divergence } => (*line, Finding::Diverged(divergence.clone())),
            Verdict::Unmet { line, expected, observed } => {
                (*line, Finding::Unmet { expected: expected.clone(), observed: observed.clone() })
            }
        };
        Some(Failure { line, finding, problems: Vec::new(), notes: Vec::new() })
    }

    /// The text a report shows: the finding, then a `note: ` line for each problem and note.
    pub fn detail(&self) -> String {
        let mut out = self.finding.to_string();
        for n in self.problems.iter().map(ToString::to_string).chain(self.notes.iter().cloned()) {
            out += &format!("note: {n}\n");
        }
        out
    }
}

/// What a known deviation that passed this time says.
const PASSED_THIS_TIME: &str = "passed this time: the deviation shows only some of the time";

impl Status {
    /// Whether this outcome makes the run non-conformant.
    pub fn is_failure(&self) -> bool {
        matches!(self, Status::Fail(_) | Status::Error { .. })
    }

    /// The status as the JSON report writes it, all lower case: pass, fail, known, departs,
    /// stale, skip, error.
    pub fn key(&self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail(_) => "fail",
            Status::Known { .. } => "known",
            Status::Departs { .. } => "departs",
            Status::Stale { .. } => "stale",
            Status::Skip { .. } => "skip",
            Status::Error { .. } => "error",
        }
    }

    /// A one-word label, as a person reads it in a list of results (the two that make a run
    /// non-conformant stand out): pass, FAIL, known, departs, stale, skip, ERROR.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Fail(_) => "FAIL",
            Status::Error { .. } => "ERROR",
            other => other.key(),
        }
    }

    /// The failing line: a FAIL's, or a known deviation's that failed (None otherwise: a known
    /// deviation met after the trace's steps, or one that passed this time, has none).
    pub fn line(&self) -> Option<usize> {
        match self {
            Status::Fail(f) | Status::Departs { failure: f, .. } => Some(f.line),
            Status::Known { seen, .. } => seen.line(),
            _ => None,
        }
    }

    /// An ERROR's cause as one text: its problems, then its notes, each after a `; `.
    pub fn cause(problems: &[Problem], notes: &[String]) -> String {
        let mut out = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        for n in notes {
            out += &format!("; {n}");
        }
        out
    }

    /// What the report says beside the status: a FAIL's [`Failure::detail`], an ERROR's cause,
    /// a known deviation's as it was seen (for one that passed this time, that it did). None for
    /// the others.
    pub fn detail(&self) -> Option<String> {
        match self {
            Status::Fail(f) | Status::Departs { failure: f, .. } => Some(f.detail()),
            Status::Error { problems, notes } => Some(Status::cause(problems, notes)),
            Status::Known { seen, .. } => Some(seen.detail().unwrap_or_else(|| PASSED_THIS_TIME.to_string())),
            _ => None,
        }
    }

    /// Tell `note` beside the outcome: after a FAIL's finding, an ERROR's problems, or what a
    /// known deviation saw (an outcome without a detail has nowhere to tell it).
    pub fn add_note(&mut self, note: String) {
        match self {
            Status::Fail(f) | Status::Departs { failure: f, .. } => f.notes.push(note),
            Status::Error { notes, .. } => notes.push(note),
            Status::Known { seen, .. } => seen.add_note(note),
            _ => {}
        }
    }

    /// A failure of a trace that `recommends:` a rule, judged under the `spec` profile, as a
    /// departure from that recommendation where it is one: an `expect` the target missed while
    /// doing what the model allows (it took another answer the text leaves it), or a refusal
    /// (a channel or connection close naming the method) of a command of the method the rule
    /// belongs to, not passive (a `queue.declare` creating a queue, for `queue declare
    /// minimum-queues`: a refusal the rule's SHOULD lets a server make). Anything else the
    /// target did that the model does not allow (no answer, another answer, a close at another
    /// method) is still a failure, and so is every other status.
    pub(crate) fn recommended(self, recommends: Option<&str>, profile: amqp_model::ProfileName) -> Status {
        use amqp_model::{Command, Event};
        let departs = |failure: &Failure, rule: &str| match &failure.finding {
            Finding::Unmet { .. } => true,
            Finding::Diverged(d) => d.command.as_ref().is_some_and(|c| {
                let rule_method = rule.split(' ').take(2).collect::<Vec<_>>().join(".");
                let passive = matches!(
                    c,
                    Command::QueueDeclare { passive: true, .. } | Command::ExchangeDeclare { passive: true, .. }
                );
                let refused = d.observed.iter().any(|e| match e {
                    Event::ChannelClosed { method, .. } => Some(*method) == c.method(),
                    Event::ConnectionClosed { method, .. } => *method == c.method(),
                    _ => false,
                });
                c.method().map(amqp_model::Method::name) == Some(rule_method.as_str()) && !passive && refused
            }),
        };
        match (self, recommends) {
            (Status::Fail(failure), Some(rule))
                if profile == amqp_model::ProfileName::Spec && departs(&failure, rule) =>
            {
                Status::Departs { failure, rule: rule.to_string() }
            }
            (other, _) => other,
        }
    }

    /// How a trace came out, from its verdict and its target's session: a failure is the
    /// target's answer, with what else went wrong told beside it; otherwise a problem (timeout,
    /// cleanup, restart command) makes it an error, and a trace the target could not perform
    /// whole is skipped. (The model's session has nothing to say: its status is its verdict's.)
    pub(crate) fn of_session(verdict: &Verdict, summary: &Summary) -> Status {
        let Summary { incomplete, problems, notes, .. } = summary;
        match (incomplete, Failure::of(verdict)) {
            (Some(why), _) if problems.is_empty() => Status::Skip { reason: why.clone() },
            (_, Some(mut failure)) => {
                failure.problems = problems.clone();
                failure.notes = notes.clone();
                Status::Fail(failure)
            }
            (_, None) if !problems.is_empty() => Status::Error { problems: problems.clone(), notes: Vec::new() },
            (_, None) => Status::Pass,
        }
    }
}

#[cfg(test)]
impl Failure {
    /// For tests: at `line`, after `command` (as a trace writes it, on connection `c1` and channel
    /// `c1.1`, which the helper opens first) the broker did `observed` where the model allowed
    /// `allowed` (events as `expect` lines write them).
    pub(crate) fn diverged(line: usize, command: &str, observed: &[&str], allowed: &[&str]) -> Failure {
        use crate::trace::{parse, parse_event, StepKind};
        let trace = parse(&format!("c1 connection.open\nc1.1 channel.open\n{command}\n"), "test.trace")
            .unwrap_or_else(|e| panic!("{command}: {e}"));
        let Some(StepKind::Command { command, .. }) = trace.steps.last().map(|s| &s.kind) else {
            panic!("{command}: not a command")
        };
        let events =
            |lines: &[&str]| lines.iter().map(|l| parse_event(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect();
        let divergence =
            Divergence { command: Some(command.clone()), observed: events(observed), allowed: vec![events(allowed)] };
        Failure { line, finding: Finding::Diverged(Box::new(divergence)), problems: Vec::new(), notes: Vec::new() }
    }
}
