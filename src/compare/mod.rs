//! `pingfleet compare`: whether a run (or several) regressed from a baseline, figure by
//! figure, in a way a CI pipeline can gate on without crying wolf on a noisy machine;
//! and `--ab`, two builds run alternately on one machine and compared.
//!
//! Layout:
//! - [`figures`]: what a result offers to compare, and of what kind each figure is.
//! - [`stats`]: Mann-Whitney and the bootstrap, for skewed samples.
//! - [`verdict`]: a figure's change judged (regression, improvement, no change,
//!   inconclusive) under the tolerances of `[compare]` or the flags.
//! - [`launch`]: the command: reading result files and directories, `--ab`, the table,
//!   `--markdown` and `--json`, the exit code.

pub(crate) mod figures;
pub mod launch;
pub mod stats;
pub(crate) mod verdict;
