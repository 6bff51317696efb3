//! The broker's state: one virtual host with its exchanges, queues, bindings and client
//! connections, plus the ledger of message copies that the properties check against.
//!
//! Everything is kept in ordered collections so that iteration, equality and hashing are
//! deterministic (a requirement of the model checker).

use crate::fault::Faults;
use crate::profile::Profile;
use crate::shared::Shared;
use crate::types::{ChanRef, ConnId, ExchangeKind, Message, MsgId, Name, Table};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The model of a broker (one virtual host).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broker {
    /// The behaviour profile (constant over a run).
    pub profile: Profile,
    /// Deliberately broken rules (empty for the real model).
    pub faults: Faults,
    /// Exchanges by name; the default exchange is the one named `""`. There is no limit on how
    /// many (`exchange declare minimum`). This and the other collections are [`Shared`] between
    /// states until a step changes them (for the model checker).
    pub exchanges: Shared<BTreeMap<Name, Exchange>>,
    /// Queues by name, as many as are declared (`queue declare minimum-queues`: no limit).
    pub queues: Shared<BTreeMap<Name, Shared<Queue>>>,
    /// Explicit bindings (the default exchange's implicit binding of every queue is not stored),
    /// with no limit per queue or exchange (`queue bind binding-count`).
    pub bindings: Shared<BTreeSet<Binding>>,
    /// Open connections.
    pub connections: Shared<BTreeMap<ConnId, Shared<Connection>>>,
    /// The next message identity.
    pub next_msg: u32,
    /// The counter behind server-generated queue names and consumer tags.
    pub next_name: u32,
    /// Ghost: every live copy of a message (routed to a queue, not yet settled).
    pub ledger: Shared<BTreeMap<CopyId, Live>>,
    /// Whether the predeclared `amq.` exchanges are durable, once a command has needed to know
    /// (`Profile::predeclared_durable`: errata 20); until then, under `spec`, either.
    pub predeclared_durable: Option<bool>,
    /// What a queue declared both durable and exclusive is, once a declare has asked for one
    /// (`Profile::durable_exclusive_open`: errata 30): an exclusive transient queue, a durable
    /// one as requested, or refused.
    #[serde(default)]
    pub durable_exclusive: Option<DurableExclusive>,
    /// The readings of header values of different types ([`crate::routing::headers::HeaderValues`],
    /// numbered by their bits) that agree with how the broker has routed so far
    /// (`Profile::header_values_open`; otherwise unused).
    #[serde(default = "crate::choice::Readings::all")]
    pub header_readings: crate::choice::Readings,
    /// The priority level schemes that agree with every message the broker has sent first so
    /// far ([`crate::basic::priority`]; under `rabbitmq` always all).
    #[serde(default = "crate::choice::Readings::all")]
    pub priority_schemes: crate::choice::Readings,
    /// The clock ([`crate::lifetime::clock`]): moved on by [`crate::Command::Pass`] and, for a
    /// real broker, by the runner ([`Broker::window`]).
    #[serde(default)]
    pub clock: crate::lifetime::clock::Clock,
    /// The choices of the command being applied (not state: equal in every broker).
    #[serde(skip)]
    pub(crate) choices: crate::choice::Choices,
}

/// Everything but what stays the same over a run (the profile, the faults) and the command's
/// choices: the checker hashes every state it reaches. The fields are named one by one, so a
/// field added to the broker does not compile until it is hashed or said to be left out here.
impl std::hash::Hash for Broker {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let Broker {
            profile: _,
            faults: _,
            exchanges,
            queues,
            bindings,
            connections,
            next_msg,
            next_name,
            ledger,
            predeclared_durable,
            durable_exclusive,
            header_readings,
            priority_schemes,
            clock,
            choices: _,
        } = self;
        exchanges.hash(h);
        queues.hash(h);
        bindings.hash(h);
        connections.hash(h);
        next_msg.hash(h);
        next_name.hash(h);
        ledger.hash(h);
        predeclared_durable.hash(h);
        durable_exclusive.hash(h);
        header_readings.hash(h);
        priority_schemes.hash(h);
        clock.hash(h);
    }
}

/// An exchange.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Exchange {
    /// Its type.
    pub kind: ExchangeKind,
    /// Survives a restart.
    pub durable: bool,
    /// Deleted when its last binding (as source) goes away.
    pub auto_delete: bool,
    /// Clients may not publish to it.
    pub internal: bool,
    /// Declare arguments (compared for equivalence).
    pub arguments: Table,
    /// An auto-delete exchange that lost its last binding as a source, under
    /// `Profile::deferred_deletion`: the broker deletes it in a step of its own
    /// ([`crate::Internal::Remove`]) unless a new binding from it comes first.
    #[serde(default)]
    pub unused: bool,
}

