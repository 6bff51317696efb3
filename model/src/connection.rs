//! The `connection` class as far as broker state goes: closing a connection (by the client, by a
//! dropped socket, or by a connection exception) and the broker restart that closes them all.

use crate::event::Event;
use crate::fault::Fault;
use crate::state::{Broker, Ready};
use crate::types::{ConnId, ReplyCode};

impl Broker {
    /// Close every channel of `conn` (requeueing their unacked messages, removing their
    /// consumers), then delete the exclusive queues it owns (`queue declare exclusive
    /// exclusive`; errata 19: they go with their connection). Errata 5 reports RabbitMQ deleting
    /// them before the close is answered, which the text does not require: under
    /// `Profile::deferred_deletion` they are only marked orphaned, locked to every connection
    /// until the broker deletes them in a step of its own ([`crate::Internal::Remove`]).
    ///
    /// The channels close one at a time, in an order the text does not give and RabbitMQ does
    /// not keep (its channels close side by side: 8 runs of 20 in one order, 12 in the other), a
    /// choice wherever the order can matter ([`Broker::close_order_matters`]). A closed
    /// channel's copies go back later ([`crate::Internal::Return`]) or, where the order matters,
    /// before the next channel closes, and then its queues may hand them out at once
    /// ([`Broker::dispatch_now`]), to a consumer of a channel still to close among others: one
    /// without acknowledgements loses it.
    pub(crate) fn close_connection(&mut self, conn: ConnId, out: &mut Vec<Event>) {
        if !self.connections.contains_key(&conn) {
            return;
        }
        // The channels still open are those still to close: each close removes its own.
        while let Some(open) = self.connections.get(&conn).map(|c| c.channels.len()).filter(|n| *n > 0) {
            let matters = self.close_order_matters(conn);
            let k = match matters {
                true => usize::from(self.either("connection close", u8::try_from(open).unwrap_or(u8::MAX))),
                false => 0,
            };
            let channel = *self.connections[&conn].channels.keys().nth(k).expect("k < open");
            let ch = crate::types::ChanRef { conn, channel };
            let returned: std::collections::BTreeSet<crate::types::Name> = self
                .channel(ch)
                .map(|c| c.unacked.values().filter(|u| !u.queue_gone).map(|u| u.queue.clone()).collect())
                .unwrap_or_default();
            self.close_channel(ch, out);
            // Its copies go back before the next channel closes (and may go out again to one
            // of its consumers), or later ([`crate::Internal::Return`]).
            let now = matters && returned.iter().any(|q| self.touches(conn, None, q));
            if now && self.either("connection close", 2) == 0 {
                for q in &returned {
                    self.take_back(q);
                    self.dispatch_now(q, Some(conn), "connection close", out);
                }
            }
        }
        let owned: Vec<_> =
            self.queues.iter().filter(|(_, q)| q.owner == Some(conn) && !q.orphaned).map(|(n, _)| n.clone()).collect();
        for q in owned {
            if self.profile.deferred_deletion {
                self.queues.get_mut(&q).expect("listed above").orphaned = true;
            } else {
                self.delete_queue(&q, out);
            }
        }
        self.connections.remove(&conn);
    }

    /// Whether the order in which the open channels of `conn` close can change what happens:
    /// one of them holds deliveries of a queue that another touches ([`Broker::touches`]).
    pub(crate) fn close_order_matters(&self, conn: ConnId) -> bool {
        let Some(c) = self.connections.get(&conn) else { return false };
        c.channels.len() > 1
            && c.channels.iter().any(|(n, holder)| {
                holder.unacked.values().any(|u| !u.queue_gone && self.touches(conn, Some(*n), &u.queue))
            })
    }

