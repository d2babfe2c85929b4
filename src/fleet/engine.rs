//! The device engine: one mio event loop driving every device of a worker process.
//! Devices live in a vector indexed by their mio token; each has at most one
//! connection (boxed, so a device between connections costs no connection state) and
//! one timer in the [`TimerWheel`]. TLS is rustls' unbuffered client through
//! [`TlsSession`], so an idle connection holds no buffer. New devices start at a
//! token-bucket rate; the injector sends notifications open loop from its schedule.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::client::UnbufferedClientConnection;
use rustls_pki_types::ServerName;

use super::churn::Churn;
use super::connect::{loopback_source, open};
use super::device::{Action, Device};
use super::http::ResponseReader;
use super::injector::Schedule;
use super::stats::{tally, Counters, FleetStats, Progress};
use super::target::Target;
use super::timers::TimerWheel;
use crate::notification::Notification;
use crate::partition::partition_of;
use crate::tls_session::{Step, TlsSession, Want};

const READ_CHUNK: usize = 16 * 1024;
/// How often undelivered notifications are checked against their deadline.
const LOSS_SWEEP: Duration = Duration::from_secs(1);

/// Where notifications go and what they say.
#[derive(Debug)]
pub struct InjectorConfig {
    pub schedule: Schedule,
    /// The UDP address of each server partition, in partition order.
    pub notify: Vec<SocketAddr>,
    /// When to start injecting, after the hold phase starts.
    pub start_after: Duration,
}

/// How a worker runs.
#[derive(Debug)]
pub struct EngineConfig {
    pub targets: Vec<Target>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub connect_rate_per_s: f64,
    /// The most devices bootstrapping at once: bounds the work in flight during the ramp
    /// (connections opening, TLS handshakes, bootstrap exchanges), so a fast ramp does
    /// not turn into a connect storm against the server.
    pub max_bootstrapping: usize,
    /// The longest the ramp-up may take: the hold phase starts when every device has
    /// bootstrapped (or given up), or at this point at the latest.
    pub ramp_timeout: Duration,
    /// The hold phase: devices parked, notifications injected.
    pub duration: Duration,
    /// When set, the hold waits for this flag too (an orchestrator starts every
    /// worker's hold together once all partitions report their devices parked).
    pub hold_gate: Option<Arc<AtomicBool>>,
    /// After injection stops, the longest wait for undelivered notifications.
    pub drain: Duration,
    /// Added to a device's heartbeat before an undelivered notification is lost.
    pub grace: Duration,
    pub injector: Option<InjectorConfig>,
    /// This worker's shard number: connections to loopback targets then come from
    /// loopback source addresses of the shard's own (see [`super::connect`]).
    pub shard: u32,
    /// The churn stage: connections dropped during the hold.
    pub churn: Option<Churn>,
    /// Print a [`Progress`] line on stdout every second.
    pub progress: bool,
}

/// One device and its connection.
struct Slot {
    device: Device,
    target: usize,
    conn: Option<Box<Conn>>,
    /// Request bytes waiting for the connection.
    outbox: Vec<u8>,
    stopped: bool,
    /// The device has sent its first Ping (its bootstrap is done).
    bootstrapped: bool,
}

/// One open connection.
struct Conn {
    stream: TcpStream,
    /// Boxed: a plain connection must not carry a TLS session's size.
    tls: Option<Box<TlsSession<UnbufferedClientConnection>>>,
    reader: ResponseReader,
    /// Bytes to write on the socket (ciphertext with TLS), from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    connecting: bool,
    opened_at: Instant,
    handshake_started: Option<Instant>,
}

/// What a run ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    /// Devices with a Ping outstanding when the run ended (a snapshot: a device busy
    /// syncing after a wake-up is not counted).
    pub devices_parked: usize,
    /// Devices that finished their bootstrap and sent a Ping at least once.
    pub devices_bootstrapped: usize,
    pub undelivered_at_end: usize,
    /// From the start until every device had sent its first Ping, if all did.
    pub bootstrap_all: Option<Duration>,
    /// What was counted in each phase that ran (ramp, hold, drain), in order.
    pub stages: Vec<StageCounts>,
}

