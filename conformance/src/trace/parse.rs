//! Reading traces. Errors name the line (and the file, when the caller gives one) and say what is
//! wrong and what was expected.
//!
//! One file for one concern, the trace grammar: the header, command and event lines share the
//! tokenizer and the argument reader, and one error style.

use super::types::{Step, StepKind, Trace};
use amqp_model::event::Reply;
use amqp_model::types::MessageData;
use amqp_model::{
    ChanRef, Command, ConnId, Content, Event, ExchangeKind, IntType, Message, Method, MsgId, Name, Properties,
    ReplyCode, Table, Value,
};
use std::collections::BTreeSet;
use std::fmt;

/// A trace that does not parse: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The file, when known.
    pub file: Option<String>,
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}:{}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl std::error::Error for ParseError {}

type Result<T> = std::result::Result<T, String>;

/// A lexical token of a line.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// A bare word.
    Word(String),
    /// A quoted string (may be empty).
    Quoted(String),
    /// `key=value` (the value is raw text: a word, a quoted string or a `{...}` table).
    Pair(String, String),
    /// `->`.
    Arrow,
}

fn unquote(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String> {
    let mut s = String::new();
    loop {
        match chars.next() {
            None => return Err("unterminated quoted string".into()),
            Some('"') => return Ok(s),
            Some('\\') => match chars.next() {
                Some('n') => s.push('\n'),
                Some(c @ ('"' | '\\')) => s.push(c),
                other => return Err(format!("unknown escape `\\{}` in a quoted string", other.unwrap_or(' '))),
            },
            Some(c) => s.push(c),
        }
    }
}

fn tokens(line: &str) -> Result<Vec<Tok>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            out.push(Tok::Quoted(unquote(&mut chars)?));
            continue;
        }
        // A bare token, which may contain `{...}` with quotes inside.
        let mut raw = String::new();
        let mut depth = 0;
        while let Some(&c) = chars.peek() {
            if depth == 0 && c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                '"' => {
                    raw.push('"');
                    let inner = unquote(&mut chars)?;
                    raw.push_str(&inner.replace('\\', "\\\\").replace('"', "\\\""));
                    raw.push('"');
                    continue;
                }
                _ => {}
            }
            raw.push(c);
        }
        if depth != 0 {
            return Err(format!("unbalanced braces in `{raw}`"));
        }
        out.push(match raw.split_once('=') {
            _ if raw == "->" => Tok::Arrow,
            Some((k, v)) if !k.is_empty() && !k.contains('{') => Tok::Pair(k.to_string(), v.to_string()),
            _ => Tok::Word(raw),
        });
    }
    Ok(out)
}

/// Parse `{k=v,...}` (see [`value`] for how a value's kind is written).
fn table(raw: &str) -> Result<Table> {
    let inner = raw
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("expected a table like {{key=value,...}}, found `{raw}`"))?;
    let mut t = Table::new();
    for item in items(inner)? {
        let (k, v) = split_entry(item).ok_or_else(|| format!("table entry `{item}` is not key=value"))?;
        t.insert(scalar_text(k.trim())?.into(), value(v.trim())?);
    }
    Ok(t)
}

/// The comma-separated items of a table's or an array's inside, split outside quotes, tables
/// and arrays.
fn items(inner: &str) -> Result<Vec<&str>> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut escaped, mut from) = (0i32, false, false, 0);
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '{' | '[' if !quoted => depth += 1,
            '}' | ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(&inner[from..i]);
                from = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return Err(format!("unbalanced brackets in `{inner}`"));
        }
    }
    if depth != 0 || quoted {
        return Err(format!("unbalanced brackets or quotes in `{inner}`"));
    }
    if !inner[from..].trim().is_empty() || !out.is_empty() {
        out.push(&inner[from..]);
    }
    Ok(out)
}

