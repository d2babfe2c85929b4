//! The processes of a run: server partitions (`pingfleet serve`, one loopback address
//! each), the firewall before each partition when the scenario has one (`pingfleet
//! firewall`), and device workers (`pingfleet devices`), started from the typed flags
//! the resolved scenario gives, and what the orchestrator reads from them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;

use super::children::RoleProcess;
use crate::firewall::launch::{FirewallReady, FirewallReport};
use crate::firewall::netns::Topology;
use crate::link::launch::{LinkReady, LinkReport};
use crate::measure::heap::{HeapPart, HeapReading};
use crate::scenario::resolve::ResolvedScenario;
use crate::server::launch::ServerReady;
use crate::server::process::{metric_value, scrape, wake_path, ServerHandle};
use crate::server::state::Engine;
use crate::server::wake_path::{WakePathFigures, WakePathReading};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server partition and its addresses.
pub(crate) struct ServerProcess {
    pub process: RoleProcess,
    pub ready: ServerReady,
}

/// What the orchestrator reads from a partition's `/metrics` each second.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ServerCounts {
    pub parked: u64,
    pub wakeups: u64,
    pub notifications: u64,
    /// The highest of the partitions' running server-side wake-up p99.
    pub wake_p99_us: u64,
}

impl ServerCounts {
    /// The counts of every partition added up (a partition that cannot be read adds 0),
    /// read from all partitions at once so a reading takes one round trip, not K.
    pub(crate) fn of_all(servers: &[ServerProcess]) -> Self {
        let readings: Vec<Option<ServerCounts>> = std::thread::scope(|scope| {
            let readers: Vec<_> = servers
                .iter()
                .map(|server| scope.spawn(|| server.counts()))
                .collect();
            readers
                .into_iter()
                .map(|reader| reader.join().ok().flatten())
                .collect()
        });
        readings
            .into_iter()
            .flatten()
            .fold(Self::default(), |sum, counts| Self {
                parked: sum.parked + counts.parked,
                wakeups: sum.wakeups + counts.wakeups,
                notifications: sum.notifications + counts.notifications,
                wake_p99_us: sum.wake_p99_us.max(counts.wake_p99_us),
            })
    }
}

/// The live heap of every partition added up; `None` without partitions or when one
/// of them cannot be read (a sum missing a partition would be a figure nobody
/// measured).
pub(crate) fn heap_of_all(servers: &[ServerProcess]) -> Option<HeapReading> {
    let (first, rest) = servers.split_first()?;
    rest.iter()
        .try_fold(first.heap()?, |sum, server| Some(sum.plus(&server.heap()?)))
}

impl ServerProcess {
    /// The partition's live heap (`pingfleet_heap_bytes`, and by part
    /// `pingfleet_heap_part_bytes`), `None` when its /metrics cannot be read.
    pub(crate) fn heap(&self) -> Option<HeapReading> {
        let text = scrape(self.ready.metrics?).ok()?;
        let live_bytes = metric_value(&text, "pingfleet_heap_bytes")? as u64;
        let parts = HeapPart::ALL
            .iter()
            .filter_map(|part| {
                let name = format!("pingfleet_heap_part_bytes{{part=\"{}\"}}", part.name());
                Some((part.name().to_owned(), metric_value(&text, &name)? as i64))
            })
            .collect();
        Some(HeapReading { live_bytes, parts })
    }

    /// The partition's counts, `None` when its /metrics cannot be read.
    pub(crate) fn counts(&self) -> Option<ServerCounts> {
        let text = scrape(self.ready.metrics?).ok()?;
        let value = |name: &str| metric_value(&text, name).unwrap_or(0.0) as u64;
        Some(ServerCounts {
            parked: value("pingfleet_parked_pings"),
            wakeups: value("pingfleet_wakeups_total"),
            notifications: value("pingfleet_notifications_received_total"),
            wake_p99_us: value("pingfleet_wake_latency_microseconds{quantile=\"0.99\"}"),
        })
    }
}

/// The wake path of every partition merged; `None` without partitions, when one of
/// them cannot be read, or when no wake passed.
pub(crate) fn wake_path_of_all(servers: &[ServerProcess]) -> Option<WakePathFigures> {
    let readings: Option<Vec<WakePathReading>> = servers
        .iter()
        .map(|server| wake_path(server.ready.metrics?))
        .collect();
    WakePathReading::summarise(&readings?)
        .ok()
        .filter(|figures| !figures.0.is_empty())
}

/// Starts the server partitions one after the other and waits until each is ready.
pub(crate) fn start_servers(
    plan: &ResolvedScenario,
    engine: Engine,
    topology: Option<&Topology>,
    dir: &Path,
    interrupted: &AtomicBool,
) -> anyhow::Result<Vec<ServerProcess>> {
    let wrapper = topology.map_or(Vec::new(), |topology| Topology::exec_in(&topology.server));
    let exe = std::env::current_exe()?;
    let mut servers = Vec::new();
    for index in 0..plan.partitions {
        // Those already started are stopped when `servers` is dropped.
        stop_if_interrupted(interrupted, "the server partitions")?;
        let name = format!("server-{index}");
        let stderr_path = RoleProcess::stderr_path(&name, dir);
        let stderr = std::fs::File::create(&stderr_path)?;
        let args = plan.serve_args(index, engine, dir);
        let stderr = Stdio::from(stderr);
        let handle = ServerHandle::spawn_within(&wrapper, &exe, &args, stderr, READY_TIMEOUT)
            .map_err(|err| {
                let tail = RoleProcess::stderr_tail(&stderr_path);
                anyhow::anyhow!("{name}: {err}; stderr: {tail}")
            })?;
        let ServerHandle { child, ready } = handle;
        servers.push(ServerProcess {
            process: RoleProcess::adopt(&name, child, stderr_path),
            ready,
        });
    }
    Ok(servers)
}

