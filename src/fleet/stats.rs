//! What one device worker measures: its latency histograms (see
//! [`crate::measure::latency`]) and its counters.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::measure::intervals::IntervalRecorder;
use crate::measure::latency::Latency;

/// Counters by name (command, status, error kind), ordered for stable output.
pub type Tally = BTreeMap<String, u64>;

/// Adds one to a named counter (the name is copied only the first time).
pub fn tally(map: &mut Tally, key: impl AsRef<str> + Into<String>) {
    match map.get_mut(key.as_ref()) {
        Some(count) => *count += 1,
        None => {
            map.insert(key.into(), 1);
        }
    }
}

/// Most distinct names a tally of what a server said (its headers) keeps; further names
/// count under [`OTHER_VALUES`], so a server cannot grow a worker's report without bound.
pub const MAX_SEEN_VALUES: usize = 16;
/// Longest name kept from a server's header; longer ones are cut.
pub const MAX_SEEN_VALUE_BYTES: usize = 120;
/// The name further distinct values count under.
pub const OTHER_VALUES: &str = "(other values)";

/// Adds one to the counter of a value a server sent, bounded in length and in the
/// number of distinct values.
pub fn tally_seen(map: &mut Tally, value: &str) {
    let mut end = value.len().min(MAX_SEEN_VALUE_BYTES);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let value = &value[..end];
    if map.contains_key(value) || map.len() < MAX_SEEN_VALUES {
        tally(map, value);
    } else {
        tally(map, OTHER_VALUES);
    }
}

/// Everything a worker counts, by name and in total.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Counters {
    pub requests: Tally,
    pub http_status: Tally,
    pub ping_status: Tally,
    pub errors: Tally,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub connections_opened: u64,
    pub tls_handshakes: u64,
    /// Of `tls_handshakes`, those that resumed a session with a ticket.
    #[serde(default)]
    pub tls_resumed: u64,
    pub reconnects: u64,
    /// Segments the devices' kernels retransmitted on emulated networks (`TCP_INFO`).
    #[serde(default)]
    pub tcp_retransmits: u64,
    pub devices_stopped: u64,
    pub notifications_sent: u64,
    pub notifications_delivered: u64,
    pub notifications_lost: u64,
    /// Notifications sent and not yet delivered when the run was stopped early (by a
    /// signal), still within their deadline: not lost, unfinished.
    #[serde(default)]
    pub notifications_unfinished_at_stop: u64,
    /// Delivered notifications split by whether the Ping parked when each was planned
    /// answered it (on time), or the device learnt only later, after a Ping of its had
    /// died, and got it by a Ping it sent after (late).
    #[serde(default)]
    pub notifications_on_time: u64,
    #[serde(default)]
    pub notifications_late: u64,
    /// Parked Pings that died, by how the device found out: `deadline` (no answer by
    /// heartbeat + margin: a silent drop) or `reset`.
    #[serde(default)]
    pub pings_died: Tally,
    /// Devices parked when the path was flushed, and those of them that have pinged on
    /// a new connection since.
    #[serde(default)]
    pub flush_marked: u64,
    #[serde(default)]
    pub flush_reparked: u64,
    /// The heartbeat of each adaptive or stepped device at the end, by value.
    #[serde(default)]
    pub heartbeat_at_end: Tally,
    /// Connections the churn stage cut on purpose (the device then reconnects).
    #[serde(default)]
    pub churn_drops: u64,
    /// Re-synchronisations a server asked for, by what asked (`Sync status 12`,
    /// `FolderSync status 9`, ...).
    #[serde(default)]
    pub resyncs: Tally,
    /// The protocol version each bootstrap settled on with the server, by version.
    #[serde(default)]
    pub negotiated_versions: Tally,
    /// Responses by command and HTTP status (`Ping 200`, `Options 401`).
    #[serde(default)]
    pub http_status_by_command: Tally,
    /// What servers said of themselves in answer to OPTIONS, by value: their version
    /// (`MS-Server-ActiveSync`), the protocol versions (`MS-ASProtocolVersions`) and the
    /// commands (`MS-ASProtocolCommands`) they offer.
    #[serde(default)]
    pub server_versions: Tally,
    #[serde(default)]
    pub advertised_versions: Tally,
    #[serde(default)]
    pub advertised_commands: Tally,
    /// Devices that never parked a Ping, by the last thing that set them back (an
    /// error, an HTTP status, a re-synchronisation the server kept asking for).
    #[serde(default)]
    pub never_parked: Tally,
    /// Pings answered with changes whose Sync then brought no item and for which no
    /// planned change was waiting (a server that wakes its devices for nothing), by
    /// kind of device.
    #[serde(default)]
    pub empty_wakes: Tally,
    /// Provisions answered "no policy for this client" (Policy Status 2): the device
    /// carried on without a policy key.
    #[serde(default)]
    pub provisioned_without_policy: u64,
    /// The injector thread's CPU time, and the time from its start to its last send:
    /// what keeping the schedule costs the sender (their ratio is its share of a core).
    #[serde(default)]
    pub injector_cpu_us: u64,
    #[serde(default)]
    pub injector_span_us: u64,
    /// What the devices' radios spent (`fleet::radio`, in simulated time): microseconds
    /// promoting or in a tail, microjoules, promotions from idle (billable data
    /// sessions) and packets (requests sent and responses read).
    #[serde(default)]
    pub radio_active_us: u64,
    #[serde(default)]
    pub radio_microjoules: u64,
    #[serde(default)]
    pub radio_sessions: u64,
    #[serde(default)]
    pub radio_packets: u64,
    /// Texts the simulated SMS gateway was asked to send for SMS-woken devices, and of
    /// them those it lost.
    #[serde(default)]
    pub sms_sent: u64,
    #[serde(default)]
    pub sms_lost: u64,
}

