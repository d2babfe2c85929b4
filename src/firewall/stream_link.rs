//! The middlebox's stream-level link, for runs without root: each chunk a relay reads
//! is written on a one-way delay after it was read, in order, paced at the direction's
//! rate (a chunk of n bytes takes n*8/rate of the link). What it cannot be is a packet
//! link: no loss (so none of TCP's retransmissions), no outage, no per-packet jitter,
//! and the TCP handshake's round trip is not delayed (the middlebox answers the connect
//! locally). The scenario fills it from a network profile; the packet-level emulator
//! is `crate::link`, above this layer.
//!
//! A [`Lane`] holds one direction's chunks only while they are in flight: a parked
//! flow's lanes hold nothing.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::units::Span;

/// Bytes one direction holds in flight at most; beyond, the relay stops reading that
/// side until the link has delivered some (its sender's TCP then waits, as it would
/// for a slow path).
pub(crate) const LANE_BYTES: usize = 256 * 1024;

/// The stream-level link: a one-way delay each way and a rate each way (`pingfleet
/// firewall --link-delay --link-down --link-up`).
#[derive(
    Debug, Clone, Copy, PartialEq, Default, clap::Args, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct StreamLink {
    /// One-way delay added to each chunk, each direction, e.g. 35ms.
    #[arg(long = "link-delay", value_name = "DURATION", default_value_t = Span::default())]
    pub link_delay: Span,
    /// Server-to-device rate in bits a second; unlimited when not given.
    #[arg(long = "link-down", value_name = "BITS_PER_SECOND")]
    pub link_down: Option<f64>,
    /// Device-to-server rate in bits a second; unlimited when not given.
    #[arg(long = "link-up", value_name = "BITS_PER_SECOND")]
    pub link_up: Option<f64>,
}

impl StreamLink {
    /// Whether it changes anything (a zero delay and no rates is a plain relay).
    pub fn is_set(&self) -> bool {
        !self.link_delay.0.is_zero() || self.link_down.is_some() || self.link_up.is_some()
    }

    /// A rate that cannot pace anything.
    pub fn check(&self) -> Result<(), crate::setting::ConfigError> {
        for (key, rate) in [("link_down", self.link_down), ("link_up", self.link_up)] {
            if rate.is_some_and(|bits| !(bits.is_finite() && bits > 0.0)) {
                return Err(crate::setting::ConfigError::new(
                    key,
                    format!("a link rate is more than 0 bits a second (got {rate:?})"),
                ));
            }
        }
        Ok(())
    }
}

/// One direction of a flow on the link: the chunks read and not yet due, and when the
/// link is free to carry the next.
#[derive(Debug)]
pub(crate) struct Lane {
    delay: Duration,
    bits_per_second: Option<f64>,
    /// Each chunk with the instant it is due at the other side; an empty chunk is the
    /// sender's close.
    chunks: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
    /// When the link has finished carrying the chunks before (`None`: it never
    /// carried one).
    free_at: Option<Instant>,
}

impl Lane {
    pub(crate) fn new(delay: Duration, bits_per_second: Option<f64>) -> Self {
        Self {
            delay,
            bits_per_second,
            chunks: VecDeque::new(),
            bytes: 0,
            free_at: None,
        }
    }

    /// Whether the relay may read more for this direction.
    pub(crate) fn has_room(&self) -> bool {
        self.bytes < LANE_BYTES
    }

    /// Takes a chunk read at `read_at`: it is due once the link has carried it (after
    /// those before it, at the rate) and the delay has passed. An empty chunk is the
    /// close, due after the delay behind the chunks before it.
    pub(crate) fn push(&mut self, chunk: Vec<u8>, read_at: Instant) {
        let start = self.free_at.map_or(read_at, |free_at| free_at.max(read_at));
        let carried = match self.bits_per_second {
            Some(bits) => Duration::from_secs_f64(chunk.len() as f64 * 8.0 / bits),
            None => Duration::ZERO,
        };
        let carried_at = start + carried;
        self.free_at = Some(carried_at);
        self.bytes += chunk.len();
        self.chunks.push_back((carried_at + self.delay, chunk));
    }

    /// When the first chunk is due; `None` when nothing is in flight.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.chunks.front().map(|(due, _)| *due)
    }

    /// The first chunk and when it was due, taken off the lane; the queue's memory
    /// goes with the last one.
    pub(crate) fn pop(&mut self) -> Option<(Instant, Vec<u8>)> {
        let (due, chunk) = self.chunks.pop_front()?;
        self.bytes -= chunk.len();
        if self.chunks.is_empty() {
            self.chunks = VecDeque::new();
        }
        Some((due, chunk))
    }

    /// Drops everything in flight (the direction is black-holed); the bytes dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let bytes = self.bytes;
        self.chunks = VecDeque::new();
        self.bytes = 0;
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_due_after_its_time_on_the_link_and_the_delay_in_order() {
        let start = Instant::now();
        let mut lane = Lane::new(Duration::from_millis(35), Some(1e6));
        lane.push(vec![0; 1000], start);
        // 1,000 bytes at 1 Mbit/s: 8 ms on the link, then 35 ms.
        assert_eq!(lane.due(), Some(start + Duration::from_millis(43)));
        // The next waits for the first to be carried, whenever it was read.
        lane.push(vec![0; 1000], start + Duration::from_millis(1));
        lane.push(Vec::new(), start + Duration::from_millis(2));
        assert_eq!(lane.pop().map(|(_, chunk)| chunk.len()), Some(1000));
        assert_eq!(lane.due(), Some(start + Duration::from_millis(51)));
        lane.pop();
        // The close follows the bytes before it, and takes no time on the link.
        assert_eq!(lane.due(), Some(start + Duration::from_millis(51)));
        assert_eq!(lane.pop().map(|(_, chunk)| chunk), Some(Vec::new()));
        assert_eq!(lane.due(), None);
        // An idle link carries a chunk from the instant it is read.
        let later = start + Duration::from_secs(1);
        lane.push(vec![0; 125], later);
        assert_eq!(lane.due(), Some(later + Duration::from_millis(36)));
    }

    #[test]
    fn without_a_rate_only_the_delay_and_the_room_is_bounded() {
        let start = Instant::now();
        let mut lane = Lane::new(Duration::from_millis(10), None);
        for _ in 0..LANE_BYTES / 16_384 {
            assert!(lane.has_room());
            lane.push(vec![0; 16_384], start);
        }
        assert!(!lane.has_room());
        assert_eq!(lane.due(), Some(start + Duration::from_millis(10)));
        assert_eq!(lane.clear(), LANE_BYTES);
        assert!(lane.has_room() && lane.due().is_none());
    }

    #[test]
    fn a_rate_of_zero_is_refused_and_nothing_set_is_a_plain_relay() {
        assert!(!StreamLink::default().is_set());
        let zero = StreamLink {
            link_up: Some(0.0),
            ..StreamLink::default()
        };
        assert_eq!(zero.check().unwrap_err().key, "link_up");
    }
}
