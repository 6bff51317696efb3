//! An independent routing oracle: the same routing rules written differently (topic patterns as
//! regular expressions, the exchange graph as a fixpoint), used by the checker to judge the
//! model's routing.

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

/// Whether a headers binding matches, by counting matched pairs.
pub fn headers(arguments: &Table, message: &Table) -> bool {
    let wanted: Vec<(&Name, &Value)> = arguments.iter().filter(|(k, _)| !k.as_str().starts_with("x-")).collect();
    let matched = wanted.iter().filter(|(k, v)| message.get(*k) == Some(*v)).count();
    match arguments.get("x-match") {
        Some(Value::Str(m)) if m.as_str() == "any" => matched > 0,
        _ => matched == wanted.len(),
    }
}

fn matches(kind: &ExchangeKind, key: &Name, args: &Table, routing_key: &Name, msg_headers: &Table) -> bool {
    match kind {
        ExchangeKind::Direct => key == routing_key,
        ExchangeKind::Fanout => true,
        ExchangeKind::Topic => topic(key.as_str(), routing_key.as_str()),
        ExchangeKind::Headers => headers(args, msg_headers),
        ExchangeKind::Other(_) => false,
    }
}

/// The queues a message should reach, computed from the broker's exchanges and bindings.
pub fn route(b: &Broker, exchange: &Name, routing_key: &Name, msg_headers: &Table) -> BTreeSet<Name> {
    let mut reached: BTreeSet<Name> = BTreeSet::from([exchange.clone()]);
    loop {
        let more: Vec<Name> = b
            .bindings
            .iter()
            .filter(|x| reached.contains(&x.source))
            .filter_map(|x| match &x.dest {
                Dest::Exchange(e) if !reached.contains(e) => {
                    let kind = &b.exchanges.get(&x.source)?.kind;
                    matches(kind, &x.key, &x.arguments, routing_key, msg_headers).then(|| e.clone())
                }
                _ => None,
            })
            .collect();
        if more.is_empty() {
            break;
        }
        reached.extend(more);
    }
    let mut queues = BTreeSet::new();
    for x in b.bindings.iter() {
        if let (true, Dest::Queue(q), Some(ex)) = (reached.contains(&x.source), &x.dest, b.exchanges.get(&x.source)) {
            if matches(&ex.kind, &x.key, &x.arguments, routing_key, msg_headers) {
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
