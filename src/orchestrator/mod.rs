//! `pingfleet run`: scenarios turned into server partitions and device workers, and
//! their results judged.
//!
//! Layout:
//! - [`orchestrate`]: partitions and workers started, sampled, collected, judged;
//!   `watch`: each second of a measurement and its stop; `readings`: memory at the
//!   baseline and the plateau, per parked connection; `output`: the run's directory and
//!   result files.
//! - [`roles`]: server partitions and device workers started with a scenario's flags.
//! - [`children`]: the child processes and what they said when they failed.
//! - [`server_gauge`]: where the server's memory and CPU are read (bundled partitions,
//!   an external server's processes or cgroup, or not at all).
//! - [`sampler`]: every process's memory and CPU, and the kernel's socket memory, each second.
//! - [`progress`]: the workers' running figures, read from their stdout.
//! - [`live`]: the progress shown while a run goes on.
//! - [`merge`]: `pingfleet merge`, shards' documents combined exactly.
//! - [`result`]: the result file and the threshold verdicts; [`network`]: its figures
//!   of what a firewall did to the devices; [`per_second`]: the run second by second
//!   (the interval log) and the floor measured during the hold.
//! - [`self_check`]: whether the generator or the machine was saturated.
//! - [`preview`]: `run --plan` and `pingfleet scenarios`: plans shown, nothing started.
//! - [`summary`]: what a run prints when it ends.
//! - [`sweep`]: a `[sweep]` grid measured cell by cell, several at once, as one table.
//! - [`variants`]: `[[variants]]` of a scenario run one after another, side by side.

pub mod capacity;
pub mod capacity_fit;
mod capacity_words;
pub mod children;
pub mod live;
pub mod merge;
pub mod network;
pub mod orchestrate;
mod output;
pub mod per_second;
pub mod preview;
pub mod progress;
mod readings;
pub mod result;
pub mod roles;
pub mod sampler;
pub mod self_check;
pub mod server_gauge;
pub mod standalone;
pub mod summary;
pub mod sweep;
pub mod variants;
mod watch;
