//! Validation of observed behaviour against the model: a broker conforms on a trace when what it
//! did is *some* behaviour the model allows.
//!
//! The validator keeps the set of model states consistent with everything observed so far. For
//! each step it tries, from every state in the set, every way the model could have produced what
//! was observed: any number of the broker's own steps (deliveries) before and after the command,
//! whose events, taken channel by channel in order, are exactly the observed ones. AMQP orders
//! frames within a channel only (a broker interleaves its channels, and connections are separate
//! sockets), so nothing else is compared; a command's own events may also be sent interleaved
//! with the deliveries it made possible (RabbitMQ delivers requeued messages before it sends
//! `recover-ok`). States that
//! cannot are dropped; the trace fails on the step where none is left, and the report says what
//! was observed and what the model would have allowed.
//!
//! A delivery to a channel or connection that the step's command closes may also have been made
//! unseen: sent before the broker read the close, and discarded by the client, which reads
//! nothing but the close's answer once it has sent one; its message then comes back redelivered.
//!
//! At a `wait` the runner has given the broker time to finish, so the model must also have nothing
//! left that it would still have to deliver: that is how a dropped delivery is caught. Nor may a
//! deletion the broker makes on its own be owed (`Internal::Remove`, silent): the states of a
//! broker still to make one are kept aside ([`Validator::lagging`]), so that the runner can ask
//! again when an answer after the wait is that of a late broker.
//!
//! Server-generated names (`amq.gen-...`, `amq.ctag-...`) are matched up to renaming: the first
//! time an observed generated name meets a model one in the same place they are bound together.

use crate::trace::write_event;
use amqp_model::event::Reply;
use amqp_model::types::MessageData;
use amqp_model::{Branch, Broker, Command, ConnId, Event, Internal, Message, MsgId, Name, Profile};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// How many alternatives a divergence report lists at most.
const SHOWN: usize = 4;

/// The model's view of a run: the states consistent with the observations so far.
#[derive(Clone, Debug)]
pub struct Validator {
    states: Vec<Broker>,
    /// The states a broker would be in had it not yet made a deletion that was owed at the last
    /// `wait` ([`amqp_model::Internal::Remove`]: silent, so the wait cannot tell), carried along
    /// with every step since. They never make a step pass; they tell the runner that an answer
    /// may be that of a broker late with a deletion, to be asked again
    /// ([`Validator::explains_late`]).
    lagging: Vec<Broker>,
    /// Observed generated name -> model generated name.
    names: BTreeMap<Name, Name>,
    /// Compare `queue.declare-ok` without its counts (see [`Validator::explains_up_to_counts`]).
    loose_counts: bool,
    /// Match a server's `basic.cancel` apart from the rest of its channel
    /// ([`Validator::cancels_apart`]).
    cancels_apart: bool,
}

/// The step where a broker left the behaviours the model allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// What the broker was asked to do (None for a wait).
    pub command: Option<Command>,
    /// What it did.
    pub observed: Vec<Event>,
    /// Some of what the model would have allowed instead (each one whole possibility).
    pub allowed: Vec<Vec<Event>>,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.command {
            Some(c) => writeln!(f, "after `{}` the broker did:", crate::trace::write_command(c))?,
            None => writeln!(f, "while waiting, the broker did:")?,
        }
        if self.observed.is_empty() {
            writeln!(f, "  (nothing)")?;
        }
        for e in &self.observed {
            writeln!(f, "  {}", write_event(e))?;
        }
        writeln!(f, "which the model does not allow. The model allows, for example:")?;
        for (i, alt) in self.allowed.iter().enumerate() {
            writeln!(f, "  possibility {}:", i + 1)?;
            if alt.is_empty() {
                writeln!(f, "    (nothing)")?;
            }
            for e in alt {
                writeln!(f, "    {}", write_event(e))?;
            }
        }
        Ok(())
    }
}

/// The headers of a message without what no two runs agree on: the `time` of each `x-death`
/// entry (when a dead-lettered message died, `amqp_model::lifetime::dead_letter`), which the
/// model leaves out.
fn timeless(headers: &amqp_model::Table) -> amqp_model::Table {
    let mut headers = headers.clone();
    if let Some(amqp_model::Value::Array(deaths)) = headers.get_mut("x-death") {
        for d in deaths {
            if let amqp_model::Value::Table(t) = d {
                t.remove("time");
            }
        }
    }
    headers
}

