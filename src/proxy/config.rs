//! `[proxy]`: which reverse proxy stands before each partition, how it treats TLS, and
//! its timeouts and limits under the proxy's own directive names. One home for every
//! directive's value: [`ProxyConfig::directives`] says what each is and where it came
//! from, and both the configuration written for the proxy and the result read it.
//!
//! ```toml
//! [proxy]
//! kind = "nginx"                # or "haproxy"
//! tls = "terminate"             # or "passthrough"
//! proxy_read_timeout = "65m"    # nginx's default is 60s: a parked Ping gets a 504
//! worker_shutdown_timeout = "30s"
//! reload_at = "2m"              # reload the proxy this long into the hold
//! ```

use std::path::PathBuf;
use std::time::Duration;

use crate::setting::ConfigError;
use crate::units::Span;

/// Which reverse proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum ProxyKind {
    Nginx,
    Haproxy,
}

impl ProxyKind {
    /// The program's name, as on the PATH.
    pub fn program(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Haproxy => "haproxy",
        }
    }

    /// The release (major.minor) pingfleet's defaults and findings were checked against:
    /// Debian 12's package.
    pub fn expected_release(self) -> &'static str {
        match self {
            Self::Nginx => "1.22",
            Self::Haproxy => "2.6",
        }
    }

    /// The product's name as people write it.
    pub fn title(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Haproxy => "HAProxy",
        }
    }
}

impl std::fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.program())
    }
}

/// Where TLS ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum ProxyTls {
    /// The proxy holds the certificate: devices speak TLS to it, it speaks plain HTTP
    /// to the server (and its HTTP timeouts apply to each request).
    #[default]
    Terminate,
    /// The proxy forwards the TLS bytes (nginx's `stream`, HAProxy's `mode tcp`): the
    /// server holds the certificate, and only the proxy's idle timeouts apply.
    Passthrough,
}

/// A reverse proxy before each server partition.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    pub kind: Option<ProxyKind>,
    #[serde(default)]
    pub tls: ProxyTls,
    /// The program; `nginx` or `haproxy` on the PATH when not given.
    #[serde(default)]
    pub binary: Option<PathBuf>,
    /// A configuration of the user's own, used instead of the one pingfleet writes;
    /// `{listen}`, `{upstream}`, `{cert}`, `{key}`, `{pem}`, `{pid}` and `{dir}` are
    /// filled in.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// nginx's `worker_processes`, HAProxy's `nbthread` (default 1).
    #[serde(default)]
    pub workers: Option<u32>,
    /// Reload the proxy this long into the hold (`nginx -s reload`, HAProxy's
    /// master-worker reload), with the fleet parked.
    #[serde(default)]
    pub reload_at: Option<Span>,
    // nginx (terminate: `http`; passthrough: `stream`).
    #[serde(default)]
    pub proxy_read_timeout: Option<Span>,
    #[serde(default)]
    pub proxy_send_timeout: Option<Span>,
    #[serde(default)]
    pub proxy_connect_timeout: Option<Span>,
    #[serde(default)]
    pub keepalive_timeout: Option<Span>,
    #[serde(default)]
    pub send_timeout: Option<Span>,
    /// nginx `stream`'s idle timeout (passthrough).
    #[serde(default)]
    pub proxy_timeout: Option<Span>,
    #[serde(default)]
    pub worker_connections: Option<u32>,
    #[serde(default)]
    pub worker_shutdown_timeout: Option<Span>,
    // HAProxy.
    #[serde(default)]
    pub timeout_client: Option<Span>,
    #[serde(default)]
    pub timeout_server: Option<Span>,
    #[serde(default)]
    pub timeout_connect: Option<Span>,
    #[serde(default)]
    pub timeout_tunnel: Option<Span>,
    #[serde(default)]
    pub timeout_http_keep_alive: Option<Span>,
    #[serde(default)]
    pub timeout_http_request: Option<Span>,
    #[serde(default)]
    pub maxconn: Option<u32>,
    #[serde(default)]
    pub hard_stop_after: Option<Span>,
}

