//! Scenario files (TOML): what a `pingfleet run` does, parsed strictly (unknown keys are
//! errors) with errors that name the file, the line and what would be valid.
//!
//! Layout: this file holds the file format and its checks; [`catalog`] the scenarios
//! built into the binary; [`resolve`] turns a file and
//! the command line's overrides into the one validated plan a run takes everything
//! from; [`threshold`] is the language of `[thresholds]`; [`sweep`] the grid of
//! `[sweep]`; [`compare`] how `pingfleet compare` judges its runs (`[compare]`);
//! [`estimate`] how long a plan should take.
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

use serde::de::Error as _;
use serde::Deserialize;

use crate::firewall::proxy::IdleAction;
use crate::fleet::config::FleetConfig;
pub use crate::fleet::config::ProcessCount;
use crate::fleet::injector::{PatternKind, MAX_RATE_PER_S};
use crate::server::state::Engine;
use crate::units::Share;
pub use crate::units::Span;
use threshold::{Condition, MetricKind};

pub mod catalog;
pub mod compare;
pub mod estimate;
pub mod resolve;
pub mod sweep;
pub mod threshold;

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
    /// Compressed time: every interval of the run (heartbeats and their bounds,
    /// deadlines, firewall timeouts, the hold and the drain, the gaps between
    /// notifications) is divided by this, so with 60 a 30-minute heartbeat cycle takes
    /// 30 s and `injector.rate` (per real-world second) is sent 60 times as fast;
    /// figures that follow those intervals are reported scaled back to real-world units.
    #[serde(default = "unscaled")]
    pub time_scale: f64,
    #[serde(default)]
    pub server: ServerSection,
    pub devices: FleetConfig,
    #[serde(default)]
    pub stages: StagesSection,
    #[serde(default)]
    pub injector: InjectorSection,
    /// An EAS server of the user's own to run the fleet against, instead of the
    /// bundled one.
    #[serde(default)]
    pub target: Option<TargetSection>,
    /// A firewall or NAT between the devices and the server.
    #[serde(default)]
    pub firewall: Option<FirewallSection>,
    /// Run the scenario over a grid of heartbeats, idle timeouts and strategies.
    #[serde(default)]
    pub sweep: Option<sweep::SweepSection>,
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

/// An external EAS server (Z-Push, Exchange, ...): where it is, who the devices are,
/// how changes reach it, and what of its memory the run may read.
///
/// ```toml
/// [target]
/// url = "https://eas.example.test"
/// credentials = "users.txt"               # user:password[:address] lines
/// inject = ["imap://127.0.0.1:143"]       # as `pingfleet devices --inject`
/// ca = "eas-ca.pem"                       # or insecure = true
/// server_pid = 1234                       # or server_cgroup = "system.slice/php-fpm.service"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    pub url: String,
    #[serde(default)]
    pub credentials: Option<String>,
    #[serde(default)]
    pub inject: Vec<String>,
    #[serde(default)]
    pub ca: Option<String>,
    #[serde(default)]
    pub insecure: bool,
    /// Read the server's memory from these processes' RSS (a process and its
    /// children are not summed: name each that holds connections).
    #[serde(default)]
    pub server_pid: Vec<u32>,
    /// Read the server's memory from this cgroup's `memory.current` (a path under
    /// `/sys/fs/cgroup`, or absolute).
    #[serde(default)]
    pub server_cgroup: Option<String>,
}

/// A middlebox between devices and server (`pingfleet firewall`, one process per
/// server partition), and what its idle timeout does.
///
/// ```toml
/// [firewall]
/// mode = "proxy"
/// idle_timeout = "10m"
/// action = "silent"      # rst, silent or half
/// jitter = "5%"          # each flow's timeout within +-5%
/// flow_table = 50000     # LRU eviction beyond
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallSection {
    pub mode: FirewallMode,
    pub idle_timeout: Span,
    #[serde(default = "silent")]
    pub action: IdleAction,
    #[serde(default)]
    pub jitter: Share,
    #[serde(default)]
    pub flow_table: Option<usize>,
    /// Flush every flow at once this long into the hold (a NAT that restarts: a
    /// reconnect storm), and time each device until it pings again on a new connection.
    #[serde(default)]
    pub flush_at: Option<Span>,
}

