//! One proxied connection read as the model reads a session: the client's bytes as commands, the
//! broker's as events.
//!
//! The client's side: the protocol header and the handshake say nothing to the model;
//! `connection.open` is the model's `connection.open`, each channel method the model takes is
//! its command ([`amqp_wire::request`]), a publish once its content is whole, and the socket's
//! end without a `connection.close` a `drop`. The broker's side: each reply, delivery, return,
//! confirm (a `multiple` one for each publish it covers), cancel and close as the model's event,
//! a close naming the method the client sent last on its channel (what it answers).
//!
//! What a trace cannot say (`channel.flow`, a method the model leaves out) is kept as a note, so
//! that nothing the client did goes unmentioned; a `nowait` flag goes with its command.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{basic, channel, confirm, connection, exchange, queue, tx, AMQPClass};
use amqp_model::event::Reply;
use amqp_model::types::MessageData;
use amqp_model::{ChanRef, Command, ConnId, Event, Message, Method, MsgId, Name, ProfileName, ReplyCode};
use amqp_wire::{FrameBuffer, Request};
use std::collections::{BTreeSet, HashMap};

/// Frames up to this size are read (the largest frame-max a broker offers is well below).
const FRAME_MAX: u32 = 1 << 30;

/// What one side of a proxied connection said, as the model hears it.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    /// The client sent a command (`true`: with `nowait`, so the broker sends no reply).
    Command(Command, bool),
    /// The client answered the broker's close of a channel with `close-ok`: the channel is free
    /// again (a trace answers every close before its next command, so says nothing of it).
    CloseOk(ChanRef),
    /// The broker did something the client observes.
    Event(Event),
    /// Something the model's traces cannot say, and why it matters.
    Note(String),
    /// The client sent what the model leaves out and the reference broker, as RabbitMQ 3.10.8,
    /// refuses with a connection close (`code`, naming `method`), saying why in `note`
    /// ([`amqp_wire::Request::Refuse`]).
    Refused {
        /// The channel it came on.
        ch: ChanRef,
        /// The close's reply code.
        code: ReplyCode,
        /// The method the close names.
        method: Option<Method>,
        /// What it was.
        note: String,
    },
}

/// Which side of the connection bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client's bytes, on their way to the broker.
    Client,
    /// The broker's bytes, on their way to the client.
    Broker,
}

/// A publish whose content is still coming.
#[derive(Debug)]
struct Publishing {
    exchange: Name,
    routing_key: Name,
    mandatory: bool,
    header: Option<AMQPContentHeader>,
    body: Vec<u8>,
}

/// What the broker is sending content for.
#[derive(Debug)]
enum Carrying {
    Deliver(basic::Deliver),
    GetOk(basic::GetOk),
    Return(basic::Return),
}

#[derive(Debug)]
struct Content {
    carrying: Carrying,
    header: Option<AMQPContentHeader>,
    body: Vec<u8>,
}

/// A channel's publisher confirms: the sequence numbers published and not yet confirmed.
#[derive(Debug, Default)]
struct Confirms {
    next: u64,
    outstanding: BTreeSet<u64>,
}

/// One proxied connection, both sides.
#[derive(Debug)]
pub struct Session {
    conn: ConnId,
    /// The profile the broker is judged under (what the model takes of a method depends on it).
    profile: ProfileName,
    client: FrameBuffer,
    broker: FrameBuffer,
    /// The client's protocol header is still to be read.
    header_pending: bool,
    /// The client has opened the connection (and not closed it).
    open: bool,
    /// The broker has closed the connection (`connection.close`).
    broker_closed: bool,
    /// The broker has answered a `connection.close` of the client's.
    close_answered: bool,
    publishing: HashMap<u16, Publishing>,
    content: HashMap<u16, Content>,
    /// The method the client sent last on each channel (0: the connection).
    last: HashMap<u16, Method>,
    /// Channels the client asked to put in confirm mode, and those the broker did.
    confirming: HashMap<u16, Confirms>,
}

/// The model's method with these ids, if it has one.
fn by_ids(class_id: u16, method_id: u16) -> Option<Method> {
    amqp_model::methods::name(class_id, method_id).and_then(Method::named)
}

