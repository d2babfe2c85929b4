//! Where devices connect: an EAS server URL (`http://host:port/path` or `https://...`)
//! resolved to a socket address. The URL's path is where requests go (a server under a
//! prefix, such as SOGo's `/SOGo/Microsoft-Server-ActiveSync`, or behind a proxy); a
//! URL without one means the standard `/Microsoft-Server-ActiveSync`.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::eas::request::ACTIVESYNC_PATH;

/// What a URL says of a server without resolving it: how to reach it and what to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub tls: bool,
    /// The host as written, for the TLS server name.
    pub host: String,
    /// The `Host` header: the host, and the port unless it is the scheme's default.
    pub host_header: String,
    /// The path every request goes to (its query added).
    pub path: String,
    /// `host:port`, the port filled in.
    with_port: String,
}

impl Endpoint {
    /// Parses a URL (nothing is resolved).
    pub(crate) fn parse(url: &str) -> anyhow::Result<Self> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            anyhow::bail!("target {url:?} must start with http:// or https://");
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            anyhow::bail!("target {url:?} names no host");
        }
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let path = match path.trim_end_matches('/') {
            "" => ACTIVESYNC_PATH.to_owned(),
            path => format!("/{path}"),
        };
        if path.bytes().any(|byte| byte <= b' ' || byte >= 0x7f) {
            anyhow::bail!("target {url:?}: its path must be printable ASCII without spaces");
        }
        let default_port = if tls { 443 } else { 80 };
        let written_port = authority
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok());
        let with_port = match written_port {
            Some(_) => authority.to_owned(),
            None => format!("{authority}:{default_port}"),
        };
        let host_header = match written_port {
            Some(port) if port == default_port => authority
                .rsplit_once(':')
                .map_or(authority, |(host, _)| host)
                .to_owned(),
            _ => authority.to_owned(),
        };
        let host = with_port
            .rsplit_once(':')
            .map_or(with_port.as_str(), |(host, _)| host)
            .trim_matches(['[', ']'])
            .to_owned();
        Ok(Self {
            tls,
            host,
            host_header,
            path,
            with_port,
        })
    }
}

/// A resolved server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub url: String,
    pub addr: SocketAddr,
    /// The host as written, for the TLS server name.
    pub host: String,
    /// The `Host` header: the host, and the port unless it is the scheme's default.
    pub host_header: String,
    /// The path every request goes to.
    pub path: String,
    pub tls: bool,
}

impl Target {
    /// Parses and resolves a URL.
    pub(crate) fn parse(url: &str) -> anyhow::Result<Self> {
        let endpoint = Endpoint::parse(url)?;
        let addr = endpoint
            .with_port
            .to_socket_addrs()
            .map_err(|err| anyhow::anyhow!("cannot resolve target {url:?}: {err}"))?
            .next()
            .ok_or_else(|| anyhow::anyhow!("target {url:?} resolves to no address"))?;
        Ok(Self {
            url: url.to_owned(),
            addr,
            host: endpoint.host,
            host_header: endpoint.host_header,
            path: endpoint.path,
            tls: endpoint.tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let plain = Target::parse("http://127.0.0.2:8080/Microsoft-Server-ActiveSync").unwrap();
        assert_eq!(plain.addr, "127.0.0.2:8080".parse().unwrap());
        assert_eq!((plain.host.as_str(), plain.tls), ("127.0.0.2", false));
        let tls = Target::parse("https://localhost").unwrap();
        assert_eq!(tls.addr.port(), 443);
        assert_eq!((tls.host.as_str(), tls.tls), ("localhost", true));
        // The Host header carries the port unless it is the scheme's default.
        assert_eq!(plain.host_header, "127.0.0.2:8080");
        assert_eq!(tls.host_header, "localhost");
        assert_eq!(
            Target::parse("http://127.0.0.1:80/").unwrap().host_header,
            "127.0.0.1"
        );
        assert_eq!(
            Target::parse("https://[::1]:8443").unwrap().host_header,
            "[::1]:8443"
        );
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("http://").is_err());
    }

    #[test]
    fn the_path_given_is_the_path_used() {
        let path = |url: &str| Endpoint::parse(url).unwrap().path;
        assert_eq!(path("http://h:20000"), ACTIVESYNC_PATH);
        assert_eq!(path("http://h/"), ACTIVESYNC_PATH);
        assert_eq!(
            path("http://h:20000/SOGo/Microsoft-Server-ActiveSync"),
            "/SOGo/Microsoft-Server-ActiveSync"
        );
        assert_eq!(path("https://h/eas/?x=1"), "/eas");
        assert_eq!(
            Target::parse("http://127.0.0.1:1/SOGo/Microsoft-Server-ActiveSync")
                .unwrap()
                .path,
            "/SOGo/Microsoft-Server-ActiveSync"
        );
        assert!(Endpoint::parse("http://h/a b").is_err());
    }
}
