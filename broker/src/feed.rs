//! Arbitrary bytes fed to one connection of a fresh reference broker over an in-memory pipe: the
//! fuzz target's body (`fuzz/fuzz_targets/serve_bytes.rs`, run by `just fuzz`) and the stable
//! test suite's seeded feed, so that both exercise exactly the same path.
//!
//! An input's first octet says whether a well-formed handshake (protocol header, start-ok as
//! guest, tune-ok with frame-max 4096 and no heartbeats, open of `/`) goes before the rest, so
//! that the fuzzer spends its time past the handshake as well as in it. The input then ends (the
//! client half-closes its side) and the connection must end: a connection still open after
//! [`LIMIT`] is a hang, reported by a panic, as is any panic in the server.

use super::{ServeConfig, Server};
use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, ProtocolVersion};
use amq_protocol::protocol::{basic, channel, confirm, connection, exchange, queue, tx, AMQPClass};
use amq_protocol::types::{FieldTable, LongString, ShortString};
use amqp_model::Profile;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one fed connection may take to end once its input has.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Feeds inputs to fresh brokers, one connection each, on a runtime of its own.
#[derive(Debug)]
pub struct Feeder {
    runtime: tokio::runtime::Runtime,
    profile: Profile,
}

impl Feeder {
    /// A feeder whose brokers run under `profile`.
    pub fn new(profile: Profile) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        Feeder { runtime, profile }
    }

    /// Feed one input to a fresh broker. Panics when the connection has not ended [`LIMIT`]
    /// after the input did.
    pub fn feed(&self, input: &[u8]) -> Vec<u8> {
        let (with_handshake, rest) = match input.split_first() {
            Some((first, rest)) => (first & 1 == 1, rest),
            None => (false, input),
        };
        let mut bytes = if with_handshake { handshake() } else { Vec::new() };
        bytes.extend_from_slice(rest);
        let server = Server::new(ServeConfig::with_profile(self.profile));
        self.runtime.block_on(async move {
            let (client, broker) = tokio::io::duplex(64 * 1024);
            let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
            let serving = tokio::spawn(async move { server.serve_stream(broker, peer).await });
            let (mut rd, mut wr) = tokio::io::split(client);
            let writing = async move {
                // The server may stop reading (after a close): a failed write ends the input.
                let _ = wr.write_all(&bytes).await;
                let _ = wr.shutdown().await;
                wr
            };
            let reading = async move {
                let mut out = Vec::new();
                let _ = rd.read_to_end(&mut out).await;
                out
            };
            let ended = tokio::time::timeout(LIMIT, async {
                let (_wr, out) = tokio::join!(writing, reading);
                let _ = serving.await.map_err(|e| std::panic::resume_unwind(e.into_panic()));
                out
            });
            match ended.await {
                Ok(out) => out,
                Err(_) => panic!("a fed connection did not end within {LIMIT:?} of its input's end"),
            }
        })
    }
}

/// The octets of these frames.
pub fn frames(frames: &[AMQPFrame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        amqp_wire::encode_into(f, &mut out);
    }
    out
}

/// A well-formed client handshake: header, start-ok (guest), tune-ok (frame-max 4096, no
/// heartbeats), open `/`.
pub fn handshake() -> Vec<u8> {
    let c = |m| AMQPFrame::Method(0, AMQPClass::Connection(m));
    frames(&[
        AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1()),
        c(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: FieldTable::default(),
            mechanism: ShortString::from("PLAIN"),
            response: LongString::from(&b"\0guest\0guest"[..]),
            locale: ShortString::from("en_US"),
        })),
        c(connection::AMQPMethod::TuneOk(connection::TuneOk { channel_max: 8, frame_max: 4096, heartbeat: 0 })),
        c(connection::AMQPMethod::Open(connection::Open { virtual_host: ShortString::from("/") })),
    ])
}

/// Inputs that make sense (each after the handshake): where the fuzzer starts from, and what the
/// stable feed mutates. Each is a short session over the model's methods.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let on = AMQPFrame::Method;
    let open = |n| on(n, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})));
    let declare = |n, q: &str| {
        on(
            n,
            AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: q.into(),
                passive: false,
                durable: false,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: FieldTable::default(),
            })),
        )
    };
    let publish = |n, x: &str, k: &str| {
        on(
            n,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: x.into(),
                routing_key: k.into(),
                mandatory: true,
                immediate: false,
            })),
        )
    };
    let content = |n, body: &[u8]| {
        vec![
            AMQPFrame::Header(
                n,
                AMQPContentHeader {
                    class_id: 60,
                    body_size: body.len() as u64,
                    properties: basic::AMQPProperties::default().with_delivery_mode(2),
                },
            ),
            AMQPFrame::Body(n, body.to_vec()),
        ]
    };
    let consume = |n, q: &str, no_ack| {
        on(
            n,
            AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
                queue: q.into(),
                consumer_tag: "".into(),
                no_local: false,
                no_ack,
                exclusive: false,
                nowait: false,
                arguments: FieldTable::default(),
            })),
        )
    };
    let ack =
        |n, tag, multiple| on(n, AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack { delivery_tag: tag, multiple })));
    let close = on(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        })),
    );
    let seed = |fs: Vec<AMQPFrame>| {
        let mut input = vec![1u8];
        input.extend(frames(&fs));
        input
    };

    let mut work = vec![open(1), declare(1, "q"), publish(1, "", "q")];
    work.extend(content(1, b"hello"));
    work.extend([consume(1, "q", false), ack(1, 1, false), close.clone()]);

    let mut confirms = vec![
        open(1),
        on(1, AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false }))),
        declare(1, "c"),
        publish(1, "", "c"),
    ];
    confirms.extend(content(1, b"x"));
    confirms.push(publish(1, "", "nowhere"));
    confirms.extend(content(1, b"returned"));
    confirms.push(close.clone());

    let mut routing = vec![
        open(1),
        on(
            1,
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                exchange: "t".into(),
                kind: "topic".into(),
                passive: false,
                durable: false,
                auto_delete: false,
                internal: false,
                nowait: false,
                arguments: FieldTable::default(),
            })),
        ),
        declare(1, "r"),
        on(
            1,
            AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
                queue: "r".into(),
                exchange: "t".into(),
                routing_key: "a.#".into(),
                nowait: false,
                arguments: FieldTable::default(),
            })),
        ),
        publish(1, "t", "a.b"),
    ];
    routing.extend(content(1, b"routed"));
    routing.extend([on(1, AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get { queue: "r".into(), no_ack: true })))]);

    let mut transactions = vec![
        open(1),
        open(2),
        declare(1, "t"),
        on(1, AMQPClass::Tx(tx::AMQPMethod::Select(tx::Select {}))),
        publish(1, "", "t"),
    ];
    transactions.extend(content(1, b"held"));
    transactions.extend([
        on(1, AMQPClass::Tx(tx::AMQPMethod::Commit(tx::Commit {}))),
        on(2, AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos { prefetch_count: 1, global: false }))),
        consume(2, "t", false),
        on(
            2,
            AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack { delivery_tag: 1, multiple: false, requeue: true })),
        ),
        on(
            2,
            AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                reply_code: 200,
                reply_text: "".into(),
                class_id: 0,
                method_id: 0,
            })),
        ),
    ]);

    vec![
        ("work-queue", seed(work)),
        ("confirms", seed(confirms)),
        ("routing", seed(routing)),
        ("transactions", seed(transactions)),
        ("handshake-only", vec![0u8].into_iter().chain(handshake()).collect()),
    ]
}