    /// Whether copies going back to `queue` now rather than later can change what happens to
    /// the channels of `conn` still open (`except` one): one of them consumes it (it may get
    /// them before it closes) or, under round robin, holds deliveries of it too (they go back,
    /// and out again to the queue's other consumers, in another order).
    fn touches(&self, conn: ConnId, except: Option<u16>, queue: &crate::types::Name) -> bool {
        let Some(c) = self.connections.get(&conn) else { return false };
        let round_robin = self.profile.dispatch == crate::profile::Dispatch::RoundRobin;
        c.channels.iter().filter(|(n, _)| Some(**n) != except).map(|(_, ch)| ch).any(|other| {
            other.consumers.values().any(|x| !x.queue_gone && x.queue == *queue)
                || round_robin && other.unacked.values().any(|v| !v.queue_gone && v.queue == *queue)
        })
    }

    /// The broker restarts. Every open connection is forced closed (320). What survives is what
    /// a restart may keep: durable exchanges (`exchange declare durable support`: transient ones
    /// go), durable queues (`queue declare durable persistence`), bindings between surviving
    /// entities (`queue bind durable-exchange`) and persistent messages in durable queues
    /// (`basic 01`), those that were delivered but not acknowledged coming back flagged
    /// redelivered. Under `restart_open` (the `spec` profile) the texts leave four choices, each
    /// made once for the whole broker and only where it changes something: the persistent
    /// messages of durable queues survive (the recommended answer) or are lost, as `basic 01`
    /// is a SHOULD; the transient ones are lost (errata 27: delivery mode decides) or survive
    /// (`basic 04` lets a server store them, and the XML never says they must go); transient
    /// queues are deleted or kept empty (the durable field doc: they are "purged"); a durable
    /// auto-delete queue that had consumers is kept (`queue declare durable persistence`) or
    /// deleted, as its last consumer went with the closed connections (the auto-delete field doc).
    pub(crate) fn restart(&mut self, out: &mut Vec<Event>) {
        // Messages published to a quorum queue and still on their way land first: the queue's
        // log has them (`crate::quorum`).
        let landing: Vec<crate::types::Name> = self
            .queues
            .iter()
            .filter(|(_, q)| q.quorum && q.arriving.iter().any(|a| a.from.is_empty()))
            .map(|(n, _)| n.clone())
            .collect();
        for n in landing {
            while self.queues.get(&n).is_some_and(|q| q.arriving.iter().any(|a| a.from.is_empty())) {
                self.arrive(&n, &crate::types::Name::default(), out);
            }
        }
        for conn in self.connections.keys() {
            out.push(Event::ConnectionClosed { conn: *conn, code: ReplyCode::ConnectionForced, method: None });
        }
        let open = self.profile.restart_open;
        let (mut keep_persistent, mut keep_transient) = (true, self.faults.has(Fault::RestartKeepsTransient));
        let held = |b: &Broker, persistent: bool| {
            let lasting = |q: &crate::state::Queue| q.durable && q.owner.is_none();
            b.queues.values().any(|q| {
                lasting(q)
                    && (q.ready.iter().any(|r| r.msg.persistent() == persistent)
                        || q.returning.iter().any(|u| u.msg.persistent() == persistent))
            }) || b.connections.values().flat_map(|c| c.channels.values()).flat_map(|ch| ch.unacked.values()).any(|u| {
                !u.queue_gone && u.msg.persistent() == persistent && b.queues.get(&u.queue).is_some_and(|q| lasting(q))
            })
        };
        if open && held(self, true) {
            keep_persistent = self.either("basic 01", 2) == 0;
        }
        if open && held(self, false) {
            keep_transient = self.either("basic 04", 2) == 1;
        }
        let keep_transient_queues = open
            && self.queues.values().any(|q| !q.durable && q.owner.is_none())
            && self.either("queue declare durable persistence", 2) == 1;
        let consumed: Vec<crate::types::Name> = self
            .queues
            .iter()
            .filter(|(_, q)| q.durable && q.auto_delete && q.owner.is_none() && q.consumer_count() > 0)
            .map(|(n, _)| n.clone())
            .collect();
        let drop_consumed = open && !consumed.is_empty() && self.either("queue declare durable persistence", 2) == 1;
        let keeps = |persistent: bool| if persistent { keep_persistent } else { keep_transient };
        // Unacked copies return to their (durable) queues.
        let flag_optional = self.profile.redelivered_flag_optional;
        // Where they go back is as open as for any requeue (`requeue_position`).
        let floating =
            (self.profile.requeue_position == crate::profile::RequeuePosition::Anywhere).then_some(self.next_msg);
        let mut returning: Vec<(crate::types::Name, Ready)> = Vec::new();
        // With those still on their way back from closed channels.
        let mut held: Vec<crate::state::Unacked> =
            self.queues.values_mut().flat_map(|q| std::mem::take(&mut q.returning)).collect();
        for conn in std::mem::take(&mut self.connections).values() {
            for ch in conn.channels.values() {
                held.extend(ch.unacked.values().filter(|u| !u.queue_gone).cloned());
            }
        }
        // A quorum queue takes its copies back as from any closed channel (`crate::quorum`).
        let (quorum_back, held): (Vec<_>, Vec<_>) =
            held.into_iter().partition(|u| self.queues.get(&u.queue).is_some_and(|q| q.quorum));
        for u in held {
            let expires = u.expires;
            let r = Ready {
                msg: u.msg,
                redelivered: true,
                flag_optional,
                avoid: None,
                floating,
                expires,
                delivery_count: 0,
                returned: false,
            };
            returning.push((u.queue, r));
        }
        self.queues.retain(|name, q| {
            q.owner.is_none() && (q.durable || keep_transient_queues) && !(drop_consumed && consumed.contains(name))
        });
        for (name, r) in returning {
            if let Some(q) = self.queues.get_mut(&name) {
                let at = q.ready.partition_point(|x| x.msg.id() < r.msg.id());
                q.ready.insert(at, r);
            }
        }
        for q in self.queues.values_mut() {
            q.consumers.clear();
            q.blocked.clear();
            // Dead-lettered copies still on their way are lost (RabbitMQ's dead-lettering is
            // at most once: nothing confirmed them to anyone).
            q.arriving.clear();
            // A quorum queue keeps every message, transient ones too: it writes all to its log.
            let (durable, quorum) = (q.durable, q.quorum);
            q.ready.retain(|r| durable && (quorum || keeps(r.msg.persistent())));
            for r in q.ready.iter_mut() {
                r.avoid = None;
            }
        }
        for u in quorum_back {
            let queue = u.queue.clone();
            self.quorum_put_back(&queue, u, true, true);
        }
        // Every copy that did not survive is settled.
        let surviving: std::collections::BTreeSet<crate::state::CopyId> = self
            .queues
            .iter()
            .flat_map(|(n, q)| q.ready.iter().map(move |r| crate::state::CopyId { msg: r.msg.id(), queue: n.clone() }))
            .collect();
        self.ledger.retain(|copy, _| surviving.contains(copy));
        // Whether a predeclared exchange keeps its bindings depends on its durability: settle it
        // if any has one (errata 20).
        let amq = Broker::is_predeclared_amq;
        if self.bindings.iter().any(|b| amq(&b.source) || matches!(&b.dest, crate::state::Dest::Exchange(x) if amq(x)))
        {
            self.settle_predeclared_durability();
        }
        // Transient exchanges are gone, with their bindings; a transient predeclared one (errata
        // 20) is made again at start (`exchange required-instances`), without them.
        let transient: std::collections::BTreeSet<crate::Name> =
            self.exchanges.iter().filter(|(_, x)| !x.durable).map(|(n, _)| n.clone()).collect();
        self.exchanges.retain(|n, x| x.durable || Broker::is_predeclared(n));
        // A predeclared exchange a client deleted (`predeclared_delete_open`) is made again.
        self.remake_predeclared();
        let (exchanges, queues) = (&self.exchanges, &self.queues);
        self.bindings.retain(|b| {
            !transient.contains(&b.source)
                && match &b.dest {
                    crate::state::Dest::Queue(q) => queues.contains_key(q),
                    crate::state::Dest::Exchange(x) => exchanges.contains_key(x) && !transient.contains(x),
                }
        });
    }
}
