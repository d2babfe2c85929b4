//! The capacity search's view: the answer, latency against the device count, each
//! memory component against it with its fitted line, and the steps as a table.

use super::page::{escape, table, with_unit, Figure, Section};
use super::plots::{self, LineChart, Series};
use crate::orchestrator::capacity::{grown, CapacityResult, StepResult};

pub fn capacity(result: &CapacityResult) -> anyhow::Result<Section> {
    let mut section = Section::new(
        "capacity",
        "Capacity search",
        "The fleet at each step's size with the same notification rate per device, each step judged by the scenario's thresholds; each memory component fitted over the steps as a line (bytes per device and a base).",
    );
    let holds = result
        .knee
        .holds_devices
        .map_or(f64::NAN, |devices| devices as f64);
    section.figures.push(Figure::new(
        "capacity.holds_devices",
        "holds",
        holds,
        "devices",
    ));
    section.body = format!("<p><b>{}</b></p>", escape(&result.answer));
    let steps = &result.steps;
    let at = |value: fn(&StepResult) -> Option<f64>| {
        steps
            .iter()
            .filter_map(|s| Some((s.devices as f64, value(s)?)))
            .collect::<Vec<_>>()
    };
    let latency = [
        Series {
            name: "wake-up p50".into(),
            points: at(|s| Some(s.wakeup?.p50_us as f64)),
        },
        Series {
            name: "wake-up p99".into(),
            points: at(|s| Some(s.wakeup?.p99_us as f64)),
        },
        Series {
            name: "loopback floor p99".into(),
            points: at(|s| Some(s.floor?.p99_us as f64)),
        },
    ];
    section.body.push_str(&plots::lines(&LineChart {
        x_desc: "devices",
        y_desc: "microseconds",
        series: &latency,
        spans: &[],
        marks: &[],
    })?);
    let mut memory = Vec::new();
    for fit in &result.fits {
        const MIB: f64 = 1024.0 * 1024.0;
        let points: Vec<(f64, f64)> = steps
            .iter()
            .filter_map(|s| Some((s.devices as f64, grown(s, &fit.component)? as f64 / MIB)))
            .collect();
        if let (Some(line), Some(last)) = (fit.line, steps.last()) {
            memory.push(Series {
                name: format!(
                    "{} fitted: {} per device (R^2 {:.3})",
                    fit.component,
                    with_unit(line.bytes_per_device.round(), "B"),
                    line.r_squared
                ),
                points: vec![
                    (0.0, line.base_bytes / MIB),
                    (last.devices as f64, line.at(last.devices as f64) / MIB),
                ],
            });
        }
        memory.push(Series {
            name: format!("{} grown since start", fit.component),
            points,
        });
    }
    section.body.push_str(&plots::lines(&LineChart {
        x_desc: "devices",
        y_desc: "MiB",
        series: &memory,
        spans: &[],
        marks: &[],
    })?);
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            vec![
                with_unit(s.devices as f64, ""),
                (if s.passed {
                    "<span class=\"pass\">PASS</span>"
                } else {
                    "<span class=\"fail\">FAIL</span>"
                })
                .into(),
                s.wakeup
                    .map_or("-".into(), |w| with_unit(w.p99_us as f64, "us")),
                s.server_rss_bytes
                    .map_or("not measured".into(), |b| with_unit(b as f64, "B")),
                escape(&s.why),
            ]
        })
        .collect();
    section.body.push_str(&table(
        &[
            "devices",
            "step",
            "wake-up p99",
            "server RSS",
            "why it failed",
        ],
        &rows,
    ));
    Ok(section)
}
