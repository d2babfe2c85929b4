//! The proxy as a child process: its binary found and its version read, its
//! configuration tested, then started in the foreground (nginx's master, HAProxy's
//! master-worker master stay our child, with their own pid file), reloaded and stopped
//! by the master's pid. Stopping never leaves a worker behind: what the master does not
//! take down within 10 s is killed, found through `/proc`.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::config::{ProxyConfig, ProxyKind};
use super::memory::{self, ProxyProcessInfo};
use super::render::Rendered;

/// Why a proxy could not be set up, started or signalled; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{program} is not installed (looked for {looked}): {hint}, or set proxy.binary")]
    NotInstalled {
        program: &'static str,
        looked: String,
        hint: &'static str,
    },
    #[error("cannot read the version from `{} -v` (it said {output:?}): set proxy.binary to {program}", binary.display())]
    VersionUnreadable {
        program: &'static str,
        binary: PathBuf,
        output: String,
    },
    #[error("{program} rejected its configuration {}: {reason}", config.display())]
    ConfigRejected {
        program: &'static str,
        config: PathBuf,
        /// The last lines the proxy printed, in its own words.
        reason: String,
    },
    #[error("{program} exited as it started ({status}): {tail}")]
    Exited {
        program: &'static str,
        status: String,
        tail: String,
    },
    #[error(
        "{program} was not listening on {listen} within {within:?}; is the address free? {tail}"
    )]
    NotListening {
        program: &'static str,
        listen: SocketAddr,
        within: Duration,
        tail: String,
    },
    #[error("{} holds pid {written}, not {program}'s master {master}: give each proxy its own directory, and a wrapper that executes the proxy rather than forking it", pid_file.display())]
    PidMismatch {
        program: &'static str,
        pid_file: PathBuf,
        written: u32,
        master: u32,
    },
    #[error("cannot send {signal} to {program}'s master (pid {pid}): {source}")]
    Signal {
        program: &'static str,
        pid: u32,
        signal: &'static str,
        source: rustix::io::Errno,
    },
    #[error("cannot run {}: {source}", binary.display())]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the proxy configuration {} has no {placeholder}: {hint}", path.display())]
    Template {
        path: PathBuf,
        placeholder: &'static str,
        hint: &'static str,
    },
    #[error("TLS terminated at the proxy needs a certificate and its key: set the server's cert and key, or tls = \"passthrough\"")]
    NoCertificate,
    #[error("proxy I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The proxy's version as it reports it, beside the release pingfleet expects.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProxyVersion {
    /// As the binary says it: `1.22.1`, `2.6.12-1+deb12u4`.
    pub text: String,
    /// major.minor: `1.22`, `2.6`.
    pub expected: &'static str,
}

impl ProxyVersion {
    /// Whether the major and minor numbers are the expected ones.
    pub fn as_expected(&self) -> bool {
        same_release(&self.text, self.expected)
    }
}

/// Whether `version` (`1.22.1`, `2.6.12-1+deb12u4`) is of release `expected` (`1.22`):
/// its major and minor numbers.
pub fn same_release(version: &str, expected: &str) -> bool {
    let release: Vec<&str> = version.split(['.', '-']).take(2).collect();
    release.join(".") == expected
}

/// Runs `command` to its end and collects what it printed.
fn output_of(command: &mut Command, binary: &Path) -> Result<std::process::Output, ProxyError> {
    command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ProxyError::Spawn {
            binary: binary.to_owned(),
            source,
        })
}

/// How to install each proxy on Debian.
fn install_hint(kind: ProxyKind) -> &'static str {
    match kind {
        ProxyKind::Nginx => "apt-get install nginx-light libnginx-mod-stream",
        ProxyKind::Haproxy => "apt-get install haproxy",
    }
}

