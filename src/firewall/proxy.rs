//! The userspace middlebox: every device connection is forwarded to the server as one
//! flow, and a flow idle for longer than the timeout is dealt with as a firewall or NAT
//! would deal with it:
//! - `rst`: both sides get a reset (a firewall that answers for a flow it forgot);
//! - `silent`: nothing is forwarded either way any more, both sockets stay open (the
//!   black hole of a carrier NAT: the device learns of it only at its own deadline);
//! - `half`: the server's bytes no longer reach the device, the device's still reach
//!   the server (a one-sided mapping loss).
//!
//! A flow table of bounded size evicts the least recently active flow for a new one,
//! with the same action (a CGNAT out of mappings). Bytes are forwarded without a
//! buffer per flow at rest: a chunk is read onto the stack and written on at once; only
//! what the other side cannot take yet is kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::stream_link::{Lane, StreamLink};
use crate::measure::latency::Latency;

/// What the middlebox does to a flow that has been idle too long (or is evicted).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum IdleAction {
    /// Reset both sides.
    Rst,
    /// Forward nothing either way; keep both sockets open.
    Silent,
    /// Drop only what the server sends to the device.
    Half,
}

impl IdleAction {
    /// The action as a plan says it: what happens to a flow idle too long.
    pub fn words(self) -> &'static str {
        match self {
            IdleAction::Rst => "reset both ways",
            IdleAction::Silent => "black-holed (both sockets kept open)",
            IdleAction::Half => "cut from server to device",
        }
    }
}

/// How the middlebox treats flows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rules {
    pub idle_timeout: Duration,
    /// Each flow's timeout is the idle timeout plus or minus up to this fraction of it.
    pub jitter: f64,
    pub action: IdleAction,
    /// Most flows at once; a new flow beyond evicts the least recently active one.
    pub flow_table: Option<usize>,
    /// The stream-level link each flow's bytes cross (nothing set: a plain relay).
    pub link: StreamLink,
}

/// Bytes of one read; the chunk is forwarded before the next read.
const CHUNK: usize = 16 * 1024;

/// What the middlebox counted.
#[derive(Debug, Default)]
pub(crate) struct ProxyCounters {
    pub flows_opened: AtomicU64,
    pub flows_closed: AtomicU64,
    pub upstream_refused: AtomicU64,
    pub idle_expired: AtomicU64,
    pub evicted: AtomicU64,
    pub bytes_to_server: AtomicU64,
    pub bytes_to_device: AtomicU64,
    /// Bytes that arrived for a flow after its action and were dropped.
    pub bytes_dropped: AtomicU64,
    /// The most flows in the table at once.
    pub peak_flows: AtomicU64,
    /// Flows dropped by a flush (every flow at once, as a NAT that restarts).
    pub flushed: AtomicU64,
    /// Connections the middlebox could not accept (out of descriptors).
    pub accept_failed: AtomicU64,
}

/// The middlebox's shared state: counters, the flow table, the forwarding delay.
#[derive(Debug, Default)]
pub(crate) struct Proxy {
    pub counters: ProxyCounters,
    table: Mutex<FlowTable>,
    /// Read-to-written time of each forwarded chunk.
    forwarding: Mutex<Latency>,
}

/// The live flows: when each was last active, and how to tell it it was evicted.
#[derive(Debug, Default)]
struct FlowTable {
    next_id: u64,
    flows: HashMap<u64, (Instant, Arc<Notify>)>,
}

