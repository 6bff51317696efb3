//! The generated pages of the documentation book (`docs/`, built with mdBook): one page per AMQP
//! class with its rules, one page per fixture with its trace, a sequence diagram and the model's
//! outcome under each profile, the profiles' switches, and the model's source with line anchors
//! for the rules to link to. Every page comes from the repository's files (the rule catalogue,
//! the fixtures, `docs/matrix.json` written by `amqp-conformance matrix`, the model), so
//! `amqp-conformance docs --check` can tell when the checked-in pages are stale. The hand-written
//! pages are not generated, but the figures they quote are: each is marked, and brought up to
//! date from the same sources ([`crate::figures`]).
//!
//! One file for one concern, the book's generated pages: each page kind is a function over the same
//! sources and links, and the SUMMARY must list exactly what they write.

pub mod mentions;

use crate::catalogue::{Catalogue, Place, Rule};
use crate::figures::{has_marks, Figures};
use crate::matrix::MatrixData;
use crate::run::record;
use crate::snapshot::outcome;
use crate::target::model::ModelTarget;
use crate::trace::{write_command, write_event, Trace};
use amqp_model::event::Reply;
use amqp_model::{Command, Event, Faults, Profile, ProfileName};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The directories (under `docs/`) whose pages are all generated: a file there that the
/// generator no longer writes is stale.
pub const GENERATED_DIRS: [&str; 3] = ["spec", "fixtures", "source"];
/// The generated pages outside [`GENERATED_DIRS`].
pub const GENERATED_FILES: [&str; 3] = ["SUMMARY.md", "profiles.md", "tutorial.md"];

/// The hand-written pages, in the book's order: (title, path under `docs/`).
const GUIDE: [(&str, &str); 8] = [
    ("Validate your broker in five minutes", "intro/five-minutes.md"),
    ("For broker implementers", "intro/broker-implementers.md"),
    ("For client authors", "intro/client-authors.md"),
    ("What may happen to my message", "message-fates.md"),
    ("Which consumer gets the next message", "who-gets-the-message.md"),
    ("Quorum queues and clusters", "clusters.md"),
    ("For readers of the specification", "intro/spec-readers.md"),
    ("The model", "model.md"),
];
const REFERENCE: [(&str, &str); 10] = [
    ("Traces", "traces.md"),
    ("The conformance runner", "conformance.md"),
    ("The reference broker", "serve.md"),
    ("The traffic proxy", "proxy.md"),
    ("Architecture", "architecture.md"),
    ("RabbitMQ 3.10", "rabbitmq-3.10.md"),
    ("GarageMQ", "garagemq.md"),
    ("Adding a broker", "brokers.md"),
    ("Benchmarks", "bench.md"),
    ("Coverage and the catalogue", "coverage.md"),
];

/// The sections of the tutorial the project grew from, as its fixtures cite them
/// (`cite: tutorial 3.2`): number, title, what its programs do, and what the fixtures pin down.
const TUTORIAL: [(&str, &str, &str, &str); 7] = [
    (
        "3.1",
        "Hello world",
        "One program declares the queue `ja` and publishes `hello` to it through the default \
         exchange (key `ja`); another consumes it with automatic acknowledgement.",
        "The default exchange routes by queue name; a delivery made without acknowledgement is \
         never delivered again, whatever happens to the consumer.",
    ),
    (
        "3.2",
        "Work queues",
        "Several consumers share `ja` and acknowledge each message by hand once their work is done.",
        "The queue hands messages to its consumers in turn; a message not acknowledged when its \
         channel or connection closes goes back and comes again flagged `redelivered`. The program's \
         own typo (`deliver_tag` for `delivery_tag`) leaves a message unacknowledged, so it comes back.",
    ),
    (
        "3.3",
        "Durability",
        "`ja` is declared durable and messages are published persistent (delivery mode 2).",
        "A durable queue and its persistent messages outlive a broker restart, transient ones do not; \
         declaring `ja` durable after the earlier sections made it transient is refused (406) and \
         closes the channel.",
    ),
    (
        "3.4",
        "Fair dispatch",
        "Consumers ask for a prefetch of one (`basic.qos`) and acknowledge by hand.",
        "A consumer holds at most its prefetch of unacknowledged messages and the next goes to one \
         with room; the program sets the prefetch on the publisher's channel, where it changes \
         nothing for the consumers.",
    ),
    (
        "4.1",
        "Publish/subscribe",
        "A fanout exchange `m1`; each consumer declares a server-named exclusive queue and binds it.",
        "Every bound queue gets a copy whatever the key; a server-named queue gets a generated name and \
         goes with its connection; a message published while nothing is bound is dropped.",
    ),
    (
        "4.2",
        "Routing",
        "A direct exchange `m2`; messages published with the key `ja`.",
        "Only queues bound with exactly that key get the message, every one of them a copy; the \
         program's consumer binds to `m1` instead, so it gets `m1`'s broadcasts (or a 404 when `m1` \
         does not exist yet) and nothing from `m2`.",
    ),
    (
        "4.3",
        "Topics",
        "A topic exchange `m2`; messages published as `europe.weather` and `europe.weather.bad`.",
        "`*` matches one word and `#` any number; the program's pattern `europe.` is the words \
         `europe` and the empty word, and matches neither message; declaring `m2` as a topic exchange \
         after 4.2 made it direct is refused (406).",
    ),
];

