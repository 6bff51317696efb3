//! The observer's reading of RabbitMQ's message-lifetime rules ([`crate::lifetime`]), restated
//! from the arguments and the property without the model's code: when a copy may expire, how
//! full a queue may be, whether a copy fits a queue over its limit, and where a dead message's
//! new copy must go (routed by the [`super::oracle`]).

use super::ghost::{Check, Ghost, Notable, Violation};
use super::oracle;
use super::Action;
use crate::command::Command;
use crate::event::{Event, Reply};
use crate::shared::Shared;
use crate::state::{Broker, CopyId, Queue};
use crate::types::{Message, Name, Value};

fn number(q: &Queue, key: &str) -> Option<u64> {
    q.arguments.get(key).and_then(Value::int).and_then(|i| u64::try_from(i).ok())
}

fn text<'a>(q: &'a Queue, key: &str) -> Option<&'a Name> {
    match q.arguments.get(key) {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}

/// A copy's time to live in `q`: the queue's or the message's, the smaller.
fn ttl(q: &Queue, msg: &Message) -> Option<u64> {
    let own = msg.0.content.properties.get("expiration").and_then(|e| e.as_str().trim_start_matches('+').parse().ok());
    match (number(q, "x-message-ttl"), own) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn size(msg: &Message) -> u64 {
    msg.0.content.body.as_str().len() as u64
}

/// Whether `q` refuses publishes over its limits (a quorum queue knows only `reject-publish`:
/// it reads `reject-publish-dlx` as `drop-head`).
fn rejecting(q: &Queue) -> bool {
    match q.quorum {
        true => text(q, "x-overflow").is_some_and(|o| o.as_str() == "reject-publish"),
        false => text(q, "x-overflow").is_some_and(|o| o.as_str().starts_with("reject-publish")),
    }
}

/// Whether `q` (as it was before) has no room for `msg`: refused by a `reject-publish` queue
/// that is full (a quorum queue: over its limit already), or dropped at once by a `drop-head`
/// one it does not fit even alone (unless a consumer with room takes it first: so the oracle's
/// route *may* leave such a queue out).
fn no_room(q: &Queue, msg: &Message) -> bool {
    let (len, bytes) = (number(q, "x-max-length"), number(q, "x-max-length-bytes"));
    if rejecting(q) {
        let held: u64 = q.ready.iter().map(|r| size(&r.msg)).sum();
        if q.quorum {
            // Decided at the publish, counting what is on its way (`crate::quorum`).
            let coming: Vec<&Message> = q.arriving.iter().filter(|a| a.from.is_empty()).map(|a| &a.msg).collect();
            let held = held + coming.iter().map(|m| size(m)).sum::<u64>();
            let count = (q.ready.len() + coming.len()) as u64;
            return len.is_some_and(|m| count > m) || bytes.is_some_and(|m| held > m);
        }
        len.is_some_and(|m| q.ready.len() as u64 >= m) || bytes.is_some_and(|m| held + size(msg) > m)
    } else {
        len == Some(0) || bytes.is_some_and(|m| size(msg) > m)
    }
}

/// Whether the oracle's route of a publish may leave out `q` for lack of room (see [`no_room`]).
pub(super) fn refused(pre: &Broker, q: &Name, msg: &Message) -> bool {
    pre.profile.lifetime && pre.queues.get(q).is_some_and(|q| no_room(q, msg))
}

/// Every queue within its limits: all its ready messages under `drop-head`, those that were
/// never requeued under the `reject-publish` modes (which refuse publishes only); a quorum queue,
/// which refuses only once over its limit, may hold one more (the last it took).
fn within_limits(post: &Broker) -> Result<(), Violation> {
    for (name, q) in &post.queues {
        let (len, bytes) = (number(q, "x-max-length"), number(q, "x-max-length-bytes"));
        if len.is_none() && bytes.is_none() {
            continue;
        }
        let mut counted: Vec<&Message> =
            q.ready.iter().filter(|r| !rejecting(q) || !r.redelivered).map(|r| &r.msg).collect();
        if q.quorum && rejecting(q) {
            counted.pop();
        }
        let held: u64 = counted.iter().map(|m| size(m)).sum();
        if len.is_some_and(|m| counted.len() as u64 > m) || bytes.is_some_and(|m| held > m) {
            return fail(
                Check::Length,
                format!("{name} holds {} messages, {held} bytes, over its limit", counted.len()),
            );
        }
    }
    Ok(())
}

fn fail(kind: Check, detail: String) -> Result<(), Violation> {
    Err(Violation { kind, detail: detail.into() })
}

/// The copies that died in this step (their queue and message): every copy that left the
/// ledger other than by an acknowledgement, a delivery without one, or with its queue (a purge,
/// a deletion, a restart). Why each died is the model's to say (its fixtures and tests judge
/// the reasons); that each is dead-lettered where its queue says is judged here.
fn deaths(pre: &Broker, action: &Action, events: &[Event], post: &Broker) -> Vec<(Name, Message)> {
    if Shared::same(&pre.ledger, &post.ledger) {
        return Vec::new();
    }
    let gone = |c: &CopyId| pre.ledger.contains_key(c) && !post.ledger.contains_key(c);
    match action {
        Action::Broker(crate::Internal::Expire { queue, at }) => pre
            .queues
            .get(queue)
            .and_then(|q| q.ready.get(*at))
            .map(|r| (queue.clone(), r.msg.clone()))
            .into_iter()
            .collect(),
        // Copies taken back or landing over a drop-head limit push the oldest out.
        Action::Broker(crate::Internal::Return { queue } | crate::Internal::Arrive { queue, .. }) => {
            let Some(q) = pre.queues.get(queue) else { return Vec::new() };
            let msgs = q.ready.iter().map(|r| &r.msg).chain(q.returning.iter().map(|u| &u.msg));
            msgs.filter(|m| gone(&CopyId { msg: m.id(), queue: queue.clone() }))
                .map(|m| (queue.clone(), m.clone()))
                .collect()
        }
        Action::Broker(_) => Vec::new(),
        Action::Client(cmd) | Action::Answer(cmd, _) => {
            if matches!(
                cmd,
                Command::BasicAck { .. }
                    | Command::QueuePurge { .. }
                    | Command::QueueDelete { .. }
                    | Command::Restart
                    | Command::TxCommit { .. }
            ) {
                return Vec::new();
            }
            // What went out without acknowledgement did not die.
            let handed: Vec<crate::types::MsgId> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Reply { reply: Reply::GetOk { message, .. }, .. } | Event::Deliver { message, .. } => {
                        Some(message.id())
                    }
                    _ => None,
                })
                .collect();
            let mut out = Vec::new();
            let copies =
                pre.ledger.keys().filter(|c| gone(c) && !handed.contains(&c.msg) && post.queues.contains_key(&c.queue));
            for c in copies {
                let ready = pre.queues.get(&c.queue).and_then(|q| q.ready.iter().find(|r| r.msg.id() == c.msg));
                let out_there = pre
                    .connections
                    .values()
                    .flat_map(|k| k.channels.values())
                    .flat_map(|ch| ch.unacked.values())
                    .chain(pre.queues.values().flat_map(|q| q.returning.iter()))
                    .find(|u| u.msg.id() == c.msg && u.queue == c.queue && !u.queue_gone);
                if let Some(msg) = ready.map(|r| r.msg.clone()).or_else(|| out_there.map(|u| u.msg.clone())) {
                    out.push((c.queue.clone(), msg));
                }
            }
            out
        }
    }
}