/// Where the firewall is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum FirewallMode {
    /// The userspace middlebox on loopback (no root needed).
    Proxy,
    /// The kernel's own: network namespaces, nftables and conntrack (needs root).
    Netns,
}

fn silent() -> IdleAction {
    IdleAction::Silent
}

/// The bundled server's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    #[serde(default = "default_engine")]
    pub engine: Engine,
    #[serde(default)]
    pub tls: bool,
    /// Server processes: `"auto"` (from the device count and the open-file limit) or a
    /// number.
    #[serde(default)]
    pub partitions: ProcessCount,
    #[serde(default = "one_second")]
    pub min_heartbeat: Span,
    #[serde(default = "max_heartbeat")]
    pub max_heartbeat: Span,
    /// Run the same fleet against the lean engine, then the hyper engine, and compare.
    #[serde(default)]
    pub compare_engines: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            engine: default_engine(),
            tls: false,
            partitions: ProcessCount::Auto,
            min_heartbeat: one_second(),
            max_heartbeat: max_heartbeat(),
            compare_engines: false,
        }
    }
}

fn default_engine() -> Engine {
    Engine::Lean
}

fn one_second() -> Span {
    Span(Duration::from_secs(1))
}

fn max_heartbeat() -> Span {
    Span(Duration::from_secs(3540))
}

/// Phase lengths.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagesSection {
    #[serde(default = "default_ramp_timeout")]
    pub ramp_timeout: Span,
    #[serde(default = "default_hold")]
    pub hold: Span,
    #[serde(default = "default_drain")]
    pub drain: Span,
    /// The churn stage, during the hold: this fraction of the devices loses its
    /// connection each minute and reconnects (0 = none).
    #[serde(default)]
    pub churn_per_minute: Share,
}

impl Default for StagesSection {
    fn default() -> Self {
        Self {
            ramp_timeout: default_ramp_timeout(),
            hold: default_hold(),
            drain: default_drain(),
            churn_per_minute: Share::default(),
        }
    }
}

fn default_ramp_timeout() -> Span {
    Span(Duration::from_secs(120))
}

fn default_hold() -> Span {
    Span(Duration::from_secs(30))
}

fn default_drain() -> Span {
    Span(Duration::from_secs(10))
}

/// The notification schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectorSection {
    #[serde(default = "default_pattern")]
    pub pattern: PatternKind,
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// `burst`: the share of the devices notified, e.g. "50%".
    #[serde(default = "default_burst_share")]
    pub burst_share: Share,
    #[serde(default = "default_burst_window")]
    pub burst_window: Span,
}

impl Default for InjectorSection {
    fn default() -> Self {
        Self {
            pattern: default_pattern(),
            rate: default_rate(),
            burst_share: default_burst_share(),
            burst_window: default_burst_window(),
        }
    }
}

fn default_pattern() -> PatternKind {
    PatternKind::Poisson
}

fn default_rate() -> f64 {
    100.0
}

fn default_burst_share() -> Share {
    Share::of_fraction(0.10)
}

fn default_burst_window() -> Span {
    Span(Duration::from_millis(100))
}

/// Metrics thresholds can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    WakeupLatency,
    MailOnDeviceLatency,
    InjectorLag,
    EventLoopLag,
    LostNotifications,
    Errors,
    ServerBytesPerParked,
    DeviceBytesPerParked,
}

impl Metric {
    /// What the metric is, and so which conditions can judge it.
    pub fn kind(self) -> MetricKind {
        match self {
            Self::WakeupLatency
            | Self::MailOnDeviceLatency
            | Self::InjectorLag
            | Self::EventLoopLag => MetricKind::Latency,
            Self::LostNotifications => MetricKind::CountOrRate,
            Self::Errors => MetricKind::Count,
            Self::ServerBytesPerParked | Self::DeviceBytesPerParked => MetricKind::Bytes,
        }
    }

