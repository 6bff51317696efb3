//! Every seed fixture against a live RabbitMQ (`AMQP_URI`, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`): each must pass validation under the `rabbitmq`
//! profile, and leave nothing behind, also when a trace fails. Traces that need a broker restart
//! are skipped here: restarting would disturb the other live tests running beside them (`just
//! conform-rabbitmq` runs them, with a restart command). No broker at the URI is a failure: CI
//! starts RabbitMQ (`.ci/run`), and so must a developer (`rabbitmq-server -detached`).

use amqp_conformance::run::{replay, Verdict};
use amqp_conformance::target::live::LiveTarget;
use amqp_conformance::target::probe::reachable;
use amqp_conformance::target::uri::BrokerUri;
use amqp_conformance::target::Timing;
use amqp_conformance::target::{Problem, Target};
use amqp_conformance::trace::parse;
use amqp_model::{Command, Profile};
use std::path::PathBuf;
use std::time::Duration;

const DEFAULT_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[test]
fn seed_fixtures_pass_against_rabbitmq() {
    let uri = std::env::var("AMQP_URI").unwrap_or_else(|_| DEFAULT_URI.to_string());
    let uri = BrokerUri::parse(&uri).unwrap_or_else(|e| panic!("AMQP_URI: {e}"));
    if let Err(e) = reachable(&uri) {
        panic!("{e}: start RabbitMQ (`rabbitmq-server -detached`) or set AMQP_URI");
    }
    // LIVE_FIXTURES names another directory under fixtures/ to run (default: seed).
    let which = std::env::var("LIVE_FIXTURES").unwrap_or_else(|_| "seed".into());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(which);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/seed")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "trace"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no traces under {}", dir.display());

    let (mut passed, mut skipped, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).expect("a readable trace");
        let trace = parse(&text, &file.display().to_string()).expect("a valid trace");
        if trace.profile.is_some_and(|p| p != Profile::rabbitmq().name) {
            eprintln!("skip {name}: written for the {} profile", trace.profile.unwrap());
            skipped.push(name);
            continue;
        }
        if trace.commands().any(|c| matches!(c, Command::Restart)) {
            eprintln!("skip {name}: needs a broker restart");
            skipped.push(name);
            continue;
        }
        let mut target = LiveTarget::new(&uri, Timing::default());
        let verdict = replay(&trace, Profile::rabbitmq(), &mut target);
        let summary = target.finish();
        if let Some(why) = &summary.incomplete {
            eprintln!("skip {name}: {why}");
            skipped.push(name);
            continue;
        }
        if let Some(e) = summary.problems.iter().find(|p| matches!(p, Problem::Cleanup(_))) {
            eprintln!("FAIL {name}: {e}");
            failed.push(name);
            continue;
        }
        match verdict {
            Verdict::Pass => {
                eprintln!("pass {name}");
                passed.push(name);
            }
            other => {
                eprintln!("FAIL {name}: {other}");
                failed.push(name);
            }
        }
    }
    eprintln!("{} passed, {} failed, {} skipped", passed.len(), failed.len(), skipped.len());
    assert!(failed.is_empty(), "failed against the broker: {failed:?}");
    assert_nothing_left(&format!("amqpc-{}-", std::process::id()));
}

