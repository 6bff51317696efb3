//! Running many traces: finding them, replaying each against a fresh target (in parallel with
//! `jobs`), and collecting one [`TraceResult`] per trace for the reports.
//!
//! Traces with a `restart` step restart the whole broker, so they never run beside another: they
//! are run after the others, one at a time.

use crate::run::{record, ModelTarget, Recording, Verdict};
use crate::trace::{parse, Trace};
use amqp_model::{Command, Faults, Profile, ProfileName};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// What a suite runs against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetSpec {
    /// The model itself (dispatching eagerly).
    Model,
    /// A live broker.
    Broker {
        /// Its AMQP URI (with the password: never print it, see [`crate::live::redact`]).
        uri: String,
        /// Timeouts and grace periods.
        timing: crate::live::Timing,
        /// The command that restarts it, if any.
        restart_cmd: Option<String>,
    },
}

impl TargetSpec {
    /// How reports name the target: `model`, or the broker's URI without its password.
    pub fn label(&self) -> String {
        match self {
            TargetSpec::Model => "model".into(),
            TargetSpec::Broker { uri, .. } => crate::live::redact(uri),
        }
    }
}

/// How one trace came out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// The target did what the model allows, and every `expect` held.
    Pass,
    /// The target left the model (or missed an `expect`) at `line`.
    Fail {
        /// The trace line.
        line: usize,
        /// The verdict, as the runner prints it: what was observed and what the model allowed.
        detail: String,
    },
    /// Failed, as the deviations file says this broker does.
    Known {
        /// The trace line.
        line: usize,
        /// The verdict text.
        detail: String,
        /// The rule the deviations file names.
        rule: String,
        /// Why, as the deviations file says.
        reason: String,
    },
    /// Listed in the deviations file, but passed: the entry is out of date.
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
        /// What went wrong, naming the connection, command or name at fault.
        cause: String,
    },
}

impl Status {
    /// Whether this outcome makes the run non-conformant.
    pub fn is_failure(&self) -> bool {
        matches!(self, Status::Fail { .. } | Status::Stale { .. } | Status::Error { .. })
    }

    /// A one-word label: pass, FAIL, known, STALE, skip, ERROR.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail { .. } => "FAIL",
            Status::Known { .. } => "known",
            Status::Stale { .. } => "STALE",
            Status::Skip { .. } => "skip",
            Status::Error { .. } => "ERROR",
        }
    }
}

/// The outcome of one trace.
#[derive(Clone, Debug)]
pub struct TraceResult {
    /// The trace file, as found (relative to where the run started when given so).
    pub file: String,
    /// Its `title:`.
    pub title: Option<String>,
    /// Its `cite:` lines.
    pub cites: Vec<String>,
    /// How it came out.
    pub status: Status,
    /// How long it took (replay and cleanup).
    pub duration: Duration,
    /// What each step observed (None when it was not run).
    pub recording: Option<Recording>,
}

/// A whole run: every trace's result, in the order the traces were given.
#[derive(Clone, Debug)]
pub struct SuiteRun {
    /// The target's label (never with a password).
    pub target: String,
    /// The profile the traces were validated against.
    pub profile: ProfileName,
    /// One per trace, in input order.
    pub results: Vec<TraceResult>,
    /// Wall-clock time of the whole run.
    pub elapsed: Duration,
}

impl SuiteRun {
    /// How many results have each status label, in the order pass, FAIL, known, STALE, skip,
    /// ERROR.
    pub fn counts(&self) -> [(&'static str, usize); 6] {
        let mut out = [("pass", 0), ("FAIL", 0), ("known", 0), ("STALE", 0), ("skip", 0), ("ERROR", 0)];
        for r in &self.results {
            if let Some(slot) = out.iter_mut().find(|(l, _)| *l == r.status.label()) {
                slot.1 += 1;
            }
        }
        out
    }

    /// Whether the target conformed: no failure, stale deviation or error.
    pub fn conformant(&self) -> bool {
        !self.results.iter().any(|r| r.status.is_failure())
    }
}
