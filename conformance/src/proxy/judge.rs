//! Judging proxied sessions against the model as they happen, all connections sharing one model
//! of the broker.
//!
//! The proxy sees each client method before the broker does and each answer after the broker
//! sent it; methods of different connections may reach the broker in either order within those
//! windows. So the judge keeps every hypothesis consistent with what it saw, as a
//! linearizability checker does: a model state, how far it has taken each channel's methods
//! (`taken`: the methods themselves are in one log all hypotheses share, [`Log`]), and the events
//! the model has produced that have not been seen yet (`owed`, per channel: on their way). When
//! the broker's next event on a channel arrives:
//!
//! - if something is owed on that channel, the event must be the first of it (a channel's
//!   confirms are in order among themselves, but may come after later answers: `confirm time
//!   guarantees`);
//! - otherwise the broker must have taken, since, some pending methods (each channel's in the
//!   order they were sent; a connection's close after its channels' methods) and made some of
//!   its own steps (deliveries, silent deletions), in any order, until the first event they make
//!   on that channel is this one; what they make on other channels is owed there.
//!
//! Hypotheses that cannot explain the event are dropped; when none is left, the broker has left
//! every behaviour the model allows for any order the proxy could not tell apart: a divergence,
//! on the channel and method where it happened. A close that the model requires because the
//! client broke the protocol (a tag it never got, a channel that is not open) is a client error,
//! reported apart. A method sent with `nowait` has its reply left out of what the model owes.
//! A channel the broker closes stays closing until the client's `close-ok` (what the client sent
//! after it, before it read the close, the broker discards); a method that reaches the broker
//! after it closed the connection is discarded too.
//!
//! The search is bounded ([`DEPTH`] actions and [`BUDGET`] points per event, [`HYPOTHESES`]
//! hypotheses): when a bound
//! cuts it, the judge says it cannot judge further rather than report a divergence it has not
//! shown.

use crate::validate::{same, stream, Stream};
use amqp_model::event::Reply;
use amqp_model::{Broker, ChanRef, Command, ConnId, Event, Internal, Method, Name, Profile, ReplyCode};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;

/// At most this many of the broker's actions (methods taken, own steps) explain one event.
pub const DEPTH: usize = 12;
/// At most this many hypotheses are kept.
pub const HYPOTHESES: usize = 4096;
/// At most this many points are explored to explain one event from one hypothesis.
pub const BUDGET: usize = 20_000;

/// What the client sent that the broker takes in order on its channel: a method, or the
/// `close-ok` that answers the broker's close of the channel (which frees it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Act {
    Command {
        command: Command,
        nowait: bool,
    },
    CloseOk(ChanRef),
    /// A method the model leaves out, which the broker answers by closing the connection with
    /// `code`, naming `method`, as RabbitMQ 3.10.8 does ([`amqp_wire::Request::Refuse`]).
    Refused {
        conn: ConnId,
        code: ReplyCode,
        method: Option<Method>,
    },
}

/// A channel (0: the connection itself): where the client's acts are taken in order.
type Key = (ConnId, u16);

/// One act in the log, numbered in the order the proxy forwarded it.
#[derive(Debug)]
struct Entry {
    seq: u64,
    act: Act,
}

/// One channel's acts, from the first that some hypothesis has not taken (`dropped` before it).
#[derive(Debug, Default)]
struct Track {
    entries: VecDeque<Entry>,
    dropped: usize,
}

/// Everything the client sent that some hypothesis has not taken yet, per channel: shared by
/// the hypotheses, each of which says how many of each channel's acts it has taken. A hypothesis
/// is then cheap to copy however many publishes wait to be taken.
#[derive(Debug, Default)]
struct Log {
    tracks: BTreeMap<Key, Track>,
    seq: u64,
}

impl Log {
    fn push(&mut self, key: Key, act: Act) {
        self.seq += 1;
        self.tracks.entry(key).or_default().entries.push_back(Entry { seq: self.seq, act });
    }

    /// The act `h` takes next on `key`.
    fn next(&self, h: &Hypothesis, key: Key) -> Option<&Entry> {
        let t = self.tracks.get(&key)?;
        let taken = h.taken.get(&key).copied().unwrap_or(0);
        t.entries.get(taken.checked_sub(t.dropped)?)
    }

    /// Forget the acts every hypothesis has taken, and the channels with nothing left.
    fn compact(&mut self, hypotheses: &mut [Hypothesis]) {
        let mut empty = Vec::new();
        for (key, t) in &mut self.tracks {
            let least = hypotheses.iter().map(|h| h.taken.get(key).copied().unwrap_or(0)).min().unwrap_or(0);
            while t.dropped < least && t.entries.pop_front().is_some() {
                t.dropped += 1;
            }
            if t.entries.is_empty() {
                empty.push(*key);
            }
        }
        for key in empty {
            // Every hypothesis has taken all of it: the channel starts afresh.
            self.tracks.remove(&key);
            for h in hypotheses.iter_mut() {
                h.taken.remove(&key);
            }
        }
    }
}

/// Where events come in order: a channel (or the connection itself), and on a channel its
/// confirms apart (`true`), since nothing is promised about how soon a message is confirmed
/// (`confirm time guarantees`): a confirm may come after answers to later methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Lane(Stream, bool);

fn lane(e: &Event) -> Lane {
    Lane(stream(e), matches!(e, Event::Confirm { .. }))
}

/// Hypotheses already met (whole model states are hashed: a fast hasher, not SipHash).
type Seen = HashSet<Hypothesis, ahash::RandomState>;

/// One way the broker may have got here.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Hypothesis {
    broker: Broker,
    /// How many of each channel's acts in the [`Log`] the broker has taken.
    taken: BTreeMap<Key, usize>,
    owed: BTreeMap<Lane, VecDeque<Event>>,
    /// Observed generated name -> the model's.
    names: BTreeMap<Name, Name>,
}

