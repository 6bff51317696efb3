//! The rule catalogue: every `<rule>` of AMQP 0-9-1 that bears on a broker, what it says in our
//! words, and where the project checks it.
//!
//! Three files of the repository hold it:
//!
//! - `spec/amqp0-9-1.names`: the specification's names, one fact per line (`class basic`,
//!   `method basic ack`, `field basic ack multiple`, `domain delivery-tag`, `rule basic ack
//!   multiple exists`, `errata 14`), generated from the XML by `spec/names.py`. A rule's id is
//!   its class, method and field (or domain) names and its own name joined by spaces, as a
//!   fixture's `cite:` line writes it.
//! - `spec/rules.toml`: one `[[rule]]` per rule of the names file, with `id`, `statement` (one
//!   line, our reading) and, for a rule the suite does not check, `out_of_scope` (why).
//! - the model's source (`model/src`), whose comments name the rules the model implements, in
//!   backticks (`` `queue delete if-unused in-use` ``).
//! - `spec/readings/*.toml`: the audit of every rule (`[[reading]]`: its force, every outcome the
//!   specification allows a server, the text that allows it, what the `spec` profile does and
//!   whether that is exactly what the text allows, the fixtures that test it, what to change)
//!   and of every profile switch (`[[switch]]`).
//!
//! A rule in scope is *covered* when a fixture cites it; one not covered yet is a gap
//! (`amqp-conformance coverage` lists them). [`Catalogue::problems`] lists what is inconsistent:
//! a rule without an entry or an entry without a rule, a fixture citing what does not exist, a
//! covered rule the model's source never names.
//!
//! One file for one concern, the rule catalogue: reading it, checking it against the
//! specification's names, the fixtures and the model's source (about 100 of its lines are tests).

use crate::input::InputError;
use crate::trace::Trace;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the catalogue's files are, relative to the repository root.
pub const NAMES_FILE: &str = "spec/amqp0-9-1.names";
/// See [`NAMES_FILE`].
pub const RULES_FILE: &str = "spec/rules.toml";
/// RabbitMQ's extensions that fixtures cite as `RabbitMQ ...`.
pub const EXTENSIONS_FILE: &str = "spec/extensions.toml";
/// The model's source, searched for rule ids in backticks.
pub const MODEL_SOURCE: &str = "model/src";
/// The reference broker's source, which names the rules checked by its tests (`tested_by`).
pub const BROKER_SOURCE: &str = "broker/src";
/// The readings of the rules and switches, one file per group of classes.
pub const READINGS_DIR: &str = "spec/readings";
/// The profile switches, one `pub` field each of `Profile`.
pub const PROFILE_SOURCE: &str = "model/src/profile.rs";

/// The force a reading may give a rule.
pub const FORCES: [&str; 6] = ["MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY", "none"];
/// How the `spec` profile compares with what the text allows.
/// `narrower-on-purpose`: fewer outcomes than the text, where what is left out could not be told
/// apart by a trace from what the text forbids (the reading's `fix` says why).
pub const STATUSES: [&str; 6] = ["exact", "narrower", "narrower-on-purpose", "wider", "wrong", "out-of-scope"];

/// One rule's reading (`[[reading]]` of a file under `spec/readings/`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reading {
    /// The rule's id.
    pub id: String,
    /// MUST, MUST NOT, SHOULD, SHOULD NOT, MAY or none (a definition).
    pub force: String,
    /// Every outcome the specification allows a server where the rule applies.
    pub allows: Vec<String>,
    /// The text that allows them (rules, doc comments, errata sections).
    pub text: String,
    /// What the model does under `spec`, and where (absent for a rule out of scope).
    pub model_spec: Option<String>,
    /// `exact`, `narrower`, `narrower-on-purpose`, `wider`, `wrong` or `out-of-scope`.
    pub status: String,
    /// The fixtures citing the rule (checked against the cites).
    pub fixtures: Vec<String>,
    /// Whether one of them fails when the rule is broken.
    pub tests_it: bool,
    /// What to change, when the profile is not exact or no fixture tests the rule.
    pub fix: Option<String>,
}

