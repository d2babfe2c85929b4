//! Tests of the record layer: suites, length limits, sequence limits, failure.

use rustls::crypto::cipher::{AeadKey, Iv};

use super::*;

const SUITES: [Suite; 3] = [Suite::Aes128Gcm, Suite::Aes256Gcm, Suite::Chacha20Poly1305];

fn direction(key: u8, iv: u8, seq: u64) -> Direction {
    Direction {
        key: [key; KEY],
        iv: [iv; NONCE],
        seq,
    }
}

/// Two ends of one session of `suite`, the first sending from `seq`, the second from 5.
fn pair_from(suite: Suite, seq: u64) -> (RecordKeys, RecordKeys) {
    let keys = |tx, rx| RecordKeys {
        suite,
        failed: None,
        tx,
        rx,
    };
    (
        keys(direction(1, 2, seq), direction(3, 4, 5)),
        keys(direction(3, 4, 5), direction(1, 2, seq)),
    )
}

fn pair() -> (RecordKeys, RecordKeys) {
    pair_from(Suite::Aes256Gcm, 3)
}

/// Seals `inner` as one record, whatever it holds.
fn sealed(keys: &mut RecordKeys, inner: Vec<u8>) -> Vec<u8> {
    let mut wire = Vec::new();
    keys.seal_inner(inner, &mut wire).unwrap();
    wire
}

#[test]
fn every_suite_seals_and_opens_both_ways_and_with_the_keys_rustls_gives() {
    for suite in SUITES {
        let (mut client, mut server) = pair_from(suite, 0);
        let mut wire = Vec::new();
        client
            .seal_data(b"POST /Microsoft-Server-ActiveSync", &mut wire)
            .unwrap();
        let mut plaintext = Vec::new();
        server.open(&mut wire, &mut plaintext).unwrap();
        assert_eq!(plaintext, b"POST /Microsoft-Server-ActiveSync", "{suite:?}");
        server.seal_data(b"HTTP/1.1 200 OK", &mut wire).unwrap();
        let mut plaintext = Vec::new();
        client.open(&mut wire, &mut plaintext).unwrap();
        assert_eq!(plaintext, b"HTTP/1.1 200 OK", "{suite:?}");
    }
    // rustls' form: 32-byte keys make AES-256-GCM and ChaCha20-Poly1305 keys, and not
    // AES-128-GCM ones.
    let secrets = |make: fn(AeadKey, Iv) -> ConnectionTrafficSecrets| ExtractedSecrets {
        tx: (0, make(AeadKey::from([1; KEY]), Iv::new([2; NONCE]))),
        rx: (0, make(AeadKey::from([3; KEY]), Iv::new([4; NONCE]))),
    };
    let aes256 = |key, iv| ConnectionTrafficSecrets::Aes256Gcm { key, iv };
    let chacha = |key, iv| ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv };
    let aes128 = |key, iv| ConnectionTrafficSecrets::Aes128Gcm { key, iv };
    let keys = RecordKeys::new(secrets(aes256)).unwrap();
    assert_eq!(
        (keys.suite, keys.tx.key, keys.rx.iv),
        (Suite::Aes256Gcm, [1; KEY], [4; NONCE])
    );
    assert_eq!(
        RecordKeys::new(secrets(chacha)).unwrap().suite,
        Suite::Chacha20Poly1305
    );
    assert_eq!(
        RecordKeys::new(secrets(aes128)).err(),
        Some(RecordError::BadKeyMaterial)
    );
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
            server.open(&mut incoming, &mut plaintext),
            Ok(Received::Open)
        );
    }
    assert!(incoming.is_empty());
    assert_eq!(plaintext, data);
}

#[test]
fn a_close_notify_closes_and_a_changed_byte_or_a_replayed_record_is_refused() {
    let (mut client, mut server) = pair();
    let mut wire = Vec::new();
    client.seal_close_notify(&mut wire).unwrap();
    let mut plaintext = Vec::new();
    assert_eq!(
        server.open(&mut wire, &mut plaintext),
        Ok(Received::PeerClosed)
    );

    let (mut client, mut server) = pair();
    let mut wire = Vec::new();
    client.seal_data(b"ping", &mut wire).unwrap();
    let mut changed = wire.clone();
    changed[HEADER + 1] ^= 1;
    let err = server.open(&mut changed, &mut plaintext).unwrap_err();
    assert_eq!(err, RecordError::BadRecordMac);
    assert!(io::Error::from(err).to_string().contains("bad_record_mac"));

    let (mut client, mut server) = pair();
    let mut wire = Vec::new();
    client.seal_data(b"ping", &mut wire).unwrap();
    let mut replayed = wire.clone();
    server.open(&mut wire, &mut plaintext).unwrap();
    assert_eq!(
        server.open(&mut replayed, &mut plaintext),
        Err(RecordError::BadRecordMac)
    );
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
    assert_eq!(client.open(&mut wire, &mut plaintext), Ok(Received::Open));
    assert_eq!(plaintext, b"after");

    const KEY_UPDATE: u8 = 24;
    for (content_type, content, expected) in [
        (
            HANDSHAKE,
            &[KEY_UPDATE, 0, 0, 1, 1][..],
            RecordError::PostHandshake(KEY_UPDATE),
        ),
        (ALERT, &[2, 40], RecordError::PeerAlert(40)),
        (ALERT, &[2], RecordError::MalformedAlert),
        (
            CHANGE_CIPHER_SPEC,
            &[1],
            RecordError::UnknownContentType(CHANGE_CIPHER_SPEC),
        ),
    ] {
        let (mut server, mut client) = pair();
        let mut wire = Vec::new();
        server.seal(content_type, content, &mut wire).unwrap();
        assert_eq!(client.open(&mut wire, &mut plaintext), Err(expected));
    }
}

