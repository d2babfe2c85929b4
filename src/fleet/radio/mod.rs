//! The cellular radio's energy and its own delays, driven by one device's own packet
//! timeline.
//!
//! A phone's radio is idle until a packet goes out or comes in; then it is promoted to
//! its connected state (a delay at a power of its own), and the network's inactivity
//! timers (the tail) start when the promotion ends, as Huang et al. (MobiSys 2012),
//! Qian et al. (IMC 2010) and AT&T's ARO model it: the radio is never charged the
//! promotion's and the tail's power at once. A packet inside the tail restarts the
//! timers without a new promotion (3G: a packet in FACH is promoted back to DCH). Each
//! device keeps one [`RadioMeter`]: O(1) state, fed every request it sends and every
//! response it reads, in the run's simulated time (see [`SimClock`]). What it counts is
//! what the traffic costs above the idle radio (the idle radio's paging average is
//! subtracted from every power): promotions, tails, seconds up, joules, and the billable
//! data sessions (traffic after the radio was idle, as operators billed it).
//!
//! The meter also keeps the radio's own delay for the traffic that woke it: a promotion
//! before the first uplink packet from idle; for downlink data to an idle phone, the
//! wait for its paging occasion (each device's occasion sits at its own phase of the
//! paging cycle, drawn from the run's seed and the device) plus the promotion. That
//! delay is a modelled figure beside the measured ones, never added to them (see
//! [`RadioMeter::delay_for`]); the paging wait costs nothing above idle, so the energy
//! timeline keeps the promotion at the packet.
//!
//! Packets are taken as instantaneous: a Direct Push exchange is a few kilobytes, which
//! an LTE or HSPA link carries in milliseconds, while a tail lasts seconds, so promotion
//! and tail are nearly all of the energy (the papers say the same of small transfers).
//! The presets ([`presets`]) give every number with its source.

use std::time::{Duration, Instant};

mod presets;

/// Which radio the devices have (a scenario's `radio`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RadioKind {
    /// LTE (RRC_CONNECTED with its DRX tail), as Huang et al. measured it.
    #[default]
    Lte,
    /// UMTS (3G: DCH, then FACH), with AT&T ARO's 3G defaults.
    Umts,
}

impl RadioKind {
    pub fn model(self) -> RadioModel {
        match self {
            Self::Lte => RadioModel::lte(),
            Self::Umts => RadioModel::umts(),
        }
    }
}

/// A radio's states after a packet: the timers of its tail, in order, each with the
/// power drawn while it runs, the promotion from idle, and the idle radio.
#[derive(Debug, Clone, PartialEq)]
pub struct RadioModel {
    pub name: &'static str,
    /// Idle to connected: how long it takes and the power meanwhile.
    pub promotion: Duration,
    pub promotion_mw: f64,
    /// The tail: connected, then (3G) a lower state, each until its inactivity timer,
    /// the first timer started at the end of the promotion.
    pub tail: Vec<TailStage>,
    /// Promotion from a lower tail stage back to the first (3G FACH to DCH).
    pub repromotion: Duration,
    pub repromotion_mw: f64,
    /// The idle radio's average power (its paging, averaged over the paging cycle):
    /// subtracted from every power above, so the joules are those above idle.
    pub idle_mw: f64,
    /// The idle radio's paging (idle DRX) cycle: downlink data for an idle phone waits
    /// for its next paging occasion.
    pub paging_cycle: Duration,
}

/// One state of the tail.
#[derive(Debug, Clone, PartialEq)]
pub struct TailStage {
    pub name: &'static str,
    /// The inactivity timer: how long the state lasts after the last packet.
    pub timer: Duration,
    pub mw: f64,
}

/// Which way a packet goes: the phone sends it, or the network has it for the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Up,
    Down,
}

/// What radios spent, in the units the worker's counters keep (see
/// [`crate::fleet::stats::Counters`]): microseconds up, microjoules, promotions from idle
/// (data sessions as operators billed them) and packets.
pub(crate) trait RadioCounts {
    fn add_radio(&mut self, active_s: f64, joules: f64);
    fn add_session(&mut self);
    fn add_packet(&mut self);
}

/// One device's radio, in seconds of simulated time: when its tail's timers last
/// started, how far its tail has been counted, its last wake-up and the phase of its
/// paging occasion. What it spends goes to the counters as it is settled, so a stage's
/// counters hold what the radio spent in that stage.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RadioMeter {
    /// When the tail's timers last started: the end of the promotion after a packet
    /// from idle (or from a lower stage), or the last packet inside the first stage;
    /// `None` before the first packet (the radio is idle).
    tail_from_s: Option<f64>,
    /// The tail is counted up to here.
    settled_s: f64,
    /// The last packet that found the radio idle (or in a lower stage), and when the
    /// radio was ready for it after its own delay.
    wake: Option<Wake>,
    /// Where the device's paging occasion sits in the paging cycle, in [0, 1).
    paging_phase: f64,
}

/// A packet that had to wait for the radio: when it came, and when the radio was up.
#[derive(Debug, Clone, Copy)]
struct Wake {
    at_s: f64,
    ready_s: f64,
}