/// One profile switch's reading (`[[switch]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchReading {
    /// The switch, as `Profile` names it.
    pub name: String,
    /// Its value under `spec`.
    pub spec_value: String,
    /// The text it follows, and whether that reading is the only one.
    pub text: String,
    /// `exact`, `narrower`, `narrower-on-purpose`, `wider` or `wrong`.
    pub status: String,
    /// What to change, when not exact.
    pub fix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadingsFile {
    #[serde(default)]
    reading: Vec<Reading>,
    #[serde(default)]
    switch: Vec<SwitchReading>,
}

/// One entry of `spec/rules.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The rule's id (class, method, field or domain, and rule name, joined by spaces).
    pub id: String,
    /// What the rule says, in one line.
    pub statement: String,
    /// Why the suite does not check the rule (absent: it is in scope).
    pub out_of_scope: Option<String>,
    /// For a rule in scope that no trace can express (the model has one virtual host): the test
    /// of the reference broker that checks it, as `FILE TEST` (`conformance/tests/pika.rs
    /// virtual_hosts_and_permissions_are_as_on_rabbitmq`). It covers the rule as a fixture would;
    /// the reference broker's source ([`BROKER_SOURCE`]) must then name the rule.
    #[serde(default)]
    pub tested_by: Option<String>,
}

impl Rule {
    /// The file and test function of [`Rule::tested_by`].
    pub fn test(&self) -> Option<(&str, &str)> {
        self.tested_by.as_deref()?.split_once(' ')
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rule: Vec<Rule>,
}

/// One entry of `spec/extensions.toml`: a RabbitMQ behaviour beyond the specification.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extension {
    /// What fixtures cite (`RabbitMQ ttl`).
    pub id: String,
    /// The page of RabbitMQ's documentation that describes it.
    pub page: String,
    /// What the model does, in one line.
    pub statement: String,
    /// Where the model implements it.
    pub model: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtensionsFile {
    extension: Vec<Extension>,
}

/// The specification's names (`spec/amqp0-9-1.names`).
#[derive(Clone, Debug, Default)]
pub struct Names {
    /// Every rule id, in document order, with what it belongs to: its class, or `domains`.
    pub rules: Vec<(String, String)>,
    /// Classes, methods, fields and domains, as a cite names them (`basic ack multiple`).
    pub parts: BTreeSet<String>,
    /// The classes.
    pub classes: BTreeSet<String>,
    /// The errata's section numbers.
    pub errata: BTreeSet<u32>,
}

impl Names {
    /// Parse the names file's text (`file` is for messages).
    pub fn parse(text: &str, file: &str) -> Result<Names, InputError> {
        let mut names = Names::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (kind, rest) = line.split_once(' ').ok_or_else(|| InputError::at(file, n + 1, format!("`{line}`")))?;
            match kind {
                "class" | "method" | "field" | "domain" => {
                    if kind == "class" {
                        names.classes.insert(rest.to_string());
                    }
                    names.parts.insert(rest.to_string());
                }
                "rule" => {
                    let first = rest.split(' ').next().unwrap_or_default();
                    let owner = if names.classes.contains(first) { first } else { "domains" };
                    names.rules.push((rest.to_string(), owner.to_string()));
                }
                "errata" => {
                    let section = rest
                        .parse()
                        .map_err(|_| InputError::at(file, n + 1, format!("bad errata section `{rest}`")))?;
                    names.errata.insert(section);
                }
                _ => return Err(InputError::at(file, n + 1, format!("unknown kind `{kind}`"))),
            }
        }
        Ok(names)
    }

    /// Whether `id` is a rule's id.
    pub fn is_rule(&self, id: &str) -> bool {
        self.rules.iter().any(|(r, _)| r == id)
    }
}

/// The fields of `pub struct Profile` in `profile.rs` with their doc comments, joined.
pub fn profile_switches(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut doc = Vec::new();
    for line in source.lines() {
        let t = line.trim();
        if t.starts_with("pub struct Profile") {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        if t == "}" {
            break;
        }
        if let Some(d) = t.strip_prefix("///") {
            doc.push(d.trim().to_string());
        } else if let Some(field) = t.strip_prefix("pub ").and_then(|f| f.split_once(':')).map(|(f, _)| f.trim()) {
            if field != "name" {
                out.push((field.to_string(), doc.join(" ")));
            }
            doc.clear();
        } else if !t.starts_with('#') {
            doc.clear();
        }
    }
    out
}

/// A place in the model's source that names a rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    /// The file, relative to the repository root (`model/src/queue.rs`).
    pub file: String,
    /// The line (1-based) where the rule's id begins.
    pub line: usize,
    /// The comment that names it, joined into one line.
    pub comment: String,
}

