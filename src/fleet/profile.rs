//! A device profile: what kind of phone a simulated device is and how it pings.

use std::time::Duration;

use crate::eas::ProtocolVersion;

/// How a simulated device behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The version asked for (lowered to the server's best if it lacks it).
    pub version: ProtocolVersion,
    pub device_type: String,
    pub user_agent: String,
    /// Folder ids pushed (monitored by Ping), e.g. `["5"]` for the Inbox.
    pub folders: Vec<String>,
    /// Run Provision (both phases) during bootstrap.
    pub provision: bool,
    /// After the first full Ping, re-Ping with an empty body (the server's cache).
    pub empty_reping: bool,
    /// Send `Connection: close` on every Ping, as some Android clients do.
    pub close_per_ping: bool,
    pub heartbeat_s: u32,
    /// Each device's heartbeat is `heartbeat_s` plus or minus up to this.
    pub heartbeat_jitter_s: u32,
    /// How long after its heartbeat a device waits for the Ping response before it
    /// assumes the connection was cut (AOSP waits 5 s, NachoMail 10 s).
    pub read_margin: Duration,
    /// Deadline of every other request.
    pub request_timeout: Duration,
}

impl Default for Profile {
    /// An Android-like phone pushing its Inbox with an 8-minute heartbeat.
    fn default() -> Self {
        Self {
            version: ProtocolVersion::V14_1,
            device_type: "Android".into(),
            user_agent: "Android/14-EAS-2.0".into(),
            folders: vec!["5".into()],
            provision: true,
            empty_reping: false,
            close_per_ping: false,
            heartbeat_s: 480,
            heartbeat_jitter_s: 0,
            read_margin: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }
}
