//! Profiles: the specification (with its errata) and RabbitMQ 3.10 as documented and observed.
//!
//! Every point where the two differ is one named switch here, and nowhere else. docs/model.md has
//! the same table with the rule or document each switch follows.

use crate::basic::priority::PriorityLevels;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How `basic.qos` `global` is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QosScope {
    /// The 0-9-1 text: `global=false` limits the channel, `global=true` the whole connection.
    ChannelAndConnection,
    /// RabbitMQ: `global=false` limits each consumer created afterwards, `global=true` the
    /// channel (shared by its consumers).
    ConsumerAndChannel,
}

/// Which consumer gets the next message of a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Dispatch {
    /// Any consumer with spare prefetch capacity (the spec does not choose): every choice is a
    /// separate internal step.
    AnyConsumer,
    /// RabbitMQ's round robin: the next consumer in turn that has capacity; a consumer without
    /// capacity leaves the rotation until it has capacity again, then rejoins at the end.
    RoundRobin,
}

/// The behaviour switches of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Profile {
    /// The profile's name (`spec` or `rabbitmq`).
    pub name: ProfileName,
    /// `basic.qos` `global`: spec field doc of `basic.qos global` vs RabbitMQ's consumer prefetch.
    pub qos_scope: QosScope,
    /// Consumer selection: spec is silent (any), RabbitMQ round-robins.
    pub dispatch: Dispatch,
    /// Deleting a queue or exchange that does not exist: spec rules `queue delete queue must-exist`
    /// and `exchange delete exchange exists` (404); RabbitMQ answers delete-ok.
    pub delete_missing_ok: bool,
    /// Unbinding a binding whose queue or exchange does not exist: the spec's `queue unbind queue
    /// must-exist`, `queue unbind exchange must-exist`, `exchange unbind destination must-exist`
    /// and `exchange unbind source must-exist` make it fail with 404 (closing what
    /// `unbind_failure_on_channel` says); RabbitMQ answers unbind-ok.
    pub unbind_missing_ok: bool,
    /// Whether a failed `queue.unbind` or `exchange.unbind` (a missing queue or exchange, 404)
    /// may close the channel: the field rules (`queue unbind queue must-exist`, `exchange unbind
    /// source must-exist` and the like) give not-found, a channel exception, while each method's
    /// rule 01 says a failed unbind MUST raise a connection exception. The spec profile allows
    /// both (either: the channel close first, then the connection close, both 404); RabbitMQ
    /// answers unbind-ok and never gets there (Allowed).
    pub unbind_failure_on_channel: Permit,
    /// `queue.bind` naming the default exchange: allowed by the spec (`queue bind exchange
    /// default-exchange`, which `exchange default-access` names as one of the two ways to
    /// access it); RabbitMQ refuses it with 403 (errata section 14).
    pub default_exchange_bindable: bool,
    /// `queue.unbind`, `exchange.bind` and `exchange.unbind` naming the default exchange: their
    /// field rules (`queue unbind exchange default-exchange`, `exchange bind destination
    /// default-exchange` and the like) take `""` as the default exchange, while `exchange
    /// default-access` forbids any access but through `queue.bind` and `basic.publish`. The two
    /// rules conflict, so the spec profile allows both (either), and an accepted unbind of a
    /// queue's automatic binding (its own name as the key) may keep or remove it, which the text
    /// leaves open too; RabbitMQ refuses with 403.
    pub default_exchange_other_bindings: Permit,
    /// Exchange equivalence also compares `auto-delete` and `internal`: RabbitMQ does; the spec
    /// compares type, durable and arguments only (`exchange declare passive equivalent`) and
    /// ignores `auto-delete` for an existing exchange (`amq_exchange_25`).
    pub exchange_equivalence_strict: bool,
    /// A message requeued by reject/nack is not delivered again to a consumer on the rejecting
    /// channel (spec `basic reject requeue 01`, `basic nack requeue 01`); RabbitMQ delivers it to
    /// whichever consumer is next, the same one included.
    pub requeue_avoids_rejecting_channel: bool,
    /// `basic.recover` with `requeue=false`: the spec redelivers to the original consumer;
    /// RabbitMQ refuses it with 540 not-implemented.
    pub recover_without_requeue: bool,
    /// `queue.delete` with `if-empty` of a queue with no ready message but a delivery out of it
    /// still unacknowledged: `queue delete if-empty not-empty` forbids deleting a queue "that has
    /// messages on it" and does not say whether such a message is on it (the message-count
    /// domain counts messages waiting for acknowledgement, the purge doc sets them apart). The
    /// spec profile allows both readings (either: counted, 406, first); RabbitMQ counts ready
    /// messages only (Refused: delete-ok 0).
    pub if_empty_counts_unacked: Permit,
    /// Whether the server tells the consumers of a deleted queue with a `basic.cancel` of its
    /// own: RabbitMQ always does (its consumer cancel notification); the 0-9-1 XML has no
    /// server-sent `basic.cancel`, but the extended XML's `basic.cancel` may be sent by the
    /// server "e.g. when the queue is deleted", and nothing forbids it, so the spec profile
    /// allows either, at each deletion.
    pub cancel_notify: Permit,
    /// `basic.cancel` of a tag that names no consumer of this channel but one of another channel
    /// of the same connection: `basic consume consumer-tag 02` (a tag is valid only on its
    /// channel) makes it a 530 not-allowed connection exception; RabbitMQ answers cancel-ok, as
    /// for any unknown tag.
    pub foreign_consumer_tag_refused: bool,
    /// Redeclaring a queue with another `exclusive` flag: the spec's equivalence rule makes it a
    /// channel exception like any other difference; RabbitMQ answers 405 (resource locked), the
    /// owner included; a passive declare ignores the flag in both.
    pub exclusive_in_equivalence: bool,
    /// The code of the channel exception for a redeclare that is not equivalent: the rules
    /// (`queue declare passive equivalent`, `exchange declare passive equivalent`) say only "a
    /// channel exception" (errata section 6: "the rules fail to specify the exact error code"),
    /// so the spec profile allows 406 precondition-failed (what RabbitMQ uses) or 405
    /// resource-locked (either); RabbitMQ's is 406.
    pub equivalence_code: EquivalenceCode,
    /// Redeclaring an existing queue with only another `auto-delete` flag: `queue declare
    /// auto-delete pre-existence` says the server MUST ignore the field, `queue declare passive
    /// equivalent` that it MUST compare it. The two conflict, so the spec profile allows both a
    /// declare-ok that keeps the queue's flag and the equivalence rule's channel exception
    /// (either); RabbitMQ refuses (406).
    pub auto_delete_redeclare: Permit,
    /// How the equivalence check compares declare arguments. The equivalence rules ask for the
    /// same arguments, while the passive field docs say arguments are compared for semantic
    /// equivalence and the arguments docs leave their meaning to the server. Literal equality of
    /// the whole table (value kinds included: 1 differs from "1") is one reading; comparing only
    /// what the server gives a meaning to is another. The spec gives no declare argument a
    /// meaning, so under `spec` a difference in arguments alone is either (a choice); RabbitMQ
    /// compares only `alternate-exchange` for exchanges and its known `x-` queue arguments.
    pub argument_equivalence: ArgumentEquivalence,
    /// A name beginning `amq.` is refused (403) before it is looked up: a non-passive
    /// `queue.declare` even when the queue exists (RabbitMQ, which so refuses to redeclare a
    /// server-named queue by name), and an `exchange.delete` even when no such exchange exists.
    /// The spec allows the declare for an existing queue (`queue declare queue reserved`), and a
    /// missing exchange is not found, 404 (`exchange delete exchange exists`).
    pub reserved_prefix_always_refused: bool,
    /// Names of exchanges and queues outside the specification's syntax (letters, digits, `-`,
    /// `_`, `.`, `:`) are refused with 406 by `exchange.declare` and `queue.declare` (`exchange
    /// declare exchange syntax`, `queue declare queue syntax`), and so are names over 127
    /// characters (the domains' assertion, which names no code: see `any_fitting_code`);
    /// RabbitMQ accepts any UTF-8 name of up to 255 bytes.
    pub name_syntax_checked: bool,
    /// Where a rule forbids something without naming the reply code, every code whose doc fits
    /// is allowed (a choice, [`crate::choice`]): a declare of `""` refused by `exchange
    /// default-access` with 403 access-refused on the channel or 530 not-allowed on the
    /// connection, or 406 by `exchange declare exchange syntax` (which asks for a non-empty
    /// name), a delete of `""` with 403 or 530, and a name over the 127 characters of the
    /// exchange-name and queue-name domains with 406 (as for the syntax) or 502 syntax-error on
    /// the connection. Where two rules each name a code for one failure, either: a passive
    /// `queue.declare` of a name outside the syntax is 406 (`queue declare queue syntax`) or 404
    /// (`queue declare passive passive`: no queue can have it), and a new queue name that is
    /// reserved and outside the syntax 406 or 403 (`queue declare queue reserved`). RabbitMQ
    /// answers 403 for `""` and has no 127-character limit.
    pub any_fitting_code: bool,
    /// Which of the exchange types that `exchange recommended-types` recommends (SHOULD) the
    /// server implements. One left out is an unknown type: a non-passive declare of it is 503 on
    /// the connection (`exchange declare type support`), and its `amq.` instances are not there
    /// (`exchange required-instances` asks only for the types implemented). Both named profiles
    /// implement both; the conformance runner probes a broker under `spec` and, when it refuses
    /// one, judges against the profile without it and skips the traces that need it.
    pub recommended_types: RecommendedTypes,
    /// Whether the server implements the mandatory flag: `basic publish mandatory 01` is a
    /// SHOULD, so a server may drop an unroutable mandatory message like any other. A property of
    /// the broker: both named profiles return it (312), and the conformance runner probes a
    /// broker under `spec` and, when it returns nothing, judges it against the profile without
    /// returns and skips the traces that expect one.
    pub mandatory_returns: bool,
    /// Whether the predeclared `amq.` exchanges are durable: errata 20 notes that the spec does
    /// not say, so under `spec` either (a choice made once, at the first non-passive declare of
    /// one, and kept: a transient one is made again, without its bindings, when the broker
    /// restarts, as `exchange required-instances` asks); RabbitMQ's are durable (allowed).
    pub predeclared_durable: Permit,
    /// Where a requeued message goes back (reject, nack or recover with requeue, a channel or
    /// connection closing with unacknowledged messages): the requeue field docs only say the
    /// server will try to requeue it, and `basic 08` orders deliveries by arrival, so the spec
    /// profile lets it go out before or after any message that was in the queue when it was
    /// requeued (anywhere), but not after a later arrival; RabbitMQ puts it back at its original
    /// place.
    pub requeue_position: RequeuePosition,
    /// Whether a message that goes out again after a delivery that was never settled may come
    /// without the redelivered flag: `redelivered implementation` is a SHOULD ("when it can"),
    /// so under `spec` each such delivery may carry it or not, except what `basic.recover`
    /// resends (`basic recover 01`, a MUST); RabbitMQ always sets it.
    pub redelivered_flag_optional: bool,
    /// Whether the broker may send less than a consumer's prefetch window allows: `basic qos
    /// prefetch-count 01` lets the server send less in advance than the client permits (it only
    /// MUST NOT send more), so under `spec` a delivery is owed only to a consumer that holds no
    /// unacknowledged delivery of its own (and to every no-ack consumer); one to a consumer that
    /// already holds one stays possible but the broker may also never make it. A wait ends, and
    /// a trace may finish, once nothing is owed ([`crate::Broker::owes_delivery`]). RabbitMQ
    /// fills every window at once.
    pub prefetch_fill_optional: bool,
    /// Whether the broker may run out of room once past the minimums the rules recommend: a
    /// consume past the sixteenth consumer of a queue (`basic consume 01`), a declare creating
    /// the seventeenth exchange that is not predeclared (`exchange declare minimum`) or the 257th
    /// queue (`queue declare minimum-queues`), a bind giving a queue a fifth binding (`queue bind
    /// binding-count`). Under `spec` each such command may also be refused with 506
    /// resource-error on the connection (a choice: the rules name no code, and resource-error is
    /// the constant for too many entities); RabbitMQ has no such limits.
    pub resource_limits: bool,
    /// When an unroutable mandatory message published in a transaction is returned: the tx
    /// class's rule `tx not mandatory` says applications MUST NOT rely on it, so under `spec`
    /// (`true`) it may come back at the publish, or at `tx.commit` before or after commit-ok,
    /// or never (a rollback does not undo a return already sent); RabbitMQ returns it at the
    /// commit, before commit-ok, and never after a rollback.
    pub tx_return_timing_open: bool,
    /// `basic.ack` or `basic.nack` of tag 0 without multiple: it names no delivery, but the
    /// delivery-tag domain reserves 0 for "everything so far" and the multiple-exists rules
    /// check non-zero tags only, so under `spec` (`true`) it may be 406, settle every outstanding
    /// delivery of the channel, or do nothing; RabbitMQ: 406.
    pub zero_tag_alone_open: bool,
    /// A passive `queue.declare` of `""`: without creation the empty name has no special
    /// meaning of its own, so it names no queue (404, RabbitMQ) or, by the queue-name domain,
    /// the channel's last declared queue (`queue declare passive passive`); `spec`: either.
    pub passive_empty_last_queue: Permit,
    /// `exchange.delete` with if-unused of an exchange whose only bindings are
    /// exchange-to-exchange ones: `exchange delete if-unused in-use` forbids deleting an
    /// exchange with "bindings on it", the if-unused field doc says queue bindings, so under
    /// `spec` (`true`) it is refused (406) or deleted, whether it is their source or
    /// destination; RabbitMQ counts the bindings it is the source of.
    pub e2e_in_use_open: bool,
    /// `queue.unbind` with both the queue name and the routing key empty: the shortcut that
    /// makes the key the queue's name is written only in `queue.bind`'s routing-key doc, so for
    /// an unbind the key is that name by analogy (RabbitMQ, the first answer) or `""` itself;
    /// `spec`: either.
    pub unbind_key_shortcut: Permit,
    /// When a transacted publish to a missing (`basic publish exchange must-exist`, 404) or
    /// internal (`basic publish exchange 02`, 403) exchange fails, and a transacted nack of a tag
    /// naming no outstanding delivery (`basic nack multiple exists`, 406, which unlike ack's rule
    /// asks for no immediate check): the rules give no moment, so under `spec` (`true`) at once or
    /// at `tx.commit` (a channel exception, nothing of the transaction done; a rollback first
    /// forgets it); RabbitMQ: at once.
    pub tx_checks_at_commit: bool,
    /// A queue method naming `""` on a channel that declared no queue: the queue-known rules
    /// give 404 on the channel, section 1.1 gives 502, which the errata (section 18) make a
    /// connection exception; the spec profile allows either, RabbitMQ closes the channel with 404.
    pub unknown_last_queue: LastQueueError,
    /// What a restart keeps beyond the durable queues and exchanges: `basic 01` only recommends
    /// (SHOULD) that persistent messages in durable queues survive, errata 27 says the delivery
    /// mode decides while `basic 04` lets a server store transient messages too, the durable
    /// field doc has transient queues "purged" (removed, or emptied), and a durable auto-delete
    /// queue whose consumers the restart closed is both kept (`queue declare durable
    /// persistence`) and due for deletion (the auto-delete field doc). Under `spec` (`true`)
    /// each is a choice made once per restart, the recommended or first-read answer first
    /// ([`crate::Broker`]'s restart); RabbitMQ keeps persistent messages and durable queues,
    /// auto-delete ones included, and drops transient messages and queues.
    pub restart_open: bool,
    /// `exchange.delete` of an existing predeclared `amq.` exchange: `exchange required-instances`
    /// has the server pre-declare them and `exchange declare exchange reserved` keeps clients from
    /// declaring such names, but no rule forbids deleting one. Under `spec` (`true`) the delete is
    /// refused with 403 (first) or done; a deleted one is made again at the next restart, which
    /// is when the rule asks for them. RabbitMQ refuses with 403.
    pub predeclared_delete_open: bool,
    /// `basic.ack`, `basic.nack` or `basic.reject` of the tag of a delivery made with no-ack: it
    /// names a delivered message, which `basic ack multiple exists` asks the tag to, so the
    /// text allows taking the automatic settlement as its acknowledgement (a further one is
    /// 406: RabbitMQ) or accepting the superfluous one; and a `basic.reject` of a tag naming no
    /// outstanding delivery is refused only by errata 21's suggestion. Under `spec` (`true`)
    /// each is 406 (first) or accepted (nothing happens); the channel then keeps its no-ack
    /// tags (`Channel::no_ack_tags`).
    pub no_ack_tag_open: bool,
    /// When a deletion the broker makes on its own happens: an auto-delete exchange whose last
    /// binding as a source went (`exchange declare auto-delete amq_exchange_02` recommends a
    /// reasonable delay after it is unused), an exclusive queue whose connection closed (its
    /// field doc says it is deleted then, errata 5 that the text does not say whether before the
    /// close is answered), and an auto-delete queue whose last consumer went (its field doc:
    /// when all consumers have finished using it; errata 5 again). Under `spec` (`true`) each is
    /// a silent step of the broker's own ([`crate::Internal::Remove`]) that may come any time
    /// after, must have come once a `wait` is over, and meanwhile leaves the exchange or the
    /// auto-delete queue in place (a new binding or consumer keeps it) and the exclusive queue
    /// locked to every connection (405). RabbitMQ deletes each at once, inside the command.
    pub deferred_deletion: bool,
    /// A command on a queue locked to another connection (`queue declare exclusive exclusive`,
    /// 405) that another rule refuses too (an inequivalent redeclare, a missing exchange,
    /// `if-unused` or `if-empty`): the text does not order the checks, and errata 8 only reports
    /// that RabbitMQ checks the lock first. Under `spec` (Either) the answer is the lock's 405
    /// (first) or the other rule's failure; RabbitMQ (Allowed): the lock first, except that
    /// `queue.bind` looks its exchange up before (404; probed, docs/rabbitmq-3.10.md Q9).
    pub exclusive_lock_first: Permit,
    /// A publish on a channel in confirm mode that the server could not handle: the confirm class
    /// has every message acknowledged, and the basic.nack doc gives the server a nack for
    /// "unhandled messages", which a publisher should publish again; the text says neither when
    /// that happens nor what became of the message. Under `spec` (`true`) each such publish is
    /// acked (first), or nacked with its copy kept or lost in each queue it reached, or nacked
    /// and routed nowhere. RabbitMQ nacks only on internal errors, which the model has none of:
    /// `false`.
    pub confirm_nack_open: bool,
    /// A queue declared both durable and exclusive (errata 30: the text does not say what that
    /// means, RabbitMQ makes it an exclusive transient queue). Under `spec` (`true`) the broker's
    /// reading is settled the first time a declare asks for one: a transient queue (first), a
    /// durable one as requested (so a redeclare with the other durable value differs), or the
    /// combination refused (406). RabbitMQ: `false`, transient.
    pub durable_exclusive_open: bool,
    /// How a headers binding compares values of different field types (the specification does
    /// not say). Under `spec` (`true`) the broker's reading is settled the first publish the two
    /// readings route differently: RabbitMQ's (first) or by type and value
    /// ([`crate::routing::headers::HeaderValues`]). RabbitMQ: `false`, its own reading.
    pub header_values_open: bool,
    /// How priorities put waiting messages into levels ([`crate::basic::priority`]): under `spec`
    /// the bands 0-4 and 5-9 at least, finer levels as the broker's scheme has them (`basic 06`,
    /// `basic 07`); RabbitMQ: levels only in a queue declared with `x-max-priority`.
    pub priority_levels: PriorityLevels,
    /// Whether RabbitMQ's message-lifetime extensions act ([`crate::lifetime`]): message and
    /// queue TTL, length limits, dead-lettering, alternate exchanges, and the checks of their
    /// arguments. Under `spec` (`false`) the arguments are kept and compared only: the text
    /// leaves their meaning to the server and gives `expiration` none. RabbitMQ: `true`.
    pub lifetime: bool,
    /// Whether a headers binding's `x-match` may also be `all-with-x` or `any-with-x`, matching
    /// on the `x-` arguments too ([`crate::routing::headers::XMatch`]): RabbitMQ's extension,
    /// `true`. Under `spec` (`false`) only `all` and `any` are known values.
    pub x_match_with_x: bool,
    /// Whether a headers binding with an `x-match` the broker does not know (not a string, or
    /// none of the known values) is accepted, and then matched as `all`, or refused with 406.
    /// Under `spec` either (the text names no values of `x-match`: a binding's arguments mean
    /// what the exchange type makes of them); RabbitMQ: refused (probed, Q30, Q46).
    pub x_match_unknown: Permit,
    /// Whether a consumer's `x-priority` argument orders the consumers of a queue
    /// ([`crate::basic::consumer_priority`]): RabbitMQ's extension, `true`. Under `spec`
    /// (`false`) a consumer's arguments are kept and act on nothing: the arguments field doc of
    /// basic.consume leaves their syntax and meaning to the server.
    pub consumer_priorities: bool,
    /// Whether a queue declared with `x-single-active-consumer` true gives its messages to one
    /// consumer at a time ([`crate::basic::single_active`]): RabbitMQ's extension, `true`. Under
    /// `spec` (`false`) the argument is kept and compared only: the arguments field doc of
    /// queue.declare leaves their meaning to the server.
    pub single_active_consumer: bool,
    /// Whether the deliveries that one `basic.nack`, `basic.reject` or `basic.recover` requeues
    /// go back one consumer at a time (ordered by queue name, then consumer tag, `basic.get`
    /// deliveries first), the queue dispatching what it can between two batches of the same
    /// queue: RabbitMQ's channel settles per queue and consumer, and its queue process hands out
    /// messages after each batch (found by generated traces, 20 runs of 20), `true`. Under `spec`
    /// (`false`) they go back at once: with `requeue_position` open and any consumer served, that
    /// already allows every order of redelivery the batches give, so the finer reading adds
    /// nothing.
    pub requeue_by_consumer: bool,
    /// Whether `amq.rabbitmq.reply-to` is RabbitMQ's direct reply-to pseudo-queue
    /// ([`crate::basic::direct_reply`], probed: docs/rabbitmq-3.10.md Q51), `true`. Under `spec`
    /// (`false`) it is an ordinary name, reserved by its `amq.` prefix
    /// (`queue declare queue reserved`), which no queue has.
    pub direct_reply_to: bool,
    /// Whether `x-queue-type` names a queue type ([`crate::quorum`]): RabbitMQ's `classic` (the
    /// default) and `quorum`, each refusing the other's arguments, a quorum queue requeueing to
    /// its back and counting deliveries (probed: docs/rabbitmq-3.10.md Q65, Q67), `true`. Under
    /// `spec` (`false`) the argument is kept and compared only, as any other: the arguments field
    /// doc of queue.declare leaves their meaning to the server.
    pub quorum_queues: bool,
}

