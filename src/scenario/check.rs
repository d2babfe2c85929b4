//! What a scenario's types cannot check: each key's range, the tables that exclude
//! each other, the heartbeats within the server's bounds, the thresholds' units. Each
//! error names the key (or profile entry) to point at.

use std::time::Duration;

use super::capacity::CapacityError;
use super::compare::ToleranceError;
use super::place::Place;
use super::sections::TargetSection;
use super::sweep::SweepError;
use super::sweep::SweepSection;
use super::threshold::{Metric, Misfit};
use super::variants::VariantsError;
use super::Scenario;
use crate::firewall::config::{FirewallConfig, FirewallMode};
use crate::fleet::config::ProfileError;
use crate::fleet::sink::InjectUrlError;
use crate::proxy::config::ProxyConfig;
use crate::server::config::ServerConfig;
use crate::setting::ConfigError;

impl Scenario {
    /// Checks what the types cannot; the error knows where to point.
    pub(crate) fn check(&self) -> Result<(), CheckError> {
        self.check_fields()?;
        for (index, profile) in self.devices.profiles.iter().enumerate() {
            let heartbeat = profile.heartbeat.unwrap_or(self.devices.heartbeat).0;
            profile
                .check()
                .map_err(|error| CheckError::Profile { index, error })?;
            self.heartbeat_within_bounds(heartbeat).map_err(|bounds| {
                CheckError::ProfileHeartbeat {
                    index,
                    name: profile.name.clone(),
                    bounds,
                }
            })?;
        }
        for (metric, conditions) in &self.thresholds {
            for condition in conditions {
                condition
                    .0
                    .fits(metric.kind())
                    .map_err(|misfit| CheckError::Threshold {
                        metric: *metric,
                        misfit,
                    })?;
            }
        }
        Ok(())
    }

    /// Whether a heartbeat is within the bundled server's bounds (an external
    /// server's bounds are its own: it answers Status 5 and the device adapts).
    fn heartbeat_within_bounds(&self, heartbeat: Duration) -> Result<(), OutsideBounds> {
        let (min, max) = (self.server.min_heartbeat.0, self.server.max_heartbeat.0);
        match self.target.is_none() && (heartbeat < min || heartbeat > max) {
            true => Err(OutsideBounds {
                heartbeat,
                min,
                max,
            }),
            false => Ok(()),
        }
    }

    /// Checks of a `[target]` table.
    fn check_target(&self, target: &TargetSection) -> Result<(), CheckError> {
        if self.server != ServerConfig::default() {
            return Err(CheckError::TargetWithServer);
        }
        crate::fleet::target::Target::parse(&target.url)
            .map_err(|err| CheckError::TargetUrl(err.to_string()))?;
        for url in &target.inject {
            crate::fleet::sink::check_inject_url(url).map_err(CheckError::InjectUrl)?;
        }
        if self.injector.rate > 0.0 && target.inject.is_empty() {
            return Err(CheckError::RateWithoutInject);
        }
        if target.url.starts_with("https") && target.ca.is_none() && !target.insecure {
            return Err(CheckError::HttpsWithoutCa);
        }
        if !target.server_pid.is_empty() && target.server_cgroup.is_some() {
            return Err(CheckError::PidAndCgroup);
        }
        Ok(())
    }

    /// Checks of single keys and of tables against each other.
    fn check_fields(&self) -> Result<(), CheckError> {
        if !(1.0..=3600.0).contains(&self.time_scale) {
            return Err(CheckError::TimeScale);
        }
        if let Some(target) = &self.target {
            self.check_target(target)?;
        }
        if let Some(compare) = &self.compare {
            compare.check()?;
        }
        if let Some(sweep) = &self.sweep {
            self.check_sweep(sweep)?;
        }
        if let Some(capacity) = &self.capacity {
            capacity.check()?;
            if self.sweep.is_some() || self.server.compare_engines {
                return Err(CheckError::CapacityWithOthers);
            }
        }
        if !self.variants.is_empty() {
            super::variants::check(&self.variants)?;
            if self.sweep.is_some() || self.capacity.is_some() || self.server.compare_engines {
                return Err(CheckError::VariantsWithOthers);
            }
        }
        if let Some(firewall) = &self.firewall {
            self.check_firewall(firewall)?;
        }
        if let Some(proxy) = &self.proxy {
            self.check_proxy(proxy)?;
        }
        self.check_networks()?;
        self.devices.check()?;
        self.check_server()?;
        self.stages.check()?;
        Ok(self.injector.check()?)
    }

