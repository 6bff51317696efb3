//! `amqp-conformance`: replay conformance traces and validate the outcome against the model.

use amqp_conformance::live::{check_login, LiveTarget, Timing};
use amqp_conformance::run::{replay, ModelTarget, Target, Verdict};
use amqp_conformance::trace::parse;
use amqp_model::{Faults, Profile, ProfileName};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Replay AMQP 0-9-1 conformance traces and validate what the target did against the model.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run traces and report, per trace, pass or the line where the target left the behaviours
    /// the model allows.
    ///
    /// The target is a live broker with `--broker URI`, otherwise the model itself (dispatching
    /// eagerly). On a broker every queue and exchange name gets a run-unique prefix, and what a
    /// trace created is deleted afterwards. Traces whose `profile:` header names another profile,
    /// and traces with steps the target cannot perform (`restart` on a broker), are reported as
    /// skipped. Exits 0 when every trace run passes, 1 when one fails, 2 when a trace cannot be
    /// read or parsed or the broker cannot be reached.
    Run {
        /// Trace files or directories (searched for *.trace).
        #[arg(default_value = "fixtures")]
        paths: Vec<PathBuf>,
        /// The profile to validate against.
        #[arg(long, default_value = "rabbitmq")]
        profile: ProfileName,
        /// Run against the broker at this AMQP URI (e.g. amqp://guest:guest@127.0.0.1:5672/%2f)
        /// instead of the model. The password is never printed.
        #[arg(long, value_name = "URI")]
        broker: Option<String>,
        /// With --broker: the longest wait for any answer, in milliseconds.
        #[arg(long, default_value_t = 2000, value_name = "MS")]
        timeout_ms: u64,
    },
}

/// The trace files under `path`: a file named on the command line is taken as it is; a directory
/// is searched for `*.trace`.
fn traces(path: &Path, named: bool, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.path());
        for e in entries {
            traces(&e.path(), false, out)?;
        }
    } else if named || path.extension().is_some_and(|x| x == "trace") {
        std::fs::metadata(path)?;
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn main() -> ExitCode {
    let Cmd::Run { paths, profile, broker, timeout_ms } = Cli::parse().command;
    let timing = Timing { timeout: std::time::Duration::from_millis(timeout_ms), ..Timing::default() };
    if let Some(uri) = &broker {
        if let Err(e) = check_login(uri, timing.timeout) {
            eprintln!("amqp-conformance: {e}");
            return ExitCode::from(2);
        }
    }
    let mut files = Vec::new();
    for p in &paths {
        if let Err(e) = traces(p, true, &mut files) {
            eprintln!("amqp-conformance: {}: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for file in &files {
        let name = file.display().to_string();
        let trace = match std::fs::read_to_string(file)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|t| parse(&t, &name).map_err(|e| e.to_string()))
        {
            Ok(t) => t,
            Err(e) => {
                eprintln!("amqp-conformance: {e}");
                return ExitCode::from(2);
            }
        };
        if trace.profile.is_some_and(|p| p != profile) {
            println!("skip  {name} (only under the {} profile)", trace.profile.expect("checked"));
            skipped += 1;
            continue;
        }
        let profile = Profile::named(profile);
        let (verdict, trouble) = match &broker {
            Some(uri) => {
                let mut target = LiveTarget::new(uri, timing);
                let verdict = replay(&trace, profile, &mut target as &mut dyn Target);
                match (target.finish(), target.incomplete()) {
                    (Err(e), _) => (verdict, Some(format!("cleanup failed: {e}"))),
                    (Ok(()), Some(why)) => {
                        println!("skip  {name} ({why})");
                        skipped += 1;
                        continue;
                    }
                    (Ok(()), None) => (verdict, None),
                }
            }
            None => (replay(&trace, profile, &mut ModelTarget::new(profile, Faults::NONE)), None),
        };
        if let Some(t) = trouble {
            println!("FAIL  {name}: {t}");
            failed += 1;
            continue;
        }
        match verdict {
            Verdict::Pass => {
                println!("pass  {name}");
                passed += 1;
            }
            verdict => {
                println!("FAIL  {name}:{verdict}");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
