//! What a capacity search's steps add up to: a least-squares line of each memory
//! component over the device count (bytes per device = slope, base = intercept, R^2),
//! and the knee (the largest passing step, and the limit the next one hit).

/// A straight line fitted to (devices, bytes) points.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct LineFit {
    /// Bytes each device adds.
    pub bytes_per_device: f64,
    /// Bytes with no device at all.
    pub base_bytes: f64,
    /// How well the line explains the points (1 is a perfect line).
    pub r_squared: f64,
    /// Steps the line was fitted over.
    pub points: usize,
}

/// The least-squares line through `points`; `None` with fewer than two distinct
/// device counts.
pub fn fit(points: &[(f64, f64)]) -> Option<LineFit> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    let sxy: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let syy: f64 = points.iter().map(|(_, y)| (y - mean_y).powi(2)).sum();
    if points.len() < 2 || sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r_squared = if syy > 0.0 {
        (sxy * sxy) / (sxx * syy)
    } else {
        1.0
    };
    Some(LineFit {
        bytes_per_device: slope,
        base_bytes: mean_y - slope * mean_x,
        r_squared,
        points: points.len(),
    })
}

impl LineFit {
    /// The bytes the line gives `devices`.
    pub fn at(&self, devices: f64) -> f64 {
        self.base_bytes + self.bytes_per_device * devices
    }

    /// The devices the line fits in `bytes` (`None` when a device costs nothing).
    pub fn devices_in(&self, bytes: f64) -> Option<f64> {
        (self.bytes_per_device > 0.0)
            .then(|| ((bytes - self.base_bytes) / self.bytes_per_device).max(0.0))
    }
}

/// What ended a step or the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// A latency threshold failed.
    Latency,
    /// Errors, or notifications lost.
    Errors,
    /// Another threshold failed.
    Threshold,
    /// The fleet did not form, or a process failed: the step is not complete.
    Incomplete,
    /// The step's memory (fitted, or this machine's) would not fit.
    Memory,
    /// The step's plan was refused (too many processes for the open-file limit...).
    Plan,
    /// No step was left: every one passed.
    Steps,
    /// The run was stopped.
    Stopped,
}

/// Which limit failed thresholds hit, by their metrics' names: latency before errors
/// before the others.
pub fn limit_of_thresholds(failed_metrics: &[&str]) -> Limit {
    let any = |names: &[&str]| failed_metrics.iter().any(|metric| names.contains(metric));
    if any(&["errors", "lost_notifications"]) {
        Limit::Errors
    } else if failed_metrics
        .iter()
        .any(|metric| metric.contains("latency") || metric.contains("wakeup"))
    {
        Limit::Latency
    } else {
        Limit::Threshold
    }
}

/// The search's knee: the largest passing step before the first that did not pass,
/// and what that one hit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Knee {
    /// The most devices a passing step held (`null`: the first step failed).
    pub holds_devices: Option<usize>,
    /// The step after it (`null` when every step passed).
    pub failed_at_devices: Option<usize>,
    pub limit: Limit,
    /// Why, in a few words.
    pub why: String,
}

/// One step as the knee sees it: its devices, whether it passed, and what it hit.
pub struct KneeStep<'a> {
    pub devices: usize,
    pub passed: bool,
    pub limit: Option<Limit>,
    pub why: &'a str,
}

