//! Commands and events as text, in the trace syntax (`c1.1 basic.publish "" q m`): how the
//! model's vocabulary is written wherever a person reads it, in the runner's traces and
//! reports, the proxy's recordings and the Explorer (`amqp-model explore`). The conformance
//! crate's trace parser reads it back.

use crate::event::Reply;
use crate::{ChanRef, Command, ConnId, Content, Event, Message, Name, Table, Value};
use std::fmt::Write;

/// A name as a token: bare when it is a plain word, quoted otherwise (`""` for the empty name).
pub fn token(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.:#*/-$@".contains(c))
        && !s.starts_with("->");
    if plain {
        s.to_string()
    } else {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

fn table(t: &Table) -> String {
    let items: Vec<String> = t.iter().map(|(k, v)| format!("{}={}", token(k.as_str()), value(v))).collect();
    format!("{{{}}}", items.join(","))
}

/// A field value as the parser reads it back (strings always quoted).
fn value(v: &Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Sized(t, i) => format!("{}:{i}", t.name()),
        Value::Str(s) => {
            let t = token(s.as_str());
            if t.starts_with('"') {
                t
            } else {
                format!("\"{t}\"")
            }
        }
        Value::Float(bits) => format!("f32:{:?}", f32::from_bits(*bits)),
        Value::Double(bits) => format!("f64:{:?}", f64::from_bits(*bits)),
        Value::Decimal { scale, value } => {
            let digits = format!("{value:0>width$}", width = usize::from(*scale) + 1);
            let (whole, frac) = digits.split_at(digits.len() - usize::from(*scale));
            if frac.is_empty() {
                format!("dec:{whole}")
            } else {
                format!("dec:{whole}.{frac}")
            }
        }
        Value::Timestamp(t) => format!("ts:{t}"),
        Value::Bytes(b) => format!("bytes:{}", b.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        Value::Array(items) => format!("[{}]", items.iter().map(value).collect::<Vec<_>>().join(",")),
        Value::Table(t) => table(t),
        Value::Void => "void".into(),
    }
}

/// `c1` or `c1.2`.
pub fn conn(c: ConnId) -> String {
    format!("c{}", c.0)
}

/// Appends ` flag` for each set flag.
fn flags(out: &mut String, set: &[(bool, &str)]) {
    for (on, name) in set {
        if *on {
            out.push(' ');
            out.push_str(name);
        }
    }
}

fn names(out: &mut String, names: &[&Name]) {
    for n in names {
        out.push(' ');
        out.push_str(&token(n.as_str()));
    }
}

fn arguments(out: &mut String, key: &str, t: &Table) {
    if !t.is_empty() {
        let _ = write!(out, " {key}={}", table(t));
    }
}

fn content(out: &mut String, c: &Content) {
    out.push(' ');
    out.push_str(&token(c.body.as_str()));
    flags(out, &[(c.persistent, "persistent")]);
    arguments(out, "headers", &c.headers);
    if let Some(p) = c.priority {
        let _ = write!(out, " priority={p}");
    }
    for (name, value) in c.properties.texts() {
        if let Some(v) = value {
            let _ = write!(out, " {name}={}", token(v.as_str()));
        }
    }
    if let Some(t) = c.properties.timestamp {
        let _ = write!(out, " timestamp={t}");
    }
}

/// One command as a trace line (without the line's capture).
pub fn write_command(cmd: &Command) -> String {
    use Command::*;
    let target = match (cmd.channel(), cmd.connection()) {
        (Some(ch), _) => ch.to_string(),
        (None, Some(c)) => conn(c),
        (None, None) => String::new(),
    };
    let mut out = target;
    let verb = match cmd {
        Restart => return "restart".into(),
        Pass { ms } => return format!("pass {ms}"),
        ConnectionDrop { .. } => "drop",
        other => other.method().expect("a method").name(),
    };
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(verb);
    match cmd {
        ExchangeDeclare { exchange, kind, passive, durable, auto_delete, internal, arguments: a, .. } => {
            names(&mut out, &[exchange, &Name::from(kind.as_str())]);
            flags(
                &mut out,
                &[(*passive, "passive"), (*durable, "durable"), (*auto_delete, "auto-delete"), (*internal, "internal")],
            );
            arguments(&mut out, "args", a);
        }
        ExchangeDelete { exchange, if_unused, .. } => {
            names(&mut out, &[exchange]);
            flags(&mut out, &[(*if_unused, "if-unused")]);
        }
        ExchangeBind { destination, source, routing_key, arguments: a, .. }
        | ExchangeUnbind { destination, source, routing_key, arguments: a, .. } => {
            names(&mut out, &[destination, source, routing_key]);
            arguments(&mut out, "args", a);
        }
        QueueDeclare { queue, passive, durable, exclusive, auto_delete, arguments: a, .. } => {
            names(&mut out, &[queue]);
            flags(
                &mut out,
                &[
                    (*passive, "passive"),
                    (*durable, "durable"),
                    (*exclusive, "exclusive"),
                    (*auto_delete, "auto-delete"),
                ],
            );
            arguments(&mut out, "args", a);
        }
        QueueBind { queue, exchange, routing_key, arguments: a, .. }
        | QueueUnbind { queue, exchange, routing_key, arguments: a, .. } => {
            names(&mut out, &[queue, exchange, routing_key]);
            arguments(&mut out, "args", a);
        }
        QueuePurge { queue, .. } => names(&mut out, &[queue]),
        QueueDelete { queue, if_unused, if_empty, .. } => {
            names(&mut out, &[queue]);
            flags(&mut out, &[(*if_unused, "if-unused"), (*if_empty, "if-empty")]);
        }
        BasicQos { prefetch_count, global, .. } => {
            let _ = write!(out, " {prefetch_count}");
            flags(&mut out, &[(*global, "global")]);
        }
        BasicConsume { queue, consumer_tag, no_ack, exclusive, arguments: a, .. } => {
            names(&mut out, &[queue, consumer_tag]);
            flags(&mut out, &[(*no_ack, "no-ack"), (*exclusive, "exclusive")]);
            arguments(&mut out, "args", a);
        }
        BasicCancel { consumer_tag, .. } => names(&mut out, &[consumer_tag]),
        BasicPublish { exchange, routing_key, mandatory, content: c, .. } => {
            names(&mut out, &[exchange, routing_key]);
            content(&mut out, c);
            flags(&mut out, &[(*mandatory, "mandatory")]);
        }
        BasicGet { queue, no_ack, .. } => {
            names(&mut out, &[queue]);
            flags(&mut out, &[(*no_ack, "no-ack")]);
        }
        BasicAck { delivery_tag, multiple, .. } => {
            let _ = write!(out, " {delivery_tag}");
            flags(&mut out, &[(*multiple, "multiple")]);
        }
        BasicNack { delivery_tag, multiple, requeue, .. } => {
            let _ = write!(out, " {delivery_tag}");
            flags(&mut out, &[(*multiple, "multiple"), (*requeue, "requeue")]);
        }
        BasicReject { delivery_tag, requeue, .. } => {
            let _ = write!(out, " {delivery_tag}");
            flags(&mut out, &[(*requeue, "requeue")]);
        }
        BasicRecover { requeue, .. } => flags(&mut out, &[(*requeue, "requeue")]),
        _ => {}
    }
    out
}

fn message(out: &mut String, m: &Message) {
    names(out, &[&m.0.exchange, &m.0.routing_key]);
    content(out, &m.0.content);
}

/// What follows `expect`: one observation, or several allowed ones separated by ` | `.
pub fn write_expected(one_of: &[Event]) -> String {
    one_of.iter().map(write_event).collect::<Vec<_>>().join(" | ")
}

/// One observation in the trace syntax.
pub fn write_event(e: &Event) -> String {
    let ch_of = |ch: &ChanRef| ch.to_string();
    let mut out = match e {
        Event::ConnectionOpenOk { conn: c } => return format!("{} connection.open-ok", conn(*c)),
        Event::ConnectionCloseOk { conn: c } => return format!("{} connection.close-ok", conn(*c)),
        Event::ConnectionClosed { conn: c, code, method } => {
            let m = method.map(|m| format!(" {}", m.name())).unwrap_or_default();
            return format!("{} closed {}{m}", conn(*c), code.code());
        }
        Event::ChannelOpenOk { ch } => return format!("{} channel.open-ok", ch_of(ch)),
        Event::ChannelCloseOk { ch } => return format!("{} channel.close-ok", ch_of(ch)),
        Event::ChannelClosed { ch, code, method } => {
            return format!("{} closed {} {}", ch_of(ch), code.code(), method.name())
        }
        Event::Deliver { ch, .. }
        | Event::Return { ch, .. }
        | Event::Confirm { ch, .. }
        | Event::Cancel { ch, .. }
        | Event::Reply { ch, .. } => ch_of(ch),
    };
    match e {
        Event::Deliver { consumer_tag, delivery_tag, redelivered, message: m, .. } => {
            out.push_str(" basic.deliver");
            names(&mut out, &[consumer_tag]);
            let _ = write!(out, " {delivery_tag}");
            message(&mut out, m);
            flags(&mut out, &[(*redelivered, "redelivered")]);
        }
        Event::Return { code, message: m, .. } => {
            let _ = write!(out, " basic.return {}", code.code());
            message(&mut out, m);
        }
        Event::Confirm { seq, ack, .. } => {
            let _ = write!(out, " {} {seq}", if *ack { "basic.ack" } else { "basic.nack" });
        }
        Event::Cancel { consumer_tag, .. } => {
            out.push_str(" basic.cancel");
            names(&mut out, &[consumer_tag]);
        }
        Event::Reply { reply, .. } => reply_line(&mut out, reply),
        _ => unreachable!("returned above"),
    }
    out
}

fn reply_line(out: &mut String, reply: &Reply) {
    out.push(' ');
    out.push_str(reply.name());
    match reply {
        Reply::QueueDeclareOk { queue, message_count, consumer_count } => {
            names(out, &[queue]);
            let _ = write!(out, " {message_count} {consumer_count}");
        }
        Reply::QueuePurgeOk { message_count } | Reply::QueueDeleteOk { message_count } => {
            let _ = write!(out, " {message_count}");
        }
        Reply::ConsumeOk { consumer_tag } | Reply::CancelOk { consumer_tag } => names(out, &[consumer_tag]),
        Reply::GetOk { delivery_tag, redelivered, message_count, message: m, .. } => {
            let _ = write!(out, " {delivery_tag}");
            message(out, m);
            let _ = write!(out, " remaining={message_count}");
            flags(out, &[(*redelivered, "redelivered")]);
        }
        _ => {}
    }
}
