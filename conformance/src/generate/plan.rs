//! Plans: what a generated trace does, as a list of abstract actions over a small name universe,
//! and the proptest strategy and value tree that produce and shrink them.
//!
//! An action names things by small indices (the second queue, the first exchange, the first
//! channel of the second connection, "some outstanding delivery tag") rather than by the names
//! and tags a trace writes. [`super::compile`] turns a plan into a trace, deciding from a model
//! broker which opens and declares each action needs and which tags exist, and leaving out an
//! action that has nothing to act on. Removing actions from a plan therefore always leaves a plan
//! that compiles to a well-formed trace, which is what makes shrinking safe.

use super::GenConfig;
use amqp_model::ExchangeKind;
use proptest::prelude::*;
use proptest::strategy::{NewTree, ValueTree};
use proptest::test_runner::TestRunner;
use std::fmt;

/// A channel of the universe, by 0-based indices: compiled to `c{conn+1}.{chan+1}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    /// The connection (0 is `c1`).
    pub conn: u8,
    /// The channel on that connection (0 is channel 1).
    pub chan: u8,
}

/// Which delivery tag a settlement names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TagPick {
    /// The n-th (modulo their number) of the tags outstanding on the channel, in tag order.
    Outstanding(u8),
    /// Tag 0 (with `multiple`: everything outstanding; without: no delivery at all).
    Zero,
    /// A tag the channel has not used yet: the broker must refuse it with 406.
    Unknown,
}

/// One abstract step of a plan.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Declare a queue (also done implicitly by any action that needs the queue).
    Declare {
        /// Where.
        slot: Slot,
        /// Which queue (index into `q1`, `q2`, ...).
        queue: u8,
    },
    /// Bind a queue to an exchange with one of the binding keys (or header arguments) of the
    /// exchange's type.
    Bind {
        /// Where.
        slot: Slot,
        /// Which queue.
        queue: u8,
        /// Which exchange (index into `x1`, `x2`, ...).
        exchange: u8,
        /// Which key of the type's pool (modulo its length).
        key: u8,
    },
    /// Bind the second exchange to the first (exchange-to-exchange, RabbitMQ's extension).
    ExchangeBind {
        /// Where.
        slot: Slot,
        /// Which key of the source exchange type's pool.
        key: u8,
    },
    /// Publish a message (with a fresh body `mN`).
    Publish {
        /// Where.
        slot: Slot,
        /// Which exchange; `None` is the default exchange, keyed by a queue name.
        exchange: Option<u8>,
        /// How the routing key and headers are chosen.
        route: Route,
        /// `mandatory`.
        mandatory: bool,
    },
    /// Start a consumer (with a fresh tag `tN`), after a `basic.qos` when `prefetch` is set
    /// and the channel has had no consumer yet.
    Consume {
        /// Where.
        slot: Slot,
        /// Which queue.
        queue: u8,
        /// `no-ack`.
        no_ack: bool,
        /// A prefetch count to set first.
        prefetch: Option<u16>,
    },
    /// `basic.qos` (not global), only on a channel that has had no consumer yet.
    Qos {
        /// Where.
        slot: Slot,
        /// The prefetch count.
        prefetch: u16,
    },
    /// `basic.get`.
    Get {
        /// Where.
        slot: Slot,
        /// Which queue.
        queue: u8,
        /// `no-ack`.
        no_ack: bool,
    },
    /// `basic.ack`.
    Ack {
        /// On which of the channels that hold unacknowledged deliveries (modulo their number).
        holder: u8,
        /// Which tag.
        tag: TagPick,
        /// `multiple`.
        multiple: bool,
    },
    /// `basic.nack`.
    Nack {
        /// On which of the channels that hold unacknowledged deliveries.
        holder: u8,
        /// Which tag.
        tag: TagPick,
        /// `multiple`.
        multiple: bool,
        /// `requeue`.
        requeue: bool,
    },
    /// `basic.reject`.
    Reject {
        /// On which of the channels that hold unacknowledged deliveries.
        holder: u8,
        /// Which tag.
        tag: TagPick,
        /// `requeue`.
        requeue: bool,
    },
    /// `basic.cancel` of one of the consumers (on its channel).
    Cancel {
        /// Which consumer (modulo their number, in channel and tag order).
        consumer: u8,
    },
    /// `channel.close` (the channel is opened again by the next action that uses it).
    CloseChannel {
        /// Which channel.
        slot: Slot,
    },
    /// `connection.close` (opened again by the next action that uses it).
    CloseConnection {
        /// Which connection (0 is `c1`).
        conn: u8,
    },
    /// `queue.purge` of a declared queue.
    Purge {
        /// Where.
        slot: Slot,
        /// Which queue.
        queue: u8,
    },
    /// A passive `queue.declare` of a declared queue: its ready-message and consumer counts.
    Count {
        /// Where.
        slot: Slot,
        /// Which queue.
        queue: u8,
    },
    /// `queue.unbind` of one of the queue bindings that exist.
    Unbind {
        /// Where.
        slot: Slot,
        /// Which binding (modulo their number).
        binding: u8,
    },
    /// `queue.delete` of a declared queue without consumers.
    DeleteQueue {
        /// Where.
        slot: Slot,
        /// Which queue.
        queue: u8,
    },
    /// Time passes (`pass 50`, or `pass 400` when `long`): only with
    /// [`GenConfig::lifetime`](super::GenConfig::lifetime).
    Pass {
        /// 400 ms rather than 50.
        long: bool,
    },
}

