//! Child processes of a run: the same binary in another role (`serve`, `devices`),
//! with its stderr kept in a file so a child that dies can be named with the tail of
//! what it said. Children are killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// A child process of the run.
pub(crate) struct RoleProcess {
    pub name: String,
    child: Child,
    stderr_path: PathBuf,
}

impl RoleProcess {
    /// Starts `pingfleet <args>` with its stdout piped; its stderr goes to
    /// `<dir>/<name>.stderr`.
    pub(crate) fn spawn(name: &str, args: &[String], dir: &Path) -> anyhow::Result<Self> {
        Self::spawn_within(&[], name, args, dir)
    }

    /// As [`RoleProcess::spawn`], run by `wrapper` (e.g. `ip netns exec NS`, which
    /// enters a network namespace and execs this binary: the pid stays the child's).
    pub(crate) fn spawn_within(
        wrapper: &[String],
        name: &str,
        args: &[String],
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let stderr_path = Self::stderr_path(name, dir);
        let stderr = std::fs::File::create(&stderr_path)?;
        let child = crate::lifeline::child(wrapper, &exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|err| anyhow::anyhow!("cannot start {name}: {err}"))?;
        Ok(Self::adopt(name, child, stderr_path))
    }

    /// A child started elsewhere whose stderr goes to `stderr_path`.
    pub(crate) fn adopt(name: &str, child: Child, stderr_path: PathBuf) -> Self {
        Self {
            name: name.to_owned(),
            child,
            stderr_path,
        }
    }

    /// Where the child `name` of a run in `dir` keeps its stderr.
    pub(crate) fn stderr_path(name: &str, dir: &Path) -> PathBuf {
        dir.join(format!("{name}.stderr"))
    }

    /// The last lines of a stderr file, joined with ` | `.
    pub(crate) fn stderr_tail(path: &Path) -> String {
        let stderr = std::fs::read_to_string(path).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        tail.join(" | ")
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdout, for a reader of its own (once).
    pub(crate) fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Sends a signal (`-USR1`, `-TERM`, ...) to the child.
    pub(crate) fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
    }

    /// The exit status if the child has ended.
    pub(crate) fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the child to end.
    pub(crate) fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait()
    }

    /// Asks the child to stop (SIGTERM) and waits up to `timeout` before killing it.
    pub(crate) fn stop(&mut self, timeout: Duration) {
        self.signal("-TERM");
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.try_status().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status (if any) and the last lines of stderr.
    pub(crate) fn describe_failure(&mut self) -> String {
        let status = self
            .try_status()
            .map_or("still running".to_owned(), |status| status.to_string());
        format!("{status}; stderr: {}", Self::stderr_tail(&self.stderr_path))
    }
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
