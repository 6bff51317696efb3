//! Targets: what a trace is replayed against. The model itself ([`model::ModelTarget`]), a
//! live broker by its URI over lapin ([`live`]), the same broker over raw frames for what lapin
//! will not send ([`raw`]); how a broker is restarted ([`restart`]), reached and probed outside a
//! trace ([`probe`]), and cleaned of what a trace made (`cleanup`).

mod cleanup;
pub mod live;
pub mod model;
pub mod probe;
pub mod raw;
pub mod restart;
pub mod socket;
pub mod uri;

use amqp_model::{Command, Event};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How long [`Target::listen`] listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    /// The model says the broker still has something to do (a delivery it owes): return as soon
    /// as anything arrives, or empty-handed after the target's timeout.
    Expecting,
    /// The model says the broker may be done: gather whatever else arrives during the target's
    /// grace period (a duplicate, a delivery the model does not allow).
    Tail,
}

/// What the runner tells a target about a command, from the model and the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hint {
    /// The target must know the broker has acted on the command before it returns, even if the
    /// command has no reply (`basic.publish`, `basic.ack`...): the model says it may answer
    /// (a channel close, a returned message), or the next step is on another channel or a wait,
    /// and must come after it. When false, the next step is on the same channel, where AMQP
    /// keeps the order, and the model expects no answer.
    pub confirm: bool,
}

impl Hint {
    /// Always confirm (what a target does without a hint).
    pub const CONFIRM: Hint = Hint { confirm: true };
}

/// Something a trace can be run against.
pub trait Target {
    /// Perform a command (its variables already replaced by this target's names) and return
    /// everything observed until its reply (or, for commands without one, until the target
    /// knows the broker has acted on it, as `hint` asks), in arrival order.
    fn command(&mut self, command: &Command, hint: Hint) -> Vec<Event>;
    /// Send a command that the next one follows at once, before anything the broker sends in
    /// between is read (a trace's `pipelined` step follows it): return without reading, with
    /// nothing observed yet; the next [`Target::command`] returns what came for both. The live
    /// target cannot (lapin reads as it goes) and leaves the trace to the raw-frame target; a
    /// target that does not say otherwise performs it as an ordinary command.
    fn pipeline(&mut self, command: &Command) -> Vec<Event> {
        self.command(command, Hint::CONFIRM)
    }
    /// Whether the target sees where a server's `basic.cancel` came among the other events of
    /// its channel. The live target does not: lapin hands the cancel to the consumer as it reads
    /// it but a reply to the task awaiting it, later, so a `queue.delete-ok` that came first may
    /// be observed after the cancel (docs/rabbitmq-3.10.md Q63); the runner then judges the
    /// cancel apart ([`crate::validate::Validator::cancels_apart`]).
    fn sees_cancel_order(&self) -> bool {
        true
    }
    /// Listen for what the broker does on its own (deliveries, confirms, server closes).
    fn listen(&mut self, how: Listen) -> Vec<Event>;
    /// Milliseconds since the session began, on a real clock; `None` for a target whose time
    /// passes only as the trace says (the model). The runner bounds each step with it
    /// ([`amqp_model::Broker::window`]), so that what a broker does by timing is judged by the
    /// time that really passed.
    fn elapsed(&self) -> Option<u64> {
        None
    }
    /// Ask the broker again what the last command read, when the model says its answer may only
    /// have been early: the counts of a `queue.declare-ok` (RabbitMQ answers them ahead of
    /// messages still on their way into the queue). Returns the fresh answer, or None once the
    /// target's patience for this step is spent (or it cannot ask). Asking changes nothing on
    /// the broker (a passive declare of the same queue, on the same channel).
    fn reread(&mut self, _command: &Command) -> Option<Vec<Event>> {
        None
    }
    /// Ask the broker again whether the exchange or queue the step's declare names is there,
    /// when the model says its answer may be that of a broker late with a deletion it owed
    /// ([`crate::validate::Validator::explains_late`]): a passive declare, on a channel of the
    /// target's own. Returns the answer as the step's (declare-ok or the close, on the step's
    /// channel), or None once the target's patience for this step is spent (or it cannot ask).
    fn recheck(&mut self, _command: &Command) -> Option<Event> {
        None
    }
    /// The runner took a close from [`Target::recheck`] as the step's answer: close the step's
    /// channel, if still open, without reporting anything.
    fn forget_channel(&mut self, _ch: amqp_model::ChanRef) {}
    /// End the session once the trace is done: close what is open, delete what the trace made,
    /// and say how it went beside what was observed. Called once; the model has nothing to say.
    fn finish(&mut self) -> Summary {
        Summary::default()
    }
}

/// How a target's session went, beside what it observed ([`Target::finish`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Why the trace could not be performed whole (a `restart` without a way to restart, a frame
    /// the target's client will not send): its verdict then says nothing about the broker.
    pub incomplete: Option<String>,
    /// The trace was left incomplete only because lapin will not send one of its frames (a
    /// second `channel.open`, a method on a channel that is not open): the raw-frame target may
    /// perform it.
    pub needs_raw: bool,
    /// What went wrong other than the broker's answers, each naming the connection, command or
    /// name at fault.
    pub problems: Vec<Problem>,
    /// What may help read a failure (not a problem by itself): a close that followed a method
    /// the target did not confirm.
    pub notes: Vec<String>,
}

