//! AMQP methods and frames <-> the model's commands and events.
//!
//! [`request`] reads a client method as a model [`Command`] (or says why the model cannot take
//! it); [`frames`] writes a model [`Event`] as the frames a client receives. Field tables become
//! the model's [`Table`] (booleans, integers and strings: the kinds its behaviour depends on);
//! message content becomes [`Content`] (body, `delivery-mode = 2`, headers), while the message as
//! published (every property, the body's bytes) is kept beside the model as a [`Wire`] and sent
//! back as it came whenever it agrees with what the model says of the message.

use crate::live::{field_table, model_value};
use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{basic, channel, confirm, connection, exchange, queue, tx, AMQPClass};
use amq_protocol::types::{FieldTable, ShortString};
use amqp_model::event::Reply;
use amqp_model::{ChanRef, Command, Content, Event, ExchangeKind, Message, Method, Name, ReplyCode, Table};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A message as its publisher sent it: every property and the body's bytes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Wire {
    /// The content header's properties.
    pub(crate) props: basic::AMQPProperties,
    /// The body.
    pub(crate) body: Vec<u8>,
}

/// Published messages by model message identity.
pub(crate) type Contents = BTreeMap<u32, Arc<Wire>>;

/// What a client method asks of the server.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Request {
    /// A model command; with `nowait` its reply is not sent.
    Command {
        /// The command.
        command: Command,
        /// The client asked for no reply.
        nowait: bool,
    },
    /// `basic.publish`: the command is made once its content has arrived.
    Publish {
        /// The exchange.
        exchange: Name,
        /// The routing key.
        routing_key: Name,
        /// The mandatory flag.
        mandatory: bool,
    },
    /// Nothing to do (a client's `basic.cancel-ok` answering a server cancel, a stray
    /// `channel.close-ok`).
    Ignore,
    /// A method the server answers with a connection close.
    Refuse {
        /// The reply code (540 not-implemented, 503 command-invalid).
        code: ReplyCode,
        /// Why.
        text: String,
    },
}

fn not_implemented(text: impl Into<String>) -> Request {
    Request::Refuse { code: ReplyCode::NotImplemented, text: text.into() }
}

fn invalid(text: impl Into<String>) -> Request {
    Request::Refuse { code: ReplyCode::CommandInvalid, text: text.into() }
}

fn name(s: &ShortString) -> Name {
    Name::from(s.as_str())
}

/// A method argument table as the model keeps it; an error names a field whose value kind the
/// model does not keep (floats, decimals, timestamps, arrays, nested tables, byte arrays, void).
pub(crate) fn table(t: &FieldTable) -> Result<Table, String> {
    let mut out = Table::new();
    for (k, v) in t.inner() {
        match model_value(v) {
            Some(v) => {
                out.insert(Name::from(k.as_str()), v);
            }
            None => return Err(format!("argument `{}` is of a kind ({:?}) the model does not keep", k, v.get_type())),
        }
    }
    Ok(out)
}

/// Message headers as the model sees them: the fields of the kinds it keeps (the others cannot
/// match a binding, whose arguments are of those kinds, so leaving them out changes no routing).
pub(crate) fn headers(t: &FieldTable) -> Table {
    t.inner().iter().filter_map(|(k, v)| Some((Name::from(k.as_str()), model_value(v)?))).collect()
}

/// The model's content of a published message.
pub(crate) fn content(wire: &Wire) -> Content {
    Content {
        body: Name::from(String::from_utf8_lossy(&wire.body).into_owned()),
        persistent: *wire.props.delivery_mode() == Some(2),
        headers: wire.props.headers().as_ref().map(headers).unwrap_or_default(),
    }
}

