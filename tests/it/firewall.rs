//! `pingfleet firewall` as a process between a client and a server of the test's own,
//! on real sockets: what each idle action does to both ends, eviction from a full flow
//! table, the stream-level link (a delay and a rate on the relays), and the report it
//! ends with.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use pingfleet::firewall::launch::{FirewallReady, FirewallReport};

/// A running middlebox and its stdout (the report comes last).
struct Firewall {
    child: Child,
    stdout: BufReader<ChildStdout>,
    listen: SocketAddr,
}

impl Firewall {
    fn start(upstream: SocketAddr, flags: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
            .args(["firewall", "--listen", "127.0.0.1:0"])
            .args(["--upstream", &upstream.to_string()])
            .args(flags)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let ready: FirewallReady = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{line}"));
        Self {
            child,
            stdout,
            listen: ready.listen[0],
        }
    }

    /// Stops it (SIGTERM) and reads its report.
    fn stop(mut self) -> FirewallReport {
        Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(self.child.wait().unwrap().success());
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("{line}"))
    }
}

/// A client through the middlebox and the server end of its flow.
fn flow(firewall: &Firewall, upstream: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(firewall.listen).unwrap();
    let (server, _) = upstream.accept().unwrap();
    for stream in [&client, &server] {
        stream
            .set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
    }
    (client, server)
}

/// Sends `byte` from `from` and says whether `to` got it.
fn passes(from: &mut TcpStream, to: &mut TcpStream, byte: u8) -> bool {
    from.write_all(&[byte]).unwrap();
    let mut got = [0u8; 1];
    match to.read(&mut got) {
        Ok(1) => {
            assert_eq!(got[0], byte);
            true
        }
        Ok(_) => panic!("closed"),
        Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(err) => panic!("{err}"),
    }
}

fn upstream() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

const IDLE: &str = "300ms";
/// Longer than IDLE: the flow has expired after it.
const AFTER_IDLE: Duration = Duration::from_millis(800);

#[test]
fn rst_resets_both_ends_of_an_idle_flow() {
    let (listener, addr) = upstream();
    let firewall = Firewall::start(addr, &["--idle-timeout", IDLE, "--action", "rst"]);
    let (mut client, mut server) = flow(&firewall, &listener);
    assert!(passes(&mut client, &mut server, b'a'));
    assert!(passes(&mut server, &mut client, b'b'));
    std::thread::sleep(AFTER_IDLE);
    for end in [&mut client, &mut server] {
        let error = end.read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConnectionReset, "{error}");
    }
    let report = firewall.stop();
    assert_eq!((report.flows_opened, report.idle_expired), (1, 1));
    assert_eq!((report.bytes_to_server, report.bytes_to_device), (1, 1));
    assert_eq!(report.forwarding.count, 2);
}

#[test]
fn a_stream_link_delays_each_chunk_and_paces_it_at_the_rate() {
    let (listener, addr) = upstream();
    let delay = Duration::from_millis(100);
    let flags = ["--idle-timeout", "1h", "--link-delay", "100ms"];
    let firewall = Firewall::start(addr, &[&flags[..], &["--link-down", "1000000"]].concat());
    let (mut client, mut server) = flow(&firewall, &listener);
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Up has no rate: a byte arrives no earlier than the delay.
    let sent = std::time::Instant::now();
    client.write_all(b"a").unwrap();
    server.read_exact(&mut [0u8; 1]).unwrap();
    let up = sent.elapsed();
    assert!(up >= delay && up < delay * 3, "{up:?}");
    // 200 KB down at 1 Mbit/s: 1.6 s on the link, then the delay; the close behind it.
    let body = vec![7u8; 200_000];
    let sent = std::time::Instant::now();
    server.write_all(&body).unwrap();
    server.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    let down = sent.elapsed();
    assert_eq!(got, body);
    let paced = Duration::from_millis(1600) + delay;
    assert!(
        down >= paced && down < paced + Duration::from_millis(700),
        "{down:?}"
    );
    drop((client, server));
    let report = firewall.stop();
    assert_eq!(report.bytes_to_device, 200_000);
    let link = report.link.expect("the link is in the report");
    assert_eq!((link.link_down, link.link_up), (Some(1e6), None));
    assert_eq!(report.idle_expired, 0);
}

#[test]
fn silent_forwards_nothing_and_closes_nothing() {
    let (listener, addr) = upstream();
    let firewall = Firewall::start(addr, &["--idle-timeout", IDLE, "--action", "silent"]);
    let (mut client, mut server) = flow(&firewall, &listener);
    assert!(passes(&mut client, &mut server, b'a'));
    std::thread::sleep(AFTER_IDLE);
    // Both writes succeed, neither arrives, and neither end learns anything: no reset,
    // no close (a read times out).
    assert!(!passes(&mut client, &mut server, b'b'));
    assert!(!passes(&mut server, &mut client, b'c'));
    // The device gives up and reconnects: a new flow forwards again.
    drop(client);
    let (mut client, mut fresh) = flow(&firewall, &listener);
    assert!(passes(&mut client, &mut fresh, b'd'));
    let report = firewall.stop();
    assert_eq!(report.flows_opened, 2);
    assert_eq!(report.idle_expired, 1);
    assert_eq!(report.bytes_dropped, 2);
    assert_eq!(report.bytes_to_server, 2);
}

