//! Mentions made links, as the book is built: every code span in a page that names a rule
//! (`` `basic 01` ``), a RabbitMQ extension (`` `RabbitMQ ttl` ``), a section of the tutorial
//! (`` `tutorial 3.2` ``) or a fixture (`` `fixtures/spec/x.trace` ``) becomes a link to its place
//! in the book ([`super::cite_link`], [`super::fixture_page_path`]). Hand-written and generated
//! pages alike, so a page's source stays plain and no mention is left unlinked.
//!
//! It runs as an mdBook preprocessor (`amqp-conformance mdbook-mentions`, named in
//! `docs/book.toml`): mdBook hands it the book as JSON and takes it back with each chapter's
//! `content` rewritten. Code blocks, spans already in a link and raw HTML lines are left alone.

use crate::catalogue::Catalogue;
use std::collections::BTreeSet;
use std::path::Path;

/// What mentions can name.
#[derive(Debug)]
pub struct Known {
    /// The rule catalogue (rules and extensions).
    pub catalogue: Catalogue,
    /// Every fixture, by its path from the repository root (`fixtures/spec/x.trace`).
    pub fixtures: BTreeSet<String>,
}

impl Known {
    /// What the repository at `root` names: its catalogue and its fixtures.
    pub fn load(root: &Path) -> Result<Known, String> {
        let files = crate::suite::find_traces(&[root.join("fixtures")]).map_err(|e| e.to_string())?;
        let traces = crate::suite::load(&files).map_err(|e| e.to_string())?;
        let relative =
            |p: &str| Path::new(p).strip_prefix(root).map_or_else(|_| p.to_string(), |r| r.display().to_string());
        let traces: Vec<_> = traces.into_iter().map(|(p, t)| (relative(&p), t)).collect();
        let catalogue = Catalogue::load(root, &traces).map_err(|e| e.to_string())?;
        Ok(Known { catalogue, fixtures: traces.into_iter().map(|(p, _)| p).collect() })
    }

    /// Where a mention leads from the page at `page`, if it names something the book has.
    fn target(&self, page: &str, mention: &str) -> Option<String> {
        if self.fixtures.contains(mention) {
            return Some(super::link(page, &super::fixture_page_path(mention)));
        }
        super::cite_link(&self.catalogue, page, mention)
    }
}

/// `markdown`, the page at `page` (under `docs/`), with each mention made a link.
pub fn link_mentions(known: &Known, page: &str, markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut fenced = false;
    for line in markdown.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            out.push_str(line);
        } else if fenced || trimmed.starts_with('<') || line.starts_with("    ") {
            out.push_str(line);
        } else {
            link_line(known, page, line, &mut out);
        }
    }
    out
}

fn link_line(known: &Known, page: &str, line: &str, out: &mut String) {
    let mut rest = line;
    // Brackets opened and not closed before the current position: inside a link's text.
    let mut depth = 0i32;
    while let Some(open) = rest.find('`') {
        let before = &rest[..open];
        depth += before.matches('[').count() as i32 - before.matches(']').count() as i32;
        // A span opened by two backticks or more (it may hold one): copied as it is.
        let run = rest[open..].chars().take_while(|c| *c == '`').count();
        if run > 1 {
            let fence = &rest[open..open + run];
            let end = rest[open + run..].find(fence).map_or(rest.len(), |e| open + run + e + run);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let Some(len) = rest[open + 1..].find('`') else { break };
        let span = &rest[open + 1..open + 1 + len];
        let after = &rest[open + 2 + len..];
        out.push_str(before);
        let linked = before.ends_with('[') && after.starts_with("](");
        match known.target(page, span).filter(|_| depth <= 0 && !linked) {
            Some(to) => {
                out.push_str(&format!("[`{span}`]({to})"));
            }
            None => {
                out.push('`');
                out.push_str(span);
                out.push('`');
            }
        }
        rest = after;
    }
    out.push_str(rest);
}

/// Rewrite every chapter's content in mdBook's preprocessor input (`[context, book]` as JSON),
/// returning the book as JSON. The repository is the book root's parent (`docs/..`).
pub fn preprocess(input: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(input).map_err(|e| format!("mdBook's input: {e}"))?;
    let [context, book] =
        <[serde_json::Value; 2]>::try_from(value.as_array().cloned().ok_or("mdBook's input is not [context, book]")?)
            .map_err(|_| "mdBook's input is not [context, book]".to_string())?;
    let root = context["root"].as_str().ok_or("mdBook's context has no root")?;
    let known = Known::load(&Path::new(root).join(".."))?;
    let mut book = book;
    rewrite(&known, &mut book);
    serde_json::to_string(&book).map_err(|e| e.to_string())
}

/// Every chapter (an object with `content` and `path`) under `v`, rewritten.
fn rewrite(known: &Known, v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let path = map.get("path").and_then(|p| p.as_str()).map(str::to_string);
            if let (Some(path), Some(serde_json::Value::String(content))) = (path, map.get_mut("content")) {
                *content = link_mentions(known, &path, content);
            }
            for child in map.values_mut() {
                rewrite(known, child);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| rewrite(known, i)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        Known::load(Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the repository")).expect("it loads")
    }

    #[test]
    fn rules_extensions_tutorial_sections_and_fixtures_become_links_and_nothing_else() {
        let k = known();
        let page = "intro/page.md";
        let text = "See `basic 01`, `RabbitMQ ttl`, `tutorial 3.2` and `fixtures/seed/4.2-direct-routing.trace`; \
                    `queue.declare` is a method.\n";
        let linked = link_mentions(&k, page, text);
        assert_eq!(
            linked,
            "See [`basic 01`](../spec/basic.md#basic-01), [`RabbitMQ ttl`](../spec/extensions.md#rabbitmq-ttl), \
             [`tutorial 3.2`](../tutorial.md#tutorial-3-2) and \
             [`fixtures/seed/4.2-direct-routing.trace`](../fixtures/seed/4.2-direct-routing.md); \
             `queue.declare` is a method.\n"
        );
        // Left alone: code blocks, spans already linked or inside a link's text, raw HTML.
        let alone = "```\n`basic 01`\n```\n[`basic 01`](x.md) and [the rule `basic 01`](y.md)\n<td>`basic 01`</td>\n\
                     a span of two: `` `basic 01` `` is code\n";
        assert_eq!(link_mentions(&k, page, alone), alone);
    }

    #[test]
    fn the_preprocessor_rewrites_every_chapter_of_mdbooks_input() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("docs");
        let input = serde_json::json!([
            { "root": root.display().to_string(), "config": {}, "renderer": "html", "mdbook_version": "0.5.4" },
            { "items": [ { "Chapter": { "name": "A", "content": "`basic 01`", "path": "a.md", "sub_items": [
                { "Chapter": { "name": "B", "content": "`errata 99 does not exist`", "path": "sub/b.md", "sub_items": [] } }
            ] } }, "Separator" ] }
        ]);
        let out: serde_json::Value = serde_json::from_str(&preprocess(&input.to_string()).unwrap()).unwrap();
        let a = &out["items"][0]["Chapter"];
        assert_eq!(a["content"], "[`basic 01`](spec/basic.md#basic-01)");
        assert_eq!(a["sub_items"][0]["Chapter"]["content"], "`errata 99 does not exist`");
        assert_eq!(out["items"][1], "Separator");
    }
}
