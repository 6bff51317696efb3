//! One focused test per behaviour the model covers, asserting the exact events a client sees.
//!
//! Each test names the specification rules it exercises (as `class method field rule-name`, from
//! `amqp0-9-1.extended.xml`), the errata sections, and for the `rabbitmq` profile the probe
//! question of `/work/probe/REPORT.md` (RabbitMQ 3.10.8) it agrees with. Every command is followed
//! by the deliveries the broker then makes on its own, taken eagerly: round robin under
//! `rabbitmq`, the first consumer offered under `spec`.

mod support;

use amqp_model::check::config::cmd::{bind, bind_exchange, consume, exchange, publish, queue, unbind};
use amqp_model::event::Reply;
use amqp_model::state::{Binding, Dest};
use amqp_model::{
    ChanRef, Command, ConnId, Content, Event, ExchangeKind, Internal, Method, Name, Profile, Removal, ReplyCode, Table,
    UsageError, Value,
};
use support::{
    ack, channel_closed, connected, consume_ok, declare_ok, deliver, drop_conn, fill, get, get_ok, message, msg,
    not_equivalent, passive_queue, qos, send, World, BOTH, RABBIT, SPEC,
};
use ExchangeKind::{Direct, Fanout, Topic};
use ReplyCode::{AccessRefused, NotAllowed, NotFound, PreconditionFailed, ResourceLocked, SyntaxError};

// ---------------------------------------------------------------------------------------------
// What these tests add to the client-side view of the model in `support`.

impl World {
    /// Run a command that must close its channel with `code`, naming the command's method; then
    /// reopen the channel.
    fn refused(&mut self, cmd: Command, code: ReplyCode) {
        let ch = cmd.channel().expect("a channel method");
        let method = cmd.method().expect("a method");
        assert_eq!(self.run(cmd.clone()), vec![channel_closed(ch, code, method)], "{cmd:?}");
        self.channel(ch.conn.0, ch.channel);
    }

    /// Run a publish on a channel in confirm mode whose other outcomes, if any, nack it
    /// (`confirm_nack_open` under `spec`); takes the first, the message handled and acked.
    pub fn confirmed(&mut self, cmd: Command) -> Vec<Event> {
        for b in self.0.apply_all(&cmd).expect("a command the client can send") {
            assert!(b.choices.iter().all(|c| c.why == "confirm all messages acknowledged"), "{cmd:?}: {:?}", b.choices);
        }
        self.take(cmd, 0)
    }

    /// Run a reject or nack with requeue whose other outcomes, if any, only dead-letter copies
    /// instead of holding them (`basic reject requeue 01` under `spec`, with no consumer of the
    /// queue on another channel); takes the first, every copy held.
    pub fn held(&mut self, cmd: Command) -> Vec<Event> {
        for b in self.0.apply_all(&cmd).expect("a command the client can send") {
            assert!(b.choices.iter().all(|c| c.why == "basic reject requeue 01"), "{cmd:?}: {:?}", b.choices);
        }
        self.take(cmd, 0)
    }

    /// Run a command that must close its connection with `code`, naming the command's method.
    fn fatal(&mut self, cmd: Command, code: ReplyCode) {
        let conn = cmd.connection().expect("a connection");
        assert_eq!(
            self.run(cmd.clone()),
            vec![Event::ConnectionClosed { conn, code, method: cmd.method() }],
            "{cmd:?}"
        );
        assert!(!self.0.connections.contains_key(&conn));
    }

    /// Run a command whose outcomes must be exactly these closes, each a channel close
    /// (`Ok(code)`) or a connection close (`Err(code)`), naming the command's method; then take
    /// the first and reopen the channel.
    fn closes_any(&mut self, cmd: Command, closes: &[Result<ReplyCode, ReplyCode>]) {
        let ch = cmd.channel().expect("a channel method");
        let method = cmd.method().expect("a method");
        let expected: Vec<Vec<Event>> = closes
            .iter()
            .map(|close| match *close {
                Ok(code) => vec![channel_closed(ch, code, method)],
                Err(code) => vec![Event::ConnectionClosed { conn: ch.conn, code, method: Some(method) }],
            })
            .collect();
        assert_eq!(self.outcomes(&cmd), expected, "{cmd:?}");
        self.take(cmd, 0);
        self.channel(ch.conn.0, ch.channel);
    }
}

// Commands.

fn send_mandatory(ch: ChanRef, exchange: &str, key: &str, body: &str) -> Command {
    publish(ch, exchange, key, true, Content::text(body))
}

fn nack(ch: ChanRef, delivery_tag: u64, multiple: bool, requeue: bool) -> Command {
    Command::BasicNack { ch, delivery_tag, multiple, requeue }
}

fn reject(ch: ChanRef, delivery_tag: u64, requeue: bool) -> Command {
    Command::BasicReject { ch, delivery_tag, requeue }
}

fn cancel(ch: ChanRef, tag: &str) -> Command {
    Command::BasicCancel { ch, consumer_tag: tag.into() }
}

fn consume_exclusive(ch: ChanRef, queue: &str, tag: &str) -> Command {
    Command::BasicConsume {
        ch,
        queue: queue.into(),
        consumer_tag: tag.into(),
        no_ack: false,
        exclusive: true,
        arguments: Default::default(),
    }
}

fn purge(ch: ChanRef, queue: &str) -> Command {
    Command::QueuePurge { ch, queue: queue.into() }
}

fn delete_queue(ch: ChanRef, queue: &str, if_unused: bool, if_empty: bool) -> Command {
    Command::QueueDelete { ch, queue: queue.into(), if_unused, if_empty }
}

fn delete_exchange(ch: ChanRef, exchange: &str, if_unused: bool) -> Command {
    Command::ExchangeDelete { ch, exchange: exchange.into(), if_unused }
}

fn exchange_flags(
    ch: ChanRef,
    name: &str,
    kind: ExchangeKind,
    durable: bool,
    auto_delete: bool,
    internal: bool,
) -> Command {
    Command::ExchangeDeclare {
        ch,
        exchange: name.into(),
        kind,
        passive: false,
        durable,
        auto_delete,
        internal,
        arguments: Default::default(),
    }
}

fn passive_exchange(ch: ChanRef, name: &str, kind: ExchangeKind) -> Command {
    match exchange_flags(ch, name, kind, false, false, false) {
        Command::ExchangeDeclare { ch, exchange, kind, durable, auto_delete, internal, arguments, .. } => {
            Command::ExchangeDeclare { ch, exchange, kind, passive: true, durable, auto_delete, internal, arguments }
        }
        _ => unreachable!(),
    }
}

fn other_kind(name: &str) -> ExchangeKind {
    ExchangeKind::Other(name.into())
}

// Events and set-ups.

/// The consumer tags that the events (all deliveries) went to, in order.
fn delivered_to(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .map(|e| match e {
            Event::Deliver { consumer_tag, .. } => consumer_tag.as_str(),
            other => panic!("expected only deliveries, got {other:?}"),
        })
        .collect()
}

/// Take `n` messages from `queue` by basic.get with manual acknowledgement, leaving them
/// unacknowledged (what the gets answer is not checked).
fn take(w: &mut World, ch: ChanRef, queue: &str, n: usize) {
    for _ in 0..n {
        w.run(get(ch, queue, false));
    }
}

/// A world with connection 1 open and queue `q` declared on its channel 1.
fn with_queue(profile: Profile) -> (World, ChanRef) {
    let (mut w, c) = connected(profile);
    w.declare(queue(c, "q", false, false, false));
    (w, c)
}

/// A world as [`with_queue`] makes it, with `n` messages `m0`, `m1`, ... published to `q` and the
/// first `taken` of them taken by basic.get with manual acknowledgement (see [`take`]).
fn with_taken(profile: Profile, n: usize, taken: usize) -> (World, ChanRef) {
    let (mut w, c) = with_queue(profile);
    fill(&mut w, c, "q", n);
    take(&mut w, c, "q", taken);
    (w, c)
}

// ---------------------------------------------------------------------------------------------
// exchange.declare

/// `exchange declare passive not-found`: a passive declare of a missing exchange closes the
/// channel with 404 (probe Q33); of an existing one it succeeds whatever type it names, even an
/// unknown one (Q10); a passive declare never checks the type (Q21).
#[test]
fn exchange_declare_passive() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.refused(passive_exchange(c, "x", Direct), NotFound);
        w.refused(passive_exchange(c, "x", other_kind("nonsense")), NotFound);
        w.replies(exchange(c, "x", Direct, false, false), Reply::ExchangeDeclareOk);
        w.replies(passive_exchange(c, "x", Fanout), Reply::ExchangeDeclareOk);
        w.replies(passive_exchange(c, "x", other_kind("nonsense")), Reply::ExchangeDeclareOk);
        w.replies(passive_exchange(c, "amq.topic", Fanout), Reply::ExchangeDeclareOk);
    }
}

/// `exchange declare exchange reserved`: a new name starting `amq.` is 403 (passive: 404);
/// `exchange default-access` (errata 14): the default exchange cannot be declared, even
/// passively, nor deleted: RabbitMQ says 403; the rule names no code, so under `spec` 530 on the
/// connection fits too, and for a declare the syntax rule's 406 (a non-empty name). `amq.default`
/// is not its alias (Q3, Q20). A predeclared exchange may be
/// redeclared equivalently: `amq.direct` is direct and durable (errata 20), anything else is 406.
#[test]
fn exchange_declare_reserved_names() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.refused(exchange(c, "amq.foo", Direct, false, false), AccessRefused);
        w.refused(passive_exchange(c, "amq.foo", Direct), NotFound);
        let delete_default = delete_exchange(c, "", false);
        if p == SPEC {
            let declare = [Ok(AccessRefused), Err(NotAllowed), Ok(PreconditionFailed)];
            w.closes_any(exchange(c, "", Direct, true, false), &declare);
            w.closes_any(passive_exchange(c, "", Direct), &declare);
            w.closes_any(delete_default, &[Ok(AccessRefused), Err(NotAllowed)]);
        } else {
            w.refused(exchange(c, "", Direct, true, false), AccessRefused);
            w.refused(passive_exchange(c, "", Direct), AccessRefused);
            w.refused(delete_default, AccessRefused);
        }
        w.refused(exchange(c, "amq.default", Direct, true, false), AccessRefused);
        w.refused(passive_exchange(c, "amq.default", Direct), NotFound);
        if p == SPEC {
            // Errata 20: their durability is not stated. The first redeclare settles it.
            let durable_redeclare = exchange(c, "amq.direct", Direct, true, false);
            let mut transient = w.clone();
            let outcomes = w.outcomes(&durable_redeclare);
            assert_eq!(outcomes[0], vec![Event::Reply { ch: c, reply: Reply::ExchangeDeclareOk }]);
            let refusals = not_equivalent(p).iter().map(|code| vec![channel_closed(c, *code, Method::ExchangeDeclare)]);
            assert_eq!(outcomes[1..], refusals.collect::<Vec<_>>()[..]);
            w.take(durable_redeclare.clone(), 0);
            // Taken transient, it stays so: a redeclare without durable is equivalent, one with is
            // not, and amq.fanout is transient too.
            transient.take(durable_redeclare, 1);
            transient.channel(1, 1);
            transient.replies(exchange(c, "amq.direct", Direct, false, false), Reply::ExchangeDeclareOk);
            transient.refused_any(exchange(c, "amq.fanout", Fanout, true, false), not_equivalent(p));
            transient.replies(exchange(c, "amq.fanout", Fanout, false, false), Reply::ExchangeDeclareOk);
        } else {
            w.replies(exchange(c, "amq.direct", Direct, true, false), Reply::ExchangeDeclareOk);
        }
        w.replies(exchange(c, "amq.fanout", Fanout, true, false), Reply::ExchangeDeclareOk);
        w.refused_any(exchange(c, "amq.direct", Direct, false, false), not_equivalent(p));
        w.refused_any(exchange(c, "amq.direct", Fanout, true, false), not_equivalent(p));
    }
}

/// Errata 20 under `spec`: with transient predeclared exchanges, a restart makes them again (the
/// server MUST predeclare them, `exchange required-instances`) but without their bindings, even
/// to a durable queue; with durable ones (RabbitMQ) the binding survives.
#[test]
fn a_restart_remakes_transient_predeclared_exchanges_without_their_bindings() {
    for durable in [true, false] {
        let (mut w, c) = connected(SPEC);
        // The branch where this declare is equivalent: amq.direct has the durability asked for.
        let declare = exchange(c, "amq.direct", Direct, durable, false);
        let ok = vec![Event::Reply { ch: c, reply: Reply::ExchangeDeclareOk }];
        let i = w.outcomes(&declare).iter().position(|o| *o == ok).expect("a declare-ok branch");
        w.take(declare, i);
        w.declare(queue(c, "d", true, false, false));
        w.replies(bind(c, "d", "amq.direct", "k"), Reply::QueueBindOk);
        w.run(Command::Restart);
        let c = w.open(1);
        w.replies(passive_exchange(c, "amq.direct", Direct), Reply::ExchangeDeclareOk);
        assert_eq!(w.run(send(c, "amq.direct", "k", "m")), vec![]);
        let expected: Vec<(&str, bool)> = if durable { vec![("m", false)] } else { vec![] };
        assert_eq!(w.ready("d"), expected, "durable amq.direct: {durable}");
    }
    // A restart with a binding to a predeclared exchange settles its durability when no declare
    // has: the binding survives, or is gone and a later redeclare finds amq.direct transient.
    let (mut w, c) = connected(SPEC);
    w.declare(queue(c, "d", true, false, false));
    w.replies(bind(c, "d", "amq.direct", "k"), Reply::QueueBindOk);
    let branches = w.0.apply_all(&Command::Restart).expect("a restart");
    assert_eq!(branches.len(), 2);
    for (b, kept) in branches.into_iter().zip([true, false]) {
        assert_eq!(b.broker.bindings.iter().any(|x| x.source.as_str() == "amq.direct"), kept);
        assert_eq!(b.broker.predeclared_durable, Some(kept));
    }
}

/// `exchange required-instances` asks the server to predeclare the amq. exchanges, and no rule
/// forbids deleting one: under `spec` (`predeclared_delete_open`) a delete of amq.direct is refused
/// (403 on the channel, or 530 on the connection) or deletes it (a passive declare is then 404)
/// until the next restart makes it again; RabbitMQ refuses with 403 (Q20).
#[test]
fn a_predeclared_exchange_may_be_deleted_under_spec_until_a_restart() {
    let (mut w, c) = connected(RABBIT);
    w.refused(delete_exchange(c, "amq.direct", false), AccessRefused);
    let (mut w, c) = connected(SPEC);
    let delete = delete_exchange(c, "amq.direct", false);
    let deleted = vec![Event::Reply { ch: c, reply: Reply::ExchangeDeleteOk }];
    let refused = vec![channel_closed(c, AccessRefused, Method::ExchangeDelete)];
    // Refused, with either code that fits (no rule names one: `any_fitting_code`).
    let not_allowed =
        vec![Event::ConnectionClosed { conn: ConnId(1), code: NotAllowed, method: Some(Method::ExchangeDelete) }];
    assert_eq!(w.outcomes(&delete), vec![refused, deleted.clone(), not_allowed]);
    assert_eq!(w.take(delete, 1), deleted);
    w.refused(passive_exchange(c, "amq.direct", Direct), NotFound);
    w.run(Command::Restart);
    let c = w.open(1);
    w.replies(passive_exchange(c, "amq.direct", Direct), Reply::ExchangeDeclareOk);
    assert!(w.0.exchanges["amq.direct"].durable);
}

/// `exchange declare passive equivalent` (errata 6) under RabbitMQ: a redeclare must match in
/// type, durable, auto-delete and internal, else 406 and the exchange is unchanged (Q10).
#[test]
fn rabbitmq_exchange_equivalence_compares_auto_delete_and_internal() {
    let (mut w, c) = connected(RABBIT);
    w.replies(exchange_flags(c, "x", Direct, false, false, false), Reply::ExchangeDeclareOk);
    w.replies(exchange_flags(c, "x", Direct, false, false, false), Reply::ExchangeDeclareOk);
    w.refused(exchange_flags(c, "x", Fanout, false, false, false), PreconditionFailed);
    w.refused(exchange_flags(c, "x", Direct, true, false, false), PreconditionFailed);
    w.refused(exchange_flags(c, "x", Direct, false, true, false), PreconditionFailed);
    w.refused(exchange_flags(c, "x", Direct, false, false, true), PreconditionFailed);
    let x = &w.0.exchanges["x"];
    assert_eq!((&x.kind, x.durable, x.auto_delete, x.internal), (&Direct, false, false, false));
}

/// `exchange declare passive equivalent` under the spec compares type and durable (and
/// arguments), while `exchange declare auto-delete amq_exchange_25` makes the server ignore
/// auto-delete for an existing exchange: redeclaring with another auto-delete or internal flag
/// succeeds and changes nothing.
#[test]
fn spec_exchange_equivalence_ignores_auto_delete_and_internal() {
    let (mut w, c) = connected(SPEC);
    w.replies(exchange_flags(c, "x", Direct, false, false, false), Reply::ExchangeDeclareOk);
    w.refused_any(exchange_flags(c, "x", Topic, false, false, false), not_equivalent(SPEC));
    w.refused_any(exchange_flags(c, "x", Direct, true, false, false), not_equivalent(SPEC));
    w.replies(exchange_flags(c, "x", Direct, false, true, false), Reply::ExchangeDeclareOk);
    w.replies(exchange_flags(c, "x", Direct, false, false, true), Reply::ExchangeDeclareOk);
    let x = &w.0.exchanges["x"];
    assert_eq!((x.auto_delete, x.internal), (false, false));
}

/// `exchange declare type support`: declaring a new exchange of an unknown type is a 503
/// command-invalid connection error naming exchange.declare (Q21).
#[test]
fn exchange_declare_unknown_type_is_503() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.fatal(exchange(c, "x", other_kind("nonsense"), false, false), ReplyCode::CommandInvalid);
        assert!(!w.0.exchanges.contains_key("x"));
    }
}

// ---------------------------------------------------------------------------------------------
// exchange.delete and exchange-to-exchange bindings

