//! The `amqp-conformance` command line: what it prints and its exit codes (0 conformant, 1 not,
//! 2 unusable input or broker), against the model and against the RabbitMQ the tests use.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_amqp-conformance"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A scratch trace file with `body`.
fn scratch(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("amqpc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

const URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[test]
fn every_fixture_passes_on_the_model_and_the_summary_counts_them() {
    for profile in ["rabbitmq", "spec"] {
        let out = run(&["run", "fixtures", "--profile", profile]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        let last = t.lines().last().unwrap();
        assert!(last.contains(" passed, 0 failed, ") && last.ends_with(" skipped"), "{last}");
    }
}

#[test]
fn a_broken_expectation_exits_1_naming_the_line() {
    let path = scratch(
        "wrong.trace",
        "c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare q\nexpect c1.1 queue.declare-ok q 5 0\n",
    );
    let out = run(&["run", path.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("FAIL") && t.contains("line 4: expected `c1.1 queue.declare-ok q 5 0`"), "{t}");
}

#[test]
fn an_unparsable_trace_exits_2_with_file_and_line() {
    let path = scratch("bad.trace", "c1 connection.open\nc1.1 queue.decalre q\n");
    let out = run(&["run", path.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("bad.trace:2: unknown method `queue.decalre`"), "{t}");
}

#[test]
fn an_unreachable_broker_or_bad_credentials_exit_2_without_the_password() {
    let seed = "fixtures/seed/4.3-topic-routing.trace";
    for uri in ["amqp://guest:hunter2@127.0.0.1:5999/%2f", "amqp://guest:hunter2@127.0.0.1:5672/%2f"] {
        let out = run(&["run", seed, "--broker", uri, "--timeout-ms", "3000"]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{t}");
        assert!(!t.contains("hunter2") && t.contains("guest:***@"), "{t}");
        assert_eq!(t.lines().count(), 1, "one line of cause: {t}");
    }
}

#[test]
fn a_seed_fixture_passes_against_rabbitmq_and_a_restart_one_is_skipped() {
    let out = run(&[
        "run",
        "fixtures/seed/4.3-topic-routing.trace",
        "fixtures/seed/3.3-durable-queue-survives-restart.trace",
        "--broker",
        URI,
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("pass  fixtures/seed/4.3-topic-routing.trace"), "{t}");
    assert!(t.contains("skip  fixtures/seed/3.3-durable-queue-survives-restart.trace"), "{t}");
    assert!(t.contains("1 passed, 0 failed, 1 skipped"), "{t}");
}
