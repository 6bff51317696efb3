//! `amqp-conformance`: replay conformance traces and validate the outcome against the model.
//!
//! One file for one concern, the command line: each subcommand's arguments, `--help` and how it
//! calls the library, nothing that decides a verdict.

use amqp_conformance::catalogue::Catalogue;
use amqp_conformance::deviations::Deviations;
use amqp_conformance::generate::{save_regression, shrink, GenConfig, WITHOUT_KINDS};
use amqp_conformance::report;
use amqp_conformance::suite::{
    default_jobs, find_traces, load, run_one, run_suite, trace_errors, Status, SuiteRun, TraceResult,
};
use amqp_conformance::target::uri::BrokerUri;
use amqp_conformance::target::{Description, OpenTarget, TargetSpec};
use amqp_conformance::target::{Timing, DEFAULT_GRACE, DEFAULT_TIMEOUT};
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
/// Exit status: 0 when the target conforms on every trace run (known deviations, stale ones,
/// departures from a SHOULD rule's recommendation and skipped traces do not count against it), 1 when it does not (a trace failed, or the run went
/// wrong on a trace: cleanup failed, a restart command failed, the broker stopped answering), 2
/// for usage and infrastructure errors (a trace or deviations file that cannot be read or parsed,
/// a trace the model itself cannot follow, a glob matching nothing, a --broker that is not an
/// AMQP URI, a broker that cannot be reached or refuses the login), each with a one-line cause.
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
    /// perform (`restart` without `--restart-cmd`), are reported as skipped. Under `--profile
    /// spec` a broker is first asked which of what the spec only recommends it implements (the
    /// topic and headers exchange types, returns of unroutable mandatory messages: a probe
    /// exchange of each type, declared and deleted, and one mandatory publish): it is judged
    /// without what it leaves out, and the traces that need it are skipped, with the reason.
    /// Before any broker is contacted, every trace is replayed on the model: one the model cannot
    /// follow (an `expect` it does not meet) is an error in the trace, printed as `file:line: ...`
    /// (exit 2).
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
    /// Run the traces again and again while this process keeps the CPUs busy, and report every
    /// trace whose verdict was not the same in every run.
    ///
    /// No verdict may depend on how fast the machine is: a trace whose verdict changes between
    /// runs is a defect of the runner until it is shown to be the broker's. The target, profile,
    /// deviations and restart command are chosen as for `run`. --load threads spin beside the
    /// runs (default: one per core) and stop with them. Exit 0 when every trace kept one verdict
    /// (whether it passes or not: compare with `run` for that), 1 when some changed, 2 when the
    /// runs could not be done.
    ///
    /// Example: `amqp-conformance stress fixtures --runs 20 --broker URI --restart-cmd CMD`.
    Stress {
        /// Trace files, directories or glob patterns, as for `run`.
        #[arg(default_value = "fixtures")]
        paths: Vec<PathBuf>,
        /// How many times to run the whole set.
        #[arg(long, default_value_t = 5, value_name = "N")]
        runs: usize,
        /// CPU-bound threads kept spinning during the runs (0 for an idle machine; default: one
        /// per core).
        #[arg(long, value_name = "THREADS")]
        load: Option<usize>,
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
        /// Use RabbitMQ's message-lifetime extensions: q2 gets a 200 ms message TTL, a length
        /// limit of 2 and x1 as its dead-letter exchange, q3 a length limit of 1 that refuses
        /// publishes, every third message an expiration of 100 ms, and time passes (`pass 50`,
        /// `pass 400`). The specification gives these no meaning, so this needs
        /// `--profile rabbitmq`.
        #[arg(long)]
        lifetime: bool,
        /// Use RabbitMQ's consumer extensions: consumers subscribe with an x-priority of 0, 5 or
        /// 10 in turn, and q4 is declared with x-single-active-consumer. The specification gives
        /// these no meaning, so this needs `--profile rabbitmq`.
        #[arg(long)]
        consumers: bool,
        /// Use RabbitMQ's quorum queues: q1 is declared durable as a quorum queue with an
        /// x-delivery-limit of 2 (requeues go to its back, a closed channel's copies to its front,
        /// deliveries carry x-delivery-count). The specification has no queue types, so this needs
        /// `--profile rabbitmq`.
        #[arg(long)]
        quorum: bool,
        /// Run the traces on the model itself instead of the in-process reference broker.
        #[arg(long, conflicts_with = "broker")]
        model: bool,
        #[command(flatten)]
        common: Common,
    },
    /// A TCP proxy that holds everything the broker sends for --delay-ms before passing it on:
    /// a slow network between a runner and a broker, to check that no verdict depends on speed.
    ///
    /// Every chunk the broker sends is held, in order, for the delay; what clients send passes at
    /// once (or after --client-delay-ms). AMQP orders frames only within a channel, so a
    /// conformant broker stays conformant behind it. Runs until killed.
    ///
    /// Example: `amqp-conformance delay-proxy --to 127.0.0.1:5672 --delay-ms 150 &` then `run
    /// --broker amqp://guest:guest@127.0.0.1:5700/%2f`.
    DelayProxy {
        /// The address to listen on (host:port).
        #[arg(long, default_value = "127.0.0.1:5700", value_name = "ADDR")]
        listen: String,
        /// The broker's address (host:port).
        #[arg(long, value_name = "ADDR")]
        to: String,
        /// How long each chunk the broker sends is held, in milliseconds.
        #[arg(long, default_value_t = 150, value_name = "MS")]
        delay_ms: u64,
        /// How long each chunk a client sends is held, in milliseconds.
        #[arg(long, default_value_t = 0, value_name = "MS")]
        client_delay_ms: u64,
    },
    /// A transparent AMQP 0-9-1 proxy between your applications and a broker that judges their
    /// sessions against the model as they happen and records them as a trace.
    ///
    /// Every byte passes unchanged in both directions, and the proxy sends nothing of its own.
    /// Beside the forwarding it reads each connection's client methods as the model's commands
    /// and the broker's frames as the model's events, through a bounded queue: if that reading
    /// falls behind, the connection is still forwarded and the proxy says it no longer reads it.
    /// All connections share one model of the broker, and every order in which the broker may
    /// have taken the methods of different connections, within what the proxy saw, is allowed:
    /// a divergence is reported (a line on stderr, as it happens) only when the broker left
    /// every one, naming the connection, channel and method; a client that breaks the protocol
    /// is reported as a client error. With --record DIR the run is written, as it happens, as a
    /// trace in the fixtures' format (connections c1, c2, ... in the order they came; names the
    /// broker generated as variables; what the broker did as `# saw` comments), which `run`
    /// replays against any broker. Ctrl-C (or SIGTERM) ends it and prints a summary, and writes
    /// the JSON and JUnit reports asked for (the session as one trace: FAIL at its first
    /// divergence, at the recording's line; client errors and a judging that stopped beside it);
    /// the exit status is 1 when a divergence was found.
    ///
    /// Example: `amqp-conformance proxy --upstream amqp://127.0.0.1:5672 --record sessions &`,
    /// point the application at amqp://guest:guest@127.0.0.1:5701/, then `amqp-conformance run
    /// sessions/proxy-*.trace --broker amqp://guest:guest@127.0.0.1:5672/%2f`.
    Proxy {
        /// The address to listen on (host:port).
        #[arg(long, default_value = "127.0.0.1:5701", value_name = "ADDR")]
        listen: String,
        /// The broker: an AMQP URI (amqp://host:port/...: only the address is used, clients log
        /// in themselves) or host:port.
        #[arg(long, value_name = "URI")]
        upstream: String,
        /// Write the run as a trace file in this directory (made if missing).
        #[arg(long, value_name = "DIR")]
        record: Option<PathBuf>,
        /// How many chunks may wait to be read before the reading counts as behind.
        #[arg(long, default_value_t = amqp_conformance::proxy::DEFAULT_BACKLOG, value_name = "N")]
        backlog: usize,
        /// Print each connection and each note (what a trace cannot say) as it is read.
        #[arg(long)]
        verbose: bool,
        /// The profile the sessions are judged under: `rabbitmq` or `spec`.
        #[arg(long, default_value = "rabbitmq")]
        profile: ProfileName,
        #[command(flatten)]
        reports: Reports,
    },
    /// Serve the model over AMQP 0-9-1: a reference broker that clients (lapin, pika, ...) and
    /// `run --broker` talk to over TCP.
    ///
    /// One model broker per virtual host (`/`, or those --vhost names) is shared by its
    /// connections; each client method the model implements is applied to it and what the model
    /// does is sent back as frames (deliveries to other connections' consumers too), a close with
    /// RabbitMQ's reply text and the rule that says so. Logins use SASL PLAIN or AMQPLAIN against
    /// --user (default guest:guest), permissions as --permit says. What the model does not
    /// implement (channel.flow pausing a channel, basic.recover-async without requeue, immediate,
    /// prefetch-size, and no-local under spec; under rabbitmq no-local is ignored, as RabbitMQ
    /// ignores it) is refused with connection.close 540; channel.flow active=true,
    /// basic.recover-async with requeue and connection.update-secret are answered as RabbitMQ
    /// 3.10.8 answers them, and heartbeats go out at half the negotiated interval, as RabbitMQ
    /// sends them.
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
        #[arg(long, default_value = amqp_broker::DEFAULT_LISTEN, value_name = "ADDR")]
        listen: String,
        /// The model's profile: `rabbitmq` (RabbitMQ 3.10's behaviour) or `spec` (the 0-9-1
        /// specification's rules).
        #[arg(long, default_value = "rabbitmq")]
        profile: ProfileName,
        /// When the broker delivers: `round-robin` (after each command, eagerly, the profile's
        /// first choice each time: round robin under rabbitmq) or `random` (each delivery picked
        /// at random among those possible, from --seed).
        #[arg(long, default_value = "round-robin", value_name = "SCHEDULE")]
        schedule: amqp_broker::ScheduleKind,
        /// The seed of the random schedule (default: one from the clock, printed).
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// A user who may log in, as NAME:PASSWORD (repeat for more; default guest:guest).
        #[arg(long = "user", value_name = "NAME:PASSWORD")]
        users: Vec<amqp_broker::User>,
        /// Seconds a write may wait for a client that does not read what it is sent; then its
        /// socket is closed (and its unacknowledged messages requeued). Meanwhile the server
        /// reads nothing more from that client and holds deliveries to it in their queues.
        #[arg(long, default_value_t = amqp_broker::DEFAULT_SEND_TIMEOUT.as_secs(), value_name = "SECS")]
        send_timeout: u64,
        /// The product named in connection.start's server properties (default: amqp-model
        /// reference broker). Some clients turn on RabbitMQ-specific code by it: amqp091-go runs
        /// its RabbitMQ tests only against a broker whose product is `RabbitMQ` (under the
        /// rabbitmq profile the broker does what RabbitMQ 3.10.8 does in all it models). The
        /// `information` property still says what the broker is.
        #[arg(long, value_name = "NAME")]
        product: Option<String>,
        /// Listen on ADDR (host:port, loopback is wise) for commands that make the broker do,
        /// now, what a real broker rarely does, to test a client's recovery code: one per line,
        /// each answered `ok: ...` or `error: ...`. `connections` lists them (c1, c2, ...);
        /// `force ID|all [REASON]` closes one with 320 CONNECTION_FORCED (its unacknowledged
        /// messages requeued); `cancel QUEUE` deletes the queue as another client would (its
        /// consumers get basic.cancel); `block [REASON]` raises a resource alarm (a connection
        /// that publishes gets connection.blocked and is not read until `unblock`); `delay MS`
        /// holds every frame MS milliseconds; `nack N` nacks the next N confirmed publishes
        /// (under spec); `restart`; `help`. Example: `serve --control 127.0.0.1:5698`, then
        /// send `force c1` to that port. See docs/intro/client-authors.md.
        #[arg(long, value_name = "ADDR")]
        control: Option<String>,
        /// A virtual host to serve (repeat for more; default `/` alone). Each is a broker of its
        /// own: nothing of one is seen from another. Opening one that is not served is 530.
        #[arg(long = "vhost", value_name = "NAME")]
        vhosts: Vec<String>,
        /// A user's permission in a virtual host, as RabbitMQ's set_permissions takes it: `USER
        /// VHOST CONFIGURE WRITE READ`, three regular expressions matched anywhere in a name
        /// (`'app / ^app- ^app- ^app-'`; repeat for more). A method on an entity the user may not
        /// use is refused with channel.close 403 ACCESS_REFUSED as RabbitMQ 3.10.8 refuses it
        /// (configure: declare and delete; write: publish, bind a queue or destination exchange;
        /// read: get, consume, purge, a binding's source exchange); a virtual host the user has
        /// no permission in is refused at connection.open with 530. A user with no --permit may
        /// do everything in every virtual host.
        #[arg(long = "permit", value_name = "PERMISSION")]
        permissions: Vec<amqp_broker::access::Permission>,
    },
    /// Run the suite against every target of a matrix file (the model under each profile, each
    /// broker under a profile with its deviations file) and write the conformance matrix: one
    /// Markdown page with fixtures and rules as rows, targets as columns, and a section per client
    /// library's own test suite (`[[client]]`) run against the brokers it names.
    ///
    /// Columns on different brokers run at the same time, those on one broker one after the
    /// other; each column's report is printed when it ends. A target marked `optional` that does
    /// not answer keeps its column from the checked-in data (said so; not a failure).
    ///
    /// Exit status 1 when a target does not conform (apart from its deviations file), a client's
    /// test fails that its expectations file does not list, or with --check when the page
    /// differs from the fresh run (the differing lines are printed); 2 when the matrix file, a
    /// deviations or expectations file or a trace cannot be read, a broker that is not optional
    /// cannot be reached, or a client's suite cannot be run.
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
        /// Run only these targets (by name, repeatable); every other column, and its client
        /// results, is taken from the checked-in data (docs/matrix.json) as it is: to run one
        /// broker's column again after changing its deviations file.
        #[arg(long, value_name = "TARGET")]
        only: Vec<String>,
    },
    /// The book's mdBook preprocessor (docs/book.toml names it; `just book` runs it): reads the
    /// book from mdBook on stdin and writes it back with every mention of a rule, a RabbitMQ
    /// extension, a tutorial section or a fixture in a code span made a link to its place in the
    /// book. `mdbook-mentions supports RENDERER` answers mdBook's question (any renderer).
    #[command(name = "mdbook-mentions")]
    MdbookMentions {
        /// `supports RENDERER`, as mdBook asks.
        #[arg(num_args = 0..=2)]
        question: Vec<String>,
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
    /// amqp://guest:guest@127.0.0.1:5672/%2f: the vhost "/" is written %2f, and a URI without a
    /// path means it too) instead of the model or the reference broker. The password is never
    /// printed.
    #[arg(long, value_name = "URI")]
    broker: Option<String>,
    /// Run this many traces at once, each on its own connections (traces that restart the broker
    /// always run alone, after the others). The default is twice the cores this machine offers,
    /// at most 8: a trace mostly waits on the broker.
    #[arg(long, short, default_value_t = default_jobs(), value_name = "N")]
    jobs: usize,
    /// A file of the broker's known deviations (TOML, see docs/conformance.md): a failure it
    /// lists is reported as known, not failed; an entry whose trace passes is reported stale.
    #[arg(long, value_name = "FILE")]
    deviations: Option<PathBuf>,
    /// With --broker: the shell command that restarts the broker, keeping durable data (for
    /// RabbitMQ: 'rabbitmqctl stop_app && rabbitmqctl start_app'). Without it, traces with
    /// `restart` are skipped (the in-process reference broker needs none: it is restarted in
    /// place). It also brings back a broker found not answering after a failed trace; when the
    /// broker's process was gone and the trace cannot have been what brought it down (its first
    /// connection found no broker, or all its steps matched), the trace is run again once, and
    /// its report says so.
    #[arg(long, value_name = "COMMAND")]
    restart_cmd: Option<String>,
    /// With --broker: the longest wait for any reply, for a delivery the model says is owed, and
    /// for a deletion the broker may make late (an answer after a `wait` that finds the deleted
    /// exchange or queue still there is asked for again, until then).
    #[arg(long, default_value_t = DEFAULT_TIMEOUT.as_millis() as u64, value_name = "MS")]
    timeout_ms: u64,
    /// With --broker: how long to listen, at a `wait` and at the end of each trace, once the
    /// model says the broker may be done (for anything it must not do).
    #[arg(long, default_value_t = DEFAULT_GRACE.as_millis() as u64, value_name = "MS")]
    grace_ms: u64,
    #[command(flatten)]
    reports: Reports,
}

