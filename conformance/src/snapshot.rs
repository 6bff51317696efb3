//! Snapshots: a replayed trace's outcome in a form that is the same on every run against the same
//! broker, for `insta` snapshots (`conformance/tests/snapshots.rs`, one per fixture per target).
//!
//! [`outcome`] turns a [`Recording`] into an [`Outcome`]: the verdict, then every step run (its
//! trace line, the step as the trace writes it, and what it observed, as `expect` lines would
//! write it). Four things are normalised, because they vary from run to run without the broker
//! behaving any differently, and one deliberately is not:
//!
//! - **Server-generated names.** Queue names the broker made up (`amq.gen-...`) become
//!   `amq.gen-1`, `amq.gen-2`, ... and server-chosen consumer tags (`amq.ctag-...`) become
//!   `amq.ctag-1`, ..., and direct reply-to names (`amq.rabbitmq.reply-to.<key>`)
//!   `amq.rabbitmq.reply-to.1`, ..., numbered in order of first appearance in the steps, then in
//!   the verdict.
//!   The same name always gets the same number, so a snapshot still shows which delivery went to
//!   which generated consumer.
//! - **Order across streams.** AMQP orders frames only within a channel, and each connection is
//!   its own socket: a broker may interleave two channels differently on every run. Each step's
//!   events are sorted by stream (connection, then its channels by number, the connection's own
//!   events first), keeping every stream's own order, which is the order the broker must keep.
//! - **Answers against deliveries.** Within a stream, the answers to the client's command (its
//!   reply, returns and confirms) come first, then what the broker pushed of its own accord
//!   (deliveries, consumer cancels, closes), each group in its observed order. The validator
//!   lets a command's answer be interleaved with the deliveries it makes possible (RabbitMQ sends
//!   the messages `basic.recover` requeues before or after `recover-ok`, from run to run), and
//!   the live target cannot tell the two apart anyway: lapin hands it replies, returns and
//!   confirms through the command's future, deliveries through a callback, and which of them it
//!   records first depends on scheduling.
//! - **When a message died.** The `time` of each `x-death` entry of a dead-lettered message (a
//!   timestamp in seconds) is left out, as the validator leaves it out of its comparisons.
//! - **Delivery tags** are kept as observed, which already makes them run-independent: they are
//!   per channel and the broker numbers them from 1 (the model does the same, and the validator
//!   compares them exactly), so a conforming broker gives the same tags every time. Renumbering
//!   them would hide exactly the changes a snapshot should show: a counter shared between
//!   channels, a `basic.get-ok` that does not count, tags that restart after an acknowledgement;
//!   and in a divergence it could make what was observed look the same as what the model allowed.
//!
//! Steps stay in trace order, each with its own events, rather than being merged into one list
//! per channel: a reader sees what each command did. That relies on the runner attributing each
//! event to the step that caused it, which it does by listening for as long as the model says a
//! delivery is owed; the live snapshot test runs against RabbitMQ repeatedly with the same result.

use crate::run::{Observation, Recording, Verdict};
use crate::trace::{write_command, write_event, write_expected, StepKind, Trace};
use amqp_model::Event;
use serde::Serialize;
use std::collections::BTreeMap;

/// The prefixes of server-generated names: queues, then consumer tags.
const GENERATED: [&str; 3] = ["amq.gen-", "amq.ctag-", "amq.rabbitmq.reply-to."];

/// The normalised outcome of one replayed trace: what a snapshot holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `pass`, `diverged at line N` (the target did something the model does not allow) or
    /// `unmet at line N` (an `expect` line was not among what its step observed).
    pub verdict: String,
    /// For `unmet`: the `expect` line's observation, as the trace writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// For `diverged`: some of what the model would have allowed at that step instead, one list
    /// of events per possibility (each sorted by stream, as the steps are). What the target did
    /// there is the last step's `events`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<Vec<String>>,
    /// Every step that was run, in order, up to the verdict (the runner's final wait included).
    pub steps: Vec<StepOutcome>,
}

/// One step of an [`Outcome`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepOutcome {
    /// The step's line in the trace file (for the runner's final wait: the trace's last line
    /// with a step).
    pub line: usize,
    /// The step as the trace writes it (`c1.1 basic.consume ja "" -> $t`, `wait`), or
    /// `wait (end of trace)` for the wait the runner adds after the last step.
    pub step: String,
    /// What the step observed, as `expect` lines write it, sorted by stream.
    pub events: Vec<String>,
}