/// Where a directive's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum DirectiveSource {
    /// The proxy's own default (nginx's documented default; for HAProxy, which has
    /// none for its timeouts, the value Debian's shipped `haproxy.cfg` sets).
    Default,
    /// The scenario's `[proxy]`.
    Scenario,
    /// Set by the run: the limits sized to the devices behind the proxy, HAProxy's
    /// threads to one.
    Sized,
    /// Not set: the behaviour the proxy has without it (unbounded).
    Unset,
}

/// One directive of the proxy's configuration as the run sets it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Directive {
    /// The proxy's own name for it (`proxy_read_timeout`, `timeout server`).
    pub name: String,
    /// Its value as the proxy reads it (`60s`, `20480`), empty when unset.
    pub value: String,
    pub source: DirectiveSource,
}

/// nginx's directives: scenario key, directive, default (None: unbounded), and whether
/// it is an `http` (terminate) or a `stream` (passthrough) one.
const NGINX_TIMEOUTS: [(&str, &str, Option<u64>, ProxyTls); 7] = [
    (
        "proxy_read_timeout",
        "proxy_read_timeout",
        Some(60),
        ProxyTls::Terminate,
    ),
    (
        "proxy_send_timeout",
        "proxy_send_timeout",
        Some(60),
        ProxyTls::Terminate,
    ),
    (
        "keepalive_timeout",
        "keepalive_timeout",
        Some(75),
        ProxyTls::Terminate,
    ),
    (
        "send_timeout",
        "send_timeout",
        Some(60),
        ProxyTls::Terminate,
    ),
    (
        "proxy_timeout",
        "proxy_timeout",
        Some(600),
        ProxyTls::Passthrough,
    ),
    (
        "proxy_connect_timeout",
        "proxy_connect_timeout",
        Some(60),
        ProxyTls::Terminate,
    ),
    (
        "worker_shutdown_timeout",
        "worker_shutdown_timeout",
        None,
        ProxyTls::Terminate,
    ),
];

/// HAProxy's timeouts: scenario key, directive, Debian's shipped value (None: unset).
const HAPROXY_TIMEOUTS: [(&str, &str, Option<u64>); 7] = [
    ("timeout_client", "timeout client", Some(50)),
    ("timeout_server", "timeout server", Some(50)),
    ("timeout_connect", "timeout connect", Some(5)),
    ("timeout_tunnel", "timeout tunnel", None),
    ("timeout_http_keep_alive", "timeout http-keep-alive", None),
    ("timeout_http_request", "timeout http-request", None),
    ("hard_stop_after", "hard-stop-after", None),
];

/// Connections a proxy keeps beyond two a device (its listeners, its logs, a margin).
const SPARE_CONNECTIONS: u64 = 64;

/// The share of the devices behind a proxy its limits are sized for: at 20,000
/// devices over three nginx, 2 x 6,667 + 64 connections a worker were not enough
/// (nginx said "worker_connections are not enough, reusing connections", and closed
/// parked Pings' connections to make room).
pub const HEADROOM_PERCENT: u64 = 125;

/// The fewest connections a proxy's limit may allow (its listeners and logs count).
const MIN_LIMIT: u32 = 16;

/// nginx's default `worker_connections`.
const NGINX_WORKER_CONNECTIONS: u64 = 512;

impl ProxyConfig {
    /// The proxy kind (checked present by [`ProxyConfig::check`]).
    pub fn kind(&self) -> ProxyKind {
        self.kind.unwrap_or(ProxyKind::Nginx)
    }

    /// The workers (nginx processes, HAProxy threads), 1 when not given.
    pub fn workers(&self) -> u32 {
        self.workers.unwrap_or(1)
    }

    /// A span key's value by its scenario name.
    fn span(&self, key: &str) -> Option<Span> {
        match key {
            "proxy_read_timeout" => self.proxy_read_timeout,
            "proxy_send_timeout" => self.proxy_send_timeout,
            "proxy_connect_timeout" => self.proxy_connect_timeout,
            "keepalive_timeout" => self.keepalive_timeout,
            "send_timeout" => self.send_timeout,
            "proxy_timeout" => self.proxy_timeout,
            "worker_shutdown_timeout" => self.worker_shutdown_timeout,
            "timeout_client" => self.timeout_client,
            "timeout_server" => self.timeout_server,
            "timeout_connect" => self.timeout_connect,
            "timeout_tunnel" => self.timeout_tunnel,
            "timeout_http_keep_alive" => self.timeout_http_keep_alive,
            "timeout_http_request" => self.timeout_http_request,
            "hard_stop_after" => self.hard_stop_after,
            _ => None,
        }
    }

