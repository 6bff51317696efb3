//! Bad input to the reference broker (`amqp-conformance serve`), written on raw sockets: frames
//! over frame-max, a wrong frame-end octet, unknown methods, methods on channels that are not
//! open, content without a publish, a client that stops reading, a client that vanishes
//! mid-frame, and a short seeded fuzz. Each gets the specification's reply or a clean close,
//! never a panic, and never disturbs another connection. Every read has a timeout.

mod common;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{basic, channel, connection, AMQPClass};
use amqp_broker::feed::{self, Feeder};
use amqp_broker::{ServeConfig, ServerHandle};
use amqp_model::Profile;
use common::*;
use std::io::Write;
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Panics on the server's threads (named `amqp-serve`), counted by a panic hook.
fn count_server_panics() -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name().is_some_and(|n| n.starts_with("amqp-serve")) {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
    count
}

#[test]
fn an_oversize_frame_is_501() {
    let s = server();
    // A frame header announcing one octet more than the negotiated frame-max: answered at once.
    let mut raw = Raw::open(&s, 0);
    let size = FRAME_MAX - 8 + 1;
    let mut head = vec![3u8, 0, 1];
    head.extend(size.to_be_bytes());
    raw.stream().write_all(&head).expect("written");
    raw.expect_close(501, 0, 0);
    assert!(raw.closed());

    // A whole frame, exactly frame-max plus one: a method frame with a long payload.
    let mut raw = Raw::open(&s, 0);
    raw.channel(1);
    let mut payload = vec![0u8, 50, 0, 10];
    payload.resize((FRAME_MAX - 8 + 1) as usize, b'x');
    let _ = raw.stream().write_all(&raw_frame(1, 1, &payload, 0xCE));
    raw.expect_close(501, 0, 0);
    assert!(raw.closed());

    // A huge announced size (4 GB): no allocation of it, just 501.
    let mut raw = Raw::open(&s, 0);
    raw.stream().write_all(&[1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]).expect("written");
    raw.expect_close(501, 0, 0);
    assert!(raw.closed());
    others_unaffected(&s);
}

#[test]
fn a_wrong_frame_end_is_501() {
    let s = server();
    // A heartbeat, a method and a body frame, each ended by something else than 0xCE.
    let method_payload = bytes(&[on(1, channel_open())])[7..].to_vec();
    let method_payload = &method_payload[..method_payload.len() - 1];
    for (kind, n, payload, end) in [(8u8, 0u16, &[][..], 0u8), (1, 1, method_payload, 0xCF), (3, 1, b"abc", 0x00)] {
        let mut raw = Raw::open(&s, 0);
        raw.stream().write_all(&raw_frame(kind, n, payload, end)).expect("written");
        raw.expect_close(501, 0, 0);
        assert!(raw.closed(), "closed after a frame of type {kind} ending in {end:#x}");
    }
    others_unaffected(&s);
}

/// A known method whose arguments cannot be decoded (cut short, a field table longer than the
/// frame, a field of an unknown type, octets left over) is a frame the server cannot decode: 501
/// naming the method, which is what RabbitMQ 3.10.8 answers (probed; it resets the socket on the
/// unknown field type instead). The socket is closed at once.
#[test]
fn undecodable_arguments_of_a_known_method_are_501_naming_it() {
    let s = server();
    let declare = |rest: &[u8]| {
        let mut payload = vec![0u8, 50, 0, 10, 0, 0];
        payload.extend(rest);
        raw_frame(1, 1, &payload, 0xCE)
    };
    let cases: [(&str, Vec<u8>); 4] = [
        ("cut short", declare(b"\x05ab")),
        ("a table longer than the frame", declare(b"\x01q\x00\x00\x00\x01\x90")),
        ("a field of an unknown type", declare(b"\x01q\x00\x00\x00\x00\x04\x01aZ\x00")),
        ("octets left over", declare(b"\x01q\x00\x00\x00\x00\x00junk")),
    ];
    for (what, frame) in cases {
        let mut raw = Raw::open(&s, 0);
        raw.channel(1);
        eprintln!("case: {what}");
        raw.stream().write_all(&frame).expect("written");
        raw.expect_close(501, 50, 10);
        assert!(raw.closed(), "{what}: the socket is closed");
    }
    others_unaffected(&s);
}

