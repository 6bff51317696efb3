//! Why the broker closed a channel or a connection, worded as RabbitMQ 3.10.8 words it
//! (docs/rabbitmq-3.10.md Q58) and followed by the rule that says so, in brackets, as the rule
//! catalogue (spec/rules.toml) or the extensions catalogue (spec/extensions.toml) names it:
//! `PRECONDITION_FAILED - unknown delivery tag 7 (basic ack multiple exists)`.
//!
//! The model decides the close and its code; this module only says why, from the command, the
//! state after it (which still holds every exchange and queue a text names: a channel exception
//! deletes none of them) and what the command's channel knew before ([`Before`]). A close it
//! has no words for gets the method's name and the code's meaning.

use amqp_model::{Broker, Command, ExchangeKind, Name, ReplyCode, Table, Value};

/// RabbitMQ's page on publisher confirms, which says a channel is either transactional or in
/// confirm mode (no rule of the specification does: its confirm class is RabbitMQ's).
const CONFIRMS: &str = "https://www.rabbitmq.com/confirms.html";

/// What the command's channel knew before the command: the queue it declared last, which a
/// command naming the queue `""` means (gone from the state once the channel is closed).
#[derive(Clone, Debug, Default)]
pub struct Before {
    /// The channel's last declared queue.
    pub last_queue: Option<Name>,
    /// The connection's virtual host, which the texts name (`/` when empty).
    pub vhost: String,
}

impl Before {
    /// What `cmd`'s channel knows in `broker` (of virtual host `vhost`), taken before the
    /// command is applied.
    pub fn of(broker: &Broker, cmd: &Command, vhost: &str) -> Before {
        let last_queue = cmd.channel().and_then(|ch| broker.channel(ch)).and_then(|c| c.last_queue.clone());
        Before { last_queue, vhost: vhost.to_string() }
    }
}

/// A close's reason: RabbitMQ's words and the rule behind them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// The text after the code's name, as RabbitMQ 3.10.8 has it.
    pub text: String,
    /// The rule's id in the rule catalogue, an id of the extensions catalogue (`RabbitMQ ...`),
    /// or the RabbitMQ page that says so where neither has one.
    pub rule: Option<&'static str>,
}

impl Reason {
    fn new(text: impl Into<String>, rule: &'static str) -> Reason {
        Reason { text: text.into(), rule: Some(rule) }
    }

    /// The reply text's detail: the words, then the rule in brackets where the whole still fits
    /// a short string after the code's name (RabbitMQ's own words are never cut for it).
    pub fn detail(&self, code: u16) -> String {
        match self.rule {
            Some(rule) if crate::frames::code_name(code).len() + 3 + self.text.len() + rule.len() + 3 <= 255 => {
                format!("{} ({rule})", self.text)
            }
            _ => self.text.clone(),
        }
    }
}

fn quote(s: &str) -> String {
    format!("'{s}'")
}

fn quoted(name: &Name) -> String {
    quote(name.as_str())
}

fn no_exchange(v: &str, name: &Name, rule: &'static str) -> Reason {
    Reason::new(format!("no exchange {} in vhost '{v}'", quoted(name)), rule)
}

fn no_queue(v: &str, name: &Name, rule: &'static str) -> Reason {
    Reason::new(format!("no queue {} in vhost '{v}'", quoted(name)), rule)
}

fn locked(v: &str, name: &Name) -> Reason {
    Reason::new(
        format!(
            "cannot obtain exclusive access to locked queue {} in vhost '{v}'. It could be originally \
             declared on another connection or the exclusive property value does not match that of \
             the original declaration.",
            quoted(name)
        ),
        "queue declare exclusive exclusive",
    )
}