#[test]
fn a_ciphertext_of_16_640_bytes_is_opened_and_of_16_641_refused_before_decrypting() {
    let header = |content_type: u8, length: usize| {
        let [high, low] = u16::try_from(length).unwrap().to_be_bytes();
        vec![content_type, 3, 3, high, low]
    };
    let mut plaintext = Vec::new();
    // The longest allowed: the record is awaited, then decrypted (and its forged tag
    // refused).
    let (_, mut server) = pair();
    let mut incoming = header(APPLICATION_DATA, MAX_CIPHERTEXT);
    assert_eq!(MAX_CIPHERTEXT, 16_640);
    assert_eq!(
        server.open(&mut incoming, &mut plaintext),
        Ok(Received::Open)
    );
    assert_eq!(incoming.len(), HEADER);
    incoming.resize(HEADER + MAX_CIPHERTEXT, 0);
    assert_eq!(
        server.open(&mut incoming, &mut plaintext),
        Err(RecordError::BadRecordMac)
    );
    for (incoming, expected) in [
        (
            header(APPLICATION_DATA, MAX_CIPHERTEXT + 1),
            RecordError::RecordOverflow,
        ),
        (header(APPLICATION_DATA, TAG - 1), RecordError::BadRecordMac),
        (header(CHANGE_CIPHER_SPEC, 1), RecordError::ChangeCipherSpec),
        (header(ALERT, 2), RecordError::Unprotected(ALERT)),
    ] {
        let (_, mut server) = pair();
        let mut incoming = incoming;
        assert_eq!(server.open(&mut incoming, &mut plaintext), Err(expected));
        // Refused on the header alone: no sequence number was spent on it.
        assert_eq!(server.rx.seq, 3);
    }
    assert!(plaintext.is_empty());
}

#[test]
fn an_inner_plaintext_over_2_pow_14_plus_1_is_refused_and_padding_is_stripped() {
    let full = |padding: usize| {
        let mut inner = vec![7; MAX_PLAINTEXT];
        inner.push(APPLICATION_DATA);
        inner.resize(inner.len() + padding, 0);
        inner
    };
    let (mut client, mut server) = pair();
    let mut plaintext = Vec::new();
    let mut wire = sealed(&mut client, full(0));
    assert_eq!(server.open(&mut wire, &mut plaintext), Ok(Received::Open));
    assert_eq!(plaintext, [7; MAX_PLAINTEXT]);

    // Content that fits, padded past the limit: refused before the padding is stripped.
    let mut short = b"ping".to_vec();
    short.push(APPLICATION_DATA);
    short.resize(MAX_INNER_PLAINTEXT + 1, 0);
    for inner in [full(1), short] {
        let (mut client, mut server) = pair();
        let mut wire = sealed(&mut client, inner);
        assert_eq!(
            server.open(&mut wire, &mut Vec::new()),
            Err(RecordError::RecordOverflow)
        );
    }

    let (mut client, mut server) = pair();
    let mut plaintext = Vec::new();
    let mut wire = sealed(
        &mut client,
        [&b"ping"[..], &[APPLICATION_DATA], &[0; 200]].concat(),
    );
    assert_eq!(server.open(&mut wire, &mut plaintext), Ok(Received::Open));
    assert_eq!(plaintext, b"ping");
}

#[test]
fn an_inner_plaintext_of_zeros_alone_is_an_unexpected_message() {
    for inner in [vec![0; 40], Vec::new()] {
        let (mut client, mut server) = pair();
        let mut wire = sealed(&mut client, inner);
        let err = server.open(&mut wire, &mut Vec::new()).unwrap_err();
        assert_eq!(err, RecordError::NoContentType);
        assert!(err.to_string().contains("unexpected_message"));
    }
}

