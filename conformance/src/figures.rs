//! The figures the hand-written pages of the book quote: how many fixtures there are, how many
//! a run skips and why, what a run prints at the end, the rule catalogue's shares. They are not
//! typed in by hand: a page marks each one, and `amqp-conformance docs` ([`crate::book::pages`])
//! writes the current value in, from the fixtures, the catalogue and `docs/matrix.json` (the
//! conformance matrix's results, which CI runs again). `docs --check` fails when a page quotes a
//! figure that is no longer true.
//!
//! The marks are HTML comments, which neither GitHub nor mdBook shows:
//!
//! - `<!-- count: KEY -->22<!-- /count -->` in a line of prose: the number between the two is
//!   [`Figures::number`]'s value for KEY (`fixtures`, `profile spec`, `restart under rabbitmq`,
//!   `rules in scope`, ...). Not at the start of a line (Markdown would take the whole line for
//!   HTML).
//! - `<!-- counts: RUN -->225 traces: 203 passed, 22 skipped<!-- /counts -->` in a line, or
//!   `<!-- counts: RUN -->` on a line of its own just before a fenced block (a run's output,
//!   pasted): each count the text gives (`N traces`, `N passed`, `N failed`, `N known
//!   deviations`, `N departures from recommendations`, `N stale deviations`, `N skipped`,
//!   `N errors`) is set to what [`Figures::run`]
//!   says that run gives, and every count that is not 0 must be there. In a block, a report line
//!   (`pass  fixtures/x.trace (0.1 s)`, `skip  fixtures/y.trace: ...`) must give the status the
//!   run gives that fixture, and `conformant` or `NOT conformant` must be the run's verdict. The
//!   rest (times, abridged lines, the header's wording) is left as pasted.
//! - `<!-- generated: coverage -->` on a line of its own just before a fenced block: the block is
//!   what `amqp-conformance coverage` prints (after a first `$ command` line, which is kept).
//!
//! A RUN is a column of the matrix (`RabbitMQ (spec)`), followed by any of `, no restart-cmd`
//! (the run was made without `--restart-cmd`, so the restart fixtures are skipped), `, no
//! deviations` (without the deviations file: a known deviation is a failure) and `, only PATH`
//! (that one fixture).

use crate::catalogue::{Catalogue, Share};
use crate::matrix::MatrixData;
use crate::suite::restarts;
use crate::trace::Trace;
use amqp_model::ProfileName;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What the figures are computed from.
#[derive(Clone, Copy, Debug)]
pub struct Figures<'a> {
    /// The fixtures: path relative to the repository root, and the trace.
    pub fixtures: &'a [(String, Trace)],
    /// The conformance matrix's results (`docs/matrix.json`).
    pub matrix: &'a MatrixData,
    /// The rule catalogue.
    pub catalogue: &'a Catalogue,
}

/// What a run counts, as its summary line gives it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Traces run or skipped.
    pub traces: usize,
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Known deviations.
    pub known: usize,
    /// Departures from a recommendation.
    pub departs: usize,
    /// Stale deviations.
    pub stale: usize,
    /// Skipped (written for the other profile, or a step the target could not perform).
    pub skipped: usize,
    /// Errors.
    pub errors: usize,
    /// Each fixture's status label (`pass`, `FAIL`, `known`, `departs`, `stale`, `skip`, `ERROR`),
    /// by path.
    pub status: BTreeMap<String, &'static str>,
}

impl Counts {
    /// Whether the run is conformant: nothing failed or went wrong.
    pub fn conformant(&self) -> bool {
        self.failed == 0 && self.errors == 0
    }

    fn get(&self, kind: Kind) -> usize {
        match kind {
            Kind::Traces => self.traces,
            Kind::Passed => self.passed,
            Kind::Failed => self.failed,
            Kind::Known => self.known,
            Kind::Departs => self.departs,
            Kind::Stale => self.stale,
            Kind::Skipped => self.skipped,
            Kind::Errors => self.errors,
        }
    }
}

/// The counts of a summary line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Traces,
    Passed,
    Failed,
    Known,
    Departs,
    Stale,
    Skipped,
    Errors,
}

