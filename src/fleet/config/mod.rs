//! The fleet's settings, defined once: what the simulated devices are and how they
//! behave ([`FleetConfig`]), a kind of the mix as an overlay of those ([`ProfileSpec`]),
//! the phases of a run ([`StagesConfig`]) and the notification schedule
//! ([`ScheduleConfig`]). Each struct is a table of a scenario file (serde: `[devices]`,
//! `[stages]`, `[injector]`) and the matching flags of `pingfleet devices` (clap,
//! flattened into its flags); each has one `Default` (the constants below), which its
//! flags' defaults read, and one `check`, for both.
//!
//! A heartbeat goes from here to the wire in three forms: this [`Span`] (a file's
//! `heartbeat = "8m"` or `--heartbeat 8m`), the device's `Duration` (its deadlines),
//! and whole seconds in the Ping body, rounded up.

use super::delivery::{DeliveryMode, SmsGateway, SyncConnection};
use super::device_id::{check_device_id_prefix, DEFAULT_DEVICE_ID_PREFIX};
use std::time::Duration;

use super::heartbeat::{self, HeartbeatPlan, HeartbeatStrategy, PlanError, DEFAULT_CLEAN_RUN};
use super::injector::{PatternKind, MAX_RATE_PER_S};
use super::radio::RadioKind;
use super::settings::{no_interval, settings_with_overlay, Interval};
use crate::eas::ProtocolVersion;
use crate::partition::ProcessCount;
use crate::setting::ConfigError;
use crate::units::{Share, Span};

/// The heartbeat a device asks for when nothing says otherwise (Outlook's 8 minutes).
pub(crate) const DEFAULT_HEARTBEAT: Span = Span::from_secs(480);
/// Devices started a second during the ramp.
pub(crate) const DEFAULT_CONNECT_RATE: f64 = 5000.0;
/// The most devices of a worker between their start and their first Ping at once.
pub(crate) const DEFAULT_MAX_BOOTSTRAPPING: usize = 64;
/// The most `max_bootstrapping` may be (a worker holds at most 20,000 connections).
const MAX_BOOTSTRAPPING_LIMIT: usize = 100_000;
/// Devices in a fleet when nothing says otherwise.
pub(crate) const DEFAULT_COUNT: usize = 100;
/// A scheduled device's sync interval, and the least it may be (clients of the time
/// offered 5, 15 and 30 minutes, and none less than 5).
pub(crate) const DEFAULT_SYNC_INTERVAL: Span = Span::from_secs(15 * 60);
pub(crate) const DEFAULT_MIN_SYNC_INTERVAL: Span = Span::from_secs(5 * 60);
/// The simulated SMS gateway: the median delay of a text, the spread of its logarithm,
/// the longest, and the share lost. Assumed, not measured: a scenario comparing modes
/// should sweep them.
pub(crate) const DEFAULT_SMS_DELAY: Span = Span::from_secs(10);
pub(crate) const DEFAULT_SMS_DELAY_SPREAD: f64 = 1.0;
pub(crate) const DEFAULT_SMS_DELAY_MAX: Span = Span::from_secs(10 * 60);
pub(crate) const DEFAULT_SMS_LOSS: Share = Share::from_percent(1.0);
/// The network of a device that has none emulated: the machine's own path.
pub(crate) const NO_NETWORK: &str = "none";
/// The battery a share of a day's energy is counted against: 3,000 mAh at 3.7 V.
pub(crate) const DEFAULT_BATTERY_WH: f64 = 11.1;

