//! The JSON document a device worker writes: its counters, and its histograms in the
//! standard compressed V2 HdrHistogram encoding (base64) beside their percentiles, so an
//! orchestrator merges shards exactly.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::digest::FleetDigest;
pub use super::histogram::HistogramName;
use super::phase_clock::RunEnd;
use super::profile::ProfileMix;
use super::stats::{Counters, FleetStats};
use crate::measure::heap::HeapReading;
use crate::measure::intervals::IntervalDoc;
use crate::measure::latency::{Latency, LatencySummary};
use crate::measure::procfs;
use crate::partition::Partition;
use crate::phase::Phase;

/// The schema name and version of [`WorkerReport`].
pub const SCHEMA: &str = "pingfleet.worker/1";
/// How histograms are encoded.
pub const ENCODING: &str = "hdr-v2-deflate-base64";

/// One worker's results.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WorkerReport {
    pub schema: String,
    pub tool_version: String,
    pub shard: String,
    /// Devices this worker ran.
    pub devices: usize,
    pub started_at: String,
    pub duration_s: f64,
    pub targets: Vec<String>,
    /// The device kinds the worker ran, with how many devices each.
    pub profiles: Vec<ProfileSummary>,
    pub counters: Counters,
    /// The counters of each phase (ramp, hold, drain) apart.
    #[serde(default)]
    pub stages: Vec<StageReport>,
    pub histograms: BTreeMap<HistogramName, HistogramDoc>,
    /// Devices with a Ping outstanding when the run ended.
    pub devices_parked_at_end: usize,
    /// Devices that finished their bootstrap and pinged at least once.
    pub devices_bootstrapped: usize,
    /// Seconds from the start until every device had sent its first Ping; `null` if
    /// some never did.
    pub bootstrap_all_s: Option<f64>,
    /// Resident memory of the worker before its first device started; `null` when it
    /// could not be read.
    #[serde(default)]
    pub rss_before_devices_bytes: Option<u64>,
    /// The worker's live heap before its devices were made, and when the hold began
    /// (every device parked); `null` when not read (a run stopped in its ramp).
    #[serde(default)]
    pub heap_before_devices: Option<HeapReading>,
    #[serde(default)]
    pub heap_at_hold: Option<HeapReading>,
    /// Resident memory of the worker at the end; `null` when it could not be read.
    pub rss_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    /// Which devices the report covers and what was planned for them.
    #[serde(default)]
    pub fleet_digest: FleetDigest,
    /// The latencies second by second (wake-up, mail on device, injector lag, event-loop
    /// lag); merged documents hold every worker's, and a result file none (they are in
    /// its interval log).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<IntervalDoc>,
    /// The wall-clock instant (RFC 3339, nanoseconds) of this worker's injector schedule
    /// offset zero: a notification is planned there plus its offset (for `fixed`, its
    /// sequence number over the rate), so a packet capture can be lined up with the
    /// plan. `null` without an injector and in merged documents (each worker has its
    /// own).
    #[serde(default)]
    pub schedule_origin: Option<String>,
    /// A signal stopped this worker (any of the merged workers) before its drain
    /// ended: its figures are partial.
    #[serde(default)]
    pub stopped_early: bool,
}

/// Who a worker is: what its report says of its place in the fleet.
#[derive(Debug, Clone)]
pub struct WorkerIdentity {
    pub shard: Partition,
    pub targets: Vec<String>,
    pub digest: FleetDigest,
}

/// The counters of one phase of a worker's run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct StageReport {
    pub name: Phase,
    pub duration_s: f64,
    pub counters: Counters,
}

/// One device kind the worker ran.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ProfileSummary {
    pub name: String,
    pub weight: u32,
    /// Devices of this kind.
    pub devices: usize,
    pub protocol_version: String,
    pub user_agent: String,
    pub device_type: String,
    pub folders: Vec<String>,
    pub heartbeat_s: f64,
    pub heartbeat_jitter_s: f64,
    pub provision: bool,
    pub empty_reping: bool,
    pub close_per_ping: bool,
    #[serde(default)]
    pub tls_resumption: bool,
}

/// One histogram: its exact encoding and its percentiles.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct HistogramDoc {
    pub encoding: String,
    pub data: String,
    pub summary: LatencySummary,
}

impl HistogramDoc {
    pub(crate) fn new(latency: &Latency) -> Self {
        Self {
            encoding: ENCODING.into(),
            data: latency.to_base64(),
            summary: latency.summary(),
        }
    }
}

