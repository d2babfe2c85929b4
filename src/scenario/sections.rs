//! The tables of a scenario besides `[devices]` (the fleet's own config): the bundled
//! server, the stages, the injector's schedule, an external target, a firewall.

use serde::Deserialize;

use crate::fleet::injector::PatternKind;
use std::time::Duration;

use crate::units::{Share, Span};

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
