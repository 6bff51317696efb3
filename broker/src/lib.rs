//! # amqp-broker
//!
//! The executable model of AMQP 0-9-1 ([`amqp_model`]) served over TCP: a reference broker that
//! clients (lapin, pika, amqp091-go, ...) talk to, which does exactly what the specification
//! allows under the `spec` profile, or what RabbitMQ does under `rabbitmq`. The conformance suite
//! runs its fixtures against it over the wire (`amqp-conformance serve`, and the in-process
//! `run` target), and a Rust project can start one in its own tests: add the crate as a
//! dev-dependency, start a [`ServerHandle`] on an ephemeral port, point the client at it, and stop
//! it (or drop the handle) when done. Nothing is installed; every test gets a fresh broker.
//!
//! ```
//! use amqp_broker::{ServeConfig, ServerHandle};
//! use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
//! use lapin::types::FieldTable;
//! use lapin::{BasicProperties, Connection, ConnectionProperties};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A fresh broker on 127.0.0.1 and a port of the system's choosing (user guest/guest).
//! let broker = ServerHandle::start(ServeConfig::default())?;
//! let uri = format!("amqp://guest:guest@{}/%2f", broker.addr());
//!
//! let runtime = tokio::runtime::Runtime::new()?;
//! let body = runtime.block_on(async {
//!     let connection = Connection::connect(&uri, ConnectionProperties::default()).await?;
//!     let channel = connection.create_channel().await?;
//!     channel.queue_declare("greetings".into(), QueueDeclareOptions::default(), FieldTable::default()).await?;
//!     let props = BasicProperties::default();
//!     channel.basic_publish("".into(), "greetings".into(), BasicPublishOptions::default(), b"hello", props).await?;
//!     let no_ack = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
//!     let mut consumer = channel.basic_consume("greetings".into(), "reader".into(), no_ack, FieldTable::default()).await?;
//!     let delivery = std::future::poll_fn(|cx| futures_core::Stream::poll_next(std::pin::Pin::new(&mut consumer), cx))
//!         .await
//!         .expect("a delivery")?;
//!     connection.close(200, "bye".into()).await?;
//!     Ok::<_, lapin::Error>(delivery.data)
//! })?;
//! assert_eq!(body, b"hello");
//! broker.stop();
//! # Ok(())
//! # }
//! ```
//!
//! [`ServeConfig`] chooses the profile, the order the broker takes its own choices in
//! ([`Schedule`]: the first one, as RabbitMQ would, or seeded random ones, to shake out a client
//! that depends on one broker's order), the users, and how long a slow client may hold up its
//! deliveries. [`Server::restart`] restarts the broker in place, keeping what a real one keeps.
//!
//! ## How it works
//!
//! - One shared [`Broker`] (behind a mutex) for every connection. Each connection that completes
//!   its handshake gets a model [`ConnId`], each of its channels a [`ChanRef`]; every client
//!   method the model implements becomes a [`Command`], applied with [`Broker::apply`], and the
//!   resulting events are written, as frames, to the connections they belong to (deliveries to
//!   other connections' consumers too), through one writer task per connection.
//! - After each command the broker's internal steps (deliveries) are taken: eagerly with the
//!   profile's first choice ([`Schedule::RoundRobin`], as the runner's model target does), or
//!   picked at random from a seeded generator ([`Schedule::Random`]).
//! - What the model does not implement (`channel.flow` pausing a channel, `basic.recover-async`
//!   without requeue, `immediate`, `prefetch-size`, and under `spec` `no-local`, which RabbitMQ
//!   ignores) is refused with `connection.close` 540 (consumer
//!   arguments are taken: `x-priority` ranks consumers under `rabbitmq`); frames that cannot be
//!   parsed with 501. A `channel.flow` asking for the channel to stay active, `basic.recover-async`
//!   with requeue and RabbitMQ's `connection.update-secret` are answered as RabbitMQ 3.10.8
//!   answers them.
//! - Messages keep every property and their exact body as published (beside the model, by the
//!   model's message identity); the model sees the body, `delivery-mode` and headers.
//!
//! `conn.rs` is one connection (handshake, frames, channels, content assembly); `outbox.rs`
//! bounds what waits for a slow client; [`rare`] makes the broker do on demand what a real broker
//! rarely does (a forced close, a cancelled consumer, blocked publishers, a nack, a delay), for
//! testing a client's recovery code; `feed.rs` feeds arbitrary bytes to a connection (the fuzz
//! target's body). Methods and events are mapped to and from the model by `amqp-wire`, which the
//! conformance runner's targets share.
//!
//! This file is the server's one shared state and its life (the model behind its lock, the
//! schedule, the connections' outboxes, start, stop, restart, the CLI entry): what every connection
//! task shares.

