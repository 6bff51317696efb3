//! Vocabulary shared by the whole model: names, identifiers, field tables, messages, reply codes
//! and the AMQP class/method identifiers that a close names as its cause.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// An exchange name, queue name, routing key, consumer tag or short string.
///
/// Ordered and hashed by its text, so that the model state stays deterministic. Cheap to clone:
/// up to 23 bytes (every name the model checker makes) it is kept inline and copied, with no
/// reference count for the checker's threads to contend on; a longer one is shared.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(smol_str::SmolStr);

impl Name {
    /// The text of the name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// True for the empty name (the default exchange, a server-named queue, "the last queue").
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// True when the name is in the reserved `amq.` namespace.
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with("amq.")
    }
    /// True when the name keeps to the specification's syntax for exchange and queue names: at
    /// most 127 characters, each a letter, digit, `-`, `_`, `.` or `:` (the domains'
    /// assertions, which `exchange declare exchange syntax` and `queue declare queue syntax`
    /// enforce).
    pub fn follows_syntax(&self) -> bool {
        self.0.len() <= 127 && self.has_syntax_characters()
    }

    /// Whether every character is a letter, digit, `-`, `_`, `.` or `:` (the syntax rules'
    /// characters, whatever the length).
    pub fn has_syntax_characters(&self) -> bool {
        self.0.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Name(smol_str::SmolStr::new(s))
    }
}
impl From<String> for Name {
    fn from(s: String) -> Self {
        Name(smol_str::SmolStr::from(s))
    }
}
impl Default for Name {
    fn default() -> Self {
        Name::from("")
    }
}

/// A client connection, named by the client (traces call them `c1`, `c2`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConnId(pub u16);

/// A channel: its connection and its channel number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChanRef {
    /// The connection the channel belongs to.
    pub conn: ConnId,
    /// The channel number on that connection (1 and up).
    pub channel: u16,
}

impl ChanRef {
    /// Channel `channel` of connection `conn`.
    pub const fn new(conn: u16, channel: u16) -> Self {
        ChanRef { conn: ConnId(conn), channel }
    }
}

impl fmt::Display for ChanRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}.{}", self.conn.0, self.channel)
    }
}

/// A value in a field table (declare arguments, binding arguments, message headers).
///
/// Every field type of AMQP 0-9-1 (as RabbitMQ's errata lists them) has a variant, so that a trace
/// can send what a client sends; equality is by kind and value, so the integer `1` and the string
/// `"1"` differ, as they do on the wire, and so do `1` sent as a long and as an unsigned octet.
/// The model's behaviour reads booleans, integers ([`Value::int`]: any width) and strings; the
/// other kinds are carried as they are.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A boolean (`t`).
    Bool(bool),
    /// An integer as clients send one when they do not choose a width: a long (`I`) when it
    /// fits in 32 bits, a long-long (`l`) otherwise.
    Int(i64),
    /// A string (long string `S`).
    Str(Name),
    /// An integer of a width chosen by the sender (`u8:5` in a trace).
    Sized(IntType, i64),
    /// A single-precision float (`f`), kept as its IEEE 754 bits so that values compare exactly.
    Float(u32),
    /// A double-precision float (`d`), kept as its IEEE 754 bits.
    Double(u64),
    /// A decimal (`D`): `value` divided by ten to the power `scale`.
    Decimal {
        /// The number of decimal digits after the point.
        scale: u8,
        /// The unscaled value.
        value: u32,
    },
    /// A timestamp (`T`): seconds since the Unix epoch, any 64-bit value.
    Timestamp(u64),
    /// A byte array (`x`).
    Bytes(Vec<u8>),
    /// A field array (`A`).
    Array(Vec<Value>),
    /// A nested field table (`F`).
    Table(BTreeMap<Name, Value>),
    /// No value (`V`).
    Void,
}

/// The integer field types a sender may choose ([`Value::Sized`]), named by their Rust types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntType {
    /// Short-short-int (`b`).
    I8,
    /// Short-short-uint (`B`).
    U8,
    /// Short-int (`s`, `U` in the specification's grammar).
    I16,
    /// Short-uint (`u`).
    U16,
    /// Long-int (`I`).
    I32,
    /// Long-uint (`i`).
    U32,
    /// Long-long-int (`l`).
    I64,
}

