//! The capacity search (`[capacity]`): the scenario run at each step's device count,
//! with its notification rate scaled to keep the rate per device, each step judged by
//! the scenario's thresholds; the search stops at the first failing step, at a step
//! whose memory would not fit, or when the steps run out. Then each memory component is
//! fitted against the device count, and the answer is said in one sentence.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::capacity_words::{answer, step_line};
use crate::phase::Phase;
use crate::results::capacity::{fits, total_memory_fit, CapacityResult, Drift, StepResult, SCHEMA};
use crate::results::capacity_fit::{self, KneeStep, Limit};
use crate::results::run::{RunResult, ThresholdVerdict};
use crate::results::self_check::SelfCheck;
use crate::results::timeline::TimelinePoint;
use crate::scenario::capacity::CapacitySection;
use crate::scenario::resolve::{Overrides, ResolvedScenario};

/// Times a step is measured at most: a failure on latency while the generator was
/// late says nothing of the server, so such a step is measured again, once.
const MAX_ATTEMPTS: u32 = 2;

/// Measures one step's plan, its files under the directory given.
pub type MeasureStep<'a> = dyn Fn(&ResolvedScenario, &Path) -> anyhow::Result<RunResult> + 'a;
/// Writes a step's result file; its path.
pub type WriteStep<'a> = dyn Fn(&ResolvedScenario, &RunResult) -> anyhow::Result<PathBuf> + 'a;

/// How the search reaches a step: the scenario's text and file, the flags given, the
/// machine's limits.
pub struct Search<'a> {
    pub plan: &'a ResolvedScenario,
    pub file: &'a str,
    pub overrides: &'a Overrides,
    pub section: &'a CapacitySection,
    pub dir: &'a Path,
    pub interrupted: &'a AtomicBool,
}

/// Runs the steps in order until one fails or a limit is reached, then (with `bisect`)
/// the steps that halve the gap between the largest that held and the smallest that
/// failed.
pub fn run_search(
    search: &Search<'_>,
    measure: &MeasureStep<'_>,
    write: &WriteStep<'_>,
) -> anyhow::Result<CapacityResult> {
    let plan = search.plan;
    let memory_limit = search
        .section
        .max_memory_gib
        .map(|gib| gib * 1024.0 * 1024.0 * 1024.0)
        .or(plan.limits.memory_available_bytes.map(|bytes| bytes as f64));
    let mut steps: Vec<StepResult> = Vec::new();
    let mut stopped_by: Option<(Limit, String)> = None;
    let mut planned: VecDeque<usize> = search.section.steps().into();
    let mut bisections = search.section.bisect;
    while let Some(devices) = planned.pop_front() {
        if let Some(why) = too_big(&steps, devices, memory_limit) {
            stopped_by = Some((Limit::Memory, why));
            break;
        }
        let number = steps.len() + 1;
        let once = || one_step(search, devices, number, measure, write);
        let step = match measured_step(number, search.interrupted, once)? {
            Ok(step) => step,
            Err(stop) => {
                stopped_by = Some(stop);
                break;
            }
        };
        let failed = !step.passed;
        steps.push(step);
        if search.interrupted.load(Ordering::Relaxed) {
            stopped_by = Some((Limit::Stopped, "the run was stopped".into()));
            break;
        }
        if failed {
            planned.clear();
        }
        if planned.is_empty() && bisections > 0 {
            if let Some(mid) = capacity_fit::bisection(&knee_steps(&steps)) {
                planned.push_back(mid);
                bisections -= 1;
            }
        }
    }
    steps.sort_by_key(|step| step.devices);
    let fits = fits(&steps);
    let knee = capacity_fit::knee(
        &knee_steps(&steps),
        stopped_by
            .as_ref()
            .map(|(limit, why)| (*limit, why.as_str())),
    );
    let server = server_words(plan);
    let mut result = CapacityResult {
        schema: SCHEMA.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        scenario: plan.scenario.name.clone(),
        scenario_text: plan.text.clone(),
        server,
        machine_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_available_bytes: plan.limits.memory_available_bytes,
        steps,
        fits,
        knee,
        answer: String::new(),
    };
    result.answer = answer(&result, memory_limit);
    Ok(result)
}

/// Each step as the knee sees it.
fn knee_steps(steps: &[StepResult]) -> Vec<KneeStep<'_>> {
    steps
        .iter()
        .map(|step| KneeStep {
            devices: step.devices,
            passed: step.passed,
            limit: step.limit,
            why: &step.why,
        })
        .collect()
}

