//! The report's pictures, drawn by `plotters` into inline SVG: a latency percentile
//! spectrum on HdrHistogram's "1/(1-q)" axis, and lines over time or over a count (with
//! shaded spans, marks and limits); `bars` draws categories. Each function takes
//! plain series and returns one `<svg>` element, its legend in a band under the plot;
//! what the series mean is the views' business, how ticks read is `ticks`'.

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::legend::{self, colour, DrawError, Entry, Swatch, MARK};
use super::ticks::Unit;

/// The size of a plot (without its legend), in CSS pixels.
pub(super) const WIDTH: u32 = 880;
pub(super) const HEIGHT: u32 = 340;
/// The faint grid between the labelled lines.
const LIGHT: RGBColor = RGBColor(242, 242, 242);
/// The highest percentile a spectrum's axis goes to: 99.999%.
pub(crate) const SPECTRUM_NINES: f64 = 5.0;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// A line through the points (a quantity sampled at instants).
    Line,
    /// Each point's value held until the next point (a count over each interval, e.g.
    /// per second): flat treads and upright risers, never a ramp between them.
    Stairs,
    /// Markers alone (a few percentiles, not a curve).
    Points,
    /// A line with each point marked (steps of a search).
    LineAndPoints,
}

/// One named series: (x, y) points, and how they are drawn.
pub(crate) struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
    /// The palette's colour to draw in (a fitted line and its points share one); by
    /// default the series' place in the plot.
    pub colour: Option<usize>,
}

impl Series {
    pub(crate) fn new(name: impl Into<String>, style: Style, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            style,
            colour: None,
        }
    }

    /// The same series drawn in the palette's colour `index`.
    pub(crate) fn in_colour(self, index: usize) -> Self {
        Self {
            colour: Some(index),
            ..self
        }
    }
}

/// A labelled span of the x axis to shade (a run's ramp, hold and drain).
pub(crate) struct Shading {
    pub label: String,
    pub from: f64,
    pub to: f64,
}

/// A line chart's axes and what is drawn on them.
pub(crate) struct LineChart<'a> {
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub x_unit: Unit,
    pub y_unit: Unit,
    /// A logarithmic x axis (steps that grow geometrically).
    pub x_log: bool,
    pub series: &'a [Series],
    pub spans: &'a [Shading],
    /// Instants to mark with a vertical red line (a flush).
    pub marks: &'a [(f64, String)],
    /// Values to draw as a dashed red level across the plot (a threshold).
    pub limits: &'a [(f64, String)],
}

impl<'a> LineChart<'a> {
    /// Series over a linear x axis, without spans, marks or limits.
    pub(crate) fn new(x: (&'a str, Unit), y: (&'a str, Unit), series: &'a [Series]) -> Self {
        Self {
            x_desc: x.0,
            y_desc: y.0,
            x_unit: x.1,
            y_unit: y.1,
            x_log: false,
            series,
            spans: &[],
            marks: &[],
            limits: &[],
        }
    }
}

/// Draws a plot of `height` with `legend` under it into an SVG string with `draw`,
/// turning plotters' errors into words.
pub(super) fn svg(
    height: u32,
    legend: &[Entry],
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), DrawError>,
) -> anyhow::Result<String> {
    let mut text = String::new();
    {
        let size = (WIDTH, height + legend::height(legend));
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE).map_err(|err| anyhow::anyhow!("{err}"))?;
        let (plot, band) = root.split_vertically(height);
        draw(&plot).map_err(|err| anyhow::anyhow!("drawing a plot: {err}"))?;
        legend::draw(&band, legend).map_err(|err| anyhow::anyhow!("drawing a legend: {err}"))?;
        root.present().map_err(|err| anyhow::anyhow!("{err}"))?;
    }
    Ok(text)
}