/// `exchange delete if-unused in-use`: with if-unused, an exchange that is the source of a
/// binding to a queue is not deleted (406). RabbitMQ (Q26): so is the source of an
/// exchange-to-exchange binding, while being only its destination does not count, and deleting
/// it removes that binding (under `spec` both are choices: if_unused_and_exchange_bindings).
#[test]
fn exchange_delete_if_unused() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        w.replies(exchange(c, "src", Fanout, false, false), Reply::ExchangeDeclareOk);
        w.replies(exchange(c, "dst", Fanout, false, false), Reply::ExchangeDeclareOk);
        w.replies(bind(c, "q", "src", ""), Reply::QueueBindOk);
        w.refused(delete_exchange(c, "src", true), PreconditionFailed);
        w.replies(unbind(c, "q", "src", ""), Reply::QueueUnbindOk);
        w.replies(delete_exchange(c, "src", true), Reply::ExchangeDeleteOk);
        if p == SPEC {
            continue;
        }
        w.replies(exchange(c, "src", Fanout, false, false), Reply::ExchangeDeclareOk);
        w.replies(bind_exchange(c, "dst", "src", ""), Reply::ExchangeBindOk);
        w.refused(delete_exchange(c, "src", true), PreconditionFailed);
        w.replies(delete_exchange(c, "dst", true), Reply::ExchangeDeleteOk);
        assert!(w.0.bindings.is_empty());
        w.replies(delete_exchange(c, "src", true), Reply::ExchangeDeleteOk);
        assert!(!w.0.exchanges.contains_key("src"));
    }
}

/// `exchange recommended-types` is a SHOULD: a profile that leaves out topic or headers treats
/// it as an unknown type (`exchange declare type support`: 503 on the connection for a
/// non-passive declare) and has none of its `amq.` instances (`exchange required-instances`
/// asks only for the types implemented); the required types and the other recommended one stay.
#[test]
fn a_recommended_type_left_out_is_an_unknown_type() {
    for (topic, headers) in [(false, true), (true, false)] {
        let mut profile = SPEC;
        profile.recommended_types = amqp_model::RecommendedTypes { topic, headers };
        let (mut w, c) = connected(profile);
        assert_eq!(w.0.exchanges.contains_key("amq.topic"), topic);
        assert_eq!(w.0.exchanges.contains_key("amq.headers"), headers);
        assert_eq!(w.0.exchanges.contains_key("amq.match"), headers);
        let (kept, left_out) = if topic { (Topic, ExchangeKind::Headers) } else { (ExchangeKind::Headers, Topic) };
        w.replies(exchange(c, "kept", kept, false, false), Reply::ExchangeDeclareOk);
        w.replies(exchange(c, "fan", Fanout, false, false), Reply::ExchangeDeclareOk);
        w.fatal(exchange(c, "left-out", left_out, false, false), ReplyCode::CommandInvalid);
    }
}

/// `exchange delete exchange exists`: deleting a missing exchange is 404 under the spec, while
/// RabbitMQ answers delete-ok (Q1). Under both, a predeclared `amq.` exchange cannot be deleted
/// (403), and RabbitMQ refuses every `amq.` name, even when no such exchange exists (Q1, Q3);
/// the default exchange is tested with its declare (`exchange_declare_reserved_names`).
#[test]
fn exchange_delete_missing_and_reserved() {
    let (mut w, c) = connected(RABBIT);
    w.replies(delete_exchange(c, "nope", false), Reply::ExchangeDeleteOk);
    w.replies(delete_exchange(c, "nope", true), Reply::ExchangeDeleteOk);

    let (mut w, c) = connected(SPEC);
    w.refused(delete_exchange(c, "nope", false), NotFound);
    // `exchange delete exchange exists`: a missing exchange is not found whatever its name
    // under the spec; RabbitMQ refuses every amq.* name before looking it up (probed).
    let (mut w, c) = connected(SPEC);
    w.refused(delete_exchange(c, "amq.foo", false), NotFound);
    let (mut w, c) = connected(RABBIT);
    w.refused(delete_exchange(c, "amq.foo", false), AccessRefused);

    // (Under `spec` the delete may also succeed: a_predeclared_exchange_may_be_deleted_under_spec_until_a_restart.)
    let (mut w, c) = connected(RABBIT);
    w.refused(delete_exchange(c, "amq.direct", false), AccessRefused);
    assert!(w.0.exchanges.contains_key("amq.direct"));
}

/// `exchange bind unique` and `queue bind unique`: a queue that a message reaches by several
/// paths (e1 -> e2 -> q, e1 -> e3 -> q, e1 -> q) holds one copy (Q32).
#[test]
fn exchange_to_exchange_paths_give_one_copy() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        for x in ["e1", "e2", "e3"] {
            w.replies(exchange(c, x, Fanout, false, false), Reply::ExchangeDeclareOk);
        }
        w.replies(bind_exchange(c, "e2", "e1", ""), Reply::ExchangeBindOk);
        w.replies(bind_exchange(c, "e3", "e1", ""), Reply::ExchangeBindOk);
        for x in ["e1", "e2", "e3"] {
            w.replies(bind(c, "q", x, ""), Reply::QueueBindOk);
        }
        assert_eq!(w.run(send(c, "e1", "k", "m")), vec![]);
        assert_eq!(w.ready("q"), vec![("m", false)]);
    }
}

/// `exchange bind cyclical`: cycles, including an exchange bound to itself, are allowed, and a
/// message published into one is routed once, wherever it enters (Q32); a mandatory confirmed
/// publish through the cycle is simply acked.
#[test]
fn exchange_to_exchange_cycles_route_once() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        w.replies(exchange(c, "e1", Fanout, false, false), Reply::ExchangeDeclareOk);
        w.replies(exchange(c, "e2", Fanout, false, false), Reply::ExchangeDeclareOk);
        w.replies(bind_exchange(c, "e2", "e1", ""), Reply::ExchangeBindOk);
        w.replies(bind_exchange(c, "e1", "e2", ""), Reply::ExchangeBindOk);
        w.replies(bind_exchange(c, "e1", "e1", ""), Reply::ExchangeBindOk);
        w.replies(bind(c, "q", "e2", ""), Reply::QueueBindOk);
        assert_eq!(w.run(send(c, "e1", "", "a")), vec![]);
        assert_eq!(w.run(send(c, "e2", "", "b")), vec![]);
        w.replies(Command::ConfirmSelect { ch: c }, Reply::ConfirmSelectOk);
        assert_eq!(w.confirmed(send_mandatory(c, "e1", "", "c")), vec![Event::Confirm { ch: c, seq: 1, ack: true }]);
        assert_eq!(w.ready("q"), vec![("a", false), ("b", false), ("c", false)]);
    }
}

/// Field doc of `exchange.declare auto-delete` with errata 25: an auto-delete exchange is deleted
/// when its last binding as a source goes, not before it ever had one (Q15).
#[test]
fn auto_delete_exchange_goes_with_its_last_binding() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        w.replies(exchange(c, "ad", Fanout, false, true), Reply::ExchangeDeclareOk);
        w.replies(bind(c, "q", "ad", "a"), Reply::QueueBindOk);
        w.replies(bind(c, "q", "ad", "b"), Reply::QueueBindOk);
        w.replies(unbind(c, "q", "ad", "a"), Reply::QueueUnbindOk);
        assert!(w.0.exchanges.contains_key("ad"));
        w.replies(unbind(c, "q", "ad", "b"), Reply::QueueUnbindOk);
        assert!(!w.0.exchanges.contains_key("ad"));
    }
}

/// `exchange declare auto-delete amq_exchange_02` recommends a delay: under `spec` the unused
/// exchange goes in a step of the broker's own (`Profile::deferred_deletion`), silent, owed at a
/// wait, and a binding made before it keeps the exchange; RabbitMQ deletes it at once.
#[test]
fn an_unused_auto_delete_exchange_may_go_later_under_spec() {
    let (mut w, c) = with_queue(SPEC);
    w.replies(exchange(c, "ad", Fanout, false, true), Reply::ExchangeDeclareOk);
    w.replies(bind(c, "q", "ad", "a"), Reply::QueueBindOk);
    let unbind_ok = vec![Event::Reply { ch: c, reply: Reply::QueueUnbindOk }];
    assert_eq!(w.0.apply(&unbind(c, "q", "ad", "a")).unwrap(), unbind_ok);
    assert!(w.0.exchanges["ad"].unused && w.0.owes_removal());
    let due = Internal::Remove(Removal::Exchange("ad".into()));
    let mut steps = Vec::new();
    w.0.internal_steps(&mut steps);
    assert_eq!(steps, std::slice::from_ref(&due));
    // Bound again before the broker got to it: in use, nothing owed.
    let bind_ok = vec![Event::Reply { ch: c, reply: Reply::QueueBindOk }];
    assert_eq!(w.0.apply(&bind(c, "q", "ad", "b")).unwrap(), bind_ok);
    assert!(!w.0.exchanges["ad"].unused && !w.0.owes_removal());
    assert_eq!(w.0.apply(&unbind(c, "q", "ad", "b")).unwrap(), unbind_ok);
    assert_eq!(w.0.step(&due), vec![], "the deletion is silent");
    assert!(!w.0.exchanges.contains_key("ad") && !w.0.owes_removal());
}

// ---------------------------------------------------------------------------------------------
// Routing by exchange type (topic and fanout are in tests/seed.rs, sections 4.1 and 4.3)

/// `queue bind routing-key direct-exchange-key-matching`: a direct exchange passes a message to
/// a binding exactly when the routing key equals the binding key, case included; the empty key
/// matches only the empty key (Q31).
#[test]
fn direct_exchange_matches_key_exactly() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        for (q, key) in [("lower", "k"), ("upper", "K"), ("empty", "")] {
            w.declare(queue(c, q, false, false, false));
            w.replies(bind(c, q, "amq.direct", key), Reply::QueueBindOk);
        }
        for key in ["k", "K", "", "k.k", "x"] {
            assert_eq!(w.run(send(c, "amq.direct", key, key)), vec![]);
        }
        assert_eq!(w.ready("lower"), vec![("k", false)]);
        assert_eq!(w.ready("upper"), vec![("K", false)]);
        assert_eq!(w.ready("empty"), vec![("", false)]);
    }
}

/// `exchange recommended-types` (headers) as RabbitMQ matches them (Q30): `x-match=all` (the
/// default) needs every binding argument present with an equal value, `any` at least one;
/// arguments named `x-...` take no part, so `any` with none left matches nothing and `all` with
/// none left matches everything; values compare by type as well (the string "1" is not 1).
#[test]
fn headers_exchange_matches_all_or_any() {
    let int = |k: &str, v: i64| (Name::from(k), Value::Int(v));
    let text = |k: &str, v: &str| (Name::from(k), Value::Str(v.into()));
    let bindings: [(&str, Table); 5] = [
        ("all", [text("x-match", "all"), int("a", 1), int("b", 2)].into()),
        ("any", [text("x-match", "any"), int("a", 1), int("b", 2)].into()),
        ("plain", Table::new()),
        ("any-empty", [text("x-match", "any")].into()),
        ("x-ignored", [int("a", 1), text("x-foo", "z")].into()),
    ];
    let messages: [(&str, Table); 5] = [
        ("ab", [int("a", 1), int("b", 2)].into()),
        ("a", [int("a", 1)].into()),
        ("b3", [int("b", 3)].into()),
        ("none", Table::new()),
        ("a-text", [text("a", "1"), text("x-foo", "other")].into()),
    ];
    for p in BOTH {
        let (mut w, c) = connected(p);
        for (q, arguments) in &bindings {
            w.declare(queue(c, q, false, false, false));
            let cmd = Command::QueueBind {
                ch: c,
                queue: (*q).into(),
                exchange: "amq.headers".into(),
                routing_key: "".into(),
                arguments: arguments.clone(),
            };
            w.replies(cmd, Reply::QueueBindOk);
        }
        for (body, headers) in &messages {
            let content = Content { body: (*body).into(), headers: headers.clone(), ..Content::default() };
            assert_eq!(w.run(publish(c, "amq.headers", "", false, content)), vec![]);
        }
        let bodies = |q: &str| w.ready(q).into_iter().map(|(b, _)| b).collect::<Vec<_>>();
        assert_eq!(bodies("all"), ["ab"]);
        assert_eq!(bodies("any"), ["ab", "a"]);
        assert_eq!(bodies("plain"), ["ab", "a", "b3", "none", "a-text"]);
        assert_eq!(bodies("any-empty"), Vec::<&str>::new());
        assert_eq!(bodies("x-ignored"), ["ab", "a"]);
    }
}

/// A headers binding's `x-match` must be a value the broker knows (Q30, Q46): RabbitMQ refuses
/// any other, and a non-string, with 406 at queue.bind and exchange.bind from a headers
/// exchange, not on other types, not at unbind; under `spec`, which names no values, accepted or
/// refused.
#[test]
fn an_unknown_x_match_is_refused_at_the_binding() {
    let args =
        |m: Value| -> amqp_model::Table { [(Name::from("x-match"), m), (Name::from("a"), Value::Int(1))].into() };
    let bind_to = |c: ChanRef, x: &str, m: Value| Command::QueueBind {
        ch: c,
        queue: "q".into(),
        exchange: x.into(),
        routing_key: "".into(),
        arguments: args(m),
    };
    let s = |v: &str| Value::Str(v.into());
    for (m, known) in [
        (s("all"), true),
        (s("any-with-x"), true),
        (s("all-with-x"), true),
        (s("bogus"), false),
        (s("ALL"), false),
        (Value::Int(1), false),
        (Value::Bytes(b"all".to_vec()), false),
    ] {
        let (mut w, c) = connected(RABBIT);
        w.declare(queue(c, "q", false, false, false));
        if known {
            w.replies(bind_to(c, "amq.headers", m.clone()), Reply::QueueBindOk);
        } else {
            w.refused(bind_to(c, "amq.headers", m.clone()), PreconditionFailed);
        }
        let (mut w, c) = connected(RABBIT);
        w.declare(queue(c, "q", false, false, false));
        w.replies(bind_to(c, "amq.direct", m.clone()), Reply::QueueBindOk);
        let e2e = Command::ExchangeBind {
            ch: c,
            destination: "amq.fanout".into(),
            source: "amq.headers".into(),
            routing_key: "".into(),
            arguments: args(m.clone()),
        };
        match known {
            true => w.replies(e2e, Reply::ExchangeBindOk),
            false => w.refused(e2e, PreconditionFailed),
        }
    }
    let (mut w, c) = connected(RABBIT);
    w.declare(queue(c, "q", false, false, false));
    let unbind = Command::QueueUnbind {
        ch: c,
        queue: "q".into(),
        exchange: "amq.headers".into(),
        routing_key: "".into(),
        arguments: args(s("bogus")),
    };
    w.replies(unbind, Reply::QueueUnbindOk);
    // Under spec: the -with-x modes are values like any other it does not know.
    let (mut w, c) = connected(SPEC);
    w.declare(queue(c, "q", false, false, false));
    for m in [s("bogus"), s("all-with-x")] {
        let branches = w.0.apply_all(&bind_to(c, "amq.headers", m)).unwrap();
        let closed: Vec<bool> =
            branches.iter().map(|b| b.events.iter().any(|e| matches!(e, Event::ChannelClosed { .. }))).collect();
        assert_eq!(closed, [false, true]);
    }
}

/// Headers values of different types (Q42): RabbitMQ matches numbers by value; under `spec` the
/// broker's reading (which types it counts equal) is narrowed by each message whose routing
/// depends on it, and holds for the later ones.
#[test]
fn headers_values_of_other_types_match_as_the_broker_reads_them() {
    let bind = |c: ChanRef| Command::QueueBind {
        ch: c,
        queue: "q".into(),
        exchange: "amq.headers".into(),
        routing_key: "".into(),
        arguments: [(Name::from("n"), Value::Int(1))].into(),
    };
    let msg = |body: &str, v: Value| Content {
        body: body.into(),
        headers: [(Name::from("n"), v)].into(),
        ..Content::default()
    };
    let octet = Value::Sized(amqp_model::IntType::U8, 1);
    let (mut w, c) = connected(RABBIT);
    w.declare(queue(c, "q", false, false, false));
    w.replies(bind(c), Reply::QueueBindOk);
    assert_eq!(w.run(publish(c, "amq.headers", "", false, msg("m1", octet.clone()))), vec![]);
    assert_eq!(w.ready("q").len(), 1);

    let (mut w, c) = connected(SPEC);
    w.declare(queue(c, "q", false, false, false));
    w.replies(bind(c), Reply::QueueBindOk);
    // Values of one type route alike under both readings: no choice yet.
    let same = w.0.apply_all(&publish(c, "amq.headers", "", false, msg("m0", Value::Int(1)))).unwrap();
    assert_eq!(same.len(), 1);
    let branches = w.0.apply_all(&publish(c, "amq.headers", "", false, msg("m1", octet.clone()))).unwrap();
    assert_eq!(branches.len(), 2);
    for (b, matched) in branches.into_iter().zip([true, false]) {
        let mut w = World(b.broker);
        w.run(publish(c, "amq.headers", "", false, msg("m0", Value::Int(1))));
        let wide = Value::Sized(amqp_model::IntType::I64, 1);
        let later = w.0.apply_all(&publish(c, "amq.headers", "", false, msg("m2", wide))).unwrap();
        assert_eq!(later.len(), 1, "the reading is settled for integers of other widths");
        // Whether a timestamp is an integer like the others is still open.
        let ts = w.0.apply_all(&publish(c, "amq.headers", "", false, msg("m3", Value::Timestamp(1)))).unwrap();
        assert_eq!(ts.len(), if matched { 2 } else { 1 });
        let w = World(later.into_iter().next().unwrap().broker);
        let bodies: Vec<String> = w.ready("q").into_iter().map(|(b, _)| b.to_string()).collect();
        let want: &[&str] = if matched { &["m1", "m0", "m2"] } else { &["m0"] };
        assert_eq!(bodies, want);
    }
}

// ---------------------------------------------------------------------------------------------
// queue.declare

/// `queue declare queue default-name`: an empty name gets a unique server-generated one
/// (`amq.gen-...`, Q37), returned in declare-ok.
#[test]
fn queue_declare_server_named() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        let a = w.declare(queue(c, "", false, false, false));
        let b = w.declare(queue(c, "", false, true, true));
        assert!(a.as_str().starts_with("amq.gen-") && b.as_str().starts_with("amq.gen-"), "{a} {b}");
        assert_ne!(a, b);
        assert!(w.0.queues.contains_key(&a) && w.0.queues.contains_key(&b));
    }
}

/// `queue declare passive passive`: a passive declare of a missing queue is 404 (Q33); of an
/// existing one it ignores the flags (Q11) and reports the ready messages (not the unacked
/// ones) and the consumers on any connection (Q36). `""` with passive names no queue, even
/// after a declare on the channel (Q4).
#[test]
fn queue_declare_passive() {
    let (mut w, c) = with_queue(RABBIT);
    w.refused(passive_queue(c, "nope"), NotFound);
    fill(&mut w, c, "q", 3);
    assert_eq!(w.run(get(c, "q", false)), vec![get_ok(c, 1, false, "q", 2, msg("", "q", "m0"))]);
    assert_eq!(w.run(passive_queue(c, "q")), vec![declare_ok(c, "q", 2, 0)]);
    let other = w.open(2);
    w.replies(qos(other, 1, false), Reply::QosOk);
    assert_eq!(
        w.run(consume(other, "q", "A", false)),
        vec![consume_ok(other, "A"), deliver(other, "A", 1, false, "q", msg("", "q", "m1"))]
    );
    let flagged = Command::QueueDeclare {
        ch: c,
        queue: "q".into(),
        passive: true,
        durable: true,
        exclusive: true,
        auto_delete: true,
        arguments: Default::default(),
    };
    assert_eq!(w.run(flagged), vec![declare_ok(c, "q", 1, 1)]);
    assert_eq!(w.run(passive_queue(c, "")), vec![channel_closed(c, NotFound, Method::QueueDeclare)]);

    let (mut w, c) = connected(SPEC);
    w.refused(passive_queue(c, "nope"), NotFound);
}

