//! `pingfleet run`: scenarios turned into server partitions and device workers, and
//! their results judged.
//!
//! Layout:
//! - [`orchestrate`]: partitions and workers started, sampled, collected, judged.
//! - [`children`]: the child processes and what they said when they failed.
//! - [`result`]: the result file and the threshold verdicts.
//! - [`threshold`]: the k6-like threshold conditions of a scenario.

pub mod children;
pub mod orchestrate;
pub mod result;
pub mod threshold;
