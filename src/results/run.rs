//! The result file of a run (`results/<scenario>-<UTC time>.json`, schema
//! `pingfleet.result/1`): what it measured, the machine it ran on, memory per parked
//! connection, the cost per device-hour, and each threshold's verdict.

use std::collections::BTreeMap;

use crate::fleet::report::HistogramName;
use crate::fleet::report::WorkerReport;
use crate::measure::latency::LatencySummary;
use crate::results::self_check::SelfCheck;
use crate::results::timeline::TimelinePoint;
use crate::server::state::Engine;
use crate::server::wake_path::WakePathFigures;

/// The schema name and version of [`RunResult`].
pub const SCHEMA: &str = "pingfleet.result/1";

/// Everything a run measured.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(
    test,
    schemars(
        title = "pingfleet run result",
        description = "What one `pingfleet run` measured (schema pingfleet.result/1)."
    )
)]
pub struct RunResult {
    /// Always `pingfleet.result/1` for this layout.
    #[cfg_attr(test, schemars(extend("const" = "pingfleet.result/1")))]
    pub schema: String,
    pub tool_version: String,
    /// The memory allocator the binary was built with: `glibc` (the default),
    /// `mimalloc` or `jemalloc` (cargo features, to compare them).
    #[serde(default)]
    pub allocator: String,
    pub git_commit: Option<String>,
    pub scenario: String,
    /// The bundled server engine measured; `null` against an external target.
    pub engine: Option<Engine>,
    /// The external EAS server measured (`target.url`); `null` for the bundled one.
    #[serde(default)]
    pub target: Option<String>,
    /// What the server figures were read from (`RSS of process ...`, a cgroup, or
    /// `not measured`).
    #[serde(default)]
    pub server_measured_from: Option<String>,
    pub seed: u64,
    /// The scenario file's text.
    pub scenario_text: String,
    /// Command-line overrides applied on top of it (`--devices 500`, ...).
    pub overrides: Vec<String>,
    pub machine: Machine,
    pub partitions: u32,
    pub workers: u32,
    /// False when a child failed or the run was cut short; figures are partial then.
    pub complete: bool,
    pub failures: Vec<String>,
    pub memory: Memory,
    /// The machine's floor for a wake-up without EAS (see `measure::calibration`),
    /// measured before the run; `null` if it could not be measured.
    pub calibration: Option<crate::measure::latency::LatencySummary>,
    /// The loopback floor again, measured during the hold beside the run's own
    /// wake-ups (`null` without a hold); wake-up/floor ratios use it when `usable`.
    #[serde(default)]
    pub floor: Option<crate::results::per_second::FloorFigures>,
    /// The run second by second: the interval log written beside this file and each
    /// metric's per-second p50 and p99 (what `pingfleet compare` tests).
    #[serde(default)]
    pub intervals: crate::results::per_second::IntervalFigures,
    /// The merged interval histograms, written to the interval log (not to this file).
    #[serde(skip)]
    #[cfg_attr(test, schemars(skip))]
    pub interval_series: crate::measure::intervals::IntervalSeries,
    /// CPU seconds used by the server partitions and by the device workers.
    pub cpu_seconds_servers: Option<f64>,
    pub cpu_seconds_workers: Option<f64>,
    /// Was the generator (or the machine) saturated during the hold?
    pub self_check: SelfCheck,
    /// Seconds since the start of the run at which the hold began and ended.
    pub hold_window_s: Option<(f64, f64)>,
    /// What one parked device costs per (real-world) hour in the hold (`null` without
    /// a hold).
    pub cost_per_device_hour: Option<DeviceHourCost>,
    /// The bundled server's wake path by stage, every partition merged, from the
    /// kernel receiving a change's datagram to the kernel sending the woken Ping's
    /// response (`null` against an external target, or when nothing woke).
    #[serde(default)]
    pub server_wake_path: Option<WakePathFigures>,
    /// The run's compressed time (1 for real time): heartbeats, timeouts, the hold and
    /// the drain were divided by it; `cost_per_device_hour` and the `network` figures
    /// that follow those intervals are scaled back. Latencies of the wire and the CPU
    /// (wake-up, mail-on-device, connect, handshakes) are as measured.
    #[serde(default = "real_time")]
    pub time_scale: f64,
    /// What the path between devices and server did (with a `[firewall]`, or when
    /// Pings died); `null` otherwise.
    #[serde(default)]
    pub network: Option<crate::results::network::NetworkFigures>,
    /// What the emulated networks between devices and server did (`null` without
    /// `devices.network`).
    #[serde(default)]
    pub links: Option<crate::results::links::LinkFigures>,
    /// The reverse proxy before each partition (`null` without `[proxy]`).
    #[serde(default)]
    pub proxy: Option<crate::results::proxy::ProxyFigures>,
    /// Where the devices' network was made: `packet` (namespaces and `pingfleet link`,
    /// root; its figures under `links`) or `stream` (the middlebox's relays, no root:
    /// a delay and a rate each way, no loss, outage, jitter or handshake round trip;
    /// `links` is `null`); `null` without `devices.network`.
    #[serde(default)]
    pub link_level: Option<crate::scenario::link_level::LinkLevel>,
    /// The device workers' merged document: counters (in total and per stage) and
    /// histograms.
    pub fleet: WorkerReport,
    pub timeline: Vec<TimelinePoint>,
    pub thresholds: Vec<ThresholdVerdict>,
    /// With `compare_engines`: this run beside the first one, with ratios.
    pub comparison: Option<EngineComparison>,
}

