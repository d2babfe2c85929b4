//! A fleet's fingerprint: every device and every planned notification hashed, so that
//! shards merge by XOR and two runs with equal digests ran the same fleet. The injector
//! adds notifications, the worker its devices; the worker's report carries it.

use crate::seeds;

/// A fingerprint of a fleet, equal for the same fleet however it is sharded: every
/// device (fleet index, kind, heartbeat, DeviceId) and every planned notification (fleet
/// index, sequence number, planned offset) hashes to 64 bits, and the hashes are XORed,
/// so shards merge by XOR. Two runs with equal digests ran the same devices and planned
/// the same notifications for them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct FleetDigest {
    #[serde(with = "hex_u64")]
    #[cfg_attr(test, schemars(with = "String"))]
    pub devices: u64,
    /// Notifications the injector sent (each planned one it reached).
    pub planned_notifications: u64,
    #[serde(with = "hex_u64")]
    #[cfg_attr(test, schemars(with = "String"))]
    pub notifications: u64,
}

impl FleetDigest {
    /// Adds device `fleet_index`, of kind `kind`, with its heartbeat and DeviceId.
    pub fn add_device(
        &mut self,
        fleet_index: usize,
        kind: &str,
        heartbeat: std::time::Duration,
        device_id: &str,
    ) {
        let fields = format!("{fleet_index}/{kind}/{}/{device_id}", heartbeat.as_millis());
        self.devices ^= seeds::splitmix64(seeds::fnv1a(fields.as_bytes()));
    }

    /// The hash of one planned notification.
    /// Integers mixed, no text: it runs on the injector thread for every notification.
    pub fn notification(fleet_index: usize, seq: u64, offset_us: u128) -> u64 {
        let mixed = seeds::splitmix64(fleet_index as u64) ^ seeds::splitmix64(seq).rotate_left(21);
        seeds::splitmix64(mixed ^ (offset_us as u64).rotate_left(42))
    }

    pub(super) fn merge(&mut self, other: &FleetDigest) {
        self.devices ^= other.devices;
        self.notifications ^= other.notifications;
        self.planned_notifications += other.planned_notifications;
    }
}

/// A u64 as 16 hex digits (JSON readers lose precision on large numbers).
mod hex_u64 {
    pub(super) fn serialize<S: serde::Serializer>(
        value: &u64,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{value:016x}"))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<u64, D::Error> {
        let text: String = serde::Deserialize::deserialize(deserializer)?;
        u64::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}