/// What `generate --without` can leave out: the kinds of action below (`requeue` stands for
/// the nacks and rejects that requeue), an exchange type (its exchanges become of the first type
/// left, in the order direct, fanout, topic, headers), or `exchange-declare` (the traces use the
/// broker's `amq.direct`, `amq.fanout`, `amq.topic` and `amq.headers` and declare no exchange,
/// so the cleanup deletes none: for a broker whose exchange.delete does not work). Traces run
/// against `amq.*` exchanges share them: run those one at a time (`--jobs 1`).
pub const WITHOUT_KINDS: &[&str] = &[
    "direct",
    "fanout",
    "topic",
    "headers",
    "exchange-declare",
    "declare",
    "bind",
    "exchange-bind",
    "publish",
    "consume",
    "qos",
    "get",
    "ack",
    "nack",
    "reject",
    "requeue",
    "cancel",
    "close-channel",
    "close-connection",
    "purge",
    "count",
    "unbind",
    "delete-queue",
    "pass",
];

impl Action {
    /// Whether the action is of one of the kinds named in `kinds` (see [`WITHOUT_KINDS`]).
    pub fn is_any_of(&self, kinds: &[String]) -> bool {
        let kind = match self {
            Action::Declare { .. } => "declare",
            Action::Bind { .. } => "bind",
            Action::ExchangeBind { .. } => "exchange-bind",
            Action::Publish { .. } => "publish",
            Action::Consume { .. } => "consume",
            Action::Qos { .. } => "qos",
            Action::Get { .. } => "get",
            Action::Ack { .. } => "ack",
            Action::Nack { .. } => "nack",
            Action::Reject { .. } => "reject",
            Action::Cancel { .. } => "cancel",
            Action::CloseChannel { .. } => "close-channel",
            Action::CloseConnection { .. } => "close-connection",
            Action::Purge { .. } => "purge",
            Action::Count { .. } => "count",
            Action::Unbind { .. } => "unbind",
            Action::DeleteQueue { .. } => "delete-queue",
            Action::Pass { .. } => "pass",
        };
        let requeues = matches!(self, Action::Nack { requeue: true, .. } | Action::Reject { requeue: true, .. });
        kinds.iter().any(|k| k == kind || (requeues && k == "requeue"))
    }
}