/// The whole catalogue with what covers each rule.
#[derive(Clone, Debug)]
pub struct Catalogue {
    /// The entries, in the rules file's order.
    pub rules: Vec<Rule>,
    /// RabbitMQ's extensions, in their file's order.
    pub extensions: Vec<Extension>,
    /// The specification's names.
    pub names: Names,
    /// The fixtures (paths relative to the root) citing each id, rule or not.
    pub cited_by: BTreeMap<String, Vec<String>>,
    /// Where the model's source names each rule.
    pub model: BTreeMap<String, Vec<Place>>,
    /// Where the reference broker's source names each rule.
    pub broker: BTreeMap<String, Vec<Place>>,
    /// The rules whose `tested_by` names a test that is there.
    pub tests_found: BTreeSet<String>,
    /// Cites that name nothing: (fixture, cite).
    pub bad_cites: Vec<(String, String)>,
    /// The fixtures with a `recommends:` line: (fixture, rule).
    pub recommending: Vec<(String, String)>,
    /// The readings, with the file each is in (relative to the root).
    pub readings: Vec<(String, Reading)>,
    /// The switch readings, with their files.
    pub switches: Vec<(String, SwitchReading)>,
    /// The profile's switches (the `pub` fields of `Profile` but its name).
    pub profile_switches: Vec<String>,
}

/// Shares of one class (or of everything).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Share {
    /// Rules in scope.
    pub in_scope: usize,
    /// Rules out of scope.
    pub out_of_scope: usize,
    /// In-scope rules a fixture cites.
    pub covered: usize,
}

impl Share {
    /// The covered share of the in-scope rules, in percent.
    pub fn percent(&self) -> f64 {
        if self.in_scope == 0 {
            100.0
        } else {
            100.0 * self.covered as f64 / self.in_scope as f64
        }
    }
}