/// `queue declare exclusive exclusive` (errata 7, 8): another connection may not declare,
/// passively declare, bind, unbind, purge, delete, consume from or get from an exclusive queue:
/// 405, naming the method (Q9). The owner's other channels may use it, anyone may publish to it
/// through the default exchange, and it goes with its connection (errata 5, 19).
#[test]
fn exclusive_queue_is_locked_to_its_connection() {
    for p in BOTH {
        let (mut w, owner) = connected(p);
        w.declare(queue(owner, "x", false, true, false));
        w.replies(bind(owner, "x", "amq.direct", "k"), Reply::QueueBindOk);
        let other = w.open(2);
        for cmd in [
            queue(other, "x", false, true, false),
            queue(other, "x", false, false, false),
            queue(other, "x", true, false, false),
            passive_queue(other, "x"),
            bind(other, "x", "amq.direct", "k2"),
            unbind(other, "x", "amq.direct", "k"),
            purge(other, "x"),
            delete_queue(other, "x", false, false),
            delete_queue(other, "x", true, false),
            consume(other, "x", "A", false),
            get(other, "x", false),
        ] {
            // The lock's 405 first; under spec another rule's failure may come instead (the test
            // after this one).
            let locked = vec![channel_closed(other, ResourceLocked, cmd.method().unwrap())];
            assert_eq!(w.outcomes(&cmd)[0], locked, "{cmd:?}");
            w.take(cmd, 0);
            w.channel(2, 1);
        }
        assert_eq!(w.run(send(other, "", "x", "m")), vec![]);
        let second = w.channel(1, 2);
        assert_eq!(
            w.run(consume(second, "x", "O", false)),
            vec![consume_ok(second, "O"), deliver(second, "O", 1, false, "x", msg("", "x", "m"))]
        );
        assert_eq!(w.run(drop_conn(owner)), vec![]);
        w.refused(passive_queue(other, "x"), NotFound);
        assert!(w.0.bindings.is_empty());
    }
}

/// `queue declare exclusive exclusive` with errata 5: under `spec` the queue of a closed connection
/// goes in a step of the broker's own (`Profile::deferred_deletion`), silent, owed at a wait;
/// until then it is locked to every connection, one that reuses the owner's id included.
/// RabbitMQ deletes it inside the close.
#[test]
fn a_closed_connections_exclusive_queue_may_go_later_under_spec() {
    let (mut w, owner) = connected(SPEC);
    w.declare(queue(owner, "x", false, true, false));
    w.replies(bind(owner, "x", "amq.direct", "k"), Reply::QueueBindOk);
    let other = w.open(2);
    assert_eq!(w.0.apply(&drop_conn(owner)).unwrap(), vec![]);
    assert!(w.0.queues["x"].orphaned && w.0.owes_removal());
    let mut steps = Vec::new();
    w.0.internal_steps(&mut steps);
    assert_eq!(steps, [Internal::Remove(Removal::Queue("x".into()))]);
    let again = ChanRef { conn: ConnId(1), channel: 1 };
    w.0.apply(&Command::ConnectionOpen { conn: again.conn }).unwrap();
    w.0.apply(&Command::ChannelOpen { ch: again }).unwrap();
    for ch in [other, again] {
        let refused = w.0.apply(&passive_queue(ch, "x")).unwrap();
        assert_eq!(refused, vec![channel_closed(ch, ResourceLocked, Method::QueueDeclare)]);
        w.0.apply(&Command::ChannelOpen { ch }).unwrap();
    }
    assert_eq!(w.0.step(&steps[0]), vec![], "the deletion is silent");
    assert!(!w.0.owes_removal() && w.0.bindings.is_empty());
    w.refused(passive_queue(other, "x"), NotFound);

    let (mut w, owner) = connected(RABBIT);
    w.declare(queue(owner, "x", false, true, false));
    let other = w.open(2);
    assert_eq!(w.0.apply(&drop_conn(owner)).unwrap(), vec![]);
    assert!(!w.0.queues.contains_key("x") && !w.0.owes_removal());
    w.refused(passive_queue(other, "x"), NotFound);
}

/// `queue declare exclusive exclusive` against another rule that refuses the same command: under
/// `spec` the lock's 405 or the other rule's failure (errata 8: the text orders no checks);
/// RabbitMQ checks the lock first, but a bind's exchange before it. A command only the lock
/// refuses gets 405 alone.
#[test]
fn a_locked_queue_refused_by_another_rule_too_may_answer_either() {
    let method = |cmd: &Command| cmd.method().unwrap();
    for p in BOTH {
        let (mut w, owner) = connected(p);
        w.declare(queue(owner, "x", false, true, false));
        w.run(send(owner, "", "x", "m"));
        let other = w.open(2);
        let delete_if_empty = delete_queue(other, "x", false, true);
        let inequivalent = queue(other, "x", false, false, false);
        let missing_exchange = bind(other, "x", "nope", "k");
        for (cmd, other_code) in [(delete_if_empty, PreconditionFailed), (missing_exchange.clone(), NotFound)] {
            let mut want = vec![vec![channel_closed(other, ResourceLocked, method(&cmd))]];
            if p.name == SPEC.name {
                want.push(vec![channel_closed(other, other_code, method(&cmd))]);
            } else if cmd == missing_exchange {
                // RabbitMQ looks the exchange up first (docs/rabbitmq-3.10.md Q9).
                want = vec![vec![channel_closed(other, NotFound, method(&cmd))]];
            }
            assert_eq!(w.outcomes(&cmd), want, "{cmd:?}");
        }
        let codes: Vec<ReplyCode> = w
            .outcomes(&inequivalent)
            .into_iter()
            .map(|o| match o[..] {
                [Event::ChannelClosed { code, .. }] => code,
                _ => panic!("{o:?}"),
            })
            .collect();
        let want: &[ReplyCode] =
            if p.name == SPEC.name { &[ResourceLocked, PreconditionFailed] } else { &[ResourceLocked] };
        assert!(codes.iter().all(|c| want.contains(c)) && want.iter().all(|c| codes.contains(c)), "{codes:?}");
        w.refused_any(get(other, "x", false), &[ResourceLocked]);
    }
}

/// `queue declare passive equivalent` (errata 6): redeclaring with another durable or
/// auto-delete flag is 406. Another exclusive flag is 406 under the spec; RabbitMQ treats it as
/// a lock conflict, 405, in both directions and on the owner's connection too (Q11). A durable
/// exclusive queue is stored transient, so redeclaring it durable is equivalent (errata 30, Q12).
#[test]
fn queue_declare_equivalence() {
    let (mut w, c) = with_queue(RABBIT);
    w.refused(queue(c, "q", true, false, false), PreconditionFailed);
    w.refused(queue(c, "q", false, false, true), PreconditionFailed);
    w.refused(queue(c, "q", false, true, false), ResourceLocked);
    assert_eq!(w.run(queue(c, "q", false, false, false)), vec![declare_ok(c, "q", 0, 0)]);
    w.declare(queue(c, "x", false, true, false));
    w.refused(queue(c, "x", false, false, false), ResourceLocked);
    w.refused(queue(c, "x", false, true, true), PreconditionFailed);
    assert_eq!(w.run(queue(c, "x", true, true, false)), vec![declare_ok(c, "x", 0, 0)]);

    // The spec: any difference is "a channel exception" with no code named (406 or 405); one
    // in auto-delete alone may also be ignored (`queue declare auto-delete pre-existence`),
    // leaving the queue's flag as it was.
    let (mut w, c) = with_queue(SPEC);
    let either = not_equivalent(SPEC);
    w.refused_any(queue(c, "q", true, false, false), either);
    w.refused_any(queue(c, "q", false, true, false), either);
    let closes: Vec<Vec<Event>> =
        either.iter().map(|code| vec![channel_closed(c, *code, Method::QueueDeclare)]).collect();
    let auto_delete = queue(c, "q", false, false, true);
    assert_eq!(w.outcomes(&auto_delete), [vec![vec![declare_ok(c, "q", 0, 0)]], closes.clone()].concat());
    w.take(auto_delete, 0);
    assert!(!w.0.queues["q"].auto_delete);
    w.declare(queue(c, "x", false, true, false));
    w.refused_any(queue(c, "x", false, false, false), either);
    let auto_delete = queue(c, "x", false, true, true);
    assert_eq!(w.outcomes(&auto_delete), [vec![vec![declare_ok(c, "x", 0, 0)]], closes].concat());
    // Durable with exclusive: the readings of errata 30 (durable_exclusive_queue_is_transient).
    let durable = queue(c, "x", true, true, false);
    assert_eq!(w.outcomes(&durable)[0], vec![declare_ok(c, "x", 0, 0)]);
}

/// RabbitMQ reads an `x-queue-type` left out as `classic` when it compares a redeclare (Q65):
/// a queue declared without it is equivalent to one naming `classic` and not to one naming
/// `quorum`, and a queue declared `quorum` is not equivalent to one that leaves it out.
#[test]
fn rabbitmq_reads_a_missing_queue_type_as_classic() {
    let (mut w, c) = with_queue(RABBIT);
    let str_value = |t: &str| amqp_model::Value::Str(t.into());
    let typed = |t: &str| with_arguments(queue(c, "q", false, false, false), &[("x-queue-type", str_value(t))]);
    assert_eq!(w.run(typed("classic")), vec![declare_ok(c, "q", 0, 0)]);
    w.refused(typed("quorum"), PreconditionFailed);
    let (mut w, c) = connected(RABBIT);
    let quorum =
        with_arguments(queue(c, "r", true, false, false), &[("x-queue-type", amqp_model::Value::Str("quorum".into()))]);
    w.declare(quorum.clone());
    assert_eq!(w.run(quorum), vec![declare_ok(c, "r", 0, 0)]);
    w.refused(queue(c, "r", true, false, false), PreconditionFailed);
}

/// The declare `cmd` with its `arguments` table replaced by `args`.
fn with_arguments(mut cmd: Command, args: &[(&str, amqp_model::Value)]) -> Command {
    let table: amqp_model::Table = args.iter().map(|(k, v)| (Name::from(*k), v.clone())).collect();
    match &mut cmd {
        Command::QueueDeclare { arguments, .. } | Command::ExchangeDeclare { arguments, .. } => *arguments = table,
        _ => unreachable!("a declare"),
    }
    cmd
}

/// `queue declare passive equivalent` and `exchange declare passive equivalent` over arguments:
/// RabbitMQ compares only the arguments it implements, by value and type (Q10, Q11); the spec
/// gives no argument a meaning and compares them for semantic equivalence, so under `spec` tables
/// that differ are not equivalent or are (the entity keeps its arguments), and equal ones are.
#[test]
fn declare_equivalence_over_arguments() {
    use amqp_model::Value::{Int, Str};
    let (mut w, c) = connected(RABBIT);
    let q = |args: &[(&str, amqp_model::Value)]| with_arguments(queue(c, "q", false, false, false), args);
    let x = |args: &[(&str, amqp_model::Value)]| with_arguments(exchange(c, "x", Direct, false, false), args);
    w.declare(q(&[("x-max-length", Int(5)), ("x-foo", Str("a".into()))]));
    w.replies(x(&[("alternate-exchange", Str("ae".into()))]), Reply::ExchangeDeclareOk);
    // A known argument with another value, or another type, is never equivalent.
    w.refused_any(q(&[("x-max-length", Int(6)), ("x-foo", Str("a".into()))]), not_equivalent(RABBIT));
    w.refused_any(q(&[("x-max-length", Str("5".into())), ("x-foo", Str("a".into()))]), not_equivalent(RABBIT));
    w.refused_any(x(&[("alternate-exchange", Str("other".into()))]), not_equivalent(RABBIT));
    // An argument the broker does not implement is ignored.
    assert_eq!(w.run(q(&[("x-max-length", Int(5)), ("x-foo", Str("b".into()))])), vec![declare_ok(c, "q", 0, 0)]);
    w.replies(x(&[("alternate-exchange", Str("ae".into())), ("x-foo", Int(1))]), Reply::ExchangeDeclareOk);

    let (mut w, c) = connected(SPEC);
    let q = |args: &[(&str, amqp_model::Value)]| with_arguments(queue(c, "q", false, false, false), args);
    let x = |args: &[(&str, amqp_model::Value)]| with_arguments(exchange(c, "x", Direct, false, false), args);
    let stored = [("x-max-length", Int(5))];
    w.declare(q(&stored));
    w.replies(x(&stored), Reply::ExchangeDeclareOk);
    w.replies(x(&stored), Reply::ExchangeDeclareOk);
    assert_eq!(w.run(q(&stored)), vec![declare_ok(c, "q", 0, 0)]);
    let ok_q = vec![declare_ok(c, "q", 0, 0)];
    let ok_x = vec![Event::Reply { ch: c, reply: Reply::ExchangeDeclareOk }];
    for other in [vec![("x-max-length", Int(6))], vec![("x-max-length", Str("5".into()))], vec![]] {
        for (cmd, ok, method) in [(q(&other), &ok_q, Method::QueueDeclare), (x(&other), &ok_x, Method::ExchangeDeclare)]
        {
            let mut outcomes = w.outcomes(&cmd);
            outcomes.sort_by_key(|o| format!("{o:?}"));
            let mut expected = vec![ok.clone()];
            expected.extend(not_equivalent(SPEC).iter().map(|code| vec![channel_closed(c, *code, method)]));
            expected.sort_by_key(|o| format!("{o:?}"));
            assert_eq!(outcomes, expected, "{cmd:?}");
        }
    }
    // Taken as equivalent, the queue keeps the arguments it was declared with.
    let mut equivalent = w.clone();
    let changed = q(&[("x-max-length", Int(6))]);
    let i = equivalent.outcomes(&changed).iter().position(|o| *o == ok_q).expect("a declare-ok branch");
    equivalent.take(changed, i);
    assert_eq!(equivalent.0.queues["q"].arguments.get("x-max-length"), Some(&Int(5)));
    // Arguments never excuse another difference.
    w.refused_any(with_arguments(queue(c, "q", true, false, false), &[]), not_equivalent(SPEC));
}

/// Errata 30: the text does not say what durable with exclusive means. RabbitMQ stores such a
/// queue transient (Q12), so redeclaring it either way is equivalent; under `spec` that is the
/// first of three readings, settled once for the broker: stored durable as asked (a redeclare
/// without durable differs), or the combination refused (406).
#[test]
fn durable_exclusive_queue_is_transient() {
    let (mut w, c) = connected(RABBIT);
    w.declare(queue(c, "q", true, true, false));
    assert!(!w.0.queues["q"].durable);
    assert_eq!(w.run(queue(c, "q", false, true, false)), vec![declare_ok(c, "q", 0, 0)]);
    assert_eq!(w.run(queue(c, "q", true, true, false)), vec![declare_ok(c, "q", 0, 0)]);

    let (w, c) = connected(SPEC);
    let branches = w.0.apply_all(&queue(c, "q", true, true, false)).unwrap();
    assert_eq!(branches.len(), 3);
    let ok = vec![declare_ok(c, "q", 0, 0)];
    let redeclare = queue(c, "q", false, true, false);
    for (b, durable, refused) in
        branches.into_iter().zip([Some(false), Some(true), None]).map(|(b, d)| (b, d, d.is_none()))
    {
        let mut w = World(b.broker);
        if refused {
            assert_eq!(b.events, vec![channel_closed(c, PreconditionFailed, Method::QueueDeclare)]);
            // The reading holds for every later declare.
            w.channel(1, 1);
            w.refused(queue(c, "q2", true, true, false), PreconditionFailed);
            continue;
        }
        assert_eq!(b.events, ok);
        assert_eq!(w.0.queues["q"].durable, durable.unwrap());
        let again = w.outcomes(&redeclare);
        if durable == Some(true) {
            assert!(again.iter().all(|o| matches!(o[..], [Event::ChannelClosed { .. }])), "{again:?}");
        } else {
            assert_eq!(again, vec![ok.clone()]);
        }
        assert_eq!(w.outcomes(&queue(c, "q", true, true, false)), vec![ok.clone()]);
    }
}

/// `queue declare queue reserved`: a new queue named `amq.` is 403; passively, 404 (Q20).
#[test]
fn queue_declare_reserved_prefix() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.refused(queue(c, "amq.foo", false, false, false), AccessRefused);
        w.refused(passive_queue(c, "amq.foo"), NotFound);
    }
}

/// `exchange declare exchange syntax`, `queue declare queue syntax`: under the spec profile a
/// name outside letters, digits, `- _ . :` or longer than 127 is refused with 406, passively
/// too; RabbitMQ accepts any name (probed with a space and a slash).
#[test]
fn declare_name_syntax() {
    let long = "q".repeat(128);
    let (mut w, c) = connected(SPEC);
    for bad in ["x y", "q/1", "é", "x y".repeat(50).as_str()] {
        w.refused(exchange(c, bad, Direct, false, false), PreconditionFailed);
        w.refused(queue(c, bad, false, false, false), PreconditionFailed);
        // Passive: the name is still checked (406), or no queue has it (404).
        w.refused_any(passive_queue(c, bad), &[PreconditionFailed, NotFound]);
    }
    // Over 127 characters: the domains' length assertion names no code, 406 or 502.
    let too_long = [Ok(PreconditionFailed), Err(SyntaxError)];
    w.closes_any(exchange(c, &long, Direct, false, false), &too_long);
    w.closes_any(queue(c, &long, false, false, false), &too_long);
    w.closes_any(passive_queue(c, &long), &[Ok(PreconditionFailed), Ok(NotFound), Err(SyntaxError)]);
    let good = "Az09-_.:x";
    w.replies(exchange(c, good, Direct, false, false), Reply::ExchangeDeclareOk);
    assert_eq!(w.run(queue(c, &"q".repeat(127), false, false, false)).len(), 1);
    let (mut w, c) = connected(RABBIT);
    for bad in ["x y", "q/1"] {
        w.replies(exchange(c, bad, Direct, false, false), Reply::ExchangeDeclareOk);
        assert_eq!(w.run(queue(c, bad, false, false, false)), vec![declare_ok(c, bad, 0, 0)]);
    }
}

