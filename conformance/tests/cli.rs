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

/// Without --broker the suite runs over the wire against the in-process reference broker (what
/// a fresh machine with no broker gets); with --model, on the model itself. Every fixture
/// passes both ways, under both profiles, the restart fixtures too (the in-process broker is
/// restarted in place): the same traces are skipped both ways, those written for the other
/// profile.
#[test]
fn every_fixture_passes_on_the_reference_broker_and_the_model() {
    for profile in ["rabbitmq", "spec"] {
        let wire = run(&["run", "fixtures", "--profile", profile, "--jobs", "4"]);
        let model = run(&["run", "fixtures", "--profile", profile, "--model"]);
        let mut skipped = Vec::new();
        for out in [&wire, &model] {
            let t = text(out);
            assert_eq!(out.status.code(), Some(0), "{t}");
            let lines: Vec<&str> = t.lines().collect();
            let totals = lines[lines.len() - 2];
            assert!(totals.contains(" traces: ") && totals.contains(" passed, 0 failed, "), "{totals}");
            assert_eq!(lines.last(), Some(&"conformant"), "{t}");
            let skips: std::collections::BTreeSet<String> =
                t.lines().filter(|l| l.starts_with("skip  ")).map(str::to_string).collect();
            skipped.push(skips);
        }
        assert_eq!(skipped[0], skipped[1]);
        assert!(!skipped[0].is_empty() && skipped[0].iter().all(|l| l.ends_with(" profile")), "{:?}", skipped[0]);
        let wire = text(&wire);
        for restart in ["seed/3.3-durable-queue-survives-restart.trace", "spec/restart-closes-connections-320.trace"] {
            assert!(wire.contains(&format!("pass  fixtures/{restart}")), "{restart}: {wire}");
        }
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
    assert!(t.contains("FAIL") && t.contains("wrong.trace:4: expected `c1.1 queue.declare-ok q 5 0`"), "{t}");
    assert!(t.ends_with("\nNOT conformant\n"), "{t}");
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
    assert!(t.contains("2 traces: 1 passed, 0 failed, 1 skipped"), "{t}");
}

#[test]
fn a_glob_selects_traces_and_one_matching_nothing_exits_2() {
    let out = run(&["run", "fixtures/seed/4.*.trace"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let ran: Vec<&str> = t.lines().filter(|l| l.starts_with("pass")).collect();
    assert!(!ran.is_empty() && ran.iter().all(|l| l.contains("fixtures/seed/4.")), "{t}");
    let out = run(&["run", "fixtures/seed/nothing-*.trace"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no trace matches"), "{}", text(&out));
}

/// The statuses of a JSON report, in order.
fn statuses(json: &Path) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    v["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["file"].as_str().unwrap().to_string(), t["status"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn jobs_change_neither_the_results_nor_their_order() {
    let one = scratch("jobs1.json", "");
    let four = scratch("jobs4.json", "");
    for (jobs, json) in [("1", &one), ("4", &four)] {
        let out = run(&["run", "fixtures/seed", "--jobs", jobs, "--json", json.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let (a, b) = (statuses(&one), statuses(&four));
    assert!(a.len() >= 18, "{a:?}");
    assert_eq!(a, b);
}

#[test]
fn json_and_junit_reports_count_every_trace() {
    let json = scratch("report.json", "");
    let junit = scratch("report.xml", "");
    let wrong = scratch(
        "wrong2.trace",
        "c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare q\nexpect c1.1 queue.declare-ok q 5 0\n",
    );
    let out = run(&[
        "run",
        "fixtures/seed/4.3-topic-routing.trace",
        wrong.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["counts"]["pass"], 1);
    assert_eq!(v["counts"]["fail"], 1);
    assert_eq!(v["conformant"], false);
    assert_eq!(v["traces"][1]["line"], 4);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
}

#[test]
fn a_listed_deviation_is_known_and_one_that_passes_is_stale() {
    let out = run(&[
        "run",
        "conformance/tests/data/known-failure.trace",
        "conformance/tests/data/passing.trace",
        "--deviations",
        "conformance/tests/data/deviations.toml",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "known and stale do not fail the run: {t}");
    assert!(t.contains("known conformance/tests/data/known-failure.trace"), "{t}");
    assert!(t.contains("stale conformance/tests/data/passing.trace"), "{t}");
    // The same failure without the deviations file fails the run.
    let out = run(&["run", "conformance/tests/data/known-failure.trace"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn a_broken_deviations_file_exits_2_naming_it() {
    let bad = scratch(
        "bad.toml",
        "[[deviation]]\nfixture = \"fixtures/nowhere.trace\"\nprofile = \"spec\"\nrule = \"r\"\nreason = \"x\"\n",
    );
    let out = run(&["run", "fixtures/seed", "--deviations", bad.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("nowhere.trace"), "{t}");
    let bad = scratch("typo.toml", "[[deviation]]\nfixtur = \"x\"\n");
    let out = run(&["run", "fixtures/seed", "--deviations", bad.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("typo.toml:2"), "{t}");
}

#[test]
fn generate_is_reproducible_from_its_seed() {
    let (a, b) = (scratch("gen-a.json", ""), scratch("gen-b.json", ""));
    for json in [&a, &b] {
        let out = run(&["generate", "--seed", "7", "--count", "25", "--jobs", "2", "--json", json.to_str().unwrap()]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        assert!(t.starts_with("seed 7: 25 generated traces"), "{t}");
    }
    let v = |p: &Path| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    assert_eq!(v(&a)["counts"]["pass"], 25);
    assert_eq!(statuses(&a), statuses(&b));
}

#[test]
fn restart_needs_a_broker() {
    let out = run(&["run", "fixtures/seed", "--restart-cmd", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--restart-cmd needs --broker"), "{}", text(&out));
}

/// `serve` in a process of its own is restarted by SIGHUP, so a runner restarts it with
/// `--restart-cmd 'kill -HUP PID'`: the restart traces pass against it (and without a restart
/// command they are skipped, so the restart is what makes them pass).
#[test]
fn serve_restarts_on_sighup_for_the_restart_fixtures() {
    use std::io::BufRead;
    let mut serve = Command::new(env!("CARGO_BIN_EXE_amqp-conformance"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut first = String::new();
    std::io::BufReader::new(serve.stdout.take().expect("its stdout")).read_line(&mut first).expect("its first line");
    let addr = first.split(" on ").nth(1).and_then(|r| r.split(',').next()).expect("the address it listens on");
    assert!(first.contains(&format!("SIGHUP restarts it (pid {})", serve.id())), "{first}");
    let uri = format!("amqp://guest:guest@{addr}/%2f");
    let restart = format!("kill -HUP {}", serve.id());
    let traces =
        ["fixtures/seed/3.3-durable-queue-survives-restart.trace", "fixtures/spec/restart-durable-survives.trace"];
    let mut args = vec!["run", "--broker", &uri, "--restart-cmd", &restart];
    args.extend(traces);
    let with = run(&args);
    let mut args = vec!["run", "--broker", &uri];
    args.extend(traces);
    let without = run(&args);
    let _ = serve.kill();
    let _ = serve.wait();
    let (with, without) = (text(&with), text(&without));
    for t in traces {
        assert!(with.contains(&format!("pass  {t}")), "{with}");
        assert!(without.contains(&format!("skip  {t}: restart needs --restart-cmd")), "{without}");
    }
    assert!(with.ends_with("\nconformant\n"), "{with}");
}
