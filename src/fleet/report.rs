//! The JSON document a device worker writes: its counters, and its histograms in the
//! standard compressed V2 HdrHistogram encoding (base64) beside their percentiles, so an
//! orchestrator merges shards exactly.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::engine::RunEnd;
use super::launch::DevicesArgs;
use super::stats::{FleetStats, Latency, LatencySummary, Tally};
use crate::measure::procfs;

/// The schema name and version of [`WorkerReport`].
pub const SCHEMA: &str = "pingfleet.worker/1";
/// How histograms are encoded.
pub const ENCODING: &str = "hdr-v2-deflate-base64";

/// One worker's results.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WorkerReport {
    pub schema: String,
    pub tool_version: String,
    pub shard: String,
    /// Devices this worker ran.
    pub devices: usize,
    pub started_at: String,
    pub duration_s: f64,
    pub targets: Vec<String>,
    pub profile: ProfileSummary,
    pub counters: Counters,
    pub histograms: BTreeMap<String, HistogramDoc>,
    /// Devices with a Ping outstanding when the run ended.
    pub devices_parked_at_end: usize,
    /// Devices that finished their bootstrap and pinged at least once.
    pub devices_bootstrapped: usize,
    /// Seconds from the start until every device had sent its first Ping; `null` if
    /// some never did.
    pub bootstrap_all_s: Option<f64>,
    /// Resident memory of the worker at the end; `null` when it could not be read.
    pub rss_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
}

/// The device profile the worker ran.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProfileSummary {
    pub protocol_version: String,
    pub device_type: String,
    pub folders: Vec<String>,
    pub heartbeat_s: u32,
    pub heartbeat_jitter_s: u32,
    pub provision: bool,
    pub empty_reping: bool,
    pub close_per_ping: bool,
}

/// Every counter of the worker.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    pub requests: Tally,
    pub http_status: Tally,
    pub ping_status: Tally,
    pub errors: Tally,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub connections_opened: u64,
    pub tls_handshakes: u64,
    pub reconnects: u64,
    pub devices_stopped: u64,
    pub notifications_sent: u64,
    pub notifications_delivered: u64,
    pub notifications_lost: u64,
}

/// One histogram: its exact encoding and its percentiles.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HistogramDoc {
    pub encoding: String,
    pub data: String,
    pub summary: LatencySummary,
}

impl HistogramDoc {
    fn new(latency: &Latency) -> Self {
        Self {
            encoding: ENCODING.into(),
            data: latency.to_base64(),
            summary: latency.summary(),
        }
    }
}

impl WorkerReport {
    pub fn new(args: &DevicesArgs, started: SystemTime, stats: &FleetStats, end: RunEnd) -> Self {
        let histograms = [
            ("wakeup_latency_us", &stats.wakeup),
            ("mail_on_device_latency_us", &stats.mail_on_device),
            ("injector_lag_us", &stats.injector_lag),
            ("connect_us", &stats.connect),
            ("tls_handshake_us", &stats.tls_handshake),
            ("event_loop_lag_us", &stats.loop_lag),
        ]
        .into_iter()
        .map(|(name, latency)| (name.to_owned(), HistogramDoc::new(latency)))
        .collect();
        Self {
            schema: SCHEMA.into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            shard: args.shard.to_string(),
            devices: (0..args.devices)
                .filter(|index| *index as u32 % args.shard.count == args.shard.index)
                .count(),
            started_at: humantime::format_rfc3339_seconds(started).to_string(),
            duration_s: started
                .elapsed()
                .map_or(0.0, |elapsed| elapsed.as_secs_f64()),
            targets: args.targets.clone(),
            profile: ProfileSummary {
                protocol_version: args.protocol_version.to_string(),
                device_type: args.device_type.clone(),
                folders: args.folders.clone(),
                heartbeat_s: args.heartbeat,
                heartbeat_jitter_s: args.heartbeat_jitter,
                provision: !args.no_provision,
                empty_reping: args.empty_reping,
                close_per_ping: args.close_per_ping,
            },
            counters: Counters {
                requests: stats.requests.clone(),
                http_status: stats.http_status.clone(),
                ping_status: stats.ping_status.clone(),
                errors: stats.errors.clone(),
                bytes_sent: stats.bytes_sent,
                bytes_received: stats.bytes_received,
                connections_opened: stats.connections_opened,
                tls_handshakes: stats.tls_handshakes,
                reconnects: stats.reconnects,
                devices_stopped: stats.devices_stopped,
                notifications_sent: stats.notifications_sent,
                notifications_delivered: stats.notifications_delivered,
                notifications_lost: stats.notifications_lost,
            },
            histograms,
            devices_parked_at_end: end.devices_parked,
            devices_bootstrapped: end.devices_bootstrapped,
            bootstrap_all_s: end.bootstrap_all.map(|elapsed| elapsed.as_secs_f64()),
            rss_bytes: procfs::rss_bytes(None),
            cpu_seconds: procfs::cpu_seconds(None),
        }
    }
}
