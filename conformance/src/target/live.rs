//! A live broker as a [`Target`]: the trace's commands are performed over AMQP 0-9-1 (with
//! lapin) against a broker given by its URI, and what a client observes is reported as model
//! [`Event`]s.
//!
//! - One AMQP connection per trace connection (`c1`, `c2`, ...), one lapin channel per trace
//!   channel. lapin numbers channels itself; events are reported with the trace's [`ChanRef`].
//! - Queue and exchange names get a run-unique prefix on the wire (`amqpc-<pid>-<n>-`), except
//!   `""` and `amq.*`; the routing key of a publish to the default exchange is a queue name and is
//!   prefixed too. Observed names are mapped back, so the validator sees the trace's names.
//! - Deliveries, server cancels and channel errors are collected by a consumer delegate that
//!   records them synchronously, in the order the connection's I/O loop reads them.
//! - lapin does not expose the class and method ids of a server `channel.close` or
//!   `connection.close`; the method is the last one this target sent on that channel (for a
//!   synchronous method the close is its answer, for publish and ack it is caught by a
//!   harmless probe right after, a passive `exchange.declare amq.direct`).
//! - `drop` closes the connection cleanly (lapin cannot abort its socket): the broker requeues
//!   and deletes the same as on a lost socket, and the client observes nothing either way.
//! - `restart` is performed by the target's [`Restart`] (a command, or the in-process reference
//!   broker's restart). Without one it cannot be performed, nor can what lapin cannot send (a
//!   second `channel.open` of an open channel, a method on a channel that is not open): such a
//!   step returns no events and sets [`LiveTarget::incomplete`].

use super::cleanup::{cleaner, cleanup_budget, delete_all, CLEANUP_CHANNELS};
use super::probe::{connect, redact, runtime};
use super::restart::Restart;
use super::{lock, Problem, Summary, Timing};
use crate::target::{Hint, Listen, Target};
use amqp_model::event::Reply;
use amqp_model::types::MessageData;
use amqp_model::ReplyCode;
use amqp_model::{ChanRef, Command, ConnId, Content, Event, ExchangeKind, Message, Method, MsgId, Name};
use amqp_wire::{field_table, headers};
use futures_core::Stream;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRecoverOptions, BasicRejectOptions, ConfirmSelectOptions, ExchangeBindOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, ExchangeUnbindOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    QueuePurgeOptions,
};
use lapin::protocol::AMQPErrorKind;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, Consumer, ErrorKind};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Targets made by this process, for unique prefixes.
static TARGETS: AtomicUsize = AtomicUsize::new(0);

/// The names of one run: wire name <-> trace name.
#[derive(Clone, Debug)]
struct Names {
    prefix: String,
}

/// An exchange-to-exchange binding's routing key as sent. A binding to the default exchange
/// carries messages on to the queue its key names: the key is a queue name, and so is a
/// publish's key that it matches (noted in `keyed`, so that such publishes are prefixed too).
fn exchange_binding_key(
    names: &Names,
    keyed: &mut BTreeSet<Name>,
    destination: &Name,
    source: &Name,
    routing_key: &Name,
) -> String {
    if destination.is_empty() {
        keyed.insert(routing_key.clone());
        binding_key(names, destination, routing_key)
    } else {
        binding_key(names, source, routing_key)
    }
}

/// A binding's routing key as sent: on the default exchange the keys are queue names, prefixed
/// as a publish to it prefixes its routing key.
fn binding_key(names: &Names, exchange: &Name, routing_key: &Name) -> String {
    if exchange.is_empty() {
        names.wire(routing_key)
    } else {
        routing_key.to_string()
    }
}

/// A queue binding's routing key as sent: as [`binding_key`], and also prefixed where it is a
/// queue name the broker holds as a key (`keyed`), as a publish with that key is, so that an
/// explicit key names the binding `queue.bind "" X ""` made.
fn queue_binding_key(names: &Names, keyed: &BTreeSet<Name>, exchange: &Name, routing_key: &Name) -> String {
    if keyed.contains(routing_key) {
        names.wire(routing_key)
    } else {
        binding_key(names, exchange, routing_key)
    }
}

impl Names {
    fn wire(&self, name: &Name) -> String {
        if name.is_empty() || name.is_reserved() {
            name.as_str().to_string()
        } else {
            format!("{}{}", self.prefix, name.as_str())
        }
    }

    fn trace(&self, wire: &str) -> Name {
        Name::from(wire.strip_prefix(self.prefix.as_str()).unwrap_or(wire))
    }

    /// A message as the trace writes it: names mapped back, the routing key too (a prefixed key
    /// is a queue name: the default exchange's, or a key bound as "the last queue's name").
    fn message(&self, exchange: &str, routing_key: &str, props: &BasicProperties, data: &[u8]) -> Message {
        let routing_key = self.trace(routing_key);
        Message(Arc::new(MessageData {
            id: MsgId(0),
            exchange: self.trace(exchange),
            routing_key,
            content: Content {
                body: Name::from(String::from_utf8_lossy(data).into_owned()),
                persistent: *props.delivery_mode() == Some(2),
                headers: props.headers().as_ref().map(headers).unwrap_or_default(),
            },
        }))
    }
}

/// What the observed events of a run are written to, by whichever task observes them; a
/// listener is woken by every push.
#[derive(Debug, Default)]
struct Inbox {
    events: Mutex<Vec<Event>>,
    arrived: tokio::sync::Notify,
}

impl Inbox {
    fn push(&self, e: Event) {
        lock(&self.events).push(e);
        self.arrived.notify_one();
    }

    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *lock(&self.events))
    }

    /// Whatever has arrived, waiting up to `patience` for the first event.
    async fn next(&self, patience: Duration) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let events = self.take();
            if !events.is_empty() {
                return events;
            }
            if tokio::time::timeout_at(deadline, self.arrived.notified()).await.is_err() {
                return self.take();
            }
        }
    }
}

type Sink = Arc<Inbox>;

/// State of a trace connection shared with its consumer delegates.
#[derive(Default)]
struct ConnFlags {
    /// lapin's view of the connection: whether a server close was for it or for one channel.
    status: lapin::ConnectionStatus,
    /// The client is closing the connection: cancels and errors are not the server's doing.
    client_closing: bool,
    /// A `connection.close` from the server has been reported.
    closed_reported: bool,
    /// The last method sent on the connection (what a server close names).
    last_method: Option<Method>,
    /// The broker is being restarted: its close names no method.
    restarting: bool,
    /// How many channel closes have been reported on the connection.
    channel_closes: u64,
    /// During a restart, the connection was reset without a close lapin could report: the close
    /// is taken to be 320 CONNECTION_FORCED.
    close_inferred: bool,
}

