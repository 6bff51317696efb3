//! `cargo bench -p amqp-conformance --bench runner` (part of `just bench`): the runner against a
//! live broker (`AMQP_URI`, default the local RabbitMQ), two plain tables.
//!
//! 1. Operations per second: the same sequence of AMQP operations (connect, open a channel,
//!    declare a queue, a few thousand cycles, delete the queue, close) performed by the runner (a
//!    trace replayed against the live target and validated against the model, step by step, with
//!    its final grace period) and by a plain lapin loop that performs them and awaits what a
//!    client would await, in the same run, each timed from connect to close. Operations are
//!    counted over the cycles. The ratio is the runner's share of the plain loop's speed.
//! 2. Traces per second for `--jobs 1, 2, 4, 8`: the fixture suite (traces that restart the
//!    broker left out) run through the suite runner, as the CLI runs it.
//! 3. One step with many deliveries: a fanout to 8 consumers, n deliveries all observed in one
//!    `wait` (as when a broker's deliveries arrive late on a busy machine), validated; beside it,
//!    the model making the same deliveries (its eager dispatch), in the same run.

use amqp_conformance::run::{record, Verdict};
use amqp_conformance::suite::{find_traces, load, restarts, run_suite, Status};
use amqp_conformance::target::live::LiveTarget;
use amqp_conformance::target::uri::BrokerUri;
use amqp_conformance::target::Timing;
use amqp_conformance::target::{Target, TargetSpec};
use amqp_conformance::trace::{parse, Trace};
use amqp_model::{Profile, ProfileName};
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const DEFAULT_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Iterations of each operation cycle.
const ROUNDS: usize = 3000;
/// Each measurement is repeated, runner and plain loop alternating; the best run of each is kept
/// (the least disturbed by the machine).
const REPEATS: usize = 5;

/// A cycle of operations, written once as trace steps and once as lapin calls.
#[derive(Clone, Copy, Debug)]
enum Cycle {
    /// publish to a queue, basic.get it, ack it: the work-queue round.
    PublishGetAck,
    /// queue.bind then queue.unbind: synchronous topology methods.
    BindUnbind,
}

impl Cycle {
    fn name(self) -> &'static str {
        match self {
            Cycle::PublishGetAck => "publish, get, ack",
            Cycle::BindUnbind => "queue.bind, queue.unbind",
        }
    }

    fn ops(self) -> usize {
        match self {
            Cycle::PublishGetAck => 3,
            Cycle::BindUnbind => 2,
        }
    }

    /// The trace: open, declare, then ROUNDS cycles.
    fn trace(self) -> Trace {
        let mut text = String::from("c1 connection.open\nc1.1 channel.open\nc1.1 queue.declare bench-q\n");
        for i in 1..=ROUNDS {
            match self {
                Cycle::PublishGetAck => {
                    text +=
                        &format!("c1.1 basic.publish \"\" bench-q m{i}\nc1.1 basic.get bench-q\nc1.1 basic.ack {i}\n")
                }
                Cycle::BindUnbind => {
                    text += "c1.1 queue.bind bench-q amq.direct k\nc1.1 queue.unbind bench-q amq.direct k\n"
                }
            }
        }
        text += "c1.1 queue.delete bench-q\n";
        parse(&text, "bench.trace").expect("the bench trace parses")
    }
}

/// The runner: replay the cycle's trace against the broker; operations/s over the cycles.
fn runner(uri: &BrokerUri, cycle: Cycle) -> f64 {
    let trace = cycle.trace();
    let mut target = LiveTarget::new(uri, Timing::default());
    let started = Instant::now();
    let recording = record(&trace, Profile::rabbitmq(), &mut target);
    let summary = target.finish();
    assert!(summary.problems.is_empty(), "{:?}", summary.problems);
    let elapsed = started.elapsed();
    assert_eq!(recording.verdict, Verdict::Pass, "the bench trace must pass against the broker");
    (ROUNDS * cycle.ops()) as f64 / elapsed.as_secs_f64()
}

