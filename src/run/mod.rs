//! `pingfleet run`: scenarios turned into server partitions and device workers, and
//! their results judged.
//!
//! Layout:
//! - [`threshold`]: the k6-like threshold conditions of a scenario.
//!
//! The orchestrator that starts partitions and workers is not built yet; the scenario
//! format ([`crate::scenario`]) and the thresholds are.

pub mod threshold;
