//! The model served over AMQP 0-9-1 (`amqp-conformance serve`), started in-process on an
//! ephemeral loopback port: lapin's handshake, publish/consume/ack, basic.get, publisher
//! confirms, a refused login, a channel error, what the server does with a wrong protocol header,
//! frames it cannot parse, methods the model lacks and silent clients, and the seed fixtures run
//! over the wire with the runner's live target.

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{basic, connection, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable};
use amqp_broker::{Schedule, ServeConfig, ServerHandle, User};
use amqp_conformance::run::{replay, Verdict};
use amqp_conformance::target::live::LiveTarget;
use amqp_conformance::target::uri::BrokerUri;
use amqp_conformance::target::Target;
use amqp_conformance::target::Timing;
use amqp_conformance::trace::parse;
use amqp_model::{Command, Profile};
use futures_core::Stream;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties, ErrorKind};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;
use common::{
    all_forgotten, connection_close, connection_close_ok, header, on, others_unaffected, publish, server, Raw,
};

async fn connect(uri: &str) -> lapin::Result<Connection> {
    let runtime = lapin::runtime::default_runtime()?;
    Connection::connect_with_runtime(uri, ConnectionProperties::default(), runtime).await
}

/// The reply code of a failed lapin call.
fn code(e: &lapin::Error) -> Option<u16> {
    match e.kind() {
        ErrorKind::ProtocolError(p) => Some(p.get_id()),
        _ => None,
    }
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), f).await.unwrap_or_else(|_| panic!("{what}: no answer within 5 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapin_connects_and_negotiates() {
    let s = server();
    let c = within("connect", connect(&s.uri())).await.expect("the handshake completes");
    assert!(c.status().connected());
    assert_eq!(c.configuration().frame_max(), 131_072);
    assert_eq!(c.configuration().channel_max(), 2047);
    assert_eq!(c.configuration().heartbeat(), 60);
    let ch = within("channel.open", c.create_channel()).await.expect("a channel");
    assert!(ch.status().connected());
    assert_eq!(s.server().connections(), 1);
    within("connection.close", c.close(200, "OK".into())).await.expect("closes");
    let deadline = Instant::now() + Duration::from_secs(2);
    while s.server().connections() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.server().connections(), 0, "the connection is forgotten once closed");
    assert!(s.server().broker().connections.is_empty());

    // Another virtual host is not allowed.
    let other = s.uri().replace("/%2f", "/other");
    let e = within("connect", connect(&other)).await.expect_err("no such virtual host");
    assert_eq!(code(&e), Some(530), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_consume_ack_round_trip() {
    let s = server();
    let c = connect(&s.uri()).await.expect("connects");
    let ch = c.create_channel().await.expect("a channel");
    let q = within("queue.declare", ch.queue_declare("".into(), QueueDeclareOptions::default(), FieldTable::default()))
        .await
        .expect("a server-named queue");
    assert!(q.name().as_str().starts_with("amq.gen-"), "{}", q.name());
    let mut consumer = within(
        "basic.consume",
        ch.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()),
    )
    .await
    .expect("a consumer");
    assert!(consumer.tag().as_str().starts_with("amq.ctag-"), "{}", consumer.tag());

    let mut headers = FieldTable::default();
    headers.insert("n".into(), AMQPValue::LongInt(7));
    headers.insert("f".into(), AMQPValue::Double(1.5));
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/octet-stream".into())
        .with_correlation_id("abc".into())
        .with_headers(headers.clone());
    // Not UTF-8, and bigger than a frame: it comes back whole and exact.
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    within(
        "basic.publish",
        ch.basic_publish("".into(), q.name().clone(), BasicPublishOptions::default(), &body, props),
    )
    .await
    .expect("published");

    let delivery = within("basic.deliver", std::future::poll_fn(|cx| std::pin::Pin::new(&mut consumer).poll_next(cx)))
        .await
        .expect("a delivery")
        .expect("not an error");
    assert_eq!(delivery.delivery_tag, 1);
    assert!(!delivery.redelivered);
    assert_eq!(delivery.routing_key.as_str(), q.name().as_str());
    assert_eq!(delivery.data, body);
    assert_eq!(*delivery.properties.delivery_mode(), Some(2));
    assert_eq!(delivery.properties.content_type().as_ref().map(|s| s.as_str()), Some("application/octet-stream"));
    assert_eq!(delivery.properties.correlation_id().as_ref().map(|s| s.as_str()), Some("abc"));
    assert_eq!(delivery.properties.headers().as_ref(), Some(&headers));
    within("basic.ack", delivery.acker.ack(BasicAckOptions::default())).await.expect("acked");

    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let q2 = within("queue.declare", ch.queue_declare(q.name().clone(), passive, FieldTable::default()))
        .await
        .expect("the queue");
    assert_eq!((q2.message_count(), q2.consumer_count()), (0, 1));
    assert!(s.server().broker().ledger.is_empty(), "the ack settled the message");
    c.close(200, "OK".into()).await.expect("closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_get_counts_and_empties() {
    let s = server();
    let c = connect(&s.uri()).await.expect("connects");
    let ch = c.create_channel().await.expect("a channel");
    // nowait: the server sends no declare-ok (lapin would take a stray one as an error).
    let nowait = QueueDeclareOptions { nowait: true, ..Default::default() };
    ch.queue_declare("q-get".into(), nowait, FieldTable::default()).await.expect("declared");
    for body in [&b"m1"[..], b"m2"] {
        ch.basic_publish("".into(), "q-get".into(), BasicPublishOptions::default(), body, BasicProperties::default())
            .await
            .expect("published");
    }
    let first = within("basic.get", ch.basic_get("q-get".into(), BasicGetOptions { no_ack: false }))
        .await
        .expect("get-ok")
        .expect("a message");
    assert_eq!((first.delivery.data.as_slice(), first.message_count, first.delivery.delivery_tag), (&b"m1"[..], 1, 1));
    first.delivery.acker.ack(BasicAckOptions::default()).await.expect("acked");
    let second = ch.basic_get("q-get".into(), BasicGetOptions { no_ack: true }).await.expect("get-ok").expect("one");
    assert_eq!((second.delivery.data.as_slice(), second.message_count), (&b"m2"[..], 0));
    let empty = within("basic.get", ch.basic_get("q-get".into(), BasicGetOptions { no_ack: true })).await;
    assert!(empty.expect("get-empty").is_none());
    c.close(200, "OK".into()).await.expect("closes");
}

/// lapin's `basic.recover-async` (requeue): no answer, and the message got without ack is there
/// again, redelivered, as RabbitMQ 3.10.8 does (Q56).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapin_recover_async_requeues() {
    let s = server();
    let c = connect(&s.uri()).await.expect("connects");
    let ch = c.create_channel().await.expect("a channel");
    ch.queue_declare("q-recover".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .expect("declared");
    ch.basic_publish("".into(), "q-recover".into(), BasicPublishOptions::default(), b"m", BasicProperties::default())
        .await
        .expect("published");
    let got = within("basic.get", ch.basic_get("q-recover".into(), BasicGetOptions { no_ack: false }))
        .await
        .expect("get-ok")
        .expect("a message");
    assert!(!got.delivery.redelivered);
    ch.basic_recover_async(lapin::options::BasicRecoverAsyncOptions { requeue: true }).await.expect("sent");
    let again = within("basic.get", ch.basic_get("q-recover".into(), BasicGetOptions { no_ack: true }))
        .await
        .expect("get-ok")
        .expect("the message again");
    assert_eq!((again.delivery.data.as_slice(), again.delivery.redelivered), (&b"m"[..], true));
    c.close(200, "OK".into()).await.expect("closes");
}

/// A lapin consumer with `no-local`: under `rabbitmq` taken and ignored, as RabbitMQ 3.10.8
/// does (Q61: it gets its own connection's message); under `spec`, which the model cannot
/// honour, 540.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_local_is_ignored_as_rabbitmq_ignores_it() {
    let s = server();
    let c = connect(&s.uri()).await.expect("connects");
    let ch = c.create_channel().await.expect("a channel");
    ch.queue_declare("q-local".into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("declared");
    let no_local = BasicConsumeOptions { no_local: true, no_ack: true, ..Default::default() };
    let mut consumer =
        within("basic.consume", ch.basic_consume("q-local".into(), "".into(), no_local, FieldTable::default()))
            .await
            .expect("consume-ok");
    ch.basic_publish("".into(), "q-local".into(), BasicPublishOptions::default(), b"own", BasicProperties::default())
        .await
        .expect("published");
    let delivery = within("the delivery", std::future::poll_fn(|cx| std::pin::Pin::new(&mut consumer).poll_next(cx)))
        .await
        .expect("a delivery")
        .expect("delivered");
    assert_eq!(delivery.data, b"own");
    c.close(200, "OK".into()).await.expect("closes");

    let spec = ServerHandle::start(ServeConfig::with_profile(Profile::spec())).expect("a server");
    let c = connect(&spec.uri()).await.expect("connects");
    let ch = c.create_channel().await.expect("a channel");
    ch.queue_declare("q-local".into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("declared");
    let e = within("basic.consume", ch.basic_consume("q-local".into(), "".into(), no_local, FieldTable::default()))
        .await
        .expect_err("refused under spec");
    assert_eq!(code(&e), Some(540), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_confirms_and_returns() {
    let s = server();
    let c = connect(&s.uri()).await.expect("connects");
    let ch = c.create_channel().await.expect("a channel");
    within("confirm.select", ch.confirm_select(ConfirmSelectOptions::default())).await.expect("confirm mode");
    ch.queue_declare("q-confirm".into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("ok");
    let routed = ch
        .basic_publish("".into(), "q-confirm".into(), BasicPublishOptions::default(), b"m1", BasicProperties::default())
        .await
        .expect("published");
    assert!(matches!(within("confirm", routed).await.expect("confirmed"), Confirmation::Ack(None)));
    let mandatory = BasicPublishOptions { mandatory: true, ..Default::default() };
    let props = BasicProperties::default().with_message_id("id-2".into());
    let unroutable =
        ch.basic_publish("".into(), "no-such-queue".into(), mandatory, b"m2", props).await.expect("published");
    match within("confirm", unroutable).await.expect("confirmed") {
        Confirmation::Ack(Some(r)) => {
            assert_eq!(r.reply_code, 312);
            assert_eq!(r.delivery.data, b"m2");
            assert_eq!(r.delivery.properties.message_id().as_ref().map(|s| s.as_str()), Some("id-2"));
        }
        other => panic!("expected an ack with the returned message, got {other:?}"),
    }
    c.close(200, "OK".into()).await.expect("closes");
}

/// RabbitMQ's AMQPLAIN mechanism, offered beside PLAIN as RabbitMQ 3.10.8 offers both: lapin
/// logs in with it (`auth_mechanism=amqplain`), and a wrong password is 403 there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapin_logs_in_with_amqplain() {
    let s = server();
    let uri = format!("{}?auth_mechanism=amqplain", s.uri());
    let c = within("connect", connect(&uri)).await.expect("AMQPLAIN is taken");
    let ch = within("channel", c.create_channel()).await.expect("a channel");
    within("declare", ch.queue_declare("amqplain".into(), Default::default(), FieldTable::default()))
        .await
        .expect("declared");
    let wrong = format!("amqp://guest:nope@{}/%2f?auth_mechanism=amqplain", s.addr());
    let refused = within("connect", connect(&wrong)).await.expect_err("a wrong password");
    assert_eq!(code(&refused), Some(403), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_with_403() {
    let config =
        ServeConfig { users: vec![User { name: "alice".into(), password: "secret".into() }], ..ServeConfig::default() };
    let s = ServerHandle::start(config).expect("a server");
    let good = connect(&s.uri()).await.expect("alice logs in");
    good.close(200, "OK".into()).await.expect("closes");
    let bad = format!("amqp://alice:wrong@{}/%2f", s.addr());
    let e = within("connect", connect(&bad)).await.expect_err("a wrong password");
    assert_eq!(code(&e), Some(403), "{e}");
    let e = within("connect", connect(&format!("amqp://guest:guest@{}/%2f", s.addr()))).await.expect_err("no guest");
    assert_eq!(code(&e), Some(403), "{e}");
}

/// A client that does not announce `authentication_failure_close` (the runner's raw client
/// announces nothing) is not told why its login failed: the socket closes without a
/// `connection.close`, as RabbitMQ 3.10.8 closes it (Q57); one that does gets 403 (lapin, above).
#[test]
fn a_failed_login_without_the_capability_just_ends_the_socket() {
    let s = server();
    let mut raw = Raw::connect(&s);
    raw.send(&[AMQPFrame::ProtocolHeader(amq_protocol::frame::ProtocolVersion::amqp_0_9_1())]);
    assert!(matches!(raw.frame(), AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(_)))));
    let start_ok =
        amqp_wire::client::start_ok(&amqp_wire::client::Login { user: "guest", password: "wrong", vhost: "/" });
    raw.send(&[AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::StartOk(start_ok)))]);
    assert_eq!(raw.next(), None, "no frame: the socket is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_error_leaves_the_connection_usable() {
    let s = server();
    let c = connect(&s.uri()).await.expect("connects");
    let ch = c.create_channel().await.expect("a channel");
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let e = within("queue.declare", ch.queue_declare("missing".into(), passive, FieldTable::default()))
        .await
        .expect_err("no such queue");
    assert_eq!(code(&e), Some(404), "{e}");
    assert!(!ch.status().connected(), "the channel is closed");
    assert!(c.status().connected(), "the connection is not");
    let ch2 = within("channel.open", c.create_channel()).await.expect("another channel");
    within("queue.declare", ch2.queue_declare("missing".into(), QueueDeclareOptions::default(), FieldTable::default()))
        .await
        .expect("declared on the new channel");
    c.close(200, "OK".into()).await.expect("closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_closes_connections_with_320() {
    let s = server();
    let c = connect(&s.uri()).await.expect("connects");
    let ch = c.create_channel().await.expect("a channel");
    s.server().restart();
    let deadline = Instant::now() + Duration::from_secs(2);
    while c.status().connected() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!c.status().connected(), "the restart closed the connection");
    assert!(!ch.status().connected());
    let again = connect(&s.uri()).await.expect("connects after the restart");
    again.close(200, "OK".into()).await.expect("closes");
}

#[test]
fn start_advertises_what_the_model_has() {
    let s = server();
    let raw = Raw::open(&s, 0);
    let start = raw.start.expect("connection.start");
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    assert_eq!(start.mechanisms.to_string(), "PLAIN AMQPLAIN");
    assert_eq!(start.locales.to_string(), "en_US");
    for key in ["product", "version", "platform", "copyright", "information"] {
        assert!(start.server_properties.contains_key(key), "{key}");
    }
    let Some(AMQPValue::FieldTable(caps)) = start.server_properties.inner().get("capabilities") else {
        panic!("no capabilities")
    };
    let caps_on = [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "authentication_failure_close",
        "per_consumer_qos",
        "consumer_priorities",
        "direct_reply_to",
        // It blocks publishers on demand (`block` on the control port, broker/src/rare.rs).
        "connection.blocked",
    ];
    for cap in caps_on {
        assert_eq!(caps.inner().get(cap), Some(&AMQPValue::Boolean(true)), "{cap}");
    }
    let product =
        |start: &amq_protocol::protocol::connection::Start| start.server_properties.inner().get("product").cloned();
    assert_eq!(product(&start), Some(AMQPValue::LongString(amqp_broker::DEFAULT_PRODUCT.into())));

    // `--product`: the name a client sees (amqp091-go's RabbitMQ tests look for `RabbitMQ`).
    let config = ServeConfig { product: "RabbitMQ".into(), ..ServeConfig::default() };
    let named = ServerHandle::start(config).expect("a server");
    let start = Raw::open(&named, 0).start.expect("connection.start");
    assert_eq!(product(&start), Some(AMQPValue::LongString("RabbitMQ".into())));
}

#[test]
fn a_wrong_protocol_header_gets_the_right_one_back() {
    let s = server();
    for wrong in [&b"AMQP\x00\x00\x08\x00"[..], b"AMQP\x01\x01\x00\x09", b"GET / HTTP/1.1\r\n\r\n"] {
        let mut raw = Raw::connect(&s);
        raw.stream().write_all(wrong).expect("written");
        let mut answer = Vec::new();
        raw.stream().read_to_end(&mut answer).expect("the socket is closed after the header");
        assert_eq!(answer, b"AMQP\x00\x00\x09\x01", "after {wrong:?}");
    }
}

#[test]
fn frames_it_cannot_take() {
    let s = server();
    // A frame of an unknown type: 501, and the socket is closed at once.
    let mut raw = Raw::open(&s, 0);
    raw.stream().write_all(&[9, 0, 0, 0, 0, 0, 0, 0xCE]).expect("written");
    raw.expect_close(501, 0, 0);
    assert!(raw.closed());

    // A method that does not exist: 540, naming it; the socket closes after close-ok.
    let mut raw = Raw::open(&s, 0);
    raw.stream().write_all(&[1, 0, 1, 0, 0, 0, 4, 0, 60, 0, 99, 0xCE]).expect("written");
    raw.expect_close(540, 60, 99);
    raw.send(&[AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})))]);
    assert!(raw.closed());

    // Methods the model does not implement: 540 naming the method.
    let mut raw = Raw::open(&s, 0);
    let open =
        AMQPClass::Channel(amq_protocol::protocol::channel::AMQPMethod::Open(amq_protocol::protocol::channel::Open {}));
    raw.send(&[AMQPFrame::Method(1, open.clone())]);
    assert!(matches!(raw.frame(), AMQPFrame::Method(1, AMQPClass::Channel(_))));
    let recover = basic::AMQPMethod::RecoverAsync(basic::RecoverAsync { requeue: false });
    raw.send(&[AMQPFrame::Method(1, AMQPClass::Basic(recover))]);
    raw.expect_close(540, 60, 100);

    // prefetch-size other than 0 (amq-protocol has no field for it: written by hand), and an
    // immediate publish: 540.
    let mut raw = Raw::open(&s, 0);
    raw.send(&[AMQPFrame::Method(1, open.clone())]);
    assert!(matches!(raw.frame(), AMQPFrame::Method(1, AMQPClass::Channel(_))));
    raw.stream().write_all(&[1, 0, 1, 0, 0, 0, 11, 0, 60, 0, 10, 0, 0, 0, 1, 0, 0, 0, 0xCE]).expect("written");
    raw.expect_close(540, 60, 10);
    let mut raw = Raw::open(&s, 0);
    raw.send(&[AMQPFrame::Method(1, open.clone())]);
    assert!(matches!(raw.frame(), AMQPFrame::Method(1, AMQPClass::Channel(_))));
    let publish = basic::Publish { exchange: "".into(), routing_key: "q".into(), mandatory: false, immediate: true };
    raw.send(&[AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(publish)))]);
    raw.expect_close(540, 60, 40);

    // A content body without a publish: 505.
    let mut raw = Raw::open(&s, 0);
    raw.send(&[AMQPFrame::Body(1, b"stray".to_vec())]);
    raw.expect_close(505, 0, 0);

    // None of it disturbed other connections.
    others_unaffected(&s);
}