/// What the judge found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The broker did what no order of the methods the proxy saw allows.
    Divergence {
        /// The channel (channel 0: the connection) the event came on.
        at: String,
        /// The command the client sent last there, if any.
        after: Option<Command>,
        /// What the broker did.
        observed: Event,
        /// Some of what the model allowed there instead.
        allowed: Vec<Event>,
    },
    /// The client broke the protocol, and the broker said so as the model requires.
    ClientError {
        /// The channel or connection.
        at: String,
        /// The command that broke it.
        after: Option<Command>,
        /// The broker's close.
        close: Event,
    },
    /// The judge stopped: it cannot tell without searching further than its bounds.
    Stopped(String),
}

impl Finding {
    /// The method of the command the finding came after.
    pub fn method(&self) -> Option<Method> {
        match self {
            Finding::Divergence { after, .. } | Finding::ClientError { after, .. } => after.as_ref()?.method(),
            Finding::Stopped(_) => None,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let after = |c: &Option<Command>| {
            c.as_ref().map_or(String::new(), |c| format!(" after `{}`", crate::trace::write_command(c)))
        };
        match self {
            Finding::Divergence { at, after: c, observed, allowed } => {
                write!(f, "divergence on {at}{}: the broker sent `{}`", after(c), crate::trace::write_event(observed))?;
                if allowed.is_empty() {
                    write!(f, "; the model allowed nothing there yet")
                } else {
                    let allowed: Vec<String> =
                        allowed.iter().map(|e| format!("`{}`", crate::trace::write_event(e))).collect();
                    write!(f, "; the model allowed {}", allowed.join(" or "))
                }
            }
            Finding::ClientError { at, after: c, close } => write!(
                f,
                "client error on {at}{}: the broker closed with `{}`, as it must",
                after(c),
                crate::trace::write_event(close)
            ),
            Finding::Stopped(why) => write!(f, "judging stopped: {why}"),
        }
    }
}

/// What the judge was given, in order: kept so that a divergence found by the quick search is
/// confirmed by the exhaustive one from the start ([`Judge::event`]).
#[derive(Clone, Debug)]
enum Input {
    At(u64),
    Command(Command, bool),
    Refused(ChanRef, ReplyCode, Option<Method>, String),
    CloseOk(ChanRef),
    Event(Event),
    Ended(ConnId),
}

/// At most this many inputs are kept to confirm a divergence with; past them, a divergence the
/// quick search finds stops the judging instead (it cannot be confirmed).
pub const TRANSCRIPT: usize = 4_000_000;

/// The judge of a proxied run.
#[derive(Debug)]
pub struct Judge {
    profile: Profile,
    hypotheses: Vec<Hypothesis>,
    log: Log,
    /// Search every order (the confirming judge), not only those with the fewest visible actions.
    exhaustive: bool,
    /// Everything given so far, to confirm a divergence with; None past [`TRANSCRIPT`] inputs.
    transcript: Option<Vec<Input>>,
    /// The command each client sent last on each channel (0: the connection), for reports.
    last: BTreeMap<(ConnId, u16), Command>,
    stopped: bool,
    /// What was found, in order.
    pub findings: Vec<Finding>,
}

fn at(s: &Stream) -> String {
    match s {
        Stream::Connection(c) => format!("c{}", c.0),
        Stream::Channel(ch) | Stream::Cancel(ch) => format!("c{}.{}", ch.conn.0, ch.channel),
    }
}

fn order_key(cmd: &Command) -> (ConnId, u16) {
    match cmd.channel() {
        Some(ch) => (ch.conn, ch.channel),
        None => (cmd.connection().unwrap_or(ConnId(0)), 0),
    }
}

/// Whether a close the model requires is the client's fault: a method on a channel that is not
/// open, an unexpected frame or method, or a tag the client never got.
fn client_fault(e: &Event) -> bool {
    match e {
        Event::ChannelClosed { code, method, .. } => {
            matches!(code, ReplyCode::ChannelError | ReplyCode::CommandInvalid | ReplyCode::UnexpectedFrame)
                || (*code == ReplyCode::PreconditionFailed
                    && matches!(method, Method::BasicAck | Method::BasicNack | Method::BasicReject))
        }
        Event::ConnectionClosed { code, .. } => matches!(
            code,
            ReplyCode::ChannelError | ReplyCode::CommandInvalid | ReplyCode::UnexpectedFrame | ReplyCode::FrameError
        ),
        _ => false,
    }
}

impl Judge {
    /// A judge of a fresh broker under `profile`.
    pub fn new(profile: Profile) -> Judge {
        let first = Hypothesis {
            broker: Broker::new(profile),
            taken: BTreeMap::new(),
            owed: BTreeMap::new(),
            names: BTreeMap::new(),
        };
        Judge {
            profile,
            hypotheses: vec![first],
            log: Log::default(),
            exhaustive: false,
            transcript: Some(Vec::new()),
            last: BTreeMap::new(),
            stopped: false,
            findings: Vec::new(),
        }
    }

    fn keep(&mut self, input: Input) {
        if let Some(t) = &mut self.transcript {
            if t.len() < TRANSCRIPT {
                t.push(input);
            } else {
                self.transcript = None;
            }
        }
    }

    /// Give the judge `input` again (the confirming judge).
    fn feed(&mut self, input: &Input) {
        match input {
            Input::At(ms) => self.at(*ms),
            Input::Command(c, nowait) => self.command(c, *nowait),
            Input::Refused(ch, code, method, note) => self.refused(*ch, *code, *method, note),
            Input::CloseOk(ch) => self.close_ok(*ch),
            Input::Event(e) => self.event(e),
            Input::Ended(conn) => self.ended(*conn),
        }
    }

