//! The hyper connection engine: the same EAS handler behind stock hyper 1.x HTTP/1.1
//! with default settings (and tokio-rustls for TLS), as most production servers are
//! built. It exists so a run can show, side by side with the lean engine, what a
//! conventional stack costs per parked Ping. hyper's own head read timeout does not
//! fire on a connection's first request (hyper issue 2741), so a small watchdog here
//! closes a connection that has no request in progress for the head timeout, measured
//! from the connection's start or its last response, as hyper's timer intends.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
// The watchdog's clock is tokio's, like the sleeps it waits on (under a paused test
// clock a std Instant would never catch up with them).
use tokio::time::Instant;

use super::admission::admit;
use super::commands::Outcome;
use super::handler;
use super::http::{Method, RequestHead, Response};
use super::metrics::Metrics;
use super::state::ServerState;
use super::wake_path::WokenPing;

/// Serves one connection (plain or TLS) with hyper until it closes or the server stops.
pub(crate) async fn serve_connection<S>(io: S, state: Arc<ServerState>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = state.shutdown.clone();
    let activity = Arc::new(Activity::new());
    let head_timeout = state.config.limits.head_timeout;
    let service_state = state.clone();
    let service_activity = activity.clone();
    let service = hyper::service::service_fn(move |request| {
        let state = service_state.clone();
        let busy = Busy::enter(service_activity.clone());
        async move {
            let response = respond(request, state).await;
            drop(busy);
            Ok::<_, Infallible>(response)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => {
            // hyper answers malformed or oversized heads (400, 431) and slow heads
            // itself, without the service: count them as the lean engine does.
            if served.is_err_and(|err| err.is_parse() || err.is_parse_too_large() || err.is_timeout()) {
                super::metrics::bump(&state.metrics.http_errors);
            }
        }
        () = activity.stalled(head_timeout, state.config.limits.idle_timeout) => {}
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// What the watchdog knows of a connection: requests in progress and when the last one
/// ended.
struct Activity {
    started: Instant,
    in_progress: AtomicUsize,
    last_done_ms: AtomicU64,
    /// A request has been served on the connection.
    served: AtomicBool,
    /// Signalled when a request ends.
    done: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            in_progress: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
            served: AtomicBool::new(false),
            done: Notify::new(),
        }
    }

    /// Completes once no request has been in progress for `head_timeout` since the
    /// connection opened, or for `idle_timeout` since its last response.
    async fn stalled(&self, head_timeout: Duration, idle_timeout: Duration) {
        loop {
            let timeout = match self.served.load(Ordering::Relaxed) {
                true => idle_timeout,
                false => head_timeout,
            };
            let idle_since =
                self.started + Duration::from_millis(self.last_done_ms.load(Ordering::Relaxed));
            tokio::time::sleep_until(idle_since + timeout).await;
            let idle_since =
                self.started + Duration::from_millis(self.last_done_ms.load(Ordering::Relaxed));
            if self.in_progress.load(Ordering::Relaxed) == 0 && idle_since.elapsed() >= timeout {
                return;
            }
            if self.in_progress.load(Ordering::Relaxed) > 0 {
                // A parked Ping: sleep until it ends rather than polling.
                self.done.notified().await;
            }
        }
    }
}

/// Marks a request in progress for as long as it lives.
struct Busy(Arc<Activity>);

impl Busy {
    fn enter(activity: Arc<Activity>) -> Self {
        activity.in_progress.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let elapsed = self.0.started.elapsed().as_millis() as u64;
        self.0.last_done_ms.store(elapsed, Ordering::Relaxed);
        self.0.served.store(true, Ordering::Relaxed);
        self.0.in_progress.fetch_sub(1, Ordering::Relaxed);
        self.0.done.notify_one();
    }
}

async fn respond(
    request: hyper::Request<Incoming>,
    state: Arc<ServerState>,
) -> hyper::Response<ResponseBody> {
    let (parts, body) = request.into_parts();
    let mut head = RequestHead::new(
        Method::parse(parts.method.as_str()),
        parts
            .uri
            .path_and_query()
            .map_or("/", |target| target.as_str()),
    );
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            head.set_header(name.as_str(), value);
        }
    }
    // Credentials and the body budget are checked on the head, as the lean engine does.
    // hyper has checked Content-Length strictly; without one the body is chunked.
    let Some(declared) = hyper::body::Body::size_hint(&body).exact() else {
        return to_hyper(Response::text(
            411,
            "send the body with Content-Length; chunked requests are not accepted",
        ));
    };
    let declared = usize::try_from(declared).unwrap_or(usize::MAX);
    let admitted = match admit(&state, &head, declared) {
        Ok(admitted) => admitted,
        Err(response) => return to_hyper(response),
    };
    let limits = &state.config.limits;
    let body = match tokio::time::timeout(limits.body_timeout, read_body(body, declared)).await {
        Ok(Ok(body)) => body,
        Ok(Err(response)) => return to_hyper(response),
        Err(_) => return to_hyper(Response::text(408, "the request body took too long")),
    };
    drop(admitted.permit);
    match handler::handle(&state, &head, &admitted.user, &body) {
        Outcome::Respond(response) => to_hyper(response),
        Outcome::Park(parked) => match parked.wait(std::future::pending()).await {
            Some(reply) => {
                let mut response = to_hyper(reply.response);
                if let Some(woken) = reply.woken {
                    response.body_mut().wake = Some((woken, state.metrics.clone()));
                }
                response
            }
            None => to_hyper(Response::new(500)),
        },
    }
}

/// Reads a body of the `declared` length into one buffer, copying each frame out as it
/// arrives (a collected body would keep every frame's whole read buffer alive: 4 KB per
/// byte for a client that drips one byte a segment).
async fn read_body(mut body: Incoming, declared: usize) -> Result<Vec<u8>, Response> {
    let mut bytes = Vec::with_capacity(declared);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Response::text(400, "the body ended early"))?;
        if let Some(data) = frame.data_ref() {
            if bytes.len() + data.len() > declared {
                return Err(Response::text(
                    400,
                    "the body is longer than its Content-Length",
                ));
            }
            bytes.extend_from_slice(data);
        }
    }
    Ok(bytes)
}

fn to_hyper(response: Response) -> hyper::Response<ResponseBody> {
    let mut builder = hyper::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(*name, value);
    }
    builder
        .body(ResponseBody::new(response.body))
        .unwrap_or_else(|_| hyper::Response::new(ResponseBody::new(Vec::new())))
}

/// A complete response body that, for a woken Ping, records the server-side wake
/// latency when hyper is done with it (it has taken the whole body, whose length it
/// knows, and drops it): the closest point to "response written" that hyper exposes.
pub(crate) struct ResponseBody {
    data: Option<Bytes>,
    wake: Option<(WokenPing, Arc<Metrics>)>,
}

impl ResponseBody {
    fn new(data: Vec<u8>) -> Self {
        Self {
            data: Some(Bytes::from(data)),
            wake: None,
        }
    }
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let body = self.get_mut();
        // The wake-up ends the instant the response is handed to the connection (a
        // body never handed over was never an answer).
        if let Some((woken, metrics)) = body.wake.take() {
            metrics
                .wake_path
                .record(&woken, std::time::Instant::now(), None);
        }
        let data = body.data.take().filter(|data| !data.is_empty());
        std::task::Poll::Ready(data.map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.as_ref().is_none_or(Bytes::is_empty)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |data| data.len() as u64))
    }
}
