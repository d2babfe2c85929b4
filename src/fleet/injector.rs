//! The notification injector's schedule: when each notification is planned, for which
//! device, open loop and seeded. The schedule is the whole fleet's, from the run seed
//! alone; a worker sends only the notifications for its own shard's devices, so the
//! plan is the same however many workers share the fleet. The engine sends each one at
//! (or as soon as it can after) its planned instant; latency is always measured from
//! the plan, so a stalled sender cannot hide latency.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::digest::FleetDigest;
use super::pacer;
use super::sink::{Account, Outlet, PlannedChange, Prepared};
use super::stats::{tally, FleetStats};
use crate::partition::Partition;
use crate::seeds::{self, Stream};

/// The highest rate (connections or notifications per second) a run may ask for: far
/// above what one machine sends (a worker's injector manages some 10,000 a second), low
/// enough that a typo like `1e12` is caught rather than tried.
pub const MAX_RATE_PER_S: f64 = 1_000_000.0;

/// The schedule's shape, as flags (`--pattern`) and scenario files
/// (`injector.pattern`) name it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PatternKind {
    /// Evenly spaced.
    Fixed,
    /// Exponential gaps (a Poisson process).
    Poisson,
    /// A share of the devices, each once, within a window.
    Burst,
}

/// The shape of the schedule with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pattern {
    /// Evenly spaced at `rate_per_s`.
    Fixed { rate_per_s: f64 },
    /// Exponential gaps with mean `1 / rate_per_s`.
    Poisson { rate_per_s: f64 },
    /// `percent` of the devices, each once, at instants spread uniformly over `window`.
    Burst { percent: f64, window: Duration },
}

impl Pattern {
    /// The pattern of `kind`: `rate_per_s` for fixed and poisson, the burst's share of
    /// the devices and its window for a burst.
    pub fn new(kind: PatternKind, rate_per_s: f64, burst_percent: f64, window: Duration) -> Self {
        match kind {
            PatternKind::Fixed => Self::Fixed { rate_per_s },
            PatternKind::Poisson => Self::Poisson { rate_per_s },
            PatternKind::Burst => Self::Burst {
                percent: burst_percent,
                window,
            },
        }
    }
}

/// One planned notification: its offset from the start, the device it is for (its
/// index in the worker and in the whole fleet) and its sequence number in the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub offset: Duration,
    /// The device's index among this worker's devices.
    pub device: usize,
    pub fleet_device: usize,
    pub seq: u64,
}

/// An endless (or, for a burst, finite) sequence of planned notifications for one
/// shard of a fleet.
#[derive(Debug, Clone)]
pub struct Schedule {
    pattern: Pattern,
    /// Devices in the whole fleet.
    devices: usize,
    shard: Partition,
    rng: SmallRng,
    next_offset: Duration,
    seq: u64,
    burst: Vec<Planned>,
}

impl Schedule {
    /// The schedule of a fleet of `devices` in a run seeded with `run_seed`, of which
    /// this one yields shard `shard`'s notifications (`rate_per_s` is the fleet's rate).
    pub fn new(pattern: Pattern, devices: usize, run_seed: u64, shard: Partition) -> Self {
        let mut schedule = Self {
            pattern,
            devices,
            shard,
            rng: SmallRng::seed_from_u64(seeds::derive(run_seed, Stream::Schedule, 0)),
            next_offset: Duration::ZERO,
            seq: 0,
            burst: Vec::new(),
        };
        if let Pattern::Burst { percent, window } = pattern {
            schedule.burst = schedule.plan_burst(percent, window);
        }
        schedule
    }

    fn plan_burst(&mut self, percent: f64, window: Duration) -> Vec<Planned> {
        let count = ((self.devices as f64) * percent / 100.0).round() as usize;
        let mut devices: Vec<usize> = (0..self.devices).collect();
        for index in 0..count.min(self.devices) {
            let swap = self.rng.random_range(index..self.devices);
            devices.swap(index, swap);
        }
        let mut planned: Vec<Planned> = devices
            .into_iter()
            .take(count)
            .enumerate()
            .map(|(seq, device)| Planned {
                offset: window.mul_f64(self.rng.random::<f64>()),
                device: device / self.shard.count as usize,
                fleet_device: device,
                seq: seq as u64,
            })
            .filter(|planned| self.shard.holds(planned.fleet_device))
            .collect();
        planned.sort_by_key(|planned| std::cmp::Reverse(planned.offset));
        planned
    }

    fn gap(&mut self, rate_per_s: f64, poisson: bool) -> Duration {
        let mean = 1.0 / rate_per_s;
        let seconds = if poisson {
            -mean * (1.0 - self.rng.random::<f64>()).ln()
        } else {
            mean
        };
        Duration::from_secs_f64(seconds)
    }
}