/// `prefetch-size` of a `basic.qos` method payload (amq-protocol's parser drops it).
fn prefetch_size(payload: &[u8]) -> u32 {
    payload.get(4..8).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Read a client method on channel `ch` (a channel above 0; connection methods are the
/// connection's business). `payload` is the method frame's payload.
pub(crate) fn request(ch: ChanRef, class: &AMQPClass, payload: &[u8]) -> Request {
    let cmd = |command: Command, nowait: bool| Request::Command { command, nowait };
    let args = |t: &FieldTable| table(t);
    macro_rules! args {
        ($t:expr) => {
            match args($t) {
                Ok(t) => t,
                Err(e) => return not_implemented(e),
            }
        };
    }
    match class {
        AMQPClass::Channel(m) => match m {
            channel::AMQPMethod::Open(_) => cmd(Command::ChannelOpen { ch }, false),
            channel::AMQPMethod::Close(_) => cmd(Command::ChannelClose { ch }, false),
            channel::AMQPMethod::CloseOk(_) => Request::Ignore,
            channel::AMQPMethod::Flow(_) | channel::AMQPMethod::FlowOk(_) => {
                not_implemented("channel.flow is not implemented by the model")
            }
            channel::AMQPMethod::OpenOk(_) => invalid("channel.open-ok is a server method"),
        },
        AMQPClass::Exchange(m) => match m {
            exchange::AMQPMethod::Declare(d) => cmd(
                Command::ExchangeDeclare {
                    ch,
                    exchange: name(&d.exchange),
                    kind: ExchangeKind::parse(d.kind.as_str()),
                    passive: d.passive,
                    durable: d.durable,
                    auto_delete: d.auto_delete,
                    internal: d.internal,
                    arguments: args!(&d.arguments),
                },
                d.nowait,
            ),
            exchange::AMQPMethod::Delete(d) => {
                cmd(Command::ExchangeDelete { ch, exchange: name(&d.exchange), if_unused: d.if_unused }, d.nowait)
            }
            exchange::AMQPMethod::Bind(b) => cmd(
                Command::ExchangeBind {
                    ch,
                    destination: name(&b.destination),
                    source: name(&b.source),
                    routing_key: name(&b.routing_key),
                    arguments: args!(&b.arguments),
                },
                b.nowait,
            ),
            exchange::AMQPMethod::Unbind(b) => cmd(
                Command::ExchangeUnbind {
                    ch,
                    destination: name(&b.destination),
                    source: name(&b.source),
                    routing_key: name(&b.routing_key),
                    arguments: args!(&b.arguments),
                },
                b.nowait,
            ),
            _ => invalid("exchange replies are server methods"),
        },
        AMQPClass::Queue(m) => match m {
            queue::AMQPMethod::Declare(d) => cmd(
                Command::QueueDeclare {
                    ch,
                    queue: name(&d.queue),
                    passive: d.passive,
                    durable: d.durable,
                    exclusive: d.exclusive,
                    auto_delete: d.auto_delete,
                    arguments: args!(&d.arguments),
                },
                d.nowait,
            ),
            queue::AMQPMethod::Bind(b) => cmd(
                Command::QueueBind {
                    ch,
                    queue: name(&b.queue),
                    exchange: name(&b.exchange),
                    routing_key: name(&b.routing_key),
                    arguments: args!(&b.arguments),
                },
                b.nowait,
            ),
            queue::AMQPMethod::Unbind(b) => cmd(
                Command::QueueUnbind {
                    ch,
                    queue: name(&b.queue),
                    exchange: name(&b.exchange),
                    routing_key: name(&b.routing_key),
                    arguments: args!(&b.arguments),
                },
                false,
            ),
            queue::AMQPMethod::Purge(p) => cmd(Command::QueuePurge { ch, queue: name(&p.queue) }, p.nowait),
            queue::AMQPMethod::Delete(d) => cmd(
                Command::QueueDelete { ch, queue: name(&d.queue), if_unused: d.if_unused, if_empty: d.if_empty },
                d.nowait,
            ),
            _ => invalid("queue replies are server methods"),
        },
        AMQPClass::Basic(m) => match m {
            basic::AMQPMethod::Qos(q) => {
                if prefetch_size(payload) != 0 {
                    return not_implemented("basic.qos prefetch-size other than 0 is not implemented");
                }
                cmd(Command::BasicQos { ch, prefetch_count: q.prefetch_count, global: q.global }, false)
            }
            basic::AMQPMethod::Consume(c) => {
                if c.no_local {
                    return not_implemented("basic.consume no-local is not implemented by the model");
                }
                if !c.arguments.inner().is_empty() {
                    return not_implemented("basic.consume arguments are not implemented by the model");
                }
                cmd(
                    Command::BasicConsume {
                        ch,
                        queue: name(&c.queue),
                        consumer_tag: name(&c.consumer_tag),
                        no_ack: c.no_ack,
                        exclusive: c.exclusive,
                    },
                    c.nowait,
                )
            }
            basic::AMQPMethod::Cancel(c) => {
                cmd(Command::BasicCancel { ch, consumer_tag: name(&c.consumer_tag) }, c.nowait)
            }
            basic::AMQPMethod::CancelOk(_) => Request::Ignore,
            basic::AMQPMethod::Publish(p) => {
                if p.immediate {
                    return not_implemented("immediate=true");
                }
                Request::Publish {
                    exchange: name(&p.exchange),
                    routing_key: name(&p.routing_key),
                    mandatory: p.mandatory,
                }
            }
            basic::AMQPMethod::Get(g) => cmd(Command::BasicGet { ch, queue: name(&g.queue), no_ack: g.no_ack }, false),
            basic::AMQPMethod::Ack(a) => {
                cmd(Command::BasicAck { ch, delivery_tag: a.delivery_tag, multiple: a.multiple }, false)
            }
            basic::AMQPMethod::Nack(n) => cmd(
                Command::BasicNack { ch, delivery_tag: n.delivery_tag, multiple: n.multiple, requeue: n.requeue },
                false,
            ),
            basic::AMQPMethod::Reject(r) => {
                cmd(Command::BasicReject { ch, delivery_tag: r.delivery_tag, requeue: r.requeue }, false)
            }
            basic::AMQPMethod::Recover(r) => cmd(Command::BasicRecover { ch, requeue: r.requeue }, false),
            basic::AMQPMethod::RecoverAsync(_) => not_implemented("basic.recover-async is not implemented"),
            _ => invalid("basic replies and deliveries are server methods"),
        },
        AMQPClass::Confirm(m) => match m {
            confirm::AMQPMethod::Select(s) => cmd(Command::ConfirmSelect { ch }, s.nowait),
            confirm::AMQPMethod::SelectOk(_) => invalid("confirm.select-ok is a server method"),
        },
        AMQPClass::Tx(m) => match m {
            tx::AMQPMethod::Select(_) => cmd(Command::TxSelect { ch }, false),
            tx::AMQPMethod::Commit(_) => cmd(Command::TxCommit { ch }, false),
            tx::AMQPMethod::Rollback(_) => cmd(Command::TxRollback { ch }, false),
            _ => invalid("tx replies are server methods"),
        },
        AMQPClass::Access(_) => not_implemented("the access class is not implemented"),
        AMQPClass::Connection(_) => invalid("a connection method on a channel other than 0"),
    }
}

/// The name RabbitMQ gives a reply code in a reply text (`NOT_FOUND`).
pub(crate) fn code_name(code: u16) -> &'static str {
    match code {
        200 => "REPLY_SUCCESS",
        312 => "NO_ROUTE",
        313 => "NO_CONSUMERS",
        320 => "CONNECTION_FORCED",
        402 => "INVALID_PATH",
        403 => "ACCESS_REFUSED",
        404 => "NOT_FOUND",
        405 => "RESOURCE_LOCKED",
        406 => "PRECONDITION_FAILED",
        501 => "FRAME_ERROR",
        502 => "SYNTAX_ERROR",
        503 => "COMMAND_INVALID",
        504 => "CHANNEL_ERROR",
        505 => "UNEXPECTED_FRAME",
        506 => "RESOURCE_ERROR",
        530 => "NOT_ALLOWED",
        540 => "NOT_IMPLEMENTED",
        541 => "INTERNAL_ERROR",
        _ => "ERROR",
    }
}

/// A reply text: the code's name and `detail`, cut to fit a short string.
pub(crate) fn reply_text(code: u16, detail: &str) -> ShortString {
    let mut text = format!("{} - {detail}", code_name(code));
    if text.len() > 255 {
        let mut end = 255;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    ShortString::from(text)
}

/// A `connection.close` frame.
pub(crate) fn connection_close(code: u16, detail: &str, class_id: u16, method_id: u16) -> AMQPFrame {
    let close = connection::Close { reply_code: code, reply_text: reply_text(code, detail), class_id, method_id };
    AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(close)))
}

