//! One simulated phone as a sans-IO state machine: responses and timer events in,
//! requests and connection instructions out. It knows nothing of sockets; the engine
//! carries its bytes. States are named by what the device waits for.
//!
//! Bootstrap as a phone does it (OPTIONS, Provision twice, FolderSync, Sync from key 0
//! and while MoreAvailable for each pushed folder), then the Ping loop with every status
//! handled as the protocol document says. Wake-up and mail-on-device latencies are
//! recorded here, from each notification's planned send instant. `responses` holds
//! what the device makes of each answer; `request` what it sends; `pending` the
//! notifications on their way to it; `folders` the folders it pushes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::http::HttpResponse;
use super::profile::Profile;
use super::radio::{Direction, RadioMeter, SimClock};
mod airtime;
mod folders;
mod idle;
mod pending;
mod request;
mod responses;

use folders::PushedFolder;
use pending::Pending;

use super::errors::DeviceError;
use super::heartbeat::Heartbeat;
use super::stats::{tally, FleetStats};
use super::target::Endpoint;
use crate::eas::headers::BasicCredentials;
use crate::eas::ProtocolVersion;
use crate::seeds::{self, Stream};

const WINDOW_SIZE: u32 = 100;
/// How a header the server left out of its OPTIONS answer is counted.
const NOT_SENT: &str = "(not sent)";

/// What the engine must do for the device next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Write these bytes (connecting first if there is no connection) and deliver the
    /// response, or report a disconnect if none has come by `deadline`.
    Send { bytes: Vec<u8>, deadline: Instant },
    /// Close the connection; connect again at `at` and call [`Device::on_reconnected`].
    Reconnect { at: Instant },
    /// Nothing to send: the device (scheduled or SMS-woken) waits until `until` (its
    /// next sync, or its next text; `None`: until a text is on its way) and then calls
    /// [`Device::on_idle_timer`]; its connection is closed unless `keep_connection`.
    Idle {
        until: Option<Instant>,
        keep_connection: bool,
    },
    /// As `Reconnect`, to another server URL (a 451 redirect).
    Redirect { location: String, at: Instant },
    /// The device gave up (credentials refused): close and forget it.
    Stop,
}

/// What the device waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    ExpectOptions,
    ExpectPolicy,
    ExpectPolicyAck,
    ExpectFolderSync,
    ExpectSync,
    /// A Ping is parked at the server.
    Parked,
    /// Nothing in flight: a device that does not push, between its syncs.
    Idle,
    Stopped,
}

impl State {
    /// The command a device in this state sends (and whose answer it awaits).
    pub(crate) fn command_name(self) -> &'static str {
        match self {
            Self::ExpectOptions => "Options",
            Self::ExpectPolicy | Self::ExpectPolicyAck => "Provision",
            Self::ExpectFolderSync => "FolderSync",
            Self::ExpectSync => "Sync",
            Self::Parked => "Ping",
            Self::Idle | Self::Stopped => "none",
        }
    }
}

