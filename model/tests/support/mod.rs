//! The harness shared by the integration tests `seed` (the tutorial's scenarios) and `rules` (one
//! test per rule): a small client-side view of the model, and builders for the commands clients
//! send and the events they see. Each test file includes it with `mod support;`.

use amqp_model::check::config::cmd::{connect, publish};
use amqp_model::event::Reply;
use amqp_model::types::MessageData;
use amqp_model::{Broker, ChanRef, Command, ConnId, Content, Event, Message, Method, MsgId, Name, Profile, ReplyCode};

pub const RABBIT: Profile = Profile::rabbitmq();
pub const SPEC: Profile = Profile::spec();
/// Both profiles, for outcomes they share.
pub const BOTH: [Profile; 2] = [RABBIT, SPEC];

// ---------------------------------------------------------------------------------------------
// A small client-side view of the model.

/// A broker seen from its clients: each command is followed by the deliveries it makes possible.
#[derive(Clone)]
pub struct World(pub Broker);

impl World {
    pub fn new(profile: Profile) -> Self {
        // Printed only when a test fails, to tell which profile it was running.
        println!("profile {}", profile.name);
        World(Broker::new(profile))
    }

    /// Open connection `conn` and its channel 1.
    pub fn open(&mut self, conn: u16) -> ChanRef {
        let [open_conn, _] = connect(conn);
        assert_eq!(self.run(open_conn), vec![Event::ConnectionOpenOk { conn: ConnId(conn) }]);
        self.channel(conn, 1)
    }

    /// Open channel `n` of an open connection.
    pub fn channel(&mut self, conn: u16, n: u16) -> ChanRef {
        let ch = ChanRef::new(conn, n);
        assert_eq!(self.run(Command::ChannelOpen { ch }), vec![Event::ChannelOpenOk { ch }]);
        ch
    }

    /// Apply a command, then let the broker deliver what it can; messages lose their ghost id.
    pub fn run(&mut self, cmd: Command) -> Vec<Event> {
        let n = self.0.apply_all(&cmd).expect("a command the client can send").len();
        assert_eq!(n, 1, "{cmd:?} has {n} allowed outcomes: use World::outcomes and World::take");
        self.take(cmd, 0)
    }

    /// Run a command whose outcomes differ at most in the redelivered flag of messages that went
    /// out before (`redelivered_flag_optional`, the spec's SHOULD): each other outcome must be the
    /// first with flags cleared; the first, every such message flagged, is taken.
    pub fn run_flagged(&mut self, cmd: Command) -> Vec<Event> {
        let outcomes = self.outcomes(&cmd);
        let unflagged = |o: &Vec<Event>| -> Vec<Event> {
            o.iter()
                .cloned()
                .map(|mut e| {
                    match &mut e {
                        Event::Deliver { redelivered, .. }
                        | Event::Reply { reply: Reply::GetOk { redelivered, .. }, .. } => *redelivered = false,
                        _ => {}
                    }
                    e
                })
                .collect()
        };
        for o in &outcomes[1..] {
            assert_eq!(unflagged(o), unflagged(&outcomes[0]), "{cmd:?}: outcomes that differ in more than a flag");
            assert_ne!(*o, outcomes[0]);
        }
        self.take(cmd, 0)
    }

    /// Every outcome the profile allows for a command (with the deliveries that follow, taken
    /// eagerly), without running it.
    pub fn outcomes(&self, cmd: &Command) -> Vec<Vec<Event>> {
        let branches = self.0.apply_all(cmd).expect("a command the client can send");
        branches
            .into_iter()
            .map(|mut b| {
                let mut out = b.events;
                out.extend(b.broker.settle_internal());
                out.into_iter().map(unghost).collect()
            })
            .collect()
    }

    /// Run a command whose outcomes must be exactly a channel close with each of `codes`, in
    /// that order, naming the command's method; take the first, then reopen the channel.
    pub fn refused_any(&mut self, cmd: Command, codes: &[ReplyCode]) {
        let ch = cmd.channel().expect("a channel method");
        let method = cmd.method().expect("a method");
        let expected: Vec<Vec<Event>> = codes.iter().map(|c| vec![channel_closed(ch, *c, method)]).collect();
        assert_eq!(self.outcomes(&cmd), expected, "{cmd:?}");
        self.take(cmd, 0);
        self.channel(ch.conn.0, ch.channel);
    }

    /// Run a command taking the `i`th of its [`World::outcomes`].
    pub fn take(&mut self, cmd: Command, i: usize) -> Vec<Event> {
        let mut branches = self.0.apply_all(&cmd).expect("a command the client can send");
        let b = branches.swap_remove(i);
        self.0 = b.broker;
        let mut out = b.events;
        out.extend(self.0.settle_internal());
        out.into_iter().map(unghost).collect()
    }

    /// Run a command whose only answer must be `reply`.
    pub fn replies(&mut self, cmd: Command, reply: Reply) {
        let ch = cmd.channel().expect("a channel method");
        assert_eq!(self.run(cmd.clone()), vec![Event::Reply { ch, reply }], "{cmd:?}");
    }

    /// Declare a new queue; returns the name in the declare-ok (whose counts must be 0).
    pub fn declare(&mut self, cmd: Command) -> Name {
        match self.run(cmd).as_slice() {
            [Event::Reply { reply: Reply::QueueDeclareOk { queue, message_count: 0, consumer_count: 0 }, .. }] => {
                queue.clone()
            }
            other => panic!("expected a fresh declare-ok, got {other:?}"),
        }
    }

