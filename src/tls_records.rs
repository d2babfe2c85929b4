//! TLS 1.3 records after the handshake, keeping nothing but the keys.
//!
//! Once rustls has completed a handshake (and, on a client, taken the server's session
//! tickets), a [`TlsSession`](crate::tls_session::TlsSession) hands the traffic secrets
//! here and frees rustls' connection state (about 3.5 KB a side with its two AEAD
//! contexts; these keys are under 120 bytes). Each record is sealed or opened with an
//! AEAD key made for it and freed after it: a parked connection exchanges a handful of
//! records an hour, and making a key costs about a microsecond.
//!
//! This is the record protection of RFC 8446 section 5 (the same work kTLS does in the
//! kernel): the nonce is the IV XOR the record's sequence number, the additional data
//! the record's header, the inner plaintext the content, its type, and zero padding.
//! Handshake messages after the handshake are a new session ticket (a client may ignore
//! one) or a key update, which this layer does not do: a peer asking for one gets a
//! TLS error and the connection closes (phones and servers update keys after
//! gigabytes, not after the few kilobytes of a Ping session).
//!
//! What this layer owns besides sealing and opening:
//! - the limits of section 5: a ciphertext over 2^14 + 256 bytes or an inner plaintext
//!   over 2^14 + 1 is a `record_overflow`, refused before it is acted on;
//! - the number of records one key may protect, in either direction: the confidentiality
//!   limit of rustls' own cipher suite for these keys;
//! - failure: an error ends the session. Every later call returns the same error, the
//!   keys are wiped, and a failed call leaves behind neither a partly written record nor
//!   any decrypted byte of the call;
//! - the keys' memory: it is zeroed when the keys are dropped.

use std::io;

use aws_lc_rs::aead::{
    Aad, Algorithm, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM, CHACHA20_POLY1305,
};
use rustls::crypto::aws_lc_rs::cipher_suite::{
    TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256,
};
use rustls::{ConnectionTrafficSecrets, ExtractedSecrets, SupportedCipherSuite};
use zeroize::Zeroize;

/// The record header: content type, legacy version, length.
const HEADER: usize = 5;
/// Most content a record carries (RFC 8446 section 5.1).
const MAX_PLAINTEXT: usize = 1 << 14;
/// Most inner plaintext a record carries: content, its type and padding (section 5.4).
const MAX_INNER_PLAINTEXT: usize = MAX_PLAINTEXT + 1;
/// Most ciphertext a TLS 1.3 record may carry (section 5.2).
const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 256;
const TAG: usize = 16;
const NONCE: usize = 12;
/// The longest key of the suites below (AES-256-GCM's and ChaCha20-Poly1305's).
const KEY: usize = 32;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const NEW_SESSION_TICKET: u8 = 4;
const CLOSE_NOTIFY: [u8; 2] = [1, 0];

/// Why a session's records cannot go on; the TLS alert it amounts to ends each message.
/// Public for the fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("TLS: a record longer than TLS 1.3 allows (record_overflow)")]
    RecordOverflow,
    #[error("TLS: a record that does not decrypt (bad_record_mac)")]
    BadRecordMac,
    #[error("TLS: a change_cipher_spec after the handshake (unexpected_message)")]
    ChangeCipherSpec,
    #[error("TLS: an unprotected record of type {0} after the handshake (unexpected_message)")]
    Unprotected(u8),
    #[error("TLS: a record without a content type (unexpected_message)")]
    NoContentType,
    #[error("TLS: a record of the unknown content type {0} (unexpected_message)")]
    UnknownContentType(u8),
    #[error(
        "TLS: handshake message {0} after the handshake, a key update or other message not \
         supported once parked (unexpected_message)"
    )]
    PostHandshake(u8),
    #[error("TLS: the peer sent alert {0}")]
    PeerAlert(u8),
    #[error("TLS: a malformed alert (decode_error)")]
    MalformedAlert,
    #[error("TLS: as many records under one key as its cipher suite allows")]
    SequenceLimit,
    #[error("TLS: a cipher suite pingfleet cannot protect records with")]
    UnsupportedSuite,
    #[error("TLS: a traffic key or IV of the wrong length")]
    BadKeyMaterial,
    #[error("TLS: cannot seal a record (internal_error)")]
    SealFailed,
}

impl From<RecordError> for io::Error {
    fn from(err: RecordError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, err)
    }
}

/// The keys of both directions of a TLS 1.3 session and their sequence numbers.
pub(crate) struct RecordKeys {
    suite: Suite,
    /// The error that ended the session: every later call returns it.
    failed: Option<RecordError>,
    tx: Direction,
    rx: Direction,
}

/// One direction's key, IV and the sequence number of its next record.
struct Direction {
    key: [u8; KEY],
    iv: [u8; NONCE],
    seq: u64,
}

impl Direction {
    fn wipe(&mut self) {
        self.key.zeroize();
        self.iv.zeroize();
    }
}

