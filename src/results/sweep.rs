//! A sweep's result file (schema `pingfleet.sweep/1`): each cell of the grid (heartbeat x
//! firewall idle timeout x heartbeat strategy) and what its run measured.
//! (`orchestrator::sweep` measures the cells.)

use crate::measure::latency::LatencySummary;
use crate::results::network::NetworkFigures;
use crate::results::run::DeviceHourCost;
use crate::scenario::sweep::Cell;

/// The schema name and version of [`SweepResult`].
pub const SCHEMA: &str = "pingfleet.sweep/1";

/// What one cell measured.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct CellResult {
    pub cell: Cell,
    pub complete: bool,
    pub failures: Vec<String>,
    pub devices: usize,
    pub network: Option<NetworkFigures>,
    pub cost_per_device_hour: Option<DeviceHourCost>,
    /// Wake-up latency of the mail delivered (wire and CPU: not scaled).
    pub wakeup: Option<LatencySummary>,
}

/// The sweep's result file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SweepResult {
    pub schema: String,
    pub tool_version: String,
    pub scenario: String,
    pub scenario_text: String,
    pub time_scale: f64,
    pub devices_per_cell: usize,
    pub cells: Vec<CellResult>,
}

#[cfg(test)]
mod schema_tests {
    #[test]
    fn the_committed_sweep_schema_matches_the_types() {
        crate::results::schema_tests::assert_committed(
            schemars::schema_for!(super::SweepResult),
            "sweep.schema.json",
        );
    }
}
