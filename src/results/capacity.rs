//! A capacity search's result file (schema `pingfleet.capacity/1`): each step's
//! figures, each memory component fitted over the steps, the knee and the answer in
//! one sentence. (`orchestrator::capacity` runs the steps; `orchestrator::capacity_words`
//! says the result.)

use crate::measure::latency::LatencySummary;
use crate::results::capacity_fit::{self, Knee, Limit, LineFit};

/// The `schema` of a capacity search's result file.
pub const SCHEMA: &str = "pingfleet.capacity/1";

fn one() -> u32 {
    1
}

/// What one step measured.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct StepResult {
    pub devices: usize,
    /// Server partitions and device workers the step ran ("auto" grows them with the
    /// fleet, and each brings its own memory at start).
    #[serde(default)]
    pub server_processes: usize,
    #[serde(default)]
    pub worker_processes: usize,
    /// Changes a second sent to the fleet during the hold (the same per device).
    pub rate_per_s: f64,
    pub passed: bool,
    /// What the step hit when it did not pass.
    pub limit: Option<Limit>,
    /// Why it did not pass: the failed thresholds, or why the run did not complete.
    pub why: String,
    /// Why the step's self-check failed (the generator or the machine was late, so its
    /// latencies are not the server's alone); empty when it passed.
    #[serde(default)]
    pub self_check_reasons: Vec<String>,
    /// The generator (the injector or a device worker) fell behind while the machine
    /// had cores to spare: the step's latencies are partly the generator's.
    #[serde(default)]
    pub generator_late: bool,
    /// Times the step was measured: a step that failed on latency while its self-check
    /// failed is measured once more.
    #[serde(default = "one")]
    pub attempts: u32,
    /// The run's own result file.
    pub result_file: Option<String>,
    pub parked: Option<u64>,
    pub wakeup: Option<LatencySummary>,
    pub mail_on_device: Option<LatencySummary>,
    /// The loopback floor measured during the step's hold.
    pub floor: Option<LatencySummary>,
    /// Cores the server used in the hold for each 1,000 wake-ups a second.
    pub server_cores_per_1000_wakeups_per_s: Option<f64>,
    /// Memory at the plateau: the server's RSS and live heap, the device workers' RSS,
    /// and the kernel's slab growth since the run started.
    pub server_rss_bytes: Option<u64>,
    pub server_heap_bytes: Option<u64>,
    pub devices_rss_bytes: Option<u64>,
    pub kernel_slab_growth_bytes: Option<u64>,
    /// The same readings before the first device connected (every process's own
    /// memory at start, which the per-device lines leave out).
    #[serde(default)]
    pub server_rss_baseline_bytes: Option<u64>,
    #[serde(default)]
    pub server_heap_baseline_bytes: Option<u64>,
    #[serde(default)]
    pub devices_rss_baseline_bytes: Option<u64>,
    /// How each memory component moved during the hold, in bytes per device-hour
    /// (a server that leaks under parked Pings shows it here first).
    pub drift_per_device_hour: Drift,
}

/// Memory drift in the hold, bytes per device-hour.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Drift {
    pub server_rss: Option<f64>,
    pub devices_rss: Option<f64>,
    pub kernel_slab: Option<f64>,
}

/// A memory component fitted over the steps.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct MemoryFit {
    /// `server_rss`, `server_heap`, `devices_rss` or `kernel_slab`.
    pub component: String,
    /// The growth since the start (plateau less baseline) against the devices parked:
    /// its slope is the bytes each parked device costs.
    pub line: Option<LineFit>,
    /// What each process of this component held at start, on average over the steps
    /// (none for the kernel): the base a front-end pays per process, device or not.
    #[serde(default)]
    pub base_per_process_bytes: Option<f64>,
}

/// A capacity search's result file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct CapacityResult {
    pub schema: String,
    pub tool_version: String,
    pub scenario: String,
    pub scenario_text: String,
    /// What was measured: `lean TLS`, `hyper plain`, or the target's URL.
    pub server: String,
    pub machine_cores: usize,
    pub memory_available_bytes: Option<u64>,
    pub steps: Vec<StepResult>,
    pub fits: Vec<MemoryFit>,
    pub knee: Knee,
    /// The answer in one sentence.
    pub answer: String,
}