impl Drop for Direction {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// The TLS 1.3 cipher suites these keys can be of. In TLS 1.3 the AEAD names the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suite {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

impl Suite {
    fn algorithm(self) -> &'static Algorithm {
        match self {
            Self::Aes128Gcm => &AES_128_GCM,
            Self::Aes256Gcm => &AES_256_GCM,
            Self::Chacha20Poly1305 => &CHACHA20_POLY1305,
        }
    }

    /// rustls' own suite, which holds its limits.
    fn rustls(self) -> SupportedCipherSuite {
        match self {
            Self::Aes128Gcm => TLS13_AES_128_GCM_SHA256,
            Self::Aes256Gcm => TLS13_AES_256_GCM_SHA384,
            Self::Chacha20Poly1305 => TLS13_CHACHA20_POLY1305_SHA256,
        }
    }

    /// Records one key may protect: the suite's confidentiality limit (none if rustls
    /// ever gave these AEADs no TLS 1.3 suite).
    fn record_limit(self) -> u64 {
        self.rustls()
            .tls13()
            .map_or(0, |suite| suite.common.confidentiality_limit)
    }
}

/// What the received records held besides application data. Public for the fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// The session goes on.
    Open,
    /// The peer sent close_notify.
    PeerClosed,
}

#[derive(Clone, Copy)]
enum Side {
    Tx,
    Rx,
}

impl RecordKeys {
    /// From the secrets rustls gives up at the end of a TLS 1.3 handshake.
    pub(crate) fn new(secrets: ExtractedSecrets) -> Result<Self, RecordError> {
        let (tx_seq, tx) = secrets.tx;
        let (rx_seq, rx) = secrets.rx;
        let (suite, tx) = direction(tx, tx_seq)?;
        let (_, rx) = direction(rx, rx_seq)?;
        Ok(Self {
            suite,
            failed: None,
            tx,
            rx,
        })
    }

    /// Seals `data` as application data records onto `out`; on an error, `out` is as
    /// it was.
    pub(crate) fn seal_data(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        let records = data.len().div_ceil(MAX_PLAINTEXT);
        self.sealing(out, |keys, out| {
            keys.room_for(records)?;
            data.chunks(MAX_PLAINTEXT)
                .try_for_each(|chunk| keys.seal(APPLICATION_DATA, chunk, out))
        })
    }

    /// Seals a close_notify alert onto `out`; on an error, `out` is as it was.
    pub(crate) fn seal_close_notify(&mut self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        self.sealing(out, |keys, out| keys.seal(ALERT, &CLOSE_NOTIFY, out))
    }

    /// Runs `seal` on a session that has not failed; on an error, truncates `out` to
    /// where it was and ends the session.
    fn sealing(
        &mut self,
        out: &mut Vec<u8>,
        seal: impl FnOnce(&mut Self, &mut Vec<u8>) -> Result<(), RecordError>,
    ) -> Result<(), RecordError> {
        self.usable()?;
        let start = out.len();
        let result = seal(self, out);
        if result.is_err() {
            out.truncate(start);
        }
        self.settle(result)
    }

    /// Whether `records` more records may be sealed under the sending key.
    fn room_for(&self, records: usize) -> Result<(), RecordError> {
        let left = self.suite.record_limit().saturating_sub(self.tx.seq);
        match u64::try_from(records) {
            Ok(records) if records <= left => Ok(()),
            _ => Err(RecordError::SequenceLimit),
        }
    }

    fn seal(
        &mut self,
        content_type: u8,
        content: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        debug_assert!(content.len() <= MAX_PLAINTEXT);
        let mut inner = Vec::with_capacity(content.len() + 1 + TAG);
        inner.extend_from_slice(content);
        inner.push(content_type);
        self.seal_inner(inner, out)
    }

    /// Seals one inner plaintext (content, type, padding) as a record onto `out`,
    /// writing nothing unless it succeeds.
    fn seal_inner(&mut self, mut body: Vec<u8>, out: &mut Vec<u8>) -> Result<(), RecordError> {
        let length = body.len() + TAG;
        let header = [APPLICATION_DATA, 3, 3, (length >> 8) as u8, length as u8];
        let (key, nonce) = self.next(Side::Tx)?;
        if key
            .seal_in_place_append_tag(nonce, Aad::from(header), &mut body)
            .is_err()
        {
            body.zeroize();
            return Err(RecordError::SealFailed);
        }
        out.reserve(HEADER + length);
        out.extend_from_slice(&header);
        out.extend_from_slice(&body);
        Ok(())
    }

    /// Opens every whole record at the front of `incoming` (leaving a partial one),
    /// appending application data to `plaintext`. On an error, `plaintext` is as it was,
    /// `incoming` is wiped and emptied, and the session is over.
    pub(crate) fn open(
        &mut self,
        incoming: &mut Vec<u8>,
        plaintext: &mut Vec<u8>,
    ) -> Result<Received, RecordError> {
        self.usable()?;
        let start = plaintext.len();
        let result = self.open_records(incoming, plaintext);
        if result.is_err() {
            plaintext[start..].zeroize();
            plaintext.truncate(start);
            incoming.zeroize();
        }
        self.settle(result)
    }

