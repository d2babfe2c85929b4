//! One publish step for every document a run makes (a run's result, a sweep's, the
//! variants', a capacity search's): the JSON written (a run's interval log beside it),
//! its summary printed and saved beside it (`.txt`), and, when asked, its HTML report
//! written beside it and its path printed. What a document says is the summary's
//! (`summary`, `sweep`, `variants`, `capacity_words`); where it goes is `output`'s.

use std::path::Path;

use anyhow::Context as _;

use super::capacity_words::search_text;
use super::summary::summary_text;
use super::sweep::grid_text;
use super::variants::table_text;
use crate::results::capacity::CapacityResult;
use crate::results::run::RunResult;
use crate::results::sweep::SweepResult;
use crate::results::variants::VariantsResult;

/// A document of a run, ready to publish.
#[derive(Clone, Copy)]
pub(super) enum Publication<'a> {
    Run(&'a RunResult),
    Sweep(&'a SweepResult),
    Variants(&'a VariantsResult),
    Capacity(&'a CapacityResult),
}

/// Writes `document` at `path`, prints its summary and saves it beside it (`.txt`),
/// and with `report` writes its HTML page beside it (`.html`) and prints its path.
pub(super) fn publish(document: Publication<'_>, path: &Path, report: bool) -> anyhow::Result<()> {
    write(document, path)?;
    let text = summary(document, path);
    print!("{text}");
    let saved = path.with_extension("txt");
    std::fs::write(&saved, &text)
        .with_context(|| format!("cannot save the summary beside {}", path.display()))?;
    if report {
        let page = crate::html_report::write_beside(path)?;
        println!("report: {}", page.display());
    }
    Ok(())
}

/// Writes `document`'s JSON at `path`; a run's interval log beside it (`.hlog`), named
/// in the result.
pub(super) fn write(document: Publication<'_>, path: &Path) -> anyhow::Result<()> {
    let json = match document {
        Publication::Run(result) => {
            let mut result = result.clone();
            if !result.interval_series.by_tag.is_empty() {
                let log = path.with_extension("hlog");
                let mut text = Vec::new();
                result.interval_series.write_hlog(&mut text)?;
                std::fs::write(&log, text)
                    .with_context(|| format!("cannot write {}", log.display()))?;
                result.intervals.log = log
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned());
            }
            serde_json::to_string_pretty(&result)?
        }
        Publication::Sweep(result) => serde_json::to_string_pretty(result)?,
        Publication::Variants(result) => serde_json::to_string_pretty(result)?,
        Publication::Capacity(result) => serde_json::to_string_pretty(result)?,
    };
    std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
}

/// What is printed of `document` written at `path`, ending with where it is.
fn summary(document: Publication<'_>, path: &Path) -> String {
    let text = match document {
        Publication::Run(result) => return summary_text(result, path),
        Publication::Sweep(result) => grid_text(result),
        Publication::Variants(result) => format!("\n{}\n", table_text(result)),
        Publication::Capacity(result) => search_text(result),
    };
    format!("{text}results: {}\n", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep() -> SweepResult {
        serde_json::from_value(serde_json::json!({
            "schema": crate::results::sweep::SCHEMA, "tool_version": "0", "scenario": "grid",
            "scenario_text": "", "time_scale": 1.0, "devices_per_cell": 4, "cells": [],
        }))
        .unwrap()
    }

    #[test]
    fn a_document_is_written_said_and_saved_and_its_report_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let result = sweep();
        let path = dir.path().join("grid.json");
        publish(Publication::Sweep(&result), &path, false).unwrap();
        let read = crate::results::read(&path).unwrap();
        assert!(matches!(read, crate::results::Document::Sweep(s) if s.devices_per_cell == 4));
        let saved = std::fs::read_to_string(path.with_extension("txt")).unwrap();
        assert_eq!(saved, summary(Publication::Sweep(&result), &path));
        assert!(saved.starts_with(&grid_text(&result)));
        assert!(saved.ends_with(&format!("results: {}\n", path.display())));
        assert!(
            !path.with_extension("html").exists(),
            "no report unless asked"
        );
        let asked = dir.path().join("asked.json");
        publish(Publication::Sweep(&result), &asked, true).unwrap();
        assert!(asked.with_extension("html").exists());
    }
}
