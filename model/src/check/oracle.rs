//! An independent routing oracle: the same routing rules written differently (topic patterns as
//! regular expressions, the exchange graph as a fixpoint), used by the checker to judge the
//! model's routing.

use crate::routing::headers::HeaderValues;
use crate::state::{Broker, Dest};
use crate::types::{ExchangeKind, Name, Table, Value};
use regex::Regex;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

thread_local! {
    static TOPIC: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// A topic pattern as a regular expression over the key written as `.w1.w2...` (each word
/// preceded by a dot, so the empty key is the empty string).
pub fn topic_regex(pattern: &str) -> String {
    let mut re = String::from("^");
    if !pattern.is_empty() {
        for w in pattern.split('.') {
            match w {
                "#" => re.push_str(r"(?:\.[^.]*)*"),
                "*" => re.push_str(r"\.[^.]*"),
                lit => {
                    re.push_str(r"\.");
                    re.push_str(&regex::escape(lit));
                }
            }
        }
    }
    re.push('$');
    re
}

/// Whether a topic pattern matches a key, by regular expression.
pub fn topic(pattern: &str, key: &str) -> bool {
    let subject = if key.is_empty() { String::new() } else { format!(".{key}") };
    TOPIC.with(|cache| {
        let mut cache = cache.borrow_mut();
        let re = cache
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(&topic_regex(pattern)).expect("escaped pattern"));
        re.is_match(&subject)
    })
}

/// Whether a headers binding matches, by counting matched pairs (values compared as `reading`
/// says, through [`canonical`] forms; `x-` arguments counted in RabbitMQ's `-with-x` modes where
/// `with_x`).
pub fn headers(arguments: &Table, message: &Table, reading: HeaderValues, with_x: bool) -> bool {
    let mode = match arguments.get("x-match") {
        Some(Value::Str(m)) => m.as_str(),
        _ => "all",
    };
    let x_too = with_x && (mode == "all-with-x" || mode == "any-with-x");
    let wanted: Vec<(&Name, &Value)> =
        arguments.iter().filter(|(k, _)| k.as_str() != "x-match" && (x_too || !k.as_str().starts_with("x-"))).collect();
    let bit = |b: u8| reading.0 & b != 0;
    let same = |want: &Value, have: &Value| {
        (bit(HeaderValues::VOID_ANY) && *want == Value::Void) || canonical(want, reading) == canonical(have, reading)
    };
    let matched = wanted.iter().filter(|(k, v)| message.get(*k).is_some_and(|h| same(v, h))).count();
    match mode {
        "any" => matched > 0,
        "any-with-x" if with_x => matched > 0,
        _ => matched == wanted.len(),
    }
}

/// A value as text that two values share exactly when `reading` counts them equal: a number as
/// the class its type falls in under the reading and its value (an integral float as the
/// integer), a decimal as its value without trailing zeros when decimals compare by value, a
/// string or byte array as its bytes when those compare, arrays and tables element by element
/// (under the reading inside only where it reaches inside), anything else as itself.
fn canonical(v: &Value, reading: HeaderValues) -> String {
    let bit = |b: u8| reading.0 & b != 0;
    let class = |own: &str| -> String {
        if bit(HeaderValues::FLOATS) {
            "number".into()
        } else if bit(HeaderValues::WIDTHS) {
            "integer".into()
        } else {
            own.into()
        }
    };
    let float = |f: f64| if f.fract() == 0.0 && f.abs() < 1e30 { format!("{}", f as i128) } else { format!("{f:?}") };
    let plain = HeaderValues::EXACT;
    match v {
        Value::Int(i) => format!("{} {i}", class("int")),
        Value::Sized(t, i) => format!("{} {i}", class(t.name())),
        Value::Timestamp(t) if bit(HeaderValues::TIMESTAMPS) => format!("{} {t}", class("ts")),
        Value::Float(b) if bit(HeaderValues::FLOATS) => format!("number {}", float(f64::from(f32::from_bits(*b)))),
        Value::Double(b) if bit(HeaderValues::FLOATS) => format!("number {}", float(f64::from_bits(*b))),
        Value::Float(b) => format!("f32 {:?}", f32::from_bits(*b)),
        Value::Double(b) => format!("f64 {:?}", f64::from_bits(*b)),
        Value::Decimal { scale, value } if bit(HeaderValues::DECIMALS) => {
            let (mut digits, mut scale) = (*value as u128, *scale);
            while scale > 0 && digits % 10 == 0 {
                digits /= 10;
                scale -= 1;
            }
            format!("decimal {digits}e-{scale}")
        }
        Value::Str(s) if bit(HeaderValues::BYTES) => format!("bytes {:?}", s.as_str().as_bytes()),
        Value::Bytes(b) if bit(HeaderValues::BYTES) => format!("bytes {b:?}"),
        Value::Array(items) => {
            let inner = if bit(HeaderValues::IN_ARRAYS) { reading.inside() } else { plain };
            let items: Vec<String> = items.iter().map(|i| canonical(i, inner)).collect();
            format!("array {items:?}")
        }
        Value::Table(t) => {
            let inner = if bit(HeaderValues::IN_TABLES) { reading.inside() } else { plain };
            let items: Vec<String> = t.iter().map(|(k, i)| format!("{k:?}={}", canonical(i, inner))).collect();
            format!("table {items:?}")
        }
        other => format!("value {other:?}"),
    }
}

