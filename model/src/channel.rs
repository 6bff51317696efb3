//! The `channel` class: opening a channel and everything closing one entails.

use crate::broker::{Exception, Outcome};
use crate::command::Command;
use crate::event::Event;
use crate::fault::Fault;
use crate::state::{Broker, Channel, ConsumerRef};
use crate::types::{ChanRef, ReplyCode};

impl Broker {
    /// `channel.open`. Opening a channel that is already open is a 504 channel-error
    /// (`channel open state`). A new channel is active (`channel flow initial-state`): a consumer
    /// started on it may be sent messages at once, and with no `channel.flow` in the model it
    /// stays active.
    pub(crate) fn channel_open(&mut self, ch: ChanRef, out: &mut Vec<Event>) -> Outcome {
        let conn = self.connections.get_mut(&ch.conn).expect("connection checked open");
        if conn.channels.contains_key(&ch.channel) {
            return Err(Exception::Connection(ReplyCode::ChannelError));
        }
        conn.channels.insert(ch.channel, Channel::default().into());
        out.push(Event::ChannelOpenOk { ch });
        Ok(())
    }

    /// A method that reached a channel the broker has closed before the client's `close-ok` did
    /// (the client sent it without reading the broker's `channel.close` first): the broker
    /// discards it, unless it is a `channel.close`, which crossed the broker's own and is
    /// answered with `close-ok` (`channel close stability`). The channel stays closing: the
    /// client's `close-ok` for the broker's close is still to come, and frees its number.
    pub(crate) fn closing_channel(&mut self, cmd: &Command, out: &mut Vec<Event>) {
        if let Command::ChannelClose { ch } = cmd {
            out.push(Event::ChannelCloseOk { ch: *ch });
        }
    }

    /// The client has answered every `channel.close` the broker sent (a client reads them before
    /// its next method and answers at once, unless it pipelines): the channels are free again.
    pub(crate) fn answer_closes(&mut self) {
        // Only the connections that have one: the others stay shared with the state before.
        if self.connections.values().any(|c| !c.closing.is_empty()) {
            for c in self.connections.values_mut().filter(|c| !c.closing.is_empty()) {
                c.closing.clear();
            }
        }
    }

    /// The client answered the broker's close of `ch` with `close-ok`: the channel is free again
    /// (for a reader of a session that sees the answer, as the traffic proxy does; a trace
    /// answers every close before its next command, [`crate::Broker::apply_all`]).
    pub fn close_answered(&mut self, ch: ChanRef) {
        if let Some(c) = self.connections.get_mut(&ch.conn) {
            c.closing.remove(&ch.channel);
        }
    }

    /// Close a channel, by the client or by a channel exception: its unacked messages go back to
    /// their queues flagged redelivered, at their original place, in a step of the broker's own
    /// that may come after the close is answered ([`crate::Internal::Return`]); its consumers are
    /// removed (an auto-delete queue losing its last consumer is deleted); a transaction in
    /// progress is discarded.
    pub(crate) fn close_channel(&mut self, ch: ChanRef, out: &mut Vec<Event>) {
        // Read where it stands (shared with the state before): only what moves is copied.
        let Some(channel) = self.connections.get_mut(&ch.conn).and_then(|c| c.channels.remove(&ch.channel)) else {
            return;
        };
        if self.faults.has(Fault::NoRequeueOnClose) {
            // Deliberately wrong: the copies vanish without being settled.
        } else {
            for u in channel.unacked.values() {
                match self.queues.get_mut(&u.queue).filter(|_| !u.queue_gone) {
                    Some(q) => q.returning.push(u.clone()),
                    None => self.settle_copy(u.msg.id(), &u.queue),
                }
            }
        }
        for (tag, c) in channel.consumers.iter().filter(|(_, c)| !c.queue_gone) {
            self.detach_consumer(&c.queue, &ConsumerRef { ch, tag: tag.clone() }, out);
        }
        if self.profile.requeue_avoids_rejecting_channel {
            let avoided = |q: &crate::state::Queue| q.ready.iter().any(|r| r.avoid == Some(ch));
            if self.queues.values().any(|q| avoided(q)) {
                for q in self.queues.values_mut().filter(|q| avoided(q)) {
                    for r in q.ready.iter_mut().filter(|r| r.avoid == Some(ch)) {
                        r.avoid = None;
                    }
                }
            }
        }
        self.unblock();
    }
}
