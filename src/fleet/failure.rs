//! Why a worker's run failed although it ran to its end (or to a signal): read from its
//! report, one line each. `launch` turns it into the worker's error; the orchestrator
//! prints that line.

use super::report::WorkerReport;

/// Why a worker did not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WorkerFailure {
    #[error(
        "stopped by a signal before the run's end: partial figures ({unfinished} notifications unfinished, not lost)"
    )]
    StoppedEarly { unfinished: u64 },
    #[error(
        "every device was refused by the server ({refused} responses 401/403): check the credentials"
    )]
    Refused { refused: u64 },
    /// Some devices never parked a Ping; `setbacks` are the three most frequent reasons.
    #[error("{}; last setback: {}", never_parked_words(*never_parked, *devices), setback_words(setbacks))]
    NeverParked {
        never_parked: u64,
        devices: usize,
        setbacks: Vec<(String, u64)>,
    },
    /// Not one notification arrived; `worst_error` is the most frequent error, if any.
    #[error(
        "none of {planned} planned notifications reached its device{}",
        worst_error_words(worst_error)
    )]
    NothingDelivered {
        planned: u64,
        worst_error: Option<(String, u64)>,
    },
}

/// Whether the worker did what it was asked: no device refused its credentials by
/// every response, every device parked a Ping, and some notification delivered.
pub(crate) fn check_report(report: &WorkerReport) -> Result<(), WorkerFailure> {
    let counters = &report.counters;
    if report.stopped_early {
        return Err(WorkerFailure::StoppedEarly {
            unfinished: counters.notifications_unfinished_at_stop,
        });
    }
    let refused: u64 = ["401", "403"]
        .iter()
        .filter_map(|status| counters.http_status.get(*status))
        .sum();
    if report.devices > 0 && counters.devices_stopped as usize >= report.devices && refused > 0 {
        return Err(WorkerFailure::Refused { refused });
    }
    let never_parked: u64 = counters.never_parked.values().sum();
    if report.devices > 0 && never_parked > 0 {
        let mut setbacks: Vec<(String, u64)> = counters
            .never_parked
            .iter()
            .map(|(why, count)| (why.clone(), *count))
            .collect();
        setbacks.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        setbacks.truncate(3);
        return Err(WorkerFailure::NeverParked {
            never_parked,
            devices: report.devices,
            setbacks,
        });
    }
    let planned = report.fleet_digest.planned_notifications;
    if planned > 0 && counters.notifications_delivered == 0 {
        let worst_error = counters
            .errors
            .iter()
            .max_by_key(|(_, count)| **count)
            .map(|(kind, count)| (kind.clone(), *count));
        return Err(WorkerFailure::NothingDelivered {
            planned,
            worst_error,
        });
    }
    Ok(())
}

fn never_parked_words(never_parked: u64, devices: usize) -> String {
    match never_parked as usize >= devices {
        true => format!("no device of {devices} parked a Ping"),
        false => format!("{never_parked} of {devices} devices never parked a Ping"),
    }
}

fn setback_words(setbacks: &[(String, u64)]) -> String {
    let words: Vec<String> = setbacks
        .iter()
        .map(|(why, count)| format!("{why} ({count})"))
        .collect();
    words.join(", ")
}

fn worst_error_words(worst_error: &Option<(String, u64)>) -> String {
    worst_error.as_ref().map_or(String::new(), |(kind, count)| {
        format!(" (most frequent error: {kind}, {count} times)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> WorkerReport {
        let text = include_str!("../orchestrator/testdata/worker.json");
        serde_json::from_str(text).expect("test document")
    }

    #[test]
    fn a_worker_that_parked_and_delivered_did_what_it_was_asked() {
        assert_eq!(check_report(&report()), Ok(()));
    }

    #[test]
    fn a_signal_is_named_before_anything_else() {
        let mut stopped = report();
        stopped.stopped_early = true;
        stopped.counters.notifications_unfinished_at_stop = 4;
        let failure = check_report(&stopped).unwrap_err();
        assert_eq!(failure, WorkerFailure::StoppedEarly { unfinished: 4 });
        assert!(failure
            .to_string()
            .contains("(4 notifications unfinished, not lost)"));
    }

    #[test]
    fn refused_credentials_say_to_check_them() {
        let mut refused = report();
        refused.counters.devices_stopped = refused.devices as u64;
        refused.counters.http_status.insert("401".into(), 7);
        let failure = check_report(&refused).unwrap_err();
        assert_eq!(failure, WorkerFailure::Refused { refused: 7 });
        assert!(
            failure.to_string().ends_with("check the credentials"),
            "{failure}"
        );
    }

    #[test]
    fn devices_that_never_parked_are_counted_with_their_setbacks() {
        let mut unparked = report();
        let setbacks = [("timeout", 1), ("reset", 3), ("refused", 2), ("dns", 1)];
        for (why, count) in setbacks {
            unparked.counters.never_parked.insert(why.into(), count);
        }
        let failure = check_report(&unparked).unwrap_err();
        let WorkerFailure::NeverParked { setbacks, .. } = &failure else {
            panic!("{failure:?}");
        };
        let reasons: Vec<&str> = setbacks.iter().map(|(why, _)| why.as_str()).collect();
        assert_eq!(reasons, ["reset", "refused", "dns"]);
        let devices = unparked.devices;
        assert_eq!(
            failure.to_string(),
            format!("7 of {devices} devices never parked a Ping; last setback: reset (3), refused (2), dns (1)")
        );
    }

    #[test]
    fn no_notification_delivered_names_the_most_frequent_error() {
        let mut silent = report();
        silent.fleet_digest.planned_notifications = 50;
        silent.counters.notifications_delivered = 0;
        silent.counters.errors.insert("read_timeout".into(), 9);
        let failure = check_report(&silent).unwrap_err();
        let worst_error = Some(("read_timeout".to_owned(), 9));
        assert_eq!(
            failure,
            WorkerFailure::NothingDelivered {
                planned: 50,
                worst_error
            }
        );
        assert_eq!(
            failure.to_string(),
            "none of 50 planned notifications reached its device (most frequent error: read_timeout, 9 times)"
        );
    }
}
