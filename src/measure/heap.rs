//! The live heap, and what it holds: bytes this process has allocated and not freed,
//! counted by the global allocator (glibc's malloc with a counter in front) and
//! kept apart by the part of pingfleet that allocated them.
//!
//! Unlike RSS, the live heap does not hide a new allocation in memory the allocator
//! already holds: a server that keeps 2 KiB more per parked Ping shows them here even
//! when they fill chunks an earlier request freed and RSS does not move. RSS less the
//! live heap is what the allocator keeps beside (its headers, rounding and free
//! chunks) and what C libraries allocate themselves.
//!
//! Each thread has a current [`HeapPart`]: its own by default ([`set_thread_part`]: a
//! server's runtime threads count as `connections`, a worker's event loop as
//! `devices`), and another inside [`within`] (TLS sessions scope their own code). A byte is counted to the part current where it is allocated and
//! uncounted from the part current where it is freed, so each part's count is exact as
//! long as its code frees what it allocates (TLS sessions free their state in their own
//! scope, on drop too); the total is exact whatever the parts.
//!
//! This module is the one place pingfleet writes `unsafe`: a global allocator is an
//! `unsafe` trait, and this one only forwards to the allocator underneath.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

/// What allocated a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeapPart {
    /// Anything not in another part: start-up, the injector, reporting, tokio's tasks
    /// on the server.
    Rest,
    /// TLS: rustls during handshakes, the sessions' buffers, and on devices the session
    /// tickets kept for the next connection. A parked session's keys belong to its
    /// connection.
    Tls,
    /// The server's connections: what its runtime threads allocate outside TLS (each
    /// connection's task and state, HTTP buffers, the parked Ping and its slot in the
    /// store, the user's and device's sync state, the socket's registration).
    Connections,
    /// A worker's devices: what its event loop allocates outside TLS (each device's
    /// state machine, its connection and keys, buffers and timers).
    Devices,
}

impl HeapPart {
    pub(crate) const ALL: [HeapPart; 4] = [
        HeapPart::Rest,
        HeapPart::Tls,
        HeapPart::Connections,
        HeapPart::Devices,
    ];

    /// Its name in metrics and results.
    pub(crate) fn name(self) -> &'static str {
        match self {
            HeapPart::Rest => "rest",
            HeapPart::Tls => "tls",
            HeapPart::Connections => "connections",
            HeapPart::Devices => "devices",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

static LIVE: [AtomicI64; HeapPart::ALL.len()] = [const { AtomicI64::new(0) }; 4];

thread_local! {
    /// The part this thread's allocations count to (an index into `LIVE`). A constant
    /// initializer and no destructor: reading it never allocates.
    static CURRENT: Cell<u8> = const { Cell::new(0) };
}

fn count(bytes: i64) {
    let part = CURRENT.try_with(Cell::get).unwrap_or(0);
    LIVE[usize::from(part)].fetch_add(bytes, Ordering::Relaxed);
}

/// The allocator underneath the counter: the system's (glibc's malloc) unless the
/// build chose another with the `mimalloc` or `jemalloc` feature (to compare them:
/// docs/measurements.md).
#[cfg(not(any(feature = "mimalloc", feature = "jemalloc")))]
static INNER: std::alloc::System = std::alloc::System;
#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(feature = "jemalloc")]
static INNER: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The name of the allocator underneath (for results and `--version`).
pub(crate) const ALLOCATOR: &str = if cfg!(feature = "jemalloc") {
    "jemalloc"
} else if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "glibc"
};

/// The allocator underneath, counting.
struct Counting;

// SAFETY: every method forwards to `INNER` with the caller's arguments unchanged and
// returns what it returns; counting touches only atomics and a constant thread-local,
// neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let ptr = unsafe { INNER.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as i64);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { INNER.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as i64);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` and `layout` come from the caller, who got them from this
        // allocator, that is from `INNER`.
        unsafe { INNER.dealloc(ptr, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, with the caller's `new_size`.
        let new = unsafe { INNER.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as i64 - layout.size() as i64);
        }
        new
    }
}

#[global_allocator]
static HEAP: Counting = Counting;

/// Bytes allocated and not yet freed by this process, as asked for (without the
/// allocator's own overhead per chunk).
pub(crate) fn live_bytes() -> u64 {
    let total: i64 = LIVE.iter().map(|part| part.load(Ordering::Relaxed)).sum();
    total.max(0) as u64
}

