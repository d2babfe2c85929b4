//! A scenario resolved: the file, the command line's overrides and the machine's limits
//! turned into one validated plan, from which a run takes everything: how many server
//! partitions (K) and device workers (M), where each listens, and every child's flags
//! as the typed structs their own command lines parse. Overrides are checked like the
//! file's own values, with the same messages, naming the flag.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::link_level::{stream_link, LinkLevel};
use super::place::Place;
use super::{FirewallConfig, FirewallMode, ProcessCount, Scenario, Span, TargetSection};
use crate::firewall::launch::FirewallArgs;
use crate::firewall::netns::{self, network_subnet, LINK_TUN};
use crate::fleet::args::{DevicesArgs, NetworkSubnet};
use crate::link::forward::LinkRoute;
use crate::link::launch::LinkArgs;
use crate::proxy::config::{ProxyKind, ProxyTls, HEADROOM_PERCENT};
use crate::server::launch::ServeArgs;
use crate::server::state::Engine;

/// Sockets one process may hold at most, with room under the 20,000 open-file limit.
const SOCKETS_PER_PROCESS: usize = 18_000;
/// Sockets the proxy firewall may hold for one device: its live flow's two, and the
/// server's end of a black-holed flow until the server closes it.
const PROXY_SOCKETS: usize = 3;
/// The idle timeout of a middlebox that only carries a network: no flow of a run is
/// idle this long (a year), so it never acts.
const NEVER_IDLE: Duration = Duration::from_secs(365 * 86_400);
/// Descriptors a process keeps for itself (listeners, files, pipes).
const FD_RESERVE: u64 = 2_000;
/// The most processes of one role a run starts (a million devices took 56 of each).
pub(crate) const MAX_PROCESSES: u32 = 256;
/// Memory one device costs the machine, server, worker and kernel together, as last
/// measured with some room: capacity-100k took 2.1 KB server + 3.2 KB worker + 10.2 KB
/// kernel per TLS device (once TLS sessions keep only their keys when parked); a
/// million plain devices took 13.7 KB each.
const TLS_DEVICE_BYTES: u64 = 17 * 1024;
const PLAIN_DEVICE_BYTES: u64 = 16 * 1024;
/// Memory one partition or worker process takes before its first device.
const PROCESS_BYTES: u64 = 32 * 1024 * 1024;

/// What `pingfleet run` may override on its command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub devices: Option<usize>,
    pub duration: Option<Duration>,
    pub seed: Option<u64>,
    pub engine: Option<Engine>,
    pub tls: Option<bool>,
    pub partitions: Option<u32>,
    pub workers: Option<u32>,
    /// `--network`: every device (every kind) on this network.
    pub network: Option<String>,
    /// `--report`: write the HTML report beside the result.
    pub report: bool,
}

/// The limits of this machine a plan must fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineLimits {
    /// The open-file limit each process can raise itself to.
    pub fd_limit: u64,
    /// Memory available to new work (`MemAvailable`), if it can be read.
    pub memory_available_bytes: Option<u64>,
    /// Whether the run may build network namespaces (root): an emulated network is
    /// then made at the packet level, else on the middlebox's relays.
    pub is_root: bool,
}

impl MachineLimits {
    /// Reads the limits (raising this process's soft open-file limit on the way).
    pub fn read() -> Self {
        Self {
            fd_limit: rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024),
            memory_available_bytes: crate::measure::procfs::memory_available_bytes(),
            is_root: rustix::process::geteuid().is_root(),
        }
    }

    /// Connections one process may hold.
    pub fn sockets_per_process(&self) -> usize {
        (self.fd_limit.saturating_sub(FD_RESERVE) as usize).clamp(1, SOCKETS_PER_PROCESS)
    }
}

