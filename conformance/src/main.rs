//! `amqp-conformance`: replay conformance traces and validate the outcome against the model.

use amqp_conformance::catalogue::{Catalogue, Share};
use amqp_conformance::deviations::Deviations;
use amqp_conformance::generate::{save_regression, shrink, GenConfig, WITHOUT_KINDS};
use amqp_conformance::live::{address, check_login, Timing, DEFAULT_FENCE, DEFAULT_GRACE, DEFAULT_TIMEOUT};
use amqp_conformance::report;
use amqp_conformance::restart::Restart;
use amqp_conformance::serve::{ServeConfig, ServerHandle};
use amqp_conformance::suite::{find_traces, load, run_one, run_suite, Status, SuiteRun, TargetSpec, TraceResult};
use amqp_conformance::trace::Trace;
use amqp_model::ProfileName;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Replay AMQP 0-9-1 conformance traces against the model or a live broker, and validate what the
/// target did against the behaviours the model allows.
///
/// Exit status: 0 when the target conforms on every trace run (known deviations, stale ones and
/// skipped traces do not count against it), 1 when it does not (a trace failed, or the run went
/// wrong on a trace: cleanup failed, a restart command failed, the broker stopped answering), 2
/// for usage and infrastructure errors (a trace or deviations file that cannot be read or parsed,
/// a glob matching nothing, a broker that cannot be reached or refuses the login), each with a
/// one-line cause.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run trace files and report, per trace, pass or the line where the target left the
    /// behaviours the model allows.
    ///
    /// The target is a live broker with `--broker URI`; without it, the reference broker (the
    /// model served over AMQP, `serve`) started in-process on a loopback port, so the suite runs
    /// over the wire with nothing installed; with `--model`, the model itself, without the wire
    /// (dispatching eagerly). On a broker every queue and exchange name gets a run-unique prefix,
    /// and what a trace created is deleted afterwards, also when it fails. Traces whose
    /// `profile:` header names the other profile, and traces with steps the target cannot
    /// perform (`restart` without `--restart-cmd`), are reported as skipped.
    Run {
        /// Trace files, directories (searched recursively for *.trace) or glob patterns
        /// (quoted: 'fixtures/**/queue-*.trace').
        #[arg(default_value = "fixtures")]
        paths: Vec<PathBuf>,
        /// Validate against the model itself instead of the in-process reference broker (no
        /// wire, no cleanup; the fastest check of a trace).
        #[arg(long, conflicts_with = "broker")]
        model: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Generate traces (seeded, reproducible), run them like fixtures, and shrink each one the
    /// target fails to a minimal trace, saved as a regression fixture.
    ///
    /// Traces come from proptest strategies over a small universe (two exchanges of any type,
    /// four queues, two connections with two channels each): topologies with several queues on
    /// one exchange, overlapping and near-miss keys, topic patterns with `*`, `#` and empty
    /// words, headers bindings, consumers with prefetch, acks, nacks and rejects with and without
    /// requeue, cancels and channel closes. The same seed gives the same traces. A failing trace
    /// is shrunk against the same target (each attempt a fresh replay) and written to
    /// `<SAVE>/<NAME>/seed-S-case-I.trace`; run it again with `run`. The target is chosen as
    /// `run` chooses it: `--broker URI`, `--model`, or by default the reference broker in-process.
    Generate {
        /// The seed (default: one from the clock, printed so that the run can be repeated).
        #[arg(long)]
        seed: Option<u64>,
        /// How many traces.
        #[arg(long, default_value_t = 100, value_name = "N")]
        count: usize,
        /// About how many actions each trace has.
        #[arg(long, default_value_t = 20, value_name = "N")]
        steps: usize,
        /// Where shrunk failures are saved, under a directory named after the target.
        #[arg(long, default_value = "fixtures/regressions", value_name = "DIR")]
        save: PathBuf,
        /// The target's name for the regressions directory (default: `model`, `reference` for the
        /// in-process reference broker, or the broker's host and port).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Report failures without shrinking or saving them.
        #[arg(long)]
        no_shrink: bool,
        /// Leave these out (comma-separated): kinds of action (declare, bind, exchange-bind,
        /// publish, consume, qos, get, ack, nack, reject, requeue: nacks and rejects that
        /// requeue, cancel, close-channel, close-connection, purge, count, unbind,
        /// delete-queue), exchange types (direct, fanout, topic, headers: such exchanges take
        /// the first type left), or exchange-declare (use the broker's amq.* exchanges and
        /// declare none, which also leaves exchange-bind out; run with --jobs 1). For a broker
        /// that lacks a feature, or whose known deviation in it would fail most traces. The same
        /// seed still gives the same plans.
        #[arg(long, value_delimiter = ',', value_name = "KINDS")]
        without: Vec<String>,
        /// Run the traces on the model itself instead of the in-process reference broker.
        #[arg(long, conflicts_with = "broker")]
        model: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Serve the model over AMQP 0-9-1: a reference broker that clients (lapin, pika, ...) and
    /// `run --broker` talk to over TCP.
    ///
    /// One model broker (one virtual host, `/`) is shared by every connection; each client method
    /// the model implements is applied to it and what the model does is sent back as frames
    /// (deliveries to other connections' consumers too). Logins use SASL PLAIN against --user
    /// (default guest:guest). What the model does not implement (channel.flow,
    /// basic.recover-async, immediate, prefetch-size, no-local, consumer arguments, argument
    /// values that are not booleans, integers or strings) is refused with connection.close 540.
    /// Runs until killed; problems with clients are logged on stderr. SIGHUP restarts the broker
    /// (every connection closed with 320; durable queues, exchanges and bindings and persistent
    /// messages in durable queues kept), which is the restart command to give a runner:
    /// `--restart-cmd 'kill -HUP PID'` (the pid is printed at start).
    ///
    /// Example: `amqp-conformance serve --profile spec &` then `amqp-conformance run fixtures
    /// --profile spec --broker amqp://guest:guest@127.0.0.1:5690/%2f`.
    Serve {
        /// The address to listen on (host:port). The default is loopback only; give another
        /// address to accept connections from elsewhere.
        #[arg(long, default_value = amqp_conformance::serve::DEFAULT_LISTEN, value_name = "ADDR")]
        listen: String,
        /// The model's profile: `rabbitmq` (RabbitMQ 3.10's behaviour) or `spec` (the 0-9-1
        /// specification's rules).
        #[arg(long, default_value = "rabbitmq")]
        profile: ProfileName,
        /// When the broker delivers: `round-robin` (after each command, eagerly, the profile's
        /// first choice each time: round robin under rabbitmq) or `random` (each delivery picked
        /// at random among those possible, from --seed).
        #[arg(long, default_value = "round-robin", value_name = "SCHEDULE")]
        schedule: amqp_conformance::serve::ScheduleKind,
        /// The seed of the random schedule (default: one from the clock, printed).
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// A user who may log in, as NAME:PASSWORD (repeat for more; default guest:guest).
        #[arg(long = "user", value_name = "NAME:PASSWORD")]
        users: Vec<amqp_conformance::serve::User>,
        /// Seconds a write may wait for a client that does not read what it is sent; then its
        /// socket is closed (and its unacknowledged messages requeued). Meanwhile the server
        /// reads nothing more from that client and holds deliveries to it in their queues.
        #[arg(long, default_value_t = amqp_conformance::serve::DEFAULT_SEND_TIMEOUT.as_secs(), value_name = "SECS")]
        send_timeout: u64,
    },
    /// Run the suite against every target of a matrix file (the model under each profile, each
    /// broker under a profile with its deviations file) and write the conformance matrix: one
    /// Markdown page with fixtures and rules as rows, targets as columns.
    ///
    /// Exit status 1 when a target does not conform (apart from its deviations file), or with
    /// --check when the page differs from the fresh run (the differing lines are printed); 2
    /// when the matrix file, a deviations file or a trace cannot be read, or a broker cannot be
    /// reached.
    Matrix {
        /// The targets and traces (TOML; see docs/conformance.md).
        #[arg(long, default_value = "matrix.toml", value_name = "FILE")]
        config: PathBuf,
        /// Where the page is written (or, with --check, compared).
        #[arg(long, default_value = "docs/matrix.md", value_name = "FILE")]
        out: PathBuf,
        /// Do not write the page: compare it with the fresh run and fail when it is stale.
        #[arg(long)]
        check: bool,
    },
    /// Write the documentation book's generated pages under docs/ (mdBook; `just docs` builds
    /// it): a page per AMQP class with its rules, a page per fixture with a sequence diagram and
    /// the model's outcome under each profile, the profiles' switches, the model's source with
    /// line anchors, and SUMMARY.md. Made from the rule catalogue, the fixtures, the model and
    /// docs/matrix.json (written by `matrix`), so it needs no broker.
    ///
    /// Run from the repository root. Exit status 1 with --check when a page differs from what
    /// would be written, or a generated page is no longer made (the paths are printed).
    Docs {
        /// Where the book's source is.
        #[arg(long, default_value = "docs", value_name = "DIR")]
        out: PathBuf,
        /// Do not write: compare the pages on disk with fresh ones and fail when any is stale.
        #[arg(long)]
        check: bool,
    },
    /// Print how much of the specification the fixtures cover: per class, the rules in scope,
    /// out of scope and covered (cited by a fixture), from the rule catalogue (spec/rules.toml,
    /// spec/amqp0-9-1.names; see docs/coverage.md), and the in-scope rules not covered yet.
    ///
    /// Run from the repository root. Exit status 1 when the catalogue is inconsistent (a rule
    /// without an entry, a cite naming nothing, a covered rule the model's source never names)
    /// or the covered share of the in-scope rules is below --min; 2 when a file cannot be read.
    Coverage {
        /// The traces that cover rules (files, directories or globs).
        #[arg(default_value = "fixtures")]
        paths: Vec<PathBuf>,
        /// The least covered share of the in-scope rules, in percent.
        #[arg(long, default_value_t = 90.0, value_name = "PERCENT")]
        min: f64,
    },
}

/// Options shared by the subcommands.
#[derive(Args, Debug)]
struct Common {
    /// The profile to validate against: `spec` (the specification's rules) or `rabbitmq`
    /// (RabbitMQ's documented choices).
    #[arg(long, default_value = "rabbitmq")]
    profile: ProfileName,
    /// Run against the broker at this AMQP URI (amqp://user:password@host:port/vhost, e.g.
    /// amqp://guest:guest@127.0.0.1:5672/%2f) instead of the model or the reference broker. The
    /// password is never printed.
    #[arg(long, value_name = "URI")]
    broker: Option<String>,
    /// Run this many traces at once, each on its own connections (traces that restart the broker
    /// always run alone, after the others).
    #[arg(long, short, default_value_t = 1, value_name = "N")]
    jobs: usize,
    /// A file of the broker's known deviations (TOML, see docs/conformance.md): a failure it
    /// lists is reported as known, not failed; an entry whose trace passes is reported stale.
    #[arg(long, value_name = "FILE")]
    deviations: Option<PathBuf>,
    /// With --broker: the shell command that restarts the broker, keeping durable data (for
    /// RabbitMQ: 'rabbitmqctl stop_app && rabbitmqctl start_app'). Without it, traces with
    /// `restart` are skipped (the in-process reference broker needs none: it is restarted in
    /// place).
    #[arg(long, value_name = "COMMAND")]
    restart_cmd: Option<String>,
    /// With --broker: the longest wait for any reply, and for a delivery the model says is owed.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT.as_millis() as u64, value_name = "MS")]
    timeout_ms: u64,
    /// With --broker: how long to listen, at a `wait` and at the end of each trace, once the
    /// model says the broker may be done (for anything it must not do).
    #[arg(long, default_value_t = DEFAULT_GRACE.as_millis() as u64, value_name = "MS")]
    grace_ms: u64,
    /// With --broker: how long after a command that put messages into queues (publish, commit,
    /// requeue) a queue.declare is sent (RabbitMQ answers message counts ahead of messages still
    /// on their way into the queue).
    #[arg(long, default_value_t = DEFAULT_FENCE.as_millis() as u64, value_name = "MS")]
    fence_ms: u64,
    /// Write a JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

/// A usage or infrastructure error: printed as one line, exit 2.
struct Fatal(String);

impl Common {
    /// The target: the broker at `--broker`, the model itself with `--model`, or else the
    /// reference broker started in-process under `--profile` (alive as long as the handle).
    fn target(&self, model: bool) -> Result<(TargetSpec, Option<ServerHandle>), Fatal> {
        let Some(uri) = &self.broker else {
            if self.restart_cmd.is_some() {
                return Err(Fatal("--restart-cmd needs --broker".into()));
            }
            if model {
                return Ok((TargetSpec::Model, None));
            }
            let (spec, server) = reference(self.profile, self.timing())?;
            return Ok((spec, Some(server)));
        };
        let timing = self.timing();
        check_login(uri, timing.timeout).map_err(Fatal)?;
        let restart = Restart::command(self.restart_cmd.as_deref());
        Ok((TargetSpec::Broker { uri: uri.clone(), timing, restart }, None))
    }

    /// The runner's timing options.
    fn timing(&self) -> Timing {
        Timing {
            timeout: Duration::from_millis(self.timeout_ms),
            grace: Duration::from_millis(self.grace_ms),
            fence: Duration::from_millis(self.fence_ms),
        }
    }

    fn deviations(&self) -> Result<Option<Deviations>, Fatal> {
        // Entries must name fixtures that exist (paths from the current directory) and rules
        // those fixtures cite.
        self.deviations.as_deref().map(Deviations::load_checked).transpose().map_err(Fatal)
    }

    /// Write the requested report files.
    fn write_reports(&self, run: &SuiteRun) -> Result<(), Fatal> {
        let write = |path: &PathBuf, text: String| {
            std::fs::write(path, text).map_err(|e| Fatal(format!("{}: {e}", path.display())))
        };
        if let Some(path) = &self.json {
            write(path, report::json(run))?;
        }
        if let Some(path) = &self.junit {
            write(path, report::junit(run))?;
        }
        Ok(())
    }
}

/// Shows progress: a bar on a terminal (with the lines of traces that did not pass above it),
/// one line per trace otherwise.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} traces, {elapsed} {msg}").expect("a valid template"),
            );
            bar
        });
        Progress { bar }
    }

    fn show(&mut self, r: &TraceResult) {
        match &self.bar {
            Some(bar) => {
                if !matches!(r.status, Status::Pass | Status::Skip { .. } | Status::Known { .. }) {
                    bar.println(report::line(r));
                }
                bar.inc(1);
            }
            None => println!("{}", report::line(r)),
        }
    }

    /// Count a trace without printing its line.
    fn tick(&mut self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The reference broker under `profile`, started in-process on a loopback port, as a target
/// (restarted in place for `restart` steps).
fn reference(profile: ProfileName, timing: Timing) -> Result<(TargetSpec, ServerHandle), Fatal> {
    let server = ServerHandle::start(ServeConfig::with_profile(amqp_model::Profile::named(profile)))
        .map_err(|e| Fatal(format!("cannot start the reference broker: {e}")))?;
    let restart = Some(Restart::Embedded(server.server().clone()));
    Ok((TargetSpec::Broker { uri: server.uri(), timing, restart }, server))
}

fn run(paths: &[PathBuf], model: bool, common: &Common) -> Result<bool, Fatal> {
    let (target, _server) = common.target(model)?;
    let deviations = common.deviations()?;
    let files = find_traces(paths).map_err(Fatal)?;
    let traces = load(&files).map_err(Fatal)?;
    let profile = common.profile;
    let classify = |file: &str, status: Status| match &deviations {
        Some(d) => d.apply(profile, file, status),
        None => status,
    };
    let mut progress = Progress::new(traces.len());
    let run = run_suite(&traces, &target, profile, common.jobs, &classify, &mut |r| progress.show(r));
    progress.finish();
    println!("{}", report::summary(&run));
    common.write_reports(&run)?;
    Ok(run.conformant())
}

/// The `generate` subcommand's own options.
struct Generation<'a> {
    seed: Option<u64>,
    count: usize,
    steps: usize,
    save: &'a Path,
    name: Option<&'a str>,
    shrink: bool,
    without: &'a [String],
    model: bool,
}

