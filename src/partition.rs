//! Which server partition owns a user: a stable hash of the user name, so the device
//! fleet, the injector and every server process agree without talking to each other.

/// A partition spec `i/K`: this process is partition `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Partition {
    /// The single partition of an unpartitioned server.
    pub const WHOLE: Partition = Partition { index: 0, count: 1 };

    /// Whether this partition owns the user.
    pub fn owns(&self, user: &str) -> bool {
        partition_of(user, self.count) == self.index
    }

    /// Whether this shard of a fleet holds device `fleet_index` (devices j, j+M, ...).
    pub fn holds(&self, fleet_index: usize) -> bool {
        fleet_index % self.count as usize == self.index as usize
    }
}

/// A partition spec that is not `i/K` with `i < K`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    #[error("{0:?} is not i/K (for example 0/4)")]
    NoSlash(String),
    #[error("partition index {0:?} is not a number")]
    Index(String),
    #[error("partition count {0:?} is not a number")]
    Count(String),
    #[error("partition {index}/{count}: need 0 <= i < K")]
    OutOfRange { index: u32, count: u32 },
}

impl std::str::FromStr for Partition {
    type Err = PartitionError;

    /// Parses `i/K` with `i < K`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| PartitionError::NoSlash(text.to_owned()))?;
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| PartitionError::Index(index.to_owned()))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| PartitionError::Count(count.to_owned()))?;
        if count == 0 || index >= count {
            return Err(PartitionError::OutOfRange { index, count });
        }
        Ok(Self { index, count })
    }
}

impl serde::Serialize for Partition {
    /// As `i/K`, the form the flags take.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The partition (0..count) that owns a user: FNV-1a of the name, modulo the count.
/// FNV-1a is fixed forever, unlike std's hasher, so shards on other machines agree.
pub fn partition_of(user: &str, count: u32) -> u32 {
    (crate::seeds::fnv1a(user.as_bytes()) % u64::from(count.max(1))) as u32
}

/// How many processes of a role (server partitions, device workers): chosen from the
/// device count and the open-file limit, or a number (checked to be at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessCount {
    #[default]
    Auto,
    Count(u32),
}

impl<'de> serde::Deserialize<'de> for ProcessCount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Text(String),
        }
        match Raw::deserialize(deserializer) {
            Ok(Raw::Number(count)) => Ok(Self::Count(count)),
            Ok(Raw::Text(text)) if text == "auto" => Ok(Self::Auto),
            _ => Err(D::Error::custom(
                "a process count is \"auto\" or a number from 1",
            )),
        }
    }
}

impl serde::Serialize for ProcessCount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => serializer.serialize_str("auto"),
            Self::Count(count) => serializer.serialize_u32(*count),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!("1/4".parse(), Ok(Partition { index: 1, count: 4 }));
        let out_of_range = "4/4".parse::<Partition>().unwrap_err();
        assert_eq!(
            out_of_range,
            PartitionError::OutOfRange { index: 4, count: 4 }
        );
        assert_eq!(out_of_range.to_string(), "partition 4/4: need 0 <= i < K");
        let no_slash = "1".parse::<Partition>().unwrap_err();
        assert_eq!(no_slash, PartitionError::NoSlash("1".into()));
        assert_eq!(no_slash.to_string(), "\"1\" is not i/K (for example 0/4)");
        let letters = "a/2".parse::<Partition>().unwrap_err();
        assert_eq!(letters, PartitionError::Index("a".into()));
        assert!(letters.to_string().contains("index \"a\" is not a number"));
        assert_eq!(
            "0/x".parse::<Partition>(),
            Err(PartitionError::Count("x".into()))
        );
        assert!(matches!(
            "0/0".parse::<Partition>(),
            Err(PartitionError::OutOfRange { count: 0, .. })
        ));
    }

    #[test]
    fn the_hash_is_stable_and_spreads_users() {
        // Fixed values: changing the hash would split fleets across versions.
        assert_eq!(partition_of("user0", 1_000_003), 46_252);
        let mut counts = [0u32; 4];
        for index in 0..40_000 {
            counts[partition_of(&format!("user{index}"), 4) as usize] += 1;
        }
        assert!(
            counts.iter().all(|count| (9_000..11_000).contains(count)),
            "{counts:?}"
        );
    }
}
