//! Compiling a [`Plan`] to a [`Trace`].
//!
//! The compiler runs the plan on a model broker under the `rabbitmq` profile (taking its own
//! steps eagerly, as the model target does) and writes one or more commands per action: the
//! `connection.open`, `channel.open`, `exchange.declare` and `queue.declare` the action needs
//! first, then the action itself with names, keys and tags chosen from what the model holds at
//! that point. An action is left out, with everything written for it, when:
//!
//! - it has nothing to act on (no outstanding tag to settle, no consumer to cancel, a queue that
//!   is not declared for a purge, a count or a delete, a queue with consumers for a delete);
//! - a `basic.qos` would come after the channel's first consumer, or a second consumer would
//!   join a channel with a prefetch limit: there the profiles read `basic.qos` differently (per
//!   channel in the spec, per consumer in RabbitMQ) and would part ways;
//! - the broker would close a connection, or a channel other than for a deliberately bad
//!   delivery tag (tag 0 without `multiple`, or one the channel has not used yet);
//! - with [`GenConfig::spec_compatible`]: a model broker under the `spec` profile, run alongside,
//!   closes something the `rabbitmq` one does not (or the other way round), or the validator
//!   under the `spec` profile does not accept what the `rabbitmq` model did (for instance a
//!   message requeued to the consumer on the channel that rejected it).
//!
//! Delivery tags are chosen with the broker's freedom in mind: when one step gives a channel
//! deliveries from several queues, the broker may interleave the queues in another order than
//! the model did, so which message has which of those tags is not known. No settlement names
//! one of those tags (a `multiple` one beyond them covers them all alike).
//!
//! So every compiled trace runs on both profiles' models without a usage error, and what the
//! `rabbitmq` model does on it is also a behaviour of the `spec` model.
//!
//! One file for one concern, compiling a plan into a trace: the rules above hold across every kind
//! of action, so the kinds are compiled in one place.

use super::plan::{Action, Plan, Route, Slot, TagPick};
use super::GenConfig;
use crate::trace::{self, Step, StepKind, Trace};
use crate::validate::{blank, Validator};
use amqp_model::state::Dest;
use amqp_model::{Broker, ChanRef, Command, ConnId, Content, Event, ExchangeKind, Name, Profile, Table, Value};
use std::collections::BTreeMap;

/// Binding keys of a topic exchange: literal keys, `*`, `#`, and empty words.
pub const TOPIC_PATTERNS: [&str; 14] =
    ["a.b", "a.*", "*.b", "#", "a.#", "#.b", "*", "a..b", "a.*.b", "#.x", "a.#.b", "*.*", "", "a."];
/// Binding keys of a direct exchange.
pub const DIRECT_KEYS: [&str; 6] = ["a", "a.b", "b", "", "ab", "a."];
/// Binding keys of a fanout exchange (ignored by its routing).
pub const FANOUT_KEYS: [&str; 2] = ["", "a"];
/// Routing keys of publishes to a named exchange: each binding key and pattern above is hit by
/// some and narrowly missed by others (one word more or less, an empty word, another case).
pub const PUBLISH_KEYS: [&str; 15] =
    ["a.b", "a", "b", "a.c", "a.b.c", "a..b", "a.x.b", "x", "a.x", "b.a", ".b", "a.", "", "ab", "A.b"];

fn text(s: &str) -> Value {
    Value::Str(Name::from(s))
}

/// The header tables of publishes: none, matching ones, near misses (another value, an integer
/// against a string).
fn publish_headers(i: u8) -> Table {
    let pairs: &[(&str, Value)] = match i % 7 {
        0 => &[],
        1 => &[("k1", text("v1"))],
        2 => &[("k1", text("v1")), ("k2", text("v2"))],
        3 => &[("k2", text("v2"))],
        4 => &[("k1", text("v2"))],
        5 => &[("k2", Value::Int(2))],
        _ => &[("k2", text("2"))],
    };
    pairs.iter().map(|(k, v)| (Name::from(*k), v.clone())).collect()
}

