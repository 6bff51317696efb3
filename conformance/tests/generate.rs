//! Generated traces: the same seed gives the same traces and another seed others; every trace
//! reads back as written, is one the live target can perform, and passes on the model under
//! both profiles; together they cover what the generator promises (topic wildcards and empty
//! words, headers and fanout exchanges, prefetch, nacks and rejects, cancels, closes); a
//! divergence from a faulty model is shrunk to a small trace that still shows it, and every
//! trace tried on the way is well-formed; regressions are saved in the trace format; and 30
//! generated traces pass against the live RabbitMQ (`AMQP_URI`, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`).

use amqp_conformance::generate::{
    case, compile, generate, origin, plan, save_regression, shrink, traces, GenConfig, TOPIC_PATTERNS,
};
use amqp_conformance::run::{record, replay, Recording, Verdict};
use amqp_conformance::target::live::LiveTarget;
use amqp_conformance::target::model::ModelTarget;
use amqp_conformance::target::probe::reachable;
use amqp_conformance::target::uri::BrokerUri;
use amqp_conformance::target::Target;
use amqp_conformance::target::Timing;
use amqp_conformance::trace::{parse, write, StepKind, Trace};
use amqp_model::event::Reply;
use amqp_model::{ChanRef, Command, ConnId, Event, ExchangeKind, Fault, Faults, Name, Profile, ProfileName, Value};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::time::Instant;

const DEFAULT_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn model(profile: Profile) -> ModelTarget {
    ModelTarget::new(profile, Faults::NONE)
}

/// Every command of `trace` is one the live target can send, given what the model did on it
/// (`recording`): no restart or drop, no connection opened twice, no channel opened while open,
/// no method on a channel or connection that is not open (the server may have closed it).
fn assert_performable(trace: &Trace, recording: &Recording) {
    let name = trace.title.clone().unwrap_or_default();
    let mut conns: BTreeSet<ConnId> = BTreeSet::new();
    let mut chans: BTreeSet<ChanRef> = BTreeSet::new();
    for step in &recording.steps {
        if let Some(command) = &step.command {
            let line = step.line;
            match command {
                Command::Restart | Command::ConnectionDrop { .. } => panic!("{name}:{line}: an environment event"),
                // Time passing needs nothing open (and every target performs it).
                Command::Pass { .. } => {}
                Command::ConnectionOpen { conn } => assert!(conns.insert(*conn), "{name}:{line}: opened twice"),
                Command::ConnectionClose { conn } => assert!(conns.contains(conn), "{name}:{line}: not open"),
                Command::ChannelOpen { ch } => {
                    assert!(conns.contains(&ch.conn), "{name}:{line}: its connection is not open");
                    assert!(chans.insert(*ch), "{name}:{line}: channel already open");
                }
                other => {
                    let ch = other.channel().expect("a channel method");
                    assert!(chans.contains(&ch), "{name}:{line}: {ch} is not open");
                }
            }
        }
        for e in &step.events {
            match e {
                Event::ChannelCloseOk { ch } | Event::ChannelClosed { ch, .. } => {
                    chans.remove(ch);
                }
                Event::ConnectionCloseOk { conn } | Event::ConnectionClosed { conn, .. } => {
                    conns.remove(conn);
                    chans.retain(|c| c.conn != *conn);
                }
                _ => {}
            }
        }
    }
}

/// A trace is well-formed: it reads back as written, has the generated title and no header
/// besides (and `profile: rabbitmq` when generated for RabbitMQ only), passes on the model under
/// both profiles (the `rabbitmq` model's behaviour also under the `spec` validator) and can be
/// performed by the live target.
fn assert_well_formed(trace: &Trace, config: &GenConfig) {
    let name = trace.title.clone().unwrap_or_default();
    assert!(name.starts_with("generated"), "{name}");
    assert_eq!(parse(&write(trace), "again").as_ref(), Ok(trace), "{name} does not read back as written");
    assert!(trace.cites.is_empty());
    let profiles: &[(Profile, Profile)] = if config.spec_compatible {
        assert_eq!(trace.profile, None, "{name}");
        &[
            (Profile::rabbitmq(), Profile::rabbitmq()),
            (Profile::rabbitmq(), Profile::spec()),
            (Profile::spec(), Profile::spec()),
        ]
    } else {
        assert_eq!(trace.profile, Some(ProfileName::Rabbitmq), "{name}");
        &[(Profile::rabbitmq(), Profile::rabbitmq())]
    };
    for (broker, validator) in profiles {
        let recording = record(trace, *validator, &mut model(*broker));
        assert_eq!(
            recording.verdict,
            Verdict::Pass,
            "{name}: the {} model, validated under {}:\n{}",
            broker.name,
            validator.name,
            write(trace)
        );
        assert_performable(trace, &recording);
    }
}

