//! # amqp-conformance
//!
//! The conformance runner: it will replay traces against the model ([`amqp_model`]) and against
//! live brokers, validating what a broker does against the set of behaviours the model allows.
//! This crate is a placeholder until the runner lands (issue "The conformance runner").

#![deny(missing_docs, missing_debug_implementations, unsafe_code)]

pub use amqp_model;
