//! The device fleet: simulated phones speaking real EAS.
//!
//! Layout:
//! - [`device`]: one phone as a sans-IO state machine; [`errors`]: what it counts as errors.
//! - [`profile`]: what kind of phone it is and how it pings; mixes of kinds;
//!   [`heartbeat`]: how its heartbeat moves (fixed, adaptive, stepped);
//!   [`delivery`]: how it learns of mail (push, scheduled sync, SMS) and the simulated
//!   SMS gateway; [`radio`]: what its cellular radio spends on its packets.
//! - [`http`]: the device side of HTTP/1.1, sans-IO.
//! - [`engine`]: the mio event loop driving every device of a worker; [`timers`]: its
//!   timer wheel; `phase_clock`: its phases and what was counted in each.
//! - [`injector`]: the fleet's notification schedule (fixed, Poisson, burst) and the
//!   thread that sends a shard's share of it.
//! - [`sink`]: where the injector's changes go (datagrams to `pingfleet serve`, or
//!   `--inject` mail stores) and the mail sender threads; [`mail`]: the injected
//!   message and its delivery over IMAP, SMTP, Maildir or a command.
//! - [`churn`]: which devices lose their connection in the churn stage, and when.
//! - `conn`: one connection's I/O (connect, TLS, read, write) as outcomes.
//! - [`connect`]: opening connections, from a loopback source address per group of devices.
//! - [`target`]: server URLs; [`tickets`]: the TLS session tickets devices resume with.
//! - [`stats`]: what a worker measures; [`report`]: its mergeable JSON document;
//!   [`digest`]: the fleet's fingerprint in it, equal however the fleet is sharded;
//!   [`histogram`]: the names of its histograms.
//! - [`config`]: the fleet's settings, one struct for `[devices]` and the flags, and a
//!   kind of the mix as an overlay of it, checked; [`settings`]: the macro that writes
//!   both from one list of fields; [`device_id`]: the DeviceId prefix's default and check.
//! - [`args`]: the flags of `pingfleet devices`; [`launch`]: running it (building
//!   the worker's devices, the engine, the summary and document); [`failure`]: why a
//!   worker that ran did not do what it was asked, read from its report.

pub mod args;
pub(crate) mod churn;
pub(crate) mod config;
mod conn;
pub(crate) mod connect;
pub(crate) mod delivery;
pub(crate) mod device;
pub(crate) mod device_id;
pub mod digest;
pub(crate) mod engine;
pub(crate) mod errors;
pub(crate) mod failure;
pub(crate) mod heartbeat;
pub mod histogram;
pub mod http;
pub mod injector;
pub mod launch;
pub mod mail;
mod pacer;
mod phase_clock;
pub(crate) mod profile;
pub(crate) mod radio;
pub mod report;
pub mod settings;
pub mod sink;
pub mod stats;
pub(crate) mod target;
pub mod tickets;
pub(crate) mod timers;
