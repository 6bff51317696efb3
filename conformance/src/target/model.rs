//! The model itself as a target, without the wire.

use super::{Hint, Listen, Target};
use crate::validate::blank;
use amqp_model::{Broker, Command, Event, Faults, Profile};

/// The model itself as a target: it takes its own internal steps eagerly (round robin under
/// `rabbitmq`), a broker that dispatches as soon as it can.
#[derive(Debug)]
pub struct ModelTarget {
    broker: Broker,
    /// What pipelined commands made the broker send, not read yet ([`Target::pipeline`]).
    held: Vec<Event>,
}

impl ModelTarget {
    /// A fresh model broker under `profile`, with deliberate `faults` (none for the real model).
    pub fn new(profile: Profile, faults: Faults) -> Self {
        ModelTarget { broker: Broker::with_faults(profile, faults), held: Vec::new() }
    }
}

impl Target for ModelTarget {
    fn command(&mut self, command: &Command, _: Hint) -> Vec<Event> {
        let mut events: Vec<Event> = std::mem::take(&mut self.held);
        events.extend(self.broker.apply(command).unwrap_or_default().iter().map(blank));
        events.extend(self.broker.settle_internal().iter().map(blank));
        events
    }

    /// Applied as a broker reads a command whose close the client has not answered yet: a
    /// channel it closes stays closing for the next command ([`Broker::apply_all_pipelining`],
    /// the preferred answer); its events are returned with the next command's.
    fn pipeline(&mut self, command: &Command) -> Vec<Event> {
        if let Some(branch) = self.broker.apply_all_pipelining(command).ok().and_then(|b| b.into_iter().next()) {
            self.broker = branch.broker;
            self.held.extend(branch.events.iter().map(blank));
        }
        Vec::new()
    }

    fn listen(&mut self, _: Listen) -> Vec<Event> {
        self.broker.settle_internal().iter().map(blank).collect()
    }
}
