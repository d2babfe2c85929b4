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

use std::io;

use aws_lc_rs::aead::{
    Aad, Algorithm, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM, CHACHA20_POLY1305,
};
use rustls::{ConnectionTrafficSecrets, ExtractedSecrets};

/// The record header: content type, legacy version, length.
const HEADER: usize = 5;
/// Most plaintext a record carries.
const MAX_PLAINTEXT: usize = 16 * 1024;
/// Most ciphertext a TLS 1.3 record may carry (RFC 8446 section 5.2).
const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 256;
const TAG: usize = 16;
const NONCE: usize = 12;
/// Records sealed or opened with one key at most: well inside AES-GCM's
/// confidentiality limit (2^24.5 records); a connection that reaches it closes.
const MAX_RECORDS: u64 = 1 << 23;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const NEW_SESSION_TICKET: u8 = 4;
const CLOSE_NOTIFY: [u8; 2] = [1, 0];

/// The keys of both directions of a TLS 1.3 session and their sequence numbers.
pub(crate) struct RecordKeys {
    algorithm: &'static Algorithm,
    tx: Direction,
    rx: Direction,
}

/// One direction's key, IV and the sequence number of its next record.
struct Direction {
    key: [u8; 32],
    iv: [u8; NONCE],
    seq: u64,
}

/// What the received records held besides application data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// The session goes on.
    Open,
    /// The peer sent close_notify.
    PeerClosed,
}

fn tls_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {what}"))
}

impl RecordKeys {
    /// From the secrets rustls gives up at the end of a TLS 1.3 handshake.
    pub(crate) fn new(secrets: ExtractedSecrets) -> io::Result<Self> {
        let (tx_seq, tx) = secrets.tx;
        let (rx_seq, rx) = secrets.rx;
        let (algorithm, tx) = direction(tx, tx_seq)?;
        let (_, rx) = direction(rx, rx_seq)?;
        Ok(Self { algorithm, tx, rx })
    }

    /// Seals `data` as application data records onto `out`.
    pub(crate) fn seal_data(&mut self, data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        for chunk in data.chunks(MAX_PLAINTEXT) {
            self.seal(APPLICATION_DATA, chunk, out)?;
        }
        Ok(())
    }

    /// Seals a close_notify alert onto `out`.
    pub(crate) fn seal_close_notify(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.seal(ALERT, &CLOSE_NOTIFY, out)
    }

    fn seal(&mut self, content_type: u8, content: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let length = content.len() + 1 + TAG;
        let header = [APPLICATION_DATA, 3, 3, (length >> 8) as u8, length as u8];
        let start = out.len();
        out.reserve(HEADER + length);
        out.extend_from_slice(&header);
        let mut body = Vec::with_capacity(length);
        body.extend_from_slice(content);
        body.push(content_type);
        let (key, nonce) = self.next(Side::Tx)?;
        key.seal_in_place_append_tag(nonce, Aad::from(header), &mut body)
            .map_err(|_| tls_error("cannot seal a record"))?;
        out.extend_from_slice(&body);
        debug_assert_eq!(out.len() - start, HEADER + length);
        Ok(())
    }

    /// Opens every whole record at the front of `incoming` (leaving a partial one),
    /// appending application data to `plaintext`.
    pub(crate) fn open(
        &mut self,
        incoming: &mut Vec<u8>,
        plaintext: &mut Vec<u8>,
    ) -> io::Result<Received> {
        let mut used = 0;
        let mut received = Received::Open;
        while received == Received::Open {
            let Some(record) = incoming.get(used..used + HEADER) else {
                break;
            };
            let header: [u8; HEADER] = record.try_into().expect("a header is 5 bytes");
            let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if header[0] != APPLICATION_DATA || !(TAG + 1..=MAX_CIPHERTEXT).contains(&length) {
                return Err(tls_error(match header[0] {
                    CHANGE_CIPHER_SPEC => "a change_cipher_spec after the handshake",
                    APPLICATION_DATA => "a record of an impossible length",
                    _ => "an unprotected record after the handshake",
                }));
            }
            let Some(body) = incoming.get_mut(used + HEADER..used + HEADER + length) else {
                break;
            };
            let (key, nonce) = self.next(Side::Rx)?;
            let inner = key
                .open_in_place(nonce, Aad::from(header), body)
                .map_err(|_| tls_error("a record that does not decrypt (bad_record_mac)"))?;
            received = content(inner, plaintext)?;
            used += HEADER + length;
        }
        incoming.drain(..used);
        Ok(received)
    }

