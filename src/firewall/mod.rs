//! Firewalls and NATs between devices and server: what network engineers tune
//! heartbeats against.
//!
//! Layout:
//! - [`proxy`]: the userspace middlebox: flows forwarded, and what an idle timeout (or
//!   a full flow table) does to them (`rst`, `silent`, `half`).
//! - [`launch`]: `pingfleet firewall`, its flags, ready line and report.
//! - [`netns`]: the kernel's own firewall: network namespaces, nftables, conntrack.

pub mod launch;
pub mod netns;
pub mod proxy;
