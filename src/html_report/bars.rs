//! The report's pictures over categories, drawn by `plotters` into inline SVG as
//! `plots` draws lines: stacked bars (memory per connection, variants side by side) and
//! a heatmap (a sweep's grid).

use plotters::prelude::*;

use super::legend::{colour, Entry, Swatch};
use super::plots::{bounds, svg, Series, HEIGHT};
use super::ticks::Unit;

/// Stacked bars: one bar per category, `parts` (name, one value per category) stacked
/// in order, the values in `y_unit`.
pub(crate) fn stacked_bars(
    categories: &[String],
    parts: &[Series],
    y: (&str, Unit),
) -> anyhow::Result<String> {
    let totals: Vec<f64> = (0..categories.len())
        .map(|bar| {
            parts
                .iter()
                .filter_map(|part| part.points.get(bar))
                .map(|(_, value)| value)
                .sum()
        })
        .collect();
    let top = axis_top(&totals);
    let divisor = y.1.divisor(top);
    let highest = top * 1.15 / divisor;
    let bars = categories.len().max(1) as f64;
    let legend: Vec<Entry> = parts
        .iter()
        .enumerate()
        .map(|(index, part)| Entry {
            name: part.name.clone(),
            colour: colour(index),
            swatch: Swatch::Block,
        })
        .collect();
    svg(HEIGHT, &legend, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5f64..bars - 0.5, 0f64..highest)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(categories.len().max(1))
            .x_label_formatter(&|x| {
                let index = x.round();
                let near = (x - index).abs() < 0.01 && index >= 0.0;
                near.then(|| categories.get(index as usize).cloned())
                    .flatten()
                    .unwrap_or_default()
            })
            .y_desc(y.0)
            .y_label_formatter(&|value| y.1.tick(*value * divisor))
            .draw()?;
        let mut base = vec![0.0; categories.len()];
        for (index, part) in parts.iter().enumerate() {
            let colour = colour(index);
            let boxes: Vec<Rectangle<(f64, f64)>> = part
                .points
                .iter()
                .take(categories.len())
                .enumerate()
                .map(|(bar, (_, value))| {
                    let x = bar as f64;
                    let value = value / divisor;
                    let rect = [(x - 0.3, base[bar]), (x + 0.3, base[bar] + value)];
                    base[bar] += value;
                    Rectangle::new(rect, colour.filled())
                })
                .collect();
            chart.draw_series(boxes)?;
        }
        Ok(())
    })
}

/// The tallest bar, so that bars below 1 (shares, seconds) fill the plot too; 1 when
/// every bar is empty (an axis needs a height).
fn axis_top(totals: &[f64]) -> f64 {
    let top = totals.iter().copied().fold(0.0, f64::max);
    if top > 0.0 {
        top
    } else {
        1.0
    }
}

/// A heatmap: `values[row][column]` (None: not measured, drawn grey), coloured from
/// white (the lowest) to dark red (the highest), each cell labelled with `label(value)`.
pub(crate) struct Heatmap<'a> {
    pub columns: &'a [String],
    pub rows: &'a [String],
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub values: &'a [Vec<Option<f64>>],
    pub label: &'a dyn Fn(f64) -> String,
}

pub(crate) fn heatmap(map: &Heatmap<'_>) -> anyhow::Result<String> {
    let (low, high) = bounds(map.values.iter().flatten().flatten().copied());
    let (columns, rows) = (map.columns.len().max(1), map.rows.len().max(1));
    let height = (90 + 40 * rows as u32).min(HEIGHT * 2);
    svg(height, &[], |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..columns as f64, 0f64..rows as f64)?;
        let name = |names: &[String], at: f64| {
            let index = (at - 0.5).round();
            let near = (at - 0.5 - index).abs() < 0.01 && index >= 0.0;
            near.then(|| names.get(index as usize).cloned())
                .flatten()
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(columns * 2 + 1)
            .y_labels(rows * 2 + 1)
            .x_label_formatter(&|x| name(map.columns, *x))
            .y_label_formatter(&|y| name(map.rows, *y))
            .x_desc(map.x_desc)
            .y_desc(map.y_desc)
            .draw()?;
        for (row, cells) in map.values.iter().enumerate() {
            for (column, value) in cells.iter().enumerate() {
                let (x, y) = (column as f64, row as f64);
                let fill = match value {
                    None => RGBColor(200, 200, 200),
                    Some(value) => heat((value - low) / (high - low).max(f64::MIN_POSITIVE)),
                };
                chart.draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], fill.filled())])?;
                let text = value.map_or("not measured".into(), |value| (map.label)(value));
                chart.draw_series([Text::new(
                    text,
                    (x + 0.1, y + 0.6),
                    ("sans-serif", 13).into_font(),
                )])?;
            }
        }
        Ok(())
    })
}

/// White (0) to dark red (1).
fn heat(share: f64) -> RGBColor {
    let share = share.clamp(0.0, 1.0);
    let fade = |from: f64, to: f64| (from + (to - from) * share) as u8;
    RGBColor(fade(255.0, 180.0), fade(255.0, 30.0), fade(255.0, 30.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html_report::plots::Style;

    #[test]
    fn bars_and_heatmaps_are_one_svg_element_with_their_names() {
        let line = Series::new("wake-up", Style::Line, vec![(0.0, 100.0)]);
        let bars = stacked_bars(
            &["run".into()],
            std::slice::from_ref(&line),
            ("bytes", Unit::Bytes),
        )
        .unwrap();
        assert!(bars.starts_with("<svg") && bars.contains("wake-up"));
        let map = heatmap(&Heatmap {
            columns: &["30 s".into(), "60 s".into()],
            rows: &["hb 25 s".into()],
            x_desc: "idle timeout",
            y_desc: "heartbeat",
            values: &[vec![Some(0.5), None]],
            label: &|value| format!("{value:.1}"),
        })
        .unwrap();
        assert!(map.contains("0.5") && map.contains("not measured") && map.contains("hb 25 s"));
    }

    #[test]
    fn bars_below_one_fill_the_plot_and_empty_bars_still_have_an_axis() {
        // A network's 0.5% of packets dropped is not drawn against a 100% axis.
        assert_eq!(axis_top(&[0.005, 0.0146, 0.0]), 0.0146);
        assert_eq!(axis_top(&[2048.0, 10.0]), 2048.0);
        assert_eq!(axis_top(&[0.0, 0.0]), 1.0);
        assert_eq!(axis_top(&[]), 1.0);
    }
}
