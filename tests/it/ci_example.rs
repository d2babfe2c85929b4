//! The example CI workflow (deploy/github-actions) parses as YAML (PyYAML, which
//! `.ci/run` installs with kubernetes-validate) and every pingfleet command it runs
//! exists with the flags it passes; the files it names are in the repository.

use std::path::Path;
use std::process::Command;

const WORKFLOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/github-actions/pingfleet-gate.yml"
);

/// The workflow as JSON, through an independent YAML parser.
fn workflow() -> serde_json::Value {
    let output = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            WORKFLOW,
        ])
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn help(subcommand: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .args([subcommand, "--help"])
        .output()
        .unwrap();
    assert!(output.status.success(), "pingfleet {subcommand} exists");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_example_workflow_parses_and_calls_commands_that_exist() {
    let workflow = workflow();
    let jobs = workflow["jobs"].as_object().expect("jobs");
    assert!(jobs.contains_key("gate") && jobs.contains_key("ab"));
    let mut invocations = 0;
    for (name, job) in jobs {
        for step in job["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has steps"))
        {
            let Some(script) = step["run"].as_str() else {
                continue;
            };
            for line in script.lines().filter(|line| line.contains("pingfleet ")) {
                let words: Vec<&str> = line.split_whitespace().collect();
                let at = words
                    .iter()
                    .position(|w| w.ends_with("/pingfleet"))
                    .unwrap();
                let subcommand = words[at + 1];
                let usage = help(subcommand);
                for flag in words.iter().filter(|w| w.starts_with("--")) {
                    assert!(usage.contains(flag), "pingfleet {subcommand} takes {flag}");
                }
                for path in words
                    .iter()
                    .filter(|w| w.starts_with("scenarios/") || w.starts_with("results/baselines"))
                {
                    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
                    assert!(path.exists(), "{} exists", path.display());
                }
                invocations += 1;
            }
        }
    }
    assert_eq!(
        invocations, 4,
        "run, compare, report --baseline, compare --ab"
    );
}
