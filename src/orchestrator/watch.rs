//! Watching a measurement: every process sampled each second into the timeline, the
//! plateau found and every worker's hold started at once, the path flushed when the
//! scenario asks, and the stop: the workers' end, a signal, or a server that died.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::children::RoleProcess;
use super::live::LiveView;
use super::progress::WorkerProgress;
use super::proxies::ProxyFront;
use super::readings::Plateau;
use super::roles::{ServerCounts, ServerProcess};
use super::sampler::{cores_of, rss_of, Sampler};
use super::server_gauge::ServerGauge;
use crate::fleet::report::WorkerReport;
use crate::phase::Phase;
use crate::results::timeline::{Role, TimelinePoint};
use crate::scenario::resolve::worker_document;
use crate::scenario::Scenario;

/// What watching a run saw.
pub(super) struct Watched {
    pub(super) timeline: Vec<TimelinePoint>,
    pub(super) plateau: Option<Plateau>,
    pub(super) hold_window_s: Option<(f64, f64)>,
    /// Seconds since the start at which the path was flushed.
    pub(super) flushed_at_s: Option<f64>,
    /// Seconds since the start at which the proxies were reloaded.
    pub(super) reloaded_at_s: Option<f64>,
    pub(super) failures: Vec<String>,
}

impl Watched {
    /// The run stopped at `t_s` (seconds since its start) for `why`: the hold window
    /// ends there if it had not ended yet.
    pub(super) fn stop_early(&mut self, t_s: f64, why: &str) {
        self.failures.push(why.to_owned());
        if let Some((start, end)) = &mut self.hold_window_s {
            *end = end.min(t_s.max(*start));
        }
    }
}

/// How a measurement is watched: where the server's memory is read, whether progress
/// is shown, and how to flush the path (the firewall's flush stage).
pub(super) struct WatchSetup<'a> {
    pub(super) gauge: &'a ServerGauge,
    pub(super) live: bool,
    pub(super) flush_path: &'a dyn Fn(),
    /// The reverse proxies, read each second and reloaded when the scenario asks.
    pub(super) proxy: Option<&'a ProxyFront>,
}

/// The processes of a measurement, as the watch sees them.
pub(super) struct Processes<'a> {
    pub(super) servers: &'a mut [ServerProcess],
    pub(super) workers: &'a mut [RoleProcess],
}

/// The first stop by a signal in this process, in words: a sweep's cells, a search's
/// steps and variants all end on one signal, and the run says it once on stderr.
static FIRST_STOP: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// What the first stop by a signal stopped, if one did.
pub(super) fn first_stop() -> Option<&'static str> {
    FIRST_STOP.get().map(String::as_str)
}

/// Samples every process each second until the workers end (or a server dies, or the
/// run is interrupted); at the plateau, reads memory and starts every worker's hold.
pub(super) fn watch(
    scenario: &Scenario,
    processes: Processes<'_>,
    dir: &Path,
    interrupted: &AtomicBool,
    setup: WatchSetup<'_>,
) -> Watched {
    let Processes { servers, workers } = processes;
    let mut sampler = Sampler::new(sampled(servers, workers, setup.gauge));
    let progress = WorkerProgress::follow(workers, dir);
    let view = match setup.live {
        true => LiveView::new(scenario.devices.count as u64),
        false => LiveView::silent(),
    };
    let mut watch = Watch {
        scenario,
        setup,
        started: Instant::now(),
        view,
        watched: Watched {
            timeline: Vec::new(),
            plateau: None,
            hold_window_s: None,
            flushed_at_s: None,
            reloaded_at_s: None,
            failures: Vec::new(),
        },
    };
    loop {
        let mut counts = ServerCounts::of_all(servers);
        if servers.is_empty() || !scenario.devices.all_push() {
            // An external server has no /metrics of ours, and devices that do not
            // push park nothing: the devices that have bootstrapped (parked a Ping,
            // or rest between syncs) stand for the parked count.
            counts.parked = progress.total().bootstrapped as u64;
        }
        let t_s = watch.record_second(&counts, &mut sampler, &progress);
        watch.start_hold_at_plateau(counts.parked, servers, workers);
        watch.flush_when_due(t_s, workers);
        watch.reload_when_due(t_s);
        if watch.stopped(t_s, servers, workers, interrupted) {
            break;
        }
        let point = watch.watched.timeline.last().expect("pushed above");
        watch.view.show(watch.started.elapsed(), point);
        // One reading a second, however long the reading itself took.
        let next = Duration::from_secs(watch.started.elapsed().as_secs() + 1);
        std::thread::sleep(next.saturating_sub(watch.started.elapsed()));
    }
    watch.view.finish();
    watch.watched
}

