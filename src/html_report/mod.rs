//! `pingfleet report`: one self-contained HTML page per run (or per sweep, or per
//! comparison with a baseline) with plots, for people to look at: no network, no
//! script, inline SVG and CSS, so it opens from a CI artifact or a mail attachment.
//!
//! `page` builds the HTML, `plots` draws lines and `bars` categories (with `plotters`),
//! `legend` places each plot's legend under it in colours that read on white, `ticks`
//! prints axis values in their units, and the views turn result files into sections:
//! `run_views` for `run` results, `links_view` for a run's emulated networks,
//! `proxy_view` for a run's reverse proxy, `sweep_view` for sweeps, `capacity_view`
//! for capacity searches, `variants_view` for variants, `compare_view` for a
//! comparison with a baseline.

pub(crate) mod bars;
pub(crate) mod capacity_view;
pub(crate) mod compare_view;
pub(crate) mod legend;
pub(crate) mod links_view;
pub(crate) mod page;
pub(crate) mod plots;
pub(crate) mod proxy_view;
pub(crate) mod run_views;
pub(crate) mod sweep_view;
pub(crate) mod ticks;
pub(crate) mod variants_view;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::compare::launch::{compare_inputs, CompareArgs};
use crate::results::run::RunResult;
use crate::results::{read, Document};
use page::Section;
use run_views::Labelled;

/// `pingfleet report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Result files: `run` results (several overlay in one page), a sweep's or a
    /// capacity search's result, or a saved `pingfleet compare --json` output. With --baseline: the current run's
    /// result file, or a directory of them.
    #[arg(required = true, value_name = "RESULT")]
    pub inputs: Vec<PathBuf>,
    /// Where to write the page. Default: the first result's path with `.html`; with
    /// --baseline, the current result's with `-compare.html` (a directory's
    /// `compare.html`), never the run's own page.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Compare with this baseline (a result file or a directory of them), as `pingfleet
    /// compare BASELINE CURRENT` does with no tolerance flags (the scenario's `[compare]`
    /// tolerances): the verdict table and both spectra overlaid, the page a reviewer of a
    /// failed gate opens.
    #[arg(long, value_name = "BASELINE")]
    pub baseline: Option<PathBuf>,
}

/// Runs the command: writes the page and prints its path.
pub fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let html = match &args.baseline {
        Some(baseline) => compared_page(baseline, &args.inputs)?,
        None => {
            let inputs: Vec<(String, Document)> = args
                .inputs
                .iter()
                .map(|path| Ok((label_of(path), read(path)?)))
                .collect::<anyhow::Result<_>>()?;
            page_of(&inputs)?
        }
    };
    let output = args.output.clone().unwrap_or_else(|| default_output(args));
    std::fs::write(&output, html).with_context(|| format!("cannot write {}", output.display()))?;
    println!("report: {}", output.display());
    Ok(())
}

/// Where the page goes without `-o`: beside the first result as `.html`; a comparison
/// beside the current result as `-compare.html` (or `compare.html` in its directory),
/// so that it never takes the place of the run's own page.
fn default_output(args: &ReportArgs) -> PathBuf {
    let first = &args.inputs[0];
    match (&args.baseline, first.is_dir()) {
        (None, _) => first.with_extension("html"),
        (Some(_), true) => first.join("compare.html"),
        (Some(_), false) => {
            let stem = first.file_stem().unwrap_or_default().to_string_lossy();
            first.with_file_name(format!("{stem}-compare.html"))
        }
    }
}

/// Writes the page of a result file (a run's or a sweep's) beside it: `.html` for
/// `.json`; returns its path.
pub fn write_beside(result_path: &Path) -> anyhow::Result<PathBuf> {
    let inputs = [(label_of(result_path), read(result_path)?)];
    let output = result_path.with_extension("html");
    std::fs::write(&output, page_of(&inputs)?)
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok(output)
}

/// A result's name in the page: its file's name without `.json`.
fn label_of(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |stem| stem.to_string_lossy().into_owned(),
    )
}

/// The page of several inputs: the views each has, runs overlaid where they can be.
fn page_of(inputs: &[(String, Document)]) -> anyhow::Result<String> {
    let runs: Vec<Labelled<'_>> = inputs
        .iter()
        .filter_map(|(label, input)| match input {
            Document::Run(result) => Some(Labelled {
                label: label.clone(),
                result,
            }),
            _ => None,
        })
        .collect();
    let mut sections = run_sections(&runs)?;
    for (label, input) in inputs {
        match input {
            Document::Sweep(sweep) => sections.push(sweep_view::sweep(sweep)?),
            Document::Capacity(search) => sections.push(capacity_view::capacity(search)?),
            Document::Variants(variants) => sections.push(variants_view::variants(variants)?),
            Document::Compared(document) => {
                let side = |key: &str| {
                    document
                        .get(key)
                        .and_then(|v| v.as_str())
                        .unwrap_or(label)
                        .to_owned()
                };
                let rows = compare_view::rows_of_json(document)?;
                sections.push(compare_view::verdict_table(
                    (&side("baseline"), &side("current")),
                    &rows,
                ));
            }
            Document::Run(_) => {}
        }
    }
    let (title, subtitle) = match (&runs[..], &inputs[0].1) {
        ([run, ..], _) => (
            format!("pingfleet run: {}", run.result.scenario),
            describe(run.result),
        ),
        ([], Document::Sweep(sweep)) => (
            format!("pingfleet sweep: {}", sweep.scenario),
            format!(
                "{} cells of {} devices, pingfleet {}",
                sweep.cells.len(),
                sweep.devices_per_cell,
                sweep.tool_version
            ),
        ),
        ([], Document::Capacity(search)) => (
            format!("pingfleet capacity search: {}", search.scenario),
            format!(
                "{}, {} steps, pingfleet {}",
                search.server,
                search.steps.len(),
                search.tool_version
            ),
        ),
        ([], Document::Variants(variants)) => (
            format!("pingfleet variants: {}", variants.scenario),
            format!(
                "{} variants, pingfleet {}",
                variants.variants.len(),
                variants.tool_version
            ),
        ),
        _ => ("pingfleet compare".to_owned(), inputs[0].0.clone()),
    };
    Ok(page::page(&title, &subtitle, &sections))
}

