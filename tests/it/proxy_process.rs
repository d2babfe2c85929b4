//! Real reverse proxies (Debian's nginx 1.22 and HAProxy 2.6, as `.ci/run` installs
//! them) configured, started, timed out, reloaded and stopped by `pingfleet::proxy`,
//! before a tiny upstream that answers late or never. Each test is bounded to a few
//! seconds and stops its proxy, checking that no process of it is left.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pingfleet::proxy::config::{ProxyConfig, ProxyKind};
use pingfleet::proxy::memory::{self, Generations};
use pingfleet::proxy::process::{self, ProxyError, ProxyProcess};
use pingfleet::proxy::render::{self, RenderInputs, Rendered};

/// Longest a client waits for anything.
const CLIENT_WAIT: Duration = Duration::from_secs(10);

/// A server partition stand-in: answers each HTTP request at once, or never (it then
/// holds the connection until the proxy closes it).
struct Upstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Reply {
    AtOnce,
    Never,
}

impl Upstream {
    fn start(reply: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    std::thread::spawn(move || serve(stream, reply));
                }
            }
        });
        Self {
            addr,
            stop,
            accept: Some(accept),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Serves one connection until its peer closes it.
fn serve(mut stream: TcpStream, reply: Reply) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buffer = [0u8; 4096];
    let mut head = Vec::new();
    while let Ok(n @ 1..) = stream.read(&mut buffer) {
        head.extend_from_slice(&buffer[..n]);
        if reply == Reply::AtOnce && head.windows(4).any(|window| window == b"\r\n\r\n") {
            head.clear();
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if stream.write_all(answer).is_err() {
                return;
            }
        }
    }
}

/// A port free at the time of asking.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A started proxy with its directory (configuration, certificate, logs).
struct Proxy {
    dir: tempfile::TempDir,
    listen: SocketAddr,
    process: Option<ProxyProcess>,
}

impl Proxy {
    /// Renders `[proxy]` (`toml`) before `upstream` and starts the installed proxy.
    fn start(toml: &str, upstream: SocketAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config: ProxyConfig = toml::from_str(toml).unwrap();
        config.check().unwrap();
        let listen = free_addr();
        let rendered = render_for(&config, dir.path(), listen, upstream).unwrap();
        let process = ProxyProcess::start(
            config.kind(),
            &installed(config.kind()),
            &rendered,
            &[],
            listen,
            &dir.path().join("stderr.log"),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|err| panic!("{err}"));
        Self {
            dir,
            listen,
            process: Some(process),
        }
    }

    fn process(&self) -> &ProxyProcess {
        self.process.as_ref().unwrap()
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Stops the proxy and checks that none of its processes is left.
    fn stop(mut self) {
        let process = self.process.take().unwrap();
        let members = memory::processes_of(process.master_pid());
        assert!(members.len() >= 2, "a master and a worker: {members:?}");
        process.stop();
        let left: Vec<_> = members
            .iter()
            .filter(|member| memory::is_alive(member))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

/// The installed binary (asserted there, as the CI image installs it).
fn installed(kind: ProxyKind) -> PathBuf {
    let config: ProxyConfig = toml::from_str(&format!("kind = \"{kind}\"\n")).unwrap();
    process::find_binary(&config).unwrap_or_else(|err| panic!("{err} (.ci/run installs it)"))
}

/// A self-signed certificate for 127.0.0.1 and its key in `dir`, then the proxy's file.
fn render_for(
    config: &ProxyConfig,
    dir: &Path,
    listen: SocketAddr,
    upstream: SocketAddr,
) -> Result<Rendered, ProxyError> {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    render::write_config(
        config,
        &RenderInputs {
            listen,
            upstream,
            dir,
            cert: Some(&cert),
            key: Some(&key),
            devices: 4,
        },
    )
}

/// What a client saw of its request.
#[derive(Debug, PartialEq)]
enum Seen {
    /// A response's status line.
    Response(String),
    /// TLS close_notify, then the end of the stream, and no response.
    CloseNotify,
    /// The connection ended (FIN) with no response (nor close_notify, under TLS).
    Fin,
    /// The connection was reset.
    Reset,
    /// Nothing within the wait.
    Nothing,
}

/// Reads until a response head, the end of the connection or an error.
fn read_outcome(stream: &mut impl Read, tls: bool) -> Seen {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) if !seen.is_empty() => break,
            Ok(0) if tls => return Seen::CloseNotify,
            Ok(0) => return Seen::Fin,
            Ok(n) => {
                seen.extend_from_slice(&buffer[..n]);
                if seen.windows(4).any(|window| window == b"\r\n\r\n") {
                    break;
                }
            }
            Err(err) if err.kind() == ErrorKind::ConnectionReset => return Seen::Reset,
            Err(err) if err.kind() == ErrorKind::UnexpectedEof => return Seen::Fin,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Seen::Nothing
            }
            Err(err) => panic!("reading the response: {err}"),
        }
    }
    let text = String::from_utf8_lossy(&seen);
    Seen::Response(text.lines().next().unwrap_or_default().to_owned())
}

