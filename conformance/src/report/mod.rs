//! Rendering a [`SuiteRun`]: JUnit XML for CI dashboards ([`junit`]), JSON for programs
//! ([`json`]), the lines a person reads in a terminal ([`line()`] per trace, [`summary`] at
//! the end), and one HTML page to read without the terminal ([`html`]).
//!
//! A failure arrives typed ([`crate::suite::Failure`]: its line, what the broker did, what was
//! noted beside it); this is where it becomes text, the line named once (`file:N:`) and the
//! finding after it.
//!
//! One file for one concern, a suite run as its readers get it: the terminal summary, JSON and
//! JUnit render the same results with the same detail handling, so they stay together (about 400 of
//! its lines are tests).

pub mod html;

pub use html::html;

use crate::run::Recording;
use crate::suite::{Finding, Status, SuiteRun, TraceError, TraceResult};
use crate::trace::{write_command, write_event, write_expected};
use crate::validate::Divergence;
use amqp_model::Event;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Component, Path};
use std::time::Duration;

/// The first line of a detail text and the lines after it (trailing blank lines dropped).
fn split_detail(detail: &str) -> (String, Vec<&str>) {
    let mut lines: Vec<&str> = detail.lines().collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return (String::new(), Vec::new());
    }
    let first = lines.remove(0);
    (first.trim_end().to_string(), lines)
}

/// `text` with every line indented by `by`, or nothing when `text` has no lines.
fn indented(lines: &[&str], by: &str) -> String {
    lines.iter().map(|l| format!("\n{by}{l}")).collect()
}

/// Seconds with one decimal, as the totals line shows them.
fn secs1(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Seconds with two decimals, as a trace's line shows them.
fn secs2(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The recorded steps as text: one line per step (`line N: COMMAND`, or `wait`), its events
/// indented under it.
fn steps_text(rec: &Recording) -> String {
    let mut out = String::new();
    for step in &rec.steps {
        let cmd = step.command.as_ref().map_or_else(|| "wait".to_string(), write_command);
        let _ = writeln!(out, "line {}: {cmd}", step.line);
        if step.events.is_empty() {
            let _ = writeln!(out, "    (nothing)");
        }
        for e in &step.events {
            let _ = writeln!(out, "    {}", write_event(e));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// JUnit

/// The JUnit class name of a trace: its directory, components joined with `.`
/// (`fixtures/spec/x.trace` gives `fixtures.spec`), or `traces` for a file given without one.
/// `.` components and the root of an absolute path are left out.
fn classname(file: &str) -> String {
    let parent = Path::new(file).parent().unwrap_or_else(|| Path::new(""));
    let parts: Vec<String> = parent
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    if parts.is_empty() {
        "traces".to_string()
    } else {
        parts.join(".")
    }
}

/// The note a known deviation carries: `known deviation: RULE: REASON`.
fn known_note(rule: &str, reason: &str) -> String {
    format!("known deviation: {rule}: {reason}")
}

/// The message of a stale deviation.
fn stale_message(rule: &str) -> String {
    format!(
        "stale deviation: listed in the deviations file (rule `{rule}`), but it passed: remove the \
         entry if the broker now follows the rule"
    )
}

/// What a departure from a recommendation says, before its finding.
fn departs_note(rule: &str) -> String {
    format!(
        "departs from the recommendation of `{rule}` (a SHOULD: the specification allows it, so this is not a \
         failure of conformance)"
    )
}

/// One trace as a JUnit test case.
fn test_case(r: &TraceResult) -> TestCase {
    let status = match &r.status {
        Status::Pass | Status::Known { .. } | Status::Departs { .. } | Status::Stale { .. } => {
            TestCaseStatus::success()
        }
        Status::Fail(failure) => {
            let detail = failure.detail();
            let (first, _) = split_detail(&detail);
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!("line {}: {first}", failure.line)).set_type("FAIL").set_description(detail);
            s
        }
        Status::Error { problems, notes } => {
            let cause = Status::cause(problems, notes);
            let (first, _) = split_detail(&cause);
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(first).set_type("ERROR").set_description(cause);
            s
        }
        Status::Skip { reason } => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(reason.as_str());
            s
        }
    };
    let mut case = TestCase::new(r.file.as_str(), status);
    case.set_classname(classname(&r.file)).set_time(r.duration);
    match &r.status {
        Status::Known { rule, reason, .. } => {
            let (line, detail) = (r.status.line().unwrap_or(0), r.status.detail().unwrap_or_default());
            case.set_system_out(format!("{}\n\nline {line}: {}", known_note(rule, reason), detail_body(&detail)));
        }
        Status::Stale { rule } => {
            case.set_system_out(stale_message(rule));
        }
        Status::Departs { failure, rule } => {
            case.set_system_out(format!("{}\n\nline {}: {}", departs_note(rule), failure.line, failure.detail()));
        }
        Status::Fail { .. } | Status::Error { .. } => {
            if let Some(rec) = &r.recording {
                case.set_system_out(format!("steps:\n{}", steps_text(rec)));
            }
        }
        _ => {}
    }
    // What happened beside the verdict (a broker restarted, a proxy's reading that fell behind).
    if !r.incidents.is_empty() {
        let notes: Vec<String> = r.incidents.iter().map(|i| format!("note: {i}")).collect();
        case.set_system_err(notes.join("\n"));
    }
    case
}

/// A detail, trailing blank lines dropped.
fn detail_body(detail: &str) -> String {
    let (first, rest) = split_detail(detail);
    let mut out = first;
    for l in rest {
        out.push('\n');
        out.push_str(l);
    }
    out
}

/// The run as JUnit XML (built with `quick-junit`): one `testsuite` named `TARGET (PROFILE)`,
/// one `testcase` per trace, named by its file, with its directory as the class name
/// (`fixtures.spec`) and its duration as the time.
///
/// - FAIL is a `failure` (type `FAIL`): the message is `line N: ` and the first line of the
///   verdict, the text is the whole verdict, and `system-out` lists the recorded steps.
/// - stale (a listed trace that passed) is a passing case whose `system-out` is the warning
///   `stale deviation: ...`, asking for the deviations entry to be removed: the trace passed, and
///   a stale entry does not make the run non-conformant.
/// - ERROR is an `error` (type `ERROR`): the run went wrong, the cause is the text.
/// - skip is a `skipped` element, with the reason as the message; the `testsuite` counts them in
///   its `skipped` attribute (and, as quick-junit writes it, in `disabled`).
/// - A known deviation is reported as a **passing** case whose `system-out` starts
///   `known deviation: RULE: REASON`, followed by the verdict. It is not `skipped`: the trace
///   did run, and what it observed is exactly what the deviations file accepts, so it counts as
///   run-and-accepted, as it does for the exit code (a run with known deviations is conformant).
///   Dashboards then neither count it as a failure nor hide it among traces that were never run;
///   the note says why it passed.
/// - The incidents beside a result (a broker found gone and restarted, a proxy's reading that
///   fell behind) are its `system-err`, a `note: ` line each.
pub fn junit(run: &SuiteRun) -> String {
    let mut suite = TestSuite::new(format!("{} ({})", run.target, run.profile));
    suite.set_time(run.elapsed);
    suite.add_property(("target", run.target.as_str()));
    suite.add_property(("profile", run.profile.to_string().as_str()));
    suite.add_test_cases(run.results.iter().map(test_case));
    // quick-junit counts skipped cases as `disabled`; dashboards read `skipped`.
    let skipped = suite.disabled.to_string();
    suite.extra.insert("skipped".into(), skipped.into());
    let mut report = Report::new("amqp-conformance");
    report.set_time(run.elapsed);
    report.add_test_suite(suite);
    // Serialising to a String only fails on I/O errors, which a String does not have.
    report.to_string().expect("JUnit XML serialises into a String")
}

// ---------------------------------------------------------------------------------------------
// JSON

/// The JSON report ([`json`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonReport {
    /// What was judged ([`crate::target::TargetSpec::label`]): `the model`, `the reference broker,
    /// in-process`, or the broker's URI without its password.
    pub target: String,
    /// The profile: `spec` or `rabbitmq`.
    pub profile: String,
    /// Wall-clock time of the whole run, in seconds.
    pub elapsed_seconds: f64,
    /// How many traces had each status.
    pub counts: JsonCounts,
    /// Whether the target conformed ([`SuiteRun::conformant`]: no FAIL or ERROR).
    pub conformant: bool,
    /// One per trace, in input order.
    pub traces: Vec<JsonTrace>,
}

/// How many traces had each status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonCounts {
    /// All traces.
    pub total: usize,
    /// pass.
    pub pass: usize,
    /// FAIL.
    pub fail: usize,
    /// known deviations.
    pub known: usize,
    /// departures from a recommendation (failed traces that `recommends:` a SHOULD rule).
    #[serde(default)]
    pub departs: usize,
    /// stale (deviations entries for traces that passed).
    pub stale: usize,
    /// skip.
    pub skip: usize,
    /// ERROR.
    pub error: usize,
}

/// One trace in the JSON report. Fields a status does not have are `null`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonTrace {
    /// The trace file, as given.
    pub file: String,
    /// Its `title:`.
    pub title: Option<String>,
    /// Its `cite:` lines.
    pub cites: Vec<String>,
    /// The status, lower case: `pass`, `fail`, `known`, `stale`, `skip` or `error`
    /// ([`Status::key`], the same words as the keys of `counts`).
    pub status: String,
    /// The failing line (FAIL and known).
    pub line: Option<usize>,
    /// The verdict (FAIL and known) or the cause (ERROR).
    pub detail: Option<String>,
    /// The deviations file's rule (known and stale).
    pub rule: Option<String>,
    /// The deviations file's reason (known), or why the trace was skipped (skip).
    pub reason: Option<String>,
    /// How long the trace took, in seconds.
    pub duration_seconds: f64,
    /// What each step observed, for traces that did not pass (FAIL, known, ERROR) and were
    /// recorded; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<JsonStep>>,
    /// What happened to the broker around the trace that the status does not show (its process
    /// died, it was restarted, the trace run again); absent when nothing did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<String>,
}

