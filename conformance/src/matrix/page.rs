//! The matrix page (`docs/matrix.md`), rendered from the matrix's data alone: a summary per
//! target, the worst outcome per rule, a cell per fixture and target, a section per client
//! suite, and the notes the cells link to.

use super::{Cell, MatrixData, TargetConfig};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// A GitHub/mdBook heading anchor for a column's notes.
pub(super) fn anchor(name: &str) -> String {
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

/// A fixture's path without the leading `fixtures/` and the `.trace` suffix.
fn short(file: &str) -> &str {
    let f = file.strip_prefix("./").unwrap_or(file);
    let f = f.strip_prefix("fixtures/").unwrap_or(f);
    f.strip_suffix(".trace").unwrap_or(f)
}

/// A fixture cell's note as the page shows it: naming the fixture first (the data leaves out a
/// leading `` `file`: ``, which a fixture's own page does not need), but for a cell not run.
fn fixture_note(file: &str, label: &str, note: &str) -> String {
    // A cell not run says so the same way for every fixture: one note for them all.
    if label == "n/a" || note.starts_with(&format!("`{file}:")) {
        note.to_string()
    } else {
        format!("`{file}`: {note}")
    }
}

/// Notes of one column, numbered in row order; identical texts share a number. `cell_text` is the
/// cell as the table shows it: its label, linked to its note when it has one.
struct Notes {
    anchor: String,
    texts: Vec<String>,
}

impl Notes {
    fn new(anchor: String) -> Self {
        Notes { anchor, texts: Vec::new() }
    }

    fn cell_text(&mut self, label: &str, note: Option<String>) -> String {
        let Some(n) = note else { return label.to_string() };
        let at = self.texts.iter().position(|x| *x == n).unwrap_or_else(|| {
            self.texts.push(n);
            self.texts.len() - 1
        });
        format!("[{label}](#{}-{})", self.anchor, at + 1)
    }

    fn write(&self, out: &mut String, heading: &str) {
        if self.texts.is_empty() {
            return;
        }
        let _ = writeln!(out, "### {heading}\n");
        for (i, n) in self.texts.iter().enumerate() {
            let _ = writeln!(out, "{}. <a id=\"{}-{}\"></a>{n}", i + 1, self.anchor, i + 1);
        }
        out.push('\n');
    }
}

/// A table's header: `first`, then a column per name.
fn header(out: &mut String, first: &str, names: &[String]) {
    let _ = write!(out, "| {first} |");
    for n in names {
        let _ = write!(out, " {n} |");
    }
    out.push('\n');
    let _ = write!(out, "|---|");
    for _ in names {
        out.push_str("---|");
    }
    out.push('\n');
}

/// How many cells of each label a column has.
fn counts<'a>(cells: impl Iterator<Item = &'a Cell>) -> BTreeMap<&'a str, usize> {
    let mut out: BTreeMap<&str, usize> = BTreeMap::new();
    for c in cells {
        *out.entry(c.label.as_str()).or_default() += 1;
    }
    out
}

/// How the matrix page links a fixture and a cite, from where the page is written: in the book
/// (under `docs/`), a fixture to its page and a cite to its place ([`crate::book::cite_link`]);
/// elsewhere, a fixture to its file and a cite to nothing.
#[derive(Debug)]
pub struct Links {
    /// From the page's directory up to the book's root (or the repository's).
    up: String,
    /// The page's path in the book, if it is in the book.
    page: Option<String>,
    /// The rule catalogue, for the cites' places (in the book only).
    catalogue: Option<crate::catalogue::Catalogue>,
}

impl Links {
    /// Whether a page written at `out` is in the book.
    pub fn in_book(out: &Path) -> bool {
        out.starts_with("docs")
    }

    /// The links of a page written at `out` (relative to the repository root); `catalogue` is
    /// used when the page is in the book ([`Links::in_book`]).
    pub fn for_page(out: &Path, catalogue: Option<crate::catalogue::Catalogue>) -> Links {
        let book = out.strip_prefix("docs").ok();
        let depth = book.unwrap_or(out).parent().map_or(0, |p| p.components().count());
        Links {
            up: "../".repeat(depth),
            page: book.map(|b| b.display().to_string()),
            catalogue: catalogue.filter(|_| book.is_some()),
        }
    }

    fn fixture(&self, file: &str) -> String {
        let file = file.strip_prefix("./").unwrap_or(file);
        match self.page {
            Some(_) => format!("{}{}", self.up, crate::book::fixture_page_path(file)),
            None => format!("{}{file}", self.up),
        }
    }

    fn cite(&self, id: &str) -> Option<String> {
        crate::book::cite_link(self.catalogue.as_ref()?, self.page.as_deref()?, id)
    }
}

