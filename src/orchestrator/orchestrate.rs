//! The orchestrator: starts server partitions and device workers as child processes of
//! this binary, sized to the open-file limit, samples every process each second, reads
//! memory at the baseline and at the plateau, starts the holds together, waits for the
//! workers, merges their documents, judges the thresholds and writes the result file.
//!
//! Exit codes: 0 every threshold passed, 1 a threshold failed, 2 the run could not be
//! completed (a child died, nothing parked); partial results are still written.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;

use super::children::RoleProcess;
use super::live::LiveView;
use super::network::NetworkFigures;
use super::per_second::{FloorFigures, IntervalFigures};
use super::progress::WorkerProgress;
use super::result::{
    judge, DeviceHourCost, EngineComparison, Machine, Memory, RunResult, MEASURED_PLATEAU_SHARE,
    SCHEMA,
};
use super::roles::{
    concatenate_certificates, heap_of_all, start_firewalls, start_servers, start_workers,
    FirewallProcess, ServerCounts, ServerProcess,
};
use super::sampler::{cores_of, rss_of, Role, Sampler, TimelinePoint};
use super::self_check::check;
use super::server_gauge::ServerGauge;
use super::summary::{print_comparison, print_summary};
use super::sweep::{print_grid, run_sweep, write_sweep};
use crate::firewall::launch::FirewallReport;
use crate::firewall::netns::Topology;
use crate::fleet::report::WorkerReport;
use crate::measure::calibration::FloorProbe;
use crate::measure::intervals::IntervalSeries;
use crate::measure::latency::LatencySummary;
use crate::measure::procfs;
use crate::phase::Phase;
use crate::scenario::resolve::{worker_document, MachineLimits, Overrides, ResolvedScenario};
use crate::scenario::{FirewallMode, Scenario};
use crate::server::state::Engine;

/// Flags of `pingfleet run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// A shipped scenario by name (`smoke`, `default`, `gate`...: `pingfleet scenarios`
    /// lists them) or a scenario file; a file that exists wins. Default: `default`.
    pub scenario: Option<PathBuf>,
    /// Print the resolved plan (processes, device kinds, stages, expected time, memory,
    /// output paths) and exit without starting anything; a plan that would be refused
    /// gives the same error as the run.
    #[arg(long)]
    pub plan: bool,
    /// Override the number of devices.
    #[arg(long, allow_hyphen_values = true)]
    pub devices: Option<usize>,
    /// Override the hold phase, e.g. 60s.
    #[arg(long, allow_hyphen_values = true, value_parser = crate::argv::duration)]
    pub duration: Option<Duration>,
    /// Override the run's seed (every random choice follows it and each device's index).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the bundled server's connection engine: lean (mio, its own HTTP/1.1)
    /// or hyper (tokio and stock hyper).
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// Serve and connect over TLS.
    #[arg(long, conflicts_with = "no_tls")]
    pub tls: bool,
    /// Plain HTTP.
    #[arg(long)]
    pub no_tls: bool,
    /// Override the number of server partitions (server.partitions).
    #[arg(long, value_name = "K")]
    pub partitions: Option<u32>,
    /// Override the number of device workers (devices.workers); the fleet, its kinds
    /// and its notification schedule are the same for any number.
    #[arg(long, value_name = "M")]
    pub workers: Option<u32>,
    /// Keep the run's directory (each child's stderr, the workers' documents) after a
    /// complete run; an incomplete run always keeps it.
    #[arg(long)]
    pub keep_logs: bool,
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            devices: self.devices,
            duration: self.duration,
            seed: self.seed,
            engine: self.engine,
            tls: (self.tls || self.no_tls).then_some(self.tls),
            partitions: self.partitions,
            workers: self.workers,
        }
    }
}