    /// The quick search left no hypothesis for `event`: search every order from the start, on
    /// the same inputs. `Ok(None)`: the divergence holds (the confirming judge's finding);
    /// `Ok(Some(judge))`: it does not, and the confirming judge's hypotheses go on; `Err(why)`:
    /// it cannot be confirmed.
    fn confirm(&self, event: &Event) -> Result<Option<Judge>, String> {
        let Some(transcript) = &self.transcript else {
            return Err(format!("more than {TRANSCRIPT} inputs to confirm it with"));
        };
        let mut full = Judge::new(self.profile);
        full.exhaustive = true;
        full.transcript = None;
        for input in transcript {
            full.feed(input);
            if full.stopped {
                return Err(full.stopped().unwrap_or_default());
            }
        }
        full.event(event);
        match full.findings.iter().find(|f| matches!(f, Finding::Divergence { .. } | Finding::Stopped(_))) {
            Some(Finding::Divergence { .. }) => Ok(None),
            Some(_) => Err(full.stopped().unwrap_or_default()),
            None => Ok(Some(full)),
        }
    }

    /// Why judging stopped, if it did.
    fn stopped(&self) -> Option<String> {
        self.findings.iter().rev().find_map(|f| match f {
            Finding::Stopped(why) => Some(why.clone()),
            _ => None,
        })
    }

    /// The profile it judges under.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Whether the judge is still judging.
    pub fn judging(&self) -> bool {
        !self.stopped
    }

    /// How many hypotheses are kept.
    pub fn hypotheses(&self) -> usize {
        self.hypotheses.len()
    }

    /// Stop judging, saying why (what the judge can no longer see).
    pub fn stop(&mut self, why: String) {
        if !self.stopped {
            self.stopped = true;
            self.findings.push(Finding::Stopped(why));
        }
    }

    /// The proxy's clock reads `ms` (since it started): whatever the broker did so far, it did
    /// by then (a message's time to live may have run out by then, not later).
    pub fn at(&mut self, ms: u64) {
        self.keep(Input::At(ms));
        for h in &mut self.hypotheses {
            h.broker.window(0, ms);
        }
    }

    /// The proxy forwarded `command` to the broker (`nowait`: the client asked for no reply).
    pub fn command(&mut self, command: &Command, nowait: bool) {
        if self.stopped {
            return;
        }
        if command.method().is_some() {
            self.last.insert(order_key(command), command.clone());
        }
        self.keep(Input::Command(command.clone(), nowait));
        self.log.push(order_key(command), Act::Command { command: command.clone(), nowait });
    }

    /// The proxy forwarded a method on `ch` that the model leaves out and that RabbitMQ 3.10.8
    /// answers with a connection close (`code`, naming `method`; `note` says what it was). Under
    /// `rabbitmq` the broker must do so; under `spec` a broker may honour what the model leaves
    /// out (a `channel.flow` that pauses deliveries), so the judge stops, saying why; a server's
    /// method sent by the client (503) is refused under both.
    pub fn refused(&mut self, ch: ChanRef, code: ReplyCode, method: Option<Method>, note: &str) {
        if self.stopped {
            return;
        }
        self.keep(Input::Refused(ch, code, method, note.to_string()));
        let rabbitmq =
            self.hypotheses.first().is_some_and(|h| h.broker.profile.name == amqp_model::ProfileName::Rabbitmq);
        if !rabbitmq && code != ReplyCode::CommandInvalid {
            self.stop(format!("{note}, which the model cannot judge under spec"));
            return;
        }
        self.log.push((ch.conn, ch.channel), Act::Refused { conn: ch.conn, code, method });
    }

    /// The proxy forwarded the client's `channel.close-ok` on `ch`, the answer to the broker's
    /// close: the channel is free again once the broker takes it.
    pub fn close_ok(&mut self, ch: ChanRef) {
        if !self.stopped {
            self.keep(Input::CloseOk(ch));
            self.log.push((ch.conn, ch.channel), Act::CloseOk(ch));
        }
    }

    /// The proxy read `event` from the broker.
    pub fn event(&mut self, event: &Event) {
        if self.stopped {
            return;
        }
        let s = lane(event);
        if let [h] = &mut self.hypotheses[..] {
            if !self.exhaustive && answered(&self.log, h, event, s) {
                settle(&self.log, h);
                let next = std::mem::take(&mut self.hypotheses);
                return self.accept(event, s, next);
            }
        }
        let mut next: Vec<Hypothesis> = Vec::new();
        let mut seen: Seen = Seen::default();
        let mut allowed: Vec<Event> = Vec::new();
        let mut cut = false;
        for h in std::mem::take(&mut self.hypotheses) {
            let (found, first, truncated) = explain(&self.log, &h, event, s, !self.exhaustive);
            cut |= truncated;
            for e in first {
                if allowed.len() < 4 && !allowed.contains(&e) {
                    allowed.push(e);
                }
            }
            for mut f in found {
                settle(&self.log, &mut f);
                if seen.insert(f.clone()) {
                    next.push(f);
                }
            }
        }
        let after = self.last.get(&lane_key(&s.0)).cloned();
        if next.is_empty() && !cut && !self.exhaustive {
            // The quick search keeps only the orders with the fewest visible actions: before
            // saying the broker diverged, search them all.
            match self.confirm(event) {
                Ok(None) => {}
                Ok(Some(full)) => {
                    self.log = full.log;
                    return self.accept(event, s, full.hypotheses);
                }
                Err(why) => {
                    let event = crate::trace::write_event(event);
                    self.stop(format!("`{event}` on {} may be a divergence, not confirmed: {why}", at(&s.0)));
                    return;
                }
            }
        }
        if next.is_empty() {
            if cut {
                self.stop(format!(
                    "explaining `{}` on {} needs more than {DEPTH} broker actions or {BUDGET} points searched",
                    crate::trace::write_event(event),
                    at(&s.0)
                ));
            } else {
                self.findings.push(Finding::Divergence { at: at(&s.0), after, observed: event.clone(), allowed });
                self.stop(format!("after the divergence on {}", at(&s.0)));
            }
            return;
        }
        self.accept(event, s, next);
    }

