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

/// How `URI` is shown: without its password.
const SHOWN: &str = "amqp://guest:***@127.0.0.1:5672/%2f";

/// What `--jobs` defaults to on this machine: twice its cores, at most 8.
fn default_jobs() -> usize {
    (2 * std::thread::available_parallelism().map_or(1, |n| n.get())).min(8)
}

/// Without --broker the suite runs over the wire against the in-process reference broker (what
/// a fresh machine with no broker gets); with --model, on the model itself. Every fixture
/// passes both ways, under both profiles, the restart fixtures too (the in-process broker is
/// restarted in place): the same traces are skipped both ways, those written for the other
/// profile. So every fixture also passes the check on the model that comes before a run (a
/// trace the model cannot follow would stop the run with exit 2). The first line and the totals
/// name what was judged and the profile.
#[test]
fn every_fixture_passes_on_the_reference_broker_and_the_model() {
    for profile in ["rabbitmq", "spec"] {
        let wire = run(&["run", "fixtures", "--profile", profile, "--jobs", "4"]);
        let model = run(&["run", "fixtures", "--profile", profile, "--model", "--jobs", "2"]);
        let mut skipped = Vec::new();
        for (out, target, jobs) in [(&wire, "the reference broker, in-process", 4), (&model, "the model", 2)] {
            let t = text(out);
            assert_eq!(out.status.code(), Some(0), "{t}");
            let lines: Vec<&str> = t.lines().collect();
            // Each trace passed or was skipped; a skip is listed again in the closing list.
            let skips: std::collections::BTreeSet<&str> =
                lines.iter().copied().filter(|l| l.starts_with("skip  ")).collect();
            let runs = lines.iter().filter(|l| l.starts_with("pass  ")).count() + skips.len();
            assert!(runs >= 225, "{t}");
            assert_eq!(lines[0], format!("run: {runs} traces against {target}, profile {profile}, {jobs} jobs"));
            let totals = lines[lines.len() - 2];
            let head = format!("{runs} traces against {target}, profile {profile}: ");
            assert!(totals.starts_with(&head) && totals.contains(" passed, 0 failed, "), "{totals}");
            assert_eq!(lines.last(), Some(&"conformant"), "{t}");
            let skips: std::collections::BTreeSet<String> =
                t.lines().filter(|l| l.starts_with("skip  ")).map(str::to_string).collect();
            skipped.push(skips);
        }
        assert_eq!(skipped[0], skipped[1]);
        assert!(!skipped[0].is_empty() && skipped[0].iter().all(|l| l.ends_with(" profile")), "{:?}", skipped[0]);
        let wire = text(&wire);
        for restart in ["spec/restart-durable-survives.trace", "spec/restart-closes-connections-320.trace"] {
            assert!(wire.contains(&format!("pass  fixtures/{restart}")), "{restart}: {wire}");
        }
    }
}

