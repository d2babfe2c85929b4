//! The flags of `pingfleet devices`: one worker's targets, shard, stages, schedule and
//! outputs, with the fleet's own settings ([`FleetConfig`]) flattened in. `pingfleet
//! run` starts its workers from values of this type (see [`DevicesArgs::to_argv`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::config::{FleetConfig, ScheduleConfig, StagesConfig};
use super::sink::check_inject_url;
use crate::argv;
use crate::partition::Partition;
use crate::tls::KeyExchange;

/// A network's name and the subnet its devices connect from (`--network-subnet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSubnet {
    pub network: String,
    pub subnet: crate::link::packet::Subnet,
}

impl serde::Serialize for NetworkSubnet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}={}", self.network, self.subnet))
    }
}

fn parse_network_subnet(text: &str) -> Result<NetworkSubnet, String> {
    let (network, subnet) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=SUBNET: write e.g. lte=198.18.16.0/24"))?;
    let subnet: crate::link::packet::Subnet = subnet.parse()?;
    if subnet.prefix > 25 {
        return Err(format!(
            "`{text}`: devices take hosts .10 to .73 of the subnet, so it needs a /25 or wider, e.g. lte=198.18.16.0/24"
        ));
    }
    Ok(NetworkSubnet {
        network: network.to_owned(),
        subnet,
    })
}

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
    /// Devices of a network connect from its subnet (repeatable): NAME=SUBNET, e.g.
    /// lte=198.18.16.0/24 (addresses .10 to .73 in turn), so the link emulator knows
    /// each connection's network by its address. A run sets it for its networks.
    #[arg(long = "network-subnet", value_name = "NAME=SUBNET", value_parser = parse_network_subnet)]
    pub network_subnets: Vec<NetworkSubnet>,
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
    /// A notification not delivered within the device's heartbeat plus this is lost.
    #[arg(long, default_value = "10s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
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
    /// How many real-world seconds each second of this run stands for (a scenario's
    /// `time_scale`, by which its intervals were divided): the radio model's clock
    /// runs this fast while a device waits, and at real speed in an exchange.
    #[arg(long, value_name = "SCALE", default_value_t = 1.0)]
    pub time_scale: f64,
    /// A mix of device kinds: a TOML file of `[[profile]]` entries (name, weight, and
    /// any of version, device_type, user_agent, folders, heartbeat, heartbeat_jitter,
    /// provision, empty_reping, close_per_ping, tls_resumption); what an entry leaves
    /// out comes from the flags. Instead of --profile.
    #[arg(long = "profiles", value_name = "FILE", conflicts_with = "profiles")]
    pub profiles_file: Option<PathBuf>,
    /// The devices themselves: count, heartbeat, folders, kinds (the same settings as
    /// a scenario's `[devices]`).
    #[command(flatten)]
    #[serde(flatten)]
    pub fleet: FleetConfig,
    /// The run's phases (a scenario's `[stages]`).
    #[command(flatten)]
    #[serde(flatten)]
    pub stages: StagesConfig,
    /// The notification schedule (a scenario's `[injector]`).
    #[command(flatten)]
    #[serde(flatten)]
    pub schedule: ScheduleConfig,
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
    /// A condition the run must meet, as a scenario's [thresholds] writes it, e.g.
    /// lost_notifications:count==0 or wakeup_latency:p(99)<100ms (repeat the flag);
    /// one that fails exits 1 and is named. Without any: lost_notifications:count==0
    /// and errors:count==0. "none" judges nothing (`run` gives its workers that, and
    /// judges the whole fleet itself).
    #[arg(long = "threshold", value_name = "METRIC:CONDITION")]
    pub thresholds: Vec<String>,
}

/// `--threshold none`: judge nothing.
pub const NO_THRESHOLDS: &str = "none";
/// What a worker judges when no `--threshold` is given.
pub const DEFAULT_THRESHOLDS: [&str; 2] = ["lost_notifications:count==0", "errors:count==0"];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_subnet_names_its_network_and_holds_the_hosts_devices_take() {
        let lte = parse_network_subnet("lte=198.18.16.0/24").unwrap();
        assert_eq!((lte.network.as_str(), lte.subnet.prefix), ("lte", 24));
        for (text, says) in [
            ("lte", "NAME=SUBNET"),
            ("lte=198.18.16.0", "not a subnet"),
            ("lte=198.18.16.0/30", "/25 or wider"),
        ] {
            let err = parse_network_subnet(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }
    use crate::eas::ProtocolVersion;
    use crate::fleet::injector::PatternKind;
    use crate::fleet::profile::ProfileSpec;
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
                spec.protocol_version = version;
                spec.heartbeat = heartbeat.map(crate::units::Span);
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
            args.fleet.count = devices;
            args.shard = Partition { index: shard_count - 1, count: shard_count };
            args.fleet.connect_rate = connect_rate;
            args.schedule.rate = rate;
            args.seed = seed;
            args.stages.hold = crate::units::Span(duration);
            args.stages.ramp_timeout = crate::units::Span(ramp_timeout);
            args.stages.drain = crate::units::Span(drain);
            args.grace = grace;
            args.schedule.burst_window = crate::units::Span(burst_window);
            args.inject_after = inject_after;
            args.fleet.heartbeat = crate::units::Span(heartbeat);
            args.fleet.heartbeat_jitter = crate::units::Span(jitter);
            args.schedule.pattern = pattern;
            args.tls_key_exchange = key_exchange;
            args.route_by_partition = switches[0];
            args.wait_for_start = switches[1];
            if !switches[1] && switches[2] {
                args.hold_at = Some(SystemTime::UNIX_EPOCH + Duration::from_millis(seed % 4_000_000_000_000));
            }
            args.fleet.empty_reping = switches[2];
            args.fleet.close_per_ping = switches[3];
            args.fleet.provision = switches[4];
            args.progress = switches[5];
            args.insecure = switches[6];
            args.fleet.tls_resumption = switches[8];
            args.fleet.folders = folders;
            args.fleet.profiles = profile;
            args.user_prefix = user_prefix;
            args.password = password;
            args.fleet.device_type = device_type;
            args.fleet.user_agent = user_agent;
            args.fleet.device_id_prefix = device_id_prefix;
            args.fleet.protocol_version = version;
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
}
