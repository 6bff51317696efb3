//! The `queue` class: declare, bind, unbind, purge, delete, and what deleting a queue entails.

use crate::broker::{Exception, Outcome};
use crate::command::Command;
use crate::event::{Event, Reply};
use crate::profile::{LastQueueError, Permit, RABBITMQ_QUEUE_ARGUMENTS};
use crate::state::{Binding, Broker, Dest, DurableExclusive, Queue};
use crate::types::{ChanRef, Name, ReplyCode, Table};

use Exception::{Channel, Connection};
use ReplyCode::{AccessRefused, NotFound, PreconditionFailed, ResourceLocked};

impl Broker {
    /// The queue a queue method names: `""` is the last queue declared on the channel
    /// (`queue bind queue queue-known`, `queue unbind queue queue-known`,
    /// `queue purge queue queue-known`, `queue delete queue queue-known`); with none, the
    /// profile's error: 502 on the connection (spec, errata 18) or 404 on the channel (RabbitMQ).
    pub(crate) fn resolve_queue(&mut self, ch: ChanRef, queue: &Name) -> Result<Name, Exception> {
        if !queue.is_empty() {
            return Ok(queue.clone());
        }
        match self.channel(ch).and_then(|c| c.last_queue.clone()) {
            Some(q) => Ok(q),
            None => Err(match self.profile.unknown_last_queue {
                LastQueueError::ConnectionSyntaxError => Connection(ReplyCode::SyntaxError),
                LastQueueError::ChannelNotFound => Channel(NotFound),
                LastQueueError::Either => match self.either("errata 18", 2) {
                    0 => Connection(ReplyCode::SyntaxError),
                    _ => Channel(NotFound),
                },
            }),
        }
    }

    /// The queue, checked to exist (404) and not to be exclusive to another connection
    /// (`queue declare exclusive exclusive`, errata 7 and 8: 405, checked first).
    pub(crate) fn usable_queue(&self, ch: ChanRef, name: &Name) -> Result<&Queue, Exception> {
        let q = self.queues.get(name).ok_or(Channel(NotFound))?;
        if q.locked_for(ch.conn) && !self.faults.has(crate::fault::Fault::ExclusiveIgnored) {
            return Err(Channel(ResourceLocked));
        }
        Ok(q)
    }

    /// The queue a command on a queue names (`""`: the channel's last declared queue).
    pub(crate) fn named_queue(&self, cmd: &Command) -> Option<Name> {
        let (ch, q) = match cmd {
            Command::QueueDeclare { ch, queue, .. }
            | Command::QueueBind { ch, queue, .. }
            | Command::QueueUnbind { ch, queue, .. }
            | Command::QueuePurge { ch, queue }
            | Command::QueueDelete { ch, queue, .. }
            | Command::BasicConsume { ch, queue, .. }
            | Command::BasicGet { ch, queue, .. } => (ch, queue),
            _ => return None,
        };
        match q.is_empty() {
            true => self.channel(*ch)?.last_queue.clone(),
            false => Some(q.clone()),
        }
    }

    /// A channel method, with the order of the exclusive lock's check against the others: under
    /// `Profile::exclusive_lock_first` Either (errata 8: the text orders no checks), a command on
    /// a queue locked to another connection that another rule refuses as well gets the lock's 405
    /// or that rule's failure, found by applying the command to a copy of the broker in which the
    /// queue is not locked (its choices are the command's own). Otherwise the handlers' own order
    /// holds: the lock first, but for `queue.bind`'s exchange (RabbitMQ's order).
    pub(crate) fn lock_or_other_failure(&mut self, ch: ChanRef, cmd: &Command, out: &mut Vec<Event>) -> Outcome {
        let locked = match self.profile.exclusive_lock_first {
            crate::profile::Permit::Allowed => None,
            _ => self.named_queue(cmd).filter(|q| self.queues.get(q).is_some_and(|x| x.locked_for(ch.conn))),
        };
        if let Some(q) = locked {
            let mut unlocked = self.clone();
            let x = unlocked.queues.get_mut(&q).expect("checked above");
            (x.owner, x.orphaned) = (Some(ch.conn), false);
            let other = unlocked.channel_method(ch, cmd, &mut Vec::new());
            self.choices = unlocked.choices;
            match other {
                Err(e) if e != Channel(ResourceLocked) => {
                    let lock_first = self.permits(self.profile.exclusive_lock_first, "errata 8");
                    return Err(if lock_first { Channel(ResourceLocked) } else { e });
                }
                _ => {}
            }
        }
        self.channel_method(ch, cmd, out)
    }

