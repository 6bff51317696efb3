//! `cargo bench -p amqp-conformance --bench serve` (part of `just bench`): the reference broker
//! (`amqp-conformance serve`, started in this process on a loopback port, `rabbitmq` profile,
//! round-robin schedule) against RabbitMQ (`AMQP_URI`, default the local one) in the same run,
//! driven by the same lapin client code, one table.
//!
//! - messages/s, no-ack: one connection publishes `MESSAGES` messages of `BODY` octets to a
//!   queue that a consumer on a second connection takes with `no-ack`; timed from the first
//!   publish to the last delivery.
//! - messages/s, confirms and acks: the same with publisher confirms (all awaited at the end)
//!   and a consumer that acks each message, prefetch 100.
//! - round trips/s: `queue.declare` passive of an existing queue, `ROUND_TRIPS` times in a row on
//!   one channel, each awaited.
//!
//! Each measurement alternates between the two brokers `REPEATS` times and keeps the best of
//! each (the run least disturbed by the rest of the machine). Both brokers share the machine's
//! cores with the client.

use amqp_broker::{ServeConfig, ServerHandle};
use amqp_conformance::target::uri::BrokerUri;
use std::time::Duration;

mod common;
use common::{timed, Measure, DEFAULT_URI, REPEATS};

fn main() {
    let rabbitmq = std::env::var("AMQP_URI").unwrap_or_else(|_| DEFAULT_URI.to_string());
    let broker = BrokerUri::parse(&rabbitmq).unwrap_or_else(|e| panic!("AMQP_URI: {e}"));
    if let Err(e) = amqp_conformance::target::probe::check_login(&broker, Duration::from_secs(2)) {
        eprintln!("serve bench: {e}");
        std::process::exit(2);
    }
    let server = ServerHandle::start(ServeConfig::default()).expect("the reference broker starts");
    let reference = server.uri();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");

    println!("The reference broker (in-process, rabbitmq profile) against {} (best of {REPEATS}, alternating)", broker);
    println!();
    println!("| measure | reference broker | RabbitMQ | reference/RabbitMQ |");
    println!("| --- | ---: | ---: | ---: |");
    for measure in [Measure::NoAck, Measure::ConfirmsAndAcks, Measure::RoundTrips] {
        let (mut r, mut q) = (0.0f64, 0.0f64);
        for _ in 0..REPEATS {
            r = r.max(timed(&rt, "the reference broker", &reference, measure));
            q = q.max(timed(&rt, "RabbitMQ", &rabbitmq, measure));
        }
        println!("| {} | {r:.0} | {q:.0} | {:.2} |", measure.name(), r / q);
    }
    assert_eq!(server.server().broker().queues.len(), 0, "the bench's queues are gone from the reference broker");
}
