//! The reverse proxy before each partition during a measurement: started after the
//! servers (one configuration each, with the partition as upstream), its processes'
//! memory read each second by generation, read again at the plateau, reloaded when
//! the scenario asks, stopped by pid, and its figures put together.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::roles::ServerProcess;
use crate::firewall::netns::Topology;
use crate::measure::procfs;
use crate::proxy::config::{Directive, DirectiveSource, ProxyConfig, ProxyKind};
use crate::proxy::memory::{processes_of, Generations, ProxySample};
use crate::proxy::process::{self, ProxyProcess, ProxyVersion};
use crate::proxy::render::{write_config, RenderInputs};
use crate::results::proxy::{
    ProcessMemory, ProxyFigures, ProxyMemoryFigures, ProxyPoint, ReloadFigures,
};
use crate::scenario::resolve::ResolvedScenario;

/// How long a proxy has to listen once started.
const LISTEN_WITHIN: Duration = Duration::from_secs(15);

/// The port a proxy listens on in the server's namespace (that namespace is the run's
/// own: nothing else binds there below the ephemeral range).
const NAMESPACE_PORT: u16 = 9443;

/// The proxies' CPU between two readings: each process's seconds when last read.
#[derive(Default)]
struct CpuReadings {
    last: Option<(Instant, HashMap<u32, f64>)>,
}

impl CpuReadings {
    /// Cores used by `pids` since the last call (a process first seen since counts
    /// from its start: it began after a reload); 0 at the first.
    fn cores(&mut self, pids: &[u32]) -> f64 {
        let now = Instant::now();
        let seconds: HashMap<u32, f64> = (pids.iter())
            .filter_map(|pid| Some((*pid, procfs::cpu_seconds(Some(*pid))?)))
            .collect();
        let cores = self.last.as_ref().map_or(0.0, |(at, before)| {
            let used: f64 = (seconds.iter())
                .map(|(pid, now)| now - before.get(pid).copied().unwrap_or(0.0))
                .sum();
            used.max(0.0) / now.duration_since(*at).as_secs_f64().max(1e-3)
        });
        self.last = Some((now, seconds));
        cores
    }
}

/// One proxy, before one partition.
struct Running {
    process: ProxyProcess,
    generations: Generations,
    listen: SocketAddr,
}

/// What the proxies saw while the measurement went on.
#[derive(Default)]
struct Seen {
    series: Vec<ProxyPoint>,
    plateau: Option<(ProcessMemory, u64)>,
    reload_at_s: Option<f64>,
    failures: Vec<String>,
}

/// The proxies of a measurement.
pub(crate) struct ProxyFront {
    config: ProxyConfig,
    version: ProxyVersion,
    devices_per_proxy: usize,
    /// The certificate devices trust when the proxies hold their TLS.
    cert: Option<PathBuf>,
    before: ProcessMemory,
    proxies: Mutex<Vec<Running>>,
    seen: Mutex<Seen>,
    cpu: Mutex<CpuReadings>,
}

