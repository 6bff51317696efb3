//! Queue types: RabbitMQ's `classic` queue (the default) and its replicated `quorum` queue, named
//! by the `x-queue-type` declare argument. Only under `Profile::quorum_queues` (RabbitMQ); under
//! `spec` the argument means nothing, like any other.
//!
//! As RabbitMQ 3.10.8 does it (probed, docs/rabbitmq-3.10.md Q65, Q67):
//!
//! - **Declaring.** `x-queue-type` must be a string naming `classic` or `quorum` (406 otherwise;
//!   the model has no streams, so it refuses `stream` too, which RabbitMQ accepts). A quorum queue
//!   must be durable, not exclusive, not auto-delete and not server-named, and each type refuses
//!   the other's arguments ([`QUORUM_ONLY`], [`CLASSIC_ONLY`]): 406 on the channel, for a new
//!   queue (an existing one is compared as any redeclare, an `x-queue-type` left out read as
//!   `classic`).
//! - **Requeueing.** A copy rejected or nacked with requeue, or requeued by `basic.recover`, goes to
//!   the back of a quorum queue, in the order the copies were settled; a copy that comes back
//!   because its channel or connection closed goes to the front, before the other ready copies
//!   and after those that came back to the front before it. In a queue declared with an
//!   `x-delivery-limit` (any value) every copy that comes back goes to the front. Classic queues
//!   put them all back in place.
//! - **Counting deliveries.** Each copy counts how often it came back (any of the ways above); a
//!   `basic.get` delivery carries the count in the `x-delivery-count` header (a long, 0 the first
//!   time), a consumer's delivery only once it is above 0. A queue's `x-delivery-limit` (an
//!   integer; any other value is no limit) ends a copy whose count goes above it when it comes
//!   back: dropped, or dead-lettered with reason `delivery_limit`. What is dead-lettered carries no
//!   count.
//! - **What a quorum queue does not do**: `basic.consume` on a channel with a global prefetch limit
//!   above 0, and `queue.delete` with `if-unused` or `if-empty`, close the connection with 540
//!   not-implemented (if-unused checked first). Message priorities are never levels in it (it
//!   takes no `x-max-priority`). `reject-publish` refuses a message only when the queue is already
//!   over its limit (one message or byte past it gets in), and `reject-publish-dlx` acts as
//!   `drop-head` ([`crate::lifetime::limits`]).
//! - **Publishing.** A message published to a quorum queue lands in it a little later, in a step of
//!   the broker's own ([`crate::Internal::Arrive`], as a dead-lettered copy does): a `basic.get`
//!   right after the publish, on the same channel, found the queue empty in 13 runs of 40 (Q67).
//!   Messages published to one quorum queue land in the order they were published. Under
//!   `reject-publish` the queue decides at the publish, counting what is on its way (the model's
//!   reading: RabbitMQ decides as it takes the message in, in publish order, which only differs
//!   where a consumer takes messages meanwhile); a dead-lettered copy arriving is always taken
//!   (not probed).
//! - **Its consumer count** (`queue.declare-ok`) counts, besides its consumers (under a single
//!   active consumer only the active one), each consumer cancelled while it still holds
//!   unacknowledged deliveries from it, and each of its `basic.get` deliveries still waiting for
//!   an acknowledgement.
//! - **A restart** keeps every message of a quorum queue, transient ones too (it writes all to its
//!   log); the copies the restart's closed connections held come back to its front, counted
//!   ([`crate::Broker`]'s restart, in connection.rs).

use crate::broker::{Exception, Outcome};
use crate::state::{Broker, Queue, Ready, Unacked};
use crate::types::{ChanRef, IntType, Message, MessageData, Name, ReplyCode, Table, Value};

use Exception::{Channel, Connection};

/// Arguments a quorum queue takes and a classic one refuses.
pub const QUORUM_ONLY: [&str; 6] = [
    "x-delivery-limit",
    "x-quorum-initial-group-size",
    "x-dead-letter-strategy",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-queue-leader-locator",
];

/// Arguments a classic queue takes and a quorum one refuses.
pub const CLASSIC_ONLY: [&str; 4] = ["x-max-priority", "x-queue-mode", "x-queue-master-locator", "x-queue-version"];

/// Arguments neither type takes (a stream's, which the model does not have).
pub const STREAM_ONLY: [&str; 3] = ["x-max-age", "x-stream-max-segment-size-bytes", "x-initial-cluster-size"];

/// The header that carries a quorum queue copy's delivery count.
pub const DELIVERY_COUNT: &str = "x-delivery-count";

/// Whether `arguments` ask for a quorum queue.
pub fn asks_quorum(arguments: &Table) -> bool {
    matches!(arguments.get("x-queue-type"), Some(Value::Str(t)) if t.as_str() == "quorum")
}

/// The `x-delivery-limit` of a queue's arguments: an integer, or none.
fn delivery_limit(arguments: &Table) -> Option<i64> {
    arguments.get("x-delivery-limit").and_then(Value::int)
}

impl Broker {
    /// The checks a new queue's type makes of its declare (`queue.declare` of a name that names no
    /// queue, not passive): returns whether it is a quorum queue.
    pub(crate) fn check_queue_type(
        &self,
        name: &Name,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: &Table,
    ) -> Result<bool, Exception> {
        if !self.profile.quorum_queues {
            return Ok(false);
        }
        let quorum = match arguments.get("x-queue-type") {
            None => false,
            Some(Value::Str(t)) if t.as_str() == "classic" => false,
            Some(Value::Str(t)) if t.as_str() == "quorum" => true,
            Some(_) => return Err(Channel(ReplyCode::PreconditionFailed)),
        };
        let refused: &[&str] = if quorum { &CLASSIC_ONLY } else { &QUORUM_ONLY };
        let refused = refused.iter().chain(STREAM_ONLY.iter()).any(|k| arguments.contains_key(*k));
        let flags = quorum && (!durable || exclusive || auto_delete || name.is_empty());
        if refused || flags {
            return Err(Channel(ReplyCode::PreconditionFailed));
        }
        Ok(quorum)
    }