/// Whether a dead-lettered message with `deaths` (its `x-death`, latest first) going back to
/// `target` closes a loop with no rejection on it (RabbitMQ drops it there).
fn loops(deaths: &[Value], target: &Name) -> bool {
    for d in deaths {
        let Value::Table(t) = d else { return false };
        if t.get("reason") == Some(&Value::Str("rejected".into())) {
            return false;
        }
        if t.get("queue") == Some(&Value::Str(target.clone())) {
            return true;
        }
    }
    false
}

/// Each copy that died in this step and whose queue names an existing dead-letter exchange has
/// a new message, routed as the oracle says (less loops), carrying the death in `x-death`: on
/// its way to each target, or landed there, or (landed at once) refused by a target with no
/// room.
fn dead_lettered(
    pre: &Broker,
    action: &Action,
    events: &[Event],
    post: &Broker,
    ghost: &mut Ghost,
) -> Result<(), Violation> {
    let deaths = deaths(pre, action, events, post);
    if deaths.is_empty() {
        return Ok(());
    }
    let mut fresh: Vec<(Message, Vec<Name>)> = Vec::new();
    for (name, q) in &post.queues {
        let landed = q.ready.iter().map(|r| &r.msg);
        for msg in landed.chain(q.arriving.iter().map(|a| &a.msg)).filter(|m| m.id().0 >= pre.next_msg) {
            match fresh.iter_mut().find(|(m, _)| m.id() == msg.id()) {
                Some((_, at)) => at.push(name.clone()),
                None => fresh.push((msg.clone(), vec![name.clone()])),
            }
        }
    }
    for (queue, msg) in deaths {
        let Some(q) = pre.queues.get(&queue) else { continue };
        let Some(dlx) = text(q, "x-dead-letter-exchange").filter(|x| post.exchanges.contains_key(*x)) else { continue };
        let key = text(q, "x-dead-letter-routing-key").unwrap_or(&msg.0.routing_key);
        let death = |m: &Message| match m.0.content.headers.get("x-death") {
            Some(Value::Array(d)) => d.clone(),
            _ => Vec::new(),
        };
        let mut expected: Vec<Name> =
            oracle::route(post, dlx, key, &msg.0.content.headers, post.header_reading()).into_iter().collect();
        let roomless = |t: &Name| post.queues.get(t).is_some_and(|tq| no_room(tq, &msg));
        let found = fresh.iter().position(|(m, _)| {
            let d = death(m);
            let first = match d.first() {
                Some(Value::Table(t)) => t,
                _ => return false,
            };
            m.0.exchange == *dlx
                && m.0.content.body == msg.0.content.body
                && first.get("queue") == Some(&Value::Str(queue.clone()))
        });
        if let Some(i) = found {
            let (m, at) = fresh.remove(i);
            expected.retain(|t| !loops(&death(&m), t));
            if at.iter().any(|t| !expected.contains(t)) || expected.iter().any(|t| !at.contains(t) && !roomless(t)) {
                return fail(
                    Check::DeadLetter,
                    format!(
                        "message {} dead-lettered from {queue} went to {at:?}, oracle says {expected:?}",
                        msg.id().0
                    ),
                );
            }
            ghost.last = Some(Notable::DeadLettered);
        } else if expected.iter().any(|t| t != &queue && !roomless(t)) {
            return fail(
                Check::DeadLetter,
                format!("message {} died in {queue} and was not dead-lettered to {expected:?}", msg.id().0),
            );
        }
    }
    Ok(())
}

