//! What one phone's link does to each packet, without I/O: given a packet's arrival,
//! its size and its direction, when it leaves the link or why it never does.
//!
//! Each direction of a link is a FIFO at the profile's rate (a packet waits for the
//! ones before it, then takes its size over the rate), a buffer of the profile's size
//! (a packet that does not fit is dropped, as a radio's buffer drops it), then the
//! one-way delay with jitter, never overtaking the packet before it (TCP over a
//! reordering link would measure the emulator, not the network). Losses follow a
//! two-state Gilbert-Elliott chain per direction (independent when the mean burst is
//! 1). Outages come at exponential intervals per link and drop everything both ways.
//! A direction with a delivery trace takes the trace's opportunities instead of a rate
//! (see [`super::trace`]), from the link's first packet; its buffer is the bytes
//! scheduled and not yet gone.
//! Every random draw is from the link's own seeded generator, so a run repeats.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::profile::NetworkProfile;
use super::trace::{LinkTraces, TraceCursor};

/// Which way a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Phone to server.
    Up,
    /// Server to phone.
    Down,
}

/// Why a packet never left the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropCause {
    Loss,
    Outage,
    Queue,
}

/// What happens to one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Leaves the link at this instant.
    Deliver(Instant),
    Drop(DropCause),
}

/// One direction's FIFO, delay and loss state.
#[derive(Debug, Clone)]
struct Lane {
    /// The last packet in the queue finishes going through the link at this instant.
    busy_until: Instant,
    /// The last packet leaves the link at this instant (the next never earlier).
    last_delivery: Instant,
    /// The Gilbert-Elliott chain is in its losing state.
    losing: bool,
    /// Where the lane is in its delivery trace, when it has one.
    trace: TraceCursor,
}

impl Lane {
    fn new(now: Instant) -> Self {
        Self {
            busy_until: now,
            last_delivery: now,
            losing: false,
            trace: TraceCursor::default(),
        }
    }
}

/// One phone's link (one device connection): both directions and its outages.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    up: Lane,
    down: Lane,
    /// The next outage starts here and ends `outage_for` later.
    next_outage: Option<Instant>,
    /// The link's first packet, where its delivery traces start.
    origin: Instant,
    rng: SmallRng,
}

impl Link {
    /// A link whose draws follow `seed`, first used at `now`.
    pub(crate) fn new(profile: &NetworkProfile, seed: u64, now: Instant) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let next_outage = profile
            .outage_every
            .map(|every| now + exponential(&mut rng, every.0));
        Self {
            up: Lane::new(now),
            down: Lane::new(now),
            next_outage,
            origin: now,
            rng,
        }
    }

    /// The fate of a packet of `bytes` arriving at `now` going `direction`, on a link
    /// of `profile` whose delivery traces (if it has any) are `traces`.
    pub(crate) fn admit(
        &mut self,
        profile: &NetworkProfile,
        traces: &LinkTraces,
        direction: Direction,
        bytes: usize,
        now: Instant,
    ) -> Verdict {
        if self.in_outage(profile, now) {
            return Verdict::Drop(DropCause::Outage);
        }
        let (rate, trace) = match direction {
            Direction::Up => (profile.up, traces.up.as_ref()),
            Direction::Down => (profile.down, traces.down.as_ref()),
        };
        let lost = self.draws_loss(profile, direction);
        let lane = match direction {
            Direction::Up => &mut self.up,
            Direction::Down => &mut self.down,
        };
        let start = lane.busy_until.max(now);
        let backlog_bytes = match (trace, rate) {
            (Some(_), _) => Some(lane.trace.backlog(now) as f64),
            (None, Some(rate)) => Some((start - now).as_secs_f64() * rate.0 / 8.0),
            (None, None) => None,
        };
        if backlog_bytes.is_some_and(|backlog| backlog + bytes as f64 > profile.queue as f64) {
            return Verdict::Drop(DropCause::Queue);
        }
        if lost {
            return Verdict::Drop(DropCause::Loss);
        }
        let departs = match (trace, rate) {
            (Some(trace), _) => lane.trace.depart(trace, self.origin, bytes, now),
            (None, rate) => start + rate.map_or(Duration::ZERO, |rate| rate.serialization(bytes)),
        };
        lane.busy_until = departs;
        let jitter = profile.jitter.0.as_secs_f64();
        let offset = if jitter > 0.0 {
            self.rng.random_range(-jitter..=jitter)
        } else {
            0.0
        };
        let delay = Duration::from_secs_f64((profile.delay.0.as_secs_f64() + offset).max(0.0));
        let delivered = (departs + delay).max(lane.last_delivery);
        lane.last_delivery = delivered;
        Verdict::Deliver(delivered)
    }

    /// Whether `now` falls in an outage; moves past the outages that have ended.
    fn in_outage(&mut self, profile: &NetworkProfile, now: Instant) -> bool {
        let Some(every) = profile.outage_every else {
            return false;
        };
        while let Some(start) = self.next_outage {
            let end = start + profile.outage_for.0;
            if now < start {
                return false;
            }
            if now < end {
                return true;
            }
            self.next_outage = Some(end + exponential(&mut self.rng, every.0));
        }
        false
    }

    /// The next step of `direction`'s loss chain: whether this packet is lost.
    fn draws_loss(&mut self, profile: &NetworkProfile, direction: Direction) -> bool {
        let loss = profile.loss.fraction();
        if loss <= 0.0 {
            return false;
        }
        let draw: f64 = self.rng.random();
        let lane = match direction {
            Direction::Up => &mut self.up,
            Direction::Down => &mut self.down,
        };
        if profile.loss_burst <= 1.0 {
            return draw < loss;
        }
        // Mean burst B: leave the losing state with 1/B; enter it with p so that the
        // chain spends `loss` of its packets losing: p / (p + 1/B) = loss.
        let leave = 1.0 / profile.loss_burst;
        let enter = loss * leave / (1.0 - loss);
        lane.losing = if lane.losing {
            draw >= leave
        } else {
            draw < enter
        };
        lane.losing
    }
}

