//! A TCP proxy that delays what a broker sends: a slow network between the runner and the broker.
//!
//! Every chunk the broker sends is held for a fixed delay before it is passed on, in order; what
//! the client sends passes at once (or after its own delay). AMQP orders frames only within a
//! channel and connections are separate sockets, so a slow network is legal: a conformant broker
//! must still be judged conformant behind this proxy, and the runner's verdicts must not change.
//! `amqp-conformance delay-proxy` runs one; tests start one in-process with [`DelayProxy::start`].

use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// How long each direction's bytes are held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delays {
    /// What the broker sends, to the client.
    pub from_broker: Duration,
    /// What the client sends, to the broker.
    pub from_client: Duration,
}

/// A proxy running on its own thread until dropped.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DelayProxy {
    /// Listen on an ephemeral loopback port and pass every connection on to `upstream`
    /// (`host:port`) with `delays`.
    pub fn start(upstream: &str, delays: Delays) -> io::Result<DelayProxy> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let upstream = upstream.to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new().name("delay-proxy".into()).spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("a tokio listener");
                tokio::select! {
                    _ = serve(listener, upstream, delays) => {}
                    _ = stopped => {}
                }
            });
        })?;
        Ok(DelayProxy { addr, stop: Some(stop), thread: Some(thread) })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accept connections on `listener` for ever, each passed on to `upstream` with `delays`. A
/// connection the upstream refuses is closed; the others go on.
pub async fn serve(listener: TcpListener, upstream: String, delays: Delays) -> io::Result<()> {
    loop {
        let (client, _) = listener.accept().await?;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&upstream).await else { return };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_in, client_out) = client.into_split();
            let (server_in, server_out) = server.into_split();
            let up = tokio::spawn(super::pump(client_in, server_out, delays.from_client, |_| {}));
            super::pump(server_in, client_out, delays.from_broker, |_| {}).await;
            up.abort();
        });
    }
}

/// `amqp-conformance delay-proxy`: listen on `listen` and pass connections on to `upstream` with
/// `delays` until killed.
/// The error names the address it could not listen or accept on.
pub fn run_cli(listen: &str, upstream: &str, delays: Delays) -> std::io::Result<()> {
    let context = |what: String| move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{what}: {e}"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(listen).await.map_err(context(format!("cannot listen on {listen}")))?;
        eprintln!(
            "delay-proxy: {listen} -> {upstream}, holding the broker's bytes {:?} and the clients' {:?}",
            delays.from_broker, delays.from_client
        );
        serve(listener, upstream.to_string(), delays).await.map_err(context(format!("accepting on {listen}")))
    })
}