/// State of a trace channel shared with its consumer delegates.
#[derive(Debug, Default)]
struct ChanFlags {
    client_closing: bool,
    closed_reported: bool,
    /// The code of the server close reported for this channel, and when (the connection's count
    /// of closes reported before it): what the connection's close events are matched against.
    reported: Option<(ReplyCode, u64)>,
    /// The connection's events listener has delivered this channel's close.
    event_seen: bool,
    last_method: Option<Method>,
    /// Consumers the client cancelled (their end is not a server `basic.cancel`).
    cancelled: HashSet<String>,
    /// Consumers whose channel failed (their end is not a server `basic.cancel` either).
    errored: HashSet<String>,
}

/// Report a server close seen as `error` on `ch`, once per channel and connection.
fn report_close(sink: &Sink, ch: ChanRef, chan: &Mutex<ChanFlags>, conn: &Mutex<ConnFlags>, error: &lapin::Error) {
    let ErrorKind::ProtocolError(e) = error.kind() else { return };
    let Some(code) = ReplyCode::from_code(e.get_id()) else {
        eprintln!("live: {ch}: server close with unknown code {}", e.get_id());
        return;
    };
    // lapin sorts closes by reply code (a hard one is a connection exception), but a broker may
    // close only the channel with a connection-level code: the connection is then still open.
    let channel_level = matches!(e.kind(), AMQPErrorKind::Soft(_)) || lock(conn).status.connected();
    if channel_level {
        let mut f = lock(chan);
        if !f.closed_reported && !f.client_closing {
            f.closed_reported = true;
            let mut c = lock(conn);
            f.reported = Some((code, c.channel_closes));
            c.channel_closes += 1;
            let method = f.last_method.unwrap_or(Method::ChannelOpen);
            sink.push(Event::ChannelClosed { ch, code, method });
        }
    } else {
        report_connection_close(sink, ch.conn, conn, code);
    }
}

/// Report a server `connection.close` with `code`, once. During a restart it names no method.
fn report_connection_close(sink: &Sink, conn: ConnId, flags: &Mutex<ConnFlags>, code: ReplyCode) {
    let mut f = lock(flags);
    if !f.closed_reported && !f.client_closing {
        f.closed_reported = true;
        let method = if f.restarting { None } else { f.last_method };
        sink.push(Event::ConnectionClosed { conn, code, method });
    }
}

/// The channels of a connection, as its watcher sees them.
type Registry = Arc<Mutex<Vec<(ChanRef, Channel, Arc<Mutex<ChanFlags>>)>>>;

/// Watch a connection's events for server closes that no pending method receives: a
/// `connection.close` (the broker shutting down), or a `channel.close` that arrived before the
/// method that would have received it was sent (lapin then fails that method without the code).
///
/// lapin's event does not name the channel, and it may be read long after the close (a loaded
/// machine, a slow network), when the trace has closed and opened the channel again. lapin sends
/// one event per server `channel.close`, in the order the closes arrived, after the channel is
/// closed. So an event is first matched with the earliest close already reported with its code
/// (by the method or consumer that received it) whose event was not seen yet; only when there is
/// none is it the close of a channel that no method received: a closed channel (not one still
/// closing) whose close was not reported yet, of this opening of it.
fn watch(
    connection: &Connection,
    conn: ConnId,
    flags: Arc<Mutex<ConnFlags>>,
    chans: Registry,
    sink: Sink,
) -> JoinHandle<()> {
    let mut events = Box::pin(connection.events_listener());
    runtime().spawn(async move {
        while let Some(event) = std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await {
            let lapin::Event::Error(error) = event else { continue };
            let ErrorKind::ProtocolError(e) = error.kind() else {
                // A broker shutting down may reset the socket before lapin has answered (and
                // reported) its connection.close: lapin then reports only the reset.
                if lock(&flags).restarting {
                    lock(&flags).close_inferred = true;
                    report_connection_close(&sink, conn, &flags, ReplyCode::ConnectionForced);
                }
                continue;
            };
            // lapin also reports every channel.close it answered here, and a broker may close a
            // channel with a connection-level code: the connection is then still open.
            let connection_level = matches!(e.kind(), AMQPErrorKind::Hard(_)) && !lock(&flags).status.connected();
            match (connection_level, ReplyCode::from_code(e.get_id())) {
                (true, Some(code)) => report_connection_close(&sink, conn, &flags, code),
                (false, Some(code)) => {
                    let chans = lock(&chans);
                    let views: Vec<CloseView> = chans
                        .iter()
                        .map(|(_, channel, f)| {
                            let status = channel.status();
                            let f = lock(f);
                            CloseView {
                                closed: !status.connected() && !status.closing(),
                                reported: f.reported,
                                event_seen: f.event_seen,
                                closed_reported: f.closed_reported,
                                client_closing: f.client_closing,
                            }
                        })
                        .collect();
                    if let Some((i, reported)) = close_event_owner(code, &views) {
                        let (ch, _, f) = &chans[i];
                        if !reported {
                            report_close(&sink, *ch, f, &flags, &error);
                        }
                        lock(f).event_seen = true;
                    }
                }
                _ => {}
            }
        }
    })
}

/// What the watcher knows of a channel when a close event comes.
#[derive(Clone, Copy, Debug, Default)]
struct CloseView {
    /// lapin has closed the channel (not still closing it).
    closed: bool,
    reported: Option<(ReplyCode, u64)>,
    event_seen: bool,
    closed_reported: bool,
    client_closing: bool,
}

/// Which of a connection's channels (in the order they were opened) a `channel.close` event
/// with `code` belongs to, and whether its close was already reported: the earliest close
/// reported with that code whose event was not seen yet, or else the first channel closed by the
/// server whose close nobody reported.
fn close_event_owner(code: ReplyCode, views: &[CloseView]) -> Option<(usize, bool)> {
    let earlier = views
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let (c, at) = v.reported?;
            (c == code && !v.event_seen).then_some((at, i))
        })
        .min();
    if let Some((_, i)) = earlier {
        return Some((i, true));
    }
    views.iter().position(|v| v.closed && !v.closed_reported && !v.client_closing).map(|i| (i, false))
}

struct Chan {
    channel: Channel,
    flags: Arc<Mutex<ChanFlags>>,
    /// Kept alive: dropping a lapin consumer cancels it.
    consumers: Vec<Consumer>,
    /// The last publish sequence number, once in confirm mode.
    confirm_seq: Option<u64>,
    /// A method without reply sent on the channel and not probed since (the model expected no
    /// answer and the next step is on this channel).
    unprobed: Option<Method>,
}

