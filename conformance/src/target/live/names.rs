//! The names of one run: a trace's queue and exchange names on the wire (under the run's prefix)
//! and back.

use amqp_model::types::MessageData;
use amqp_model::{Message, MsgId, Name, Table, Value};
use lapin::BasicProperties;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// The names of one run: wire name <-> trace name. A trace's names go on the wire under the run's
/// prefix, but for the reserved `amq.` ones and the names the server generated (a queue declared
/// with the empty name: RabbitMQ's are `amq.gen-...`, other brokers' need not be), which go as
/// they are.
#[derive(Clone, Debug)]
pub(super) struct Names {
    pub(super) prefix: String,
    generated: Arc<Mutex<BTreeSet<String>>>,
}

/// An exchange-to-exchange binding's routing key as sent. A binding to the default exchange
/// carries messages on to the queue its key names: the key is a queue name, and so is a
/// publish's key that it matches (noted in `keyed`, so that such publishes are prefixed too).
pub(super) fn exchange_binding_key(
    names: &Names,
    keyed: &mut BTreeSet<Name>,
    destination: &Name,
    source: &Name,
    routing_key: &Name,
) -> String {
    if destination.is_empty() {
        keyed.insert(routing_key.clone());
        binding_key(names, destination, routing_key)
    } else {
        binding_key(names, source, routing_key)
    }
}

/// A binding's routing key as sent: on the default exchange the keys are queue names, prefixed
/// as a publish to it prefixes its routing key.
pub(super) fn binding_key(names: &Names, exchange: &Name, routing_key: &Name) -> String {
    if exchange.is_empty() {
        names.wire(routing_key)
    } else {
        routing_key.to_string()
    }
}

/// A queue binding's routing key as sent: as [`binding_key`], and also prefixed where it is a
/// queue name the broker holds as a key (`keyed`), as a publish with that key is, so that an
/// explicit key names the binding `queue.bind "" X ""` made.
pub(super) fn queue_binding_key(names: &Names, keyed: &BTreeSet<Name>, exchange: &Name, routing_key: &Name) -> String {
    if keyed.contains(routing_key) {
        names.wire(routing_key)
    } else {
        binding_key(names, exchange, routing_key)
    }
}

impl Names {
    pub(super) fn new(prefix: String) -> Names {
        Names { prefix, generated: Arc::default() }
    }

    /// Note a name the server generated, to be sent as it is from now on.
    pub(super) fn generated(&self, wire: &str) {
        super::lock(&self.generated).insert(wire.to_string());
    }

    pub(super) fn wire(&self, name: &Name) -> String {
        if name.is_empty() || name.is_reserved() || super::lock(&self.generated).contains(name.as_str()) {
            name.as_str().to_string()
        } else {
            format!("{}{}", self.prefix, name.as_str())
        }
    }

    pub(super) fn trace(&self, wire: &str) -> Name {
        Name::from(wire.strip_prefix(self.prefix.as_str()).unwrap_or(wire))
    }

    /// Declare arguments as sent: those that name an exchange (`x-dead-letter-exchange`,
    /// `alternate-exchange`) prefixed as the exchange's name is, and a dead-letter routing key as
    /// a binding key to the dead-letter exchange is (a queue name, prefixed, when that is the
    /// default exchange).
    pub(super) fn arguments(&self, args: &Table) -> Table {
        let mut out = args.clone();
        for key in ["x-dead-letter-exchange", "alternate-exchange"] {
            if let Some(Value::Str(name)) = out.get_mut(key) {
                *name = Name::from(self.wire(name));
            }
        }
        let dlx = match args.get("x-dead-letter-exchange") {
            Some(Value::Str(x)) => Some(x.clone()),
            _ => None,
        };
        if let (Some(dlx), Some(Value::Str(key))) = (dlx, out.get_mut("x-dead-letter-routing-key")) {
            *key = Name::from(binding_key(self, &dlx, key));
        }
        out
    }

    /// Headers as the trace writes them: the names in what a dead-lettering added (`x-death`'s
    /// queue, exchange and routing keys, `x-first-death-queue` and `-exchange`) mapped back.
    fn headers(&self, headers: &mut Table) {
        let back = |v: &mut Value| {
            if let Value::Str(s) = v {
                *s = self.trace(s.as_str());
            }
        };
        if let Some(Value::Array(deaths)) = headers.get_mut("x-death") {
            for d in deaths {
                if let Value::Table(t) = d {
                    t.get_mut("queue").map(back);
                    t.get_mut("exchange").map(back);
                    if let Some(Value::Array(keys)) = t.get_mut("routing-keys") {
                        keys.iter_mut().for_each(back);
                    }
                }
            }
        }
        for key in ["x-first-death-queue", "x-first-death-exchange"] {
            headers.get_mut(key).map(back);
        }
    }

    /// A message as the trace writes it: names mapped back, the routing key too (a prefixed key
    /// is a queue name: the default exchange's, or a key bound as "the last queue's name"), and
    /// those in dead-lettering headers.
    pub(super) fn message(&self, exchange: &str, routing_key: &str, props: &BasicProperties, data: &[u8]) -> Message {
        let routing_key = self.trace(routing_key);
        let mut content = amqp_wire::model_content(props, data);
        if content.headers.contains_key("x-death") {
            self.headers(&mut content.headers);
        }
        Message::new(MessageData { id: MsgId(0), exchange: self.trace(exchange), routing_key, content })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_generated_names_go_on_the_wire_as_they_are() {
        let names = Names::new("amqpc-1-2-".into());
        assert_eq!(names.wire(&Name::from("q")), "amqpc-1-2-q");
        assert_eq!(names.wire(&Name::from("amq.gen-x")), "amq.gen-x");
        // dispatchd names a server-named queue with 32 random letters.
        let generated = "QzVbWkTfJmRgXyHcPnLdSaEuOiKwYtBq";
        assert_eq!(names.wire(&Name::from(generated)), format!("amqpc-1-2-{generated}"));
        names.clone().generated(generated);
        assert_eq!(names.wire(&Name::from(generated)), generated, "clones share what was generated");
        assert_eq!(names.trace(generated), Name::from(generated));
    }
}