/// The arguments of a headers binding: `x-match` all or any over one or two headers.
fn header_binding(i: u8) -> Table {
    let (mode, pairs): (&str, &[(&str, Value)]) = match i % 5 {
        0 => ("all", &[("k1", text("v1"))]),
        1 => ("any", &[("k1", text("v1")), ("k2", text("v2"))]),
        2 => ("all", &[("k1", text("v1")), ("k2", text("v2"))]),
        3 => ("any", &[("k2", Value::Int(2))]),
        _ => ("all", &[("k1", text("v2"))]),
    };
    let mut t: Table = pairs.iter().map(|(k, v)| (Name::from(*k), v.clone())).collect();
    t.insert(Name::from("x-match"), text(mode));
    t
}

/// A routing key matched by the topic `pattern`: each `*` becomes a word (sometimes the empty
/// word), each `#` zero, one or two words, as the bits of `variant` say.
fn instantiate(pattern: &str, variant: u8) -> Name {
    let mut words: Vec<&str> = Vec::new();
    for (i, word) in pattern.split('.').enumerate() {
        let bits = (u32::from(variant) >> (2 * (i % 4))) & 3;
        match word {
            "*" if bits == 3 => words.push(""),
            "*" => words.push("w"),
            "#" => words.extend(std::iter::repeat_n("w", bits as usize % 3)),
            literal => words.push(literal),
        }
    }
    Name::from(words.join("."))
}