impl Proxy {
    /// A copy of the forwarding-delay histogram.
    pub(crate) fn forwarding(&self) -> Latency {
        self.forwarding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Flows now in the table.
    pub(crate) fn flows_active(&self) -> usize {
        self.table().flows.len()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, FlowTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enters a flow, evicting the least recently active one if the table is full.
    fn enter(&self, limit: Option<usize>) -> (u64, Arc<Notify>) {
        let mut table = self.table();
        if let Some(limit) = limit {
            if table.flows.len() >= limit.max(1) {
                let oldest = table
                    .flows
                    .iter()
                    .min_by_key(|(_, (active, _))| *active)
                    .map(|(id, _)| *id);
                if let Some((_, evict)) = oldest.and_then(|id| table.flows.remove(&id)) {
                    self.counters.evicted.fetch_add(1, Ordering::Relaxed);
                    evict.notify_one();
                }
            }
        }
        table.next_id += 1;
        let id = table.next_id;
        let evict = Arc::new(Notify::new());
        table.flows.insert(id, (Instant::now(), evict.clone()));
        self.counters
            .peak_flows
            .fetch_max(table.flows.len() as u64, Ordering::Relaxed);
        (id, evict)
    }

    /// Drops every flow at once with the idle action (a NAT flushing its table).
    pub(crate) fn flush(&self) {
        let mut table = self.table();
        for (_, (_, evict)) in table.flows.drain() {
            self.counters.flushed.fetch_add(1, Ordering::Relaxed);
            evict.notify_one();
        }
    }

    fn touch(&self, id: u64) {
        if let Some((active, _)) = self.table().flows.get_mut(&id) {
            *active = Instant::now();
        }
    }

    fn leave(&self, id: u64) {
        self.table().flows.remove(&id);
    }
}

/// Accepts device connections on `listener` and forwards each to `upstream` under
/// `rules`, until the task is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    upstream: std::net::SocketAddr,
    rules: Rules,
    proxy: Arc<Proxy>,
    seed: u64,
) {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    loop {
        let Ok((device, _)) = listener.accept().await else {
            // Out of descriptors (or another transient failure): counted, and a pause
            // rather than a spin.
            proxy.counters.accept_failed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let jitter = match rules.jitter > 0.0 {
            true => rng.random_range(-rules.jitter..=rules.jitter),
            false => 0.0,
        };
        let timeout = rules.idle_timeout.mul_f64((1.0 + jitter).max(0.0));
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                proxy
                    .counters
                    .upstream_refused
                    .fetch_add(1, Ordering::Relaxed);
                let _ = device.set_zero_linger();
                return;
            };
            let _ = device.set_nodelay(true);
            let _ = server.set_nodelay(true);
            proxy.counters.flows_opened.fetch_add(1, Ordering::Relaxed);
            let (id, evicted) = proxy.enter(rules.flow_table);
            let lanes = rules.link.is_set().then(|| Lanes::new(&rules.link));
            let flow = Flow {
                device,
                server,
                proxy: &proxy,
                lanes,
            };
            flow.forward(timeout, rules.action, id, &evicted).await;
            proxy.leave(id);
            proxy.counters.flows_closed.fetch_add(1, Ordering::Relaxed);
        });
    }
}

/// Which directions still forward.
#[derive(Debug, Clone, Copy)]
struct Open {
    up: bool,
    down: bool,
}

/// Both directions of a flow on the stream-level link.
struct Lanes {
    up: Lane,
    down: Lane,
}

impl Lanes {
    fn new(link: &StreamLink) -> Self {
        Self {
            up: Lane::new(link.link_delay.0, link.link_up),
            down: Lane::new(link.link_delay.0, link.link_down),
        }
    }
}

/// One flow: its two sockets, and its lanes when the middlebox has a link.
struct Flow<'a> {
    device: TcpStream,
    server: TcpStream,
    proxy: &'a Proxy,
    lanes: Option<Lanes>,
}

