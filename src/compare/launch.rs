//! The `pingfleet compare` command: two sides read (result files, directories of them,
//! or `--ab` runs of two builds made here), every figure judged, a table (or markdown,
//! or JSON) printed, and the exit code a CI gate reads: 0 no regression, 1 a
//! regression, 2 could not compare, 3 latencies not judged because a run's self-check
//! failed (its latencies were the generator's or a busy machine's: run it again).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use super::figures::{add_run, Side, FLOOR_FIGURES};
use super::verdict::{judge, Judgement, Verdict};
use crate::results::run::RunResult;
use crate::results::self_check::Cause;
use crate::results::{Document, ReadError};
use crate::scenario::compare::{Tolerances, DEPARTURE_FIGURES, PLAN_FIGURES};
use crate::scenario::Scenario;
use crate::units::Share;

/// The exit code of a comparison whose latencies could not be judged: a run's
/// self-check failed.
pub const EXIT_UNTRUSTED: u8 = 3;

/// `pingfleet compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// BASELINE CURRENT: result files, or directories holding several runs' result
    /// files each (their samples are pooled). With --ab: BASE_BINARY CURRENT_BINARY
    /// SCENARIO.
    #[arg(num_args = 2..=3, required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Run SCENARIO with the two binaries alternately (base, current, base, ...), then
    /// compare: alternation cancels the slow drift of a shared machine.
    #[arg(long)]
    pub ab: bool,
    /// Rounds of --ab (each runs both builds once).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Where --ab keeps its runs (base/ and current/ below).
    #[arg(long, default_value = "results/ab", value_name = "DIR")]
    pub ab_output: PathBuf,
    /// Print a markdown table (for a pull-request comment or $GITHUB_STEP_SUMMARY).
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
    /// Print the verdicts as JSON.
    #[arg(long)]
    pub json: bool,
    /// The server's memory per parked connection may move this much, e.g. 5% (default
    /// 5%, or the scenario's [compare] memory).
    #[arg(long, value_name = "PERCENT")]
    pub memory_tolerance: Option<Share>,
    /// The server's live heap per parked Ping may move this much, e.g. 1% (default 1%,
    /// or the scenario's [compare] heap).
    #[arg(long, value_name = "PERCENT")]
    pub heap_tolerance: Option<Share>,
    /// The device workers' memory per device may move this much (default 10%).
    #[arg(long, value_name = "PERCENT")]
    pub device_tolerance: Option<Share>,
    /// The kernel's slab memory per connection may move this much (default 15%).
    #[arg(long, value_name = "PERCENT")]
    pub kernel_tolerance: Option<Share>,
    /// A latency or rate must move at least this much to count (default 10%).
    #[arg(long, value_name = "PERCENT")]
    pub min_effect: Option<Share>,
    /// Significance level of the Mann-Whitney test (default 0.01).
    #[arg(long)]
    pub alpha: Option<f64>,
}

/// Runs the command; its exit code.
pub fn compare(args: &CompareArgs) -> u8 {
    match compare_sides(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("pingfleet compare: could not compare: {err:#}");
            2
        }
    }
}

/// Both sides compared: each side's results, their descriptions, every figure judged,
/// the gated regressions, and why gated latencies were set aside (if they were).
pub struct Comparison {
    pub baseline: Vec<RunResult>,
    pub current: Vec<RunResult>,
    pub sides: (String, String),
    pub tolerances: Tolerances,
    pub judgements: Vec<Judgement>,
    pub regressions: usize,
    pub untrusted: Option<String>,
}

/// Reads both sides (result files or directories) and judges every figure, as
/// `pingfleet compare` does with the tolerances and thresholds of `args`.
pub fn compare_inputs(
    args: &CompareArgs,
    baseline_inputs: &Path,
    current_inputs: &Path,
) -> anyhow::Result<Comparison> {
    let baseline = read_side(baseline_inputs)?;
    let current = read_side(current_inputs)?;
    same_experiment(&baseline, &current)?;
    let tolerances = tolerances(args, &current)?;
    let (baseline_figures, current_figures) = (figures_of(&baseline), figures_of(&current));
    let mut judgements = judge_all(&baseline_figures, &current_figures, &tolerances)?;
    let untrusted = set_aside_latencies(&mut judgements, &baseline, &current);
    let regressions = judgements
        .iter()
        .filter(|j| j.verdict == Verdict::Regression && j.gated)
        .count();
    let sides = (
        describe(baseline_inputs, &baseline),
        describe(current_inputs, &current),
    );
    Ok(Comparison {
        baseline,
        current,
        sides,
        tolerances,
        judgements,
        regressions,
        untrusted,
    })
}

