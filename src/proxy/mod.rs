//! Real reverse proxies between the devices and each server partition: Debian's nginx
//! and HAProxy, started by the run as child processes, configured from `[proxy]`, their
//! memory read from `/proc` and their reloads timed. What most often decides which
//! heartbeat survives in production: the proxy's own idle timeouts.
//!
//! Layout:
//! - [`config`]: `[proxy]`, its checks, and every directive's value with where it came
//!   from (the proxy's default, the scenario, or sized to the fleet).
//! - [`render`]: the configuration file written for the proxy (or a user's own, with
//!   the addresses filled in).
//! - [`process`]: the binary found and its version checked, the configuration tested,
//!   the proxy started, reloaded and stopped by its pid.
//! - [`memory`]: the proxy's processes (master and workers, by generation) and their
//!   proportional and resident memory.

pub mod config;
pub mod memory;
pub mod process;
pub mod render;
