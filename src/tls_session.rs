//! A TLS session on rustls' unbuffered API with buffers we own, sans-IO: the caller
//! moves received bytes in and sent bytes out. Each buffer is freed the moment it is
//! empty, so an idle connection (a parked Ping, on either side) holds the session state
//! and no buffer. The server's lean engine and the device fleet both use it.

use std::io;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};

/// The two unbuffered connection types, seen alike.
pub trait Unbuffered {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
    fn handshaking(&self) -> bool;
}

impl Unbuffered for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
    fn handshaking(&self) -> bool {
        self.is_handshaking()
    }
}

impl Unbuffered for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
    fn handshaking(&self) -> bool {
        self.is_handshaking()
    }
}

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
    conn: C,
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

fn tls_error(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

impl<C: Unbuffered> TlsSession<C> {
    pub fn new(conn: C) -> Self {
        Self {
            conn,
            incoming: Vec::new(),
            plaintext: Vec::new(),
            plaintext_pos: 0,
            outgoing: Vec::new(),
            outgoing_pos: 0,
            peer_closed: false,
            closed: false,
        }
    }

    /// The rustls connection (what kind of handshake it made, and so on).
    pub fn connection(&self) -> &C {
        &self.conn
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.handshaking()
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
        self.incoming.extend_from_slice(bytes);
    }

    /// Encrypted bytes waiting to be sent.
    pub fn outgoing(&self) -> &[u8] {
        &self.outgoing[self.outgoing_pos..]
    }

    /// Marks `count` outgoing bytes as sent; frees the buffer once all are.
    pub fn sent(&mut self, count: usize) {
        self.outgoing_pos += count;
        if self.outgoing_pos >= self.outgoing.len() {
            self.outgoing = Vec::new();
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
            self.plaintext = Vec::new();
            self.plaintext_pos = 0;
        }
        take
    }

    /// Takes all decrypted data at once.
    pub fn take_plaintext(&mut self) -> Vec<u8> {
        let mut data = std::mem::take(&mut self.plaintext);
        data.drain(..self.plaintext_pos);
        self.plaintext_pos = 0;
        data
    }

    /// Processes received records until the state machine needs something from us.
    pub fn step(&mut self, want: Want<'_>) -> io::Result<Step> {
        loop {
            let UnbufferedStatus { mut discard, state } = self.conn.process(&mut self.incoming);
            let outcome = match state.map_err(tls_error)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(tls_error)?;
                        discard += record.discard;
                        self.plaintext.extend_from_slice(record.payload);
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
                ConnectionState::BlockedHandshake => Some(Step::NeedInput),
                ConnectionState::WriteTraffic(mut traffic) => Some(match want {
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
                }),
                ConnectionState::PeerClosed => {
                    self.peer_closed = true;
                    None
                }
                ConnectionState::Closed => {
                    self.peer_closed = true;
                    self.closed = true;
                    Some(Step::Closed)
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
