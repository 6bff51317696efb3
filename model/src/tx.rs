//! The `tx` class. Publishes and settlements made on a transactional channel take effect at
//! `tx.commit` and are forgotten at `tx.rollback`; when an unroutable mandatory publish is
//! returned is RabbitMQ's answer (at the commit) or, under `spec`, open (`tx not mandatory`).

use crate::broker::{Exception, Outcome};
use crate::event::{Event, Reply};
use crate::state::{Broker, Mode, PendingPublish};
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
        let chan = self.channel_mut(ch);
        let tags: Vec<u64> = chan.unacked.iter().filter(|(_, u)| u.pending.is_some()).map(|(t, _)| *t).collect();
        for t in tags {
            let u = self.channel_mut(ch).unacked.remove(&t).expect("listed");
            let how = u.pending.expect("pending");
            self.finish(ch, u, how, out);
        }
        self.unblock();
        out.push(Event::Reply { ch, reply: Reply::TxCommitOk });
        out.extend(late);
        Ok(())
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