/// `basic.recover-async` with requeue, as RabbitMQ 3.10.8 takes it (Q56): no answer, and the
/// delivery the channel held is back in its queue, redelivered (without requeue: 540, above).
#[test]
fn recover_async_requeues_without_an_answer() {
    let s = server();
    let mut raw = Raw::open(&s, 0);
    raw.channel(1);
    raw.declare(1, "held", false);
    raw.send(&[on(1, publish("held")), header(1, 1), AMQPFrame::Body(1, b"m".to_vec())]);
    let get = |no_ack| on(1, AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get { queue: "held".into(), no_ack })));
    raw.send(&[get(false)]);
    let AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::GetOk(first))) = raw.frame() else { panic!("get-ok") };
    assert!(!first.redelivered);
    let (_, _) = (raw.frame(), raw.frame()); // its header and body
    let recover = basic::AMQPMethod::RecoverAsync(basic::RecoverAsync { requeue: true });
    raw.send(&[on(1, AMQPClass::Basic(recover)), get(true)]);
    // The next frame answers the get: the recover sent nothing.
    let AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::GetOk(again))) = raw.frame() else {
        panic!("the get after recover-async finds the message")
    };
    assert!(again.redelivered, "{again:?}");
}

/// `access.request` (the access class 0-8 had) is answered with `access.request-ok`, ticket 1, as
/// RabbitMQ 3.10.8 answers it (Q62), and the channel goes on.
#[test]
fn access_request_is_answered_as_rabbitmq_answers_it() {
    let s = server();
    let mut raw = Raw::open(&s, 0);
    raw.channel(1);
    let request = amq_protocol::protocol::access::Request {
        realm: "/data".into(),
        exclusive: false,
        passive: true,
        active: true,
        write: true,
        read: true,
    };
    raw.send(&[on(1, AMQPClass::Access(amq_protocol::protocol::access::AMQPMethod::Request(request)))]);
    let AMQPFrame::Method(1, AMQPClass::Access(amq_protocol::protocol::access::AMQPMethod::RequestOk(_))) = raw.frame()
    else {
        panic!("access.request-ok")
    };
    raw.declare(1, "after-access", false);
}

