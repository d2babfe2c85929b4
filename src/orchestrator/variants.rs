//! `[[variants]]` runs: the scenario measured once per variant (each a run of its own,
//! with its own result file), then one table of what each cost and how late its mail
//! was, every figure beside its ratio to the first variant. The result file's schema is
//! `pingfleet.variants/1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::capacity::{MeasureStep, WriteStep};
use crate::results::run::RunResult;
use crate::results::variants::{sms_at_losses, VariantResult, VariantsResult, COLUMNS, SCHEMA};
use crate::scenario::resolve::{Overrides, ResolvedScenario};
use crate::scenario::variants::variant_text;

/// How the variants are reached: the scenario's text and file, the flags given.
pub struct Variants<'a> {
    pub plan: &'a ResolvedScenario,
    pub file: &'a str,
    pub overrides: &'a Overrides,
    pub dir: &'a Path,
    pub interrupted: &'a AtomicBool,
}

/// Runs every variant in order (until a stop), then puts them side by side.
pub fn run_variants(
    variants: &Variants<'_>,
    measure: &MeasureStep<'_>,
    write: &WriteStep<'_>,
) -> anyhow::Result<VariantsResult> {
    let plan = variants.plan;
    let mut measured: Vec<(String, RunResult, Option<PathBuf>)> = Vec::new();
    for variant in &plan.scenario.variants {
        let text = variant_text(&plan.text, variant).map_err(anyhow::Error::msg)?;
        let file = format!("{} (variant {})", variants.file, variant.name);
        let variant_plan =
            ResolvedScenario::resolve(&text, &file, variants.overrides, plan.limits)?;
        println!(
            "variant {} of {}: {}",
            measured.len() + 1,
            plan.scenario.variants.len(),
            variant.name
        );
        let dir = variants.dir.join(&variant.name);
        std::fs::create_dir_all(&dir)?;
        let mut result = measure(&variant_plan, &dir)?;
        result.thresholds =
            super::thresholds::judge_thresholds(&variant_plan.scenario.thresholds, &result);
        let path = write(&variant_plan, &result)?;
        measured.push((variant.name.clone(), result, Some(path)));
        if variants.interrupted.load(Ordering::Relaxed) {
            break;
        }
    }
    let first = measured.first().map(|(_, result, _)| figures(result));
    Ok(VariantsResult {
        schema: SCHEMA.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        scenario: plan.scenario.name.clone(),
        scenario_text: plan.text.clone(),
        time_scale: plan.scenario.time_scale,
        variants: measured
            .iter()
            .map(|(name, result, path)| {
                variant_result(name, result, path.as_deref(), first.as_ref())
            })
            .collect(),
    })
}

fn figures(result: &RunResult) -> BTreeMap<String, Option<f64>> {
    COLUMNS
        .iter()
        .map(|column| (column.key.to_owned(), (column.figure)(result)))
        .collect()
}

fn variant_result(
    name: &str,
    result: &RunResult,
    path: Option<&Path>,
    first: Option<&BTreeMap<String, Option<f64>>>,
) -> VariantResult {
    let counters = &result.fleet.counters;
    let figures = figures(result);
    let ratios = figures
        .iter()
        .map(|(key, value)| {
            let base = first.and_then(|first| first.get(key).copied().flatten());
            let ratio = value
                .zip(base)
                .filter(|(_, base)| *base != 0.0)
                .map(|(value, base)| value / base);
            (key.clone(), ratio)
        })
        .collect();
    let planned = result.fleet.counters.notifications_sent;
    let settled =
        counters.notifications_on_time + counters.notifications_late + counters.notifications_lost;
    VariantResult {
        name: name.to_owned(),
        result_file: path.map(|path| path.display().to_string()),
        complete: result.complete,
        failures: result.failures.clone(),
        passed: result.thresholds.iter().all(|verdict| verdict.passed),
        devices: result.fleet.devices,
        mail_planned: planned,
        mail_on_time: counters.notifications_on_time,
        mail_late: counters.notifications_late,
        mail_lost: counters.notifications_lost,
        closes: planned == settled,
        sms_at_loss_modelled: sms_at_losses(
            figure(&figures, "sms"),
            figure(&figures, "sms_lost"),
            planned,
            counters.notifications_late + counters.notifications_lost,
        ),
        figures,
        ratios,
    }
}

/// A column's figure, 0 when not measured.
fn figure(figures: &BTreeMap<String, Option<f64>>, key: &str) -> f64 {
    figures.get(key).copied().flatten().unwrap_or(0.0)
}

