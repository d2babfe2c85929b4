//! A capacity search said in words: the one-sentence answer, and the summary printed
//! when the search ends (each step, each memory component's line, the knee).

use super::capacity::{total_memory_fit, CapacityResult};
use super::capacity_fit::Limit;
use crate::units::bytes;

/// "lean TLS on 2 cores: holds 40000 devices within the thresholds (80000 failed on
/// latency: ...); memory per device ...; N GiB would hold ~M devices by memory; ..."
pub fn answer(result: &CapacityResult, memory_limit: Option<f64>) -> String {
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

/// The search's summary: each step, each memory component's line, the answer.
pub fn print_search(result: &CapacityResult) {
    println!();
    println!(
        "capacity search of {} ({} steps):",
        result.server,
        result.steps.len()
    );
    for step in &result.steps {
        println!("{}", super::capacity::step_line(step));
    }
    for fit in &result.fits {
        match fit.line {
            Some(line) => println!(
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
            None => println!(
                "  {:<12} not measured (fewer than two steps with a reading)",
                fit.component
            ),
        }
    }
    println!("answer: {}", result.answer);
}
