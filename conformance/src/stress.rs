//! The suite run again and again on a busy machine: every trace whose verdict is not the same in
//! every run is reported.
//!
//! A verdict must not depend on how fast the machine, the network or the broker is. The runner
//! waits for what the model predicts (bounded by a timeout) instead of sleeping, so a trace that
//! passes on an idle machine passes on a loaded one. [`Load`] keeps the CPUs busy meanwhile with
//! a bounded number of spinning threads of this process (they stop when it is dropped), and
//! [`differences`] finds the traces whose verdicts differed between runs: each is a defect of
//! the runner until it is shown to be the broker's.

use crate::suite::{Status, SuiteRun};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// CPU-bound threads that run until dropped.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<u64>>,
}

impl Load {
    /// Start `threads` threads that keep a core busy each.
    pub fn start(threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|i| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("stress-load-{i}"))
                    .spawn(move || {
                        // Work the optimiser cannot remove, checked against the flag now and then.
                        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ i as u64;
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..100_000 {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                            }
                        }
                        std::hint::black_box(x)
                    })
                    .expect("a load thread")
            })
            .collect();
        Load { stop, threads }
    }

    /// How many threads it runs.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A verdict as compared between runs: the status and, for a failure, its line (the details
/// of what was observed may differ in names the broker generated). A known deviation is the
/// same verdict wherever the trace first left the model: a broker that deviates may show it at
/// one step or a later one, depending on when its deliveries come (which the spec leaves open).
pub fn verdict(status: &Status) -> String {
    match status {
        Status::Pass => "pass".into(),
        Status::Fail(failure) => format!("FAIL at line {}", failure.line),
        Status::Known { rule, .. } => format!("known ({rule})"),
        Status::Stale { rule } => format!("stale ({rule})"),
        Status::Departs { failure, rule } => format!("departs from {rule} at line {}", failure.line),
        Status::Skip { reason } => format!("skip: {reason}"),
        Status::Error { .. } => "ERROR".into(),
    }
}

/// One verdict a trace had, and in which runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The verdict ([`verdict`]).
    pub verdict: String,
    /// The runs that gave it, numbered from 1.
    pub runs: Vec<usize>,
    /// The first of those runs' report line for the trace.
    pub line: String,
}

/// A trace whose verdict differed between runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The trace file.
    pub file: String,
    /// Each verdict seen, in the order first seen.
    pub verdicts: Vec<Seen>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {} different verdicts", self.file, self.verdicts.len())?;
        for Seen { verdict, runs, line } in &self.verdicts {
            let runs: Vec<String> = runs.iter().map(usize::to_string).collect();
            writeln!(f, "  {verdict} in run{} {}", if runs.len() == 1 { "" } else { "s" }, runs.join(", "))?;
            if verdict != "pass" {
                for l in line.lines() {
                    writeln!(f, "    {l}")?;
                }
            }
        }
        Ok(())
    }
}

/// The traces whose verdicts were not the same in every one of `runs`, in file order.
pub fn differences(runs: &[SuiteRun]) -> Vec<Difference> {
    let mut seen: BTreeMap<&str, Vec<Seen>> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        for r in &run.results {
            let v = verdict(&r.status);
            let entry = seen.entry(r.file.as_str()).or_default();
            match entry.iter_mut().find(|s| s.verdict == v) {
                Some(s) => s.runs.push(i + 1),
                None => entry.push(Seen { verdict: v, runs: vec![i + 1], line: crate::report::line(r) }),
            }
        }
    }
    seen.into_iter()
        .filter(|(_, verdicts)| verdicts.len() > 1)
        .map(|(file, verdicts)| Difference { file: file.to_string(), verdicts })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{Failure, TraceResult};
    use amqp_model::ProfileName;
    use std::time::Duration;

    fn run(statuses: &[(&str, Status)]) -> SuiteRun {
        let results = statuses
            .iter()
            .map(|(file, status)| TraceResult {
                file: file.to_string(),
                status: status.clone(),
                ..TraceResult::unrun(file, &crate::trace::parse("c1 connection.open\n", file).unwrap(), Status::Pass)
            })
            .collect();
        SuiteRun { target: "t".into(), profile: ProfileName::Rabbitmq, results, elapsed: Duration::ZERO }
    }

    #[test]
    fn a_trace_whose_verdict_changes_is_reported_with_the_runs_of_each() {
        let fail = |line| Status::Fail(Failure::diverged(line, "c1.1 queue.delete q", &[], &[]));
        let runs = [
            run(&[("a.trace", Status::Pass), ("b.trace", fail(3))]),
            run(&[("a.trace", fail(7)), ("b.trace", fail(3))]),
            run(&[("a.trace", Status::Pass), ("b.trace", fail(4))]),
        ];
        let d = differences(&runs);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].file, "a.trace");
        assert_eq!(
            d[0].verdicts.iter().map(|v| (v.verdict.as_str(), v.runs.clone())).collect::<Vec<_>>(),
            [("pass", vec![1, 3]), ("FAIL at line 7", vec![2])]
        );
        assert_eq!(d[1].verdicts.len(), 2, "a failure at another line is another verdict");
        assert!(differences(&runs[..1]).is_empty());
        assert!(differences(&[runs[0].clone(), runs[0].clone()]).is_empty());
    }

    #[test]
    fn the_load_stops_when_dropped() {
        let load = Load::start(2);
        assert_eq!(load.threads(), 2);
        drop(load);
    }
}