/// The counters of one phase of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageCounts {
    pub name: &'static str,
    pub duration: Duration,
    pub counters: Counters,
}

/// Snapshots of the counters where the phases change.
#[derive(Default)]
struct StageMarks {
    hold_started: Option<(Instant, Counters)>,
    hold_ended: Option<(Instant, Counters)>,
}

impl StageMarks {
    /// The counters of each phase, given the run's start, its end and its final counts;
    /// `injected` (the injector thread's own counts) belongs to the hold.
    fn split(
        self,
        start: Instant,
        end: Instant,
        last: &Counters,
        injected: &Counters,
    ) -> Vec<StageCounts> {
        // The phase changes that happened, between the start and the end.
        let marks: Vec<(Instant, Counters)> = std::iter::once((start, Counters::default()))
            .chain(self.hold_started)
            .chain(self.hold_ended)
            .chain(std::iter::once((end, last.clone())))
            .collect();
        marks
            .windows(2)
            .zip(["ramp", "hold", "drain"])
            .map(|(pair, name)| {
                let mut counters = pair[1].1.since(&pair[0].1);
                if name == "hold" {
                    counters.add(injected);
                }
                StageCounts {
                    name,
                    duration: pair[1].0 - pair[0].0,
                    counters,
                }
            })
            .collect()
    }
}

/// The event loop and everything it drives.
pub struct Engine {
    config: EngineConfig,
    poll: Poll,
    slots: Vec<Slot>,
    timers: TimerWheel,
    stats: FleetStats,
    bootstrapped: usize,
    stopped: usize,
    /// Notifications the injector has handed over so far.
    notified: u64,
    started_at: Instant,
    bootstrap_all: Option<Duration>,
}

/// A notification the injector thread has sent, for the engine to hand to its device.
#[derive(Debug, Clone, Copy)]
struct Sent {
    device: usize,
    seq: u64,
    planned: Instant,
}

/// Sends notifications at their planned instants on a thread of its own, so their
/// timing does not depend on the event loop's millisecond poll timeouts. Each one is
/// queued for the engine before its datagram leaves, so the engine knows of it before
/// the server can answer it.
fn run_injector(
    injector: InjectorConfig,
    // Each device's user and the folder its notifications name.
    users: Vec<(String, String)>,
    inject_from: Instant,
    inject_until: Instant,
    queue: Arc<Mutex<Vec<Sent>>>,
    stop: Arc<AtomicBool>,
) -> io::Result<FleetStats> {
    let udp = UdpSocket::bind("0.0.0.0:0")?;
    // Linux lets a sleeping thread wake up to 50 us late by default (timer slack), all
    // of which would count as injector lag; this thread asks for exact wake-ups.
    let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
    let mut stats = FleetStats::default();
    for planned in injector.schedule {
        let planned_at = inject_from + planned.offset;
        if planned_at >= inject_until || stop.load(Ordering::Relaxed) {
            break;
        }
        let wait = planned_at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let Some((user, folder)) = users.get(planned.device) else {
            continue;
        };
        let partition = partition_of(user, injector.notify.len() as u32) as usize;
        let mut notification = Notification::new_item(user.clone(), folder.clone());
        notification.seq = Some(planned.seq);
        queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Sent {
                device: planned.device,
                seq: planned.seq,
                planned: planned_at,
            });
        match udp.send_to(
            notification.to_string().as_bytes(),
            injector.notify[partition],
        ) {
            Ok(_) => stats.counters.notifications_sent += 1,
            Err(_) => tally(&mut stats.counters.errors, "notification send failed"),
        }
        stats
            .injector_lag
            .record(Instant::now().saturating_duration_since(planned_at));
    }
    Ok(stats)
}

