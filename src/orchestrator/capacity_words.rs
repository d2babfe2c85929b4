//! A capacity search said in words, a view of its result: the one-sentence answer, each
//! step's line as it is measured, and the summary printed when the search ends (each
//! step, each memory component's line, the knee). It reads the result types alone.

use std::fmt::Write as _;

use crate::measure::latency::LatencySummary;
use crate::results::capacity::{total_memory_fit, CapacityResult, StepResult};
use crate::results::capacity_fit::Limit;
use crate::units::bytes;

/// "lean TLS on 2 cores: holds 40000 devices within the thresholds (80000 failed on
/// latency: ...); memory per device ...; N GiB would hold ~M devices by memory; ..."
pub(super) fn answer(result: &CapacityResult, memory_limit: Option<f64>) -> String {
    let knee = &result.knee;
    let mut words = format!("{} on {} cores: ", result.server, result.machine_cores);
    match knee.holds_devices {
        Some(devices) => words.push_str(&format!(
            "holds {devices} devices within the scenario's thresholds"
        )),
        None => words.push_str("not even the first step passed"),
    }
    words.push_str(&match (knee.failed_at_devices, knee.limit) {
        (Some(next), limit) => format!(" ({next} failed on {}: {})", limit_words(limit), knee.why),
        (None, Limit::Steps) => " (every step passed: the search found no limit)".into(),
        (None, limit) => format!(
            " (the search stopped: {}: {})",
            limit_words(limit),
            knee.why
        ),
    });
    let per_device: Vec<String> = result
        .fits
        .iter()
        .filter(|fit| fit.component != "server_heap")
        .filter_map(|fit| {
            let line = fit.line?;
            let base = fit.base_per_process_bytes.map_or(String::new(), |base| {
                format!(" (and {} per process at start)", bytes(base))
            });
            Some(format!(
                "{} {}{base}",
                fit.component.replace('_', " "),
                bytes(line.bytes_per_device),
            ))
        })
        .collect();
    if per_device.is_empty() {
        words.push_str(
            "; memory per device not measured (fewer than two steps formed, or no reading)",
        );
    } else {
        words.push_str(&format!("; memory per device: {}", per_device.join(", ")));
    }
    if let (Some(total), Some(limit)) = (total_memory_fit(&result.steps), memory_limit) {
        if let Some(devices) = total.devices_in(limit) {
            words.push_str(&format!(
                "; {:.1} GiB would hold ~{:.0} devices by memory",
                limit / 1024f64.powi(3),
                devices
            ));
        }
    }
    let largest = result
        .steps
        .iter()
        .rev()
        .find(|step| step.passed)
        .or(result.steps.last());
    if let Some(cores) = largest.and_then(|step| step.server_cores_per_1000_wakeups_per_s) {
        words.push_str(&format!(
            "; the server used {cores:.2} cores per 1000 wake-ups/s, so {} cores would limit the wake rate to ~{:.0}/s",
            result.machine_cores,
            result.machine_cores as f64 / cores * 1000.0
        ));
    }
    words
}

fn limit_words(limit: Limit) -> &'static str {
    match limit {
        Limit::Latency => "latency",
        Limit::Errors => "errors or lost mail",
        Limit::Threshold => "a threshold",
        Limit::Incomplete => "an incomplete run",
        Limit::Memory => "memory",
        Limit::Plan => "its plan",
        Limit::Steps => "no step left",
        Limit::Stopped => "a stop",
    }
}

/// The search's summary as printed (after an empty line): each step, each memory
/// component's line, the answer.
pub(super) fn search_text(result: &CapacityResult) -> String {
    let mut out = String::from("\n");
    let _ = writeln!(
        out,
        "capacity search of {} ({} steps):",
        result.server,
        result.steps.len()
    );
    for step in &result.steps {
        let _ = writeln!(out, "{}", step_line(step));
    }
    for fit in &result.fits {
        let _ = match fit.line {
            Some(line) => writeln!(
                out,
                "  {:<12} {} per device + {} (R^2 {:.4}, {} steps){}",
                fit.component,
                bytes(line.bytes_per_device),
                bytes(line.base_bytes),
                line.r_squared,
                line.points,
                fit.base_per_process_bytes
                    .map_or(String::new(), |base| format!(
                        "; {} per process at start",
                        bytes(base)
                    ))
            ),
            None => writeln!(
                out,
                "  {:<12} not measured (fewer than two steps with a reading)",
                fit.component
            ),
        };
    }
    let _ = writeln!(out, "answer: {}", result.answer);
    out
}

/// One line per step, as it is measured.
pub(super) fn step_line(step: &StepResult) -> String {
    let us = |s: Option<LatencySummary>, f: fn(&LatencySummary) -> u64| {
        s.map_or("-".into(), |s| format!("{} us", f(&s)))
    };
    format!(
        "  {:>9} devices  {:<4}  parked {:>9}  wake-up p50 {:>9} p99 {:>9}  server RSS {:>10}  {}",
        step.devices,
        if step.passed { "PASS" } else { "FAIL" },
        step.parked.map_or("-".into(), |p| p.to_string()),
        us(step.wakeup, |s| s.p50_us),
        us(step.wakeup, |s| s.p99_us),
        step.server_rss_bytes
            .map_or("not measured".into(), |b| bytes(b as f64)),
        step.why
    )
    .trim_end()
    .to_owned()
}
