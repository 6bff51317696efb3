//! Performing one trace command on a live broker over lapin: the command's method, what it
//! answers, and the events it causes, reported as the model's events.

use super::*;
use crate::target::probe::connect;
use crate::target::{lock, Problem};
use amqp_model::event::Reply;
use amqp_model::{Command, Event, ExchangeKind, Method, Name};
use amqp_wire::field_table;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRecoverOptions, BasicRejectOptions, ConfirmSelectOptions, ExchangeBindOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, ExchangeUnbindOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    QueuePurgeOptions,
};
use lapin::Confirmation;
use std::sync::{Arc, Mutex};

impl LiveTarget {
    pub(super) async fn perform(&mut self, command: &Command) {
        use Command::*;
        let names = self.names.clone();
        match command {
            ConnectionOpen { conn } => {
                if self.conns.contains_key(conn) {
                    self.problem(Problem::Client(format!("c{} is already open", conn.0)));
                    return;
                }
                // A handshake that does not finish in time is tried again, twice: opening a
                // connection changes nothing on the broker, and a busy machine or a broker busy
                // with a restart or an earlier trace's closes says nothing of this trace.
                let mut attempt = tokio::time::timeout(self.timing.timeout, connect(&self.uri)).await;
                for _ in 0..2 {
                    if attempt.is_ok() {
                        break;
                    }
                    attempt = tokio::time::timeout(self.timing.timeout, connect(&self.uri)).await;
                }
                match attempt {
                    Ok(Ok(connection)) => {
                        let status = connection.status().clone();
                        let flags = Arc::new(Mutex::new(ConnFlags { status, ..ConnFlags::default() }));
                        let registry = Registry::default();
                        let watcher = watch(&connection, *conn, flags.clone(), registry.clone(), self.sink.clone());
                        self.conns.insert(*conn, Conn { connection, flags, registry, watcher });
                        self.push(Event::ConnectionOpenOk { conn: *conn });
                    }
                    Ok(Err(e)) => {
                        self.problem(Problem::Connect(format!("c{}: cannot connect to {}: {e}", conn.0, self.uri)))
                    }
                    Err(_) => {
                        let timeout = self.timing.timeout;
                        self.problem(Problem::Connect(format!(
                            "c{}: connecting to {} timed out three times ({timeout:?} each)",
                            conn.0, self.uri
                        )))
                    }
                }
            }
            ConnectionClose { conn } => {
                if self.close_connection(*conn).await {
                    self.push(Event::ConnectionCloseOk { conn: *conn });
                }
            }
            ConnectionDrop { conn } => {
                self.close_connection(*conn).await;
            }
            Restart => self.restart().await,
            // Time passes: exactly as long as the trace says (`amqp_model::lifetime::clock`).
            Pass { ms } => tokio::time::sleep(std::time::Duration::from_millis(u64::from(*ms))).await,
            ChannelOpen { ch } if self.chans.contains_key(ch) => {
                self.incomplete = Some(format!("{ch}: lapin cannot open a channel that is already open"));
                self.raw_needed = true;
            }
            other
                if other.channel().is_some_and(|ch| {
                    self.conns.contains_key(&ch.conn)
                        && !self.chans.contains_key(&ch)
                        && !matches!(other, ChannelOpen { .. })
                }) =>
            {
                let ch = other.channel().expect("a channel method");
                self.incomplete = Some(format!("{ch}: lapin cannot send a method on a channel that is not open"));
                self.raw_needed = true;
            }
            ChannelOpen { ch } => {
                let Some(conn) = self.conns.get(&ch.conn) else { return };
                lock(&conn.flags).last_method = Some(Method::ChannelOpen);
                let connection = &conn.connection;
                match self.timed(connection.create_channel()).await {
                    Outcome::Ok(channel) => {
                        let flags = Arc::new(Mutex::new(ChanFlags {
                            last_method: Some(Method::ChannelOpen),
                            ..ChanFlags::default()
                        }));
                        lock(&conn.registry).push((*ch, channel.clone(), flags.clone()));
                        self.chans.insert(
                            *ch,
                            Chan { channel, flags, consumers: Vec::new(), confirm_seq: None, unprobed: None },
                        );
                        self.push(Event::ChannelOpenOk { ch: *ch });
                    }
                    Outcome::Failed(e) => {
                        if e.is_amqp_hard_error() {
                            let conn = self.conns.remove(&ch.conn).expect("connection");
                            let (sink, flags) = (self.sink.clone(), conn.flags.clone());
                            report_close(&sink, *ch, &Mutex::new(ChanFlags::default()), &flags, &e);
                        } else {
                            self.problem(Problem::Client(format!("{ch}: channel.open: {e}")));
                        }
                    }
                    Outcome::TimedOut => self.abandon(ch.conn, "channel.open").await,
                }
            }
            ChannelClose { ch } => {
                let Some(chan) = self.chans.get(ch) else { return };
                lock(&chan.flags).client_closing = true;
                let ch = *ch;
                if self
                    .sync(ch, Method::ChannelClose, |c| async move { c.close(200, "OK".into()).await })
                    .await
                    .is_some()
                {
                    self.push(Event::ChannelCloseOk { ch });
                }
                self.chans.remove(&ch);
            }
            ExchangeDeclare { ch, exchange, kind, passive, durable, auto_delete, internal, arguments } => {
                let wire = names.wire(exchange);
                if !passive && !exchange.is_empty() && !exchange.is_reserved() {
                    self.exchanges.insert(wire.clone());
                }
                let kind = match kind {
                    ExchangeKind::Direct => lapin::ExchangeKind::Direct,
                    ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
                    ExchangeKind::Topic => lapin::ExchangeKind::Topic,
                    ExchangeKind::Headers => lapin::ExchangeKind::Headers,
                    ExchangeKind::Other(n) => lapin::ExchangeKind::Custom(n.as_str().to_string()),
                };
                let options = ExchangeDeclareOptions {
                    passive: *passive,
                    durable: *durable,
                    auto_delete: *auto_delete,
                    internal: *internal,
                    ..Default::default()
                };
                let args = field_table(&names.arguments(arguments));
                self.reply(*ch, Method::ExchangeDeclare, Reply::ExchangeDeclareOk, |c| async move {
                    c.exchange_declare(wire.into(), kind, options, args).await
                })
                .await;
            }
            ExchangeDelete { ch, exchange, if_unused } => {
                let wire = names.wire(exchange);
                let gone = wire.clone();
                let options = ExchangeDeleteOptions { if_unused: *if_unused, ..Default::default() };
                let ch = *ch;
                let ok = self
                    .sync(ch, Method::ExchangeDelete, |c| async move { c.exchange_delete(wire.into(), options).await })
                    .await;
                if ok.is_some() {
                    self.exchanges.remove(&gone);
                    self.push(Event::Reply { ch, reply: Reply::ExchangeDeleteOk });
                }
            }
            ExchangeBind { ch, destination, source, routing_key, arguments } => {
                let k = exchange_binding_key(&names, &mut self.keyed, destination, source, routing_key);
                let (d, s, a) = (names.wire(destination), names.wire(source), field_table(&names.arguments(arguments)));
                self.reply(*ch, Method::ExchangeBind, Reply::ExchangeBindOk, |c| async move {
                    c.exchange_bind(d.into(), s.into(), k.into(), ExchangeBindOptions::default(), a).await
                })
                .await;
            }
            ExchangeUnbind { ch, destination, source, routing_key, arguments } => {
                let k = exchange_binding_key(&names, &mut self.keyed, destination, source, routing_key);
                let (d, s, a) = (names.wire(destination), names.wire(source), field_table(&names.arguments(arguments)));
                self.reply(*ch, Method::ExchangeUnbind, Reply::ExchangeUnbindOk, |c| async move {
                    c.exchange_unbind(d.into(), s.into(), k.into(), ExchangeUnbindOptions::default(), a).await
                })
                .await;
            }
            QueueDeclare { ch, queue, passive, durable, exclusive, auto_delete, arguments } => {
                let wire = names.wire(queue);
                if !passive && !queue.is_empty() && !queue.is_reserved() {
                    self.queues.insert(wire.clone());
                }
                let options = QueueDeclareOptions {
                    passive: *passive,
                    durable: *durable,
                    exclusive: *exclusive,
                    auto_delete: *auto_delete,
                    ..Default::default()
                };
                let args = field_table(&names.arguments(arguments));
                let ch = *ch;
                let ok =
                    self.sync(ch, Method::QueueDeclare, |c| async move {
                        c.queue_declare(wire.into(), options, args).await
                    })
                    .await;
                if let Some(q) = ok {
                    // A server-named queue is the run's too: cleanup deletes it with the rest.
                    if queue.is_empty() && !passive {
                        self.queues.insert(q.name().to_string());
                        names.generated(q.name().as_str());
                    }
                    self.last_queue.insert(ch, names.trace(q.name().as_str()));
                    let reply = Reply::QueueDeclareOk {
                        queue: names.trace(q.name().as_str()),
                        message_count: q.message_count(),
                        consumer_count: q.consumer_count(),
                    };
                    self.push(Event::Reply { ch, reply });
                }
            }
            QueueBind { ch, queue, exchange, routing_key, arguments } => {
                if queue.is_empty() && routing_key.is_empty() {
                    self.keyed.extend(self.last_queue.get(ch).cloned());
                }
                let (q, x, k, a) = (
                    names.wire(queue),
                    names.wire(exchange),
                    queue_binding_key(&names, &self.keyed, exchange, routing_key),
                    field_table(&names.arguments(arguments)),
                );
                self.reply(*ch, Method::QueueBind, Reply::QueueBindOk, |c| async move {
                    c.queue_bind(q.into(), x.into(), k.into(), QueueBindOptions::default(), a).await
                })
                .await;
            }
            QueueUnbind { ch, queue, exchange, routing_key, arguments } => {
                let (q, x, k, a) = (
                    names.wire(queue),
                    names.wire(exchange),
                    queue_binding_key(&names, &self.keyed, exchange, routing_key),
                    field_table(&names.arguments(arguments)),
                );
                self.reply(*ch, Method::QueueUnbind, Reply::QueueUnbindOk, |c| async move {
                    c.queue_unbind(q.into(), x.into(), k.into(), a).await
                })
                .await;
            }
            QueuePurge { ch, queue } => {
                let q = names.wire(queue);
                let ch = *ch;
                let ok = self
                    .sync(ch, Method::QueuePurge, |c| async move {
                        c.queue_purge(q.into(), QueuePurgeOptions::default()).await
                    })
                    .await;
                if let Some(message_count) = ok {
                    self.push(Event::Reply { ch, reply: Reply::QueuePurgeOk { message_count } });
                }
            }
            QueueDelete { ch, queue, if_unused, if_empty } => {
                let q = names.wire(queue);
                // The queue this deletes ("" is the channel's last queue), which cleanup then
                // need not delete again (some brokers never answer a delete of a missing queue).
                let gone: Vec<String> = match queue.is_empty() {
                    true => self.last_queue.get(ch).map(|l| vec![names.wire(l), l.to_string()]).unwrap_or_default(),
                    false => vec![q.clone()],
                };
                let options = QueueDeleteOptions { if_unused: *if_unused, if_empty: *if_empty, ..Default::default() };
                let ch = *ch;
                let ok = self
                    .sync(ch, Method::QueueDelete, |c| async move { c.queue_delete(q.into(), options).await })
                    .await;
                if let Some(message_count) = ok {
                    for g in gone {
                        self.queues.remove(&g);
                    }
                    self.push(Event::Reply { ch, reply: Reply::QueueDeleteOk { message_count } });
                }
            }
            BasicQos { ch, prefetch_count, global } => {
                let (n, options) = (*prefetch_count, BasicQosOptions { global: *global });
                self.reply(*ch, Method::BasicQos, Reply::QosOk, |c| async move { c.basic_qos(n, options).await }).await;
            }
            BasicConsume { ch, queue, consumer_tag, no_ack, exclusive, arguments } => {
                let (q, tag) = (names.wire(queue), consumer_tag.to_string());
                let args = field_table(arguments);
                let options = BasicConsumeOptions { no_ack: *no_ack, exclusive: *exclusive, ..Default::default() };
                let ch = *ch;
                let ok = self
                    .sync(ch, Method::BasicConsume, |c| async move {
                        c.basic_consume(q.into(), tag.into(), options, args).await
                    })
                    .await;
                if let Some(consumer) = ok {
                    let tag = consumer.tag().to_string();
                    self.push(Event::Reply { ch, reply: Reply::ConsumeOk { consumer_tag: Name::from(tag.as_str()) } });
                    let (Some(chan), Some(conn)) = (self.chans.get_mut(&ch), self.conns.get(&ch.conn)) else { return };
                    let (sink, chan_flags, conn_flags) = (self.sink.clone(), chan.flags.clone(), conn.flags.clone());
                    consumer.set_delegate(move |delivery: lapin::message::DeliveryResult| {
                        match delivery {
                            Ok(Some(d)) => sink.push(delivered(&names, ch, &tag, &d)),
                            Ok(None) => {
                                let f = lock(&chan_flags);
                                let ours = f.client_closing || f.cancelled.contains(&tag) || f.errored.contains(&tag);
                                drop(f);
                                if !ours && !lock(&conn_flags).client_closing {
                                    sink.push(Event::Cancel { ch, consumer_tag: Name::from(tag.as_str()) });
                                }
                            }
                            Err(e) => {
                                lock(&chan_flags).errored.insert(tag.clone());
                                report_close(&sink, ch, &chan_flags, &conn_flags, &e);
                            }
                        }
                        std::future::ready(())
                    });
                    chan.consumers.push(consumer);
                }
            }
            BasicCancel { ch, consumer_tag } => {
                let Some(chan) = self.chans.get(ch) else { return };
                lock(&chan.flags).cancelled.insert(consumer_tag.to_string());
                let tag = consumer_tag.to_string();
                let channel = chan.channel.clone();
                let done = self
                    .sync(*ch, Method::BasicCancel, |c| async move {
                        c.basic_cancel(tag.into(), BasicCancelOptions::default()).await
                    })
                    .await;
                // Once it has sent basic.cancel, lapin no longer hands the consumer's deliveries to
                // its delegate but queues them on the consumer's stream: what the broker delivered
                // before cancel-ok (as it may) is read from there, and comes before it.
                if let Some(chan) = self.chans.get_mut(ch) {
                    let tag = consumer_tag.to_string();
                    if let Some(consumer) = chan.consumers.iter_mut().find(|c| c.tag().as_str() == tag) {
                        for d in queued(consumer) {
                            self.sink.push(delivered(&names, *ch, &tag, &d));
                        }
                    }
                }
                // lapin also resolves a pending cancel when the server closes the channel (the
                // consumer is gone either way): that close is the answer, reported by the watcher.
                if done.is_some() && channel.status().connected() {
                    self.push(Event::Reply { ch: *ch, reply: Reply::CancelOk { consumer_tag: consumer_tag.clone() } });
                }
            }
            BasicPublish { ch, exchange, routing_key, mandatory, content } => {
                let ch = *ch;
                let x = names.wire(exchange);
                let prefixed = exchange.is_empty() || self.keyed.contains(routing_key);
                let k = if prefixed { names.wire(routing_key) } else { routing_key.to_string() };
                let props = amqp_wire::wire_properties(content);
                let body = content.body.as_str().as_bytes().to_vec();
                let options = BasicPublishOptions { mandatory: *mandatory, ..Default::default() };
                let Some(confirm) = self
                    .sync(ch, Method::BasicPublish, |c| async move {
                        c.basic_publish(x.into(), k.into(), options, &body, props).await
                    })
                    .await
                else {
                    return;
                };
                let seq = match self.chans.get_mut(&ch).and_then(|c| c.confirm_seq.as_mut()) {
                    Some(seq) => {
                        *seq += 1;
                        *seq
                    }
                    None => return self.probe(ch, Method::BasicPublish).await,
                };
                match self.timed(confirm).await {
                    Outcome::Ok(confirmation) => {
                        let ack = confirmation.is_ack();
                        if let Confirmation::Ack(Some(r)) | Confirmation::Nack(Some(r)) = confirmation {
                            let d = &r.delivery;
                            let message =
                                names.message(d.exchange.as_str(), d.routing_key.as_str(), &d.properties, &d.data);
                            self.push_return(ch, r.reply_code, message);
                        }
                        self.push(Event::Confirm { ch, seq, ack });
                    }
                    Outcome::Failed(e) => self.failed(ch, e).await,
                    Outcome::TimedOut => self.abandon(ch.conn, "the confirm of basic.publish").await,
                }
            }
            BasicGet { ch, queue, no_ack } => {
                let q = names.wire(queue);
                let options = BasicGetOptions { no_ack: *no_ack };
                let ch = *ch;
                let ok = self.sync(ch, Method::BasicGet, |c| async move { c.basic_get(q.into(), options).await }).await;
                let reply = match ok {
                    None => return,
                    Some(None) => Reply::GetEmpty,
                    Some(Some(m)) => {
                        let d = &m.delivery;
                        Reply::GetOk {
                            delivery_tag: d.delivery_tag,
                            redelivered: d.redelivered,
                            queue: Name::default(),
                            message_count: m.message_count,
                            message: names.message(d.exchange.as_str(), d.routing_key.as_str(), &d.properties, &d.data),
                        }
                    }
                };
                self.push(Event::Reply { ch, reply });
            }
            BasicAck { ch, delivery_tag, multiple } => {
                let (tag, multiple) = (*delivery_tag, *multiple);
                let options = lapin::options::BasicAckOptions { multiple };
                if self.sync(*ch, Method::BasicAck, |c| async move { c.basic_ack(tag, options).await }).await.is_some()
                {
                    self.probe(*ch, Method::BasicAck).await;
                }
            }
            BasicNack { ch, delivery_tag, multiple, requeue } => {
                let tag = *delivery_tag;
                let options = BasicNackOptions { multiple: *multiple, requeue: *requeue };
                if self
                    .sync(*ch, Method::BasicNack, |c| async move { c.basic_nack(tag, options).await })
                    .await
                    .is_some()
                {
                    self.probe(*ch, Method::BasicNack).await;
                }
            }
            BasicReject { ch, delivery_tag, requeue } => {
                let tag = *delivery_tag;
                let options = BasicRejectOptions { requeue: *requeue };
                if self
                    .sync(*ch, Method::BasicReject, |c| async move { c.basic_reject(tag, options).await })
                    .await
                    .is_some()
                {
                    self.probe(*ch, Method::BasicReject).await;
                }
            }
            BasicRecover { ch, requeue } => {
                let options = BasicRecoverOptions { requeue: *requeue };
                self.reply(
                    *ch,
                    Method::BasicRecover,
                    Reply::RecoverOk,
                    |c| async move { c.basic_recover(options).await },
                )
                .await;
            }
            ConfirmSelect { ch } => {
                let ch = *ch;
                let ok = self
                    .sync(ch, Method::ConfirmSelect, |c| async move {
                        c.confirm_select(ConfirmSelectOptions::default()).await
                    })
                    .await;
                if ok.is_some() {
                    if let Some(chan) = self.chans.get_mut(&ch) {
                        chan.confirm_seq.get_or_insert(0);
                    }
                    self.push(Event::Reply { ch, reply: Reply::ConfirmSelectOk });
                }
            }
            TxSelect { ch } => {
                self.reply(*ch, Method::TxSelect, Reply::TxSelectOk, |c| async move { c.tx_select().await }).await;
            }
            TxCommit { ch } => {
                self.reply(*ch, Method::TxCommit, Reply::TxCommitOk, |c| async move { c.tx_commit().await }).await;
                // A transaction's returns are sent at commit. lapin buffers them, but it reads
                // frames in order: those buffered when commit-ok resolved came before it.
                let before = lock(&self.sink.events).len();
                self.collect_returns(*ch).await;
                let mut sink = lock(&self.sink.events);
                let ok = Event::Reply { ch: *ch, reply: Reply::TxCommitOk };
                if let Some(at) = sink[..before].iter().rposition(|e| *e == ok) {
                    let returns: Vec<Event> = sink.drain(before..).collect();
                    sink.splice(at..at, returns);
                }
            }
            TxRollback { ch } => {
                self.reply(*ch, Method::TxRollback, Reply::TxRollbackOk, |c| async move { c.tx_rollback().await })
                    .await;
            }
        }
    }
}

/// The event of a delivery to consumer `tag` on `ch`, with the trace's names.
fn delivered(names: &Names, ch: ChanRef, tag: &str, d: &lapin::message::Delivery) -> Event {
    Event::Deliver {
        ch,
        consumer_tag: Name::from(tag),
        delivery_tag: d.delivery_tag,
        redelivered: d.redelivered,
        queue: Name::default(),
        message: names.message(d.exchange.as_str(), d.routing_key.as_str(), &d.properties, &d.data),
    }
}

/// The deliveries waiting on a consumer's stream, in arrival order, without waiting for more
/// (lapin queues them there once the consumer is being cancelled).
fn queued(consumer: &mut lapin::Consumer) -> Vec<lapin::message::Delivery> {
    use futures_core::Stream;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    while let Poll::Ready(Some(Ok(d))) = Pin::new(&mut *consumer).poll_next(&mut cx) {
        out.push(d);
    }
    out
}
