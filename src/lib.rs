//! pingfleet: a benchmark and load tester for Exchange ActiveSync Direct Push, the
//! long-parked `Ping` command that phones use for push e-mail.
//!
//! # Layout
//! Lower layers first: a module imports only modules listed before it (its tests may
//! reach further, e.g. a TLS test starting a fleet's client).
//! - [`eas`]: the protocol, pure and I/O-free: WBXML codec and code pages, command
//!   models, the request line and headers. Shared by every role.
//! - [`notification`]: the change-notification datagram, `pingfleet notify`, and the
//!   subject that ties an item to its notification.
//! - [`setting`]: a setting that does not hold, said for a key or a flag.
//! - [`seeds`]: every random choice from (run seed, device index).
//! - [`phase`]: the phases of a run (ramp, hold, drain).
//! - [`argv`]: the typed seam: child flags written from the structs their CLIs parse.
//! - [`measure`]: latency histograms and readings from /proc, the loopback floor.
//! - [`kernel_stamp`]: datagrams with the instant the kernel received them.
//! - [`listen`]: listening sockets with a backlog that holds a reconnect storm.
//! - [`lifeline`]: children of a run end with it (`PR_SET_PDEATHSIG`).
//! - [`tls`], [`tls_records`], [`tls_session`]: certificates and client configs; TLS 1.3
//!   records sealed with the traffic keys alone; rustls' unbuffered API, then those
//!   records.
//! - [`units`]: shares written `5%` everywhere; latencies and sizes printed with units.
//! - [`partition`]: which server partition owns a user and which worker a device, and
//!   how many processes of a role.
//! - [`inspect`]: the `pingfleet wbxml` tools that convert captured bodies to XML and back.
//! - [`server`]: the bundled reference server (`pingfleet serve`) and [`server::process`],
//!   how other processes start one.
//! - [`firewall`]: the middlebox between devices and server (`pingfleet firewall`), and
//!   the network namespaces of a path.
//! - [`link`]: the emulated network between each phone and the server (`pingfleet
//!   link`): delay, loss, bandwidth and outages per network profile.
//! - [`proxy`]: real reverse proxies (nginx, HAProxy) before the server: their
//!   configuration, processes, reloads and memory.
//! - [`fleet`]: the simulated phones (`pingfleet devices`), the injector, the worker's
//!   document.
//! - [`scenario`]: scenario files, the resolved plan of a run, threshold conditions.
//! - [`results`]: the documents a run writes (a run's, a sweep's, the variants', a
//!   capacity search's) and their reading.
//! - [`compare`]: `pingfleet compare`, the regression gate: two sides' results judged
//!   figure by figure (statistics, A/B runs of two builds).
//! - [`html_report`]: `pingfleet report`, self-contained HTML pages of result files.
//! - [`orchestrator`]: `pingfleet run` and `pingfleet merge`: children started from the
//!   plan, sampled, merged, judged, published (the JSON, the summary, the report).
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
pub(crate) mod kernel_stamp;
pub(crate) mod lifeline;
pub mod link;
pub(crate) mod listen;
pub mod measure;
pub mod notification;
pub mod orchestrator;
pub mod partition;
pub mod phase;
pub mod proxy;
pub mod results;
pub mod scenario;
pub(crate) mod seeds;
pub mod server;
pub(crate) mod setting;
pub mod tls;
pub mod tls_records;
pub mod tls_session;
pub mod units;