/// Where a requeued message goes back (`Profile::requeue_position`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RequeuePosition {
    /// Its original place (RabbitMQ).
    Original,
    /// Anywhere among the messages in the queue at the time: it may go out before or after
    /// each of them (a choice at each delivery, [`crate::choice`] for `basic.get`), never after
    /// a message that came later.
    Anywhere,
}

/// How declare arguments are compared for equivalence (`Profile::argument_equivalence`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ArgumentEquivalence {
    /// The whole table, literally.
    Literal,
    /// Only the arguments the broker implements (RabbitMQ), an `x-queue-type` left out read as
    /// `classic` (docs/rabbitmq-3.10.md Q65).
    KnownOnly,
    /// Equal tables are equivalent; tables that differ are not, or are (a choice,
    /// [`crate::choice`]): the semantic-equivalence sentence of the passive field docs.
    Either,
}

/// The recommended exchange types a server implements (`exchange recommended-types`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecommendedTypes {
    /// `topic`.
    pub topic: bool,
    /// `headers`.
    pub headers: bool,
}

impl RecommendedTypes {
    /// Both recommended types.
    pub const BOTH: RecommendedTypes = RecommendedTypes { topic: true, headers: true };

    /// Whether `kind` is implemented: the required types always, a recommended one if it is
    /// among these, any other never.
    pub fn implements(&self, kind: &crate::types::ExchangeKind) -> bool {
        use crate::types::ExchangeKind::*;
        match kind {
            Direct | Fanout => true,
            Topic => self.topic,
            Headers => self.headers,
            Other(_) => false,
        }
    }

