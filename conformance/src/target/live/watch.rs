//! What observes the broker for a live target: the inbox every observing task writes to, the
//! state of each connection and channel that tells a server's close from the client's, and the
//! task that watches a connection's events.

use crate::target::lock;
use crate::target::probe::runtime;
use amqp_model::ReplyCode;
use amqp_model::{ChanRef, ConnId, Event, Method};
use futures_core::Stream;
use lapin::protocol::AMQPErrorKind;
use lapin::{Channel, Connection, ErrorKind};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// What the observed events of a run are written to, by whichever task observes them; a
/// listener is woken by every push.
#[derive(Debug, Default)]
pub(super) struct Inbox {
    pub(super) events: Mutex<Vec<Event>>,
    pub(super) arrived: tokio::sync::Notify,
}

impl Inbox {
    pub(super) fn push(&self, e: Event) {
        lock(&self.events).push(e);
        self.arrived.notify_one();
    }

    pub(super) fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *lock(&self.events))
    }

    /// Whatever has arrived, waiting up to `patience` for the first event.
    pub(super) async fn next(&self, patience: Duration) -> Vec<Event> {
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

pub(super) type Sink = Arc<Inbox>;

/// State of a trace connection shared with its consumer delegates.
#[derive(Default)]
pub(super) struct ConnFlags {
    /// lapin's view of the connection: whether a server close was for it or for one channel.
    pub(super) status: lapin::ConnectionStatus,
    /// The client is closing the connection: cancels and errors are not the server's doing.
    pub(super) client_closing: bool,
    /// A `connection.close` from the server has been reported.
    pub(super) closed_reported: bool,
    /// The last method sent on the connection (what a server close names).
    pub(super) last_method: Option<Method>,
    /// The broker is being restarted: its close names no method.
    pub(super) restarting: bool,
    /// How many channel closes have been reported on the connection.
    pub(super) channel_closes: u64,
    /// During a restart, the connection was reset without a close lapin could report: the close
    /// is taken to be 320 CONNECTION_FORCED.
    pub(super) close_inferred: bool,
}

/// State of a trace channel shared with its consumer delegates.
#[derive(Debug, Default)]
pub(super) struct ChanFlags {
    pub(super) client_closing: bool,
    pub(super) closed_reported: bool,
    /// The code of the server close reported for this channel, and when (the connection's count
    /// of closes reported before it): what the connection's close events are matched against.
    pub(super) reported: Option<(ReplyCode, u64)>,
    /// The connection's events listener has delivered this channel's close.
    pub(super) event_seen: bool,
    pub(super) last_method: Option<Method>,
    /// Consumers the client cancelled (their end is not a server `basic.cancel`).
    pub(super) cancelled: HashSet<String>,
    /// Consumers whose channel failed (their end is not a server `basic.cancel` either).
    pub(super) errored: HashSet<String>,
}

/// Report a server close seen as `error` on `ch`, once per channel and connection.
pub(super) fn report_close(
    sink: &Sink,
    ch: ChanRef,
    chan: &Mutex<ChanFlags>,
    conn: &Mutex<ConnFlags>,
    error: &lapin::Error,
) {
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
pub(super) fn report_connection_close(sink: &Sink, conn: ConnId, flags: &Mutex<ConnFlags>, code: ReplyCode) {
    let mut f = lock(flags);
    if !f.closed_reported && !f.client_closing {
        f.closed_reported = true;
        let method = if f.restarting { None } else { f.last_method };
        sink.push(Event::ConnectionClosed { conn, code, method });
    }
}

/// The channels of a connection, as its watcher sees them.
pub(super) type Registry = Arc<Mutex<Vec<(ChanRef, Channel, Arc<Mutex<ChanFlags>>)>>>;

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
pub(super) fn watch(
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
pub(super) struct CloseView {
    /// lapin has closed the channel (not still closing it).
    pub(super) closed: bool,
    pub(super) reported: Option<(ReplyCode, u64)>,
    pub(super) event_seen: bool,
    pub(super) closed_reported: bool,
    pub(super) client_closing: bool,
}

/// Which of a connection's channels (in the order they were opened) a `channel.close` event
/// with `code` belongs to, and whether its close was already reported: the earliest close
/// reported with that code whose event was not seen yet, or else the first channel closed by the
/// server whose close nobody reported.
pub(super) fn close_event_owner(code: ReplyCode, views: &[CloseView]) -> Option<(usize, bool)> {
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
