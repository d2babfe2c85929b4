//! Every notification latency the tool reports, checked against a packet capture of the
//! same run (tcpdump on loopback; needs root, as CI runs): 1,000 plain devices, 100
//! notifications/s on a fixed schedule. Each datagram is matched, by its user, to the
//! first Ping response on that user's connection after it, and that to the next Sync
//! response; the plan is the worker's schedule origin plus `seq / rate`. At p50 each
//! figure is within 10% or 10 us (whichever is larger) of its wire counterpart:
//! - the injector's lag: plan -> datagram on the wire;
//! - the server's wake latency (its /metrics) and the device's wake-up from the
//!   datagram's departure: datagram on the wire -> Ping response on the wire;
//! - the device's wake-up: plan -> Ping response on the wire;
//! - mail on device: plan -> the Sync response on the wire.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pingfleet::fleet::report::WorkerReport;
use pingfleet::notification::Notification;
use pingfleet::server::launch::ServeArgs;
use pingfleet::server::process::ServerHandle;

const EXE: &str = env!("CARGO_BIN_EXE_pingfleet");
const DEVICES: &str = "1000";
const RATE_PER_S: f64 = 100.0;

#[test]
fn every_notification_latency_agrees_with_a_packet_capture() {
    let _quiet = crate::util::quiet_machine();
    let dir = tempfile::tempdir().unwrap();
    let argv: Vec<String> = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--notify",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
        "--users",
        DEVICES,
    ]
    .map(str::to_owned)
    .to_vec();
    let args: ServeArgs = pingfleet::argv::parse(&argv).unwrap();
    let mut server = ServerHandle::spawn(
        Path::new(EXE),
        &args,
        Stdio::inherit(),
        Duration::from_secs(30),
    )
    .unwrap();
    let pcap = dir.path().join("run.pcap");
    let filter = format!(
        "tcp port {} or udp port {}",
        server.http().port(),
        server.notify().port()
    );
    let (tcpdump, stderr) = start_capture(&pcap, &filter);

    let report = run_devices(dir.path(), &server);
    let stats = stop_capture(tcpdump, &stderr);
    assert!(
        stats
            .lines()
            .any(|line| line == "0 packets dropped by kernel"),
        "{stats}"
    );
    let server_wake_p50 = server
        .metric("pingfleet_wake_latency_microseconds{quantile=\"0.5\"}")
        .expect("the server's /metrics");
    server.terminate(Duration::from_secs(10));

    let counters = &report.counters;
    assert!(counters.notifications_sent >= 500, "{counters:?}");
    assert_eq!(counters.notifications_lost, 0, "{counters:?}");
    let capture = Capture::read(&std::fs::read(&pcap).unwrap(), server.http().port());
    assert_eq!(
        capture.datagrams.len() as u64,
        counters.notifications_sent,
        "every datagram the worker sent is in the capture"
    );
    let origin = humantime::parse_rfc3339(report.schedule_origin.as_deref().unwrap()).unwrap();
    let wire = capture.latencies(origin);
    assert_eq!(
        wire.wake.len(),
        capture.datagrams.len(),
        "every datagram woke a Ping"
    );
    assert_eq!(
        wire.mail.len(),
        capture.datagrams.len(),
        "every wake-up was synced"
    );

    let tool = |name: &str| report.histograms[name].summary.p50_us as f64;
    let checks = [
        ("injector lag", tool("injector_lag_us"), p50(&wire.injector)),
        ("server wake", server_wake_p50, p50(&wire.server)),
        (
            "wake-up from departure",
            tool("wakeup_from_departure_us"),
            p50(&wire.server),
        ),
        ("device wake-up", tool("wakeup_latency_us"), p50(&wire.wake)),
        (
            "mail on device",
            tool("mail_on_device_latency_us"),
            p50(&wire.mail),
        ),
    ];
    let report_lines: Vec<String> = checks
        .iter()
        .map(|(name, ours, captured)| format!("{name}: tool {ours} us, wire {captured:.1} us"))
        .collect();
    eprintln!("{}", report_lines.join("\n"));
    for (name, ours, captured) in checks {
        let allowed = (captured * 0.10).max(10.0);
        assert!(
            (ours - captured).abs() <= allowed,
            "{name}: the tool's p50 {ours} us is more than {allowed:.1} us from the capture's \
             {captured:.1} us\n{}",
            report_lines.join("\n")
        );
    }
}