/// The steps whose fleet formed (the run completed and devices were parked at its
/// plateau), each with the devices parked then: memory holds parked connections, so
/// the lines are fitted over that count (a few devices are between two Pings at any
/// moment).
fn formed(steps: &[StepResult]) -> impl Iterator<Item = (f64, &StepResult)> {
    steps
        .iter()
        .filter(|step| step.limit != Some(Limit::Incomplete))
        .filter_map(|step| Some((step.parked.filter(|parked| *parked > 0)? as f64, step)))
}

/// A memory reading of a step: its plateau, its baseline, and the processes holding it.
struct Component {
    name: &'static str,
    plateau: fn(&StepResult) -> Option<u64>,
    baseline: fn(&StepResult) -> Option<u64>,
    processes: fn(&StepResult) -> usize,
}

const COMPONENTS: [Component; 4] = [
    Component {
        name: "server_rss",
        plateau: |s| s.server_rss_bytes,
        baseline: |s| s.server_rss_baseline_bytes,
        processes: |s| s.server_processes,
    },
    Component {
        name: "server_heap",
        plateau: |s| s.server_heap_bytes,
        baseline: |s| s.server_heap_baseline_bytes,
        processes: |s| s.server_processes,
    },
    Component {
        name: "devices_rss",
        plateau: |s| s.devices_rss_bytes,
        baseline: |s| s.devices_rss_baseline_bytes,
        processes: |s| s.worker_processes,
    },
    // Slab growth is counted from the run's start already.
    Component {
        name: "kernel_slab",
        plateau: |s| s.kernel_slab_growth_bytes,
        baseline: |_| Some(0),
        processes: |_| 0,
    },
];

/// How much memory component `name` grew in `step`, from its start to its plateau.
pub fn grown(step: &StepResult, name: &str) -> Option<u64> {
    let component = COMPONENTS.iter().find(|c| c.name == name)?;
    Some((component.plateau)(step)?.saturating_sub((component.baseline)(step)?))
}

/// The memory components, each one's growth fitted over the steps whose fleet formed
/// (the steps run more processes as the fleet grows, so fitting the totals would
/// count each new process's own memory as the devices').
pub fn fits(steps: &[StepResult]) -> Vec<MemoryFit> {
    COMPONENTS
        .iter()
        .map(|component| {
            let points: Vec<(f64, f64)> = formed(steps)
                .filter_map(|(parked, step)| Some((parked, grown(step, component.name)? as f64)))
                .collect();
            let bases: Vec<f64> = formed(steps)
                .filter(|(_, step)| (component.processes)(step) > 0)
                .filter_map(|(_, step)| {
                    Some((component.baseline)(step)? as f64 / (component.processes)(step) as f64)
                })
                .collect();
            MemoryFit {
                component: component.name.into(),
                line: capacity_fit::fit(&points),
                base_per_process_bytes: (!bases.is_empty())
                    .then(|| bases.iter().sum::<f64>() / bases.len() as f64),
            }
        })
        .collect()
}

/// Server, devices and kernel together, fitted over the steps so far.
pub fn total_memory_fit(steps: &[StepResult]) -> Option<LineFit> {
    let points: Vec<(f64, f64)> = formed(steps)
        .filter_map(|(parked, s)| {
            let total = s.server_rss_bytes.unwrap_or(0)
                + s.devices_rss_bytes?
                + s.kernel_slab_growth_bytes.unwrap_or(0);
            Some((parked, total as f64))
        })
        .collect();
    capacity_fit::fit(&points)
}

#[cfg(test)]
mod schema_tests {
    #[test]
    fn the_committed_capacity_schema_matches_the_types() {
        crate::results::schema_tests::assert_committed(
            schemars::schema_for!(super::CapacityResult),
            "capacity.schema.json",
        );
    }
}
