//! Fuzzes the change-notification datagram parser. Properties: no panic; what parses is
//! within the limits (item size, count, datagram length) and prints back to a datagram
//! that parses to the same notification.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pingfleet::notification::{Notification, MAX_COUNT, MAX_DATAGRAM_BYTES, MAX_ITEM_BYTES};

fuzz_target!(|data: &[u8]| {
    let Ok(notification) = Notification::parse(data) else {
        return;
    };
    assert!(data.len() <= MAX_DATAGRAM_BYTES);
    assert!(notification.size_bytes <= MAX_ITEM_BYTES);
    assert!((1..=MAX_COUNT).contains(&notification.count));
    let text = notification.to_string();
    let again = Notification::parse(text.as_bytes()).expect("a printed notification parses");
    assert_eq!(again, notification, "{text:?}");
});
