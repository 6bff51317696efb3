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
//! A target with `optional = true` is a broker that may not be there (one built from
//! `../shared/brokers`): when it does not answer, its column is the checked-in one
//! (`docs/matrix.json`), said so on the terminal, not failed.
//!
//! A `[[client]]` is a client library's own test suite run against some of the targets
//! ([`crate::clients`]): the page gets a section per client, a row per test.
//!
//! The page holds nothing that changes from run to run of the same brokers (no times, no dates,
//! no run-unique names), so a fresh run reproduces it exactly and CI can fail when the checked-in
//! page is stale. It is rendered from the data alone ([`page::render`]), which is what lets a
//! column be carried over.

mod page;
mod run;

pub use page::{render, Links};
pub use run::{run_columns, ColumnOutcome, MatrixError};

use crate::clients::{ClientConfig, TestVerdict};
use crate::deviations::Deviations;
use crate::input::{InputError, InputErrors};
use crate::suite::{Status, SuiteRun};
use crate::target::uri::{BadUri, BrokerUri};
use crate::target::Description;
use crate::target::{Timing, DEFAULT_GRACE, DEFAULT_TIMEOUT};
use amqp_model::ProfileName;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
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
    /// Client libraries' own test suites, each run against some of the targets.
    #[serde(default, rename = "client")]
    pub clients: Vec<ClientConfig>,
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
    /// A broker that may not be there: when it does not answer, its column is the checked-in
    /// one, not a failure.
    #[serde(default)]
    pub optional: bool,
    /// For the reference broker: the product it names in `connection.start` (`serve
    /// --product`).
    pub product: Option<String>,
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
            if t.product.is_some() && t.broker.as_deref() != Some(EMBEDDED) {
                let message =
                    format!("target `{}`: product is for the reference broker (broker = \"{EMBEDDED}\")", t.name);
                return Err(InputError::file(&source, message));
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
            Some(EMBEDDED) => Description::Reference { timing, product: self.product.clone() },
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

/// One column's cells, by fixture (its path without `./`), or by test for a client's suite.
pub type ColumnCells = BTreeMap<String, Cell>;

/// A run's results as a column's cells.
pub fn column(run: &SuiteRun) -> ColumnCells {
    run.results
        .iter()
        .map(|r| {
            let file = r.file.strip_prefix("./").unwrap_or(&r.file).to_string();
            let cell = cell(&file, &r.status);
            (file, cell)
        })
        .collect()
}

/// How `status` of fixture `file` reads in the matrix.
pub fn cell(file: &str, status: &Status) -> Cell {
    let note = note(file, status).map(|n| {
        let prefix = format!("`{file}`: ");
        n.strip_prefix(&prefix).map_or(n.clone(), str::to_string)
    });
    Cell { label: label(status).to_string(), rank: rank(status), note }
}

/// How a client's test verdict reads in the matrix.
pub fn test_cell(verdict: &TestVerdict) -> Cell {
    let rank = match verdict {
        TestVerdict::Skip => 0,
        TestVerdict::Pass => 1,
        TestVerdict::Stale => 2,
        TestVerdict::Known { .. } => 3,
        TestVerdict::Fail { .. } => 5,
    };
    Cell { label: verdict.label().to_string(), rank, note: verdict.note().map(|n| escape(&stable(&n))) }
}

/// How a cell reads, from best to worst for a rule's row, where the worst fixture decides.
fn rank(status: &Status) -> u8 {
    match status {
        Status::Skip { .. } => 0,
        Status::Pass => 1,
        Status::Stale { .. } => 2,
        // A departure from a recommendation is, like a known deviation, the broker's way
        // accounted for, not a failure.
        Status::Departs { .. } | Status::Known { .. } => 3,
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
        Status::Departs { failure, rule } => Some(format!(
            "`{file}:{}`: departs from the recommendation of `{rule}` (allowed): {}",
            failure.line,
            first_line(&failure.detail())
        )),
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

/// The matrix's results as data (`docs/matrix.json`, beside the page), for the documentation
/// book's fixture and rule pages; the page is rendered from it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MatrixData {
    /// The columns' names, in order.
    pub targets: Vec<String>,
    /// Per fixture (its path, without `./`), one cell per target.
    pub cells: BTreeMap<String, Vec<Cell>>,
    /// Per client suite (by name), its results.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clients: BTreeMap<String, ClientData>,
}

/// A client suite's results: per test, one cell per target it ran against.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientData {
    /// The targets, in the matrix's order.
    pub targets: Vec<String>,
    /// Per test (by name), one cell per target.
    pub tests: BTreeMap<String, Vec<Cell>>,
}

impl MatrixData {
    /// The column of target `name`, if it has one.
    pub fn column(&self, name: &str) -> Option<ColumnCells> {
        let k = self.targets.iter().position(|t| t == name)?;
        Some(self.cells.iter().filter_map(|(file, cells)| Some((file.clone(), cells.get(k)?.clone()))).collect())
    }

    /// Client `client`'s cells on target `name` (per test), if it has them.
    pub fn client_column(&self, client: &str, name: &str) -> Option<ColumnCells> {
        let c = self.clients.get(client)?;
        let k = c.targets.iter().position(|t| t == name)?;
        Some(c.tests.iter().filter_map(|(test, cells)| Some((test.clone(), cells.get(k)?.clone()))).collect())
    }
}

/// A cell for what a column lacks: a fixture its checked-in results do not have (a target not
/// available here, carried over, and a fixture added since).
pub fn missing_cell(target: &str) -> Cell {
    Cell { label: "n/a".to_string(), rank: 0, note: Some(format!("not run: {target} was not available here")) }
}

/// The matrix's data: `targets` (names, in order) with their columns, every fixture of `files`
/// (a column without one gets [`missing_cell`]); `clients` (name, and per target its cells by
/// test) likewise.
pub fn assemble(
    targets: &[(String, ColumnCells)],
    files: &[String],
    clients: &[(String, Vec<(String, ColumnCells)>)],
) -> MatrixData {
    let mut out = MatrixData { targets: targets.iter().map(|(n, _)| n.clone()).collect(), ..MatrixData::default() };
    for file in files {
        let row = targets.iter().map(|(n, c)| c.get(file).cloned().unwrap_or_else(|| missing_cell(n))).collect();
        out.cells.insert(file.clone(), row);
    }
    for (client, columns) in clients {
        let mut data =
            ClientData { targets: columns.iter().map(|(n, _)| n.clone()).collect(), ..ClientData::default() };
        let tests: BTreeSet<&String> = columns.iter().flat_map(|(_, c)| c.keys()).collect();
        for test in tests {
            let row = columns.iter().map(|(n, c)| c.get(test).cloned().unwrap_or_else(|| missing_cell(n))).collect();
            data.tests.insert(test.clone(), row);
        }
        out.clients.insert(client.clone(), data);
    }
    out
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
            died_unanswered: false,
            incidents: Vec::new(),
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
            optional: false,
            product: None,
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
            result("fixtures/spec/d.trace", &["queue declare minimum-queues"], Status::Pass),
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
            result(
                "fixtures/spec/d.trace",
                &["queue declare minimum-queues"],
                Status::Departs {
                    failure: Failure::diverged(5, "c1.1 queue.declare amqpc-4242-3-q", &[], &[]),
                    rule: "queue declare minimum-queues".into(),
                },
            ),
        ]);
        let rows: Vec<(String, Vec<String>)> =
            model_run.results.iter().map(|r| (r.file.clone(), r.cites.clone())).collect();
        let files: Vec<String> = rows.iter().map(|(f, _)| f.clone()).collect();
        let columns = [(model.name.clone(), column(&model_run)), (broker.name.clone(), column(&broker_run))];
        let data = assemble(&columns, &files, &[]);
        let links = Links::for_page(std::path::Path::new("out/matrix.md"), None);
        let page = render(&data, &[&model, &broker], &rows, "matrix.toml", &links);
        // Summary: one line per target, counts by cell.
        assert!(page.contains("| model (spec) | spec | – | 3 | 0 | 0 | 0 | 0 | 0 | 0 | 1 |"), "{page}");
        assert!(
            page.contains("| Broker (spec) | spec | `deviations/b.toml` | 0 | 1 | 1 | 0 | 1 | 0 | 0 | 1 |"),
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
        // In the book, a fixture links to its page.
        let in_book = render(
            &data,
            &[&model, &broker],
            &rows,
            "matrix.toml",
            &Links::for_page(std::path::Path::new("docs/matrix.md"), None),
        );
        assert!(in_book.contains("| [spec/c](fixtures/spec/c.md) | – | – |"), "{in_book}");
        assert!(
            page.contains("| [spec/d](../fixtures/spec/d.trace) | pass | [departs](#notes-broker-spec-3) |"),
            "{page}"
        );
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
        assert!(
            page.contains(
                "`fixtures/spec/d.trace:5`: departs from the recommendation of `queue declare minimum-queues` (allowed): \
                 after `c1.1 queue.declare q` the broker did:"
            ),
            "{page}"
        );
        assert!(!page.contains("amqpc-") && !page.contains("0.12"), "{page}");
    }

    #[test]
    fn anchors_are_lowercase_words() {
        assert_eq!(page::anchor("GarageMQ (spec)"), "notes-garagemq-spec");
        assert_eq!(page::anchor("RabbitMQ 3.10.8 · rabbitmq"), "notes-rabbitmq-3-10-8-rabbitmq");
    }
}