/// One simulated device.
#[derive(Debug)]
pub(crate) struct Device {
    pub user: String,
    device_id: String,
    authorization: String,
    host: String,
    /// The path requests go to (the target URL's).
    path: String,
    profile: Arc<Profile>,
    rng: SmallRng,
    state: State,
    version: ProtocolVersion,
    policy_key: Option<String>,
    folder_key: String,
    folders: Vec<PushedFolder>,
    /// Indices into `folders` still to sync before the next Ping.
    to_sync: VecDeque<usize>,
    heartbeat: Heartbeat,
    ping_folder_limit: usize,
    /// The server has the Ping cached, so an empty body may be sent.
    ping_cached: bool,
    backoff_attempt: u32,
    /// Re-synchronisations the server asked for since the device last parked.
    resyncs_in_a_row: u32,
    /// A Ping answered with changes woke the device for no planned change: if the Syncs
    /// that follow bring nothing either, it was an empty wake.
    wake_unexplained: bool,
    /// The server's items carry pingfleet's labels (`seq=N` in the subject): each
    /// planned change is known when its item arrives.
    labels_items: bool,
    /// The last Ping answered with changes: when, and the indices of the folders it
    /// named (a datagram whose departure is told later may have caused it).
    last_changes: Option<(Instant, Vec<usize>)>,
    /// The last thing that set the device back (an error, an HTTP status, a
    /// re-synchronisation): what a device that never parks reports as its reason.
    setback: Option<String>,
    /// When the Ping in flight was sent.
    ping_sent_at: Option<Instant>,
    /// Parked Pings of this device that died so far.
    dead_pings: u64,
    /// Since when the device has been unreachable: the sending of a Ping that died (or
    /// the flush that killed it), until a later Ping is answered.
    unreachable_since: Option<Instant>,
    /// The last flush of the path, and whether `unreachable_since` is that flush.
    flushed_at: Option<Instant>,
    unreachable_by_flush: bool,
    pending: Vec<Pending>,
    /// A scheduled device's next sync; the instants the texts on their way to an
    /// SMS-woken device arrive.
    next_sync: Option<Instant>,
    texts: Vec<Instant>,
    /// Its radio, its clock in simulated time (from its first packet), and whether an
    /// exchange is in flight (the clock then runs at real speed).
    radio: RadioMeter,
    clock: Option<SimClock>,
    in_exchange: bool,
}

impl Device {
    /// Device `fleet_index` of the whole fleet, for `user`. Its random choices (heartbeat
    /// jitter, backoff) follow `(run_seed, fleet_index)`; its DeviceId follows the user and
    /// the index only, so a server sees the same device partnerships on every run.
    pub(crate) fn new(
        user: &str,
        password: &str,
        endpoint: (&str, &str),
        profile: Arc<Profile>,
        fleet_index: usize,
        run_seed: u64,
    ) -> Self {
        let mut rng =
            SmallRng::seed_from_u64(seeds::derive(run_seed, Stream::Device, fleet_index as u64));
        let jitter_ms = profile.settings.heartbeat_jitter.0.as_millis() as i64;
        let offset_ms = if jitter_ms > 0 {
            rng.random_range(-jitter_ms..=jitter_ms)
        } else {
            0
        };
        let heartbeat_ms = (profile.settings.heartbeat.0.as_millis() as i64 + offset_ms).max(1000);
        let heartbeat = Heartbeat::new(
            profile.settings.heartbeat_plan(),
            Duration::from_millis(heartbeat_ms as u64),
        );
        let folders = profile
            .settings
            .folders
            .iter()
            .map(|spec| PushedFolder::new(spec))
            .collect();
        Self {
            user: user.to_owned(),
            device_id: device_id(&profile.settings.device_id_prefix, user, fleet_index),
            authorization: BasicCredentials::new(user, password).to_header(),
            host: endpoint.0.to_owned(),
            path: endpoint.1.to_owned(),
            version: profile.settings.protocol_version,
            ping_folder_limit: profile.settings.folders.len(),
            profile,
            rng,
            state: State::ExpectOptions,
            policy_key: None,
            folder_key: "0".into(),
            folders,
            to_sync: VecDeque::new(),
            heartbeat,
            ping_cached: false,
            backoff_attempt: 0,
            resyncs_in_a_row: 0,
            wake_unexplained: false,
            labels_items: false,
            last_changes: None,
            setback: None,
            ping_sent_at: None,
            dead_pings: 0,
            unreachable_since: None,
            flushed_at: None,
            unreachable_by_flush: false,
            pending: Vec::new(),
            next_sync: None,
            texts: Vec::new(),
            radio: RadioMeter::with_paging_phase(paging_phase(run_seed, fleet_index)),
            clock: None,
            in_exchange: false,
        }
    }