#[test]
fn half_keeps_the_device_to_server_direction_only() {
    let (listener, addr) = upstream();
    let firewall = Firewall::start(addr, &["--idle-timeout", IDLE, "--action", "half"]);
    let (mut client, mut server) = flow(&firewall, &listener);
    std::thread::sleep(AFTER_IDLE);
    assert!(passes(&mut client, &mut server, b'a'));
    assert!(!passes(&mut server, &mut client, b'b'));
    let report = firewall.stop();
    assert_eq!((report.idle_expired, report.bytes_dropped), (1, 1));
}

#[test]
fn a_full_flow_table_evicts_the_least_recently_active_flow() {
    let (listener, addr) = upstream();
    let firewall = Firewall::start(
        addr,
        &[
            "--idle-timeout",
            "1h",
            "--action",
            "rst",
            "--flow-table",
            "2",
        ],
    );
    let (mut a_client, mut a_server) = flow(&firewall, &listener);
    let (mut b_client, mut b_server) = flow(&firewall, &listener);
    // b is older than a now: a was active last.
    assert!(passes(&mut b_client, &mut b_server, b'b'));
    std::thread::sleep(Duration::from_millis(50));
    assert!(passes(&mut a_client, &mut a_server, b'a'));
    let (mut c_client, mut c_server) = flow(&firewall, &listener);
    assert!(passes(&mut c_client, &mut c_server, b'c'));
    let error = b_client.read(&mut [0u8; 1]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionReset);
    assert!(passes(&mut a_client, &mut a_server, b'a'));
    let report = firewall.stop();
    assert_eq!((report.evicted, report.idle_expired), (1, 0));
    assert_eq!(report.peak_flows, 2);
}

#[test]
fn bad_flags_are_refused_in_one_line() {
    for (flags, why) in [
        (
            vec!["--idle-timeout", "0s"],
            "--idle-timeout: firewall.idle_timeout must be longer than 0s",
        ),
        (
            vec!["--idle-timeout", "1s", "--jitter", "150%"],
            "--jitter: firewall.jitter is a share from 0% to below 100% (got 150%)",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
            .args([
                "firewall",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "127.0.0.1:9",
            ])
            .args(&flags)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(why), "{stderr}");
    }
}

/// A worker of 3 devices through `firewall` to `server`, heartbeat `heartbeat`.
fn devices_through(
    firewall: &Firewall,
    server: &crate::eas_client::Server,
    heartbeat: &str,
) -> pingfleet::fleet::report::WorkerReport {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    let args: Vec<String> = [
        "--target",
        &format!("http://{}", firewall.listen),
        "--notify",
        &server.notify.to_string(),
        "--devices",
        "3",
        "--heartbeat",
        heartbeat,
        "--duration",
        "10s",
        "--rate",
        "2",
        "--drain",
        "15s",
        // Pings that die behind the firewall are errors on purpose; mail must not be
        // lost.
        "--threshold",
        "lost_notifications:count==0",
    ]
    .map(str::to_owned)
    .to_vec();
    crate::fleet::run_devices(&args, &output).1
}

#[test]
fn a_heartbeat_past_the_idle_timeout_makes_mail_late_and_one_within_it_does_not() {
    let server = crate::eas_client::Server::start("lean", &["--min-heartbeat", "1"]);
    let upstream = server.http;

    // Heartbeat 2 s behind a 1 s black hole: every parked Ping dies, found out only at
    // the device's deadline (heartbeat + 5 s), and the mail waiting comes late.
    let firewall = Firewall::start(upstream, &["--idle-timeout", "1s", "--action", "silent"]);
    let behind = devices_through(&firewall, &server, "2");
    let proxy = firewall.stop();
    let counters = &behind.counters;
    assert!(counters.pings_died["deadline"] >= 3, "{counters:?}");
    assert!(!counters.pings_died.contains_key("reset"));
    assert!(counters.notifications_late > 0, "{counters:?}");
    assert_eq!(counters.notifications_lost, 0);
    assert_eq!(
        counters.notifications_on_time + counters.notifications_late + counters.notifications_lost,
        counters.notifications_sent,
        "the accounting closes"
    );
    // Each device was unreachable at least its deadline less the flow's last activity.
    let unreachable = &behind.histograms["unreachable_us"].summary;
    assert!(unreachable.p50_us >= 7_000_000, "{unreachable:?}");
    assert!(proxy.idle_expired >= 3);

    // Heartbeat 1 s within a 3 s timeout: nothing dies, nothing is late.
    let firewall = Firewall::start(upstream, &["--idle-timeout", "3s", "--action", "silent"]);
    let within = devices_through(&firewall, &server, "1");
    let proxy = firewall.stop();
    let counters = &within.counters;
    assert!(counters.pings_died.is_empty(), "{counters:?}");
    assert_eq!(counters.notifications_late, 0);
    assert_eq!(counters.notifications_on_time, counters.notifications_sent);
    assert_eq!(proxy.idle_expired, 0);
    assert!(proxy.forwarding.count > 0);
}

