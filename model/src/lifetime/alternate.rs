//! Alternate exchanges: an exchange declared with an `alternate-exchange` argument passes every
//! message it cannot route itself to that exchange (RabbitMQ, "Alternate Exchanges").
//!
//! As RabbitMQ 3.10.8 does it (probed, docs/rabbitmq-3.10.md Q40, Q41, Q44): the alternate is
//! asked only by an exchange that matched no binding (no queue, no exchange); a message it
//! routes to some queue is routed, so a `mandatory` one is not returned; an alternate that
//! routes it nowhere, or does not exist, leaves it unroutable (returned if mandatory, 312). Each
//! exchange is visited once, so a loop of alternates ends. The walk itself is
//! [`crate::routing`]'s; this is what it asks.

use crate::state::Broker;
use crate::types::{Name, Value};

impl Broker {
    /// The alternate exchange of `exchange`, if it names one that exists (and the profile acts on
    /// the argument).
    pub(crate) fn alternate_of(&self, exchange: &Name) -> Option<&Name> {
        if !self.profile.lifetime || self.faults.has(crate::fault::Fault::AlternateIgnored) {
            return None;
        }
        match self.exchanges.get(exchange)?.arguments.get("alternate-exchange") {
            Some(Value::Str(ae)) if self.exchanges.contains_key(ae) => Some(ae),
            _ => None,
        }
    }
}
