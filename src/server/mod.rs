//! The bundled reference EAS server: one partition of a Direct Push front-end with an
//! embedded mailbox store, parking Pings until a UDP change notification or their
//! heartbeat ends them.
//!
//! Layout:
//! - [`handler`] and [`commands`]: the EAS logic, synchronous and I/O-free, written once.
//! - [`lean`] and [`hyper_engine`]: the two connection engines that serve it.
//! - [`store`], [`mailbox`], [`parking`]: users, devices, folders, items, parked Pings.
//! - [`notify`]: the UDP change-notification listener.
//! - [`metrics`]: counters and `/metrics`.
//! - [`admission`]: credentials on the head and a share of the [`budget`] of body
//!   bytes in flight, before either engine reads a body.
//! - [`http`]: the request and response shapes both engines share; [`tls_stream`]:
//!   the lean engine's TLS.
//! - [`config`]: the server's settings, one struct for `[server]` and the flags.
//! - [`users`]: who may log in; [`state`]: what a partition's connections share.
//! - [`run`]: starting and stopping a partition; [`launch`]: `pingfleet serve`;
//!   [`process`]: a `serve` process as the orchestrator, tests and benches start it.

pub(crate) mod admission;
pub(crate) mod budget;
pub mod commands;
pub(crate) mod config;
pub(crate) mod handler;
pub mod http;
pub(crate) mod hyper_engine;
pub mod launch;
pub mod lean;
pub(crate) mod mailbox;
pub(crate) mod metrics;
pub(crate) mod notify;
pub(crate) mod parking;
pub mod process;
pub mod run;
pub mod state;
pub(crate) mod store;
pub(crate) mod tls_stream;
pub mod users;
pub(crate) mod wake_path;
