//! At which level a run's emulated network is made, decided when the plan is resolved
//! (so that `--plan` says it): packets in network namespaces, where the run has root,
//! or streams on the userspace middlebox's relays, where it has not (one network for
//! every device, and what that cannot emulate said wherever the level is).

use super::{FirewallMode, Scenario};
use crate::firewall::stream_link::StreamLink;
use crate::link::profile::NetworkProfile;

/// What a stream-level run says it does and does not emulate (the plan and the
/// summary).
pub const STREAM_WORDS: &str = "stream level (no root): delay and rate on the middlebox's \
    relays; not emulated: packet loss and TCP's retransmissions, outages, per-packet jitter, \
    the TCP handshake's round trip (the middlebox answers the connect locally)";

/// Where the emulated network is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum LinkLevel {
    /// Every packet through `pingfleet link` in network namespaces (root): the
    /// kernels' own TCP sees the delays and losses.
    Packet,
    /// Each chunk the middlebox relays, delayed and paced (no root).
    Stream,
}

/// A network the run cannot make at either level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    #[error(
        "devices on a mix of networks ({names}) need root: a mix is emulated at the packet \
         level only; without root every device must be on one network"
    )]
    MixWithoutRoot { names: String },
    #[error(
        "with root, networks are emulated at the packet level in network namespaces: use \
         firewall mode \"netns\" with them (the proxy middlebox is on loopback; without root \
         it carries one network at the stream level)"
    )]
    ProxyWithRoot,
}

impl LinkLevel {
    /// The level of `scenario`'s networks on a machine where the run is root or not;
    /// `None` when no device is on a network.
    pub fn choose(scenario: &Scenario, is_root: bool) -> Result<Option<Self>, LevelError> {
        if scenario.networks_in_use().is_empty() {
            return Ok(None);
        }
        let mode = scenario.firewall.as_ref().map(|firewall| firewall.mode);
        let kinds = networks_of_every_kind(scenario);
        match (is_root, mode) {
            // The kernel's firewall needs the namespaces (and root) anyway.
            (_, Some(FirewallMode::Netns)) | (true, None) => Ok(Some(Self::Packet)),
            (true, Some(FirewallMode::Proxy)) => Err(LevelError::ProxyWithRoot),
            (false, _) if kinds.len() > 1 => Err(LevelError::MixWithoutRoot {
                names: kinds.join(", "),
            }),
            (false, _) => Ok(Some(Self::Stream)),
        }
    }

    /// How the plan and the summary name it.
    pub fn words(self) -> &'static str {
        match self {
            Self::Packet => {
                "packet level (root): pingfleet link on a TUN device in network namespaces"
            }
            Self::Stream => STREAM_WORDS,
        }
    }
}

/// The stream-level link of `profile`: its one-way delay and its rates (a direction
/// given by a delivery trace has no rate at this level).
pub fn stream_link(profile: &NetworkProfile) -> StreamLink {
    StreamLink {
        link_delay: profile.delay,
        link_down: profile.down.map(|rate| rate.0),
        link_up: profile.up.map(|rate| rate.0),
    }
}