    /// The DeviceId the device sends.
    pub(crate) fn device_id(&self) -> &str {
        &self.device_id
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// The folder the mailbox back-end notifies for this device: the first it pushes.
    pub(crate) fn notified_folder(&self) -> &str {
        let first = &self.folders[0];
        // A named folder not found yet (the device never synced its hierarchy).
        match first.id.is_empty() {
            true => &first.spec,
            false => &first.id,
        }
    }

    /// Whether the device resumes TLS sessions (see [`Profile::tls_resumption`]).
    pub(crate) fn tls_resumption(&self) -> bool {
        self.profile.settings.tls_resumption
    }

    /// The network this device's kind reaches the server over.
    pub(crate) fn network(&self) -> &str {
        &self.profile.settings.network
    }

    /// The heartbeat this device asks for (the profile's, jittered, or the server's
    /// bound after a Status 5).
    pub(crate) fn heartbeat(&self) -> Duration {
        self.heartbeat.current()
    }

    /// The heartbeat's strategy state (where an adaptive device settled, and when).
    pub(crate) fn heartbeat_state(&self) -> &Heartbeat {
        &self.heartbeat
    }

    /// Starts the bootstrap.
    pub(crate) fn start(&mut self, now: Instant, stats: &mut FleetStats) -> Action {
        self.state = State::ExpectOptions;
        self.request(now, stats)
    }

    /// The connection came back after a `Reconnect`: repeat what was in flight.
    pub(crate) fn on_reconnected(&mut self, now: Instant, stats: &mut FleetStats) -> Action {
        self.ping_cached = false;
        self.request(now, stats)
    }

    /// What last set the device back, if anything did.
    pub(crate) fn setback(&self) -> Option<&str> {
        self.setback.as_deref()
    }

    /// The connection was lost (for `cause`, when the engine knows one) or the response
    /// deadline passed.
    pub(crate) fn on_disconnect(
        &mut self,
        now: Instant,
        stats: &mut FleetStats,
        cause: Option<DeviceError>,
    ) -> Action {
        self.exchange_ended();
        if self.state == State::Idle {
            // A kept connection closed between syncs: the next sync opens another.
            return self.idle_action(now);
        }
        let mut ping_died = false;
        if self.state == State::Parked && self.ping_sent_at.is_some() {
            let died = match cause {
                Some(DeviceError::DeadlinePassed) => Some("deadline"),
                Some(DeviceError::ConnectionReset) => Some("reset"),
                Some(DeviceError::ClosedByPeer) => Some("closed"),
                _ => None,
            };
            if let Some(how) = died {
                self.ping_died(how, now, stats);
                ping_died = true;
            }
        }
        if let Some(error) = cause {
            // A reset that killed a parked Ping is counted there (`pings_died`); a
            // close by the other end is a plain cut (a server closing a connection
            // between requests), not an error.
            if !matches!(
                error,
                DeviceError::ConnectionReset | DeviceError::ClosedByPeer
            ) {
                error.count(&mut stats.counters);
            }
            self.setback = Some(error.to_string());
        } else {
            self.setback = Some("connection closed".to_owned());
        }
        if self.state == State::Stopped {
            return Action::Stop;
        }
        stats.counters.reconnects += 1;
        if ping_died {
            // The path lost the flow, not the server its wits: a phone pings again at
            // once (a server that is really gone refuses the connection, and that
            // backs off).
            return Action::Reconnect { at: now };
        }
        self.backoff(now, None)
    }

    /// A complete response arrived.
    pub(crate) fn on_response(
        &mut self,
        response: HttpResponse,
        now: Instant,
        stats: &mut FleetStats,
    ) -> Action {
        self.radio_packet(response.arrived_at.unwrap_or(now), Direction::Down, stats);
        // Until it sends again the device is busy with the answer (real time); if it
        // sends nothing, it waits.
        self.exchange_started(true);
        let action = self.answered(response, now, stats);
        if !matches!(action, Action::Send { .. }) {
            self.exchange_ended();
        }
        action
    }

    /// What the device does with a response.
    fn answered(&mut self, response: HttpResponse, now: Instant, stats: &mut FleetStats) -> Action {
        // Latencies end when the response reached the host, not when this turn read it.
        let arrived = response.arrived_at.unwrap_or(now);
        tally(&mut stats.counters.http_status, response.status.to_string());
        tally(
            &mut stats.counters.http_status_by_command,
            format!("{} {}", self.state.command_name(), response.status),
        );
        if response.status != 200 {
            self.setback = Some(format!("HTTP {}", response.status));
        }
        match response.status {
            200 => {}
            401 | 403 => {
                self.state = State::Stopped;
                stats.counters.devices_stopped += 1;
                return Action::Stop;
            }
            449 => {
                self.state = State::ExpectPolicy;
                return self.request(now, stats);
            }
            451 => {
                return match response.location {
                    Some(location) => {
                        if let Ok(endpoint) = Endpoint::parse(&location) {
                            self.host = endpoint.host_header;
                            self.path = endpoint.path;
                        }
                        Action::Redirect { location, at: now }
                    }
                    None => self.fail(now, stats, DeviceError::RedirectWithoutLocation),
                }
            }
            503 => {
                DeviceError::ServiceUnavailable.count(&mut stats.counters);
                return self.backoff(now, response.retry_after_s.map(Duration::from_secs));
            }
            502 | 504 if self.gateway_cut_a_parked_ping(now) => {
                // A gateway cut the parked Ping (a read timeout's 504, or an old
                // worker's 502 when its reload's bound came): the path lost it, and the
                // phone pings again at once.
                self.ping_died(&format!("http {}", response.status), now, stats);
                return self.request(now, stats);
            }
            502 | 504 => return self.fail(now, stats, DeviceError::Gateway(response.status)),
            _ => return self.fail(now, stats, DeviceError::UnexpectedStatus),
        }
        let result = match self.state {
            State::ExpectOptions => self.options_answered(&response, stats),
            State::ExpectPolicy | State::ExpectPolicyAck => {
                self.provision_answered(&response.body, stats)
            }
            State::ExpectFolderSync => self.folder_sync_answered(&response.body, stats),
            State::ExpectSync => self.sync_answered(&response.body, arrived, stats),
            State::Parked => self.ping_answered(&response.body, arrived, stats),
            // An answer nothing asked for (a server talking on a kept connection).
            State::Idle => return self.idle_action(now),
            State::Stopped => return Action::Stop,
        };
        match result {
            Ok(Next::Request) => {
                self.backoff_attempt = 0;
                self.request(now, stats)
            }
            Err(error @ (DeviceError::FolderMissing(_) | DeviceError::NotEas(_))) => {
                // Retrying would ask the same again: the device gives up.
                error.count(&mut stats.counters);
                self.setback = Some(error.to_string());
                self.state = State::Stopped;
                stats.counters.devices_stopped += 1;
                Action::Stop
            }
            Ok(Next::Backoff(error)) | Err(error) => self.fail(now, stats, error),
            Ok(Next::Resync) => self.resync_backoff(now),
        }
    }

    /// Whether a gateway's error ended a Ping that had been parked (for a second at
    /// least: a gateway that refuses every request at once is an error to back off
    /// from, not a cut).
    fn gateway_cut_a_parked_ping(&self, now: Instant) -> bool {
        self.state == State::Parked
            && self
                .ping_sent_at
                .is_some_and(|sent| now.saturating_duration_since(sent) >= Duration::from_secs(1))
    }

    fn fail(&mut self, now: Instant, stats: &mut FleetStats, error: DeviceError) -> Action {
        error.count(&mut stats.counters);
        self.setback = Some(error.to_string());
        self.backoff(now, None)
    }

    /// The path was flushed at `at`: a Ping in flight then that dies died of it.
    pub(crate) fn path_flushed(&mut self, at: Instant) {
        self.flushed_at = Some(at);
    }

    /// The parked Ping in flight died (`how`: by its deadline, or a reset): the device
    /// is unreachable from its sending until a later Ping is answered, and its
    /// heartbeat strategy learns of it.
    fn ping_died(&mut self, how: &str, now: Instant, stats: &mut FleetStats) {
        tally(&mut stats.counters.pings_died, how);
        self.dead_pings += 1;
        if self.unreachable_since.is_none() {
            // A Ping sent before the last flush died of it: the device was cut off at
            // the flush, not an idle timeout after its sending.
            let flushed = self
                .flushed_at
                .filter(|flushed| self.ping_sent_at.is_some_and(|sent| sent <= *flushed));
            self.unreachable_by_flush = flushed.is_some();
            self.unreachable_since = flushed.or(self.ping_sent_at);
        }
        self.ping_sent_at = None;
        self.heartbeat.died(now);
    }

    /// Counts a re-synchronisation the server asked for (`kind`); the first since the
    /// device last parked goes ahead at once, the ones after it wait, longer each time,
    /// so a server that keeps asking does not get a device in a hot loop.
    fn resync(&mut self, kind: &str, stats: &mut FleetStats) -> Next {
        self.wake_unexplained = false;
        tally(&mut stats.counters.resyncs, kind);
        self.setback = Some(kind.to_owned());
        self.resyncs_in_a_row += 1;
        match self.resyncs_in_a_row {
            1 => Next::Request,
            _ => Next::Resync,
        }
    }

    /// Waits half to full of 1 s x 2^(resyncs in a row - 2), at most 60 s.
    fn resync_backoff(&mut self, now: Instant) -> Action {
        let exponent = self.resyncs_in_a_row.saturating_sub(2).min(6);
        let ceiling = self
            .profile
            .backoff_base
            .saturating_mul(1 << exponent)
            .min(self.profile.backoff_max);
        let delay = ceiling.mul_f64(self.rng.random_range(0.5..=1.0));
        Action::Reconnect { at: now + delay }
    }

    /// Exponential backoff with jitter (half to full of 1 s x 2^attempt, at most 60 s),
    /// or the server's Retry-After.
    fn backoff(&mut self, now: Instant, retry_after: Option<Duration>) -> Action {
        let delay = retry_after.unwrap_or_else(|| {
            let ceiling = self
                .profile
                .backoff_base
                .saturating_mul(1 << self.backoff_attempt.min(6))
                .min(self.profile.backoff_max);
            ceiling.mul_f64(self.rng.random_range(0.5..=1.0))
        });
        self.backoff_attempt += 1;
        Action::Reconnect { at: now + delay }
    }
}

/// The DeviceId of device `fleet_index` for `user`: `prefix` and 16 hex digits, stable
/// across runs and seeds.
pub(crate) fn device_id(prefix: &str, user: &str, fleet_index: usize) -> String {
    format!(
        "{prefix}{:016x}",
        seeds::splitmix64(seeds::fnv1a(user.as_bytes()) ^ fleet_index as u64)
    )
}

/// Where device `fleet_index`'s paging occasion sits in its radio's paging cycle, in
/// [0, 1): from the run's seed and the device, as a real phone's follows its identity.
fn paging_phase(run_seed: u64, fleet_index: usize) -> f64 {
    let seed = seeds::derive(run_seed, Stream::Paging, fleet_index as u64);
    (seed >> 11) as f64 / (1u64 << 53) as f64
}

/// How a response moves the device on.
enum Next {
    /// Send the request of the (possibly new) current state.
    Request,
    /// Count this error, back off, then repeat.
    Backoff(DeviceError),
    /// The server asked for a re-synchronisation again before the device parked: wait
    /// (longer each time) before the request of the new state.
    Resync,
}

#[cfg(test)]
mod tests;
