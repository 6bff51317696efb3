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
        /// How it is restarted, if it can be.
        restart: Option<crate::restart::Restart>,
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
        /// What went wrong, naming the connection, command or name at fault.
        cause: String,
    },
}

impl Status {
    /// Whether this outcome makes the run non-conformant.
    pub fn is_failure(&self) -> bool {
        matches!(self, Status::Fail { .. } | Status::Error { .. })
    }

    /// A one-word label: pass, FAIL, known, stale, skip, ERROR.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail { .. } => "FAIL",
            Status::Known { .. } => "known",
            Status::Stale { .. } => "stale",
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
    /// Whether the broker stopped answering after this trace, and was not brought back: the
    /// traces not yet started are not run.
    pub broker_lost: bool,
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
    /// How many results have each status label, in the order pass, FAIL, known, stale, skip,
    /// ERROR.
    pub fn counts(&self) -> [(&'static str, usize); 6] {
        let mut out = [("pass", 0), ("FAIL", 0), ("known", 0), ("stale", 0), ("skip", 0), ("ERROR", 0)];
        for r in &self.results {
            if let Some(slot) = out.iter_mut().find(|(l, _)| *l == r.status.label()) {
                slot.1 += 1;
            }
        }
        out
    }

    /// Whether the target conformed: no failure or error.
    pub fn conformant(&self) -> bool {
        !self.results.iter().any(|r| r.status.is_failure())
    }
}

/// The trace files named by `paths`: a file is taken as it is, a directory is searched
/// (recursively, in name order) for `*.trace`, and a path containing `*`, `?` or `[` is a glob
/// (`fixtures/**/queue-*.trace`). Errors name the path.
pub fn find_traces(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    fn walk(path: &Path, named: bool, out: &mut Vec<PathBuf>) -> Result<(), String> {
        let err = |e: std::io::Error| format!("{}: {e}", path.display());
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(err)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(err)?;
            entries.sort();
            for e in entries {
                walk(&e, false, out)?;
            }
        } else if named || path.extension().is_some_and(|x| x == "trace") {
            std::fs::metadata(path).map_err(err)?;
            out.push(path.to_path_buf());
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        let text = p.to_string_lossy();
        if text.contains(['*', '?', '[']) {
            let matches = glob::glob(&text).map_err(|e| format!("{text}: bad glob pattern: {e}"))?;
            let before = out.len();
            for m in matches {
                walk(&m.map_err(|e| format!("{text}: {e}"))?, true, &mut out)?;
            }
            if out.len() == before {
                return Err(format!("{text}: no trace matches the pattern"));
            }
        } else {
            walk(p, true, &mut out)?;
        }
    }
    Ok(out)
}

/// Read and parse trace files; the first unreadable or malformed one is an error naming
/// `file:line`.
pub fn load(files: &[PathBuf]) -> Result<Vec<(String, Trace)>, String> {
    files
        .iter()
        .map(|f| {
            let name = f.display().to_string();
            let text = std::fs::read_to_string(f).map_err(|e| format!("{name}: {e}"))?;
            let trace = parse(&text, &name).map_err(|e| e.to_string())?;
            Ok((name, trace))
        })
        .collect()
}

/// Whether a trace restarts the broker (and so must run alone).
pub fn restarts(trace: &Trace) -> bool {
    trace.commands().any(|c| matches!(c, Command::Restart))
}

/// The verdict as a status: where it failed and the report's text.
fn status_of(verdict: &Verdict) -> Status {
    match verdict {
        Verdict::Pass => Status::Pass,
        Verdict::Diverged { line, divergence } => Status::Fail { line: *line, detail: divergence.to_string() },
        Verdict::Unmet { line, .. } => {
            let text = verdict.to_string();
            let detail = text.strip_prefix(&format!("line {line}: ")).unwrap_or(&text).to_string();
            Status::Fail { line: *line, detail }
        }
    }
}

/// How a trace run on a broker came out: a failure is the broker's answer, with what else went
/// wrong told as notes; otherwise a problem (timeout, cleanup, restart command) makes it an error,
/// and a trace the target could not perform whole is skipped.
fn broker_status(verdict: &Verdict, incomplete: Option<String>, problems: &[String], notes: &[String]) -> Status {
    match (incomplete, status_of(verdict)) {
        (Some(why), _) if problems.is_empty() => Status::Skip { reason: why },
        (_, Status::Fail { line, mut detail }) => {
            for n in problems.iter().chain(notes) {
                detail += &format!("note: {n}\n");
            }
            Status::Fail { line, detail }
        }
        (_, _) if !problems.is_empty() => Status::Error { cause: problems.join("; ") },
        (_, status) => status,
    }
}

impl TraceResult {
    /// The result of `trace` (from `file`) before it is run: `status`, nothing recorded.
    fn unrun(file: &str, trace: &Trace, status: Status) -> Self {
        TraceResult {
            file: file.to_string(),
            title: trace.title.clone(),
            cites: trace.cites.clone(),
            status,
            duration: Duration::ZERO,
            recording: None,
            broker_lost: false,
        }
    }
}

/// Replay one trace against a fresh target and judge it.
pub fn run_one(file: &str, trace: &Trace, target: &TargetSpec, profile: ProfileName) -> TraceResult {
    let started = Instant::now();
    let mut result = TraceResult::unrun(file, trace, Status::Pass);
    if let Some(only) = trace.profile.filter(|p| *p != profile) {
        result.status = Status::Skip { reason: format!("written for the {only} profile") };
        return result;
    }
    let model = Profile::named(profile);
    match target {
        TargetSpec::Model => {
            let recording = record(trace, model, &mut ModelTarget::new(model, Faults::NONE));
            result.status = status_of(&recording.verdict);
            result.recording = Some(recording);
        }
        TargetSpec::Broker { uri, timing, restart } => {
            let mut live = crate::live::LiveTarget::new(uri, *timing).with_restart(restart.clone());
            let recording = record(trace, model, &mut live);
            let cleanup = live.finish();
            let notes = live.notes().to_vec();
            let mut problems = live.problems().to_vec();
            problems.extend(cleanup.err());
            let (recording, incomplete, problems) = if live.raw_needed() && problems.is_empty() {
                // Frames lapin will not send: run the trace again, writing the frames ourselves.
                let mut raw = crate::raw::RawTarget::new(uri, *timing);
                let recording = record(trace, model, &mut raw);
                let cleanup = raw.finish();
                let mut problems = raw.problems().to_vec();
                problems.extend(cleanup.err());
                (recording, raw.incomplete().map(str::to_string), problems)
            } else {
                (recording, live.incomplete().map(str::to_string), problems)
            };
            result.status = broker_status(&recording.verdict, incomplete, &problems, &notes);
            result.recording = Some(recording);
            if result.status.is_failure() {
                result.broker_lost = check_broker(uri, timing, restart.as_ref(), &mut result.status);
            }
        }
    }
    result.duration = started.elapsed();
    result
}

/// After a failed trace, whether the broker still answers (see [`crate::live::responsive`]): if
/// not, it is restarted with the restart command when there is one. What happened is added to
/// the trace's status; the result is true when the broker is left not answering.
fn check_broker(
    uri: &str,
    timing: &crate::live::Timing,
    restart: Option<&crate::restart::Restart>,
    status: &mut Status,
) -> bool {
    let Err(why) = crate::live::responsive(uri, timing.timeout) else { return false };
    let (note, lost) = match restart {
        Some(restart) => match crate::restart::restart_broker(restart, uri, timing.timeout) {
            Ok(()) => (format!("after this trace the broker stopped answering ({why}); it was restarted"), false),
            Err(e) => {
                (format!("after this trace the broker stopped answering ({why}); restarting it failed: {e}"), true)
            }
        },
        None => (
            format!(
                "after this trace the broker stopped answering ({why}); the traces not yet started are not run \
                 (give --restart-cmd to have it restarted)"
            ),
            true,
        ),
    };
    match status {
        Status::Fail { detail, .. } | Status::Known { detail, .. } => *detail += &format!("note: {note}\n"),
        Status::Error { cause } => *cause += &format!("; {note}"),
        _ => {}
    }
    lost
}

/// Run `traces` against `target` under `profile`, `jobs` at a time (traces that restart the
/// broker run afterwards, alone). `classify` may turn a status into another (the deviations
/// file: a failure it lists becomes known); `each` sees every result as soon as it and all
/// before it are done, in input order.
pub fn run_suite(
    traces: &[(String, Trace)],
    target: &TargetSpec,
    profile: ProfileName,
    jobs: usize,
    classify: &(dyn Fn(&str, Status) -> Status + Sync),
    each: &mut dyn FnMut(&TraceResult),
) -> SuiteRun {
    let started = Instant::now();
    // The trace after which the broker stopped answering for good, if one did.
    let lost: Mutex<Option<String>> = Mutex::new(None);
    let judge = |i: usize| {
        let (file, trace) = &traces[i];
        if let Some(culprit) = lost.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            let status = Status::Error { cause: format!("not run: the broker stopped answering after {culprit}") };
            return TraceResult { broker_lost: true, ..TraceResult::unrun(file, trace, status) };
        }
        let mut r = run_one(file, trace, target, profile);
        if r.broker_lost {
            lost.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| file.clone());
        }
        r.status = classify(file, r.status);
        r
    };
    let (alone, together): (Vec<usize>, Vec<usize>) = (0..traces.len()).partition(|&i| restarts(&traces[i].1));
    let mut slots: Vec<Option<TraceResult>> = vec![None; traces.len()];
    let mut shown = 0;
    let mut show = |slots: &mut Vec<Option<TraceResult>>, each: &mut dyn FnMut(&TraceResult)| {
        while let Some(Some(r)) = slots.get(shown) {
            each(r);
            shown += 1;
        }
    };
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, TraceResult)>();
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1).min(together.len().max(1)) {
            let (tx, next, together, judge) = (tx.clone(), &next, &together, &judge);
            s.spawn(move || {
                while let Some(&i) = together.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if tx.send((i, judge(i))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, r) in rx {
            slots[i] = Some(r);
            show(&mut slots, each);
        }
    });
    for i in alone {
        slots[i] = Some(judge(i));
        show(&mut slots, each);
    }
    let results = slots.into_iter().map(|r| r.expect("every trace was run")).collect();
    SuiteRun { target: target.label(), profile, results, elapsed: started.elapsed() }
}