impl Iterator for Schedule {
    type Item = Planned;

    /// The next notification for one of this shard's devices.
    fn next(&mut self) -> Option<Planned> {
        loop {
            let planned = self.next_in_fleet()?;
            if self.shard.holds(planned.fleet_device) {
                return Some(planned);
            }
        }
    }
}

impl Schedule {
    /// The next notification of the whole fleet.
    fn next_in_fleet(&mut self) -> Option<Planned> {
        if self.devices == 0 {
            return None;
        }
        let (rate, poisson) = match self.pattern {
            Pattern::Burst { .. } => return self.burst.pop(),
            Pattern::Fixed { rate_per_s } => (rate_per_s, false),
            Pattern::Poisson { rate_per_s } => (rate_per_s, true),
        };
        if rate <= 0.0 {
            return None;
        }
        let offset = self.next_offset;
        let gap = self.gap(rate, poisson);
        self.next_offset = self.next_offset.checked_add(gap)?;
        let fleet_device = self.rng.random_range(0..self.devices);
        let planned = Planned {
            offset,
            device: fleet_device / self.shard.count as usize,
            fleet_device,
            seq: self.seq,
        };
        self.seq += 1;
        Some(planned)
    }
}

/// Where notifications go and what they say.
#[derive(Debug)]
pub struct InjectorConfig {
    pub schedule: Schedule,
    /// Datagrams to each server partition, or mail into each partition's mail store,
    /// opened when the worker starts.
    pub outlet: Outlet,
    /// Each device's password and address (by its index in the worker), for mail.
    pub accounts: Vec<Account>,
    /// When to start injecting, after the hold phase starts.
    pub start_after: Duration,
}

/// A notification the injector thread is about to send, for the engine to hand to its
/// device.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    /// The device's index among the worker's devices.
    pub device: usize,
    pub seq: u64,
    pub planned: Instant,
    /// Its departure will follow as a [`Departure`] (a datagram, not a mail).
    pub stamped: bool,
}

/// The instant a notification's datagram left (its transmit stamp).
#[derive(Debug, Clone, Copy)]
pub struct Departure {
    pub device: usize,
    pub seq: u64,
    pub at: Instant,
}

/// What the injector thread has for the engine: the notifications it is about to send
/// (each handed over before its datagram leaves, so the engine knows of it before the
/// server can answer it), and when the datagrams left.
#[derive(Debug, Default)]
pub struct Injected {
    pub planned: Vec<Sent>,
    pub departed: Vec<Departure>,
}

/// One thing the injector thread tells the engine, in the order it happened.
#[derive(Debug)]
enum Told {
    Planned(Sent),
    Departed(Departure),
}

impl Injected {
    fn add(&mut self, told: Told) {
        match told {
            Told::Planned(sent) => self.planned.push(sent),
            Told::Departed(departure) => self.departed.push(departure),
        }
    }
}

/// The injector on a thread of its own, so notifications leave at their planned
/// instants whatever the event loop is doing (its poll timeouts are milliseconds).
pub struct InjectorThread {
    /// A channel, not a lock: the sender must never wait for the engine (a
    /// lock held by a preempted engine thread kept it from its next instant for
    /// milliseconds); the engine drains it once a turn.
    told: Receiver<Told>,
    handle: JoinHandle<io::Result<FleetStats>>,
    /// The wall-clock instant of `from`, the schedule's offset zero.
    wall_origin: SystemTime,
}

impl InjectorThread {
    /// Starts injecting at `from` for the devices `users` (each device's user and the
    /// folder its notifications name, by worker index) until `until` or `stop`.
    pub fn start(
        config: InjectorConfig,
        users: Vec<(String, String)>,
        from: Instant,
        until: Instant,
        stop: Arc<AtomicBool>,
    ) -> Self {
        let wall_origin = wall_clock_of(from);
        let (tell, told) = mpsc::channel();
        let handle = std::thread::spawn(move || inject(config, &users, from, until, &tell, &stop));
        Self {
            told,
            handle,
            wall_origin,
        }
    }

    /// The wall-clock instant of the schedule's offset zero: a notification is planned
    /// at this instant plus its offset (for a `fixed` schedule, its sequence number over
    /// the rate), which lines the plan up with a packet capture's timestamps.
    pub fn wall_origin(&self) -> SystemTime {
        self.wall_origin
    }

    /// What the thread has planned and sent since the last call.
    pub fn take_sent(&self) -> Injected {
        let mut injected = Injected::default();
        for told in self.told.try_iter() {
            injected.add(told);
        }
        injected
    }

