//! The model's interface: `Broker::apply` takes a client command and returns what the client
//! observes; `Broker::internal_steps` lists the choices a broker may make on its own (which
//! consumer gets the next message, and when), and `Broker::step` takes one.
//!
//! This is the one place where commands are matched to the class modules that implement them;
//! a method that fails raises an `Exception` that this module turns into a channel or
//! connection close naming the method.

use crate::command::Command;
use crate::event::Event;
use crate::types::{ChanRef, ConnId, ReplyCode};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An AMQP exception raised by a method: which close it causes and with what code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exception {
    /// Close the channel (soft error).
    Channel(ReplyCode),
    /// Close the connection (hard error).
    Connection(ReplyCode),
}

/// Result of a method handler: its events are pushed to the output as it goes.
pub(crate) type Outcome = Result<(), Exception>;

/// A command the model cannot apply because the client could not have sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum UsageError {
    /// The command names a connection that is not open.
    NotConnected(ConnId),
    /// `ConnectionOpen` for a connection that is already open.
    AlreadyConnected(ConnId),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::NotConnected(c) => write!(f, "connection c{} is not open", c.0),
            UsageError::AlreadyConnected(c) => write!(f, "connection c{} is already open", c.0),
        }
    }
}

impl std::error::Error for UsageError {}

/// A choice the broker makes on its own.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Internal {
    /// Deliver a message of `queue` that may go out next to `consumer`.
    Deliver {
        /// The queue.
        queue: crate::types::Name,
        /// The consumer that gets it.
        consumer: crate::state::ConsumerRef,
        /// Where the message is in the queue's ready list: the first eligible one, unless
        /// requeued messages may have moved (`Profile::requeue_position`).
        at: usize,
        /// The redelivered flag it goes out with: its own, or either where the flag is
        /// optional (`Profile::redelivered_flag_optional`).
        redelivered: bool,
    },
    /// Delete what is due for deletion without a client asking, at a time of the broker's
    /// choosing (`Profile::deferred_deletion`). Clients see nothing: the step is silent, and is
    /// owed once a `wait` is over ([`crate::Broker::owes_removal`]).
    Remove(Removal),
    /// Expire the message at `at` of `queue`, whose time to live may have passed
    /// ([`crate::lifetime::ttl`]): it leaves the queue, dead-lettered if the queue says where.
    /// Silent itself (a dead-lettered copy may then be delivered); owed once the deadline has
    /// surely passed ([`crate::Broker::owes_expiry`]).
    Expire {
        /// The queue.
        queue: crate::types::Name,
        /// Where the message is in the queue's ready list (a head).
        at: usize,
    },
    /// Take back the deliveries of closed channels on their way to `queue`
    /// ([`crate::state::Queue::returning`]), flagged redelivered, at their places. Silent
    /// itself (they may then be delivered), and owed once a `wait` is over
    /// ([`crate::Broker::owes_removal`]).
    Return {
        /// The queue.
        queue: crate::types::Name,
    },
    /// Put the first dead-lettered copy on its way to `queue` from the queue `from` in it
    /// ([`crate::state::Queue::arriving`]), as a publish would (its limits apply). Silent itself
    /// (the copy may then be delivered), and owed once a `wait` is over.
    Arrive {
        /// The queue it goes to.
        queue: crate::types::Name,
        /// The queue it died in.
        from: crate::types::Name,
    },
}

/// What an [`Internal::Remove`] deletes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Removal {
    /// An auto-delete exchange that lost its last binding as a source
    /// (`exchange declare auto-delete amq_exchange_02`).
    Exchange(crate::types::Name),
    /// An exclusive queue whose connection closed (`queue declare exclusive exclusive`), an
    /// auto-delete queue that lost its last consumer (`queue declare auto-delete`), or a queue
    /// unused for its `x-expires` ([`crate::lifetime::expires`]).
    Queue(crate::types::Name),
}

impl crate::state::Broker {
    /// Apply a client command or environment event, returning the events clients observe, in
    /// the order the broker sends them.
    ///
    /// ```
    /// use amqp_model::{Broker, ChanRef, Command, ConnId, Event, Profile};
    /// let mut b = Broker::new(Profile::rabbitmq());
    /// b.apply(&Command::ConnectionOpen { conn: ConnId(1) }).unwrap();
    /// let ch = ChanRef::new(1, 1);
    /// assert_eq!(b.apply(&Command::ChannelOpen { ch }).unwrap(), vec![Event::ChannelOpenOk { ch }]);
    /// ```
    ///
    /// Where the profile allows several answers, this is the first ([`crate::choice`]);
    /// `Broker::apply_all` gives them all.
    pub fn apply(&mut self, cmd: &Command) -> Result<Vec<Event>, UsageError> {
        self.apply_scripted(cmd, &[])
    }

