//! Proxies between AMQP clients and a broker, on one forwarding core ([`pump`]):
//!
//! - the traffic proxy (`amqp-conformance proxy`, [`Proxy`]): forwards every byte unchanged in
//!   both directions, and beside the forwarding reads both sides of each connection as the model
//!   reads a session ([`session`]), judges every connection against one model ([`judge`]) and
//!   writes the run as a trace ([`record`]). It sends nothing of its own to either side. What it
//!   reads goes through a bounded queue to a reader on a thread of its own: when the reader falls
//!   behind, the connection's traffic is still forwarded, and the proxy says it no longer reads
//!   it (forwarding never waits for reading or judging);
//! - the delay proxy ([`delay`]): what a broker sends, held for a while (a slow network).

pub mod delay;
pub mod judge;
pub mod record;
pub mod report;
pub mod session;

use session::{Seen, Session, Side};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How many chunks may wait for the reader before it counts as behind.
pub const DEFAULT_BACKLOG: usize = 4096;

/// Copy `from` to `to`, each chunk `delay` after it was read (at once with no delay), in order,
/// giving each chunk to `tee` as it is read, before it is passed on. The end of `from` is passed
/// on (after the chunks before it) as the end of `to`.
pub(crate) async fn pump<R, W>(mut from: R, mut to: W, delay: Duration, mut tee: impl FnMut(&[u8]) + Send + 'static)
where
    R: AsyncReadExt + Unpin + Send + 'static,
    W: AsyncWriteExt + Unpin + Send + 'static,
{
    if delay.is_zero() {
        let mut buf = vec![0u8; 65536];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            tee(&buf[..n]);
            if to.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            tee(&buf[..n]);
            if tx.send((tokio::time::Instant::now() + delay, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    while let Some((due, chunk)) = rx.recv().await {
        tokio::time::sleep_until(due).await;
        if to.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
    reader.abort();
}

/// How the traffic proxy runs.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// The broker's address (`host:port`).
    pub upstream: String,
    /// Where to write the run as a trace, if anywhere.
    pub record: Option<PathBuf>,
    /// How many chunks may wait for the reader ([`DEFAULT_BACKLOG`]).
    pub backlog: usize,
    /// Print what is read (notes, connections) on stderr.
    pub log: bool,
    /// The profile the sessions are judged under ([`judge`]).
    pub profile: amqp_model::Profile,
}

/// What the proxy has passed on and read so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Connections accepted.
    pub connections: usize,
    /// Commands read from the clients.
    pub commands: usize,
    /// Events read from the broker.
    pub events: usize,
    /// What the model's traces cannot say, as read.
    pub notes: Vec<String>,
    /// Connections whose traffic the reader fell behind on (forwarded, no longer read).
    pub behind: BTreeSet<u16>,
    /// The trace written, if any.
    pub recording: Option<PathBuf>,
    /// Why the recording stopped, if it failed.
    pub recording_failed: Option<String>,
    /// What the judge found, in order ([`judge::Finding`]).
    pub findings: Vec<judge::Finding>,
    /// The recording's line of the event the first divergence is about.
    pub divergence_line: Option<usize>,
}

impl Traffic {
    /// The divergences found.
    pub fn divergences(&self) -> usize {
        self.findings.iter().filter(|f| matches!(f, judge::Finding::Divergence { .. })).count()
    }

    /// The client errors found.
    pub fn client_errors(&self) -> usize {
        self.findings.iter().filter(|f| matches!(f, judge::Finding::ClientError { .. })).count()
    }

    /// Why judging stopped, if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.findings.iter().find_map(|f| match f {
            judge::Finding::Stopped(why) => Some(why.as_str()),
            _ => None,
        })
    }
}

/// A chunk of one side of a connection, for the reader.
enum Chunk {
    Bytes(u16, Side, Vec<u8>),
    Ended(u16),
    /// The proxy is stopping: what came before is the last to read.
    Stop,
}