/// Runs a scenario; returns the exit code.
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let limits = MachineLimits::read();
    let (text, file) = crate::scenario::catalog::load(args.scenario.as_deref())?;
    let plan = ResolvedScenario::resolve(&text, &file, &args.overrides(), limits)?;
    if args.plan {
        print!("{}", super::preview::describe(&plan, &file));
        return Ok(0);
    }
    let scenario = &plan.scenario;
    // Ctrl-C reaches every process of the group: the workers stop and report, and the
    // run keeps what they measured, marked incomplete. From here on Ctrl-C is honoured
    // at every step, start-up included.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, interrupted.clone())?;
    }
    let run_dir = run_directory(scenario)?;
    let dir = run_dir.path().to_path_buf();
    println!(
        "pingfleet run {}: {} {} devices, {} server partition(s) ({}), {} worker(s); logs in {}",
        scenario.name,
        scenario.devices.count,
        if scenario.server.tls { "TLS" } else { "plain" },
        plan.partitions,
        match &scenario.target {
            Some(target) => format!("none: external target {}", target.url),
            None => plan
                .engines
                .iter()
                .map(|engine| engine.name())
                .collect::<Vec<_>>()
                .join(" then "),
        },
        plan.workers,
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
    if let Some(sweep) = &scenario.sweep {
        let measure_cell = |plan: &ResolvedScenario, dir: &Path| {
            let engine = plan.servers_measured().first().copied().flatten();
            measure(plan, engine, None, dir, &interrupted, false)
        };
        let result = run_sweep(&plan, sweep, &dir, &interrupted, &measure_cell)?;
        print_grid(&result);
        let path = write_sweep(&result, &scenario.output)?;
        println!("results: {}", path.display());
        let incomplete: Vec<String> = result
            .cells
            .iter()
            .filter(|cell| !cell.complete)
            .flat_map(|cell| cell.failures.iter().cloned())
            .collect();
        for failure in &incomplete {
            println!("[INCOMPLETE] {failure}");
        }
        let complete = incomplete.is_empty() && result.cells.len() == sweep.cells().len();
        if !complete || args.keep_logs {
            println!("logs kept in {}", run_dir.keep().display());
        }
        return Ok(if complete { 0 } else { 2 });
    }
    let mut results = Vec::new();
    for engine in plan.servers_measured() {
        let mut result = measure(&plan, engine, calibration, &dir, &interrupted, true)?;
        if let [first] = results.as_slice() {
            result.comparison = Some(EngineComparison::between(first, &result));
        }
        result.thresholds = judge(&scenario.thresholds, &result);
        let path = write_result(scenario, &result, results.len())?;
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
    let code = results
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
        .unwrap_or(2);
    // The children's logs and documents stay for a run that did not complete (they say
    // why) or when asked; otherwise the directory goes with the run.
    if code == 2 || args.keep_logs {
        println!("logs kept in {}", run_dir.keep().display());
    }
    Ok(code)
}

/// How often the floor is sampled during a run: 50 a second, a few milliseconds of CPU.
const FLOOR_PROBE_GAP: Duration = Duration::from_millis(20);

/// One measurement: servers and workers started, sampled, collected and stopped.
/// With `live`, progress is shown as the run goes on.
fn measure(
    plan: &ResolvedScenario,
    engine: Option<Engine>,
    calibration: Option<LatencySummary>,
    dir: &Path,
    interrupted: &AtomicBool,
    live: bool,
) -> anyhow::Result<RunResult> {
    let scenario = &plan.scenario;
    // Removed when the measurement ends, however it ends.
    let topology = match (&scenario.firewall, plan.behind_kernel_firewall()) {
        (Some(firewall), true) => Some(Topology::create(firewall.idle_timeout.0)?),
        _ => None,
    };
    let mut servers = match engine {
        Some(engine) => {
            let servers = start_servers(plan, engine, topology.as_ref(), dir, interrupted)?;
            std::thread::sleep(Duration::from_millis(300));
            servers
        }
        None => Vec::new(),
    };
    let gauge = match &scenario.target {
        Some(target) => ServerGauge::of_target(target),
        None => ServerGauge::Processes(servers.iter().map(|s| s.process.pid()).collect()),
    };
    let baseline = Baseline::read(&gauge, &servers);
    let ca = concatenate_certificates(&servers, dir)?;
    let firewalls = start_firewalls(plan, &servers, dir, interrupted)?;
    let mut worker_processes = start_workers(
        plan,
        &servers,
        &firewalls,
        topology.as_ref(),
        ca.as_deref(),
        dir,
        interrupted,
    )?;
    // A NAT flushed: every proxy drops its flows, or the router's conntrack forgets.
    let flush_path = || {
        for firewall in &firewalls {
            firewall.process.signal("-USR1");
        }
        if let Some(topology) = &topology {
            let _ = topology.flush();
        }
    };
    let floor_probe = FloorProbe::start(FLOOR_PROBE_GAP).ok();
    let watch_started = SystemTime::now();
    let watched = watch(
        scenario,
        &mut servers,
        &mut worker_processes,
        dir,
        interrupted,
        WatchSetup {
            gauge: &gauge,
            live,
            flush_path: &flush_path,
        },
    );
    let watched_flush = watched.flushed_at_s;
    let mut failures = watched.failures;
    let reports = collect_reports(&mut worker_processes, dir, &mut failures)?;
    if interrupted.load(Ordering::Relaxed) && failures.is_empty() {
        failures.push("interrupted by a signal as the run ended: partial results".to_owned());
    }
    let cpu_seconds_servers = gauge.cpu_seconds();
    let firewall_reports: Vec<FirewallReport> = firewalls
        .into_iter()
        .filter_map(FirewallProcess::stop)
        .collect();
    for server in &mut servers {
        server.process.stop(Duration::from_secs(10));
    }
    // Without any worker's document the result still says what happened, with no
    // fleet figures (and every threshold not judged).
    let mut fleet = match reports.is_empty() {
        true => WorkerReport::empty(),
        false => WorkerReport::merge(&reports)?,
    };
    let mut series = IntervalSeries::default();
    series.add(&std::mem::take(&mut fleet.intervals))?;
    if let Some(floor_seconds) = floor_probe.and_then(|probe| probe.stop().ok()) {
        series.add(&floor_seconds)?;
    }
    let intervals = IntervalFigures::of(&series, watch_started, watched.hold_window_s);
    let wakeup = fleet
        .histograms
        .get("wakeup_latency_us")
        .map(|doc| doc.summary);
    let floor = FloorFigures::of(&series, &intervals, wakeup);
    let machine = Machine::read(plan.limits.fd_limit);
    Ok(RunResult {
        schema: SCHEMA.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: git_commit(),
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        engine,
        target: scenario.target.as_ref().map(|target| target.url.clone()),
        server_measured_from: Some(gauge.describe()),
        scenario_text: plan.text.clone(),
        overrides: plan.overrides.clone(),
        partitions: plan.partitions,
        workers: plan.workers,
        complete: failures.is_empty(),
        failures,
        memory: memory(
            &baseline,
            watched.plateau.as_ref(),
            &fleet,
            FleetShape::of(plan),
        ),
        calibration,
        floor,
        intervals,
        interval_series: series,
        cpu_seconds_servers,
        cpu_seconds_workers: fleet.cpu_seconds,
        self_check: check(
            &watched.timeline,
            watched.hold_window_s,
            machine.cores,
            &fleet,
        ),
        hold_window_s: watched.hold_window_s,
        cost_per_device_hour: DeviceHourCost::of(&fleet, scenario.time_scale),
        time_scale: scenario.time_scale,
        network: NetworkFigures::of(
            &fleet,
            scenario.firewall.as_ref(),
            &firewall_reports,
            scenario.time_scale,
        )
        .map(|mut network| {
            if let Some(flush) = &mut network.flush {
                flush.at_s = watched_flush;
            }
            network
        }),
        machine,
        fleet,
        timeline: watched.timeline,
        thresholds: Vec::new(),
        comparison: None,
    })
}

/// Every process's RSS, or `None` if one of them cannot be read (a sum missing a
/// process would be a figure nobody measured).
fn rss_of_each(pids: impl Iterator<Item = u32>) -> Option<Vec<u64>> {
    pids.map(|pid| procfs::rss_bytes(Some(pid))).collect()
}

/// Readings before any device connects.
struct Baseline {
    server_rss: Option<u64>,
    server_heap: Option<u64>,
    slab: Option<u64>,
}

impl Baseline {
    fn read(server: &ServerGauge, servers: &[ServerProcess]) -> Self {
        Self {
            server_rss: server.memory_each().map(|each| each.iter().sum()),
            server_heap: heap_of_all(servers),
            slab: procfs::kernel_slab_bytes(),
        }
    }
}

/// Readings once every device is parked.
struct Plateau {
    parked: u64,
    server_rss: Option<Vec<u64>>,
    server_heap: Option<u64>,
    worker_rss: Option<u64>,
    slab: Option<u64>,
    tcp_buffers: Option<u64>,
}

impl Plateau {
    fn read(
        parked: u64,
        (server, servers): (&ServerGauge, &[ServerProcess]),
        workers: &[RoleProcess],
    ) -> Self {
        Self {
            parked,
            server_rss: server.memory_each(),
            server_heap: heap_of_all(servers),
            worker_rss: rss_of_each(workers.iter().map(RoleProcess::pid))
                .map(|each| each.iter().sum()),
            slab: procfs::kernel_slab_bytes(),
            tcp_buffers: procfs::tcp_sockstat().map(|tcp| tcp.buffer_bytes),
        }
    }
}

/// What watching a run saw.
struct Watched {
    timeline: Vec<TimelinePoint>,
    plateau: Option<Plateau>,
    hold_window_s: Option<(f64, f64)>,
    /// Seconds since the start at which the path was flushed.
    flushed_at_s: Option<f64>,
    failures: Vec<String>,
}

impl Watched {
    /// The run stopped at `t_s` (seconds since its start) for `why`: the hold window
    /// ends there if it had not ended yet.
    fn stop_early(&mut self, t_s: f64, why: &str) {
        self.failures.push(why.to_owned());
        if let Some((start, end)) = &mut self.hold_window_s {
            *end = end.min(t_s.max(*start));
        }
    }
}

/// Samples every process each second until the workers end (or a server dies, or the
/// run is interrupted); at the plateau, reads memory and starts every worker's hold.
/// How a measurement is watched: where the server's memory is read, whether progress
/// is shown, and how to flush the path (the firewall's flush stage).
struct WatchSetup<'a> {
    gauge: &'a ServerGauge,
    live: bool,
    flush_path: &'a dyn Fn(),
}

