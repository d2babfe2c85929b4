//! One device connection's I/O, without the device: open it (plain or TLS, from a
//! loopback source address where the target is on loopback), finish the connect, read
//! what arrived into the response reader, write what the device sent. Each step
//! returns an outcome; the engine applies a [`Cut`] in one place (close, tell the
//! device, count the error).

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use rustls::client::UnbufferedClientConnection;
use rustls::HandshakeKind;
use rustls_pki_types::ServerName;

use super::connect::{open, Sources};
use super::errors::DeviceError;
use super::http::{HttpResponse, ResponseReader};
use super::stats::FleetStats;
use super::target::Target;
use crate::kernel_stamp;
use crate::tls_session::{Step, TlsSession, Want};

const READ_CHUNK: usize = 16 * 1024;

/// Why a connection is over: the peer closed it, or an error (counted by the engine).
#[derive(Debug)]
pub(super) struct Cut(pub Option<DeviceError>);

/// A read or write that failed: a reset is named (it is how a firewall that forgot a
/// flow answers), any other failure is a plain cut.
fn broken(err: &io::Error) -> Cut {
    match err.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
            Cut(Some(DeviceError::ConnectionReset))
        }
        _ => Cut(None),
    }
}

impl From<DeviceError> for Cut {
    fn from(error: DeviceError) -> Self {
        Self(Some(error))
    }
}

/// One open connection.
pub(super) struct Conn {
    pub stream: TcpStream,
    /// Which of the worker's connections this is (its count when it was opened).
    pub serial: u64,
    /// Boxed: a plain connection must not carry a TLS session's size.
    tls: Option<Box<TlsSession<UnbufferedClientConnection>>>,
    reader: ResponseReader,
    /// Bytes to write on the socket (ciphertext with TLS), from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    connecting: bool,
    opened_at: Instant,
    handshake_started: Option<Instant>,
    /// When the bytes read last reached this host (the kernel's receive stamp).
    arrived_at: Instant,
    /// Segments the kernel had retransmitted at the last reading of its path.
    retransmits_seen: u32,
}

impl Conn {
    /// Starts connecting to `target` (TLS when the target is https and `tls` is given),
    /// from the source `sources` gives device `token` of `network`.
    pub(super) fn open(
        target: &Target,
        tls: Option<&Arc<rustls::ClientConfig>>,
        (sources, token, network): (&Sources, usize, &str),
        serial: u64,
        now: Instant,
    ) -> Result<Box<Self>, DeviceError> {
        let tls = match (tls, target.tls) {
            (Some(config), true) => {
                let name =
                    ServerName::try_from(target.host.clone()).map_err(|_| DeviceError::TlsSetup)?;
                let hand_over = config.enable_secret_extraction;
                let session = TlsSession::start(
                    || UnbufferedClientConnection::new(config.clone(), name),
                    hand_over,
                )
                .map_err(|_| DeviceError::TlsSetup)?;
                Some(Box::new(session))
            }
            _ => None,
        };
        let source = sources.of_device(target.addr.ip(), token, network);
        let stream = open(target.addr, source).map_err(|err| DeviceError::Connect(err.kind()))?;
        Ok(Box::new(Self {
            stream,
            serial,
            tls,
            reader: ResponseReader::default(),
            out: Vec::new(),
            out_pos: 0,
            connecting: true,
            opened_at: now,
            handshake_started: None,
            arrived_at: now,
            retransmits_seen: 0,
        }))
    }

    /// Reads the path from the kernel (`TCP_INFO`): its smoothed round trip into
    /// `path_rtt`, the segments retransmitted since the last reading into the counters.
    pub(super) fn read_path(&mut self, stats: &mut FleetStats) {
        let Some(path) = crate::measure::tcp_info::read(&self.stream) else {
            return;
        };
        stats
            .path_rtt
            .record(Duration::from_micros(u64::from(path.rtt_us)));
        let retransmitted = path.total_retrans.saturating_sub(self.retransmits_seen);
        stats.counters.tcp_retransmits += u64::from(retransmitted);
        self.retransmits_seen = path.total_retrans;
    }

    /// Whether the TCP connect is still under way.
    pub(super) fn connecting(&self) -> bool {
        self.connecting
    }