#[test]
fn the_same_seed_gives_the_same_traces() {
    let config = GenConfig::default();
    let traces = generate(42, 40, &config);
    assert_eq!(traces, generate(42, 40, &config));
    // A case does not depend on how many were asked for, nor on the cases before it.
    assert_eq!(generate(42, 10, &config)[..], traces[..10]);
    assert_eq!(case(42, 17, &config), traces[17]);
    assert_eq!(traces[17].title.as_deref(), Some("generated: seed 42 case 17"));
    assert_eq!(origin(&traces[17]), Some((42, 17)));
    assert_eq!(compile(&plan(42, 17, &config), &config, "generated: seed 42 case 17"), traces[17]);
}

#[test]
fn different_seeds_and_cases_give_different_traces() {
    let config = GenConfig::default();
    let body = |t: &Trace| t.steps.iter().map(|s| s.kind.clone()).collect::<Vec<_>>();
    let one: Vec<_> = generate(1, 20, &config).iter().map(body).collect();
    let two: Vec<_> = generate(2, 20, &config).iter().map(body).collect();
    assert_ne!(one, two);
    assert!(one.iter().zip(&two).filter(|(a, b)| a == b).count() <= 1);
    let distinct: BTreeSet<String> =
        generate(1, 50, &config).iter().map(|t| write(&Trace { title: None, ..t.clone() })).collect();
    assert!(distinct.len() >= 48, "only {} distinct traces of 50", distinct.len());
}

#[test]
fn generated_traces_are_well_formed_and_pass_on_the_model_under_both_profiles() {
    let config = GenConfig::default();
    let traces = generate(7, 300, &config);
    let sizes: Vec<usize> = traces.iter().map(|t| t.commands().count()).collect();
    let mean = sizes.iter().sum::<usize>() / sizes.len();
    assert!((15..=45).contains(&mean), "{mean} commands per trace on average");
    assert!(traces.iter().all(|t| t.commands().count() >= 3));
    for trace in &traces {
        assert_well_formed(trace, &config);
    }
}

#[test]
fn rabbitmq_only_traces_pass_on_the_rabbitmq_model() {
    let config = GenConfig { spec_compatible: false, steps: 30, ..GenConfig::default() };
    for trace in generate(8, 200, &config) {
        assert_well_formed(&trace, &config);
    }
}

#[test]
fn longer_traces_and_a_wider_universe_are_well_formed() {
    let config = GenConfig { steps: 60, connections: 3, channels: 3, ..GenConfig::default() };
    for trace in generate(9, 60, &config) {
        assert_well_formed(&trace, &config);
    }
    let small = GenConfig { steps: 10, connections: 1, channels: 1, queues: 1, exchanges: 1, ..GenConfig::default() };
    for trace in generate(10, 60, &small) {
        assert_well_formed(&trace, &small);
        assert!(trace.commands().all(|c| c.channel().is_none_or(|ch| ch == ChanRef::new(1, 1))));
    }
}

#[test]
fn kinds_of_action_can_be_left_out() {
    use amqp_model::Command;
    let all = GenConfig::default();
    let config = GenConfig { without: vec!["get".into(), "exchange-bind".into(), "requeue".into()], ..all.clone() };
    let (with, without) = (generate(12, 100, &all), generate(12, 100, &config));
    let gets = |c: &Command| matches!(c, Command::BasicGet { .. });
    let e2e = |c: &Command| matches!(c, Command::ExchangeBind { .. });
    let requeue = |c: &Command| {
        matches!(c, Command::BasicNack { requeue: true, .. } | Command::BasicReject { requeue: true, .. })
    };
    for kind in [gets, e2e, requeue] {
        assert!(with.iter().any(|t| t.commands().any(kind)), "the default batch has some");
        assert!(!without.iter().any(|t| t.commands().any(kind)), "left out");
    }
    for trace in &without {
        assert_well_formed(trace, &config);
    }
    // Acks and publishes are still there.
    assert!(without.iter().any(|t| t.commands().any(|c| matches!(c, Command::BasicAck { .. }))));
}

