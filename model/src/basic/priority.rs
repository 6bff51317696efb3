//! Message priorities: which waiting message goes out first (`basic 06`, `basic 07`, `basic 08`).
//!
//! Messages carry a priority (the `priority` property, absent read as 0). A queue's waiting
//! messages fall into levels; the next message out is one of the highest level present, and
//! within a level the queue's own order holds (`basic 08`, with the requeue rules of
//! [`super::dispatch::next_candidates`]).
//!
//! - Under `spec` ([`PriorityLevels::Bands`]) the server has at least the two levels 0-4 and 5-9
//!   (`basic 06`, a MUST) and may split them further, up to a level per priority 0 to 9
//!   (`basic 07`, a MAY). A split is a set of boundaries among the eight places inside the two
//!   bands (between 0 and 1, ..., 3 and 4, then 5 and 6, ..., 8 and 9): 256 schemes ([`Readings`](crate::choice::Readings)), one of
//!   which is the broker's. The model does not pick one up front: it keeps the schemes that agree
//!   with every choice the broker has made so far ([`Broker::priority_schemes`]), offers each
//!   message that some of them would send first, and keeps only those after it goes. Priorities
//!   above 9 are read as 9 (the property's doc gives 0 to 9).
//! - Under `rabbitmq` ([`PriorityLevels::MaxPriorityArgument`]) a classic queue declared without
//!   `x-max-priority` has one level (arrival order, priorities ignored), and one declared with it
//!   (1 to 255) a level per priority from 0 to that maximum, priorities above it read as it
//!   (probed: docs/rabbitmq-3.10.md Q43).

use crate::choice::Readings as Schemes;
use crate::state::{Broker, Queue, Ready};
use serde::{Deserialize, Serialize};

/// How a profile puts priorities into levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PriorityLevels {
    /// The bands 0-4 and 5-9 at least, finer levels as the broker's scheme has them.
    Bands,
    /// RabbitMQ's: levels only in a queue declared with `x-max-priority`.
    MaxPriorityArgument,
}

/// The places inside the two bands where a scheme may put a boundary: a boundary at `p` sets
/// priorities `p` and up a level above `p - 1`. (5, between the bands, is always one.)
const PLACES: [u8; 8] = [1, 2, 3, 4, 6, 7, 8, 9];

/// The level of `priority` under scheme `s`: one for the band boundary at 5, one for each of the
/// scheme's boundaries at or below it.
fn band_level(s: u8, priority: u8) -> u8 {
    let p = priority.min(9);
    let finer = PLACES.iter().enumerate().filter(|(i, at)| s & (1 << i) != 0 && **at <= p).count() as u8;
    finer + u8::from(p >= 5)
}

/// The highest priority level of `queue` under RabbitMQ's rule: its `x-max-priority` when that
/// is from 1 to 255; None (one level) otherwise.
fn rabbit_max(queue: &Queue) -> Option<u8> {
    match queue.arguments.get("x-max-priority").and_then(crate::types::Value::int) {
        Some(max @ 1..=255) => Some(max as u8),
        _ => None,
    }
}

impl Broker {
    /// The indexes of the waiting messages of `queue` that may go out next among those `takes`
    /// accepts, each with the schemes under which it may (every scheme, [`Schemes::ALL`], where
    /// the profile has none to settle): those of the highest level present, and of them the ones
    /// [`super::dispatch::next_candidates`] allows.
    pub(crate) fn next_by_priority(&self, queue: &Queue, takes: impl Fn(&Ready) -> bool) -> Vec<(usize, Schemes)> {
        let position = self.profile.requeue_position;
        let next = |level: &dyn Fn(&Ready) -> u8| {
            let top = queue.ready.iter().filter(|r| takes(r)).map(level).max();
            super::dispatch::next_candidates(&queue.ready, position, |r| takes(r) && Some(level(r)) == top)
        };
        let every = |at: Vec<usize>| at.into_iter().map(|i| (i, Schemes::ALL)).collect();
        if self.faults.has(crate::fault::Fault::PriorityIgnored) {
            return every(next(&|_| 0));
        }
        let priority = |r: &Ready| r.msg.0.content.priority.unwrap_or(0).min(9);
        let one_priority = || {
            let mut waiting = queue.ready.iter().filter(|r| takes(r)).map(priority);
            let first = waiting.next();
            waiting.all(|p| Some(p) == first)
        };
        match self.profile.priority_levels {
            PriorityLevels::MaxPriorityArgument => match rabbit_max(queue) {
                None => every(next(&|_| 0)),
                Some(max) => every(next(&|r| r.msg.0.content.priority.unwrap_or(0).min(max))),
            },
            // Every scheme orders messages of one priority alike: nothing to settle.
            PriorityLevels::Bands if one_priority() => every(next(&|_| 0)),
            PriorityLevels::Bands => {
                let mut out: Vec<(usize, Schemes)> = Vec::new();
                for s in self.priority_schemes.iter() {
                    for i in next(&|r| band_level(s, priority(r))) {
                        match out.iter_mut().find(|(at, _)| *at == i) {
                            Some((_, schemes)) => schemes.insert(s),
                            None => {
                                let mut schemes = Schemes::NONE;
                                schemes.insert(s);
                                out.push((i, schemes));
                            }
                        }
                    }
                }
                out.sort_by_key(|(i, _)| *i);
                out
            }
        }
    }

    /// The level of a waiting message under RabbitMQ's rule: its priority, up to the queue's
    /// `x-max-priority`, in a queue declared with one; 0 otherwise.
    pub(crate) fn rabbit_level(&self, queue: &Queue, r: &Ready) -> u8 {
        rabbit_max(queue).map_or(0, |max| r.msg.0.content.priority.unwrap_or(0).min(max))
    }

    /// A message went out that `schemes` allowed: the broker's scheme is one of them.
    pub(crate) fn settle_priority_schemes(&mut self, schemes: Schemes) {
        self.priority_schemes = self.priority_schemes.and(schemes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_keeps_the_bands_and_one_has_ten_levels() {
        for s in 0..=255u8 {
            assert!((0..5).all(|p| band_level(s, p) < band_level(s, 5)), "scheme {s}");
            assert!((0..9).all(|p| band_level(s, p) <= band_level(s, p + 1)), "scheme {s}");
        }
        assert_eq!((0..10).map(|p| band_level(0, p)).collect::<Vec<_>>(), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
        assert_eq!((0..10).map(|p| band_level(255, p)).collect::<Vec<_>>(), (0..10).collect::<Vec<u8>>());
        assert_eq!(band_level(0, 200), 1);
        let mut s = Schemes::NONE;
        s.insert(200);
        assert_eq!((s.len(), s.and(Schemes::ALL), Schemes::ALL.len()), (1, s, 256));
    }
}
