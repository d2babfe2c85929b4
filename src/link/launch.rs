//! `pingfleet link`: the link emulator as a process of its own, in the link namespace
//! a run builds, reading every TCP packet between devices and server from a TUN device
//! and writing it back when its phone's link lets it go; and what it reports: packets
//! and bytes each way per network, what it dropped and why, and its own CPU per 1,000
//! packets a second. SIGTERM or Ctrl-C stops it with its report.

use std::io::{ErrorKind, Read as _, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rustix::event::{PollFd, PollFlags};

use super::forward::{Forwarder, LinkRoute, RouteCounts};
use super::profile::NetworkProfile;
use crate::argv;
use crate::measure::procfs;

/// Flags of `pingfleet link`.
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Serialize)]
pub struct LinkArgs {
    /// The TUN device every packet between devices and server is routed into (a run
    /// makes it in its link namespace).
    #[arg(long, value_name = "NAME", default_value = crate::firewall::netns::LINK_TUN)]
    pub tun: String,
    /// Phones of a subnet and the network their links follow (repeatable):
    /// SUBNET=PROFILE with a shipped profile (wifi, lte, 3g, gprs), or
    /// SUBNET=NAME{KEYS} with a profile's keys inline, e.g.
    /// 198.18.16.0/24=lte or '198.18.17.0/24=train{delay = "60ms", loss = "1%"}'.
    #[arg(long = "route", value_name = "SUBNET=PROFILE", required = true, value_parser = parse_route)]
    pub routes: Vec<LinkRoute>,
    /// Seeds every link's losses, jitter and outages.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the final report (JSON) here as well as on stdout.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
}

impl LinkArgs {
    /// `link` and the flags that give these values back.
    pub fn to_argv(&self) -> anyhow::Result<Vec<String>> {
        argv::to_argv("link", self)
    }
}

/// A route as `--route` writes it: `SUBNET=NAME` for a shipped profile unchanged,
/// `SUBNET=NAME{KEYS}` otherwise.
impl std::fmt::Display for LinkRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.subnet, self.name)?;
        if NetworkProfile::shipped(&self.name).as_ref() == Some(&self.profile) {
            return Ok(());
        }
        let table = toml::to_string(&self.profile).map_err(|_| std::fmt::Error)?;
        let keys: Vec<&str> = table.lines().filter(|line| !line.is_empty()).collect();
        write!(f, "{{{}}}", keys.join(", "))
    }
}

impl serde::Serialize for LinkRoute {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

fn parse_route(text: &str) -> Result<LinkRoute, String> {
    let example = "write e.g. 198.18.16.0/24=lte or 198.18.17.0/24=train{delay = \"60ms\"}";
    let (subnet, profile) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not SUBNET=PROFILE: {example}"))?;
    let subnet = subnet.parse()?;
    let (name, profile) = match profile.split_once('{') {
        None => {
            let shipped = NetworkProfile::shipped(profile).ok_or_else(|| {
                format!("no network profile `{profile}` (shipped: wifi, lte, 3g, gprs): {example}")
            })?;
            (profile.to_owned(), shipped)
        }
        Some((name, keys)) => {
            let table = format!("profile = {{{keys}");
            let mut parsed: std::collections::HashMap<String, NetworkProfile> =
                toml::from_str(&table).map_err(|err| format!("`{text}`: {}", err.message()))?;
            let profile = parsed
                .remove("profile")
                .ok_or_else(|| format!("`{text}`: the keys are not one table: {example}"))?;
            (name.to_owned(), profile)
        }
    };
    profile
        .check()
        .map_err(|err| format!("`{text}`: {}", err.message))?;
    Ok(LinkRoute {
        subnet,
        name,
        profile,
    })
}

/// The line printed once the emulator reads its TUN.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LinkReady {
    pub ready: bool,
    pub pid: u32,
}

/// What one network's links carried and dropped.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct RouteReport {
    pub name: String,
    pub subnet: String,
    pub profile: NetworkProfile,
    #[serde(flatten)]
    pub counts: RouteCounts,
}

/// The emulator's report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct LinkReport {
    pub networks: Vec<RouteReport>,
    /// Packets no network claimed (not TCP, or not a device's), passed at once.
    pub passed: u64,
    /// The most packets held in the links at once.
    pub peak_held: u64,
    /// Packets written back that the kernel refused.
    pub write_errors: u64,
    pub wall_seconds: f64,
    /// The emulator's own CPU (user and system), `None` when /proc cannot be read.
    pub cpu_seconds: Option<f64>,
    /// Packets read, every network and direction together.
    pub packets: u64,
    /// Cores the emulator used per 1,000 packets a second, over the whole run.
    pub cores_per_kpps: Option<f64>,
}

