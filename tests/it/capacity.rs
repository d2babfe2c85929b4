//! The capacity search as a user runs it: real runs at each step, the result file
//! checked against its schema, the fits and the knee; and a search against a server
//! that cannot take more than a given number of devices stops at the right step.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use pingfleet::results::capacity::CapacityResult;
use pingfleet::results::capacity_fit::Limit;
use pingfleet::server::launch::ServeArgs;
use pingfleet::server::process::ServerHandle;

const SEARCH: &str = r#"name = "search"
seed = 5
output = "out"
[server]
engine = "lean"
tls = false
[devices]
count = 100
heartbeat = "60s"
folders = ["5"]
[stages]
ramp_timeout = "15s"
hold = "3s"
drain = "2s"
[injector]
pattern = "fixed"
rate = 20
[capacity]
steps = [100, 200, 300]
[thresholds]
lost_notifications = ["count==0"]
errors = ["count==0"]
"#;

/// Runs `pingfleet run FILE` in `dir` with `text` as the scenario; exit code and stdout.
fn run(dir: &Path, text: &str) -> (Option<i32>, String) {
    let file = dir.join("search.toml");
    std::fs::write(&file, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .current_dir(dir)
        .args(["run", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.code(), format!("{stdout}\n{stderr}"))
}

/// The result file, read and checked against `schemas/capacity.schema.json`.
fn the_search_result(dir: &Path, printed: &str) -> CapacityResult {
    crate::util::checked_result(dir, printed, "capacity.schema.json")
}

#[test]
fn a_three_step_search_fits_memory_and_says_the_answer() {
    let _busy = crate::util::busy_machine();
    let dir = tempfile::tempdir().unwrap();
    let (code, printed) = run(dir.path(), SEARCH);
    assert_eq!(code, Some(0), "{printed}");
    let result = the_search_result(dir.path(), &printed);
    let devices: Vec<usize> = result.steps.iter().map(|step| step.devices).collect();
    assert_eq!(devices, [100, 200, 300]);
    for step in &result.steps {
        assert!(step.passed, "{step:?}");
        let parked = step.parked.expect("a plateau") as f64;
        assert!(parked >= step.devices as f64 * 0.95, "{step:?}");
        // The rate per device is the scenario's: 20/s for 100 devices.
        assert!((step.rate_per_s - step.devices as f64 / 5.0).abs() < 1e-9);
        assert!(dir.path().join(step.result_file.as_ref().unwrap()).exists());
    }
    let fit_of = |component: &str| {
        let fit = result.fits.iter().find(|fit| fit.component == component);
        fit.unwrap().line.expect("three steps fit a line")
    };
    assert_eq!(fit_of("server_rss").points, 3);
    // A parked connection costs the server under 2 KB, so 200 more devices move its RSS
    // less than the allocator's arenas and the pages touched at random do: the RSS slope
    // over these small steps is noise. The live heap counts the connections' bytes only.
    let heap = fit_of("server_heap");
    assert_eq!(heap.points, 3);
    assert!(heap.bytes_per_device > 0.0, "{heap:?}");
    assert_eq!(result.knee.holds_devices, Some(300));
    assert_eq!(result.knee.limit, Limit::Steps);
    assert!(
        result.answer.starts_with("lean plain on "),
        "{}",
        result.answer
    );
    assert!(
        printed.contains(&format!("answer: {}", result.answer)),
        "{printed}"
    );
}

#[test]
fn a_server_that_takes_150_devices_stops_the_search_at_200_and_bisection_finds_150() {
    let _busy = crate::util::busy_machine();
    let dir = tempfile::tempdir().unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_pingfleet"));
    let mut args = ServeArgs::defaults();
    args.listen = vec!["127.0.0.1:0".parse().unwrap()];
    args.notify = "127.0.0.1:0".parse().unwrap();
    args.users = 150;
    args.server.min_heartbeat = pingfleet::units::Span::from_secs(1);
    let mut server =
        ServerHandle::spawn(exe, &args, Stdio::null(), Duration::from_secs(30)).unwrap();
    let notify = format!(
        "exec:{} notify --to {} --user {{user}} --folder {{folder}}",
        exe.display(),
        server.notify()
    );
    let text = SEARCH
        .replace("[server]\nengine = \"lean\"\ntls = false\n", "")
        .replace("steps = [100, 200, 300]", "steps = [100, 200]\nbisect = 2")
        .replace("rate = 20", "rate = 5")
        .replace(
            "[capacity]",
            &format!(
                "[target]\nurl = \"http://{}\"\ninject = [{notify:?}]\n\n[capacity]",
                server.http()
            ),
        );
    let (code, printed) = run(dir.path(), &text);
    server.terminate(Duration::from_secs(5));
    assert_eq!(code, Some(0), "a step passed: {printed}");
    let result = the_search_result(dir.path(), &printed);
    // 200 failed; the bisection tried 150 (held) and 176 (failed), and the steps are
    // kept in order of their devices.
    let tried: Vec<(usize, bool)> = result
        .steps
        .iter()
        .map(|step| (step.devices, step.passed))
        .collect();
    assert_eq!(
        tried,
        [(100, true), (150, true), (176, false), (200, false)],
        "{printed}"
    );
    assert_eq!(result.knee.holds_devices, Some(150));
    assert_eq!(result.knee.failed_at_devices, Some(176));
    assert!(
        matches!(result.knee.limit, Limit::Errors | Limit::Incomplete),
        "{:?}",
        result.knee
    );
    // No memory of a foreign server without server_pid or server_cgroup.
    assert!(result
        .steps
        .iter()
        .all(|step| step.server_rss_bytes.is_none()));
    assert!(
        result.answer.contains("holds 150 devices"),
        "{}",
        result.answer
    );
}
