//! The rule catalogue of the repository (spec/rules.toml, spec/amqp0-9-1.names, the model's
//! source and the fixtures' cites) is consistent, and the fixtures cover at least 90% of the
//! in-scope rules.

use amqp_conformance::catalogue::Catalogue;
use amqp_conformance::suite::{find_traces, load};
use std::path::{Path, PathBuf};

fn repository() -> Catalogue {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root");
    let files = find_traces(&[root.join("fixtures")]).expect("fixtures");
    let traces = load(&files).expect("traces");
    let traces: Vec<_> = traces
        .into_iter()
        .map(|(f, t)| (PathBuf::from(&f).strip_prefix(root).map_or(f, |p| p.display().to_string()), t))
        .collect();
    Catalogue::load(root, &traces).expect("the catalogue")
}

#[test]
fn every_rule_has_one_entry_and_every_cite_names_something() {
    let cat = repository();
    assert_eq!(cat.names.rules.len(), 139, "the rules of the extended specification");
    assert_eq!(cat.rules.len(), cat.names.rules.len());
    assert_eq!(cat.problems(), Vec::<String>::new());
}

#[test]
fn fixtures_cover_ninety_percent_of_the_rules_in_scope() {
    let cat = repository();
    let all = cat.share(None);
    assert!(all.in_scope >= 90, "{all:?}");
    assert!(all.percent() >= 90.0, "covered {} of {} in-scope rules", all.covered, all.in_scope);
    // Every fixture path the catalogue records exists.
    for fixtures in cat.cited_by.values() {
        for f in fixtures {
            assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(f).is_file(), "{f}");
        }
    }
}
