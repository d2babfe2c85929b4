//! The scenario's thresholds judged against what a run measured: each condition's
//! observed figure, with its unit, and whether it held.

use std::collections::BTreeMap;

use crate::fleet::report::{HistogramName, WorkerReport};
use crate::measure::latency::Latency;
use crate::results::run::{Memory, RunResult, ThresholdVerdict};
use crate::results::self_check::Cause;
use crate::scenario::Metric;

/// Judges every threshold of a scenario against the result.
pub(crate) fn judge_thresholds(
    thresholds: &BTreeMap<Metric, Vec<crate::scenario::ConditionText>>,
    result: &RunResult,
) -> Vec<ThresholdVerdict> {
    let mut verdicts = judge_report(thresholds, &result.fleet, &result.memory, result.complete);
    if result.self_check.cause == Cause::HostStalled {
        set_aside_latencies(&mut verdicts);
    }
    verdicts
}

/// Latency conditions that did not hold while the machine stalled or was busy with
/// work not ours are inconclusive, not failed: the latencies measured the host.
fn set_aside_latencies(verdicts: &mut [ThresholdVerdict]) {
    let latencies = [
        Metric::WakeupLatency,
        Metric::MailOnDeviceLatency,
        Metric::InjectorLag,
        Metric::EventLoopLag,
    ];
    for verdict in verdicts.iter_mut() {
        let latency = latencies
            .iter()
            .any(|metric| metric.name() == verdict.metric);
        if latency && verdict.judged && !verdict.passed {
            verdict.inconclusive = true;
        }
    }
}

/// Judges `thresholds` against a fleet's report and the memory measured of it; an
/// incomplete run's are not judged.
pub(crate) fn judge_report(
    thresholds: &BTreeMap<Metric, Vec<crate::scenario::ConditionText>>,
    fleet: &WorkerReport,
    memory: &Memory,
    complete: bool,
) -> Vec<ThresholdVerdict> {
    let mut verdicts = Vec::new();
    for (metric, conditions) in thresholds {
        for condition in conditions {
            let condition = &condition.0;
            let observed = observe(*metric, condition.aggregate, fleet, memory);
            verdicts.push(ThresholdVerdict {
                metric: metric.name().to_owned(),
                condition: condition.text.clone(),
                observed,
                observed_text: observed.map(|value| metric.show(condition.aggregate, value)),
                judged: complete,
                passed: complete && observed.is_some_and(|value| condition.holds(value)),
                inconclusive: false,
            });
        }
    }
    verdicts
}

/// What a run observed of one metric; `None` when it was not measured.
fn observe(
    metric: Metric,
    aggregate: crate::scenario::threshold::Aggregate,
    fleet: &WorkerReport,
    memory: &Memory,
) -> Option<f64> {
    use crate::scenario::threshold::Aggregate;
    let counters = &fleet.counters;
    let histogram = |name: HistogramName| {
        fleet
            .histograms
            .get(&name)
            .and_then(|doc| Latency::from_base64(&doc.data).ok())
    };
    let latency = |name: HistogramName| -> Option<f64> {
        let latency = histogram(name)?;
        let histogram = latency.histogram();
        // No samples: a percentile of nothing is not measured (and fails), not 0.
        if histogram.is_empty() && aggregate != Aggregate::Count {
            return None;
        }
        Some(match aggregate {
            Aggregate::Percentile(p) => histogram.value_at_quantile(p / 100.0) as f64,
            Aggregate::Avg => histogram.mean(),
            Aggregate::Min => histogram.min() as f64,
            Aggregate::Max => histogram.max() as f64,
            Aggregate::Count => histogram.len() as f64,
            Aggregate::Rate => return None,
        })
    };
    match metric {
        Metric::WakeupLatency => latency(HistogramName::WakeupLatency),
        Metric::MailOnDeviceLatency => latency(HistogramName::MailOnDeviceLatency),
        Metric::InjectorLag => latency(HistogramName::InjectorLag),
        Metric::EventLoopLag => latency(HistogramName::EventLoopLag),
        Metric::LostNotifications => match aggregate {
            Aggregate::Rate => {
                Some(counters.notifications_lost as f64 / counters.notifications_sent.max(1) as f64)
            }
            _ => Some(counters.notifications_lost as f64),
        },
        Metric::Errors => Some(counters.errors.values().sum::<u64>() as f64),
        Metric::ServerBytesPerParked => memory.server_bytes_per_parked,
        Metric::DeviceBytesPerParked => memory.device_bytes_per_device,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::threshold::Aggregate;

    #[test]
    fn a_latency_that_failed_on_a_busy_host_is_set_aside_and_a_loss_is_not() {
        let verdict = |metric: Metric, passed: bool| ThresholdVerdict {
            metric: metric.name().to_owned(),
            condition: "p(99)<1ms".into(),
            observed: Some(2000.0),
            observed_text: None,
            judged: true,
            passed,
            inconclusive: false,
        };
        let mut verdicts = vec![
            verdict(Metric::WakeupLatency, false),
            verdict(Metric::EventLoopLag, true),
            verdict(Metric::LostNotifications, false),
        ];
        set_aside_latencies(&mut verdicts);
        let inconclusive: Vec<bool> = verdicts.iter().map(|v| v.inconclusive).collect();
        assert_eq!(inconclusive, [true, false, false]);
    }

    #[test]
    fn a_latency_without_samples_is_not_measured() {
        let mut fleet: WorkerReport =
            serde_json::from_str(include_str!("testdata/worker.json")).expect("test document");
        let memory = Memory::default();
        let p99 = Aggregate::Percentile(99.0);
        let measured = observe(Metric::WakeupLatency, p99, &fleet, &memory);
        assert!(measured.is_some_and(|us| us > 0.0));
        let empty = Latency::default().to_base64();
        fleet
            .histograms
            .get_mut(&HistogramName::WakeupLatency)
            .expect("present")
            .data = empty;
        assert_eq!(observe(Metric::WakeupLatency, p99, &fleet, &memory), None);
        assert_eq!(
            observe(Metric::WakeupLatency, Aggregate::Count, &fleet, &memory),
            Some(0.0)
        );
        assert_eq!(
            observe(
                Metric::ServerBytesPerParked,
                Aggregate::Max,
                &fleet,
                &memory
            ),
            None
        );
    }
}