settings_with_overlay! {
    /// The simulated devices. `[devices]` in a scenario; the flags of the same names on
    /// `pingfleet devices` (`count` is `--devices`, `folders` `--folder`, `profiles`
    /// `--profile`; `tls_resumption` is switched off by `--no-tls-resumption`). A kind of
    /// the mix ([`ProfileSpec`]) changes the settings under `overlaid`; a device runs its
    /// kind's settings.
    #[derive(Debug, Clone, PartialEq, clap::Args, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct FleetConfig {
        /// Devices in the whole fleet (a worker runs its shard of them).
        #[arg(long = "devices", value_name = "N", default_value_t = defaults().count)]
        pub count: usize = DEFAULT_COUNT,
        /// Device worker processes of a run: "auto" (one per 18,000 devices) or a number.
        /// A scenario's setting; one `pingfleet devices` is one worker.
        #[arg(skip)]
        pub workers: ProcessCount = ProcessCount::Auto,
        /// New devices started per second during the ramp (a run divides it among its
        /// workers).
        #[arg(long, value_name = "PER_S", default_value_t = defaults().connect_rate)]
        pub connect_rate: f64 = DEFAULT_CONNECT_RATE,
        /// The most devices bootstrapping (connecting, handshaking, syncing) at once in
        /// each worker: the ramp waits for one to send its first Ping before starting
        /// another beyond this many. A ramp faster than the machine would otherwise open
        /// connections whose exchanges time out; and the memory freed by many handshakes
        /// at once is kept by the allocator, counted in every RSS figure after.
        #[arg(long, value_name = "N", default_value_t = defaults().max_bootstrapping)]
        pub max_bootstrapping: usize = DEFAULT_MAX_BOOTSTRAPPING,
        /// A mix of device kinds (`[[devices.profiles]]`, or `--profile JSON` once per
        /// kind, e.g. '{"name":"iphone","weight":5,"version":"16.1","heartbeat":"15m"}');
        /// what an entry leaves out comes from these settings. Each device's kind depends
        /// on its index and the seed only.
        #[arg(long = "profile", value_name = "JSON", value_parser = parse_profile)]
        pub profiles: Vec<ProfileSpec> = Vec::new(),
        /// What every DeviceId starts with (letters and digits, at most 16). A DeviceId is
        /// this and 16 hex digits from the user and the device's index, the same on every
        /// run and seed, so a server keeps one partnership per device; give two fleets on
        /// one server different prefixes to keep theirs apart.
        #[arg(long, default_value_t = defaults().device_id_prefix)]
        pub device_id_prefix: String = DEFAULT_DEVICE_ID_PREFIX.to_owned(),
        /// Scheduled: the shortest interval a device accepts (5 minutes, as clients did).
        #[arg(long, value_name = "DURATION", default_value_t = defaults().min_sync_interval)]
        pub min_sync_interval: Span = DEFAULT_MIN_SYNC_INTERVAL,
        /// SMS: the median delay of a text from the gateway to the phone (log-normal; the
        /// 10 s default is an assumption to vary: docs/push-vs-poll.md gives the ranges).
        #[arg(long, value_name = "DURATION", default_value_t = defaults().sms_delay)]
        pub sms_delay: Span = DEFAULT_SMS_DELAY,
        /// SMS: the spread of a text's delay (the standard deviation of its logarithm).
        #[arg(long, value_name = "SIGMA", default_value_t = defaults().sms_delay_spread)]
        pub sms_delay_spread: f64 = DEFAULT_SMS_DELAY_SPREAD,
        /// SMS: the longest a text takes; the mail of a lost text is lost once this has
        /// passed without a later text's sync bringing it.
        #[arg(long, value_name = "DURATION", default_value_t = defaults().sms_delay_max)]
        pub sms_delay_max: Span = DEFAULT_SMS_DELAY_MAX,
        /// SMS: the share of texts the gateway loses, e.g. 1% (the default, an assumption;
        /// Meng et al., INFOCOM 2007, measured delivery failures up to 5.1%).
        #[arg(long, value_name = "PERCENT", default_value_t = defaults().sms_loss)]
        pub sms_loss: Share = DEFAULT_SMS_LOSS,
        /// The battery (watt-hours) the share of a day's energy is counted against.
        #[arg(long, value_name = "WH", default_value_t = defaults().battery_wh)]
        pub battery_wh: f64 = DEFAULT_BATTERY_WH,
    }
    overlaid {
        /// The EAS protocol version devices ask for (MS-ASProtocolVersion): 2.5, 12.0,
        /// 12.1, 14.0, 14.1, 16.0 or 16.1; each settles on the highest the server offers
        /// up to it. A kind of the mix writes it `version`.
        #[arg(long, default_value_t = defaults().protocol_version)]
        #[overlay(rename = "version")]
        pub protocol_version: ProtocolVersion = ProtocolVersion::V14_1,
        /// The DeviceType devices send (the request line's and Provision's), e.g. iPhone.
        #[arg(long, default_value_t = defaults().device_type)]
        pub device_type: String = "Android".to_owned(),
        /// The User-Agent header devices send.
        #[arg(long, default_value_t = defaults().user_agent)]
        pub user_agent: String = "Android/14-EAS-2.0".to_owned(),
        /// Heartbeat each device asks for: seconds (480) or a duration (8m, 1.5s). A Ping
        /// carries whole seconds, rounded up; the device's own deadlines use it exactly.
        #[arg(long, value_name = "DURATION", default_value_t = defaults().heartbeat)]
        pub heartbeat: Span = DEFAULT_HEARTBEAT,
        /// Each device's heartbeat differs by up to this (seconds or a duration).
        #[arg(long, value_name = "DURATION", default_value_t = defaults().heartbeat_jitter)]
        pub heartbeat_jitter: Span = Span::default(),
        /// How the heartbeat moves: fixed (--heartbeat, always), adaptive (Windows Mobile:
        /// from --heartbeat-min up by --heartbeat-increment after each Ping that held, back
        /// to the last good value when one dies, and settled there) or stepped (up one
        /// increment after --heartbeat-clean-run clean Pings, down one on a failure).
        #[arg(long, value_enum, default_value_t = defaults().heartbeat_strategy)]
        pub heartbeat_strategy: HeartbeatStrategy = HeartbeatStrategy::Fixed,
        /// The lowest heartbeat an adaptive or stepped device uses, and where it starts.
        #[arg(long, value_name = "DURATION", default_value_t = defaults().heartbeat_min)]
        pub heartbeat_min: Span = Span(heartbeat::DEFAULT_MIN),
        /// The highest heartbeat an adaptive or stepped device uses.
        #[arg(long, value_name = "DURATION", default_value_t = defaults().heartbeat_max)]
        pub heartbeat_max: Span = Span(heartbeat::DEFAULT_MAX),
        /// How far an adaptive or stepped device raises (or lowers) its heartbeat at once.
        #[arg(long, value_name = "DURATION", default_value_t = defaults().heartbeat_increment)]
        pub heartbeat_increment: Span = Span(heartbeat::DEFAULT_INCREMENT),
        /// Clean Pings in a row before a stepped device steps up.
        #[arg(long, value_name = "N", default_value_t = defaults().heartbeat_clean_run)]
        pub heartbeat_clean_run: u32 = DEFAULT_CLEAN_RUN,
        /// Folders each device pushes (repeatable): `inbox`, `calendar`, `contacts` or
        /// `tasks`, found by type in the hierarchy the server sends each device (as a phone
        /// finds them), or a folder id as the server names it. A pushed folder the
        /// hierarchy lacks stops the device with an error.
        #[arg(long = "folder", value_name = "KIND|ID", default_values_t = defaults().folders)]
        pub folders: Vec<String> = vec!["inbox".to_owned()],
        /// Re-Ping with an empty body once the server has the Ping cached.
        #[arg(long)]
        pub empty_reping: bool = false,
        /// Send `Connection: close` on every Ping (a new connection per Ping).
        #[arg(long)]
        pub close_per_ping: bool = false,
        /// Provision at the start of bootstrap, before the server asks (some clients do).
        /// Without it a device provisions only when the server asks (HTTP 449, or Status
        /// 142 to 144), and not at all against a server that never does.
        #[arg(long)]
        pub provision: bool = false,
        /// Keep no TLS session ticket: every connection a full handshake (in a scenario:
        /// `tls_resumption = false`). By default devices resume, as phones do.
        #[arg(long = "no-tls-resumption", action = clap::ArgAction::SetFalse)]
        pub tls_resumption: bool = true,
        /// How devices learn of new mail: push (a parked Ping: Direct Push), scheduled (a
        /// Sync of the pushed folders every --sync-interval) or sms (woken by a text from a
        /// simulated SMTP-to-SMS gateway, then connect, sync the folder and disconnect).
        #[arg(long, value_enum, default_value_t = defaults().delivery)]
        pub delivery: DeliveryMode = DeliveryMode::Push,
        /// Scheduled: how often a device syncs (never more often than --min-sync-interval).
        #[arg(long, value_name = "DURATION", default_value_t = defaults().sync_interval)]
        pub sync_interval: Span = DEFAULT_SYNC_INTERVAL,
        /// Scheduled: a new connection for each sync, or one kept open between them.
        #[arg(long, value_enum, default_value_t = defaults().sync_connection)]
        pub sync_connection: SyncConnection = SyncConnection::New,
        /// The network devices reach the server over: none (the machine's own path,
        /// loopback), a shipped profile (wifi, lte, 3g, gprs) or a scenario's
        /// `[networks.NAME]`. A run emulates it per phone (root); a worker connects a
        /// kind's devices from its network's subnet (--network-subnet).
        #[arg(long, value_name = "PROFILE", default_value_t = defaults().network)]
        pub network: String = NO_NETWORK.to_owned(),
        /// The cellular radio whose energy each device's packets are counted against: lte
        /// or umts (3G), each with published timers and powers (a kind may have its own).
        #[arg(long, value_enum, default_value_t = defaults().radio)]
        pub radio: RadioKind = RadioKind::Lte,
    }
    /// One kind of phone in a mix: a name, a weight, and the fleet's settings it changes
    /// (anything left out is the fleet's). Scenario files write these as
    /// `[[devices.profiles]]`, `pingfleet devices --profiles FILE` as `[[profile]]`.
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ProfileSpec {
        pub name: String,
        /// Share of the fleet relative to the other entries' weights.
        #[serde(default = "one")]
        pub weight: u32,
    }
}