/// The words after a count: (plural, singular, what it counts). Longer first, so that `known
/// deviations` is not read as `known deviation`.
const PHRASES: [(&str, &str, Kind); 8] = [
    ("known deviations", "known deviation", Kind::Known),
    ("departures from recommendations", "departure from a recommendation", Kind::Departs),
    ("stale deviations", "stale deviation", Kind::Stale),
    ("traces", "trace", Kind::Traces),
    ("passed", "passed", Kind::Passed),
    ("failed", "failed", Kind::Failed),
    ("skipped", "skipped", Kind::Skipped),
    ("errors", "error", Kind::Errors),
];

/// The status labels a report line starts with.
const LABELS: [&str; 7] = ["pass", "FAIL", "known", "departs", "stale", "skip", "ERROR"];

/// The keys [`Figures::number`] knows, for error messages.
const KEYS: &str = "fixtures, profile spec, profile rabbitmq, restart, restart under spec, restart under rabbitmq, \
                    rules, rules in scope, rules covered, rules out of scope";

/// A figure mark that cannot be made true (it names nothing, is malformed, or quotes a run whose
/// text is not the run's): shown as `line N: what` (N the page's line) or, outside a page, what
/// alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FigureError {
    /// The page's line, once known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl FigureError {
    fn new(message: String) -> Self {
        FigureError { line: None, message }
    }

    /// The error at the page's `line` (the first line given counts).
    fn on(mut self, line: usize) -> Self {
        self.line.get_or_insert(line);
        self
    }
}

impl From<String> for FigureError {
    fn from(message: String) -> Self {
        FigureError::new(message)
    }
}

impl std::fmt::Display for FigureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for FigureError {}