/// Where a binding leads.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Dest {
    /// A queue (`queue.bind`).
    Queue(Name),
    /// An exchange (`exchange.bind`, RabbitMQ's extension).
    Exchange(Name),
}

/// A binding from a source exchange to a queue or exchange.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Binding {
    /// The exchange messages come from.
    pub source: Name,
    /// Where matching messages go.
    pub dest: Dest,
    /// The binding key (a pattern for topic exchanges).
    pub key: Name,
    /// The binding arguments (matched by headers exchanges).
    pub arguments: Table,
}

/// A queue.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Queue {
    /// Survives a restart.
    pub durable: bool,
    /// The owning connection of an exclusive queue.
    pub owner: Option<ConnId>,
    /// Deleted when its last consumer goes away.
    pub auto_delete: bool,
    /// Declare arguments (compared for equivalence).
    pub arguments: Table,
    /// Ready messages, in delivery order: the order they arrived in, whatever their persistence
    /// (`basic 08`; the model has no priorities, so every message has the same one).
    pub ready: VecDeque<Ready>,
    /// Consumers in dispatch rotation, in turn order. A queue takes any number of consumers
    /// (`basic consume 01`: no limit).
    pub consumers: VecDeque<ConsumerRef>,
    /// Consumers that left the rotation for lack of prefetch capacity (round-robin dispatch).
    pub blocked: Vec<ConsumerRef>,
    /// Whether a `queue.unbind` removed the automatic binding to the default exchange under its
    /// own name (`queue declare default-binding`): the text does not say whether that binding
    /// can be removed, so under `spec` the unbind may take it away (`queue unbind exchange
    /// default-exchange`); a queue declared again after a deletion has it back.
    #[serde(default)]
    pub default_unbound: bool,
    /// An exclusive queue whose connection has closed, under `Profile::deferred_deletion`: the
    /// broker deletes it in a step of its own ([`crate::Internal::Remove`]); until then it is
    /// locked to every connection (405), a new one under its owner's id included.
    #[serde(default)]
    pub orphaned: bool,
    /// An auto-delete queue that lost its last consumer, under `Profile::deferred_deletion`: the
    /// broker deletes it in a step of its own ([`crate::Internal::Remove`]) unless a consumer
    /// comes first.
    #[serde(default)]
    pub unused: bool,
    /// When the queue was last used, for its expiry (`x-expires`, [`crate::lifetime::expires`]);
    /// kept only where the profile acts on it.
    #[serde(default)]
    pub used: Option<crate::lifetime::clock::Due>,
    /// Deliveries of a closed channel on their way back ([`crate::Internal::Return`]): the
    /// close is answered before the queue has taken them back (RabbitMQ: a `basic.get` right
    /// after a `channel.close-ok` found the queue empty in 1 run of 300, docs/rabbitmq-3.10.md
    /// Q50; the spec gives the requeue no moment). Owed once a `wait` is over.
    #[serde(default)]
    pub returning: Vec<Unacked>,
    /// Dead-lettered copies on their way to this queue ([`crate::Internal::Arrive`]), routed
    /// when their message died, in the order each source queue sent them; and, in a quorum queue,
    /// the messages published to it ([`crate::quorum`]). RabbitMQ's source
    /// queue hands them to the target queue's process, so they land a little after the step that
    /// killed them (a `basic.get` on the dead-letter queue on the same channel right after a
    /// `basic.reject` found it empty in about 2 runs of 3, docs/rabbitmq-3.10.md Q64), after or
    /// before what a client published to the target queue meanwhile. Owed once a `wait` is over.
    #[serde(default)]
    pub arriving: Vec<Arriving>,
    /// A quorum queue (`x-queue-type` `quorum` under `Profile::quorum_queues`, [`crate::quorum`]):
    /// requeued copies go to its back, copies back from a closed channel to its front, and each
    /// copy counts its deliveries.
    #[serde(default)]
    pub quorum: bool,
}

/// A dead-lettered copy on its way to a queue ([`Queue::arriving`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Arriving {
    /// The queue it died in: copies from one queue arrive in the order they died; `""` for a
    /// message published to a quorum queue ([`crate::quorum`]), which arrive in the order they
    /// were published.
    pub from: Name,
    /// The new message.
    pub msg: Message,
}

