//! Dead-lettering: a message that dies in a queue with an `x-dead-letter-exchange` is
//! republished there, as a new message (RabbitMQ, "Dead Letter Exchanges"). A message dies when
//! it is rejected or nacked without requeue (reason `rejected`), when it expires
//! ([`super::ttl`], `expired`), and when a length limit drops or refuses it ([`super::limits`],
//! `maxlen`). Nothing else dead-letters: not a purge, not a queue's deletion, not a requeue.
//!
//! As RabbitMQ 3.10.8 does it (probed, docs/rabbitmq-3.10.md Q40, Q41, Q44, Q64):
//!
//! - the copy is routed when its message dies, and lands in each queue it was routed to a little
//!   later, in a step of the broker's own ([`crate::Internal::Arrive`]): a `basic.get` on the
//!   dead-letter queue right after the rejection may find it empty, and a message published
//!   there after the rejection may land first; copies from one queue land in the order they
//!   died; once there, the target's limits apply as to a publish;
//! - the copy is published to the dead-letter exchange with the queue's
//!   `x-dead-letter-routing-key`, or else the message's own routing key; it is delivered with
//!   that exchange and key, not flagged redelivered, its properties and headers kept but for
//!   `expiration`, which it loses (its value kept in `x-death` as `original-expiration`);
//! - its headers gain `x-death`, an array with one table per queue and reason it died for, the
//!   latest first: `count`, `reason`, `queue`, `exchange` and `routing-keys` (where it was
//!   published from, and with which keys, before it died), and `time`, a timestamp the model
//!   leaves out (no two runs agree on it; the validator drops it from what a broker sent).
//!   Dying again in the same queue for the same reason counts up that entry and moves it first;
//!   `x-first-death-reason`, `-queue` and `-exchange` are set the first time and kept;
//! - a dead-letter exchange that does not exist drops the message, silently;
//! - cycles: a message that would go back to a queue it died in before, with no rejection
//!   anywhere on the way round, is dropped for that queue (the loop is broken); a loop with a
//!   rejection on it is not a cycle (a client decided each lap).

use crate::event::Event;
use crate::state::{Arriving, Broker};
use crate::types::{IntType, Message, MessageData, MsgId, Name, Table, Value};

/// Why a message died.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Rejected or nacked without requeue.
    Rejected,
    /// Its TTL passed.
    Expired,
    /// A length limit dropped or refused it.
    Maxlen,
    /// It came back to a quorum queue more often than its `x-delivery-limit` ([`crate::quorum`]).
    DeliveryLimit,
}

impl Reason {
    /// The reason as `x-death` names it.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Rejected => "rejected",
            Reason::Expired => "expired",
            Reason::Maxlen => "maxlen",
            Reason::DeliveryLimit => "delivery_limit",
        }
    }
}

fn text(s: &str) -> Value {
    Value::Str(Name::from(s))
}

fn field<'a>(entry: &'a Value, key: &str) -> Option<&'a Value> {
    match entry {
        Value::Table(t) => t.get(key),
        _ => None,
    }
}

/// The headers of `msg` once it has died in `queue` for `reason` (and the `expiration` it had).
pub fn died(msg: &Message, queue: &Name, reason: Reason) -> Table {
    let data = &msg.0;
    let mut headers = data.content.headers.clone();
    let mut deaths = match headers.remove("x-death") {
        Some(Value::Array(deaths)) => deaths,
        _ => Vec::new(),
    };
    let same = |d: &Value| {
        field(d, "queue") == Some(&Value::Str(queue.clone())) && field(d, "reason") == Some(&text(reason.name()))
    };
    let entry = match deaths.iter().position(same) {
        Some(at) => {
            let mut entry = deaths.remove(at);
            if let Value::Table(t) = &mut entry {
                let count = t.get("count").and_then(Value::int).unwrap_or(0);
                t.insert("count".into(), Value::Sized(IntType::I64, count + 1));
            }
            entry
        }
        None => {
            let mut t = Table::new();
            t.insert("count".into(), Value::Sized(IntType::I64, 1));
            t.insert("reason".into(), text(reason.name()));
            t.insert("queue".into(), Value::Str(queue.clone()));
            t.insert("exchange".into(), Value::Str(data.exchange.clone()));
            t.insert("routing-keys".into(), Value::Array(vec![Value::Str(data.routing_key.clone())]));
            if let Some(e) = data.content.properties.get("expiration") {
                t.insert("original-expiration".into(), Value::Str(e.clone()));
            }
            Value::Table(t)
        }
    };
    deaths.insert(0, entry);
    headers.insert("x-death".into(), Value::Array(deaths));
    let first = [
        ("x-first-death-reason", text(reason.name())),
        ("x-first-death-queue", Value::Str(queue.clone())),
        ("x-first-death-exchange", Value::Str(data.exchange.clone())),
    ];
    for (k, v) in first {
        headers.entry(k.into()).or_insert(v);
    }
    headers
}

