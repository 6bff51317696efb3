//! The checker's observer: it watches every step (the state before, the action, the events and
//! the state after) and records the first violation of a transition property, judged by its own
//! bookkeeping and the independent routing oracle rather than by the model's code.

use super::oracle;
use super::Action;
use crate::command::Command;
use crate::event::{Event, Reply};
use crate::state::{Broker, ConsumerRef, CopyId, Dest, Live, Mode, PendingPublish};
use crate::types::{ChanRef, Name, ReplyCode};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// What the observer keeps between steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// The last delivery tag seen on each open channel.
    pub last_tag: BTreeMap<ChanRef, u64>,
    /// The first violation seen on this path.
    pub violation: Option<Violation>,
    /// Something notable the last step did (for the `sometimes` properties).
    pub last: Option<Notable>,
    /// When each live copy entered its queue, by the clock (for the lifetime rules: kept only
    /// under a profile that acts on them, [`super::lifetime`]).
    pub entered: BTreeMap<CopyId, u64>,
    /// The consumers of each queue in the order they subscribed, as the consume-oks showed it
    /// (for single active consumers; entries of consumers since gone are dropped lazily).
    pub subscribed: BTreeMap<Name, Vec<ConsumerRef>>,
    /// How often each live copy in a quorum queue was delivered (kept for quorum queues only).
    pub deliveries: BTreeMap<CopyId, u32>,
}

/// A transition property that failed, with what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Violation {
    /// Which property.
    pub kind: Check,
    /// What was seen.
    pub detail: Arc<str>,
}

/// The transition properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    /// Delivery tags on a channel strictly increase.
    DeliveryTags,
    /// `redelivered` is set exactly when the copy was delivered before.
    Redelivered,
    /// A delivery to a consumer only happens with prefetch room.
    Prefetch,
    /// Routing (and mandatory returns) agree with the oracle.
    Routing,
    /// Another connection's exclusive queue is never usable.
    Exclusive,
    /// A restart keeps exactly the durable entities and persistent messages in durable queues.
    Restart,
    /// No message goes out while one of a higher priority level that the taker could have had
    /// is waiting in the same queue (`basic 06`).
    Priority,
    /// A message expires only once its time to live has passed, and is never delivered after.
    Expiry,
    /// A queue holds no more than its length limits.
    Length,
    /// A dead message is republished to its queue's dead-letter exchange, routed as the oracle
    /// says.
    DeadLetter,
    /// Every copy that leaves the ledger has a fate the step explains.
    Fate,
    /// No message goes to a consumer while one of a higher `x-priority` on its queue could have
    /// taken it (RabbitMQ's consumer priorities).
    ConsumerPriority,
    /// A single-active-consumer queue delivers only to the earliest subscriber still attached.
    SingleActive,
    /// A delivery from a quorum queue carries in `x-delivery-count` how often its copy was
    /// delivered before (always for `basic.get`, once above 0 for a consumer).
    DeliveryCount,
    /// No copy of a quorum queue is delivered more than its `x-delivery-limit` allows (one first
    /// delivery and as many more as the limit).
    DeliveryLimit,
}

/// Notable outcomes of the last step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Notable {
    /// A channel or connection was closed by the broker with this code.
    Closed(ReplyCode),
    /// An auto-delete queue went away without being deleted explicitly.
    AutoDeleted,
    /// A persistent message was still there after a restart.
    Survived,
    /// A message went out ahead of one that arrived in its queue before it (by priority).
    Overtook,
    /// A consumer got a message while one of a higher priority on its queue was blocked.
    LowerPriorityServed,
    /// A mandatory message came back.
    Returned,
    /// The broker made a deletion it owed, in a step of its own (`Profile::deferred_deletion`).
    RemovedLater,
    /// A message expired.
    Expired,
    /// A dead message went to a dead-letter exchange's queue.
    DeadLettered,
    /// A publish pushed a message out of a queue over its length limit.
    DroppedOverLimit,
    /// A publish was refused (nacked).
    Refused,
    /// A queue was deleted for lack of use (`x-expires`).
    QueueExpired,
    /// An alternate exchange routed a message its exchange could not.
    Alternate,
    /// A single-active-consumer queue's delivery went to a consumer that took over from one
    /// subscribed before it.
    TookOver,
    /// A copy of a quorum queue came back once more than its delivery limit allows and was
    /// ended (dropped or dead-lettered).
    DeliveryLimitReached,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

