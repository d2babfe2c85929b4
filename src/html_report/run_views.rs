//! The views of `run` results: the latency spectrum, the run over time, memory per
//! parked connection, what a device costs, the verdicts, the server's wake path, the
//! engines compared and the reconnect storm. A view a result has no data for is left
//! out, not drawn empty. Every percentile is read from the result's own histograms with
//! the function its summary was computed with.

use super::bars;
use super::page::{escape, table, with_unit, Figure, Section};
use super::plots::{self, LineChart, Series, Shading, Style};
use super::ticks::Unit;
use crate::fleet::histogram::HistogramName;
use crate::measure::intervals::SecondSummary;
use crate::measure::latency::Latency;
use crate::results::run::RunResult;
use crate::results::timeline::TimelinePoint;
use crate::server::wake_path::WakeStage;

/// A run result and the name it goes by in the page (its file's name).
pub(crate) struct Labelled<'a> {
    pub label: String,
    pub result: &'a RunResult,
}

/// Points of the spectrum drawn per line.
const SPECTRUM_POINTS: usize = 240;

/// The latency a result holds under `name`, decoded; `None` when it has none.
pub(crate) fn latency(result: &RunResult, name: HistogramName) -> anyhow::Result<Option<Latency>> {
    let Some(doc) = result.fleet.histograms.get(&name) else {
        return Ok(None);
    };
    if doc.summary.count == 0 {
        return Ok(None);
    }
    Ok(Some(Latency::from_base64(&doc.data)?))
}

/// The spectrum of `latency`: (axis x, microseconds) from 0% to as many nines as it has
/// samples for (at most five).
pub(crate) fn spectrum_points(latency: &Latency) -> Vec<(f64, f64)> {
    let histogram = latency.histogram();
    let nines = (histogram.len() as f64)
        .log10()
        .clamp(1.0, plots::SPECTRUM_NINES);
    (0..=SPECTRUM_POINTS)
        .map(|step| {
            let x = nines * step as f64 / SPECTRUM_POINTS as f64;
            let q = 1.0 - 10f64.powf(-x);
            (x, histogram.value_at_quantile(q) as f64)
        })
        .collect()
}