/// A `channel.close` frame.
pub(crate) fn channel_close(channel: u16, code: u16, detail: &str, class_id: u16, method_id: u16) -> AMQPFrame {
    let close = channel::Close { reply_code: code, reply_text: reply_text(code, detail), class_id, method_id };
    AMQPFrame::Method(channel, AMQPClass::Channel(channel::AMQPMethod::Close(close)))
}

/// What a close says of the method that caused it.
fn cause(code: ReplyCode, method: Option<Method>) -> (String, u16, u16) {
    match method {
        Some(m) => {
            let (class_id, method_id) = m.ids();
            (format!("{} refused by the reference model", m.name()), class_id, method_id)
        }
        None if code == ReplyCode::ConnectionForced => ("broker forced connection closure (restart)".into(), 0, 0),
        None => ("closed by the reference model".into(), 0, 0),
    }
}

/// The properties and body a message is sent with: as published when the model's content agrees
/// with the published message, otherwise rebuilt from the model's content.
fn wire_content(message: &Message, contents: &Contents) -> (basic::AMQPProperties, Vec<u8>) {
    let c = &message.0.content;
    if let Some(w) = contents.get(&message.id().0) {
        let model = content(w);
        if model.persistent == c.persistent && model.headers == c.headers {
            let body = if model.body == c.body { w.body.clone() } else { c.body.as_str().as_bytes().to_vec() };
            return (w.props.clone(), body);
        }
    }
    let mut props = basic::AMQPProperties::default();
    if c.persistent {
        props = props.with_delivery_mode(2);
    }
    if !c.headers.is_empty() {
        props = props.with_headers(field_table(&c.headers));
    }
    (props, c.body.as_str().as_bytes().to_vec())
}