/// The proxy's shared part: the reader's queue and what it found.
struct Shared {
    config: ProxyConfig,
    queue: mpsc::Sender<Chunk>,
    /// The connections the reader fell behind on: locked only for a look or an insert, so
    /// that forwarding never waits for the reader.
    behind: Arc<Mutex<BTreeSet<u16>>>,
    traffic: Arc<Mutex<Traffic>>,
}

impl Shared {
    /// Give the reader a chunk, unless it is behind on the connection: then the connection is
    /// marked, said so once, and not read any more.
    fn tee(&self, conn: u16, chunk: Chunk) {
        let mut behind = self.behind.lock().unwrap_or_else(|e| e.into_inner());
        if behind.contains(&conn) {
            return;
        }
        if self.queue.try_send(chunk).is_err() {
            behind.insert(conn);
            eprintln!(
                "proxy: c{conn}: the reader fell behind ({} chunks waiting): c{conn}'s traffic is still forwarded, \
                 but no longer read or recorded",
                self.config.backlog
            );
        }
    }
}

/// A running traffic proxy: what it has read so far, and its end.
#[derive(Debug)]
pub struct Proxy {
    traffic: Arc<Mutex<Traffic>>,
    behind: Arc<Mutex<BTreeSet<u16>>>,
    /// The reader, on a thread of its own: judging never takes a forwarding task's time.
    reader: tokio::task::JoinHandle<()>,
    stop_reader: mpsc::Sender<Chunk>,
    /// Set when the proxy stops: what is still queued is read and recorded, not judged.
    stopping: Arc<std::sync::atomic::AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Accept connections on `listener` (from within a tokio runtime), each passed on to the
    /// upstream and read beside.
    pub fn start(listener: TcpListener, config: ProxyConfig) -> io::Result<Proxy> {
        let traffic = Arc::new(Mutex::new(Traffic::default()));
        let recorder = match &config.record {
            Some(dir) => {
                let r = record::Recorder::create(dir, &config.upstream)?;
                traffic.lock().unwrap_or_else(|e| e.into_inner()).recording = Some(r.path().to_path_buf());
                Some(r)
            }
            None => None,
        };
        let (queue, chunks) = mpsc::channel(config.backlog.max(1));
        let stop_reader = queue.clone();
        let behind = Arc::new(Mutex::new(BTreeSet::new()));
        let shared = Arc::new(Shared { config, queue, behind: behind.clone(), traffic: traffic.clone() });
        let judge = judge::Judge::new(shared.config.profile);
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (t, b, st, log) = (traffic.clone(), behind.clone(), stopping.clone(), shared.config.log);
        let reader = tokio::task::spawn_blocking(move || read(chunks, recorder, judge, b, st, t, log));
        let accept = tokio::spawn(accept(listener, shared));
        Ok(Proxy { traffic, behind, reader, stop_reader, stopping, accept })
    }

    /// What has been read so far.
    pub fn traffic(&self) -> Traffic {
        let mut t = self.traffic.lock().unwrap_or_else(|e| e.into_inner()).clone();
        t.behind = self.behind.lock().unwrap_or_else(|e| e.into_inner()).clone();
        t
    }

    /// Stop accepting, let the reader take what is queued and finish the recording, and say
    /// what was read.
    pub async fn stop(self) -> Traffic {
        self.accept.abort();
        self.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.stop_reader.send(Chunk::Stop).await;
        let Proxy { traffic, behind, reader, .. } = self;
        let _ = reader.await;
        let mut t = traffic.lock().unwrap_or_else(|e| e.into_inner()).clone();
        t.behind = behind.lock().unwrap_or_else(|e| e.into_inner()).clone();
        t
    }
}

/// A traffic proxy on an ephemeral loopback port, run by a thread of its own (tests start one).
#[derive(Debug)]
pub struct ProxyHandle {
    addr: SocketAddr,
    /// The reader's queue, to see how much of it is still to read.
    queue: mpsc::Sender<Chunk>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Traffic>>,
}