impl Catalogue {
    /// Load the catalogue from the repository at `root`, with `fixtures` (trace path relative to
    /// the root, and the trace) as what cites rules.
    pub fn load(root: &Path, fixtures: &[(String, Trace)]) -> Result<Catalogue, InputError> {
        let read = |rel: &str| std::fs::read_to_string(root.join(rel)).map_err(|e| InputError::file(rel, e));
        let names = Names::parse(&read(NAMES_FILE)?, NAMES_FILE)?;
        let file: RulesFile = toml::from_str(&read(RULES_FILE)?).map_err(|e| InputError::file(RULES_FILE, e))?;
        let extensions: ExtensionsFile =
            toml::from_str(&read(EXTENSIONS_FILE)?).map_err(|e| InputError::file(EXTENSIONS_FILE, e))?;
        let extension_ids: BTreeSet<&str> = extensions.extension.iter().map(|e| e.id.as_str()).collect();
        let mut cited_by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut bad_cites = Vec::new();
        let recommending =
            fixtures.iter().filter_map(|(path, t)| Some((path.clone(), t.recommends.clone()?))).collect();
        for (path, trace) in fixtures {
            for cite in &trace.cites {
                if cite_exists(&names, cite) || extension_ids.contains(cite.as_str()) {
                    cited_by.entry(cite.clone()).or_default().push(path.clone());
                } else {
                    bad_cites.push((path.clone(), cite.clone()));
                }
            }
        }
        let ids: Vec<&str> = file.rule.iter().map(|r| r.id.as_str()).collect();
        let model = model_places(&root.join(MODEL_SOURCE), root, &ids)?;
        let broker = model_places(&root.join(BROKER_SOURCE), root, &ids)?;
        let tests_found = file
            .rule
            .iter()
            .filter(|r| {
                r.test().is_some_and(|(file, test)| {
                    std::fs::read_to_string(root.join(file)).is_ok_and(|t| t.contains(&format!("fn {test}(")))
                })
            })
            .map(|r| r.id.clone())
            .collect();
        let (mut readings, mut switches) = (Vec::new(), Vec::new());
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(READINGS_DIR))
            .map_err(|e| InputError::file(READINGS_DIR, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let rel = path.strip_prefix(root).unwrap_or(&path).display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| InputError::file(&rel, e))?;
            let f: ReadingsFile = toml::from_str(&text).map_err(|e| InputError::file(&rel, e))?;
            readings.extend(f.reading.into_iter().map(|r| (rel.clone(), r)));
            switches.extend(f.switch.into_iter().map(|s| (rel.clone(), s)));
        }
        let profile_switches = profile_switches(&read(PROFILE_SOURCE)?).into_iter().map(|(n, _)| n).collect();
        Ok(Catalogue {
            rules: file.rule,
            extensions: extensions.extension,
            names,
            cited_by,
            model,
            broker,
            tests_found,
            bad_cites,
            recommending,
            readings,
            switches,
            profile_switches,
        })
    }

    /// The reading of rule `id`.
    pub fn reading(&self, id: &str) -> Option<&Reading> {
        self.readings.iter().find(|(_, r)| r.id == id).map(|(_, r)| r)
    }

    /// What is wrong with the readings: a rule without one (or with two), a reading of no rule,
    /// a force or status not in [`FORCES`] and [`STATUSES`], a status that disagrees with the
    /// catalogue's `out_of_scope`, fixtures that are not the rule's cites, a reading that is not
    /// exact (or whose fixtures do not test the rule) without a fix; a switch of the profile
    /// without a reading, or a reading of no switch.
    fn reading_problems(&self, out: &mut Vec<String>) {
        let mut read: BTreeMap<&str, &str> = BTreeMap::new();
        for (file, r) in &self.readings {
            let at = |what: String| format!("{file}: `{}`: {what}", r.id);
            if let Some(other) = read.insert(r.id.as_str(), file.as_str()) {
                out.push(at(format!("read twice (also in {other})")));
            }
            let Some(rule) = self.rule(&r.id) else {
                out.push(at("is not a rule of the catalogue".into()));
                continue;
            };
            if !FORCES.contains(&r.force.as_str()) {
                out.push(at(format!("force `{}` is none of {FORCES:?}", r.force)));
            }
            if !STATUSES.contains(&r.status.as_str()) {
                out.push(at(format!("status `{}` is none of {STATUSES:?}", r.status)));
            }
            if (r.status == "out-of-scope") != rule.out_of_scope.is_some() {
                out.push(at(format!("status `{}` disagrees with {RULES_FILE}'s out_of_scope", r.status)));
            }
            if r.allows.is_empty() || r.text.trim().is_empty() {
                out.push(at("says nothing of what the text allows".into()));
            }
            let mut cited = self.fixtures(&r.id).to_vec();
            let mut listed = r.fixtures.clone();
            cited.sort();
            listed.sort();
            if cited != listed {
                out.push(at(format!("lists fixtures {listed:?}, but the fixtures citing it are {cited:?}")));
            }
            let in_scope = rule.out_of_scope.is_none();
            if in_scope && (r.status != "exact" || !r.tests_it) && r.fix.as_deref().is_none_or(|f| f.trim().is_empty())
            {
                out.push(at("is not exact, or no fixture tests it, but says no fix".into()));
            }
        }
        for rule in &self.rules {
            if !read.contains_key(rule.id.as_str()) {
                out.push(format!("{READINGS_DIR}: rule `{}` has no reading", rule.id));
            }
        }
        for (file, s) in &self.switches {
            if !self.profile_switches.contains(&s.name) {
                out.push(format!("{file}: switch `{}` is not a switch of {PROFILE_SOURCE}", s.name));
            }
            if !STATUSES.contains(&s.status.as_str()) || s.status == "out-of-scope" {
                out.push(format!("{file}: switch `{}`: status `{}`", s.name, s.status));
            }
        }
        for name in &self.profile_switches {
            if !self.switches.iter().any(|(_, s)| &s.name == name) {
                out.push(format!("{READINGS_DIR}: switch `{name}` of {PROFILE_SOURCE} has no reading"));
            }
        }
    }

    /// The entry of rule `id`.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// What rule `id` belongs to: its class, or `domains`.
    pub fn owner(&self, id: &str) -> &str {
        self.names.rules.iter().find(|(r, _)| r == id).map_or("?", |(_, o)| o.as_str())
    }

    /// The fixtures citing `id`.
    pub fn fixtures(&self, id: &str) -> &[String] {
        self.cited_by.get(id).map_or(&[], Vec::as_slice)
    }

    /// Whether in-scope rule `id` is covered: a fixture cites it, or the reference broker's test
    /// its `tested_by` names is there.
    pub fn covered(&self, id: &str) -> bool {
        !self.fixtures(id).is_empty() || self.tests_found.contains(id)
    }

    /// The classes (and `domains`) in the names file's order.
    pub fn owners(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, owner) in &self.names.rules {
            if !out.contains(owner) {
                out.push(owner.clone());
            }
        }
        out
    }

    /// The shares of `owner`'s rules (all rules with `None`).
    pub fn share(&self, owner: Option<&str>) -> Share {
        let mut share = Share::default();
        for rule in self.rules.iter().filter(|r| owner.is_none_or(|o| self.owner(&r.id) == o)) {
            if rule.out_of_scope.is_some() {
                share.out_of_scope += 1;
            } else {
                share.in_scope += 1;
                share.covered += usize::from(self.covered(&rule.id));
            }
        }
        share
    }

    /// What `amqp-conformance coverage` prints: per class (and for all), the rules in scope, covered
    /// and out of scope, then the in-scope rules no fixture covers yet.
    pub fn coverage_report(&self) -> String {
        let cat = self;
        let mut out = format!("{:<12} {:>8} {:>8} {:>8} {:>8}\n", "class", "in scope", "covered", "share", "out");
        let mut row = |name: &str, s: &Share| {
            let share = if s.in_scope == 0 { "-".to_string() } else { format!("{:.1}%", s.percent()) };
            let _ = writeln!(out, "{name:<12} {:>8} {:>8} {share:>8} {:>8}", s.in_scope, s.covered, s.out_of_scope);
        };
        for owner in cat.owners() {
            row(&owner, &cat.share(Some(&owner)));
        }
        row("all", &cat.share(None));
        let gaps: Vec<&str> = cat
            .rules
            .iter()
            .filter(|r| r.out_of_scope.is_none() && !cat.covered(&r.id))
            .map(|r| r.id.as_str())
            .collect();
        out.push_str("\nRabbitMQ extensions (spec/extensions.toml), fixtures citing each:\n");
        for x in &cat.extensions {
            let _ = writeln!(out, "  {:<48} {:>3}  {}", x.id, cat.fixtures(&x.id).len(), x.page);
        }
        if !gaps.is_empty() {
            out.push_str("\nin scope, not covered by a fixture yet:\n");
            for id in gaps {
                let model = if cat.model.contains_key(id) { "" } else { " (nor implemented by the model)" };
                let _ = writeln!(out, "  {id}{model}");
            }
        }
        out
    }

    /// Everything inconsistent, one message each (empty when the catalogue is sound).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for rule in &self.rules {
            if !seen.insert(rule.id.as_str()) {
                out.push(format!("{RULES_FILE}: rule `{}` has two entries", rule.id));
            }
            if !self.names.is_rule(&rule.id) {
                out.push(format!("{RULES_FILE}: `{}` is not a rule of the specification ({NAMES_FILE})", rule.id));
            }
            if rule.statement.trim().is_empty() || rule.statement.contains('\n') {
                out.push(format!("{RULES_FILE}: `{}`: the statement must be one non-empty line", rule.id));
            }
            if let Some(tested_by) = &rule.tested_by {
                let at = |what: String| format!("{RULES_FILE}: `{}`: tested_by `{tested_by}`: {what}", rule.id);
                if rule.out_of_scope.is_some() {
                    out.push(at("a rule out of scope is tested by nothing".into()));
                } else if rule.test().is_none() {
                    out.push(at("is not FILE TEST".into()));
                } else if !self.tests_found.contains(&rule.id) {
                    out.push(at("no such test function in that file".into()));
                } else if !self.broker.contains_key(&rule.id) {
                    out.push(at(format!("no comment in {BROKER_SOURCE} names the rule in backticks")));
                }
            }
            match &rule.out_of_scope {
                Some(reason) if reason.trim().is_empty() => {
                    out.push(format!("{RULES_FILE}: `{}`: out_of_scope needs a reason", rule.id));
                }
                Some(_) => {}
                // A fixture holds on the model, so the model implements what it covers.
                None if !self.fixtures(&rule.id).is_empty() && !self.model.contains_key(&rule.id) => out.push(format!(
                    "{RULES_FILE}: `{}` is covered by {} but no comment in {MODEL_SOURCE} names it in backticks",
                    rule.id,
                    self.fixtures(&rule.id).join(", ")
                )),
                None => {}
            }
        }
        for (id, _) in &self.names.rules {
            if !seen.contains(id.as_str()) {
                out.push(format!("{RULES_FILE}: rule `{id}` of the specification has no entry"));
            }
        }
        self.reading_problems(&mut out);
        let mut ids = BTreeSet::new();
        for x in &self.extensions {
            if !ids.insert(x.id.as_str()) {
                out.push(format!("{EXTENSIONS_FILE}: extension `{}` has two entries", x.id));
            }
            if !x.id.starts_with("RabbitMQ ") || !x.page.starts_with("https://www.rabbitmq.com/") {
                out.push(format!(
                    "{EXTENSIONS_FILE}: `{}` must be `RabbitMQ ...` with a page of www.rabbitmq.com",
                    x.id
                ));
            }
            if x.statement.trim().is_empty() || x.statement.contains('\n') {
                out.push(format!("{EXTENSIONS_FILE}: `{}`: the statement must be one non-empty line", x.id));
            }
            if !self.covered(&x.id) {
                out.push(format!("{EXTENSIONS_FILE}: `{}` is cited by no fixture", x.id));
            }
        }
        for (fixture, cite) in &self.bad_cites {
            out.push(format!(
                "{fixture}: `cite: {cite}` names no rule, class, method, field or domain of the specification \
                 ({NAMES_FILE}), nor an errata section (`errata N`), a tutorial section (`tutorial 3.2`) or a \
                 RabbitMQ extension of {EXTENSIONS_FILE} (`RabbitMQ ...`)"
            ));
        }
        // A departure is only excused where the rule's force leaves the server a choice.
        for (fixture, rule) in &self.recommending {
            match self.reading(rule).map(|r| r.force.as_str()) {
                Some("SHOULD") => {}
                force => out.push(format!(
                    "{fixture}: `recommends: {rule}` names a rule whose reading's force is {}, not SHOULD: a broker \
                     that fails this trace would be excused where the specification requires",
                    force.map_or_else(|| "unrecorded".to_string(), |f| format!("`{f}`"))
                )),
            }
        }
        out
    }
}

