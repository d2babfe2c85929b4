//! The parking registry's waiting side: a Ping that has been parked waits here for a
//! change, its heartbeat, a newer Ping, shutdown, or its client going away, and turns
//! the outcome into the Ping response.
//!
//! The registry itself is the `parked` slot of each device in the [`Store`]: whoever
//! takes the slot under the shard lock (a notification, a newer Ping, shutdown, or this
//! waiter at its deadline) decides the answer, so exactly one outcome wins every race.
//!
//! [`Store`]: super::store::Store

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;
use tokio::sync::oneshot;

use super::http::eas_response;
use super::http::Response;
use super::metrics::bump;
use super::state::ServerState;
use super::store::{Changes, ParkedSlot, Wake};
use super::wake_path::WokenPing;
use crate::eas::commands::ping::PingResponse;
use crate::eas::WbxmlBody;

/// A Ping parked at the server.
#[derive(Debug)]
pub struct ParkedPing {
    state: Arc<ServerState>,
    user: Arc<str>,
    device: Arc<str>,
    generation: u64,
    receiver: oneshot::Receiver<Wake>,
    deadline: tokio::time::Instant,
    accepts_gzip: bool,
    /// Set once an answer is produced; a Ping dropped before that lost its client.
    answered: bool,
}

/// The answer to a parked Ping and, for one a change woke, the wake's instants so far
/// (the engine records its path once the response is written).
#[derive(Debug)]
pub struct ParkedReply {
    pub response: Response,
    pub woken: Option<WokenPing>,
}

/// Creates a device's parked slot; the caller stores it under the shard lock.
pub(crate) fn new_slot(generation: u64) -> (ParkedSlot, oneshot::Receiver<Wake>) {
    let (waker, receiver) = oneshot::channel();
    (ParkedSlot { generation, waker }, receiver)
}

impl ParkedPing {
    pub fn new(
        state: Arc<ServerState>,
        user: Arc<str>,
        device: Arc<str>,
        generation: u64,
        receiver: oneshot::Receiver<Wake>,
        heartbeat_s: u32,
        accepts_gzip: bool,
    ) -> Self {
        state.metrics.parked.fetch_add(1, Ordering::Relaxed);
        let deadline =
            tokio::time::Instant::now() + std::time::Duration::from_secs(u64::from(heartbeat_s));
        Self {
            state,
            user,
            device,
            generation,
            receiver,
            deadline,
            accepts_gzip,
            answered: false,
        }
    }

    /// Waits for the outcome. `client_gone` completes when the engine sees the client
    /// disconnect; then `None` is returned and nothing is written (an engine that drops
    /// this future when its client leaves gets the same accounting). A change that woke
    /// this Ping just as its client left is not lost: it stays unsynced in the mailbox
    /// and the device's next Ping returns it at once.
    pub fn wait<G: Future<Output = ()>>(self, client_gone: G) -> ParkedWait<G> {
        let sleep = tokio::time::sleep_until(self.deadline);
        ParkedWait {
            parked: self,
            sleep,
            client_gone,
            expired: false,
        }
    }

    fn reply(&mut self, wake: Option<Wake>) -> ParkedReply {
        self.answered = true;
        let ran = Instant::now();
        let (ping, trace) = match wake {
            Some(Wake::Changes(changes)) => {
                let Changes { folders, trace } = *changes;
                (PingResponse::Changes { folders }, Some(trace))
            }
            Some(Wake::HierarchyChanged) => (PingResponse::FolderSyncRequired, None),
            Some(Wake::Superseded | Wake::Shutdown) | None => (PingResponse::Expired, None),
        };
        self.state.metrics.count_ping_status(ping.status());
        let response = eas_response(ping.encode(), self.accepts_gzip);
        ParkedReply {
            response,
            woken: trace.map(|trace| WokenPing {
                trace,
                ran,
                encoded: Instant::now(),
            }),
        }
    }

    /// Removes this Ping's slot if it is still there; true when it was.
    fn release(&self) -> bool {
        self.state.store.with_user(&self.user, |user| {
            user.existing_device(&self.device)
                .and_then(|device| device.take_parked(self.generation))
                .is_some()
        })
    }
}

pin_project! {
    /// The waiting of a parked Ping, written out by hand rather than as an `async fn`:
    /// it lives as long as the Ping is parked, and this layout holds only the Ping, its
    /// heartbeat timer and the engine's disconnect probe (an `async fn` doing the same
    /// measured twice the size).
    pub struct ParkedWait<G> {
        parked: ParkedPing,
        #[pin]
        sleep: tokio::time::Sleep,
        #[pin]
        client_gone: G,
        expired: bool,
    }
}

impl<G: Future<Output = ()>> Future for ParkedWait<G> {
    type Output = Option<ParkedReply>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let parked = this.parked;
        if let Poll::Ready(wake) = Pin::new(&mut parked.receiver).poll(cx) {
            return Poll::Ready(Some(parked.reply(wake.ok())));
        }
        if !*this.expired && this.sleep.poll(cx).is_ready() {
            *this.expired = true;
            if parked.release() {
                return Poll::Ready(Some(parked.reply(None)));
            }
            // Someone took the slot first; it sent its wake while holding the lock.
            if let Poll::Ready(wake) = Pin::new(&mut parked.receiver).poll(cx) {
                return Poll::Ready(Some(parked.reply(wake.ok())));
            }
        }
        if this.client_gone.poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl Drop for ParkedPing {
    fn drop(&mut self) {
        self.state.metrics.parked.fetch_sub(1, Ordering::Relaxed);
        self.release();
        if !self.answered {
            bump(&self.state.metrics.parked_released_on_disconnect);
        }
    }
}
