//! The conformance matrix: the suite run against every configured target (the model under each
//! profile, each broker under a profile with its deviations file), written as one Markdown page
//! (`docs/matrix.md`) with fixtures and rules as rows and targets as columns.
//!
//! The targets come from a TOML file (`matrix.toml` at the repository root):
//!
//! ```toml
//! paths = ["fixtures"]            # traces: files, directories, globs (as `run` takes them)
//!
//! [[target]]
//! name = "model (spec)"          # the column's heading
//! profile = "spec"
//!
//! [[target]]
//! name = "GarageMQ (spec)"
//! broker = "amqp://guest:guest@127.0.0.1:5673/%2f"
//! profile = "spec"
//! deviations = "deviations/garagemq.toml"
//! restart_cmd = "bash brokers/up.sh --restart garagemq"
//! jobs = 1                       # default 1
//! timeout_ms = 2000              # the runner's timing options; defaults as `run`'s
//! ```
//!
//! The page holds nothing that changes from run to run of the same brokers (no times, no dates,
//! no run-unique names), so a fresh run reproduces it exactly and CI can fail when the checked-in
//! page is stale.

use crate::deviations::Deviations;
use crate::input::{InputError, InputErrors};
use crate::suite::{Status, SuiteRun};
use crate::target::uri::{BadUri, BrokerUri};
use crate::target::Description;
use crate::target::{Timing, DEFAULT_GRACE, DEFAULT_TIMEOUT};
use amqp_model::ProfileName;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// The matrix's configuration: which traces, against which targets.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixConfig {
    /// Trace files, directories or globs.
    #[serde(default = "default_paths")]
    pub paths: Vec<PathBuf>,
    /// The columns, in order.
    #[serde(rename = "target")]
    pub targets: Vec<TargetConfig>,
}

fn default_paths() -> Vec<PathBuf> {
    vec![PathBuf::from("fixtures")]
}

/// One column of the matrix.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The column heading.
    pub name: String,
    /// The profile the target is judged under.
    pub profile: ProfileName,
    /// A broker's AMQP URI, or [`EMBEDDED`] for the reference broker started in-process (the
    /// model served over AMQP); without it, the model itself.
    pub broker: Option<String>,
    /// The broker's deviations file.
    pub deviations: Option<PathBuf>,
    /// The command that restarts the broker (restart fixtures; recovery of a broker that stops
    /// answering).
    pub restart_cmd: Option<String>,
    /// Traces run at once.
    #[serde(default = "one")]
    pub jobs: usize,
    /// The runner's timeout, in ms.
    pub timeout_ms: Option<u64>,
    /// The runner's grace period, in ms.
    pub grace_ms: Option<u64>,
}

/// The `broker` of a target that is the reference broker, started in-process on a loopback
/// port for the run (`serve`).
pub const EMBEDDED: &str = "embedded";

fn one() -> usize {
    1
}

impl MatrixConfig {
    /// Read a configuration file; errors name the file (and line).
    pub fn load(path: &std::path::Path) -> Result<MatrixConfig, InputError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| InputError::file(&source, format!("cannot read: {e}")))?;
        let config: MatrixConfig = toml::from_str(&text).map_err(|e| InputError::toml(&source, &text, &e))?;
        if config.targets.is_empty() {
            return Err(InputError::file(&source, "no [[target]]"));
        }
        let mut names = BTreeSet::new();
        for t in &config.targets {
            if !names.insert(&t.name) {
                return Err(InputError::file(&source, format!("two targets are named `{}`", t.name)));
            }
            if t.broker.is_none() && (t.restart_cmd.is_some() || t.deviations.is_some()) {
                let message = format!("target `{}`: restart_cmd and deviations need a broker", t.name);
                return Err(InputError::file(&source, message));
            }
        }
        Ok(config)
    }
}

