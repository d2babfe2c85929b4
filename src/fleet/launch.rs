//! `pingfleet devices`: building the worker's devices from its flags, running the
//! engine, and reporting (a summary on standard output, the JSON document with `--output`).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use super::args::DevicesArgs;
use super::churn::Churn;
use super::config::FleetConfig;
use super::connect::Sources;
use super::device::Device;
use super::digest::FleetDigest;
use super::engine::{FleetEngine, FleetEngineConfig, HoldStart, RunEnd};
use super::failure::check_report;
use super::injector::{InjectorConfig, Pattern, Schedule};
use super::profile::{Profile, ProfileFile, ProfileMix, ProfileSpec};
use super::report::{BeforeDevices, WorkerIdentity, WorkerReport};
use super::sink::{parse_inject_url, Account, Destinations, Outlet};
use super::target::Target;
use super::tickets::TlsClients;
use crate::measure::heap::{self, HeapPart};
use crate::partition::partition_of;

/// Runs `pingfleet devices` to completion; its report, or why it did not do what it
/// was asked.
pub fn devices(args: DevicesArgs) -> anyhow::Result<WorkerReport> {
    if !crate::lifeline::bind_to_parent() {
        anyhow::bail!("the run that started this process has ended");
    }
    rlimit::increase_nofile_limit(u64::MAX).ok();
    check(&args)?;
    let before_devices = BeforeDevices::now();
    // What this thread allocates from here on is the devices' (see `measure::heap`).
    heap::set_thread_part(HeapPart::Devices);
    let Shard {
        devices,
        target_of,
        mix,
        mut digest,
        fleet_indices,
        wiring,
    } = Shard::build(&args)?;
    let config = engine_config(&args, wiring, devices.len())?;
    let started = SystemTime::now();
    let engine = FleetEngine::new(config, devices, move |local| target_of[local])?;
    // SIGINT (Ctrl-C reaches the whole process group) or SIGTERM end the run early;
    // the worker still reports what it measured.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let (stats, end) = engine.run(stop)?;
    digest.notifications = stats.notifications_digest;
    digest.planned_notifications = stats.notifications_planned;
    let identity = WorkerIdentity {
        shard: args.shard,
        targets: args.targets.clone(),
        digest,
    };
    let report = WorkerReport::new(
        identity,
        &mix,
        &fleet_indices,
        started,
        before_devices,
        &stats,
        &end,
    );
    print_summary(&report, &end);
    if let Some(path) = &args.output {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    check_report(&report)?;
    Ok(report)
}

/// The checks of the flags that clap's types do not make.
fn check(args: &DevicesArgs) -> anyhow::Result<()> {
    args.fleet
        .check()
        .and_then(|()| args.stages.check())
        .and_then(|()| args.schedule.check())
        .map_err(|err| anyhow::anyhow!("{}", err.for_flag()))?;
    if !(1.0..=3600.0).contains(&args.time_scale) {
        anyhow::bail!("--time-scale must be 1 (real time) to 3600");
    }
    Ok(())
}

/// What every device of the worker starts from: the fleet's settings and the worker's
/// deadlines; a kind of the mix changes some settings.
fn base_profile(args: &DevicesArgs) -> Profile {
    let settings = FleetConfig {
        profiles: Vec::new(),
        ..args.fleet.clone()
    };
    Profile {
        read_margin: args.read_margin,
        backoff_base: args.backoff_base,
        backoff_max: args.backoff_base.saturating_mul(60),
        time_scale: args.time_scale,
        ..Profile::new("default", settings)
    }
}

/// This worker's share of the fleet: its devices, of which kinds, and how they are
/// wired to the servers and the mail stores.
struct Shard {
    devices: Vec<Device>,
    /// Each device's target, by its place in `devices`.
    target_of: Vec<usize>,
    mix: ProfileMix,
    digest: FleetDigest,
    /// Each device's index in the whole fleet.
    fleet_indices: Vec<usize>,
    wiring: Wiring,
}

/// Where a shard's devices connect and where their changes go.
struct Wiring {
    targets: Vec<Target>,
    tls: Option<TlsClients>,
    accounts: Vec<Account>,
    /// The mail stores or datagram sockets changes go to (none: nothing injected).
    outlet: Option<Outlet>,
    /// Devices in the whole fleet (the schedule is the fleet's).
    fleet_size: usize,
}

impl Shard {
    fn build(args: &DevicesArgs) -> anyhow::Result<Self> {
        let targets: Vec<Target> = args
            .targets
            .iter()
            .map(|url| Target::parse(url))
            .collect::<anyhow::Result<_>>()?;
        let tls_config = match targets.iter().any(|target| target.tls) {
            true => Some(client_tls(args)?),
            false => None,
        };
        let (credentials, fleet_size) = credentials(args)?;
        let mix = ProfileMix::new(&base_profile(args), &profile_specs(args)?, args.seed);
        let accounts: Vec<Account> = credentials
            .iter()
            .map(|entry| Account {
                password: entry.password.clone(),
                address: entry.address.clone(),
            })
            .collect();
        let target_of: Vec<usize> = credentials
            .iter()
            .map(|entry| match args.route_by_partition {
                true => partition_of(&entry.user, targets.len() as u32) as usize,
                false => entry.index % targets.len(),
            })
            .collect();
        // Opened now, so mail senders log in while the fleet ramps up.
        let outlet = match destinations(args) {
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
        let mut shard = Self {
            devices: Vec::new(),
            fleet_indices: credentials.iter().map(|entry| entry.index).collect(),
            target_of,
            mix,
            digest: FleetDigest::default(),
            wiring: Wiring {
                targets,
                tls: None,
                accounts,
                outlet,
                fleet_size,
            },
        };
        shard.make_devices(credentials, args.seed);
        shard.wiring.tls = tls_config.map(|config| {
            let resuming = shard.devices.iter().filter(|d| d.tls_resumption()).count();
            TlsClients::new(&config, resuming)
        });
        Ok(shard)
    }

    /// One device per credential, of the kind the mix picks for its fleet index.
    fn make_devices(&mut self, credentials: Vec<Credential>, seed: u64) {
        for (credential, target) in credentials.into_iter().zip(&self.target_of) {
            let kind = self.mix.pick(credential.index);
            let device = Device::new(
                &credential.user,
                &credential.password,
                (
                    &self.wiring.targets[*target].host_header,
                    &self.wiring.targets[*target].path,
                ),
                self.mix.profile(kind).clone(),
                credential.index,
                seed,
            );
            self.digest.add_device(
                credential.index,
                &self.mix.spec(kind).name,
                device.heartbeat(),
                device.device_id(),
            );
            self.devices.push(device);
        }
    }
}

/// The engine's configuration: the shard's targets and TLS, the stages, and the
/// injector with the fleet's schedule for this shard's devices.
fn engine_config(
    args: &DevicesArgs,
    wiring: Wiring,
    devices: usize,
) -> anyhow::Result<FleetEngineConfig> {
    let mut planned = args.schedule.clone();
    planned.resolve_per_user(wiring.fleet_size);
    let injector = wiring.outlet.map(|outlet| InjectorConfig {
        schedule: Schedule::new(
            Pattern::new(
                planned.pattern,
                planned.rate,
                planned.burst_share.percent(),
                planned.burst_window.0,
            ),
            wiring.fleet_size,
            args.seed,
            args.shard,
        ),
        outlet,
        accounts: wiring.accounts,
        start_after: args.inject_after,
    });
    // SIGUSR2: the path in front of the server was just flushed.
    let flush_mark = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR2, flush_mark.clone())?;
    let churn_share = args.stages.churn_per_minute.fraction();
    Ok(FleetEngineConfig {
        targets: wiring.targets,
        tls: wiring.tls,
        connect_rate_per_s: args.fleet.connect_rate,
        max_bootstrapping: args.fleet.max_bootstrapping,
        ramp_timeout: args.stages.ramp_timeout.0,
        duration: args.stages.hold.0,
        hold_start: hold_start(args)?,
        flush_mark: Some(flush_mark),
        drain: args.stages.drain.0,
        grace: args.grace,
        sources: Sources::new(
            args.shard.index,
            args.source_addresses.clone(),
            args.network_subnets.clone(),
        ),
        progress: args.progress,
        churn: (churn_share > 0.0).then(|| Churn::new(churn_share, devices, args.seed, args.shard)),
        injector,
        sms: args.fleet.sms_gateway(args.seed),
    })
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

/// The entries of `--profiles` or `--profile`, checked.
fn profile_specs(args: &DevicesArgs) -> anyhow::Result<Vec<ProfileSpec>> {
    let Some(path) = &args.profiles_file else {
        return Ok(args.fleet.profiles.clone());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: ProfileFile =
        toml::from_str(&text).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
    if let Err(problem) = file.profile.iter().try_for_each(ProfileSpec::check) {
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
        let list = (0..args.fleet.count)
            .filter(mine)
            .map(|index| Credential {
                index,
                user: format!("{}{index}", args.user_prefix),
                password: args.password.clone(),
                address: None,
            })
            .collect();
        return Ok((list, args.fleet.count));
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
    for (index, (number, line)) in entries.enumerate().take(args.fleet.count) {
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
    if !counters.empty_wakes.is_empty() {
        println!(
            "empty wakes (Pings answered with changes that brought nothing), by kind: {:?}",
            counters.empty_wakes
        );
    }
    if counters.provisioned_without_policy > 0 {
        println!(
            "Provision answered \"no policy for this client\" {} times: carried on without a policy key",
            counters.provisioned_without_policy
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
    use crate::argv;

    #[test]
    fn a_device_id_prefix_is_letters_and_digits_that_leave_room_for_the_index() {
        use crate::fleet::device_id::check_device_id_prefix;
        assert_eq!(check_device_id_prefix("labA1"), Ok(()));
        assert_eq!(check_device_id_prefix(""), Ok(()));
        for bad in ["lab-a", "a b", "x".repeat(17).as_str(), "é"] {
            let error = check_device_id_prefix(bad).unwrap_err();
            assert_eq!(error.prefix, bad);
            let error = error.to_string();
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
        let parsed: DevicesArgs = argv::parse(&argv).unwrap();
        let refused = parsed.fleet.check().unwrap_err().for_flag();
        assert!(refused.starts_with("--device-id-prefix: "), "{refused}");
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
        args.fleet.heartbeat = crate::units::Span(Duration::from_millis(1500));
        let argv = args.to_argv().unwrap();
        assert!(
            argv.contains(&"--heartbeat=1s 500ms".to_owned()),
            "{argv:?}"
        );
        let parsed: DevicesArgs = argv::parse(&argv).unwrap();
        assert_eq!(parsed.fleet.heartbeat.0, Duration::from_millis(1500));
    }
}
