//! Firewalls and NATs between devices and server: what network engineers tune
//! heartbeats against.
//!
//! Layout:
//! - [`proxy`]: the userspace middlebox: flows forwarded, and what an idle timeout (or
//!   a full flow table) does to them (`rst`, `silent`, `half`).
//! - [`config`]: the firewall's settings, one struct for `[firewall]` and the flags.
//! - [`launch`]: `pingfleet firewall`, its flags, ready line and report.
//! - [`stream_link`]: the middlebox's stream-level link without root: a delay and a
//!   rate each way on its relays.
//! - [`netns`]: the kernel's own firewall: network namespaces, nftables, conntrack.

pub(crate) mod config;
pub mod launch;
pub mod netns;
pub(crate) mod proxy;
pub mod stream_link;