/// A value as RabbitMQ shows one in an inequivalent-argument text: `the value '5' of type
/// 'signedint'`.
fn shown(value: Option<&Value>) -> String {
    let (text, kind) = match value {
        None => return "none".into(),
        Some(Value::Bool(b)) => (b.to_string(), "bool"),
        Some(Value::Int(i)) if i32::try_from(*i).is_ok() => (i.to_string(), "signedint"),
        Some(Value::Int(i)) => (i.to_string(), "long"),
        Some(Value::Sized(_, i)) => (i.to_string(), "signedint"),
        Some(Value::Str(s)) => (s.as_str().to_string(), "longstr"),
        Some(other) => (format!("{other:?}"), "table"),
    };
    format!("the value '{text}' of type '{kind}'")
}

/// The first argument whose value differs between `received` and `current`, as RabbitMQ
/// reports it.
fn inequivalent_argument(received: &Table, current: &Table) -> Option<String> {
    let keys = received.keys().chain(current.keys());
    let key = keys.filter(|k| received.get(*k) != current.get(*k)).min()?;
    let (r, c) = (received.get(key), current.get(key));
    let values = match (r, c) {
        (Some(Value::Str(r)), Some(Value::Str(c))) => {
            format!("received '{}' but current is '{}'", r.as_str(), c.as_str())
        }
        _ => format!("received {} but current is {}", shown(r), shown(c)),
    };
    Some(format!("'{}' for {{}}: {values}", key.as_str()))
}

fn flag(received: bool, current: bool) -> String {
    format!("received '{received}' but current is '{current}'")
}

fn inequivalent(v: &str, what: &str, name: &Name, arg: &str, rule: &'static str) -> Reason {
    let arg = arg.replacen("{}", &format!("{what} {} in vhost '{v}'", quoted(name)), 1);
    Reason::new(format!("inequivalent arg {arg}"), rule)
}

/// Why `cmd` was answered with a close carrying `code`, given the state after it.
pub fn reason(broker: &Broker, before: &Before, cmd: &Command, code: ReplyCode) -> Reason {
    specific(broker, before, cmd, code).unwrap_or_else(|| {
        let method = cmd.method().map_or("the command", |m| m.name());
        Reason { text: format!("{method} refused ({})", code.code()), rule: None }
    })
}