/// The network of each kind of device (`none` included), each once.
fn networks_of_every_kind(scenario: &Scenario) -> Vec<String> {
    let devices = &scenario.devices;
    let mut names: Vec<String> = Vec::new();
    let each = match devices.profiles.is_empty() {
        true => vec![&devices.network],
        false => devices
            .profiles
            .iter()
            .map(|profile| profile.network.as_ref().unwrap_or(&devices.network))
            .collect(),
    };
    for name in each {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(text: &str, is_root: bool) -> Result<Option<LinkLevel>, LevelError> {
        let scenario = Scenario::parse(text, "t.toml").unwrap();
        LinkLevel::choose(&scenario, is_root)
    }

    const ONE: &str = "name = \"t\"\n[devices]\ncount = 1\nnetwork = \"lte\"\n";

    #[test]
    fn without_root_one_network_is_made_on_the_relays_and_a_mix_is_refused() {
        assert_eq!(level(ONE, true), Ok(Some(LinkLevel::Packet)));
        assert_eq!(level(ONE, false), Ok(Some(LinkLevel::Stream)));
        let none = "name = \"t\"\n[devices]\ncount = 1\n";
        assert_eq!(level(none, false), Ok(None));
        let mix = format!(
            "{ONE}[[devices.profiles]]\nname = \"a\"\nnetwork = \"3g\"\n\
             [[devices.profiles]]\nname = \"b\"\n"
        );
        assert_eq!(level(&mix, true), Ok(Some(LinkLevel::Packet)));
        let err = level(&mix, false).unwrap_err();
        assert_eq!(err.to_string().lines().count(), 1);
        assert!(err.to_string().contains("(3g, lte) need root"), "{err}");
        // A kind on loopback beside one on a network is a mix too.
        let loopback = mix.replace("network = \"3g\"", "network = \"none\"");
        assert!(matches!(
            level(&loopback, false),
            Err(LevelError::MixWithoutRoot { .. })
        ));
        // Every kind on the same network is one network.
        let same = mix.replace("network = \"3g\"", "network = \"lte\"");
        assert_eq!(level(&same, false), Ok(Some(LinkLevel::Stream)));
    }

    #[test]
    fn the_proxy_firewall_carries_the_network_without_root_only() {
        let proxy = format!("{ONE}[firewall]\nmode = \"proxy\"\nidle_timeout = \"1m\"\n");
        assert_eq!(level(&proxy, false), Ok(Some(LinkLevel::Stream)));
        assert_eq!(level(&proxy, true), Err(LevelError::ProxyWithRoot));
        let netns = proxy.replace("\"proxy\"", "\"netns\"");
        assert_eq!(level(&netns, false), Ok(Some(LinkLevel::Packet)));
    }

    #[test]
    fn without_root_one_network_plans_a_relaying_middlebox_per_partition() {
        use crate::scenario::resolve::{MachineLimits, Overrides, ResolvedScenario};
        let limits = |is_root| MachineLimits {
            fd_limit: 20_000,
            memory_available_bytes: None,
            is_root,
        };
        let text = format!("{ONE}[server]\npartitions = 2\n");
        let dir = std::path::Path::new("/tmp");
        let upstream = "127.0.0.1:8080".parse().unwrap();
        let plan = ResolvedScenario::resolve(&text, "t.toml", &Overrides::default(), limits(false))
            .unwrap();
        assert_eq!(plan.link_level, Some(LinkLevel::Stream));
        assert!(!plan.in_namespaces() && plan.link_args(dir).is_none());
        let lte = NetworkProfile::lte();
        for index in 0..plan.partitions {
            let args = plan.firewall_args(index, upstream, dir).unwrap();
            assert_eq!(args.link, stream_link(&lte));
            // No [firewall]: a plain relay, never idle long enough to act.
            assert!(args.firewall.idle_timeout.0 > std::time::Duration::from_secs(86_400 * 300));
        }
        // With a [firewall] its settings come along, beside the link.
        let proxy = format!("{text}[firewall]\nidle_timeout = \"1m\"\naction = \"rst\"\n");
        let plan =
            ResolvedScenario::resolve(&proxy, "t.toml", &Overrides::default(), limits(false))
                .unwrap();
        let args = plan.firewall_args(0, upstream, dir).unwrap();
        assert_eq!(args.firewall.idle_timeout.0.as_secs(), 60);
        assert_eq!(args.link, stream_link(&lte));
        // With root: the packet level, no middlebox unless the scenario has one.
        let plan = ResolvedScenario::resolve(&text, "t.toml", &Overrides::default(), limits(true))
            .unwrap();
        assert_eq!(plan.link_level, Some(LinkLevel::Packet));
        assert!(plan.in_namespaces() && plan.link_args(dir).is_some());
        assert!(plan.firewall_args(0, upstream, dir).is_none());
        let refused =
            ResolvedScenario::resolve(&proxy, "t.toml", &Overrides::default(), limits(true));
        assert!(refused
            .unwrap_err()
            .to_string()
            .contains("firewall mode \"netns\""));
    }

    #[test]
    fn a_profiles_stream_link_is_its_delay_and_rates() {
        let lte = NetworkProfile::lte();
        let link = stream_link(&lte);
        assert_eq!(link.link_delay, lte.delay);
        assert_eq!(link.link_down, lte.down.map(|rate| rate.0));
        assert_eq!(link.link_up, lte.up.map(|rate| rate.0));
    }
}
