//! Model checking with stateright: [`BrokerModel`] explores every behaviour of the broker within
//! a bounded universe ([`CheckConfig`]: a few connections, queues, exchanges, routing keys and
//! messages) and checks the properties below in every reachable state.
//!
//! `always` properties restate the specification in terms independent of the model's code: the
//! ledger of message copies against where copies actually are, prefetch recounted, delivery tags
//! and the `redelivered` flag judged by an observer ([`ghost`]), routing judged by an independent
//! oracle ([`oracle`]), exclusivity, and what a restart keeps. `sometimes` properties show that
//! the interesting behaviours are reachable at all.

pub mod config;
pub mod explore;
pub mod ghost;
pub mod lifetime;
pub mod oracle;

pub use config::CheckConfig;
pub use ghost::{Check, Ghost, Notable};

use crate::broker::Internal;
use crate::command::Command;
use crate::state::{Broker, CopyId};
use crate::types::ReplyCode;
use stateright::{Model, Path, Property};
use std::collections::BTreeMap;

/// A step of the checked system: a client command or a broker choice.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// A client (or the environment) acts, and the broker gives the profile's first answer.
    Client(Command),
    /// A client acts, and the broker gives another answer the profile allows: the branch of
    /// [`Broker::apply_all`] with this script ([`crate::choice`]).
    Answer(Command, Vec<u8>),
    /// The broker acts on its own.
    Broker(Internal),
}

/// A checked state: the broker and the observer's bookkeeping. Its `Debug` (what the Explorer
/// shows as the state) is the compact text of [`explore::state_text`], then every field but the
/// profile's, which stay the same over a run.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CheckState {
    /// The model.
    pub broker: Broker,
    /// The observer.
    pub ghost: Ghost,
}

impl std::fmt::Debug for CheckState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.broker;
        f.write_str(&explore::state_text(b, None))?;
        f.write_str("\nin full\n")?;
        f.debug_struct("Broker")
            .field("exchanges", &b.exchanges)
            .field("queues", &b.queues)
            .field("bindings", &b.bindings)
            .field("connections", &b.connections)
            .field("next_msg", &b.next_msg)
            .field("next_name", &b.next_name)
            .field("ledger", &b.ledger)
            .field("predeclared_durable", &b.predeclared_durable)
            .field("durable_exclusive", &b.durable_exclusive)
            .field("header_readings", &b.header_readings)
            .field("priority_schemes", &b.priority_schemes)
            .field("clock", &b.clock)
            .field("faults", &b.faults)
            .finish()?;
        write!(f, "\n{:?}", self.ghost)
    }
}

/// The broker model over a bounded universe.
#[derive(Clone, Debug)]
pub struct BrokerModel {
    /// The universe and bounds.
    pub config: CheckConfig,
    /// Shown in the Explorer: the `sometimes` properties the configuration cannot reach are
    /// listed as out of scope, as `amqp-model check` says, and never searched for.
    pub explorer: bool,
}

impl BrokerModel {
    /// The model for a configuration.
    pub fn new(config: CheckConfig) -> Self {
        BrokerModel { config, explorer: false }
    }

    /// The model for a configuration, as the Explorer shows it ([`BrokerModel::explorer`]).
    pub fn for_explorer(config: CheckConfig) -> Self {
        BrokerModel { config, explorer: true }
    }

    /// `properties`, with those out of the configuration's scope marked for the Explorer.
    fn scoped(&self, all: Vec<Property<Self>>) -> Vec<Property<Self>> {
        if !self.explorer {
            return all;
        }
        all.into_iter()
            .map(|p| {
                if p.expectation != stateright::Expectation::Sometimes || self.config.must_reach.contains(&p.name) {
                    return p;
                }
                Property::sometimes(explore::out_of_scope(p.name), |_, _| false)
            })
            .collect()
    }