impl RadioMeter {
    /// A radio whose paging occasion sits at `paging_phase` (in [0, 1)) of the cycle:
    /// a real phone's follows its identity, so it is fixed for the device.
    pub(crate) fn with_paging_phase(paging_phase: f64) -> Self {
        Self {
            paging_phase: paging_phase.clamp(0.0, 1.0),
            ..Self::default()
        }
    }

    /// A packet at `t_s` (seconds; one before the tail's start, as inside a promotion,
    /// counts as at its start).
    pub(crate) fn packet(
        &mut self,
        model: &RadioModel,
        t_s: f64,
        direction: Direction,
        counts: &mut impl RadioCounts,
    ) {
        counts.add_packet();
        let t_s = self.tail_from_s.map_or(t_s, |from| t_s.max(from));
        self.settle(model, t_s, counts);
        let stage = self.tail_from_s.and_then(|from| model.stage_at(t_s - from));
        let (promotion, mw) = match stage {
            None => {
                counts.add_session();
                (model.promotion.as_secs_f64(), model.promotion_mw)
            }
            Some(0) => (0.0, 0.0),
            Some(_) => (model.repromotion.as_secs_f64(), model.repromotion_mw),
        };
        if promotion > 0.0 {
            counts.add_radio(promotion, model.joules(promotion, mw));
            let paging = match (stage, direction) {
                (None, Direction::Down) => self.paging_wait(model, t_s),
                _ => 0.0,
            };
            self.wake = Some(Wake {
                at_s: t_s,
                ready_s: t_s + paging + promotion,
            });
        }
        self.tail_from_s = Some(t_s + promotion);
        self.settled_s = t_s + promotion;
    }

    /// The wait at `t_s` for the device's next paging occasion.
    fn paging_wait(&self, model: &RadioModel, t_s: f64) -> f64 {
        let cycle = model.paging_cycle.as_secs_f64();
        if cycle <= 0.0 {
            return 0.0;
        }
        (self.paging_phase * cycle - t_s).rem_euclid(cycle)
    }

    /// The radio's own delay (modelled) for data planned at `planned_s` and delivered
    /// since: what the last wake-up still had to wait at the later of the plan and the
    /// wake-up (none when the radio was up by the time the data was planned).
    pub(crate) fn delay_for(&self, planned_s: f64) -> f64 {
        self.wake.map_or(0.0, |wake| {
            (wake.ready_s - planned_s.max(wake.at_s)).max(0.0)
        })
    }

    /// Counts the tail up to `t_s`.
    pub(crate) fn settle(&mut self, model: &RadioModel, t_s: f64, counts: &mut impl RadioCounts) {
        let Some(tail_from) = self.tail_from_s else {
            return;
        };
        if t_s <= self.settled_s {
            return;
        }
        let (from, to) = (self.settled_s - tail_from, t_s - tail_from);
        let mut stage_start = 0.0;
        for stage in &model.tail {
            let stage_end = stage_start + stage.timer.as_secs_f64();
            let overlap = (to.min(stage_end) - from.max(stage_start)).max(0.0);
            if overlap > 0.0 {
                counts.add_radio(overlap, model.joules(overlap, stage.mw));
            }
            stage_start = stage_end;
        }
        self.settled_s = t_s;
    }
}

impl RadioModel {
    /// The tail stage the radio is in `gap` seconds after its timers started (`None`:
    /// idle).
    fn stage_at(&self, gap: f64) -> Option<usize> {
        let mut end = 0.0;
        for (index, stage) in self.tail.iter().enumerate() {
            end += stage.timer.as_secs_f64();
            if gap < end {
                return Some(index);
            }
        }
        None
    }

    /// The joules above the idle radio of `seconds` at `mw`.
    fn joules(&self, seconds: f64, mw: f64) -> f64 {
        seconds * (mw - self.idle_mw) / 1000.0
    }
}

/// A device's clock in simulated time. A compressed run (`time_scale` > 1) shortens
/// the waits the scenario scaled (heartbeats, sync intervals, SMS delays, the gaps
/// between mails) but not the network's exchanges, so the clock runs `scale` times as
/// fast while the device waits and at real speed while an exchange is in flight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimClock {
    real: Instant,
    sim_s: f64,
}

impl SimClock {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            real: now,
            sim_s: 0.0,
        }
    }

    /// The simulated time at `now`, the time since the last reading having passed at
    /// `rate` (the scale while waiting, 1 in an exchange).
    pub(crate) fn advance(&mut self, now: Instant, rate: f64) -> f64 {
        let real = now.saturating_duration_since(self.real).as_secs_f64();
        self.sim_s += real * rate;
        self.real = self.real.max(now);
        self.sim_s
    }

    /// The simulated time now, without moving the clock.
    pub(crate) fn at(&self, now: Instant, rate: f64) -> f64 {
        self.sim_s + now.saturating_duration_since(self.real).as_secs_f64() * rate
    }
}

#[cfg(test)]
mod tests;
