//! The figures `pingfleet compare` compares, read from result files, and what kind each
//! is: nearly deterministic (memory per parked connection: compared with a relative
//! tolerance), a count that must not grow (lost notifications, errors), or noisy
//! (latencies: one sample per second of the hold, each of its p50 or p99; the parking
//! rate: one sample per run), compared with statistics. A latency is shown as the run
//! printed it (its whole hold's percentile), and judged by its seconds.

use std::collections::BTreeMap;

use crate::fleet::histogram::HistogramName;
use crate::fleet::stats::DEPARTURE_TAG;
use crate::measure::calibration::FLOOR_TAG;
use crate::measure::intervals::SecondSummary;
use crate::results::run::RunResult;
use crate::scenario::compare::{
    DEPARTURE_FIGURES, DEVICE_BYTES, DEVICE_HEAP_BYTES, ERRORS, KERNEL_SLAB_BYTES,
    LOST_NOTIFICATIONS, PARKING_RATE, PLAN_FIGURES, SERVER_BYTES, SERVER_HEAP_BYTES,
};

/// Figures over the loopback floor, compared only while the floor of both sides was
/// usable.
pub(crate) const FLOOR_FIGURES: [&str; 4] = [
    PLAN_FIGURES[2],
    PLAN_FIGURES[3],
    DEPARTURE_FIGURES[0],
    DEPARTURE_FIGURES[1],
];

/// How a figure varies from run to run, and so how it is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// The server's memory: the same within a few percent on every run.
    Memory,
    /// The server's live heap: the same to the byte on every run of the same code.
    Heap,
    /// The device workers' memory: a few percent noisier (their allocations come and
    /// go with the notifications they track).
    DeviceMemory,
    /// Kernel memory: steadier than latency, noisier than the process's own.
    KernelMemory,
    /// A count that should stay where it was (zero, mostly).
    Count,
    /// Samples (seconds of the hold, or runs) compared by their distributions.
    Samples,
}

/// One figure of one or more runs of one side.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measured {
    pub kind: Kind,
    /// Lower is better for every figure but the parking rate.
    pub higher_is_better: bool,
    pub unit: &'static str,
    /// One value per run (memory, counts), or every sample of every run (latencies).
    pub values: Vec<f64>,
    /// For a latency percentile, each run's figure over its whole hold as the run
    /// printed it (see [`printed`]): the side shows their median, while the verdict is
    /// drawn from `values`. Empty for other figures.
    pub printed: Vec<f64>,
}

/// Every figure of one side (one or several runs), by name.
pub(crate) type Side = BTreeMap<&'static str, Measured>;

/// Adds `result`'s figures to `side`.
pub(crate) fn add_run(side: &mut Side, result: &RunResult) {
    let memory = &result.memory;
    for (name, kind, value) in [
        (SERVER_BYTES, Kind::Memory, memory.server_bytes_per_parked),
        (
            SERVER_HEAP_BYTES,
            Kind::Heap,
            memory.server_heap_bytes_per_parked,
        ),
        (
            DEVICE_BYTES,
            Kind::DeviceMemory,
            memory.device_bytes_per_device,
        ),
        // The workers' heap moves with the notifications they track, as their RSS does.
        (
            DEVICE_HEAP_BYTES,
            Kind::DeviceMemory,
            memory.device_heap_bytes_per_device,
        ),
        (
            KERNEL_SLAB_BYTES,
            Kind::KernelMemory,
            memory.kernel_slab_bytes_per_connection,
        ),
    ] {
        if let Some(value) = value {
            push(side, name, kind, "bytes", vec![value]);
        }
    }
    let counters = &result.fleet.counters;
    let errors: u64 = counters.errors.values().sum();
    push(
        side,
        LOST_NOTIFICATIONS,
        Kind::Count,
        "",
        vec![counters.notifications_lost as f64],
    );
    push(side, ERRORS, Kind::Count, "", vec![errors as f64]);
    if let Some(seconds) = result.fleet.bootstrap_all_s.filter(|s| *s > 0.0) {
        let rate = result.fleet.devices_bootstrapped as f64 / seconds;
        let figure = side.entry(PARKING_RATE).or_insert(Measured {
            kind: Kind::Samples,
            higher_is_better: true,
            unit: "devices/s",
            values: Vec::new(),
            printed: Vec::new(),
        });
        figure.values.push(rate);
    }
    add_seconds(side, result);
}