    /// Where the configuration lands copies at once ([`CheckConfig::late_arrivals`] false):
    /// a closed channel's returns, then dead-lettered copies in the order they died (a landing
    /// may kill another, whose copy lands in turn).
    fn take_arrivals(&self, broker: &mut Broker, events: &mut Vec<crate::Event>) {
        if self.config.late_arrivals {
            return;
        }
        // Only while some copy is on its way: the universes taking arrivals at once mostly have none.
        if broker.queues.values().any(|q| !q.returning.is_empty()) {
            let mut steps = Vec::new();
            broker.internal_steps(&mut steps);
            for step in steps.into_iter().filter(|s| matches!(s, crate::Internal::Return { .. })) {
                events.extend(broker.step(&step));
            }
        }
        while broker.queues.values().any(|q| !q.arriving.is_empty()) {
            let mut steps = Vec::new();
            broker.internal_steps(&mut steps);
            let Some(step) = steps.into_iter().find(|s| matches!(s, crate::Internal::Arrive { .. })) else { break };
            events.extend(broker.step(&step));
        }
    }

    /// The state after `action`, and what the broker sent in it.
    fn advance(&self, last: &CheckState, action: &Action) -> Option<(CheckState, Vec<crate::Event>)> {
        let mut next = last.clone();
        let mut events = match action {
            Action::Client(cmd) => next.broker.apply(cmd).ok()?,
            Action::Answer(cmd, script) => next.broker.apply_scripted(cmd, script).ok()?,
            Action::Broker(step) => next.broker.step(step),
        };
        self.take_arrivals(&mut next.broker, &mut events);
        ghost::observe(&last.broker, action, &events, &next.broker, &mut next.ghost);
        Some((next, events))
    }

    fn offered(&self, b: &Broker, cmd: &Command) -> bool {
        match cmd {
            Command::Restart => true,
            Command::Pass { .. } => b.clock.now < self.config.max_time,
            Command::ConnectionOpen { conn } => !b.connections.contains_key(conn),
            Command::ChannelOpen { ch } => b.connections.contains_key(&ch.conn) && b.channel(*ch).is_none(),
            Command::BasicPublish { .. } if b.next_msg >= self.config.max_messages => false,
            Command::QueueDeclare { queue, .. } if queue.is_empty() && b.next_name >= self.config.max_names => false,
            Command::BasicConsume { consumer_tag, .. }
                if consumer_tag.is_empty() && b.next_name >= self.config.max_names =>
            {
                false
            }
            other => match other.channel() {
                Some(ch) => b.channel(ch).is_some(),
                None => other.connection().is_some_and(|c| b.connections.contains_key(&c)),
            },
        }
    }
}

impl Model for BrokerModel {
    type State = CheckState;
    type Action = Action;

    fn init_states(&self) -> Vec<CheckState> {
        let mut broker = Broker::with_faults(self.config.profile, self.config.faults);
        let mut ghost = Ghost::default();
        for cmd in &self.config.setup {
            let events = broker.apply(cmd).expect("setup commands apply");
            for e in events {
                if let crate::Event::ChannelOpenOk { ch } = e {
                    ghost.last_tag.insert(ch, 0);
                }
            }
        }
        vec![CheckState { broker, ghost }]
    }

    fn actions(&self, state: &CheckState, actions: &mut Vec<Action>) {
        // Once per state: under `rabbitmq` it looks at every waiting message's deadline.
        let may_choose = state.broker.may_choose();
        for cmd in &self.config.menu {
            if self.offered(&state.broker, cmd) {
                actions.push(Action::Client(cmd.clone()));
                if may_choose {
                    let branches = state.broker.apply_all(cmd).unwrap_or_default();
                    for b in branches.iter().skip(1) {
                        actions.push(Action::Answer(cmd.clone(), b.script()));
                    }
                }
            }
        }
        let mut internal = Vec::new();
        state.broker.internal_steps(&mut internal);
        actions.extend(internal.into_iter().map(Action::Broker));
    }

