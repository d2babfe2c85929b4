//! `[compare]`: how `pingfleet compare` judges runs of this scenario (see
//! `compare::verdict`): how far memory may move, how large a change of a noisy figure
//! must be, and how sure the test must be. Tolerances are written `5%` here and on
//! `pingfleet compare`'s command line alike.

use crate::units::Share;

/// The figures `pingfleet compare` judges, named once (results give them, `not_gated`
/// lists them): memory per parked connection, of the server and the devices (RSS and
/// live heap each) and the kernel; counts; the parking rate.
pub const SERVER_BYTES: &str = "server_bytes_per_parked";
pub const SERVER_HEAP_BYTES: &str = "server_heap_bytes_per_parked";
pub const DEVICE_BYTES: &str = "device_bytes_per_device";
pub const DEVICE_HEAP_BYTES: &str = "device_heap_bytes_per_device";
pub const KERNEL_SLAB_BYTES: &str = "kernel_slab_bytes_per_connection";
pub const LOST_NOTIFICATIONS: &str = "lost_notifications";
pub const ERRORS: &str = "errors";
pub const PARKING_RATE: &str = "parking_rate_per_s";

/// The hold's latencies from each change's plan: the generator's lag is in them, so a
/// run whose generator fell behind has them judged inconclusive.
pub const PLAN_FIGURES: [&str; 4] = [
    "wakeup_p50_us",
    "wakeup_p99_us",
    "wakeup_p50_over_floor",
    "wakeup_p99_over_floor",
];

/// The hold's latencies from each datagram's departure (its transmit stamp) over the
/// floor: the server's share, the injector's lag left out. Runs before they were
/// measured lack them.
pub const DEPARTURE_FIGURES: [&str; 2] = [
    "wakeup_from_departure_p50_over_floor",
    "wakeup_from_departure_p99_over_floor",
];

/// Whether `name` is a figure `pingfleet compare` judges.
pub fn is_figure(name: &str) -> bool {
    [
        SERVER_BYTES,
        SERVER_HEAP_BYTES,
        DEVICE_BYTES,
        DEVICE_HEAP_BYTES,
        KERNEL_SLAB_BYTES,
        LOST_NOTIFICATIONS,
        ERRORS,
        PARKING_RATE,
    ]
    .iter()
    .chain(&PLAN_FIGURES)
    .chain(&DEPARTURE_FIGURES)
    .any(|figure| *figure == name)
}

/// How large a change must be to count, and how sure (every field has a default).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerances {
    /// The server's memory per parked connection may move this much (`5%`).
    #[serde(default = "memory")]
    pub memory: Share,
    /// The server's live heap per parked Ping may move this much (`1%`): it is the
    /// same to the byte from run to run on unchanged code.
    #[serde(default = "heap")]
    pub heap: Share,
    /// The device workers' memory per device may move this much.
    #[serde(default = "device")]
    pub device: Share,
    /// The kernel's slab memory per connection may move this much.
    #[serde(default = "kernel")]
    pub kernel: Share,
    /// A noisy figure must move at least this much (`10%`) to be a change.
    #[serde(default = "min_effect")]
    pub min_effect: Share,
    /// Significance level of the Mann-Whitney test.
    #[serde(default = "alpha")]
    pub alpha: f64,
    /// Fewer samples than this on a side: inconclusive.
    #[serde(default = "min_samples")]
    pub min_samples: usize,
    /// Figures shown but not gated: their regressions do not fail the comparison (for
    /// figures that do not carry from one machine to another, such as absolute
    /// latencies when the baseline was measured elsewhere).
    #[serde(default)]
    pub not_gated: Vec<String>,
    /// Why runs of this scenario are no gate, when they are not (`smoke`): every figure
    /// is shown and none gated, and the comparison says this instead of a verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_a_gate: Option<String>,
}

fn memory() -> Share {
    Share::of_fraction(0.05)
}
fn heap() -> Share {
    Share::of_fraction(0.01)
}
fn device() -> Share {
    Share::of_fraction(0.10)
}
fn kernel() -> Share {
    Share::of_fraction(0.15)
}
fn min_effect() -> Share {
    Share::of_fraction(0.10)
}
fn alpha() -> f64 {
    0.01
}
fn min_samples() -> usize {
    5
}

impl Default for Tolerances {
    fn default() -> Self {
        Self {
            memory: memory(),
            heap: heap(),
            device: device(),
            kernel: kernel(),
            min_effect: min_effect(),
            alpha: alpha(),
            min_samples: min_samples(),
            not_gated: Vec::new(),
            not_a_gate: None,
        }
    }
}

/// Tolerances `compare` cannot judge by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToleranceError {
    #[error("tolerances are from 0% to below 1000%")]
    Share,
    #[error("alpha must be between 0 and 0.5")]
    Alpha,
    #[error(
        "not_gated names {0:?}, which is no figure compare judges (e.g. {SERVER_BYTES}, {first}, {PARKING_RATE})",
        first = PLAN_FIGURES[0]
    )]
    NotAFigure(String),
    #[error("min_samples must be at least 2")]
    MinSamples,
}

impl Tolerances {
    /// Whether `compare` can judge by these tolerances.
    pub fn check(&self) -> Result<(), ToleranceError> {
        let fraction = |share: Share| (0.0..10.0).contains(&share.fraction());
        if ![
            self.memory,
            self.heap,
            self.device,
            self.kernel,
            self.min_effect,
        ]
        .into_iter()
        .all(fraction)
        {
            return Err(ToleranceError::Share);
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(ToleranceError::Alpha);
        }
        if let Some(unknown) = self.not_gated.iter().find(|name| !is_figure(name)) {
            return Err(ToleranceError::NotAFigure(unknown.clone()));
        }
        match self.min_samples < 2 {
            true => Err(ToleranceError::MinSamples),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_are_checked() {
        assert_eq!(Tolerances::default().check(), Ok(()));
        let bad = Tolerances {
            alpha: 0.9,
            ..Tolerances::default()
        };
        assert_eq!(bad.check(), Err(ToleranceError::Alpha));
        assert!(bad.check().unwrap_err().to_string().contains("alpha"));
        let misspelt = Tolerances {
            not_gated: vec!["wakeup_p50".into()],
            ..Tolerances::default()
        };
        let err = misspelt.check().unwrap_err().to_string();
        assert!(
            err.contains("\"wakeup_p50\"") && err.contains("e.g."),
            "{err}"
        );
        let known = Tolerances {
            not_gated: vec![PARKING_RATE.into(), DEPARTURE_FIGURES[1].into()],
            ..Tolerances::default()
        };
        assert_eq!(known.check(), Ok(()));
    }
}