impl RunResult {
    /// The summary of a latency the run measured (`None` when it has no sample).
    pub fn summary_of(&self, name: HistogramName) -> Option<LatencySummary> {
        self.fleet
            .histograms
            .get(&name)
            .map(|doc| doc.summary)
            .filter(|summary| summary.count > 0)
    }
}

/// The figures of one engine in a comparison.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct EngineFigures {
    pub engine: Option<Engine>,
    pub server_bytes_per_parked: Option<f64>,
    pub wakeup_p99_us: Option<f64>,
    pub device_bytes_per_device: Option<f64>,
}

impl EngineFigures {
    fn of(result: &RunResult) -> Self {
        Self {
            engine: result.engine,
            server_bytes_per_parked: result.memory.server_bytes_per_parked,
            wakeup_p99_us: result
                .fleet
                .histograms
                .get(&HistogramName::WakeupLatency)
                .map(|doc| doc.summary.p99_us as f64),
            device_bytes_per_device: result.memory.device_bytes_per_device,
        }
    }
}

/// Two engines measured one after the other in one run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct EngineComparison {
    pub lean: EngineFigures,
    pub hyper: EngineFigures,
    /// hyper's server memory per parked Ping over lean's.
    pub memory_ratio: Option<f64>,
    /// hyper's wake-up p99 over lean's.
    pub wakeup_p99_ratio: Option<f64>,
}

impl EngineComparison {
    pub fn between(first: &RunResult, second: &RunResult) -> Self {
        let (lean, hyper) = (EngineFigures::of(first), EngineFigures::of(second));
        let ratio =
            |a: Option<f64>, b: Option<f64>| a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b);
        Self {
            memory_ratio: ratio(hyper.server_bytes_per_parked, lean.server_bytes_per_parked),
            wakeup_p99_ratio: ratio(hyper.wakeup_p99_us, lean.wakeup_p99_us),
            lean,
            hyper,
        }
    }
}

/// The machine the run was on.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Machine {
    pub cores: usize,
    pub memory_bytes: Option<u64>,
    pub kernel: Option<String>,
    pub fd_limit: u64,
}

impl Machine {
    pub fn read(fd_limit: u64) -> Self {
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
                Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
            });
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|text| text.trim().to_owned()),
            fd_limit,
        }
    }
}