/// The normalised outcome of `recording`, a replay of `trace` (see the module documentation for
/// what is normalised and why).
pub fn outcome(trace: &Trace, recording: &Recording) -> Outcome {
    // The runner records one observation per command or wait, in trace order, and then one for
    // its final wait.
    let run_steps: Vec<&crate::trace::Step> =
        trace.steps.iter().filter(|s| !matches!(s.kind, StepKind::Expect(_))).collect();
    let mut names = Renamer::default();
    let steps = recording
        .steps
        .iter()
        .enumerate()
        .map(|(i, observation)| {
            let step = match run_steps.get(i).map(|s| (&s.kind, s.pipelined)) {
                Some((StepKind::Command { command, capture }, pipelined)) => {
                    let command = if pipelined {
                        format!("pipelined {}", write_command(command))
                    } else {
                        write_command(command)
                    };
                    match capture {
                        Some(var) => format!("{command} -> {var}"),
                        None => command,
                    }
                }
                Some(_) => "wait".to_string(),
                None => describe_unmatched(observation),
            };
            StepOutcome {
                line: observation.line,
                step: names.text(&step),
                events: written(&observation.events).iter().map(|e| names.text(e)).collect(),
            }
        })
        .collect();
    let (verdict, expected, allowed) = match &recording.verdict {
        Verdict::Pass => ("pass".to_string(), None, Vec::new()),
        Verdict::Diverged { line, divergence } => {
            let allowed = divergence
                .allowed
                .iter()
                .map(|events| written(events).iter().map(|e| names.text(e)).collect())
                .collect();
            (format!("diverged at line {line}"), None, allowed)
        }
        Verdict::Unmet { line, expected, .. } => {
            (format!("unmet at line {line}"), Some(names.text(&write_expected(expected))), Vec::new())
        }
    };
    Outcome { verdict, expected, allowed, steps }
}

/// A step the trace does not account for: the runner's final wait (or, for a recording that
/// does not belong to the trace, its own command).
fn describe_unmatched(observation: &Observation) -> String {
    match &observation.command {
        Some(command) => write_command(command),
        None => "wait (end of trace)".to_string(),
    }
}

/// Events as `expect` lines write them, sorted by stream (connection, then channel), and within
/// a stream the answers before what the broker pushed, each in its own order; without what no
/// two runs agree on (the `time` of an `x-death` entry, [`crate::validate::blank`]).
fn written(events: &[Event]) -> Vec<String> {
    let mut sorted: Vec<Event> = events.iter().map(crate::validate::blank).collect();
    sorted.sort_by_key(|e| (e.connection(), e.channel(), pushed(e)));
    sorted.iter().map(write_event).collect()
}

/// Whether the broker sends `e` of its own accord (a delivery, a consumer cancel, a close), as
/// opposed to an answer to what the client sent (a reply, a return or a confirm of a publish).
fn pushed(e: &Event) -> bool {
    matches!(
        e,
        Event::Deliver { .. } | Event::Cancel { .. } | Event::ChannelClosed { .. } | Event::ConnectionClosed { .. }
    )
}

/// Gives server-generated names symbolic numbers in order of first appearance.
#[derive(Debug, Default)]
struct Renamer {
    /// Generated name -> its symbolic name.
    seen: BTreeMap<String, String>,
    /// How many names of each kind (index into [`GENERATED`]) have been numbered.
    counts: [usize; GENERATED.len()],
}

