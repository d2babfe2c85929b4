//! How a figure's change from baseline to current is judged: `regression`,
//! `improvement`, `no change` or `inconclusive`, with the effect (relative: 0.1 is 10%
//! worse... or better) and, for noisy figures, its 95% interval and the Mann-Whitney
//! p-value.

use super::figures::{Kind, Measured};
use super::stats::{mann_whitney_p, median, relative_shift};
use crate::scenario::compare::Tolerances;

/// What a change was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Regression,
    Improvement,
    NoChange,
    Inconclusive,
}

impl Verdict {
    pub fn words(self) -> &'static str {
        match self {
            Self::Regression => "regression",
            Self::Improvement => "improvement",
            Self::NoChange => "no change",
            Self::Inconclusive => "inconclusive",
        }
    }
}

/// One figure judged.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Judgement {
    pub figure: &'static str,
    pub unit: &'static str,
    /// The baseline's and the current side's value: the median of their samples or
    /// runs (a count: the largest of any run; a latency percentile: the median of the
    /// runs' figures as each run printed it, its whole hold's).
    pub baseline: f64,
    pub current: f64,
    /// Relative change, positive when the figure grew (`current / baseline - 1`).
    pub effect: f64,
    /// Its 95% bootstrap interval (noisy figures).
    pub interval: Option<(f64, f64)>,
    pub p_value: Option<f64>,
    pub samples: (usize, usize),
    pub verdict: Verdict,
    /// Why, in a few words.
    pub reason: String,
    /// Whether a regression of this figure fails the comparison (see `not_gated`).
    pub gated: bool,
}

/// Judges `figure`'s change from `baseline` to `current` (the same kind on both sides).
pub(crate) fn judge(
    figure: &'static str,
    baseline: &Measured,
    current: &Measured,
    tolerances: &Tolerances,
) -> Judgement {
    let samples = (baseline.values.len(), current.values.len());
    let mut judgement = Judgement {
        figure,
        unit: current.unit,
        baseline: shown(baseline),
        current: shown(current),
        effect: f64::NAN,
        interval: None,
        p_value: None,
        samples,
        verdict: Verdict::Inconclusive,
        reason: String::new(),
        gated: true,
    };
    judgement.effect = judgement.current / judgement.baseline - 1.0;
    let (verdict, reason) = match current.kind {
        Kind::Memory => by_tolerance(&judgement, tolerances.memory.fraction()),
        Kind::Heap => by_tolerance(&judgement, tolerances.heap.fraction()),
        Kind::DeviceMemory => by_tolerance(&judgement, tolerances.device.fraction()),
        Kind::KernelMemory => by_tolerance(&judgement, tolerances.kernel.fraction()),
        Kind::Count => by_count(&baseline.values, &current.values, &mut judgement),
        Kind::Samples => by_samples(baseline, current, tolerances, &mut judgement),
    };
    judgement.verdict = match (verdict, current.higher_is_better) {
        (Verdict::Regression, true) => Verdict::Improvement,
        (Verdict::Improvement, true) => Verdict::Regression,
        (verdict, _) => verdict,
    };
    judgement.reason = reason;
    judgement
}

/// The value a side shows: the median of the runs' printed figures where it has them,
/// else of its samples.
fn shown(side: &Measured) -> f64 {
    match side.printed.is_empty() {
        true => median(&side.values),
        false => median(&side.printed),
    }
}

/// Grew (a regression for a figure where lower is better) beyond `tolerance`, shrank
/// beyond it, or neither.
fn by_tolerance(judgement: &Judgement, tolerance: f64) -> (Verdict, String) {
    let effect = judgement.effect;
    let pct = tolerance * 100.0;
    if !effect.is_finite() {
        return (Verdict::Inconclusive, "no baseline value".into());
    }
    if effect > tolerance {
        (
            Verdict::Regression,
            format!("beyond the {pct:.0}% tolerance"),
        )
    } else if effect < -tolerance {
        (
            Verdict::Improvement,
            format!("beyond the {pct:.0}% tolerance"),
        )
    } else {
        (Verdict::NoChange, format!("within {pct:.0}%"))
    }
}

/// A count compared by the worst run of each side: any growth is a regression.
fn by_count(baseline: &[f64], current: &[f64], judgement: &mut Judgement) -> (Verdict, String) {
    let worst = |values: &[f64]| values.iter().copied().fold(0.0, f64::max);
    judgement.baseline = worst(baseline);
    judgement.current = worst(current);
    judgement.effect = match judgement.baseline {
        0.0 if judgement.current == 0.0 => 0.0,
        base => judgement.current / base - 1.0,
    };
    match judgement.current.total_cmp(&judgement.baseline) {
        std::cmp::Ordering::Greater => (Verdict::Regression, "more than the baseline".into()),
        std::cmp::Ordering::Less => (Verdict::Improvement, "fewer than the baseline".into()),
        std::cmp::Ordering::Equal => (Verdict::NoChange, "the same".into()),
    }
}

