//! A TLS session on rustls' unbuffered API with buffers we own, sans-IO: the caller
//! moves received bytes in and sent bytes out. Each buffer is freed the moment it is
//! empty, and once a TLS 1.3 handshake is over (on a client, once the server's first
//! data, and with it its session tickets, has come) rustls' connection state is freed
//! too and the records are protected with the traffic keys alone
//! ([`crate::tls_records`]), so an idle connection (a parked Ping, on either side)
//! holds about 150 bytes of TLS. The server's lean engine and the device fleet both
//! use it.

use std::io;
#[cfg(test)]
use std::sync::Arc;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ExtractedSecrets, HandshakeKind, ProtocolVersion};

use crate::measure::heap::{self, HeapPart};
use crate::tls_records::{Received, RecordKeys};

/// The two unbuffered connection types, seen alike.
pub trait Unbuffered {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
    fn handshaking(&self) -> bool;
    fn kind(&self) -> Option<HandshakeKind>;
    fn version(&self) -> Option<ProtocolVersion>;
    /// Whether rustls may be let go only once the peer's data has come: a client
    /// waits for the session tickets the server sends before its first answer.
    const WAITS_FOR_DATA: bool;
    fn into_secrets(self) -> Result<ExtractedSecrets, rustls::Error>;
}

/// Implements [`Unbuffered`] for one of rustls' two connection types, whose methods
/// have the same names but no trait in common.
macro_rules! unbuffered {
    ($connection:ty, $data:ty, waits_for_data: $waits:expr) => {
        impl Unbuffered for $connection {
            type Data = $data;
            fn process<'c, 'i>(
                &'c mut self,
                incoming: &'i mut [u8],
            ) -> UnbufferedStatus<'c, 'i, Self::Data> {
                self.process_tls_records(incoming)
            }
            fn handshaking(&self) -> bool {
                self.is_handshaking()
            }
            fn kind(&self) -> Option<HandshakeKind> {
                self.handshake_kind()
            }
            fn version(&self) -> Option<ProtocolVersion> {
                self.protocol_version()
            }
            const WAITS_FOR_DATA: bool = $waits;
            fn into_secrets(self) -> Result<ExtractedSecrets, rustls::Error> {
                self.dangerous_into_kernel_connection()
                    .map(|(secrets, _)| secrets)
            }
        }
    };
}

unbuffered!(UnbufferedServerConnection, ServerConnectionData, waits_for_data: false);
unbuffered!(UnbufferedClientConnection, ClientConnectionData, waits_for_data: true);

/// What processing the received records led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Application data is ready to read.
    Data,
    /// More bytes from the peer are needed.
    NeedInput,
    /// The caller's bytes were encrypted into the outgoing buffer.
    Written,
    /// A close_notify was queued.
    CloseQueued,
    /// The peer closed (or the session ended).
    Closed,
}

/// What the caller wants from one round of processing.
#[derive(Debug, Clone, Copy)]
pub enum Want<'a> {
    Read,
    Write(&'a [u8]),
    Close,
}

/// A TLS session and the buffers it needs.
pub struct TlsSession<C> {
    engine: Engine<C>,
    /// Whether rustls may be let go after a TLS 1.3 handshake (its configuration
    /// allows taking the secrets out).
    hand_over: bool,
    /// Whether application data has come from the peer.
    data_seen: bool,
    /// The handshake's kind, kept when rustls is let go.
    kind: Option<HandshakeKind>,
    /// Received TLS bytes not yet processed.
    incoming: Vec<u8>,
    /// Decrypted application data not yet read, from `plaintext_pos`.
    plaintext: Vec<u8>,
    plaintext_pos: usize,
    /// Encrypted bytes not yet sent, from `outgoing_pos`.
    outgoing: Vec<u8>,
    outgoing_pos: usize,
    peer_closed: bool,
    closed: bool,
}

/// What protects the records.
enum Engine<C> {
    /// rustls: during the handshake, and throughout a TLS 1.2 session or one whose
    /// configuration keeps the secrets in.
    Rustls(Box<C>),
    /// The traffic keys alone, after a TLS 1.3 handshake.
    Records(RecordKeys),
    /// rustls would not give up its secrets: the session cannot go on.
    Failed,
}

