//! `pingfleet run` when its processes are killed, stopped and interrupted: a partition
//! or a worker killed mid-hold, a partition frozen and thawed, Ctrl-C while children
//! start and during the hold, the orchestrator itself killed. Every case ends with an
//! exit code that says so, a result that says why (schema-valid), and no child left.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pingfleet::results::run::RunResult;

/// A run of 20 plain devices with a long hold, started in `dir`.
struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Run {
    fn start(dir: &Path, hold: &str) -> Self {
        let scenario = dir.join("chaos.toml");
        std::fs::write(
            &scenario,
            format!(
                "name = \"chaos\"\noutput = \"out\"\n[server]\npartitions = 1\nmin_heartbeat = \"1s\"\n\
                 [devices]\ncount = 20\nheartbeat = \"3s\"\nworkers = 1\n[stages]\nhold = \"{hold}\"\n\
                 drain = \"3s\"\n[injector]\nrate = 20\n[thresholds]\nlost_notifications = [\"count==0\"]\n"
            ),
        )
        .unwrap();
        // A process group of its own, as a shell gives a job: a signal to the group
        // (Ctrl-C at a terminal, `timeout`) reaches the run and every child at once.
        let mut child = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
            .current_dir(dir)
            .args(["run", scenario.to_str().unwrap()])
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = sender.send(line);
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line of output containing `text`.
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                let found = line.contains(text);
                self.seen.push(line);
                if found {
                    return;
                }
            }
        }
        panic!("no line with {text:?}: {:#?}", self.seen);
    }

    /// The pids of the run's children (`pingfleet serve` and `pingfleet devices`).
    fn children(&self, role: &str) -> Vec<u32> {
        descendants(self.child.id(), role)
    }

    /// Waits for the run to end (at most `timeout`); its exit code and all it printed.
    fn finish(&mut self, timeout: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the run hung: {:#?}", self.seen);
            std::thread::sleep(Duration::from_millis(100));
        };
        // The readers end with the pipes.
        std::thread::sleep(Duration::from_millis(200));
        self.seen.extend(self.lines.try_iter());
        (status.code(), self.seen.join("\n"))
    }
}

impl Drop for Run {
    /// A test that failed half-way leaves no run behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Processes whose parent is `parent` and whose command line has `role` as its first
/// argument.
fn descendants(parent: u32, role: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let first_arg = cmdline.split(|byte| *byte == 0).nth(1).unwrap_or_default();
        if ppid == Some(parent) && first_arg == role.as_bytes() {
            pids.push(pid);
        }
    }
    pids
}

/// Whether a process still exists (and is no zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