/// The live bytes of each part, by name (a part can be below zero when another part
/// freed what it allocated).
pub(crate) fn live_by_part() -> BTreeMap<String, i64> {
    HeapPart::ALL
        .iter()
        .map(|part| {
            let bytes = LIVE[part.index()].load(Ordering::Relaxed);
            (part.name().to_owned(), bytes)
        })
        .collect()
}

/// The live heap at one instant, in all and by part: of one process, or added up over
/// several.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct HeapReading {
    pub live_bytes: u64,
    /// By [`HeapPart`] name.
    pub parts: BTreeMap<String, i64>,
}

impl HeapReading {
    /// This process's live heap now.
    pub fn now() -> Self {
        Self {
            live_bytes: live_bytes(),
            parts: live_by_part(),
        }
    }

    /// Both readings added up (two processes' together).
    pub fn plus(mut self, other: &HeapReading) -> Self {
        self.live_bytes += other.live_bytes;
        for (part, bytes) in &other.parts {
            *self.parts.entry(part.clone()).or_default() += bytes;
        }
        self
    }

    /// Each part's growth from `before` to this reading, per `count` (connections),
    /// parts that neither had left out.
    pub fn growth_per(&self, before: &HeapReading, count: u64) -> BTreeMap<String, f64> {
        self.parts
            .iter()
            .filter(|(part, bytes)| {
                **bytes != 0 || before.parts.get(*part).is_some_and(|b| *b != 0)
            })
            .map(|(part, bytes)| {
                let grown = bytes - before.parts.get(part).copied().unwrap_or(0);
                (part.clone(), grown as f64 / count.max(1) as f64)
            })
            .collect()
    }
}

/// Makes `part` the calling thread's own part from now on.
pub(crate) fn set_thread_part(part: HeapPart) {
    CURRENT.with(|current| current.set(part as u8));
}

/// Runs `work` with its allocations and frees counted to `part`.
pub(crate) fn within<R>(part: HeapPart, work: impl FnOnce() -> R) -> R {
    /// Puts the thread's part back, even when `work` panics.
    struct Restore(u8);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|current| current.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|current| current.replace(part as u8)));
    work()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_add_up_and_grow_per_connection_by_part() {
        let reading = |live_bytes, tls, devices| HeapReading {
            live_bytes,
            parts: [
                ("tls".to_owned(), tls),
                ("devices".to_owned(), devices),
                ("rest".to_owned(), 0),
            ]
            .into_iter()
            .collect(),
        };
        let both = reading(1_000, 100, 900).plus(&reading(2_000, 300, 1_700));
        assert_eq!(both, reading(3_000, 400, 2_600));
        let grown = reading(13_000, 2_400, 12_600).growth_per(&both, 1_000);
        assert_eq!(grown.get("tls"), Some(&2.0));
        assert_eq!(grown.get("devices"), Some(&10.0));
        assert_eq!(
            grown.get("rest"),
            None,
            "a part that stayed at 0 is left out"
        );
    }

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

    #[test]
    fn bytes_count_to_the_part_they_were_allocated_in_until_freed_there() {
        // On a thread of its own whose part is `devices`, which no other unit test
        // allocates in.
        std::thread::spawn(|| {
            set_thread_part(HeapPart::Devices);
            let devices = || live_by_part()["devices"];
            let before = devices();
            let held = std::hint::black_box(vec![1u8; 32 << 20]);
            assert!(
                devices() >= before + (32 << 20),
                "{before} -> {}",
                devices()
            );
            // A scoped allocation counts to its scope's part, and its free there too.
            let tls_before = live_by_part()["tls"];
            let scoped = within(HeapPart::Tls, || std::hint::black_box(vec![1u8; 16 << 20]));
            assert_eq!(devices(), before + (32 << 20));
            let total = live_bytes();
            within(HeapPart::Tls, || drop(scoped));
            assert!(live_by_part()["tls"] < tls_before + (8 << 20));
            assert!(live_bytes() + (15 << 20) <= total);
            // Freed in the thread's own part, the grown block leaves it as it was.
            let mut grown = held;
            grown.reserve_exact(32 << 20);
            assert!(devices() >= before + (64 << 20));
            drop(grown);
            assert_eq!(devices(), before);
        })
        .join()
        .unwrap();
    }
}