#![deny(missing_docs, missing_debug_implementations, unsafe_code)]

pub mod access;
mod conn;
pub mod feed;
mod outbox;
pub mod rare;

use amq_protocol::frame::AMQPFrame;
use amqp_model::{Broker, ChanRef, Command, ConnId, Event, Internal, Profile, ProfileName, UsageError};
use amqp_wire::{Contents, Peer, Published};
use outbox::Outbox;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;

/// Where `serve` listens by default (loopback only).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5690";
/// How long a write may wait for a client that does not read, by default.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// A user allowed to log in (SASL PLAIN or AMQPLAIN).
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The user name.
    pub name: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User").field("name", &self.name).field("password", &"***").finish()
    }
}

/// A command-line value the server cannot take (a user, a schedule), with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadValue(String);

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadValue {}

impl FromStr for User {
    type Err = BadValue;
    fn from_str(s: &str) -> Result<Self, BadValue> {
        match s.split_once(':') {
            Some((name, password)) if !name.is_empty() => {
                Ok(User { name: name.to_string(), password: password.to_string() })
            }
            // The name only: a password is never shown.
            _ => Err(BadValue(format!("`{}` is not NAME:PASSWORD", s.split(':').next().unwrap_or("")))),
        }
    }
}

impl User {
    /// `guest:guest`, RabbitMQ's default user.
    pub fn guest() -> Self {
        User { name: "guest".into(), password: "guest".into() }
    }
}

/// How the broker's internal steps (deliveries) are scheduled after each command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Eagerly, always the first choice offered ([`Broker::settle_internal`]): round robin under
    /// the `rabbitmq` profile, as the runner's model target dispatches.
    RoundRobin,
    /// Until none is left, each picked at random among those offered, from this seed.
    Random {
        /// The generator's seed.
        seed: u64,
    },
}

/// The name of a schedule on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleKind {
    /// `round-robin`: [`Schedule::RoundRobin`].
    RoundRobin,
    /// `random`: [`Schedule::Random`].
    Random,
}

impl FromStr for ScheduleKind {
    type Err = BadValue;
    fn from_str(s: &str) -> Result<Self, BadValue> {
        match s {
            "round-robin" => Ok(ScheduleKind::RoundRobin),
            "random" => Ok(ScheduleKind::Random),
            other => Err(BadValue(format!("unknown schedule `{other}` (expected `round-robin` or `random`)"))),
        }
    }
}

/// Why `serve` could not run.
#[derive(Debug)]
pub enum ServeError {
    /// No tokio runtime could be made.
    Runtime(std::io::Error),
    /// The address could not be listened on.
    Listen {
        /// The address asked for.
        addr: String,
        /// Why not.
        error: std::io::Error,
    },
    /// SIGHUP (the restart signal) cannot be watched.
    Signal(std::io::Error),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Runtime(e) => write!(f, "{e}"),
            ServeError::Listen { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            ServeError::Signal(e) => write!(f, "cannot watch for SIGHUP: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// What the server offers in `connection.tune`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// The highest channel number.
    pub channel_max: u16,
    /// The largest frame, framing included.
    pub frame_max: u32,
    /// The heartbeat interval in seconds (0: none).
    pub heartbeat: u16,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { channel_max: 2047, frame_max: 131_072, heartbeat: 60 }
    }
}

/// How a server behaves.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The model's profile.
    pub profile: Profile,
    /// How internal steps are scheduled.
    pub schedule: Schedule,
    /// Who may log in (none: nobody).
    pub users: Vec<User>,
    /// What `connection.tune` offers.
    pub tuning: Tuning,
    /// Log connections, refusals and errors on stderr.
    pub log: bool,
    /// How long a write to a client may wait for the client to read before its socket is
    /// closed (a client that stops reading is dropped; its unacknowledged messages requeued).
    pub send_timeout: Duration,
    /// The `product` named in `connection.start`'s server properties ([`DEFAULT_PRODUCT`]).
    /// Some clients turn on RabbitMQ-specific code by it (amqp091-go's RabbitMQ tests want
    /// `RabbitMQ`); the `information` property always says what the broker is.
    pub product: String,
    /// The virtual hosts, each a broker of its own (none given: `/` alone).
    pub vhosts: Vec<String>,
    /// Users' permissions ([`access`]); a user with none may do everything everywhere.
    pub permissions: Vec<access::Permission>,
    /// Rules deliberately broken ([`amqp_model::Faults`]; none by default): a broker with a
    /// known bug, for testing what judges brokers (the runner, the traffic proxy).
    pub faults: amqp_model::Faults,
}