/// Blank what the wire does not carry, or carries but no two runs agree on: message identities,
/// the queue of a delivery, the time in `x-death` headers.
pub fn blank(e: &Event) -> Event {
    let msg = |m: &Message| {
        let mut data = MessageData { id: MsgId(0), ..(*m.0).clone() };
        if data.content.headers.contains_key("x-death") {
            data.content.headers = timeless(&data.content.headers);
        }
        Message::new(data)
    };
    match e {
        Event::Deliver { ch, consumer_tag, delivery_tag, redelivered, message, .. } => Event::Deliver {
            ch: *ch,
            consumer_tag: consumer_tag.clone(),
            delivery_tag: *delivery_tag,
            redelivered: *redelivered,
            queue: Name::default(),
            message: msg(message),
        },
        Event::Return { ch, code, message } => Event::Return { ch: *ch, code: *code, message: msg(message) },
        Event::Reply { ch, reply: Reply::GetOk { delivery_tag, redelivered, message_count, message, .. } } => {
            Event::Reply {
                ch: *ch,
                reply: Reply::GetOk {
                    delivery_tag: *delivery_tag,
                    redelivered: *redelivered,
                    queue: Name::default(),
                    message_count: *message_count,
                    message: msg(message),
                },
            }
        }
        other => other.clone(),
    }
}

pub(crate) fn generated(token: &str) -> Option<&'static str> {
    ["amq.gen-", "amq.ctag-", amqp_model::basic::direct_reply::REPLY_PREFIX].into_iter().find(|p| token.starts_with(p))
}

/// A written event's token as its `key=` (empty for none) and its value, unquoted: a name the
/// broker made up may be a property's value (`reply-to=...`), and one outside the plain
/// characters is written quoted (RabbitMQ's direct reply-to names are base64).
fn split_token(token: &str) -> (&str, &str) {
    let (key, value) = match token.split_once('=') {
        Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => (k, v),
        _ => ("", token),
    };
    (key, value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value))
}

/// Bind an observed server-generated name to the model's, if neither is bound to another.
fn bind(names: &mut BTreeMap<Name, Name>, observed: &Name, model: &Name) -> bool {
    match names.get(observed) {
        Some(prev) => prev == model,
        None if names.values().any(|v| v == model) => false,
        None => {
            names.insert(observed.clone(), model.clone());
            true
        }
    }
}

/// Bind the name a `queue.declare-ok` gave a new queue, as [`bind`] does, except that an observed
/// name bound to a queue that is `gone` may be bound again: `queue declare queue default-name`
/// asks for a name no existing queue has, and does not say whether one may be issued again once
/// its queue is deleted.
fn bind_new_queue(
    names: &mut BTreeMap<Name, Name>,
    observed: &Name,
    model: &Name,
    gone: &dyn Fn(&Name) -> bool,
) -> bool {
    match names.get(observed) {
        Some(prev) if prev != model && gone(prev) && !names.values().any(|v| v == model) => {
            names.insert(observed.clone(), model.clone());
            true
        }
        _ => bind(names, observed, model),
    }
}

