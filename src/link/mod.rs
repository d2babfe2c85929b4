//! The network between a phone and the server, emulated: a link per phone connection
//! with the delay, jitter, loss, bandwidth and outages of its network profile, so the
//! kernels' own TCP retransmits and waits as over a real radio network.
//!
//! Layout:
//! - [`profile`]: network profiles, the shipped ones with their sources, and rates.
//! - [`trace`]: packet-delivery traces (mahimahi's format): reading them, and where
//!   one direction of a link is in its trace.
//! - [`shaper`]: one link's verdict on a packet (when it leaves, or why it never does).
//! - [`packet`]: the little of an IPv4 packet read to tell whose link it crosses.
//! - [`forward`]: which phone's link each packet crosses, the packets held, the counts.
//! - [`launch`]: `pingfleet link`, the emulator on a TUN device, and its report;
//!   `tun`: the TUN device opened by name.

pub mod forward;
pub mod launch;
pub mod packet;
pub mod profile;
pub(crate) mod shaper;
pub mod trace;
mod tun;