/// The anchor of a tutorial section on the tutorial page (`tutorial 3.2` is `tutorial-3-2`).
fn tutorial_anchor(section: &str) -> String {
    format!("tutorial-{}", section.replace('.', "-"))
}

/// The tutorial's section a cite names (`tutorial 3.2`), if it is one.
fn tutorial_section(cite: &str) -> Option<&'static str> {
    let n = cite.strip_prefix("tutorial ")?;
    TUTORIAL.iter().find(|(id, ..)| *id == n).map(|(id, ..)| *id)
}

/// The page of the tutorial the project grew from: each section in English, with the fixtures
/// that show it.
fn tutorial_page(s: &Sources<'_>) -> String {
    let mut out = String::from(
        "# The tutorial the project grew from

The suite began with a Chinese-language RabbitMQ \
         tutorial written for Python's pika client (`rabbitmq-tutorial-zh.txt`): what every user of an \
         AMQP 0-9-1 broker meets first. Its programs connect as guest to a local broker and use the \
         queue `ja` and the exchanges `m1` and `m2`. Each section below is one fixture or more \
         (`cite: tutorial N.M`, under `fixtures/seed/`), and so are the mistakes in the tutorial's own \
         code: each fixture shows what the model says really happens. The proxy's tests run the \
         tutorial's programs themselves (conformance/tests/pika/tutorial.py). Generated by \
         `amqp-conformance docs`.\n\n",
    );
    for (id, title, does, shows) in TUTORIAL {
        let cite = format!("tutorial {id}");
        let _ = writeln!(out, "<a id=\"{}\"></a>\n\n## {id} {title}\n", tutorial_anchor(id));
        let _ = writeln!(out, "{does}\n\n{shows}\n");
        for (path, trace) in s.fixtures.iter().filter(|(_, t)| t.cites.contains(&cite)) {
            let title = md_escape(trace.title.as_deref().unwrap_or(path));
            let _ = writeln!(out, "- [{}]({}): {title}", fixture_name(path), fixture_page_path(path));
        }
        out.push('\n');
    }
    out
}

/// What the pages are made from.
#[derive(Debug)]
pub struct Sources<'a> {
    /// The rule catalogue.
    pub catalogue: &'a Catalogue,
    /// The fixtures: path relative to the repository root, and the trace.
    pub fixtures: &'a [(String, Trace)],
    /// The fixtures' text, by path.
    pub texts: &'a BTreeMap<String, String>,
    /// The matrix's results.
    pub matrix: &'a MatrixData,
    /// The model's profile switches, from `model/src/profile.rs`: (field, its doc comment).
    pub switches: &'a [(String, String)],
    /// The model's source files: path relative to the root, and text.
    pub model_source: &'a [(String, String)],
}

/// Where the hand-written pages are read from, relative to the working directory (the
/// repository root, as for the fixtures).
pub const HAND_WRITTEN_DIR: &str = "docs";

/// The hand-written pages, under `docs/`: the introduction, the guide, the reference.
pub fn hand_written() -> impl Iterator<Item = &'static str> {
    std::iter::once("introduction.md").chain(GUIDE.iter().chain(&REFERENCE).map(|(_, path)| *path))
}

/// Every generated page: path under `docs/`, and content. Among them are the hand-written pages
/// (read from [`HAND_WRITTEN_DIR`]) that quote figures, with each figure brought up to date
/// ([`crate::figures`]).
///
/// # Panics
///
/// When a hand-written page's figure mark is malformed or cannot be made true (the message
/// names the page, the line and why): the page must be mended by hand.
pub fn pages(s: &Sources<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let figures = Figures { fixtures: s.fixtures, matrix: s.matrix, catalogue: s.catalogue };
    for page in hand_written() {
        let path = Path::new(HAND_WRITTEN_DIR).join(page);
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        if !has_marks(&text) {
            continue;
        }
        match figures.fill(&text) {
            Ok(filled) => out.insert(page.to_string(), filled),
            Err(e) => panic!("{}: {e}", path.display()),
        };
    }
    let owners = s.catalogue.owners();
    out.insert("spec/index.md".to_string(), spec_index(s, &owners));
    for owner in &owners {
        out.insert(format!("spec/{owner}.md"), class_page(s, owner));
    }
    out.insert("spec/extensions.md".to_string(), extensions_page(s));
    out.insert("fixtures/index.md".to_string(), fixtures_index(s));
    for (path, trace) in s.fixtures {
        out.insert(fixture_page_path(path), fixture_page(s, path, trace));
    }
    for (path, text) in s.model_source {
        out.insert(format!("source/{path}.md"), source_page(path, text));
    }
    out.insert("profiles.md".to_string(), profiles_page(s));
    out.insert("tutorial.md".to_string(), tutorial_page(s));
    out.insert("SUMMARY.md".to_string(), summary(s, &owners));
    out
}

