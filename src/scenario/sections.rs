//! The tables of a scenario besides `[devices]` (the fleet's own config): the bundled
//! server, the stages, the injector's schedule, an external target, a firewall.

use serde::Deserialize;

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