fn generate(g: &Generation<'_>, common: &Common) -> Result<bool, Fatal> {
    let (target, server) = common.target(g.model)?;
    let seed = g.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    });
    println!("seed {seed}: {} generated traces of about {} actions", g.count, g.steps);
    if let Some(bad) = g.without.iter().find(|k| !WITHOUT_KINDS.contains(&k.as_str())) {
        return Err(Fatal(format!("--without: unknown kind `{bad}` (known: {})", WITHOUT_KINDS.join(", "))));
    }
    let config = GenConfig { steps: g.steps, without: g.without.to_vec(), ..GenConfig::default() };
    let traces: Vec<(String, Trace)> = amqp_conformance::generate::generate(seed, g.count, &config)
        .into_iter()
        .enumerate()
        .map(|(i, t)| (format!("seed-{seed}-case-{i}"), t))
        .collect();
    let profile = common.profile;
    let mut progress = Progress::new(traces.len());
    let run = run_suite(&traces, &target, profile, common.jobs, &|_, s| s, &mut |r| progress.show(r));
    progress.finish();
    println!("{}", report::summary(&run));
    common.write_reports(&run)?;
    if g.shrink {
        let name = g.name.map_or_else(
            || match &target {
                TargetSpec::Model => "model".to_string(),
                _ if server.is_some() => "reference".to_string(),
                TargetSpec::Broker { uri, .. } => address(uri).replace(':', "-"),
            },
            str::to_string,
        );
        for (i, result) in run.results.iter().enumerate() {
            let Status::Fail { detail, .. } = &result.status else { continue };
            let fails = |t: &Trace| matches!(run_one("shrinking", t, &target, profile).status, Status::Fail { .. });
            let (small, attempts) = shrink(seed, i, &config, fails);
            let last = run_one("shrunk", &small, &target, profile);
            let note = match &last.status {
                Status::Fail { line, detail } => format!("At line {line}: {detail}"),
                _ => format!("The original case failed: {detail}"),
            };
            let path = save_regression(g.save, &name, &small, &note)
                .map_err(|e| Fatal(format!("{}: {e}", g.save.display())))?;
            println!(
                "case {i}: shrunk from {} to {} commands in {attempts} replays: {}",
                traces[i].1.commands().count(),
                small.commands().count(),
                path.display()
            );
        }
    }
    Ok(run.conformant())
}

