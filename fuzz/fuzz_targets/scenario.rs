//! Fuzzes the scenario loader. Properties: no panic; an error names a line that exists
//! in the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pingfleet::scenario::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(err) = Scenario::parse(text, "fuzz.toml") {
        let lines = text.split('\n').count();
        assert!(err.line >= 1 && err.line <= lines, "{err} in {lines} lines");
    }
});