/// The step of `devices` measured, and measured again while it fails on latency with
/// its self-check failed (up to [`MAX_ATTEMPTS`]); the last measurement counts.
fn measured_step(
    number: usize,
    interrupted: &AtomicBool,
    measure_once: impl Fn() -> anyhow::Result<Result<StepResult, (Limit, String)>>,
) -> anyhow::Result<Result<StepResult, (Limit, String)>> {
    let mut attempts = 0;
    loop {
        let mut step = match measure_once()? {
            Ok(step) => step,
            stop => return Ok(stop),
        };
        attempts += 1;
        step.attempts = attempts;
        if !untrusted_latency_failure(&step)
            || attempts >= MAX_ATTEMPTS
            || interrupted.load(Ordering::Relaxed)
        {
            return Ok(Ok(step));
        }
        println!(
            "capacity step {number}: failed on latency while the generator was late and \
             cores were free ({}): measured again",
            step.self_check_reasons.join(", ")
        );
    }
}

/// Whether `step` failed on latency while its self-check failed: its latencies were
/// partly the generator's or a busy machine's.
fn untrusted_latency_failure(step: &StepResult) -> bool {
    step.limit == Some(Limit::Latency) && step.generator_late
}

/// Whether the generator fell behind on its own: late, with cores to spare (on a busy
/// machine the server's own load may have made it late, and that is a limit).
fn generator_late(check: &SelfCheck) -> bool {
    (check.injector_late || check.devices_late) && !check.machine_saturated
}

/// Measures, judges and writes the step of `devices` (the `number`th); what stopped
/// the search instead, when the step's plan could not be made.
fn one_step(
    search: &Search<'_>,
    devices: usize,
    number: usize,
    measure: &MeasureStep<'_>,
    write: &WriteStep<'_>,
) -> anyhow::Result<Result<StepResult, (Limit, String)>> {
    let step_plan = match step_plan(search, devices) {
        Ok(step_plan) => step_plan,
        Err(err) => {
            let limit = match err.to_string().contains("available") {
                true => Limit::Memory,
                false => Limit::Plan,
            };
            return Ok(Err((limit, format!("{devices} devices: {err:#}"))));
        }
    };
    println!(
        "capacity step {number}: {devices} devices, {:.1} changes/s",
        step_plan.scenario.injector.rate
    );
    let step_dir = search.dir.join(format!("step-{devices}"));
    std::fs::create_dir_all(&step_dir)?;
    let mut result = measure(&step_plan, &step_dir)?;
    result.thresholds =
        super::thresholds::judge_thresholds(&step_plan.scenario.thresholds, &result);
    let path = write(&step_plan, &result)?;
    let step = step_of(&step_plan, &result, &path);
    println!("{}", step_line(&step));
    Ok(Ok(step))
}

/// Why a step of `devices` would not fit in `limit` bytes by the fit of the steps so far.
fn too_big(steps: &[StepResult], devices: usize, limit: Option<f64>) -> Option<String> {
    let limit = limit?;
    let total = total_memory_fit(steps)?;
    let needed = total.at(devices as f64);
    (needed > limit).then(|| {
        format!(
            "{devices} devices would need {:.1} GiB by the fit of the steps so far, over the {:.1} GiB allowed",
            needed / 1024f64.powi(3),
            limit / 1024f64.powi(3)
        )
    })
}

/// The plan of a step: the scenario with `devices` devices and its rate scaled to them.
fn step_plan(search: &Search<'_>, devices: usize) -> anyhow::Result<ResolvedScenario> {
    let overrides = Overrides {
        devices: Some(devices),
        ..search.overrides.clone()
    };
    let mut plan = ResolvedScenario::resolve(
        &search.plan.text,
        search.file,
        &overrides,
        search.plan.limits,
    )?;
    let base = &search.plan.scenario;
    plan.scenario.injector.rate =
        base.injector.rate * devices as f64 / base.devices.count.max(1) as f64;
    Ok(plan)
}

fn server_words(plan: &ResolvedScenario) -> String {
    match (&plan.scenario.target, plan.engines.first()) {
        (Some(target), _) => target.url.clone(),
        (None, Some(engine)) => format!(
            "{} {}",
            engine.name(),
            if plan.scenario.server.tls {
                "TLS"
            } else {
                "plain"
            }
        ),
        (None, None) => "the bundled server".into(),
    }
}

