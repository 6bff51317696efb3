//! # amqp-conformance
//!
//! The conformance runner: traces ([`trace`]) of client actions, replayed against the model
//! ([`amqp_model`]) and against live brokers by AMQP URI ([`target::live`]), with what a broker did
//! validated against the set of behaviours the model allows ([`validate`]).

#![deny(missing_docs, missing_debug_implementations, unsafe_code)]

pub mod book;
pub mod catalogue;
pub mod clients;
pub mod deviations;
pub mod figures;
pub mod generate;
pub mod input;
pub mod matrix;
pub mod proxy;
pub mod report;
pub mod run;
pub mod snapshot;
pub mod stress;
pub mod suite;
pub mod target;
pub mod trace;
pub mod validate;

pub use amqp_broker;
pub use amqp_model;
