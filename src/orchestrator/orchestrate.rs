//! The orchestrator: starts server partitions and device workers as child processes of
//! this binary, sized to the open-file limit, samples every process each second, reads
//! memory at the baseline and at the plateau, starts the holds together, waits for the
//! workers, merges their documents, judges the thresholds and writes the result file.
//!
//! Exit codes: 0 every threshold passed, 1 a threshold failed, 2 the run could not be
//! completed (a child died, nothing parked); partial results are still written.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::capacity::{run_search, Search};
use super::children::RoleProcess;
use super::output::{git_commit, result_path, run_directory, run_result_path};
use super::proxies::ProxyFront;
use super::publish::{publish, write, Publication};
use super::readings::{memory, Baseline, FleetShape};
use super::roles::{
    concatenate_certificates, entry_points, start_firewalls, start_servers, start_workers,
    wake_path_of_all, FirewallProcess, LinkProcess, ServerProcess,
};
use super::self_check::check;
use super::server_gauge::ServerGauge;
use super::summary::print_comparison;
use super::sweep::run_sweep;
use super::thresholds::judge_thresholds;
use super::variants::{run_variants, Variants};
use super::watch::{collect_reports, watch, Processes, WatchSetup, Watched};
use crate::firewall::launch::FirewallReport;
use crate::firewall::netns::Topology;
use crate::fleet::report::HistogramName;
use crate::fleet::report::WorkerReport;
use crate::link::launch::LinkReport;
use crate::measure::calibration::FloorProbe;
use crate::measure::intervals::IntervalSeries;
use crate::measure::latency::LatencySummary;
use crate::results::links::LinkFigures;
use crate::results::network::NetworkFigures;
use crate::results::per_second::{FloorFigures, IntervalFigures};
use crate::results::proxy::ProxyFigures;
use crate::results::run::{DeviceHourCost, EngineComparison, Machine, RunResult, SCHEMA};
use crate::scenario::resolve::{MachineLimits, Overrides, ResolvedScenario};
use crate::scenario::sweep::SweepSection;
use crate::server::state::Engine;
use crate::server::wake_path::WakePathFigures;

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
    #[arg(long, allow_hyphen_values = true, value_parser = crate::argv::count)]
    pub devices: Option<usize>,
    /// Override the hold phase, e.g. 60s.
    #[arg(long, allow_hyphen_values = true, value_parser = crate::argv::duration)]
    pub duration: Option<Duration>,
    /// Override the run's seed (every random choice follows it and each device's index).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the bundled server's connection engine: lean (its own HTTP/1.1 on tokio)
    /// or hyper (stock hyper on tokio).
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
    /// Put every device (every kind of the mix) on this network (devices.network):
    /// none, wifi, lte, 3g, gprs or one of the scenario's [networks.NAME]; packet
    /// level with root, the middlebox's relays (delay and rate only) without, e.g.
    /// pingfleet run push-vs-poll-mobile --network 3g
    #[arg(long, value_name = "PROFILE")]
    pub network: Option<String>,
    /// Keep the run's directory (each child's stderr, the workers' documents) after a
    /// complete run; an incomplete run always keeps it.
    #[arg(long)]
    pub keep_logs: bool,
    /// Also write the run's HTML report (plots, self-contained) beside the result file
    /// and print its path (the scenario key `report = true` does the same).
    #[arg(long)]
    pub report: bool,
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
            network: self.network.clone(),
            report: self.report,
        }
    }
}

/// Runs a scenario; returns the exit code.
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let limits = MachineLimits::read();
    let (text, file) = crate::scenario::catalog::load(args.scenario.as_deref())?;
    let plan = ResolvedScenario::resolve(&text, &file, &args.overrides(), limits)?;
    if args.plan {
        print!(
            "{}",
            super::preview::describe(&plan, &file, &args.overrides())
        );
        return Ok(0);
    }
    // Ctrl-C reaches every process of the group: the workers stop and report, and the
    // run keeps what they measured, marked incomplete. From here on Ctrl-C is honoured
    // at every step, start-up included.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, interrupted.clone())?;
    }
    let run_dir = run_directory(&plan.scenario)?;
    print_plan_line(&plan, run_dir.path());
    let calibration = crate::measure::calibration::loopback_floor(1000, Duration::from_micros(500))
        .ok()
        .map(|latency| latency.summary());
    // Not printed: the summary names the floor it divides by (the hold's, or this one
    // when there was no hold).
    let outcome = || -> anyhow::Result<u8> {
        Ok(match (&plan.scenario.sweep, &plan.scenario.capacity) {
            (Some(sweep), _) => run_grid(&plan, sweep, run_dir.path(), &interrupted)?,
            (None, None) if !plan.scenario.variants.is_empty() => {
                let variants = Variants {
                    plan: &plan,
                    file: &file,
                    overrides: &args.overrides(),
                    dir: run_dir.path(),
                    interrupted: &interrupted,
                };
                run_each_variant(&variants, calibration)?
            }
            (None, Some(section)) => {
                let search = Search {
                    plan: &plan,
                    file: &file,
                    overrides: &args.overrides(),
                    section,
                    dir: run_dir.path(),
                    interrupted: &interrupted,
                };
                run_capacity(&search, calibration)?
            }
            (None, None) => run_engines(&plan, calibration, run_dir.path(), &interrupted)?,
        })
    };
    // The children's logs and documents stay for a run that did not complete or could
    // not start (they say why) or when asked; otherwise the directory goes with the run.
    let code = match outcome() {
        Ok(code) => code,
        Err(err) => {
            println!("logs kept in {}", run_dir.keep().display());
            return Err(err);
        }
    };
    if code == 2 || args.keep_logs {
        println!("logs kept in {}", run_dir.keep().display());
    }
    if interrupted.load(Ordering::Relaxed) {
        let what = super::watch::first_stop().unwrap_or("stopped by a signal while starting");
        eprintln!("pingfleet: {what}; the run is incomplete (exit 2), its result file says what it measured");
        return Ok(code.max(2));
    }
    Ok(code)
}

