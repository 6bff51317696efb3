//! Legal but rare behaviour on demand, for testing a client's recovery code: what a real broker
//! may do to a client at any time, done now, by a call ([`Server::perform`]) or a line sent to
//! the control port (`serve --control ADDR`, [`control`]).
//!
//! Each is something the model allows: a forced close is the model's `drop` of the connection
//! (its unacknowledged messages back in their queues, flagged redelivered; its exclusive queues
//! gone) with `connection.close` 320; a cancelled consumer is the model's `queue.delete` of its
//! queue by another client, so consumers get `basic.cancel` where the model sends it; a blocked
//! publisher (RabbitMQ's resource alarm, `connection.blocked`) and a delay change only when
//! things happen, never what. None changes the model but through its own commands.

use super::{Out, Server};
use amqp_model::{ChanRef, Command, ConnId, Name};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// The reply text of a forced close when no reason is given.
pub const FORCED: &str = "closed on demand (serve control: force)";

/// A rare behaviour, as the control port takes it (one per line; `help` lists them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rare {
    /// `connections`: list the connections (id, address).
    Connections,
    /// `force ID|all [REASON]`: close a connection (or every one) with 320 CONNECTION_FORCED.
    Force {
        /// The connection (its `c` number in the log), or every one.
        conn: Option<u16>,
        /// The reply text's reason.
        reason: String,
    },
    /// `cancel QUEUE [VHOST]`: delete the queue as another client would: its consumers get
    /// `basic.cancel` (where the client announced `consumer_cancel_notify`).
    Cancel {
        /// The queue.
        queue: String,
        /// Its virtual host (`None`: the default one).
        vhost: Option<String>,
    },
    /// `block [REASON]`: raise a resource alarm: a connection that publishes gets
    /// `connection.blocked` (if it announced the capability) and is not read until `unblock`.
    Block {
        /// The reason `connection.blocked` gives.
        reason: String,
    },
    /// `unblock`: clear the alarm: blocked connections get `connection.unblocked` and are read.
    Unblock,
    /// `nack N`: answer the next N confirmed publishes with `basic.nack`, the message not taken,
    /// where the profile allows a nack (`spec`: `confirm all messages acknowledged`).
    Nack {
        /// How many.
        count: u32,
    },
    /// `delay MS`: hold every frame at least MS milliseconds before writing it (0: no delay).
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// `restart`: restart the broker (320 to every connection; durable things kept).
    Restart,
    /// `help`: say what the control port takes.
    Help,
}

/// What the control port takes, for `help` and `serve --help`.
pub const HELP: &str =
    "connections | force ID|all [REASON] | cancel QUEUE [VHOST] | block [REASON] | unblock | nack N \
                        | delay MS | restart | help";

impl FromStr for Rare {
    type Err = String;
    fn from_str(line: &str) -> Result<Rare, String> {
        let line = line.trim();
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let text = |default: &str| if rest.is_empty() { default.to_string() } else { rest.to_string() };
        Ok(match word {
            "connections" => Rare::Connections,
            "force" => {
                let (target, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                let conn = match target {
                    "all" => None,
                    _ => Some(
                        target
                            .trim_start_matches('c')
                            .parse()
                            .map_err(|_| format!("force: `{target}` is not a connection id (c3) or `all`"))?,
                    ),
                };
                let reason = if reason.trim().is_empty() { FORCED.to_string() } else { reason.trim().to_string() };
                Rare::Force { conn, reason }
            }
            "cancel" if !rest.is_empty() => {
                let (queue, vhost) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                let vhost = vhost.trim();
                Rare::Cancel { queue: queue.into(), vhost: (!vhost.is_empty()).then(|| vhost.to_string()) }
            }
            "cancel" => return Err("cancel: which queue?".into()),
            "block" => Rare::Block { reason: text("low on memory") },
            "unblock" => Rare::Unblock,
            "nack" => Rare::Nack { count: rest.parse().map_err(|_| format!("nack: `{rest}` is not a count"))? },
            "delay" => Rare::Delay { ms: rest.parse().map_err(|_| format!("delay: `{rest}` is not milliseconds"))? },
            "restart" => Rare::Restart,
            "help" | "" => Rare::Help,
            other => return Err(format!("unknown command `{other}` ({HELP})")),
        })
    }
}

/// Why a rare behaviour could not be done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RareError(String);

impl fmt::Display for RareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RareError {}

impl Server {
    /// Do `rare` now; the answer is one line saying what was done.
    pub fn perform(&self, rare: &Rare) -> Result<String, RareError> {
        match rare {
            Rare::Connections => {
                let list: Vec<String> = self
                    .connection_list()
                    .iter()
                    .map(|(id, addr, vhost)| format!("c{} {addr} vhost {vhost}", id.0))
                    .collect();
                Ok(if list.is_empty() { "no connections".into() } else { list.join(", ") })
            }
            Rare::Force { conn, reason } => {
                let closed = self.force_close(conn.map(ConnId), reason)?;
                let names: Vec<String> = closed.iter().map(|c| format!("c{}", c.0)).collect();
                Ok(format!("closed with 320: {}", if names.is_empty() { "none".into() } else { names.join(", ") }))
            }
            Rare::Cancel { queue, vhost } => {
                let n = self.cancel_queue(queue, vhost.as_deref())?;
                Ok(format!("queue '{queue}' deleted; {n} consumer(s) cancelled"))
            }
            Rare::Block { reason } => {
                self.block(reason);
                Ok(format!("blocking publishers: {reason}"))
            }
            Rare::Unblock => {
                self.unblock();
                Ok("unblocked".into())
            }
            Rare::Nack { count } => {
                self.nack(*count)?;
                Ok(format!("the next {count} confirmed publish(es) nacked"))
            }
            Rare::Delay { ms } => {
                self.delay(Duration::from_millis(*ms));
                Ok(format!("every frame held {ms} ms"))
            }
            Rare::Restart => {
                self.restart();
                Ok("restarted".into())
            }
            Rare::Help => Ok(HELP.into()),
        }
    }

