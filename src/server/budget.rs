//! The server-wide budget of request body bytes in flight: every body a connection
//! buffers takes its share first and gives it back when the request is done with it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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
    pub fn reserve(self: &Arc<Self>, bytes: usize) -> Option<BodyPermit> {
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