fn specific(broker: &Broker, before: &Before, cmd: &Command, code: ReplyCode) -> Option<Reason> {
    use Command::*;
    use ReplyCode::*;
    let v = if before.vhost.is_empty() { "/" } else { before.vhost.as_str() };
    // A queue named "" is the channel's last declared queue (`queue bind queue queue-known`).
    let queue = |name: &Name, rule: &'static str| -> Result<Name, Reason> {
        match (name.is_empty(), &before.last_queue) {
            (false, _) => Ok(name.clone()),
            (true, Some(q)) => Ok(q.clone()),
            (true, None) => Err(Reason::new("no previously declared queue", rule)),
        }
    };
    let missing_queue = |name: &Name, rule: &'static str| match queue(name, rule) {
        Ok(q) => no_queue(v, &q, rule),
        Err(r) => r,
    };
    let default_exchange = || Reason::new("operation not permitted on the default exchange", "exchange default-access");
    let tag = |t: u64, rule| Reason::new(format!("unknown delivery tag {t}"), rule);
    Some(match (cmd, code) {
        (ChannelOpen { .. }, ChannelError) => Reason::new("second 'channel.open' seen", "channel open state"),
        (_, ChannelError) => {
            let n = cmd.channel().map_or(0, |c| c.channel);
            Reason::new(format!("expected 'channel.open' on channel {n}"), "channel open state")
        }
        (ExchangeDeclare { kind: ExchangeKind::Other(k), .. }, CommandInvalid) => {
            Reason::new(format!("unknown exchange type {}", quoted(k)), "exchange declare type support")
        }
        (ExchangeDeclare { exchange, .. }, NotFound) => no_exchange(v, exchange, "exchange declare passive not-found"),
        (ExchangeDeclare { exchange, .. }, AccessRefused) if exchange.is_empty() => default_exchange(),
        (ExchangeDeclare { exchange, .. }, AccessRefused) => Reason::new(
            format!("exchange name {} contains reserved prefix 'amq.*'", quoted(exchange)),
            "exchange declare exchange reserved",
        ),
        (ExchangeDeclare { exchange, kind, durable, auto_delete, internal, arguments, .. }, _) => {
            let x = broker.exchanges.get(exchange)?;
            let rule = "exchange declare passive equivalent";
            let arg = if x.kind != *kind {
                format!("'type' for {{}}: received {} but current is {}", quote(kind.as_str()), quote(x.kind.as_str()))
            } else if x.durable != *durable {
                format!("'durable' for {{}}: {}", flag(*durable, x.durable))
            } else if x.auto_delete != *auto_delete {
                format!("'auto_delete' for {{}}: {}", flag(*auto_delete, x.auto_delete))
            } else if x.internal != *internal {
                format!("'internal' for {{}}: {}", flag(*internal, x.internal))
            } else {
                inequivalent_argument(arguments, &x.arguments)?
            };
            inequivalent(v, "exchange", exchange, &arg, rule)
        }
        (ExchangeDelete { exchange, .. }, AccessRefused) if exchange.is_empty() => default_exchange(),
        (ExchangeDelete { exchange, .. }, AccessRefused) => Reason::new(
            format!("deletion of system exchange {} in vhost '{v}' not allowed", quoted(exchange)),
            "exchange required-instances",
        ),
        (ExchangeDelete { exchange, .. }, NotFound) => no_exchange(v, exchange, "exchange delete exchange exists"),
        (ExchangeDelete { exchange, .. }, PreconditionFailed) => Reason::new(
            format!("exchange {} in vhost '{v}' in use", quoted(exchange)),
            "exchange delete if-unused in-use",
        ),
        (ExchangeBind { destination, source, .. } | ExchangeUnbind { destination, source, .. }, _) => {
            let bind = matches!(cmd, ExchangeBind { .. });
            match code {
                AccessRefused => default_exchange(),
                NotFound if !broker.exchanges.contains_key(source) => no_exchange(
                    v,
                    source,
                    if bind { "exchange bind source exchange-existence" } else { "exchange unbind source must-exist" },
                ),
                NotFound if !broker.exchanges.contains_key(destination) => no_exchange(
                    v,
                    destination,
                    if bind {
                        "exchange bind destination exchange-existence"
                    } else {
                        "exchange unbind destination must-exist"
                    },
                ),
                _ => return None,
            }
        }
        (QueueDeclare { queue: q, .. }, AccessRefused) => Reason::new(
            format!("queue name {} contains reserved prefix 'amq.*'", quoted(q)),
            "queue declare queue reserved",
        ),
        (QueueDeclare { queue: q, .. }, NotFound) => no_queue(v, q, "queue declare passive passive"),
        (QueueDeclare { queue: q, .. }, ResourceLocked) => locked(v, q),
        (QueueDeclare { queue: q, durable, exclusive, auto_delete, arguments, .. }, PreconditionFailed) => {
            let rule = "queue declare passive equivalent";
            let Some(existing) = broker.queues.get(q) else {
                let refused = broker
                    .profile
                    .quorum_queues
                    .then(|| queue_type(v, q, *durable, *exclusive, *auto_delete, arguments));
                return Some(refused.flatten().unwrap_or_else(|| invalid_argument(v, q, arguments)));
            };
            let arg = if existing.durable != *durable {
                format!("'durable' for {{}}: {}", flag(*durable, existing.durable))
            } else if existing.auto_delete != *auto_delete {
                format!("'auto_delete' for {{}}: {}", flag(*auto_delete, existing.auto_delete))
            } else {
                inequivalent_argument(arguments, &existing.arguments)?
            };
            inequivalent(v, "queue", q, &arg, rule)
        }
        (QueueBind { queue: q, exchange, .. } | QueueUnbind { queue: q, exchange, .. }, _) => {
            let bind = matches!(cmd, QueueBind { .. });
            let queue_rule = if bind { "queue bind queue must-exist" } else { "queue unbind queue must-exist" };
            match code {
                AccessRefused => default_exchange(),
                NotFound if !broker.exchanges.contains_key(exchange) => no_exchange(
                    v,
                    exchange,
                    if bind { "queue bind exchange exchange-existence" } else { "queue unbind exchange must-exist" },
                ),
                NotFound | SyntaxError => missing_queue(q, queue_rule),
                ResourceLocked => locked(v, &queue(q, queue_rule).ok()?),
                _ => return None,
            }
        }
        (
            QueuePurge { queue: q, .. } | BasicGet { queue: q, .. } | BasicConsume { queue: q, .. },
            NotFound | SyntaxError,
        ) => {
            let rule = match cmd {
                QueuePurge { .. } => "queue purge queue must-exist",
                BasicGet { .. } => "basic 01",
                _ => "basic consume 01",
            };
            missing_queue(q, rule)
        }
        (QueueDelete { queue: q, .. }, NotFound | SyntaxError) => missing_queue(q, "queue delete queue must-exist"),
        (QueuePurge { queue: q, .. } | BasicGet { queue: q, .. } | QueueDelete { queue: q, .. }, ResourceLocked) => {
            locked(v, &queue(q, "queue declare exclusive exclusive").ok()?)
        }
        (BasicConsume { queue: q, .. }, ResourceLocked) => {
            locked(v, &queue(q, "queue declare exclusive exclusive").ok()?)
        }
        (QueueDelete { queue: q, if_unused, .. }, PreconditionFailed) => {
            let q = queue(q, "queue delete queue must-exist").ok()?;
            let in_use = *if_unused && broker.queues.get(&q).is_some_and(|x| !x.consumers.is_empty());
            match in_use {
                true => {
                    Reason::new(format!("queue {} in vhost '{v}' in use", quoted(&q)), "queue delete if-unused in-use")
                }
                false => Reason::new(
                    format!("queue {} in vhost '{v}' not empty", quoted(&q)),
                    "queue delete if-empty not-empty",
                ),
            }
        }
        (BasicConsume { queue: q, .. }, AccessRefused) => Reason::new(
            format!("queue {} in vhost '{v}' in exclusive use", quoted(&queue(q, "basic consume exclusive 01").ok()?)),
            "basic consume exclusive 01",
        ),
        (BasicConsume { queue: q, .. }, NotImplemented) => Reason::new(
            format!("queue {} in vhost '{v}' does not support global qos", quoted(&queue(q, QUORUM).ok()?)),
            QUORUM,
        ),
        (QueueDelete { queue: q, if_unused, .. }, NotImplemented) => Reason::new(
            format!(
                "cannot delete queue {} in vhost '{v}'. queue.delete operations with {} flag set are not supported by \
                 quorum queues",
                quoted(&queue(q, QUORUM).ok()?),
                if *if_unused { "if-unused" } else { "if-empty" }
            ),
            QUORUM,
        ),
        (BasicConsume { consumer_tag, .. }, NotAllowed) => Reason::new(
            format!("attempt to reuse consumer tag {}", quoted(consumer_tag)),
            "basic consume consumer-tag 01",
        ),
        (BasicPublish { exchange, .. }, NotFound) => no_exchange(v, exchange, "basic publish exchange must-exist"),
        (BasicPublish { exchange, .. }, AccessRefused) => Reason::new(
            format!("cannot publish to internal exchange {} in vhost '{v}'", quoted(exchange)),
            "basic publish exchange 02",
        ),
        (BasicAck { delivery_tag, .. }, PreconditionFailed) => tag(*delivery_tag, "basic ack multiple exists"),
        (BasicNack { delivery_tag, .. }, PreconditionFailed) => tag(*delivery_tag, "basic nack multiple exists"),
        (BasicReject { delivery_tag, .. }, PreconditionFailed) => tag(*delivery_tag, "delivery-tag channel-local"),
        (BasicRecover { requeue: false, .. }, NotImplemented) => Reason { text: "requeue=false".into(), rule: None },
        (TxSelect { .. }, PreconditionFailed) => Reason::new("cannot switch from confirm to tx mode", CONFIRMS),
        (ConfirmSelect { .. }, PreconditionFailed) => Reason::new("cannot switch from tx to confirm mode", CONFIRMS),
        (TxCommit { .. }, PreconditionFailed) => Reason::new("channel is not transactional", "tx commit transacted"),
        (TxRollback { .. }, PreconditionFailed) => {
            Reason::new("channel is not transactional", "tx rollback transacted")
        }
        _ => return None,
    })
}