/// A client's `connection.close` is answered and the socket left to the client, as RabbitMQ
/// leaves it: several closes sent at once (amqp091-go's Close from many goroutines) each get
/// their close-ok, and the socket ends when the client closes it.
#[test]
fn each_of_several_client_closes_is_answered() {
    let s = server();
    let mut raw = Raw::open(&s, 0);
    raw.channel(1);
    raw.send(&[connection_close(), connection_close(), connection_close()]);
    for n in 1..=3 {
        assert_eq!(raw.frame(), connection_close_ok(), "close-ok {n}");
    }
    drop(raw);
    assert_eq!(all_forgotten(&s), 0, "the connection ends once the client has closed its socket");
}

#[test]
fn heartbeats_are_sent_and_silence_is_not_tolerated() {
    let s = server();
    let mut raw = Raw::open(&s, 1);
    let started = Instant::now();
    assert_eq!(raw.frame(), AMQPFrame::Heartbeat, "the server beats within the interval");
    assert!(started.elapsed() < Duration::from_millis(1500));
    // The client stays silent: after twice the interval the server closes the socket.
    while raw.next().is_some() {}
    let silent = started.elapsed();
    assert!(silent >= Duration::from_millis(1500) && silent < Duration::from_secs(4), "{silent:?}");
}

