//! pingfleet: a benchmark and load tester for Exchange ActiveSync Direct Push, the
//! long-parked `Ping` command that phones use for push e-mail.
//!
//! Layout:
//! - [`eas`]: the protocol, pure and I/O-free: WBXML codec and code pages, command
//!   models, the request line and headers. Shared by every role.
//! - [`inspect`]: the `pingfleet wbxml` tools that convert captured bodies to XML and back.
//!
//! The binary (`src/main.rs`) only parses the command line and calls into this library.

#![forbid(unsafe_code)]

pub mod argv;
pub mod eas;
pub mod fleet;
pub mod inspect;
pub mod measure;
pub mod notification;
pub mod partition;
pub mod phase;
pub mod run;
pub mod scenario;
pub mod seeds;
pub mod server;
pub mod tls;
pub mod tls_session;
