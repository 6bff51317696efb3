//! Time without clocks: the model's clock is a number of milliseconds that moves only when a
//! trace (or the checker) says time passes ([`crate::Command::Pass`]), or when a runner that
//! watched a real broker says how much time has really passed ([`Broker::window`]).
//!
//! A real broker and its client do not share a clock, and a step (a command and what came back)
//! takes time of its own. So the model knows each moment within bounds: a step happened no
//! earlier than `now` (when the runner sent it) and no later than `horizon` (when it had heard
//! everything of it). Something due a while after a step is due within the same bounds
//! ([`Due`]): it *may* have happened once its earliest moment is not after the horizon, and it
//! *must* have happened once its latest moment is before `now`. A broker that acts at the right
//! time can then never be judged wrong, however slow the machine: what timing decides is
//! nondeterminism, never a guess. In the checker and on the model's own target the two bounds
//! are one: time passes only as the trace says.

use crate::state::Broker;
use serde::{Deserialize, Serialize};

/// The broker's clock, in milliseconds since the run began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Clock {
    /// The earliest the current step can have happened.
    pub now: u64,
    /// The latest the current step can have happened (never before `now`).
    pub horizon: u64,
}

/// A moment something falls due (a message's expiry, a queue's), known within bounds: the
/// earliest and the latest it can be, given when the step that set it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Due {
    /// The earliest moment.
    pub lo: u64,
    /// The latest moment.
    pub hi: u64,
}

impl Clock {
    /// What falls due `ms` after the current step.
    pub fn after(&self, ms: u64) -> Due {
        Due { lo: self.now.saturating_add(ms), hi: self.horizon.saturating_add(ms) }
    }

    /// Whether `due` may have come by the current step (its earliest moment is not after the
    /// latest the step can have happened).
    pub fn may_have_come(&self, due: Due) -> bool {
        due.lo <= self.horizon
    }

    /// Whether `due` has surely come before the current step (its latest moment is before the
    /// earliest the step can have happened): what was due then is owed.
    pub fn surely_came(&self, due: Due) -> bool {
        due.hi < self.now
    }
}

impl Broker {
    /// Time passes ([`crate::Command::Pass`]): the clock moves on by `ms`.
    pub(crate) fn pass(&mut self, ms: u32) {
        self.clock.now += u64::from(ms);
        self.clock.horizon = self.clock.horizon.max(self.clock.now);
    }

    /// Set the bounds of the next step from a real clock: it is sent no earlier than `start` and
    /// heard whole by `end` (milliseconds since the run began, `start <= end`). The clock never
    /// goes back: a bound before the model's is ignored.
    pub fn window(&mut self, start: u64, end: u64) {
        self.clock.now = self.clock.now.max(start);
        self.clock.horizon = self.clock.horizon.max(end).max(self.clock.now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_may_come_at_its_earliest_and_is_owed_only_after_its_latest() {
        let set = Clock { now: 100, horizon: 130 };
        let due = set.after(50);
        assert_eq!(due, Due { lo: 150, hi: 180 });
        assert!(!Clock { now: 120, horizon: 149 }.may_have_come(due));
        assert!(Clock { now: 120, horizon: 150 }.may_have_come(due));
        assert!(!Clock { now: 180, horizon: 200 }.surely_came(due));
        assert!(Clock { now: 181, horizon: 200 }.surely_came(due));
    }
}