/// How long a reply (or confirm) may take before the step gives up on it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the runner listens on once the model says the broker may be done (at a `wait` step
/// and at the end of every trace), for anything the broker should not do.
pub const DEFAULT_GRACE: Duration = Duration::from_millis(50);

/// Timing of a target on a broker ([`live::LiveTarget`], [`raw::RawTarget`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Longest wait for any answer from the broker, and for a delivery the model says it owes.
    pub timeout: Duration,
    /// How long to listen once the model says the broker may be done.
    pub grace: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { timeout: DEFAULT_TIMEOUT, grace: DEFAULT_GRACE }
    }
}

/// What a suite runs against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetSpec {
    /// The model itself (dispatching eagerly).
    Model,
    /// A live broker.
    Broker {
        /// Its AMQP URI.
        uri: uri::BrokerUri,
        /// Timeouts and grace periods.
        timing: Timing,
        /// How it is restarted, if it can be.
        restart: Option<restart::Restart>,
    },
}

impl TargetSpec {
    /// How reports name what is judged: `the model`, `the reference broker, in-process` (the
    /// reference broker started by this process, whose loopback port changes from run to run),
    /// or the broker's URI without its password.
    pub fn label(&self) -> String {
        match self {
            TargetSpec::Model => "the model".into(),
            TargetSpec::Broker { restart: Some(restart::Restart::Embedded(_)), .. } => {
                "the reference broker, in-process".into()
            }
            TargetSpec::Broker { uri, .. } => uri.to_string(),
        }
    }
}

/// A target as the user describes it (the command line, a matrix file), before it is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Description {
    /// The model itself, without the wire.
    Model,
    /// The reference broker, started in-process on a loopback port under the run's profile and
    /// restarted in place for `restart` steps.
    Reference {
        /// Timeouts and grace periods.
        timing: Timing,
        /// The product it names in `connection.start` (None: its own name).
        product: Option<String>,
    },
    /// A broker by its AMQP URI.
    Broker {
        /// Its AMQP URI.
        uri: uri::BrokerUri,
        /// Timeouts and grace periods.
        timing: Timing,
        /// The shell command that restarts it, keeping durable data, if it can be restarted.
        restart_cmd: Option<String>,
    },
}

/// A target ready for traces: what the suite runs against, with the in-process reference broker
/// it owns, if any (stopped when this is dropped).
#[derive(Debug)]
pub struct OpenTarget {
    /// What the suite runs against.
    pub spec: TargetSpec,
    /// The reference broker started for it.
    server: Option<amqp_broker::ServerHandle>,
}

impl OpenTarget {
    /// Whether the target is the reference broker this process started.
    pub fn in_process(&self) -> bool {
        self.server.is_some()
    }
}

/// Why a target could not be reached.
#[derive(Debug)]
pub enum OpenError {
    /// The reference broker did not start (no loopback port to be had).
    Reference(std::io::Error),
    /// The broker is not there, or does not let the runner in ([`probe::check_login`]).
    Login(probe::ProbeError),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Reference(e) => write!(f, "cannot start the reference broker: {e}"),
            OpenError::Login(e) => write!(f, "{e}"),
        }
    }
}

impl Description {
    /// Reach the target: start the reference broker under `profile`, or check that the broker
    /// lets the runner in (within the timing's timeout).
    pub fn open(&self, profile: amqp_model::ProfileName) -> Result<OpenTarget, OpenError> {
        match self {
            Description::Model => Ok(OpenTarget { spec: TargetSpec::Model, server: None }),
            Description::Reference { timing, product } => {
                let mut config = amqp_broker::ServeConfig::with_profile(amqp_model::Profile::named(profile));
                if let Some(product) = product {
                    config.product = product.clone();
                }
                let server = amqp_broker::ServerHandle::start(config).map_err(OpenError::Reference)?;
                let restart = Some(restart::Restart::Embedded(server.server().clone()));
                let uri = uri::BrokerUri::parse(&server.uri()).expect("the reference broker's URI parses");
                let spec = TargetSpec::Broker { uri, timing: *timing, restart };
                Ok(OpenTarget { spec, server: Some(server) })
            }
            Description::Broker { uri, timing, restart_cmd } => {
                probe::check_login(uri, timing.timeout).map_err(OpenError::Login)?;
                let restart = restart::Restart::command(restart_cmd.as_deref());
                Ok(OpenTarget { spec: TargetSpec::Broker { uri: uri.clone(), timing: *timing, restart }, server: None })
            }
        }
    }
}

/// Something that went wrong in a target's session other than the broker's answers: it makes a
/// trace's result an error (the verdict says nothing about the broker), or a note beside a
/// failure. Shown as its text, which names the connection, command or name at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The broker did not answer in time; the connection was given up.
    Timeout(String),
    /// A connection could not be had: refused, timed out, a URI the client cannot use.
    Connect(String),
    /// The client side failed: a method the client library refused or lost, a frame it could
    /// not encode, a connection the trace opened twice.
    Client(String),
    /// The restart command failed.
    Restart(restart::RestartError),
    /// Deleting what the trace made failed.
    Cleanup(String),
    /// The broker had stopped answering after an earlier trace and was not brought back: this
    /// one was not run.
    Lost(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Timeout(s) | Problem::Connect(s) | Problem::Client(s) | Problem::Cleanup(s) | Problem::Lost(s) => {
                f.write_str(s)
            }
            Problem::Restart(e) => write!(f, "{e}"),
        }
    }
}

/// The guarded value of `m`, also when a thread panicked while holding it (what the target's
/// state records stays usable for the report).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
