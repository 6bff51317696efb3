//! A broker outside any trace ([`BrokerUri`]): whether it is there and lets the runner in, whether it still answers (after a restart, between traces),
//! and which of what the specification only recommends it implements (asked once per broker and
//! process). Also the process's tokio runtime, which every live target and probe shares.

use super::uri::BrokerUri;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ErrorKind};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Whether something accepts TCP connections at the URI's address (within a second); the error
/// names the address, never the password.
pub fn reachable(uri: &BrokerUri) -> Result<(), ProbeError> {
    let addr = uri.address();
    let ok = std::net::ToSocketAddrs::to_socket_addrs(addr.as_str())
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ProbeError::Unreachable { address: addr, uri: uri.to_string() })
    }
}

/// Whether the broker at `uri` still serves queue methods: a fresh connection declares a queue of
/// its own (`amqpc-probe-<pid>`) and deletes it, each answered within `timeout`. A broker can
/// stop answering after a trace while it still accepts connections (GarageMQ deadlocks deleting
/// a queue that has a consumer); the error says which step went unanswered.
pub fn responsive(uri: &BrokerUri, timeout: Duration) -> Result<(), ProbeError> {
    runtime().block_on(async {
        let connection = match tokio::time::timeout(timeout, connect(uri)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(ProbeError::Connect(e.to_string())),
            Err(_) => return Err(ProbeError::NoConnection(timeout)),
        };
        let probe = async {
            let late = |method| ProbeError::Unanswered { method, timeout };
            let failed = |method| move |e: lapin::Error| ProbeError::Failed { method, error: e.to_string() };
            let ch = tokio::time::timeout(timeout, connection.create_channel())
                .await
                .map_err(|_| late("channel.open"))?
                .map_err(failed("channel.open"))?;
            let name = format!("amqpc-probe-{}", std::process::id());
            let declare = ch.queue_declare(name.as_str().into(), QueueDeclareOptions::default(), FieldTable::default());
            tokio::time::timeout(timeout, declare)
                .await
                .map_err(|_| late("queue.declare"))?
                .map_err(failed("queue.declare"))?;
            tokio::time::timeout(timeout, ch.queue_delete(name.as_str().into(), QueueDeleteOptions::default()))
                .await
                .map_err(|_| late("queue.delete"))?
                .map_err(failed("queue.delete"))?;
            Ok(())
        };
        let result = probe.await;
        let _ = tokio::time::timeout(timeout, connection.close(200, "OK".into())).await;
        result
    })
}

/// Whether the broker at `uri` accepts a connection (address, credentials, virtual host), within
/// `timeout`; the error says why not, without the password.
pub fn check_login(uri: &BrokerUri, timeout: Duration) -> Result<(), ProbeError> {
    reachable(uri)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProbeError::Runtime(e.to_string()))?;
    rt.block_on(async {
        match tokio::time::timeout(timeout, connect(uri)).await {
            Ok(Ok(c)) => {
                let _ = c.close(200, "OK".into()).await;
                Ok(())
            }
            Ok(Err(e)) => Err(ProbeError::Refused { uri: uri.to_string(), error: e.to_string() }),
            Err(_) => Err(ProbeError::Handshake { uri: uri.to_string(), timeout }),
        }
    })
}

/// Why a broker outside a trace is not usable ([`reachable`], [`responsive`], [`check_login`]):
/// shown as one line naming the address or the method that went unanswered, never the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// Nothing accepts TCP connections at the URI's address.
    Unreachable {
        /// `host:port`.
        address: String,
        /// The URI, as shown (without the password).
        uri: String,
    },
    /// A connection could not be had, for this reason.
    Connect(String),
    /// No connection within this time.
    NoConnection(Duration),
    /// The broker did not answer this method in time.
    Unanswered {
        /// The method.
        method: &'static str,
        /// How long it was given.
        timeout: Duration,
    },
    /// The broker refused this method.
    Failed {
        /// The method.
        method: &'static str,
        /// What the client said.
        error: String,
    },
    /// The broker refused the connection (credentials, virtual host).
    Refused {
        /// The broker's URI, as shown (without the password).
        uri: String,
        /// What the client said.
        error: String,
    },
    /// The handshake did not complete in time.
    Handshake {
        /// The broker's URI, as shown (without the password).
        uri: String,
        /// How long it was given.
        timeout: Duration,
    },
    /// No runtime to connect from.
    Runtime(String),
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::Unreachable { address, uri } => write!(f, "no AMQP broker listening at {address} ({uri})"),
            ProbeError::Connect(e) => write!(f, "cannot connect: {e}"),
            ProbeError::NoConnection(timeout) => write!(f, "no connection within {timeout:?}"),
            ProbeError::Unanswered { method, timeout } => write!(f, "no answer to {method} within {timeout:?}"),
            ProbeError::Failed { method, error } => write!(f, "{method} failed: {error}"),
            ProbeError::Refused { uri, error } => write!(f, "the broker at {uri} refused the connection: {error}"),
            ProbeError::Handshake { uri, timeout } => {
                write!(f, "the broker at {uri} did not complete the handshake in {timeout:?}")
            }
            ProbeError::Runtime(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ProbeError {}

/// Run `f` to completion on the process's runtime (from outside it).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// The process's tokio runtime, shared by every target (and every `--jobs` thread).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
    })
}