/// Field doc of `queue.declare auto-delete` with errata 5: an auto-delete queue is deleted once
/// its last consumer is gone (cancelled, or with its channel), and not before; one that never
/// had a consumer stays, even when used by basic.get (Q14).
#[test]
fn auto_delete_queue_goes_with_its_last_consumer() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.declare(queue(c, "ad", false, false, true));
        for tag in ["A", "B"] {
            assert_eq!(w.run(consume(c, "ad", tag, true)), vec![consume_ok(c, tag)]);
        }
        w.replies(cancel(c, "A"), Reply::CancelOk { consumer_tag: "A".into() });
        assert_eq!(w.run(passive_queue(c, "ad")), vec![declare_ok(c, "ad", 0, 1)]);
        w.replies(cancel(c, "B"), Reply::CancelOk { consumer_tag: "B".into() });
        w.refused(passive_queue(c, "ad"), NotFound);

        w.declare(queue(c, "ad2", false, false, true));
        let other = w.open(2);
        assert_eq!(w.run(consume(other, "ad2", "C", false)), vec![consume_ok(other, "C")]);
        assert_eq!(w.run(Command::ChannelClose { ch: other }), vec![Event::ChannelCloseOk { ch: other }]);
        assert!(!w.0.queues.contains_key("ad2"));

        w.declare(queue(c, "idle", false, false, true));
        w.run(send(c, "", "idle", "m"));
        assert_eq!(w.run(get(c, "idle", false)), vec![get_ok(c, 1, false, "idle", 0, msg("", "idle", "m"))]);
        assert_eq!(w.run(passive_queue(c, "idle")), vec![declare_ok(c, "idle", 0, 0)]);
    }
}

// ---------------------------------------------------------------------------------------------
// queue.purge, queue.delete

/// `queue purge 02`: purge drops the ready messages and reports how many; delivered,
/// unacknowledged ones stay, and come back at the head, redelivered, when their channel closes
/// (Q25).
#[test]
fn purge_leaves_unacked_messages() {
    for p in BOTH {
        let (mut w, c) = with_taken(p, 5, 2);
        w.replies(purge(c, "q"), Reply::QueuePurgeOk { message_count: 3 });
        assert_eq!(w.ready("q"), vec![]);
        assert_eq!(w.run(Command::ChannelClose { ch: c }), vec![Event::ChannelCloseOk { ch: c }]);
        assert_eq!(w.ready("q"), vec![("m0", true), ("m1", true)]);
        let c = w.channel(1, 1);
        w.replies(purge(c, "q"), Reply::QueuePurgeOk { message_count: 2 });
        w.replies(purge(c, "q"), Reply::QueuePurgeOk { message_count: 0 });
    }
}

/// `queue delete if-unused in-use` and `queue delete if-empty not-empty`: 406 for a queue with a
/// consumer, or with ready messages. Bindings do not make a queue used, and under RabbitMQ
/// unacknowledged messages do not make it non-empty (Q26; the spec's two readings:
/// [`if_empty_with_only_unacked_messages`]).
#[test]
fn queue_delete_if_unused_and_if_empty() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        let other = w.open(2);
        w.run(consume(other, "q", "A", false));
        w.refused(delete_queue(c, "q", true, false), PreconditionFailed);

        w.declare(queue(c, "bound", false, false, false));
        w.replies(bind(c, "bound", "amq.direct", "k"), Reply::QueueBindOk);
        w.replies(delete_queue(c, "bound", true, false), Reply::QueueDeleteOk { message_count: 0 });
        assert!(w.0.bindings.is_empty());

        w.declare(queue(c, "full", false, false, false));
        fill(&mut w, c, "full", 1);
        w.refused(delete_queue(c, "full", false, true), PreconditionFailed);
        w.run(get(c, "full", false));
        let delete = delete_queue(c, "full", false, true);
        let last = w.outcomes(&delete).len() - 1;
        assert_eq!(
            w.take(delete, last),
            vec![Event::Reply { ch: c, reply: Reply::QueueDeleteOk { message_count: 0 } }]
        );
        assert!(!w.0.queues.contains_key("full"));
    }
}

/// RabbitMQ's consumer cancel notification (Q8): deleting a queue cancels its consumers with a
/// `basic.cancel` from the server; the spec has no such method, the consumer just ends. Either
/// way the deleted queue's unacknowledged deliveries may still be settled, once
/// (`basic ack multiple exists`); a requeue goes nowhere.
#[test]
fn queue_delete_cancels_consumers() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        let other = w.open(2);
        w.run(consume(other, "q", "A", false));
        assert_eq!(delivered_to(&fill(&mut w, c, "q", 2)), ["A", "A"]);
        let told = vec![
            Event::Reply { ch: c, reply: Reply::QueueDeleteOk { message_count: 0 } },
            Event::Cancel { ch: other, consumer_tag: "A".into() },
        ];
        let silent = told[..1].to_vec();
        // RabbitMQ tells the consumer; the spec allows a server-sent basic.cancel (extended
        // XML) without requiring one, and then the untold consumer's tag is freed or stays
        // reserved (see consumer_tag_of_an_untold_consumer_may_stay_reserved).
        let expected = if p == RABBIT { vec![told] } else { vec![told, silent.clone(), silent] };
        let delete = delete_queue(c, "q", false, false);
        assert_eq!(w.outcomes(&delete), expected);
        w.take(delete, 0);
        assert!(w.0.channel(other).expect("open").consumers.is_empty());
        assert_eq!(w.run(ack(other, 1, false)), vec![]);
        assert_eq!(w.run(reject(other, 2, true)), vec![]);
        assert!(!w.0.queues.contains_key("q"));
        w.refused(ack(other, 1, false), PreconditionFailed);
    }
}

/// The channel that deletes the queue it consumes from: RabbitMQ 3.10.8 sends the delete-ok,
/// then the consumer's basic.cancel (docs/rabbitmq-3.10.md Q63); under `spec`, where the cancel
/// is a choice, so is its place: before the delete-ok or after (or none).
#[test]
fn a_deleting_channels_own_consumer_hears_of_it_after_the_delete_ok_on_rabbitmq() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        w.run(consume(c, "q", "A", false));
        let ok = Event::Reply { ch: c, reply: Reply::QueueDeleteOk { message_count: 0 } };
        let cancel = Event::Cancel { ch: c, consumer_tag: "A".into() };
        let after = vec![ok.clone(), cancel.clone()];
        let before = vec![cancel, ok.clone()];
        let expected = if p == RABBIT { vec![after] } else { vec![after, vec![ok.clone()], vec![ok], before] };
        assert_eq!(w.outcomes(&delete_queue(c, "q", false, false)), expected, "{p:?}");
    }
}

/// `basic consume consumer-tag 01` under `spec`: a consumer whose queue was deleted without a
/// `basic.cancel` to tell it may keep its tag reserved on its channel until the client cancels
/// it: a consume reusing the tag is then 530, as for any live tag; the cancel frees it without
/// touching a queue declared again under the old name (here auto-delete, which a detach would
/// have deleted). Freed, the tag can be used at once.
#[test]
fn consumer_tag_of_an_untold_consumer_may_stay_reserved() {
    let (mut w, c) = connected(SPEC);
    w.declare(queue(c, "q", false, false, false));
    let other = w.open(2);
    w.run(consume(other, "q", "A", false));
    let delete = delete_queue(c, "q", false, false);
    let branches = w.0.apply_all(&delete).expect("a delete");
    let scripts: Vec<Vec<u8>> = branches.iter().map(|b| b.script()).collect();
    assert_eq!(scripts, [vec![0], vec![1, 0], vec![1, 1]], "told; untold, tag freed; untold, tag reserved");
    let mut freed = World(w.0.clone());
    freed.take(delete.clone(), 1);
    freed.declare(queue(c, "q", false, false, true));
    assert_eq!(
        freed.run(consume(other, "q", "A", false)),
        vec![Event::Reply { ch: other, reply: Reply::ConsumeOk { consumer_tag: "A".into() } }]
    );

    // Reserved: the cancel frees the tag and leaves the new auto-delete q and its consumer B alone.
    let mut cancelled = World(w.0.clone());
    cancelled.take(delete.clone(), 2);
    cancelled.declare(queue(c, "q", false, false, true));
    cancelled.run(consume(c, "q", "B", false));
    cancelled.replies(cancel(other, "A"), Reply::CancelOk { consumer_tag: "A".into() });
    assert!(cancelled.0.queues.contains_key("q"), "the new q keeps its consumer B");
    let ok = vec![Event::Reply { ch: other, reply: Reply::ConsumeOk { consumer_tag: "A".into() } }];
    assert_eq!(cancelled.run(consume(other, "q", "A", false)), ok);
    // Reserved and not cancelled: reusing it is 530.
    w.take(delete, 2);
    w.declare(queue(c, "q", false, false, true));
    let refused = Event::ConnectionClosed { conn: ConnId(2), code: NotAllowed, method: Some(Method::BasicConsume) };
    assert_eq!(w.run(consume(other, "q", "A", false)), vec![refused]);
}

/// `queue delete queue must-exist`: deleting a missing queue is 404 under the spec; RabbitMQ
/// answers delete-ok with count 0, whatever the flags and even for an `amq.` name (Q1).
#[test]
fn queue_delete_missing() {
    let (mut w, c) = connected(RABBIT);
    for cmd in [
        delete_queue(c, "nope", false, false),
        delete_queue(c, "nope", true, true),
        delete_queue(c, "amq.foo", false, false),
    ] {
        w.replies(cmd, Reply::QueueDeleteOk { message_count: 0 });
    }
    let (mut w, c) = connected(SPEC);
    w.refused(delete_queue(c, "nope", false, false), NotFound);
}

// ---------------------------------------------------------------------------------------------
// queue.bind, queue.unbind, and "" as the last declared queue

/// `queue bind exchange default-exchange`, `queue unbind exchange default-exchange`,
/// `exchange bind source default-exchange`: the spec accepts the default exchange in bindings;
/// RabbitMQ refuses every bind and unbind naming it with 403 (errata 14, Q3).
#[test]
fn default_exchange_bindings() {
    let (mut w, c) = with_queue(RABBIT);
    w.refused(bind(c, "q", "", "q"), AccessRefused);
    w.refused(unbind(c, "q", "", "q"), AccessRefused);
    w.refused(bind_exchange(c, "amq.fanout", "", ""), AccessRefused);
    w.refused(bind_exchange(c, "", "amq.fanout", ""), AccessRefused);

    // The spec: queue.bind may name it; the other three are allowed by their field rules and
    // forbidden by `exchange default-access`, so either answer is allowed.
    let (mut w, c) = with_queue(SPEC);
    w.replies(bind(c, "q", "", "alias"), Reply::QueueBindOk);
    assert_eq!(w.run(send(c, "", "alias", "m")), vec![]);
    assert_eq!(w.ready("q"), vec![("m", false)]);
    for (cmd, ok) in [
        (bind_exchange(c, "amq.fanout", "", ""), Reply::ExchangeBindOk),
        (bind_exchange(c, "", "amq.fanout", ""), Reply::ExchangeBindOk),
        (unbind(c, "q", "", "alias"), Reply::QueueUnbindOk),
    ] {
        let method = cmd.method().expect("a method");
        let refused = vec![channel_closed(c, AccessRefused, method)];
        assert_eq!(w.outcomes(&cmd), vec![vec![Event::Reply { ch: c, reply: ok }], refused], "{cmd:?}");
        w.take(cmd, 0);
    }
    assert_eq!(w.0.bindings.len(), 2, "the two exchange bindings");

    // An unbind of the automatic binding (key: the queue's own name): refused, or accepted
    // with the binding kept, or accepted with it gone (the text does not say it can be
    // removed, nor that it cannot). Gone, "" no longer routes to q by its name, until q is
    // declared again after a deletion.
    let cmd = unbind(c, "q", "", "q");
    let ok = vec![Event::Reply { ch: c, reply: Reply::QueueUnbindOk }];
    let refused = vec![channel_closed(c, AccessRefused, Method::QueueUnbind)];
    assert_eq!(w.outcomes(&cmd), vec![ok.clone(), refused, ok.clone()]);
    let mut kept = World(w.0.clone());
    kept.take(cmd.clone(), 0);
    assert_eq!(kept.run(send(c, "", "q", "m2")), vec![]);
    assert_eq!(kept.ready("q"), vec![("m", false), ("m2", false)]);
    w.take(cmd.clone(), 2);
    assert_eq!(w.run(send(c, "", "q", "m2")), vec![]);
    assert_eq!(w.ready("q"), vec![("m", false)], "no longer routed by its name");
    assert_eq!(w.outcomes(&cmd).len(), 2, "once gone, nothing is left to remove: unbind-ok or 403");
    w.replies(delete_queue(c, "q", false, false), Reply::QueueDeleteOk { message_count: 1 });
    w.declare(queue(c, "q", false, false, false));
    assert_eq!(w.run(send(c, "", "q", "m3")), vec![]);
    assert_eq!(w.ready("q"), vec![("m3", false)], "a new q has its automatic binding");
}

/// `queue bind queue must-exist` and `queue bind exchange exchange-existence`: 404 (Q2).
/// `queue bind duplicates`: binding twice is accepted, and `queue bind unique`: a message
/// matching several bindings of a queue is queued once.
#[test]
fn queue_bind_existence_and_duplicates() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        w.refused(bind(c, "nope", "amq.topic", "k"), NotFound);
        w.refused(bind(c, "q", "nope", "k"), NotFound);
        for key in ["a.*", "a.*", "#"] {
            w.replies(bind(c, "q", "amq.topic", key), Reply::QueueBindOk);
        }
        assert_eq!(w.0.bindings.len(), 2);
        assert_eq!(w.run(send(c, "amq.topic", "a.b", "m")), vec![]);
        assert_eq!(w.ready("q"), vec![("m", false)]);
    }
}

/// `queue unbind queue must-exist`, `queue unbind exchange must-exist`: the spec answers 404
/// when the queue or exchange is missing, on the channel (the field rules) or on the connection
/// (`queue unbind 01`: a failed unbind is a connection exception); RabbitMQ answers unbind-ok
/// for a missing queue, exchange or binding (Q2). An unbound queue no longer receives.
#[test]
fn queue_unbind() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        w.replies(bind(c, "q", "amq.direct", "k"), Reply::QueueBindOk);
        w.replies(unbind(c, "q", "amq.direct", "k"), Reply::QueueUnbindOk);
        assert_eq!(w.run(send(c, "amq.direct", "k", "m")), vec![]);
        assert_eq!(w.ready("q"), vec![]);
        let missing = [unbind(c, "nope", "amq.direct", "k"), unbind(c, "q", "nope", "k")];
        for cmd in missing {
            if p == RABBIT {
                w.replies(cmd, Reply::QueueUnbindOk);
            } else {
                let on_channel = vec![channel_closed(c, NotFound, Method::QueueUnbind)];
                let on_connection =
                    vec![Event::ConnectionClosed { conn: c.conn, code: NotFound, method: Some(Method::QueueUnbind) }];
                assert_eq!(w.outcomes(&cmd), vec![on_channel, on_connection]);
                w.take(cmd, 0);
                w.channel(1, 1);
            }
        }
    }
    // RabbitMQ (Q9): even on another connection's exclusive queue, a missing binding is no error,
    // while unbinding an existing one is 405.
    let (mut w, c) = with_queue(RABBIT);
    w.replies(unbind(c, "q", "amq.direct", "never"), Reply::QueueUnbindOk);
    let owner = w.open(2);
    w.declare(queue(owner, "x", false, true, false));
    w.replies(bind(owner, "x", "amq.direct", "k"), Reply::QueueBindOk);
    w.replies(unbind(c, "x", "amq.direct", "never"), Reply::QueueUnbindOk);
    w.refused(unbind(c, "x", "amq.direct", "k"), ResourceLocked);
}

/// `queue bind queue queue-known` and its siblings (`queue unbind/purge/delete queue
/// queue-known`): `""` names the last queue declared on the channel, for bind, unbind, purge,
/// get, consume and delete (Q4); with both queue and routing key empty, the binding key is that
/// queue's name (field doc of `queue.bind routing-key`). A passive declare sets it too; deleting
/// the queue does not reset it.
#[test]
fn empty_queue_name_is_the_last_declared_queue() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        let q = w.declare(queue(c, "", false, false, false));
        w.replies(bind(c, "", "amq.fanout", ""), Reply::QueueBindOk);
        let key = Binding {
            source: "amq.fanout".into(),
            dest: Dest::Queue(q.clone()),
            key: q.clone(),
            arguments: Default::default(),
        };
        assert_eq!(w.0.bindings.iter().collect::<Vec<_>>(), vec![&key]);
        w.run(send(c, "amq.fanout", "", "m0"));
        w.run(send(c, "amq.fanout", "", "m1"));
        assert_eq!(w.run(get(c, "", true)), vec![get_ok(c, 1, false, q.as_str(), 1, msg("amq.fanout", "", "m0"))]);
        w.replies(purge(c, ""), Reply::QueuePurgeOk { message_count: 1 });
        // The bind shortcut for the key: RabbitMQ's answer, the first of two under `spec`
        // (unbind_with_empty_queue_and_key).
        let unbind_all = unbind(c, "", "amq.fanout", "");
        assert_eq!(w.outcomes(&unbind_all)[0], vec![Event::Reply { ch: c, reply: Reply::QueueUnbindOk }]);
        w.take(unbind_all, 0);
        assert!(w.0.bindings.is_empty());
        assert_eq!(w.run(consume(c, "", "A", true)), vec![consume_ok(c, "A")]);
        w.replies(cancel(c, "A"), Reply::CancelOk { consumer_tag: "A".into() });
        w.replies(delete_queue(c, "", false, false), Reply::QueueDeleteOk { message_count: 0 });
        assert!(!w.0.queues.contains_key(&q));
        w.refused(get(c, "", false), NotFound);

        w.declare(queue(c, "named", false, false, false));
        let second = w.channel(1, 2);
        assert_eq!(w.run(passive_queue(second, "named")), vec![declare_ok(second, "named", 0, 0)]);
        w.replies(get(second, "", false), Reply::GetEmpty);
    }
}

