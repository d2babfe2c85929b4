//! Starting and stopping one server partition: binding sockets the caller chooses,
//! the accept loops of the chosen engine, the notification listener and `/metrics`,
//! and the graceful stop (stop accepting, answer every parked Ping with Status 1, wait a
//! few seconds for connections to finish).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::sockopt;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::task::TaskTracker;

use super::metrics::{bump, serve_metrics, ExtraGauges};
use super::state::{Engine, ServerState};
use super::store::Wake;
use super::{hyper_engine, lean, notify, tls_stream};
use crate::measure::procfs;

/// The TLS configuration a partition serves with.
pub type TlsConfig = Arc<rustls::ServerConfig>;

/// How long a stopping server waits for connections to finish their last response.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// The receive buffer asked for on the notification socket: room for about half a
/// second of a 100,000 datagrams/s burst while the listener is busy. Asked beyond
/// `net.core.rmem_max` where the process may (`CAP_NET_ADMIN`), else capped by it;
/// [`Sockets::notify_recv_buffer`] says what was granted.
const NOTIFY_RECV_BUFFER: usize = 32 * 1024 * 1024;

/// The sockets a partition serves, bound by the caller (tests bind port 0).
#[derive(Debug)]
pub struct Sockets {
    pub http: Vec<TcpListener>,
    pub notify: UdpSocket,
    pub metrics: Option<TcpListener>,
}

impl Sockets {
    /// Binds every address. Must run inside a tokio runtime.
    pub fn bind(
        http: &[SocketAddr],
        notify: SocketAddr,
        metrics: Option<SocketAddr>,
    ) -> io::Result<Self> {
        Ok(Self {
            http: http
                .iter()
                .map(|addr| crate::listen::listen_tcp(*addr))
                .collect::<io::Result<_>>()?,
            notify: bind_udp(notify)?,
            metrics: metrics.map(crate::listen::listen_tcp).transpose()?,
        })
    }

    /// The receive buffer the kernel granted the notification socket, in bytes.
    pub fn notify_recv_buffer(&self) -> Option<usize> {
        socket2::SockRef::from(&self.notify).recv_buffer_size().ok()
    }
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer still works, and the granted size is reported.
    if nix::sys::socket::setsockopt(&socket, sockopt::RcvBufForce, &NOTIFY_RECV_BUFFER).is_err() {
        let _ = socket.set_recv_buffer_size(NOTIFY_RECV_BUFFER);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    crate::kernel_stamp::enable(&socket)?;
    UdpSocket::from_std(socket.into())
}

/// Runs a partition until `state.shutdown` fires, then stops gracefully.
pub async fn run(state: Arc<ServerState>, sockets: Sockets, tls: Option<TlsConfig>) {
    let tracker = TaskTracker::new();
    let notify_port = sockets.notify.local_addr().map(|addr| addr.port()).ok();
    tracker.spawn(notify::listen(sockets.notify, state.clone()));
    if let Some(listener) = sockets.metrics {
        let gauges = move || ExtraGauges {
            rss_bytes: procfs::rss_bytes(None),
            heap: crate::measure::heap::HeapReading::now(),
            notify_socket_drops: notify_port.and_then(procfs::udp_drops),
        };
        tracker.spawn(serve_metrics(
            listener,
            state.metrics.clone(),
            gauges,
            state.shutdown.clone(),
        ));
    }
    for listener in sockets.http {
        tracker.spawn(accept_loop(
            listener,
            tls.clone(),
            state.clone(),
            tracker.clone(),
        ));
    }
    state.shutdown.cancelled().await;
    wake_all_parked(&state);
    tracker.close();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait()).await;
}

/// Answers every parked Ping (they reply Status 1).
fn wake_all_parked(state: &ServerState) {
    state.store.for_each_user(|user| {
        for device in &mut user.devices {
            if let Some(slot) = device.parked.take() {
                let _ = slot.waker.send(Wake::Shutdown);
            }
        }
    });
}

/// Accepts connections until shutdown. Errors (EMFILE at the open-file limit among
/// them) are counted and followed by a short sleep, never a spin.
async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsConfig>,
    state: Arc<ServerState>,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = state.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                bump(&state.metrics.accept_errors);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let open = state.metrics.connections_open.load(Ordering::Relaxed);
        if open >= state.config.max_connections as i64 {
            bump(&state.metrics.connections_refused);
            tracker.spawn(refuse(stream));
            continue;
        }
        start_connection(stream, tls.clone(), state.clone(), &tracker);
    }
}

/// Answers a connection over the limit with 503 and Retry-After, then closes it.
async fn refuse(mut stream: TcpStream) {
    let response = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(response)).await;
}

/// Counts a connection as open for as long as it lives.
struct OpenConnection(Arc<super::metrics::Metrics>);

impl OpenConnection {
    fn new(state: &ServerState) -> Self {
        state
            .metrics
            .connections_open
            .fetch_add(1, Ordering::Relaxed);
        bump(&state.metrics.connections_total);
        Self(state.metrics.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts serving an accepted connection: plain ones at once, TLS ones after a
/// handshake task.
///
/// A task's future is as large as its largest state, so the handshake runs in a task
/// of its own and the connection is served by a second task that never held the
/// handshake's state: a parked connection keeps only the engine's (boxed) future.
fn start_connection(
    stream: TcpStream,
    tls: Option<TlsConfig>,
    state: Arc<ServerState>,
    tracker: &TaskTracker,
) {
    let open = OpenConnection::new(&state);
    let _ = stream.set_nodelay(true);
    match tls {
        None => {
            tracker.spawn(async move {
                let _open = open;
                serve(stream, state).await;
            });
        }
        Some(config) => {
            let serving = tracker.clone();
            tracker.spawn(async move {
                let timeout = state.config.limits.head_timeout;
                let handshake = async {
                    match state.config.engine {
                        Engine::Lean => tls_stream::LeanTlsStream::accept(stream, config)
                            .await
                            .map(|tls| serve(tls, state.clone())),
                        Engine::Hyper => tokio_rustls::TlsAcceptor::from(config)
                            .accept(stream)
                            .await
                            .map(|tls| serve(tls, state.clone())),
                    }
                };
                match tokio::time::timeout(timeout, handshake).await {
                    Ok(Ok(serving_future)) => {
                        serving.spawn(async move {
                            let _open = open;
                            serving_future.await;
                        });
                    }
                    _ => bump(&state.metrics.tls_handshake_errors),
                }
            });
        }
    }
}

/// The engine's future for a connection, boxed (see [`connection`]).
fn serve<S>(io: S, state: Arc<ServerState>) -> Pin<Box<dyn Future<Output = ()> + Send>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + lean::OverTcp + Unpin + Send + 'static,
{
    match state.config.engine {
        Engine::Lean => Box::pin(lean::serve_connection(io, state)),
        Engine::Hyper => Box::pin(hyper_engine::serve_connection(io, state)),
    }
}
