//! Per-second interval histograms: what a histogram gained in each second of wall-clock
//! time, so a run is a series of samples (each second's p50 and p99) rather than one
//! figure, and two runs compare with statistics (see `orchestrator::compare`).
//!
//! A worker snapshots its cumulative histograms whenever the wall-clock second changes
//! and keeps the difference; intervals start on whole Unix seconds, so the workers'
//! intervals of one second merge exactly. The orchestrator writes the merged series as
//! an HdrHistogram interval log (`.hlog`: the format of HdrHistogram's
//! `HistogramLogWriter`, V2 + DEFLATE, one line per metric and second, `Tag=` naming the
//! metric), which any HdrHistogram implementation reads.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;

use super::latency::Latency;

/// Most intervals a worker keeps per metric (a day of seconds); later ones are dropped.
const MAX_INTERVALS_PER_METRIC: usize = 86_400;

/// One metric's histogram over one second, as a worker reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct IntervalDoc {
    /// The metric (`wakeup`, `mail_on_device`, `injector_lag`, `loop_lag`, `floor`).
    pub tag: String,
    /// The second's start, in whole seconds since the Unix epoch.
    pub second: u64,
    /// What was recorded in it: the V2 + DEFLATE encoding, base64.
    pub data: String,
}

/// Significant digits of an interval histogram: 1% resolution is plenty for a second's
/// p50 and p99, and it keeps one at about 26 KB (a run-long histogram is about 360 KB).
const INTERVAL_DIGITS: u8 = 2;