impl ProxyFront {
    /// Starts a proxy before each partition when the scenario has a `[proxy]`.
    pub(crate) fn start(
        plan: &ResolvedScenario,
        servers: &[ServerProcess],
        topology: Option<&Topology>,
        dir: &Path,
        interrupted: &AtomicBool,
    ) -> anyhow::Result<Option<Self>> {
        let Some(config) = plan.scenario.proxy.clone() else {
            return Ok(None);
        };
        let binary = process::find_binary(&config)?;
        let version = process::version(config.kind(), &binary)?;
        let devices_per_proxy = plan.scenario.devices.count.div_ceil(servers.len().max(1));
        let cert = match plan.proxy_terminates_tls() && plan.scenario.server.tls {
            true => Some(proxy_identity(dir)?),
            false => None,
        };
        let wrapper = topology.map_or(Vec::new(), |topology| Topology::exec_in(&topology.server));
        let mut proxies = Vec::new();
        for (index, server) in servers.iter().enumerate() {
            super::roles::stop_if_interrupted(interrupted, "the proxies")?;
            let own = dir.join(format!("proxy-{index}"));
            std::fs::create_dir_all(&own)?;
            let listen = listen_address(server, index, topology.is_some())?;
            let inputs = RenderInputs {
                listen,
                upstream: server.ready.http[0],
                dir: &own,
                cert: cert.as_ref().map(|(cert, _)| cert.as_path()),
                key: cert.as_ref().map(|(_, key)| key.as_path()),
                devices: devices_per_proxy,
            };
            let rendered = write_config(&config, &inputs)?;
            let stderr = dir.join(format!("proxy-{index}.stderr"));
            let process = ProxyProcess::start(
                config.kind(),
                &binary,
                &rendered,
                &wrapper,
                listen,
                &stderr,
                LISTEN_WITHIN,
            )
            .map_err(|err| anyhow::anyhow!("proxy-{index} ({}): {err}", config.kind()))?;
            let mut generations = Generations::new(process.master_pid());
            generations.observe();
            proxies.push(Running {
                process,
                generations,
                listen,
            });
        }
        let mut front = Self {
            config,
            version,
            devices_per_proxy,
            cert: cert.map(|(cert, _)| cert),
            before: ProcessMemory::default(),
            proxies: Mutex::new(proxies),
            seen: Mutex::new(Seen::default()),
            cpu: Mutex::new(CpuReadings::default()),
        };
        front.before = front.read().total();
        Ok(Some(front))
    }

    /// Where the devices (or the firewall) reach partition `index`.
    pub(crate) fn listen(&self, index: usize) -> Option<SocketAddr> {
        let proxies = self.proxies.lock().expect("not poisoned");
        proxies.get(index).map(|running| running.listen)
    }

    /// The certificate the devices trust, when the proxies hold their TLS.
    pub(crate) fn cert(&self) -> Option<&Path> {
        self.cert.as_deref()
    }

    /// Every proxy read now, their processes added up by generation.
    fn read(&self) -> ProxyPoint {
        let mut proxies = self.proxies.lock().expect("not poisoned");
        let samples: Vec<ProxySample> = proxies
            .iter_mut()
            .map(|running| running.generations.observe())
            .collect();
        point_of(0.0, &samples)
    }

    /// The second's reading, into the series; a proxy whose master is gone is a
    /// failure of the run (its devices can no longer reach their partition). Returns
    /// the cores the proxies' processes used since the last reading.
    pub(crate) fn sample(&self, t_s: f64) -> f64 {
        let cores = self.cpu.lock().expect("not poisoned").cores(&self.pids());
        let mut point = self.read();
        point.t_s = t_s;
        let running = self.proxies.lock().expect("not poisoned").len() as u32;
        let mut seen = self.seen.lock().expect("not poisoned");
        if point.masters.processes < running && !seen.failures.iter().any(|f| f.contains("exited"))
        {
            seen.failures.push(format!(
                "{} of {running} {} proxies exited during the run at {t_s:.0} s (see proxy-*.stderr                  and proxy-*/error.log in the run's logs)",
                running - point.masters.processes,
                self.config.kind().title()
            ));
        }
        seen.series.push(point);
        cores
    }

    /// Every process of every proxy now.
    fn pids(&self) -> Vec<u32> {
        let proxies = self.proxies.lock().expect("not poisoned");
        (proxies.iter())
            .flat_map(|running| processes_of(running.process.master_pid()))
            .map(|process| process.pid)
            .collect()
    }

    /// The reading at the plateau, with the Pings parked then.
    pub(crate) fn plateau(&self, parked: u64) {
        let total = self.read().total();
        self.seen.lock().expect("not poisoned").plateau = Some((total, parked));
    }

    /// When the scenario reloads the proxies (seconds into the hold).
    pub(crate) fn reload_offset_s(&self) -> Option<f64> {
        self.config.reload_at.map(|at| at.0.as_secs_f64())
    }

