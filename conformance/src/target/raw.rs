//! A raw-frame target for what lapin will not send: a second `channel.open` on an open channel,
//! or a method on a channel that is not open. It speaks AMQP 0-9-1 itself over a plain TCP
//! socket, with amq-protocol's frame codec, and performs only the commands those traces need:
//! `connection.open` (the handshake), `connection.close`, `drop`, `channel.open` and
//! `channel.close`, `queue.declare`, `basic.publish` and `basic.get`. Any other command makes the
//! trace incomplete. Names are prefixed and cleaned up as by [`LiveTarget`].
//!
//! It is synchronous: each method is written, then frames are read until its reply (or a close)
//! arrives, within the timeout. Deliveries are never expected (it sends no `basic.consume`).

use crate::run::{Hint, Listen, Target};
use crate::target::live::{LiveTarget, Timing};
use crate::target::probe::redact;
use amq_protocol::frame::{gen_frame, parse_frame, AMQPContentHeader, AMQPFrame, ProtocolVersion};
use amq_protocol::protocol::{basic, channel, connection, queue, AMQPClass};
use amq_protocol::types::{FieldTable, LongString, ShortString};
use amqp_model::event::Reply;
use amqp_model::types::MessageData;
use amqp_model::{ChanRef, Command, ConnId, Content, Event, Message, Method, MsgId, Name, ReplyCode};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One raw connection.
struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet parsed.
    buf: Vec<u8>,
    /// The last method sent on each channel (what a close names).
    last: BTreeMap<u16, Method>,
}

/// A trace target that writes frames itself (see the module documentation).
pub struct RawTarget {
    uri: String,
    timing: Timing,
    /// For the names, the prefix and the cleanup.
    live: LiveTarget,
    conns: BTreeMap<ConnId, Conn>,
    queues: BTreeSet<String>,
    events: Vec<Event>,
    incomplete: Option<String>,
    problems: Vec<String>,
}

