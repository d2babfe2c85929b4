//! What a request must pass before either engine reads its body: its credentials,
//! checked on the head alone (a body from nobody is never buffered), and a share of the
//! server-wide budget of body bytes in flight (many large bodies at once get 503, not
//! the server's memory).

use super::budget::BodyPermit;
use super::http::{RequestHead, Response};
use super::state::ServerState;
use super::users::AuthResult;
use crate::eas::headers::BasicCredentials;

/// Basic auth on every request, OPTIONS included; both engines also call it on the head,
/// before they read a body.
pub(crate) fn authenticate(state: &ServerState, head: &RequestHead) -> Result<String, Response> {
    let unauthorized = |message: &str| {
        Response::text(401, message).header("WWW-Authenticate", "Basic realm=\"pingfleet\"")
    };
    let header = head
        .authorization
        .as_deref()
        .ok_or_else(|| unauthorized("credentials required"))?;
    let credentials =
        BasicCredentials::from_header(header).map_err(|err| unauthorized(&err.to_string()))?;
    match state
        .config
        .users
        .check(&credentials.user, &credentials.password)
    {
        AuthResult::Accepted => Ok(credentials.user),
        AuthResult::UnknownUser | AuthResult::WrongPassword => {
            Err(unauthorized("unknown user or wrong password"))
        }
    }
}

/// A request allowed to send its body: who sent it, and its share of the budget (held
/// while the body is read).
#[derive(Debug)]
pub(crate) struct Admitted {
    pub user: String,
    pub permit: BodyPermit,
}

/// Admits a request whose head declares `body_bytes`: its credentials must be good and
/// its body must fit the budget. The response to send instead (401, 413, 503) if not.
pub(crate) fn admit(
    state: &ServerState,
    head: &RequestHead,
    body_bytes: usize,
) -> Result<Admitted, Response> {
    let user = authenticate(state, head)?;
    let limit = state.config.limits.max_body_bytes;
    if body_bytes > limit {
        let message = format!("request bodies are limited to {limit} bytes");
        return Err(Response::text(413, &message));
    }
    let permit = state.body_budget.reserve(body_bytes).ok_or_else(|| {
        super::metrics::bump(&state.metrics.bodies_refused);
        Response::text(503, "too many request bodies at once; retry").header("Retry-After", "1")
    })?;
    Ok(Admitted { user, permit })
}
