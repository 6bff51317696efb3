//! A client that writes AMQP frames itself, for the reference broker's tests: what lapin would
//! never send (bad frames, methods out of order) and what it hides (the exact frames that come
//! back). Every read has a timeout, so a server that does not answer fails the test instead of
//! hanging it.

#![allow(dead_code)] // each test binary uses its own part

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{basic, channel, connection, queue, AMQPClass};
use amq_protocol::types::FieldTable;
use amqp_broker::{ServeConfig, ServerHandle};
use amqp_conformance::target::socket::{FrameSocket, Read1};
use amqp_wire::client::Login;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The frame-max every raw client negotiates.
pub const FRAME_MAX: u32 = 8192;

/// A reference broker (RabbitMQ profile, round-robin) on an ephemeral loopback port.
pub fn server() -> ServerHandle {
    ServerHandle::start(ServeConfig::default()).expect("a server on an ephemeral port")
}

/// A method frame on channel 0.
pub fn method(class: AMQPClass) -> AMQPFrame {
    AMQPFrame::Method(0, class)
}

/// A method frame on channel `n`.
pub fn on(n: u16, class: AMQPClass) -> AMQPFrame {
    AMQPFrame::Method(n, class)
}

pub fn channel_open() -> AMQPClass {
    AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))
}

pub fn declare(name: &str, passive: bool) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: name.into(),
        passive,
        durable: false,
        exclusive: false,
        auto_delete: false,
        nowait: false,
        arguments: FieldTable::default(),
    }))
}

pub fn consume(queue: &str, tag: &str, no_ack: bool) -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
        queue: queue.into(),
        consumer_tag: tag.into(),
        no_local: false,
        no_ack,
        exclusive: false,
        nowait: false,
        arguments: FieldTable::default(),
    }))
}

/// A publish to the default exchange.
pub fn publish(routing_key: &str) -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: "".into(),
        routing_key: routing_key.into(),
        mandatory: false,
        immediate: false,
    }))
}

/// A basic content header announcing `size` octets of body.
pub fn header(n: u16, size: u64) -> AMQPFrame {
    AMQPFrame::Header(
        n,
        AMQPContentHeader { class_id: 60, body_size: size, properties: basic::AMQPProperties::default() },
    )
}

pub fn connection_close_class() -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
        reply_code: 200,
        reply_text: "bye".into(),
        class_id: 0,
        method_id: 0,
    }))
}

pub fn connection_close() -> AMQPFrame {
    method(connection_close_class())
}

pub fn connection_close_ok() -> AMQPFrame {
    method(AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})))
}

/// The frames as they go on the wire.
pub fn bytes(frames: &[AMQPFrame]) -> Vec<u8> {
    amqp_wire::encode(frames).expect("encodes")
}

/// A frame written by hand: type, channel, payload, then `end` as the frame-end octet.
pub fn raw_frame(kind: u8, n: u16, payload: &[u8], end: u8) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend(n.to_be_bytes());
    out.extend((payload.len() as u32).to_be_bytes());
    out.extend(payload);
    out.push(end);
    out
}

/// A client that writes frames itself (over the runner's [`FrameSocket`]).
pub struct Raw {
    socket: FrameSocket,
    /// The server's `connection.start`, once [`Raw::open`] has read it.
    pub start: Option<connection::Start>,
}

/// How long a raw client waits for anything.
const PATIENCE: Duration = Duration::from_secs(5);

impl Raw {
    pub fn connect(s: &ServerHandle) -> Raw {
        let mut socket = FrameSocket::connect(s.addr()).expect("connects");
        socket.stream().set_write_timeout(Some(PATIENCE)).expect("a timeout");
        Raw { socket, start: None }
    }

    /// The socket itself, for bytes that are not frames.
    pub fn stream(&mut self) -> &mut TcpStream {
        self.socket.stream()
    }

    pub fn send(&mut self, frames: &[AMQPFrame]) {
        self.socket.send(frames).expect("written");
    }

    /// The next frame, or `None` when the server has closed (or reset) the socket; panics after
    /// 5 s of silence, or on what is not a frame.
    pub fn next(&mut self) -> Option<AMQPFrame> {
        match self.socket.read(Instant::now() + PATIENCE) {
            Read1::Frame(frame) => Some(*frame),
            Read1::Closed => None,
            Read1::TimedOut => panic!("no frame within {PATIENCE:?}"),
            Read1::Fault(fault) => panic!("the server sent what is not a frame: {fault:?}"),
        }
    }

