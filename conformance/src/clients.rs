//! A client library's own test suite as a judge of brokers: the matrix runs it (an external
//! command, one verdict per test as JSON) against each broker it names, and judges each verdict
//! against the client's expectations file, as the suite's verdicts are judged against a
//! deviations file: a failure it lists (a test that presumes RabbitMQ, a broker's deviation
//! already known) is `known`, one it does not list is `FAIL`, a listed failure that passed is
//! `stale`.
//!
//! The command gets the broker's URI and the path of the JSON file to write as its last two
//! arguments (`clients/amqp091-go/run.sh` is one), and in its environment `AMQP_RESTART_CMD`,
//! the target's restart command (to bring back a broker a test hung), and `AMQP_TEST_TIMEOUT`,
//! the seconds a test may take on that target when the configuration says; it writes
//! `{"tests": [{"name": ..., "status": "pass" | "fail" | "skip" | "timeout" | "panic",
//! "reason": ...}, ...]}`.
//!
//! An expectations file (`clients/amqp091-go/expected.toml`):
//!
//! ```toml
//! [[failure]]
//! test = "TestDeclareArgsRejectToDeadLetterQueue"
//! targets = ["reference broker (rabbitmq)"]   # the matrix's target names
//! why = "needs dead-lettering, a RabbitMQ extension the reference broker does not implement"
//! intermittent = false                         # true: passes some of the time (timing)
//! ```

use crate::input::InputError;
use crate::target::uri::BrokerUri;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a client's whole suite may take against one broker before it is stopped.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A client's suite in the matrix's configuration (`[[client]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The section's heading: the client's name.
    pub name: String,
    /// The command and its first arguments; the broker's URI and the output file are appended.
    pub command: Vec<String>,
    /// The expectations file.
    pub expected: PathBuf,
    /// The matrix targets (by name) to run it against: brokers, not the model.
    pub targets: Vec<String>,
    /// Seconds a test may take, by target, where not the command's own limit (a broker that
    /// answers in milliseconds or never: each test it hangs costs the limit).
    #[serde(default)]
    pub timeouts: std::collections::BTreeMap<String, u64>,
}

/// What one test did, as the client's runner reports it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct TestOutcome {
    /// The test's name.
    pub name: String,
    /// `pass`, `fail`, `skip`, `timeout` or `panic`.
    pub status: String,
    /// Why it did not pass, as the runner read it from the output.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Deserialize)]
struct RawRun {
    tests: Vec<TestOutcome>,
}

/// One listed failure.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// The test.
    pub test: String,
    /// The targets it fails on.
    pub targets: Vec<String>,
    /// Why: the test's assumption, or the broker's deviation.
    pub why: String,
    /// It passes some of the time: a pass is not stale.
    #[serde(default)]
    pub intermittent: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpected {
    #[serde(default)]
    failure: Vec<Expected>,
}

/// A client's expectations file.
#[derive(Clone, Debug, Default)]
pub struct Expectations {
    entries: Vec<Expected>,
}

impl Expectations {
    /// Read and check an expectations file; errors name the file and line.
    pub fn load(path: &Path) -> Result<Expectations, InputError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| InputError::file(&source, format!("cannot read: {e}")))?;
        Expectations::parse(&text, &source)
    }

    /// Check the text of an expectations file; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Expectations, InputError> {
        let raw: RawExpected = toml::from_str(text).map_err(|e| InputError::toml(source, text, &e))?;
        for e in &raw.failure {
            if e.why.trim().is_empty() || e.targets.is_empty() {
                return Err(InputError::file(source, format!("`{}`: give `why` and at least one target", e.test)));
            }
        }
        Ok(Expectations { entries: raw.failure })
    }

    /// The entry for `test` on `target`, if any.
    pub fn find(&self, test: &str, target: &str) -> Option<&Expected> {
        self.entries.iter().find(|e| e.test == test && e.targets.iter().any(|t| t == target))
    }

    /// Entries naming a target that is not among `targets` (a misspelt name never applies).
    pub fn unknown_targets(&self, targets: &[String]) -> Vec<String> {
        let mut out: Vec<String> =
            self.entries.iter().flat_map(|e| &e.targets).filter(|t| !targets.contains(t)).cloned().collect();
        out.dedup();
        out
    }
}