/// One worker of plain devices injecting on a fixed schedule; its document.
fn run_devices(dir: &Path, server: &ServerHandle) -> WorkerReport {
    let rate = RATE_PER_S.to_string();
    let flags = [
        "--devices",
        DEVICES,
        "--heartbeat",
        "300",
        "--pattern",
        "fixed",
        "--rate",
        &rate,
        "--duration",
        "6s",
        "--drain",
        "5s",
    ];
    crate::util::devices_report(&[], server, &flags, dir)
}

/// tcpdump on loopback writing `pcap` with nanosecond stamps, once it says it listens;
/// its stderr lines from then on.
fn start_capture(pcap: &Path, filter: &str) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new("tcpdump")
        .args(["-i", "lo", "-n", "-p", "-U", "-s", "600", "-B", "65536"])
        .args(["--time-stamp-precision", "nano", "-w"])
        .arg(pcap)
        .arg(filter)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("tcpdump: {err} (CI installs it)"));
    let (lines, receiver) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let first = receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("tcpdump says something");
    assert!(
        first.contains("listening on lo"),
        "tcpdump did not start (it needs root, as CI runs): {first}"
    );
    (child, receiver)
}

/// Stops tcpdump (SIGINT, as a person would) and returns what it printed on the way out
/// (its packet counts).
fn stop_capture(mut child: Child, stderr: &mpsc::Receiver<String>) -> String {
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "tcpdump: {status}");
    let mut said = String::new();
    while let Ok(line) = stderr.recv_timeout(Duration::from_secs(2)) {
        said.push_str(&line);
        said.push('\n');
    }
    said
}

/// The middle value (the lower of the two middles), in microseconds.
fn p50(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[(sorted.len() - 1) / 2]
}

/// What the capture says about each notification, in microseconds.
#[derive(Default)]
struct WireLatencies {
    injector: Vec<f64>,
    server: Vec<f64>,
    wake: Vec<f64>,
    mail: Vec<f64>,
}

/// A datagram on the wire: when, for whom, its sequence number.
struct Datagram {
    at: SystemTime,
    user: String,
    seq: u64,
}

/// One request and the start of its response on a connection.
struct Exchange {
    command: String,
    answered_at: SystemTime,
}

/// A packet capture of a run, read into notifications and per-user HTTP exchanges.
struct Capture {
    datagrams: Vec<Datagram>,
    /// By user: each connection's exchanges in order, all connections together.
    exchanges: HashMap<String, Vec<Exchange>>,
}