#[test]
fn the_suites_record_limit_holds_both_ways_and_a_refusal_writes_nothing() {
    for suite in SUITES {
        let limit = suite.record_limit();
        assert_eq!(
            limit,
            suite.rustls().tls13().unwrap().common.confidentiality_limit
        );
        // Sending: one record is left; two are refused whole, with `out` untouched.
        let (mut client, mut server) = pair_from(suite, limit - 1);
        let mut out = b"queued".to_vec();
        let two_records = vec![1; MAX_PLAINTEXT + 1];
        assert_eq!(
            client.seal_data(&two_records, &mut out),
            Err(RecordError::SequenceLimit),
            "{suite:?}"
        );
        assert_eq!(out, b"queued");
        // One is sealed, and opened by a peer at the same point; then both ends are full.
        let (mut client, _) = pair_from(suite, limit - 1);
        let mut wire = Vec::new();
        client.seal_data(b"last", &mut wire).unwrap();
        let mut plaintext = Vec::new();
        server.open(&mut wire, &mut plaintext).unwrap();
        assert_eq!(plaintext, b"last");
        let mut out = b"queued".to_vec();
        assert_eq!(
            client.seal_close_notify(&mut out),
            Err(RecordError::SequenceLimit)
        );
        assert_eq!(out, b"queued");
        // Receiving: the record after the last is refused before it is decrypted.
        let (mut other_client, _) = pair_from(suite, limit - 1);
        let mut wire = Vec::new();
        other_client.seal_data(b"one more", &mut wire).unwrap();
        assert_eq!(
            server.open(&mut wire, &mut plaintext),
            Err(RecordError::SequenceLimit)
        );
        assert_eq!(plaintext, b"last");
        assert!(wire.is_empty());
    }
}

#[test]
fn a_tag_failure_in_the_second_of_two_records_keeps_nothing_of_the_first() {
    let (mut client, mut server) = pair();
    let mut wire = Vec::new();
    client.seal_data(b"first", &mut wire).unwrap();
    let second = wire.len();
    client.seal_data(b"second", &mut wire).unwrap();
    wire[second + HEADER] ^= 1;
    let mut plaintext = b"read before".to_vec();
    assert_eq!(
        server.open(&mut wire, &mut plaintext),
        Err(RecordError::BadRecordMac)
    );
    assert_eq!(plaintext, b"read before");
    assert!(wire.is_empty());
}

#[test]
fn after_an_error_every_call_fails_alike_and_the_keys_are_wiped() {
    let (mut client, mut server) = pair();
    let mut wire = Vec::new();
    client.seal_data(b"ping", &mut wire).unwrap();
    let good = wire.clone();
    wire[HEADER] ^= 1;
    let mut plaintext = Vec::new();
    assert_eq!(
        server.open(&mut wire, &mut plaintext),
        Err(RecordError::BadRecordMac)
    );
    assert_eq!((server.tx.key, server.rx.key), ([0; KEY], [0; KEY]));
    assert_eq!((server.tx.iv, server.rx.iv), ([0; NONCE], [0; NONCE]));
    // The intact record would have opened: it is the session that is over.
    let mut wire = good;
    assert_eq!(
        server.open(&mut wire, &mut plaintext),
        Err(RecordError::BadRecordMac)
    );
    assert!(plaintext.is_empty());
    let mut out = b"queued".to_vec();
    assert_eq!(
        server.seal_data(b"pong", &mut out),
        Err(RecordError::BadRecordMac)
    );
    assert_eq!(
        server.seal_close_notify(&mut out),
        Err(RecordError::BadRecordMac)
    );
    assert_eq!(out, b"queued");
    // A failed seal ends the session too.
    let mut out = Vec::new();
    client.tx.seq = client.suite.record_limit();
    assert_eq!(
        client.seal_data(b"x", &mut out),
        Err(RecordError::SequenceLimit)
    );
    client.tx.seq = 0;
    assert_eq!(
        client.seal_data(b"x", &mut out),
        Err(RecordError::SequenceLimit)
    );
    assert!(out.is_empty());
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn rfc8448_direction(key: &str, iv: &str, seq: u64) -> Direction {
    let mut direction = direction(0, 0, seq);
    let key = hex(key);
    direction.key[..key.len()].copy_from_slice(&key);
    direction.iv = hex(iv).try_into().unwrap();
    direction
}

/// RFC 8448 section 3 (a simple 1-RTT handshake, TLS_AES_128_GCM_SHA256): the client's
/// first application data record, and the server's (its second, after a ticket).
#[test]
fn the_application_data_records_of_rfc_8448_are_sealed_and_opened_byte_for_byte() {
    let mut client = RecordKeys {
        suite: Suite::Aes128Gcm,
        failed: None,
        tx: rfc8448_direction(
            "17422dda596ed5d9acd890e3c63f5051",
            "5b78923dee08579033e523d9",
            0,
        ),
        rx: rfc8448_direction(
            "9f02283b6c9c07efc26bb9f2ac92e356",
            "cf782b88dd83549aadf1e984",
            1,
        ),
    };
    let payload: Vec<u8> = (0..0x32).collect();
    let mut wire = Vec::new();
    client.seal_data(&payload, &mut wire).unwrap();
    assert_eq!(
        wire,
        hex(
            "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea 42
             f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97
             4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4"
        )
    );
    let mut incoming = hex(
        "17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25
         d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b
         f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d",
    );
    let mut plaintext = Vec::new();
    assert_eq!(
        client.open(&mut incoming, &mut plaintext),
        Ok(Received::Open)
    );
    assert_eq!(plaintext, payload);
}