/// How one test came out on one broker, once judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestVerdict {
    /// Passed, and no failure is listed.
    Pass,
    /// Skipped by the test itself.
    Skip,
    /// Did not pass, as listed (or passed, listed as intermittent).
    Known {
        /// The entry's why.
        why: String,
    },
    /// Passed, but listed as failing.
    Stale,
    /// Did not pass, not listed: its status and reason.
    Fail {
        /// `fail`, `timeout` or `panic`.
        status: String,
        /// Why, as the runner read it.
        reason: String,
    },
}

impl TestVerdict {
    /// The cell's word: pass, skip, known, stale, FAIL.
    pub fn label(&self) -> &'static str {
        match self {
            TestVerdict::Pass => "pass",
            TestVerdict::Skip => "skip",
            TestVerdict::Known { .. } => "known",
            TestVerdict::Stale => "stale",
            TestVerdict::Fail { .. } => "FAIL",
        }
    }

    /// What the note under the table says, if anything.
    pub fn note(&self) -> Option<String> {
        match self {
            TestVerdict::Pass | TestVerdict::Skip => None,
            TestVerdict::Known { why } => Some(format!("known: {why}")),
            TestVerdict::Stale => Some("listed as failing but passed (stale entry)".to_string()),
            TestVerdict::Fail { status, reason } => Some(format!("{status}: {reason}")),
        }
    }
}

/// Judge each test of a run on `target` against `expected`, in the run's order.
pub fn judge(tests: &[TestOutcome], target: &str, expected: &Expectations) -> Vec<(String, TestVerdict)> {
    tests
        .iter()
        .map(|t| {
            let listed = expected.find(&t.name, target);
            let verdict = match (t.status.as_str(), listed) {
                ("skip", _) => TestVerdict::Skip,
                ("pass", Some(e)) if e.intermittent => TestVerdict::Known { why: e.why.clone() },
                ("pass", Some(_)) => TestVerdict::Stale,
                ("pass", None) => TestVerdict::Pass,
                (_, Some(e)) => TestVerdict::Known { why: e.why.clone() },
                (status, None) => TestVerdict::Fail {
                    status: status.to_string(),
                    reason: t.reason.clone().unwrap_or_else(|| "(no reason given)".to_string()),
                },
            };
            (t.name.clone(), verdict)
        })
        .collect()
}

