//! One client connection: the protocol header, the handshake (start, tune, open), then frames
//! read one at a time and turned into model commands (content frames assembled into the publish
//! they belong to), with a writer task that sends what the model's events become, heartbeats,
//! and closes the socket.
//!
//! Closing follows the specification: after the server sends `channel.close` it discards every
//! method on that channel but `channel.close-ok` (or a crossing `channel.close`); after it sends
//! `connection.close`, every frame but `connection.close-ok` (or a crossing close), and closes
//! the socket when it arrives or after a few seconds. A client's `connection.close` is answered
//! with close-ok, and the socket left for the client to close (as RabbitMQ leaves it; the server
//! closes it after a few seconds), a further close answered too. A frame that cannot be parsed is
//! answered with `connection.close` 501 and the socket is closed at once.
//!
//! One file for one concern, a connection: the handshake, the reader, the channels' states, content
//! assembly and the writer all act on the one connection's state and its close sequence; apart,
//! each would need the whole of it.

use super::access::Access;
use super::outbox::{self, Gauge, Inbox, Outbox};
use super::{Failure, Out, Quiet, Shared, State};
use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{basic, channel, connection, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use amqp_model::profile::{Permit, QosScope};
use amqp_model::{ChanRef, Command, ConnId, UsageError};
use amqp_wire::{FrameBuffer, FrameFault, Framed, Peer, Published, Request};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

/// The protocol header of AMQP 0-9-1.
const HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
/// How long a client has for the whole handshake (RabbitMQ's `handshake_timeout`).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server waits for `connection.close-ok` after its `connection.close`.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// The smallest frame-max a peer may negotiate (`frame-min-size`).
const FRAME_MIN: u32 = 4096;
/// The largest message body accepted (RabbitMQ 3.10's largest `max_message_size`); a larger one
/// closes the channel with 406, as RabbitMQ does.
const MAX_BODY: u64 = 512 * 1024 * 1024;

/// What reading the next frame came to.
enum Got {
    /// A frame, with its payload when it is a method frame (for fields amq-protocol drops).
    Frame(Box<AMQPFrame>, Vec<u8>),
    /// A frame that cannot be taken.
    Fault(Fault),
    /// The socket is gone (closed, failed, silent too long, or closed by the writer).
    Gone(&'static str),
}

/// A frame that cannot be taken ([`FrameFault`]): `Malformed` is 501, and the socket is
/// closed (a method frame of a known method whose arguments cannot be decoded names the method,
/// as RabbitMQ does); `Unknown`, a class or method AMQP 0-9-1 does not have, is 540.
type Fault = FrameFault;

/// The reading half of a connection, with what has been read and not yet parsed.
struct Reader {
    rd: Box<dyn AsyncRead + Send + Unpin>,
    buf: FrameBuffer,
    /// Frames larger than this are frame errors.
    frame_max: u32,
    /// Silence longer than this (twice the heartbeat) ends the connection.
    idle: Option<Duration>,
    /// Set by the writer when it has closed the socket.
    kill: watch::Receiver<bool>,
    /// The connection's backlog: while it is congested, nothing more is read.
    gauge: Gauge,
}

async fn idle_timer(idle: Option<Duration>) {
    match idle {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

impl Reader {
    /// Read more bytes (once the connection's backlog allows).
    async fn fill(&mut self) -> Result<(), &'static str> {
        if self.gauge.congested() {
            // The client is not reading what it is sent: stop reading what it sends until the
            // writer has caught up. Silence meanwhile is not the client's.
            while !self.gauge.relieved() {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    _ = self.kill.changed() => return Err("the server closed the socket"),
                }
            }
        }
        let buf = self.buf.bytes_mut();
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        tokio::select! {
            r = self.rd.read_buf(buf) => match r {
                Ok(0) => Err("the client closed the socket"),
                Ok(_) => Ok(()),
                Err(_) => Err("the socket failed"),
            },
            _ = idle_timer(self.idle) => Err("missed heartbeats from the client"),
            _ = self.kill.changed() => Err("the server closed the socket"),
        }
    }

    /// The protocol header: `Err(true)` for a wrong one, `Err(false)` when the socket went away.
    async fn protocol_header(&mut self) -> Result<(), bool> {
        loop {
            let pending = self.buf.pending();
            let n = pending.len().min(HEADER.len());
            if pending[..n] != HEADER[..n] {
                return Err(true);
            }
            if n == HEADER.len() {
                self.buf.consume(n);
                return Ok(());
            }
            self.fill().await.map_err(|_| false)?;
        }
    }

    /// The next frame, if the buffer holds a whole one.
    fn parse(&mut self) -> Option<Got> {
        Some(match self.buf.next(self.frame_max)? {
            Ok(Framed { frame, payload }) => Got::Frame(Box::new(frame), payload),
            Err(fault) => Got::Fault(fault),
        })
    }

    async fn next(&mut self) -> Got {
        loop {
            if let Some(got) = self.parse() {
                return got;
            }
            if let Err(why) = self.fill().await {
                return Got::Gone(why);
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A connection's writer: frames as they are queued (several queued ones in one write),
/// heartbeats when nothing else has been written for the interval, and the socket's close; a
/// write that cannot be finished within the send timeout closes the socket.
async fn writer(
    mut wr: Box<dyn AsyncWrite + Send + Unpin>,
    mut inbox: Inbox,
    kill: watch::Sender<bool>,
    shared: Arc<Shared>,
) {
    let send_timeout = shared.config.send_timeout;
    let mut heartbeat: Option<Duration> = None;
    let mut close_by: Option<Instant> = None;
    let mut last = Instant::now();
    let mut bytes = Vec::new();
    'run: loop {
        let beat = heartbeat.map(|h| last + h);
        let wake = match (beat, close_by) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let first = tokio::select! {
            m = inbox.rx.recv() => m,
            _ = sleep_until(wake) => {
                if close_by.is_some_and(|t| Instant::now() >= t) {
                    break 'run;
                }
                bytes.clear();
                amqp_wire::encode_into(&AMQPFrame::Heartbeat, &mut bytes);
                if !matches!(tokio::time::timeout(send_timeout, wr.write_all(&bytes)).await, Ok(Ok(()))) {
                    break 'run;
                }
                last = Instant::now();
                continue 'run;
            }
        };
        let Some(first) = first else { break };
        bytes.clear();
        let mut shutdown = false;
        let mut taken = 0;
        let mut next = Some(first);
        while let Some(m) = next {
            taken += outbox::weight(&m);
            match m {
                Out::Frames(frames) => {
                    for f in &frames {
                        amqp_wire::encode_into(f, &mut bytes);
                    }
                }
                // At half the negotiated interval, as RabbitMQ sends them (its documentation:
                // about every timeout/2): a client that gives up after one silent interval
                // still hears from an idle connection in time.
                Out::Heartbeat(secs) => heartbeat = (secs > 0).then(|| Duration::from_millis(500 * u64::from(secs))),
                Out::CloseWait => {
                    close_by.get_or_insert(Instant::now() + CLOSE_TIMEOUT);
                }
                Out::Shutdown => {
                    shutdown = true;
                    break;
                }
            }
            if bytes.len() > 1 << 20 {
                break;
            }
            next = inbox.rx.try_recv().ok();
        }
        // Held on demand (`Server::delay`), as a slow network would hold it.
        let delay = shared.delay_ms.load(std::sync::atomic::Ordering::Relaxed);
        if !bytes.is_empty() && delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if !bytes.is_empty() {
            match tokio::time::timeout(send_timeout, wr.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    shared.log(|| format!("a client read nothing for {send_timeout:?}: its socket is closed"));
                    break;
                }
            }
            last = Instant::now();
        }
        if inbox.written(taken) {
            shared.each_vhost(|_, state| state.resume());
        }
        if shutdown {
            break;
        }
    }
    let _ = wr.shutdown().await;
    let _ = kill.send(true);
}

/// A publish whose content is on its way.
struct Assembly {
    exchange: amqp_model::Name,
    routing_key: amqp_model::Name,
    mandatory: bool,
    /// The content header: body size and properties.
    header: Option<(u64, basic::AMQPProperties)>,
    body: Vec<u8>,
}

/// Whether to go on reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

struct Conn {
    shared: Arc<Shared>,
    addr: SocketAddr,
    out: Outbox,
    reader: Reader,
    /// The model's id, once the handshake is done.
    id: Option<ConnId>,
    channel_max: u16,
    peer: Peer,
    assembly: HashMap<u16, Assembly>,
    /// The client closed the connection and was answered: the socket is the client's to close
    /// (within [`CLOSE_TIMEOUT`]), and a further `connection.close` gets its close-ok too, as
    /// RabbitMQ answers each of several closes sent at once.
    closed_by_client: bool,
    /// The client takes `connection.blocked` and `connection.unblocked` (its capability).
    blocked_notify: bool,
    /// The user it logged in as.
    user: String,
    /// The virtual host it opened (`/` until it does).
    vhost: String,
    /// What the user may do there.
    access: Access,
}

/// Serve one connection (an accepted socket, or any byte stream) until it closes.
pub(super) async fn run<S>(stream: S, addr: SocketAddr, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let (rd, mut wr): (Box<dyn AsyncRead + Send + Unpin>, Box<dyn AsyncWrite + Send + Unpin>) =
        (Box::new(rd), Box::new(wr));
    let (kill_tx, kill_rx) = watch::channel(false);
    let frame_max = shared.config.tuning.frame_max.max(FRAME_MIN);
    let (out, inbox) = outbox::outbox();
    let gauge = inbox.gauge();
    let mut reader = Reader { rd, buf: FrameBuffer::new(), frame_max, idle: None, kill: kill_rx, gauge };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.protocol_header()).await {
        Ok(Ok(())) => {}
        Ok(Err(true)) => {
            // "the server MUST ... write a valid protocol header to the socket, then close it"
            shared.log(|| format!("{addr}: not an AMQP 0-9-1 protocol header: answered with 0-9-1's"));
            let _ = wr.write_all(HEADER).await;
            let _ = wr.shutdown().await;
            return;
        }
        Ok(Err(false)) | Err(_) => return,
    }
    tokio::spawn(writer(wr, inbox, kill_tx, shared.clone()));
    let peer = Peer { frame_max, cancel_notify: false };
    let mut conn = Conn {
        shared,
        addr,
        out,
        reader,
        id: None,
        channel_max: 0,
        peer,
        assembly: HashMap::new(),
        closed_by_client: false,
        blocked_notify: false,
        user: String::new(),
        vhost: "/".into(),
        access: Access::All,
    };
    if conn.handshake().await {
        conn.serve().await;
    }
}

impl Drop for Conn {
    /// The socket is done with (also when the task ends by a panic): the model drops the
    /// connection if it still has it open.
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        if let Some(mut state) = self.shared.lock_vhost(&self.vhost) {
            if std::thread::panicking() {
                // The model may be what failed: forget the connection without asking it anything.
                state.slots.remove(&id);
            } else {
                state.unregister(id);
            }
        }
        self.shared.release_id(id);
    }
}

fn is_publish(frame: &AMQPFrame) -> bool {
    matches!(frame, AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Publish(_))))
}