/// Whether a fixture's cite names something that exists (see [`Catalogue::problems`]).
fn cite_exists(names: &Names, cite: &str) -> bool {
    if names.is_rule(cite) || names.parts.contains(cite) {
        return true;
    }
    if let Some(n) = cite.strip_prefix("errata ") {
        return n.parse().is_ok_and(|n: u32| names.errata.contains(&n));
    }
    if let Some(section) = cite.strip_prefix("tutorial ") {
        return !section.is_empty()
            && section.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    }
    false
}

/// Every `.rs` file under `dir`, sorted.
pub(crate) fn rust_files(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| InputError::file(d.display(), e))? {
            let path = entry.map_err(|e| InputError::file(d.display(), e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The places in the Rust files under `dir` whose comments name one of `ids` in backticks. A
/// comment's consecutive lines (`//`, `///`, `//!`) are joined with single spaces, so an id may
/// wrap at a space.
pub fn model_places(dir: &Path, root: &Path, ids: &[&str]) -> Result<BTreeMap<String, Vec<Place>>, InputError> {
    let mut out: BTreeMap<String, Vec<Place>> = BTreeMap::new();
    for path in rust_files(dir)? {
        let text = std::fs::read_to_string(&path).map_err(|e| InputError::file(path.display(), e))?;
        let file = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        for (joined, starts) in comments(&text) {
            for id in ids {
                let quoted = format!("`{id}`");
                for (at, _) in joined.match_indices(&quoted) {
                    // The line of the id's first character: the last joined line starting at or
                    // before it.
                    let line = starts.iter().take_while(|(offset, _)| *offset <= at + 1).last().map_or(0, |(_, l)| *l);
                    out.entry(id.to_string()).or_default().push(Place {
                        file: file.clone(),
                        line,
                        comment: joined.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The comments of a Rust file: each run of comment lines joined into one line, with the offset
/// in it where each source line starts and that line's number.
fn comments(text: &str) -> Vec<(String, Vec<(usize, usize)>)> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<(usize, usize)>)> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let body = ["//!", "///", "//"].iter().find_map(|p| trimmed.strip_prefix(p)).map(str::trim);
        match (body, current.as_mut()) {
            (Some(body), Some((joined, starts))) => {
                joined.push(' ');
                starts.push((joined.len(), n + 1));
                joined.push_str(body);
            }
            (Some(body), None) => current = Some((body.to_string(), vec![(0, n + 1)])),
            (None, _) => out.extend(current.take()),
        }
    }
    out.extend(current);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &str = "# test\nclass basic\nmethod basic ack\nfield basic ack multiple\nrule basic 01\n\
                         rule basic ack multiple exists\ndomain delivery-tag\nrule delivery-tag non-zero\nerrata 14\n";

    fn reading(id: &str, status: &str) -> Reading {
        Reading {
            id: id.into(),
            force: "MUST".into(),
            allows: vec!["refuses with 406".into()],
            text: "the rule".into(),
            model_spec: None,
            status: status.into(),
            fixtures: vec![],
            tests_it: true,
            fix: None,
        }
    }

    fn with_readings(readings: Vec<Reading>) -> Catalogue {
        let rule = |id: &str| Rule { id: id.into(), statement: "s".into(), out_of_scope: None, tested_by: None };
        Catalogue {
            rules: vec![rule("basic 01"), rule("basic ack multiple exists")],
            extensions: vec![],
            names: Names::parse(NAMES, "n").unwrap(),
            cited_by: BTreeMap::from([("basic 01".to_string(), vec!["f.trace".to_string()])]),
            model: BTreeMap::new(),
            broker: BTreeMap::new(),
            tests_found: BTreeSet::new(),
            bad_cites: vec![],
            recommending: vec![],
            readings: readings.into_iter().map(|r| ("r.toml".to_string(), r)).collect(),
            switches: vec![],
            profile_switches: vec!["qos_scope".into()],
        }
    }

    /// A rule `tested_by` a reference broker test covers it only when the test is there, and the
    /// broker's source must name it; a rule out of scope is tested by nothing.
    #[test]
    fn a_rule_tested_by_the_broker_needs_the_test_and_the_source() {
        let mut catalogue = with_readings(vec![]);
        catalogue.rules[1].tested_by = Some("conformance/tests/pika.rs no_such_test".into());
        let tested = |c: &Catalogue| c.problems().into_iter().filter(|p| p.contains("tested_by")).collect::<Vec<_>>();
        assert!(!catalogue.covered("basic ack multiple exists"));
        assert_eq!(tested(&catalogue).len(), 1);
        assert!(tested(&catalogue)[0].contains("no such test function in that file"), "{:?}", tested(&catalogue));
        catalogue.tests_found.insert("basic ack multiple exists".into());
        assert!(catalogue.covered("basic ack multiple exists"));
        assert!(tested(&catalogue)[0].contains("no comment in broker/src names the rule"), "{:?}", tested(&catalogue));
        let place = Place { file: "broker/src/x.rs".into(), line: 1, comment: String::new() };
        catalogue.broker.insert("basic ack multiple exists".into(), vec![place]);
        assert!(tested(&catalogue).is_empty(), "{:?}", tested(&catalogue));
        catalogue.rules[1].out_of_scope = Some("why".into());
        assert!(tested(&catalogue)[0].contains("a rule out of scope is tested by nothing"));
    }

    /// A `recommends:` line excuses a failure, so it may only name a rule read as a SHOULD.
    #[test]
    fn recommends_needs_a_should() {
        let mut should = reading("basic 01", "exact");
        should.force = "SHOULD".into();
        let mut catalogue = with_readings(vec![should, reading("basic ack multiple exists", "exact")]);
        catalogue.recommending = vec![("a.trace".into(), "basic 01".into())];
        let recommends =
            |c: &Catalogue| c.problems().into_iter().filter(|p| p.contains("recommends")).collect::<Vec<_>>();
        assert!(recommends(&catalogue).is_empty(), "{:?}", recommends(&catalogue));
        catalogue.recommending.push(("b.trace".into(), "basic ack multiple exists".into()));
        catalogue.recommending.push(("c.trace".into(), "errata 14".into()));
        let found = recommends(&catalogue);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("b.trace: ") && found[0].contains("force is `MUST`"), "{found:?}");
        assert!(found[1].starts_with("c.trace: ") && found[1].contains("force is unrecorded"), "{found:?}");
    }

    #[test]
    fn every_rule_and_switch_needs_a_true_reading() {
        let mut good = reading("basic 01", "exact");
        good.fixtures = vec!["f.trace".into()];
        let mut problems = Vec::new();
        with_readings(vec![good.clone(), reading("basic ack multiple exists", "narrower")])
            .reading_problems(&mut problems);
        let expected = [
            "r.toml: `basic ack multiple exists`: is not exact, or no fixture tests it, but says no fix",
            "spec/readings: switch `qos_scope` of model/src/profile.rs has no reading",
        ];
        assert_eq!(problems, expected);
        let mut bad = good.clone();
        bad.force = "OUGHT".into();
        bad.fixtures = vec![];
        let mut problems = Vec::new();
        with_readings(vec![bad, good]).reading_problems(&mut problems);
        let text = problems.join("\n");
        assert!(text.contains("force `OUGHT` is none of"), "{text}");
        assert!(text.contains("lists fixtures [], but the fixtures citing it are [\"f.trace\"]"), "{text}");
        assert!(text.contains("read twice (also in r.toml)"), "{text}");
        assert!(text.contains("rule `basic ack multiple exists` has no reading"), "{text}");
    }

    #[test]
    fn names_sort_rules_by_class_and_domain() {
        let names = Names::parse(NAMES, "n").unwrap();
        assert_eq!(
            names.rules,
            [
                ("basic 01".to_string(), "basic".to_string()),
                ("basic ack multiple exists".into(), "basic".into()),
                ("delivery-tag non-zero".into(), "domains".into())
            ]
        );
        assert!(names.parts.contains("basic ack multiple"));
        assert_eq!(names.errata, BTreeSet::from([14]));
        assert!(Names::parse("rules x", "n").unwrap_err().to_string().contains("n:1: unknown kind `rules`"));
    }

    #[test]
    fn cites_must_name_something() {
        let names = Names::parse(NAMES, "n").unwrap();
        for good in ["basic 01", "basic ack", "basic ack multiple", "errata 14", "tutorial 3.2"] {
            assert!(cite_exists(&names, good), "{good}");
        }
        // RabbitMQ's extensions are names of spec/extensions.toml, looked up by `Catalogue::load`.
        for bad in [
            "basic 02",
            "basic nack",
            "errata 99",
            "errata x",
            "tutorial",
            "tutorial 3.",
            "RabbitMQ",
            "rabbitmq x",
            "RabbitMQ consumer prefetch",
        ] {
            assert!(!cite_exists(&names, bad), "{bad}");
        }
    }

    #[test]
    fn comments_join_lines_and_keep_line_numbers() {
        let text =
            "fn a() {}\n/// Refuses it (`basic ack\n/// multiple exists`): 406.\nfn b() {}\n// `basic 01` here\n";
        let found = comments(text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0, "Refuses it (`basic ack multiple exists`): 406.");
        let dir = std::env::temp_dir().join(format!("amqpc-catalogue-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/x.rs"), text).unwrap();
        let places =
            model_places(&dir.join("src"), &dir, &["basic ack multiple exists", "basic 01", "basic 02"]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(places["basic ack multiple exists"][0].line, 2);
        assert_eq!(places["basic ack multiple exists"][0].file, "src/x.rs");
        assert_eq!(places["basic 01"][0].line, 5);
        assert!(!places.contains_key("basic 02"));
    }
}
