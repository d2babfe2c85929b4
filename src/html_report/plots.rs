//! The report's pictures, drawn by `plotters` into inline SVG: a latency percentile
//! spectrum on HdrHistogram's "1/(1-q)" axis, lines over time or over a count (with
//! shaded spans), stacked bars, and a heatmap. Each function takes plain series and
//! returns one `<svg>` element; what the series mean is the views' business.

use plotters::coord::Shift;
use plotters::prelude::*;

/// The size of a plot, in CSS pixels.
const WIDTH: u32 = 880;
const HEIGHT: u32 = 340;
/// The faint grid between the labelled lines.
const LIGHT: RGBColor = RGBColor(242, 242, 242);
/// The highest percentile a spectrum's axis goes to: 99.999%.
pub const SPECTRUM_NINES: f64 = 5.0;

/// One named line: (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A labelled span of the x axis to shade (a run's ramp, hold and drain).
pub struct Span {
    pub label: String,
    pub from: f64,
    pub to: f64,
}

/// A line chart's axes and what is drawn on them.
pub struct LineChart<'a> {
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub series: &'a [Series],
    pub spans: &'a [Span],
    /// Instants to mark with a vertical line (a flush).
    pub marks: &'a [(f64, String)],
}

/// Draws into an SVG string with `draw`, turning plotters' errors into words.
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), String>,
) -> anyhow::Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE).map_err(|err| anyhow::anyhow!("{err}"))?;
        draw(&root).map_err(|err| anyhow::anyhow!("drawing a plot: {err}"))?;
        root.present().map_err(|err| anyhow::anyhow!("{err}"))?;
    }
    Ok(text)
}

fn colour(index: usize) -> RGBColor {
    let (r, g, b) = Palette99::COLORS[index % Palette99::COLORS.len()];
    RGBColor(r, g, b)
}

/// The x of percentile `q` (0 to 1) on a spectrum's axis: log10(1 / (1 - q)), so 90%,
/// 99%, 99.9% fall at 1, 2, 3.
pub fn spectrum_x(q: f64) -> f64 {
    (1.0 / (1.0 - q).max(1e-12)).log10()
}

/// A percentile spectrum: each series' points are (spectrum_x(q), microseconds), the y
/// axis logarithmic.
pub fn spectrum(series: &[Series]) -> anyhow::Result<String> {
    let highest = series
        .iter()
        .flat_map(|line| line.points.iter().map(|(_, y)| *y))
        .fold(1.0, f64::max);
    // As many nines as the longest line reaches.
    let nines = series
        .iter()
        .flat_map(|line| line.points.iter().map(|(x, _)| *x))
        .fold(1.0, f64::max)
        .ceil()
        .min(SPECTRUM_NINES);
    svg((WIDTH, HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..nines, (1f64..highest * 1.5).log_scale())
            .map_err(|err| err.to_string())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("microseconds")
            .x_labels(nines as usize + 1)
            .x_label_formatter(&|x| percentile_label(*x))
            .light_line_style(LIGHT)
            .draw()
            .map_err(|err| err.to_string())?;
        draw_lines(&mut chart, series, SeriesLabelPosition::LowerRight)
    })
}

/// "0%", "90%", "99%", "99.9%"... for the spectrum's whole-number ticks.
fn percentile_label(x: f64) -> String {
    if x < 0.5 {
        return "0%".into();
    }
    let nines = x.round() as usize;
    match nines {
        1 => "90%".into(),
        _ => format!("99.{}%", "9".repeat(nines - 2)).replace("99.%", "99%"),
    }
}

/// Lines over a linear x axis (time, a count), with shaded spans and marks.
pub fn lines(spec: &LineChart<'_>) -> anyhow::Result<String> {
    let xs = spec
        .series
        .iter()
        .flat_map(|line| line.points.iter().map(|(x, _)| *x));
    let (x_low, x_high) = bounds(xs.chain(spec.spans.iter().flat_map(|s| [s.from, s.to])));
    let (_, y_high) = bounds(
        spec.series
            .iter()
            .flat_map(|line| line.points.iter().map(|(_, y)| *y))
            .chain([0.0]),
    );
    let y_high = if y_high > 0.0 { y_high * 1.1 } else { 1.0 };
    svg((WIDTH, HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(x_low..x_high.max(x_low + 1.0), 0f64..y_high)
            .map_err(|err| err.to_string())?;
        for (index, span) in spec.spans.iter().enumerate() {
            let shade = [RGBColor(230, 236, 245), RGBColor(240, 240, 240)][index % 2];
            chart
                .draw_series([Rectangle::new(
                    [(span.from, 0.0), (span.to, y_high)],
                    shade.filled(),
                )])
                .map_err(|err| err.to_string())?;
            chart
                .draw_series([Text::new(
                    span.label.clone(),
                    (span.from, y_high * 0.97),
                    ("sans-serif", 13).into_font().color(&RGBColor(90, 90, 90)),
                )])
                .map_err(|err| err.to_string())?;
        }
        chart
            .configure_mesh()
            .x_desc(spec.x_desc)
            .y_desc(spec.y_desc)
            .light_line_style(LIGHT)
            .draw()
            .map_err(|err| err.to_string())?;
        for (at, label) in spec.marks {
            chart
                .draw_series([PathElement::new(vec![(*at, 0.0), (*at, y_high)], RED)])
                .map_err(|err| err.to_string())?
                .label(label.clone())
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED));
        }
        draw_lines(&mut chart, spec.series, SeriesLabelPosition::UpperLeft)
    })
}

