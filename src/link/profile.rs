//! Network profiles: what the path between one kind of phone and the server does to
//! its packets (delay each way, jitter, loss, bandwidth, outages), the shipped ones
//! with the source of each number, and a scenario's own (`[networks.NAME]`).
//!
//! A profile is a setting, not a measurement: the run measures what the devices'
//! kernels saw over it (`TCP_INFO`) and says both.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::trace::{DeliveryTrace, LinkTraces};
use crate::setting::ConfigError;
use crate::units::{Share, Span};

/// A link's rate in bits a second, written `12mbit`, `384kbit`, `1.5mbit` or `2gbit`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct BitRate(pub f64);

impl BitRate {
    /// How long `bytes` take to go through the link at this rate.
    pub fn serialization(self, bytes: usize) -> Duration {
        Duration::from_secs_f64(bytes as f64 * 8.0 / self.0)
    }
}

impl FromStr for BitRate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        let (number, scale) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)]
            .into_iter()
            .find_map(|(unit, scale)| text.strip_suffix(unit).map(|number| (number, scale)))
            .ok_or_else(|| format!("`{text}` is not a rate: write e.g. 12mbit or 384kbit"))?;
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a rate: write e.g. 12mbit or 384kbit"))?;
        if !(value.is_finite() && value > 0.0) {
            return Err(format!("a rate is more than 0 (got `{text}`)"));
        }
        Ok(Self(value * scale))
    }
}

impl fmt::Display for BitRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.0;
        match bits {
            b if b >= 1e9 => write!(f, "{}gbit", b / 1e9),
            b if b >= 1e6 => write!(f, "{}mbit", b / 1e6),
            b if b >= 1e3 => write!(f, "{}kbit", b / 1e3),
            b => write!(f, "{b}bit"),
        }
    }
}

impl serde::Serialize for BitRate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for BitRate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
impl schemars::JsonSchema for BitRate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BitRate".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^[0-9.]+(g|m|k)?bit$" })
    }
}

/// What the path does to one kind of phone's packets. `[networks.NAME]` in a scenario;
/// the shipped ones are [`NetworkProfile::shipped`].
///
/// ```toml
/// [networks.train]
/// delay = "60ms"          # one way, each direction (the round trip is twice this)
/// jitter = "10ms"         # each packet's delay within +-10 ms, never reordered
/// loss = "1%"             # of packets, each way
/// loss_burst = 3          # mean packets lost in a row (1: independent losses)
/// down = "5mbit"          # server to phone
/// up = "2mbit"            # phone to server
/// outage_every = "10m"    # a tunnel or a handover, at this mean interval per phone
/// outage_for = "5s"       # each outage drops every packet both ways this long
/// ```
///
/// A direction may follow a packet-delivery trace in mahimahi's format instead of a
/// rate (`down_trace = "traces/Verizon-LTE-short.down"`, `up_trace = ...`; see
/// [`super::trace`]): one key or the other, not both.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct NetworkProfile {
    /// One-way delay in each direction.
    pub delay: Span,
    /// Each packet's delay within plus or minus this (a flow's packets keep their order).
    pub jitter: Span,
    /// The share of packets lost in each direction.
    pub loss: Share,
    /// Mean length of a run of losses, in packets (Gilbert-Elliott); 1 is independent.
    pub loss_burst: f64,
    /// Server to phone; unlimited when not given.
    pub down: Option<BitRate>,
    /// Phone to server; unlimited when not given.
    pub up: Option<BitRate>,
    /// Server to phone at the delivery opportunities of this trace file (mahimahi's
    /// format), instead of `down`.
    pub down_trace: Option<PathBuf>,
    /// Phone to server at the delivery opportunities of this trace file, instead of
    /// `up`.
    pub up_trace: Option<PathBuf>,
    /// Mean interval between one phone's outages (exponential); none when not given.
    pub outage_every: Option<Span>,
    /// How long each outage drops every packet of the phone, both ways.
    pub outage_for: Span,
    /// Most bytes queued in one direction of one phone's link (the radio's buffer); a
    /// packet beyond is dropped.
    pub queue: usize,
}