impl crate::fleet::radio::RadioCounts for Counters {
    fn add_radio(&mut self, active_s: f64, joules: f64) {
        self.radio_active_us += (active_s * 1e6).round() as u64;
        self.radio_microjoules += (joules * 1e6).round() as u64;
    }

    fn add_session(&mut self) {
        self.radio_sessions += 1;
    }

    fn add_packet(&mut self) {
        self.radio_packets += 1;
    }
}

impl Counters {
    /// Adds another worker's counts.
    pub fn add(&mut self, more: &Counters) {
        for (into, from) in [
            (&mut self.requests, &more.requests),
            (&mut self.http_status, &more.http_status),
            (&mut self.ping_status, &more.ping_status),
            (&mut self.errors, &more.errors),
            (&mut self.resyncs, &more.resyncs),
            (&mut self.negotiated_versions, &more.negotiated_versions),
            (&mut self.never_parked, &more.never_parked),
            (&mut self.empty_wakes, &more.empty_wakes),
            (
                &mut self.http_status_by_command,
                &more.http_status_by_command,
            ),
            (&mut self.server_versions, &more.server_versions),
            (&mut self.advertised_versions, &more.advertised_versions),
            (&mut self.advertised_commands, &more.advertised_commands),
            (&mut self.pings_died, &more.pings_died),
            (&mut self.heartbeat_at_end, &more.heartbeat_at_end),
        ] {
            for (name, count) in from {
                *into.entry(name.clone()).or_default() += count;
            }
        }
        self.bytes_sent += more.bytes_sent;
        self.bytes_received += more.bytes_received;
        self.connections_opened += more.connections_opened;
        self.tls_handshakes += more.tls_handshakes;
        self.tls_resumed += more.tls_resumed;
        self.reconnects += more.reconnects;
        self.tcp_retransmits += more.tcp_retransmits;
        self.devices_stopped += more.devices_stopped;
        self.notifications_sent += more.notifications_sent;
        self.notifications_delivered += more.notifications_delivered;
        self.notifications_lost += more.notifications_lost;
        self.notifications_unfinished_at_stop += more.notifications_unfinished_at_stop;
        self.notifications_on_time += more.notifications_on_time;
        self.notifications_late += more.notifications_late;
        self.flush_marked += more.flush_marked;
        self.flush_reparked += more.flush_reparked;
        self.churn_drops += more.churn_drops;
        self.provisioned_without_policy += more.provisioned_without_policy;
        self.injector_cpu_us += more.injector_cpu_us;
        self.injector_span_us += more.injector_span_us;
        self.radio_active_us += more.radio_active_us;
        self.radio_microjoules += more.radio_microjoules;
        self.radio_sessions += more.radio_sessions;
        self.radio_packets += more.radio_packets;
        self.sms_sent += more.sms_sent;
        self.sms_lost += more.sms_lost;
    }