fn compare_sides(args: &CompareArgs) -> anyhow::Result<u8> {
    let (baseline_inputs, current_inputs) = match (args.ab, args.inputs.as_slice()) {
        (true, [base, current, scenario]) => run_ab(args, base, current, scenario)?,
        (false, [base, current]) => (base.clone(), current.clone()),
        (true, _) => anyhow::bail!("--ab takes BASE_BINARY CURRENT_BINARY SCENARIO"),
        (false, _) => anyhow::bail!("give BASELINE and CURRENT (result files or directories)"),
    };
    let Comparison {
        current,
        sides,
        tolerances,
        judgements,
        regressions,
        untrusted,
        ..
    } = compare_inputs(args, &baseline_inputs, &current_inputs)?;
    if args.json {
        print_json(&sides, &tolerances, &judgements, regressions)?;
    } else if args.markdown {
        print_markdown(&sides, &judgements, regressions);
    } else {
        print_table(&sides, &judgements, regressions);
    }
    if let (Some(why), false) = (&tolerances.not_a_gate, args.json) {
        println!(
            "{} is not a gate, so nothing above is judged: {why}",
            current
                .first()
                .map_or("this scenario", |run| run.scenario.as_str())
        );
    }
    if regressions > 0 {
        return Ok(1);
    }
    let Some(untrusted) = untrusted else {
        return Ok(0);
    };
    eprintln!(
        "pingfleet compare: gated latencies not judged: {untrusted}; run again on a quiet machine"
    );
    Ok(EXIT_UNTRUSTED)
}

/// Which latencies a run's self-check leaves untrusted: those from the plan when its
/// generator fell behind (injector or devices) or the machine was busy; those from the
/// departure when its devices fell behind or the machine was busy.
fn distrusts(result: &RunResult, figure: &str) -> bool {
    let check = &result.self_check;
    if PLAN_FIGURES.contains(&figure) {
        check.generator_saturated || check.machine_saturated
    } else if DEPARTURE_FIGURES.contains(&figure) {
        check.devices_late || check.machine_saturated
    } else {
        false
    }
}

/// Marks each latency figure a run's failed self-check leaves untrusted inconclusive and
/// not gated (a saturated run measured the generator or the machine, not the server).
/// Returns, when a gated figure was set aside, why in words: the first such run's
/// reasons.
fn set_aside_latencies(
    judgements: &mut [Judgement],
    baseline: &[RunResult],
    current: &[RunResult],
) -> Option<String> {
    let runs: Vec<(&str, &RunResult)> = (baseline.iter().map(|run| ("baseline", run)))
        .chain(current.iter().map(|run| ("current", run)))
        .collect();
    let mut why = None;
    for judgement in judgements.iter_mut() {
        let Some((side, run)) = runs
            .iter()
            .find(|(_, run)| distrusts(run, judgement.figure))
        else {
            continue;
        };
        if judgement.gated && why.is_none() {
            let check = &run.self_check;
            let reasons = check.reasons.join(", ");
            why = Some(match check.cause {
                Cause::Clear => format!("a {side} run failed its self-check ({reasons})"),
                cause => format!("a {side} run's self-check: {} ({reasons})", cause.words()),
            });
        }
        judgement.verdict = Verdict::Inconclusive;
        judgement.gated = false;
        judgement.reason = format!("not judged: a {side} run's self-check failed");
    }
    why
}

/// Every result file of one side: the file, or the `.json` result files under a
/// directory (any depth).
fn read_side(input: &Path) -> anyhow::Result<Vec<RunResult>> {
    let mut files = Vec::new();
    collect_json(input, &mut files)?;
    files.sort();
    let mut results = Vec::new();
    for file in &files {
        let result = match crate::results::read(file) {
            Ok(Document::Run(result)) => result,
            // A sweep, a worker document or anything else is not a run to compare.
            Ok(_) | Err(ReadError::Unknown { .. }) => continue,
            Err(err) => return Err(err.into()),
        };
        if !result.complete {
            anyhow::bail!(
                "{} is of an incomplete run: {:?}",
                file.display(),
                result.failures
            );
        }
        results.push(*result);
    }
    if results.is_empty() {
        anyhow::bail!("no pingfleet run result in {}", input.display());
    }
    Ok(results)
}

fn collect_json(path: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if !path.is_dir() {
        files.push(path.to_owned());
        return Ok(());
    }
    for entry in
        std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?
    {
        let entry = entry?.path();
        if entry.is_dir() {
            collect_json(&entry, files)?;
        } else if entry.extension().is_some_and(|ext| ext == "json") {
            files.push(entry);
        }
    }
    Ok(())
}

