//! The one error of what the runner reads besides traces and brokers: a deviations file, the
//! matrix's configuration, the rules catalogue, a directory of traces. Each names the file, and
//! the line when there is one, as an editor's jump-to-error reads it.

use std::fmt;

/// A file the runner cannot use: unreadable, malformed, or naming what is not there. Shown as
/// one line: `deviations/rabbitmq.toml:12: unknown field ...`, or without `:12` when no line is
/// at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// The file (or directory, or glob pattern), as given.
    pub file: String,
    /// The 1-based line at fault, if one is.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// Something wrong with `file` as a whole.
    pub fn file(file: impl fmt::Display, message: impl fmt::Display) -> InputError {
        InputError { file: file.to_string(), line: None, message: message.to_string() }
    }

    /// Something wrong at `line` of `file`.
    pub fn at(file: impl fmt::Display, line: usize, message: impl fmt::Display) -> InputError {
        InputError { file: file.to_string(), line: Some(line), message: message.to_string() }
    }

    /// A TOML file `file` (whose text is `text`) that does not deserialise: at the line its span
    /// starts on, the message's lines joined by `: `.
    pub fn toml(file: impl fmt::Display, text: &str, e: &toml::de::Error) -> InputError {
        let message: Vec<&str> = e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let message = message.join(": ");
        match e.span() {
            Some(span) => InputError::at(file, line_of(text, span.start), message),
            None => InputError::file(file, message),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for InputError {}

/// Several [`InputError`]s found at once (every rotted entry of a deviations file): shown
/// joined by `; `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputErrors(pub Vec<InputError>);

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&all.join("; "))
    }
}

impl std::error::Error for InputErrors {}

impl From<InputError> for InputErrors {
    fn from(e: InputError) -> Self {
        InputErrors(vec![e])
    }
}

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_the_file_and_the_line_when_there_is_one() {
        assert_eq!(InputError::at("d.toml", 12, "unknown field").to_string(), "d.toml:12: unknown field");
        assert_eq!(InputError::file("fixtures/x", "No such file").to_string(), "fixtures/x: No such file");
        let text = "a = 1\nb = [\n";
        let e = InputError::toml("m.toml", text, &toml::from_str::<toml::Table>(text).unwrap_err());
        assert_eq!((e.file.as_str(), e.line), ("m.toml", Some(3)), "{e}");
        assert!(!e.message.contains('\n'), "one line: {e}");
        let several = InputErrors(vec![InputError::at("d.toml", 2, "a"), InputError::at("d.toml", 7, "b")]);
        assert_eq!(several.to_string(), "d.toml:2: a; d.toml:7: b");
        assert_eq!(line_of("x\ny\n", 2), 2);
    }
}