    /// The connections with a socket that the model has open: id, address and virtual host.
    pub fn connection_list(&self) -> Vec<(ConnId, SocketAddr, String)> {
        let mut list = Vec::new();
        self.shared.each_vhost(|vhost, state| {
            let open = state.slots.iter().filter(|(_, s)| s.model_open);
            list.extend(open.map(|(id, s)| (*id, s.addr, vhost.to_string())));
        });
        list.sort();
        list
    }

    /// Close `conn` (or every connection) with 320 CONNECTION_FORCED and `reason`, as a broker
    /// shutting a connection down does: the model drops it (its unacknowledged messages go back
    /// to their queues, its exclusive queues are deleted), and the client gets `connection.close`.
    /// The connections closed.
    pub fn force_close(&self, conn: Option<ConnId>, reason: &str) -> Result<Vec<ConnId>, RareError> {
        let mut closed = Vec::new();
        self.shared.each_vhost(|_, state| {
            let open: Vec<ConnId> = state
                .slots
                .iter()
                .filter(|(id, s)| s.model_open && conn.is_none_or(|c| c == **id))
                .map(|(id, _)| *id)
                .collect();
            for id in open {
                self.shared.log(|| format!("c{}: forced close (320): {reason}", id.0));
                let _ = state.execute(&Command::ConnectionDrop { conn: id }, None, super::Quiet::No);
                if let Some(slot) = state.slots.get_mut(&id) {
                    slot.model_open = false;
                    slot.out.send(Out::Frames(vec![amqp_wire::connection_close(320, reason, 0, 0)]));
                    slot.out.send(Out::CloseWait);
                }
                closed.push(id);
            }
        });
        if let (Some(c), true) = (conn, closed.is_empty()) {
            return Err(RareError(format!("no open connection c{}", c.0)));
        }
        closed.sort();
        Ok(closed)
    }

    /// Delete `queue` as another client would (`queue.delete` on a connection of the broker's
    /// own): the model cancels its consumers (`basic.cancel` to those whose client takes it) and
    /// drops its messages. How many consumers it had.
    pub fn cancel_queue(&self, queue: &str, vhost: Option<&str>) -> Result<usize, RareError> {
        let mut state = match vhost {
            None => self.shared.lock(),
            Some(v) => self.shared.lock_vhost(v).ok_or_else(|| RareError(format!("no virtual host '{v}'")))?,
        };
        let name = Name::from(queue);
        let Some(q) = state.broker.queues.get(&name) else {
            return Err(RareError(format!("no queue '{queue}'")));
        };
        let consumers = q.consumer_count();
        let conn = self.shared.take_id().ok_or_else(|| RareError("no connection id is free".into()))?;
        let ch = ChanRef { conn, channel: 1 };
        let steps = [
            Command::ConnectionOpen { conn },
            Command::ChannelOpen { ch },
            Command::QueueDelete { ch, queue: name, if_unused: false, if_empty: false },
            Command::ConnectionClose { conn },
        ];
        let done = steps.iter().try_for_each(|cmd| state.execute(cmd, None, super::Quiet::No));
        self.shared.release_id(conn);
        done.map_err(|e| RareError(format!("{e}")))?;
        self.shared.log(|| format!("queue '{queue}' deleted on demand ({consumers} consumer(s))"));
        Ok(consumers)
    }

    /// Raise a resource alarm, as RabbitMQ does when it runs low on memory or disk (3.10.8,
    /// probe Q59): from now on a connection that publishes is sent `connection.blocked` with
    /// `reason` (if it announced the capability) and is not read further, its publish included,
    /// until [`Server::unblock`]; connections that do not publish go on.
    pub fn block(&self, reason: &str) {
        self.shared.log(|| format!("blocking publishers: {reason}"));
        self.shared.alarm.send_replace(Some(reason.to_string()));
    }

