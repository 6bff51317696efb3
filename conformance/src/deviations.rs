//! Known deviations: a per-broker TOML file listing the traces a broker is known to fail, and
//! why, so a run against it can be conformant apart from what is listed, and notices when an
//! entry no longer describes the broker.
//!
//! ```toml
//! # deviations/rabbitmq.toml: where RabbitMQ 3.10 departs from the spec profile
//! broker = "RabbitMQ 3.10.8"
//!
//! [[deviation]]
//! fixture = "fixtures/spec/queue-delete-missing-spec.trace"
//! profile = "spec"
//! rule = "queue delete queue queue-known"
//! reason = "RabbitMQ answers delete-ok for a queue that does not exist"
//! ```
//!
//! - `broker` (optional): which broker and version the file describes, for readers.
//! - one `[[deviation]]` table per entry, every field but `see` required and none other allowed:
//!   - `fixture`: the trace, relative to the repository root (no `..`, not absolute). It
//!     matches a trace file given to the runner whose path ends with the same components, so
//!     `fixtures/spec/x.trace`, `./fixtures/spec/x.trace` and `/home/me/amqp/fixtures/spec/x.trace`
//!     all match `fixtures/spec/x.trace`, and `xfixtures/spec/x.trace` does not;
//!   - `profile`: `spec` or `rabbitmq`, the profile under which the broker fails the trace;
//!   - `rule`: the rule the broker departs from, one of the fixture's `cite:` lines (checked by
//!     [`Deviations::check_cites`] / [`Deviations::check_fixtures`]);
//!   - `reason`: what the broker does instead, in a sentence;
//!   - `see` (optional): a minimal trace of the same deviation (a regression fixture, which has
//!     an entry of its own), for a fixture that fails only because of it; `rule` may then be one
//!     of the regression's `cite:` lines;
//!   - `intermittent` (optional, default false): the broker shows the deviation only some of the
//!     time (it depends on timing), so a pass is `known` too rather than `stale`.
//!
//! At most one entry per fixture and profile.
//!
//! A run applies the file with [`Deviations::apply`]: a listed trace that fails is `known`, and
//! one that passes is `stale` (a warning: its entry may be out of date). The checks
//! ([`Deviations::check_cites`], [`Deviations::check_fixtures`]) catch entries whose fixture or
//! rule has gone, so the file cannot rot silently.
//!
//! One file for one concern, a deviations file: reading, checking and applying it (nearly half of
//! its lines are tests).

use crate::input::{line_of, InputError, InputErrors};
use crate::suite::Status;
use amqp_model::ProfileName;
use serde::Deserialize;
use std::path::{Component, Path};
use toml::Spanned;

/// One known deviation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deviation {
    /// The fixture, as the file writes it (relative to the repository root).
    pub fixture: String,
    /// The profile under which the broker departs from it.
    pub profile: ProfileName,
    /// The rule departed from: one of the fixture's `cite:` lines.
    pub rule: String,
    /// What the broker does instead.
    pub reason: String,
    /// A minimal trace showing the same deviation (a regression fixture), when this entry is a
    /// fixture that fails because of it; `rule` may then be one the regression cites.
    pub see: Option<String>,
    /// The broker shows the deviation only some of the time (it depends on timing): a pass is
    /// known too, not stale.
    pub intermittent: bool,
    /// The line of the entry's `fixture =` in the deviations file (1-based).
    pub line: usize,
}

/// A deviations file: the known deviations of one broker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deviations {
    /// Where it was read from (the path as given), for messages.
    source: String,
    /// Its `broker`.
    broker: Option<String>,
    /// Its entries, in file order.
    entries: Vec<Deviation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    broker: Option<String>,
    #[serde(default)]
    deviation: Vec<RawDeviation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeviation {
    fixture: Spanned<String>,
    profile: Spanned<String>,
    rule: Spanned<String>,
    reason: Spanned<String>,
    see: Option<Spanned<String>>,
    #[serde(default)]
    intermittent: bool,
}

/// The components of a path that matter for matching: its normal components (and `..`),
/// without `.`, the root or a prefix.
fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Whether `file`'s components end with all of `entry`'s.
fn ends_with(file: &[String], entry: &[String]) -> bool {
    !entry.is_empty() && file.len() >= entry.len() && file[file.len() - entry.len()..] == *entry
}

