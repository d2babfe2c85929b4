//! Keeping a schedule to the microsecond on a shared machine: a thread that waits for
//! planned instants sleeps until shortly before each and spins the rest, asks the kernel
//! for exact wake-ups (no timer slack), runs at a realtime priority so that a busy core
//! is taken from whatever runs there the moment its timer fires rather than at the fair
//! scheduler's next turn (what an injector's p99 lag was made of).

use std::time::{Duration, Instant};

use thread_priority::{
    set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy, ThreadPriority,
    ThreadPriorityValue, ThreadSchedulePolicy,
};

/// The longest the sender spins before a planned instant: a sleeping thread wakes tens
/// of microseconds late (more on a virtual machine whose idle core the host must wake
/// first), a spinning one within a microsecond or two.
pub const SPIN_MAX: Duration = Duration::from_micros(300);
/// The share of the time between two planned instants the sender may spin: it costs at
/// most this much of a core whatever the rate.
const SPIN_SHARE: f64 = 0.1;
/// The realtime (`SCHED_FIFO`) priority asked for: the lowest band, above every normal
/// thread and below the kernel's own realtime threads. The kernel's realtime throttling
/// (`kernel.sched_rt_runtime_us`) still leaves the other threads their share.
const REALTIME_PRIORITY: u8 = 10;

/// How a pacing thread runs, as [`prepare_thread`] left it.
#[derive(Debug)]
pub struct Pacing {
    /// `Err` says why the kernel refused the realtime priority (no `CAP_SYS_NICE`, or a
    /// container that withholds it): the thread then keeps its schedule less well.
    realtime: Result<(), String>,
}

impl Pacing {
    /// The words the result and the summary use.
    pub fn describe(&self) -> String {
        match &self.realtime {
            Ok(()) => "realtime priority".to_owned(),
            Err(why) => format!("normal priority (realtime refused: {why})"),
        }
    }
}

/// Readies the calling thread to keep a schedule: exact timer wake-ups, and a realtime
/// priority where the kernel grants one.
///
/// Idle CPUs are left to halt: keeping them polling (`/dev/cpu_dma_latency` at 0) was
/// measured in the default scenario and made every p99 worse (injector lag p99 3.6 ms
/// against 53 us), the virtual machine's host taking the polling out of its time.
pub fn prepare_thread() -> Pacing {
    // Linux lets a sleeping thread wake up to 50 us late by default (timer slack), all
    // of which would count as lag; a realtime thread has none, a normal one asks.
    let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
    let policy = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
    let realtime = ThreadPriorityValue::try_from(REALTIME_PRIORITY)
        .map_err(|why| why.to_owned())
        .and_then(|value| {
            set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Crossplatform(value),
                policy,
            )
            .map_err(|err| format!("{err:?}"))
        });
    Pacing { realtime }
}

/// How long to spin before `planned_at`, the instant before it being `previous_at`.
pub fn spin_before(previous_at: Instant, planned_at: Instant) -> Duration {
    planned_at
        .saturating_duration_since(previous_at)
        .mul_f64(SPIN_SHARE)
        .min(SPIN_MAX)
}

/// Sleeps until `at` (at once if it has passed).
pub fn sleep_until(at: Instant) {
    let sleep = at.saturating_duration_since(Instant::now());
    if !sleep.is_zero() {
        std::thread::sleep(sleep);
    }
}

/// Spins until `at`.
pub fn spin_until(at: Instant) {
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
        assert_eq!(spin(1_000), Duration::from_micros(100));
        assert_eq!(spin(100), Duration::from_micros(10));
        assert_eq!(spin(1_000_000), SPIN_MAX);
        assert_eq!(spin_before(at + Duration::from_secs(1), at), Duration::ZERO);
    }

    #[test]
    fn a_prepared_thread_says_how_it_runs_and_waits_to_the_instant() {
        let (pacing, late) = std::thread::spawn(|| {
            let pacing = prepare_thread();
            let at = Instant::now() + Duration::from_millis(2);
            sleep_until(at - Duration::from_micros(100));
            spin_until(at);
            (pacing.describe(), Instant::now().checked_duration_since(at))
        })
        .join()
        .unwrap();
        assert!(
            pacing == "realtime priority" || pacing.contains("realtime refused: "),
            "{pacing}"
        );
        // Never early; how late is the machine's business, not a test's.
        assert!(late.is_some(), "woke before the instant");
    }
}