/// One field value. Quoted text is a string (`"1"` and `"true"` are strings); `true`, `false`,
/// an integer (sent as a long, or a long-long when it needs 64 bits); a sized integer `u8:5`
/// (`i8` `u8` `i16` `u16` `i32` `u32` `i64`); `f32:1.5` and `f64:1.5`; a decimal `dec:3.14`;
/// a timestamp `ts:1700000000`; a byte array in hex `bytes:00ff`; `void`; an array `[v,...]`;
/// a nested table `{k=v,...}`; any other bare word is a string.
fn value(v: &str) -> Result<Value> {
    if v.starts_with('"') {
        return Ok(Value::Str(scalar_text(v)?.into()));
    }
    if v.starts_with('{') {
        return Ok(Value::Table(table(v)?));
    }
    if let Some(inner) = v.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(|| format!("an array must end with `]`: `{v}`"))?;
        return Ok(Value::Array(items(inner)?.into_iter().map(|i| value(i.trim())).collect::<Result<_>>()?));
    }
    match v {
        "true" | "false" => return Ok(Value::Bool(v == "true")),
        "void" => return Ok(Value::Void),
        _ => {}
    }
    if let Ok(i) = v.parse::<i64>() {
        return Ok(Value::Int(i));
    }
    let Some((kind, lit)) = v.split_once(':') else { return Ok(Value::Str(v.into())) };
    let bad = |what: &str| format!("`{v}`: `{lit}` is not {what}");
    if let Some(t) = IntType::named(kind) {
        let i: i64 = lit.parse().map_err(|_| bad("an integer"))?;
        if !t.holds(i) {
            return Err(format!("`{v}`: {i} does not fit in {kind}"));
        }
        return Ok(Value::Sized(t, i));
    }
    Ok(match kind {
        "f32" => Value::Float(lit.parse::<f32>().map_err(|_| bad("a number"))?.to_bits()),
        "f64" => Value::Double(lit.parse::<f64>().map_err(|_| bad("a number"))?.to_bits()),
        "ts" => Value::Timestamp(lit.parse().map_err(|_| bad("a timestamp (0 to 2^64-1)"))?),
        "dec" => {
            let (whole, frac) = lit.split_once('.').unwrap_or((lit, ""));
            let digits = format!("{whole}{frac}");
            let value = digits.parse::<u32>().ok().filter(|_| !whole.starts_with(['-', '+']));
            let scale = u8::try_from(frac.len()).ok();
            match (value, scale) {
                (Some(value), Some(scale)) => Value::Decimal { scale, value },
                _ => return Err(bad("a decimal of at most 32 bits, such as 3.14")),
            }
        }
        "bytes" => {
            let hex = |i: usize| u8::from_str_radix(lit.get(i..i + 2).unwrap_or("-"), 16);
            let bytes: std::result::Result<Vec<u8>, _> = (0..lit.len()).step_by(2).map(hex).collect();
            Value::Bytes(bytes.ok().filter(|_| lit.len() % 2 == 0).ok_or_else(|| bad("hexadecimal bytes"))?)
        }
        _ => Value::Str(v.into()),
    })
}

/// A table entry's key and value, split at the first `=` outside quotes (a quoted key may hold `=`).
fn split_entry(item: &str) -> Option<(&str, &str)> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in item.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '=' if !quoted => return Some((&item[..i], &item[i + 1..])),
            _ => {}
        }
    }
    None
}

fn scalar_text(s: &str) -> Result<String> {
    match s.strip_prefix('"') {
        Some(rest) => {
            let mut chars = rest.chars().peekable();
            let text = unquote(&mut chars)?;
            if chars.next().is_some() {
                return Err(format!("unexpected text after the quoted string in `{s}`"));
            }
            Ok(text)
        }
        None => Ok(s.to_string()),
    }
}

/// What follows the positional arguments of a line.
#[derive(Default)]
struct Rest {
    flags: BTreeSet<String>,
    pairs: Vec<(String, String)>,
    capture: Option<Name>,
}

impl Rest {
    fn has(&self, flag: &str) -> bool {
        self.flags.contains(flag)
    }
    fn table(&self, key: &str) -> Result<Table> {
        self.pairs.iter().find(|(k, _)| k == key).map_or(Ok(Table::new()), |(_, v)| table(v))
    }
    fn number(&self, key: &str) -> Result<Option<u32>> {
        match self.pairs.iter().find(|(k, _)| k == key) {
            Some((_, v)) => v.parse().map(Some).map_err(|_| format!("{key}= needs a number, found `{v}`")),
            None => Ok(None),
        }
    }
}

/// A line's tokens after its target and verb.
struct Args {
    toks: std::vec::IntoIter<Tok>,
    verb: String,
}

