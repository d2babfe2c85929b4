//! The interval log beside a result, read back by an independent implementation (the
//! `hdrhistogram` package from PyPI): the same seconds, counts and percentiles as the
//! result's own per-second figures, and the seconds add up to the run's totals.

use std::collections::BTreeMap;
use std::process::Command;

/// What Python's HdrHistogram reads from an interval log: per tag and second (Unix
/// time), the count, p50 and p99.
const READER: &str = r#"
import json, sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 3600000000, 2))
out = []
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    out.append({"tag": h.get_tag(), "start_ms": h.get_start_time_stamp(),
                "count": h.get_total_count(),
                "p50": h.get_value_at_percentile(50), "p99": h.get_value_at_percentile(99)})
print(json.dumps(out))
"#;

#[test]
fn the_interval_log_reads_back_the_same_in_another_implementation() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, result) = crate::run::run_scenario(
        dir.path(),
        r#"name = "seconds"
output = "out"
[devices]
count = 200
[stages]
hold = "6s"
drain = "2s"
[injector]
pattern = "poisson"
rate = 200
"#,
    );
    assert_eq!(code, Some(0), "{stdout}");
    let log = dir
        .path()
        .join("out")
        .join(result.intervals.log.as_ref().expect("a log"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("#[StartTime: ") && text.contains("Tag=wakeup,"),
        "{text}"
    );
    let read = Command::new("python3")
        .args(["-c", READER])
        .arg(&log)
        .output()
        .expect("python3");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let lines: Vec<serde_json::Value> = serde_json::from_slice(&read.stdout).unwrap();
    let mut python: BTreeMap<(String, u64), (u64, u64, u64)> = BTreeMap::new();
    for line in &lines {
        let second = (line["start_ms"].as_f64().unwrap() / 1000.0).round() as u64;
        let tag = line["tag"].as_str().unwrap().to_owned();
        let figures = |key: &str| line[key].as_u64().unwrap();
        python.insert(
            (tag, second),
            (figures("count"), figures("p50"), figures("p99")),
        );
    }
    let mut ours = BTreeMap::new();
    for (tag, seconds) in &result.intervals.per_second {
        for second in seconds {
            ours.insert(
                (tag.clone(), second.second),
                (second.count, second.p50_us, second.p99_us),
            );
        }
    }
    assert_eq!(python, ours, "the same seconds, counts and percentiles");
    // Every wake-up is in exactly one second; the floor was sampled through the hold.
    let wakeups: u64 = result.intervals.per_second["wakeup"]
        .iter()
        .map(|s| s.count)
        .sum();
    assert_eq!(
        wakeups,
        result.fleet.histograms["wakeup_latency_us"].summary.count
    );
    assert!(wakeups > 500, "{wakeups}");
    let (first, last) = result.intervals.hold_seconds.expect("the hold's seconds");
    assert!(last - first >= 3, "{first}..{last}");
    let floor = result.floor.expect("a floor during the hold");
    assert!(floor.during_hold.count >= 100, "{floor:?}");
    let injector: u64 = result.intervals.per_second["injector_lag"]
        .iter()
        .map(|s| s.count)
        .sum();
    assert_eq!(
        injector,
        result.fleet.histograms["injector_lag_us"].summary.count
    );
}
