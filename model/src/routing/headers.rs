//! Headers exchanges: a binding's arguments are matched against the message's `headers`.
//!
//! `x-match` chooses `all` (the default: every argument must be present with an equal value) or
//! `any` (at least one must be). Arguments whose names start with `x-` take no part in matching.

use crate::fault::{Fault, Faults};
use crate::types::{Table, Value};

/// Whether a binding with `arguments` matches a message with `headers`.
pub fn matches(arguments: &Table, headers: &Table, faults: Faults) -> bool {
    let any = matches!(arguments.get("x-match"), Some(Value::Str(s)) if s.as_str() == "any")
        && !faults.has(Fault::HeadersAnyIsAll);
    let mut pairs = arguments.iter().filter(|(k, _)| !k.as_str().starts_with("x-"));
    if any {
        pairs.any(|(k, v)| headers.get(k) == Some(v))
    } else {
        pairs.all(|(k, v)| headers.get(k) == Some(v))
    }
}
