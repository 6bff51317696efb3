//! Acknowledgements: `basic.ack`, `basic.nack`, `basic.reject`, `basic.recover`, and requeueing.

use crate::broker::{Exception, Outcome};
use crate::event::{Event, Reply};
use crate::fault::Fault;
use crate::profile::RequeuePosition;
use crate::state::{Broker, ConsumerRef, Mode, Ready, Settle, Unacked};
use crate::types::{ChanRef, ReplyCode};

impl Broker {
    /// `basic.ack` or `basic.nack` ([`Broker::basic_settle`]). Tag 0 without multiple names no
    /// delivery, but the delivery-tag domain reserves 0 for everything received so far and the
    /// exists rules check non-zero tags only (`why`), so under `zero_tag_alone_open` it is 406
    /// (RabbitMQ, the first answer), every outstanding delivery, or nothing.
    pub(crate) fn basic_ack_or_nack(
        &mut self,
        ch: ChanRef,
        delivery_tag: u64,
        multiple: bool,
        how: Settle,
        why: &'static str,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if delivery_tag == 0 && !multiple && self.profile.zero_tag_alone_open {
            match self.either(why, 3) {
                0 => {}
                1 => return self.basic_settle(ch, 0, true, how, why, out),
                _ => return Ok(()),
            }
        }
        self.basic_settle(ch, delivery_tag, multiple, how, why, out)
    }

    /// `basic.reject`: as an ack of its tag ([`Broker::basic_settle`]), except that no rule
    /// checks the tag (errata 21 only suggests the 406 of `basic ack multiple exists`): under
    /// `no_ack_tag_open` a tag naming no outstanding delivery is 406 (first) or ignored (a
    /// no-ack delivery's tag as for an ack).
    pub(crate) fn basic_reject(
        &mut self,
        ch: ChanRef,
        delivery_tag: u64,
        how: Settle,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let chan = self.channel(ch).expect("open");
        let unknown = !chan.outstanding(delivery_tag) && !chan.no_ack_tags.contains(&delivery_tag);
        if unknown && self.profile.no_ack_tag_open && self.either("errata 21", 2) == 1 {
            return Ok(());
        }
        self.basic_settle(ch, delivery_tag, false, how, "errata 21", out)
    }

    /// `basic.ack`, `basic.nack` and `basic.reject`.
    ///
    /// The delivery tag must name an unacknowledged delivery on this channel, checked at once
    /// even in a transaction (`basic ack multiple exists`, `basic nack multiple exists`, errata
    /// 21): otherwise 406 closes the channel. Only this channel's deliveries are looked at, so a
    /// tag from another channel names nothing here (`delivery-tag channel-local`). `multiple`
    /// covers every unacknowledged tag up to the given one, and with tag 0 all of them. In a
    /// transaction the settlement waits for `tx.commit`. A requeued copy goes back to its original
    /// place flagged redelivered.
    pub(crate) fn basic_settle(
        &mut self,
        ch: ChanRef,
        delivery_tag: u64,
        multiple: bool,
        how: Settle,
        why: &'static str,
        out: &mut Vec<Event>,
    ) -> Outcome {
        // The tag of a no-ack delivery names a delivered message: its automatic settlement may
        // count as its acknowledgement (406 on another, first) or the superfluous one is
        // accepted (`no_ack_tag_open`; `why`: the method's exists rule).
        let chan = self.channel(ch).expect("open");
        let no_ack_tag = !chan.outstanding(delivery_tag) && chan.no_ack_tags.contains(&delivery_tag);
        let in_tx = matches!(chan.mode, Mode::Tx { .. });
        let bad = !(chan.outstanding(delivery_tag) || multiple && delivery_tag == 0);
        let accepted = no_ack_tag && self.either(why, 2) == 1;
        // `basic nack multiple exists`, unlike ack's rule, does not ask for the check at once
        // on a transacted channel: under `tx_checks_at_commit` the 406 may come at tx.commit
        // instead, nothing of the transaction done (as for a deferred publish failure).
        if bad
            && !accepted
            && in_tx
            && why == "basic nack multiple exists"
            && self.profile.tx_checks_at_commit
            && self.either(why, 2) == 1
        {
            if let Mode::Tx { failed, .. } = &mut self.channel_mut(ch).mode {
                failed.get_or_insert(ReplyCode::PreconditionFailed);
            }
            return Ok(());
        }
        let chan = self.channel(ch).expect("open");
        let open = |t: &u64| chan.outstanding(*t);
        let tags: Vec<u64> = if multiple && delivery_tag == 0 {
            chan.unacked.keys().copied().filter(open).collect()
        } else if accepted {
            chan.unacked.range(..=delivery_tag).map(|(t, _)| *t).filter(open).filter(|_| multiple).collect()
        } else if !open(&delivery_tag) {
            return Err(Exception::Channel(ReplyCode::PreconditionFailed));
        } else if multiple {
            chan.unacked.range(..=delivery_tag).map(|(t, _)| *t).filter(open).collect()
        } else {
            vec![delivery_tag]
        };
        let chan = self.channel_mut(ch);
        if matches!(chan.mode, Mode::Tx { .. }) {
            for t in tags {
                chan.unacked.get_mut(&t).expect("listed").pending = Some(how);
            }
            return Ok(());
        }
        if self.faults.has(Fault::ReuseDeliveryTags) {
            self.channel_mut(ch).next_tag = 1;
        }
        self.in_batches(ch, tags, how == Settle::Requeue, out, |b, u| b.finish(ch, u, how));
        Ok(())
    }

    /// Take the deliveries `tags` off channel `ch` and hand each to `settle`, then let the
    /// consumers that have room again rejoin the rotation. Copies going back to their queues
    /// (`requeue`) go, under `Profile::requeue_by_consumer`, in batches of one queue and one
    /// consumer (`basic.get` deliveries first, then by consumer tag; queues by name), as
    /// RabbitMQ's channel settles them, and a queue hands out what it can between two of its
    /// batches ([`Broker::dispatch_now`]); otherwise all at once.
    pub(crate) fn in_batches(
        &mut self,
        ch: ChanRef,
        tags: Vec<u64>,
        requeue: bool,
        out: &mut Vec<Event>,
        mut settle: impl FnMut(&mut Broker, Unacked),
    ) {
        let mut batches: std::collections::BTreeMap<(crate::types::Name, Option<crate::types::Name>), Vec<u64>> =
            std::collections::BTreeMap::new();
        if !(requeue && self.profile.requeue_by_consumer) {
            batches.insert(Default::default(), tags);
        } else {
            let chan = self.channel(ch).expect("open");
            for t in tags {
                let key = chan.unacked.get(&t).map(|u| (u.queue.clone(), u.consumer.clone())).unwrap_or_default();
                batches.entry(key).or_default().push(t);
            }
        }
        let batches: Vec<_> = batches.into_iter().collect();
        for (i, ((queue, _), tags)) in batches.iter().enumerate() {
            for t in tags {
                let u = self.channel_mut(ch).unacked.remove(t).expect("listed");
                settle(self, u);
            }
            self.unblock();
            if batches.get(i + 1).is_some_and(|((next, _), _)| next == queue) {
                self.dispatch_now(queue, None, "basic nack multiple", out);
            }
        }
    }

    /// Carry out a settlement decided for an unacked delivery taken off channel `ch`.
    ///
    /// A copy rejected with requeue is kept from the rejecting channel under
    /// `requeue_avoids_rejecting_channel` (`basic reject requeue 01`, `basic nack requeue 01`:
    /// not to the same client on this channel). Those rules recommend another consumer and,
    /// where none can take it, a dead-letter queue; the requeue field docs add that a failed
    /// requeue means the message is discarded or dead-lettered. So with no consumer of the queue
    /// on another channel, the copy is held for one (first) or dead-lettered, which in a model
    /// without dead-letter queues is its end.
    pub(crate) fn finish(&mut self, ch: ChanRef, u: Unacked, how: Settle) {
        match how {
            Settle::Ack => self.settle_copy(u.msg.id(), &u.queue),
            Settle::Discard => self.discard(u),
            Settle::Requeue => {
                let avoid = self.profile.requeue_avoids_rejecting_channel.then_some(ch);
                let elsewhere = |b: &Broker| {
                    b.queues.get(&u.queue).is_none_or(|q| u.queue_gone || q.all_consumers().any(|c| c.ch != ch))
                };
                if avoid.is_some() && !elsewhere(self) && self.either("basic reject requeue 01", 2) == 1 {
                    return self.settle_copy(u.msg.id(), &u.queue);
                }
                self.requeue(u, avoid);
            }
        }
    }

    /// A delivery rejected or nacked without requeue: settled, and dead-lettered
    /// ([`crate::lifetime::dead_letter`], reason `rejected`) if its queue is still there to say
    /// where.
    fn discard(&mut self, u: Unacked) {
        self.settle_copy(u.msg.id(), &u.queue);
        if !u.queue_gone {
            self.dead_letter(&u.queue, &u.msg, crate::lifetime::dead_letter::Reason::Rejected);
        }
    }

    /// Put an unacknowledged copy back in its queue at its original place, flagged redelivered
    /// (`basic recover 01`, `redelivered implementation`); a copy whose queue was deleted is
    /// dropped. Where the profile leaves the place open (`requeue_position`: the spec says
    /// nothing of it) the copy floats: it may go out before or after any message that was in the
    /// queue then, never after one that came later (`basic 08`). Only `basic.recover` without
    /// requeue (spec profile) hands copies straight back to their original consumer.
    pub(crate) fn requeue(&mut self, u: Unacked, avoid: Option<ChanRef>) {
        self.requeue_flagged(u, avoid, self.profile.redelivered_flag_optional);
    }

    /// Take back the copies on their way to `queue` from closed channels
    /// ([`crate::Internal::Return`]), all at once, as any requeue.
    pub(crate) fn take_back(&mut self, queue: &crate::types::Name) {
        let Some(q) = self.queues.get_mut(queue) else { return };
        for u in std::mem::take(&mut q.returning) {
            self.put_back(u, None, self.profile.redelivered_flag_optional, true);
        }
    }

    /// [`Self::requeue`], with the redelivered flag optional or not on the next delivery.
    pub(crate) fn requeue_flagged(&mut self, u: Unacked, avoid: Option<ChanRef>, flag_optional: bool) {
        self.put_back(u, avoid, flag_optional, false);
    }

    /// [`Self::requeue_flagged`], for a copy that comes back because its channel closed
    /// (`returned`) or was requeued by its client: a quorum queue puts the first kind at its front,
    /// the second at its back, and counts both ([`crate::quorum`]).
    fn put_back(&mut self, u: Unacked, avoid: Option<ChanRef>, flag_optional: bool, returned: bool) {
        let redelivered = !self.faults.has(Fault::NoRedeliveredFlag);
        let floating = (self.profile.requeue_position == RequeuePosition::Anywhere).then_some(self.next_msg);
        match self.queues.get_mut(&u.queue).filter(|_| !u.queue_gone) {
            Some(q) if q.quorum => {
                let queue = u.queue.clone();
                self.quorum_put_back(&queue, u, redelivered, returned);
                self.drop_over_limits(&queue);
            }
            Some(q) => {
                let id = u.msg.id();
                let at = q.ready.partition_point(|r| r.msg.id() < id);
                let expires = u.expires;
                let r = Ready {
                    msg: u.msg,
                    redelivered,
                    flag_optional,
                    avoid,
                    floating,
                    expires,
                    delivery_count: 0,
                    returned: false,
                };
                q.ready.insert(at, r);
                // Back over a `drop-head` length limit, the oldest go (Q44: the requeued one).
                self.drop_over_limits(&u.queue);
            }
            None => self.settle_copy(u.msg.id(), &u.queue),
        }
    }

    /// `basic.recover`: with `requeue`, every unacknowledged delivery of the channel goes back to
    /// its queue. Without, the spec redelivers each to its original consumer as far as its
    /// prefetch window allows (errata 2: a `basic.get` delivery, a cancelled consumer's, or one
    /// beyond the window is requeued instead); RabbitMQ refuses it (540). Redeliveries are flagged (`basic recover 01`).
    pub(crate) fn basic_recover(&mut self, ch: ChanRef, requeue: bool, out: &mut Vec<Event>) -> Outcome {
        if !requeue && !self.profile.recover_without_requeue {
            return Err(Exception::Connection(ReplyCode::NotImplemented));
        }
        let chan = self.channel_mut(ch);
        let tags: Vec<u64> = chan.unacked.iter().filter(|(_, u)| u.pending.is_none()).map(|(t, _)| *t).collect();
        if requeue {
            // Answered before anything goes out again: RabbitMQ's channel replies while its
            // queues still have the copies to take back. `basic recover 01`: the flag is a MUST
            // on what recover resends.
            out.push(Event::Reply { ch, reply: Reply::RecoverOk });
            self.in_batches(ch, tags, true, out, |b, u| b.requeue_flagged(u, None, false));
            return Ok(());
        }
        // requeue=false from here on: each goes back to its own consumer where it can.
        for t in tags {
            let chan = self.channel_mut(ch);
            let u = chan.unacked.remove(&t).expect("listed");
            let same = u.consumer.clone().filter(|c| chan.consumers.contains_key(c));
            // Redelivered only within the prefetch window in force (`basic qos prefetch-count
            // 01`; recover may resend "zero or more"); the rest go back to the queue.
            let same = same.filter(|tag| !u.queue_gone && self.has_capacity(&ConsumerRef { ch, tag: tag.clone() }));
            match same {
                Some(tag) => {
                    let queue = u.queue.clone();
                    let r = Ready {
                        msg: u.msg,
                        redelivered: true,
                        flag_optional: false,
                        avoid: None,
                        floating: None,
                        expires: u.expires,
                        delivery_count: u.delivery_count,
                        returned: false,
                    };
                    let delivery_tag = self.hand_over(ch, &queue, &r, Some(tag.clone()), false);
                    out.push(Event::Deliver {
                        ch,
                        consumer_tag: tag,
                        delivery_tag,
                        redelivered: true,
                        queue,
                        message: r.msg,
                    });
                }
                // With requeue off, a delivery that cannot go back to its recipient (a basic.get
                // one, a cancelled consumer's, one beyond the window) may also stay outstanding
                // on the channel, its tag still valid: the recover doc lets any number of them,
                // none included, be resent, and errata 2 notes the requeue field's silence on
                // them (recover_without_requeue, the spec profile's only way here).
                None if !u.queue_gone && self.either("errata 2", 2) == 1 => {
                    self.channel_mut(ch).unacked.insert(t, u);
                }
                // `basic recover 01`: the flag is a MUST on what recover resends.
                None => self.requeue_flagged(u, None, false),
            }
        }
        self.unblock();
        out.push(Event::Reply { ch, reply: Reply::RecoverOk });
        Ok(())
    }

    /// Whether a copy is still live in the ledger (used by tests).
    pub fn is_live(&self, copy: &crate::state::CopyId) -> bool {
        self.ledger.contains_key(copy)
    }
}
