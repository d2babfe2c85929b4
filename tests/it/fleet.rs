//! `pingfleet devices` against a real `pingfleet serve` on loopback ports picked at run
//! time: bootstrap, parking, wake-ups and their latencies, a server restart, refused
//! credentials, and the worker's JSON document.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use pingfleet::fleet::report::WorkerReport;
use pingfleet::measure::latency::Latency;

use crate::eas_client::Server;

/// Every notification sent reached its device, none was lost, no error was counted.
fn assert_every_notification_delivered_without_error(
    counters: &pingfleet::fleet::stats::Counters,
    case: &str,
) {
    assert_eq!(counters.notifications_lost, 0, "{case}");
    assert_eq!(
        counters.notifications_delivered, counters.notifications_sent,
        "{case}"
    );
    assert!(counters.errors.is_empty(), "{case}");
}

/// Runs a worker that must succeed.
pub(crate) fn run_devices(args: &[String], output: &Path) -> (Output, WorkerReport) {
    let (result, report) = run_devices_any(args, output);
    assert!(result.status.success(), "{result:?}");
    (result, report)
}

/// Runs a worker, whatever its exit; its document is written either way.
pub(crate) fn run_devices_any(args: &[String], output: &Path) -> (Output, WorkerReport) {
    let result = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .arg("devices")
        .args(args)
        .arg("--output")
        .arg(output)
        .output()
        .expect("run pingfleet devices");
    let report = serde_json::from_slice(&std::fs::read(output).unwrap()).expect("worker JSON");
    (result, report)
}

fn args(server: &Server, extra: &[&str]) -> Vec<String> {
    let scheme = if server.cert.is_some() {
        "https"
    } else {
        "http"
    };
    let mut args = vec![
        "--target".to_owned(),
        format!("{scheme}://{}", server.http),
        "--notify".to_owned(),
        server.notify.to_string(),
    ];
    if let Some(cert) = &server.cert {
        args.extend(["--ca".to_owned(), cert.display().to_string()]);
    }
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    args
}

#[test]
fn devices_bootstrap_park_and_wake_over_plain_and_tls() {
    for tls in [false, true] {
        // The server asks for Provision (449): devices provision when asked.
        let mut flags = vec!["--min-heartbeat", "1", "--require-provision"];
        if tls {
            flags.push("--tls");
        }
        let server = Server::start("lean", &flags);
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("worker.json");
        let extra = [
            "--devices",
            "40",
            "--heartbeat",
            "2",
            "--duration",
            "6s",
            "--rate",
            "30",
            "--inject-after",
            "1s",
        ];
        let (result, report) = run_devices(&args(&server, &extra), &output);
        let counters = &report.counters;
        let context = format!("tls={tls}: {counters:?}");
        assert!(counters.notifications_sent >= 100, "{context}");
        assert_eq!(
            counters.notifications_delivered, counters.notifications_sent,
            "{context}"
        );
        assert_eq!(counters.notifications_lost, 0, "{context}");
        assert_eq!(
            counters.requests["Provision"], 80,
            "asked, each device provisions in two phases"
        );
        assert!(
            counters.ping_status.contains_key("1"),
            "heartbeats expired: {context}"
        );
        assert!(counters.ping_status.contains_key("2"), "{context}");
        assert_eq!(counters.devices_stopped, 0);
        assert_eq!(report.devices_bootstrapped, 40, "{context}");
        // A snapshot at the end: the device whose wake-up ended the run may be syncing.
        assert!(report.devices_parked_at_end >= 38, "{context}");
        assert!(report.bootstrap_all_s.is_some());
        let wakeup = Latency::from_base64(&report.histograms["wakeup_latency_us"].data).unwrap();
        assert_eq!(wakeup.summary().count, counters.notifications_delivered);
        let mail = &report.histograms["mail_on_device_latency_us"].summary;
        assert_eq!(
            mail.count, counters.notifications_delivered,
            "every item reached its device"
        );
        assert!(mail.p50_us >= report.histograms["wakeup_latency_us"].summary.p50_us);
        assert_eq!(counters.tls_handshakes, if tls { 40 } else { 0 });
        assert!(report.rss_bytes.is_some_and(|rss| rss > 0));
        let summary = String::from_utf8_lossy(&result.stdout);
        assert!(summary.contains("lost 0"), "{summary}");
        assert_eq!(
            server.metric("pingfleet_notifications_applied_total") as u64,
            counters.notifications_sent,
            "the server applied every notification the worker sent"
        );
    }
}

