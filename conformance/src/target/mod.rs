//! Targets: what a trace is replayed against. The model itself ([`crate::run::ModelTarget`]), a
//! live broker by its URI over lapin ([`live`]), the same broker over raw frames for what lapin
//! will not send ([`raw`]); how a broker is restarted ([`restart`]), reached and probed outside a
//! trace ([`probe`]), and cleaned of what a trace made ([`cleanup`]).

mod cleanup;
pub mod live;
pub mod probe;
pub mod raw;
pub mod restart;

use std::sync::{Mutex, MutexGuard};

/// The guarded value of `m`, also when a thread panicked while holding it (what the target's
/// state records stays usable for the report).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
