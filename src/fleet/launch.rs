//! `pingfleet devices`: its flags, building the worker's devices, running the engine,
//! and reporting (a summary on standard output, the JSON document with `--output`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use super::churn::Churn;
use super::device::Device;
use super::engine::{Engine, EngineConfig, InjectorConfig, RunEnd};
use super::injector::{Pattern, Schedule};
use super::profile::{Profile, ProfileFile, ProfileMix, ProfileSpec};
use super::report::WorkerReport;
use super::target::Target;
use crate::eas::ProtocolVersion;
use crate::partition::{partition_of, Partition};
use crate::tls::KeyExchange;

/// The injector's schedule shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PatternKind {
    Fixed,
    Poisson,
    Burst,
}

/// Flags of `pingfleet devices`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevicesArgs {
    /// EAS server URL (repeatable: devices are spread over the targets in turn, e.g.
    /// http://127.0.0.1:8080 and http://127.0.0.2:8080 to use more ephemeral ports).
    #[arg(long = "target", value_name = "URL", required = true)]
    pub targets: Vec<String>,
    /// The targets are the server partitions in partition order: each device connects
    /// to the one that owns its user (instead of taking the targets in turn).
    #[arg(long)]
    pub route_by_partition: bool,
    /// UDP notification address of each server partition, in partition order
    /// (repeatable). Without it nothing is injected: parking and heartbeats only.
    #[arg(long = "notify", value_name = "ADDR")]
    pub notify: Vec<SocketAddr>,
    /// Devices in the whole fleet (this worker runs its shard of them).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub devices: usize,
    /// This worker's shard j of M: devices j, j+M, j+2M, ...
    #[arg(long, value_name = "j/M", default_value = "0/1")]
    pub shard: Partition,
    /// User names are PREFIX0, PREFIX1, ... by device index.
    #[arg(long, default_value = "user")]
    pub user_prefix: String,
    #[arg(long, default_value = "pingfleet")]
    pub password: String,
    /// A file of `user:password` lines, one per device, instead of synthetic users.
    #[arg(long, value_name = "PATH")]
    pub credentials: Option<PathBuf>,
    /// The hold phase, after every device has bootstrapped: devices parked and
    /// notifications injected, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// The longest the ramp-up may take before the hold phase starts anyway.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub ramp_timeout: Duration,
    /// After the duration, the longest wait for undelivered notifications.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain: Duration,
    /// A notification not delivered within the device's heartbeat plus this is lost.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// New devices started per second (ramp-up).
    #[arg(long, value_name = "PER_S", default_value_t = 5000.0)]
    pub connect_rate: f64,
    /// The most devices bootstrapping (connecting, handshaking, syncing) at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_bootstrapping: usize,
    /// Notifications per second (fixed and poisson patterns).
    #[arg(long, value_name = "PER_S", default_value_t = 10.0)]
    pub rate: f64,
    #[arg(long, value_enum, default_value_t = PatternKind::Fixed)]
    pub pattern: PatternKind,
    /// Burst: the share of devices notified, in percent.
    #[arg(long, default_value_t = 10.0)]
    pub burst_percent: f64,
    /// Burst: the window the burst is spread over.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub burst_window: Duration,
    /// Start the hold phase only on SIGUSR1 (or at the ramp timeout), so several workers
    /// driven by `pingfleet run` measure together once every device is parked.
    #[arg(long)]
    pub wait_for_start: bool,
    /// How long after the hold phase starts the injector begins.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub inject_after: Duration,
    /// Heartbeat each device asks for, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 480)]
    pub heartbeat: u32,
    /// Each device's heartbeat differs by up to this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub heartbeat_jitter: u32,
    /// Folder ids each device pushes.
    #[arg(long = "folder", value_name = "ID", default_values_t = vec!["5".to_owned()])]
    pub folders: Vec<String>,
    #[arg(long, default_value = "14.1")]
    pub protocol_version: ProtocolVersion,
    #[arg(long, default_value = "Android")]
    pub device_type: String,
    #[arg(long, default_value = "Android/14-EAS-2.0")]
    pub user_agent: String,
    /// Re-Ping with an empty body once the server has the Ping cached.
    #[arg(long)]
    pub empty_reping: bool,
    /// Send `Connection: close` on every Ping (a new connection per Ping).
    #[arg(long)]
    pub close_per_ping: bool,
    /// Skip Provision during bootstrap.
    #[arg(long)]
    pub no_provision: bool,
    /// A mix of device kinds: a TOML file of `[[profile]]` entries (name, weight, and
    /// any of version, device_type, user_agent, folders, heartbeat, heartbeat_jitter,
    /// provision, empty_reping, close_per_ping); what an entry leaves out comes from
    /// the flags above. Each device's kind depends on its index and --seed only.
    #[arg(long, value_name = "FILE")]
    pub profiles: Option<PathBuf>,
    /// The churn stage: this fraction of the devices loses its connection each minute
    /// of the hold (e.g. 0.2) and reconnects after the usual backoff.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    pub churn_per_minute: f64,
    /// Print the running figures (bootstrapped, notified, delivered, lost, wake-up p99)
    /// as one JSON line a second on stdout (`{"progress": {...}}`).
    #[arg(long)]
    pub progress: bool,
    /// Trust the certificates in this PEM file (for https targets).
    #[arg(long, value_name = "PATH")]
    pub ca: Option<PathBuf>,
    /// Accept any server certificate. Only for test servers.
    #[arg(long)]
    pub insecure: bool,
    /// The TLS key exchange devices offer.
    #[arg(long, value_enum, default_value_t = KeyExchange::Hybrid)]
    pub tls_key_exchange: KeyExchange,
    /// Seed of every random choice (jitter, schedule, backoff).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the worker's JSON document here.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Runs `pingfleet devices` to completion.