impl Figures<'_> {
    /// The number KEY names:
    ///
    /// - `fixtures`: the fixtures (what `run fixtures` runs);
    /// - `profile spec`, `profile rabbitmq`: those written for that profile only (`profile:`),
    ///   which a run under the other skips;
    /// - `restart`: those with a `restart` step; `restart under spec`, `restart under rabbitmq`:
    ///   those of them a run under that profile runs (and skips without `--restart-cmd`);
    /// - `rules`, `rules in scope`, `rules covered`, `rules out of scope`: the catalogue's rules.
    pub fn number(&self, key: &str) -> Result<usize, FigureError> {
        let count = |f: &dyn Fn(&Trace) -> bool| self.fixtures.iter().filter(|(_, t)| f(t)).count();
        let profile = |name: &str| name.parse::<ProfileName>().map_err(|e| FigureError::new(e.to_string()));
        let Share { in_scope, out_of_scope, covered } = self.catalogue.share(None);
        let words: Vec<&str> = key.split_whitespace().collect();
        Ok(match words.as_slice() {
            ["fixtures"] => self.fixtures.len(),
            ["profile", p] => {
                let p = profile(p)?;
                count(&|t| t.profile == Some(p))
            }
            ["restart"] => count(&|t| restarts(t)),
            ["restart", "under", p] => {
                let p = profile(p)?;
                count(&|t| restarts(t) && t.profile.is_none_or(|only| only == p))
            }
            ["rules"] => in_scope + out_of_scope,
            ["rules", "in", "scope"] => in_scope,
            ["rules", "covered"] => covered,
            ["rules", "out", "of", "scope"] => out_of_scope,
            _ => return Err(format!("no figure `{key}` (there are: {KEYS})").into()),
        })
    }

    /// What RUN gives (see the module's documentation): a column of the matrix, with its
    /// modifiers.
    pub fn run(&self, run: &str) -> Result<Counts, FigureError> {
        let mut parts = run.split(',').map(str::trim);
        let target = parts.next().unwrap_or_default();
        let Some(column) = self.matrix.targets.iter().position(|t| t == target) else {
            return Err(format!(
                "no target `{target}` in docs/matrix.json (there are: {})",
                self.matrix.targets.join(", ")
            )
            .into());
        };
        let (mut no_restart, mut no_deviations, mut only) = (false, false, None);
        for part in parts {
            match part {
                "no restart-cmd" => no_restart = true,
                "no deviations" => no_deviations = true,
                _ => match part.strip_prefix("only ") {
                    Some(path) if self.matrix.cells.contains_key(path.trim()) => only = Some(path.trim()),
                    Some(path) => return Err(format!("`{}` is not a fixture of docs/matrix.json", path.trim()).into()),
                    None => {
                        return Err(format!(
                            "`{part}` in `{run}`: a run is a target of the matrix followed by any of `, no \
                             restart-cmd`, `, no deviations`, `, only PATH`"
                        )
                        .into())
                    }
                },
            }
        }
        let traces: BTreeMap<&str, &Trace> = self.fixtures.iter().map(|(p, t)| (p.as_str(), t)).collect();
        let mut out = Counts::default();
        for (path, cells) in &self.matrix.cells {
            if only.is_some_and(|o| o != path) {
                continue;
            }
            let Some(cell) = cells.get(column) else {
                return Err(format!("docs/matrix.json: `{path}` has no result for `{target}`").into());
            };
            let restart = traces.get(path.as_str()).is_some_and(|t| restarts(t));
            let label = match cell.label.as_str() {
                "–" => "skip",
                _ if no_restart && restart => "skip",
                "known" if no_deviations => "FAIL",
                "stale" if no_deviations => "pass",
                other => LABELS.iter().find(|l| **l == other).copied().unwrap_or("ERROR"),
            };
            out.traces += 1;
            *match label {
                "pass" => &mut out.passed,
                "FAIL" => &mut out.failed,
                "known" => &mut out.known,
                "departs" => &mut out.departs,
                "stale" => &mut out.stale,
                "skip" => &mut out.skipped,
                _ => &mut out.errors,
            } += 1;
            out.status.insert(path.clone(), label);
        }
        Ok(out)
    }

    /// What `amqp-conformance coverage` prints: per class the rules in scope, covered, the share
    /// and out of scope, then the in-scope rules no fixture covers yet.
    pub fn coverage(&self) -> String {
        self.catalogue.coverage_report()
    }

    /// `text` (a page) with every marked figure brought up to date; an error names the line of a
    /// mark that is malformed, names nothing, or quotes a run whose text cannot be made true.
    pub fn fill(&self, text: &str) -> Result<String, FigureError> {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        // The fence of the unmarked code block we are in, if any: marks there are left alone.
        let mut fence: Option<String> = None;
        while i < lines.len() {
            let line = lines[i];
            let at = |e: String| FigureError::new(e).on(i + 1);
            if let Some(f) = &fence {
                if closes(line, f) {
                    fence = None;
                }
                out.push_str(line);
                i += 1;
                continue;
            }
            if let Some(f) = opens(line) {
                fence = Some(f);
                out.push_str(line);
                i += 1;
                continue;
            }
            if let Some(mark) = block_mark(line) {
                let f = lines
                    .get(i + 1)
                    .and_then(|l| opens(l))
                    .ok_or_else(|| at(format!("`{}` must be followed by a fenced block (```)", line.trim())))?;
                let end = (i + 2..lines.len())
                    .find(|&j| closes(lines[j], &f))
                    .ok_or_else(|| at("the fenced block after the mark is not closed".into()))?;
                out.push_str(line);
                out.push_str(lines[i + 1]);
                let body: String = lines[i + 2..end].concat();
                let body = match mark {
                    Mark::Counts(run) => self.fill_block(&body, &self.run(run).map_err(|e| e.on(i + 1))?, i + 3)?,
                    Mark::Coverage => {
                        let command = lines[i + 2..end].first().filter(|l| l.starts_with("$ ")).copied();
                        command.unwrap_or_default().to_string() + &self.coverage()
                    }
                };
                out.push_str(&body);
                out.push_str(lines[end]);
                i = end + 1;
                continue;
            }
            out.push_str(&self.fill_line(line).map_err(|e| e.on(i + 1))?);
            i += 1;
        }
        Ok(out)
    }

    /// A line of prose (or a table row) with its inline marks filled.
    fn fill_line(&self, line: &str) -> Result<String, FigureError> {
        let mut out = String::new();
        let mut rest = line;
        while let Some(start) = rest.find(['<', '`']) {
            let (before, from) = rest.split_at(start);
            if from.starts_with('`') {
                // A code span is shown as it is, marks and all.
                let ticks = &from[..from.find(|c| c != '`').unwrap_or(from.len())];
                let end = from[ticks.len()..].find(ticks).map_or(ticks.len(), |e| 2 * ticks.len() + e);
                out.push_str(before);
                out.push_str(&from[..end]);
                rest = &from[end..];
                continue;
            }
            if !from.starts_with("<!--") {
                out.push_str(before);
                out.push('<');
                rest = &from[1..];
                continue;
            }
            let Some(close) = from.find("-->") else { break };
            let (comment, after) = from.split_at(close + 3);
            out.push_str(before);
            out.push_str(comment);
            rest = after;
            let inner = comment[4..comment.len() - 3].trim();
            let Some((kind, what)) = inner.split_once(':') else { continue };
            let (kind, what) = (kind.trim(), what.trim());
            if !matches!(kind, "count" | "counts" | "generated") {
                continue;
            }
            if kind == "generated" {
                return Err(format!("`{}` must be on a line of its own, before a fenced block", comment).into());
            }
            if out.trim().len() == comment.len() {
                return Err(format!(
                    "`{comment}` begins the line, where Markdown would take the whole line for HTML: put a word \
                     before it"
                )
                .into());
            }
            let end = format!("<!-- /{kind} -->");
            let Some(stop) = rest.find(&end) else {
                return Err(format!("`{comment}` has no `{end}` after it on the same line").into());
            };
            let (quoted, after) = rest.split_at(stop);
            if kind == "count" {
                if !quoted.chars().all(|c| c.is_ascii_digit()) {
                    return Err(format!("`{comment}` holds `{quoted}`, not a number").into());
                }
                out.push_str(&self.number(what)?.to_string());
            } else {
                let counts = self.run(what)?;
                let mut seen = Vec::new();
                out.push_str(&set_counts(quoted, &counts, &mut seen));
                missing(&counts, &seen, &format!("`{comment}`"))?;
            }
            out.push_str(&end);
            rest = &after[end.len()..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The body of a fenced block quoting a run, whose first line is line `first` of the page.
    fn fill_block(&self, body: &str, counts: &Counts, first: usize) -> Result<String, FigureError> {
        let mut seen = Vec::new();
        let mut out = String::new();
        for (n, line) in body.split_inclusive('\n').enumerate() {
            let at = |e: String| FigureError::new(e).on(first + n);
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["conformant"] if !counts.conformant() => return Err(at("the run is NOT conformant".into())),
                ["NOT", "conformant"] if counts.conformant() => return Err(at("the run is conformant".into())),
                [label, file, ..] if LABELS.contains(label) && file.starts_with("fixtures/") => {
                    let file = file.trim_end_matches(':');
                    let file = file.find(".trace").map_or(file, |e| &file[..e + ".trace".len()]);
                    match counts.status.get(file) {
                        None => return Err(at(format!("`{file}` is not one of the run's fixtures"))),
                        Some(status) if status != label => {
                            return Err(at(format!("`{file}` is `{status}` in this run, not `{label}`")))
                        }
                        Some(_) => {}
                    }
                }
                _ => {}
            }
            out.push_str(&set_counts(line, counts, &mut seen));
        }
        missing(counts, &seen, &format!("the block from line {first}"))?;
        Ok(out)
    }
}

/// Whether `text` has a figure mark (`<!-- count: ...`, `<!-- counts: ...`, `<!-- generated:
/// ...`).
pub fn has_marks(text: &str) -> bool {
    text.match_indices("<!--").any(|(at, _)| {
        let inner = text[at + 4..].trim_start();
        ["count:", "count :", "counts:", "counts :", "generated:", "generated :"].iter().any(|k| inner.starts_with(k))
    })
}

/// A mark on a line of its own, before a fenced block.
enum Mark<'a> {
    Counts(&'a str),
    Coverage,
}

fn block_mark(line: &str) -> Option<Mark<'_>> {
    let inner = line.trim().strip_prefix("<!--")?.strip_suffix("-->")?.trim();
    let (kind, what) = inner.split_once(':')?;
    match (kind.trim(), what.trim()) {
        ("counts", run) => Some(Mark::Counts(run)),
        ("generated", "coverage") => Some(Mark::Coverage),
        _ => None,
    }
}

