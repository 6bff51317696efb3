//! A client method as a model command: what a server (the reference broker) or an observer of a
//! client (the proxy) makes of each method a client sends on a channel.

use crate::table::table;
use amq_protocol::protocol::{access, basic, channel, confirm, exchange, queue, tx, AMQPClass};
use amq_protocol::types::ShortString;
use amqp_model::{ChanRef, Command, ExchangeKind, Name, ProfileName, ReplyCode};

/// What a client method asks of the server.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// A model command; with `nowait` its reply is not sent.
    Command {
        /// The command.
        command: Command,
        /// The client asked for no reply.
        nowait: bool,
    },
    /// `basic.publish`: the command is made once its content has arrived.
    Publish {
        /// The exchange.
        exchange: Name,
        /// The routing key.
        routing_key: Name,
        /// The mandatory flag.
        mandatory: bool,
    },
    /// Nothing to do (a client's `basic.cancel-ok` answering a server cancel, a stray
    /// `channel.close-ok`).
    Ignore,
    /// `channel.flow` with `active=true`: a channel is active from its open (`channel flow
    /// initial-state`) and the model never pauses one, so the answer is `channel.flow-ok`
    /// `active=true`, as RabbitMQ 3.10.8 answers it (docs/rabbitmq-3.10.md Q54). With
    /// `active=false` it is 540, as there.
    FlowActive,
    /// `access.request`, of the access class 0-8 had and 0-9-1 dropped: RabbitMQ 3.10.8 still
    /// answers it with `access.request-ok` (ticket 1, which 0-9-1 ignores everywhere:
    /// docs/rabbitmq-3.10.md Q62), and so does the reference broker.
    AccessRequest,
    /// A method the server answers with a connection close.
    Refuse {
        /// The reply code (540 not-implemented, 503 command-invalid).
        code: ReplyCode,
        /// Why.
        text: String,
    },
}

fn not_implemented(text: impl Into<String>) -> Request {
    Request::Refuse { code: ReplyCode::NotImplemented, text: text.into() }
}

fn invalid(text: impl Into<String>) -> Request {
    Request::Refuse { code: ReplyCode::CommandInvalid, text: text.into() }
}

fn name(s: &ShortString) -> Name {
    Name::from(s.as_str())
}