fn close_ok() -> AMQPFrame {
    AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})))
}

fn ids(class: &AMQPClass) -> (u16, u16) {
    (class.get_amqp_class_id(), class.get_amqp_method_id())
}

/// `connection.start` as RabbitMQ sends it, with the capabilities the model has.
fn start(shared: &Shared) -> AMQPFrame {
    let profile = shared.config.profile;
    let mut caps = FieldTable::default();
    caps.insert("publisher_confirms".into(), AMQPValue::Boolean(true));
    caps.insert("exchange_exchange_bindings".into(), AMQPValue::Boolean(true));
    caps.insert("basic.nack".into(), AMQPValue::Boolean(true));
    caps.insert("consumer_cancel_notify".into(), AMQPValue::Boolean(profile.cancel_notify != Permit::Refused));
    caps.insert("per_consumer_qos".into(), AMQPValue::Boolean(profile.qos_scope == QosScope::ConsumerAndChannel));
    caps.insert("authentication_failure_close".into(), AMQPValue::Boolean(true));
    // Publishers are blocked only on demand (`Server::block`, rare.rs), as by RabbitMQ's alarms.
    caps.insert("connection.blocked".into(), AMQPValue::Boolean(true));
    // RabbitMQ's extensions, where the profile has them (RabbitMQ 3.10.8 announces both, Q54).
    caps.insert("consumer_priorities".into(), AMQPValue::Boolean(profile.consumer_priorities));
    caps.insert("direct_reply_to".into(), AMQPValue::Boolean(profile.direct_reply_to));
    let text = |s: &str| AMQPValue::LongString(LongString::from(s));
    let mut props = FieldTable::default();
    props.insert("product".into(), text(&shared.config.product));
    props.insert("version".into(), text(env!("CARGO_PKG_VERSION")));
    props.insert("platform".into(), text("Rust"));
    props.insert("copyright".into(), text("the amqp-model authors, Apache-2.0"));
    props.insert(
        "information".into(),
        text(&format!("the executable model of AMQP 0-9-1 (profile {}) served over the wire", profile.name)),
    );
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    let start = connection::Start {
        version_major: 0,
        version_minor: 9,
        server_properties: props,
        // As RabbitMQ 3.10.8 offers them.
        mechanisms: LongString::from("PLAIN AMQPLAIN"),
        locales: LongString::from("en_US"),
    };
    AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(start)))
}

