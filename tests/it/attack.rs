//! The wake path under load from hostile clients: a fleet of 1,000 devices parked and
//! notified at 100 changes a second while slowloris holds the server's connections near
//! its descriptor limit and a flood of garbage hits the notification port at 100,000
//! datagrams a second, for each engine, plain and TLS. Nothing may be lost, no parked
//! Ping may pass its deadline unanswered, and the kernel may drop no datagram on the
//! notification socket.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pingfleet::fleet::report::{HistogramName, WorkerReport};

use crate::eas_client::{Server, ENGINES};
use crate::util::assert_every_notification_delivered;

/// Devices parked through the attack, each its own user.
const FLEET: usize = 1_000;
/// The slowloris connections: with the fleet's, just under the server's limit (its
/// descriptors less a hundred), so the server holds as many as it can while every
/// device keeps its own.
const SLOWLORIS: usize = 18_500;
/// How long the fleet holds, notified, and how long the attack lasts within it.
const HOLD: Duration = Duration::from_secs(24);
const ATTACK: Duration = Duration::from_secs(16);
/// The flood's rate, datagrams a second.
const FLOOD_PER_S: u64 = 100_000;

fn start_fleet(server: &Server, output: &Path) -> Child {
    let scheme = if server.cert.is_some() {
        "https"
    } else {
        "http"
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_pingfleet"));
    command
        .args([
            "devices",
            "--target",
            &format!("{scheme}://{}", server.http),
        ])
        .args(["--notify", &server.notify.to_string()])
        .args(["--devices", &FLEET.to_string(), "--heartbeat", "10s"])
        .args([
            "--connect-rate",
            "1000",
            "--pattern",
            "poisson",
            "--rate",
            "100",
        ])
        .args([
            "--duration",
            &format!("{}s", HOLD.as_secs()),
            "--drain",
            "5s",
        ])
        .args(["--threshold", "none", "--output"])
        .arg(output)
        .stdout(Stdio::null());
    if let Some(cert) = &server.cert {
        command.arg("--ca").arg(cert);
    }
    command.spawn().expect("start the fleet")
}

fn start_slowloris(http: SocketAddr) -> Child {
    Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/slowloris.py"))
        .arg(http.port().to_string())
        .args(["--connections", &SLOWLORIS.to_string()])
        .args([
            "--seconds",
            &ATTACK.as_secs().to_string(),
            "--interval",
            "1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start slowloris")
}

/// Sends garbage of several kinds to `to` at `FLOOD_PER_S` for `ATTACK`; how many left.
fn flood(to: SocketAddr) -> u64 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let long = vec![b'x'; 3_000];
    let kinds: [&[u8]; 5] = [
        b"\xff\xfe\x00 not text",
        b"user=nobody folder=5",
        b"user=user7 folder=no-such-folder",
        b"folder=5 kind=bogus",
        &long,
    ];
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < ATTACK {
        let due = (started.elapsed().as_secs_f64() * FLOOD_PER_S as f64) as u64;
        while sent < due {
            let _ = socket.send_to(kinds[sent as usize % kinds.len()], to);
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    sent
}

/// One engine, plain or TLS, attacked while its fleet holds.
fn attack(engine: &str, tls: bool) {
    let mut flags = vec!["--min-heartbeat", "10"];
    if tls {
        flags.push("--tls");
    }
    let server = Server::start_with_users(engine, FLEET, &flags);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("fleet.json");
    let mut fleet = start_fleet(&server, &output);
    let what = format!("{engine}{}", if tls { " TLS" } else { "" });
    assert!(
        server.wait_metric(
            "pingfleet_parked_pings",
            FLEET as f64,
            Duration::from_secs(30)
        ),
        "{what}: the fleet did not park"
    );
    let slowloris = start_slowloris(server.http);
    let notify = server.notify;
    let flooded = std::thread::spawn(move || flood(notify)).join().unwrap();
    let held = slowloris.wait_with_output().expect("slowloris ends");
    assert!(fleet.wait().unwrap().success(), "{what}: the fleet failed");
    let report: WorkerReport = serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    let counters = &report.counters;
    let drops = server.metric("pingfleet_notify_socket_drops_total");
    let malformed = server.metric("pingfleet_notifications_malformed_total");
    let takeovers = server.metric("pingfleet_notify_guard_takeovers_total");
    let wakeup = report
        .histograms
        .get(&HistogramName::WakeupLatency)
        .map(|doc| doc.summary);
    println!(
        "{what}: {} | flood {flooded} datagrams, {malformed} counted malformed, {drops} kernel drops, the guard took over {takeovers} times | notifications sent {} delivered {} lost {} | Pings past their deadline {:?} | errors {:?} | wake-up {wakeup:?}",
        String::from_utf8_lossy(&held.stdout).trim(),
        counters.notifications_sent,
        counters.notifications_delivered,
        counters.notifications_lost,
        counters.pings_died,
        counters.errors,
    );
    assert!(
        flooded >= FLOOD_PER_S * ATTACK.as_secs() / 2,
        "{what}: the flood fell behind ({flooded})"
    );
    assert!(malformed > 0.0, "{what}: no garbage reached the server");
    assert_eq!(drops, 0.0, "{what}: the kernel dropped datagrams");
    assert_every_notification_delivered(counters, 1_000, &what);
    assert!(
        counters.pings_died.is_empty(),
        "{what}: {:?}",
        counters.pings_died
    );
    assert!(counters.errors.is_empty(), "{what}: {:?}", counters.errors);
}

#[test]
fn a_flood_and_slowloris_cost_the_parked_fleet_nothing() {
    let _busy = crate::util::busy_machine();
    for engine in ENGINES {
        for tls in [false, true] {
            attack(engine, tls);
        }
    }
}