/// Whether a model event and an observed one are the same up to generated names, binding new
/// pairs of generated names in `names` (`gone`: whether a model queue no longer exists).
///
/// The reply that introduces a server-generated name (`consume-ok` of a consume with an empty
/// tag, `declare-ok` of a declare with an empty name) binds whatever name the broker chose: the
/// specification does not say what such names look like (RabbitMQ's begin `amq.ctag-` and
/// `amq.gen-`, GarageMQ's consumer tags are numbers). Elsewhere a name matches the model's when
/// they are bound together, or, for names with RabbitMQ's prefixes, when they can be.
pub(crate) fn same(
    model: &Event,
    observed: &Event,
    names: &mut BTreeMap<Name, Name>,
    loose_counts: bool,
    gone: &dyn Fn(&Name) -> bool,
) -> bool {
    let uncounted = |e: &Event| match e {
        Event::Reply { ch, reply: Reply::QueueDeclareOk { queue, .. } } if loose_counts => Event::Reply {
            ch: *ch,
            reply: Reply::QueueDeclareOk { queue: queue.clone(), message_count: 0, consumer_count: 0 },
        },
        other => blank(other),
    };
    let (model, observed) = (&uncounted(model), &uncounted(observed));
    let (m, o) = (write_event(model), write_event(observed));
    if m == o {
        return true;
    }
    match (model, observed) {
        (
            Event::Reply { ch: mc, reply: Reply::ConsumeOk { consumer_tag: mt } },
            Event::Reply { ch: oc, reply: Reply::ConsumeOk { consumer_tag: ot } },
        ) if mc == oc && generated(mt.as_str()).is_some() => return bind(names, ot, mt),
        (
            Event::Reply { ch: mc, reply: Reply::QueueDeclareOk { queue: mq, message_count: mm, consumer_count: mn } },
            Event::Reply { ch: oc, reply: Reply::QueueDeclareOk { queue: oq, message_count: om, consumer_count: on } },
        ) if mc == oc && (mm, mn) == (om, on) && generated(mq.as_str()).is_some() => {
            return bind_new_queue(names, oq, mq, gone)
        }
        _ => {}
    }
    let (mt, ot): (Vec<&str>, Vec<&str>) = (m.split(' ').collect(), o.split(' ').collect());
    if mt.len() != ot.len() {
        return false;
    }
    let mut bound = names.clone();
    for (x, y) in mt.iter().zip(&ot) {
        if x == y {
            continue;
        }
        let ((kx, vx), (ky, vy)) = (split_token(x), split_token(y));
        if kx != ky {
            return false;
        }
        if bound.get(vy).is_some_and(|v| v.as_str() == vx) {
            continue;
        }
        match (generated(vx), generated(vy)) {
            (Some(a), Some(b)) if a == b && bind(&mut bound, &Name::from(vy), &Name::from(vx)) => {}
            _ => return false,
        }
    }
    *names = bound;
    true
}

/// Where an event arrives: a channel, or the connection itself (channel 0). AMQP orders frames
/// within a channel; a broker may interleave its channels on the connection in any order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Stream {
    Connection(ConnId),
    Channel(amqp_model::ChanRef),
    /// A server's `basic.cancel`s on a channel, apart from the rest of its events, for a target
    /// that cannot see where among them they came ([`crate::target::Target::sees_cancel_order`]).
    Cancel(amqp_model::ChanRef),
}

pub(crate) fn stream(e: &Event) -> Stream {
    e.channel().map_or(Stream::Connection(e.connection()), Stream::Channel)
}

/// The stream of `e`, a server's cancel on a stream of its own when `cancels_apart`.
fn stream_of(e: &Event, cancels_apart: bool) -> Stream {
    match e {
        Event::Cancel { ch, .. } if cancels_apart => Stream::Cancel(*ch),
        _ => stream(e),
    }
}

/// The observed events of one step, split by stream, with how many of each were matched.
#[derive(Clone)]
struct Progress<'a> {
    /// Shared by every clone: only `used` changes as the search goes.
    per_stream: std::rc::Rc<BTreeMap<Stream, Vec<&'a Event>>>,
    used: BTreeMap<Stream, usize>,
    loose_counts: bool,
    cancels_apart: bool,
}

impl<'a> Progress<'a> {
    fn new(observed: &'a [Event], loose_counts: bool, cancels_apart: bool) -> Self {
        let mut per_stream: BTreeMap<Stream, Vec<&Event>> = BTreeMap::new();
        for e in observed {
            per_stream.entry(stream_of(e, cancels_apart)).or_default().push(e);
        }
        Progress { per_stream: std::rc::Rc::new(per_stream), used: BTreeMap::new(), loose_counts, cancels_apart }
    }

    fn stream(&self, e: &Event) -> Stream {
        stream_of(e, self.cancels_apart)
    }