/// Memory per parked connection: server user space, device user space and the
/// kernel, each apart; `null` when not measured.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Memory {
    pub server_rss_baseline_bytes: Option<u64>,
    pub server_rss_plateau_bytes: Option<u64>,
    /// Each partition's RSS at the plateau, in partition order (to compare with `ps`).
    #[serde(default)]
    pub server_rss_plateau_by_partition: Vec<u64>,
    pub parked_at_plateau: Option<u64>,
    /// (plateau - baseline) / parked, summed over the server partitions.
    pub server_bytes_per_parked: Option<f64>,
    /// The bundled server's live heap (bytes allocated and not freed, counted by its
    /// allocator) before the devices and at the plateau, all partitions; `null` for an
    /// external server.
    #[serde(default)]
    pub server_heap_baseline_bytes: Option<u64>,
    #[serde(default)]
    pub server_heap_plateau_bytes: Option<u64>,
    /// (plateau - baseline) / parked: the heap each parked Ping holds. Unlike RSS it
    /// sees a new allocation that reuses memory the allocator already held (RSS missed
    /// 2 KiB more per parked Ping that way), and it barely varies from run to run.
    #[serde(default)]
    pub server_heap_bytes_per_parked: Option<f64>,
    /// The growth of each part of the server's live heap (`measure::heap`: `tls`,
    /// `connections`, `rest`) per parked connection; empty when not measured.
    #[serde(default)]
    pub server_heap_parts_per_parked: BTreeMap<String, f64>,
    /// The workers' live heap per device: its growth from before their devices were
    /// made to the start of the hold (every device parked), and by part (`devices`,
    /// `tls`: on devices mostly the session tickets kept, `rest`).
    #[serde(default)]
    pub device_heap_bytes_per_device: Option<f64>,
    #[serde(default)]
    pub device_heap_parts_per_device: BTreeMap<String, f64>,
    /// The workers' RSS before their devices started, and at the plateau.
    pub worker_rss_baseline_bytes: Option<u64>,
    pub worker_rss_plateau_bytes: Option<u64>,
    /// (plateau - baseline) / parked, summed over the device workers.
    pub device_bytes_per_device: Option<f64>,
    /// Growth of the kernel's slab memory from baseline to plateau per parked
    /// connection. On loopback this holds both ends of each connection (the device's
    /// socket and the server's), and whatever else the kernel allocated meanwhile.
    pub kernel_slab_bytes_per_connection: Option<f64>,
    /// TCP socket buffer memory at the plateau (`/proc/net/sockstat` mem), all sockets.
    pub kernel_tcp_buffer_bytes_at_plateau: Option<u64>,
    /// The sockets on this machine for each device's connection: 2 (the device's end and
    /// the server's), 4 behind the userspace middlebox (its two ends besides), 1 against
    /// an external server elsewhere. The kernel slab figure covers all of them.
    #[serde(default)]
    pub sockets_per_device: u32,
    /// Why the per-parked figures are `null` although readings were taken: the plateau
    /// held too few of the planned devices for a per-device figure to mean anything.
    #[serde(default)]
    pub not_measured_why: Option<String>,
}

/// The share of the planned devices that must be parked at the plateau for a figure
/// per parked connection to be a measurement (below it, fixed costs dominate).
pub const MEASURED_PLATEAU_SHARE: f64 = 0.9;

/// What one device costs per hour of the hold: the hold's counts divided by devices
/// and hours.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct DeviceHourCost {
    pub requests: f64,
    pub ping_requests: f64,
    /// Bytes on the wire both ways, HTTP headers included (TLS records with TLS).
    pub bytes: f64,
    pub connections: f64,
    pub tls_handshakes: f64,
    /// Of `tls_handshakes`, those resumed with a session ticket.
    #[serde(default)]
    pub tls_resumed: f64,
    /// Pings answered with changes that brought nothing (each a radio wake and a
    /// request pair for nothing), per device-hour of the fleet, and of each kind.
    #[serde(default)]
    pub empty_wakes: f64,
    #[serde(default)]
    pub empty_wakes_by_kind: BTreeMap<String, f64>,
    /// The radio model (`lte`, `umts`) and the battery (watt-hours) the figures below
    /// are counted against (the scenario's `devices.radio` and `devices.battery_wh`).
    #[serde(default)]
    pub radio: String,
    #[serde(default)]
    pub battery_wh: f64,
    /// The radio (driven by each device's own requests and responses): seconds it was promoting or in a tail, joules it spent
    /// above idle, and promotions from idle (billable data sessions).
    #[serde(default)]
    pub radio_active_s: f64,
    #[serde(default)]
    pub radio_joules: f64,
    #[serde(default)]
    pub data_sessions: f64,
    /// The share of a day's charge of the scenario's battery (`devices.battery_wh`)
    /// the radio spends on mail at this rate, all day.
    #[serde(default)]
    pub battery_share_per_day: f64,
    /// Texts the SMS gateway was asked to send, and of them those it lost.
    #[serde(default)]
    pub sms_sent: f64,
    #[serde(default)]
    pub sms_lost: f64,
}

