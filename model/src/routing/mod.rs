//! Routing: which queues a published message reaches.
//!
//! Each exchange type's matching rule lives in its own module as a pure function of a binding and
//! a message; this module walks the binding graph (including exchange-to-exchange bindings) and
//! collects the destination queues, each at most once (`queue bind unique`,
//! `exchange bind unique`), however many paths lead to it and whatever cycles the graph has
//! (`exchange bind cyclical`).

pub mod direct;
pub mod fanout;
pub mod headers;
pub mod topic;

use crate::fault::{Fault, Faults};
use crate::state::{Broker, Dest};
use crate::types::{ExchangeKind, Name, Table};
use std::collections::BTreeSet;

/// Whether a binding of an exchange of `kind` with `key` and `arguments` matches a message with
/// `routing_key` and `headers`.
pub fn binding_matches(
    kind: &ExchangeKind,
    key: &str,
    arguments: &Table,
    routing_key: &str,
    headers: &Table,
    faults: Faults,
) -> bool {
    match kind {
        ExchangeKind::Direct => direct::matches(key, routing_key, faults),
        ExchangeKind::Fanout => fanout::matches(),
        ExchangeKind::Topic => topic::matches(key, routing_key, faults),
        ExchangeKind::Headers => headers::matches(arguments, headers, faults),
        ExchangeKind::Other(_) => false,
    }
}

impl Broker {
    /// The queues a message published to `exchange` with `routing_key` and `headers` reaches.
    ///
    /// The default exchange (`""`) routes to the queue named by the routing key
    /// (`queue declare default-binding`), and also follows explicit bindings where a profile
    /// allows them. A missing exchange routes nowhere (callers check existence first).
    pub fn route(&self, exchange: &Name, routing_key: &Name, headers: &Table) -> Vec<Name> {
        let mut queues = Vec::new();
        let mut seen = BTreeSet::new();
        let mut edges = BTreeSet::new();
        let mut todo = vec![exchange.clone()];
        seen.insert(exchange.clone());
        while let Some(x) = todo.pop() {
            let Some(ex) = self.exchanges.get(&x) else { continue };
            let default_bound = self.queues.get(routing_key).is_some_and(|q| !q.default_unbound);
            if x.is_empty() && !self.faults.has(Fault::DefaultExchangeDrops) && default_bound {
                queues.push(routing_key.clone());
            }
            let first = self.bindings_from(&x).next().map(|b| b.dest.clone());
            for b in self.bindings_from(&x) {
                let hit = if ex.kind == ExchangeKind::Fanout && self.faults.has(Fault::FanoutFirstOnly) {
                    Some(&b.dest) == first.as_ref()
                } else {
                    binding_matches(&ex.kind, b.key.as_str(), &b.arguments, routing_key.as_str(), headers, self.faults)
                };
                if !hit {
                    continue;
                }
                match &b.dest {
                    Dest::Queue(q) => queues.push(q.clone()),
                    Dest::Exchange(e) => {
                        // The fault follows each binding once instead of each exchange once.
                        let first = if self.faults.has(Fault::DuplicateOnTwoPaths) {
                            edges.insert((x.clone(), e.clone()))
                        } else {
                            seen.insert(e.clone())
                        };
                        if first {
                            todo.push(e.clone());
                        }
                    }
                }
            }
        }
        queues.sort();
        if !self.faults.has(Fault::DuplicateOnTwoPaths) {
            queues.dedup();
        }
        queues
    }

    /// The bindings whose source is `exchange`, in order.
    pub fn bindings_from<'a>(&'a self, exchange: &'a Name) -> impl Iterator<Item = &'a crate::state::Binding> + 'a {
        self.bindings.iter().skip_while(move |b| &b.source < exchange).take_while(move |b| &b.source == exchange)
    }
}