/// The hold's seconds: the wake-up's p50 and p99, and each over the floor's of the
/// same second.
fn add_seconds(side: &mut Side, result: &RunResult) {
    let Some((first, last)) = result.intervals.hold_seconds else {
        return;
    };
    let hold = |tag: &str| -> BTreeMap<u64, SecondSummary> {
        result
            .intervals
            .per_second
            .get(tag)
            .into_iter()
            .flatten()
            .filter(|second| (first..=last).contains(&second.second) && second.count > 0)
            .map(|second| (second.second, *second))
            .collect()
    };
    let (wakeup, floor) = (hold("wakeup"), hold(FLOOR_TAG));
    let departure = hold(DEPARTURE_TAG);
    let of = |pick: fn(&SecondSummary) -> u64| -> Vec<f64> {
        wakeup.values().map(|s| pick(s) as f64).collect()
    };
    let over_floor = |seconds: &BTreeMap<u64, SecondSummary>, pick: fn(&SecondSummary) -> u64| {
        seconds
            .iter()
            .filter_map(|(second, s)| {
                let floor = pick(floor.get(second)?) as f64;
                (floor > 0.0).then(|| pick(s) as f64 / floor)
            })
            .collect::<Vec<f64>>()
    };
    let floor_usable = result.floor.as_ref().is_some_and(|floor| floor.usable);
    let mut samples = vec![
        (PLAN_FIGURES[0], "us", of(|s| s.p50_us)),
        (PLAN_FIGURES[1], "us", of(|s| s.p99_us)),
    ];
    if floor_usable {
        samples.extend([
            (PLAN_FIGURES[2], "x", over_floor(&wakeup, |s| s.p50_us)),
            (PLAN_FIGURES[3], "x", over_floor(&wakeup, |s| s.p99_us)),
            (
                DEPARTURE_FIGURES[0],
                "x",
                over_floor(&departure, |s| s.p50_us),
            ),
            (
                DEPARTURE_FIGURES[1],
                "x",
                over_floor(&departure, |s| s.p99_us),
            ),
        ]);
    }
    for (name, unit, values) in samples {
        if !values.is_empty() {
            push(side, name, Kind::Samples, unit, values);
            if let (Some(figure), Some(value)) = (side.get_mut(name), printed(result, name)) {
                figure.printed.push(value);
            }
        }
    }
}

fn push(side: &mut Side, name: &'static str, kind: Kind, unit: &'static str, values: Vec<f64>) {
    side.entry(name)
        .or_insert(Measured {
            kind,
            higher_is_better: false,
            unit,
            values: Vec::new(),
            printed: Vec::new(),
        })
        .values
        .extend(values);
}

/// A latency figure of `result` as the run printed it, read from the result's own
/// summary of its histogram (the function every view reads percentiles with): the
/// wake-up's p50 or p99, or either over the loopback floor of the hold. `None` for any
/// other figure, or when the run lacks it.
pub(crate) fn printed(result: &RunResult, figure: &str) -> Option<f64> {
    let wakeup = result.summary_of(HistogramName::WakeupLatency);
    let departure = result.summary_of(HistogramName::WakeupFromDeparture);
    let floor = result.floor.as_ref().map(|floor| floor.during_hold);
    let over = |us: u64, floor_us: u64| us as f64 / floor_us.max(1) as f64;
    Some(match figure {
        _ if figure == PLAN_FIGURES[0] => wakeup?.p50_us as f64,
        _ if figure == PLAN_FIGURES[1] => wakeup?.p99_us as f64,
        _ if figure == PLAN_FIGURES[2] => over(wakeup?.p50_us, floor?.p50_us),
        _ if figure == PLAN_FIGURES[3] => over(wakeup?.p99_us, floor?.p99_us),
        _ if figure == DEPARTURE_FIGURES[0] => over(departure?.p50_us, floor?.p50_us),
        _ if figure == DEPARTURE_FIGURES[1] => over(departure?.p99_us, floor?.p99_us),
        _ => return None,
    })
}