/// Runs `pingfleet link` until SIGINT or SIGTERM.
pub fn link(args: LinkArgs) -> anyhow::Result<()> {
    let device = super::tun::open(&args.tun)
        .with_context(|| format!("cannot open TUN device {} (root, /dev/net/tun)", args.tun))?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let mut routes = Vec::with_capacity(args.routes.len());
    for route in &args.routes {
        let traces = route.profile.traces().map_err(|error| {
            anyhow::anyhow!("network {}: {}: {}", route.name, error.key, error.message)
        })?;
        routes.push((route.clone(), traces));
    }
    let mut forwarder = Forwarder::new(routes, args.seed);
    let ready = LinkReady {
        ready: true,
        pid: std::process::id(),
    };
    println!("{}", serde_json::to_string(&ready)?);
    let (started, cpu_at_start) = (Instant::now(), procfs::cpu_seconds(None));
    let write_errors = forward(&device, &mut forwarder, &stop)?;
    let report = report(&forwarder, write_errors, started, cpu_at_start);
    let json = serde_json::to_string(&report)?;
    if let Some(path) = &args.report {
        std::fs::write(path, &json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let _ = writeln!(std::io::stdout(), "{json}");
    Ok(())
}

/// The longest the loop sleeps with nothing due, so a stop is seen within it.
const IDLE_WAKE: Duration = Duration::from_millis(100);
/// Packets read in one turn before the due ones are written.
const READ_BATCH: usize = 256;

/// Reads packets as they come and writes each when its link lets it go, until
/// `stop`; returns how many writes the kernel refused.
fn forward(
    device: &std::fs::File,
    forwarder: &mut Forwarder,
    stop: &AtomicBool,
) -> anyhow::Result<u64> {
    let mut buffer = vec![0u8; 65_536];
    let (mut write_errors, mut swept) = (0u64, Instant::now());
    let mut send = |packet: &[u8]| {
        if (&*device).write(packet).is_err() {
            write_errors += 1;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let wait = forwarder
            .next_due()
            .map_or(IDLE_WAKE, |due| due.saturating_duration_since(now))
            .min(IDLE_WAKE);
        let timeout = rustix::time::Timespec {
            tv_sec: wait.as_secs() as i64,
            tv_nsec: i64::from(wait.subsec_nanos()),
        };
        let mut fds = [PollFd::new(device, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err).context("cannot poll the TUN device"),
        }
        for _ in 0..READ_BATCH {
            match (&*device).read(&mut buffer) {
                Ok(read) => {
                    let packet = buffer[..read].to_vec();
                    if let Some(passed) = forwarder.admit(packet, Instant::now()) {
                        send(&passed);
                    }
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == ErrorKind::Interrupted => break,
                Err(err) => return Err(err).context("cannot read the TUN device"),
            }
        }
        let now = Instant::now();
        while let Some(packet) = forwarder.pop_due(now) {
            send(&packet);
        }
        if now.duration_since(swept) > Duration::from_secs(60) {
            forwarder.forget_idle(now);
            swept = now;
        }
    }
    Ok(write_errors)
}

fn report(
    forwarder: &Forwarder,
    write_errors: u64,
    started: Instant,
    cpu_at_start: Option<f64>,
) -> LinkReport {
    let networks: Vec<RouteReport> = forwarder
        .routes()
        .iter()
        .zip(forwarder.counts())
        .map(|(route, counts)| RouteReport {
            name: route.name.clone(),
            subnet: route.subnet.to_string(),
            profile: route.profile.clone(),
            counts: counts.clone(),
        })
        .collect();
    let packets = forwarder.passed
        + networks
            .iter()
            .map(|network| network.counts.packets_up + network.counts.packets_down)
            .sum::<u64>();
    let wall_seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = procfs::cpu_seconds(None)
        .zip(cpu_at_start)
        .map(|(end, start)| end - start);
    let kpps = packets as f64 / wall_seconds / 1000.0;
    LinkReport {
        networks,
        passed: forwarder.passed,
        peak_held: forwarder.peak_held as u64,
        write_errors,
        wall_seconds,
        cpu_seconds,
        packets,
        cores_per_kpps: cpu_seconds
            .filter(|_| packets > 0)
            .map(|cpu| cpu / wall_seconds / kpps),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_args_cross_the_seam_unchanged() {
        let custom =
            parse_route("198.18.17.0/24=train{delay = \"60ms\", loss = \"1%\", down = \"5mbit\"}")
                .unwrap();
        assert_eq!(custom.profile.delay.0, Duration::from_millis(60));
        let traced = parse_route(
            "198.18.18.0/24=cell{down_trace = \"traces/a b.down\", up_trace = \"/t/\\\"q\\\".up\"}",
        )
        .unwrap();
        assert_eq!(
            traced.profile.up_trace.as_deref(),
            Some(std::path::Path::new("/t/\"q\".up"))
        );
        assert_eq!(custom.name, "train");
        let args = LinkArgs {
            tun: "pflink0".to_owned(),
            routes: vec![parse_route("198.18.16.0/24=lte").unwrap(), custom, traced],
            seed: 9,
            report: Some("/tmp/a b.json".into()),
        };
        let argv = args.to_argv().unwrap();
        assert!(
            argv.contains(&"--route=198.18.16.0/24=lte".to_owned()),
            "{argv:?}"
        );
        let parsed: LinkArgs = argv::parse(&argv).unwrap();
        assert_eq!(parsed, args);
    }

    #[test]
    fn a_bad_route_says_what_to_write() {
        for (text, says) in [
            ("198.18.16.0/24", "SUBNET=PROFILE"),
            ("198.18.16.0/24=5g", "shipped: wifi, lte"),
            ("198.18.16.0=lte", "not a subnet"),
            (
                "198.18.16.0/24=x{delay = \"1ms\", jitter = \"5ms\"}",
                "jitter",
            ),
            ("198.18.16.0/24=x{latency = \"1ms\"}", "unknown field"),
            (
                "198.18.16.0/24=x{up = \"1mbit\", up_trace = \"a.up\"}",
                "up_trace replaces up",
            ),
        ] {
            let err = parse_route(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