/// A validated plan for one `pingfleet run`.
#[derive(Debug, Clone)]
pub struct ResolvedScenario {
    /// The scenario with the overrides applied.
    pub scenario: Scenario,
    /// The file's text, kept in the result.
    pub text: String,
    /// The overrides as given on the command line, kept in the result.
    pub overrides: Vec<String>,
    /// Server partitions (K).
    pub partitions: u32,
    /// Device workers (M).
    pub workers: u32,
    /// The engines measured one after the other (two when the scenario compares them;
    /// none against an external target).
    pub engines: Vec<Engine>,
    pub limits: MachineLimits,
    /// Where the devices' network is made; `None` without one.
    pub link_level: Option<LinkLevel>,
}

impl ResolvedScenario {
    /// Parses `text` (from `file`), applies `overrides`, checks everything, sizes the
    /// processes for `limits`.
    pub fn resolve(
        text: &str,
        file: &str,
        overrides: &Overrides,
        limits: MachineLimits,
    ) -> anyhow::Result<Self> {
        let mut scenario = Scenario::parse_unchecked(text, file)?;
        let given = apply(&mut scenario, overrides);
        if let Err(err) = scenario.check() {
            let (place, message) = (err.place(), err.to_string());
            let flag = given.iter().find(|(_, key)| Place::Key(key) == place);
            return Err(match flag {
                Some((flag, _)) => anyhow::anyhow!("{flag}: {message}"),
                None => place.error_in(text, file, message).into(),
            });
        }
        // Each variant must be a scenario of its own; its errors name the variant (a
        // line number would be the merged text's, not the file's).
        for variant in &scenario.variants {
            let named = format!("{file}: variant {:?}", variant.name);
            let text = super::variants::variant_text(text, variant)
                .map_err(|err| anyhow::anyhow!("{named}: {err}"))?;
            Scenario::parse(&text, &named)
                .map_err(|err| anyhow::anyhow!("{named}: {}", err.message))?;
        }
        scenario.injector.resolve_per_user(scenario.devices.count);
        scenario.compress();
        let link_level = LinkLevel::choose(&scenario, limits.is_root)?;
        let relayed = link_level == Some(LinkLevel::Stream);
        let (partitions, workers) = process_counts(&scenario, &given, limits, relayed)?;
        check_memory(&scenario, partitions + workers, &given, limits)?;
        let engines = match (&scenario.target, scenario.server.compare_engines) {
            (Some(_), _) => Vec::new(),
            (None, true) => vec![Engine::Lean, Engine::Hyper],
            (None, false) => vec![scenario.server.engine],
        };
        Ok(Self {
            scenario,
            text: text.to_owned(),
            overrides: given.into_iter().map(|(flag, _)| flag).collect(),
            partitions,
            workers,
            engines,
            limits,
            link_level,
        })
    }

    /// The flags of server partition `index` running `engine`; its files go to `dir`.
    pub fn serve_args(&self, index: u32, engine: Engine, dir: &Path) -> ServeArgs {
        let server = &self.scenario.server;
        let mut args = ServeArgs::defaults();
        args.partition = crate::partition::Partition {
            index,
            count: self.partitions,
        };
        if self.in_namespaces() {
            // In the server's namespace; /metrics on the management link, outside the
            // path.
            let server: std::net::IpAddr =
                crate::firewall::netns::SERVER_ADDR.parse().expect("valid");
            let management: std::net::IpAddr = crate::firewall::netns::MANAGEMENT_SERVER_SIDE
                .parse()
                .expect("valid");
            args.listen = vec![SocketAddr::new(server, 0)];
            args.notify = SocketAddr::new(server, 0);
            args.metrics = Some(SocketAddr::new(management, 0));
        } else {
            args.listen = vec![partition_address(index)];
            args.notify = loopback_any_port();
            args.metrics = Some(loopback_any_port());
        }
        args.users = self.scenario.devices.count as u64;
        // Whole seconds, compressed time included (see `Scenario::compress`).
        args.server = server.clone();
        args.server.engine = engine;
        // A proxy that terminates TLS speaks plain HTTP to the server.
        args.server.tls = server.tls && !self.proxy_terminates_tls();
        if args.server.tls {
            args.cert_out = Some(dir.join(format!("partition-{index}.pem")));
        }
        args
    }