/// The two sides ran the same scenario with as many devices.
fn same_experiment(baseline: &[RunResult], current: &[RunResult]) -> anyhow::Result<()> {
    let key = |result: &RunResult| (result.scenario.clone(), result.fleet.devices);
    let first = key(&baseline[0]);
    for result in baseline.iter().chain(current) {
        let other = key(result);
        if other != first {
            anyhow::bail!(
                "different experiments: scenario {:?} with {} devices, and {:?} with {}",
                first.0,
                first.1,
                other.0,
                other.1
            );
        }
    }
    Ok(())
}

/// The flags over the current side's `[compare]` over the defaults.
fn tolerances(args: &CompareArgs, current: &[RunResult]) -> anyhow::Result<Tolerances> {
    let from_scenario = Scenario::parse(&current[0].scenario_text, "the current run's scenario")
        .context("its [compare] tolerances cannot be read")?
        .compare;
    let mut tolerances = from_scenario.unwrap_or_default();
    for (flag, tolerance) in [
        (args.memory_tolerance, &mut tolerances.memory),
        (args.heap_tolerance, &mut tolerances.heap),
        (args.device_tolerance, &mut tolerances.device),
        (args.kernel_tolerance, &mut tolerances.kernel),
        (args.min_effect, &mut tolerances.min_effect),
    ] {
        if let Some(share) = flag {
            *tolerance = share;
        }
    }
    if let Some(alpha) = args.alpha {
        tolerances.alpha = alpha;
    }
    tolerances.check()?;
    Ok(tolerances)
}

fn figures_of(results: &[RunResult]) -> Side {
    let mut side = Side::new();
    for result in results {
        add_run(&mut side, result);
    }
    side
}

/// Every figure of either side judged; a figure on one side only cannot be compared,
/// except the ratios to a floor that was unusable on one side, or that an older run did
/// not measure (inconclusive).
fn judge_all(
    baseline: &Side,
    current: &Side,
    tolerances: &Tolerances,
) -> anyhow::Result<Vec<Judgement>> {
    let mut names: Vec<&'static str> = baseline.keys().chain(current.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    let mut judgements = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match (baseline.get(name), current.get(name)) {
            (Some(base), Some(cur)) => judgements.push(judge(name, base, cur, tolerances)),
            (base, cur) if FLOOR_FIGURES.contains(&name) => {
                let present = base.or(cur).expect("on one side at least");
                let mut judgement = judge(name, present, present, tolerances);
                judgement.verdict = Verdict::Inconclusive;
                judgement.reason = match DEPARTURE_FIGURES.contains(&name) {
                    true => "on one side only (a floor unusable, or an older run)".into(),
                    false => "the floor was unusable on one side".into(),
                };
                judgements.push(judgement);
            }
            (None, _) => missing.push(format!("{name} (not in the baseline)")),
            (_, None) => missing.push(format!("{name} (not in the current runs)")),
        }
    }
    if !missing.is_empty() {
        anyhow::bail!("missing figures: {}", missing.join(", "));
    }
    for judgement in &mut judgements {
        judgement.gated = tolerances.not_a_gate.is_none()
            && !tolerances
                .not_gated
                .iter()
                .any(|name| name == judgement.figure);
    }
    Ok(judgements)
}

/// Runs the scenario with each binary alternately, `rounds` times; the two directories.
fn run_ab(
    args: &CompareArgs,
    base: &Path,
    current: &Path,
    scenario: &Path,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let scenario = std::fs::canonicalize(scenario)
        .with_context(|| format!("cannot find scenario {}", scenario.display()))?;
    let sides = [("base", base), ("current", current)];
    for (_, binary) in sides {
        if !binary.is_file() {
            anyhow::bail!("{} is not a pingfleet binary", binary.display());
        }
    }
    for round in 1..=args.rounds {
        for (side, binary) in sides {
            let dir = args.ab_output.join(side).join(format!("round-{round}"));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            eprintln!(
                "--ab round {round}/{}: {side} ({})",
                args.rounds,
                binary.display()
            );
            let status = Command::new(std::fs::canonicalize(binary)?)
                .arg("run")
                .arg(&scenario)
                .current_dir(&dir)
                .stdout(std::process::Stdio::null())
                .status()
                .with_context(|| format!("cannot start {}", binary.display()))?;
            // 1 is a threshold that failed: the figures are still there to compare.
            if !matches!(status.code(), Some(0 | 1)) {
                anyhow::bail!("{side} run {round} could not complete ({status})");
            }
        }
    }
    Ok((args.ab_output.join("base"), args.ab_output.join("current")))
}

fn describe(input: &Path, results: &[RunResult]) -> String {
    let short = results[0]
        .git_commit
        .as_deref()
        .map_or("unknown commit", |commit| {
            commit.get(..10).unwrap_or(commit)
        });
    match results.len() {
        1 => format!("{} ({short})", input.display()),
        runs => format!("{} ({runs} runs, {short})", input.display()),
    }
}

