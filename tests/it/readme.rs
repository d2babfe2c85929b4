//! The README as a new user reads it: every `pingfleet ...` command it shows parses
//! as the binary parses it, every `pingfleet run` of a shipped scenario gives a plan
//! with `--plan` that has the numbers its comment promises, the scenario table's times
//! are the ones `pingfleet scenarios` estimates, the sample output is what the summary
//! prints for the result file it came from, and the scenario file example of
//! docs/scenarios.md is a valid scenario.

use clap::Parser as _;
use pingfleet::cli::{Cli, Subcommand};

const README: &str = include_str!("../../README.md");
const SCENARIOS_DOC: &str = include_str!("../../docs/scenarios.md");

/// The `pingfleet` commands in the README's shell blocks, comments cut, one per line
/// (a pipe's right-hand side when that is where `pingfleet` is).
fn commands() -> Vec<String> {
    let mut in_shell = false;
    let mut commands = Vec::new();
    for line in README.lines() {
        if line.starts_with("```") {
            in_shell = line == "```sh";
            continue;
        }
        if !in_shell {
            continue;
        }
        let line = line.split("  #").next().unwrap_or(line).trim();
        let Some(at) = line.find("pingfleet ") else {
            continue;
        };
        let command = line[at..].split([';', '&']).next().unwrap_or("").trim();
        commands.push(command.to_owned());
    }
    commands
}

#[test]
fn every_command_in_the_readme_parses() {
    let commands = commands();
    assert!(commands.len() >= 20, "{commands:#?}");
    for command in &commands {
        let words = shlex::split(command).unwrap_or_else(|| panic!("{command}"));
        if let Err(err) = Cli::try_parse_from(&words) {
            panic!("README: `{command}` does not parse: {err}");
        }
    }
}

#[test]
fn every_run_of_a_shipped_scenario_in_the_readme_has_a_plan() {
    let mut planned = 0;
    for command in commands() {
        let mut words = shlex::split(&command).unwrap();
        words.push("--plan".to_owned());
        let Ok(Cli {
            command: Subcommand::Run(args),
        }) = Cli::try_parse_from(&words)
        else {
            continue;
        };
        let shipped = args.scenario.as_ref().is_none_or(|scenario| {
            pingfleet::scenario::catalog::shipped(&scenario.to_string_lossy()).is_some()
        });
        if !shipped {
            continue;
        }
        let code = pingfleet::orchestrator::orchestrate::run(args)
            .unwrap_or_else(|err| panic!("README: `{command} --plan`: {err:#}"));
        assert_eq!(code, 0, "{command}");
        planned += 1;
    }
    assert!(planned >= 6, "only {planned} runs planned");
}

#[test]
fn the_scenario_file_example_is_a_valid_scenario() {
    let start = SCENARIOS_DOC
        .find("```toml\nname = \"mine\"")
        .expect("the example")
        + 8;
    let end = start + SCENARIOS_DOC[start..].find("```").unwrap();
    let scenario =
        pingfleet::scenario::Scenario::parse(&SCENARIOS_DOC[start..end], "docs/scenarios.md")
            .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(scenario.name, "mine");
}

#[test]
fn the_readme_is_a_guide_not_a_reference() {
    let lines = README.lines().count();
    assert!(
        lines < 450,
        "README.md has {lines} lines: move reference to docs/"
    );
}

/// The numbers in a text as written, thousands separators dropped ("10,000" -> "10000").
fn numbers(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let joins = matches!(c, ',' | '.') && !current.is_empty();
        if c.is_ascii_digit() || (joins && chars.peek().is_some_and(char::is_ascii_digit)) {
            if c != ',' {
                current.push(c);
            }
        } else if !current.is_empty() {
            found.push(std::mem::take(&mut current));
        }
    }
    found.extend((!current.is_empty()).then_some(current));
    found
}