    /// Whether a `[proxy]` holds the devices' TLS (the server then speaks plain HTTP).
    pub fn proxy_terminates_tls(&self) -> bool {
        self.scenario
            .proxy
            .as_ref()
            .is_some_and(|proxy| proxy.tls == ProxyTls::Terminate)
    }

    /// What the run puts between devices and server in network namespaces: the
    /// kernel's firewall (its established-flow timeout), emulated networks, or both.
    pub fn namespace_path(&self) -> netns::Path {
        netns::Path {
            firewall: self
                .scenario
                .firewall
                .as_ref()
                .filter(|firewall| firewall.mode == FirewallMode::Netns)
                .map(|firewall| firewall.idle_timeout.0),
            networks: match self.link_level {
                Some(LinkLevel::Packet) => self.scenario.networks_in_use().len(),
                Some(LinkLevel::Stream) | None => 0,
            },
        }
    }

    /// Whether devices and server run in network namespaces.
    pub fn in_namespaces(&self) -> bool {
        self.namespace_path() != netns::Path::default()
    }

    /// The flags of the link emulator, one route per network in use; `None` without
    /// networks at the packet level.
    pub fn link_args(&self, dir: &Path) -> Option<LinkArgs> {
        if self.link_level != Some(LinkLevel::Packet) {
            return None;
        }
        let routes: Vec<LinkRoute> = self
            .scenario
            .networks_in_use()
            .into_iter()
            .enumerate()
            .map(|(index, name)| LinkRoute {
                subnet: network_subnet(index).parse().expect("a valid subnet"),
                profile: self.scenario.network_profile(&name).expect("checked"),
                name,
            })
            .collect();
        (!routes.is_empty()).then(|| LinkArgs {
            tun: LINK_TUN.to_owned(),
            routes,
            seed: self.scenario.seed,
            report: Some(dir.join("link.json")),
        })
    }

    /// The flags of the middlebox before partition `index`, forwarding to `upstream`
    /// (the partition's EAS address): the `[firewall]` in proxy mode, and the network's
    /// delay and rates at the stream level (without a `[firewall]`, a plain relay that
    /// never acts on an idle flow); `None` when neither.
    pub fn firewall_args(
        &self,
        index: u32,
        upstream: SocketAddr,
        dir: &Path,
    ) -> Option<FirewallArgs> {
        let firewall = self
            .scenario
            .firewall
            .clone()
            .filter(|firewall| firewall.mode == FirewallMode::Proxy);
        let link =
            match self.link_level {
                Some(LinkLevel::Stream) => self.scenario.networks_in_use().first().map(|name| {
                    stream_link(&self.scenario.network_profile(name).expect("checked"))
                }),
                Some(LinkLevel::Packet) | None => None,
            };
        if firewall.is_none() && link.is_none() {
            return None;
        }
        let firewall = firewall.unwrap_or_else(|| FirewallConfig {
            idle_timeout: Span(NEVER_IDLE),
            ..FirewallConfig::default()
        });
        let mut args = FirewallArgs::forwarding(partition_address(index), upstream, firewall);
        args.link = link.unwrap_or_default();
        args.seed = self.scenario.seed;
        args.report = Some(dir.join(format!("firewall-{index}.json")));
        Some(args)
    }

    /// The servers measured one after the other: each bundled engine, or the external
    /// target once (`None`).
    pub fn servers_measured(&self) -> Vec<Option<Engine>> {
        match self.scenario.target {
            Some(_) => vec![None],
            None => self.engines.iter().copied().map(Some).collect(),
        }
    }