/// The lowest and highest of `values` (0..1 when there are none).
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|value| value.is_finite())
        .fold(None, |range: Option<(f64, f64)>, value| {
            Some(range.map_or((value, value), |(low, high)| {
                (low.min(value), high.max(value))
            }))
        })
        .unwrap_or((0.0, 1.0))
}

/// Draws each series as a coloured line, with its name in the legend.
fn draw_lines<'a, Y>(
    chart: &mut ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, Y>,
    >,
    series: &[Series],
    legend: SeriesLabelPosition,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64>,
{
    for (index, line) in series.iter().enumerate() {
        let colour = colour(index);
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(|err| err.to_string())?
            .label(line.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(|err| err.to_string())
}

/// Stacked bars: one bar per category, `parts` (name, one value per category) stacked
/// in order.
pub fn stacked_bars(
    categories: &[String],
    parts: &[Series],
    y_desc: &str,
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
    let highest = totals.iter().copied().fold(1.0, f64::max) * 1.15;
    let bars = categories.len().max(1) as f64;
    svg((WIDTH, HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5f64..bars - 0.5, 0f64..highest)
            .map_err(|err| err.to_string())?;
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
            .y_desc(y_desc)
            .draw()
            .map_err(|err| err.to_string())?;
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
                    let rect = [(x - 0.3, base[bar]), (x + 0.3, base[bar] + value)];
                    base[bar] += value;
                    Rectangle::new(rect, colour.filled())
                })
                .collect();
            chart
                .draw_series(boxes)
                .map_err(|err| err.to_string())?
                .label(part.name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(|err| err.to_string())
    })
}

/// A heatmap: `values[row][column]` (None: not measured, drawn grey), coloured from
/// white (the lowest) to dark red (the highest), each cell labelled with `label(value)`.
pub struct Heatmap<'a> {
    pub columns: &'a [String],
    pub rows: &'a [String],
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub values: &'a [Vec<Option<f64>>],
    pub label: &'a dyn Fn(f64) -> String,
}

pub fn heatmap(map: &Heatmap<'_>) -> anyhow::Result<String> {
    let (low, high) = bounds(map.values.iter().flatten().flatten().copied());
    let (columns, rows) = (map.columns.len().max(1), map.rows.len().max(1));
    let height = (90 + 40 * rows as u32).min(HEIGHT * 2);
    svg((WIDTH, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..columns as f64, 0f64..rows as f64)
            .map_err(|err| err.to_string())?;
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
            .draw()
            .map_err(|err| err.to_string())?;
        for (row, cells) in map.values.iter().enumerate() {
            for (column, value) in cells.iter().enumerate() {
                let (x, y) = (column as f64, row as f64);
                let fill = match value {
                    None => RGBColor(200, 200, 200),
                    Some(value) => heat((value - low) / (high - low).max(f64::MIN_POSITIVE)),
                };
                chart
                    .draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], fill.filled())])
                    .map_err(|err| err.to_string())?;
                let text = value.map_or("not measured".into(), |value| (map.label)(value));
                chart
                    .draw_series([Text::new(
                        text,
                        (x + 0.1, y + 0.6),
                        ("sans-serif", 13).into_font(),
                    )])
                    .map_err(|err| err.to_string())?;
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

    #[test]
    fn the_spectrum_axis_puts_each_nine_one_apart() {
        assert!((spectrum_x(0.9) - 1.0).abs() < 1e-9);
        assert!((spectrum_x(0.999) - 3.0).abs() < 1e-9);
        assert_eq!(spectrum_x(0.0), 0.0);
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(4.0), "99.99%");
    }

    #[test]
    fn every_plot_is_one_svg_element_with_its_names() {
        let line = Series {
            name: "wake-up".into(),
            points: vec![(0.0, 100.0), (2.0, 900.0)],
        };
        let plot = spectrum(std::slice::from_ref(&line)).unwrap();
        assert!(plot.starts_with("<svg") && plot.trim_end().ends_with("</svg>"));
        assert!(plot.contains("wake-up") && plot.contains("99%"));
        let bars = stacked_bars(&["run".into()], std::slice::from_ref(&line), "bytes").unwrap();
        assert!(bars.contains("wake-up"));
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
}
