//! The README as a new user reads it: every `pingfleet ...` command it shows parses
//! as the binary parses it, every `pingfleet run` of a shipped scenario gives a plan
//! with `--plan`, and its scenario file example is a valid scenario.

use clap::Parser as _;
use pingfleet::cli::{Cli, Command};

const README: &str = include_str!("../../README.md");

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
        let command = line[at..].split(" && ").next().unwrap_or("").trim();
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
            command: Command::Run(args),
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
    let start = README
        .find("```toml\nname = \"mine\"")
        .expect("the example")
        + 8;
    let end = start + README[start..].find("```").unwrap();
    let scenario = pingfleet::scenario::Scenario::parse(&README[start..end], "README")
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(scenario.name, "mine");
}
