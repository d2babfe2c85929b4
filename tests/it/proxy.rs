//! Real reverse proxies in the path: `pingfleet run` with a `[proxy]` starts Debian's
//! nginx or HAProxy before the bundled server, and the result says what the proxy's
//! timeouts cut, what its processes hold, and what a reload did. A handful of devices,
//! seconds each.

use pingfleet::results::run::RunResult;

use crate::run::run_scenario;

/// A scenario of `devices` TLS devices with `heartbeat`, a hold of `hold`, mail twice
/// a second, and the `[proxy]` given.
fn scenario(devices: u32, heartbeat: &str, hold: &str, proxy: &str) -> String {
    format!(
        "name = \"proxy-it\"\nseed = 5\noutput = \"out\"\n[server]\nengine = \"lean\"\ntls = true\n\
         min_heartbeat = \"1s\"\n[devices]\ncount = {devices}\nheartbeat = \"{heartbeat}\"\n\
         folders = [\"5\"]\n[stages]\nramp_timeout = \"20s\"\nhold = \"{hold}\"\ndrain = \"6s\"\n\
         [injector]\npattern = \"fixed\"\nrate = 2\n[proxy]\n{proxy}"
    )
}

fn run(text: &str) -> (Option<i32>, String, RunResult) {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_scenario(dir.path(), text);
    assert_no_proxy_left(dir.path());
    outcome
}

/// No nginx or HAProxy process of this run is left (their pid files name them).
fn assert_no_proxy_left(dir: &std::path::Path) {
    let pid_files = walk(dir)
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "pid"));
    for path in pid_files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let pid = text.trim();
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{} names {pid}, still running",
            path.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match path.is_dir() {
            true => found.extend(walk(&path)),
            false => found.push(path),
        }
    }
    found
}

#[test]
fn nginxs_read_timeout_cuts_parked_pings_with_a_504_and_every_mail_is_accounted_for() {
    let text = scenario(
        8,
        "6s",
        "12s",
        "kind = \"nginx\"\nproxy_read_timeout = \"2s\"\n",
    );
    let (code, words, result) = run(&text);
    assert_eq!(code, Some(0), "{words}");
    let proxy = result.proxy.as_ref().expect("a proxy section");
    assert!(proxy.as_expected(), "{proxy:?}");
    assert_eq!(proxy.cut_by, "proxy_read_timeout");
    assert_eq!(proxy.cut_after_s, Some(2.0));
    let network = result.network.as_ref().expect("a network section");
    // Each device's 6 s Ping is cut after 2 s: several times in a 12 s hold.
    assert!(network.pings_died_by_gateway >= 8, "{network:?}\n{words}");
    assert_eq!(network.pings_died_by_deadline, 0, "{words}");
    assert!(network.accounting_closes, "{network:?}");
    assert_eq!(network.lost, 0, "{words}");
    assert!(network.sent > 0 && network.late + network.on_time == network.sent);
    assert!(words.contains("answered 502/504 by a proxy"), "{words}");
    assert!(
        words.contains("a parked Ping is cut by its proxy_read_timeout after 2 s"),
        "{words}"
    );
    assert!(result.fleet.counters.http_status["504"] >= network.pings_died_by_gateway);
}

#[test]
fn haproxy_with_timeouts_above_the_heartbeat_cuts_nothing_and_its_memory_is_read() {
    let proxy = "kind = \"haproxy\"\ntimeout_client = \"30s\"\ntimeout_server = \"30s\"\n";
    let (code, words, result) = run(&scenario(8, "4s", "8s", proxy));
    assert_eq!(code, Some(0), "{words}");
    let figures = result.proxy.as_ref().expect("a proxy section");
    assert!(figures.as_expected(), "{figures:?}");
    assert_eq!(figures.cut_after_s, Some(30.0));
    let network = result.network.as_ref().expect("a network section");
    assert_eq!(
        network.pings_died_by_gateway + network.pings_died_by_close + network.pings_died_by_reset,
        0,
        "{words}"
    );
    assert_eq!(network.on_time, network.sent, "{words}");
    assert!(network.sent > 0);
    // Its processes were read before any device and at the plateau.
    let memory = &figures.memory;
    assert!(
        memory.before.pss_bytes > 0 && memory.before.processes >= 2,
        "{memory:?}"
    );
    assert_eq!(memory.parked, 8, "{memory:?}");
    assert!(
        memory.pss_per_parked_connection_bytes.is_some(),
        "{memory:?}"
    );
    assert!(words.contains("HAProxy 2.6"), "{words}");
}