/// The legend entries of `series` (in their colours), then of marks and limits.
fn entries(series: &[Series], marks: &[(f64, String)], limits: &[(f64, String)]) -> Vec<Entry> {
    let lines = series.iter().enumerate().map(|(index, line)| Entry {
        name: line.name.clone(),
        colour: colour(line.colour.unwrap_or(index)),
        swatch: match line.style {
            Style::Line | Style::Stairs => Swatch::Line,
            Style::Points => Swatch::Dot,
            Style::LineAndPoints => Swatch::LineAndDot,
        },
    });
    let reds = |of: &[(f64, String)], swatch| {
        of.iter()
            .map(|(_, name)| Entry {
                name: name.clone(),
                colour: MARK,
                swatch,
            })
            .collect::<Vec<_>>()
    };
    lines
        .chain(reds(marks, Swatch::Line))
        .chain(reds(limits, Swatch::Dashed))
        .collect()
}

/// The x of percentile `q` (0 to 1) on a spectrum's axis: log10(1 / (1 - q)), so 90%,
/// 99%, 99.9% fall at 1, 2, 3.
pub(crate) fn spectrum_x(q: f64) -> f64 {
    (1.0 / (1.0 - q).max(1e-12)).log10()
}

/// A percentile spectrum: each series' points are (spectrum_x(q), microseconds), the y
/// axis logarithmic.
pub(crate) fn spectrum(series: &[Series]) -> anyhow::Result<String> {
    let ys = || {
        series
            .iter()
            .flat_map(|line| line.points.iter().map(|(_, y)| *y))
    };
    let highest = ys().fold(1.0, f64::max);
    let lowest = ys().filter(|y| *y > 0.0).fold(highest, f64::min);
    // As many nines as the longest line reaches.
    let nines = series
        .iter()
        .flat_map(|line| line.points.iter().map(|(x, _)| *x))
        .fold(1.0, f64::max)
        .ceil()
        .min(SPECTRUM_NINES);
    svg(HEIGHT, &entries(series, &[], &[]), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(
                0f64..nines,
                (decade_below(lowest)..highest * 1.5).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency")
            .x_labels(nines as usize + 1)
            .x_label_formatter(&|x| percentile_label(*x))
            .y_labels(30)
            .y_label_formatter(&|y| match one_two_five(*y) {
                true => Unit::Micros.tick(*y),
                false => String::new(),
            })
            .light_line_style(LIGHT)
            .draw()?;
        draw_series(&mut chart, series)
    })
}

/// The power of ten at or below `value` (at least 1): a log axis that starts there has
/// a tick under its lowest point.
fn decade_below(value: f64) -> f64 {
    10f64.powf(value.max(1.0).log10().floor())
}