/// AMQP 0-9-1 names no reply code for an unknown class or method; 540 `not-implemented` ("the
/// client tried to use functionality that is not implemented in the server") is RabbitMQ's
/// answer too, with the class and method ids it was sent. 503 `command-invalid` is for an
/// invalid sequence of known methods.
#[test]
fn an_unknown_class_or_method_is_540() {
    let s = server();
    for (n, class_id, method_id) in [(1u16, 60u16, 99u16), (1, 99, 10), (0, 10, 99), (0, 0xFFFF, 0xFFFF)] {
        let mut raw = Raw::open(&s, 0);
        if n > 0 {
            raw.channel(n);
        }
        let mut payload = class_id.to_be_bytes().to_vec();
        payload.extend(method_id.to_be_bytes());
        payload.extend(b"junk");
        raw.stream().write_all(&raw_frame(1, n, &payload, 0xCE)).expect("written");
        raw.expect_close_and_end(540, class_id, method_id);
    }
    others_unaffected(&s);
}

/// Known methods out of place are 503 `command-invalid`, naming the method: a channel's method
/// on channel 0, a handshake method on an open connection, a method only a server sends, and a
/// connection method on a channel other than 0.
#[test]
fn methods_out_of_place_are_503() {
    let s = server();
    let tune_ok = connection::TuneOk { channel_max: 16, frame_max: FRAME_MAX, heartbeat: 0 };
    let deliver = basic::Deliver {
        consumer_tag: "c".into(),
        delivery_tag: 1,
        redelivered: false,
        exchange: "".into(),
        routing_key: "q".into(),
    };
    let cases: [(&str, AMQPFrame, (u16, u16)); 5] = [
        ("queue.declare on channel 0", method(declare("q-503", false)), (50, 10)),
        (
            "connection.tune-ok after the handshake",
            method(AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune_ok))),
            (10, 31),
        ),
        ("basic.deliver from a client", on(1, AMQPClass::Basic(basic::AMQPMethod::Deliver(deliver))), (60, 60)),
        (
            "queue.declare-ok from a client",
            on(
                1,
                AMQPClass::Queue(amq_protocol::protocol::queue::AMQPMethod::DeclareOk(
                    amq_protocol::protocol::queue::DeclareOk { queue: "q".into(), message_count: 0, consumer_count: 0 },
                )),
            ),
            (50, 11),
        ),
        ("connection.close on channel 1", on(1, connection_close_class()), (10, 50)),
    ];
    for (what, frame, (class_id, method_id)) in cases {
        let mut raw = Raw::open(&s, 0);
        raw.channel(1);
        eprintln!("case: {what}");
        raw.send(&[frame]);
        raw.expect_close_and_end(503, class_id, method_id);
    }
    others_unaffected(&s);
}

#[test]
fn a_method_on_a_channel_not_open_is_504() {
    let s = server();
    // Never opened.
    let mut raw = Raw::open(&s, 0);
    raw.send(&[on(5, declare("q-504", false))]);
    raw.expect_close_and_end(504, 50, 10);

    // Opened, closed by the client (close-ok received), then used.
    let mut raw = Raw::open(&s, 0);
    raw.channel(1);
    let close = channel::Close { reply_code: 200, reply_text: "bye".into(), class_id: 0, method_id: 0 };
    raw.send(&[on(1, AMQPClass::Channel(channel::AMQPMethod::Close(close)))]);
    let ok = raw.frame();
    assert!(matches!(ok, AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_)))), "{ok:?}");
    raw.send(&[on(1, declare("q-504", false))]);
    raw.expect_close_and_end(504, 50, 10);

    // Content on a channel never opened: also not on an open channel.
    let mut raw = Raw::open(&s, 0);
    raw.send(&[on(3, publish("q-504"))]);
    raw.expect_close_and_end(504, 60, 40);
    others_unaffected(&s);
}

#[test]
fn content_without_a_publish_is_505() {
    let s = server();
    // A content header on an open channel, with no publish before it.
    let mut raw = Raw::open(&s, 0);
    raw.channel(1);
    raw.send(&[header(1, 3)]);
    raw.expect_close_and_end(505, 0, 0);

    // A body on an open channel, with no publish and no header.
    let mut raw = Raw::open(&s, 0);
    raw.channel(1);
    raw.send(&[AMQPFrame::Body(1, b"abc".to_vec())]);
    raw.expect_close_and_end(505, 0, 0);

    // A body after the publish but before its header.
    let mut raw = Raw::open(&s, 0);
    raw.channel(1);
    raw.send(&[on(1, publish("q-505")), AMQPFrame::Body(1, b"abc".to_vec())]);
    raw.expect_close_and_end(505, 0, 0);

    // A complete publish, then a stray body: the publish's content is over.
    let mut raw = Raw::open(&s, 0);
    raw.channel(1);
    raw.declare(1, "q-505", false);
    raw.send(&[on(1, publish("q-505")), header(1, 3), AMQPFrame::Body(1, b"abc".to_vec())]);
    raw.send(&[AMQPFrame::Body(1, b"def".to_vec())]);
    raw.expect_close_and_end(505, 0, 0);
    others_unaffected(&s);
}