fn name(s: &amq_protocol::types::ShortString) -> Name {
    Name::from(s.as_str())
}

fn message(exchange: &str, routing_key: &str, header: &Option<AMQPContentHeader>, body: &[u8]) -> Message {
    let props = header.as_ref().map(|h| h.properties.clone()).unwrap_or_default();
    let content = amqp_wire::model_content(&props, body);
    Message::new(MessageData {
        id: MsgId(0),
        exchange: Name::from(exchange),
        routing_key: Name::from(routing_key),
        content,
    })
}

impl Session {
    /// A session for the proxy's connection `conn`, judged under `profile`.
    pub fn new(conn: ConnId, profile: ProfileName) -> Session {
        Session {
            conn,
            profile,
            client: FrameBuffer::new(),
            broker: FrameBuffer::new(),
            header_pending: true,
            open: false,
            broker_closed: false,
            close_answered: false,
            publishing: HashMap::new(),
            content: HashMap::new(),
            last: HashMap::new(),
            confirming: HashMap::new(),
        }
    }

    /// Bytes from `side`, in order: what they say, once whole frames are there.
    pub fn bytes(&mut self, side: Side, bytes: &[u8]) -> Vec<Seen> {
        let mut out = Vec::new();
        match side {
            Side::Client => {
                self.client.extend(bytes);
                if self.header_pending {
                    if self.client.pending().len() < 8 {
                        return out;
                    }
                    self.client.consume(8);
                    self.header_pending = false;
                }
                while let Some(next) = self.client.next(FRAME_MAX) {
                    match next {
                        Ok(f) => self.client_frame(f.frame, &f.payload, &mut out),
                        Err(fault) => {
                            out.push(Seen::Note(format!("the client sent what is not a frame: {fault:?}")));
                            break;
                        }
                    }
                }
            }
            Side::Broker => {
                self.broker.extend(bytes);
                while let Some(next) = self.broker.next(FRAME_MAX) {
                    match next {
                        Ok(f) => self.broker_frame(f.frame, &mut out),
                        Err(fault) => {
                            out.push(Seen::Note(format!("the broker sent what is not a frame: {fault:?}")));
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// The client's socket ended: a `drop` if the connection was open and not closed.
    pub fn ended(&mut self) -> Vec<Seen> {
        if std::mem::take(&mut self.open) {
            vec![Seen::Command(Command::ConnectionDrop { conn: self.conn }, false)]
        } else {
            Vec::new()
        }
    }

    fn ch(&self, channel: u16) -> ChanRef {
        ChanRef { conn: self.conn, channel }
    }

    fn client_frame(&mut self, frame: AMQPFrame, payload: &[u8], out: &mut Vec<Seen>) {
        match frame {
            AMQPFrame::Method(0, AMQPClass::Connection(m)) => match m {
                connection::AMQPMethod::Open(_) => {
                    self.open = true;
                    self.last.insert(0, Method::ConnectionOpen);
                    out.push(Seen::Command(Command::ConnectionOpen { conn: self.conn }, false));
                }
                connection::AMQPMethod::Close(_) if self.open => {
                    self.open = false;
                    self.last.insert(0, Method::ConnectionClose);
                    out.push(Seen::Command(Command::ConnectionClose { conn: self.conn }, false));
                }
                connection::AMQPMethod::Close(_) => {
                    out.push(Seen::Note(format!("c{} connection.close again, on a connection closing", self.conn.0)));
                }
                connection::AMQPMethod::UpdateSecret(_) => {
                    out.push(Seen::Note("connection.update-secret (no trace says it)".into()));
                }
                _ => {}
            },
            AMQPFrame::Method(n, class) if n > 0 => {
                let ch = self.ch(n);
                if let Some(m) = by_ids(class.get_amqp_class_id(), class.get_amqp_method_id()) {
                    self.last.insert(n, m);
                }
                if matches!(class, AMQPClass::Confirm(confirm::AMQPMethod::Select(_))) {
                    self.confirming.entry(n).or_default();
                }
                if matches!(class, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))) {
                    out.push(Seen::CloseOk(ch));
                    return;
                }
                match amqp_wire::request(self.profile, ch, &class, payload) {
                    Request::Command { command, nowait } => out.push(Seen::Command(command, nowait)),
                    Request::Publish { exchange, routing_key, mandatory } => {
                        self.publishing
                            .insert(n, Publishing { exchange, routing_key, mandatory, header: None, body: Vec::new() });
                    }
                    Request::Ignore => {}
                    Request::FlowActive => {
                        out.push(Seen::Note(format!("c{}.{n} channel.flow active=true", self.conn.0)))
                    }
                    Request::AccessRequest => out.push(Seen::Note(format!("c{}.{n} access.request", self.conn.0))),
                    Request::Refuse { code, text } => {
                        let method = by_ids(class.get_amqp_class_id(), class.get_amqp_method_id());
                        let note = format!("c{}.{n} sent what the model leaves out: {text}", self.conn.0);
                        out.push(Seen::Refused { ch, code, method, note });
                    }
                }
            }
            AMQPFrame::Header(n, header) => {
                if let Some(p) = self.publishing.get_mut(&n) {
                    p.header = Some(header);
                    self.publish_if_whole(n, out);
                }
            }
            AMQPFrame::Body(n, bytes) => {
                if let Some(p) = self.publishing.get_mut(&n) {
                    p.body.extend_from_slice(&bytes);
                    self.publish_if_whole(n, out);
                }
            }
            _ => {}
        }
    }

    fn publish_if_whole(&mut self, n: u16, out: &mut Vec<Seen>) {
        let whole = self
            .publishing
            .get(&n)
            .is_some_and(|p| p.header.as_ref().is_some_and(|h| p.body.len() as u64 >= h.body_size));
        if !whole {
            return;
        }
        let p = self.publishing.remove(&n).expect("whole");
        let props = p.header.map(|h| h.properties).unwrap_or_default();
        let content = amqp_wire::model_content(&props, &p.body);
        if let Some(c) = self.confirming.get_mut(&n).filter(|c| c.next > 0) {
            c.outstanding.insert(c.next);
            c.next += 1;
        }
        out.push(Seen::Command(
            Command::BasicPublish {
                ch: self.ch(n),
                exchange: p.exchange,
                routing_key: p.routing_key,
                mandatory: p.mandatory,
                content,
            },
            false,
        ));
    }

    fn broker_frame(&mut self, frame: AMQPFrame, out: &mut Vec<Seen>) {
        let conn = self.conn;
        match frame {
            AMQPFrame::Method(0, AMQPClass::Connection(m)) => match m {
                connection::AMQPMethod::OpenOk(_) => out.push(Seen::Event(Event::ConnectionOpenOk { conn })),
                // The answer to a client's close that crossed the broker's own: the model's
                // connection ended with the broker's close, and a trace has no such step.
                connection::AMQPMethod::CloseOk(_) if self.broker_closed => {
                    out.push(Seen::Note(format!(
                        "c{} connection.close-ok to the client's close, which crossed the broker's",
                        conn.0
                    )));
                }
                // A client that closed more than once (from several threads at once) may get
                // more than one answer: the model's connection ended with the first.
                connection::AMQPMethod::CloseOk(_) if self.close_answered => {
                    out.push(Seen::Note(format!("c{} connection.close-ok again, to a further close", conn.0)));
                }
                connection::AMQPMethod::CloseOk(_) => {
                    self.close_answered = true;
                    out.push(Seen::Event(Event::ConnectionCloseOk { conn }))
                }
                connection::AMQPMethod::Close(c) => {
                    self.open = false;
                    self.broker_closed = true;
                    match ReplyCode::from_code(c.reply_code) {
                        Some(code) => out.push(Seen::Event(Event::ConnectionClosed {
                            conn,
                            code,
                            // The method the close names (a channel method that caused a
                            // connection exception); none for a forced close.
                            method: by_ids(c.class_id, c.method_id),
                        })),
                        None => out.push(Seen::Note(format!("connection.close with reply code {}", c.reply_code))),
                    }
                }
                connection::AMQPMethod::Blocked(b) => {
                    out.push(Seen::Note(format!("connection.blocked: {}", b.reason)));
                }
                connection::AMQPMethod::Unblocked(_) => out.push(Seen::Note("connection.unblocked".into())),
                _ => {}
            },
            AMQPFrame::Method(n, class) if n > 0 => self.broker_method(n, class, out),
            AMQPFrame::Header(n, header) => {
                if let Some(c) = self.content.get_mut(&n) {
                    c.header = Some(header);
                    self.content_if_whole(n, out);
                }
            }
            AMQPFrame::Body(n, bytes) => {
                if let Some(c) = self.content.get_mut(&n) {
                    c.body.extend_from_slice(&bytes);
                    self.content_if_whole(n, out);
                }
            }
            _ => {}
        }
    }

    fn broker_method(&mut self, n: u16, class: AMQPClass, out: &mut Vec<Seen>) {
        let ch = self.ch(n);
        let reply = |reply: Reply| Seen::Event(Event::Reply { ch, reply });
        let carry = |carrying| Content { carrying, header: None, body: Vec::new() };
        match class {
            AMQPClass::Channel(m) => match m {
                channel::AMQPMethod::OpenOk(_) => out.push(Seen::Event(Event::ChannelOpenOk { ch })),
                channel::AMQPMethod::CloseOk(_) => {
                    self.forget(n);
                    out.push(Seen::Event(Event::ChannelCloseOk { ch }));
                }
                channel::AMQPMethod::Close(c) => {
                    // The method the close names, else the client's last on the channel.
                    let named = by_ids(c.class_id, c.method_id);
                    let method = named.or_else(|| self.last.get(&n).copied()).unwrap_or(Method::ChannelOpen);
                    self.forget(n);
                    match ReplyCode::from_code(c.reply_code) {
                        Some(code) => out.push(Seen::Event(Event::ChannelClosed { ch, code, method })),
                        None => out.push(Seen::Note(format!("channel.close with reply code {}", c.reply_code))),
                    }
                }
                _ => {}
            },
            AMQPClass::Exchange(m) => match m {
                exchange::AMQPMethod::DeclareOk(_) => out.push(reply(Reply::ExchangeDeclareOk)),
                exchange::AMQPMethod::DeleteOk(_) => out.push(reply(Reply::ExchangeDeleteOk)),
                exchange::AMQPMethod::BindOk(_) => out.push(reply(Reply::ExchangeBindOk)),
                exchange::AMQPMethod::UnbindOk(_) => out.push(reply(Reply::ExchangeUnbindOk)),
                _ => {}
            },
            AMQPClass::Queue(m) => match m {
                queue::AMQPMethod::DeclareOk(d) => out.push(reply(Reply::QueueDeclareOk {
                    queue: name(&d.queue),
                    message_count: d.message_count,
                    consumer_count: d.consumer_count,
                })),
                queue::AMQPMethod::BindOk(_) => out.push(reply(Reply::QueueBindOk)),
                queue::AMQPMethod::UnbindOk(_) => out.push(reply(Reply::QueueUnbindOk)),
                queue::AMQPMethod::PurgeOk(p) => {
                    out.push(reply(Reply::QueuePurgeOk { message_count: p.message_count }))
                }
                queue::AMQPMethod::DeleteOk(d) => {
                    out.push(reply(Reply::QueueDeleteOk { message_count: d.message_count }))
                }
                _ => {}
            },
            AMQPClass::Basic(m) => match m {
                basic::AMQPMethod::QosOk(_) => out.push(reply(Reply::QosOk)),
                basic::AMQPMethod::ConsumeOk(c) => {
                    out.push(reply(Reply::ConsumeOk { consumer_tag: name(&c.consumer_tag) }))
                }
                basic::AMQPMethod::CancelOk(c) => {
                    out.push(reply(Reply::CancelOk { consumer_tag: name(&c.consumer_tag) }))
                }
                basic::AMQPMethod::GetEmpty(_) => out.push(reply(Reply::GetEmpty)),
                basic::AMQPMethod::RecoverOk(_) => out.push(reply(Reply::RecoverOk)),
                basic::AMQPMethod::Cancel(c) => {
                    out.push(Seen::Event(Event::Cancel { ch, consumer_tag: name(&c.consumer_tag) }))
                }
                basic::AMQPMethod::Deliver(d) => {
                    self.content.insert(n, carry(Carrying::Deliver(d)));
                }
                basic::AMQPMethod::GetOk(g) => {
                    self.content.insert(n, carry(Carrying::GetOk(g)));
                }
                basic::AMQPMethod::Return(r) => {
                    self.content.insert(n, carry(Carrying::Return(r)));
                }
                basic::AMQPMethod::Ack(a) => self.confirmed(n, a.delivery_tag, a.multiple, true, out),
                basic::AMQPMethod::Nack(a) => self.confirmed(n, a.delivery_tag, a.multiple, false, out),
                _ => {}
            },
            AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_)) => {
                let c = self.confirming.entry(n).or_default();
                if c.next == 0 {
                    c.next = 1;
                }
                out.push(reply(Reply::ConfirmSelectOk));
            }
            AMQPClass::Tx(m) => match m {
                tx::AMQPMethod::SelectOk(_) => out.push(reply(Reply::TxSelectOk)),
                tx::AMQPMethod::CommitOk(_) => out.push(reply(Reply::TxCommitOk)),
                tx::AMQPMethod::RollbackOk(_) => out.push(reply(Reply::TxRollbackOk)),
                _ => {}
            },
            _ => {}
        }
    }

    /// A confirm (ack or nack) of `tag`, or with `multiple` of every outstanding publish up to it.
    fn confirmed(&mut self, n: u16, tag: u64, multiple: bool, ack: bool, out: &mut Vec<Seen>) {
        let ch = self.ch(n);
        let Some(c) = self.confirming.get_mut(&n) else {
            out.push(Seen::Note(format!("c{}.{n}: a confirm on a channel not in confirm mode", self.conn.0)));
            return;
        };
        let seqs: Vec<u64> = if multiple { c.outstanding.range(..=tag).copied().collect() } else { vec![tag] };
        for seq in seqs {
            c.outstanding.remove(&seq);
            out.push(Seen::Event(Event::Confirm { ch, seq, ack }));
        }
    }

    fn content_if_whole(&mut self, n: u16, out: &mut Vec<Seen>) {
        let whole =
            self.content.get(&n).is_some_and(|c| c.header.as_ref().is_some_and(|h| c.body.len() as u64 >= h.body_size));
        if !whole {
            return;
        }
        let c = self.content.remove(&n).expect("whole");
        let ch = self.ch(n);
        let event = match c.carrying {
            Carrying::Deliver(d) => Event::Deliver {
                ch,
                consumer_tag: name(&d.consumer_tag),
                delivery_tag: d.delivery_tag,
                redelivered: d.redelivered,
                queue: Name::default(),
                message: message(d.exchange.as_str(), d.routing_key.as_str(), &c.header, &c.body),
            },
            Carrying::GetOk(g) => Event::Reply {
                ch,
                reply: Reply::GetOk {
                    delivery_tag: g.delivery_tag,
                    redelivered: g.redelivered,
                    queue: Name::default(),
                    message_count: g.message_count,
                    message: message(g.exchange.as_str(), g.routing_key.as_str(), &c.header, &c.body),
                },
            },
            Carrying::Return(r) => match ReplyCode::from_code(r.reply_code) {
                Some(code) => Event::Return {
                    ch,
                    code,
                    message: message(r.exchange.as_str(), r.routing_key.as_str(), &c.header, &c.body),
                },
                None => {
                    out.push(Seen::Note(format!("basic.return with reply code {}", r.reply_code)));
                    return;
                }
            },
        };
        out.push(Seen::Event(event));
    }

    /// A channel closed: what was under way on it is gone.
    fn forget(&mut self, n: u16) {
        self.publishing.remove(&n);
        self.content.remove(&n);
        self.confirming.remove(&n);
    }
}