fn fail(kind: Check, detail: String) -> Result<(), Violation> {
    Err(Violation { kind, detail: detail.into() })
}

/// Observe one step; `post_ghost` starts as a copy of the previous ghost.
pub fn observe(pre: &Broker, action: &Action, events: &[Event], post: &Broker, ghost: &mut Ghost) {
    ghost.last = None;
    let result = (|| {
        for e in events {
            watch_event(pre, e, ghost)?;
        }
        if let Action::Client(Command::BasicConsume { ch, queue, .. })
        | Action::Answer(Command::BasicConsume { ch, queue, .. }, _) = action
        {
            if has_single_active(pre, queue) {
                subscribed(*ch, queue, events, ghost);
            }
        }
        match action {
            Action::Client(cmd) | Action::Answer(cmd, _) => watch_command(pre, cmd, events, post, ghost),
            Action::Broker(crate::Internal::Remove(_)) => {
                ghost.last = Some(Notable::RemovedLater);
                Ok(())
            }
            Action::Broker(_) => Ok(()),
        }?;
        super::lifetime::fates(pre, action, events, post)?;
        super::lifetime::observe(pre, action, events, post, ghost)?;
        delivery_limit_reached(pre, action, post, ghost);
        // Whoever got deliveries in this step is within every prefetch limit afterwards, and was
        // of the highest priority that could take the message.
        for e in events {
            if let Event::Deliver { ch, consumer_tag, queue, message, .. } = e {
                within_prefetch(post, ch, consumer_tag)?;
                let to = ConsumerRef { ch: *ch, tag: consumer_tag.clone() };
                highest_priority(pre, &to, queue, message, ghost)?;
                single_active(pre, &to, queue, ghost)?;
            }
        }
        Ok(())
    })();
    if let (Err(v), None) = (result, &ghost.violation) {
        ghost.violation = Some(v);
    }
}

fn watch_event(pre: &Broker, e: &Event, ghost: &mut Ghost) -> Result<(), Violation> {
    let (ch, tag, redelivered, queue, msg) = match e {
        Event::ChannelOpenOk { ch } => {
            ghost.last_tag.insert(*ch, 0);
            return Ok(());
        }
        Event::ChannelCloseOk { ch } | Event::ChannelClosed { ch, .. } => {
            if let Event::ChannelClosed { code, .. } = e {
                ghost.last = Some(Notable::Closed(*code));
            }
            ghost.last_tag.remove(ch);
            return Ok(());
        }
        Event::ConnectionClosed { conn, code, .. } => {
            if *code != ReplyCode::ConnectionForced {
                ghost.last = Some(Notable::Closed(*code));
            }
            ghost.last_tag.retain(|ch, _| ch.conn != *conn);
            return Ok(());
        }
        Event::ConnectionCloseOk { conn } => {
            ghost.last_tag.retain(|ch, _| ch.conn != *conn);
            return Ok(());
        }
        Event::Return { .. } => {
            ghost.last = Some(Notable::Returned);
            return Ok(());
        }
        Event::Deliver { ch, delivery_tag, redelivered, queue, message, .. } => {
            (ch, *delivery_tag, *redelivered, queue, message)
        }
        Event::Reply { ch, reply: Reply::GetOk { delivery_tag, redelivered, queue, message, .. } } => {
            (ch, *delivery_tag, *redelivered, queue, message)
        }
        _ => return Ok(()),
    };
    check_priority(pre, ch, queue, msg, ghost)?;
    let last = ghost.last_tag.get(ch).copied().unwrap_or(0);
    if tag <= last {
        return fail(Check::DeliveryTags, format!("{ch} delivered tag {tag} after tag {last}"));
    }
    ghost.last_tag.insert(*ch, tag);
    let copy = CopyId { msg: msg.id(), queue: queue.clone() };
    delivery_count(pre, &copy, msg, matches!(e, Event::Reply { .. }), ghost)?;
    // Under `redelivered_flag_optional` (the SHOULD of `redelivered implementation`) a copy
    // delivered before may go out unflagged; never the other way round. (What basic.recover
    // resends must be flagged: the model never leaves that flag optional.)
    let optional = pre.profile.redelivered_flag_optional;
    match pre.ledger.get(&copy) {
        Some(Live { delivered }) if *delivered == redelivered || (optional && *delivered) => Ok(()),
        Some(Live { delivered }) => fail(
            Check::Redelivered,
            format!(
                "{ch} got message {} from {queue} with redelivered={redelivered}, delivered before: {delivered}",
                msg.id().0
            ),
        ),
        other => {
            fail(Check::Redelivered, format!("{ch} got message {} from {queue} whose copy is {other:?}", msg.id().0))
        }
    }
}