    /// The ready messages of a queue: body and redelivered flag, in order.
    pub fn ready(&self, queue: &str) -> Vec<(&str, bool)> {
        self.0.queues[queue].ready.iter().map(|r| (r.msg.0.content.body.as_str(), r.redelivered)).collect()
    }

    /// The delivery tags awaiting acknowledgement on a channel.
    pub fn unacked(&self, ch: ChanRef) -> Vec<u64> {
        self.0.channel(ch).expect("open").unacked.keys().copied().collect()
    }
}

/// A world under `profile` with connection 1 and its channel 1 open.
pub fn connected(profile: Profile) -> (World, ChanRef) {
    let mut w = World::new(profile);
    let c = w.open(1);
    (w, c)
}

/// Publish `n` messages `m0`, `m1`, ... to `queue` through the default exchange; returns the
/// deliveries they cause.
pub fn fill(w: &mut World, ch: ChanRef, queue: &str, n: usize) -> Vec<Event> {
    (0..n).flat_map(|i| w.run(send(ch, "", queue, &format!("m{i}")))).collect()
}

/// The event with its message's ghost identity zeroed (clients never see it).
fn unghost(e: Event) -> Event {
    let strip = |m: Message| message(m.0.exchange.as_str(), m.0.routing_key.as_str(), m.0.content.clone());
    match e {
        Event::Deliver { ch, consumer_tag, delivery_tag, redelivered, queue, message } => {
            Event::Deliver { ch, consumer_tag, delivery_tag, redelivered, queue, message: strip(message) }
        }
        Event::Return { ch, code, message } => Event::Return { ch, code, message: strip(message) },
        Event::Reply { ch, reply: Reply::GetOk { delivery_tag, redelivered, queue, message_count, message } } => {
            let reply = Reply::GetOk { delivery_tag, redelivered, queue, message_count, message: strip(message) };
            Event::Reply { ch, reply }
        }
        other => other,
    }
}

/// A message as its consumer sees it.
pub fn message(exchange: &str, key: &str, content: Content) -> Message {
    Message::new(MessageData { id: MsgId(0), exchange: exchange.into(), routing_key: key.into(), content })
}

/// A transient message as its consumer sees it.
pub fn msg(exchange: &str, key: &str, body: &str) -> Message {
    message(exchange, key, Content::text(body))
}

// Commands.

/// Publish a transient message with this body (not mandatory).
pub fn send(ch: ChanRef, exchange: &str, key: &str, body: &str) -> Command {
    publish(ch, exchange, key, false, Content::text(body))
}

pub fn get(ch: ChanRef, queue: &str, no_ack: bool) -> Command {
    Command::BasicGet { ch, queue: queue.into(), no_ack }
}

pub fn ack(ch: ChanRef, delivery_tag: u64, multiple: bool) -> Command {
    Command::BasicAck { ch, delivery_tag, multiple }
}

pub fn qos(ch: ChanRef, prefetch_count: u16, global: bool) -> Command {
    Command::BasicQos { ch, prefetch_count, global }
}

pub fn passive_queue(ch: ChanRef, queue: &str) -> Command {
    Command::QueueDeclare {
        ch,
        queue: queue.into(),
        passive: true,
        durable: false,
        exclusive: false,
        auto_delete: false,
        arguments: Default::default(),
    }
}

pub fn drop_conn(ch: ChanRef) -> Command {
    Command::ConnectionDrop { conn: ch.conn }
}

// Events.

pub fn declare_ok(ch: ChanRef, queue: &str, message_count: u32, consumer_count: u32) -> Event {
    Event::Reply { ch, reply: Reply::QueueDeclareOk { queue: queue.into(), message_count, consumer_count } }
}

pub fn consume_ok(ch: ChanRef, tag: &str) -> Event {
    Event::Reply { ch, reply: Reply::ConsumeOk { consumer_tag: tag.into() } }
}

pub fn deliver(ch: ChanRef, tag: &str, delivery_tag: u64, redelivered: bool, queue: &str, message: Message) -> Event {
    Event::Deliver { ch, consumer_tag: tag.into(), delivery_tag, redelivered, queue: queue.into(), message }
}

pub fn get_ok(
    ch: ChanRef,
    delivery_tag: u64,
    redelivered: bool,
    queue: &str,
    message_count: u32,
    message: Message,
) -> Event {
    Event::Reply { ch, reply: Reply::GetOk { delivery_tag, redelivered, queue: queue.into(), message_count, message } }
}

pub fn channel_closed(ch: ChanRef, code: ReplyCode, method: Method) -> Event {
    Event::ChannelClosed { ch, code, method }
}

/// The codes a redeclare that is not equivalent may close its channel with: the rules say only
/// "a channel exception" (errata 6), so the spec profile allows 406 or 405; RabbitMQ's is 406.
pub fn not_equivalent(profile: Profile) -> &'static [ReplyCode] {
    if profile.name == amqp_model::ProfileName::Spec {
        &[ReplyCode::PreconditionFailed, ReplyCode::ResourceLocked]
    } else {
        &[ReplyCode::PreconditionFailed]
    }
}