const PING: &[u8] = b"POST /Microsoft-Server-ActiveSync?Cmd=Ping HTTP/1.1\r\n\
                      Host: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";

/// A TLS client trusting the proxy's certificate that has sent a Ping.
fn tls_ping(proxy: &Proxy) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let config =
        pingfleet::tls::client_config_trusting(&proxy.cert(), pingfleet::tls::KeyExchange::Hybrid)
            .unwrap();
    let name = rustls_pki_types::ServerName::IpAddress(proxy.listen.ip().into());
    let connection = rustls::ClientConnection::new(config, name).unwrap();
    let tcp = TcpStream::connect(proxy.listen).unwrap();
    tcp.set_read_timeout(Some(CLIENT_WAIT)).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    stream.write_all(PING).unwrap();
    stream.flush().unwrap();
    stream
}

/// A plain TCP client (TLS passed through: the proxy does not look at the bytes).
fn plain_ping(proxy: &Proxy) -> TcpStream {
    let mut tcp = TcpStream::connect(proxy.listen).unwrap();
    tcp.set_read_timeout(Some(CLIENT_WAIT)).unwrap();
    tcp.write_all(PING).unwrap();
    tcp
}

/// Sends a Ping over TLS that the server never answers: what the client sees, and when.
fn parked_ping_outcome(toml: &str) -> (Seen, Duration) {
    let upstream = Upstream::start(Reply::Never);
    let proxy = Proxy::start(toml, upstream.addr);
    let started = Instant::now();
    let mut stream = tls_ping(&proxy);
    let seen = read_outcome(&mut stream, true);
    let elapsed = started.elapsed();
    proxy.stop();
    (seen, elapsed)
}

#[test]
fn both_proxies_terminate_tls_and_pass_the_answer_through() {
    let upstream = Upstream::start(Reply::AtOnce);
    for kind in ["nginx", "haproxy"] {
        let proxy = Proxy::start(&format!("kind = \"{kind}\"\n"), upstream.addr);
        let seen = read_outcome(&mut tls_ping(&proxy), true);
        assert_eq!(seen, Seen::Response("HTTP/1.1 200 OK".to_owned()), "{kind}");
        proxy.stop();
    }
}

#[test]
fn nginx_answers_504_at_proxy_read_timeout() {
    let (seen, elapsed) = parked_ping_outcome("kind = \"nginx\"\nproxy_read_timeout = \"1s\"\n");
    assert_eq!(
        seen,
        Seen::Response("HTTP/1.1 504 Gateway Time-out".to_owned())
    );
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
}

#[test]
fn haproxy_answers_504_at_timeout_server() {
    let toml = "kind = \"haproxy\"\ntimeout_server = \"1s\"\ntimeout_client = \"10s\"\n";
    let (seen, elapsed) = parked_ping_outcome(toml);
    assert_eq!(
        seen,
        Seen::Response("HTTP/1.1 504 Gateway Time-out".to_owned())
    );
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
}

#[test]
fn haproxy_timeout_client_does_not_cut_a_request_the_server_holds() {
    let toml = "kind = \"haproxy\"\ntimeout_server = \"3s\"\ntimeout_client = \"1s\"\n";
    let (seen, elapsed) = parked_ping_outcome(toml);
    println!("haproxy http, timeout client 1s, server 3s: {seen:?} after {elapsed:?}");
    // The server's timeout ends it, with a 504: the client's does not run meanwhile.
    assert_eq!(
        seen,
        Seen::Response("HTTP/1.1 504 Gateway Time-out".to_owned())
    );
    assert!(
        elapsed >= Duration::from_millis(2900) && elapsed < Duration::from_secs(6),
        "{elapsed:?}"
    );
}

