//! What a trace is, once read: its header lines and its steps.

use amqp_model::{Command, Event, Name};

/// A parsed trace file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// `title:` - what the trace shows.
    pub title: Option<String>,
    /// `cite:` lines - the spec rules (by their names in the XML), errata sections or documents it
    /// exercises.
    pub cites: Vec<String>,
    /// `profile:` - when set, the trace is only meaningful under this profile.
    pub profile: Option<amqp_model::ProfileName>,
    /// `recommends:` - the rule (a SHOULD, cited on a `cite:` line) whose recommended behaviour
    /// the trace checks, and nothing else. Under the `spec` profile a broker that fails it
    /// departs from a recommendation, which the specification allows: the run reports it
    /// (`departs`), not as a failure of conformance.
    pub recommends: Option<String>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One line of a trace, with its line number (1-based) in the file it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Line number in the source (0 for steps made by a program).
    pub line: usize,
    /// What the line says.
    pub kind: StepKind,
    /// `pipelined COMMAND`: the client sends this command right after the previous one, before it
    /// reads anything the broker sent in between (only a command step directly after another).
    /// The two are judged as one step: a channel the first one made the broker close is still
    /// closing when the second arrives (`channel close stability`).
    pub pipelined: bool,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// A client command or environment event. Names beginning with `$` are variables bound by an
    /// earlier capture. `capture` binds the name the server generated (queue or consumer tag).
    Command {
        /// The command (names may be `$variables`).
        command: Command,
        /// `-> $var`: the variable that takes the server-generated name.
        capture: Option<Name>,
    },
    /// `wait`: let the broker finish what it may still do (deliveries); the runner waits its
    /// grace period.
    Wait,
    /// `expect EVENT [| EVENT ...]`: the preceding command's step must include this observation,
    /// or one of these where the specification allows several answers.
    Expect(Vec<Event>),
}

impl Trace {
    /// The commands of the trace, in order.
    pub fn commands(&self) -> impl Iterator<Item = &Command> {
        self.steps.iter().filter_map(|s| match &s.kind {
            StepKind::Command { command, .. } => Some(command),
            _ => None,
        })
    }
}
