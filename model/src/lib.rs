//! # amqp-model
//!
//! An executable model of what an AMQP 0-9-1 broker does with exchanges, bindings, queues,
//! deliveries, acknowledgements and prefetch: a pure, deterministic state machine ([`Broker`])
//! that takes client commands ([`Command`]) and returns what clients observe ([`Event`]), with
//! the broker's own choices (which consumer, and when) exposed as internal steps
//! ([`Internal`]) rather than decided.
//!
//! Two profiles ([`Profile::spec`], [`Profile::rabbitmq`]) differ in named switches. The
//! [`check`] module model-checks the state machine with stateright.
//!
//! Each AMQP class has its module ([`exchange`], [`queue`], [`basic`], [`confirm`], [`tx`],
//! [`channel`], [`connection`]) and each exchange type its routing module ([`routing`]); the
//! doc comment of each method names the specification rules it implements. RabbitMQ's
//! message-lifetime extensions (TTL, queue expiry, length limits, dead-lettering, alternate
//! exchanges) have theirs ([`lifetime`]), citing RabbitMQ's documentation instead.

#![deny(missing_docs, missing_debug_implementations, unsafe_code)]

pub mod basic;
pub mod broker;
pub mod channel;
pub mod check;
pub mod choice;
pub mod command;
pub mod confirm;
pub mod connection;
pub mod event;
pub mod exchange;
pub mod fault;
pub mod lifetime;
pub mod methods;
pub mod profile;
pub mod queue;
pub mod quorum;
pub mod routing;
pub mod shared;
pub mod state;
pub mod text;
pub mod tx;
pub mod types;

pub use broker::{Internal, Removal, UsageError};
pub use choice::{Branch, Choice};
pub use command::Command;
pub use event::{Event, Reply};
pub use fault::{Fault, Faults};
pub use profile::{Profile, ProfileName, RecommendedTypes};
pub use state::Broker;
pub use types::{
    ChanRef, ConnId, Content, ExchangeKind, IntType, Message, Method, MsgId, Name, Properties, ReplyCode, Table, Value,
};
