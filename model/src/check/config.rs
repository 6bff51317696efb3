//! Named check configurations: the bounded universes the model is explored in.
//!
//! A configuration is a setup (commands applied before exploring: connections, channels, a
//! topology) and a menu: the commands a client may send at any point, each offered whenever its
//! connection or channel is in a state to send it. Bounds on messages, delivery tags and
//! server-generated names keep the space finite.

use crate::command::Command;
use crate::fault::Faults;
use crate::profile::Profile;
use crate::types::{ChanRef, ConnId, Content, ExchangeKind, Name, Table, Value};

/// A bounded universe to check.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// Its name (`check <name>` on the command line).
    pub name: &'static str,
    /// One line on what it covers.
    pub about: &'static str,
    /// The profile.
    pub profile: Profile,
    /// Deliberate faults (tests only).
    pub faults: Faults,
    /// Commands applied before exploring.
    pub setup: Vec<Command>,
    /// Commands offered at every step where they can be sent.
    pub menu: Vec<Command>,
    /// At most this many messages are published.
    pub max_messages: u32,
    /// At most this many deliveries per channel (delivery tags up to it).
    pub max_tag: u64,
    /// At most this many server-generated names.
    pub max_names: u32,
    /// The clock goes no further than this many milliseconds ([`Command::Pass`]).
    pub max_time: u64,
    /// The `sometimes` properties this universe must reach (others are out of its scope).
    pub must_reach: &'static [&'static str],
    /// The pinned number of unique states (a changed count fails `check`), if pinned.
    pub unique_states: Option<usize>,
    /// Whether copies on their way to a queue may land late, as steps of the broker's own
    /// interleaved with what follows: a closed channel's going back ([`crate::Internal::Return`])
    /// and dead-lettered ones ([`crate::Internal::Arrive`]). Where false, the checker takes those
    /// steps right after the one that sent the copies: the universe is a fraction of the size
    /// (`ci`: 1.35 M states against 5.7 M), and the smaller universes explore the late ones.
    pub late_arrivals: bool,
}

/// Channel 1 of connection `c`.
pub const fn ch(c: u16) -> ChanRef {
    ChanRef::new(c, 1)
}

fn n(s: &str) -> Name {
    Name::from(s)
}

/// Helpers that build commands with the defaults a menu usually wants.
pub mod cmd {
    use super::*;

    /// Open connection `c` and its channel 1.
    pub fn connect(c: u16) -> [Command; 2] {
        [Command::ConnectionOpen { conn: ConnId(c) }, Command::ChannelOpen { ch: ch(c) }]
    }
    /// Connections 1 and 2 coming back (with their channel 1) after a restart or a drop.
    pub fn reconnect() -> impl Iterator<Item = Command> {
        connect(1).into_iter().chain(connect(2))
    }
    /// Declare a queue.
    pub fn queue(on: ChanRef, name: &str, durable: bool, exclusive: bool, auto_delete: bool) -> Command {
        Command::QueueDeclare {
            ch: on,
            queue: n(name),
            passive: false,
            durable,
            exclusive,
            auto_delete,
            arguments: Table::new(),
        }
    }
    /// Declare an exchange.
    pub fn exchange(on: ChanRef, name: &str, kind: ExchangeKind, durable: bool, auto_delete: bool) -> Command {
        Command::ExchangeDeclare {
            ch: on,
            exchange: n(name),
            kind,
            passive: false,
            durable,
            auto_delete,
            internal: false,
            arguments: Table::new(),
        }
    }
    /// Bind a queue.
    pub fn bind(on: ChanRef, queue: &str, exchange: &str, key: &str) -> Command {
        Command::QueueBind {
            ch: on,
            queue: n(queue),
            exchange: n(exchange),
            routing_key: n(key),
            arguments: Table::new(),
        }
    }
    /// Unbind a queue (no arguments).
    pub fn unbind(on: ChanRef, queue: &str, exchange: &str, key: &str) -> Command {
        Command::QueueUnbind {
            ch: on,
            queue: n(queue),
            exchange: n(exchange),
            routing_key: n(key),
            arguments: Table::new(),
        }
    }
    /// Bind a queue with headers arguments.
    pub fn bind_headers(on: ChanRef, queue: &str, exchange: &str, args: &[(&str, &str)]) -> Command {
        let arguments = args.iter().map(|(k, v)| (n(k), Value::Str(n(v)))).collect();
        Command::QueueBind { ch: on, queue: n(queue), exchange: n(exchange), routing_key: n(""), arguments }
    }
    /// Bind exchange `destination` to `source`.
    pub fn bind_exchange(on: ChanRef, destination: &str, source: &str, key: &str) -> Command {
        Command::ExchangeBind {
            ch: on,
            destination: n(destination),
            source: n(source),
            routing_key: n(key),
            arguments: Table::new(),
        }
    }
    /// Publish.
    pub fn publish(on: ChanRef, exchange: &str, key: &str, mandatory: bool, content: Content) -> Command {
        Command::BasicPublish { ch: on, exchange: n(exchange), routing_key: n(key), mandatory, content }
    }
    /// Consume.
    pub fn consume(on: ChanRef, queue: &str, tag: &str, no_ack: bool) -> Command {
        Command::BasicConsume {
            ch: on,
            queue: n(queue),
            consumer_tag: n(tag),
            no_ack,
            exclusive: false,
            arguments: Table::new(),
        }
    }
}