/// Whether a log axis's tick at `value` is labelled: only 1, 2 and 5 of each decade,
/// so the labels of a decade's upper ticks do not run into each other.
fn one_two_five(value: f64) -> bool {
    if value <= 0.0 {
        return false;
    }
    let leading = value / decade_below(value);
    [1.0, 2.0, 5.0]
        .iter()
        .any(|digit| (leading - digit).abs() < 1e-6)
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

/// Lines over an x axis (time, a count; linear or logarithmic), with shaded spans,
/// marks and limits.
pub(crate) fn lines(spec: &LineChart<'_>) -> anyhow::Result<String> {
    let xs = spec
        .series
        .iter()
        .flat_map(|line| line.points.iter().map(|(x, _)| *x));
    let (x_low, x_high) = bounds(xs.chain(spec.spans.iter().flat_map(|s| [s.from, s.to])));
    let (_, y_high) = bounds(
        spec.series
            .iter()
            .flat_map(|line| line.points.iter().map(|(_, y)| *y))
            .chain(spec.limits.iter().map(|(y, _)| *y))
            .chain([0.0]),
    );
    // Drawn divided (bytes in MiB...), so that ticks fall on round values of the unit.
    let divisor = spec.y_unit.divisor(y_high);
    let y_high = if y_high > 0.0 { y_high * 1.1 } else { 1.0 } / divisor;
    let series: Vec<Series> = spec
        .series
        .iter()
        .map(|line| {
            let points = line.points.iter().map(|(x, y)| (*x, y / divisor));
            Series {
                colour: line.colour,
                ..Series::new(line.name.clone(), line.style, points.collect())
            }
        })
        .collect();
    let limits: Vec<(f64, String)> = (spec.limits.iter())
        .map(|(level, words)| (level / divisor, words.clone()))
        .collect();
    let spec = &LineChart {
        series: &series,
        limits: &limits,
        ..*spec
    };
    let legend = entries(spec.series, spec.marks, spec.limits);
    svg(HEIGHT, &legend, |root| {
        let mut builder = ChartBuilder::on(root);
        builder
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(80);
        if spec.x_log {
            let (low, high) = (x_low.max(1e-9) / 1.25, x_high.max(1e-9) * 1.25);
            let mut chart = builder.build_cartesian_2d((low..high).log_scale(), 0f64..y_high)?;
            fill(&mut chart, spec, (y_high, divisor))
        } else {
            let mut chart =
                builder.build_cartesian_2d(x_low..x_high.max(x_low + 1.0), 0f64..y_high)?;
            fill(&mut chart, spec, (y_high, divisor))
        }
    })
}

/// A line chart's spans, grid and axes, marks, limits and series, its y values divided
/// by `divisor` up to `y_high`.
fn fill<'a, X>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, RangedCoordf64>>,
    spec: &LineChart<'_>,
    (y_high, divisor): (f64, f64),
) -> Result<(), DrawError>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    for (index, span) in spec.spans.iter().enumerate() {
        let shade = [RGBColor(230, 236, 245), RGBColor(240, 240, 240)][index % 2];
        chart.draw_series([Rectangle::new(
            [(span.from, 0.0), (span.to, y_high)],
            shade.filled(),
        )])?;
        chart.draw_series([Text::new(
            span.label.clone(),
            (span.from, y_high),
            ("sans-serif", 13).into_font().color(&RGBColor(70, 70, 70)),
        )])?;
    }
    chart
        .configure_mesh()
        .x_desc(spec.x_desc)
        .y_desc(spec.y_desc)
        .x_label_formatter(&|x| spec.x_unit.tick(*x))
        .y_label_formatter(&|y| spec.y_unit.tick(*y * divisor))
        .light_line_style(LIGHT)
        .draw()?;
    for (at, _) in spec.marks {
        chart.draw_series([PathElement::new(vec![(*at, 0.0), (*at, y_high)], MARK)])?;
    }
    let (x_from, x_to) = (chart.x_range().start, chart.x_range().end);
    for (level, _) in spec.limits {
        chart.draw_series([DashedPathElement::new(
            vec![(x_from, *level), (x_to, *level)],
            6,
            4,
            MARK.stroke_width(2),
        )])?;
    }
    draw_series(chart, spec.series)
}

/// The lowest and highest of `values` (0..1 when there are none).
pub(super) fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|value| value.is_finite())
        .fold(None, |range: Option<(f64, f64)>, value| {
            Some(range.map_or((value, value), |(low, high)| {
                (low.min(value), high.max(value))
            }))
        })
        .unwrap_or((0.0, 1.0))
}

/// The paths of a stair series: each point's value held from its x to the next
/// point's, which it meets with an upright riser; the last held for the usual gap, and
/// a gap of more than one and a half usual ones left open (no sample there).
pub(crate) fn stair_paths(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut gaps: Vec<f64> = points
        .windows(2)
        .map(|pair| pair[1].0 - pair[0].0)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let usual = gaps.get(gaps.len() / 2).copied().unwrap_or(1.0);
    let mut paths = Vec::new();
    let mut path = Vec::new();
    for (index, &(x, y)) in points.iter().enumerate() {
        let next = points.get(index + 1).map(|point| point.0);
        let end = match next {
            Some(next) if next - x <= usual * 1.5 => next,
            _ => x + usual,
        };
        path.extend([(x, y), (end, y)]);
        if next != Some(end) {
            paths.push(std::mem::take(&mut path));
        }
    }
    paths
}

