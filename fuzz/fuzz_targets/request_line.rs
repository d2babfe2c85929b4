//! Fuzzes the MS-ASHTTP request-line parser (plain and base64 queries). Properties: no
//! panic; a parsed query that can be written back parses to the same query.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pingfleet::eas::request::EasQuery;

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(query) = EasQuery::parse_target(target) else {
        return;
    };
    if let Ok(rebuilt) = query.to_target() {
        let reparsed = EasQuery::parse_target(&rebuilt).expect("a rebuilt target parses");
        assert_eq!(reparsed, query, "{target:?} -> {rebuilt:?}");
    }
});