impl IntType {
    /// Every integer type, narrowest first.
    pub const ALL: [IntType; 7] =
        [IntType::I8, IntType::U8, IntType::I16, IntType::U16, IntType::I32, IntType::U32, IntType::I64];

    /// How a trace writes it (`u8`).
    pub fn name(self) -> &'static str {
        match self {
            IntType::I8 => "i8",
            IntType::U8 => "u8",
            IntType::I16 => "i16",
            IntType::U16 => "u16",
            IntType::I32 => "i32",
            IntType::U32 => "u32",
            IntType::I64 => "i64",
        }
    }

    /// The type a trace names `name`.
    pub fn named(name: &str) -> Option<IntType> {
        IntType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether `v` can be sent as this type.
    pub fn holds(self, v: i64) -> bool {
        let (lo, hi) = match self {
            IntType::I8 => (i64::from(i8::MIN), i64::from(i8::MAX)),
            IntType::U8 => (0, i64::from(u8::MAX)),
            IntType::I16 => (i64::from(i16::MIN), i64::from(i16::MAX)),
            IntType::U16 => (0, i64::from(u16::MAX)),
            IntType::I32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
            IntType::U32 => (0, i64::from(u32::MAX)),
            IntType::I64 => (i64::MIN, i64::MAX),
        };
        (lo..=hi).contains(&v)
    }
}

impl Value {
    /// The integer this value holds, whatever its width.
    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(i) | Value::Sized(_, i) => Some(*i),
            _ => None,
        }
    }
}

/// A field table: ordered, so that equality and hashing are deterministic.
pub type Table = BTreeMap<Name, Value>;

/// The identity the model gives a published message when it is routed (ghost data: a broker does
/// not send it). Identities grow in routing order, so they also give a queue's arrival order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MsgId(pub u32);

/// What a publisher sends as content: the body, the properties the model's behaviour depends on,
/// and the ones a broker passes on unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Content {
    /// The message body (text, for readable traces).
    pub body: Name,
    /// `delivery-mode = 2`: the message survives a restart when it sits in a durable queue.
    pub persistent: bool,
    /// The `headers` property, matched by headers exchanges.
    pub headers: Table,
    /// The `priority` property (`basic 06`): absent is read as 0.
    pub priority: Option<u8>,
    /// The properties a broker delivers as they were published.
    pub properties: Properties,
}

/// The basic properties other than the headers, the delivery mode and the priority: those a
/// broker passes on as published, and `expiration` ("for implementation use": under `rabbitmq`
/// a message's time to live, [`crate::lifetime::ttl`]). `user-id`, which brokers check against
/// the connection's user, is not among them, nor is the deprecated `cluster-id`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Properties {
    /// The text properties that are set, by their index in [`Properties::TEXT`] (a map, small when
    /// empty, as most are).
    pub text: BTreeMap<u8, Name>,
    /// `timestamp`: any 64-bit value (seconds since the Unix epoch, by convention).
    pub timestamp: Option<u64>,
}

impl Properties {
    /// The names of the text properties, in the specification's order (`type` is the property
    /// the specification calls `type`).
    pub const TEXT: [&'static str; 8] = [
        "content-type",
        "content-encoding",
        "correlation-id",
        "reply-to",
        "message-id",
        "type",
        "app-id",
        "expiration",
    ];

    /// The text property `name` (one of [`Properties::TEXT`]).
    pub fn get(&self, name: &str) -> Option<&Name> {
        let i = Self::TEXT.iter().position(|n| *n == name)?;
        self.text.get(&(i as u8))
    }

    /// Each text property: its name and its value if set, in [`Properties::TEXT`]'s order.
    pub fn texts(&self) -> impl Iterator<Item = (&'static str, Option<&Name>)> {
        Self::TEXT.iter().enumerate().map(|(i, n)| (*n, self.text.get(&(i as u8))))
    }

    /// Set the text property `name` (one of [`Properties::TEXT`]).
    ///
    /// # Panics
    /// If `name` is not a text property's name.
    pub fn set(&mut self, name: &str, value: Option<Name>) {
        let i = Self::TEXT.iter().position(|n| *n == name).unwrap_or_else(|| panic!("no text property `{name}`"));
        match value {
            Some(v) => self.text.insert(i as u8, v),
            None => self.text.remove(&(i as u8)),
        };
    }
}