    /// [`Broker::apply`], making choices as `self.choices` says.
    pub(crate) fn apply_choosing(&mut self, cmd: &Command) -> Result<Vec<Event>, UsageError> {
        let mut out = Vec::new();
        match cmd {
            Command::Restart => self.restart(&mut out),
            Command::Pass { ms } => self.pass(*ms),
            Command::ConnectionOpen { conn } => {
                if self.connections.contains_key(conn) {
                    return Err(UsageError::AlreadyConnected(*conn));
                }
                self.connections.insert(*conn, Default::default());
                out.push(Event::ConnectionOpenOk { conn: *conn });
            }
            Command::ConnectionClose { conn } | Command::ConnectionDrop { conn } => {
                if !self.connections.contains_key(conn) {
                    return Err(UsageError::NotConnected(*conn));
                }
                self.close_connection(*conn, &mut out);
                if matches!(cmd, Command::ConnectionClose { .. }) {
                    out.push(Event::ConnectionCloseOk { conn: *conn });
                }
            }
            _ => {
                let ch = cmd.channel().expect("every other command is a channel method");
                if !self.connections.contains_key(&ch.conn) {
                    return Err(UsageError::NotConnected(ch.conn));
                }
                let method = cmd.method().expect("channel commands are methods");
                if self.connections[&ch.conn].closing.contains(&ch.channel) {
                    self.closing_channel(cmd, &mut out);
                    return Ok(out);
                }
                let result = match cmd {
                    Command::ChannelOpen { ch } => self.channel_open(*ch, &mut out),
                    _ if self.channel(ch).is_none() => Err(Exception::Connection(ReplyCode::ChannelError)),
                    _ => self.lock_or_other_failure(ch, cmd, &mut out),
                };
                match result {
                    Ok(()) => {}
                    Err(Exception::Channel(code)) => {
                        self.close_channel(ch, &mut out);
                        if let Some(c) = self.connections.get_mut(&ch.conn) {
                            c.closing.insert(ch.channel);
                        }
                        out.push(Event::ChannelClosed { ch, code, method });
                    }
                    Err(Exception::Connection(code)) => {
                        self.close_connection(ch.conn, &mut out);
                        out.push(Event::ConnectionClosed { conn: ch.conn, code, method: Some(method) });
                    }
                }
            }
        }
        self.block_full();
        Ok(out)
    }

