//! The workers' running figures during a run: each worker prints a progress line a
//! second (`pingfleet devices --progress`); a thread per worker reads them, keeps the
//! latest, and writes every other line the worker prints to `<name>.stdout`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use super::children::RoleProcess;
use crate::fleet::stats::Progress;

/// The latest progress of every worker.
pub(crate) struct WorkerProgress {
    latest: Arc<Mutex<Vec<Progress>>>,
}

impl WorkerProgress {
    /// Starts reading each worker's stdout.
    pub(crate) fn follow(workers: &mut [RoleProcess], dir: &Path) -> Self {
        let latest = Arc::new(Mutex::new(vec![Progress::default(); workers.len()]));
        for (index, worker) in workers.iter_mut().enumerate() {
            let Some(stdout) = worker.take_stdout() else {
                continue;
            };
            let log = std::fs::File::create(dir.join(format!("{}.stdout", worker.name))).ok();
            let latest = latest.clone();
            std::thread::spawn(move || read_lines(stdout, index, &latest, log));
        }
        Self { latest }
    }

    /// Every worker's latest figures together.
    pub(crate) fn total(&self) -> Progress {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .fold(Progress::default(), |sum, progress| sum.together(*progress))
    }
}

fn read_lines(
    stdout: std::process::ChildStdout,
    index: usize,
    latest: &Mutex<Vec<Progress>>,
    mut log: Option<std::fs::File>,
) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { return };
        match Progress::from_line(&line) {
            Some(progress) => {
                latest.lock().unwrap_or_else(PoisonError::into_inner)[index] = progress;
            }
            None => {
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "{line}");
                }
            }
        }
    }
}