/// A trace that fails half-way (a wrong expectation after declaring a durable queue, an exchange
/// and a server-named queue, with a consumer holding a delivery) still leaves nothing behind.
#[test]
fn a_failed_trace_leaves_nothing_on_the_broker() {
    let uri = std::env::var("AMQP_URI").unwrap_or_else(|_| DEFAULT_URI.to_string());
    let uri = BrokerUri::parse(&uri).unwrap_or_else(|e| panic!("AMQP_URI: {e}"));
    let text = r#"
c1 connection.open
c1.1 channel.open
c1.1 exchange.declare x topic durable
c1.1 queue.declare q durable
c1.1 queue.declare "" -> $tmp
c1.1 queue.bind q x a.*
c1.1 basic.consume q w
c1.1 basic.publish x a.b m1
expect c1.1 basic.deliver w 1 x a.b m1
c1.1 basic.publish x a.c m2
expect c1.1 basic.deliver w 2 x a.c m1
c1.1 queue.declare q durable
"#;
    let trace = parse(text, "failing.trace").expect("parses");
    let mut target = LiveTarget::new(&uri, Timing::default());
    let prefix = target.prefix().to_string();
    match replay(&trace, Profile::rabbitmq(), &mut target) {
        Verdict::Unmet { line, .. } => assert_eq!(line, 12),
        other => panic!("the trace should fail on its wrong expectation: {other}"),
    }
    assert_eq!(target.finish().problems, Vec::new(), "cleanup");
    assert_nothing_left(&prefix);
}

/// No queue or exchange of this process's runs is left on the broker (checked with rabbitmqctl
/// when the broker is the local RabbitMQ, as in CI).
fn assert_nothing_left(prefix: &str) {
    for what in ["list_queues", "list_exchanges"] {
        let Ok(out) = std::process::Command::new("rabbitmqctl").args(["-q", what, "name"]).output() else {
            eprintln!("rabbitmqctl not found: leftovers not checked");
            return;
        };
        let listing = String::from_utf8_lossy(&out.stdout);
        let left: Vec<&str> = listing.lines().filter(|l| l.starts_with(prefix)).collect();
        assert!(left.is_empty(), "left on the broker after the runs: {left:?}");
    }
}

/// A proxy to the broker that, on each connection, stops passing the broker's frames to the
/// client once the client has sent `marker`: a broker that never answers.
fn stalling_proxy(broker: &str, marker: &'static [u8]) -> BrokerUri {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let port = listener.local_addr().unwrap().port();
    let broker = broker.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(&broker) else { continue };
            let stalled = Arc::new(AtomicBool::new(false));
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let flag = stalled.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n @ 1..) = c_in.read(&mut buf) {
                    if buf[..n].windows(marker.len()).any(|w| w == marker) {
                        flag.store(true, Ordering::SeqCst);
                    }
                    if s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n @ 1..) = s_in.read(&mut buf) {
                    if !stalled.load(Ordering::SeqCst) && c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    BrokerUri::parse(&format!("amqp://guest:guest@127.0.0.1:{port}/%2f")).expect("a broker URI")
}