impl Content {
    /// A transient message with this body and no headers.
    pub fn text(body: &str) -> Self {
        Content { body: body.into(), ..Content::default() }
    }
    /// A persistent message with this body.
    pub fn persistent(body: &str) -> Self {
        Content { body: body.into(), persistent: true, ..Content::default() }
    }
}

/// A routed message: its identity, the exchange and routing key it was published with, and its
/// content. Shared between the queues it was routed to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Message(pub crate::shared::Shared<MessageData>);

/// The fields of a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageData {
    /// Ghost identity (see [`MsgId`]).
    pub id: MsgId,
    /// The exchange named in `basic.publish`.
    pub exchange: Name,
    /// The routing key given in `basic.publish`.
    pub routing_key: Name,
    /// Body and properties.
    pub content: Content,
}

impl Message {
    /// A message with these fields.
    pub fn new(data: MessageData) -> Self {
        Message(crate::shared::Shared::new(data))
    }
    /// The ghost identity.
    pub fn id(&self) -> MsgId {
        self.0.id
    }
    /// Whether the message was published persistent.
    pub fn persistent(&self) -> bool {
        self.0.content.persistent
    }
}

/// The exchange types the model implements: direct and fanout (`exchange required-types`), topic
/// and headers (`exchange recommended-types`); any other type name is refused.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeKind {
    /// Routes on equality of routing key and binding key.
    Direct,
    /// Routes to every binding.
    Fanout,
    /// Routes on dot-separated patterns with `*` and `#`.
    Topic,
    /// Routes on message headers against binding arguments.
    Headers,
    /// A type the model does not implement (declaring it is refused with 503). The model adds no
    /// type beyond the standard four, which `exchange extensions` leaves to the implementation.
    Other(Name),
}

impl ExchangeKind {
    /// The type name as it appears in `exchange.declare`.
    pub fn as_str(&self) -> &str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
            ExchangeKind::Other(n) => n.as_str(),
        }
    }
    /// Parse a type name; unknown names become [`ExchangeKind::Other`].
    pub fn parse(s: &str) -> Self {
        match s {
            "direct" => ExchangeKind::Direct,
            "fanout" => ExchangeKind::Fanout,
            "topic" => ExchangeKind::Topic,
            "headers" => ExchangeKind::Headers,
            other => ExchangeKind::Other(other.into()),
        }
    }
}

/// AMQP reply codes the model emits (the spec's `constant` elements, plus 312 from the errata).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplyCode {
    /// 200 reply-success.
    ReplySuccess,
    /// 312 no-route (basic.return of an unroutable mandatory message).
    NoRoute,
    /// 320 connection-forced (the broker closed the connection, e.g. on restart).
    ConnectionForced,
    /// 403 access-refused.
    AccessRefused,
    /// 404 not-found.
    NotFound,
    /// 405 resource-locked.
    ResourceLocked,
    /// 406 precondition-failed.
    PreconditionFailed,
    /// 501 frame-error.
    FrameError,
    /// 502 syntax-error.
    SyntaxError,
    /// 503 command-invalid.
    CommandInvalid,
    /// 504 channel-error.
    ChannelError,
    /// 505 unexpected-frame.
    UnexpectedFrame,
    /// 506 resource-error (too many entities, e.g. past a resource limit).
    ResourceError,
    /// 530 not-allowed.
    NotAllowed,
    /// 540 not-implemented.
    NotImplemented,
    /// 541 internal-error.
    InternalError,
}

impl ReplyCode {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            ReplyCode::ReplySuccess => 200,
            ReplyCode::NoRoute => 312,
            ReplyCode::ConnectionForced => 320,
            ReplyCode::AccessRefused => 403,
            ReplyCode::NotFound => 404,
            ReplyCode::ResourceLocked => 405,
            ReplyCode::PreconditionFailed => 406,
            ReplyCode::FrameError => 501,
            ReplyCode::SyntaxError => 502,
            ReplyCode::CommandInvalid => 503,
            ReplyCode::ChannelError => 504,
            ReplyCode::UnexpectedFrame => 505,
            ReplyCode::ResourceError => 506,
            ReplyCode::NotAllowed => 530,
            ReplyCode::NotImplemented => 540,
            ReplyCode::InternalError => 541,
        }
    }
    /// The code for a number, if the model knows it.
    pub fn from_code(code: u16) -> Option<Self> {
        ALL_CODES.iter().copied().find(|c| c.code() == code)
    }
    /// Soft errors close a channel; hard errors close the connection.
    pub fn is_hard(self) -> bool {
        self.code() >= 500 || self == ReplyCode::ConnectionForced
    }
}

