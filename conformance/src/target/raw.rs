//! A raw-frame target for what lapin will not send: a second `channel.open` on an open channel,
//! or a method on a channel that is not open. It speaks AMQP 0-9-1 itself over a plain TCP
//! socket, with amq-protocol's frame codec, and performs only the commands those traces need:
//! `connection.open` (the handshake), `connection.close`, `drop`, `channel.open` and
//! `channel.close`, `queue.declare`, `basic.publish` and `basic.get`. Any other command makes the
//! trace incomplete. Names are prefixed and cleaned up as by [`LiveTarget`].
//!
//! It is synchronous: each method is written, then frames are read until its reply (or a close)
//! arrives, within the timeout. Deliveries are never expected (it sends no `basic.consume`).

use super::live::LiveTarget;
use super::socket::{FrameSocket, Read1};
use super::uri::BrokerUri;
use super::{Hint, Listen, Problem, Summary, Target, Timing};
use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{basic, channel, connection, queue, AMQPClass};
use amq_protocol::types::{FieldTable, ShortString};
use amqp_model::event::Reply;
use amqp_model::types::MessageData;
use amqp_model::{ChanRef, Command, ConnId, Content, Event, Message, Method, MsgId, Name, ReplyCode};
use amqp_wire::client::{Awaited, Login};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, Instant};

/// One raw connection.
struct Conn {
    socket: FrameSocket,
    /// The last method sent on each channel (what a close names).
    last: BTreeMap<u16, Method>,
}

/// A trace target that writes frames itself (see the module documentation).
pub struct RawTarget {
    uri: BrokerUri,
    timing: Timing,
    /// For the names, the prefix and the cleanup.
    live: LiveTarget,
    conns: BTreeMap<ConnId, Conn>,
    queues: BTreeSet<String>,
    events: Vec<Event>,
    incomplete: Option<String>,
    problems: Vec<Problem>,
}

/// What reading frames does after one ([`RawTarget::read_until`]).
enum Next<T> {
    /// It was the one awaited.
    Done(T),
    /// The wait is over without it (a close).
    Stop,
    /// Read on.
    Read,
}

