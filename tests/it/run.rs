//! `pingfleet run` as a user runs it: a whole scenario with real child processes, the
//! result file, the exit codes.

use std::process::Command;

use pingfleet::orchestrator::result::RunResult;

#[test]
fn the_smoke_scenario_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("smoke.toml");
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/smoke.toml"))
            .unwrap()
            .replace("name = \"smoke\"", "name = \"smoke\"\noutput = \"out\"");
    std::fs::write(&scenario, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .current_dir(dir.path())
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--devices",
            "100",
            "--duration",
            "3s",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("[PASS] lost_notifications count==0"),
        "{stdout}"
    );
    // The result file, its interval log and the printed summary beside it.
    let mut written: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    written.sort();
    assert_eq!(written.len(), 3, "{written:?}");
    let extensions: Vec<_> = written
        .iter()
        .map(|path| path.extension().unwrap())
        .collect();
    assert_eq!(extensions, ["hlog", "json", "txt"]);
    assert!(written
        .iter()
        .all(|path| path.with_extension("json") == written[1]));
    let path = written[1].clone();
    let saved = std::fs::read_to_string(&written[2]).unwrap();
    assert!(
        stdout.contains(&saved),
        "the saved summary is not what was printed:\n{saved}"
    );
    assert!(path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("smoke-"));
    assert_matches_the_schema(&path);
    let result: RunResult = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(result.complete);
    assert_eq!(result.fleet.devices, 100);
    assert_eq!(result.overrides, vec!["--devices 100", "--duration 3s"]);
    assert!(result.fleet.counters.notifications_sent > 0);
    assert_eq!(result.fleet.counters.notifications_lost, 0);
    assert_eq!(result.memory.parked_at_plateau, Some(100));
    assert!(result.memory.server_bytes_per_parked.is_some());
    assert!(!result.timeline.is_empty());
    assert!(result.thresholds.iter().all(|verdict| verdict.passed));
    // Every process was sampled each second, and the hold was seen by the self-check.
    let names: Vec<&str> = result.timeline[0]
        .processes
        .iter()
        .map(|process| process.name.as_str())
        .collect();
    assert_eq!(names, ["server-0", "worker-0"]);
    // The workers' running figures reached the timeline (and the live view) during the run.
    assert!(result
        .timeline
        .iter()
        .any(|point| point.fleet.delivered > 0));
    assert!(result.timeline.iter().all(|point| point.fleet.lost == 0));
    assert!(result.self_check.hold_seconds_sampled >= 2);
    // Whether this busy test machine saturated the generator is not for a test to
    // say; that the verdict comes with its readings and reasons is.
    let check = &result.self_check;
    assert!(check.busiest_worker_cores.is_some() && check.injector_lag_p99_us.is_some());
    assert_eq!(
        check.generator_saturated || check.machine_saturated,
        !check.reasons.is_empty()
    );
    // The smoke scenario's three kinds of phone, each run by some of the 100 devices.
    let kinds: Vec<(&str, usize)> = result
        .fleet
        .profiles
        .iter()
        .map(|profile| (profile.name.as_str(), profile.devices))
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert_eq!(kinds.iter().map(|(_, devices)| devices).sum::<usize>(), 100);
    assert!(kinds.iter().all(|(_, devices)| *devices > 0), "{kinds:?}");
    let stages: Vec<&str> = result.fleet.stages.iter().map(|s| s.name.name()).collect();
    assert_eq!(stages, ["ramp", "hold", "drain"]);
    let hold = &result.fleet.stages[1].counters;
    assert_eq!(
        hold.notifications_sent,
        result.fleet.counters.notifications_sent
    );
    let cost = result.cost_per_device_hour.expect("a hold ran");
    assert!(cost.ping_requests > 0.0 && cost.bytes > 0.0);
    assert!(result
        .memory
        .device_bytes_per_device
        .is_some_and(|bytes| bytes > 0.0));

    // Result files of shards (here the same one twice) merge exactly.
    let merged_path = dir.path().join("merged.json");
    let merged = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .arg("merge")
        .args([&path, &path])
        .arg("-o")
        .arg(&merged_path)
        .status()
        .unwrap();
    assert!(merged.success());
    let merged: pingfleet::fleet::report::WorkerReport =
        serde_json::from_slice(&std::fs::read(&merged_path).unwrap()).unwrap();
    assert_eq!(merged.devices, 200);
    assert_eq!(
        merged.counters.notifications_delivered,
        2 * result.fleet.counters.notifications_delivered
    );
    assert_eq!(
        merged.histograms["wakeup_latency_us"].summary.count,
        2 * result.fleet.histograms["wakeup_latency_us"].summary.count
    );
    assert_eq!(
        merged.stages[1].counters.notifications_sent,
        2 * result.fleet.stages[1].counters.notifications_sent
    );
}

/// Validates a result file against the committed JSON Schema, and checks that the
/// schema does reject a document missing a required part.
/// The one result file a run in `dir` wrote (scenarios there say `output = "out"`).
pub(crate) fn the_result_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("out"))
        .expect("a result directory")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.remove(0)
}

pub(crate) fn assert_matches_the_schema(path: &std::path::Path) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/result.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut instance: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    instance.as_object_mut().unwrap().remove("memory");
    assert!(!validator.is_valid(&instance));
}

