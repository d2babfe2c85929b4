//! The device fleet: simulated phones speaking real EAS.
//!
//! Layout:
//! - [`device`]: one phone as a sans-IO state machine.
//! - [`profile`]: what kind of phone it is and how it pings.
//! - [`http`]: the device side of HTTP/1.1, sans-IO.
//! - [`churn`]: which devices lose their connection in the churn stage, and when.
//! - [`connect`]: opening connections, from a loopback source address per group of devices.
//! - [`stats`]: what a worker measures, and its mergeable JSON form.

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
