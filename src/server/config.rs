//! The bundled server's settings, defined once: `[server]` in a scenario (serde) and the
//! matching flags of `pingfleet serve` (clap, flattened into its flags), with their
//! defaults as constants and one check for both.

use super::state::Engine;
use crate::eas::request::ACTIVESYNC_PATH;
use crate::partition::ProcessCount;
use crate::setting::ConfigError;
use crate::units::Span;

/// The shortest heartbeat a Ping may ask for when nothing says otherwise (Exchange's).
pub(crate) const DEFAULT_MIN_HEARTBEAT: Span = Span::from_secs(60);
/// The longest heartbeat a Ping may ask for when nothing says otherwise (59 minutes).
pub(crate) const DEFAULT_MAX_HEARTBEAT: Span = Span::from_secs(3540);

/// The bundled server. `[server]` in a scenario; the flags of the same names on
/// `pingfleet serve`.
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Connection engine: lean (its own HTTP/1.1; a parked connection holds no buffer)
    /// or hyper (stock hyper and tokio-rustls, as most servers are built).
    #[arg(long, value_enum, default_value_t = Engine::Lean)]
    pub engine: Engine,
    /// Serve HTTPS. Without --cert/--key a self-signed ECDSA P-256 certificate for
    /// localhost, 127.0.0.1-32 and the listen addresses is made at start-up and
    /// written to --cert-out.
    #[arg(long)]
    pub tls: bool,
    /// Server partitions of a run: "auto" (one per 18,000 devices) or a number. A
    /// scenario's setting; one `pingfleet serve` is one partition (--partition).
    #[arg(skip)]
    pub partitions: ProcessCount,
    /// Smallest heartbeat a Ping may ask for (lower ones get Status 5), whole seconds:
    /// 60, 60s or 1m.
    #[arg(long, value_name = "DURATION", default_value_t = DEFAULT_MIN_HEARTBEAT)]
    pub min_heartbeat: Span,
    /// Largest heartbeat a Ping may ask for (higher ones get Status 5), whole seconds.
    #[arg(long, value_name = "DURATION", default_value_t = DEFAULT_MAX_HEARTBEAT)]
    pub max_heartbeat: Span,
    /// The path EAS is served under, as a server behind a prefix or a proxy has it
    /// (SOGo's: /SOGo/Microsoft-Server-ActiveSync); a POST elsewhere is 404.
    #[arg(long, value_name = "PATH", default_value = ACTIVESYNC_PATH)]
    pub path: String,
    /// Run the same fleet against the lean engine, then hyper, and compare. A
    /// scenario's setting.
    #[arg(skip)]
    pub compare_engines: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            engine: Engine::Lean,
            tls: false,
            partitions: ProcessCount::Auto,
            min_heartbeat: DEFAULT_MIN_HEARTBEAT,
            max_heartbeat: DEFAULT_MAX_HEARTBEAT,
            path: ACTIVESYNC_PATH.to_owned(),
            compare_engines: false,
        }
    }
}

impl ServerConfig {
    /// Every check of the server's own settings.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.partitions == ProcessCount::Count(0) {
            return Err(ConfigError::new(
                "partitions",
                "partitions must be \"auto\" or at least 1",
            ));
        }
        for (key, bound) in [
            ("min_heartbeat", self.min_heartbeat),
            ("max_heartbeat", self.max_heartbeat),
        ] {
            if bound.0.subsec_nanos() != 0 || bound.0.is_zero() || bound.0.as_secs() > 86_400 {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "server.{key} must be a whole number of seconds from 1s to a day (a \
                         Ping's heartbeat is whole seconds), got {bound}"
                    ),
                ));
            }
        }
        let printable = |byte: u8| byte > b' ' && byte < 0x7f && !b"?#%".contains(&byte);
        if !self.path.starts_with('/') || self.path.len() > 256 || !self.path.bytes().all(printable)
        {
            return Err(ConfigError::new(
                "path",
                format!(
                    "server.path must start with / and be up to 256 printable characters \
                     without spaces, ? # or %, got {:?}",
                    self.path
                ),
            ));
        }
        if self.min_heartbeat > self.max_heartbeat {
            return Err(ConfigError::new(
                "min_heartbeat",
                format!(
                    "server.min_heartbeat {} is above server.max_heartbeat {}",
                    self.min_heartbeat, self.max_heartbeat
                ),
            ));
        }
        Ok(())
    }

    /// The heartbeat bounds in whole seconds, as a Ping carries them (checked by
    /// [`ServerConfig::check`]).
    pub fn heartbeat_bounds_s(&self) -> (u32, u32) {
        let seconds = |bound: Span| u32::try_from(bound.0.as_secs()).unwrap_or(u32::MAX);
        (seconds(self.min_heartbeat), seconds(self.max_heartbeat))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags alone, parsed as `pingfleet serve` parses them.
    fn flags(argv: &[&str]) -> Result<ServerConfig, clap::Error> {
        crate::argv::parse_flags(argv)
    }

    #[test]
    fn a_file_and_the_flags_default_and_read_alike() {
        let from_file: ServerConfig = toml::from_str("").unwrap();
        assert_eq!(from_file, ServerConfig::default());
        assert_eq!(flags(&[]).unwrap(), ServerConfig::default());
        let from_file: ServerConfig =
            toml::from_str("engine = \"hyper\"\ntls = true\nmin_heartbeat = \"1s\"\n").unwrap();
        let from_flags = flags(&["--engine", "hyper", "--tls", "--min-heartbeat", "1"]).unwrap();
        assert_eq!(from_file, from_flags);
        assert_eq!(from_file.heartbeat_bounds_s(), (1, 3540));
    }

    #[test]
    fn bounds_are_whole_seconds_in_order() {
        let fractional = ServerConfig {
            min_heartbeat: "1500ms".parse().unwrap(),
            ..ServerConfig::default()
        };
        let err = fractional.check().unwrap_err();
        assert_eq!(err.for_flag().split(':').next(), Some("--min-heartbeat"));
        let upside_down = ServerConfig {
            min_heartbeat: Span::from_secs(600),
            max_heartbeat: Span::from_secs(60),
            ..ServerConfig::default()
        };
        assert!(upside_down.check().unwrap_err().message.contains("above"));
        for bad in ["SOGo", "/a b", "/a?b", ""] {
            let config = ServerConfig {
                path: bad.into(),
                ..ServerConfig::default()
            };
            assert_eq!(config.check().unwrap_err().key, "path", "{bad:?}");
        }
        let sogo = flags(&["--path", "/SOGo/Microsoft-Server-ActiveSync"]).unwrap();
        assert_eq!(sogo.check(), Ok(()));
        assert!(ServerConfig::default().check().is_ok());
    }
}