/// With no queue declared on the channel, `""` names nothing (`queue bind queue queue-known`
/// and siblings): the errata (section 18) make it a 502 connection error; RabbitMQ closes the
/// channel with 404 (Q4). The close names the method.
#[test]
fn empty_queue_name_without_declared_queue() {
    let methods = |c: ChanRef| {
        [
            bind(c, "", "amq.direct", "k"),
            unbind(c, "", "amq.direct", "k"),
            purge(c, ""),
            delete_queue(c, "", false, false),
            consume(c, "", "A", false),
            get(c, "", false),
        ]
    };
    let (mut w, c) = connected(RABBIT);
    for cmd in methods(c) {
        w.refused(cmd, NotFound);
    }
    // The spec: errata 18's 502 on the connection, or the rules' own not-found on the channel.
    let mut w = World::new(SPEC);
    for cmd in methods(ChanRef::new(1, 1)) {
        let c = w.open(1);
        let method = cmd.method().expect("a method");
        let fatal = vec![Event::ConnectionClosed { conn: c.conn, code: ReplyCode::SyntaxError, method: Some(method) }];
        assert_eq!(w.outcomes(&cmd), vec![fatal, vec![channel_closed(c, NotFound, method)]], "{cmd:?}");
        w.take(cmd, 0);
        assert!(!w.0.connections.contains_key(&c.conn));
    }
}

// ---------------------------------------------------------------------------------------------
// basic.publish and confirms

/// `basic publish exchange must-exist`: 404; `basic publish exchange 02`: an internal exchange
/// refuses publishes with 403 (Q22). An internal exchange still routes what reaches it through
/// an exchange-to-exchange binding.
#[test]
fn publish_to_missing_or_internal_exchange() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        w.refused(send(c, "nope", "k", "m"), NotFound);
        w.replies(exchange_flags(c, "i", Fanout, false, false, true), Reply::ExchangeDeclareOk);
        w.refused(send(c, "i", "", "m"), AccessRefused);
        w.replies(bind(c, "q", "i", ""), Reply::QueueBindOk);
        w.replies(bind_exchange(c, "i", "amq.fanout", ""), Reply::ExchangeBindOk);
        assert_eq!(w.run(send(c, "amq.fanout", "", "via")), vec![]);
        assert_eq!(w.ready("q"), vec![("via", false)]);
    }
}

/// `basic publish mandatory 01` (312 no-route, errata 17), `confirm unroutable messages` (the
/// return precedes the ack) and `confirm all messages acknowledged` (publishes numbered from 1,
/// routed or not, are acked): the sequence of Q16. Without confirms the return comes alone; a
/// publish to a missing exchange closes the channel with no ack.
#[test]
fn mandatory_return_precedes_confirm() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        w.replies(Command::ConfirmSelect { ch: c }, Reply::ConfirmSelectOk);
        w.replies(Command::ConfirmSelect { ch: c }, Reply::ConfirmSelectOk);
        let confirm = |seq| Event::Confirm { ch: c, seq, ack: true };
        let returned = |x: &str, key: &str, body: &str| Event::Return {
            ch: c,
            code: ReplyCode::NoRoute,
            message: msg(x, key, body),
        };
        assert_eq!(
            w.confirmed(send_mandatory(c, "amq.direct", "none", "m1")),
            vec![returned("amq.direct", "none", "m1"), confirm(1)]
        );
        assert_eq!(w.confirmed(send(c, "amq.direct", "none", "m2")), vec![confirm(2)]);
        assert_eq!(w.confirmed(send_mandatory(c, "", "q", "m3")), vec![confirm(3)]);
        assert_eq!(
            w.confirmed(send_mandatory(c, "", "missing", "m4")),
            vec![returned("", "missing", "m4"), confirm(4)]
        );
        assert_eq!(w.ready("q"), vec![("m3", false)]);
        w.refused(send(c, "nope", "k", "m5"), NotFound);

        let plain = w.channel(1, 2);
        assert_eq!(
            w.run(send_mandatory(plain, "amq.direct", "none", "m6")),
            vec![Event::Return { ch: plain, code: ReplyCode::NoRoute, message: msg("amq.direct", "none", "m6") }]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// basic.consume, basic.cancel, basic.get

/// `basic consume consumer-tag 01`: reusing a consumer tag on the same channel is a 530
/// not-allowed connection error naming basic.consume (Q18); `basic consume consumer-tag 02`:
/// tags belong to their channel, so the same tag on another channel is fine.
#[test]
fn duplicate_consumer_tag_is_530() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        assert_eq!(w.run(consume(c, "q", "dup", false)), vec![consume_ok(c, "dup")]);
        let second = w.channel(1, 2);
        assert_eq!(w.run(consume(second, "q", "dup", false)), vec![consume_ok(second, "dup")]);
        w.fatal(consume(c, "q", "dup", false), ReplyCode::NotAllowed);
        assert_eq!(w.0.queues["q"].consumer_count(), 0);
    }
}

/// `basic consume exclusive 01`: an exclusive consume on a queue that has consumers, and any
/// consume on a queue with an exclusive consumer, are 403, from the same channel or another
/// (Q19); basic.get is still allowed.
#[test]
fn exclusive_consumer_is_403() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        let other = w.open(2);
        w.run(consume(c, "q", "A", false));
        w.refused(consume_exclusive(other, "q", "X"), AccessRefused);
        w.refused(consume_exclusive(c, "q", "X"), AccessRefused);
        // Closing `c` removed A: the queue has no consumer now.
        assert_eq!(w.run(consume_exclusive(c, "q", "X")), vec![consume_ok(c, "X")]);
        w.refused(consume(other, "q", "B", false), AccessRefused);
        w.refused(consume_exclusive(other, "q", "Y"), AccessRefused);
        w.replies(get(other, "q", false), Reply::GetEmpty);
        w.refused(consume(c, "q", "C", false), AccessRefused);
    }
}

/// Field doc of `basic.consume consumer-tag`: an empty tag gets a unique server-generated one
/// (`amq.ctag-...`, Q37). `basic cancel 01`: a cancel is answered cancel-ok even for a tag that
/// names no consumer (Q23).
#[test]
fn consumer_tags_and_cancel() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        let tags: Vec<Name> = (0..2)
            .map(|_| match w.run(consume(c, "q", "", true)).as_slice() {
                [Event::Reply { reply: Reply::ConsumeOk { consumer_tag }, .. }] => consumer_tag.clone(),
                other => panic!("expected consume-ok, got {other:?}"),
            })
            .collect();
        assert!(tags.iter().all(|t| t.as_str().starts_with("amq.ctag-")), "{tags:?}");
        assert_ne!(tags[0], tags[1]);
        w.replies(cancel(c, "unknown"), Reply::CancelOk { consumer_tag: "unknown".into() });
        w.replies(cancel(c, tags[0].as_str()), Reply::CancelOk { consumer_tag: tags[0].clone() });
        w.replies(cancel(c, tags[0].as_str()), Reply::CancelOk { consumer_tag: tags[0].clone() });
        assert_eq!(w.0.queues["q"].consumer_count(), 1);
    }
}

/// `basic consume consumer-tag 02`: a tag is valid only on the channel that created it. The
/// spec's on-failure is 530 not-allowed, closing the connection; RabbitMQ answers cancel-ok as
/// for any unknown tag, and the consumer goes on (Q39). A tag of another connection's channel is
/// just unknown.
#[test]
fn cancel_with_another_channels_tag() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        let second = w.channel(1, 2);
        let elsewhere = w.open(2);
        w.run(consume(c, "q", "A", true));
        w.run(consume(elsewhere, "q", "B", true));
        w.replies(cancel(second, "B"), Reply::CancelOk { consumer_tag: "B".into() });
        if p == RABBIT {
            w.replies(cancel(second, "A"), Reply::CancelOk { consumer_tag: "A".into() });
            assert_eq!(w.0.queues["q"].consumer_count(), 2);
        } else {
            w.fatal(cancel(second, "A"), ReplyCode::NotAllowed);
            assert_eq!(w.0.queues["q"].consumer_count(), 1, "only B is left");
        }
    }
}

/// basic.get-ok carries the number of messages left after the one taken (Q28), then get-empty.
/// A no-ack get is settled at once, so its tag is not one to acknowledge (`basic ack multiple
/// exists`, Q24).
#[test]
fn get_reports_messages_remaining() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        fill(&mut w, c, "q", 3);
        for (tag, body) in [(1, "m0"), (2, "m1"), (3, "m2")] {
            let left = 3 - tag as u32;
            assert_eq!(w.run(get(c, "q", true)), vec![get_ok(c, tag, false, "q", left, msg("", "q", body))]);
        }
        w.replies(get(c, "q", true), Reply::GetEmpty);
        // Under `spec` the ack may also be accepted (no_ack_tags_and_unknown_rejects).
        let refused = vec![channel_closed(c, PreconditionFailed, Method::BasicAck)];
        let expected = if p == RABBIT { vec![refused] } else { vec![refused, vec![]] };
        assert_eq!(w.outcomes(&ack(c, 1, false)), expected);
    }
}

// ---------------------------------------------------------------------------------------------
// basic.ack, basic.nack, basic.reject

/// A no-ack delivery's tag names a delivered message: under `spec` (`no_ack_tag_open`) an ack
/// of it is 406 or accepted (nothing happens; with multiple, the open tags before it are acked),
/// and a reject of a tag naming nothing is 406 or ignored (errata 21 only suggests the 406);
/// RabbitMQ: 406 each time (Q24). A tag never issued is 406 for an ack under both.
#[test]
fn no_ack_tags_and_unknown_rejects() {
    let refused = |c: ChanRef, m: Method| vec![channel_closed(c, PreconditionFailed, m)];
    let (mut w, c) = with_queue(RABBIT);
    w.run(send(c, "", "q", "a"));
    w.run(get(c, "q", true));
    assert_eq!(w.outcomes(&ack(c, 1, false)), vec![refused(c, Method::BasicAck)]);
    assert_eq!(w.outcomes(&reject(c, 7, false)), vec![refused(c, Method::BasicReject)]);
    assert!(w.0.channel(c).expect("open").no_ack_tags.is_empty(), "kept under spec only");

    let (mut w, c) = with_queue(SPEC);
    for body in ["a", "b"] {
        w.run(send(c, "", "q", body));
    }
    w.run(get(c, "q", false));
    w.run(get(c, "q", true));
    assert_eq!(w.outcomes(&ack(c, 2, false)), vec![refused(c, Method::BasicAck), vec![]]);
    assert_eq!(w.outcomes(&nack(c, 2, false, true)), vec![refused(c, Method::BasicNack), vec![]]);
    assert_eq!(w.outcomes(&reject(c, 2, true)), vec![refused(c, Method::BasicReject), vec![]]);
    assert_eq!(w.outcomes(&reject(c, 7, true)), vec![refused(c, Method::BasicReject), vec![]]);
    assert_eq!(w.outcomes(&ack(c, 7, false)), vec![refused(c, Method::BasicAck)], "never issued");
    // Accepted with multiple: tag 1, still open, is acked with it.
    w.take(ack(c, 2, true), 1);
    assert!(w.0.channel(c).expect("open").unacked.is_empty());
    assert!(w.0.ledger.is_empty());
}

/// `basic ack multiple exists`: with multiple, every outstanding tag up to the given one is
/// acked; tag 0 with multiple acks all of them, and with none outstanding is fine (Q24).
#[test]
fn ack_multiple_and_tag_zero() {
    for p in BOTH {
        let (mut w, c) = with_taken(p, 5, 5);
        assert_eq!(w.run(ack(c, 2, true)), vec![]);
        assert_eq!(w.unacked(c), vec![3, 4, 5]);
        assert_eq!(w.run(ack(c, 4, false)), vec![]);
        assert_eq!(w.run(ack(c, 0, true)), vec![]);
        assert_eq!(w.unacked(c), Vec::<u64>::new());
        assert_eq!(w.run(ack(c, 0, true)), vec![]);
        assert_eq!(w.run(nack(c, 0, true, true)), vec![]);
        assert_eq!(w.ready("q"), vec![]);
    }
}

/// `basic nack multiple exists`: nack with multiple and requeue puts every outstanding message
/// back, in order and flagged redelivered (Q13, Q24); reject without requeue drops the message.
#[test]
fn nack_multiple_requeues_and_reject_discards() {
    for p in BOTH {
        let (mut w, c) = with_taken(p, 4, 3);
        assert_eq!(w.held(nack(c, 3, true, true)), vec![]);
        assert_eq!(w.ready("q"), vec![("m0", true), ("m1", true), ("m2", true), ("m3", false)]);
        if p == SPEC {
            // `basic nack requeue 01`: the nacking channel's basic.get does not take them back.
            assert_eq!(w.run(get(c, "q", false)), vec![get_ok(c, 4, false, "q", 3, msg("", "q", "m3"))]);
            assert_eq!(w.run(reject(c, 4, false)), vec![]);
            assert_eq!(w.ready("q"), vec![("m0", true), ("m1", true), ("m2", true)]);
            continue;
        }
        assert_eq!(w.run(get(c, "q", false)), vec![get_ok(c, 4, true, "q", 3, msg("", "q", "m0"))]);
        assert_eq!(w.run(reject(c, 4, false)), vec![]);
        assert_eq!(w.run(nack(c, 0, true, false)), vec![]);
        assert_eq!(w.ready("q"), vec![("m1", true), ("m2", true), ("m3", false)]);
    }
}

/// `basic ack multiple exists`, `basic nack multiple exists`, errata 21: a tag that is not an
/// outstanding delivery on the channel (unknown, already settled, or covered by an earlier
/// multiple; a reject of 0) closes the channel with 406 naming the method (Q24). (An ack or nack
/// of 0 without multiple is 406 under `rabbitmq` only: readings_left_open_are_choices_under_spec;
/// a reject may also be ignored under `spec`: refused_or_ignored.)
#[test]
fn unknown_or_settled_delivery_tag_is_406() {
    let cases: [(&[(u64, bool)], Command); 9] = {
        let c = ChanRef::new(1, 1);
        [
            (&[], ack(c, 99, false)),
            (&[], ack(c, 99, true)),
            (&[], reject(c, 99, true)),
            (&[], nack(c, 99, true, false)),
            (&[], reject(c, 0, false)),
            (&[(1, false)], ack(c, 1, false)),
            (&[(1, false)], reject(c, 1, true)),
            (&[(3, true)], ack(c, 2, false)),
            (&[(2, true)], nack(c, 1, false, true)),
        ]
    };
    for p in BOTH {
        for (acks, bad) in &cases {
            let (mut w, c) = with_taken(p, 3, 3);
            for &(tag, multiple) in *acks {
                assert_eq!(w.run(ack(c, tag, multiple)), vec![]);
            }
            refused_or_ignored(&mut w, p, bad.clone());
        }
    }
}

/// `basic recover 01` (redelivered flag) and Q13: a requeued message goes back to its original
/// place, not the tail: get m0, m1, m2, reject m2 then m0, and the queue reads m0, m2 (both
/// redelivered), m3. (Under the spec the rejecting channel's basic.get does not take them back,
/// `basic reject requeue 01`: the order is read from the queue there.)
#[test]
fn requeue_restores_original_position() {
    for p in BOTH {
        let (mut w, c) = with_taken(p, 4, 3);
        assert_eq!(w.held(reject(c, 3, true)), vec![]);
        assert_eq!(w.held(reject(c, 1, true)), vec![]);
        assert_eq!(w.ready("q"), vec![("m0", true), ("m2", true), ("m3", false)]);
        if p == SPEC {
            continue;
        }
        let expected = [(4, true, 2, "m0"), (5, true, 1, "m2"), (6, false, 0, "m3")];
        for (tag, redelivered, left, body) in expected {
            assert_eq!(w.run(get(c, "q", false)), vec![get_ok(c, tag, redelivered, "q", left, msg("", "q", body))]);
        }
    }
}

/// RabbitMQ (Q13): a lone consumer that rejects with requeue gets the message straight back,
/// redelivered, with a new tag, before the messages behind it. (The spec forbids this:
/// `basic reject requeue 01`, see `spec_requeue_avoids_rejecting_channel`.)
#[test]
fn rabbitmq_reject_requeue_redelivers_to_same_consumer() {
    let (mut w, c) = with_queue(RABBIT);
    w.replies(qos(c, 1, false), Reply::QosOk);
    w.run(consume(c, "q", "A", false));
    let m = |body: &str| msg("", "q", body);
    assert_eq!(fill(&mut w, c, "q", 3), vec![deliver(c, "A", 1, false, "q", m("m0"))]);
    assert_eq!(w.run(reject(c, 1, true)), vec![deliver(c, "A", 2, true, "q", m("m0"))]);
    assert_eq!(w.run(ack(c, 2, false)), vec![deliver(c, "A", 3, false, "q", m("m1"))]);
    assert_eq!(w.run(nack(c, 3, false, true)), vec![deliver(c, "A", 4, true, "q", m("m1"))]);
}

/// `basic reject requeue 01` and `basic nack requeue 01` (spec): a message rejected with requeue
/// is not delivered again on the rejecting channel; it waits for a consumer elsewhere, which
/// gets it flagged redelivered.
#[test]
fn spec_requeue_avoids_rejecting_channel() {
    let (mut w, c) = with_queue(SPEC);
    w.run(consume(c, "q", "A", false));
    let m0 = msg("", "q", "m0");
    assert_eq!(fill(&mut w, c, "q", 1), vec![deliver(c, "A", 1, false, "q", m0.clone())]);
    assert_eq!(w.held(reject(c, 1, true)), vec![]);
    assert_eq!(w.ready("q"), vec![("m0", true)]);
    let mut steps = Vec::new();
    w.0.internal_steps(&mut steps);
    assert_eq!(steps, vec![]);

    let other = w.open(2);
    assert_eq!(
        w.run(consume(other, "q", "B", false)),
        vec![consume_ok(other, "B"), deliver(other, "B", 1, true, "q", m0.clone())]
    );
    assert_eq!(w.run(nack(other, 1, false, true)), vec![deliver(c, "A", 2, true, "q", m0)]);
}

/// `confirm all messages acknowledged` with the basic.nack doc (spec): a publish the server could
/// not handle is nacked instead, its copy where it was routed or nowhere (and, routed nowhere, not
/// returned either); RabbitMQ acks. Sequence numbers go on either way.
#[test]
fn spec_confirm_may_nack_an_unhandled_message() {
    let (mut w, c) = with_queue(SPEC);
    w.replies(Command::ConfirmSelect { ch: c }, Reply::ConfirmSelectOk);
    let confirm = |seq, ack| Event::Confirm { ch: c, seq, ack };
    let publish = send_mandatory(c, "", "q", "m1");
    let branches = w.0.apply_all(&publish).unwrap();
    // Acked with the copy in q; nacked with it kept, or lost; nacked and routed nowhere.
    let seen: Vec<(Vec<Event>, usize)> =
        branches.iter().map(|b| (b.events.clone(), b.broker.queues["q"].ready.len())).collect();
    assert_eq!(
        seen,
        vec![
            (vec![confirm(1, true)], 1),
            (vec![confirm(1, false)], 1),
            (vec![confirm(1, false)], 0),
            (vec![confirm(1, false)], 0)
        ],
        "{:?}",
        branches.iter().map(|b| b.script()).collect::<Vec<_>>()
    );
    assert!(
        branches.iter().all(|b| b.broker.ledger.len() == b.broker.queues["q"].ready.len()),
        "a lost copy is settled"
    );
    w.take(publish, 3);
    let unroutable = w.outcomes(&send_mandatory(c, "", "nowhere", "m2"));
    let returned = Event::Return { ch: c, code: ReplyCode::NoRoute, message: msg("", "nowhere", "m2") };
    assert_eq!(
        unroutable,
        vec![vec![returned.clone(), confirm(2, true)], vec![returned, confirm(2, false)], vec![confirm(2, false)]]
    );

    let (mut w, c) = with_queue(RABBIT);
    w.replies(Command::ConfirmSelect { ch: c }, Reply::ConfirmSelectOk);
    assert_eq!(w.outcomes(&send_mandatory(c, "", "q", "m1")), vec![vec![Event::Confirm { ch: c, seq: 1, ack: true }]]);
}