/// Heartbeats come at half the negotiated interval, as RabbitMQ sends them (its documentation:
/// about every timeout/2): a client that beats back and gives up after one silent interval (1 s
/// here) stays connected. Six seconds idle: a dozen beats, never a second without one.
#[test]
fn heartbeats_come_at_half_the_interval_so_a_strict_client_stays() {
    let s = server();
    let mut raw = Raw::open(&s, 1);
    let mut last = Instant::now();
    let (started, mut beats, mut longest) = (last, 0, Duration::ZERO);
    while started.elapsed() < Duration::from_secs(6) {
        assert_eq!(raw.frame(), AMQPFrame::Heartbeat, "an idle connection hears only heartbeats");
        longest = longest.max(last.elapsed());
        last = Instant::now();
        beats += 1;
        raw.send(&[AMQPFrame::Heartbeat]);
    }
    assert!(longest < Duration::from_secs(1), "a strict client gave up: {longest:?} without a frame");
    assert!(beats >= 10, "{beats} heartbeats in 6 s at a 1 s interval");
    raw.channel(1);
}

/// The seed fixtures over the wire, with the runner's live target, under both schedules.
#[test]
fn seed_fixtures_pass_over_the_wire() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/seed");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/seed")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "trace"))
        .collect();
    files.sort();
    let traces: Vec<_> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("a readable trace");
            (f.file_name().unwrap().to_string_lossy().into_owned(), parse(&text, &f.display().to_string()).unwrap())
        })
        .filter(|(_, t)| !t.commands().any(|c| matches!(c, Command::Restart)))
        .filter(|(_, t)| t.profile.is_none_or(|p| p == Profile::rabbitmq().name))
        .collect();
    assert!(traces.len() >= 10, "only {} seed traces", traces.len());
    for schedule in [Schedule::RoundRobin, Schedule::Random { seed: 5 }] {
        let s = ServerHandle::start(ServeConfig { schedule, ..ServeConfig::default() }).expect("a server");
        let mut failed = Vec::new();
        for (name, trace) in &traces {
            let mut target = LiveTarget::new(&broker_uri(&s), Timing::default());
            let verdict = replay(trace, Profile::rabbitmq(), &mut target);
            let summary = target.finish();
            assert!(summary.incomplete.is_none(), "{name}: {:?}", summary.incomplete);
            assert!(summary.problems.is_empty(), "{name}: {:?}", summary.problems);
            if verdict != Verdict::Pass {
                failed.push(format!("{name}: {verdict}"));
            }
        }
        assert!(failed.is_empty(), "{schedule:?}: {failed:#?}");
        assert!(s.server().broker().queues.is_empty(), "the runner's cleanup left queues behind");
    }
}