    /// The key and nonce for the next record of one direction.
    fn next(&mut self, side: Side) -> io::Result<(LessSafeKey, Nonce)> {
        let direction = match side {
            Side::Tx => &mut self.tx,
            Side::Rx => &mut self.rx,
        };
        if direction.seq >= MAX_RECORDS {
            return Err(tls_error("too many records under one key"));
        }
        let mut nonce = direction.iv;
        for (byte, seq) in nonce[NONCE - 8..]
            .iter_mut()
            .zip(direction.seq.to_be_bytes())
        {
            *byte ^= seq;
        }
        direction.seq += 1;
        let key_length = self.algorithm.key_len();
        let key = UnboundKey::new(self.algorithm, &direction.key[..key_length])
            .map_err(|_| tls_error("an unusable traffic key"))?;
        Ok((LessSafeKey::new(key), Nonce::assume_unique_for_key(nonce)))
    }
}

#[derive(Clone, Copy)]
enum Side {
    Tx,
    Rx,
}

/// What one decrypted record's inner plaintext says.
fn content(inner: &[u8], plaintext: &mut Vec<u8>) -> io::Result<Received> {
    let Some(end) = inner.iter().rposition(|&byte| byte != 0) else {
        return Err(tls_error("a record without a content type"));
    };
    let (content, content_type) = (&inner[..end], inner[end]);
    match content_type {
        APPLICATION_DATA => {
            plaintext.extend_from_slice(content);
            Ok(Received::Open)
        }
        ALERT if content == CLOSE_NOTIFY => Ok(Received::PeerClosed),
        ALERT => Err(tls_error("the peer sent an alert")),
        // A client may ignore a ticket; a message is never split over records here, as
        // a ticket from any server fits in one.
        HANDSHAKE if content.first() == Some(&NEW_SESSION_TICKET) => Ok(Received::Open),
        HANDSHAKE => Err(tls_error(
            "a key update or other handshake message after the handshake (not supported once parked)",
        )),
        _ => Err(tls_error("a record of an unknown content type")),
    }
}

/// A direction's algorithm and keys from rustls' form.
fn direction(
    secrets: ConnectionTrafficSecrets,
    seq: u64,
) -> io::Result<(&'static Algorithm, Direction)> {
    let (algorithm, key, iv) = match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&AES_128_GCM, key, iv),
        ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&AES_256_GCM, key, iv),
        ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (&CHACHA20_POLY1305, key, iv),
        _ => {
            return Err(tls_error(
                "a cipher suite pingfleet cannot protect records with",
            ))
        }
    };
    let mut direction = Direction {
        key: [0; 32],
        iv: iv
            .as_ref()
            .try_into()
            .map_err(|_| tls_error("an IV that is not 12 bytes"))?,
        seq,
    };
    let key = key.as_ref();
    if key.len() != algorithm.key_len() {
        return Err(tls_error("a key of the wrong length"));
    }
    direction.key[..key.len()].copy_from_slice(key);
    Ok((algorithm, direction))
}

#[cfg(test)]
mod tests {
    use rustls::crypto::cipher::{AeadKey, Iv};

    use super::*;

    fn secrets(key: u8, iv: u8) -> ConnectionTrafficSecrets {
        ConnectionTrafficSecrets::Aes256Gcm {
            key: AeadKey::from([key; 32]),
            iv: Iv::new([iv; NONCE]),
        }
    }

    /// Two ends of one session: what one seals the other opens.
    fn pair() -> (RecordKeys, RecordKeys) {
        let one = ExtractedSecrets {
            tx: (3, secrets(1, 2)),
            rx: (5, secrets(3, 4)),
        };
        let other = ExtractedSecrets {
            tx: (5, secrets(3, 4)),
            rx: (3, secrets(1, 2)),
        };
        (
            RecordKeys::new(one).unwrap(),
            RecordKeys::new(other).unwrap(),
        )
    }