/// A broker that stops answering (here: after a binding key the cleanup never sends) fails the
/// trace at that step, within the timeout, says why, and
/// the next trace runs on fresh connections; cleanup still removes everything.
#[test]
fn a_broker_that_stops_answering_fails_the_step_and_the_run_goes_on() {
    let uri = stalling_proxy("127.0.0.1:5672", b"stall-here");
    let timing = Timing { timeout: Duration::from_millis(500), ..Timing::default() };
    let stalls = parse(
        "c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare q\nc1.1 queue.bind q amq.direct stall-here\nc1.1 queue.declare q\n",
        "stall.trace",
    )
    .unwrap();
    let mut target = LiveTarget::new(&uri, timing);
    let prefix = target.prefix().to_string();
    let started = std::time::Instant::now();
    match replay(&stalls, Profile::rabbitmq(), &mut target) {
        Verdict::Diverged { line: 4, .. } => {}
        other => panic!("the unanswered step should fail: {other}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let problems = target.finish().problems;
    let timed_out = |p: &Problem| matches!(p, Problem::Timeout(t) if t.contains("no answer to queue.bind"));
    assert!(problems.iter().any(timed_out), "{problems:?}");
    assert!(
        !problems.iter().any(|p| matches!(p, Problem::Cleanup(_))),
        "cleanup through a fresh connection: {problems:?}"
    );
    assert_nothing_left(&prefix);

    let fine = parse("c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare q\n", "fine.trace").unwrap();
    let mut target = LiveTarget::new(&uri, timing);
    assert_eq!(replay(&fine, Profile::rabbitmq(), &mut target), Verdict::Pass);
    assert_eq!(target.finish().problems, Vec::new(), "cleanup");
}

/// What lapin will not send (a second `channel.open`, a method on a channel that is not open) is
/// sent by the raw-frame target: the two fixtures that need it pass against RabbitMQ, and a wrong
/// expectation about the close they cause fails.
#[test]
fn raw_frames_perform_what_lapin_will_not_send() {
    use amqp_conformance::suite::{run_one, Status};
    use amqp_conformance::target::TargetSpec;
    let uri = std::env::var("AMQP_URI").unwrap_or_else(|_| DEFAULT_URI.to_string());
    let uri = BrokerUri::parse(&uri).unwrap_or_else(|e| panic!("AMQP_URI: {e}"));
    let target = TargetSpec::Broker { uri, timing: Timing::default(), restart: None };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/spec");
    for name in ["channel-open-twice-504.trace", "channel-method-before-open-504.trace"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("the fixture");
        let trace = parse(&text, name).expect("parses");
        let result = run_one(name, &trace, &target, amqp_model::ProfileName::Rabbitmq);
        assert_eq!(result.status, Status::Pass, "{name}");
        let wrong = parse(&text.replace("closed 504", "closed 503"), name).expect("parses");
        let result = run_one(name, &wrong, &target, amqp_model::ProfileName::Rabbitmq);
        assert!(matches!(result.status, Status::Fail(_)), "{name}: {:?}", result.status);
    }
}

/// A slow network changes no verdict: through a proxy that holds everything RabbitMQ sends for
/// 150 ms, the traces that once failed that way (an event on one connection arriving after the
/// reply on another, a count asked for while messages were still on their way, a close read
/// late) pass under their profiles, and a wrong expectation still fails at its line.
#[test]
fn a_slow_network_changes_no_verdict() {
    use amqp_conformance::proxy::delay::{DelayProxy, Delays};
    use amqp_conformance::suite::{run_one, Status};
    use amqp_conformance::target::TargetSpec;
    use amqp_model::ProfileName;
    let delays = Delays { from_broker: Duration::from_millis(150), from_client: Duration::ZERO };
    let proxy = DelayProxy::start("127.0.0.1:5672", delays).expect("a proxy");
    let uri = BrokerUri::parse(&format!("amqp://guest:guest@{}/%2f", proxy.addr())).expect("a broker URI");
    let target = TargetSpec::Broker { uri, timing: Timing::default(), restart: None };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/spec");
    let cases = [
        ("basic-recover-requeue-round-robin.trace", ProfileName::Rabbitmq),
        ("queue-delete-cancels-consumers-rabbitmq.trace", ProfileName::Rabbitmq),
        ("queue-exclusive-other-connection-405.trace", ProfileName::Rabbitmq),
        ("routing-topic-empty-key.trace", ProfileName::Rabbitmq),
        ("routing-default-exchange.trace", ProfileName::Spec),
        ("exchange-declare-reserved-amq-403.trace", ProfileName::Spec),
        ("queue-declare-reserved-amq-403.trace", ProfileName::Spec),
    ];
    for (name, profile) in cases {
        let text = std::fs::read_to_string(dir.join(name)).expect("the fixture");
        let trace = parse(&text, name).expect("parses");
        let result = run_one(name, &trace, &target, profile);
        assert_eq!(result.status, Status::Pass, "{name} through a 150 ms proxy");
    }
    // The proxy hides nothing: an expectation the broker does not meet still fails at its line.
    let name = "routing-topic-empty-key.trace";
    let text = std::fs::read_to_string(dir.join(name)).expect("the fixture");
    let wrong = parse(
        &text.replace("expect c1.1 queue.declare-ok q-tek-hash 1 0", "expect c1.1 queue.declare-ok q-tek-hash 2 0"),
        name,
    );
    let result = run_one(name, &wrong.expect("parses"), &target, ProfileName::Rabbitmq);
    assert!(result.status.line() == Some(22) && matches!(result.status, Status::Fail(_)), "{:?}", result.status);
}