/// The knee: the largest step that held below the smallest that failed, and what that
/// one hit (the steps in any order: a bisection adds steps between them); without a
/// failing step, what stopped the search.
pub fn knee(steps: &[KneeStep<'_>], stopped_by: Option<(Limit, &str)>) -> Knee {
    let failed = steps
        .iter()
        .filter(|step| !step.passed)
        .min_by_key(|step| step.devices);
    let below = |devices: usize| failed.is_none_or(|failed| devices < failed.devices);
    let holds_devices = steps
        .iter()
        .filter(|step| step.passed && below(step.devices))
        .map(|step| step.devices)
        .max();
    match failed {
        Some(failed) => Knee {
            holds_devices,
            failed_at_devices: Some(failed.devices),
            limit: failed.limit.unwrap_or(Limit::Threshold),
            why: failed.why.to_owned(),
        },
        None => {
            let (limit, why) = stopped_by.unwrap_or((Limit::Steps, "every step passed"));
            Knee {
                holds_devices,
                failed_at_devices: None,
                limit,
                why: why.to_owned(),
            }
        }
    }
}

/// The next step of a bisection: halfway between the largest step that held below the
/// smallest that failed, and it (rounded to a hundredth of the failing count); `None`
/// when nothing failed, nothing held, or the gap is closed.
pub fn bisection(steps: &[KneeStep<'_>]) -> Option<usize> {
    let knee = knee(steps, None);
    let (held, failed) = (knee.holds_devices?, knee.failed_at_devices?);
    let grain = (failed / 100).max(1);
    let mid = ((held + failed) / 2).div_ceil(grain) * grain;
    (mid > held && mid < failed).then_some(mid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_line_is_recovered() {
        let points: Vec<(f64, f64)> = [10_000.0, 20_000.0, 40_000.0, 80_000.0]
            .iter()
            .map(|devices| (*devices, 21e6 + 6_400.0 * devices))
            .collect();
        let line = fit(&points).unwrap();
        assert!((line.bytes_per_device - 6_400.0).abs() < 1e-6);
        assert!((line.base_bytes - 21e6).abs() < 1e-3);
        assert!((line.r_squared - 1.0).abs() < 1e-12);
        assert!((line.devices_in(21e6 + 6_400.0 * 1e6).unwrap() - 1e6).abs() < 1e-3);
        let noisy = [(1.0, 10.0), (2.0, 30.0), (3.0, 20.0)];
        assert!(fit(&noisy).unwrap().r_squared < 0.5);
        assert_eq!(fit(&[(5.0, 1.0)]), None);
        assert_eq!(fit(&[(5.0, 1.0), (5.0, 2.0)]), None);
    }

    #[test]
    fn the_knee_is_the_largest_pass_below_the_smallest_failure() {
        let step = |devices, passed, limit| KneeStep {
            devices,
            passed,
            limit,
            why: "wake-up p99 3 ms over 2 ms",
        };
        let steps = [
            step(10_000, true, None),
            step(20_000, true, None),
            step(40_000, false, Some(Limit::Latency)),
        ];
        let found = knee(&steps, None);
        assert_eq!(found.holds_devices, Some(20_000));
        assert_eq!(found.failed_at_devices, Some(40_000));
        assert_eq!(found.limit, Limit::Latency);
        let all = knee(
            &steps[..2],
            Some((Limit::Memory, "80,000 would need 30 GiB")),
        );
        assert_eq!(
            (all.holds_devices, all.limit),
            (Some(20_000), Limit::Memory)
        );
        let none = knee(&[step(10, false, Some(Limit::Incomplete))], None);
        assert_eq!(
            (none.holds_devices, none.failed_at_devices),
            (None, Some(10))
        );
        // Bisected: 120,000 failed and 100,000 held between 80,000 and 160,000.
        let bisected = [
            step(80_000, true, None),
            step(160_000, false, Some(Limit::Latency)),
            step(120_000, false, Some(Limit::Errors)),
            step(100_000, true, None),
        ];
        let found = knee(&bisected, None);
        assert_eq!(found.holds_devices, Some(100_000));
        assert_eq!(found.failed_at_devices, Some(120_000));
        assert_eq!(found.limit, Limit::Errors);
        assert_eq!(bisection(&bisected[..2]), Some(120_000));
        assert_eq!(bisection(&bisected), Some(110_400));
        assert_eq!(
            bisection(&[step(100, true, None), step(101, false, None)]),
            None
        );
        assert_eq!(bisection(&steps[..2]), None);
        assert_eq!(limit_of_thresholds(&["wakeup_latency"]), Limit::Latency);
        assert_eq!(
            limit_of_thresholds(&["wakeup_latency", "lost_notifications"]),
            Limit::Errors
        );
    }
}
