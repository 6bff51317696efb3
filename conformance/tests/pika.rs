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
