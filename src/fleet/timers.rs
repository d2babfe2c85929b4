//! A timer wheel for the device engine: one timer per device (its response deadline or
//! its reconnect time), set, replaced and cancelled in O(1), expired by ticks of 10 ms.
//! Timers further out than one turn of the wheel stay in their bucket until their turn.

use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(10);
const BUCKETS: usize = 4096;

/// Where a token's timer is.
#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Instant,
    bucket: u32,
    index: u32,
}

/// One timer per token (device index).
#[derive(Debug)]
pub(crate) struct TimerWheel {
    origin: Instant,
    /// The next tick to expire.
    cursor: u64,
    buckets: Vec<Vec<u32>>,
    entries: Vec<Option<Entry>>,
    armed: usize,
}

impl TimerWheel {
    pub(crate) fn new(tokens: usize, origin: Instant) -> Self {
        Self {
            origin,
            cursor: 0,
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            entries: vec![None; tokens],
            armed: 0,
        }
    }

    fn tick_of(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.origin).as_nanos() / TICK.as_nanos()) as u64
    }

    /// The wheel's granularity, the longest an armed wheel lets the loop sleep.
    pub(crate) fn tick() -> Duration {
        TICK
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.armed == 0
    }

    /// Arms (or re-arms) `token` for `at`.
    pub(crate) fn set(&mut self, token: usize, at: Instant) {
        self.cancel(token);
        let bucket = (self.tick_of(at).max(self.cursor) % BUCKETS as u64) as usize;
        self.buckets[bucket].push(token as u32);
        self.entries[token] = Some(Entry {
            at,
            bucket: bucket as u32,
            index: (self.buckets[bucket].len() - 1) as u32,
        });
        self.armed += 1;
    }

    /// Disarms `token`'s timer, if any.
    pub(crate) fn cancel(&mut self, token: usize) {
        let Some(entry) = self.entries[token].take() else {
            return;
        };
        let bucket = &mut self.buckets[entry.bucket as usize];
        bucket.swap_remove(entry.index as usize);
        if let Some(&moved) = bucket.get(entry.index as usize) {
            if let Some(moved_entry) = self.entries[moved as usize].as_mut() {
                moved_entry.index = entry.index;
            }
        }
        self.armed -= 1;
    }

    /// Removes and returns the tokens due by `now`, with the instant each was due.
    pub(crate) fn expire(&mut self, now: Instant, due: &mut Vec<(usize, Instant)>) {
        let last = self.tick_of(now);
        while self.cursor <= last {
            let bucket = (self.cursor % BUCKETS as u64) as usize;
            let mut index = 0;
            while index < self.buckets[bucket].len() {
                let token = self.buckets[bucket][index] as usize;
                let at = self.entries[token].map_or(now, |entry| entry.at);
                if at <= now {
                    self.cancel(token);
                    due.push((token, at));
                } else {
                    index += 1;
                }
            }
            if self.cursor == last {
                break;
            }
            self.cursor += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_order_of_ticks_and_honours_cancel_and_replace() {
        let origin = Instant::now();
        let mut wheel = TimerWheel::new(4, origin);
        wheel.set(0, origin + Duration::from_millis(25));
        wheel.set(1, origin + Duration::from_millis(25));
        wheel.set(2, origin + Duration::from_secs(100));
        wheel.set(3, origin + Duration::from_millis(5));
        wheel.cancel(0);
        wheel.set(1, origin + Duration::from_millis(45));
        let mut due = Vec::new();
        wheel.expire(origin + Duration::from_millis(30), &mut due);
        assert_eq!(due.iter().map(|(token, _)| *token).collect::<Vec<_>>(), [3]);
        due.clear();
        wheel.expire(origin + Duration::from_millis(50), &mut due);
        assert_eq!(due.iter().map(|(token, _)| *token).collect::<Vec<_>>(), [1]);
        due.clear();
        // One full turn later the far timer is still not due...
        wheel.expire(origin + Duration::from_secs(60), &mut due);
        assert!(due.is_empty());
        // ...until its time.
        wheel.expire(origin + Duration::from_secs(101), &mut due);
        assert_eq!(due.iter().map(|(token, _)| *token).collect::<Vec<_>>(), [2]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn many_timers_in_one_bucket_survive_swap_removal() {
        let origin = Instant::now();
        let mut wheel = TimerWheel::new(100, origin);
        let at = origin + Duration::from_millis(15);
        for token in 0..100 {
            wheel.set(token, at);
        }
        for token in (0..100).step_by(3) {
            wheel.cancel(token);
        }
        let mut due = Vec::new();
        wheel.expire(origin + Duration::from_millis(20), &mut due);
        let mut tokens: Vec<usize> = due.iter().map(|(token, _)| *token).collect();
        tokens.sort_unstable();
        let expected: Vec<usize> = (0..100).filter(|token| token % 3 != 0).collect();
        assert_eq!(tokens, expected);
    }
}