/// Which exchange types of `exchange recommended-types` (topic, headers: a SHOULD) the broker at
/// `uri` implements, asked once per broker and process: a non-passive `exchange.declare` of a
/// probe exchange of each type (deleted at once), where a connection close with 503
/// command-invalid says the type is left out (`exchange declare type support`). Any other failure
/// (no connection, a timeout, another refusal) counts as implemented, so that the traces run and
/// show the problem where it is.
pub fn recommended_types(uri: &BrokerUri, timeout: Duration) -> amqp_model::RecommendedTypes {
    static PROBED: OnceLock<Mutex<HashMap<String, amqp_model::RecommendedTypes>>> = OnceLock::new();
    // Each type on a connection of its own: a refusal closes it.
    // Some(true): declare-ok; Some(false): 503; None: no answer that says (see once_per_broker).
    let implements = |kind: lapin::ExchangeKind| -> Option<bool> {
        let name = format!("amqpc-probe-{kind:?}-{}", std::process::id()).to_lowercase();
        on_probe_channel(uri, timeout, |ch| async move {
            let declare = ch.exchange_declare(name.as_str().into(), kind, Default::default(), FieldTable::default());
            match tokio::time::timeout(timeout, declare).await {
                Ok(Err(e)) if matches!(e.kind(), ErrorKind::ProtocolError(p) if p.get_id() == 503) => Some(false),
                Ok(Err(e)) if matches!(e.kind(), ErrorKind::ProtocolError(_)) => Some(true),
                Ok(Ok(())) => {
                    let delete = ch.exchange_delete(name.as_str().into(), Default::default());
                    let _ = tokio::time::timeout(timeout, delete).await;
                    Some(true)
                }
                _ => None,
            }
        })
        .flatten()
    };
    once_per_broker(&PROBED, uri.secret().to_string(), amqp_model::RecommendedTypes::BOTH, || {
        Some(amqp_model::RecommendedTypes {
            topic: implements(lapin::ExchangeKind::Topic)?,
            headers: implements(lapin::ExchangeKind::Headers)?,
        })
    })
}

/// Whether the broker at `uri` implements the exchange type `kind`, one the specification does
/// not define (`exchange extensions`: a server MAY add types), asked once per broker, type and
/// process: a non-passive `exchange.declare` of a probe exchange of that type, deleted at once
/// if it was made. Only a declare-ok counts as implemented; a 503 (`exchange declare type
/// support`) or any other refusal does not, so that the traces run and show it.
pub fn implements_extension_type(uri: &BrokerUri, timeout: Duration, kind: &str) -> bool {
    static PROBED: OnceLock<Mutex<HashMap<(String, String), bool>>> = OnceLock::new();
    once_per_broker(&PROBED, (uri.secret().to_string(), kind.to_string()), false, || {
        let name = format!("amqpc-probe-extension-{}", std::process::id());
        let custom = lapin::ExchangeKind::Custom(kind.to_string());
        on_probe_channel(uri, timeout, |ch| async move {
            let declare = ch.exchange_declare(name.as_str().into(), custom, Default::default(), FieldTable::default());
            match tokio::time::timeout(timeout, declare).await {
                Ok(Ok(())) => {
                    let delete = ch.exchange_delete(name.as_str().into(), Default::default());
                    let _ = tokio::time::timeout(timeout, delete).await;
                    Some(true)
                }
                Ok(Err(e)) if matches!(e.kind(), ErrorKind::ProtocolError(_)) => Some(false),
                _ => None,
            }
        })
        .flatten()
    })
}

/// What a broker does with the mandatory flag (`basic publish mandatory 01`, a SHOULD, which
/// leaves a server free not to implement it: to drop an unroutable mandatory message like any
/// other, or to refuse the flag, with no code named for that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MandatoryFlag {
    /// It returns an unroutable mandatory message (312).
    Returns,
    /// It drops it without a word.
    Drops,
    /// It closes the channel or connection at the publish.
    Refuses,
}

