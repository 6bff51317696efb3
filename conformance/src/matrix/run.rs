//! Running the matrix's columns: each target's suite (with its deviations file), then the client
//! suites that name it, while its broker is up. Columns on different brokers run at the same
//! time (most of a broker's column is waiting: for replies, grace periods, timeouts of a broker
//! that never answers); columns on the same broker run one after the other, so that one's restart
//! or deadlock never lands in another's trace. Each column's report is printed whole when it ends.

use super::{column, test_cell, ColumnCells, MatrixConfig, MatrixData, TargetConfig, EMBEDDED};
use crate::clients::{self, Expectations};
use crate::report;
use crate::suite::{run_suite, Status, TraceResult};
use crate::target::TargetSpec;
use crate::trace::Trace;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;

/// What one column came to.
#[derive(Debug)]
pub struct ColumnOutcome {
    /// Its cells, by fixture.
    pub cells: ColumnCells,
    /// Per client of the configuration (by index), its cells on this target, by test (None: the
    /// client does not run against it).
    pub clients: Vec<Option<ColumnCells>>,
    /// Whether the target conformed (apart from its deviations file), and so did every client's
    /// tests (apart from the client's expectations).
    pub conformant: bool,
}

/// Why the matrix could not be run: the target at fault and what went wrong.
#[derive(Debug)]
pub struct MatrixError {
    /// The target's name.
    pub target: String,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for MatrixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "target `{}`: {}", self.target, self.message)
    }
}

impl std::error::Error for MatrixError {}

/// Which targets must not run at the same time: those on one broker (by URI). The model and each
/// in-process reference broker are their own.
fn broker_key(t: &TargetConfig, index: usize) -> String {
    match t.broker.as_deref() {
        Some(uri) if uri != EMBEDDED => uri.to_string(),
        _ => format!("#{index}"),
    }
}

/// Run every column of `config` on `traces` that `selected` selects (columns on different
/// brokers at once), printing each column's report as it ends. `expectations` are the clients'
/// (in the configuration's order); `old` is the checked-in data, whose column a target keeps
/// when it is not selected, or optional and not available here; `json` names it in what is
/// printed.
pub fn run_columns(
    config: &MatrixConfig,
    traces: &[(String, Trace)],
    expectations: &[Expectations],
    old: Option<&MatrixData>,
    json: &Path,
    selected: &(dyn Fn(&TargetConfig) -> bool + Sync),
) -> Result<Vec<ColumnOutcome>, MatrixError> {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, t) in config.targets.iter().enumerate() {
        groups.entry(broker_key(t, i)).or_default().push(i);
    }
    let out: Mutex<Vec<Option<Result<ColumnOutcome, MatrixError>>>> =
        Mutex::new((0..config.targets.len()).map(|_| None).collect());
    let print = Mutex::new(());
    std::thread::scope(|s| {
        for members in groups.values() {
            let (out, print) = (&out, &print);
            s.spawn(move || {
                for &i in members {
                    let (outcome, text) = if selected(&config.targets[i]) {
                        run_column(config, i, traces, expectations, old, json)
                    } else {
                        (Ok(carried(config, i, old)), String::new())
                    };
                    {
                        let _one_at_a_time = print.lock().unwrap_or_else(|e| e.into_inner());
                        print!("{text}");
                    }
                    let failed = outcome.is_err();
                    out.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
                    if failed {
                        break;
                    }
                }
            });
        }
    });
    let mut results = Vec::new();
    for (i, r) in out.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().enumerate() {
        match r {
            Some(r) => results.push(r?),
            // After an earlier column on its broker failed to run.
            None => {
                return Err(MatrixError {
                    target: config.targets[i].name.clone(),
                    message: "not run: an earlier column on its broker could not be run".into(),
                })
            }
        }
    }
    Ok(results)
}

/// Column `index` of `config` as the checked-in data `old` has it, with its clients' results
/// (cells it lacks read as not run).
fn carried(config: &MatrixConfig, index: usize, old: Option<&MatrixData>) -> ColumnOutcome {
    let t = &config.targets[index];
    let cells = old.and_then(|o| o.column(&t.name)).unwrap_or_default();
    let clients = config
        .clients
        .iter()
        .map(|c| {
            c.targets.contains(&t.name).then(|| old.and_then(|o| o.client_column(&c.name, &t.name)).unwrap_or_default())
        })
        .collect();
    ColumnOutcome { cells, clients, conformant: true }
}