use cmd::*;

/// Every `sometimes` property of [`super::BrokerModel`].
pub const ALL_SOMETIMES: [&str; 6] = [
    "a redelivery happens",
    "a consumer is blocked by prefetch",
    "a 406 closes a channel",
    "an auto-delete queue disappears",
    "a persistent message survives a restart",
    "a mandatory message is returned",
];

/// The `sometimes` properties of the message-lifetime rules: a copy's fates beside delivery.
pub const LIFETIME: [&str; 6] = [
    "a message expires",
    "a message is dead-lettered",
    "a message is dropped over a length limit",
    "a publish is refused by a full queue",
    "a queue expires",
    "an alternate exchange routes a message",
];

const WORK_QUEUE: [&str; 3] = ["a redelivery happens", "a consumer is blocked by prefetch", "a 406 closes a channel"];

const SINGLE_ACTIVE: [&str; 3] =
    ["a redelivery happens", "a 406 closes a channel", "another consumer takes over a single-active queue"];

const QUORUM: [&str; 4] = [
    "a redelivery happens",
    "a consumer is blocked by prefetch",
    "a copy reaches its delivery limit",
    "a message is dead-lettered",
];

const CONSUMERS: [&str; 4] = [
    "a redelivery happens",
    "a consumer is blocked by prefetch",
    "a 406 closes a channel",
    "a lower-priority consumer is served while a higher one is blocked",
];

impl CheckConfig {
    /// All named configurations.
    pub fn all() -> Vec<CheckConfig> {
        vec![
            Self::quick(),
            Self::ci(),
            Self::spec(),
            Self::routing(),
            Self::consumers(),
            Self::single_active(),
            Self::quorum(),
            Self::lifecycle(),
            Self::lifecycle_spec(),
            Self::lifetime(),
            Self::deep(),
        ]
    }

    /// The configuration with this name.
    pub fn named(name: &str) -> Option<CheckConfig> {
        Self::all().into_iter().find(|c| c.name == name)
    }

    /// Work queue dispatch: two consumers with prefetch on one queue.
    fn work_queue(profile: Profile) -> (Vec<Command>, Vec<Command>) {
        let mut setup = Vec::new();
        setup.extend(connect(1));
        setup.extend(connect(2));
        setup.push(queue(ch(1), "q", true, false, false));
        let mut menu = vec![
            publish(ch(1), "", "q", false, Content::persistent("m")),
            Command::BasicQos { ch: ch(2), prefetch_count: 1, global: false },
            consume(ch(2), "q", "k", false),
            consume(ch(1), "q", "j", false),
            Command::BasicCancel { ch: ch(2), consumer_tag: n("k") },
            Command::BasicAck { ch: ch(2), delivery_tag: 1, multiple: false },
            Command::BasicAck { ch: ch(2), delivery_tag: 2, multiple: true },
            Command::BasicReject { ch: ch(2), delivery_tag: 1, requeue: true },
            Command::BasicNack { ch: ch(1), delivery_tag: 1, multiple: false, requeue: true },
            Command::BasicAck { ch: ch(1), delivery_tag: 1, multiple: false },
            Command::ChannelClose { ch: ch(2) },
            Command::ChannelOpen { ch: ch(2) },
        ];
        if profile.recover_without_requeue {
            menu.push(Command::BasicRecover { ch: ch(1), requeue: false });
        }
        (setup, menu)
    }