/// The content header and body frames of a message on `channel`, the body cut to fit
/// `frame_max` (8 octets of each frame are framing).
fn content_frames(channel: u16, message: &Message, contents: &Contents, frame_max: u32, out: &mut Vec<AMQPFrame>) {
    let (properties, body) = wire_content(message, contents);
    out.push(AMQPFrame::Header(channel, AMQPContentHeader { class_id: 60, body_size: body.len() as u64, properties }));
    let chunk = (frame_max.max(4096) - 8) as usize;
    for part in body.chunks(chunk) {
        out.push(AMQPFrame::Body(channel, part.to_vec()));
    }
}

/// How a connection takes events (negotiated at its handshake).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Peer {
    /// The negotiated frame-max.
    pub(crate) frame_max: u32,
    /// The client said it understands a server `basic.cancel` (capability
    /// `consumer_cancel_notify`), as RabbitMQ requires before it sends one.
    pub(crate) cancel_notify: bool,
}

/// The frames a client receives for a model event.
pub(crate) fn frames(event: &Event, contents: &Contents, peer: Peer) -> Vec<AMQPFrame> {
    let mut out = Vec::new();
    let method = |channel: u16, class: AMQPClass| AMQPFrame::Method(channel, class);
    match event {
        Event::ConnectionOpenOk { .. } => {
            out.push(method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {}))))
        }
        Event::ConnectionCloseOk { .. } => {
            out.push(method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {}))))
        }
        Event::ChannelOpenOk { ch } => {
            out.push(method(ch.channel, AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {}))))
        }
        Event::ChannelCloseOk { ch } => {
            out.push(method(ch.channel, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}))))
        }
        Event::Reply { ch, reply } => reply_frames(ch.channel, reply, contents, peer, &mut out),
        Event::Deliver { ch, consumer_tag, delivery_tag, redelivered, message, .. } => {
            let deliver = basic::Deliver {
                consumer_tag: ShortString::from(consumer_tag.as_str()),
                delivery_tag: *delivery_tag,
                redelivered: *redelivered,
                exchange: ShortString::from(message.0.exchange.as_str()),
                routing_key: ShortString::from(message.0.routing_key.as_str()),
            };
            out.push(method(ch.channel, AMQPClass::Basic(basic::AMQPMethod::Deliver(deliver))));
            content_frames(ch.channel, message, contents, peer.frame_max, &mut out);
        }
        Event::Return { ch, code, message } => {
            let ret = basic::Return {
                reply_code: code.code(),
                reply_text: ShortString::from(code_name(code.code())),
                exchange: ShortString::from(message.0.exchange.as_str()),
                routing_key: ShortString::from(message.0.routing_key.as_str()),
            };
            out.push(method(ch.channel, AMQPClass::Basic(basic::AMQPMethod::Return(ret))));
            content_frames(ch.channel, message, contents, peer.frame_max, &mut out);
        }
        Event::Confirm { ch, seq, ack } => {
            let m = if *ack {
                basic::AMQPMethod::Ack(basic::Ack { delivery_tag: *seq, multiple: false })
            } else {
                basic::AMQPMethod::Nack(basic::Nack { delivery_tag: *seq, multiple: false, requeue: false })
            };
            out.push(method(ch.channel, AMQPClass::Basic(m)));
        }
        Event::Cancel { ch, consumer_tag } => {
            if peer.cancel_notify {
                let cancel = basic::Cancel { consumer_tag: ShortString::from(consumer_tag.as_str()), nowait: true };
                out.push(method(ch.channel, AMQPClass::Basic(basic::AMQPMethod::Cancel(cancel))));
            }
        }
        Event::ChannelClosed { ch, code, method: m } => {
            let (detail, class_id, method_id) = cause(*code, Some(*m));
            out.push(channel_close(ch.channel, code.code(), &detail, class_id, method_id));
        }
        Event::ConnectionClosed { code, method: m, .. } => {
            let (detail, class_id, method_id) = cause(*code, *m);
            out.push(connection_close(code.code(), &detail, class_id, method_id));
        }
    }
    out
}

