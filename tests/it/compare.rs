//! `pingfleet compare` on real runs: a run compared with itself passes; two runs of
//! unchanged code agree on memory and counts (their latencies may differ on a machine
//! busy with other tests, and are not asserted here: the statistics have unit tests); a
//! result edited to regress (memory, lost mail) is caught with exit 1; different
//! experiments cannot be compared (exit 2); a run whose self-check failed has its
//! latencies set aside (exit 3, or 1 when something else regressed); `--ab` runs two
//! builds alternately and compares them.

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

/// `result` with its self-check passed and its floor usable. The other tests share this machine, so a run
/// here may find its generator behind; what that does to a comparison is asserted on
/// purpose in `a_failed_self_check_sets_the_latencies_aside`, and the plumbing tested
/// elsewhere should not depend on it.
fn calm(result: PathBuf) -> PathBuf {
    edited(&result, &result, |v| {
        for flag in [
            "generator_saturated",
            "injector_late",
            "devices_late",
            "machine_saturated",
        ] {
            v["self_check"][flag] = false.into();
        }
        v["self_check"]["reasons"] = serde_json::json!([]);
        v["self_check"]["cause"] = "clear".into();
        // Likewise a floor found unusable as a denominator in a busy moment: the
        // ratios to it are compared here whatever the moment was.
        if v["floor"].is_object() {
            v["floor"]["usable"] = true.into();
        }
    })
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
    let base = calm(run(&dir.path().join("a")));
    let current = calm(run(&dir.path().join("b")));
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
    // The change of a latency is not the ratio of the two figures shown: it says so.
    assert!(
        out.contains("change and interval of a latency: the median of each second"),
        "{out}"
    );

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
    // The table ends with a blank line, so what follows it is no row of it.
    let after_table = md.lines().skip_while(|line| !line.starts_with("| figure"));
    let last_row = after_table.clone().find(|line| !line.starts_with('|'));
    assert_eq!(last_row, Some(""), "{md}");

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
fn a_failed_self_check_sets_the_latencies_aside() {
    let dir = tempfile::tempdir().unwrap();
    let base = calm(run(&dir.path().join("a")));
    let saturated = edited(&base, &dir.path().join("saturated.json"), |v| {
        v["self_check"]["generator_saturated"] = true.into();
        v["self_check"]["injector_late"] = true.into();
        v["self_check"]["reasons"] =
            serde_json::json!(["injector lag p99 10847 us exceeds 1000 us"]);
    });
    let (base_s, saturated_s) = (base.to_str().unwrap(), saturated.to_str().unwrap());
    let set_aside = pingfleet(&["compare", base_s, saturated_s, "--json"], dir.path());
    assert_eq!(set_aside.status.code(), Some(3), "{}", text(&set_aside));
    let stderr = String::from_utf8_lossy(&set_aside.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line says why: {stderr}");
    assert!(stderr.contains("injector lag p99 10847 us"), "{stderr}");
    let document: serde_json::Value = serde_json::from_slice(&set_aside.stdout).unwrap();
    let row = |figure: &str| {
        let rows = document["figures"].as_array().unwrap();
        rows.iter()
            .find(|row| row["figure"] == figure)
            .unwrap()
            .clone()
    };
    // A late injector is in the latencies from the plan, not in those from the
    // datagram's departure.
    for figure in ["wakeup_p50_us", "wakeup_p99_us", "wakeup_p50_over_floor"] {
        let row = row(figure);
        assert_eq!(row["verdict"], "inconclusive", "{row}");
        assert_eq!(row["gated"], false, "{row}");
        assert!(
            row["reason"].as_str().unwrap().contains("self-check"),
            "{row}"
        );
    }
    let departure = row("wakeup_from_departure_p50_over_floor");
    assert_eq!(departure["verdict"], "no_change", "{departure}");
    assert_eq!(departure["gated"], true, "{departure}");
    let memory = row("server_bytes_per_parked");
    assert_eq!(
        memory["verdict"], "no_change",
        "memory is still judged: {memory}"
    );

    // Late devices are in every latency.
    let late_devices = edited(&saturated, &dir.path().join("late-devices.json"), |v| {
        v["self_check"]["devices_late"] = true.into();
    });
    let all_aside = pingfleet(
        &["compare", base_s, late_devices.to_str().unwrap(), "--json"],
        dir.path(),
    );
    assert_eq!(all_aside.status.code(), Some(3), "{}", text(&all_aside));
    let document: serde_json::Value = serde_json::from_slice(&all_aside.stdout).unwrap();
    let rows = document["figures"].as_array().unwrap();
    let departure = rows
        .iter()
        .find(|row| row["figure"] == "wakeup_from_departure_p50_over_floor")
        .unwrap();
    assert_eq!(departure["verdict"], "inconclusive", "{departure}");

    // Something else that regressed still fails the comparison outright.
    let lost = edited(&saturated, &dir.path().join("lost.json"), |v| {
        v["fleet"]["counters"]["notifications_lost"] = 3.into();
    });
    let regressed = pingfleet(&["compare", base_s, lost.to_str().unwrap()], dir.path());
    assert_eq!(regressed.status.code(), Some(1), "{}", text(&regressed));
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
    // machine busy with other tests may differ either way, or be set aside (3).
    assert!(matches!(output.status.code(), Some(0 | 1 | 3)), "{out}");
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

#[test]
fn smoke_is_no_gate_and_its_comparison_says_so_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let smoke =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/smoke.toml"))
            .unwrap()
            .replace("name = \"smoke\"", "name = \"smoke\"\noutput = \"out\"")
            .replace("hold = \"5s\"", "hold = \"3s\"")
            // What is compared here is the run's figures; its latency threshold would
            // judge the machine, which other tests share.
            .replace("wakeup_latency = [\"p(99)<100ms\"]\n", "");
    let (code, output, _) = crate::run::run_scenario(dir.path(), &smoke);
    assert_eq!(code, Some(0), "{output}");
    let base = crate::run::the_result_file(dir.path());
    // The machine's kernel slab moved between two runs, as it does.
    let current = edited(&base, &dir.path().join("current.json"), |v| {
        let slab = &mut v["memory"]["kernel_slab_bytes_per_connection"];
        *slab = (slab.as_f64().unwrap() * 1.26).into();
    });
    let compared = pingfleet(
        &["compare", base.to_str().unwrap(), current.to_str().unwrap()],
        dir.path(),
    );
    let out = text(&compared);
    assert_eq!(compared.status.code(), Some(0), "{out}");
    assert!(out.contains("0 gated regression(s)"), "{out}");
    assert!(out.contains("smoke is not a gate"), "{out}");
    assert!(
        out.contains("kernel_slab_bytes_per_connection moves"),
        "{out}"
    );
    assert!(out.contains("pingfleet run gate"), "{out}");
    // The comparison's page says it too, and is written beside the current result,
    // not over a run's own page.
    let page = pingfleet(
        &[
            "report",
            "--baseline",
            base.to_str().unwrap(),
            current.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(page.status.code(), Some(0), "{}", text(&page));
    let html = std::fs::read_to_string(dir.path().join("current-compare.html")).unwrap();
    assert!(
        html.contains("data-not-a-gate"),
        "the page says smoke is no gate"
    );
    assert!(html.contains("smoke is not a gate"));
}
