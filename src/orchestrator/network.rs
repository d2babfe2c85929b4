//! What the path between devices and server did, for network engineers: the firewall's
//! own account (flows, idle expiries, evictions, its memory and delay), and the
//! devices' (Pings that died and how they found out, mail on time, late or lost, how
//! long devices were unreachable, where adaptive heartbeats ended).

use crate::firewall::launch::FirewallReport;
use crate::firewall::proxy::IdleAction;
use crate::fleet::report::WorkerReport;
use crate::fleet::stats::Tally;
use crate::measure::latency::LatencySummary;
use crate::scenario::{FirewallMode, FirewallSection};

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
    /// For each dead Ping: from its sending (the flow's last activity) to the sending of
    /// the next Ping answered.
    pub unreachable: LatencySummary,
    /// `unreachable` less the firewall's idle timeout: from the drop itself to the next
    /// working Ping (present with a firewall).
    pub staleness: Option<LatencySummary>,
    /// Where adaptive and stepped devices' heartbeats ended, by value, and when adaptive
    /// devices settled (from the worker's start).
    pub heartbeat_at_end: Tally,
    pub heartbeat_settled: LatencySummary,
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
    pub fn of(
        fleet: &WorkerReport,
        section: Option<&FirewallSection>,
        reports: &[FirewallReport],
    ) -> Option<Self> {
        let counters = &fleet.counters;
        let died = |how: &str| counters.pings_died.get(how).copied().unwrap_or(0);
        if section.is_none() && counters.pings_died.is_empty() {
            return None;
        }
        let summary = |name: &str| {
            fleet
                .histograms
                .get(name)
                .map(|doc| doc.summary)
                .unwrap_or_default()
        };
        let unreachable = summary("unreachable_us");
        let staleness = section.map(|section| {
            let timeout = section.idle_timeout.0.as_micros() as u64;
            let less = |us: u64| us.saturating_sub(timeout);
            LatencySummary {
                count: unreachable.count,
                p50_us: less(unreachable.p50_us),
                p90_us: less(unreachable.p90_us),
                p99_us: less(unreachable.p99_us),
                p999_us: less(unreachable.p999_us),
                max_us: less(unreachable.max_us),
            }
        });
        let (sent, on_time, late, lost) = (
            counters.notifications_sent,
            counters.notifications_on_time,
            counters.notifications_late,
            counters.notifications_lost,
        );
        Some(Self {
            firewall: section.map(|section| FirewallFigures::of(section, reports)),
            sent,
            on_time,
            late,
            lost,
            accounting_closes: sent == on_time + late + lost,
            pings_died_by_deadline: died("deadline"),
            pings_died_by_reset: died("reset"),
            unreachable,
            staleness,
            heartbeat_at_end: counters.heartbeat_at_end.clone(),
            heartbeat_settled: summary("heartbeat_settled_us"),
        })
    }
}

impl FirewallFigures {
    fn of(section: &FirewallSection, reports: &[FirewallReport]) -> Self {
        let sum = |field: fn(&FirewallReport) -> u64| reports.iter().map(field).sum::<u64>();
        let per_flow: Vec<f64> = reports.iter().filter_map(|r| r.bytes_per_flow).collect();
        let mut medians: Vec<u64> = reports.iter().map(|r| r.forwarding.p50_us).collect();
        medians.sort_unstable();
        Self {
            mode: section.mode,
            action: section.action,
            idle_timeout_s: section.idle_timeout.0.as_secs_f64(),
            processes: reports.len(),
            flows_opened: sum(|r| r.flows_opened),
            idle_expired: sum(|r| r.idle_expired),
            evicted: sum(|r| r.evicted),
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