    fn next_state(&self, last: &CheckState, action: Action) -> Option<CheckState> {
        self.advance(last, &action).map(|(next, _)| next)
    }

    fn format_action(&self, action: &Action) -> String {
        explore::action_text(action)
    }

    fn format_step(&self, last: &CheckState, action: Action) -> Option<String> {
        self.advance(last, &action).map(|(next, sent)| explore::state_text(&next.broker, Some(&sent)))
    }

    fn as_svg(&self, path: Path<CheckState, Action>) -> Option<String> {
        Some(explore::state_svg(&path.last_state().broker))
    }

    fn within_boundary(&self, state: &CheckState) -> bool {
        let b = &state.broker;
        b.next_msg <= self.config.max_messages
            && b.next_name <= self.config.max_names
            && b.clock.now <= self.config.max_time
            && b.connections.values().all(|c| c.channels.values().all(|ch| ch.next_tag <= self.config.max_tag + 1))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        self.scoped(vec![
            Property::always("no copy lost or duplicated", |_, s: &CheckState| copies_accounted(&s.broker).is_ok()),
            Property::always("prefetch respected", |_, s: &CheckState| violation_free(s, Check::Prefetch)),
            Property::always("delivery tags increase", |_, s: &CheckState| violation_free(s, Check::DeliveryTags)),
            Property::always("redelivered iff delivered before", |_, s: &CheckState| {
                violation_free(s, Check::Redelivered)
            }),
            Property::always("routing agrees with oracle", |_, s: &CheckState| violation_free(s, Check::Routing)),
            Property::always("exclusive queues only for their owner", |_, s: &CheckState| {
                violation_free(s, Check::Exclusive) && exclusive_owned(&s.broker)
            }),
            Property::always("restart keeps exactly the durable", |_, s: &CheckState| {
                violation_free(s, Check::Restart)
            }),
            Property::always("priority levels respected", |_, s: &CheckState| violation_free(s, Check::Priority)),
            Property::always("messages expire only after their time to live", |_, s: &CheckState| {
                violation_free(s, Check::Expiry)
            }),
            Property::always("queues stay within their length limits", |_, s: &CheckState| {
                violation_free(s, Check::Length)
            }),
            Property::always("dead letters are routed as the oracle says", |_, s: &CheckState| {
                violation_free(s, Check::DeadLetter)
            }),
            Property::always("no copy vanishes without a fate", |_, s: &CheckState| violation_free(s, Check::Fate)),
            Property::always("consumer priorities respected", |_, s: &CheckState| {
                violation_free(s, Check::ConsumerPriority)
            }),
            Property::always("x-delivery-count counts earlier deliveries", |_, s: &CheckState| {
                violation_free(s, Check::DeliveryCount)
            }),
            Property::always("no delivery past the delivery limit", |_, s: &CheckState| {
                violation_free(s, Check::DeliveryLimit)
            }),
            Property::always("one active consumer at a time", |_, s: &CheckState| {
                violation_free(s, Check::SingleActive)
            }),
            Property::sometimes("a redelivery happens", |_, s: &CheckState| {
                s.broker
                    .connections
                    .values()
                    .any(|c| c.channels.values().any(|ch| ch.unacked.values().any(|u| u.redelivered)))
            }),
            Property::sometimes("a consumer is blocked by prefetch", |_, s: &CheckState| blocked_consumer(&s.broker)),
            Property::sometimes("a 406 closes a channel", |_, s: &CheckState| {
                s.ghost.last == Some(Notable::Closed(ReplyCode::PreconditionFailed))
            }),
            Property::sometimes("an auto-delete queue disappears", |_, s: &CheckState| {
                s.ghost.last == Some(Notable::AutoDeleted)
            }),
            Property::sometimes("a persistent message survives a restart", |_, s: &CheckState| {
                s.ghost.last == Some(Notable::Survived)
            }),
            Property::sometimes("a mandatory message is returned", |_, s: &CheckState| {
                s.ghost.last == Some(Notable::Returned)
            }),
            Property::sometimes("a deletion is made later", |_, s: &CheckState| {
                s.ghost.last == Some(Notable::RemovedLater)
            }),
            Property::sometimes("a message overtakes an earlier one", |_, s: &CheckState| {
                s.ghost.last == Some(Notable::Overtook)
            }),
            Property::sometimes(
                "a lower-priority consumer is served while a higher one is blocked",
                |_, s: &CheckState| s.ghost.last == Some(Notable::LowerPriorityServed),
            ),
            Property::sometimes("another consumer takes over a single-active queue", |_, s: &CheckState| {
                s.ghost.last == Some(Notable::TookOver)
            }),
            Property::sometimes("a copy reaches its delivery limit", |_, s: &CheckState| {
                s.ghost.last == Some(Notable::DeliveryLimitReached)
            }),
            Property::sometimes("a message expires", |_, s: &CheckState| s.ghost.last == Some(Notable::Expired)),
            Property::sometimes("a message is dead-lettered", |_, s: &CheckState| {
                s.ghost.last == Some(Notable::DeadLettered)
            }),
            Property::sometimes("a message is dropped over a length limit", |_, s: &CheckState| {
                s.ghost.last == Some(Notable::DroppedOverLimit)
            }),
            Property::sometimes("a publish is refused by a full queue", |_, s: &CheckState| {
                s.ghost.last == Some(Notable::Refused)
            }),
            Property::sometimes("a queue expires", |_, s: &CheckState| s.ghost.last == Some(Notable::QueueExpired)),
            Property::sometimes("an alternate exchange routes a message", |_, s: &CheckState| {
                s.ghost.last == Some(Notable::Alternate)
            }),
        ])
    }
}