/// A fixture's page, under `docs/` (`fixtures/spec/x.trace` is `fixtures/spec/x.md`).
pub fn fixture_page_path(fixture: &str) -> String {
    format!("{}.md", fixture.strip_suffix(".trace").unwrap_or(fixture))
}

/// A fixture's file name without `.trace`.
fn fixture_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path).trim_end_matches(".trace")
}

/// The fixtures grouped by directory, in their order.
fn by_directory(fixtures: &[(String, Trace)]) -> Vec<(&str, Vec<&(String, Trace)>)> {
    let mut out: Vec<(&str, Vec<&(String, Trace)>)> = Vec::new();
    for f in fixtures {
        let dir = f.0.rsplit_once('/').map_or("", |(d, _)| d);
        match out.last_mut() {
            Some((d, list)) if *d == dir => list.push(f),
            _ => out.push((dir, vec![f])),
        }
    }
    out
}

/// Where a fixture's `cite:` is explained in the book, linked from the page at `from` (under
/// `docs/`): a rule's place on its class page, a RabbitMQ extension's section, a section of the
/// tutorial the project grew from; `None` for anything else.
pub fn cite_link(cat: &Catalogue, from: &str, cite: &str) -> Option<String> {
    if cat.names.is_rule(cite) {
        return Some(format!("{}#{}", link(from, &format!("spec/{}.md", cat.owner(cite))), anchor(cite)));
    }
    if cat.extensions.iter().any(|e| e.id == cite) {
        return Some(format!("{}#{}", link(from, "spec/extensions.md"), heading_id(cite)));
    }
    tutorial_section(cite).map(|section| format!("{}#{}", link(from, "tutorial.md"), tutorial_anchor(section)))
}

/// The id mdBook gives a heading: lower case, spaces as `-`, other punctuation dropped.
fn heading_id(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            c if c.is_whitespace() => Some('-'),
            _ => None,
        })
        .collect()
}

/// A rule's anchor on its class page.
pub fn anchor(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect()
}

/// The link from a page at `from` (under `docs/`) to `to` (under `docs/`).
fn link(from: &str, to: &str) -> String {
    let depth = from.matches('/').count();
    format!("{}{to}", "../".repeat(depth))
}

/// A value as code (HTML, for a table cell) that may wrap between the words of a CamelCase
/// name and after a comma, so that a long one does not push the table's last column out of view.
fn breakable_code(value: &str) -> String {
    let mut out = String::from("<code>");
    let mut last = ' ';
    for c in value.chars() {
        if c.is_ascii_uppercase() && last.is_ascii_lowercase() {
            out.push_str("<wbr>");
        }
        match c {
            '|' => out.push_str("&#124;"),
            c => out.push_str(&html_escape(&c.to_string())),
        }
        if c == ',' {
            out.push_str("<wbr>");
        }
        last = c;
    }
    out.push_str("</code>");
    out
}