/// A running middlebox before one partition.
pub(crate) struct FirewallProcess {
    pub process: RoleProcess,
    pub ready: FirewallReady,
    /// Where it writes its report when stopped.
    pub report_path: PathBuf,
}

impl FirewallProcess {
    /// Stops it and reads its report; `None` if it wrote none.
    pub(crate) fn stop(mut self) -> Option<FirewallReport> {
        self.process.stop(Duration::from_secs(10));
        let text = std::fs::read(&self.report_path).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

/// Starts a middlebox before each partition when the scenario has a `[firewall]`.
/// `upstreams`: each partition's address, or its reverse proxy's.
pub(crate) fn start_firewalls(
    plan: &ResolvedScenario,
    upstreams: &[SocketAddr],
    dir: &Path,
    interrupted: &AtomicBool,
) -> anyhow::Result<Vec<FirewallProcess>> {
    let mut firewalls = Vec::new();
    for (index, upstream) in upstreams.iter().enumerate() {
        let Some(args) = plan.firewall_args(index as u32, *upstream, dir) else {
            break;
        };
        stop_if_interrupted(interrupted, "the firewalls")?;
        let name = format!("firewall-{index}");
        let mut process = RoleProcess::spawn(&name, &args.to_argv()?, dir)?;
        let stdout = process.take_stdout().context("no stdout")?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let ready: FirewallReady = serde_json::from_str(&line)
            .map_err(|_| anyhow::anyhow!("{name} did not start: {}", process.describe_failure()))?;
        firewalls.push(FirewallProcess {
            process,
            ready,
            report_path: args.report.expect("set by the plan"),
        });
    }
    Ok(firewalls)
}

/// The link emulator in the link namespace.
pub(crate) struct LinkProcess {
    pub process: RoleProcess,
    report_path: PathBuf,
}

impl LinkProcess {
    /// Starts `pingfleet link` for the scenario's networks, in the topology's link
    /// namespace; `None` without networks.
    pub(crate) fn start(
        plan: &ResolvedScenario,
        topology: Option<&Topology>,
        dir: &Path,
    ) -> anyhow::Result<Option<Self>> {
        let (Some(args), Some(link)) = (
            plan.link_args(dir),
            topology.and_then(|topology| topology.link.as_ref()),
        ) else {
            return Ok(None);
        };
        let wrapper = Topology::exec_in(link);
        let mut process = RoleProcess::spawn_within(&wrapper, "link", &args.to_argv()?, dir)?;
        let stdout = process.take_stdout().context("no stdout")?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let _: LinkReady = serde_json::from_str(&line).map_err(|_| {
            anyhow::anyhow!(
                "the link emulator did not start: {}",
                process.describe_failure()
            )
        })?;
        Ok(Some(Self {
            process,
            report_path: args.report.expect("set by the plan"),
        }))
    }

    /// Stops it and reads its report; `None` if it wrote none.
    pub(crate) fn stop(mut self) -> Option<LinkReport> {
        self.process.stop(Duration::from_secs(10));
        let text = std::fs::read(&self.report_path).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

/// One PEM file trusted by the workers, holding every partition's certificate.
pub(crate) fn concatenate_certificates(
    servers: &[ServerProcess],
    dir: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    let certs: Vec<&PathBuf> = servers
        .iter()
        .filter_map(|server| server.ready.tls_cert.as_ref())
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

/// Where the devices of each partition connect (its firewall, else its reverse proxy,
/// else the server: `upstreams`), and where its notifications go: straight to the
/// server (the mailbox back-end's path).
pub(crate) fn entry_points(
    servers: &[ServerProcess],
    upstreams: &[SocketAddr],
    firewalls: &[FirewallProcess],
) -> Vec<(SocketAddr, SocketAddr)> {
    servers
        .iter()
        .zip(upstreams)
        .enumerate()
        .map(|(index, (server, upstream))| {
            let http = firewalls
                .get(index)
                .map_or(*upstream, |firewall| firewall.ready.listen[0]);
            (http, server.ready.notify)
        })
        .collect()
}

/// Starts the device workers; each runs shard `index/workers` of the fleet, its
/// devices connecting to `partitions` (see [`entry_points`]).
pub(crate) fn start_workers(
    plan: &ResolvedScenario,
    partitions: &[(SocketAddr, SocketAddr)],
    topology: Option<&Topology>,
    ca: Option<&Path>,
    dir: &Path,
    interrupted: &AtomicBool,
) -> anyhow::Result<Vec<RoleProcess>> {
    let wrapper = topology.map_or(Vec::new(), |topology| Topology::exec_in(&topology.devices));
    (0..plan.workers)
        .map(|index| {
            stop_if_interrupted(interrupted, "the device workers")?;
            let args = match &plan.scenario.target {
                Some(target) => plan.external_devices_args(target, index, dir),
                None => plan.devices_args(index, partitions, ca, dir),
            };
            RoleProcess::spawn_within(&wrapper, &format!("worker-{index}"), &args.to_argv()?, dir)
        })
        .collect()
}

/// An error when Ctrl-C (or SIGTERM) came while starting `what`.
pub(crate) fn stop_if_interrupted(interrupted: &AtomicBool, what: &str) -> anyhow::Result<()> {
    match interrupted.load(Ordering::Relaxed) {
        true => anyhow::bail!("interrupted while starting {what}; nothing was measured"),
        false => Ok(()),
    }
}
