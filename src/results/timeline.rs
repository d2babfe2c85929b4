//! The run second by second as its result file holds it (`timeline`): each process's
//! memory and CPU, the kernel's socket memory, the servers' and the workers' running
//! figures. (`orchestrator::sampler` takes the readings.)

use crate::fleet::stats::Progress;
use crate::measure::procfs::TcpSockstat;

/// Which side of the run a process is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Server,
    Worker,
}

/// One process at one instant.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ProcessPoint {
    pub name: String,
    pub role: Role,
    /// `null` once the process has ended.
    pub rss_bytes: Option<u64>,
    /// Cores busy since the previous reading (1.0 = one core the whole second).
    pub cpu_cores: Option<f64>,
}

/// The kernel side of one reading.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct KernelPoint {
    pub slab_bytes: Option<u64>,
    pub tcp: Option<TcpSockstat>,
    /// Cores the whole machine was busy since the previous reading (every process,
    /// pingfleet's or not, and the kernel), from `/proc/stat`.
    #[serde(default)]
    pub machine_busy_cores: Option<f64>,
}

/// One second of the run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct TimelinePoint {
    pub t_s: f64,
    /// `ramp`, `hold` or `drain` (the orchestrator's view).
    pub stage: crate::phase::Phase,
    /// Pings parked at the servers.
    pub parked: u64,
    /// Notifications the servers received so far.
    pub notifications: u64,
    /// Parked Pings the servers woke so far.
    pub wakeups: u64,
    /// The highest partition's server-side wake-up p99 so far (datagram read to
    /// response written), microseconds.
    pub server_wake_p99_us: u64,
    pub server_rss_bytes: u64,
    pub worker_rss_bytes: u64,
    /// Cores used in the second before this reading.
    pub server_cpu_cores: f64,
    pub worker_cpu_cores: f64,
    /// The reverse proxies' processes (0 without `[proxy]`): the run's own work too.
    #[serde(default)]
    pub proxy_cpu_cores: f64,
    pub kernel: KernelPoint,
    /// The workers' running figures (notified, delivered, lost, worst wake-up p99).
    pub fleet: Progress,
    pub processes: Vec<ProcessPoint>,
}

impl TimelinePoint {
    /// Cores the run's own processes used in the second before this reading.
    pub fn our_cpu_cores(&self) -> f64 {
        self.server_cpu_cores + self.worker_cpu_cores + self.proxy_cpu_cores
    }
}
