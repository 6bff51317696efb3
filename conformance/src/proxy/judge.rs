//! Judging proxied sessions against the model as they happen, all connections sharing one model
//! of the broker.
//!
//! The proxy sees each client method before the broker does and each answer after the broker
//! sent it; methods of different connections may reach the broker in either order within those
//! windows. So the judge keeps every hypothesis consistent with what it saw, as a
//! linearizability checker does: a model state, the methods forwarded and not yet taken by the
//! broker (`pending`), and the events the model has produced that have not been seen yet
//! (`owed`, per channel: on their way). When the broker's next event on a channel arrives:
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
//!
//! The search is bounded ([`DEPTH`] actions and [`BUDGET`] points per event, [`HYPOTHESES`]
//! hypotheses): when a bound
//! cuts it, the judge says it cannot judge further rather than report a divergence it has not
//! shown.

use crate::validate::{same, stream, Stream};
use amqp_model::{Broker, Command, ConnId, Event, Internal, Method, Name, Profile, ReplyCode};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;

/// At most this many of the broker's actions (methods taken, own steps) explain one event.
pub const DEPTH: usize = 12;
/// At most this many hypotheses are kept.
pub const HYPOTHESES: usize = 4096;
/// At most this many points are explored to explain one event from one hypothesis.
pub const BUDGET: usize = 20_000;

/// A method forwarded to the broker and not yet taken by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Pending {
    command: Command,
    nowait: bool,
}

/// Where events come in order: a channel (or the connection itself), and on a channel its
/// confirms apart (`true`), since nothing is promised about how soon a message is confirmed
/// (`confirm time guarantees`): a confirm may come after answers to later methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Lane(Stream, bool);

fn lane(e: &Event) -> Lane {
    Lane(stream(e), matches!(e, Event::Confirm { .. }))
}

/// One way the broker may have got here.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Hypothesis {
    broker: Broker,
    pending: Vec<Pending>,
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
        /// The method the client sent last there, if any.
        method: Option<Method>,
        /// What the broker did.
        observed: Event,
        /// Some of what the model allowed there instead.
        allowed: Vec<Event>,
    },
    /// The client broke the protocol, and the broker said so as the model requires.
    ClientError {
        /// The channel or connection.
        at: String,
        /// The method that broke it.
        method: Option<Method>,
        /// The broker's close.
        close: Event,
    },
    /// The judge stopped: it cannot tell without searching further than its bounds.
    Stopped(String),
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = |m: &Option<Method>| m.map_or(String::new(), |m| format!(" after {}", m.name()));
        match self {
            Finding::Divergence { at, method: m, observed, allowed } => {
                write!(
                    f,
                    "divergence on {at}{}: the broker sent `{}`",
                    method(m),
                    crate::trace::write_event(observed)
                )?;
                if allowed.is_empty() {
                    write!(f, "; the model allowed nothing there yet")
                } else {
                    let allowed: Vec<String> =
                        allowed.iter().map(|e| format!("`{}`", crate::trace::write_event(e))).collect();
                    write!(f, "; the model allowed {}", allowed.join(" or "))
                }
            }
            Finding::ClientError { at, method: m, close } => write!(
                f,
                "client error on {at}{}: the broker closed with `{}`, as it must",
                method(m),
                crate::trace::write_event(close)
            ),
            Finding::Stopped(why) => write!(f, "judging stopped: {why}"),
        }
    }
}

/// The judge of a proxied run.
#[derive(Debug)]
pub struct Judge {
    hypotheses: Vec<Hypothesis>,
    /// The method each client sent last on each channel (0: the connection), for reports.
    last: BTreeMap<(ConnId, u16), Method>,
    stopped: bool,
    /// What was found, in order.
    pub findings: Vec<Finding>,
}