impl Engine {
    pub fn new(
        config: EngineConfig,
        devices: Vec<Device>,
        targets_of: impl Fn(usize) -> usize,
    ) -> io::Result<Self> {
        let start = Instant::now();
        let slots = devices
            .into_iter()
            .enumerate()
            .map(|(index, device)| Slot {
                device,
                target: targets_of(index),
                conn: None,
                outbox: Vec::new(),
                stopped: false,
                bootstrapped: false,
            })
            .collect::<Vec<_>>();
        Ok(Self {
            timers: TimerWheel::new(slots.len(), start),
            poll: Poll::new()?,
            slots,
            config,
            stats: FleetStats::default(),
            bootstrapped: 0,
            stopped: 0,
            notified: 0,
            started_at: start,
            bootstrap_all: None,
        })
    }

    /// Runs the ramp, hold and drain phases (or until `stop` is set); returns the stats.
    pub fn run(mut self, stop: Arc<AtomicBool>) -> io::Result<(FleetStats, RunEnd)> {
        let start = Instant::now();
        self.started_at = start;
        let mut events = Events::with_capacity(1024);
        // When the loop last came back from polling: a turn runs from there (the events
        // it returned) to the next poll.
        let mut turn = Instant::now();
        let mut due = Vec::new();
        let mut started = 0usize;
        let queue = Arc::new(Mutex::new(Vec::new()));
        let mut injector_config = self.config.injector.take();
        let mut injector = None;
        let mut hold: Option<(Instant, Instant)> = None;
        let mut marks = StageMarks::default();
        let mut last_sweep = start;
        loop {
            let now = Instant::now();
            self.take_sent(&queue);
            if stop.load(Ordering::Relaxed) {
                break;
            }
            started = self.start_devices(start, now, started);
            due.clear();
            self.timers.expire(now, &mut due);
            for (token, _) in due.drain(..) {
                self.timer_fired(token, now);
            }
            if now - last_sweep >= LOSS_SWEEP {
                last_sweep = now;
                if self.config.progress {
                    self.print_progress();
                }
                let grace = self.config.grace;
                for slot in &mut self.slots {
                    slot.device.expire_lost(Some(now), grace, &mut self.stats);
                }
            }
            let settled = self.bootstrapped + self.stopped >= self.slots.len();
            let released = self
                .config
                .hold_gate
                .as_ref()
                .is_none_or(|gate| gate.load(Ordering::Relaxed));
            if hold.is_none() && ((settled && released) || now >= start + self.config.ramp_timeout)
            {
                let until = now + self.config.duration;
                hold = Some((now, until));
                marks.hold_started = Some((now, self.stats.counters.clone()));
                injector = injector_config.take().map(|config| {
                    let users = self
                        .slots
                        .iter()
                        .map(|slot| {
                            let device = &slot.device;
                            (device.user.clone(), device.notified_folder().to_owned())
                        })
                        .collect();
                    let from = now + config.start_after;
                    let (queue, stop) = (queue.clone(), stop.clone());
                    std::thread::spawn(move || {
                        run_injector(config, users, from, until, queue, stop)
                    })
                });
            }
            if hold.is_some_and(|(_, until)| now < until) {
                self.churn(now);
            }
            if let Some((_, until)) = hold.filter(|(_, until)| now >= *until) {
                if marks.hold_ended.is_none() {
                    marks.hold_ended = Some((now, self.stats.counters.clone()));
                }
                // Drain: until the injector has sent its last notification and every
                // notified item has reached its device. Counted only once the hold is
                // over, not on every turn of it.
                let injecting = injector
                    .as_ref()
                    .is_some_and(|thread| !thread.is_finished());
                let settled =
                    !injecting && self.slots.iter().all(|slot| slot.device.outstanding() == 0);
                if settled || now >= until + self.config.drain {
                    break;
                }
            }
            let mut timeout = Duration::from_millis(100);
            if started < self.slots.len() {
                timeout = Duration::from_millis(1);
            }
            if !self.timers.is_empty() {
                timeout = timeout.min(TimerWheel::tick());
            }
            // The loop's own lag: a turn's work (the events the last poll returned, then
            // timers, notifications and phase checks) delays every event that arrives
            // meanwhile. Counted in the hold only, where latencies are measured; the
            // ramp's handshakes would say nothing about the figures it vouches for.
            if hold.is_some() {
                self.stats.loop_lag.record(turn.elapsed());
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                // A signal (the stop request among them) interrupted the wait.
                Err(err) if err.kind() == io::ErrorKind::Interrupted => events.clear(),
                other => other?,
            }
            turn = Instant::now();
            let now = turn;
            // Notifications sent while polling must reach their devices before the
            // responses they cause are read.
            self.take_sent(&queue);
            for event in events.iter() {
                self.ready(
                    event.token().0,
                    event.is_readable() || event.is_read_closed(),
                    now,
                );
            }
        }
        stop.store(true, Ordering::Relaxed);
        let ended = Instant::now();
        let mut injected_counters = Counters::default();
        if let Some(Ok(Ok(injected))) = injector.map(std::thread::JoinHandle::join) {
            injected_counters = injected.counters;
            self.stats.injector_lag.merge(&injected.injector_lag);
        }
        self.take_sent(&queue);
        let end = RunEnd {
            devices_parked: self
                .slots
                .iter()
                .filter(|slot| {
                    slot.device.state() == super::device::State::Parked && slot.conn.is_some()
                })
                .count(),
            undelivered_at_end: self
                .slots
                .iter()
                .map(|slot| slot.device.undelivered())
                .sum(),
            bootstrap_all: self.bootstrap_all,
            devices_bootstrapped: self.bootstrapped,
            stages: Vec::new(),
        };
        for slot in &mut self.slots {
            slot.device
                .expire_lost(None, Duration::ZERO, &mut self.stats);
        }
        let stages = marks.split(start, ended, &self.stats.counters, &injected_counters);
        self.stats.counters.add(&injected_counters);
        Ok((self.stats, RunEnd { stages, ..end }))
    }