/// `exchange recommended-types` is a SHOULD: a broker that leaves out the headers type (the
/// reference broker with a profile without it) refuses a headers declare with 503 and has no
/// amq.headers. Under `spec` the runner finds that out with a probe, skips the traces that need
/// headers with the reason, and judges the others against the profile without it; under
/// `rabbitmq` nothing is probed, and a headers trace fails.
#[test]
fn a_broker_without_a_recommended_type_is_judged_without_it() {
    use amqp_conformance::suite::{run_one, Status};
    use amqp_conformance::target::TargetSpec;
    use amqp_model::{ProfileName, RecommendedTypes};
    let mut profile = Profile::spec();
    profile.recommended_types = RecommendedTypes { topic: true, headers: false };
    let s = ServerHandle::start(ServeConfig::with_profile(profile)).expect("a server");
    assert!(!s.server().broker().exchanges.contains_key("amq.headers"));
    let uri = broker_uri(&s);
    assert_eq!(
        amqp_conformance::target::probe::recommended_types(&uri, Duration::from_secs(2)),
        profile.recommended_types
    );
    let target = TargetSpec::Broker { uri, timing: Timing::default(), restart: None };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let run = |name: &str, profile| {
        let text = std::fs::read_to_string(dir.join(name)).expect("the fixture");
        run_one(name, &parse(&text, name).expect("parses"), &target, profile).status
    };
    for headers in ["spec/routing-headers-all-any.trace", "regressions/garagemq/exchange-amq-headers-predeclared.trace"]
    {
        let status = run(headers, ProfileName::Spec);
        assert!(
            matches!(&status, Status::Skip { reason } if reason.contains("headers exchange type")),
            "{headers}: {status:?}"
        );
    }
    for other in ["spec/routing-topic-wildcards.trace", "spec/routing-direct-exact-key.trace"] {
        assert_eq!(run(other, ProfileName::Spec), Status::Pass, "{other}");
    }
    let status = run("spec/routing-headers-all-any.trace", ProfileName::Rabbitmq);
    assert!(matches!(status, Status::Fail(_)), "{status:?}");
}