/// Draws each series in its colour and style.
fn draw_series<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    series: &[Series],
) -> Result<(), DrawError>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (index, line) in series.iter().enumerate() {
        let colour = colour(line.colour.unwrap_or(index));
        let stroke = colour.stroke_width(2);
        let points = line.points.iter().copied();
        if matches!(line.style, Style::Line | Style::LineAndPoints) {
            chart.draw_series(LineSeries::new(points.clone(), stroke))?;
        }
        if line.style == Style::Stairs {
            chart.draw_series(
                stair_paths(&line.points)
                    .into_iter()
                    .map(|path| PathElement::new(path, stroke)),
            )?;
        }
        if matches!(line.style, Style::Points | Style::LineAndPoints) {
            chart.draw_series(points.map(|point| Circle::new(point, 4, colour.filled())))?;
        }
    }
    Ok(())
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
    fn a_log_latency_axis_labels_one_two_and_five_of_each_decade_from_below_its_lowest() {
        assert_eq!(decade_below(44.0), 10.0);
        assert_eq!(decade_below(100.0), 100.0);
        assert_eq!(decade_below(0.3), 1.0);
        let labelled: Vec<f64> = [10.0, 20.0, 30.0, 50.0, 90.0, 100.0, 200.0, 700.0, 5000.0]
            .into_iter()
            .filter(|value| one_two_five(*value))
            .collect();
        assert_eq!(labelled, [10.0, 20.0, 50.0, 100.0, 200.0, 5000.0]);
        // The floor's p50 at 44 us has a labelled tick below it.
        let line = Series::new("floor", Style::Line, vec![(0.0, 44.0), (2.0, 1800.0)]);
        let plot = spectrum(std::slice::from_ref(&line)).unwrap();
        let label = |text: &str| plot.lines().any(|line| line.trim() == text);
        assert!(label("20 us") && label("1 ms"), "{plot}");
        assert!(!label("900 us"), "{plot}");
    }

    #[test]
    fn every_plot_is_one_svg_element_with_its_names() {
        let line = Series::new("wake-up", Style::Line, vec![(0.0, 100.0), (2.0, 900.0)]);
        let plot = spectrum(std::slice::from_ref(&line)).unwrap();
        assert!(plot.starts_with("<svg") && plot.trim_end().ends_with("</svg>"));
        assert!(plot.contains("wake-up") && plot.contains("99%"));
    }

    #[test]
    fn a_fixed_rate_is_flat_treads_and_upright_risers_never_a_ramp() {
        let points = [
            (0.0, 0.0),
            (1.0, 50.0),
            (2.0, 50.0),
            (3.0, 50.0),
            (6.0, 20.0),
        ];
        let paths = stair_paths(&points);
        // The gap from 3 to 6 has no sample: two paths.
        assert_eq!(paths.len(), 2, "{paths:?}");
        for path in &paths {
            for pair in path.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                assert!(a.0 == b.0 || a.1 == b.1, "a ramp from {a:?} to {b:?}");
            }
        }
        // 50 a second from x = 1 to 4, then 20 from 6 to 7.
        assert_eq!(
            paths[0][2..],
            [
                (1.0, 50.0),
                (2.0, 50.0),
                (2.0, 50.0),
                (3.0, 50.0),
                (3.0, 50.0),
                (4.0, 50.0)
            ]
        );
        assert_eq!(paths[1], vec![(6.0, 20.0), (7.0, 20.0)]);
    }

    #[test]
    fn ticks_legends_and_limits_are_drawn_in_words() {
        let series = [
            Series::new(
                "p99 each second",
                Style::Stairs,
                vec![(0.0, 1_500.0), (1.0, 10_000.0)],
            ),
            Series::new("floor", Style::Points, vec![(0.0, 40.0)]),
        ];
        let mut chart =
            LineChart::new(("devices", Unit::Count), ("latency", Unit::Micros), &series);
        let limits = [(12_000.0, "threshold p(99) < 12 ms".to_owned())];
        chart.limits = &limits;
        let plot = lines(&chart).unwrap();
        assert!(plot.contains("10 ms") && !plot.contains("10000"), "{plot}");
        assert!(
            plot.contains("threshold p(99) &lt; 12 ms") || plot.contains("threshold p(99) < 12 ms")
        );
        assert!(plot.contains("<circle"), "the floor's points are markers");
        // The threshold is a dashed red level: many short red segments.
        assert!(
            plot.matches("#C80000").count() > 20,
            "the threshold is dashed"
        );
        // The legend sits below the plot: the SVG is taller than the plot area.
        assert!(
            plot.contains(&format!("height=\"{}\"", HEIGHT + 2 * 20 + 8)),
            "{plot}"
        );
    }
}
