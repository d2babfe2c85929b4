//! `pingfleet run` as a user runs it: a whole scenario with real child processes, the
//! result file, the exit codes.

use std::process::Command;

use pingfleet::results::run::RunResult;

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
    assert_ran(output.status.code(), &stdout);
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
    // One floor, named; memory at 100 devices said to be mostly fixed cost; no radio
    // figure from a 3 s hold.
    let floors: Vec<&str> = stdout
        .lines()
        .filter(|line| line.contains("the loopback floor ") || line.starts_with("loopback floor"))
        .collect();
    assert_eq!(floors.len(), 1, "{stdout}");
    // As a ratio, or said unusable as one (a busy moment of this shared machine).
    assert!(
        floors[0].contains("loopback floor during the hold"),
        "{stdout}"
    );
    assert!(
        stdout.contains("memory per parked connection at 100 devices:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  at 100 devices these are mostly fixed cost"),
        "{stdout}"
    );
    assert!(
        stdout.contains("radio: not meaningful for a hold of 3 s"),
        "{stdout}"
    );
    assert!(!stdout.contains("an external server"), "{stdout}");
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
    assert!(
        stdout.contains("[INCOMPLETE] stopped by a signal (Ctrl-C or SIGTERM)"),
        "{stdout}"
    );
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
    assert_ran(output.status.code(), &stdout);
    let path = the_result_file(dir.path());
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A smoke run did what it was asked: exit 0, or 3 when its latency threshold was set
/// aside because other work (the tests beside it) kept the machine busy, said so.
pub(crate) fn assert_ran(code: Option<i32>, stdout: &str) {
    match code {
        Some(0) => {}
        Some(3) => assert!(
            stdout.contains("[INCONCLUSIVE] wakeup_latency") && !stdout.contains("[FAIL]"),
            "{stdout}"
        ),
        other => panic!("exit {other:?}: {stdout}"),
    }
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
            "invalid value '0' for '--devices",
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

/// `pingfleet run ARGS` in `dir`: exit code, stdout, stderr.
fn run_words(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_input_names_the_flag_or_key_with_an_example_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["run", "smoke", "--devices", "-5"],
            "tip: write --devices 5",
        ),
        (
            &["run", "smok"],
            "did you mean smoke? (pingfleet run smoke)",
        ),
        (
            &["compare", "a.json", "b.json", "--memory-tolerance", "5"],
            "tip: write --memory-tolerance 5%",
        ),
        (
            &["run", "smoke", "--devices", "100000000", "--plan"],
            "--devices 100000000: more devices than one run holds here",
        ),
    ];
    for (args, words) in cases {
        let (code, _, stderr) = run_words(dir.path(), args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
        assert!(!stderr.contains("invalid digit"), "{args:?}: {stderr}");
    }
    // The fleet suggested for 100,000,000 devices is one the plan takes.
    let (_, _, stderr) = run_words(dir.path(), &["run", "smoke", "--devices", "100000000"]);
    let example = stderr
        .split("the largest this scenario runs here: --devices ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no example: {stderr}"));
    let (code, plan, stderr) = run_words(
        dir.path(),
        &["run", "smoke", "--devices", example, "--plan"],
    );
    assert_eq!(code, Some(0), "--devices {example}: {plan}{stderr}");
    // So is the larger one it suggests with more processes than smoke's file fixes.
    let (_, _, stderr) = run_words(dir.path(), &["run", "smoke", "--devices", "100000000"]);
    let more = stderr
        .split("with more processes than the file fixes, up to ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no larger example: {stderr}"));
    let mut words = vec!["run", "smoke", "--plan"];
    words.extend(more.split_whitespace());
    let (code, plan, stderr) = run_words(dir.path(), &words);
    assert_eq!(code, Some(0), "{words:?}: {plan}{stderr}");
    // A count the scenario fixes is answered with a flag that exists.
    let (code, _, stderr) = run_words(dir.path(), &["run", "smoke", "--devices", "40000"]);
    assert_eq!(code, Some(2), "{stderr}");
    let fix = stderr
        .split("(use ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no fix: {stderr}"));
    let mut words = vec!["run", "smoke", "--devices", "40000", "--plan"];
    words.extend(fix.split(' '));
    let (code, plan, stderr) = run_words(dir.path(), &words);
    assert_eq!(code, Some(0), "{words:?}: {plan}{stderr}");
    // A negative count in a scenario file: the key and a value that works.
    let negative = dir.path().join("negative.toml");
    std::fs::write(&negative, "name = \"n\"\n[devices]\ncount = -3\n").unwrap();
    let (code, _, stderr) = run_words(dir.path(), &["run", negative.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "negative.toml:3:9: count = -3: write a whole number, not negative, e.g. count = 3"
        ),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_of_smoke_says_what_it_stopped_in_one_line_on_stderr() {
    use std::os::unix::process::CommandExt as _;
    let dir = tempfile::tempdir().unwrap();
    // A process group of its own, as a shell gives a job: Ctrl-C reaches every process.
    let child = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .current_dir(dir.path())
        .args(["run", "smoke", "--duration", "60s"])
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(10));
    let group = format!("-{}", child.id());
    let sent = Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap();
    assert!(sent.success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr}");
    assert!(
        lines[0].starts_with("pingfleet: stopped by a signal (Ctrl-C or SIGTERM) in the "),
        "{stderr}"
    );
    // By then smoke's 200 devices have parked; the servers that the same signal ended
    // do not make them 0.
    assert!(lines[0].contains(" of 200 devices parked"), "{stderr}");
    assert!(!lines[0].contains(" 0 of 200"), "{stderr}");
    assert!(
        !stdout.contains("worker-0 failed"),
        "our own stop: {stdout}"
    );
    assert!(!stdout.contains("an external server"), "{stdout}");
}