const ALL_CODES: [ReplyCode; 16] = [
    ReplyCode::ReplySuccess,
    ReplyCode::NoRoute,
    ReplyCode::ConnectionForced,
    ReplyCode::AccessRefused,
    ReplyCode::NotFound,
    ReplyCode::ResourceLocked,
    ReplyCode::PreconditionFailed,
    ReplyCode::FrameError,
    ReplyCode::SyntaxError,
    ReplyCode::CommandInvalid,
    ReplyCode::ChannelError,
    ReplyCode::UnexpectedFrame,
    ReplyCode::ResourceError,
    ReplyCode::NotAllowed,
    ReplyCode::NotImplemented,
    ReplyCode::InternalError,
];

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// An AMQP method, as a close names the method that caused it (class id, method id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Method {
    ConnectionOpen,
    ConnectionClose,
    ChannelOpen,
    ChannelClose,
    ExchangeDeclare,
    ExchangeDelete,
    ExchangeBind,
    ExchangeUnbind,
    QueueDeclare,
    QueueBind,
    QueuePurge,
    QueueDelete,
    QueueUnbind,
    BasicQos,
    BasicConsume,
    BasicCancel,
    BasicPublish,
    BasicGet,
    BasicAck,
    BasicReject,
    BasicRecover,
    BasicNack,
    ConfirmSelect,
    TxSelect,
    TxCommit,
    TxRollback,
}

impl Method {
    /// Every method the model knows.
    pub const ALL: [Method; 26] = {
        use Method::*;
        [
            ConnectionOpen,
            ConnectionClose,
            ChannelOpen,
            ChannelClose,
            ExchangeDeclare,
            ExchangeDelete,
            ExchangeBind,
            ExchangeUnbind,
            QueueDeclare,
            QueueBind,
            QueuePurge,
            QueueDelete,
            QueueUnbind,
            BasicQos,
            BasicConsume,
            BasicCancel,
            BasicPublish,
            BasicGet,
            BasicAck,
            BasicReject,
            BasicRecover,
            BasicNack,
            ConfirmSelect,
            TxSelect,
            TxCommit,
            TxRollback,
        ]
    };

    /// The method's name as the specification writes it (`queue.declare`).
    pub fn name(self) -> &'static str {
        use Method::*;
        match self {
            ConnectionOpen => "connection.open",
            ConnectionClose => "connection.close",
            ChannelOpen => "channel.open",
            ChannelClose => "channel.close",
            ExchangeDeclare => "exchange.declare",
            ExchangeDelete => "exchange.delete",
            ExchangeBind => "exchange.bind",
            ExchangeUnbind => "exchange.unbind",
            QueueDeclare => "queue.declare",
            QueueBind => "queue.bind",
            QueuePurge => "queue.purge",
            QueueDelete => "queue.delete",
            QueueUnbind => "queue.unbind",
            BasicQos => "basic.qos",
            BasicConsume => "basic.consume",
            BasicCancel => "basic.cancel",
            BasicPublish => "basic.publish",
            BasicGet => "basic.get",
            BasicAck => "basic.ack",
            BasicReject => "basic.reject",
            BasicRecover => "basic.recover",
            BasicNack => "basic.nack",
            ConfirmSelect => "confirm.select",
            TxSelect => "tx.select",
            TxCommit => "tx.commit",
            TxRollback => "tx.rollback",
        }
    }

    /// The method with this name (`queue.declare`).
    pub fn named(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    /// `(class-id, method-id)` as in the specification ([`crate::methods::METHODS`]).
    pub fn ids(self) -> (u16, u16) {
        crate::methods::ids(self.name()).expect("every method the model knows is in the table")
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}
