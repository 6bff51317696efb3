//! Dispatch: which consumer may take a queue's next message, prefetch limits, and the
//! round-robin rotation of RabbitMQ.
//!
//! The model does not dispatch on its own initiative inside a command: a delivery to a consumer
//! is an internal step ([`crate::Internal::Deliver`]) that may happen at any point after it
//! becomes possible, because a real broker delivers when it gets to it. One exception: a copy
//! that a length limit would drop at once goes to a consumer with room inside the step that
//! brought it, or never (`crate::lifetime::limits`). Another: where RabbitMQ's queue process
//! reads a command in several parts (a settlement's batches, a connection's channels), it hands
//! out what it can between two parts, inside the step ([`Broker::dispatch_now`]).

use crate::broker::Internal;
use crate::choice::Readings as Schemes;
use crate::event::Event;
use crate::fault::Fault;
use crate::profile::{Dispatch, QosScope, RequeuePosition};
use crate::state::{Broker, ConsumerRef, Queue, Ready};
use crate::types::{ConnId, Name};
use std::collections::VecDeque;

/// The indexes of the ready messages that may go out next among those `takes` accepts: the first
/// of them that keeps its place, and every floating one (requeued where the place is open,
/// [`Ready::floating`]); but not a message that arrived after a floating one still waiting was
/// requeued. Without floating copies, just the first. (A floating copy that `takes` refuses,
/// one the taker's channel rejected, holds nothing back: `basic reject requeue 01` lets later
/// messages pass it for that channel, as for one that keeps its place.) `position` is the
/// profile's `requeue_position`: under `Original` no copy floats, and the first one is found
/// without looking further (this runs for every consumer at every step the checker explores).
pub(crate) fn next_candidates(
    ready: &VecDeque<Ready>,
    position: RequeuePosition,
    takes: impl Fn(&Ready) -> bool,
) -> Vec<usize> {
    if position == RequeuePosition::Original {
        return ready.iter().position(takes).into_iter().collect();
    }
    // The earliest requeue among the floating copies still waiting: later arrivals wait for them.
    let bound = ready.iter().filter(|r| takes(r)).filter_map(|r| r.floating).min();
    let mut out = Vec::new();
    let mut fixed_found = false;
    for (i, r) in ready.iter().enumerate() {
        if !takes(r) {
            continue;
        }
        match r.floating {
            Some(_) => out.push(i),
            None if !fixed_found => {
                fixed_found = true;
                if bound.is_none_or(|b| r.msg.id().0 < b) {
                    out.push(i);
                }
            }
            None => {}
        }
    }
    out
}

/// Whether `used` unacknowledged messages leave room under `limit` (0 = no limit).
fn room(limit: u16, used: usize, slack: usize) -> bool {
    limit == 0 || used < limit as usize + slack
}

impl Broker {
    /// Whether the consumer may be sent one more message now: a no-ack consumer may
    /// (`prefetch-count` is ignored with no-ack) unless, under RabbitMQ, its channel is at its
    /// channel-wide limit; otherwise every limit that applies under the
    /// profile must have room (`basic qos prefetch-count 01`). Deliveries made by `basic.get`
    /// are not prefetched and do not count.
    pub fn has_capacity(&self, c: &ConsumerRef) -> bool {
        self.capacity(c, false)
    }

    /// [`Broker::has_capacity`] with `basic.get` deliveries counted in the windows too when
    /// `count_gets`: the other reading of the prefetch-count field doc, under which a server sends
    /// less (`Broker::owes_delivery` under `spec`).
    pub(crate) fn capacity(&self, c: &ConsumerRef, count_gets: bool) -> bool {
        let Some(conn) = self.connections.get(&c.ch.conn) else { return false };
        let Some(chan) = conn.channels.get(&c.ch.channel) else { return false };
        let Some(consumer) = chan.consumers.get(&c.tag) else { return false };
        let slack = usize::from(self.faults.has(Fault::PrefetchOffByOne));
        let pushed =
            |ch: &crate::state::Channel| ch.unacked.values().filter(|u| count_gets || u.consumer.is_some()).count();
        if consumer.no_ack {
            // RabbitMQ stops the whole channel, no-ack consumers included, at its channel limit.
            return self.profile.qos_scope == QosScope::ChannelAndConnection
                || room(chan.prefetch, pushed(chan), slack);
        }
        match self.profile.qos_scope {
            QosScope::ConsumerAndChannel => {
                let mine = chan.unacked.values().filter(|u| u.consumer.as_ref() == Some(&c.tag)).count();
                room(consumer.prefetch, mine, slack) && room(chan.prefetch, pushed(chan), slack)
            }
            QosScope::ChannelAndConnection => {
                room(chan.prefetch, pushed(chan), slack)
                    && room(conn.prefetch, conn.channels.values().map(|c| pushed(c)).sum(), slack)
            }
        }
    }