    /// What was counted after `earlier`, a snapshot of these same counters.
    pub fn since(&self, earlier: &Counters) -> Counters {
        let minus = |now: &Tally, before: &Tally| -> Tally {
            now.iter()
                .map(|(name, count)| {
                    let before = before.get(name).copied().unwrap_or(0);
                    (name.clone(), count.saturating_sub(before))
                })
                .filter(|(_, count)| *count > 0)
                .collect()
        };
        Counters {
            requests: minus(&self.requests, &earlier.requests),
            http_status: minus(&self.http_status, &earlier.http_status),
            ping_status: minus(&self.ping_status, &earlier.ping_status),
            errors: minus(&self.errors, &earlier.errors),
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
            connections_opened: self
                .connections_opened
                .saturating_sub(earlier.connections_opened),
            tls_handshakes: self.tls_handshakes.saturating_sub(earlier.tls_handshakes),
            tls_resumed: self.tls_resumed.saturating_sub(earlier.tls_resumed),
            reconnects: self.reconnects.saturating_sub(earlier.reconnects),
            tcp_retransmits: self.tcp_retransmits.saturating_sub(earlier.tcp_retransmits),
            devices_stopped: self.devices_stopped.saturating_sub(earlier.devices_stopped),
            notifications_sent: self
                .notifications_sent
                .saturating_sub(earlier.notifications_sent),
            notifications_delivered: self
                .notifications_delivered
                .saturating_sub(earlier.notifications_delivered),
            notifications_lost: self
                .notifications_lost
                .saturating_sub(earlier.notifications_lost),
            notifications_unfinished_at_stop: self
                .notifications_unfinished_at_stop
                .saturating_sub(earlier.notifications_unfinished_at_stop),
            notifications_on_time: self
                .notifications_on_time
                .saturating_sub(earlier.notifications_on_time),
            notifications_late: self
                .notifications_late
                .saturating_sub(earlier.notifications_late),
            flush_marked: self.flush_marked.saturating_sub(earlier.flush_marked),
            flush_reparked: self.flush_reparked.saturating_sub(earlier.flush_reparked),
            pings_died: minus(&self.pings_died, &earlier.pings_died),
            heartbeat_at_end: minus(&self.heartbeat_at_end, &earlier.heartbeat_at_end),
            churn_drops: self.churn_drops.saturating_sub(earlier.churn_drops),
            resyncs: minus(&self.resyncs, &earlier.resyncs),
            negotiated_versions: minus(&self.negotiated_versions, &earlier.negotiated_versions),
            never_parked: minus(&self.never_parked, &earlier.never_parked),
            empty_wakes: minus(&self.empty_wakes, &earlier.empty_wakes),
            provisioned_without_policy: self
                .provisioned_without_policy
                .saturating_sub(earlier.provisioned_without_policy),
            injector_cpu_us: self.injector_cpu_us.saturating_sub(earlier.injector_cpu_us),
            injector_span_us: self
                .injector_span_us
                .saturating_sub(earlier.injector_span_us),
            radio_active_us: self.radio_active_us.saturating_sub(earlier.radio_active_us),
            radio_microjoules: self
                .radio_microjoules
                .saturating_sub(earlier.radio_microjoules),
            radio_sessions: self.radio_sessions.saturating_sub(earlier.radio_sessions),
            radio_packets: self.radio_packets.saturating_sub(earlier.radio_packets),
            sms_sent: self.sms_sent.saturating_sub(earlier.sms_sent),
            sms_lost: self.sms_lost.saturating_sub(earlier.sms_lost),
            http_status_by_command: minus(
                &self.http_status_by_command,
                &earlier.http_status_by_command,
            ),
            server_versions: minus(&self.server_versions, &earlier.server_versions),
            advertised_versions: minus(&self.advertised_versions, &earlier.advertised_versions),
            advertised_commands: minus(&self.advertised_commands, &earlier.advertised_commands),
        }
    }
}