impl Capture {
    /// Reads a pcap file (nanosecond stamps, Ethernet framing as tcpdump writes on
    /// loopback) of a server on `http_port` and its notification socket.
    fn read(bytes: &[u8], http_port: u16) -> Self {
        assert_eq!(
            &bytes[..4],
            &0xa1b2_3c4d_u32.to_le_bytes(),
            "a nanosecond pcap"
        );
        assert_eq!(u32_at(bytes, 20), 1, "Ethernet framing");
        let mut datagrams = Vec::new();
        // By client port: the user, and the requests not yet answered.
        let mut flows: HashMap<u16, (Option<String>, Vec<String>)> = HashMap::new();
        let mut exchanges: HashMap<String, Vec<Exchange>> = HashMap::new();
        let mut offset = 24;
        while offset + 16 <= bytes.len() {
            let at = UNIX_EPOCH
                + Duration::new(u64::from(u32_at(bytes, offset)), u32_at(bytes, offset + 4));
            let length = u32_at(bytes, offset + 8) as usize;
            let frame = &bytes[offset + 16..offset + 16 + length];
            offset += 16 + length;
            let Some(packet) = Packet::parse(frame) else {
                continue;
            };
            match packet {
                Packet::Udp(payload) => {
                    let notification = Notification::parse(payload).expect("a notification");
                    datagrams.push(Datagram {
                        at,
                        user: notification.user,
                        seq: notification.seq.expect("the injector numbers them"),
                    });
                }
                Packet::Tcp { src, dst, payload } if dst == http_port => {
                    let (user, pending) = flows.entry(src).or_default();
                    if let Some((command, request_user)) = request_line(payload) {
                        user.get_or_insert(request_user);
                        pending.push(command);
                    }
                }
                Packet::Tcp { dst, payload, .. } => {
                    let informational = payload.starts_with(b"HTTP/1.1 1");
                    if !payload.starts_with(b"HTTP/1.1 ") || informational {
                        continue;
                    }
                    let Some((Some(user), pending)) = flows.get_mut(&dst) else {
                        continue;
                    };
                    let command = pending.remove(0);
                    exchanges.entry(user.clone()).or_default().push(Exchange {
                        command,
                        answered_at: at,
                    });
                }
            }
        }
        for list in exchanges.values_mut() {
            list.sort_by_key(|exchange| exchange.answered_at);
        }
        Self {
            datagrams,
            exchanges,
        }
    }

    /// Each datagram's latencies on the wire, with the plan from the schedule's origin.
    fn latencies(&self, origin: SystemTime) -> WireLatencies {
        let gap = Duration::from_secs_f64(1.0 / RATE_PER_S);
        let micros = |from: SystemTime, to: SystemTime| match to.duration_since(from) {
            Ok(elapsed) => elapsed.as_secs_f64() * 1e6,
            Err(early) => -early.duration().as_secs_f64() * 1e6,
        };
        let mut wire = WireLatencies::default();
        for datagram in &self.datagrams {
            let planned = origin + gap * u32::try_from(datagram.seq).unwrap();
            wire.injector.push(micros(planned, datagram.at));
            let Some(list) = self.exchanges.get(&datagram.user) else {
                continue;
            };
            let answered_after = |command: &str, after: SystemTime| {
                list.iter()
                    .find(|exchange| exchange.command == command && exchange.answered_at > after)
                    .map(|exchange| exchange.answered_at)
            };
            let Some(woken) = answered_after("Ping", datagram.at) else {
                continue;
            };
            wire.server.push(micros(datagram.at, woken));
            wire.wake.push(micros(planned, woken));
            if let Some(synced) = answered_after("Sync", woken) {
                wire.mail.push(micros(planned, synced));
            }
        }
        wire
    }
}

/// The command and user of an EAS request line at the start of `payload`.
fn request_line(payload: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(payload.get(..payload.len().min(400))?).ok()?;
    let line = text.lines().next()?;
    let (_, query) = line.split_once('?')?;
    let query = query.split(' ').next()?;
    let pairs: HashMap<_, _> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    Some((pairs.get("Cmd")?.clone(), pairs.get("User")?.clone()))
}

/// The parts of a captured IPv4 frame this test reads.
enum Packet<'a> {
    Udp(&'a [u8]),
    Tcp {
        src: u16,
        dst: u16,
        payload: &'a [u8],
    },
}

impl<'a> Packet<'a> {
    /// An IPv4 UDP or TCP packet with a payload, from an Ethernet frame.
    fn parse(frame: &'a [u8]) -> Option<Self> {
        let ip = frame.get(14..).filter(|_| frame[12..14] == [0x08, 0x00])?;
        let header = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let transport = ip.get(header..total)?;
        match ip[9] {
            17 => Some(Self::Udp(transport.get(8..)?)),
            6 => {
                let payload = transport.get(usize::from(transport[12] >> 4) * 4..)?;
                (!payload.is_empty()).then(|| Self::Tcp {
                    src: u16::from_be_bytes([transport[0], transport[1]]),
                    dst: u16::from_be_bytes([transport[2], transport[3]]),
                    payload,
                })
            }
            _ => None,
        }
    }
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}