/// The defaults of [`FleetConfig`], which its flags show.
fn defaults() -> FleetConfig {
    FleetConfig::default()
}

/// A kind's weight when its entry gives none.
fn one() -> u32 {
    1
}

impl FleetConfig {
    /// The heartbeat strategy these settings give.
    pub fn heartbeat_plan(&self) -> HeartbeatPlan {
        HeartbeatPlan {
            strategy: self.heartbeat_strategy,
            min: self.heartbeat_min.0,
            max: self.heartbeat_max.0,
            increment: self.heartbeat_increment.0,
            clean_run: self.heartbeat_clean_run,
        }
    }

    /// Whether every device pushes (none syncs on a schedule or waits for texts).
    pub fn all_push(&self) -> bool {
        self.delivery == DeliveryMode::Push
            && self.profiles.iter().all(|profile| {
                profile
                    .delivery
                    .is_none_or(|mode| mode == DeliveryMode::Push)
            })
    }

    /// The simulated SMS gateway of a run seeded with `run_seed`.
    pub fn sms_gateway(&self, run_seed: u64) -> SmsGateway {
        SmsGateway {
            median: self.sms_delay.0,
            spread: self.sms_delay_spread,
            max: self.sms_delay_max.0,
            loss: self.sms_loss.fraction(),
            run_seed,
        }
    }

