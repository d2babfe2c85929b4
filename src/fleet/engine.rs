//! The device engine: one mio event loop driving every device of a worker process.
//! Devices live in a vector indexed by their mio token; each has at most one
//! connection (boxed, so a device between connections costs no connection state) and
//! one timer in the [`TimerWheel`]; a connection's I/O is `conn`'s (TLS through rustls'
//! unbuffered client, so an idle connection holds no buffer). New devices start at a
//! token-bucket rate; the injector thread sends notifications open loop from its
//! schedule. The loop moves through the phases (ramp, hold, drain) in [`Engine::run`].

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::churn::Churn;
use super::conn::{Conn, Cut};
use super::connect::Sources;
use super::device::{Action, Device};
use super::errors::DeviceError;
use super::injector::{InjectorConfig, InjectorThread, Sent};
use super::phase_clock::PhaseClock;
pub use super::phase_clock::{RunEnd, StageCounts};
use super::stats::{tally, tally_seen, FleetStats, Progress};
use super::target::Target;
use super::tickets::{TicketUse, TlsClients};
use super::timers::TimerWheel;
use crate::phase::Phase;

/// When a worker's hold phase begins.
#[derive(Debug, Clone)]
pub enum HoldStart {
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
pub struct EngineConfig {
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
    /// When the path was last flushed (see [`EngineConfig::flush_mark`]).
    flushed_at: Option<Instant>,
    /// When the loop last came back from polling: a turn runs from there.
    turn_started: Instant,
    /// Timers due this turn (kept to reuse its allocation).
    due: Vec<(usize, Instant)>,
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
    pub fn run(mut self, stop: Arc<AtomicBool>) -> io::Result<(FleetStats, RunEnd)> {
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

    /// When the path was flushed: every parked device awaits its re-parking.
    fn note_flush(&mut self, now: Instant) {
        let flushed = self.config.flush_mark.as_ref().is_some_and(|mark| {
            // Read first: the swap's write is for the one turn that finds it set.
            mark.load(Ordering::Relaxed) && mark.swap(false, Ordering::Relaxed)
        });
        if !flushed {
            return;
        }
        self.flushed_at = Some(now);
        self.stats.after_flush.since = Some(now);
        for slot in self
            .slots
            .iter_mut()
            .filter(|slot| slot.bootstrapped && !slot.stopped)
        {
            slot.awaiting_repark = true;
            slot.device.path_flushed(now);
            self.stats.counters.flush_marked += 1;
        }
    }

    /// Notes a device's first Ping after a flush on a connection opened after it; it
    /// counts as parked again when the Ping is on the wire (see `flush_outbox`).
    fn note_repark(&mut self, token: usize) {
        let Some(flushed_at) = self.flushed_at else {
            return;
        };
        let slot = &mut self.slots[token];
        let fresh = slot
            .conn
            .as_ref()
            .is_none_or(|conn| conn.opened_at() > flushed_at);
        if slot.awaiting_repark && slot.device.state() == super::device::State::Parked && fresh {
            slot.awaiting_repark = false;
            slot.repark_queued = true;
        }
    }

    /// Moves the run from phase to phase; false when the drain is over.
    fn advance(
        &mut self,
        clock: &mut PhaseClock,
        injector: &mut Option<InjectorThread>,
        now: Instant,
        stop: &Arc<AtomicBool>,
    ) -> bool {
        match clock.phase {
            Phase::Ramp => {
                // Settled: every device parked (or gave up) and the injector's
                // connections to a mail store are open.
                let injector_ready = self
                    .config
                    .injector
                    .as_ref()
                    .is_none_or(|injector| injector.outlet.is_ready());
                let settled =
                    self.bootstrapped + self.stopped >= self.slots.len() && injector_ready;
                let timed_out = now >= self.started_at + self.config.ramp_timeout;
                let begin = match &self.config.hold_start {
                    HoldStart::WhenSettled => settled || timed_out,
                    HoldStart::OnSignal(gate) => {
                        (settled && gate.load(Ordering::Relaxed)) || timed_out
                    }
                    HoldStart::At(at) => now >= *at,
                };
                if begin {
                    let until = now + self.config.duration;
                    clock.enter(Phase::Hold, now, &self.stats.counters);
                    clock.hold_until = Some(until);
                    *injector = self.start_injector(now, until, stop);
                    clock.schedule_origin = injector.as_ref().map(InjectorThread::wall_origin);
                }
                true
            }
            Phase::Hold => {
                let until = clock.hold_until.unwrap_or(now);
                if now < until {
                    self.churn(now);
                } else {
                    clock.enter(Phase::Drain, now, &self.stats.counters);
                }
                true
            }
            // Until the injector has sent its last notification and every notified item
            // has reached its device, or the drain's time is up.
            Phase::Drain => {
                let until = clock.hold_until.unwrap_or(now);
                let injecting = injector
                    .as_ref()
                    .is_some_and(|thread| !thread.is_finished());
                let settled =
                    !injecting && self.slots.iter().all(|slot| slot.device.outstanding() == 0);
                !(settled || now >= until + self.config.drain)
            }
        }
    }

    /// The injector thread for the hold, if the worker injects.
    fn start_injector(
        &mut self,
        now: Instant,
        until: Instant,
        stop: &Arc<AtomicBool>,
    ) -> Option<InjectorThread> {
        let config = self.config.injector.take()?;
        let users = self
            .slots
            .iter()
            .map(|slot| {
                let device = &slot.device;
                (device.user.clone(), device.notified_folder().to_owned())
            })
            .collect();
        let from = now + config.start_after;
        Some(InjectorThread::start(
            config,
            users,
            from,
            until,
            stop.clone(),
        ))
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

    /// The end of the run: the injector's counts joined, what is still undelivered lost
    /// (or, when a signal stopped the run early, unfinished unless past its deadline).
    fn finish(
        mut self,
        clock: PhaseClock,
        injector: Option<InjectorThread>,
        stopped_early: bool,
    ) -> (FleetStats, RunEnd) {
        let ended = Instant::now();
        self.stats.intervals.close();
        let mut injected = FleetStats::default();
        if let Some(thread) = injector {
            let (stats, leftovers) = thread.join();
            injected = stats;
            self.hand_over(leftovers);
            self.stats.injector_lag.merge(&injected.injector_lag);
            let injector_seconds = std::mem::take(&mut injected.intervals.intervals);
            self.stats.intervals.intervals.extend(injector_seconds);
            self.stats.notifications_planned = injected.notifications_planned;
            self.stats.notifications_digest = injected.notifications_digest;
        }
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
            schedule_origin: clock.schedule_origin,
            stopped_early,
        };
        let grace = self.config.grace;
        for slot in &mut self.slots {
            match stopped_early {
                true => slot.device.abandon_at_stop(ended, grace, &mut self.stats),
                false => slot
                    .device
                    .expire_lost(None, Duration::ZERO, &mut self.stats),
            }
            if !slot.bootstrapped {
                let why = slot.device.setback().unwrap_or(STILL_BOOTSTRAPPING);
                tally(&mut self.stats.counters.never_parked, why);
            }
            let heartbeat = slot.device.heartbeat_state();
            if heartbeat.moves() {
                let value = humantime::format_duration(heartbeat.current()).to_string();
                tally_seen(&mut self.stats.counters.heartbeat_at_end, &value);
                if let Some(settled) = heartbeat.settled_at() {
                    let after = settled.saturating_duration_since(self.started_at);
                    self.stats.heartbeat_settled.record(after);
                }
            }
        }
        let stages = clock.split(ended, &self.stats.counters, &injected.counters);
        self.stats.counters.add(&injected.counters);
        (self.stats, RunEnd { stages, ..end })
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
            self.cut(token, Cut(None), now);
        }
    }

