//! The notification injector's schedule: when each notification is planned, for which
//! device, open loop and seeded. The engine sends each one at (or as soon as it can
//! after) its planned instant; latency is always measured from the plan, so a stalled
//! sender cannot hide latency.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The shape of the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pattern {
    /// Evenly spaced at `rate_per_s`.
    Fixed { rate_per_s: f64 },
    /// Exponential gaps with mean `1 / rate_per_s`.
    Poisson { rate_per_s: f64 },
    /// `percent` of the devices, each once, at instants spread uniformly over `window`.
    Burst { percent: f64, window: Duration },
}

/// One planned notification: its offset from the start and the device it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub offset: Duration,
    pub device: usize,
    pub seq: u64,
}

/// An endless (or, for a burst, finite) sequence of planned notifications.
#[derive(Debug, Clone)]
pub struct Schedule {
    pattern: Pattern,
    devices: usize,
    rng: SmallRng,
    next_offset: Duration,
    seq: u64,
    burst: Vec<Planned>,
}

impl Schedule {
    pub fn new(pattern: Pattern, devices: usize, seed: u64) -> Self {
        let mut schedule = Self {
            pattern,
            devices,
            rng: SmallRng::seed_from_u64(seed),
            next_offset: Duration::ZERO,
            seq: 0,
            burst: Vec::new(),
        };
        if let Pattern::Burst { percent, window } = pattern {
            schedule.burst = schedule.plan_burst(percent, window);
        }
        schedule
    }

    fn plan_burst(&mut self, percent: f64, window: Duration) -> Vec<Planned> {
        let count = ((self.devices as f64) * percent / 100.0).round() as usize;
        let mut devices: Vec<usize> = (0..self.devices).collect();
        for index in 0..count.min(self.devices) {
            let swap = self.rng.random_range(index..self.devices);
            devices.swap(index, swap);
        }
        let mut planned: Vec<Planned> = devices
            .into_iter()
            .take(count)
            .enumerate()
            .map(|(seq, device)| Planned {
                offset: window.mul_f64(self.rng.random::<f64>()),
                device,
                seq: seq as u64,
            })
            .collect();
        planned.sort_by_key(|planned| std::cmp::Reverse(planned.offset));
        planned
    }

    fn gap(&mut self, rate_per_s: f64, poisson: bool) -> Duration {
        let mean = 1.0 / rate_per_s;
        let seconds = if poisson {
            -mean * (1.0 - self.rng.random::<f64>()).ln()
        } else {
            mean
        };
        Duration::from_secs_f64(seconds)
    }
}

impl Iterator for Schedule {
    type Item = Planned;

    fn next(&mut self) -> Option<Planned> {
        if self.devices == 0 {
            return None;
        }
        let (rate, poisson) = match self.pattern {
            Pattern::Burst { .. } => return self.burst.pop(),
            Pattern::Fixed { rate_per_s } => (rate_per_s, false),
            Pattern::Poisson { rate_per_s } => (rate_per_s, true),
        };
        if rate <= 0.0 {
            return None;
        }
        let offset = self.next_offset;
        let gap = self.gap(rate, poisson);
        self.next_offset = self.next_offset.checked_add(gap)?;
        let planned = Planned {
            offset,
            device: self.rng.random_range(0..self.devices),
            seq: self.seq,
        };
        self.seq += 1;
        Some(planned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_rate_is_evenly_spaced_and_seeded() {
        let plan: Vec<Planned> = Schedule::new(Pattern::Fixed { rate_per_s: 1000.0 }, 10, 1)
            .take(5)
            .collect();
        let offsets: Vec<u128> = plan.iter().map(|p| p.offset.as_micros()).collect();
        assert_eq!(offsets, [0, 1000, 2000, 3000, 4000]);
        let again: Vec<Planned> = Schedule::new(Pattern::Fixed { rate_per_s: 1000.0 }, 10, 1)
            .take(5)
            .collect();
        assert_eq!(plan, again);
        assert!(plan.iter().all(|p| p.device < 10));
    }

    #[test]
    fn a_zero_rate_plans_nothing() {
        assert_eq!(
            Schedule::new(Pattern::Fixed { rate_per_s: 0.0 }, 10, 1).next(),
            None
        );
        assert_eq!(
            Schedule::new(Pattern::Poisson { rate_per_s: 0.0 }, 10, 1).next(),
            None
        );
    }

    #[test]
    fn poisson_has_the_asked_mean_rate() {
        let last = Schedule::new(Pattern::Poisson { rate_per_s: 1000.0 }, 100, 3)
            .take(10_001)
            .last()
            .unwrap();
        let seconds = last.offset.as_secs_f64();
        assert!(
            (9.0..11.0).contains(&seconds),
            "10,000 gaps took {seconds} s"
        );
    }

    #[test]
    fn a_burst_notifies_each_chosen_device_once_within_the_window() {
        let window = Duration::from_millis(200);
        let plan: Vec<Planned> = Schedule::new(
            Pattern::Burst {
                percent: 50.0,
                window,
            },
            100,
            9,
        )
        .collect();
        assert_eq!(plan.len(), 50);
        let mut devices: Vec<usize> = plan.iter().map(|p| p.device).collect();
        devices.sort_unstable();
        devices.dedup();
        assert_eq!(devices.len(), 50);
        assert!(plan.windows(2).all(|pair| pair[0].offset <= pair[1].offset));
        assert!(plan.iter().all(|p| p.offset <= window));
    }
}