/// Every view of the runs: those that overlay runs once, the others per run.
fn run_sections(runs: &[Labelled<'_>]) -> anyhow::Result<Vec<Section>> {
    let mut sections = Vec::new();
    if runs.is_empty() {
        return Ok(sections);
    }
    sections.extend(runs.iter().map(run_views::verdicts));
    sections.extend(run_views::spectrum(runs)?);
    for run in runs {
        sections.extend(run_views::timeline(run)?);
    }
    sections.extend(run_views::memory(runs)?);
    for run in runs {
        sections.extend(run_views::costs(run));
        sections.extend(run_views::engines(run)?);
        sections.extend(run_views::storm(run)?);
        sections.extend(links_view::links(run)?);
        sections.extend(proxy_view::proxy(run)?);
    }
    if runs.len() > 1 {
        for (section, run) in sections.iter_mut().zip(runs.iter().cycle()) {
            if section.id == "verdicts" {
                section.title = format!("Verdicts: {}", run.label);
            }
        }
    }
    Ok(sections)
}

/// One line on what a run was.
fn describe(result: &RunResult) -> String {
    let server = match (&result.target, result.engine) {
        (Some(target), _) => format!("against {target}"),
        (None, Some(engine)) => format!("{} engine", engine.name()),
        (None, None) => "bundled server".into(),
    };
    format!(
        "{} devices, {server}, seed {}, pingfleet {}{}{}",
        result.fleet.devices,
        result.seed,
        result.tool_version,
        result
            .git_commit
            .as_deref()
            .map(|commit| format!(" ({commit})"))
            .unwrap_or_default(),
        if result.complete {
            ""
        } else {
            " - NOT COMPLETE"
        },
    )
}

/// The page of a comparison with a baseline: the verdicts, both spectra overlaid, and
/// the current run's own views.
fn compared_page(baseline: &Path, inputs: &[PathBuf]) -> anyhow::Result<String> {
    let [current] = inputs else {
        anyhow::bail!("--baseline takes one current result (a file or a directory)");
    };
    let args = CompareArgs {
        inputs: vec![baseline.to_owned(), current.clone()],
        ab: false,
        rounds: 1,
        ab_output: PathBuf::new(),
        markdown: false,
        json: false,
        memory_tolerance: None,
        heap_tolerance: None,
        device_tolerance: None,
        kernel_tolerance: None,
        min_effect: None,
        alpha: None,
    };
    let comparison = compare_inputs(&args, baseline, current)?;
    let rows = compare_view::rows_of(&comparison);
    let mut table = compare_view::verdict_table((&comparison.sides.0, &comparison.sides.1), &rows);
    if let Some(why) = &comparison.tolerances.not_a_gate {
        table.body.push_str(&format!(
            "<p class=\"muted\" data-not-a-gate>{} is not a gate, so nothing above is judged: {}</p>",
            page::escape(&comparison.current[0].scenario),
            page::escape(why)
        ));
    }
    let mut sections = vec![table];
    let both = [
        Labelled {
            label: "baseline".into(),
            result: &comparison.baseline[0],
        },
        Labelled {
            label: "current".into(),
            result: &comparison.current[0],
        },
    ];
    sections.extend(run_views::spectrum(&both)?);
    sections.extend(run_views::memory(&both)?);
    sections.push(run_views::verdicts(&both[1]));
    let current_run = &comparison.current[0];
    Ok(page::page(
        &format!("pingfleet compare: {}", current_run.scenario),
        &describe(current_run),
        &sections,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comparison_never_takes_the_place_of_the_runs_own_page() {
        let args = |baseline: Option<&str>, current: &str| ReportArgs {
            inputs: vec![PathBuf::from(current)],
            output: None,
            baseline: baseline.map(PathBuf::from),
        };
        let run = "results/smoke-2026-12-07T20-05-41Z.json";
        assert_eq!(
            default_output(&args(None, run)),
            Path::new("results/smoke-2026-12-07T20-05-41Z.html")
        );
        assert_eq!(
            default_output(&args(Some("base.json"), run)),
            Path::new("results/smoke-2026-12-07T20-05-41Z-compare.html")
        );
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().to_str().unwrap();
        assert_eq!(
            default_output(&args(Some("base"), current)),
            dir.path().join("compare.html")
        );
    }
}
