//! Where the specification leaves a server more than one answer to a command.
//!
//! A method handler that reaches such a point asks `Broker::either` which of `n` answers to
//! give, naming the rule (or errata section) whose text allows them. [`Broker::apply`] always
//! takes the first: the profile's preferred answer. [`Broker::apply_all`] gives every answer the
//! profile allows, each as a [`Branch`] with the state it leads to; the conformance validator
//! keeps every branch that explains what a broker did, the model checker explores each, and the
//! reference broker may pick one at random.
//!
//! Choices are made under a profile whose switch says "either" (the `spec` profile, where the
//! text allows several outcomes, is silent, or has two rules in conflict). The `rabbitmq`
//! profile, held to one broker, reaches one only where the broker's timing decides: where the
//! model knows the moment only within bounds, and the order in which a connection's channels
//! close ([`Broker::may_choose`]).

use crate::broker::UsageError;
use crate::command::Command;
use crate::event::Event;
use crate::state::Broker;
use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};

/// A set of up to 256 readings of a text that leaves a broker several, numbered 0 to 255: those
/// that agree with everything the broker has done so far. A broker's reading is settled this
/// way, a little at a time, where settling it whole at once would be a choice among hundreds
/// (priority level schemes, `crate::basic::priority`; header value comparisons,
/// `crate::routing::headers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Readings(pub [u64; 4]);

impl Readings {
    /// Every reading.
    pub const ALL: Readings = Readings([u64::MAX; 4]);
    /// Every reading (for serde's default).
    pub fn all() -> Readings {
        Readings::ALL
    }

    /// No reading.
    pub const NONE: Readings = Readings([0; 4]);

    /// The set holding only `s`.
    pub fn only(s: u8) -> Readings {
        let mut r = Readings::NONE;
        r.insert(s);
        r
    }

    /// Whether the set holds `s`.
    pub fn contains(&self, s: u8) -> bool {
        self.0[usize::from(s / 64)] & (1 << (s % 64)) != 0
    }

    /// Add `s`.
    pub fn insert(&mut self, s: u8) {
        self.0[usize::from(s / 64)] |= 1 << (s % 64);
    }

    /// The readings held, in order.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..=255u8).filter(move |s| self.contains(*s))
    }

    /// The schemes in both sets.
    pub fn and(self, other: Readings) -> Readings {
        Readings(std::array::from_fn(|i| self.0[i] & other.0[i]))
    }

    /// How many schemes the set holds.
    pub fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// Whether the set holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first reading held.
    pub fn first(&self) -> Option<u8> {
        self.iter().next()
    }
}

/// One choice made while applying a command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Choice {
    /// The rule, switch or errata section whose text allows the answers (as on its book page).
    pub why: &'static str,
    /// The answer taken, counted from 0 (the profile's preferred answer).
    pub option: u8,
    /// How many answers there were.
    pub of: u8,
}

/// One outcome of a command among those the profile allows.
#[derive(Clone, Debug)]
pub struct Branch {
    /// The choices that lead to it, in the order they were made (empty when there was none).
    pub choices: Vec<Choice>,
    /// The broker after the command.
    pub broker: Broker,
    /// What clients observe, as [`Broker::apply`] returns it.
    pub events: Vec<Event>,
}

impl Branch {
    /// The options taken, a script that [`Broker::apply_scripted`] follows to the same branch.
    pub fn script(&self) -> Vec<u8> {
        self.choices.iter().map(|c| c.option).collect()
    }
}

/// The choices of the command being applied: a script to follow, then the first answer, with a
/// record of each choice made. Not part of the broker's state: two brokers that differ only in
/// it are equal and hash alike, and it is empty between commands.
#[derive(Clone, Default)]
pub(crate) struct Choices {
    script: Vec<u8>,
    taken: Vec<Choice>,
}

impl PartialEq for Choices {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Choices {}

impl Hash for Choices {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl std::fmt::Debug for Choices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

impl Broker {
    /// Whether a command may reach a choice point in this state: in any state under a profile
    /// whose switches leave choices ([`crate::Profile::has_choices`]); under one without, where
    /// a waiting message's deadline may have come and may not (`crate::lifetime::ttl`: whether
    /// it had expired by a `basic.get` is the broker's timing), or where a connection's channels
    /// would close in an order that matters (`Broker::close_order_matters`: they close side by
    /// side). Only then may
    /// [`Broker::apply_all`] give more than one branch.
    pub fn may_choose(&self) -> bool {
        self.profile.has_choices()
            || self.connections.keys().any(|conn| self.close_order_matters(*conn))
            || self.profile.requeue_by_consumer && self.commit_may_dispatch()
            || self.profile.lifetime
                && self
                    .queues
                    .values()
                    .flat_map(|q| q.ready.iter())
                    .any(|r| r.expires.is_some_and(|d| self.clock.may_have_come(d) && !self.clock.surely_came(d)))
    }