impl ProxyHandle {
    /// Listen on `127.0.0.1:0` and proxy as `config` says.
    pub fn start(config: ProxyConfig) -> io::Result<ProxyHandle> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let proxy = {
            let _in_runtime = rt.enter();
            Proxy::start(TcpListener::from_std(listener)?, config)?
        };
        let queue = proxy.stop_reader.clone();
        let thread = std::thread::Builder::new().name("proxy".into()).spawn(move || {
            rt.block_on(async move {
                let _ = stopped.await;
                proxy.stop().await
            })
        })?;
        Ok(ProxyHandle { addr, queue, stop: Some(stop), thread: Some(thread) })
    }

    /// How many chunks wait for the reader.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Stop it once the reader has taken everything queued (a reader behind a burst of traffic
    /// catches up), or once `patience` has passed, and say what it read. What was still queued
    /// then is read and recorded, not judged, and the judging says so.
    pub fn stop_when_read(self, patience: std::time::Duration) -> Traffic {
        let deadline = std::time::Instant::now() + patience;
        while self.queued() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.stop()
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop it, and say what it read.
    pub fn stop(mut self) -> Traffic {
        self.end()
    }

    fn end(&mut self) -> Traffic {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.end();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut next: u16 = 0;
    loop {
        let Ok((client, addr)) = listener.accept().await else { continue };
        next = next.checked_add(1).unwrap_or(1);
        let conn = next;
        tokio::spawn(connection(client, addr, conn, shared.clone()));
    }
}

/// One client: its broker connection, the two pumps, and the reader told of both sides.
async fn connection(client: TcpStream, addr: SocketAddr, conn: u16, shared: Arc<Shared>) {
    let server = match TcpStream::connect(&shared.config.upstream).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("proxy: c{conn} ({addr}): cannot reach the broker at {}: {e}", shared.config.upstream);
            return;
        }
    };
    shared.traffic.lock().unwrap_or_else(|e| e.into_inner()).connections += 1;
    if shared.config.log {
        eprintln!("proxy: c{conn}: {addr} -> {}", shared.config.upstream);
    }
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_in, client_out) = client.into_split();
    let (server_in, server_out) = server.into_split();
    let (up, down) = (shared.clone(), shared.clone());
    let to_broker = tokio::spawn(pump(client_in, server_out, Duration::ZERO, move |b| {
        up.tee(conn, Chunk::Bytes(conn, Side::Client, b.to_vec()))
    }));
    pump(server_in, client_out, Duration::ZERO, move |b| down.tee(conn, Chunk::Bytes(conn, Side::Broker, b.to_vec())))
        .await;
    let _ = to_broker.await;
    shared.tee(conn, Chunk::Ended(conn));
}

/// After a write to the recording: if it failed, say so and go on without it.
fn recording(recorder: &mut Option<record::Recorder>, written: io::Result<()>, t: &mut Traffic) {
    if let (Err(e), Some(r)) = (written, recorder.as_ref()) {
        eprintln!("proxy: the recording {} failed: {e}; the proxy goes on without it", r.path().display());
        t.recording_failed = Some(e.to_string());
        *recorder = None;
    }
}

