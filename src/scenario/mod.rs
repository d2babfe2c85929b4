//! Scenario files (TOML): what a `pingfleet run` does, parsed strictly (unknown keys are
//! errors) with errors that name the file, the line and what would be valid.
//!
//! Layout: this file holds the file format; `sections` its tables besides `[devices]`
//! (the fleet's own config); `check` what the types cannot check, and `place` where
//! its errors point; [`catalog`] the scenarios built into the binary; [`resolve`]
//! turns a file and
//! the command line's overrides into the one validated plan a run takes everything
//! from; [`threshold`] is the language of `[thresholds]`; [`sweep`] the grid of
//! `[sweep]`; [`compare`] how `pingfleet compare` judges its runs (`[compare]`);
//! [`estimate`] how long a plan should take; [`link_level`] whether the devices'
//! network is made at the packet level (root) or on the middlebox's relays.
//!
//! ```toml
//! name = "smoke"
//! seed = 7
//! [server]
//! engine = "lean"
//! tls = false
//! [devices]
//! count = 200
//! heartbeat = "30s"
//! [stages]
//! hold = "5s"
//! [injector]
//! pattern = "poisson"
//! rate = 100
//! [thresholds]
//! wakeup_latency = ["p(99)<20ms"]
//! lost_notifications = ["count==0"]
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

pub use crate::firewall::config::{FirewallConfig, FirewallMode};
use crate::fleet::config::{FleetConfig, ScheduleConfig, StagesConfig};
use crate::fleet::injector::MAX_RATE_PER_S;
pub use crate::partition::ProcessCount;
use crate::server::config::ServerConfig;
pub use crate::units::Span;
use place::error_at;
pub use sections::TargetSection;
pub use threshold::{ConditionText, Metric};

pub mod capacity;
pub mod catalog;
mod check;
pub mod compare;
pub(crate) mod estimate;
pub mod link_level;
mod place;
pub(crate) mod resolve;
mod sections;
pub mod sweep;
pub mod threshold;
pub mod variants;

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Directory of result files.
    #[serde(default = "default_output")]
    pub output: String,
    /// Write the run's HTML report (`pingfleet report`) beside its result file, as
    /// `pingfleet run --report` does.
    #[serde(default)]
    pub report: bool,
    /// Compressed time: every interval of the run (heartbeats and their bounds,
    /// deadlines, firewall timeouts, the hold and the drain, the gaps between
    /// notifications) is divided by this, so with 60 a 30-minute heartbeat cycle takes
    /// 30 s and `injector.rate` (per real-world second) is sent 60 times as fast;
    /// figures that follow those intervals are reported scaled back to real-world units.
    #[serde(default = "unscaled")]
    pub time_scale: f64,
    #[serde(default)]
    pub server: ServerConfig,
    pub devices: FleetConfig,
    #[serde(default)]
    pub stages: StagesConfig,
    #[serde(default)]
    pub injector: ScheduleConfig,
    /// An EAS server of the user's own to run the fleet against, instead of the
    /// bundled one.
    #[serde(default)]
    pub target: Option<TargetSection>,
    /// A firewall or NAT between the devices and the server.
    #[serde(default)]
    pub firewall: Option<FirewallConfig>,
    /// A real reverse proxy (nginx or HAProxy) before each server partition.
    #[serde(default)]
    pub proxy: Option<crate::proxy::config::ProxyConfig>,
    /// `[networks.NAME]`: network profiles of the scenario's own, beside the shipped
    /// ones (wifi, lte, 3g, gprs), for `devices.network` to name.
    #[serde(default)]
    pub networks: BTreeMap<String, crate::link::profile::NetworkProfile>,
    /// Run the scenario over a grid of heartbeats, idle timeouts and strategies.
    #[serde(default)]
    pub sweep: Option<sweep::SweepSection>,
    /// `[capacity]`: a stepped search of how many devices the server holds.
    #[serde(default)]
    pub capacity: Option<capacity::CapacitySection>,
    /// `[[variants]]`: the scenario run once per variant, side by side.
    #[serde(default)]
    pub variants: Vec<variants::Variant>,
    /// How `pingfleet compare` judges runs of this scenario.
    #[serde(default)]
    pub compare: Option<compare::Tolerances>,
    /// Metric name to conditions.
    #[serde(default)]
    pub thresholds: BTreeMap<Metric, Vec<ConditionText>>,
}

fn unscaled() -> f64 {
    1.0
}

