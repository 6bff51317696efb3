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

use crate::choice::Readings;
use crate::fault::{Fault, Faults};
use crate::state::{Broker, Dest};
use crate::types::{ExchangeKind, Name, Table};
use headers::HeaderValues;
use std::collections::BTreeSet;

/// Whether a binding of an exchange of `kind` with `key` and `arguments` matches a message with
/// `routing_key` and `headers` (headers bindings: values compared as `reading` says, `x-match`
/// with RabbitMQ's `-with-x` modes where `with_x`).
#[allow(clippy::too_many_arguments)]
pub fn binding_matches(
    kind: &ExchangeKind,
    key: &str,
    arguments: &Table,
    routing_key: &str,
    headers: &Table,
    reading: HeaderValues,
    with_x: bool,
    faults: Faults,
) -> bool {
    match kind {
        ExchangeKind::Direct => direct::matches(key, routing_key, faults),
        ExchangeKind::Fanout => fanout::matches(),
        ExchangeKind::Topic => topic::matches(key, routing_key, faults),
        ExchangeKind::Headers => headers::matches(arguments, headers, reading, with_x, faults),
        ExchangeKind::Other(_) => false,
    }
}

impl Broker {
    /// A binding from `exchange` with `arguments`: where `exchange` is a headers exchange, its
    /// `x-match` must be one the broker knows ([`headers::XMatch::of`]); one it does not is 406
    /// (RabbitMQ, Q30, Q46) or, as `x_match_unknown` permits (`spec`: the text names no values,
    /// `exchange recommended-types` only recommends the type), accepted. Unbinding checks
    /// nothing (RabbitMQ: unbind-ok).
    pub(crate) fn check_x_match(&mut self, exchange: &Name, arguments: &Table) -> crate::broker::Outcome {
        let headers = self.exchanges.get(exchange).is_some_and(|x| x.kind == ExchangeKind::Headers);
        if !headers
            || headers::XMatch::of(arguments, self.profile.x_match_with_x).is_some()
            || self.permits(self.profile.x_match_unknown, "exchange recommended-types")
        {
            return Ok(());
        }
        Err(crate::broker::Exception::Channel(crate::types::ReplyCode::PreconditionFailed))
    }

    /// The queues a message published to `exchange` with `routing_key` and `headers` reaches.
    ///
    /// The default exchange (`""`) routes to the queue named by the routing key
    /// (`queue declare default-binding`), and also follows explicit bindings where a profile
    /// allows them. A missing exchange routes nowhere (callers check existence first).
    pub fn route(&self, exchange: &Name, routing_key: &Name, headers: &Table) -> Vec<Name> {
        self.route_reading(exchange, routing_key, headers, self.header_reading())
    }

    /// How this broker's headers bindings compare values: RabbitMQ's reading unless the profile
    /// leaves it open, and then RabbitMQ's while it agrees with how the broker has routed, else the
    /// first reading that does (all of those route alike every message routed so far).
    pub fn header_reading(&self) -> HeaderValues {
        if !self.profile.header_values_open || self.header_readings.contains(HeaderValues::RABBIT.0) {
            return HeaderValues::RABBIT;
        }
        HeaderValues(self.header_readings.first().unwrap_or(0))
    }

    /// Under `Profile::header_values_open`, narrow the broker's readings of header values to those
    /// that route this message as the broker does: when the readings still held route it to
    /// different queues, a choice among those routings (the one of RabbitMQ's reading first).
    pub(crate) fn settle_header_reading(&mut self, exchange: &Name, routing_key: &Name, headers: &Table) {
        if !self.profile.header_values_open || headers.is_empty() {
            return;
        }
        let mut groups: Vec<(Vec<Name>, Readings)> = Vec::new();
        for r in self.header_readings.iter() {
            let queues = self.route_reading(exchange, routing_key, headers, HeaderValues(r));
            match groups.iter_mut().find(|(q, _)| *q == queues) {
                Some((_, readings)) => readings.insert(r),
                None => groups.push((queues, Readings::only(r))),
            }
        }
        if groups.len() > 1 {
            groups.sort_by_key(|(_, readings)| !readings.contains(HeaderValues::RABBIT.0));
            let k = self.either("headers exchange value types", groups.len().min(255) as u8);
            self.header_readings = groups[usize::from(k)].1;
        }
    }

    fn route_reading(&self, exchange: &Name, routing_key: &Name, headers: &Table, reading: HeaderValues) -> Vec<Name> {
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
            let mut matched = false;
            for b in self.bindings_from(&x) {
                let hit = if ex.kind == ExchangeKind::Fanout && self.faults.has(Fault::FanoutFirstOnly) {
                    Some(&b.dest) == first.as_ref()
                } else {
                    binding_matches(
                        &ex.kind,
                        b.key.as_str(),
                        &b.arguments,
                        routing_key.as_str(),
                        headers,
                        reading,
                        self.profile.x_match_with_x,
                        self.faults,
                    )
                };
                if !hit {
                    continue;
                }
                matched = true;
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
            // An exchange that matched nothing passes the message to its alternate
            // (`crate::lifetime::alternate`), each exchange visited once.
            if !matched && !x.is_empty() {
                if let Some(ae) = self.alternate_of(&x) {
                    if seen.insert(ae.clone()) {
                        todo.push(ae.clone());
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