    /// `event` (on `s`) is explained: `next` are the hypotheses that follow.
    fn accept(&mut self, event: &Event, s: Lane, mut next: Vec<Hypothesis>) {
        if client_fault(event) {
            let after = self.last.get(&lane_key(&s.0)).cloned();
            self.findings.push(Finding::ClientError { at: at(&s.0), after, close: event.clone() });
        }
        if next.len() > HYPOTHESES {
            self.stop(format!("more than {HYPOTHESES} orders of the broker's actions fit what the proxy saw"));
            return;
        }
        self.log.compact(&mut next);
        self.hypotheses = next;
        self.keep(Input::Event(event.clone()));
    }

    /// A connection's socket ended: its pending methods that were never answered may have been
    /// taken or not; its owed events will not be seen.
    pub fn ended(&mut self, conn: ConnId) {
        self.keep(Input::Ended(conn));
        for h in &mut self.hypotheses {
            h.owed.retain(|l, _| lane_key(&l.0).0 != conn);
        }
    }
}

/// The channels whose next act `h` may take now: a channel's next act unless a connection method
/// sent before it waits; a connection's next method once its channels' acts sent before it are
/// taken.
fn takeable(log: &Log, h: &Hypothesis) -> Vec<Key> {
    let next = |key: Key| log.next(h, key).map(|e| e.seq);
    let mut out = Vec::new();
    for &key in log.tracks.keys() {
        let Some(seq) = next(key) else { continue };
        let (conn, channel) = key;
        let free = if channel == 0 {
            log.tracks.range((conn, 1)..=(conn, u16::MAX)).all(|(&k, _)| next(k).is_none_or(|s| s > seq))
        } else {
            next((conn, 0)).is_none_or(|s| s > seq)
        };
        if free {
            out.push(key);
        }
    }
    out
}

/// The channel (0: the connection) a stream is on.
fn lane_key(s: &Stream) -> Key {
    match s {
        Stream::Channel(ch) | Stream::Cancel(ch) => (ch.conn, ch.channel),
        Stream::Connection(c) => (*c, 0),
    }
}

/// The common case, without a search: `observed` is the one answer of the next act on its own
/// channel, which `h` may take now, with nothing owed there and one way for the model to answer.
/// Then that is the explanation with the fewest actions and acts (any takes one at least), and
/// `h` becomes it, in place.
fn answered(log: &Log, h: &mut Hypothesis, observed: &Event, s: Lane) -> bool {
    if h.owed.get(&s).is_some_and(|q| !q.is_empty()) {
        return false;
    }
    let key = lane_key(&s.0);
    let Some(Entry { act: Act::Command { command, nowait }, .. }) = log.next(h, key) else { return false };
    if !takeable(log, h).contains(&key) {
        return false;
    }
    let renamed = command.map_names(|n| h.names.get(n).cloned().unwrap_or_else(|| n.clone()));
    let Ok(mut branches) = h.broker.apply_all_pipelining(&renamed) else { return false };
    if branches.len() != 1 {
        return false;
    }
    let b = branches.pop().expect("one branch");
    let mut y = Hypothesis { broker: b.broker, taken: h.taken.clone(), owed: h.owed.clone(), names: h.names.clone() };
    *y.taken.entry(key).or_insert(0) += 1;
    let (mut matched, mut first) = (false, Vec::new());
    if route(&mut y, sent(command, *nowait, b.events), observed, s, &mut matched, &mut first) && matched {
        *h = y;
        return true;
    }
    false
}

/// Take, in `h`, every act whose taking now or later is the same: a method of a connection the
/// broker has closed (a connection never comes back: it is discarded), on a channel the broker
/// closed whose `close-ok` the client has not sent before them every method but the client's own
/// `channel.close` (discarded too), and a `close-ok` (it frees only its channel, whose acts
/// before it are taken). Taking them at once keeps the hypotheses that differ only in how many
/// of them were taken from multiplying, and the search from trying them in every order.
fn settle(log: &Log, h: &mut Hypothesis) {
    loop {
        let mut progressed = false;
        for key in takeable(log, h) {
            let command = match log.next(h, key).map(|e| &e.act) {
                Some(Act::Command { command, .. }) => command,
                // What the close-ok frees is this channel, whose acts before it are taken: now or
                // later is the same.
                Some(Act::CloseOk(ch)) => {
                    h.broker.close_answered(*ch);
                    *h.taken.entry(key).or_insert(0) += 1;
                    progressed = true;
                    continue;
                }
                // A refusal on a connection the broker has closed is discarded too.
                Some(Act::Refused { conn, .. }) if !h.broker.connections.contains_key(conn) => {
                    *h.taken.entry(key).or_insert(0) += 1;
                    progressed = true;
                    continue;
                }
                _ => continue,
            };
            let (conn, channel) = key;
            let discarded = match h.broker.connections.get(&conn) {
                None => !matches!(command, Command::ConnectionOpen { .. }),
                Some(c) => {
                    channel != 0 && c.closing.contains(&channel) && !matches!(command, Command::ChannelClose { .. })
                }
            };
            if discarded {
                *h.taken.entry(key).or_insert(0) += 1;
                progressed = true;
            }
        }
        if !progressed {
            return;
        }
    }
}

/// The events the broker sends for a command: without the reply when the client asked `nowait`.
fn sent(command: &Command, nowait: bool, events: Vec<Event>) -> Vec<Event> {
    if !nowait {
        return events;
    }
    let ch = command.channel();
    let mut dropped = false;
    events
        .into_iter()
        .filter(|e| {
            let reply = matches!(e, Event::Reply { ch: c, .. } if Some(*c) == ch);
            if reply && !dropped {
                dropped = true;
                return false;
            }
            true
        })
        .collect()
}

/// Whether the broker's `observed` is the model's `e`, allowing a `queue.declare-ok` to count
/// fewer messages than the model: a count may lag the messages still on their way into the queue
/// (RabbitMQ answers it ahead of them, docs/rabbitmq-3.10.md Q36), and the proxy, which sends
/// nothing of its own, cannot ask again as the runner does. A count that was short for good shows
/// at the next count that does not lag (`purge-ok`, `delete-ok`) or at a delivery.
fn same_or_lagging(
    e: &Event,
    observed: &Event,
    names: &mut BTreeMap<Name, Name>,
    gone: &dyn Fn(&Name) -> bool,
) -> bool {
    if same(e, observed, names, false, gone) {
        return true;
    }
    match (e, observed) {
        (
            Event::Reply { ch, reply: Reply::QueueDeclareOk { queue, message_count: m, consumer_count } },
            Event::Reply { reply: Reply::QueueDeclareOk { message_count: o, .. }, .. },
        ) if o < m => {
            let early =
                Reply::QueueDeclareOk { queue: queue.clone(), message_count: *o, consumer_count: *consumer_count };
            same(&Event::Reply { ch: *ch, reply: early }, observed, names, false, gone)
        }
        _ => false,
    }
}

/// Route `events` (made by one action of `h`): those on `s` go first against `observed` while
/// nothing is owed there; the rest are owed. `Some(true)` when `observed` was matched,
/// `Some(false)` when not yet, `None` when an event on `s` came that is not `observed` (the
/// hypothesis dies), with the first such event in `first`.
fn route(
    h: &mut Hypothesis,
    events: Vec<Event>,
    observed: &Event,
    s: Lane,
    matched: &mut bool,
    first: &mut Vec<Event>,
) -> bool {
    for e in events {
        let es = lane(&e);
        if es == s && !*matched && h.owed.get(&s).is_none_or(|q| q.is_empty()) {
            let gone = |q: &Name| !h.broker.queues.contains_key(q);
            if same_or_lagging(&e, observed, &mut h.names, &gone) {
                *matched = true;
                continue;
            }
            first.push(e);
            return false;
        }
        h.owed.entry(es).or_default().push_back(e);
    }
    true
}

/// The hypotheses that follow `h` once `observed` (on stream `s`) is explained, the first
/// events the model would have sent on `s` instead (for a report), and whether the search was
/// cut by [`DEPTH`].
///
/// With `fewest`, only the explanations that take the fewest visible actions are kept: once one
/// is found, orders that take more (another channel's method answered before this event, though
/// nothing showed it yet) are not searched; they stay possible later, the methods still pending.
fn explain(log: &Log, h: &Hypothesis, observed: &Event, s: Lane, fewest: bool) -> (Vec<Hypothesis>, Vec<Event>, bool) {
    let mut first = Vec::new();
    if let Some(q) = h.owed.get(&s).filter(|q| !q.is_empty()) {
        let mut h2 = h.clone();
        let head = h2.owed.get_mut(&s).and_then(|q| q.pop_front()).expect("owed");
        let gone = |q: &Name| !h2.broker.queues.contains_key(q);
        let mut names = h2.names.clone();
        if same_or_lagging(&head, observed, &mut names, &gone) {
            h2.names = names;
            return (vec![h2], first, false);
        }
        first.push(q[0].clone());
        return (Vec::new(), first, false);
    }
    // Explanations with their cost: the visible actions they took (the broker's answers and
    // own steps), then the client's acts (a publish nobody has seen yet, a close-ok, a method
    // the broker discards: these make nothing visible).
    let mut found: Vec<((usize, usize), Hypothesis)> = Vec::new();
    // The search goes cheapest first (a bucket per cost), so that with `fewest` it stops once
    // nothing left can be as cheap as what it found: a run of publishes before the method an
    // event answers is taken whole, but one after it is not taken at all.
    let mut queue: BTreeMap<(usize, usize), Vec<Hypothesis>> = BTreeMap::from([((0, 0), vec![h.clone()])]);
    let mut visited: Seen = Seen::default();
    let mut cut = false;
    let acts = |h: &Hypothesis| h.taken.values().sum::<usize>();
    let base = acts(h);
    let cost = |h: &Hypothesis, visible: usize| (visible, acts(h) - base);
    let mut best: Option<(usize, usize)> = None;
    while let Some(((depth, taken), x)) = pop(&mut queue) {
        // A node explains the event only with one more visible action.
        if fewest && best.is_some_and(|b| (depth + 1, taken) > b) {
            break;
        }
        if depth >= DEPTH || visited.len() > BUDGET {
            cut = true;
            break;
        }
        let mut push = |y: Hypothesis, visible: usize, matched: bool, found: &mut Vec<_>| {
            let c = cost(&y, visible);
            if matched {
                best = Some(best.map_or(c, |b| b.min(c)));
                found.push((c, y));
            } else if visited.insert(y.clone()) {
                queue.entry(c).or_default().push(y);
            }
        };
        // The client's acts the broker may take next.
        for key in takeable(log, &x) {
            let act = &log.next(&x, key).expect("takeable").act;
            let mut y = x.clone();
            *y.taken.entry(key).or_insert(0) += 1;
            let (command, nowait) = match act {
                Act::CloseOk(ch) => {
                    // Nothing to see: the channel is free again.
                    y.broker.close_answered(*ch);
                    push(y, depth, false, &mut found);
                    continue;
                }
                Act::Refused { conn, code, method } => {
                    // The model's drop of the connection, and the broker's close.
                    let Ok(mut events) = y.broker.apply(&Command::ConnectionDrop { conn: *conn }) else { continue };
                    events.push(Event::ConnectionClosed { conn: *conn, code: *code, method: *method });
                    let mut matched = false;
                    if route(&mut y, events, observed, s, &mut matched, &mut first) {
                        push(y, depth + 1, matched, &mut found);
                    }
                    continue;
                }
                Act::Command { command, nowait } => (command, *nowait),
            };
            let renamed = command.map_names(|n| x.names.get(n).cloned().unwrap_or_else(|| n.clone()));
            // A channel the broker closes stays closing until the client's close-ok.
            let branches = match x.broker.apply_all_pipelining(&renamed) {
                Ok(branches) => branches,
                // The broker closed the connection before it read the method (the close crossed
                // it): it discards it, and nothing follows.
                Err(amqp_model::UsageError::NotConnected(_)) => {
                    push(y, depth, false, &mut found);
                    continue;
                }
                Err(_) => continue,
            };
            for b in branches {
                let mut z = y.clone();
                z.broker = b.broker;
                let events = sent(command, nowait, b.events);
                let visible = if events.is_empty() { depth } else { depth + 1 };
                let mut matched = false;
                if route(&mut z, events, observed, s, &mut matched, &mut first) {
                    push(z, visible, matched, &mut found);
                }
            }
        }
        // The broker's own steps.
        let mut steps: Vec<Internal> = Vec::new();
        x.broker.internal_steps(&mut steps);
        for step in steps {
            let mut y = x.clone();
            let events = y.broker.step(&step);
            let mut matched = false;
            if route(&mut y, events, observed, s, &mut matched, &mut first) {
                push(y, depth + 1, matched, &mut found);
            }
        }
    }
    if fewest {
        // Only the cheapest: another channel's method answered before this event though nothing
        // showed it yet, or a publish taken earlier than it had to be, stays possible later (the
        // methods are still pending), and the exhaustive search confirms a divergence before it
        // is reported ([`Judge::event`]).
        if let Some(b) = best {
            found.retain(|(c, _)| *c == b);
        }
    }
    (found.into_iter().map(|(_, h)| h).collect(), first, cut)
}

/// The cheapest node of the search.
fn pop(queue: &mut BTreeMap<(usize, usize), Vec<Hypothesis>>) -> Option<((usize, usize), Hypothesis)> {
    let mut entry = queue.first_entry()?;
    let cost = *entry.key();
    let node = entry.get_mut().pop().expect("buckets are never empty");
    if entry.get().is_empty() {
        entry.remove();
    }
    Some((cost, node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use amqp_model::event::Reply;
    use amqp_model::{ChanRef, Content};

    fn ch(c: u16, n: u16) -> ChanRef {
        ChanRef::new(c, n)
    }

    fn open(j: &mut Judge, c: u16) {
        j.command(&Command::ConnectionOpen { conn: ConnId(c) }, false);
        j.event(&Event::ConnectionOpenOk { conn: ConnId(c) });
        j.command(&Command::ChannelOpen { ch: ch(c, 1) }, false);
        j.event(&Event::ChannelOpenOk { ch: ch(c, 1) });
    }

    fn declare(q: &str, c: u16) -> Command {
        Command::QueueDeclare {
            ch: ch(c, 1),
            queue: Name::from(q),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: Default::default(),
        }
    }

    fn declare_ok(q: &str, c: u16, messages: u32) -> Event {
        Event::Reply {
            ch: ch(c, 1),
            reply: Reply::QueueDeclareOk { queue: Name::from(q), message_count: messages, consumer_count: 0 },
        }
    }

    fn publish(q: &str, c: u16) -> Command {
        Command::BasicPublish {
            ch: ch(c, 1),
            exchange: Name::default(),
            routing_key: Name::from(q),
            mandatory: false,
            content: Content::default(),
        }
    }

    /// c1 publishes (no reply), c2 declares the queue passively: the proxy forwarded the publish
    /// first, but the broker may take the declare first. Either count is allowed; a count the
    /// publish cannot explain is a divergence.
    #[test]
    fn methods_of_two_connections_may_be_taken_in_either_order() {
        for (count, ok) in [(0, true), (1, true), (2, false)] {
            let mut j = Judge::new(Profile::rabbitmq());
            open(&mut j, 1);
            open(&mut j, 2);
            j.command(&declare("q", 1), false);
            j.event(&declare_ok("q", 1, 0));
            j.command(&publish("q", 1), false);
            let mut passive = declare("q", 2);
            if let Command::QueueDeclare { passive: p, .. } = &mut passive {
                *p = true;
            }
            j.command(&passive, false);
            j.event(&declare_ok("q", 2, count));
            let diverged = j.findings.iter().any(|f| matches!(f, Finding::Divergence { .. }));
            assert_eq!(!diverged, ok, "count {count}: {:?}", j.findings);
        }
    }

    /// A reply that arrives before the method was forwarded cannot be its reply.
    #[test]
    fn an_answer_before_its_method_is_a_divergence() {
        let mut j = Judge::new(Profile::rabbitmq());
        open(&mut j, 1);
        j.event(&declare_ok("q", 1, 0));
        let found = j.findings.first().expect("a finding");
        assert!(matches!(found, Finding::Divergence { at, .. } if at == "c1.1"), "{found}");
        assert!(!j.judging());
    }

    /// A nowait declare: no reply comes, and the next method's reply is judged as usual.
    #[test]
    fn a_nowait_method_owes_no_reply() {
        let mut j = Judge::new(Profile::rabbitmq());
        open(&mut j, 1);
        j.command(&declare("q", 1), true);
        j.command(&publish("q", 1), false);
        let mut passive = declare("q", 1);
        if let Command::QueueDeclare { passive: p, .. } = &mut passive {
            *p = true;
        }
        j.command(&passive, false);
        j.event(&declare_ok("q", 1, 1));
        assert!(j.findings.is_empty(), "{:?}", j.findings);
    }

    /// A declare-ok right after a publish on the same channel may count the message or not yet
    /// (RabbitMQ answers the count ahead of it); more than was published is a divergence.
    #[test]
    fn a_declare_ok_count_may_lag_but_not_exceed() {
        for (count, ok) in [(0, true), (1, true), (2, false)] {
            let mut j = Judge::new(Profile::rabbitmq());
            open(&mut j, 1);
            j.command(&declare("q", 1), false);
            j.event(&declare_ok("q", 1, 0));
            j.command(&publish("q", 1), false);
            j.command(&declare("q", 1), false);
            j.event(&declare_ok("q", 1, count));
            assert_eq!(j.findings.is_empty(), ok, "count {count}: {:?}", j.findings);
        }
    }

    /// The channel that consumes from a queue deletes it: under `rabbitmq` the delete-ok comes
    /// before the consumer's basic.cancel (docs/rabbitmq-3.10.md Q63), the other order is a
    /// divergence; under `spec` either order is allowed.
    #[test]
    fn the_cancel_of_a_consumer_on_the_deleting_channel_follows_the_delete_ok_as_on_rabbitmq() {
        let delete_ok = Event::Reply { ch: ch(1, 1), reply: Reply::QueueDeleteOk { message_count: 0 } };
        let cancel = Event::Cancel { ch: ch(1, 1), consumer_tag: Name::from("t") };
        for (profile, cancel_first, ok) in [
            (Profile::rabbitmq(), false, true),
            (Profile::rabbitmq(), true, false),
            (Profile::spec(), false, true),
            (Profile::spec(), true, true),
        ] {
            let mut j = Judge::new(profile);
            open(&mut j, 1);
            j.command(&declare("q", 1), false);
            j.event(&declare_ok("q", 1, 0));
            let consume = Command::BasicConsume {
                ch: ch(1, 1),
                queue: Name::from("q"),
                consumer_tag: Name::from("t"),
                no_ack: false,
                exclusive: false,
                arguments: Default::default(),
            };
            j.command(&consume, false);
            j.event(&Event::Reply { ch: ch(1, 1), reply: Reply::ConsumeOk { consumer_tag: Name::from("t") } });
            let delete =
                Command::QueueDelete { ch: ch(1, 1), queue: Name::from("q"), if_unused: false, if_empty: false };
            j.command(&delete, false);
            let order = if cancel_first { [&cancel, &delete_ok] } else { [&delete_ok, &cancel] };
            for e in order {
                j.event(e);
            }
            assert_eq!(j.findings.is_empty(), ok, "{profile:?}, cancel first {cancel_first}: {:?}", j.findings);
        }
    }

    /// amqp091-go acks a tag it never got, closes the channel before the broker's 406 reached it,
    /// acks on (the broker discards what follows a close), and closes the connection: the 406 is
    /// a client error, the close-ok answers the crossing close, the connection's close-ok its
    /// close.
    #[test]
    fn methods_after_a_crossing_close_are_discarded() {
        let mut j = Judge::new(Profile::rabbitmq());
        open(&mut j, 1);
        let ack = Command::BasicAck { ch: ch(1, 1), delivery_tag: 42, multiple: false };
        j.command(&ack, false);
        j.command(&Command::ChannelClose { ch: ch(1, 1) }, false);
        for _ in 0..9 {
            j.command(&ack, false);
        }
        j.command(&Command::ConnectionClose { conn: ConnId(1) }, false);
        j.event(&Event::ChannelClosed { ch: ch(1, 1), code: ReplyCode::PreconditionFailed, method: Method::BasicAck });
        j.event(&Event::ChannelCloseOk { ch: ch(1, 1) });
        j.event(&Event::ConnectionCloseOk { conn: ConnId(1) });
        assert!(matches!(j.findings[..], [Finding::ClientError { .. }]), "{:?}", j.findings);
        assert!(j.judging());
    }

    /// The other order of the same race: the client's close reaches the broker before any of its
    /// acks, the broker answers close-ok, and the first ack then names a channel that is closed:
    /// a connection error, 504 on basic.ack (`channel.close` is the last method on a channel
    /// until it is opened again). That too is the client's error, not the broker's.
    #[test]
    fn an_ack_after_the_close_ok_is_a_client_error_on_the_connection() {
        let mut j = Judge::new(Profile::rabbitmq());
        open(&mut j, 1);
        let ack = Command::BasicAck { ch: ch(1, 1), delivery_tag: 42, multiple: false };
        j.command(&Command::ChannelClose { ch: ch(1, 1) }, false);
        for _ in 0..10 {
            j.command(&ack, false);
        }
        j.event(&Event::ChannelCloseOk { ch: ch(1, 1) });
        j.event(&Event::ConnectionClosed {
            conn: ConnId(1),
            code: ReplyCode::ChannelError,
            method: Some(Method::BasicAck),
        });
        assert!(matches!(j.findings[..], [Finding::ClientError { .. }]), "{:?}", j.findings);
        assert!(j.findings[0].to_string().contains("closed 504 basic.ack"), "{}", j.findings[0]);
    }

    /// A publish on a confirm channel, then a declare on the same channel: the declare's answer
    /// may come before the publish's confirm (`confirm time guarantees`).
    #[test]
    fn a_confirm_may_come_after_a_later_answer() {
        let mut j = Judge::new(Profile::rabbitmq());
        open(&mut j, 1);
        j.command(&Command::ConfirmSelect { ch: ch(1, 1) }, false);
        j.event(&Event::Reply { ch: ch(1, 1), reply: Reply::ConfirmSelectOk });
        j.command(&declare("q", 1), false);
        j.event(&declare_ok("q", 1, 0));
        j.command(&publish("q", 1), false);
        j.command(&declare("q", 1), false);
        j.event(&declare_ok("q", 1, 1));
        j.event(&Event::Confirm { ch: ch(1, 1), seq: 1, ack: true });
        assert!(j.findings.is_empty(), "{:?}", j.findings);
    }

    /// Acking a tag never delivered: the broker's 406 is what the model requires, and the
    /// client's error is reported as such.
    #[test]
    fn acking_a_tag_never_given_is_a_client_error() {
        let mut j = Judge::new(Profile::rabbitmq());
        open(&mut j, 1);
        j.command(&Command::BasicAck { ch: ch(1, 1), delivery_tag: 7, multiple: false }, false);
        j.event(&Event::ChannelClosed { ch: ch(1, 1), code: ReplyCode::PreconditionFailed, method: Method::BasicAck });
        assert!(matches!(j.findings[..], [Finding::ClientError { .. }]), "{:?}", j.findings);
        assert!(j.judging());
    }

    /// After the broker's close of a channel, the client's close-ok frees the channel: the client
    /// opens it again and uses it. Without the close-ok the channel is still closing, and the
    /// broker, which discards what comes on it, cannot have answered the open.
    #[test]
    fn a_channel_is_free_again_once_the_client_answers_the_close() {
        for answered in [true, false] {
            let mut j = Judge::new(Profile::rabbitmq());
            open(&mut j, 1);
            j.command(&Command::BasicAck { ch: ch(1, 1), delivery_tag: 7, multiple: false }, false);
            j.event(&Event::ChannelClosed {
                ch: ch(1, 1),
                code: ReplyCode::PreconditionFailed,
                method: Method::BasicAck,
            });
            if answered {
                j.close_ok(ch(1, 1));
            }
            j.command(&Command::ChannelOpen { ch: ch(1, 1) }, false);
            j.event(&Event::ChannelOpenOk { ch: ch(1, 1) });
            j.command(&declare("q", 1), false);
            j.event(&declare_ok("q", 1, 0));
            let diverged = j.findings.iter().any(|f| matches!(f, Finding::Divergence { .. }));
            assert_eq!(diverged, !answered, "answered {answered}: {:?}", j.findings);
        }
    }

    /// Feed `text` (trace lines: commands as the proxy forwarded them, `expect` lines as the
    /// events it read, in that order) to a judge under `rabbitmq`.
    fn judged(text: &str) -> Judge {
        let trace = crate::trace::parse(text, "judged.trace").unwrap_or_else(|e| panic!("{e}"));
        let mut j = Judge::new(Profile::rabbitmq());
        for step in &trace.steps {
            match &step.kind {
                crate::trace::StepKind::Command { command, .. } => j.command(command, false),
                crate::trace::StepKind::Expect(events) => events.iter().for_each(|e| j.event(e)),
                crate::trace::StepKind::Wait => {}
            }
        }
        j
    }

    /// c2's unbind is forwarded, then c1 publishes to the exchange and declares another: the
    /// fewest-actions search explains c1's declare-ok without the unbind (the message routed).
    /// c1's purge-ok 0 then shows the unbind came first: the quick search has no hypothesis
    /// left, the exhaustive one from the start has, and judging goes on. A count no order
    /// explains is a divergence, confirmed.
    #[test]
    fn a_divergence_of_the_quick_search_is_confirmed_by_the_exhaustive_one() {
        let setup = "c1 connection.open\nexpect c1 connection.open-ok\nc1.1 channel.open\n\
            expect c1.1 channel.open-ok\nc1.1 exchange.declare x fanout\nexpect c1.1 exchange.declare-ok\n\
            c1.1 queue.declare q\nexpect c1.1 queue.declare-ok q 0 0\nc1.1 queue.bind q x k\n\
            expect c1.1 queue.bind-ok\nc2 connection.open\nexpect c2 connection.open-ok\n\
            c2.1 channel.open\nexpect c2.1 channel.open-ok\nc2.1 queue.unbind q x k\n\
            c1.1 basic.publish x k m1\nc1.1 exchange.declare y fanout\nexpect c1.1 exchange.declare-ok\n\
            c1.1 queue.purge q\n";
        for (count, diverges) in [(0, false), (1, false), (2, true)] {
            let j = judged(&format!("{setup}expect c1.1 queue.purge-ok {count}\n"));
            let diverged = j.findings.iter().any(|f| matches!(f, Finding::Divergence { .. }));
            assert_eq!(diverged, diverges, "purge-ok {count}: {:?}", j.findings);
            assert_eq!(j.judging(), !diverges, "purge-ok {count}: {:?}", j.findings);
        }
    }

    /// A long run of publishes nobody has taken yet costs a hypothesis nothing to copy: the log
    /// keeps them once, and what every hypothesis has taken is forgotten.
    #[test]
    fn the_log_forgets_what_every_hypothesis_has_taken() {
        let mut j = Judge::new(Profile::rabbitmq());
        open(&mut j, 1);
        j.command(&declare("q", 1), false);
        j.event(&declare_ok("q", 1, 0));
        for _ in 0..1000 {
            j.command(&publish("q", 1), false);
        }
        j.command(&declare("q", 1), false);
        j.event(&declare_ok("q", 1, 1000));
        assert!(j.findings.is_empty(), "{:?}", j.findings);
        assert!(j.log.tracks.is_empty(), "{:?}", j.log.tracks.keys().collect::<Vec<_>>());
    }
}