fn md_escape(text: &str) -> String {
    text.replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;")
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn summary(s: &Sources<'_>, owners: &[String]) -> String {
    let mut out = String::from("# Summary\n\n[Introduction](introduction.md)\n\n# Guide\n\n");
    for (title, path) in GUIDE {
        let _ = writeln!(out, "- [{title}]({path})");
    }
    out.push_str("- [Profiles and their switches](profiles.md)\n");
    out.push_str("- [The tutorial the project grew from](tutorial.md)\n\n# The specification, rule by rule\n\n");
    let _ = writeln!(out, "- [The rule catalogue](spec/index.md)");
    for owner in owners {
        let _ = writeln!(out, "  - [{}](spec/{owner}.md)", class_title(owner));
    }
    let _ = writeln!(out, "  - [RabbitMQ's extensions](spec/extensions.md)");
    // The reference before the results: the fixtures are hundreds of pages (folded by directory,
    // book.toml's `fold`).
    out.push_str("\n# Reference\n\n");
    for (title, path) in REFERENCE {
        let _ = writeln!(out, "- [{title}]({path})");
    }
    let _ = writeln!(out, "- [Source: the model and the reference broker]()");
    for (path, _) in s.model_source {
        let _ = writeln!(out, "  - [{path}](source/{path}.md)");
    }
    out.push_str("\n# Results\n\n- [Conformance matrix](matrix.md)\n");
    let _ = writeln!(out, "- [Fixtures](fixtures/index.md)");
    for (dir, fixtures) in by_directory(s.fixtures) {
        let _ = writeln!(out, "  - [{dir}]()");
        for (path, _) in fixtures {
            let _ = writeln!(out, "    - [{}]({})", fixture_name(path), fixture_page_path(path));
        }
    }
    out
}

/// The extensions catalogue (`spec/extensions.toml`): each RabbitMQ behaviour beyond the
/// specification that the `rabbitmq` profile implements, with its page, where the model has it
/// and the fixtures that cite it.
fn extensions_page(s: &Sources<'_>) -> String {
    let cat = s.catalogue;
    let page = "spec/extensions.md";
    let mut out = String::from(
        "# RabbitMQ's extensions

",
    );
    out.push_str(
        "What the model's `rabbitmq` profile implements beyond the specification, each as the page of \
         RabbitMQ's documentation it comes from names it; fixtures cite them as they cite rules (`cite: RabbitMQ \
         ttl`). The data is `spec/extensions.toml`; what RabbitMQ 3.10.8 was probed to do is in \
         [RabbitMQ 3.10](../rabbitmq-3.10.md). Generated by `amqp-conformance docs`.\n",
    );
    for x in &cat.extensions {
        let _ = writeln!(out, "\n## {}\n\n{}\n", md_escape(&x.id), md_escape(&x.statement));
        let _ = writeln!(out, "- RabbitMQ's page: <{}>", x.page);
        let _ = writeln!(out, "- in the model: {}", md_escape(&x.model));
        let fixtures = cat.fixtures(&x.id);
        if !fixtures.is_empty() {
            out.push_str("- fixtures:");
            for f in fixtures {
                let _ = write!(out, " [{}]({})", fixture_name(f), link(page, &fixture_page_path(f)));
            }
            out.push('\n');
        }
    }
    out
}

fn class_title(owner: &str) -> String {
    match owner {
        "domains" => "Domains (delivery tags, redelivered)".to_string(),
        class => format!("{class} class"),
    }
}

fn spec_index(s: &Sources<'_>, owners: &[String]) -> String {
    let cat = s.catalogue;
    let mut out = String::from("# The rule catalogue\n\n");
    out.push_str(
        "Every rule of the AMQP 0-9-1 specification (the extended XML with RabbitMQ's extensions) that bears on \
         a broker: its id, what it says in our words, whether the suite checks it, where the model implements \
         it, the fixtures that exercise it and what each broker of the [matrix](../matrix.md) does. The data is \
         `spec/rules.toml`; [coverage.md](../coverage.md) explains it. Generated by `amqp-conformance docs`.\n\n",
    );
    out.push_str("| class | rules in scope | covered by a fixture | share | out of scope |\n| --- | ---: | ---: | ---: | ---: |\n");
    let row = |out: &mut String, name: String, sh: crate::catalogue::Share| {
        let share = if sh.in_scope == 0 { "–".to_string() } else { format!("{:.0}%", sh.percent()) };
        let _ = writeln!(out, "| {name} | {} | {} | {share} | {} |", sh.in_scope, sh.covered, sh.out_of_scope);
    };
    for owner in owners {
        row(&mut out, format!("[{}]({owner}.md)", class_title(owner)), cat.share(Some(owner)));
    }
    row(&mut out, "**all**".to_string(), cat.share(None));
    let gaps: Vec<&Rule> = cat.rules.iter().filter(|r| r.out_of_scope.is_none() && !cat.covered(&r.id)).collect();
    if !gaps.is_empty() {
        out.push_str("\nIn scope, not covered by a fixture yet:\n\n");
        for r in gaps {
            let _ =
                writeln!(out, "- [`{}`]({}.md#{}): {}", r.id, cat.owner(&r.id), anchor(&r.id), md_escape(&r.statement));
        }
    }
    out
}

fn class_page(s: &Sources<'_>, owner: &str) -> String {
    let cat = s.catalogue;
    let page = format!("spec/{owner}.md");
    let share = cat.share(Some(owner));
    let mut out = format!("# {}\n\n", class_title(owner));
    let _ = writeln!(
        out,
        "{} rules: {} in scope, {} of them covered by a fixture; {} out of scope. Each rule: what it says (our \
         reading), where the model implements it, the fixtures that exercise it and each target's result in the \
         [matrix](../matrix.md) (the worst over the fixtures).\n",
        share.in_scope + share.out_of_scope,
        share.in_scope,
        share.covered,
        share.out_of_scope
    );
    for rule in cat.rules.iter().filter(|r| cat.owner(&r.id) == owner) {
        let _ = writeln!(
            out,
            "<a id=\"{}\"></a>\n\n## `{}`\n\n{}\n",
            anchor(&rule.id),
            rule.id,
            md_escape(&rule.statement)
        );
        match &rule.out_of_scope {
            Some(reason) => {
                let _ = writeln!(out, "**Out of scope**: {}\n", md_escape(reason));
            }
            None if rule.tested_by.is_some() && cat.covered(&rule.id) => {
                let (file, test) = rule.test().unwrap_or_default();
                let _ = writeln!(
                    out,
                    "**In scope, covered** by the reference broker's test `{test}` ({file}): no trace can \
                     express it, the model being one virtual host.\n"
                );
            }
            None if cat.covered(&rule.id) => out.push_str("**In scope, covered.**\n\n"),
            None => out.push_str("**In scope, not covered by a fixture yet.**\n\n"),
        }
        if let Some(r) = cat.reading(&rule.id) {
            out.push_str(&reading_section(r));
        }
        if let Some(places) = cat.model.get(&rule.id) {
            out.push_str("Model:\n\n");
            for p in places {
                let _ = writeln!(out, "- {}", place(&page, p));
            }
            out.push('\n');
        }
        if let Some(places) = cat.broker.get(&rule.id) {
            out.push_str("Reference broker:\n\n");
            for p in places {
                let _ = writeln!(out, "- {}", place(&page, p));
            }
            out.push('\n');
        }
        let fixtures = cat.fixtures(&rule.id);
        if !fixtures.is_empty() {
            out.push_str(&results_table(s, &page, fixtures, true));
            out.push('\n');
        }
    }
    out
}

/// A rule's reading (spec/readings/): its force, what the specification allows a server, the
/// text that allows it, and how the `spec` profile compares.
fn reading_section(r: &crate::catalogue::Reading) -> String {
    let mut out = format!("**Force**: {}. The specification allows a server:\n\n", r.force);
    for a in &r.allows {
        let _ = writeln!(out, "- {}", md_escape(a));
    }
    let _ = writeln!(out, "\n**Text**: {}\n", md_escape(&r.text));
    if r.status == "out-of-scope" {
        return out;
    }
    let status = match r.status.as_str() {
        "exact" => "allows exactly that",
        "narrower" => "allows **fewer** outcomes than the text (to be widened)",
        "narrower-on-purpose" => "allows **fewer** outcomes than the text, on purpose (why: below)",
        "wider" => "allows **more** than the text (to be narrowed)",
        _ => "is **wrong** here (to be fixed)",
    };
    match &r.model_spec {
        Some(m) => {
            let _ = writeln!(out, "**The `spec` profile** {status}: {}\n", md_escape(m));
        }
        None => {
            let _ = writeln!(out, "**The `spec` profile** {status}.\n");
        }
    }
    if !r.tests_it {
        out.push_str("No fixture yet fails when the rule is broken.\n\n");
    }
    if let Some(fix) = &r.fix {
        let _ = writeln!(out, "**Fixes, and what is left**: {}\n", md_escape(fix));
    }
    out
}

/// A model place: a link to the source line and the comment that names the rule.
fn place(page: &str, p: &Place) -> String {
    let mut comment = p.comment.split_whitespace().collect::<Vec<_>>().join(" ");
    if comment.chars().count() > 240 {
        comment = comment.chars().take(240).collect::<String>() + "…";
    }
    format!(
        "[`{}:{}`]({}#L{}): {}",
        p.file,
        p.line,
        link(page, &format!("source/{}.md", p.file)),
        p.line,
        md_escape(&comment)
    )
}

/// A table of fixtures by target: each cell the fixture's result there; with `worst`, a last
/// row with each target's worst result.
fn results_table(s: &Sources<'_>, page: &str, fixtures: &[String], worst: bool) -> String {
    let m = s.matrix;
    let mut out = String::from("| fixture |");
    for t in &m.targets {
        let _ = write!(out, " {} |", md_escape(t));
    }
    out.push_str("\n| --- |");
    out.push_str(&" --- |".repeat(m.targets.len()));
    out.push('\n');
    let mut worst_of: Vec<Option<&crate::matrix::Cell>> = vec![None; m.targets.len()];
    for f in fixtures {
        let _ = write!(out, "| [{}]({}) |", fixture_name(f), link(page, &fixture_page_path(f)));
        for (i, cell) in
            m.cells.get(f).map(|c| c.iter().collect::<Vec<_>>()).unwrap_or_default().into_iter().enumerate()
        {
            let _ = write!(out, " {} |", cell.label);
            if worst_of.get(i).is_some_and(|w| w.is_none_or(|w| w.rank < cell.rank)) {
                worst_of[i] = Some(cell);
            }
        }
        if !m.cells.contains_key(f) {
            out.push_str(&" not in the matrix |".repeat(m.targets.len()));
        }
        out.push('\n');
    }
    if worst && fixtures.len() > 1 {
        out.push_str("| **worst** |");
        for w in &worst_of {
            let _ = write!(out, " **{}** |", w.map_or("–", |c| c.label.as_str()));
        }
        out.push('\n');
    }
    out
}

fn fixtures_index(s: &Sources<'_>) -> String {
    let mut out = String::from(
        "# Fixtures\n\nEvery trace under `fixtures/`, with its title. Each page has the trace, a sequence \
         diagram of what the model does, the model's outcome under each profile and each target's result in the \
         [matrix](../matrix.md).\n",
    );
    for (dir, fixtures) in by_directory(s.fixtures) {
        let _ = writeln!(out, "\n## `{dir}`\n");
        for (path, trace) in fixtures {
            let page = link("fixtures/index.md", &fixture_page_path(path));
            let title = md_escape(trace.title.as_deref().unwrap_or(""));
            let _ = writeln!(out, "- [{}]({page}): {title}", fixture_name(path));
        }
    }
    out
}

fn fixture_page(s: &Sources<'_>, path: &str, trace: &Trace) -> String {
    let cat = s.catalogue;
    let page = fixture_page_path(path);
    let mut out = format!("# {}\n\n", md_escape(trace.title.as_deref().unwrap_or(path)));
    let _ =
        writeln!(out, "`{path}`{}\n", trace.profile.map_or(String::new(), |p| format!(", for the `{p}` profile only")));
    if !trace.cites.is_empty() {
        out.push_str("Cites:\n\n");
        for c in &trace.cites {
            match cite_link(cat, &page, c) {
                Some(to) if cat.names.is_rule(c) => {
                    let _ = writeln!(out, "- [`{c}`]({to})");
                }
                Some(to) if tutorial_section(c).is_some() => {
                    let _ = writeln!(out, "- [{c}]({to}), of the tutorial the project grew from");
                }
                Some(to) => {
                    let _ = writeln!(out, "- [{}]({to})", md_escape(c));
                }
                None => {
                    let _ = writeln!(out, "- {}", md_escape(c));
                }
            }
        }
        out.push('\n');
    }
    if let Some(rule) = &trace.recommends {
        let _ = writeln!(
            out,
            "It checks only what `{rule}` recommends (a SHOULD): under `spec` a broker that takes the other \
             answer the text allows is reported as departing from the recommendation, not as failing.\n"
        );
    }
    out.push_str("## Results\n\n");
    // One row per target (the matrix has a column per target: too wide for one fixture).
    match s.matrix.cells.get(path) {
        Some(cells) => {
            out.push_str("| target | result | why |\n| --- | --- | --- |\n");
            for (t, cell) in s.matrix.targets.iter().zip(cells) {
                let note = md_escape(&cell.note.as_deref().unwrap_or("").replace('\n', " "));
                let _ = writeln!(out, "| {} | {} | {note} |", md_escape(t), cell.label);
            }
        }
        None => out.push_str("Not in the matrix.\n"),
    }
    let profile = match trace.profile {
        Some(ProfileName::Spec) => Profile::spec(),
        _ => Profile::rabbitmq(),
    };
    let _ = writeln!(out, "\n## Sequence diagram\n\nWhat the model does under the `{}` profile.\n", profile.name);
    out.push_str(&diagram(trace, profile));
    out.push_str("\n## The trace\n\n```text\n");
    out.push_str(s.texts.get(path).map_or("", String::as_str));
    out.push_str("```\n");
    for p in [Profile::spec(), Profile::rabbitmq()] {
        let _ = writeln!(out, "\n## The model, `{}` profile\n", p.name);
        if trace.profile.is_some_and(|only| only != p.name) {
            out.push_str("Not run: the trace is written for the other profile.\n");
            continue;
        }
        let o = outcome(trace, &record(trace, p, &mut ModelTarget::new(p, Faults::NONE)));
        let _ = writeln!(out, "Verdict: **{}**.\n\n```text", o.verdict);
        for step in &o.steps {
            let _ = writeln!(out, "{:>4}  {}", step.line, step.step);
            for e in &step.events {
                let _ = writeln!(out, "        {e}");
            }
        }
        out.push_str("```\n");
    }
    out
}

/// Who takes part in a diagram, in order of appearance: channels and connections, then the
/// exchanges and queues the trace names (one `broker` when there are too many to draw).
struct Parts {
    ids: Vec<(String, String)>,
}

impl Parts {
    fn id(&mut self, label: &str) -> String {
        if let Some((id, _)) = self.ids.iter().find(|(_, l)| l == label) {
            return id.clone();
        }
        let id = format!("p{}", self.ids.len());
        self.ids.push((id.clone(), label.to_string()));
        id
    }
}

/// What a command talks to: an exchange (`x:name`) or a queue (`q:name`), or the broker.
fn object(cmd: &Command) -> String {
    use Command::*;
    let x = |n: &amqp_model::Name| if n.is_empty() { "x:(default)".to_string() } else { format!("x:{n}") };
    match cmd {
        ExchangeDeclare { exchange, .. } | ExchangeDelete { exchange, .. } => x(exchange),
        ExchangeBind { destination, .. } | ExchangeUnbind { destination, .. } => x(destination),
        BasicPublish { exchange, .. } => x(exchange),
        QueueDeclare { queue, .. }
        | QueueBind { queue, .. }
        | QueueUnbind { queue, .. }
        | QueuePurge { queue, .. }
        | QueueDelete { queue, .. }
        | BasicConsume { queue, .. }
        | BasicGet { queue, .. } => format!("q:{queue}"),
        _ => "broker".to_string(),
    }
}

/// Text safe inside a Mermaid message in an HTML block.
fn mermaid_text(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            c => out.push(c),
        }
    }
    out
}

