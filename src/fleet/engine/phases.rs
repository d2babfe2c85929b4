//! The engine's run through its phases: when the ramp gives way to the hold and the
//! hold to the drain, the injector started for the hold, a flush of the path noted and
//! each device's re-parking after it, and the end: what was delivered, lost or left
//! unfinished.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{FleetEngine, HoldStart, STILL_BOOTSTRAPPING};
use crate::fleet::device::State;
use crate::fleet::injector::InjectorThread;
use crate::fleet::phase_clock::{PhaseClock, RunEnd};
use crate::fleet::stats::{tally, tally_seen, FleetStats, Progress};
use crate::measure::heap::HeapReading;
use crate::phase::Phase;

impl FleetEngine {
    /// When the path was flushed: every parked device awaits its re-parking.
    pub(super) fn note_flush(&mut self, now: Instant) {
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
    pub(super) fn note_repark(&mut self, token: usize) {
        let Some(flushed_at) = self.flushed_at else {
            return;
        };
        let slot = &mut self.slots[token];
        let fresh = slot
            .conn
            .as_ref()
            .is_none_or(|conn| conn.opened_at() > flushed_at);
        if slot.awaiting_repark && slot.device.state() == State::Parked && fresh {
            slot.awaiting_repark = false;
            slot.repark_queued = true;
        }
    }

    /// Moves the run from phase to phase; false when the drain is over.
    pub(super) fn advance(
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
                    self.settle_radios(now);
                    clock.heap_at_hold = Some(HeapReading::now());
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
                    self.settle_radios(now);
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
    pub(super) fn start_injector(
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

    /// The end of the run: the injector's counts joined, what is still undelivered lost
    /// (or, when a signal stopped the run early, unfinished unless past its deadline).
    pub(super) fn finish(
        mut self,
        clock: PhaseClock,
        injector: Option<InjectorThread>,
        stopped_early: bool,
    ) -> (FleetStats, RunEnd) {
        let ended = Instant::now();
        self.settle_radios(ended);
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
                .filter(|slot| match slot.device.state() {
                    State::Parked => slot.conn.is_some(),
                    // Not pushing: at rest between its syncs, as it should be.
                    State::Idle => true,
                    _ => false,
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
            heap_at_hold: clock.heap_at_hold.clone(),
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
    pub(super) fn print_progress(&self) {
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
}