/// Headers matched by a headers binding's `arguments`: all of its values for `x-match=all`,
/// one of them (chosen by `variant`) for `any`.
fn matching_headers(arguments: &Table, variant: u8) -> Table {
    let pairs: Vec<(&Name, &Value)> = arguments.iter().filter(|(k, _)| !k.as_str().starts_with("x-")).collect();
    let any = arguments.get(&Name::from("x-match")) == Some(&text("any"));
    match pairs.get(usize::from(variant) % pairs.len().max(1)) {
        Some((k, v)) if any => [((*k).clone(), (*v).clone())].into_iter().collect(),
        _ => pairs.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

/// The binding key and arguments that choice `i` means for an exchange of type `kind`.
fn binding(kind: &ExchangeKind, i: u8) -> (Name, Table) {
    let pick = |pool: &[&str]| Name::from(pool[usize::from(i) % pool.len()]);
    match kind {
        ExchangeKind::Topic => (pick(&TOPIC_PATTERNS), Table::new()),
        ExchangeKind::Fanout => (pick(&FANOUT_KEYS), Table::new()),
        ExchangeKind::Headers => (Name::default(), header_binding(i)),
        _ => (pick(&DIRECT_KEYS), Table::new()),
    }
}

/// What the compiler knows of a channel since it was last opened.
#[derive(Clone, Copy, Debug, Default)]
struct Life {
    /// The prefetch count set by `basic.qos` (0: none).
    qos: u16,
    /// Consumers started on it.
    consumers: usize,
}

/// The state the compiler rolls back when it leaves an action out.
#[derive(Clone)]
struct State {
    rabbit: Broker,
    /// The `spec` model run alongside, and the `spec` validator fed with what the `rabbitmq`
    /// model did.
    spec: Option<(Broker, Validator)>,
    life: BTreeMap<ChanRef, Life>,
    /// Runs of delivery tags (first, last) whose messages the broker may number in another
    /// order than the model did: one step delivered them to the channel from several queues,
    /// and queues dispatch independently. A settlement must not single one of them out.
    unsure: BTreeMap<ChanRef, Vec<(u64, u64)>>,
    bodies: usize,
    tags: usize,
}

struct Compiler<'a> {
    plan: &'a Plan,
    config: &'a GenConfig,
    state: State,
    steps: Vec<StepKind>,
}

/// The closes among `events`: (connection closes, channel closes with their codes).
fn closes(events: &[Event]) -> (usize, Vec<(ChanRef, amqp_model::ReplyCode)>) {
    let mut conns = 0;
    let mut chans = Vec::new();
    for e in events {
        match e {
            Event::ConnectionClosed { .. } => conns += 1,
            Event::ChannelClosed { ch, code, .. } => chans.push((*ch, *code)),
            _ => {}
        }
    }
    (conns, chans)
}

/// Apply a command and the broker's own steps after it.
fn run(broker: &mut Broker, command: &Command) -> Option<Vec<Event>> {
    let mut events = broker.apply(command).ok()?;
    events.extend(broker.settle_internal());
    Some(events)
}

impl Compiler<'_> {
    fn queue_name(&self, i: u8) -> Name {
        Name::from(format!("q{}", usize::from(i) % usize::from(self.config.queues.max(1)) + 1))
    }

    fn exchange_index(&self, i: u8) -> usize {
        usize::from(i) % self.plan.kinds.len().max(1)
    }

    fn exchange_name(&self, i: u8) -> Name {
        if self.config.without.iter().any(|k| k == "exchange-declare") {
            Name::from(format!("amq.{}", self.kind(i).as_str()))
        } else {
            Name::from(format!("x{}", self.exchange_index(i) + 1))
        }
    }

    fn kind(&self, i: u8) -> ExchangeKind {
        self.plan.kinds.get(self.exchange_index(i)).cloned().unwrap_or(ExchangeKind::Direct)
    }

    fn chan_ref(&self, slot: Slot) -> ChanRef {
        let conns = self.config.connections.max(1);
        let chans = self.config.channels.max(1);
        ChanRef::new(u16::from(slot.conn % conns) + 1, u16::from(slot.chan % chans) + 1)
    }

    /// Send `command` to the models: false (and nothing changed but possibly `rabbit`, which the
    /// caller rolls back) when it is not one a generated trace may hold.
    fn send(&mut self, command: Command, may_close_channel: bool) -> bool {
        let Some(events) = run(&mut self.state.rabbit, &command) else { return false };
        let (conn_closes, chan_closes) = closes(&events);
        if conn_closes > 0 || (!chan_closes.is_empty() && !may_close_channel) {
            return false;
        }
        if let Some((spec, validator)) = &mut self.state.spec {
            let Some(spec_events) = run(spec, &command) else { return false };
            if closes(&spec_events) != (conn_closes, chan_closes) {
                return false;
            }
            let observed: Vec<Event> = events.iter().map(blank).collect();
            if validator.command(&command, &observed).is_err() {
                return false;
            }
            // A wait here (and the runner's final one) must pass too.
            let mut waited = validator.clone();
            if waited.wait(&[]).is_err() {
                return false;
            }
        }
        self.note_unsure(&events);
        self.steps.push(StepKind::Command { command, capture: None });
        true
    }

    /// Record the runs of tags that `events` gave a channel from more than one queue.
    fn note_unsure(&mut self, events: &[Event]) {
        let mut given: BTreeMap<ChanRef, Vec<(u64, &Name)>> = BTreeMap::new();
        for e in events {
            match e {
                Event::Deliver { ch, delivery_tag, queue, .. } => {
                    given.entry(*ch).or_default().push((*delivery_tag, queue))
                }
                Event::Reply { ch, reply: amqp_model::Reply::GetOk { delivery_tag, queue, .. } } => {
                    given.entry(*ch).or_default().push((*delivery_tag, queue))
                }
                Event::ChannelOpenOk { ch } => {
                    self.state.unsure.remove(ch);
                }
                _ => {}
            }
        }
        for (ch, tags) in given {
            if tags.iter().any(|(_, q)| *q != tags[0].1) {
                let first = tags.iter().map(|(t, _)| *t).min().unwrap_or(0);
                let last = tags.iter().map(|(t, _)| *t).max().unwrap_or(0);
                self.state.unsure.entry(ch).or_default().push((first, last));
            }
        }
    }

    fn open(&mut self, slot: Slot) -> Option<ChanRef> {
        let ch = self.chan_ref(slot);
        if !self.state.rabbit.connections.contains_key(&ch.conn)
            && !self.send(Command::ConnectionOpen { conn: ch.conn }, false)
        {
            return None;
        }
        if self.state.rabbit.channel(ch).is_none() {
            if !self.send(Command::ChannelOpen { ch }, false) {
                return None;
            }
            self.state.life.insert(ch, Life::default());
        }
        Some(ch)
    }

    /// The channel of `slot` when it is open now (without opening it).
    fn open_now(&self, slot: Slot) -> Option<ChanRef> {
        let ch = self.chan_ref(slot);
        self.state.rabbit.channel(ch).map(|_| ch)
    }

    /// The open channels, in order.
    fn open_channels(&self) -> Vec<(ChanRef, &amqp_model::state::Channel)> {
        let connections = self.state.rabbit.connections.iter();
        connections
            .flat_map(|(conn, c)| c.channels.iter().map(|(n, ch)| (ChanRef { conn: *conn, channel: *n }, &**ch)))
            .collect()
    }

    /// The `i`-th (modulo their number) of the channels that hold unacknowledged deliveries.
    fn holder(&self, i: u8) -> Option<ChanRef> {
        let holders: Vec<ChanRef> =
            self.open_channels().into_iter().filter(|(_, c)| !c.unacked.is_empty()).map(|(ch, _)| ch).collect();
        holders.get(usize::from(i) % holders.len().max(1)).copied()
    }

    fn exchange(&mut self, ch: ChanRef, i: u8) -> Option<Name> {
        let name = self.exchange_name(i);
        if !self.state.rabbit.exchanges.contains_key(&name) {
            let declare = Command::ExchangeDeclare {
                ch,
                exchange: name.clone(),
                kind: self.kind(i),
                passive: false,
                durable: false,
                auto_delete: false,
                internal: false,
                arguments: Table::new(),
            };
            if !self.send(declare, false) {
                return None;
            }
        }
        Some(name)
    }

    /// The declare arguments of queue `i`: none, but under [`GenConfig::lifetime`] for `q2` (a
    /// 200 ms TTL, a length limit of 2, `x1` as its dead-letter exchange) and `q3` (a length limit
    /// of 1 that refuses publishes), and under [`GenConfig::consumers`] for `q4` (a single
    /// active consumer), and under [`GenConfig::quorum`] for `q1` (a quorum queue with a delivery
    /// limit of 2).
    fn queue_arguments(&self, i: u8) -> Table {
        let mut t = Table::new();
        if self.quorum(i) {
            t.insert("x-queue-type".into(), Value::Str("quorum".into()));
            t.insert("x-delivery-limit".into(), Value::Int(2));
        }
        if self.config.consumers && i == 3 {
            t.insert("x-single-active-consumer".into(), Value::Bool(true));
        }
        if !self.config.lifetime {
            return t;
        }
        match i {
            1 => {
                t.insert("x-message-ttl".into(), Value::Int(200));
                t.insert("x-max-length".into(), Value::Int(2));
                t.insert("x-dead-letter-exchange".into(), Value::Str(self.exchange_name(0)));
            }
            2 => {
                t.insert("x-max-length".into(), Value::Int(1));
                t.insert("x-overflow".into(), Value::Str("reject-publish".into()));
            }
            _ => {}
        }
        t
    }

    /// Whether queue `i` is the quorum queue of [`GenConfig::quorum`] (declared durable).
    fn quorum(&self, i: u8) -> bool {
        self.config.quorum && i == 0
    }

    fn queue(&mut self, ch: ChanRef, i: u8) -> Option<Name> {
        let name = self.queue_name(i);
        if !self.state.rabbit.queues.contains_key(&name) {
            let declare = Command::QueueDeclare {
                ch,
                queue: name.clone(),
                passive: false,
                durable: self.quorum(i),
                exclusive: false,
                auto_delete: false,
                arguments: self.queue_arguments(i),
            };
            if !self.send(declare, false) {
                return None;
            }
        }
        Some(name)
    }

    /// The routing key and headers `route` chooses for a publish to `exchange`.
    fn route(&self, exchange: &Name, route: Route) -> (Name, Table) {
        // Headers only matter (and are only sent) when some exchange routes on them.
        let headers_used = self.plan.kinds.contains(&ExchangeKind::Headers);
        let pool = |key: u8, headers: u8| {
            let headers = if headers_used { publish_headers(headers) } else { Table::new() };
            (Name::from(PUBLISH_KEYS[usize::from(key) % PUBLISH_KEYS.len()]), headers)
        };
        let (binding, variant) = match route {
            Route::Pool { key, headers } => return pool(key, headers),
            Route::Hit { binding, variant } => (binding, variant),
        };
        let bindings: Vec<_> = self.state.rabbit.bindings.iter().filter(|b| b.source == *exchange).collect();
        let kind = self.state.rabbit.exchanges.get(exchange).map(|x| x.kind.clone());
        let Some(b) = bindings.get(usize::from(binding) % bindings.len().max(1)) else { return pool(variant, 0) };
        match kind {
            Some(ExchangeKind::Topic) => (instantiate(b.key.as_str(), variant), Table::new()),
            Some(ExchangeKind::Headers) => (Name::default(), matching_headers(&b.arguments, variant)),
            Some(ExchangeKind::Fanout) => pool(variant, 0),
            _ => (b.key.clone(), Table::new()),
        }
    }

    /// The delivery tag `pick` names on `ch`, and whether the broker must refuse it. Nothing
    /// when the channel has no outstanding delivery: a bad tag is a near miss of good ones.
    fn tag(&self, ch: ChanRef, pick: TagPick, multiple: bool) -> Option<(u64, bool)> {
        let chan = self.state.rabbit.channel(ch)?;
        if chan.unacked.is_empty() {
            return None;
        }
        match pick {
            TagPick::Outstanding(i) => {
                // A tag of an unsure run may stand for another message on the broker; with
                // `multiple`, a sure tag covers unsure runs whole.
                let unsure = self.state.unsure.get(&ch).map(Vec::as_slice).unwrap_or_default();
                let sure = |t: &u64| !unsure.iter().any(|(first, last)| (first..=last).contains(&t));
                let tags: Vec<u64> = chan.unacked.keys().copied().filter(sure).collect();
                (!tags.is_empty()).then(|| (tags[usize::from(i) % tags.len()], false))
            }
            // With `multiple`, 0 is everything outstanding.
            TagPick::Zero if multiple => Some((0, false)),
            TagPick::Zero => Some((0, true)),
            TagPick::Unknown => Some((chan.next_tag, true)),
        }
    }

    /// Compile one action; false when it is to be left out.
    fn action(&mut self, action: &Action) -> bool {
        match *action {
            Action::Declare { slot, queue } => {
                let Some(ch) = self.open(slot) else { return false };
                self.queue(ch, queue).is_some()
            }
            Action::Bind { slot, queue, exchange, key } => {
                let Some(ch) = self.open(slot) else { return false };
                let Some(x) = self.exchange(ch, exchange) else { return false };
                let Some(q) = self.queue(ch, queue) else { return false };
                let (routing_key, arguments) = binding(&self.kind(exchange), key);
                self.send(Command::QueueBind { ch, queue: q, exchange: x, routing_key, arguments }, false)
            }
            Action::ExchangeBind { slot, key } => {
                if self.plan.kinds.len() < 2 {
                    return false;
                }
                let Some(ch) = self.open(slot) else { return false };
                let Some(source) = self.exchange(ch, 0) else { return false };
                let Some(destination) = self.exchange(ch, 1) else { return false };
                let (routing_key, arguments) = binding(&self.kind(0), key);
                self.send(Command::ExchangeBind { ch, destination, source, routing_key, arguments }, false)
            }
            Action::Publish { slot, exchange, route, mandatory } => {
                let Some(ch) = self.open(slot) else { return false };
                let (exchange, (routing_key, headers)) = match exchange {
                    Some(x) => {
                        let Some(x) = self.exchange(ch, x) else { return false };
                        let key = self.route(&x, route);
                        (x, key)
                    }
                    // The queue names, and one more that is never declared.
                    None => {
                        let i = match route {
                            Route::Pool { key, .. } => key,
                            Route::Hit { binding, .. } => binding,
                        };
                        let n = usize::from(i) % (usize::from(self.config.queues.max(1)) + 1) + 1;
                        (Name::default(), (Name::from(format!("q{n}")), Table::new()))
                    }
                };
                self.state.bodies += 1;
                let mut content =
                    Content { body: Name::from(format!("m{}", self.state.bodies)), headers, ..Content::default() };
                if self.config.lifetime && self.state.bodies.is_multiple_of(3) {
                    content.properties.set("expiration", Some("100".into()));
                }
                self.send(Command::BasicPublish { ch, exchange, routing_key, mandatory, content }, false)
            }
            Action::Consume { slot, queue, no_ack, prefetch } => {
                let Some(ch) = self.open(slot) else { return false };
                let life = self.state.life.get(&ch).copied().unwrap_or_default();
                if life.qos > 0 && life.consumers > 0 {
                    return false;
                }
                let Some(q) = self.queue(ch, queue) else { return false };
                if let Some(n) = prefetch.filter(|_| life.consumers == 0) {
                    if !self.send(Command::BasicQos { ch, prefetch_count: n, global: false }, false) {
                        return false;
                    }
                    self.state.life.entry(ch).or_default().qos = n;
                }
                self.state.tags += 1;
                let consumer_tag = Name::from(format!("t{}", self.state.tags));
                // Under `consumers`, priorities 0, 5 and 10 in turn.
                let mut arguments = Table::new();
                if self.config.consumers {
                    arguments.insert("x-priority".into(), Value::Int((self.state.tags % 3) as i64 * 5));
                }
                let consume = Command::BasicConsume { ch, queue: q, consumer_tag, no_ack, exclusive: false, arguments };
                if !self.send(consume, false) {
                    return false;
                }
                self.state.life.entry(ch).or_default().consumers += 1;
                true
            }
            Action::Qos { slot, prefetch } => {
                let Some(ch) = self.open(slot) else { return false };
                if self.state.life.get(&ch).is_some_and(|l| l.consumers > 0) {
                    return false;
                }
                if !self.send(Command::BasicQos { ch, prefetch_count: prefetch, global: false }, false) {
                    return false;
                }
                self.state.life.entry(ch).or_default().qos = prefetch;
                true
            }
            Action::Get { slot, queue, no_ack } => {
                let Some(ch) = self.open(slot) else { return false };
                let Some(q) = self.queue(ch, queue) else { return false };
                self.send(Command::BasicGet { ch, queue: q, no_ack }, false)
            }
            Action::Ack { holder, tag, multiple } => {
                let Some(ch) = self.holder(holder) else { return false };
                let Some((delivery_tag, refused)) = self.tag(ch, tag, multiple) else { return false };
                self.send(Command::BasicAck { ch, delivery_tag, multiple }, refused)
            }
            Action::Nack { holder, tag, multiple, requeue } => {
                let Some(ch) = self.holder(holder) else { return false };
                let Some((delivery_tag, refused)) = self.tag(ch, tag, multiple) else { return false };
                self.send(Command::BasicNack { ch, delivery_tag, multiple, requeue }, refused)
            }
            Action::Reject { holder, tag, requeue } => {
                let Some(ch) = self.holder(holder) else { return false };
                let Some((delivery_tag, refused)) = self.tag(ch, tag, false) else { return false };
                self.send(Command::BasicReject { ch, delivery_tag, requeue }, refused)
            }
            Action::Cancel { consumer } => {
                let consumers: Vec<(ChanRef, Name)> = self
                    .open_channels()
                    .into_iter()
                    .flat_map(|(ch, c)| c.consumers.keys().map(move |tag| (ch, tag.clone())))
                    .collect();
                let Some((ch, consumer_tag)) = consumers.get(usize::from(consumer) % consumers.len().max(1)).cloned()
                else {
                    return false;
                };
                self.send(Command::BasicCancel { ch, consumer_tag }, false)
            }
            Action::CloseChannel { slot } => {
                let Some(ch) = self.open_now(slot) else { return false };
                self.send(Command::ChannelClose { ch }, false)
            }
            Action::CloseConnection { conn } => {
                let conn = ConnId(u16::from(conn % self.config.connections.max(1)) + 1);
                if !self.state.rabbit.connections.contains_key(&conn) {
                    return false;
                }
                self.send(Command::ConnectionClose { conn }, false)
            }
            Action::Purge { slot, queue } => {
                let q = self.queue_name(queue);
                if !self.state.rabbit.queues.contains_key(&q) {
                    return false;
                }
                let Some(ch) = self.open(slot) else { return false };
                self.send(Command::QueuePurge { ch, queue: q }, false)
            }
            Action::Count { slot, queue } => {
                let q = self.queue_name(queue);
                if !self.state.rabbit.queues.contains_key(&q) {
                    return false;
                }
                let Some(ch) = self.open(slot) else { return false };
                let declare = Command::QueueDeclare {
                    ch,
                    queue: q,
                    passive: true,
                    durable: false,
                    exclusive: false,
                    auto_delete: false,
                    arguments: Table::new(),
                };
                self.send(declare, false)
            }
            Action::Unbind { slot, binding } => {
                let bindings: Vec<_> =
                    self.state.rabbit.bindings.iter().filter(|b| matches!(b.dest, Dest::Queue(_))).cloned().collect();
                if bindings.is_empty() {
                    return false;
                }
                let b = &bindings[usize::from(binding) % bindings.len()];
                let Dest::Queue(queue) = b.dest.clone() else { return false };
                let Some(ch) = self.open(slot) else { return false };
                let unbind = Command::QueueUnbind {
                    ch,
                    queue,
                    exchange: b.source.clone(),
                    routing_key: b.key.clone(),
                    arguments: b.arguments.clone(),
                };
                self.send(unbind, false)
            }
            Action::DeleteQueue { slot, queue } => {
                let q = self.queue_name(queue);
                if self.state.rabbit.queues.get(&q).is_none_or(|q| q.consumer_count() > 0) {
                    return false;
                }
                let Some(ch) = self.open(slot) else { return false };
                self.send(Command::QueueDelete { ch, queue: q, if_unused: false, if_empty: false }, false)
            }
            Action::Pass { long } => self.send(Command::Pass { ms: if long { 400 } else { 50 } }, false),
        }
    }
}