/// A publish of `body` to the default exchange, as bytes.
fn publish_bytes(n: u16, queue: &str, body: Vec<u8>) -> Vec<u8> {
    let mut one = bytes(&[on(n, publish(queue)), header(n, body.len() as u64)]);
    one.extend(bytes(&[AMQPFrame::Body(n, body)]));
    one
}

#[test]
fn a_client_that_stops_reading_is_bounded_then_dropped() {
    let s = ServerHandle::start(ServeConfig { send_timeout: Duration::from_secs(3), ..ServeConfig::default() })
        .expect("a server");
    let mut slow = Raw::open(&s, 0);
    slow.channel(1);
    slow.declare(1, "q-slow", false);
    slow.consume(1, "q-slow", "slow", true);

    // Publish 40 MB to its own consumer and never read: once its backlog is full the server
    // stops reading from it, so the client's writes stall well short of 40 MB.
    let one = publish_bytes(1, "q-slow", vec![7u8; (FRAME_MAX - 8) as usize]);
    let mut stream = slow.stream().try_clone().expect("a clone");
    let publisher = std::thread::spawn(move || {
        let mut sent = 0usize;
        for _ in 0..5000 {
            if stream.write_all(&one).is_err() {
                break;
            }
            sent += one.len();
        }
        sent
    });
    // While it publishes (and after), others are served promptly.
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        others_unaffected(&s);
        std::thread::sleep(Duration::from_millis(200));
    }
    let sent = publisher.join().expect("the publisher");
    assert!(sent > 1 << 20, "the server took only {sent} octets");
    assert!(sent < 24 << 20, "the server took {sent} octets from a client that reads nothing");
    others_unaffected(&s);
    // The server gives up on it after the send timeout, though the client keeps its socket.
    let started = Instant::now();
    while s.server().connections() > 0 && started.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s.server().connections(), 0, "a client that reads nothing is dropped after the send timeout");
    assert!(slow.closed(), "its socket is closed");
    others_unaffected(&s);
}

#[test]
fn deliveries_to_a_client_that_does_not_read_wait_in_the_queue() {
    let s = server();
    let mut consumer = Raw::open(&s, 0);
    consumer.channel(1);
    consumer.declare(1, "q-held", false);
    consumer.consume(1, "q-held", "held", true);

    // Another connection publishes 16 MB to the queue while the consumer reads nothing.
    const COUNT: usize = 2000;
    let mut publisher = Raw::open(&s, 0);
    publisher.channel(1);
    for i in 0..COUNT {
        let mut body = vec![0u8; (FRAME_MAX - 8) as usize];
        body[..8].copy_from_slice(&(i as u64).to_be_bytes());
        publisher.stream().write_all(&publish_bytes(1, "q-held", body)).expect("published");
    }
    // A round trip: every publish has been taken.
    publisher.declare(1, "q-held", true);
    let waiting = s.server().broker().queues.get("q-held").expect("the queue").ready.len();
    assert!(waiting > COUNT / 2, "only {waiting} of {COUNT} messages wait in the queue");
    others_unaffected(&s);

    // The consumer reads at last: every message, in order.
    let mut next = 0u64;
    while next < COUNT as u64 {
        match consumer.frame() {
            AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Deliver(d))) => {
                assert_eq!(d.delivery_tag, next + 1);
            }
            AMQPFrame::Body(1, body) => {
                assert_eq!(u64::from_be_bytes(body[..8].try_into().expect("8 octets")), next);
                next += 1;
            }
            _ => {}
        }
    }
    assert!(s.server().broker().queues.get("q-held").expect("the queue").ready.is_empty());
}

