//! What a request must pass before either engine reads its body: its credentials,
//! checked on the head alone (a body from nobody is never buffered), and a share of the
//! server-wide budget of body bytes in flight (many large bodies at once get 503, not
//! the server's memory).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::http::{RequestHead, Response};
use super::state::ServerState;

/// Body bytes the server buffers at once, across every connection.
#[derive(Debug)]
pub struct BodyBudget {
    in_flight: AtomicUsize,
    limit: usize,
}

impl BodyBudget {
    pub fn new(limit: usize) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            limit,
        }
    }

    /// Bytes reserved now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Reserves `bytes`, or `None` when they do not fit.
    fn reserve(self: &Arc<Self>, bytes: usize) -> Option<BodyPermit> {
        let mut current = self.in_flight.load(Ordering::Relaxed);
        loop {
            let next = current
                .checked_add(bytes)
                .filter(|next| *next <= self.limit)?;
            match self.in_flight.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(BodyPermit {
                        budget: self.clone(),
                        bytes,
                    })
                }
                Err(actual) => current = actual,
            }
        }
    }
}

/// A share of the budget, given back when the request is done with its body.
#[derive(Debug)]
pub struct BodyPermit {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl Drop for BodyPermit {
    fn drop(&mut self) {
        self.budget
            .in_flight
            .fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Admits a request whose head declares `body_bytes`: its credentials must be good and
/// its body must fit the budget. The response to send instead (401, 413, 503) if not.
pub fn admit(
    state: &ServerState,
    head: &RequestHead,
    body_bytes: usize,
) -> Result<BodyPermit, Response> {
    super::handler::authenticate(state, head)?;
    let limit = state.config.limits.max_body_bytes;
    if body_bytes > limit {
        let message = format!("request bodies are limited to {limit} bytes");
        return Err(Response::text(413, &message));
    }
    state.body_budget.reserve(body_bytes).ok_or_else(|| {
        super::metrics::bump(&state.metrics.bodies_refused);
        Response::text(503, "too many request bodies at once; retry").header("Retry-After", "1")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = Arc::new(BodyBudget::new(100));
        let first = budget.reserve(60).unwrap();
        assert!(budget.reserve(50).is_none());
        let second = budget.reserve(40).unwrap();
        assert_eq!(budget.in_flight(), 100);
        drop(first);
        assert_eq!(budget.in_flight(), 40);
        drop(second);
        assert_eq!(budget.in_flight(), 0);
        assert!(budget.reserve(usize::MAX).is_none());
    }
}
