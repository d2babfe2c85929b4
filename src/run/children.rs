//! Child processes of a run: the same binary in another role (`serve`, `devices`),
//! with its stderr kept in a file so a child that dies can be named with the tail of
//! what it said. Children are killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A child process of the run.
pub struct RoleProcess {
    pub name: String,
    child: Child,
    stderr_path: PathBuf,
}

impl RoleProcess {
    /// Starts `pingfleet <args>`; its stderr goes to `<dir>/<name>.stderr`.
    pub fn spawn(
        name: &str,
        args: &[String],
        dir: &Path,
        stdout_piped: bool,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let stderr_path = dir.join(format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_path)?;
        let child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(if stdout_piped {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(stderr)
            .spawn()
            .map_err(|err| anyhow::anyhow!("cannot start {name}: {err}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            stderr_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads the child's first stdout line (a server's JSON ready line).
    pub fn ready_line(&mut self, timeout: Duration) -> anyhow::Result<serde_json::Value> {
        let stdout = self
            .child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("{} has no stdout to read", self.name))?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver.recv_timeout(timeout).unwrap_or_default();
        serde_json::from_str(&line).map_err(|_| {
            let why = self.describe_failure();
            anyhow::anyhow!("{} did not become ready: {why}", self.name)
        })
    }

    /// The child's stdout, for a reader of its own (once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Sends a signal (`-USR1`, `-TERM`, ...) to the child.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
    }

    /// The exit status if the child has ended.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the child to end.
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait()
    }

    /// Asks the child to stop (SIGTERM) and waits up to `timeout` before killing it.
    pub fn stop(&mut self, timeout: Duration) {
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
    pub fn describe_failure(&mut self) -> String {
        let status = self
            .try_status()
            .map_or("still running".to_owned(), |status| status.to_string());
        let stderr = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("{status}; stderr: {}", tail.join(" | "))
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