    /// Every check of `[proxy]` on its own.
    pub fn check(&self) -> Result<(), ConfigError> {
        let Some(kind) = self.kind else {
            return Err(ConfigError::new(
                "kind",
                "proxy.kind is required: kind = \"nginx\" or kind = \"haproxy\"",
            ));
        };
        let (own, other): (Vec<&str>, Vec<&str>) = match kind {
            ProxyKind::Nginx => (
                NGINX_TIMEOUTS.iter().map(|entry| entry.0).collect(),
                HAPROXY_TIMEOUTS.iter().map(|entry| entry.0).collect(),
            ),
            ProxyKind::Haproxy => (
                HAPROXY_TIMEOUTS.iter().map(|entry| entry.0).collect(),
                NGINX_TIMEOUTS.iter().map(|entry| entry.0).collect(),
            ),
        };
        let foreign_limit = match kind {
            ProxyKind::Nginx => self.maxconn.is_some().then_some("maxconn"),
            ProxyKind::Haproxy => self
                .worker_connections
                .is_some()
                .then_some("worker_connections"),
        };
        let foreign = other
            .iter()
            .copied()
            .find(|key| self.span(key).is_some())
            .or(foreign_limit);
        if let Some(key) = foreign {
            return Err(ConfigError::new(
                key,
                format!(
                    "proxy.{key} is not a {} setting; its own are {} (and {})",
                    kind.title(),
                    own.join(", "),
                    match kind {
                        ProxyKind::Nginx => "worker_connections",
                        ProxyKind::Haproxy => "maxconn",
                    }
                ),
            ));
        }
        self.check_spans(kind)?;
        if self
            .workers
            .is_some_and(|workers| !(1..=64).contains(&workers))
        {
            return Err(ConfigError::new(
                "workers",
                "proxy.workers is 1 to 64, e.g. workers = 1",
            ));
        }
        Ok(())
    }

    /// Timeouts above zero and for the TLS mode they act in.
    fn check_spans(&self, kind: ProxyKind) -> Result<(), ConfigError> {
        // nginx's keepalive_timeout 0 turns keep-alive off: a setting, not a mistake.
        for (key, span) in self.spans() {
            if span.0.is_zero() && key != "keepalive_timeout" {
                let example = match NGINX_TIMEOUTS
                    .iter()
                    .map(|e| (e.0, e.2))
                    .chain(HAPROXY_TIMEOUTS.iter().map(|e| (e.0, e.2)))
                    .find(|(name, _)| *name == key)
                {
                    Some((_, Some(seconds))) => format!("{seconds}s"),
                    _ => "65m".to_owned(),
                };
                return Err(ConfigError::new(
                    key,
                    format!("proxy.{key} must be longer than 0s, e.g. {key} = \"{example}\""),
                ));
            }
        }
        let limits = [
            ("worker_connections", self.worker_connections),
            ("maxconn", self.maxconn),
        ];
        if let Some((key, Some(given))) = limits
            .into_iter()
            .find(|(_, value)| value.is_some_and(|v| v < MIN_LIMIT))
        {
            return Err(ConfigError::new(
                key,
                format!(
                    "proxy.{key} = {given} leaves no room for the proxy's own sockets: at least \
                     {MIN_LIMIT}, or leave it out to have it sized to the fleet"
                ),
            ));
        }
        if kind == ProxyKind::Nginx {
            let wrong_mode = NGINX_TIMEOUTS.iter().find(|(key, _, _, mode)| {
                let shared = matches!(*key, "proxy_connect_timeout" | "worker_shutdown_timeout");
                !shared && *mode != self.tls && self.span(key).is_some()
            });
            if let Some((key, _, _, mode)) = wrong_mode {
                let (is, other) = match mode {
                    ProxyTls::Terminate => ("an http", "passthrough uses proxy_timeout"),
                    ProxyTls::Passthrough => ("a stream", "terminate uses proxy_read_timeout"),
                };
                return Err(ConfigError::new(
                    key,
                    format!(
                        "proxy.{key} is {is} setting of nginx, not for tls = {:?} ({other})",
                        self.tls_name()
                    ),
                ));
            }
        }
        if self.reload_at.is_some_and(|at| at.0.is_zero()) {
            return Err(ConfigError::new(
                "reload_at",
                "proxy.reload_at is a time into the hold, e.g. reload_at = \"2m\"",
            ));
        }
        Ok(())
    }

