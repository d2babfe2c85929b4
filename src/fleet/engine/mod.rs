//! The device engine: one mio event loop driving every device of a worker process.
//! Devices live in a vector indexed by their mio token; each has at most one
//! connection (boxed, so a device between connections costs no connection state) and
//! one timer in the [`TimerWheel`]; a connection's I/O is `conn`'s (TLS through rustls'
//! unbuffered client, so an idle connection holds no buffer). New devices start at a
//! token-bucket rate; the injector thread sends notifications open loop from its
//! schedule. The loop moves through the phases (ramp, hold, drain) in [`FleetEngine::run`];
//! `phases` holds how it moves and how it ends, `connection` each device's connection.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use super::churn::Churn;
use super::conn::{Conn, Cut};
use super::connect::Sources;
use super::delivery::SmsGateway;
use super::device::{Device, State};
use super::errors::DeviceError;
use super::injector::{Injected, InjectorConfig, InjectorThread};
use super::phase_clock::PhaseClock;
pub(crate) use super::phase_clock::RunEnd;
use super::stats::FleetStats;
use super::target::Target;
use super::tickets::TlsClients;
use super::timers::TimerWheel;
use crate::phase::Phase;

mod connection;
mod phases;

/// When a worker's hold phase begins.
#[derive(Debug, Clone)]
pub(crate) enum HoldStart {
    /// Once every device has parked (or given up), or at the ramp timeout.
    WhenSettled,
    /// As `WhenSettled`, and only once this flag is set (an orchestrator sets every
    /// worker's, by SIGUSR1, once all partitions report their devices parked).
    OnSignal(Arc<AtomicBool>),
    /// At this instant, whatever the ramp has reached (shards on several machines
    /// agreeing on a wall-clock time).
    At(Instant),
}

/// How often undelivered notifications are checked against their deadline.
const LOSS_SWEEP: Duration = Duration::from_secs(1);
/// Why a device never parked when nothing set it back: the run ended first.
const STILL_BOOTSTRAPPING: &str = "still bootstrapping when the run ended";

/// How a worker runs.
#[derive(Debug)]
pub(crate) struct FleetEngineConfig {
    pub targets: Vec<Target>,
    pub tls: Option<TlsClients>,
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
    /// When the hold starts.
    pub hold_start: HoldStart,
    /// After injection stops, the longest wait for undelivered notifications.
    pub drain: Duration,
    /// Added to a device's heartbeat before an undelivered notification is lost.
    pub grace: Duration,
    pub injector: Option<InjectorConfig>,
    /// Where connections come from: listed addresses in turn, or loopback sources of
    /// this worker's own for loopback targets (see [`super::connect`]).
    pub sources: Sources,
    /// The churn stage: connections dropped during the hold.
    pub churn: Option<Churn>,
    /// Print a [`Progress`] line on stdout every second.
    pub progress: bool,
    /// Set (by SIGUSR2) when the path in front of the server was flushed: from then
    /// on, each parked device is timed until it sends a Ping on a new connection.
    pub flush_mark: Option<Arc<AtomicBool>>,
    /// The simulated SMS gateway that wakes the devices that learn of mail by text.
    pub sms: SmsGateway,
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
    /// The path was flushed while the device was parked; it has not pinged on a new
    /// connection since.
    awaiting_repark: bool,
    /// Its Ping on a new connection is queued: it is parked again once the Ping is on
    /// the wire.
    repark_queued: bool,
    /// The target of its last connection (it holds a TLS ticket from there).
    last_target: Option<usize>,
}

/// The event loop and everything it drives.
pub(crate) struct FleetEngine {
    config: FleetEngineConfig,
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
    /// When the path was last flushed (see [`FleetEngineConfig::flush_mark`]).
    flushed_at: Option<Instant>,
    /// When the loop last came back from polling: a turn runs from there.
    turn_started: Instant,
    /// Timers due this turn (kept to reuse its allocation).
    due: Vec<(usize, Instant)>,
}

