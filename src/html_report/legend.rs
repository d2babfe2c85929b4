//! A plot's legend, drawn in a band of its own under the plot so that it covers no
//! line, label or tail; and the colours the lines take, each dark enough to read on
//! white.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

/// What drawing into an SVG string can fail with: plotters' error over the writer's.
pub(crate) type DrawError = DrawingAreaErrorKind<std::io::Error>;

/// Colours in the order lines take them: Okabe-Ito's and Tableau's hues, darkened
/// where needed so each has at least 3:1 contrast with white (no yellow).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 90, 181),
    RGBColor(200, 70, 0),
    RGBColor(27, 120, 55),
    RGBColor(120, 60, 170),
    RGBColor(60, 60, 60),
    RGBColor(175, 30, 110),
    RGBColor(0, 120, 140),
    RGBColor(140, 90, 0),
];

/// The colour of the line at `index`.
pub(crate) fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// The red of marks and limits (a flush, a threshold).
pub(crate) const MARK: RGBColor = RGBColor(200, 0, 0);

/// How an entry's sample looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Swatch {
    Line,
    Dashed,
    Dot,
    LineAndDot,
    Block,
}

/// One entry: words, colour and sample.
pub(crate) struct Entry {
    pub name: String,
    pub colour: RGBColor,
    pub swatch: Swatch,
}

/// Height of one row of the legend, in pixels.
const ROW: u32 = 20;
/// Names up to this many characters go two to a row.
const SHORT: usize = 52;

/// Entries a row holds.
fn per_row(entries: &[Entry]) -> usize {
    match entries
        .iter()
        .all(|entry| entry.name.chars().count() <= SHORT)
    {
        true => 2,
        false => 1,
    }
}

/// Pixels the legend of `entries` needs under a plot (none for no entry).
pub(crate) fn height(entries: &[Entry]) -> u32 {
    match entries.len() {
        0 => 0,
        n => ROW * n.div_ceil(per_row(entries)) as u32 + 8,
    }
}

/// Draws `entries` into `area` (a band under the plot), left to right, top to bottom.
pub(crate) fn draw(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    entries: &[Entry],
) -> Result<(), DrawError> {
    let columns = per_row(entries);
    let width = area.dim_in_pixel().0 as i32;
    let column_width = (width - 80) / columns as i32;
    for (index, entry) in entries.iter().enumerate() {
        let (row, column) = (index / columns, index % columns);
        let x = 72 + column as i32 * column_width;
        let y = 4 + row as i32 * ROW as i32 + ROW as i32 / 2;
        swatch(area, (x, y), entry)?;
        area.draw(&Text::new(
            entry.name.clone(),
            (x + 30, y - 7),
            ("sans-serif", 13).into_font().color(&BLACK),
        ))?;
    }
    Ok(())
}

fn swatch(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    (x, y): (i32, i32),
    entry: &Entry,
) -> Result<(), DrawError> {
    let style = entry.colour.stroke_width(2);
    let line = vec![(x, y), (x + 24, y)];
    match entry.swatch {
        Swatch::Line => area.draw(&PathElement::new(line, style)),
        Swatch::Dashed => area.draw(&DashedPathElement::new(line, 5, 3, style)),
        Swatch::Dot => area.draw(&Circle::new((x + 12, y), 4, entry.colour.filled())),
        Swatch::LineAndDot => {
            area.draw(&PathElement::new(line, style))?;
            area.draw(&Circle::new((x + 12, y), 4, entry.colour.filled()))
        }
        Swatch::Block => area.draw(&Rectangle::new(
            [(x + 4, y - 6), (x + 20, y + 6)],
            entry.colour.filled(),
        )),
    }
}

/// The contrast of `colour` with white, as WCAG computes it (1 to 21).
#[cfg(test)]
fn contrast_with_white(colour: RGBColor) -> f64 {
    let linear = |channel: u8| {
        let c = f64::from(channel) / 255.0;
        match c <= 0.039_28 {
            true => c / 12.92,
            false => ((c + 0.055) / 1.055).powf(2.4),
        }
    };
    let luminance =
        0.2126 * linear(colour.0) + 0.7152 * linear(colour.1) + 0.0722 * linear(colour.2);
    1.05 / (luminance + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_colour_reads_on_white() {
        for (index, colour) in PALETTE.iter().chain([&MARK]).enumerate() {
            let contrast = contrast_with_white(*colour);
            assert!(
                contrast >= 3.0,
                "colour {index} {colour:?}: {contrast:.2}:1"
            );
        }
        // Yellow, which the old palette had, would fail.
        assert!(contrast_with_white(RGBColor(230, 200, 0)) < 3.0);
    }

    #[test]
    fn long_names_take_a_row_each_and_short_ones_share() {
        let entry = |name: &str| Entry {
            name: name.into(),
            colour: colour(0),
            swatch: Swatch::Line,
        };
        let short = [entry("servers"), entry("workers"), entry("kernel")];
        assert_eq!(height(&short), 2 * ROW + 8);
        let long = [entry(&"x".repeat(SHORT + 1)), entry("y")];
        assert_eq!(height(&long), 2 * ROW + 8);
        assert_eq!(height(&[]), 0);
    }
}
