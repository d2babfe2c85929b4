//! What the path between devices and server did, for network engineers: the firewall's
//! own account (flows, idle expiries, evictions, its memory and delay), and the
//! devices' (Pings that died and how they found out, mail on time, late or lost, how
//! long devices were unreachable, where adaptive heartbeats ended).

use crate::firewall::launch::FirewallReport;
use crate::firewall::proxy::IdleAction;
use crate::fleet::report::HistogramName;
use crate::fleet::report::WorkerReport;
use crate::fleet::stats::Tally;
use crate::measure::latency::{Latency, LatencySummary};
use crate::scenario::{FirewallConfig, FirewallMode};

/// The `network` key of a result file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct NetworkFigures {
    /// The middlebox, when the scenario had one.
    pub firewall: Option<FirewallFigures>,
    /// Notifications sent, and how each ended: on time (the Ping parked when it was
    /// planned answered it), late (delivered through a Ping sent after one died), lost.
    /// `sent = on_time + late + lost` when the accounting closes.
    pub sent: u64,
    pub on_time: u64,
    pub late: u64,
    pub lost: u64,
    pub accounting_closes: bool,
    /// Parked Pings that died, found out by the device's deadline (a silent drop) or by
    /// a reset.
    pub pings_died_by_deadline: u64,
    pub pings_died_by_reset: u64,
    /// Parked Pings a gateway answered with a 504 (a reverse proxy's read timeout) or a
    /// 502 (an old HAProxy process at its hard stop), and those whose connection the
    /// other end closed (an old nginx worker at its shutdown timeout).
    #[serde(default)]
    pub pings_died_by_gateway: u64,
    #[serde(default)]
    pub pings_died_by_close: u64,
    /// For each Ping that died of an idle drop: from its sending (the flow's last
    /// activity) to the sending of the next Ping answered (a flush's deaths are in
    /// `staleness`, from the flush).
    pub unreachable: LatencySummary,
    /// From each cut-off to the next working Ping (present with a firewall): for an
    /// idle drop, `unreachable` less the firewall's idle timeout; for a flush, from the
    /// flush to the device's first Ping on a new connection (`flush.repark`).
    pub staleness: Option<LatencySummary>,
    /// Where adaptive and stepped devices' heartbeats ended, by value, and when adaptive
    /// devices settled (from the worker's start).
    pub heartbeat_at_end: Tally,
    pub heartbeat_settled: LatencySummary,
    /// The flush (`firewall.flush_at`), when there was one.
    #[serde(default)]
    pub flush: Option<FlushFigures>,
}

/// A flush of every flow at once, and how the fleet came back.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct FlushFigures {
    /// Seconds since the start of the run when the flows were dropped.
    pub at_s: Option<f64>,
    /// Devices parked at the flush, and those that pinged on a new connection since.
    pub parked: u64,
    pub reparked: u64,
    /// From the flush to each device's first Ping on a new connection: p50 is when half
    /// the fleet was parked again, max when all were (if `reparked == parked`).
    pub repark: LatencySummary,
    /// The reconnect storm after the flush, in the machine's own seconds (never scaled).
    #[serde(default)]
    pub storm: StormFigures,
}

/// What the fleet did after a flush: connections opened and TLS handshakes finished,
/// full and resumed apart, in all and in the busiest second of each.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct StormFigures {
    pub connects: u64,
    pub full_handshakes: u64,
    pub resumed_handshakes: u64,
    pub peak_connects_per_s: u64,
    pub peak_full_handshakes_per_s: u64,
    pub peak_resumed_handshakes_per_s: u64,
    /// Devices parked again (a Ping on a new connection) in the busiest second.
    pub peak_reparks_per_s: u64,
}

impl StormFigures {
    /// From the merged fleet document's histograms of instants after the flush.
    fn of(fleet: &WorkerReport) -> Self {
        let instants = |name: HistogramName| {
            fleet
                .histograms
                .get(&name)
                .and_then(|doc| Latency::from_base64(&doc.data).ok())
                .unwrap_or_default()
        };
        let (connects, full, resumed, reparks) = (
            instants(HistogramName::AfterFlushConnect),
            instants(HistogramName::AfterFlushFullHandshake),
            instants(HistogramName::AfterFlushResumedHandshake),
            instants(HistogramName::Repark),
        );
        let peak = |instants: &Latency| instants.busiest_second().map_or(0, |(_, count)| count);
        Self {
            connects: connects.histogram().len(),
            full_handshakes: full.histogram().len(),
            resumed_handshakes: resumed.histogram().len(),
            peak_connects_per_s: peak(&connects),
            peak_full_handshakes_per_s: peak(&full),
            peak_resumed_handshakes_per_s: peak(&resumed),
            peak_reparks_per_s: peak(&reparks),
        }
    }
}

/// The firewall's processes together.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct FirewallFigures {
    pub mode: FirewallMode,
    pub action: IdleAction,
    pub idle_timeout_s: f64,
    /// Processes that reported (one per partition).
    pub processes: usize,
    pub flows_opened: u64,
    pub idle_expired: u64,
    pub evicted: u64,
    /// Device connections the middlebox could not accept or forward (out of
    /// descriptors, or the server refused): above 0, it was a bottleneck.
    #[serde(default)]
    pub refused: u64,
    pub peak_flows: u64,
    /// The middlebox's own memory per flow, averaged over its processes.
    pub bytes_per_flow: Option<f64>,
    /// The delay it adds to a forwarded chunk: the median of its processes' medians
    /// and the highest p99.
    pub forwarding_p50_us: u64,
    pub forwarding_p99_us: u64,
}