#[test]
fn haproxy_tcp_mode_closes_at_the_shorter_of_client_and_server() {
    let upstream = Upstream::start(Reply::Never);
    let toml = "kind = \"haproxy\"\ntls = \"passthrough\"\ntimeout_client = \"1s\"\ntimeout_server = \"3s\"\n";
    let proxy = Proxy::start(toml, upstream.addr);
    let started = Instant::now();
    let seen = read_outcome(&mut plain_ping(&proxy), false);
    let elapsed = started.elapsed();
    println!("haproxy tcp, timeout client 1s, server 3s: {seen:?} after {elapsed:?}");
    proxy.stop();
    assert_eq!(seen, Seen::Fin);
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[test]
fn passthrough_proxies_close_an_idle_connection_at_their_timeout() {
    let upstream = Upstream::start(Reply::Never);
    for toml in [
        "kind = \"nginx\"\ntls = \"passthrough\"\nproxy_timeout = \"1s\"\n",
        "kind = \"haproxy\"\ntls = \"passthrough\"\ntimeout_client = \"1s\"\ntimeout_server = \"1s\"\n",
    ] {
        let proxy = Proxy::start(toml, upstream.addr);
        let started = Instant::now();
        let seen = read_outcome(&mut plain_ping(&proxy), false);
        let elapsed = started.elapsed();
        println!("{toml:?}: {seen:?} after {elapsed:?}");
        assert_eq!(seen, Seen::Fin, "{toml}");
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
            "{toml}: {elapsed:?}"
        );
        proxy.stop();
    }
}

/// What a parked client saw after a reload, and when (from the reload).
struct ReloadSeen {
    seen: Seen,
    seen_after: Duration,
    old_gone_after: Duration,
}

/// Parks a Ping, reloads, and follows both generations: the old one stays while the
/// Ping is open, and is gone soon after the proxy's bound.
fn reload_with_a_parked_ping(toml: &str) -> ReloadSeen {
    let upstream = Upstream::start(Reply::Never);
    let proxy = Proxy::start(toml, upstream.addr);
    let mut stream = tls_ping(&proxy);
    let mut generations = Generations::new(proxy.process().master_pid());
    let before = generations.observe();
    assert_eq!(before.generations[0].processes, 1, "{before:?}");
    // Let the Ping reach the upstream before the reload.
    std::thread::sleep(Duration::from_millis(300));
    let client = std::thread::spawn(move || {
        let seen = read_outcome(&mut stream, true);
        (seen, Instant::now())
    });
    proxy.process().reload().unwrap();
    let reloaded = Instant::now();
    generations.mark_reload();
    let both = poll(Duration::from_secs(3), || {
        let sample = generations.observe();
        (sample.generations[1].processes >= 1).then_some(sample)
    })
    .expect("a new generation of workers within 3 s");
    assert_eq!(both.generations[0].processes, 1, "{both:?}");
    assert!(both
        .generations
        .iter()
        .all(|generation| generation.pss_bytes > 0));
    assert!(both.master.pss_bytes > 0);
    std::thread::sleep(Duration::from_millis(500).saturating_sub(reloaded.elapsed()));
    assert_eq!(
        generations.observe().generations[0].processes,
        1,
        "the old worker holds the Ping"
    );
    let old_gone_after = poll(Duration::from_secs(4), || {
        (generations.observe().generations[0].processes == 0).then(|| reloaded.elapsed())
    })
    .expect("the old generation gone within 4 s of the reload");
    let (seen, at) = client.join().unwrap();
    assert!(generations.observe().generations[1].processes >= 1);
    proxy.stop();
    ReloadSeen {
        seen,
        seen_after: at.saturating_duration_since(reloaded),
        old_gone_after,
    }
}