impl Args {
    fn name(&mut self, what: &str) -> Result<Name> {
        match self.toks.next() {
            Some(Tok::Word(w)) => Ok(w.into()),
            Some(Tok::Quoted(q)) => Ok(q.into()),
            Some(other) => Err(format!("{} needs {what} here, found {}", self.verb, show(&other))),
            None => Err(format!("{} needs {what}", self.verb)),
        }
    }
    fn number<T: std::str::FromStr>(&mut self, what: &str) -> Result<T> {
        let n = self.name(what)?;
        n.as_str().parse().map_err(|_| format!("{} needs {what} (a number), found `{n}`", self.verb))
    }
    /// Flags and `key=value` pairs, each from its allowed list, then an optional `-> $var`.
    fn rest(mut self, flags: &[&str], keys: &[&str], capture: bool) -> Result<Rest> {
        let mut rest = Rest::default();
        while let Some(t) = self.toks.next() {
            match t {
                Tok::Word(w) if flags.contains(&w.as_str()) => {
                    rest.flags.insert(w);
                }
                Tok::Pair(k, v) if keys.contains(&k.as_str()) => rest.pairs.push((k, v)),
                Tok::Arrow if capture => match self.toks.next() {
                    Some(Tok::Word(v)) if v.starts_with('$') && v.len() > 1 => rest.capture = Some(v.into()),
                    _ => return Err("`->` must be followed by a variable such as $q".into()),
                },
                other => {
                    let mut allowed: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
                    allowed.extend(keys.iter().map(|k| format!("{k}=")));
                    if capture {
                        allowed.push("-> $var".into());
                    }
                    let allowed = if allowed.is_empty() { "nothing more".into() } else { allowed.join(", ") };
                    return Err(format!("{} does not take {}; it takes: {allowed}", self.verb, show(&other)));
                }
            }
        }
        Ok(rest)
    }
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("`{w}`"),
        Tok::Quoted(q) => format!("\"{q}\""),
        Tok::Pair(k, v) => format!("`{k}={v}`"),
        Tok::Arrow => "`->`".into(),
    }
}

/// `c1` or `c1.2`.
enum Target {
    Conn(ConnId),
    Chan(ChanRef),
}