    /// The networks devices name: each a shipped profile or the scenario's own, each
    /// of those holding; emulated before the bundled server only.
    fn check_networks(&self) -> Result<(), CheckError> {
        for (name, profile) in &self.networks {
            // The traces are read here to be checked, and again by the emulator.
            let traces = profile.check().and_then(|()| profile.traces());
            traces.map_err(|error| CheckError::Network {
                name: name.clone(),
                error,
            })?;
        }
        let in_use = self.networks_in_use();
        for name in &in_use {
            if self.network_profile(name).is_none() {
                let known: Vec<String> = crate::link::profile::SHIPPED
                    .iter()
                    .map(|name| (*name).to_owned())
                    .chain(self.networks.keys().cloned())
                    .collect();
                return Err(CheckError::UnknownNetwork {
                    name: name.clone(),
                    known: known.join(", "),
                });
            }
        }
        if in_use.is_empty() {
            return Ok(());
        }
        // Which level carries them (packets with root, the middlebox's relays
        // without) is the machine's to say: `resolve` asks it.
        match self.target {
            Some(_) => Err(CheckError::NetworkWithTarget),
            None => Ok(()),
        }
    }

    /// A `[sweep]`: a valid grid, behind a firewall, judged by no thresholds.
    fn check_sweep(&self, sweep: &SweepSection) -> Result<(), CheckError> {
        sweep.check()?;
        if !self.thresholds.is_empty() {
            return Err(CheckError::SweepWithThresholds);
        }
        if self.firewall.is_none() == self.proxy.is_none() || self.server.compare_engines {
            return Err(CheckError::SweepWithoutFirewall);
        }
        let netns = self
            .firewall
            .as_ref()
            .is_some_and(|firewall| firewall.mode == FirewallMode::Netns);
        if (netns || !self.networks_in_use().is_empty()) && sweep.parallel != 1 {
            return Err(CheckError::SweepInNamespacesAtOnce);
        }
        Ok(())
    }

    /// A `[firewall]`: its own checks, a flush within the hold, no external target.
    fn check_firewall(&self, firewall: &FirewallConfig) -> Result<(), CheckError> {
        firewall.check()?;
        if firewall
            .flush_at
            .is_some_and(|at| at.0 >= self.stages.hold.0)
        {
            return Err(CheckError::FlushAfterHold);
        }
        if self.target.is_some() {
            return Err(CheckError::FirewallWithTarget);
        }
        Ok(())
    }

    /// A `[proxy]`: its own checks, a reload within the hold, before the bundled
    /// server only.
    fn check_proxy(&self, proxy: &ProxyConfig) -> Result<(), CheckError> {
        proxy.check()?;
        if proxy.reload_at.is_some_and(|at| at.0 >= self.stages.hold.0) {
            return Err(CheckError::ReloadAfterHold {
                at: proxy.reload_at.map_or(Duration::ZERO, |at| at.0),
                hold: self.stages.hold.0,
            });
        }
        if self.target.is_some() {
            return Err(CheckError::ProxyWithTarget);
        }
        Ok(())
    }

    /// `[server]`: its own checks, and heartbeat bounds that hold the devices'.
    fn check_server(&self) -> Result<(), CheckError> {
        self.server.check()?;
        self.heartbeat_within_bounds(self.devices.heartbeat.0)
            .map_err(CheckError::DevicesHeartbeat)
    }
}