fn matches(
    kind: &ExchangeKind,
    key: &Name,
    args: &Table,
    routing_key: &Name,
    msg_headers: &Table,
    reading: HeaderValues,
    with_x: bool,
) -> bool {
    match kind {
        ExchangeKind::Direct => key == routing_key,
        ExchangeKind::Fanout => true,
        ExchangeKind::Topic => topic(key.as_str(), routing_key.as_str()),
        ExchangeKind::Headers => headers(args, msg_headers, reading, with_x),
        ExchangeKind::Other(_) => false,
    }
}

/// The queues a message should reach, computed from the broker's exchanges and bindings, headers
/// bindings comparing values as `reading` says.
pub fn route(
    b: &Broker,
    exchange: &Name,
    routing_key: &Name,
    msg_headers: &Table,
    reading: HeaderValues,
) -> BTreeSet<Name> {
    let mut reached: BTreeSet<Name> = BTreeSet::from([exchange.clone()]);
    let hits = |x: &crate::state::Binding| {
        b.exchanges.get(&x.source).is_some_and(|ex| {
            matches(&ex.kind, &x.key, &x.arguments, routing_key, msg_headers, reading, b.profile.x_match_with_x)
        })
    };
    loop {
        let mut more: Vec<Name> = b
            .bindings
            .iter()
            .filter(|x| reached.contains(&x.source))
            .filter_map(|x| match &x.dest {
                Dest::Exchange(e) if !reached.contains(e) => hits(x).then(|| e.clone()),
                _ => None,
            })
            .collect();
        // RabbitMQ's alternate exchanges: one that no binding of its exchange matches is reached
        // too (the default exchange matches when a queue has the key's name).
        if b.profile.lifetime {
            for x in &reached {
                let matched = b.bindings.iter().any(|bd| &bd.source == x && hits(bd))
                    || (x.is_empty() && b.queues.contains_key(routing_key));
                let alternate = match b.exchanges.get(x).and_then(|e| e.arguments.get("alternate-exchange")) {
                    Some(Value::Str(ae)) if b.exchanges.contains_key(ae) => Some(ae.clone()),
                    _ => None,
                };
                if let Some(ae) = alternate.filter(|ae| !matched && !reached.contains(ae) && !more.contains(ae)) {
                    more.push(ae);
                }
            }
        }
        if more.is_empty() {
            break;
        }
        reached.extend(more);
    }
    let mut queues = BTreeSet::new();
    for x in b.bindings.iter() {
        if let (true, Dest::Queue(q), Some(ex)) = (reached.contains(&x.source), &x.dest, b.exchanges.get(&x.source)) {
            if matches(&ex.kind, &x.key, &x.arguments, routing_key, msg_headers, reading, b.profile.x_match_with_x) {
                queues.insert(q.clone());
            }
        }
    }
    if reached.contains("") && b.queues.contains_key(routing_key) {
        queues.insert(routing_key.clone());
    }
    queues.retain(|q| b.queues.contains_key(q));
    queues
}