    /// A small universe for unit tests: one work queue, two consumers, three messages.
    pub fn quick() -> CheckConfig {
        let (setup, menu) = Self::work_queue(Profile::rabbitmq());
        CheckConfig {
            name: "quick",
            about: "work queue: 2 channels, 1 queue, prefetch, ack/reject/nack, channel close (rabbitmq)",
            profile: Profile::rabbitmq(),
            faults: Faults::NONE,
            setup,
            menu,
            max_messages: 2,
            max_tag: 3,
            max_names: 0,
            max_time: 0,
            must_reach: &WORK_QUEUE,
            unique_states: Some(6_639),
            late_arrivals: true,
        }
    }

    /// The configuration CI checks: the work queue and an auto-delete queue with a no-ack consumer
    /// behind a topic exchange, mandatory publishing and a broker restart.
    pub fn ci() -> CheckConfig {
        let (mut setup, mut menu) = Self::work_queue(Profile::rabbitmq());
        setup.push(exchange(ch(1), "x", ExchangeKind::Topic, true, false));
        setup.push(bind(ch(1), "q", "x", "a.*"));
        setup.push(queue(ch(1), "ad", false, false, true));
        setup.push(bind(ch(1), "ad", "x", "#"));
        menu.extend([
            consume(ch(1), "ad", "d", true),
            Command::BasicCancel { ch: ch(1), consumer_tag: n("d") },
            publish(ch(1), "x", "a.b", true, Content::text("t")),
            publish(ch(1), "x", "b", true, Content::persistent("u")),
            Command::Restart,
        ]);
        menu.extend(reconnect());
        CheckConfig {
            name: "ci",
            about: "work queue and an auto-delete queue behind a topic exchange, mandatory publish, restart (rabbitmq)",
            profile: Profile::rabbitmq(),
            faults: Faults::NONE,
            setup,
            menu,
            max_messages: 3,
            max_tag: 3,
            max_names: 0,
            max_time: 0,
            must_reach: &ALL_SOMETIMES,
            unique_states: Some(1_349_291),
            late_arrivals: false,
        }
    }

    /// The work queue under the spec profile: any-consumer dispatch, channel and connection
    /// prefetch, recover without requeue, requeue avoiding the rejecting channel.
    pub fn spec() -> CheckConfig {
        let (setup, mut menu) = Self::work_queue(Profile::spec());
        menu.push(Command::BasicQos { ch: ch(1), prefetch_count: 1, global: true });
        // A choice point (model/src/choice.rs): deleting the queue tells its consumers, or not;
        // declaring it again brings it back.
        menu.push(Command::QueueDelete { ch: ch(1), queue: n("q"), if_unused: false, if_empty: false });
        menu.push(queue(ch(1), "q", true, false, false));
        // A message of the upper priority band (`basic 06`).
        menu.push(publish(ch(1), "", "q", false, Content { priority: Some(9), ..Content::text("p") }));
        CheckConfig {
            name: "spec",
            about: "work queue under the spec profile (any-consumer dispatch, channel/connection prefetch, recover, queue deleted with or without telling its consumers, a priority-9 message)",
            profile: Profile::spec(),
            faults: Faults::NONE,
            setup,
            menu,
            max_messages: 2,
            max_tag: 3,
            max_names: 0,
            max_time: 0,
            must_reach: &[
                "a redelivery happens",
                "a consumer is blocked by prefetch",
                "a 406 closes a channel",
                "a message overtakes an earlier one",
            ],
            unique_states: Some(130_936),
            late_arrivals: true,
        }
    }

