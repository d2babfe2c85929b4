//! Device profiles: what kind of phone a simulated device is and how it pings, and the
//! mix of profiles a fleet runs (which device is which kind).

use std::sync::Arc;
use std::time::Duration;

use super::delivery::{Delivery, DeliveryMode, SyncConnection};
use super::heartbeat::{HeartbeatPlan, HeartbeatStrategy};
use super::radio::RadioModel;
use crate::eas::ProtocolVersion;
use crate::seeds::{self, Stream};

/// How a simulated device behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The kind's name in the mix (`default` for a fleet of one kind): what counts kept
    /// per kind are kept under.
    pub kind: String,
    /// The version asked for (lowered to the server's best if it lacks it).
    pub version: ProtocolVersion,
    pub device_type: String,
    pub user_agent: String,
    /// What every DeviceId starts with, to tell one fleet's device partnerships from
    /// another's on one server.
    pub device_id_prefix: String,
    /// Folders pushed (monitored by Ping): kinds (`inbox`, `calendar`, `contacts`,
    /// `tasks`) found by type in the hierarchy, or ids.
    pub folders: Vec<String>,
    /// Run Provision (both phases) at the start of bootstrap, before being asked;
    /// otherwise only when the server asks (HTTP 449, Status 142 to 144).
    pub provision: bool,
    /// After the first full Ping, re-Ping with an empty body (the server's cache).
    pub empty_reping: bool,
    /// Send `Connection: close` on every Ping, as some Android clients do.
    pub close_per_ping: bool,
    /// Keep the server's TLS 1.3 session tickets and resume with one on reconnecting
    /// (phones do); otherwise every connection is a full handshake.
    pub tls_resumption: bool,
    /// The heartbeat asked for (on the wire in whole seconds, rounded up; the device's
    /// own deadlines use it exactly).
    pub heartbeat: Duration,
    /// Each device's heartbeat is `heartbeat` plus or minus up to this.
    pub heartbeat_jitter: Duration,
    /// How the heartbeat moves Ping after Ping (fixed, adaptive, stepped).
    pub heartbeat_plan: HeartbeatPlan,
    /// How long after its heartbeat a device waits for the Ping response before it
    /// assumes the connection was cut (AOSP waits 5 s, NachoMail 10 s).
    pub read_margin: Duration,
    /// Deadline of every other request.
    pub request_timeout: Duration,
    /// Reconnect backoff: half to full of `backoff_base` x 2^attempt, at most
    /// `backoff_max` (1 s and 60 s; divided in compressed time).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How it learns of mail (see [`Profile::delivery`]), and a scheduled device's
    /// interval, its least, and its connection.
    pub delivery_mode: DeliveryMode,
    pub sync_interval: Duration,
    pub min_sync_interval: Duration,
    pub sync_connection: SyncConnection,
    /// The longest an SMS takes to reach it (the loss window of an SMS-woken device).
    pub sms_delay_max: Duration,
    /// The radio its packets are counted against, and how many real-world seconds
    /// each second of a compressed run stands for (the radio's clock runs at that
    /// while the device waits).
    pub radio: RadioModel,
    pub time_scale: f64,
}

impl Profile {
    /// How the device learns of mail, its interval resolved.
    pub fn delivery(&self) -> Delivery {
        Delivery::new(
            self.delivery_mode,
            self.sync_interval,
            self.min_sync_interval,
            self.sync_connection,
        )
    }
}

/// The DeviceId prefix when none is given.
pub const DEFAULT_DEVICE_ID_PREFIX: &str = "pf";
/// Longest DeviceId prefix: with the 16 hex digits after it a DeviceId stays within
/// the 32 characters MS-ASCMD allows.
pub const MAX_DEVICE_ID_PREFIX: usize = 16;

/// Whether `prefix` can start a DeviceId: letters and digits only (MS-ASCMD), at most
/// [`MAX_DEVICE_ID_PREFIX`] of them.
pub fn check_device_id_prefix(prefix: &str) -> Result<String, String> {
    if prefix.len() > MAX_DEVICE_ID_PREFIX || !prefix.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "{prefix:?}: a DeviceId prefix is at most {MAX_DEVICE_ID_PREFIX} letters and digits"
        ));
    }
    Ok(prefix.to_owned())
}