impl Queue {
    /// Every consumer of the queue, in rotation or blocked.
    pub fn all_consumers(&self) -> impl Iterator<Item = &ConsumerRef> {
        self.consumers.iter().chain(self.blocked.iter())
    }
    /// How many consumers the queue has.
    pub fn consumer_count(&self) -> usize {
        self.consumers.len() + self.blocked.len()
    }
    /// Whether connection `conn` may not use the queue: it is exclusive to another connection, or
    /// its own connection has closed and it waits for its deletion (`queue declare exclusive
    /// exclusive`).
    pub fn locked_for(&self, conn: ConnId) -> bool {
        self.orphaned || self.owner.is_some_and(|o| o != conn)
    }
}

/// A message copy waiting in a queue.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ready {
    /// The message.
    pub msg: Message,
    /// Whether it was delivered before (and so will be flagged `redelivered`).
    pub redelivered: bool,
    /// Whether the flag may also be left clear when it goes out again (`redelivered
    /// implementation` is a SHOULD: `Profile::redelivered_flag_optional`); never after
    /// `basic.recover`, whose rule 01 is a MUST.
    pub flag_optional: bool,
    /// A channel that rejected it with requeue and must not get it again (spec profile only).
    pub avoid: Option<ChanRef>,
    /// Requeued where the profile leaves its place open (`Profile::requeue_position`): it sits
    /// at its original place, but may be taken before any message ahead of it or after any
    /// message behind it that was there when it was requeued. The value is the
    /// [`Broker::next_msg`] of that moment: a message with a greater or equal id arrived later
    /// and must wait for it. `None`: it keeps its place.
    pub floating: Option<u32>,
    /// When it expires ([`crate::lifetime::ttl`]), if it has a time to live.
    #[serde(default)]
    pub expires: Option<crate::lifetime::clock::Due>,
    /// How often it came back to a quorum queue ([`crate::quorum`]: its `x-delivery-count`);
    /// always 0 in a classic queue.
    #[serde(default)]
    pub delivery_count: u32,
    /// Back in a quorum queue from a closed channel: such copies go out before the others, in
    /// the order they came back ([`crate::quorum`]).
    #[serde(default)]
    pub returned: bool,
}

/// A consumer, named by its channel and tag.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConsumerRef {
    /// The consumer's channel.
    pub ch: ChanRef,
    /// The consumer tag.
    pub tag: Name,
}

/// An open connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Connection {
    /// Open channels by number.
    pub channels: BTreeMap<u16, Shared<Channel>>,
    /// Connection-wide prefetch limit (spec profile, `basic.qos global=true`); 0 = none.
    pub prefetch: u16,
    /// The channels the broker closed (a channel exception) whose `close-ok` the client has not
    /// sent yet: only while the client sends methods without reading what came in between
    /// (pipelining, [`Broker::apply_all_pipelining`]); every other command finds it empty, for
    /// the client answers a close as soon as it reads one ([`crate::channel`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub closing: std::collections::BTreeSet<u16>,
}

/// An open channel.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Channel {
    /// The last queue declared on the channel (what `""` names in queue methods).
    pub last_queue: Option<Name>,
    /// The delivery tag the next delivery gets: each channel counts its own from 1, so no
    /// delivery is ever tagged 0 (`delivery-tag non-zero`).
    pub next_tag: u64,
    /// Deliveries awaiting acknowledgement, by delivery tag.
    pub unacked: BTreeMap<u64, Unacked>,
    /// The tags of deliveries made with no-ack, kept only under `no_ack_tag_open` (an ack of one
    /// may be accepted there); empty otherwise, so the state does not grow with them.
    #[serde(default)]
    pub no_ack_tags: std::collections::BTreeSet<u64>,
    /// Consumers on this channel, by tag.
    pub consumers: BTreeMap<Name, Consumer>,
    /// Per-consumer prefetch for consumers created next (RabbitMQ, `global=false`); 0 = none.
    pub consumer_prefetch: u16,
    /// Channel-wide prefetch limit; 0 = none.
    pub prefetch: u16,
    /// Plain, confirm or transactional.
    pub mode: Mode,
    /// Its reply consumer, if it subscribed to RabbitMQ's direct reply-to
    /// ([`crate::basic::direct_reply`]).
    #[serde(default)]
    pub reply: Option<ReplyConsumer>,
}