/// The fence a line opens a code block with (three or more backticks or tildes), if it does.
fn opens(line: &str) -> Option<String> {
    let t = line.trim_start();
    let c = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = t.chars().take_while(|x| *x == c).count();
    (n >= 3).then(|| c.to_string().repeat(n))
}

/// Whether `line` closes a block opened with `fence`.
fn closes(line: &str, fence: &str) -> bool {
    let t = line.trim();
    t.starts_with(fence) && t.chars().all(|c| fence.starts_with(c))
}

/// `text` with each count it gives (`N passed`, ...) set to the run's; what was set is added to
/// `seen`.
fn set_counts(text: &str, counts: &Counts, seen: &mut Vec<Kind>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        let digits = rest[start..].find(|c: char| !c.is_ascii_digit()).map_or(rest.len() - start, |n| n);
        let (before, from) = rest.split_at(start);
        let (number, after) = from.split_at(digits);
        out.push_str(before);
        rest = after;
        // A count stands alone: not the end of a name, a decimal or `1,000`.
        let alone = !before.ends_with(|c: char| c.is_alphanumeric() || matches!(c, '.' | ',' | '-' | '_' | '/'));
        let phrase = after.strip_prefix(' ').and_then(|words| {
            PHRASES.iter().find_map(|(many, one, kind)| {
                [many, one]
                    .into_iter()
                    .find(|w| words.starts_with(**w) && !words[w.len()..].starts_with(|c: char| c.is_alphanumeric()))
                    .map(|w| (*many, *one, *kind, w.len()))
            })
        });
        match phrase {
            Some((many, one, kind, len)) if alone => {
                let n = counts.get(kind);
                let _ = write!(out, "{n} {}", if n == 1 { one } else { many });
                seen.push(kind);
                rest = &after[1 + len..];
            }
            _ => out.push_str(number),
        }
    }
    out.push_str(rest);
    out
}