/// A reload with every Ping parked: the old workers stay with their connections until
/// the bound the scenario sets, and the result times them.
fn reload_is_timed(proxy: &str, bound: &str) {
    let (code, words, result) = run(&scenario(6, "20s", "10s", proxy));
    assert_eq!(code, Some(0), "{words}");
    let figures = result.proxy.as_ref().expect("a proxy section");
    let reload = figures.reload.as_ref().expect("a reload");
    assert_eq!(reload.bound.name, bound);
    let gone = reload
        .old_gone_after_s
        .unwrap_or_else(|| panic!("{reload:?}\n{words}"));
    // Bounded at 2 s: gone after it (read once a second), well before the heartbeat.
    assert!((1.0..=6.0).contains(&gone), "{reload:?}");
    assert!(
        reload.peak.processes >= reload.before.processes,
        "{reload:?}"
    );
    let series = &figures.series;
    assert!(
        series.iter().any(|point| point.generations.len() == 2
            && point
                .generations
                .iter()
                .all(|generation| generation.processes > 0)),
        "two generations at once: {series:?}"
    );
    assert!(words.contains("proxy reload at"), "{words}");
    let network = result.network.as_ref().expect("a network section");
    assert!(
        network.accounting_closes && network.lost == 0,
        "{network:?}\n{words}"
    );
}

#[test]
fn an_nginx_reload_keeps_old_workers_until_worker_shutdown_timeout() {
    reload_is_timed(
        "kind = \"nginx\"\nproxy_read_timeout = \"1m\"\nworker_shutdown_timeout = \"2s\"\nreload_at = \"2s\"\n",
        "worker_shutdown_timeout",
    );
}

#[test]
fn a_haproxy_reload_keeps_the_old_process_until_hard_stop_after() {
    reload_is_timed(
        "kind = \"haproxy\"\ntimeout_client = \"1m\"\ntimeout_server = \"1m\"\nhard_stop_after = \"2s\"\nreload_at = \"2s\"\n",
        "hard-stop-after",
    );
}

#[test]
fn a_sweep_sets_the_proxys_read_timeout_against_the_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name = \"proxy-sweep-it\"\nseed = 6\noutput = \"out\"\n[server]\nengine = \"lean\"\n\
                tls = true\npartitions = 1\nmin_heartbeat = \"1s\"\n[devices]\ncount = 6\nworkers = 1\n\
                [stages]\nhold = \"10s\"\ndrain = \"6s\"\n[injector]\npattern = \"fixed\"\nrate = 1\n\
                [proxy]\nkind = \"nginx\"\n[sweep]\nheartbeat = [\"6s\"]\n\
                idle_timeout = [\"2s\", \"20s\"]\nparallel = 2\n";
    let path = dir.path().join("sweep.toml");
    std::fs::write(&path, text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .current_dir(dir.path())
        .arg("run")
        .arg(&path)
        .output()
        .unwrap();
    let words = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{words}");
    let result_path = crate::run::the_result_file(dir.path());
    let sweep: pingfleet::results::sweep::SweepResult =
        serde_json::from_slice(&std::fs::read(result_path).unwrap()).unwrap();
    let died = |timeout: f64| {
        let cell = (sweep.cells.iter())
            .find(|cell| cell.cell.idle_timeout_s == timeout)
            .unwrap_or_else(|| panic!("{words}"));
        let network = cell.network.as_ref().unwrap_or_else(|| panic!("{words}"));
        (network.pings_died_by_gateway, network.lost)
    };
    // A read timeout under the heartbeat cuts Pings with a 504; one above it none; the
    // mail is late, never lost, either way.
    let (cut, lost) = died(2.0);
    assert!(cut >= 6, "{words}");
    assert_eq!(lost, 0, "{words}");
    assert_eq!(died(20.0), (0, 0), "{words}");
    assert_no_proxy_left(dir.path());
}

#[test]
fn a_configuration_the_proxy_refuses_stops_the_run_in_its_words_and_keeps_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("mine.conf");
    std::fs::write(
        &own,
        "pid {pid};\nevents { worker_connections 64; }\nhttp { server { listen {listen}; \
         location / { proxy_pass http://{upstream}; no_such_directive on; } } }\n",
    )
    .unwrap();
    let text = scenario(
        2,
        "6s",
        "3s",
        &format!("kind = \"nginx\"\nconfig = {:?}\n", own),
    );
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, text.replace("tls = true", "tls = false")).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .current_dir(dir.path())
        .arg("run")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("no_such_directive"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    let kept = stdout
        .lines()
        .find_map(|line| line.strip_prefix("logs kept in "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        std::path::Path::new(kept.trim()).join("proxy-0").exists(),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(kept.trim());
    assert_no_proxy_left(dir.path());
}
