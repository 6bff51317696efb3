//! The tutorial's scenarios as pika programs (`tests/pika/tutorial.py`) against the reference
//! broker served in-process: a real client other than lapin gets the outcomes the model states.
//! Needs Python 3 with pika (`.ci/run` installs it); without it the test fails and says so.

use amqp_broker::{ServeConfig, ServerHandle};
use amqp_model::Profile;
use std::process::Command;

#[test]
fn the_tutorials_pika_programs_behave_as_the_model_says() {
    let has_pika = Command::new("python3").args(["-c", "import pika"]).status().is_ok_and(|s| s.success());
    assert!(has_pika, "python3 with pika is needed: pip install pika");
    let server = ServerHandle::start(ServeConfig::with_profile(Profile::rabbitmq())).expect("the reference broker");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pika/tutorial.py");
    let out = Command::new("python3").arg(script).arg(server.addr().port().to_string()).output().expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("6 scenarios, 0 failed"), "{text}");
    server.stop();
}

/// A pika consumer with the `x-priority` argument (consumer priorities, RabbitMQ's extension)
/// against the reference broker: taken, and obeyed as the model says.
#[test]
fn a_pika_consumer_with_x_priority_is_served_first() {
    pika_script("consumers.py");
}

/// A pika RPC client over direct reply-to (`amq.rabbitmq.reply-to`, RabbitMQ's extension)
/// against the reference broker: its replies come back to its reply consumer, and a request
/// without one is refused.
#[test]
fn a_pika_rpc_client_gets_its_replies_by_direct_reply_to() {
    pika_script("direct_reply.py");
}

/// A pika program using a quorum queue (RabbitMQ's extension) against the reference broker: a
/// nacked message comes back counted in `x-delivery-count`, is dead-lettered past its
/// `x-delivery-limit` (reason `delivery_limit`), and a consumer under a global prefetch limit is
/// refused with 540.
#[test]
fn a_pika_program_using_a_quorum_queue_sees_counts_and_the_limit() {
    pika_script("quorum.py");
}

/// `channel.flow` from pika: `active=true` answered and the channel usable, `active=false` 540,
/// as on RabbitMQ 3.10.8.
#[test]
fn a_pika_client_asking_for_flow_is_answered_as_rabbitmq_answers() {
    pika_script("flow.py");
}

/// `connection.update-secret` from pika (refreshing its credentials): answered, the connection
/// usable, as on RabbitMQ 3.10.8.
#[test]
fn a_pika_client_refreshing_its_secret_is_answered() {
    pika_script("update_secret.py");
}

/// What a broker rarely does, on demand through the control port (broker/src/rare.rs), as a pika
/// application meets it: `block` (connection.blocked to the publisher only, its message held until
/// `unblock`), `cancel QUEUE` (basic.cancel, the queue gone), `delay 300` (a round trip at least
/// 300 ms) and `force ID` (320 with the reason, the unacknowledged message redelivered to the next
/// consumer, flagged): what the client sees, and the model's outcome after it.
#[test]
fn a_pika_application_meets_each_rare_behaviour_on_demand() {
    with_control(Profile::rabbitmq(), "rare.py");
}

/// `nack 1` through the control port under `spec`: a pika publisher with confirms gets a
/// `basic.nack` and the message is not in the queue (the model's branch for an unhandled
/// message); the next publish is acked.
#[test]
fn a_pika_publisher_meets_a_nack_on_demand() {
    with_control(Profile::spec(), "nack.py");
}

/// Run `tests/pika/<script> PORT CONTROL_PORT` against the reference broker under `profile`, with
/// a control port: it must exit 0 and say that what it saw is as the model says.
fn with_control(profile: Profile, script: &str) {
    let server = ServerHandle::start(ServeConfig::with_profile(profile)).expect("the reference broker");
    let control = server.control_port().expect("a control port");
    let path = format!("{}/tests/pika/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(path)
        .arg(server.addr().port().to_string())
        .arg(control.port().to_string())
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("as the model says"), "{script}: {text}");
    server.stop();
}

/// Run `tests/pika/<script>` against the reference broker under `rabbitmq`: it must exit 0 and
/// say that what it saw is as the model says.
fn pika_script(script: &str) {
    let server = ServerHandle::start(ServeConfig::with_profile(Profile::rabbitmq())).expect("the reference broker");
    let path = format!("{}/tests/pika/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3").arg(path).arg(server.addr().port().to_string()).output().expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("as the model says"), "{script}: {text}");
    server.stop();
}

/// The closes a client meets most (`tests/pika/reply_texts.py`: unknown delivery tags, missing
/// and inequivalent exchanges and queues, reserved names, locked and busy queues, mode switches)
/// provoked by pika on RabbitMQ 3.10.8 and on the reference broker: the same code at the same
/// level, and the reference broker's reply text RabbitMQ's, word for word, followed by the rule
/// that says so, in brackets: an id of spec/rules.toml or spec/extensions.toml, or a RabbitMQ
/// page. Needs RabbitMQ at 127.0.0.1:5672 (`AMQP_PORT` for another port).
#[test]
fn reply_texts_are_rabbitmqs_with_the_rule_added() {
    // The names carry a tag of fixed length, so that texts are as long on both brokers.
    let tag = format!("{:05}", std::process::id() % 100_000);
    let rabbit = json_lines("reply_texts.py", rabbit_port(), &[&tag]);
    let server = ServerHandle::start(ServeConfig::with_profile(Profile::rabbitmq())).expect("the reference broker");
    let reference = json_lines("reply_texts.py", server.addr().port(), &[&tag]);
    server.stop();
    // basic.recover requeue=false: no rule speaks of it; the locked queue: RabbitMQ's own words
    // leave no room for the rule in a short string.
    let unruled = ["basic.recover requeue=false", "exclusive queue of another connection"];
    let failures = closes_differ(&rabbit, &reference, &unruled, true);
    assert!(failures.is_empty(), "reply texts differ (or name no known rule):\n{}", failures.join("\n"));
}

