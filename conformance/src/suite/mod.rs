//! Running many traces: finding them, replaying each against a fresh target (in parallel with
//! `jobs`), and collecting one [`TraceResult`] per trace for the reports.
//!
//! Traces with a `restart` step restart the whole broker, so they never run beside another: they
//! are run after the others, one at a time.

mod status;

pub use status::{Failure, Finding, Status};

use crate::input::InputError;
use crate::run::{record_on, Observation, Recording, Verdict};
use crate::target::uri::BrokerUri;
use crate::target::{Problem, TargetSpec};
use crate::trace::{parse, Trace};
use amqp_model::{Command, Profile, ProfileName};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// How many traces `run` and `generate` replay at once by default: twice the cores this process
/// may use, at most 8. A trace mostly waits (for replies, and for the grace period in which a
/// broker must do nothing more), so more traces than cores keep them busy; but a broker on the
/// same machine shares those cores, and on a two-core machine 8 at once sometimes made RabbitMQ
/// answer a message count late, where 4 never did.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_mul(2).clamp(1, 8)
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
    /// Whether the trace failed at a step the broker answered nothing to, its process found gone
    /// and restarted afterwards: the broker died there, perhaps of what an earlier trace did (a
    /// race in its connection close, dispatchd), perhaps of this one's. A failure that the
    /// deviations file does not list is then run once more ([`run_suite`]).
    pub died_unanswered: bool,
    /// What happened to the broker around this trace that its status does not show: its process
    /// was gone (before the trace reached it, after steps that all matched the model, or at a
    /// step it never answered where the deviations file lists nothing), it was restarted, and the
    /// trace run again; the status is the second run's.
    pub incidents: Vec<String>,
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
    /// How many results have each status label, in the order pass, FAIL, known, departs, stale,
    /// skip, ERROR.
    pub fn counts(&self) -> [(&'static str, usize); 7] {
        let mut out = [("pass", 0), ("FAIL", 0), ("known", 0), ("departs", 0), ("stale", 0), ("skip", 0), ("ERROR", 0)];
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
pub fn find_traces(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    fn walk(path: &Path, named: bool, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
        let err = |e: std::io::Error| InputError::file(path.display(), e);
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
            let matches = glob::glob(&text).map_err(|e| InputError::file(&text, format!("bad glob pattern: {e}")))?;
            let before = out.len();
            for m in matches {
                walk(&m.map_err(|e| InputError::file(&text, e))?, true, &mut out)?;
            }
            if out.len() == before {
                return Err(InputError::file(&text, "no trace matches the pattern"));
            }
        } else {
            walk(p, true, &mut out)?;
        }
    }
    Ok(out)
}

/// Read and parse trace files; the first unreadable or malformed one is an error naming
/// `file:line`.
pub fn load(files: &[PathBuf]) -> Result<Vec<(String, Trace)>, InputError> {
    files
        .iter()
        .map(|f| {
            let name = f.display().to_string();
            let text = std::fs::read_to_string(f).map_err(|e| InputError::file(&name, e))?;
            let trace = parse(&text, &name).map_err(|e| InputError::at(&name, e.line, e.message))?;
            Ok((name, trace))
        })
        .collect()
}

/// A trace the model itself cannot follow under a profile ([`trace_errors`]): an error in the
/// trace, not a failure of any broker. Rendered as `file:line: what is wrong` (in `report`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    /// The trace file.
    pub file: String,
    /// The profile it was replayed under.
    pub profile: ProfileName,
    /// Where and how the model left it.
    pub failure: Failure,
}

