//! What a client (or the environment) does to the broker: one variant per AMQP method the model
//! implements, addressed to a connection or channel, plus environment events.

use crate::types::{ChanRef, ConnId, Content, ExchangeKind, Method, Name, Table};
use serde::{Deserialize, Serialize};

/// A client command or environment event.
///
/// Field names follow the specification's field names. Flags that the model does not implement
/// (`nowait`, `immediate`, `prefetch-size`, `no-local`) are absent; see docs/model.md.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Command {
    /// A completed connection handshake (start, tune, open) for `conn`.
    ConnectionOpen {
        conn: ConnId,
    },
    /// `connection.close` from the client.
    ConnectionClose {
        conn: ConnId,
    },
    /// The client's socket goes away without a close (environment event).
    ConnectionDrop {
        conn: ConnId,
    },
    ChannelOpen {
        ch: ChanRef,
    },
    ChannelClose {
        ch: ChanRef,
    },
    ExchangeDeclare {
        ch: ChanRef,
        exchange: Name,
        kind: ExchangeKind,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: Table,
    },
    ExchangeDelete {
        ch: ChanRef,
        exchange: Name,
        if_unused: bool,
    },
    ExchangeBind {
        ch: ChanRef,
        destination: Name,
        source: Name,
        routing_key: Name,
        arguments: Table,
    },
    ExchangeUnbind {
        ch: ChanRef,
        destination: Name,
        source: Name,
        routing_key: Name,
        arguments: Table,
    },
    QueueDeclare {
        ch: ChanRef,
        queue: Name,
        passive: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: Table,
    },
    QueueBind {
        ch: ChanRef,
        queue: Name,
        exchange: Name,
        routing_key: Name,
        arguments: Table,
    },
    QueueUnbind {
        ch: ChanRef,
        queue: Name,
        exchange: Name,
        routing_key: Name,
        arguments: Table,
    },
    QueuePurge {
        ch: ChanRef,
        queue: Name,
    },
    QueueDelete {
        ch: ChanRef,
        queue: Name,
        if_unused: bool,
        if_empty: bool,
    },
    BasicQos {
        ch: ChanRef,
        prefetch_count: u16,
        global: bool,
    },
    BasicConsume {
        ch: ChanRef,
        queue: Name,
        consumer_tag: Name,
        no_ack: bool,
        exclusive: bool,
        /// The consumer's arguments (RabbitMQ: `x-priority`).
        #[serde(default)]
        arguments: Table,
    },
    BasicCancel {
        ch: ChanRef,
        consumer_tag: Name,
    },
    BasicPublish {
        ch: ChanRef,
        exchange: Name,
        routing_key: Name,
        mandatory: bool,
        content: Content,
    },
    BasicGet {
        ch: ChanRef,
        queue: Name,
        no_ack: bool,
    },
    BasicAck {
        ch: ChanRef,
        delivery_tag: u64,
        multiple: bool,
    },
    BasicNack {
        ch: ChanRef,
        delivery_tag: u64,
        multiple: bool,
        requeue: bool,
    },
    BasicReject {
        ch: ChanRef,
        delivery_tag: u64,
        requeue: bool,
    },
    BasicRecover {
        ch: ChanRef,
        requeue: bool,
    },
    ConfirmSelect {
        ch: ChanRef,
    },
    TxSelect {
        ch: ChanRef,
    },
    TxCommit {
        ch: ChanRef,
    },
    TxRollback {
        ch: ChanRef,
    },
    /// The broker restarts (environment event): every connection is forced closed, and only
    /// durable entities and persistent messages in durable queues remain.
    Restart,
    /// Time passes: the broker's clock moves on by `ms` milliseconds (environment event), and
    /// what falls due meanwhile (an expiry, [`crate::lifetime`]) may happen.
    Pass {
        ms: u32,
    },
}