struct Conn {
    connection: Connection,
    flags: Arc<Mutex<ConnFlags>>,
    /// The connection's channels, for its watcher.
    registry: Registry,
    watcher: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// A live AMQP 0-9-1 broker as a conformance target.
pub struct LiveTarget {
    uri: String,
    timing: Timing,
    names: Names,
    restart: Option<Restart>,
    sink: Sink,
    conns: BTreeMap<ConnId, Conn>,
    chans: BTreeMap<ChanRef, Chan>,
    queues: BTreeSet<String>,
    exchanges: BTreeSet<String>,
    /// The queue last declared on each channel (what `""` names there).
    last_queue: BTreeMap<ChanRef, Name>,
    /// Queue names the broker holds as binding keys, prefixed: `queue.bind "" X ""` binds with
    /// the last queue's wire name as the key, so a publish with that key is sent prefixed.
    keyed: BTreeSet<Name>,
    /// Until when the step being performed may ask the broker again what it read
    /// ([`Target::reread`]), and how often it has.
    reread: Option<(tokio::time::Instant, u32)>,
    /// The runner's hint for the command being performed.
    hint: Hint,
    incomplete: Option<String>,
    /// The trace needs frames lapin will not send ([`crate::target::raw::RawTarget`] may perform it).
    raw_needed: bool,
    problems: Vec<Problem>,
    notes: Vec<String>,
    finished: bool,
}

impl fmt::Debug for LiveTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveTarget")
            .field("uri", &redact(&self.uri))
            .field("timing", &self.timing)
            .field("prefix", &self.names.prefix)
            .field("restart", &self.restart)
            .field("connections", &self.conns.keys().collect::<Vec<_>>())
            .field("channels", &self.chans.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What a timed operation came to.
enum Outcome<T> {
    Ok(T),
    Failed(lapin::Error),
    TimedOut,
}

impl LiveTarget {
    /// A target for the broker at `uri` (`amqp://user:password@host:port/vhost`), with `timing`.
    /// Nothing is connected until the trace opens a connection.
    pub fn new(uri: &str, timing: Timing) -> Self {
        let n = TARGETS.fetch_add(1, Ordering::Relaxed);
        LiveTarget {
            uri: uri.to_string(),
            timing,
            names: Names { prefix: format!("amqpc-{}-{}-", std::process::id(), n) },
            restart: None,
            sink: Arc::default(),
            conns: BTreeMap::new(),
            chans: BTreeMap::new(),
            queues: BTreeSet::new(),
            exchanges: BTreeSet::new(),
            last_queue: BTreeMap::new(),
            keyed: BTreeSet::new(),
            reread: None,
            hint: Hint::CONFIRM,
            incomplete: None,
            raw_needed: false,
            problems: Vec::new(),
            notes: Vec::new(),
            finished: false,
        }
    }

    /// Perform `restart` steps with `restart` (a command such as RabbitMQ's `rabbitmqctl
    /// stop_app && rabbitmqctl start_app`, which must return once the broker accepts connections
    /// again, or the in-process reference broker's restart). Without one, a trace with `restart`
    /// is incomplete.
    pub fn with_restart(mut self, restart: Option<Restart>) -> Self {
        self.restart = restart;
        self
    }

    /// Take queues (wire names) another target declared on this target's prefix into this one's
    /// cleanup.
    pub fn adopt_queues(&mut self, queues: BTreeSet<String>) {
        self.queues.extend(queues);
    }

    /// A trace's queue or exchange name as this target sends it (prefixed, unless `""` or
    /// `amq.*`).
    pub fn wire(&self, name: &Name) -> String {
        self.names.wire(name)
    }

    /// A name as the broker sent it, as the trace writes it (the prefix taken off).
    pub fn trace_name(&self, wire: &str) -> Name {
        self.names.trace(wire)
    }

    /// The prefix this target gives queue and exchange names on the wire.
    pub fn prefix(&self) -> &str {
        &self.names.prefix
    }

    /// Close every connection and delete every queue and exchange this target declared (by
    /// prefixed name), over a fresh connection. Done by [`Target::finish`] and on drop; calling it
    /// again is a no-op.
    pub(crate) fn cleanup(&mut self) -> Result<(), String> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            runtime().block_on(self.close_connection(c));
        }
        if self.queues.is_empty() && self.exchanges.is_empty() {
            return Ok(());
        }
        let (uri, timeout) = (self.uri.clone(), self.timing.timeout);
        let (queues, exchanges) = (std::mem::take(&mut self.queues), std::mem::take(&mut self.exchanges));
        runtime().block_on(async move {
            // No verdict hangs on the cleanup, so it waits for a busy broker far longer than a
            // step does, within one bound for the whole of it.
            let deadline = tokio::time::Instant::now() + cleanup_budget(timeout);
            let connection = cleaner(&uri, timeout).await?;
            // Each queue costs a round trip or two: a few channels delete queues at once, so that
            // a trace with many queues is cleaned up in a time that does not grow with the
            // network's delay times their number. Exchanges go afterwards, one at a time
            // (RabbitMQ 3.10 fails with 541 INTERNAL_ERROR deleting exchanges bound to each other
            // at once).
            let workers = queues.len().clamp(1, CLEANUP_CHANNELS);
            let mut shares: Vec<Vec<(bool, String)>> = vec![Vec::new(); workers];
            for (i, q) in queues.into_iter().enumerate() {
                shares[i % workers].push((true, q));
            }
            let mut tasks = tokio::task::JoinSet::new();
            for share in shares {
                let connection = connection.clone();
                tasks.spawn(async move { delete_all(&connection, share, timeout, deadline, None).await });
            }
            let mut failures = Vec::new();
            while let Some(done) = tasks.join_next().await {
                failures.extend(done.unwrap_or_else(|e| vec![format!("a cleanup task failed: {e}")]));
            }
            // An exchange.delete is answered at once by a broker that answers at all (RabbitMQ
            // keeps exchanges in a table, not a process), while GarageMQ never answers some: each
            // gets the step's timeout, not the cleanup's budget.
            let exchanges = exchanges.into_iter().map(|x| (false, x)).collect();
            let connection = cleaner(&uri, timeout).await?;
            failures.extend(delete_all(&connection, exchanges, timeout, deadline, Some(timeout)).await);
            failures.sort();
            if failures.is_empty() {
                Ok(())
            } else {
                Err(format!("cleanup: {}", failures.join("; ")))
            }
        })
    }

