//! The processes of a run: server partitions (`pingfleet serve`, one loopback address
//! each) and device workers (`pingfleet devices`), started with the flags a scenario
//! asks for, and what the orchestrator reads from them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::children::RoleProcess;
use crate::fleet::profile::ProfileFile;
use crate::scenario::{PatternName, Scenario};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server partition and its addresses.
pub struct ServerProcess {
    pub process: RoleProcess,
    pub http: SocketAddr,
    pub notify: SocketAddr,
    metrics: SocketAddr,
    cert: Option<PathBuf>,
}

/// What the orchestrator reads from a partition's `/metrics` each second.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerCounts {
    pub parked: u64,
    pub wakeups: u64,
    pub notifications: u64,
    /// The highest of the partitions' running server-side wake-up p99.
    pub wake_p99_us: u64,
}

impl ServerCounts {
    /// The counts of every partition added up (a partition that cannot be read adds 0),
    /// read from all partitions at once so a reading takes one round trip, not K.
    pub fn of_all(servers: &[ServerProcess]) -> Self {
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

impl ServerProcess {
    /// The partition's counts, `None` when its /metrics cannot be read.
    pub fn counts(&self) -> Option<ServerCounts> {
        let text = self.metrics_text().ok()?;
        let value = |name: &str| -> u64 {
            text.lines()
                .find_map(|line| {
                    line.strip_prefix(name)?
                        .strip_prefix(' ')?
                        .parse::<f64>()
                        .ok()
                })
                .unwrap_or(0.0) as u64
        };
        Some(ServerCounts {
            parked: value("pingfleet_parked_pings"),
            wakeups: value("pingfleet_wakeups_total"),
            notifications: value("pingfleet_notifications_received_total"),
            wake_p99_us: value("pingfleet_wake_latency_microseconds{quantile=\"0.99\"}"),
        })
    }

    fn metrics_text(&self) -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.metrics, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    }
}

/// The loopback address partition `index` listens on: one address each (127.0.0.1,
/// 127.0.0.2, ...), so every partition's connections have the whole ephemeral port
/// range to themselves. The generated certificates name 127.0.0.1 to 127.0.0.32.
fn partition_address(index: u32) -> String {
    format!("127.0.0.{}:0", index % 32 + 1)
}

/// Starts the server partitions one after the other and waits until each is ready.
pub fn start_servers(
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
            partition_address(index),
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
pub fn concatenate_certificates(
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

/// The scenario's profile mix as a `--profiles` file for the workers, if it has one.
fn write_profiles(scenario: &Scenario, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    if scenario.devices.profiles.is_empty() {
        return Ok(None);
    }
    let file = ProfileFile {
        profile: scenario.devices.profiles.clone(),
    };
    let path = dir.join("profiles.toml");
    std::fs::write(&path, toml::to_string(&file)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Some(path))
}

/// Starts the device workers; each runs shard `index/workers` of the fleet.
pub fn start_workers(
    scenario: &Scenario,
    servers: &[ServerProcess],
    workers: u32,
    ca: Option<&Path>,
    dir: &Path,
) -> anyhow::Result<Vec<RoleProcess>> {
    let scheme = if scenario.server.tls { "https" } else { "http" };
    let devices = &scenario.devices;
    let profiles = write_profiles(scenario, dir)?;
    let mut processes = Vec::new();
    for index in 0..workers {
        let mut args: Vec<String> = vec![
            "devices".into(),
            "--route-by-partition".into(),
            "--wait-for-start".into(),
            "--progress".into(),
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
            "--churn-per-minute".into(),
            scenario.stages.churn_per_minute.to_string(),
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
        if let Some(path) = &profiles {
            args.extend(["--profiles".into(), path.display().to_string()]);
        }
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
            true,
        )?);
    }
    Ok(processes)
}