/// Every copy that left the ledger in this step has a fate the step explains: its queue is gone
/// (deleted, purged, restarted away), it was settled on the channel the step settled on or
/// closed, it went out without acknowledgement, it expired (the step's own expiry, or a `get`
/// dropping expired heads), or a length limit pushed it out. Nothing vanishes silently.
pub(super) fn fates(pre: &Broker, action: &Action, events: &[Event], post: &Broker) -> Result<(), Violation> {
    if Shared::same(&pre.ledger, &post.ledger) {
        return Ok(());
    }
    let handed: Vec<CopyId> = events
        .iter()
        .filter_map(|e| match e {
            Event::Deliver { queue, message, .. } | Event::Reply { reply: Reply::GetOk { queue, message, .. }, .. } => {
                Some(CopyId { msg: message.id(), queue: queue.clone() })
            }
            _ => None,
        })
        .collect();
    let unacked_on = |c: &CopyId, on: &dyn Fn(crate::types::ChanRef) -> bool| {
        pre.connections.iter().any(|(conn, k)| {
            k.channels.iter().any(|(n, ch)| {
                on(crate::types::ChanRef { conn: *conn, channel: *n })
                    && ch.unacked.values().any(|u| u.msg.id() == c.msg && u.queue == c.queue)
            })
        })
    };
    let limited = |q: &Name| {
        pre.queues
            .get(q)
            .is_some_and(|q| number(q, "x-max-length").is_some() || number(q, "x-max-length-bytes").is_some())
    };
    let capped = |q: &Name| pre.queues.get(q).is_some_and(|q| q.quorum && q.arguments.contains_key("x-delivery-limit"));
    let expiring = |q: &Name| pre.queues.get(q).is_some_and(|x| x.ready.iter().any(|r| ttl(x, &r.msg).is_some()));
    for c in pre.ledger.keys().filter(|c| !post.ledger.contains_key(*c)) {
        let queue_gone = !post.queues.contains_key(&c.queue)
            || matches!(
                action,
                Action::Client(Command::QueuePurge { .. } | Command::Restart)
                    | Action::Answer(Command::QueuePurge { .. } | Command::Restart, _)
            );
        let explained = queue_gone
            || handed.contains(c)
            || match action {
                Action::Broker(crate::Internal::Expire { queue, at }) => pre
                    .queues
                    .get(queue)
                    .and_then(|q| q.ready.get(*at))
                    .is_some_and(|r| r.msg.id() == c.msg && *queue == c.queue),
                // Back, or landed, over a drop-head length limit; or back once more than a quorum
                // queue's delivery limit allows.
                Action::Broker(crate::Internal::Return { queue } | crate::Internal::Arrive { queue, .. }) => {
                    *queue == c.queue && (limited(queue) || capped(queue))
                }
                Action::Broker(_) => false,
                Action::Client(cmd) | Action::Answer(cmd, _) => match cmd {
                    Command::BasicAck { ch, .. }
                    | Command::BasicNack { ch, .. }
                    | Command::BasicReject { ch, .. }
                    | Command::BasicRecover { ch, .. }
                    | Command::TxCommit { ch }
                    | Command::ChannelClose { ch } => unacked_on(c, &|x| x == *ch) || limited(&c.queue),
                    Command::ConnectionClose { conn } | Command::ConnectionDrop { conn } => {
                        unacked_on(c, &|x| x.conn == *conn) || limited(&c.queue)
                    }
                    // A failed method closes its channel (or connection): as a close.
                    other
                        if other.channel().is_some_and(|ch| {
                            events.iter().any(|e| {
                                matches!(e, Event::ChannelClosed { ch: x, .. } if *x == ch)
                                    || matches!(e, Event::ConnectionClosed { conn, .. } if *conn == ch.conn)
                            })
                        }) =>
                    {
                        unacked_on(c, &|x| x.conn == other.channel().expect("checked").conn) || limited(&c.queue)
                    }
                    Command::BasicGet { .. } => expiring(&c.queue),
                    Command::BasicPublish { .. } => limited(&c.queue),
                    _ => false,
                },
            };
        if !explained {
            return fail(
                Check::Fate,
                format!("message {} left {} without a fate the step explains ({action:?})", c.msg.0, c.queue),
            );
        }
    }
    Ok(())
}