    /// Every exchange type, exchange-to-exchange bindings with two paths and a cycle, and
    /// publishes that hit, miss and nearly miss.
    pub fn routing() -> CheckConfig {
        let c = ch(1);
        let mut setup = Vec::new();
        setup.extend(connect(1));
        for q in ["q1", "q2", "q3"] {
            setup.push(queue(c, q, false, false, false));
        }
        setup.push(exchange(c, "t", ExchangeKind::Topic, false, false));
        setup.push(exchange(c, "f", ExchangeKind::Fanout, false, false));
        setup.push(exchange(c, "h", ExchangeKind::Headers, false, false));
        setup.push(bind(c, "q3", "f", ""));
        setup.push(bind_exchange(c, "f", "t", "#"));
        let hdr = |k: &str, v: &str| Content {
            body: n("h"),
            persistent: false,
            headers: [(n(k), Value::Str(n(v)))].into_iter().collect(),
            ..Content::default()
        };
        let menu = vec![
            bind(c, "q1", "t", "a.*"),
            bind(c, "q2", "t", "a.#"),
            bind(c, "q3", "t", "a."),
            bind(c, "q1", "amq.direct", "k"),
            bind(c, "q3", "amq.direct", "kk"),
            bind(c, "q1", "f", ""),
            bind_headers(c, "q1", "h", &[("x-match", "any"), ("a", "1"), ("b", "2")]),
            bind_headers(c, "q2", "h", &[("a", "1"), ("b", "2")]),
            bind_exchange(c, "t", "f", ""),
            bind_exchange(c, "f", "amq.direct", "k"),
            unbind(c, "q2", "t", "a.#"),
            publish(c, "t", "a.b.c", true, Content::text("m")),
            publish(c, "t", "a", true, Content::text("m")),
            publish(c, "t", "a.", true, Content::text("m")),
            publish(c, "amq.direct", "k", true, Content::text("m")),
            publish(c, "", "q3", true, Content::text("m")),
            publish(c, "h", "", true, hdr("a", "1")),
            publish(c, "h", "", true, hdr("b", "3")),
        ];
        CheckConfig {
            name: "routing",
            about: "direct, fanout, topic, headers and exchange-to-exchange routing against the oracle",
            profile: Profile::rabbitmq(),
            faults: Faults::NONE,
            setup,
            menu,
            max_messages: 2,
            max_tag: 0,
            max_names: 0,
            max_time: 0,
            must_reach: &["a mandatory message is returned"],
            unique_states: Some(201_088),
            late_arrivals: true,
        }
    }

    /// RabbitMQ's consumer priorities: the work queue with its prefetch-1 consumer at
    /// `x-priority` 5 above the other, which may have a message only while the first is blocked.
    pub fn consumers() -> CheckConfig {
        let (setup, mut menu) = Self::work_queue(Profile::rabbitmq());
        for c in &mut menu {
            if let Command::BasicConsume { consumer_tag, arguments, .. } = c {
                if consumer_tag.as_str() == "k" {
                    *arguments = [(n("x-priority"), Value::Int(5))].into();
                }
            }
        }
        CheckConfig {
            name: "consumers",
            about: "work queue with consumer priorities: the prefetch-1 consumer at x-priority 5, the other at 0 (rabbitmq)",
            setup,
            menu,
            max_messages: 3,
            must_reach: &CONSUMERS,
            unique_states: Some(58_997),
            late_arrivals: true,
            ..Self::quick()
        }
    }

    /// RabbitMQ's single active consumer: the work queue declared with
    /// `x-single-active-consumer`, its two consumers subscribing, cancelling and closing.
    pub fn single_active() -> CheckConfig {
        let (mut setup, menu) = Self::work_queue(Profile::rabbitmq());
        for c in &mut setup {
            if let Command::QueueDeclare { arguments, .. } = c {
                *arguments = [(n("x-single-active-consumer"), Value::Bool(true))].into();
            }
        }
        CheckConfig {
            name: "single-active",
            about: "work queue with a single active consumer: its two consumers subscribe, cancel, close their channel (rabbitmq)",
            setup,
            menu,
            max_messages: 3,
            must_reach: &SINGLE_ACTIVE,
            unique_states: Some(40_448),
            late_arrivals: true,
            ..Self::quick()
        }
    }