/// Run column `index` of `config`: its outcome, and its report as printed.
fn run_column(
    config: &MatrixConfig,
    index: usize,
    traces: &[(String, Trace)],
    expectations: &[Expectations],
    old: Option<&MatrixData>,
    json: &Path,
) -> (Result<ColumnOutcome, MatrixError>, String) {
    let t = &config.targets[index];
    let mut text = String::new();
    let fail = |message: String| MatrixError { target: t.name.clone(), message };
    let description = match t.description() {
        Ok(d) => d,
        Err(e) => return (Err(fail(e.to_string())), text),
    };
    let runs_clients = |c: &crate::clients::ClientConfig| c.targets.contains(&t.name);
    let open = match description.open(t.profile) {
        Ok(open) => open,
        Err(e) if t.optional => {
            let _ = writeln!(
                text,
                "{}: not available here ({e}); its column is the one in {}, not run",
                t.name,
                json.display()
            );
            return (Ok(carried(config, index, old)), text);
        }
        Err(e) => return (Err(fail(e.to_string())), text),
    };
    let spec = &open.spec;
    let deviations = match t.load_deviations() {
        Ok(d) => d,
        Err(e) => return (Err(fail(e.to_string())), text),
    };
    let count = traces.len();
    let what = format!("{}: {count} trace{}", t.name, if count == 1 { "" } else { "s" });
    let _ = writeln!(text, "{}", report::header(&what, &spec.label(), t.profile, t.jobs));
    let classify = |file: &str, status: Status| deviations.apply(t.profile, file, status);
    let mut failures = String::new();
    let run = run_suite(traces, spec, t.profile, t.jobs, &classify, &mut |r: &TraceResult| {
        if r.status.is_failure() {
            let _ = writeln!(failures, "{}", report::line(r));
        }
    });
    text.push_str(&failures);
    // The totals and the verdict (the traces that did not pass are on the page).
    let summary = report::summary(&run);
    let lines: Vec<&str> = summary.lines().collect();
    let _ = writeln!(text, "{}", lines[lines.len().saturating_sub(2)..].join("\n"));
    let mut conformant = run.conformant();
    let mut clients = Vec::new();
    for (k, c) in config.clients.iter().enumerate() {
        let TargetSpec::Broker { uri, .. } = spec else {
            clients.push(None);
            continue;
        };
        if !runs_clients(c) {
            clients.push(None);
            continue;
        }
        let slug: String = t.name.chars().map(|ch| if ch.is_alphanumeric() { ch } else { '-' }).collect();
        let file = std::path::PathBuf::from("target/clients").join(format!("{}-{slug}.json", c.name));
        let restart = t.restart_cmd.as_deref();
        let outcomes = match clients::run(c, &t.name, uri, restart, &file) {
            Ok(o) => o,
            Err(e) => return (Err(fail(format!("client `{}`: {e}", c.name))), text),
        };
        let verdicts = clients::judge(&outcomes, &t.name, &expectations[k]);
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (test, v) in &verdicts {
            *counts.entry(v.label()).or_default() += 1;
            if let Some(note) = v.note().filter(|_| matches!(v.label(), "FAIL" | "stale")) {
                let _ = writeln!(text, "{:<5} {} {test}: {note}", v.label(), c.name);
            }
        }
        let shown: Vec<String> = ["pass", "known", "stale", "FAIL", "skip"]
            .iter()
            .filter_map(|l| counts.get(l).map(|n| format!("{n} {l}")))
            .collect();
        let _ = writeln!(text, "{} on {}: {} tests: {}", c.name, t.name, verdicts.len(), shown.join(", "));
        conformant &= !counts.contains_key("FAIL");
        clients.push(Some(verdicts.iter().map(|(n, v)| (n.clone(), test_cell(v))).collect()));
    }
    (Ok(ColumnOutcome { cells: column(&run), clients, conformant }), text)
}