/// What a session holds is freed where it was allocated: in the heap's TLS part.
impl<C> Drop for TlsSession<C> {
    fn drop(&mut self) {
        heap::within(HeapPart::Tls, || {
            self.engine = Engine::Failed;
            self.incoming = Vec::new();
            self.plaintext = Vec::new();
            self.outgoing = Vec::new();
        });
    }
}

fn tls_error(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

impl<C: Unbuffered> TlsSession<C> {
    /// A session over the connection `make` makes (counted, as everything rustls
    /// allocates, to the heap's TLS part); with `hand_over` (the configuration's
    /// `enable_secret_extraction`), rustls is let go once a TLS 1.3 handshake is over.
    pub fn start(
        make: impl FnOnce() -> Result<C, rustls::Error>,
        hand_over: bool,
    ) -> Result<Self, rustls::Error> {
        let engine = heap::within(HeapPart::Tls, || {
            make().map(|conn| Engine::Rustls(Box::new(conn)))
        })?;
        Ok(Self {
            engine,
            hand_over,
            data_seen: false,
            kind: None,
            incoming: Vec::new(),
            plaintext: Vec::new(),
            plaintext_pos: 0,
            outgoing: Vec::new(),
            outgoing_pos: 0,
            peer_closed: false,
            closed: false,
        })
    }

    /// What kind of handshake the session made (full or resumed), once made.
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        match &self.engine {
            Engine::Rustls(conn) => conn.kind(),
            _ => self.kind,
        }
    }

    /// Whether rustls has been let go and the records are protected with the keys
    /// alone.
    pub fn holds_keys_only(&self) -> bool {
        matches!(self.engine, Engine::Records(_))
    }

    pub fn is_handshaking(&self) -> bool {
        match &self.engine {
            Engine::Rustls(conn) => conn.handshaking(),
            _ => false,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Marks the session closed by us (after a close_notify or an error).
    pub fn set_closed(&mut self) {
        self.closed = true;
    }

    /// Bytes the capacity of every buffer adds up to (0 for an idle session).
    pub fn buffered_capacity(&self) -> usize {
        self.incoming.capacity() + self.plaintext.capacity() + self.outgoing.capacity()
    }

    /// Appends bytes received from the peer.
    pub fn received(&mut self, bytes: &[u8]) {
        heap::within(HeapPart::Tls, || self.incoming.extend_from_slice(bytes));
    }

    /// Encrypted bytes waiting to be sent.
    pub fn outgoing(&self) -> &[u8] {
        &self.outgoing[self.outgoing_pos..]
    }

    /// Marks `count` outgoing bytes as sent; frees the buffer once all are.
    pub fn sent(&mut self, count: usize) {
        self.outgoing_pos += count;
        if self.outgoing_pos >= self.outgoing.len() {
            heap::within(HeapPart::Tls, || self.outgoing = Vec::new());
            self.outgoing_pos = 0;
        }
    }

    /// Whether decrypted data is waiting.
    pub fn has_plaintext(&self) -> bool {
        self.plaintext_pos < self.plaintext.len()
    }

    /// Copies decrypted data into `out`; returns how much. Frees the buffer when drained.
    pub fn read_plaintext(&mut self, out: &mut [u8]) -> usize {
        let available = &self.plaintext[self.plaintext_pos..];
        let take = available.len().min(out.len());
        out[..take].copy_from_slice(&available[..take]);
        self.plaintext_pos += take;
        if self.plaintext_pos == self.plaintext.len() {
            heap::within(HeapPart::Tls, || self.plaintext = Vec::new());
            self.plaintext_pos = 0;
        }
        take
    }

    /// Hands all decrypted data to `into` at once, then frees it.
    pub fn drain_plaintext(&mut self, into: impl FnOnce(&[u8])) {
        into(&self.plaintext[self.plaintext_pos..]);
        heap::within(HeapPart::Tls, || self.plaintext = Vec::new());
        self.plaintext_pos = 0;
    }

    /// Processes received records until the state machine needs something from us.
    pub fn step(&mut self, want: Want<'_>) -> io::Result<Step> {
        heap::within(HeapPart::Tls, || self.step_within(want))
    }

    fn step_within(&mut self, want: Want<'_>) -> io::Result<Step> {
        if let Engine::Rustls(_) = self.engine {
            match self.step_rustls(want)? {
                Some(step) => return Ok(step),
                None => self.let_rustls_go()?,
            }
        }
        self.step_records(want)
    }

    /// Whether rustls can be let go now: a TLS 1.3 handshake over and, on a client,
    /// the server's data (after its tickets) come.
    fn can_let_go(&self) -> bool {
        let Engine::Rustls(conn) = &self.engine else {
            return false;
        };
        self.hand_over
            && !conn.handshaking()
            && conn.version() == Some(ProtocolVersion::TLSv1_3)
            && (!C::WAITS_FOR_DATA || self.data_seen)
    }

    /// Trades rustls' connection for its traffic keys.
    fn let_rustls_go(&mut self) -> io::Result<()> {
        let Engine::Rustls(conn) = std::mem::replace(&mut self.engine, Engine::Failed) else {
            return Ok(());
        };
        self.kind = conn.kind();
        let secrets = conn.into_secrets().map_err(tls_error)?;
        self.engine = Engine::Records(RecordKeys::new(secrets)?);
        Ok(())
    }

    /// A step with the keys alone.
    fn step_records(&mut self, want: Want<'_>) -> io::Result<Step> {
        let Engine::Records(keys) = &mut self.engine else {
            return Err(io::Error::other("the TLS session could not go on"));
        };
        if !self.incoming.is_empty() && !self.peer_closed {
            let received = keys.open(&mut self.incoming, &mut self.plaintext)?;
            self.peer_closed |= received == Received::PeerClosed;
            if self.incoming.is_empty() {
                self.incoming = Vec::new();
            }
        }
        Ok(match want {
            Want::Write(data) => {
                keys.seal_data(data, &mut self.outgoing)?;
                Step::Written
            }
            Want::Close => {
                keys.seal_close_notify(&mut self.outgoing)?;
                Step::CloseQueued
            }
            Want::Read if self.plaintext_pos < self.plaintext.len() => Step::Data,
            Want::Read if self.peer_closed => Step::Closed,
            Want::Read => Step::NeedInput,
        })
    }

    /// A step with rustls; `None` when it is time to let rustls go (before doing
    /// what `want` asks).
    fn step_rustls(&mut self, want: Want<'_>) -> io::Result<Option<Step>> {
        loop {
            let let_go = self.can_let_go();
            let Engine::Rustls(conn) = &mut self.engine else {
                return Ok(None);
            };
            let UnbufferedStatus { mut discard, state } = conn.process(&mut self.incoming);
            let outcome = match state.map_err(tls_error)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(tls_error)?;
                        discard += record.discard;
                        self.plaintext.extend_from_slice(record.payload);
                        self.data_seen = true;
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    append(&mut self.outgoing, |out| {
                        encode.encode(out).map_err(|err| match err {
                            EncodeError::InsufficientSize(size) => Ok(size.required_size),
                            other => Err(io::Error::new(io::ErrorKind::InvalidData, other)),
                        })
                    })?;
                    None
                }
                // The encoded bytes are in `outgoing`, which the caller sends first.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Some(Step::NeedInput)),
                ConnectionState::WriteTraffic(_) if let_go => Some(None),
                ConnectionState::WriteTraffic(mut traffic) => Some(Some(match want {
                    Want::Write(data) => {
                        append(&mut self.outgoing, |out| {
                            traffic.encrypt(data, out).map_err(encrypt_error)
                        })?;
                        Step::Written
                    }
                    Want::Close => {
                        append(&mut self.outgoing, |out| {
                            traffic.queue_close_notify(out).map_err(encrypt_error)
                        })?;
                        Step::CloseQueued
                    }
                    Want::Read if self.plaintext_pos < self.plaintext.len() => Step::Data,
                    Want::Read if self.peer_closed => Step::Closed,
                    Want::Read => Step::NeedInput,
                })),
                ConnectionState::PeerClosed => {
                    self.peer_closed = true;
                    None
                }
                ConnectionState::Closed => {
                    self.peer_closed = true;
                    self.closed = true;
                    Some(Some(Step::Closed))
                }
                // Early data is never enabled by pingfleet, so nothing else comes.
                _ => return Err(io::Error::other("unexpected TLS connection state")),
            };
            if discard > 0 {
                self.incoming.drain(..discard);
            }
            if self.incoming.is_empty() && self.incoming.capacity() > 0 {
                self.incoming = Vec::new();
            }
            if let Some(step) = outcome {
                return Ok(step);
            }
        }
    }
}