/// One recorded step in the JSON report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonStep {
    /// The trace line (for the runner's final wait, the last step's line).
    pub line: usize,
    /// The command as a trace writes it, or `wait`.
    pub command: String,
    /// What the target did, as `expect` lines write it (without `expect`), in arrival order.
    pub events: Vec<String>,
}

impl JsonCounts {
    /// The counts of a run.
    pub fn of(run: &SuiteRun) -> Self {
        let mut c = JsonCounts { total: run.results.len(), ..JsonCounts::default() };
        for r in &run.results {
            *match r.status {
                Status::Pass => &mut c.pass,
                Status::Fail(_) => &mut c.fail,
                Status::Known { .. } => &mut c.known,
                Status::Departs { .. } => &mut c.departs,
                Status::Stale { .. } => &mut c.stale,
                Status::Skip { .. } => &mut c.skip,
                Status::Error { .. } => &mut c.error,
            } += 1;
        }
        c
    }
}

impl JsonStep {
    /// The steps of a recording.
    pub fn of(rec: &Recording) -> Vec<JsonStep> {
        rec.steps
            .iter()
            .map(|s| JsonStep {
                line: s.line,
                command: s.command.as_ref().map_or_else(|| "wait".to_string(), write_command),
                events: s.events.iter().map(write_event).collect(),
            })
            .collect()
    }
}