/// Render the matrix page from `data`. `configs` are the targets, in the data's order; `rows`
/// each fixture (path without `./`, in the order the suite ran them) with its `cite:` lines;
/// `config_path` is named in the header; `links` turn a trace path and a rule id into the links
/// the page uses for them (relative to where the page lives).
pub fn render(
    data: &MatrixData,
    configs: &[&TargetConfig],
    rows: &[(String, Vec<String>)],
    config_path: &str,
    links: &Links,
) -> String {
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
         reason; the trace's report, `amqp-conformance run`, gives the step); **departs**: under `spec`, fails a trace \
         that checks only what a SHOULD rule recommends (its `recommends:` line), which the specification allows; \
         **stale**: listed as a deviation but passed; \
         **FAIL**: departs from the model, not listed; **ERROR**: the run went wrong (no answer, failed \
         cleanup); **skip**: not run (the note says why); **–**: written for the other profile.\n"
    );
    // A fixture the data has no cell for (added since it was written) reads as not run.
    let missing = super::missing_cell("this target");
    let cell = |file: &str, k: usize| -> &Cell { data.cells.get(file).and_then(|row| row.get(k)).unwrap_or(&missing) };
    let _ = writeln!(out, "## Summary\n");
    let _ =
        writeln!(out, "| target | profile | deviations | pass | known | departs | stale | FAIL | ERROR | skip | – |");
    let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (k, config) in configs.iter().enumerate() {
        let counts = counts(rows.iter().map(|(file, _)| cell(file, k)));
        let n = |l: &str| counts.get(l).copied().unwrap_or(0);
        let deviations = config.deviations.as_ref().map_or("–".to_string(), |d| format!("`{}`", d.display()));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            config.name,
            config.profile,
            deviations,
            n("pass"),
            n("known"),
            n("departs"),
            n("stale"),
            n("FAIL"),
            n("ERROR"),
            n("skip"),
            n("–")
        );
    }
    out.push('\n');

    let mut notes: Vec<Notes> = configs.iter().map(|c| Notes::new(anchor(&c.name))).collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(file, _)| {
            (0..configs.len())
                .map(|k| {
                    let c = cell(file, k);
                    notes[k].cell_text(&c.label, c.note.as_deref().map(|n| fixture_note(file, &c.label, n)))
                })
                .collect()
        })
        .collect();
    let names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();

    // By rule: the worst outcome among the fixtures citing it.
    let _ = writeln!(out, "## By rule\n");
    let _ = writeln!(
        out,
        "Each rule cited by a fixture (`cite:`), with the worst outcome among the fixtures citing it (pass < stale \
         < known < ERROR < FAIL; a skip counts only when every fixture was skipped) and how many fixtures cite it.\n"
    );
    let mut by_rule: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (file, cites) in rows {
        for cite in cites {
            by_rule.entry(cite.as_str()).or_default().push(file);
        }
    }
    header(&mut out, "rule (fixtures)", &names);
    for (rule, files) in &by_rule {
        match links.cite(rule) {
            Some(to) => {
                let _ = write!(out, "| [`{rule}`]({to}) ({}) |", files.len());
            }
            None => {
                let _ = write!(out, "| `{rule}` ({}) |", files.len());
            }
        }
        for k in 0..configs.len() {
            let worst = files.iter().map(|f| cell(f, k)).max_by_key(|c| c.rank);
            let _ = write!(out, " {} |", worst.map_or("–", |c| c.label.as_str()));
        }
        out.push('\n');
    }
    out.push('\n');

    let _ = writeln!(out, "## By fixture\n");
    header(&mut out, "fixture", &names);
    for ((file, _), row) in rows.iter().zip(&cells) {
        let _ = write!(out, "| [{}]({}) |", short(file), links.fixture(file));
        for c in row {
            let _ = write!(out, " {c} |");
        }
        out.push('\n');
    }
    out.push('\n');

    let mut client_notes: Vec<(String, Vec<Notes>)> = Vec::new();
    for (client, c) in &data.clients {
        let _ = writeln!(out, "## {client}'s own tests\n");
        let _ = writeln!(
            out,
            "The client library's own test suite run against the targets, one test per process. **pass**; **known**: \
             fails as its expectations file says (a test that presumes RabbitMQ, or a deviation of the broker's \
             already listed); **FAIL**: fails, not listed; **stale**: listed, but passed; **skip**: the test skipped \
             itself.\n"
        );
        let _ = writeln!(out, "| target | pass | known | stale | FAIL | skip |");
        let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|");
        for (k, target) in c.targets.iter().enumerate() {
            let counts = counts(c.tests.values().map(|row| &row[k]));
            let n = |l: &str| counts.get(l).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "| {target} | {} | {} | {} | {} | {} |",
                n("pass"),
                n("known"),
                n("stale"),
                n("FAIL"),
                n("skip")
            );
        }
        out.push('\n');
        let mut notes: Vec<Notes> = c.targets.iter().map(|t| Notes::new(anchor(&format!("{client} {t}")))).collect();
        header(&mut out, "test", &c.targets);
        for (test, row) in &c.tests {
            let _ = write!(out, "| `{test}` |");
            for (k, cell) in row.iter().enumerate() {
                let _ = write!(out, " {} |", notes[k].cell_text(&cell.label, cell.note.clone()));
            }
            out.push('\n');
        }
        out.push('\n');
        client_notes.push((client.clone(), notes));
    }

    let _ = writeln!(out, "## Notes\n");
    for (k, config) in configs.iter().enumerate() {
        notes[k].write(&mut out, &config.name);
    }
    for (client, notes) in &client_notes {
        for (k, target) in data.clients[client].targets.iter().enumerate() {
            notes[k].write(&mut out, &format!("{client} on {target}"));
        }
    }
    out
}