/// Run every target of the matrix file and write (or check) the page.
fn matrix(config_path: &Path, out: &Path, check: bool) -> Result<bool, Fatal> {
    use amqp_conformance::matrix::{data as matrix_data, differences, render, Column, MatrixConfig, EMBEDDED};
    let config = MatrixConfig::load(config_path).map_err(Fatal)?;
    let files = find_traces(&config.paths).map_err(Fatal)?;
    let traces = load(&files).map_err(Fatal)?;
    let mut columns = Vec::new();
    let mut conformant = true;
    for t in &config.targets {
        // The reference broker, served in-process for this column.
        let (spec, _server) = match (t.broker.as_deref(), t.spec()) {
            (Some(EMBEDDED), TargetSpec::Broker { timing, .. }) => {
                let (spec, server) =
                    reference(t.profile, timing).map_err(|Fatal(e)| Fatal(format!("target `{}`: {e}", t.name)))?;
                (spec, Some(server))
            }
            (_, spec) => (spec, None),
        };
        if let TargetSpec::Broker { uri, timing, .. } = &spec {
            check_login(uri, timing.timeout).map_err(|e| Fatal(format!("target `{}`: {e}", t.name)))?;
        }
        let deviations = t.load_deviations().map_err(|e| Fatal(format!("target `{}`: {e}", t.name)))?;
        println!("{}: {} traces against {} ({} profile)", t.name, traces.len(), spec.label(), t.profile);
        let classify = |file: &str, status: Status| deviations.apply(t.profile, file, status);
        let mut progress = Progress::new(traces.len());
        let run = run_suite(&traces, &spec, t.profile, t.jobs, &classify, &mut |r| {
            if r.status.is_failure() {
                progress.show(r)
            } else {
                progress.tick()
            }
        });
        progress.finish();
        // The totals and the verdict (the traces that did not pass are on the page).
        let summary = report::summary(&run);
        let lines: Vec<&str> = summary.lines().collect();
        println!("{}", lines[lines.len().saturating_sub(2)..].join("\n"));
        conformant &= run.conformant();
        columns.push(Column { config: t, run });
    }
    // Links from the page to the fixtures, relative to where the page lives.
    let depth = out.parent().map_or(0, |p| p.components().count());
    let up = "../".repeat(depth);
    let page = render(&columns, &config_path.display().to_string(), &|file| {
        format!("{up}{}", file.strip_prefix("./").unwrap_or(file))
    });
    let json = out.with_extension("json");
    let data = serde_json::to_string_pretty(&matrix_data(&columns)).expect("the matrix's data") + "\n";
    if check {
        let old = std::fs::read_to_string(out).unwrap_or_default();
        if std::fs::read_to_string(&json).ok().as_deref() != Some(data.as_str()) {
            eprintln!("{} is stale: it differs from this run (run `just matrix` and commit it)", json.display());
            return Ok(false);
        }
        if old != page {
            eprintln!("{} is stale: it differs from this run (run `just matrix` and commit it):", out.display());
            for d in differences(&old, &page, 40) {
                eprintln!("  {d}");
            }
            return Ok(false);
        }
        println!("{} is up to date", out.display());
    } else {
        std::fs::write(out, &page).map_err(|e| Fatal(format!("{}: {e}", out.display())))?;
        std::fs::write(&json, &data).map_err(|e| Fatal(format!("{}: {e}", json.display())))?;
        println!("wrote {} and {}", out.display(), json.display());
    }
    Ok(conformant)
}

