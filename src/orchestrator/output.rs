//! Where a run's files go: the private directory of its children's logs and
//! documents, and the paths of result files (`publish` writes them).

use std::path::PathBuf;

use anyhow::Context as _;

use crate::results::run::RunResult;
use crate::scenario::Scenario;
use crate::server::state::Engine;

/// Where a run keeps its children's logs and documents.
/// A fresh directory only this user can enter (never one that exists already, so no
/// planted file or symlink is written through); removed when dropped.
pub(super) fn run_directory(scenario: &Scenario) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("pingfleet-run-{}-", scenario.name))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .context("cannot create the run's directory")
}

pub(super) fn git_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// `<output>/<name>-<UTC time>.json`, the directory created.
pub(super) fn result_path(output: &str, name: &str) -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from(output);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    Ok(dir.join(format!("{name}-{stamp}.json")))
}

/// Where a run's result goes: `<output>/<name>[-<engine>]-<UTC time>.json` (the engine
/// named when a run compares engines, `index` > 0 or the scenario asks for it).
pub(super) fn run_result_path(
    scenario: &Scenario,
    result: &RunResult,
    index: usize,
) -> anyhow::Result<PathBuf> {
    let name = if scenario.server.compare_engines || index > 0 {
        format!(
            "{}-{}",
            scenario.name,
            result.engine.map_or("external", Engine::name)
        )
    } else {
        scenario.name.clone()
    };
    result_path(&scenario.output, &name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn run_directories_are_fresh_and_private() {
        let default = crate::scenario::catalog::shipped("default").unwrap();
        let scenario = Scenario::parse(default.text, "default").unwrap();
        let first = run_directory(&scenario).unwrap();
        let second = run_directory(&scenario).unwrap();
        assert_ne!(first.path(), second.path(), "a directory is never reused");
        let mode = std::fs::metadata(first.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let path = first.path().to_path_buf();
        drop(first);
        assert!(!path.exists(), "removed with the run");
    }
}
