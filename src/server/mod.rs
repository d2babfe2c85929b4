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
//! - [`run`]: starting and stopping a partition.

pub mod admission;
pub mod commands;
pub mod handle;
pub mod handler;
pub mod http;
pub mod hyper_engine;
pub mod launch;
pub mod lean;
pub mod mailbox;
pub mod metrics;
pub mod notify;
pub mod parking;
pub mod run;
pub mod state;
pub mod store;
pub mod tls_stream;
pub mod users;