/// A draw from the exponential distribution of mean `mean`.
fn exponential(rng: &mut SmallRng, mean: Duration) -> Duration {
    let uniform: f64 = rng.random_range(f64::EPSILON..1.0);
    Duration::from_secs_f64(-uniform.ln() * mean.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::profile::BitRate;
    use crate::link::trace::DeliveryTrace;
    use crate::units::{Share, Span};

    const UNTRACED: LinkTraces = LinkTraces {
        down: None,
        up: None,
    };

    fn profile(change: impl FnOnce(&mut NetworkProfile)) -> NetworkProfile {
        let mut profile = NetworkProfile::default();
        change(&mut profile);
        profile
    }

    fn delivered(verdict: Verdict) -> Instant {
        match verdict {
            Verdict::Deliver(at) => at,
            Verdict::Drop(cause) => panic!("dropped: {cause:?}"),
        }
    }

    #[test]
    fn a_packet_takes_the_delay_and_its_size_over_the_rate() {
        let start = Instant::now();
        let shaped = profile(|p| {
            p.delay = Span(Duration::from_millis(35));
            p.down = Some(BitRate(12e6));
        });
        let mut link = Link::new(&shaped, 1, start);
        // 1500 bytes at 12 Mbit/s: 1 ms on the link, then 35 ms.
        let first = delivered(link.admit(&shaped, &UNTRACED, Direction::Down, 1500, start));
        assert_eq!(first - start, Duration::from_millis(36));
        // The second, at the same instant, waits for the first's 1 ms.
        let second = delivered(link.admit(&shaped, &UNTRACED, Direction::Down, 1500, start));
        assert_eq!(second - start, Duration::from_millis(37));
        // The other direction is unlimited and has its own queue.
        let up = delivered(link.admit(&shaped, &UNTRACED, Direction::Up, 1500, start));
        assert_eq!(up - start, Duration::from_millis(35));
    }

    #[test]
    fn a_traced_direction_leaves_at_its_opportunities_keeping_its_buffer_and_delay() {
        let start = Instant::now();
        let at = |ms: u64| Verdict::Deliver(start + Duration::from_millis(ms));
        let shaped = profile(|p| {
            p.delay = Span(Duration::from_millis(35));
            p.queue = 4000;
        });
        let trace = DeliveryTrace::read("0\n0\n5\n10\n".as_bytes(), "t.down").unwrap();
        let traces = LinkTraces {
            down: Some(trace),
            up: None,
        };
        let mut link = Link::new(&shaped, 1, start);
        let mut down = |bytes: usize, ms: u64| {
            let now = start + Duration::from_millis(ms);
            link.admit(&shaped, &traces, Direction::Down, bytes, now)
        };
        // Opportunities at 0, 0, 5, 10, then (the trace again from 10) 10, 10, 15, ...;
        // each packet leaves at its own and arrives 35 ms later.
        assert_eq!(down(1500, 0), at(35));
        assert_eq!(down(1500, 0), at(35));
        assert_eq!(down(1500, 0), at(40));
        // Those at 0 are gone: 1500 bytes wait, then 3000; a fifth does not fit 4000.
        assert_eq!(down(1500, 0), at(45));
        assert_eq!(down(1500, 0), Verdict::Drop(DropCause::Queue));
        // At 5 ms the one leaving at 5 is gone, and there is room at 10 again.
        assert_eq!(down(1500, 5), at(45));
        // The way up has no trace and no rate: the delay alone.
        let up = link.admit(&shaped, &traces, Direction::Up, 1500, start);
        assert_eq!(up, at(35));
    }

    #[test]
    fn a_full_buffer_drops_and_jitter_never_reorders() {
        let start = Instant::now();
        let shaped = profile(|p| {
            p.up = Some(BitRate(8e3)); // 1 byte a millisecond
            p.queue = 3000;
            p.delay = Span(Duration::from_millis(20));
            p.jitter = Span(Duration::from_millis(20));
        });
        let mut link = Link::new(&shaped, 2, start);
        assert!(matches!(
            link.admit(&shaped, &UNTRACED, Direction::Up, 1500, start),
            Verdict::Deliver(_)
        ));
        assert!(matches!(
            link.admit(&shaped, &UNTRACED, Direction::Up, 1500, start),
            Verdict::Deliver(_)
        ));
        assert_eq!(
            link.admit(&shaped, &UNTRACED, Direction::Up, 1500, start),
            Verdict::Drop(DropCause::Queue)
        );
        let unlimited = profile(|p| {
            p.delay = Span(Duration::from_millis(20));
            p.jitter = Span(Duration::from_millis(20));
        });
        let mut link = Link::new(&unlimited, 3, start);
        let mut last = start;
        for step in 0..1000 {
            let now = start + Duration::from_micros(step * 100);
            let at = delivered(link.admit(&unlimited, &UNTRACED, Direction::Down, 100, now));
            assert!(at >= last && at <= now + Duration::from_millis(40));
            last = at;
        }
    }

    #[test]
    fn losses_come_at_the_set_rate_and_in_bursts_of_the_set_length() {
        let start = Instant::now();
        for burst in [1.0, 3.0] {
            let shaped = profile(|p| {
                p.loss = Share::from_percent(5.0);
                p.loss_burst = burst;
            });
            let mut link = Link::new(&shaped, 4, start);
            let fates: Vec<bool> = (0..200_000)
                .map(|_| {
                    link.admit(&shaped, &UNTRACED, Direction::Up, 100, start)
                        == Verdict::Drop(DropCause::Loss)
                })
                .collect();
            let lost = fates.iter().filter(|lost| **lost).count() as f64;
            let runs = fates.windows(2).filter(|w| !w[0] && w[1]).count() as f64;
            let rate = lost / fates.len() as f64;
            assert!((0.045..0.055).contains(&rate), "burst {burst}: rate {rate}");
            let mean_run = lost / runs;
            let expected = if burst > 1.0 { burst } else { 1.0 / 0.95 };
            assert!(
                (mean_run - expected).abs() < 0.15,
                "burst {burst}: runs of {mean_run}"
            );
        }
    }

    #[test]
    fn an_outage_drops_both_ways_for_its_length_then_the_link_is_back() {
        let start = Instant::now();
        let shaped = profile(|p| {
            p.outage_every = Some(Span(Duration::from_secs(60)));
            p.outage_for = Span(Duration::from_secs(5));
        });
        let mut link = Link::new(&shaped, 5, start);
        let first = link.next_outage.unwrap();
        let before = first - Duration::from_millis(1);
        assert!(matches!(
            link.admit(&shaped, &UNTRACED, Direction::Up, 100, before),
            Verdict::Deliver(_)
        ));
        for (direction, into) in [(Direction::Up, 0), (Direction::Down, 4_999)] {
            let at = first + Duration::from_millis(into);
            assert_eq!(
                link.admit(&shaped, &UNTRACED, direction, 100, at),
                Verdict::Drop(DropCause::Outage)
            );
        }
        let after = first + Duration::from_secs(5);
        assert!(matches!(
            link.admit(&shaped, &UNTRACED, Direction::Down, 100, after),
            Verdict::Deliver(_)
        ));
        assert!(link.next_outage.unwrap() >= after);
        // Over many outages the link is down about 5 / (60 + 5) of the time.
        let mut down = 0;
        for second in 0..100_000u64 {
            let now = start + Duration::from_secs(second);
            down += u32::from(
                link.admit(&shaped, &UNTRACED, Direction::Up, 1, now)
                    == Verdict::Drop(DropCause::Outage),
            );
        }
        let share = f64::from(down) / 100_000.0;
        assert!((0.06..0.095).contains(&share), "down {share}");
    }
}