/// Records values into the wall-clock second being filled, as well as their run-long
/// histograms. A value counts in the second of the next tick, so tick often (every
/// event-loop turn, every notification sent).
#[derive(Debug, Default, Clone)]
pub struct IntervalRecorder {
    /// The second being filled, and each metric's histogram of it so far.
    second: Option<u64>,
    /// Each metric, its histogram of the second being filled, and how many of its
    /// seconds are kept.
    open: Vec<(&'static str, Latency, usize)>,
    pub intervals: Vec<IntervalDoc>,
}

/// The whole Unix second `at` falls in.
pub(crate) fn unix_second(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl IntervalRecorder {
    /// Adds `value` to metric `tag`'s histogram of the second being filled.
    pub fn record(&mut self, tag: &'static str, value: Duration) {
        let index = match self.open.iter().position(|(known, _, _)| *known == tag) {
            Some(index) => index,
            None => {
                self.open
                    .push((tag, Latency::with_digits(INTERVAL_DIGITS), 0));
                self.open.len() - 1
            }
        };
        self.open[index].1.record(value);
    }

    /// When the wall clock has left the second being filled, closes it.
    pub fn tick(&mut self, now: SystemTime) {
        let second = unix_second(now);
        match self.second {
            Some(filling) if filling == second => {}
            Some(_) => {
                self.close();
                self.second = Some(second);
            }
            None => self.second = Some(second),
        }
    }

    /// Closes the second being filled: each metric that recorded anything in it is kept
    /// (at the end of a run, its last, partial second).
    pub fn close(&mut self) {
        let Some(second) = self.second else {
            return;
        };
        for (tag, latency, kept) in &mut self.open {
            if latency.histogram().is_empty() || *kept >= MAX_INTERVALS_PER_METRIC {
                continue;
            }
            *kept += 1;
            self.intervals.push(IntervalDoc {
                tag: (*tag).to_owned(),
                second,
                data: latency.to_base64(),
            });
            latency.reset();
        }
    }
}

/// Intervals of many workers merged: by metric, then by second.
#[derive(Debug, Default, Clone)]
pub struct IntervalSeries {
    pub by_tag: BTreeMap<String, BTreeMap<u64, Latency>>,
}

/// One second of one metric, summarised (what result files keep), its percentiles as
/// HdrHistogram's reference implementations compute them (see
/// [`Latency::value_at_percentile`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SecondSummary {
    /// Seconds since the Unix epoch.
    pub second: u64,
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

impl IntervalSeries {
    /// Adds a worker's intervals; an interval that does not decode is an error.
    pub fn add(&mut self, intervals: &[IntervalDoc]) -> anyhow::Result<()> {
        for doc in intervals {
            let latency = Latency::from_base64_with_digits(&doc.data, INTERVAL_DIGITS)?;
            self.add_latency(&doc.tag, doc.second, &latency);
        }
        Ok(())
    }

    /// Adds one second of one metric.
    pub fn add_latency(&mut self, tag: &str, second: u64, latency: &Latency) {
        self.by_tag
            .entry(tag.to_owned())
            .or_default()
            .entry(second)
            .or_insert_with(|| Latency::with_digits(INTERVAL_DIGITS))
            .merge(latency);
    }

    /// Each metric's seconds, summarised.
    pub fn summaries(&self) -> BTreeMap<String, Vec<SecondSummary>> {
        self.by_tag
            .iter()
            .map(|(tag, seconds)| {
                let summaries = seconds
                    .iter()
                    .map(|(second, latency)| SecondSummary {
                        second: *second,
                        count: latency.histogram().len(),
                        p50_us: latency.value_at_percentile(50.0),
                        p99_us: latency.value_at_percentile(99.0),
                    })
                    .collect();
                (tag.clone(), summaries)
            })
            .collect()
    }

    /// Writes the series as an HdrHistogram interval log: seconds in order, each
    /// metric's line tagged with its name, timestamps relative to the first second (the
    /// log's `StartTime` and `BaseTime`), values in microseconds.
    pub fn write_hlog(&self, out: &mut impl Write) -> anyhow::Result<()> {
        let mut lines: Vec<(u64, &str, &Latency)> = self
            .by_tag
            .iter()
            .flat_map(|(tag, seconds)| {
                seconds
                    .iter()
                    .map(move |(second, latency)| (*second, tag.as_str(), latency))
            })
            .collect();
        lines.sort_by_key(|(second, tag, _)| (*second, *tag));
        let first = lines.first().map_or(0, |(second, _, _)| *second);
        let start = UNIX_EPOCH + Duration::from_secs(first);
        let mut serializer = V2DeflateSerializer::new();
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment("pingfleet interval log: one histogram per metric and second, values in microseconds")
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1.0)
            .begin_log_with(out, &mut serializer)?;
        let base = start.duration_since(UNIX_EPOCH).unwrap_or_default();
        for (second, tag, latency) in lines {
            let offset = Duration::from_secs(second).saturating_sub(base);
            let tag = Tag::new(tag).ok_or_else(|| anyhow::anyhow!("bad tag {tag:?}"))?;
            log.write_histogram(
                latency.histogram(),
                offset,
                Duration::from_secs(1),
                Some(tag),
            )
            .map_err(|err| anyhow::anyhow!("cannot write the interval log: {err:?}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(second) + Duration::from_millis(millis)
    }

    #[test]
    fn each_second_keeps_what_was_recorded_in_it() {
        let mut recorder = IntervalRecorder::default();
        let us = Duration::from_micros;
        recorder.tick(at(100, 10));
        recorder.record("wakeup", us(50));
        recorder.record("wakeup", us(70));
        recorder.tick(at(100, 900));
        assert!(recorder.intervals.is_empty(), "the second is not over");
        recorder.tick(at(101, 5));
        recorder.record("wakeup", us(900));
        recorder.tick(at(103, 0));
        recorder.record("wakeup", us(40));
        recorder.record("loop_lag", us(3));
        recorder.close();
        let seconds: Vec<(&str, u64, u64)> = recorder
            .intervals
            .iter()
            .map(|doc| {
                let latency = Latency::from_base64(&doc.data).unwrap();
                (doc.tag.as_str(), doc.second, latency.histogram().len())
            })
            .collect();
        assert_eq!(
            seconds,
            vec![
                ("wakeup", 100, 2),
                ("wakeup", 101, 1),
                ("wakeup", 103, 1),
                ("loop_lag", 103, 1)
            ],
            "no empty seconds; the last closed at the end"
        );
        let mut series = IntervalSeries::default();
        series.add(&recorder.intervals).unwrap();
        series.add(&recorder.intervals).unwrap();
        let summaries = series.summaries();
        assert_eq!(summaries["wakeup"][0].count, 4, "workers' seconds merge");
        assert!(
            summaries["wakeup"][1].p50_us.abs_diff(900) <= 9,
            "1% resolution"
        );
    }

    #[test]
    fn the_log_has_a_tagged_line_per_metric_and_second() {
        let mut series = IntervalSeries::default();
        let mut latency = Latency::default();
        latency.record(Duration::from_micros(250));
        series.add_latency("wakeup", 1_000, &latency);
        series.add_latency("floor", 1_001, &latency);
        let mut out = Vec::new();
        series.write_hlog(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("Tag=")).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with("Tag=wakeup,0.000,1.000,250.0"),
            "{text}"
        );
        assert!(lines[1].starts_with("Tag=floor,1.000,1.000,"), "{text}");
        assert!(text.contains("#[StartTime: 1000.000"), "{text}");
    }
}
