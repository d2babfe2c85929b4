//! The statistics `pingfleet compare` judges noisy figures with, for skewed samples (a
//! second's p99 is anything but normal): the Mann-Whitney U test (two-sided, normal
//! approximation with the tie correction and a continuity correction) for whether one
//! side tends to be larger, and a percentile bootstrap of the ratio of the medians for
//! how much, with its uncertainty.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Resamples of a bootstrap.
const RESAMPLES: usize = 2_000;

/// The median of `values` (the mean of the middle two for an even count); NaN for none.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() % 2 {
        1 => sorted[middle],
        _ => (sorted[middle - 1] + sorted[middle]) / 2.0,
    }
}

/// The two-sided p-value of the Mann-Whitney U test of `a` against `b`: small when
/// values of one tend to be larger than values of the other. 1 when either is empty.
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return 1.0;
    }
    let mut all: Vec<(f64, bool)> = a.iter().map(|&v| (v, true)).collect();
    all.extend(b.iter().map(|&v| (v, false)));
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let (mut rank_sum_a, mut ties) = (0.0, 0.0);
    let mut start = 0;
    while start < n {
        let mut end = start;
        while end + 1 < n && all[end + 1].0 == all[start].0 {
            end += 1;
        }
        // Ranks start at 1; tied values share the mean of their ranks.
        let rank = (start + end) as f64 / 2.0 + 1.0;
        let tied = (end - start + 1) as f64;
        ties += tied.powi(3) - tied;
        rank_sum_a += rank * all[start..=end].iter().filter(|(_, in_a)| *in_a).count() as f64;
        start = end + 1;
    }
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let total = n1 + n2;
    let variance = n1 * n2 / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = ((u - mean).abs() - 0.5).max(0.0) / variance.sqrt();
    (2.0 * normal_upper_tail(z)).min(1.0)
}

/// P(Z > z) for a standard normal Z, from the complementary error function.
fn normal_upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' Chebyshev fit, relative error
/// below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let value = t * poly.exp();
    if x >= 0.0 {
        value
    } else {
        2.0 - value
    }
}

/// How `current` differs from `baseline`: the ratio of the medians less one (0.1 is 10%
/// larger), and its 95% percentile-bootstrap interval. `seed` makes it repeatable.
pub fn relative_shift(baseline: &[f64], current: &[f64], seed: u64) -> (f64, (f64, f64)) {
    let shift = |base: &[f64], cur: &[f64]| median(cur) / median(base) - 1.0;
    let effect = shift(baseline, current);
    if baseline.is_empty() || current.is_empty() {
        return (effect, (f64::NAN, f64::NAN));
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut resample = |values: &[f64]| -> Vec<f64> {
        (0..values.len())
            .map(|_| values[rng.random_range(0..values.len())])
            .collect()
    };
    let mut shifts: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let (base, cur) = (resample(baseline), resample(current));
            shift(&base, &cur)
        })
        .filter(|value| value.is_finite())
        .collect();
    shifts.sort_by(f64::total_cmp);
    if shifts.is_empty() {
        return (effect, (f64::NAN, f64::NAN));
    }
    let at = |q: f64| shifts[((shifts.len() - 1) as f64 * q).round() as usize];
    (effect, (at(0.025), at(0.975)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skewed samples (log-normal-like, a spread of 35% either way) around `scale`,
    /// deterministic.
    fn skewed(count: usize, scale: f64, seed: u64) -> Vec<f64> {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..count)
            .map(|_| {
                let normal: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
                scale * (0.3 * normal).exp()
            })
            .collect()
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn erfc_matches_known_values() {
        for (x, expected) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122),
            (1.0, 0.157_299_207),
            (2.0, 0.004_677_735),
            (-1.0, 1.842_700_793),
        ] {
            assert!((erfc(x) - expected).abs() < 1e-6, "erfc({x}) = {}", erfc(x));
        }
    }

    #[test]
    fn mann_whitney_matches_a_worked_example() {
        // Two groups with no overlap: U = 0; n1 = n2 = 5, the exact two-sided p is
        // 0.0079; the normal approximation with continuity correction gives 0.012.
        let p = mann_whitney_p(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        assert!((p - 0.0122).abs() < 0.001, "{p}");
        // Identical groups: no evidence at all.
        let same = [1.0, 2.0, 2.0, 3.0];
        assert!(mann_whitney_p(&same, &same) > 0.9);
        assert_eq!(mann_whitney_p(&[], &same), 1.0);
        // Every value tied: no variance, no evidence.
        assert_eq!(mann_whitney_p(&[5.0; 4], &[5.0; 6]), 1.0);
    }

    #[test]
    fn a_known_shift_in_skewed_data_is_found_and_none_is_not_invented() {
        let base = skewed(60, 100.0, 1);
        let same = skewed(60, 100.0, 2);
        let slower = skewed(60, 130.0, 3);
        assert!(mann_whitney_p(&base, &slower) < 0.01);
        let (effect, (low, high)) = relative_shift(&base, &slower, 7);
        assert!(low < effect && effect < high);
        assert!(
            low > 0.05 && low < 0.3 && high > 0.3,
            "30% slower: {effect} in ({low}, {high})"
        );
        assert!(mann_whitney_p(&base, &same) > 0.05);
        let (effect, (low, high)) = relative_shift(&base, &same, 7);
        assert!(
            low < 0.0 && high > 0.0,
            "no shift: {effect} in ({low}, {high})"
        );
    }

    #[test]
    fn false_alarms_at_a_one_percent_level_are_rare() {
        // 200 pairs of samples from one distribution: about 1% may come out significant.
        let alarms = (0..200)
            .filter(|trial| {
                let a = skewed(30, 100.0, 1_000 + trial);
                let b = skewed(30, 100.0, 5_000 + trial);
                mann_whitney_p(&a, &b) < 0.01
            })
            .count();
        assert!(alarms <= 6, "{alarms} of 200");
    }
}