/// A step's figures from its run.
fn step_of(plan: &ResolvedScenario, result: &RunResult, path: &Path) -> StepResult {
    use crate::fleet::histogram::HistogramName;
    let devices = plan.scenario.devices.count;
    let summary = |name| result.summary_of(name);
    let (passed, limit, why) = verdict(result);
    let hold: Vec<&TimelinePoint> = result
        .timeline
        .iter()
        .filter(|p| p.stage == Phase::Hold)
        .collect();
    let memory = &result.memory;
    let slab_start = result.timeline.first().and_then(|p| p.kernel.slab_bytes);
    let slab_top = hold.iter().filter_map(|p| p.kernel.slab_bytes).max();
    StepResult {
        devices,
        server_processes: plan.partitions as usize,
        worker_processes: plan.workers as usize,
        rate_per_s: plan.scenario.injector.rate,
        passed,
        limit,
        why,
        self_check_reasons: result.self_check.reasons.clone(),
        generator_late: generator_late(&result.self_check),
        attempts: 1,
        result_file: Some(path.display().to_string()),
        parked: memory.parked_at_plateau,
        wakeup: summary(HistogramName::WakeupLatency),
        mail_on_device: summary(HistogramName::MailOnDeviceLatency),
        floor: result
            .floor
            .as_ref()
            .map(|floor| floor.during_hold)
            .filter(|s| s.count > 0),
        server_cores_per_1000_wakeups_per_s: cores_per_wake_rate(&hold),
        server_rss_bytes: memory.server_rss_plateau_bytes,
        server_heap_bytes: memory.server_heap_plateau_bytes,
        devices_rss_bytes: memory.worker_rss_plateau_bytes,
        kernel_slab_growth_bytes: slab_start
            .zip(slab_top)
            .map(|(start, top)| top.saturating_sub(start)),
        server_rss_baseline_bytes: memory.server_rss_baseline_bytes,
        server_heap_baseline_bytes: memory.server_heap_baseline_bytes,
        devices_rss_baseline_bytes: memory.worker_rss_baseline_bytes,
        drift_per_device_hour: Drift {
            server_rss: drift(&hold, devices, |p| Some(p.server_rss_bytes)),
            devices_rss: drift(&hold, devices, |p| Some(p.worker_rss_bytes)),
            kernel_slab: drift(&hold, devices, |p| p.kernel.slab_bytes),
        },
    }
}

