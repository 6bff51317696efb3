//! Length limits: a queue holds at most `x-max-length` ready messages and `x-max-length-bytes`
//! bytes of their bodies (RabbitMQ, "Queue Length Limit"). Messages out for acknowledgement do
//! not count. What a message beyond a limit does is the queue's `x-overflow`:
//!
//! - `drop-head` (the default): it goes in, and the oldest messages are dropped, dead-lettered
//!   with reason `maxlen` ([`super::dead_letter`]), until the queue is within its limits again;
//!   but a copy the queue could never hold, arriving while nothing waits in it, goes straight to
//!   a consumer with room for it if there is one ([`Broker::put`]);
//! - `reject-publish`: the queue refuses it (it is not put in that queue; a confirming publisher
//!   gets a nack, whatever other queues took it);
//! - `reject-publish-dlx`: refused as by `reject-publish`, and dead-lettered.
//!
//! A quorum queue ([`crate::quorum`]) refuses under `reject-publish` only a copy arriving while it
//! is over a limit already, and takes `reject-publish-dlx` for `drop-head` (Q67).
//!
//! Probed on RabbitMQ 3.10.8: docs/rabbitmq-3.10.md Q40, Q41, Q44, Q45.
//!
//! [`Broker::put`] is the one way a copy enters a queue (a publish, a dead-lettering), so the
//! limits, and the copy's deadline ([`super::ttl`]), apply to every copy alike.

use super::Overflow;
use crate::event::Event;
use crate::state::{Broker, CopyId, Live, Queue, Ready};
use crate::types::{Message, Name};

/// The bytes of ready message bodies in `queue`.
pub fn bytes(queue: &Queue) -> u64 {
    queue.ready.iter().map(|r| r.msg.0.content.body.as_str().len() as u64).sum()
}

/// Whether `queue` holds more than its limits allow.
pub fn over(queue: &Queue, max_length: Option<u64>, max_bytes: Option<u64>) -> bool {
    max_length.is_some_and(|m| queue.ready.len() as u64 > m) || max_bytes.is_some_and(|m| bytes(queue) > m)
}

impl Broker {
    /// Put a copy of `msg` in `queue` (which exists), as its limits allow. Returns whether the
    /// queue took it (`false`: refused by `reject-publish` or `reject-publish-dlx`).
    pub(crate) fn put(&mut self, queue: &Name, msg: &Message, out: &mut Vec<Event>) -> bool {
        let q = &self.queues[queue];
        let policy = self.policy(q).unwrap_or_default();
        let (max_length, max_bytes) = (policy.max_length, policy.max_length_bytes);
        let limited = !self.faults.has(crate::fault::Fault::LengthLimitIgnored);
        let size = msg.0.content.body.as_str().len() as u64;
        let never_fits = max_length == Some(0) || max_bytes.is_some_and(|m| size > m);
        let drop_head = policy.overflow == Overflow::DropHead;
        if limited && drop_head && never_fits && q.ready.is_empty() && self.hand_to_waiting(queue, msg, out) {
            return true;
        }
        let q = &self.queues[queue];
        if policy.overflow != Overflow::DropHead && limited {
            // A quorum queue decides when the message is published (`crate::quorum`).
            let full = match q.quorum {
                true => false,
                false => {
                    max_length.is_some_and(|m| q.ready.len() as u64 >= m)
                        || max_bytes.is_some_and(|m| bytes(q) + size > m)
                }
            };
            if full {
                if policy.overflow == Overflow::RejectPublishDlx {
                    self.dead_letter(queue, msg, super::dead_letter::Reason::Maxlen);
                }
                return false;
            }
        }
        self.append(queue, msg);
        if limited {
            self.drop_over(queue, max_length, max_bytes);
        }
        true
    }

    /// Append a copy of `msg` to `queue`, whatever its limits, with its deadline.
    fn append(&mut self, queue: &Name, msg: &Message) {
        let expires = self.deadline(&self.queues[queue], &msg.0.content);
        self.ledger.insert(CopyId { msg: msg.id(), queue: queue.clone() }, Live { delivered: false });
        let q = self.queues.get_mut(queue).expect("put in an existing queue");
        q.ready.push_back(Ready {
            msg: msg.clone(),
            redelivered: false,
            flag_optional: false,
            avoid: None,
            floating: None,
            expires,
            delivery_count: 0,
            returned: false,
        });
    }

    /// A copy that its queue could not hold even empty (`x-max-length` 0, or a body larger than
    /// `x-max-length-bytes`) arriving under `drop-head` at an empty queue: a consumer that has
    /// room for it now (the next in turn) gets it, and the limit never sees it; with none, the
    /// limit drops it (Q45: so RabbitMQ 3.10.8 did in every run; under `reject-publish` the copy
    /// is refused whatever consumers wait). Returns whether the copy went to a consumer.
    fn hand_to_waiting(&mut self, queue: &Name, msg: &Message, out: &mut Vec<Event>) -> bool {
        self.append(queue, msg);
        let mut deliveries = Vec::new();
        self.deliveries_from(queue, &self.queues[queue], &mut deliveries);
        match deliveries.into_iter().next() {
            Some(crate::broker::Internal::Deliver { consumer, at, redelivered, .. }) => {
                self.deliver(queue, &consumer, at, redelivered, out);
                true
            }
            _ => {
                self.queues.get_mut(queue).expect("appended").ready.pop_back();
                self.ledger.remove(&CopyId { msg: msg.id(), queue: queue.clone() });
                false
            }
        }
    }

    /// A copy came back to `queue` (a requeue): under `drop-head` the oldest messages go while
    /// the queue holds more than its limits allow (Q44: a message requeued into a full queue is
    /// at its head and is the one dropped); the other overflow modes refuse only publishes.
    pub(crate) fn drop_over_limits(&mut self, queue: &Name) {
        let Some(policy) = self.queues.get(queue).and_then(|q| self.policy(q)) else { return };
        if policy.overflow == Overflow::DropHead && !self.faults.has(crate::fault::Fault::LengthLimitIgnored) {
            self.drop_over(queue, policy.max_length, policy.max_length_bytes);
        }
    }

    /// Drop the oldest messages of `queue`, dead-lettering them (`maxlen`), while it holds more
    /// than its limits allow.
    fn drop_over(&mut self, queue: &Name, max_length: Option<u64>, max_bytes: Option<u64>) {
        while self.queues.get(queue).is_some_and(|q| over(q, max_length, max_bytes)) {
            let r = self.queues.get_mut(queue).and_then(|q| q.ready.pop_front()).expect("over a limit: not empty");
            self.settle_copy(r.msg.id(), queue);
            self.dead_letter(queue, &r.msg, super::dead_letter::Reason::Maxlen);
        }
    }
}