    /// The indexes of the ready messages `c` may be given next (under
    /// `requeue_avoids_rejecting_channel`, not one its own channel rejected), by priority level
    /// ([`Broker::next_by_priority`]) and then [`next_candidates`].
    fn eligible(&self, queue: &Queue, c: &ConsumerRef) -> Vec<(usize, Schemes)> {
        self.next_by_priority(queue, |r| r.avoid != Some(c.ch) && !self.surely_expired(r))
    }

    /// The deliveries possible now: for round robin, the next consumer in turn with capacity; for
    /// any-consumer dispatch, every consumer with capacity; in either case only of the highest
    /// priority among them ([`super::consumer_priority`]).
    pub(crate) fn dispatch_choices(&self, out: &mut Vec<Internal>) {
        for (name, q) in &self.queues {
            self.deliveries_from(name, q, out);
        }
    }

    /// The deliveries possible now from the queue `name` ([`Self::dispatch_choices`]).
    pub(crate) fn deliveries_from(&self, name: &Name, q: &Queue, out: &mut Vec<Internal>) {
        if q.ready.is_empty() {
            return;
        }
        // A single active consumer: only the first subscribed may take it. Not while the copies
        // a consumer held are on their way back from its closed channel: that consumer stays
        // the active one until the queue takes them back, and the next takes over only then,
        // the copies first (RabbitMQ's queue does both as one, Q48).
        let single = self.single_active(q);
        if single && q.returning.iter().any(|u| u.consumer.is_some()) {
            return;
        }
        let in_turn = q.consumers.iter().take(if single { 1 } else { usize::MAX });
        let mut candidates = in_turn.filter(|c| self.has_capacity(c)).filter_map(|c| {
            let at: Vec<usize> = self.eligible(q, c).into_iter().map(|(at, _)| at).collect();
            (!at.is_empty()).then_some((c, at))
        });
        // The first in turn, or any; of the highest rank where consumers have priorities.
        let chosen: Vec<(&ConsumerRef, Vec<usize>)> = match (self.profile.dispatch, !single && self.ranked(q)) {
            (Dispatch::RoundRobin, false) => candidates.next().into_iter().collect(),
            (Dispatch::RoundRobin, true) => self.highest_ranked(candidates.collect()).into_iter().take(1).collect(),
            (Dispatch::AnyConsumer, _) => self.highest_ranked(candidates.collect()),
        };
        for (c, at) in chosen {
            for at in at {
                let r = &q.ready[at];
                let flags: &[bool] = if r.flag_optional { &[true, false] } else { &[r.redelivered] };
                out.extend(flags.iter().map(|&redelivered| Internal::Deliver {
                    queue: name.clone(),
                    consumer: c.clone(),
                    at,
                    redelivered,
                }));
            }
        }
    }

    /// Deliveries from `queue` made inside the step at hand, between two parts of a command the
    /// broker carries out one after the other (two batches of a settlement's requeued copies,
    /// `Profile::requeue_by_consumer`; two channels of a closing connection,
    /// [`Broker::close_connection`]). Under round robin, every delivery the queue can make now,
    /// in turn, as RabbitMQ's queue process does before it reads its next message. Under
    /// any-consumer dispatch (`spec`), only deliveries to a consumer on `doomed`, the connection
    /// closing, and each one optional (a choice, `why`): any other can as well come later, as an
    /// internal step. A delivery to `doomed` is never observed (its client sent its close and
    /// discards everything but the answer, `connection close stability`, or its socket is gone)
    /// and leaves no event; an acknowledged one goes back when its channel closes, a no-ack one
    /// is lost.
    pub(crate) fn dispatch_now(
        &mut self,
        queue: &Name,
        doomed: Option<ConnId>,
        why: &'static str,
        out: &mut Vec<Event>,
    ) {
        loop {
            let Some(q) = self.queues.get(queue) else { return };
            let before = q.ready.len();
            let mut options = Vec::new();
            self.deliveries_from(queue, q, &mut options);
            let step = match self.profile.dispatch {
                Dispatch::RoundRobin => options.into_iter().next(),
                Dispatch::AnyConsumer => {
                    options.retain(
                        |s| matches!(s, Internal::Deliver { consumer, .. } if Some(consumer.ch.conn) == doomed),
                    );
                    let n = u8::try_from(options.len() + 1).unwrap_or(u8::MAX);
                    match options.is_empty() {
                        true => None,
                        false => (self.either(why, n) as usize).checked_sub(1).map(|k| options.swap_remove(k)),
                    }
                }
            };
            let Some(Internal::Deliver { consumer, at, redelivered, .. }) = step else { return };
            let mut events = Vec::new();
            self.deliver(queue, &consumer, at, redelivered, &mut events);
            if Some(consumer.ch.conn) != doomed {
                out.extend(events);
            }
            if self.queues.get(queue).is_none_or(|q| q.ready.len() >= before) {
                return;
            }
        }
    }