fn watch(
    scenario: &Scenario,
    servers: &mut [ServerProcess],
    workers: &mut [RoleProcess],
    dir: &Path,
    interrupted: &AtomicBool,
    setup: WatchSetup<'_>,
) -> Watched {
    let WatchSetup {
        gauge,
        live,
        flush_path,
    } = setup;
    let flush_at = scenario
        .firewall
        .as_ref()
        .and_then(|firewall| firewall.flush_at)
        .map(|span| span.0.as_secs_f64());
    let devices = scenario.devices.count as u64;
    let hold = scenario.stages.hold.0.as_secs_f64();
    // The bundled partitions, or the external server's processes when named.
    let server_processes: Vec<(String, Role, u32)> = match (servers.is_empty(), gauge) {
        (false, _) => servers
            .iter()
            .map(|s| (s.process.name.clone(), Role::Server, s.process.pid()))
            .collect(),
        (true, ServerGauge::Processes(pids)) => pids
            .iter()
            .map(|pid| (format!("server-pid-{pid}"), Role::Server, *pid))
            .collect(),
        (true, _) => Vec::new(),
    };
    let mut sampler = Sampler::new(
        server_processes.into_iter().chain(
            workers
                .iter()
                .map(|w| (w.name.clone(), Role::Worker, w.pid())),
        ),
    );
    let started = Instant::now();
    let progress = WorkerProgress::follow(workers, dir);
    let view = match live {
        true => LiveView::new(devices),
        false => LiveView::silent(),
    };
    let ramp_deadline = started + scenario.stages.ramp_timeout.0;
    let mut watched = Watched {
        timeline: Vec::new(),
        plateau: None,
        hold_window_s: None,
        flushed_at_s: None,
        failures: Vec::new(),
    };
    loop {
        let mut counts = ServerCounts::of_all(servers);
        if servers.is_empty() {
            // An external server has no /metrics of ours: the devices that have
            // parked a Ping stand for the parked count.
            counts.parked = progress.total().bootstrapped as u64;
        }
        let (processes, kernel) = sampler.sample();
        let t_s = started.elapsed().as_secs_f64();
        let stage = match watched.hold_window_s {
            None => Phase::Ramp,
            Some((_, end)) if t_s <= end => Phase::Hold,
            Some(_) => Phase::Drain,
        };
        watched.timeline.push(TimelinePoint {
            t_s,
            stage,
            parked: counts.parked,
            notifications: counts.notifications,
            wakeups: counts.wakeups,
            server_wake_p99_us: counts.wake_p99_us,
            server_rss_bytes: rss_of(&processes, Role::Server),
            worker_rss_bytes: rss_of(&processes, Role::Worker),
            server_cpu_cores: cores_of(&processes, Role::Server),
            worker_cpu_cores: cores_of(&processes, Role::Worker),
            kernel,
            fleet: progress.total(),
            processes,
        });
        // Devices whose heartbeat just ended are re-pinging at any instant, so the
        // plateau allows a sliver (0.5%) of them to be between two Pings.
        let nearly_all = devices - devices / 200;
        if watched.plateau.is_none()
            && (counts.parked >= nearly_all || Instant::now() >= ramp_deadline)
            && counts.parked > 0
        {
            std::thread::sleep(Duration::from_millis(500));
            let plateau = Plateau::read(counts.parked, (gauge, servers), workers);
            // Every worker starts its hold now, together.
            for worker in workers.iter() {
                worker.signal("-USR1");
            }
            let start = started.elapsed().as_secs_f64();
            watched.hold_window_s = Some((start, start + hold));
            view.note(&format!(
                "plateau: {} parked, server RSS {} MiB",
                counts.parked,
                plateau.server_rss.iter().flatten().sum::<u64>() / (1 << 20)
            ));
            watched.plateau = Some(plateau);
        }
        if let (Some(offset), Some((hold_start, _)), None) =
            (flush_at, watched.hold_window_s, watched.flushed_at_s)
        {
            if t_s >= hold_start + offset {
                // The workers first: a device that reconnects at once must find its
                // worker already timing it.
                for worker in workers.iter() {
                    worker.signal("-USR2");
                }
                std::thread::sleep(Duration::from_millis(50));
                flush_path();
                watched.flushed_at_s = Some(t_s);
                view.note(&format!("flushed every flow at t={t_s:.1}s"));
            }
        }
        // A stop first: the signal that stopped the run may have reached the workers
        // too (Ctrl-C reaches the process group, `timeout` signals its group), and
        // workers that ended on it are not a run that ended.
        if interrupted.load(Ordering::Relaxed) {
            watched.stop_early(t_s, "interrupted by a signal: partial results");
            for worker in workers.iter_mut() {
                worker.stop(Duration::from_secs(30));
            }
            break;
        }
        if workers
            .iter_mut()
            .all(|worker| worker.try_status().is_some())
        {
            break;
        }
        if let Some(dead) = servers.iter_mut().find_map(|server| {
            let process = &mut server.process;
            process.try_status().is_some().then_some(process)
        }) {
            let why = dead.describe_failure();
            let name = &dead.name;
            watched.stop_early(t_s, &format!("{name} died during the run: {why}"));
            // What the workers measured so far is kept; the rest of the run would
            // measure a fleet without its server.
            for worker in workers.iter_mut() {
                worker.stop(Duration::from_secs(30));
            }
            break;
        }
        let point = watched.timeline.last().expect("pushed above");
        view.show(started.elapsed(), point);
        // One reading a second, however long the reading itself took.
        let next = Duration::from_secs(started.elapsed().as_secs() + 1);
        std::thread::sleep(next.saturating_sub(started.elapsed()));
    }
    view.finish();
    watched
}