    pub(crate) fn channel_method(&mut self, ch: ChanRef, cmd: &Command, out: &mut Vec<Event>) -> Outcome {
        use Command::*;
        match cmd {
            ChannelClose { .. } => {
                self.close_channel(ch, out);
                out.push(Event::ChannelCloseOk { ch });
                Ok(())
            }
            ExchangeDeclare { exchange, kind, passive, durable, auto_delete, internal, arguments, .. } => {
                self.exchange_declare(ch, exchange, kind, *passive, *durable, *auto_delete, *internal, arguments, out)
            }
            ExchangeDelete { exchange, if_unused, .. } => self.exchange_delete(ch, exchange, *if_unused, out),
            ExchangeBind { destination, source, routing_key, arguments, .. } => {
                self.exchange_bind(ch, destination, source, routing_key, arguments, out)
            }
            ExchangeUnbind { destination, source, routing_key, arguments, .. } => {
                self.exchange_unbind(ch, destination, source, routing_key, arguments, out)
            }
            QueueDeclare { queue, passive, durable, exclusive, auto_delete, arguments, .. } => {
                self.queue_declare(ch, queue, *passive, *durable, *exclusive, *auto_delete, arguments, out)
            }
            QueueBind { queue, exchange, routing_key, arguments, .. } => {
                self.queue_bind(ch, queue, exchange, routing_key, arguments, out)
            }
            QueueUnbind { queue, exchange, routing_key, arguments, .. } => {
                self.queue_unbind(ch, queue, exchange, routing_key, arguments, out)
            }
            QueuePurge { queue, .. } => self.queue_purge(ch, queue, out),
            QueueDelete { queue, if_unused, if_empty, .. } => self.queue_delete(ch, queue, *if_unused, *if_empty, out),
            BasicQos { prefetch_count, global, .. } => self.basic_qos(ch, *prefetch_count, *global, out),
            BasicConsume { queue, consumer_tag, no_ack, exclusive, arguments, .. } => {
                self.basic_consume(ch, queue, consumer_tag, *no_ack, *exclusive, arguments, out)
            }
            BasicCancel { consumer_tag, .. } => self.basic_cancel(ch, consumer_tag, out),
            BasicPublish { exchange, routing_key, mandatory, content, .. } => {
                self.basic_publish(ch, exchange, routing_key, *mandatory, content, out)
            }
            BasicGet { queue, no_ack, .. } => self.basic_get(ch, queue, *no_ack, out),
            BasicAck { delivery_tag, multiple, .. } => self.basic_ack_or_nack(
                ch,
                *delivery_tag,
                *multiple,
                crate::state::Settle::Ack,
                "basic ack multiple exists",
                out,
            ),
            BasicNack { delivery_tag, multiple, requeue, .. } => self.basic_ack_or_nack(
                ch,
                *delivery_tag,
                *multiple,
                crate::state::Settle::rejecting(*requeue),
                "basic nack multiple exists",
                out,
            ),
            BasicReject { delivery_tag, requeue, .. } => {
                self.basic_reject(ch, *delivery_tag, crate::state::Settle::rejecting(*requeue), out)
            }
            BasicRecover { requeue, .. } => self.basic_recover(ch, *requeue, out),
            ConfirmSelect { .. } => self.confirm_select(ch, out),
            TxSelect { .. } => self.tx_select(ch, out),
            TxCommit { .. } => self.tx_commit(ch, out),
            TxRollback { .. } => self.tx_rollback(ch, out),
            ConnectionOpen { .. }
            | ConnectionClose { .. }
            | ConnectionDrop { .. }
            | Restart
            | Pass { .. }
            | ChannelOpen { .. } => {
                unreachable!("handled by apply")
            }
        }
    }

    /// The broker's own choices available now: deliveries to consumers with capacity, then the
    /// deletions it may make ([`Internal::Remove`]) and the expiries ([`Internal::Expire`]).
    pub fn internal_steps(&self, out: &mut Vec<Internal>) {
        // Returns and dead letters first: a broker taking the first step each time takes copies
        // back and lands dead-lettered ones as soon as it can (RabbitMQ nearly always takes
        // copies back at once, Q50; it lands a dead-lettered copy a little later, Q64).
        let returning = self.queues.iter().filter(|(_, q)| !q.returning.is_empty());
        out.extend(returning.map(|(n, _)| Internal::Return { queue: n.clone() }));
        self.arrival_choices(out);
        self.dispatch_choices(out);
        self.removal_choices(out);
        self.expiry_choices(out);
    }

    /// The deletions due under `Profile::deferred_deletion`, and those of queues whose
    /// `x-expires` may have passed.
    fn removal_choices(&self, out: &mut Vec<Internal>) {
        let exchanges = self.exchanges.iter().filter(|(_, x)| x.unused).map(|(n, _)| Removal::Exchange(n.clone()));
        let queues = self.queues.iter().filter(|(_, q)| q.orphaned || q.unused).map(|(n, _)| Removal::Queue(n.clone()));
        let expired = self.expired_queues().filter(|n| !self.queues[*n].orphaned && !self.queues[*n].unused);
        let expired: Vec<Removal> = expired.map(|n| Removal::Queue(n.clone())).collect();
        out.extend(exchanges.chain(queues).chain(expired).map(Internal::Remove));
    }

    /// The dead-lettered copies that may land now ([`Internal::Arrive`]): for each queue, the
    /// first on its way from each queue they died in.
    fn arrival_choices(&self, out: &mut Vec<Internal>) {
        for (name, q) in self.queues.iter().filter(|(_, q)| !q.arriving.is_empty()) {
            for (i, a) in q.arriving.iter().enumerate() {
                if !q.arriving[..i].iter().any(|b| b.from == a.from) {
                    out.push(Internal::Arrive { queue: name.clone(), from: a.from.clone() });
                }
            }
        }
    }