fn reply_frames(channel: u16, reply: &Reply, contents: &Contents, peer: Peer, out: &mut Vec<AMQPFrame>) {
    let class = match reply {
        Reply::ExchangeDeclareOk => AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {})),
        Reply::ExchangeDeleteOk => AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {})),
        Reply::ExchangeBindOk => AMQPClass::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {})),
        Reply::ExchangeUnbindOk => AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {})),
        Reply::QueueDeclareOk { queue, message_count, consumer_count } => {
            AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                queue: ShortString::from(queue.as_str()),
                message_count: *message_count,
                consumer_count: *consumer_count,
            }))
        }
        Reply::QueueBindOk => AMQPClass::Queue(queue::AMQPMethod::BindOk(queue::BindOk {})),
        Reply::QueueUnbindOk => AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {})),
        Reply::QueuePurgeOk { message_count } => {
            AMQPClass::Queue(queue::AMQPMethod::PurgeOk(queue::PurgeOk { message_count: *message_count }))
        }
        Reply::QueueDeleteOk { message_count } => {
            AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk { message_count: *message_count }))
        }
        Reply::QosOk => AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})),
        Reply::ConsumeOk { consumer_tag } => AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
            consumer_tag: ShortString::from(consumer_tag.as_str()),
        })),
        Reply::CancelOk { consumer_tag } => AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk {
            consumer_tag: ShortString::from(consumer_tag.as_str()),
        })),
        Reply::GetOk { delivery_tag, redelivered, message_count, message, .. } => {
            let get_ok = basic::GetOk {
                delivery_tag: *delivery_tag,
                redelivered: *redelivered,
                exchange: ShortString::from(message.0.exchange.as_str()),
                routing_key: ShortString::from(message.0.routing_key.as_str()),
                message_count: *message_count,
            };
            out.push(AMQPFrame::Method(channel, AMQPClass::Basic(basic::AMQPMethod::GetOk(get_ok))));
            content_frames(channel, message, contents, peer.frame_max, out);
            return;
        }
        Reply::GetEmpty => AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})),
        Reply::RecoverOk => AMQPClass::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})),
        Reply::ConfirmSelectOk => AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
        Reply::TxSelectOk => AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})),
        Reply::TxCommitOk => AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})),
        Reply::TxRollbackOk => AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})),
    };
    out.push(AMQPFrame::Method(channel, class));
}