impl Default for Profile {
    /// An Android-like phone pushing its Inbox with an 8-minute heartbeat.
    fn default() -> Self {
        Self {
            kind: "default".into(),
            version: ProtocolVersion::V14_1,
            device_type: "Android".into(),
            user_agent: "Android/14-EAS-2.0".into(),
            device_id_prefix: DEFAULT_DEVICE_ID_PREFIX.into(),
            folders: vec!["inbox".into()],
            provision: false,
            empty_reping: false,
            close_per_ping: false,
            tls_resumption: true,
            heartbeat: Duration::from_secs(480),
            heartbeat_jitter: Duration::ZERO,
            heartbeat_plan: HeartbeatPlan::default(),
            read_margin: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            delivery_mode: DeliveryMode::Push,
            sync_interval: Duration::from_secs(15 * 60),
            min_sync_interval: Duration::from_secs(5 * 60),
            sync_connection: SyncConnection::New,
            sms_delay_max: Duration::from_secs(600),
            radio: RadioModel::lte(),
            time_scale: 1.0,
        }
    }
}

/// One kind of phone in a mix: a name, a weight, and what it changes from the base
/// profile (anything left out is the base's). Scenario files write these as
/// `[[devices.profiles]]`, `pingfleet devices --profiles FILE` as `[[profile]]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    pub name: String,
    /// Share of the fleet relative to the other entries' weights.
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<ProtocolVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folders: Option<Vec<String>>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub heartbeat: Option<Duration>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub heartbeat_jitter: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_strategy: Option<HeartbeatStrategy>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub heartbeat_min: Option<Duration>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub heartbeat_max: Option<Duration>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub heartbeat_increment: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_clean_run: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provision: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_reping: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_per_ping: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_resumption: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryMode>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub sync_interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_connection: Option<SyncConnection>,
}

/// The file `pingfleet devices --profiles` reads: `[[profile]]` entries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    pub profile: Vec<ProfileSpec>,
}

fn one() -> u32 {
    1
}

impl ProfileSpec {
    /// An entry that changes nothing.
    pub fn named_only(name: &str) -> Self {
        Self {
            name: name.into(),
            weight: 1,
            version: None,
            device_type: None,
            user_agent: None,
            folders: None,
            heartbeat: None,
            heartbeat_jitter: None,
            heartbeat_strategy: None,
            heartbeat_min: None,
            heartbeat_max: None,
            heartbeat_increment: None,
            heartbeat_clean_run: None,
            provision: None,
            empty_reping: None,
            close_per_ping: None,
            tls_resumption: None,
            delivery: None,
            sync_interval: None,
            sync_connection: None,
        }
    }

    /// The base profile with this entry's changes.
    pub fn resolve(&self, base: &Profile) -> Profile {
        Profile {
            kind: self.name.clone(),
            version: self.version.unwrap_or(base.version),
            device_type: self.device_type.clone().unwrap_or(base.device_type.clone()),
            user_agent: self.user_agent.clone().unwrap_or(base.user_agent.clone()),
            folders: self.folders.clone().unwrap_or(base.folders.clone()),
            provision: self.provision.unwrap_or(base.provision),
            empty_reping: self.empty_reping.unwrap_or(base.empty_reping),
            close_per_ping: self.close_per_ping.unwrap_or(base.close_per_ping),
            tls_resumption: self.tls_resumption.unwrap_or(base.tls_resumption),
            heartbeat: self.heartbeat.unwrap_or(base.heartbeat),
            heartbeat_jitter: self.heartbeat_jitter.unwrap_or(base.heartbeat_jitter),
            heartbeat_plan: self.heartbeat_plan(&base.heartbeat_plan),
            delivery_mode: self.delivery.unwrap_or(base.delivery_mode),
            sync_interval: self.sync_interval.unwrap_or(base.sync_interval),
            sync_connection: self.sync_connection.unwrap_or(base.sync_connection),
            ..base.clone()
        }
    }

    /// The base plan with this entry's changes.
    fn heartbeat_plan(&self, base: &HeartbeatPlan) -> HeartbeatPlan {
        HeartbeatPlan {
            strategy: self.heartbeat_strategy.unwrap_or(base.strategy),
            min: self.heartbeat_min.unwrap_or(base.min),
            max: self.heartbeat_max.unwrap_or(base.max),
            increment: self.heartbeat_increment.unwrap_or(base.increment),
            clean_run: self.heartbeat_clean_run.unwrap_or(base.clean_run),
        }
    }

