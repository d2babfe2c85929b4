//! The configuration of one server partition and the state its connections share.

use super::budget::BodyBudget;
use super::http::ResponseStyle;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::store::Store;
use super::users::Users;
use crate::partition::Partition;

/// Which connection engine serves the EAS handler.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// pingfleet's own HTTP/1.1 layer: drops buffers while a Ping is parked and notices a
    /// client that goes away.
    Lean,
    /// Stock hyper (and tokio-rustls) with default settings, as most servers are built.
    Hyper,
}

impl Engine {
    /// The name flags and scenario files use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lean => "lean",
            Self::Hyper => "hyper",
        }
    }
}

/// Size and time limits of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub max_head_bytes: usize,
    pub max_body_bytes: usize,
    /// Body bytes buffered at once across the whole server.
    pub max_body_bytes_in_flight: usize,
    /// From the first byte of a request head to its end.
    pub head_timeout: Duration,
    /// From the end of a request head to the end of its body.
    pub body_timeout: Duration,
    /// A keep-alive connection with no request in progress is closed after this.
    pub idle_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_head_bytes: 16 * 1024,
            max_body_bytes: 4 * 1024 * 1024,
            max_body_bytes_in_flight: 64 * 1024 * 1024,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

/// What a partition serves and how.
#[derive(Debug, Clone)]
pub struct PartitionConfig {
    pub engine: Engine,
    pub users: Users,
    pub min_heartbeat_s: u32,
    pub max_heartbeat_s: u32,
    pub max_folders: u32,
    pub partition: Partition,
    /// The EAS URL of every partition, by index, for 451 redirects.
    pub partition_urls: Vec<String>,
    pub require_provision: bool,
    /// The path EAS is served under (`--path`).
    pub path: String,
    pub max_connections: usize,
    pub limits: HttpLimits,
    /// How the lean engine frames and codes responses.
    pub response_style: ResponseStyle,
}

impl PartitionConfig {
    /// A single-partition server for `users` with the Exchange defaults (heartbeat 60 s
    /// to 3540 s, 300 folders a Ping).
    pub fn new(users: Users) -> Self {
        Self {
            engine: Engine::Lean,
            users,
            min_heartbeat_s: 60,
            max_heartbeat_s: 3540,
            max_folders: 300,
            partition: Partition::WHOLE,
            partition_urls: Vec::new(),
            require_provision: false,
            path: crate::eas::request::ACTIVESYNC_PATH.to_owned(),
            max_connections: 19_000,
            limits: HttpLimits::default(),
            response_style: ResponseStyle::default(),
        }
    }
}

/// What every connection of a partition shares.
#[derive(Debug)]
pub struct ServerState {
    pub config: PartitionConfig,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
    /// Request body bytes buffered now, across every connection.
    pub body_budget: Arc<BodyBudget>,
    generations: AtomicU64,
    policy_keys: AtomicU64,
}

impl ServerState {
    pub fn new(config: PartitionConfig, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            body_budget: Arc::new(BodyBudget::new(config.limits.max_body_bytes_in_flight)),
            config,
            store: Store::default(),
            metrics: Arc::new(Metrics::default()),
            shutdown,
            generations: AtomicU64::new(1),
            policy_keys: AtomicU64::new(0x5EED),
        })
    }

    /// A fresh generation number for a parked Ping.
    pub fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh, non-zero, hard-to-guess-by-accident policy key (splitmix64 of a counter).
    pub fn next_policy_key(&self) -> u32 {
        let mut z = self
            .policy_keys
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) as u32).max(1)
    }
}