/// The sequence diagram of what the model does with `trace` under `profile` (Mermaid, in an
/// HTML block so that mdBook leaves it to mermaid.js).
pub fn diagram(trace: &Trace, profile: Profile) -> String {
    let recording = record(trace, profile, &mut ModelTarget::new(profile, Faults::NONE));
    // Objects beyond this many are drawn as one `broker`.
    const MAX_OBJECTS: usize = 8;
    let objects: std::collections::BTreeSet<String> = trace.commands().map(object).filter(|o| o != "broker").collect();
    let many = objects.len() > MAX_OBJECTS;
    let mut parts = Parts { ids: Vec::new() };
    let mut lines = Vec::new();
    let who = |parts: &mut Parts, obj: &str| -> String {
        if many || obj == "broker" {
            parts.id("broker")
        } else {
            let (kind, name) = obj.split_at(2);
            parts.id(&format!("{}{name}", if kind == "x:" { "exchange " } else { "queue " }))
        }
    };
    // Deliveries name their consumer: the queue is the one its basic.consume named.
    let mut consumers: BTreeMap<String, String> = BTreeMap::new();
    let mut consuming = String::new();
    for obs in &recording.steps {
        let Some(cmd) = &obs.command else { continue };
        if let Command::BasicConsume { queue, .. } = cmd {
            consuming = queue.to_string();
        }
        if matches!(cmd, Command::Restart) {
            let b = parts.id("broker");
            lines.push(format!("    Note over {b}: restart"));
            continue;
        }
        let client = match cmd.channel() {
            Some(ch) => ch.to_string(),
            None => cmd.connection().map_or("client".to_string(), |c| format!("c{}", c.0)),
        };
        let from = parts.id(&client);
        let to = who(&mut parts, &object(cmd));
        let text = write_command(cmd);
        let text = text.strip_prefix(&format!("{client} ")).unwrap_or(&text);
        lines.push(format!("    {from}->>{to}: {}", mermaid_text(text)));
        for e in &obs.events {
            let source = match e {
                Event::Deliver { consumer_tag, .. } => match consumers.get(consumer_tag.as_str()) {
                    Some(queue) => who(&mut parts, &format!("q:{queue}")),
                    None => parts.id("broker"),
                },
                Event::Reply { reply: Reply::ConsumeOk { consumer_tag }, .. } => {
                    consumers.insert(consumer_tag.to_string(), consuming.clone());
                    to.clone()
                }
                Event::Return { message, .. } => who(
                    &mut parts,
                    &if message.0.exchange.is_empty() {
                        "x:(default)".to_string()
                    } else {
                        format!("x:{}", message.0.exchange)
                    },
                ),
                Event::Reply { .. } | Event::ChannelOpenOk { .. } | Event::ChannelCloseOk { .. } => to.clone(),
                _ => parts.id("broker"),
            };
            let dest = match e.channel() {
                Some(ch) => parts.id(&ch.to_string()),
                None => parts.id(&format!("c{}", e.connection().0)),
            };
            let text = write_event(e);
            let prefix = e.channel().map_or(format!("c{} ", e.connection().0), |ch| format!("{ch} "));
            let text = text.strip_prefix(&prefix).unwrap_or(&text);
            lines.push(format!("    {source}-->>{dest}: {}", mermaid_text(text)));
        }
    }
    let mut out = String::from("<pre class=\"mermaid\">\nsequenceDiagram\n");
    for (id, label) in &parts.ids {
        let _ = writeln!(out, "    participant {id} as {}", mermaid_text(label));
    }
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out.push_str("</pre>\n");
    out
}

