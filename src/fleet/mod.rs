//! The device fleet: simulated phones speaking real EAS.
//!
//! Layout:
//! - [`device`]: one phone as a sans-IO state machine.
//! - [`profile`]: what kind of phone it is and how it pings; mixes of kinds.
//! - [`http`]: the device side of HTTP/1.1, sans-IO.
//! - [`engine`]: the mio event loop driving every device of a worker, and the injector
//!   thread; [`timers`]: its timer wheel.
//! - [`injector`]: the notification schedule (fixed, Poisson, burst).
//! - [`churn`]: which devices lose their connection in the churn stage, and when.
//! - [`connect`]: opening connections, from a loopback source address per group of devices.
//! - [`target`]: server URLs.
//! - [`stats`]: what a worker measures; [`report`]: its mergeable JSON document.
//! - [`launch`]: `pingfleet devices`, its flags and summary.

pub mod churn;
pub mod connect;
pub mod device;
pub mod engine;
pub mod http;
pub mod injector;
pub mod launch;
pub mod profile;
pub mod report;
pub mod stats;
pub mod target;
pub mod timers;