    /// An observed value of this metric with its unit: latencies in `us`/`ms`/`s`,
    /// sizes in `B`/`KiB`, rates in `%`, counts as whole numbers.
    pub fn show(self, aggregate: threshold::Aggregate, value: f64) -> String {
        use threshold::Aggregate;
        match (self.kind(), aggregate) {
            (_, Aggregate::Count) => format!("{value:.0}"),
            (_, Aggregate::Rate) => format!("{}", crate::units::Share::of_fraction(value)),
            (MetricKind::Latency, _) => crate::units::micros(value),
            (MetricKind::Bytes, _) => crate::units::bytes(value),
            _ => format!("{value:.0}"),
        }
    }

    /// The name as scenario files write it.
    pub fn name(self) -> &'static str {
        match self {
            Self::WakeupLatency => "wakeup_latency",
            Self::MailOnDeviceLatency => "mail_on_device_latency",
            Self::InjectorLag => "injector_lag",
            Self::EventLoopLag => "event_loop_lag",
            Self::LostNotifications => "lost_notifications",
            Self::Errors => "errors",
            Self::ServerBytesPerParked => "server_bytes_per_parked",
            Self::DeviceBytesPerParked => "device_bytes_per_parked",
        }
    }
}

/// A threshold condition, checked when the file is read.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionText(pub Condition);

