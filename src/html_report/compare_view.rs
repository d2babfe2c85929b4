//! The view a reviewer of a failed gate opens: `compare`'s verdict on every figure, and
//! the baseline's and the current run's spectra overlaid. A saved `compare --json`
//! output gets the table alone.

use super::page::{escape, table, with_unit, Figure, Section};
use crate::compare::launch::Comparison;

/// One row of the verdict table, from `compare`'s figures (in memory or from its JSON).
pub(crate) struct Row {
    pub figure: String,
    pub unit: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    pub effect: Option<f64>,
    pub verdict: String,
    pub gated: bool,
    pub reason: String,
}

/// The rows of a comparison made here.
pub(crate) fn rows_of(comparison: &Comparison) -> Vec<Row> {
    let finite = |value: f64| value.is_finite().then_some(value);
    comparison
        .judgements
        .iter()
        .map(|j| Row {
            figure: j.figure.into(),
            unit: j.unit.into(),
            baseline: finite(j.baseline),
            current: finite(j.current),
            effect: finite(j.effect),
            verdict: j.verdict.words().into(),
            gated: j.gated,
            reason: j.reason.clone(),
        })
        .collect()
}

/// The rows of a saved `pingfleet compare --json` output.
pub(crate) fn rows_of_json(document: &serde_json::Value) -> anyhow::Result<Vec<Row>> {
    let figures = document
        .get("figures")
        .and_then(|figures| figures.as_array())
        .ok_or_else(|| anyhow::anyhow!("a compare output has a \"figures\" list"))?;
    let text = |row: &serde_json::Value, key: &str| {
        row.get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    Ok(figures
        .iter()
        .map(|row| Row {
            figure: text(row, "figure"),
            unit: text(row, "unit"),
            baseline: row.get("baseline").and_then(|v| v.as_f64()),
            current: row.get("current").and_then(|v| v.as_f64()),
            effect: row.get("effect").and_then(|v| v.as_f64()),
            verdict: text(row, "verdict").replace('_', " "),
            gated: row.get("gated").and_then(|v| v.as_bool()).unwrap_or(false),
            reason: text(row, "reason"),
        })
        .collect())
}

/// The verdict table with the count of gated regressions, for `sides` (baseline,
/// current).
pub(crate) fn verdict_table(sides: (&str, &str), rows: &[Row]) -> Section {
    let regressions = rows
        .iter()
        .filter(|row| row.verdict == "regression" && row.gated)
        .count();
    let mut section = Section::new(
        "compare",
        "Compared with the baseline",
        "Each figure of the current run against the baseline's: a regression of a gated figure fails the gate. A latency reads as the run printed it (its whole hold's percentile, the figure above the spectrum); its change and verdict come from a test over the hold's seconds of each run, which tells noise apart.",
    );
    section.figures.push(Figure::new(
        "compare.regressions",
        "gated regressions",
        regressions as f64,
        "",
    ));
    // Each value named in the page (`compare.wakeup_p99_us.current`), so a test can
    // hold it against the figure beside the plot.
    let number = |value: Option<f64>, row: &Row, side: &str| {
        let unit = match row.unit.as_str() {
            "bytes" => "B",
            unit => unit,
        };
        value.map_or("-".into(), |value| {
            format!(
                "<span data-figure=\"compare.{}.{side}\" data-value=\"{value}\">{}</span>",
                escape(&row.figure),
                escape(&with_unit(value, unit)),
            )
        })
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let class = match row.verdict.as_str() {
                "regression" if row.gated => "fail",
                "improvement" => "pass",
                _ => "muted",
            };
            vec![
                escape(&row.figure),
                number(row.baseline, row, "baseline"),
                number(row.current, row, "current"),
                row.effect
                    .map_or("-".into(), |e| format!("{:+.1}%", e * 100.0)),
                format!(
                    "<span class=\"{class}\" data-verdict=\"{}\">{}</span>",
                    escape(&row.figure),
                    escape(&row.verdict)
                ),
                if row.gated {
                    "yes".into()
                } else {
                    "no: shown only".into()
                },
                escape(&row.reason),
            ]
        })
        .collect();
    section.body = format!(
        "<p>baseline: {}<br>current: {}</p>{}",
        escape(sides.0),
        escape(sides.1),
        table(
            &["figure", "baseline", "current", "change", "verdict", "gated", "why"],
            &cells
        )
    );
    section
}