/// A heartbeat outside the bundled server's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "heartbeat {} is outside the server's bounds {}..{} (widen them with [server] \
     min_heartbeat or max_heartbeat, e.g. min_heartbeat = \"1s\")",
    humantime::format_duration(*.heartbeat),
    humantime::format_duration(*.min),
    humantime::format_duration(*.max)
)]
pub(crate) struct OutsideBounds {
    pub(crate) heartbeat: Duration,
    pub(crate) min: Duration,
    pub(crate) max: Duration,
}

/// What the types of a scenario cannot check and the scenario gets wrong; each variant
/// knows the key (or profile entry) to point at.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum CheckError {
    #[error("time_scale must be 1 (real time) to 3600")]
    TimeScale,
    #[error("a scenario with [target] runs no bundled server: remove its [server] table")]
    TargetWithServer,
    #[error("target.url: {0}")]
    TargetUrl(String),
    #[error("target.{0}")]
    InjectUrl(InjectUrlError),
    #[error(
        "injector.rate needs target.inject: an external server learns of changes only from \
         its mail store (or set injector.rate = 0 to measure parking alone)"
    )]
    RateWithoutInject,
    #[error("an https target needs target.ca (its certificate's issuer) or insecure = true")]
    HttpsWithoutCa,
    #[error("give target.server_pid or target.server_cgroup, not both")]
    PidAndCgroup,
    #[error(transparent)]
    Tolerances(#[from] ToleranceError),
    #[error(transparent)]
    Sweep(#[from] SweepError),
    #[error("a [sweep] judges no [thresholds]: each cell is read from the grid (remove them)")]
    SweepWithThresholds,
    #[error(
        "a [sweep] needs one engine and one idle timeout to sweep: a [firewall]'s or a \
         [proxy]'s, not both"
    )]
    SweepWithoutFirewall,
    #[error(
        "a [sweep] in network namespaces (firewall mode netns, or devices on a network) \
         measures one cell at a time: set sweep.parallel = 1"
    )]
    SweepInNamespacesAtOnce,
    #[error(transparent)]
    Capacity(#[from] CapacityError),
    #[error("a [capacity] search measures one engine, without a [sweep]")]
    CapacityWithOthers,
    #[error(transparent)]
    Variants(#[from] VariantsError),
    #[error(
        "[[variants]] are runs of their own: not with a [sweep], a [capacity] search or compare_engines"
    )]
    VariantsWithOthers,
    #[error("firewall.flush_at must fall within the hold")]
    FlushAfterHold,
    #[error(
        "a [firewall] stands before the bundled server; with a [target], put \
         `pingfleet firewall` before your server by hand"
    )]
    FirewallWithTarget,
    #[error(
        "proxy.reload_at {} must fall within the hold of {}, e.g. reload_at = \"{}\"",
        humantime::format_duration(*.at),
        humantime::format_duration(*.hold),
        humantime::format_duration(Duration::from_secs(.hold.as_secs() / 2).max(Duration::from_secs(1)))
    )]
    ReloadAfterHold { at: Duration, hold: Duration },
    #[error(
        "a [proxy] stands before the bundled server; a [target]'s own proxy is part of the \
         target (point target.url at it)"
    )]
    ProxyWithTarget,
    /// A table's own check (devices, server, firewall, stages, injector).
    #[error("{}", .0.message)]
    Setting(ConfigError),
    #[error("devices.{0}")]
    DevicesHeartbeat(OutsideBounds),
    #[error("{error}")]
    Profile { index: usize, error: ProfileError },
    #[error("profile {name:?}: {bounds}")]
    ProfileHeartbeat {
        index: usize,
        name: String,
        bounds: OutsideBounds,
    },
    #[error("thresholds.{}: {misfit}", metric.name())]
    Threshold { metric: Metric, misfit: Misfit },
    #[error("networks.{name}: {}", error.message)]
    Network { name: String, error: ConfigError },
    #[error(
        "no network profile {name:?}: name one of {known} or none, or define [networks.{name}]"
    )]
    UnknownNetwork { name: String, known: String },
    #[error(
        "networks are emulated before the bundled server only (in network namespaces); \
         with a [target], set devices.network = \"none\""
    )]
    NetworkWithTarget,
}