/// The user and password of a SASL PLAIN response (`authzid NUL authcid NUL password`).
fn plain(response: &[u8]) -> Option<(String, String)> {
    let mut parts = response.split(|b| *b == 0);
    let _authzid = parts.next()?;
    let user = parts.next()?;
    let password = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    Some((String::from_utf8(user.to_vec()).ok()?, String::from_utf8(password.to_vec()).ok()?))
}

/// The user and password of a SASL AMQPLAIN response (RabbitMQ's mechanism: a field table, written
/// without its length, of `LOGIN` and `PASSWORD`).
fn amqplain(response: &[u8]) -> Option<(String, String)> {
    let mut framed = u32::try_from(response.len()).ok()?.to_be_bytes().to_vec();
    framed.extend_from_slice(response);
    let (rest, table) = amq_protocol::types::parsing::parse_field_table(framed.as_slice()).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let text = |key: &str| match table.inner().get(key)? {
        AMQPValue::LongString(v) => String::from_utf8(v.as_bytes().to_vec()).ok(),
        AMQPValue::ShortString(v) => Some(v.as_str().to_string()),
        _ => None,
    };
    Some((text("LOGIN")?, text("PASSWORD")?))
}

/// The user and password of a `connection.start-ok`, by its mechanism (PLAIN or AMQPLAIN).
fn login(mechanism: &str, response: &[u8]) -> Option<(String, String)> {
    match mechanism {
        "PLAIN" => plain(response),
        "AMQPLAIN" => amqplain(response),
        _ => None,
    }
}

/// Whether the client's properties announce `capability` (`consumer_cancel_notify`: it takes a
/// server `basic.cancel`; `authentication_failure_close`: it wants a failed login closed with 403).
fn client_has(client_properties: &FieldTable, capability: &str) -> bool {
    match client_properties.inner().get("capabilities") {
        Some(AMQPValue::FieldTable(caps)) => matches!(caps.inner().get(capability), Some(AMQPValue::Boolean(true))),
        _ => false,
    }
}

