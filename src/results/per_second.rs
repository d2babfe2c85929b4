//! A run second by second, in its result: the workers' interval histograms and the
//! floor probe's merged into one series (written beside the result as an interval log),
//! each metric's seconds summarised, which seconds were the hold's, and the loopback
//! floor of the hold, flagged when it cannot serve as a ratio's denominator.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::measure::calibration::FLOOR_TAG;
use crate::measure::intervals::{unix_second, IntervalSeries, SecondSummary};
use crate::measure::latency::{Latency, LatencySummary};

/// The `intervals` key of a result.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct IntervalFigures {
    /// The interval log beside the result file (its name), when it was written.
    pub log: Option<String>,
    /// The first and last whole second (Unix time) inside the hold.
    pub hold_seconds: Option<(u64, u64)>,
    /// Each metric's seconds: `wakeup`, `mail_on_device`, `injector_lag`, `loop_lag`,
    /// `floor`.
    pub per_second: BTreeMap<String, Vec<SecondSummary>>,
}

/// The `floor` key of a result: the loopback floor measured during the hold.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct FloorFigures {
    pub during_hold: LatencySummary,
    /// False when the floor cannot divide the wake-up latency meaningfully: its p99
    /// above the wake-up's (the floor caught a noisy moment the run did not), or no
    /// sample. `why` says which.
    pub usable: bool,
    pub why: Option<String>,
}

impl IntervalFigures {
    /// From the merged series; `started` is the wall-clock instant the hold window's
    /// offsets count from.
    pub fn of(
        series: &IntervalSeries,
        started: SystemTime,
        hold_window_s: Option<(f64, f64)>,
    ) -> Self {
        let hold_seconds = hold_window_s.and_then(|(from, to)| {
            let at = |offset: f64| started + Duration::from_secs_f64(offset.max(0.0));
            // Whole seconds only: the first that starts in the hold, the last that ends in it.
            let first = unix_second(at(from)) + 1;
            let last = unix_second(at(to)).checked_sub(1)?;
            (first <= last).then_some((first, last))
        });
        Self {
            log: None,
            hold_seconds,
            per_second: series.summaries(),
        }
    }

    /// The hold's seconds of `tag`, each merged over workers.
    pub fn hold_of<'a>(&self, series: &'a IntervalSeries, tag: &str) -> Vec<&'a Latency> {
        let (Some((first, last)), Some(seconds)) = (self.hold_seconds, series.by_tag.get(tag))
        else {
            return Vec::new();
        };
        seconds
            .range(first..=last)
            .map(|(_, latency)| latency)
            .collect()
    }
}

impl FloorFigures {
    /// The floor of the hold's seconds, judged against the run's wake-up latency.
    pub fn of(
        series: &IntervalSeries,
        figures: &IntervalFigures,
        wakeup: Option<LatencySummary>,
    ) -> Option<Self> {
        figures.hold_seconds?;
        let mut floor = Latency::default();
        for second in figures.hold_of(series, FLOOR_TAG) {
            floor.merge(second);
        }
        let during_hold = floor.summary();
        let why = match (during_hold.count, wakeup) {
            (0, _) => Some("no floor sample in the hold".to_owned()),
            (_, Some(wakeup)) if wakeup.count > 0 && during_hold.p99_us > wakeup.p99_us => {
                Some(format!(
                    "floor p99 {} us exceeds wake-up p99 {} us",
                    during_hold.p99_us, wakeup.p99_us
                ))
            }
            _ => None,
        };
        Some(Self {
            during_hold,
            usable: why.is_none(),
            why,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn second_of(micros: &[u64]) -> Latency {
        let mut latency = Latency::default();
        for value in micros {
            latency.record(Duration::from_micros(*value));
        }
        latency
    }

    #[test]
    fn the_hold_is_its_whole_seconds_and_the_floor_is_judged() {
        let mut series = IntervalSeries::default();
        for second in 1_000..1_010 {
            series.add_latency(FLOOR_TAG, second, &second_of(&[40, 50]));
            series.add_latency("wakeup", second, &second_of(&[200, 300]));
        }
        series.add_latency(FLOOR_TAG, 1_009, &second_of(&[90_000]));
        let started = UNIX_EPOCH + Duration::from_millis(1_000_500);
        // The hold from 1,002.0 to 1,008.0: whole seconds 1,003 to 1,007.
        let figures = IntervalFigures::of(&series, started, Some((1.5, 7.5)));
        assert_eq!(figures.hold_seconds, Some((1_003, 1_007)));
        assert_eq!(figures.hold_of(&series, "wakeup").len(), 5);
        let wakeup = Some(second_of(&[200, 300]).summary());
        let floor = FloorFigures::of(&series, &figures, wakeup).unwrap();
        assert!(floor.usable, "the slow second is outside the hold");
        assert_eq!(floor.during_hold.count, 10);
        let fast = Some(second_of(&[10, 20]).summary());
        let floor = FloorFigures::of(&series, &figures, fast).unwrap();
        assert!(!floor.usable && floor.why.unwrap().contains("exceeds"));
        let none = IntervalFigures::of(&series, started, Some((1.2, 1.9)));
        assert_eq!(none.hold_seconds, None, "no whole second inside");
    }
}