    /// The next observed event not yet matched on stream `s`.
    fn next_on(&self, s: Stream) -> Option<&'a Event> {
        let at = self.used.get(&s).copied().unwrap_or(0);
        self.per_stream.get(&s).and_then(|v| v.get(at)).copied()
    }

    /// Whether the broker's own `step` could match the next observed event on its channel: cheap
    /// checks of what [`same`] would compare (a delivery there, to the same consumer tag up to
    /// generated names), so that a step that cannot is not taken (taking one clones the state).
    /// A deletion ([`Internal::Remove`]) shows nothing, so it may always be taken.
    fn may_take(&self, step: &Internal, names: &BTreeMap<Name, Name>) -> bool {
        let Internal::Deliver { consumer, .. } = step else { return true };
        match self.next_on(Stream::Channel(consumer.ch)) {
            Some(Event::Deliver { consumer_tag: observed, .. }) => {
                observed == &consumer.tag
                    || names.get(observed) == Some(&consumer.tag)
                    || (generated(observed.as_str()).is_some() && generated(consumer.tag.as_str()).is_some())
            }
            _ => false,
        }
    }

    /// Consume `e` (a model event of `state`) if it is the next observed one on its stream.
    fn take_one(&mut self, e: &Event, names: &mut BTreeMap<Name, Name>, state: &Broker) -> bool {
        let s = self.stream(e);
        let at = self.used.get(&s).copied().unwrap_or(0);
        let gone = |q: &Name| !state.queues.contains_key(q);
        match self.per_stream.get(&s).and_then(|v| v.get(at)) {
            Some(o) if same(e, o, names, self.loose_counts, &gone) => {
                self.used.insert(s, at + 1);
                true
            }
            _ => false,
        }
    }

    /// Consume all of `events`, in order.
    fn take(&mut self, events: &[Event], names: &mut BTreeMap<Name, Name>, state: &Broker) -> bool {
        events.iter().all(|e| self.take_one(e, names, state))
    }

    fn done(&self) -> bool {
        self.per_stream.iter().all(|(s, v)| self.used.get(s).copied().unwrap_or(0) == v.len())
    }
}

/// The search for the ways the model explains one step.
///
/// A path is: any of the broker's own steps, the command, then any of its own steps, where the
/// command's events may be sent interleaved with the deliveries that follow it (a broker may
/// deliver a message a command made available before it sends the command's reply), each
/// stream's events in the model's order.
struct Search<'a, 'b> {
    /// The step's commands: none for a wait, one, or several sent back to back (pipelined).
    commands: &'a [Command],
    quiescent: bool,
    /// Accept only a path that has matched everything observed while events of the command are
    /// still to come (they may be on their way: another connection's socket, a slow network).
    partial: bool,
    found: &'b mut Vec<Broker>,
    seen: HashSet<Broker>,
    /// At a wait: the states that explain it but for a deletion still owed.
    late: &'b mut Vec<Broker>,
    seen_late: HashSet<Broker>,
    names: BTreeMap<Name, Name>,
    /// The points of the search already explored: a state, how far each stream's observations
    /// are matched, how many of the commands are applied, their events still to send, and how
    /// many generated names are bound. Different orders of the same steps meet at the same
    /// point (a command placed before or after a delivery it does not affect), which is explored
    /// once: without this a step with n observed deliveries costs n^3.
    visited: HashSet<Point>,
    /// Whether to keep `visited`: only for steps with more observed events than [`MEMO_FROM`],
    /// since remembering a point costs a clone of the state, more than a short step's search.
    memo: bool,
}

/// A point of the search: a state, how far each stream is matched, how many of the step's
/// commands are applied, their events still to send, and how many generated names are bound.
type Point = (Broker, Vec<(Stream, usize)>, usize, Vec<Event>, usize);

/// The number of observed events in a step above which the search remembers where it has been.
const MEMO_FROM: usize = 8;

impl Search<'_, '_> {
    /// Whether `step` is a delivery to a consumer on the channel or connection that `command`,
    /// the next of the step's commands, closes (or whose socket it drops).
    fn crosses_close(command: Option<&Command>, step: &Internal) -> bool {
        let Internal::Deliver { consumer, .. } = step else { return false };
        match command {
            Some(Command::ChannelClose { ch }) => consumer.ch == *ch,
            Some(Command::ConnectionClose { conn } | Command::ConnectionDrop { conn }) => consumer.ch.conn == *conn,
            _ => false,
        }
    }