impl JsonTrace {
    /// One trace's result.
    pub fn of(r: &TraceResult) -> Self {
        let (line, detail, rule, reason) = match &r.status {
            Status::Pass => (None, None, None, None),
            Status::Fail(_) => (r.status.line(), r.status.detail(), None, None),
            Status::Known { rule, reason, .. } => {
                (r.status.line().filter(|l| *l > 0), r.status.detail(), Some(rule.clone()), Some(reason.clone()))
            }
            Status::Departs { rule, .. } => (r.status.line(), r.status.detail(), Some(rule.clone()), None),
            Status::Stale { rule } => (None, None, Some(rule.clone()), None),
            Status::Skip { reason } => (None, None, None, Some(reason.clone())),
            Status::Error { .. } => (None, r.status.detail(), None, None),
        };
        let failed = matches!(r.status, Status::Fail(_) | Status::Known { .. } | Status::Error { .. });
        JsonTrace {
            file: r.file.clone(),
            title: r.title.clone(),
            cites: r.cites.clone(),
            status: r.status.key().to_string(),
            line,
            detail,
            rule,
            reason,
            duration_seconds: r.duration.as_secs_f64(),
            steps: if failed { r.recording.as_ref().map(JsonStep::of) } else { None },
            incidents: r.incidents.clone(),
        }
    }
}

impl JsonReport {
    /// The report of a run.
    pub fn of(run: &SuiteRun) -> Self {
        JsonReport {
            target: run.target.clone(),
            profile: run.profile.to_string(),
            elapsed_seconds: run.elapsed.as_secs_f64(),
            counts: JsonCounts::of(run),
            conformant: run.conformant(),
            traces: run.results.iter().map(JsonTrace::of).collect(),
        }
    }
}

/// The run as pretty-printed JSON: a [`JsonReport`].
///
/// ```json
/// { "target": "the model", "profile": "spec", "elapsed_seconds": 1.5,
///   "counts": { "total": 2, "pass": 1, "fail": 1, "known": 0, "departs": 0, "stale": 0, "skip": 0, "error": 0 },
///   "conformant": false,
///   "traces": [ { "file": "fixtures/x.trace", "title": "...", "cites": ["basic 10"],
///                 "status": "fail", "line": 12, "detail": "line 12: ...", "rule": null,
///                 "reason": null, "duration_seconds": 0.05,
///                 "steps": [ { "line": 3, "command": "c1 connection.open",
///                              "events": ["c1 connection.open-ok"] } ] } ] }
/// ```
///
/// `steps` is present only for FAIL, known and ERROR traces that were recorded.
pub fn json(run: &SuiteRun) -> String {
    serde_json::to_string_pretty(&JsonReport::of(run)).expect("the JSON report serialises")
}

// ---------------------------------------------------------------------------------------------
// Terminal

/// The line printed for one trace as it finishes (when the output is not a terminal), without
/// a trailing newline:
///
/// ```text
/// pass  fixtures/seed/x.trace (0.05 s)
/// FAIL  fixtures/x.trace:12: after `c1.1 queue.declare ja durable` the broker did:
///         c1.1 closed 403 queue.declare
///       which the model does not allow. ...
/// known fixtures/x.trace:12: known deviation: RULE: REASON (0.05 s)
/// stale fixtures/x.trace: stale deviation: ... remove the entry ... (0.05 s)
/// skip  fixtures/x.trace: REASON
/// ERROR fixtures/x.trace: CAUSE
///         (rest of the cause)
/// ```
///
/// The lines after the first of a FAIL's verdict or an ERROR's cause are indented by six
/// blanks, under the file name.
pub fn line(result: &TraceResult) -> String {
    status_line(result) + &incident_notes(result)
}

/// The incidents beside a trace's result ([`TraceResult::incidents`]), a `note:` line each,
/// indented under the file name.
fn incident_notes(result: &TraceResult) -> String {
    result.incidents.iter().map(|i| format!("\n      note: {i}")).collect()
}

/// [`line`] without the incidents.
fn status_line(result: &TraceResult) -> String {
    let label = result.status.label();
    let file = &result.file;
    let took = secs2(result.duration);
    match &result.status {
        Status::Pass => format!("{label:<5} {file} ({took})"),
        Status::Fail(failure) => {
            let (line, detail) = (failure.line, failure.detail());
            let (first, rest) = split_detail(&detail);
            format!("{label:<5} {file}:{line}: {first}{}", indented(&rest, "      "))
        }
        Status::Known { rule, reason, .. } => {
            format!("{label:<5} {}: {} ({took})", at(file, result.status.line()), known_note(rule, reason))
        }
        Status::Stale { rule } => format!("{label:<5} {file}: {} ({took})", stale_message(rule)),
        Status::Departs { failure, rule } => {
            let detail = failure.detail();
            let (first, rest) = split_detail(&detail);
            format!("{label:<5} {file}:{}: {}: {first}{}", failure.line, departs_note(rule), indented(&rest, "      "))
        }
        Status::Skip { reason } => format!("{label:<5} {file}: {reason}"),
        Status::Error { problems, notes } => {
            let cause = Status::cause(problems, notes);
            let (first, rest) = split_detail(&cause);
            format!("{label:<5} {file}: {first}{}", indented(&rest, "      "))
        }
    }
}

/// `file:line`, or `file` alone without a line (a known deviation met after the trace's steps).
fn at(file: &str, line: Option<usize>) -> String {
    match line {
        Some(line) if line > 0 => format!("{file}:{line}"),
        _ => file.to_string(),
    }
}

/// `n` and a noun, with an `s` unless `n` is 1.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The first line a run prints: what it runs, what is judged ([`crate::target::TargetSpec::label`]),
/// under which profile, and how many traces at once.
///
/// ```text
/// run: 225 traces against amqp://guest:***@127.0.0.1:5672/%2f, profile rabbitmq, 4 jobs
/// ```
pub fn header(what: &str, target: &str, profile: amqp_model::ProfileName, jobs: usize) -> String {
    format!("{what} against {target}, profile {profile}, {}", count(jobs, "job", "jobs"))
}

/// An event as a report quotes it: `` `c1.1 closed 404 queue.delete` ``.
fn quote(e: &Event) -> String {
    format!("`{}`", write_event(e))
}

