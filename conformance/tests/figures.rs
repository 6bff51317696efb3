//! The figures the hand-written pages of the book quote (`docs/intro/five-minutes.md`, ...) are
//! those of the repository: computed again from the fixtures, the rule catalogue and
//! `docs/matrix.json`, every marked figure is what the page says (`just docs` writes them; `just
//! docs-check` fails on a stale one too, this says which). And the `just coverage` output that
//! `docs/coverage.md` quotes is what the command prints.

use amqp_conformance::book::{hand_written, HAND_WRITTEN_DIR};
use amqp_conformance::catalogue::Catalogue;
use amqp_conformance::figures::{has_marks, Figures};
use amqp_conformance::matrix::MatrixData;
use amqp_conformance::suite::{find_traces, load};
use amqp_conformance::trace::Trace;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root")
}

/// The repository's fixtures (paths relative to the root), matrix results and catalogue.
fn sources() -> (Vec<(String, Trace)>, MatrixData, Catalogue) {
    let root = root();
    let files = find_traces(&[root.join("fixtures")]).expect("fixtures");
    let fixtures: Vec<_> = load(&files)
        .expect("traces")
        .into_iter()
        .map(|(f, t)| (PathBuf::from(&f).strip_prefix(root).map_or(f, |p| p.display().to_string()), t))
        .collect();
    let json = std::fs::read_to_string(root.join("docs/matrix.json")).expect("docs/matrix.json");
    let matrix = serde_json::from_str(&json).expect("docs/matrix.json parses");
    let catalogue = Catalogue::load(root, &fixtures).expect("the catalogue");
    (fixtures, matrix, catalogue)
}

#[test]
fn the_hand_written_pages_quote_the_current_figures() {
    let (fixtures, matrix, catalogue) = sources();
    let figures = Figures { fixtures: &fixtures, matrix: &matrix, catalogue: &catalogue };
    let mut marked = Vec::new();
    for page in hand_written() {
        let path = root().join(HAND_WRITTEN_DIR).join(page);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if !has_marks(&text) {
            continue;
        }
        marked.push(page);
        let filled = figures.fill(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if filled != text {
            let stale: Vec<String> = text
                .lines()
                .zip(filled.lines())
                .enumerate()
                .filter(|(_, (old, new))| old != new)
                .map(|(n, (old, new))| format!("  line {}:\n    the page: {old}\n    now:      {new}", n + 1))
                .collect();
            panic!("{} quotes stale figures (run `just docs`):\n{}", path.display(), stale.join("\n"));
        }
    }
    // The pages this was written for still have their marks.
    for page in ["intro/five-minutes.md", "intro/spec-readers.md", "serve.md", "conformance.md", "coverage.md"] {
        assert!(marked.contains(&page), "docs/{page} has no figure marks any more");
    }
}

#[test]
fn the_coverage_output_quoted_is_what_the_command_prints() {
    let (fixtures, matrix, catalogue) = sources();
    let figures = Figures { fixtures: &fixtures, matrix: &matrix, catalogue: &catalogue };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_amqp-conformance"))
        .arg("coverage")
        .current_dir(root())
        .output()
        .expect("amqp-conformance coverage runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), figures.coverage());
}