#[test]
fn devices_reconnect_after_the_server_restarts() {
    let first = Server::start("lean", &[]);
    let port = first.http.port();
    let notify = first.notify.port();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    let extra = [
        "--devices",
        "20",
        "--heartbeat",
        "60",
        "--duration",
        "7s",
        "--rate",
        "0",
    ];
    let worker = {
        let args = args(&first, &extra);
        let output = output.clone();
        std::thread::spawn(move || run_devices_any(&args, &output))
    };
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        first.metric("pingfleet_parked_pings"),
        20.0,
        "parked before the restart"
    );
    // A kill closes every parked connection mid-Ping.
    drop(first);
    std::thread::sleep(Duration::from_millis(300));
    let listen = format!("127.0.0.1:{port}");
    let notify = format!("127.0.0.1:{notify}");
    let second = Server::start_at("lean", &listen, &notify, &[]);
    let (_, report) = worker.join().unwrap();
    let counters = &report.counters;
    // Each parked Ping died when the server closed its connection; the phone pinged
    // again at once, and while the server was down that was refused (counted, and
    // backed off from) until it was back.
    assert_eq!(counters.pings_died.get("closed"), Some(&20), "{counters:?}");
    assert!(counters.reconnects >= 20, "{counters:?}");
    let only_refused = (counters.errors.keys()).all(|error| error == "connect refused");
    assert!(only_refused, "{counters:?}");
    assert_eq!(report.devices_parked_at_end, 20, "{counters:?}");
    assert!(second.wait_metric("pingfleet_parked_pings", 0.0, Duration::from_secs(5)));
}

#[test]
fn refused_credentials_stop_the_devices() {
    let server = Server::start("lean", &[]);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    let extra = [
        "--devices",
        "5",
        "--password",
        "wrong",
        "--duration",
        "1s",
        "--rate",
        "0",
    ];
    let (result, report) = run_devices_any(&args(&server, &extra), &output);
    assert_eq!(report.counters.devices_stopped, 5);
    assert_eq!(report.counters.http_status["401"], 5);
    assert_eq!(report.devices_parked_at_end, 0);
    // Nothing the worker was asked to do was done: that is no success.
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "pingfleet: every device was refused by the server (5 responses 401/403): check the credentials"
    );
}

#[test]
fn an_untrusted_certificate_fails_the_worker_with_its_cause() {
    let trusted = Server::start("lean", &["--tls"]);
    let other = Server::start("lean", &["--tls"]);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    let mut flags = args(
        &other,
        &["--devices", "3", "--duration", "1s", "--rate", "5"],
    );
    // The other server's certificate does not vouch for this one.
    let ca = flags.iter().position(|flag| flag == "--ca").unwrap() + 1;
    flags[ca] = trusted.cert.as_ref().unwrap().display().to_string();
    flags.extend(["--ramp-timeout".to_owned(), "3s".to_owned()]);
    let (result, report) = run_devices_any(&flags, &output);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no device of 3 parked a Ping; last setback: TLS failure:"),
        "{stderr}"
    );
    // Both self-signed certificates bear one name, so rustls reports the signature.
    let kinds: Vec<&String> = report.counters.errors.keys().collect();
    assert!(
        !kinds.is_empty()
            && kinds
                .iter()
                .all(|kind| kind.starts_with("TLS failure: invalid peer certificate")),
        "{kinds:?}"
    );
}

#[test]
fn a_new_connection_per_ping_when_the_profile_closes_them() {
    // Over TLS the server's close_notify follows each response: the response is the
    // device's, the close is no error.
    for (engine, tls) in [("lean", false), ("lean", true), ("hyper", true)] {
        let mut flags = vec!["--min-heartbeat", "1"];
        if tls {
            flags.push("--tls");
        }
        let server = Server::start(engine, &flags);
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("worker.json");
        let extra = [
            "--devices",
            "10",
            "--heartbeat",
            "1",
            "--duration",
            "3s",
            "--rate",
            "10",
            "--close-per-ping",
            "--empty-reping",
        ];
        let (_, report) = run_devices(&args(&server, &extra), &output);
        let counters = &report.counters;
        let case = format!("{engine} tls={tls}: {counters:?}");
        assert!(counters.connections_opened >= 30, "{case}");
        assert_every_notification_delivered_without_error(counters, &case);
        assert_eq!(counters.reconnects, 0, "{case}");
    }
}