    /// RabbitMQ's quorum queues ([`crate::quorum`]): the work queue declared as a quorum queue
    /// with a delivery limit of 1 and a dead-letter queue, its copies requeued to the back,
    /// returned to the front, counted, and ended at the limit; `basic.get` shows the count.
    pub fn quorum() -> CheckConfig {
        let (mut setup, mut menu) = Self::work_queue(Profile::rabbitmq());
        setup.insert(setup.len() - 1, queue(ch(1), "dead", false, false, false));
        for c in &mut setup {
            if let Command::QueueDeclare { queue, arguments, .. } = c {
                if queue.as_str() == "q" {
                    *arguments = [
                        (n("x-queue-type"), Value::Str(n("quorum"))),
                        (n("x-delivery-limit"), Value::Int(1)),
                        (n("x-dead-letter-exchange"), Value::Str(n(""))),
                        (n("x-dead-letter-routing-key"), Value::Str(n("dead"))),
                    ]
                    .into();
                }
            }
        }
        menu.push(Command::BasicGet { ch: ch(1), queue: n("q"), no_ack: false });
        menu.push(Command::BasicReject { ch: ch(1), delivery_tag: 1, requeue: false });
        CheckConfig {
            name: "quorum",
            about: "work queue as a quorum queue with x-delivery-limit 1 and a dead-letter queue (rabbitmq)",
            setup,
            menu,
            max_messages: 2,
            must_reach: &QUORUM,
            unique_states: Some(11_766),
            late_arrivals: true,
            ..Self::quick()
        }
    }

    /// Exclusive, auto-delete and durable entities across connection loss and restart.
    pub fn lifecycle() -> CheckConfig {
        let mut setup = Vec::new();
        setup.extend(connect(1));
        setup.extend(connect(2));
        let mut menu = vec![
            queue(ch(1), "d", true, false, false),
            queue(ch(1), "t", false, false, true),
            queue(ch(1), "x", false, true, false),
            queue(ch(2), "x", false, true, false),
            exchange(ch(1), "e", ExchangeKind::Fanout, true, false),
            exchange(ch(1), "a", ExchangeKind::Fanout, false, true),
            bind(ch(1), "d", "e", ""),
            bind(ch(1), "t", "a", ""),
            bind(ch(2), "x", "e", ""),
            publish(ch(1), "e", "", false, Content::persistent("p")),
            publish(ch(1), "e", "", false, Content::text("t")),
            publish(ch(1), "a", "", false, Content::text("a")),
            consume(ch(2), "t", "k", false),
            consume(ch(2), "d", "d", false),
            Command::BasicCancel { ch: ch(2), consumer_tag: n("k") },
            Command::BasicGet { ch: ch(2), queue: n("x"), no_ack: false },
            Command::QueueDelete { ch: ch(1), queue: n("d"), if_unused: true, if_empty: false },
            unbind(ch(1), "t", "a", ""),
            Command::ConnectionDrop { conn: ConnId(1) },
            Command::Restart,
        ];
        menu.extend(reconnect());
        CheckConfig {
            name: "lifecycle",
            about: "exclusive, auto-delete and durable queues and exchanges across connection loss and restart",
            profile: Profile::rabbitmq(),
            faults: Faults::NONE,
            setup,
            menu,
            max_messages: 2,
            max_tag: 2,
            max_names: 0,
            max_time: 0,
            must_reach: &[
                "a redelivery happens",
                "a 406 closes a channel",
                "an auto-delete queue disappears",
                "a persistent message survives a restart",
            ],
            unique_states: Some(1_777_614),
            late_arrivals: true,
        }
    }

    /// Exclusive queues and an auto-delete exchange under the spec profile: deletions the broker
    /// makes on its own, later (`Profile::deferred_deletion`), a queue locked meanwhile to every
    /// connection, and the order of the lock against other failing checks
    /// (`Profile::exclusive_lock_first`).
    pub fn lifecycle_spec() -> CheckConfig {
        let mut setup = Vec::new();
        setup.extend(connect(1));
        setup.extend(connect(2));
        let mut menu = vec![
            queue(ch(1), "x", false, true, false),
            queue(ch(2), "x", false, false, false),
            exchange(ch(1), "a", ExchangeKind::Fanout, false, true),
            bind(ch(1), "x", "a", ""),
            bind(ch(2), "x", "a", ""),
            publish(ch(2), "a", "", false, Content::text("a")),
            Command::BasicGet { ch: ch(2), queue: n("x"), no_ack: false },
            Command::QueueDelete { ch: ch(2), queue: n("x"), if_unused: false, if_empty: true },
            unbind(ch(1), "x", "a", ""),
            Command::ConnectionDrop { conn: ConnId(1) },
        ];
        menu.extend(reconnect().take(2));
        CheckConfig {
            name: "lifecycle-spec",
            about: "exclusive queues and an auto-delete exchange under the spec profile: deletions made later, the lock meanwhile, the lock's order against other checks",
            profile: Profile::spec(),
            faults: Faults::NONE,
            setup,
            menu,
            max_messages: 2,
            max_tag: 2,
            max_names: 0,
            max_time: 0,
            must_reach: &["a 406 closes a channel", "a deletion is made later"],
            unique_states: Some(3_405),
            late_arrivals: true,
        }
    }

