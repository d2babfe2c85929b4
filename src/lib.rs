//! pingfleet: a benchmark and load tester for Exchange ActiveSync Direct Push, the
//! long-parked `Ping` command that phones use for push e-mail.
//!
//! Layout (lower layers first; nothing imports a layer above it):
//! - [`eas`]: the protocol, pure and I/O-free: WBXML codec and code pages, command
//!   models, the request line and headers. Shared by every role.
//! - [`notification`]: the change-notification datagram, `pingfleet notify`, and the
//!   subject that ties an item to its notification.
//! - [`partition`]: which server partition owns a user and which worker a device, and
//!   how many processes of a role.
//! - [`setting`]: a setting that does not hold, said for a key or a flag.
//! - [`seeds`]: every random choice from (run seed, device index).
//! - [`phase`]: the phases of a run (ramp, hold, drain).
//! - [`argv`]: the typed seam: child flags written from the structs their CLIs parse.
//! - [`measure`]: latency histograms and readings from /proc, the loopback floor.
//! - [`kernel_stamp`]: datagrams with the instant the kernel received them.
//! - [`tls`], [`tls_session`]: certificates and client configs; rustls' unbuffered API.
//! - [`units`]: shares written `5%` everywhere; latencies and sizes printed with units.
//! - [`lifeline`]: children of a run end with it (`PR_SET_PDEATHSIG`).
//! - [`inspect`]: the `pingfleet wbxml` tools that convert captured bodies to XML and back.
//! - [`server`]: the bundled reference server (`pingfleet serve`) and [`server::process`],
//!   how other processes start one.
//! - [`firewall`]: the middlebox between devices and server (`pingfleet firewall`).
//! - [`fleet`]: the simulated phones (`pingfleet devices`), the injector, the worker's
//!   document.
//! - [`scenario`]: scenario files, the resolved plan of a run, threshold conditions.
//! - [`orchestrator`]: `pingfleet run` and `pingfleet merge`: children started from the
//!   plan, sampled, merged, judged.
//!
//! - [`cli`]: every subcommand and its flags.
//!
//! The binary (`src/main.rs`) only parses the command line and calls into this library.

#![deny(unsafe_code)]

pub mod argv;
pub mod cli;
pub mod compare;
pub mod eas;
pub mod firewall;
pub mod fleet;
pub mod html_report;
pub mod inspect;
pub mod kernel_stamp;
pub mod lifeline;
pub mod listen;
pub mod measure;
pub mod notification;
pub mod orchestrator;
pub mod partition;
pub mod phase;
pub mod scenario;
pub mod seeds;
pub mod server;
pub mod setting;
pub mod tls;
pub mod tls_records;
pub mod tls_session;
pub mod units;
