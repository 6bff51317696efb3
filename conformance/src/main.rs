//! `amqp-conformance`: replay conformance traces and validate the outcome against the model.

use amqp_conformance::run::{replay, ModelTarget, Verdict};
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
    /// The target is the model itself, dispatching eagerly (a live-broker target comes with the
    /// lapin runner). Traces whose `profile:` header names another profile are reported as
    /// skipped. Exits 0 when every trace run passes, 1 when one fails, 2 when a trace cannot be
    /// read or parsed.
    Run {
        /// Trace files or directories (searched for *.trace).
        #[arg(default_value = "fixtures")]
        paths: Vec<PathBuf>,
        /// The profile to validate against.
        #[arg(long, default_value = "rabbitmq")]
        profile: ProfileName,
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
    let Cmd::Run { paths, profile } = Cli::parse().command;
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
        match replay(&trace, profile, &mut ModelTarget::new(profile, Faults::NONE)) {
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
