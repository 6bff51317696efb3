//! Direct exchanges: `queue bind routing-key direct-exchange-key-matching` - a message reaches a
//! binding exactly when its routing key equals the binding key.

use crate::fault::{Fault, Faults};

/// Whether binding key `key` matches routing key `routing_key`.
pub fn matches(key: &str, routing_key: &str, faults: Faults) -> bool {
    faults.has(Fault::DirectIgnoresKey) || key == routing_key
}