    /// Whether `permit` allows it now: always, never, or as a choice that `why` allows, the
    /// allowed answer first.
    pub(crate) fn permits(&mut self, permit: crate::profile::Permit, why: &'static str) -> bool {
        use crate::profile::Permit;
        match permit {
            Permit::Allowed => true,
            Permit::Refused => false,
            Permit::Either => self.either(why, 2) == 0,
        }
    }

    /// The channel exception for a redeclare that is not equivalent (`why`: the rule).
    pub(crate) fn not_equivalent(&mut self, why: &'static str) -> crate::broker::Exception {
        use crate::profile::EquivalenceCode;
        use crate::types::ReplyCode;
        crate::broker::Exception::Channel(match self.profile.equivalence_code {
            EquivalenceCode::PreconditionFailed => ReplyCode::PreconditionFailed,
            EquivalenceCode::PreconditionFailedOrResourceLocked => {
                [ReplyCode::PreconditionFailed, ReplyCode::ResourceLocked][self.either(why, 2) as usize]
            }
        })
    }

    /// The exception of an unbind that failed with not-found (`why`: the rule): on the channel,
    /// or as `unbind_failure_on_channel` permits on the connection (the method's rule 01).
    pub(crate) fn unbind_not_found(&mut self, why: &'static str) -> crate::broker::Exception {
        use crate::broker::Exception;
        use crate::types::ReplyCode::NotFound;
        match self.permits(self.profile.unbind_failure_on_channel, why) {
            true => Exception::Channel(NotFound),
            false => Exception::Connection(NotFound),
        }
    }

    /// Whether a redeclare's arguments are equivalent to the entity's (`why`: the equivalence
    /// rule), given whether the two tables are equal and whether they agree on every argument
    /// the broker implements: under `argument_equivalence`, literally, by the known ones, or for
    /// tables that differ, not equivalent (the first answer) or equivalent.
    pub(crate) fn arguments_equivalent(&mut self, equal: bool, known_equal: bool, why: &'static str) -> bool {
        use crate::profile::ArgumentEquivalence::*;
        match self.profile.argument_equivalence {
            Literal => equal,
            KnownOnly => known_equal,
            Either => equal || self.either(why, 2) == 1,
        }
    }

    /// The refusal of a declared name outside the syntax (`why`: the syntax rule), when the
    /// profile checks names: 406 for a character outside it; for a name over 127 characters, 406
    /// or, as `any_fitting_code` allows, 502 syntax-error on the connection (the exchange-name
    /// and queue-name domains' length assertion names no code).
    pub(crate) fn bad_name(
        &mut self,
        name: &crate::types::Name,
        why: &'static str,
    ) -> Option<crate::broker::Exception> {
        use crate::broker::Exception;
        use crate::types::ReplyCode::{PreconditionFailed, SyntaxError};
        if !self.profile.name_syntax_checked || name.follows_syntax() {
            return None;
        }
        if !name.has_syntax_characters() || !self.profile.any_fitting_code {
            return Some(Exception::Channel(PreconditionFailed));
        }
        Some(match self.either(why, 2) {
            0 => Exception::Channel(PreconditionFailed),
            _ => Exception::Connection(SyntaxError),
        })
    }

    /// The refusal of the default exchange `""` by `exchange.declare` (`declare`) or
    /// `exchange.delete`: 403 access-refused on the channel (`exchange default-access`, the code
    /// errata 14 reports), or as `any_fitting_code` allows, 530 not-allowed on the connection, or
    /// for a declare 406 (`exchange declare exchange syntax` asks for a non-empty name).
    pub(crate) fn default_exchange_refused(&mut self, declare: bool) -> crate::broker::Exception {
        use crate::broker::Exception;
        use crate::types::ReplyCode::{AccessRefused, NotAllowed, PreconditionFailed};
        if !self.profile.any_fitting_code {
            return Exception::Channel(AccessRefused);
        }
        match (declare, self.either("exchange default-access", 2 + u8::from(declare))) {
            (_, 0) => Exception::Channel(AccessRefused),
            (_, 1) => Exception::Connection(NotAllowed),
            _ => Exception::Channel(PreconditionFailed),
        }
    }