/// The report files a run writes beside what it prints (`run`, `proxy`).
#[derive(Args, Debug)]
struct Reports {
    /// Write a JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write an HTML report to FILE: one page, usable offline, with the summary and, for each
    /// trace that did not pass, its cited rules linked to the book and a sequence diagram of
    /// what the broker did beside what the model allowed at the step that failed.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Where the HTML report's links to the book lead (a URL or a directory); by default the
    /// book `just docs` builds, target/book of the repository run from.
    #[arg(long, value_name = "URL", requires = "html")]
    book: Option<String>,
}

impl Reports {
    /// Write the requested report files.
    fn write(&self, run: &SuiteRun) -> Result<(), Fatal> {
        let write = |path: &PathBuf, text: String| {
            std::fs::write(path, text).map_err(|e| Fatal(format!("{}: {e}", path.display())))
        };
        if let Some(path) = &self.json {
            write(path, report::json(run))?;
        }
        if let Some(path) = &self.junit {
            write(path, report::junit(run))?;
        }
        if let Some(path) = &self.html {
            // The cites' places come from the rule catalogue of the repository run from; without
            // one (run elsewhere), the cites are not links.
            let cat = catalogue(&[PathBuf::from("fixtures")]).ok();
            let book = match &self.book {
                Some(b) if b.ends_with('/') => b.clone(),
                Some(b) => format!("{b}/"),
                None => std::fs::canonicalize("target/book")
                    .map(|p| format!("file://{}/", p.display()))
                    .unwrap_or_else(|_| "target/book/".to_string()),
            };
            let cite = |c: &str| {
                let to = amqp_conformance::book::cite_link(cat.as_ref()?, "index.md", c)?;
                Some(to.replacen(".md", ".html", 1))
            };
            write(path, report::html(run, &book, &cite))?;
        }
        Ok(())
    }
}

