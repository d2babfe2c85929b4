//! The capacity search's view: the answer, latency against the device count with the
//! scenario's latency threshold drawn across it, each memory component against it with
//! its fitted line, and the steps as a table. The steps grow geometrically, so the
//! device axis is logarithmic and each step a marked point.

use super::page::{escape, table, with_unit, Figure, Section};
use super::plots::{self, LineChart, Series, Style};
use super::ticks::Unit;
use crate::results::capacity::{grown, CapacityResult, StepResult};
use crate::scenario::threshold::{Aggregate, Operator};
use crate::scenario::{Metric, Scenario};

/// Points a fitted line is drawn through (it curves on the log axis).
const FIT_POINTS: usize = 48;

pub(crate) fn capacity(result: &CapacityResult) -> anyhow::Result<Section> {
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
        Series::new(
            "wake-up p50",
            Style::LineAndPoints,
            at(|s| Some(s.wakeup?.p50_us as f64)),
        ),
        Series::new(
            "wake-up p99",
            Style::LineAndPoints,
            at(|s| Some(s.wakeup?.p99_us as f64)),
        ),
        Series::new(
            "loopback floor p99",
            Style::LineAndPoints,
            at(|s| Some(s.floor?.p99_us as f64)),
        ),
    ];
    let limits = latency_limits(&result.scenario_text);
    let mut chart = LineChart::new(
        ("devices (each step a point)", Unit::Count),
        ("latency", Unit::Micros),
        &latency,
    );
    chart.x_log = true;
    chart.limits = &limits;
    section.body.push_str(&plots::lines(&chart)?);
    let memory = memory_series(result);
    let mut chart = LineChart::new(
        ("devices (each step a point)", Unit::Count),
        ("memory grown since the start", Unit::Bytes),
        &memory,
    );
    chart.x_log = true;
    section.body.push_str(&plots::lines(&chart)?);
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

/// The wake-up latency thresholds of the search's scenario that a step must stay under
/// (`p(99)<5ms`): each one's level in microseconds, and its words.
fn latency_limits(scenario_text: &str) -> Vec<(f64, String)> {
    let Ok(scenario) = Scenario::parse_unchecked(scenario_text, "the search's scenario") else {
        return Vec::new();
    };
    let conditions = scenario.thresholds.get(&Metric::WakeupLatency);
    conditions
        .into_iter()
        .flatten()
        .map(|condition| &condition.0)
        .filter(|condition| {
            matches!(condition.aggregate, Aggregate::Percentile(_))
                && matches!(condition.comparison, Operator::Less | Operator::LessEqual)
        })
        .map(|condition| {
            let words = format!("threshold: wake-up {}", condition.text);
            (condition.value, words)
        })
        .collect()
}

/// Each memory component's growth at each step, and its fitted line drawn through the
/// range of the steps.
fn memory_series(result: &CapacityResult) -> Vec<Series> {
    let steps = &result.steps;
    let (Some(first), Some(last)) = (steps.first(), steps.last()) else {
        return Vec::new();
    };
    let (low, high) = (first.devices.max(1) as f64, last.devices.max(1) as f64);
    let mut memory = Vec::new();
    for (index, fit) in result.fits.iter().enumerate() {
        let points: Vec<(f64, f64)> = steps
            .iter()
            .filter_map(|s| Some((s.devices as f64, grown(s, &fit.component)? as f64)))
            .collect();
        if let Some(line) = fit.line {
            let along = (0..=FIT_POINTS).map(|step| {
                let devices = low * (high / low).powf(step as f64 / FIT_POINTS as f64);
                (devices, line.at(devices))
            });
            memory.push(
                Series::new(
                    format!(
                        "{} fitted: {} per device (R^2 {:.3})",
                        fit.component,
                        with_unit(line.bytes_per_device.round(), "B"),
                        line.r_squared
                    ),
                    Style::Line,
                    along.collect(),
                )
                .in_colour(index),
            );
        }
        memory.push(
            Series::new(
                format!("{} grown since start", fit.component),
                Style::Points,
                points,
            )
            .in_colour(index),
        );
    }
    memory
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_threshold_is_read_from_the_searchs_scenario() {
        let text = "name = \"c\"\n[devices]\ncount = 10\n[thresholds]\nwakeup_latency = [\"p(99)<5ms\", \"max<1s\"]\nlost_notifications = [\"count==0\"]\n";
        let limits = latency_limits(text);
        assert_eq!(limits.len(), 1, "{limits:?}");
        assert_eq!(limits[0].0, 5_000.0);
        assert!(limits[0].1.contains("p(99)<5ms"), "{limits:?}");
        assert!(latency_limits("not a scenario").is_empty());
    }
}
