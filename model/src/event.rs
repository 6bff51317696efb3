//! What a client can observe of the broker: replies, deliveries, returns, confirms, cancels and
//! closes. Each event names the channel (or connection) it arrives on.

use crate::types::{ChanRef, ConnId, Message, Method, Name, ReplyCode};
use serde::{Deserialize, Serialize};

/// An observable broker event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Event {
    /// `connection.open-ok` (the handshake completed).
    ConnectionOpenOk {
        /// The connection.
        conn: ConnId,
    },
    /// `connection.close-ok`, answering the client's close.
    ConnectionCloseOk {
        /// The connection.
        conn: ConnId,
    },
    /// `channel.open-ok`.
    ChannelOpenOk {
        /// The channel.
        ch: ChanRef,
    },
    /// `channel.close-ok`, answering the client's close.
    ChannelCloseOk {
        /// The channel.
        ch: ChanRef,
    },
    /// The synchronous reply to a channel method.
    Reply {
        /// The channel.
        ch: ChanRef,
        /// The reply method and its fields.
        reply: Reply,
    },
    /// `basic.deliver`: a message pushed to a consumer.
    Deliver {
        /// The channel of the consumer.
        ch: ChanRef,
        /// The consumer.
        consumer_tag: Name,
        /// The channel-scoped delivery tag.
        delivery_tag: u64,
        /// Whether the message may have been delivered before.
        redelivered: bool,
        /// The queue the copy came from (not on the wire: a consumer knows it by its tag).
        queue: Name,
        /// The message (exchange, routing key and content are on the wire; the id is ghost data).
        message: Message,
    },
    /// `basic.return`: an unroutable mandatory message handed back to its publisher.
    Return {
        /// The publisher's channel.
        ch: ChanRef,
        /// The reason (312 no-route).
        code: ReplyCode,
        /// The message.
        message: Message,
    },
    /// `basic.ack` (or `basic.nack`) from the broker on a channel in confirm mode.
    Confirm {
        /// The publisher's channel.
        ch: ChanRef,
        /// The publish sequence number confirmed.
        seq: u64,
        /// Ack (true) or nack (false).
        ack: bool,
    },
    /// `basic.cancel` from the broker: the consumer's queue went away.
    Cancel {
        /// The consumer's channel.
        ch: ChanRef,
        /// The consumer.
        consumer_tag: Name,
    },
    /// `channel.close` from the broker: a channel exception.
    ChannelClosed {
        /// The channel.
        ch: ChanRef,
        /// The reply code.
        code: ReplyCode,
        /// The method that caused it.
        method: Method,
    },
    /// `connection.close` from the broker: a connection exception or a forced close.
    ConnectionClosed {
        /// The connection.
        conn: ConnId,
        /// The reply code.
        code: ReplyCode,
        /// The method that caused it, if a method did.
        method: Option<Method>,
    },
}

impl Event {
    /// The channel the event arrives on (`None` for the connection's own events).
    pub fn channel(&self) -> Option<ChanRef> {
        match self {
            Event::ConnectionOpenOk { .. } | Event::ConnectionCloseOk { .. } | Event::ConnectionClosed { .. } => None,
            Event::ChannelOpenOk { ch }
            | Event::ChannelCloseOk { ch }
            | Event::Reply { ch, .. }
            | Event::Deliver { ch, .. }
            | Event::Return { ch, .. }
            | Event::Confirm { ch, .. }
            | Event::Cancel { ch, .. }
            | Event::ChannelClosed { ch, .. } => Some(*ch),
        }
    }

    /// The connection the event arrives on.
    pub fn connection(&self) -> ConnId {
        match self {
            Event::ConnectionOpenOk { conn }
            | Event::ConnectionCloseOk { conn }
            | Event::ConnectionClosed { conn, .. } => *conn,
            other => other.channel().expect("every other event is on a channel").conn,
        }
    }
}

/// A synchronous reply method with its fields.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Reply {
    ExchangeDeclareOk,
    ExchangeDeleteOk,
    ExchangeBindOk,
    ExchangeUnbindOk,
    QueueDeclareOk {
        queue: Name,
        message_count: u32,
        consumer_count: u32,
    },
    QueueBindOk,
    QueueUnbindOk,
    QueuePurgeOk {
        message_count: u32,
    },
    QueueDeleteOk {
        message_count: u32,
    },
    QosOk,
    ConsumeOk {
        consumer_tag: Name,
    },
    CancelOk {
        consumer_tag: Name,
    },
    /// `basic.get-ok`; `message_count` is the number of messages left ready in the queue.
    GetOk {
        delivery_tag: u64,
        redelivered: bool,
        queue: Name,
        message_count: u32,
        message: Message,
    },
    GetEmpty,
    RecoverOk,
    ConfirmSelectOk,
    TxSelectOk,
    TxCommitOk,
    TxRollbackOk,
}

impl Reply {
    /// The replies that carry no fields, each as its method names it.
    pub const PLAIN: [Reply; 13] = [
        Reply::ExchangeDeclareOk,
        Reply::ExchangeDeleteOk,
        Reply::ExchangeBindOk,
        Reply::ExchangeUnbindOk,
        Reply::QueueBindOk,
        Reply::QueueUnbindOk,
        Reply::QosOk,
        Reply::GetEmpty,
        Reply::RecoverOk,
        Reply::ConfirmSelectOk,
        Reply::TxSelectOk,
        Reply::TxCommitOk,
        Reply::TxRollbackOk,
    ];

    /// The reply's method name as the specification writes it (`queue.declare-ok`).
    pub fn name(&self) -> &'static str {
        match self {
            Reply::ExchangeDeclareOk => "exchange.declare-ok",
            Reply::ExchangeDeleteOk => "exchange.delete-ok",
            Reply::ExchangeBindOk => "exchange.bind-ok",
            Reply::ExchangeUnbindOk => "exchange.unbind-ok",
            Reply::QueueDeclareOk { .. } => "queue.declare-ok",
            Reply::QueueBindOk => "queue.bind-ok",
            Reply::QueueUnbindOk => "queue.unbind-ok",
            Reply::QueuePurgeOk { .. } => "queue.purge-ok",
            Reply::QueueDeleteOk { .. } => "queue.delete-ok",
            Reply::QosOk => "basic.qos-ok",
            Reply::ConsumeOk { .. } => "basic.consume-ok",
            Reply::CancelOk { .. } => "basic.cancel-ok",
            Reply::GetOk { .. } => "basic.get-ok",
            Reply::GetEmpty => "basic.get-empty",
            Reply::RecoverOk => "basic.recover-ok",
            Reply::ConfirmSelectOk => "confirm.select-ok",
            Reply::TxSelectOk => "tx.select-ok",
            Reply::TxCommitOk => "tx.commit-ok",
            Reply::TxRollbackOk => "tx.rollback-ok",
        }
    }

    /// The reply without fields that `name` names ([`Reply::PLAIN`]).
    pub fn plain(name: &str) -> Option<Reply> {
        Reply::PLAIN.into_iter().find(|r| r.name() == name)
    }
}

#[cfg(test)]
mod reply_names {
    use super::*;

    #[test]
    fn every_reply_name_is_a_method_of_the_table() {
        for r in Reply::PLAIN {
            assert!(crate::methods::ids(r.name()).is_some(), "{}", r.name());
            assert_eq!(Reply::plain(r.name()), Some(r.clone()));
        }
        for m in crate::Method::ALL {
            assert!(crate::methods::ids(m.name()).is_some(), "{}", m.name());
        }
    }
}