fn default_seed() -> u64 {
    1
}

fn default_output() -> String {
    "results".into()
}

/// A scenario that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("cannot read scenario {}: {err}", path.display()))?;
        Ok(Self::parse(&text, &path.display().to_string())?)
    }

    /// Parses and checks scenario text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ScenarioError> {
        let scenario = Self::parse_unchecked(text, file)?;
        scenario
            .check()
            .map_err(|err| err.place().error_in(text, file, err.to_string()))?;
        Ok(scenario)
    }

    /// Parses scenario text without the checks the types cannot make (overrides are
    /// applied before those).
    pub(crate) fn parse_unchecked(text: &str, file: &str) -> Result<Self, ScenarioError> {
        toml::from_str(text).map_err(|err| {
            let offset = err.span().map_or(0, |span| span.start);
            let message = place::plain_words(text, offset, err.message().trim());
            error_at(text, file, offset, message)
        })
    }
}

/// The least time a device waits past its heartbeat, however compressed the run:
/// below it, a loaded machine's scheduling would pass for a dead connection.
pub const MIN_SCALED_MARGIN: Duration = Duration::from_millis(250);

impl Scenario {
    /// Divides every interval of the run by `time_scale` (see the field). Server
    /// heartbeat bounds stay whole seconds (the Ping carries seconds): the lower rounds
    /// down, the upper up.
    pub fn compress(&mut self) {
        let scale = self.time_scale;
        if scale == 1.0 {
            return;
        }
        let div = |span: &mut Span| span.0 = span.0.div_f64(scale);
        for span in self.devices.intervals_mut() {
            div(span);
        }
        for profile in &mut self.devices.profiles {
            profile.intervals_mut().for_each(div);
        }
        div(&mut self.stages.hold);
        div(&mut self.stages.drain);
        if let Some(firewall) = &mut self.firewall {
            div(&mut firewall.idle_timeout);
            if let Some(flush_at) = &mut firewall.flush_at {
                div(flush_at);
            }
        }
        if let Some(proxy) = &mut self.proxy {
            proxy.compress(scale);
        }
        // The gaps between notifications are intervals too: the rate (per real-world
        // second) goes up by the scale.
        self.injector.rate = (self.injector.rate * scale).min(MAX_RATE_PER_S);
        div(&mut self.injector.burst_window);
        let server = &mut self.server;
        server.min_heartbeat.0 = Duration::from_secs(
            (server.min_heartbeat.0.as_secs_f64() / scale)
                .floor()
                .max(1.0) as u64,
        );
        server.max_heartbeat.0 = Duration::from_secs(
            (server.max_heartbeat.0.as_secs_f64() / scale)
                .ceil()
                .max(1.0) as u64,
        );
    }