/// `basic reject requeue 01` (spec): with no consumer of the queue on another channel, the
/// recommended course is a dead-letter queue, and the requeue field doc lets a failed requeue
/// discard the message: held for another consumer (first) or dead-lettered, gone. With a consumer
/// elsewhere, busy or not, it is held for it. RabbitMQ requeues it (and redelivers it at once).
#[test]
fn spec_reject_with_no_consumer_elsewhere_may_dead_letter() {
    let (mut w, c) = with_queue(SPEC);
    w.run(consume(c, "q", "A", false));
    fill(&mut w, c, "q", 1);
    let outcomes = w.outcomes(&reject(c, 1, true));
    assert_eq!(outcomes, vec![vec![], vec![]]);
    let mut gone = w.clone();
    gone.take(reject(c, 1, true), 1);
    assert_eq!(gone.ready("q"), vec![]);
    assert!(gone.0.ledger.is_empty(), "a dead-lettered copy is settled");
    w.take(reject(c, 1, true), 0);
    assert_eq!(w.ready("q"), vec![("m0", true)]);

    let other = w.open(2);
    w.run(qos(other, 1, false));
    let d = w.run(consume(other, "q", "B", false));
    assert_eq!(d.len(), 2, "B takes m0: {d:?}");
    assert_eq!(w.held(nack(other, 1, false, true)).len(), 1, "A, on another channel, gets it");
    assert_eq!(w.outcomes(&reject(c, 2, true)).len(), 1, "B is elsewhere: held for it");

    let (mut w, c) = with_queue(RABBIT);
    w.run(consume(c, "q", "A", false));
    fill(&mut w, c, "q", 1);
    assert_eq!(w.outcomes(&reject(c, 1, true)).len(), 1);
}

/// `basic 08` against `basic reject requeue 01` (spec): a later message may pass the one the
/// channel rejected for that channel's consumer, or the consumer may be held back until the
/// rejected one has gone elsewhere: the delivery is possible, never owed.
#[test]
fn a_later_message_may_pass_a_rejected_one_or_wait_behind_it() {
    let (mut w, c) = with_queue(SPEC);
    w.run(consume(c, "q", "A", false));
    fill(&mut w, c, "q", 1);
    w.held(reject(c, 1, true));
    assert_eq!(w.0.apply(&send(c, "", "q", "m1")).unwrap(), vec![]);
    let mut steps = Vec::new();
    w.0.internal_steps(&mut steps);
    assert!(matches!(steps[..], [Internal::Deliver { at: 1, .. }]), "{steps:?}");
    assert!(!w.0.owes_delivery(), "holding A back is allowed");
    // A consumer elsewhere is owed m0.
    let other = ChanRef::new(2, 1);
    w.0.apply(&Command::ConnectionOpen { conn: other.conn }).unwrap();
    w.0.apply(&Command::ChannelOpen { ch: other }).unwrap();
    w.0.apply(&consume(other, "q", "B", false)).unwrap();
    assert!(w.0.owes_delivery());
}

// ---------------------------------------------------------------------------------------------
// basic.recover

/// Errata 2: RabbitMQ does not implement `basic.recover` with requeue=false: 540 closes the
/// connection, even with nothing unacknowledged (Q6).
#[test]
fn rabbitmq_recover_without_requeue_is_540() {
    let (mut w, c) = with_queue(RABBIT);
    w.fatal(Command::BasicRecover { ch: c, requeue: false }, ReplyCode::NotImplemented);
}

/// `basic recover 01`: with requeue, the channel's unacknowledged messages go back to their
/// queue at their original place, flagged redelivered, and are dispatched again with new tags
/// (Q6).
#[test]
fn recover_with_requeue_redelivers_with_new_tags() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        w.replies(qos(c, 2, false), Reply::QosOk);
        w.run(consume(c, "q", "A", false));
        assert_eq!(delivered_to(&fill(&mut w, c, "q", 4)), ["A", "A"]);
        let m = |body: &str| msg("", "q", body);
        assert_eq!(
            w.run(Command::BasicRecover { ch: c, requeue: true }),
            vec![
                Event::Reply { ch: c, reply: Reply::RecoverOk },
                deliver(c, "A", 3, true, "q", m("m0")),
                deliver(c, "A", 4, true, "q", m("m1")),
            ]
        );
        assert_eq!(w.ready("q"), vec![("m2", false), ("m3", false)]);
    }
}

/// `basic recover 01` with errata 2 (spec): without requeue, each unacknowledged delivery goes
/// again, flagged, to the consumer that had it, even when another consumer is free; a basic.get
/// delivery has no consumer, so it goes back to the queue or stays outstanding.
#[test]
fn spec_recover_without_requeue_redelivers_to_same_consumer() {
    let (mut w, c) = with_queue(SPEC);
    let other = w.open(2);
    w.replies(qos(other, 1, false), Reply::QosOk);
    w.run(consume(other, "q", "B", false));
    w.run(consume(c, "q", "A", false));
    let m = |body: &str| msg("", "q", body);
    assert_eq!(
        fill(&mut w, c, "q", 2),
        vec![deliver(other, "B", 1, false, "q", m("m0")), deliver(c, "A", 1, false, "q", m("m1"))]
    );
    assert_eq!(w.run(ack(other, 1, false)), vec![]);
    assert_eq!(
        w.run(Command::BasicRecover { ch: c, requeue: false }),
        vec![deliver(c, "A", 2, true, "q", m("m1")), Event::Reply { ch: c, reply: Reply::RecoverOk }]
    );

    // A basic.get delivery: B is busy while the poller takes m3, then free when it recovers.
    assert_eq!(w.run(ack(c, 2, false)), vec![]);
    w.replies(cancel(c, "A"), Reply::CancelOk { consumer_tag: "A".into() });
    assert_eq!(w.run(send(c, "", "q", "m2")), vec![deliver(other, "B", 2, false, "q", m("m2"))]);
    assert_eq!(w.run(send(c, "", "q", "m3")), vec![]);
    let poller = w.channel(1, 2);
    assert_eq!(w.run(get(poller, "q", false)), vec![get_ok(poller, 1, false, "q", 0, m("m3"))]);
    assert_eq!(w.run(ack(other, 2, false)), vec![]);
    // Requeued (the first answer), or left outstanding with its tag (errata 2, the recover doc's
    // "zero or more"): then nothing goes out, and the poller may still ack it.
    let recover = Command::BasicRecover { ch: poller, requeue: false };
    let recovered = vec![Event::Reply { ch: poller, reply: Reply::RecoverOk }];
    assert_eq!(
        w.outcomes(&recover),
        vec![[recovered.clone(), vec![deliver(other, "B", 3, true, "q", m("m3"))]].concat(), recovered.clone()]
    );
    let mut kept = World(w.0.clone());
    assert_eq!(kept.take(recover.clone(), 1), recovered);
    assert_eq!(kept.run(ack(poller, 1, false)), vec![]);
    assert!(kept.0.ledger.is_empty(), "the ack settles the copy the recover left outstanding");
    assert_eq!(
        w.take(recover, 0),
        vec![Event::Reply { ch: poller, reply: Reply::RecoverOk }, deliver(other, "B", 3, true, "q", m("m3"))]
    );
}

// ---------------------------------------------------------------------------------------------
// basic.qos

/// `basic qos prefetch-count 01` under RabbitMQ: global=false sets the prefetch of consumers
/// created afterwards, each its own; existing consumers keep theirs (Q7a, Q35).
#[test]
fn rabbitmq_prefetch_is_per_consumer_fixed_at_consume() {
    let (mut w, c) = with_queue(RABBIT);
    w.replies(qos(c, 1, false), Reply::QosOk);
    w.run(consume(c, "q", "A", false));
    w.replies(qos(c, 2, false), Reply::QosOk);
    w.run(consume(c, "q", "B", false));
    assert_eq!(delivered_to(&fill(&mut w, c, "q", 6)), ["A", "B", "B"]);
    assert_eq!(w.ready("q").len(), 3);
    w.replies(qos(c, 3, false), Reply::QosOk);
    w.replies(qos(c, 0, false), Reply::QosOk);
    assert_eq!(delivered_to(&w.run(ack(c, 1, false))), ["A"]);
}

/// `basic qos prefetch-count 01` under RabbitMQ: global=true limits the channel as a whole,
/// shared by its consumers; each ack frees exactly one delivery (Q7b); it applies at once to
/// existing consumers (Q35).
#[test]
fn rabbitmq_global_prefetch_is_per_channel() {
    let (mut w, c) = with_queue(RABBIT);
    w.replies(qos(c, 2, true), Reply::QosOk);
    w.run(consume(c, "q", "A", false));
    w.run(consume(c, "q", "B", false));
    assert_eq!(delivered_to(&fill(&mut w, c, "q", 6)), ["A", "B"]);
    assert_eq!(w.run(ack(c, 1, false)), vec![deliver(c, "A", 3, false, "q", msg("", "q", "m2"))]);
    assert_eq!(delivered_to(&w.run(qos(c, 4, true))[1..]), ["B", "A"]);
    assert_eq!(w.unacked(c).len(), 4);
}

/// RabbitMQ (Q7c): both limits apply together, but a `basic.qos global=false` lifts the
/// channel's global limit: qos(1) then qos(3, global) gives 1 each up to 3 in all; qos(3,
/// global) then qos(1) gives 1 each with no channel limit.
#[test]
fn rabbitmq_local_qos_after_global_lifts_channel_limit() {
    for (first, second, expected) in [
        ((1, false), (3, true), &["A", "B", "C"][..]),
        ((3, true), (1, false), &["A", "B", "C", "D"][..]),
        ((2, false), (1, true), &["A"][..]),
    ] {
        let (mut w, c) = with_queue(RABBIT);
        w.replies(qos(c, first.0, first.1), Reply::QosOk);
        w.replies(qos(c, second.0, second.1), Reply::QosOk);
        for tag in ["A", "B", "C", "D"] {
            w.run(consume(c, "q", tag, false));
        }
        assert_eq!(delivered_to(&fill(&mut w, c, "q", 6)), expected, "qos {first:?} then {second:?}");
    }
}

/// RabbitMQ (Q7d): messages taken by basic.get do not count against any prefetch, and a get
/// still answers when the consumer is at its limit.
#[test]
fn rabbitmq_get_does_not_count_against_prefetch() {
    for global in [false, true] {
        let (mut w, c) = with_taken(RABBIT, 6, 2);
        w.replies(qos(c, 2, global), Reply::QosOk);
        let events = w.run(consume(c, "q", "A", false));
        assert_eq!(delivered_to(&events[1..]), ["A", "A"]);
        assert_eq!(w.run(get(c, "q", false)), vec![get_ok(c, 5, false, "q", 1, msg("", "q", "m4"))]);
        assert_eq!(w.run(ack(c, 5, false)), vec![]);
    }
}

/// RabbitMQ (Q38): a no-ack consumer ignores its own prefetch, but a channel at its global
/// limit blocks every consumer on it, no-ack ones included.
#[test]
fn rabbitmq_global_limit_blocks_no_ack_consumers() {
    let (mut w, c) = with_queue(RABBIT);
    w.replies(qos(c, 1, true), Reply::QosOk);
    w.run(consume(c, "q", "A", false));
    w.run(consume(c, "q", "N", true));
    assert_eq!(delivered_to(&fill(&mut w, c, "q", 4)), ["A"]);
    assert_eq!(delivered_to(&w.run(ack(c, 1, false))), ["N", "A"]);
    assert_eq!(w.ready("q").len(), 1);

    let (mut w, c) = with_queue(RABBIT);
    w.replies(qos(c, 1, false), Reply::QosOk);
    w.run(consume(c, "q", "A", false));
    w.run(consume(c, "q", "N", true));
    assert_eq!(delivered_to(&fill(&mut w, c, "q", 4)), ["A", "N", "N", "N"]);
}

/// RabbitMQ round robin (Q27): a consumer without capacity is skipped and the rotation goes on
/// between the others; with messages queued before anyone subscribes, the first subscriber takes
/// all it may.
#[test]
fn rabbitmq_round_robin_skips_full_consumers() {
    let (mut w, c) = with_queue(RABBIT);
    let [a, b, cc] = [2, 3, 4].map(|n| w.open(n));
    w.run(consume(a, "q", "A", false));
    w.replies(qos(b, 1, false), Reply::QosOk);
    w.run(consume(b, "q", "B", false));
    w.run(consume(cc, "q", "C", false));
    assert_eq!(delivered_to(&fill(&mut w, c, "q", 9)), ["A", "B", "C", "A", "C", "A", "C", "A", "C"]);

    let (mut w, c) = with_queue(RABBIT);
    fill(&mut w, c, "q", 6);
    let a = w.open(2);
    assert_eq!(delivered_to(&w.run(consume(a, "q", "A", false))[1..]), ["A"; 6]);
}

/// RabbitMQ round robin: a queue with a message waiting that none of its consumers can take puts
/// them out of the rotation at once, not only when it passes one over for another. A, full, leaves
/// it when m2 waits; m2 is purged and B joins; the message A hands back goes to B, A rejoining
/// behind it (found by a generated trace against RabbitMQ 3.10.8,
/// `fixtures/spec/basic-round-robin-full-consumer-leaves-rotation-rabbitmq.trace`).
#[test]
fn rabbitmq_round_robin_full_consumer_leaves_the_rotation_when_a_message_waits() {
    let (mut w, c) = with_queue(RABBIT);
    w.replies(qos(c, 1, false), Reply::QosOk);
    w.run(consume(c, "q", "A", false));
    assert_eq!(delivered_to(&fill(&mut w, c, "q", 2)), ["A"]);
    w.replies(purge(c, "q"), Reply::QueuePurgeOk { message_count: 1 });
    let b = w.open(2);
    w.run(consume(b, "q", "B", false));
    assert_eq!(delivered_to(&w.run(nack(c, 1, false, true))), ["B"]);
    // A is back in the rotation, behind B.
    assert_eq!(delivered_to(&fill(&mut w, c, "q", 2)), ["A", "B"]);
}

/// The spec's reading of `basic.qos global` (field doc) with `basic qos prefetch-count 01`:
/// global=false limits the channel, all its consumers together; global=true limits the whole
/// connection, across its channels.
#[test]
fn spec_prefetch_limits_channel_and_connection() {
    let (mut w, c) = with_queue(SPEC);
    w.replies(qos(c, 1, false), Reply::QosOk);
    w.run(consume(c, "q", "A", false));
    w.run(consume(c, "q", "B", false));
    assert_eq!(delivered_to(&fill(&mut w, c, "q", 3)), ["A"]);
    assert_eq!(w.ready("q").len(), 2);

    let (mut w, c) = with_queue(SPEC);
    let second = w.channel(1, 2);
    w.replies(qos(c, 2, true), Reply::QosOk);
    w.replies(qos(c, 1, false), Reply::QosOk);
    w.run(consume(c, "q", "A", false));
    w.run(consume(second, "q", "B", false));
    assert_eq!(delivered_to(&fill(&mut w, c, "q", 3)), ["A", "B"]);
    assert_eq!(w.ready("q").len(), 1);
    assert_eq!(delivered_to(&w.run(ack(second, 1, false))), ["B"]);
}

// ---------------------------------------------------------------------------------------------
// tx and confirm modes

/// `tx commit transacted`, `tx rollback transacted`: commit or rollback on a channel that is not
/// transactional is 406 (Q17a).
#[test]
fn tx_commit_or_rollback_without_select_is_406() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.refused(Command::TxCommit { ch: c }, PreconditionFailed);
        w.refused(Command::TxRollback { ch: c }, PreconditionFailed);
    }
}

/// Transactions (Q17b, Q17f): publishes wait for tx.commit, are dropped by tx.rollback or by
/// closing the channel; tx.select twice and commit or rollback with nothing pending are fine;
/// a publish to a missing exchange fails at once (`basic publish exchange must-exist`; under
/// `spec` also at the commit).
#[test]
fn tx_holds_publishes_until_commit() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        w.replies(Command::TxSelect { ch: c }, Reply::TxSelectOk);
        w.replies(Command::TxSelect { ch: c }, Reply::TxSelectOk);
        w.replies(Command::TxCommit { ch: c }, Reply::TxCommitOk);
        w.replies(Command::TxRollback { ch: c }, Reply::TxRollbackOk);
        assert_eq!(w.run(send(c, "", "q", "kept")), vec![]);
        assert_eq!(w.ready("q"), vec![]);
        w.replies(Command::TxCommit { ch: c }, Reply::TxCommitOk);
        assert_eq!(w.ready("q"), vec![("kept", false)]);
        w.run(send(c, "", "q", "rolled back"));
        w.replies(Command::TxRollback { ch: c }, Reply::TxRollbackOk);
        w.replies(Command::TxCommit { ch: c }, Reply::TxCommitOk);
        w.run(send(c, "", "q", "closed"));
        assert_eq!(w.run(Command::ChannelClose { ch: c }), vec![Event::ChannelCloseOk { ch: c }]);
        assert_eq!(w.ready("q"), vec![("kept", false)]);

        // At once: RabbitMQ's answer, the first of two under `spec`
        // (transacted_publish_checks_at_once_or_at_commit).
        let c = w.channel(1, 1);
        w.replies(Command::TxSelect { ch: c }, Reply::TxSelectOk);
        let bad = send(c, "nope", "k", "m");
        assert_eq!(w.outcomes(&bad)[0], vec![channel_closed(c, NotFound, Method::BasicPublish)]);
    }
}

