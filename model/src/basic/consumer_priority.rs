//! Consumer priorities (RabbitMQ, "Consumer Priorities"): a consumer's `x-priority` argument, an
//! integer (0 when absent, negative allowed), ranks the consumers of a queue. A message goes to
//! the highest-ranked consumer that can take it now; consumers of one rank share messages round
//! robin; a lower-ranked one gets a message only while every higher-ranked one is blocked (its
//! prefetch window full). Under `Profile::consumer_priorities` (RabbitMQ); under `spec` a
//! consumer's arguments act on nothing.
//!
//! The same switch has the consumer's other arguments checked as RabbitMQ checks them: an
//! `x-priority` that is not an integer, an `x-cancel-on-ha-failover` that is not a boolean, and
//! any `x-stream-offset` (a stream's, refused on a classic queue) close the channel with 406;
//! arguments it does not know are taken and ignored.
//!
//! Probed on RabbitMQ 3.10.8: docs/rabbitmq-3.10.md Q47.

use crate::broker::Exception;
use crate::state::{Broker, ConsumerRef, Queue};
use crate::types::{ReplyCode, Table, Value};

impl Broker {
    /// The priority a consume's `arguments` give its consumer: `x-priority`, an integer of any
    /// width, 0 when absent; the other arguments checked (406 for what RabbitMQ refuses, Q47).
    /// Under a profile without consumer priorities, 0 whatever the arguments.
    pub(crate) fn consumer_priority_of(&self, arguments: &Table) -> Result<i64, Exception> {
        if !self.profile.consumer_priorities {
            return Ok(0);
        }
        let refused = Exception::Channel(ReplyCode::PreconditionFailed);
        let failover_ok = arguments.get("x-cancel-on-ha-failover").is_none_or(|v| matches!(v, Value::Bool(_)));
        if !failover_ok || arguments.contains_key("x-stream-offset") {
            return Err(refused);
        }
        match arguments.get("x-priority") {
            None => Ok(0),
            Some(v) => v.int().ok_or(refused),
        }
    }

    /// The priority of consumer `c` (0 if it is gone).
    pub(crate) fn priority_of(&self, c: &ConsumerRef) -> i64 {
        self.consumer(c).map_or(0, |c| c.priority)
    }

    /// Whether the consumers of `q` have ranks to respect: some priority is not 0.
    pub(crate) fn ranked(&self, q: &Queue) -> bool {
        self.profile.consumer_priorities && q.all_consumers().any(|c| self.priority_of(c) != 0)
    }

    /// Of `candidates` (consumers that can take a message now, in the queue's rotation order),
    /// those that may: all of them without consumer priorities, else those of the highest rank.
    pub(crate) fn highest_ranked<'a, T>(&self, candidates: Vec<(&'a ConsumerRef, T)>) -> Vec<(&'a ConsumerRef, T)> {
        let ignored = self.faults.has(crate::fault::Fault::ConsumerPriorityIgnored);
        if !self.profile.consumer_priorities || candidates.len() < 2 || ignored {
            return candidates;
        }
        let top = candidates.iter().map(|(c, _)| self.priority_of(c)).max().unwrap_or(0);
        candidates.into_iter().filter(|(c, _)| self.priority_of(c) == top).collect()
    }
}