/// A delivery of `copy` from a quorum queue: its `x-delivery-count` is the number of its earlier
/// deliveries (each of which ended with the copy coming back, or it would not be delivered again),
/// present for a `basic.get` (`get`) and for a consumer once above 0; and that number is within
/// the queue's `x-delivery-limit`.
fn delivery_count(
    pre: &Broker,
    copy: &CopyId,
    msg: &crate::types::Message,
    get: bool,
    ghost: &mut Ghost,
) -> Result<(), Violation> {
    let Some(q) = pre.queues.get(&copy.queue).filter(|q| q.quorum) else { return Ok(()) };
    let before = ghost.deliveries.get(copy).copied().unwrap_or(0);
    let expected = (get || before > 0).then(|| crate::types::Value::Sized(crate::types::IntType::I64, before.into()));
    let header = msg.0.content.headers.get(crate::quorum::DELIVERY_COUNT);
    if header != expected.as_ref() {
        return fail(
            Check::DeliveryCount,
            format!("message {} from {} delivered {before} times before came with {header:?}", copy.msg.0, copy.queue),
        );
    }
    let limit = q.arguments.get("x-delivery-limit").and_then(crate::types::Value::int);
    if limit.is_some_and(|l| i64::from(before) > l.max(0)) {
        return fail(
            Check::DeliveryLimit,
            format!("message {} from {} delivered again after {before} deliveries", copy.msg.0, copy.queue),
        );
    }
    ghost.deliveries.insert(copy.clone(), before + 1);
    Ok(())
}

/// Whether a copy of a quorum queue left the ledger in a step that sends copies back (a requeue,
/// a recover, a close, a closed channel's copies taken back) after as many deliveries as its
/// limit allows ([`Notable::DeliveryLimitReached`]);
/// and the bookkeeping of [`Ghost::deliveries`]: copies that left the ledger are forgotten.
fn delivery_limit_reached(pre: &Broker, action: &Action, post: &Broker, ghost: &mut Ghost) {
    if ghost.deliveries.is_empty() || crate::shared::Shared::same(&pre.ledger, &post.ledger) {
        return;
    }
    let sends_back = match action {
        Action::Client(cmd) | Action::Answer(cmd, _) => matches!(
            cmd,
            Command::BasicReject { requeue: true, .. }
                | Command::BasicNack { requeue: true, .. }
                | Command::BasicRecover { .. }
                | Command::ChannelClose { .. }
                | Command::ConnectionClose { .. }
                | Command::ConnectionDrop { .. }
        ),
        Action::Broker(crate::Internal::Return { .. }) => true,
        Action::Broker(_) => false,
    };
    let limit = |c: &CopyId| {
        post.queues.get(&c.queue).and_then(|q| q.arguments.get("x-delivery-limit")).and_then(crate::types::Value::int)
    };
    let ended = ghost
        .deliveries
        .iter()
        .any(|(c, n)| !post.ledger.contains_key(c) && limit(c).is_some_and(|l| i64::from(*n) > l.max(0)));
    if ended && sends_back {
        ghost.last = Some(Notable::DeliveryLimitReached);
    }
    ghost.deliveries.retain(|c, _| post.ledger.contains_key(c));
}

