//! `pingfleet devices`: its flags, building the worker's devices, running the engine,
//! and reporting (a summary on standard output, the JSON document with `--output`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use super::churn::Churn;
use super::connect::Sources;
use super::device::Device;
use super::engine::{Engine, EngineConfig, HoldStart, RunEnd};
use super::heartbeat::{HeartbeatPlan, HeartbeatStrategy};
use super::injector::{InjectorConfig, Pattern, PatternKind, Schedule};
use super::profile::{
    check_device_id_prefix, Profile, ProfileFile, ProfileMix, ProfileSpec, DEFAULT_DEVICE_ID_PREFIX,
};
use super::report::{FleetDigest, WorkerIdentity, WorkerReport};
use super::sink::{check_inject_url, parse_inject_url, Account, Destinations, Outlet};
use super::target::Target;
use super::tickets::TlsClients;
use crate::argv;
use crate::eas::ProtocolVersion;
use crate::partition::{partition_of, Partition};
use crate::tls::KeyExchange;
use crate::units::Share;

/// Flags of `pingfleet devices`; `pingfleet run` starts its workers from values of this
/// type (see [`DevicesArgs::to_argv`]).
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Serialize)]
pub struct DevicesArgs {
    /// EAS server URL (repeatable: devices are spread over the targets in turn, e.g.
    /// http://127.0.0.1:8080 and http://127.0.0.2:8080 to use more ephemeral ports).
    #[arg(long = "target", value_name = "URL", required = true)]
    pub targets: Vec<String>,
    /// Connect from these local addresses (repeatable), a block of devices from each
    /// in turn, so no single address runs short of ephemeral ports; without it,
    /// loopback targets get loopback sources of the worker's own and others the
    /// kernel's choice.
    #[arg(long = "source-address", value_name = "ADDR")]
    pub source_addresses: Vec<std::net::Ipv4Addr>,
    /// The targets are the server partitions in partition order: each device connects
    /// to the one that owns its user (instead of taking the targets in turn).
    #[arg(long)]
    pub route_by_partition: bool,
    /// UDP notification address of each server partition, in partition order
    /// (repeatable). Without it nothing is injected: parking and heartbeats only.
    #[arg(long = "notify", value_name = "ADDR")]
    pub notify: Vec<SocketAddr>,
    /// Put each planned change into a real mail store, for EAS servers other than
    /// `pingfleet serve` (repeatable: one per partition, as --notify):
    /// `imap://[LOGIN[:PASSWORD]@]HOST:PORT[/MAILBOX]` appends to the Inbox (logging in
    /// as each device's user, or as LOGIN with `{user}` replaced, e.g. a dovecot master
    /// user `{user}*admin`); `smtp://HOST:PORT[?domain=D]` delivers to the user's
    /// address (a third `:address` column of --credentials, else `user@D`);
    /// `maildir:/PATH/{user}/Maildir` writes into `new/`; `exec:COMMAND ARGS` runs a
    /// command with `{user}`, `{folder}`, `{seq}` replaced and the message on stdin.
    /// Every message's subject carries `pingfleet seq=N`; latency counts from the plan.
    #[arg(long = "inject", value_name = "URL", value_parser = check_inject_url, conflicts_with = "notify")]
    pub inject: Vec<String>,
    /// Threads (and connections per mail server) that deliver --inject mail.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub inject_senders: usize,
    /// Devices in the whole fleet (this worker runs its shard of them).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub devices: usize,
    /// This worker's shard j of M: devices j, j+M, j+2M, ...
    #[arg(long, value_name = "j/M", default_value = "0/1")]
    pub shard: Partition,
    /// User names are PREFIX0, PREFIX1, ... by device index.
    #[arg(long, default_value = "user")]
    pub user_prefix: String,
    /// Every synthetic user's password (the bundled server's default).
    #[arg(long, default_value = "pingfleet")]
    pub password: String,
    /// A file of `user:password` lines, one per device, instead of synthetic users.
    #[arg(long, value_name = "PATH")]
    pub credentials: Option<PathBuf>,
    /// The hold phase, after every device has bootstrapped: devices parked and
    /// notifications injected, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// The longest the ramp-up may take before the hold phase starts anyway.
    #[arg(long, default_value = "120s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub ramp_timeout: Duration,
    /// After the duration, the longest wait for undelivered notifications.
    #[arg(long, default_value = "10s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub drain: Duration,
    /// A notification not delivered within the device's heartbeat plus this is lost.
    #[arg(long, default_value = "10s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// New devices started per second (ramp-up).
    #[arg(long, value_name = "PER_S", default_value_t = 5000.0)]
    pub connect_rate: f64,
    /// The most devices bootstrapping (connecting, handshaking, syncing) at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_bootstrapping: usize,
    /// Notifications per second to the whole fleet (fixed and poisson patterns); this
    /// worker sends those for its own shard's devices. The schedule depends only on
    /// --seed and --devices, so any number of workers sends the same notifications.
    #[arg(long, value_name = "PER_S", default_value_t = 10.0)]
    pub rate: f64,
    /// How notifications are spread in time: fixed (evenly, --rate a second), poisson
    /// (random gaps averaging --rate a second) or burst (--burst-share of the devices
    /// within --burst-window).
    #[arg(long, value_enum, default_value_t = PatternKind::Fixed)]
    pub pattern: PatternKind,
    /// Burst: the share of the devices notified, e.g. 50%.
    #[arg(long, value_name = "PERCENT", default_value = "10%")]
    pub burst_share: Share,
    /// Burst: the window the burst is spread over.
    #[arg(long, default_value = "100ms", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub burst_window: Duration,
    /// Start the hold phase only on SIGUSR1 (or at the ramp timeout), so several workers
    /// driven by `pingfleet run` measure together once every device is parked.
    #[arg(long, conflicts_with = "hold_at")]
    pub wait_for_start: bool,
    /// Start the hold phase at this wall-clock instant (RFC 3339, e.g.
    /// 2026-12-01T10:00:00Z), whatever the ramp has reached: shards of one fleet on
    /// several machines (a Kubernetes Indexed Job) then measure the same minutes. The
    /// ramp timeout does not apply; devices not parked by then count as never parked.
    #[arg(long, value_name = "TIME", value_parser = argv::wall_clock)]
    #[serde(with = "humantime_serde", default)]
    pub hold_at: Option<SystemTime>,
    /// How long after the hold phase starts the injector begins.
    #[arg(long, default_value = "0s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub inject_after: Duration,
    /// Heartbeat each device asks for: seconds (480) or a duration (8m, 1.5s). A Ping
    /// carries whole seconds, rounded up; the device's own deadlines use it exactly.
    #[arg(long, value_name = "DURATION", default_value = "480s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Each device's heartbeat differs by up to this (seconds or a duration).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub heartbeat_jitter: Duration,
    /// How the heartbeat moves: fixed (--heartbeat, always), adaptive (Windows Mobile:
    /// from --heartbeat-min up by --heartbeat-increment after each Ping that held, back
    /// to the last good value when one dies, and settled there) or stepped (up one
    /// increment after --heartbeat-clean-run clean Pings, down one on a failure).
    #[arg(long, value_enum, default_value_t = HeartbeatStrategy::Fixed)]
    pub heartbeat_strategy: HeartbeatStrategy,
    /// The lowest heartbeat an adaptive or stepped device uses, and where it starts.
    #[arg(long, value_name = "DURATION", default_value = "480s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub heartbeat_min: Duration,
    /// The highest heartbeat an adaptive or stepped device uses.
    #[arg(long, value_name = "DURATION", default_value = "3540s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub heartbeat_max: Duration,
    /// How far an adaptive or stepped device raises (or lowers) its heartbeat at once.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub heartbeat_increment: Duration,
    /// Clean Pings in a row before a stepped device steps up.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub heartbeat_clean_run: u32,
    /// How long after its heartbeat a device waits for the Ping's answer before it
    /// takes the connection for dead (AOSP waits 5 s).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub read_margin: Duration,
    /// Reconnect backoff: a device waits half to full of this x 2^attempt (at most
    /// 60 times this) before it reconnects after a failure.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Folders each device pushes (repeatable): `inbox`, `calendar`, `contacts` or
    /// `tasks`, found by type in the hierarchy the server sends each device (as a phone
    /// finds them), or a folder id as the server names it. A pushed folder the
    /// hierarchy lacks stops the device with an error.
    #[arg(long = "folder", value_name = "KIND|ID", default_values_t = vec!["inbox".to_owned()])]
    pub folders: Vec<String>,
    /// The EAS protocol version devices ask for (MS-ASProtocolVersion): 2.5, 12.0,
    /// 12.1, 14.0, 14.1, 16.0 or 16.1; each settles on the highest the server offers
    /// up to it.
    #[arg(long, default_value = "14.1")]
    pub protocol_version: ProtocolVersion,
    /// The DeviceType devices send (the request line's and Provision's), e.g. iPhone.
    #[arg(long, default_value = "Android")]
    pub device_type: String,
    /// The User-Agent header devices send.
    #[arg(long, default_value = "Android/14-EAS-2.0")]
    pub user_agent: String,
    /// What every DeviceId starts with (letters and digits, at most 16). A DeviceId is
    /// this and 16 hex digits from the user and the device's index, the same on every
    /// run and seed, so a server keeps one partnership per device; give two fleets on
    /// one server different prefixes to keep theirs apart.
    #[arg(long, default_value = DEFAULT_DEVICE_ID_PREFIX, value_parser = check_device_id_prefix)]
    pub device_id_prefix: String,
    /// Re-Ping with an empty body once the server has the Ping cached.
    #[arg(long)]
    pub empty_reping: bool,
    /// Send `Connection: close` on every Ping (a new connection per Ping).
    #[arg(long)]
    pub close_per_ping: bool,
    /// Skip Provision during bootstrap.
    #[arg(long)]
    pub no_provision: bool,
    /// Make every connection a full TLS handshake: keep no session ticket to resume
    /// with (phones keep theirs and resume after a reconnect).
    #[arg(long)]
    pub no_tls_resumption: bool,
    /// A mix of device kinds: a TOML file of `[[profile]]` entries (name, weight, and
    /// any of version, device_type, user_agent, folders, heartbeat, heartbeat_jitter,
    /// provision, empty_reping, close_per_ping, tls_resumption); what an entry leaves out comes from
    /// the flags above. Each device's kind depends on its index and --seed only.
    #[arg(long, value_name = "FILE", conflicts_with = "profile")]
    pub profiles: Option<PathBuf>,
    /// One kind of the mix, as JSON (repeatable; instead of --profiles), e.g.
    /// '{"name":"iphone","weight":5,"version":"16.1","heartbeat":"15m"}'.
    #[arg(long, value_name = "JSON", value_parser = parse_profile)]
    pub profile: Vec<ProfileSpec>,
    /// The churn stage: this share of the devices loses its connection each minute
    /// of the hold (e.g. 20%) and reconnects after the usual backoff.
    #[arg(long, value_name = "PERCENT", default_value = "0%")]
    pub churn_per_minute: Share,
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
    /// The run's seed: every random choice (kinds, jitter, schedule, backoff) follows
    /// it and each device's index in the whole fleet, so every shard of a fleet takes
    /// the same seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the worker's JSON document here.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

impl DevicesArgs {
    /// The flags' defaults, aimed at `targets`.
    pub fn for_targets(targets: Vec<String>) -> Self {
        let mut args: Self = argv::parse(&[
            "devices".to_owned(),
            "--target".to_owned(),
            "http://x".to_owned(),
        ])
        .expect("devices needs only --target");
        args.targets = targets;
        args
    }