impl std::fmt::Debug for RawTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawTarget")
            .field("uri", &redact(&self.uri))
            .field("prefix", &self.live.prefix())
            .field("connections", &self.conns.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What reading for a reply came to.
enum Read1 {
    Frame(Box<AMQPFrame>),
    Closed,
    TimedOut,
}

impl RawTarget {
    /// A raw target for the broker at `uri`, with `timing`.
    pub fn new(uri: &str, timing: Timing) -> Self {
        RawTarget {
            uri: uri.to_string(),
            timing,
            live: LiveTarget::new(uri, timing),
            conns: BTreeMap::new(),
            queues: BTreeSet::new(),
            events: Vec::new(),
            incomplete: None,
            problems: Vec::new(),
        }
    }

    /// Why the trace could not be performed whole, if it could not.
    pub fn incomplete(&self) -> Option<&str> {
        self.incomplete.as_deref()
    }

    /// What went wrong other than the broker's answers.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Close the connections and delete the queues the trace declared (through the live
    /// target's cleanup).
    pub fn finish(&mut self) -> Result<(), String> {
        self.conns.clear();
        self.live.adopt_queues(std::mem::take(&mut self.queues));
        self.live.finish()
    }

    fn send(&mut self, conn: ConnId, frames: &[AMQPFrame]) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else { return false };
        let mut bytes = Vec::new();
        for f in frames {
            match cookie_factory::gen(gen_frame(f), Vec::new()) {
                Ok((b, _)) => bytes.extend(b),
                Err(e) => {
                    self.problems.push(format!("c{}: cannot encode a frame: {e:?}", conn.0));
                    return false;
                }
            }
        }
        c.stream.write_all(&bytes).is_ok()
    }

    fn read(&mut self, conn: ConnId, deadline: Instant) -> Read1 {
        let Some(c) = self.conns.get_mut(&conn) else { return Read1::Closed };
        loop {
            if !c.buf.is_empty() {
                if let Ok((rest, frame)) = parse_frame(c.buf.as_slice()) {
                    let used = c.buf.len() - rest.len();
                    c.buf.drain(..used);
                    return Read1::Frame(Box::new(frame));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Read1::TimedOut;
            }
            let _ = c.stream.set_read_timeout(Some(deadline - now));
            let mut chunk = [0u8; 65536];
            match c.stream.read(&mut chunk) {
                Ok(0) => return Read1::Closed,
                Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Read1::TimedOut
                }
                Err(_) => return Read1::Closed,
            }
        }
    }

    /// Read frames until `want` accepts one (returning what it made of it), reporting closes.
    fn await_reply<T>(
        &mut self,
        conn: ConnId,
        ch: u16,
        what: &str,
        mut want: impl FnMut(&mut Self, &AMQPFrame) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + self.timing.timeout;
        loop {
            match self.read(conn, deadline) {
                Read1::Frame(f) => {
                    if let Some(v) = want(self, &f) {
                        return Some(v);
                    }
                    if self.server_close(conn, &f) {
                        return None;
                    }
                }
                Read1::Closed => {
                    self.conns.remove(&conn);
                    return None;
                }
                Read1::TimedOut => {
                    self.problems
                        .push(format!("c{}.{ch}: no answer to {what} within {:?}", conn.0, self.timing.timeout));
                    self.conns.remove(&conn);
                    return None;
                }
            }
        }
    }

    /// A server close: report it, answer it, and say whether it was one.
    fn server_close(&mut self, conn: ConnId, frame: &AMQPFrame) -> bool {
        match frame {
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
                let method = self.conns.get(&conn).and_then(|c| c.last.get(&0).copied());
                let close_ok = AMQPFrame::Method(
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
                );
                self.send(conn, &[close_ok]);
                self.conns.remove(&conn);
                if let Some(code) = ReplyCode::from_code(c.reply_code) {
                    self.events.push(Event::ConnectionClosed { conn, code, method });
                }
                true
            }
            AMQPFrame::Method(id, AMQPClass::Channel(channel::AMQPMethod::Close(c))) => {
                let method = self.conns.get(&conn).and_then(|c| c.last.get(id).copied()).unwrap_or(Method::ChannelOpen);
                let close_ok =
                    AMQPFrame::Method(*id, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})));
                self.send(conn, &[close_ok]);
                if let Some(code) = ReplyCode::from_code(c.reply_code) {
                    self.events.push(Event::ChannelClosed { ch: ChanRef { conn, channel: *id }, code, method });
                }
                true
            }
            _ => false,
        }
    }

    fn method(&mut self, ch: ChanRef, method: Method, class: AMQPClass) -> bool {
        let id = ch.channel;
        if let Some(c) = self.conns.get_mut(&ch.conn) {
            c.last.insert(id, method);
            c.last.insert(0, method);
        }
        self.send(ch.conn, &[AMQPFrame::Method(id, class)])
    }

    fn open(&mut self, conn: ConnId) {
        let parsed: amq_protocol::uri::AMQPUri = match self.uri.parse() {
            Ok(u) => u,
            Err(e) => {
                self.problems.push(format!("c{}: bad URI {}: {e}", conn.0, redact(&self.uri)));
                return;
            }
        };
        let addr = format!("{}:{}", parsed.authority.host, parsed.authority.port);
        let stream = match TcpStream::connect(&addr) {
            Ok(s) => s,
            Err(e) => {
                self.problems.push(format!("c{}: cannot connect to {addr}: {e}", conn.0));
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        self.conns.insert(conn, Conn { stream, buf: Vec::new(), last: BTreeMap::new() });
        self.send(conn, &[AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1())]);
        let started = self.await_reply(conn, 0, "the protocol header", |_, f| {
            matches!(f, AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(_)))).then_some(())
        });
        if started.is_none() {
            return;
        }
        let (user, pass) = (parsed.authority.userinfo.username.clone(), parsed.authority.userinfo.password.clone());
        let response = format!("\0{user}\0{pass}");
        let start_ok = connection::StartOk {
            client_properties: FieldTable::default(),
            mechanism: ShortString::from("PLAIN"),
            response: LongString::from(response.as_bytes()),
            locale: ShortString::from("en_US"),
        };
        self.send(conn, &[AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::StartOk(start_ok)))]);
        let tune = self.await_reply(conn, 0, "connection.start-ok", |_, f| match f {
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(t))) => Some(t.clone()),
            _ => None,
        });
        let Some(tune) = tune else { return };
        let tune_ok = connection::TuneOk { channel_max: tune.channel_max, frame_max: tune.frame_max, heartbeat: 0 };
        let open = connection::Open { virtual_host: ShortString::from(parsed.vhost.clone()) };
        self.send(
            conn,
            &[
                AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune_ok))),
                AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Open(open))),
            ],
        );
        let opened = self.await_reply(conn, 0, "connection.open", |_, f| {
            matches!(f, AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)))).then_some(())
        });
        if opened.is_some() {
            self.events.push(Event::ConnectionOpenOk { conn });
        }
    }

    fn perform(&mut self, command: &Command) {
        use Command::*;
        match command {
            ConnectionOpen { conn } => self.open(*conn),
            ConnectionClose { conn } => {
                if let Some(c) = self.conns.get_mut(conn) {
                    c.last.insert(0, Method::ConnectionClose);
                }
                let close = connection::Close { reply_code: 200, reply_text: "OK".into(), class_id: 0, method_id: 0 };
                self.send(*conn, &[AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(close)))]);
                let ok = self.await_reply(*conn, 0, "connection.close", |_, f| {
                    matches!(f, AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))))
                        .then_some(())
                });
                if ok.is_some() {
                    self.conns.remove(conn);
                    self.events.push(Event::ConnectionCloseOk { conn: *conn });
                }
            }
            ConnectionDrop { conn } => {
                self.conns.remove(conn);
            }
            ChannelOpen { ch } => {
                let class = AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}));
                if self.method(*ch, Method::ChannelOpen, class) {
                    let id = ch.channel;
                    let ok = self.await_reply(ch.conn, id, "channel.open", |_, f| {
                        matches!(f, AMQPFrame::Method(i, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))) if *i == id)
                            .then_some(())
                    });
                    if ok.is_some() {
                        self.events.push(Event::ChannelOpenOk { ch: *ch });
                    }
                }
            }
            ChannelClose { ch } => {
                let close = channel::Close { reply_code: 200, reply_text: "OK".into(), class_id: 0, method_id: 0 };
                if self.method(*ch, Method::ChannelClose, AMQPClass::Channel(channel::AMQPMethod::Close(close))) {
                    let id = ch.channel;
                    let ok = self.await_reply(ch.conn, id, "channel.close", |_, f| {
                        matches!(f, AMQPFrame::Method(i, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))) if *i == id)
                            .then_some(())
                    });
                    if ok.is_some() {
                        self.events.push(Event::ChannelCloseOk { ch: *ch });
                    }
                }
            }
            QueueDeclare { ch, queue, passive, durable, exclusive, auto_delete, arguments } if arguments.is_empty() => {
                let wire = self.live.wire(queue);
                if !passive && !queue.is_empty() && !queue.is_reserved() {
                    self.queues.insert(wire.clone());
                }
                let declare = queue::Declare {
                    queue: ShortString::from(wire),
                    passive: *passive,
                    durable: *durable,
                    exclusive: *exclusive,
                    auto_delete: *auto_delete,
                    nowait: false,
                    arguments: FieldTable::default(),
                };
                if self.method(*ch, Method::QueueDeclare, AMQPClass::Queue(queue::AMQPMethod::Declare(declare))) {
                    let id = ch.channel;
                    let ok = self.await_reply(ch.conn, id, "queue.declare", |_, f| match f {
                        AMQPFrame::Method(i, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(d))) if *i == id => {
                            Some(d.clone())
                        }
                        _ => None,
                    });
                    if let Some(d) = ok {
                        let reply = Reply::QueueDeclareOk {
                            queue: self.live.trace_name(d.queue.as_str()),
                            message_count: d.message_count,
                            consumer_count: d.consumer_count,
                        };
                        self.events.push(Event::Reply { ch: *ch, reply });
                    }
                }
            }
            BasicPublish { ch, exchange, routing_key, mandatory: false, content } if content.headers.is_empty() => {
                let key = if exchange.is_empty() { self.live.wire(routing_key) } else { routing_key.to_string() };
                let publish = basic::Publish {
                    exchange: ShortString::from(self.live.wire(exchange)),
                    routing_key: ShortString::from(key),
                    mandatory: false,
                    immediate: false,
                };
                if let Some(c) = self.conns.get_mut(&ch.conn) {
                    c.last.insert(ch.channel, Method::BasicPublish);
                    c.last.insert(0, Method::BasicPublish);
                }
                let body = content.body.as_str().as_bytes().to_vec();
                let mut properties = basic::AMQPProperties::default();
                if content.persistent {
                    properties = properties.with_delivery_mode(2);
                }
                let header = AMQPContentHeader { class_id: 60, body_size: body.len() as u64, properties };
                let mut frames = vec![
                    AMQPFrame::Method(ch.channel, AMQPClass::Basic(basic::AMQPMethod::Publish(publish))),
                    AMQPFrame::Header(ch.channel, header),
                ];
                if !body.is_empty() {
                    frames.push(AMQPFrame::Body(ch.channel, body));
                }
                self.send(ch.conn, &frames);
                // A closed channel (or connection) answers at once; otherwise nothing comes.
                self.drain(ch.conn, Duration::from_millis(100));
            }
            BasicGet { ch, queue, no_ack } => {
                let get = basic::Get { queue: ShortString::from(self.live.wire(queue)), no_ack: *no_ack };
                if !self.method(*ch, Method::BasicGet, AMQPClass::Basic(basic::AMQPMethod::Get(get))) {
                    return;
                }
                let id = ch.channel;
                let answer = self.await_reply(ch.conn, id, "basic.get", |_, f| match f {
                    AMQPFrame::Method(i, AMQPClass::Basic(basic::AMQPMethod::GetOk(g))) if *i == id => {
                        Some(Some(g.clone()))
                    }
                    AMQPFrame::Method(i, AMQPClass::Basic(basic::AMQPMethod::GetEmpty(_))) if *i == id => Some(None),
                    _ => None,
                });
                match answer {
                    Some(None) => self.events.push(Event::Reply { ch: *ch, reply: Reply::GetEmpty }),
                    Some(Some(g)) => {
                        let Some((persistent, body)) = self.content(ch.conn, id) else { return };
                        let message = Message(Arc::new(MessageData {
                            id: MsgId(0),
                            exchange: self.live.trace_name(g.exchange.as_str()),
                            routing_key: self.live.trace_name(g.routing_key.as_str()),
                            content: Content {
                                body: Name::from(String::from_utf8_lossy(&body).into_owned()),
                                persistent,
                                headers: Default::default(),
                            },
                        }));
                        let reply = Reply::GetOk {
                            delivery_tag: g.delivery_tag,
                            redelivered: g.redelivered,
                            queue: Name::default(),
                            message_count: g.message_count,
                            message,
                        };
                        self.events.push(Event::Reply { ch: *ch, reply });
                    }
                    None => {}
                }
            }
            other => {
                self.incomplete = Some(format!(
                    "the raw-frame target cannot perform {}",
                    other.method().map_or("restart", |m| m.name())
                ));
            }
        }
    }

    /// The content (header and body frames) following a get-ok.
    fn content(&mut self, conn: ConnId, id: u16) -> Option<(bool, Vec<u8>)> {
        let header = self.await_reply(conn, id, "the content header", |_, f| match f {
            AMQPFrame::Header(i, h) if *i == id => Some(h.clone()),
            _ => None,
        })?;
        let persistent = header.properties.delivery_mode() == &Some(2);
        let mut body = Vec::new();
        while (body.len() as u64) < header.body_size {
            let part = self.await_reply(conn, id, "the content body", |_, f| match f {
                AMQPFrame::Body(i, b) if *i == id => Some(b.clone()),
                _ => None,
            })?;
            body.extend(part);
        }
        Some((persistent, body))
    }

    /// Read what arrives within `wait` (closes), without expecting anything.
    fn drain(&mut self, conn: ConnId, wait: Duration) {
        let deadline = Instant::now() + wait;
        while self.conns.contains_key(&conn) {
            match self.read(conn, deadline) {
                Read1::Frame(f) => {
                    self.server_close(conn, &f);
                }
                Read1::Closed => {
                    self.conns.remove(&conn);
                }
                Read1::TimedOut => return,
            }
        }
    }
}

impl Target for RawTarget {
    fn command(&mut self, command: &Command, _: Hint) -> Vec<Event> {
        if self.incomplete.is_none() {
            self.perform(command);
        }
        std::mem::take(&mut self.events)
    }

    fn listen(&mut self, how: Listen) -> Vec<Event> {
        let wait = match how {
            Listen::Expecting => self.timing.timeout,
            Listen::Tail => self.timing.grace,
        };
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        let per = wait / conns.len().max(1) as u32;
        for c in conns {
            self.drain(c, per);
        }
        std::mem::take(&mut self.events)
    }
}
