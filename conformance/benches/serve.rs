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
use futures_core::Stream;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use std::time::{Duration, Instant};

const DEFAULT_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Messages per throughput run.
const MESSAGES: usize = 20_000;
/// Octets per message body.
const BODY: usize = 1024;
/// Round trips per latency run.
const ROUND_TRIPS: usize = 5_000;
/// Runs per measurement and broker.
const REPEATS: usize = 3;
/// The longest any one run may take.
const LIMIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug)]
enum Measure {
    NoAck,
    ConfirmsAndAcks,
    RoundTrips,
}

impl Measure {
    fn name(self) -> String {
        match self {
            Measure::NoAck => format!("messages/s: publish to a no-ack consumer ({MESSAGES} x {BODY} B)"),
            Measure::ConfirmsAndAcks => {
                format!("messages/s: confirmed publishes to an acking consumer, prefetch 100 ({MESSAGES} x {BODY} B)")
            }
            Measure::RoundTrips => format!("round trips/s: queue.declare passive ({ROUND_TRIPS} in a row)"),
        }
    }
}

async fn connect(uri: &str) -> Connection {
    Connection::connect(uri, ConnectionProperties::default()).await.expect("connects")
}

/// Declare a fresh queue (server-named, exclusive to `ch`'s connection); its name.
async fn queue(ch: &Channel) -> String {
    let options = QueueDeclareOptions { exclusive: true, ..QueueDeclareOptions::default() };
    let q = ch.queue_declare("".into(), options, FieldTable::default()).await.expect("queue.declare");
    q.name().as_str().to_string()
}

async fn next(consumer: &mut Consumer) -> lapin::message::Delivery {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *consumer).poll_next(cx))
        .await
        .expect("the consumer ends only with its channel")
        .expect("a delivery")
}

/// One run of `measure` against the broker at `uri`: operations per second.
async fn once(uri: &str, measure: Measure) -> f64 {
    let a = connect(uri).await;
    let b = connect(uri).await;
    let pub_ch = a.create_channel().await.expect("a channel");
    let sub_ch = b.create_channel().await.expect("a channel");
    let q = queue(&sub_ch).await;
    let rate = match measure {
        Measure::NoAck | Measure::ConfirmsAndAcks => {
            let acks = matches!(measure, Measure::ConfirmsAndAcks);
            if acks {
                pub_ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");
                sub_ch.basic_qos(100, BasicQosOptions::default()).await.expect("basic.qos");
            }
            let options = BasicConsumeOptions { no_ack: !acks, ..BasicConsumeOptions::default() };
            let mut consumer = sub_ch
                .basic_consume(q.as_str().into(), "".into(), options, FieldTable::default())
                .await
                .expect("consume");
            let body = vec![0x5Au8; BODY];
            let started = Instant::now();
            let publisher = async {
                let mut confirms = Vec::with_capacity(if acks { MESSAGES } else { 0 });
                for _ in 0..MESSAGES {
                    let confirm = pub_ch
                        .basic_publish(
                            "".into(),
                            q.as_str().into(),
                            BasicPublishOptions::default(),
                            &body,
                            BasicProperties::default(),
                        )
                        .await
                        .expect("basic.publish");
                    if acks {
                        confirms.push(confirm);
                    }
                }
                for c in confirms {
                    assert!(c.await.expect("a confirm").is_ack(), "a publish was nacked");
                }
            };
            let subscriber = async {
                for _ in 0..MESSAGES {
                    let d = next(&mut consumer).await;
                    assert_eq!(d.data.len(), BODY);
                    if acks {
                        d.acker.ack(BasicAckOptions::default()).await.expect("basic.ack");
                    }
                }
            };
            tokio::join!(publisher, subscriber);
            MESSAGES as f64 / started.elapsed().as_secs_f64()
        }
        Measure::RoundTrips => {
            let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
            let started = Instant::now();
            for _ in 0..ROUND_TRIPS {
                sub_ch.queue_declare(q.as_str().into(), passive, FieldTable::default()).await.expect("queue.declare");
            }
            ROUND_TRIPS as f64 / started.elapsed().as_secs_f64()
        }
    };
    let _ = sub_ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
    a.close(200, "OK".into()).await.expect("close");
    b.close(200, "OK".into()).await.expect("close");
    rate
}

fn timed(rt: &tokio::runtime::Runtime, who: &str, uri: &str, measure: Measure) -> f64 {
    rt.block_on(async {
        match tokio::time::timeout(LIMIT, once(uri, measure)).await {
            Ok(rate) => rate,
            Err(_) => panic!("{who}: `{}` took longer than {LIMIT:?}", measure.name()),
        }
    })
}

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
