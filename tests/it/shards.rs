//! A fleet in shards on several machines, as a Kubernetes Indexed Job runs it: the
//! shipped manifest validates against the Kubernetes schemas (the `kubernetes-validate`
//! package, offline) and its arguments are flags `pingfleet devices` takes; and the same
//! shards run here as separate processes, each starting its hold at one agreed instant,
//! merge into the document of a single worker running the whole fleet.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, SystemTime};

use pingfleet::fleet::args::DevicesArgs;
use pingfleet::fleet::report::WorkerReport;
use pingfleet::phase::Phase;

use crate::eas_client::Server;

const MANIFEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/kubernetes/pingfleet-shards.yaml"
);

fn validate(path: &Path) -> Output {
    Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict", "--quiet"])
        .arg(path)
        .output()
        .expect("kubernetes-validate (pip install kubernetes-validate; .ci/run does)")
}

#[test]
fn the_kubernetes_manifest_validates_and_runs_pingfleet_devices_flags() {
    let output = validate(Path::new(MANIFEST));
    assert!(output.status.success(), "{output:?}");
    // The check can fail: a misspelt field is refused.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(MANIFEST).unwrap();
    std::fs::write(&bad, text.replace("completionMode:", "completionMod:")).unwrap();
    let output = validate(&bad);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("completionMod"),
        "{output:?}"
    );

    // The Job's arguments, with the variables Kubernetes fills in, are devices flags.
    let script = "import json, sys, yaml\n\
        docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d['kind'] == 'Job']\n\
        print(json.dumps(docs[0]['spec']['template']['spec']['containers'][0]['args']))";
    let output = Command::new("python3")
        .args(["-c", script, MANIFEST])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let args: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|arg| {
            arg.replace("$(JOB_COMPLETION_INDEX)", "3")
                .replace("$(HOLD_AT)", "2026-12-01T10:00:00Z")
        })
        .collect();
    let parsed: DevicesArgs = pingfleet::argv::parse(&args).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(parsed.shard.to_string(), "3/4");
    assert!(parsed.hold_at.is_some());
    assert_eq!(parsed.output, Some(PathBuf::from("/results/worker-3.json")));
}

/// `pingfleet devices` for shard `shard` of a 30-device fleet, holding at `hold_at`.
fn shard(server: &Server, shard: &str, hold_at: SystemTime, output: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .arg("devices")
        .args(["--target", &format!("http://{}", server.http)])
        .args(["--notify", &server.notify.to_string()])
        .args(["--devices", "30", "--shard", shard, "--seed", "11"])
        .args([
            "--heartbeat",
            "3",
            "--rate",
            "20",
            "--duration",
            "2s",
            "--drain",
            "5s",
        ])
        .arg(format!(
            "--hold-at={}",
            humantime::format_rfc3339_millis(hold_at)
        ))
        .arg("--output")
        .arg(output)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn read(path: &Path) -> WorkerReport {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// When a worker's hold began, from its start and its ramp's length.
fn hold_began(report: &WorkerReport) -> SystemTime {
    let started = humantime::parse_rfc3339_weak(&report.started_at).unwrap();
    let ramp = report
        .stages
        .iter()
        .find(|stage| stage.name == Phase::Ramp)
        .unwrap();
    started + Duration::from_secs_f64(ramp.duration_s)
}

#[test]
fn shards_held_at_one_instant_merge_into_the_single_workers_fleet() {
    let server = Server::start("lean", &["--min-heartbeat", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let hold_at = SystemTime::now() + Duration::from_secs(4);
    let paths: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("worker-{i}.json")))
        .collect();
    let children: Vec<Child> = paths
        .iter()
        .enumerate()
        .map(|(index, path)| shard(&server, &format!("{index}/3"), hold_at, path))
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    for path in &paths {
        // Each shard held at the agreed instant, not when its own devices had parked
        // (a fraction of a second after it started).
        let began = hold_began(&read(path));
        let off = match began.duration_since(hold_at) {
            Ok(late) => late,
            Err(early) => early.duration(),
        };
        assert!(
            off < Duration::from_millis(500),
            "{path:?} held {off:?} off"
        );
    }
    let merged_path = dir.path().join("merged.json");
    let merge = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .arg("merge")
        .args(&paths)
        .arg("--output")
        .arg(&merged_path)
        .output()
        .unwrap();
    assert!(merge.status.success(), "{merge:?}");
    let merged = read(&merged_path);

    let single_path = dir.path().join("single.json");
    let mut single = shard(
        &server,
        "0/1",
        SystemTime::now() + Duration::from_secs(2),
        &single_path,
    );
    assert!(single.wait().unwrap().success());
    let single = read(&single_path);

    // The same devices (kinds, heartbeats, DeviceIds) and the same planned notifications.
    assert_eq!(merged.fleet_digest, single.fleet_digest);
    assert_eq!(merged.devices, 30);
    assert_eq!(single.devices, 30);
    let kinds = |report: &WorkerReport| -> Vec<(String, usize)> {
        report
            .profiles
            .iter()
            .map(|p| (p.name.clone(), p.devices))
            .collect()
    };
    assert_eq!(kinds(&merged), kinds(&single));
    for report in [&merged, &single] {
        let counters = &report.counters;
        assert_eq!(
            counters.notifications_sent,
            report.fleet_digest.planned_notifications
        );
        assert_eq!(
            counters.notifications_delivered,
            counters.notifications_sent
        );
        assert_eq!(counters.notifications_lost, 0);
        assert_eq!(report.devices_bootstrapped, 30);
    }
}