/// Whether a step's run passed, what it hit and why: an incomplete run, or its failed
/// thresholds; a latency failure while the self-check failed says so.
fn verdict(result: &RunResult) -> (bool, Option<Limit>, String) {
    let failed: Vec<&ThresholdVerdict> = result.thresholds.iter().filter(|v| !v.passed).collect();
    if !result.complete {
        return (false, Some(Limit::Incomplete), result.failures.join("; "));
    }
    if failed.is_empty() {
        return (true, None, String::new());
    }
    let metrics: Vec<&str> = failed.iter().map(|v| v.metric.as_str()).collect();
    let limit = capacity_fit::limit_of_thresholds(&metrics);
    let mut why = failed
        .iter()
        .map(|v| {
            format!(
                "{} {} (observed {})",
                v.metric,
                v.condition,
                v.observed_text.as_deref().unwrap_or("not measured")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if let Some(note) = generator_note(limit, &result.self_check) {
        why.push_str(&note);
    }
    (false, Some(limit), why)
}

/// What a failure on `limit` adds to its why when the generator was late on its own.
fn generator_note(limit: Limit, check: &SelfCheck) -> Option<String> {
    (limit == Limit::Latency && generator_late(check)).then(|| {
        format!(
            "; the generator itself was late ({}): the server's own limit may lie higher",
            check.reasons.join(", ")
        )
    })
}

/// The server's cores per 1,000 wake-ups a second over the hold.
fn cores_per_wake_rate(hold: &[&TimelinePoint]) -> Option<f64> {
    let (first, last) = (hold.first()?, hold.last()?);
    let seconds = last.t_s - first.t_s;
    let wakes_per_s = last.wakeups.saturating_sub(first.wakeups) as f64 / seconds;
    let cores = hold.iter().skip(1).map(|p| p.server_cpu_cores).sum::<f64>()
        / (hold.len() - 1).max(1) as f64;
    (seconds > 0.0 && wakes_per_s > 0.0).then(|| cores / (wakes_per_s / 1000.0))
}

/// The slope of a memory reading over the hold, per device-hour.
fn drift(
    hold: &[&TimelinePoint],
    devices: usize,
    bytes: fn(&TimelinePoint) -> Option<u64>,
) -> Option<f64> {
    let points: Vec<(f64, f64)> = hold
        .iter()
        .filter_map(|p| Some((p.t_s, bytes(p)? as f64)))
        .collect();
    let line = capacity_fit::fit(&points)?;
    Some(line.bytes_per_device * 3600.0 / devices.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-check as a run writes it: the injector `late` or not, the machine
    /// `busy` (all cores) or not.
    fn check(late: bool, busy: bool) -> SelfCheck {
        serde_json::from_value(serde_json::json!({
            "generator_saturated": late || busy,
            "injector_late": late,
            "machine_saturated": busy,
            "reasons": if late { vec!["injector lag p99 2895 us exceeds 1000 us"] } else { vec![] },
            "hold_seconds_sampled": 19,
            "busiest_worker_cores": 0.07,
            "busiest_second_cores": if busy { 2.0 } else { 0.6 },
            "machine_cores": 2,
            "event_loop_lag_p99_us": 573,
            "injector_lag_p99_us": 2895,
            "injector_precision": "",
        }))
        .unwrap()
    }

    fn step(limit: Option<Limit>, generator_late: bool) -> StepResult {
        let mut step: StepResult = serde_json::from_value(serde_json::json!({
            "devices": 40000, "rate_per_s": 400.0, "passed": limit.is_none(), "why": "",
            "drift_per_device_hour": {},
        }))
        .unwrap();
        step.limit = limit;
        step.generator_late = generator_late;
        step
    }

    #[test]
    fn the_generator_is_late_on_its_own_only_with_cores_to_spare() {
        assert!(generator_late(&check(true, false)));
        assert!(!generator_late(&check(true, true)));
        assert!(!generator_late(&check(false, false)));
        assert_eq!(
            generator_note(Limit::Latency, &check(true, false)).unwrap(),
            "; the generator itself was late (injector lag p99 2895 us exceeds 1000 us): \
             the server's own limit may lie higher"
        );
        assert_eq!(generator_note(Limit::Errors, &check(true, false)), None);
        assert_eq!(generator_note(Limit::Latency, &check(true, true)), None);
    }

    #[test]
    fn only_a_latency_failure_while_the_generator_was_late_is_measured_again() {
        assert!(untrusted_latency_failure(&step(Some(Limit::Latency), true)));
        assert!(!untrusted_latency_failure(&step(
            Some(Limit::Latency),
            false
        )));
        assert!(!untrusted_latency_failure(&step(Some(Limit::Errors), true)));
        assert!(!untrusted_latency_failure(&step(None, true)));
        assert_eq!(
            step(None, false).attempts,
            1,
            "a step read without attempts"
        );
    }

    /// `measured_step` over steps given in turn; the step it keeps, and how many it took.
    fn measured(given: Vec<StepResult>) -> (StepResult, usize) {
        let given = std::cell::RefCell::new(given.into_iter());
        let taken = std::cell::Cell::new(0);
        let once = || {
            taken.set(taken.get() + 1);
            Ok(Ok(given.borrow_mut().next().unwrap()))
        };
        let kept = measured_step(3, &AtomicBool::new(false), once).unwrap();
        (kept.unwrap(), taken.get())
    }

    #[test]
    fn a_step_failing_on_latency_while_the_generator_was_late_is_measured_once_more() {
        let late = || step(Some(Limit::Latency), true);
        let (kept, taken) = measured(vec![late(), step(None, false)]);
        assert!(kept.passed);
        assert_eq!((kept.attempts, taken), (2, 2));
        let (kept, taken) = measured(vec![late(), late(), step(None, false)]);
        assert_eq!(
            kept.limit,
            Some(Limit::Latency),
            "the second measurement counts"
        );
        assert_eq!((kept.attempts, taken), (2, 2), "at most MAX_ATTEMPTS");
        let (kept, taken) = measured(vec![step(Some(Limit::Latency), false), late()]);
        assert_eq!(
            (kept.attempts, taken),
            (1, 1),
            "a server's own latency failure"
        );
    }
}