impl DeviceHourCost {
    /// From the merged hold stage, in real-world hours (a hold compressed by
    /// `time_scale` stood for that many times its length); `None` without a hold or
    /// devices.
    pub fn of(
        fleet: &WorkerReport,
        time_scale: f64,
        devices: &crate::fleet::config::FleetConfig,
    ) -> Option<Self> {
        let battery_wh = devices.battery_wh;
        let hold = fleet
            .stages
            .iter()
            .find(|stage| stage.name == crate::phase::Phase::Hold)?;
        let device_hours = fleet.devices as f64 * hold.duration_s * time_scale / 3600.0;
        if device_hours <= 0.0 {
            return None;
        }
        let counters = &hold.counters;
        let per = |count: u64| count as f64 / device_hours;
        let radio_joules = counters.radio_microjoules as f64 / 1e6 / device_hours;
        Some(Self {
            radio: devices.radio.model().name.into(),
            battery_wh,
            radio_active_s: counters.radio_active_us as f64 / 1e6 / device_hours,
            radio_joules,
            data_sessions: per(counters.radio_sessions),
            battery_share_per_day: radio_joules * 24.0 / (battery_wh * 3600.0),
            sms_sent: per(counters.sms_sent),
            sms_lost: per(counters.sms_lost),
            requests: per(counters.requests.values().sum()),
            ping_requests: per(counters.requests.get("Ping").copied().unwrap_or(0)),
            bytes: per(counters.bytes_sent + counters.bytes_received),
            connections: per(counters.connections_opened),
            tls_handshakes: per(counters.tls_handshakes),
            tls_resumed: per(counters.tls_resumed),
            empty_wakes: per(counters.empty_wakes.values().sum()),
            empty_wakes_by_kind: counters
                .empty_wakes
                .iter()
                .map(|(kind, count)| {
                    let devices = fleet
                        .profiles
                        .iter()
                        .find(|profile| &profile.name == kind)
                        .map_or(fleet.devices, |profile| profile.devices);
                    let hours = devices as f64 * hold.duration_s * time_scale / 3600.0;
                    (kind.clone(), *count as f64 / hours.max(f64::MIN_POSITIVE))
                })
                .collect(),
        })
    }
}

/// One threshold condition and its outcome.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ThresholdVerdict {
    pub metric: String,
    pub condition: String,
    /// What was observed, in the condition's units; `null` when not measured.
    pub observed: Option<f64>,
    /// The same with its unit, as the summary prints it (`1.32 ms`, `6.4 KiB`, `0`).
    #[serde(default)]
    pub observed_text: Option<String>,
    /// False when the run was incomplete (interrupted, or a child failed): its figures
    /// are partial, so the condition was not judged (and `passed` is false).
    #[serde(default = "yes")]
    pub judged: bool,
    pub passed: bool,
    /// A latency condition that did not hold while the self-check found the machine
    /// stalled or busy with work not ours: set aside, neither passed nor failed (the
    /// run exits 3: run it again on a quiet machine).
    #[serde(default)]
    pub inconclusive: bool,
}

impl ThresholdVerdict {
    /// What was observed, with its unit, or "not measured".
    pub fn observed_words(&self) -> String {
        match (&self.observed_text, self.observed) {
            (Some(text), _) => text.clone(),
            (None, Some(value)) => format!("{value:.1}"),
            (None, None) => "not measured".to_owned(),
        }
    }
}

fn yes() -> bool {
    true
}

fn real_time() -> f64 {
    1.0
}

#[cfg(test)]
mod schema_tests {
    #[test]
    fn the_committed_schema_matches_the_types() {
        crate::results::schema_tests::assert_committed(
            schemars::schema_for!(super::RunResult),
            "result.schema.json",
        );
    }
}
