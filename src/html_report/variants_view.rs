//! The variants' view: how late each variant's mail was and what it cost the phone, as
//! bars side by side, and the whole table with each figure's ratio to the first.

use super::bars;
use super::page::{escape, table, Figure, Section};
use super::plots::{Series, Style};
use super::ticks::Unit;
use crate::results::variants::{VariantsResult, COLUMNS};

pub(crate) fn variants(result: &VariantsResult) -> anyhow::Result<Section> {
    let mut section = Section::new(
        "variants",
        "Variants side by side",
        "The same fleet, mail and server in each variant; mail latencies in real-world seconds, costs per device-hour, each with its ratio to the first variant.",
    );
    let names: Vec<String> = result.variants.iter().map(|v| v.name.clone()).collect();
    let figure = |key: &str, index: usize| {
        result.variants[index]
            .figures
            .get(key)
            .copied()
            .flatten()
            .unwrap_or(0.0)
    };
    let bars = |key: &str, name: &str| {
        let points = (0..names.len()).map(|index| (index as f64, figure(key, index)));
        Series::new(name, Style::Line, points.collect())
    };
    for (index, variant) in result.variants.iter().enumerate() {
        for key in ["mail_p99_s", "joules"] {
            section.figures.push(Figure::new(
                format!("variants.{}.{key}", variant.name),
                format!("{} {key}", variant.name),
                figure(key, index),
                "",
            ));
        }
    }
    section.body.push_str(&bars::stacked_bars(
        &names,
        &[bars("mail_p99_s", "mail on device p99")],
        ("mail on device p99", Unit::Seconds),
    )?);
    section.body.push_str(&bars::stacked_bars(
        &names,
        &[bars("joules", "radio energy per device-hour")],
        ("joules", Unit::Count),
    )?);
    let mut header = vec!["figure"];
    header.extend(names.iter().map(String::as_str));
    let mut rows = vec![std::iter::once("mail on time/late/lost".to_owned())
        .chain(
            result
                .variants
                .iter()
                .map(|v| format!("{}/{}/{}", v.mail_on_time, v.mail_late, v.mail_lost)),
        )
        .collect::<Vec<_>>()];
    // A row no variant has a figure for (a proxy's, without proxies) is left out.
    let shown = COLUMNS.iter().filter(|column| {
        (result.variants.iter()).any(|v| v.figures.get(column.key).copied().flatten().is_some())
    });
    for column in shown {
        let mut row = vec![column.heading.to_owned()];
        for variant in &result.variants {
            let value = variant.figures.get(column.key).copied().flatten();
            let ratio = variant.ratios.get(column.key).copied().flatten();
            row.push(match (value, ratio) {
                (None, _) => "not measured".into(),
                (Some(value), Some(ratio)) => format!("{value:.3} ({ratio:.2}x)"),
                (Some(value), None) => format!("{value:.3}"),
            });
        }
        rows.push(row);
    }
    section.body.push_str(&table(&header, &rows));
    section.body.push_str(&format!(
        "<p>Each variant's own run is in its result file: {}.</p>",
        escape(
            &result
                .variants
                .iter()
                .filter_map(|v| v.result_file.clone())
                .collect::<Vec<_>>()
                .join(", ")
        )
    ));
    Ok(section)
}
