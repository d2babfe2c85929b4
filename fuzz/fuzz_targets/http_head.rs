//! Fuzzes the lean engine's request-head parser. Properties: no panic; a head that
//! parses ends within the buffer, and its Content-Length is only ever digits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pingfleet::server::lean::parse_head;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((_head, framing, head_len))) = parse_head(data) else {
        return;
    };
    assert!(head_len <= data.len());
    let text = String::from_utf8_lossy(&data[..head_len]).to_ascii_lowercase();
    if framing.content_length > 0 {
        let declared = text
            .lines()
            .filter_map(|line| line.strip_prefix("content-length:"))
            .map(|value| value.trim_matches([' ', '\t', '\r']))
            .collect::<Vec<_>>();
        assert!(!declared.is_empty(), "a length came from nowhere: {text:?}");
        assert!(
            declared.iter().all(|value| value.bytes().all(|b| b.is_ascii_digit())),
            "{declared:?}"
        );
    }
});