/// The traces the model itself cannot follow under `profile` (each printed as `file:line: what
/// is wrong`): found before any broker is contacted, they are errors in the traces, not failures of
/// a broker.
///
/// Every trace a run under `profile` would replay (not those whose `profile:` names the other
/// one, which it skips) is replayed on the model, dispatching eagerly ([`crate::target::model::ModelTarget`], as `run
/// --model` does). The model is a conforming broker, so an `expect` it does not meet there is one
/// a conforming broker may fail; and a step where the model leaves its own behaviours is a fault
/// of the trace's reading by the model, not of any broker. (An `expect` naming a variable no
/// earlier capture binds is already refused when the trace is read.) Each trace takes well under
/// a millisecond: the whole fixture suite, about 0.2 s in a release build.
pub fn trace_errors(traces: &[(String, Trace)], profile: ProfileName) -> Vec<TraceError> {
    let model = Profile::named(profile);
    let check = |(file, trace): &(String, Trace)| -> Option<TraceError> {
        if trace.profile.is_some_and(|p| p != profile) {
            return None;
        }
        let (recording, _) = record_on(&TargetSpec::Model, trace, model);
        Failure::of(&recording.verdict).map(|failure| TraceError { file: file.clone(), profile, failure })
    };
    // Spread over the cores: a debug build is some ten times slower than a release one.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(traces.len().max(1));
    let chunk = traces.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = traces
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || part.iter().filter_map(|t| on_trace_thread(&t.0, || check(t))).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

/// The stack of the thread a trace is run or checked on. Validating a step searches the model's
/// explanations depth first, one level per observed event of the step (in a debug build about
/// 1 KiB each), and a step may gather many events: a broker's deliveries that come late on a
/// busy machine are all observed at the next step. Two thousand overflow the 2 MiB a thread gets
/// by default (once seen in CI, on a thread that had no name to say which trace it ran);
/// 64 MiB holds some sixty thousand, and a thread only uses the pages it touches.
pub const TRACE_STACK: usize = 64 << 20;

/// Run `f` (the run or check of the trace in `file`) on a thread of its own, named after the
/// file, with a [`TRACE_STACK`]: whatever goes wrong there (a panic, an overflow) names the trace.
/// A panic is passed on to the caller.
pub fn on_trace_thread<T: Send>(file: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let thread = std::thread::Builder::new().name(file.to_string()).stack_size(TRACE_STACK);
        let handle = thread.spawn_scoped(s, f).unwrap_or_else(|e| panic!("cannot start a thread for {file}: {e}"));
        handle.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Whether a trace restarts the broker (and so must run alone).
pub fn restarts(trace: &Trace) -> bool {
    trace.commands().any(|c| matches!(c, Command::Restart))
}

/// The right to use a broker's shared `amq.*` exchanges, held by one trace at a time: by every
/// process on this machine (an exclusive lock on a file named after the broker's address in the
/// temporary directory: two runs against one broker, or tests run side by side, share it), and
/// released when dropped. When the file cannot be locked (or the broker is this process's own),
/// only the traces of this process are kept apart.
#[derive(Debug)]
struct SharedExchanges {
    _file: Option<std::fs::File>,
    _local: std::sync::MutexGuard<'static, ()>,
}

impl SharedExchanges {
    fn lock(uri: &BrokerUri, other_processes: bool) -> SharedExchanges {
        static LOCAL: Mutex<()> = Mutex::new(());
        let local = LOCAL.lock().unwrap_or_else(|e| e.into_inner());
        if !other_processes {
            return SharedExchanges { _file: None, _local: local };
        }
        let name = format!("amqp-conformance-amq-exchanges-{}.lock", uri.address().replace(':', "-"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join(name))
            .ok()
            .filter(|f| f.lock().is_ok());
        SharedExchanges { _file: file, _local: local }
    }
}

/// Whether a trace routes messages through one of the broker's predeclared `amq.*` exchanges
/// (publishes to one, or binds to one as the source). Their names are not the run's own: a
/// message another trace publishes to `amq.direct` with key `k` reaches every queue bound there
/// with `k`, whichever trace bound it. Such traces are run one at a time, so that none sees
/// another's messages however long each takes.
pub fn shares_exchanges(trace: &Trace) -> bool {
    let shared = |x: &amqp_model::Name| x.is_reserved() && !x.is_empty();
    trace.commands().any(|c| match c {
        Command::BasicPublish { exchange, .. } => shared(exchange),
        Command::QueueBind { exchange, .. } | Command::QueueUnbind { exchange, .. } => shared(exchange),
        Command::ExchangeBind { source, destination, .. } => shared(source) || shared(destination),
        _ => false,
    })
}

/// Why a trace cannot be judged on a broker that leaves out what `profile` says it leaves out of
/// what the spec only recommends: an exchange type (it declares an exchange of that type, or
/// names its `amq.` instance: `amq.topic`; `amq.headers` and RabbitMQ's `amq.match`), or the
/// mandatory flag (an `expect` whose every alternative is a `basic.return`). None when it needs
/// none of it.
pub fn needs_left_out(trace: &Trace, profile: &amqp_model::Profile) -> Option<String> {
    let expects_return = trace.steps.iter().any(|s| {
        matches!(&s.kind, crate::trace::StepKind::Expect(one_of)
            if one_of.iter().all(|e| matches!(e, amqp_model::Event::Return { .. })))
    });
    if !profile.mandatory_returns && expects_return {
        return Some(
            "expects a basic.return, and the broker returns no unroutable mandatory message (probed): \
             `basic publish mandatory 01` only recommends it"
                .into(),
        );
    }
    needs_left_out_type(trace, &profile.recommended_types)
}

/// The exchange types a trace declares (not passively) that the specification does not define.
fn extension_types(trace: &Trace) -> impl Iterator<Item = &str> {
    let mut kinds: Vec<&str> = trace
        .commands()
        .filter_map(|c| match c {
            Command::ExchangeDeclare { kind: amqp_model::ExchangeKind::Other(k), passive: false, .. } => {
                Some(k.as_str())
            }
            _ => None,
        })
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds.into_iter()
}

/// The exchanges a command names.
fn exchanges_named(c: &Command) -> Vec<&amqp_model::Name> {
    match c {
        Command::ExchangeDeclare { exchange, .. }
        | Command::ExchangeDelete { exchange, .. }
        | Command::BasicPublish { exchange, .. }
        | Command::QueueBind { exchange, .. }
        | Command::QueueUnbind { exchange, .. } => vec![exchange],
        Command::ExchangeBind { source, destination, .. } | Command::ExchangeUnbind { source, destination, .. } => {
            vec![source, destination]
        }
        _ => vec![],
    }
}

/// Why a trace cannot be judged on a broker that implements only `types` of the recommended
/// exchange types (see [`needs_left_out`]).
fn needs_left_out_type(trace: &Trace, types: &amqp_model::RecommendedTypes) -> Option<String> {
    use amqp_model::ExchangeKind;
    let instances = [(ExchangeKind::Topic, &["amq.topic"][..]), (ExchangeKind::Headers, &["amq.headers", "amq.match"])];
    for (kind, instances) in instances {
        if types.implements(&kind) {
            continue;
        }
        let needs = trace.commands().any(|c| {
            matches!(c, Command::ExchangeDeclare { kind: k, .. } if *k == kind)
                || exchanges_named(c).iter().any(|n| instances.contains(&n.as_str()))
        });
        if needs {
            return Some(format!(
                "needs the {} exchange type, which the broker does not implement (it refused a declare with 503): \
                 `exchange recommended-types` only recommends it",
                kind.as_str()
            ));
        }
    }
    None
}

impl TraceResult {
    /// The result of `trace` (from `file`) before it is run: `status`, nothing recorded.
    pub(crate) fn unrun(file: &str, trace: &Trace, status: Status) -> Self {
        TraceResult {
            file: file.to_string(),
            title: trace.title.clone(),
            cites: trace.cites.clone(),
            status,
            duration: Duration::ZERO,
            recording: None,
            broker_lost: false,
            died_unanswered: false,
            incidents: Vec::new(),
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
    let mut model = Profile::named(profile);
    if let TargetSpec::Broker { uri, timing, .. } = target {
        if profile == ProfileName::Spec {
            // `exchange recommended-types` is a SHOULD: under the spec profile a broker that
            // leaves a type out is judged without it.
            model.recommended_types = crate::target::probe::recommended_types(uri, timing.timeout);
            // So is `basic publish mandatory 01`: a broker that returns nothing is judged without;
            // one that refuses the flag says nothing of itself in a trace that sets it.
            use crate::target::probe::{mandatory_flag, MandatoryFlag};
            let flag = mandatory_flag(uri, timing.timeout);
            model.mandatory_returns = flag == MandatoryFlag::Returns;
            let sets_mandatory = trace.commands().any(|c| matches!(c, Command::BasicPublish { mandatory: true, .. }));
            if flag == MandatoryFlag::Refuses && sets_mandatory {
                result.status = Status::Skip {
                    reason: "publishes with the mandatory flag, which the broker refuses with an exception (probed): \
                             `basic publish mandatory 01` only recommends implementing it, and names no code for \
                             refusing it"
                        .into(),
                };
                return result;
            }
            // `exchange extensions` lets a server implement more types, whose routing the model
            // cannot know: a trace declaring one the broker implements says nothing of it.
            let extension = extension_types(trace)
                .find(|kind| crate::target::probe::implements_extension_type(uri, timing.timeout, kind));
            if let Some(kind) = extension {
                result.status = Status::Skip {
                    reason: format!(
                        "declares an exchange of type `{kind}`, which the broker implements (probed: declare-ok), as \
                         `exchange extensions` allows; the model does not know how it routes"
                    ),
                };
                return result;
            }
        }
    }
    if let Some(reason) = needs_left_out(trace, &model) {
        result.status = Status::Skip { reason };
        return result;
    }
    // Traces that share a broker's amq.* exchanges run one at a time (the model is fresh for each).
    let shared = match target {
        TargetSpec::Broker { uri, restart, .. } if shares_exchanges(trace) => {
            // The in-process reference broker is this process's own: no other process uses it.
            let in_process = matches!(restart, Some(crate::target::restart::Restart::Embedded(_)));
            Some(SharedExchanges::lock(uri, !in_process))
        }
        _ => None,
    };
    let started = if shared.is_some() { Instant::now() } else { started };
    loop {
        let (recording, summary) = record_on(target, trace, model);
        result.status = Status::of_session(&recording.verdict, &summary);
        result.recording = Some(recording);
        let TargetSpec::Broker { uri, timing, restart } = target else { break };
        if !result.status.is_failure() {
            break;
        }
        let unanswered = result.recording.as_ref().and_then(|r| r.steps.last()).is_some_and(|s| s.events.is_empty());
        match check_broker(uri, timing, restart.as_ref(), &mut result.status) {
            After::Lost => result.broker_lost = true,
            After::Restarted { gone: true } if unanswered && !says_nothing_of_the_broker(&result) => {
                result.died_unanswered = true;
            }
            // The broker's process had died where this trace cannot be at fault (a broker that
            // crashes now and then closing a connection: dispatchd): the trace is run again on
            // the restarted broker, once.
            After::Restarted { gone: true } if result.incidents.is_empty() && says_nothing_of_the_broker(&result) => {
                let first = result.status.detail().unwrap_or_default();
                let first = first.lines().next().unwrap_or_default();
                result.incidents.push(format!(
                    "the broker's process was found gone after a first run that says nothing of the broker \
                     ({first}): it was restarted and the trace run again; this is the second run's outcome"
                ));
                continue;
            }
            _ => {}
        }
        break;
    }
    result.status = result.status.recommended(trace.recommends.as_deref(), profile);
    result.duration = started.elapsed();
    result
}

/// Whether a failed trace says nothing about the broker: its first `connection.open` found no
/// broker (it had died after an earlier trace), or every step matched the model and only what
/// came after them (the cleanup) went wrong.
fn says_nothing_of_the_broker(result: &TraceResult) -> bool {
    let Some(recording) = &result.recording else { return false };
    if recording.verdict == Verdict::Pass {
        return true;
    }
    let first_problem = match &result.status {
        Status::Fail(failure) => failure.problems.first(),
        Status::Error { problems, .. } => problems.first(),
        _ => None,
    };
    let never_connected = matches!(
        recording.steps.as_slice(),
        [Observation { command: Some(Command::ConnectionOpen { .. }), events, .. }] if events.is_empty()
    );
    never_connected && matches!(first_problem, Some(Problem::Connect(_)))
}

/// What became of a broker found not answering after a trace.
#[derive(Debug, PartialEq, Eq)]
enum After {
    /// It answers.
    Answering,
    /// It was restarted; `gone`: its process was gone (connections refused), not merely silent.
    Restarted { gone: bool },
    /// It does not answer, and was not brought back.
    Lost,
}

/// After a failed trace, whether the broker still answers (see [`crate::target::probe::responsive`]): if
/// not, it is restarted with the restart command when there is one. What happened is added to
/// the trace's status.
fn check_broker(
    uri: &BrokerUri,
    timing: &crate::target::Timing,
    restart: Option<&crate::target::restart::Restart>,
    status: &mut Status,
) -> After {
    let Err(why) = crate::target::probe::responsive(uri, timing.timeout) else { return After::Answering };
    let gone = matches!(why, crate::target::probe::ProbeError::Connect(_));
    let (note, after) = match restart {
        Some(restart) => match crate::target::restart::restart_broker(restart, uri, timing.timeout) {
            Ok(()) => (
                format!("after this trace the broker stopped answering ({why}); it was restarted"),
                After::Restarted { gone },
            ),
            Err(e) => (
                format!("after this trace the broker stopped answering ({why}); restarting it failed: {e}"),
                After::Lost,
            ),
        },
        None => (
            format!(
                "after this trace the broker stopped answering ({why}); the traces not yet started are not run \
                 (give --restart-cmd to have it restarted)"
            ),
            After::Lost,
        ),
    };
    status.add_note(note);
    after
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
            let status = Status::Error {
                problems: vec![Problem::Lost(format!("not run: the broker stopped answering after {culprit}"))],
                notes: Vec::new(),
            };
            return TraceResult { broker_lost: true, ..TraceResult::unrun(file, trace, status) };
        }
        let mut r = on_trace_thread(file, || run_one(file, trace, target, profile));
        if r.broker_lost {
            lost.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| file.clone());
        }
        r.status = classify(file, r.status);
        // The broker died at a step it never answered, in a way its deviations file does not
        // describe: the death may be an earlier trace's doing, landing late (dispatchd's
        // connection close races kill it now and then). One more run on the restarted broker
        // tells; a trace that kills it itself fails again.
        if r.died_unanswered && r.incidents.is_empty() && matches!(r.status, Status::Fail(_)) {
            let first = r.status.detail().unwrap_or_default();
            let first = first.lines().next().unwrap_or_default().to_string();
            let mut again = on_trace_thread(file, || run_one(file, trace, target, profile));
            if again.broker_lost {
                lost.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| file.clone());
            }
            again.status = classify(file, again.status);
            again.incidents.insert(
                0,
                format!(
                    "the broker's process died at a step it never answered ({first}), where its deviations file \
                     lists nothing: it was restarted and the trace run again; this is the second run's outcome"
                ),
            );
            r = again;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Divergence;
    use amqp_model::{ChanRef, ConnId, Event};

    fn failed_at_open(events: Vec<Event>, problem: Problem) -> TraceResult {
        let trace = parse("c1 connection.open\nc1.1 channel.open\n", "t.trace").expect("parses");
        let open = Command::ConnectionOpen { conn: ConnId(1) };
        let divergence = Divergence { command: Some(open.clone()), observed: events.clone(), allowed: vec![] };
        let recording = Recording {
            verdict: Verdict::Diverged { line: 1, divergence: Box::new(divergence) },
            steps: vec![Observation { line: 1, command: Some(open), events }],
        };
        let mut status = Status::Fail(status::Failure::of(&recording.verdict).expect("a failure"));
        if let Status::Fail(f) = &mut status {
            f.problems.push(problem);
        }
        TraceResult { recording: Some(recording), ..TraceResult::unrun("t.trace", &trace, status) }
    }

    /// The extension types a trace declares are probed: each non-passive declare of a type the
    /// specification does not define, once, and none of the standard ones.
    #[test]
    fn extension_types_are_the_undefined_ones_declared() {
        let text = "c1 connection.open\nc1.1 channel.open\nc1.1 exchange.declare a x-nonsense\n\
                    c1.1 exchange.declare b topic\nc1.2 channel.open\nc1.2 exchange.declare c x-nonsense\n\
                    c1.2 exchange.declare d nonsense passive\nc1.2 exchange.declare e also-nonsense\n";
        let trace = parse(text, "x.trace").expect("parses");
        assert_eq!(extension_types(&trace).collect::<Vec<_>>(), ["also-nonsense", "x-nonsense"]);
    }

    /// A trace that `recommends:` a SHOULD rule and fails departs from the recommendation under
    /// `spec`, and fails under `rabbitmq`; any other outcome stays what it was.
    #[test]
    fn a_failed_recommendation_departs_under_spec_only() {
        let text = "cite: queue declare minimum-queues\nrecommends: queue declare minimum-queues\n\
                    c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare q\nexpect c1.1 queue.declare-ok q 1 0\n";
        let trace = parse(text, "r.trace").expect("parses");
        let spec = run_one("r.trace", &trace, &TargetSpec::Model, ProfileName::Spec);
        let Status::Departs { failure, rule } = &spec.status else { panic!("{:?}", spec.status) };
        assert_eq!((failure.line, rule.as_str()), (6, "queue declare minimum-queues"));
        assert!(!spec.status.is_failure());
        let rabbitmq = run_one("r.trace", &trace, &TargetSpec::Model, ProfileName::Rabbitmq);
        assert!(matches!(&rabbitmq.status, Status::Fail(f) if f.line == 6), "{:?}", rabbitmq.status);
        // Without the line, the same failure fails under `spec` too.
        let plain = parse(&text.replace("recommends: queue declare minimum-queues\n", ""), "p.trace").expect("parses");
        assert!(matches!(run_one("p.trace", &plain, &TargetSpec::Model, ProfileName::Spec).status, Status::Fail(_)));
        // A step the model does not allow, at a command of another method than the rule's, is
        // still a failure: here a delivery where the model has none.
        let bad = |line: usize, method: &str| {
            let failure = status::Failure::diverged(line, method, &["c1.1 basic.deliver t 1 \"\" q m"], &[]);
            Status::Fail(failure).recommended(Some("queue declare minimum-queues"), ProfileName::Spec)
        };
        assert!(matches!(bad(3, "c1.1 queue.purge q"), Status::Fail(_)));
        assert!(matches!(bad(3, "c1.1 queue.declare q"), Status::Fail(_)), "not a refusal");
        // A refusal of a declare that would create a queue departs; of a passive one, or no
        // answer at all, does not.
        let refused = |command: &str, observed: &[&str]| {
            let failure = status::Failure::diverged(3, command, observed, &[]);
            Status::Fail(failure).recommended(Some("queue declare minimum-queues"), ProfileName::Spec)
        };
        assert!(matches!(refused("c1.1 queue.declare q", &["c1 closed 506 queue.declare"]), Status::Departs { .. }));
        assert!(matches!(refused("c1.1 queue.declare q", &["c1.1 closed 403 queue.declare"]), Status::Departs { .. }));
        assert!(matches!(refused("c1.1 queue.declare q passive", &["c1.1 closed 404 queue.declare"]), Status::Fail(_)));
        assert!(matches!(refused("c1.1 queue.declare q", &[]), Status::Fail(_)));
        assert!(matches!(
            Status::Fail(status::Failure::diverged(3, "c1.1 queue.declare q", &[], &[]))
                .recommended(Some("basic 01"), ProfileName::Spec),
            Status::Fail(_)
        ));
        // A pass stays a pass.
        let passing = parse(&text.replace("q 1 0", "q 0 0"), "r.trace").expect("parses");
        assert_eq!(run_one("r.trace", &passing, &TargetSpec::Model, ProfileName::Spec).status, Status::Pass);
    }

    /// A trace is run again after a restart only where its first run cannot be the broker's
    /// doing: no broker at its first `connection.open`, or every step matched.
    #[test]
    fn what_says_nothing_of_the_broker() {
        let refused = || Problem::Connect("c1: cannot connect: refused".into());
        assert!(says_nothing_of_the_broker(&failed_at_open(vec![], refused())));
        // A connection that was had, or another problem, is the broker's answer.
        let ok = Event::ConnectionOpenOk { conn: ConnId(1) };
        assert!(!says_nothing_of_the_broker(&failed_at_open(vec![ok], refused())));
        assert!(!says_nothing_of_the_broker(&failed_at_open(vec![], Problem::Timeout("c1: no answer".into()))));
        // Past the first step, a refused connection may be the trace's doing.
        let mut later = failed_at_open(vec![], refused());
        let recording = later.recording.as_mut().expect("recorded");
        recording.steps.insert(
            0,
            Observation {
                line: 1,
                command: Some(Command::ChannelOpen { ch: ChanRef { conn: ConnId(1), channel: 1 } }),
                events: vec![],
            },
        );
        assert!(!says_nothing_of_the_broker(&later));
        // Every step matched: only what came after went wrong.
        let mut matched = failed_at_open(vec![], Problem::Cleanup("cleanup: refused".into()));
        matched.recording.as_mut().expect("recorded").verdict = Verdict::Pass;
        assert!(says_nothing_of_the_broker(&matched));
        // Not run at all.
        let mut unrun = failed_at_open(vec![], refused());
        unrun.recording = None;
        assert!(!says_nothing_of_the_broker(&unrun));
    }
}