/// How a publish chooses its routing key and headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Route {
    /// A key from the pool of publish keys (for the default exchange: a queue name, or one
    /// more that is never declared) and headers from the pool of header tables.
    Pool {
        /// Which key (modulo the pool's length).
        key: u8,
        /// Which headers.
        headers: u8,
    },
    /// A key (and headers) made to match one of the exchange's bindings: a topic pattern with
    /// its `*` and `#` filled in, a direct key as it is, a headers binding's values.
    Hit {
        /// Which binding of the exchange (modulo their number).
        binding: u8,
        /// How to fill in wildcards (and which header of an `any` binding to send).
        variant: u8,
    },
}

/// A generated scenario before compilation: the type of each exchange and the actions, the
/// topology actions first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The type of `x1`, `x2`, ...
    pub kinds: Vec<ExchangeKind>,
    /// The actions, in order.
    pub actions: Vec<Action>,
}

fn slot(config: &GenConfig) -> impl Strategy<Value = Slot> {
    (0..config.connections.max(1), 0..config.channels.max(1)).prop_map(|(conn, chan)| Slot { conn, chan })
}

fn kind() -> impl Strategy<Value = ExchangeKind> {
    prop_oneof![
        Just(ExchangeKind::Direct),
        Just(ExchangeKind::Topic),
        Just(ExchangeKind::Fanout),
        Just(ExchangeKind::Headers),
    ]
}

fn tag() -> impl Strategy<Value = TagPick> {
    prop_oneof![
        24 => (0u8..8).prop_map(TagPick::Outstanding),
        1 => Just(TagPick::Zero),
        1 => Just(TagPick::Unknown),
    ]
}

/// A queue index, the first two more often than the others so that traffic meets.
fn queue(config: &GenConfig) -> BoxedStrategy<u8> {
    let queues = config.queues.max(1);
    prop_oneof![2 => 0..queues.min(2), 1 => 0..queues].boxed()
}

/// The actions of the topology phase.
fn topology_action(config: &GenConfig) -> BoxedStrategy<Action> {
    let (queues, exchanges) = (queue(config), config.exchanges.max(1));
    let bind = (slot(config), queues.clone(), 0..exchanges, any::<u8>())
        .prop_map(|(slot, queue, exchange, key)| Action::Bind { slot, queue, exchange, key });
    let declare = (slot(config), queues).prop_map(|(slot, queue)| Action::Declare { slot, queue });
    let e2e = (slot(config), any::<u8>()).prop_map(|(slot, key)| Action::ExchangeBind { slot, key });
    if exchanges >= 2 {
        prop_oneof![8 => bind, 1 => declare, 1 => e2e].boxed()
    } else {
        prop_oneof![8 => bind, 1 => declare].boxed()
    }
}

