//! Deleting what a trace made on a broker: every queue and exchange a live target created (under
//! its run-unique prefix), over one connection per broker kept open across traces, within a time
//! budget, also when the trace failed.

use super::probe::connect;
use super::uri::BrokerUri;
use super::{lock, Problem};
use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ErrorKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A connection for deleting what runs created, one per broker URI, kept open across traces.
pub(super) async fn cleaner(uri: &BrokerUri, timeout: Duration) -> Result<Arc<Connection>, Problem> {
    static CLEANERS: OnceLock<Mutex<HashMap<String, Arc<Connection>>>> = OnceLock::new();
    let cleaners = CLEANERS.get_or_init(Mutex::default);
    if let Some(c) = lock(cleaners).get(uri.secret()).filter(|c| c.status().connected()) {
        return Ok(c.clone());
    }
    let connection = match tokio::time::timeout(timeout, connect(uri)).await {
        Ok(Ok(c)) => Arc::new(c),
        Ok(Err(e)) => return Err(Problem::Cleanup(format!("cleanup: cannot connect to {uri}: {e}"))),
        Err(_) => return Err(Problem::Cleanup(format!("cleanup: connecting to {uri} timed out"))),
    };
    lock(cleaners).insert(uri.secret().to_string(), connection.clone());
    Ok(connection)
}

/// How many channels of the cleanup connection delete a trace's names at once.
pub(super) const CLEANUP_CHANNELS: usize = 8;

/// How long the cleanup of one trace may wait for the broker's answers to its queue.deletes, in
/// all: five step timeouts, at least 10 s (a loaded RabbitMQ once took over 2 s to answer one of
/// 256 queue.deletes sent over 8 channels; GarageMQ never answers a delete it deadlocks on, and
/// costs the whole budget then).
pub(super) fn cleanup_budget(step_timeout: Duration) -> Duration {
    (step_timeout * 5).max(Duration::from_secs(10))
}

/// Delete `items` (queue or exchange, by wire name) one after the other over one channel of
/// `connection` (opened again after a close or a delete that got no answer), each answer
/// awaited until `deadline`, or for `each` at most; what went wrong, one line per name.
/// `timeout` bounds the wait for a queue's consumers to go.
pub(super) async fn delete_all(
    connection: &Connection,
    items: Vec<(bool, String)>,
    timeout: Duration,
    deadline: tokio::time::Instant,
    each: Option<Duration>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut channel: Option<Channel> = None;
    for (is_queue, name) in items {
        let start = tokio::time::Instant::now();
        let deadline = each.map_or(deadline, |d| deadline.min(start + d));
        let within = deadline.saturating_duration_since(start);
        let Some(ch) = open(connection, &mut channel, deadline).await else {
            failures.push(format!("cannot open a channel to delete {name}"));
            continue;
        };
        let result = if is_queue {
            // The trace's connections are closed, but a broker may drop their consumers a moment
            // later: delete the queue once it has none (GarageMQ deadlocks deleting a queue that
            // still has a consumer).
            let passive = QueueDeclareOptions { passive: true, ..Default::default() };
            let consumers_gone = deadline.min(tokio::time::Instant::now() + timeout);
            while tokio::time::Instant::now() < consumers_gone {
                let declare = ch.queue_declare(name.as_str().into(), passive, FieldTable::default());
                match tokio::time::timeout_at(consumers_gone, declare).await {
                    Ok(Ok(q)) if q.consumer_count() > 0 => tokio::time::sleep(Duration::from_millis(10)).await,
                    _ => break,
                }
            }
            // An exclusive queue of a connection the trace closed is deleted by the broker with its
            // connection, but maybe only after close-ok (LavinMQ 1.0.1 deletes it once the client
            // has closed its socket): until then another connection's delete is refused with 405.
            // Ask again until the broker has deleted it (404) or deletes it for us, within the
            // step's timeout.
            let locked_until = deadline.min(tokio::time::Instant::now() + timeout);
            loop {
                let Some(ch) = open(connection, &mut channel, deadline).await else { break None };
                let delete = tokio::time::timeout_at(deadline, async {
                    ch.queue_delete(name.as_str().into(), QueueDeleteOptions::default()).await.map(|_| ())
                })
                .await;
                match &delete {
                    Ok(Err(e)) if locked(e) && tokio::time::Instant::now() < locked_until => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    _ => break Some(delete),
                }
            }
        } else {
            let delete = ch.exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default());
            Some(tokio::time::timeout_at(deadline, delete).await)
        };
        let Some(result) = result else {
            failures.push(format!("cannot open a channel to delete {name}"));
            continue;
        };
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) if not_found(&e) => {}
            Ok(Err(e)) => failures.push(format!("deleting {name}: {e}")),
            Err(_) => {
                let what = if is_queue { "queue.delete" } else { "exchange.delete" };
                failures.push(format!("deleting {name}: no answer to {what} within {within:.1?}"));
                // The channel still waits for that answer: the next name gets a new one.
                channel = None;
            }
        }
    }
    if let Some(ch) = channel.filter(|c| c.status().connected()) {
        let _ = tokio::time::timeout_at(deadline, ch.close(200, "OK".into())).await;
    }
    failures
}

/// The cleanup channel, opened again when it was closed (by a 404) or given up; None when no
/// channel could be had by `deadline`.
async fn open(
    connection: &Connection,
    channel: &mut Option<Channel>,
    deadline: tokio::time::Instant,
) -> Option<Channel> {
    if let Some(ch) = channel.as_ref().filter(|c| c.status().connected()) {
        return Some(ch.clone());
    }
    match tokio::time::timeout_at(deadline, connection.create_channel()).await {
        Ok(Ok(ch)) => {
            *channel = Some(ch.clone());
            Some(ch)
        }
        _ => None,
    }
}

/// Whether a failed method was answered 405 RESOURCE_LOCKED (a queue exclusive to another
/// connection).
fn locked(e: &lapin::Error) -> bool {
    matches!(e.kind(), ErrorKind::ProtocolError(p) if p.get_id() == 405)
}

/// Whether a failed method was answered 404 NOT_FOUND.
fn not_found(e: &lapin::Error) -> bool {
    matches!(e.kind(), ErrorKind::ProtocolError(p) if p.get_id() == 404)
}