    fn open_records(
        &mut self,
        incoming: &mut Vec<u8>,
        plaintext: &mut Vec<u8>,
    ) -> Result<Received, RecordError> {
        let mut used = 0;
        let mut received = Received::Open;
        while received == Received::Open {
            let Some(header) = incoming.get(used..used + HEADER) else {
                break;
            };
            let header: [u8; HEADER] = header.try_into().expect("a header is 5 bytes");
            let length = protected_length(header)?;
            let Some(body) = incoming.get_mut(used + HEADER..used + HEADER + length) else {
                break;
            };
            let (key, nonce) = self.next(Side::Rx)?;
            let inner = key
                .open_in_place(nonce, Aad::from(header), body)
                .map_err(|_| RecordError::BadRecordMac)?;
            received = content(inner, plaintext)?;
            used += HEADER + length;
        }
        // The records were decrypted where they lay: no copy may outlive them.
        incoming[..used].zeroize();
        incoming.drain(..used);
        Ok(received)
    }

    /// The error that ended the session, if one did.
    fn usable(&self) -> Result<(), RecordError> {
        self.failed.map_or(Ok(()), Err)
    }

    /// Ends the session on an error: the error is kept for every later call, and the
    /// keys are wiped.
    fn settle<T>(&mut self, result: Result<T, RecordError>) -> Result<T, RecordError> {
        if let Err(err) = &result {
            self.failed = Some(*err);
            self.tx.wipe();
            self.rx.wipe();
        }
        result
    }

    /// The key and nonce for the next record of one direction.
    fn next(&mut self, side: Side) -> Result<(LessSafeKey, Nonce), RecordError> {
        let limit = self.suite.record_limit();
        let direction = match side {
            Side::Tx => &mut self.tx,
            Side::Rx => &mut self.rx,
        };
        if direction.seq >= limit {
            return Err(RecordError::SequenceLimit);
        }
        let mut nonce = direction.iv;
        for (byte, seq) in nonce[NONCE - 8..]
            .iter_mut()
            .zip(direction.seq.to_be_bytes())
        {
            *byte ^= seq;
        }
        direction.seq += 1;
        let algorithm = self.suite.algorithm();
        let key = UnboundKey::new(algorithm, &direction.key[..algorithm.key_len()])
            .map_err(|_| RecordError::BadKeyMaterial)?;
        Ok((LessSafeKey::new(key), Nonce::assume_unique_for_key(nonce)))
    }
}

/// The length a protected record's header announces, if the record may be opened.
fn protected_length(header: [u8; HEADER]) -> Result<usize, RecordError> {
    let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
    match header[0] {
        APPLICATION_DATA if length > MAX_CIPHERTEXT => Err(RecordError::RecordOverflow),
        // Too short to hold a tag: it cannot be authenticated.
        APPLICATION_DATA if length < TAG => Err(RecordError::BadRecordMac),
        APPLICATION_DATA => Ok(length),
        CHANGE_CIPHER_SPEC => Err(RecordError::ChangeCipherSpec),
        other => Err(RecordError::Unprotected(other)),
    }
}

/// What one decrypted record's inner plaintext says.
fn content(inner: &[u8], plaintext: &mut Vec<u8>) -> Result<Received, RecordError> {
    if inner.len() > MAX_INNER_PLAINTEXT {
        return Err(RecordError::RecordOverflow);
    }
    let Some(end) = inner.iter().rposition(|&byte| byte != 0) else {
        return Err(RecordError::NoContentType);
    };
    match (inner[end], &inner[..end]) {
        (APPLICATION_DATA, content) => {
            plaintext.extend_from_slice(content);
            Ok(Received::Open)
        }
        (ALERT, content) if content == CLOSE_NOTIFY => Ok(Received::PeerClosed),
        (ALERT, &[_, description]) => Err(RecordError::PeerAlert(description)),
        (ALERT, _) => Err(RecordError::MalformedAlert),
        // A client may ignore a ticket; a message is never split over records here, as
        // a ticket from any server fits in one.
        (HANDSHAKE, [NEW_SESSION_TICKET, ..]) => Ok(Received::Open),
        (HANDSHAKE, content) => Err(RecordError::PostHandshake(
            content.first().copied().unwrap_or_default(),
        )),
        (other, _) => Err(RecordError::UnknownContentType(other)),
    }
}

/// A direction's suite and keys from rustls' form.
fn direction(
    secrets: ConnectionTrafficSecrets,
    seq: u64,
) -> Result<(Suite, Direction), RecordError> {
    let (suite, key, iv) = match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (Suite::Aes128Gcm, key, iv),
        ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (Suite::Aes256Gcm, key, iv),
        ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
            (Suite::Chacha20Poly1305, key, iv)
        }
        _ => return Err(RecordError::UnsupportedSuite),
    };
    let key = key.as_ref();
    let (Ok(iv), true) = (
        iv.as_ref().try_into(),
        key.len() == suite.algorithm().key_len(),
    ) else {
        return Err(RecordError::BadKeyMaterial);
    };
    let mut direction = Direction {
        key: [0; KEY],
        iv,
        seq,
    };
    direction.key[..key.len()].copy_from_slice(key);
    Ok((suite, direction))
}

pub mod fuzzing;
#[cfg(test)]
mod tests;