/// A usage or infrastructure error: printed as one line, exit 2.
struct Fatal(String);

impl Fatal {
    /// An error of the library, as its `Display` says it.
    fn of(e: impl std::fmt::Display) -> Fatal {
        Fatal(e.to_string())
    }
}

impl Common {
    /// Whether `--broker`, if given, is an AMQP URI that names a virtual host (before anything
    /// is read or run).
    fn check_broker(&self) -> Result<(), Fatal> {
        self.broker.as_deref().map_or(Ok(()), |uri| BrokerUri::parse(uri).map(drop)).map_err(Fatal::of)
    }

    /// The target: the broker at `--broker`, the model itself with `--model`, or else the
    /// reference broker started in-process under `--profile` (alive as long as the target).
    fn target(&self, model: bool) -> Result<OpenTarget, Fatal> {
        let timing = self.timing();
        let description = match &self.broker {
            None if self.restart_cmd.is_some() => return Err(Fatal("--restart-cmd needs --broker".into())),
            None if model => Description::Model,
            None => Description::Reference { timing, product: None },
            Some(uri) => {
                let uri = BrokerUri::parse(uri).map_err(Fatal::of)?;
                Description::Broker { uri, timing, restart_cmd: self.restart_cmd.clone() }
            }
        };
        description.open(self.profile).map_err(Fatal::of)
    }

