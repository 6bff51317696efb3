//! RabbitMQ's direct reply-to: the pseudo-queue `amq.rabbitmq.reply-to`, through which an RPC
//! client gets its replies without declaring a queue of its own, as probed on RabbitMQ 3.10.8
//! (docs/rabbitmq-3.10.md Q51). Only under `Profile::direct_reply_to`; under `spec` the name is
//! an ordinary one, reserved by its `amq.` prefix, and no queue has it.
//!
//! - A channel subscribes with `basic.consume amq.rabbitmq.reply-to`, without acknowledgements
//!   (406 otherwise) and once (a second one is 406); it is the channel's reply consumer
//!   ([`crate::state::ReplyConsumer`]), attached to no queue, until cancelled or its channel
//!   closes. Its name for replies, `amq.rabbitmq.reply-to.<key>`, is the broker's own, one per
//!   reply consumer.
//! - A publish on that channel whose `reply-to` property is `amq.rabbitmq.reply-to` goes out with
//!   the property rewritten to that name; on a channel without a reply consumer it is 406.
//! - A publish to the default exchange with that name as routing key goes straight to the reply
//!   consumer: a `basic.deliver` with the delivery tag the channel's next delivery will get, which
//!   it does not use up (two replies in a row carry the same tag), never redelivered, never
//!   stored. With no such consumer (a name made up, a consumer gone) the message is unroutable.
//! - `queue.declare amq.rabbitmq.reply-to`, passive or not, answers declare-ok with no message
//!   and one consumer, from any channel; a passive declare of a live reply name too. Nothing
//!   else treats them as queues (a get or a bind finds no queue: 404).

use crate::broker::{Exception, Outcome};
use crate::event::{Event, Reply};
use crate::state::{Broker, ReplyConsumer};
use crate::types::{ChanRef, Content, Message, Name, ReplyCode};

/// The pseudo-queue's name.
pub const PSEUDO_QUEUE: &str = "amq.rabbitmq.reply-to";

/// What the names the broker gives reply consumers start with.
pub const REPLY_PREFIX: &str = "amq.rabbitmq.reply-to.";

impl Broker {
    /// Whether `queue` is the pseudo-queue, under a profile that has one.
    pub(crate) fn is_reply_pseudo_queue(&self, queue: &Name) -> bool {
        self.profile.direct_reply_to && queue.as_str() == PSEUDO_QUEUE
    }

    /// `basic.consume amq.rabbitmq.reply-to`: the channel's reply consumer, without
    /// acknowledgements and only one (406 for either); a tag in use on the channel is 530, as
    /// for any consumer.
    pub(crate) fn consume_replies(
        &mut self,
        ch: ChanRef,
        consumer_tag: &Name,
        no_ack: bool,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let chan = self.channel(ch).expect("open");
        if chan.consumers.contains_key(consumer_tag) || chan.reply.as_ref().is_some_and(|r| r.tag == *consumer_tag) {
            return Err(Exception::Connection(ReplyCode::NotAllowed));
        }
        if !no_ack || chan.reply.is_some() {
            return Err(Exception::Channel(ReplyCode::PreconditionFailed));
        }
        let tag = if consumer_tag.is_empty() { self.generate_name("amq.ctag-") } else { consumer_tag.clone() };
        let name = self.generate_name(REPLY_PREFIX);
        self.channel_mut(ch).reply = Some(ReplyConsumer { tag: tag.clone(), name });
        out.push(Event::Reply { ch, reply: Reply::ConsumeOk { consumer_tag: tag } });
        Ok(())
    }

    /// `basic.cancel` of the channel's reply consumer: whether `consumer_tag` named it (it is
    /// gone then).
    pub(crate) fn cancel_replies(&mut self, ch: ChanRef, consumer_tag: &Name) -> bool {
        let chan = self.channel_mut(ch);
        let named = chan.reply.as_ref().is_some_and(|r| r.tag == *consumer_tag);
        if named {
            chan.reply = None;
        }
        named
    }

    /// A publish's content as the broker passes it on: a `reply-to` of `amq.rabbitmq.reply-to`
    /// becomes the name of the channel's reply consumer, and without one the publish is 406.
    pub(crate) fn reply_to_rewritten(&self, ch: ChanRef, content: &Content) -> Result<Option<Content>, Exception> {
        if !self.profile.direct_reply_to
            || content.properties.get("reply-to").is_none_or(|r| r.as_str() != PSEUDO_QUEUE)
        {
            return Ok(None);
        }
        let Some(reply) = &self.channel(ch).expect("open").reply else {
            return Err(Exception::Channel(ReplyCode::PreconditionFailed));
        };
        let mut rewritten = content.clone();
        rewritten.properties.set("reply-to", Some(reply.name.clone()));
        Ok(Some(rewritten))
    }

    /// A message published to the default exchange with a reply consumer's name as routing key:
    /// delivered to it at once, with its channel's next delivery tag (`Some(true)`), or, for a
    /// name no reply consumer has, unroutable (`Some(false)`); `None` for any other message.
    pub(crate) fn route_reply(&mut self, message: &Message, out: &mut Vec<Event>) -> Option<bool> {
        let (exchange, routing_key) = (&message.0.exchange, &message.0.routing_key);
        if !self.profile.direct_reply_to || !exchange.is_empty() || !routing_key.as_str().starts_with(REPLY_PREFIX) {
            return None;
        }
        let Some((ch, tag)) = self.reply_consumer_named(routing_key) else { return Some(false) };
        // The channel's next tag, not used up (Q51: a reply after a get-ok of tag 1 came as 2,
        // two replies before any other delivery both as 1).
        let delivery_tag = self.channel(ch).expect("has the reply consumer").next_tag;
        out.push(Event::Deliver {
            ch,
            consumer_tag: tag,
            delivery_tag,
            redelivered: false,
            queue: Name::from(PSEUDO_QUEUE),
            message: message.clone(),
        });
        Some(true)
    }

    /// The channel and tag of the reply consumer called `name`.
    fn reply_consumer_named(&self, name: &Name) -> Option<(ChanRef, Name)> {
        self.connections.iter().find_map(|(conn, c)| {
            c.channels.iter().find_map(|(n, chan)| {
                let r = chan.reply.as_ref().filter(|r| r.name == *name)?;
                Some((ChanRef { conn: *conn, channel: *n }, r.tag.clone()))
            })
        })
    }

    /// `queue.declare` of the pseudo-queue (passive or not), or a passive one of a live reply
    /// name: declare-ok with no message and one consumer. `None` for any other declare.
    pub(crate) fn declare_reply_queue(&mut self, ch: ChanRef, queue: &Name, passive: bool) -> Option<Event> {
        if !self.profile.direct_reply_to {
            return None;
        }
        let live = passive && queue.as_str().starts_with(REPLY_PREFIX) && self.reply_consumer_named(queue).is_some();
        if queue.as_str() != PSEUDO_QUEUE && !live {
            return None;
        }
        Some(Event::Reply {
            ch,
            reply: Reply::QueueDeclareOk { queue: queue.clone(), message_count: 0, consumer_count: 1 },
        })
    }
}
