//! A proxied run as the runner's reports see a run ([`crate::report::json`],
//! [`crate::report::junit`]): one trace, the session as recorded, judged against the upstream
//! broker. Its status is FAIL at the first divergence (at the recording's line of the event, when
//! the run was recorded; line 0 when not), pass otherwise; what else the proxy noticed (client
//! errors, a reading that fell behind, judging that stopped, a recording that failed) stands
//! beside it as incidents, as a broker's restart stands beside a trace's result.

use super::judge::Finding;
use super::Traffic;
use crate::suite::{Failure, Status, SuiteRun, TraceResult};
use crate::validate::Divergence;
use amqp_model::ProfileName;
use std::time::Duration;

/// The run through the proxy to `upstream` (host:port), judged under `profile`, as a suite run of
/// one trace.
pub fn suite_run(traffic: &Traffic, upstream: &str, profile: ProfileName, elapsed: Duration) -> SuiteRun {
    let status = traffic
        .findings
        .iter()
        .find_map(|f| match f {
            Finding::Divergence { after, observed, allowed, .. } => {
                let divergence = Divergence {
                    command: after.clone(),
                    observed: vec![observed.clone()],
                    allowed: allowed.iter().map(|e| vec![e.clone()]).collect(),
                };
                Some(Status::Fail(Failure {
                    line: traffic.divergence_line.unwrap_or(0),
                    finding: crate::suite::Finding::Diverged(Box::new(divergence)),
                    problems: Vec::new(),
                    notes: Vec::new(),
                }))
            }
            _ => None,
        })
        .unwrap_or(Status::Pass);
    let mut incidents: Vec<String> =
        traffic.findings.iter().filter(|f| !matches!(f, Finding::Divergence { .. })).map(|f| f.to_string()).collect();
    if !traffic.behind.is_empty() {
        let behind: Vec<String> = traffic.behind.iter().map(|c| format!("c{c}")).collect();
        incidents.push(format!("the reading fell behind on {} (forwarded, not read)", behind.join(", ")));
    }
    if let Some(e) = &traffic.recording_failed {
        incidents.push(format!("the recording stopped early: {e}"));
    }
    let file = traffic
        .recording
        .as_ref()
        .map_or_else(|| format!("proxied session to {upstream} (not recorded)"), |p| p.display().to_string());
    let result = TraceResult {
        file,
        title: Some(format!(
            "{} connection(s) through the proxy to {upstream}: {} command(s), {} event(s)",
            traffic.connections, traffic.commands, traffic.events
        )),
        cites: Vec::new(),
        status,
        duration: elapsed,
        recording: None,
        broker_lost: false,
        died_unanswered: false,
        incidents,
    };
    SuiteRun { target: format!("{upstream} through the proxy"), profile, results: vec![result], elapsed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amqp_model::event::Reply;
    use amqp_model::{ChanRef, Command, ConnId, Event, Name};

    fn purge_ok(n: u32) -> Event {
        Event::Reply { ch: ChanRef { conn: ConnId(1), channel: 1 }, reply: Reply::QueuePurgeOk { message_count: n } }
    }

    #[test]
    fn a_divergence_is_a_failed_trace_at_its_line_and_the_rest_are_incidents() {
        let purge = Command::QueuePurge { ch: ChanRef { conn: ConnId(1), channel: 1 }, queue: Name::from("qd2") };
        let traffic = Traffic {
            connections: 1,
            commands: 9,
            events: 8,
            recording: Some("rec/proxy-1-2.trace".into()),
            findings: vec![
                Finding::Divergence {
                    at: "c1.1".into(),
                    after: Some(purge),
                    observed: purge_ok(0),
                    allowed: vec![purge_ok(1)],
                },
                Finding::Stopped("after the divergence on c1.1".into()),
            ],
            divergence_line: Some(27),
            ..Traffic::default()
        };
        let run = suite_run(&traffic, "127.0.0.1:5673", ProfileName::Spec, Duration::from_secs(1));
        assert!(!run.conformant());
        let json = crate::report::json(&run);
        let report: crate::report::JsonReport = serde_json::from_str(&json).unwrap();
        assert_eq!(report.counts.fail, 1, "{json}");
        let trace = &report.traces[0];
        assert_eq!(trace.file, "rec/proxy-1-2.trace");
        assert_eq!(trace.line, Some(27), "{json}");
        let detail = trace.detail.as_deref().unwrap_or_default();
        assert!(
            detail.contains("after `c1.1 queue.purge qd2` the broker did:") && detail.contains("queue.purge-ok 1"),
            "{detail}"
        );
        let junit = crate::report::junit(&run);
        assert!(junit.contains("failures=\"1\"") && junit.contains("judging stopped: after the divergence"), "{junit}");
    }

    #[test]
    fn a_clean_run_passes_and_says_what_it_noticed() {
        let traffic = Traffic { connections: 2, behind: [2].into_iter().collect(), ..Traffic::default() };
        let run = suite_run(&traffic, "127.0.0.1:5672", ProfileName::Rabbitmq, Duration::from_secs(1));
        assert!(run.conformant());
        assert_eq!(run.results[0].status, Status::Pass);
        assert_eq!(run.results[0].incidents, ["the reading fell behind on c2 (forwarded, not read)"]);
        assert!(run.results[0].file.contains("not recorded"));
    }
}