/// An event as written, with server-generated names (`amq.gen-...`, `amq.ctag-...`) made
/// alike, so that a broker's names and the model's compare equal.
fn comparable(e: &Event) -> String {
    write_event(e)
        .split(' ')
        .map(|t| match ["amq.gen-", "amq.ctag-"].into_iter().find(|p| t.starts_with(p)) {
            Some(prefix) => prefix,
            None => t,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The events of `of`, in order, that `against` does not have (counting repeats).
fn unmatched<'a>(of: &'a [Event], against: &[Event]) -> Vec<&'a Event> {
    let mut left: Vec<String> = against.iter().map(comparable).collect();
    of.iter()
        .filter(|e| match left.iter().position(|x| *x == comparable(e)) {
            Some(i) => {
                left.remove(i);
                false
            }
            None => true,
        })
        .collect()
}

/// The first difference between what a step observed and what the model allows there, as one
/// whole sentence (the report of a divergence, [`Divergence`]'s `Display`, takes several lines).
///
/// The observation is compared with the possibility closest to it (the fewest events in one and
/// not the other), stream by stream, since AMQP orders frames only within a channel:
///
/// ```text
/// after `c1.1 queue.delete q` the broker did `c1.1 queue.delete-ok 0` where the model allows `c1.1 closed 404 queue.delete`
/// after `c1.1 basic.ack 1` the broker did `c1.1 basic.deliver a 2 "" q m2`, which the model does not allow there
/// while waiting, the broker did not send `c1.1 basic.deliver a 1 "" q m1`, which the model would
/// after `c1.1 basic.recover requeue` the broker did `c1.1 basic.deliver a 2 "" q m2` before `c1.1 basic.deliver a 1 "" q m1`, an order the model does not allow
/// ```
pub fn mismatch(d: &Divergence) -> String {
    let at = match &d.command {
        Some(c) => format!("after `{}` the broker", write_command(c)),
        None => "while waiting, the broker".to_string(),
    };
    let stream = |e: &Event| (e.connection(), e.channel());
    let distance = |alt: &Vec<Event>| unmatched(&d.observed, alt).len() + unmatched(alt, &d.observed).len();
    let Some(alt) = d.allowed.iter().min_by_key(|alt| distance(alt)) else {
        return match d.observed.first() {
            Some(e) => format!("{at} did {}, and the model allows nothing there", quote(e)),
            None => format!("{at} did nothing, and the model allows nothing there"),
        };
    };
    let extra = unmatched(&d.observed, alt);
    let missing = unmatched(alt, &d.observed);
    if let Some(x) = extra.first() {
        // What the model does on the same channel instead, if anything.
        return match missing.iter().find(|y| stream(y) == stream(x)) {
            Some(y) => format!("{at} did {} where the model allows {}", quote(x), quote(y)),
            None => format!("{at} did {}, which the model does not allow there", quote(x)),
        };
    }
    if let Some(y) = missing.first() {
        return format!("{at} did not send {}, which the model would", quote(y));
    }
    // The same events in another order: the first place where a stream differs.
    for o in &d.observed {
        let mine: Vec<&Event> = d.observed.iter().filter(|e| stream(e) == stream(o)).collect();
        let theirs: Vec<&Event> = alt.iter().filter(|e| stream(e) == stream(o)).collect();
        if let Some((a, b)) = mine.iter().zip(&theirs).find(|(a, b)| comparable(a) != comparable(b)) {
            return format!("{at} did {} before {}, an order the model does not allow", quote(a), quote(b));
        }
    }
    let all: Vec<String> = d.observed.iter().map(quote).collect();
    format!("{at} did {} in an order the model does not allow", all.join(", "))
}

/// An `expect` that a step did not meet, as one whole sentence: the events the step observed of
/// the same kind on the same channel, or else all of them.
///
/// ```text
/// expected `c1.1 queue.declare-ok q 5 0`, but the step observed `c1.1 queue.declare-ok q 0 0` instead
/// ```
pub fn unmet(expected: &[Event], observed: &[Event]) -> String {
    let want = write_expected(expected);
    let kind = |text: &str| text.split(' ').take(2).collect::<Vec<_>>().join(" ");
    let like: Vec<String> = observed.iter().filter(|e| kind(&write_event(e)) == kind(&want)).map(quote).collect();
    if observed.is_empty() {
        format!("expected `{want}`, but the step observed nothing")
    } else if !like.is_empty() {
        format!("expected `{want}`, but the step observed {} instead", like.join(", "))
    } else {
        let all: Vec<String> = observed.iter().map(quote).collect();
        format!("expected `{want}`, but the step observed only {}", all.join(", "))
    }
}

/// A trace that did not pass, as the summary lists it: one line, or the whole report when it
/// cannot be said in one line whole (never a line cut off mid-sentence).
fn listed(r: &TraceResult) -> String {
    let file = &r.file;
    let label = r.status.label();
    let whole = |head: String, text: &str| {
        let (first, rest) = split_detail(text);
        format!("{head}{first}{}", indented(&rest, "      "))
    };
    match &r.status {
        Status::Pass => format!("{label:<5} {file}"),
        Status::Fail(failure) => {
            let head = format!("{label:<5} {file}:{}: ", failure.line);
            match &failure.finding {
                Finding::Diverged(divergence) => format!("{head}{}", mismatch(divergence)),
                Finding::Unmet { expected, observed } => format!("{head}{}", unmet(expected, observed)),
            }
        }
        Status::Known { rule, reason, .. } => {
            whole(format!("{label:<5} {}: ", at(file, r.status.line())), &known_note(rule, reason))
        }
        Status::Stale { rule } => whole(format!("{label:<5} {file}: "), &stale_message(rule)),
        Status::Departs { failure, rule } => {
            let head = format!("{label:<5} {file}:{}: {}: ", failure.line, departs_note(rule));
            match &failure.finding {
                Finding::Diverged(divergence) => format!("{head}{}", mismatch(divergence)),
                Finding::Unmet { expected, observed } => format!("{head}{}", unmet(expected, observed)),
            }
        }
        Status::Skip { reason } => whole(format!("{label:<5} {file}: "), reason),
        Status::Error { problems, notes } => whole(format!("{label:<5} {file}: "), &Status::cause(problems, notes)),
    }
}

/// The summary printed at the end of a run, without a trailing newline: each trace that did
/// not pass (in input order), then the totals with what was judged and under which profile, then
/// `conformant` or `NOT conformant`.
///
/// ```text
/// FAIL  fixtures/x.trace:12: after `c1.1 queue.declare ja durable` the broker did `c1.1 closed 403 queue.declare` where the model allows `c1.1 closed 406 queue.declare`
/// known fixtures/spec/y.trace:7: known deviation: RULE: REASON
/// stale fixtures/spec/z.trace: stale deviation: ... remove the entry ...
/// ERROR fixtures/w.trace: CAUSE
/// skip  fixtures/v.trace: REASON
///
/// 171 traces against amqp://guest:***@127.0.0.1:5672/%2f, profile rabbitmq: 150 passed, 2 failed, 10 known deviations, 9 skipped (12.3 s)
/// NOT conformant
/// ```
///
/// A failure is one line with its first mismatch ([`mismatch`], [`unmet`]); where the verdict
/// is not at hand, and for an error's cause, the whole text, indented. Passed, failed and
/// skipped are always counted; known deviations, stale deviations and errors only when there
/// are some.
pub fn summary(run: &SuiteRun) -> String {
    let mut out = String::new();
    for r in run.results.iter().filter(|r| r.status != Status::Pass || !r.incidents.is_empty()) {
        out.push_str(&listed(r));
        out.push_str(&incident_notes(r));
        out.push('\n');
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let c = JsonCounts::of(run);
    let mut parts = vec![format!("{} passed", c.pass), format!("{} failed", c.fail)];
    if c.known > 0 {
        parts.push(count(c.known, "known deviation", "known deviations"));
    }
    if c.departs > 0 {
        parts.push(count(c.departs, "departure from a recommendation", "departures from recommendations"));
    }
    if c.stale > 0 {
        parts.push(count(c.stale, "stale deviation", "stale deviations"));
    }
    parts.push(format!("{} skipped", c.skip));
    if c.error > 0 {
        parts.push(count(c.error, "error", "errors"));
    }
    let _ = writeln!(
        out,
        "{} against {}, profile {}: {} ({})",
        count(c.total, "trace", "traces"),
        run.target,
        run.profile,
        parts.join(", "),
        secs1(run.elapsed)
    );
    out.push_str(if run.conformant() { "conformant" } else { "NOT conformant" });
    out
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let TraceError { file, profile, failure } = self;
        let line = failure.line;
        match &failure.finding {
            Finding::Unmet { expected, observed } => write!(
                f,
                "{file}:{line}: this `expect` does not hold on the model under the {profile} profile: {}",
                unmet(expected, observed)
            ),
            Finding::Diverged(divergence) => write!(
                f,
                "{file}:{line}: the model under the {profile} profile does not follow this step: {}",
                mismatch(divergence)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Observation, Verdict};
    use crate::suite::Failure;
    use crate::target::Problem;
    use crate::trace::{parse, parse_event, StepKind};
    use amqp_model::ProfileName;

    const FAIL_DETAIL: &str = "after `c1.1 queue.declare ja durable` the broker did:\n  c1.1 closed 403 queue.declare\nwhich the model does not allow. The model allows, for example:\n  possibility 1:\n    c1.1 closed 406 queue.declare\n";

    /// A failure at line 12: after `c1.1 queue.declare ja durable`, a 403 where the model allows 406.
    fn declare_failure() -> Failure {
        Failure::diverged(
            12,
            "c1.1 queue.declare ja durable",
            &["c1.1 closed 403 queue.declare"],
            &["c1.1 closed 406 queue.declare"],
        )
    }

    /// A recording of two steps: `c1 connection.open` and a wait.
    fn recording() -> Recording {
        let trace = parse("c1 connection.open\nc1.1 channel.open\n", "t.trace").unwrap();
        let StepKind::Command { command, .. } = &trace.steps[0].kind else { panic!("a command") };
        Recording {
            verdict: Verdict::Pass,
            steps: vec![
                Observation {
                    line: 1,
                    command: Some(command.clone()),
                    events: vec![parse_event("c1 connection.open-ok").unwrap()],
                },
                Observation { line: 2, command: None, events: vec![] },
            ],
        }
    }

    fn result(file: &str, status: Status, ms: u64) -> TraceResult {
        TraceResult {
            file: file.into(),
            title: Some(format!("title of {file}")),
            cites: vec!["basic 10".into(), "queue delete queue queue-known".into()],
            status,
            duration: Duration::from_millis(ms),
            recording: Some(recording()),
            broker_lost: false,
            died_unanswered: false,
            incidents: Vec::new(),
        }
    }

    fn run() -> SuiteRun {
        SuiteRun {
            target: "amqp://guest:***@127.0.0.1:5672/%2f".into(),
            profile: ProfileName::Rabbitmq,
            results: vec![
                result("fixtures/seed/a.trace", Status::Pass, 50),
                result("fixtures/spec/b.trace", Status::Fail(declare_failure()), 70),
                result(
                    "./fixtures/spec/c.trace",
                    Status::Known {
                        seen: Box::new(Status::Fail(Failure::diverged(
                            7,
                            "c1.1 queue.delete q",
                            &["c1.1 queue.delete-ok 0"],
                            &["c1.1 closed 404 queue.delete"],
                        ))),
                        rule: "queue delete queue queue-known".into(),
                        reason: "RabbitMQ answers delete-ok".into(),
                    },
                    30,
                ),
                result("fixtures/spec/d.trace", Status::Stale { rule: "basic 10".into() }, 20),
                result("fixtures/spec/e.trace", Status::Skip { reason: "needs a restart".into() }, 0),
                result(
                    "/abs/fixtures/f.trace",
                    Status::Error {
                        problems: vec![Problem::Cleanup("cleanup failed: connection refused\nsecond line".into())],
                        notes: Vec::new(),
                    },
                    1000,
                ),
                result("g.trace", Status::Pass, 10),
            ],
            elapsed: Duration::from_millis(12_345),
        }
    }

    #[test]
    fn junit_round_trips_with_counts_and_attributes() {
        let xml = junit(&run());
        let report = Report::deserialize_from_str(&xml).expect("valid JUnit XML");
        assert_eq!(report.tests, 7);
        assert_eq!(report.failures, 1, "FAIL is a failure, stale is not");
        assert_eq!(report.errors, 1, "ERROR is an error");
        assert_eq!(report.test_suites.len(), 1);
        let suite = &report.test_suites[0];
        assert_eq!(suite.name.as_str(), "amqp://guest:***@127.0.0.1:5672/%2f (rabbitmq)");
        assert_eq!((suite.tests, suite.failures, suite.errors, suite.disabled), (7, 1, 1, 1));
        let skipped = suite.extra.iter().find(|(k, _)| k.as_str() == "skipped").map(|(_, v)| v.as_str());
        assert_eq!(skipped, Some("1"), "the testsuite counts its skipped cases");
        assert_eq!(suite.time, Some(Duration::from_millis(12_345)));
        let names: Vec<&str> = suite.test_cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names[1], "fixtures/spec/b.trace");
        let classes: Vec<Option<&str>> =
            suite.test_cases.iter().map(|c| c.classname.as_ref().map(|s| s.as_str())).collect();
        assert_eq!(
            classes,
            [
                Some("fixtures.seed"),
                Some("fixtures.spec"),
                Some("fixtures.spec"),
                Some("fixtures.spec"),
                Some("fixtures.spec"),
                Some("abs.fixtures"),
                Some("traces")
            ]
        );
        assert_eq!(suite.test_cases[1].time, Some(Duration::from_millis(70)));

        let pass = &suite.test_cases[0];
        assert!(matches!(pass.status, TestCaseStatus::Success { .. }));
        assert!(pass.system_out.is_none());

        match &suite.test_cases[1].status {
            TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, message, ty, description, .. } => {
                assert_eq!(
                    message.as_ref().unwrap().as_str(),
                    "line 12: after `c1.1 queue.declare ja durable` the broker did:"
                );
                assert_eq!(ty.as_ref().unwrap().as_str(), "FAIL");
                assert!(description.as_ref().unwrap().contains("c1.1 closed 406 queue.declare"));
            }
            other => panic!("FAIL should be a failure: {other:?}"),
        }
        let steps = suite.test_cases[1].system_out.as_ref().unwrap().as_str();
        assert!(steps.contains("line 1: c1 connection.open\n    c1 connection.open-ok"), "{steps}");
        assert!(steps.contains("line 2: wait\n    (nothing)"), "{steps}");

        let known = &suite.test_cases[2];
        assert!(matches!(known.status, TestCaseStatus::Success { .. }), "known is not a failure");
        let out = known.system_out.as_ref().unwrap().as_str();
        assert!(
            out.starts_with("known deviation: queue delete queue queue-known: RabbitMQ answers delete-ok"),
            "{out}"
        );
        assert!(out.contains("c1.1 queue.delete-ok 0"));

        let stale = &suite.test_cases[3];
        assert!(matches!(stale.status, TestCaseStatus::Success { .. }), "stale is a warning");
        let out = stale.system_out.as_ref().unwrap().as_str();
        assert!(out.starts_with("stale deviation: ") && out.contains("`basic 10`") && out.contains("remove the"));
        match &suite.test_cases[4].status {
            TestCaseStatus::Skipped { message, .. } => {
                assert_eq!(message.as_ref().unwrap().as_str(), "needs a restart")
            }
            other => panic!("skip should be skipped: {other:?}"),
        }
        match &suite.test_cases[5].status {
            TestCaseStatus::NonSuccess { kind: NonSuccessKind::Error, message, description, .. } => {
                assert_eq!(message.as_ref().unwrap().as_str(), "cleanup failed: connection refused");
                assert!(description.as_ref().unwrap().contains("second line"));
            }
            other => panic!("ERROR should be an error: {other:?}"),
        }
    }

    #[test]
    fn junit_escapes_markup() {
        let mut r = run();
        let failure = Failure::diverged(1, "c1.1 queue.declare \"<y>&z\"", &[], &[]);
        r.results = vec![result("fixtures/<a&b>.trace", Status::Fail(failure), 1)];
        let xml = junit(&r);
        assert!(!xml.contains("<a&b>"));
        let report = Report::deserialize_from_str(&xml).unwrap();
        let case = &report.test_suites[0].test_cases[0];
        assert_eq!(case.name.as_str(), "fixtures/<a&b>.trace");
        let TestCaseStatus::NonSuccess { message, .. } = &case.status else { panic!() };
        assert_eq!(message.as_ref().unwrap().as_str(), "line 1: after `c1.1 queue.declare \"<y>&z\"` the broker did:");
    }

    #[test]
    fn json_has_every_field() {
        let v: serde_json::Value = serde_json::from_str(&json(&run())).unwrap();
        assert_eq!(v["target"], "amqp://guest:***@127.0.0.1:5672/%2f");
        assert_eq!(v["profile"], "rabbitmq");
        assert!((v["elapsed_seconds"].as_f64().unwrap() - 12.345).abs() < 1e-9);
        assert_eq!(v["conformant"], false);
        let c = &v["counts"];
        assert_eq!(
            [&c["total"], &c["pass"], &c["fail"], &c["known"], &c["stale"], &c["skip"], &c["error"]],
            [7, 2, 1, 1, 1, 1, 1]
        );
        let t = v["traces"].as_array().unwrap();
        assert_eq!(t.len(), 7);

        assert_eq!(t[0]["file"], "fixtures/seed/a.trace");
        assert_eq!(t[0]["title"], "title of fixtures/seed/a.trace");
        assert_eq!(t[0]["cites"][1], "queue delete queue queue-known");
        assert_eq!(t[0]["status"], "pass");
        assert!(t[0]["line"].is_null() && t[0]["detail"].is_null());
        assert!(t[0].get("steps").is_none(), "no steps for a pass");
        assert!((t[0]["duration_seconds"].as_f64().unwrap() - 0.05).abs() < 1e-9);

        assert_eq!(t[1]["status"], "fail");
        assert_eq!(t[1]["line"], 12);
        assert_eq!(t[1]["detail"], FAIL_DETAIL);
        let steps = t[1]["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0]["line"], 1);
        assert_eq!(steps[0]["command"], "c1 connection.open");
        assert_eq!(steps[0]["events"][0], "c1 connection.open-ok");
        assert_eq!(steps[1]["command"], "wait");
        assert_eq!(steps[1]["events"].as_array().unwrap().len(), 0);

        assert_eq!(t[2]["status"], "known");
        assert_eq!(t[2]["line"], 7);
        assert_eq!(t[2]["rule"], "queue delete queue queue-known");
        assert_eq!(t[2]["reason"], "RabbitMQ answers delete-ok");
        assert!(t[2]["steps"].is_array());

        assert_eq!(t[3]["status"], "stale");
        assert_eq!(t[3]["rule"], "basic 10");
        assert!(t[3].get("steps").is_none());

        assert_eq!(t[4]["status"], "skip");
        assert_eq!(t[4]["reason"], "needs a restart");
        assert!(t[4].get("steps").is_none());

        assert_eq!(t[5]["status"], "error");
        assert_eq!(t[5]["detail"], "cleanup failed: connection refused\nsecond line");
        assert!(t[5]["steps"].is_array());

        // And it reads back into the typed report.
        let back: JsonReport = serde_json::from_str(&json(&run())).unwrap();
        assert_eq!(back, JsonReport::of(&run()));
    }

    #[test]
    fn json_of_a_passing_run_is_conformant() {
        let mut r = run();
        r.results.retain(|t| !matches!(t.status, Status::Fail(_) | Status::Error { .. }));
        let v: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(v["conformant"], true, "known and stale do not make a run non-conformant");
        assert_eq!(v["counts"]["total"], 5);
        assert_eq!(v["counts"]["stale"], 1);
        assert!(summary(&r).ends_with(
            "5 traces against amqp://guest:***@127.0.0.1:5672/%2f, profile rabbitmq: 2 passed, 0 failed, 1 known \
             deviation, 1 stale deviation, 1 skipped (12.3 s)\nconformant"
        ));
    }

    #[test]
    fn trace_lines() {
        let r = run();
        let lines: Vec<String> = r.results.iter().map(line).collect();
        assert_eq!(lines[0], "pass  fixtures/seed/a.trace (0.05 s)");
        assert_eq!(
            lines[1],
            "FAIL  fixtures/spec/b.trace:12: after `c1.1 queue.declare ja durable` the broker did:\n\
             \x20       c1.1 closed 403 queue.declare\n\
             \x20     which the model does not allow. The model allows, for example:\n\
             \x20       possibility 1:\n\
             \x20         c1.1 closed 406 queue.declare"
        );
        assert_eq!(
            lines[2],
            "known ./fixtures/spec/c.trace:7: known deviation: queue delete queue queue-known: \
             RabbitMQ answers delete-ok (0.03 s)"
        );
        assert!(lines[3].starts_with("stale fixtures/spec/d.trace: stale deviation:"), "{}", lines[3]);
        assert!(lines[3].contains("`basic 10`") && lines[3].contains("remove the entry"));
        assert!(lines[3].ends_with(" (0.02 s)"), "{}", lines[3]);
        assert_eq!(lines[4], "skip  fixtures/spec/e.trace: needs a restart");
        assert_eq!(lines[5], "ERROR /abs/fixtures/f.trace: cleanup failed: connection refused\n      second line");
    }

    #[test]
    fn an_unmet_expect_and_the_notes_beside_a_failure() {
        let unmet = Finding::Unmet {
            expected: events(&["c1.1 queue.declare-ok q 5 0"]),
            observed: events(&["c1.1 queue.declare-ok q 0 0"]),
        };
        let failure = Failure {
            line: 3,
            finding: unmet,
            problems: vec![Problem::Timeout("c1: no answer to queue.delete within 5 s".into())],
            notes: vec!["the broker stopped answering".into()],
        };
        let r = result("x.trace", Status::Fail(failure), 1);
        assert_eq!(
            line(&r),
            "FAIL  x.trace:3: expected `c1.1 queue.declare-ok q 5 0`, but the step observed:\n\
             \x20       c1.1 queue.declare-ok q 0 0\n\
             \x20     note: c1: no answer to queue.delete within 5 s\n\
             \x20     note: the broker stopped answering"
        );
        let v: serde_json::Value = serde_json::from_str(&json(&SuiteRun { results: vec![r], ..run() })).unwrap();
        assert_eq!(v["traces"][0]["line"], 3);
        assert_eq!(
            v["traces"][0]["detail"],
            "expected `c1.1 queue.declare-ok q 5 0`, but the step observed:\n  c1.1 queue.declare-ok q 0 0\n\
             note: c1: no answer to queue.delete within 5 s\nnote: the broker stopped answering\n"
        );
        let error = Status::Error {
            problems: vec![Problem::Cleanup("cleanup: a".into()), Problem::Timeout("b".into())],
            notes: vec!["c".into()],
        };
        assert_eq!(line(&result("y.trace", error, 1)), "ERROR y.trace: cleanup: a; b; c");
    }

    #[test]
    fn summary_lists_what_did_not_pass_whole_and_the_totals() {
        let s = summary(&run());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines,
            [
                "FAIL  fixtures/spec/b.trace:12: after `c1.1 queue.declare ja durable` the broker did \
                 `c1.1 closed 403 queue.declare` where the model allows `c1.1 closed 406 queue.declare`",
                "known ./fixtures/spec/c.trace:7: known deviation: queue delete queue queue-known: RabbitMQ answers delete-ok",
                lines[2],
                "skip  fixtures/spec/e.trace: needs a restart",
                "ERROR /abs/fixtures/f.trace: cleanup failed: connection refused",
                "      second line",
                "",
                "7 traces against amqp://guest:***@127.0.0.1:5672/%2f, profile rabbitmq: 2 passed, 1 failed, 1 known \
                 deviation, 1 stale deviation, 1 skipped, 1 error (12.3 s)",
                "NOT conformant",
            ]
        );
        assert!(lines[2].starts_with("stale fixtures/spec/d.trace: ") && lines[2].contains("remove the entry"));
        assert!(!s.ends_with('\n'));
    }

    fn events(lines: &[&str]) -> Vec<Event> {
        lines.iter().map(|l| parse_event(l).unwrap()).collect()
    }

    fn divergence(command: Option<&str>, observed: &[&str], allowed: &[&[&str]]) -> Divergence {
        let command = command.map(|c| {
            let trace = parse(&format!("c1 connection.open\n{c}\n"), "t.trace").unwrap();
            let StepKind::Command { command, .. } = &trace.steps[1].kind else { panic!("a command") };
            command.clone()
        });
        Divergence { command, observed: events(observed), allowed: allowed.iter().map(|a| events(a)).collect() }
    }

    #[test]
    fn a_failure_is_listed_as_one_line_with_its_first_mismatch() {
        let mut r = run();
        let d = divergence(
            Some("c1.1 queue.declare ja durable"),
            &["c1.1 closed 403 queue.declare"],
            &[&["c1.1 closed 406 queue.declare"]],
        );
        r.results[1].status = Status::Fail(Failure {
            line: 12,
            finding: Finding::Diverged(Box::new(d)),
            problems: Vec::new(),
            notes: vec!["a note is not listed".into()],
        });
        let s = summary(&r);
        assert_eq!(
            s.lines().next().unwrap(),
            "FAIL  fixtures/spec/b.trace:12: after `c1.1 queue.declare ja durable` the broker did \
             `c1.1 closed 403 queue.declare` where the model allows `c1.1 closed 406 queue.declare`"
        );
        assert!(s.lines().nth(1).unwrap().starts_with("known "), "{s}");

        // An expect not met: the events of its kind that the step observed instead.
        r.results[1].status = Status::Fail(Failure {
            line: 12,
            finding: Finding::Unmet {
                expected: vec![parse_event("c1.1 queue.declare-ok q 5 0").unwrap()],
                observed: events(&["c1.1 queue.declare-ok q 0 0"]),
            },
            problems: Vec::new(),
            notes: Vec::new(),
        });
        assert_eq!(
            summary(&r).lines().next().unwrap(),
            "FAIL  fixtures/spec/b.trace:12: expected `c1.1 queue.declare-ok q 5 0`, but the step observed \
             `c1.1 queue.declare-ok q 0 0` instead"
        );
    }

    #[test]
    fn the_first_mismatch_of_a_divergence() {
        let deliver = |tag: u64, m: &str| format!("c1.1 basic.deliver a {tag} \"\" q {m}");
        let (d1, d2) = (deliver(1, "m1"), deliver(2, "m2"));
        // Something the model does not allow, where it allows nothing else on that channel.
        let d = divergence(Some("c1.1 basic.ack 1"), &[&d2], &[&[]]);
        assert_eq!(
            mismatch(&d),
            format!("after `c1.1 basic.ack 1` the broker did `{d2}`, which the model does not allow there")
        );
        // Something missing: the closest possibility is the one with only the missing delivery.
        let d = divergence(None, &[], &[&["c2.1 channel.open-ok", &d2], &[&d1]]);
        assert_eq!(mismatch(&d), format!("while waiting, the broker did not send `{d1}`, which the model would"));
        // The same events in another order on one channel.
        let d = divergence(Some("c1.1 basic.recover requeue"), &[&d2, &d1], &[&[&d1, &d2]]);
        assert_eq!(
            mismatch(&d),
            format!(
                "after `c1.1 basic.recover requeue` the broker did `{d2}` before `{d1}`, an order the model does \
                 not allow"
            )
        );
        // Server-generated names are alike: only the count differs.
        let d = divergence(
            Some("c1.1 queue.declare \"\""),
            &["c1.1 queue.declare-ok amq.gen-XyZ 1 0"],
            &[&["c1.1 queue.declare-ok amq.gen-1 0 0"]],
        );
        assert!(mismatch(&d).ends_with("did `c1.1 queue.declare-ok amq.gen-XyZ 1 0` where the model allows `c1.1 queue.declare-ok amq.gen-1 0 0`"), "{}", mismatch(&d));
    }

    #[test]
    fn summary_of_a_clean_run() {
        let mut r = run();
        r.results.retain(|t| t.status == Status::Pass);
        r.results.extend((0..10).map(|i| {
            result(
                &format!("k{i}.trace"),
                Status::Known {
                    seen: Box::new(Status::Fail(Failure::diverged(1, "c1.1 queue.delete q", &[], &[]))),
                    rule: "r".into(),
                    reason: "why".into(),
                },
                1,
            )
        }));
        assert_eq!(summary(&r).lines().count(), 10 + 1 + 2);
        assert!(summary(&r).ends_with(
            "\n12 traces against amqp://guest:***@127.0.0.1:5672/%2f, profile rabbitmq: 2 passed, 0 failed, 10 known \
             deviations, 0 skipped (12.3 s)\nconformant"
        ));
        r.results.truncate(1);
        r.elapsed = Duration::from_millis(60);
        r.target = "the model".into();
        assert_eq!(
            summary(&r),
            "1 trace against the model, profile rabbitmq: 1 passed, 0 failed, 0 skipped (0.1 s)\nconformant"
        );
    }
}