    /// One [`Progress`] line on stdout.
    fn print_progress(&self) {
        let counters = &self.stats.counters;
        let wakeups = self.stats.wakeup.histogram();
        let progress = Progress {
            bootstrapped: self.bootstrapped,
            notified: self.notified,
            delivered: counters.notifications_delivered,
            lost: counters.notifications_lost,
            wakeup_p99_us: wakeups.value_at_quantile(0.99),
        };
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{}", progress.to_line());
        let _ = stdout.flush();
    }

    /// Drops the connections the churn stage asks for; their devices reconnect.
    fn churn(&mut self, now: Instant) {
        let Some(mut churn) = self.config.churn.take() else {
            return;
        };
        let slots = &self.slots;
        let drops = churn.due(now, slots.len(), |token| slots[token].conn.is_some());
        self.config.churn = Some(churn);
        for token in drops {
            self.stats.counters.churn_drops += 1;
            self.lost(token, now);
        }
    }

    /// Hands every notification the injector has sent to its device.
    fn take_sent(&mut self, queue: &Mutex<Vec<Sent>>) {
        let sent = std::mem::take(&mut *queue.lock().unwrap_or_else(PoisonError::into_inner));
        self.notified += sent.len() as u64;
        for note in sent {
            if let Some(slot) = self.slots.get_mut(note.device) {
                slot.device.notified_folder_planned(note.seq, note.planned);
            }
        }
    }

    /// Starts as many devices as the token bucket allows.
    fn start_devices(&mut self, start: Instant, now: Instant, started: usize) -> usize {
        let allowed =
            ((now - start).as_secs_f64() * self.config.connect_rate_per_s).ceil() as usize + 1;
        let mut started = started;
        while started < self.slots.len() && started < allowed {
            let action = self.slots[started].device.start(now, &mut self.stats);
            self.apply(started, action, now);
            started += 1;
        }
        started
    }

    fn timer_fired(&mut self, token: usize, now: Instant) {
        let slot = &mut self.slots[token];
        if slot.stopped {
            return;
        }
        let action = if slot.conn.is_some() {
            // The response deadline passed: the connection is presumed cut.
            tally(&mut self.stats.counters.errors, "response deadline passed");
            self.close(token);
            self.slots[token].device.on_disconnect(now, &mut self.stats)
        } else {
            self.slots[token]
                .device
                .on_reconnected(now, &mut self.stats)
        };
        self.apply(token, action, now);
    }

