//! The self-check: was the load generator (the device workers) or the whole machine
//! saturated during the hold? When it was, the latencies measure the generator and the
//! machine rather than the server, and the result says so.

use super::sampler::Role;
use super::sampler::TimelinePoint;
use crate::fleet::report::HistogramName;
use crate::fleet::report::WorkerReport;

/// A worker using this much of a core in a second of the hold is saturated: its event
/// loop is single-threaded.
const WORKER_BUSY_CORES: f64 = 0.9;
/// Every process of the run together using this share of the machine's cores.
const MACHINE_BUSY_SHARE: f64 = 0.9;
/// A generator whose own delays reach this is part of the latency it reports.
const GENERATOR_LAG_LIMIT_US: u64 = 1_000;
/// An injector within these (lag p50 and p99) sends at its planned instants to within
/// what a server's regression of tens of microseconds needs.
const INJECTOR_PRECISE_P50_US: u64 = 10;
const INJECTOR_PRECISE_P99_US: u64 = 50;

/// The verdict and the readings behind it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SelfCheck {
    /// A device worker was busy, or its event loop or injector fell behind: latencies
    /// include the generator's own delays.
    pub generator_saturated: bool,
    /// The injector's own lag was over its limit: latencies from the plan include it,
    /// those from the datagram's departure do not.
    #[serde(default)]
    pub injector_late: bool,
    /// A worker was busy or its event loop fell behind: every latency the devices
    /// measured includes their delays.
    #[serde(default)]
    pub devices_late: bool,
    /// The machine was busy on nearly all cores: server and generator competed for them
    /// (with each other, or with whatever else ran).
    pub machine_saturated: bool,
    /// Why, in words; empty when neither.
    pub reasons: Vec<String>,
    /// Seconds of the hold the check saw.
    pub hold_seconds_sampled: usize,
    /// The busiest worker's CPU in its busiest second of the hold (cores).
    pub busiest_worker_cores: Option<f64>,
    /// The machine's busy cores (every process, and the kernel) in the busiest second
    /// of the hold, and how many cores it has.
    pub busiest_second_cores: Option<f64>,
    pub machine_cores: usize,
    pub event_loop_lag_p99_us: Option<u64>,
    pub injector_lag_p99_us: Option<u64>,
    /// The injector's lag against its precision limits, in words (`null` without
    /// datagrams sent).
    #[serde(default)]
    pub injector_precision: Option<String>,
}

