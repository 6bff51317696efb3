//! The client's side of the connection handshake, for whoever writes frames itself (the runner's
//! raw-frame target, the tests' hand-written clients): the protocol header, `start-ok` (PLAIN),
//! `tune-ok` and `open`, each after the server's method it answers.

use amq_protocol::frame::{AMQPFrame, ProtocolVersion};
use amq_protocol::protocol::{connection, AMQPClass};
use amq_protocol::types::{FieldTable, LongString, ShortString};

/// Who logs in, and to which virtual host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Login<'a> {
    /// The user (SASL PLAIN).
    pub user: &'a str,
    /// The password.
    pub password: &'a str,
    /// The virtual host.
    pub vhost: &'a str,
}

/// The server method a handshake waits for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaited {
    /// `connection.start`, after the protocol header.
    Start,
    /// `connection.tune`, after `start-ok`.
    Tune,
    /// `connection.open-ok`, after `tune-ok` and `open`.
    OpenOk,
}

impl Awaited {
    /// What the client sent that the server's method answers (for a report of a missing answer).
    pub fn after(self) -> &'static str {
        match self {
            Awaited::Start => "the protocol header",
            Awaited::Tune => "connection.start-ok",
            Awaited::OpenOk => "connection.open",
        }
    }

    /// Whether `frame` is the method awaited.
    pub fn matches(self, frame: &AMQPFrame) -> bool {
        let AMQPFrame::Method(0, AMQPClass::Connection(m)) = frame else { return false };
        matches!(
            (self, m),
            (Awaited::Start, connection::AMQPMethod::Start(_))
                | (Awaited::Tune, connection::AMQPMethod::Tune(_))
                | (Awaited::OpenOk, connection::AMQPMethod::OpenOk(_))
        )
    }
}

/// How a handshake reaches the server: its socket, as its owner reads and writes it.
pub trait HandshakeIo {
    /// Write these frames.
    fn send(&mut self, frames: &[AMQPFrame]);
    /// The server's method `awaited`, or `None` when it will not come (the server closed, or
    /// was silent too long: the owner reports which).
    fn reply(&mut self, awaited: Awaited) -> Option<AMQPFrame>;
}

/// What the server said in a completed handshake.
#[derive(Clone, Debug, PartialEq)]
pub struct Opened {
    /// Its `connection.start` (properties, capabilities, mechanisms).
    pub start: connection::Start,
    /// Its `connection.tune`.
    pub tune: connection::Tune,
}

/// The `connection.start-ok` of a SASL PLAIN login as `login`, announcing no capability.
pub fn start_ok(login: &Login<'_>) -> connection::StartOk {
    connection::StartOk {
        client_properties: FieldTable::default(),
        mechanism: ShortString::from("PLAIN"),
        response: LongString::from(format!("\0{}\0{}", login.user, login.password).as_bytes()),
        locale: ShortString::from("en_US"),
    }
}

/// Open a connection as `login`, answering the server's tune with what `tune_ok` makes of it;
/// `None` when a method awaited did not come.
pub fn handshake(
    io: &mut impl HandshakeIo,
    login: &Login<'_>,
    tune_ok: impl FnOnce(&connection::Tune) -> connection::TuneOk,
) -> Option<Opened> {
    let on_0 = |m: connection::AMQPMethod| AMQPFrame::Method(0, AMQPClass::Connection(m));
    io.send(&[AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1())]);
    let AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(start))) = io.reply(Awaited::Start)?
    else {
        return None;
    };
    io.send(&[on_0(connection::AMQPMethod::StartOk(start_ok(login)))]);
    let AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(tune))) = io.reply(Awaited::Tune)?
    else {
        return None;
    };
    let open = connection::Open { virtual_host: ShortString::from(login.vhost) };
    io.send(&[on_0(connection::AMQPMethod::TuneOk(tune_ok(&tune))), on_0(connection::AMQPMethod::Open(open))]);
    io.reply(Awaited::OpenOk).filter(|f| Awaited::OpenOk.matches(f))?;
    Some(Opened { start, tune })
}
