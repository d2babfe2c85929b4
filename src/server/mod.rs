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

pub mod admission;
pub mod budget;
pub mod commands;
pub mod config;
pub mod handler;
pub mod http;
pub mod hyper_engine;
pub mod launch;
pub mod lean;
pub mod mailbox;
pub mod metrics;
pub mod notify;
pub mod parking;
pub mod process;
pub mod run;
pub mod state;
pub mod store;
pub mod tls_stream;
pub mod users;
pub mod wake_path;