impl<'de> Deserialize<'de> for ConditionText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Condition::parse(&text)
            .map(ConditionText)
            .map_err(|err| D::Error::custom(err.to_string()))
    }
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
            .map_err(|(place, message)| place.error_in(text, file, message))?;
        Ok(scenario)
    }

    /// Parses scenario text without the checks the types cannot make (overrides are
    /// applied before those).
    pub(crate) fn parse_unchecked(text: &str, file: &str) -> Result<Self, ScenarioError> {
        toml::from_str(text).map_err(|err| {
            let offset = err.span().map_or(0, |span| span.start);
            error_at(text, file, offset, err.message().trim().to_owned())
        })
    }

    /// Checks what the types cannot: returns where to point and the message.
    pub(crate) fn check(&self) -> Result<(), (Place, String)> {
        self.check_fields()
            .map_err(|(key, message)| (Place::Key(key), message))?;
        for (index, profile) in self.devices.profiles.iter().enumerate() {
            let heartbeat = profile.heartbeat.unwrap_or(self.devices.heartbeat.0);
            let problem = profile.problem().or_else(|| {
                self.heartbeat_outside_bounds(heartbeat)
                    .map(|message| format!("profile {:?}: {message}", profile.name))
            });
            if let Some(message) = problem {
                return Err((Place::Profile(index), message));
            }
        }
        for (metric, conditions) in &self.thresholds {
            if let Some(message) = conditions
                .iter()
                .find_map(|condition| condition.0.misfit(metric.kind()))
            {
                let message = format!("thresholds.{}: {message}", metric.name());
                return Err((Place::Key(metric.name()), message));
            }
        }
        Ok(())
    }

    /// Why a heartbeat is outside the bundled server's bounds, if it is (an external
    /// server's bounds are its own: it answers Status 5 and the device adapts).
    fn heartbeat_outside_bounds(&self, heartbeat: Duration) -> Option<String> {
        if self.target.is_some() {
            return None;
        }
        let (min, max) = (self.server.min_heartbeat.0, self.server.max_heartbeat.0);
        (heartbeat < min || heartbeat > max).then(|| {
            format!(
                "heartbeat {} is outside the server's bounds {}..{}",
                humantime::format_duration(heartbeat),
                humantime::format_duration(min),
                humantime::format_duration(max)
            )
        })
    }

    /// Checks of a `[target]` table: returns the key to point at and the message.
    fn check_target(&self, target: &TargetSection) -> Result<(), (&'static str, String)> {
        if self.server != ServerSection::default() {
            return Err((
                "url",
                "a scenario with [target] runs no bundled server: remove its [server] table".into(),
            ));
        }
        crate::fleet::target::Target::parse(&target.url)
            .map_err(|err| ("url", format!("target.url: {err}")))?;
        for url in &target.inject {
            crate::fleet::sink::check_inject_url(url)
                .map_err(|err| ("inject", format!("target.{err}")))?;
        }
        if self.injector.rate > 0.0 && target.inject.is_empty() {
            return Err((
                "rate",
                "injector.rate needs target.inject: an external server learns of changes only from \
                 its mail store (or set injector.rate = 0 to measure parking alone)"
                    .into(),
            ));
        }
        if target.url.starts_with("https") && target.ca.is_none() && !target.insecure {
            return Err((
                "url",
                "an https target needs target.ca (its certificate's issuer) or insecure = true"
                    .into(),
            ));
        }
        if !target.server_pid.is_empty() && target.server_cgroup.is_some() {
            return Err((
                "server_pid",
                "give target.server_pid or target.server_cgroup, not both".into(),
            ));
        }
        Ok(())
    }

    /// Checks of single keys: returns the key to point at and the message.
    fn check_fields(&self) -> Result<(), (&'static str, String)> {
        if !(1.0..=3600.0).contains(&self.time_scale) {
            return Err((
                "time_scale",
                "time_scale must be 1 (real time) to 3600".into(),
            ));
        }
        if let Some(target) = &self.target {
            self.check_target(target)?;
        }
        if let Some(problem) = self.compare.as_ref().and_then(|c| c.problem()) {
            return Err(("alpha", problem));
        }
        if let Some(sweep) = &self.sweep {
            if let Some(problem) = sweep.problem() {
                return Err(("heartbeat_strategy", problem));
            }
            if !self.thresholds.is_empty() {
                return Err((
                    "heartbeat_strategy",
                    "a [sweep] judges no [thresholds]: each cell is read from the grid (remove them)"
                        .into(),
                ));
            }
            if self.firewall.is_none() || self.server.compare_engines {
                return Err((
                    "idle_timeout",
                    "a [sweep] needs a [firewall] (its idle_timeout is swept) and one engine"
                        .into(),
                ));
            }
        }
        if let Some(firewall) = &self.firewall {
            if firewall.idle_timeout.0.is_zero() {
                return Err((
                    "idle_timeout",
                    "firewall.idle_timeout must be longer than 0s".into(),
                ));
            }
            if firewall.mode == FirewallMode::Netns
                && (firewall.action != IdleAction::Silent
                    || firewall.jitter.fraction() > 0.0
                    || firewall.flow_table.is_some())
            {
                return Err((
                    "mode",
                    "firewall mode netns drops idle flows silently (conntrack): action, jitter \
                     and flow_table are for mode proxy"
                        .into(),
                ));
            }
            if firewall
                .flush_at
                .is_some_and(|at| at.0 >= self.stages.hold.0)
            {
                return Err((
                    "flush_at",
                    "firewall.flush_at must fall within the hold".into(),
                ));
            }
            if !(0.0..1.0).contains(&firewall.jitter.fraction()) {
                return Err((
                    "jitter",
                    "firewall.jitter is a share from 0% to below 100%".into(),
                ));
            }
            if self.target.is_some() {
                return Err((
                    "idle_timeout",
                    "a [firewall] stands before the bundled server; with a [target], put \
                     `pingfleet firewall` before your server by hand"
                        .into(),
                ));
            }
        }
        self.devices.check().map_err(|err| (err.key, err.message))?;
        if self.server.partitions == ProcessCount::Count(0) {
            return Err((
                "partitions",
                "partitions must be \"auto\" or at least 1".into(),
            ));
        }
        if self.stages.hold.0.is_zero() {
            return Err((
                "hold",
                "stages.hold must be longer than 0s: nothing is measured outside the hold".into(),
            ));
        }
        for (key, bound) in [
            ("min_heartbeat", self.server.min_heartbeat.0),
            ("max_heartbeat", self.server.max_heartbeat.0),
        ] {
            if bound.subsec_nanos() != 0 || bound.is_zero() {
                return Err((
                    key,
                    format!(
                        "server.{key} must be a whole number of seconds from 1s (a Ping's \
                         heartbeat is whole seconds), got {}",
                        humantime::format_duration(bound)
                    ),
                ));
            }
        }
        if let Some(message) = self.heartbeat_outside_bounds(self.devices.heartbeat.0) {
            return Err(("heartbeat", format!("devices.{message}")));
        }
        if !(0.0..=1.0).contains(&self.stages.churn_per_minute.fraction()) {
            return Err((
                "churn_per_minute",
                "stages.churn_per_minute is a share of the devices, 0% to 100%".into(),
            ));
        }
        if !(0.0..=MAX_RATE_PER_S).contains(&self.injector.rate) {
            return Err((
                "rate",
                format!("injector.rate must be 0 to {MAX_RATE_PER_S} notifications per second"),
            ));
        }
        if !(0.0..=1.0).contains(&self.injector.burst_share.fraction()) {
            return Err((
                "burst_share",
                "injector.burst_share must be 0% to 100%".into(),
            ));
        }
        Ok(())
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
        let devices = &mut self.devices;
        for span in [
            &mut devices.heartbeat,
            &mut devices.heartbeat_jitter,
            &mut devices.heartbeat_min,
            &mut devices.heartbeat_max,
            &mut devices.heartbeat_increment,
            &mut self.stages.hold,
            &mut self.stages.drain,
        ] {
            div(span);
        }
        for profile in &mut devices.profiles {
            for duration in [
                &mut profile.heartbeat,
                &mut profile.heartbeat_jitter,
                &mut profile.heartbeat_min,
                &mut profile.heartbeat_max,
                &mut profile.heartbeat_increment,
            ]
            .into_iter()
            .flatten()
            {
                *duration = duration.div_f64(scale);
            }
        }
        if let Some(firewall) = &mut self.firewall {
            div(&mut firewall.idle_timeout);
            if let Some(flush_at) = &mut firewall.flush_at {
                div(flush_at);
            }
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

    /// A device's read margin (5 s in real time) in this run's time.
    pub fn read_margin(&self) -> Duration {
        Duration::from_secs(5)
            .div_f64(self.time_scale)
            .max(MIN_SCALED_MARGIN)
    }
}

/// Where a semantic error points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// The first line assigning this key.
    Key(&'static str),
    /// The header of the n-th `[[devices.profiles]]` entry.
    Profile(usize),
}

impl Place {
    /// The error at this place of `text`.
    pub(crate) fn error_in(self, text: &str, file: &str, message: String) -> ScenarioError {
        let offset = match self {
            Place::Key(key) => find_key(text, key),
            Place::Profile(index) => find_profile_entry(text, index),
        };
        error_at(text, file, offset.unwrap_or(0), message)
    }
}

/// The error at byte `offset` of `text`, with its line and column.
fn error_at(text: &str, file: &str, offset: usize, message: String) -> ScenarioError {
    let before = &text[..offset.min(text.len())];
    ScenarioError {
        file: file.to_owned(),
        line: before.matches('\n').count() + 1,
        column: before
            .rsplit('\n')
            .next()
            .map_or(0, |last| last.chars().count())
            + 1,
        message,
    }
}

/// The byte offset of the header of the `index`-th `[[devices.profiles]]` entry.
fn find_profile_entry(text: &str, index: usize) -> Option<usize> {
    let mut offset = 0;
    let mut seen = 0;
    for line in text.split_inclusive('\n') {
        let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.starts_with("[[devices.profiles]]") {
            if seen == index {
                return Some(offset);
            }
            seen += 1;
        }
        offset += line.len();
    }
    None
}

/// The byte offset of the first line that assigns `key`.
fn find_key(text: &str, key: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(offset + line.len() - trimmed.len());
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name = \"t\"\n[devices]\ncount = 10\n";

    #[test]
    fn defaults_fill_what_is_left_out() {
        let scenario = Scenario::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(scenario.seed, 1);
        assert_eq!(scenario.server.engine, Engine::Lean);
        assert_eq!(scenario.server.partitions, ProcessCount::Auto);
        assert_eq!(scenario.devices.workers, ProcessCount::Auto);
        assert_eq!(scenario.devices.heartbeat.0, Duration::from_secs(480));
        assert_eq!(scenario.injector.pattern, PatternKind::Poisson);
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
            Some(Duration::from_secs(30))
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