/// A character that can continue a generated name (RabbitMQ's are base64url).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl Renamer {
    /// `text` with every generated name replaced by its symbolic name. A generated name starts
    /// where a word does (not inside `xamq.gen-...`) and runs as long as [`name_char`] allows.
    fn text(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        let mut prev: Option<char> = None;
        while let Some(c) = text[i..].chars().next() {
            let starts_word = prev.is_none_or(|p| !(name_char(p) || p == '.'));
            let found = GENERATED.iter().enumerate().find(|(_, p)| starts_word && text[i..].starts_with(*p));
            if let Some((kind, prefix)) = found {
                let body = i + prefix.len();
                // A direct reply-to name is base64 with dots (`+`, `/`, `=` too).
                let part = |c: char| name_char(c) || kind == 2 && "+/=.".contains(c);
                let end = text[body..].find(|c: char| !part(c)).map_or(text.len(), |n| body + n);
                if end > body {
                    out.push_str(&self.symbol(kind, &text[i..end]));
                    prev = text[..end].chars().next_back();
                    i = end;
                    continue;
                }
            }
            out.push(c);
            prev = Some(c);
            i += c.len_utf8();
        }
        out
    }

    fn symbol(&mut self, kind: usize, name: &str) -> String {
        if let Some(s) = self.seen.get(name) {
            return s.clone();
        }
        self.counts[kind] += 1;
        let symbol = format!("{}{}", GENERATED[kind], self.counts[kind]);
        self.seen.insert(name.to_string(), symbol.clone());
        symbol
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{parse, parse_event};
    use crate::validate::Divergence;

    const TRACE: &str = "\
c1 connection.open
c1.1 channel.open
c1.2 channel.open
c1.1 queue.declare \"\" exclusive -> $q
c1.1 basic.consume $q \"\" -> $t
c1.2 basic.consume $q w2
c1.2 basic.publish \"\" $q a
c1.2 basic.publish \"\" $q b
wait
";

    fn events(lines: &[&str]) -> Vec<Event> {
        lines.iter().map(|l| parse_event(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
    }

    /// A recording of TRACE with the given generated queue name and tag, and the wait's events
    /// (in arrival order).
    fn recording(queue: &str, tag: &str, wait: &[&str]) -> Recording {
        let trace = parse(TRACE, "t").unwrap();
        let per_step: Vec<Vec<Event>> = vec![
            events(&["c1 connection.open-ok"]),
            events(&["c1.1 channel.open-ok"]),
            events(&["c1.2 channel.open-ok"]),
            events(&[&format!("c1.1 queue.declare-ok {queue} 0 0")]),
            events(&[&format!("c1.1 basic.consume-ok {tag}")]),
            events(&["c1.2 basic.consume-ok w2"]),
            vec![],
            vec![],
            events(wait),
            vec![],
        ];
        let steps = trace
            .steps
            .iter()
            .map(|s| (s.line, s.kind.clone()))
            .chain([(9, StepKind::Wait)])
            .zip(per_step)
            .map(|((line, kind), events)| Observation {
                line,
                command: match kind {
                    StepKind::Command { command, .. } => Some(command),
                    _ => None,
                },
                events,
            })
            .collect();
        Recording { verdict: Verdict::Pass, steps }
    }

    fn outcome_of(r: &Recording) -> Outcome {
        outcome(&parse(TRACE, "t").unwrap(), r)
    }

    #[test]
    fn generated_names_tags_and_cross_channel_order_do_not_show() {
        let a = recording(
            "amq.gen-JzTY20BRgKO-HjmUJj0wLg",
            "amq.ctag-x1Yb_Qq2",
            &[
                "c1.1 basic.deliver amq.ctag-x1Yb_Qq2 1 \"\" amq.gen-JzTY20BRgKO-HjmUJj0wLg a",
                "c1.2 basic.deliver w2 1 \"\" amq.gen-JzTY20BRgKO-HjmUJj0wLg b",
            ],
        );
        let b = recording(
            "amq.gen-7",
            "amq.ctag-8",
            &["c1.2 basic.deliver w2 1 \"\" amq.gen-7 b", "c1.1 basic.deliver amq.ctag-8 1 \"\" amq.gen-7 a"],
        );
        let (oa, ob) = (outcome_of(&a), outcome_of(&b));
        assert_eq!(oa, ob);
        assert_eq!(oa.steps[3].events, ["c1.1 queue.declare-ok amq.gen-1 0 0"]);
        assert_eq!(oa.steps[4].step, "c1.1 basic.consume $q \"\" -> $t");
        assert_eq!(
            oa.steps[8].events,
            ["c1.1 basic.deliver amq.ctag-1 1 \"\" amq.gen-1 a", "c1.2 basic.deliver w2 1 \"\" amq.gen-1 b"]
        );
        assert_eq!(oa.steps[9].step, "wait (end of trace)");
        // Normalising is idempotent on what it produces.
        let again: Vec<String> = oa.steps[8].events.iter().map(|e| Renamer::default().text(e)).collect();
        assert_eq!(again[0], oa.steps[8].events[0]);
    }

    #[test]
    fn a_flag_a_body_a_tag_or_the_order_within_a_channel_does_show() {
        let base = ["c1.1 basic.deliver amq.ctag-1 1 \"\" amq.gen-2 a", "c1.2 basic.deliver w2 1 \"\" amq.gen-2 b"];
        let reference = outcome_of(&recording("amq.gen-2", "amq.ctag-1", &base));
        let changed = [
            ["c1.1 basic.deliver amq.ctag-1 1 \"\" amq.gen-2 a redelivered", base[1]],
            ["c1.1 basic.deliver amq.ctag-1 1 \"\" amq.gen-2 z", base[1]],
            ["c1.1 basic.deliver amq.ctag-1 2 \"\" amq.gen-2 a", base[1]],
            // Which consumer got which message.
            ["c1.1 basic.deliver amq.ctag-1 1 \"\" amq.gen-2 b", "c1.2 basic.deliver w2 1 \"\" amq.gen-2 a"],
        ];
        for wait in changed {
            assert_ne!(outcome_of(&recording("amq.gen-2", "amq.ctag-1", &wait)), reference, "{wait:?}");
        }
        // Two deliveries on one channel in the other order.
        let one = ["c1.2 basic.deliver w2 1 \"\" amq.gen-2 a", "c1.2 basic.deliver w2 2 \"\" amq.gen-2 b"];
        let swapped = ["c1.2 basic.deliver w2 2 \"\" amq.gen-2 b", "c1.2 basic.deliver w2 1 \"\" amq.gen-2 a"];
        assert_ne!(
            outcome_of(&recording("amq.gen-2", "amq.ctag-1", &one)),
            outcome_of(&recording("amq.gen-2", "amq.ctag-1", &swapped))
        );
    }

    #[test]
    fn answers_come_before_what_the_broker_pushed_on_their_stream() {
        let observed = events(&[
            "c1.1 basic.deliver w1 3 \"\" ja m0 redelivered",
            "c2.1 basic.deliver w2 1 \"\" ja m1 redelivered",
            "c1.1 basic.recover-ok",
            "c1.1 basic.deliver w1 4 \"\" ja m2 redelivered",
            "c1 connection.close-ok",
        ]);
        assert_eq!(
            written(&observed),
            [
                "c1 connection.close-ok",
                "c1.1 basic.recover-ok",
                "c1.1 basic.deliver w1 3 \"\" ja m0 redelivered",
                "c1.1 basic.deliver w1 4 \"\" ja m2 redelivered",
                "c2.1 basic.deliver w2 1 \"\" ja m1 redelivered",
            ]
        );
        // A return and a confirm keep their order; a server close stays after the deliveries.
        let observed = events(&[
            "c1.1 basic.deliver w1 1 \"\" ja a",
            "c1.1 basic.return 312 x k b",
            "c1.1 basic.ack 1",
            "c1.1 closed 406 basic.ack",
        ]);
        assert_eq!(
            written(&observed),
            [
                "c1.1 basic.return 312 x k b",
                "c1.1 basic.ack 1",
                "c1.1 basic.deliver w1 1 \"\" ja a",
                "c1.1 closed 406 basic.ack"
            ]
        );
    }

    #[test]
    fn two_generated_names_keep_apart() {
        let mut r = Renamer::default();
        assert_eq!(
            r.text("c1.1 basic.deliver amq.ctag-Q 1 x amq.gen-B.k \"amq.gen-A b\" headers={q=\"amq.gen-B\"}"),
            "c1.1 basic.deliver amq.ctag-1 1 x amq.gen-1.k \"amq.gen-2 b\" headers={q=\"amq.gen-1\"}"
        );
        // Not a generated name: inside a word, or the bare prefix.
        assert_eq!(r.text("xamq.gen-A a.amq.gen-A amq.gen- amq.ctag-Q"), "xamq.gen-A a.amq.gen-A amq.gen- amq.ctag-1");
    }

    #[test]
    fn a_divergence_shows_what_the_model_allowed() {
        let mut r = recording("amq.gen-2", "amq.ctag-1", &["c1.2 basic.deliver w2 1 \"\" amq.gen-2 a"]);
        r.verdict = Verdict::Diverged {
            line: 9,
            divergence: Box::new(Divergence {
                command: None,
                observed: r.steps[8].events.clone(),
                allowed: vec![events(&[
                    "c1.2 basic.deliver w2 1 \"\" amq.gen-9 b",
                    "c1.1 basic.deliver amq.ctag-10 1 \"\" amq.gen-9 a",
                ])],
            }),
        };
        let o = outcome_of(&r);
        assert_eq!(o.verdict, "diverged at line 9");
        // The model's own generated names are numbered after those the steps showed.
        assert_eq!(
            o.allowed,
            [["c1.1 basic.deliver amq.ctag-2 1 \"\" amq.gen-2 a", "c1.2 basic.deliver w2 1 \"\" amq.gen-2 b"]]
        );
        r.verdict =
            Verdict::Unmet { line: 10, expected: events(&["c1.1 basic.deliver $t 1 \"\" $q a"]), observed: vec![] };
        let o = outcome_of(&r);
        assert_eq!(
            (o.verdict.as_str(), o.expected.as_deref()),
            ("unmet at line 10", Some("c1.1 basic.deliver $t 1 \"\" $q a"))
        );
    }
}