impl TargetConfig {
    /// The target the runner runs against; an error says the broker's URI is not one.
    pub fn description(&self) -> Result<Description, BadUri> {
        let timing = Timing {
            timeout: self.timeout_ms.map_or(DEFAULT_TIMEOUT, Duration::from_millis),
            grace: self.grace_ms.map_or(DEFAULT_GRACE, Duration::from_millis),
        };
        Ok(match self.broker.as_deref() {
            None => Description::Model,
            Some(EMBEDDED) => Description::Reference { timing },
            Some(uri) => {
                Description::Broker { uri: BrokerUri::parse(uri)?, timing, restart_cmd: self.restart_cmd.clone() }
            }
        })
    }

    /// Its deviations file, checked against the fixtures (paths relative to the current
    /// directory), or none.
    pub fn load_deviations(&self) -> Result<Deviations, InputErrors> {
        self.deviations.as_deref().map_or(Ok(Deviations::none()), Deviations::load_checked)
    }
}

/// One column's outcome: its configuration and the run.
#[derive(Debug)]
pub struct Column<'a> {
    /// How it was configured.
    pub config: &'a TargetConfig,
    /// What the suite did on it.
    pub run: SuiteRun,
}

/// How a cell reads, from best to worst for a rule's row, where the worst fixture decides.
fn rank(status: &Status) -> u8 {
    match status {
        Status::Skip { .. } => 0,
        Status::Pass => 1,
        Status::Stale { .. } => 2,
        Status::Known { .. } => 3,
        Status::Error { .. } => 4,
        Status::Fail(_) => 5,
    }
}

/// Remove what differs between two runs of the same broker from a verdict's text: the
/// run-unique prefix of queue and exchange names (`amqpc-1234-5-`) and durations.
fn stable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("amqpc-") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "amqpc-".len()..];
        // amqpc-<pid>-<n>-name
        let mut parts = after.splitn(3, '-');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(pid), Some(n), Some(name))
                if !pid.is_empty()
                    && pid.bytes().all(|b| b.is_ascii_digit())
                    && !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit()) =>
            {
                rest = name;
            }
            _ => {
                out.push_str("amqpc-");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The first line of a verdict, made stable and safe inside a Markdown table.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    escape(&stable(line))
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;")
}

/// A cell's note (None for a plain pass or a skip for the other profile).
fn note(file: &str, status: &Status) -> Option<String> {
    match status {
        Status::Pass => None,
        Status::Skip { reason } if reason.starts_with("written for the ") => None,
        Status::Skip { reason } => Some(format!("`{file}`: skipped: {}", escape(reason))),
        // Without the line: where a broker's known deviation first shows may depend on timing
        // (a close racing the next step), and the page must be the same on every run.
        Status::Known { rule, reason, .. } => {
            Some(format!("`{file}`: known deviation from `{rule}`: {}", escape(reason)))
        }
        Status::Stale { rule } => {
            Some(format!("`{file}`: listed as a deviation from `{rule}` but passed (stale entry)"))
        }
        Status::Fail(failure) => Some(format!("`{file}:{}`: FAIL: {}", failure.line, first_line(&failure.detail()))),
        Status::Error { problems, notes } => {
            Some(format!("`{file}`: ERROR: {}", first_line(&Status::cause(problems, notes))))
        }
    }
}

fn label(status: &Status) -> &'static str {
    match status {
        Status::Skip { reason } if reason.starts_with("written for the ") => "–",
        other => other.label(),
    }
}

/// A GitHub/mdBook heading anchor for a column's notes.
fn anchor(name: &str) -> String {
    let mut out = String::from("notes-");
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// The matrix's results as data (`docs/matrix.json`, beside the page), for the documentation
/// book's fixture and rule pages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MatrixData {
    /// The columns' names, in order.
    pub targets: Vec<String>,
    /// Per fixture (its path, without `./`), one cell per target.
    pub cells: BTreeMap<String, Vec<Cell>>,
}

