//! What went wrong for a device, as the worker counts it: every error a device or its
//! connection can meet is a variant here, and its text is the key the report counts it
//! under (`errors` in the worker document). Nothing else writes error keys.

use std::fmt;

use super::stats::{tally, Counters};
use crate::eas::request::Command;

/// One error of a device or of its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeviceError {
    /// A response the device could not decode for this command (`None`: OPTIONS).
    Undecodable(Option<Command>),
    /// The response cannot be read as HTTP (its framing, its size, its encoding).
    BadHttp(String),
    /// An HTTP status the device has no handling for.
    UnexpectedStatus,
    /// 503: the server is busy.
    ServiceUnavailable,
    /// 451 without the new address.
    RedirectWithoutLocation,
    /// 451 to an address that is no URL.
    BadRedirectLocation,
    /// OPTIONS offered no version the device can speak.
    NoCommonVersion,
    /// OPTIONS was answered by something that is not EAS (its Content-Type given): a
    /// login page, a proxy's own page. The device stops: asking again gets the same.
    NotEas(String),
    /// Provision answered without a policy key, or refused.
    ProvisionRefused,
    /// A command answered with a failure status.
    Failed(Command),
    /// A folder the device pushes is not in the hierarchy the server sent: the device
    /// stops (it cannot park on a folder the server does not have).
    FolderMissing(MissingFolder),
    /// A Sync response for a folder that was not asked for, or without the one asked.
    SyncMismatch,
    /// A Sync collection answered with a failure status.
    SyncCollectionFailed,
    /// Ping Status 4 (the request was malformed).
    PingSyntaxError,
    /// Ping Status 8.
    PingServerError,
    /// A Ping status from 100 up (a server-wide condition).
    PingStatusOver100,
    /// No response by the deadline: the connection is presumed cut.
    DeadlinePassed,
    /// The connection was reset (a firewall that forgot the flow answers with a RST).
    ConnectionReset,
    /// The other end closed the connection (a FIN, or TLS's close) before answering:
    /// a reverse proxy's worker shutting down, a server's limit.
    ClosedByPeer,
    /// 502 or 504 from a gateway (a reverse proxy) on a request other than a parked
    /// Ping: its upstream refused or did not answer in time.
    Gateway(u16),
    /// The connection could not be opened.
    Connect(std::io::ErrorKind),
    /// The connection was refused.
    ConnectRefused,
    /// The socket could not join the event loop.
    Register(std::io::ErrorKind),
    /// The TLS client could not be set up (a bad server name).
    TlsSetup,
    /// The TLS session failed; the cause as rustls names it.
    Tls(String),
}

impl DeviceError {
    /// Counts the error in `counters`.
    pub(crate) fn count(&self, counters: &mut Counters) {
        tally(&mut counters.errors, self.to_string());
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Undecodable(None) => f.write_str("bad Options response"),
            Self::Undecodable(Some(command)) => write!(f, "bad {} response", command.name()),
            Self::BadHttp(why) => write!(f, "bad response: {why}"),
            Self::UnexpectedStatus => f.write_str("unexpected HTTP status"),
            Self::ServiceUnavailable => f.write_str("http 503"),
            Self::RedirectWithoutLocation => f.write_str("redirect without X-MS-Location"),
            Self::BadRedirectLocation => f.write_str("bad redirect location"),
            Self::NoCommonVersion => f.write_str("no common protocol version"),
            Self::NotEas(content_type) => write!(
                f,
                "not an EAS server: OPTIONS answered with {content_type} and no \
                 MS-ASProtocolVersions (a login page? the target URL's path must be the \
                 server's ActiveSync endpoint)"
            ),
            Self::ProvisionRefused => f.write_str("Provision refused"),
            Self::Failed(command) => write!(f, "{} failed", command.name()),
            Self::FolderMissing(missing) => write!(f, "{missing}"),
            Self::SyncMismatch => f.write_str("Sync response for another folder"),
            Self::SyncCollectionFailed => f.write_str("Sync collection failed"),
            Self::PingSyntaxError => f.write_str("Ping syntax error"),
            Self::PingServerError => f.write_str("Ping server error"),
            Self::PingStatusOver100 => f.write_str("Ping status >= 100"),
            Self::DeadlinePassed => f.write_str("response deadline passed"),
            Self::ConnectionReset => f.write_str("connection reset"),
            Self::ClosedByPeer => f.write_str("connection closed"),
            Self::Gateway(status) => write!(f, "http {status} from a gateway"),
            Self::Connect(kind) => write!(f, "connect: {kind}"),
            Self::ConnectRefused => f.write_str("connect refused"),
            Self::Register(kind) => write!(f, "register: {kind}"),
            Self::TlsSetup => f.write_str("TLS set-up failed"),
            Self::Tls(cause) => write!(f, "TLS failure: {cause}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_count_under_their_text() {
        let mut counters = Counters::default();
        DeviceError::Undecodable(Some(Command::Sync)).count(&mut counters);
        DeviceError::Undecodable(Some(Command::Sync)).count(&mut counters);
        DeviceError::Tls("invalid peer certificate: UnknownIssuer".into()).count(&mut counters);
        assert_eq!(counters.errors["bad Sync response"], 2);
        assert_eq!(
            counters.errors["TLS failure: invalid peer certificate: UnknownIssuer"],
            1
        );
    }
}

/// A folder the device pushes that the server's hierarchy lacks: its spec (a kind or
/// an id) as the profile names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pushed folder {spec:?} is not in the server's hierarchy")]
pub(crate) struct MissingFolder {
    pub spec: String,
}
