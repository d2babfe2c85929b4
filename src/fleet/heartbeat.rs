//! How a device chooses its heartbeat, Ping after Ping, as phones do behind firewalls
//! and NATs whose idle timeouts they cannot see:
//! - `fixed`: the profile's heartbeat, always (the server's Status 5 bound aside);
//! - `adaptive` (Windows Mobile's Direct Push): start at `heartbeat_min`; after each
//!   Ping that ends with Status 1 (the heartbeat passed, the connection held) raise by
//!   `heartbeat_increment`; when a Ping dies (no answer by its deadline, or a reset),
//!   fall back to the value before the last raise and stay there (settled), or to
//!   `heartbeat_min` if the last change was not a raise, and probe upward again;
//! - `stepped` (Android-style clients): up by `heartbeat_increment` after
//!   `heartbeat_clean_run` clean Pings in a row, down by one increment on a failure,
//!   never settling.
//!
//! Every strategy stays within `heartbeat_min..=heartbeat_max` and within the server's
//! bound once the server has given one (Ping Status 5).

use std::time::{Duration, Instant};

/// Which way a device picks its heartbeat.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum HeartbeatStrategy {
    #[default]
    Fixed,
    Adaptive,
    Stepped,
}

/// A strategy with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatPlan {
    pub strategy: HeartbeatStrategy,
    pub min: Duration,
    pub max: Duration,
    pub increment: Duration,
    /// Clean Pings in a row before a stepped device steps up.
    pub clean_run: u32,
}

/// Windows Mobile's defaults: 8 minutes up to 59.
pub(crate) const DEFAULT_MIN: Duration = Duration::from_secs(480);
pub(crate) const DEFAULT_MAX: Duration = Duration::from_secs(3540);
pub(crate) const DEFAULT_INCREMENT: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_CLEAN_RUN: u32 = 3;

impl Default for HeartbeatPlan {
    fn default() -> Self {
        Self {
            strategy: HeartbeatStrategy::Fixed,
            min: DEFAULT_MIN,
            max: DEFAULT_MAX,
            increment: DEFAULT_INCREMENT,
            clean_run: DEFAULT_CLEAN_RUN,
        }
    }
}

/// Parameters of a moving heartbeat that cannot work; the key is named as a scenario
/// writes it, without its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("heartbeat_min must be above 0s and at most heartbeat_max")]
    MinOutOfRange,
    #[error("heartbeat_increment must be above 0s")]
    ZeroIncrement,
    #[error("heartbeat_clean_run must be at least 1")]
    ZeroCleanRun,
}

impl HeartbeatPlan {
    /// Whether the parameters can work (a fixed heartbeat uses none of them).
    pub fn check(&self) -> Result<(), PlanError> {
        if self.strategy == HeartbeatStrategy::Fixed {
            return Ok(());
        }
        if self.min.is_zero() || self.min > self.max {
            return Err(PlanError::MinOutOfRange);
        }
        if self.increment.is_zero() {
            return Err(PlanError::ZeroIncrement);
        }
        if self.clean_run == 0 {
            return Err(PlanError::ZeroCleanRun);
        }
        Ok(())
    }
}

/// One device's heartbeat as its strategy moves it.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    plan: HeartbeatPlan,
    current: Duration,
    /// The value before the last raise.
    previous: Duration,
    last_change_was_raise: bool,
    clean_in_a_row: u32,
    /// An adaptive device that fell back after a raise keeps its value.
    settled_at: Option<Instant>,
    /// The server's upper bound (Ping Status 5), once given.
    server_max: Option<Duration>,
}

impl Heartbeat {
    /// A fixed device starts at `fixed` (its profile's heartbeat, jittered); the others
    /// at their minimum.
    pub(crate) fn new(plan: HeartbeatPlan, fixed: Duration) -> Self {
        let start = match plan.strategy {
            HeartbeatStrategy::Fixed => fixed,
            _ => plan.min,
        };
        Self {
            plan,
            current: start,
            previous: start,
            last_change_was_raise: false,
            clean_in_a_row: 0,
            settled_at: None,
            server_max: None,
        }
    }

    pub(crate) fn current(&self) -> Duration {
        self.current
    }

    /// Whether the strategy moves the heartbeat (adaptive, stepped).
    pub(crate) fn moves(&self) -> bool {
        self.plan.strategy != HeartbeatStrategy::Fixed
    }

    /// When an adaptive device settled, if it has.
    pub(crate) fn settled_at(&self) -> Option<Instant> {
        self.settled_at
    }

    fn ceiling(&self) -> Duration {
        let max = match self.plan.strategy {
            HeartbeatStrategy::Fixed => Duration::MAX,
            _ => self.plan.max,
        };
        self.server_max.map_or(max, |bound| bound.min(max))
    }

    /// A Ping ended with Status 1: the connection held for the whole heartbeat.
    pub(crate) fn held(&mut self) {
        match self.plan.strategy {
            HeartbeatStrategy::Fixed => {}
            HeartbeatStrategy::Adaptive if self.settled_at.is_none() => self.raise(),
            HeartbeatStrategy::Adaptive => {}
            HeartbeatStrategy::Stepped => {
                self.clean_in_a_row += 1;
                if self.clean_in_a_row >= self.plan.clean_run {
                    self.clean_in_a_row = 0;
                    self.raise();
                }
            }
        }
    }