fn format_value(value: f64, unit: &str) -> String {
    match unit {
        "x" => format!("{value:.2}x"),
        "" => format!("{value:.0}"),
        unit => format!("{value:.0} {unit}"),
    }
}

fn format_change(judgement: &Judgement) -> (String, String) {
    let effect = match judgement.effect.is_finite() {
        true => format!("{:+.1}%", judgement.effect * 100.0),
        false => "-".into(),
    };
    let interval = judgement
        .interval
        .filter(|(low, high)| low.is_finite() && high.is_finite())
        .map_or(String::new(), |(low, high)| {
            format!("{:+.1}% .. {:+.1}%", low * 100.0, high * 100.0)
        });
    (effect, interval)
}

fn headline(regressions: usize, judgements: &[Judgement]) -> String {
    let count = |verdict: Verdict| judgements.iter().filter(|j| j.verdict == verdict).count();
    let ungated = judgements
        .iter()
        .filter(|j| j.verdict == Verdict::Regression && !j.gated)
        .count();
    format!(
        "{regressions} gated regression(s), {ungated} regression(s) not gated, {} improvement(s), {} no change, {} inconclusive",
        count(Verdict::Improvement),
        count(Verdict::NoChange),
        count(Verdict::Inconclusive)
    )
}

/// What the `change` column of a latency is, when the table has one judged second by
/// second: its figures are each run's whole-hold figure, its change is not their ratio.
fn change_note(judgements: &[Judgement]) -> Option<&'static str> {
    judgements.iter().any(|j| j.interval.is_some()).then_some(
        "baseline and current: each side's figure as its runs printed it; change and \
         interval of a latency: the median of each second of the hold against the other \
         side's, which is what the test judges (so they can differ from the two figures' ratio)",
    )
}

fn print_table(sides: &(String, String), judgements: &[Judgement], regressions: usize) {
    println!("baseline: {}\ncurrent:  {}", sides.0, sides.1);
    println!(
        "{:<40} {:>14} {:>14} {:>9} {:>20}  verdict",
        "figure", "baseline", "current", "change", "95% interval"
    );
    for judgement in judgements {
        let (effect, interval) = format_change(judgement);
        println!(
            "{:<40} {:>14} {:>14} {:>9} {:>20}  {} ({}){}",
            judgement.figure,
            format_value(judgement.baseline, judgement.unit),
            format_value(judgement.current, judgement.unit),
            effect,
            interval,
            judgement.verdict.words(),
            judgement.reason,
            if judgement.gated { "" } else { ", not gated" }
        );
    }
    println!("{}", headline(regressions, judgements));
    if let Some(note) = change_note(judgements) {
        println!("{note}");
    }
}

fn print_markdown(sides: &(String, String), judgements: &[Judgement], regressions: usize) {
    let mark = if regressions > 0 {
        ":x:"
    } else {
        ":white_check_mark:"
    };
    println!(
        "### pingfleet compare {mark} {}\n",
        headline(regressions, judgements)
    );
    println!("Baseline `{}`, current `{}`.\n", sides.0, sides.1);
    println!("| figure | baseline | current | change | 95% interval | verdict |");
    println!("|---|---:|---:|---:|---:|---|");
    for judgement in judgements {
        let (effect, interval) = format_change(judgement);
        let verdict = match judgement.verdict {
            Verdict::Regression => "**regression**",
            other => other.words(),
        };
        println!(
            "| `{}` | {} | {} | {effect} | {interval} | {verdict} ({}){} |",
            judgement.figure,
            format_value(judgement.baseline, judgement.unit),
            format_value(judgement.current, judgement.unit),
            judgement.reason,
            if judgement.gated { "" } else { ", not gated" }
        );
    }
    // A blank line ends the table: what follows is not one of its rows.
    println!();
    if let Some(note) = change_note(judgements) {
        println!("{note}\n");
    }
}

fn print_json(
    sides: &(String, String),
    tolerances: &Tolerances,
    judgements: &[Judgement],
    regressions: usize,
) -> anyhow::Result<()> {
    let finite = |value: f64| value.is_finite().then_some(value);
    let rows: Vec<serde_json::Value> = judgements
        .iter()
        .map(|j| {
            serde_json::json!({
                "figure": j.figure,
                "unit": j.unit,
                "baseline": finite(j.baseline),
                "current": finite(j.current),
                "effect": finite(j.effect),
                "interval": j.interval.and_then(|(low, high)| Some([finite(low)?, finite(high)?])),
                "p_value": j.p_value,
                "samples": [j.samples.0, j.samples.1],
                "verdict": j.verdict,
                "gated": j.gated,
                "reason": j.reason,
            })
        })
        .collect();
    let document = serde_json::json!({
        "baseline": sides.0,
        "current": sides.1,
        "tolerances": tolerances,
        "regressions": regressions,
        "figures": rows,
    });
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}