/// `basic 06`, counted afresh: under the bands of `spec` a message of priority 5-9 outranks one
/// of 0-4; under RabbitMQ's rule, in a queue declared with `x-max-priority` N, each priority up
/// to N is a level of its own (those above N count as N), and elsewhere priorities do not count.
fn check_priority(
    pre: &Broker,
    ch: &ChanRef,
    queue: &Name,
    msg: &crate::types::Message,
    ghost: &mut Ghost,
) -> Result<(), Violation> {
    let Some(q) = pre.queues.get(queue) else { return Ok(()) };
    if !q.ready.iter().any(|r| r.msg.id() == msg.id()) {
        // Sent again from the channel's unacknowledged messages (basic.recover without requeue),
        // not taken from the queue.
        return Ok(());
    }
    let max = match pre.profile.priority_levels {
        crate::basic::priority::PriorityLevels::Bands => None,
        crate::basic::priority::PriorityLevels::MaxPriorityArgument => {
            match q.arguments.get("x-max-priority").and_then(crate::types::Value::int) {
                Some(max @ 1..=255) => Some(max as u8),
                _ => return Ok(()),
            }
        }
    };
    let rank = |m: &crate::types::Message| {
        let p = m.0.content.priority.unwrap_or(0);
        match max {
            None => u8::from(p >= 5),
            Some(max) => p.min(max),
        }
    };
    let waiting = q.ready.iter().filter(|r| r.msg.id() != msg.id() && r.avoid != Some(*ch));
    if let Some(higher) = waiting.clone().find(|r| rank(&r.msg) > rank(msg)) {
        return fail(
            Check::Priority,
            format!(
                "{ch} got message {} from {queue} while message {} of a higher level waited",
                msg.id().0,
                higher.msg.id().0
            ),
        );
    }
    if waiting.clone().any(|r| r.msg.id() < msg.id()) {
        ghost.last = Some(Notable::Overtook);
    }
    Ok(())
}

/// Under consumer priorities: `to` got `msg` from `queue`, and no consumer of a higher priority
/// there could have taken it before the step (it had prefetch room, as counted afresh, and the
/// message was not one its channel rejected).
fn highest_priority(
    pre: &Broker,
    to: &ConsumerRef,
    queue: &Name,
    msg: &crate::types::Message,
    ghost: &mut Ghost,
) -> Result<(), Violation> {
    let (Some(q), Some(mine)) = (pre.queues.get(queue), pre.consumer(to)) else { return Ok(()) };
    if !pre.profile.consumer_priorities {
        return Ok(());
    }
    let avoided = |c: &ConsumerRef| q.ready.iter().any(|r| r.msg.id() == msg.id() && r.avoid == Some(c.ch));
    let higher: Vec<&ConsumerRef> =
        q.all_consumers().filter(|c| pre.consumer(c).is_some_and(|k| k.priority > mine.priority)).collect();
    let room = |c: &ConsumerRef| {
        let Some(k) = pre.consumer(c) else { return false };
        let chan = pre.channel(c.ch).expect("a consumer's channel is open");
        let pending = |consumer: Option<&Name>| pushed(pre, &c.ch, consumer);
        // RabbitMQ's limits (consumer priorities are its): the consumer's own, unless no-ack,
        // and the channel's, which stops no-ack consumers too.
        (k.no_ack || k.prefetch == 0 || pending(Some(&c.tag)) < usize::from(k.prefetch))
            && (chan.prefetch == 0 || pending(None) < usize::from(chan.prefetch))
    };
    if let Some(c) = higher.iter().find(|c| room(c) && !avoided(c)) {
        return fail(
            Check::ConsumerPriority,
            format!(
                "{} {} got message {} from {queue} while {} {} of a higher priority had room",
                to.ch,
                to.tag,
                msg.id().0,
                c.ch,
                c.tag
            ),
        );
    }
    if !higher.is_empty() {
        ghost.last = Some(Notable::LowerPriorityServed);
    }
    Ok(())
}