/// What the broker at `uri` does with the mandatory flag, asked once per broker and process: a
/// mandatory message published through `amq.direct` (which every virtual host starts with,
/// `exchange required-instances`) with a routing key no queue is bound with, then a round trip
/// (`basic.qos`), after which a broker that implements the flag has sent the `basic.return` (as
/// the runner itself observes returns), and one that refuses it has closed the channel (the
/// round trip fails with the broker's close). Any other failure counts as implemented, so that
/// the traces run and show the problem. (Not the default exchange: a broker that mishandles it -
/// dispatchd crashes on any publish to it - would be brought down before the first trace, which
/// would then fail for the probe's sake.)
pub fn mandatory_flag(uri: &BrokerUri, timeout: Duration) -> MandatoryFlag {
    static PROBED: OnceLock<Mutex<HashMap<String, MandatoryFlag>>> = OnceLock::new();
    once_per_broker(&PROBED, uri.secret().to_string(), MandatoryFlag::Returns, || {
        let key = format!("amqpc-probe-unroutable-{}", std::process::id());
        let returned = on_probe_channel(uri, timeout, |ch| async move {
            let options = BasicPublishOptions { mandatory: true, ..Default::default() };
            let publish = ch.basic_publish(
                "amq.direct".into(),
                key.as_str().into(),
                options,
                b"probe",
                BasicProperties::default(),
            );
            if !matches!(tokio::time::timeout(timeout, publish).await, Ok(Ok(_))) {
                return None;
            }
            let round_trip = ch.basic_qos(0, lapin::options::BasicQosOptions::default());
            match tokio::time::timeout(timeout, round_trip).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if matches!(e.kind(), ErrorKind::ProtocolError(_)) => return Some(MandatoryFlag::Refuses),
                _ => return None,
            }
            match tokio::time::timeout(timeout, ch.wait_for_confirms()).await {
                Ok(Ok(returned)) if returned.is_empty() => Some(MandatoryFlag::Drops),
                Ok(Ok(_)) => Some(MandatoryFlag::Returns),
                _ => None,
            }
        });
        returned.flatten()
    })
}

/// What `ask` finds out about a broker, asked once per process: `cache` keeps the answers by
/// `key` (the broker's URI, with what is asked where that varies; held while asking, so that
/// parallel traces do not ask twice). `ask` gives
/// None when the broker gave no answer that says (no connection, no reply in time: a broker
/// restarting, or one that died under an earlier trace); it is asked up to three times, and if
/// none answers, `otherwise` is used for this trace only and nothing is kept, so that the next
/// trace asks again rather than inherit a guess.
fn once_per_broker<K: Eq + std::hash::Hash, T: Copy>(
    cache: &OnceLock<Mutex<HashMap<K, T>>>,
    key: K,
    otherwise: T,
    ask: impl Fn() -> Option<T>,
) -> T {
    let mut known = cache.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(answer) = known.get(&key) {
        return *answer;
    }
    for attempt in 0..3u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200 << attempt));
        }
        if let Some(answer) = ask() {
            known.insert(key, answer);
            return answer;
        }
    }
    otherwise
}

/// Run `probe` on a channel of a fresh connection to the broker at `uri`, then close the
/// connection; None when no connection or channel is had within `timeout`.
fn on_probe_channel<T, F: Future<Output = T>>(
    uri: &BrokerUri,
    timeout: Duration,
    probe: impl FnOnce(Channel) -> F,
) -> Option<T> {
    runtime().block_on(async {
        let connection = tokio::time::timeout(timeout, connect(uri)).await.ok()?.ok()?;
        let out = match tokio::time::timeout(timeout, connection.create_channel()).await {
            Ok(Ok(ch)) => Some(probe(ch).await),
            _ => None,
        };
        let _ = tokio::time::timeout(timeout, connection.close(200, "OK".into())).await;
        out
    })
}

pub(crate) async fn connect(uri: &BrokerUri) -> lapin::Result<Connection> {
    let runtime = lapin::runtime::default_runtime()?;
    Connection::connect_with_runtime(uri.secret(), ConnectionProperties::default(), runtime).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn an_unanswered_probe_is_asked_again_and_never_kept() {
        let cache: OnceLock<Mutex<HashMap<&str, bool>>> = OnceLock::new();
        let asked = Cell::new(0);
        let silent = || {
            asked.set(asked.get() + 1);
            None
        };
        assert!(once_per_broker(&cache, "b", true, silent));
        assert_eq!(asked.get(), 3, "asked three times");
        // Nothing was kept: the next trace asks again, and a real answer is kept.
        let answers = || {
            asked.set(asked.get() + 1);
            (asked.get() == 5).then_some(false)
        };
        assert!(!once_per_broker(&cache, "b", true, answers));
        assert_eq!(asked.get(), 5);
        assert!(!once_per_broker(&cache, "b", true, || panic!("kept, not asked")));
    }
}