    fn push(&self, e: Event) {
        self.sink.push(e);
    }

    /// Something went wrong that is not the broker's answer: kept for the report.
    fn problem(&mut self, what: Problem) {
        self.problems.push(what);
    }

    /// Restart the broker: every connection must be closed by the broker (320
    /// CONNECTION_FORCED), and the restart (command) must succeed.
    async fn restart(&mut self) {
        let Some(restart) = self.restart.clone() else {
            self.incomplete = Some("restart needs --restart-cmd".into());
            return;
        };
        for c in self.conns.values() {
            lock(&c.flags).restarting = true;
        }
        if let Err(e) = restart.perform().await {
            self.problem(Problem::Restart(e));
        }
        // The broker's closes arrive through the connections' watchers.
        let deadline = tokio::time::Instant::now() + self.timing.timeout;
        for (id, c) in std::mem::take(&mut self.conns) {
            while !lock(&c.flags).closed_reported && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let mut flags = lock(&c.flags);
            flags.client_closing = true;
            if flags.close_inferred {
                self.notes.push(format!(
                    "c{}: the broker reset the connection during the restart before lapin could report its \
                     connection.close; it is reported as 320 CONNECTION_FORCED",
                    id.0
                ));
            }
        }
        self.chans.clear();
    }

    fn take(&self) -> Vec<Event> {
        self.sink.take()
    }

    async fn timed<T, F: Future<Output = lapin::Result<T>>>(&self, f: F) -> Outcome<T> {
        match tokio::time::timeout(self.timing.timeout, f).await {
            Ok(Ok(v)) => Outcome::Ok(v),
            Ok(Err(e)) => Outcome::Failed(e),
            Err(_) => Outcome::TimedOut,
        }
    }

    /// Close a trace connection (cleanly if it still can be) and forget it and its channels.
    async fn close_connection(&mut self, conn: ConnId) -> bool {
        let Some(c) = self.conns.remove(&conn) else { return false };
        lock(&c.flags).client_closing = true;
        let chans: Vec<ChanRef> = self.chans.keys().filter(|ch| ch.conn == conn).copied().collect();
        for ch in &chans {
            if let Some(chan) = self.chans.get(ch) {
                lock(&chan.flags).client_closing = true;
            }
        }
        let ok = matches!(self.timed(c.connection.close(200, "OK".into())).await, Outcome::Ok(()));
        for ch in chans {
            self.chans.remove(&ch);
        }
        ok
    }

    /// The broker did not answer on `conn` in time: give up on the connection so that later
    /// steps do not wait for it too.
    async fn abandon(&mut self, conn: ConnId, what: &str) {
        let timeout = self.timing.timeout;
        self.problem(Problem::Timeout(format!(
            "c{}: no answer to {what} within {timeout:?}; the connection was closed",
            conn.0
        )));
        self.close_connection(conn).await;
    }

    /// A command on `ch` failed with `error`.
    async fn failed(&mut self, ch: ChanRef, error: lapin::Error) {
        if error.is_amqp_hard_error() {
            self.settle_close_level(ch.conn).await;
        }
        if let Some(earlier) = self.chans.get_mut(&ch).and_then(|c| c.unprobed.take()) {
            self.notes.push(format!(
                "{ch}: the channel was closed after an unconfirmed {} (the model expected no answer to it): if \
                 that caused the close, it is reported with the method that followed",
                earlier.name()
            ));
        }
        let Some(conn) = self.conns.get(&ch.conn) else { return };
        let conn_flags = conn.flags.clone();
        if let Some(chan) = self.chans.get(&ch) {
            report_close(&self.sink, ch, &chan.flags, &conn_flags, &error);
            if matches!(error.kind(), ErrorKind::InvalidChannelState(..)) {
                // The broker closed the channel before this method was sent: its close comes
                // through the connection's watcher.
                let (flags, deadline) = (chan.flags.clone(), tokio::time::Instant::now() + self.timing.timeout);
                while !lock(&flags).closed_reported && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                if lock(&flags).closed_reported {
                    self.chans.remove(&ch);
                    return;
                }
            }
        }
        if !conn.connection.status().connected() {
            lock(&conn_flags).client_closing = true;
            self.conns.remove(&ch.conn);
            self.chans.retain(|c, _| c.conn != ch.conn);
        } else if matches!(error.kind(), ErrorKind::ProtocolError(_)) {
            self.chans.remove(&ch);
        } else {
            self.problem(Problem::Client(format!("{ch}: {error}")));
            if self.chans.get(&ch).is_some_and(|c| !c.channel.status().connected()) {
                self.chans.remove(&ch);
            }
        }
    }