    /// Every check of the fleet's own settings (a scenario adds those that span
    /// sections, such as the heartbeat within the server's bounds; each kind of the
    /// mix is checked as it is read, by `--profile` or the scenario, which points at
    /// its entry).
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.count == 0 {
            return Err(ConfigError::new(
                "count",
                "devices.count must be at least 1, e.g. count = 100 (--devices 100)",
            )
            .flag("devices"));
        }
        if self.workers == ProcessCount::Count(0) {
            return Err(ConfigError::new(
                "workers",
                "workers must be \"auto\" or at least 1",
            ));
        }
        if let Err(problem) = self.heartbeat_plan().check() {
            return Err(ConfigError::new(
                "heartbeat_strategy",
                format!("devices.{problem}"),
            ));
        }
        if self.heartbeat.0.is_zero() {
            return Err(ConfigError::new(
                "heartbeat",
                "devices.heartbeat must be longer than 0s",
            ));
        }
        check_device_id_prefix(&self.device_id_prefix).map_err(|err| {
            ConfigError::new(
                "device_id_prefix",
                format!("devices.device_id_prefix {err}"),
            )
        })?;
        if self.folders.is_empty() {
            return Err(ConfigError::new(
                "folders",
                "devices.folders must name at least one folder",
            )
            .flag("folder"));
        }
        self.check_delivery()?;
        if !(self.connect_rate > 0.0 && self.connect_rate <= MAX_RATE_PER_S) {
            return Err(ConfigError::new(
                "connect_rate",
                format!(
                    "devices.connect_rate must be above 0 and at most {MAX_RATE_PER_S} per second"
                ),
            ));
        }
        if !(1..=MAX_BOOTSTRAPPING_LIMIT).contains(&self.max_bootstrapping) {
            return Err(ConfigError::new(
                "max_bootstrapping",
                format!("devices.max_bootstrapping must be 1 to {MAX_BOOTSTRAPPING_LIMIT}"),
            ));
        }
        Ok(())
    }
}