/// A consume-ok for a consume of `queue` on `ch`: the consumer joins the end of the queue's
/// subscription order (a tag used before leaves its old place).
fn subscribed(ch: ChanRef, queue: &Name, events: &[Event], ghost: &mut Ghost) {
    for e in events {
        if let Event::Reply { ch: c, reply: Reply::ConsumeOk { consumer_tag } } = e {
            if *c == ch && !queue.is_empty() {
                let c = ConsumerRef { ch, tag: consumer_tag.clone() };
                let order = ghost.subscribed.entry(queue.clone()).or_default();
                order.retain(|x| *x != c);
                order.push(c);
            }
        }
    }
}

/// Whether `queue` has a single active consumer under the profile (read from its arguments,
/// apart from the model's own test of it).
fn has_single_active(pre: &Broker, queue: &Name) -> bool {
    pre.profile.single_active_consumer
        && pre.queues.get(queue).is_some_and(|q| {
            matches!(q.arguments.get("x-single-active-consumer"), Some(crate::types::Value::Bool(true)))
        })
}

/// Under single active consumers: `to` got a message from `queue`, which has one, and was the
/// earliest subscriber still attached there before the step, as the observer saw them subscribe.
fn single_active(pre: &Broker, to: &ConsumerRef, queue: &Name, ghost: &mut Ghost) -> Result<(), Violation> {
    if !has_single_active(pre, queue) {
        return Ok(());
    }
    let attached = |c: &ConsumerRef| pre.consumer(c).is_some_and(|k| k.queue == *queue && !k.queue_gone);
    let order = ghost.subscribed.entry(queue.clone()).or_default();
    let gone_before = order.iter().take_while(|c| !attached(c)).count();
    order.retain(|c| attached(c));
    match order.first() {
        Some(first) if first == to => {
            if gone_before > 0 {
                ghost.last = Some(Notable::TookOver);
            }
            Ok(())
        }
        Some(first) => fail(
            Check::SingleActive,
            format!(
                "{} {} got a message from {queue} while {} {}, subscribed before it, was attached",
                to.ch, to.tag, first.ch, first.tag
            ),
        ),
        None => Ok(()),
    }
}

/// Consumer deliveries waiting for acknowledgement, counted afresh.
fn pushed(b: &Broker, ch: &ChanRef, consumer: Option<&Name>) -> usize {
    b.channel(*ch).map_or(0, |c| {
        c.unacked
            .values()
            .filter(|u| u.consumer.is_some() && (consumer.is_none() || u.consumer.as_ref() == consumer))
            .count()
    })
}

/// After a delivery to `tag` on `ch`: no limit in force is exceeded (recounted from the state).
fn within_prefetch(post: &Broker, ch: &ChanRef, tag: &Name) -> Result<(), Violation> {
    let Some(chan) = post.channel(*ch) else { return Ok(()) };
    let Some(consumer) = chan.consumers.get(tag) else { return Ok(()) };
    if consumer.no_ack {
        return Ok(());
    }
    let conn = post.connections.get(&ch.conn).expect("channel open");
    let conn_used: usize =
        conn.channels.keys().map(|n| pushed(post, &ChanRef { conn: ch.conn, channel: *n }, None)).sum();
    let limits = match post.profile.qos_scope {
        crate::profile::QosScope::ConsumerAndChannel => [
            ("consumer", consumer.prefetch, pushed(post, ch, Some(tag))),
            ("channel", chan.prefetch, pushed(post, ch, None)),
        ],
        crate::profile::QosScope::ChannelAndConnection => {
            [("channel", chan.prefetch, pushed(post, ch, None)), ("connection", conn.prefetch, conn_used)]
        }
    };
    for (what, limit, used) in limits {
        if limit > 0 && used > limit as usize {
            return fail(Check::Prefetch, format!("{ch} {tag} holds {used} unacked over its {what} prefetch {limit}"));
        }
    }
    Ok(())
}

