//! Keeping a schedule to the microsecond on a shared machine: a thread that waits for
//! planned instants sleeps until shortly before each and spins the rest, and asks the
//! kernel for exact wake-ups (no timer slack).

use std::time::{Duration, Instant};

/// The longest the sender spins before a planned instant: a sleeping thread wakes tens
/// of microseconds late (more on a virtual machine whose idle core the host must wake
/// first), a spinning one within a microsecond or two.
pub(super) const SPIN_MAX: Duration = Duration::from_micros(200);
/// The share of the time between two planned instants the sender may spin: it costs at
/// most this much of a core whatever the rate.
const SPIN_SHARE: f64 = 0.05;

/// Readies the calling thread to keep a schedule: exact timer wake-ups (Linux lets a
/// sleeping thread wake up to 50 us late by default, its timer slack, all of which
/// would count as lag).
///
/// Two things that make the sender itself more punctual were measured and are not done,
/// because they cost the server it measures or the machine more than they gain:
/// a realtime priority (`SCHED_FIFO`) took the injector's lag p99 from 558 us to 53 us
/// in the default scenario, but the server's datagrams then waited 93 us in its socket
/// instead of 54-63 us (the spinning thread held a core the server needed), a quarter
/// more on the gate's wake-up from the departure over the floor; keeping idle CPUs
/// polling (`/dev/cpu_dma_latency` at 0) made every p99 worse (injector lag p99 3.6 ms),
/// the virtual machine's host taking the polling out of its time.
pub(super) fn prepare_thread() {
    let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
}

/// How long to spin before `planned_at`, the instant before it being `previous_at`.
pub(super) fn spin_before(previous_at: Instant, planned_at: Instant) -> Duration {
    planned_at
        .saturating_duration_since(previous_at)
        .mul_f64(SPIN_SHARE)
        .min(SPIN_MAX)
}

/// Sleeps until `at` (at once if it has passed).
pub(super) fn sleep_until(at: Instant) {
    let sleep = at.saturating_duration_since(Instant::now());
    if !sleep.is_zero() {
        std::thread::sleep(sleep);
    }
}

/// The CPU time the calling thread has used: what keeping a schedule costs it.
pub(super) fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Spins until `at`.
pub(super) fn spin_until(at: Instant) {
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spin_is_a_share_of_the_gap_and_bounded() {
        let at = Instant::now();
        let spin = |gap_us| spin_before(at, at + Duration::from_micros(gap_us));
        assert_eq!(spin(1_000), Duration::from_micros(50));
        assert_eq!(spin(100), Duration::from_micros(5));
        assert_eq!(spin(1_000_000), SPIN_MAX);
        assert_eq!(spin_before(at + Duration::from_secs(1), at), Duration::ZERO);
    }

    #[test]
    fn a_prepared_thread_waits_to_the_instant_and_never_before() {
        let late = std::thread::spawn(|| {
            prepare_thread();
            let at = Instant::now() + Duration::from_millis(2);
            sleep_until(at - Duration::from_micros(100));
            spin_until(at);
            Instant::now().checked_duration_since(at)
        })
        .join()
        .unwrap();
        // Never early; how late is the machine's business, not a test's.
        assert!(late.is_some(), "woke before the instant");
    }

    #[test]
    fn spinning_costs_cpu_time_and_sleeping_does_not() {
        let (slept, spun) = std::thread::spawn(|| {
            let before = thread_cpu_time();
            std::thread::sleep(Duration::from_millis(30));
            let slept = thread_cpu_time() - before;
            spin_until(Instant::now() + Duration::from_millis(30));
            (slept, thread_cpu_time() - before - slept)
        })
        .join()
        .unwrap();
        assert!(slept < Duration::from_millis(10), "sleeping cost {slept:?}");
        assert!(spun > slept, "spinning cost {spun:?}, sleeping {slept:?}");
    }
}