#[test]
fn a_client_that_vanishes_mid_frame_gives_its_messages_back() {
    let s = server();
    let mut a = Raw::open(&s, 0);
    a.channel(1);
    a.declare(1, "q-vanish", false);
    for body in [&b"m1"[..], b"m2", b"m3"] {
        a.send(&[on(1, publish("q-vanish")), header(1, body.len() as u64), AMQPFrame::Body(1, body.to_vec())]);
    }
    assert_eq!(a.declare(1, "q-vanish", true), 3);
    a.send(&[on(1, consume("q-vanish", "c", false))]);
    let mut delivered = 0;
    while delivered < 3 {
        if let AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Deliver(_))) = a.frame() {
            delivered += 1;
        }
    }
    // Half of a publish's method frame, then the socket is gone.
    let half = bytes(&[on(1, publish("q-vanish"))]);
    a.stream().write_all(&half[..half.len() / 2]).expect("written");
    a.stream().shutdown(Shutdown::Both).expect("shut down");
    drop(a);

    let mut b = Raw::open(&s, 0);
    b.channel(1);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let count = b.declare(1, "q-vanish", true);
        if count == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the vanished consumer's 3 messages are back ({count} are)");
        std::thread::sleep(Duration::from_millis(20));
    }
    let get = AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get { queue: "q-vanish".into(), no_ack: true }));
    b.send(&[on(1, get)]);
    match b.frame() {
        AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::GetOk(ok))) => {
            assert!(ok.redelivered, "a requeued message is flagged redelivered");
            assert_eq!(ok.message_count, 2);
        }
        other => panic!("expected basic.get-ok, got {other:?}"),
    }
    assert_eq!(s.server().connections(), 1, "only the second connection is left");
    others_unaffected(&s);
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Some input after the handshake: random bytes, or a well-formed frame with a random payload.
fn junk(rng: &mut Rng) -> Vec<u8> {
    const METHODS: &[(u16, u16)] = &[
        (10, 10),
        (10, 11),
        (10, 31),
        (10, 40),
        (10, 50),
        (10, 51),
        (20, 10),
        (20, 20),
        (20, 40),
        (20, 41),
        (40, 10),
        (40, 20),
        (40, 30),
        (50, 10),
        (50, 20),
        (50, 30),
        (50, 40),
        (50, 50),
        (60, 10),
        (60, 20),
        (60, 30),
        (60, 40),
        (60, 70),
        (60, 80),
        (60, 90),
        (60, 110),
        (60, 120),
        (85, 10),
        (90, 10),
        (90, 20),
        (90, 30),
    ];
    let n = [0u16, 1, 1, 2, rng.next() as u16][rng.below(5)];
    let len = rng.below(64);
    match rng.below(6) {
        0 => rng.bytes(1 + len),
        1 => {
            let (class_id, method_id) = METHODS[rng.below(METHODS.len())];
            let mut payload = class_id.to_be_bytes().to_vec();
            payload.extend(method_id.to_be_bytes());
            payload.extend(rng.bytes(len));
            raw_frame(1, n, &payload, 0xCE)
        }
        2 => {
            let mut payload = vec![0, 60, 0, 0];
            payload.extend(rng.bytes(len));
            raw_frame(2, n, &payload, 0xCE)
        }
        3 => raw_frame(3, n, &rng.bytes(len), 0xCE),
        4 => raw_frame([1u8, 2, 3, 8, rng.next() as u8][rng.below(5)], n, &rng.bytes(len), rng.next() as u8),
        _ => {
            // A valid publish with content, so later junk meets an assembly in progress.
            let size = rng.below(32);
            let mut out = bytes(&[on(n, publish("fuzz")), header(n, size as u64 + rng.below(2) as u64)]);
            out.extend(raw_frame(3, n, &rng.bytes(size), 0xCE));
            out
        }
    }
}

/// One fuzzed connection: handshake, a channel, junk, then `connection.close`; it must end with
/// the server's `connection.close` (answered) or a socket close within 8 s.
fn fuzz_one(s: &ServerHandle, rng: &mut Rng) {
    // Heartbeat 1: a connection left inside a partial frame is dropped after 2 s of silence.
    let mut raw = Raw::open(s, 1);
    if rng.below(2) == 0 {
        raw.channel(1);
    }
    let mut input = Vec::new();
    for _ in 0..1 + rng.below(6) {
        input.extend(junk(rng));
    }
    input.extend(bytes(&[connection_close()]));
    // The server may close the socket before it has read everything.
    let _ = raw.stream().write_all(&input);
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        assert!(Instant::now() < deadline, "a fuzzed connection was not ended within 8 s");
        match raw.next() {
            None => return,
            Some(f) => {
                if let AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(_))) = f {
                    let _ = raw.stream().write_all(&bytes(&[connection_close_ok()]));
                }
            }
        }
    }
}