/// A channel's consumer of `amq.rabbitmq.reply-to` ([`crate::basic::direct_reply`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplyConsumer {
    /// Its consumer tag.
    pub tag: Name,
    /// The name replies to it are published to (`amq.rabbitmq.reply-to.<key>`).
    pub name: Name,
}

impl Channel {
    /// Whether `tag` names a delivery of this channel still awaiting its settlement (not one
    /// already settled in an open transaction).
    pub fn outstanding(&self, tag: u64) -> bool {
        self.unacked.get(&tag).is_some_and(|u| u.pending.is_none())
    }
}

impl Default for Channel {
    fn default() -> Self {
        Channel {
            last_queue: None,
            next_tag: 1,
            unacked: BTreeMap::new(),
            no_ack_tags: Default::default(),
            consumers: BTreeMap::new(),
            consumer_prefetch: 0,
            prefetch: 0,
            mode: Mode::Plain,
            reply: None,
        }
    }
}

/// A delivered, unacknowledged message copy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Unacked {
    /// The message.
    pub msg: Message,
    /// The queue it came from.
    pub queue: Name,
    /// That queue was deleted since: the copy has nowhere to return to.
    pub queue_gone: bool,
    /// The consumer it was delivered to; `None` for `basic.get`.
    pub consumer: Option<Name>,
    /// The `redelivered` flag it was delivered with.
    pub redelivered: bool,
    /// In a transaction: the settlement waiting for `tx.commit`.
    pub pending: Option<Settle>,
    /// When it expires once back in its queue ([`crate::lifetime::ttl`]: not while it is out).
    #[serde(default)]
    pub expires: Option<crate::lifetime::clock::Due>,
    /// The copy's delivery count in a quorum queue before this delivery ([`Ready::delivery_count`]).
    #[serde(default)]
    pub delivery_count: u32,
}

/// How an unacked delivery is settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Settle {
    /// `basic.ack`.
    Ack,
    /// `basic.nack`/`basic.reject` without requeue: the copy is dropped.
    Discard,
    /// `basic.nack`/`basic.reject` with requeue.
    Requeue,
}

/// A consumer's parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Consumer {
    /// The queue consumed from.
    pub queue: Name,
    /// Deliveries need no acknowledgement.
    pub no_ack: bool,
    /// Exclusive access to the queue.
    pub exclusive: bool,
    /// Its own prefetch limit (RabbitMQ consumer prefetch); 0 = none.
    pub prefetch: u16,
    /// Its queue was deleted without telling it, and its tag stays reserved on the channel until
    /// the client cancels it (`basic consume consumer-tag 01`, under `spec` a choice beside
    /// freeing the tag): it gets nothing, a consume reusing the tag is 530, a cancel frees it.
    #[serde(default)]
    pub queue_gone: bool,
    /// Its priority (RabbitMQ's `x-priority` consumer argument, [`crate::basic::consumer_priority`]):
    /// 0 unless given.
    #[serde(default)]
    pub priority: i64,
}

/// The publishing mode of a channel.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// Neither confirms nor transactions.
    Plain,
    /// Publisher confirms: the sequence number of the next publish.
    Confirm {
        /// Next publish sequence number.
        next_seq: u64,
    },
    /// Transactional: publishes held until commit.
    Tx {
        /// Publishes waiting for `tx.commit`.
        publishes: Vec<PendingPublish>,
        /// A publish (or nack) of the transaction that failed a check the broker defers to the
        /// commit (`Profile::tx_checks_at_commit`): the channel exception `tx.commit` raises.
        failed: Option<crate::types::ReplyCode>,
    },
}

/// A publish held by a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PendingPublish {
    /// Exchange named.
    pub exchange: Name,
    /// Routing key.
    pub routing_key: Name,
    /// Mandatory flag.
    pub mandatory: bool,
    /// The content.
    pub content: crate::types::Content,
}

/// A copy of a message in one queue.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CopyId {
    /// The message.
    pub msg: MsgId,
    /// The queue it was routed to.
    pub queue: Name,
}

/// A live copy in the ledger (ghost bookkeeping, checked by the properties): ready in its queue,
/// or delivered and not yet acknowledged. A copy leaves the ledger when it is settled
/// (acknowledged, delivered without acknowledgement, dropped, purged or lost with its queue).
/// Message identities are never reused, so a settled copy that turns up again is one the ledger
/// does not know; keeping settled copies out keeps the state small on long traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Live {
    /// Handed to a client at least once.
    pub delivered: bool,
}

