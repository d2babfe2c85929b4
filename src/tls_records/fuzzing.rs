//! Public for the fuzz target: the two ends of a session under fixed keys, so that fuzz
//! input can be opened as received records, mixed with records the peer really sealed.
//! It owns only the fixed keys; sealing and opening are the parent module's.

use super::{Direction, Received, RecordError, RecordKeys, Suite, KEY, NONCE};

/// One end of a session under fixed keys. Public for the fuzz target.
pub struct End(RecordKeys);

impl End {
    /// Both ends of one session, each sending from sequence number 0: what the first
    /// seals the second opens, and back. `suite` picks the cipher suite modulo three:
    /// AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305; each has its own fixed keys and IVs.
    pub fn pair(suite: u8) -> (End, End) {
        let (suite, index) = match suite % 3 {
            0 => (Suite::Aes128Gcm, 0),
            1 => (Suite::Aes256Gcm, 1),
            _ => (Suite::Chacha20Poly1305, 2),
        };
        let direction = |base: u8| Direction {
            key: [base + index; KEY],
            iv: [base + 0x10 + index; NONCE],
            seq: 0,
        };
        let end = |tx, rx| {
            End(RecordKeys {
                suite,
                failed: None,
                tx,
                rx,
            })
        };
        (
            end(direction(0x20), direction(0x40)),
            end(direction(0x40), direction(0x20)),
        )
    }

    /// Opens every whole record at the front of `incoming`, as the record layer does
    /// for a session.
    pub fn open(
        &mut self,
        incoming: &mut Vec<u8>,
        plaintext: &mut Vec<u8>,
    ) -> Result<Received, RecordError> {
        self.0.open(incoming, plaintext)
    }

    /// Seals `data` as application data records onto `out`.
    pub fn seal_data(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        self.0.seal_data(data, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_suite_byte_makes_a_session_that_crosses_and_the_suites_differ() {
        let mut sealed = Vec::new();
        for suite in 0..6 {
            let (mut peer, mut opener) = End::pair(suite);
            assert_eq!(peer.0.suite, opener.0.suite);
            let mut wire = Vec::new();
            peer.seal_data(b"Ping", &mut wire).unwrap();
            sealed.push(wire.clone());
            let mut plaintext = Vec::new();
            assert_eq!(opener.open(&mut wire, &mut plaintext), Ok(Received::Open));
            assert_eq!(plaintext, b"Ping", "suite byte {suite}");
        }
        // The same suite (and keys) every third byte; different ones in between.
        assert_eq!(sealed[..3], sealed[3..]);
        assert_ne!(sealed[0], sealed[1]);
        assert_ne!(sealed[1], sealed[2]);
        assert_ne!(sealed[0], sealed[2]);
    }
}