    fn apply(&mut self, token: usize, action: Action, now: Instant) {
        match action {
            Action::Send { bytes, deadline } => {
                self.timers.set(token, deadline);
                let devices = self.slots.len();
                let slot = &mut self.slots[token];
                if !slot.bootstrapped && slot.device.state() == super::device::State::Parked {
                    slot.bootstrapped = true;
                    self.bootstrapped += 1;
                    if self.bootstrapped == devices {
                        self.bootstrap_all = Some(now - self.started_at);
                    }
                }
                slot.outbox = bytes;
                if slot.conn.is_none() {
                    self.connect(token, now);
                } else {
                    self.flush_outbox(token, now);
                }
            }
            Action::Reconnect { at } => {
                self.close(token);
                self.timers.set(token, at);
            }
            Action::Redirect { location, at } => {
                self.close(token);
                match Target::parse(&location) {
                    Ok(target) => {
                        let index = match self
                            .config
                            .targets
                            .iter()
                            .position(|known| known.addr == target.addr)
                        {
                            Some(index) => index,
                            None => {
                                self.config.targets.push(target);
                                self.config.targets.len() - 1
                            }
                        };
                        self.slots[token].target = index;
                    }
                    Err(_) => tally(&mut self.stats.counters.errors, "bad redirect location"),
                }
                self.timers.set(token, at);
            }
            Action::Stop => {
                self.close(token);
                self.timers.cancel(token);
                if !self.slots[token].stopped {
                    self.slots[token].stopped = true;
                    self.stopped += 1;
                }
            }
        }
    }

