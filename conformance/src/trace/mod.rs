//! Traces: the conformance suite's test files.
//!
//! A trace is a readable, line-oriented page of client actions on named connections (`c1`) and
//! channels (`c1.1`), written with the specification's method names, plus optional expectations
//! a reader wants to state. The same text format is read ([`parse`]) and written
//! ([`write`](fn@write)), so a generated or minimised trace is saved in the format people write by
//! hand. See `docs/traces.md` for the grammar.
//!
//! ```text
//! title: Work queue with manual acknowledgement (tutorial 3.2)
//! cite: basic ack multiple exists
//!
//! c1 connection.open
//! c1.1 channel.open
//! c1.1 queue.declare ja durable
//! c1.1 basic.publish "" ja hello persistent
//! c1.1 basic.consume ja w1
//! expect c1.1 basic.deliver w1 1 "" ja hello persistent
//! ```

mod parse;
mod types;
mod write;

pub use parse::{parse, parse_event, ParseError};
pub use types::{Step, StepKind, Trace};
pub use write::{write, write_command, write_event, write_expected};

/// A name as the trace syntax writes it (bare, or quoted when it must be).
pub fn token_of(name: &str) -> String {
    amqp_model::text::token(name)
}