    /// On an event while connecting: `Ok(true)` once connected (the TLS handshake
    /// begun), `Ok(false)` while still connecting.
    pub(super) fn finish_connect(
        &mut self,
        now: Instant,
        stats: &mut FleetStats,
    ) -> Result<bool, Cut> {
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connecting = false;
                let _ = self.stream.set_nodelay(true);
                stats.connect.record(now - self.opened_at);
                if let Some(tls) = self.tls.as_mut() {
                    self.handshake_started = Some(now);
                    tls.step(Want::Read).map_err(tls_cut)?;
                }
                Ok(true)
            }
            Err(err) if err.kind() == io::ErrorKind::NotConnected => {
                match self.stream.take_error() {
                    Ok(None) => Ok(false),
                    Ok(Some(_)) | Err(_) => Err(DeviceError::ConnectRefused.into()),
                }
            }
            Err(_) => Err(Cut(None)),
        }
    }

    /// Reads everything the socket has, through TLS, into the response reader; false
    /// when the peer has closed its side (what it sent before is still to be read).
    /// Whether everything handed to the connection is on the wire: connected, the TLS
    /// handshake done, no byte left to write.
    pub(super) fn written_all(&self) -> bool {
        !self.connecting
            && self.tls.as_ref().is_none_or(|tls| !tls.is_handshaking())
            && self.out_pos >= self.out.len()
    }

    /// When the connection was opened.
    pub(super) fn opened_at(&self) -> Instant {
        self.opened_at
    }

    pub(super) fn read_available(
        &mut self,
        now: Instant,
        stats: &mut FleetStats,
    ) -> Result<bool, Cut> {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match kernel_stamp::read(&self.stream, &mut chunk) {
                Ok((0, _)) => return Ok(false),
                Ok((read, stamp)) => {
                    self.arrived_at = stamp.unwrap_or(now);
                    stats.counters.bytes_received += read as u64;
                    if !self.received(&chunk[..read], now, stats)? {
                        return Ok(false);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(broken(&err)),
            }
        }
    }

    /// Feeds received bytes through TLS (if any) to the response reader; false once the
    /// server has closed the TLS session (what it sent before is fed first).
    fn received(
        &mut self,
        bytes: &[u8],
        now: Instant,
        stats: &mut FleetStats,
    ) -> Result<bool, Cut> {
        let Some(tls) = self.tls.as_mut() else {
            self.reader.feed(bytes);
            return Ok(true);
        };
        tls.received(bytes);
        let was_handshaking = tls.is_handshaking();
        let open = match tls.step(Want::Read) {
            Ok(Step::Closed) => false,
            Err(err) => return Err(tls_cut(err)),
            Ok(_) => true,
        };
        if was_handshaking && !tls.is_handshaking() {
            let resumed = tls.handshake_kind() == Some(HandshakeKind::Resumed);
            stats.counters.tls_handshakes += 1;
            stats.counters.tls_resumed += u64::from(resumed);
            stats.after_flush.handshake(now, resumed);
            if let Some(started) = self.handshake_started {
                stats.tls_handshake.record(now - started);
            }
        }
        tls.drain_plaintext(|plaintext| self.reader.feed(plaintext));
        Ok(open)
    }

    /// The next complete response read, if any; `closed`: the server has closed the
    /// connection (a body framed by the close is complete).
    pub(super) fn next_response(&mut self, closed: bool) -> Result<Option<HttpResponse>, Cut> {
        let response = self
            .reader
            .next_response(closed)
            .map_err(|err| DeviceError::BadHttp(err.to_string()))?;
        Ok(response.map(|response| HttpResponse {
            arrived_at: Some(self.arrived_at),
            ..response
        }))
    }

    /// Takes `outbox` (the device's request bytes, once the connection can carry them),
    /// encrypts it with TLS, and writes what the socket accepts.
    pub(super) fn flush(
        &mut self,
        outbox: &mut Vec<u8>,
        stats: &mut FleetStats,
    ) -> Result<(), Cut> {
        if self.connecting {
            return Ok(());
        }
        match self.tls.as_mut() {
            None => {
                if !outbox.is_empty() {
                    let bytes = std::mem::take(outbox);
                    if self.out_pos >= self.out.len() {
                        self.out = bytes;
                        self.out_pos = 0;
                    } else {
                        self.out.extend_from_slice(&bytes);
                    }
                }
            }
            Some(tls) => {
                if !tls.is_handshaking() && !outbox.is_empty() {
                    let bytes = std::mem::take(outbox);
                    tls.step(Want::Write(&bytes)).map_err(tls_cut)?;
                }
                self.out.extend_from_slice(tls.outgoing());
                let count = tls.outgoing().len();
                tls.sent(count);
            }
        }
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(written) => {
                    self.out_pos += written;
                    stats.counters.bytes_sent += written as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(broken(&err)),
            }
        }
        self.out = Vec::new();
        self.out_pos = 0;
        Ok(())
    }
}

/// A TLS error as a cut, with rustls' own words for the cause (a certificate that
/// does not name the address shortened to its first few names).
fn tls_cut(err: io::Error) -> Cut {
    let cause = err.get_ref().map_or_else(
        || err.kind().to_string(),
        |inner| match inner.downcast_ref::<rustls::Error>() {
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext {
                    expected,
                    presented,
                },
            )) => name_mismatch(&expected.to_str(), presented),
            _ => inner.to_string(),
        },
    );
    DeviceError::Tls(cause).into()
}

/// How many of a certificate's names an error quotes.
const NAMES_QUOTED: usize = 3;

/// A certificate that does not name `expected`, with the first few names it has.
fn name_mismatch(expected: &str, presented: &[String]) -> String {
    let shown: Vec<&str> = presented
        .iter()
        .take(NAMES_QUOTED)
        .map(String::as_str)
        .collect();
    let more = match presented.len().saturating_sub(NAMES_QUOTED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!(
        "the server's certificate is not valid for {expected}: it names {}{more}",
        shown.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_mismatch_quotes_the_first_few_names() {
        let names: Vec<String> = (1..=35).map(|last| format!("127.0.0.{last}")).collect();
        let said = name_mismatch("127.0.21.1", &names);
        assert_eq!(
            said,
            "the server's certificate is not valid for 127.0.21.1: it names 127.0.0.1, 127.0.0.2, 127.0.0.3 and 32 more"
        );
        let cut = tls_cut(io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForNameContext {
                expected: rustls_pki_types::ServerName::try_from("127.0.21.1").unwrap(),
                presented: names,
            },
        )));
        assert!(format!("{cut:?}").contains("and 32 more"), "{cut:?}");
    }
}