/// The interval log's tag of the wake-up from the datagram's departure.
pub const DEPARTURE_TAG: &str = "wakeup_from_departure";

/// Everything a worker counts and times.
#[derive(Debug, Clone, Default)]
pub struct FleetStats {
    pub wakeup: Latency,
    /// The wake-up from the datagram's departure (its transmit stamp) rather than its
    /// plan: the server's share (and the network's and the device's), without the
    /// injector's lag.
    pub wakeup_from_departure: Latency,
    pub mail_on_device: Latency,
    /// Mail on device in real-world time (see `HistogramName::MailOnDeviceWorld`).
    pub mail_on_device_world: Latency,
    /// Modelled: mail on device in real-world time plus the radio's own delay (see
    /// `HistogramName::MailOnDeviceWithRadio`).
    pub mail_on_device_with_radio: Latency,
    pub injector_lag: Latency,
    /// For each Ping that died: from when it was sent (the flow's last activity) to when
    /// the device sent its next Ping that was answered. The path dropped the flow its
    /// idle timeout after the first instant, so the time the device was unreachable is
    /// this less that timeout.
    pub unreachable: Latency,
    /// For each device parked when the path was flushed: from the flush to its first
    /// Ping on a new connection.
    pub repark: Latency,
    /// How long after the worker started each adaptive device settled.
    pub heartbeat_settled: Latency,
    pub connect: Latency,
    pub tls_handshake: Latency,
    /// Work time of each event-loop turn during the hold.
    pub loop_lag: Latency,
    /// The kernel's smoothed round trip at each response on an emulated network.
    pub path_rtt: Latency,
    pub after_flush: AfterFlush,
    /// What the latency histograms gained second by second.
    pub intervals: IntervalRecorder,
    pub counters: Counters,
    /// The injector's planned notifications: how many it reached, and the XOR of their
    /// hashes (see `digest::FleetDigest`).
    pub notifications_planned: u64,
    pub notifications_digest: u64,
}

impl FleetStats {
    /// A notification's wake-up latency: in the run-long histogram and in the second's.
    pub fn record_wakeup(&mut self, latency: Duration) {
        self.wakeup.record(latency);
        self.intervals.record("wakeup", latency);
    }

    /// A notification's wake-up latency from its datagram's departure.
    pub fn record_wakeup_from_departure(&mut self, latency: Duration) {
        self.wakeup_from_departure.record(latency);
        self.intervals.record(DEPARTURE_TAG, latency);
    }

    /// A notification's latency until its mail was on the device.
    pub fn record_mail_on_device(&mut self, latency: Duration) {
        self.mail_on_device.record(latency);
        self.intervals.record("mail_on_device", latency);
    }

    /// An event-loop turn's work time.
    pub fn record_loop_lag(&mut self, lag: Duration) {
        self.loop_lag.record(lag);
        self.intervals.record("loop_lag", lag);
    }

    /// The injector's lag behind its plan for one notification, on a thread that does
    /// not tick otherwise: the second is the wall clock's now.
    pub fn record_injector_lag(&mut self, lag: Duration) {
        self.injector_lag.record(lag);
        self.intervals.tick(std::time::SystemTime::now());
        self.intervals.record("injector_lag", lag);
    }
}

/// When, after the path was flushed, the worker opened connections and finished TLS
/// handshakes: each one's time since the flush, so that the histograms, merged over
/// workers, give the busiest second of the reconnect storm (see
/// [`Latency::busiest_second`]).
#[derive(Debug, Clone, Default)]
pub struct AfterFlush {
    /// When the path was flushed; nothing is recorded before.
    pub since: Option<std::time::Instant>,
    pub connects: Latency,
    pub full_handshakes: Latency,
    pub resumed_handshakes: Latency,
}

impl AfterFlush {
    /// A connection opened at `now`.
    pub fn connected(&mut self, now: std::time::Instant) {
        if let Some(since) = self.since {
            self.connects.record(now.saturating_duration_since(since));
        }
    }

    /// A TLS handshake finished at `now`, resumed or full.
    pub fn handshake(&mut self, now: std::time::Instant, resumed: bool) {
        if let Some(since) = self.since {
            let into = match resumed {
                true => &mut self.resumed_handshakes,
                false => &mut self.full_handshakes,
            };
            into.record(now.saturating_duration_since(since));
        }
    }
}