    /// The networks the devices name (the fleet's and its kinds'), `none` left out,
    /// in the order first named: the n-th has the n-th network subnet. A network's
    /// delays are the path's, never compressed.
    pub fn networks_in_use(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let named = std::iter::once(&self.devices.network).chain(
            self.devices
                .profiles
                .iter()
                .filter_map(|profile| profile.network.as_ref()),
        );
        for name in named {
            if name != crate::fleet::config::NO_NETWORK && !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// The profile of network `name`: the scenario's own, else a shipped one.
    pub fn network_profile(&self, name: &str) -> Option<crate::link::profile::NetworkProfile> {
        self.networks
            .get(name)
            .cloned()
            .or_else(|| crate::link::profile::NetworkProfile::shipped(name))
    }

    /// A device's read margin (5 s in real time) in this run's time, never shorter
    /// than the slowest emulated network needs for a Ping's answer to cross it with one
    /// lost segment resent (two round trips and a second): a compressed run must not
    /// take the network's own delays for a dead connection.
    pub fn read_margin(&self) -> Duration {
        let slowest_network = self
            .networks_in_use()
            .iter()
            .filter_map(|name| self.network_profile(name))
            .map(|profile| profile.round_trip() * 2 + Duration::from_secs(1))
            .max()
            .unwrap_or_default();
        Duration::from_secs(5)
            .div_f64(self.time_scale)
            .max(MIN_SCALED_MARGIN)
            .max(slowest_network)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::injector::PatternKind;
    use crate::server::state::Engine;

    const MINIMAL: &str = "name = \"t\"\n[devices]\ncount = 10\n";

    #[test]
    fn defaults_fill_what_is_left_out() {
        let scenario = Scenario::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(scenario.seed, 1);
        assert_eq!(scenario.server.engine, Engine::Lean);
        assert_eq!(scenario.server.partitions, ProcessCount::Auto);
        assert_eq!(scenario.devices.workers, ProcessCount::Auto);
        assert_eq!(scenario.devices.heartbeat.0, Duration::from_secs(480));
        // One default for a scenario and `pingfleet devices`: Poisson, 10/s.
        assert_eq!(scenario.injector.pattern, PatternKind::Poisson);
        assert_eq!(scenario.injector.rate, 10.0);
        assert!(scenario.thresholds.is_empty());
    }

    #[test]
    fn errors_name_file_line_and_what_is_valid() {
        let unknown = "name = \"t\"\n[devices]\ncount = 10\ncolour = \"red\"\n";
        let err = Scenario::parse(unknown, "s.toml").unwrap_err();
        assert_eq!((err.file.as_str(), err.line), ("s.toml", 4), "{err}");
        assert!(err.message.contains("colour"), "{err}");
        let bad_engine = "name = \"t\"\n[server]\nengine = \"nginx\"\n[devices]\ncount = 1\n";
        let err = Scenario::parse(bad_engine, "s.toml").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(
            err.message.contains("lean") && err.message.contains("hyper"),
            "{err}"
        );
        let bad_threshold =
            "name = \"t\"\n[devices]\ncount = 1\n[thresholds]\nwakeup_latency = [\"p(99)<<1ms\"]\n";
        let err = Scenario::parse(bad_threshold, "s.toml").unwrap_err();
        assert_eq!(err.line, 5, "{err}");
        let bad_metric =
            "name = \"t\"\n[devices]\ncount = 1\n[thresholds]\nlatency = [\"p(99)<1ms\"]\n";
        let err = Scenario::parse(bad_metric, "s.toml").unwrap_err();
        assert!(err.message.contains("wakeup_latency"), "{err}");
        let bad_span = "name = \"t\"\n[devices]\ncount = 1\nheartbeat = \"soon\"\n";
        assert_eq!(Scenario::parse(bad_span, "s.toml").unwrap_err().line, 4);
        let zero = "name = \"t\"\n[devices]\n  count = 0\n";
        let err = Scenario::parse(zero, "s.toml").unwrap_err();
        assert_eq!((err.line, err.column), (3, 3), "{err}");
        let mix = "name = \"t\"\n[devices]\ncount = 1\n[[devices.profiles]]\nname = \"a\"\n\
                   [[devices.profiles]]\nname = \"b\"\nheartbeat = \"2h\"\n";
        let err = Scenario::parse(mix, "s.toml").unwrap_err();
        assert_eq!(err.line, 6, "{err}");
        assert!(err.message.contains("profile \"b\": heartbeat 2h"), "{err}");
        let unknown_in_mix =
            "name = \"t\"\n[devices]\ncount = 1\n[[devices.profiles]]\nname = \"a\"\nkind = 1\n";
        let err = Scenario::parse(unknown_in_mix, "s.toml").unwrap_err();
        assert!(err.message.contains("kind"), "{err}");
        let absurd = "name = \"t\"\n[devices]\ncount = 1\n[injector]\nrate = 1e12\n";
        let err = Scenario::parse(absurd, "s.toml").unwrap_err();
        assert_eq!(err.line, 5, "{err}");
        let nonsense =
            "name = \"t\"\n[devices]\ncount = 1\n[thresholds]\nlost_notifications = [\"p(99)<1ms\"]\n";
        let err = Scenario::parse(nonsense, "s.toml").unwrap_err();
        assert_eq!(err.line, 5, "{err}");
        assert!(err.message.contains("cannot judge this metric"), "{err}");
        let outside = "name = \"t\"\n[devices]\ncount = 1\nheartbeat = \"2h\"\n";
        assert!(Scenario::parse(outside, "s.toml")
            .unwrap_err()
            .message
            .contains("bounds"));
    }

    #[test]
    fn a_target_runs_no_bundled_server_and_needs_a_way_to_inject() {
        let target = |extra: &str| {
            format!(
                "name = \"t\"\n{extra}[devices]\ncount = 4\nheartbeat = \"30m\"\n[target]\nurl = \"http://127.0.0.1:9\"\n"
            )
        };
        let quiet = target("[injector]\nrate = 0\n");
        let scenario = Scenario::parse(&quiet, "s.toml").unwrap();
        assert_eq!(scenario.target.unwrap().url, "http://127.0.0.1:9");
        // Heartbeats are the external server's business (it answers Status 5).
        assert_eq!(scenario.devices.heartbeat.0, Duration::from_secs(1800));
        let err = Scenario::parse(&target(""), "s.toml").unwrap_err();
        assert!(
            err.message.contains("injector.rate needs target.inject"),
            "{err}"
        );
        let err = Scenario::parse(
            &target("[server]\ntls = true\n[injector]\nrate = 0\n"),
            "s.toml",
        )
        .unwrap_err();
        assert!(err.message.contains("remove its [server] table"), "{err}");
        let bad_inject = format!("{quiet}inject = [\"pop3://x:110\"]\n");
        let err = Scenario::parse(&bad_inject, "s.toml").unwrap_err();
        assert!(
            err.message.contains("target.--inject \"pop3://x:110\""),
            "{err}"
        );
        assert_eq!(err.line, 9, "{err}");
        let https = quiet.replace("http://", "https://");
        let err = Scenario::parse(&https, "s.toml").unwrap_err();
        assert!(err.message.contains("target.ca"), "{err}");
        let both = format!("{quiet}server_pid = [1]\nserver_cgroup = \"x\"\n");
        assert!(Scenario::parse(&both, "s.toml").is_err());
        let prefix = quiet.replace("count = 4\n", "count = 4\ndevice_id_prefix = \"lab-1\"\n");
        let err = Scenario::parse(&prefix, "s.toml").unwrap_err();
        assert_eq!(err.line, 6, "{err}");
    }

    #[test]
    fn compressed_time_divides_every_interval() {
        let text = "name = \"t\"\ntime_scale = 60\n[server]\nmin_heartbeat = \"90s\"\n[devices]\ncount = 4\nheartbeat = \"15m\"\nheartbeat_strategy = \"adaptive\"\n[[devices.profiles]]\nname = \"a\"\nheartbeat = \"30m\"\n[stages]\nhold = \"1h\"\n[firewall]\nmode = \"proxy\"\nidle_timeout = \"10m\"\n";
        let mut scenario = Scenario::parse(text, "s.toml").unwrap();
        scenario.compress();
        assert_eq!(scenario.devices.heartbeat.0, Duration::from_secs(15));
        assert_eq!(scenario.devices.heartbeat_min.0, Duration::from_secs(8));
        assert_eq!(scenario.devices.heartbeat_max.0, Duration::from_secs(59));
        assert_eq!(
            scenario.devices.profiles[0].heartbeat,
            Some(Span::from_secs(30))
        );
        assert_eq!(scenario.stages.hold.0, Duration::from_secs(60));
        assert_eq!(
            scenario.firewall.as_ref().unwrap().idle_timeout.0,
            Duration::from_secs(10)
        );
        // Whole seconds on the server: 90 s / 60 rounds down to 1 s, 3540 s to 59 s.
        assert_eq!(scenario.server.min_heartbeat.0, Duration::from_secs(1));
        assert_eq!(scenario.server.max_heartbeat.0, Duration::from_secs(59));
        assert_eq!(scenario.read_margin(), MIN_SCALED_MARGIN);
        // Over GPRS (a 600 ms round trip) the margin is two round trips and a second.
        scenario.devices.network = "gprs".to_owned();
        assert_eq!(scenario.read_margin(), Duration::from_millis(2200));
        let sweep = "name = \"t\"\n[devices]\ncount = 4\n[firewall]\nmode = \"proxy\"\nidle_timeout = \"10m\"\n[sweep]\nheartbeat = [\"8m\"]\nidle_timeout = [\"5m\"]\n[thresholds]\nlost_notifications = [\"count==0\"]\n";
        let err = Scenario::parse(sweep, "s.toml").unwrap_err();
        assert!(err.message.contains("judges no [thresholds]"), "{err}");
        let bad = text.replace("time_scale = 60", "time_scale = 0.5");
        assert!(Scenario::parse(&bad, "s.toml")
            .unwrap_err()
            .message
            .contains("time_scale"));
    }

    #[test]
    fn every_shipped_scenario_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                Scenario::load(&path).unwrap_or_else(|err| panic!("{err:#}"));
                checked += 1;
            }
        }
        assert!(checked >= 2, "scenarios/ should ship default and smoke");
        let default =
            Scenario::parse(catalog::shipped("default").unwrap().text, "default").unwrap();
        assert!(default.devices.count >= 20_000);
        assert!(default.server.tls);
    }
}