impl NetworkFigures {
    /// From the merged fleet document and the firewall's reports; `None` when there
    /// was no firewall and no Ping died (nothing for a network engineer to read).
    /// Figures that follow the run's intervals (unreachable, staleness, heartbeats) are
    /// multiplied by `time_scale`, back to real-world units; the firewall's section
    /// is the compressed one (its timeout divided by the scale).
    pub fn of(
        fleet: &WorkerReport,
        (section, reports): (Option<&FirewallConfig>, &[FirewallReport]),
        proxied: bool,
        time_scale: f64,
    ) -> Option<Self> {
        let counters = &fleet.counters;
        let died = |how: &str| counters.pings_died.get(how).copied().unwrap_or(0);
        if section.is_none() && !proxied && counters.pings_died.is_empty() {
            return None;
        }
        let summary = |name: HistogramName| {
            let summary = fleet
                .histograms
                .get(&name)
                .map(|doc| doc.summary)
                .unwrap_or_default();
            scaled(summary, time_scale)
        };
        let unreachable = summary(HistogramName::Unreachable);
        let staleness = section.map(|section| {
            let histogram = |name: HistogramName| {
                fleet
                    .histograms
                    .get(&name)
                    .and_then(|doc| Latency::from_base64(&doc.data).ok())
                    .unwrap_or_default()
            };
            // Every cut-off: an idle drop, its timeout after the flow's last activity,
            // and a flush, from its own instant to the device's Ping on a new
            // connection.
            let mut stale =
                histogram(HistogramName::Unreachable).shortened_by(section.idle_timeout.0);
            stale.merge(&histogram(HistogramName::Repark));
            scaled(stale.summary(), time_scale)
        });
        let (sent, on_time, late, lost) = (
            counters.notifications_sent,
            counters.notifications_on_time,
            counters.notifications_late,
            counters.notifications_lost,
        );
        Some(Self {
            firewall: section.map(|section| FirewallFigures::of(section, reports, time_scale)),
            sent,
            on_time,
            late,
            lost,
            accounting_closes: sent == on_time + late + lost,
            pings_died_by_deadline: died("deadline"),
            pings_died_by_reset: died("reset"),
            pings_died_by_gateway: died("http 504") + died("http 502"),
            pings_died_by_close: died("closed"),
            unreachable,
            staleness,
            heartbeat_at_end: scaled_heartbeats(&counters.heartbeat_at_end, time_scale),
            heartbeat_settled: summary(HistogramName::HeartbeatSettled),
            flush: (counters.flush_marked > 0).then(|| FlushFigures {
                at_s: None,
                parked: counters.flush_marked,
                reparked: counters.flush_reparked,
                repark: summary(HistogramName::Repark),
                storm: StormFigures::of(fleet),
            }),
        })
    }
}

impl FirewallFigures {
    fn of(section: &FirewallConfig, reports: &[FirewallReport], time_scale: f64) -> Self {
        let sum = |field: fn(&FirewallReport) -> u64| reports.iter().map(field).sum::<u64>();
        let per_flow: Vec<f64> = reports.iter().filter_map(|r| r.bytes_per_flow).collect();
        let mut medians: Vec<u64> = reports.iter().map(|r| r.forwarding.p50_us).collect();
        medians.sort_unstable();
        Self {
            mode: section.mode,
            action: section.action,
            idle_timeout_s: section.idle_timeout.0.as_secs_f64() * time_scale,
            processes: reports.len(),
            flows_opened: sum(|r| r.flows_opened),
            idle_expired: sum(|r| r.idle_expired),
            evicted: sum(|r| r.evicted),
            refused: sum(|r| r.accept_failed + r.upstream_refused),
            peak_flows: sum(|r| r.peak_flows),
            bytes_per_flow: (!per_flow.is_empty())
                .then(|| per_flow.iter().sum::<f64>() / per_flow.len() as f64),
            forwarding_p50_us: medians.get(medians.len() / 2).copied().unwrap_or(0),
            forwarding_p99_us: reports
                .iter()
                .map(|r| r.forwarding.p99_us)
                .max()
                .unwrap_or(0),
        }
    }
}

/// A summary of intervals measured in compressed time, in real-world units.
fn scaled(summary: LatencySummary, time_scale: f64) -> LatencySummary {
    let up = |us: u64| (us as f64 * time_scale).round() as u64;
    LatencySummary {
        count: summary.count,
        p50_us: up(summary.p50_us),
        p90_us: up(summary.p90_us),
        p99_us: up(summary.p99_us),
        p999_us: up(summary.p999_us),
        max_us: up(summary.max_us),
    }
}

/// Heartbeats counted by value (`8s`, `9s 500ms`) in compressed time, by real-world
/// value in whole seconds (`480s`).
fn scaled_heartbeats(tally: &Tally, time_scale: f64) -> Tally {
    let mut real = Tally::new();
    for (value, count) in tally {
        let key = match humantime::parse_duration(value) {
            Ok(duration) => format!("{}s", duration.mul_f64(time_scale).as_secs_f64().round()),
            Err(_) => value.clone(),
        };
        *real.entry(key).or_default() += count;
    }
    real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_figures_are_scaled_back() {
        let summary = LatencySummary {
            count: 3,
            p50_us: 1_000,
            p90_us: 2_000,
            p99_us: 3_000,
            p999_us: 3_000,
            max_us: 3_500,
        };
        let real = scaled(summary, 60.0);
        assert_eq!((real.count, real.p50_us, real.max_us), (3, 60_000, 210_000));
        let mut heartbeats = Tally::new();
        heartbeats.insert("8s".into(), 2);
        heartbeats.insert("9s 500ms".into(), 1);
        let real = scaled_heartbeats(&heartbeats, 60.0);
        assert_eq!(real["480s"], 2);
        assert_eq!(real["570s"], 1);
    }
}