impl Flow<'_> {
    /// Forwards until both sides have closed (or the flow was reset).
    async fn forward(mut self, timeout: Duration, action: IdleAction, id: u64, evicted: &Notify) {
        let mut open = Open {
            up: true,
            down: true,
        };
        // After the action, a dead direction's bytes are read and dropped: the sender
        // sees them go out, nobody receives them, and the flow ends once both sides
        // close.
        let mut acted = false;
        let mut last = Instant::now();
        loop {
            let (up_due, down_due) = match &self.lanes {
                Some(lanes) => (lanes.up.due(), lanes.down.due()),
                None => (None, None),
            };
            if !open.up && !open.down && up_due.is_none() && down_due.is_none() {
                return;
            }
            let room = |lane: fn(&Lanes) -> &Lane| {
                self.lanes
                    .as_ref()
                    .is_none_or(|lanes| lane(lanes).has_room())
            };
            let (up_room, down_room) = (room(|l| &l.up), room(|l| &l.down));
            let idle_at = last + timeout;
            let up_dead = acted && action == IdleAction::Silent;
            let down_dead = acted && action != IdleAction::Rst;
            let far = Instant::now() + Duration::from_secs(86_400);
            tokio::select! {
                ready = self.device.readable(), if open.up && up_room => {
                    if ready.is_err() { return; }
                    match self.read(true, up_dead).await {
                        Relay::Moved => { last = Instant::now(); self.proxy.touch(id); }
                        // The device gave up on a black-holed flow: its socket goes,
                        // the server's stays until the server closes it (it never
                        // learns).
                        Relay::Closed if up_dead => break,
                        Relay::Closed => {
                            open.up = false;
                            self.pass_close(true);
                        }
                        Relay::Failed => return,
                        Relay::Spurious => {}
                    }
                }
                ready = self.server.readable(), if open.down && down_room => {
                    if ready.is_err() { return; }
                    match self.read(false, down_dead).await {
                        Relay::Moved => { last = Instant::now(); self.proxy.touch(id); }
                        Relay::Closed => {
                            open.down = false;
                            if !down_dead { self.pass_close(false); }
                        }
                        Relay::Failed => return,
                        Relay::Spurious => {}
                    }
                }
                _ = tokio::time::sleep_until(up_due.unwrap_or(far)), if up_due.is_some() => {
                    if self.deliver(true).await.is_err() { return; }
                }
                _ = tokio::time::sleep_until(down_due.unwrap_or(far)), if down_due.is_some() => {
                    if self.deliver(false).await.is_err() { return; }
                }
                _ = tokio::time::sleep_until(idle_at), if !acted => {
                    self.proxy.counters.idle_expired.fetch_add(1, Ordering::Relaxed);
                    acted = true;
                    if self.act(action) { return; }
                }
                _ = evicted.notified(), if !acted => {
                    acted = true;
                    if self.act(action) { return; }
                }
            }
        }
        drop(self.device);
        if open.down {
            hold_until_closed(&self.server, self.proxy).await;
        }
    }

    /// One read of the device (`upward`) or the server: dropped when that direction is
    /// dead, onto its lane with a link, else written on at once.
    async fn read(&mut self, upward: bool, dead: bool) -> Relay {
        let (from, to) = match upward {
            true => (&self.device, &self.server),
            false => (&self.server, &self.device),
        };
        match (dead, &mut self.lanes) {
            (true, _) => drop_chunk(from, self.proxy),
            (false, None) => relay(from, to, self.proxy, upward).await,
            (false, Some(lanes)) => {
                let lane = match upward {
                    true => &mut lanes.up,
                    false => &mut lanes.down,
                };
                enqueue(from, lane, self.proxy, upward)
            }
        }
    }

    /// Passes a side's close on: at once without a link, behind its bytes with one.
    fn pass_close(&mut self, upward: bool) {
        match (&mut self.lanes, upward) {
            (Some(lanes), true) => lanes.up.push(Vec::new(), Instant::now()),
            (Some(lanes), false) => lanes.down.push(Vec::new(), Instant::now()),
            (None, true) => drop(shut_write(&self.server)),
            (None, false) => drop(shut_write(&self.device)),
        }
    }

    /// Writes the lane's first chunk, now due, to its side (an empty one is the close).
    async fn deliver(&mut self, upward: bool) -> std::io::Result<()> {
        let Some(lanes) = &mut self.lanes else {
            return Ok(());
        };
        let (lane, to) = match upward {
            true => (&mut lanes.up, &self.server),
            false => (&mut lanes.down, &self.device),
        };
        let Some((due, chunk)) = lane.pop() else {
            return Ok(());
        };
        if chunk.is_empty() {
            return shut_write(to);
        }
        write_rest(to, &chunk).await?;
        // What the middlebox adds beyond the link's own schedule.
        self.proxy
            .forwarding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(due.elapsed());
        Ok(())
    }

    /// Applies `action` (a dead direction's bytes in flight go with it); true when the
    /// flow is over.
    fn act(&mut self, action: IdleAction) -> bool {
        if let Some(lanes) = &mut self.lanes {
            let mut dropped = lanes.down.clear();
            if action == IdleAction::Silent {
                dropped += lanes.up.clear();
            }
            self.proxy
                .counters
                .bytes_dropped
                .fetch_add(dropped as u64, Ordering::Relaxed);
        }
        act(action, &self.device, &self.server)
    }
}