    /// What is wrong with the entry, if anything.
    pub fn problem(&self) -> Option<String> {
        if let Some(problem) = self.heartbeat_plan(&HeartbeatPlan::default()).problem() {
            return Some(format!("profile {:?}: {problem}", self.name));
        }
        if self.weight == 0 {
            return Some(format!(
                "profile {:?}: weight must be at least 1",
                self.name
            ));
        }
        if self
            .sync_interval
            .is_some_and(|interval| interval.is_zero() || interval > Duration::from_secs(86_400))
        {
            return Some(format!(
                "profile {:?}: sync_interval must be longer than 0s and at most 24h",
                self.name
            ));
        }
        if self.folders.as_ref().is_some_and(Vec::is_empty) {
            return Some(format!(
                "profile {:?}: folders must name at least one folder id",
                self.name
            ));
        }
        None
    }
}

/// The profiles of a fleet and which device runs which. A device's profile depends only
/// on its index in the whole fleet and the run's seed, so shards agree on it.
#[derive(Debug, Clone)]
pub struct ProfileMix {
    entries: Vec<(ProfileSpec, Arc<Profile>)>,
    total_weight: u64,
    seed: u64,
}

impl ProfileMix {
    /// One entry per spec, resolved against `base`; just `base` (named `default`)
    /// without specs.
    pub fn new(base: &Profile, specs: &[ProfileSpec], seed: u64) -> Self {
        let entries: Vec<_> = match specs {
            [] => vec![(ProfileSpec::named_only("default"), Arc::new(base.clone()))],
            specs => specs
                .iter()
                .map(|spec| (spec.clone(), Arc::new(spec.resolve(base))))
                .collect(),
        };
        let total_weight = entries
            .iter()
            .map(|(spec, _)| u64::from(spec.weight.max(1)))
            .sum();
        Self {
            entries,
            total_weight,
            seed,
        }
    }

    /// The entry device `index` (of the whole fleet) runs.
    pub fn pick(&self, index: usize) -> usize {
        let mut point = seeds::derive(self.seed, Stream::Kind, index as u64) % self.total_weight;
        for (at, (spec, _)) in self.entries.iter().enumerate() {
            let weight = u64::from(spec.weight.max(1));
            if point < weight {
                return at;
            }
            point -= weight;
        }
        self.entries.len() - 1
    }

    pub fn profile(&self, entry: usize) -> &Arc<Profile> {
        &self.entries[entry].1
    }

    pub fn spec(&self, entry: usize) -> &ProfileSpec {
        &self.entries[entry].0
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> ProfileSpec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn an_entry_changes_only_what_it_names() {
        let base = Profile::default();
        let iphone = spec("name = \"iphone\"\nversion = \"16.1\"\ndevice_type = \"iPhone\"\nheartbeat = \"15m\"\n");
        let resolved = iphone.resolve(&base);
        assert_eq!(resolved.version, ProtocolVersion::V16_1);
        assert_eq!(resolved.device_type, "iPhone");
        assert_eq!(resolved.heartbeat, Duration::from_secs(900));
        assert_eq!(resolved.folders, base.folders);
        assert_eq!(resolved.user_agent, base.user_agent);
        assert!(toml::from_str::<ProfileSpec>("name = \"x\"\ncolour = 1\n").is_err());
        assert!(toml::from_str::<ProfileSpec>("name = \"x\"\nversion = \"15.0\"\n").is_err());
        assert!(spec("name = \"x\"\nweight = 0\n").problem().is_some());
    }

    #[test]
    fn the_mix_follows_the_weights_and_is_the_same_in_every_shard() {
        let base = Profile::default();
        let specs = [
            spec("name = \"a\"\nweight = 3\n"),
            spec("name = \"b\"\nweight = 1\nclose_per_ping = true\n"),
        ];
        let mix = ProfileMix::new(&base, &specs, 7);
        let picks: Vec<usize> = (0..10_000).map(|index| mix.pick(index)).collect();
        let b = picks.iter().filter(|entry| **entry == 1).count();
        assert!((2_300..2_700).contains(&b), "{b} of 10,000 picked b");
        // Even and odd devices (two shards) each get about a quarter of b.
        let odd_b = picks.iter().skip(1).step_by(2).filter(|e| **e == 1).count();
        assert!((1_100..1_400).contains(&odd_b), "{odd_b}");
        assert_eq!(ProfileMix::new(&base, &specs, 7).pick(42), mix.pick(42));
        assert!(mix.profile(1).close_per_ping && !mix.profile(0).close_per_ping);
        let plain = ProfileMix::new(&base, &[], 7);
        assert_eq!((plain.len(), plain.spec(0).name.as_str()), (1, "default"));
    }
}