    /// The recommended types left out, by their names.
    pub fn left_out(&self) -> Vec<&'static str> {
        [("topic", self.topic), ("headers", self.headers)].into_iter().filter(|(_, has)| !has).map(|(n, _)| n).collect()
    }
}

/// What a missing "last declared queue" raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LastQueueError {
    /// 502 syntax-error, closing the connection (spec section 1.1 with errata section 18).
    ConnectionSyntaxError,
    /// 404 not-found, closing the channel (the queue-known rules' on-failure; RabbitMQ).
    ChannelNotFound,
    /// Either of the two: the rules (`queue bind queue queue-known` and the others) say
    /// not-found, section 1.1 says 502, which errata section 18 makes a connection exception
    /// without taking the rules' code away (a choice, [`crate::choice`]).
    Either,
}

/// Whether a profile allows something the text both allows and forbids (two rules in
/// conflict) or leaves open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permit {
    /// Always allowed (done).
    Allowed,
    /// Always refused (not done).
    Refused,
    /// Either, at each occasion (a choice, [`crate::choice`]); the allowed answer first.
    Either,
}

/// The channel exception of a redeclare that is not equivalent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EquivalenceCode {
    /// 406 precondition-failed.
    PreconditionFailed,
    /// 406 or 405 resource-locked (a choice, [`crate::choice`]).
    PreconditionFailedOrResourceLocked,
}