    /// Deliver the ready message at `at` of `queue`, one it may be given next, to `consumer`
    /// (`basic.deliver`), flagged `redelivered` (which must be its flag unless the flag is
    /// optional, [`Ready::flag_optional`]). Under round robin, consumers passed over for lack of
    /// capacity leave the rotation and the one served moves to its end.
    pub(crate) fn deliver(
        &mut self,
        queue: &Name,
        consumer: &ConsumerRef,
        at: usize,
        redelivered: bool,
        out: &mut Vec<Event>,
    ) {
        let Some(q) = self.queues.get(queue) else { return };
        let Some((_, schemes)) = self.eligible(q, consumer).into_iter().find(|(i, _)| *i == at) else { return };
        let r = &q.ready[at];
        if redelivered != r.redelivered && !r.flag_optional {
            return;
        }
        if !self.has_capacity(consumer) {
            return;
        }
        // A single-active-consumer queue keeps its consumers in subscription order.
        let round_robin = self.profile.dispatch == Dispatch::RoundRobin && !self.single_active(q);
        let skipped: Vec<ConsumerRef> = if round_robin {
            q.consumers.iter().take_while(|c| *c != consumer).filter(|c| !self.has_capacity(c)).cloned().collect()
        } else {
            Vec::new()
        };
        let no_ack = self.consumer(consumer).expect("has capacity").no_ack;
        self.settle_priority_schemes(schemes);
        let q = self.queues.get_mut(queue).expect("checked");
        let mut r = q.ready.remove(at).expect("eligible");
        r.redelivered = redelivered;
        if round_robin {
            q.consumers.retain(|c| c != consumer && !skipped.contains(c));
            q.consumers.push_back(consumer.clone());
            q.blocked.extend(skipped);
        }
        let quorum = q.quorum;
        let delivery_tag = self.hand_over(consumer.ch, queue, &r, Some(consumer.tag.clone()), no_ack);
        out.push(Event::Deliver {
            ch: consumer.ch,
            consumer_tag: consumer.tag.clone(),
            delivery_tag,
            redelivered: r.redelivered,
            queue: queue.clone(),
            message: crate::quorum::as_delivered(&r.msg, quorum, r.delivery_count, false),
        });
    }

    /// Under round robin, a queue with a message waiting that none of the consumers in its
    /// rotation can take puts them all out of the rotation, as RabbitMQ's queue does when it
    /// tries each in turn (a consumer passed over for another one leaves it in [`Self::deliver`]).
    /// They rejoin at the end when they have capacity again ([`Self::unblock`]). Run after every
    /// command and internal step.
    pub(crate) fn block_full(&mut self) {
        if self.profile.dispatch != Dispatch::RoundRobin {
            return;
        }
        let stuck: Vec<Name> = self
            .queues
            .iter()
            .filter(|(_, q)| {
                !q.ready.is_empty()
                    && !q.consumers.is_empty()
                    && q.consumers.iter().all(|c| !self.has_capacity(c))
                    && !self.single_active(q)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for n in stuck {
            let q = self.queues.get_mut(&n).expect("listed");
            let full: Vec<ConsumerRef> = q.consumers.drain(..).collect();
            q.blocked.extend(full);
        }
    }

    /// Consumers that left the rotation for lack of capacity and have capacity again rejoin it
    /// at the end (called whenever acknowledgements or limits change).
    pub(crate) fn unblock(&mut self) {
        if self.profile.dispatch != Dispatch::RoundRobin {
            return;
        }
        let back: Vec<(Name, ConsumerRef)> = self
            .queues
            .iter()
            .flat_map(|(n, q)| q.blocked.iter().filter(|c| self.has_capacity(c)).map(move |c| (n.clone(), c.clone())))
            .collect();
        for (n, c) in back {
            let q = self.queues.get_mut(&n).expect("listed");
            q.blocked.retain(|b| *b != c);
            q.consumers.push_back(c);
        }
    }

    /// Take a consumer (already removed from its channel) out of its queue; an auto-delete queue
    /// that loses its last consumer is deleted (`queue declare auto-delete`), at once or, under
    /// `Profile::deferred_deletion` (errata 5: the text does not say when), in a step of the
    /// broker's own ([`crate::Internal::Remove`]) unless a consumer comes first.
    pub(crate) fn detach_consumer(&mut self, queue: &Name, c: &ConsumerRef, out: &mut Vec<Event>) {
        let Some(q) = self.queues.get_mut(queue) else { return };
        q.consumers.retain(|x| x != c);
        q.blocked.retain(|x| x != c);
        if q.consumer_count() == 0 {
            // Its `x-expires` counts again from now (`crate::lifetime::expires`).
            self.renew(queue);
        }
        let Some(q) = self.queues.get_mut(queue) else { return };
        if q.auto_delete && q.consumer_count() == 0 {
            if self.profile.deferred_deletion {
                q.unused = true;
            } else {
                self.delete_queue(queue, out);
            }
        }
    }
}