pub fn devices(args: DevicesArgs) -> anyhow::Result<()> {
    rlimit::increase_nofile_limit(u64::MAX).ok();
    if !(0.0..=1.0).contains(&args.churn_per_minute) {
        anyhow::bail!(
            "--churn-per-minute is a fraction of the devices, 0 to 1 (got {})",
            args.churn_per_minute
        );
    }
    let targets: Vec<Target> = args
        .targets
        .iter()
        .map(|url| Target::parse(url))
        .collect::<anyhow::Result<_>>()?;
    let tls = match targets.iter().any(|target| target.tls) {
        true => Some(client_tls(&args)?),
        false => None,
    };
    let rss_before_devices = crate::measure::procfs::rss_bytes(None);
    let credentials = credentials(&args)?;
    let base = Profile {
        version: args.protocol_version,
        device_type: args.device_type.clone(),
        user_agent: args.user_agent.clone(),
        folders: args.folders.clone(),
        provision: !args.no_provision,
        empty_reping: args.empty_reping,
        close_per_ping: args.close_per_ping,
        heartbeat_s: args.heartbeat,
        heartbeat_jitter_s: args.heartbeat_jitter,
        ..Profile::default()
    };
    let mix = ProfileMix::new(&base, &profile_specs(&args)?, args.seed);
    let fleet_indices: Vec<usize> = credentials.iter().map(|(index, _, _)| *index).collect();
    let target_count = targets.len();
    let target_of: Vec<usize> = credentials
        .iter()
        .map(|(index, user, _)| match args.route_by_partition {
            true => partition_of(user, target_count as u32) as usize,
            false => index % target_count,
        })
        .collect();
    let devices: Vec<Device> = credentials
        .into_iter()
        .zip(&target_of)
        .map(|((index, user, password), target)| {
            let seed = args.seed.wrapping_mul(1_000_003) ^ index as u64;
            let profile = mix.profile(mix.pick(index)).clone();
            Device::new(&user, &password, &targets[*target].host, profile, seed)
        })
        .collect();
    let injector = (!args.notify.is_empty()).then(|| InjectorConfig {
        schedule: Schedule::new(pattern(&args), devices.len(), args.seed),
        notify: args.notify.clone(),
        start_after: args.inject_after,
    });
    let config = EngineConfig {
        targets,
        tls,
        connect_rate_per_s: args.connect_rate,
        max_bootstrapping: args.max_bootstrapping,
        ramp_timeout: args.ramp_timeout,
        duration: args.duration,
        hold_gate: match args.wait_for_start {
            true => {
                let gate = Arc::new(AtomicBool::new(false));
                signal_hook::flag::register(signal_hook::consts::SIGUSR1, gate.clone())?;
                Some(gate)
            }
            false => None,
        },
        drain: args.drain,
        grace: args.grace,
        shard: args.shard.index,
        progress: args.progress,
        churn: (args.churn_per_minute > 0.0)
            .then(|| Churn::new(args.churn_per_minute, devices.len(), args.seed)),
        injector,
    };
    let started = SystemTime::now();
    let engine = Engine::new(config, devices, move |local| target_of[local])?;
    // SIGINT (Ctrl-C reaches the whole process group) or SIGTERM end the run early;
    // the worker still reports what it measured.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let (stats, end) = engine.run(stop)?;
    let report = WorkerReport::new(
        &args,
        &mix,
        &fleet_indices,
        started,
        rss_before_devices,
        &stats,
        &end,
    );
    print_summary(&report, &end);
    if let Some(path) = &args.output {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn pattern(args: &DevicesArgs) -> Pattern {
    match args.pattern {
        PatternKind::Fixed => Pattern::Fixed {
            rate_per_s: args.rate,
        },
        PatternKind::Poisson => Pattern::Poisson {
            rate_per_s: args.rate,
        },
        PatternKind::Burst => Pattern::Burst {
            percent: args.burst_percent,
            window: args.burst_window,
        },
    }
}

/// The entries of `--profiles`, checked.
fn profile_specs(args: &DevicesArgs) -> anyhow::Result<Vec<ProfileSpec>> {
    let Some(path) = &args.profiles else {
        return Ok(Vec::new());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: ProfileFile =
        toml::from_str(&text).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
    if let Some(problem) = file.profile.iter().find_map(ProfileSpec::problem) {
        anyhow::bail!("{}: {problem}", path.display());
    }
    Ok(file.profile)
}

/// `(index in the fleet, user, password)` of this shard's devices (only those: a worker
/// of a 400,000-device fleet does not hold everybody's names).
fn credentials(args: &DevicesArgs) -> anyhow::Result<Vec<(usize, String, String)>> {
    let mine = |index: &usize| *index as u32 % args.shard.count == args.shard.index;
    let Some(path) = &args.credentials else {
        return Ok((0..args.devices)
            .filter(mine)
            .map(|index| {
                let user = format!("{}{index}", args.user_prefix);
                (index, user, args.password.clone())
            })
            .collect());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut list = Vec::new();
    let entries = text
        .lines()
        .enumerate()
        .map(|(number, line)| (number, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
    for (index, (number, line)) in entries.enumerate().take(args.devices) {
        let (user, password) = line.split_once(':').with_context(|| {
            format!("{}:{}: expected user:password", path.display(), number + 1)
        })?;
        if mine(&index) {
            list.push((index, user.to_owned(), password.to_owned()));
        }
    }
    Ok(list)
}

fn client_tls(args: &DevicesArgs) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    match (&args.ca, args.insecure) {
        (Some(ca), _) => crate::tls::client_config_trusting(ca, args.tls_key_exchange),
        (None, true) => crate::tls::client_config_insecure(args.tls_key_exchange),
        (None, false) => {
            anyhow::bail!("https targets need --ca PEM (the server's certificate) or --insecure")
        }
    }
}

fn print_summary(report: &WorkerReport, end: &RunEnd) {
    let counters = &report.counters;
    println!(
        "devices {} (shard {}), parked at end {}, requests {}, connections {}, reconnects {}, stopped {}",
        report.devices,
        report.shard,
        end.devices_parked,
        counters.requests.values().sum::<u64>(),
        counters.connections_opened,
        counters.reconnects,
        counters.devices_stopped
    );
    if let Some(seconds) = report.bootstrap_all_s {
        println!(
            "all devices bootstrapped in {seconds:.2} s ({:.0} devices/s)",
            report.devices as f64 / seconds.max(1e-9)
        );
    }
    println!(
        "notifications sent {}, delivered {}, lost {}",
        counters.notifications_sent, counters.notifications_delivered, counters.notifications_lost
    );
    for (name, histogram) in &report.histograms {
        let s = histogram.summary;
        if s.count > 0 {
            println!(
                "{name:<22} n={:<7} p50 {:>7} us  p99 {:>7} us  p99.9 {:>7} us  max {:>8} us",
                s.count, s.p50_us, s.p99_us, s.p999_us, s.max_us
            );
        }
    }
    if !counters.errors.is_empty() {
        println!("errors: {:?}", counters.errors);
    }
}
