//! Queue expiry: a queue declared with `x-expires` is deleted once it has gone unused that many
//! milliseconds (RabbitMQ, "Time-To-Live and Expiration": unused means no consumers, no
//! redeclaration and no `basic.get` meanwhile). The deletion is the broker's own, silent step
//! ([`crate::Internal::Remove`]), allowed once the time may have passed and owed once it surely
//! has ([`super::clock`]); it is a deletion like any other: consumers none, ready messages
//! dropped (not dead-lettered), bindings gone.
//!
//! Probed on RabbitMQ 3.10.8: docs/rabbitmq-3.10.md Q40, Q41, Q44.

use super::clock::Due;
use crate::state::{Broker, Queue};
use crate::types::Name;

impl Broker {
    /// When `queue` expires if nothing uses it again: `x-expires` after it was last used; never
    /// while it has consumers.
    pub fn queue_expiry(&self, queue: &Queue) -> Option<Due> {
        if queue.consumer_count() > 0 || self.faults.has(crate::fault::Fault::QueueNeverExpires) {
            return None;
        }
        let after = self.policy(queue)?.expires?;
        let used = queue.used?;
        Some(Due { lo: used.lo.saturating_add(after), hi: used.hi.saturating_add(after) })
    }

    /// The queue is used now (declared, passively too, got from, or left by its last consumer;
    /// Q44: a publish is not a use): its expiry starts again. Kept only for a queue with
    /// `x-expires`, so that others' states do not grow with the clock.
    pub(crate) fn renew(&mut self, queue: &Name) {
        let now = self.clock.after(0);
        let expiring = self.queues.get(queue).and_then(|q| self.policy(q)).is_some_and(|p| p.expires.is_some());
        if let Some(q) = self.queues.get_mut(queue).filter(|_| expiring) {
            q.used = Some(now);
        }
    }

    /// The queues whose expiry may have come.
    pub(crate) fn expired_queues(&self) -> impl Iterator<Item = &Name> {
        self.queues
            .iter()
            .filter(|(_, q)| q.used.is_some() && self.queue_expiry(q).is_some_and(|d| self.clock.may_have_come(d)))
            .map(|(n, _)| n)
    }

    /// Whether a queue's expiry is owed.
    pub(crate) fn owes_queue_expiry(&self) -> bool {
        self.queues
            .values()
            .any(|q| q.used.is_some() && self.queue_expiry(q).is_some_and(|d| self.clock.surely_came(d)))
    }
}