/// An error when the quoted text leaves out a count that is not 0.
fn missing(counts: &Counts, seen: &[Kind], what: &str) -> Result<(), FigureError> {
    let left: Vec<String> = PHRASES
        .iter()
        .filter(|(_, _, kind)| counts.get(*kind) > 0 && !seen.contains(kind))
        .map(|(many, one, kind)| {
            let n = counts.get(*kind);
            format!("{n} {}", if n == 1 { one } else { many })
        })
        .collect();
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("{what} does not give {} (paste the run's output again)", left.join(", ")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Names;
    use crate::matrix::Cell;
    use crate::trace::parse;

    fn cell(label: &str) -> Cell {
        Cell { label: label.to_string(), rank: 0, note: None }
    }

    /// Three fixtures: one for any profile, one for `spec` only, one that restarts the broker;
    /// the matrix has the model and a broker with one known deviation.
    fn with<T>(f: impl FnOnce(&Figures<'_>) -> T) -> T {
        let open = "c1 connection.open\nc1.1 channel.open\n";
        let fixtures = vec![
            ("fixtures/a.trace".to_string(), parse(&format!("title: a\n\n{open}"), "a").unwrap()),
            ("fixtures/b.trace".to_string(), parse(&format!("title: b\nprofile: spec\n\n{open}"), "b").unwrap()),
            ("fixtures/c.trace".to_string(), parse(&format!("title: c\n\n{open}restart\n"), "c").unwrap()),
        ];
        let mut matrix = MatrixData { targets: vec!["model".into(), "broker".into()], ..MatrixData::default() };
        matrix.cells.insert("fixtures/a.trace".into(), vec![cell("pass"), cell("known")]);
        matrix.cells.insert("fixtures/b.trace".into(), vec![cell("–"), cell("–")]);
        matrix.cells.insert("fixtures/c.trace".into(), vec![cell("pass"), cell("pass")]);
        let catalogue = Catalogue {
            extensions: vec![],
            rules: Vec::new(),
            names: Names::default(),
            cited_by: BTreeMap::new(),
            model: BTreeMap::new(),
            broker: BTreeMap::new(),
            tests_found: Default::default(),
            bad_cites: Vec::new(),
            recommending: Vec::new(),
            readings: Vec::new(),
            switches: Vec::new(),
            profile_switches: Vec::new(),
        };
        f(&Figures { fixtures: &fixtures, matrix: &matrix, catalogue: &catalogue })
    }

    #[test]
    fn numbers_count_the_fixtures() {
        with(|f| {
            assert_eq!(f.number("fixtures"), Ok(3));
            assert_eq!(f.number("profile spec"), Ok(1));
            assert_eq!(f.number("profile rabbitmq"), Ok(0));
            assert_eq!(f.number("restart under rabbitmq"), Ok(1));
            assert!(f.number("fixturez").unwrap_err().to_string().contains("no figure `fixturez`"));
        });
    }

    #[test]
    fn runs_come_from_the_matrix_with_their_modifiers() {
        with(|f| {
            let c = f.run("broker").unwrap();
            assert_eq!((c.traces, c.passed, c.known, c.skipped, c.failed), (3, 1, 1, 1, 0));
            let c = f.run("broker, no restart-cmd, no deviations").unwrap();
            assert_eq!((c.passed, c.failed, c.skipped), (0, 1, 2));
            assert_eq!(c.status["fixtures/c.trace"], "skip");
            let c = f.run("model, only fixtures/a.trace").unwrap();
            assert_eq!((c.traces, c.passed), (1, 1));
            assert!(f.run("nobody").unwrap_err().to_string().contains("no target `nobody`"));
            assert!(f.run("model, sideways").unwrap_err().to_string().contains("`sideways`"));
        });
    }

    #[test]
    fn marks_are_filled_and_the_rest_kept() {
        with(|f| {
            let page = "# T\n\nThere are <!-- count: fixtures -->9<!-- /count --> fixtures; \
                        | <!-- counts: broker -->7 traces: 1 passed, 0 failed, 5 known deviations, 0 skipped<!-- /counts --> |\n\
                        \n<!-- counts: model, no restart-cmd -->\n```text\nrun: 1 trace against x, 2 jobs\n\
                        pass  fixtures/a.trace (0.1 s)\nskip  fixtures/c.trace: restart needs --restart-cmd\n\
                        4 traces: 0 passed, 0 failed, 0 skipped (1.5 s)\nconformant\n```\n\n```text\n<!-- count: x -->1\n```\n";
            let filled = f.fill(page).unwrap();
            assert!(filled.contains("There are <!-- count: fixtures -->3<!-- /count --> fixtures;"));
            assert!(filled.contains(
                "<!-- counts: broker -->3 traces: 1 passed, 0 failed, 1 known deviation, 1 skipped<!-- /counts -->"
            ));
            assert!(filled.contains("run: 3 traces against x, 2 jobs\n"));
            assert!(filled.contains("\n3 traces: 1 passed, 0 failed, 2 skipped (1.5 s)\nconformant\n"));
            // Marks in an unmarked block or a code span are examples, left alone; filling is
            // idempotent.
            assert!(filled.ends_with("```text\n<!-- count: x -->1\n```\n"));
            let code = "a `<!-- counts: x -->` b ``<!-- count: y -->` `` c <d> `e\n";
            assert_eq!(f.fill(code).unwrap(), code);
            assert_eq!(f.fill(&filled).unwrap(), filled);
        });
    }

    #[test]
    fn what_cannot_be_made_true_is_an_error_naming_the_line() {
        with(|f| {
            let err = |page: &str| f.fill(page).unwrap_err().to_string();
            assert!(err("a\n<!-- count: fixtures -->3<!-- /count --> x\n").starts_with("line 2: "));
            assert!(err("x <!-- count: fixtures -->3\n").contains("no `<!-- /count -->`"));
            assert!(err("x <!-- count: fixtures -->three<!-- /count -->\n").contains("not a number"));
            assert!(err("x <!-- counts: broker -->3 traces: 1 passed<!-- /counts -->\n")
                .contains("does not give 1 known deviation, 1 skipped"));
            assert!(err("<!-- counts: broker -->\nno block\n").contains("must be followed by a fenced block"));
            let block = |body: &str| format!("<!-- counts: broker, no deviations -->\n```\n{body}```\n");
            let full = "3 traces: 0 passed, 2 failed, 1 skipped\n";
            assert!(err(&block(&format!("{full}conformant\n"))).contains("line 4: the run is NOT conformant"));
            assert!(err(&block(&format!("pass  fixtures/a.trace (1 s)\n{full}"))).contains("is `FAIL` in this run"));
            assert!(err(&block(&format!("skip  fixtures/z.trace: x\n{full}"))).contains("not one of the run's"));
            assert!(f.fill(&block(&format!("FAIL  fixtures/a.trace:2: after\n{full}NOT conformant\n"))).is_ok());
        });
    }
}