impl Default for NetworkProfile {
    fn default() -> Self {
        Self {
            delay: Span(Duration::ZERO),
            jitter: Span(Duration::ZERO),
            loss: Share::default(),
            loss_burst: 1.0,
            down: None,
            up: None,
            down_trace: None,
            up_trace: None,
            outage_every: None,
            outage_for: Span(Duration::ZERO),
            queue: DEFAULT_QUEUE_BYTES,
        }
    }
}

/// A phone's link buffers 256 KiB each way unless a profile says otherwise: deep
/// enough that TCP's window, not the buffer, limits a single flow at these rates.
pub const DEFAULT_QUEUE_BYTES: usize = 256 * 1024;

/// The profiles pingfleet ships, by name, each number's source in its doc comment and
/// in docs/network.md.
pub const SHIPPED: [&str; 4] = ["wifi", "lte", "3g", "gprs"];

fn ms(millis: u64) -> Span {
    Span(Duration::from_millis(millis))
}

fn rate(text: &str) -> Option<BitRate> {
    Some(text.parse().expect("a shipped rate parses"))
}

impl NetworkProfile {
    /// A shipped profile by name (see [`SHIPPED`]).
    pub fn shipped(name: &str) -> Option<Self> {
        match name {
            "wifi" => Some(Self::wifi()),
            "lte" => Some(Self::lte()),
            "3g" => Some(Self::umts()),
            "gprs" => Some(Self::gprs()),
            _ => None,
        }
    }

    /// A phone on home or office Wi-Fi behind a broadband line: a 20 ms round trip,
    /// 0.1% loss, 20 Mbit/s down and 10 up. Assumed round figures, not one paper's: the
    /// delay is the wired path's (a broadband access line and a metro backbone), the
    /// loss the order Wi-Fi's link-layer retries leave to TCP.
    pub fn wifi() -> Self {
        Self {
            delay: ms(10),
            jitter: ms(2),
            loss: Share::from_percent(0.1),
            down: rate("20mbit"),
            up: rate("10mbit"),
            ..Self::default()
        }
    }

    /// LTE: a 70 ms round trip, 13 Mbit/s down and 6 up, as Huang et al. measured
    /// across US carriers' LTE ("A Close Examination of Performance and Power
    /// Characteristics of 4G LTE Networks", MobiSys 2012, section 4: median RTT about
    /// 70 ms, median throughput about 13 Mbit/s down, 6 up). Loss 0.5%, in short
    /// bursts, is this profile's assumption (the paper measures none); a handover
    /// outage of 50 ms every 10 minutes is the order 3GPP's handover interruption
    /// targets give (an assumption as well).
    pub fn lte() -> Self {
        Self {
            delay: ms(35),
            jitter: ms(5),
            loss: Share::from_percent(0.5),
            loss_burst: 2.0,
            down: rate("13mbit"),
            up: rate("6mbit"),
            outage_every: Some(Span(Duration::from_secs(600))),
            outage_for: ms(50),
            ..Self::default()
        }
    }

    /// UMTS/HSPA (3G): a 200 ms round trip, 1.5 Mbit/s down and 400 kbit/s up, loss 1%:
    /// the order Huang et al. measured on 3G ("Anatomizing Application Performance
    /// Differences on Smartphones", MobiSys 2010: RTTs of 200 ms and more, downlink
    /// throughput around 1 Mbit/s); rounded, and the loss assumed.
    pub fn umts() -> Self {
        Self {
            delay: ms(100),
            jitter: ms(20),
            loss: Share::from_percent(1.0),
            loss_burst: 2.0,
            down: rate("1500kbit"),
            up: rate("400kbit"),
            outage_every: Some(Span(Duration::from_secs(600))),
            outage_for: ms(200),
            ..Self::default()
        }
    }