/// The named profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileName {
    /// The 0-9-1 specification with its errata.
    Spec,
    /// RabbitMQ 3.10 (classic queues).
    Rabbitmq,
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProfileName::Spec => "spec",
            ProfileName::Rabbitmq => "rabbitmq",
        })
    }
}

/// A profile name that is neither `spec` nor `rabbitmq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownProfile(pub String);

impl std::fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown profile `{}` (expected `spec` or `rabbitmq`)", self.0)
    }
}

impl std::error::Error for UnknownProfile {}

impl std::str::FromStr for ProfileName {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, UnknownProfile> {
        match s {
            "spec" => Ok(ProfileName::Spec),
            "rabbitmq" => Ok(ProfileName::Rabbitmq),
            other => Err(UnknownProfile(other.to_string())),
        }
    }
}

impl Profile {
    /// The 0-9-1 specification read with its errata.
    pub const fn spec() -> Self {
        Profile {
            name: ProfileName::Spec,
            qos_scope: QosScope::ChannelAndConnection,
            dispatch: Dispatch::AnyConsumer,
            delete_missing_ok: false,
            unbind_missing_ok: false,
            default_exchange_bindable: true,
            default_exchange_other_bindings: Permit::Either,
            exchange_equivalence_strict: false,
            requeue_avoids_rejecting_channel: true,
            recover_without_requeue: true,
            cancel_notify: Permit::Either,
            unbind_failure_on_channel: Permit::Either,
            if_empty_counts_unacked: Permit::Either,
            foreign_consumer_tag_refused: true,
            exclusive_in_equivalence: true,
            equivalence_code: EquivalenceCode::PreconditionFailedOrResourceLocked,
            auto_delete_redeclare: Permit::Either,
            argument_equivalence: ArgumentEquivalence::Either,
            reserved_prefix_always_refused: false,
            name_syntax_checked: true,
            any_fitting_code: true,
            recommended_types: RecommendedTypes::BOTH,
            mandatory_returns: true,
            predeclared_durable: Permit::Either,
            requeue_position: RequeuePosition::Anywhere,
            redelivered_flag_optional: true,
            prefetch_fill_optional: true,
            resource_limits: true,
            tx_return_timing_open: true,
            zero_tag_alone_open: true,
            passive_empty_last_queue: Permit::Either,
            e2e_in_use_open: true,
            unbind_key_shortcut: Permit::Either,
            tx_checks_at_commit: true,
            unknown_last_queue: LastQueueError::Either,
            restart_open: true,
            predeclared_delete_open: true,
            no_ack_tag_open: true,
            deferred_deletion: true,
            exclusive_lock_first: Permit::Either,
            confirm_nack_open: true,
            durable_exclusive_open: true,
            header_values_open: true,
            priority_levels: PriorityLevels::Bands,
            lifetime: false,
            x_match_with_x: false,
            x_match_unknown: Permit::Either,
            consumer_priorities: false,
            single_active_consumer: false,
            requeue_by_consumer: false,
            direct_reply_to: false,
            quorum_queues: false,
        }
    }