    /// RabbitMQ's message-lifetime extensions: a queue with a message TTL, a length limit and a
    /// dead-letter exchange, a queue that refuses publishes over its limit and expires when
    /// unused, an exchange with an alternate, time passing a millisecond at a time, and a
    /// confirming publisher.
    pub fn lifetime() -> CheckConfig {
        let c = ch(1);
        let int = |i: i64| Value::Int(i);
        let text = |s: &str| Value::Str(n(s));
        let args = |pairs: &[(&str, Value)]| -> Table { pairs.iter().map(|(k, v)| (n(k), v.clone())).collect() };
        let mut setup = Vec::new();
        setup.extend(connect(1));
        setup.extend(connect(2));
        setup.push(Command::ConfirmSelect { ch: c });
        setup.push(Command::BasicQos { ch: ch(2), prefetch_count: 1, global: false });
        setup.push(exchange(c, "dlx", ExchangeKind::Fanout, false, false));
        setup.push(queue(c, "dead", false, false, false));
        setup.push(bind(c, "dead", "dlx", ""));
        let q = args(&[("x-message-ttl", int(2)), ("x-max-length", int(1)), ("x-dead-letter-exchange", text("dlx"))]);
        setup.push(Command::QueueDeclare {
            ch: c,
            queue: n("q"),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: q,
        });
        let r = args(&[
            ("x-max-length", int(1)),
            ("x-overflow", text("reject-publish-dlx")),
            ("x-dead-letter-exchange", text("dlx")),
            ("x-expires", int(3)),
        ]);
        let declare_r = Command::QueueDeclare {
            ch: c,
            queue: n("r"),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: r,
        };
        setup.push(declare_r.clone());
        setup.push(Command::ExchangeDeclare {
            ch: c,
            exchange: n("main"),
            kind: ExchangeKind::Direct,
            passive: false,
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: args(&[("alternate-exchange", text("amq.fanout"))]),
        });
        setup.push(bind(c, "q", "main", "q"));
        setup.push(bind(c, "r", "amq.fanout", ""));
        let mut short = Content::text("s");
        short.properties.set("expiration", Some(n("1")));
        let menu = vec![
            publish(c, "main", "q", true, Content::text("m")),
            publish(c, "main", "other", true, Content::text("a")),
            publish(c, "", "q", false, short),
            consume(ch(2), "q", "k", false),
            Command::BasicCancel { ch: ch(2), consumer_tag: n("k") },
            Command::BasicAck { ch: ch(2), delivery_tag: 1, multiple: false },
            Command::BasicNack { ch: ch(2), delivery_tag: 1, multiple: false, requeue: false },
            Command::BasicGet { ch: c, queue: n("q"), no_ack: false },
            Command::BasicGet { ch: c, queue: n("dead"), no_ack: true },
            Command::BasicReject { ch: c, delivery_tag: 1, requeue: false },
            Command::BasicReject { ch: c, delivery_tag: 1, requeue: true },
            Command::BasicAck { ch: c, delivery_tag: 1, multiple: false },
            declare_r,
            Command::QueuePurge { ch: c, queue: n("q") },
            Command::Pass { ms: 1 },
        ];
        CheckConfig {
            name: "lifetime",
            about: "RabbitMQ's TTL, length limits, dead-lettering, queue expiry and alternate exchange, with time passing (rabbitmq)",
            profile: Profile::rabbitmq(),
            faults: Faults::NONE,
            setup,
            menu,
            max_messages: 3,
            max_tag: 2,
            max_names: 0,
            max_time: 4,
            must_reach: &LIFETIME,
            unique_states: Some(2_135_437),
            late_arrivals: true,
        }
    }

    /// The lifetime universe a message deeper (minutes; `just check-deep`, not in CI).
    pub fn deep() -> CheckConfig {
        CheckConfig {
            name: "deep",
            about: "the lifetime universe with 4 messages and 3 deliveries per channel (by hand, `just check-deep`)",
            max_messages: 4,
            max_tag: 3,
            unique_states: None,
            ..Self::lifetime()
        }
    }
}