/// Whether `(class_id, method_id)` names a method of AMQP 0-9-1 (with RabbitMQ's extensions),
/// for telling an unknown method (540) from a malformed one (501).
pub(crate) fn known_method(class_id: u16, method_id: u16) -> bool {
    let methods: &[u16] = match class_id {
        10 => &[10, 11, 20, 21, 30, 31, 40, 41, 50, 51, 60, 61, 70, 71],
        20 => &[10, 11, 20, 21, 40, 41],
        30 => &[10, 11],
        40 => &[10, 11, 20, 21, 30, 31, 40, 51],
        50 => &[10, 11, 20, 21, 30, 31, 40, 41, 50, 51],
        60 => &[10, 11, 20, 21, 30, 31, 40, 50, 60, 70, 71, 72, 80, 90, 100, 110, 111, 120],
        85 => &[10, 11],
        90 => &[10, 11, 20, 21, 30, 31],
        _ => &[],
    };
    methods.contains(&method_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::AMQPValue;
    use amqp_model::Value;

    #[test]
    fn tables_keep_what_the_model_keeps() {
        let mut t = FieldTable::default();
        t.insert("a".into(), AMQPValue::ShortShortInt(-3));
        t.insert("b".into(), AMQPValue::LongString("x".into()));
        t.insert("c".into(), AMQPValue::Boolean(true));
        let m = table(&t).expect("all kept");
        assert_eq!(m.get("a"), Some(&Value::Int(-3)));
        assert_eq!(field_table(&m).inner().get("b"), Some(&AMQPValue::LongString("x".into())));
        t.insert("d".into(), AMQPValue::Double(1.5));
        assert!(table(&t).unwrap_err().contains("`d`"));
        assert_eq!(headers(&t).len(), 3);
    }

    #[test]
    fn bodies_are_cut_to_the_frame_size() {
        let wire = Wire { props: basic::AMQPProperties::default().with_delivery_mode(2), body: vec![b'x'; 10_000] };
        let message = Message(Arc::new(amqp_model::types::MessageData {
            id: amqp_model::MsgId(7),
            exchange: "".into(),
            routing_key: "q".into(),
            content: content(&wire),
        }));
        let mut contents = Contents::new();
        contents.insert(7, Arc::new(wire));
        let mut out = Vec::new();
        content_frames(1, &message, &contents, 4096, &mut out);
        let sizes: Vec<usize> =
            out[1..].iter().map(|f| if let AMQPFrame::Body(_, b) = f { b.len() } else { 0 }).collect();
        assert_eq!(sizes, vec![4088, 4088, 1824]);
        assert!(known_method(60, 40) && !known_method(60, 41) && !known_method(99, 10));
    }
}