/// Checks the seconds of the timeline inside the hold (`hold_s` = start and end, in
/// seconds since the run started) and the workers' own lag histograms.
pub fn check(
    timeline: &[TimelinePoint],
    hold_s: Option<(f64, f64)>,
    machine_cores: usize,
    fleet: &WorkerReport,
) -> SelfCheck {
    // A reading covers the second before it, so the first one inside the hold is the
    // first that lies a second past its start.
    let in_hold: Vec<&TimelinePoint> = match hold_s {
        Some((start, end)) => timeline
            .iter()
            .filter(|point| point.t_s >= start + 1.0 && point.t_s <= end + 0.5)
            .collect(),
        None => Vec::new(),
    };
    let busiest_worker = in_hold
        .iter()
        .flat_map(|point| &point.processes)
        .filter(|process| process.role == Role::Worker)
        .filter_map(|process| process.cpu_cores.map(|cores| (cores, &process.name)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    // The machine's own reading counts what is not pingfleet's too; the processes' sum
    // stands in when the machine cannot be read.
    let busiest_second = in_hold
        .iter()
        .map(|point| {
            let ours = point.server_cpu_cores + point.worker_cpu_cores;
            point
                .kernel
                .machine_busy_cores
                .map_or(ours, |all| all.max(ours))
        })
        .max_by(f64::total_cmp);
    let p99 = |name: HistogramName| fleet.histograms.get(&name).map(|doc| doc.summary.p99_us);
    let event_loop_lag = p99(HistogramName::EventLoopLag);
    let injector_lag = p99(HistogramName::InjectorLag);
    let mut reasons = Vec::new();
    let worker_busy = busiest_worker.filter(|(cores, _)| *cores >= WORKER_BUSY_CORES);
    if let Some((cores, name)) = worker_busy {
        reasons.push(format!(
            "{name} used {cores:.2} of a core in a second of the hold (limit {WORKER_BUSY_CORES})"
        ));
    }
    let mut late = |what: &str, lag: Option<u64>| {
        let lag = lag.filter(|lag| *lag > GENERATOR_LAG_LIMIT_US);
        if let Some(lag) = lag {
            reasons.push(format!(
                "{what} p99 {lag} us exceeds {GENERATOR_LAG_LIMIT_US} us"
            ));
        }
        lag.is_some()
    };
    let loop_late = late("event-loop lag", event_loop_lag);
    let injector_late = late("injector lag", injector_lag);
    let devices_late = loop_late || worker_busy.is_some();
    let generator_saturated = injector_late || devices_late;
    let machine_limit = MACHINE_BUSY_SHARE * machine_cores as f64;
    let machine_saturated = busiest_second.is_some_and(|cores| cores >= machine_limit);
    if let Some(cores) = busiest_second.filter(|_| machine_saturated) {
        reasons.push(format!(
            "the machine was busy on {cores:.2} of {machine_cores} cores in a second of the hold"
        ));
    }
    SelfCheck {
        generator_saturated,
        injector_late,
        devices_late,
        machine_saturated,
        reasons,
        hold_seconds_sampled: in_hold.len(),
        busiest_worker_cores: busiest_worker.map(|(cores, _)| cores),
        busiest_second_cores: busiest_second,
        machine_cores,
        event_loop_lag_p99_us: event_loop_lag,
        injector_lag_p99_us: injector_lag,
        injector_precision: fleet
            .histograms
            .get(&HistogramName::InjectorLag)
            .filter(|doc| doc.summary.count > 0)
            .map(|doc| {
                let counters = &fleet.counters;
                let sender = (counters.injector_span_us > 0)
                    .then(|| counters.injector_cpu_us as f64 / counters.injector_span_us as f64);
                precision(doc.summary.p50_us, doc.summary.p99_us, sender)
            }),
    }
}

/// The injector's lag `p50` and `p99` (us) against its precision limits, and the share
/// of a core a sending thread used (the workers' injectors on average), in words.
fn precision(p50: u64, p99: u64, sender_cores: Option<f64>) -> String {
    let within = p50 <= INJECTOR_PRECISE_P50_US && p99 <= INJECTOR_PRECISE_P99_US;
    let cost = sender_cores.map_or(String::new(), |cores| {
        format!("; a sender used {:.1}% of a core", cores * 100.0)
    });
    format!(
        "injector lag p50 {p50} us, p99 {p99} us: {} the precision limits (p50 <= {INJECTOR_PRECISE_P50_US} us, p99 <= {INJECTOR_PRECISE_P99_US} us){cost}",
        if within { "within" } else { "OVER" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_injector_is_precise_only_within_both_limits() {
        assert!(precision(10, 50, None).contains(": within the precision limits"));
        assert!(precision(11, 20, None).contains(": OVER the precision limits"));
        assert!(precision(4, 51, None).contains(": OVER"));
        assert!(precision(4, 20, Some(0.034)).ends_with("; a sender used 3.4% of a core"));
    }
    use crate::orchestrator::sampler::{KernelPoint, ProcessPoint};

    fn point(t_s: f64, worker_cores: f64, server_cores: f64) -> TimelinePoint {
        TimelinePoint {
            t_s,
            stage: crate::phase::Phase::Hold,
            parked: 10,
            notifications: 0,
            wakeups: 0,
            server_wake_p99_us: 0,
            server_rss_bytes: 0,
            worker_rss_bytes: 0,
            server_cpu_cores: server_cores,
            worker_cpu_cores: worker_cores,
            kernel: KernelPoint {
                slab_bytes: None,
                tcp: None,
                machine_busy_cores: None,
            },
            fleet: crate::fleet::stats::Progress::default(),
            processes: vec![ProcessPoint {
                name: "worker-0".into(),
                role: Role::Worker,
                rss_bytes: Some(1),
                cpu_cores: Some(worker_cores),
            }],
        }
    }

    fn fleet() -> WorkerReport {
        serde_json::from_str(include_str!("testdata/worker.json")).expect("test document")
    }

    #[test]
    fn an_idle_generator_passes_and_a_busy_one_is_named() {
        let quiet = [
            point(1.0, 0.95, 0.0),
            point(3.0, 0.2, 0.3),
            point(4.0, 0.3, 0.2),
        ];
        // The busy first second lies in the ramp, outside the hold.
        let verdict = check(&quiet, Some((2.0, 4.0)), 2, &fleet());
        assert!(!verdict.generator_saturated && !verdict.machine_saturated);
        assert_eq!(verdict.hold_seconds_sampled, 2);
        assert_eq!(verdict.busiest_worker_cores, Some(0.3));

        let busy = [point(3.0, 0.97, 0.9), point(4.0, 0.3, 0.2)];
        let verdict = check(&busy, Some((2.0, 4.0)), 2, &fleet());
        assert!(verdict.generator_saturated);
        assert!(verdict.machine_saturated);
        assert!(verdict.reasons[0].starts_with("worker-0 used 0.97"));
    }

    #[test]
    fn a_machine_busy_with_something_else_counts() {
        let mut busy = point(3.0, 0.1, 0.1);
        busy.kernel.machine_busy_cores = Some(1.9);
        let verdict = check(&[busy], Some((2.0, 4.0)), 2, &fleet());
        assert!(verdict.machine_saturated && !verdict.generator_saturated);
        assert_eq!(verdict.busiest_second_cores, Some(1.9));
        assert!(verdict.reasons[0].contains("busy on 1.90 of 2 cores"));
    }

    #[test]
    fn a_lagging_event_loop_counts_as_saturated() {
        let mut report = fleet();
        let lag = report
            .histograms
            .get_mut(&HistogramName::EventLoopLag)
            .expect("lag");
        lag.summary.p99_us = 5_000;
        let verdict = check(&[point(3.0, 0.1, 0.1)], Some((2.0, 4.0)), 2, &report);
        assert!(verdict.generator_saturated);
        assert!(verdict.devices_late && !verdict.injector_late);
        assert!(verdict.reasons[0].contains("event-loop lag p99 5000 us"));
    }

    #[test]
    fn a_late_injector_is_told_apart_from_late_devices() {
        let mut report = fleet();
        let lag = report
            .histograms
            .get_mut(&HistogramName::InjectorLag)
            .expect("injector lag");
        lag.summary.p99_us = 6_000;
        let verdict = check(&[point(3.0, 0.1, 0.1)], Some((2.0, 4.0)), 2, &report);
        assert!(verdict.generator_saturated && verdict.injector_late);
        assert!(!verdict.devices_late, "{:?}", verdict.reasons);
        assert!(verdict.reasons[0].contains("injector lag p99 6000 us"));
    }
}
