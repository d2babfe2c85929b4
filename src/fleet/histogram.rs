//! The histograms a worker keeps, named once: [`HistogramName::key`] is each one's key
//! in a worker's document and in a run's result (`wakeup_latency_us`, ...), and what
//! the summary prints; thresholds and `compare` reach them through this enum.

use std::fmt;

/// A histogram of a worker's document. Ordered by its key, which a map of them can be
/// looked up by (`histograms["wakeup_latency_us"]`, as the documents read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramName {
    /// From a change's planned instant to the Ping response naming its folder.
    WakeupLatency,
    /// From a change's datagram leaving the injector (its transmit stamp) to the Ping
    /// response naming its folder: the wake-up without the injector's lag.
    WakeupFromDeparture,
    /// From a change's planned instant to the Sync response holding its item.
    MailOnDeviceLatency,
    /// The same in real-world time: a compressed run's waits scaled back by its
    /// `time_scale`, its network exchanges as they ran (each device's own clock; equal
    /// to `MailOnDeviceLatency` in a run that is not compressed).
    MailOnDeviceWorld,
    /// Modelled, not measured: `MailOnDeviceWorld` plus the radio's own delay for that
    /// delivery (`fleet::radio`): the paging wait and promotion when the radio was idle
    /// as the mail's Ping answer (or the device's request, for devices that do not
    /// push) reached it, nothing when it was up.
    MailOnDeviceWithRadio,
    /// From a change's planned instant to its datagram (or mail) leaving the injector.
    InjectorLag,
    /// For each Ping that died of an idle drop: its sending to the next answered one's.
    Unreachable,
    /// When each adaptive device settled, from the worker's start.
    HeartbeatSettled,
    /// From a flush to each parked device's first Ping on a new connection.
    Repark,
    /// Connecting, and the TLS handshake.
    Connect,
    TlsHandshake,
    /// The work time of each turn of a worker's event loop in the hold.
    EventLoopLag,
    /// Instants after a flush: connections, full and resumed handshakes.
    AfterFlushConnect,
    AfterFlushFullHandshake,
    AfterFlushResumedHandshake,
    /// The round trip each connection's kernel measured (`TCP_INFO`, smoothed), read
    /// at each response on an emulated network: the path checked against its setting.
    PathRtt,
}

impl HistogramName {
    pub const ALL: [Self; 16] = [
        Self::WakeupLatency,
        Self::WakeupFromDeparture,
        Self::MailOnDeviceLatency,
        Self::MailOnDeviceWorld,
        Self::MailOnDeviceWithRadio,
        Self::InjectorLag,
        Self::Unreachable,
        Self::HeartbeatSettled,
        Self::Repark,
        Self::Connect,
        Self::TlsHandshake,
        Self::EventLoopLag,
        Self::AfterFlushConnect,
        Self::AfterFlushFullHandshake,
        Self::AfterFlushResumedHandshake,
        Self::PathRtt,
    ];

    /// The key in documents and results (every value in microseconds).
    pub fn key(self) -> &'static str {
        match self {
            Self::WakeupLatency => "wakeup_latency_us",
            Self::WakeupFromDeparture => "wakeup_from_departure_us",
            Self::MailOnDeviceLatency => "mail_on_device_latency_us",
            Self::MailOnDeviceWorld => "mail_on_device_world_us",
            Self::MailOnDeviceWithRadio => "mail_on_device_with_radio_modelled_us",
            Self::InjectorLag => "injector_lag_us",
            Self::Unreachable => "unreachable_us",
            Self::HeartbeatSettled => "heartbeat_settled_us",
            Self::Repark => "repark_us",
            Self::Connect => "connect_us",
            Self::TlsHandshake => "tls_handshake_us",
            Self::EventLoopLag => "event_loop_lag_us",
            Self::AfterFlushConnect => "after_flush_connect_us",
            Self::AfterFlushFullHandshake => "after_flush_full_handshake_us",
            Self::AfterFlushResumedHandshake => "after_flush_resumed_handshake_us",
            Self::PathRtt => "path_rtt_us",
        }
    }
}

impl Ord for HistogramName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(other.key())
    }
}

impl PartialOrd for HistogramName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::borrow::Borrow<str> for HistogramName {
    fn borrow(&self) -> &str {
        self.key()
    }
}

impl fmt::Display for HistogramName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl serde::Serialize for HistogramName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.key())
    }
}

impl<'de> serde::Deserialize<'de> for HistogramName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let key = String::deserialize(deserializer)?;
        Self::ALL
            .into_iter()
            .find(|name| name.key() == key)
            .ok_or_else(|| D::Error::custom(format!("no histogram is called {key:?}")))
    }
}

#[cfg(test)]
impl schemars::JsonSchema for HistogramName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HistogramName".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let keys: Vec<&str> = Self::ALL.iter().map(|name| name.key()).collect();
        schemars::json_schema!({"type": "string", "enum": keys})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_from_its_key() {
        for name in HistogramName::ALL {
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{}\"", name.key()));
            assert_eq!(serde_json::from_str::<HistogramName>(&json).unwrap(), name);
        }
        assert!(serde_json::from_str::<HistogramName>("\"nothing_us\"").is_err());
    }
}