/// Whether a message whose `x-death` is `deaths` (its latest death included) going to `target`
/// would close a cycle with no rejection on it.
fn cycle(deaths: &[Value], target: &Name) -> bool {
    let here = |d: &Value| field(d, "queue") == Some(&Value::Str(target.clone()));
    let Some(at) = deaths.iter().position(here) else { return false };
    deaths[..=at].iter().all(|d| field(d, "reason") != Some(&text(Reason::Rejected.name())))
}

impl Broker {
    /// Dead-letter `msg`, which died in `queue` for `reason`: republish a new message with the
    /// headers of its death to the queue's dead-letter exchange, if it has one and that exists.
    pub(crate) fn dead_letter(&mut self, queue: &Name, msg: &Message, reason: Reason) {
        let Some(policy) = self.queues.get(queue).and_then(|q| self.policy(q)) else { return };
        let Some(exchange) = policy.dead_letter_exchange else { return };
        if !self.exchanges.contains_key(&exchange) || self.faults.has(crate::fault::Fault::DeadLetterDropped) {
            return;
        }
        let routing_key = policy.dead_letter_routing_key.unwrap_or_else(|| msg.0.routing_key.clone());
        let mut content = msg.0.content.clone();
        content.headers = died(msg, queue, reason);
        content.properties.set("expiration", None);
        let deaths = match content.headers.get("x-death") {
            Some(Value::Array(d)) => d.clone(),
            _ => Vec::new(),
        };
        let mut targets = self.route(&exchange, &routing_key, &content.headers);
        if reason != Reason::Rejected {
            targets.retain(|t| !cycle(&deaths, t));
        }
        let copy = Message::new(MessageData { id: MsgId(self.next_msg), exchange, routing_key, content });
        self.next_msg += 1;
        for t in targets {
            let arriving = Arriving { from: queue.clone(), msg: copy.clone() };
            self.queues.get_mut(&t).expect("routed to an existing queue").arriving.push(arriving);
        }
    }

    /// Land the first dead-lettered copy on its way to `queue` from `from`
    /// ([`crate::Internal::Arrive`]): put in the queue as a publish would be.
    pub(crate) fn arrive(&mut self, queue: &Name, from: &Name, out: &mut Vec<Event>) {
        let Some(q) = self.queues.get_mut(queue) else { return };
        let Some(at) = q.arriving.iter().position(|a| a.from == *from) else { return };
        let copy = q.arriving.remove(at).msg;
        self.put(queue, &copy, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Content;

    fn message(exchange: &str, key: &str) -> Message {
        Message::new(MessageData {
            id: MsgId(0),
            exchange: exchange.into(),
            routing_key: key.into(),
            content: Content::text("m"),
        })
    }

    fn count(headers: &Table, at: usize) -> Option<i64> {
        match headers.get("x-death") {
            Some(Value::Array(d)) => field(&d[at], "count").and_then(Value::int),
            _ => None,
        }
    }

    #[test]
    fn a_second_death_in_the_same_queue_for_the_same_reason_counts_up_and_comes_first() {
        let m = message("", "q");
        let once = died(&m, &"q".into(), Reason::Rejected);
        let again = Message::new(MessageData {
            content: Content { headers: once.clone(), ..Content::text("m") },
            ..(*m.0).clone()
        });
        let other = died(&again, &"r".into(), Reason::Expired);
        let twice = died(
            &Message::new(MessageData { content: Content { headers: other, ..Content::text("m") }, ..(*m.0).clone() }),
            &"q".into(),
            Reason::Rejected,
        );
        assert_eq!(count(&twice, 0), Some(2));
        assert_eq!(count(&twice, 1), Some(1));
        assert_eq!(twice.get("x-first-death-queue"), Some(&text("q")));
        assert_eq!(twice.get("x-first-death-reason"), Some(&text("rejected")));
    }

    #[test]
    fn a_loop_is_a_cycle_only_without_a_rejection_on_it() {
        let m = message("", "q");
        let expired = died(&m, &"q".into(), Reason::Expired);
        let Some(Value::Array(d)) = expired.get("x-death") else { panic!() };
        assert!(cycle(d, &"q".into()));
        assert!(!cycle(d, &"other".into()));
        let rejected = died(&m, &"q".into(), Reason::Rejected);
        let Some(Value::Array(d)) = rejected.get("x-death") else { panic!() };
        assert!(!cycle(d, &"q".into()));
    }
}
