//! Generated traces: random scenarios over a small universe, reproducible from a seed, shrunk to
//! a minimal counterexample when a broker diverges on one, and saved as regression fixtures.
//!
//! A scenario is first a [`Plan`]: which exchange types, then topology actions (queues bound to
//! exchanges with overlapping and near-miss keys, topic patterns with `*`, `#` and empty words,
//! headers bindings with `x-match` all and any, an exchange-to-exchange binding), then traffic
//! (consumers with and without prefetch, publishes that hit and narrowly miss the bindings,
//! sometimes `mandatory`, `basic.get`, acknowledgements, nacks and rejects with and without
//! requeue, cancels, channel and connection closes, purges, counts, unbinds, queue deletes).
//! [`compile`] turns it into a [`Trace`] in the ordinary trace format, opening connections and
//! channels and declaring what each action needs, and choosing delivery tags and consumer tags
//! that exist at that point of the run (see its module for what it leaves out and why).
//!
//! - [`traces`] is the proptest strategy of traces, for use in `proptest!` tests;
//! - [`generate`] and [`case`] produce the traces of a seed: case `i` of seed `s` is the same
//!   trace in every run and on every machine (for a given version of this module), whatever
//!   `count` was asked for;
//! - [`shrink`] shrinks case `i` of seed `s` against a predicate (for a live broker: "replaying it
//!   against a fresh target still diverges"), within [`GenConfig::shrink_attempts`];
//! - [`save_regression`] writes the result under `fixtures/regressions/<broker>/`.
//!
//! ```
//! use amqp_conformance::generate::{generate, GenConfig};
//! use amqp_conformance::run::{replay, Verdict};
//! use amqp_conformance::target::model::ModelTarget;
//! use amqp_model::{Faults, Profile};
//!
//! let config = GenConfig::default();
//! let traces = generate(7, 3, &config);
//! assert_eq!(traces[1].title.as_deref(), Some("generated: seed 7 case 1"));
//! for trace in &traces {
//!     let mut model = ModelTarget::new(Profile::rabbitmq(), Faults::NONE);
//!     assert_eq!(replay(trace, Profile::rabbitmq(), &mut model), Verdict::Pass);
//! }
//! ```

mod compile;
mod plan;

pub use compile::{compile, DIRECT_KEYS, FANOUT_KEYS, PUBLISH_KEYS, TOPIC_PATTERNS};
pub use plan::{Action, Plan, PlanStrategy, PlanTree, Route, Slot, TagPick, WITHOUT_KINDS};

use crate::trace::{self, Trace};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The shape of generated traces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenConfig {
    /// About how many actions a plan has (topology and traffic together); the trace has more
    /// lines, for the opens and declares the actions need.
    pub steps: usize,
    /// Connections used (`c1` ...), at least 1.
    pub connections: u8,
    /// Channels used on each connection (`cN.1` ...), at least 1.
    pub channels: u8,
    /// Queues (`q1` ...), at least 1.
    pub queues: u8,
    /// Exchanges (`x1` ...), at least 1; with two or more, an exchange-to-exchange binding from
    /// `x1` to `x2` may be generated.
    pub exchanges: u8,
    /// Keep only traces whose outcome is the same under both profiles: what the `rabbitmq` model
    /// does on them is also allowed by the `spec` model, and they carry no `profile:` line.
    /// Without it, traces may rely on RabbitMQ's readings (a requeued message going back to the
    /// consumer that rejected it) and say `profile: rabbitmq`.
    pub spec_compatible: bool,
    /// How many times [`shrink`] may run its predicate (each run is a replay against a broker).
    pub shrink_attempts: usize,
    /// Kinds of action left out of the traces ([`WITHOUT_KINDS`]): for a broker without a
    /// feature, or with a known deviation in it that would fail most traces.
    pub without: Vec<String>,
    /// RabbitMQ's message-lifetime extensions (`amqp_model::lifetime`): `q2` is declared with a
    /// message TTL of 200 ms, a length limit of 2 and `x1` as its dead-letter exchange, `q3`
    /// with a length limit of 1 that refuses publishes; every third message has an `expiration`
    /// of 100 ms; and time passes (`pass 50`, `pass 400`). Only for the `rabbitmq` profile (the
    /// specification gives those arguments no meaning), so it implies `spec_compatible: false`.
    pub lifetime: bool,
    /// RabbitMQ's consumer extensions (`amqp_model::basic::consumer_priority`,
    /// `amqp_model::basic::single_active`): consumers subscribe with an `x-priority` of 0, 5 or
    /// 10 in turn, and `q4` is declared with `x-single-active-consumer`. Only for the `rabbitmq`
    /// profile, so it implies `spec_compatible: false`.
    pub consumers: bool,
    /// RabbitMQ's quorum queues (`amqp_model::quorum`): `q1` is declared durable as a quorum
    /// queue with an `x-delivery-limit` of 2. Only for the `rabbitmq` profile, so it implies
    /// `spec_compatible: false`.
    pub quorum: bool,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            steps: 20,
            connections: 2,
            channels: 2,
            queues: 4,
            exchanges: 2,
            spec_compatible: true,
            shrink_attempts: 200,
            without: Vec::new(),
            lifetime: false,
            consumers: false,
            quorum: false,
        }
    }
}

/// The proptest strategy of generated traces (titled `generated`).
pub fn traces(config: &GenConfig) -> impl Strategy<Value = Trace> {
    let compiled = config.clone();
    PlanStrategy::new(config).prop_map(move |plan| compile(&plan, &compiled, "generated"))
}

/// The title of case `index` of `seed`.
pub fn title(seed: u64, index: usize) -> String {
    format!("generated: seed {seed} case {index}")
}