/// The plain lapin loop: the same operations, awaiting each call as a client would.
fn plain(rt: &tokio::runtime::Runtime, uri: &str, cycle: Cycle) -> f64 {
    rt.block_on(async {
        let started = Instant::now();
        let conn = Connection::connect(uri, ConnectionProperties::default()).await.expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        let q = format!("bench-plain-{}", std::process::id());
        ch.queue_declare(q.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
            .await
            .expect("declare");
        for i in 1..=ROUNDS {
            match cycle {
                Cycle::PublishGetAck => {
                    let body = format!("m{i}");
                    ch.basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        body.as_bytes(),
                        BasicProperties::default(),
                    )
                    .await
                    .expect("publish");
                    let got = ch.basic_get(q.as_str().into(), BasicGetOptions::default()).await.expect("get");
                    let tag = got.expect("a message").delivery.delivery_tag;
                    ch.basic_ack(tag, BasicAckOptions::default()).await.expect("ack");
                }
                Cycle::BindUnbind => {
                    let (x, k) = ("amq.direct", "k");
                    ch.queue_bind(
                        q.as_str().into(),
                        x.into(),
                        k.into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .expect("bind");
                    ch.queue_unbind(q.as_str().into(), x.into(), k.into(), FieldTable::default())
                        .await
                        .expect("unbind");
                }
            }
        }
        ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await.expect("delete");
        conn.close(200, "OK".into()).await.expect("close");
        (ROUNDS * cycle.ops()) as f64 / started.elapsed().as_secs_f64()
    })
}

fn main() {
    let uri = std::env::var("AMQP_URI").unwrap_or_else(|_| DEFAULT_URI.to_string());
    let uri = BrokerUri::parse(&uri).unwrap_or_else(|e| panic!("AMQP_URI: {e}"));
    if let Err(e) = amqp_conformance::target::probe::check_login(&uri, Duration::from_secs(2)) {
        eprintln!("runner bench: {e}");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");

    println!("Operations/s against {} ({ROUNDS} cycles, best of {REPEATS})", uri);
    println!();
    println!("| cycle | runner ops/s | plain lapin ops/s | runner/plain |");
    println!("| --- | ---: | ---: | ---: |");
    for cycle in [Cycle::PublishGetAck, Cycle::BindUnbind] {
        // Alternate the two, so that a disturbance of the machine hits both alike; keep the best.
        let (mut r, mut p) = (0.0f64, 0.0f64);
        for _ in 0..REPEATS {
            r = r.max(runner(&uri, cycle));
            p = p.max(plain(&rt, uri.secret(), cycle));
        }
        println!("| {} | {r:.0} | {p:.0} | {:.2} |", cycle.name(), r / p);
    }

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let files = find_traces(&[root]).expect("fixtures");
    let traces: Vec<_> = load(&files)
        .expect("fixtures parse")
        .into_iter()
        .filter(|(_, t)| !restarts(t) && t.profile.is_none_or(|p| p == ProfileName::Rabbitmq))
        .collect();
    println!();
    println!("Traces/s: the fixture suite ({} traces) under the rabbitmq profile", traces.len());
    println!();
    println!("| jobs | seconds | traces/s | speed-up |");
    println!("| ---: | ---: | ---: | ---: |");
    let target = TargetSpec::Broker { uri: uri.clone(), timing: Timing::default(), restart: None };
    let mut base = None;
    for jobs in [1, 2, 4, 8] {
        let run = run_suite(&traces, &target, ProfileName::Rabbitmq, jobs, &|_, s| s, &mut |_| {});
        let failed: Vec<&str> = run
            .results
            .iter()
            .filter(|r| !matches!(r.status, Status::Pass | Status::Skip { .. }))
            .map(|r| r.file.as_str())
            .collect();
        assert!(failed.is_empty(), "traces failed in the bench: {failed:?}");
        let rate = traces.len() as f64 / run.elapsed.as_secs_f64();
        let base = *base.get_or_insert(rate);
        println!("| {jobs} | {:.2} | {rate:.1} | {:.2}x |", run.elapsed.as_secs_f64(), rate / base);
    }

    println!();
    println!("One step with n deliveries (fanout to 8 consumers, spec profile), best of {REPEATS}");
    println!();
    println!("| deliveries | model makes them (ms) | validator explains them (ms) | validator/model |");
    println!("| ---: | ---: | ---: | ---: |");
    for n in [100, 200, 400, 800] {
        let (mut made, mut explained) = (f64::MAX, f64::MAX);
        for _ in 0..REPEATS {
            let (m, e) = many_deliveries(n);
            made = made.min(m);
            explained = explained.min(e);
        }
        println!("| {n} | {made:.2} | {explained:.2} | {:.1} |", explained / made);
    }
}

/// Milliseconds the model takes to make `n` deliveries of a fanout to 8 consumers, and the
/// validator to explain them observed in one `wait`.
fn many_deliveries(n: usize) -> (f64, f64) {
    use amqp_conformance::validate::Validator;
    use amqp_model::check::config::cmd::{bind, consume, exchange, publish, queue};
    use amqp_model::{Broker, ChanRef, Command, ConnId, Content, ExchangeKind};
    let profile = Profile::spec();
    let c = ChanRef::new(1, 1);
    let mut setup = vec![
        Command::ConnectionOpen { conn: ConnId(1) },
        Command::ChannelOpen { ch: c },
        exchange(c, "ex", ExchangeKind::Fanout, false, false),
    ];
    for i in 0..8 {
        let q = format!("q{i}");
        setup.extend([
            queue(c, &q, false, false, false),
            bind(c, &q, "ex", ""),
            consume(c, &q, &format!("w{i}"), false),
        ]);
    }
    let (mut broker, mut validator) = (Broker::new(profile), Validator::new(profile));
    for cmd in &setup {
        let mut events = broker.apply(cmd).expect("setup");
        events.extend(broker.settle_internal());
        validator.command(cmd, &events).expect("setup is explained");
    }
    for m in 0..n / 8 {
        let cmd = publish(c, "ex", "", false, Content::text(&format!("m{m}")));
        broker.apply(&cmd).expect("publish");
        validator.command(&cmd, &[]).expect("a publish answers nothing");
    }
    let t = Instant::now();
    let all = broker.settle_internal();
    let made = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    validator.wait(&all).expect("the deliveries are explained");
    (made, t.elapsed().as_secs_f64() * 1e3)
}