    /// RabbitMQ 3.10.8 with classic queues.
    pub const fn rabbitmq() -> Self {
        Profile {
            name: ProfileName::Rabbitmq,
            qos_scope: QosScope::ConsumerAndChannel,
            dispatch: Dispatch::RoundRobin,
            delete_missing_ok: true,
            unbind_missing_ok: true,
            default_exchange_bindable: false,
            default_exchange_other_bindings: Permit::Refused,
            exchange_equivalence_strict: true,
            requeue_avoids_rejecting_channel: false,
            recover_without_requeue: false,
            cancel_notify: Permit::Allowed,
            unbind_failure_on_channel: Permit::Allowed,
            if_empty_counts_unacked: Permit::Refused,
            foreign_consumer_tag_refused: false,
            exclusive_in_equivalence: false,
            equivalence_code: EquivalenceCode::PreconditionFailed,
            auto_delete_redeclare: Permit::Refused,
            argument_equivalence: ArgumentEquivalence::KnownOnly,
            reserved_prefix_always_refused: true,
            name_syntax_checked: false,
            any_fitting_code: false,
            recommended_types: RecommendedTypes::BOTH,
            mandatory_returns: true,
            predeclared_durable: Permit::Allowed,
            requeue_position: RequeuePosition::Original,
            redelivered_flag_optional: false,
            prefetch_fill_optional: false,
            resource_limits: false,
            tx_return_timing_open: false,
            zero_tag_alone_open: false,
            passive_empty_last_queue: Permit::Refused,
            e2e_in_use_open: false,
            unbind_key_shortcut: Permit::Allowed,
            tx_checks_at_commit: false,
            unknown_last_queue: LastQueueError::ChannelNotFound,
            restart_open: false,
            predeclared_delete_open: false,
            no_ack_tag_open: false,
            deferred_deletion: false,
            exclusive_lock_first: Permit::Allowed,
            confirm_nack_open: false,
            durable_exclusive_open: false,
            header_values_open: false,
            priority_levels: PriorityLevels::MaxPriorityArgument,
            lifetime: true,
            x_match_with_x: true,
            x_match_unknown: Permit::Refused,
            consumer_priorities: true,
            single_active_consumer: true,
            requeue_by_consumer: true,
            direct_reply_to: true,
            quorum_queues: true,
        }
    }