/// The proxy's program: `proxy.binary`, else `/usr/sbin/<program>` (where Debian puts
/// both, often outside a user's PATH), else the PATH.
pub fn find_binary(config: &ProxyConfig) -> Result<PathBuf, ProxyError> {
    let kind = config.kind();
    let not_installed = |looked: String| ProxyError::NotInstalled {
        program: kind.program(),
        looked,
        hint: install_hint(kind),
    };
    if let Some(binary) = &config.binary {
        return match is_executable(binary) {
            true => Ok(binary.clone()),
            false => Err(not_installed(binary.display().to_string())),
        };
    }
    let sbin = Path::new("/usr/sbin").join(kind.program());
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(sbin)
        .chain(std::env::split_paths(&path).map(|dir| dir.join(kind.program())))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| not_installed(format!("/usr/sbin/{} and the PATH", kind.program())))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Runs `<binary> -v` and reads the version (nginx prints it on stderr, HAProxy on
/// stdout).
pub fn version(kind: ProxyKind, binary: &Path) -> Result<ProxyVersion, ProxyError> {
    let output = output_of(Command::new(binary).arg("-v"), binary)?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = match kind {
        ProxyKind::Nginx => parse_nginx_version(&said),
        ProxyKind::Haproxy => parse_haproxy_version(&said),
    };
    text.map(|text| ProxyVersion {
        text,
        expected: kind.expected_release(),
    })
    .ok_or_else(|| ProxyError::VersionUnreadable {
        program: kind.program(),
        binary: binary.to_owned(),
        output: said.lines().next().unwrap_or_default().to_owned(),
    })
}

/// `nginx version: nginx/1.22.1` -> `1.22.1`.
fn parse_nginx_version(said: &str) -> Option<String> {
    let rest = &said[said.find("nginx/")? + "nginx/".len()..];
    first_word(rest)
}

/// `HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/` ->
/// `2.6.12-1+deb12u4`.
fn parse_haproxy_version(said: &str) -> Option<String> {
    let rest = &said[said.find("HAProxy version ")? + "HAProxy version ".len()..];
    first_word(rest)
}

fn first_word(text: &str) -> Option<String> {
    let word = text.split_whitespace().next()?;
    word.starts_with(|c: char| c.is_ascii_digit())
        .then(|| word.to_owned())
}

/// A running proxy: its master is our child.
#[derive(Debug)]
pub struct ProxyProcess {
    kind: ProxyKind,
    /// `None` once stopped.
    child: Option<Child>,
    pid: u32,
    rendered: Rendered,
    stderr_path: PathBuf,
}

/// How long a stop waits for the proxy to go before it kills what is left.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// Lines of the proxy's own output an error quotes.
const TAIL_LINES: usize = 3;

impl ProxyProcess {
    /// Tests the configuration (`nginx -t -c FILE -e ERRLOG`, `haproxy -c -f FILE`),
    /// then starts the proxy in the foreground as a child (`nginx -c FILE -e ERRLOG -g
    /// "daemon off;"`; `haproxy -W -f FILE -p PIDFILE`), behind `wrapper` (a command
    /// prefix such as `ip netns exec NS`, or empty), its stdout and stderr to
    /// `stderr_path`. Waits up to `within` until its pid file names the child and, when
    /// there is no wrapper, a TCP connect to `listen` succeeds (inside a wrapper's
    /// network namespace the address cannot be reached from here).
    pub fn start(
        kind: ProxyKind,
        binary: &Path,
        rendered: &Rendered,
        wrapper: &[String],
        listen: SocketAddr,
        stderr_path: &Path,
        within: Duration,
    ) -> Result<Self, ProxyError> {
        test_config(kind, binary, rendered, wrapper)?;
        // A pid file left by an earlier run would read as this one's.
        let _ = std::fs::remove_file(&rendered.pid_file);
        let stderr = File::create(stderr_path).map_err(|source| ProxyError::File {
            action: "create",
            path: stderr_path.to_owned(),
            source,
        })?;
        let child = wrapped(binary, wrapper)
            .args(run_args(kind, rendered))
            .stdin(Stdio::null())
            .stdout(stderr.try_clone()?)
            .stderr(stderr)
            .spawn()
            .map_err(|source| ProxyError::Spawn {
                binary: binary.to_owned(),
                source,
            })?;
        let mut process = Self {
            kind,
            pid: child.id(),
            child: Some(child),
            rendered: rendered.clone(),
            stderr_path: stderr_path.to_owned(),
        };
        // On an error `process` is dropped, which stops whatever did start.
        process.wait_ready(wrapper.is_empty().then_some(listen), within)?;
        Ok(process)
    }

    /// The master's pid (our child's, checked against the pid file at start).
    pub fn master_pid(&self) -> u32 {
        self.pid
    }

    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// Asks the proxy to reload and returns at once: SIGHUP to nginx's master (what
    /// `nginx -s reload` sends), SIGUSR2 to HAProxy's master-worker master. New workers
    /// start; old ones finish their connections (nginx, until
    /// `worker_shutdown_timeout`; HAProxy, until `hard-stop-after`).
    pub fn reload(&self) -> Result<(), ProxyError> {
        let (signal, name) = match self.kind {
            ProxyKind::Nginx => (Signal::HUP, "SIGHUP"),
            ProxyKind::Haproxy => (Signal::USR2, "SIGUSR2"),
        };
        self.signal(signal, name)
    }

    /// Fast stop: SIGTERM to the master, up to 10 s for it and its workers to go, then
    /// SIGKILL to the master and every process of the proxy still there.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn signal(&self, signal: Signal, name: &'static str) -> Result<(), ProxyError> {
        let error = |source| ProxyError::Signal {
            program: self.kind.program(),
            pid: self.pid,
            signal: name,
            source,
        };
        let pid = rustix::process::Pid::from_raw(self.pid as i32)
            .ok_or_else(|| error(rustix::io::Errno::SRCH))?;
        rustix::process::kill_process(pid, signal).map_err(error)
    }

    /// Waits until the pid file names our child and `listen` (if given) accepts.
    fn wait_ready(
        &mut self,
        listen: Option<SocketAddr>,
        within: Duration,
    ) -> Result<(), ProxyError> {
        let deadline = Instant::now() + within;
        let program = self.kind.program();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                return Err(ProxyError::Exited {
                    program,
                    status: status.to_string(),
                    tail: self.tail(),
                });
            }
            let written = read_pid(&self.rendered.pid_file);
            if let Some(written) = written.filter(|written| *written != self.pid) {
                return Err(ProxyError::PidMismatch {
                    program,
                    pid_file: self.rendered.pid_file.clone(),
                    written,
                    master: self.pid,
                });
            }
            if written.is_some() && listen.is_none_or(accepts) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ProxyError::NotListening {
                    program,
                    listen: listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                    within,
                    tail: self.tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of the proxy's stderr, or of its error log when it printed
    /// nothing (nginx prints its start-up errors in both).
    fn tail(&self) -> String {
        let lines = [&self.stderr_path, &self.rendered.error_log]
            .iter()
            .map(|path| last_lines(path, TAIL_LINES))
            .find(|lines| !lines.is_empty());
        match lines {
            Some(lines) => lines.join(" | "),
            None => "it printed nothing".to_owned(),
        }
    }

    /// Stops the proxy (see [`ProxyProcess::stop`]); does nothing once stopped.
    fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let mut members = memory::processes_of(self.pid);
        let _ = self.signal(Signal::TERM, "SIGTERM");
        let deadline = Instant::now() + STOP_WITHIN;
        let mut master_gone = false;
        while Instant::now() < deadline {
            master_gone = master_gone || !matches!(child.try_wait(), Ok(None));
            if master_gone && !members.iter().any(memory::is_alive) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !master_gone {
            members.extend(memory::processes_of(self.pid));
            let _ = child.kill();
            let _ = child.wait();
        }
        kill_all(&members);
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// SIGKILL to every process of `members` still running (the same pid and start).
fn kill_all(members: &[ProxyProcessInfo]) {
    for member in members.iter().filter(|member| memory::is_alive(member)) {
        if let Some(pid) = rustix::process::Pid::from_raw(member.pid as i32) {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
    }
}

/// `binary` behind `wrapper` (a command prefix), or alone.
fn wrapped(binary: &Path, wrapper: &[String]) -> Command {
    match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(binary);
            command
        }
        None => Command::new(binary),
    }
}

/// The arguments that test the configuration.
fn test_args(kind: ProxyKind, rendered: &Rendered) -> Vec<std::ffi::OsString> {
    match kind {
        ProxyKind::Nginx => os_args(&["-t", "-c"], &rendered.config, Some(&rendered.error_log)),
        ProxyKind::Haproxy => os_args(&["-c", "-f"], &rendered.config, None),
    }
}

/// The arguments that run the proxy in the foreground.
fn run_args(kind: ProxyKind, rendered: &Rendered) -> Vec<std::ffi::OsString> {
    match kind {
        ProxyKind::Nginx => {
            let mut args = os_args(&["-c"], &rendered.config, Some(&rendered.error_log));
            args.extend(["-g".into(), "daemon off;".into()]);
            args
        }
        // The pid file on the command line, not in the file: given twice, HAProxy
        // alerts (and the command line wins), so a user's file may name one or not.
        ProxyKind::Haproxy => {
            let mut args = os_args(&["-W", "-f"], &rendered.config, None);
            args.extend(["-p".into(), rendered.pid_file.clone().into()]);
            args
        }
    }
}

/// `flags` then `config`, then `-e error_log` when given (nginx's log before it has
/// read its file).
fn os_args(flags: &[&str], config: &Path, error_log: Option<&Path>) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = flags.iter().map(Into::into).collect();
    args.push(config.into());
    if let Some(error_log) = error_log {
        args.extend(["-e".into(), error_log.into()]);
    }
    args
}

/// Runs the proxy's own check of its configuration.
fn test_config(
    kind: ProxyKind,
    binary: &Path,
    rendered: &Rendered,
    wrapper: &[String],
) -> Result<(), ProxyError> {
    let output = output_of(
        wrapped(binary, wrapper).args(test_args(kind, rendered)),
        binary,
    )?;
    if output.status.success() {
        return Ok(());
    }
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    Err(ProxyError::ConfigRejected {
        program: kind.program(),
        config: rendered.config.clone(),
        reason: lines[lines.len().saturating_sub(TAIL_LINES)..].join(" | "),
    })
}

/// The pid a pid file holds, once it is fully written.
fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether a TCP connection to `listen` is accepted (an unspecified address is reached
/// on loopback).
fn accepts(listen: SocketAddr) -> bool {
    let mut target = listen;
    if target.ip().is_unspecified() {
        target.set_ip(match target {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        });
    }
    TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok()
}

/// The last `count` non-empty lines of a file (none when it cannot be read).
fn last_lines(path: &Path, count: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    lines[lines.len().saturating_sub(count)..]
        .iter()
        .map(|line| (*line).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_each_proxy_prints_them() {
        assert_eq!(
            parse_nginx_version("nginx version: nginx/1.22.1\n").as_deref(),
            Some("1.22.1")
        );
        let haproxy = "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/\n\
                       Status: long-term supported branch\n";
        assert_eq!(
            parse_haproxy_version(haproxy).as_deref(),
            Some("2.6.12-1+deb12u4")
        );
        assert_eq!(parse_nginx_version("nginx version: nginx/\n"), None);
        assert_eq!(parse_haproxy_version("Usage: haproxy"), None);
        let version = |text: &str, expected| ProxyVersion {
            text: text.to_owned(),
            expected,
        };
        assert!(version("1.22.1", "1.22").as_expected());
        assert!(version("2.6.12-1+deb12u4", "2.6").as_expected());
        assert!(!version("1.2.2", "1.22").as_expected());
        assert!(!version("2.8.3", "2.6").as_expected());
        assert!(!version("1.220.1", "1.22").as_expected());
    }

    #[test]
    fn a_missing_binary_says_how_to_install_it() {
        let config: ProxyConfig =
            toml::from_str("kind = \"haproxy\"\nbinary = \"/nonexistent/haproxy\"\n").unwrap();
        let err = find_binary(&config).unwrap_err().to_string();
        assert!(err.contains("apt-get install haproxy"), "{err}");
        assert!(err.contains("/nonexistent/haproxy"), "{err}");
    }

    #[test]
    fn the_wrapper_comes_first_and_nginx_stays_in_the_foreground() {
        let rendered = Rendered {
            config: "/d/nginx.conf".into(),
            pid_file: "/d/proxy.pid".into(),
            error_log: "/d/error.log".into(),
        };
        let command = wrapped(
            Path::new("/usr/sbin/nginx"),
            &["ip".into(), "netns".into(), "exec".into(), "ns".into()],
        );
        assert_eq!(command.get_program(), "ip");
        let args: Vec<_> = command.get_args().collect();
        assert_eq!(args, ["netns", "exec", "ns", "/usr/sbin/nginx"]);
        let run = run_args(ProxyKind::Nginx, &rendered);
        assert_eq!(
            run,
            [
                "-c",
                "/d/nginx.conf",
                "-e",
                "/d/error.log",
                "-g",
                "daemon off;"
            ]
        );
        let run = run_args(ProxyKind::Haproxy, &rendered);
        assert_eq!(run, ["-W", "-f", "/d/nginx.conf", "-p", "/d/proxy.pid"]);
        assert_eq!(
            test_args(ProxyKind::Haproxy, &rendered),
            ["-c", "-f", "/d/nginx.conf"]
        );
    }
}