/// The table as printed: a column per variant, a row per figure, each figure with its
/// ratio to the first variant's.
pub fn table_text(result: &VariantsResult) -> String {
    let mut text = format!("{:<16}", "");
    for variant in &result.variants {
        text.push_str(&format!(" {:>16}", variant.name));
    }
    text.push_str(&format!("\n{:<16}", "mail ok/late/lost"));
    for variant in &result.variants {
        let mail = format!(
            "{}/{}/{}{}",
            variant.mail_on_time,
            variant.mail_late,
            variant.mail_lost,
            if variant.closes { "" } else { "!" }
        );
        text.push_str(&format!(" {mail:>16}"));
    }
    text.push('\n');
    // A row no variant has a figure for (a proxy's, without proxies) is left out.
    let shown = COLUMNS.iter().filter(|column| {
        (result.variants.iter())
            .any(|variant| variant.figures.get(column.key).copied().flatten().is_some())
    });
    for column in shown {
        text.push_str(&format!("{:<16}", column.heading));
        for variant in &result.variants {
            let value = variant.figures.get(column.key).copied().flatten();
            let ratio = variant.ratios.get(column.key).copied().flatten();
            let written = |value: f64| match column.seconds {
                true => short_seconds(value),
                false => short(value),
            };
            let cell = match (value, ratio) {
                (None, _) => "-".to_owned(),
                (Some(value), Some(ratio)) => {
                    format!("{} ({})", written(value), short_ratio(ratio))
                }
                (Some(value), None) => written(value),
            };
            text.push_str(&format!(" {cell:>16}"));
        }
        text.push('\n');
    }
    text.push_str(
        "mail: on time/late/lost ('!' where they do not add up to the mail planned); \
         mail latencies in real-world seconds; costs per device-hour; (x): ratio to the first variant\n",
    );
    for variant in &result.variants {
        text.push_str(&sms_sensitivity_line(variant));
    }
    text
}

/// What an SMS variant would give at other gateway losses (modelled), or nothing.
fn sms_sensitivity_line(variant: &VariantResult) -> String {
    if variant.sms_at_loss_modelled.is_empty() {
        return String::new();
    }
    let at: Vec<String> = variant
        .sms_at_loss_modelled
        .iter()
        .map(|at| {
            format!(
                "at {:.0}% loss {:.3} texts lost/h, {:.1}% of mail late or lost",
                at.loss * 100.0,
                at.texts_lost_per_hour,
                at.mail_late_or_lost * 100.0
            )
        })
        .collect();
    format!(
        "{} at other gateway losses (modelled from this run's texts, not measured): {}\n",
        variant.name,
        at.join("; ")
    )
}

fn short_ratio(ratio: f64) -> String {
    match ratio {
        r if r >= 1e4 => format!("{:.0}kx", r / 1e3),
        r if r >= 100.0 => format!("{r:.0}x"),
        r if r >= 10.0 => format!("{r:.1}x"),
        r => format!("{r:.2}x"),
    }
}

/// A time in seconds with its unit, in at most 7 characters.
fn short_seconds(seconds: f64) -> String {
    match seconds {
        s if s < 1e-3 => format!("{:.0}us", s * 1e6),
        s if s < 1.0 => format!("{:.1}ms", s * 1e3),
        s if s < 100.0 => format!("{s:.1}s"),
        s => format!("{:.1}min", s / 60.0),
    }
}

/// A figure in at most 6 characters.
fn short(value: f64) -> String {
    match value.abs() {
        v if v >= 1e6 => format!("{:.1}M", value / 1e6),
        v if v >= 1e4 => format!("{:.0}k", value / 1e3),
        v if v >= 100.0 => format!("{value:.0}"),
        v if v >= 1.0 => format!("{value:.1}"),
        _ => format!("{value:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_written_short() {
        assert_eq!(short(2_500_000.0), "2.5M");
        assert_eq!(short(26_292.0), "26k");
        assert_eq!(short(140.2), "140");
        assert_eq!(short(8.96), "9.0");
        assert_eq!(short(0.0471), "0.047");
        assert_eq!(short_seconds(0.000344), "344us");
        assert_eq!(short_seconds(0.0126), "12.6ms");
        assert_eq!(short_seconds(10.3), "10.3s");
        assert_eq!(short_seconds(1783.0), "29.7min");
        assert_eq!(short_ratio(435_129.0), "435kx");
    }

    #[test]
    fn an_sms_variant_says_what_other_losses_would_do_and_that_it_is_modelled() {
        let variant = VariantResult {
            name: "sms".into(),
            result_file: None,
            complete: true,
            failures: Vec::new(),
            passed: true,
            devices: 10,
            mail_planned: 1000,
            mail_on_time: 990,
            mail_late: 7,
            mail_lost: 3,
            closes: true,
            figures: BTreeMap::new(),
            ratios: BTreeMap::new(),
            sms_at_loss_modelled: sms_at_losses(6.0, 0.06, 1000, 10),
        };
        assert_eq!(
            sms_sensitivity_line(&variant),
            "sms at other gateway losses (modelled from this run's texts, not measured): \
             at 1% loss 0.060 texts lost/h, 1.0% of mail late or lost; at 5% loss 0.300 \
             texts lost/h, 5.0% of mail late or lost\n"
        );
    }
}