/// One fixture's result on one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// As the page shows it: `pass`, `known`, `FAIL`, ...
    pub label: String,
    /// From best to worst: skip, pass, stale, known, ERROR, FAIL.
    pub rank: u8,
    /// What the page's note says (rule and reason, or the failure), if anything.
    pub note: Option<String>,
}

/// The results of `columns` as [`MatrixData`].
pub fn data(columns: &[Column<'_>]) -> MatrixData {
    let mut out =
        MatrixData { targets: columns.iter().map(|c| c.config.name.clone()).collect(), ..MatrixData::default() };
    for c in columns {
        for r in &c.run.results {
            let file = r.file.strip_prefix("./").unwrap_or(&r.file).to_string();
            let note = note(&file, &r.status).map(|n| {
                let prefix = format!("`{file}`: ");
                n.strip_prefix(&prefix).map_or(n.clone(), str::to_string)
            });
            let cell = Cell { label: label(&r.status).to_string(), rank: rank(&r.status), note };
            out.cells.entry(file).or_default().push(cell);
        }
    }
    out
}

/// Render the matrix page. `config_path` is named in the header; `fixture_link` turns a trace
/// path into the link the page uses for it (relative to where the page lives).
pub fn render(columns: &[Column<'_>], config_path: &str, fixture_link: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Conformance matrix\n");
    let _ = writeln!(
        out,
        "Every fixture run against every target of `{config_path}`: the model under each profile and each broker \
         under a profile, with its deviations file. Generated by `just matrix`; do not edit it by hand. CI runs \
         the matrix again and fails when this page differs from the fresh run.\n"
    );
    let _ = writeln!(
        out,
        "Cells: **pass**; **known**: fails as the broker's deviations file says (the note gives the rule and the \
         reason; the trace's report, `amqp-conformance run`, gives the step); **stale**: listed as a deviation but passed; \
         **FAIL**: departs from the model, not listed; **ERROR**: the run went wrong (no answer, failed \
         cleanup); **skip**: not run (the note says why); **–**: written for the other profile.\n"
    );
    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "| target | profile | deviations | pass | known | stale | FAIL | ERROR | skip | – |");
    let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|");
    for c in columns {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &c.run.results {
            *counts.entry(label(&r.status)).or_default() += 1;
        }
        let n = |l: &str| counts.get(l).copied().unwrap_or(0);
        let deviations =
            c.config.deviations.as_ref().map_or("–".to_string(), |d| format!("[{0}](../{0})", d.display()));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.config.name,
            c.config.profile,
            deviations,
            n("pass"),
            n("known"),
            n("stale"),
            n("FAIL"),
            n("ERROR"),
            n("skip"),
            n("–")
        );
    }
    out.push('\n');

    // Notes, numbered per column in fixture order; identical texts share a number.
    let mut notes: Vec<Vec<String>> = vec![Vec::new(); columns.len()];
    let mut cells: Vec<Vec<String>> = Vec::new();
    let files: Vec<&str> =
        columns.first().map_or(Vec::new(), |c| c.run.results.iter().map(|r| r.file.as_str()).collect());
    for (row, file) in files.iter().enumerate() {
        let mut line = Vec::new();
        for (k, c) in columns.iter().enumerate() {
            let status = &c.run.results[row].status;
            let text = label(status);
            match note(file, status) {
                None => line.push(text.to_string()),
                Some(n) => {
                    let at = match notes[k].iter().position(|x| *x == n) {
                        Some(i) => i,
                        None => {
                            notes[k].push(n);
                            notes[k].len() - 1
                        }
                    };
                    line.push(format!("[{text}](#{}-{})", anchor(&c.config.name), at + 1));
                }
            }
        }
        cells.push(line);
    }

    let header = |out: &mut String, first: &str| {
        let _ = write!(out, "| {first} |");
        for c in columns {
            let _ = write!(out, " {} |", c.config.name);
        }
        out.push('\n');
        let _ = write!(out, "|---|");
        for _ in columns {
            out.push_str("---|");
        }
        out.push('\n');
    };

    // By rule: the worst outcome among the fixtures citing it.
    let _ = writeln!(out, "## By rule\n");
    let _ = writeln!(
        out,
        "Each rule cited by a fixture (`cite:`), with the worst outcome among the fixtures citing it (pass < stale \
         < known < ERROR < FAIL; a skip counts only when every fixture was skipped) and how many fixtures cite it.\n"
    );
    let mut by_rule: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    if let Some(c) = columns.first() {
        for (row, r) in c.run.results.iter().enumerate() {
            for cite in &r.cites {
                by_rule.entry(cite.as_str()).or_default().push(row);
            }
        }
    }
    header(&mut out, "rule (fixtures)");
    for (rule, rows) in &by_rule {
        let _ = write!(out, "| `{rule}` ({}) |", rows.len());
        for c in columns {
            let worst = rows.iter().map(|&i| &c.run.results[i].status).max_by_key(|s| rank(s));
            let _ = write!(out, " {} |", worst.map_or("–", label));
        }
        out.push('\n');
    }
    out.push('\n');

    let _ = writeln!(out, "## By fixture\n");
    header(&mut out, "fixture");
    for (row, file) in files.iter().enumerate() {
        let _ = write!(out, "| [{}]({}) |", short(file), fixture_link(file));
        for cell in &cells[row] {
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out.push('\n');

    let _ = writeln!(out, "## Notes\n");
    for (k, c) in columns.iter().enumerate() {
        if notes[k].is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {}\n", c.config.name);
        for (i, n) in notes[k].iter().enumerate() {
            let _ = writeln!(out, "{}. <a id=\"{}-{}\"></a>{n}", i + 1, anchor(&c.config.name), i + 1);
        }
        out.push('\n');
    }
    out
}

/// A fixture's path without the leading `fixtures/` and the `.trace` suffix.
fn short(file: &str) -> &str {
    let f = file.strip_prefix("./").unwrap_or(file);
    let f = f.strip_prefix("fixtures/").unwrap_or(f);
    f.strip_suffix(".trace").unwrap_or(f)
}

/// The lines that differ between the checked-in page and a fresh one, for a stale check's
/// message: up to `max`, each `-old` / `+new`.
pub fn differences(old: &str, new: &str, max: usize) -> Vec<String> {
    let old_lines: BTreeSet<&str> = old.lines().collect();
    let new_lines: BTreeSet<&str> = new.lines().collect();
    let mut out: Vec<String> = old.lines().filter(|l| !new_lines.contains(l)).map(|l| format!("-{l}")).collect();
    out.extend(new.lines().filter(|l| !old_lines.contains(l)).map(|l| format!("+{l}")));
    out.truncate(max);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Failure;

    #[test]
    fn run_unique_prefixes_are_removed() {
        assert_eq!(stable("deleting amqpc-8894-150-ja: no answer"), "deleting ja: no answer");
        assert_eq!(stable("amqpc-x and amqpc-1-2-a-b"), "amqpc-x and a-b");
        assert_eq!(stable("amqpc-12-"), "amqpc-12-");
    }

    fn result(file: &str, cites: &[&str], status: Status) -> crate::suite::TraceResult {
        crate::suite::TraceResult {
            file: file.into(),
            title: None,
            cites: cites.iter().map(|c| c.to_string()).collect(),
            status,
            duration: Duration::from_millis(123),
            recording: None,
            broker_lost: false,
        }
    }

    fn target(name: &str, deviations: Option<&str>) -> TargetConfig {
        TargetConfig {
            name: name.into(),
            profile: ProfileName::Spec,
            broker: deviations.map(|_| "amqp://guest:guest@127.0.0.1:5673/%2f".into()),
            deviations: deviations.map(PathBuf::from),
            restart_cmd: None,
            jobs: 1,
            timeout_ms: None,
            grace_ms: None,
        }
    }

    #[test]
    fn the_page_has_a_cell_per_fixture_and_target_with_numbered_notes() {
        let (model, broker) = (target("model (spec)", None), target("Broker (spec)", Some("deviations/b.toml")));
        let known = |line| Status::Known {
            seen: Box::new(Status::Fail(Failure::diverged(line, "c1.1 queue.delete amqpc-99-1-q", &[], &[]))),
            rule: "queue delete 01".into(),
            reason: "never answers".into(),
        };
        let run = |results| SuiteRun {
            target: "t".into(),
            profile: ProfileName::Spec,
            results,
            elapsed: Duration::from_secs(3),
        };
        let model_run = run(vec![
            result("fixtures/spec/a.trace", &["queue delete 01"], Status::Pass),
            result("fixtures/spec/b.trace", &["queue delete 01", "basic ack 02"], Status::Pass),
            result(
                "fixtures/spec/c.trace",
                &["basic ack 02"],
                Status::Skip { reason: "written for the rabbitmq profile".into() },
            ),
        ]);
        let broker_run = run(vec![
            result("fixtures/spec/a.trace", &["queue delete 01"], known(7)),
            result(
                "fixtures/spec/b.trace",
                &["queue delete 01", "basic ack 02"],
                Status::Fail(Failure::diverged(9, "c1.1 queue.delete amqpc-4242-3-q", &[], &[])),
            ),
            result(
                "fixtures/spec/c.trace",
                &["basic ack 02"],
                Status::Skip { reason: "written for the rabbitmq profile".into() },
            ),
        ]);
        let columns = [Column { config: &model, run: model_run }, Column { config: &broker, run: broker_run }];
        let page = render(&columns, "matrix.toml", &|f| format!("../{f}"));
        // Summary: one line per target, counts by cell.
        assert!(page.contains("| model (spec) | spec | – | 2 | 0 | 0 | 0 | 0 | 0 | 1 |"), "{page}");
        assert!(
            page.contains(
                "| Broker (spec) | spec | [deviations/b.toml](../deviations/b.toml) | 0 | 1 | 0 | 1 | 0 | 0 | 1 |"
            ),
            "{page}"
        );
        // Fixture rows link the fixture, and each non-pass cell its note.
        assert!(
            page.contains("| [spec/a](../fixtures/spec/a.trace) | pass | [known](#notes-broker-spec-1) |"),
            "{page}"
        );
        assert!(
            page.contains("| [spec/b](../fixtures/spec/b.trace) | pass | [FAIL](#notes-broker-spec-2) |"),
            "{page}"
        );
        assert!(page.contains("| [spec/c](../fixtures/spec/c.trace) | – | – |"), "{page}");
        // Rules: the worst outcome among the fixtures citing it.
        assert!(page.contains("| `queue delete 01` (2) | pass | FAIL |"), "{page}");
        assert!(page.contains("| `basic ack 02` (2) | pass | FAIL |"), "{page}");
        // Notes carry the line, the rule and reason, and nothing run-specific.
        assert!(page.contains(
            "1. <a id=\"notes-broker-spec-1\"></a>`fixtures/spec/a.trace`: known deviation from `queue delete 01`: never answers"
        ), "{page}");
        assert!(
            page.contains("`fixtures/spec/b.trace:9`: FAIL: after `c1.1 queue.delete q` the broker did:"),
            "{page}"
        );
        assert!(!page.contains("amqpc-") && !page.contains("0.12"), "{page}");
    }

    #[test]
    fn anchors_are_lowercase_words() {
        assert_eq!(anchor("GarageMQ (spec)"), "notes-garagemq-spec");
        assert_eq!(anchor("RabbitMQ 3.10.8 · rabbitmq"), "notes-rabbitmq-3-10-8-rabbitmq");
    }
}