/// `basic publish mandatory 01` in a transaction (Q17c): RabbitMQ returns an unroutable mandatory
/// publish at commit, just before commit-ok, and never after a rollback. `tx not mandatory` binds
/// applications only, so under `spec` the return may also come at the publish, after commit-ok,
/// or never, and a rollback does not take back one already sent.
#[test]
fn tx_returns_unroutable_at_commit() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        let returned = || Event::Return { ch: c, code: ReplyCode::NoRoute, message: msg("amq.direct", "none", "m") };
        let commit_ok = Event::Reply { ch: c, reply: Reply::TxCommitOk };
        w.replies(Command::TxSelect { ch: c }, Reply::TxSelectOk);
        let publish = send_mandatory(c, "amq.direct", "none", "m");
        let at_publish = w.outcomes(&publish);
        assert_eq!(at_publish, if p == SPEC { vec![vec![], vec![returned()]] } else { vec![vec![]] });
        if p == SPEC {
            // Returned at the publish: the commit routes it (nowhere) and returns nothing more.
            let mut early = w.clone();
            early.take(publish.clone(), 1);
            assert_eq!(early.outcomes(&Command::TxCommit { ch: c }), vec![vec![commit_ok.clone()]]);
            // ... nor does a rollback take it back.
            let mut rolled = w.clone();
            rolled.take(publish.clone(), 1);
            rolled.replies(Command::TxRollback { ch: c }, Reply::TxRollbackOk);
            rolled.replies(Command::TxCommit { ch: c }, Reply::TxCommitOk);
        }
        w.take(publish, 0);
        let at_commit = w.outcomes(&Command::TxCommit { ch: c });
        let rabbit = vec![returned(), commit_ok.clone()];
        match p == SPEC {
            true => assert_eq!(at_commit, vec![rabbit, vec![commit_ok.clone(), returned()], vec![commit_ok.clone()]]),
            false => assert_eq!(at_commit, vec![rabbit]),
        }
        w.take(Command::TxCommit { ch: c }, 0);
        w.take(send_mandatory(c, "amq.direct", "none", "m"), 0);
        w.replies(Command::TxRollback { ch: c }, Reply::TxRollbackOk);
        w.replies(Command::TxCommit { ch: c }, Reply::TxCommitOk);
    }
}

/// Transactions (Q17d): an ack inside a transaction takes effect at commit; after a rollback
/// the message is unacknowledged again, so its tag may be acked again, and closing the channel
/// instead brings it back redelivered.
#[test]
fn tx_rollback_undoes_acks() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        fill(&mut w, c, "q", 2);
        w.replies(Command::TxSelect { ch: c }, Reply::TxSelectOk);
        take(&mut w, c, "q", 2);
        assert_eq!(w.run(ack(c, 1, false)), vec![]);
        assert_eq!(w.unacked(c), vec![1, 2]);
        w.replies(Command::TxRollback { ch: c }, Reply::TxRollbackOk);
        assert_eq!(w.run(ack(c, 1, false)), vec![]);
        w.replies(Command::TxCommit { ch: c }, Reply::TxCommitOk);
        assert_eq!(w.unacked(c), vec![2]);

        assert_eq!(w.run(ack(c, 2, false)), vec![]);
        w.replies(Command::TxRollback { ch: c }, Reply::TxRollbackOk);
        assert_eq!(w.run(Command::ChannelClose { ch: c }), vec![Event::ChannelCloseOk { ch: c }]);
        assert_eq!(w.ready("q"), vec![("m1", true)]);
    }
}

/// `basic ack multiple exists` ("on a transacted channel, this check MUST be done immediately"):
/// settling a tag already settled in the open transaction is 406 at once, not at commit
/// (Q17e).
#[test]
fn tx_double_settle_is_406_at_once() {
    let c = ChanRef::new(1, 1);
    let cases = [
        (ack(c, 1, false), ack(c, 1, false)),
        (ack(c, 1, false), reject(c, 1, true)),
        (ack(c, 2, true), ack(c, 1, false)),
        (ack(c, 1, false), ack(c, 99, false)),
    ];
    for p in BOTH {
        for (first, second) in &cases {
            let (mut w, c) = with_queue(p);
            fill(&mut w, c, "q", 2);
            w.replies(Command::TxSelect { ch: c }, Reply::TxSelectOk);
            take(&mut w, c, "q", 2);
            assert_eq!(w.run(first.clone()), vec![]);
            refused_or_ignored(&mut w, p, second.clone());
        }
    }
}

/// A command that must be refused with 406, except a `basic.reject` under `spec`, which may
/// also be ignored (`no_ack_tag_open`: no rule checks a reject's tag, errata 21 suggests 406).
fn refused_or_ignored(w: &mut World, p: Profile, cmd: Command) {
    match cmd {
        Command::BasicReject { ch, .. } if p == SPEC => {
            let refused = vec![channel_closed(ch, PreconditionFailed, Method::BasicReject)];
            assert_eq!(w.outcomes(&cmd), vec![refused, vec![]], "{cmd:?}");
        }
        _ => w.refused(cmd, PreconditionFailed),
    }
}

/// `basic nack multiple exists` does not ask, as ack's rule does, for the check at once on a
/// transacted channel: under `spec` (`tx_checks_at_commit`) a nack of an unknown tag is 406 at
/// once or at `tx.commit`, with nothing of the transaction done; an ack's is 406 at once.
#[test]
fn tx_nack_of_an_unknown_tag_may_fail_at_commit() {
    let (mut w, c) = with_queue(SPEC);
    fill(&mut w, c, "q", 1);
    w.replies(Command::TxSelect { ch: c }, Reply::TxSelectOk);
    take(&mut w, c, "q", 1);
    assert_eq!(w.run(ack(c, 1, false)), vec![]);
    let refused = |m| vec![channel_closed(c, PreconditionFailed, m)];
    assert_eq!(w.outcomes(&ack(c, 9, false)), vec![refused(Method::BasicAck)]);
    assert_eq!(w.outcomes(&nack(c, 9, false, true)), vec![refused(Method::BasicNack), vec![]]);
    assert_eq!(w.take(nack(c, 9, false, true), 1), vec![]);
    assert_eq!(w.run(Command::TxCommit { ch: c }), refused(Method::TxCommit));
    // Nothing of the transaction was done: the held ack is undone with the channel, m0 is back.
    assert_eq!(w.ready("q").len(), 1);
    let (mut w, c) = with_queue(RABBIT);
    fill(&mut w, c, "q", 1);
    w.replies(Command::TxSelect { ch: c }, Reply::TxSelectOk);
    assert_eq!(
        w.outcomes(&nack(c, 9, false, true)),
        vec![vec![channel_closed(c, PreconditionFailed, Method::BasicNack)]]
    );
}

/// Transactions and confirms exclude each other (Q17b): confirm.select on a transactional
/// channel and tx.select on a confirm channel are 406.
#[test]
fn tx_and_confirm_exclude_each_other() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.replies(Command::TxSelect { ch: c }, Reply::TxSelectOk);
        w.refused(Command::ConfirmSelect { ch: c }, PreconditionFailed);
        w.replies(Command::ConfirmSelect { ch: c }, Reply::ConfirmSelectOk);
        w.refused(Command::TxSelect { ch: c }, PreconditionFailed);
    }
}

// ---------------------------------------------------------------------------------------------
// channels and connections

/// `channel open state`: opening a channel that is already open is a 504 channel-error on the
/// connection; so is any method on a channel that is not open (including one just closed by an
/// exception). A command on a connection that is not open is not a command a client can send.
#[test]
fn channel_state_errors_are_504() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.fatal(Command::ChannelOpen { ch: c }, ReplyCode::ChannelError);

        w.open(1);
        w.fatal(queue(ChanRef::new(1, 2), "q", false, false, false), ReplyCode::ChannelError);

        let c2 = w.open(2);
        assert_eq!(w.run(passive_queue(c2, "nope")), vec![channel_closed(c2, NotFound, Method::QueueDeclare)]);
        w.fatal(get(c2, "q", false), ReplyCode::ChannelError);

        assert_eq!(w.0.apply(&get(c2, "q", false)), Err(UsageError::NotConnected(ConnId(2))));
        let c3 = w.open(3);
        assert_eq!(w.0.apply(&Command::ConnectionOpen { conn: c3.conn }), Err(UsageError::AlreadyConnected(c3.conn)));
    }
}

/// `channel close stability`: a client that sends methods without reading what came in between
/// (pipelining) may send them to a channel the broker has just closed, before its close-ok for
/// that close. The broker discards them, except a `channel.close`, which crossed the broker's and
/// is answered with close-ok; the channel stays closing (a close, answered again; anything else
/// discarded) until the client's close-ok frees its number. A client that read the close first
/// answered it, so the same methods then find no channel: 504.
#[test]
fn a_close_crossing_the_brokers_is_answered_and_the_rest_discarded() {
    for p in BOTH {
        let (w, c) = connected(p);
        let nowhere = send(c, "nowhere", "k", "m1");
        let closed = vec![channel_closed(c, NotFound, Method::BasicPublish)];
        let [branch] = &w.0.apply_all_pipelining(&nowhere).expect("sent")[..] else { panic!("one outcome") };
        assert_eq!(branch.events, closed);
        let closing = branch.broker.clone();
        assert!(closing.connections[&c.conn].closing.contains(&c.channel), "closing until the client's close-ok");
        // Discarded, with nothing on the wire: a publish, a declare, even a channel.open.
        for discarded in [send(c, "", "q", "m2"), queue(c, "q", false, false, false), Command::ChannelOpen { ch: c }] {
            let [b] = &closing.apply_all_pipelining(&discarded).expect("sent")[..] else { panic!("one outcome") };
            assert_eq!(b.events, vec![], "{discarded:?}");
            assert_eq!(b.broker, closing, "{discarded:?} changes nothing");
        }
        // The crossing close is answered; so is a second one while the channel is still closing.
        let [b] = &closing.apply_all_pipelining(&Command::ChannelClose { ch: c }).expect("sent")[..] else {
            panic!("one outcome")
        };
        assert_eq!(b.events, vec![Event::ChannelCloseOk { ch: c }]);
        assert!(b.broker.connections[&c.conn].closing.contains(&c.channel));
        // As the last of the pipelined commands, once its answers are read, the client's
        // close-ok frees the number: it opens again.
        let [b] = &closing.apply_all(&Command::ChannelClose { ch: c }).expect("sent")[..] else {
            panic!("one outcome")
        };
        assert_eq!(b.events, vec![Event::ChannelCloseOk { ch: c }]);
        let mut after = World(b.broker.clone());
        assert!(after.0.connections[&c.conn].closing.is_empty());
        after.channel(1, 1);

        // Not pipelined: the close was read and answered, so a close now is on no channel.
        let mut w = w;
        assert_eq!(w.run(nowhere), closed);
        w.fatal(Command::ChannelClose { ch: c }, ReplyCode::ChannelError);
    }
}

/// A broker restart: every connection is closed with 320 connection-forced. Durable exchanges
/// (`exchange declare durable support`) and queues (`queue declare durable persistence`)
/// survive, with the bindings between them (`queue bind durable-exchange`, exchange-to-exchange
/// too), and so do persistent messages in durable queues (`basic 01`), a delivered but
/// unacknowledged one coming back first and redelivered; transient messages, queues and
/// exchanges are gone (Q29).
#[test]
fn restart_keeps_durable_state() {
    for p in BOTH {
        let mut w = before_restart(p);
        // Under `spec` the first of its outcomes (restart_open): the recommended one.
        let forced = |n| Event::ConnectionClosed { conn: ConnId(n), code: ReplyCode::ConnectionForced, method: None };
        assert_eq!(w.outcomes(&Command::Restart).len(), if p == RABBIT { 1 } else { 8 });
        assert_eq!(w.take(Command::Restart, 0), vec![forced(1), forced(2)]);
        assert!(w.0.connections.is_empty());

        let c = w.open(1);
        assert_eq!(w.run(passive_queue(c, "d")), vec![declare_ok(c, "d", 3, 0)]);
        for (tag, redelivered, body) in [(1, true, "P1"), (2, false, "P2"), (3, false, "P3")] {
            let m = message("", "d", Content::persistent(body));
            let want = vec![get_ok(c, tag, redelivered, "d", 3 - tag as u32, m)];
            if p == RABBIT {
                assert_eq!(w.run_flagged(get(c, "d", true)), want);
            } else {
                // Under spec P1 goes back anywhere among P2 and P3 (requeue_position), its original
                // place among them.
                let i = w.outcomes(&get(c, "d", true)).iter().position(|o| *o == want).expect("the original order");
                w.take(get(c, "d", true), i);
            }
        }
        w.refused(passive_queue(c, "t"), NotFound);
        w.refused(passive_exchange(c, "tx", Direct), NotFound);
        w.replies(passive_exchange(c, "x", Direct), Reply::ExchangeDeclareOk);
        assert_eq!(w.run(send(c, "x", "k", "after")), vec![]);
        assert_eq!(w.ready("d"), vec![("after", false)]);
        assert_eq!(w.ready("d2"), vec![("after", false)]);
    }
}

/// Under `spec` (`restart_open`) a restart may also lose the persistent messages (`basic 01` is
/// a SHOULD), keep the transient ones (`basic 04`), keep transient queues emptied (the durable
/// field doc's "purged"), and delete a durable auto-delete queue whose consumers it closed (the
/// auto-delete field doc against `queue declare durable persistence`): each choice once, named
/// by its rule, and only where it changes something. RabbitMQ has one outcome.
#[test]
fn restart_under_spec_offers_what_the_texts_leave_open() {
    let mut w = before_restart(Profile::spec());
    let c = ChanRef { conn: ConnId(1), channel: 1 };
    w.declare(queue(c, "ad", true, false, true));
    w.run(consume(c, "ad", "B", true));
    let branches = w.0.apply_all(&Command::Restart).expect("a restart");
    assert_eq!(branches.len(), 16);
    let bodies = |b: &amqp_model::Broker, q: &str| -> Vec<String> {
        b.queues[q].ready.iter().map(|r| r.msg.0.content.body.to_string()).collect()
    };
    for b in &branches {
        let why: Vec<&str> = b.choices.iter().map(|c| c.why).collect();
        assert_eq!(
            why,
            ["basic 01", "basic 04", "queue declare durable persistence", "queue declare durable persistence"]
        );
        let [persistent, transient, queues, auto] = [0, 1, 2, 3].map(|i| b.choices[i].option);
        let mut want: Vec<&str> = Vec::new();
        if persistent == 0 {
            want.extend(["P1", "P2", "P3"]);
        }
        if transient == 1 {
            want.push("T1");
        }
        // Kept messages stay in the order they arrived in (the unacked P1 back at its place).
        let order = ["P1", "P2", "T1", "P3"];
        want.sort_by_key(|m| order.iter().position(|o| o == m));
        assert_eq!(bodies(&b.broker, "d"), want, "{:?}", b.choices);
        assert_eq!(b.broker.queues.contains_key("t"), queues == 1, "{:?}", b.choices);
        if queues == 1 {
            assert!(bodies(&b.broker, "t").is_empty(), "a kept transient queue is emptied");
        }
        assert_eq!(b.broker.queues.contains_key("ad"), auto == 0, "{:?}", b.choices);
        // Whatever is gone is settled in the ledger: nothing vanishes unaccounted.
        let held: usize = b.broker.queues.values().map(|q| q.ready.len()).sum();
        assert_eq!(b.broker.ledger.len(), held, "{:?}", b.choices);
    }
    let mut rabbit = before_restart(RABBIT);
    rabbit.declare(queue(c, "ad", true, false, true));
    rabbit.run(consume(c, "ad", "B", true));
    assert_eq!(rabbit.0.apply_all(&Command::Restart).expect("a restart").len(), 1);
    // Nothing to choose, no choice: an empty broker restarts one way.
    let (empty, _) = connected(Profile::spec());
    assert_eq!(empty.outcomes(&Command::Restart).len(), 1);
}

/// The durable and transient state [`restart_keeps_durable_state`] restarts: durable exchanges
/// x, xb (x to xb bound) and transient tx; durable queues d (bound to x), d2 (to xb) and transient
/// t (to x); in d, P1 (persistent, delivered to a consumer on connection 2, unacknowledged), P2
/// (persistent), T1 (transient) and P3 (persistent).
fn before_restart(p: Profile) -> World {
    {
        let (mut w, c) = connected(p);
        w.replies(exchange(c, "x", Direct, true, false), Reply::ExchangeDeclareOk);
        w.replies(exchange(c, "xb", Fanout, true, false), Reply::ExchangeDeclareOk);
        w.replies(exchange(c, "tx", Direct, false, false), Reply::ExchangeDeclareOk);
        w.declare(queue(c, "d", true, false, false));
        w.declare(queue(c, "d2", true, false, false));
        w.declare(queue(c, "t", false, false, false));
        w.replies(bind(c, "d", "x", "k"), Reply::QueueBindOk);
        w.replies(bind(c, "t", "x", "k"), Reply::QueueBindOk);
        w.replies(bind_exchange(c, "xb", "x", "k"), Reply::ExchangeBindOk);
        w.replies(bind(c, "d2", "xb", ""), Reply::QueueBindOk);

        let consumer = w.open(2);
        w.replies(qos(consumer, 1, false), Reply::QosOk);
        w.run(consume(consumer, "d", "A", false));
        let persistent = |body: &str| publish(c, "", "d", false, Content::persistent(body));
        let p1 = message("", "d", Content::persistent("P1"));
        assert_eq!(w.run(persistent("P1")), vec![deliver(consumer, "A", 1, false, "d", p1.clone())]);
        w.run(persistent("P2"));
        w.run(send(c, "", "d", "T1"));
        w.run(persistent("P3"));

        w
    }
}

/// `queue delete if-empty not-empty` with only a delivered, unacknowledged message: RabbitMQ
/// counts ready messages only and deletes (count 0); the spec does not say whether such a message
/// is "on" the queue, so it allows the 406 as well.
#[test]
fn if_empty_with_only_unacked_messages() {
    for p in BOTH {
        let (mut w, c) = with_queue(p);
        w.run(send(c, "", "q", "m"));
        w.run(get(c, "q", false));
        let other = w.channel(1, 2);
        let delete = delete_queue(other, "q", false, true);
        let deleted = vec![Event::Reply { ch: other, reply: Reply::QueueDeleteOk { message_count: 0 } }];
        let refused = vec![channel_closed(other, PreconditionFailed, Method::QueueDelete)];
        let expected = if p == RABBIT { vec![deleted] } else { vec![refused, deleted] };
        assert_eq!(w.outcomes(&delete), expected);
        // Once the delivery is settled, nothing holds the queue back.
        w.run(ack(c, 1, false));
        w.replies(delete, Reply::QueueDeleteOk { message_count: 0 });
    }
}