impl FleetEngine {
    pub(crate) fn new(
        config: FleetEngineConfig,
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
                awaiting_repark: false,
                repark_queued: false,
                last_target: None,
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
            flushed_at: None,
            turn_started: start,
            due: Vec::new(),
        })
    }

    /// Runs the ramp, hold and drain phases (or until `stop` is set); returns the stats.
    pub(crate) fn run(mut self, stop: Arc<AtomicBool>) -> io::Result<(FleetStats, RunEnd)> {
        let start = Instant::now();
        self.started_at = start;
        let mut events = Events::with_capacity(1024);
        let mut clock = PhaseClock::new(start);
        let mut injector = None;
        let mut last_sweep = start;
        let mut started = 0usize;
        let mut stopped_early = false;
        loop {
            let now = Instant::now();
            self.stats.intervals.tick(std::time::SystemTime::now());
            self.take_sent(injector.as_ref());
            if stop.load(Ordering::Relaxed) {
                stopped_early = true;
                break;
            }
            started = self.start_devices(start, now, started);
            self.note_flush(now);
            self.expire_timers(now);
            if now - last_sweep >= LOSS_SWEEP {
                last_sweep = now;
                self.sweep(now);
            }
            if !self.advance(&mut clock, &mut injector, now, &stop) {
                break;
            }
            self.poll_once(&mut events, started, clock.phase, injector.as_ref())?;
        }
        stop.store(true, Ordering::Relaxed);
        Ok(self.finish(clock, injector, stopped_early))
    }

    /// Counts every device's radio up to `now`, before a stage's counters are taken.
    fn settle_radios(&mut self, now: Instant) {
        for slot in &mut self.slots {
            slot.device.settle_radio(now, &mut self.stats);
        }
    }

    /// Fires every timer that is due.
    fn expire_timers(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        self.timers.expire(now, &mut due);
        for (token, _) in due.drain(..) {
            self.timer_fired(token, now);
        }
        self.due = due;
    }

    /// Once a second: the progress line, and notifications past their deadline lost.
    fn sweep(&mut self, now: Instant) {
        if self.config.progress {
            self.print_progress();
        }
        let grace = self.config.grace;
        for slot in &mut self.slots {
            slot.device.expire_lost(Some(now), grace, &mut self.stats);
        }
    }

    /// Waits for socket events (at most until the next timer) and handles them.
    fn poll_once(
        &mut self,
        events: &mut Events,
        started: usize,
        phase: Phase,
        injector: Option<&InjectorThread>,
    ) -> io::Result<()> {
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
        if phase != Phase::Ramp {
            self.stats.record_loop_lag(self.turn_started.elapsed());
        }
        match self.poll.poll(events, Some(timeout)) {
            // A signal (the stop request among them) interrupted the wait.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => events.clear(),
            other => other?,
        }
        // A turn runs from the return of one poll to the next poll.
        self.turn_started = Instant::now();
        let now = self.turn_started;
        // Notifications sent while polling must reach their devices before the
        // responses they cause are read.
        self.take_sent(injector);
        for event in events.iter() {
            self.ready(
                event.token().0,
                event.is_readable() || event.is_read_closed(),
                now,
            );
        }
        Ok(())
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
            self.cut(token, Cut(None), now);
        }
    }

    /// Hands every notification the injector has sent to its device.
    fn take_sent(&mut self, injector: Option<&InjectorThread>) {
        if let Some(thread) = injector {
            self.hand_over(thread.take_sent());
        }
    }

    fn hand_over(&mut self, injected: Injected) {
        self.notified += injected.planned.len() as u64;
        for note in injected.planned {
            let Some(slot) = self.slots.get_mut(note.device) else {
                continue;
            };
            slot.device
                .notified_folder_planned(note.seq, note.planned, note.stamped);
            if slot.device.learns_by_text() {
                self.send_text(note.device, note.seq, note.planned);
            }
        }
        for departure in injected.departed {
            if let Some(slot) = self.slots.get_mut(departure.device) {
                slot.device
                    .notification_departed(departure.seq, departure.at, &mut self.stats);
            }
        }
    }

    /// The server hands notification `seq`'s notice to the SMS gateway as its mail
    /// arrives (`planned`); the gateway texts the device after its delay, or loses it.
    fn send_text(&mut self, token: usize, seq: u64, planned: Instant) {
        let text = self.config.sms.text(seq);
        self.stats.counters.sms_sent += 1;
        self.stats.counters.sms_lost += u64::from(text.is_none());
        let arrives = text.map(|delay| planned + delay);
        if let Some(action) = self.slots[token].device.text_for(seq, arrives) {
            self.apply(token, action, self.turn_started);
        }
    }

    /// Starts as many devices as the token bucket allows, keeping at most
    /// `max_bootstrapping` of them between their start and their first Ping: a ramp
    /// faster than the machine then goes at the machine's pace, where unbounded it
    /// would pile up connections whose exchanges time out and are retried.
    fn start_devices(&mut self, start: Instant, now: Instant, started: usize) -> usize {
        let allowed =
            ((now - start).as_secs_f64() * self.config.connect_rate_per_s).ceil() as usize + 1;
        let settled = self.bootstrapped + self.stopped;
        let allowed = allowed.min(settled + self.config.max_bootstrapping.max(1));
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
        let action = if slot.device.state() == State::Idle {
            // Not a deadline: the idle device's next sync, or its text, is due.
            self.slots[token].device.on_idle_timer(now, &mut self.stats)
        } else if slot.conn.is_some() {
            // The response deadline passed: the connection is presumed cut.
            self.close(token);
            self.slots[token].device.on_disconnect(
                now,
                &mut self.stats,
                Some(DeviceError::DeadlinePassed),
            )
        } else {
            self.slots[token]
                .device
                .on_reconnected(now, &mut self.stats)
        };
        self.apply(token, action, now);
    }
}