fn at(s: &Stream) -> String {
    match s {
        Stream::Connection(c) => format!("c{}", c.0),
        Stream::Channel(ch) => format!("c{}.{}", ch.conn.0, ch.channel),
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
            pending: Vec::new(),
            owed: BTreeMap::new(),
            names: BTreeMap::new(),
        };
        Judge { hypotheses: vec![first], last: BTreeMap::new(), stopped: false, findings: Vec::new() }
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
        for h in &mut self.hypotheses {
            h.broker.window(0, ms);
        }
    }

    /// The proxy forwarded `command` to the broker (`nowait`: the client asked for no reply).
    pub fn command(&mut self, command: &Command, nowait: bool) {
        if self.stopped {
            return;
        }
        if let Some(m) = command.method() {
            self.last.insert(order_key(command), m);
        }
        let pending = Pending { command: command.clone(), nowait };
        for h in &mut self.hypotheses {
            h.pending.push(pending.clone());
        }
    }

    /// The proxy read `event` from the broker.
    pub fn event(&mut self, event: &Event) {
        if self.stopped {
            return;
        }
        let s = lane(event);
        let mut next: Vec<Hypothesis> = Vec::new();
        let mut seen: HashSet<Hypothesis> = HashSet::new();
        let mut allowed: Vec<Event> = Vec::new();
        let mut cut = false;
        for h in std::mem::take(&mut self.hypotheses) {
            let (found, first, truncated) = explain(&h, event, s);
            cut |= truncated;
            for e in first {
                if allowed.len() < 4 && !allowed.contains(&e) {
                    allowed.push(e);
                }
            }
            for f in found {
                if seen.insert(f.clone()) {
                    next.push(f);
                }
            }
        }
        let method = match s.0 {
            Stream::Channel(ch) => self.last.get(&(ch.conn, ch.channel)).copied(),
            Stream::Connection(c) => self.last.get(&(c, 0)).copied(),
        };
        if next.is_empty() {
            if cut {
                self.stop(format!(
                    "explaining `{}` on {} needs more than {DEPTH} broker actions or {BUDGET} points searched",
                    crate::trace::write_event(event),
                    at(&s.0)
                ));
            } else {
                self.findings.push(Finding::Divergence { at: at(&s.0), method, observed: event.clone(), allowed });
                self.stop(format!("after the divergence on {}", at(&s.0)));
            }
            return;
        }
        if client_fault(event) {
            self.findings.push(Finding::ClientError { at: at(&s.0), method, close: event.clone() });
        }
        if next.len() > HYPOTHESES {
            self.stop(format!("more than {HYPOTHESES} orders of the broker's actions fit what the proxy saw"));
            return;
        }
        self.hypotheses = next;
    }

    /// A connection's socket ended: its pending methods that were never answered may have been
    /// taken or not; its owed events will not be seen.
    pub fn ended(&mut self, conn: ConnId) {
        for h in &mut self.hypotheses {
            h.owed.retain(|l, _| match l.0 {
                Stream::Connection(c) => c != conn,
                Stream::Channel(ch) => ch.conn != conn,
            });
        }
    }
}

/// The actions open to `h`: each pending method that is first on its channel (a connection
/// method: first of its connection), as an index. One pass over the pending methods.
fn takeable(h: &Hypothesis) -> Vec<usize> {
    let mut out = Vec::new();
    let mut lanes: HashSet<(ConnId, u16)> = HashSet::new();
    let mut conns: HashSet<ConnId> = HashSet::new();
    for (i, p) in h.pending.iter().enumerate() {
        let (conn, channel) = order_key(&p.command);
        let free = if channel == 0 {
            !conns.contains(&conn)
        } else {
            !lanes.contains(&(conn, channel)) && !lanes.contains(&(conn, 0))
        };
        if free {
            out.push(i);
        }
        lanes.insert((conn, channel));
        conns.insert(conn);
    }
    out
}

/// The events the broker sends for `p`'s branch: without the reply when the client asked
/// `nowait`.
fn sent(p: &Pending, events: Vec<Event>) -> Vec<Event> {
    if !p.nowait {
        return events;
    }
    let ch = p.command.channel();
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
            if same(&e, observed, &mut h.names, false, &gone) {
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
fn explain(h: &Hypothesis, observed: &Event, s: Lane) -> (Vec<Hypothesis>, Vec<Event>, bool) {
    let mut first = Vec::new();
    if let Some(q) = h.owed.get(&s).filter(|q| !q.is_empty()) {
        let mut h2 = h.clone();
        let head = h2.owed.get_mut(&s).and_then(|q| q.pop_front()).expect("owed");
        let gone = |q: &Name| !h2.broker.queues.contains_key(q);
        let mut names = h2.names.clone();
        if same(&head, observed, &mut names, false, &gone) {
            h2.names = names;
            return (vec![h2], first, false);
        }
        first.push(q[0].clone());
        return (Vec::new(), first, false);
    }
    let mut found = Vec::new();
    let mut frontier = vec![h.clone()];
    let mut visited: HashSet<Hypothesis> = HashSet::new();
    let mut cut = false;
    for depth in 0..=DEPTH {
        let mut next = Vec::new();
        for x in frontier {
            if depth == DEPTH || visited.len() > BUDGET {
                cut = true;
                break;
            }
            // The pending methods the broker may take next.
            for i in takeable(&x) {
                let p = x.pending[i].clone();
                let command = p.command.map_names(|n| x.names.get(n).cloned().unwrap_or_else(|| n.clone()));
                let Ok(branches) = x.broker.apply_all(&command) else { continue };
                for b in branches {
                    let mut y = x.clone();
                    y.pending.remove(i);
                    y.broker = b.broker;
                    let mut matched = false;
                    if !route(&mut y, sent(&p, b.events), observed, s, &mut matched, &mut first) {
                        continue;
                    }
                    if matched {
                        found.push(y);
                    } else if visited.insert(y.clone()) {
                        next.push(y);
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
                if !route(&mut y, events, observed, s, &mut matched, &mut first) {
                    continue;
                }
                if matched {
                    found.push(y);
                } else if visited.insert(y.clone()) {
                    next.push(y);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    (found, first, cut)
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
}