/// The catalogue of the repository in the current directory, with the traces at `paths`.
fn catalogue(paths: &[PathBuf]) -> Result<Catalogue, Fatal> {
    let files = find_traces(paths).map_err(Fatal)?;
    let traces = load(&files).map_err(Fatal)?;
    let traces: Vec<_> = traces.into_iter().map(|(f, t)| (f.strip_prefix("./").unwrap_or(&f).to_string(), t)).collect();
    Catalogue::load(Path::new("."), &traces).map_err(Fatal)
}

fn docs(out: &Path, check: bool) -> Result<bool, Fatal> {
    use amqp_conformance::book::{model_source, pages, profile_switches, Sources, GENERATED_DIRS, GENERATED_FILES};
    use amqp_conformance::matrix::MatrixData;
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| Fatal(format!("{}: {e}", p.display())));
    let cat = catalogue(&[PathBuf::from("fixtures")])?;
    let files = find_traces(&[PathBuf::from("fixtures")]).map_err(Fatal)?;
    let mut fixtures = Vec::new();
    let mut texts = std::collections::BTreeMap::new();
    for (file, trace) in load(&files).map_err(Fatal)? {
        let file = file.strip_prefix("./").unwrap_or(&file).to_string();
        texts.insert(file.clone(), read(Path::new(&file))?);
        fixtures.push((file, trace));
    }
    let json = out.join("matrix.json");
    let matrix: MatrixData = serde_json::from_str(&read(&json)?)
        .map_err(|e| Fatal(format!("{}: {e} (run `just matrix` to write it)", json.display())))?;
    let switches = profile_switches(&read(Path::new("model/src/profile.rs"))?);
    let model_source = model_source(Path::new(".")).map_err(Fatal)?;
    let sources = Sources {
        catalogue: &cat,
        fixtures: &fixtures,
        texts: &texts,
        matrix: &matrix,
        switches: &switches,
        model_source: &model_source,
    };
    let pages = pages(&sources);
    // Files in the generated directories that are no longer made.
    let mut stale_files = Vec::new();
    for dir in GENERATED_DIRS {
        let mut stack = vec![out.join(dir)];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(out).unwrap_or(&path).display().to_string();
                    if !pages.contains_key(&rel) {
                        stale_files.push(path);
                    }
                }
            }
        }
    }
    debug_assert!(GENERATED_FILES.iter().all(|f| pages.contains_key(*f)));
    let mut stale = 0;
    for (rel, text) in &pages {
        let path = out.join(rel);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        stale += 1;
        if check {
            eprintln!("stale: {}", path.display());
        } else {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Fatal(format!("{}: {e}", parent.display())))?;
            }
            std::fs::write(&path, text).map_err(|e| Fatal(format!("{}: {e}", path.display())))?;
        }
    }
    for path in &stale_files {
        if check {
            eprintln!("no longer generated: {}", path.display());
        } else {
            std::fs::remove_file(path).map_err(|e| Fatal(format!("{}: {e}", path.display())))?;
        }
    }
    let changed = stale + stale_files.len();
    if check && changed > 0 {
        eprintln!("{changed} generated pages under {} are stale: run `just docs` and commit them", out.display());
        return Ok(false);
    }
    let verb = if check { "up to date" } else { "written" };
    println!("{} pages under {}: {verb} ({changed} changed)", pages.len(), out.display());
    Ok(true)
}

