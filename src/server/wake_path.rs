//! The server's wake path in parts: from the kernel receiving a change datagram to the
//! kernel sending the woken Ping's response, as one histogram per stage, so a slow wake
//! shows where its time went (the socket's queue, the store, the hand-off to the
//! parked Ping's task, encoding, framing, then sealing, writing and the network stack).
//!
//! A [`WakeTrace`] rides with the wake from the notification listener to the parked
//! Ping; the engine that writes the response closes it with [`WakePath::record`].
//! `/metrics` shows each stage's quantiles; `/wake-path` hands the histograms
//! themselves to the orchestrator, which merges the partitions' into the result.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::measure::latency::{Latency, LatencySummary};

/// One stage of the wake path, in the order a wake passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WakeStage {
    /// Kernel receive stamp -> the listener read the datagram.
    Queued,
    /// Read -> parsed, stored and the parked Ping's waker signalled.
    Applied,
    /// Signalled -> the parked Ping's task ran with the wake.
    Handoff,
    /// Ran -> the Ping response encoded.
    Encoded,
    /// Encoded -> the HTTP response framed and handed to the connection.
    Framed,
    /// Handed -> the kernel's transmit stamp of its last bytes: TLS sealing, the write
    /// and the network stack (the lean engine; hyper does not expose its sends).
    Transmitted,
    /// Kernel receive stamp -> transmit stamp (or hand-over, without one).
    Total,
}

impl WakeStage {
    pub const ALL: [WakeStage; 7] = [
        Self::Queued,
        Self::Applied,
        Self::Handoff,
        Self::Encoded,
        Self::Framed,
        Self::Transmitted,
        Self::Total,
    ];

    /// The name in `/metrics` labels and in the result.
    pub fn key(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Applied => "applied",
            Self::Handoff => "handoff",
            Self::Encoded => "encoded",
            Self::Framed => "framed",
            Self::Transmitted => "transmitted",
            Self::Total => "total",
        }
    }
}

/// When a wake left the notification listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeTrace {
    /// The kernel received the datagram (its receive stamp).
    pub received: Instant,
    /// The listener read it.
    pub read: Instant,
    /// The parked Ping's waker was signalled.
    pub signalled: Instant,
}

/// A wake's instants on the parked Ping's side, up to its encoded response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WokenPing {
    pub trace: WakeTrace,
    /// The parked Ping's task ran with the wake.
    pub ran: Instant,
    pub encoded: Instant,
}

/// Each stage's histogram, in microseconds.
#[derive(Debug)]
pub struct WakePath {
    stages: Mutex<[Latency; WakeStage::ALL.len()]>,
}

impl Default for WakePath {
    fn default() -> Self {
        Self {
            stages: Mutex::new(std::array::from_fn(|_| Latency::default())),
        }
    }
}

impl WakePath {
    /// Records a wake whose response was handed to the kernel at `handed`, and left it
    /// at `transmitted` if the engine read the transmit stamp.
    pub fn record(&self, woken: &WokenPing, handed: Instant, transmitted: Option<Instant>) {
        let trace = woken.trace;
        let since = |later: Instant, earlier: Instant| later.saturating_duration_since(earlier);
        let end = transmitted.unwrap_or(handed);
        // Once per wake: a fixed array, no allocation.
        let parts = [
            (WakeStage::Queued, Some(since(trace.read, trace.received))),
            (WakeStage::Applied, Some(since(trace.signalled, trace.read))),
            (WakeStage::Handoff, Some(since(woken.ran, trace.signalled))),
            (WakeStage::Encoded, Some(since(woken.encoded, woken.ran))),
            (WakeStage::Framed, Some(since(handed, woken.encoded))),
            (
                WakeStage::Transmitted,
                transmitted.map(|transmitted| since(transmitted, handed)),
            ),
            (WakeStage::Total, Some(since(end, trace.received))),
        ];
        let mut stages = self.stages.lock().unwrap_or_else(PoisonError::into_inner);
        for (stage, took) in parts {
            if let Some(took) = took {
                stages[stage as usize].record(took);
            }
        }
    }

    /// A copy of one stage's histogram.
    pub fn histogram(&self, stage: WakeStage) -> Latency {
        self.stages.lock().unwrap_or_else(PoisonError::into_inner)[stage as usize].clone()
    }

    /// Every stage's histogram, for `/wake-path` (see [`WakePathReading`]).
    pub fn reading(&self) -> WakePathReading {
        let stages = self.stages.lock().unwrap_or_else(PoisonError::into_inner);
        WakePathReading(
            WakeStage::ALL
                .iter()
                .map(|stage| (stage.key().to_owned(), stages[*stage as usize].to_base64()))
                .collect(),
        )
    }