    /// `applied`: how many of the step's commands the broker has read; `pending`: their events
    /// not yet matched, in the order the broker sends them on each stream.
    fn explore(&mut self, state: &Broker, applied: usize, pending: &[Event], progress: &Progress<'_>) {
        if self.memo {
            let point = (
                state.clone(),
                progress.used.iter().map(|(s, n)| (*s, *n)).collect(),
                applied,
                pending.to_vec(),
                self.names.len(),
            );
            if !self.visited.insert(point) {
                return;
            }
        }
        let whole = applied == self.commands.len() && pending.is_empty();
        if progress.done() && whole {
            if self.partial {
                return;
            }
            if self.quiescent && state.owes_removal() {
                // At a wait, a deletion still owed is made by a silent step below; a state that
                // owes one and nothing else is kept aside as a late broker's
                // ([`Validator::lagging`]).
                if !state.owes_delivery() && self.seen_late.insert(state.clone()) {
                    self.late.push(state.clone());
                }
            } else {
                if (!self.quiescent || !state.owes_delivery()) && self.seen.insert(state.clone()) {
                    self.found.push(state.clone());
                }
                return;
            }
        } else if progress.done() && self.partial && applied > 0 {
            // Everything observed is explained, and some of the commands' events are still to come.
            if self.seen.insert(state.clone()) {
                self.found.push(state.clone());
            }
            return;
        }
        if let Some(cmd) = self.commands.get(applied) {
            // The broker reads the next command. Each answer the profile allows (one, unless the
            // text leaves a choice); when another command follows unread, a channel the broker
            // closes stays closing for it.
            let more = applied + 1 < self.commands.len();
            let branches = if more { state.apply_all_pipelining(cmd) } else { state.apply_all(cmd) };
            for branch in branches.unwrap_or_default() {
                let mut events = pending.to_vec();
                events.extend(branch.events);
                self.explore(&branch.broker, applied + 1, &events, progress);
            }
        }
        // Send the first pending event of any stream.
        for (i, e) in pending.iter().enumerate() {
            if pending[..i].iter().any(|x| progress.stream(x) == progress.stream(e)) {
                continue;
            }
            let mut p = progress.clone();
            let names = self.names.clone();
            let found = self.found.len();
            if p.take_one(e, &mut self.names, state) {
                let rest: Vec<Event> =
                    pending.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, x)| x.clone()).collect();
                self.explore(state, applied, &rest, &p);
            }
            if self.found.len() == found {
                self.names = names;
            }
        }
        let mut steps: Vec<Internal> = Vec::new();
        state.internal_steps(&mut steps);
        for s in steps {
            // A delivery that crossed the client's close on its way: sent before the broker read
            // the close, and discarded by the client, which after sending a close reads nothing
            // but its answer (`channel.close`, `connection.close`). Never seen, but made: its
            // message is then requeued by the close, flagged redelivered.
            if Self::crosses_close(self.commands.get(applied), &s) {
                let mut next = state.clone();
                next.step(&s);
                self.explore(&next, applied, pending, progress);
            }
            if !progress.may_take(&s, &self.names) {
                continue;
            }
            let mut next = state.clone();
            let events = next.step(&s);
            let mut p = progress.clone();
            let (names, found) = (self.names.clone(), self.found.len());
            if p.take(&events, &mut self.names, &next) {
                self.explore(&next, applied, pending, &p);
            }
            // Keep the names a successful explanation bound; forget those of a dead end.
            if self.found.len() == found {
                self.names = names;
            }
        }
    }
}

impl Validator {
    /// A validator starting from a fresh broker under `profile`.
    pub fn new(profile: Profile) -> Self {
        Validator {
            states: vec![Broker::new(profile)],
            lagging: Vec::new(),
            names: BTreeMap::new(),
            loose_counts: false,
            cancels_apart: false,
        }
    }

    /// Judge a server's `basic.cancel` apart from the other events of its channel: for a target
    /// that cannot see where among them it came ([`crate::target::Target::sees_cancel_order`]).
    /// Its order among them goes unjudged; everything else is judged as before.
    pub fn cancels_apart(&mut self) {
        self.cancels_apart = true;
    }

    /// Bound the next step on a real clock: sent no earlier than `start`, heard whole by `end`
    /// (milliseconds since the session began; [`Broker::window`]).
    pub fn window(&mut self, start: u64, end: u64) {
        for s in self.states.iter_mut().chain(self.lagging.iter_mut()) {
            s.window(start, end);
        }
    }

    /// The model states still consistent with what was observed.
    pub fn states(&self) -> &[Broker] {
        &self.states
    }

    /// The model's name for an observed server-generated name, once they have been matched.
    pub fn model_name(&self, observed: &Name) -> Option<&Name> {
        self.names.get(observed)
    }