impl Command {
    /// The channel the command is addressed to, if it is a channel method.
    pub fn channel(&self) -> Option<ChanRef> {
        use Command::*;
        match self {
            ConnectionOpen { .. } | ConnectionClose { .. } | ConnectionDrop { .. } | Restart | Pass { .. } => None,
            ChannelOpen { ch }
            | ChannelClose { ch }
            | ExchangeDeclare { ch, .. }
            | ExchangeDelete { ch, .. }
            | ExchangeBind { ch, .. }
            | ExchangeUnbind { ch, .. }
            | QueueDeclare { ch, .. }
            | QueueBind { ch, .. }
            | QueueUnbind { ch, .. }
            | QueuePurge { ch, .. }
            | QueueDelete { ch, .. }
            | BasicQos { ch, .. }
            | BasicConsume { ch, .. }
            | BasicCancel { ch, .. }
            | BasicPublish { ch, .. }
            | BasicGet { ch, .. }
            | BasicAck { ch, .. }
            | BasicNack { ch, .. }
            | BasicReject { ch, .. }
            | BasicRecover { ch, .. }
            | ConfirmSelect { ch }
            | TxSelect { ch }
            | TxCommit { ch }
            | TxRollback { ch } => Some(*ch),
        }
    }

    /// The connection the command is addressed to (none for [`Command::Restart`]).
    pub fn connection(&self) -> Option<ConnId> {
        match self {
            Command::ConnectionOpen { conn } | Command::ConnectionClose { conn } | Command::ConnectionDrop { conn } => {
                Some(*conn)
            }
            Command::Restart | Command::Pass { .. } => None,
            other => other.channel().map(|c| c.conn),
        }
    }

    /// The AMQP method this command sends (none for environment events).
    pub fn method(&self) -> Option<Method> {
        use Command::*;
        Some(match self {
            ConnectionOpen { .. } => Method::ConnectionOpen,
            ConnectionClose { .. } => Method::ConnectionClose,
            ConnectionDrop { .. } | Restart | Pass { .. } => return None,
            ChannelOpen { .. } => Method::ChannelOpen,
            ChannelClose { .. } => Method::ChannelClose,
            ExchangeDeclare { .. } => Method::ExchangeDeclare,
            ExchangeDelete { .. } => Method::ExchangeDelete,
            ExchangeBind { .. } => Method::ExchangeBind,
            ExchangeUnbind { .. } => Method::ExchangeUnbind,
            QueueDeclare { .. } => Method::QueueDeclare,
            QueueBind { .. } => Method::QueueBind,
            QueueUnbind { .. } => Method::QueueUnbind,
            QueuePurge { .. } => Method::QueuePurge,
            QueueDelete { .. } => Method::QueueDelete,
            BasicQos { .. } => Method::BasicQos,
            BasicConsume { .. } => Method::BasicConsume,
            BasicCancel { .. } => Method::BasicCancel,
            BasicPublish { .. } => Method::BasicPublish,
            BasicGet { .. } => Method::BasicGet,
            BasicAck { .. } => Method::BasicAck,
            BasicNack { .. } => Method::BasicNack,
            BasicReject { .. } => Method::BasicReject,
            BasicRecover { .. } => Method::BasicRecover,
            ConfirmSelect { .. } => Method::ConfirmSelect,
            TxSelect { .. } => Method::TxSelect,
            TxCommit { .. } => Method::TxCommit,
            TxRollback { .. } => Method::TxRollback,
        })
    }
}

impl Command {
    /// The same command with every name (exchange, queue, routing key, consumer tag, body)
    /// passed through `f`: used to substitute variables such as `$q` with real names.
    pub fn map_names(&self, f: impl Fn(&Name) -> Name) -> Command {
        use Command::*;
        let mut c = self.clone();
        match &mut c {
            ExchangeDeclare { exchange, .. } | ExchangeDelete { exchange, .. } => *exchange = f(exchange),
            ExchangeBind { destination, source, routing_key, .. }
            | ExchangeUnbind { destination, source, routing_key, .. } => {
                *destination = f(destination);
                *source = f(source);
                *routing_key = f(routing_key);
            }
            QueueDeclare { queue, .. }
            | QueuePurge { queue, .. }
            | QueueDelete { queue, .. }
            | BasicGet { queue, .. } => *queue = f(queue),
            QueueBind { queue, exchange, routing_key, .. } | QueueUnbind { queue, exchange, routing_key, .. } => {
                *queue = f(queue);
                *exchange = f(exchange);
                *routing_key = f(routing_key);
            }
            BasicConsume { queue, consumer_tag, .. } => {
                *queue = f(queue);
                *consumer_tag = f(consumer_tag);
            }
            BasicCancel { consumer_tag, .. } => *consumer_tag = f(consumer_tag),
            BasicPublish { exchange, routing_key, content, .. } => {
                *exchange = f(exchange);
                *routing_key = f(routing_key);
                content.body = f(&content.body);
            }
            _ => {}
        }
        c
    }
}