/// Why a client's suite gave no verdicts.
#[derive(Debug)]
pub enum ClientError {
    /// The command could not be started.
    Start(std::io::Error),
    /// It exited unsuccessfully: its status and the last lines of its error output.
    Exit(String, String),
    /// It did not finish within [`CLIENT_TIMEOUT`] and was killed.
    Timeout,
    /// Its JSON could not be read.
    Output(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Start(e) => write!(f, "cannot start: {e}"),
            ClientError::Exit(status, err) => write!(f, "failed ({status}): {err}"),
            ClientError::Timeout => write!(f, "did not finish within {CLIENT_TIMEOUT:?}"),
            ClientError::Output(e) => write!(f, "its output: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Run `config`'s command against target `target`, the broker at `uri` (restarted by `restart`,
/// a shell command, when a test hangs it), writing its JSON to `out`, and read the tests'
/// outcomes (in the order the runner lists them).
pub fn run(
    config: &ClientConfig,
    target: &str,
    uri: &BrokerUri,
    restart: Option<&str>,
    out: &Path,
) -> Result<Vec<TestOutcome>, ClientError> {
    let (program, args) = config.command.split_first().ok_or_else(|| ClientError::Output("no command".into()))?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(ClientError::Start)?;
    }
    let _ = std::fs::remove_file(out);
    let mut command = std::process::Command::new(program);
    command.env_remove("AMQP_RESTART_CMD").env_remove("AMQP_TEST_TIMEOUT");
    if let Some(restart) = restart {
        command.env("AMQP_RESTART_CMD", restart);
    }
    if let Some(seconds) = config.timeouts.get(target) {
        command.env("AMQP_TEST_TIMEOUT", seconds.to_string());
    }
    let mut child = command
        .args(args)
        .arg(uri.secret())
        .arg(out)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(ClientError::Start)?;
    // Its error output is read while it runs (a full pipe would stall it), and kept.
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ClientError::Timeout);
            }
            Err(e) => return Err(ClientError::Start(e)),
        }
    };
    let err = reader.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(ClientError::Exit(status.to_string(), tail.into_iter().rev().collect::<Vec<_>>().join(" / ")));
    }
    let text = std::fs::read_to_string(out).map_err(|e| ClientError::Output(format!("{}: {e}", out.display())))?;
    let raw: RawRun =
        serde_json::from_str(&text).map_err(|e| ClientError::Output(format!("{}: {e}", out.display())))?;
    Ok(raw.tests)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(name: &str, status: &str) -> TestOutcome {
        TestOutcome { name: name.into(), status: status.into(), reason: Some(format!("{name} went wrong")) }
    }

    #[test]
    fn failures_are_known_when_listed_for_that_target_and_fail_otherwise() {
        let expected = Expectations::parse(
            "[[failure]]\ntest = \"TestA\"\ntargets = [\"B1\"]\nwhy = \"presumes RabbitMQ\"\n\n\
             [[failure]]\ntest = \"TestT\"\ntargets = [\"B1\", \"B2\"]\nwhy = \"100 ms\"\nintermittent = true\n",
            "e.toml",
        )
        .unwrap();
        let tests =
            [outcome("TestA", "fail"), outcome("TestB", "panic"), outcome("TestT", "pass"), outcome("TestS", "skip")];
        let on_b1 = judge(&tests, "B1", &expected);
        let labels: Vec<&str> = on_b1.iter().map(|(_, v)| v.label()).collect();
        assert_eq!(labels, ["known", "FAIL", "known", "skip"]);
        assert_eq!(on_b1[1].1.note().unwrap(), "panic: TestB went wrong");
        assert_eq!(on_b1[0].1.note().unwrap(), "known: presumes RabbitMQ");
        // On another target the same failure is not listed.
        let on_b2 = judge(&tests, "B2", &expected);
        assert_eq!(on_b2[0].1.label(), "FAIL");
        // A listed failure that passes is stale.
        assert_eq!(judge(&[outcome("TestA", "pass")], "B1", &expected)[0].1, TestVerdict::Stale);
        assert_eq!(expected.unknown_targets(&["B1".into()]), ["B2"]);
    }

    #[test]
    fn an_entry_without_why_is_refused_with_its_file() {
        let e =
            Expectations::parse("[[failure]]\ntest = \"T\"\ntargets = [\"B\"]\nwhy = \"\"\n", "e.toml").unwrap_err();
        assert_eq!(e.to_string(), "e.toml: `T`: give `why` and at least one target");
        let e = Expectations::parse("[[failure]]\ntest = \"T\"\nwhat = 1\n", "e.toml").unwrap_err();
        assert!(e.to_string().starts_with("e.toml:3: "), "{e}");
    }

    #[test]
    fn a_command_that_fails_says_how() {
        let config = ClientConfig {
            name: "c".into(),
            command: vec!["sh".into(), "-c".into(), "echo broken >&2; exit 2".into(), "sh".into()],
            expected: PathBuf::from("e.toml"),
            targets: vec![],
            timeouts: [("B".to_string(), 7)].into(),
        };
        let uri = BrokerUri::parse("amqp://guest:guest@127.0.0.1:1/%2f").unwrap();
        let out = std::env::temp_dir().join(format!("amqpc-client-{}.json", std::process::id()));
        let e = run(&config, "B", &uri, None, &out).unwrap_err().to_string();
        assert!(e.starts_with("failed (exit status: 2): ") && e.ends_with("broken"), "{e}");
        let config = ClientConfig {
            command: vec![
                "sh".into(),
                "-c".into(),
                "printf '{\"tests\":[{\"name\":\"T%s\",\"status\":\"pass\"}]}' \"$AMQP_TEST_TIMEOUT$AMQP_RESTART_CMD\" > \"$2\"".into(),
                "sh".into(),
            ],
            ..config
        };
        let passed = |name: &str| vec![TestOutcome { name: name.into(), status: "pass".into(), reason: None }];
        assert_eq!(run(&config, "B", &uri, Some("R"), &out).unwrap(), passed("T7R"), "the target's limit and restart");
        assert_eq!(run(&config, "C", &uri, None, &out).unwrap(), passed("T"));
        let _ = std::fs::remove_file(&out);
    }
}