#[test]
fn shards_of_one_fleet_merge_exactly() {
    let server = Server::start("lean", &["--min-heartbeat", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    let mut paths = Vec::new();
    for shard in ["0/2", "1/2"] {
        let output = dir.path().join(format!("shard{}.json", &shard[..1]));
        let extra = [
            "--devices",
            "30",
            "--shard",
            shard,
            "--heartbeat",
            "5",
            "--duration",
            "2s",
            "--rate",
            "20",
        ];
        let (_, report) = run_devices(&args(&server, &extra), &output);
        reports.push(report);
        paths.push(output);
    }
    let merged_path = dir.path().join("merged.json");
    let status = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .arg("merge")
        .args(&paths)
        .arg("-o")
        .arg(&merged_path)
        .status()
        .unwrap();
    assert!(status.success());
    let merged: WorkerReport =
        serde_json::from_slice(&std::fs::read(&merged_path).unwrap()).unwrap();
    assert_eq!(merged.devices, 30);
    assert_eq!(reports[0].devices + reports[1].devices, 30);
    let sent: u64 = reports.iter().map(|r| r.counters.notifications_sent).sum();
    assert_eq!(merged.counters.notifications_sent, sent);
    let wakeups: u64 = reports
        .iter()
        .map(|r| r.histograms["wakeup_latency_us"].summary.count)
        .sum();
    assert_eq!(
        merged.histograms["wakeup_latency_us"].summary.count,
        wakeups
    );
    let max = reports
        .iter()
        .map(|r| r.histograms["wakeup_latency_us"].summary.max_us)
        .max()
        .unwrap();
    assert_eq!(merged.histograms["wakeup_latency_us"].summary.max_us, max);
    assert_eq!(merged.shard, "0/2+1/2");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .args([
            "merge",
            bad.to_str().unwrap(),
            "-o",
            merged_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr)
        .contains("neither a worker document nor a run result"));
}

#[test]
fn churned_devices_reconnect_and_lose_no_notification() {
    let server = Server::start("lean", &["--min-heartbeat", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    // 60 devices, all of them once a minute: one drop a second for 6 s.
    let extra = [
        "--devices",
        "60",
        "--heartbeat",
        "30",
        "--duration",
        "6s",
        "--rate",
        "20",
        "--churn-per-minute",
        "100%",
        "--drain",
        "10s",
    ];
    let (_, report) = run_devices(&args(&server, &extra), &output);
    let counters = &report.counters;
    assert!((4..=7).contains(&counters.churn_drops), "{counters:?}");
    assert!(counters.reconnects >= counters.churn_drops, "{counters:?}");
    // Dropped devices came back with connections of their own (the last one dropped may
    // still be in its backoff when the run ends).
    assert!(
        counters.connections_opened + 1 >= 60 + counters.churn_drops,
        "{counters:?}"
    );
    assert_eq!(
        counters.notifications_delivered, counters.notifications_sent,
        "{counters:?}"
    );
    assert_eq!(counters.notifications_lost, 0);
    let hold = report
        .stages
        .iter()
        .find(|stage| stage.name == pingfleet::phase::Phase::Hold)
        .unwrap();
    assert_eq!(hold.counters.churn_drops, counters.churn_drops);
}

#[test]
fn a_credentials_file_and_a_profile_mix_shape_the_fleet() {
    let server = Server::start("lean", &["--min-heartbeat", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.txt");
    std::fs::write(
        &users,
        "# three phones\nuser0:pingfleet\nuser1:pingfleet\n\nuser2:pingfleet\n",
    )
    .unwrap();
    let mix = dir.path().join("mix.toml");
    std::fs::write(
        &mix,
        "[[profile]]\nname = \"iphone\"\nversion = \"16.1\"\ndevice_type = \"iPhone\"\n\
         [[profile]]\nname = \"android\"\nclose_per_ping = true\n",
    )
    .unwrap();
    let output = dir.path().join("worker.json");
    let extra = [
        "--devices",
        "10",
        "--credentials",
        users.to_str().unwrap(),
        "--profiles",
        mix.to_str().unwrap(),
        "--heartbeat",
        "2",
        "--duration",
        "2s",
        "--rate",
        "5",
    ];
    let (_, report) = run_devices(&args(&server, &extra), &output);
    // The file names three devices, whatever --devices says.
    assert_eq!(report.devices, 3);
    assert_eq!(report.devices_bootstrapped, 3);
    let kinds: Vec<(&str, usize)> = report
        .profiles
        .iter()
        .map(|kind| (kind.name.as_str(), kind.devices))
        .collect();
    assert_eq!(kinds.iter().map(|(_, n)| n).sum::<usize>(), 3, "{kinds:?}");
    assert_eq!(kinds[0].0, "iphone");
    assert_eq!(report.profiles[0].protocol_version, "16.1");
    assert!(report.profiles[1].close_per_ping);
    assert_eq!(report.counters.notifications_lost, 0);

    std::fs::write(&mix, "[[profile]]\nname = \"x\"\ncolour = \"red\"\n").unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .arg("devices")
        .args(args(&server, &["--profiles", mix.to_str().unwrap()]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("mix.toml") && stderr.contains("colour"),
        "{stderr}"
    );
}

/// Devices against a server that frames and codes its responses as others do (chunked,
/// ended by the close, gzip on every body, empty ones included) park, wake and lose no
/// notification, and count no error.
#[test]
fn devices_read_chunked_close_delimited_and_compressed_responses() {
    for style in [
        &["--response-framing", "chunked", "--gzip-everything"][..],
        &["--response-framing", "close"][..],
        &["--gzip-everything"][..],
    ] {
        let mut flags = vec!["--min-heartbeat", "1"];
        flags.extend_from_slice(style);
        let server = Server::start("lean", &flags);
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("worker.json");
        let extra = [
            "--devices",
            "10",
            "--heartbeat",
            "2",
            "--duration",
            "3s",
            "--rate",
            "10",
        ];
        let (_, report) = run_devices(&args(&server, &extra), &output);
        let counters = &report.counters;
        let case = format!("{style:?}: {counters:?}");
        assert_eq!(report.devices_bootstrapped, 10, "{case}");
        assert!(counters.notifications_sent >= 20, "{case}");
        assert_every_notification_delivered_without_error(counters, &case);
    }
}

#[test]
fn a_pushed_folder_the_server_lacks_fails_the_worker_instead_of_looping() {
    let server = Server::start("lean", &[]);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    let extra = [
        "--devices",
        "3",
        "--folder",
        "99",
        "--duration",
        "1s",
        "--rate",
        "0",
    ];
    let started = std::time::Instant::now();
    let (result, report) = run_devices_any(&args(&server, &extra), &output);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "no device of 3 parked a Ping; last setback: pushed folder \"99\" is not in the server's hierarchy (3)"
        ),
        "{stderr}"
    );
    // One FolderSync each, not a hot loop.
    assert_eq!(report.counters.requests["FolderSync"], 3);
    assert_eq!(
        report.counters.never_parked["pushed folder \"99\" is not in the server's hierarchy"],
        3
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A worker keeps at most `--max-bootstrapping` devices between their start and their
/// first Ping: against a server that accepts connections and never answers, 40 devices
/// asked for at 1,000/s open 5 connections with a bound of 5, and all 40 without one.
#[test]
fn the_ramp_waits_while_max_bootstrapping_devices_are_bootstrapping() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    for (bound, expected) in [("5", 5), ("100", 40)] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        // Holds every connection open, silent, until the test's process ends.
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let args: Vec<String> = [
            "--target",
            &format!("http://{address}"),
            "--notify",
            "127.0.0.1:9",
            "--devices",
            "40",
            "--connect-rate",
            "1000",
            "--max-bootstrapping",
            bound,
            "--ramp-timeout",
            "2s",
            "--duration",
            "1s",
            "--drain",
            "1s",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        let (result, report) = run_devices_any(&args, &dir.path().join("worker.json"));
        assert!(!result.status.success(), "no device could bootstrap");
        assert_eq!(report.devices_bootstrapped, 0);
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            expected,
            "--max-bootstrapping {bound}"
        );
    }
}
