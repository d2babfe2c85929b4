//! The cellular radio's energy, driven by one device's own packet timeline.
//!
//! A phone's radio is idle until a packet goes out or comes in; then it is promoted to
//! its connected state (a delay at a power of its own), and after the last packet it
//! stays up for the network's inactivity timers (the tail) before it falls back to idle.
//! A packet inside the tail restarts the timers without a new promotion. Each device
//! keeps one [`RadioMeter`]: O(1) state, fed every request it sends and every response
//! it reads, in the run's simulated time (see [`SimClock`]). What it counts is what the
//! traffic costs above the idle radio: promotions, tails, seconds up, joules, and the
//! billable data sessions (traffic after the radio was idle, as operators billed it).
//!
//! Packets are taken as instantaneous: a Direct Push exchange is a few kilobytes, which
//! an LTE or HSPA link carries in milliseconds, while a tail lasts seconds, so promotion
//! and tail are nearly all of the energy (the papers below say the same of small
//! transfers). Presets come from published measurements, each number with its source.

use std::time::{Duration, Instant};

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
    /// UMTS (3G: DCH, then FACH), as Qian et al. measured it.
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
/// power drawn while it runs, and the promotion from idle.
#[derive(Debug, Clone, PartialEq)]
pub struct RadioModel {
    pub name: &'static str,
    /// Idle to connected: how long it takes and the power meanwhile.
    pub promotion: Duration,
    pub promotion_mw: f64,
    /// The tail: connected, then (3G) a lower state, each until its inactivity timer.
    pub tail: Vec<TailStage>,
    /// Promotion from a lower tail stage back to the first (3G FACH to DCH).
    pub repromotion: Duration,
    pub repromotion_mw: f64,
}

/// One state of the tail.
#[derive(Debug, Clone, PartialEq)]
pub struct TailStage {
    pub name: &'static str,
    /// The inactivity timer: how long the state lasts after the last packet.
    pub timer: Duration,
    pub mw: f64,
}

impl RadioModel {
    /// LTE as measured by Huang et al., "A Close Examination of Performance and Power
    /// Characteristics of 4G LTE Networks", MobiSys 2012, Table 3 (LTE power model):
    /// promotion 260.1 ms at 1210.7 mW; RRC_CONNECTED tail (DRX) 11,576 ms at
    /// 1060.0 mW.
    pub fn lte() -> Self {
        Self {
            name: "lte",
            promotion: Duration::from_micros(260_100),
            promotion_mw: 1210.7,
            tail: vec![TailStage {
                name: "connected",
                timer: Duration::from_millis(11_576),
                mw: 1060.0,
            }],
            repromotion: Duration::ZERO,
            repromotion_mw: 0.0,
        }
    }

    /// UMTS (3G) as measured by Qian et al., "Characterizing Radio Resource Allocation
    /// for 3G Networks", IMC 2010, for the carrier they call Carrier 1 (Table 1 timers
    /// and Table 2 powers): IDLE to DCH 2 s at 550 mW, FACH to DCH 1.5 s at 700 mW; DCH
    /// 800 mW until its 5 s timer, then FACH 460 mW until its 12 s timer.
    pub fn umts() -> Self {
        Self {
            name: "umts",
            promotion: Duration::from_secs(2),
            promotion_mw: 550.0,
            tail: vec![
                TailStage {
                    name: "DCH",
                    timer: Duration::from_secs(5),
                    mw: 800.0,
                },
                TailStage {
                    name: "FACH",
                    timer: Duration::from_secs(12),
                    mw: 460.0,
                },
            ],
            repromotion: Duration::from_millis(1500),
            repromotion_mw: 700.0,
        }
    }
}

/// What radios spent, in the units the worker's counters keep (see
/// [`crate::fleet::stats::Counters`]): microseconds up, microjoules, promotions from idle
/// (data sessions as operators billed them) and packets.
pub(crate) trait RadioCounts {
    fn add_radio(&mut self, active_s: f64, joules: f64);
    fn add_session(&mut self);
    fn add_packet(&mut self);
}

/// One device's radio: its last packet and how far its tail has been counted, in
/// seconds of simulated time. What it spends goes to the counters as it is settled, so
/// a stage's counters hold what the radio spent in that stage.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RadioMeter {
    /// The last packet's time; `None` before the first (the radio is idle).
    last_s: Option<f64>,
    /// The tail is counted up to here.
    settled_s: f64,
}

impl RadioMeter {
    /// A packet at `t_s` (seconds; one before the last counts as at the last).
    pub(crate) fn packet(&mut self, model: &RadioModel, t_s: f64, counts: &mut impl RadioCounts) {
        counts.add_packet();
        let t_s = self.last_s.map_or(t_s, |last| t_s.max(last));
        self.settle(model, t_s, counts);
        let since_last = self.last_s.map(|last| t_s - last);
        match since_last.map(|gap| model.stage_at(gap)) {
            None | Some(None) => {
                counts.add_session();
                let promotion = model.promotion.as_secs_f64();
                counts.add_radio(promotion, promotion * model.promotion_mw / 1000.0);
            }
            Some(Some(0)) => {}
            Some(Some(_)) => {
                let promotion = model.repromotion.as_secs_f64();
                counts.add_radio(promotion, promotion * model.repromotion_mw / 1000.0);
            }
        }
        self.last_s = Some(t_s);
        self.settled_s = t_s;
    }