impl From<ConfigError> for CheckError {
    fn from(error: ConfigError) -> Self {
        Self::Setting(error)
    }
}

impl CheckError {
    /// Where in the scenario the error points.
    pub(crate) fn place(&self) -> Place {
        Place::Key(match self {
            Self::Profile { index, .. } | Self::ProfileHeartbeat { index, .. } => {
                return Place::Profile(*index)
            }
            Self::Threshold { metric, .. } => metric.name(),
            Self::Setting(error) => error.key,
            Self::Capacity(error) => error.key(),
            Self::TimeScale => "time_scale",
            Self::TargetWithServer | Self::TargetUrl(_) | Self::HttpsWithoutCa => "url",
            Self::InjectUrl(_) => "inject",
            Self::RateWithoutInject => "rate",
            Self::PidAndCgroup => "server_pid",
            Self::Tolerances(_) => "alpha",
            Self::Sweep(_) | Self::SweepWithThresholds => "heartbeat_strategy",
            Self::SweepWithoutFirewall | Self::FirewallWithTarget => "idle_timeout",
            Self::SweepInNamespacesAtOnce => "parallel",
            Self::CapacityWithOthers => "steps",
            Self::Variants(_) | Self::VariantsWithOthers => "variants",
            Self::FlushAfterHold => "flush_at",
            Self::ReloadAfterHold { .. } => "reload_at",
            Self::ProxyWithTarget => "proxy",
            Self::DevicesHeartbeat(_) => "heartbeat",
            Self::Network { error, .. } => error.key,
            Self::UnknownNetwork { .. } | Self::NetworkWithTarget => "network",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<(), CheckError> {
        Scenario::parse_unchecked(text, "t.toml").unwrap().check()
    }

    #[test]
    fn a_proxy_is_checked_where_its_keys_are() {
        let base = "name = \"t\"\n[devices]\ncount = 1\n[stages]\nhold = \"1m\"\n[proxy]\n";
        check(&format!(
            "{base}kind = \"haproxy\"\ntimeout_server = \"2h\"\n"
        ))
        .unwrap();
        let foreign = check(&format!(
            "{base}kind = \"nginx\"\ntimeout_server = \"2h\"\n"
        ))
        .unwrap_err();
        assert_eq!(foreign.place(), Place::Key("timeout_server"));
        let late = check(&format!("{base}kind = \"nginx\"\nreload_at = \"2m\"\n")).unwrap_err();
        assert_eq!(late.place(), Place::Key("reload_at"));
        let target = "name = \"t\"\n[devices]\ncount = 1\n[target]\nurl = \"http://127.0.0.1:1/Microsoft-Server-ActiveSync\"\ncredentials = \"users.txt\"\n[injector]\nrate = 0\n[proxy]\nkind = \"nginx\"\n";
        let Err(CheckError::ProxyWithTarget) = check(target) else {
            panic!("a proxy before a target is refused");
        };
    }

    #[test]
    fn a_network_is_shipped_or_the_scenarios_own_before_the_bundled_server() {
        let base = "name = \"t\"\n[devices]\ncount = 1\n";
        let unknown = check(&format!("{base}network = \"5g\"\n")).unwrap_err();
        assert_eq!(unknown.place(), Place::Key("network"));
        assert!(
            unknown.to_string().contains("wifi, lte, 3g, gprs"),
            "{unknown}"
        );
        let own = format!("{base}network = \"train\"\n[networks.train]\ndelay = \"60ms\"\n");
        check(&own).unwrap();
        let scenario = Scenario::parse_unchecked(&own, "t.toml").unwrap();
        assert_eq!(scenario.networks_in_use(), ["train"]);
        let bad = format!("{base}network = \"lte\"\n[networks.x]\nloss = \"70%\"\n");
        assert_eq!(check(&bad).unwrap_err().place(), Place::Key("loss"));
        let trace = "[networks.x]\ndown_trace = \"/nonexistent/x.down\"\n";
        let unread = check(&format!("{base}network = \"x\"\n{trace}")).unwrap_err();
        assert_eq!(unread.place(), Place::Key("down_trace"));
        assert!(
            unread.to_string().contains("/nonexistent/x.down"),
            "{unread}"
        );
        let proxy = format!(
            "{base}network = \"lte\"\n[firewall]\nmode = \"proxy\"\nidle_timeout = \"1m\"\n"
        );
        // The proxy middlebox with a network is the machine's question (root or not).
        check(&proxy).unwrap();
        // A sweep over a network runs its cells one at a time (one path per run).
        let sweep = format!(
            "{base}network = \"lte\"\n[firewall]\nmode = \"netns\"\nidle_timeout = \"1m\"\n\
             [sweep]\nheartbeat = [\"60s\"]\nidle_timeout = [\"120s\"]\nparallel = 2\n"
        );
        let err = check(&sweep).unwrap_err();
        assert_eq!(err, CheckError::SweepInNamespacesAtOnce);
        assert_eq!(err.place(), Place::Key("parallel"));
        check(&sweep.replace("parallel = 2", "parallel = 1")).unwrap();
    }

    #[test]
    fn each_error_points_at_its_key_with_the_same_words() {
        let err = check("name = \"t\"\ntime_scale = 0.5\n[devices]\ncount = 1\n").unwrap_err();
        assert_eq!(err, CheckError::TimeScale);
        assert_eq!(err.place(), Place::Key("time_scale"));
        assert_eq!(err.to_string(), "time_scale must be 1 (real time) to 3600");
        let err =
            check("name = \"t\"\n[devices]\ncount = 1\n[capacity]\nsteps = [2, 1]\n").unwrap_err();
        assert_eq!(err, CheckError::Capacity(CapacityError::NotGrowing));
        assert_eq!(err.place(), Place::Key("steps"));
        assert!(
            err.to_string().starts_with("capacity.steps must grow"),
            "{err}"
        );
        let err =
            check("name = \"t\"\n[devices]\ncount = 1\n[[variants]]\nname = \"a\"\n").unwrap_err();
        assert_eq!(err, CheckError::Variants(VariantsError::TooFew));
        assert_eq!(err.place(), Place::Key("variants"));
    }

    #[test]
    fn a_heartbeat_outside_the_servers_bounds_names_them() {
        let text = "name = \"t\"\n[server]\nmax_heartbeat = \"10m\"\n[devices]\ncount = 1\nheartbeat = \"20m\"\n";
        let err = check(text).unwrap_err();
        let CheckError::DevicesHeartbeat(bounds) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(bounds.heartbeat, Duration::from_secs(1200));
        assert_eq!(bounds.max, Duration::from_secs(600));
        assert_eq!(err.place(), Place::Key("heartbeat"));
        assert!(
            err.to_string()
                .starts_with("devices.heartbeat 20m is outside the server's bounds "),
            "{err}"
        );
        let profile = "name = \"t\"\n[devices]\ncount = 1\n[[devices.profiles]]\nname = \"slow\"\nheartbeat = \"2h\"\n";
        let err = check(profile).unwrap_err();
        assert!(
            matches!(err, CheckError::ProfileHeartbeat { index: 0, .. }),
            "{err:?}"
        );
        assert_eq!(err.place(), Place::Profile(0));
        assert!(
            err.to_string()
                .starts_with("profile \"slow\": heartbeat 2h is outside"),
            "{err}"
        );
    }
}
