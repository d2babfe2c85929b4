//! Every random choice of a run flows from its one recorded seed and the place the
//! choice is about: a device's kind, its heartbeat jitter and backoff come from
//! `(run seed, the device's index in the whole fleet)`, and the injector's schedule from
//! the run seed alone. So a fleet is the same fleet whatever the number of workers or
//! machines it is split over, and a run can be repeated.

/// The random streams of a run; each gets its own derived seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Which kind of phone a device is.
    Kind,
    /// A device's own choices: heartbeat jitter, backoff.
    Device,
    /// The notification schedule of the whole fleet.
    Schedule,
    /// Which connections the churn stage drops (per worker).
    Churn,
    /// A middlebox's idle-timeout jitter (per listener).
    Firewall,
    /// The simulated SMS gateway's delay and loss (per notification).
    Sms,
    /// The phase of a device's paging occasion in its radio's paging cycle.
    Paging,
}

impl Stream {
    fn salt(self) -> u64 {
        match self {
            Self::Kind => 0x4B49_4E44,
            Self::Device => 0x4445_5649_4345,
            Self::Schedule => 0x5343_4845_4455_4C45,
            Self::Churn => 0x0043_4855_524E,
            Self::Firewall => 0x4649_5245_5741_4C4C,
            Self::Sms => 0x0053_4D53,
            Self::Paging => 0x5041_4749_4E47,
        }
    }
}

/// The seed of `stream` for `index` (a device's fleet index, a worker's shard number,
/// or 0 for fleet-wide streams) in a run seeded with `run_seed`.
pub(crate) fn derive(run_seed: u64, stream: Stream, index: u64) -> u64 {
    splitmix64(splitmix64(run_seed ^ stream.salt()) ^ splitmix64(index))
}

/// A well-mixed 64-bit hash (splitmix64's finalizer).
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a of `bytes`: a stable hash of a name (not a random choice).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_indices_get_different_seeds() {
        let a = derive(1, Stream::Kind, 17);
        assert_eq!(a, derive(1, Stream::Kind, 17));
        assert_ne!(a, derive(1, Stream::Device, 17));
        assert_ne!(a, derive(1, Stream::Kind, 18));
        assert_ne!(a, derive(2, Stream::Kind, 17));
        assert_ne!(fnv1a(b"user1"), fnv1a(b"user2"));
    }
}