    /// Whether a silent step is owed: a deletion ([`Internal::Remove`]), an expiry
    /// ([`Internal::Expire`]), a closed channel's requeue ([`Internal::Return`]) or a
    /// dead-lettered copy's arrival ([`Internal::Arrive`]) that must have been made once a
    /// `wait` is over, though nothing shows it but the answers to later commands.
    pub fn owes_removal(&self) -> bool {
        self.exchanges.values().any(|x| x.unused)
            || self.queues.values().any(|q| q.orphaned || q.unused)
            || self.owes_arrival()
            || self.profile.lifetime && (self.owes_queue_expiry() || self.owes_expiry())
    }

    /// Whether copies are still on their way to a queue: a closed channel's going back
    /// ([`Internal::Return`]) or dead-lettered ones ([`Internal::Arrive`]).
    pub fn owes_arrival(&self) -> bool {
        self.queues.values().any(|q| !q.returning.is_empty() || !q.arriving.is_empty())
    }

    /// Whether the broker still has something it must do on its own: a delivery it may make
    /// (`Broker::internal_steps`) that it may not leave unmade. Every one, except under
    /// `Profile::prefetch_fill_optional`, where a delivery to a consumer that already holds an
    /// unacknowledged delivery of its own is sending ahead, which the broker may leave out
    /// (`basic qos prefetch-count 01`); a consumer holding none must still be served while a
    /// message may go to it (to it or, first, to another consumer), unless its channel's or
    /// connection's window is full counting `basic.get` deliveries too (the texts do not say
    /// whether those count, and a server that counts them sends less), or the message would pass
    /// one its channel rejected and may not take ([`Broker::passes_avoided`]).
    pub fn owes_delivery(&self) -> bool {
        let mut steps = Vec::new();
        self.dispatch_choices(&mut steps);
        if !self.profile.prefetch_fill_optional {
            return !steps.is_empty();
        }
        steps.iter().any(|step| match step {
            Internal::Deliver { queue, consumer, at, .. } => {
                !self.holds_unacked(consumer)
                    && self.capacity(consumer, true)
                    && !self.passes_avoided(queue, consumer, *at)
            }
            Internal::Remove(_) | Internal::Expire { .. } | Internal::Return { .. } | Internal::Arrive { .. } => false,
        })
    }

    /// Whether the message at `at` of `queue` would pass one that `consumer`'s channel rejected
    /// and may not take (`basic reject requeue 01`): `basic 08` keeps arrival order, so a broker
    /// may hold that channel's consumers back until the avoided message has gone elsewhere; it
    /// may also let them pass it, so such a delivery is possible but never owed.
    fn passes_avoided(&self, queue: &crate::types::Name, consumer: &crate::state::ConsumerRef, at: usize) -> bool {
        self.queues.get(queue).is_some_and(|q| q.ready.iter().take(at).any(|r| r.avoid == Some(consumer.ch)))
    }

    /// Whether `consumer` holds an unacknowledged delivery of its own (not a `basic.get` one).
    fn holds_unacked(&self, consumer: &crate::state::ConsumerRef) -> bool {
        self.channel(consumer.ch)
            .is_some_and(|c| c.unacked.values().any(|u| u.consumer.as_ref() == Some(&consumer.tag)))
    }

    /// Take one of the broker's own choices, returning what clients observe.
    pub fn step(&mut self, internal: &Internal) -> Vec<Event> {
        let mut out = Vec::new();
        match internal {
            Internal::Deliver { queue, consumer, at, redelivered } => {
                self.deliver(queue, consumer, *at, *redelivered, &mut out)
            }
            Internal::Remove(Removal::Exchange(name)) => self.delete_exchange(name, &mut out),
            Internal::Remove(Removal::Queue(name)) => self.delete_queue(name, &mut out),
            Internal::Expire { queue, at } => self.expire(queue, *at),
            Internal::Return { queue } => self.take_back(queue),
            Internal::Arrive { queue, from } => self.arrive(queue, from, &mut out),
        }
        self.block_full();
        out
    }

    /// Take internal steps until none is left, always the first one offered: a broker that
    /// dispatches eagerly and (under `rabbitmq`) in round-robin order. Returns their events.
    pub fn settle_internal(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        let mut steps = Vec::new();
        loop {
            steps.clear();
            self.internal_steps(&mut steps);
            let Some(first) = steps.first() else { break };
            out.extend(self.step(&first.clone()));
        }
        out
    }
}