    /// Whether some switch leaves the broker a choice of answers ([`crate::choice`]): only then
    /// may [`crate::Broker::apply_all`] give more than one.
    pub fn has_choices(&self) -> bool {
        self.unknown_last_queue == LastQueueError::Either
            || self.any_fitting_code
            || self.argument_equivalence == ArgumentEquivalence::Either
            || self.requeue_position == RequeuePosition::Anywhere
            || self.redelivered_flag_optional
            || self.resource_limits
            || self.tx_return_timing_open
            || self.zero_tag_alone_open
            || self.e2e_in_use_open
            || self.tx_checks_at_commit
            || self.restart_open
            || self.recover_without_requeue
            || self.predeclared_delete_open
            || self.no_ack_tag_open
            || self.confirm_nack_open
            || self.durable_exclusive_open
            || self.header_values_open
            || [
                self.cancel_notify,
                self.default_exchange_other_bindings,
                self.auto_delete_redeclare,
                self.exclusive_lock_first,
                self.if_empty_counts_unacked,
                self.unbind_failure_on_channel,
                self.predeclared_durable,
                self.passive_empty_last_queue,
                self.unbind_key_shortcut,
                self.x_match_unknown,
            ]
            .contains(&Permit::Either)
            || self.equivalence_code == EquivalenceCode::PreconditionFailedOrResourceLocked
    }

    /// The profile with this name.
    pub const fn named(name: ProfileName) -> Self {
        match name {
            ProfileName::Spec => Profile::spec(),
            ProfileName::Rabbitmq => Profile::rabbitmq(),
        }
    }
}

/// Exchange arguments RabbitMQ 3.10 compares on redeclaration.
pub const RABBITMQ_EXCHANGE_ARGUMENTS: [&str; 1] = ["alternate-exchange"];

/// Queue arguments RabbitMQ 3.10 compares on redeclaration (the ones it implements).
/// The queue-type arguments among them were probed (docs/rabbitmq-3.10.md Q67).
pub const RABBITMQ_QUEUE_ARGUMENTS: [&str; 18] = [
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-type",
    "x-single-active-consumer",
    "x-delivery-limit",
    "x-quorum-initial-group-size",
    "x-dead-letter-strategy",
    "x-queue-leader-locator",
    "x-queue-version",
];