    fn tls_name(&self) -> &'static str {
        match self.tls {
            ProxyTls::Terminate => "terminate",
            ProxyTls::Passthrough => "passthrough",
        }
    }

    /// Every span key given, by its scenario name.
    fn spans(&self) -> Vec<(&'static str, Span)> {
        NGINX_TIMEOUTS
            .iter()
            .map(|entry| entry.0)
            .chain(HAPROXY_TIMEOUTS.iter().map(|entry| entry.0))
            .filter_map(|key| Some((key, self.span(key)?)))
            .collect()
    }

    /// Every interval divided by `scale` (compressed time), whole milliseconds at least.
    pub fn compress(&mut self, scale: f64) {
        let shrink = |span: &mut Option<Span>| {
            if let Some(value) = span {
                let ms = (value.0.as_secs_f64() * 1000.0 / scale).round().max(1.0);
                *value = Span(Duration::from_millis(ms as u64));
            }
        };
        for span in [
            &mut self.proxy_read_timeout,
            &mut self.proxy_send_timeout,
            &mut self.proxy_connect_timeout,
            &mut self.keepalive_timeout,
            &mut self.send_timeout,
            &mut self.proxy_timeout,
            &mut self.worker_shutdown_timeout,
            &mut self.timeout_client,
            &mut self.timeout_server,
            &mut self.timeout_connect,
            &mut self.timeout_tunnel,
            &mut self.timeout_http_keep_alive,
            &mut self.timeout_http_request,
            &mut self.hard_stop_after,
            &mut self.reload_at,
        ] {
            shrink(span);
        }
    }

    /// Sets the timeouts that cut a parked Ping the server has not answered: nginx's
    /// `proxy_read_timeout` (terminate) or `proxy_timeout` (passthrough); HAProxy's
    /// `timeout server` and `timeout client` (the shorter closes a TCP-mode
    /// connection). A sweep's idle timeout sets these when there is no firewall.
    pub fn set_idle_timeouts(&mut self, span: Span) {
        match (self.kind(), self.tls) {
            (ProxyKind::Nginx, ProxyTls::Terminate) => self.proxy_read_timeout = Some(span),
            (ProxyKind::Nginx, ProxyTls::Passthrough) => self.proxy_timeout = Some(span),
            (ProxyKind::Haproxy, _) => {
                self.timeout_server = Some(span);
                self.timeout_client = Some(span);
            }
        }
    }

    /// The shortest timeout that can cut a parked Ping, as set (its directive and span).
    pub fn ping_cutting_timeout(&self) -> (String, Span) {
        let directives = self.directives(0);
        // HAProxy in HTTP mode does not run `timeout client` while the server holds
        // the request (measured: a 504 at `timeout server`); in TCP mode the shorter of
        // the two closes an idle connection, unless `timeout tunnel` supersedes both.
        let names: &[&str] = match (self.kind(), self.tls) {
            (ProxyKind::Nginx, ProxyTls::Terminate) => &["proxy_read_timeout"],
            (ProxyKind::Nginx, ProxyTls::Passthrough) => &["proxy_timeout"],
            (ProxyKind::Haproxy, ProxyTls::Terminate) => &["timeout server"],
            (ProxyKind::Haproxy, ProxyTls::Passthrough) if self.timeout_tunnel.is_some() => {
                &["timeout tunnel"]
            }
            (ProxyKind::Haproxy, ProxyTls::Passthrough) => &["timeout server", "timeout client"],
        };
        directives
            .iter()
            .filter(|directive| names.contains(&directive.name.as_str()))
            .filter_map(|directive| {
                Some((
                    directive.name.clone(),
                    directive.value.parse::<Span>().ok()?,
                ))
            })
            .min_by_key(|(_, span)| *span)
            .unwrap_or_else(|| (names[0].to_owned(), Span(Duration::MAX)))
    }

    /// Every directive the run sets, with its value and where it came from, for a proxy
    /// holding `devices` devices (two connections each: the device's and the server's).
    pub fn directives(&self, devices: usize) -> Vec<Directive> {
        let kind = self.kind();
        let mut directives: Vec<Directive> = match kind {
            ProxyKind::Nginx => NGINX_TIMEOUTS
                .iter()
                .filter(|(key, _, _, mode)| {
                    *mode == self.tls
                        || matches!(*key, "proxy_connect_timeout" | "worker_shutdown_timeout")
                })
                .map(|(key, name, default, _)| self.timeout(key, name, *default))
                .collect(),
            ProxyKind::Haproxy => HAPROXY_TIMEOUTS
                .iter()
                .map(|(key, name, default)| self.timeout(key, name, *default))
                .collect(),
        };
        // Devices reach partitions by a hash of their user, not evenly; and a device
        // re-pinging after a cut briefly holds a closing connection beside its new one.
        let devices = (devices as u64 * HEADROOM_PERCENT).div_ceil(100);
        let needed = 2 * devices + SPARE_CONNECTIONS;
        let limit = match kind {
            ProxyKind::Nginx => {
                let per_worker = needed.div_ceil(u64::from(self.workers()));
                let mut limit = self.limit(
                    "worker_connections",
                    self.worker_connections,
                    per_worker.max(NGINX_WORKER_CONNECTIONS),
                );
                // A small fleet fits nginx's own default.
                if self.worker_connections.is_none() && per_worker <= NGINX_WORKER_CONNECTIONS {
                    limit.source = DirectiveSource::Default;
                }
                limit
            }
            // HAProxy's maxconn counts the client side only.
            ProxyKind::Haproxy => self.limit("maxconn", self.maxconn, devices + SPARE_CONNECTIONS),
        };
        directives.push(limit);
        let workers = match kind {
            ProxyKind::Nginx => "worker_processes",
            ProxyKind::Haproxy => "nbthread",
        };
        // nginx's own default is one worker; HAProxy's is a thread a core, which the
        // run sets to one (the machine's cores are the fleet's and the server's too).
        directives.push(Directive {
            name: workers.to_owned(),
            value: self.workers().to_string(),
            source: match (self.workers, kind) {
                (Some(_), _) => DirectiveSource::Scenario,
                (None, ProxyKind::Nginx) => DirectiveSource::Default,
                (None, ProxyKind::Haproxy) => DirectiveSource::Sized,
            },
        });
        directives
    }

    fn timeout(&self, key: &str, name: &str, default: Option<u64>) -> Directive {
        let (value, source) = match (self.span(key), default) {
            (Some(span), _) => (duration_text(span), DirectiveSource::Scenario),
            (None, Some(seconds)) => (format!("{seconds}s"), DirectiveSource::Default),
            (None, None) => (String::new(), DirectiveSource::Unset),
        };
        Directive {
            name: name.to_owned(),
            value,
            source,
        }
    }

    fn limit(&self, name: &str, given: Option<u32>, sized: u64) -> Directive {
        let (value, source) = match given {
            Some(value) => (u64::from(value), DirectiveSource::Scenario),
            None => (sized, DirectiveSource::Sized),
        };
        Directive {
            name: name.to_owned(),
            value: value.to_string(),
            source,
        }
    }
}