/// Replaying generated traces on the model target is cheap: the validator keeps up.
#[test]
fn the_model_replays_a_thousand_traces_quickly() {
    let config = GenConfig::default();
    let traces = generate(11, 1000, &config);
    let start = Instant::now();
    for trace in &traces {
        assert_eq!(replay(trace, Profile::rabbitmq(), &mut model(Profile::rabbitmq())), Verdict::Pass);
    }
    let elapsed = start.elapsed();
    eprintln!("1000 generated traces replayed on the model in {elapsed:?}");
    // About 0.2 s on the development machines: a generous bound for slow CI runners.
    assert!(elapsed.as_secs() < 20, "{elapsed:?}");
}

#[test]
fn generated_traces_cover_what_the_issue_lists() {
    let config = GenConfig::default();
    let traces = generate(3, 200, &config);
    let commands = || traces.iter().flat_map(|t| t.commands());
    let topic: BTreeSet<Name> = traces
        .iter()
        .flat_map(|t| {
            let topics: BTreeSet<Name> = t
                .commands()
                .filter_map(|c| match c {
                    Command::ExchangeDeclare { exchange, kind: ExchangeKind::Topic, .. } => Some(exchange.clone()),
                    _ => None,
                })
                .collect();
            t.commands()
                .filter_map(move |c| match c {
                    Command::QueueBind { exchange, routing_key, .. } if topics.contains(exchange) => {
                        Some(routing_key.clone())
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(topic.iter().any(|k| k.as_str().split('.').any(|w| w == "*")), "a topic binding with *");
    assert!(topic.iter().any(|k| k.as_str().split('.').any(|w| w == "#")), "a topic binding with #");
    assert!(
        topic.iter().any(|k| !k.is_empty() && k.as_str().split('.').any(str::is_empty)),
        "a topic binding with an empty word"
    );
    assert!(topic.len() >= TOPIC_PATTERNS.len() / 2, "{topic:?}");
    let x_match = |mode: &str| {
        commands().any(|c| {
            matches!(c, Command::QueueBind { arguments, .. }
                if arguments.get(&Name::from("x-match")) == Some(&Value::Str(Name::from(mode))))
        })
    };
    assert!(x_match("all") && x_match("any"), "headers bindings with x-match all and any");
    assert!(commands().any(|c| matches!(c, Command::ExchangeDeclare { kind: ExchangeKind::Fanout, .. })));
    assert!(commands().any(|c| matches!(c, Command::ExchangeBind { .. })));
    assert!(commands().any(|c| matches!(c, Command::BasicQos { prefetch_count: 1.., global: false, .. })));
    assert!(commands().all(|c| !matches!(c, Command::BasicQos { global: true, .. })));
    assert!(commands().any(|c| matches!(c, Command::BasicNack { requeue: true, .. })), "nack with requeue");
    assert!(commands().any(|c| matches!(c, Command::BasicNack { multiple: true, .. })));
    assert!(commands().any(|c| matches!(c, Command::BasicReject { requeue: false, .. })), "reject, no requeue");
    assert!(commands().any(|c| matches!(c, Command::BasicReject { requeue: true, .. })));
    assert!(commands().any(|c| matches!(c, Command::BasicAck { multiple: true, .. })));
    assert!(commands().any(|c| matches!(c, Command::BasicCancel { .. })));
    assert!(commands().any(|c| matches!(c, Command::ChannelClose { .. })));
    assert!(commands().any(|c| matches!(c, Command::ConnectionClose { .. })));
    assert!(commands().any(|c| matches!(c, Command::BasicGet { .. })));
    assert!(commands().any(|c| matches!(c, Command::BasicPublish { mandatory: true, .. })));
    assert!(commands().any(|c| matches!(c, Command::BasicPublish { exchange, .. } if exchange.is_empty())));
    assert!(commands().any(|c| matches!(c, Command::QueueDeclare { passive: true, .. })));
    assert!(commands().any(|c| matches!(c, Command::QueuePurge { .. })));
    assert!(commands().any(|c| matches!(c, Command::QueueUnbind { .. })));
    assert!(commands().any(|c| matches!(c, Command::QueueDelete { .. })));
    assert!(commands().any(|c| matches!(c, Command::ConnectionOpen { conn: ConnId(2) })));
    // Several queues on one exchange, and several consumers with prefetch on one queue.
    assert!(traces.iter().any(|t| {
        let bound: BTreeSet<(&Name, &Name)> = t
            .commands()
            .filter_map(|c| match c {
                Command::QueueBind { queue, exchange, .. } => Some((exchange, queue)),
                _ => None,
            })
            .collect();
        bound.iter().any(|(x, q)| bound.iter().any(|(y, r)| x == y && q != r))
    }));
    assert!(traces.iter().any(|t| {
        let mut prefetched: Vec<(ChanRef, &Name)> = Vec::new();
        let mut limited: BTreeSet<ChanRef> = BTreeSet::new();
        for c in t.commands() {
            match c {
                Command::BasicQos { ch, prefetch_count: 1.., .. } => {
                    limited.insert(*ch);
                }
                Command::BasicConsume { ch, queue, no_ack: false, .. } if limited.contains(ch) => {
                    prefetched.push((*ch, queue))
                }
                _ => {}
            }
        }
        prefetched.iter().any(|(a, q)| prefetched.iter().any(|(b, r)| a != b && q == r))
    }));
    // What the model did on them: deliveries, redeliveries, returns, and a refused tag.
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let recordings: Vec<Recording> =
        traces.iter().map(|t| record(t, Profile::rabbitmq(), &mut model(Profile::rabbitmq()))).collect();
    for e in recordings.iter().flat_map(|r| r.steps.iter().flat_map(|s| &s.events)) {
        seen.insert(match e {
            Event::Deliver { redelivered: true, .. } => "redelivery",
            Event::Deliver { .. } => "delivery",
            Event::Return { .. } => "return",
            Event::ChannelClosed { .. } => "channel error",
            Event::Reply { reply: Reply::GetOk { .. }, .. } => "get-ok",
            Event::Reply { reply: Reply::GetEmpty, .. } => "get-empty",
            _ => continue,
        });
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    // Nothing is steered around any more: a close that returns deliveries is followed by the next
    // command at once (the model takes the copies back by a step of its own), with no wait.
    assert!(traces.iter().all(|t| t.steps.iter().all(|s| s.kind != StepKind::Wait)), "no wait");
    let closes = |t: &&Trace| {
        t.steps.iter().any(|s| matches!(&s.kind, StepKind::Command { command: Command::ChannelClose { .. }, .. }))
    };
    assert!(traces.iter().any(|t| closes(&t)), "a channel close");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// The strategy works in `proptest!` tests like any other.
    #[test]
    fn the_strategy_gives_well_formed_traces(trace in traces(&GenConfig::default())) {
        prop_assert_eq!(trace.title.as_deref(), Some("generated"));
        assert_well_formed(&trace, &GenConfig::default());
    }
}

/// The first case of `seed` (among 300) on which `fault` makes the model diverge.
fn failing_case(seed: u64, fault: Fault, config: &GenConfig) -> Option<usize> {
    (0..300).find(|i| {
        let mut faulty = ModelTarget::new(Profile::rabbitmq(), Faults::only(fault));
        replay(&case(seed, *i, config), Profile::rabbitmq(), &mut faulty) != Verdict::Pass
    })
}

#[test]
fn a_divergence_from_a_faulty_model_shrinks_to_a_small_trace() {
    let config = GenConfig::default();
    let faults = [Fault::NoRedeliveredFlag, Fault::TopicStarIsMany, Fault::FanoutFirstOnly, Fault::PrefetchOffByOne];
    for fault in faults {
        let index = failing_case(5, fault, &config).unwrap_or_else(|| panic!("no case of 300 finds {fault:?}"));
        let original = case(5, index, &config);
        let still_fails = |t: &Trace| {
            let mut faulty = ModelTarget::new(Profile::rabbitmq(), Faults::only(fault));
            replay(t, Profile::rabbitmq(), &mut faulty) != Verdict::Pass
        };
        let (shrunk, attempts) = shrink(5, index, &config, still_fails);
        let (before, after) = (original.commands().count(), shrunk.commands().count());
        eprintln!("{fault:?}: case {index} shrunk from {before} to {after} commands in {attempts} attempts");
        eprintln!("{}", write(&shrunk));
        assert!(still_fails(&shrunk), "{fault:?}: the shrunk trace no longer fails");
        assert!(after < before, "{fault:?}: not shorter ({before} -> {after})");
        assert!(after <= 10, "{fault:?}: {after} commands left:\n{}", write(&shrunk));
        assert!(attempts <= config.shrink_attempts);
        // A counterexample to the fault, not a broken trace: the model itself passes it.
        assert_well_formed(&shrunk, &config);
        assert_eq!(shrunk.title, Some(format!("generated: seed 5 case {index}, shrunk")));
        assert_eq!(origin(&shrunk), Some((5, index)));
    }
}

#[test]
fn every_trace_tried_while_shrinking_is_well_formed() {
    let config = GenConfig::default();
    for index in 0..5 {
        let mut tried = 0;
        let (shrunk, attempts) = shrink(21, index, &config, |t| {
            tried += 1;
            assert_well_formed(t, &config);
            t.commands().any(|c| matches!(c, Command::BasicPublish { .. }))
        });
        assert_eq!(tried, attempts);
        // The smallest trace with a publish: a connection, a channel, maybe a declare, the publish.
        assert!(shrunk.commands().count() <= 4, "{}", write(&shrunk));
        assert!(matches!(shrunk.commands().last(), Some(Command::BasicPublish { .. })), "{}", write(&shrunk));
    }
}

#[test]
fn shrinking_stops_within_its_attempts() {
    let config = GenConfig { steps: 60, shrink_attempts: 15, ..GenConfig::default() };
    let mut calls = 0;
    // Fails on anything but a trace that is nearly empty: there is always something to try.
    let (_, attempts) = shrink(4, 0, &config, |t| {
        calls += 1;
        t.commands().count() > 2
    });
    assert_eq!((attempts, calls), (15, 15));
    // A case that does not fail is given back as it is, after one run.
    let (same, attempts) = shrink(4, 1, &config, |_| false);
    assert_eq!((same, attempts), (case(4, 1, &config), 1));
}

#[test]
fn a_saved_regression_reads_back_as_the_same_trace() {
    let dir = std::env::temp_dir().join(format!("amqp-generate-{}", std::process::id()));
    let trace = case(12, 3, &GenConfig::default());
    let note = "line 9: after `c1.1 basic.get q1` the broker did:\n  c1.1 basic.get-empty\n";
    let path = save_regression(&dir, "Rabbit MQ/3.10", &trace, note).expect("written");
    assert_eq!(path, dir.join("rabbit-mq-3.10").join("seed-12-case-3.trace"));
    let text = std::fs::read_to_string(&path).expect("readable");
    assert!(text.starts_with("title: generated: seed 12 case 3\n"), "{text}");
    assert!(text.contains("\n# line 9: after `c1.1 basic.get q1` the broker did:\n#   c1.1 basic.get-empty\n"));
    assert!(text.contains("# Generated: case 3 of seed 12"));
    let back = parse(&text, &path.display().to_string()).expect("parses");
    let kinds = |t: &Trace| t.steps.iter().map(|s| s.kind.clone()).collect::<Vec<_>>();
    assert_eq!((&back.title, &back.cites, back.profile), (&trace.title, &trace.cites, trace.profile));
    assert_eq!(kinds(&back), kinds(&trace));
    assert_eq!(replay(&back, Profile::rabbitmq(), &mut model(Profile::rabbitmq())), Verdict::Pass);
    // Saving again replaces the file; a label with nothing usable still gives a directory.
    save_regression(&dir, "Rabbit MQ/3.10", &trace, "again").expect("written");
    assert_eq!(std::fs::read_dir(dir.join("rabbit-mq-3.10")).expect("a directory").count(), 1);
    let odd = save_regression(&dir, "../..", &trace, "").expect("written");
    assert!(odd.starts_with(&dir), "{}", odd.display());
    std::fs::remove_dir_all(&dir).expect("removed");
}

#[test]
fn generated_traces_pass_against_rabbitmq() {
    let uri = std::env::var("AMQP_URI").unwrap_or_else(|_| DEFAULT_URI.to_string());
    let uri = BrokerUri::parse(&uri).unwrap_or_else(|e| panic!("AMQP_URI: {e}"));
    if let Err(e) = reachable(&uri) {
        panic!("{e}: start RabbitMQ (`rabbitmq-server -detached`) or set AMQP_URI");
    }
    let start = Instant::now();
    let mut failures = Vec::new();
    for trace in generate(2024, 30, &GenConfig::default()) {
        let mut target = LiveTarget::new(&uri, Timing::default());
        let verdict = replay(&trace, Profile::rabbitmq(), &mut target);
        let summary = target.finish();
        let name = trace.title.clone().unwrap_or_default();
        if let Some(why) = &summary.incomplete {
            failures.push(format!("{name}: incomplete: {why}\n{}", write(&trace)));
        } else if verdict != Verdict::Pass {
            failures.push(format!("{name}: {verdict}\n{}", write(&trace)));
        } else if !summary.problems.is_empty() {
            failures.push(format!("{name}: {:?}", summary.problems));
        }
    }
    eprintln!("30 generated traces against RabbitMQ in {:?}", start.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// With `lifetime`, traces use RabbitMQ's message-lifetime extensions: queues with a TTL, a
/// length limit and a dead-letter exchange, messages with an expiration, time passing; and on
/// the model some dead-lettered message reaches a client.
#[test]
fn lifetime_traces_use_ttl_limits_and_dead_letters() {
    let config = GenConfig { lifetime: true, spec_compatible: false, ..GenConfig::default() };
    let traces = generate(11, 150, &config);
    let commands = || traces.iter().flat_map(|t| t.commands());
    assert!(commands().any(|c| matches!(c, Command::Pass { ms: 400 })));
    assert!(commands().any(|c| matches!(c, Command::QueueDeclare { arguments, .. }
        if arguments.contains_key(&Name::from("x-dead-letter-exchange")))));
    assert!(commands().any(|c| matches!(c, Command::BasicPublish { content, .. }
        if content.properties.get("expiration").is_some())));
    let mut dead_lettered = false;
    for trace in &traces {
        assert_well_formed(trace, &config);
        let recording = record(trace, Profile::rabbitmq(), &mut model(Profile::rabbitmq()));
        assert_eq!(recording.verdict, Verdict::Pass, "{}", write(trace));
        for e in recording.steps.iter().flat_map(|s| s.events.iter()) {
            match e {
                Event::Deliver { message, .. } | Event::Reply { reply: Reply::GetOk { message, .. }, .. }
                    if message.0.content.headers.contains_key(&Name::from("x-death")) =>
                {
                    dead_lettered = true
                }
                _ => {}
            }
        }
    }
    assert!(dead_lettered, "no generated trace got a dead-lettered message");
}

/// With `consumers`, traces use RabbitMQ's consumer extensions: consumers with priorities 0, 5
/// and 10, a queue with a single active consumer; each passes on the model.
#[test]
fn consumers_traces_use_priorities_and_a_single_active_consumer() {
    let config = GenConfig { consumers: true, spec_compatible: false, ..GenConfig::default() };
    let traces = generate(12, 150, &config);
    let commands = || traces.iter().flat_map(|t| t.commands());
    for p in [0, 5, 10] {
        assert!(commands().any(|c| matches!(c, Command::BasicConsume { arguments, .. }
            if arguments.get(&Name::from("x-priority")) == Some(&Value::Int(p)))));
    }
    let single_active = |c: &Command| {
        matches!(c, Command::QueueDeclare { arguments, .. }
            if arguments.get(&Name::from("x-single-active-consumer")) == Some(&Value::Bool(true)))
    };
    assert!(commands().any(single_active));
    for trace in &traces {
        assert_well_formed(trace, &config);
        let recording = record(trace, Profile::rabbitmq(), &mut model(Profile::rabbitmq()));
        assert_eq!(recording.verdict, Verdict::Pass, "{}", write(trace));
    }
}

/// With `quorum`, `q1` is a durable quorum queue with a delivery limit of 2: each trace passes
/// on the model, and some copy comes back to it and is delivered again with its count in
/// `x-delivery-count`.
#[test]
fn quorum_traces_use_a_quorum_queue_and_count_deliveries() {
    let config = GenConfig { quorum: true, spec_compatible: false, ..GenConfig::default() };
    let traces = generate(13, 150, &config);
    let quorum = |c: &Command| {
        matches!(c, Command::QueueDeclare { durable: true, arguments, .. }
            if arguments.get(&Name::from("x-queue-type")) == Some(&Value::Str(Name::from("quorum"))))
    };
    assert!(traces.iter().flat_map(|t| t.commands()).any(quorum));
    let mut counted = false;
    for trace in &traces {
        assert_well_formed(trace, &config);
        let recording = record(trace, Profile::rabbitmq(), &mut model(Profile::rabbitmq()));
        assert_eq!(recording.verdict, Verdict::Pass, "{}", write(trace));
        for e in recording.steps.iter().flat_map(|s| s.events.iter()) {
            if let Event::Deliver { message, .. } | Event::Reply { reply: Reply::GetOk { message, .. }, .. } = e {
                let count = message.0.content.headers.get(&Name::from("x-delivery-count")).and_then(Value::int);
                counted |= count.is_some_and(|n| n > 0);
            }
        }
    }
    assert!(counted, "no generated trace got a message back from the quorum queue");
}