/// The product the reference broker names itself by default.
pub const DEFAULT_PRODUCT: &str = "amqp-model reference broker";

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            profile: Profile::rabbitmq(),
            schedule: Schedule::RoundRobin,
            users: vec![User::guest()],
            tuning: Tuning::default(),
            log: false,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            product: DEFAULT_PRODUCT.to_string(),
            vhosts: Vec::new(),
            permissions: Vec::new(),
            faults: amqp_model::Faults::NONE,
        }
    }
}

impl ServeConfig {
    /// The default configuration under `profile`.
    pub fn with_profile(profile: Profile) -> Self {
        ServeConfig { profile, ..ServeConfig::default() }
    }

    /// The virtual hosts served, in the order given, without repeats (`/` when none is).
    pub fn vhost_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for v in &self.vhosts {
            if !names.contains(v) {
                names.push(v.clone());
            }
        }
        if names.is_empty() {
            names.push("/".into());
        }
        names
    }
}

/// What a connection's writer task is told.
#[derive(Debug)]
pub(crate) enum Out {
    /// Write these frames.
    Frames(Vec<AMQPFrame>),
    /// Send heartbeats at this interval (seconds, 0: none).
    Heartbeat(u16),
    /// A `connection.close` was sent: close the socket if the client has not answered it soon.
    CloseWait,
    /// Close the socket (after what was queued before).
    Shutdown,
}

/// A connection as the shared state knows it.
#[derive(Debug)]
pub(crate) struct Slot {
    /// Its writer.
    pub(crate) out: Outbox,
    /// How it takes events.
    pub(crate) peer: Peer,
    /// The model has the connection open (no close sent or answered yet).
    pub(crate) model_open: bool,
    /// Channels the server closed whose `channel.close-ok` has not arrived: methods on them are
    /// discarded.
    pub(crate) closing: BTreeSet<u16>,
    /// The client's address.
    pub(crate) addr: SocketAddr,
}

/// Why a command could not be executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The model cannot take it (a command no client could send).
    Usage(UsageError),
    /// The model failed (a bug in the model): the connection is closed with 541.
    Internal(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(e) => write!(f, "the model cannot take the command: {e}"),
            Failure::Internal(e) => f.write_str(e),
        }
    }
}

/// Which reply of a command is not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Quiet {
    /// Every event is sent.
    No,
    /// The command's reply (the client asked `nowait`).
    Reply,
    /// The channel's close-ok (the server closes the channel itself).
    CloseOk,
}

/// A small seeded generator (xorshift64*) for the random schedule.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as usize % n.max(1)
    }
}

/// Everything behind the mutex.
#[derive(Debug)]
pub(crate) struct State {
    /// The virtual host's name.
    vhost: String,
    pub(crate) broker: Broker,
    pub(crate) slots: BTreeMap<ConnId, Slot>,
    rng: Option<Rng>,
    /// Published messages as they came, by model message identity.
    contents: Contents,
    /// Publishes held by a transaction, in order.
    pending_tx: BTreeMap<ChanRef, Vec<Arc<Published>>>,
    /// Side-table entries added since the last pruning.
    since_prune: usize,
    /// When the server started: the model's clock is the time since
    /// (`amqp_model::lifetime::clock`), so that messages and queues expire in real time.
    started: std::time::Instant,
    /// How many confirmed publishes are still to be nacked on demand ([`Server::nack`]).
    pub(crate) nacks_due: u32,
}

