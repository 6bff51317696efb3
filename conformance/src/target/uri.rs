//! A broker's AMQP URI, parsed once with amq-protocol's URI parser and never shown with its
//! password: `Display` and `Debug` write it with the password as `***`; only
//! [`BrokerUri::secret`] gives it whole, to connect with.

use amq_protocol::uri::AMQPUri;
use std::fmt;

/// What `--broker` takes, as the hint that follows a URI that is not one.
pub const URI_HINT: &str =
    "--broker takes an AMQP URI, e.g. amqp://user:pass@host:port/%2f (the vhost \"/\" is written %2f)";

/// An `amqp://` (or `amqps://`) URI that parses and names a virtual host.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BrokerUri {
    text: String,
    host: String,
    port: u16,
    user: String,
    password: String,
    vhost: String,
}

impl BrokerUri {
    /// Parse `text`. A URI with no path names the default virtual host, `/`; one whose path is a
    /// lone `/` names the empty virtual host, which brokers refuse, so it is an error here too.
    /// The error is one line, with the password shown as `***`, and ends with [`URI_HINT`].
    pub fn parse(text: &str) -> Result<BrokerUri, BadUri> {
        let bad = |why| BadUri { shown: redact(text), why };
        let scheme = text.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("amqp" | "amqps")) {
            return Err(bad(WhyBad::NoScheme));
        }
        let parsed: AMQPUri = text.parse().map_err(|e: String| bad(WhyBad::Unparsed(e)))?;
        if parsed.vhost.is_empty() {
            return Err(bad(WhyBad::EmptyVhost));
        }
        let authority = parsed.authority;
        Ok(BrokerUri {
            text: text.to_string(),
            host: authority.host,
            port: authority.port,
            user: authority.userinfo.username,
            password: authority.userinfo.password,
            vhost: parsed.vhost,
        })
    }

    /// The URI as given, password included: for connecting, never for printing.
    pub fn secret(&self) -> &str {
        &self.text
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The virtual host (`/` for a URI without a path).
    pub fn vhost(&self) -> &str {
        &self.vhost
    }
}

impl fmt::Display for BrokerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.text))
    }
}

impl fmt::Debug for BrokerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BrokerUri({self})")
    }
}

/// `text` with its password (if any) replaced by `***`.
fn redact(text: &str) -> String {
    let Some(scheme) = text.find("://") else { return text.to_string() };
    let rest = &text[scheme + 3..];
    let Some(at) = rest.find('@') else { return text.to_string() };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &text[..scheme + 3], &rest[..colon], &rest[at..]),
        None => text.to_string(),
    }
}

/// A text that is not a broker URI: shown (with the password as `***`) with why and
/// [`URI_HINT`], on one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadUri {
    /// The text, its password as `***`.
    pub shown: String,
    /// What is wrong with it.
    pub why: WhyBad,
}

/// What is wrong with a [`BadUri`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WhyBad {
    /// Not `amqp://` or `amqps://`.
    NoScheme,
    /// amq-protocol's parser refused it, saying this.
    Unparsed(String),
    /// The path is a lone `/`: the empty virtual host, which brokers refuse.
    EmptyVhost,
}

impl fmt::Display for BadUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.shown;
        match &self.why {
            WhyBad::NoScheme => write!(f, "`{shown}` is not an AMQP URI (no amqp:// scheme): {URI_HINT}"),
            WhyBad::Unparsed(e) => write!(f, "`{shown}` is not an AMQP URI ({e}): {URI_HINT}"),
            WhyBad::EmptyVhost => {
                write!(f, "`{shown}` names the empty virtual host (nothing after the last /): {URI_HINT}")
            }
        }
    }
}

impl std::error::Error for BadUri {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        let uri = BrokerUri::parse("amqp://guest:s3cret@127.0.0.1:5673/%2f").expect("parses");
        assert_eq!(uri.to_string(), "amqp://guest:***@127.0.0.1:5673/%2f");
        assert!(!format!("{uri:?}").contains("s3cret"));
        assert_eq!(
            (uri.address().as_str(), uri.user(), uri.password(), uri.vhost()),
            ("127.0.0.1:5673", "guest", "s3cret", "/")
        );
        assert_eq!(BrokerUri::parse("amqp://localhost").expect("parses").address(), "localhost:5672");
    }

    #[test]
    fn what_is_not_a_broker_uri_is_refused_without_the_password() {
        for bad in ["http://u:s3cret@host/", "amqp://u:s3cret@host:notaport/%2f", "amqp://u:s3cret@host/"] {
            let e = BrokerUri::parse(bad).expect_err(bad).to_string();
            assert!(!e.contains("s3cret") && e.ends_with(URI_HINT), "{e}");
        }
    }
}