fn source_page(path: &str, text: &str) -> String {
    let mut out = format!(
        "# `{path}`\n\nThe model's source as of this book, with a line anchor for each line (`#L12`) for the \
         rule pages to link to.\n\n<pre><code>"
    );
    for (n, line) in text.lines().enumerate() {
        let _ = writeln!(out, "<span id=\"L{0}\">{0:>4}  {1}</span>", n + 1, html_escape(line));
    }
    out.push_str("</code></pre>\n");
    out
}

fn profiles_page(s: &Sources<'_>) -> String {
    let value = |p: Profile| serde_json::to_value(p).unwrap_or_default();
    let (spec, rabbit) = (value(Profile::spec()), value(Profile::rabbitmq()));
    let mut out = String::from(
        "# Profiles and their switches\n\nThe model runs under one of two profiles: `spec`, the specification \
         with its errata, and `rabbitmq`, RabbitMQ 3.10 as documented and observed. Every point where they \
         differ is one switch of `Profile` ([model/src/profile.rs](source/model/src/profile.rs.md)); \
         [model.md](model.md) says which rule or document each follows. A fixture that holds under one profile \
         only says so with `profile:`. Generated from the source by `amqp-conformance docs`.\n\n\
         | switch | what it decides | `spec` | `rabbitmq` |\n| --- | --- | --- | --- |\n",
    );
    for (field, doc) in s.switches {
        let show = |v: &serde_json::Value| breakable_code(&v.get(field).map_or("?".to_string(), |v| v.to_string()));
        let doc = md_escape(doc);
        let _ = writeln!(out, "| `{field}` | {doc} | {} | {} |", show(&spec), show(&rabbit));
    }
    out.push_str(
        "\n## What the `spec` value follows\n\nFor each switch, the specification's text its `spec` value \
         follows, and whether that reading is the only one the text allows (the audit in `spec/readings/`; a \
         switch read from two classes' rules has two entries).\n\n",
    );
    for (field, _) in s.switches {
        for (file, r) in s.catalogue.switches.iter().filter(|(_, r)| &r.name == field) {
            let _ = writeln!(out, "### `{field}` ({})\n", file.trim_start_matches("spec/readings/"));
            let (value, text) = (md_escape(&r.spec_value), md_escape(&r.text));
            let _ = writeln!(out, "`spec`: {value}. {text}\n");
            let _ = writeln!(out, "Reading: **{}**.", r.status);
            if let Some(fix) = &r.fix {
                let _ = writeln!(out, " Fixes, and what is left: {}", md_escape(fix));
            }
            out.push('\n');
        }
    }
    out
}

