//! Who may use what: virtual hosts and RabbitMQ-style permissions.
//!
//! A user's permission in a virtual host is three regular expressions, as RabbitMQ's
//! `set_permissions` takes them: `configure` (declare and delete), `write` (publish to an
//! exchange, bind a queue or an exchange as destination) and `read` (get, consume and purge a
//! queue, an exchange as a binding's source). A name is allowed when the expression matches
//! somewhere in it (anchor with `^...$`). The checks, their order and their texts are RabbitMQ
//! 3.10.8's (docs/rabbitmq-3.10.md Q60): a refused method closes the channel with 403
//! ACCESS_REFUSED before the broker looks the entity up; a virtual host the user has no
//! permission in is refused at `connection.open` with 530 NOT_ALLOWED
//! (`connection open virtual-host security`).
//!
//! A user with no permission given at all may do everything in every virtual host (the guest
//! of a fresh RabbitMQ, in every virtual host), so that `--user` alone stays simple.

use amqp_model::{Broker, ChanRef, Command, Name, Table, Value};
use regex::Regex;
use std::str::FromStr;

/// A user's permission in a virtual host.
#[derive(Clone, Debug)]
pub struct Permission {
    /// The user.
    pub user: String,
    /// The virtual host.
    pub vhost: String,
    /// Names the user may declare and delete.
    pub configure: Regex,
    /// Names the user may publish to (exchanges) and bind (queues and destination exchanges).
    pub write: Regex,
    /// Names the user may get from, consume from and purge (queues) and bind from (exchanges).
    pub read: Regex,
}

impl PartialEq for Permission {
    fn eq(&self, other: &Self) -> bool {
        (&self.user, &self.vhost, self.configure.as_str(), self.write.as_str(), self.read.as_str())
            == (&other.user, &other.vhost, other.configure.as_str(), other.write.as_str(), other.read.as_str())
    }
}

impl FromStr for Permission {
    type Err = super::BadValue;
    /// `USER VHOST CONFIGURE WRITE READ`, separated by spaces (`app / ^app- ^app- ^app-`).
    fn from_str(s: &str) -> Result<Permission, super::BadValue> {
        let bad = |why: String| super::BadValue(format!("permission `{s}`: {why}"));
        let fields: Vec<&str> = s.split_whitespace().collect();
        let [user, vhost, configure, write, read] = fields[..] else {
            return Err(bad("expected USER VHOST CONFIGURE WRITE READ, separated by spaces".into()));
        };
        let regex = |which: &str, r: &str| Regex::new(r).map_err(|e| bad(format!("{which} `{r}`: {e}")));
        Ok(Permission {
            user: user.into(),
            vhost: vhost.into(),
            configure: regex("configure", configure)?,
            write: regex("write", write)?,
            read: regex("read", read)?,
        })
    }
}

/// What a user may do in the virtual host of a connection: everything, or as a permission says.
#[derive(Clone, Debug)]
pub(crate) enum Access {
    /// No permission was given for the user: everything.
    All,
    /// As this permission says.
    As(Permission),
}

/// A refusal: the kind of entity and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    kind: &'static str,
    name: String,
}

impl Refused {
    /// RabbitMQ's reply text, with the page that says so.
    pub(crate) fn text(&self, vhost: &str, user: &str) -> String {
        format!(
            "access to {} '{}' in vhost '{vhost}' refused for user '{user}' (https://www.rabbitmq.com/access-control.html)",
            self.kind, self.name
        )
    }
}

/// The access `user` has in `vhost` under `permissions`: `None` when the user has permissions
/// but none in this virtual host (refused at `connection.open`).
pub(crate) fn access(permissions: &[Permission], user: &str, vhost: &str) -> Option<Access> {
    let mut theirs = permissions.iter().filter(|p| p.user == user).peekable();
    if theirs.peek().is_none() {
        return Some(Access::All);
    }
    theirs.find(|p| p.vhost == vhost).map(|p| Access::As(p.clone()))
}

fn exchange_name(name: &Name) -> String {
    // The default exchange is checked as `amq.default` (Q60).
    if name.is_empty() {
        "amq.default".into()
    } else {
        name.as_str().to_string()
    }
}