/// Compile `plan` to a trace titled `title` (see the module documentation for what is left
/// out). The trace's line numbers are those of its written form, so that it equals
/// `trace::parse(&trace::write(&it))`.
pub fn compile(plan: &Plan, config: &GenConfig, title: &str) -> Trace {
    // Exchange types left out become the first type left (direct when all are).
    let allowed = [ExchangeKind::Direct, ExchangeKind::Fanout, ExchangeKind::Topic, ExchangeKind::Headers]
        .into_iter()
        .find(|k| !config.without.iter().any(|w| w == k.as_str()))
        .unwrap_or(ExchangeKind::Direct);
    let kinds = plan
        .kinds
        .iter()
        .map(|k| if config.without.iter().any(|w| w == k.as_str()) { allowed.clone() } else { k.clone() })
        .collect();
    let plan = &Plan { kinds, actions: plan.actions.clone() };
    let rabbit = Broker::new(Profile::rabbitmq());
    let spec = config.spec_compatible.then(|| (Broker::new(Profile::spec()), Validator::new(Profile::spec())));
    let state = State { rabbit, spec, life: BTreeMap::new(), unsure: BTreeMap::new(), bodies: 0, tags: 0 };
    let mut compiler = Compiler { plan, config, state, steps: Vec::new() };
    // Bindings between the shared amq.* exchanges would outlive the trace: no exchange-bind.
    let mut without = config.without.clone();
    if without.iter().any(|k| k == "exchange-declare") {
        without.push("exchange-bind".into());
    }
    for action in plan.actions.iter().filter(|a| !a.is_any_of(&without)) {
        let (saved, len) = (compiler.state.clone(), compiler.steps.len());
        if !compiler.action(action) {
            compiler.state = saved;
            compiler.steps.truncate(len);
        }
    }
    let steps = compiler.steps.into_iter().map(|kind| Step { line: 0, kind, pipelined: false }).collect();
    let profile = (!config.spec_compatible).then_some(amqp_model::ProfileName::Rabbitmq);
    let draft = Trace { title: Some(title.to_string()), cites: Vec::new(), recommends: None, profile, steps };
    trace::parse(&trace::write(&draft), "generated").expect("a compiled trace is written in the trace syntax")
}