#[test]
fn a_failing_threshold_exits_1_and_a_bad_scenario_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let strict = dir.path().join("strict.toml");
    std::fs::write(
        &strict,
        "name = \"strict\"\noutput = \"out\"\n[server]\npartitions = 1\nmin_heartbeat = \"1s\"\n[devices]\ncount = 20\nheartbeat = \"5s\"\n\
         [stages]\nhold = \"1s\"\n[injector]\nrate = 20\n[thresholds]\nwakeup_latency = [\"max<1us\"]\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .current_dir(dir.path())
        .args(["run", strict.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("[FAIL] wakeup_latency max<1us"), "{stdout}");

    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "name = \"b\"\n[devices]\ncount = 10\nspeed = 3\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .args(["run", broken.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("broken.toml:4:1") && stderr.contains("speed"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_keeps_partial_results() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("long.toml");
    std::fs::write(
        &scenario,
        "name = \"long\"\noutput = \"out\"\n[server]\npartitions = 1\nmin_heartbeat = \"1s\"\n[devices]\ncount = 20\nheartbeat = \"5s\"\n\
         [stages]\nhold = \"60s\"\n[injector]\nrate = 20\n[thresholds]\nlost_notifications = [\"count==0\"]\n",
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .current_dir(dir.path())
        .args(["run", scenario.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("[INCOMPLETE] interrupted"), "{stdout}");
    // Stopping mid-hold leaves notifications in flight: the threshold is not judged.
    assert!(
        stdout.contains("[NOT JUDGED] lost_notifications count==0"),
        "{stdout}"
    );
    assert!(!stdout.contains("[FAIL]"), "{stdout}");
    let path = the_result_file(dir.path());
    assert_matches_the_schema(&path);
    let result: RunResult = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert!(!result.complete);
    assert_eq!(result.fleet.devices, 20);
    assert!(result.fleet.counters.notifications_sent > 0);
}

/// Runs the smoke scenario (1.5 s heartbeats, 120 devices) with `workers` workers in
/// its own directory and returns its result.
fn smoke_with_workers(workers: u32) -> RunResult {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("smoke.toml");
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/smoke.toml"))
            .unwrap()
            .replace("name = \"smoke\"", "name = \"smoke\"\noutput = \"out\"")
            .replace("heartbeat = \"2s\"", "heartbeat = \"1500ms\"");
    std::fs::write(&scenario, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .current_dir(dir.path())
        .args(["run", scenario.to_str().unwrap(), "--devices", "120"])
        .args(["--duration", "2s", "--workers", &workers.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let path = the_result_file(dir.path());
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn the_same_fleet_and_schedule_for_any_worker_count() {
    let results: Vec<RunResult> = [1, 2, 3].map(smoke_with_workers).into();
    let kinds = |result: &RunResult| -> Vec<(String, usize, f64)> {
        let mut kinds: Vec<_> = result
            .fleet
            .profiles
            .iter()
            .map(|kind| (kind.name.clone(), kind.devices, kind.heartbeat_s))
            .collect();
        kinds.sort_by(|a, b| a.0.cmp(&b.0));
        kinds
    };
    let one = &results[0];
    assert_eq!(one.workers, 1);
    // Every kind is there, with the scenario's fractional heartbeat unrounded.
    assert_eq!(kinds(one).len(), 3);
    assert!(kinds(one).iter().all(|(_, _, heartbeat)| *heartbeat == 1.5));
    assert!(one.fleet.fleet_digest.planned_notifications >= 150);
    assert_ne!(one.fleet.fleet_digest.devices, 0);
    for result in &results[1..] {
        assert_eq!(
            result.fleet.shard.split('+').count(),
            result.workers as usize
        );
        assert_eq!(kinds(result), kinds(one), "{} workers", result.workers);
        // Each device (index, kind, heartbeat, DeviceId) and each planned notification
        // (device, seq, planned offset) hashes into the digest: equal digests mean the
        // same fleet and the same schedule.
        assert_eq!(
            result.fleet.fleet_digest, one.fleet.fleet_digest,
            "{} workers",
            result.workers
        );
        assert_eq!(result.fleet.counters.notifications_lost, 0);
    }
}

#[test]
fn plans_that_cannot_measure_exit_2_naming_the_flag_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/smoke.toml");
    let no_workers = dir.path().join("no-workers.toml");
    let text = std::fs::read_to_string(smoke)
        .unwrap()
        .replace("count = 200", "count = 200\nworkers = 0");
    std::fs::write(&no_workers, text).unwrap();
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec![smoke, "--devices", "0"],
            "--devices 0: devices.count must be at least 1",
        ),
        (
            vec![smoke, "--duration", "-1s"],
            "invalid value '-1s' for '--duration",
        ),
        (
            vec![smoke, "--duration", "0s"],
            "--duration 0s: stages.hold",
        ),
        (
            vec![no_workers.to_str().unwrap()],
            "no-workers.toml:14:1: workers must be \"auto\" or at least 1",
        ),
    ];
    for (args, message) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
            .current_dir(dir.path())
            .arg("run")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        // Nothing was started: no result file.
        assert!(!dir.path().join("results").exists(), "{args:?}");
    }
}

/// Runs `scenario` (written into `dir`, results under `dir/out`); returns the exit
/// code, what it printed (stdout, then stderr) and the result, checked against the
/// schema.
pub(crate) fn run_scenario(
    dir: &std::path::Path,
    scenario: &str,
) -> (Option<i32>, String, RunResult) {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, scenario).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .current_dir(dir)
        .arg("run")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result_path = the_result_file(dir);
    assert_matches_the_schema(&result_path);
    let result = serde_json::from_slice(&std::fs::read(&result_path).unwrap())
        .unwrap_or_else(|err| panic!("{err}\n{stdout}\n{stderr}"));
    (output.status.code(), format!("{stdout}\n{stderr}"), result)
}
