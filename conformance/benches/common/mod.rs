//! What the benches that drive brokers with lapin share: the measures, one timed run of each.

#![allow(dead_code)]

use futures_core::Stream;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use std::time::{Duration, Instant};

pub const DEFAULT_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Messages per throughput run.
pub const MESSAGES: usize = 20_000;
/// Octets per message body.
pub const BODY: usize = 1024;
/// Round trips per latency run.
pub const ROUND_TRIPS: usize = 5_000;
/// Runs per measurement and broker.
pub const REPEATS: usize = 3;
/// The longest any one run may take.
pub const LIMIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug)]
pub enum Measure {
    NoAck,
    ConfirmsAndAcks,
    RoundTrips,
}

impl Measure {
    pub fn name(self) -> String {
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

pub fn timed(rt: &tokio::runtime::Runtime, who: &str, uri: &str, measure: Measure) -> f64 {
    rt.block_on(async {
        match tokio::time::timeout(LIMIT, once(uri, measure)).await {
            Ok(rate) => rate,
            Err(_) => panic!("{who}: `{}` took longer than {LIMIT:?}", measure.name()),
        }
    })
}
