//! RabbitMQ's direct reply-to (`amqp_model::basic::direct_reply`), as probed on RabbitMQ 3.10.8
//! (docs/rabbitmq-3.10.md Q51); under `spec` the pseudo-queue is no queue at all.

// The shared harness; this file uses a part of it.
#[allow(dead_code)]
mod support;

use amqp_model::check::config::cmd::{consume, publish, queue};
use amqp_model::{ChanRef, Command, Content, Event, Method, Name, Reply, ReplyCode};
use support::{channel_closed, World, RABBIT, SPEC};

const RT: &str = "amq.rabbitmq.reply-to";

fn request(ch: ChanRef, reply_to: &str) -> Command {
    let mut content = Content::text("req");
    content.properties.set("reply-to", Some(Name::from(reply_to)));
    publish(ch, "", "rpc", false, content)
}

/// A client on c1.1 with a reply consumer `r`, a server on c2.1 with the request queue `rpc`.
fn rpc_world() -> (World, ChanRef, ChanRef) {
    let mut w = World::new(RABBIT);
    let client = w.open(1);
    let server = w.open(2);
    w.declare(queue(server, "rpc", false, false, false));
    let ok = w.run(consume(client, RT, "r", true));
    assert_eq!(ok, [Event::Reply { ch: client, reply: Reply::ConsumeOk { consumer_tag: "r".into() } }]);
    (w, client, server)
}

/// The reply-to a request got, as the server reads it with `basic.get`.
fn served(w: &mut World, server: ChanRef) -> Name {
    match w.run(Command::BasicGet { ch: server, queue: "rpc".into(), no_ack: true }).as_slice() {
        [Event::Reply { reply: Reply::GetOk { message, .. }, .. }] => {
            message.0.content.properties.get("reply-to").cloned().expect("a reply-to")
        }
        other => panic!("no request: {other:?}"),
    }
}

#[test]
fn a_reply_carries_the_channels_next_delivery_tag_without_using_it_up() {
    let (mut w, client, server) = rpc_world();
    w.run(request(client, RT));
    let name = served(&mut w, server);
    assert!(name.as_str().starts_with("amq.rabbitmq.reply-to."), "rewritten: {name:?}");
    // An ordinary delivery on the same channel keeps its own count.
    w.declare(queue(server, "work", false, false, false));
    w.run(consume(client, "work", "w", true));
    let mut got = Vec::new();
    for (key, body) in [(name.as_str(), "resp1"), ("work", "job"), (name.as_str(), "resp2"), (name.as_str(), "resp3")] {
        for e in w.run(publish(server, "", key, false, Content::text(body))) {
            if let Event::Deliver { ch, consumer_tag, delivery_tag, redelivered, message, .. } = e {
                assert_eq!(ch, client);
                assert!(!redelivered);
                got.push((consumer_tag.as_str().to_string(), delivery_tag, message.0.content.body.to_string()));
            }
        }
    }
    let expected = [("r", 1, "resp1"), ("w", 1, "job"), ("r", 2, "resp2"), ("r", 2, "resp3")];
    assert_eq!(got, expected.map(|(c, t, b)| (c.to_string(), t, b.to_string())));
    // Every request of the channel names the same reply consumer.
    w.run(request(client, RT));
    assert_eq!(served(&mut w, server), name);
    // Nothing was stored.
    assert!(w.0.ledger.is_empty());
}

#[test]
fn misuse_is_refused_as_rabbitmq_refuses_it() {
    let (mut w, client, _) = rpc_world();
    let closed = |ch: ChanRef, code, method| vec![channel_closed(ch, code, method)];
    // A second reply consumer; one with acknowledgements.
    assert_eq!(
        w.run(consume(client, RT, "r2", true)),
        closed(client, ReplyCode::PreconditionFailed, Method::BasicConsume)
    );
    let other = w.channel(1, 2);
    assert_eq!(
        w.run(consume(other, RT, "r", false)),
        closed(other, ReplyCode::PreconditionFailed, Method::BasicConsume)
    );
    // A request on a channel without a reply consumer (c1.1 lost its own with its channel).
    let c = w.channel(1, 1);
    assert_eq!(w.run(request(c, RT)), closed(c, ReplyCode::PreconditionFailed, Method::BasicPublish));
    // Cancelled, the reply consumer is gone.
    let c = w.channel(1, 3);
    w.run(consume(c, RT, "r", true));
    w.run(Command::BasicCancel { ch: c, consumer_tag: "r".into() });
    assert_eq!(w.run(request(c, RT)), closed(c, ReplyCode::PreconditionFailed, Method::BasicPublish));
}

#[test]
fn a_reply_no_consumer_has_is_unroutable() {
    let (mut w, client, server) = rpc_world();
    w.run(request(client, RT));
    let name = served(&mut w, server);
    for key in ["amq.rabbitmq.reply-to.garbage", RT] {
        let events = w.run(publish(server, "", key, true, Content::text("x")));
        assert!(matches!(events[..], [Event::Return { code: ReplyCode::NoRoute, .. }]), "{key}: {events:?}");
    }
    // Through another exchange the name is just a routing key.
    let events = w.run(publish(server, "amq.direct", name.as_str(), true, Content::text("x")));
    assert!(matches!(events[..], [Event::Return { code: ReplyCode::NoRoute, .. }]), "{events:?}");
    w.run(Command::ConnectionClose { conn: client.conn });
    let events = w.run(publish(server, "", name.as_str(), true, Content::text("late")));
    assert!(matches!(events[..], [Event::Return { code: ReplyCode::NoRoute, .. }]), "{events:?}");
}

#[test]
fn the_pseudo_queue_declares_with_one_consumer_and_nothing_else() {
    let (mut w, client, server) = rpc_world();
    w.run(request(client, RT));
    let name = served(&mut w, server);
    let declare = |ch, q: &str, passive| Command::QueueDeclare {
        ch,
        queue: q.into(),
        passive,
        durable: false,
        exclusive: false,
        auto_delete: false,
        arguments: Default::default(),
    };
    for (q, passive) in [(RT, true), (RT, false), (name.as_str(), true)] {
        let ok = Event::Reply {
            ch: server,
            reply: Reply::QueueDeclareOk { queue: q.into(), message_count: 0, consumer_count: 1 },
        };
        assert_eq!(w.run(declare(server, q, passive)), [ok], "{q} passive={passive}");
    }
    assert_eq!(
        w.run(declare(server, "amq.rabbitmq.reply-to.garbage", true)),
        [channel_closed(server, ReplyCode::NotFound, Method::QueueDeclare)]
    );
    let server = w.channel(2, 1);
    assert_eq!(
        w.run(Command::BasicGet { ch: server, queue: RT.into(), no_ack: true }),
        [channel_closed(server, ReplyCode::NotFound, Method::BasicGet)]
    );
}

#[test]
fn under_the_spec_the_pseudo_queue_is_no_queue() {
    let mut w = World::new(SPEC);
    let c = w.open(1);
    let events = w.run(consume(c, RT, "r", true));
    assert_eq!(events, [channel_closed(c, ReplyCode::NotFound, Method::BasicConsume)]);
}
