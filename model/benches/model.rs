//! `cargo bench -p amqp-model --bench model` (`just bench`): two plain tables.
//!
//! 1. Model step throughput. For each check configuration, random walks (a xorshift generator)
//!    of a few hundred steps from its setup through what the model checker offers in each
//!    state: commands from its menu, and internal steps. Over the states the walks pass through,
//!    the table gives steps per second for `apply` (in place, replaying the walks), the floor
//!    cost of a model-checker step (`clone` + hash of the broker, no `apply`) and a whole
//!    checker step (`clone`, `apply`, hash).
//! 2. Model checking, against the checker's own ceiling. stateright's two-phase-commit example
//!    (`examples/2pc.rs` of the stateright crate cargo downloaded: `cargo metadata` names its
//!    manifest, it is built from there into target/stateright-ceiling, nothing of it copied into
//!    the project) is checked with 8 resource managers, depth-first on every core, as its `check`
//!    does; then each named configuration but `deep` is checked by the release CLI the same way
//!    (`--search dfs`, every core), each in its own process (so its peak memory is its own). A row
//!    each: states, unique, depth, seconds, states/s, its ratio to the example's, peak memory and
//!    bytes of peak memory per unique state.

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
const CHECK_BUDGET: Duration = Duration::from_secs(400);

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
    println!("`apply` or `step`. floor = clone + hash of a broker the walk reached (std SipHash over the hashes");
    println!("its shared parts keep: what a step that changes nothing costs the checker).");
    println!();
    println!(
        "{:<14} {:>15} {:>15} {:>22} {:>11}",
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
        println!("{:<14} {:>15} {:>15} {:>22} {:>10.2}x", config.name, si(apply), si(floor), si(step), floor / apply);
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

/// Run `check <name> --search dfs --threads N` until it exits or `deadline`.
fn check(bin: &Path, name: &str, threads: usize, deadline: Instant) -> Outcome {
    let mut child = Process::new(bin)
        .args(["check", name, "--search", "dfs", "--threads", &threads.to_string()])
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

/// The stateright crate's manifest, as `cargo metadata` names it for this workspace.
fn stateright_manifest(workspace: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Process::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(workspace)
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages = meta["packages"].as_array().ok_or("cargo metadata: no packages")?;
    let stateright = packages.iter().find(|p| p["name"] == "stateright").ok_or("cargo metadata: no stateright")?;
    stateright["manifest_path"].as_str().map(PathBuf::from).ok_or_else(|| "no manifest_path".into())
}

/// stateright's 2pc example, built (release) from the registry's source into
/// target/stateright-ceiling; its lock file is the crate's own (`--locked`).
fn two_phase_commit() -> Result<PathBuf, String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace");
    let manifest = stateright_manifest(workspace)?;
    let target = workspace.join("target/stateright-ceiling");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Process::new(cargo)
        .args(["build", "-q", "--release", "--locked", "--example", "2pc", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("building {}'s 2pc example failed", manifest.display()));
    }
    Ok(target.join("release/examples/2pc"))
}

/// One row of the check table.
#[derive(Default)]
struct Row {
    states: f64,
    unique: f64,
    depth: String,
    seconds: f64,
    peak_kib: Option<u64>,
}

impl Row {
    fn rate(&self) -> f64 {
        self.states / self.seconds.max(1e-9)
    }
}

/// The peak resident memory of a running process, in KiB (`VmHWM`).
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Run the 2pc example's `check 8` and time it: the ceiling, states per second.
fn ceiling(bin: &Path) -> Result<Row, String> {
    let start = Instant::now();
    let mut child = Process::new(bin)
        .args(["check", "8"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).map(|_| s).unwrap_or_default()
    });
    let mut peak = None;
    loop {
        // The last reading before it exits (sampled: a lower bound of its peak).
        peak = peak_kib(child.id()).or(peak);
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = start.elapsed().as_secs_f64();
    let report = reader.join().expect("reader");
    // `Done. states=N, unique=N, depth=N, sec=N`
    let done = report.lines().find(|l| l.starts_with("Done.")).ok_or_else(|| format!("2pc said: {report}"))?;
    let field = |name: &str| {
        done.split([' ', ','])
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
            .ok_or_else(|| format!("no {name} in `{done}`"))
    };
    let number = |name: &str| field(name).and_then(|v| v.parse::<f64>().map_err(|e| e.to_string()));
    Ok(Row { states: number("states")?, unique: number("unique")?, depth: field("depth")?, seconds, peak_kib: peak })
}

/// Print a row: its numbers, the ratio of its states/s to the ceiling's, bytes per state.
fn print_row(name: &str, row: &Row, ceiling: Option<f64>) {
    let ratio = ceiling.map_or("?".to_string(), |c| format!("{:.2}x", row.rate() / c));
    let peak = row.peak_kib.map_or("?".to_string(), |k| format!("{:.1}", k as f64 / 1024.0));
    let per_state = row.peak_kib.map_or("?".to_string(), |k| format!("{:.0}", k as f64 * 1024.0 / row.unique.max(1.0)));
    print!(
        "{name:<14} {:>11} {:>10} {:>6} {:>8.2} {:>10} {:>7} {:>9} {:>8}",
        row.states,
        row.unique,
        row.depth,
        row.seconds,
        si(row.rate()),
        ratio,
        peak,
        per_state
    );
}

/// Checks each configuration, smallest first by a rough size (messages x menu), so that if the
/// budget runs out it is the largest that are stopped, after stateright's 2pc example.
fn check_table(configs: &[CheckConfig]) {
    let bin = cli();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut configs: Vec<&CheckConfig> = configs.iter().collect();
    configs.sort_by_key(|c| c.max_messages as usize * c.menu.len());
    println!(
        "model checking, depth-first on {threads} threads: stateright's 2pc example (`2pc check 8`, the ceiling), then \
         `{} check <config> --search dfs`, one process each",
        bin.display()
    );
    println!();
    println!(
        "{:<14} {:>11} {:>10} {:>6} {:>8} {:>10} {:>7} {:>9} {:>8}  properties",
        "config", "states", "unique", "depth", "seconds", "states/s", "ratio", "peak MiB", "B/state"
    );
    let top = two_phase_commit().and_then(|bin| ceiling(&bin));
    let rate = match &top {
        Ok(row) => {
            print_row("2pc (8 RMs)", row, Some(row.rate()));
            println!("  stateright's own example");
            Some(row.rate())
        }
        Err(e) => {
            println!("2pc (8 RMs)    not measured: {e}");
            None
        }
    };
    let deadline = Instant::now() + CHECK_BUDGET;
    for config in configs {
        std::io::stdout().flush().expect("stdout");
        match check(&bin, config.name, threads, deadline) {
            Outcome::Exited { status, report } => {
                let p = parse(&report);
                let num = |k: &str| p.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
                let row = Row {
                    states: num("states"),
                    unique: num("unique"),
                    depth: p.get("depth").cloned().unwrap_or_else(|| "?".into()),
                    seconds: num("seconds"),
                    peak_kib: p.get("peak MiB").and_then(|m| m.parse::<f64>().ok()).map(|m| (m * 1024.0) as u64),
                };
                print_row(config.name, &row, rate);
                println!("  {}", verdict(status, &report));
            }
            Outcome::Stopped => {
                println!("{:<14} stopped: the {}s budget for all checks ran out", config.name, CHECK_BUDGET.as_secs())
            }
        }
    }
}
