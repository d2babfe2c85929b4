//! `pingfleet compare` on real runs: a run compared with itself passes; two runs of
//! unchanged code agree on memory and counts (their latencies may differ on a machine
//! busy with other tests, and are not asserted here: the statistics have unit tests); a
//! result edited to regress (memory, lost mail) is caught with exit 1; different
//! experiments cannot be compared (exit 2); `--ab` runs two builds alternately and
//! compares them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SCENARIO: &str = r#"name = "compare-smoke"
output = "out"
[devices]
count = 300
heartbeat = "5m"
[stages]
hold = "8s"
drain = "2s"
[injector]
pattern = "poisson"
rate = 150
"#;

/// Tolerances loose enough for 300 devices on a busy machine (memory per connection
/// moves 5-10% between such small runs): this test is about the
/// plumbing and the verdicts on clear changes, not about noise (see the unit tests).
const LOOSE: [&str; 8] = [
    "--memory-tolerance",
    "50%",
    "--device-tolerance",
    "50%",
    "--kernel-tolerance",
    "100%",
    "--min-effect",
    "100%",
];

fn pingfleet(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// One run of `SCENARIO` in a directory of its own; its result file.
fn run(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let (code, output, _) = crate::run::run_scenario(dir, SCENARIO);
    assert_eq!(code, Some(0), "{output}");
    crate::run::the_result_file(dir)
}

fn edited(from: &Path, to: &Path, edit: impl Fn(&mut serde_json::Value)) -> PathBuf {
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(from).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(to, serde_json::to_vec(&value).unwrap()).unwrap();
    to.to_owned()
}

#[test]
fn a_run_passes_against_itself_and_an_edited_regression_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let base = run(&dir.path().join("a"));
    let current = run(&dir.path().join("b"));
    let (base_s, current_s) = (base.to_str().unwrap(), current.to_str().unwrap());

    let itself = pingfleet(&["compare", base_s, base_s], dir.path());
    let out = text(&itself);
    assert_eq!(itself.status.code(), Some(0), "{out}");
    for figure in [
        "server_bytes_per_parked",
        "lost_notifications",
        "wakeup_p99_us",
    ] {
        assert!(out.contains(figure), "{figure} is compared: {out}");
    }
    assert!(out.contains("0 gated regression(s)"), "{out}");

    let two = pingfleet(
        &[&["compare", base_s, current_s, "--json"][..], &LOOSE].concat(),
        dir.path(),
    );
    assert!(matches!(two.status.code(), Some(0 | 1)), "{}", text(&two));
    let document: serde_json::Value = serde_json::from_slice(&two.stdout).unwrap();
    let steady = [
        "server_bytes_per_parked",
        "device_bytes_per_device",
        "errors",
        "lost_notifications",
    ];
    for row in document["figures"].as_array().unwrap() {
        if steady.contains(&row["figure"].as_str().unwrap()) {
            assert_eq!(row["verdict"], "no_change", "{row}");
        }
    }

    let base_value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&base).unwrap()).unwrap();
    let base_server_bytes = base_value["memory"]["server_bytes_per_parked"]
        .as_f64()
        .unwrap();
    let fatter = edited(&current, &dir.path().join("fatter.json"), |v| {
        // Three times the baseline's: far beyond the loose tolerance whatever this
        // run's own memory came out at.
        v["memory"]["server_bytes_per_parked"] = (base_server_bytes * 3.0).into();
        v["fleet"]["counters"]["notifications_lost"] = 3.into();
    });
    let regressed = pingfleet(
        &[
            &["compare", base_s, fatter.to_str().unwrap(), "--json"][..],
            &LOOSE,
        ]
        .concat(),
        dir.path(),
    );
    assert_eq!(regressed.status.code(), Some(1), "{}", text(&regressed));
    let document: serde_json::Value = serde_json::from_slice(&regressed.stdout).unwrap();
    assert!(document["regressions"].as_u64().unwrap() >= 2, "{document}");
    let verdict_of = |figure: &str| {
        let figures = document["figures"].as_array().unwrap();
        let row = figures.iter().find(|row| row["figure"] == figure).unwrap();
        row["verdict"].as_str().unwrap().to_owned()
    };
    assert_eq!(verdict_of("server_bytes_per_parked"), "regression");
    assert_eq!(verdict_of("lost_notifications"), "regression");

    let markdown = pingfleet(
        &[
            &["compare", base_s, fatter.to_str().unwrap(), "--markdown"][..],
            &LOOSE,
        ]
        .concat(),
        dir.path(),
    );
    let md = text(&markdown);
    assert!(
        md.contains("| `server_bytes_per_parked` |") && md.contains("**regression**"),
        "{md}"
    );

    let other = edited(&current, &dir.path().join("other.json"), |v| {
        v["scenario"] = "another".into();
    });
    let cannot = pingfleet(&["compare", base_s, other.to_str().unwrap()], dir.path());
    assert_eq!(cannot.status.code(), Some(2), "{}", text(&cannot));
    assert!(
        text(&cannot).contains("different experiments"),
        "{}",
        text(&cannot)
    );
    let missing = pingfleet(&["compare", base_s, "/nonexistent.json"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn ab_runs_the_two_builds_alternately_and_compares_them() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(
        &scenario,
        SCENARIO.replace("hold = \"8s\"", "hold = \"6s\""),
    )
    .unwrap();
    let binary = env!("CARGO_BIN_EXE_pingfleet");
    let output = pingfleet(
        &[
            &[
                "compare",
                "--ab",
                binary,
                binary,
                scenario.to_str().unwrap(),
                "--rounds",
                "2",
                "--ab-output",
                "ab",
            ][..],
            &LOOSE,
        ]
        .concat(),
        dir.path(),
    );
    let out = text(&output);
    // The same build on both sides: no regression of memory or counts; latencies on a
    // machine busy with other tests may differ either way.
    assert!(matches!(output.status.code(), Some(0 | 1)), "{out}");
    for figure in ["server_bytes_per_parked", "lost_notifications", "errors"] {
        let line = out.lines().find(|line| line.starts_with(figure)).unwrap();
        assert!(line.contains("no change"), "{line}");
    }
    assert!(
        out.contains("round 2/2: current") && out.contains("(2 runs,"),
        "{out}"
    );
    for side in ["base", "current"] {
        for round in ["round-1", "round-2"] {
            let results = dir.path().join("ab").join(side).join(round).join("out");
            assert!(results.is_dir(), "{} has a run", results.display());
        }
    }
}
