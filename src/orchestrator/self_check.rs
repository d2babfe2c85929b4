//! The self-check: did the hold measure the server, or something else? Three causes are
//! told apart, each with what to do next: the host stalling (the floor's own tail high
//! while our processes used little CPU, or the machine busy with work not ours), the
//! generator falling behind (the injector or a worker late while we used the cores), and
//! the machine busy with our own fleet (server and workers together near every core).

use crate::fleet::report::HistogramName;
use crate::fleet::report::WorkerReport;
use crate::measure::latency::LatencySummary;
use crate::results::self_check::{Cause, SelfCheck};
use crate::results::timeline::{Role, TimelinePoint};

/// A worker using this much of a core in a second of the hold is saturated: its event
/// loop is single-threaded.
const WORKER_BUSY_CORES: f64 = 0.9;
/// Every process of the run together using this share of the machine's cores.
const MACHINE_BUSY_SHARE: f64 = 0.9;
/// A generator whose own delays reach this is part of the latency it reports.
const GENERATOR_LAG_LIMIT_US: u64 = 1_000;
/// Our processes (server and workers) using less than this share of the cores leave
/// the machine's stalls to someone else.
const OURS_QUIET_SHARE: f64 = 0.5;
/// The loopback floor's own p99.9 at or above this during the hold: the host stalled
/// (two thread wake-ups, no work, should take tens of microseconds).
const FLOOR_STALL_P999_US: u64 = 1_000;
/// An injector within these (lag p50 and p99) sends at its planned instants to within
/// what a server's regression of tens of microseconds needs.
const INJECTOR_PRECISE_P50_US: u64 = 10;
const INJECTOR_PRECISE_P99_US: u64 = 50;

/// Checks the seconds of the timeline inside the hold (`hold_s` = start and end, in
/// seconds since the run started) and the workers' own lag histograms.
pub(crate) fn check(
    timeline: &[TimelinePoint],
    hold_s: Option<(f64, f64)>,
    (machine_cores, floor): (usize, Option<&LatencySummary>),
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
            let ours = point.our_cpu_cores();
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
    let ours = in_hold
        .iter()
        .map(|point| point.our_cpu_cores())
        .max_by(f64::total_cmp);
    let floor_p999 = floor
        .filter(|floor| floor.count > 0)
        .map(|floor| floor.p999_us);
    let readings = Readings {
        cores: machine_cores as f64,
        ours,
        worker_busy: worker_busy.is_some(),
        late: injector_late || loop_late,
        machine_saturated,
        floor_stalled: floor_p999.is_some_and(|p999| p999 >= FLOOR_STALL_P999_US),
    };
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
        cause: readings.cause(),
        our_busiest_second_cores: ours,
        floor_p999_us: floor_p999,
    }
}

/// What the cause is judged from.
struct Readings {
    cores: f64,
    /// Our processes' busiest second (cores).
    ours: Option<f64>,
    worker_busy: bool,
    /// The injector or an event loop over its lag limit.
    late: bool,
    machine_saturated: bool,
    /// The floor's own p99.9 over its stall limit.
    floor_stalled: bool,
}

impl Readings {
    /// Our fleet busy first (it explains everything after it), then a worker at its
    /// core, then lateness or a busy machine while we were quiet (the host's), then
    /// lateness alone (the generator's).
    fn cause(&self) -> Cause {
        let ours = self.ours.unwrap_or(0.0);
        let quiet = ours < OURS_QUIET_SHARE * self.cores;
        if ours >= MACHINE_BUSY_SHARE * self.cores {
            Cause::OwnFleetBusy
        } else if self.worker_busy {
            Cause::GeneratorBehind
        } else if quiet && (self.machine_saturated || (self.late && self.floor_stalled)) {
            Cause::HostStalled
        } else if self.late {
            Cause::GeneratorBehind
        } else if self.machine_saturated {
            Cause::OwnFleetBusy
        } else {
            Cause::Clear
        }
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
    use crate::results::timeline::{KernelPoint, ProcessPoint};

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
            proxy_cpu_cores: 0.0,
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
        let verdict = check(&quiet, Some((2.0, 4.0)), (2, None), &fleet());
        assert!(!verdict.generator_saturated && !verdict.machine_saturated);
        assert_eq!(verdict.hold_seconds_sampled, 2);
        assert_eq!(verdict.busiest_worker_cores, Some(0.3));

        let busy = [point(3.0, 0.97, 0.9), point(4.0, 0.3, 0.2)];
        let verdict = check(&busy, Some((2.0, 4.0)), (2, None), &fleet());
        assert!(verdict.generator_saturated);
        assert!(verdict.machine_saturated);
        assert!(verdict.reasons[0].starts_with("worker-0 used 0.97"));
    }