/// The percentile spectrum: wake-up, wake-up from the departure and mail on device of
/// each run (and, modelled, mail on device with the radio's own delays), and the
/// loopback floor measured beside each.
pub(crate) fn spectrum(runs: &[Labelled<'_>]) -> anyhow::Result<Option<Section>> {
    let mut series = Vec::new();
    let mut section = Section::new(
        "spectrum",
        "Latency percentile spectrum",
        "Each latency at every percentile, on the log axis HdrHistogram plots use (90%, 99%, 99.9% one step apart); the loopback floor is what this machine needs to wake a parked socket without EAS, measured during the same hold.",
    );
    for (index, run) in runs.iter().enumerate() {
        let prefix = if runs.len() > 1 {
            format!("{}: ", run.label)
        } else {
            String::new()
        };
        let key = |name: &str| match index {
            0 => name.to_owned(),
            _ => format!("{index}.{name}"),
        };
        for (name, words) in [
            (HistogramName::WakeupLatency, "wake-up"),
            (
                HistogramName::WakeupFromDeparture,
                "wake-up from the departure",
            ),
            (HistogramName::MailOnDeviceLatency, "mail on device"),
            (
                HistogramName::MailOnDeviceWithRadio,
                "mail on device with the radio's paging and promotion (modelled, real-world time)",
            ),
        ] {
            let Some(latency) = latency(run.result, name)? else {
                continue;
            };
            // The figures as the run printed them: the result's own summary.
            let summary = run.result.summary_of(name).unwrap_or_default();
            if name != HistogramName::WakeupFromDeparture {
                for (p, value) in [("p50", summary.p50_us), ("p99", summary.p99_us)] {
                    section.figures.push(Figure::new(
                        key(&format!("{}.{p}", name.key())),
                        format!("{prefix}{words} {p}"),
                        value as f64,
                        "us",
                    ));
                }
            }
            series.push(Series::new(
                format!("{prefix}{words}"),
                Style::Line,
                spectrum_points(&latency),
            ));
        }
        if let Some(floor) = &run.result.floor {
            let during = &floor.during_hold;
            if during.count > 0 {
                section.figures.push(Figure::new(
                    key("floor.p50"),
                    format!("{prefix}floor p50"),
                    during.p50_us as f64,
                    "us",
                ));
                series.push(Series::new(
                    format!("{prefix}loopback floor (its p50, p90, p99, p99.9)"),
                    Style::Points,
                    [
                        (0.5, during.p50_us),
                        (0.9, during.p90_us),
                        (0.99, during.p99_us),
                        (0.999, during.p999_us),
                    ]
                    .into_iter()
                    .map(|(q, us)| (plots::spectrum_x(q), us as f64))
                    .collect(),
                ));
            }
        }
    }
    if series.is_empty() {
        return Ok(None);
    }
    section.body = plots::spectrum(&series)?;
    Ok(Some(section))
}

/// The ramp, hold and drain of a run as spans of its timeline.
fn stage_spans(result: &RunResult) -> Vec<Shading> {
    let mut spans: Vec<Shading> = Vec::new();
    for point in &result.timeline {
        match spans.last_mut() {
            Some(span) if span.label == point.stage.name() => span.to = point.t_s,
            _ => spans.push(Shading {
                label: point.stage.name().into(),
                from: spans.last().map_or(0.0, |last| last.to),
                to: point.t_s,
            }),
        }
    }
    spans
}

/// A per-second series of the timeline as stairs, each interval between two samples
/// at its own value: with `counted`, the growth of a cumulative count over the
/// interval divided by its length; otherwise the value sampled at its end (a gauge that
/// already averages the interval, such as CPU cores).
fn per_interval(
    name: &str,
    points: &[TimelinePoint],
    value: &dyn Fn(&TimelinePoint) -> f64,
    counted: bool,
) -> Series {
    let stairs = points.windows(2).map(|pair| {
        let seconds = (pair[1].t_s - pair[0].t_s).max(1e-3);
        let level = match counted {
            true => (value(&pair[1]) - value(&pair[0])).max(0.0) / seconds,
            false => value(&pair[1]),
        };
        (pair[0].t_s, level)
    });
    Series::new(name, Style::Stairs, stairs.collect())
}

/// The run over time: parked devices, notifications and wake-ups a second, wake-up
/// percentiles a second, memory and CPU of the processes, kernel memory.
pub(crate) fn timeline(run: &Labelled<'_>) -> anyhow::Result<Option<Section>> {
    let result = run.result;
    let points = &result.timeline;
    if points.len() < 2 {
        return Ok(None);
    }
    let spans = stage_spans(result);
    let marks: Vec<(f64, String)> = result
        .network
        .as_ref()
        .and_then(|network| network.flush.as_ref())
        .and_then(|flush| flush.at_s)
        .map(|at| vec![(at, "flush".to_owned())])
        .unwrap_or_default();
    let line = |name: &str, value: &dyn Fn(usize) -> f64| {
        let points = (0..points.len()).map(|i| (points[i].t_s, value(i)));
        Series::new(name, Style::Line, points.collect())
    };
    let charts: Vec<(&str, Unit, Vec<Series>)> = vec![
        (
            "devices parked",
            Unit::Count,
            vec![line("parked", &|i| points[i].parked as f64)],
        ),
        (
            "per second",
            Unit::Count,
            vec![
                per_interval("notifications", points, &|p| p.notifications as f64, true),
                per_interval("wake-ups", points, &|p| p.wakeups as f64, true),
            ],
        ),
        ("wake-up latency", Unit::Micros, wakeup_per_second(result)),
        (
            "resident memory of the fleet",
            Unit::Bytes,
            vec![
                line("servers", &|i| points[i].server_rss_bytes as f64),
                line("device workers", &|i| points[i].worker_rss_bytes as f64),
            ],
        ),
        (
            "kernel slab, whole machine",
            Unit::Bytes,
            vec![Series::new(
                "kernel slab of the machine (every process's, not the fleet's alone)",
                Style::Line,
                points
                    .iter()
                    .filter_map(|p| Some((p.t_s, p.kernel.slab_bytes? as f64)))
                    .collect(),
            )],
        ),
        (
            "CPU, cores",
            Unit::Count,
            vec![
                per_interval("servers", points, &|p| p.server_cpu_cores, false),
                per_interval("device workers", points, &|p| p.worker_cpu_cores, false),
            ],
        ),
    ];
    let mut section = Section::new(
        "timeline",
        "The run over time",
        "Each second of the run as the orchestrator sampled it: the ramp, hold and drain shaded, a flush marked in red. What is counted over a second (rates, CPU, each second's wake-up percentiles) is drawn as steps, each second at its own value; the machine's kernel slab (every process's) has a scale of its own.",
    );
    let peak = points.iter().map(|point| point.parked).max().unwrap_or(0);
    section.figures.push(Figure::new(
        "parked.peak",
        "most devices parked",
        peak as f64,
        "devices",
    ));
    for (y_desc, y_unit, series) in charts
        .iter()
        .filter(|(_, _, series)| series.iter().any(|s| !s.points.is_empty()))
    {
        let mut chart = LineChart::new(
            ("since the run started", Unit::Seconds),
            (y_desc, *y_unit),
            series,
        );
        chart.spans = &spans;
        chart.marks = &marks;
        section.body.push_str(&plots::lines(&chart)?);
    }
    Ok(Some(section))
}

/// Wake-up p50 and p99 of each second of the hold, from the interval figures, on the
/// timeline's clock (the hold's first second at the hold's start).
fn wakeup_per_second(result: &RunResult) -> Vec<Series> {
    let (Some(seconds), Some((hold_start_s, _)), Some((first, _))) = (
        result.intervals.per_second.get("wakeup"),
        result.hold_window_s,
        result.intervals.hold_seconds,
    ) else {
        return Vec::new();
    };
    let at = |second: u64| hold_start_s + second as f64 - first as f64;
    let with_samples = || seconds.iter().filter(|second| second.count > 0);
    let each = |name: &str, pick: fn(&SecondSummary) -> u64| {
        let points = with_samples().map(|s| (at(s.second), pick(s) as f64));
        Series::new(name, Style::Stairs, points.collect())
    };
    vec![
        each("p50 each second", |s| s.p50_us),
        each("p99 each second", |s| s.p99_us),
    ]
}

/// Memory per parked connection as stacked bars, one per run, and against the device
/// count when the runs parked different numbers of devices.
pub(crate) fn memory(runs: &[Labelled<'_>]) -> anyhow::Result<Option<Section>> {
    let measured: Vec<&Labelled<'_>> = runs
        .iter()
        .filter(|run| {
            run.result
                .memory
                .parked_at_plateau
                .is_some_and(|parked| parked > 0)
        })
        .collect();
    if measured.is_empty() {
        return Ok(None);
    }
    let parts_of = |result: &RunResult| {
        let memory = &result.memory;
        let heap = memory.server_heap_bytes_per_parked.unwrap_or(0.0);
        let rss = memory.server_bytes_per_parked.unwrap_or(0.0);
        [
            ("server heap", heap),
            ("server user space besides the heap", (rss - heap).max(0.0)),
            (
                "device user space",
                memory.device_bytes_per_device.unwrap_or(0.0),
            ),
            (
                "kernel",
                memory.kernel_slab_bytes_per_connection.unwrap_or(0.0),
            ),
        ]
    };
    let mut section = Section::new(
        "memory",
        "Memory per parked connection",
        "Bytes each parked connection costs at the plateau: the server's resident growth (its live heap apart), the device workers' and the kernel's slab, each divided by the devices parked.",
    );
    let first = &measured[0].result.memory;
    for (key, words, value) in [
        (
            "memory.server_bytes_per_parked",
            "server user space",
            first.server_bytes_per_parked,
        ),
        (
            "memory.server_heap_bytes_per_parked",
            "server heap",
            first.server_heap_bytes_per_parked,
        ),
        (
            "memory.device_bytes_per_device",
            "device user space",
            first.device_bytes_per_device,
        ),
        (
            "memory.kernel_slab_bytes_per_connection",
            "kernel",
            first.kernel_slab_bytes_per_connection,
        ),
    ] {
        // With several runs the figures are the first's, and say so.
        let words = match measured.len() {
            1 => words.to_owned(),
            _ => format!("{} {words}", measured[0].label),
        };
        section.figures.push(Figure::new(
            key,
            words,
            value.map_or(f64::NAN, f64::round),
            "B",
        ));
    }
    let labels: Vec<String> = measured.iter().map(|run| run.label.clone()).collect();
    let parts: Vec<Series> = (0..4)
        .map(|part| {
            let bars = measured.iter().enumerate();
            Series::new(
                parts_of(measured[0].result)[part].0,
                Style::Line,
                bars.map(|(bar, run)| (bar as f64, parts_of(run.result)[part].1))
                    .collect(),
            )
        })
        .collect();
    section.body = bars::stacked_bars(
        &labels,
        &parts,
        ("bytes per parked connection", Unit::Bytes),
    )?;
    let mut counts: Vec<u64> = measured
        .iter()
        .filter_map(|run| run.result.memory.parked_at_plateau)
        .collect();
    counts.sort_unstable();
    counts.dedup();
    if counts.len() >= 2 {
        let mut by_count = measured.clone();
        by_count.sort_by_key(|run| run.result.memory.parked_at_plateau);
        let series: Vec<Series> = (0..4)
            .map(|part| {
                let at = |run: &&Labelled<'_>| {
                    let parked = run.result.memory.parked_at_plateau.unwrap_or(0) as f64;
                    (parked, parts_of(run.result)[part].1)
                };
                let points = by_count.iter().map(at).collect();
                Series::new(parts[part].name.clone(), Style::LineAndPoints, points)
            })
            .collect();
        section.body.push_str(&plots::lines(&LineChart::new(
            ("devices parked", Unit::Count),
            ("bytes per parked connection", Unit::Bytes),
            &series,
        ))?);
    }
    Ok(Some(section))
}

/// The self-check's verdict with its reasons, and the thresholds' verdicts.
pub(crate) fn verdicts(run: &Labelled<'_>) -> Section {
    let result = run.result;
    let check = &result.self_check;
    let mut section = Section::new(
        "verdicts",
        "Verdicts",
        "Whether the generator or the machine was saturated (then the latencies measure them, not the server), and the scenario's thresholds.",
    );
    let saturated = check.generator_saturated || check.machine_saturated;
    section.body = format!(
        "<p>Self-check: <span class=\"{}\" data-figure=\"self_check.saturated\" data-value=\"{saturated}\">{}</span>",
        if saturated { "fail" } else { "pass" },
        escape(&check.verdict()),
    );
    for reason in &check.reasons {
        section.body.push_str(&format!("<br>- {}", escape(reason)));
    }
    if let Some(precision) = &check.injector_precision {
        section.body.push_str(&format!(
            "<br><span class=\"muted\">{}</span>",
            escape(precision)
        ));
    }
    section.body.push_str("</p>");
    if !result.complete {
        section.body.push_str(&format!(
            "<p class=\"fail\">The run is not complete: {}</p>",
            escape(&result.failures.join("; "))
        ));
    }
    let rows: Vec<Vec<String>> = result
        .thresholds
        .iter()
        .map(|verdict| {
            let (class, word) = match (verdict.judged, verdict.passed, verdict.inconclusive) {
                (false, _, _) => ("muted", "NOT JUDGED"),
                (true, true, _) => ("pass", "PASS"),
                (true, false, true) => ("muted", "INCONCLUSIVE"),
                (true, false, false) => ("fail", "FAIL"),
            };
            vec![
                format!("<span class=\"{class}\">{word}</span>"),
                escape(&verdict.metric),
                escape(&verdict.condition),
                escape(verdict.observed_text.as_deref().unwrap_or("not measured")),
            ]
        })
        .collect();
    if !rows.is_empty() {
        section.body.push_str(&table(
            &["verdict", "metric", "condition", "observed"],
            &rows,
        ));
    }
    section
}

/// What one parked device cost per hour of the hold, and the server's wake path.
pub(crate) fn costs(run: &Labelled<'_>) -> Option<Section> {
    let result = run.result;
    let cost = result.cost_per_device_hour.as_ref()?;
    let mut section = Section::new(
        "cost",
        "Cost per device-hour",
        "What one parked device cost the network in an hour of the hold (scaled back to real time), and where the server's median wake-up went.",
    );
    for (key, words, value, unit) in [
        ("cost.requests", "requests", cost.requests, ""),
        ("cost.bytes", "bytes", cost.bytes, "B"),
        ("cost.connections", "connections", cost.connections, ""),
        (
            "cost.tls_handshakes",
            "TLS handshakes",
            cost.tls_handshakes,
            "",
        ),
    ] {
        section.figures.push(Figure::new(
            key,
            words,
            (value * 100.0).round() / 100.0,
            unit,
        ));
    }
    if let Some(path) = &result.server_wake_path {
        let mut stages: Vec<_> = path.0.iter().collect();
        stages.sort_by_key(|(stage, _)| path_order(stage));
        let rows: Vec<Vec<String>> = stages
            .into_iter()
            .map(|(stage, summary)| {
                vec![
                    escape(stage),
                    with_unit(summary.p50_us as f64, "us"),
                    with_unit(summary.p99_us as f64, "us"),
                ]
            })
            .collect();
        section.body = table(&["server wake path stage", "p50", "p99"], &rows);
    }
    Some(section)
}

/// Where a wake path stage comes in the path: in the order a wake-up goes through them,
/// a stage this build does not know after those, and `total` last.
fn path_order(stage: &str) -> usize {
    match WakeStage::ALL.iter().position(|known| known.key() == stage) {
        Some(_) if stage == WakeStage::Total.key() => usize::MAX,
        Some(index) => index,
        None => WakeStage::ALL.len(),
    }
}

/// The engines side by side, as `compare_engines` measured them.
pub(crate) fn engines(run: &Labelled<'_>) -> anyhow::Result<Option<Section>> {
    let Some(comparison) = &run.result.comparison else {
        return Ok(None);
    };
    let mut section = Section::new(
        "engines",
        "Engines compared",
        "The same scenario against each server engine, one after the other on this machine.",
    );
    section.body = super::page::json_table(&serde_json::to_value(comparison)?);
    Ok(Some(section))
}

/// The reconnect storm: the share of the devices parked at a flush that had parked
/// again, against the time since the flush.
pub(crate) fn storm(run: &Labelled<'_>) -> anyhow::Result<Option<Section>> {
    let Some(latency) = latency(run.result, HistogramName::Repark)? else {
        return Ok(None);
    };
    let histogram = latency.histogram();
    let total = histogram.len() as f64;
    let mut seen = 0u64;
    let points: Vec<(f64, f64)> = histogram
        .iter_recorded()
        .map(|value| {
            seen += value.count_at_value();
            (
                histogram.highest_equivalent(value.value_iterated_to()) as f64,
                seen as f64 / total,
            )
        })
        .collect();
    let mut section = Section::new(
        "storm",
        "Reconnect storm",
        "After the path was flushed, the share of the devices that were parked that had parked again, against the time since the flush.",
    );
    let summary = latency.summary();
    section.figures.push(Figure::new(
        "repark.p50",
        "re-parked, half of them by",
        summary.p50_us as f64 / 1000.0,
        "ms",
    ));
    section.figures.push(Figure::new(
        "repark.max",
        "all by",
        summary.max_us as f64 / 1000.0,
        "ms",
    ));
    section.body = plots::lines(&LineChart::new(
        ("since the flush", Unit::Micros),
        ("share re-parked", Unit::Share),
        &[Series::new("re-parked", Style::Line, points)],
    ))?;
    Ok(Some(section))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn memory_figures_of_several_runs_name_whose_they_are() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/smoke.json");
        let Ok(crate::results::Document::Run(result)) = crate::results::read(&path) else {
            panic!("a run's result");
        };
        let run = |label: &str| Labelled {
            label: label.into(),
            result: &result,
        };
        let alone = memory(&[run("smoke")]).unwrap().unwrap();
        assert_eq!(alone.figures[0].words, "server user space");
        let both = memory(&[run("baseline"), run("current")]).unwrap().unwrap();
        assert!(
            both.figures
                .iter()
                .all(|figure| figure.words.starts_with("baseline ")),
            "{:?}",
            both.figures.iter().map(|f| &f.words).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_spectrum_reads_the_same_percentiles_as_the_summary() {
        let mut latency = Latency::default();
        for us in 1..=10_000u64 {
            latency.record(Duration::from_micros(us * 3 % 7_919 + 20));
        }
        let points = spectrum_points(&latency);
        let summary = latency.summary();
        let at = |x: f64| {
            points
                .iter()
                .find(|(px, _)| (px - x).abs() < 1e-9)
                .map(|(_, us)| *us as u64)
        };
        assert_eq!(at(0.0), Some(latency.histogram().value_at_quantile(0.0)));
        // 10,000 samples reach four nines; x = 1, 2, 3 are 90%, 99%, 99.9%.
        assert_eq!(points.last().unwrap().0, 4.0);
        assert_eq!(at(1.0), Some(summary.p90_us));
        assert_eq!(at(2.0), Some(summary.p99_us));
        assert_eq!(at(3.0), Some(summary.p999_us));
    }

    #[test]
    fn the_wake_path_reads_in_path_order_with_its_total_last() {
        let mut stages: Vec<&str> = WakeStage::ALL.iter().map(|stage| stage.key()).collect();
        stages.push("a_stage_from_a_later_build");
        stages.sort_unstable();
        assert_ne!(
            stages.last(),
            Some(&"total"),
            "alphabetical puts total inside"
        );
        stages.sort_by_key(|stage| path_order(stage));
        assert_eq!(
            stages,
            [
                "queued",
                "applied",
                "handoff",
                "encoded",
                "framed",
                "transmitted",
                "a_stage_from_a_later_build",
                "total"
            ]
        );
    }
}