    /// Clear the alarm: each blocked connection gets `connection.unblocked` and is read again,
    /// its held publish first.
    pub fn unblock(&self) {
        self.shared.log(|| "unblocking publishers".to_string());
        self.shared.alarm.send_replace(None);
    }

    /// Answer the next `count` publishes on confirm channels (in each virtual host) with `basic.nack`, taking the
    /// model's branch in which the broker did not take the message (the `basic.nack` doc's
    /// unhandled message), where the profile has one: under `spec` (`confirm all messages
    /// acknowledged` leaves it open). The `rabbitmq` profile has no such branch: RabbitMQ nacks
    /// only when a queue's process fails, which the model leaves out, so there it is refused.
    pub fn nack(&self, count: u32) -> Result<(), RareError> {
        let profile = self.shared.config.profile;
        if !profile.confirm_nack_open {
            let name = profile.name;
            return Err(RareError(format!(
                "the {name} profile never nacks a publish it took (confirm_nack_open is off): serve --profile spec"
            )));
        }
        self.shared.each_vhost(|_, state| state.nacks_due = count);
        Ok(())
    }

    /// Hold every frame at least `by` before it is written (deliveries, confirms, replies; not
    /// heartbeats), in order, as a slow network or a busy broker would; zero ends it.
    pub fn delay(&self, by: Duration) {
        self.shared.delay_ms.store(by.as_millis() as u64, Ordering::Relaxed);
    }
}

/// Whether a branch of the model nacks a publish it did not take (the choice of `confirm all
/// messages acknowledged` whose answer is "not handled").
pub(crate) fn nacks_unhandled(branch: &amqp_model::Branch) -> bool {
    branch.choices.iter().any(|c| c.why == "confirm all messages acknowledged" && c.option == 2)
}

/// Serve the control port: each line a [`Rare`], each answered with one line, `ok: ...` or
/// `error: ...`. Loopback only is the caller's choice (`serve` binds what `--control` says).
pub async fn control(server: Server, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let server = server.clone();
        tokio::spawn(async move {
            let (rd, mut wr) = stream.into_split();
            let mut lines = BufReader::new(rd).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let answer = match line.parse::<Rare>() {
                    Ok(rare) => match server.perform(&rare) {
                        Ok(done) => format!("ok: {done}\n"),
                        Err(e) => format!("error: {e}\n"),
                    },
                    Err(e) => format!("error: {e}\n"),
                };
                if wr.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_lines_parse() {
        assert_eq!("force c3".parse(), Ok(Rare::Force { conn: Some(3), reason: FORCED.into() }));
        assert_eq!("force all going down".parse(), Ok(Rare::Force { conn: None, reason: "going down".into() }));
        assert_eq!("cancel jobs".parse(), Ok(Rare::Cancel { queue: "jobs".into(), vhost: None }));
        assert_eq!("cancel jobs test".parse(), Ok(Rare::Cancel { queue: "jobs".into(), vhost: Some("test".into()) }));
        assert_eq!("block".parse(), Ok(Rare::Block { reason: "low on memory".into() }));
        assert_eq!("delay 250".parse(), Ok(Rare::Delay { ms: 250 }));
        assert_eq!("nack 2".parse(), Ok(Rare::Nack { count: 2 }));
        assert!("force".parse::<Rare>().unwrap_err().contains("not a connection id"));
        assert!("delay soon".parse::<Rare>().unwrap_err().contains("not milliseconds"));
        assert!("explode".parse::<Rare>().unwrap_err().contains("unknown command"));
    }

    #[test]
    fn nacks_are_refused_where_the_profile_has_none() {
        let rabbitmq = Server::new(crate::ServeConfig::default());
        let refused = rabbitmq.nack(1).unwrap_err().to_string();
        assert!(refused.contains("rabbitmq profile never nacks"), "{refused}");
        let spec = Server::new(crate::ServeConfig::with_profile(amqp_model::Profile::spec()));
        assert_eq!(spec.nack(2), Ok(()));
        assert_eq!(spec.shared.lock().nacks_due, 2);
    }

    #[test]
    fn forcing_or_cancelling_what_is_not_there_says_so() {
        let server = Server::new(crate::ServeConfig::default());
        let force = server.perform(&Rare::Force { conn: Some(7), reason: FORCED.into() });
        assert_eq!(force.unwrap_err().to_string(), "no open connection c7");
        let cancel = server.perform(&Rare::Cancel { queue: "q".into(), vhost: None });
        assert_eq!(cancel.unwrap_err().to_string(), "no queue 'q'");
        assert_eq!(server.perform(&Rare::Connections), Ok("no connections".into()));
    }
}
