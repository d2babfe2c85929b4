//! The documents a run writes, and their reading: what `run`, a sweep, variants and a
//! capacity search measured, as result files. Beneath everything that writes or reads
//! them (`orchestrator`, `compare`, `html_report`): nothing here imports those.
//!
//! # Layout
//! - this file: [`read`], a result file of any kind, told by its `schema`.
//! - [`run`]: a run's result file (`pingfleet.result/1`): what it measured, memory per
//!   parked connection, cost per device-hour, the threshold verdicts.
//! - [`network`]: the figures of what a firewall did to the devices.
//! - [`links`]: what the emulated networks carried, dropped and cost, and the round
//!   trip the devices' kernels measured over them.
//! - [`proxy`]: the reverse proxy before each partition: its directives, the timeout
//!   that cuts a parked Ping, its memory per parked connection, a reload.
//! - [`per_second`]: the run second by second (the interval log) and the floor
//!   measured during the hold.
//! - [`timeline`]: the run second by second: every process's memory and CPU, the
//!   kernel's socket memory.
//! - [`self_check`]: whether the hold measured the server, or the generator, the host
//!   or our own fleet.
//! - [`sweep`]: a sweep's result file (`pingfleet.sweep/1`), a run per cell of its grid.
//! - [`variants`]: a variants result file (`pingfleet.variants/1`), the variants side
//!   by side.
//! - [`capacity`]: a capacity search's result file (`pingfleet.capacity/1`): its steps,
//!   memory fitted over them, the knee and the answer; [`capacity_fit`]: the line fitted
//!   to (devices, bytes) and the knee found in the steps.

pub mod capacity;
pub mod capacity_fit;
pub mod links;
pub(crate) mod network;
pub(crate) mod per_second;
pub mod proxy;
pub mod run;
pub(crate) mod self_check;
pub mod sweep;
pub(crate) mod timeline;
pub mod variants;

use std::path::{Path, PathBuf};

use capacity::CapacityResult;
use run::RunResult;
use sweep::SweepResult;
use variants::VariantsResult;

/// A result file, by its kind.
#[derive(Debug)]
pub enum Document {
    Run(Box<RunResult>),
    Sweep(SweepResult),
    Capacity(Box<CapacityResult>),
    Variants(VariantsResult),
    /// A saved `pingfleet compare --json` output (no schema of its own).
    Compared(serde_json::Value),
}

/// Why a file could not be read as a result.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not JSON", path.display())]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The file names a schema of ours, and does not hold to it.
    #[error("{} is not a valid {schema} document", path.display())]
    Invalid {
        path: PathBuf,
        schema: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{}: not a run, sweep, capacity or variants result, nor a `pingfleet compare --json` output",
        path.display()
    )]
    Unknown { path: PathBuf },
}

/// Reads the result file at `path`, of whichever kind its `schema` names.
pub fn read(path: &Path) -> Result<Document, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| ReadError::NotJson {
            path: path.to_owned(),
            source,
        })?;
    let schema = value
        .get("schema")
        .and_then(|schema| schema.as_str())
        .unwrap_or_default();
    let invalid = |schema: &'static str| {
        move |source| ReadError::Invalid {
            path: path.to_owned(),
            schema,
            source,
        }
    };
    Ok(match schema {
        run::SCHEMA => Document::Run(Box::new(
            serde_json::from_value(value).map_err(invalid(run::SCHEMA))?,
        )),
        sweep::SCHEMA => {
            Document::Sweep(serde_json::from_value(value).map_err(invalid(sweep::SCHEMA))?)
        }
        capacity::SCHEMA => Document::Capacity(Box::new(
            serde_json::from_value(value).map_err(invalid(capacity::SCHEMA))?,
        )),
        variants::SCHEMA => {
            Document::Variants(serde_json::from_value(value).map_err(invalid(variants::SCHEMA))?)
        }
        _ if value.get("figures").is_some() && value.get("regressions").is_some() => {
            Document::Compared(value)
        }
        _ => {
            return Err(ReadError::Unknown {
                path: path.to_owned(),
            })
        }
    })
}

#[cfg(test)]
pub(crate) mod schema_tests {
    /// Checks that `schemas/<file>` is `schema`, what the types serialize to; after a
    /// change to them, `UPDATE_SCHEMA=1 cargo test --lib schema` writes it anew.
    pub(crate) fn assert_committed(schema: schemars::Schema, file: &str) {
        let generated = serde_json::to_string_pretty(&schema).expect("a schema serializes") + "\n";
        let path = format!("{}/schemas/{file}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).expect("schemas/ is writable");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "schemas/{file} is stale: run UPDATE_SCHEMA=1 cargo test --lib schema"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn each_kind_is_told_by_its_schema_and_the_rest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sweep = written(
            dir.path(),
            "sweep.json",
            r#"{"schema": "pingfleet.sweep/1", "tool_version": "0", "scenario": "s",
                "scenario_text": "", "time_scale": 1.0, "devices_per_cell": 2, "cells": []}"#,
        );
        assert!(matches!(read(&sweep), Ok(Document::Sweep(s)) if s.devices_per_cell == 2));
        let compared = written(dir.path(), "c.json", r#"{"figures": [], "regressions": 0}"#);
        assert!(matches!(read(&compared), Ok(Document::Compared(_))));
        let bad_run = written(dir.path(), "r.json", r#"{"schema": "pingfleet.result/1"}"#);
        assert!(matches!(
            read(&bad_run),
            Err(ReadError::Invalid {
                schema: run::SCHEMA,
                ..
            })
        ));
        let worker = written(dir.path(), "w.json", r#"{"devices": 3}"#);
        assert!(matches!(read(&worker), Err(ReadError::Unknown { .. })));
        let text = written(dir.path(), "t.json", "not json");
        assert!(matches!(read(&text), Err(ReadError::NotJson { .. })));
        assert!(matches!(
            read(&dir.path().join("absent.json")),
            Err(ReadError::Io { .. })
        ));
    }
}
