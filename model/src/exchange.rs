//! The `exchange` class: declare, delete, and RabbitMQ's exchange-to-exchange bind and unbind.

use crate::broker::{Exception, Outcome};
use crate::event::{Event, Reply};
use crate::profile::RABBITMQ_EXCHANGE_ARGUMENTS;
use crate::state::{Binding, Broker, Dest, Exchange};
use crate::types::{ChanRef, ExchangeKind, Name, ReplyCode, Table};

use Exception::{Channel, Connection};
use ReplyCode::{AccessRefused, CommandInvalid, NotFound, PreconditionFailed};

impl Broker {
    /// `exchange.declare`.
    ///
    /// - an unknown type is refused first (`exchange declare type support`): 503 connection error;
    ///   so is a recommended type the profile leaves out (`exchange recommended-types`);
    /// - the default exchange cannot be declared (`exchange default-access`, errata 14): 403, or
    ///   under `any_fitting_code` (the spec profile, which names no code) 530 on the connection
    ///   or the syntax rule's 406;
    /// - `passive` asserts existence (`exchange declare passive not-found`): 404 if missing;
    /// - names beginning `amq.` are reserved (`exchange declare exchange reserved`): 403;
    /// - redeclaring must be equivalent (`exchange declare passive equivalent`, errata 6):
    ///   a channel exception, 406 (or 405 under the spec profile's `equivalence_code`),
    ///   comparing type, durable and arguments (as `argument_equivalence` says: under the spec
    ///   profile a difference in arguments alone is either; RabbitMQ compares only those it
    ///   implements), and under `exchange_equivalence_strict` also auto-delete
    ///   and internal. Another type is this same 406 on the channel: errata 6 folds
    ///   `exchange declare type typed` (a 530 in the XML) into the equivalence check;
    /// - without `exchange_equivalence_strict` (the spec profile) the auto-delete flag of an
    ///   existing exchange is ignored and left as it was
    ///   (`exchange declare auto-delete amq_exchange_25`); RabbitMQ compares it.
    /// - under `name_syntax_checked` (the spec profile) a name outside the syntax is refused,
    ///   406 (`exchange declare exchange syntax`), or for a name over 127 characters 406 or
    ///   502 (`any_fitting_code`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn exchange_declare(
        &mut self,
        ch: ChanRef,
        name: &Name,
        kind: &ExchangeKind,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: &Table,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if !passive && !self.profile.recommended_types.implements(kind) {
            return Err(Connection(CommandInvalid));
        }
        if let Some(refused) = self.bad_name(name, "exchange declare exchange syntax") {
            return Err(refused);
        }
        if name.is_empty() {
            return Err(self.default_exchange_refused(true));
        }
        // RabbitMQ checks the alternate exchange's name is a string (Q44: an integer is 406).
        let bad_alternate =
            arguments.get("alternate-exchange").is_some_and(|v| !matches!(v, crate::types::Value::Str(_)));
        if !passive && self.profile.lifetime && bad_alternate {
            return Err(Channel(PreconditionFailed));
        }
        match self.exchanges.get(name) {
            Some(_) if passive => {}
            Some(_) => {
                if Broker::is_predeclared(name) {
                    self.settle_predeclared_durability();
                }
                let x = &self.exchanges[name];
                let strict = self.profile.exchange_equivalence_strict;
                let equal = x.arguments == *arguments;
                let known_equal = RABBITMQ_EXCHANGE_ARGUMENTS.iter().all(|k| x.arguments.get(*k) == arguments.get(*k));
                let flags_equivalent = x.kind == *kind
                    && x.durable == durable
                    && (!strict || (x.auto_delete == auto_delete && x.internal == internal));
                let equivalent = flags_equivalent
                    && self.arguments_equivalent(equal, known_equal, "exchange declare passive equivalent");
                if !equivalent {
                    return Err(self.not_equivalent("exchange declare passive equivalent"));
                }
            }
            None if passive => return Err(Channel(NotFound)),
            None if name.is_reserved() => return Err(Channel(AccessRefused)),
            None => {
                let declared =
                    |b: &Broker| b.exchanges.keys().filter(|n| !n.is_empty() && !Broker::is_predeclared(n)).count();
                self.out_of_room(declared, 16, "exchange declare minimum")?;
                let x = Exchange {
                    kind: kind.clone(),
                    durable,
                    auto_delete,
                    internal,
                    arguments: arguments.clone(),
                    unused: false,
                };
                self.exchanges.insert(name.clone(), x);
            }
        }
        out.push(Event::Reply { ch, reply: Reply::ExchangeDeclareOk });
        Ok(())
    }

    /// Make the durability of the predeclared `amq.` exchanges definite (errata 20: the spec does
    /// not say it): durable, or as `predeclared_durable` permits, transient; kept from then on.
    pub(crate) fn settle_predeclared_durability(&mut self) {
        if self.predeclared_durable.is_some() {
            return;
        }
        let durable = self.permits(self.profile.predeclared_durable, "errata 20");
        self.predeclared_durable = Some(durable);
        for (name, x) in self.exchanges.iter_mut() {
            if Broker::is_predeclared_amq(name) {
                x.durable = durable;
            }
        }
    }

    /// Whether `if-unused` keeps exchange `name` (`exchange delete if-unused in-use`: "bindings on
    /// it"). A binding from it to a queue always counts. Exchange-to-exchange bindings: the rule
    /// says bindings, the if-unused field doc queue bindings, so under `e2e_in_use_open` an
    /// exchange with only such bindings (as source or destination) is in use or not, a choice
    /// (the first answer as RabbitMQ: in use when it is their source); RabbitMQ counts every
    /// binding of which it is the source and none of which it is the destination.
    fn in_use(&mut self, name: &Name) -> bool {
        let from_queue = self.bindings_from(name).any(|b| matches!(b.dest, Dest::Queue(_)));
        let from_exchange = self.bindings_from(name).any(|b| matches!(b.dest, Dest::Exchange(_)));
        if from_queue || !self.profile.e2e_in_use_open {
            return from_queue || from_exchange;
        }
        let to = self.bindings.iter().any(|b| matches!(&b.dest, Dest::Exchange(x) if x == name));
        if !from_exchange && !to {
            return false;
        }
        let first = self.either("exchange delete if-unused in-use", 2) == 0;
        first == from_exchange
    }

    /// `exchange.delete`: the default exchange and `amq.` names cannot be deleted (403; for `""`
    /// also 530 on the connection under `any_fitting_code`); a
    /// missing exchange is 404 (`exchange delete exchange exists`) unless the profile answers
    /// delete-ok; `if-unused` refuses an exchange that is the source of bindings
    /// (`exchange delete if-unused in-use`): 406.
    pub(crate) fn exchange_delete(
        &mut self,
        ch: ChanRef,
        name: &Name,
        if_unused: bool,
        out: &mut Vec<Event>,
    ) -> Outcome {
        // The default exchange cannot be deleted (403); nor can the predeclared amq.* exchanges,
        // except that under `predeclared_delete_open` (no rule forbids it) a delete may also
        // succeed (`exchange required-instances`). A missing exchange is not found (`exchange
        // delete exchange exists`), whatever its name; RabbitMQ refuses every amq.* name before it
        // looks the name up (`reserved_prefix_always_refused`).
        let refused = name.is_reserved()
            && (self.profile.reserved_prefix_always_refused
                || self.exchanges.contains_key(name)
                    && !(self.profile.predeclared_delete_open && self.either("exchange required-instances", 2) == 1));
        if name.is_empty() {
            return Err(self.default_exchange_refused(false));
        }
        if refused {
            // No rule names the refusal's code: under `any_fitting_code` access-refused on the
            // channel or not-allowed on the connection, as for the default exchange.
            if self.profile.predeclared_delete_open && self.profile.any_fitting_code {
                return Err(match self.either("exchange required-instances", 2) {
                    0 => Channel(AccessRefused),
                    _ => crate::broker::Exception::Connection(crate::types::ReplyCode::NotAllowed),
                });
            }
            return Err(Channel(AccessRefused));
        }
        if !self.exchanges.contains_key(name) {
            if !self.profile.delete_missing_ok {
                return Err(Channel(NotFound));
            }
        } else {
            if if_unused && self.in_use(name) {
                return Err(Channel(PreconditionFailed));
            }
            self.delete_exchange(name, out);
        }
        out.push(Event::Reply { ch, reply: Reply::ExchangeDeleteOk });
        Ok(())
    }

    /// Remove an exchange and every binding from or to it; sources left without bindings are
    /// auto-deleted in turn.
    pub(crate) fn delete_exchange(&mut self, name: &Name, out: &mut Vec<Event>) {
        self.exchanges.remove(name);
        let dest = Dest::Exchange(name.clone());
        let mut sources = Vec::new();
        self.bindings.retain(|b| {
            let gone = b.source == *name || b.dest == dest;
            if gone && b.dest == dest {
                sources.push(b.source.clone());
            }
            !gone
        });
        for s in sources {
            self.auto_delete_exchange(&s, out);
        }
    }

    /// An auto-delete exchange goes away when its last binding as a source is removed
    /// (`exchange declare auto-delete`, errata 25). Only the removal of a binding leads here, so
    /// a new auto-delete exchange stays until it has had a binding and lost it: a client may
    /// declare one and bind to it afterwards (`exchange declare auto-delete amq_exchange_02`).
    /// Under `Profile::deferred_deletion` the deletion is left to a step of the broker's own
    /// ([`crate::Internal::Remove`]), after the delay the rule recommends: the exchange is only
    /// marked unused.
    pub(crate) fn auto_delete_exchange(&mut self, name: &Name, out: &mut Vec<Event>) {
        let unused = self.bindings_from(name).next().is_none();
        if unused && self.exchanges.get(name).is_some_and(|x| x.auto_delete) {
            if self.profile.deferred_deletion {
                if let Some(x) = self.exchanges.get_mut(name) {
                    x.unused = true;
                }
            } else {
                self.delete_exchange(name, out);
            }
        }
    }

    /// Add a binding; an auto-delete source waiting for its deletion is in use again.
    pub(crate) fn add_binding(&mut self, b: Binding) {
        if self.exchanges.get(&b.source).is_some_and(|x| x.unused) {
            if let Some(x) = self.exchanges.get_mut(&b.source) {
                x.unused = false;
            }
        }
        self.bindings.insert(b);
    }

    /// Check a name used as an end of an exchange-to-exchange binding: `""` is the default
    /// exchange as `default_exchange_other_bindings` permits (the spec profile: either, the
    /// field rules `exchange bind destination default-exchange`, `exchange bind source
    /// default-exchange`, `exchange unbind destination default-exchange` and `exchange unbind
    /// source default-exchange` against `exchange default-access`), refused with 403 otherwise
    /// (RabbitMQ, errata 14); a missing exchange is 404
    /// (`exchange bind destination exchange-existence`, `exchange bind source exchange-existence`).
    fn binding_end(&mut self, name: &Name) -> Result<bool, Exception> {
        if name.is_empty() && !self.permits(self.profile.default_exchange_other_bindings, "exchange default-access") {
            return Err(Channel(AccessRefused));
        }
        Ok(self.exchanges.contains_key(name))
    }

    /// `exchange.bind`: duplicates are accepted and ignored (`exchange bind duplicates`), cycles
    /// allowed (`exchange bind cyclical`).
    pub(crate) fn exchange_bind(
        &mut self,
        ch: ChanRef,
        destination: &Name,
        source: &Name,
        routing_key: &Name,
        arguments: &Table,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if !self.binding_end(destination)? || !self.binding_end(source)? {
            return Err(Channel(NotFound));
        }
        self.check_x_match(source, arguments)?;
        self.add_binding(Binding {
            source: source.clone(),
            dest: Dest::Exchange(destination.clone()),
            key: routing_key.clone(),
            arguments: arguments.clone(),
        });
        out.push(Event::Reply { ch, reply: Reply::ExchangeBindOk });
        Ok(())
    }

    /// `exchange.unbind`: a missing destination or source exchange is 404 under the spec profile
    /// (`exchange unbind destination must-exist`, `exchange unbind source must-exist`), closing
    /// the channel or (`exchange unbind 01`, as `unbind_failure_on_channel` permits) the
    /// connection; under
    /// `unbind_missing_ok` (RabbitMQ) it is unbind-ok.
    pub(crate) fn exchange_unbind(
        &mut self,
        ch: ChanRef,
        destination: &Name,
        source: &Name,
        routing_key: &Name,
        arguments: &Table,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let both = self.binding_end(destination)? & self.binding_end(source)?;
        if !both && !self.profile.unbind_missing_ok {
            return Err(self.unbind_not_found("exchange unbind 01"));
        }
        let b = Binding {
            source: source.clone(),
            dest: Dest::Exchange(destination.clone()),
            key: routing_key.clone(),
            arguments: arguments.clone(),
        };
        if self.bindings.remove(&b) {
            self.auto_delete_exchange(source, out);
        }
        out.push(Event::Reply { ch, reply: Reply::ExchangeUnbindOk });
        Ok(())
    }
}
