//! The orchestrator: starts server partitions and device workers as child processes of
//! this binary, sized to the open-file limit, samples server memory at the baseline
//! and at the plateau, waits for the workers, merges their documents, judges the
//! thresholds and writes the result file.
//!
//! Exit codes: 0 every threshold passed, 1 a threshold failed, 2 the run could not be
//! completed (a child died, nothing parked); partial results are still written.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;

use super::children::RoleProcess;
use super::result::{judge, EngineComparison, Machine, Memory, RunResult, TimelinePoint, SCHEMA};
use crate::fleet::report::WorkerReport;
use crate::measure::procfs;
use crate::scenario::{Partitions, PatternName, Scenario, DEFAULT_SCENARIO};
use crate::server::state::Engine;

/// Sockets one process may hold, with room under the 20,000 open-file limit.
const SOCKETS_PER_PROCESS: usize = 18_000;
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Flags of `pingfleet run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Scenario file (default: the built-in default scenario, also scenarios/default.toml).
    pub scenario: Option<PathBuf>,
    /// Override the number of devices.
    #[arg(long)]
    pub devices: Option<usize>,
    /// Override the hold phase, e.g. 60s.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// Serve and connect over TLS.
    #[arg(long, conflicts_with = "no_tls")]
    pub tls: bool,
    /// Plain HTTP.
    #[arg(long)]
    pub no_tls: bool,
}

/// Runs a scenario; returns the exit code.
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let fd_limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let (text, file) = match &args.scenario {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (DEFAULT_SCENARIO.to_owned(), "default (built in)".to_owned()),
    };
    let mut scenario = Scenario::parse(&text, &file)?;
    let overrides = apply_overrides(&mut scenario, &args);
    let devices = scenario.devices.count;
    let partitions = match scenario.server.partitions {
        Partitions::Count(count) => count,
        Partitions::Auto => devices.div_ceil(SOCKETS_PER_PROCESS) as u32,
    };
    let workers = devices.div_ceil(SOCKETS_PER_PROCESS).max(1) as u32;
    let dir = run_directory(&scenario)?;
    let engines = if scenario.server.compare_engines {
        vec![Engine::Lean, Engine::Hyper]
    } else {
        vec![scenario.server.engine]
    };
    println!(
        "pingfleet run {}: {devices} {} devices, {partitions} server partition(s) ({}), {workers} worker(s); logs in {}",
        scenario.name,
        if scenario.server.tls { "TLS" } else { "plain" },
        engines.iter().map(|engine| format!("{engine:?}").to_lowercase()).collect::<Vec<_>>().join(" then "),
        dir.display()
    );
    let calibration = crate::measure::calibration::loopback_floor(1000, Duration::from_micros(500))
        .ok()
        .map(|latency| latency.summary());
    if let Some(floor) = calibration {
        println!(
            "loopback floor (UDP wakes a parked TCP read, no EAS): p50 {} us, p99 {} us",
            floor.p50_us, floor.p99_us
        );
    }
    // Ctrl-C reaches every process of the group: the workers stop and report, and the
    // run keeps what they measured, marked incomplete.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, interrupted.clone())?;
    }
    let context = RunContext {
        text,
        overrides,
        fd_limit,
        calibration,
        partitions,
        workers,
        dir,
    };
    let mut results = Vec::new();
    for engine in engines {
        let mut variant = scenario.clone();
        variant.server.engine = engine;
        let mut result = measure(&variant, &context, &interrupted)?;
        if let [first] = results.as_slice() {
            result.comparison = Some(EngineComparison::between(first, &result));
        }
        result.thresholds = judge(&variant.thresholds, &result);
        let path = write_result(&variant, &result, results.len())?;
        print_summary(&result, &path);
        let stop = interrupted.load(Ordering::Relaxed);
        results.push(result);
        if stop {
            break;
        }
    }
    if let Some(comparison) = results.last().and_then(|result| result.comparison.as_ref()) {
        print_comparison(comparison);
    }
    Ok(results
        .iter()
        .map(|result| {
            if !result.complete {
                2
            } else if result.thresholds.iter().all(|verdict| verdict.passed) {
                0
            } else {
                1
            }
        })
        .max()
        .unwrap_or(2))
}

/// What every measurement of one `pingfleet run` shares.
struct RunContext {
    text: String,
    overrides: Vec<String>,
    fd_limit: u64,
    calibration: Option<crate::fleet::stats::LatencySummary>,
    partitions: u32,
    workers: u32,
    dir: PathBuf,
}

/// One measurement: servers and workers started, sampled, collected and stopped.
fn measure(
    scenario: &Scenario,
    context: &RunContext,
    interrupted: &AtomicBool,
) -> anyhow::Result<RunResult> {
    let RunContext {
        partitions,
        workers,
        ref dir,
        ..
    } = *context;
    let devices = scenario.devices.count;
    let mut failures = Vec::new();
    let mut servers = start_servers(scenario, partitions, dir)?;
    std::thread::sleep(Duration::from_millis(300));
    let slab_baseline = procfs::kernel_slab_bytes();
    let baseline: u64 = servers
        .iter()
        .filter_map(|s| procfs::rss_bytes(Some(s.process.pid())))
        .sum();
    let ca = concatenate_certificates(&servers, dir)?;
    let mut worker_processes = start_workers(scenario, &servers, workers, ca.as_deref(), dir)?;
    let started = Instant::now();
    let view = LiveView::new(devices as u64);
    let mut timeline = Vec::new();
    let mut plateau: Option<(u64, u64)> = None;
    let mut slab_plateau = None;
    let ramp_deadline = started + scenario.stages.ramp_timeout.0;
    loop {
        let parked: u64 = servers
            .iter()
            .map(|s| s.metric("pingfleet_parked_pings") as u64)
            .sum();
        let wakeups: u64 = servers
            .iter()
            .map(|s| s.metric("pingfleet_wakeups_total") as u64)
            .sum();
        let rss: u64 = servers
            .iter()
            .filter_map(|s| procfs::rss_bytes(Some(s.process.pid())))
            .sum();
        timeline.push(TimelinePoint {
            t_s: started.elapsed().as_secs_f64(),
            parked,
            wakeups,
            server_rss_bytes: rss,
        });
        // Devices whose heartbeat just ended are re-pinging at any instant, so the
        // plateau allows a sliver (0.5%) of them to be between two Pings.
        let nearly_all = devices as u64 - (devices as u64 / 200);
        if plateau.is_none()
            && (parked >= nearly_all || Instant::now() >= ramp_deadline)
            && parked > 0
        {
            std::thread::sleep(Duration::from_millis(500));
            let settled: u64 = servers
                .iter()
                .filter_map(|s| procfs::rss_bytes(Some(s.process.pid())))
                .sum();
            plateau = Some((settled, parked));
            slab_plateau = procfs::kernel_slab_bytes();
            // Every worker starts its hold now, together.
            for worker in &worker_processes {
                worker.signal("-USR1");
            }
            view.note(&format!(
                "plateau: {parked} parked, server RSS {} MiB",
                settled / (1 << 20)
            ));
        }
        let mut running = 0;
        for worker in &mut worker_processes {
            if worker.try_status().is_none() {
                running += 1;
            }
        }
        if running == 0 {
            break;
        }
        if interrupted.load(Ordering::Relaxed) {
            failures.push("interrupted: partial results".to_owned());
            for worker in &mut worker_processes {
                worker.stop(Duration::from_secs(30));
            }
            break;
        }
        if let Some(dead) = servers
            .iter_mut()
            .find_map(|s| s.process.try_status().map(|_| s.process.name.clone()))
        {
            failures.push(format!("{dead} died during the run"));
            break;
        }
        view.show(started.elapsed(), parked, wakeups, rss);
        std::thread::sleep(Duration::from_secs(1));
    }
    view.finish();
    let mut reports = Vec::new();
    for (index, worker) in worker_processes.iter_mut().enumerate() {
        let status = worker.wait()?;
        let path = dir.join(format!("worker-{index}.json"));
        match std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<WorkerReport>(&bytes).ok())
        {
            Some(report) if status.success() => reports.push(report),
            _ => {
                let why = worker.describe_failure();
                failures.push(format!("{} failed: {why}", worker.name));
            }
        }
    }
    let cpu_seconds_servers = servers
        .iter()
        .map(|server| procfs::cpu_seconds(Some(server.process.pid())))
        .sum::<Option<f64>>();
    for server in &mut servers {
        server.process.stop(Duration::from_secs(10));
    }
    if reports.is_empty() {
        anyhow::bail!("no worker produced results: {}", failures.join("; "));
    }
    let fleet = WorkerReport::merge(&reports)?;
    let memory = Memory {
        server_rss_baseline_bytes: Some(baseline),
        server_rss_plateau_bytes: plateau.map(|(rss, _)| rss),
        parked_at_plateau: plateau.map(|(_, parked)| parked),
        server_bytes_per_parked: plateau
            .filter(|(_, parked)| *parked > 0)
            .map(|(rss, parked)| rss.saturating_sub(baseline) as f64 / parked as f64),
        device_bytes_per_device: fleet
            .rss_bytes
            .map(|rss| rss as f64 / fleet.devices.max(1) as f64),
        kernel_slab_bytes_per_connection: slab_baseline
            .zip(slab_plateau)
            .zip(plateau.filter(|(_, parked)| *parked > 0))
            .map(|((before, after), (_, parked))| {
                after.saturating_sub(before) as f64 / parked as f64
            }),
    };
    Ok(RunResult {
        schema: SCHEMA.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: git_commit(),
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        engine: format!("{:?}", scenario.server.engine).to_lowercase(),
        scenario_text: context.text.clone(),
        overrides: context.overrides.clone(),
        machine: Machine::read(context.fd_limit),
        partitions,
        workers,
        complete: failures.is_empty(),
        failures,
        memory,
        calibration: context.calibration,
        cpu_seconds_servers,
        cpu_seconds_workers: fleet.cpu_seconds,
        fleet,
        timeline,
        thresholds: Vec::new(),
        comparison: None,
    })
}

/// Progress while the run goes on: a live bar on a terminal, a plain status line every
/// few seconds otherwise (logs, CI).
struct LiveView {
    bar: Option<indicatif::ProgressBar>,
    last_line: std::cell::Cell<Option<Instant>>,
}

impl LiveView {
    const LINE_EVERY: Duration = Duration::from_secs(5);

    fn new(devices: u64) -> Self {
        let bar = std::io::IsTerminal::is_terminal(&std::io::stdout()).then(|| {
            let bar = indicatif::ProgressBar::new(devices);
            let style = indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} parked  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self {
            bar,
            last_line: std::cell::Cell::new(None),
        }
    }

    fn show(&self, elapsed: Duration, parked: u64, wakeups: u64, rss: u64) {
        let message = format!("wake-ups {wakeups}  server RSS {} MiB", rss / (1 << 20));
        match &self.bar {
            Some(bar) => {
                bar.set_position(parked);
                bar.set_message(message);
            }
            None => {
                let due = self
                    .last_line
                    .get()
                    .is_none_or(|last| last.elapsed() >= Self::LINE_EVERY);
                if due {
                    self.last_line.set(Some(Instant::now()));
                    println!(
                        "t={:>5.1}s parked {parked:>6}  {message}",
                        elapsed.as_secs_f64()
                    );
                }
            }
        }
    }

    fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn apply_overrides(scenario: &mut Scenario, args: &RunArgs) -> Vec<String> {
    let mut overrides = Vec::new();
    if let Some(devices) = args.devices {
        scenario.devices.count = devices;
        overrides.push(format!("--devices {devices}"));
    }
    if let Some(duration) = args.duration {
        scenario.stages.hold.0 = duration;
        overrides.push(format!(
            "--duration {}",
            humantime::format_duration(duration)
        ));
    }
    if let Some(seed) = args.seed {
        scenario.seed = seed;
        overrides.push(format!("--seed {seed}"));
    }
    if let Some(engine) = args.engine {
        scenario.server.engine = engine;
        overrides.push(format!("--engine {engine:?}").to_lowercase());
    }
    if args.tls || args.no_tls {
        scenario.server.tls = args.tls;
        overrides.push(if args.tls { "--tls" } else { "--no-tls" }.into());
    }
    overrides
}

/// Where a run keeps its children's logs and documents.
fn run_directory(scenario: &Scenario) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "pingfleet-run-{}-{}",
        scenario.name,
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// A running server partition and its addresses.
struct ServerProcess {
    process: RoleProcess,
    http: SocketAddr,
    notify: SocketAddr,
    metrics: SocketAddr,
    cert: Option<PathBuf>,
}

impl ServerProcess {
    /// A metric of the partition's /metrics, 0 when it cannot be read.
    fn metric(&self, name: &str) -> f64 {
        let read = || -> std::io::Result<String> {
            let mut stream = TcpStream::connect_timeout(&self.metrics, Duration::from_secs(2))?;
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let mut text = String::new();
            stream.read_to_string(&mut text)?;
            Ok(text)
        };
        read()
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            })
            .unwrap_or(0.0)
    }
}

fn start_servers(
    scenario: &Scenario,
    partitions: u32,
    dir: &Path,
) -> anyhow::Result<Vec<ServerProcess>> {
    let mut servers = Vec::new();
    for index in 0..partitions {
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--partition".into(),
            format!("{index}/{partitions}"),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--notify".into(),
            "127.0.0.1:0".into(),
            "--metrics".into(),
            "127.0.0.1:0".into(),
            "--users".into(),
            scenario.devices.count.to_string(),
            "--engine".into(),
            format!("{:?}", scenario.server.engine).to_lowercase(),
            "--min-heartbeat".into(),
            scenario.server.min_heartbeat.0.as_secs().max(1).to_string(),
            "--max-heartbeat".into(),
            scenario.server.max_heartbeat.0.as_secs().to_string(),
        ];
        if scenario.server.tls {
            args.extend(["--tls".into(), "--cert-out".into()]);
            args.push(
                dir.join(format!("partition-{index}.pem"))
                    .display()
                    .to_string(),
            );
        }
        let mut process = RoleProcess::spawn(&format!("server-{index}"), &args, dir, true)?;
        let ready = process.ready_line(READY_TIMEOUT)?;
        let address = |key: &str| -> anyhow::Result<SocketAddr> {
            ready[key]
                .as_str()
                .and_then(|text| text.parse().ok())
                .context("ready line lacks an address")
        };
        servers.push(ServerProcess {
            http: ready["http"][0]
                .as_str()
                .and_then(|text| text.parse().ok())
                .context("ready line lacks http")?,
            notify: address("notify")?,
            metrics: address("metrics")?,
            cert: ready["tls_cert"].as_str().map(PathBuf::from),
            process,
        });
    }
    Ok(servers)
}

/// One PEM file trusted by the workers, holding every partition's certificate.
fn concatenate_certificates(
    servers: &[ServerProcess],
    dir: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    let certs: Vec<&PathBuf> = servers
        .iter()
        .filter_map(|server| server.cert.as_ref())
        .collect();
    if certs.is_empty() {
        return Ok(None);
    }
    let mut pem = String::new();
    for cert in certs {
        pem.push_str(&std::fs::read_to_string(cert)?);
    }
    let path = dir.join("partitions.pem");
    std::fs::write(&path, pem)?;
    Ok(Some(path))
}

fn start_workers(
    scenario: &Scenario,
    servers: &[ServerProcess],
    workers: u32,
    ca: Option<&Path>,
    dir: &Path,
) -> anyhow::Result<Vec<RoleProcess>> {
    let scheme = if scenario.server.tls { "https" } else { "http" };
    let devices = &scenario.devices;
    let mut processes = Vec::new();
    for index in 0..workers {
        let mut args: Vec<String> = vec![
            "devices".into(),
            "--route-by-partition".into(),
            "--wait-for-start".into(),
        ];
        for server in servers {
            args.extend(["--target".into(), format!("{scheme}://{}", server.http)]);
            args.extend(["--notify".into(), server.notify.to_string()]);
        }
        if let Some(ca) = ca {
            args.extend(["--ca".into(), ca.display().to_string()]);
        }
        args.extend([
            "--devices".into(),
            devices.count.to_string(),
            "--shard".into(),
            format!("{index}/{workers}"),
            "--heartbeat".into(),
            devices.heartbeat.0.as_secs().max(1).to_string(),
            "--heartbeat-jitter".into(),
            devices.heartbeat_jitter.0.as_secs().to_string(),
            "--connect-rate".into(),
            (devices.connect_rate / f64::from(workers)).to_string(),
            "--duration".into(),
            format!("{}ms", scenario.stages.hold.0.as_millis()),
            "--drain".into(),
            format!("{}ms", scenario.stages.drain.0.as_millis()),
            "--ramp-timeout".into(),
            format!("{}ms", scenario.stages.ramp_timeout.0.as_millis()),
            "--rate".into(),
            (scenario.injector.rate / f64::from(workers)).to_string(),
            "--pattern".into(),
            match scenario.injector.pattern {
                PatternName::Fixed => "fixed",
                PatternName::Poisson => "poisson",
                PatternName::Burst => "burst",
            }
            .into(),
            "--burst-percent".into(),
            scenario.injector.burst_percent.to_string(),
            "--burst-window".into(),
            format!("{}ms", scenario.injector.burst_window.0.as_millis()),
            "--seed".into(),
            scenario.seed.wrapping_add(u64::from(index)).to_string(),
            "--output".into(),
            dir.join(format!("worker-{index}.json"))
                .display()
                .to_string(),
        ]);
        for folder in &devices.folders {
            args.extend(["--folder".into(), folder.clone()]);
        }
        for (flag, on) in [
            ("--empty-reping", devices.empty_reping),
            ("--close-per-ping", devices.close_per_ping),
            ("--no-provision", !devices.provision),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        processes.push(RoleProcess::spawn(
            &format!("worker-{index}"),
            &args,
            dir,
            false,
        )?);
    }
    Ok(processes)
}

fn git_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Writes `results/<name>[-<engine>]-<UTC time>.json` (the engine named when a run
/// compares engines, `index` > 0 or the scenario asks for it).
fn write_result(scenario: &Scenario, result: &RunResult, index: usize) -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from(&scenario.output);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    let name = if scenario.server.compare_engines || index > 0 {
        format!("{}-{}", scenario.name, result.engine)
    } else {
        scenario.name.clone()
    };
    let path = dir.join(format!("{name}-{stamp}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(result)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn print_summary(result: &RunResult, path: &Path) {
    let fleet = &result.fleet;
    let counters = &fleet.counters;
    println!();
    println!(
        "devices {} bootstrapped {} | notifications sent {} delivered {} lost {} | requests {} errors {}",
        fleet.devices,
        fleet.devices_bootstrapped,
        counters.notifications_sent,
        counters.notifications_delivered,
        counters.notifications_lost,
        counters.requests.values().sum::<u64>(),
        counters.errors.values().sum::<u64>()
    );
    for name in [
        "wakeup_latency_us",
        "mail_on_device_latency_us",
        "event_loop_lag_us",
    ] {
        if let Some(doc) = fleet.histograms.get(name) {
            let s = doc.summary;
            println!(
                "{name:<26} p50 {:>7} us  p90 {:>7} us  p99 {:>7} us  p99.9 {:>7} us  max {:>8} us",
                s.p50_us, s.p90_us, s.p99_us, s.p999_us, s.max_us
            );
        }
    }
    if let (Some(floor), Some(wakeup)) = (
        result.calibration,
        fleet.histograms.get("wakeup_latency_us"),
    ) {
        println!(
            "wake-up p50 is {:.1}x the loopback floor ({} us), p99 {:.1}x ({} us)",
            wakeup.summary.p50_us as f64 / floor.p50_us.max(1) as f64,
            floor.p50_us,
            wakeup.summary.p99_us as f64 / floor.p99_us.max(1) as f64,
            floor.p99_us
        );
    }
    let per_parked = result
        .memory
        .server_bytes_per_parked
        .map_or("not measured".to_owned(), |bytes| {
            format!("{bytes:.0} bytes")
        });
    println!("server memory per parked connection (user space): {per_parked}");
    if let Some(kernel) = result.memory.kernel_slab_bytes_per_connection {
        println!(
            "kernel slab growth per parked connection (both loopback ends): {kernel:.0} bytes"
        );
    }
    for verdict in &result.thresholds {
        let observed = verdict
            .observed
            .map_or("n/a".to_owned(), |value| format!("{value:.1}"));
        println!(
            "[{}] {} {} (observed {observed})",
            if verdict.passed { "PASS" } else { "FAIL" },
            verdict.metric,
            verdict.condition
        );
    }
    for failure in &result.failures {
        println!("[INCOMPLETE] {failure}");
    }
    println!("results: {}", path.display());
}

fn print_comparison(comparison: &EngineComparison) {
    let figure = |value: Option<f64>, unit: &str| {
        value.map_or("n/a".to_owned(), |value| format!("{value:.0} {unit}"))
    };
    println!();
    println!(
        "{:<8} {:>24} {:>18} {:>18}",
        "engine", "server bytes per parked", "wake-up p99", "device RSS/device"
    );
    for side in [&comparison.lean, &comparison.hyper] {
        println!(
            "{:<8} {:>24} {:>18} {:>18}",
            side.engine,
            figure(side.server_bytes_per_parked, "B"),
            figure(side.wakeup_p99_us, "us"),
            figure(side.device_bytes_per_device, "B")
        );
    }
    let ratio = |value: Option<f64>| value.map_or("n/a".to_owned(), |value| format!("{value:.2}x"));
    println!(
        "hyper / lean: memory per parked Ping {}, wake-up p99 {}",
        ratio(comparison.memory_ratio),
        ratio(comparison.wakeup_p99_ratio)
    );
}