    /// Whether the thread has sent its last notification.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the thread; returns what it counted (sends, send errors, its lag) and
    /// what it planned and sent since the last [`InjectorThread::take_sent`].
    pub fn join(self) -> (FleetStats, Injected) {
        let Self { told, handle, .. } = self;
        let stats = match handle.join() {
            Ok(Ok(stats)) => stats,
            Ok(Err(err)) => {
                let mut stats = FleetStats::default();
                tally(
                    &mut stats.counters.errors,
                    format!("injector: {}", err.kind()),
                );
                stats
            }
            Err(_) => {
                let mut stats = FleetStats::default();
                tally(&mut stats.counters.errors, "injector thread panicked");
                stats
            }
        };
        let mut leftovers = Injected::default();
        for more in told.try_iter() {
            leftovers.add(more);
        }
        (stats, leftovers)
    }
}

/// The wall-clock time of a monotonic `instant` near now.
fn wall_clock_of(instant: Instant) -> SystemTime {
    let (now, wall) = (Instant::now(), SystemTime::now());
    match instant.checked_duration_since(now) {
        Some(ahead) => wall + ahead,
        None => wall - now.duration_since(instant),
    }
}

/// After this long without a send, the send path has gone cold (its kernel code and
/// data out of the caches: the first send after a pause took ~35 us to leave, the next
/// ~3 us, measured here), so it is warmed up just before the planned instant.
const COLD_AFTER: Duration = Duration::from_micros(250);

/// The most changes sent with one system call when their instants fall together.
const SEND_BATCH: usize = 32;

/// The injector thread's loop: for each planned change, prepare it and hand it to the
/// engine, wait for its instant (sleep, then spin), send it with every other change
/// whose instant has come by then, and tell the engine when each left.
fn inject(
    config: InjectorConfig,
    users: &[(String, String)],
    from: Instant,
    until: Instant,
    tell: &Sender<Told>,
    stop: &AtomicBool,
) -> io::Result<FleetStats> {
    let outlet = config.outlet;
    let mut stats = FleetStats::default();
    pacer::prepare_thread();
    let (started, cpu_before) = (Instant::now(), pacer::thread_cpu_time());
    let mut schedule = config.schedule.peekable();
    let mut previous_at = from;
    let mut preparing = Preparing {
        outlet: &outlet,
        users,
        accounts: &config.accounts,
        from,
        tell,
    };
    while let Some(planned) = schedule.next() {
        let planned_at = from + planned.offset;
        if planned_at >= until || stop.load(Ordering::Relaxed) {
            break;
        }
        let Some(first) = preparing.prepare(&planned, &mut stats) else {
            continue;
        };
        let mut batch = vec![first];
        // Changes planned for the same instant, or already past (a burst, or a sender
        // that fell behind), leave with this one; gathered before the wait, so nothing
        // but the send itself stands between the instant and the datagram.
        let due_by = planned_at.max(Instant::now()).min(until);
        while batch.len() < SEND_BATCH {
            let Some(due) = schedule.next_if(|next| from + next.offset <= due_by) else {
                break;
            };
            batch.extend(preparing.prepare(&due, &mut stats));
        }
        let (devices, prepared): (Vec<(usize, u64)>, Vec<Prepared>) = batch.into_iter().unzip();
        let spin = pacer::spin_before(previous_at, planned_at);
        pacer::sleep_until(planned_at - spin);
        if planned_at.saturating_duration_since(previous_at) > COLD_AFTER {
            outlet.warm_up();
        }
        pacer::spin_until(planned_at);
        previous_at = planned_at;
        for ((device, seq), left) in devices
            .into_iter()
            .zip(outlet.send_all(prepared, &mut stats))
        {
            if let Some(at) = left {
                let _ = tell.send(Told::Departed(Departure { device, seq, at }));
            }
        }
    }
    stats.counters.injector_cpu_us = (pacer::thread_cpu_time() - cpu_before).as_micros() as u64;
    stats.counters.injector_span_us = started.elapsed().as_micros() as u64;
    outlet.close(&mut stats);
    stats.intervals.close();
    Ok(stats)
}

/// What the injector needs to make a planned change ready to leave.
struct Preparing<'a> {
    outlet: &'a Outlet,
    users: &'a [(String, String)],
    accounts: &'a [Account],
    from: Instant,
    tell: &'a Sender<Told>,
}