    /// GPRS/EDGE, the network Direct Push was first sold for: a 600 ms round trip,
    /// 80 kbit/s down and 40 up, loss 1%. Chakravorty, Cartwright and Pratt
    /// ("Practical Experience with TCP over GPRS", GLOBECOM 2002) measured round trips
    /// of 600 ms to over a second and tens of kbit/s; rounded, the loss assumed.
    pub fn gprs() -> Self {
        Self {
            delay: ms(300),
            jitter: ms(50),
            loss: Share::from_percent(1.0),
            loss_burst: 2.0,
            down: rate("80kbit"),
            up: rate("40kbit"),
            queue: 64 * 1024,
            ..Self::default()
        }
    }

    /// The round trip it sets (both one-way delays), jitter and serialization aside.
    pub fn round_trip(&self) -> Duration {
        self.delay.0 * 2
    }

    /// Every check of the profile's own settings, keys named as `[networks.NAME]`
    /// writes them.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.jitter.0 > self.delay.0 {
            return Err(ConfigError::new(
                "jitter",
                format!(
                    "jitter ({}) is at most the delay ({}): a packet cannot arrive before it left",
                    self.jitter, self.delay
                ),
            ));
        }
        if !(0.0..0.5).contains(&self.loss.fraction()) {
            return Err(ConfigError::new(
                "loss",
                format!("loss is a share from 0% to below 50% (got {})", self.loss),
            ));
        }
        if !(self.loss_burst.is_finite() && self.loss_burst >= 1.0) {
            return Err(ConfigError::new(
                "loss_burst",
                format!(
                    "loss_burst is the mean number of packets lost in a row, at least 1 (got {})",
                    self.loss_burst
                ),
            ));
        }
        if self
            .outage_every
            .is_some_and(|every| every.0 <= self.outage_for.0)
        {
            return Err(ConfigError::new(
                "outage_every",
                "outage_every is longer than outage_for (a phone is up between outages)",
            ));
        }
        for (key, both, rate) in [
            (
                "down_trace",
                self.down_trace.is_some() && self.down.is_some(),
                "down",
            ),
            (
                "up_trace",
                self.up_trace.is_some() && self.up.is_some(),
                "up",
            ),
        ] {
            if both {
                return Err(ConfigError::new(
                    key,
                    format!("{key} replaces {rate}: give one of them, not both"),
                ));
            }
        }
        if self.queue < 2 * 1500 {
            return Err(ConfigError::new(
                "queue",
                format!(
                    "queue holds at least two full packets, 3000 bytes (got {})",
                    self.queue
                ),
            ));
        }
        Ok(())
    }

    /// The delivery traces its `down_trace` and `up_trace` name, each read once (the
    /// emulator's links share them); an error names the key, the file and the line.
    pub fn traces(&self) -> Result<LinkTraces, ConfigError> {
        let load = |key: &'static str, path: &Option<PathBuf>| {
            path.as_deref()
                .map(DeliveryTrace::load)
                .transpose()
                .map_err(|error| ConfigError::new(key, error.to_string()))
        };
        Ok(LinkTraces {
            down: load("down_trace", &self.down_trace)?,
            up: load("up_trace", &self.up_trace)?,
        })
    }

    /// What limits each direction, down then up: a rate (`13mbit`), a delivery trace
    /// (`trace FILE`) or nothing (`unlimited`).
    pub fn capacity_words(&self) -> [String; 2] {
        let words = |rate: Option<BitRate>, trace: &Option<PathBuf>| match (rate, trace) {
            (_, Some(trace)) => format!("trace {}", trace.display()),
            (Some(rate), None) => rate.to_string(),
            (None, None) => "unlimited".to_owned(),
        };
        [
            words(self.down, &self.down_trace),
            words(self.up, &self.up_trace),
        ]
    }

    /// The profile in one line, as a plan shows it.
    pub fn words(&self) -> String {
        let [down, up] = self.capacity_words();
        let mut words = format!(
            "{} ms round trip (+-{} ms), {} loss, {down} down, {up} up",
            self.round_trip().as_millis(),
            self.jitter.0.as_millis(),
            self.loss,
        );
        if let Some(every) = self.outage_every {
            words.push_str(&format!(", a {} outage every {every}", self.outage_for));
        }
        words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_and_say_their_units() {
        assert_eq!("12mbit".parse::<BitRate>().unwrap().0, 12e6);
        assert_eq!("1.5Mbit".parse::<BitRate>().unwrap().0, 1.5e6);
        assert_eq!("384kbit".parse::<BitRate>().unwrap().to_string(), "384kbit");
        assert!("12mb".parse::<BitRate>().is_err());
        assert!("0kbit".parse::<BitRate>().is_err());
        // 1500 bytes at 12 Mbit/s: 12,000 bits / 12e6 = 1 ms.
        assert_eq!(BitRate(12e6).serialization(1500), Duration::from_millis(1));
    }

    #[test]
    fn every_shipped_profile_holds_and_the_round_trips_are_the_documented_ones() {
        for name in SHIPPED {
            let profile = NetworkProfile::shipped(name).unwrap();
            profile.check().unwrap();
        }
        let rtt = |name| {
            NetworkProfile::shipped(name)
                .unwrap()
                .round_trip()
                .as_millis()
        };
        assert_eq!(
            [rtt("wifi"), rtt("lte"), rtt("3g"), rtt("gprs")],
            [20, 70, 200, 600]
        );
        assert!(NetworkProfile::shipped("5g").is_none());
    }

    #[test]
    fn traces_are_read_from_their_files_and_a_bad_one_names_key_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("steady.up");
        std::fs::write(&good, "1\n").unwrap();
        let bad = dir.path().join("bad.down");
        std::fs::write(&bad, "0\n5\n3\n10\n").unwrap();
        let traced = NetworkProfile {
            up_trace: Some(good.clone()),
            ..NetworkProfile::lte()
        };
        // A trace replaces the rate it stands for, which is given, so check refuses
        // it; without `up` it holds.
        assert_eq!(traced.check().unwrap_err().key, "up_trace");
        let traced = NetworkProfile { up: None, ..traced };
        traced.check().unwrap();
        let traces = traced.traces().unwrap();
        assert!(traces.up.is_some() && traces.down.is_none());
        assert!(traced.words().contains("trace "), "{}", traced.words());
        let broken = NetworkProfile {
            down: None,
            down_trace: Some(bad.clone()),
            ..traced
        };
        let error = broken.traces().unwrap_err();
        assert_eq!(error.key, "down_trace");
        let at_line = format!("{}:3:", bad.display());
        assert!(error.message.starts_with(&at_line), "{}", error.message);
    }

    #[test]
    fn a_profile_that_cannot_hold_names_its_key() {
        let bad: NetworkProfile = toml::from_str("delay = \"10ms\"\njitter = \"20ms\"\n").unwrap();
        assert_eq!(bad.check().unwrap_err().key, "jitter");
        let bad: NetworkProfile = toml::from_str("loss = \"60%\"\n").unwrap();
        assert_eq!(bad.check().unwrap_err().key, "loss");
        let bad: NetworkProfile =
            toml::from_str("outage_every = \"1s\"\noutage_for = \"2s\"\n").unwrap();
        assert_eq!(bad.check().unwrap_err().key, "outage_every");
        assert!(toml::from_str::<NetworkProfile>("latency = \"1ms\"\n").is_err());
        let both: NetworkProfile =
            toml::from_str("down = \"1mbit\"\ndown_trace = \"a.down\"\n").unwrap();
        let error = both.check().unwrap_err();
        assert_eq!(error.key, "down_trace");
        assert!(error.message.contains("replaces down"), "{}", error.message);
        let lte = NetworkProfile::lte().words();
        assert!(lte.starts_with("70 ms round trip"), "{lte}");
    }
}