/// Virtual hosts and permissions (`tests/pika/access.py`) on RabbitMQ 3.10.8, its user and
/// virtual host made with rabbitmqctl, and on the reference broker configured alike
/// (`--vhost`, `--permit`): every method allowed or refused alike, with the same code and
/// RabbitMQ's reply text followed by the rule or page; a queue of one virtual host unseen from
/// another. Needs rabbitmqctl (root, as CI runs).
#[test]
fn virtual_hosts_and_permissions_are_as_on_rabbitmq() {
    let configure = r"^(acc-cfg-.*|amq\.gen.*)$";
    let write = r"^(acc-wr-.*|amq\.default)$";
    let read = r"^acc-rd-.*$";
    let ctl = |args: &[&str]| {
        let out = Command::new("rabbitmqctl").args(args).output().expect("rabbitmqctl runs (RabbitMQ's CLI is needed)");
        let text = String::from_utf8_lossy(&out.stderr);
        // Adding what is there already is fine.
        assert!(out.status.success() || text.contains("already exists"), "rabbitmqctl {args:?}: {text}");
    };
    ctl(&["add_vhost", "rt-other"]);
    ctl(&["add_user", "rt-app", "rt-secret"]);
    ctl(&["set_permissions", "-p", "/", "rt-app", configure, write, read]);
    ctl(&["set_permissions", "-p", "rt-other", "guest", ".*", ".*", ".*"]);
    let rabbit = json_lines("access.py", rabbit_port(), &[]);
    let config = ServeConfig {
        vhosts: vec!["/".into(), "rt-other".into()],
        users: vec![amqp_broker::User::guest(), "rt-app:rt-secret".parse().unwrap()],
        permissions: vec![format!("rt-app / {configure} {write} {read}").parse().unwrap()],
        ..ServeConfig::with_profile(Profile::rabbitmq())
    };
    let server = ServerHandle::start(config).expect("the reference broker");
    let reference = json_lines("access.py", server.addr().port(), &[]);
    server.stop();
    // A virtual host that does not exist: RabbitMQ's words, no rule.
    let failures = closes_differ(&rabbit, &reference, &["open a virtual host that does not exist"], false);
    assert!(failures.is_empty(), "virtual hosts and permissions differ:\n{}", failures.join("\n"));
}

/// RabbitMQ's port (`AMQP_PORT`, default 5672).
fn rabbit_port() -> u16 {
    std::env::var("AMQP_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(5672)
}

/// Where the cases of a script (`{case, level, code, text}` each, or `{case, ok}`) differ
/// between RabbitMQ and the reference broker: the same outcome, and the reference broker's text
/// RabbitMQ's followed by ` (RULE)`, RULE an id of the catalogues or a RabbitMQ page, except for
/// the `unruled` cases, whose text is RabbitMQ's alone. With `all_close`, every case must be a
/// close on RabbitMQ.
fn closes_differ(
    rabbit: &[serde_json::Value],
    reference: &[serde_json::Value],
    unruled: &[&str],
    all_close: bool,
) -> Vec<String> {
    assert_eq!(
        rabbit.len(),
        reference.len(),
        "the same cases on both\nRabbitMQ: {rabbit:#?}\nreference: {reference:#?}"
    );
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let catalogues =
        ["spec/rules.toml", "spec/extensions.toml"].map(|f| std::fs::read_to_string(format!("{root}/{f}")).unwrap());
    let known = |rule: &str| {
        rule.starts_with("https://www.rabbitmq.com/")
            || catalogues.iter().any(|c| c.contains(&format!("id = \"{rule}\"")))
    };
    let mut failures = Vec::new();
    for (r, m) in rabbit.iter().zip(reference) {
        let case = r["case"].as_str().unwrap();
        assert_eq!(case, m["case"].as_str().unwrap());
        if all_close {
            assert_ne!(r["level"], "none", "{case}: RabbitMQ did not close: the script no longer provokes it");
        }
        if r["ok"] != m["ok"] || r["level"] != m["level"] || r["code"] != m["code"] {
            failures.push(format!("{case}: RabbitMQ {r}, reference {m}"));
            continue;
        }
        let (Some(rt), Some(mt)) = (r["text"].as_str(), m["text"].as_str()) else { continue };
        let rule = mt.strip_prefix(rt).map(|rest| rest.strip_prefix(" (").and_then(|r| r.strip_suffix(')')));
        match rule {
            Some(Some(rule)) if known(rule) => {}
            Some(None) if mt == rt && unruled.contains(&case) => {}
            _ => failures.push(format!("{case}:\n  RabbitMQ  {rt}\n  reference {mt}")),
        }
    }
    failures
}

/// The cases of `tests/pika/<script> PORT ARGS...` against a broker at `port`, one JSON value
/// each.
fn json_lines(script: &str, port: u16, args: &[&str]) -> Vec<serde_json::Value> {
    let path = format!("{}/tests/pika/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3").arg(path).arg(port.to_string()).args(args).output().expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{script} on port {port}: {text}{}", String::from_utf8_lossy(&out.stderr));
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}
