//! How a worker's run moves through its phases (ramp, hold, drain) and what it counted
//! in each: the counters are snapshot at every phase change and split into one window
//! per phase when the run ends.

use std::time::{Duration, Instant, SystemTime};

use super::stats::Counters;
use crate::measure::heap::HeapReading;
use crate::phase::Phase;

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
    /// The wall-clock instant of the injector's schedule offset zero, if it ran.
    pub schedule_origin: Option<SystemTime>,
    /// A signal stopped the run before its drain ended.
    pub stopped_early: bool,
    /// The worker's live heap when the hold began (every device parked).
    pub heap_at_hold: Option<HeapReading>,
}

/// The counters of one phase of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageCounts {
    pub phase: Phase,
    pub duration: Duration,
    pub counters: Counters,
}

/// Where the run is: the phase, when it changed, and the counters at each change.
pub(super) struct PhaseClock {
    pub(super) phase: Phase,
    /// The instant each phase started and the counters then, in order.
    marks: Vec<(Instant, Counters)>,
    /// When the hold ends (set when it starts).
    pub(super) hold_until: Option<Instant>,
    /// The wall-clock instant of the injector's schedule offset zero (set when the
    /// injector starts).
    pub(super) schedule_origin: Option<SystemTime>,
    /// The live heap when the hold began.
    pub(super) heap_at_hold: Option<HeapReading>,
}

impl PhaseClock {
    pub(super) fn new(start: Instant) -> Self {
        Self {
            phase: Phase::Ramp,
            marks: vec![(start, Counters::default())],
            hold_until: None,
            schedule_origin: None,
            heap_at_hold: None,
        }
    }

    /// Moves to `phase` at `now` with the counters so far.
    pub(super) fn enter(&mut self, phase: Phase, now: Instant, counters: &Counters) {
        self.phase = phase;
        self.marks.push((now, counters.clone()));
    }

    /// The counters of each phase that ran, given the run's end and its final counts;
    /// `injected` (the injector thread's own counts) belongs to the hold.
    pub(super) fn split(
        self,
        end: Instant,
        last: &Counters,
        injected: &Counters,
    ) -> Vec<StageCounts> {
        let mut marks = self.marks;
        marks.push((end, last.clone()));
        marks
            .windows(2)
            .zip(Phase::ALL)
            .map(|(pair, phase)| {
                let mut counters = pair[1].1.since(&pair[0].1);
                if phase == Phase::Hold {
                    counters.add(injected);
                }
                StageCounts {
                    phase,
                    duration: pair[1].0 - pair[0].0,
                    counters,
                }
            })
            .collect()
    }
}
