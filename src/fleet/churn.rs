//! The churn stage: during the hold, a steady fraction of devices per minute loses its
//! connection (as when a NAT forgets a mapping or a phone changes network) and
//! reconnects. Which devices, and when, follows a seeded random stream.

use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::partition::Partition;
use crate::seeds::{self, Stream};

/// Tries to find a connected device before a drop is given up for this turn.
const PICK_ATTEMPTS: usize = 8;

/// Decides which devices to drop as time passes.
#[derive(Debug)]
pub(crate) struct Churn {
    drops_per_s: f64,
    /// Drops owed but not yet made (fractional).
    owed: f64,
    last: Option<Instant>,
    rng: SmallRng,
}

impl Churn {
    /// `fraction_per_minute` of a worker's `devices` dropped each minute; which ones
    /// follows the run's seed and the worker's shard.
    pub(crate) fn new(
        fraction_per_minute: f64,
        devices: usize,
        run_seed: u64,
        shard: Partition,
    ) -> Self {
        Self {
            drops_per_s: fraction_per_minute * devices as f64 / 60.0,
            owed: 0.0,
            last: None,
            rng: SmallRng::seed_from_u64(seeds::derive(
                run_seed,
                Stream::Churn,
                u64::from(shard.index),
            )),
        }
    }

    /// The devices to drop now: indices below `devices` for which `connected` holds.
    /// A drop owed when no connected device is found is kept for the next turn.
    pub(crate) fn due(
        &mut self,
        now: Instant,
        devices: usize,
        connected: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        let elapsed = self.last.map_or(0.0, |last| (now - last).as_secs_f64());
        self.last = Some(now);
        self.owed += self.drops_per_s * elapsed;
        let mut drops = Vec::new();
        while self.owed >= 1.0 && devices > 0 {
            let found = (0..PICK_ATTEMPTS)
                .map(|_| self.rng.random_range(0..devices))
                .find(|index| connected(*index) && !drops.contains(index));
            let Some(index) = found else { break };
            drops.push(index);
            self.owed -= 1.0;
        }
        drops
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn drops_the_asked_fraction_per_minute_among_connected_devices() {
        // 30% of 1,000 devices a minute = 5 a second.
        let mut churn = Churn::new(0.3, 1000, 1, Partition::WHOLE);
        let start = Instant::now();
        assert!(churn.due(start, 1000, |_| true).is_empty());
        let mut dropped = Vec::new();
        for tick in 1..=600 {
            let now = start + Duration::from_millis(100 * tick);
            dropped.extend(churn.due(now, 1000, |index| index % 2 == 0));
        }
        assert_eq!(dropped.len(), 300);
        assert!(dropped.iter().all(|index| index % 2 == 0));
        // Nobody connected: the drops are owed, not lost.
        let later = start + Duration::from_secs(61);
        assert!(churn.due(later, 1000, |_| false).is_empty());
        assert_eq!(churn.due(later, 1000, |_| true).len(), 5);
    }
}