/// `prefetch-size` of a `basic.qos` method payload (amq-protocol's parser drops it).
fn prefetch_size(payload: &[u8]) -> u32 {
    payload.get(4..8).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Read a client method on channel `ch` (a channel above 0; connection methods are the
/// connection's business) for a broker under `profile`. `payload` is the method frame's payload.
pub fn request(profile: ProfileName, ch: ChanRef, class: &AMQPClass, payload: &[u8]) -> Request {
    let cmd = |command: Command, nowait: bool| Request::Command { command, nowait };
    match class {
        AMQPClass::Channel(m) => match m {
            channel::AMQPMethod::Open(_) => cmd(Command::ChannelOpen { ch }, false),
            channel::AMQPMethod::Close(_) => cmd(Command::ChannelClose { ch }, false),
            channel::AMQPMethod::CloseOk(_) => Request::Ignore,
            channel::AMQPMethod::Flow(f) if f.active => Request::FlowActive,
            channel::AMQPMethod::Flow(_) => {
                // RabbitMQ's words (Q54): no rule allows the refusal, nor forbids it.
                not_implemented("active=false")
            }
            channel::AMQPMethod::FlowOk(_) => invalid("channel.flow-ok answers a channel.flow the server never sends"),
            channel::AMQPMethod::OpenOk(_) => invalid("channel.open-ok is a server method"),
        },
        AMQPClass::Exchange(m) => match m {
            exchange::AMQPMethod::Declare(d) => cmd(
                Command::ExchangeDeclare {
                    ch,
                    exchange: name(&d.exchange),
                    kind: ExchangeKind::parse(d.kind.as_str()),
                    passive: d.passive,
                    durable: d.durable,
                    auto_delete: d.auto_delete,
                    internal: d.internal,
                    arguments: table(&d.arguments),
                },
                d.nowait,
            ),
            exchange::AMQPMethod::Delete(d) => {
                cmd(Command::ExchangeDelete { ch, exchange: name(&d.exchange), if_unused: d.if_unused }, d.nowait)
            }
            exchange::AMQPMethod::Bind(b) => cmd(
                Command::ExchangeBind {
                    ch,
                    destination: name(&b.destination),
                    source: name(&b.source),
                    routing_key: name(&b.routing_key),
                    arguments: table(&b.arguments),
                },
                b.nowait,
            ),
            exchange::AMQPMethod::Unbind(b) => cmd(
                Command::ExchangeUnbind {
                    ch,
                    destination: name(&b.destination),
                    source: name(&b.source),
                    routing_key: name(&b.routing_key),
                    arguments: table(&b.arguments),
                },
                b.nowait,
            ),
            _ => invalid("exchange replies are server methods"),
        },
        AMQPClass::Queue(m) => match m {
            queue::AMQPMethod::Declare(d) => cmd(
                Command::QueueDeclare {
                    ch,
                    queue: name(&d.queue),
                    passive: d.passive,
                    durable: d.durable,
                    exclusive: d.exclusive,
                    auto_delete: d.auto_delete,
                    arguments: table(&d.arguments),
                },
                d.nowait,
            ),
            queue::AMQPMethod::Bind(b) => cmd(
                Command::QueueBind {
                    ch,
                    queue: name(&b.queue),
                    exchange: name(&b.exchange),
                    routing_key: name(&b.routing_key),
                    arguments: table(&b.arguments),
                },
                b.nowait,
            ),
            queue::AMQPMethod::Unbind(b) => cmd(
                Command::QueueUnbind {
                    ch,
                    queue: name(&b.queue),
                    exchange: name(&b.exchange),
                    routing_key: name(&b.routing_key),
                    arguments: table(&b.arguments),
                },
                false,
            ),
            queue::AMQPMethod::Purge(p) => cmd(Command::QueuePurge { ch, queue: name(&p.queue) }, p.nowait),
            queue::AMQPMethod::Delete(d) => cmd(
                Command::QueueDelete { ch, queue: name(&d.queue), if_unused: d.if_unused, if_empty: d.if_empty },
                d.nowait,
            ),
            _ => invalid("queue replies are server methods"),
        },
        AMQPClass::Basic(m) => match m {
            basic::AMQPMethod::Qos(q) => {
                let size = prefetch_size(payload);
                if size != 0 {
                    // RabbitMQ's words, the size as sent (Q58).
                    return not_implemented(format!("prefetch_size!=0 ({size}) (basic qos prefetch-size 01)"));
                }
                cmd(Command::BasicQos { ch, prefetch_count: q.prefetch_count, global: q.global }, false)
            }
            basic::AMQPMethod::Consume(c) => {
                // RabbitMQ 3.10.8 takes `no-local` and ignores it (docs/rabbitmq-3.10.md Q61: the
                // consumer gets its own connection's messages), and so does the model under its
                // profile. Under `spec` the model, which has no notion of it, cannot honour it.
                if c.no_local && profile != ProfileName::Rabbitmq {
                    return not_implemented("basic.consume no-local is not implemented by the model");
                }
                cmd(
                    Command::BasicConsume {
                        ch,
                        queue: name(&c.queue),
                        consumer_tag: name(&c.consumer_tag),
                        no_ack: c.no_ack,
                        exclusive: c.exclusive,
                        arguments: table(&c.arguments),
                    },
                    c.nowait,
                )
            }
            basic::AMQPMethod::Cancel(c) => {
                cmd(Command::BasicCancel { ch, consumer_tag: name(&c.consumer_tag) }, c.nowait)
            }
            basic::AMQPMethod::CancelOk(_) => Request::Ignore,
            basic::AMQPMethod::Publish(p) => {
                if p.immediate {
                    return not_implemented("immediate=true");
                }
                Request::Publish {
                    exchange: name(&p.exchange),
                    routing_key: name(&p.routing_key),
                    mandatory: p.mandatory,
                }
            }
            basic::AMQPMethod::Get(g) => cmd(Command::BasicGet { ch, queue: name(&g.queue), no_ack: g.no_ack }, false),
            basic::AMQPMethod::Ack(a) => {
                cmd(Command::BasicAck { ch, delivery_tag: a.delivery_tag, multiple: a.multiple }, false)
            }
            basic::AMQPMethod::Nack(n) => cmd(
                Command::BasicNack { ch, delivery_tag: n.delivery_tag, multiple: n.multiple, requeue: n.requeue },
                false,
            ),
            basic::AMQPMethod::Reject(r) => {
                cmd(Command::BasicReject { ch, delivery_tag: r.delivery_tag, requeue: r.requeue }, false)
            }
            basic::AMQPMethod::Recover(r) => cmd(Command::BasicRecover { ch, requeue: r.requeue }, false),
            // Deprecated by 0-9-1 for recover; RabbitMQ 3.10.8 still takes it with requeue, as a
            // recover whose recover-ok is not sent, and answers requeue=false with 540 (Q56).
            basic::AMQPMethod::RecoverAsync(r) if r.requeue => cmd(Command::BasicRecover { ch, requeue: true }, true),
            basic::AMQPMethod::RecoverAsync(_) => not_implemented("requeue=false"),
            _ => invalid("basic replies and deliveries are server methods"),
        },
        AMQPClass::Confirm(m) => match m {
            confirm::AMQPMethod::Select(s) => cmd(Command::ConfirmSelect { ch }, s.nowait),
            confirm::AMQPMethod::SelectOk(_) => invalid("confirm.select-ok is a server method"),
        },
        AMQPClass::Tx(m) => match m {
            tx::AMQPMethod::Select(_) => cmd(Command::TxSelect { ch }, false),
            tx::AMQPMethod::Commit(_) => cmd(Command::TxCommit { ch }, false),
            tx::AMQPMethod::Rollback(_) => cmd(Command::TxRollback { ch }, false),
            _ => invalid("tx replies are server methods"),
        },
        AMQPClass::Access(access::AMQPMethod::Request(_)) => Request::AccessRequest,
        AMQPClass::Access(_) => invalid("access.request-ok is a server method"),
        AMQPClass::Connection(_) => invalid("a connection method on a channel other than 0"),
    }
}

/// Whether `(class_id, method_id)` names a method of AMQP 0-9-1 (with RabbitMQ's extensions,
/// [`amqp_model::methods`]), for telling an unknown method (540) from a malformed one (501).
pub fn known_method(class_id: u16, method_id: u16) -> bool {
    amqp_model::methods::name(class_id, method_id).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_methods_are_told_from_unknown_ones() {
        assert!(known_method(60, 40) && !known_method(60, 41) && !known_method(99, 10));
    }
}