/// `basic publish mandatory 01` is a SHOULD: a broker that drops unroutable mandatory messages
/// like any other (the reference broker with a profile without returns) is found out by the
/// runner's probe under `spec`, judged against the profile without returns, and the traces that
/// expect a `basic.return` are skipped with the reason; under `rabbitmq` they fail.
#[test]
fn a_broker_without_mandatory_returns_is_judged_without_them() {
    use amqp_conformance::suite::{run_one, Status};
    use amqp_conformance::target::TargetSpec;
    use amqp_model::ProfileName;
    let mut profile = Profile::spec();
    profile.mandatory_returns = false;
    let s = ServerHandle::start(ServeConfig::with_profile(profile)).expect("a server");
    let uri = broker_uri(&s);
    use amqp_conformance::target::probe::{mandatory_flag, MandatoryFlag};
    assert_eq!(mandatory_flag(&uri, Duration::from_secs(2)), MandatoryFlag::Drops);
    let target = TargetSpec::Broker { uri, timing: Timing::default(), restart: None };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/spec");
    let run = |name: &str, profile| {
        let text = std::fs::read_to_string(dir.join(name)).expect("the fixture");
        run_one(name, &parse(&text, name).expect("parses"), &target, profile).status
    };
    let status = run("basic-publish-mandatory-unroutable-312.trace", ProfileName::Spec);
    assert!(matches!(&status, Status::Skip { reason } if reason.contains("basic.return")), "{status:?}");
    // Unroutable messages without an expected return: judged, and dropped as the model says.
    assert_eq!(run("basic-publish-unroutable-dropped.trace", ProfileName::Spec), Status::Pass);
    assert_eq!(run("basic-ack-single.trace", ProfileName::Spec), Status::Pass);
    let status = run("basic-publish-mandatory-unroutable-312.trace", ProfileName::Rabbitmq);
    assert!(matches!(status, Status::Fail(_)), "{status:?}");
    // A broker that returns them is found to.
    let s = ServerHandle::start(ServeConfig::with_profile(Profile::spec())).expect("a server");
    assert_eq!(mandatory_flag(&broker_uri(&s), Duration::from_secs(2)), MandatoryFlag::Returns);
}