/// An `expect` the model does not meet, or one naming a variable nothing captured, is an error
/// in the trace: reported as `file:line: ...` on stderr with exit 2 before any broker is
/// contacted (here one that does not listen: its address never shows), never as a FAIL of the
/// broker. A trace written for the other profile is not checked, as a run skips it.
#[test]
fn a_trace_the_model_cannot_follow_is_an_error_before_any_broker() {
    let wrong = "conformance/tests/data/expect-not-met.trace";
    let nowhere = "amqp://guest:guest@127.0.0.1:5999/%2f";
    for args in [vec!["run", wrong, "--broker", nowhere], vec!["run", wrong], vec!["run", wrong, "--model"]] {
        let out = run(&args);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "nothing was run: {stdout}");
        let first = stderr.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!(
                "{wrong}:7: this `expect` does not hold on the model under the rabbitmq profile: expected \
                 `c1.1 queue.declare-ok q 5 0`, but the step observed `c1.1 queue.declare-ok q 0 0` instead"
            )
        );
        assert!(stderr.contains("nothing was run") && !stderr.contains("5999") && !stderr.contains("FAIL"), "{stderr}");
    }

    let unbound = scratch(
        "unbound.trace",
        "c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare \"\" -> $q\nexpect c1.1 queue.declare-ok $r 0 0\n",
    );
    let out = run(&["run", unbound.to_str().unwrap(), "--broker", nowhere]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("unbound.trace:4: variable $r is used before a capture (`-> $r`) binds it"), "{t}");
    assert!(!t.contains("5999"), "{t}");

    // Written for the spec profile: skipped under rabbitmq, checked (and in error) under spec.
    let spec_only = scratch(
        "spec-only.trace",
        "profile: spec\nc1 connection.open\nc1.1 channel.open\nc1.1 queue.declare q\nexpect c1.1 queue.declare-ok q 5 0\n",
    );
    let out = run(&["run", spec_only.to_str().unwrap(), "--model"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("skip  "), "{}", text(&out));
    let out = run(&["run", spec_only.to_str().unwrap(), "--model", "--profile", "spec"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("spec-only.trace:5: this `expect` does not hold on the model under the spec profile"));
}

/// `--broker` wants an AMQP URI naming a virtual host: a bare address, or a URI whose path is a
/// lone `/` (the empty virtual host), gets a one-line hint and exit 2 before anything else is
/// looked at (the traces named here do not exist). A URI without a path means the vhost `/`.
#[test]
fn a_broker_that_is_not_an_amqp_uri_gets_a_one_line_hint() {
    let hint = "--broker takes an AMQP URI, e.g. amqp://user:pass@host:port/%2f (the vhost \"/\" is written %2f)";
    for uri in ["127.0.0.1:5672", "localhost:5672", "amqp://guest:hunter2@127.0.0.1:5672/", "http://127.0.0.1:5672/%2f"]
    {
        let out = run(&["run", "no-such-traces", "--broker", uri]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{uri}: {t}");
        assert_eq!(t.lines().count(), 1, "one line: {t}");
        assert!(t.trim_end().ends_with(hint) && !t.contains("no-such-traces") && !t.contains("hunter2"), "{t}");
    }
    let out = run(&["generate", "--count", "1", "--broker", "127.0.0.1:5672"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(hint), "{}", text(&out));
    let out = run(&["run", "fixtures/seed/4.3-topic-routing.trace", "--broker", "amqp://guest:guest@127.0.0.1:5672"]);
    assert_eq!(out.status.code(), Some(0), "no path is the vhost /: {}", text(&out));
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
    assert!(t.contains(&format!("\n2 traces against {SHOWN}, profile rabbitmq: 1 passed, 0 failed, 1 skipped")), "{t}");
}

/// The first line names what is judged (the broker's URI without its password, the reference
/// broker or the model), the profile and how many traces run at once; `--jobs` defaults to twice
/// the machine's cores, at most 8, and `--help` says so.
#[test]
fn the_first_line_names_the_target_profile_and_jobs() {
    let jobs = default_jobs();
    let trace = "fixtures/seed/4.3-topic-routing.trace";
    for (args, target) in [
        (vec!["run", trace, "--broker", URI], SHOWN),
        (vec!["run", trace], "the reference broker, in-process"),
        (vec!["run", trace, "--model", "--profile", "spec"], "the model"),
    ] {
        let out = run(&args);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        let profile = if args.contains(&"spec") { "spec" } else { "rabbitmq" };
        let first = format!("run: 1 trace against {target}, profile {profile}, {jobs} jobs");
        assert_eq!(t.lines().next(), Some(first.as_str()), "{t}");
        assert!(t.contains(&format!("\n1 trace against {target}, profile {profile}: 1 passed")), "{t}");
    }
    let help = text(&run(&["run", "--help"]));
    assert!(help.contains("twice the cores this machine offers, at most 8"), "{help}");
    assert!(help.contains(&format!("[default: {jobs}]")), "{help}");

    // The matrix names each target the same way, and checks its URIs first.
    let config = scratch(
        "matrix.toml",
        "paths = [\"fixtures/seed/4.3-topic-routing.trace\"]\n\n[[target]]\nname = \"m\"\nprofile = \"spec\"\n",
    );
    let page = config.with_file_name("matrix-page.md");
    let out = run(&["matrix", "--config", config.to_str().unwrap(), "--out", page.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).starts_with("m: 1 trace against the model, profile spec, 1 job\n"), "{}", text(&out));
    std::fs::write(&config, "[[target]]\nname = \"b\"\nbroker = \"127.0.0.1:5672\"\nprofile = \"spec\"\n").unwrap();
    let out = run(&["matrix", "--config", config.to_str().unwrap(), "--out", page.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("target `b`: `127.0.0.1:5672` is not an AMQP URI"), "{}", text(&out));
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

/// RabbitMQ under the spec profile: a fixture it fails (it answers delete-ok for a queue that
/// does not exist), one it passes, and one written for the rabbitmq profile (skipped).
const MIXED: [&str; 3] = [
    "fixtures/spec/queue-delete-missing-spec.trace",
    "fixtures/seed/4.3-topic-routing.trace",
    "fixtures/spec/queue-delete-missing-rabbitmq.trace",
];

/// The JSON report's statuses are lower case, as its counts' keys; the JUnit report marks a
/// skipped trace with a `skipped` element and counts it in the testsuite's `skipped` attribute.
#[test]
fn json_and_junit_reports_count_every_trace() {
    let json = scratch("report.json", "");
    let junit = scratch("report.xml", "");
    let mut args = vec!["run", "--profile", "spec", "--broker", URI];
    args.extend(MIXED);
    args.extend(["--json", json.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!((&v["counts"]["pass"], &v["counts"]["fail"], &v["counts"]["skip"]), (&1.into(), &1.into(), &1.into()));
    assert_eq!(v["conformant"], false);
    assert_eq!(v["target"], SHOWN);
    assert_eq!(v["traces"][0]["line"], 10);
    let got: Vec<String> = statuses(&json).into_iter().map(|(_, s)| s).collect();
    assert_eq!(got, ["fail", "pass", "skip"]);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    let suite = xml.lines().find(|l| l.trim_start().starts_with("<testsuite ")).expect("a testsuite");
    assert!(suite.contains(" skipped=\"1\""), "{suite}");
    assert_eq!(xml.matches("<skipped message=\"written for the rabbitmq profile\"").count(), 1, "{xml}");
}

/// The closing list gives a failure as one whole line with its first mismatch, not the first
/// line of its report cut off at `the broker did:`.
#[test]
fn the_closing_list_gives_a_failure_as_one_whole_line() {
    let mut args = vec!["run", "--profile", "spec", "--broker", URI];
    args.extend(MIXED);
    let out = run(&args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    // The trace lines as they come (the failure's whole report), then the closing list: its last
    // two lines before the totals.
    let lines: Vec<&str> = t.split("\n\n").next().expect("the lines before the totals").lines().collect();
    let list = &lines[lines.len() - 2..];
    let fail = "FAIL  fixtures/spec/queue-delete-missing-spec.trace:10: after `c1.1 queue.delete q-never-declared` \
                the broker did `c1.1 queue.delete-ok 0` where the model allows `c1.1 closed 404 queue.delete`";
    assert_eq!(
        list,
        [fail, "skip  fixtures/spec/queue-delete-missing-rabbitmq.trace: written for the rabbitmq profile"]
    );
}

#[test]
fn a_listed_deviation_is_known_and_one_that_passes_is_stale() {
    let json = scratch("deviations.json", "");
    let traces = ["fixtures/spec/queue-delete-missing-spec.trace", "conformance/tests/data/passing.trace"];
    let mut args = vec!["run", "--profile", "spec", "--broker", URI, "--json", json.to_str().unwrap()];
    args.extend(traces);
    args.extend(["--deviations", "conformance/tests/data/deviations.toml"]);
    let out = run(&args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "known and stale do not fail the run: {t}");
    assert!(t.contains("known fixtures/spec/queue-delete-missing-spec.trace"), "{t}");
    assert!(t.contains("stale conformance/tests/data/passing.trace"), "{t}");
    let got: Vec<String> = statuses(&json).into_iter().map(|(_, s)| s).collect();
    assert_eq!(got, ["known", "stale"]);
    // The same failure without the deviations file fails the run.
    let out = run(&["run", "--profile", "spec", "--broker", URI, traces[0]]);
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
        let first = "generate: 25 traces of seed 7 (about 20 actions each) against the reference broker, in-process, \
                     profile rabbitmq, 2 jobs\n";
        assert!(t.starts_with(first), "{t}");
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

/// `stress` runs the traces again and again on busy CPUs and says whether any verdict changed:
/// against the reference broker the seed fixtures keep theirs, and the first line names the
/// target, the runs and the load.
#[test]
fn stress_reports_that_no_verdict_changed() {
    let out = run(&["stress", "fixtures/seed", "--runs", "2", "--load", "1", "--jobs", "2"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let first = t.lines().next().unwrap_or_default();
    assert!(first.starts_with("stress: "), "{first}");
    assert!(first.contains("x 2 runs, 1 load threads against the reference broker, in-process"), "{first}");
    assert_eq!(t.lines().filter(|l| l.starts_with("run ")).count(), 2, "{t}");
    assert!(t.contains("stress: every trace had the same verdict in all 2 runs"), "{t}");
}

/// Wait (up to 10 s) until a proxy started as a process accepts connections on `listen` (the
/// connection that finds it is the proxy's first).
fn listening(listen: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(listen).is_err() {
        assert!(std::time::Instant::now() < deadline, "the proxy does not listen on {listen}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// `delay-proxy` passes a broker's bytes on, late: the suite's seed fixtures pass through it
/// against RabbitMQ.
#[test]
fn delay_proxy_passes_the_broker_on() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_amqp-conformance"))
        .args(["delay-proxy", "--listen", &listen, "--to", "127.0.0.1:5672", "--delay-ms", "20"])
        .spawn()
        .expect("the proxy starts");
    listening(&listen);
    let uri = format!("amqp://guest:guest@{listen}/%2f");
    let out = run(&["run", "fixtures/seed/3.1-hello-world-auto-ack.trace", "--broker", &uri]);
    let _ = proxy.kill();
    let _ = proxy.wait();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains(&format!("against amqp://guest:***@{listen}/%2f")), "{t}");
}

/// `proxy` judges what passes through it and, at Ctrl-C, prints its summary and writes the
/// reports: the tutorial's routing scenario (pika) through it to a reference broker with a planted
/// fault (`*` matches several words) gives a divergence line on stderr as it happens, exit status
/// 1, a recording, and a JSON and a JUnit report whose failure is at the recording's line of the
/// count the fault got wrong.
#[test]
fn proxy_reports_a_divergence_and_writes_its_reports_at_ctrl_c() {
    let config = amqp_broker::ServeConfig {
        faults: amqp_model::Faults::only(amqp_model::Fault::TopicStarIsMany),
        ..amqp_broker::ServeConfig::with_profile(amqp_model::Profile::rabbitmq())
    };
    let server = amqp_broker::ServerHandle::start(config).expect("a faulty reference broker");
    let dir = std::env::temp_dir().join(format!("amqpc-cli-proxy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (json, junit) = (dir.join("report.json"), dir.join("report.xml"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let proxy = Command::new(env!("CARGO_BIN_EXE_amqp-conformance"))
        .args(["proxy", "--listen", &listen, "--upstream", &server.addr().to_string()])
        .arg("--record")
        .arg(dir.join("rec"))
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the proxy starts");
    listening(&listen);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pika/tutorial.py");
    let app = Command::new("python3").args([script, &port.to_string(), "direct_and_topic_routing"]).output().unwrap();
    assert!(!app.status.success(), "the fault shows to the application: {}", String::from_utf8_lossy(&app.stdout));
    let interrupted = Command::new("kill").args(["-INT", &proxy.id().to_string()]).status().expect("kill runs");
    assert!(interrupted.success());
    let out = proxy.wait_with_output().expect("the proxy ends");
    server.stop();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    // c1 was the test's own connection that found the proxy listening.
    assert!(t.contains("proxy: divergence on c2.1 after `c2.1 queue.declare q-europe.star passive`"), "{t}");
    assert!(t.contains("judged under rabbitmq: 1 divergence(s), 0 client error(s)"), "{t}");
    let report: amqp_conformance::report::JsonReport =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report")).unwrap();
    assert!(!report.conformant && report.counts.fail == 1, "{report:?}");
    let trace = &report.traces[0];
    let recording = std::fs::read_to_string(&trace.file).expect("the report names the recording");
    let line = trace.line.expect("a line");
    assert_eq!(recording.lines().nth(line - 1), Some("# saw c2.1 queue.declare-ok q-europe.star 2 0"), "{recording}");
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report");
    assert!(xml.contains("failures=\"1\"") && xml.contains(&format!("line {line}: after")), "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `run --html` on a trace GarageMQ fails (at 127.0.0.1:5673, `GARAGEMQ_PORT` for another port):
/// one page a person reads without the terminal, the failing trace with its cite linked to the
/// book, the verdict, and its diagram with the step GarageMQ got wrong in red beside what the
/// model allowed.
#[test]
fn run_html_on_a_failing_garagemq_trace_is_a_page_with_its_diagram() {
    let port = std::env::var("GARAGEMQ_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(5673u16);
    let uri = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let page = scratch("garagemq.html", "");
    let trace = "fixtures/regressions/garagemq/direct-exchange-every-matching-queue.trace";
    let out = run(&[
        "run",
        "--profile",
        "spec",
        "--broker",
        &uri,
        trace,
        "--html",
        page.to_str().unwrap(),
        "--book",
        "https://example.org/book",
    ]);
    assert_eq!(out.status.code(), Some(1), "GarageMQ fails it: {}", text(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("does not conform"), "{html}");
    assert!(html.contains(&format!("<section id=\"t0\"><h3><span class=\"fail\">FAIL</span> {trace}:")), "{html}");
    let rule = "https://example.org/book/spec/queue.html#queue-bind-routing-key-direct-exchange-key-matching";
    assert!(
        html.contains(&format!("<a href=\"{rule}\">queue bind routing-key direct-exchange-key-matching</a>")),
        "{html}"
    );
    let svg = &html[html.find("<svg").expect("a diagram")..html.find("</svg>").expect("a whole diagram")];
    assert!(svg.contains("class='wrong'>✗ ") && svg.contains(">the model allows, for example:<"), "{svg}");
}
