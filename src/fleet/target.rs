//! Where devices connect: an EAS server URL (`http://host:port` or `https://...`, any
//! path is the ActiveSync directory anyway) resolved to a socket address.

use std::net::{SocketAddr, ToSocketAddrs};

/// A resolved server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub addr: SocketAddr,
    /// The host as written, for the TLS server name.
    pub host: String,
    /// The `Host` header: the host, and the port unless it is the scheme's default.
    pub host_header: String,
    pub tls: bool,
}

impl Target {
    /// Parses and resolves a URL.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            anyhow::bail!("target {url:?} must start with http:// or https://");
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            anyhow::bail!("target {url:?} names no host");
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
        let addr = with_port
            .to_socket_addrs()
            .map_err(|err| anyhow::anyhow!("cannot resolve target {url:?}: {err}"))?
            .next()
            .ok_or_else(|| anyhow::anyhow!("target {url:?} resolves to no address"))?;
        let host = with_port
            .rsplit_once(':')
            .map_or(with_port.as_str(), |(host, _)| host)
            .trim_matches(['[', ']'])
            .to_owned();
        Ok(Self {
            url: url.to_owned(),
            addr,
            host,
            host_header,
            tls,
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
}