/// Waits for every worker and reads its document. A worker without one is a failure;
/// a worker that wrote one but failed (it said why on stderr) is a failure too, and its
/// figures still count.
fn collect_reports(
    workers: &mut [RoleProcess],
    dir: &Path,
    failures: &mut Vec<String>,
) -> anyhow::Result<Vec<WorkerReport>> {
    let mut reports = Vec::new();
    for (index, worker) in workers.iter_mut().enumerate() {
        let status = worker.wait()?;
        let path = worker_document(dir, index as u32);
        let report = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<WorkerReport>(&bytes).ok());
        if !status.success() || report.is_none() {
            let why = worker.describe_failure();
            failures.push(format!("{} failed: {why}", worker.name));
        }
        reports.extend(report);
    }
    Ok(reports)
}

/// How many devices were planned and how many sockets on this machine each one's
/// connection takes (see [`Memory::sockets_per_device`]).
#[derive(Debug, Clone, Copy)]
struct FleetShape {
    planned: u64,
    sockets_per_device: u32,
}

impl FleetShape {
    fn of(plan: &ResolvedScenario) -> Self {
        let scenario = &plan.scenario;
        let sockets_per_device = match (&scenario.target, &scenario.firewall) {
            (Some(_), _) => 1,
            (None, Some(firewall)) if firewall.mode == FirewallMode::Proxy => 4,
            (None, _) => 2,
        };
        Self {
            planned: scenario.devices.count as u64,
            sockets_per_device,
        }
    }
}