    /// The runner's timing options.
    fn timing(&self) -> Timing {
        Timing { timeout: Duration::from_millis(self.timeout_ms), grace: Duration::from_millis(self.grace_ms) }
    }

    fn deviations(&self) -> Result<Option<Deviations>, Fatal> {
        // Entries must name fixtures that exist (paths from the current directory) and rules
        // those fixtures cite.
        self.deviations.as_deref().map(Deviations::load_checked).transpose().map_err(Fatal::of)
    }

    /// Write the requested report files.
    fn write_reports(&self, run: &SuiteRun) -> Result<(), Fatal> {
        self.reports.write(run)
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

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Stop with the traces the model itself cannot follow under `profile`, if there are any: each
/// is printed on stderr as `file:line: what is wrong` ([`trace_errors`]), before any broker is
/// contacted.
fn precheck(traces: &[(String, Trace)], profile: ProfileName) -> Result<(), Fatal> {
    let errors = trace_errors(traces, profile);
    for e in &errors {
        eprintln!("{e}");
    }
    let (which, them) = match errors.len() {
        0 => return Ok(()),
        1 => ("a trace is".to_string(), "it"),
        n => (format!("{n} traces are"), "them"),
    };
    Err(Fatal(format!(
        "{which} in error (above): the model itself does not follow {them} under the {profile} profile; nothing was run"
    )))
}

/// `n traces` (or `1 trace`).
fn traces_count(n: usize) -> String {
    format!("{n} trace{}", if n == 1 { "" } else { "s" })
}

/// What `run` and `stress` start from: the traces read and checked on the model, the
/// deviations file, and the target (any in-process server alive as long as this).
struct Suite {
    traces: Vec<(String, Trace)>,
    deviations: Option<Deviations>,
    profile: ProfileName,
    target: OpenTarget,
}

impl Suite {
    /// Check the URI, read the traces and the deviations file, check the traces on the model,
    /// then reach the target: in that order, so that no broker is contacted for a trace error.
    fn prepare(paths: &[PathBuf], model: bool, common: &Common) -> Result<Suite, Fatal> {
        common.check_broker()?;
        let files = find_traces(paths).map_err(Fatal::of)?;
        let traces = load(&files).map_err(Fatal::of)?;
        let deviations = common.deviations()?;
        precheck(&traces, common.profile)?;
        let target = common.target(model)?;
        Ok(Suite { traces, deviations, profile: common.profile, target })
    }

    /// A status as the deviations file classifies it.
    fn classify(&self, file: &str, status: Status) -> Status {
        match &self.deviations {
            Some(d) => d.apply(self.profile, file, status),
            None => status,
        }
    }
}

fn run(paths: &[PathBuf], model: bool, common: &Common) -> Result<bool, Fatal> {
    let suite = Suite::prepare(paths, model, common)?;
    let (traces, target, profile) = (&suite.traces, &suite.target.spec, suite.profile);
    let what = format!("run: {}", traces_count(traces.len()));
    println!("{}", report::header(&what, &target.label(), profile, common.jobs));
    let classify = |file: &str, status: Status| suite.classify(file, status);
    let mut progress = Progress::new(traces.len());
    let run = run_suite(traces, target, profile, common.jobs, &classify, &mut |r| progress.show(r));
    progress.finish();
    println!("{}", report::summary(&run));
    common.write_reports(&run)?;
    Ok(run.conformant())
}

fn stress(paths: &[PathBuf], runs: usize, threads: Option<usize>, common: &Common) -> Result<bool, Fatal> {
    let suite = Suite::prepare(paths, false, common)?;
    let (traces, target, profile) = (&suite.traces, &suite.target.spec, suite.profile);
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let what = format!("stress: {} x {runs} runs, {threads} load threads", traces_count(traces.len()));
    println!("{}", report::header(&what, &target.label(), profile, common.jobs));
    let classify = |file: &str, status: Status| suite.classify(file, status);
    let load = amqp_conformance::stress::Load::start(threads);
    let mut done = Vec::new();
    for i in 1..=runs {
        let run = run_suite(traces, target, profile, common.jobs, &classify, &mut |_| {});
        let counts: Vec<String> =
            run.counts().iter().filter(|(_, n)| *n > 0).map(|(label, n)| format!("{n} {label}")).collect();
        println!("run {i}/{runs}: {} ({:.1} s)", counts.join(", "), run.elapsed.as_secs_f64());
        done.push(run);
    }
    drop(load);
    let differences = amqp_conformance::stress::differences(&done);
    for d in &differences {
        print!("{d}");
    }
    match differences.len() {
        0 => println!("stress: every trace had the same verdict in all {runs} runs"),
        n => println!("stress: {n} of {} traces changed verdict between runs", traces.len()),
    }
    if let Some(last) = done.last() {
        common.write_reports(last)?;
    }
    Ok(differences.is_empty())
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
    lifetime: bool,
    consumers: bool,
    quorum: bool,
}

fn generate(g: &Generation<'_>, common: &Common) -> Result<bool, Fatal> {
    common.check_broker()?;
    let seed = g.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    });
    if let Some(bad) = g.without.iter().find(|k| !WITHOUT_KINDS.contains(&k.as_str())) {
        return Err(Fatal(format!("--without: unknown kind `{bad}` (known: {})", WITHOUT_KINDS.join(", "))));
    }
    if g.lifetime && common.profile != amqp_model::ProfileName::Rabbitmq {
        return Err(Fatal("--lifetime: RabbitMQ's message-lifetime extensions need --profile rabbitmq (the specification gives their arguments no meaning)".into()));
    }
    if g.consumers && common.profile != amqp_model::ProfileName::Rabbitmq {
        return Err(Fatal("--consumers: RabbitMQ's consumer priorities and single active consumer need --profile rabbitmq (the specification gives their arguments no meaning)".into()));
    }
    if g.quorum && common.profile != amqp_model::ProfileName::Rabbitmq {
        return Err(Fatal(
            "--quorum: RabbitMQ's quorum queues need --profile rabbitmq (the specification has no queue types)".into(),
        ));
    }
    let config = GenConfig {
        steps: g.steps,
        without: g.without.to_vec(),
        lifetime: g.lifetime,
        consumers: g.consumers,
        quorum: g.quorum,
        spec_compatible: !g.lifetime && !g.consumers && !g.quorum,
        ..GenConfig::default()
    };
    let traces: Vec<(String, Trace)> = amqp_conformance::generate::generate(seed, g.count, &config)
        .into_iter()
        .enumerate()
        .map(|(i, t)| (format!("seed-{seed}-case-{i}"), t))
        .collect();
    let profile = common.profile;
    precheck(&traces, profile)?;
    let open = common.target(g.model)?;
    let target = &open.spec;
    // The seed first in the output, so that the run can be repeated.
    let what = format!("generate: {} of seed {seed} (about {} actions each)", traces_count(g.count), g.steps);
    println!("{}", report::header(&what, &target.label(), profile, common.jobs));
    let mut progress = Progress::new(traces.len());
    let run = run_suite(&traces, target, profile, common.jobs, &|_, s| s, &mut |r| progress.show(r));
    progress.finish();
    println!("{}", report::summary(&run));
    common.write_reports(&run)?;
    if g.shrink {
        let name = g.name.map_or_else(
            || match target {
                TargetSpec::Model => "model".to_string(),
                _ if open.in_process() => "reference".to_string(),
                TargetSpec::Broker { uri, .. } => uri.address().replace(':', "-"),
            },
            str::to_string,
        );
        for (i, result) in run.results.iter().enumerate() {
            let Status::Fail(original) = &result.status else { continue };
            let fails = |t: &Trace| matches!(run_one("shrinking", t, target, profile).status, Status::Fail(_));
            let (small, attempts) = shrink(seed, i, &config, fails);
            let last = run_one("shrunk", &small, target, profile);
            let note = match &last.status {
                Status::Fail(failure) => format!("At line {}: {}", failure.line, failure.detail()),
                _ => format!("The original case failed: {}", original.detail()),
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
fn matrix(config_path: &Path, out: &Path, check: bool, only: &[String]) -> Result<bool, Fatal> {
    use amqp_conformance::clients::Expectations;
    use amqp_conformance::matrix::{
        assemble, differences, render, run_columns, ColumnCells, MatrixConfig, MatrixData, EMBEDDED,
    };
    let config = MatrixConfig::load(config_path).map_err(Fatal::of)?;
    let files = find_traces(&config.paths).map_err(Fatal::of)?;
    let traces = load(&files).map_err(Fatal::of)?;
    // Before any target is run: every broker URI, the clients' targets and expectations, and the
    // traces under each profile a target uses.
    for t in &config.targets {
        if let Some(uri) = t.broker.as_deref().filter(|b| *b != EMBEDDED) {
            BrokerUri::parse(uri).map_err(|e| Fatal(format!("target `{}`: {e}", t.name)))?;
        }
    }
    let names: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    let mut expectations = Vec::new();
    for c in &config.clients {
        for name in &c.targets {
            let known = config.targets.iter().any(|t| &t.name == name && t.broker.is_some());
            if !known {
                return Err(Fatal(format!(
                    "client `{}`: `{name}` is not a broker target of {}",
                    c.name,
                    config_path.display()
                )));
            }
        }
        let e = Expectations::load(&c.expected).map_err(Fatal::of)?;
        if let Some(bad) = e.unknown_targets(&names).first() {
            return Err(Fatal(format!(
                "{}: `{bad}` is not a target of {}",
                c.expected.display(),
                config_path.display()
            )));
        }
        expectations.push(e);
    }
    let mut profiles: Vec<ProfileName> = config.targets.iter().map(|t| t.profile).collect();
    profiles.sort();
    profiles.dedup();
    for profile in profiles {
        precheck(&traces, profile)?;
    }
    let json = out.with_extension("json");
    // What the checked-in data says, for a target not available here.
    let old: Option<MatrixData> = std::fs::read_to_string(&json).ok().and_then(|t| serde_json::from_str(&t).ok());
    if let Some(unknown) = only.iter().find(|n| !names.contains(n)) {
        return Err(Fatal(format!("--only `{unknown}`: not a target of {}", config_path.display())));
    }
    let run = |t: &amqp_conformance::matrix::TargetConfig| only.is_empty() || only.contains(&t.name);
    let outcomes = run_columns(&config, &traces, &expectations, old.as_ref(), &json, &run).map_err(Fatal::of)?;
    let conformant = outcomes.iter().all(|o| o.conformant);
    let columns: Vec<(String, ColumnCells)> =
        config.targets.iter().zip(&outcomes).map(|(t, o)| (t.name.clone(), o.cells.clone())).collect();
    let client_columns: Vec<Vec<(String, ColumnCells)>> = (0..config.clients.len())
        .map(|k| {
            config
                .targets
                .iter()
                .zip(&outcomes)
                .filter_map(|(t, o)| o.clients[k].clone().map(|c| (t.name.clone(), c)))
                .collect()
        })
        .collect();
    let rows: Vec<(String, Vec<String>)> =
        traces.iter().map(|(f, t)| (f.strip_prefix("./").unwrap_or(f).to_string(), t.cites.clone())).collect();
    let row_files: Vec<String> = rows.iter().map(|(f, _)| f.clone()).collect();
    let clients: Vec<(String, Vec<(String, ColumnCells)>)> =
        config.clients.iter().map(|c| c.name.clone()).zip(client_columns).collect();
    let data = assemble(&columns, &row_files, &clients);
    let configs: Vec<&amqp_conformance::matrix::TargetConfig> = config.targets.iter().collect();
    // Links from the page: in the book, to the fixtures' pages and the cites' places.
    let links = amqp_conformance::matrix::Links::for_page(
        out,
        match amqp_conformance::matrix::Links::in_book(out) {
            true => Some(Catalogue::load(Path::new("."), &traces).map_err(Fatal::of)?),
            false => None,
        },
    );
    let page = render(&data, &configs, &rows, &config_path.display().to_string(), &links);
    let data = serde_json::to_string_pretty(&data).expect("the matrix's data") + "\n";
    if check {
        let old = std::fs::read_to_string(out).unwrap_or_default();
        let old_data = std::fs::read_to_string(&json).unwrap_or_default();
        if old != page || old_data != data {
            // The page shows each verdict; its data holds the rest (durations are in neither).
            let (file, shown) = if old != page {
                (out, differences(&old, &page, 40))
            } else {
                (json.as_path(), differences(&old_data, &data, 40))
            };
            eprintln!("{} is stale: it differs from this run (run `just matrix` and commit it):", file.display());
            for d in shown {
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
    let files = find_traces(paths).map_err(Fatal::of)?;
    let traces = load(&files).map_err(Fatal::of)?;
    let traces: Vec<_> = traces.into_iter().map(|(f, t)| (f.strip_prefix("./").unwrap_or(&f).to_string(), t)).collect();
    Catalogue::load(Path::new("."), &traces).map_err(Fatal::of)
}

fn docs(out: &Path, check: bool) -> Result<bool, Fatal> {
    use amqp_conformance::book::{model_source, pages, Sources, GENERATED_DIRS, GENERATED_FILES};
    use amqp_conformance::catalogue::profile_switches;
    use amqp_conformance::matrix::MatrixData;
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| Fatal(format!("{}: {e}", p.display())));
    let cat = catalogue(&[PathBuf::from("fixtures")])?;
    let files = find_traces(&[PathBuf::from("fixtures")]).map_err(Fatal::of)?;
    let mut fixtures = Vec::new();
    let mut texts = std::collections::BTreeMap::new();
    for (file, trace) in load(&files).map_err(Fatal::of)? {
        let file = file.strip_prefix("./").unwrap_or(&file).to_string();
        texts.insert(file.clone(), read(Path::new(&file))?);
        fixtures.push((file, trace));
    }
    let json = out.join("matrix.json");
    let matrix: MatrixData = serde_json::from_str(&read(&json)?)
        .map_err(|e| Fatal(format!("{}: {e} (run `just matrix` to write it)", json.display())))?;
    let switches = profile_switches(&read(Path::new("model/src/profile.rs"))?);
    let model_source = model_source(Path::new(".")).map_err(Fatal::of)?;
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

/// `proxy`: forward and read until the end, then say what was read.
fn proxy(
    listen: &str,
    upstream: &str,
    record: &Option<PathBuf>,
    backlog: usize,
    verbose: bool,
    profile: ProfileName,
    reports: &Reports,
) -> Result<bool, Fatal> {
    let started = std::time::Instant::now();
    let upstream = if upstream.contains("://") {
        amqp_conformance::target::uri::BrokerUri::parse(upstream).map_err(Fatal::of)?.address()
    } else {
        upstream.to_string()
    };
    let config = amqp_conformance::proxy::ProxyConfig {
        upstream: upstream.clone(),
        record: record.clone(),
        backlog,
        log: verbose,
        profile: amqp_model::Profile::named(profile),
    };
    let traffic = amqp_conformance::proxy::run_cli(listen, config).map_err(Fatal::of)?;
    eprintln!(
        "proxy: {} connection(s), {} command(s) and {} event(s) read, {} note(s)",
        traffic.connections,
        traffic.commands,
        traffic.events,
        traffic.notes.len()
    );
    if !traffic.behind.is_empty() {
        let behind: Vec<String> = traffic.behind.iter().map(|c| format!("c{c}")).collect();
        eprintln!("proxy: the reading fell behind on {} (forwarded, not read)", behind.join(", "));
    }
    if let Some(path) = &traffic.recording {
        eprintln!("proxy: the run is recorded in {}", path.display());
    }
    if let Some(e) = &traffic.recording_failed {
        eprintln!("proxy: the recording stopped early: {e}");
    }
    eprintln!(
        "proxy: judged under {profile}: {} divergence(s), {} client error(s){}",
        traffic.divergences(),
        traffic.client_errors(),
        traffic.stopped().map_or(String::new(), |why| format!("; judging stopped: {why}"))
    );
    reports.write(&amqp_conformance::proxy::report::suite_run(&traffic, &upstream, profile, started.elapsed()))?;
    Ok(traffic.divergences() == 0 && traffic.behind.is_empty() && traffic.recording_failed.is_none())
}

fn coverage(paths: &[PathBuf], min: f64) -> Result<bool, Fatal> {
    let cat = catalogue(paths)?;
    print!("{}", cat.coverage_report());
    let all = cat.share(None);
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
        Cmd::Matrix { config, out, check, only } => matrix(config, out, *check, only),
        Cmd::Serve { listen, profile, schedule, seed, users, send_timeout, product, control, vhosts, permissions } => {
            let cli = amqp_broker::ServeCli {
                listen: listen.clone(),
                profile: *profile,
                schedule: *schedule,
                seed: *seed,
                users: users.clone(),
                send_timeout: std::time::Duration::from_secs((*send_timeout).max(1)),
                product: product.clone(),
                control: control.clone(),
                vhosts: vhosts.clone(),
                permissions: permissions.clone(),
            };
            amqp_broker::run_cli(&cli).map(|()| true).map_err(|e| Fatal(e.to_string()))
        }
        Cmd::Proxy { listen, upstream, record, backlog, verbose, profile, reports } => {
            proxy(listen, upstream, record, *backlog, *verbose, *profile, reports)
        }
        Cmd::DelayProxy { listen, to, delay_ms, client_delay_ms } => {
            let delays = amqp_conformance::proxy::delay::Delays {
                from_broker: std::time::Duration::from_millis(*delay_ms),
                from_client: std::time::Duration::from_millis(*client_delay_ms),
            };
            amqp_conformance::proxy::delay::run_cli(listen, to, delays).map(|()| true).map_err(Fatal::of)
        }
        Cmd::Coverage { paths, min } => coverage(paths, *min),
        Cmd::Docs { out, check } => docs(out, *check),
        Cmd::MdbookMentions { question } => {
            if question.first().is_some_and(|q| q == "supports") {
                return ExitCode::SUCCESS;
            }
            let mut input = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
                .map_err(|e| Fatal(format!("mdbook-mentions: reading mdBook's input: {e}")))
                .and_then(|_| {
                    amqp_conformance::book::mentions::preprocess(&input)
                        .map_err(|e| Fatal(format!("mdbook-mentions: {e}")))
                })
                .map(|book| {
                    println!("{book}");
                    true
                })
        }
        Cmd::Stress { paths, runs, load, common } => stress(paths, *runs, *load, common),
        Cmd::Generate {
            seed,
            count,
            steps,
            save,
            name,
            no_shrink,
            without,
            model,
            lifetime,
            consumers,
            quorum,
            common,
        } => {
            let g = Generation {
                seed: *seed,
                count: *count,
                steps: *steps,
                save,
                name: name.as_deref(),
                shrink: !no_shrink,
                without,
                model: *model,
                lifetime: *lifetime,
                consumers: *consumers,
                quorum: *quorum,
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