/// Each entry of the mix with the devices of this worker that run it (`fleet_indices`:
/// their indices in the whole fleet).
fn profile_summaries(mix: &ProfileMix, fleet_indices: &[usize]) -> Vec<ProfileSummary> {
    let mut devices = vec![0; mix.len()];
    for index in fleet_indices {
        devices[mix.pick(*index)] += 1;
    }
    devices
        .into_iter()
        .enumerate()
        .map(|(entry, devices)| {
            let (spec, profile) = (mix.spec(entry), mix.profile(entry));
            ProfileSummary {
                name: spec.name.clone(),
                weight: spec.weight,
                devices,
                protocol_version: profile.settings.protocol_version.to_string(),
                user_agent: profile.settings.user_agent.clone(),
                device_type: profile.settings.device_type.clone(),
                folders: profile.settings.folders.clone(),
                heartbeat_s: profile.settings.heartbeat.0.as_secs_f64(),
                heartbeat_jitter_s: profile.settings.heartbeat_jitter.0.as_secs_f64(),
                provision: profile.settings.provision,
                empty_reping: profile.settings.empty_reping,
                close_per_ping: profile.settings.close_per_ping,
                tls_resumption: profile.settings.tls_resumption,
            }
        })
        .collect()
}

/// A worker's memory before its devices were made.
#[derive(Debug, Clone, Default)]
pub struct BeforeDevices {
    pub rss_bytes: Option<u64>,
    pub heap: HeapReading,
}

impl BeforeDevices {
    pub fn now() -> Self {
        Self {
            rss_bytes: procfs::rss_bytes(None),
            heap: HeapReading::now(),
        }
    }
}

impl WorkerReport {
    pub fn new(
        identity: WorkerIdentity,
        mix: &ProfileMix,
        fleet_indices: &[usize],
        started: SystemTime,
        before_devices: BeforeDevices,
        stats: &FleetStats,
        end: &RunEnd,
    ) -> Self {
        let histograms = [
            (HistogramName::WakeupLatency, &stats.wakeup),
            (
                HistogramName::WakeupFromDeparture,
                &stats.wakeup_from_departure,
            ),
            (HistogramName::MailOnDeviceLatency, &stats.mail_on_device),
            (
                HistogramName::MailOnDeviceWorld,
                &stats.mail_on_device_world,
            ),
            (
                HistogramName::MailOnDeviceWithRadio,
                &stats.mail_on_device_with_radio,
            ),
            (HistogramName::InjectorLag, &stats.injector_lag),
            (HistogramName::Unreachable, &stats.unreachable),
            (HistogramName::HeartbeatSettled, &stats.heartbeat_settled),
            (HistogramName::Repark, &stats.repark),
            (HistogramName::Connect, &stats.connect),
            (HistogramName::TlsHandshake, &stats.tls_handshake),
            (HistogramName::EventLoopLag, &stats.loop_lag),
            (
                HistogramName::AfterFlushConnect,
                &stats.after_flush.connects,
            ),
            (
                HistogramName::AfterFlushFullHandshake,
                &stats.after_flush.full_handshakes,
            ),
            (
                HistogramName::AfterFlushResumedHandshake,
                &stats.after_flush.resumed_handshakes,
            ),
            (HistogramName::PathRtt, &stats.path_rtt),
        ]
        .into_iter()
        .map(|(name, latency)| (name, HistogramDoc::new(latency)))
        .collect();
        Self {
            schema: SCHEMA.into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            shard: identity.shard.to_string(),
            devices: fleet_indices.len(),
            started_at: humantime::format_rfc3339_millis(started).to_string(),
            duration_s: started
                .elapsed()
                .map_or(0.0, |elapsed| elapsed.as_secs_f64()),
            targets: identity.targets,
            profiles: profile_summaries(mix, fleet_indices),
            counters: stats.counters.clone(),
            stages: end
                .stages
                .iter()
                .map(|stage| StageReport {
                    name: stage.phase,
                    duration_s: stage.duration.as_secs_f64(),
                    counters: stage.counters.clone(),
                })
                .collect(),
            histograms,
            devices_parked_at_end: end.devices_parked,
            devices_bootstrapped: end.devices_bootstrapped,
            bootstrap_all_s: end.bootstrap_all.map(|elapsed| elapsed.as_secs_f64()),
            schedule_origin: end
                .schedule_origin
                .map(|origin| humantime::format_rfc3339_nanos(origin).to_string()),
            rss_before_devices_bytes: before_devices.rss_bytes,
            heap_before_devices: Some(before_devices.heap),
            heap_at_hold: end.heap_at_hold.clone(),
            rss_bytes: procfs::rss_bytes(None),
            cpu_seconds: procfs::cpu_seconds(None),
            fleet_digest: identity.digest,
            intervals: stats.intervals.intervals.clone(),
            stopped_early: end.stopped_early,
        }
    }
}