    fn connect(&mut self, token: usize, now: Instant) {
        let target = &self.config.targets[self.slots[token].target];
        let tls = match (&self.config.tls, target.tls) {
            (Some(config), true) => match ServerName::try_from(target.host.clone())
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))
                .and_then(|name| {
                    UnbufferedClientConnection::new(config.clone(), name)
                        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
                }) {
                Ok(conn) => Some(Box::new(TlsSession::new(conn))),
                Err(_) => {
                    tally(&mut self.stats.counters.errors, "TLS set-up failed");
                    return self.lost(token, now);
                }
            },
            _ => None,
        };
        let source = target
            .addr
            .ip()
            .is_loopback()
            .then(|| loopback_source(self.config.shard, token));
        let stream = match open(target.addr, source) {
            Ok(stream) => stream,
            Err(err) => {
                tally(
                    &mut self.stats.counters.errors,
                    format!("connect: {}", err.kind()),
                );
                return self.lost(token, now);
            }
        };
        let mut conn = Box::new(Conn {
            stream,
            tls,
            reader: ResponseReader::default(),
            out: Vec::new(),
            out_pos: 0,
            connecting: true,
            opened_at: now,
            handshake_started: None,
        });
        if let Err(err) = self.poll.registry().register(
            &mut conn.stream,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            tally(
                &mut self.stats.counters.errors,
                format!("register: {}", err.kind()),
            );
            return self.lost(token, now);
        }
        self.stats.counters.connections_opened += 1;
        self.slots[token].conn = Some(conn);
    }

    /// The connection failed: close it and let the device decide.
    fn lost(&mut self, token: usize, now: Instant) {
        self.close(token);
        let action = self.slots[token].device.on_disconnect(now, &mut self.stats);
        self.apply(token, action, now);
    }

    fn close(&mut self, token: usize) {
        if let Some(mut conn) = self.slots[token].conn.take() {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }

    /// A socket event for `token`.
    fn ready(&mut self, token: usize, readable: bool, now: Instant) {
        let Some(conn) = self
            .slots
            .get_mut(token)
            .and_then(|slot| slot.conn.as_mut())
        else {
            return;
        };
        if conn.connecting {
            match conn.stream.peer_addr() {
                Ok(_) => {
                    conn.connecting = false;
                    let _ = conn.stream.set_nodelay(true);
                    self.stats.connect.record(now - conn.opened_at);
                    if let Some(tls) = conn.tls.as_mut() {
                        conn.handshake_started = Some(now);
                        if tls.step(Want::Read).is_err() {
                            return self.lost(token, now);
                        }
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::NotConnected => {
                    if let Ok(Some(_)) | Err(_) = conn.stream.take_error() {
                        tally(&mut self.stats.counters.errors, "connect refused");
                        return self.lost(token, now);
                    }
                    return;
                }
                Err(_) => return self.lost(token, now),
            }
        }
        if readable && !self.read(token, now) {
            return;
        }
        self.flush_outbox(token, now);
    }

    /// Reads everything available and hands complete responses to the device. False
    /// when the connection is gone.
    fn read(&mut self, token: usize, now: Instant) -> bool {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            let Some(conn) = self.slots[token].conn.as_mut() else {
                return false;
            };
            match conn.stream.read(&mut chunk) {
                Ok(0) => {
                    self.lost(token, now);
                    return false;
                }
                Ok(read) => {
                    self.stats.counters.bytes_received += read as u64;
                    if !self.received(token, &chunk[..read], now) {
                        return false;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return true,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.lost(token, now);
                    return false;
                }
            }
        }
    }

    /// Feeds received bytes through TLS (if any) and the response reader.
    fn received(&mut self, token: usize, bytes: &[u8], now: Instant) -> bool {
        let Some(conn) = self.slots[token].conn.as_mut() else {
            return false;
        };
        match conn.tls.as_mut() {
            None => conn.reader.feed(bytes),
            Some(tls) => {
                tls.received(bytes);
                let was_handshaking = tls.is_handshaking();
                match tls.step(Want::Read) {
                    Ok(Step::Closed) | Err(_) => {
                        tally(&mut self.stats.counters.errors, "TLS failure");
                        self.lost(token, now);
                        return false;
                    }
                    Ok(_) => {}
                }
                if was_handshaking && !tls.is_handshaking() {
                    self.stats.counters.tls_handshakes += 1;
                    if let Some(started) = conn.handshake_started {
                        self.stats.tls_handshake.record(now - started);
                    }
                }
                let plaintext = tls.take_plaintext();
                conn.reader.feed(&plaintext);
            }
        }
        loop {
            let Some(conn) = self.slots[token].conn.as_mut() else {
                return false;
            };
            let response = match conn.reader.next_response() {
                Ok(Some(response)) => response,
                Ok(None) => return true,
                Err(err) => {
                    tally(
                        &mut self.stats.counters.errors,
                        format!("bad response: {err}"),
                    );
                    self.lost(token, now);
                    return false;
                }
            };
            if response.closes {
                self.close(token);
            }
            self.timers.cancel(token);
            let action = self.slots[token]
                .device
                .on_response(response, now, &mut self.stats);
            self.apply(token, action, now);
            if self.slots[token].conn.is_none() {
                return false;
            }
        }
    }

    /// Moves the outbox into the connection (encrypting it with TLS) and writes.
    fn flush_outbox(&mut self, token: usize, now: Instant) {
        let slot = &mut self.slots[token];
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        if conn.connecting {
            return;
        }
        match conn.tls.as_mut() {
            None => {
                if !slot.outbox.is_empty() {
                    let outbox = std::mem::take(&mut slot.outbox);
                    if conn.out_pos >= conn.out.len() {
                        conn.out = outbox;
                        conn.out_pos = 0;
                    } else {
                        conn.out.extend_from_slice(&outbox);
                    }
                }
            }
            Some(tls) => {
                if !tls.is_handshaking() && !slot.outbox.is_empty() {
                    let outbox = std::mem::take(&mut slot.outbox);
                    if tls.step(Want::Write(&outbox)).is_err() {
                        return self.lost(token, now);
                    }
                }
                conn.out.extend_from_slice(tls.outgoing());
                let count = tls.outgoing().len();
                tls.sent(count);
            }
        }
        while conn.out_pos < conn.out.len() {
            match conn.stream.write(&conn.out[conn.out_pos..]) {
                Ok(written) => {
                    conn.out_pos += written;
                    self.stats.counters.bytes_sent += written as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.lost(token, now),
            }
        }
        conn.out = Vec::new();
        conn.out_pos = 0;
    }
}