/// The reference broker's URI as the runner takes it.
fn broker_uri(s: &ServerHandle) -> BrokerUri {
    BrokerUri::parse(&s.uri()).expect("the reference broker's URI parses")
}

/// A TCP relay in front of a broker that dies once, as a broker's process does (dispatchd now
/// and then, closing a connection): when a connection whose client sent `marker` ends, the relay
/// stops listening and drops every connection through it; it listens again on the same port when
/// the file `revive` appears (the restart command creates it).
struct MortalRelay {
    port: u16,
    revive: PathBuf,
}

impl MortalRelay {
    fn start(upstream: std::net::SocketAddr, marker: &'static [u8], revive: PathBuf) -> MortalRelay {
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("an address").port();
        let dead = Arc::new(AtomicBool::new(false));
        let died_once = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let file = revive.clone();
        std::thread::spawn(move || {
            let mut listener = Some(listener);
            loop {
                if dead.load(Ordering::SeqCst) {
                    if listener.take().is_some() {
                        for s in open.lock().unwrap().drain(..) {
                            let _ = s.shutdown(Shutdown::Both);
                        }
                    }
                    if std::fs::remove_file(&file).is_ok() {
                        listener = Some(TcpListener::bind(("127.0.0.1", port)).expect("the same port again"));
                        dead.store(false, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let l = listener.as_ref().expect("alive, so listening");
                l.set_nonblocking(true).expect("non-blocking");
                let client = match l.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                client.set_nonblocking(false).expect("blocking");
                let server = TcpStream::connect(upstream).expect("the broker");
                open.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut s_read, mut c_write) = (server, client);
                let (dead, died_once) = (dead.clone(), died_once.clone());
                std::thread::spawn(move || {
                    let (mut buf, mut seen, mut carried) = ([0u8; 4096], Vec::new(), false);
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 || s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        carried |= seen.windows(marker.len()).any(|w| w == marker);
                    }
                    let _ = s_write.shutdown(Shutdown::Write);
                    if carried && !died_once.swap(true, Ordering::SeqCst) {
                        dead.store(true, Ordering::SeqCst);
                    }
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_read, &mut c_write);
                    let _ = c_write.shutdown(Shutdown::Write);
                });
            }
        });
        MortalRelay { port, revive }
    }
}