impl WorkerReport {
    /// The document of no worker: no devices, nothing counted or timed.
    pub fn empty() -> Self {
        Self {
            schema: SCHEMA.into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            shard: String::new(),
            devices: 0,
            started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            duration_s: 0.0,
            targets: Vec::new(),
            profiles: Vec::new(),
            counters: Counters::default(),
            stages: Vec::new(),
            histograms: BTreeMap::new(),
            devices_parked_at_end: 0,
            devices_bootstrapped: 0,
            bootstrap_all_s: None,
            rss_before_devices_bytes: None,
            heap_before_devices: None,
            heap_at_hold: None,
            rss_bytes: None,
            cpu_seconds: None,
            fleet_digest: FleetDigest::default(),
            intervals: Vec::new(),
            schedule_origin: None,
            stopped_early: false,
        }
    }

    /// Merges shard reports exactly: counters summed, histograms added, devices,
    /// memory and CPU summed, the longest duration and bootstrap kept.
    pub fn merge(reports: &[WorkerReport]) -> anyhow::Result<WorkerReport> {
        let (first, rest) = reports
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("nothing to merge"))?;
        let mut merged = first.clone();
        let mut histograms: BTreeMap<HistogramName, Latency> = BTreeMap::new();
        for report in reports {
            if report.schema != SCHEMA {
                anyhow::bail!(
                    "cannot merge schema {:?} (expected {SCHEMA})",
                    report.schema
                );
            }
            for (name, doc) in &report.histograms {
                if doc.encoding != ENCODING {
                    anyhow::bail!(
                        "histogram {name} uses encoding {:?} (expected {ENCODING})",
                        doc.encoding
                    );
                }
                let latency = Latency::from_base64(&doc.data)?;
                histograms.entry(*name).or_default().merge(&latency);
            }
        }
        for report in rest {
            merged.counters.add(&report.counters);
            merged.fleet_digest.merge(&report.fleet_digest);
            merged.intervals.extend_from_slice(&report.intervals);
            merged.devices += report.devices;
            merged.devices_parked_at_end += report.devices_parked_at_end;
            merged.devices_bootstrapped += report.devices_bootstrapped;
            merged.stopped_early |= report.stopped_early;
            merged.duration_s = merged.duration_s.max(report.duration_s);
            merged.bootstrap_all_s = merged
                .bootstrap_all_s
                .zip(report.bootstrap_all_s)
                .map(|(a, b)| a.max(b));
            merged.rss_bytes = merged.rss_bytes.zip(report.rss_bytes).map(|(a, b)| a + b);
            merged.rss_before_devices_bytes = merged
                .rss_before_devices_bytes
                .zip(report.rss_before_devices_bytes)
                .map(|(a, b)| a + b);
            merged.heap_before_devices = merged
                .heap_before_devices
                .zip(report.heap_before_devices.as_ref())
                .map(|(a, b)| a.plus(b));
            merged.heap_at_hold = merged
                .heap_at_hold
                .zip(report.heap_at_hold.as_ref())
                .map(|(a, b)| a.plus(b));
            merge_stages(&mut merged.stages, &report.stages);
            merge_profiles(&mut merged.profiles, &report.profiles);
            merged.cpu_seconds = merged
                .cpu_seconds
                .zip(report.cpu_seconds)
                .map(|(a, b)| a + b);
            merged.started_at = merged.started_at.clone().min(report.started_at.clone());
            for target in &report.targets {
                if !merged.targets.contains(target) {
                    merged.targets.push(target.clone());
                }
            }
        }
        if !rest.is_empty() {
            merged.schedule_origin = None;
        }
        merged.shard = reports
            .iter()
            .map(|report| report.shard.as_str())
            .collect::<Vec<_>>()
            .join("+");
        merged.histograms = histograms
            .iter()
            .map(|(name, latency)| (*name, HistogramDoc::new(latency)))
            .collect();
        Ok(merged)
    }
}

/// Adds a shard's phases to the merged ones, matched by name; the longest duration kept.
fn merge_stages(into: &mut Vec<StageReport>, from: &[StageReport]) {
    for stage in from {
        match into.iter_mut().find(|merged| merged.name == stage.name) {
            Some(merged) => {
                merged.counters.add(&stage.counters);
                merged.duration_s = merged.duration_s.max(stage.duration_s);
            }
            None => into.push(stage.clone()),
        }
    }
}

/// Adds a shard's device kinds to the merged ones, matched by name.
fn merge_profiles(into: &mut Vec<ProfileSummary>, from: &[ProfileSummary]) {
    for profile in from {
        match into.iter_mut().find(|merged| merged.name == profile.name) {
            Some(merged) => merged.devices += profile.devices,
            None => into.push(profile.clone()),
        }
    }
}