    /// The flags of device worker `index`, given each partition's EAS and notification
    /// addresses in partition order and the certificates to trust.
    pub fn devices_args(
        &self,
        index: u32,
        partitions: &[(SocketAddr, SocketAddr)],
        ca: Option<&Path>,
        dir: &Path,
    ) -> DevicesArgs {
        let scheme = if self.scenario.server.tls {
            "https"
        } else {
            "http"
        };
        let mut args = self.fleet_args(
            partitions
                .iter()
                .map(|(http, _)| format!("{scheme}://{http}{}", self.scenario.server.path))
                .collect(),
            index,
            dir,
        );
        args.route_by_partition = true;
        args.notify = partitions.iter().map(|(_, notify)| *notify).collect();
        args.ca = ca.map(Path::to_path_buf);
        if self.in_namespaces() {
            // In the device namespace, spread over its addresses; each network's
            // devices from its own subnet.
            args.source_addresses = crate::firewall::netns::device_sources();
            args.network_subnets = self
                .scenario
                .networks_in_use()
                .into_iter()
                .enumerate()
                .map(|(index, network)| NetworkSubnet {
                    network,
                    subnet: network_subnet(index).parse().expect("a valid subnet"),
                })
                .collect();
        }
        args
    }

    /// The flags of device worker `index` against the scenario's `[target]`.
    pub fn external_devices_args(
        &self,
        target: &TargetSection,
        index: u32,
        dir: &Path,
    ) -> DevicesArgs {
        let mut args = self.fleet_args(vec![target.url.clone()], index, dir);
        args.credentials = target.credentials.as_ref().map(PathBuf::from);
        args.inject = target.inject.clone();
        args.ca = target.ca.as_ref().map(PathBuf::from);
        args.insecure = target.insecure;
        args
    }

    /// What every worker's flags share: the fleet, its stages and its schedule.
    fn fleet_args(&self, targets: Vec<String>, index: u32, dir: &Path) -> DevicesArgs {
        let (devices, stages, injector) = (
            &self.scenario.devices,
            &self.scenario.stages,
            &self.scenario.injector,
        );
        let mut args = DevicesArgs::for_targets(targets);
        args.wait_for_start = true;
        args.progress = true;
        args.fleet = devices.clone();
        args.shard = crate::partition::Partition {
            index,
            count: self.workers,
        };
        args.read_margin = self.scenario.read_margin();
        args.time_scale = self.scenario.time_scale;
        args.backoff_base = Duration::from_secs(1)
            .div_f64(self.scenario.time_scale)
            .max(Duration::from_millis(10));
        // The loss window (heartbeat + grace) shrinks with the heartbeat, as far as
        // the machine's own delays allow.
        args.grace = args
            .grace
            .div_f64(self.scenario.time_scale)
            .max(Duration::from_secs(1));
        // Each worker starts its own shard's devices.
        args.fleet.connect_rate = devices.connect_rate / f64::from(self.workers);
        args.stages = stages.clone();
        // The schedule is the fleet's: each worker sends its own devices' share, at
        // the fleet's rate resolved (and compressed) here.
        args.schedule = injector.clone();
        args.schedule.per_user_per_hour = None;
        args.seed = self.scenario.seed;
        args.output = Some(worker_document(dir, index));
        // The run judges the whole fleet; a worker judges nothing of its own.
        args.thresholds = vec![crate::fleet::args::NO_THRESHOLDS.to_owned()];
        args
    }
}