/// Calls `probe` every 20 ms until it gives a value or `within` passes.
fn poll<T>(within: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn nginx_old_workers_stay_until_worker_shutdown_timeout_then_close_without_a_word() {
    let reload = reload_with_a_parked_ping("kind = \"nginx\"\nworker_shutdown_timeout = \"1s\"\n");
    let (seen, at) = (reload.seen, reload.seen_after);
    println!(
        "nginx: the parked client saw {seen:?} {at:?} after the reload; old workers gone {:?}",
        reload.old_gone_after
    );
    // A FIN with neither a response nor TLS close_notify.
    assert_eq!(seen, Seen::Fin);
    assert!(at >= Duration::from_millis(900), "{at:?}");
    assert!(reload.old_gone_after >= Duration::from_millis(900));
}

#[test]
fn haproxy_old_workers_stay_until_hard_stop_after_then_answer_502() {
    let reload = reload_with_a_parked_ping("kind = \"haproxy\"\nhard_stop_after = \"1s\"\n");
    let (seen, at) = (reload.seen, reload.seen_after);
    println!(
        "haproxy: the parked client saw {seen:?} {at:?} after the reload; old workers gone {:?}",
        reload.old_gone_after
    );
    assert_eq!(seen, Seen::Response("HTTP/1.1 502 Bad Gateway".to_owned()));
    assert!(at >= Duration::from_millis(900), "{at:?}");
    assert!(reload.old_gone_after >= Duration::from_millis(900));
}

#[test]
fn installed_versions_are_the_expected_releases() {
    for kind in [ProxyKind::Nginx, ProxyKind::Haproxy] {
        let version = process::version(kind, &installed(kind)).unwrap();
        assert!(version.as_expected(), "{kind}: {version:?}");
    }
}

#[test]
fn a_broken_file_is_refused_in_the_proxys_own_words() {
    for (kind, text, words) in [
        (
            ProxyKind::Nginx,
            "pid {pid};\nevents {\nstream { listen {listen}; proxy_pass {upstream}; }\n",
            "[emerg]",
        ),
        (
            ProxyKind::Haproxy,
            "frontend f\n    bind {listen}\n    no_such_keyword {upstream}\n",
            "[ALERT]",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("mine.conf");
        std::fs::write(&template, text).unwrap();
        let toml = format!("kind = \"{kind}\"\nconfig = \"{}\"\n", template.display());
        let config: ProxyConfig = toml::from_str(&toml).unwrap();
        let listen = free_addr();
        let rendered = render_for(&config, dir.path(), listen, free_addr()).unwrap();
        let err = ProxyProcess::start(
            kind,
            &installed(kind),
            &rendered,
            &[],
            listen,
            &dir.path().join("stderr.log"),
            Duration::from_secs(5),
        )
        .unwrap_err();
        let ProxyError::ConfigRejected { reason, .. } = &err else {
            panic!("{kind}: {err}");
        };
        assert!(reason.contains(words), "{kind}: {reason}");
        assert!(!rendered.pid_file.exists(), "{kind} did not start");
    }
}

#[test]
fn a_busy_address_is_said_in_the_proxys_words_and_nothing_is_left() {
    let upstream = Upstream::start(Reply::Never);
    for kind in [ProxyKind::Nginx, ProxyKind::Haproxy] {
        let dir = tempfile::tempdir().unwrap();
        let config: ProxyConfig = toml::from_str(&format!("kind = \"{kind}\"\n")).unwrap();
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = busy.local_addr().unwrap();
        let rendered = render_for(&config, dir.path(), listen, upstream.addr).unwrap();
        let err = ProxyProcess::start(
            kind,
            &installed(kind),
            &rendered,
            &[],
            listen,
            &dir.path().join("stderr.log"),
            Duration::from_secs(5),
        )
        .unwrap_err();
        println!("{kind}: {err}");
        assert!(
            err.to_string().contains("Address already in use"),
            "{kind}: {err}"
        );
        let left = running_with(&rendered.config);
        assert!(left.is_empty(), "{kind} left {left:?}");
    }
}

/// The processes whose command line names `path`.
fn running_with(path: &Path) -> Vec<u32> {
    let wanted = path.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.windows(wanted.len()).any(|window| window == wanted))
        })
        .collect()
}

#[test]
fn behind_a_wrapper_the_pid_file_says_the_proxy_is_up() {
    let upstream = Upstream::start(Reply::Never);
    let dir = tempfile::tempdir().unwrap();
    let config: ProxyConfig =
        toml::from_str("kind = \"nginx\"\ntls = \"passthrough\"\nproxy_timeout = \"1s\"\n")
            .unwrap();
    let listen = free_addr();
    let rendered = render_for(&config, dir.path(), listen, upstream.addr).unwrap();
    // The wrapper executes the proxy in its own place, as `ip netns exec` does.
    let trace = dir.path().join("wrapped");
    let script = format!("touch {}; exec \"$@\"", trace.display());
    let wrapper = ["sh".to_owned(), "-c".to_owned(), script, "sh".to_owned()];
    let process = ProxyProcess::start(
        ProxyKind::Nginx,
        &installed(ProxyKind::Nginx),
        &rendered,
        &wrapper,
        listen,
        &dir.path().join("stderr.log"),
        Duration::from_secs(10),
    )
    .unwrap_or_else(|err| panic!("{err}"));
    let pid = std::fs::read_to_string(&rendered.pid_file).unwrap();
    assert_eq!(pid.trim(), process.master_pid().to_string());
    assert!(trace.exists(), "the wrapper ran");
    let proxy = Proxy {
        dir,
        listen,
        process: Some(process),
    };
    let reached = poll(Duration::from_secs(3), || {
        TcpStream::connect(proxy.listen).ok()
    });
    assert!(reached.is_some(), "nginx listens once its workers are up");
    proxy.stop();
}