/// Memory per parked connection from the baseline and plateau readings; per-parked
/// figures only when the plateau held [`MEASURED_PLATEAU_SHARE`] of the planned devices.
fn memory(
    baseline: &Baseline,
    plateau: Option<&Plateau>,
    fleet: &WorkerReport,
    shape: FleetShape,
) -> Memory {
    let plateau = plateau.filter(|plateau| plateau.parked > 0);
    let too_few =
        plateau.filter(|p| (p.parked as f64) < MEASURED_PLATEAU_SHARE * shape.planned as f64);
    let not_measured_why = too_few.map(|p| {
        format!(
            "the plateau held {} of {} planned devices (under {:.0}%)",
            p.parked,
            shape.planned,
            MEASURED_PLATEAU_SHARE * 100.0
        )
    });
    let per_parked = |bytes: u64| {
        plateau
            .filter(|_| too_few.is_none())
            .map(|p| bytes as f64 / p.parked as f64)
    };
    let server_plateau = plateau
        .and_then(|p| p.server_rss.as_ref())
        .map(|each| each.iter().sum::<u64>());
    let worker_baseline = fleet.rss_before_devices_bytes;
    let worker_plateau = plateau.and_then(|p| p.worker_rss);
    Memory {
        server_rss_baseline_bytes: baseline.server_rss,
        server_rss_plateau_bytes: server_plateau,
        server_rss_plateau_by_partition: plateau
            .and_then(|p| p.server_rss.clone())
            .unwrap_or_default(),
        parked_at_plateau: plateau.map(|p| p.parked),
        server_bytes_per_parked: server_plateau
            .zip(baseline.server_rss)
            .and_then(|(rss, before)| per_parked(rss.saturating_sub(before))),
        server_heap_baseline_bytes: baseline.server_heap,
        server_heap_plateau_bytes: plateau.and_then(|p| p.server_heap),
        server_heap_bytes_per_parked: plateau
            .and_then(|p| p.server_heap)
            .zip(baseline.server_heap)
            .and_then(|(heap, before)| per_parked(heap.saturating_sub(before))),
        worker_rss_baseline_bytes: worker_baseline,
        worker_rss_plateau_bytes: worker_plateau,
        device_bytes_per_device: worker_baseline
            .zip(worker_plateau)
            .and_then(|(before, after)| per_parked(after.saturating_sub(before))),
        kernel_slab_bytes_per_connection: baseline
            .slab
            .zip(plateau.and_then(|p| p.slab))
            .and_then(|(before, after)| per_parked(after.saturating_sub(before))),
        kernel_tcp_buffer_bytes_at_plateau: plateau.and_then(|p| p.tcp_buffers),
        sockets_per_device: shape.sockets_per_device,
        not_measured_why,
    }
}