    /// Account for one command and what the broker was observed to do in response (and anything
    /// else it did meanwhile), in arrival order.
    pub fn command(&mut self, command: &Command, observed: &[Event]) -> Result<(), Box<Divergence>> {
        self.advance(std::slice::from_ref(command), observed, false)
    }

    /// Account for commands the client sent back to back, each before reading anything the broker
    /// sent since the one before (a trace's `pipelined` steps), and everything observed until the
    /// last one's answer: a channel the broker closed in answer to one of them is still closing
    /// when the next arrives ([`amqp_model::Broker::apply_all_pipelining`]). A divergence names
    /// the last command.
    pub fn commands(&mut self, commands: &[Command], observed: &[Event]) -> Result<(), Box<Divergence>> {
        self.advance(commands, observed, false)
    }

    /// Whether the model would explain `observed` as the outcome of `command` if the counts of
    /// its `queue.declare-ok` were others: when only a count is wrong, the runner asks again
    /// (a count may lag what is on its way into the queue).
    pub fn explains_up_to_counts(&self, command: &Command, observed: &[Event]) -> bool {
        let mut v = Validator { loose_counts: true, ..self.clone() };
        v.command(command, observed).is_ok()
    }

    /// Whether `observed` is what the model allows for `command` from a state in which a deletion
    /// owed at the last `wait` has not been made yet ([`Validator::lagging`]): a broker may take
    /// its time over a silent step, so the runner asks again (a passive declare) until the answer
    /// the model requires comes, or its timeout has passed.
    pub fn explains_late(&self, command: &Command, observed: &[Event]) -> bool {
        if self.lagging.is_empty() {
            return false;
        }
        let mut v = Validator { states: self.lagging.clone(), lagging: Vec::new(), ..self.clone() };
        v.command(command, observed).is_ok()
    }

    /// Account for what the broker did on its own, without requiring it to be done.
    pub fn observe(&mut self, observed: &[Event]) -> Result<(), Box<Divergence>> {
        self.advance(&[], observed, false)
    }

    /// Whether, in some consistent state, the broker answers `command` itself (a reply, a close, a
    /// returned message), as opposed to only acting on it later (deliveries).
    pub fn may_answer(&self, command: &Command) -> bool {
        self.states
            .iter()
            .any(|s| s.apply_all(command).map_or(true, |branches| branches.iter().any(|b| !b.events.is_empty())))
    }

    /// Whether the profile allows more than one answer to `command` in some consistent state
    /// ([`amqp_model::choice`]).
    pub fn has_choices(&self, command: &Command) -> bool {
        self.states.iter().any(|s| s.may_choose() && s.apply_all(command).is_ok_and(|branches| branches.len() > 1))
    }

    /// Whether the broker may have finished: some consistent state has nothing left that the
    /// broker would still have to do (no delivery owed, no closed channel's copies on their way
    /// back). While not, the runner listens on: for the deliveries that follow a close, too,
    /// whether the broker took the copies back before answering the close or just after (a
    /// state in which they came back and went nowhere is consistent as soon as a state with them
    /// on their way is, so a close whose copies no consumer takes ends the step at once).
    pub fn settled(&self) -> bool {
        self.states.iter().any(|s| !s.owes_delivery() && (!s.owes_arrival() || Self::lands_silently(s)))
    }

    /// Whether every copy on its way in `state` (a closed channel's going back, a dead-lettered
    /// one, a message published to a quorum queue) lands without anything a client would see
    /// following: no consumer takes it. Nothing is then left to listen for; the landing itself is
    /// silent, and the next step or wait explains it.
    fn lands_silently(state: &Broker) -> bool {
        let mut landed = state.clone();
        landed.settle_internal().is_empty() && !landed.owes_delivery() && !landed.owes_arrival()
    }

    /// Account for a wait: what the broker did while the runner waited, after which the model
    /// must have nothing left to deliver.
    pub fn wait(&mut self, observed: &[Event]) -> Result<(), Box<Divergence>> {
        self.advance(&[], observed, true)
    }

    fn advance(&mut self, commands: &[Command], observed: &[Event], quiescent: bool) -> Result<(), Box<Divergence>> {
        self.advance_as(commands, observed, quiescent, false)
    }