/// A worker's running figures, one JSON line a second on its stdout with
/// `pingfleet devices --progress` (what the orchestrator's live view shows).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Progress {
    pub bootstrapped: usize,
    /// Notifications the injector has sent so far.
    pub notified: u64,
    pub delivered: u64,
    pub lost: u64,
    /// Wake-up latency p99 so far (0 before the first).
    pub wakeup_p99_us: u64,
}

impl Progress {
    /// The line a worker prints.
    pub fn to_line(self) -> String {
        serde_json::json!({ "progress": self }).to_string()
    }

    /// Several workers' figures together: counts added, the worst p99 kept.
    pub fn together(self, other: Progress) -> Progress {
        Progress {
            bootstrapped: self.bootstrapped + other.bootstrapped,
            notified: self.notified + other.notified,
            delivered: self.delivered + other.delivered,
            lost: self.lost + other.lost,
            wakeup_p99_us: self.wakeup_p99_us.max(other.wakeup_p99_us),
        }
    }

    /// Reads a line printed by [`Progress::to_line`]; `None` for any other line.
    pub fn from_line(line: &str) -> Option<Self> {
        let mut value: serde_json::Value = serde_json::from_str(line).ok()?;
        serde_json::from_value(value.get_mut("progress")?.take()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of `Counters`, as JSON, with a value of 1 (counts) or one entry of 1
    /// (tallies).
    fn every_field_once() -> Counters {
        let mut value = serde_json::to_value(Counters::default()).unwrap();
        for (_, field) in value.as_object_mut().unwrap().iter_mut() {
            *field = match field {
                serde_json::Value::Object(_) => serde_json::json!({ "x": 1 }),
                _ => serde_json::json!(1),
            };
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn adding_counters_adds_every_field_and_since_takes_every_field_back() {
        let once = every_field_once();
        let mut twice = once.clone();
        twice.add(&once);
        let value = serde_json::to_value(&twice).unwrap();
        for (name, field) in value.as_object().unwrap() {
            let count = field.get("x").unwrap_or(field);
            assert_eq!(count, &serde_json::json!(2), "{name} is not added");
        }
        assert_eq!(twice.since(&once), once, "since() misses a field");
    }

    #[test]
    fn progress_lines_round_trip_and_other_lines_are_not_progress() {
        let progress = Progress {
            bootstrapped: 3,
            notified: 10,
            delivered: 9,
            lost: 1,
            wakeup_p99_us: 250,
        };
        assert_eq!(Progress::from_line(&progress.to_line()), Some(progress));
        let other = Progress {
            wakeup_p99_us: 900,
            ..Progress::default()
        };
        let both = progress.together(other);
        assert_eq!((both.notified, both.lost, both.wakeup_p99_us), (10, 1, 900));
        assert_eq!(Progress::from_line("devices 100 (shard 0/1)"), None);
        assert_eq!(Progress::from_line("{\"other\": 1}"), None);
    }

    #[test]
    fn counters_since_a_snapshot_are_the_difference() {
        let mut before = Counters::default();
        tally(&mut before.requests, "Ping");
        before.bytes_sent = 100;
        let mut now = before.clone();
        tally(&mut now.requests, "Ping");
        tally(&mut now.requests, "Sync");
        now.bytes_sent = 250;
        now.churn_drops = 3;
        let delta = now.since(&before);
        assert_eq!(delta.requests.get("Ping"), Some(&1));
        assert_eq!(delta.requests.get("Sync"), Some(&1));
        assert_eq!(delta.bytes_sent, 150);
        assert_eq!(delta.churn_drops, 3);
        let mut sum = before.clone();
        sum.add(&delta);
        assert_eq!(sum, now);
        assert!(now.since(&now).requests.is_empty());
    }

    #[test]
    fn tallies_count_by_name() {
        let mut map = Tally::new();
        tally(&mut map, "Ping");
        tally(&mut map, "Ping");
        tally(&mut map, "Sync");
        assert_eq!(map["Ping"], 2);
        assert_eq!(map.len(), 2);
    }
}