#[test]
fn a_run_with_a_firewall_reports_what_the_path_did() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, result) = crate::run::run_scenario(
        dir.path(),
        r#"name = "nat"
output = "out"
[server]
partitions = 2
min_heartbeat = "1s"
[devices]
count = 20
heartbeat = "2s"
[stages]
hold = "10s"
drain = "15s"
[injector]
pattern = "fixed"
rate = 4
[firewall]
mode = "proxy"
idle_timeout = "1s"
action = "silent"
"#,
    );
    assert_eq!(code, Some(0), "{stdout}");
    let network = result.network.expect("a network section");
    let firewall = network.firewall.clone().expect("the firewall's figures");
    assert_eq!(firewall.processes, 2, "one middlebox per partition");
    assert!(firewall.idle_expired >= 20, "{firewall:?}");
    assert!(network.late > 0 && network.lost == 0, "{network:?}");
    assert!(network.accounting_closes);
    assert!(network.pings_died_by_deadline >= 20);
    let staleness = network.staleness.unwrap();
    // Drop (1 s after the Ping) to the next working Ping (deadline 7 s after it, plus
    // the backoff): about 6 s.
    assert!(
        (5_000_000..10_000_000).contains(&staleness.p50_us),
        "{staleness:?}"
    );
    assert!(stdout.contains("mail: sent"), "{stdout}");
    assert!(
        stdout.contains("firewall (the userspace middlebox: a flow idle for 1 s is black-holed"),
        "{stdout}"
    );
}

#[test]
fn sigusr1_flushes_every_flow_at_once() {
    let (listener, addr) = upstream();
    let firewall = Firewall::start(addr, &["--idle-timeout", "1h", "--action", "rst"]);
    let mut flows: Vec<(TcpStream, TcpStream)> =
        (0..3).map(|_| flow(&firewall, &listener)).collect();
    for (client, server) in &mut flows {
        assert!(passes(client, server, b'x'));
    }
    Command::new("kill")
        .args(["-USR1", &firewall.child.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for (client, _) in &mut flows {
        let error = client.read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConnectionReset);
    }
    // New flows forward again.
    let (mut client, mut server) = flow(&firewall, &listener);
    assert!(passes(&mut client, &mut server, b'y'));
    let report = firewall.stop();
    assert_eq!((report.flushed, report.idle_expired), (3, 0));
}

#[test]
fn a_flush_in_the_hold_is_a_reconnect_storm_every_device_comes_back_from() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, result) = crate::run::run_scenario(
        dir.path(),
        r#"name = "flush"
output = "out"
[server]
min_heartbeat = "1s"
tls = true
[devices]
count = 100
heartbeat = "3s"
[[devices.profiles]]
name = "resumes"
[[devices.profiles]]
name = "full-handshakes"
tls_resumption = false
[stages]
hold = "8s"
drain = "15s"
[injector]
pattern = "fixed"
rate = 10
[firewall]
mode = "proxy"
idle_timeout = "1h"
action = "rst"
flush_at = "3s"
"#,
    );
    assert_eq!(code, Some(0), "{stdout}");
    let network = result.network.unwrap();
    let flush = network.flush.clone().expect("a flush");
    assert!(flush.at_s.is_some());
    assert_eq!((flush.parked, flush.reparked), (100, 100), "{flush:?}");
    // A reset is seen at once: every device pinged again within seconds, none waited
    // for its deadline.
    assert!(flush.repark.max_us < 3_000_000, "{flush:?}");
    assert_eq!(network.pings_died_by_reset, 100);
    assert_eq!(network.firewall.unwrap().idle_expired, 0);
    assert_eq!(network.lost, 0);
    assert!(
        stdout.contains("100 of 100 parked devices pinged again"),
        "{stdout}"
    );
    // Devices that keep tickets resumed their sessions, the others made full
    // handshakes: each device's one reconnect is counted as one or the other.
    let devices_of = |name: &str| {
        let profiles = &result.fleet.profiles;
        profiles.iter().find(|p| p.name == name).unwrap().devices as u64
    };
    let (resuming, full) = (devices_of("resumes"), devices_of("full-handshakes"));
    assert!(resuming > 20 && full > 20, "{resuming} {full}");
    let storm = flush.storm;
    assert_eq!(
        (storm.resumed_handshakes, storm.full_handshakes),
        (resuming, full),
        "{storm:?}"
    );
    assert_eq!(storm.connects, 100, "{storm:?}");
    assert!(storm.peak_connects_per_s > 0 && storm.peak_reparks_per_s > 0);
    let counters = &result.fleet.counters;
    assert_eq!(counters.tls_resumed, resuming, "{counters:?}");
    assert_eq!(counters.tls_handshakes, 100 + 100, "{counters:?}");
}