/// Server partitions and device workers for `scenario` under `limits`: "auto" sized
/// to the open-file limit (and, behind a middlebox or a reverse proxy, to its sockets a
/// device),
/// or the numbers given, checked; errors name the key or the flag that set it.
fn process_counts(
    scenario: &Scenario,
    given: &[(String, &'static str)],
    limits: MachineLimits,
    relayed: bool,
) -> anyhow::Result<(u32, u32)> {
    let devices = scenario.devices.count;
    let per_process = limits.sockets_per_process();
    if devices > per_process.saturating_mul(MAX_PROCESSES as usize) {
        anyhow::bail!(
            "{} {devices}: more devices than one run holds here: at most {MAX_PROCESSES} \
             processes of a role, each holding {per_process} connections under the open-file \
             limit {}; the largest this scenario runs here: {}; for a larger fleet spread \
             the workers over machines (pingfleet devices --shard j/M on each, then \
             pingfleet merge)",
            devices_named(given).0,
            limits.fd_limit,
            largest_said(scenario, given, limits)
        );
    }
    let needed = devices.div_ceil(per_process).max(1) as u32;
    let count = |key: &str, flag: &str, count: ProcessCount| -> anyhow::Result<u32> {
        let count = match count {
            ProcessCount::Auto => needed,
            ProcessCount::Count(count) => count,
        };
        let by_flag = given.iter().any(|(_, given_key)| *given_key == key);
        let (name, fix) = match by_flag {
            true => (format!("{flag} {count}"), format!("use {flag} {needed}")),
            false => (
                format!("{key} = {count}"),
                format!("use {flag} {needed}, or {key} = \"auto\" in the scenario file"),
            ),
        };
        if (count as usize).saturating_mul(per_process) < devices {
            anyhow::bail!(
                "{name} cannot hold {devices} devices: a process holds at most \
                 {per_process} connections under the open-file limit {} ({fix})",
                limits.fd_limit
            );
        }
        if count > MAX_PROCESSES {
            anyhow::bail!("{name}: at most {MAX_PROCESSES} processes of one role");
        }
        Ok(count)
    };
    let front = front_capacity(scenario, per_process, relayed);
    let partitions = match (&scenario.target, scenario.server.partitions) {
        // The external server is the user's: nothing of ours to start.
        (Some(_), _) => 0,
        // Sized for the process in front of each partition.
        (None, ProcessCount::Auto) if front.is_some() => {
            let (held, _) = front.expect("matched");
            (devices.div_ceil(held) as u32).min(MAX_PROCESSES)
        }
        (None, partitions) => count("partitions", "--partitions", partitions)?,
    };
    if let Some((held, what)) = front {
        if (partitions as usize).saturating_mul(held) < devices {
            anyhow::bail!(
                "{partitions} partitions cannot hold {devices} devices behind {what}: at most \
                 {held} devices a partition under the open-file limit {} (use {} partitions)",
                limits.fd_limit,
                devices.div_ceil(held)
            );
        }
    }
    let workers = count("workers", "--workers", scenario.devices.workers)?;
    if workers as usize > devices {
        anyhow::bail!("{workers} workers for {devices} devices: a worker needs a device");
    }
    Ok((partitions, workers))
}

/// Devices one partition's front holds under the open-file limit, and what the front
/// is: the middlebox keeps up to three sockets a device (two for a live flow and, for a
/// black-holed one, the server's until the server closes it) in one process; a reverse
/// proxy two (the device's and the server's) in each of its processes (nginx's workers
/// share the listener by `reuseport`; HAProxy's threads are one process), with the
/// headroom its limits are sized with.
fn front_capacity(
    scenario: &Scenario,
    per_process: usize,
    relayed: bool,
) -> Option<(usize, &'static str)> {
    let middlebox = relayed
        || scenario
            .firewall
            .as_ref()
            .is_some_and(|firewall| firewall.mode == super::FirewallMode::Proxy);
    let middlebox = middlebox.then_some((per_process / PROXY_SOCKETS, "the proxy firewall"));
    let reverse = scenario.proxy.as_ref().map(|proxy| {
        let processes = match proxy.kind() {
            ProxyKind::Nginx => proxy.workers() as usize,
            ProxyKind::Haproxy => 1,
        };
        let held = per_process / 2 * 100 / HEADROOM_PERCENT as usize;
        (held * processes, "the reverse proxy")
    });
    [middlebox, reverse]
        .into_iter()
        .flatten()
        .min_by_key(|(held, _)| *held)
}

/// How the device count was set, and an example of setting it to `n` the same way.
fn devices_named(given: &[(String, &'static str)]) -> (&'static str, fn(usize) -> String) {
    match given.iter().any(|(_, key)| *key == "count") {
        true => ("--devices", |n| format!("--devices {n}")),
        false => ("devices.count", |n| format!("count = {n}")),
    }
}

/// The largest fleet this scenario runs here, rounded down to two significant digits:
/// what its processes' sockets hold (as many as "auto" may start, or as the scenario
/// fixes) and what the memory fits, by the last measured costs.
fn largest_fleet(scenario: &Scenario, limits: MachineLimits) -> usize {
    largest_fleet_counting(scenario, limits, true)
}

/// The largest fleet in the words of the flag or key that set the fleet's size, and, when
/// the file fixes partitions or workers that hold fewer, the flags that run more.
fn largest_said(
    scenario: &Scenario,
    given: &[(String, &'static str)],
    limits: MachineLimits,
) -> String {
    let say = devices_named(given).1;
    let as_fixed = largest_fleet_counting(scenario, limits, true);
    let any = largest_fleet_counting(scenario, limits, false);
    if any <= as_fixed {
        return say(as_fixed);
    }
    let processes = any.div_ceil(limits.sockets_per_process());
    format!(
        "{}; with more processes than the file fixes, up to --devices {any} --partitions \
         {processes} --workers {processes}",
        say(as_fixed)
    )
}

/// The largest fleet `scenario` runs here, with its process counts as the file fixes
/// them (`fixed_counts`) or as many as the fleet needs.
fn largest_fleet_counting(scenario: &Scenario, limits: MachineLimits, fixed_counts: bool) -> usize {
    let per_process = limits.sockets_per_process();
    let by_sockets = per_process.saturating_mul(MAX_PROCESSES as usize);
    let by_memory = limits
        .memory_available_bytes
        .map_or(usize::MAX, |available| {
            // A partition and a worker per `per_process` devices. A suggestion keeps
            // 8/10 of what is available where the check allows 9/10: the processes
            // are counted whole, and what is available moves while it is read.
            let per_device = MemoryEstimate::of(scenario, 0).per_device_bytes
                + 2 * PROCESS_BYTES / per_process as u64;
            (available / 10 * 8 / per_device) as usize
        });
    // A count the scenario fixes holds what its processes hold.
    let fixed = |count: ProcessCount| match (count, fixed_counts) {
        (ProcessCount::Count(count), true) => per_process.saturating_mul(count as usize),
        _ => usize::MAX,
    };
    let by_partitions = match scenario.target {
        Some(_) => usize::MAX,
        None => fixed(scenario.server.partitions),
    };
    let most = by_sockets
        .min(by_memory)
        .min(by_partitions)
        .min(fixed(scenario.devices.workers))
        .max(1);
    let unit = 10usize.pow((most.ilog10()).saturating_sub(1));
    most / unit * unit
}

/// What a plan's devices and processes should take of this machine's memory, by the
/// last measured cost per device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemoryEstimate {
    /// "TLS" or "plain".
    pub kind: &'static str,
    pub per_device_bytes: u64,
    pub processes: u32,
    pub needed_bytes: u64,
}

impl MemoryEstimate {
    pub(crate) fn of(scenario: &Scenario, processes: u32) -> Self {
        let (kind, per_device_bytes) = match scenario.server.tls {
            true => ("TLS", TLS_DEVICE_BYTES),
            false => ("plain", PLAIN_DEVICE_BYTES),
        };
        let needed_bytes = (scenario.devices.count as u64)
            .saturating_mul(per_device_bytes)
            .saturating_add(u64::from(processes) * PROCESS_BYTES);
        Self {
            kind,
            per_device_bytes,
            processes,
            needed_bytes,
        }
    }
}

/// Refuses a plan whose devices would not fit in this machine's available memory, by
/// the last measured cost per device.
fn check_memory(
    scenario: &Scenario,
    processes: u32,
    given: &[(String, &'static str)],
    limits: MachineLimits,
) -> anyhow::Result<()> {
    let Some(available) = limits.memory_available_bytes else {
        return Ok(());
    };
    let MemoryEstimate {
        kind,
        per_device_bytes: per_device,
        needed_bytes: needed,
        ..
    } = MemoryEstimate::of(scenario, processes);
    let devices = scenario.devices.count as u64;
    if needed > available / 10 * 9 {
        const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
        anyhow::bail!(
            "{devices} {kind} devices need about {:.1} GiB ({} KiB each as last measured, \
             and {processes} processes), but this machine has {:.1} GiB available (e.g. {})",
            needed as f64 / GIB,
            per_device / 1024,
            available as f64 / GIB,
            devices_named(given).1(largest_fleet(scenario, limits))
        );
    }
    Ok(())
}

/// Where worker `index` writes its document.
pub(crate) fn worker_document(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("worker-{index}.json"))
}

/// The loopback address partition `index` listens on: one address each (127.0.0.1,
/// 127.0.0.2, ...), so every partition's connections have the whole ephemeral port
/// range to themselves. The generated certificates name 127.0.0.1 to 127.0.0.32.
fn partition_address(index: u32) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, (index % 32 + 1) as u8], 0))
}

fn loopback_any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Applies the overrides; returns each as given (`--devices 500`) with the scenario
/// key it sets.
fn apply(scenario: &mut Scenario, overrides: &Overrides) -> Vec<(String, &'static str)> {
    let mut given = Vec::new();
    if let Some(devices) = overrides.devices {
        scenario.devices.count = devices;
        given.push((format!("--devices {devices}"), "count"));
    }
    if let Some(duration) = overrides.duration {
        scenario.stages.hold.0 = duration;
        let text = humantime::format_duration(duration);
        given.push((format!("--duration {text}"), "hold"));
    }
    if let Some(seed) = overrides.seed {
        scenario.seed = seed;
        given.push((format!("--seed {seed}"), "seed"));
    }
    if let Some(engine) = overrides.engine {
        scenario.server.engine = engine;
        given.push((format!("--engine {}", engine.name()), "engine"));
    }
    if let Some(tls) = overrides.tls {
        scenario.server.tls = tls;
        given.push((if tls { "--tls" } else { "--no-tls" }.into(), "tls"));
    }
    if let Some(partitions) = overrides.partitions {
        scenario.server.partitions = ProcessCount::Count(partitions);
        given.push((format!("--partitions {partitions}"), "partitions"));
    }
    if let Some(workers) = overrides.workers {
        scenario.devices.workers = ProcessCount::Count(workers);
        given.push((format!("--workers {workers}"), "workers"));
    }
    if let Some(network) = &overrides.network {
        scenario.devices.network = network.clone();
        for profile in &mut scenario.devices.profiles {
            profile.network = None;
        }
        given.push((format!("--network {network}"), "network"));
    }
    if overrides.report {
        scenario.report = true;
        given.push(("--report".into(), "report"));
    }
    given
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: MachineLimits = MachineLimits {
        fd_limit: 20_000,
        memory_available_bytes: Some(24 << 30),
        is_root: true,
    };
    const TEXT: &str = "name = \"t\"\n[devices]\ncount = 40000\nheartbeat = \"1.5s\"\n\
                        [server]\nmin_heartbeat = \"1s\"\n";

    fn resolve(text: &str, overrides: &Overrides) -> anyhow::Result<ResolvedScenario> {
        ResolvedScenario::resolve(text, "t.toml", overrides, LIMITS)
    }

    #[test]
    fn auto_counts_follow_the_devices_and_can_be_set() {
        let plan = resolve(TEXT, &Overrides::default()).unwrap();
        assert_eq!((plan.partitions, plan.workers), (3, 3));
        let more = Overrides {
            workers: Some(5),
            partitions: Some(4),
            ..Overrides::default()
        };
        let plan = resolve(TEXT, &more).unwrap();
        assert_eq!((plan.partitions, plan.workers), (4, 5));
        assert_eq!(plan.overrides, ["--partitions 4", "--workers 5"]);
        let set = TEXT.replace("count = 40000", "count = 40000\nworkers = 4");
        assert_eq!(resolve(&set, &Overrides::default()).unwrap().workers, 4);
    }

    #[test]
    fn overrides_are_checked_like_file_values_and_name_the_flag() {
        let zero = Overrides {
            devices: Some(0),
            ..Overrides::default()
        };
        let err = resolve(TEXT, &zero).unwrap_err().to_string();
        assert_eq!(
            err,
            "--devices 0: devices.count must be at least 1, e.g. count = 100 (--devices 100)"
        );
        let no_hold = Overrides {
            duration: Some(Duration::ZERO),
            ..Overrides::default()
        };
        let err = resolve(TEXT, &no_hold).unwrap_err().to_string();
        assert!(err.starts_with("--duration 0s: stages.hold"), "{err}");
        let one = Overrides {
            workers: Some(1),
            ..Overrides::default()
        };
        let err = resolve(TEXT, &one).unwrap_err().to_string();
        assert!(
            err.starts_with("--workers 1 cannot hold 40000 devices"),
            "{err}"
        );
        let file_zero = TEXT.replace("count = 40000", "count = 40000\nworkers = 0");
        let err = resolve(&file_zero, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.toml:4:1: workers must be"), "{err}");
        let too_many = Overrides {
            partitions: Some(MAX_PROCESSES + 1),
            ..Overrides::default()
        };
        assert!(resolve(TEXT, &too_many).is_err());
    }

    #[test]
    fn a_fleet_larger_than_the_memory_is_refused_with_the_numbers() {
        let billion = Overrides {
            devices: Some(1_000_000_000),
            ..Overrides::default()
        };
        // 55,556 workers would be needed first.
        assert!(resolve(TEXT, &billion).is_err());
        let million = Overrides {
            devices: Some(1_000_000),
            ..Overrides::default()
        };
        let small = MachineLimits {
            memory_available_bytes: Some(4 << 30),
            ..LIMITS
        };
        let err = ResolvedScenario::resolve(TEXT, "t.toml", &million, small)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("1000000 plain devices need about 18.8 GiB (16 KiB each"),
            "{err}"
        );
        assert!(err.contains("this machine has 4.0 GiB available"), "{err}");
        assert!(
            resolve(TEXT, &million).is_ok(),
            "24 GiB hold a million plain devices"
        );
    }

    #[test]
    fn children_get_the_scenario_exactly() {
        let plan = resolve(TEXT, &Overrides::default()).unwrap();
        let dir = Path::new("/run/x");
        let partitions: Vec<(SocketAddr, SocketAddr)> = (0..3)
            .map(|index| {
                let http = SocketAddr::from(([127, 0, 0, index + 1], 8000));
                (
                    http,
                    SocketAddr::from(([127, 0, 0, 1], 9000 + u16::from(index))),
                )
            })
            .collect();
        let worker = plan.devices_args(1, &partitions, None, dir);
        assert_eq!(worker.fleet.heartbeat.0, Duration::from_millis(1500));
        assert_eq!(worker.shard.to_string(), "1/3");
        assert_eq!(
            worker.seed, plan.scenario.seed,
            "every shard takes the run's seed"
        );
        assert_eq!(
            worker.targets[2],
            "http://127.0.0.3:8000/Microsoft-Server-ActiveSync"
        );
        assert_eq!(worker.output, Some(worker_document(dir, 1)));
        let argv = worker.to_argv().unwrap();
        assert_eq!(crate::argv::parse::<DevicesArgs>(&argv).unwrap(), worker);
        let server = plan.serve_args(2, Engine::Hyper, dir);
        assert_eq!(server.listen, [SocketAddr::from(([127, 0, 0, 3], 0))]);
        assert_eq!(
            (server.server.min_heartbeat.0, server.partition.count),
            (Duration::from_secs(1), 3)
        );
    }
}