fn coverage(paths: &[PathBuf], min: f64) -> Result<bool, Fatal> {
    let cat = catalogue(paths)?;
    println!("{:<12} {:>8} {:>8} {:>8} {:>8}", "class", "in scope", "covered", "share", "out");
    let row = |name: &str, s: &Share| {
        let share = if s.in_scope == 0 { "-".to_string() } else { format!("{:.1}%", s.percent()) };
        println!("{name:<12} {:>8} {:>8} {share:>8} {:>8}", s.in_scope, s.covered, s.out_of_scope)
    };
    for owner in cat.owners() {
        row(&owner, &cat.share(Some(&owner)));
    }
    let all = cat.share(None);
    row("all", &all);
    let gaps: Vec<&str> =
        cat.rules.iter().filter(|r| r.out_of_scope.is_none() && !cat.covered(&r.id)).map(|r| r.id.as_str()).collect();
    if !gaps.is_empty() {
        println!("\nin scope, not covered by a fixture yet:");
        for id in gaps {
            let model = if cat.model.contains_key(id) { "" } else { " (nor implemented by the model)" };
            println!("  {id}{model}");
        }
    }
    let problems = cat.problems();
    for p in &problems {
        eprintln!("{p}");
    }
    let enough = all.percent() >= min;
    if !enough {
        eprintln!("covered share {:.1}% is below --min {min}%", all.percent());
    }
    Ok(problems.is_empty() && enough)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Cmd::Run { paths, model, common } => run(paths, *model, common),
        Cmd::Matrix { config, out, check } => matrix(config, out, *check),
        Cmd::Serve { listen, profile, schedule, seed, users, send_timeout } => {
            let send_timeout = std::time::Duration::from_secs((*send_timeout).max(1));
            amqp_conformance::serve::run_cli(listen, *profile, *schedule, *seed, users, send_timeout)
                .map(|()| true)
                .map_err(Fatal)
        }
        Cmd::Coverage { paths, min } => coverage(paths, *min),
        Cmd::Docs { out, check } => docs(out, *check),
        Cmd::Generate { seed, count, steps, save, name, no_shrink, without, model, common } => {
            let g = Generation {
                seed: *seed,
                count: *count,
                steps: *steps,
                save,
                name: name.as_deref(),
                shrink: !no_shrink,
                without,
                model: *model,
            };
            generate(&g, common)
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(Fatal(cause)) => {
            eprintln!("amqp-conformance: {cause}");
            ExitCode::from(2)
        }
    }
}
