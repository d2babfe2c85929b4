//! Fuzzes the TLS 1.3 record layer's `open`. The first byte picks the cipher suite, the
//! second where the rest is split into two reads. Properties: no panic; a call returns
//! at most 2^14 bytes (and no more than the ciphertext minus header, type and tag) per
//! record it consumed; after the first error every later call returns the same error,
//! and no failing call returns plaintext; records the peer seals after the fuzz bytes
//! open to what was sealed whenever the fuzz bytes left the session clean.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pingfleet::tls_records::fuzzing::End;
use pingfleet::tls_records::RecordError;

/// Most content a record carries (RFC 8446 section 5.1).
const MAX_PLAINTEXT: usize = 1 << 14;
/// A record's header, its inner content type and its AEAD tag.
const OVERHEAD: usize = 5 + 1 + 16;
/// What the opener's plaintext buffer already holds: a call must leave it alone.
const BEFORE: &[u8] = b"earlier";

/// The opener and what the calls so far have told.
struct Opener {
    end: End,
    incoming: Vec<u8>,
    failed: Option<RecordError>,
    /// Records opened, so the peer can seal the next one under the right number.
    records: usize,
}

impl Opener {
    /// Appends `bytes` to what was received and opens, checking the properties.
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.incoming.extend_from_slice(bytes);
        let received = self.incoming.clone();
        let mut plaintext = BEFORE.to_vec();
        let result = self.end.open(&mut self.incoming, &mut plaintext);
        assert_eq!(&plaintext[..BEFORE.len()], BEFORE);
        let opened = plaintext.split_off(BEFORE.len());
        match (self.failed, result) {
            (Some(first), result) => {
                assert_eq!(result, Err(first));
                assert!(opened.is_empty());
            }
            (None, Err(err)) => {
                self.failed = Some(err);
                assert!(opened.is_empty(), "{err}: {} bytes", opened.len());
                assert!(self.incoming.is_empty());
            }
            (None, Ok(_)) => {
                let consumed = received.len() - self.incoming.len();
                assert_eq!(self.incoming, received[consumed..]);
                let lengths = record_lengths(&received[..consumed]);
                let most: usize = lengths
                    .iter()
                    .map(|length| MAX_PLAINTEXT.min(length - OVERHEAD))
                    .sum();
                assert!(opened.len() <= most, "{} > {most}", opened.len());
                self.records += lengths.len();
            }
        }
        opened
    }
}

/// The length of each whole record in `records`, header included.
fn record_lengths(mut records: &[u8]) -> Vec<usize> {
    let mut lengths = Vec::new();
    while let [_, _, _, high, low, ..] = records {
        let length = 5 + usize::from(u16::from_be_bytes([*high, *low]));
        assert!(length <= records.len(), "a partial record was consumed");
        assert!(
            length >= OVERHEAD,
            "a record too short for a tag was opened"
        );
        lengths.push(length);
        records = &records[length..];
    }
    assert!(records.is_empty(), "a partial header was consumed");
    lengths
}

fuzz_target!(|data: &[u8]| {
    let [suite, split, rest @ ..] = data else {
        return;
    };
    let (mut peer, end) = End::pair(*suite);
    let mut opener = Opener {
        end,
        incoming: Vec::new(),
        failed: None,
        records: 0,
    };
    let (first, second) = rest.split_at(usize::from(*split).min(rest.len()));
    opener.feed(first);
    opener.feed(second);

    // The peer catches up with the records opened, then seals the fuzz bytes.
    let mut wire = Vec::new();
    for _ in 0..opener.records {
        peer.seal_data(b"x", &mut wire)
            .expect("far below the limit");
    }
    wire.clear();
    peer.seal_data(rest, &mut wire)
        .expect("far below the limit");
    let clean = opener.failed.is_none() && opener.incoming.is_empty();
    let opened = opener.feed(&wire);
    if clean {
        assert_eq!(opener.failed, None);
        assert_eq!(opened, rest);
    }
    // A call with nothing new: after an error, the same error again.
    let failed = opener.failed;
    opener.feed(&[]);
    assert_eq!(opener.failed, failed);
});