impl Preparing<'_> {
    /// Counts `planned`, prepares it and tells the engine of it; `None` for a device the
    /// worker does not have.
    fn prepare(
        &mut self,
        planned: &Planned,
        stats: &mut FleetStats,
    ) -> Option<((usize, u64), Prepared)> {
        let (user, folder) = self.users.get(planned.device)?;
        let planned_at = self.from + planned.offset;
        stats.notifications_planned += 1;
        stats.notifications_digest ^= FleetDigest::notification(
            planned.fleet_device,
            planned.seq,
            planned.offset.as_micros(),
        );
        let prepared = self.outlet.prepare(&PlannedChange {
            user,
            folder,
            account: self.accounts.get(planned.device),
            seq: planned.seq,
            at: planned_at,
        });
        // A device takes no wake-up before a datagram's departure (or a mail's planned
        // instant) for its own, so the engine may know of it early.
        let _ = self.tell.send(Told::Planned(Sent {
            device: planned.device,
            seq: planned.seq,
            planned: planned_at,
            stamped: self.outlet.stamps_departures(),
        }));
        Some(((planned.device, planned.seq), prepared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHOLE: Partition = Partition::WHOLE;

    /// Every shard's notifications for `shards` workers, in fleet terms, sorted by seq.
    fn fleet_plan(pattern: Pattern, shards: u32) -> Vec<(u64, usize, Duration)> {
        let mut plan: Vec<(u64, usize, Duration)> = (0..shards)
            .flat_map(|index| {
                let shard = Partition {
                    index,
                    count: shards,
                };
                Schedule::new(pattern, 1_000, 5, shard)
                    .take_while(|p| p.offset < Duration::from_secs(2))
                    .inspect(move |p| {
                        assert_eq!(p.device * shards as usize + index as usize, p.fleet_device)
                    })
                    .map(|p| (p.seq, p.fleet_device, p.offset))
                    .collect::<Vec<_>>()
            })
            .collect();
        plan.sort_unstable();
        plan
    }

    #[test]
    fn every_worker_count_plans_the_same_notifications() {
        for pattern in [
            Pattern::Poisson { rate_per_s: 500.0 },
            Pattern::Burst {
                percent: 30.0,
                window: Duration::from_millis(200),
            },
        ] {
            let one = fleet_plan(pattern, 1);
            assert!(one.len() > 250, "{pattern:?}: {}", one.len());
            assert_eq!(fleet_plan(pattern, 2), one, "{pattern:?}");
            assert_eq!(fleet_plan(pattern, 3), one, "{pattern:?}");
        }
    }

    #[test]
    fn fixed_rate_is_evenly_spaced_and_seeded() {
        let plan: Vec<Planned> = Schedule::new(Pattern::Fixed { rate_per_s: 1000.0 }, 10, 1, WHOLE)
            .take(5)
            .collect();
        let offsets: Vec<u128> = plan.iter().map(|p| p.offset.as_micros()).collect();
        assert_eq!(offsets, [0, 1000, 2000, 3000, 4000]);
        let again: Vec<Planned> =
            Schedule::new(Pattern::Fixed { rate_per_s: 1000.0 }, 10, 1, WHOLE)
                .take(5)
                .collect();
        assert_eq!(plan, again);
        assert!(plan.iter().all(|p| p.device < 10));
    }

    #[test]
    fn a_zero_rate_plans_nothing() {
        assert_eq!(
            Schedule::new(Pattern::Fixed { rate_per_s: 0.0 }, 10, 1, WHOLE).next(),
            None
        );
        assert_eq!(
            Schedule::new(Pattern::Poisson { rate_per_s: 0.0 }, 10, 1, WHOLE).next(),
            None
        );
    }

    #[test]
    fn poisson_has_the_asked_mean_rate() {
        let last = Schedule::new(Pattern::Poisson { rate_per_s: 1000.0 }, 100, 3, WHOLE)
            .take(10_001)
            .last()
            .unwrap();
        let seconds = last.offset.as_secs_f64();
        assert!(
            (9.0..11.0).contains(&seconds),
            "10,000 gaps took {seconds} s"
        );
    }

    #[test]
    fn a_burst_notifies_each_chosen_device_once_within_the_window() {
        let window = Duration::from_millis(200);
        let plan: Vec<Planned> = Schedule::new(
            Pattern::Burst {
                percent: 50.0,
                window,
            },
            100,
            9,
            WHOLE,
        )
        .collect();
        assert_eq!(plan.len(), 50);
        let mut devices: Vec<usize> = plan.iter().map(|p| p.device).collect();
        devices.sort_unstable();
        devices.dedup();
        assert_eq!(devices.len(), 50);
        assert!(plan.windows(2).all(|pair| pair[0].offset <= pair[1].offset));
        assert!(plan.iter().all(|p| p.offset <= window));
    }
}
