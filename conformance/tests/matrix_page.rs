//! The checked-in matrix page is what its checked-in data renders to: the page is made from the
//! data alone (which is what lets a column of a broker not available here be carried over), so a
//! change that made the page from anything else shows here, without a broker.

use amqp_conformance::matrix::{render, Links, MatrixConfig, MatrixData, TargetConfig};
use amqp_conformance::suite::{find_traces, load};
use amqp_conformance::target::Description;
use std::path::{Path, PathBuf};

#[test]
fn docs_matrix_md_is_the_rendering_of_docs_matrix_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the repository root");
    std::env::set_current_dir(root).expect("cd to the repository root");
    let config = MatrixConfig::load(Path::new("matrix.toml")).expect("matrix.toml");
    let data: MatrixData =
        serde_json::from_str(&std::fs::read_to_string("docs/matrix.json").expect("docs/matrix.json"))
            .expect("its data");
    let traces = load(&find_traces(&[PathBuf::from("fixtures")]).expect("fixtures")).expect("they parse");
    let rows: Vec<(String, Vec<String>)> = traces.iter().map(|(f, t)| (f.clone(), t.cites.clone())).collect();
    let new: Vec<&String> = rows.iter().map(|(f, _)| f).filter(|f| !data.cells.contains_key(*f)).collect();
    let gone: Vec<&String> = data.cells.keys().filter(|f| !rows.iter().any(|(r, _)| r == *f)).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "the fixtures are not those of docs/matrix.json (run `just matrix`): new {new:?}, gone {gone:?}"
    );
    let configs: Vec<&TargetConfig> = config.targets.iter().collect();
    assert_eq!(
        data.targets,
        configs.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        "the data's targets are matrix.toml's"
    );
    let catalogue = amqp_conformance::catalogue::Catalogue::load(root, &traces).expect("the catalogue");
    let links = Links::for_page(Path::new("docs/matrix.md"), Some(catalogue));
    let page = render(&data, &configs, &rows, "matrix.toml", &links);
    let checked_in = std::fs::read_to_string("docs/matrix.md").expect("docs/matrix.md");
    let differing: Vec<_> = page.lines().zip(checked_in.lines()).filter(|(a, b)| a != b).take(5).collect();
    assert!(
        page == checked_in,
        "docs/matrix.md is not the rendering of docs/matrix.json; first differences: {differing:#?}"
    );
}

/// An optional target that does not answer keeps its checked-in column (and its clients'), and
/// is not a failure; a target that is not optional and does not answer is an error naming it.
#[test]
fn an_optional_target_not_available_keeps_its_checked_in_column() {
    use amqp_conformance::matrix::{assemble, run_columns, Cell, ClientData};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the repository root");
    let traces = load(&[root.join("fixtures/seed/4.2-direct-routing.trace")]).expect("a fixture");
    let file = traces[0].0.clone();
    let text = r#"
        [[target]]
        name = "model (spec)"
        profile = "spec"

        [[target]]
        name = "Gone (spec)"
        broker = "amqp://guest:guest@127.0.0.1:1/%2f"
        profile = "spec"
        optional = true
    "#;
    let path = std::env::temp_dir().join(format!("amqpc-matrix-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let config = MatrixConfig::load(&path).expect("a matrix config");
    let known = Cell { label: "known".into(), rank: 3, note: Some("known deviation from `r`: why".into()) };
    let mut old = MatrixData {
        targets: vec!["model (spec)".into(), "Gone (spec)".into()],
        cells: [(file.clone(), vec![Cell { label: "pass".into(), rank: 1, note: None }, known.clone()])].into(),
        ..MatrixData::default()
    };
    old.clients.insert("c".into(), ClientData { targets: vec!["Gone (spec)".into()], tests: Default::default() });
    let outcomes =
        run_columns(&config, &traces, &[], Some(&old), Path::new("docs/matrix.json"), &|_| true).expect("runs");
    assert!(outcomes.iter().all(|o| o.conformant));
    assert_eq!(outcomes[0].cells[&file].label, "pass", "the model's column is run");
    assert_eq!(outcomes[1].cells[&file], known, "the optional target's column is the checked-in one");
    // A target left out of the run (`matrix --only`) keeps its checked-in column too.
    let only_gone = |t: &TargetConfig| t.name != "model (spec)";
    let outcomes =
        run_columns(&config, &traces, &[], Some(&old), Path::new("docs/matrix.json"), &only_gone).expect("runs");
    assert_eq!(outcomes[0].cells[&file], old.cells[&file][0], "the model's column is the checked-in one");
    // Without checked-in data, its cells read as not run.
    let outcomes = run_columns(&config, &traces, &[], None, Path::new("docs/matrix.json"), &|_| true).expect("runs");
    let columns: Vec<_> =
        config.targets.iter().zip(&outcomes).map(|(t, o)| (t.name.clone(), o.cells.clone())).collect();
    let data = assemble(&columns, std::slice::from_ref(&file), &[]);
    assert_eq!(data.cells[&file][1].label, "n/a");
    // Not optional: an error naming the target.
    std::fs::write(&path, text.replace("optional = true", "")).unwrap();
    let config = MatrixConfig::load(&path).expect("a matrix config");
    let e = run_columns(&config, &traces, &[], Some(&old), Path::new("docs/matrix.json"), &|_| true)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("target `Gone (spec)`: no AMQP broker listening at 127.0.0.1:1"), "{e}");
    std::fs::remove_file(&path).unwrap();
}

/// `product` names what the in-process reference broker calls itself; on any other target it
/// is an error that names the file and the target.
#[test]
fn a_product_is_for_the_reference_broker_only() {
    let path = std::env::temp_dir().join(format!("amqpc-matrix-product-{}.toml", std::process::id()));
    let write = |broker: &str| {
        let text = format!(
            "[[target]]\nname = \"t\"\nprofile = \"rabbitmq\"\nbroker = \"{broker}\"\nproduct = \"RabbitMQ\"\n"
        );
        std::fs::write(&path, text).unwrap();
    };
    write("embedded");
    let config = MatrixConfig::load(&path).expect("a product for the reference broker");
    let description = config.targets[0].description().expect("a target");
    assert!(
        matches!(&description, Description::Reference { product: Some(p), .. } if p == "RabbitMQ"),
        "{description:?}"
    );
    write("amqp://guest:guest@127.0.0.1:5672/%2f");
    let e = MatrixConfig::load(&path).expect_err("a product for a broker by URI").to_string();
    assert!(e.contains("amqpc-matrix-product") && e.contains("target `t`") && e.contains("product"), "{e}");
    std::fs::remove_file(&path).ok();
}