fn encrypt_error(err: EncryptError) -> Result<usize, io::Error> {
    match err {
        EncryptError::InsufficientSize(size) => Ok(size.required_size),
        other => Err(io::Error::new(io::ErrorKind::InvalidData, other)),
    }
}

/// Appends what `write` produces to `out`, growing it when `write` reports (as
/// `Err(Ok(size))`) that it needs `size` bytes.
fn append(
    out: &mut Vec<u8>,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Result<usize, io::Error>>,
) -> io::Result<()> {
    let used = out.len();
    let written = match write(&mut out[used..]) {
        Ok(written) => written,
        Err(Ok(required)) => {
            out.resize(used + required, 0);
            write(&mut out[used..]).map_err(|err| match err {
                Ok(_) => io::Error::other("TLS output did not fit the size it asked for"),
                Err(err) => err,
            })?
        }
        Err(Err(err)) => return Err(err),
    };
    out.truncate(used + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::tickets::{TicketUse, TlsClients};
    use rustls_pki_types::pem::PemObject as _;

    use crate::tls::{client_config_insecure, Identity, KeyExchange};

    type Client = TlsSession<UnbufferedClientConnection>;
    type Server = TlsSession<UnbufferedServerConnection>;

    fn session<C: Unbuffered>(conn: C, hand_over: bool) -> TlsSession<C> {
        TlsSession::start(|| Ok(conn), hand_over).unwrap()
    }

    fn take<C: Unbuffered>(session: &mut TlsSession<C>) -> Vec<u8> {
        let mut taken = Vec::new();
        session.drain_plaintext(|bytes| taken.extend_from_slice(bytes));
        taken
    }

    fn pass<A: Unbuffered, B: Unbuffered>(from: &mut TlsSession<A>, to: &mut TlsSession<B>) {
        let bytes = from.outgoing().to_vec();
        from.sent(bytes.len());
        to.received(&bytes);
    }

    /// Runs a handshake and one request and answer between `client` and `server`.
    fn exchange(client: &mut Client, server: &mut Server) {
        for _ in 0..4 {
            client.step(Want::Read).unwrap();
            pass(client, server);
            server.step(Want::Read).unwrap();
            pass(server, client);
        }
        assert_eq!(client.step(Want::Write(b"POST")).unwrap(), Step::Written);
        pass(client, server);
        assert_eq!(server.step(Want::Read).unwrap(), Step::Data);
        assert_eq!(take(server), b"POST");
        assert_eq!(server.step(Want::Write(b"200")).unwrap(), Step::Written);
        pass(server, client);
        assert_eq!(client.step(Want::Read).unwrap(), Step::Data);
        assert_eq!(take(client), b"200");
    }

    struct Ends {
        server: Arc<rustls::ServerConfig>,
        clients: TlsClients,
        _dir: tempfile::TempDir,
    }

    /// A server and a client that offers TLS 1.3 and 1.2, or with `tls12_only` 1.2 alone.
    fn ends(tls12_only: bool) -> Ends {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let server = Identity::self_signed(&cert, &[])
            .unwrap()
            .server_config()
            .unwrap();
        let mut base = (*client_config_insecure(KeyExchange::Hybrid).unwrap()).clone();
        if tls12_only {
            let mut roots = rustls::RootCertStore::empty();
            for der in rustls_pki_types::CertificateDer::pem_file_iter(&cert).unwrap() {
                roots.add(der.unwrap()).unwrap();
            }
            base = rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
                .with_root_certificates(roots)
                .with_no_client_auth();
            base.enable_secret_extraction = true;
        }
        Ends {
            server,
            clients: TlsClients::new(&base, 4),
            _dir: dir,
        }
    }

    fn connect(ends: &mut Ends, tickets: TicketUse) -> (Client, Server) {
        let config = ends.clients.for_connection(0, tickets);
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let client = UnbufferedClientConnection::new(config, name).unwrap();
        let server = UnbufferedServerConnection::new(ends.server.clone()).unwrap();
        (session(client, true), session(server, true))
    }

    #[test]
    fn after_a_tls13_exchange_both_ends_keep_only_keys_and_the_ticket_still_resumes() {
        let mut ends = ends(false);
        let (mut client, mut server) = connect(&mut ends, TicketUse::First);
        exchange(&mut client, &mut server);
        assert!(client.holds_keys_only() && server.holds_keys_only());
        assert_eq!(client.handshake_kind(), Some(HandshakeKind::Full));
        assert_eq!(std::mem::size_of::<Server>(), std::mem::size_of::<Client>());
        assert!(
            std::mem::size_of::<Server>() < 256,
            "{}",
            std::mem::size_of::<Server>()
        );
        // The keys carry on both ways, and a close_notify ends it.
        assert_eq!(server.step(Want::Write(b"wake")).unwrap(), Step::Written);
        pass(&mut server, &mut client);
        assert_eq!(client.step(Want::Read).unwrap(), Step::Data);
        assert_eq!(take(&mut client), b"wake");
        assert_eq!(client.step(Want::Close).unwrap(), Step::CloseQueued);
        pass(&mut client, &mut server);
        assert_eq!(server.step(Want::Read).unwrap(), Step::Closed);
        assert_eq!(client.buffered_capacity() + server.buffered_capacity(), 0);

        // The ticket the client took before letting rustls go resumes the next session.
        let (mut client, mut server) = connect(&mut ends, TicketUse::Returning);
        exchange(&mut client, &mut server);
        assert_eq!(client.handshake_kind(), Some(HandshakeKind::Resumed));
        assert!(client.holds_keys_only() && server.holds_keys_only());
    }

    /// Heap bytes per client and per server session after one exchange, with and
    /// without letting rustls go (printed with `--nocapture`).
    #[test]
    fn a_parked_session_holds_a_fraction_of_what_rustls_holds() {
        const PAIRS: usize = 1_000;
        let mut ends = ends(false);
        let mut per_pair = Vec::new();
        for hand_over in [false, true] {
            let before = heap::live_bytes();
            let mut kept = Vec::with_capacity(PAIRS);
            for _ in 0..PAIRS {
                let config = ends.clients.for_connection(0, TicketUse::Never);
                let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
                let client = UnbufferedClientConnection::new(config, name).unwrap();
                let server = UnbufferedServerConnection::new(ends.server.clone()).unwrap();
                let (mut client, mut server) =
                    (session(client, hand_over), session(server, hand_over));
                exchange(&mut client, &mut server);
                kept.push((Box::new(client), Box::new(server)));
            }
            let bytes = heap::live_bytes().saturating_sub(before) as f64 / PAIRS as f64;
            println!("hand_over {hand_over}: {bytes:.0} heap bytes per pair of parked sessions");
            per_pair.push(bytes);
        }
        // rustls keeps about 2.2 KB a server and 3 KB a client session on the Rust heap
        // alone (its AEAD keys, in aws-lc's own allocations, come on top); the keys
        // alone are the two session structs.
        assert!(per_pair[0] > 4_000.0, "{per_pair:?}");
        assert!(per_pair[1] < per_pair[0] / 4.0, "{per_pair:?}");
    }

    #[test]
    fn a_tls12_session_or_one_without_extraction_keeps_rustls_throughout() {
        let mut tls12 = ends(true);
        let (mut client, mut server) = connect(&mut tls12, TicketUse::First);
        exchange(&mut client, &mut server);
        assert!(!client.holds_keys_only() && !server.holds_keys_only());

        let mut ends = ends(false);
        let config = ends.clients.for_connection(0, TicketUse::First);
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = session(
            UnbufferedClientConnection::new(config, name).unwrap(),
            false,
        );
        let mut server = session(
            UnbufferedServerConnection::new(ends.server.clone()).unwrap(),
            false,
        );
        exchange(&mut client, &mut server);
        assert!(!client.holds_keys_only() && !server.holds_keys_only());
    }
}