/// A broker whose process is gone after a trace whose steps all matched the model (its cleanup
/// then finds nobody) is restarted with the restart command, and the trace run again: its result
/// is the second run's, with the first run told beside it as an incident; the traces after it run
/// on the restarted broker. Nothing is lost and nothing is reported as the broker's failure.
#[test]
fn a_broker_that_died_after_a_matching_trace_is_restarted_and_the_trace_run_again() {
    use amqp_conformance::suite::{run_suite, Status};
    use amqp_conformance::target::restart::Restart;
    use amqp_conformance::target::TargetSpec;
    use amqp_model::ProfileName;
    let s = ServerHandle::start(ServeConfig::with_profile(Profile::spec())).expect("a server");
    let upstream = broker_uri(&s).address().parse().expect("a socket address");
    let dir = std::env::temp_dir().join(format!("amqpc-mortal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let relay = MortalRelay::start(upstream, b"dies-after-close", dir.join("revive"));
    let uri = BrokerUri::parse(&format!("amqp://guest:guest@127.0.0.1:{}/%2f", relay.port)).expect("a URI");
    let restart = Restart::Command(format!("touch {}", relay.revive.display()));
    let target = TargetSpec::Broker { uri, timing: Timing::default(), restart: Some(restart) };
    let trace = |queue: &str| {
        let text = format!(
            "c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare {queue}\n\
             expect c1.1 queue.declare-ok {queue} 0 0\nc1 connection.close\nexpect c1 connection.close-ok\n"
        );
        parse(&text, "relay.trace").expect("parses")
    };
    let traces =
        vec![("dies.trace".to_string(), trace("dies-after-close")), ("after.trace".to_string(), trace("lives"))];
    let run = run_suite(&traces, &target, ProfileName::Spec, 1, &|_, s| s, &mut |_| {});
    let [dies, after] = &run.results[..] else { panic!("two results: {:?}", run.results) };
    assert_eq!(dies.status, Status::Pass, "{:?}", dies);
    assert_eq!(dies.incidents.len(), 1, "{:?}", dies.incidents);
    assert!(dies.incidents[0].contains("restarted and the trace run again"), "{}", dies.incidents[0]);
    assert_eq!(after.status, Status::Pass, "{:?}", after);
    assert!(after.incidents.is_empty(), "{:?}", after.incidents);
    assert!(run.conformant());
    let _ = std::fs::remove_dir_all(&dir);
}