    /// Counts the tail of the last packet up to `t_s`.
    pub(crate) fn settle(&mut self, model: &RadioModel, t_s: f64, counts: &mut impl RadioCounts) {
        let Some(last) = self.last_s else {
            return;
        };
        if t_s <= self.settled_s {
            return;
        }
        let (from, to) = (self.settled_s - last, t_s - last);
        let mut stage_start = 0.0;
        for stage in &model.tail {
            let stage_end = stage_start + stage.timer.as_secs_f64();
            let overlap = (to.min(stage_end) - from.max(stage_start)).max(0.0);
            if overlap > 0.0 {
                counts.add_radio(overlap, overlap * stage.mw / 1000.0);
            }
            stage_start = stage_end;
        }
        self.settled_s = t_s;
    }
}

impl RadioModel {
    /// The tail stage the radio is in `gap` seconds after a packet (`None`: idle).
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
mod tests {
    use super::*;

    /// What the tests read back: seconds up, joules, sessions, packets.
    #[derive(Debug, Default)]
    struct Spent {
        active_s: f64,
        joules: f64,
        sessions: u64,
        packets: u64,
    }

    impl RadioCounts for Spent {
        fn add_radio(&mut self, active_s: f64, joules: f64) {
            self.active_s += active_s;
            self.joules += joules;
        }
        fn add_session(&mut self) {
            self.sessions += 1;
        }
        fn add_packet(&mut self) {
            self.packets += 1;
        }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    fn run(model: &RadioModel, packets: &[f64], end: f64) -> Spent {
        let mut meter = RadioMeter::default();
        let mut spent = Spent::default();
        for t in packets {
            meter.packet(model, *t, &mut spent);
        }
        meter.settle(model, end, &mut spent);
        spent
    }

    #[test]
    fn one_packet_costs_a_promotion_and_a_whole_tail() {
        let lte = RadioModel::lte();
        let spent = run(&lte, &[10.0], 100.0);
        assert_eq!(spent.sessions, 1);
        // 0.2601 s x 1.2107 W + 11.576 s x 1.060 W
        close(spent.joules, 0.2601 * 1.2107 + 11.576 * 1.060);
        close(spent.active_s, 0.2601 + 11.576);
    }

    #[test]
    fn two_packets_inside_one_tail_share_it() {
        let lte = RadioModel::lte();
        // The second packet 3 s into the first one's tail: one promotion, 3 s of tail,
        // then a whole tail after the second.
        let spent = run(&lte, &[10.0, 13.0], 100.0);
        assert_eq!((spent.sessions, spent.packets), (1, 2));
        close(spent.joules, 0.2601 * 1.2107 + (3.0 + 11.576) * 1.060);
    }

    #[test]
    fn a_packet_just_after_a_tail_ends_is_a_new_session() {
        let lte = RadioModel::lte();
        let spent = run(&lte, &[10.0, 10.0 + 11.576 + 0.001], 100.0);
        assert_eq!(spent.sessions, 2);
        close(spent.joules, 2.0 * (0.2601 * 1.2107 + 11.576 * 1.060));
        close(spent.active_s, 2.0 * (0.2601 + 11.576));
    }

    #[test]
    fn settling_in_steps_counts_the_same_as_at_once_and_only_what_ran() {
        let lte = RadioModel::lte();
        // A tail cut by the end of the window counts only what ran.
        close(
            run(&lte, &[10.0], 12.0).joules,
            0.2601 * 1.2107 + 2.0 * 1.060,
        );
        let mut meter = RadioMeter::default();
        let mut stepped = Spent::default();
        meter.packet(&lte, 10.0, &mut stepped);
        for t in [11.0, 15.5, 15.5, 21.0, 40.0] {
            meter.settle(&lte, t, &mut stepped);
        }
        close(stepped.joules, run(&lte, &[10.0], 40.0).joules);
    }

    #[test]
    fn a_3g_packet_in_fach_is_promoted_back_to_dch_without_a_new_session() {
        let umts = RadioModel::umts();
        // 7 s after the first packet: 5 s of DCH, 2 s of FACH, then FACH to DCH.
        let spent = run(&umts, &[0.0, 7.0], 1000.0);
        assert_eq!(spent.sessions, 1);
        let first = 2.0 * 0.55 + 5.0 * 0.8 + 2.0 * 0.46;
        let second = 1.5 * 0.7 + 5.0 * 0.8 + 12.0 * 0.46;
        close(spent.joules, first + second);
        close(spent.active_s, 2.0 + 7.0 + 1.5 + 17.0);
        // After DCH and FACH have both run out, a packet starts a new session.
        assert_eq!(run(&umts, &[0.0, 17.5], 1000.0).sessions, 2);
    }

    #[test]
    fn the_clock_runs_at_the_scale_while_waiting_and_at_real_speed_in_an_exchange() {
        let start = Instant::now();
        let mut clock = SimClock::new(start);
        // 1 s of waiting at scale 60, then 10 ms of exchange.
        close(clock.advance(start + Duration::from_secs(1), 60.0), 60.0);
        let t = clock.advance(start + Duration::from_millis(1010), 1.0);
        assert!((t - 60.01).abs() < 1e-6, "{t}");
        assert!((clock.at(start + Duration::from_millis(1020), 60.0) - 60.61).abs() < 1e-6);
    }

    fn tail(model: &RadioModel) -> Duration {
        model.tail.iter().map(|stage| stage.timer).sum()
    }

    #[test]
    fn the_presets_tails_are_the_papers_timers() {
        assert_eq!(tail(&RadioKind::Lte.model()), Duration::from_millis(11_576));
        assert_eq!(tail(&RadioKind::Umts.model()), Duration::from_secs(17));
    }
}