    /// The next frame; panics when the socket is closed.
    pub fn frame(&mut self) -> AMQPFrame {
        self.next().expect("a frame, but the server closed the socket")
    }

    /// Whether the server closes the socket (after any frames it still sends) within 5 s.
    pub fn closed(&mut self) -> bool {
        let stream = self.socket.stream();
        stream.set_read_timeout(Some(PATIENCE)).expect("a timeout");
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) => return matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted),
            }
        }
    }

    /// Handshake as guest (frame-max [`FRAME_MAX`], channel-max 16, this heartbeat), with the
    /// runner's client handshake; the server's tune must be the reference broker's.
    pub fn open(s: &ServerHandle, heartbeat: u16) -> Raw {
        let mut raw = Raw::connect(s);
        let login = Login { user: "guest", password: "guest", vhost: "/" };
        let tune_ok = |tune: &connection::Tune| {
            assert_eq!((tune.channel_max, tune.frame_max, tune.heartbeat), (2047, 131_072, 60));
            connection::TuneOk { channel_max: 16, frame_max: FRAME_MAX, heartbeat }
        };
        let opened = raw.socket.handshake(&login, tune_ok, |socket, awaited| {
            let frame = match socket.read(Instant::now() + PATIENCE) {
                Read1::Frame(f) => *f,
                other => panic!("expected the answer to {}, got {other:?}", awaited.after()),
            };
            assert!(awaited.matches(&frame), "expected the answer to {}, got {frame:?}", awaited.after());
            Some(frame)
        });
        raw.start = Some(opened.expect("the handshake completes").start);
        raw
    }

    /// Open channel `n`.
    pub fn channel(&mut self, n: u16) {
        self.send(&[on(n, channel_open())]);
        let ok = self.frame();
        assert!(
            matches!(ok, AMQPFrame::Method(m, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))) if m == n),
            "{ok:?}"
        );
    }

    /// Declare a queue (passive or not) on channel `n`: its message count.
    pub fn declare(&mut self, n: u16, name: &str, passive: bool) -> u32 {
        self.send(&[on(n, declare(name, passive))]);
        loop {
            match self.frame() {
                AMQPFrame::Method(m, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok))) if m == n => {
                    return ok.message_count
                }
                AMQPFrame::Heartbeat => {}
                other => panic!("expected queue.declare-ok, got {other:?}"),
            }
        }
    }

    /// Start a consumer on channel `n` and read its `basic.consume-ok`.
    pub fn consume(&mut self, n: u16, queue: &str, tag: &str, no_ack: bool) {
        self.send(&[on(n, consume(queue, tag, no_ack))]);
        let ok = self.frame();
        assert!(
            matches!(ok, AMQPFrame::Method(m, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))) if m == n),
            "{ok:?}"
        );
    }

    /// The server's next frame is `connection.close` with this code (class, method).
    pub fn expect_close(&mut self, code: u16, class_id: u16, method_id: u16) {
        match self.frame() {
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
                assert_eq!((c.reply_code, c.class_id, c.method_id), (code, class_id, method_id), "{c:?}");
            }
            other => panic!("expected connection.close {code}, got {other:?}"),
        }
    }

    /// `connection.close` with this code, answered with close-ok, then the socket closes.
    pub fn expect_close_and_end(&mut self, code: u16, class_id: u16, method_id: u16) {
        self.expect_close(code, class_id, method_id);
        // The socket may already be closed (a frame error closes it at once).
        let _ = self.stream().write_all(&bytes(&[connection_close_ok()]));
        assert!(self.closed(), "the socket is closed after connection.close {code}");
    }
}

/// Another connection still works: handshake, channel, queue.declare, within 2 s.
pub fn others_unaffected(s: &ServerHandle) {
    let started = Instant::now();
    let mut raw = Raw::open(s, 0);
    raw.channel(1);
    raw.declare(1, "bystander", false);
    assert!(started.elapsed() < Duration::from_secs(2), "a bystander waited {:?}", started.elapsed());
}

/// Wait up to 5 s for the server to have forgotten every connection.
pub fn all_forgotten(s: &ServerHandle) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.server().connections() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    s.server().connections()
}