    #[test]
    fn a_machine_busy_with_something_else_counts() {
        let mut busy = point(3.0, 0.1, 0.1);
        busy.kernel.machine_busy_cores = Some(1.9);
        let verdict = check(&[busy], Some((2.0, 4.0)), (2, None), &fleet());
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
        let verdict = check(
            &[point(3.0, 0.1, 0.1)],
            Some((2.0, 4.0)),
            (2, None),
            &report,
        );
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
        let verdict = check(
            &[point(3.0, 0.1, 0.1)],
            Some((2.0, 4.0)),
            (2, None),
            &report,
        );
        assert!(verdict.generator_saturated && verdict.injector_late);
        assert!(!verdict.devices_late, "{:?}", verdict.reasons);
        assert!(verdict.reasons[0].contains("injector lag p99 6000 us"));
    }
}

#[cfg(test)]
mod cause_tests {
    use super::*;
    use crate::results::timeline::KernelPoint;

    fn second(t_s: f64, ours: (f64, f64), machine: Option<f64>) -> TimelinePoint {
        TimelinePoint {
            t_s,
            stage: crate::phase::Phase::Hold,
            parked: 10,
            notifications: 0,
            wakeups: 0,
            server_wake_p99_us: 0,
            server_rss_bytes: 0,
            worker_rss_bytes: 0,
            server_cpu_cores: ours.0,
            worker_cpu_cores: ours.1,
            proxy_cpu_cores: 0.0,
            kernel: KernelPoint {
                slab_bytes: None,
                tcp: None,
                machine_busy_cores: machine,
            },
            fleet: crate::fleet::stats::Progress::default(),
            processes: Vec::new(),
        }
    }

    fn late_injector() -> WorkerReport {
        let mut report: WorkerReport =
            serde_json::from_str(include_str!("testdata/worker.json")).expect("test document");
        let lag = report
            .histograms
            .get_mut(&HistogramName::InjectorLag)
            .expect("injector lag");
        lag.summary.p99_us = 4_000;
        report
    }

    fn floor(p999_us: u64) -> LatencySummary {
        LatencySummary {
            count: 250,
            p50_us: 40,
            p90_us: 60,
            p99_us: p999_us / 2,
            p999_us,
            max_us: p999_us,
        }
    }

    #[test]
    fn a_late_injector_beside_a_stalled_floor_on_a_quiet_fleet_is_the_host() {
        let quiet = [second(3.0, (0.1, 0.1), Some(0.3))];
        let stalled = floor(5_000);
        let verdict = check(
            &quiet,
            Some((2.0, 4.0)),
            (2, Some(&stalled)),
            &late_injector(),
        );
        assert_eq!(verdict.cause, Cause::HostStalled);
        assert!(
            verdict.generator_saturated,
            "compare still sets latencies aside"
        );
        let words = verdict.verdict();
        assert!(words.contains("the machine stalled"), "{words}");
        assert!(words.contains("p99.9 was 5000 us"), "{words}");
        assert!(!words.contains("GENERATOR"), "{words}");
        // The same lateness with a calm floor is the generator's own.
        let calm = floor(200);
        let verdict = check(&quiet, Some((2.0, 4.0)), (2, Some(&calm)), &late_injector());
        assert_eq!(verdict.cause, Cause::GeneratorBehind);
        assert!(verdict.verdict().contains("--workers N"));
    }

    #[test]
    fn a_machine_busy_with_others_is_the_host_and_with_ours_is_our_fleet() {
        let others = [second(3.0, (0.2, 0.2), Some(1.95))];
        let verdict = check(&others, Some((2.0, 4.0)), (2, None), &late_injector());
        assert_eq!(verdict.cause, Cause::HostStalled);
        assert!(verdict.verdict().contains("work not ours"));
        // The reverse proxies are the run's own work too.
        let mut proxied = second(3.0, (0.3, 0.3), Some(1.95));
        proxied.proxy_cpu_cores = 1.3;
        let verdict = check(&[proxied], Some((2.0, 4.0)), (2, None), &late_injector());
        assert!(
            !verdict.verdict().contains("work not ours"),
            "{}",
            verdict.verdict()
        );
        let ours = [second(3.0, (0.9, 0.95), Some(1.95))];
        let verdict = check(&ours, Some((2.0, 4.0)), (2, None), &late_injector());
        assert_eq!(verdict.cause, Cause::OwnFleetBusy);
        assert!(
            verdict.verdict().contains("1.85 of 2 cores"),
            "{}",
            verdict.verdict()
        );
    }

    #[test]
    fn a_quiet_hold_is_clear() {
        let quiet = [second(3.0, (0.1, 0.1), Some(0.3))];
        let mut report = late_injector();
        let lag = report
            .histograms
            .get_mut(&HistogramName::InjectorLag)
            .expect("injector lag");
        lag.summary.p99_us = 20;
        let verdict = check(&quiet, Some((2.0, 4.0)), (2, Some(&floor(5_000))), &report);
        assert_eq!(verdict.cause, Cause::Clear);
        assert!(verdict.verdict().starts_with("clear"));
    }
}