/// The run's first line: what runs where, and where the children's logs are.
fn print_plan_line(plan: &ResolvedScenario, dir: &Path) {
    let scenario = &plan.scenario;
    println!(
        "pingfleet run {}: {} {} devices, {} server partition(s) ({}){}, {} worker(s); logs in {}",
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
        match &scenario.proxy {
            Some(proxy) => format!(" each behind {}", proxy.kind().title()),
            None => String::new(),
        },
        plan.workers,
        dir.display()
    );
}

/// A `[sweep]`: every cell measured, the grid printed and written; 0, or 2 when a cell
/// did not complete.
fn run_grid(
    plan: &ResolvedScenario,
    sweep: &SweepSection,
    dir: &Path,
    interrupted: &AtomicBool,
) -> anyhow::Result<u8> {
    let measure_cell = |plan: &ResolvedScenario, dir: &Path| {
        let engine = plan.servers_measured().first().copied().flatten();
        measure(plan, engine, None, dir, interrupted, false)
    };
    let result = run_sweep(plan, sweep, dir, interrupted, &measure_cell)?;
    let path = result_path(&plan.scenario.output, &result.scenario)?;
    publish(Publication::Sweep(&result), &path, plan.scenario.report)?;
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
    Ok(if complete { 0 } else { 2 })
}

/// A `[capacity]` search: each step measured and written, the search's result
/// written and said; 0 when a step passed, 2 when none did or the search was stopped.
fn run_capacity(search: &Search<'_>, calibration: Option<LatencySummary>) -> anyhow::Result<u8> {
    let measure_step = |plan: &ResolvedScenario, dir: &Path| {
        let engine = plan.servers_measured().first().copied().flatten();
        measure(plan, engine, calibration, dir, search.interrupted, false)
    };
    let write_step = |plan: &ResolvedScenario, result: &RunResult| {
        let mut scenario = plan.scenario.clone();
        scenario.name = format!("{}-{}", scenario.name, scenario.devices.count);
        let path = run_result_path(&scenario, result, 0)?;
        write(Publication::Run(result), &path)?;
        Ok(path)
    };
    let result = run_search(search, &measure_step, &write_step)?;
    let path = result_path(&search.plan.scenario.output, &result.scenario)?;
    publish(
        Publication::Capacity(&result),
        &path,
        search.plan.scenario.report,
    )?;
    let stopped = result.knee.limit == crate::results::capacity_fit::Limit::Stopped;
    Ok(if result.knee.holds_devices.is_none() || stopped {
        2
    } else {
        0
    })
}

/// `[[variants]]`: each measured and written as a run of its own, then the table of
/// them written and printed; 0, 1 when a variant failed a threshold, 2 when one did
/// not complete.
fn run_each_variant(
    variants: &Variants<'_>,
    calibration: Option<LatencySummary>,
) -> anyhow::Result<u8> {
    let measure_variant = |plan: &ResolvedScenario, dir: &Path| {
        let engine = plan.servers_measured().first().copied().flatten();
        measure(plan, engine, calibration, dir, variants.interrupted, true)
    };
    let write_variant = |plan: &ResolvedScenario, result: &RunResult| {
        let path = run_result_path(&plan.scenario, result, 0)?;
        publish(Publication::Run(result), &path, false)?;
        Ok(path)
    };
    let result = run_variants(variants, &measure_variant, &write_variant)?;
    let path = result_path(&variants.plan.scenario.output, &result.scenario)?;
    publish(
        Publication::Variants(&result),
        &path,
        variants.plan.scenario.report,
    )?;
    let all = result.variants.len() == variants.plan.scenario.variants.len();
    Ok(if !all || result.variants.iter().any(|v| !v.complete) {
        2
    } else if result.variants.iter().any(|v| !v.passed) {
        1
    } else {
        0
    })
}

