//! What the emulated networks did, for network engineers and capacity planners: each
//! network's setting beside what crossed it and what it dropped, the round trip the
//! devices' own kernels measured against the round trip set, the segments TCP
//! retransmitted per device-hour, and what the emulator itself cost.

use crate::fleet::histogram::HistogramName;
use crate::fleet::report::WorkerReport;
use crate::link::forward::RouteCounts;
use crate::link::launch::LinkReport;
use crate::link::profile::NetworkProfile;
use crate::measure::latency::LatencySummary;

/// The `links` key of a result file: the emulated networks (`null` without any).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct LinkFigures {
    pub networks: Vec<NetworkFigure>,
    /// The round trip the devices' kernels measured (`TCP_INFO`, smoothed, read at
    /// each response), every network together; `null` when none was read.
    pub path_rtt: Option<LatencySummary>,
    /// The TCP handshake each device timed (connect() to connected: one round trip,
    /// no delayed ACK in it), every network together; `null` without connections.
    #[serde(default)]
    pub handshake_rtt: Option<LatencySummary>,
    /// Its median over the round trip set, when the run has one network.
    #[serde(default)]
    pub handshake_p50_over_set: Option<f64>,
    /// The smoothed round trip's median over the round trip set (every network's set round trip, weighted by
    /// the packets each carried), when the run has one network: 1.00 is the setting.
    pub rtt_p50_over_set: Option<f64>,
    /// Segments the devices' kernels retransmitted, per device-hour of the run.
    pub retransmits_per_device_hour: Option<f64>,
    /// Packets that crossed the emulator (every network, both ways).
    pub packets: u64,
    /// The emulator's own CPU per 1,000 packets a second (cores), over the run.
    pub emulator_cores_per_kpps: Option<f64>,
    pub emulator_cpu_seconds: Option<f64>,
    /// The most packets the links held at once.
    pub peak_held: u64,
    /// Packets the emulator wrote back that the kernel refused (lost on the path).
    #[serde(default)]
    pub write_errors: u64,
}

/// One network: its setting and what its links carried and dropped.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct NetworkFigure {
    pub name: String,
    /// The setting in words (round trip, jitter, loss, rates, outages).
    pub setting: String,
    pub profile: NetworkProfile,
    #[serde(flatten)]
    pub counts: RouteCounts,
}

impl NetworkFigure {
    /// Packets the network dropped, every cause, over those it was given.
    pub fn dropped_share(&self) -> Option<f64> {
        let counts = &self.counts;
        let given = counts.packets_up + counts.packets_down;
        let dropped = counts.dropped_loss + counts.dropped_outage + counts.dropped_queue;
        (given > 0).then(|| dropped as f64 / given as f64)
    }
}

impl LinkFigures {
    /// The figures of `report` (the emulator's) and `fleet` (the devices'), over a
    /// run of `device_hours` real-world device-hours; `None` without a report.
    pub fn of(
        report: Option<&LinkReport>,
        fleet: &WorkerReport,
        device_hours: f64,
    ) -> Option<Self> {
        let report = report?;
        let networks: Vec<NetworkFigure> = report
            .networks
            .iter()
            .map(|network| NetworkFigure {
                name: network.name.clone(),
                setting: network.profile.words(),
                profile: network.profile.clone(),
                counts: network.counts.clone(),
            })
            .collect();
        let path_rtt = fleet
            .histograms
            .get(&HistogramName::PathRtt)
            .map(|doc| doc.summary)
            .filter(|summary| summary.count > 0);
        let handshake_rtt = fleet
            .histograms
            .get(&HistogramName::Connect)
            .map(|doc| doc.summary)
            .filter(|summary| summary.count > 0);
        let over_set = |measured: Option<LatencySummary>| match (&networks[..], measured) {
            ([only], Some(rtt)) if !only.profile.round_trip().is_zero() => {
                Some(rtt.p50_us as f64 / only.profile.round_trip().as_micros() as f64)
            }
            _ => None,
        };
        let rtt_p50_over_set = over_set(path_rtt);
        let handshake_p50_over_set = over_set(handshake_rtt);
        Some(Self {
            networks,
            path_rtt,
            handshake_rtt,
            handshake_p50_over_set,
            rtt_p50_over_set,
            retransmits_per_device_hour: (device_hours > 0.0)
                .then(|| fleet.counters.tcp_retransmits as f64 / device_hours),
            packets: report.packets,
            emulator_cores_per_kpps: report.cores_per_kpps,
            emulator_cpu_seconds: report.cpu_seconds,
            peak_held: report.peak_held,
            write_errors: report.write_errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::launch::RouteReport;

    #[test]
    fn the_measured_round_trip_is_read_against_the_one_set_and_drops_are_shared() {
        let lte = NetworkProfile::lte();
        let report = LinkReport {
            networks: vec![RouteReport {
                name: "lte".to_owned(),
                subnet: "198.18.16.0/24".to_owned(),
                profile: lte.clone(),
                counts: RouteCounts {
                    packets_up: 600,
                    packets_down: 400,
                    dropped_loss: 5,
                    dropped_outage: 3,
                    dropped_queue: 2,
                    ..RouteCounts::default()
                },
            }],
            passed: 0,
            peak_held: 7,
            write_errors: 0,
            wall_seconds: 10.0,
            cpu_seconds: Some(0.1),
            packets: 1000,
            cores_per_kpps: Some(0.1),
        };
        let mut fleet = WorkerReport::empty();
        let mut rtt = crate::measure::latency::Latency::default();
        for ms in [70, 71, 72] {
            rtt.record(std::time::Duration::from_millis(ms));
        }
        fleet.histograms.insert(
            HistogramName::PathRtt,
            crate::fleet::report::HistogramDoc::new(&rtt),
        );
        fleet.counters.tcp_retransmits = 30;
        let figures = LinkFigures::of(Some(&report), &fleet, 10.0).unwrap();
        let ratio = figures.rtt_p50_over_set.unwrap();
        assert!((1.0..1.03).contains(&ratio), "{ratio}");
        assert_eq!(figures.retransmits_per_device_hour, Some(3.0));
        assert_eq!(figures.networks[0].dropped_share(), Some(0.01));
        assert!(figures.networks[0].setting.starts_with("70 ms round trip"));
        assert!(LinkFigures::of(None, &fleet, 10.0).is_none());
    }
}
