//! `cargo bench -p amqp-model --bench model` (`just bench`): two plain tables.
//!
//! 1. Model step throughput. For each check configuration, random walks (a xorshift generator)
//!    of a few hundred steps from its setup through what the model checker offers in each
//!    state: commands from its menu, and internal steps. Over the states the walks pass through,
//!    the table gives steps per second for `apply` (in place, replaying the walks), the floor
//!    cost of a model-checker step (`clone` + hash of the broker, no `apply`) and a whole
//!    checker step (`clone`, `apply`, hash).
//! 2. Model checking. Each named configuration but `deep` is checked by the release CLI in its
//!    own process (so its peak memory is its own), and its report parsed into a row.

use amqp_model::check::{Action, BrokerModel, CheckConfig};
use amqp_model::Broker;
use stateright::Model;
use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Steps per generated sequence (each starts from the configuration's setup).
const SEQUENCE: usize = 256;
/// Sequences per configuration.
const SEQUENCES: usize = 16;
/// How long each throughput measurement runs.
const MEASURE: Duration = Duration::from_millis(600);
/// Wall-clock budget for all the model checks together; a check still running when it is
/// spent is stopped and reported as such.
const CHECK_BUDGET: Duration = Duration::from_secs(150);

// The same allocator as the `amqp-model` CLI, so that the floor is measured as the checker runs.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let configs: Vec<CheckConfig> = CheckConfig::all().into_iter().filter(|c| c.name != "deep").collect();
    throughput_table(&configs);
    println!();
    check_table(&configs);
}

// ---------------------------------------------------------------------------------------------
// Throughput

/// Marsaglia's xorshift64: deterministic and dependency-free.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Take one step on the broker (its events are dropped).
fn take(b: &mut Broker, action: &Action) {
    match action {
        Action::Client(cmd) => {
            let _ = b.apply(cmd);
        }
        Action::Answer(cmd, script) => {
            let _ = b.apply_scripted(cmd, script);
        }
        Action::Broker(step) => {
            let _ = b.step(step);
        }
    }
}

fn hash(b: &Broker) -> u64 {
    let mut h = DefaultHasher::new();
    b.hash(&mut h);
    h.finish()
}

/// A configuration's generated sequences, and the states they pass through with the step taken
/// from each.
struct Workload {
    initial: Broker,
    sequences: Vec<Vec<Action>>,
    states: Vec<(Broker, Action)>,
}

/// Random walks through the configuration's universe: at each step, among what the model
/// checker would offer there, an internal step 1 time in 3 when there is one, else a command.
fn workload(config: &CheckConfig, rng: &mut XorShift) -> Workload {
    let model = BrokerModel::new(config.clone());
    let init = model.init_states().pop().expect("one initial state");
    let (mut sequences, mut states, mut offered) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..SEQUENCES {
        let (mut state, mut sequence) = (init.clone(), Vec::new());
        for _ in 0..SEQUENCE {
            offered.clear();
            model.actions(&state, &mut offered);
            // The checker lists commands first, then internal steps.
            let internal = offered.iter().filter(|a| matches!(a, Action::Broker(_))).count();
            let commands = offered.len() - internal;
            if offered.is_empty() {
                break;
            }
            let internal_turn = commands == 0 || internal > 0 && rng.below(3) == 0;
            let i = if internal_turn { commands + rng.below(internal) } else { rng.below(commands) };
            let action = offered[i].clone();
            states.push((state.broker.clone(), action.clone()));
            state = model.next_state(&state, action.clone()).expect("offered actions apply");
            sequence.push(action);
        }
        sequences.push(sequence);
    }
    Workload { initial: init.broker, sequences, states }
}

/// Steps per second of `round` (which takes `steps` steps), run repeatedly for [`MEASURE`].
fn rate(steps: usize, mut round: impl FnMut() -> u64) -> f64 {
    let start = Instant::now();
    let (mut rounds, mut sink) = (0u64, 0u64);
    while start.elapsed() < MEASURE {
        sink = sink.wrapping_add(round());
        rounds += 1;
    }
    std::hint::black_box(sink);
    (rounds * steps as u64) as f64 / start.elapsed().as_secs_f64()
}

