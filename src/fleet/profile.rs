//! Device profiles: what kind of phone a simulated device is and how it pings (its
//! kind's settings, the fleet's with its entry's changes), and the mix of kinds a fleet
//! runs (which device is which kind). An entry of the mix, [`ProfileSpec`], is defined
//! with the settings it changes, in [`super::config`]; its checks are here.

use std::sync::Arc;
use std::time::Duration;

use super::config::FleetConfig;
pub(crate) use super::config::ProfileSpec;
use super::delivery::Delivery;
use super::radio::RadioModel;
use crate::seeds::{self, Stream};

/// How a simulated device behaves: its kind's settings, and what its worker adds (the
/// deadlines, the backoff, the time scale).
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The kind's name in the mix (`default` for a fleet of one kind): what counts kept
    /// per kind are kept under.
    pub kind: String,
    /// The kind's settings: the fleet's, with its entry's changes. The heartbeat is on
    /// the wire in whole seconds, rounded up; the device's own deadlines use it exactly.
    pub settings: FleetConfig,
    /// How long after its heartbeat a device waits for the Ping response before it
    /// assumes the connection was cut (AOSP waits 5 s, NachoMail 10 s).
    pub read_margin: Duration,
    /// Deadline of every other request.
    pub request_timeout: Duration,
    /// Reconnect backoff: half to full of `backoff_base` x 2^attempt, at most
    /// `backoff_max` (1 s and 60 s; divided in compressed time).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The model of `settings.radio`, built once: its packets are counted against it.
    pub radio: RadioModel,
    /// How many real-world seconds each second of a compressed run stands for (the
    /// radio's clock runs at that while the device waits).
    pub time_scale: f64,
}

impl Profile {
    /// A device of the kind `kind` with `settings`, and the worker's defaults for the
    /// rest.
    pub fn new(kind: &str, settings: FleetConfig) -> Self {
        Self {
            kind: kind.to_owned(),
            radio: settings.radio.model(),
            settings,
            read_margin: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            time_scale: 1.0,
        }
    }

    /// How the device learns of mail, its interval resolved.
    pub fn delivery(&self) -> Delivery {
        let settings = &self.settings;
        Delivery::new(
            settings.delivery,
            settings.sync_interval.0,
            settings.min_sync_interval.0,
            settings.sync_connection,
        )
    }

    /// This profile with its settings changed by `change`.
    #[cfg(test)]
    pub fn with(mut self, change: impl FnOnce(&mut FleetConfig)) -> Self {
        change(&mut self.settings);
        self.radio = self.settings.radio.model();
        self
    }
}

impl Default for Profile {
    /// A phone of the default settings: Android-like, pushing its Inbox with an
    /// 8-minute heartbeat.
    fn default() -> Self {
        Self::new("default", FleetConfig::default())
    }
}

impl ProfileSpec {
    /// The device kind of this entry, over the fleet's `base`.
    pub fn resolve(&self, base: &Profile) -> Profile {
        let settings = self.apply(&base.settings);
        Profile {
            kind: self.name.clone(),
            radio: settings.radio.model(),
            settings,
            ..base.clone()
        }
    }
}

/// The file `pingfleet devices --profiles` reads: `[[profile]]` entries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileFile {
    pub profile: Vec<ProfileSpec>,
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
    use crate::eas::ProtocolVersion;

    fn spec(text: &str) -> ProfileSpec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn an_entry_changes_only_what_it_names() {
        let base = Profile::default();
        let iphone = spec("name = \"iphone\"\nversion = \"16.1\"\ndevice_type = \"iPhone\"\nheartbeat = \"15m\"\n");
        let resolved = iphone.resolve(&base).settings;
        assert_eq!(resolved.protocol_version, ProtocolVersion::V16_1);
        assert_eq!(resolved.device_type, "iPhone");
        assert_eq!(resolved.heartbeat.0, Duration::from_secs(900));
        assert_eq!(resolved.folders, base.settings.folders);
        assert_eq!(resolved.user_agent, base.settings.user_agent);
        assert!(toml::from_str::<ProfileSpec>("name = \"x\"\ncolour = 1\n").is_err());
        assert!(toml::from_str::<ProfileSpec>("name = \"x\"\nversion = \"15.0\"\n").is_err());
        // The fleet's own settings are not a kind's to change.
        assert!(toml::from_str::<ProfileSpec>("name = \"x\"\ncount = 5\n").is_err());
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
        assert!(mix.profile(1).settings.close_per_ping && !mix.profile(0).settings.close_per_ping);
        let plain = ProfileMix::new(&base, &[], 7);
        assert_eq!((plain.len(), plain.spec(0).name.as_str()), (1, "default"));
    }
}