/// The server's shared part.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ServeConfig,
    /// Each virtual host's state: a broker of its own (`connection open virtual-host
    /// separation`), the first the default ([`Shared::lock`]).
    vhosts: BTreeMap<String, Mutex<State>>,
    /// The connection ids in use, in every virtual host (so that `c3` names one connection), and
    /// the last one given.
    ids: Mutex<(u16, BTreeSet<ConnId>)>,
    /// Told when something may have fallen due sooner than the clock task expected.
    wake: tokio::sync::Notify,
    /// A resource alarm raised on demand ([`Server::block`]): its reason while it lasts.
    pub(crate) alarm: tokio::sync::watch::Sender<Option<String>>,
    /// How long every frame waits before it is written ([`Server::delay`]), in milliseconds.
    pub(crate) delay_ms: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn new(config: ServeConfig) -> Self {
        let started = std::time::Instant::now();
        let state = |vhost: &str| State {
            vhost: vhost.to_string(),
            broker: Broker::with_faults(config.profile, config.faults),
            slots: BTreeMap::new(),
            rng: match config.schedule {
                Schedule::RoundRobin => None,
                Schedule::Random { seed } => Some(Rng::new(seed)),
            },
            contents: Contents::new(),
            pending_tx: BTreeMap::new(),
            since_prune: 0,
            started,
            nacks_due: 0,
        };
        let vhosts = config.vhost_names().into_iter().map(|v| (v.clone(), Mutex::new(state(&v)))).collect();
        Shared {
            config,
            vhosts,
            ids: Mutex::new((0, BTreeSet::new())),
            wake: tokio::sync::Notify::new(),
            alarm: tokio::sync::watch::Sender::new(None),
            delay_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The default virtual host's state, also after a panic elsewhere (each step leaves it
    /// whole or is a model bug).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        let first = self.vhosts.values().next().expect("a virtual host at least");
        first.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A virtual host's state (`None`: no such virtual host).
    pub(crate) fn lock_vhost(&self, vhost: &str) -> Option<MutexGuard<'_, State>> {
        Some(self.vhosts.get(vhost)?.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Every virtual host's state in turn, by name.
    pub(crate) fn each_vhost(&self, mut f: impl FnMut(&str, &mut State)) {
        for (name, state) in &self.vhosts {
            f(name, &mut state.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// A connection id no connection has, in any virtual host (the model's ids are `u16`: they
    /// are reused once given back with [`Shared::release_id`]).
    pub(crate) fn take_id(&self) -> Option<ConnId> {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..=u16::MAX as usize {
            ids.0 = ids.0.checked_add(1).unwrap_or(1);
            let id = ConnId(ids.0);
            if ids.1.insert(id) {
                return Some(id);
            }
        }
        None
    }

    /// Give an id back: its connection is gone.
    pub(crate) fn release_id(&self, id: ConnId) {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).1.remove(&id);
    }

    pub(crate) fn log(&self, what: impl FnOnce() -> String) {
        if self.config.log {
            eprintln!("serve: {}", what());
        }
    }
}

impl State {
    /// A slot for a connection that completed its handshake, under its id
    /// ([`Shared::take_id`]).
    pub(crate) fn register(&mut self, id: ConnId, out: Outbox, peer: Peer, addr: SocketAddr) {
        self.slots.insert(id, Slot { out, peer, model_open: false, closing: BTreeSet::new(), addr });
    }

    /// Forget a connection whose socket is gone: the model drops it if it still has it open.
    pub(crate) fn unregister(&mut self, conn: ConnId) {
        if self.slots.get(&conn).is_some_and(|s| s.model_open) {
            let _ = self.execute(&Command::ConnectionDrop { conn }, None, Quiet::No);
        }
        self.slots.remove(&conn);
        self.pending_tx.retain(|ch, _| ch.conn != conn);
    }

    /// Send frames to a connection's writer.
    pub(crate) fn send(&self, conn: ConnId, out: Out) {
        if let Some(slot) = self.slots.get(&conn) {
            slot.out.send(out);
        }
    }

    /// Apply a command (with the message as published, for a publish), take the internal steps
    /// the schedule says, and send every event to its connection.
    ///
    /// A panic in the model (a model bug) is caught and reported as [`Failure::Internal`], so that
    /// it closes only the connection whose command caused it.
    pub(crate) fn execute(&mut self, cmd: &Command, wire: Option<Arc<Published>>, quiet: Quiet) -> Result<(), Failure> {
        self.tick();
        let before = self.broker.next_msg;
        let knew = amqp_wire::Before::of(&self.broker, cmd, &self.vhost);
        // Where the profile allows several answers, the first (round robin) or one at random; a
        // publish to be nacked on demand, the model's branch that nacks it, where there is one.
        let nack = self.nacks_due > 0 && matches!(cmd, Command::BasicPublish { .. });
        let (broker, rng, nacks_due) = (&mut self.broker, &mut self.rng, &mut self.nacks_due);
        let applied = std::panic::catch_unwind(AssertUnwindSafe(|| match rng {
            _ if nack => broker.apply_all(cmd).map(|mut branches| {
                let found = branches.iter().position(rare::nacks_unhandled);
                if found.is_some() {
                    *nacks_due -= 1;
                }
                let branch = branches.swap_remove(found.unwrap_or(0));
                *broker = branch.broker;
                branch.events
            }),
            None => broker.apply(cmd),
            Some(rng) => broker.apply_all(cmd).map(|mut branches| {
                let branch = branches.swap_remove(rng.below(branches.len()));
                *broker = branch.broker;
                branch.events
            }),
        }));
        let mut events = match applied {
            Ok(Ok(events)) => events,
            Ok(Err(e)) => return Err(Failure::Usage(e)),
            Err(_) => return Err(Failure::Internal(format!("the model panicked applying {cmd:?}"))),
        };
        let after = self.broker.next_msg;
        self.bookkeep(cmd, wire, before, after, &events);
        if let Some(ch) = cmd.channel() {
            let quieted = match quiet {
                Quiet::No => None,
                Quiet::Reply => events.iter().position(|e| matches!(e, Event::Reply { ch: c, .. } if *c == ch)),
                Quiet::CloseOk => events.iter().position(|e| *e == Event::ChannelCloseOk { ch }),
            };
            if let Some(i) = quieted {
                events.remove(i);
            }
        }
        self.route(&events, Some((cmd, &knew)));
        if std::panic::catch_unwind(AssertUnwindSafe(|| self.settle())).is_err() {
            return Err(Failure::Internal(format!("the model panicked taking internal steps after {cmd:?}")));
        }
        self.prune();
        Ok(())
    }

    /// Move the model's clock to the time since the server started.
    fn tick(&mut self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.broker.window(now, now);
    }

    /// The time until the next thing falls due (an expiry), if anything will.
    fn until_due(&self) -> Option<Duration> {
        let due = self.broker.next_due()?;
        Some(Duration::from_millis(due.saturating_sub(self.started.elapsed().as_millis() as u64)))
    }

    /// Time has passed: make what has fallen due (expiries, and what they make possible).
    fn catch_up(&mut self) {
        self.tick();
        if std::panic::catch_unwind(AssertUnwindSafe(|| self.settle())).is_err() {
            eprintln!("serve: the model panicked taking internal steps as time passed");
        }
    }

    /// The broker restarts: every connection is closed (320).
    pub(crate) fn restart(&mut self) {
        let _ = self.execute(&Command::Restart, None, Quiet::No);
    }

    /// Keep the published messages beside the model: a publish routed now gets the identity the
    /// model gave it; one held by a transaction waits for the commit, which routes the held
    /// publishes in order.
    fn bookkeep(&mut self, cmd: &Command, wire: Option<Arc<Published>>, before: u32, after: u32, events: &[Event]) {
        let closed = |ch: ChanRef| {
            events.iter().any(|e| match e {
                Event::ChannelClosed { ch: c, .. } => *c == ch,
                Event::ConnectionClosed { conn, .. } => *conn == ch.conn,
                _ => false,
            })
        };
        match cmd {
            Command::BasicPublish { ch, .. } => {
                let Some(wire) = wire else { return };
                // The publish's own message is the first new one (any after it are copies it
                // dead-lettered from queues over their length limit).
                if after > before {
                    self.contents.insert(before, wire);
                    self.since_prune += 1;
                } else if after == before && !closed(*ch) {
                    self.pending_tx.entry(*ch).or_default().push(wire);
                }
            }
            Command::TxCommit { ch } => {
                let held = self.pending_tx.remove(ch).unwrap_or_default();
                for (id, wire) in (before..after).zip(held) {
                    self.contents.insert(id, wire);
                    self.since_prune += 1;
                }
            }
            Command::TxRollback { ch } => {
                self.pending_tx.remove(ch);
            }
            Command::ConnectionDrop { conn } | Command::ConnectionClose { conn } => {
                self.pending_tx.retain(|c, _| c.conn != *conn);
            }
            Command::Restart => self.pending_tx.clear(),
            _ => {}
        }
    }

    /// Take internal steps until none is left, as the schedule says, sending their events: the
    /// first one offered (as [`Broker::settle_internal`] does) or one picked at random.
    /// Deliveries to a connection whose writer is congested are held (see `outbox.rs`).
    fn settle(&mut self) {
        let mut steps = Vec::new();
        loop {
            steps.clear();
            self.broker.internal_steps(&mut steps);
            steps.retain(|step| self.may_take(step));
            if steps.is_empty() {
                break;
            }
            let i = self.rng.as_mut().map_or(0, |r| r.below(steps.len()));
            let events = self.broker.step(&steps[i]);
            self.route(&events, None);
        }
    }

    /// Whether the step may be taken now: not a delivery to a congested connection (which is
    /// told, so that it asks again once its backlog is down). A deletion the broker owes
    /// ([`Internal::Remove`]) is always taken: the reference broker makes it as soon as it is due.
    fn may_take(&self, step: &Internal) -> bool {
        let Internal::Deliver { consumer, .. } = step else { return true };
        match self.slots.get(&consumer.ch.conn) {
            Some(slot) if slot.out.congested() => {
                slot.out.hold();
                false
            }
            _ => true,
        }
    }

    /// A congested connection's backlog is down: make the deliveries held for it.
    pub(crate) fn resume(&mut self) {
        if std::panic::catch_unwind(AssertUnwindSafe(|| self.settle())).is_err() {
            eprintln!("serve: the model panicked taking internal steps after a connection's backlog cleared");
        }
        self.prune();
    }

    /// Forget published messages the model no longer has anywhere.
    fn prune(&mut self) {
        if self.since_prune < 1024 || self.contents.len() < 2 * self.broker.ledger.len() + 1024 {
            return;
        }
        self.since_prune = 0;
        let live: BTreeSet<u32> = self.broker.ledger.keys().map(|c| c.msg.0).collect();
        self.contents.retain(|id, _| live.contains(id));
    }

    /// Send each event to its connection, keeping track of the closes. A close that `cause`'s
    /// command brought on says why in RabbitMQ's words and with the rule that says so
    /// ([`amqp_wire::reason`]).
    fn route(&mut self, events: &[Event], cause: Option<(&Command, &amqp_wire::Before)>) {
        for e in events {
            let conn = e.connection();
            match e {
                Event::ChannelClosed { ch, .. } | Event::ChannelCloseOk { ch } | Event::ChannelOpenOk { ch } => {
                    self.pending_tx.remove(ch);
                }
                Event::ConnectionClosed { .. } | Event::ConnectionCloseOk { .. } => {
                    self.pending_tx.retain(|c, _| c.conn != conn);
                }
                _ => {}
            }
            let Some(slot) = self.slots.get_mut(&conn) else { continue };
            let caused = |cmd: &Command| match e {
                Event::ChannelClosed { ch, method, .. } => cmd.channel() == Some(*ch) && cmd.method() == Some(*method),
                Event::ConnectionClosed { method, .. } => method.is_some() && cmd.method() == *method,
                _ => false,
            };
            let frames = match (e, cause) {
                (Event::ChannelClosed { code, .. } | Event::ConnectionClosed { code, .. }, Some((cmd, knew)))
                    if caused(cmd) =>
                {
                    let reason = amqp_wire::reason(&self.broker, knew, cmd, *code);
                    amqp_wire::close_frame(e, &reason.detail(code.code())).into_iter().collect()
                }
                _ => amqp_wire::frames(e, &self.contents, slot.peer),
            };
            if !frames.is_empty() {
                slot.out.send(Out::Frames(frames));
            }
            match e {
                Event::ChannelClosed { ch, .. } => {
                    slot.closing.insert(ch.channel);
                }
                Event::ConnectionOpenOk { .. } => slot.model_open = true,
                Event::ConnectionClosed { .. } => {
                    slot.model_open = false;
                    slot.out.send(Out::CloseWait);
                }
                // The client closed: after close-ok the socket is the client's to close, as
                // RabbitMQ leaves it; the writer closes it itself after a while.
                Event::ConnectionCloseOk { .. } => {
                    slot.model_open = false;
                    slot.out.send(Out::CloseWait);
                }
                _ => {}
            }
        }
    }
}

/// A reference broker: the model behind an AMQP 0-9-1 listener.
#[derive(Clone, Debug)]
pub struct Server {
    shared: Arc<Shared>,
}

/// Aborts a task when dropped (the clock task, with the server's accept loop).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The reference broker's real timers: sleep until the next expiry falls due (or until a
/// command may have brought one sooner), then make it.
async fn keep_time(shared: Arc<Shared>) {
    loop {
        let mut wait: Option<Duration> = None;
        shared.each_vhost(|_, state| {
            if let Some(d) = state.until_due() {
                wait = Some(wait.map_or(d, |w| w.min(d)));
            }
        });
        match wait {
            Some(d) => {
                // A millisecond over: the model's clock counts whole milliseconds. A day at most
                // (a TTL may be ten years, past what a timer takes): it looks again then.
                let d = (d + Duration::from_millis(1)).min(Duration::from_secs(86_400));
                let _ = tokio::time::timeout(d, shared.wake.notified()).await;
            }
            None => shared.wake.notified().await,
        }
        shared.each_vhost(|_, state| state.catch_up());
    }
}

impl Server {
    /// A server with a fresh broker.
    pub fn new(config: ServeConfig) -> Self {
        Server { shared: Arc::new(Shared::new(config)) }
    }

    /// Accept connections on `listener` until the task is dropped, each served by its own task;
    /// meanwhile a clock task makes expiries as they fall due.
    pub async fn run(&self, listener: TcpListener) {
        let clock = tokio::spawn(keep_time(self.shared.clone()));
        let _stop_clock = AbortOnDrop(clock);
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(conn::run(stream, peer, self.shared.clone()));
                }
                Err(e) => {
                    self.shared.log(|| format!("accept: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// Serve one connection over any byte stream (an in-memory pipe, in tests and fuzzing) until
    /// it closes; `peer` names it in the log.
    pub async fn serve_stream<S>(&self, stream: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        conn::run(stream, peer, self.shared.clone()).await
    }

    /// The broker restarts (the model's `restart`): every connection is closed with 320
    /// CONNECTION_FORCED, and only durable entities and persistent messages in durable queues
    /// remain.
    pub fn restart(&self) {
        self.shared.each_vhost(|_, state| state.restart());
    }

    /// Whether `other` is this server (a clone of it), not another one.
    pub fn same(&self, other: &Server) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// How many connections have a socket, in every virtual host.
    pub fn connections(&self) -> usize {
        let mut n = 0;
        self.shared.each_vhost(|_, state| n += state.slots.len());
        n
    }

    /// A copy of the model's state now, of the default virtual host (the first configured).
    pub fn broker(&self) -> Broker {
        self.shared.lock().broker.clone()
    }

    /// A copy of a virtual host's model state now (`None`: no such virtual host).
    pub fn broker_of(&self, vhost: &str) -> Option<Broker> {
        Some(self.shared.lock_vhost(vhost)?.broker.clone())
    }
}

/// Restart `server` (the model's `restart`) each time the process gets SIGHUP, so that a runner
/// can restart a `serve` of another process: `--restart-cmd 'kill -HUP PID'`.
fn restart_on_hangup(server: Server) -> Result<(), ServeError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = signal(SignalKind::hangup()).map_err(ServeError::Signal)?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                server.shared.log(|| "SIGHUP: restarting (every connection closed with 320)".to_string());
                server.restart();
            }
        });
    }
    #[cfg(not(unix))]
    let _ = server;
    Ok(())
}

/// A server on an ephemeral loopback port, run by a thread of its own (with its own tokio
/// runtime); stopped when dropped.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    server: Server,
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// Start a server on `127.0.0.1:0`.
    pub fn start(config: ServeConfig) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0", config)
    }

    /// Start a server on `addr` (`127.0.0.1:0` for an ephemeral port).
    pub fn start_on(addr: &str, config: ServeConfig) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("amqp-serve")
            .enable_all()
            .build()?;
        let server = Server::new(config);
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let s = server.clone();
        let thread = std::thread::Builder::new().name("amqp-serve".into()).spawn(move || {
            runtime.block_on(async move {
                let listener = match TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("serve: {e}");
                        return;
                    }
                };
                tokio::select! {
                    _ = s.run(listener) => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime ends every connection task, closing their sockets.
            runtime.shutdown_timeout(Duration::from_millis(200));
        })?;
        Ok(ServerHandle { addr, server, runtime: handle, stop: Some(stop), thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An AMQP URI for it, with its first user (`amqp://guest:guest@127.0.0.1:PORT/%2f`).
    pub fn uri(&self) -> String {
        let user = self.server.shared.config.users.first().cloned().unwrap_or_else(User::guest);
        format!("amqp://{}:{}@{}/%2f", encode(&user.name), encode(&user.password), self.addr)
    }

    /// Open a control port on an ephemeral loopback port ([`rare::control`]: a client's test
    /// sends it `force c1`, `block`, ... while the client runs) and say where.
    pub fn control_port(&self) -> std::io::Result<SocketAddr> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let _in_runtime = self.runtime.enter();
        let listener = TcpListener::from_std(listener)?;
        self.runtime.spawn(rare::control(self.server.clone(), listener));
        Ok(addr)
    }

    /// The server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Stop it: the listener and every connection are closed.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Percent-encode a URI's user information.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `serve` subcommand's options.
#[derive(Clone, Debug)]
pub struct ServeCli {
    /// Where to listen.
    pub listen: String,
    /// The model's profile.
    pub profile: ProfileName,
    /// The schedule's kind.
    pub schedule: ScheduleKind,
    /// The random schedule's seed (default: from the clock).
    pub seed: Option<u64>,
    /// Who may log in (none given: guest:guest).
    pub users: Vec<User>,
    /// How long a write may wait for a client that does not read.
    pub send_timeout: Duration,
    /// The product named in `connection.start`.
    pub product: Option<String>,
    /// Where the control port listens, if anywhere ([`rare::control`]).
    pub control: Option<String>,
    /// The virtual hosts (none given: `/`).
    pub vhosts: Vec<String>,
    /// Users' permissions ([`access`]).
    pub permissions: Vec<access::Permission>,
}

/// The `serve` subcommand: listen where `cli` says and serve until killed. The error is one line.
pub fn run_cli(cli: &ServeCli) -> Result<(), ServeError> {
    let ServeCli { listen, profile, schedule, seed, users, send_timeout, product, control, vhosts, permissions } =
        cli.clone();
    let listen = listen.as_str();
    let schedule = match schedule {
        ScheduleKind::RoundRobin => {
            if seed.is_some() {
                eprintln!("serve: --seed is only used with --schedule random");
            }
            Schedule::RoundRobin
        }
        ScheduleKind::Random => Schedule::Random {
            seed: seed.unwrap_or_else(|| {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
            }),
        },
    };
    let users = if users.is_empty() { vec![User::guest()] } else { users.to_vec() };
    let config = ServeConfig {
        profile: Profile::named(profile),
        schedule,
        users,
        tuning: Tuning::default(),
        log: true,
        send_timeout,
        product: product.unwrap_or_else(|| DEFAULT_PRODUCT.to_string()),
        vhosts,
        permissions,
        faults: amqp_model::Faults::NONE,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        let listen_error = |error| ServeError::Listen { addr: listen.to_string(), error };
        let listener = TcpListener::bind(listen).await.map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        let schedule = match config.schedule {
            Schedule::RoundRobin => "round-robin".to_string(),
            Schedule::Random { seed } => format!("random, seed {seed}"),
        };
        let names: Vec<&str> = config.users.iter().map(|u| u.name.as_str()).collect();
        let vhosts = config.vhost_names();
        println!(
            "serving the model (profile {profile}, schedule {schedule}) over AMQP 0-9-1 on {addr}, virtual host{} {}, \
             users {}; SIGHUP restarts it (pid {})",
            if vhosts.len() > 1 { "s" } else { "" },
            vhosts.join(", "),
            names.join(", "),
            std::process::id()
        );
        let server = Server::new(config);
        restart_on_hangup(server.clone())?;
        if let Some(control) = control {
            let control_error = |error| ServeError::Listen { addr: control.clone(), error };
            let listener = TcpListener::bind(&control).await.map_err(control_error)?;
            let addr = listener.local_addr().map_err(control_error)?;
            println!("control port on {addr}: one command per line ({})", rare::HELP);
            tokio::spawn(rare::control(server.clone(), listener));
        }
        server.run(listener).await;
        Ok(())
    })
}
