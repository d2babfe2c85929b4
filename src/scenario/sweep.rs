//! `[sweep]`: a grid of heartbeat x firewall idle timeout x heartbeat strategy, in
//! real-world time, that `pingfleet run` measures cell by cell (see
//! `orchestrator::sweep`).

use super::Span;
use crate::fleet::heartbeat::HeartbeatStrategy;

/// The grid, in real-world time (the scenario's `time_scale` compresses each cell).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSection {
    pub heartbeat: Vec<Span>,
    pub idle_timeout: Vec<Span>,
    #[serde(default = "fixed_only")]
    pub heartbeat_strategy: Vec<HeartbeatStrategy>,
    /// Cells measured at once.
    #[serde(default = "default_parallel")]
    pub parallel: usize,
}

fn fixed_only() -> Vec<HeartbeatStrategy> {
    vec![HeartbeatStrategy::Fixed]
}

fn default_parallel() -> usize {
    8
}

/// Most cells in one grid.
pub const MAX_CELLS: usize = 256;

/// A grid that cannot be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SweepError {
    #[error("sweep: heartbeat, idle_timeout and heartbeat_strategy each need a value")]
    Empty,
    #[error("sweep: {cells} cells, at most {MAX_CELLS}")]
    TooManyCells { cells: usize },
    #[error("sweep.parallel must be 1 to 32")]
    Parallel,
}

impl SweepSection {
    /// Whether the grid can be run.
    pub fn check(&self) -> Result<(), SweepError> {
        let cells = self.heartbeat.len() * self.idle_timeout.len() * self.heartbeat_strategy.len();
        if cells == 0 {
            return Err(SweepError::Empty);
        }
        if cells > MAX_CELLS {
            return Err(SweepError::TooManyCells { cells });
        }
        if self.parallel == 0 || self.parallel > 32 {
            return Err(SweepError::Parallel);
        }
        Ok(())
    }

    /// Every cell, heartbeat-major.
    pub fn cells(&self) -> Vec<Cell> {
        let mut cells = Vec::new();
        for heartbeat in &self.heartbeat {
            for strategy in &self.heartbeat_strategy {
                for idle in &self.idle_timeout {
                    cells.push(Cell {
                        heartbeat_s: heartbeat.0.as_secs_f64(),
                        idle_timeout_s: idle.0.as_secs_f64(),
                        strategy: *strategy,
                    });
                }
            }
        }
        cells
    }
}

/// One cell of the grid, in real-world seconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Cell {
    pub heartbeat_s: f64,
    pub idle_timeout_s: f64,
    pub strategy: HeartbeatStrategy,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_grid_is_heartbeat_major_and_bounded() {
        let span = |s: u64| Span(Duration::from_secs(s));
        let sweep = SweepSection {
            heartbeat: vec![span(480), span(900)],
            idle_timeout: vec![span(300), span(600)],
            heartbeat_strategy: vec![HeartbeatStrategy::Fixed, HeartbeatStrategy::Adaptive],
            parallel: 4,
        };
        let cells = sweep.cells();
        assert_eq!(cells.len(), 8);
        assert_eq!(
            (cells[0].heartbeat_s, cells[0].idle_timeout_s),
            (480.0, 300.0)
        );
        assert_eq!(cells[2].strategy, HeartbeatStrategy::Adaptive);
        assert_eq!(cells[4].heartbeat_s, 900.0);
        assert_eq!(sweep.check(), Ok(()));
        let empty = SweepSection {
            idle_timeout: Vec::new(),
            ..sweep.clone()
        };
        assert_eq!(empty.check(), Err(SweepError::Empty));
        assert!(empty
            .check()
            .unwrap_err()
            .to_string()
            .contains("each need a value"));
    }
}