/// The actions of the traffic phase.
fn traffic_action(config: &GenConfig) -> BoxedStrategy<Action> {
    let (queues, exchanges) = (|| queue(config), config.exchanges.max(1));
    let s = || slot(config);
    // The default exchange first: shrinking goes towards it, the simplest routing there is.
    let exchange = prop_oneof![1 => Just(None), 5 => (0..exchanges).prop_map(Some)];
    let headers = prop_oneof![3 => Just(0u8), 2 => 1u8..16];
    let route = prop_oneof![
        3 => (any::<u8>(), any::<u8>()).prop_map(|(binding, variant)| Route::Hit { binding, variant }),
        2 => (any::<u8>(), headers).prop_map(|(key, headers)| Route::Pool { key, headers }),
    ];
    let publish = (s(), exchange, route, prop::bool::weighted(0.25))
        .prop_map(|(slot, exchange, route, mandatory)| Action::Publish { slot, exchange, route, mandatory });
    let prefetch = prop_oneof![1 => Just(None), 2 => (1u16..=3).prop_map(Some)];
    let consume = (s(), queues(), prop::bool::weighted(0.25), prefetch)
        .prop_map(|(slot, queue, no_ack, prefetch)| Action::Consume { slot, queue, no_ack, prefetch });
    let qos = (s(), 1u16..=3).prop_map(|(slot, prefetch)| Action::Qos { slot, prefetch });
    let get = (s(), queues(), prop::bool::weighted(0.3)).prop_map(|(slot, queue, no_ack)| Action::Get {
        slot,
        queue,
        no_ack,
    });
    let ack = (any::<u8>(), tag(), prop::bool::weighted(0.3)).prop_map(|(holder, tag, multiple)| Action::Ack {
        holder,
        tag,
        multiple,
    });
    let nack = (any::<u8>(), tag(), prop::bool::weighted(0.3), prop::bool::weighted(0.6))
        .prop_map(|(holder, tag, multiple, requeue)| Action::Nack { holder, tag, multiple, requeue });
    let reject = (any::<u8>(), tag(), prop::bool::weighted(0.6)).prop_map(|(holder, tag, requeue)| Action::Reject {
        holder,
        tag,
        requeue,
    });
    let cancel = any::<u8>().prop_map(|consumer| Action::Cancel { consumer });
    let close = s().prop_map(|slot| Action::CloseChannel { slot });
    let close_conn = (0..config.connections.max(1)).prop_map(|conn| Action::CloseConnection { conn });
    let purge = (s(), queues()).prop_map(|(slot, queue)| Action::Purge { slot, queue });
    let count = (s(), queues()).prop_map(|(slot, queue)| Action::Count { slot, queue });
    let unbind = (s(), any::<u8>()).prop_map(|(slot, binding)| Action::Unbind { slot, binding });
    let delete = (s(), queues()).prop_map(|(slot, queue)| Action::DeleteQueue { slot, queue });
    let base = prop_oneof![
        30 => publish,
        12 => consume,
        8 => get,
        12 => ack,
        7 => nack,
        7 => reject,
        3 => qos,
        4 => cancel,
        4 => close,
        1 => close_conn,
        2 => purge,
        4 => count,
        1 => unbind,
        1 => delete,
    ]
    .boxed();
    // Only with lifetime, so that the plans of a seed without it stay what they were.
    if config.lifetime {
        prop_oneof![12 => base, 1 => prop::bool::weighted(0.4).prop_map(|long| Action::Pass { long })].boxed()
    } else {
        base
    }
}

/// The proptest strategy of plans: `config.steps` actions or so, a sixth to a quarter of them
/// topology. Its value tree is a [`PlanTree`].
#[derive(Clone, Debug)]
pub struct PlanStrategy {
    config: GenConfig,
}

impl PlanStrategy {
    /// Plans for `config`.
    pub fn new(config: &GenConfig) -> Self {
        PlanStrategy { config: config.clone() }
    }
}

/// A number drawn from `lo..=hi` with the runner's generator.
fn draw(runner: &mut TestRunner, lo: usize, hi: usize) -> Result<usize, proptest::test_runner::Reason> {
    Ok((lo..=hi.max(lo)).new_tree(runner)?.current())
}

impl Strategy for PlanStrategy {
    type Tree = PlanTree;
    type Value = Plan;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let steps = self.config.steps.max(1);
        let topology = draw(runner, (steps / 6).max(1), (steps / 4).max(1))?;
        let traffic = steps.saturating_sub(topology).max(1);
        let traffic = draw(runner, traffic * 3 / 4, traffic * 5 / 4)?;
        let kinds = (0..self.config.exchanges.max(1))
            .map(|_| kind().boxed().new_tree(runner))
            .collect::<Result<Vec<_>, _>>()?;
        let (topo, traf) = (topology_action(&self.config), traffic_action(&self.config));
        let mut actions = Vec::with_capacity(topology + traffic);
        for _ in 0..topology {
            actions.push(topo.new_tree(runner)?);
        }
        for _ in 0..traffic {
            actions.push(traf.new_tree(runner)?);
        }
        let included = vec![true; actions.len()];
        let chunk = (actions.len() / 2).max(1);
        Ok(PlanTree { kinds, actions, included, phase: Phase::Delete { chunk, next: 0, progress: false }, undo: None })
    }
}

type Tree<T> = Box<dyn ValueTree<Value = T>>;

/// Where a [`PlanTree`] is in its shrinking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Removing runs of `chunk` actions, starting with the first included one at or after
    /// `next`; `progress` when a removal of this pass was kept.
    Delete { chunk: usize, next: usize, progress: bool },
    /// Simplifying the exchange kinds and then the remaining actions one by one (index into
    /// kinds followed by actions); `progress` when a simplification was kept.
    Simplify { at: usize, progress: bool },
    /// Nothing left to try.
    Done,
}

