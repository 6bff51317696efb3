//! The model itself as a target, without the wire.

use super::{Hint, Listen, Target};
use crate::validate::blank;
use amqp_model::{Broker, Command, Event, Faults, Profile};

/// The model itself as a target: it takes its own internal steps eagerly (round robin under
/// `rabbitmq`), a broker that dispatches as soon as it can.
#[derive(Debug)]
pub struct ModelTarget {
    broker: Broker,
}

impl ModelTarget {
    /// A fresh model broker under `profile`, with deliberate `faults` (none for the real model).
    pub fn new(profile: Profile, faults: Faults) -> Self {
        ModelTarget { broker: Broker::with_faults(profile, faults) }
    }
}

impl Target for ModelTarget {
    fn command(&mut self, command: &Command, _: Hint) -> Vec<Event> {
        let mut events = self.broker.apply(command).unwrap_or_default();
        events.extend(self.broker.settle_internal());
        events.iter().map(blank).collect()
    }

    fn listen(&mut self, _: Listen) -> Vec<Event> {
        self.broker.settle_internal().iter().map(blank).collect()
    }
}