/// One measurement per engine (two when the scenario compares them), each judged,
/// written and summed up; the worst exit code of them.
fn run_engines(
    plan: &ResolvedScenario,
    calibration: Option<LatencySummary>,
    dir: &Path,
    interrupted: &AtomicBool,
) -> anyhow::Result<u8> {
    let scenario = &plan.scenario;
    let mut results: Vec<RunResult> = Vec::new();
    for engine in plan.servers_measured() {
        let mut result = measure(plan, engine, calibration, dir, interrupted, true)?;
        if let [first] = results.as_slice() {
            result.comparison = Some(EngineComparison::between(first, &result));
        }
        result.thresholds = judge_thresholds(&scenario.thresholds, &result);
        let path = run_result_path(scenario, &result, results.len())?;
        publish(Publication::Run(&result), &path, scenario.report)?;
        let stop = interrupted.load(Ordering::Relaxed);
        results.push(result);
        if stop {
            break;
        }
    }
    if let Some(comparison) = results.last().and_then(|result| result.comparison.as_ref()) {
        print_comparison(comparison);
    }
    Ok(results.iter().map(exit_code).max().unwrap_or(2))
}

/// 2 for a run that did not complete, 1 when a threshold failed, 3 when the only
/// conditions that did not hold were latencies set aside (the machine was busy with
/// work not ours), else 0.
fn exit_code(result: &RunResult) -> u8 {
    let verdicts = &result.thresholds;
    if !result.complete {
        2
    } else if verdicts.iter().any(|v| !v.passed && !v.inconclusive) {
        1
    } else if verdicts.iter().any(|v| v.inconclusive) {
        3
    } else {
        0
    }
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
    let mut started = start(plan, engine, dir, interrupted)?;
    let floor_probe = FloorProbe::start(FLOOR_PROBE_GAP).ok();
    let watch_started = SystemTime::now();
    // A NAT flushed: every proxy drops its flows, or the router's conntrack forgets.
    let (firewalls, topology) = (&started.firewalls, &started.topology);
    let flush_path = || {
        for firewall in firewalls {
            firewall.process.signal("-USR1");
        }
        if let Some(topology) = topology {
            let _ = topology.flush();
        }
    };
    let watched = watch(
        &plan.scenario,
        Processes {
            servers: &mut started.servers,
            workers: &mut started.workers,
        },
        dir,
        interrupted,
        WatchSetup {
            gauge: &started.gauge,
            live,
            flush_path: &flush_path,
            proxy: started.proxy.as_ref(),
        },
    );
    let mut gathered = gather(
        started,
        watched,
        (dir, plan.scenario.time_scale),
        interrupted,
    )?;
    if let Some(floor_seconds) = floor_probe.and_then(|probe| probe.stop().ok()) {
        gathered.series.add(&floor_seconds)?;
    }
    Ok(assemble(
        plan,
        (engine, calibration),
        gathered,
        watch_started,
    ))
}

/// The processes of one measurement, started, and the readings before any device.
struct Started {
    /// The kernel's firewall, removed when dropped.
    topology: Option<Topology>,
    servers: Vec<ServerProcess>,
    gauge: ServerGauge,
    baseline: Baseline,
    /// The reverse proxies, when the scenario has a `[proxy]`.
    proxy: Option<ProxyFront>,
    firewalls: Vec<FirewallProcess>,
    /// The link emulator, when the devices have networks.
    link: Option<LinkProcess>,
    workers: Vec<RoleProcess>,
}