    #[test]
    fn data_crosses_in_records_of_at_most_16_kib_and_arriving_a_byte_at_a_time() {
        let (mut client, mut server) = pair();
        let data: Vec<u8> = (0..40_000u32).map(|at| at as u8).collect();
        let mut wire = Vec::new();
        client.seal_data(&data, &mut wire).unwrap();
        // Three records: 16,384 + 16,384 + 7,232 bytes, each with its header, type and tag.
        assert_eq!(wire.len(), data.len() + 3 * (HEADER + 1 + TAG));
        let (mut incoming, mut plaintext) = (Vec::new(), Vec::new());
        for byte in wire {
            incoming.push(byte);
            assert_eq!(
                server.open(&mut incoming, &mut plaintext).unwrap(),
                Received::Open
            );
        }
        assert!(incoming.is_empty());
        assert_eq!(plaintext, data);
        // And back, with the other direction's sequence numbers.
        let mut wire = Vec::new();
        server.seal_data(b"HTTP/1.1 200 OK", &mut wire).unwrap();
        let mut plaintext = Vec::new();
        client.open(&mut wire, &mut plaintext).unwrap();
        assert_eq!(plaintext, b"HTTP/1.1 200 OK");
    }

    #[test]
    fn a_close_notify_closes_and_a_changed_byte_or_a_replayed_record_is_refused() {
        let (mut client, mut server) = pair();
        let mut wire = Vec::new();
        client.seal_close_notify(&mut wire).unwrap();
        let mut plaintext = Vec::new();
        assert_eq!(
            server.open(&mut wire, &mut plaintext).unwrap(),
            Received::PeerClosed
        );

        let (mut client, mut server) = pair();
        let mut wire = Vec::new();
        client.seal_data(b"ping", &mut wire).unwrap();
        let mut changed = wire.clone();
        changed[HEADER + 1] ^= 1;
        let err = server.open(&mut changed, &mut plaintext).unwrap_err();
        assert!(err.to_string().contains("bad_record_mac"), "{err}");

        let (mut client, mut server) = pair();
        let mut wire = Vec::new();
        client.seal_data(b"ping", &mut wire).unwrap();
        let mut replayed = wire.clone();
        server.open(&mut wire, &mut plaintext).unwrap();
        assert!(server.open(&mut replayed, &mut plaintext).is_err());
    }

    #[test]
    fn a_ticket_is_ignored_and_a_key_update_or_an_alert_ends_the_session() {
        let (mut server, mut client) = pair();
        let mut wire = Vec::new();
        server
            .seal(HANDSHAKE, &[NEW_SESSION_TICKET, 0, 0, 1, 0], &mut wire)
            .unwrap();
        server.seal_data(b"after", &mut wire).unwrap();
        let mut plaintext = Vec::new();
        assert_eq!(
            client.open(&mut wire, &mut plaintext).unwrap(),
            Received::Open
        );
        assert_eq!(plaintext, b"after");

        const KEY_UPDATE: u8 = 24;
        for (content_type, content) in [
            (HANDSHAKE, &[KEY_UPDATE, 0, 0, 1, 1][..]),
            (ALERT, &[2, 40]),
        ] {
            let (mut server, mut client) = pair();
            let mut wire = Vec::new();
            server.seal(content_type, content, &mut wire).unwrap();
            assert!(client.open(&mut wire, &mut plaintext).is_err());
        }
    }

    #[test]
    fn a_record_of_an_impossible_length_or_in_the_clear_is_refused_before_decrypting() {
        let (_, mut server) = pair();
        let mut plaintext = Vec::new();
        for header in [
            [APPLICATION_DATA, 3, 3, 0x48, 0x01],
            [APPLICATION_DATA, 3, 3, 0, 3],
            [ALERT, 3, 3, 0, 2],
        ] {
            let mut wire = header.to_vec();
            let err = server.open(&mut wire, &mut plaintext).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        }
    }
}
