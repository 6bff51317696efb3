//! The `basic` class: quality of service, consumers, publishing, polling. Acknowledgements are
//! in [`ack`], the choice of consumer and the prefetch limits in [`dispatch`], RabbitMQ's
//! consumer priorities in [`consumer_priority`], single active consumers in [`single_active`],
//! message priorities in [`priority`].

pub mod ack;
pub mod consumer_priority;
pub mod direct_reply;
pub mod dispatch;
pub mod priority;
pub mod single_active;

use crate::broker::{Exception, Outcome};
use crate::event::{Event, Reply};
use crate::profile::QosScope;
use crate::state::{Broker, Consumer, ConsumerRef, Live, Mode, PendingPublish, Ready, Unacked};
use crate::types::{ChanRef, Content, Message, MessageData, MsgId, Name, ReplyCode};

use Exception::{Channel, Connection};

impl Broker {
    /// `basic.qos`: sets a prefetch limit (`basic qos prefetch-count 01`: the broker may send
    /// fewer unacknowledged messages than the limit, never more). 0 means no limit. What `global`
    /// scopes is the profile's `qos_scope`.
    pub(crate) fn basic_qos(
        &mut self,
        ch: ChanRef,
        prefetch_count: u16,
        global: bool,
        out: &mut Vec<Event>,
    ) -> Outcome {
        match (self.profile.qos_scope, global) {
            (QosScope::ChannelAndConnection, true) => {
                self.connections.get_mut(&ch.conn).expect("open").prefetch = prefetch_count
            }
            (QosScope::ChannelAndConnection, false) | (QosScope::ConsumerAndChannel, true) => {
                self.channel_mut(ch).prefetch = prefetch_count
            }
            (QosScope::ConsumerAndChannel, false) => {
                // RabbitMQ also lifts the channel-wide limit when a per-consumer one is set.
                let chan = self.channel_mut(ch);
                chan.consumer_prefetch = prefetch_count;
                chan.prefetch = 0;
            }
        }
        self.unblock();
        out.push(Event::Reply { ch, reply: Reply::QosOk });
        Ok(())
    }