/// Starts the servers (unless the target is external), reads the baseline, then the
/// firewalls and the workers.
fn start(
    plan: &ResolvedScenario,
    engine: Option<Engine>,
    dir: &Path,
    interrupted: &AtomicBool,
) -> anyhow::Result<Started> {
    let scenario = &plan.scenario;
    let topology = match plan.in_namespaces() {
        true => Some(Topology::create(plan.namespace_path())?),
        false => None,
    };
    let link = LinkProcess::start(plan, topology.as_ref(), dir)?;
    let servers = match engine {
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
    let proxy = ProxyFront::start(plan, &servers, topology.as_ref(), dir, interrupted)?;
    let ca = match proxy.as_ref().and_then(ProxyFront::cert) {
        Some(cert) => Some(cert.to_path_buf()),
        None => concatenate_certificates(&servers, dir)?,
    };
    let upstreams: Vec<_> = (servers.iter().enumerate())
        .map(|(index, server)| {
            let proxy = proxy.as_ref().and_then(|proxy| proxy.listen(index));
            proxy.unwrap_or(server.ready.http[0])
        })
        .collect();
    let firewalls = start_firewalls(plan, &upstreams, dir, interrupted)?;
    let partitions = entry_points(&servers, &upstreams, &firewalls);
    let workers = start_workers(
        plan,
        &partitions,
        topology.as_ref(),
        ca.as_deref(),
        dir,
        interrupted,
    )?;
    Ok(Started {
        topology,
        servers,
        gauge,
        baseline,
        proxy,
        firewalls,
        link,
        workers,
    })
}

/// What a measurement gathered once its processes stopped.
struct Gathered {
    watched: Watched,
    failures: Vec<String>,
    fleet: WorkerReport,
    series: IntervalSeries,
    baseline: Baseline,
    gauge: ServerGauge,
    cpu_seconds_servers: Option<f64>,
    firewall_reports: Vec<FirewallReport>,
    link_report: Option<LinkReport>,
    proxy: Option<ProxyFigures>,
    server_wake_path: Option<WakePathFigures>,
}

/// Waits for the workers' documents, stops the firewalls and servers, and merges what
/// the workers measured.
fn gather(
    mut started: Started,
    watched: Watched,
    (dir, time_scale): (&Path, f64),
    interrupted: &AtomicBool,
) -> anyhow::Result<Gathered> {
    let mut failures = watched.failures.clone();
    let stopped = interrupted.load(Ordering::Relaxed);
    let reports = collect_reports(&mut started.workers, dir, &mut failures, stopped)?;
    if stopped && failures.is_empty() {
        failures.push(
            "stopped by a signal (Ctrl-C or SIGTERM) as the run ended: partial results".to_owned(),
        );
    }
    let cpu_seconds_servers = started.gauge.cpu_seconds();
    let firewall_reports: Vec<FirewallReport> = started
        .firewalls
        .into_iter()
        .filter_map(FirewallProcess::stop)
        .collect();
    let link_report = started.link.take().and_then(LinkProcess::stop);
    if let Some(proxy) = &started.proxy {
        failures.extend(proxy.failures());
    }
    let proxy = started.proxy.take().map(|proxy| proxy.stop(time_scale));
    let server_wake_path = wake_path_of_all(&started.servers);
    for server in &mut started.servers {
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
    Ok(Gathered {
        watched,
        failures,
        fleet,
        series,
        baseline: started.baseline,
        gauge: started.gauge,
        cpu_seconds_servers,
        firewall_reports,
        link_report,
        proxy,
        server_wake_path,
    })
}

/// The result of one measurement (thresholds not judged yet).
fn assemble(
    plan: &ResolvedScenario,
    (engine, calibration): (Option<Engine>, Option<LatencySummary>),
    gathered: Gathered,
    watch_started: SystemTime,
) -> RunResult {
    let scenario = &plan.scenario;
    let Gathered {
        watched,
        failures,
        fleet,
        series,
        baseline,
        gauge,
        cpu_seconds_servers,
        firewall_reports,
        link_report,
        proxy,
        server_wake_path,
    } = gathered;
    let intervals = IntervalFigures::of(&series, watch_started, watched.hold_window_s);
    let wakeup = fleet
        .histograms
        .get(&HistogramName::WakeupLatency)
        .map(|doc| doc.summary);
    let floor = FloorFigures::of(&series, &intervals, wakeup);
    let machine = Machine::read(plan.limits.fd_limit);
    let self_check = check(
        &watched.timeline,
        watched.hold_window_s,
        (
            machine.cores,
            floor.as_ref().map(|floor| &floor.during_hold),
        ),
        &fleet,
    );
    let mut network = NetworkFigures::of(
        &fleet,
        (scenario.firewall.as_ref(), &firewall_reports),
        scenario.proxy.is_some(),
        scenario.time_scale,
    );
    if let Some(flush) = network.as_mut().and_then(|network| network.flush.as_mut()) {
        flush.at_s = watched.flushed_at_s;
    }
    let run_s: f64 = fleet.stages.iter().map(|stage| stage.duration_s).sum();
    let links = LinkFigures::of(
        link_report.as_ref(),
        &fleet,
        fleet.devices as f64 * run_s / 3600.0,
    );
    RunResult {
        schema: SCHEMA.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        allocator: crate::measure::heap::ALLOCATOR.into(),
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
        self_check,
        hold_window_s: watched.hold_window_s,
        cost_per_device_hour: DeviceHourCost::of(&fleet, scenario.time_scale, &scenario.devices),
        server_wake_path,
        time_scale: scenario.time_scale,
        network,
        links,
        proxy,
        link_level: plan.link_level,
        machine,
        fleet,
        timeline: watched.timeline,
        thresholds: Vec::new(),
        comparison: None,
    }
}
