//! The `tx` class. Publishes and settlements made on a transactional channel take effect at
//! `tx.commit` and are forgotten at `tx.rollback`; when an unroutable mandatory publish is
//! returned is RabbitMQ's answer (at the commit) or, under `spec`, open (`tx not mandatory`).

use crate::broker::{Exception, Outcome};
use crate::event::{Event, Reply};
use crate::state::{Broker, Mode, PendingPublish, Settle};
use crate::types::{ChanRef, ReplyCode};

impl Broker {
    /// `tx.select`: a channel in confirm mode cannot become transactional (406).
    pub(crate) fn tx_select(&mut self, ch: ChanRef, out: &mut Vec<Event>) -> Outcome {
        let chan = self.channel_mut(ch);
        match chan.mode {
            Mode::Confirm { .. } => return Err(Exception::Channel(ReplyCode::PreconditionFailed)),
            Mode::Plain => chan.mode = Mode::Tx { publishes: Vec::new(), failed: None },
            Mode::Tx { .. } => {}
        }
        out.push(Event::Reply { ch, reply: Reply::TxSelectOk });
        Ok(())
    }

    /// The channel's transaction: its held publishes and the code of a check deferred to the
    /// commit that failed; 406 on a channel that is not transactional.
    fn transaction(&mut self, ch: ChanRef) -> Result<(&mut Vec<PendingPublish>, &mut Option<ReplyCode>), Exception> {
        match &mut self.channel_mut(ch).mode {
            Mode::Tx { publishes, failed } => Ok((publishes, failed)),
            _ => Err(Exception::Channel(ReplyCode::PreconditionFailed)),
        }
    }

    /// `tx.commit` (`tx commit transacted`: 406 on a channel that is not transactional): the held
    /// publishes are routed in order, then the held settlements are carried out; or, when a
    /// publish or a nack failed a check deferred to the commit, the channel closes with that
    /// check's code.
    /// An unroutable mandatory one is returned now, before commit-ok, as RabbitMQ does; `tx not
    /// mandatory` leaves this open, so under `tx_return_timing_open` it may also come after
    /// commit-ok, or never (or it came at the publish already: [`Broker::basic_publish`]).
    pub(crate) fn tx_commit(&mut self, ch: ChanRef, out: &mut Vec<Event>) -> Outcome {
        let (publishes, failed) = self.transaction(ch)?;
        if let Some(code) = *failed {
            // A check deferred to the commit failed: nothing of the transaction is done, and the
            // channel closes (its held settlements undone, its deliveries requeued).
            return Err(Exception::Channel(code));
        }
        let publishes = std::mem::take(publishes);
        let mut late = Vec::new();
        for p in publishes {
            self.settle_header_reading(&p.exchange, &p.routing_key, &p.content.headers);
            let open = self.tx_return_open(&p.exchange, &p.routing_key, p.mandatory, &p.content);
            let _ = match if open { self.either("tx not mandatory", 3) } else { 0 } {
                0 => self.enqueue(ch, &p.exchange, &p.routing_key, p.mandatory, &p.content, out),
                1 => self.enqueue(ch, &p.exchange, &p.routing_key, true, &p.content, &mut late),
                _ => self.enqueue(ch, &p.exchange, &p.routing_key, false, &p.content, out),
            };
        }
        // The held settlements are carried out as a multiple nack's are: under
        // `requeue_by_consumer`, requeued ones by queue and consumer, the queue handing out what
        // it can between two batches (Q53: the batches and order of Q50, transaction or not).
        let chan = self.channel(ch).expect("checked open");
        let held = chan.unacked.iter().filter(|(_, u)| u.pending.is_some());
        let requeue = held.clone().any(|(_, u)| u.pending == Some(Settle::Requeue));
        let tags: Vec<u64> = held.map(|(t, _)| *t).collect();
        // RabbitMQ's channel answers the commit while its queues take the copies back: the
        // answer may come before, between or after the deliveries the batches make at once on
        // this channel (before and after both seen, Q53). Which of them it follows is chosen
        // here, before anything changes, up to as many as there could be: the copies going back
        // and what their queues hold already.
        let answer_after = match self.profile.requeue_by_consumer && requeue && !chan.consumers.is_empty() {
            true => {
                let queues: std::collections::BTreeSet<crate::types::Name> = chan
                    .unacked
                    .values()
                    .filter(|u| u.pending == Some(Settle::Requeue))
                    .map(|u| u.queue.clone())
                    .collect();
                let ready: usize = queues.iter().filter_map(|q| self.queues.get(q)).map(|q| q.ready.len()).sum();
                let most = tags.len() + ready;
                usize::from(self.either("Q53", u8::try_from(most + 1).unwrap_or(u8::MAX)))
            }
            false => usize::MAX,
        };
        let mut settled = Vec::new();
        self.in_batches(ch, tags, requeue, &mut settled, |b, u| {
            let how = u.pending.expect("pending");
            b.finish(ch, u, how);
        });
        self.unblock();
        let here: Vec<usize> = (0..settled.len()).filter(|i| settled[*i].channel() == Some(ch)).collect();
        let at = here.get(answer_after).copied().unwrap_or(settled.len());
        settled.insert(at, Event::Reply { ch, reply: Reply::TxCommitOk });
        out.extend(settled);
        out.extend(late);
        Ok(())
    }

    /// Whether a `tx.commit` may hand out copies inside its step (and so place its answer among
    /// them): some channel holds a requeue for its commit.
    pub(crate) fn commit_may_dispatch(&self) -> bool {
        self.connections
            .values()
            .flat_map(|c| c.channels.values())
            .any(|chan| chan.unacked.values().any(|u| u.pending == Some(Settle::Requeue)))
    }

    /// `tx.rollback` (`tx rollback transacted`: 406 on a channel that is not transactional): held
    /// publishes are discarded and held settlements undone, so those deliveries are
    /// unacknowledged again.
    pub(crate) fn tx_rollback(&mut self, ch: ChanRef, out: &mut Vec<Event>) -> Outcome {
        let (publishes, failed) = self.transaction(ch)?;
        publishes.clear();
        *failed = None;
        for u in self.channel_mut(ch).unacked.values_mut() {
            u.pending = None;
        }
        out.push(Event::Reply { ch, reply: Reply::TxRollbackOk });
        Ok(())
    }
}