/// The seed and case a generated trace's title names (also after shrinking).
pub fn origin(trace: &Trace) -> Option<(u64, usize)> {
    let rest = trace.title.as_deref()?.strip_prefix("generated: seed ")?;
    let mut words = rest.split_whitespace();
    let seed = words.next()?.parse().ok()?;
    if words.next()? != "case" {
        return None;
    }
    let index = words.next()?.trim_end_matches(',').parse().ok()?;
    Some((seed, index))
}

/// A test runner whose generator is determined by `seed` and `index` alone.
fn runner(seed: u64, index: usize) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(index as u64).to_le_bytes());
    bytes[16..].copy_from_slice(b"amqp-conformance");
    TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// The value tree of case `index` of `seed`.
fn tree(seed: u64, index: usize, config: &GenConfig) -> PlanTree {
    PlanStrategy::new(config).new_tree(&mut runner(seed, index)).expect("plans are never rejected")
}

/// The plan of case `index` of `seed`.
pub fn plan(seed: u64, index: usize, config: &GenConfig) -> Plan {
    tree(seed, index, config).current()
}

/// Case `index` of `seed`: the same trace whenever it is asked for.
pub fn case(seed: u64, index: usize, config: &GenConfig) -> Trace {
    compile(&plan(seed, index, config), config, &title(seed, index))
}

/// Cases `0..count` of `seed`.
pub fn generate(seed: u64, count: usize, config: &GenConfig) -> Vec<Trace> {
    (0..count).map(|i| case(seed, i, config)).collect()
}

/// Shrink case `index` of `seed`, which `still_fails`, to a smaller trace that still does:
/// actions are removed (in halves, quarters, ... down to one at a time) and then simplified,
/// keeping each change after which `still_fails` holds. `still_fails` runs at most
/// [`GenConfig::shrink_attempts`] times (at least once, and never twice on the same trace), so
/// that shrinking against a live broker ends in bounded time. Returns the smallest
/// failing trace found (the case itself if it does not fail) and the number of runs of
/// `still_fails`.
pub fn shrink(
    seed: u64,
    index: usize,
    config: &GenConfig,
    mut still_fails: impl FnMut(&Trace) -> bool,
) -> (Trace, usize) {
    let shrunk = format!("{}, shrunk", title(seed, index));
    let mut tree = tree(seed, index, config);
    let mut tried: HashMap<String, bool> = HashMap::new();
    let mut best = compile(&tree.current(), config, &shrunk);
    let mut attempts = 1;
    let fails = still_fails(&best);
    tried.insert(trace::write(&best), fails);
    if !fails {
        return (case(seed, index, config), attempts);
    }
    // Compiling is cheap, but bound it too: many plans compile to one trace.
    let mut budget = 50 * config.shrink_attempts.max(1);
    let mut simplified = tree.simplify();
    while simplified && budget > 0 {
        budget -= 1;
        let candidate = compile(&tree.current(), config, &shrunk);
        let text = trace::write(&candidate);
        let fails = match tried.get(&text) {
            Some(known) => *known,
            None if attempts >= config.shrink_attempts => break,
            None => {
                attempts += 1;
                let fails = still_fails(&candidate);
                tried.insert(text, fails);
                fails
            }
        };
        if fails {
            if size(&candidate) < size(&best) {
                best = candidate;
            }
            simplified = tree.simplify();
        } else if !tree.complicate() {
            // Back at the last failing plan: go on simplifying from there.
            simplified = tree.simplify();
        }
    }
    (best, attempts)
}

/// How big a trace is, for keeping the smallest: commands, then characters.
fn size(trace: &Trace) -> (usize, usize) {
    (trace.commands().count(), trace::write(trace).len())
}

/// `label` made safe as one directory name: ASCII letters, digits, `-`, `_` and `.` are kept
/// (letters lowercased), anything else becomes `-`; never empty, never starting with `.`.
fn directory_name(label: &str) -> String {
    let name: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let name = name.trim_start_matches(['.', '-']).trim_end_matches('-');
    if name.is_empty() {
        "broker".to_string()
    } else {
        name.to_string()
    }
}

/// The file name a regression is saved under: `seed-S-case-I.trace` for a generated trace,
/// otherwise one made from its title.
fn file_name(trace: &Trace) -> String {
    match origin(trace) {
        Some((seed, index)) => format!("seed-{seed}-case-{index}.trace"),
        None => format!("{}.trace", directory_name(trace.title.as_deref().unwrap_or("trace"))),
    }
}

/// Save `trace` as a regression fixture for the broker labelled `broker_label` (for example
/// `rabbitmq`): `dir/<label>/seed-S-case-I.trace`, where `dir` is the regressions directory
/// (`fixtures/regressions`) and the label is made directory-safe. The file is the trace as
/// [`trace::write`] writes it, with `note` (what diverged) and the trace's origin as `#` comments
/// between the header and the first step. An existing file of that name is replaced. Returns
/// the path written.
pub fn save_regression(dir: &Path, broker_label: &str, trace: &Trace, note: &str) -> std::io::Result<PathBuf> {
    let dir = dir.join(directory_name(broker_label));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(file_name(trace));
    let mut comments = format!("# A regression found against {}.\n", directory_name(broker_label));
    if let Some((seed, index)) = origin(trace) {
        comments.push_str(&format!("# Generated: case {index} of seed {seed} (amqp_conformance::generate::case).\n"));
    }
    for line in note.lines() {
        comments.push_str(format!("# {line}").trim_end());
        comments.push('\n');
    }
    let written = trace::write(trace);
    let text = match written.split_once("\n\n") {
        Some((header, steps)) => format!("{header}\n\n{comments}{steps}"),
        None => format!("{comments}{written}"),
    };
    std::fs::write(&path, text)?;
    Ok(path)
}