    /// `basic.consume`.
    ///
    /// - a tag already used on the channel is a 530 connection error (`basic consume
    ///   consumer-tag 01`); an empty tag gets a server-generated one;
    /// - tags are kept per channel (`basic consume consumer-tag 02`): only this channel's
    ///   consumers are looked at, so another channel may use the same tag, and generated tags
    ///   come from one broker-wide counter, so they never repeat;
    /// - the queue must exist (404) and not be another connection's exclusive queue (405);
    /// - exclusive access is refused on a queue with consumers, and any access on a queue with an
    ///   exclusive consumer (`basic consume exclusive 01`): 403.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn basic_consume(
        &mut self,
        ch: ChanRef,
        queue: &Name,
        consumer_tag: &Name,
        no_ack: bool,
        exclusive: bool,
        arguments: &crate::types::Table,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if self.is_reply_pseudo_queue(queue) {
            return self.consume_replies(ch, consumer_tag, no_ack, out);
        }
        let name = self.resolve_queue(ch, queue)?;
        if self.channel(ch).expect("open").consumers.contains_key(consumer_tag)
            || self.channel(ch).expect("open").reply.as_ref().is_some_and(|r| r.tag == *consumer_tag)
        {
            return Err(Connection(ReplyCode::NotAllowed));
        }
        self.usable_queue(ch, &name)?;
        // RabbitMQ checks a consumer's arguments once the queue is found and usable (its 406
        // names the queue), before an exclusive consumer's conflict (Q47).
        let priority = self.consumer_priority_of(arguments)?;
        let q = &self.queues[&name];
        self.check_quorum_consume(ch, q)?;
        let has_exclusive = q.all_consumers().any(|c| self.consumer(c).is_some_and(|c| c.exclusive));
        // A single-active-consumer queue takes no exclusive consumer, even alone (Q48).
        let single_active = exclusive && self.single_active(q);
        if has_exclusive || exclusive && q.consumer_count() > 0 || single_active {
            return Err(Channel(ReplyCode::AccessRefused));
        }
        self.out_of_room(|b| b.queues[&name].consumer_count(), 16, "basic consume 01")?;
        let tag = if consumer_tag.is_empty() { self.generate_name("amq.ctag-") } else { consumer_tag.clone() };
        let chan = self.channel_mut(ch);
        let prefetch = chan.consumer_prefetch;
        chan.consumers.insert(
            tag.clone(),
            Consumer { queue: name.clone(), no_ack, exclusive, prefetch, queue_gone: false, priority },
        );
        let q = self.queues.get_mut(&name).expect("checked");
        q.consumers.push_back(ConsumerRef { ch, tag: tag.clone() });
        // An auto-delete queue waiting for its deletion is in use again.
        q.unused = false;
        out.push(Event::Reply { ch, reply: Reply::ConsumeOk { consumer_tag: tag } });
        Ok(())
    }

    /// `basic.cancel`: the consumer stops; its unacknowledged deliveries stay unacknowledged.
    /// An unknown tag is answered with cancel-ok too (`basic cancel 01` asks servers to ignore a
    /// cancel whose queue is gone). Under `foreign_consumer_tag_refused` (the spec profile) a tag
    /// of another channel of the connection is a 530 not-allowed connection exception
    /// (`basic consume consumer-tag 02`: a tag is valid only on the channel that created it).
    pub(crate) fn basic_cancel(&mut self, ch: ChanRef, consumer_tag: &Name, out: &mut Vec<Event>) -> Outcome {
        if self.cancel_replies(ch, consumer_tag) {
            // The channel's reply consumer (`super::direct_reply`).
        } else if let Some(c) = self.channel_mut(ch).consumers.remove(consumer_tag) {
            if !c.queue_gone {
                self.detach_consumer(&c.queue, &ConsumerRef { ch, tag: consumer_tag.clone() }, out);
            }
        } else if self.profile.foreign_consumer_tag_refused
            && self.connections[&ch.conn].channels.values().any(|c| c.consumers.contains_key(consumer_tag))
        {
            return Err(Exception::Connection(ReplyCode::NotAllowed));
        }
        out.push(Event::Reply { ch, reply: Reply::CancelOk { consumer_tag: consumer_tag.clone() } });
        Ok(())
    }

    /// `basic.publish`: the exchange must exist (`basic publish exchange must-exist`: 404) and not
    /// be internal (`basic publish exchange 02`: 403); `""` is the predeclared default exchange
    /// (`basic publish exchange default-exchange`). On a transactional channel the message
    /// waits for `tx.commit`; otherwise it is routed now, and on a confirm channel acknowledged
    /// after any `basic.return` (`confirm unroutable messages`) and after the copy has been put
    /// in every queue it reached (`confirm all queues`).
    pub(crate) fn basic_publish(
        &mut self,
        ch: ChanRef,
        exchange: &Name,
        routing_key: &Name,
        mandatory: bool,
        content: &Content,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let refused = match self.exchanges.get(exchange) {
            None => Some(ReplyCode::NotFound),
            Some(x) if x.internal => Some(ReplyCode::AccessRefused),
            Some(_) => None,
        };
        if let Some(code) = refused {
            return self.refuse_publish(ch, code);
        }
        // A request for a direct reply (`super::direct_reply`): its reply-to names the channel's
        // reply consumer, which it must have.
        let rewritten = self.reply_to_rewritten(ch, content)?;
        let content = rewritten.as_ref().unwrap_or(content);
        // RabbitMQ refuses an `expiration` that is not a count of milliseconds (Q44).
        if self.profile.lifetime && crate::lifetime::ttl::expiration(content).is_none() {
            return Err(Channel(ReplyCode::PreconditionFailed));
        }
        self.settle_header_reading(exchange, routing_key, &content.headers);
        let mut mandatory = mandatory;
        if matches!(self.channel(ch).expect("open").mode, Mode::Tx { .. })
            && self.returns_now(exchange, routing_key, mandatory, content)
        {
            // Returned at the publish (`tx not mandatory`); routed at the commit as any other.
            let _ = self.enqueue(ch, exchange, routing_key, true, content, out);
            mandatory = false;
        }
        let chan = self.channel_mut(ch);
        match &mut chan.mode {
            Mode::Tx { publishes, .. } => {
                publishes.push(PendingPublish {
                    exchange: exchange.clone(),
                    routing_key: routing_key.clone(),
                    mandatory,
                    content: content.clone(),
                });
                return Ok(());
            }
            Mode::Confirm { next_seq } => {
                let seq = *next_seq;
                *next_seq += 1;
                // Handled and acked; or, under `confirm_nack_open`, not handled and nacked (the
                // basic.nack doc's unhandled message): routed, each copy then kept or lost, or
                // not routed at all.
                let why = "confirm all messages acknowledged";
                let answer = if self.profile.confirm_nack_open { self.either(why, 3) } else { 0 };
                // A queue that refuses the message over its length limit has it nacked.
                let mut taken = true;
                if answer != 2 {
                    let id = crate::types::MsgId(self.next_msg);
                    taken = self.enqueue(ch, exchange, routing_key, mandatory, content, out);
                    if answer == 1 {
                        let reached: Vec<Name> =
                            self.ledger.keys().filter(|c| c.msg == id).map(|c| c.queue.clone()).collect();
                        for q in reached {
                            if self.either(why, 2) == 1 {
                                self.queues.get_mut(&q).expect("reached").ready.retain(|r| r.msg.id() != id);
                                self.settle_copy(id, &q);
                            }
                        }
                    }
                }
                out.push(Event::Confirm { ch, seq, ack: answer == 0 && taken });
            }
            Mode::Plain => {
                let _ = self.enqueue(ch, exchange, routing_key, mandatory, content, out);
            }
        }
        Ok(())
    }

    /// A publish refused by `basic publish exchange must-exist` (404) or `basic publish exchange
    /// 02` (403): a channel exception now, or, in a transaction under `tx_checks_at_commit`, as a
    /// choice, at `tx.commit` (the text gives no moment; commit-ok's doc has a failed commit
    /// raise a channel exception), the publish then held as failed.
    fn refuse_publish(&mut self, ch: ChanRef, code: ReplyCode) -> Outcome {
        let why =
            if code == ReplyCode::NotFound { "basic publish exchange must-exist" } else { "basic publish exchange 02" };
        let in_tx = matches!(self.channel(ch).expect("open").mode, Mode::Tx { .. });
        if in_tx && self.profile.tx_checks_at_commit && self.either(why, 2) == 1 {
            if let Mode::Tx { failed, .. } = &mut self.channel_mut(ch).mode {
                failed.get_or_insert(code);
            }
            return Ok(());
        }
        Err(Channel(code))
    }

    /// Whether an unroutable mandatory message published in a transaction is returned at once:
    /// under `tx_return_timing_open` a choice (`tx not mandatory`), held for the commit first.
    fn returns_now(&mut self, exchange: &Name, routing_key: &Name, mandatory: bool, content: &Content) -> bool {
        self.tx_return_open(exchange, routing_key, mandatory, content) && self.either("tx not mandatory", 2) == 1
    }

    /// Whether the return of a publish in a transaction is one whose time `tx not mandatory`
    /// leaves open: a mandatory message routed nowhere now, under `tx_return_timing_open`, by a
    /// broker that returns such messages at all.
    pub(crate) fn tx_return_open(
        &self,
        exchange: &Name,
        routing_key: &Name,
        mandatory: bool,
        content: &Content,
    ) -> bool {
        mandatory
            && self.profile.mandatory_returns
            && self.profile.tx_return_timing_open
            && self.route(exchange, routing_key, &content.headers).is_empty()
    }

    /// Route a message and append a copy to every queue it reaches; an unroutable mandatory
    /// message goes back to its publisher with 312 no-route (`basic publish mandatory 01`).
    /// Returns whether every queue it reached took it (a queue over its length limit may refuse
    /// it, [`crate::lifetime::limits`]).
    pub(crate) fn enqueue(
        &mut self,
        ch: ChanRef,
        exchange: &Name,
        routing_key: &Name,
        mandatory: bool,
        content: &Content,
        out: &mut Vec<Event>,
    ) -> bool {
        let msg = Message::new(MessageData {
            id: MsgId(self.next_msg),
            exchange: exchange.clone(),
            routing_key: routing_key.clone(),
            content: content.clone(),
        });
        self.next_msg += 1;
        // A reply to a reply consumer goes to it and to no queue (`super::direct_reply`).
        let queues = match self.route_reply(&msg, out) {
            Some(true) => return true,
            Some(false) => Vec::new(),
            None => self.route(exchange, routing_key, &content.headers),
        };
        if queues.is_empty() && mandatory && self.profile.mandatory_returns {
            out.push(Event::Return { ch, code: ReplyCode::NoRoute, message: msg.clone() });
        }
        let mut taken = true;
        for q in queues {
            taken &= match self.queues[&q].quorum {
                true => self.publish_to_quorum(&q, &msg),
                false => self.put(&q, &msg, out),
            };
        }
        taken
    }

    /// `basic.get`: the first ready message of the highest priority level (or, where requeued
    /// copies may have moved or the broker's levels are not settled yet, any that may come first:
    /// a choice), with the number left behind it, or get-empty. Not limited by
    /// prefetch. Without `no-ack` it waits for acknowledgement like a delivery.
    pub(crate) fn basic_get(&mut self, ch: ChanRef, queue: &Name, no_ack: bool, out: &mut Vec<Event>) -> Outcome {
        let name = self.resolve_queue(ch, queue)?;
        self.usable_queue(ch, &name)?;
        // A copy this channel rejected or nacked with requeue is not given back to it, by
        // basic.get either (`basic reject requeue 01`, `basic nack requeue 01`; only under
        // `requeue_avoids_rejecting_channel` is a copy so marked): the first other one is taken,
        // or none.
        self.renew(&name);
        let q = &self.queues[&name];
        // An expired message is never got (`crate::lifetime::ttl`).
        let candidates = self.next_by_priority(q, |r| r.avoid != Some(ch) && !self.surely_expired(r));
        let chosen = match candidates.len() {
            0 | 1 => candidates.first().copied(),
            n => Some(candidates[self.either("basic 08", n.min(255) as u8) as usize]),
        };
        let at = chosen.map(|(at, schemes)| {
            self.settle_priority_schemes(schemes);
            at
        });
        let q = self.queues.get_mut(&name).expect("checked");
        let Some(mut r) = at.and_then(|at| q.ready.remove(at)) else {
            out.push(Event::Reply { ch, reply: Reply::GetEmpty });
            return Ok(());
        };
        self.drop_expired_heads(&name);
        if self.faults.has(crate::fault::Fault::GetDropsNext) {
            if let Some(next) = self.queues.get_mut(&name).and_then(|q| q.ready.pop_front()) {
                self.settle_copy(next.msg.id(), &name);
            }
        }
        let message_count = self.queues[&name].ready.len() as u32;
        if r.flag_optional {
            r.redelivered = self.either("redelivered implementation", 2) == 0;
        }
        let delivery_tag = self.hand_over(ch, &name, &r, None, no_ack);
        let message = crate::quorum::as_delivered(&r.msg, self.queues[&name].quorum, r.delivery_count, true);
        let reply = Reply::GetOk { delivery_tag, redelivered: r.redelivered, queue: name, message_count, message };
        out.push(Event::Reply { ch, reply });
        Ok(())
    }

    /// Give a ready copy to a client on `ch` (for `consumer`, or for `basic.get` when `None`):
    /// it gets the channel's next delivery tag and either waits on the channel for
    /// acknowledgement (`basic 10`: it goes back to its queue if the channel closes first) or,
    /// with `no_ack`, is settled at once (`basic 09`). Returns the delivery tag.
    pub(crate) fn hand_over(
        &mut self,
        ch: ChanRef,
        queue: &Name,
        r: &Ready,
        consumer: Option<Name>,
        no_ack: bool,
    ) -> u64 {
        let copy = crate::state::CopyId { msg: r.msg.id(), queue: queue.clone() };
        if no_ack {
            self.ledger.remove(&copy);
        } else {
            self.ledger.insert(copy.clone(), Live { delivered: true });
        }
        let keep_no_ack_tags = self.profile.no_ack_tag_open;
        let chan = self.channel_mut(ch);
        let tag = chan.next_tag;
        chan.next_tag += 1;
        if no_ack && keep_no_ack_tags {
            chan.no_ack_tags.insert(tag);
        }
        if !no_ack {
            let u = Unacked {
                msg: r.msg.clone(),
                queue: queue.clone(),
                queue_gone: false,
                consumer,
                redelivered: r.redelivered,
                pending: None,
                expires: r.expires,
                delivery_count: r.delivery_count,
            };
            chan.unacked.insert(tag, u);
        }
        tag
    }
}