impl Deviations {
    /// An empty file: every trace keeps its status.
    pub fn none() -> Self {
        Deviations::default()
    }

    /// Read and check a deviations file. Errors are one line naming the file, and the line
    /// when there is one: `deviations/rabbitmq.toml:12: unknown field ...`.
    pub fn load(path: &Path) -> Result<Deviations, InputError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| InputError::file(&source, format!("cannot read: {e}")))?;
        Deviations::parse(&text, &source)
    }

    /// [`Deviations::load`], then [`Deviations::check_fixtures`] against the fixtures under the
    /// current directory (the repository root): any problem is an error, the problems joined.
    pub fn load_checked(path: &Path) -> Result<Deviations, InputErrors> {
        let deviations = Deviations::load(path)?;
        let problems = deviations.check_fixtures(Path::new("."));
        if problems.is_empty() {
            Ok(deviations)
        } else {
            Err(InputErrors(problems))
        }
    }

    /// Check the text of a deviations file; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Deviations, InputError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let mut e = InputError::toml(source, text, &e);
            if e.message.contains("expected a sequence") {
                e.message.push_str(" (write each entry under `[[deviation]]`, with double brackets)");
            }
            e
        })?;
        let at = |s: &std::ops::Range<usize>, message: String| InputError::at(source, line_of(text, s.start), message);
        let mut entries: Vec<Deviation> = Vec::with_capacity(raw.deviation.len());
        for d in raw.deviation {
            let fixture = d.fixture.get_ref().trim().to_string();
            if components(&fixture).is_empty() {
                return Err(at(&d.fixture.span(), "`fixture` is empty".into()));
            }
            if Path::new(&fixture).has_root() || components(&fixture).iter().any(|c| c == "..") {
                return Err(at(
                    &d.fixture.span(),
                    format!(
                        "fixture `{fixture}` must be a path relative to the repository root without `..`, like \
                         `fixtures/spec/x.trace`"
                    ),
                ));
            }
            let profile: ProfileName =
                d.profile.get_ref().parse().map_err(|e| at(&d.profile.span(), format!("{e}")))?;
            let rule = d.rule.get_ref().trim().to_string();
            if rule.is_empty() {
                return Err(at(
                    &d.rule.span(),
                    "`rule` is empty: name the rule, one of the fixture's `cite:` lines".into(),
                ));
            }
            let reason = d.reason.get_ref().trim().to_string();
            if reason.is_empty() {
                return Err(at(&d.reason.span(), "`reason` is empty: say what the broker does instead".into()));
            }
            let line = line_of(text, d.fixture.span().start);
            if let Some(first) =
                entries.iter().find(|e| e.profile == profile && components(&e.fixture) == components(&fixture))
            {
                return Err(InputError::at(
                    source,
                    line,
                    format!(
                        "a second entry for `{fixture}` under profile {profile} (the first is at line {})",
                        first.line
                    ),
                ));
            }
            let see = match d.see {
                None => None,
                Some(see) => {
                    let path = see.get_ref().trim().to_string();
                    if components(&path).is_empty()
                        || Path::new(&path).has_root()
                        || components(&path).iter().any(|c| c == "..")
                    {
                        return Err(at(
                            &see.span(),
                            "`see` must be a fixture path relative to the repository root without `..`".into(),
                        ));
                    }
                    Some(path)
                }
            };
            entries.push(Deviation { fixture, profile, rule, reason, see, intermittent: d.intermittent, line });
        }
        Ok(Deviations { source: source.to_string(), broker: raw.broker, entries })
    }

    /// Where the file was read from (empty for [`Deviations::none`]).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The broker the file describes, if it says.
    pub fn broker(&self) -> Option<&str> {
        self.broker.as_deref()
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[Deviation] {
        &self.entries
    }

    /// The entry for trace `file` under `profile`: one whose fixture path is a suffix of
    /// `file`'s path, on whole components (`.` components and the root ignored). When several
    /// match (`x.trace` and `spec/x.trace`), the longest wins.
    pub fn find(&self, file: &str, profile: ProfileName) -> Option<&Deviation> {
        let file = components(file);
        self.entries
            .iter()
            .filter(|d| d.profile == profile)
            .map(|d| (d, components(&d.fixture)))
            .filter(|(_, c)| ends_with(&file, c))
            .max_by_key(|(_, c)| c.len())
            .map(|(d, _)| d)
    }

    /// The status of trace `file` under `profile` once its entry, if any, is taken into
    /// account: a FAIL becomes known (with the entry's rule and reason), so does an ERROR
    /// (without a line: the trace's steps matched, the run went wrong after them, e.g. a delete
    /// the broker never answers while cleaning up), a departure from a recommendation (one that
    /// shows only sometimes, listed `intermittent` so that both outcomes read alike) and, for an
    /// intermittent entry, a pass; any other pass becomes stale (the entry may no longer describe
    /// the broker). Anything else, and any trace without an entry, is left as it is.
    pub fn apply(&self, profile: ProfileName, file: &str, status: Status) -> Status {
        let Some(d) = self.find(file, profile) else { return status };
        match status {
            // A failure, or a run that went wrong in the way the entry describes (a method the
            // broker never answers, met while cleaning up after the trace: no line of the trace
            // is at fault), or an intermittent deviation that did not show this time.
            seen @ (Status::Fail(_) | Status::Error { .. } | Status::Departs { .. }) => {
                Status::Known { seen: Box::new(seen), rule: d.rule.clone(), reason: d.reason.clone() }
            }
            Status::Pass if d.intermittent => {
                Status::Known { seen: Box::new(Status::Pass), rule: d.rule.clone(), reason: d.reason.clone() }
            }
            Status::Pass => Status::Stale { rule: d.rule.clone() },
            other => other,
        }
    }

    /// The entries that have rotted, one message each (`FILE:LINE: ...`): those whose fixture
    /// `load` cannot find (it returns None), and those whose `rule` is not among the fixture's
    /// `cite:` lines (which `load` returns). `load` gets the fixture as the file writes it.
    pub fn check_cites(&self, load: impl Fn(&str) -> Option<Vec<String>>) -> Vec<InputError> {
        let list = |cites: &[String]| {
            if cites.is_empty() {
                "none".to_string()
            } else {
                cites.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            }
        };
        self.entries
            .iter()
            .filter_map(|d| {
                let at = |message: String| InputError::at(&self.source, d.line, message);
                let Some(mut cites) = load(&d.fixture) else {
                    return Some(at(format!("fixture `{}` does not exist", d.fixture)));
                };
                if let Some(see) = &d.see {
                    match load(see) {
                        None => return Some(at(format!("`see` fixture `{see}` does not exist"))),
                        Some(more) => cites.extend(more),
                    }
                }
                if cites.contains(&d.rule) {
                    return None;
                }
                Some(at(match &d.see {
                    None => format!(
                        "fixture `{}` does not cite `{}` (its cite: lines are {})",
                        d.fixture,
                        d.rule,
                        list(&cites)
                    ),
                    Some(see) => format!(
                        "neither `{}` nor `{see}` cites `{}` (their cite: lines are {})",
                        d.fixture,
                        d.rule,
                        list(&cites)
                    ),
                }))
            })
            .collect()
    }

    /// [`Deviations::check_cites`] against the fixtures on disk, `root` being the directory the
    /// fixture paths are relative to (the repository root). It also reports fixtures that
    /// cannot be read or parsed, and entries that can never apply because the fixture's
    /// `profile:` header names the other profile (the runner skips it under the entry's).
    pub fn check_fixtures(&self, root: &Path) -> Vec<InputError> {
        // Every fixture an entry names (its own and its `see`), read once: the trace, or why
        // not (None: it does not exist, which check_cites reports).
        let mut traces: std::collections::BTreeMap<&str, Result<crate::trace::Trace, Option<String>>> =
            std::collections::BTreeMap::new();
        for file in self.entries.iter().flat_map(|d| std::iter::once(&d.fixture).chain(&d.see)) {
            traces.entry(file).or_insert_with(|| match std::fs::read_to_string(root.join(file)) {
                Ok(text) => crate::trace::parse(&text, file).map_err(|e| Some(format!("does not parse: {e}"))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(None),
                Err(e) => Err(Some(format!("cannot be read: {e}"))),
            });
        }
        let mut out = Vec::new();
        for d in &self.entries {
            let at = |message: String| InputError::at(&self.source, d.line, message);
            let broken: Vec<InputError> = std::iter::once(&d.fixture)
                .chain(&d.see)
                .filter_map(|f| match &traces[f.as_str()] {
                    Err(Some(why)) => Some(at(format!("fixture `{f}` {why}"))),
                    _ => None,
                })
                .collect();
            if !broken.is_empty() {
                out.extend(broken);
                continue;
            }
            let one = Deviations { source: self.source.clone(), broker: None, entries: vec![d.clone()] };
            out.extend(one.check_cites(|f| traces.get(f).and_then(|t| t.as_ref().ok()).map(|t| t.cites.clone())));
            let profile = traces[d.fixture.as_str()].as_ref().ok().and_then(|t| t.profile);
            if let Some(p) = profile.filter(|p| *p != d.profile) {
                out.push(at(format!(
                    "fixture `{}` has `profile: {p}`, so it is skipped under {} and this entry never applies",
                    d.fixture, d.profile
                )));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Failure;
    use crate::target::Problem;

    const FILE: &str = r#"# deviations/rabbitmq.toml: where RabbitMQ 3.10 departs from the spec profile
broker = "RabbitMQ 3.10.8"

[[deviation]]
fixture = "fixtures/spec/queue-delete-missing-spec.trace"
profile = "spec"
rule = "queue delete queue queue-known"
reason = "RabbitMQ answers delete-ok for a queue that does not exist"

[[deviation]]
fixture = "./fixtures/spec/other.trace"
profile = "rabbitmq"
rule = "basic 10"
reason = "something else"
"#;

    /// Errors as the runner prints them.
    fn texts(errors: Vec<InputError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    fn file() -> Deviations {
        Deviations::parse(FILE, "deviations/rabbitmq.toml").unwrap()
    }

    fn fail() -> Status {
        Status::Fail(Failure::diverged(9, "c1.1 queue.delete q", &[], &["c1.1 queue.delete-ok 0"]))
    }

    #[test]
    fn parses_the_format() {
        let d = file();
        assert_eq!(d.broker(), Some("RabbitMQ 3.10.8"));
        assert_eq!(d.source(), "deviations/rabbitmq.toml");
        assert_eq!(d.entries().len(), 2);
        let e = &d.entries()[0];
        assert_eq!(e.fixture, "fixtures/spec/queue-delete-missing-spec.trace");
        assert_eq!(e.profile, ProfileName::Spec);
        assert_eq!(e.rule, "queue delete queue queue-known");
        assert_eq!(e.reason, "RabbitMQ answers delete-ok for a queue that does not exist");
        assert_eq!(e.line, 5);
        assert_eq!(d.entries()[1].profile, ProfileName::Rabbitmq);
        assert_eq!(d.entries()[1].line, 11);
        let empty = Deviations::parse("", "x.toml").unwrap();
        assert!(empty.entries().is_empty() && empty.broker().is_none());
    }

    fn err(text: &str) -> String {
        Deviations::parse(text, "dev.toml").unwrap_err().to_string()
    }

    #[test]
    fn unknown_fields_are_refused_with_their_line() {
        let e = err("broker = \"x\"\n[[deviation]]\nfixture = \"a.trace\"\nprofile = \"spec\"\nrule = \"r\"\nreason = \"w\"\nseverity = 3\n");
        assert!(e.starts_with("dev.toml:7: unknown field `severity`"), "{e}");
        let e = err("brokers = \"x\"\n");
        assert!(e.starts_with("dev.toml:1: unknown field `brokers`"), "{e}");
    }

    #[test]
    fn toml_syntax_errors_name_the_line() {
        let e = err("broker = \"x\"\n\n[[deviation]\n");
        assert!(e.starts_with("dev.toml:3: "), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        let e = err("[deviation]\nfixture = \"a.trace\"\n");
        assert!(e.starts_with("dev.toml:1: ") && e.ends_with("with double brackets)"), "{e}");
    }

    #[test]
    fn missing_fields_are_refused() {
        let e = err("[[deviation]]\nfixture = \"a.trace\"\nprofile = \"spec\"\nrule = \"r\"\n");
        assert!(e.starts_with("dev.toml"), "{e}");
        assert!(e.contains("missing field `reason`"), "{e}");
    }

    #[test]
    fn bad_profiles_are_refused_with_their_line() {
        let e = err("[[deviation]]\nfixture = \"a.trace\"\nprofile = \"Spec\"\nrule = \"r\"\nreason = \"w\"\n");
        assert_eq!(e, "dev.toml:3: unknown profile `Spec` (expected `spec` or `rabbitmq`)");
    }

    #[test]
    fn empty_and_escaping_values_are_refused() {
        let entry = |fixture: &str, rule: &str, reason: &str| {
            err(&format!(
                "[[deviation]]\nfixture = \"{fixture}\"\nprofile = \"spec\"\nrule = \"{rule}\"\nreason = \"{reason}\"\n"
            ))
        };
        assert!(entry("", "r", "w").starts_with("dev.toml:2: `fixture` is empty"));
        assert!(entry("./", "r", "w").starts_with("dev.toml:2: `fixture` is empty"));
        assert!(entry("/abs/x.trace", "r", "w").starts_with("dev.toml:2: fixture `/abs/x.trace` must be"));
        assert!(entry("../x.trace", "r", "w").starts_with("dev.toml:2: fixture `../x.trace` must be"));
        assert!(entry("a.trace", " ", "w").starts_with("dev.toml:4: `rule` is empty"));
        assert!(entry("a.trace", "r", "").starts_with("dev.toml:5: `reason` is empty"));
    }

    #[test]
    fn duplicates_are_refused() {
        let entry = |fixture: &str, profile: &str| {
            format!("[[deviation]]\nfixture = \"{fixture}\"\nprofile = \"{profile}\"\nrule = \"r\"\nreason = \"w\"\n")
        };
        let e = err(&(entry("fixtures/a.trace", "spec") + &entry("./fixtures//a.trace", "spec")));
        assert_eq!(
            e,
            "dev.toml:7: a second entry for `./fixtures//a.trace` under profile spec (the first is at line 2)"
        );
        // The same fixture under the other profile is another entry.
        let d = Deviations::parse(&(entry("fixtures/a.trace", "spec") + &entry("fixtures/a.trace", "rabbitmq")), "d")
            .unwrap();
        assert_eq!(d.entries().len(), 2);
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("amqpc-deviations-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broker.toml");
        std::fs::write(&path, "broker = \"b\"\nwhat = 1\n").unwrap();
        let e = Deviations::load(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:2: unknown field `what`", path.display())), "{e}");
        std::fs::write(&path, FILE).unwrap();
        let d = Deviations::load(&path).unwrap();
        assert_eq!(d.entries().len(), 2);
        assert_eq!(d.source(), path.display().to_string());
        let e = Deviations::load(&dir.join("missing.toml")).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: cannot read: ", dir.join("missing.toml").display())), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn find_matches_whole_component_suffixes() {
        let d = file();
        let spec = ProfileName::Spec;
        let name = "queue-delete-missing-spec.trace";
        for hit in [
            format!("fixtures/spec/{name}"),
            format!("./fixtures/spec/{name}"),
            format!("/work/main/fixtures/spec/{name}"),
            format!("../main/fixtures/spec/{name}"),
            format!("fixtures/./spec//{name}"),
        ] {
            assert_eq!(d.find(&hit, spec).map(|e| e.line), Some(5), "{hit}");
        }
        for miss in [
            format!("xfixtures/spec/{name}"),
            format!("/work/xfixtures/spec/{name}"),
            format!("spec/{name}"),
            name.to_string(),
            format!("fixtures/spec/x{name}"),
            format!("fixtures/spec/{name}.bak"),
            format!("fixtures/seed/{name}"),
            format!("fixtures/spec/{name}/more"),
        ] {
            assert!(d.find(&miss, spec).is_none(), "{miss}");
        }
        // The profile must match too.
        assert!(d.find(&format!("fixtures/spec/{name}"), ProfileName::Rabbitmq).is_none());
        // An entry written with `./` matches a plain path.
        assert_eq!(d.find("fixtures/spec/other.trace", ProfileName::Rabbitmq).map(|e| e.line), Some(11));
    }

    #[test]
    fn the_longest_matching_entry_wins() {
        let entry = |fixture: &str, rule: &str| {
            format!("[[deviation]]\nfixture = \"{fixture}\"\nprofile = \"spec\"\nrule = \"{rule}\"\nreason = \"w\"\n")
        };
        let d = Deviations::parse(&(entry("x.trace", "short") + &entry("spec/x.trace", "long")), "d").unwrap();
        assert_eq!(d.find("fixtures/spec/x.trace", ProfileName::Spec).unwrap().rule, "long");
        assert_eq!(d.find("fixtures/seed/x.trace", ProfileName::Spec).unwrap().rule, "short");
    }

    #[test]
    fn apply_turns_fail_into_known_and_pass_into_stale() {
        let d = file();
        let f = "./fixtures/spec/queue-delete-missing-spec.trace";
        let spec = ProfileName::Spec;
        assert_eq!(
            d.apply(spec, f, fail()),
            Status::Known {
                seen: Box::new(fail()),
                rule: "queue delete queue queue-known".into(),
                reason: "RabbitMQ answers delete-ok for a queue that does not exist".into(),
            }
        );
        assert_eq!(d.apply(spec, f, Status::Pass), Status::Stale { rule: "queue delete queue queue-known".into() });
        let skip = Status::Skip { reason: "restart".into() };
        assert_eq!(d.apply(spec, f, skip.clone()), skip);
        // An intermittent entry: a pass is known too.
        let flaky = Deviations::parse(
            "[[deviation]]\nfixture = \"fixtures/spec/x.trace\"\nprofile = \"spec\"\nrule = \"r\"\nreason = \"w\"\nintermittent = true\n",
            "d.toml",
        )
        .unwrap();
        let passed = flaky.apply(spec, "fixtures/spec/x.trace", Status::Pass);
        assert!(matches!(&passed, Status::Known { seen, .. } if **seen == Status::Pass));
        // A departure from a recommendation that shows only sometimes: known both ways.
        let departs =
            Status::Departs { failure: Failure::diverged(4, "c1.1 queue.purge q", &[], &[]), rule: "r".into() };
        let known = flaky.apply(spec, "fixtures/spec/x.trace", departs.clone());
        assert!(matches!(&known, Status::Known { seen, .. } if **seen == departs));
        assert_eq!(passed.line(), None);
        assert_eq!(passed.detail().as_deref(), Some("passed this time: the deviation shows only some of the time"));
        assert_eq!(flaky.apply(spec, "fixtures/spec/x.trace", fail()).line(), Some(9));
        // An error (a method the broker never answers, met while cleaning up) is known too,
        // at no line of the trace.
        let error = Status::Error { problems: vec![Problem::Cleanup("cleanup: no answer".into())], notes: Vec::new() };
        let known = d.apply(spec, f, error.clone());
        assert!(matches!(&known, Status::Known { seen, .. } if **seen == error));
        assert_eq!((known.line(), known.detail().as_deref()), (None, Some("cleanup: no answer")));
        assert_eq!(d.apply(spec, "fixtures/spec/unlisted.trace", error.clone()), error);
        // Under the other profile, or for another trace, nothing changes.
        assert_eq!(d.apply(ProfileName::Rabbitmq, f, fail()), fail());
        assert_eq!(d.apply(spec, "fixtures/spec/unlisted.trace", Status::Pass), Status::Pass);
        assert_eq!(Deviations::none().apply(spec, f, fail()), fail());
    }

    #[test]
    fn check_cites_reports_missing_fixtures_and_rules() {
        let d = file();
        let load = |f: &str| match f {
            "fixtures/spec/queue-delete-missing-spec.trace" => Some(vec!["queue delete queue queue-known".to_string()]),
            "./fixtures/spec/other.trace" => Some(vec!["basic 9".to_string(), "errata 7".to_string()]),
            _ => None,
        };
        assert_eq!(
            texts(d.check_cites(load)),
            ["deviations/rabbitmq.toml:11: fixture `./fixtures/spec/other.trace` does not cite `basic 10` \
              (its cite: lines are `basic 9`, `errata 7`)"]
        );
        assert_eq!(
            texts(d.check_cites(|_| None)),
            [
                "deviations/rabbitmq.toml:5: fixture `fixtures/spec/queue-delete-missing-spec.trace` does not exist",
                "deviations/rabbitmq.toml:11: fixture `./fixtures/spec/other.trace` does not exist",
            ]
        );
        assert!(texts(d.check_cites(|_| Some(vec![]))).iter().all(|m| m.ends_with("(its cite: lines are none)")));
        assert_eq!(d.check_cites(|_| Some(vec!["queue delete queue queue-known".into(), "basic 10".into()])).len(), 0);
    }

    #[test]
    fn check_fixtures_reads_the_traces() {
        let root = std::env::temp_dir().join(format!("amqpc-deviations-fx-{}", std::process::id()));
        std::fs::create_dir_all(root.join("fixtures/spec")).unwrap();
        let write = |name: &str, text: &str| std::fs::write(root.join("fixtures/spec").join(name), text).unwrap();
        write("good.trace", "title: t\ncite: basic 10\n\nc1 connection.open\n");
        write("uncited.trace", "cite: basic 9\n\nc1 connection.open\n");
        write("other-profile.trace", "cite: basic 10\nprofile: rabbitmq\n\nc1 connection.open\n");
        write("broken.trace", "c1 nonsense\n");
        let entry = |fixture: &str| {
            format!("[[deviation]]\nfixture = \"fixtures/spec/{fixture}\"\nprofile = \"spec\"\nrule = \"basic 10\"\nreason = \"w\"\n")
        };
        let text: String =
            ["good.trace", "uncited.trace", "other-profile.trace", "broken.trace", "missing.trace"].map(entry).concat();
        let d = Deviations::parse(&text, "d.toml").unwrap();
        let problems = texts(d.check_fixtures(&root));
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with("d.toml:7: fixture `fixtures/spec/uncited.trace` does not cite `basic 10`"));
        assert!(
            problems[1].starts_with("d.toml:12: fixture `fixtures/spec/other-profile.trace` has `profile: rabbitmq`")
        );
        assert!(problems[2].starts_with("d.toml:17: fixture `fixtures/spec/broken.trace` does not parse: "));
        assert_eq!(problems[3], "d.toml:22: fixture `fixtures/spec/missing.trace` does not exist");

        // `see`: the regression must exist, and the rule may be one it cites.
        write("regression.trace", "cite: queue delete 01\n\nc1 connection.open\n");
        let see = |rule: &str, see: &str| {
            format!(
                "[[deviation]]\nfixture = \"fixtures/spec/good.trace\"\nprofile = \"spec\"\nrule = \"{rule}\"\nreason = \"w\"\nsee = \"fixtures/spec/{see}\"\n"
            )
        };
        let ok = Deviations::parse(&see("queue delete 01", "regression.trace"), "d.toml").unwrap();
        assert_eq!(ok.entries()[0].see.as_deref(), Some("fixtures/spec/regression.trace"));
        assert_eq!(texts(ok.check_fixtures(&root)), Vec::<String>::new());
        let own = Deviations::parse(&see("basic 10", "regression.trace"), "d.toml").unwrap();
        assert_eq!(texts(own.check_fixtures(&root)), Vec::<String>::new());
        let neither = Deviations::parse(&see("basic 11", "regression.trace"), "d.toml").unwrap();
        assert_eq!(
            texts(neither.check_fixtures(&root)),
            ["d.toml:2: neither `fixtures/spec/good.trace` nor `fixtures/spec/regression.trace` cites `basic 11` \
              (their cite: lines are `basic 10`, `queue delete 01`)"]
        );
        let gone = Deviations::parse(&see("basic 10", "gone.trace"), "d.toml").unwrap();
        assert_eq!(
            texts(gone.check_fixtures(&root)),
            ["d.toml:2: `see` fixture `fixtures/spec/gone.trace` does not exist"]
        );
        assert!(
            Deviations::parse(&see("basic 10", "../x.trace").replace("fixtures/spec/../", "../"), "d.toml").is_err()
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
