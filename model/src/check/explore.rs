//! The model as stateright's Explorer shows it (`amqp-model explore`), in AMQP's words: each
//! action in the trace syntax (`c1.1 basic.publish "" q m`, [`crate::text`]) or, for the
//! broker's own steps, a sentence; each state as compact text (what the step sent, then the
//! exchanges, bindings, queues and channels) and as a picture (exchanges, bindings, queues with
//! their messages, consumers with their unacknowledged deliveries).

use super::Action;
use crate::broker::{Internal, Removal};
use crate::state::{Broker, Dest, Mode};
use crate::text::{token, write_command, write_event};
use crate::types::{Message, Name};
use crate::Event;
use std::fmt::Write;

/// A `sometimes` property's name marked as out of the configuration's scope, as `amqp-model
/// check` marks it (made once per name: the Explorer asks for the properties at every poll).
pub fn out_of_scope(name: &'static str) -> &'static str {
    static MARKED: std::sync::Mutex<std::collections::BTreeMap<&'static str, &'static str>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    let mut marked = MARKED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    marked
        .entry(name)
        .or_insert_with(|| Box::leak(format!("{name} (out of scope for this configuration)").into_boxed_str()))
}

/// An action as a line: a client's command in the trace syntax, another answer the profile
/// allows to it, or one of the broker's own steps.
pub fn action_text(action: &Action) -> String {
    match action {
        Action::Client(cmd) => write_command(cmd),
        Action::Answer(cmd, script) => {
            let script: Vec<String> = script.iter().map(u8::to_string).collect();
            format!("{}  (the profile's other answer {})", write_command(cmd), script.join("."))
        }
        Action::Broker(step) => format!("broker: {}", internal_text(step)),
    }
}

/// One of the broker's own steps as a sentence.
pub fn internal_text(step: &Internal) -> String {
    match step {
        Internal::Deliver { queue, consumer, at, redelivered } => {
            let flag = if *redelivered { ", redelivered" } else { "" };
            let which = if *at == 0 { String::new() } else { format!(" (its message at {at})") };
            format!("deliver from {}{which} to {} {}{flag}", t(queue), consumer.ch, t(&consumer.tag))
        }
        Internal::Remove(Removal::Exchange(x)) => format!("delete exchange {}", t(x)),
        Internal::Remove(Removal::Queue(q)) => format!("delete queue {}", t(q)),
        Internal::Expire { queue, at } => format!("expire the message at {at} of {}", t(queue)),
        Internal::Return { queue } => format!("take back to {} what closed channels held", t(queue)),
        Internal::Arrive { queue, from } => {
            format!("land in {} the copy dead-lettered from {}", t(queue), t(from))
        }
    }
}

/// Words after a name: each with a space before it.
fn spaced(words: &[String]) -> String {
    words.iter().map(|w| format!(" {w}")).collect()
}

/// A name as the trace syntax writes it.
fn t(n: &Name) -> String {
    token(n.as_str())
}

/// A message as the state shows it: its body and identity (`m#1`).
fn msg(m: &Message) -> String {
    format!("{}#{}", token(m.0.content.body.as_str()), m.id().0)
}

/// Whether an exchange is worth showing: not a predeclared one nothing binds from.
fn shown_exchange(b: &Broker, name: &Name) -> bool {
    !(name.is_empty() || name.as_str().starts_with("amq.")) || b.bindings.iter().any(|x| x.source == *name)
}

/// The state as compact text: what the step sent (if given), then the broker.
pub fn state_text(b: &Broker, sent: Option<&[Event]>) -> String {
    let mut out = String::new();
    if let Some(events) = sent {
        if events.is_empty() {
            out.push_str("sent nothing\n");
        } else {
            out.push_str("sent\n");
            for e in events {
                let _ = writeln!(out, "  {}", write_event(e));
            }
        }
        out.push('\n');
    }
    out.push_str("exchanges\n");
    for (name, x) in b.exchanges.iter().filter(|(n, _)| shown_exchange(b, n)) {
        let mut flags = vec![x.kind.as_str().to_string()];
        flags.extend(
            [(x.durable, "durable"), (x.auto_delete, "auto-delete"), (x.internal, "internal")]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, f)| f.to_string()),
        );
        if x.unused {
            flags.push("(unused: due for deletion)".into());
        }
        let _ = writeln!(out, "  {}{}", t(name), spaced(&flags));
    }
    if !b.bindings.is_empty() {
        out.push_str("bindings\n");
        for x in b.bindings.iter() {
            let dest = match &x.dest {
                Dest::Queue(q) => format!("queue {}", t(q)),
                Dest::Exchange(e) => format!("exchange {}", t(e)),
            };
            let _ = writeln!(out, "  {} -> {dest} key {}", t(&x.source), t(&x.key));
        }
    }
    out.push_str("queues\n");
    for (name, q) in &b.queues {
        let mut flags: Vec<String> = Vec::new();
        flags.extend(
            [(q.durable, "durable"), (q.auto_delete, "auto-delete")]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, f)| f.to_string()),
        );
        if let Some(owner) = q.owner {
            flags.push(format!("exclusive to c{}", owner.0));
        }
        if q.orphaned || q.unused {
            flags.push("(due for deletion)".into());
        }
        let _ = writeln!(out, "  {}{}", t(name), spaced(&flags));
        let ready: Vec<String> = q
            .ready
            .iter()
            .map(|r| format!("{}{}", msg(&r.msg), if r.redelivered { " (redelivered)" } else { "" }))
            .collect();
        let _ = writeln!(out, "    ready: {}", if ready.is_empty() { "-".to_string() } else { ready.join(", ") });
        let consumers: Vec<String> = q.consumers.iter().map(|c| format!("{} {}", c.ch, t(&c.tag))).collect();
        let blocked: Vec<String> = q.blocked.iter().map(|c| format!("{} {} (full)", c.ch, t(&c.tag))).collect();
        if !consumers.is_empty() || !blocked.is_empty() {
            let _ = writeln!(out, "    consumers: {}", [consumers, blocked].concat().join(", "));
        }
        if !q.returning.is_empty() {
            let back: Vec<String> = q.returning.iter().map(|u| msg(&u.msg)).collect();
            let _ = writeln!(out, "    coming back from closed channels: {}", back.join(", "));
        }
        if !q.arriving.is_empty() {
            let dl: Vec<String> = q.arriving.iter().map(|a| format!("{} from {}", msg(&a.msg), t(&a.from))).collect();
            let _ = writeln!(out, "    dead-lettered, on their way: {}", dl.join(", "));
        }
    }
    if !b.connections.is_empty() {
        out.push_str("channels\n");
    }
    for (conn, c) in &b.connections {
        if c.channels.is_empty() {
            let _ = writeln!(out, "  c{} (no channel)", conn.0);
        }
        for (n, ch) in &c.channels {
            let mut flags: Vec<String> = Vec::new();
            match &ch.mode {
                Mode::Plain => {}
                Mode::Confirm { .. } => flags.push("confirm".into()),
                Mode::Tx { publishes, .. } => flags.push(format!("tx ({} publishes held)", publishes.len())),
            }
            if ch.prefetch > 0 {
                flags.push(format!("prefetch {}", ch.prefetch));
            }
            if ch.consumer_prefetch > 0 {
                flags.push(format!("consumer prefetch {}", ch.consumer_prefetch));
            }
            let _ = writeln!(out, "  c{}.{n}{}", conn.0, spaced(&flags));
            for (tag, k) in &ch.consumers {
                let _ = writeln!(
                    out,
                    "    consumer {} on {}{}",
                    t(tag),
                    t(&k.queue),
                    if k.no_ack { " no-ack" } else { "" }
                );
            }
            for (tag, u) in &ch.unacked {
                let by = u.consumer.as_ref().map_or("get".to_string(), t);
                let _ = writeln!(out, "    unacked {tag}: {} from {} ({by})", msg(&u.msg), t(&u.queue));
            }
        }
    }
    if b.clock.now > 0 || b.clock.horizon > 0 {
        let _ = writeln!(out, "clock {}..{} ms", b.clock.now, b.clock.horizon);
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A box of the picture: its key (for the lines), its title and its lines.
type Item = (String, String, Vec<String>);

/// The state as a picture: exchanges on the left, queues (with their messages) in the middle,
/// channels (with their unacknowledged deliveries) on the right; a line for each binding
/// (labelled with its key, by the queue) and a dashed one for each consumer (labelled with its
/// tag, by the channel). Boxes are as wide as their longest line.
pub fn state_svg(b: &Broker) -> String {
    const LINE: i64 = 16;
    const CHAR: i64 = 8;
    const GAP: i64 = 120;
    let exchanges: Vec<Item> = b
        .exchanges
        .iter()
        .filter(|(n, _)| shown_exchange(b, n))
        .map(|(n, x)| (format!("x:{n}"), format!("exchange {}", t(n)), vec![x.kind.as_str().to_string()]))
        .collect();
    let queues: Vec<Item> = b
        .queues
        .iter()
        .map(|(n, q)| {
            let ready =
                q.ready.iter().map(|r| format!("{}{}", msg(&r.msg), if r.redelivered { " redelivered" } else { "" }));
            let mut lines: Vec<String> = ready.collect();
            lines.extend(q.arriving.iter().map(|a| format!("{} dead-lettered, on its way", msg(&a.msg))));
            lines.extend(q.returning.iter().map(|u| format!("{} coming back", msg(&u.msg))));
            (format!("q:{n}"), format!("queue {}", t(n)), lines)
        })
        .collect();
    let channels: Vec<Item> = b
        .connections
        .iter()
        .flat_map(|(conn, c)| c.channels.iter().map(move |(n, ch)| (conn, n, ch)))
        .map(|(conn, n, ch)| {
            let lines = ch.unacked.iter().map(|(tag, u)| format!("unacked {tag}: {}", msg(&u.msg))).collect();
            (format!("c:{}.{n}", conn.0), format!("channel c{}.{n}", conn.0), lines)
        })
        .collect();
    let width = |items: &[Item]| {
        let longest = items
            .iter()
            .flat_map(|(_, title, lines)| std::iter::once(title.len() + 1).chain(lines.iter().map(|l| l.len() + 2)));
        (longest.max().unwrap_or(0) as i64 * CHAR + 16).max(140)
    };
    let mut body = String::new();
    // Where each box is: its left edge, right edge and middle height.
    let mut at: std::collections::BTreeMap<String, (i64, i64, i64)> = Default::default();
    let mut x = 10;
    let mut height = 60;
    for (heading, items) in [("exchanges", exchanges), ("queues", queues), ("channels", channels)] {
        let w = width(&items);
        let _ = write!(body, "<text x='{x}' y='18' class='title'>{heading}</text>");
        let mut y = 30;
        for (key, title, lines) in items {
            let h = LINE * (1 + lines.len() as i64) + 8;
            let _ = write!(
                body,
                "<rect x='{x}' y='{y}' width='{w}' height='{h}' rx='4' class='box'/><text x='{}' y='{}' class='title'>{}</text>",
                x + 6,
                y + LINE,
                escape(&title)
            );
            for (i, l) in lines.iter().enumerate() {
                let _ = write!(body, "<text x='{}' y='{}'>{}</text>", x + 14, y + LINE * (2 + i as i64), escape(l));
            }
            at.insert(key, (x, x + w, y + h / 2));
            y += h + 12;
        }
        height = height.max(y);
        x += w + GAP;
    }
    let mut links = String::new();
    let mut link = |from: &str, to: &str, label: &str, class: &str| {
        if let (Some((_, x1, y1)), Some((x2, _, y2))) = (at.get(from), at.get(to)) {
            let _ = write!(
                links,
                "<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' class='{class}'/><text x='{}' y='{}' class='label' text-anchor='end'>{}</text>",
                x2 - 6,
                y2 - 5,
                escape(label)
            );
        }
    };
    for x in b.bindings.iter() {
        let to = match &x.dest {
            Dest::Queue(q) => format!("q:{q}"),
            Dest::Exchange(e) => format!("x:{e}"),
        };
        link(&format!("x:{}", x.source), &to, &t(&x.key), "link");
    }
    for (name, q) in &b.queues {
        for c in q.all_consumers() {
            link(&format!("q:{name}"), &format!("c:{}.{}", c.ch.conn.0, c.ch.channel), &t(&c.tag), "link consumer");
        }
    }
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{x}' height='{height}' viewBox='0 0 {x} {height}' font-family='monospace' font-size='13'>\
         <style>.bg{{fill:#fff}} .box{{fill:#eef2f8;stroke:#5a6a85}} .title{{font-weight:bold}} .link{{stroke:#5a6a85}} .consumer{{stroke-dasharray:5 3}} .label{{fill:#8a4500}} text{{fill:#111}}</style>\
         <rect width='100%' height='100%' class='bg'/>{links}{body}</svg>",
        x = x - GAP + 10
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::config::cmd::connect;
    use crate::check::config::{ch, cmd};
    use crate::{Command, Content, Profile};

    #[test]
    fn actions_read_as_trace_lines_and_broker_steps_as_sentences() {
        let publish = cmd::publish(ch(1), "", "q", false, Content::text("m"));
        assert_eq!(action_text(&Action::Client(publish)), "c1.1 basic.publish \"\" q m");
        let step = Internal::Arrive { queue: "dead".into(), from: "src".into() };
        assert_eq!(action_text(&Action::Broker(step)), "broker: land in dead the copy dead-lettered from src");
    }

    #[test]
    fn the_state_shows_queues_with_their_messages_and_channels_with_their_deliveries() {
        let mut b = Broker::new(Profile::rabbitmq());
        for c in connect(1) {
            b.apply(&c).unwrap();
        }
        b.apply(&cmd::queue(ch(1), "q", false, false, false)).unwrap();
        b.apply(&cmd::publish(ch(1), "", "q", false, Content::text("m"))).unwrap();
        b.apply(&cmd::publish(ch(1), "", "q", false, Content::text("n"))).unwrap();
        let sent = b.apply(&Command::BasicGet { ch: ch(1), queue: "q".into(), no_ack: false }).unwrap();
        let text = state_text(&b, Some(&sent));
        assert!(text.starts_with("sent\n  c1.1 basic.get-ok 1 \"\" q m remaining=1\n"), "{text}");
        assert!(text.contains("\n  q\n    ready: n#1\n"), "{text}");
        assert!(text.contains("\n  c1.1\n    unacked 1: m#0 from q (get)\n"), "{text}");
        assert!(!text.contains("amq."), "unbound predeclared exchanges are left out: {text}");
        let svg = state_svg(&b);
        assert!(svg.starts_with("<svg") && svg.contains(">queue q</text>") && svg.contains(">n#1</text>"), "{svg}");
        assert!(svg.contains(">unacked 1: m#0</text>"), "{svg}");
    }
}