/// Observe one step for the lifetime rules.
pub(super) fn observe(
    pre: &Broker,
    action: &Action,
    events: &[Event],
    post: &Broker,
    ghost: &mut Ghost,
) -> Result<(), Violation> {
    if !pre.profile.lifetime {
        return Ok(());
    }
    // A copy expires only once its time to live has passed since it entered its queue.
    if let Action::Broker(crate::Internal::Expire { queue, at }) = action {
        let q = &pre.queues[queue];
        let r = &q.ready[*at];
        let entered = ghost.entered.get(&CopyId { msg: r.msg.id(), queue: queue.clone() }).copied().unwrap_or(0);
        match ttl(q, &r.msg) {
            Some(t) if entered + t <= pre.clock.horizon => {}
            other => {
                return fail(
                    Check::Expiry,
                    format!(
                        "message {} expired from {queue} at {} (entered {entered}, ttl {other:?})",
                        r.msg.id().0,
                        pre.clock.horizon
                    ),
                )
            }
        }
    }
    // And is never delivered once it has surely passed.
    for e in events {
        let (queue, msg) = match e {
            Event::Deliver { queue, message, .. } => (queue, message),
            Event::Reply { reply: Reply::GetOk { queue, message, .. }, .. } => (queue, message),
            Event::Confirm { ack: false, .. } => {
                ghost.last = Some(Notable::Refused);
                continue;
            }
            _ => continue,
        };
        let copy = CopyId { msg: msg.id(), queue: queue.clone() };
        let (Some(q), Some(entered)) = (pre.queues.get(queue), ghost.entered.get(&copy)) else { continue };
        if ttl(q, msg).is_some_and(|t| entered + t < pre.clock.now) {
            return fail(Check::Expiry, format!("message {} delivered from {queue} past its time to live", msg.id().0));
        }
    }
    within_limits(post)?;
    dead_lettered(pre, action, events, post, ghost)?;
    if let Action::Client(Command::BasicPublish { .. }) = action {
        if pre.ledger.keys().any(|c| !post.ledger.contains_key(c)) {
            ghost.last = Some(Notable::DroppedOverLimit);
        }
    }
    if let Action::Broker(crate::Internal::Remove(crate::Removal::Queue(n))) = action {
        if pre.queues.get(n).is_some_and(|q| number(q, "x-expires").is_some()) {
            ghost.last = Some(Notable::QueueExpired);
        }
    }
    if let Action::Broker(crate::Internal::Expire { .. }) = action {
        ghost.last = Some(Notable::Expired);
    }
    // Bookkeeping: when each live copy with a time to live entered its queue (a requeued copy
    // keeps its time; copies without one are not kept, so that other universes do not grow).
    for (name, q) in &post.queues {
        for r in q.ready.iter().filter(|r| ttl(q, &r.msg).is_some()) {
            ghost.entered.entry(CopyId { msg: r.msg.id(), queue: name.clone() }).or_insert(pre.clock.now);
        }
    }
    if !ghost.entered.is_empty() {
        ghost.entered.retain(|c, _| post.ledger.contains_key(c));
    }
    Ok(())
}
