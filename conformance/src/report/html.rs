//! The HTML report of a run (`run --html FILE`, `proxy --html FILE`): one self-contained page a
//! person reads without the terminal, offline. The summary of the target and profile; a table
//! of every trace; and for each trace that did not pass (FAIL, known, departs, ERROR) its cited
//! rules linked to the book, the verdict, and a sequence diagram of what was sent and what the
//! broker did, the failing step drawn in red beside what the model allowed there.
//!
//! The diagram is drawn here as SVG (no script, nothing fetched): a lane per connection and
//! channel the trace used and one for the broker, a row per command and per event.

use super::split_detail;
use crate::run::Recording;
use crate::suite::{Failure, Finding, Status, SuiteRun, TraceResult};
use crate::trace::{write_command, write_event};
use amqp_model::Event;
use std::fmt::Write as _;

/// Where the report links a cite: the book's page and anchor for it, from the book's root
/// (`spec/basic.html#basic-ack-01`), or nothing.
pub type CiteLink<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Escape text for HTML (and SVG).
fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The failure a status carries, if any (a known deviation's, when what was seen failed).
fn failure(status: &Status) -> Option<&Failure> {
    match status {
        Status::Fail(f) | Status::Departs { failure: f, .. } => Some(f),
        Status::Known { seen, .. } => failure(seen),
        _ => None,
    }
}

/// The page. `book` is where the book's pages are (a URL or a path ending in `/`), to which
/// `cite` gives the page of a cite.
pub fn html(run: &SuiteRun, book: &str, cite: CiteLink<'_>) -> String {
    let counts = super::JsonCounts::of(run);
    let title = format!("{} under {}", run.target, run.profile);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Conformance: {}</title>\n<style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let verdict = if run.conformant() { "conforms" } else { "does not conform" };
    let _ = write!(
        out,
        "<h1>{}</h1>\n<p class=\"verdict {}\">The target {verdict} (no FAIL or ERROR is a pass). {} traces in {:.1} s. \
         Made by <code>amqp-conformance</code>; the rules link to the book at <code>{}</code>.</p>\n",
        esc(&title),
        if run.conformant() { "good" } else { "bad" },
        counts.total,
        run.elapsed.as_secs_f64(),
        esc(book)
    );
    out.push_str("<table class=\"counts\"><tr><th>pass</th><th>FAIL</th><th>known</th><th>departs</th><th>stale</th><th>skip</th><th>ERROR</th></tr>");
    let _ = writeln!(
        out,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        counts.pass, counts.fail, counts.known, counts.departs, counts.stale, counts.skip, counts.error
    );
    let shown: Vec<(usize, &TraceResult)> = run
        .results
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            matches!(r.status, Status::Fail(_) | Status::Known { .. } | Status::Departs { .. } | Status::Error { .. })
        })
        .collect();
    if !shown.is_empty() {
        out.push_str("<h2>What did not pass</h2>\n");
        for (i, r) in &shown {
            trace_section(&mut out, *i, r, book, cite);
        }
    }
    out.push_str(
        "<h2>Every trace</h2>\n<table class=\"all\"><tr><th>trace</th><th>result</th><th>line</th><th>s</th></tr>\n",
    );
    for (i, r) in run.results.iter().enumerate() {
        let name = match shown.iter().any(|(j, _)| j == &i) {
            true => format!("<a href=\"#t{i}\">{}</a>", esc(&r.file)),
            false => esc(&r.file),
        };
        let _ = writeln!(
            out,
            "<tr><td>{name}</td><td class=\"{}\">{}</td><td>{}</td><td>{:.2}</td></tr>",
            r.status.key(),
            r.status.label().trim(),
            r.status.line().map_or(String::new(), |l| l.to_string()),
            r.duration.as_secs_f64()
        );
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

fn trace_section(out: &mut String, i: usize, r: &TraceResult, book: &str, cite: CiteLink<'_>) {
    let _ = write!(
        out,
        "<section id=\"t{i}\"><h3><span class=\"{}\">{}</span> {}",
        r.status.key(),
        r.status.label().trim(),
        esc(&r.file)
    );
    if let Some(line) = r.status.line() {
        let _ = write!(out, ":{line}");
    }
    out.push_str("</h3>\n");
    if let Some(t) = &r.title {
        let _ = writeln!(out, "<p class=\"title\">{}</p>", esc(t));
    }
    if !r.cites.is_empty() {
        let cites: Vec<String> = r
            .cites
            .iter()
            .map(|c| match cite(c) {
                Some(to) => format!("<a href=\"{}{}\">{}</a>", esc(book), esc(&to), esc(c)),
                None => esc(c),
            })
            .collect();
        let _ = writeln!(out, "<p>Cites: {}</p>", cites.join(", "));
    }
    if let Status::Known { rule, reason, .. } = &r.status {
        let _ = writeln!(out, "<p>A known deviation from <code>{}</code>: {}</p>", esc(rule), esc(reason));
    }
    if let Some(detail) = r.status.detail() {
        let (first, rest) = split_detail(&detail);
        let _ = writeln!(out, "<pre class=\"detail\">{}\n{}</pre>", esc(&first), esc(&rest.join("\n")));
    }
    for note in &r.incidents {
        let _ = writeln!(out, "<p class=\"note\">note: {}</p>", esc(note));
    }
    if let Some(rec) = &r.recording {
        out.push_str("<div class=\"diagram\">");
        out.push_str(&diagram(rec, failure(&r.status)));
        out.push_str("</div>\n");
    }
    out.push_str("</section>\n");
}

/// The lane an event or command belongs to: its channel (`c1.1`), or its connection (`c1`).
fn lane_of_event(e: &Event) -> String {
    e.channel().map_or_else(|| format!("c{}", e.connection().0), |c| c.to_string())
}

/// A row of the diagram.
enum Row {
    /// A command from a lane to the broker.
    Sent(String, String),
    /// An event from the broker to a lane; `wrong` at the failing step.
    Got(String, String, bool),
    /// The runner waited.
    Wait,
    /// What the model allowed at the failing step (or what the `expect` asked for).
    Allowed(Vec<String>),
}

/// The sequence diagram of a recording, `failure` marking its step.
pub fn diagram(rec: &Recording, failure: Option<&Failure>) -> String {
    let mut lanes: Vec<String> = Vec::new();
    let lane = |name: String, lanes: &mut Vec<String>| {
        if !lanes.contains(&name) {
            lanes.push(name);
        }
    };
    let mut rows = Vec::new();
    for (k, step) in rec.steps.iter().enumerate() {
        // The recording ends with the step that failed.
        let failing = failure.is_some() && k + 1 == rec.steps.len();
        match &step.command {
            Some(c) => {
                let from = c.channel().map(|ch| ch.to_string()).or_else(|| c.connection().map(|c| format!("c{}", c.0)));
                let from = from.unwrap_or_else(|| "client".into());
                lane(from.clone(), &mut lanes);
                rows.push(Row::Sent(from, write_command(c)));
            }
            None => rows.push(Row::Wait),
        }
        for e in &step.events {
            let to = lane_of_event(e);
            lane(to.clone(), &mut lanes);
            rows.push(Row::Got(to, write_event(e), failing));
        }
        if failing {
            let allowed = match failure.map(|f| &f.finding) {
                Some(Finding::Diverged(d)) => {
                    let mut lines = vec!["the model allows, for example:".to_string()];
                    for (i, alt) in d.allowed.iter().enumerate() {
                        lines.push(format!("possibility {}:", i + 1));
                        if alt.is_empty() {
                            lines.push("  (nothing)".into());
                        }
                        lines.extend(alt.iter().map(|e| format!("  {}", write_event(e))));
                    }
                    lines
                }
                Some(Finding::Unmet { expected, .. }) => {
                    let mut lines = vec!["the trace expected one of:".to_string()];
                    lines.extend(expected.iter().map(|e| format!("  {}", write_event(e))));
                    lines
                }
                None => Vec::new(),
            };
            if step.events.is_empty() {
                rows.push(Row::Got(String::new(), "(the broker did nothing)".into(), true));
            }
            rows.push(Row::Allowed(allowed));
        }
    }
    draw(&lanes, &rows)
}

fn draw(lanes: &[String], rows: &[Row]) -> String {
    const GAP: i64 = 90;
    const ROW: i64 = 22;
    const CHAR: i64 = 8;
    let left = 20;
    let broker = left + GAP * (lanes.len() as i64) + 40;
    let x_of = |name: &str| lanes.iter().position(|l| l == name).map_or(broker, |i| left + GAP * i as i64);
    let mut body = String::new();
    let mut y = 40;
    let mut widest = broker + 40;
    for row in rows {
        match row {
            Row::Sent(from, text) => {
                let x = x_of(from);
                let _ = write!(
                    body,
                    "<line x1='{x}' y1='{y}' x2='{broker}' y2='{y}' class='sent' marker-end='url(#arrow)'/>"
                );
                let _ = write!(body, "<text x='{}' y='{}' class='sent'>{}</text>", broker + 8, y + 4, esc(text));
                widest = widest.max(broker + 8 + CHAR * text.len() as i64);
            }
            Row::Got(to, text, wrong) => {
                let class = if *wrong { "wrong" } else { "got" };
                if to.is_empty() {
                    let _ = write!(body, "<text x='{}' y='{}' class='{class}'>{}</text>", broker + 8, y + 4, esc(text));
                } else {
                    let x = x_of(to);
                    let _ = write!(
                        body,
                        "<line x1='{broker}' y1='{y}' x2='{x}' y2='{y}' class='{class}' marker-end='url(#arrow)'/>"
                    );
                    let _ = write!(
                        body,
                        "<text x='{}' y='{}' class='{class}'>{}{}</text>",
                        broker + 8,
                        y + 4,
                        if *wrong { "✗ " } else { "" },
                        esc(text)
                    );
                }
                widest = widest.max(broker + 24 + CHAR * text.len() as i64);
            }
            Row::Wait => {
                let _ = write!(body, "<line x1='{left}' y1='{y}' x2='{broker}' y2='{y}' class='wait'/><text x='{}' y='{}' class='wait'>wait</text>", broker + 8, y + 4);
            }
            Row::Allowed(lines) => {
                let h = ROW * lines.len() as i64 + 8;
                let w = lines.iter().map(|l| l.len() as i64).max().unwrap_or(10) * CHAR + 16;
                let _ =
                    write!(body, "<rect x='{}' y='{}' width='{w}' height='{h}' class='allowed'/>", broker + 4, y - 14);
                for (i, l) in lines.iter().enumerate() {
                    let _ = write!(
                        body,
                        "<text x='{}' y='{}' class='allowed' xml:space='preserve'>{}</text>",
                        broker + 12,
                        y + ROW * i as i64,
                        esc(l)
                    );
                }
                widest = widest.max(broker + 4 + w);
                y += h - ROW;
            }
        }
        y += ROW;
    }
    let height = y + 10;
    let mut heads = String::new();
    for (i, l) in lanes.iter().enumerate() {
        let x = left + GAP * i as i64;
        let _ = write!(heads, "<text x='{x}' y='16' class='lane' text-anchor='middle'>{}</text><line x1='{x}' y1='24' x2='{x}' y2='{height}' class='lifeline'/>", esc(l));
    }
    let _ = write!(heads, "<text x='{broker}' y='16' class='lane' text-anchor='middle'>broker</text><line x1='{broker}' y1='24' x2='{broker}' y2='{height}' class='lifeline'/>");
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{height}' viewBox='0 0 {w} {height}' font-family='monospace' font-size='12'>\
         <defs><marker id='arrow' markerWidth='8' markerHeight='8' refX='7' refY='4' orient='auto'><path d='M0,0 L8,4 L0,8 z' fill='#555'/></marker></defs>{heads}{body}</svg>",
        w = widest + 20
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:110em;color:#111}\
code,pre{font-family:monospace}pre.detail{background:#f6f6f6;padding:.6em;overflow-x:auto}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}\
.verdict.good{color:#165c1b}.verdict.bad{color:#a00;font-weight:bold}\
.fail,.error{color:#a00;font-weight:bold}.known,.departs,.stale{color:#8a5a00}.pass{color:#165c1b}.skip{color:#666}\
section{border-top:2px solid #ddd;margin-top:1.5em}.diagram{overflow-x:auto}\
svg .lifeline{stroke:#bbb;stroke-dasharray:3 3}svg line.sent{stroke:#224}svg line.got{stroke:#555}\
svg line.wrong{stroke:#c00;stroke-width:2}svg text.wrong{fill:#c00;font-weight:bold}svg text.lane{font-weight:bold}\
svg line.wait{stroke:#999;stroke-dasharray:6 4}svg text.wait{fill:#777}\
svg rect.allowed{fill:#eef7ee;stroke:#165c1b}svg text.allowed{fill:#165c1b}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Observation, Verdict};
    use crate::trace::{parse, parse_event, StepKind};
    use amqp_model::ProfileName;
    use std::time::Duration;

    /// A run of two traces: one passed, one that failed at its third step (a 403 where the model
    /// allows a 406).
    fn run() -> SuiteRun {
        let trace = parse("c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare ja durable\n", "t.trace").unwrap();
        let command = |i: usize| match &trace.steps[i].kind {
            StepKind::Command { command, .. } => Some(command.clone()),
            _ => None,
        };
        let ev = |l: &str| parse_event(l).unwrap();
        let failure = Failure::diverged(
            3,
            "c1.1 queue.declare ja durable",
            &["c1.1 closed 403 queue.declare"],
            &["c1.1 closed 406 queue.declare"],
        );
        let recording = Recording {
            verdict: Verdict::Pass,
            steps: vec![
                Observation { line: 1, command: command(0), events: vec![ev("c1 connection.open-ok")] },
                Observation { line: 2, command: command(1), events: vec![ev("c1.1 channel.open-ok")] },
                Observation { line: 3, command: command(2), events: vec![ev("c1.1 closed 403 queue.declare")] },
            ],
        };
        let result = |file: &str, status: Status| TraceResult {
            file: file.into(),
            title: Some(format!("the <title> of {file}")),
            cites: vec!["queue declare passive equivalent".into(), "tutorial 3.3".into()],
            status,
            duration: Duration::from_millis(40),
            recording: Some(recording.clone()),
            broker_lost: false,
            died_unanswered: false,
            incidents: Vec::new(),
        };
        SuiteRun {
            target: "amqp://guest:***@127.0.0.1:5673/%2f".into(),
            profile: ProfileName::Spec,
            results: vec![result("fixtures/a.trace", Status::Pass), result("fixtures/b.trace", Status::Fail(failure))],
            elapsed: Duration::from_millis(1500),
        }
    }

    #[test]
    fn a_failing_trace_has_its_cites_linked_its_verdict_and_its_diagram_with_the_wrong_step_in_red() {
        let cite = |c: &str| (c == "queue declare passive equivalent").then(|| "spec/queue.html#x".to_string());
        let page = html(&run(), "file:///book/", &cite);
        assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"), "one whole page");
        assert!(!page.contains("<script") && !page.contains("src="), "nothing fetched, no script: offline");
        assert!(page.contains("The target does not conform"), "the summary says it");
        assert!(page.contains("<td>1</td><td>1</td><td>0</td>"), "counts: pass 1, FAIL 1");
        // Only the failing trace has a section; the table links it.
        assert!(page.contains("<section id=\"t1\">") && !page.contains("<section id=\"t0\">"));
        assert!(page.contains("<a href=\"#t1\">fixtures/b.trace</a>"));
        assert!(page.contains("the &lt;title&gt; of fixtures/b.trace"), "escaped");
        assert!(page.contains("<a href=\"file:///book/spec/queue.html#x\">queue declare passive equivalent</a>"));
        assert!(page.contains(", tutorial 3.3</p>"), "a cite without a place is not a link");
        // The diagram: lanes, the commands and events in order, the wrong one in red, and what
        // the model allowed beside it.
        let svg = &page[page.find("<svg").unwrap()..page.find("</svg>").unwrap()];
        for lane in [">c1<", ">c1.1<", ">broker<"] {
            assert!(svg.contains(lane), "lane {lane}: {svg}");
        }
        let at = |s: &str| svg.find(s).unwrap_or_else(|| panic!("{s} in {svg}"));
        assert!(at(">c1 connection.open<") < at(">c1.1 channel.open-ok<"));
        assert!(at("c1.1 channel.open-ok") < at("class='wrong'>✗ c1.1 closed 403 queue.declare<"));
        assert!(at("✗ c1.1 closed 403") < at(">the model allows, for example:<"));
        assert!(svg.contains(">  c1.1 closed 406 queue.declare<"), "{svg}");
        assert_eq!(svg.matches("class='wrong'").count(), 2, "one red arrow and its label: {svg}");
    }
}