fn pingfleet(args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "pingfleet {args:?}: {output:?}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[test]
fn every_number_a_plan_comment_promises_is_in_the_plan() {
    let mut checked = 0;
    for line in README.lines() {
        let Some((command, comment)) = line.split_once("  # ") else {
            continue;
        };
        let command = command.trim();
        if !(command.starts_with("pingfleet run ") && command.ends_with(" --plan")) {
            continue;
        }
        let words = shlex::split(command).unwrap();
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let plan = pingfleet(&args).replace(',', "");
        for number in numbers(comment) {
            assert!(
                plan.contains(&number),
                "README: `{command}` promises {number} ({comment}); the plan says:\n{plan}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} plan comments checked");
}

/// A time as the README's table or `pingfleet scenarios` writes it ("50 s",
/// "1.5 min", "~2m 14s"), in seconds.
fn seconds(text: &str) -> Option<f64> {
    let text = text.trim().trim_start_matches('~').trim();
    if let Some(minutes) = text.strip_suffix(" min") {
        return minutes.parse::<f64>().ok().map(|m| m * 60.0);
    }
    if let Some(seconds) = text.strip_suffix(" s") {
        return seconds.parse().ok();
    }
    humantime::parse_duration(text)
        .ok()
        .map(|duration| duration.as_secs_f64())
}

#[test]
fn the_scenario_table_gives_the_times_pingfleet_scenarios_estimates() {
    let listing = pingfleet(&["scenarios"]);
    let mut checked = 0;
    for row in README.lines().filter(|line| line.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`');
        let Some(listed) = listing
            .lines()
            .find(|line| line.split_whitespace().next() == Some(name))
        else {
            continue;
        };
        let readme = cells[cells.len() - 2];
        if readme == "yours" {
            continue;
        }
        let estimate = listed.split_whitespace().nth(1).unwrap_or("");
        let estimate = listed[listed.find(estimate).unwrap()..]
            .split("  ")
            .next()
            .unwrap();
        let (Some(readme_s), Some(estimate_s)) = (seconds(readme), seconds(estimate)) else {
            panic!("README's {name}: `{readme}` against `{estimate}`");
        };
        let ratio = readme_s / estimate_s;
        assert!(
            (0.75..=1.34).contains(&ratio),
            "README says {name} takes {readme}; `pingfleet scenarios` says {estimate}"
        );
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} rows checked");
}

/// The smoke run whose output the README shows, as its result file was written.
const SAMPLE_RESULT: &str = "docs/examples/smoke.json";

/// The README's sample output of `pingfleet run smoke`, line by line.
fn sample_output() -> Vec<&'static str> {
    let start = README
        .find("```text\npingfleet run smoke:")
        .expect("the sample output")
        + "```text\n".len();
    let end = start + README[start..].find("```").unwrap();
    README[start..end].lines().collect()
}

#[test]
fn the_sample_output_is_what_the_summary_prints_for_its_result_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SAMPLE_RESULT);
    let Ok(pingfleet::results::Document::Run(result)) = pingfleet::results::read(&path) else {
        panic!("{SAMPLE_RESULT} is no run's result");
    };
    let sample = sample_output();
    let results_line = sample
        .iter()
        .find_map(|line| line.strip_prefix("results: "))
        .expect("the sample names its result file");
    let summary =
        pingfleet::orchestrator::summary::summary_text(&result, std::path::Path::new(results_line));
    // Every line the summary prints for that result is in the README, in its order...
    let printed: Vec<&str> = summary.lines().filter(|line| !line.is_empty()).collect();
    let shown: Vec<&str> = sample
        .iter()
        .copied()
        .filter(|line| printed.contains(line))
        .collect();
    assert_eq!(
        shown, printed,
        "README's sample against the summary of {SAMPLE_RESULT}"
    );
    // ...and the README shows nothing else but the live lines printed before it: the
    // plan's one line, the seconds of the run, the plateau.
    for line in sample.iter().filter(|line| !line.is_empty()) {
        let live = line.starts_with("pingfleet run smoke: ")
            || line.starts_with("t=")
            || line.starts_with("plateau: ")
            || line.starts_with("report: ");
        assert!(
            live || printed.contains(line),
            "README shows `{line}`, which the summary of {SAMPLE_RESULT} does not print"
        );
    }
    assert_eq!(result.scenario, "smoke");
}