fn target(s: &str) -> Result<Target> {
    let bad = || format!("expected a connection like c1 or a channel like c1.1, found `{s}`");
    let rest = s.strip_prefix('c').filter(|r| r.chars().all(|c| c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
    match rest.split_once('.') {
        None => Ok(Target::Conn(ConnId(rest.parse().map_err(|_| bad())?))),
        Some((c, n)) => {
            let ch = ChanRef::new(c.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
            if ch.channel == 0 {
                return Err("channel 0 is the connection's own; use c1 for connection methods".into());
            }
            Ok(Target::Chan(ch))
        }
    }
}

fn word(t: Option<Tok>, what: &str) -> Result<String> {
    match t {
        Some(Tok::Word(w)) => Ok(w),
        Some(other) => Err(format!("expected {what}, found {}", show(&other))),
        None => Err(format!("expected {what}")),
    }
}

/// A message's exchange, routing key and body, then the line's `flags` and `keys` (which include
/// `persistent` and `headers`) and the message's other properties (`content-type="..."`,
/// `timestamp=N`, ...).
fn content(mut a: Args, flags: &[&str], keys: &[&str]) -> Result<(Name, Name, Content, Rest)> {
    let exchange = a.name("an exchange")?;
    let routing_key = a.name("a routing key")?;
    let body = a.name("a body")?;
    let keys: Vec<&str> = keys.iter().chain(&Properties::TEXT).chain(&["timestamp", "priority"]).copied().collect();
    let r = a.rest(flags, &keys, false)?;
    let mut properties = Properties::default();
    for (k, v) in &r.pairs {
        if Properties::TEXT.contains(&k.as_str()) {
            properties.set(k, Some(scalar_text(v)?.into()));
        } else if k == "timestamp" {
            let t = v.parse().map_err(|_| format!("timestamp= needs a number from 0 to 2^64-1, found `{v}`"))?;
            properties.timestamp = Some(t);
        }
    }
    let priority = match r.pairs.iter().find(|(k, _)| k == "priority") {
        Some((_, v)) => Some(v.parse().map_err(|_| format!("priority= needs a number from 0 to 255, found `{v}`"))?),
        None => None,
    };
    let content = Content { body, persistent: r.has("persistent"), headers: r.table("headers")?, priority, properties };
    Ok((exchange, routing_key, content, r))
}

/// Parse one command line: its command and capture.
fn command(toks: Vec<Tok>) -> Result<(Command, Option<Name>)> {
    let mut it = toks.into_iter();
    let first = word(it.next(), "a connection (c1), a channel (c1.1), `restart` or `pass`")?;
    if first == "restart" {
        Args { toks: it, verb: "restart".into() }.rest(&[], &[], false)?;
        return Ok((Command::Restart, None));
    }
    if first == "pass" {
        let ms = word(it.next(), "a number of milliseconds (`pass 300`)")?;
        let ms = ms.parse().map_err(|_| format!("pass needs a number of milliseconds, found `{ms}`"))?;
        Args { toks: it, verb: "pass".into() }.rest(&[], &[], false)?;
        return Ok((Command::Pass { ms }, None));
    }
    let target = target(&first)?;
    let verb = word(it.next(), "a method such as queue.declare")?;
    let mut a = Args { toks: it, verb: verb.clone() };
    use Command::*;
    let chan = |what: &str| match target {
        Target::Chan(ch) => Ok(ch),
        Target::Conn(c) => Err(format!("{what} is a channel method: write c{}.1 {what}", c.0)),
    };
    if let Target::Conn(conn) = target {
        let cmd = match verb.as_str() {
            "connection.open" => ConnectionOpen { conn },
            "connection.close" => ConnectionClose { conn },
            "drop" => ConnectionDrop { conn },
            other if Method::named(other).is_some() => return Err(chan(other).err().unwrap_or_default()),
            other => {
                return Err(format!("unknown connection method `{other}` (connection.open, connection.close, drop)"))
            }
        };
        a.rest(&[], &[], false)?;
        return Ok((cmd, None));
    }
    let ch = chan(&verb)?;
    let (cmd, capture) = match Method::named(&verb) {
        Some(Method::ChannelOpen) => (ChannelOpen { ch }, a.rest(&[], &[], false)?.capture),
        Some(Method::ChannelClose) => (ChannelClose { ch }, a.rest(&[], &[], false)?.capture),
        Some(Method::ExchangeDeclare) => {
            let exchange = a.name("an exchange name")?;
            let kind = ExchangeKind::parse(a.name("an exchange type")?.as_str());
            let r = a.rest(&["passive", "durable", "auto-delete", "internal"], &["args"], false)?;
            let cmd = ExchangeDeclare {
                ch,
                exchange,
                kind,
                passive: r.has("passive"),
                durable: r.has("durable"),
                auto_delete: r.has("auto-delete"),
                internal: r.has("internal"),
                arguments: r.table("args")?,
            };
            (cmd, None)
        }
        Some(Method::ExchangeDelete) => {
            let exchange = a.name("an exchange name")?;
            let r = a.rest(&["if-unused"], &[], false)?;
            (ExchangeDelete { ch, exchange, if_unused: r.has("if-unused") }, None)
        }
        Some(Method::ExchangeBind | Method::ExchangeUnbind) => {
            let destination = a.name("a destination exchange")?;
            let source = a.name("a source exchange")?;
            let routing_key = a.name("a routing key")?;
            let arguments = a.rest(&[], &["args"], false)?.table("args")?;
            let cmd = if verb == "exchange.bind" {
                ExchangeBind { ch, destination, source, routing_key, arguments }
            } else {
                ExchangeUnbind { ch, destination, source, routing_key, arguments }
            };
            (cmd, None)
        }
        Some(Method::QueueDeclare) => {
            let queue = a.name("a queue name (\"\" for a server-named queue)")?;
            let r = a.rest(&["passive", "durable", "exclusive", "auto-delete"], &["args"], true)?;
            let cmd = QueueDeclare {
                ch,
                queue,
                passive: r.has("passive"),
                durable: r.has("durable"),
                exclusive: r.has("exclusive"),
                auto_delete: r.has("auto-delete"),
                arguments: r.table("args")?,
            };
            (cmd, r.capture)
        }
        Some(Method::QueueBind | Method::QueueUnbind) => {
            let queue = a.name("a queue")?;
            let exchange = a.name("an exchange")?;
            let routing_key = a.name("a routing key")?;
            let arguments = a.rest(&[], &["args"], false)?.table("args")?;
            let cmd = if verb == "queue.bind" {
                QueueBind { ch, queue, exchange, routing_key, arguments }
            } else {
                QueueUnbind { ch, queue, exchange, routing_key, arguments }
            };
            (cmd, None)
        }
        Some(Method::QueuePurge) => {
            let queue = a.name("a queue")?;
            a.rest(&[], &[], false)?;
            (QueuePurge { ch, queue }, None)
        }
        Some(Method::QueueDelete) => {
            let queue = a.name("a queue")?;
            let r = a.rest(&["if-unused", "if-empty"], &[], false)?;
            (QueueDelete { ch, queue, if_unused: r.has("if-unused"), if_empty: r.has("if-empty") }, None)
        }
        Some(Method::BasicQos) => {
            let prefetch_count = a.number("a prefetch count")?;
            let r = a.rest(&["global"], &[], false)?;
            (BasicQos { ch, prefetch_count, global: r.has("global") }, None)
        }
        Some(Method::BasicConsume) => {
            let queue = a.name("a queue")?;
            let consumer_tag = a.name("a consumer tag (\"\" for a server-generated one)")?;
            let r = a.rest(&["no-ack", "exclusive"], &["args"], true)?;
            let cmd = BasicConsume {
                ch,
                queue,
                consumer_tag,
                no_ack: r.has("no-ack"),
                exclusive: r.has("exclusive"),
                arguments: r.table("args")?,
            };
            (cmd, r.capture)
        }
        Some(Method::BasicCancel) => {
            let consumer_tag = a.name("a consumer tag")?;
            a.rest(&[], &[], false)?;
            (BasicCancel { ch, consumer_tag }, None)
        }
        Some(Method::BasicPublish) => {
            let (exchange, routing_key, content, r) = content(a, &["mandatory", "persistent"], &["headers"])?;
            (BasicPublish { ch, exchange, routing_key, mandatory: r.has("mandatory"), content }, None)
        }
        Some(Method::BasicGet) => {
            let queue = a.name("a queue")?;
            // A capture binds the direct reply-to name of the message got (its `reply-to`).
            let r = a.rest(&["no-ack"], &[], true)?;
            (BasicGet { ch, queue, no_ack: r.has("no-ack") }, r.capture)
        }
        Some(Method::BasicAck) => {
            let delivery_tag = a.number("a delivery tag")?;
            let r = a.rest(&["multiple"], &[], false)?;
            (BasicAck { ch, delivery_tag, multiple: r.has("multiple") }, None)
        }
        Some(Method::BasicNack) => {
            let delivery_tag = a.number("a delivery tag")?;
            let r = a.rest(&["multiple", "requeue"], &[], false)?;
            (BasicNack { ch, delivery_tag, multiple: r.has("multiple"), requeue: r.has("requeue") }, None)
        }
        Some(Method::BasicReject) => {
            let delivery_tag = a.number("a delivery tag")?;
            let r = a.rest(&["requeue"], &[], false)?;
            (BasicReject { ch, delivery_tag, requeue: r.has("requeue") }, None)
        }
        Some(Method::BasicRecover) => {
            (BasicRecover { ch, requeue: a.rest(&["requeue"], &[], false)?.has("requeue") }, None)
        }
        Some(m @ (Method::ConfirmSelect | Method::TxSelect | Method::TxCommit | Method::TxRollback)) => {
            a.rest(&[], &[], false)?;
            let cmd = match m {
                Method::ConfirmSelect => ConfirmSelect { ch },
                Method::TxSelect => TxSelect { ch },
                Method::TxCommit => TxCommit { ch },
                _ => TxRollback { ch },
            };
            (cmd, None)
        }
        Some(Method::ConnectionOpen | Method::ConnectionClose) => {
            return Err(format!("{verb} is a connection method: write c{} {verb}", ch.conn.0))
        }
        None if verb == "drop" => return Err(format!("{verb} is a connection method: write c{} {verb}", ch.conn.0)),
        None => return Err(format!("unknown method `{verb}`")),
    };
    Ok((cmd, capture))
}

/// An observed message (identity 0: the wire does not carry it) and the rest of its line.
fn message(a: Args, flags: &[&str], keys: &[&str]) -> Result<(Message, Rest)> {
    let flags: Vec<&str> = ["persistent"].iter().chain(flags).copied().collect();
    let keys: Vec<&str> = ["headers"].iter().chain(keys).copied().collect();
    let (exchange, routing_key, content, r) = content(a, &flags, &keys)?;
    Ok((Message::new(MessageData { id: MsgId(0), exchange, routing_key, content }), r))
}

fn code(a: &mut Args) -> Result<ReplyCode> {
    let n: u16 = a.number("a reply code")?;
    ReplyCode::from_code(n).ok_or_else(|| format!("unknown reply code {n}"))
}

fn method_arg(a: &mut Args) -> Result<Method> {
    let m = a.name("the method that caused the close")?;
    Method::named(m.as_str()).ok_or_else(|| format!("unknown method `{m}`"))
}

/// Parse an observation (the text after `expect`). Message identities are 0 and queues of
/// deliveries empty: the wire does not carry them.
fn event(toks: Vec<Tok>) -> Result<Event> {
    let mut it = toks.into_iter();
    let target = target(&word(it.next(), "a connection (c1) or channel (c1.1)")?)?;
    let verb = word(it.next(), "what was observed, such as basic.deliver or closed")?;
    let mut a = Args { toks: it, verb: verb.clone() };
    let ch = match target {
        Target::Conn(conn) => {
            let e = match verb.as_str() {
                "connection.open-ok" => Event::ConnectionOpenOk { conn },
                "connection.close-ok" => Event::ConnectionCloseOk { conn },
                "closed" => {
                    let code = code(&mut a)?;
                    let method = match a.toks.as_slice().first() {
                        Some(_) => Some(method_arg(&mut a)?),
                        None => None,
                    };
                    Event::ConnectionClosed { conn, code, method }
                }
                other => return Err(format!("unknown connection event `{other}`")),
            };
            a.rest(&[], &[], false)?;
            return Ok(e);
        }
        Target::Chan(ch) => ch,
    };
    let reply = |reply: Reply| Event::Reply { ch, reply };
    let simple = match verb.as_str() {
        "channel.open-ok" => Some(Event::ChannelOpenOk { ch }),
        "channel.close-ok" => Some(Event::ChannelCloseOk { ch }),
        other => Reply::plain(other).map(reply),
    };
    if let Some(e) = simple {
        a.rest(&[], &[], false)?;
        return Ok(e);
    }
    let e = match verb.as_str() {
        "closed" => {
            let code = code(&mut a)?;
            let method = method_arg(&mut a)?;
            Event::ChannelClosed { ch, code, method }
        }
        "queue.declare-ok" => {
            let queue = a.name("the queue name")?;
            let message_count = a.number("the message count")?;
            let consumer_count = a.number("the consumer count")?;
            reply(Reply::QueueDeclareOk { queue, message_count, consumer_count })
        }
        "queue.purge-ok" => reply(Reply::QueuePurgeOk { message_count: a.number("the message count")? }),
        "queue.delete-ok" => reply(Reply::QueueDeleteOk { message_count: a.number("the message count")? }),
        "basic.consume-ok" => reply(Reply::ConsumeOk { consumer_tag: a.name("the consumer tag")? }),
        "basic.cancel-ok" => reply(Reply::CancelOk { consumer_tag: a.name("the consumer tag")? }),
        "basic.cancel" => Event::Cancel { ch, consumer_tag: a.name("the consumer tag")? },
        "basic.ack" | "basic.nack" => {
            Event::Confirm { ch, seq: a.number("the publish sequence number")?, ack: verb == "basic.ack" }
        }
        "basic.deliver" => {
            let consumer_tag = a.name("the consumer tag")?;
            let delivery_tag = a.number("the delivery tag")?;
            let (message, r) = message(a, &["redelivered"], &[])?;
            let redelivered = r.has("redelivered");
            return Ok(Event::Deliver { ch, consumer_tag, delivery_tag, redelivered, queue: Name::from(""), message });
        }
        "basic.get-ok" => {
            let delivery_tag = a.number("the delivery tag")?;
            let (message, r) = message(a, &["redelivered"], &["remaining"])?;
            let message_count = r.number("remaining")?.ok_or("basic.get-ok needs remaining=N")?;
            let redelivered = r.has("redelivered");
            return Ok(reply(Reply::GetOk {
                delivery_tag,
                redelivered,
                queue: Name::from(""),
                message_count,
                message,
            }));
        }
        "basic.return" => {
            let code = code(&mut a)?;
            let (message, _) = message(a, &[], &[])?;
            return Ok(Event::Return { ch, code, message });
        }
        other => return Err(format!("unknown channel event `{other}`")),
    };
    a.rest(&[], &[], false)?;
    Ok(e)
}

/// Parse an observation written as after `expect` (used for reports and tests).
pub fn parse_event(text: &str) -> std::result::Result<Event, ParseError> {
    tokens(text).and_then(event).map_err(|message| ParseError { file: None, line: 1, message })
}

/// Parse a trace; `file` names the source in errors.
pub fn parse(text: &str, file: &str) -> std::result::Result<Trace, ParseError> {
    let mut trace = Trace::default();
    let mut in_header = true;
    let mut bound: BTreeSet<Name> = BTreeSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| ParseError { file: Some(file.to_string()), line, message };
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if let Some((key, value)) =
            text.split_once(':').filter(|(k, _)| ["title", "cite", "profile", "recommends"].contains(k))
        {
            if !in_header {
                return Err(err(format!("`{key}:` belongs in the header, before the first step")));
            }
            let value = value.trim().to_string();
            match key {
                "title" if trace.title.is_some() => return Err(err("a second `title:`".into())),
                "recommends" if trace.recommends.is_some() => return Err(err("a second `recommends:`".into())),
                "recommends" if !trace.cites.contains(&value) => {
                    return Err(err(format!("`recommends: {value}` names a rule no `cite:` line above it names")))
                }
                "recommends" => trace.recommends = Some(value),
                "profile" if trace.profile.is_some() => return Err(err("a second `profile:`".into())),
                "title" => trace.title = Some(value),
                "cite" => trace.cites.push(value),
                _ => {
                    trace.profile =
                        Some(value.parse().map_err(|e: amqp_model::profile::UnknownProfile| err(e.to_string()))?)
                }
            }
            continue;
        }
        in_header = false;
        let (pipelined, text) = match text.strip_prefix("pipelined ") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, text),
        };
        if pipelined && !matches!(trace.steps.last(), Some(Step { kind: StepKind::Command { .. }, .. })) {
            return Err(err(
                "`pipelined` sends a command before the previous one's answer is read: it must follow a command \
                 directly (no `expect` or `wait` between them)"
                    .into(),
            ));
        }
        let kind = if text == "wait" {
            StepKind::Wait
        } else if let Some(rest) = text.strip_prefix("expect ") {
            if !trace.steps.iter().any(|s| matches!(s.kind, StepKind::Command { .. })) {
                return Err(err("`expect` needs a command before it".into()));
            }
            let mut one_of = Vec::new();
            for part in tokens(rest).map_err(err)?.split(|t| matches!(t, Tok::Word(w) if w == "|")) {
                if part.is_empty() {
                    return Err(err(
                        "an empty alternative: `expect EVENT | EVENT ...` needs an event each side of `|`".into(),
                    ));
                }
                one_of.push(event(part.to_vec()).map_err(err)?);
            }
            // The runner puts a variable's value in place of each word of the expectation that
            // names one; a variable no capture bound yet would stay as it is, never observed.
            let written = super::write::write_expected(&one_of);
            if let Some(v) = written.split(' ').find(|t| t.len() > 1 && t.starts_with('$') && !bound.contains(*t)) {
                return Err(err(format!("variable {v} is used before a capture (`-> {v}`) binds it")));
            }
            StepKind::Expect(one_of)
        } else {
            let (command, capture) = tokens(text).and_then(command).map_err(err)?;
            let unbound = std::cell::RefCell::new(None);
            command.map_names(|n| {
                if n.as_str().starts_with('$') && !bound.contains(n) {
                    unbound.borrow_mut().get_or_insert_with(|| n.clone());
                }
                n.clone()
            });
            if let Some(v) = unbound.into_inner() {
                return Err(err(format!("variable {v} is used before a capture (`-> {v}`) binds it")));
            }
            if let (true, Some(Step { kind: StepKind::Command { capture: Some(v), .. }, .. })) =
                (pipelined, trace.steps.last())
            {
                let mentions = std::cell::Cell::new(false);
                command.map_names(|n| {
                    mentions.set(mentions.get() || n == v);
                    n.clone()
                });
                if mentions.get() {
                    return Err(err(format!(
                        "a `pipelined` command goes out before the previous one's answer is read, so it cannot \
                         use {v}, which that answer binds"
                    )));
                }
            }
            if let Some(v) = &capture {
                bound.insert(v.clone());
            }
            StepKind::Command { command, capture }
        };
        if pipelined && !matches!(kind, StepKind::Command { .. }) {
            return Err(err("only a command can be `pipelined`".into()));
        }
        trace.steps.push(Step { line, kind, pipelined });
    }
    Ok(trace)
}
