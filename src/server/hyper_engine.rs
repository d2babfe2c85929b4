//! The hyper connection engine: the same EAS handler behind stock hyper 1.x HTTP/1.1
//! with default settings (and tokio-rustls for TLS), as most production servers are
//! built. It exists so a run can show, side by side with the lean engine, what a
//! conventional stack costs per parked Ping. Like a stock server it does not notice a
//! client that disconnects while its Ping is parked.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::commands::Outcome;
use super::handler;
use super::http::{Method, RequestHead, Response};
use super::state::ServerState;

/// Serves one connection (plain or TLS) with hyper until it closes or the server stops.
pub async fn serve_connection<S>(io: S, state: Arc<ServerState>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = state.shutdown.clone();
    let service_state = state.clone();
    let service = hyper::service::service_fn(move |request| {
        let state = service_state.clone();
        async move { Ok::<_, Infallible>(respond(request, state).await) }
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

async fn respond(
    request: hyper::Request<Incoming>,
    state: Arc<ServerState>,
) -> hyper::Response<Full<Bytes>> {
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
    let limit = state.config.limits.max_body_bytes;
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let message = format!("request bodies are limited to {limit} bytes");
            return to_hyper(Response::text(413, &message));
        }
    };
    match handler::handle(&state, &head, &body) {
        Outcome::Respond(response) => to_hyper(response),
        Outcome::Park(parked) => match parked.wait(std::future::pending()).await {
            Some(reply) => {
                if let Some(notified_at) = reply.notified_at {
                    // hyper writes after this returns; the engine's figure includes
                    // everything up to handing the response to hyper.
                    state.metrics.record_wake(notified_at.elapsed());
                }
                to_hyper(reply.response)
            }
            None => to_hyper(Response::new(500)),
        },
    }
}

fn to_hyper(response: Response) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(*name, value);
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}
