//! AMQP 0-9-1 on the wire <-> the model's commands and events, for every party that speaks it:
//! the reference broker (`amqp-broker`) reads client methods as commands and writes events as
//! frames; the conformance runner's targets send commands and read what a broker sends as events.
//!
//! - [`client`]: the client's side of the connection handshake, for those who write frames
//!   themselves.
//! - [`codec`]: frames to and from octets, split strictly off what a socket gives.
//! - [`table`](mod@table): field tables <-> the model's [`amqp_model::Table`] (booleans, integers
//!   and strings: the kinds the model's behaviour depends on).
//! - [`request`](mod@request): a client method -> a model [`amqp_model::Command`] (or why the
//!   model cannot take it).
//! - [`frames`](mod@frames): a model [`amqp_model::Event`] -> the frames a client receives, with
//!   the message as its publisher sent it ([`Published`]) whenever it agrees with what the model
//!   says of it.
//! - [`reason`](mod@reason): why the broker closed, in RabbitMQ's words, with the rule that says
//!   so.

#![deny(missing_docs, missing_debug_implementations, unsafe_code)]

pub mod client;
pub mod codec;
pub mod content;
pub mod frames;
pub mod reason;
pub mod request;
pub mod table;

pub use codec::{encode, encode_into, FrameBuffer, FrameFault, Framed};
pub use content::{model_content, wire_properties};
pub use frames::{
    channel_close, close_frame, code_name, connection_close, frames, reply_text, Contents, Peer, Published,
};
pub use reason::{reason, Before, Reason};
pub use request::{known_method, request, Request};
pub use table::{field_table, model_value, table, wire_value};