/// Sends `name` to every process of the group `pgid` (what a terminal's Ctrl-C and
/// `timeout` do).
fn signal_group(pgid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    assert!(status.success());
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits until none of `pids` is alive; false after `timeout`.
fn all_gone(pids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if pids.iter().all(|pid| !alive(*pid)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The one result file in `dir/out`, checked against the schema.
fn the_result(dir: &Path) -> RunResult {
    let path = crate::run::the_result_file(dir);
    crate::run::assert_matches_the_schema(&path);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_partition_killed_in_the_hold_is_named_and_the_partial_result_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::start(dir.path(), "60s");
    run.wait_for("plateau");
    let servers = run.children("serve");
    assert_eq!(servers.len(), 1);
    signal(servers[0], "KILL");
    let (code, output) = run.finish(Duration::from_secs(40));
    assert_eq!(code, Some(2), "{output}");
    assert!(
        output.contains("[INCOMPLETE] server-0 died during the run: signal: 9 (SIGKILL)"),
        "{output}"
    );
    let result = the_result(dir.path());
    assert!(!result.complete);
    assert!(
        result.failures[0].contains("stderr:"),
        "{:?}",
        result.failures
    );
    assert!(result.thresholds.iter().all(|verdict| !verdict.judged));
}

#[test]
fn a_worker_killed_in_the_hold_is_named_and_a_result_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::start(dir.path(), "60s");
    run.wait_for("plateau");
    let servers = run.children("serve");
    let workers = run.children("devices");
    assert_eq!(workers.len(), 1);
    signal(workers[0], "KILL");
    let (code, output) = run.finish(Duration::from_secs(40));
    assert_eq!(code, Some(2), "{output}");
    assert!(
        output.contains("worker-0 failed: signal: 9 (SIGKILL)"),
        "{output}"
    );
    let result = the_result(dir.path());
    assert!(!result.complete);
    assert_eq!(result.fleet.devices, 0, "the killed worker wrote nothing");
    assert!(
        all_gone(&servers, Duration::from_secs(10)),
        "a partition outlived the run"
    );
}

#[test]
fn a_frozen_partition_thawed_in_the_hold_does_not_hang_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::start(dir.path(), "6s");
    run.wait_for("plateau");
    let server = run.children("serve")[0];
    signal(server, "STOP");
    std::thread::sleep(Duration::from_secs(2));
    signal(server, "CONT");
    let (code, output) = run.finish(Duration::from_secs(60));
    // Late notifications count as late (delivered within heartbeat + grace), not lost.
    assert!(matches!(code, Some(0) | Some(1)), "{output}");
    let result = the_result(dir.path());
    assert!(result.complete, "{:?}", result.failures);
    let counters = &result.fleet.counters;
    assert!(counters.notifications_sent > 0);
    assert_eq!(
        counters.notifications_delivered + counters.notifications_lost,
        counters.notifications_sent
    );
}

#[test]
fn ctrl_c_while_children_start_and_in_the_hold_leaves_no_child() {
    // In the hold.
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::start(dir.path(), "60s");
    run.wait_for("plateau");
    let children = [run.children("serve"), run.children("devices")].concat();
    assert_eq!(children.len(), 2);
    signal(run.child.id(), "INT");
    let (code, output) = run.finish(Duration::from_secs(40));
    assert_eq!(code, Some(2), "{output}");
    assert!(all_gone(&children, Duration::from_secs(5)), "{output}");
    assert!(!the_result(dir.path()).complete);

    // While the children start: right after the plan is printed.
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::start(dir.path(), "60s");
    run.wait_for("logs in");
    signal(run.child.id(), "INT");
    let pid = run.child.id();
    let (code, output) = run.finish(Duration::from_secs(10));
    assert_eq!(code, Some(2), "{output}");
    let left = [descendants(pid, "serve"), descendants(pid, "devices")].concat();
    assert!(all_gone(&left, Duration::from_secs(5)), "{output}");
}

#[test]
fn children_end_when_the_orchestrator_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::start(dir.path(), "60s");
    run.wait_for("plateau");
    let children = [run.children("serve"), run.children("devices")].concat();
    assert_eq!(children.len(), 2);
    signal(run.child.id(), "KILL");
    let _ = run.finish(Duration::from_secs(10));
    assert!(
        all_gone(&children, Duration::from_secs(10)),
        "orphans left: {children:?}"
    );
}

#[test]
fn a_stop_that_reaches_every_process_is_an_incomplete_unjudged_run() {
    for name in ["INT", "TERM"] {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Run::start(dir.path(), "300s");
        run.wait_for("plateau");
        std::thread::sleep(Duration::from_secs(3));
        signal_group(run.child.id(), name);
        let (code, output) = run.finish(Duration::from_secs(40));
        assert_eq!(code, Some(2), "SIG{name}: {output}");
        assert!(
            output.contains("[INCOMPLETE] stopped by a signal (Ctrl-C or SIGTERM) in the hold"),
            "{output}"
        );
        assert!(
            output.contains("[NOT JUDGED] lost_notifications count==0"),
            "{output}"
        );
        assert!(output.contains("logs kept in"), "{output}");
        let result = the_result(dir.path());
        assert!(!result.complete, "SIG{name}");
        assert!(result.thresholds.iter().all(|verdict| !verdict.judged));
        // The hold as it was: a few seconds of the planned 300.
        let (start, end) = result.hold_window_s.expect("the hold started");
        assert!(end - start < 60.0, "hold window {start}..{end}");
        // What was in flight at the stop is unfinished, not lost.
        let counters = &result.fleet.counters;
        assert_eq!(counters.notifications_lost, 0, "{output}");
        assert!(counters.notifications_delivered > 0);
        assert_eq!(
            counters.notifications_delivered + counters.notifications_unfinished_at_stop,
            counters.notifications_sent,
            "{output}"
        );
    }
}
