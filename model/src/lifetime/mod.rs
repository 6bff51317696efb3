//! RabbitMQ's message-lifetime extensions: what decides how long a message or a queue lives and
//! where a message goes when it dies. Each has its module, citing RabbitMQ's documentation as
//! the core cites the specification, and each was probed on RabbitMQ 3.10.8 first
//! (docs/rabbitmq-3.10.md, Q40, Q41, Q44):
//!
//! - [`clock`]: time without clocks (the bounds within which a step happened);
//! - [`ttl`]: message TTL (`x-message-ttl`, the `expiration` property; RabbitMQ's "Time-To-Live
//!   and Expiration" page);
//! - [`expires`]: queue expiry (`x-expires`, same page);
//! - [`limits`]: length limits (`x-max-length`, `x-max-length-bytes`, `x-overflow`; "Queue Length
//!   Limit");
//! - [`dead_letter`]: dead-lettering (`x-dead-letter-exchange`, `x-dead-letter-routing-key`,
//!   `x-death`; "Dead Letter Exchanges");
//! - [`alternate`]: alternate exchanges (`alternate-exchange`; "Alternate Exchanges").
//!
//! They act under `Profile::lifetime` (RabbitMQ). The specification leaves the meaning of
//! declare arguments to the server ("the syntax and semantics of these arguments depends on the
//! server implementation") and gives `expiration` no formal behaviour ("for implementation
//! use"): under `spec` arguments are kept and compared only, and traces that rely on what they
//! do are RabbitMQ's (docs/model.md, Message lifetime).

pub mod alternate;
pub mod clock;
pub mod dead_letter;
pub mod expires;
pub mod limits;
pub mod ttl;

use crate::broker::Exception;
use crate::state::Queue;
use crate::types::{Name, ReplyCode, Table, Value};

/// What a queue's declare arguments say of the lifetime of its messages and of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueuePolicy {
    /// `x-message-ttl`: how long a message may wait in the queue, in milliseconds.
    pub message_ttl: Option<u64>,
    /// `x-expires`: how long the queue may go unused before it is deleted, in milliseconds.
    pub expires: Option<u64>,
    /// `x-dead-letter-exchange`: where its dead messages are republished.
    pub dead_letter_exchange: Option<Name>,
    /// `x-dead-letter-routing-key`: the routing key they are republished with (else their own).
    pub dead_letter_routing_key: Option<Name>,
    /// `x-max-length`: how many ready messages it holds at most.
    pub max_length: Option<u64>,
    /// `x-max-length-bytes`: how many bytes of ready message bodies it holds at most.
    pub max_length_bytes: Option<u64>,
    /// `x-overflow`: what a message beyond a limit does.
    pub overflow: Overflow,
}

/// What happens when a publish would take a queue beyond its length limit (`x-overflow`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    /// The oldest messages are dropped (dead-lettered, `maxlen`) until the queue fits.
    #[default]
    DropHead,
    /// The new message is refused by the queue: not put in it, and nacked to a confirming
    /// publisher.
    RejectPublish,
    /// As `RejectPublish`, and the refused message is dead-lettered.
    RejectPublishDlx,
}

fn text(v: &Value) -> Option<&Name> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// The longest time RabbitMQ 3.10.8 takes for a TTL, an expiry or an `expiration`: ten years of
/// 365 days, in milliseconds (Q49: one more is 406 `value_too_large`).
pub const LONGEST_TIME: u64 = 315_360_000_000;

/// The queue arguments RabbitMQ 3.10.8 checks at `queue.declare`, and how: each refused with a
/// channel exception, 406 precondition-failed, when its value is not of its kind (Q40, Q44, Q49).
const CHECKED: [(&str, Kind); 7] = [
    ("x-message-ttl", Kind::Time { zero: true }),
    ("x-expires", Kind::Time { zero: false }),
    ("x-max-length", Kind::NonNegative),
    ("x-max-length-bytes", Kind::NonNegative),
    ("x-dead-letter-exchange", Kind::Text),
    ("x-dead-letter-routing-key", Kind::Text),
    ("x-overflow", Kind::Overflow),
];

#[derive(Clone, Copy)]
enum Kind {
    NonNegative,
    /// A count of milliseconds up to [`LONGEST_TIME`], 0 allowed or not.
    Time {
        zero: bool,
    },
    Text,
    Overflow,
}

impl Kind {
    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::NonNegative => v.int().is_some_and(|i| i >= 0),
            Kind::Time { zero } => {
                v.int().and_then(|i| u64::try_from(i).ok()).is_some_and(|t| t <= LONGEST_TIME && (zero || t > 0))
            }
            Kind::Text => text(v).is_some(),
            Kind::Overflow => {
                text(v).is_some_and(|s| ["drop-head", "reject-publish", "reject-publish-dlx"].contains(&s.as_str()))
            }
        }
    }
}

/// Check a queue's declare arguments as RabbitMQ does: a value of the wrong kind, or a
/// dead-letter routing key without a dead-letter exchange, is 406.
pub(crate) fn check_queue_arguments(arguments: &Table) -> Result<(), Exception> {
    let bad = CHECKED.iter().any(|(key, kind)| arguments.get(*key).is_some_and(|v| !kind.accepts(v)));
    let orphan_key =
        arguments.contains_key("x-dead-letter-routing-key") && !arguments.contains_key("x-dead-letter-exchange");
    if bad || orphan_key {
        return Err(Exception::Channel(ReplyCode::PreconditionFailed));
    }
    Ok(())
}

impl QueuePolicy {
    /// What `arguments` (already checked) say.
    pub fn of(arguments: &Table) -> QueuePolicy {
        let num = |k: &str| arguments.get(k).and_then(Value::int).and_then(|i| u64::try_from(i).ok());
        let name = |k: &str| arguments.get(k).and_then(text).cloned();
        QueuePolicy {
            message_ttl: num("x-message-ttl"),
            expires: num("x-expires"),
            dead_letter_exchange: name("x-dead-letter-exchange"),
            dead_letter_routing_key: name("x-dead-letter-routing-key"),
            max_length: num("x-max-length"),
            max_length_bytes: num("x-max-length-bytes"),
            overflow: match arguments.get("x-overflow").and_then(text).map(Name::as_str) {
                Some("reject-publish") => Overflow::RejectPublish,
                Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
                _ => Overflow::DropHead,
            },
        }
    }
}

impl crate::state::Broker {
    /// The lifetime policy of `queue` under a profile that acts on it (`Profile::lifetime`);
    /// `None` when it has none (no arguments) or the profile gives them no meaning.
    pub fn policy(&self, queue: &Queue) -> Option<QueuePolicy> {
        let mut policy =
            (self.profile.lifetime && !queue.arguments.is_empty()).then(|| QueuePolicy::of(&queue.arguments))?;
        // A quorum queue knows no `reject-publish-dlx`: it acts as `drop-head` (Q67).
        if queue.quorum && policy.overflow == Overflow::RejectPublishDlx {
            policy.overflow = Overflow::DropHead;
        }
        Some(policy)
    }

    /// The earliest moment after the clock's horizon at which something falls due (a message's
    /// or a queue's expiry): when a broker that keeps real time must look again.
    pub fn next_due(&self) -> Option<u64> {
        let horizon = self.clock.horizon;
        let messages = self.queues.values().flat_map(|q| q.ready.iter().filter_map(|r| r.expires));
        let queues = self.queues.values().filter_map(|q| self.queue_expiry(q));
        messages.chain(queues).map(|d| d.lo).filter(|lo| *lo > horizon).min()
    }
}