    /// Each stage's quantiles in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP pingfleet_wake_stage_microseconds Each stage of a wake, from the kernel receiving the datagram to the kernel sending the Ping response.\n# TYPE pingfleet_wake_stage_microseconds summary");
        // Summarised under one lock, no histogram copied: `/metrics` is read every second.
        let summaries: Vec<LatencySummary> = {
            let stages = self.stages.lock().unwrap_or_else(PoisonError::into_inner);
            stages.iter().map(Latency::summary).collect()
        };
        for stage in WakeStage::ALL {
            let summary = summaries[stage as usize];
            for (quantile, value) in [(0.5, summary.p50_us), (0.99, summary.p99_us)] {
                let _ = writeln!(
                    out,
                    "pingfleet_wake_stage_microseconds{{stage=\"{}\",quantile=\"{quantile}\"}} {value}",
                    stage.key()
                );
            }
            let _ = writeln!(
                out,
                "pingfleet_wake_stage_microseconds_count{{stage=\"{}\"}} {}",
                stage.key(),
                summary.count
            );
        }
    }
}

/// The histograms of a partition's wake path, by stage name, each as the base64 of its
/// compressed HdrHistogram: what `/wake-path` serves and the orchestrator merges.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WakePathReading(pub BTreeMap<String, String>);

impl WakePathReading {
    /// The stages of several partitions merged, summarised by stage name (stages no
    /// wake passed, such as `transmitted` under hyper, are left out).
    pub fn summarise(readings: &[WakePathReading]) -> anyhow::Result<WakePathFigures> {
        let mut merged: BTreeMap<String, Latency> = BTreeMap::new();
        for reading in readings {
            for (stage, encoded) in &reading.0 {
                let histogram = Latency::from_base64(encoded)?;
                merged.entry(stage.clone()).or_default().merge(&histogram);
            }
        }
        Ok(WakePathFigures(
            merged
                .into_iter()
                .map(|(stage, histogram)| (stage, histogram.summary()))
                .filter(|(_, summary)| summary.count > 0)
                .collect(),
        ))
    }
}

/// The server's wake path by stage (`queued`, `applied`, `handoff`, `encoded`,
/// `framed`, `transmitted`, `total`), every partition merged.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WakePathFigures(pub BTreeMap<String, LatencySummary>);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn woken(at: Instant) -> WokenPing {
        let us = Duration::from_micros;
        WokenPing {
            trace: WakeTrace {
                received: at,
                read: at + us(10),
                signalled: at + us(15),
            },
            ran: at + us(45),
            encoded: at + us(50),
        }
    }

    #[test]
    fn each_stage_is_the_time_between_its_instants() {
        let path = WakePath::default();
        let at = Instant::now();
        path.record(&woken(at), at + Duration::from_micros(80), None);
        let p50 = |stage| path.histogram(stage).summary().p50_us;
        assert_eq!(p50(WakeStage::Queued), 10);
        assert_eq!(p50(WakeStage::Applied), 5);
        assert_eq!(p50(WakeStage::Handoff), 30);
        assert_eq!(p50(WakeStage::Encoded), 5);
        assert_eq!(p50(WakeStage::Framed), 30);
        assert_eq!(path.histogram(WakeStage::Transmitted).summary().count, 0);
        assert_eq!(p50(WakeStage::Total), 80);
        path.record(
            &woken(at),
            at + Duration::from_micros(80),
            Some(at + Duration::from_micros(100)),
        );
        assert_eq!(p50(WakeStage::Transmitted), 20);
        assert_eq!(path.histogram(WakeStage::Total).summary().max_us, 100);
    }

    #[test]
    fn partitions_merge_by_stage_and_empty_stages_are_left_out() {
        let (one, two) = (WakePath::default(), WakePath::default());
        let at = Instant::now();
        one.record(&woken(at), at + Duration::from_micros(80), None);
        two.record(&woken(at), at + Duration::from_micros(80), None);
        let figures = WakePathReading::summarise(&[one.reading(), two.reading()]).unwrap();
        assert_eq!(figures.0["total"].count, 2);
        assert_eq!(figures.0["handoff"].p50_us, 30);
        assert!(!figures.0.contains_key("transmitted"));
        let text = {
            let mut text = String::new();
            one.render(&mut text);
            text
        };
        assert!(text
            .contains("pingfleet_wake_stage_microseconds{stage=\"handoff\",quantile=\"0.5\"} 30"));
    }
}
