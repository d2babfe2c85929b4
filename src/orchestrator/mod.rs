//! `pingfleet run`: scenarios turned into server partitions and device workers, their
//! results judged and published. The documents it writes are [`crate::results`]'; the
//! report pages are [`crate::html_report`]'s, which it calls to publish.
//!
//! # Layout
//! - [`orchestrate`]: `pingfleet run`: partitions and workers started, sampled,
//!   collected, judged; a single run, each engine of a comparison, or a sweep, the
//!   variants or a capacity search handed to their modules below.
//! - `watch`: each second of a measurement and its stop; `readings`: memory at the
//!   baseline and the plateau, per parked connection.
//! - `output`: the run's private directory and the paths of result files; `publish`:
//!   the one publish step of every document (its JSON, its printed and saved summary,
//!   its HTML report when asked).
//! - [`roles`]: server partitions and device workers started with a scenario's flags.
//! - [`children`]: the child processes and what they said when they failed.
//! - [`server_gauge`]: where the server's memory and CPU are read (bundled partitions,
//!   an external server's processes or cgroup, or not at all).
//! - [`sampler`]: every process's memory and CPU, and the kernel's socket memory, each second.
//! - [`progress`]: the workers' running figures, read from their stdout.
//! - [`live`]: the progress shown while a run goes on.
//! - [`thresholds`]: the scenario's thresholds judged against what a run measured.
//! - [`self_check`]: whether the hold measured the server, or the generator, the host or
//!   our own fleet.
//! - [`proxies`]: the reverse proxy before each partition: started, read each second by
//!   generation, reloaded, stopped, its figures.
//! - [`summary`]: what a run prints when it ends; `link_words` and `proxy_words`: its
//!   lines of the emulated networks and of the reverse proxies.
//! - [`preview`]: `run --plan` and `pingfleet scenarios`: plans shown, nothing started.
//! - [`sweep`]: a `[sweep]` grid measured cell by cell, several at once, as one table.
//! - [`variants`]: `[[variants]]` of a scenario run one after another, side by side.
//! - [`capacity`]: the capacity search (`[capacity]`): steps measured until one fails,
//!   bisected, memory fitted; `capacity_words`: its result said in words (the answer,
//!   each step's line, the summary), a view of the result alone.
//! - [`merge`]: `pingfleet merge`, shards' documents combined exactly.
//! - [`standalone`]: `pingfleet devices` on its own, judged by its `--threshold` flags.

pub mod capacity;
mod capacity_words;
pub(crate) mod children;
pub(crate) mod link_words;
pub(crate) mod live;
pub mod merge;
pub mod orchestrate;
mod output;
pub mod preview;
pub(crate) mod progress;
pub(crate) mod proxies;
pub(crate) mod proxy_words;
mod publish;
mod readings;
pub(crate) mod roles;
pub(crate) mod sampler;
pub(crate) mod self_check;
pub(crate) mod server_gauge;
pub mod standalone;
pub mod summary;
pub mod sweep;
pub(crate) mod thresholds;
pub mod variants;
mod watch;