impl Conn {
    fn send(&self, frames: Vec<AMQPFrame>) {
        self.out.send(Out::Frames(frames));
    }

    fn shutdown(&self) {
        self.out.send(Out::Shutdown);
    }

    /// The state of the connection's virtual host.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock_vhost(&self.vhost).expect("its virtual host")
    }

    fn who(&self) -> String {
        match self.id {
            Some(id) => format!("{} (c{})", self.addr, id.0),
            None => self.addr.to_string(),
        }
    }

    /// Close the connection during the handshake: send `frame` (a `connection.close`), wait a
    /// little for the client's close-ok, then close the socket.
    async fn close_and_wait(&mut self, frame: AMQPFrame) {
        self.send(vec![frame]);
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.reader.next()).await {
                Ok(Got::Frame(frame, _)) => *frame,
                Ok(Got::Fault(_) | Got::Gone(_)) | Err(_) => break,
            };
            match frame {
                AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => break,
                AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(_))) => {
                    self.send(vec![close_ok()]);
                    break;
                }
                _ => {}
            }
        }
        self.shutdown();
    }

    /// Read the next connection method of the handshake; what `pick` refuses is answered with
    /// 503, a close from the client with close-ok.
    async fn expect<T>(
        &mut self,
        deadline: Instant,
        what: &str,
        pick: impl Fn(connection::AMQPMethod) -> Result<T, connection::AMQPMethod>,
    ) -> Option<T> {
        loop {
            let got = match tokio::time::timeout_at(deadline, self.reader.next()).await {
                Ok(got) => got,
                Err(_) => {
                    self.shared.log(|| format!("{}: handshake timed out waiting for {what}", self.who()));
                    self.shutdown();
                    return None;
                }
            };
            let frame = match got {
                Got::Frame(frame, _) => *frame,
                Got::Gone(_) => return None,
                Got::Fault(Fault::Malformed(why, (class_id, method_id))) => {
                    self.shared.log(|| format!("{}: {why}", self.who()));
                    self.send(vec![amqp_wire::connection_close(501, &why, class_id, method_id)]);
                    self.shutdown();
                    return None;
                }
                Got::Fault(Fault::Unknown { class_id, method_id }) => {
                    let text = format!("unknown method {class_id}.{method_id}");
                    self.shared.log(|| format!("{}: handshake refused: 540 {text}", self.who()));
                    self.close_and_wait(amqp_wire::connection_close(540, &text, class_id, method_id)).await;
                    return None;
                }
            };
            let refused = match frame {
                AMQPFrame::Heartbeat => continue,
                AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(_))) => {
                    self.send(vec![close_ok()]);
                    self.shutdown();
                    return None;
                }
                AMQPFrame::Method(0, AMQPClass::Connection(m)) => match pick(m) {
                    Ok(t) => return Some(t),
                    Err(m) => {
                        let (class_id, method_id) = ids(&AMQPClass::Connection(m));
                        (503, format!("expected {what}"), class_id, method_id)
                    }
                },
                AMQPFrame::Method(_, class) => {
                    let (class_id, method_id) = ids(&class);
                    (503, format!("expected {what}"), class_id, method_id)
                }
                _ => (505, format!("expected {what}"), 0, 0),
            };
            let (code, text, class_id, method_id) = refused;
            self.shared.log(|| format!("{}: handshake refused: {code} {text}", self.who()));
            self.close_and_wait(amqp_wire::connection_close(code, &text, class_id, method_id)).await;
            return None;
        }
    }

    /// Start, start-ok (SASL PLAIN or AMQPLAIN against the configured users), tune, tune-ok, open (virtual
    /// host `/`), open-ok; true when the connection is open in the model.
    async fn handshake(&mut self) -> bool {
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        self.send(vec![start(&self.shared)]);
        let pick_start_ok = |m| match m {
            connection::AMQPMethod::StartOk(s) => Ok(s),
            m => Err(m),
        };
        let Some(start_ok) = self.expect(deadline, "connection.start-ok", pick_start_ok).await else { return false };
        let login = login(start_ok.mechanism.as_str(), start_ok.response.as_bytes());
        let allowed = login
            .as_ref()
            .is_some_and(|(u, p)| self.shared.config.users.iter().any(|x| x.name == *u && x.password == *p));
        if !allowed {
            let user = login.map_or_else(|| "?".to_string(), |(u, _)| u);
            self.shared
                .log(|| format!("{}: login refused for user `{user}` (mechanism {})", self.who(), start_ok.mechanism));
            // As RabbitMQ 3.10.8 does (Q57): a 403 close to a client that announces
            // authentication_failure_close, the socket closed without a word to any other.
            if client_has(&start_ok.client_properties, "authentication_failure_close") {
                let text = format!(
                    "Login was refused using authentication mechanism {}. For details see the broker logfile.",
                    start_ok.mechanism
                );
                self.close_and_wait(amqp_wire::connection_close(403, &text, 0, 0)).await;
            } else {
                self.shutdown();
            }
            return false;
        }
        self.user = login.map(|(u, _)| u).unwrap_or_default();
        self.peer.cancel_notify = client_has(&start_ok.client_properties, "consumer_cancel_notify");
        self.blocked_notify = client_has(&start_ok.client_properties, "connection.blocked");
        let t = self.shared.config.tuning;
        let tune = connection::Tune { channel_max: t.channel_max, frame_max: t.frame_max, heartbeat: t.heartbeat };
        self.send(vec![AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(tune)))]);
        let pick_tune_ok = |m| match m {
            connection::AMQPMethod::TuneOk(t) => Ok(t),
            m => Err(m),
        };
        let Some(tune_ok) = self.expect(deadline, "connection.tune-ok", pick_tune_ok).await else { return false };
        // Zero is "no limit" on either side; otherwise the smaller value holds.
        let smaller = |ours: u32, theirs: u32| match (ours, theirs) {
            (0, t) => t,
            (o, 0) => o,
            (o, t) => o.min(t),
        };
        self.channel_max = match smaller(u32::from(t.channel_max), u32::from(tune_ok.channel_max)) {
            0 => u16::MAX,
            c => c as u16,
        };
        let frame_max = match smaller(t.frame_max, tune_ok.frame_max) {
            0 => u32::MAX,
            f => f,
        };
        if frame_max < FRAME_MIN {
            let text = format!("frame_max={frame_max} < {FRAME_MIN} min size");
            self.close_and_wait(amqp_wire::connection_close(530, &text, 10, 31)).await;
            return false;
        }
        self.peer.frame_max = frame_max;
        self.reader.frame_max = frame_max;
        let heartbeat = tune_ok.heartbeat;
        self.reader.idle = (heartbeat > 0).then(|| Duration::from_secs(2 * u64::from(heartbeat)));
        self.out.send(Out::Heartbeat(heartbeat));
        let pick_open = |m| match m {
            connection::AMQPMethod::Open(o) => Ok(o),
            m => Err(m),
        };
        let Some(open) = self.expect(deadline, "connection.open", pick_open).await else { return false };
        // As RabbitMQ 3.10.8 refuses them (Q60): a virtual host that does not exist, and one the
        // user has no permission in (`connection open virtual-host security`).
        let vhost = open.virtual_host.as_str().to_string();
        let refused = if self.shared.lock_vhost(&vhost).is_none() {
            Some(format!("vhost {vhost} not found"))
        } else {
            match super::access::access(&self.shared.config.permissions, &self.user, &vhost) {
                Some(access) => {
                    self.access = access;
                    None
                }
                None => Some(format!(
                    "access to vhost '{vhost}' refused for user '{}' (connection open virtual-host security)",
                    self.user
                )),
            }
        };
        if let Some(text) = refused {
            self.shared.log(|| format!("{}: {text}", self.who()));
            self.close_and_wait(amqp_wire::connection_close(530, &text, 10, 40)).await;
            return false;
        }
        self.vhost = vhost;
        let shared = self.shared.clone();
        let registered = match shared.take_id() {
            None => false,
            Some(id) => {
                let mut state = shared.lock_vhost(&self.vhost).expect("checked above");
                state.register(id, self.out.clone(), self.peer, self.addr);
                self.id = Some(id);
                if let Err(e) = state.execute(&Command::ConnectionOpen { conn: id }, None, Quiet::No) {
                    shared.log(|| format!("{}: connection.open: {e}", self.who()));
                    state.slots.remove(&id);
                    shared.release_id(id);
                    self.id = None;
                }
                self.id.is_some()
            }
        };
        if !registered {
            self.close_and_wait(amqp_wire::connection_close(530, "no connection id is free", 10, 40)).await;
        }
        registered
    }

    /// Frames until the connection ends.
    async fn serve(&mut self) {
        loop {
            let flow = match self.reader.next().await {
                Got::Gone(why) => {
                    let open = self.id.is_some_and(|id| self.state().slots.get(&id).is_some_and(|s| s.model_open));
                    if open {
                        self.shared.log(|| format!("{}: {why} without connection.close: dropped", self.who()));
                    }
                    Flow::Stop
                }
                Got::Fault(fault) => {
                    let shared = self.shared.clone();
                    let mut state = shared.lock_vhost(&self.vhost).expect("its virtual host");
                    match fault {
                        Fault::Malformed(why, cause) => self.hard_close(&mut state, 501, &why, cause, true),
                        Fault::Unknown { class_id, method_id } => {
                            let text = format!("unknown method {class_id}.{method_id}");
                            self.hard_close(&mut state, 540, &text, (class_id, method_id), false)
                        }
                    }
                }
                Got::Frame(frame, payload) => {
                    if is_publish(&frame) && self.shared.alarm.borrow().is_some() && !self.blocked().await {
                        return;
                    }
                    self.frame(*frame, &payload)
                }
            };
            if flow == Flow::Stop {
                return;
            }
        }
    }

    /// A publish while the broker's resource alarm is raised (`Server::block`): as RabbitMQ
    /// 3.10.8 does (Q59), `connection.blocked` with the alarm's reason (to a client that takes
    /// it), and nothing more is read, the publish included, until the alarm clears; then
    /// `connection.unblocked`. Silence meanwhile is not the client's (nothing is read). False
    /// when the socket went away meanwhile.
    async fn blocked(&mut self) -> bool {
        let mut alarm = self.shared.alarm.subscribe();
        let reason = alarm.borrow_and_update().clone();
        let Some(reason) = reason else { return true };
        self.shared.log(|| format!("{}: blocked ({reason})", self.who()));
        if self.blocked_notify {
            let blocked = connection::Blocked { reason: reason.as_str().into() };
            self.send(vec![AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Blocked(blocked)))]);
        }
        loop {
            if alarm.borrow_and_update().is_none() {
                break;
            }
            tokio::select! {
                changed = alarm.changed() => if changed.is_err() { return false },
                _ = self.reader.kill.changed() => return false,
            }
        }
        self.shared.log(|| format!("{}: unblocked", self.who()));
        if self.blocked_notify {
            let unblocked = connection::AMQPMethod::Unblocked(connection::Unblocked {});
            self.send(vec![AMQPFrame::Method(0, AMQPClass::Connection(unblocked))]);
        }
        true
    }

    /// A connection exception the server raises itself (not from the model): the model drops
    /// the connection (requeueing its unacked messages), and the client gets `connection.close`;
    /// with `now` the socket is closed at once, otherwise when the close-ok arrives.
    fn hard_close(&self, state: &mut State, code: u16, detail: &str, cause: (u16, u16), now: bool) -> Flow {
        let Some(id) = self.id else { return Flow::Stop };
        let open = state.slots.get(&id).is_some_and(|s| s.model_open);
        if open {
            self.shared.log(|| format!("{}: connection.close {code} {detail}", self.who()));
            let _ = state.execute(&Command::ConnectionDrop { conn: id }, None, Quiet::No);
            if let Some(slot) = state.slots.get_mut(&id) {
                slot.model_open = false;
            }
            state.send(id, Out::Frames(vec![amqp_wire::connection_close(code, detail, cause.0, cause.1)]));
        }
        if now || !open {
            state.send(id, Out::Shutdown);
            Flow::Stop
        } else {
            state.send(id, Out::CloseWait);
            Flow::Go
        }
    }

    /// A channel exception the server raises itself: the model closes the channel as if the
    /// client had (requeueing its unacked messages), and the client gets `channel.close`.
    fn channel_error(&self, state: &mut State, ch: ChanRef, code: u16, detail: &str, cause: (u16, u16)) -> Flow {
        self.shared.log(|| format!("{}: channel {} closed: {code} {detail}", self.who(), ch.channel));
        if let Err(e) = state.execute(&Command::ChannelClose { ch }, None, Quiet::CloseOk) {
            return self.usage_error(state, e, cause);
        }
        if let Some(slot) = state.slots.get_mut(&ch.conn).filter(|s| s.model_open) {
            slot.out.send(Out::Frames(vec![amqp_wire::channel_close(ch.channel, code, detail, cause.0, cause.1)]));
            slot.closing.insert(ch.channel);
        }
        Flow::Go
    }

    /// The model could not take a command the client sent: the closest reply (503 for a
    /// connection that is, or is not, open already; 541 when the model failed).
    fn usage_error(&self, state: &mut State, e: Failure, cause: (u16, u16)) -> Flow {
        self.shared.log(|| format!("{}: {e}", self.who()));
        let code = match &e {
            Failure::Usage(UsageError::AlreadyConnected(_) | UsageError::NotConnected(_)) => 503,
            Failure::Usage(_) => 540,
            Failure::Internal(_) => 541,
        };
        let detail = match &e {
            Failure::Usage(u) => u.to_string(),
            Failure::Internal(_) => "the reference model failed".to_string(),
        };
        self.hard_close(state, code, &detail, cause, false)
    }

    /// Apply a command, sending what the model does.
    fn execute(&self, state: &mut State, cmd: &Command, wire: Option<Arc<Published>>, quiet: Quiet) -> Flow {
        // The command may have set something to expire sooner than the clock task expects.
        self.shared.wake.notify_one();
        match state.execute(cmd, wire, quiet) {
            Ok(()) => Flow::Go,
            Err(e) => self.usage_error(state, e, cmd.method().map_or((0, 0), |m| m.ids())),
        }
    }

    fn frame(&mut self, frame: AMQPFrame, payload: &[u8]) -> Flow {
        let Some(id) = self.id else { return Flow::Stop };
        let shared = self.shared.clone();
        let mut guard = shared.lock_vhost(&self.vhost).expect("its virtual host");
        let state = &mut *guard;
        let Some(slot) = state.slots.get(&id) else { return Flow::Stop };
        if self.closed_by_client {
            // Answered: only another close of the client's counts, and gets its close-ok.
            if let AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(_))) = frame {
                state.send(id, Out::Frames(vec![close_ok()]));
            }
            return Flow::Go;
        }
        if !slot.model_open {
            // The connection is closing: only the client's close-ok (or a crossing close) counts.
            return match frame {
                AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => {
                    state.send(id, Out::Shutdown);
                    Flow::Stop
                }
                AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(_))) => {
                    state.send(id, Out::Frames(vec![close_ok()]));
                    state.send(id, Out::Shutdown);
                    Flow::Stop
                }
                _ => Flow::Go,
            };
        }
        match frame {
            AMQPFrame::Heartbeat => Flow::Go,
            AMQPFrame::InvalidHeartbeat(n) => {
                self.hard_close(state, 501, &format!("heartbeat frame on channel {n}"), (0, 0), true)
            }
            AMQPFrame::ProtocolHeader(_) => self.hard_close(state, 501, "protocol header mid-stream", (0, 0), true),
            AMQPFrame::Method(0, AMQPClass::Connection(m)) => self.connection_method(state, m),
            AMQPFrame::Method(0, class) => {
                self.hard_close(state, 503, "a channel method on channel 0", ids(&class), false)
            }
            AMQPFrame::Method(n, class) => self.channel_method(state, n, class, payload),
            AMQPFrame::Header(n, header) => self.header(state, n, header),
            AMQPFrame::Body(n, body) => self.body(state, n, body),
        }
    }

    fn connection_method(&mut self, state: &mut State, m: connection::AMQPMethod) -> Flow {
        let id = self.id.expect("registered");
        let class = AMQPClass::Connection(m);
        let cause = ids(&class);
        let AMQPClass::Connection(m) = class else { unreachable!() };
        match m {
            connection::AMQPMethod::Close(_) => {
                if state.execute(&Command::ConnectionClose { conn: id }, None, Quiet::No).is_err() {
                    state.send(id, Out::Frames(vec![close_ok()]));
                    state.send(id, Out::Shutdown);
                    return Flow::Stop;
                }
                self.closed_by_client = true;
                Flow::Go
            }
            connection::AMQPMethod::CloseOk(_) => Flow::Go,
            // A second open: the model's usage error (already connected) says what it is.
            connection::AMQPMethod::Open(_) => {
                self.execute(state, &Command::ConnectionOpen { conn: id }, None, Quiet::No)
            }
            // RabbitMQ's extension for clients that refresh their credentials: 3.10.8 with its
            // internal users answers update-secret-ok whatever the new secret (Q55); so does
            // the reference broker, whose one user's password does not expire.
            connection::AMQPMethod::UpdateSecret(_) => {
                let ok = connection::AMQPMethod::UpdateSecretOk(connection::UpdateSecretOk {});
                state.send(id, Out::Frames(vec![AMQPFrame::Method(0, AMQPClass::Connection(ok))]));
                Flow::Go
            }
            connection::AMQPMethod::Blocked(_)
            | connection::AMQPMethod::Unblocked(_)
            | connection::AMQPMethod::UpdateSecretOk(_) => {
                self.hard_close(state, 540, "not implemented by the reference model", cause, false)
            }
            _ => self.hard_close(state, 503, "a handshake method on an open connection", cause, false),
        }
    }

    fn channel_method(&mut self, state: &mut State, n: u16, class: AMQPClass, payload: &[u8]) -> Flow {
        let id = self.id.expect("registered");
        let ch = ChanRef { conn: id, channel: n };
        let cause = ids(&class);
        if let Some(slot) = state.slots.get_mut(&id).filter(|s| s.closing.contains(&n)) {
            // The server closed this channel: everything but its close-ok is discarded.
            match class {
                AMQPClass::Channel(channel::AMQPMethod::CloseOk(_)) => {
                    slot.closing.remove(&n);
                }
                // A close crossing the server's: answered, and the channel stays closing until
                // the client's close-ok for the server's close (`channel close stability`).
                AMQPClass::Channel(channel::AMQPMethod::Close(_)) => {
                    let ok =
                        AMQPFrame::Method(n, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})));
                    slot.out.send(Out::Frames(vec![ok]));
                }
                _ => {}
            }
            self.assembly.remove(&n);
            return Flow::Go;
        }
        if self.assembly.contains_key(&n) {
            let text = format!("expected content on channel {n}, got method {}.{}", cause.0, cause.1);
            return self.hard_close(state, 505, &text, cause, false);
        }
        if n > self.channel_max && matches!(class, AMQPClass::Channel(channel::AMQPMethod::Open(_))) {
            let text = format!("channel {n} is above the negotiated channel_max ({})", self.channel_max);
            return self.hard_close(state, 530, &text, cause, false);
        }
        // `no-local` is taken and ignored under `rabbitmq`, refused with 540 under `spec`
        // (wire/src/request.rs).
        match amqp_wire::request(self.shared.config.profile.name, ch, &class, payload) {
            Request::Ignore => Flow::Go,
            Request::Refuse { code, text } => self.hard_close(state, code.code(), &text, cause, false),
            Request::FlowActive if state.broker.channel(ch).is_none() => {
                self.hard_close(state, 504, &format!("channel {n} is not open"), cause, false)
            }
            Request::AccessRequest if state.broker.channel(ch).is_none() => {
                self.hard_close(state, 504, &format!("channel {n} is not open"), cause, false)
            }
            Request::AccessRequest => {
                let ok = amq_protocol::protocol::access::AMQPMethod::RequestOk(Default::default());
                state.send(id, Out::Frames(vec![AMQPFrame::Method(n, AMQPClass::Access(ok))]));
                Flow::Go
            }
            Request::FlowActive => {
                let ok = channel::AMQPMethod::FlowOk(channel::FlowOk { active: true });
                state.send(id, Out::Frames(vec![AMQPFrame::Method(n, AMQPClass::Channel(ok))]));
                Flow::Go
            }
            // The model sees a publish only once its content is complete: a publish on a channel
            // that is not open is its 504 now, before any content.
            Request::Publish { .. } if state.broker.channel(ch).is_none() => {
                self.hard_close(state, 504, &format!("channel {n} is not open"), cause, false)
            }
            Request::Publish { exchange, routing_key, mandatory } => {
                // The user's write permission on the exchange (its content is then discarded
                // with the closed channel's other frames).
                let publish = Command::BasicPublish {
                    ch,
                    exchange: exchange.clone(),
                    routing_key: routing_key.clone(),
                    mandatory,
                    content: Default::default(),
                };
                if let Some(refused) = self.access.refuses(&state.broker, &publish) {
                    return self.channel_error(state, ch, 403, &refused.text(&self.vhost, &self.user), cause);
                }
                self.assembly.insert(n, Assembly { exchange, routing_key, mandatory, header: None, body: Vec::new() });
                Flow::Go
            }
            Request::Command { command, nowait } => {
                // The user's permissions first, before the broker looks anything up (Q60).
                let open = state.broker.channel(ch).is_some();
                if let Some(refused) = self.access.refuses(&state.broker, &command).filter(|_| open) {
                    return self.channel_error(state, ch, 403, &refused.text(&self.vhost, &self.user), cause);
                }
                let quiet = if nowait { Quiet::Reply } else { Quiet::No };
                self.execute(state, &command, None, quiet)
            }
        }
    }

    fn closing(&self, state: &State, n: u16) -> bool {
        self.id.and_then(|id| state.slots.get(&id)).is_some_and(|s| s.closing.contains(&n))
    }

    fn header(&mut self, state: &mut State, n: u16, header: AMQPContentHeader) -> Flow {
        if self.closing(state, n) {
            return Flow::Go;
        }
        let publish = (60, 40);
        let Some(a) = self.assembly.get_mut(&n) else {
            return self.hard_close(
                state,
                505,
                &format!("content header on channel {n} without a publish"),
                (0, 0),
                false,
            );
        };
        if a.header.is_some() || header.class_id != 60 {
            let text = format!("unexpected content header (class {}) on channel {n}", header.class_id);
            return self.hard_close(state, 505, &text, publish, false);
        }
        if header.body_size > MAX_BODY {
            self.assembly.remove(&n);
            let text = format!("message size {} is larger than configured max size {MAX_BODY}", header.body_size);
            let ch = ChanRef { conn: self.id.expect("registered"), channel: n };
            return self.channel_error(state, ch, 406, &text, publish);
        }
        a.body.reserve(header.body_size.min(1 << 20) as usize);
        a.header = Some((header.body_size, header.properties));
        if header.body_size == 0 {
            return self.publish(state, n);
        }
        Flow::Go
    }

    fn body(&mut self, state: &mut State, n: u16, body: Vec<u8>) -> Flow {
        if self.closing(state, n) {
            return Flow::Go;
        }
        let size = match self.assembly.get(&n).map(|a| a.header.as_ref().map(|h| h.0)) {
            Some(Some(size)) => size,
            _ => {
                let text = format!("content body on channel {n} without a content header");
                return self.hard_close(state, 505, &text, (0, 0), false);
            }
        };
        let a = self.assembly.get_mut(&n).expect("checked");
        a.body.extend_from_slice(&body);
        let got = a.body.len() as u64;
        if got > size {
            let text = format!("content body of {got} octets on channel {n}, the header said {size}");
            return self.hard_close(state, 505, &text, (60, 40), false);
        }
        if got == size {
            return self.publish(state, n);
        }
        Flow::Go
    }

    /// A publish whose content is complete.
    fn publish(&mut self, state: &mut State, n: u16) -> Flow {
        let Some(a) = self.assembly.remove(&n) else { return Flow::Go };
        let Some((_, props)) = a.header else { return Flow::Go };
        let wire = Published { props, body: a.body };
        let command = Command::BasicPublish {
            ch: ChanRef { conn: self.id.expect("registered"), channel: n },
            exchange: a.exchange,
            routing_key: a.routing_key,
            mandatory: a.mandatory,
            content: amqp_wire::model_content(&wire.props, &wire.body),
        };
        self.execute(state, &command, Some(Arc::new(wire)), Quiet::No)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_responses() {
        assert_eq!(plain(b"\0guest\0guest"), Some(("guest".into(), "guest".into())));
        assert_eq!(plain(b"admin\0u\0p"), Some(("u".into(), "p".into())));
        assert_eq!(plain(b"guest"), None);
    }

    #[test]
    fn amqplain_responses() {
        use amq_protocol::auth::{Credentials, SASLMechanism};
        let written = Credentials::new("guest".into(), "secret".into()).sasl_auth_string(SASLMechanism::AMQPlain);
        let expected = Some(("guest".to_string(), "secret".to_string()));
        assert_eq!(login("AMQPLAIN", written.as_bytes()), expected);
        assert_eq!(login("PLAIN", written.as_bytes()), None);
        assert_eq!(login("AMQPLAIN", b"\0guest\0guest"), None);
        assert_eq!(login("EXTERNAL", b""), None);
    }
}