    /// Hands every notification the injector has sent to its device.
    fn take_sent(&mut self, injector: Option<&InjectorThread>) {
        if let Some(thread) = injector {
            self.hand_over(thread.take_sent());
        }
    }

    fn hand_over(&mut self, sent: Vec<Sent>) {
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

    fn apply(&mut self, token: usize, action: Action, now: Instant) {
        match action {
            Action::Send { bytes, deadline } => {
                self.timers.set(token, deadline);
                self.note_repark(token);
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
                } else if let Err(cut) = self.flush_outbox(token) {
                    self.cut(token, cut, now);
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
                    Err(_) => DeviceError::BadRedirectLocation.count(&mut self.stats.counters),
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
        let slot = &mut self.slots[token];
        let tickets = match (slot.device.tls_resumption(), slot.last_target) {
            (false, _) => TicketUse::Never,
            (true, Some(last)) if last == slot.target => TicketUse::Returning,
            (true, _) => TicketUse::First,
        };
        slot.last_target = Some(slot.target);
        let slot = &self.slots[token];
        let tls = self
            .config
            .tls
            .as_mut()
            .map(|tls| tls.for_connection(slot.target, tickets));
        let target = &self.config.targets[slot.target];
        let opened = Conn::open(
            target,
            tls.as_ref(),
            (&self.config.sources, token),
            self.stats.counters.connections_opened,
            now,
        );
        let mut conn = match opened {
            Ok(conn) => conn,
            Err(error) => return self.cut(token, Cut(Some(error)), now),
        };
        if let Err(err) = self.poll.registry().register(
            &mut conn.stream,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            return self.cut(token, DeviceError::Register(err.kind()).into(), now);
        }
        self.stats.counters.connections_opened += 1;
        self.stats.after_flush.connected(now);
        self.slots[token].conn = Some(conn);
    }

    /// The connection failed: count why, close it and let the device decide.
    fn cut(&mut self, token: usize, cut: Cut, now: Instant) {
        self.close(token);
        let device = &mut self.slots[token].device;
        let action = device.on_disconnect(now, &mut self.stats, cut.0);
        self.apply(token, action, now);
    }

    fn close(&mut self, token: usize) {
        if let Some(mut conn) = self.slots[token].conn.take() {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }

    /// A socket event for `token`: the one place an I/O outcome is applied.
    fn ready(&mut self, token: usize, readable: bool, now: Instant) {
        if let Err(cut) = self.serve_event(token, readable, now) {
            self.cut(token, cut, now);
        }
    }

    /// Finishes a connect, hands complete responses to the device, writes its requests.
    fn serve_event(&mut self, token: usize, readable: bool, now: Instant) -> Result<(), Cut> {
        let Some(conn) = self
            .slots
            .get_mut(token)
            .and_then(|slot| slot.conn.as_mut())
        else {
            return Ok(());
        };
        if conn.connecting() && !conn.finish_connect(now, &mut self.stats)? {
            return Ok(());
        }
        if readable {
            let serial = conn.serial;
            let open = conn.read_available(now, &mut self.stats)?;
            self.deliver_responses(token, now, (!open).then_some(serial))?;
            let slot = &self.slots[token];
            if slot.conn.as_ref().is_none_or(|conn| conn.serial != serial) {
                // The device's answer closed this connection (it may be on a new one).
                return Ok(());
            }
            if !open {
                return Err(Cut(None));
            }
        }
        self.flush_outbox(token)
    }

    /// Hands every complete response read to the device; `closed`: the serial of the
    /// connection the server has closed, if it has.
    fn deliver_responses(
        &mut self,
        token: usize,
        now: Instant,
        closed: Option<u64>,
    ) -> Result<(), Cut> {
        loop {
            let Some(conn) = self.slots[token].conn.as_mut() else {
                return Ok(());
            };
            // Only the connection that was read can have closed.
            let closed = closed == Some(conn.serial);
            let Some(response) = conn.next_response(closed)? else {
                return Ok(());
            };
            if response.closes {
                self.close(token);
            }
            self.timers.cancel(token);
            let action = self.slots[token]
                .device
                .on_response(response, now, &mut self.stats);
            self.apply(token, action, now);
        }
    }

    /// Moves the device's outbox into its connection and writes.
    fn flush_outbox(&mut self, token: usize) -> Result<(), Cut> {
        let slot = &mut self.slots[token];
        let Some(conn) = slot.conn.as_mut() else {
            return Ok(());
        };
        conn.flush(&mut slot.outbox, &mut self.stats)?;
        if slot.repark_queued && slot.outbox.is_empty() && conn.written_all() {
            // The device's Ping after a flush is on the wire: parked again.
            slot.repark_queued = false;
            if let Some(flushed_at) = self.flushed_at {
                self.stats.counters.flush_reparked += 1;
                self.stats.repark.record(flushed_at.elapsed());
            }
        }
        Ok(())
    }
}
