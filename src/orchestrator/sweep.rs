//! A sweep: one scenario run over a grid of heartbeat x firewall idle timeout x
//! heartbeat strategy, each cell a measured run of its own (its own server, firewall and
//! workers), several cells at once, the grid printed as a table and written to one
//! result file (schema `pingfleet.sweep/1`).
//!
//! A cell's heartbeat is what fixed devices use and what adaptive or stepped devices
//! may climb to (`heartbeat_max`; they start at `heartbeat_min`, or at the cell's
//! heartbeat if that is lower).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;

use crate::fleet::report::HistogramName;
use crate::results::run::RunResult;
use crate::results::sweep::{CellResult, SweepResult, SCHEMA};
use crate::scenario::resolve::ResolvedScenario;
use crate::scenario::sweep::{Cell, SweepSection};
use crate::scenario::Span;

/// The plan of one cell: the scenario's, with the cell's heartbeat, strategy and idle
/// timeout (the firewall's, or the reverse proxy's), compressed by the scenario's scale.
fn cell_plan(plan: &ResolvedScenario, cell: &Cell) -> ResolvedScenario {
    let mut plan = plan.clone();
    let scale = plan.scenario.time_scale;
    let scaled = |seconds: f64| Duration::from_secs_f64(seconds / scale);
    let devices = &mut plan.scenario.devices;
    devices.heartbeat = Span(scaled(cell.heartbeat_s));
    devices.heartbeat_strategy = cell.strategy;
    devices.heartbeat_max = Span(scaled(cell.heartbeat_s));
    let min = crate::fleet::heartbeat::DEFAULT_MIN
        .as_secs_f64()
        .min(cell.heartbeat_s);
    devices.heartbeat_min = Span(scaled(min));
    if let Some(firewall) = &mut plan.scenario.firewall {
        firewall.idle_timeout = Span(scaled(cell.idle_timeout_s));
    }
    // Without a firewall the swept idle timeout is the reverse proxy's (the one that
    // cuts a parked Ping: nginx's read timeout, HAProxy's server and client timeouts).
    if let Some(proxy) = &mut plan.scenario.proxy {
        proxy.set_idle_timeouts(Span(scaled(cell.idle_timeout_s)));
    }
    plan
}

/// Measures one cell's plan, its files in the directory given (quietly: several cells
/// run at once).
pub type MeasureCell<'a> =
    dyn Fn(&ResolvedScenario, &Path) -> anyhow::Result<RunResult> + Sync + 'a;

/// Runs every cell through `measure`, `parallel` at a time; returns the sweep's result.
pub fn run_sweep(
    plan: &ResolvedScenario,
    sweep: &SweepSection,
    dir: &Path,
    interrupted: &AtomicBool,
    measure: &MeasureCell<'_>,
) -> anyhow::Result<SweepResult> {
    let cells = sweep.cells();
    let mut results: Vec<CellResult> = Vec::with_capacity(cells.len());
    for (round, chunk) in cells.chunks(sweep.parallel).enumerate() {
        println!(
            "cells {}-{} of {} (heartbeat/idle timeout/strategy): {}",
            round * sweep.parallel + 1,
            round * sweep.parallel + chunk.len(),
            cells.len(),
            chunk
                .iter()
                .map(|cell| format!(
                    "{} s/{} s/{:?}",
                    cell.heartbeat_s, cell.idle_timeout_s, cell.strategy
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let measured: Vec<anyhow::Result<CellResult>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(offset, cell)| {
                    let cell_dir = dir.join(format!("cell-{}", round * sweep.parallel + offset));
                    scope.spawn(move || measure_cell(plan, cell, &cell_dir, measure))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a cell panicked")))
                })
                .collect()
        });
        for result in measured {
            results.push(result?);
        }
        if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    Ok(SweepResult {
        schema: SCHEMA.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        scenario: plan.scenario.name.clone(),
        scenario_text: plan.text.clone(),
        time_scale: plan.scenario.time_scale,
        devices_per_cell: plan.scenario.devices.count,
        cells: results,
    })
}

fn measure_cell(
    plan: &ResolvedScenario,
    cell: &Cell,
    dir: &Path,
    measure: &MeasureCell<'_>,
) -> anyhow::Result<CellResult> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let plan = cell_plan(plan, cell);
    let result = measure(&plan, dir)?;
    Ok(CellResult {
        cell: *cell,
        complete: result.complete,
        failures: result.failures.clone(),
        devices: result.fleet.devices,
        network: result.network.clone(),
        cost_per_device_hour: result.cost_per_device_hour.clone(),
        wakeup: result
            .fleet
            .histograms
            .get(&HistogramName::WakeupLatency)
            .map(|doc| doc.summary),
    })
}

/// The grid as a table, a row per cell (after an empty line), as printed.
pub fn grid_text(result: &SweepResult) -> String {
    let mut out = String::from("\n");
    let _ = writeln!(
        out,
        "{:>9} {:>9} {:>8} | {:>6} {:>7} {:>5} {:>4} | {:>9} {:>9} | {:>6} {:>6} | {:>7} {:>7} | heartbeats at the end",
        "heartbeat", "idle", "strategy", "sent", "on time", "late", "lost", "stale p50", "stale max",
        "died", "resets", "req/dh", "conn/dh"
    );
    for row in &result.cells {
        let cell = &row.cell;
        let Some(network) = &row.network else {
            let _ = writeln!(
                out,
                "{:>8}s {:>8}s {:>8?} | no figures{}",
                cell.heartbeat_s,
                cell.idle_timeout_s,
                cell.strategy,
                if row.complete { "" } else { " (incomplete)" }
            );
            continue;
        };
        let stale = network.staleness.unwrap_or_default();
        let seconds = |us: u64| format!("{:.0} s", us as f64 / 1e6);
        let cost = row.cost_per_device_hour.as_ref();
        let _ = writeln!(
        out,
            "{:>8}s {:>8}s {:>8} | {:>6} {:>7} {:>5} {:>4} | {:>9} {:>9} | {:>6} {:>6} | {:>7} {:>7} | {}",
            cell.heartbeat_s,
            cell.idle_timeout_s,
            format!("{:?}", cell.strategy).to_lowercase(),
            network.sent,
            network.on_time,
            network.late,
            network.lost,
            if stale.count > 0 { seconds(stale.p50_us) } else { "-".into() },
            if stale.count > 0 { seconds(stale.max_us) } else { "-".into() },
            network.pings_died_by_deadline
                + network.pings_died_by_gateway
                + network.pings_died_by_close,
            network.pings_died_by_reset,
            cost.map_or("-".into(), |c| format!("{:.1}", c.requests)),
            cost.map_or("-".into(), |c| format!("{:.2}", c.connections)),
            network
                .heartbeat_at_end
                .iter()
                .map(|(value, count)| format!("{value} x{count}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    out
}
