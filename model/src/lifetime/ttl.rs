//! Message TTL: a message may wait in a queue only so long (RabbitMQ, "Time-To-Live and
//! Expiration"). The limit is the queue's `x-message-ttl` or the message's `expiration`
//! property (a count of milliseconds as text), the smaller where both are set, counted from the
//! moment the message entered the queue. Once it has passed, the message is expired: dropped,
//! or dead-lettered with reason `expired` ([`super::dead_letter`]).
//!
//! As RabbitMQ 3.10.8 does it (probed, docs/rabbitmq-3.10.md Q40, Q41, Q44):
//!
//! - a message expires only at the head of its queue (of its priority level, in a queue with
//!   levels): one behind a longer-lived message is still counted, and goes when it reaches the
//!   head, before it could be delivered;
//! - a message that is out (delivered, not yet acknowledged) does not expire; requeued, it has
//!   its original deadline and goes at once if that has passed;
//! - TTL 0 means "delivered at once or not at all": a consumer waiting gets it, else it expires;
//! - an expired message is never delivered.
//!
//! In the model an expiry is the broker's own step ([`crate::Internal::Expire`]), allowed once
//! the message's deadline may have come ([`super::clock`]) and owed once it surely has: at a
//! `wait` or `pass` no head whose deadline has surely passed may be left; and a message whose
//! deadline has surely passed is never delivered or got.

use super::clock::Due;
use crate::state::{Broker, Queue, Ready};
use crate::types::{Content, Name};

/// The time to live a message's `expiration` property gives, in milliseconds: a non-negative
/// integer in decimal digits, a leading `+` allowed (Q44: `+100` is taken, `-1`, `1.5`, `""`,
/// `abc`, ` 100` and `1e3` refused), up to ten years ([`super::LONGEST_TIME`], Q49).
/// `Some(None)`: the property is absent; `None`: it is set and not such a number, or larger
/// (RabbitMQ refuses the publish, 406).
pub fn expiration(content: &Content) -> Option<Option<u64>> {
    let Some(text) = content.properties.get("expiration") else { return Some(None) };
    let digits = text.as_str().strip_prefix('+').unwrap_or(text.as_str());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok().filter(|ms| *ms <= super::LONGEST_TIME).map(Some)
}

impl Broker {
    /// When a copy of `content` entering `queue` now expires, if ever: after the queue's
    /// `x-message-ttl` or the message's `expiration`, the smaller.
    pub(crate) fn deadline(&self, queue: &Queue, content: &Content) -> Option<Due> {
        if !self.profile.lifetime {
            return None;
        }
        let per_queue = self.policy(queue).and_then(|p| p.message_ttl);
        let per_message = expiration(content).flatten();
        let ttl = match (per_queue, per_message) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        let due = self.clock.after(ttl);
        if self.faults.has(crate::fault::Fault::ExpiresEarly) {
            return Some(super::clock::Due { lo: due.lo.saturating_sub(1), hi: due.hi.saturating_sub(1) });
        }
        Some(due)
    }

    /// Whether a ready copy's deadline has surely passed: it may no longer be delivered.
    pub(crate) fn surely_expired(&self, r: &Ready) -> bool {
        r.expires.is_some_and(|due| self.clock.surely_came(due))
    }

    /// The indexes of the messages at the head of `queue`: the first of each priority level
    /// ([`crate::basic::priority`]; one level in a queue without).
    fn heads(&self, queue: &Queue) -> Vec<usize> {
        let mut levels: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        for (i, r) in queue.ready.iter().enumerate() {
            let level = self.rabbit_level(queue, r);
            if !levels.contains(&level) {
                levels.push(level);
                out.push(i);
            }
        }
        out
    }

    /// The expiries the broker may make now: a head whose deadline may have come.
    pub(crate) fn expiry_choices(&self, out: &mut Vec<crate::Internal>) {
        for (name, q) in &self.queues {
            if q.ready.iter().all(|r| r.expires.is_none()) {
                continue;
            }
            for at in self.heads(q) {
                if q.ready[at].expires.is_some_and(|due| self.clock.may_have_come(due)) {
                    out.push(crate::Internal::Expire { queue: name.clone(), at });
                }
            }
        }
    }

    /// Whether an expiry is owed: a head whose deadline has surely passed.
    pub fn owes_expiry(&self) -> bool {
        self.queues.values().any(|q| {
            q.ready.iter().any(|r| r.expires.is_some())
                && self.heads(q).into_iter().any(|at| self.surely_expired(&q.ready[at]))
        })
    }

    /// After a message has been taken from `queue`: RabbitMQ drops the expired messages that
    /// have come to the head before it counts what is left (Q44: a `basic.get-ok` behind which
    /// only an expired message waited counts 0). Those whose deadline has surely passed go here;
    /// one whose deadline falls within the step's own bounds may or may not have expired by
    /// then, so it goes or stays as a choice (`RabbitMQ ttl`): a timing the model cannot know.
    pub(crate) fn drop_expired_heads(&mut self, queue: &Name) {
        loop {
            let Some(q) = self.queues.get(queue) else { return };
            if q.ready.iter().all(|r| r.expires.is_none()) {
                return;
            }
            let due = |r: &Ready| r.expires.is_some_and(|d| self.clock.may_have_come(d));
            let Some(at) = self.heads(q).into_iter().find(|at| due(&q.ready[*at])) else { return };
            if !self.surely_expired(&q.ready[at]) && self.either("RabbitMQ ttl", 2) == 0 {
                return;
            }
            self.expire(queue, at);
        }
    }

    /// Expire the message at `at` of `queue`: it leaves the queue, and is dead-lettered if the
    /// queue says where to.
    pub(crate) fn expire(&mut self, queue: &Name, at: usize) {
        let Some(r) = self.queues.get_mut(queue).and_then(|q| q.ready.remove(at)) else { return };
        self.settle_copy(r.msg.id(), queue);
        self.dead_letter(queue, &r.msg, super::dead_letter::Reason::Expired);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Properties;

    fn with_expiration(text: &str) -> Content {
        let mut properties = Properties::default();
        properties.set("expiration", Some(text.into()));
        Content { properties, ..Content::text("m") }
    }

    #[test]
    fn expiration_is_a_count_of_milliseconds_in_digits() {
        assert_eq!(expiration(&Content::text("m")), Some(None));
        assert_eq!(expiration(&with_expiration("0")), Some(Some(0)));
        assert_eq!(expiration(&with_expiration("60000")), Some(Some(60_000)));
        assert_eq!(expiration(&with_expiration("+100")), Some(Some(100)));
        for bad in ["", "-1", "1.5", "abc", " 1", "1e3", "+", "99999999999999999999"] {
            assert_eq!(expiration(&with_expiration(bad)), None, "{bad:?}");
        }
    }
}
