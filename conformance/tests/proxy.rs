//! The traffic proxy (`amqp-conformance proxy`, src/proxy/) between real applications and a
//! broker: everything passes unchanged (the tutorial's pika programs and a Node application
//! behave as without it), what it read is counted, and the recorded run replays with the runner
//! on the reference broker, on the model and on RabbitMQ 3.10.8 (at 127.0.0.1:5672, `AMQP_PORT`
//! for another port).

use amqp_broker::{ServeConfig, ServerHandle};
use amqp_conformance::proxy::judge::Finding;
use amqp_conformance::proxy::{ProxyConfig, ProxyHandle, Traffic};
use amqp_conformance::run::{replay, Verdict};
use amqp_conformance::target::live::LiveTarget;
use amqp_conformance::target::model::ModelTarget;
use amqp_conformance::target::uri::BrokerUri;
use amqp_conformance::target::{Target, Timing};
use amqp_model::Profile;
use std::process::Command;

/// Run the tutorial's pika programs through a proxy to `upstream` (host:port), recording into a
/// fresh directory: the programs must pass, and the recording is returned with what was read.
fn tutorial_through_proxy(upstream: &str) -> (Traffic, String) {
    let dir = tempdir();
    let config = ProxyConfig {
        upstream: upstream.into(),
        record: Some(dir.clone()),
        backlog: 65_536,
        log: false,
        profile: Profile::rabbitmq(),
    };
    let proxy = ProxyHandle::start(config).expect("a proxy");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pika/tutorial.py");
    let out = Command::new("python3").arg(script).arg(proxy.addr().port().to_string()).output().expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let traffic = proxy.stop();
    assert!(out.status.success() && text.contains("6 scenarios, 0 failed"), "through the proxy: {text}");
    let path = traffic.recording.clone().expect("a recording");
    let trace = std::fs::read_to_string(&path).expect("the recording is there");
    (traffic, trace)
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "amqpc-proxy-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Replay `trace` on the broker at `uri` under `rabbitmq`; the target must finish clean.
fn replay_on(uri: &str, trace: &amqp_conformance::trace::Trace) -> Verdict {
    let mut target = LiveTarget::new(&BrokerUri::parse(uri).unwrap(), Timing::default());
    let verdict = replay(trace, Profile::rabbitmq(), &mut target);
    let summary = target.finish();
    assert!(summary.incomplete.is_none() && summary.problems.is_empty(), "{uri}: {summary:?}");
    verdict
}

fn parse(trace: &str) -> amqp_conformance::trace::Trace {
    amqp_conformance::trace::parse(trace, "the recording").unwrap_or_else(|e| panic!("{e}\n{trace}"))
}

#[test]
fn the_tutorial_through_the_proxy_to_the_reference_broker_is_recorded_and_replays() {
    let server = ServerHandle::start(ServeConfig::with_profile(Profile::rabbitmq())).expect("the reference broker");
    let (traffic, text) = tutorial_through_proxy(&server.addr().to_string());
    assert_eq!(traffic.connections, 14, "{traffic:?}");
    assert!(traffic.commands > 100 && traffic.events > 100, "{traffic:?}");
    assert!(traffic.behind.is_empty() && traffic.notes.is_empty(), "{traffic:?}");
    // Judged online, all connections sharing one model: nothing to report.
    assert!(traffic.findings.is_empty(), "{:#?}", traffic.findings);
    // Server-named queues became variables, bound where they were declared.
    assert!(text.contains("queue.declare \"\" exclusive -> $q1"), "{text}");
    assert!(text.lines().filter(|l| !l.starts_with('#')).all(|l| !l.contains("amq.gen-")), "{text}");
    let trace = parse(&text);
    let model = replay(&trace, Profile::rabbitmq(), &mut ModelTarget::new(Profile::rabbitmq(), Default::default()));
    assert_eq!(model, Verdict::Pass, "on the model");
    assert_eq!(replay_on(&server.uri(), &trace), Verdict::Pass, "on the reference broker");
    server.stop();
}

/// A planted broker fault under a real client's traffic: a reference broker whose topic `*`
/// matches several words (`Fault::TopicStarIsMany`) runs the tutorial's topic scenario through
/// the proxy; the judge reports the divergence on the step where the broker said a queue bound
/// with `europe.*` holds two messages, naming the channel and the method.
#[test]
fn a_planted_fault_under_pika_traffic_is_reported_on_its_step() {
    let config = ServeConfig {
        faults: amqp_model::Faults::only(amqp_model::Fault::TopicStarIsMany),
        ..ServeConfig::with_profile(Profile::rabbitmq())
    };
    let server = ServerHandle::start(config).expect("a faulty reference broker");
    let proxy_config = ProxyConfig {
        upstream: server.addr().to_string(),
        record: None,
        backlog: 65_536,
        log: false,
        profile: Profile::rabbitmq(),
    };
    let proxy = ProxyHandle::start(proxy_config).expect("a proxy");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pika/tutorial.py");
    let out = Command::new("python3").arg(script).arg(proxy.addr().port().to_string()).output().expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let traffic = proxy.stop();
    server.stop();
    assert!(text.contains("FAIL  direct_and_topic_routing"), "the fault shows to the client too: {text}");
    let divergences: Vec<&Finding> =
        traffic.findings.iter().filter(|f| matches!(f, Finding::Divergence { .. })).collect();
    assert_eq!(divergences.len(), 1, "{:#?}", traffic.findings);
    let Finding::Divergence { method, observed, allowed, .. } = divergences[0] else { unreachable!() };
    assert_eq!(*method, Some(amqp_model::Method::QueueDeclare), "{}", divergences[0]);
    let said = amqp_conformance::trace::write_event(observed);
    assert!(said.contains("queue.declare-ok q-europe.star 2 0"), "{said}");
    assert!(
        allowed.iter().any(|e| amqp_conformance::trace::write_event(e).contains("q-europe.star 1 0")),
        "{allowed:?}"
    );
}

/// A Node application (clients/node/scenario.js, amqplib: confirms, a prefetch window, get until
/// empty, a returned mandatory publish, a channel error, a cancelled consumer) through the proxy
/// to RabbitMQ: it behaves as without the proxy, and the recording replays and passes on RabbitMQ,
/// the reference broker and the model. (The pika tutorial checks a `queue.declare-ok` count right
/// after a publish, which RabbitMQ may not have counted yet: it is for the reference broker.)
#[test]
fn an_amqplib_application_through_the_proxy_to_rabbitmq_replays_everywhere() {
    let port: u16 = std::env::var("AMQP_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(5672);
    let amqplib = concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/node/node_modules/amqplib/package.json");
    assert!(std::path::Path::new(amqplib).exists(), "amqplib is needed: npm ci --prefix clients/node");
    let dir = tempdir();
    let config = ProxyConfig {
        upstream: format!("127.0.0.1:{port}"),
        record: Some(dir),
        backlog: 65_536,
        log: false,
        profile: Profile::rabbitmq(),
    };
    let proxy = ProxyHandle::start(config).expect("a proxy");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/node/scenario.js");
    let url = format!("amqp://guest:guest@{}", proxy.addr());
    let tag = format!("px{}", std::process::id());
    let out = Command::new("node").args([script, &url, &tag]).output().expect("node runs (Node.js is needed)");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let traffic = proxy.stop();
    assert!(out.status.success() && text.contains("amqplib as the model says"), "through the proxy: {text}");
    assert_eq!(traffic.connections, 2, "{traffic:?}");
    assert!(traffic.behind.is_empty() && traffic.recording_failed.is_none(), "{traffic:?}");
    // Judged online: no divergence, and no client error (the scenario's missing exchange is a
    // 404, not a protocol error).
    assert!(traffic.findings.is_empty(), "{:#?}", traffic.findings);
    let recorded = std::fs::read_to_string(traffic.recording.as_ref().expect("a recording")).unwrap();
    let trace = parse(&recorded);
    assert_eq!(replay_on(&format!("amqp://guest:guest@127.0.0.1:{port}/%2f"), &trace), Verdict::Pass, "on RabbitMQ");
    let server = ServerHandle::start(ServeConfig::with_profile(Profile::rabbitmq())).expect("the reference broker");
    assert_eq!(replay_on(&server.uri(), &trace), Verdict::Pass, "on the reference broker");
    server.stop();
    let model = replay(&trace, Profile::rabbitmq(), &mut ModelTarget::new(Profile::rabbitmq(), Default::default()));
    assert_eq!(model, Verdict::Pass, "on the model");
}