/// The source files the rule pages link to, under `root`: the model's (model/src) and the
/// reference broker's (broker/src, which implements the rules checked by its tests): (path
/// relative to root, text).
pub fn model_source(root: &Path) -> Result<Vec<(String, String)>, crate::input::InputError> {
    let mut out = Vec::new();
    for dir in [crate::catalogue::MODEL_SOURCE, crate::catalogue::BROKER_SOURCE] {
        for path in crate::catalogue::rust_files(&root.join(dir))? {
            let text = std::fs::read_to_string(&path).map_err(|e| crate::input::InputError::file(path.display(), e))?;
            out.push((path.strip_prefix(root).unwrap_or(&path).display().to_string(), text));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::parse;

    #[test]
    fn anchors_and_links() {
        assert_eq!(anchor("queue delete if-unused in-use"), "queue-delete-if-unused-in-use");
        assert_eq!(
            anchor("exchange declare auto-delete amq_exchange_02"),
            "exchange-declare-auto-delete-amq_exchange_02"
        );
        assert_eq!(fixture_page_path("fixtures/spec/x.trace"), "fixtures/spec/x.md");
        assert_eq!(link("fixtures/spec/x.md", "spec/basic.md"), "../../spec/basic.md");
        assert_eq!(mermaid_text("a.# <b>;"), "a.#35; #lt;b#gt;#59;");
    }

    #[test]
    fn the_diagram_draws_commands_to_their_objects_and_events_back() {
        let trace = parse(
            "title: t\n\nc1 connection.open\nc1.1 channel.open\nc1.1 queue.declare q\nc1.1 basic.consume q w\n\
             c1.1 basic.publish \"\" q m\nc1.1 queue.delete nope\n",
            "t.trace",
        )
        .unwrap();
        let d = diagram(&trace, Profile::rabbitmq());
        let expected = [
            "participant p0 as c1",
            "participant p1 as broker",
            "participant p2 as c1.1",
            "participant p3 as queue q",
            "participant p4 as exchange (default)",
            "p2->>p3: queue.declare q",
            "p3-->>p2: queue.declare-ok q 0 0",
            "p2->>p4: basic.publish \"\" q m",
            // The delivery comes from the consumer's queue.
            "p3-->>p2: basic.deliver w 1 \"\" q m",
        ];
        for line in expected {
            assert!(d.contains(line), "{line} not in\n{d}");
        }
        assert!(d.starts_with("<pre class=\"mermaid\">\nsequenceDiagram\n") && d.ends_with("</pre>\n"));
    }

    #[test]
    fn switches_come_from_the_profile_struct() {
        let src = "pub struct Other {\n    /// no\n    pub a: u8,\n}\n/// The switches.\npub struct Profile {\n    \
                   /// Its name.\n    pub name: ProfileName,\n    /// How qos\n    /// is read.\n    pub qos_scope: QosScope,\n}\n";
        assert_eq!(
            crate::catalogue::profile_switches(src),
            [("qos_scope".to_string(), "How qos is read.".to_string())]
        );
    }
}
