//! Single active consumer (RabbitMQ, "Single Active Consumer"): a queue declared with
//! `x-single-active-consumer` true gives its messages to one consumer at a time, the earliest
//! subscribed of those still attached; the others wait, and when it goes (cancelled, its channel
//! or connection closed) the next in subscription order takes over, the messages it held
//! requeued as any consumer's are. Under `Profile::single_active_consumer` (RabbitMQ); under
//! `spec` the argument is kept and acts on nothing.
//!
//! As RabbitMQ 3.10.8 does it (probed, docs/rabbitmq-3.10.md Q48): the argument must be a
//! boolean (406 otherwise); the active consumer is chosen by subscription order alone (consumer
//! priorities do not count on a classic queue); `queue.declare-ok` counts every consumer;
//! `basic.get` takes messages beside the active consumer; an exclusive consumer is refused (403)
//! whether or not another consumer is there. The active consumer's prefetch window applies as to
//! any consumer: while it is full, the others still get nothing.
//!
//! The queue's consumers stay in subscription order ([`crate::state::Queue::consumers`]): no
//! rotation and no leaving it for lack of room ([`super::dispatch`]), so the active one is the
//! first.

use crate::broker::Exception;
use crate::state::{Broker, Queue};
use crate::types::{ReplyCode, Table, Value};

impl Broker {
    /// Whether `q` has a single active consumer.
    pub(crate) fn single_active(&self, q: &Queue) -> bool {
        self.profile.single_active_consumer
            && !self.faults.has(crate::fault::Fault::SingleActiveIgnored)
            && matches!(q.arguments.get("x-single-active-consumer"), Some(Value::Bool(true)))
    }

    /// The check of a (non-passive) declare's `x-single-active-consumer`: a boolean, else 406.
    pub(crate) fn check_single_active_argument(&self, arguments: &Table) -> Result<(), Exception> {
        match arguments.get("x-single-active-consumer") {
            Some(v) if self.profile.single_active_consumer && !matches!(v, Value::Bool(_)) => {
                Err(Exception::Channel(ReplyCode::PreconditionFailed))
            }
            _ => Ok(()),
        }
    }
}