fn closed(events: &[Event], ch: ChanRef) -> Option<ReplyCode> {
    events.iter().find_map(|e| match e {
        Event::ChannelClosed { ch: c, code, .. } if *c == ch => Some(*code),
        Event::ConnectionClosed { conn, code, .. } if *conn == ch.conn => Some(*code),
        _ => None,
    })
}

/// Copies of message `id` now ready in each queue (with multiplicity).
fn placed(post: &Broker, id: u32) -> Vec<Name> {
    let mut out = Vec::new();
    for (n, q) in &post.queues {
        // A message published to a quorum queue is on its way there (`crate::quorum`).
        let coming = q.arriving.iter().filter(|a| a.from.is_empty()).map(|a| &a.msg);
        for m in q.ready.iter().map(|r| &r.msg).chain(coming) {
            if m.id().0 == id {
                out.push(n.clone());
            }
        }
    }
    out
}

fn check_route(
    pre: &Broker,
    post: &Broker,
    events: &[Event],
    id: u32,
    publish: &PendingPublish,
    ghost: &mut Ghost,
) -> Result<(), Violation> {
    let PendingPublish { exchange, routing_key, mandatory, content } = publish;
    let routed: Vec<Name> =
        oracle::route(pre, exchange, routing_key, &content.headers, post.header_reading()).into_iter().collect();
    // Less the queues with no room for it (RabbitMQ's length limits, `super::lifetime`).
    let msg = crate::types::Message::new(crate::types::MessageData {
        id: crate::types::MsgId(id),
        exchange: exchange.clone(),
        routing_key: routing_key.clone(),
        content: content.clone(),
    });
    let expected: Vec<Name> = routed.iter().filter(|q| !super::lifetime::refused(pre, q, &msg)).cloned().collect();
    let actual = placed(post, id);
    let own_match = pre.bindings_from(exchange).any(|b| {
        let kind = &pre.exchanges[exchange].kind;
        crate::routing::binding_matches(
            kind,
            b.key.as_str(),
            &b.arguments,
            routing_key.as_str(),
            &content.headers,
            post.header_reading(),
            post.profile.x_match_with_x,
            crate::Faults::NONE,
        )
    });
    let alternate = pre.exchanges.get(exchange).is_some_and(|x| x.arguments.contains_key("alternate-exchange"));
    if alternate && !own_match && !actual.is_empty() {
        ghost.last = Some(Notable::Alternate);
    }
    let refused = routed.len() != expected.len();
    let nacked = events.iter().any(|e| matches!(e, Event::Confirm { ack: false, .. }));
    let confirming = events.iter().any(|e| matches!(e, Event::Confirm { .. }));
    if refused && confirming && !nacked {
        return fail(Check::Routing, format!("message {id} refused by a full queue was acked"));
    }
    if expected != actual {
        return fail(
            Check::Routing,
            format!("message {id} to {exchange:?} key {routing_key:?}: routed to {actual:?}, oracle says {expected:?}"),
        );
    }
    let returned = events.iter().any(|e| matches!(e, Event::Return { message, .. } if message.id().0 == id));
    if returned != (*mandatory && routed.is_empty()) {
        return fail(
            Check::Routing,
            format!("message {id}: returned={returned}, mandatory={mandatory}, routes={expected:?}"),
        );
    }
    Ok(())
}

