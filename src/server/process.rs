//! A `pingfleet serve` child process as its starters see it: spawned from typed
//! [`ServeArgs`], ready once it has printed its [`ServerReady`] line, read through its
//! `/metrics`, stopped with SIGTERM. The orchestrator, the integration tests and the
//! benches all start servers through [`ServerHandle::spawn`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::launch::{ServeArgs, ServerReady};
use super::metrics::WAKE_PATH;
use super::wake_path::WakePathReading;

/// A running server process and what its ready line said. Dropping it leaves the
/// process running: stop it with [`ServerHandle::terminate`], or own the child.
#[derive(Debug)]
pub struct ServerHandle {
    pub child: Child,
    pub ready: ServerReady,
}

impl ServerHandle {
    /// Starts `exe serve <args>` with its stderr sent to `stderr`, and waits up to
    /// `timeout` for its ready line. A server that does not become ready is killed.
    pub fn spawn(
        exe: &Path,
        args: &ServeArgs,
        stderr: Stdio,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        Self::spawn_within(&[], exe, args, stderr, timeout)
    }

    /// As [`ServerHandle::spawn`], run by `wrapper` (e.g. `ip netns exec NS`, which
    /// enters a network namespace and execs the server: the pid stays the server's).
    pub fn spawn_within(
        wrapper: &[String],
        exe: &Path,
        args: &ServeArgs,
        stderr: Stdio,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        // The server ends with the thread that started it, should that end first.
        let mut child = crate::lifeline::child(wrapper, exe)
            .args(args.to_argv()?)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|err| anyhow::anyhow!("cannot start {}: {err}", exe.display()))?;
        match read_ready(&mut child, timeout) {
            Ok(ready) => Ok(Self { child, ready }),
            Err(err) => {
                let _ = child.kill();
                let status = child.wait().map(|status| status.to_string());
                Err(anyhow::anyhow!(
                    "the server did not become ready ({}): {err}",
                    status.unwrap_or_else(|err| err.to_string())
                ))
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first EAS listener.
    pub fn http(&self) -> SocketAddr {
        self.ready.http[0]
    }

    pub fn notify(&self) -> SocketAddr {
        self.ready.notify
    }

    /// The value of one metric line (its exact name with labels), `None` when the
    /// server has no /metrics or cannot be read; 0 when the line is absent.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let text = scrape(self.ready.metrics?).ok()?;
        Some(metric_value(&text, name).unwrap_or(0.0))
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; kills it after that.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

/// Reads the child's first stdout line as its [`ServerReady`], within `timeout`.
fn read_ready(child: &mut Child, timeout: Duration) -> anyhow::Result<ServerReady> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout to read"))?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = receiver
        .recv_timeout(timeout)
        .map_err(|_| anyhow::anyhow!("no ready line within {timeout:?}"))?;
    serde_json::from_str(&line)
        .map_err(|err| anyhow::anyhow!("ready line {:?}: {err}", line.trim()))
}

/// The text of a server's `/metrics`.
pub fn scrape(metrics: SocketAddr) -> std::io::Result<String> {
    get(metrics, "/metrics")
}

/// The histograms of the partition's wake path, from the `/wake-path` beside its
/// `/metrics`; `None` when they cannot be read.
pub fn wake_path(metrics: SocketAddr) -> Option<WakePathReading> {
    let response = get(metrics, WAKE_PATH).ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// The whole response (head and body) to a GET of `path`.
fn get(metrics: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&metrics, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

/// The value of the metric line named exactly `name` (labels included) in `text`.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_are_matched_by_their_whole_name() {
        let text = "# HELP x\npingfleet_parked_pings 12\npingfleet_parked_pings_max 40\n\
                    pingfleet_wake{quantile=\"0.99\"} 250\n";
        assert_eq!(metric_value(text, "pingfleet_parked_pings"), Some(12.0));
        assert_eq!(
            metric_value(text, "pingfleet_wake{quantile=\"0.99\"}"),
            Some(250.0)
        );
        assert_eq!(metric_value(text, "pingfleet_parked"), None);
    }

    #[test]
    fn serve_args_cross_the_seam_unchanged() {
        let mut args = ServeArgs::defaults();
        args.listen = vec![
            "127.0.0.2:0".parse().unwrap(),
            "[::1]:8080".parse().unwrap(),
        ];
        args.server.tls = true;
        args.server.engine = crate::server::state::Engine::Hyper;
        args.partition = "2/3".parse().unwrap();
        args.partition_urls = vec![
            "https://a:1".into(),
            "https://b:2".into(),
            "https://c:3".into(),
        ];
        args.head_timeout = Duration::from_millis(1500);
        args.max_connections = Some(17);
        args.metrics = Some("127.0.0.1:0".parse().unwrap());
        args.cert_out = Some("/tmp/x y.pem".into());
        args.server.min_heartbeat = crate::units::Span::from_secs(2);
        args.threads = Some(1);
        let argv = args.to_argv().unwrap();
        assert_eq!(
            crate::argv::parse::<ServeArgs>(&argv).unwrap(),
            args,
            "{argv:?}"
        );
        assert_eq!(
            crate::argv::parse::<ServeArgs>(&ServeArgs::defaults().to_argv().unwrap()).unwrap(),
            ServeArgs::defaults()
        );
    }
}