#[test]
fn a_short_fuzz_neither_panics_nor_hangs() {
    let panics = count_server_panics();
    let s = Arc::new(server());
    let ended = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..6u64)
        .map(|t| {
            let s = s.clone();
            let ended = ended.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
                let until = Instant::now() + Duration::from_secs(3);
                while Instant::now() < until {
                    fuzz_one(&s, &mut rng);
                    ended.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a fuzzing thread");
    }
    assert_eq!(panics.load(Ordering::SeqCst), 0, "the server panicked");
    assert!(ended.load(Ordering::SeqCst) >= 6, "{} connections", ended.load(Ordering::SeqCst));
    others_unaffected(&s);
    assert_eq!(all_forgotten(&s), 0, "every fuzzed connection is forgotten");
}

/// The frames in a server's output.
fn parsed(mut output: &[u8]) -> Vec<AMQPFrame> {
    let mut out = Vec::new();
    while let Ok((rest, frame)) = amq_protocol::frame::parse_frame(output) {
        out.push(frame);
        output = rest;
    }
    out
}

#[test]
fn the_fuzz_seeds_are_sessions_that_work() {
    let feeder = Feeder::new(Profile::rabbitmq());
    let seeds: std::collections::BTreeMap<_, _> = feed::seeds().into_iter().collect();
    let got = |name: &str| parsed(&feeder.feed(&seeds[name]));
    let has = |frames: &[AMQPFrame], what: &dyn Fn(&AMQPFrame) -> bool| frames.iter().any(what);
    let deliver = |f: &AMQPFrame| matches!(f, AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Deliver(_))));

    let work = got("work-queue");
    assert!(has(&work, &deliver), "{work:?}");
    assert!(matches!(
        work.last(),
        Some(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))))
    ));
    let confirms = got("confirms");
    assert!(has(&confirms, &|f| matches!(f, AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Ack(_))))));
    assert!(has(&confirms, &|f| matches!(f, AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Return(_))))));
    let routing = got("routing");
    assert!(has(&routing, &|f| matches!(f, AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::GetOk(_))))));
    let transactions = got("transactions");
    assert!(has(&transactions, &deliver), "{transactions:?}");
    assert!(has(&transactions, &|f| matches!(
        f,
        AMQPFrame::Method(2, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_)))
    )));
    let handshake = got("handshake-only");
    assert!(has(&handshake, &|f| matches!(
        f,
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)))
    )));
    // Without the handshake flag the same octets are not a session: the server answers the
    // first octet (not a protocol header) with its own header and closes.
    let mut flag_off = seeds["work-queue"].clone();
    flag_off[0] = 0;
    assert_eq!(feeder.feed(&flag_off), b"AMQP\x00\x00\x09\x01");
}

/// `fuzz/seeds/serve_bytes/` holds [`feed::seeds`] for `just fuzz`; `UPDATE_FUZZ_SEEDS=1` rewrites it.
#[test]
fn the_fuzz_seed_files_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/serve_bytes");
    let update = std::env::var_os("UPDATE_FUZZ_SEEDS").is_some();
    for (name, input) in feed::seeds() {
        let path = dir.join(format!("{name}.bin"));
        if update {
            std::fs::create_dir_all(&dir).expect("the seed directory");
            std::fs::write(&path, &input).expect("a seed file");
        }
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == input,
            "{} is not feed::seeds()'s `{name}`: run `UPDATE_FUZZ_SEEDS=1 cargo test -p amqp-conformance --test serve_bad_input`",
            path.display()
        );
    }
}

/// The fuzz target's body on stable Rust: mutated seeds (flipped, dropped, repeated and inserted
/// octets, junk frames spliced in) fed for a fixed time. Any panic fails the test (the server
/// runs on the test's own thread), and so does a connection that does not end.
#[test]
fn a_seeded_feed_of_mutated_sessions_neither_panics_nor_hangs() {
    let feeder = Feeder::new(Profile::rabbitmq());
    let spec = Feeder::new(Profile::spec());
    let seeds = feed::seeds();
    let mut rng = Rng(0x5EED_F00D_D15C_0BAD);
    let until = Instant::now() + Duration::from_secs(3);
    let mut fed = 0;
    while Instant::now() < until {
        let (_, seed) = &seeds[rng.below(seeds.len())];
        let mut input = seed.clone();
        for _ in 0..1 + rng.below(4) {
            let at = 1 + rng.below(input.len() - 1);
            match rng.below(5) {
                0 => input[at] ^= 1 << rng.below(8),
                1 => input[at] = rng.next() as u8,
                2 => {
                    let end = (at + rng.below(16)).min(input.len());
                    input.drain(at..end);
                }
                3 => {
                    let end = (at + rng.below(32)).min(input.len());
                    let copy = input[at..end].to_vec();
                    input.splice(at..at, copy);
                }
                _ => {
                    let junk = junk(&mut rng);
                    input.splice(at..at, junk);
                }
            }
            if input.len() < 2 {
                break;
            }
        }
        if rng.below(2) == 0 { &feeder } else { &spec }.feed(&input);
        fed += 1;
    }
    assert!(fed > 100, "only {fed} inputs in 3 s");
}