    /// After a method failed with a connection-level reply code: find out whether the broker
    /// closed the connection or only the channel (as some brokers do with such a code), and
    /// leave lapin's status saying so. lapin fails the pending methods of a `connection.close`
    /// before it marks the connection closed, so its status alone may not tell yet. A
    /// `channel.open` on the connection does, whatever the timing: a broker that sent
    /// `connection.close` answers nothing after it (lapin then fails the open as it closes the
    /// connection), and one that closed only the channel answers `open-ok`.
    async fn settle_close_level(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else { return };
        if !c.connection.status().connected() {
            return;
        }
        let status = c.connection.status().clone();
        let open = c.connection.create_channel();
        let gone = async {
            while status.connected() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::select! {
            answer = tokio::time::timeout(self.timing.timeout, open) => {
                if let Ok(Ok(probe)) = answer {
                    // The connection is alive: the close was the channel's. The probe channel
                    // is closed in the background; the trace never sees it.
                    runtime().spawn(async move { let _ = probe.close(200, "OK".into()).await; });
                }
            }
            () = gone => {}
        }
    }

    /// Mark `method` as the last one sent on `ch`, and return the channel.
    fn begin(&self, ch: ChanRef, method: Method) -> Option<Channel> {
        let conn = self.conns.get(&ch.conn)?;
        let chan = self.chans.get(&ch)?;
        lock(&conn.flags).last_method = Some(method);
        lock(&chan.flags).last_method = Some(method);
        Some(chan.channel.clone())
    }

    /// Run a synchronous channel method and report its reply.
    async fn sync<T, F, Fut>(&mut self, ch: ChanRef, method: Method, f: F) -> Option<T>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = lapin::Result<T>>,
    {
        let channel = self.begin(ch, method)?;
        match self.timed(f(channel)).await {
            Outcome::Ok(v) => {
                if let Some(c) = self.chans.get_mut(&ch) {
                    c.unprobed = None;
                }
                Some(v)
            }
            Outcome::Failed(e) => {
                self.failed(ch, e).await;
                None
            }
            Outcome::TimedOut => {
                self.abandon(ch.conn, method.name()).await;
                None
            }
        }
    }

    async fn reply<T, F, Fut>(&mut self, ch: ChanRef, method: Method, reply: Reply, f: F)
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = lapin::Result<T>>,
    {
        if self.sync(ch, method, f).await.is_some() {
            self.push(Event::Reply { ch, reply });
        }
    }

    /// After a method without a reply: a passive declare of `amq.direct` (which changes nothing)
    /// whose answer shows the broker has acted on the method, or the close it caused.
    async fn probe(&mut self, ch: ChanRef, method: Method) {
        let confirm = self.hint.confirm;
        let Some(chan) = self.chans.get_mut(&ch) else { return };
        if !confirm {
            // The next step is on this channel and comes after this method on the wire.
            chan.unprobed = Some(method);
            return;
        }
        let channel = chan.channel.clone();
        let probe = channel.exchange_declare(
            "amq.direct".into(),
            lapin::ExchangeKind::Direct,
            ExchangeDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        );
        match self.timed(probe).await {
            Outcome::Ok(()) => {}
            Outcome::Failed(e) => self.failed(ch, e).await,
            Outcome::TimedOut => self.abandon(ch.conn, method.name()).await,
        }
        self.collect_returns(ch).await;
    }

    /// Unroutable mandatory messages handed back outside confirm mode (after a publish, or at
    /// `tx.commit`, where a transaction's returns are sent).
    async fn collect_returns(&mut self, ch: ChanRef) {
        if let Some(chan) = self.chans.get(&ch) {
            if let Outcome::Ok(returned) = self.timed(chan.channel.wait_for_confirms()).await {
                for r in returned {
                    let d = &r.delivery;
                    let message =
                        self.names.message(d.exchange.as_str(), d.routing_key.as_str(), &d.properties, &d.data);
                    self.push_return(ch, r.reply_code, message);
                }
            }
        }
    }

    fn push_return(&self, ch: ChanRef, code: u16, message: Message) {
        match ReplyCode::from_code(code) {
            Some(code) => self.push(Event::Return { ch, code, message }),
            None => eprintln!("live: {ch}: basic.return with unknown code {code}"),
        }
    }

    async fn perform(&mut self, command: &Command) {
        use Command::*;
        let names = self.names.clone();
        match command {
            ConnectionOpen { conn } => {
                if self.conns.contains_key(conn) {
                    self.problem(Problem::Client(format!("c{} is already open", conn.0)));
                    return;
                }
                match tokio::time::timeout(self.timing.timeout, connect(&self.uri)).await {
                    Ok(Ok(connection)) => {
                        let status = connection.status().clone();
                        let flags = Arc::new(Mutex::new(ConnFlags { status, ..ConnFlags::default() }));
                        let registry = Registry::default();
                        let watcher = watch(&connection, *conn, flags.clone(), registry.clone(), self.sink.clone());
                        self.conns.insert(*conn, Conn { connection, flags, registry, watcher });
                        self.push(Event::ConnectionOpenOk { conn: *conn });
                    }
                    Ok(Err(e)) => self.problem(Problem::Connect(format!(
                        "c{}: cannot connect to {}: {e}",
                        conn.0,
                        redact(&self.uri)
                    ))),
                    Err(_) => self.problem(Problem::Connect(format!(
                        "c{}: connecting to {} timed out",
                        conn.0,
                        redact(&self.uri)
                    ))),
                }
            }
            ConnectionClose { conn } => {
                if self.close_connection(*conn).await {
                    self.push(Event::ConnectionCloseOk { conn: *conn });
                }
            }
            ConnectionDrop { conn } => {
                self.close_connection(*conn).await;
            }
            Restart => self.restart().await,
            ChannelOpen { ch } if self.chans.contains_key(ch) => {
                self.incomplete = Some(format!("{ch}: lapin cannot open a channel that is already open"));
                self.raw_needed = true;
            }
            other
                if other.channel().is_some_and(|ch| {
                    self.conns.contains_key(&ch.conn)
                        && !self.chans.contains_key(&ch)
                        && !matches!(other, ChannelOpen { .. })
                }) =>
            {
                let ch = other.channel().expect("a channel method");
                self.incomplete = Some(format!("{ch}: lapin cannot send a method on a channel that is not open"));
                self.raw_needed = true;
            }
            ChannelOpen { ch } => {
                let Some(conn) = self.conns.get(&ch.conn) else { return };
                lock(&conn.flags).last_method = Some(Method::ChannelOpen);
                let connection = &conn.connection;
                match self.timed(connection.create_channel()).await {
                    Outcome::Ok(channel) => {
                        let flags = Arc::new(Mutex::new(ChanFlags {
                            last_method: Some(Method::ChannelOpen),
                            ..ChanFlags::default()
                        }));
                        lock(&conn.registry).push((*ch, channel.clone(), flags.clone()));
                        self.chans.insert(
                            *ch,
                            Chan { channel, flags, consumers: Vec::new(), confirm_seq: None, unprobed: None },
                        );
                        self.push(Event::ChannelOpenOk { ch: *ch });
                    }
                    Outcome::Failed(e) => {
                        if e.is_amqp_hard_error() {
                            let conn = self.conns.remove(&ch.conn).expect("connection");
                            let (sink, flags) = (self.sink.clone(), conn.flags.clone());
                            report_close(&sink, *ch, &Mutex::new(ChanFlags::default()), &flags, &e);
                        } else {
                            self.problem(Problem::Client(format!("{ch}: channel.open: {e}")));
                        }
                    }
                    Outcome::TimedOut => self.abandon(ch.conn, "channel.open").await,
                }
            }
            ChannelClose { ch } => {
                let Some(chan) = self.chans.get(ch) else { return };
                lock(&chan.flags).client_closing = true;
                let ch = *ch;
                if self
                    .sync(ch, Method::ChannelClose, |c| async move { c.close(200, "OK".into()).await })
                    .await
                    .is_some()
                {
                    self.push(Event::ChannelCloseOk { ch });
                }
                self.chans.remove(&ch);
            }
            ExchangeDeclare { ch, exchange, kind, passive, durable, auto_delete, internal, arguments } => {
                let wire = names.wire(exchange);
                if !passive && !exchange.is_empty() && !exchange.is_reserved() {
                    self.exchanges.insert(wire.clone());
                }
                let kind = match kind {
                    ExchangeKind::Direct => lapin::ExchangeKind::Direct,
                    ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
                    ExchangeKind::Topic => lapin::ExchangeKind::Topic,
                    ExchangeKind::Headers => lapin::ExchangeKind::Headers,
                    ExchangeKind::Other(n) => lapin::ExchangeKind::Custom(n.as_str().to_string()),
                };
                let options = ExchangeDeclareOptions {
                    passive: *passive,
                    durable: *durable,
                    auto_delete: *auto_delete,
                    internal: *internal,
                    ..Default::default()
                };
                let args = field_table(arguments);
                self.reply(*ch, Method::ExchangeDeclare, Reply::ExchangeDeclareOk, |c| async move {
                    c.exchange_declare(wire.into(), kind, options, args).await
                })
                .await;
            }
            ExchangeDelete { ch, exchange, if_unused } => {
                let wire = names.wire(exchange);
                let gone = wire.clone();
                let options = ExchangeDeleteOptions { if_unused: *if_unused, ..Default::default() };
                let ch = *ch;
                let ok = self
                    .sync(ch, Method::ExchangeDelete, |c| async move { c.exchange_delete(wire.into(), options).await })
                    .await;
                if ok.is_some() {
                    self.exchanges.remove(&gone);
                    self.push(Event::Reply { ch, reply: Reply::ExchangeDeleteOk });
                }
            }
            ExchangeBind { ch, destination, source, routing_key, arguments } => {
                let k = exchange_binding_key(&names, &mut self.keyed, destination, source, routing_key);
                let (d, s, a) = (names.wire(destination), names.wire(source), field_table(arguments));
                self.reply(*ch, Method::ExchangeBind, Reply::ExchangeBindOk, |c| async move {
                    c.exchange_bind(d.into(), s.into(), k.into(), ExchangeBindOptions::default(), a).await
                })
                .await;
            }
            ExchangeUnbind { ch, destination, source, routing_key, arguments } => {
                let k = exchange_binding_key(&names, &mut self.keyed, destination, source, routing_key);
                let (d, s, a) = (names.wire(destination), names.wire(source), field_table(arguments));
                self.reply(*ch, Method::ExchangeUnbind, Reply::ExchangeUnbindOk, |c| async move {
                    c.exchange_unbind(d.into(), s.into(), k.into(), ExchangeUnbindOptions::default(), a).await
                })
                .await;
            }
            QueueDeclare { ch, queue, passive, durable, exclusive, auto_delete, arguments } => {
                let wire = names.wire(queue);
                if !passive && !queue.is_empty() && !queue.is_reserved() {
                    self.queues.insert(wire.clone());
                }
                let options = QueueDeclareOptions {
                    passive: *passive,
                    durable: *durable,
                    exclusive: *exclusive,
                    auto_delete: *auto_delete,
                    ..Default::default()
                };
                let args = field_table(arguments);
                let ch = *ch;
                let ok =
                    self.sync(ch, Method::QueueDeclare, |c| async move {
                        c.queue_declare(wire.into(), options, args).await
                    })
                    .await;
                if let Some(q) = ok {
                    // A server-named queue is the run's too: cleanup deletes it with the rest.
                    if queue.is_empty() && !passive {
                        self.queues.insert(q.name().to_string());
                    }
                    self.last_queue.insert(ch, names.trace(q.name().as_str()));
                    let reply = Reply::QueueDeclareOk {
                        queue: names.trace(q.name().as_str()),
                        message_count: q.message_count(),
                        consumer_count: q.consumer_count(),
                    };
                    self.push(Event::Reply { ch, reply });
                }
            }
            QueueBind { ch, queue, exchange, routing_key, arguments } => {
                if queue.is_empty() && routing_key.is_empty() {
                    self.keyed.extend(self.last_queue.get(ch).cloned());
                }
                let (q, x, k, a) = (
                    names.wire(queue),
                    names.wire(exchange),
                    queue_binding_key(&names, &self.keyed, exchange, routing_key),
                    field_table(arguments),
                );
                self.reply(*ch, Method::QueueBind, Reply::QueueBindOk, |c| async move {
                    c.queue_bind(q.into(), x.into(), k.into(), QueueBindOptions::default(), a).await
                })
                .await;
            }
            QueueUnbind { ch, queue, exchange, routing_key, arguments } => {
                let (q, x, k, a) = (
                    names.wire(queue),
                    names.wire(exchange),
                    queue_binding_key(&names, &self.keyed, exchange, routing_key),
                    field_table(arguments),
                );
                self.reply(*ch, Method::QueueUnbind, Reply::QueueUnbindOk, |c| async move {
                    c.queue_unbind(q.into(), x.into(), k.into(), a).await
                })
                .await;
            }
            QueuePurge { ch, queue } => {
                let q = names.wire(queue);
                let ch = *ch;
                let ok = self
                    .sync(ch, Method::QueuePurge, |c| async move {
                        c.queue_purge(q.into(), QueuePurgeOptions::default()).await
                    })
                    .await;
                if let Some(message_count) = ok {
                    self.push(Event::Reply { ch, reply: Reply::QueuePurgeOk { message_count } });
                }
            }
            QueueDelete { ch, queue, if_unused, if_empty } => {
                let q = names.wire(queue);
                // The queue this deletes ("" is the channel's last queue), which cleanup then
                // need not delete again (some brokers never answer a delete of a missing queue).
                let gone: Vec<String> = match queue.is_empty() {
                    true => self.last_queue.get(ch).map(|l| vec![names.wire(l), l.to_string()]).unwrap_or_default(),
                    false => vec![q.clone()],
                };
                let options = QueueDeleteOptions { if_unused: *if_unused, if_empty: *if_empty, ..Default::default() };
                let ch = *ch;
                let ok = self
                    .sync(ch, Method::QueueDelete, |c| async move { c.queue_delete(q.into(), options).await })
                    .await;
                if let Some(message_count) = ok {
                    for g in gone {
                        self.queues.remove(&g);
                    }
                    self.push(Event::Reply { ch, reply: Reply::QueueDeleteOk { message_count } });
                }
            }
            BasicQos { ch, prefetch_count, global } => {
                let (n, options) = (*prefetch_count, BasicQosOptions { global: *global });
                self.reply(*ch, Method::BasicQos, Reply::QosOk, |c| async move { c.basic_qos(n, options).await }).await;
            }
            BasicConsume { ch, queue, consumer_tag, no_ack, exclusive } => {
                let (q, tag) = (names.wire(queue), consumer_tag.to_string());
                let options = BasicConsumeOptions { no_ack: *no_ack, exclusive: *exclusive, ..Default::default() };
                let ch = *ch;
                let ok = self
                    .sync(ch, Method::BasicConsume, |c| async move {
                        c.basic_consume(q.into(), tag.into(), options, FieldTable::default()).await
                    })
                    .await;
                if let Some(consumer) = ok {
                    let tag = consumer.tag().to_string();
                    self.push(Event::Reply { ch, reply: Reply::ConsumeOk { consumer_tag: Name::from(tag.as_str()) } });
                    let (Some(chan), Some(conn)) = (self.chans.get_mut(&ch), self.conns.get(&ch.conn)) else { return };
                    let (sink, chan_flags, conn_flags) = (self.sink.clone(), chan.flags.clone(), conn.flags.clone());
                    consumer.set_delegate(move |delivery: lapin::message::DeliveryResult| {
                        match delivery {
                            Ok(Some(d)) => {
                                let message =
                                    names.message(d.exchange.as_str(), d.routing_key.as_str(), &d.properties, &d.data);
                                sink.push(Event::Deliver {
                                    ch,
                                    consumer_tag: Name::from(tag.as_str()),
                                    delivery_tag: d.delivery_tag,
                                    redelivered: d.redelivered,
                                    queue: Name::default(),
                                    message,
                                });
                            }
                            Ok(None) => {
                                let f = lock(&chan_flags);
                                let ours = f.client_closing || f.cancelled.contains(&tag) || f.errored.contains(&tag);
                                drop(f);
                                if !ours && !lock(&conn_flags).client_closing {
                                    sink.push(Event::Cancel { ch, consumer_tag: Name::from(tag.as_str()) });
                                }
                            }
                            Err(e) => {
                                lock(&chan_flags).errored.insert(tag.clone());
                                report_close(&sink, ch, &chan_flags, &conn_flags, &e);
                            }
                        }
                        std::future::ready(())
                    });
                    chan.consumers.push(consumer);
                }
            }
            BasicCancel { ch, consumer_tag } => {
                let Some(chan) = self.chans.get(ch) else { return };
                lock(&chan.flags).cancelled.insert(consumer_tag.to_string());
                let tag = consumer_tag.to_string();
                let channel = chan.channel.clone();
                let done = self
                    .sync(*ch, Method::BasicCancel, |c| async move {
                        c.basic_cancel(tag.into(), BasicCancelOptions::default()).await
                    })
                    .await;
                // lapin also resolves a pending cancel when the server closes the channel (the
                // consumer is gone either way): that close is the answer, reported by the watcher.
                if done.is_some() && channel.status().connected() {
                    self.push(Event::Reply { ch: *ch, reply: Reply::CancelOk { consumer_tag: consumer_tag.clone() } });
                }
            }
            BasicPublish { ch, exchange, routing_key, mandatory, content } => {
                let ch = *ch;
                let x = names.wire(exchange);
                let prefixed = exchange.is_empty() || self.keyed.contains(routing_key);
                let k = if prefixed { names.wire(routing_key) } else { routing_key.to_string() };
                let mut props = BasicProperties::default();
                if content.persistent {
                    props = props.with_delivery_mode(2);
                }
                if !content.headers.is_empty() {
                    props = props.with_headers(field_table(&content.headers));
                }
                let body = content.body.as_str().as_bytes().to_vec();
                let options = BasicPublishOptions { mandatory: *mandatory, ..Default::default() };
                let Some(confirm) = self
                    .sync(ch, Method::BasicPublish, |c| async move {
                        c.basic_publish(x.into(), k.into(), options, &body, props).await
                    })
                    .await
                else {
                    return;
                };
                let seq = match self.chans.get_mut(&ch).and_then(|c| c.confirm_seq.as_mut()) {
                    Some(seq) => {
                        *seq += 1;
                        *seq
                    }
                    None => return self.probe(ch, Method::BasicPublish).await,
                };
                match self.timed(confirm).await {
                    Outcome::Ok(confirmation) => {
                        let ack = confirmation.is_ack();
                        if let Confirmation::Ack(Some(r)) | Confirmation::Nack(Some(r)) = confirmation {
                            let d = &r.delivery;
                            let message =
                                names.message(d.exchange.as_str(), d.routing_key.as_str(), &d.properties, &d.data);
                            self.push_return(ch, r.reply_code, message);
                        }
                        self.push(Event::Confirm { ch, seq, ack });
                    }
                    Outcome::Failed(e) => self.failed(ch, e).await,
                    Outcome::TimedOut => self.abandon(ch.conn, "the confirm of basic.publish").await,
                }
            }
            BasicGet { ch, queue, no_ack } => {
                let q = names.wire(queue);
                let options = BasicGetOptions { no_ack: *no_ack };
                let ch = *ch;
                let ok = self.sync(ch, Method::BasicGet, |c| async move { c.basic_get(q.into(), options).await }).await;
                let reply = match ok {
                    None => return,
                    Some(None) => Reply::GetEmpty,
                    Some(Some(m)) => {
                        let d = &m.delivery;
                        Reply::GetOk {
                            delivery_tag: d.delivery_tag,
                            redelivered: d.redelivered,
                            queue: Name::default(),
                            message_count: m.message_count,
                            message: names.message(d.exchange.as_str(), d.routing_key.as_str(), &d.properties, &d.data),
                        }
                    }
                };
                self.push(Event::Reply { ch, reply });
            }
            BasicAck { ch, delivery_tag, multiple } => {
                let (tag, multiple) = (*delivery_tag, *multiple);
                let options = lapin::options::BasicAckOptions { multiple };
                if self.sync(*ch, Method::BasicAck, |c| async move { c.basic_ack(tag, options).await }).await.is_some()
                {
                    self.probe(*ch, Method::BasicAck).await;
                }
            }
            BasicNack { ch, delivery_tag, multiple, requeue } => {
                let tag = *delivery_tag;
                let options = BasicNackOptions { multiple: *multiple, requeue: *requeue };
                if self
                    .sync(*ch, Method::BasicNack, |c| async move { c.basic_nack(tag, options).await })
                    .await
                    .is_some()
                {
                    self.probe(*ch, Method::BasicNack).await;
                }
            }
            BasicReject { ch, delivery_tag, requeue } => {
                let tag = *delivery_tag;
                let options = BasicRejectOptions { requeue: *requeue };
                if self
                    .sync(*ch, Method::BasicReject, |c| async move { c.basic_reject(tag, options).await })
                    .await
                    .is_some()
                {
                    self.probe(*ch, Method::BasicReject).await;
                }
            }
            BasicRecover { ch, requeue } => {
                let options = BasicRecoverOptions { requeue: *requeue };
                self.reply(
                    *ch,
                    Method::BasicRecover,
                    Reply::RecoverOk,
                    |c| async move { c.basic_recover(options).await },
                )
                .await;
            }
            ConfirmSelect { ch } => {
                let ch = *ch;
                let ok = self
                    .sync(ch, Method::ConfirmSelect, |c| async move {
                        c.confirm_select(ConfirmSelectOptions::default()).await
                    })
                    .await;
                if ok.is_some() {
                    if let Some(chan) = self.chans.get_mut(&ch) {
                        chan.confirm_seq.get_or_insert(0);
                    }
                    self.push(Event::Reply { ch, reply: Reply::ConfirmSelectOk });
                }
            }
            TxSelect { ch } => {
                self.reply(*ch, Method::TxSelect, Reply::TxSelectOk, |c| async move { c.tx_select().await }).await;
            }
            TxCommit { ch } => {
                self.reply(*ch, Method::TxCommit, Reply::TxCommitOk, |c| async move { c.tx_commit().await }).await;
                // A transaction's returns are sent at commit. lapin buffers them, but it reads
                // frames in order: those buffered when commit-ok resolved came before it.
                let before = lock(&self.sink.events).len();
                self.collect_returns(*ch).await;
                let mut sink = lock(&self.sink.events);
                let ok = Event::Reply { ch: *ch, reply: Reply::TxCommitOk };
                if let Some(at) = sink[..before].iter().rposition(|e| *e == ok) {
                    let returns: Vec<Event> = sink.drain(before..).collect();
                    sink.splice(at..at, returns);
                }
            }
            TxRollback { ch } => {
                self.reply(*ch, Method::TxRollback, Reply::TxRollbackOk, |c| async move { c.tx_rollback().await })
                    .await;
            }
        }
    }
}

impl Target for LiveTarget {
    fn command(&mut self, command: &Command, hint: Hint) -> Vec<Event> {
        self.hint = hint;
        self.reread = None;
        runtime().block_on(self.perform(command));
        self.take()
    }