    /// Whether a command that adds one more entity of a kind (a queue's consumers or bindings,
    /// the vhost's queues or declared exchanges), of which there are `count` now, may be refused
    /// for lack of room: under `resource_limits`, once the count reaches the `minimum` the rule
    /// `why` recommends, either accepted (the first answer) or 506 resource-error on the
    /// connection. The count is taken only under `resource_limits`.
    pub(crate) fn out_of_room(
        &mut self,
        count: impl FnOnce(&Broker) -> usize,
        minimum: usize,
        why: &'static str,
    ) -> crate::broker::Outcome {
        use crate::broker::Exception;
        if self.profile.resource_limits && count(self) >= minimum && self.either(why, 2) == 1 {
            return Err(Exception::Connection(crate::types::ReplyCode::ResourceError));
        }
        Ok(())
    }

    /// Which of `of` answers to give at a point where `why` allows each (`of` at least 2): the
    /// next one the script names, otherwise the first.
    pub(crate) fn either(&mut self, why: &'static str, of: u8) -> u8 {
        debug_assert!(of >= 2, "a choice needs two answers at least");
        // The state a command starts from must say that it may choose; a later choice of the
        // same command is made in a state the command has already changed.
        debug_assert!(
            !self.choices.taken.is_empty() || self.may_choose(),
            "Broker::may_choose leaves out the switch behind `{why}`"
        );
        let k = self.choices.taken.len();
        let option = self.choices.script.get(k).copied().unwrap_or(0).min(of - 1);
        self.choices.taken.push(Choice { why, option, of });
        option
    }

    /// Apply `cmd` taking, at its choice points in turn, the answers `script` names (the first
    /// answer where it names none): the branch of [`Broker::apply_all`] with that
    /// [`Branch::script`].
    pub fn apply_scripted(&mut self, cmd: &Command, script: &[u8]) -> Result<Vec<Event>, UsageError> {
        self.choices = Choices { script: script.to_vec(), taken: Vec::new() };
        let events = self.apply_choosing(cmd);
        self.choices = Choices::default();
        self.answer_closes();
        events
    }

    /// Every outcome of `cmd` that the profile allows, the profile's preferred one (the one
    /// [`Broker::apply`] gives) first. One branch when the command reaches no choice point.
    ///
    /// ```
    /// use amqp_model::{Broker, ChanRef, Command, ConnId, Event, Name, Profile};
    /// let mut b = Broker::new(Profile::spec());
    /// b.apply(&Command::ConnectionOpen { conn: ConnId(1) }).unwrap();
    /// let ch = ChanRef::new(1, 1);
    /// b.apply(&Command::ChannelOpen { ch }).unwrap();
    /// // No queue declared on the channel: errata 18's 502 on the connection, or the rule's 404.
    /// let purge = Command::QueuePurge { ch, queue: Name::from("") };
    /// let branches = b.apply_all(&purge).unwrap();
    /// assert_eq!(branches.len(), 2);
    /// assert!(matches!(branches[0].events[..], [Event::ConnectionClosed { .. }]));
    /// assert!(matches!(branches[1].events[..], [Event::ChannelClosed { .. }]));
    /// assert_eq!(branches[1].choices[0].why, "errata 18");
    /// ```
    pub fn apply_all(&self, cmd: &Command) -> Result<Vec<Branch>, UsageError> {
        self.apply_all_as(cmd, false)
    }

    /// [`Broker::apply_all`] for a command the client follows with another before it reads
    /// anything (pipelining): a channel the broker closes stays closing, its `close-ok` still to
    /// come, so that the next command may cross the close (`channel close stability`).
    pub fn apply_all_pipelining(&self, cmd: &Command) -> Result<Vec<Branch>, UsageError> {
        self.apply_all_as(cmd, true)
    }

    fn apply_all_as(&self, cmd: &Command, pipelining: bool) -> Result<Vec<Branch>, UsageError> {
        let mut branches = Vec::new();
        let mut todo: Vec<Vec<u8>> = vec![Vec::new()];
        while let Some(script) = todo.pop() {
            let mut broker = self.clone();
            broker.choices = Choices { script: script.clone(), taken: Vec::new() };
            let events = broker.apply_choosing(cmd)?;
            if !pipelining {
                broker.answer_closes();
            }
            let choices = std::mem::take(&mut broker.choices).taken;
            // The choices past the script were made with the first answer: each other answer
            // of each is a branch still to take.
            for k in (script.len()..choices.len()).rev() {
                for option in (1..choices[k].of).rev() {
                    let mut next: Vec<u8> = choices[..k].iter().map(|c| c.option).collect();
                    next.push(option);
                    todo.push(next);
                }
            }
            branches.push(Branch { choices, broker, events });
        }
        Ok(branches)
    }
}
