//! A Node application's scenario with amqplib (clients/node/scenario.js: confirms, a consumer in a
//! prefetch window, basic.get until empty, a returned mandatory publish, a channel error and its
//! reply text, a consumer cancelled by its queue's deletion, an idle connection with 1-second
//! heartbeats) against the reference broker and against RabbitMQ 3.10.8: every check holds on
//! both. Needs Node.js and amqplib in clients/node/node_modules (`./check` runs `npm ci` there);
//! without them the test fails and says so. RabbitMQ at 127.0.0.1:5672 (`AMQP_PORT` for another
//! port).

use amqp_broker::{ServeConfig, ServerHandle};
use amqp_model::Profile;
use std::process::Command;

const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/node");

fn scenario(url: &str, tag: &str) -> String {
    let amqplib = format!("{CLIENTS}/node_modules/amqplib/package.json");
    assert!(std::path::Path::new(&amqplib).exists(), "amqplib is needed: npm ci --prefix clients/node");
    let out = Command::new("node")
        .arg(format!("{CLIENTS}/scenario.js"))
        .args([url, tag])
        .output()
        .expect("node runs (Node.js is needed)");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("amqplib as the model says"), "scenario.js against {url}:\n{text}");
    text
}

#[test]
fn an_amqplib_application_behaves_alike_on_the_reference_broker_and_rabbitmq() {
    let tag = std::process::id().to_string();
    let server = ServerHandle::start(ServeConfig::with_profile(Profile::rabbitmq())).expect("the reference broker");
    let reference = scenario(&server.uri(), &tag);
    server.stop();
    let port: u16 = std::env::var("AMQP_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(5672);
    let rabbit = scenario(&format!("amqp://guest:guest@127.0.0.1:{port}"), &tag);
    assert_eq!(reference.trim(), rabbit.trim(), "the same checks held on both");
}
