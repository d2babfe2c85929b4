//! Fuzzes the threshold parser. Properties: no panic; a condition that parses has a
//! finite value and prints as the text it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pingfleet::scenario::threshold::Condition;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(condition) = Condition::parse(text) {
        assert!(condition.value.is_finite(), "{text:?}");
        assert_eq!(condition.to_string(), text);
    }
});