/// The processes sampled: the bundled partitions (or the external server's processes
/// when named) and the workers.
fn sampled(
    servers: &[ServerProcess],
    workers: &[RoleProcess],
    gauge: &ServerGauge,
) -> Vec<(String, Role, u32)> {
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
    let worker_processes = workers
        .iter()
        .map(|w| (w.name.clone(), Role::Worker, w.pid()));
    server_processes
        .into_iter()
        .chain(worker_processes)
        .collect()
}

/// A measurement being watched, second by second.
struct Watch<'a> {
    scenario: &'a Scenario,
    setup: WatchSetup<'a>,
    started: Instant,
    view: LiveView,
    watched: Watched,
}

impl Watch<'_> {
    /// Reads every process and the servers' counts into the timeline; the second's
    /// offset from the start.
    fn record_second(
        &mut self,
        counts: &ServerCounts,
        sampler: &mut Sampler,
        progress: &WorkerProgress,
    ) -> f64 {
        let (processes, kernel) = sampler.sample();
        let t_s = self.started.elapsed().as_secs_f64();
        let proxy_cpu_cores = self.setup.proxy.map_or(0.0, |proxy| proxy.sample(t_s));
        let stage = match self.watched.hold_window_s {
            None => Phase::Ramp,
            Some((_, end)) if t_s <= end => Phase::Hold,
            Some(_) => Phase::Drain,
        };
        self.watched.timeline.push(TimelinePoint {
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
            proxy_cpu_cores,
            kernel,
            fleet: progress.total(),
            processes,
        });
        t_s
    }

    /// Once (nearly) every device is parked, or the ramp's time is up: memory is read
    /// and every worker starts its hold, together.
    fn start_hold_at_plateau(
        &mut self,
        parked: u64,
        servers: &[ServerProcess],
        workers: &[RoleProcess],
    ) {
        let devices = self.scenario.devices.count as u64;
        // Devices whose heartbeat just ended are re-pinging at any instant, so the
        // plateau allows a sliver (0.5%) of them to be between two Pings.
        let nearly_all = devices - devices / 200;
        let ramp_over = self.started.elapsed() >= self.scenario.stages.ramp_timeout.0;
        if self.watched.plateau.is_some() || parked == 0 || (parked < nearly_all && !ramp_over) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
        let plateau = Plateau::read(parked, (self.setup.gauge, servers), workers);
        if let Some(proxy) = self.setup.proxy {
            proxy.plateau(parked);
        }
        for worker in workers {
            worker.signal("-USR1");
        }
        let start = self.started.elapsed().as_secs_f64();
        let hold = self.scenario.stages.hold.0.as_secs_f64();
        self.watched.hold_window_s = Some((start, start + hold));
        self.view.note(&format!(
            "plateau: {parked} parked, server RSS {} MiB",
            plateau.server_rss.iter().flatten().sum::<u64>() / (1 << 20)
        ));
        self.watched.plateau = Some(plateau);
    }

    /// The scenario's flush, once its instant in the hold has come.
    fn flush_when_due(&mut self, t_s: f64, workers: &[RoleProcess]) {
        let flush_at = self
            .scenario
            .firewall
            .as_ref()
            .and_then(|firewall| firewall.flush_at)
            .map(|span| span.0.as_secs_f64());
        let (Some(offset), Some((hold_start, _)), None) = (
            flush_at,
            self.watched.hold_window_s,
            self.watched.flushed_at_s,
        ) else {
            return;
        };
        if t_s < hold_start + offset {
            return;
        }
        // The workers first: a device that reconnects at once must find its worker
        // already timing it.
        for worker in workers {
            worker.signal("-USR2");
        }
        std::thread::sleep(Duration::from_millis(50));
        (self.setup.flush_path)();
        self.watched.flushed_at_s = Some(t_s);
        self.view
            .note(&format!("flushed every flow at t={t_s:.1}s"));
    }

    /// The scenario's proxy reload, once its instant in the hold has come.
    fn reload_when_due(&mut self, t_s: f64) {
        let Some(proxy) = self.setup.proxy else {
            return;
        };
        let (Some(offset), Some((hold_start, _)), None) = (
            proxy.reload_offset_s(),
            self.watched.hold_window_s,
            self.watched.reloaded_at_s,
        ) else {
            return;
        };
        if t_s >= hold_start + offset {
            proxy.reload(t_s);
            self.watched.reloaded_at_s = Some(t_s);
            self.view
                .note(&format!("reloaded the proxies at t={t_s:.1}s"));
        }
    }

    /// What a stop signal stopped: the stage, when, and how far the fleet had come.
    fn stop_words(&self, t_s: f64) -> String {
        // The second before the stop: the reading at the stop may find the servers
        // already gone on the same signal.
        let timeline = &self.watched.timeline;
        let point = timeline.iter().rev().nth(1).or(timeline.last());
        let stage = timeline.last().map_or(Phase::Ramp, |point| point.stage);
        let parked = point.map_or(0, |point| point.parked);
        let words = format!(
            "stopped by a signal (Ctrl-C or SIGTERM) in the {} at {t_s:.0} s, {parked} of {} \
             devices parked: partial results",
            stage.name(),
            self.scenario.devices.count
        );
        // The first stop is the one said on stderr when the run ends.
        let _ = FIRST_STOP.set(words.clone());
        words
    }

    /// Whether the measurement is over: a stop signal, every worker ended, or a
    /// server that died (the workers are then stopped; what they measured is kept).
    fn stopped(
        &mut self,
        t_s: f64,
        servers: &mut [ServerProcess],
        workers: &mut [RoleProcess],
        interrupted: &AtomicBool,
    ) -> bool {
        // A stop first: the signal that stopped the run may have reached the workers
        // too (Ctrl-C reaches the process group, `timeout` signals its group), and
        // workers that ended on it are not a run that ended.
        let why = if interrupted.load(Ordering::Relaxed) {
            self.stop_words(t_s)
        } else if workers
            .iter_mut()
            .all(|worker| worker.try_status().is_some())
        {
            return true;
        } else if let Some(dead) = servers.iter_mut().find_map(|server| {
            let process = &mut server.process;
            process.try_status().is_some().then_some(process)
        }) {
            let why = dead.describe_failure();
            format!("{} died during the run: {why}", dead.name)
        } else {
            return false;
        };
        self.watched.stop_early(t_s, &why);
        for worker in workers.iter_mut() {
            worker.stop(Duration::from_secs(30));
        }
        true
    }
}

/// Waits for every worker and reads its document. A worker without one is a failure;
/// a worker that wrote one but failed (it said why on stderr) is a failure too, and its
/// figures still count.
pub(super) fn collect_reports(
    workers: &mut [RoleProcess],
    dir: &Path,
    failures: &mut Vec<String>,
    interrupted: bool,
) -> anyhow::Result<Vec<WorkerReport>> {
    let mut reports = Vec::new();
    for (index, worker) in workers.iter_mut().enumerate() {
        let status = worker.wait()?;
        let path = worker_document(dir, index as u32);
        let report = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<WorkerReport>(&bytes).ok());
        // A worker that stopped on our signal and wrote its figures did what it was
        // asked; the stop itself is already among the failures.
        if interrupted && report.is_some() {
            reports.extend(report);
            continue;
        }
        if !status.success() || report.is_none() {
            let why = worker.describe_failure();
            failures.push(format!("{} failed: {why}", worker.name));
        }
        reports.extend(report);
    }
    Ok(reports)
}
