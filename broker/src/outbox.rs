//! What a connection has queued for its socket, counted, so that a client that reads slowly (or
//! not at all) holds up only itself and the server's memory for it stays bounded:
//!
//! - past [`HIGH`] queued octets the connection's reader stops reading from the client (its own
//!   publishes and requests wait in TCP's buffers), and deliveries to its consumers are held in
//!   their queues: delivery is the broker's own step, which the model lets it take later;
//! - once the writer has brought the backlog under [`LOW`], reading goes on and the held
//!   deliveries are made;
//! - a write that makes no progress for the configured send timeout closes the socket (the model
//!   drops the connection, so its unacknowledged messages go back to their queues).

use super::Out;
use amq_protocol::frame::AMQPFrame;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

/// Queued octets past which a connection is congested.
pub(crate) const HIGH: usize = 4 << 20;
/// Queued octets under which a congested connection is served again.
pub(crate) const LOW: usize = 1 << 20;

/// About how many octets a frame takes on the wire (exact for bodies, which dominate).
fn octets(frame: &AMQPFrame) -> usize {
    match frame {
        AMQPFrame::Body(_, body) => body.len() + 8,
        AMQPFrame::Header(..) => 8 + 14 + 64,
        _ => 8 + 64,
    }
}

/// What an [`Out`] adds to the backlog.
pub(crate) fn weight(out: &Out) -> usize {
    match out {
        Out::Frames(frames) => frames.iter().map(octets).sum(),
        _ => 0,
    }
}

#[derive(Debug, Default)]
struct Counts {
    /// Octets queued and not yet written.
    queued: AtomicUsize,
    /// A delivery to this connection was held back while it was congested.
    held: AtomicBool,
}

/// The sending side: the connection's own task and the shared state queue frames through it.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    tx: UnboundedSender<Out>,
    counts: Arc<Counts>,
}

/// The writer's side: what it takes, and what it tells the others once written.
#[derive(Debug)]
pub(crate) struct Inbox {
    pub(crate) rx: UnboundedReceiver<Out>,
    counts: Arc<Counts>,
}

/// A connection's queue to its writer.
pub(crate) fn outbox() -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let counts = Arc::new(Counts::default());
    (Outbox { tx, counts: counts.clone() }, Inbox { rx, counts })
}

impl Outbox {
    /// Queue for the writer (nothing happens when the writer has ended).
    pub(crate) fn send(&self, out: Out) {
        self.counts.queued.fetch_add(weight(&out), Ordering::Relaxed);
        if self.tx.send(out).is_err() {
            // The writer is gone; keep the count from growing without end.
            self.counts.queued.store(0, Ordering::Relaxed);
        }
    }

    /// More than [`HIGH`] octets wait to be written.
    pub(crate) fn congested(&self) -> bool {
        self.counts.queued.load(Ordering::Relaxed) > HIGH
    }

    /// Note that a delivery to this connection was held back.
    pub(crate) fn hold(&self) {
        self.counts.held.store(true, Ordering::Relaxed);
    }
}

impl Inbox {
    /// `octets` of what was taken have been written. True when the backlog is now under [`LOW`]
    /// and deliveries were held back (the caller makes them).
    pub(crate) fn written(&self, octets: usize) -> bool {
        let before = self.counts.queued.fetch_sub(octets, Ordering::Relaxed);
        before.saturating_sub(octets) < LOW && self.counts.held.swap(false, Ordering::Relaxed)
    }

    /// A handle the reader uses to check for congestion.
    pub(crate) fn gauge(&self) -> Gauge {
        Gauge(self.counts.clone())
    }
}

/// The backlog as the reader sees it.
#[derive(Clone, Debug)]
pub(crate) struct Gauge(Arc<Counts>);

impl Gauge {
    /// The reader should stop reading until the backlog is under [`LOW`].
    pub(crate) fn congested(&self) -> bool {
        self.0.queued.load(Ordering::Relaxed) > HIGH
    }

    /// The backlog is under [`LOW`]: the reader may go on.
    pub(crate) fn relieved(&self) -> bool {
        self.0.queued.load(Ordering::Relaxed) < LOW
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn congestion_and_relief() {
        let (out, inbox) = outbox();
        let gauge = inbox.gauge();
        let big = || Out::Frames(vec![AMQPFrame::Body(1, vec![0; HIGH / 2])]);
        out.send(big());
        assert!(!out.congested() && !gauge.congested());
        out.send(big());
        out.send(big());
        assert!(out.congested() && gauge.congested());
        out.hold();
        // Written down to two halves: still congested, nothing to resume.
        assert!(!inbox.written(HIGH / 2 + 8));
        assert!(!gauge.relieved());
        // Under LOW: the held deliveries are to be made, once.
        assert!(inbox.written(2 * (HIGH / 2 + 8)));
        assert!(gauge.relieved() && !out.congested());
        assert!(!inbox.written(0));
    }
}
