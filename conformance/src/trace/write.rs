//! Writing whole traces in the trace syntax (the inverse of [`super::parse`]); commands and
//! events are written by the model's own [`amqp_model::text`].

use super::types::{StepKind, Trace};
pub use amqp_model::text::{write_command, write_event, write_expected};
use std::fmt::Write;

/// A whole trace as text: header lines, a blank line, then one line per step.
pub fn write(trace: &Trace) -> String {
    let mut out = String::new();
    if let Some(t) = &trace.title {
        let _ = writeln!(out, "title: {t}");
    }
    for c in &trace.cites {
        let _ = writeln!(out, "cite: {c}");
    }
    if let Some(r) = &trace.recommends {
        let _ = writeln!(out, "recommends: {r}");
    }
    if let Some(p) = &trace.profile {
        let _ = writeln!(out, "profile: {p}");
    }
    if !out.is_empty() {
        out.push('\n');
    }
    for step in &trace.steps {
        match &step.kind {
            StepKind::Command { command, capture } => {
                if step.pipelined {
                    out.push_str("pipelined ");
                }
                out.push_str(&write_command(command));
                if let Some(v) = capture {
                    let _ = write!(out, " -> {v}");
                }
            }
            StepKind::Wait => out.push_str("wait"),
            StepKind::Expect(one_of) => {
                out.push_str("expect ");
                out.push_str(&write_expected(one_of));
            }
        }
        out.push('\n');
    }
    out
}