/// Where a run keeps its children's logs and documents.
/// A fresh directory only this user can enter (never one that exists already, so no
/// planted file or symlink is written through); removed when dropped.
fn run_directory(scenario: &Scenario) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("pingfleet-run-{}-", scenario.name))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .context("cannot create the run's directory")
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
        format!(
            "{}-{}",
            scenario.name,
            result.engine.map_or("external", Engine::name)
        )
    } else {
        scenario.name.clone()
    };
    let path = dir.join(format!("{name}-{stamp}.json"));
    let log = path.with_extension("hlog");
    let mut result = result.clone();
    if !result.interval_series.by_tag.is_empty() {
        let mut text = Vec::new();
        result.interval_series.write_hlog(&mut text)?;
        std::fs::write(&log, text).with_context(|| format!("cannot write {}", log.display()))?;
        result.intervals.log = log
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
    }
    std::fs::write(&path, serde_json::to_string_pretty(&result)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn run_directories_are_fresh_and_private() {
        let default = crate::scenario::catalog::shipped("default").unwrap();
        let scenario = Scenario::parse(default.text, "default").unwrap();
        let first = run_directory(&scenario).unwrap();
        let second = run_directory(&scenario).unwrap();
        assert_ne!(first.path(), second.path(), "a directory is never reused");
        let mode = std::fs::metadata(first.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let path = first.path().to_path_buf();
        drop(first);
        assert!(!path.exists(), "removed with the run");
    }

    fn fleet() -> WorkerReport {
        serde_json::from_str(include_str!("testdata/worker.json")).expect("test document")
    }

    #[test]
    fn memory_per_parked_connection_from_baseline_and_plateau() {
        let mut fleet = fleet();
        fleet.rss_before_devices_bytes = Some(10_000_000);
        let baseline = Baseline {
            server_rss: Some(5_000_000),
            server_heap: Some(1_000_000),
            slab: Some(100_000_000),
        };
        let plateau = Plateau {
            parked: 1_000,
            server_rss: Some(vec![4_000_000, 4_000_000]),
            server_heap: Some(3_500_000),
            worker_rss: Some(12_000_000),
            slab: Some(110_000_000),
            tcp_buffers: Some(4096),
        };
        let shape = FleetShape {
            planned: 1_000,
            sockets_per_device: 2,
        };
        let read = memory(&baseline, Some(&plateau), &fleet, shape);
        assert_eq!(read.server_bytes_per_parked, Some(3_000.0));
        assert_eq!(read.server_heap_bytes_per_parked, Some(2_500.0));
        assert_eq!(read.device_bytes_per_device, Some(2_000.0));
        assert_eq!(read.kernel_slab_bytes_per_connection, Some(10_000.0));
        assert_eq!(read.server_rss_plateau_by_partition, [4_000_000, 4_000_000]);

        // A partition whose RSS could not be read: no server figure at all.
        let unread = Plateau {
            server_rss: None,
            server_heap: None,
            ..plateau
        };
        let read = memory(&baseline, Some(&unread), &fleet, shape);
        assert_eq!(read.server_bytes_per_parked, None);
        assert_eq!(read.server_heap_bytes_per_parked, None);
        assert!(read.server_rss_plateau_by_partition.is_empty());
        assert_eq!(read.device_bytes_per_device, Some(2_000.0));
        // Nothing parked: nothing per parked connection.
        assert_eq!(
            memory(&baseline, None, &fleet, shape).server_bytes_per_parked,
            None
        );
        // A plateau of 210 devices of 20,000 planned: readings kept, no per-parked
        // figure, and the reason given.
        let few = Plateau {
            parked: 210,
            ..unread
        };
        let planned = FleetShape {
            planned: 20_000,
            ..shape
        };
        let read = memory(&baseline, Some(&few), &fleet, planned);
        assert_eq!(read.device_bytes_per_device, None);
        assert_eq!(read.kernel_slab_bytes_per_connection, None);
        assert_eq!(read.parked_at_plateau, Some(210));
        assert_eq!(
            read.not_measured_why.as_deref(),
            Some("the plateau held 210 of 20000 planned devices (under 90%)")
        );
        // 90% is enough.
        let most = Plateau {
            parked: 18_000,
            ..few
        };
        let read = memory(&baseline, Some(&most), &fleet, planned);
        assert!(read.device_bytes_per_device.is_some());
        assert_eq!(read.not_measured_why, None);
    }
}
