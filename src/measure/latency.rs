//! Latency histograms: microseconds, 3 significant digits, up to an hour, written in
//! the standard compressed V2 HdrHistogram encoding (base64), so shards from many
//! workers and machines merge exactly.

use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Latencies above this (one hour) are clamped into the top bucket.
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Significant digits of a run-long histogram.
const DIGITS: u8 = 3;

/// A latency histogram in microseconds.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::with_digits(DIGITS)
    }
}

impl Latency {
    pub fn record(&mut self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.clamp(1, MAX_LATENCY_US));
    }

    /// The same samples each shortened by `less` (never below the smallest value):
    /// e.g. from a flow's last activity to from its drop, an idle timeout later.
    pub fn shortened_by(&self, less: Duration) -> Self {
        let less = u64::try_from(less.as_micros()).unwrap_or(u64::MAX);
        let mut shortened = Self::with_digits(self.0.sigfig());
        for value in self.0.iter_recorded() {
            let micros = value.value_iterated_to().saturating_sub(less).max(1);
            let _ = shortened.0.record_n(micros, value.count_at_value());
        }
        shortened
    }

    pub fn histogram(&self) -> &Histogram<u64> {
        &self.0
    }

    /// Adds another histogram's counts (shards merge exactly).
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// An empty histogram of `digits` significant digits (the default has 3).
    pub fn with_digits(digits: u8) -> Self {
        Self(Histogram::new_with_bounds(1, MAX_LATENCY_US, digits).expect("valid histogram bounds"))
    }

    /// Empties the histogram.
    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// The standard compressed V2 encoding, base64.
    pub fn to_base64(&self) -> String {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.0, &mut bytes)
            .expect("serializing into memory cannot fail");
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Reads the encoding written by [`Latency::to_base64`] (or any V2 encoder).
    pub fn from_base64(text: &str) -> anyhow::Result<Self> {
        Self::from_base64_with_digits(text, DIGITS)
    }

    /// Reads an encoding into a histogram of `digits` significant digits.
    pub fn from_base64_with_digits(text: &str, digits: u8) -> anyhow::Result<Self> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim())?;
        let histogram: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|err| anyhow::anyhow!("not a V2 HdrHistogram: {err:?}"))?;
        let mut latency = Self::with_digits(digits);
        latency
            .0
            .add(&histogram)
            .map_err(|err| anyhow::anyhow!("histogram out of range: {err:?}"))?;
        Ok(latency)
    }

    /// For a histogram of instants (each an event's time since some moment), the second
    /// after that moment holding the most events, and how many: the peak rate per
    /// second. A bucket of the histogram counts in the second its middle is in (buckets
    /// are at most 0.1% of their value wide, so only those within a millisecond or so
    /// of a second's end can land in the neighbouring second).
    pub fn busiest_second(&self) -> Option<(u64, u64)> {
        let mut per_second = std::collections::BTreeMap::<u64, u64>::new();
        for value in self.0.iter_recorded() {
            let second = self.0.median_equivalent(value.value_iterated_to()) / 1_000_000;
            *per_second.entry(second).or_default() += value.count_at_value();
        }
        per_second
            .into_iter()
            .max_by_key(|&(second, count)| (count, std::cmp::Reverse(second)))
    }

    /// The value at `percentile` (0 to 100) as HdrHistogram's reference implementations
    /// (Java, Python) compute it: the rank `percentile x count` rounded half up, the
    /// highest value equivalent to the one recorded at that rank. (`value_at_quantile`
    /// rounds the rank up, so on a few hundred values a p99 can land a bucket apart.)
    pub fn value_at_percentile(&self, percentile: f64) -> u64 {
        let total = self.0.len();
        let rank = ((percentile.min(100.0) * total as f64 / 100.0 + 0.5) as u64).max(1);
        let mut seen = 0;
        for value in self.0.iter_recorded() {
            seen += value.count_at_value();
            if seen >= rank {
                return self.0.highest_equivalent(value.value_iterated_to());
            }
        }
        0
    }

    /// p50, p90, p99, p99.9 and max, in microseconds.
    pub fn summary(&self) -> LatencySummary {
        let at = |quantile| self.0.value_at_quantile(quantile);
        LatencySummary {
            count: self.0.len(),
            p50_us: at(0.5),
            p90_us: at(0.9),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: self.0.max(),
        }
    }
}

/// Percentiles of one histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_shortened_by_a_timeout() {
        let mut latency = Latency::default();
        for seconds in [310, 320, 330] {
            latency.record(Duration::from_secs(seconds));
        }
        latency.record(Duration::from_secs(100));
        let shortened = latency.shortened_by(Duration::from_secs(300));
        let stale = shortened.summary();
        assert_eq!(stale.count, 4);
        assert!(stale.max_us.abs_diff(30_000_000) < 60_000, "{stale:?}");
        // Shorter than the timeout: the smallest value, not a negative one.
        assert_eq!(shortened.histogram().min(), 1);
    }

    #[test]
    fn histograms_round_trip_through_base64_and_merge_exactly() {
        let mut a = Latency::default();
        let mut b = Latency::default();
        for micros in [10, 20, 30, 4000] {
            a.record(Duration::from_micros(micros));
        }
        b.record(Duration::from_micros(250));
        let decoded = Latency::from_base64(&a.to_base64()).unwrap();
        assert_eq!(decoded.summary(), a.summary());
        let mut merged = decoded;
        merged.merge(&Latency::from_base64(&b.to_base64()).unwrap());
        assert_eq!(merged.summary().count, 5);
        assert_eq!(merged.histogram().max(), a.histogram().max());
        assert!(Latency::from_base64("not base64!").is_err());
    }

    #[test]
    fn percentiles_round_the_rank_half_up_as_the_reference_implementations_do() {
        let mut latency = Latency::default();
        for micros in 1..=150 {
            latency.record(Duration::from_micros(micros));
        }
        // Rank 0.99 x 150 = 148.5, rounded half up: the 149th value; `value_at_quantile`
        // takes the 149th too, but on 153 values (151.47) it takes the 152nd, not the 151st.
        assert_eq!(latency.value_at_percentile(99.0), 149);
        assert_eq!(latency.value_at_percentile(50.0), 75);
        for micros in 151..=153 {
            latency.record(Duration::from_micros(micros));
        }
        assert_eq!(latency.value_at_percentile(99.0), 151);
        assert_eq!(latency.histogram().value_at_quantile(0.99), 152);
        assert_eq!(Latency::default().value_at_percentile(99.0), 0);
    }

    #[test]
    fn the_busiest_second_is_found_and_ties_go_to_the_first() {
        let mut instants = Latency::default();
        assert_eq!(instants.busiest_second(), None);
        for millis in [100, 900, 1_001, 1_500, 1_990, 2_500, 61_100, 61_101] {
            instants.record(Duration::from_millis(millis));
        }
        assert_eq!(instants.busiest_second(), Some((1, 3)));
        for millis in [61_500, 61_900] {
            instants.record(Duration::from_millis(millis));
        }
        assert_eq!(instants.busiest_second(), Some((61, 4)));
        let mut tie = Latency::default();
        for millis in [3_100, 5_100] {
            tie.record(Duration::from_millis(millis));
        }
        assert_eq!(tie.busiest_second(), Some((3, 1)));
    }
}