fn watch_command(
    pre: &Broker,
    cmd: &Command,
    events: &[Event],
    post: &Broker,
    ghost: &mut Ghost,
) -> Result<(), Violation> {
    // Exclusivity: a method naming another connection's exclusive queue, or one whose connection
    // has closed (waiting for its deletion), never succeeds.
    if let (Some(q), Some(ch)) = (pre.named_queue(cmd), cmd.channel()) {
        if let Some(x) = pre.queues.get(&q) {
            if let Some(owner) = x.owner.filter(|o| x.orphaned || *o != ch.conn) {
                if closed(events, ch).is_none() {
                    return fail(Check::Exclusive, format!("{ch} used {q}, exclusive to c{}", owner.0));
                }
            }
        }
    }
    // An auto-delete queue that vanished without an explicit delete.
    let explicit = matches!(cmd, Command::QueueDelete { .. } | Command::Restart);
    if !explicit && pre.queues.iter().any(|(n, q)| q.auto_delete && q.owner.is_none() && !post.queues.contains_key(n)) {
        ghost.last = Some(Notable::AutoDeleted);
    }
    match cmd {
        Command::BasicPublish { ch, exchange, routing_key, mandatory, content } => {
            let in_tx = matches!(pre.channel(*ch).map(|c| &c.mode), Some(Mode::Tx { .. }));
            if !in_tx && closed(events, *ch).is_none() {
                let publish = PendingPublish {
                    exchange: exchange.clone(),
                    routing_key: routing_key.clone(),
                    mandatory: *mandatory,
                    content: content.clone(),
                };
                check_route(pre, post, events, pre.next_msg, &publish, ghost)?;
            }
        }
        Command::TxCommit { ch } => {
            if let (Some(Mode::Tx { publishes, .. }), None) = (pre.channel(*ch).map(|c| &c.mode), closed(events, *ch)) {
                for (i, p) in publishes.iter().enumerate() {
                    let id = pre.next_msg + i as u32;
                    check_route(pre, post, events, id, p, ghost)?;
                }
            }
        }
        Command::Restart => check_restart(pre, post, ghost)?,
        _ => {}
    }
    Ok(())
}

/// What a restart must keep, computed from the state before it.
fn check_restart(pre: &Broker, post: &Broker, ghost: &mut Ghost) -> Result<(), Violation> {
    let exchanges: BTreeSet<&Name> = pre.exchanges.iter().filter(|(_, x)| x.durable).map(|(n, _)| n).collect();
    let queues: BTreeSet<&Name> =
        pre.queues.iter().filter(|(_, q)| q.durable && q.owner.is_none()).map(|(n, _)| n).collect();
    let alive = |d: &Dest| match d {
        Dest::Queue(q) => queues.contains(q),
        Dest::Exchange(x) => exchanges.contains(x),
    };
    let bindings: BTreeSet<_> =
        pre.bindings.iter().filter(|b| exchanges.contains(&b.source) && alive(&b.dest)).collect();
    let mut messages: BTreeMap<&Name, Vec<u32>> = queues.iter().map(|q| (*q, Vec::new())).collect();
    for (n, q) in &pre.queues {
        if let Some(v) = messages.get_mut(n) {
            v.extend(q.ready.iter().filter(|r| r.msg.persistent()).map(|r| r.msg.id().0));
            v.extend(q.returning.iter().filter(|u| u.msg.persistent()).map(|u| u.msg.id().0));
        }
    }
    for conn in pre.connections.values() {
        for ch in conn.channels.values() {
            for u in ch.unacked.values().filter(|u| u.msg.persistent() && !u.queue_gone) {
                if let Some(v) = messages.get_mut(&u.queue) {
                    v.push(u.msg.id().0);
                }
            }
        }
    }
    for v in messages.values_mut() {
        v.sort();
    }
    let got_x: BTreeSet<&Name> = post.exchanges.keys().collect();
    let got_q: BTreeSet<&Name> = post.queues.keys().collect();
    let got_b: BTreeSet<_> = post.bindings.iter().collect();
    let got_m: BTreeMap<&Name, Vec<u32>> =
        post.queues.iter().map(|(n, q)| (n, q.ready.iter().map(|r| r.msg.id().0).collect())).collect();
    if got_x != exchanges || got_q != queues || got_b != bindings || got_m != messages || !post.connections.is_empty() {
        return fail(
            Check::Restart,
            format!("after restart: exchanges {got_x:?} queues {got_m:?}; expected exchanges {exchanges:?} queues {messages:?}"),
        );
    }
    if messages.values().any(|v| !v.is_empty()) {
        ghost.last = Some(Notable::Survived);
    }
    Ok(())
}
