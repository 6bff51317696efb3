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
    pub async fn perform(&self) -> Result<(), String> {
        match self {
            Restart::Command(cmd) => run_command(cmd).await.map_err(|e| format!("{self} {e}")),
            Restart::Embedded(server) => {
                server.restart();
                Ok(())
            }
        }
    }
}

/// Restart the broker outside any trace, then wait (up to [`RESTART_TIMEOUT`]) until the broker
/// at `uri` is [`crate::target::probe::responsive`] again.
pub fn restart_broker(restart: &Restart, uri: &super::uri::BrokerUri, timeout: Duration) -> Result<(), String> {
    crate::target::probe::block_on(restart.perform())?;
    let deadline = Instant::now() + RESTART_TIMEOUT;
    loop {
        match crate::target::probe::responsive(uri, timeout) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(format!("after the {restart}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Run a restart command with `sh -c`, at most [`RESTART_TIMEOUT`].
async fn run_command(cmd: &str) -> Result<(), String> {
    let mut child = std::process::Command::new("sh")
        .args(["-c", cmd])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start: {e}"))?;
    let deadline = tokio::time::Instant::now() + RESTART_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                let err = err.lines().last().unwrap_or("").trim().to_string();
                return Err(format!("failed ({status}){}", if err.is_empty() { err } else { format!(": {err}") }));
            }
            Ok(None) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Ok(None) => {
                let _ = child.kill();
                return Err(format!("did not finish within {RESTART_TIMEOUT:?}"));
            }
            Err(e) => return Err(format!("could not be waited for: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_command_names_itself_and_its_error() {
        let r = Restart::Command("echo nope >&2; exit 3".into());
        let e = crate::target::probe::block_on(r.perform()).unwrap_err();
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
