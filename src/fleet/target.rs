//! Where devices connect: an EAS server URL (`http://host:port` or `https://...`, any
//! path is the ActiveSync directory anyway) resolved to a socket address.

use std::net::{SocketAddr, ToSocketAddrs};

/// A resolved server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub addr: SocketAddr,
    /// The host as written, for the Host header and TLS server name.
    pub host: String,
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
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:{}", if tls { 443 } else { 80 })
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
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("http://").is_err());
    }
}