    /// Reloads every proxy now (`t_s` into the run); a proxy that cannot be signalled
    /// is a failure of the run.
    pub(crate) fn reload(&self, t_s: f64) {
        let mut proxies = self.proxies.lock().expect("not poisoned");
        let mut seen = self.seen.lock().expect("not poisoned");
        for (index, running) in proxies.iter_mut().enumerate() {
            running.generations.mark_reload();
            if let Err(err) = running.process.reload() {
                seen.failures
                    .push(format!("proxy-{index} could not be reloaded: {err}"));
            }
        }
        seen.reload_at_s = Some(t_s);
    }

    /// What a proxy could not do (said among the run's failures).
    pub(crate) fn failures(&self) -> Vec<String> {
        self.seen.lock().expect("not poisoned").failures.clone()
    }

    /// Stops every proxy by its pid and puts the figures together; `time_scale` turns
    /// durations back into real-world seconds.
    pub(crate) fn stop(self, time_scale: f64) -> ProxyFigures {
        let proxies = self.proxies.into_inner().expect("not poisoned");
        let started = proxies.len() as u32;
        for running in proxies {
            running.process.stop();
        }
        let seen = self.seen.into_inner().expect("not poisoned");
        let config = &self.config;
        let directives = config.directives(self.devices_per_proxy);
        let (cut_by, cut_after) = config.ping_cutting_timeout();
        let bound = reload_bound(config.kind(), &directives);
        let reload = seen
            .reload_at_s
            .and_then(|at_s| ReloadFigures::of(&seen.series, at_s, bound, time_scale));
        ProxyFigures {
            kind: config.kind(),
            version: self.version.text.clone(),
            expected_release: self.version.expected.to_owned(),
            tls: config.tls,
            proxies: started,
            own_config: config
                .config
                .as_ref()
                .map(|path| path.display().to_string()),
            directives,
            cut_by,
            cut_after_s: (cut_after.0 != Duration::MAX)
                .then_some(cut_after.0.as_secs_f64() * time_scale),
            memory: ProxyMemoryFigures::of(self.before, seen.plateau),
            reload,
            series: seen.series,
        }
    }
}

/// The directive that bounds old workers after a reload.
fn reload_bound(kind: ProxyKind, directives: &[Directive]) -> Directive {
    let name = match kind {
        ProxyKind::Nginx => "worker_shutdown_timeout",
        ProxyKind::Haproxy => "hard-stop-after",
    };
    directives
        .iter()
        .find(|directive| directive.name == name)
        .cloned()
        .unwrap_or(Directive {
            name: name.to_owned(),
            value: String::new(),
            source: DirectiveSource::Unset,
        })
}

/// The samples of every proxy added up, by generation.
fn point_of(t_s: f64, samples: &[ProxySample]) -> ProxyPoint {
    let mut point = ProxyPoint {
        t_s,
        masters: ProcessMemory::default(),
        generations: Vec::new(),
    };
    for sample in samples {
        point.masters = point.masters.plus(sample.master);
        for (index, generation) in sample.generations.iter().enumerate() {
            if point.generations.len() <= index {
                point.generations.push(ProcessMemory::default());
            }
            point.generations[index] = point.generations[index].plus(*generation);
        }
    }
    point
}

/// Where a proxy listens: beside its partition on loopback (a port free now), or in
/// the server's namespace on a port of its own.
fn listen_address(
    server: &ServerProcess,
    index: usize,
    in_namespace: bool,
) -> anyhow::Result<SocketAddr> {
    let ip = server.ready.http[0].ip();
    if in_namespace {
        return Ok(SocketAddr::new(ip, NAMESPACE_PORT + index as u16));
    }
    let probe = std::net::TcpListener::bind(SocketAddr::new(ip, 0))?;
    Ok(probe.local_addr()?)
}

/// A certificate and key for the proxies (PEM files in the run's directory), naming
/// loopback and the server's address in namespaces.
fn proxy_identity(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert = dir.join("proxy-cert.pem");
    let key = dir.join("proxy-key.pem");
    crate::tls::Identity::self_signed_files(&cert, &key)?;
    Ok((cert, key))
}