    /// A passive `queue.declare` of the queue the step's `queue.declare` answered for, on the same
    /// channel, until the timeout (from the first time it is asked for this step). Each asks a
    /// little later than the one before (1 ms, doubling up to 64 ms): the answer is polled for,
    /// not slept for. Other events that arrive meanwhile stay in the inbox for the runner.
    fn reread(&mut self, command: &Command) -> Option<Vec<Event>> {
        let Command::QueueDeclare { ch, .. } = command else { return None };
        let ch = *ch;
        let now = tokio::time::Instant::now();
        let (deadline, asked) = *self.reread.get_or_insert((now + self.timing.timeout, 0));
        if now >= deadline {
            return None;
        }
        self.reread = Some((deadline, asked + 1));
        let wire = self.names.wire(self.last_queue.get(&ch)?);
        let channel = self.chans.get(&ch)?.channel.clone();
        let pause = Duration::from_millis(1 << asked.min(6));
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        let answer = runtime().block_on(async {
            tokio::time::sleep_until((now + pause).min(deadline)).await;
            let declare = channel.queue_declare(wire.as_str().into(), passive, FieldTable::default());
            tokio::time::timeout_at(deadline, declare).await
        });
        match answer {
            Ok(Ok(q)) => {
                let reply = Reply::QueueDeclareOk {
                    queue: self.names.trace(q.name().as_str()),
                    message_count: q.message_count(),
                    consumer_count: q.consumer_count(),
                };
                Some(vec![Event::Reply { ch, reply }])
            }
            Ok(Err(e)) => {
                self.problem(Problem::Client(format!("{ch}: asking again for the counts of queue {wire}: {e}")));
                None
            }
            Err(_) => None,
        }
    }