fn string_argument(arguments: &Table, key: &str) -> Option<String> {
    match arguments.get(key) {
        Some(Value::Str(s)) => Some(exchange_name(s)),
        _ => None,
    }
}

impl Access {
    /// Whether `cmd` (on the connection whose model state is `broker`) is refused, and for which
    /// entity: the first check that fails in RabbitMQ's order.
    pub(crate) fn refuses(&self, broker: &Broker, cmd: &Command) -> Option<Refused> {
        let Access::As(p) = self else { return None };
        // A queue named "" is the channel's last declared queue; with none, the model answers.
        let queue = |ch: &ChanRef, name: &Name| -> Option<String> {
            if !name.is_empty() {
                return Some(name.as_str().to_string());
            }
            broker.channel(*ch)?.last_queue.as_ref().map(|q| q.as_str().to_string())
        };
        let check = |re: &Regex, kind: &'static str, name: Option<String>| -> Option<Refused> {
            let name = name?;
            (!re.is_match(&name)).then_some(Refused { kind, name })
        };
        use Command::*;
        match cmd {
            ExchangeDeclare { passive: true, .. } | QueueDeclare { passive: true, .. } => None,
            ExchangeDeclare { exchange, arguments, .. } => {
                let x = Some(exchange_name(exchange));
                check(&p.configure, "exchange", x.clone()).or_else(|| {
                    let ae = string_argument(arguments, "alternate-exchange")?;
                    check(&p.write, "exchange", Some(ae)).or_else(|| check(&p.read, "exchange", x))
                })
            }
            ExchangeDelete { exchange, .. } => check(&p.configure, "exchange", Some(exchange_name(exchange))),
            QueueDeclare { queue: name, arguments, .. } => {
                // A server-named queue is checked under the name it is about to get (Q60).
                let q = if name.is_empty() {
                    broker.peek_generated_name("amq.gen-").as_str().to_string()
                } else {
                    name.as_str().to_string()
                };
                check(&p.configure, "queue", Some(q.clone())).or_else(|| {
                    let dlx = string_argument(arguments, "x-dead-letter-exchange")?;
                    check(&p.write, "exchange", Some(dlx)).or_else(|| check(&p.read, "queue", Some(q)))
                })
            }
            QueueDelete { ch, queue: q, .. } => check(&p.configure, "queue", queue(ch, q)),
            QueueBind { ch, queue: q, exchange, .. } | QueueUnbind { ch, queue: q, exchange, .. } => {
                check(&p.write, "queue", queue(ch, q))
                    .or_else(|| check(&p.read, "exchange", Some(exchange_name(exchange))))
            }
            ExchangeBind { destination, source, .. } | ExchangeUnbind { destination, source, .. } => {
                check(&p.write, "exchange", Some(exchange_name(destination)))
                    .or_else(|| check(&p.read, "exchange", Some(exchange_name(source))))
            }
            BasicPublish { exchange, .. } => check(&p.write, "exchange", Some(exchange_name(exchange))),
            BasicGet { ch, queue: q, .. } | BasicConsume { ch, queue: q, .. } | QueuePurge { ch, queue: q } => {
                check(&p.read, "queue", queue(ch, q))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_parse_and_say_what_is_wrong() {
        let p: Permission = "app / ^app- ^(app-|amq\\.default)$ .*".parse().unwrap();
        assert_eq!((p.user.as_str(), p.vhost.as_str(), p.read.as_str()), ("app", "/", ".*"));
        let short = "app / .*".parse::<Permission>().unwrap_err().to_string();
        assert!(short.contains("expected USER VHOST CONFIGURE WRITE READ"), "{short}");
        let bad = "app / ( .* .*".parse::<Permission>().unwrap_err().to_string();
        assert!(bad.contains("configure `(`"), "{bad}");
    }

    #[test]
    fn a_user_without_permissions_may_do_everything_one_with_some_only_where_given() {
        let perms = vec!["app / ^a ^a ^a".parse::<Permission>().unwrap()];
        assert!(matches!(access(&perms, "guest", "other"), Some(Access::All)));
        assert!(matches!(access(&perms, "app", "/"), Some(Access::As(_))));
        assert!(access(&perms, "app", "other").is_none());
    }
}