impl Broker {
    /// A fresh broker: the default exchange (`exchange default-exchange`) and an `amq.` exchange
    /// of every type the profile implements (`exchange required-instances`,
    /// `Profile::recommended_types`), all durable (errata 20).
    pub fn new(profile: Profile) -> Self {
        Broker::with_faults(profile, Faults::NONE)
    }

    /// A fresh broker with deliberately broken rules (see [`crate::fault`]).
    pub fn with_faults(profile: Profile, faults: Faults) -> Self {
        let mut exchanges = BTreeMap::new();
        for (name, kind) in PREDECLARED.into_iter().filter(|(_, kind)| profile.recommended_types.implements(kind)) {
            exchanges.insert(
                Name::from(name),
                Exchange {
                    kind,
                    durable: true,
                    auto_delete: false,
                    internal: false,
                    arguments: Table::new(),
                    unused: false,
                },
            );
        }
        Broker {
            profile,
            faults,
            exchanges: Shared::new(exchanges),
            queues: Shared::default(),
            bindings: Shared::default(),
            connections: Shared::default(),
            next_msg: 0,
            next_name: 0,
            ledger: Shared::default(),
            predeclared_durable: None,
            durable_exclusive: None,
            header_readings: crate::choice::Readings::ALL,
            priority_schemes: crate::choice::Readings::ALL,
            clock: Default::default(),
            choices: Default::default(),
        }
    }

    /// Make again every predeclared exchange that is missing (one a client deleted, as
    /// `predeclared_delete_open` allows): a restart is when `exchange required-instances` asks
    /// the server to declare them, with the durability settled for them (errata 20).
    pub(crate) fn remake_predeclared(&mut self) {
        let durable = self.predeclared_durable.unwrap_or(true);
        for (name, kind) in PREDECLARED.into_iter().filter(|(_, kind)| self.profile.recommended_types.implements(kind))
        {
            if !self.exchanges.contains_key(name) {
                let x = Exchange {
                    kind,
                    durable,
                    auto_delete: false,
                    internal: false,
                    arguments: Table::new(),
                    unused: false,
                };
                self.exchanges.insert(Name::from(name), x);
            }
        }
    }

    /// The channel, if open.
    pub fn channel(&self, ch: ChanRef) -> Option<&Channel> {
        self.connections.get(&ch.conn)?.channels.get(&ch.channel).map(|c| &**c)
    }

    pub(crate) fn channel_mut(&mut self, ch: ChanRef) -> &mut Channel {
        self.connections
            .get_mut(&ch.conn)
            .and_then(|c| c.channels.get_mut(&ch.channel))
            .expect("channel checked open before use")
    }

    /// The consumer, if it exists.
    pub fn consumer(&self, c: &ConsumerRef) -> Option<&Consumer> {
        self.channel(c.ch)?.consumers.get(&c.tag)
    }

    /// A fresh server-generated name with this prefix (`amq.gen-`, `amq.ctag-`).
    pub(crate) fn generate_name(&mut self, prefix: &str) -> Name {
        let name = self.peek_generated_name(prefix);
        self.next_name += 1;
        name
    }

    /// The name the next server-generated name with this prefix is to be (a server checks a
    /// user's permission on a queue before it declares it).
    pub fn peek_generated_name(&self, prefix: &str) -> Name {
        Name::from(format!("{prefix}{}", self.next_name + 1))
    }

    /// Whether an exchange is one the broker predeclares (it cannot be deleted).
    pub fn is_predeclared(name: &Name) -> bool {
        PREDECLARED.iter().any(|(n, _)| *n == name.as_str())
    }

    /// Whether an exchange is one of the predeclared `amq.` ones (not the default exchange),
    /// whose durability errata 20 leaves open (`Profile::predeclared_durable`).
    pub fn is_predeclared_amq(name: &Name) -> bool {
        !name.is_empty() && Broker::is_predeclared(name)
    }
}

/// What a declare of a queue both durable and exclusive gets (errata 30: the text does not say).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DurableExclusive {
    /// An exclusive transient queue: durable is not compared (RabbitMQ).
    Transient,
    /// A durable exclusive queue, durable compared as for any queue.
    AsRequested,
    /// The combination is refused: 406.
    Refused,
}

/// The exchanges every virtual host starts with.
pub const PREDECLARED: [(&str, ExchangeKind); 6] = [
    ("", ExchangeKind::Direct),
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

impl Settle {
    /// The settlement a reject or nack asks for.
    pub fn rejecting(requeue: bool) -> Settle {
        if requeue {
            Settle::Requeue
        } else {
            Settle::Discard
        }
    }
}