/// A span as both proxies read it: whole seconds when it is, else milliseconds.
pub fn duration_text(span: Span) -> String {
    let ms = span.0.as_millis();
    match ms % 1000 {
        0 => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ProxyConfig {
        toml::from_str(text).unwrap()
    }

    fn directive<'a>(directives: &'a [Directive], name: &str) -> &'a Directive {
        directives
            .iter()
            .find(|directive| directive.name == name)
            .unwrap_or_else(|| panic!("{name} in {directives:?}"))
    }

    #[test]
    fn nginx_defaults_and_the_scenarios_own_are_told_apart() {
        let config = parse("kind = \"nginx\"\nproxy_send_timeout = \"65m\"\n");
        config.check().unwrap();
        let directives = config.directives(10_000);
        let read = directive(&directives, "proxy_read_timeout");
        assert_eq!(
            (read.value.as_str(), read.source),
            ("60s", DirectiveSource::Default)
        );
        let send = directive(&directives, "proxy_send_timeout");
        assert_eq!(
            (send.value.as_str(), send.source),
            ("3900s", DirectiveSource::Scenario)
        );
        let connections = directive(&directives, "worker_connections");
        assert_eq!(connections.value, "25064");
        assert_eq!(connections.source, DirectiveSource::Sized);
        assert_eq!(
            directive(&directives, "worker_shutdown_timeout").source,
            DirectiveSource::Unset
        );
        assert!(directives
            .iter()
            .all(|directive| directive.name != "proxy_timeout"));
        assert_eq!(
            config.ping_cutting_timeout(),
            ("proxy_read_timeout".to_owned(), Span::from_secs(60))
        );
    }

    #[test]
    fn haproxy_takes_debians_shipped_timeouts_and_the_shortest_cuts() {
        let config = parse("kind = \"haproxy\"\ntimeout_server = \"2h\"\n");
        config.check().unwrap();
        let directives = config.directives(100);
        assert_eq!(directive(&directives, "timeout client").value, "50s");
        assert_eq!(directive(&directives, "timeout server").value, "7200s");
        assert_eq!(directive(&directives, "maxconn").value, "189");
        // HTTP mode: the client's timeout does not run while the server holds a Ping.
        assert_eq!(
            config.ping_cutting_timeout(),
            ("timeout server".to_owned(), Span::from_secs(7200))
        );
        let mut tcp = config.clone();
        tcp.tls = ProxyTls::Passthrough;
        assert_eq!(
            tcp.ping_cutting_timeout(),
            ("timeout client".to_owned(), Span::from_secs(50))
        );
        tcp.timeout_tunnel = Some(Span::from_secs(3600));
        assert_eq!(tcp.ping_cutting_timeout().0, "timeout tunnel");
        let mut swept = config.clone();
        swept.set_idle_timeouts(Span::from_secs(900));
        assert_eq!(swept.ping_cutting_timeout().1, Span::from_secs(900));
    }

    #[test]
    fn another_kinds_setting_a_zero_timeout_and_a_wrong_mode_are_refused() {
        let foreign = parse("kind = \"nginx\"\ntimeout_server = \"1h\"\n")
            .check()
            .unwrap_err();
        assert!(
            foreign.message.contains("not a nginx setting"),
            "{}",
            foreign.message
        );
        let limit = parse("kind = \"haproxy\"\nworker_connections = 9\n")
            .check()
            .unwrap_err();
        assert!(
            limit.message.contains("worker_connections"),
            "{}",
            limit.message
        );
        let zero = parse("kind = \"haproxy\"\ntimeout_client = \"0s\"\n")
            .check()
            .unwrap_err();
        assert!(zero.message.contains("longer than 0s"), "{}", zero.message);
        let mode = parse("kind = \"nginx\"\ntls = \"passthrough\"\nproxy_read_timeout = \"1h\"\n")
            .check()
            .unwrap_err();
        assert_eq!(mode.key, "proxy_read_timeout");
        assert_eq!(
            parse("tls = \"terminate\"\n").check().unwrap_err().key,
            "kind"
        );
        assert!(toml::from_str::<ProxyConfig>("kind = \"nginx\"\nread_timeout = 5\n").is_err());
    }

    #[test]
    fn compressed_time_divides_every_interval() {
        let mut config =
            parse("kind = \"nginx\"\nproxy_read_timeout = \"1h\"\nreload_at = \"2m\"\n");
        config.compress(60.0);
        assert_eq!(config.proxy_read_timeout, Some(Span::from_secs(60)));
        assert_eq!(config.reload_at, Some(Span::from_secs(2)));
        assert_eq!(duration_text(Span(Duration::from_millis(1500))), "1500ms");
    }
}