/// `basic 06`, `basic 07`, `basic 08`: under `spec` a waiting message of priority 5-9 goes before
/// those of 0-4 (a message without the property counts as 0); two priorities of one band may go in
/// either order, but the same each time. RabbitMQ (Q43): arrival order, unless the queue was
/// declared with x-max-priority, which gives each priority up to it a level (higher ones capped).
#[test]
fn priorities_order_by_band_and_the_broker_s_levels() {
    let body = |events: &[Event]| match events {
        [Event::Reply { reply: Reply::GetOk { message, .. }, .. }] => message.0.content.body.to_string(),
        other => panic!("not a get-ok: {other:?}"),
    };
    let prio = |c: ChanRef, q: &str, b: &str, p: Option<u8>| {
        publish(c, "", q, false, Content { priority: p, ..Content::text(b) })
    };
    let (mut w, c) = connected(SPEC);
    w.declare(queue(c, "q", false, false, false));
    for (b, p) in [("a", Some(0)), ("b", None), ("c", Some(9))] {
        w.run(prio(c, "q", b, p));
    }
    for want in ["c", "a", "b"] {
        assert_eq!(body(&w.run(get(c, "q", true))), want);
    }
    for (b, p) in [("d", Some(3)), ("e", Some(4))] {
        w.run(prio(c, "q", b, p));
    }
    let firsts: Vec<String> = w.outcomes(&get(c, "q", true)).iter().map(|o| body(o)).collect();
    assert_eq!(firsts, ["d", "e"]);
    for (first, then) in [(0, ["e", "f", "g"]), (1, ["g", "d", "f"])] {
        let mut w = World(w.0.clone());
        w.take(get(c, "q", true), first);
        for (b, p) in [("f", Some(3)), ("g", Some(4))] {
            w.run(prio(c, "q", b, p));
        }
        // The broker's levels are settled by what it sent first: one answer each time now.
        for want in then {
            assert_eq!(body(&w.run(get(c, "q", true))), want);
        }
    }

    let (mut w, c) = connected(RABBIT);
    w.declare(queue(c, "q", false, false, false));
    w.declare(with_arguments(queue(c, "qp", false, false, false), &[("x-max-priority", Value::Int(5))]));
    for q in ["q", "qp"] {
        for (b, p) in [("a", Some(0)), ("b", Some(9)), ("c", Some(5)), ("d", None), ("e", Some(3))] {
            w.run(prio(c, q, b, p));
        }
    }
    for want in ["a", "b", "c", "d", "e"] {
        assert_eq!(body(&w.run(get(c, "q", true))), want);
    }
    for want in ["b", "c", "e", "a", "d"] {
        assert_eq!(body(&w.run(get(c, "qp", true))), want);
    }
}

/// Where a requeued message goes back: the requeue field docs say only that the server will try
/// to requeue it, and `basic 08` orders deliveries by arrival. RabbitMQ puts it back at its
/// original place; under `spec` it may go out before or after each message that was waiting when
/// it was requeued, never after one that came later, to a `basic.get` (a choice) as to a consumer
/// (one delivery step per message that may go first).
#[test]
fn requeue_position() {
    use amqp_model::Internal;
    let bodies = |outcomes: Vec<Vec<Event>>| -> Vec<String> {
        let body = |e: &Event| match e {
            Event::Reply { reply: Reply::GetOk { message, .. }, .. } => message.0.content.body.to_string(),
            other => panic!("not a get-ok: {other:?}"),
        };
        let mut out: Vec<String> = outcomes.iter().map(|o| body(&o[0])).collect();
        // The same message may come flagged redelivered or not (`redelivered_flag_optional`).
        out.sort();
        out.dedup();
        out
    };
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.declare(queue(c, "q", false, false, false));
        fill(&mut w, c, "q", 3);
        w.take(get(c, "q", false), 0);
        assert_eq!(w.held(reject(c, 1, true)), vec![]);
        w.run(send(c, "", "q", "m3"));
        // m0 is back; m1, m2 wait behind its original place; m3 came later. (Read from another
        // channel: under `spec` the rejecting one does not get m0 back.)
        let c = w.open(3);
        let first = bodies(w.outcomes(&get(c, "q", true)));
        let mut with_consumer = w.clone();
        let consumer = with_consumer.open(2);
        // Applied without settling: the deliveries it makes possible are the steps left.
        with_consumer.0.apply(&consume(consumer, "q", "A", true)).expect("consume");
        let mut steps = Vec::new();
        with_consumer.0.internal_steps(&mut steps);
        if p == RABBIT {
            assert_eq!(first, ["m0"]);
            assert_eq!(steps.len(), 1);
        } else {
            assert_eq!(first, ["m0", "m1"]);
            let places: std::collections::BTreeSet<usize> = steps
                .iter()
                .map(|s| match s {
                    Internal::Deliver { at, .. } => *at,
                    other => panic!("only deliveries are possible here: {other:?}"),
                })
                .collect();
            assert_eq!(places.len(), 2, "{steps:?}");
            // Take m1 first, then m2: m0 may still come before m2, never after m3.
            let i = w.outcomes(&get(c, "q", true)).iter().position(|o| bodies(vec![o.clone()]) == ["m1"]).unwrap();
            w.take(get(c, "q", true), i);
            assert_eq!(bodies(w.outcomes(&get(c, "q", true))), ["m0", "m2"]);
            let i = w.outcomes(&get(c, "q", true)).iter().position(|o| bodies(vec![o.clone()]) == ["m2"]).unwrap();
            w.take(get(c, "q", true), i);
            assert_eq!(bodies(w.outcomes(&get(c, "q", true))), ["m0"]);
        }
    }
}

/// `redelivered implementation` is a SHOULD ("when it can"): under `spec` a message that goes out
/// again after an unsettled delivery may carry the flag or not, to a consumer (a delivery step
/// for each) or to `basic.get` (a choice); what `basic.recover` resends is flagged
/// (`basic recover 01`, a MUST). RabbitMQ always flags it.
#[test]
fn redelivered_flag_after_requeue() {
    use amqp_model::Internal;
    let flags = |outcomes: Vec<Vec<Event>>| -> Vec<bool> {
        outcomes
            .iter()
            .map(|o| match &o[0] {
                Event::Reply { reply: Reply::GetOk { redelivered, .. }, .. } => *redelivered,
                other => panic!("not a get-ok: {other:?}"),
            })
            .collect()
    };
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.declare(queue(c, "q", false, false, false));
        fill(&mut w, c, "q", 1);
        w.take(get(c, "q", false), 0);
        w.run(Command::ChannelClose { ch: c });
        let c = w.channel(1, 1);
        let expected = if p == SPEC { vec![true, false] } else { vec![true] };
        assert_eq!(flags(w.outcomes(&get(c, "q", true))), expected);
        // To a consumer: a delivery step per allowed flag.
        let mut consuming = w.clone();
        let other = consuming.open(2);
        consuming.0.apply(&consume(other, "q", "A", true)).expect("consume");
        let mut steps = Vec::new();
        consuming.0.internal_steps(&mut steps);
        let step_flags: Vec<bool> = steps
            .iter()
            .map(|s| match s {
                Internal::Deliver { redelivered, .. } => *redelivered,
                other => panic!("only deliveries are possible here: {other:?}"),
            })
            .collect();
        assert_eq!(step_flags, expected);
        // basic.recover resends flagged, always.
        w.take(get(c, "q", false), 0);
        w.replies(Command::BasicRecover { ch: c, requeue: true }, Reply::RecoverOk);
        assert_eq!(flags(w.outcomes(&get(c, "q", true))), vec![true]);
    }
}

/// `basic qos prefetch-count 01`: the server may send less ahead than the windows allow (and
/// MUST NOT send more). Under `spec` a consumer already holding an unacknowledged delivery may be
/// sent another, but is not owed it, so a broker that sends one at a time is done; a consumer
/// holding none, and a no-ack consumer, are owed what waits for them. RabbitMQ fills every window.
#[test]
fn a_consumer_holding_a_message_is_owed_no_other_under_spec() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.declare(queue(c, "q", false, false, false));
        w.declare(queue(c, "n", false, false, false));
        let acking = w.open(2);
        w.run(consume(acking, "q", "A", false));
        assert_eq!(w.run(send(c, "", "q", "m0")).len(), 1, "{p:?}: m0 goes to A at once");
        // Applied without settling: the deliveries it makes possible are the steps left.
        w.0.apply(&send(c, "", "q", "m1")).expect("publish");
        let mut steps = Vec::new();
        w.0.internal_steps(&mut steps);
        assert_eq!(steps.len(), 1, "{p:?}: m1 may go to A");
        assert_eq!(w.0.owes_delivery(), p == RABBIT, "{p:?}: m1 owed to A, which holds m0");
        // Once A acknowledges m0 it holds nothing, and m1 is owed under both.
        w.0.apply(&ack(acking, 1, false)).expect("ack");
        assert!(w.0.owes_delivery(), "{p:?}: m1 owed to A, which holds nothing");
        w.0.settle_internal();
        // A no-ack consumer holds nothing: each message is owed to it.
        let free = w.open(3);
        w.run(consume(free, "n", "B", true));
        w.0.apply(&send(c, "", "n", "x0")).expect("publish");
        w.0.apply(&send(c, "", "n", "x1")).expect("publish");
        w.0.settle_internal();
        w.0.apply(&send(c, "", "n", "x2")).expect("publish");
        assert!(w.0.owes_delivery(), "{p:?}: x2 owed to the no-ack consumer");
    }
}

/// The minimums of `basic consume 01` (16 consumers on a queue), `exchange declare minimum` (16
/// declared exchanges), `queue declare minimum-queues` (256 queues) and `queue bind
/// binding-count` (4 bindings on a queue): up to each, one answer; past it, under `spec`, the
/// command may also be refused with 506 resource-error on the connection (`resource_limits`).
/// RabbitMQ has no such limits.
#[test]
fn past_a_recommended_minimum_the_server_may_run_out_of_room() {
    let past = |w: &World, cmd: Command, p: Profile| {
        let outcomes = w.outcomes(&cmd);
        let refused = vec![Event::ConnectionClosed {
            conn: cmd.channel().expect("a channel method").conn,
            code: ReplyCode::ResourceError,
            method: cmd.method(),
        }];
        assert_eq!(outcomes.len(), if p == SPEC { 2 } else { 1 }, "{cmd:?}: {outcomes:?}");
        assert_ne!(outcomes[0], refused, "{cmd:?}: accepted first");
        assert_eq!(outcomes.get(1), (p == SPEC).then_some(&refused), "{cmd:?}");
    };
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.declare(queue(c, "q", false, false, false));
        for i in 1..=16 {
            let cmd = consume(c, "q", &format!("t{i}"), true);
            assert_eq!(w.outcomes(&cmd).len(), 1, "{p:?}: consumer {i}");
            w.run(cmd);
        }
        past(&w, consume(c, "q", "t17", true), p);
        for i in 1..=16 {
            let cmd = exchange(c, &format!("x{i}"), Fanout, false, false);
            assert_eq!(w.outcomes(&cmd).len(), 1, "{p:?}: exchange {i}");
            w.run(cmd);
        }
        past(&w, exchange(c, "x17", Fanout, false, false), p);
        for i in 1..=4 {
            let cmd = bind(c, "q", &format!("x{i}"), "");
            assert_eq!(w.outcomes(&cmd).len(), 1, "{p:?}: binding {i}");
            w.run(cmd);
        }
        // A duplicate adds no binding.
        assert_eq!(w.outcomes(&bind(c, "q", "x1", "")).len(), 1, "{p:?}: duplicate binding");
        past(&w, bind(c, "q", "x5", ""), p);
        for i in 2..=256 {
            let cmd = queue(c, &format!("q{i}"), false, false, false);
            assert_eq!(w.outcomes(&cmd).len(), 1, "{p:?}: queue {i}");
            w.run(cmd);
        }
        past(&w, queue(c, "q257", false, false, false), p);
        // Redeclaring an existing queue creates nothing.
        assert_eq!(w.outcomes(&queue(c, "q2", false, false, false)).len(), 1, "{p:?}: redeclare");
    }
}

/// Readings the text leaves open, each a choice under `spec` and RabbitMQ's answer alone under
/// `rabbitmq`: `basic.ack`/`basic.nack` of tag 0 without multiple (`basic ack multiple exists`,
/// `basic nack multiple exists`: 406, all, or nothing); a passive `queue.declare` of `""`
/// (`queue declare passive passive`: no queue, 404, or the last declared one); a passive declare
/// of a badly formed name (406 or 404) and a new reserved badly formed one (406 or 403).
#[test]
fn readings_left_open_are_choices_under_spec() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.declare(queue(c, "q", false, false, false));
        w.run(send(c, "", "q", "a"));
        w.take(get(c, "q", false), 0);
        for cmd in [ack(c, 0, false), Command::BasicNack { ch: c, delivery_tag: 0, multiple: false, requeue: false }] {
            let outcomes = w.outcomes(&cmd);
            let refused = vec![channel_closed(c, PreconditionFailed, cmd.method().expect("a method"))];
            assert_eq!(outcomes[0], refused, "{p:?}: {cmd:?}");
            assert_eq!(outcomes.len(), if p == SPEC { 3 } else { 1 }, "{p:?}: {cmd:?}");
            if p == SPEC {
                // Settling all and settling nothing both answer nothing; they differ in what is
                // left unacknowledged.
                let mut all = w.clone();
                all.take(cmd.clone(), 1);
                assert_eq!(all.unacked(c), Vec::<u64>::new(), "{cmd:?}");
                let mut none = w.clone();
                none.take(cmd.clone(), 2);
                assert_eq!(none.unacked(c), vec![1], "{cmd:?}");
            }
        }
        let passive_empty = passive_queue(c, "");
        let not_found = vec![channel_closed(c, NotFound, Method::QueueDeclare)];
        match p == SPEC {
            true => assert_eq!(w.outcomes(&passive_empty), vec![not_found, vec![declare_ok(c, "q", 0, 0)]]),
            false => assert_eq!(w.outcomes(&passive_empty), vec![not_found]),
        }
        if p == SPEC {
            let bad = passive_queue(c, "q/1");
            let closed = |code| vec![channel_closed(c, code, Method::QueueDeclare)];
            assert_eq!(w.outcomes(&bad), vec![closed(PreconditionFailed), closed(NotFound)]);
            let reserved = queue(c, "amq.q/1", false, false, false);
            assert_eq!(w.outcomes(&reserved), vec![closed(PreconditionFailed), closed(AccessRefused)]);
        }
    }
}

/// `exchange delete if-unused in-use`: an exchange bound to a queue is in use (406) under every
/// reading. One whose only bindings are exchange-to-exchange ones is in use by the rule's
/// "bindings on it" and unused by the if-unused field doc's "queue bindings": under `spec` 406
/// or delete-ok, as source or destination; RabbitMQ counts the bindings it is the source of.
#[test]
fn if_unused_and_exchange_bindings() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        for x in ["src", "dst", "qx"] {
            w.run(exchange(c, x, Fanout, false, false));
        }
        w.declare(queue(c, "q", false, false, false));
        w.run(bind(c, "q", "qx", ""));
        w.run(bind_exchange(c, "dst", "src", ""));
        let delete = |x: &str| Command::ExchangeDelete { ch: c, exchange: x.into(), if_unused: true };
        let refused = vec![channel_closed(c, PreconditionFailed, Method::ExchangeDelete)];
        let deleted = vec![Event::Reply { ch: c, reply: Reply::ExchangeDeleteOk }];
        assert_eq!(w.outcomes(&delete("qx")), vec![refused.clone()], "{p:?}: bound to a queue");
        match p == SPEC {
            true => {
                assert_eq!(w.outcomes(&delete("src")), vec![refused.clone(), deleted.clone()]);
                assert_eq!(w.outcomes(&delete("dst")), vec![deleted.clone(), refused.clone()]);
            }
            false => {
                assert_eq!(w.outcomes(&delete("src")), vec![refused.clone()]);
                assert_eq!(w.outcomes(&delete("dst")), vec![deleted.clone()]);
            }
        }
    }
}

/// `queue unbind queue queue-known` with an empty key: the shortcut making the key the queue's
/// name is written for `queue.bind` only, so under `spec` an unbind's empty key is the queue's
/// name or `""` itself (RabbitMQ: the name, as for bind).
#[test]
fn unbind_with_empty_queue_and_key() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.declare(queue(c, "q", false, false, false));
        w.replies(bind(c, "", "amq.direct", ""), Reply::QueueBindOk);
        let unbind = Command::QueueUnbind {
            ch: c,
            queue: "".into(),
            exchange: "amq.direct".into(),
            routing_key: "".into(),
            arguments: Default::default(),
        };
        let branches = w.0.apply_all(&unbind).expect("unbind");
        assert_eq!(branches.len(), if p == SPEC { 2 } else { 1 }, "{p:?}");
        let routed = |b: &amqp_model::Branch| b.broker.bindings.iter().any(|x| x.key.as_str() == "q");
        assert!(!routed(&branches[0]), "{p:?}: the shortcut removes the binding keyed q");
        if p == SPEC {
            assert!(routed(&branches[1]), "the literal key '' leaves it");
        }
    }
}

/// `basic publish exchange must-exist` (404) and `basic publish exchange 02` (403) give no moment
/// for a transacted publish: under `spec` it fails at once or is held as failed, and then
/// `tx.commit` closes the channel with that code, nothing of the transaction done; a rollback
/// forgets it. RabbitMQ fails at once.
#[test]
fn transacted_publish_checks_at_once_or_at_commit() {
    for p in BOTH {
        let (mut w, c) = connected(p);
        w.declare(queue(c, "q", false, false, false));
        w.replies(Command::TxSelect { ch: c }, Reply::TxSelectOk);
        w.run(send(c, "", "q", "held"));
        let bad = send(c, "nosuch", "q", "lost");
        let at_once = vec![channel_closed(c, NotFound, Method::BasicPublish)];
        if p == RABBIT {
            assert_eq!(w.outcomes(&bad), vec![at_once]);
            continue;
        }
        assert_eq!(w.outcomes(&bad), vec![at_once, vec![]]);
        let mut rolled = w.clone();
        rolled.take(bad.clone(), 1);
        rolled.replies(Command::TxRollback { ch: c }, Reply::TxRollbackOk);
        rolled.replies(Command::TxCommit { ch: c }, Reply::TxCommitOk);
        assert_eq!(rolled.ready("q"), vec![]);
        w.take(bad, 1);
        assert_eq!(w.run(Command::TxCommit { ch: c }), vec![channel_closed(c, NotFound, Method::TxCommit)]);
        assert_eq!(w.ready("q"), vec![], "nothing of the transaction is routed");
        // An internal exchange the same way, with 403.
        let c = w.channel(1, 2);
        w.run(Command::ExchangeDeclare {
            ch: c,
            exchange: "inner".into(),
            kind: Fanout,
            passive: false,
            durable: false,
            auto_delete: false,
            internal: true,
            arguments: Default::default(),
        });
        w.replies(Command::TxSelect { ch: c }, Reply::TxSelectOk);
        let internal = send(c, "inner", "", "m");
        assert_eq!(w.outcomes(&internal)[1], vec![]);
        w.take(internal, 1);
        assert_eq!(w.run(Command::TxCommit { ch: c }), vec![channel_closed(c, AccessRefused, Method::TxCommit)]);
    }
}
