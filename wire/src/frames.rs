//! A model event as the frames a client receives: replies, deliveries and returns with their
//! content (the message as published whenever the model agrees with it), closes with a reply text
//! in RabbitMQ's form.

use crate::content::{model_content, wire_properties};
use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{basic, channel, confirm, connection, exchange, queue, tx, AMQPClass};
use amq_protocol::types::ShortString;
use amqp_model::event::Reply;
use amqp_model::{Content, Event, Message, Method, ReplyCode};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A message as its publisher sent it: every property and the body's bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    /// The content header's properties.
    pub props: basic::AMQPProperties,
    /// The body.
    pub body: Vec<u8>,
}

/// Published messages by model message identity.
pub type Contents = BTreeMap<u32, Arc<Published>>;

/// The name RabbitMQ gives a reply code in a reply text (`NOT_FOUND`).
pub fn code_name(code: u16) -> &'static str {
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
pub fn reply_text(code: u16, detail: &str) -> ShortString {
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
pub fn connection_close(code: u16, detail: &str, class_id: u16, method_id: u16) -> AMQPFrame {
    let close = connection::Close { reply_code: code, reply_text: reply_text(code, detail), class_id, method_id };
    AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(close)))
}

/// A `channel.close` frame.
pub fn channel_close(channel: u16, code: u16, detail: &str, class_id: u16, method_id: u16) -> AMQPFrame {
    let close = channel::Close { reply_code: code, reply_text: reply_text(code, detail), class_id, method_id };
    AMQPFrame::Method(channel, AMQPClass::Channel(channel::AMQPMethod::Close(close)))
}

/// The `channel.close` or `connection.close` frame of a close event, its reply text the code's
/// name and `detail` (see [`crate::reason`] for the words), naming the method that caused it.
/// `None` for any other event.
pub fn close_frame(event: &Event, detail: &str) -> Option<AMQPFrame> {
    let ids = |m: &Option<Method>| m.map_or((0, 0), |m| m.ids());
    match event {
        Event::ChannelClosed { ch, code, method } => {
            let (class_id, method_id) = method.ids();
            Some(channel_close(ch.channel, code.code(), detail, class_id, method_id))
        }
        Event::ConnectionClosed { code, method, .. } => {
            let (class_id, method_id) = ids(method);
            Some(connection_close(code.code(), detail, class_id, method_id))
        }
        _ => None,
    }
}

/// The properties and body a message is sent with: as published when the model's content agrees
/// with the published message, otherwise rebuilt from the model's content.
fn wire_content(message: &Message, contents: &Contents) -> (basic::AMQPProperties, Vec<u8>) {
    let c = &message.0.content;
    if let Some(w) = contents.get(&message.id().0) {
        let model = model_content(&w.props, &w.body);
        if (Content { body: c.body.clone(), ..model.clone() }) == *c {
            let body = if model.body == c.body { w.body.clone() } else { c.body.as_str().as_bytes().to_vec() };
            return (w.props.clone(), body);
        }
    }
    if c.headers.contains_key("x-death") {
        let mut stamped = c.clone();
        stamp_deaths(&mut stamped.headers, now_seconds());
        return (wire_properties(&stamped), c.body.as_str().as_bytes().to_vec());
    }
    (wire_properties(c), c.body.as_str().as_bytes().to_vec())
}

/// Give each `x-death` entry that has none a `time` (a timestamp, in seconds), as RabbitMQ's
/// have: the model keeps no wall clock and leaves it out (`amqp_model::lifetime::dead_letter`).
fn stamp_deaths(headers: &mut amqp_model::Table, seconds: u64) {
    if let Some(amqp_model::Value::Array(deaths)) = headers.get_mut("x-death") {
        for d in deaths {
            if let amqp_model::Value::Table(t) = d {
                t.entry("time".into()).or_insert(amqp_model::Value::Timestamp(seconds));
            }
        }
    }
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
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
pub struct Peer {
    /// The negotiated frame-max.
    pub frame_max: u32,
    /// The client said it understands a server `basic.cancel` (capability
    /// `consumer_cancel_notify`), as RabbitMQ requires before it sends one.
    pub cancel_notify: bool,
}

/// The frames a client receives for a model event.
pub fn frames(event: &Event, contents: &Contents, peer: Peer) -> Vec<AMQPFrame> {
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
        Event::ChannelClosed { method: m, .. } | Event::ConnectionClosed { method: Some(m), .. } => {
            out.extend(close_frame(event, &format!("{} refused by the reference model", m.name())));
        }
        Event::ConnectionClosed { code, method: None, .. } => {
            let detail = match code {
                ReplyCode::ConnectionForced => "broker forced connection closure (restart)",
                _ => "closed by the reference model",
            };
            out.extend(close_frame(event, detail));
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

#[cfg(test)]
mod death_times {
    use super::*;
    use amqp_model::{Table, Value};

    #[test]
    fn every_x_death_entry_gets_a_time_and_keeps_one_it_has() {
        let entry = |t: Option<u64>| {
            let mut e = Table::new();
            e.insert("count".into(), Value::Int(1));
            if let Some(t) = t {
                e.insert("time".into(), Value::Timestamp(t));
            }
            Value::Table(e)
        };
        let mut headers = Table::new();
        headers.insert("x-death".into(), Value::Array(vec![entry(None), entry(Some(5))]));
        stamp_deaths(&mut headers, 1_800_000_000);
        let want = Value::Array(vec![entry(Some(1_800_000_000)), entry(Some(5))]);
        assert_eq!(headers.get("x-death"), Some(&want));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_cut_to_the_frame_size() {
        let published =
            Published { props: basic::AMQPProperties::default().with_delivery_mode(2), body: vec![b'x'; 10_000] };
        let message = Message::new(amqp_model::types::MessageData {
            id: amqp_model::MsgId(7),
            exchange: "".into(),
            routing_key: "q".into(),
            content: model_content(&published.props, &published.body),
        });
        let mut contents = Contents::new();
        contents.insert(7, Arc::new(published));
        let mut out = Vec::new();
        content_frames(1, &message, &contents, 4096, &mut out);
        let sizes: Vec<usize> =
            out[1..].iter().map(|f| if let AMQPFrame::Body(_, b) = f { b.len() } else { 0 }).collect();
        assert_eq!(sizes, vec![4088, 4088, 1824]);
    }
}