/// What the last [`ValueTree::simplify`] did, so that [`ValueTree::complicate`] can undo it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Undo {
    Removed(Vec<usize>),
    Simplified(usize),
}

/// The value tree of a [`Plan`]: it shrinks by removing actions, in halves, then quarters, and
/// so on down to single actions (repeating the single pass while it removes something), and
/// then by simplifying what is left (exchange types towards `direct`, each action's fields
/// towards their first choices), and then by removing again if simplifying made progress. Every
/// plan it produces compiles to a well-formed trace.
pub struct PlanTree {
    kinds: Vec<Tree<ExchangeKind>>,
    actions: Vec<Tree<Action>>,
    included: Vec<bool>,
    phase: Phase,
    undo: Option<Undo>,
}

impl fmt::Debug for PlanTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlanTree").field("current", &self.current()).field("phase", &self.phase).finish()
    }
}

impl ValueTree for PlanTree {
    type Value = Plan;

    fn current(&self) -> Plan {
        Plan {
            kinds: self.kinds.iter().map(|k| k.current()).collect(),
            actions: self.actions.iter().zip(&self.included).filter(|(_, on)| **on).map(|(a, _)| a.current()).collect(),
        }
    }

    fn simplify(&mut self) -> bool {
        // A change that was not undone was kept: the pass made progress.
        let kept_removal = matches!(self.undo, Some(Undo::Removed(_)));
        let kept_simplification = matches!(self.undo, Some(Undo::Simplified(_)));
        self.undo = None;
        loop {
            match self.phase {
                Phase::Delete { chunk, next, progress } => {
                    let progress = progress || kept_removal;
                    let run: Vec<usize> =
                        (next..self.actions.len()).filter(|i| self.included[*i]).take(chunk).collect();
                    match run.last() {
                        Some(&last) => {
                            for i in &run {
                                self.included[*i] = false;
                            }
                            self.phase = Phase::Delete { chunk, next: last + 1, progress };
                            self.undo = Some(Undo::Removed(run));
                            return true;
                        }
                        None if chunk > 1 => {
                            let left = self.included.iter().filter(|on| **on).count();
                            let chunk = (chunk / 2).min(left / 2).max(1);
                            self.phase = Phase::Delete { chunk, next: 0, progress: false };
                        }
                        None if progress => self.phase = Phase::Delete { chunk: 1, next: 0, progress: false },
                        None => self.phase = Phase::Simplify { at: 0, progress: false },
                    }
                }
                Phase::Simplify { at, progress } => {
                    let progress = progress || kept_simplification;
                    let kinds = self.kinds.len();
                    if at >= kinds + self.actions.len() {
                        // Simpler actions may have made others unnecessary: try removing again.
                        self.phase =
                            if progress { Phase::Delete { chunk: 1, next: 0, progress: false } } else { Phase::Done };
                        if progress {
                            continue;
                        }
                        return false;
                    }
                    let simplified = if at < kinds {
                        self.kinds[at].simplify()
                    } else {
                        self.included[at - kinds] && self.actions[at - kinds].simplify()
                    };
                    if simplified {
                        self.phase = Phase::Simplify { at, progress };
                        self.undo = Some(Undo::Simplified(at));
                        return true;
                    }
                    self.phase = Phase::Simplify { at: at + 1, progress };
                }
                Phase::Done => return false,
            }
        }
    }

    fn complicate(&mut self) -> bool {
        match self.undo.take() {
            Some(Undo::Removed(run)) => {
                for i in run {
                    self.included[i] = true;
                }
                true
            }
            Some(Undo::Simplified(at)) => {
                let kinds = self.kinds.len();
                let more = if at < kinds { self.kinds[at].complicate() } else { self.actions[at - kinds].complicate() };
                if more {
                    self.undo = Some(Undo::Simplified(at));
                }
                more
            }
            None => false,
        }
    }
}
