//! The live heap: bytes this process has allocated and not freed, counted by the global
//! allocator (the system allocator wrapped by the `cap` crate's counter, with no
//! limit). Unlike RSS, it does not hide a new allocation in memory the allocator
//! already holds: a server that keeps 2 KiB more per parked Ping shows them here even
//! when they fill chunks an earlier request freed and RSS does not move.

use std::alloc::System;

use cap::Cap;

#[global_allocator]
static HEAP: Cap<System> = Cap::new(System, usize::MAX);

/// Bytes allocated and not yet freed by this process, as asked for (without the
/// allocator's own overhead per chunk).
pub fn live_bytes() -> u64 {
    HEAP.allocated() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_held_is_counted_until_freed() {
        // Other tests allocate on other threads meanwhile: the held block is far larger
        // than what they hold at any instant.
        let before = live_bytes();
        let held = std::hint::black_box(vec![1u8; 64 << 20]);
        let during = live_bytes();
        drop(held);
        let after = live_bytes();
        assert!(during >= before + (60 << 20), "{before} -> {during}");
        assert!(after + (60 << 20) <= during, "{during} -> {after}");
    }
}
