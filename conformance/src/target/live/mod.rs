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
//!   harmless probe right after, a passive `exchange.declare amq.topic topic durable`: the
//!   predeclared exchange as every broker has it, so that one that compares a passive declare's
//!   type and flags with the exchange's, as dispatchd does, still answers declare-ok).
//! - `drop` closes the connection cleanly (lapin cannot abort its socket): the broker requeues
//!   and deletes the same as on a lost socket, and the client observes nothing either way.
//! - `restart` is performed by the target's [`Restart`] (a command, or the in-process reference
//!   broker's restart). Without one it cannot be performed, nor can what lapin cannot send (a
//!   second `channel.open` of an open channel, a method on a channel that is not open): such a
//!   step returns no events and leaves the session incomplete ([`Summary::incomplete`]).
//!
//! `names.rs` maps trace names to wire names and back; `watch.rs` is what observes the broker
//! (the inbox, the close tracking, the connection watchers); `perform.rs` performs one command.

mod names;
mod perform;
mod watch;

use super::cleanup::{cleaner, cleanup_budget, delete_all, CLEANUP_CHANNELS};
use super::probe::runtime;
use super::restart::Restart;
use super::uri::BrokerUri;
use super::{lock, Problem, Summary, Timing};
use crate::target::{Hint, Listen, Target};
use amqp_model::event::Reply;
use amqp_model::ReplyCode;
use amqp_model::{ChanRef, Command, ConnId, Event, Message, Method, Name};
use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer, ErrorKind};
use names::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use watch::*;
/// Targets made by this process, for unique prefixes.
static TARGETS: AtomicUsize = AtomicUsize::new(0);

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
    uri: BrokerUri,
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
    /// When the session began: the runner's clock ([`Target::elapsed`]).
    started: std::time::Instant,
}

impl fmt::Debug for LiveTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveTarget")
            .field("uri", &self.uri)
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
    pub fn new(uri: &BrokerUri, timing: Timing) -> Self {
        let n = TARGETS.fetch_add(1, Ordering::Relaxed);
        LiveTarget {
            uri: uri.clone(),
            timing,
            names: Names::new(format!("amqpc-{}-{}-", std::process::id(), n)),
            started: std::time::Instant::now(),
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
    pub(crate) fn cleanup(&mut self) -> Result<(), Problem> {
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
                Err(Problem::Cleanup(format!("cleanup: {}", failures.join("; "))))
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

    /// After a method without a reply: a passive declare of `amq.topic` (which changes nothing)
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
            "amq.topic".into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions { passive: true, durable: true, ..Default::default() },
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
}

impl Target for LiveTarget {
    fn elapsed(&self) -> Option<u64> {
        Some(self.started.elapsed().as_millis() as u64)
    }

    fn sees_cancel_order(&self) -> bool {
        false
    }

    /// lapin reads what comes as it goes, and will not send on a channel it has seen closed: the
    /// trace goes to the raw-frame target.
    fn pipeline(&mut self, command: &Command) -> Vec<Event> {
        if self.incomplete.is_none() {
            let method = command.method().map_or("a command", |m| m.name());
            self.incomplete = Some(format!("lapin cannot send {method} with the next command unread (`pipelined`)"));
            self.raw_needed = true;
        }
        Vec::new()
    }

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
        let (next, deadline) = self.next_ask()?;
        let wire = self.names.wire(self.last_queue.get(&ch)?);
        let channel = self.chans.get(&ch)?.channel.clone();
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        let answer = runtime().block_on(async {
            tokio::time::sleep_until(next).await;
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

    /// A passive declare of the exchange or queue the step's declare named, on a channel of its
    /// own on the same connection (opened for it and closed after), until the timeout, spaced
    /// as [`Target::reread`]'s. The answer is reported on the step's channel: declare-ok, or the
    /// close it got (its method the step's).
    fn recheck(&mut self, command: &Command) -> Option<Event> {
        let (ch, method, wire, is_queue) = match command {
            Command::ExchangeDeclare { ch, exchange, .. } => {
                (*ch, Method::ExchangeDeclare, self.names.wire(exchange), false)
            }
            Command::QueueDeclare { ch, queue, .. } => {
                let name = if queue.is_empty() { self.last_queue.get(ch)?.clone() } else { queue.clone() };
                (*ch, Method::QueueDeclare, self.names.wire(&name), true)
            }
            _ => return None,
        };
        let (next, deadline) = self.next_ask()?;
        let connection = &self.conns.get(&ch.conn)?.connection;
        let answer = runtime().block_on(async {
            tokio::time::sleep_until(next).await;
            let ask = async {
                let scratch = connection.create_channel().await?;
                let reply = if is_queue {
                    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
                    let q = scratch.queue_declare(wire.as_str().into(), passive, FieldTable::default()).await?;
                    Reply::QueueDeclareOk {
                        queue: self.names.trace(q.name().as_str()),
                        message_count: q.message_count(),
                        consumer_count: q.consumer_count(),
                    }
                } else {
                    let passive = ExchangeDeclareOptions { passive: true, ..Default::default() };
                    let kind = lapin::ExchangeKind::Direct;
                    scratch.exchange_declare(wire.as_str().into(), kind, passive, FieldTable::default()).await?;
                    Reply::ExchangeDeclareOk
                };
                let _ = scratch.close(200, "OK".into()).await;
                Ok::<_, lapin::Error>(reply)
            };
            tokio::time::timeout_at(deadline, ask).await
        });
        match answer {
            Ok(Ok(reply)) => Some(Event::Reply { ch, reply }),
            Ok(Err(e)) => match e.kind() {
                ErrorKind::ProtocolError(p) => {
                    let code = ReplyCode::from_code(p.get_id())?;
                    Some(Event::ChannelClosed { ch, code, method })
                }
                _ => {
                    self.problem(Problem::Client(format!("{ch}: asking again whether {wire} is there: {e}")));
                    None
                }
            },
            Err(_) => None,
        }
    }

    fn forget_channel(&mut self, ch: ChanRef) {
        let Some(chan) = self.chans.remove(&ch) else { return };
        lock(&chan.flags).client_closing = true;
        let channel = chan.channel.clone();
        let timeout = self.timing.timeout;
        runtime().block_on(async move {
            if channel.status().connected() {
                let _ = tokio::time::timeout(timeout, channel.close(200, "OK".into())).await;
            }
        });
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
        problems.extend(cleanup.err());
        Summary { incomplete: self.incomplete.clone(), needs_raw: self.raw_needed, problems, notes: self.notes.clone() }
    }
}

impl LiveTarget {
    /// When to ask again ([`Target::reread`], [`Target::recheck`]) and until when the step may:
    /// each time a little later than the time before (1 ms, doubling up to 64 ms), until the
    /// timeout from the first ask of the step. None once it has passed.
    fn next_ask(&mut self) -> Option<(tokio::time::Instant, tokio::time::Instant)> {
        let now = tokio::time::Instant::now();
        let (deadline, asked) = *self.reread.get_or_insert((now + self.timing.timeout, 0));
        if now >= deadline {
            return None;
        }
        self.reread = Some((deadline, asked + 1));
        Some(((now + Duration::from_millis(1 << asked.min(6))).min(deadline), deadline))
    }
}

impl Drop for LiveTarget {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            eprintln!("live: {e}");
        }
    }
}