/// The extensions catalogue's id for RabbitMQ's quorum queues.
const QUORUM: &str = "RabbitMQ quorum queues";

/// A new queue's declare refused by its type (`amqp_model::quorum`), in RabbitMQ 3.10.8's words
/// (docs/rabbitmq-3.10.md Q65, Q67), checked in its order: the type itself, a server-generated
/// name, the other type's arguments, then auto-delete, exclusive and non-durable.
fn queue_type(
    v: &str,
    q: &Name,
    durable: bool,
    exclusive: bool,
    auto_delete: bool,
    arguments: &Table,
) -> Option<Reason> {
    let in_vhost = format!("for queue {} in vhost '{v}'", quoted(q));
    let quorum = match arguments.get("x-queue-type") {
        None => false,
        Some(Value::Str(t)) if t.as_str() == "classic" => false,
        Some(Value::Str(t)) if t.as_str() == "quorum" => true,
        Some(Value::Str(t)) => {
            let text = format!("invalid arg 'x-queue-type' {in_vhost}: \"unsupported queue type {}\"", quoted(t));
            return Some(Reason::new(text, QUORUM));
        }
        Some(other) => {
            let kind = match other {
                Value::Sized(amqp_model::IntType::I64, _) => "long",
                Value::Int(_) | Value::Sized(amqp_model::IntType::I32, _) => "signedint",
                Value::Bool(_) => "bool",
                _ => return None,
            };
            return Some(Reason::new(
                format!("invalid arg 'x-queue-type' {in_vhost}: {{unacceptable_type,{kind}}}"),
                QUORUM,
            ));
        }
    };
    let (refused, type_name): (&[&str], _) = match quorum {
        true => (&amqp_model::quorum::CLASSIC_ONLY, "rabbit_quorum_queue"),
        false => (&amqp_model::quorum::QUORUM_ONLY, "rabbit_classic_queue"),
    };
    if quorum && q.is_empty() {
        return Some(Reason::new(format!("Cannot declare a server-named queue for type {type_name}"), QUORUM));
    }
    if let Some(arg) =
        refused.iter().chain(amqp_model::quorum::STREAM_ONLY.iter()).find(|k| arguments.contains_key(**k))
    {
        return Some(Reason::new(format!("invalid arg '{arg}' {in_vhost} of queue type {type_name}"), QUORUM));
    }
    let property = match () {
        _ if !quorum => return None,
        _ if auto_delete => "auto-delete",
        _ if exclusive => "exclusive-owner",
        _ if !durable => "non-durable",
        _ => return None,
    };
    Some(Reason::new(format!("invalid property '{property}' {in_vhost}"), QUORUM))
}

/// A declare refused for an argument RabbitMQ checks (`x-max-length` below 0, ...): RabbitMQ's
/// text names the argument and its value.
fn invalid_argument(v: &str, q: &Name, arguments: &Table) -> Reason {
    let bad = arguments.iter().find(|(k, v)| match v {
        Value::Int(i) | Value::Sized(_, i) => *i < 0 && k.as_str().starts_with("x-"),
        _ => false,
    });
    match bad {
        Some((k, Value::Int(i) | Value::Sized(_, i))) => Reason::new(
            format!("invalid arg {} for queue {} in vhost '{v}': {{value_negative,{i}}}", quoted(k), quoted(q)),
            "RabbitMQ maxlength",
        ),
        _ => Reason { text: format!("invalid arguments for queue {}", quoted(q)), rule: None },
    }
}
