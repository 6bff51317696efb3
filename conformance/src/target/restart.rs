//! How a broker target is restarted: for the traces' `restart` step (durable entities and
//! persistent messages must survive it) and to recover a broker that stopped answering after a
//! failed trace.
//!
//! A live broker is restarted by a shell command of the user's (`--restart-cmd`, for RabbitMQ
//! `rabbitmqctl stop_app && rabbitmqctl start_app`); the in-process reference broker by
//! [`amqp_broker::Server::restart`], which closes every connection with 320 and keeps what the
//! model keeps across a restart.

use amqp_broker::Server;
use std::fmt;
use std::time::{Duration, Instant};

/// How long a restart command may take.
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(120);

/// A way to restart a broker target.
#[derive(Clone)]
pub enum Restart {
    /// A shell command (run with `sh -c`) that returns once the broker accepts connections again.
    Command(String),
    /// The reference broker running in this process.
    Embedded(Server),
}

impl fmt::Debug for Restart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How reports name it: `restart command `...`` or `the reference broker's restart`.
impl fmt::Display for Restart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Restart::Command(cmd) => write!(f, "restart command `{cmd}`"),
            Restart::Embedded(_) => f.write_str("the reference broker's restart"),
        }
    }
}

impl PartialEq for Restart {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Restart::Command(a), Restart::Command(b)) => a == b,
            (Restart::Embedded(a), Restart::Embedded(b)) => a.same(b),
            _ => false,
        }
    }
}

impl Eq for Restart {}

impl Restart {
    /// `--restart-cmd`'s value as a restart, if given.
    pub fn command(cmd: Option<&str>) -> Option<Restart> {
        cmd.map(|c| Restart::Command(c.to_string()))
    }

    /// Restart the broker; the error says what went wrong, naming the command.
    pub async fn perform(&self) -> Result<(), RestartError> {
        match self {
            Restart::Command(cmd) => {
                run_command(cmd).await.map_err(|failure| RestartError::Command { restart: self.to_string(), failure })
            }
            Restart::Embedded(server) => {
                server.restart();
                Ok(())
            }
        }
    }
}

/// Restart the broker outside any trace, then wait (up to [`RESTART_TIMEOUT`]) until the broker
/// at `uri` is [`crate::target::probe::responsive`] again.
pub fn restart_broker(restart: &Restart, uri: &super::uri::BrokerUri, timeout: Duration) -> Result<(), RestartError> {
    crate::target::probe::block_on(restart.perform())?;
    let deadline = Instant::now() + RESTART_TIMEOUT;
    loop {
        match crate::target::probe::responsive(uri, timeout) {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() >= deadline => {
                return Err(RestartError::NotBack { restart: restart.to_string(), error })
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Why a restart failed: shown as one line naming the restart command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestartError {
    /// The command failed.
    Command {
        /// The restart, as shown (`restart command `...``).
        restart: String,
        /// How.
        failure: CommandFailure,
    },
    /// The command succeeded, but the broker did not answer again within [`RESTART_TIMEOUT`].
    NotBack {
        /// The restart, as shown.
        restart: String,
        /// The last probe's error.
        error: super::probe::ProbeError,
    },
}

/// How a restart command failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandFailure {
    /// It could not be started.
    Start(String),
    /// It exited with this status (`std::process::ExitStatus`'s text), the last line of its
    /// standard error after it (empty when it wrote none).
    Exit {
        /// The status.
        status: String,
        /// The last line it wrote to standard error.
        stderr: String,
    },
    /// It did not finish within [`RESTART_TIMEOUT`] and was killed.
    Timeout,
    /// It could not be waited for.
    Wait(String),
}

impl fmt::Display for RestartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartError::Command { restart, failure } => match failure {
                CommandFailure::Start(e) => write!(f, "{restart} could not start: {e}"),
                CommandFailure::Exit { status, stderr } if stderr.is_empty() => {
                    write!(f, "{restart} failed ({status})")
                }
                CommandFailure::Exit { status, stderr } => write!(f, "{restart} failed ({status}): {stderr}"),
                CommandFailure::Timeout => write!(f, "{restart} did not finish within {RESTART_TIMEOUT:?}"),
                CommandFailure::Wait(e) => write!(f, "{restart} could not be waited for: {e}"),
            },
            RestartError::NotBack { restart, error } => write!(f, "after the {restart}: {error}"),
        }
    }
}

impl std::error::Error for RestartError {}

/// Run a restart command with `sh -c`, at most [`RESTART_TIMEOUT`].
async fn run_command(cmd: &str) -> Result<(), CommandFailure> {
    let mut child = std::process::Command::new("sh")
        .args(["-c", cmd])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| CommandFailure::Start(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + RESTART_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                let stderr = err.lines().last().unwrap_or("").trim().to_string();
                return Err(CommandFailure::Exit { status: status.to_string(), stderr });
            }
            Ok(None) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Ok(None) => {
                let _ = child.kill();
                return Err(CommandFailure::Timeout);
            }
            Err(e) => return Err(CommandFailure::Wait(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_command_names_itself_and_its_error() {
        let r = Restart::Command("echo nope >&2; exit 3".into());
        let e = crate::target::probe::block_on(r.perform()).unwrap_err().to_string();
        assert!(e.starts_with("restart command `echo nope >&2; exit 3` failed ("), "{e}");
        assert!(e.ends_with(": nope"), "{e}");
        assert!(crate::target::probe::block_on(Restart::Command("true".into()).perform()).is_ok());
    }

    #[test]
    fn restarts_compare_by_command_or_server() {
        let a = Server::new(amqp_broker::ServeConfig::default());
        assert_eq!(Restart::Embedded(a.clone()), Restart::Embedded(a.clone()));
        assert_ne!(Restart::Embedded(a), Restart::Embedded(Server::new(amqp_broker::ServeConfig::default())));
        assert_eq!(Restart::command(Some("x")), Some(Restart::Command("x".into())));
        assert_ne!(Restart::command(Some("x")), Restart::command(Some("y")));
    }
}