impl FleetConfig {
    /// The checks of the delivery settings, the SMS gateway's and the battery's.
    fn check_delivery(&self) -> Result<(), ConfigError> {
        // Longer than 0 and at most a day: every later instant stays in range.
        let within_a_day = |key: &'static str, span: Span| match span.0.is_zero()
            || span.0 > std::time::Duration::from_secs(86_400)
        {
            true => Err(ConfigError::new(
                key,
                format!("devices.{key} must be longer than 0s and at most 24h"),
            )),
            false => Ok(()),
        };
        within_a_day("sync_interval", self.sync_interval)?;
        within_a_day("min_sync_interval", self.min_sync_interval)?;
        within_a_day("sms_delay", self.sms_delay)?;
        within_a_day("sms_delay_max", self.sms_delay_max)?;
        if self.sms_delay_max.0 < self.sms_delay.0 {
            return Err(ConfigError::new(
                "sms_delay_max",
                "devices.sms_delay_max must be at least devices.sms_delay",
            ));
        }
        if !(self.sms_delay_spread.is_finite() && (0.0..=5.0).contains(&self.sms_delay_spread)) {
            return Err(ConfigError::new(
                "sms_delay_spread",
                "devices.sms_delay_spread must be 0 to 5",
            ));
        }
        if !(0.0..=1.0).contains(&self.sms_loss.fraction()) {
            return Err(ConfigError::new(
                "sms_loss",
                "devices.sms_loss must be 0% to 100%",
            ));
        }
        if !(self.battery_wh.is_finite() && self.battery_wh > 0.0) {
            return Err(ConfigError::new(
                "battery_wh",
                "devices.battery_wh must be above 0",
            ));
        }
        Ok(())
    }
}