impl std::fmt::Debug for RawTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawTarget")
            .field("uri", &self.uri)
            .field("prefix", &self.live.prefix())
            .field("connections", &self.conns.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RawTarget {
    /// A raw target for the broker at `uri`, with `timing`.
    pub fn new(uri: &BrokerUri, timing: Timing) -> Self {
        RawTarget {
            uri: uri.clone(),
            timing,
            live: LiveTarget::new(uri, timing),
            conns: BTreeMap::new(),
            queues: BTreeSet::new(),
            events: Vec::new(),
            incomplete: None,
            problems: Vec::new(),
        }
    }

    /// Send a `basic.publish` with its content.
    fn publish(&mut self, ch: ChanRef, exchange: &Name, routing_key: &Name, content: &Content) {
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
        let properties = amqp_wire::wire_properties(content);
        let header = AMQPContentHeader { class_id: 60, body_size: body.len() as u64, properties };
        let mut frames = vec![
            AMQPFrame::Method(ch.channel, AMQPClass::Basic(basic::AMQPMethod::Publish(publish))),
            AMQPFrame::Header(ch.channel, header),
        ];
        if !body.is_empty() {
            frames.push(AMQPFrame::Body(ch.channel, body));
        }
        self.send(ch.conn, &frames);
    }

    /// Read until the `close-ok` for the client's `channel.close` on `ch`. A `channel.close` of
    /// the broker's own on that channel may come first, crossing the client's: it is reported and
    /// answered with `close-ok` (`channel close stability`), and the wait goes on; it names the
    /// method sent `before` the client's close, the one it answers.
    fn await_close_ok(&mut self, ch: ChanRef, before: Option<Method>) {
        let id = ch.channel;
        self.read_until(ch.conn, id, "channel.close", |me, f| {
            if matches!(f, AMQPFrame::Method(i, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))) if *i == id) {
                me.events.push(Event::ChannelCloseOk { ch });
                return Next::Done(());
            }
            let crossing = matches!(f, AMQPFrame::Method(i, AMQPClass::Channel(_)) if *i == id);
            if let (true, Some(c), Some(m)) = (crossing, me.conns.get_mut(&ch.conn), before) {
                c.last.insert(id, m);
            }
            if me.server_close(ch.conn, f) && !crossing {
                return Next::Stop;
            }
            Next::Read
        });
    }

    fn send(&mut self, conn: ConnId, frames: &[AMQPFrame]) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else { return false };
        let Some(bytes) = amqp_wire::encode(frames) else {
            self.problems.push(Problem::Client(format!("c{}: cannot encode a frame", conn.0)));
            return false;
        };
        c.socket.stream().write_all(&bytes).is_ok()
    }

    /// The next frame on `conn` before `deadline`; what is not a frame is a problem, and the
    /// connection's end.
    fn read(&mut self, conn: ConnId, deadline: Instant) -> Read1 {
        let Some(c) = self.conns.get_mut(&conn) else { return Read1::Closed };
        match c.socket.read(deadline) {
            Read1::Fault(fault) => {
                self.problems
                    .push(Problem::Client(format!("c{}: the broker sent what is not a frame: {fault:?}", conn.0)));
                Read1::Closed
            }
            other => other,
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
        self.read_until(conn, ch, what, |me, f| match want(me, f) {
            Some(v) => Next::Done(v),
            None if me.server_close(conn, f) => Next::Stop,
            None => Next::Read,
        })
    }

    /// Read frames on `conn` and give each to `on` until it is done or stops; the connection's
    /// end, or no frame within the timeout (a problem naming `what` on channel `ch`), stops too
    /// and forgets the connection.
    fn read_until<T>(
        &mut self,
        conn: ConnId,
        ch: u16,
        what: &str,
        mut on: impl FnMut(&mut Self, &AMQPFrame) -> Next<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + self.timing.timeout;
        loop {
            match self.read(conn, deadline) {
                Read1::Frame(f) => match on(self, &f) {
                    Next::Done(v) => return Some(v),
                    Next::Stop => return None,
                    Next::Read => {}
                },
                Read1::Closed | Read1::Fault(_) => {
                    self.conns.remove(&conn);
                    return None;
                }
                Read1::TimedOut => {
                    self.problems.push(Problem::Timeout(format!(
                        "c{}.{ch}: no answer to {what} within {:?}",
                        conn.0, self.timing.timeout
                    )));
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
        let addr = self.uri.address();
        let mut socket = match FrameSocket::connect(&addr) {
            Ok(s) => s,
            Err(e) => {
                self.problems.push(Problem::Connect(format!("c{}: cannot connect to {addr}: {e}", conn.0)));
                return;
            }
        };
        let login = Login { user: self.uri.user(), password: self.uri.password(), vhost: self.uri.vhost() };
        let timeout = self.timing.timeout;
        // Where the handshake stopped, if it did: the method awaited, and what came instead.
        let mut stopped: Option<(Awaited, Read1)> = None;
        let tune_ok = |t: &connection::Tune| connection::TuneOk {
            channel_max: t.channel_max,
            frame_max: t.frame_max,
            heartbeat: 0,
        };
        let opened = socket.handshake(&login, tune_ok, |socket, awaited| {
            let deadline = Instant::now() + timeout;
            loop {
                match socket.read(deadline) {
                    Read1::Frame(f) if awaited.matches(&f) => return Some(*f),
                    Read1::Frame(f) if !is_close(&f) => {}
                    other => {
                        stopped = Some((awaited, other));
                        return None;
                    }
                }
            }
        });
        self.conns.insert(conn, Conn { socket, last: BTreeMap::new() });
        match stopped {
            _ if opened.is_some() => self.events.push(Event::ConnectionOpenOk { conn }),
            Some((_, Read1::Frame(close))) => {
                self.server_close(conn, &close);
            }
            Some((awaited, Read1::TimedOut)) => {
                self.problems.push(Problem::Timeout(format!(
                    "c{}.0: no answer to {} within {timeout:?}",
                    conn.0,
                    awaited.after()
                )));
                self.conns.remove(&conn);
            }
            Some((_, Read1::Fault(fault))) => {
                self.problems
                    .push(Problem::Client(format!("c{}: the broker sent what is not a frame: {fault:?}", conn.0)));
                self.conns.remove(&conn);
            }
            _ => {
                self.conns.remove(&conn);
            }
        }
    }

    fn perform(&mut self, command: &Command) {
        use Command::*;
        match command {
            Pass { ms } => std::thread::sleep(Duration::from_millis(u64::from(*ms))),
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
                let before = self.conns.get(&ch.conn).and_then(|c| c.last.get(&ch.channel).copied());
                if self.method(*ch, Method::ChannelClose, AMQPClass::Channel(channel::AMQPMethod::Close(close))) {
                    self.await_close_ok(*ch, before);
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
            BasicPublish { ch, exchange, routing_key, mandatory: false, content } => {
                self.publish(*ch, exchange, routing_key, content);
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
                        let Some(content) = self.content(ch.conn, id) else { return };
                        let message = Message::new(MessageData {
                            id: MsgId(0),
                            exchange: self.live.trace_name(g.exchange.as_str()),
                            routing_key: self.live.trace_name(g.routing_key.as_str()),
                            content,
                        });
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
    fn content(&mut self, conn: ConnId, id: u16) -> Option<Content> {
        let header = self.await_reply(conn, id, "the content header", |_, f| match f {
            AMQPFrame::Header(i, h) if *i == id => Some(h.clone()),
            _ => None,
        })?;
        let mut body = Vec::new();
        while (body.len() as u64) < header.body_size {
            let part = self.await_reply(conn, id, "the content body", |_, f| match f {
                AMQPFrame::Body(i, b) if *i == id => Some(b.clone()),
                _ => None,
            })?;
            body.extend(part);
        }
        Some(amqp_wire::model_content(&header.properties, &body))
    }

    /// Read what arrives within `wait` (closes), without expecting anything.
    fn drain(&mut self, conn: ConnId, wait: Duration) {
        let deadline = Instant::now() + wait;
        while self.conns.contains_key(&conn) {
            match self.read(conn, deadline) {
                Read1::Frame(f) => {
                    self.server_close(conn, &f);
                }
                Read1::Closed | Read1::Fault(_) => {
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

    /// Only a `basic.publish`, which has no reply to read: its frames go out, and the next
    /// command's right after them.
    fn pipeline(&mut self, command: &Command) -> Vec<Event> {
        match command {
            Command::BasicPublish { ch, exchange, routing_key, mandatory: false, content }
                if self.incomplete.is_none() =>
            {
                self.publish(*ch, exchange, routing_key, content);
            }
            Command::BasicPublish { mandatory: false, .. } => {}
            other => {
                self.incomplete = Some(format!(
                    "the raw-frame target pipelines only basic.publish, not {}",
                    other.method().map_or("restart", |m| m.name())
                ));
            }
        }
        Vec::new()
    }

    fn elapsed(&self) -> Option<u64> {
        self.live.elapsed()
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

    /// Close the connections and delete the queues the trace declared (through the live target's
    /// cleanup).
    fn finish(&mut self) -> Summary {
        self.conns.clear();
        self.live.adopt_queues(std::mem::take(&mut self.queues));
        let mut problems = self.problems.clone();
        problems.extend(self.live.cleanup().err());
        Summary { incomplete: self.incomplete.clone(), problems, ..Summary::default() }
    }
}

/// Whether `frame` is a server's close of the connection or of a channel.
fn is_close(frame: &AMQPFrame) -> bool {
    matches!(
        frame,
        AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Close(_)))
            | AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Close(_)))
    )
}