/// Reads and drops what the server still sends on a black-holed flow until it closes.
async fn hold_until_closed(server: &TcpStream, proxy: &Proxy) {
    while server.readable().await.is_ok() {
        if matches!(drop_chunk(server, proxy), Relay::Closed | Relay::Failed) {
            return;
        }
    }
}

/// Applies `action`; true when the flow is over.
fn act(action: IdleAction, device: &TcpStream, server: &TcpStream) -> bool {
    match action {
        IdleAction::Rst => {
            let _ = device.set_zero_linger();
            let _ = server.set_zero_linger();
            true
        }
        IdleAction::Silent | IdleAction::Half => false,
    }
}

/// Passes a close on: the other side gets a FIN (only while the flow forwards; a dead
/// direction's close is not passed on, as a black hole passes nothing).
fn shut_write(stream: &TcpStream) -> std::io::Result<()> {
    socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write)
}

/// What one read-and-forward step did.
enum Relay {
    Moved,
    Closed,
    Failed,
    /// Readiness without data.
    Spurious,
}

/// Reads one chunk from `from` and writes all of it to `to`, timing the forwarding.
async fn relay(from: &TcpStream, to: &TcpStream, proxy: &Proxy, upward: bool) -> Relay {
    let mut chunk = [0u8; CHUNK];
    let len = match from.try_read(&mut chunk) {
        Ok(0) => return Relay::Closed,
        Ok(len) => len,
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return Relay::Spurious,
        Err(_) => return Relay::Failed,
    };
    let read_at = std::time::Instant::now();
    // Counted before the write: the write wakes the reader at once, and whoever it is
    // (a test, the orchestrator) may ask for the report before this task runs again.
    // Bytes that then cannot be written are taken back.
    let counter = match upward {
        true => &proxy.counters.bytes_to_server,
        false => &proxy.counters.bytes_to_device,
    };
    counter.fetch_add(len as u64, Ordering::Relaxed);
    let written = match to.try_write(&chunk[..len]) {
        Ok(written) => written,
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(_) => {
            counter.fetch_sub(len as u64, Ordering::Relaxed);
            return Relay::Failed;
        }
    };
    if written < len {
        // Only what the other side cannot take yet is kept, until it can.
        let rest = chunk[written..len].to_vec();
        if write_rest(to, &rest).await.is_err() {
            counter.fetch_sub(rest.len() as u64, Ordering::Relaxed);
            return Relay::Failed;
        }
    }
    proxy
        .forwarding
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .record(read_at.elapsed());
    Relay::Moved
}

async fn write_rest(to: &TcpStream, mut rest: &[u8]) -> std::io::Result<()> {
    while !rest.is_empty() {
        to.writable().await?;
        match to.try_write(rest) {
            Ok(written) => rest = &rest[written..],
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Reads one chunk from `from` onto `lane`, where it waits for the link.
fn enqueue(from: &TcpStream, lane: &mut Lane, proxy: &Proxy, upward: bool) -> Relay {
    let mut chunk = [0u8; CHUNK];
    let len = match from.try_read(&mut chunk) {
        Ok(0) => return Relay::Closed,
        Ok(len) => len,
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return Relay::Spurious,
        Err(_) => return Relay::Failed,
    };
    let counter = match upward {
        true => &proxy.counters.bytes_to_server,
        false => &proxy.counters.bytes_to_device,
    };
    counter.fetch_add(len as u64, Ordering::Relaxed);
    lane.push(chunk[..len].to_vec(), Instant::now());
    Relay::Moved
}

/// Reads and drops one chunk (the `half` action's dead direction).
fn drop_chunk(from: &TcpStream, proxy: &Proxy) -> Relay {
    let mut chunk = [0u8; CHUNK];
    match from.try_read(&mut chunk) {
        Ok(0) => Relay::Closed,
        Ok(len) => {
            proxy
                .counters
                .bytes_dropped
                .fetch_add(len as u64, Ordering::Relaxed);
            Relay::Spurious
        }
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => Relay::Spurious,
        Err(_) => Relay::Failed,
    }
}