/// The phases of a worker's run. `[stages]` in a scenario; the flags of the same names
/// on `pingfleet devices` (`hold` is `--duration`).
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StagesConfig {
    /// The longest the ramp-up may take before the hold phase starts anyway.
    #[arg(long, value_name = "DURATION", default_value_t = DEFAULT_RAMP_TIMEOUT)]
    pub ramp_timeout: Span,
    /// The hold phase, after every device has bootstrapped: devices parked and
    /// notifications injected, e.g. 30s.
    #[arg(long = "duration", value_name = "DURATION", default_value_t = DEFAULT_HOLD)]
    pub hold: Span,
    /// After the hold, the longest wait for notifications still in flight.
    #[arg(long, value_name = "DURATION", default_value_t = DEFAULT_DRAIN)]
    pub drain: Span,
    /// The churn stage: this share of the devices loses its connection each minute
    /// of the hold (e.g. 20%) and reconnects after the usual backoff.
    #[arg(long, value_name = "PERCENT", default_value_t = Share::default())]
    pub churn_per_minute: Share,
}

/// The ramp's longest wait when nothing says otherwise.
pub(crate) const DEFAULT_RAMP_TIMEOUT: Span = Span::from_secs(120);
/// The hold when nothing says otherwise.
pub(crate) const DEFAULT_HOLD: Span = Span::from_secs(30);
/// The drain's longest wait when nothing says otherwise.
pub(crate) const DEFAULT_DRAIN: Span = Span::from_secs(10);

impl Default for StagesConfig {
    fn default() -> Self {
        Self {
            ramp_timeout: DEFAULT_RAMP_TIMEOUT,
            hold: DEFAULT_HOLD,
            drain: DEFAULT_DRAIN,
            churn_per_minute: Share::default(),
        }
    }
}

impl StagesConfig {
    /// Every check of the stages (a hold to measure in, a share of the fleet).
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.hold.0.is_zero() {
            return Err(ConfigError::new(
                "hold",
                "stages.hold must be longer than 0s: nothing is measured outside the hold",
            )
            .flag("duration"));
        }
        if !(0.0..=1.0).contains(&self.churn_per_minute.fraction()) {
            return Err(ConfigError::new(
                "churn_per_minute",
                format!(
                    "stages.churn_per_minute is a share of the devices, 0% to 100% (got {})",
                    self.churn_per_minute
                ),
            ));
        }
        Ok(())
    }
}

/// The notification schedule, the whole fleet's. `[injector]` in a scenario; the
/// flags of the same names on `pingfleet devices`.
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// How notifications are spread in time: poisson (random gaps averaging --rate a
    /// second, as mail arrives; the default, because evenly spaced changes can fall in
    /// step with a server that looks for mail on a timer and measure its phase, not its
    /// latency), fixed (evenly, --rate a second) or burst (--burst-share of the devices
    /// within --burst-window).
    #[arg(long, value_enum, default_value_t = DEFAULT_PATTERN)]
    pub pattern: PatternKind,
    /// Notifications per second to the whole fleet (fixed and poisson patterns); each
    /// worker sends those for its own devices. The schedule depends only on the seed
    /// and the fleet's size, so any number of workers sends the same notifications.
    #[arg(long, value_name = "PER_S", default_value_t = DEFAULT_RATE)]
    pub rate: f64,
    /// Mail per user per (real-world) hour instead of --rate: each user gets a Poisson
    /// stream of this rate, which together make the fleet's Poisson stream of
    /// devices x this / 3600 a second, each change for a user drawn at random (the
    /// same thing); e.g. 12 for a user who gets a mail every five minutes.
    #[arg(long, value_name = "N")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user_per_hour: Option<f64>,
    /// Burst: the share of the devices notified, e.g. 50%.
    #[arg(long, value_name = "PERCENT", default_value_t = DEFAULT_BURST_SHARE)]
    pub burst_share: Share,
    /// Burst: the window the burst is spread over.
    #[arg(long, value_name = "DURATION", default_value_t = DEFAULT_BURST_WINDOW)]
    pub burst_window: Span,
}

