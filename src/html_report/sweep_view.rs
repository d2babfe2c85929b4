//! The firewall sweep's view: for each heartbeat strategy, heatmaps of heartbeat against
//! the path's idle timeout, coloured by the share of mail late or lost, by how stale a
//! device's mailbox got, and by connections per device-hour.

use super::bars::{self, Heatmap};
use super::page::{with_unit, Figure, Section};
use crate::results::sweep::{CellResult, SweepResult};

/// Seconds as words for an axis ("25 s", "15 min").
fn seconds(value: f64) -> String {
    if value >= 60.0 && value % 60.0 == 0.0 {
        format!("{} min", value / 60.0)
    } else {
        format!("{value} s")
    }
}

/// A strategy's name as the scenario writes it.
fn strategy_name(cell: &CellResult) -> String {
    serde_json::to_value(cell.cell.strategy)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// What one heatmap colours its cells by.
struct Measure {
    title: &'static str,
    value: fn(&CellResult) -> Option<f64>,
    label: fn(f64) -> String,
}

const MEASURES: [Measure; 3] = [
    Measure {
        title: "mail late or lost",
        value: |cell| {
            let network = cell.network.as_ref()?;
            (network.sent > 0).then(|| (network.late + network.lost) as f64 / network.sent as f64)
        },
        label: |share| with_unit(share, "%"),
    },
    Measure {
        title: "staleness p99, seconds",
        value: |cell| {
            let staleness = cell.network.as_ref()?.staleness.as_ref()?;
            (staleness.count > 0).then(|| staleness.p99_us as f64 / 1e6)
        },
        label: |value| format!("{value:.1} s"),
    },
    Measure {
        title: "connections per device-hour",
        value: |cell| Some(cell.cost_per_device_hour.as_ref()?.connections),
        label: |value| format!("{value:.2}"),
    },
];

/// The sweep's heatmaps, one strategy after the other.
pub(crate) fn sweep(result: &SweepResult) -> anyhow::Result<Section> {
    let mut section = Section::new(
        "sweep",
        "Firewall sweep",
        "Each cell is one run through a path that drops idle flows after the column's timeout, with devices whose heartbeat is the row's: where the heartbeat outlives the timeout, mail comes late or not at all.",
    );
    let complete = result.cells.iter().filter(|cell| cell.complete).count();
    section.figures.push(Figure::new(
        "sweep.cells",
        "cells",
        result.cells.len() as f64,
        "",
    ));
    section.figures.push(Figure::new(
        "sweep.complete",
        "complete",
        complete as f64,
        "",
    ));
    let mut strategies: Vec<String> = result.cells.iter().map(strategy_name).collect();
    strategies.dedup();
    let axis = |of: fn(&CellResult) -> f64| {
        let mut values: Vec<f64> = result.cells.iter().map(of).collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        values
    };
    let timeouts = axis(|cell| cell.cell.idle_timeout_s);
    let heartbeats = axis(|cell| cell.cell.heartbeat_s);
    let columns: Vec<String> = timeouts.iter().map(|s| seconds(*s)).collect();
    let rows: Vec<String> = heartbeats.iter().map(|s| seconds(*s)).collect();
    for strategy in &strategies {
        for measure in &MEASURES {
            let values: Vec<Vec<Option<f64>>> = heartbeats
                .iter()
                .map(|heartbeat| {
                    timeouts
                        .iter()
                        .map(|timeout| {
                            result
                                .cells
                                .iter()
                                .find(|cell| {
                                    cell.cell.heartbeat_s == *heartbeat
                                        && cell.cell.idle_timeout_s == *timeout
                                        && strategy_name(cell) == *strategy
                                })
                                .filter(|cell| cell.complete)
                                .and_then(measure.value)
                        })
                        .collect()
                })
                .collect();
            section
                .body
                .push_str(&format!("<h3>{strategy} heartbeat: {}</h3>", measure.title));
            section.body.push_str(&bars::heatmap(&Heatmap {
                columns: &columns,
                rows: &rows,
                x_desc: "idle timeout of the path",
                y_desc: "heartbeat",
                values: &values,
                label: &measure.label,
            })?);
        }
    }
    Ok(section)
}
