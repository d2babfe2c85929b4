//! The report's HTML: one self-contained page (inline CSS and SVG, no script, nothing
//! fetched), built from sections. Every key figure is an element with a
//! `data-figure` name and its value in `data-value` (as the result file has it), so a
//! test can read it back from the page a browser rendered.

use std::fmt::Write;

use super::ticks::{grouped, Unit};

/// The page's style sheet (inline: the page opens from a CI artifact or a mail).
const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 920px; color: #222; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
p.what { color: #555; margin: 0.3rem 0 0.6rem; }
.figures { display: flex; flex-wrap: wrap; gap: 0.4rem 1.2rem; margin: 0.4rem 0; }
.figure b { font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
td, th { border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; font-weight: bold; }
.fail { color: #c62828; font-weight: bold; }
.muted { color: #777; }
svg { display: block; max-width: 100%; height: auto; margin: 0.5rem 0; }
";

/// Text made safe for HTML.
pub(crate) fn escape(text: &str) -> String {
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => safe.push_str("&amp;"),
            '<' => safe.push_str("&lt;"),
            '>' => safe.push_str("&gt;"),
            '"' => safe.push_str("&quot;"),
            '\'' => safe.push_str("&#39;"),
            c => safe.push(c),
        }
    }
    safe
}

/// One view: a heading, one sentence on what it shows, its key figures, then its body
/// (plots, tables).
pub(crate) struct Section {
    pub id: String,
    pub title: String,
    pub what: String,
    pub figures: Vec<Figure>,
    pub body: String,
}

impl Section {
    pub(crate) fn new(id: &str, title: &str, what: &str) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            what: what.into(),
            figures: Vec::new(),
            body: String::new(),
        }
    }
}

/// A key figure: its name in the page (`data-figure`), words, value and unit.
pub(crate) struct Figure {
    pub key: String,
    pub words: String,
    pub value: f64,
    pub unit: &'static str,
}

impl Figure {
    pub(crate) fn new(
        key: impl Into<String>,
        words: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Self {
            key: key.into(),
            words: words.into(),
            value,
            unit,
        }
    }

    fn html(&self) -> String {
        format!(
            "<span class=\"figure\">{}: <b data-figure=\"{}\" data-value=\"{}\">{}</b></span>",
            escape(&self.words),
            escape(&self.key),
            self.value,
            escape(&with_unit(self.value, self.unit)),
        )
    }
}

/// A cell holding a figure the page names (`data-figure`), as key figures are, so
/// that a test can read it back.
pub(crate) fn named(key: &str, value: f64, words: &str) -> String {
    format!(
        "<span data-figure=\"{}\" data-value=\"{value}\">{}</span>",
        escape(key),
        escape(words)
    )
}

/// A value in words with its unit: whole numbers grouped by thousands, shares as percent,
/// bytes from a mebibyte up in MiB or GiB and below it to the byte.
pub(crate) fn with_unit(value: f64, unit: &str) -> String {
    if !value.is_finite() {
        return "not measured".into();
    }
    match unit {
        "%" => format!("{:.1}%", value * 100.0),
        "x" => format!("{value:.2}x"),
        "B" if value.abs() >= 1024.0 * 1024.0 => Unit::Bytes.tick(value),
        "B" => format!("{} B", grouped(value.round() as i64)),
        _ if value.fract() == 0.0 && value.abs() < 1e15 => {
            format!("{} {unit}", grouped(value as i64))
                .trim_end()
                .to_owned()
        }
        _ => format!("{value:.2} {unit}").trim_end().to_owned(),
    }
}

/// A table: a header row and rows of cells (already HTML); cells that are numbers align
/// right.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut html = String::from("<table><tr>");
    for name in header {
        let _ = write!(html, "<th>{}</th>", escape(name));
    }
    html.push_str("</tr>");
    for row in rows {
        html.push_str("<tr>");
        for cell in row {
            let numeric = without_tags(cell)
                .trim_end_matches(|c: char| c.is_alphabetic() || c == '%' || c == ' ')
                .replace(',', "")
                .parse::<f64>()
                .is_ok();
            let class = if numeric { " class=\"num\"" } else { "" };
            let _ = write!(html, "<td{class}>{cell}</td>");
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    html
}

/// The text of an HTML fragment, its tags left out.
fn without_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut inside = false;
    for c in html.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => text.push(c),
            _ => {}
        }
    }
    text
}

/// A table of any JSON document's values, one row per value, named by its path
/// (`lean.wakeup_p99_us`): for figures that need no picture.
pub(crate) fn json_table(value: &serde_json::Value) -> String {
    let mut rows = Vec::new();
    flatten(value, String::new(), &mut rows);
    table(&["figure", "value"], &rows)
}

fn flatten(value: &serde_json::Value, path: String, rows: &mut Vec<Vec<String>>) {
    let join = |key: &str| match path.is_empty() {
        true => key.to_owned(),
        false => format!("{path}.{key}"),
    };
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                flatten(value, join(key), rows);
            }
        }
        serde_json::Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                flatten(value, join(&index.to_string()), rows);
            }
        }
        serde_json::Value::Null => rows.push(vec![escape(&path), "not measured".into()]),
        other => rows.push(vec![escape(&path), escape(&other.to_string())]),
    }
}

/// The whole page: a title, a line under it, then each section.
pub(crate) fn page(title: &str, subtitle: &str, sections: &[Section]) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\
         <h1>{title}</h1><p class=\"what\">{subtitle}</p>",
        title = escape(title),
        subtitle = escape(subtitle),
    );
    for section in sections {
        let _ = write!(
            html,
            "<section id=\"{}\"><h2>{}</h2><p class=\"what\">{}</p>",
            escape(&section.id),
            escape(&section.title),
            escape(&section.what)
        );
        if !section.figures.is_empty() {
            html.push_str("<div class=\"figures\">");
            for figure in &section.figures {
                html.push_str(&figure.html());
            }
            html.push_str("</div>");
        }
        html.push_str(&section.body);
        html.push_str("</section>");
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_with_their_units() {
        assert_eq!(with_unit(1234567.0, "us"), "1,234,567 us");
        assert_eq!(with_unit(0.0123, "%"), "1.2%");
        assert_eq!(with_unit(2.5, "x"), "2.50x");
        assert_eq!(with_unit(6538.25, "B"), "6,538 B");
        assert_eq!(with_unit(2_854_432.35, "B"), "2.7 MiB");
        assert_eq!(with_unit(1.5, "ms"), "1.50 ms");
        let row = vec!["<span data-value=\"3\">1,091 us</span>".to_owned()];
        assert!(table(&["p99"], &[row]).contains("<td class=\"num\">"));
        assert_eq!(with_unit(f64::NAN, "us"), "not measured");
    }

    #[test]
    fn a_page_escapes_what_it_is_given_and_names_each_figure() {
        let mut section = Section::new("s", "A <b>", "what & why");
        section
            .figures
            .push(Figure::new("wakeup.p50", "wake-up p50", 157.0, "us"));
        let html = page("run <x>", "sub", &[section]);
        assert!(html.contains("run &lt;x&gt;") && html.contains("A &lt;b&gt;"));
        assert!(html.contains("what &amp; why"));
        assert!(html.contains("data-figure=\"wakeup.p50\" data-value=\"157\">157 us</b>"));
        assert!(!html.contains("<script"), "the page needs no script");
        assert!(!html.contains("http://") || html.contains("http://www.w3.org/2000/svg"));
    }
}