/// How notifications are spread when nothing says otherwise: as mail arrives.
pub(crate) const DEFAULT_PATTERN: PatternKind = PatternKind::Poisson;
/// Notifications a second to the whole fleet when nothing says otherwise.
pub(crate) const DEFAULT_RATE: f64 = 10.0;
/// A burst's share of the devices when nothing says otherwise.
pub(crate) const DEFAULT_BURST_SHARE: Share = Share::from_percent(10.0);
/// A burst's window when nothing says otherwise.
pub(crate) const DEFAULT_BURST_WINDOW: Span = Span(std::time::Duration::from_millis(100));

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            pattern: DEFAULT_PATTERN,
            rate: DEFAULT_RATE,
            per_user_per_hour: None,
            burst_share: DEFAULT_BURST_SHARE,
            burst_window: DEFAULT_BURST_WINDOW,
        }
    }
}

impl ScheduleConfig {
    /// The fleet's rate from the per-user rate, for a fleet of `devices`, if one is
    /// given (then `rate` is set from it, in real-world changes a second).
    pub fn resolve_per_user(&mut self, devices: usize) {
        if let Some(per_hour) = self.per_user_per_hour {
            self.rate = devices as f64 * per_hour / 3600.0;
        }
    }

    /// Every check of the schedule.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(per_hour) = self.per_user_per_hour {
            if !(per_hour.is_finite() && per_hour > 0.0 && per_hour <= 3600.0) {
                return Err(ConfigError::new(
                    "per_user_per_hour",
                    "injector.per_user_per_hour must be above 0 and at most 3600",
                ));
            }
        }
        if !(0.0..=MAX_RATE_PER_S).contains(&self.rate) {
            return Err(ConfigError::new(
                "rate",
                format!(
                    "injector.rate must be 0 to {MAX_RATE_PER_S} notifications per second (got {})",
                    self.rate
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.burst_share.fraction()) {
            return Err(ConfigError::new(
                "burst_share",
                "injector.burst_share must be 0% to 100%",
            ));
        }
        Ok(())
    }
}

/// What is wrong with an entry of the mix, naming the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {name:?}: {error}")]
    Heartbeat { name: String, error: PlanError },
    #[error("profile {name:?}: weight must be at least 1")]
    ZeroWeight { name: String },
    #[error("profile {name:?}: sync_interval must be longer than 0s and at most 24h")]
    SyncInterval { name: String },
    #[error("profile {name:?}: folders must name at least one folder id")]
    NoFolders { name: String },
}

impl ProfileSpec {
    /// An entry that changes nothing.
    pub fn named_only(name: &str) -> Self {
        Self::entry(name.into(), 1)
    }

    /// Whether the entry can be run (over any fleet's settings).
    pub fn check(&self) -> Result<(), ProfileError> {
        let name = || self.name.clone();
        let settings = self.apply(&FleetConfig::default());
        if let Err(error) = settings.heartbeat_plan().check() {
            return Err(ProfileError::Heartbeat {
                name: name(),
                error,
            });
        }
        if self.weight == 0 {
            return Err(ProfileError::ZeroWeight { name: name() });
        }
        if self.sync_interval.is_some_and(|interval| {
            interval.0.is_zero() || interval.0 > Duration::from_secs(86_400)
        }) {
            return Err(ProfileError::SyncInterval { name: name() });
        }
        if self.folders.as_ref().is_some_and(Vec::is_empty) {
            return Err(ProfileError::NoFolders { name: name() });
        }
        Ok(())
    }
}

/// A `--profile` value that is not a kind of the mix.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProfileFlagError {
    #[error("{text:?} is not a profile: {source}")]
    Json {
        text: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Entry(#[from] ProfileError),
}

/// A `--profile` value: one kind of the mix as JSON, checked.
fn parse_profile(text: &str) -> Result<ProfileSpec, ProfileFlagError> {
    let spec: ProfileSpec =
        serde_json::from_str(text).map_err(|source| ProfileFlagError::Json {
            text: text.to_owned(),
            source,
        })?;
    spec.check()?;
    Ok(spec)
}

no_interval!(Vec<ProfileSpec>);

#[cfg(test)]
mod tests;
