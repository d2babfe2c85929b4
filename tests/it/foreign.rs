//! The fleet against servers that are not `pingfleet serve`: the fake of
//! [`crate::fake_eas`] in its Z-Push and Exchange modes (per-device folder ids, a
//! connection per request, 14.0 only, a hierarchy that changes, passwords checked).

use std::path::Path;
use std::sync::atomic::Ordering;

use crate::fake_eas::{ForeignServer, Quirks};
use crate::fleet::{run_devices, run_devices_any};

/// A worker of `extra` against `server`, its users from a credentials file of
/// `DOMAIN\\user` names (percent-encoded on the request line), with no `--folder`.
fn worker(server: &ForeignServer, extra: &[&str]) -> pingfleet::fleet::report::WorkerReport {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    run_devices(&with_credentials(server.args(extra), dir.path()), &output).1
}

/// `args` and a credentials file of `DOMAIN\\user` names written into `dir`.
fn with_credentials(mut args: Vec<String>, dir: &Path) -> Vec<String> {
    let users: String = (0..8)
        .map(|i| format!("CORP\\alice{i}:secret-CORP\\alice{i}\n"))
        .collect();
    let credentials = dir.join("users.txt");
    std::fs::write(&credentials, users).unwrap();
    args.extend([
        "--credentials".to_owned(),
        credentials.display().to_string(),
    ]);
    args
}

const FIVE_DEVICES_WITH_MAIL: [&str; 8] = [
    "--devices",
    "5",
    "--duration",
    "2s",
    "--rate",
    "10",
    "--drain",
    "5s",
];

#[test]
fn devices_find_their_own_inbox_among_per_device_ids_and_get_their_mail() {
    let server = ForeignServer::start(Quirks {
        passwords: true,
        ..Quirks::default()
    });
    let report = worker(&server, &FIVE_DEVICES_WITH_MAIL);
    let counters = &report.counters;
    assert_eq!(report.devices_bootstrapped, 5);
    assert!(counters.notifications_sent >= 10, "{counters:?}");
    assert_eq!(
        counters.notifications_delivered,
        counters.notifications_sent
    );
    assert_eq!(counters.notifications_lost, 0);
    assert!(counters.errors.is_empty(), "{:?}", counters.errors);
    assert!(counters.resyncs.is_empty(), "{:?}", counters.resyncs);
    // What the server said of itself, and how each command was answered.
    assert_eq!(counters.server_versions["16.1"], 5);
    assert_eq!(
        counters.advertised_commands["FolderSync,Sync,Ping,Provision"],
        5
    );
    assert_eq!(counters.http_status_by_command["FolderSync 200"], 5);
    assert!(counters.http_status_by_command["Ping 200"] >= 10);
}

#[test]
fn a_server_that_closes_after_every_response_loses_no_mail() {
    let server = ForeignServer::start(Quirks {
        close_every_response: true,
        passwords: true,
        ..Quirks::default()
    });
    let report = worker(&server, &FIVE_DEVICES_WITH_MAIL);
    let counters = &report.counters;
    assert_eq!(report.devices_bootstrapped, 5);
    assert_eq!(
        counters.notifications_delivered,
        counters.notifications_sent
    );
    assert!(counters.notifications_sent >= 10);
    assert!(counters.errors.is_empty(), "{:?}", counters.errors);
    // A connection per request: at least OPTIONS, 2 Provision, FolderSync, Sync x2, Ping.
    assert!(counters.connections_opened >= 5 * 7, "{counters:?}");
}

#[test]
fn devices_asking_for_16_1_settle_on_14_0_with_a_14_0_server() {
    let server = ForeignServer::start(Quirks {
        only_14_0: true,
        passwords: true,
        ..Quirks::default()
    });
    let report = worker(
        &server,
        &[
            "--devices",
            "4",
            "--duration",
            "1s",
            "--rate",
            "0",
            "--protocol-version",
            "16.1",
        ],
    );
    let counters = &report.counters;
    assert_eq!(report.devices_bootstrapped, 4);
    assert_eq!(counters.negotiated_versions["14.0"], 4, "{counters:?}");
    assert_eq!(counters.server_versions["14.0"], 4);
    assert_eq!(counters.advertised_versions["2.5,12.0,12.1,14.0"], 4);
}

#[test]
fn a_hierarchy_that_changes_is_resynced_then_the_devices_park() {
    let server = ForeignServer::start(Quirks {
        hierarchy_changes: 2,
        passwords: true,
        ..Quirks::default()
    });
    let report = worker(
        &server,
        &["--devices", "3", "--duration", "1s", "--rate", "0"],
    );
    let counters = &report.counters;
    assert_eq!(report.devices_bootstrapped, 3);
    // Each change: Sync says 12, the FolderSync from the old key says 9, the device
    // takes the whole hierarchy from key 0.
    assert_eq!(counters.resyncs["Sync status 12"], 6, "{counters:?}");
    assert_eq!(counters.resyncs["FolderSync status 9"], 6, "{counters:?}");
    assert!(counters.never_parked.is_empty());
}

#[test]
fn a_hierarchy_that_never_settles_fails_the_worker_with_the_status_instead_of_looping() {
    let server = ForeignServer::start(Quirks {
        hierarchy_changes: u32::MAX,
        passwords: true,
        ..Quirks::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    let flags = [
        "--devices",
        "3",
        "--duration",
        "1s",
        "--rate",
        "0",
        "--ramp-timeout",
        "6s",
    ];
    let args = with_credentials(server.args(&flags), dir.path());
    let (result, report) = run_devices_any(&args, &output);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no device of 3 parked a Ping; last setback: "),
        "{stderr}"
    );
    // Each device stopped at one of the two steps of its re-synchronisation.
    let never_parked = &report.counters.never_parked;
    let resyncs = ["Sync status 12", "FolderSync status 9"];
    assert!(
        never_parked
            .keys()
            .all(|why| resyncs.contains(&why.as_str())),
        "{never_parked:?}"
    );
    assert_eq!(never_parked.values().sum::<u64>(), 3);
    // Backed off: a few Syncs per device over 6 s, not thousands.
    let syncs = report.counters.requests["Sync"];
    assert!((6..=40).contains(&syncs), "{syncs} Syncs");
    assert!(server.shared.requests.load(Ordering::Relaxed) < 200);
}

#[test]
fn wrong_credentials_fail_the_worker_in_one_line() {
    let server = ForeignServer::start(Quirks {
        passwords: true,
        ..Quirks::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    let credentials = dir.path().join("users.txt");
    std::fs::write(&credentials, "CORP\\alice:wrong\nCORP\\bob:wrong\n").unwrap();
    let mut args = server.args(&["--devices", "2", "--duration", "1s", "--rate", "0"]);
    args.extend([
        "--credentials".to_owned(),
        credentials.display().to_string(),
    ]);
    let (result, report) = run_devices_any(&args, &output);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "every device was refused by the server (2 responses 401/403): check the credentials"
        ),
        "{stderr}"
    );
    assert_eq!(report.counters.http_status_by_command["Options 401"], 2);
}
