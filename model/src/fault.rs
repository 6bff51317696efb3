//! Deliberate faults: each breaks one rule of the model, so that tests can show that the
//! properties, the model tests and (later) the conformance validator catch a broker that breaks it.
//! A correct model runs with [`Faults::NONE`].

use serde::{Deserialize, Serialize};

/// One deliberately broken rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Fault {
    /// Direct exchanges route every message to every binding, whatever the key.
    DirectIgnoresKey,
    /// Fanout exchanges route only to the first bound queue.
    FanoutFirstOnly,
    /// Topic `#` matches exactly one word instead of zero or more.
    TopicHashIsOneWord,
    /// Topic `*` matches one or more words instead of exactly one.
    TopicStarIsMany,
    /// Headers `x-match=any` behaves like `all`.
    HeadersAnyIsAll,
    /// The default exchange routes nowhere.
    DefaultExchangeDrops,
    /// A queue reached by two exchange-to-exchange paths gets two copies.
    DuplicateOnTwoPaths,
    /// A requeued message keeps `redelivered=false`.
    NoRedeliveredFlag,
    /// Dispatch allows one more unacked message than the prefetch limit.
    PrefetchOffByOne,
    /// Closing a channel forgets its unacked messages instead of requeueing them.
    NoRequeueOnClose,
    /// Delivery tags restart at 1 after each acknowledgement.
    ReuseDeliveryTags,
    /// A restart keeps transient messages too.
    RestartKeepsTransient,
    /// Another connection may use an exclusive queue.
    ExclusiveIgnored,
    /// Priorities are ignored: waiting messages go out in arrival order.
    PriorityIgnored,
    /// Messages expire a millisecond before their deadline (`x-message-ttl`, `expiration`).
    ExpiresEarly,
    /// A dead message is dropped instead of dead-lettered.
    DeadLetterDropped,
    /// Length limits are ignored: a queue takes every message.
    LengthLimitIgnored,
    /// A queue with `x-expires` is never deleted for lack of use.
    QueueNeverExpires,
    /// The `alternate-exchange` argument is ignored.
    AlternateIgnored,
    /// `basic.get` silently drops the message behind the one it takes.
    GetDropsNext,
    /// Headers `x-match=all-with-x` and `any-with-x` leave the `x-` arguments out, as `all` and
    /// `any` do.
    HeadersWithXIgnored,
    /// Consumer priorities are ignored: the next consumer in turn gets a message, whatever its
    /// `x-priority`.
    ConsumerPriorityIgnored,
    /// `x-single-active-consumer` is ignored: the queue's consumers share its messages.
    SingleActiveIgnored,
    /// A quorum queue does not count a copy's returns: `x-delivery-count` stays 0.
    DeliveryCountNotKept,
    /// A quorum queue's `x-delivery-limit` is ignored: a copy comes back however often.
    DeliveryLimitIgnored,
}

impl Fault {
    /// The faults that break a routing rule.
    pub const ROUTING: [Fault; 7] = [
        Fault::DirectIgnoresKey,
        Fault::FanoutFirstOnly,
        Fault::TopicHashIsOneWord,
        Fault::TopicStarIsMany,
        Fault::HeadersAnyIsAll,
        Fault::DefaultExchangeDrops,
        Fault::DuplicateOnTwoPaths,
    ];

    /// Every fault, for tests that try them all.
    pub const ALL: [Fault; 25] = [
        Fault::DirectIgnoresKey,
        Fault::FanoutFirstOnly,
        Fault::TopicHashIsOneWord,
        Fault::TopicStarIsMany,
        Fault::HeadersAnyIsAll,
        Fault::DefaultExchangeDrops,
        Fault::DuplicateOnTwoPaths,
        Fault::NoRedeliveredFlag,
        Fault::PrefetchOffByOne,
        Fault::NoRequeueOnClose,
        Fault::ReuseDeliveryTags,
        Fault::RestartKeepsTransient,
        Fault::ExclusiveIgnored,
        Fault::PriorityIgnored,
        Fault::ExpiresEarly,
        Fault::DeadLetterDropped,
        Fault::LengthLimitIgnored,
        Fault::QueueNeverExpires,
        Fault::AlternateIgnored,
        Fault::GetDropsNext,
        Fault::HeadersWithXIgnored,
        Fault::ConsumerPriorityIgnored,
        Fault::SingleActiveIgnored,
        Fault::DeliveryCountNotKept,
        Fault::DeliveryLimitIgnored,
    ];
}

/// A set of faults (empty for the real model).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Faults(u32);

impl Faults {
    /// No fault: the model as specified.
    pub const NONE: Faults = Faults(0);

    /// The set holding exactly `fault`.
    pub const fn only(fault: Fault) -> Faults {
        Faults(1 << fault as u8)
    }
    /// Whether `fault` is in the set.
    #[inline]
    pub const fn has(self, fault: Fault) -> bool {
        self.0 & (1 << fault as u8) != 0
    }
    /// True when the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}