    fn listen(&mut self, how: Listen) -> Vec<Event> {
        let sink = self.sink.clone();
        match how {
            // A step this target could not perform has nothing on its way: its verdict is not
            // the broker's, and the raw-frame target (or nobody) runs the trace instead.
            Listen::Expecting if self.incomplete.is_some() => self.take(),
            Listen::Expecting => runtime().block_on(sink.next(self.timing.timeout)),
            Listen::Tail => {
                let grace = self.timing.grace;
                runtime().block_on(async move { tokio::time::sleep(grace).await });
                self.take()
            }
        }
    }

    fn finish(&mut self) -> Summary {
        let cleanup = self.cleanup();
        let mut problems = self.problems.clone();
        problems.extend(cleanup.err().map(Problem::Cleanup));
        Summary { incomplete: self.incomplete.clone(), needs_raw: self.raw_needed, problems, notes: self.notes.clone() }
    }
}

impl Drop for LiveTarget {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            eprintln!("live: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(code: ReplyCode, at: u64) -> CloseView {
        CloseView { closed: true, reported: Some((code, at)), closed_reported: true, ..CloseView::default() }
    }

    /// exchange-declare-reserved-amq-403 on a loaded machine: c1.1 was closed with 403, opened
    /// again and closed with 404 (both reported by the methods that received them), and is now
    /// open a third time and being closed with 406 when the 404's event is read. The event is
    /// the second opening's, not the third's.
    #[test]
    fn a_late_close_event_belongs_to_the_close_it_reports() {
        let third = CloseView { closed: true, ..CloseView::default() };
        let channels = [reported(ReplyCode::AccessRefused, 0), reported(ReplyCode::NotFound, 1), third];
        assert_eq!(close_event_owner(ReplyCode::NotFound, &channels), Some((1, true)));
        // With the events of the earlier closes seen, a 406 event is the third's, unreported.
        let seen = |mut v: CloseView| {
            v.event_seen = true;
            v
        };
        let channels = [seen(channels[0]), seen(channels[1]), third];
        assert_eq!(close_event_owner(ReplyCode::PreconditionFailed, &channels), Some((2, false)));
    }

    #[test]
    fn events_of_closes_with_the_same_code_are_matched_in_order() {
        let channels = [reported(ReplyCode::NotFound, 1), reported(ReplyCode::NotFound, 0)];
        assert_eq!(close_event_owner(ReplyCode::NotFound, &channels), Some((1, true)));
    }

    #[test]
    fn a_channel_still_closing_or_closed_by_the_client_is_not_taken() {
        let closing = CloseView { closed: false, ..CloseView::default() };
        let client = CloseView { closed: true, client_closing: true, ..CloseView::default() };
        assert_eq!(close_event_owner(ReplyCode::NotFound, &[closing, client]), None);
    }
}