    /// Whether what was observed of `command` so far could be the start of something the model
    /// allows: everything observed is explained, while some of the command's own events have not
    /// come yet (a `basic.cancel` on another connection after the `delete-ok` that caused it).
    /// The runner then listens on for them, up to its timeout, instead of judging the step (or,
    /// where the spec allows an answer without them too, before taking that one).
    /// Several commands sent back to back ([`Validator::commands`]) are judged as one.
    pub fn may_explain_with_more(&self, commands: &[Command], observed: &[Event]) -> bool {
        self.clone().advance_as(commands, observed, false, true).is_ok()
    }

    fn advance_as(
        &mut self,
        commands: &[Command],
        observed: &[Event],
        quiescent: bool,
        partial: bool,
    ) -> Result<(), Box<Divergence>> {
        let (mut found, mut late) = (Vec::new(), Vec::new());
        let mut names = self.names.clone();
        self.search(&self.states, commands, observed, quiescent, partial, &mut found, &mut late, &mut names);
        if found.is_empty() {
            let allowed = self.allowed(commands, quiescent);
            let command = commands.last().cloned();
            return Err(Box::new(Divergence { command, observed: observed.to_vec(), allowed }));
        }
        if !partial && (quiescent || !self.lagging.is_empty()) {
            // The late states go on: at a wait, those still owing a deletion (from either set);
            // at other steps, those of the late set that explain it.
            let (mut on_time, mut later) = (Vec::new(), Vec::new());
            let mut scratch = names.clone();
            let lagging = std::mem::take(&mut self.lagging);
            self.search(&lagging, commands, observed, quiescent, false, &mut on_time, &mut later, &mut scratch);
            let mut next = if quiescent { late } else { on_time };
            next.extend(later);
            let mut seen: HashSet<Broker> = found.iter().cloned().collect();
            next.retain(|s| seen.insert(s.clone()));
            self.lagging = next;
        }
        let mut seen = HashSet::new();
        found.retain(|s| seen.insert(s.clone()));
        self.states = found;
        self.names = names;
        Ok(())
    }

    /// Search from each of `states` for the ways the model explains a step, collecting the
    /// states that do in `found` (and, at a wait, those that do but for an owed deletion in
    /// `late`), and the generated names they bound in `names`.
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        states: &[Broker],
        commands: &[Command],
        observed: &[Event],
        quiescent: bool,
        partial: bool,
        found: &mut Vec<Broker>,
        late: &mut Vec<Broker>,
        names: &mut BTreeMap<Name, Name>,
    ) {
        for state in states {
            let before = found.len();
            let mut search = Search {
                commands,
                quiescent,
                partial,
                found: &mut *found,
                seen: HashSet::new(),
                late: &mut *late,
                seen_late: HashSet::new(),
                names: names.clone(),
                visited: HashSet::new(),
                memo: observed.len() > MEMO_FROM,
            };
            search.explore(state, 0, &[], &Progress::new(observed, self.loose_counts, self.cancels_apart));
            if search.found.len() > before {
                *names = search.names;
            }
        }
    }

    /// Some complete behaviours the model allows for a step: the commands followed by deliveries
    /// taken in every order, up to a few.
    fn allowed(&self, commands: &[Command], quiescent: bool) -> Vec<Vec<Event>> {
        let mut out: Vec<Vec<Event>> = Vec::new();
        for state in &self.states {
            let mut branches = vec![Branch { choices: Vec::new(), broker: state.clone(), events: Vec::new() }];
            for (i, c) in commands.iter().enumerate() {
                let pipelining = i + 1 < commands.len();
                let next = branches.iter().flat_map(|b| {
                    let after = if pipelining { b.broker.apply_all_pipelining(c) } else { b.broker.apply_all(c) };
                    after.unwrap_or_default().into_iter().map(|mut a| {
                        a.events = b.events.iter().cloned().chain(a.events).collect();
                        a
                    })
                });
                branches = next.collect();
            }
            for Branch { mut broker, mut events, .. } in branches {
                let eager = broker.settle_internal();
                let mut without = events.clone();
                events.extend(eager);
                for alt in [events, std::mem::take(&mut without)] {
                    let alt: Vec<Event> = alt.iter().map(blank).collect();
                    if !out.contains(&alt) && out.len() < SHOWN && !(quiescent && alt.is_empty() && commands.is_empty())
                    {
                        out.push(alt);
                    }
                }
            }
        }
        out
    }
}
