//! The firewall's settings, defined once: `[firewall]` in a scenario (serde) and the
//! matching flags of `pingfleet firewall` (clap, flattened into its flags), with one
//! check for both.

use super::proxy::IdleAction;
use crate::setting::ConfigError;
use crate::units::{Share, Span};

/// Where the firewall is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum FirewallMode {
    /// The userspace middlebox on loopback (no root needed).
    #[default]
    Proxy,
    /// The kernel's own: network namespaces, nftables and conntrack (needs root).
    Netns,
}

/// A firewall or NAT between devices and server, and what its idle timeout does.
/// `[firewall]` in a scenario (one middlebox per server partition); the flags of the
/// same names on `pingfleet firewall`.
///
/// ```toml
/// [firewall]
/// mode = "proxy"
/// idle_timeout = "10m"
/// action = "silent"      # rst, silent or half
/// jitter = "5%"          # each flow's timeout within +-5%
/// flow_table = 50000     # LRU eviction beyond
/// ```
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FirewallConfig {
    /// The userspace middlebox (`proxy`) or the kernel's own (`netns`, root). A
    /// scenario's setting; `pingfleet firewall` is the middlebox.
    #[arg(skip)]
    pub mode: FirewallMode,
    /// How long a flow may be idle (no byte either way) before the action, e.g. 10m.
    #[arg(long, value_name = "DURATION", required = true)]
    pub idle_timeout: Span,
    /// What happens to an idle flow: rst (reset both sides), silent (forward nothing,
    /// keep both sockets: a carrier NAT's black hole), half (drop only server-to-device).
    #[arg(long, value_enum, default_value_t = IdleAction::Silent)]
    pub action: IdleAction,
    /// Each flow's timeout is the idle timeout plus or minus up to this share of it,
    /// e.g. 5%.
    #[arg(long, value_name = "PERCENT", default_value_t = Share::default())]
    pub jitter: Share,
    /// Most flows at once; a new one evicts the least recently active (with the
    /// action), as a CGNAT out of mappings does. Unbounded when not given.
    #[arg(long, value_name = "N")]
    pub flow_table: Option<usize>,
    /// Flush every flow at once this long into the hold (a NAT that restarts: a
    /// reconnect storm), and time each device until it pings again on a new
    /// connection. A scenario's setting; `pingfleet firewall` flushes on SIGUSR1.
    #[arg(skip)]
    pub flush_at: Option<Span>,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        Self {
            mode: FirewallMode::Proxy,
            idle_timeout: Span::default(),
            action: IdleAction::Silent,
            jitter: Share::default(),
            flow_table: None,
            flush_at: None,
        }
    }
}

impl FirewallConfig {
    /// Every check of the firewall's own settings (a scenario adds the flush within
    /// its hold).
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.idle_timeout.0.is_zero() {
            return Err(ConfigError::new(
                "idle_timeout",
                "firewall.idle_timeout must be longer than 0s",
            ));
        }
        if self.mode == FirewallMode::Netns
            && (self.action != IdleAction::Silent
                || self.jitter.fraction() > 0.0
                || self.flow_table.is_some())
        {
            return Err(ConfigError::new(
                "mode",
                "firewall mode netns drops idle flows silently (conntrack): action, jitter \
                 and flow_table are for mode proxy",
            ));
        }
        if !(0.0..1.0).contains(&self.jitter.fraction()) {
            return Err(ConfigError::new(
                "jitter",
                format!(
                    "firewall.jitter is a share from 0% to below 100% (got {})",
                    self.jitter
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags alone, parsed as `pingfleet firewall` parses them.
    fn flags(argv: &[&str]) -> Result<FirewallConfig, clap::Error> {
        crate::argv::parse_flags(argv)
    }

    #[test]
    fn a_file_and_the_flags_read_alike() {
        let from_file: FirewallConfig =
            toml::from_str("idle_timeout = \"10m\"\naction = \"rst\"\njitter = \"5%\"\n").unwrap();
        let from_flags =
            flags(&["--idle-timeout", "10m", "--action", "rst", "--jitter", "5%"]).unwrap();
        assert_eq!(from_file, from_flags);
        assert!(flags(&[]).is_err(), "the idle timeout is required");
    }

    #[test]
    fn one_check_for_both() {
        let netns = FirewallConfig {
            mode: FirewallMode::Netns,
            idle_timeout: Span::from_secs(600),
            action: IdleAction::Rst,
            ..FirewallConfig::default()
        };
        assert_eq!(netns.check().unwrap_err().key, "mode");
        let wide = FirewallConfig {
            idle_timeout: Span::from_secs(600),
            jitter: "150%".parse().unwrap(),
            ..FirewallConfig::default()
        };
        assert!(wide
            .check()
            .unwrap_err()
            .for_flag()
            .starts_with("--jitter: "));
        assert_eq!(
            FirewallConfig::default().check().unwrap_err().key,
            "idle_timeout"
        );
    }
}