    /// A message published to quorum queue `name` (which exists): on its way to it, or refused
    /// (`false`) by a `reject-publish` queue over its limit already, counting the messages on
    /// their way.
    pub(crate) fn publish_to_quorum(&mut self, name: &Name, msg: &Message) -> bool {
        let q = &self.queues[name];
        if let Some(policy) = self.policy(q).filter(|p| p.overflow == crate::lifetime::Overflow::RejectPublish) {
            let coming = q.arriving.iter().filter(|a| a.from.is_empty()).map(|a| &a.msg);
            let held: Vec<&Message> = q.ready.iter().map(|r| &r.msg).chain(coming).collect();
            let bytes: u64 = held.iter().map(|m| m.0.content.body.as_str().len() as u64).sum();
            let over = policy.max_length.is_some_and(|m| held.len() as u64 > m)
                || policy.max_length_bytes.is_some_and(|m| bytes > m);
            if over && !self.faults.has(crate::fault::Fault::LengthLimitIgnored) {
                return false;
            }
        }
        let arriving = crate::state::Arriving { from: Name::default(), msg: msg.clone() };
        self.queues.get_mut(name).expect("exists").arriving.push(arriving);
        true
    }

    /// `basic.consume` on a quorum queue from a channel with a global prefetch limit: 540 on the
    /// connection.
    pub(crate) fn check_quorum_consume(&self, ch: ChanRef, queue: &Queue) -> Outcome {
        let global = self.channel(ch).is_some_and(|c| c.prefetch > 0);
        match queue.quorum && global && self.profile.qos_scope == crate::profile::QosScope::ConsumerAndChannel {
            true => Err(Connection(ReplyCode::NotImplemented)),
            false => Ok(()),
        }
    }

    /// `queue.delete` of a quorum queue with `if-unused` or `if-empty`: 540 on the connection.
    pub(crate) fn check_quorum_delete(queue: &Queue, if_unused: bool, if_empty: bool) -> Outcome {
        match queue.quorum && (if_unused || if_empty) {
            true => Err(Connection(ReplyCode::NotImplemented)),
            false => Ok(()),
        }
    }

    /// The consumer count `queue.declare-ok` gives for `queue`: a quorum queue counts a
    /// cancelled consumer still holding deliveries from it, once, and each of its unacknowledged
    /// `basic.get` deliveries.
    pub(crate) fn reported_consumers(&self, name: &Name, queue: &Queue) -> u32 {
        if !queue.quorum {
            return queue.consumer_count() as u32;
        }
        // Under a single active consumer only the active one counts (the others wait apart).
        let attached = queue.all_consumers().take(if self.single_active(queue) { 1 } else { usize::MAX });
        let mut consumers: std::collections::BTreeSet<(ChanRef, &Name)> = attached.map(|c| (c.ch, &c.tag)).collect();
        let mut gets = 0;
        for (conn, c) in &self.connections {
            for (n, chan) in &c.channels {
                let ch = ChanRef { conn: *conn, channel: *n };
                for u in chan.unacked.values().filter(|u| u.queue == *name && !u.queue_gone) {
                    match &u.consumer {
                        Some(tag) => {
                            consumers.insert((ch, tag));
                        }
                        None => gets += 1,
                    }
                }
            }
        }
        (consumers.len() + gets) as u32
    }

    /// A copy back in quorum queue `name` (which exists): counted, then ended if its count went
    /// past the queue's `x-delivery-limit`, else put at the back, or (`returned`: its channel
    /// closed; or any copy, in a queue with an `x-delivery-limit`) at the front after the copies
    /// that came back there before it.
    pub(crate) fn quorum_put_back(&mut self, name: &Name, u: Unacked, redelivered: bool, returned: bool) {
        let count = match self.faults.has(crate::fault::Fault::DeliveryCountNotKept) {
            true => u.delivery_count,
            false => u.delivery_count + 1,
        };
        let q = &self.queues[name];
        let limit =
            delivery_limit(&q.arguments).filter(|_| !self.faults.has(crate::fault::Fault::DeliveryLimitIgnored));
        if limit.is_some_and(|limit| i64::from(count) > limit) {
            self.settle_copy(u.msg.id(), name);
            self.dead_letter(name, &u.msg, crate::lifetime::dead_letter::Reason::DeliveryLimit);
            return;
        }
        let q = self.queues.get_mut(name).expect("exists");
        let returned = returned || q.arguments.contains_key("x-delivery-limit");
        let at = match returned {
            true => q.ready.iter().take_while(|r| r.returned).count(),
            false => q.ready.len(),
        };
        let r = Ready {
            msg: u.msg,
            redelivered,
            flag_optional: false,
            avoid: None,
            floating: None,
            expires: u.expires,
            delivery_count: count,
            returned,
        };
        q.ready.insert(at, r);
    }
}

/// The message as a client gets it from a queue: from a quorum queue with its delivery count in
/// `x-delivery-count`, always for `basic.get`, for a consumer once it is above 0.
pub fn as_delivered(msg: &Message, quorum: bool, delivery_count: u32, get: bool) -> Message {
    if !quorum || !get && delivery_count == 0 {
        return msg.clone();
    }
    let mut content = msg.0.content.clone();
    content.headers.insert(DELIVERY_COUNT.into(), Value::Sized(IntType::I64, i64::from(delivery_count)));
    Message::new(MessageData { content, ..MessageData::clone(&msg.0) })
}