    fn raise(&mut self) {
        let raised = (self.current + self.plan.increment).min(self.ceiling());
        if raised > self.current {
            self.previous = self.current;
            self.current = raised;
            self.last_change_was_raise = true;
        }
    }

    /// A parked Ping died (its deadline passed, or the connection was reset) at `now`.
    pub(crate) fn died(&mut self, now: Instant) {
        match self.plan.strategy {
            HeartbeatStrategy::Fixed => {}
            HeartbeatStrategy::Adaptive => {
                if self.last_change_was_raise {
                    self.current = self.previous;
                    self.settled_at = Some(now);
                } else {
                    self.current = self.plan.min;
                    self.settled_at = None;
                }
                self.last_change_was_raise = false;
            }
            HeartbeatStrategy::Stepped => {
                self.clean_in_a_row = 0;
                self.current = self
                    .current
                    .saturating_sub(self.plan.increment)
                    .max(self.plan.min);
                self.last_change_was_raise = false;
            }
        }
    }

    /// The server bounded the heartbeat (Ping Status 5): its limit, in whole seconds.
    pub(crate) fn bounded_by_server(&mut self, limit: Duration) {
        if limit < self.current {
            self.server_max = Some(limit);
        }
        self.current = limit;
        self.previous = self.previous.min(limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(strategy: HeartbeatStrategy) -> HeartbeatPlan {
        HeartbeatPlan {
            strategy,
            min: Duration::from_secs(480),
            max: Duration::from_secs(900),
            increment: Duration::from_secs(120),
            clean_run: 2,
        }
    }

    fn secs(heartbeat: &Heartbeat) -> u64 {
        heartbeat.current().as_secs()
    }

    #[test]
    fn fixed_never_moves() {
        let mut heartbeat =
            Heartbeat::new(plan(HeartbeatStrategy::Fixed), Duration::from_secs(1500));
        heartbeat.held();
        heartbeat.died(Instant::now());
        assert_eq!(secs(&heartbeat), 1500);
    }

    #[test]
    fn adaptive_climbs_falls_back_once_and_settles_below_the_timeout() {
        // A NAT that drops flows idle for 700 s: 480 and 600 hold, 720 dies.
        let now = Instant::now();
        let mut heartbeat = Heartbeat::new(plan(HeartbeatStrategy::Adaptive), Duration::ZERO);
        let mut seen = vec![secs(&heartbeat)];
        for _ in 0..6 {
            match heartbeat.current() < Duration::from_secs(700) {
                true => heartbeat.held(),
                false => heartbeat.died(now),
            }
            seen.push(secs(&heartbeat));
        }
        assert_eq!(seen, [480, 600, 720, 600, 600, 600, 600]);
        assert_eq!(heartbeat.settled_at(), Some(now));
        // A failure at the settled value (the path changed) starts over from the minimum.
        heartbeat.died(now);
        assert_eq!(secs(&heartbeat), 480);
        assert_eq!(heartbeat.settled_at(), None);
        heartbeat.held();
        assert_eq!(secs(&heartbeat), 600);
    }

    #[test]
    fn adaptive_stays_within_its_maximum_and_the_servers_bound() {
        let mut heartbeat = Heartbeat::new(plan(HeartbeatStrategy::Adaptive), Duration::ZERO);
        for _ in 0..10 {
            heartbeat.held();
        }
        assert_eq!(secs(&heartbeat), 900);
        heartbeat.bounded_by_server(Duration::from_secs(540));
        for _ in 0..3 {
            heartbeat.held();
        }
        assert_eq!(secs(&heartbeat), 540);
    }

    #[test]
    fn stepped_needs_a_clean_run_to_step_up_and_steps_down_on_failure() {
        let now = Instant::now();
        let mut heartbeat = Heartbeat::new(plan(HeartbeatStrategy::Stepped), Duration::ZERO);
        heartbeat.held();
        assert_eq!(secs(&heartbeat), 480);
        heartbeat.held();
        assert_eq!(secs(&heartbeat), 600);
        heartbeat.held();
        heartbeat.died(now);
        assert_eq!(
            secs(&heartbeat),
            480,
            "down one step, and the run starts over"
        );
        heartbeat.died(now);
        assert_eq!(secs(&heartbeat), 480, "never below the minimum");
        assert_eq!(heartbeat.settled_at(), None);
    }

    #[test]
    fn bad_parameters_are_named() {
        let mut bad = plan(HeartbeatStrategy::Adaptive);
        bad.min = Duration::from_secs(1000);
        assert_eq!(bad.check(), Err(PlanError::MinOutOfRange));
        assert!(bad
            .check()
            .unwrap_err()
            .to_string()
            .contains("heartbeat_min"));
        bad = plan(HeartbeatStrategy::Stepped);
        bad.clean_run = 0;
        assert_eq!(bad.check(), Err(PlanError::ZeroCleanRun));
        let mut fixed = plan(HeartbeatStrategy::Fixed);
        fixed.increment = Duration::ZERO;
        assert_eq!(fixed.check(), Ok(()));
    }
}
