//! The device's radio: every request it sends and every response it reads is a packet
//! on its [`RadioMeter`], timed on its own clock in simulated time (waits run at the
//! run's time scale, exchanges at real speed; see [`SimClock`]).

use std::time::Instant;

use super::Device;
use crate::fleet::radio::{Direction, SimClock};
use crate::fleet::stats::FleetStats;

impl Device {
    /// The simulated time at `now`, the clock moved on.
    fn simulated_at(&mut self, now: Instant) -> f64 {
        let rate = match self.in_exchange {
            true => 1.0,
            false => self.profile.time_scale,
        };
        self.clock
            .get_or_insert_with(|| SimClock::new(now))
            .advance(now, rate)
    }

    /// The simulated time at `at`, the clock left where it is (0 before the device's
    /// first packet).
    pub(super) fn simulated_time(&self, at: Instant) -> f64 {
        let rate = match self.in_exchange {
            true => 1.0,
            false => self.profile.time_scale,
        };
        self.clock.map_or(0.0, |clock| clock.at(at, rate))
    }

    /// A packet at `now`: a request sent (`Up`), a response read (`Down`).
    pub(super) fn radio_packet(
        &mut self,
        now: Instant,
        direction: Direction,
        stats: &mut FleetStats,
    ) {
        let t_s = self.simulated_at(now);
        self.radio
            .packet(&self.profile.radio, t_s, direction, &mut stats.counters);
    }

    /// The radio's own delay (modelled, in simulated seconds) for a delivery whose
    /// mail was planned at `planned_sim_s`: the paging wait and promotion of the
    /// wake-up that brought it, if the radio was not up when the mail was planned.
    pub(super) fn radio_delay_for(&self, planned_sim_s: f64) -> f64 {
        self.radio.delay_for(planned_sim_s)
    }

    /// Counts what the radio has spent up to `now` (its tail so far), so that what a
    /// stage counted is what the radio spent in it.
    pub(crate) fn settle_radio(&mut self, now: Instant, stats: &mut FleetStats) {
        if self.clock.is_none() {
            return;
        }
        let t_s = self.simulated_at(now);
        self.radio
            .settle(&self.profile.radio, t_s, &mut stats.counters);
    }

    /// A request went out: with `exchange`, its answer is due at once (the clock runs
    /// at real speed until it comes); without, it is a parked Ping's.
    pub(super) fn exchange_started(&mut self, exchange: bool) {
        self.in_exchange = exchange;
    }

    /// Mail for the device arrived at `at` while its Ping was parked: the clock runs at
    /// real speed from there until the answer (the wake-up path is the network's, not
    /// a compressed wait).
    pub(super) fn mail_for_parked_ping(&mut self, at: Instant) {
        if !self.in_exchange {
            self.simulated_at(at);
            self.in_exchange = true;
        }
    }

    /// The answer came, or the connection went: the device waits again.
    pub(super) fn exchange_ended(&mut self) {
        self.in_exchange = false;
    }
}