fn violation_free(s: &CheckState, kind: Check) -> bool {
    s.ghost.violation.as_ref().is_none_or(|v| v.kind != kind)
}

/// Every live copy in the ledger is in exactly one place (ready in its queue, or unacknowledged
/// on a channel), and no settled or unknown copy is anywhere.
pub fn copies_accounted(b: &Broker) -> Result<(), String> {
    let mut seen: BTreeMap<CopyId, usize> = BTreeMap::new();
    for (name, q) in &b.queues {
        for r in &q.ready {
            *seen.entry(CopyId { msg: r.msg.id(), queue: name.clone() }).or_default() += 1;
        }
        for u in &q.returning {
            *seen.entry(CopyId { msg: u.msg.id(), queue: name.clone() }).or_default() += 1;
        }
    }
    for conn in b.connections.values() {
        for ch in conn.channels.values() {
            for u in ch.unacked.values() {
                *seen.entry(CopyId { msg: u.msg.id(), queue: u.queue.clone() }).or_default() += 1;
            }
        }
    }
    for copy in b.ledger.keys() {
        let n = seen.remove(copy).unwrap_or(0);
        if n != 1 {
            return Err(format!("live copy {copy:?} found {n} times"));
        }
    }
    match seen.into_iter().next() {
        Some((copy, _)) => Err(format!("copy {copy:?} is not in the ledger")),
        None => Ok(()),
    }
}

/// Every exclusive queue's owner is connected, and all its consumers are the owner's; one whose
/// owner has gone, waiting for its deletion (`Profile::deferred_deletion`), has no consumer.
fn exclusive_owned(b: &Broker) -> bool {
    b.queues.values().all(|q| match q.owner {
        None => true,
        Some(_) if q.orphaned => q.consumer_count() == 0,
        Some(o) => b.connections.contains_key(&o) && q.all_consumers().all(|c| c.ch.conn == o),
    })
}

/// Some queue has ready messages and a consumer held back by a prefetch limit.
fn blocked_consumer(b: &Broker) -> bool {
    b.queues.values().any(|q| {
        !q.ready.is_empty() && q.all_consumers().any(|c| b.consumer(c).is_some_and(|x| !x.no_ack) && !b.has_capacity(c))
    })
}