    /// The broker's reading of durable with exclusive (errata 30), settled the first time it is
    /// needed: under `durable_exclusive_open` a choice, otherwise RabbitMQ's transient queue.
    fn durable_exclusive_reading(&mut self) -> DurableExclusive {
        if !self.profile.durable_exclusive_open {
            return DurableExclusive::Transient;
        }
        if let Some(r) = self.durable_exclusive {
            return r;
        }
        let readings = [DurableExclusive::Transient, DurableExclusive::AsRequested, DurableExclusive::Refused];
        let r = readings[usize::from(self.either("errata 30", 3))];
        self.durable_exclusive = Some(r);
        r
    }

    /// `queue.declare`.
    ///
    /// - `""` asks for a server-generated name (`queue declare queue default-name`); a passive
    ///   declare of `""` names no queue (404);
    /// - queues may be durable or transient (`queue declare durable types`), exclusive to this
    ///   connection or shared (`queue declare exclusive types`);
    /// - a durable exclusive queue is made transient (errata 30), or under
    ///   `durable_exclusive_open` as the broker's reading, settled once, says (transient, durable
    ///   as requested, or refused with 406);
    /// - an existing queue exclusive to another connection: 405, before anything else;
    /// - `passive` asserts existence (`queue declare passive passive`): 404;
    /// - redeclaring must be equivalent in durable, exclusive, auto-delete and arguments
    ///   (`queue declare passive equivalent`): a channel exception, 406 or (under the spec
    ///   profile's `equivalence_code`, the rule naming no code) 405; without
    ///   `exclusive_in_equivalence` (RabbitMQ) an `exclusive` flag that differs from the
    ///   queue's is a lock conflict, 405, in both directions (the owner too), and a passive
    ///   declare ignores it;
    /// - a redeclare never changes an existing queue's auto-delete flag
    ///   (`queue declare auto-delete pre-existence`): a passive one ignores it; otherwise a
    ///   flag that alone differs is refused by the equivalence check, which compares it, or
    ///   (`auto_delete_redeclare`, either under the spec profile) ignored, declare-ok;
    /// - new names beginning `amq.` are reserved (`queue declare queue reserved`): 403;
    /// - under `name_syntax_checked` (the spec profile) a name outside the syntax is refused,
    ///   406 (`queue declare queue syntax`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn queue_declare(
        &mut self,
        ch: ChanRef,
        queue: &Name,
        passive: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: &Table,
        out: &mut Vec<Event>,
    ) -> Outcome {
        // RabbitMQ's direct reply-to pseudo-queue answers as a queue with one consumer.
        if let Some(ok) = self.declare_reply_queue(ch, queue, passive) {
            out.push(ok);
            return Ok(());
        }
        let last_queue = match self.profile.passive_empty_last_queue {
            _ if !passive || !queue.is_empty() => false,
            Permit::Either => self.either("queue declare passive passive", 2) == 1,
            permit => permit == Permit::Allowed,
        };
        let name = if last_queue { self.resolve_queue(ch, queue)? } else { queue.clone() };
        if self.profile.name_syntax_checked && self.profile.any_fitting_code && !name.follows_syntax() {
            // No queue can have the name, so a passive declare may also fail as the passive rule
            // says; a new reserved name may also fail as the reserved rule says.
            if passive && self.either("queue declare passive passive", 2) == 1 {
                return Err(Channel(NotFound));
            }
            if !passive && name.is_reserved() && self.either("queue declare queue reserved", 2) == 1 {
                return Err(Channel(AccessRefused));
            }
        }
        if let Some(refused) = self.bad_name(&name, "queue declare queue syntax") {
            return Err(refused);
        }
        // A reserved name (`queue declare queue reserved`): always under RabbitMQ, for a new queue
        // otherwise; then, once the name is good, what durable with exclusive means (errata 30).
        if !passive
            && name.is_reserved()
            && (self.profile.reserved_prefix_always_refused || !self.queues.contains_key(&name))
        {
            return Err(Channel(AccessRefused));
        }
        let durable = match durable && exclusive && !passive {
            false => durable && !exclusive,
            true => match self.durable_exclusive_reading() {
                DurableExclusive::Transient => false,
                DurableExclusive::AsRequested => true,
                DurableExclusive::Refused => return Err(Channel(PreconditionFailed)),
            },
        };
        if !passive && self.profile.lifetime {
            crate::lifetime::check_queue_arguments(arguments)?;
        }
        if !passive {
            self.check_single_active_argument(arguments)?;
        }
        let (message_count, consumer_count, name) = match self.queues.get(&name) {
            Some(q) => {
                if q.locked_for(ch.conn) {
                    return Err(Channel(ResourceLocked));
                }
                let same_exclusive = q.owner.is_some() == exclusive;
                if !passive && !same_exclusive && !self.profile.exclusive_in_equivalence {
                    return Err(Channel(ResourceLocked));
                }
                let equal = q.arguments == *arguments;
                let known_equal =
                    RABBITMQ_QUEUE_ARGUMENTS.iter().all(|k| compared(&q.arguments, k) == compared(arguments, k));
                let flags_equivalent =
                    q.durable == durable && (same_exclusive || !self.profile.exclusive_in_equivalence);
                let counts = (q.ready.len() as u32, self.reported_consumers(&name, q), name);
                let auto_delete_differs = q.auto_delete != auto_delete;
                let equivalent = flags_equivalent
                    && (passive || self.arguments_equivalent(equal, known_equal, "queue declare passive equivalent"));
                if !passive && !equivalent {
                    return Err(self.not_equivalent("queue declare passive equivalent"));
                }
                if !passive
                    && auto_delete_differs
                    && !self.permits(self.profile.auto_delete_redeclare, "queue declare auto-delete pre-existence")
                {
                    return Err(self.not_equivalent("queue declare passive equivalent"));
                }
                counts
            }
            None if passive => return Err(Channel(NotFound)),
            None => {
                self.out_of_room(|b| b.queues.len(), 256, "queue declare minimum-queues")?;
                let quorum = self.check_queue_type(&name, durable, exclusive, auto_delete, arguments)?;
                let name = if name.is_empty() { self.generate_name("amq.gen-") } else { name };
                let q = Queue {
                    quorum,
                    durable,
                    owner: exclusive.then_some(ch.conn),
                    auto_delete,
                    arguments: arguments.clone(),
                    ready: Default::default(),
                    consumers: Default::default(),
                    blocked: Vec::new(),
                    default_unbound: false,
                    orphaned: false,
                    unused: false,
                    used: None,
                    returning: Vec::new(),
                    arriving: Vec::new(),
                };
                self.queues.insert(name.clone(), q.into());
                (0, 0, name)
            }
        };
        self.channel_mut(ch).last_queue = Some(name.clone());
        self.renew(&name);
        out.push(Event::Reply { ch, reply: Reply::QueueDeclareOk { queue: name, message_count, consumer_count } });
        Ok(())
    }

    /// The binding a queue.bind/unbind names, after resolving `""`: with both queue and routing
    /// key empty, the routing key of a bind is the last queue's name too (spec field doc of
    /// `queue.bind routing-key`), and of an unbind as `unbind_key_shortcut` permits. An empty
    /// exchange name is the default exchange in a bind under
    /// `default_exchange_bindable` (the spec profile: `queue bind exchange default-exchange`)
    /// and in an unbind as `default_exchange_other_bindings` permits (the spec profile: either,
    /// `queue unbind exchange default-exchange` against `exchange default-access`), refused with
    /// 403 otherwise (RabbitMQ, errata 14).
    fn queue_binding(
        &mut self,
        ch: ChanRef,
        queue: &Name,
        exchange: &Name,
        routing_key: &Name,
        arguments: &Table,
        unbind: bool,
    ) -> Result<Binding, Exception> {
        let q = self.resolve_queue(ch, queue)?;
        let shortcut = queue.is_empty()
            && routing_key.is_empty()
            && (!unbind || self.permits(self.profile.unbind_key_shortcut, "queue unbind queue queue-known"));
        let key = if shortcut { q.clone() } else { routing_key.clone() };
        if exchange.is_empty()
            && !match unbind {
                false => self.profile.default_exchange_bindable,
                true => self.permits(self.profile.default_exchange_other_bindings, "exchange default-access"),
            }
        {
            return Err(Channel(AccessRefused));
        }
        Ok(Binding { source: exchange.clone(), dest: Dest::Queue(q), key, arguments: arguments.clone() })
    }

    /// `queue.bind`: the queue and exchange must exist (`queue bind queue must-exist`,
    /// `queue bind exchange exchange-existence`): 404; duplicates are ignored
    /// (`queue bind duplicates`). Durability is not compared, so a durable queue may be bound to
    /// a transient exchange (`queue bind transient-exchange`).
    pub(crate) fn queue_bind(
        &mut self,
        ch: ChanRef,
        queue: &Name,
        exchange: &Name,
        routing_key: &Name,
        arguments: &Table,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let b = self.queue_binding(ch, queue, exchange, routing_key, arguments, false)?;
        let Dest::Queue(q) = &b.dest else { unreachable!() };
        // RabbitMQ looks the exchange up before the queue's lock (probed: 404, not 405); under
        // `spec` the order is a choice (Broker::lock_or_other_failure).
        if !self.exchanges.contains_key(exchange) {
            self.queues.get(q).ok_or(Channel(NotFound))?;
            return Err(Channel(NotFound));
        }
        self.usable_queue(ch, q)?;
        self.check_x_match(exchange, arguments)?;
        if !self.bindings.contains(&b) {
            self.out_of_room(
                |x| x.bindings.iter().filter(|y| y.dest == b.dest).count(),
                4,
                "queue bind binding-count",
            )?;
        }
        self.add_binding(b);
        out.push(Event::Reply { ch, reply: Reply::QueueBindOk });
        Ok(())
    }

    /// `queue.unbind`: a missing queue or exchange is 404 under the spec profile
    /// (`queue unbind queue must-exist`, `queue unbind exchange must-exist`), closing the channel
    /// or (`queue unbind 01`, as `unbind_failure_on_channel` permits) the connection, and
    /// unbind-ok under `unbind_missing_ok` (RabbitMQ); removing an auto-delete exchange's last binding deletes it.
    pub(crate) fn queue_unbind(
        &mut self,
        ch: ChanRef,
        queue: &Name,
        exchange: &Name,
        routing_key: &Name,
        arguments: &Table,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let b = self.queue_binding(ch, queue, exchange, routing_key, arguments, true)?;
        let Dest::Queue(q) = &b.dest else { unreachable!() };
        if self.profile.unbind_missing_ok && !self.bindings.contains(&b) {
            out.push(Event::Reply { ch, reply: Reply::QueueUnbindOk });
            return Ok(());
        }
        let exists = match self.usable_queue(ch, q) {
            Ok(_) => self.exchanges.contains_key(exchange),
            Err(Channel(NotFound)) => false,
            Err(e) => return Err(e),
        };
        if !exists && !self.profile.unbind_missing_ok {
            return Err(self.unbind_not_found("queue unbind 01"));
        }
        if self.bindings.remove(&b) {
            self.auto_delete_exchange(exchange, out);
        }
        // The automatic binding to the default exchange under the queue's own name: whether an
        // unbind can remove it the text does not say (`queue unbind exchange default-exchange`
        // against `queue declare default-binding`): under `spec` it stays (first) or goes.
        if exchange.is_empty()
            && b.key == *q
            && self.profile.default_exchange_other_bindings == crate::profile::Permit::Either
            && self.queues.get(q).is_some_and(|x| !x.default_unbound)
            && self.either("queue unbind exchange default-exchange", 2) == 1
        {
            self.queues.get_mut(q).expect("checked").default_unbound = true;
        }
        out.push(Event::Reply { ch, reply: Reply::QueueUnbindOk });
        Ok(())
    }

    /// `queue.purge`: drops the ready messages; delivered, unacknowledged ones stay
    /// (`queue purge 02`). A missing queue is 404 (`queue purge queue must-exist`).
    pub(crate) fn queue_purge(&mut self, ch: ChanRef, queue: &Name, out: &mut Vec<Event>) -> Outcome {
        let name = self.resolve_queue(ch, queue)?;
        self.usable_queue(ch, &name)?;
        let ready = std::mem::take(&mut self.queues.get_mut(&name).expect("checked").ready);
        for r in &ready {
            self.settle_copy(r.msg.id(), &name);
        }
        out.push(Event::Reply { ch, reply: Reply::QueuePurgeOk { message_count: ready.len() as u32 } });
        Ok(())
    }

    /// `queue.delete`: `if-unused` refuses a queue with consumers (`queue delete if-unused
    /// in-use`), `if-empty` one with ready messages (`queue delete if-empty not-empty`): 406, and
    /// one whose only messages are delivered and unacknowledged as `if_empty_counts_unacked`
    /// permits (either under the spec profile); a missing queue is 404 (`queue delete queue
    /// must-exist`) unless the profile answers delete-ok.
    pub(crate) fn queue_delete(
        &mut self,
        ch: ChanRef,
        queue: &Name,
        if_unused: bool,
        if_empty: bool,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let name = self.resolve_queue(ch, queue)?;
        let message_count = match self.usable_queue(ch, &name) {
            Ok(q) => {
                Broker::check_quorum_delete(q, if_unused, if_empty)?;
                if if_unused && q.consumer_count() > 0 || if_empty && !q.ready.is_empty() {
                    return Err(Channel(PreconditionFailed));
                }
                let unacked = self
                    .connections
                    .values()
                    .flat_map(|c| c.channels.values())
                    .any(|c| c.unacked.values().any(|u| u.queue == name && !u.queue_gone));
                if if_empty
                    && unacked
                    && self.permits(self.profile.if_empty_counts_unacked, "queue delete if-empty not-empty")
                {
                    return Err(Channel(PreconditionFailed));
                }
                let q = &self.queues[&name];
                let n = q.ready.len() as u32;
                // The answer first, then what the deletion does: a consumer on this very channel
                // hears of it after the delete-ok, as on RabbitMQ 3.10.8, whose channel sends the
                // reply before it takes the queue's end (the cancel) from its mailbox. The spec
                // says nothing of a server's cancel, so nothing of its order either: where the
                // cancel is a choice, the other order is one too.
                let at = out.len();
                out.push(Event::Reply { ch, reply: Reply::QueueDeleteOk { message_count: n } });
                self.delete_queue(&name, out);
                let own = |e: &Event| matches!(e, Event::Cancel { ch: c, .. } if *c == ch);
                if self.profile.cancel_notify == crate::profile::Permit::Either
                    && out[at..].iter().any(own)
                    && self.either("basic cancel", 2) == 1
                {
                    let reply = out.remove(at);
                    let last = at + out[at..].iter().rposition(own).expect("a cancel on this channel");
                    out.insert(last + 1, reply);
                }
                return Ok(());
            }
            Err(Channel(NotFound)) if self.profile.delete_missing_ok => 0,
            Err(e) => return Err(e),
        };
        out.push(Event::Reply { ch, reply: Reply::QueueDeleteOk { message_count } });
        Ok(())
    }

    /// Delete a queue: its ready messages are dropped, its consumers cancelled (with a
    /// `basic.cancel` to each as `cancel_notify` permits: always under RabbitMQ, either under the
    /// spec profile, one choice for all of them), its unacked deliveries left to be settled without
    /// a queue to return to, its bindings removed (auto-deleting exchanges they leave unused).
    pub(crate) fn delete_queue(&mut self, name: &Name, out: &mut Vec<Event>) {
        let Some(q) = self.queues.remove(name) else { return };
        for r in &q.ready {
            self.settle_copy(r.msg.id(), name);
        }
        for u in &q.returning {
            self.settle_copy(u.msg.id(), name);
        }
        let listening = q.all_consumers().any(|c| self.channel(c.ch).is_some());
        let told = listening && self.permits(self.profile.cancel_notify, "basic cancel");
        // Not told, a consumer's tag is freed or (under `spec`, a choice for all of them) stays
        // reserved on its channel until the client cancels it (`basic consume consumer-tag 01`).
        let reserved = listening
            && !told
            && self.profile.cancel_notify == crate::profile::Permit::Either
            && self.either("basic consume consumer-tag 01", 2) == 1;
        for c in q.consumers.iter().chain(q.blocked.iter()) {
            if let Some(chan) = self.connections.get_mut(&c.ch.conn).and_then(|x| x.channels.get_mut(&c.ch.channel)) {
                match chan.consumers.get_mut(&c.tag) {
                    Some(consumer) if reserved => consumer.queue_gone = true,
                    _ => {
                        chan.consumers.remove(&c.tag);
                    }
                }
                if told {
                    out.push(Event::Cancel { ch: c.ch, consumer_tag: c.tag.clone() });
                }
            }
        }
        // Only the channels holding one of its deliveries: the others stay shared.
        let holds = |chan: &crate::state::Channel| chan.unacked.values().any(|u| u.queue == *name);
        if self.connections.values().any(|c| c.channels.values().any(|chan| holds(chan))) {
            for conn in self.connections.values_mut().filter(|c| c.channels.values().any(|chan| holds(chan))) {
                for chan in conn.channels.values_mut().filter(|chan| holds(chan)) {
                    for u in chan.unacked.values_mut().filter(|u| u.queue == *name) {
                        u.queue_gone = true;
                    }
                }
            }
        }
        let dest = Dest::Queue(name.clone());
        let mut sources = Vec::new();
        self.bindings.retain(|b| {
            if b.dest == dest {
                sources.push(b.source.clone());
                false
            } else {
                true
            }
        });
        for s in sources {
            self.auto_delete_exchange(&s, out);
        }
        self.unblock();
    }

    /// A copy is settled: it leaves the ledger.
    pub(crate) fn settle_copy(&mut self, msg: crate::types::MsgId, queue: &Name) {
        self.ledger.remove(&crate::state::CopyId { msg, queue: queue.clone() });
    }
}

/// A queue argument as RabbitMQ compares it when the queue is declared again: an `x-queue-type`
/// left out is `classic`, the default, so a classic queue declared again with `x-queue-type`
/// `classic` is equivalent, and a quorum queue declared again without it is not (probed,
/// docs/rabbitmq-3.10.md Q65).
fn compared<'a>(arguments: &'a Table, key: &str) -> Option<std::borrow::Cow<'a, crate::types::Value>> {
    match arguments.get(key) {
        None if key == "x-queue-type" => Some(std::borrow::Cow::Owned(crate::types::Value::Str(Name::from("classic")))),
        v => v.map(std::borrow::Cow::Borrowed),
    }
}
