//! `amqp-model`: model-check the AMQP 0-9-1 broker model, or browse it in stateright's Explorer.

use amqp_model::check::{BrokerModel, CheckConfig};
use clap::{Parser, Subcommand, ValueEnum};
use stateright::{Checker, DiscoveryClassification, Model};
use std::process::ExitCode;
use std::time::Instant;

// Model checking clones and drops millions of small maps: a faster allocator pays (docs/bench.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Model-check the AMQP 0-9-1 broker model over named bounded configurations.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List the named configurations.
    List,
    /// Explore configurations exhaustively and check every property.
    ///
    /// Prints, per configuration: states generated, unique states, maximum depth, seconds,
    /// generated and unique states per second, peak memory, then each property's verdict (with a
    /// counterexample path when an `always` property fails). Exits 0 when everything holds, 1
    /// when an `always` property fails, a `sometimes` property the configuration must reach is
    /// never reached, or the unique state count differs from the one pinned in the
    /// configuration; 2 for an unknown configuration. `amqp-model list` names them.
    Check {
        /// Configurations to check.
        #[arg(default_value = "ci")]
        configs: Vec<String>,
        /// Search order.
        #[arg(long, value_enum, default_value_t = Search::Bfs)]
        search: Search,
        /// Worker threads (default: the number of cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Serve stateright's Explorer for a configuration on 127.0.0.1.
    ///
    /// Actions are shown as trace lines (`c1.1 basic.get q`) or, for the broker's own steps, as
    /// sentences; each state as a picture (exchanges, bindings, queues with their messages,
    /// channels with their unacknowledged deliveries, consumers) and as compact text. The
    /// `sometimes` properties the configuration cannot reach are marked out of scope, as `check`
    /// marks them. "Run to completion" checks the whole configuration in the page.
    Explore {
        /// The configuration.
        #[arg(default_value = "quick")]
        config: String,
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Search {
    Bfs,
    Dfs,
}

fn config(name: &str) -> Result<CheckConfig, String> {
    CheckConfig::named(name).ok_or_else(|| {
        let names: Vec<_> = CheckConfig::all().iter().map(|c| c.name).collect();
        format!("unknown configuration `{name}`; known: {}", names.join(", "))
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::List => {
            for c in CheckConfig::all() {
                println!("{:<10} {}", c.name, c.about);
            }
            ExitCode::SUCCESS
        }
        Cmd::Check { configs, search, threads } => {
            let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let mut ok = true;
            for name in &configs {
                match config(name) {
                    Ok(c) => ok &= check(c, search, threads),
                    Err(e) => {
                        eprintln!("amqp-model: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Cmd::Explore { config: name, port } => match config(&name) {
            Ok(c) => {
                let addr = format!("127.0.0.1:{port}");
                println!("Explorer for `{}` on http://{addr}/ (Ctrl-C to stop)", c.name);
                BrokerModel::for_explorer(c).checker().threads(1).serve(addr);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("amqp-model: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn check(config: CheckConfig, search: Search, threads: usize) -> bool {
    let name = config.name;
    println!("== {name}: {} ({search:?}, {threads} threads)", config.about);
    let model = BrokerModel::new(config);
    let properties = model.properties();
    let start = Instant::now();
    let builder = model.checker().threads(threads);
    let pinned = model_pin(name);
    let must_reach = CheckConfig::named(name).map_or(&[][..], |c| c.must_reach);
    let (ok, unique) = match search {
        Search::Bfs => report(&builder.spawn_bfs().join(), &properties, must_reach, start),
        Search::Dfs => report(&builder.spawn_dfs().join(), &properties, must_reach, start),
    };
    match pinned {
        Some(p) if p != unique => {
            println!("  STATE COUNT CHANGED: pinned {p} unique states, found {unique} (update CheckConfig::{name})");
            false
        }
        _ => ok,
    }
}

fn model_pin(name: &str) -> Option<usize> {
    CheckConfig::named(name).and_then(|c| c.unique_states)
}

fn report<C: Checker<BrokerModel>>(
    checker: &C,
    properties: &[stateright::Property<BrokerModel>],
    must_reach: &[&str],
    start: Instant,
) -> (bool, usize) {
    let secs = start.elapsed().as_secs_f64();
    let (states, unique) = (checker.state_count(), checker.unique_state_count());
    println!(
        "states {states}  unique {unique}  depth {}  seconds {secs:.2}  states/s {:.0}  unique/s {:.0}",
        checker.max_depth(),
        states as f64 / secs.max(1e-9),
        unique as f64 / secs.max(1e-9)
    );
    if let Some(kib) = peak_rss_kib() {
        println!("peak memory {:.1} MiB", kib as f64 / 1024.0);
    }
    let mut ok = true;
    for p in properties {
        let found = checker.discovery(p.name);
        let verdict = match (p.expectation.clone(), &found) {
            (stateright::Expectation::Sometimes, Some(_)) => "reached",
            (stateright::Expectation::Sometimes, None) if must_reach.contains(&p.name) => {
                ok = false;
                "NEVER REACHED"
            }
            (stateright::Expectation::Sometimes, None) => "out of scope",
            (_, None) => "holds",
            (_, Some(_)) => {
                ok = false;
                "FAILS"
            }
        };
        println!("  {verdict:<14} {}", p.name);
        if let Some(path) = found {
            if matches!(checker.discovery_classification(p.name), DiscoveryClassification::Counterexample) {
                println!("    counterexample:");
                for (_, action) in path.into_vec().into_iter() {
                    if let Some(a) = action {
                        println!("      {a:?}");
                    }
                }
            }
        }
    }
    (ok, unique)
}

/// The process's peak resident set size (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