/// Noisy samples: a change is significant (Mann-Whitney below alpha), at least the
/// minimum effect, with its interval on the same side of zero; no change when the
/// interval lies within the minimum effect either way; inconclusive otherwise.
fn by_samples(
    baseline: &Measured,
    current: &Measured,
    tolerances: &Tolerances,
    judgement: &mut Judgement,
) -> (Verdict, String) {
    let (base, cur) = (&baseline.values, &current.values);
    if base.len() < tolerances.min_samples || cur.len() < tolerances.min_samples {
        return (
            Verdict::Inconclusive,
            format!("fewer than {} samples a side", tolerances.min_samples),
        );
    }
    let p = mann_whitney_p(base, cur);
    let (effect, (low, high)) = relative_shift(base, cur, 0x5eed);
    judgement.effect = effect;
    judgement.interval = Some((low, high));
    judgement.p_value = Some(p);
    let min = tolerances.min_effect.fraction();
    let significant = p < tolerances.alpha;
    if significant && effect >= min && low > 0.0 {
        (
            Verdict::Regression,
            format!("p = {p:.2e}, at least {:.0}%", min * 100.0),
        )
    } else if significant && effect <= -min && high < 0.0 {
        (
            Verdict::Improvement,
            format!("p = {p:.2e}, at least {:.0}%", min * 100.0),
        )
    } else if low > -min && high < min {
        (
            Verdict::NoChange,
            format!("interval within ±{:.0}%", min * 100.0),
        )
    } else if !significant && effect.abs() < min {
        (
            Verdict::NoChange,
            format!("p = {p:.2}, effect under {:.0}%", min * 100.0),
        )
    } else {
        (
            Verdict::Inconclusive,
            format!(
                "p = {p:.2e}, interval ({:+.0}%, {:+.0}%)",
                low * 100.0,
                high * 100.0
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(kind: Kind, values: &[f64]) -> Measured {
        Measured {
            kind,
            higher_is_better: false,
            unit: "",
            values: values.to_vec(),
            printed: Vec::new(),
        }
    }

    fn spread(center: f64, count: usize) -> Vec<f64> {
        // A deterministic spread of +-20% around the centre, skewed up.
        (0..count)
            .map(|i| center * (0.85 + 0.4 * ((i * 7919) % count) as f64 / count as f64).powi(2))
            .collect()
    }

    #[test]
    fn memory_beyond_its_tolerance_is_a_regression_and_within_it_is_not() {
        let tolerances = Tolerances::default();
        let base = measured(Kind::Memory, &[10_000.0]);
        let judged = |value: f64| judge("m", &base, &measured(Kind::Memory, &[value]), &tolerances);
        assert_eq!(judged(10_400.0).verdict, Verdict::NoChange);
        assert_eq!(judged(11_000.0).verdict, Verdict::Regression);
        assert_eq!(judged(9_000.0).verdict, Verdict::Improvement);
        assert!((judged(11_000.0).effect - 0.1).abs() < 1e-9);
    }

    #[test]
    fn the_heap_has_a_tolerance_of_its_own() {
        let tolerances = Tolerances::default();
        let judged = |kind: Kind| {
            let base = measured(kind, &[1_000.0]);
            judge("h", &base, &measured(kind, &[1_020.0]), &tolerances).verdict
        };
        // +2%: past the heap's 1%, within the server RSS's 5%.
        assert_eq!(judged(Kind::Heap), Verdict::Regression);
        assert_eq!(judged(Kind::Memory), Verdict::NoChange);
    }

    #[test]
    fn counts_must_not_grow() {
        let tolerances = Tolerances::default();
        let zero = measured(Kind::Count, &[0.0, 0.0]);
        let one = measured(Kind::Count, &[0.0, 1.0]);
        assert_eq!(
            judge("lost", &zero, &zero, &tolerances).verdict,
            Verdict::NoChange
        );
        assert_eq!(
            judge("lost", &zero, &one, &tolerances).verdict,
            Verdict::Regression
        );
        assert_eq!(
            judge("lost", &one, &zero, &tolerances).verdict,
            Verdict::Improvement
        );
    }

    #[test]
    fn noisy_samples_get_each_verdict() {
        let tolerances = Tolerances::default();
        let base = measured(Kind::Samples, &spread(100.0, 40));
        let judged =
            |values: Vec<f64>| judge("w", &base, &measured(Kind::Samples, &values), &tolerances);
        let slower = judged(spread(150.0, 40));
        assert_eq!(slower.verdict, Verdict::Regression, "{slower:?}");
        assert!((slower.effect - 0.5).abs() < 0.1, "{slower:?}");
        assert_eq!(judged(spread(60.0, 40)).verdict, Verdict::Improvement);
        assert_eq!(judged(spread(101.0, 40)).verdict, Verdict::NoChange);
        assert_eq!(
            judged(spread(150.0, 3)).verdict,
            Verdict::Inconclusive,
            "too few"
        );
        // Higher is better: a faster rate is an improvement.
        let mut rate = measured(Kind::Samples, &spread(100.0, 40));
        rate.higher_is_better = true;
        let mut faster = measured(Kind::Samples, &spread(150.0, 40));
        faster.higher_is_better = true;
        assert_eq!(
            judge("r", &rate, &faster, &tolerances).verdict,
            Verdict::Improvement
        );
    }

    #[test]
    fn a_latency_shows_the_runs_printed_figure_and_is_judged_by_its_seconds() {
        let tolerances = Tolerances::default();
        // Medians of the seconds' p99 (about 100 and 150) sit below the holds' p99.
        let mut base = measured(Kind::Samples, &spread(100.0, 40));
        base.printed = vec![269.0];
        let mut cur = measured(Kind::Samples, &spread(150.0, 40));
        cur.printed = vec![301.0];
        let judged = judge("wakeup_p99_us", &base, &cur, &tolerances);
        assert_eq!((judged.baseline, judged.current), (269.0, 301.0));
        assert_eq!(judged.verdict, Verdict::Regression, "{judged:?}");
        assert!(
            (judged.effect - 0.5).abs() < 0.1,
            "the seconds' shift: {judged:?}"
        );
    }
}