/// The reader: each connection's chunks read as the model reads them, in the order the proxy
/// passed them on, and written to the recording.
fn read(
    mut chunks: mpsc::Receiver<Chunk>,
    mut recorder: Option<record::Recorder>,
    mut judge: judge::Judge,
    behind: Arc<Mutex<BTreeSet<u16>>>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    traffic: Arc<Mutex<Traffic>>,
    log: bool,
) {
    let mut sessions: BTreeMap<u16, Session> = BTreeMap::new();
    let profile = judge.profile().name;
    let started = std::time::Instant::now();
    // Until the proxy stops: what was queued before the stop is read first.
    while let Some(chunk) = chunks.blocking_recv() {
        let (seen, ended) = match chunk {
            Chunk::Stop => break,
            Chunk::Bytes(conn, side, bytes) => (
                sessions
                    .entry(conn)
                    .or_insert_with(|| Session::new(amqp_model::ConnId(conn), profile))
                    .bytes(side, &bytes),
                None,
            ),
            Chunk::Ended(conn) => {
                (sessions.remove(&conn).map(|mut s| s.ended()).unwrap_or_default(), Some(amqp_model::ConnId(conn)))
            }
        };
        // What this chunk adds, gathered without the shared lock (judging takes time).
        let mut t = Traffic::default();
        let before = judge.findings.len();
        let first_behind = behind.lock().unwrap_or_else(|e| e.into_inner()).iter().next().copied();
        if let Some(c) = first_behind.filter(|_| judge.judging()) {
            judge.stop(format!("the reading fell behind on c{c}, whose methods the model no longer sees"));
        }
        if judge.judging() && stopping.load(std::sync::atomic::Ordering::Relaxed) && !chunks.is_empty() {
            judge.stop(format!("the proxy stopped with {} chunks still to judge", chunks.len()));
        }
        judge.at(started.elapsed().as_millis() as u64);
        for s in &seen {
            match s {
                Seen::Command(c, nowait) => {
                    t.commands += 1;
                    judge.command(c, *nowait);
                }
                Seen::CloseOk(ch) => judge.close_ok(*ch),
                Seen::Refused { ch, code, method, note } => {
                    if log {
                        eprintln!("proxy: {note}");
                    }
                    t.notes.push(note.clone());
                    judge.refused(*ch, *code, *method, note);
                }
                Seen::Event(e) => {
                    t.events += 1;
                    let found = judge.findings.len();
                    judge.event(e);
                    let diverged =
                        judge.findings[found..].iter().any(|f| matches!(f, judge::Finding::Divergence { .. }));
                    if diverged && t.divergence_line.is_none() {
                        // The event is written next, on a line of its own.
                        t.divergence_line = recorder.as_ref().map(|r| r.lines() + 1);
                    }
                }
                Seen::Note(n) => {
                    if log {
                        eprintln!("proxy: {n}");
                    }
                    t.notes.push(n.clone());
                }
            }
            if let Some(r) = recorder.as_mut() {
                let written = r.write(s);
                recording(&mut recorder, written, &mut t);
            }
        }
        if let Some(conn) = ended {
            judge.ended(conn);
        }
        // The recording is written out whenever the reader has caught up: line by line when the
        // traffic is light, in larger writes under load.
        if chunks.is_empty() {
            if let Some(r) = recorder.as_mut() {
                let written = r.flush();
                recording(&mut recorder, written, &mut t);
            }
        }
        // A line per finding as it happens.
        for f in &judge.findings[before..] {
            eprintln!("proxy: {f}");
            t.findings.push(f.clone());
        }
        let mut shared = traffic.lock().unwrap_or_else(|e| e.into_inner());
        shared.commands += t.commands;
        shared.events += t.events;
        shared.notes.append(&mut t.notes);
        shared.findings.append(&mut t.findings);
        if t.recording_failed.is_some() {
            shared.recording_failed = t.recording_failed;
        }
        if shared.divergence_line.is_none() {
            shared.divergence_line = t.divergence_line;
        }
    }
    // Fell behind on a connection after its last chunk was read: judging ended there too.
    let first_behind = behind.lock().unwrap_or_else(|e| e.into_inner()).iter().next().copied();
    if let Some(c) = first_behind.filter(|_| judge.judging()) {
        judge.stop(format!("the reading fell behind on c{c}, whose methods the model no longer sees"));
        if let Some(f) = judge.findings.last() {
            eprintln!("proxy: {f}");
            traffic.lock().unwrap_or_else(|e| e.into_inner()).findings.push(f.clone());
        }
    }
    if let Some(r) = recorder.as_mut() {
        let _ = r.finish();
    }
}

/// `amqp-conformance proxy`: listen on `listen` and proxy to `config.upstream` until SIGINT (or
/// SIGTERM), then print what was read. The error names the address it could not listen on.
pub fn run_cli(listen: &str, config: ProxyConfig) -> io::Result<Traffic> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
        let upstream = config.upstream.clone();
        let proxy = Proxy::start(listener, config)?;
        eprintln!("proxy: {listen} -> {upstream}; Ctrl-C ends it and prints what was read");
        if let Some(path) = &proxy.traffic().recording {
            eprintln!("proxy: recording to {}", path.display());
        }
        wait_for_the_end().await;
        Ok(proxy.stop().await)
    })
}

async fn wait_for_the_end() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