fn throughput_table(configs: &[CheckConfig]) {
    println!("model step throughput: per configuration, {SEQUENCES} random walks of {SEQUENCE} steps from its setup");
    println!("through what the checker offers (1 step in 3 internal when one is offered); a step is one");
    println!("`apply` or `step`. floor = clone + hash of the broker (std SipHash; stateright's aHash is cheaper).");
    println!();
    println!(
        "{:<10} {:>15} {:>15} {:>22} {:>11}",
        "config", "apply steps/s", "floor steps/s", "clone+apply+hash /s", "apply/floor"
    );
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for config in configs {
        let w = workload(config, &mut rng);
        let n = w.states.len();
        let apply = rate(n, || {
            let mut sum = 0;
            for sequence in &w.sequences {
                let mut b = w.initial.clone();
                sequence.iter().for_each(|a| take(&mut b, a));
                sum += u64::from(b.next_msg);
            }
            sum
        });
        let floor = rate(n, || w.states.iter().map(|(b, _)| hash(&b.clone())).fold(0, u64::wrapping_add));
        let step = rate(n, || {
            let mut sum = 0u64;
            for (b, action) in &w.states {
                let mut b = b.clone();
                take(&mut b, action);
                sum = sum.wrapping_add(hash(&b));
            }
            sum
        });
        println!("{:<10} {:>15} {:>15} {:>22} {:>10.2}x", config.name, si(apply), si(floor), si(step), floor / apply);
    }
}

/// A rate with an SI suffix: `1.23M`.
fn si(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.2}M", x / 1e6),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Model checking

/// The release CLI, built first if it is missing or older than the model's sources.
fn cli() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = manifest.parent().expect("the workspace").join("target/release/amqp-model");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let stale = match built {
        Some(t) => t < newest(&manifest.join("src")),
        None => true,
    };
    if stale {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Process::new(cargo)
            .args(["build", "--release", "-p", "amqp-model", "--bin", "amqp-model"])
            .current_dir(manifest)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the release CLI failed");
    }
    bin
}

/// The newest modification time of the files under `dir`.
fn newest(dir: &Path) -> SystemTime {
    let mut t = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        let m = if path.is_dir() { newest(&path) } else { entry.metadata().and_then(|m| m.modified()).unwrap_or(t) };
        t = t.max(m);
    }
    t
}

/// How a check ended.
enum Outcome {
    /// The process exited.
    Exited { status: ExitStatus, report: String },
    /// Stopped at the end of the budget.
    Stopped,
}

/// Run `check <name>` until it exits or `deadline`.
fn check(bin: &Path, name: &str, deadline: Instant) -> Outcome {
    let mut child = Process::new(bin)
        .args(["check", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the CLI starts");
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).map(|_| s).unwrap_or_default()
    });
    loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            let report = reader.join().expect("reader");
            return Outcome::Exited { status, report };
        }
        if Instant::now() >= deadline {
            child.kill().expect("killable");
            child.wait().expect("waitable");
            return Outcome::Stopped;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The report's numbers by name: `states`, `unique`, `depth`, `seconds`, `states/s` (and any
/// other `name value` pair on the `states` line), and `peak MiB`.
fn parse(report: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in report.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["states", ..] => {
                out.extend(words.chunks(2).filter(|p| p.len() == 2).map(|p| (p[0].to_string(), p[1].to_string())))
            }
            ["peak", "memory", mib, "MiB"] => {
                out.insert("peak MiB".into(), mib.to_string());
            }
            _ => {}
        }
    }
    out
}

/// What the report says of the properties: `always` ones that fail, `sometimes` ones never
/// reached (the CLI exits 1 for either).
fn verdict(status: ExitStatus, report: &str) -> String {
    let lines = || report.lines().map(str::trim_start);
    let failing: Vec<&str> = lines().filter_map(|l| l.strip_prefix("FAILS")).map(str::trim).collect();
    let never = lines().filter(|l| l.starts_with("NEVER REACHED")).count();
    match (failing.is_empty(), never) {
        (false, _) => format!("FAILS: {}", failing.join("; ")),
        (true, 0) if status.success() => "all hold, all reached".into(),
        (true, 0) => format!("exited: {status}"),
        (true, n) => format!("all hold, {n} `sometimes` never reached"),
    }
}

/// Checks each configuration, smallest first by a rough size (messages x menu), so that if the
/// budget runs out it is the largest that are stopped.
fn check_table(configs: &[CheckConfig]) {
    let bin = cli();
    let mut configs: Vec<&CheckConfig> = configs.iter().collect();
    configs.sort_by_key(|c| c.max_messages as usize * c.menu.len());
    println!("model checking: `{} check <config>`, one process per configuration", bin.display());
    println!();
    let columns = ["states", "unique", "depth", "seconds", "states/s", "peak MiB"];
    print!("{:<10}", "config");
    columns.iter().for_each(|c| print!(" {c:>10}"));
    println!("  properties");
    let deadline = Instant::now() + CHECK_BUDGET;
    for config in configs {
        print!("{:<10}", config.name);
        std::io::stdout().flush().expect("stdout");
        match check(&bin, config.name, deadline) {
            Outcome::Exited { status, report } => {
                let row = parse(&report);
                columns.iter().for_each(|c| print!(" {:>10}", row.get(*c).map_or("?", String::as_str)));
                println!("  {}", verdict(status, &report));
            }
            Outcome::Stopped => println!("  stopped: the {}s budget for all checks ran out", CHECK_BUDGET.as_secs()),
        }
    }
}