    /// `devices` and the flags that give these values back.
    pub fn to_argv(&self) -> anyhow::Result<Vec<String>> {
        argv::to_argv("devices", self)
    }
}

/// Runs `pingfleet devices` to completion.
pub fn devices(args: DevicesArgs) -> anyhow::Result<()> {
    if !crate::lifeline::bind_to_parent() {
        anyhow::bail!("the run that started this process has ended");
    }
    rlimit::increase_nofile_limit(u64::MAX).ok();
    if !(0.0..=1.0).contains(&args.churn_per_minute.fraction()) {
        anyhow::bail!(
            "--churn-per-minute is a share of the devices, 0% to 100% (got {})",
            args.churn_per_minute
        );
    }
    for (flag, rate) in [("--rate", args.rate), ("--connect-rate", args.connect_rate)] {
        if !(0.0..=super::injector::MAX_RATE_PER_S).contains(&rate) {
            anyhow::bail!(
                "{flag} must be 0 to {} per second (got {rate})",
                super::injector::MAX_RATE_PER_S
            );
        }
    }
    let targets: Vec<Target> = args
        .targets
        .iter()
        .map(|url| Target::parse(url))
        .collect::<anyhow::Result<_>>()?;
    let tls_config = match targets.iter().any(|target| target.tls) {
        true => Some(client_tls(&args)?),
        false => None,
    };
    let rss_before_devices = crate::measure::procfs::rss_bytes(None);
    let (credentials, fleet_size) = credentials(&args)?;
    let base = Profile {
        version: args.protocol_version,
        device_type: args.device_type.clone(),
        user_agent: args.user_agent.clone(),
        device_id_prefix: args.device_id_prefix.clone(),
        folders: args.folders.clone(),
        provision: !args.no_provision,
        empty_reping: args.empty_reping,
        close_per_ping: args.close_per_ping,
        tls_resumption: !args.no_tls_resumption,
        heartbeat: args.heartbeat,
        heartbeat_jitter: args.heartbeat_jitter,
        heartbeat_plan: heartbeat_plan(&args)?,
        read_margin: args.read_margin,
        backoff_base: args.backoff_base,
        backoff_max: args.backoff_base.saturating_mul(60),
        ..Profile::default()
    };
    let mix = ProfileMix::new(&base, &profile_specs(&args)?, args.seed);
    let fleet_indices: Vec<usize> = credentials.iter().map(|entry| entry.index).collect();
    let accounts: Vec<Account> = credentials
        .iter()
        .map(|entry| Account {
            password: entry.password.clone(),
            address: entry.address.clone(),
        })
        .collect();
    let target_count = targets.len();
    let target_of: Vec<usize> = credentials
        .iter()
        .map(|entry| match args.route_by_partition {
            true => partition_of(&entry.user, target_count as u32) as usize,
            false => entry.index % target_count,
        })
        .collect();
    // Opened now, so mail senders log in while the fleet ramps up.
    let outlet = match destinations(&args) {
        Some(destinations) => {
            let users = credentials
                .iter()
                .zip(&accounts)
                .map(|(entry, account)| (entry.user.clone(), account.clone()))
                .collect();
            Some(Outlet::open(destinations, users)?)
        }
        None => None,
    };
    let mut digest = FleetDigest::default();
    let devices: Vec<Device> = credentials
        .into_iter()
        .zip(&target_of)
        .map(
            |(
                Credential {
                    index,
                    user,
                    password,
                    ..
                },
                target,
            )| {
                let kind = mix.pick(index);
                let profile = mix.profile(kind).clone();
                let device = Device::new(
                    &user,
                    &password,
                    &targets[*target].host_header,
                    profile,
                    index,
                    args.seed,
                );
                digest.add_device(index, &mix.spec(kind).name, &device);
                device
            },
        )
        .collect();
    let tls = tls_config.map(|config| {
        let resuming = devices.iter().filter(|d| d.tls_resumption()).count();
        TlsClients::new(&config, resuming)
    });
    let injector = outlet.map(|outlet| InjectorConfig {
        schedule: Schedule::new(
            Pattern::new(
                args.pattern,
                args.rate,
                args.burst_share.percent(),
                args.burst_window,
            ),
            fleet_size,
            args.seed,
            args.shard,
        ),
        outlet,
        accounts,
        start_after: args.inject_after,
    });
    let config = EngineConfig {
        targets,
        tls,
        connect_rate_per_s: args.connect_rate,
        max_bootstrapping: args.max_bootstrapping,
        ramp_timeout: args.ramp_timeout,
        duration: args.duration,
        hold_start: hold_start(&args)?,
        flush_mark: {
            // SIGUSR2: the path in front of the server was just flushed.
            let mark = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(signal_hook::consts::SIGUSR2, mark.clone())?;
            Some(mark)
        },
        drain: args.drain,
        grace: args.grace,
        sources: Sources::new(args.shard.index, args.source_addresses.clone()),
        progress: args.progress,
        churn: (args.churn_per_minute.fraction() > 0.0).then(|| {
            let share = args.churn_per_minute.fraction();
            Churn::new(share, devices.len(), args.seed, args.shard)
        }),
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
    digest.notifications = stats.notifications_digest;
    digest.planned_notifications = stats.notifications_planned;
    let report = WorkerReport::new(
        WorkerIdentity {
            shard: args.shard,
            targets: args.targets.clone(),
            digest,
        },
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
    match failure(&report) {
        Some(reason) => Err(anyhow::anyhow!("{reason}")),
        None => Ok(()),
    }
}

/// The heartbeat strategy the flags give, checked.
fn heartbeat_plan(args: &DevicesArgs) -> anyhow::Result<HeartbeatPlan> {
    let plan = HeartbeatPlan {
        strategy: args.heartbeat_strategy,
        min: args.heartbeat_min,
        max: args.heartbeat_max,
        increment: args.heartbeat_increment,
        clean_run: args.heartbeat_clean_run,
    };
    match plan.problem() {
        Some(problem) => anyhow::bail!("--{}", problem.replace('_', "-")),
        None => Ok(plan),
    }
}

/// When the hold starts: on SIGUSR1 (`--wait-for-start`), at a wall-clock instant
/// (`--hold-at`, at most a day ahead and not past), or once every device has parked.
fn hold_start(args: &DevicesArgs) -> anyhow::Result<HoldStart> {
    if args.wait_for_start {
        let gate = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, gate.clone())?;
        return Ok(HoldStart::OnSignal(gate));
    }
    let Some(at) = args.hold_at else {
        return Ok(HoldStart::WhenSettled);
    };
    let now = SystemTime::now();
    let ahead = at.duration_since(now).map_err(|past| {
        anyhow::anyhow!(
            "--hold-at {} passed {:.1} s ago: pick an instant after every shard has started",
            humantime::format_rfc3339(at),
            past.duration().as_secs_f64()
        )
    })?;
    if ahead > MAX_HOLD_AT_AHEAD {
        anyhow::bail!(
            "--hold-at {} is more than a day ahead",
            humantime::format_rfc3339(at)
        );
    }
    Ok(HoldStart::At(std::time::Instant::now() + ahead))
}

/// The furthest ahead `--hold-at` may be (a typo in the date is caught, not waited for).
const MAX_HOLD_AT_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// Why a worker did not do what it was asked, in one line: every device refused its
/// credentials, some device never parked a Ping (with what kept them from it), or not
/// one notification delivered. `None` when it did.
pub fn failure(report: &WorkerReport) -> Option<String> {
    let counters = &report.counters;
    if report.stopped_early {
        return Some(format!(
            "stopped by a signal before the run's end: partial figures ({} notifications unfinished, not lost)",
            counters.notifications_unfinished_at_stop
        ));
    }
    let refused: u64 = ["401", "403"]
        .iter()
        .filter_map(|status| counters.http_status.get(*status))
        .sum();
    if report.devices > 0 && counters.devices_stopped as usize >= report.devices && refused > 0 {
        return Some(format!(
            "every device was refused by the server ({refused} responses 401/403): check the credentials"
        ));
    }
    let never_parked: u64 = counters.never_parked.values().sum();
    if report.devices > 0 && never_parked > 0 {
        let mut reasons: Vec<(&String, &u64)> = counters.never_parked.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let reasons: Vec<String> = reasons
            .iter()
            .take(3)
            .map(|(why, count)| format!("{why} ({count})"))
            .collect();
        let who = match never_parked as usize >= report.devices {
            true => format!("no device of {} parked a Ping", report.devices),
            false => format!(
                "{never_parked} of {} devices never parked a Ping",
                report.devices
            ),
        };
        return Some(format!("{who}; last setback: {}", reasons.join(", ")));
    }
    let planned = report.fleet_digest.planned_notifications;
    if planned > 0 && counters.notifications_delivered == 0 {
        let worst_error = counters
            .errors
            .iter()
            .max_by_key(|(_, count)| **count)
            .map_or(String::new(), |(kind, count)| {
                format!(" (most frequent error: {kind}, {count} times)")
            });
        return Some(format!(
            "none of {planned} planned notifications reached its device{worst_error}"
        ));
    }
    None
}

/// One `--profile` entry: a JSON table, checked.
fn parse_profile(text: &str) -> Result<ProfileSpec, String> {
    let spec: ProfileSpec =
        serde_json::from_str(text).map_err(|err| format!("{text:?} is not a profile: {err}"))?;
    match spec.problem() {
        Some(problem) => Err(problem),
        None => Ok(spec),
    }
}

/// The entries of `--profiles` or `--profile`, checked.
fn profile_specs(args: &DevicesArgs) -> anyhow::Result<Vec<ProfileSpec>> {
    let Some(path) = &args.profiles else {
        return Ok(args.profile.clone());
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

/// One device's entry: its index in the fleet, user, password and mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Credential {
    index: usize,
    user: String,
    password: String,
    address: Option<String>,
}

/// This shard's devices (only those: a worker of a 400,000-device fleet does not hold
/// everybody's names), and the size of the whole fleet (--devices, or fewer when the
/// credentials file is shorter).
fn credentials(args: &DevicesArgs) -> anyhow::Result<(Vec<Credential>, usize)> {
    let mine = |index: &usize| args.shard.holds(*index);
    let Some(path) = &args.credentials else {
        let list = (0..args.devices)
            .filter(mine)
            .map(|index| Credential {
                index,
                user: format!("{}{index}", args.user_prefix),
                password: args.password.clone(),
                address: None,
            })
            .collect();
        return Ok((list, args.devices));
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut list = Vec::new();
    let mut fleet_size = 0;
    let entries = text
        .lines()
        .enumerate()
        .map(|(number, line)| (number, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
    for (index, (number, line)) in entries.enumerate().take(args.devices) {
        let mut entry = credential_line(line).with_context(|| {
            format!(
                "{}:{}: expected user:password or user:password:address",
                path.display(),
                number + 1
            )
        })?;
        entry.index = index;
        fleet_size = index + 1;
        if mine(&index) {
            list.push(entry);
        }
    }
    Ok((list, fleet_size))
}

/// `user:password`, or `user:password:address` when the last field is a mail address
/// (has an `@` and no space); a password may hold colons.
fn credential_line(line: &str) -> Option<Credential> {
    let (user, rest) = line.split_once(':')?;
    let (password, address) = match rest.rsplit_once(':') {
        Some((password, address)) if address.contains('@') && !address.contains(' ') => {
            (password, Some(address.to_owned()))
        }
        _ => (rest, None),
    };
    Some(Credential {
        index: 0,
        user: user.to_owned(),
        password: password.to_owned(),
        address,
    })
}

/// Where the injector's changes go: datagrams (`--notify`), mail (`--inject`), or
/// nowhere.
fn destinations(args: &DevicesArgs) -> Option<Destinations> {
    if !args.inject.is_empty() {
        let stores = args
            .inject
            .iter()
            .map(|url| parse_inject_url(url).expect("checked when parsed"))
            .collect();
        return Some(Destinations::Mail {
            stores,
            senders: args.inject_senders,
        });
    }
    (!args.notify.is_empty()).then(|| Destinations::Datagrams(args.notify.clone()))
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
        "notifications sent {}, delivered {} (on time {}, late {}), lost {}",
        counters.notifications_sent,
        counters.notifications_delivered,
        counters.notifications_on_time,
        counters.notifications_late,
        counters.notifications_lost
    );
    if !counters.pings_died.is_empty() || !counters.heartbeat_at_end.is_empty() {
        println!(
            "pings died {:?}; heartbeats at the end {:?}",
            counters.pings_died, counters.heartbeat_at_end
        );
    }
    for (name, histogram) in &report.histograms {
        let s = histogram.summary;
        if s.count > 0 {
            println!(
                "{name:<22} n={:<7} p50 {:>7} us  p99 {:>7} us  p99.9 {:>7} us  max {:>8} us",
                s.count, s.p50_us, s.p99_us, s.p999_us, s.max_us
            );
        }
    }
    if !counters.server_versions.is_empty() {
        println!(
            "server said: MS-Server-ActiveSync {:?}, versions {:?}, negotiated {:?}",
            counters.server_versions, counters.advertised_versions, counters.negotiated_versions
        );
    }
    if !counters.errors.is_empty() {
        println!("errors: {:?}", counters.errors);
    }
    if !counters.never_parked.is_empty() {
        println!("never parked, by last setback: {:?}", counters.never_parked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn duration() -> impl Strategy<Value = Duration> {
        // Milliseconds: what scenario files and flags can say.
        (0u64..10_000_000).prop_map(Duration::from_millis)
    }

    fn words() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ./:_-]{1,12}"
    }

    fn profile() -> impl Strategy<Value = ProfileSpec> {
        (
            words(),
            1u32..100,
            proptest::option::of(proptest::sample::select(ProtocolVersion::ALL.to_vec())),
            proptest::option::of(duration()),
            proptest::option::of(proptest::collection::vec(words(), 1..3)),
            proptest::option::of(any::<bool>()),
        )
            .prop_map(|(name, weight, version, heartbeat, folders, close)| {
                let mut spec = ProfileSpec::named_only(&name);
                spec.weight = weight;
                spec.version = version;
                spec.heartbeat = heartbeat;
                spec.folders = folders;
                spec.close_per_ping = close;
                spec
            })
    }

    prop_compose! {
        fn devices_args()(
            targets in proptest::collection::vec("https?://[a-z0-9.]{1,10}:[0-9]{1,5}", 1..4),
            notify in proptest::collection::vec(any::<std::net::SocketAddrV4>(), 0..3),
            (devices, shard_count, connect_rate, rate, seed) in
                (0usize..1_000_000, 1u32..64, 0.001f64..1e6, 0.0f64..1e5, any::<u64>()),
            (duration, ramp_timeout, drain, grace, burst_window, inject_after, heartbeat, jitter) in
                (duration(), duration(), duration(), duration(), duration(), duration(), duration(), duration()),
            (pattern, key_exchange) in (
                proptest::sample::select(vec![PatternKind::Fixed, PatternKind::Poisson, PatternKind::Burst]),
                proptest::sample::select(vec![KeyExchange::Hybrid, KeyExchange::X25519]),
            ),
            switches in proptest::collection::vec(any::<bool>(), 9),
            folders in proptest::collection::vec(words(), 1..4),
            profile in proptest::collection::vec(profile(), 0..3),
            (user_prefix, password, device_type, user_agent) in (words(), words(), words(), words()),
            device_id_prefix in "[a-zA-Z0-9]{0,16}",
            (version, output, ca) in (
                proptest::sample::select(ProtocolVersion::ALL.to_vec()),
                proptest::option::of("/[a-z ]{1,10}"),
                proptest::option::of("/[a-z]{1,10}.pem"),
            ),
        ) -> DevicesArgs {
            let mut args = DevicesArgs::for_targets(targets);
            args.notify = notify.into_iter().map(SocketAddr::V4).collect();
            if args.notify.is_empty() && switches[5] {
                args.inject = vec![
                    "imap://{user}*admin:pw@127.0.0.1:143/INBOX".to_owned(),
                    "exec:/bin/deliver -d '{user}' --seq={seq}".to_owned(),
                ];
                args.inject_senders = devices % 64 + 1;
            }
            args.devices = devices;
            args.shard = Partition { index: shard_count - 1, count: shard_count };
            args.connect_rate = connect_rate;
            args.rate = rate;
            args.seed = seed;
            args.duration = duration;
            args.ramp_timeout = ramp_timeout;
            args.drain = drain;
            args.grace = grace;
            args.burst_window = burst_window;
            args.inject_after = inject_after;
            args.heartbeat = heartbeat;
            args.heartbeat_jitter = jitter;
            args.pattern = pattern;
            args.tls_key_exchange = key_exchange;
            args.route_by_partition = switches[0];
            args.wait_for_start = switches[1];
            if !switches[1] && switches[2] {
                args.hold_at = Some(SystemTime::UNIX_EPOCH + Duration::from_millis(seed % 4_000_000_000_000));
            }
            args.empty_reping = switches[2];
            args.close_per_ping = switches[3];
            args.no_provision = switches[4];
            args.progress = switches[5];
            args.insecure = switches[6];
            args.no_tls_resumption = switches[8];
            args.folders = folders;
            args.profile = profile;
            args.user_prefix = user_prefix;
            args.password = password;
            args.device_type = device_type;
            args.user_agent = user_agent;
            args.device_id_prefix = device_id_prefix;
            args.protocol_version = version;
            args.output = output.map(PathBuf::from);
            args.ca = ca.map(PathBuf::from);
            if switches[7] {
                args.credentials = Some(PathBuf::from("/creds file.txt"));
            }
            args
        }
    }

    proptest! {
        #[test]
        fn devices_args_cross_the_seam_unchanged(args in devices_args()) {
            let argv = args.to_argv().unwrap();
            let parsed: DevicesArgs = argv::parse(&argv).unwrap();
            prop_assert_eq!(parsed, args);
        }
    }

    #[test]
    fn a_device_id_prefix_is_letters_and_digits_that_leave_room_for_the_index() {
        assert_eq!(check_device_id_prefix("labA1").unwrap(), "labA1");
        assert_eq!(check_device_id_prefix("").unwrap(), "");
        for bad in ["lab-a", "a b", "x".repeat(17).as_str(), "é"] {
            let error = check_device_id_prefix(bad).unwrap_err();
            assert!(error.contains("at most 16 letters and digits"), "{error}");
        }
        let argv = [
            "devices",
            "--target",
            "http://x",
            "--device-id-prefix",
            "lab-a",
        ];
        let argv: Vec<String> = argv.map(str::to_owned).to_vec();
        let parsed: Result<DevicesArgs, _> = argv::parse(&argv);
        assert!(parsed.is_err());
    }

    #[test]
    fn a_credential_line_may_end_in_an_address_and_its_password_may_hold_colons() {
        let entry = credential_line("alice:pw").unwrap();
        assert_eq!(
            (entry.user.as_str(), entry.password.as_str()),
            ("alice", "pw")
        );
        assert_eq!(entry.address, None);
        let entry = credential_line("CORP\\bob:a:b:bob@corp.example").unwrap();
        assert_eq!(entry.password, "a:b");
        assert_eq!(entry.address.as_deref(), Some("bob@corp.example"));
        let entry = credential_line("carol:x:y").unwrap();
        assert_eq!((entry.password.as_str(), entry.address), ("x:y", None));
        assert_eq!(credential_line("no colon"), None);
    }

    #[test]
    fn a_fractional_heartbeat_crosses_the_seam() {
        let mut args = DevicesArgs::for_targets(vec!["http://127.0.0.1:1".into()]);
        args.heartbeat = Duration::from_millis(1500);
        let argv = args.to_argv().unwrap();
        assert!(
            argv.contains(&"--heartbeat=1s 500ms".to_owned()),
            "{argv:?}"
        );
        let parsed: DevicesArgs = argv::parse(&argv).unwrap();
        assert_eq!(parsed.heartbeat, Duration::from_millis(1500));
    }
}
