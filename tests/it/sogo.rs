//! The fleet against SOGo's ways, reproduced by the fake of [`crate::fake_eas`] (each
//! measured against SOGo 5.8): EAS under `/SOGo/Microsoft-Server-ActiveSync` and a login
//! page elsewhere, Provision "no policy for this client", a Ping woken for nothing after
//! every Sync, a fixed pool of workers a parked Ping holds, a heartbeat maximum answered
//! with Status 5. And the bundled server under the same path.

use std::sync::atomic::Ordering;

use crate::fake_eas::{ForeignServer, Quirks, Sogo, SOGO_PATH};
use crate::fleet::{run_devices, run_devices_any};

fn sogo(sogo: Sogo) -> ForeignServer {
    ForeignServer::start(Quirks {
        sogo,
        ..Quirks::default()
    })
}

/// SOGo as installed: its prefix, no policy, a wake for nothing after each Sync.
const AS_INSTALLED: Sogo = Sogo {
    prefix: true,
    no_policy: true,
    empty_wake_after_sync: true,
    workers: 0,
    max_heartbeat_s: 0,
};

#[test]
fn under_its_prefix_without_a_policy_every_mail_arrives_and_empty_wakes_are_counted() {
    let server = sogo(AS_INSTALLED);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    // Devices that provision before being asked, as some phones do.
    let flags = [
        "--devices",
        "5",
        "--duration",
        "3s",
        "--rate",
        "5",
        "--drain",
        "4s",
        "--provision",
    ];
    let (result, report) = run_devices(&server.args(&flags), &output);
    let stdout = String::from_utf8_lossy(&result.stdout);
    let counters = &report.counters;
    assert_eq!(report.devices_bootstrapped, 5, "{stdout}");
    assert!(counters.errors.is_empty(), "{:?}", counters.errors);
    assert!(counters.notifications_sent >= 10, "{counters:?}");
    assert_eq!(
        counters.notifications_delivered,
        counters.notifications_sent
    );
    assert_eq!(counters.notifications_lost, 0);
    // Provision said "no policy for this client" once per device; each carried on.
    assert_eq!(counters.provisioned_without_policy, 5);
    // Every wake for nothing whose Sync brought nothing, and only those. A wake for
    // nothing can also land on a change planned that very instant, whose item the
    // next Sync brings: the fake counts it empty, the device not.
    let given = u64::from(server.shared.empty_wakes_given.load(Ordering::Relaxed));
    let counted: u64 = counters.empty_wakes.values().sum();
    eprintln!(
        "SOGo as installed: sent {}, delivered {}, lost {}; Status 2 {} of which empty {} (the device counted {counted})",
        counters.notifications_sent,
        counters.notifications_delivered,
        counters.notifications_lost,
        counters.ping_status.get("2").copied().unwrap_or(0),
        given
    );
    assert!(
        given >= 5,
        "a wake for nothing after each device's Syncs: {given}"
    );
    assert!(
        counted <= given && counted + 2 >= given,
        "counted {counted}, given {given}"
    );
    assert_eq!(counters.empty_wakes.keys().collect::<Vec<_>>(), ["default"]);
    assert!(
        stdout.contains("[PASS] lost_notifications count==0"),
        "{stdout}"
    );
}

#[test]
fn without_mail_every_wake_is_empty_and_counted_exactly() {
    let server = sogo(AS_INSTALLED);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    let flags = ["--devices", "4", "--duration", "2s", "--rate", "0"];
    let (_, report) = run_devices(&server.args(&flags), &output);
    let given = u64::from(server.shared.empty_wakes_given.load(Ordering::Relaxed));
    let status_2 = u64::from(server.shared.changes_given.load(Ordering::Relaxed));
    assert!(given >= 4, "{given}");
    // SOGo never asks for Provision, and devices that need not provision do not.
    assert!(!report.counters.requests.contains_key("Provision"));
    assert_eq!(report.counters.empty_wakes["default"], given);
    // Each wake for nothing is a Status 2 the device heard.
    assert!(report.counters.ping_status["2"] >= given && status_2 >= given);
}

#[test]
fn the_wrong_path_gets_a_login_page_and_one_line_that_says_so() {
    let server = sogo(AS_INSTALLED);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    let mut args = server.args(&["--devices", "2", "--duration", "1s", "--rate", "0"]);
    // The path a user leaves out: the standard one, where SOGo has its login page.
    args[1] = args[1].replace(SOGO_PATH, "");
    let (result, report) = run_devices_any(&args, &output);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not an EAS server: OPTIONS answered with text/html"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // Each device gave up at once rather than retrying for the ramp's timeout.
    assert_eq!(report.counters.requests["Options"], 2);
}

#[test]
fn a_heartbeat_above_the_servers_maximum_is_answered_5_then_adopted() {
    let server = sogo(Sogo {
        max_heartbeat_s: 2,
        ..AS_INSTALLED
    });
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    let flags = [
        "--devices",
        "3",
        "--duration",
        "5s",
        "--rate",
        "2",
        "--drain",
        "4s",
    ];
    let (_, report) = run_devices(&server.args(&flags), &output);
    let counters = &report.counters;
    assert_eq!(
        counters.ping_status["5"], 3,
        "one Status 5 a device: {counters:?}"
    );
    assert_eq!(
        counters.notifications_delivered,
        counters.notifications_sent
    );
    assert_eq!(counters.notifications_lost, 0);
}

#[test]
fn a_worker_per_parked_ping_loses_mail_and_the_run_exits_1_naming_it() {
    // One worker for eight devices: seven wait for it, whatever the machine's timing.
    let server = sogo(Sogo {
        workers: 1,
        max_heartbeat_s: 3,
        ..AS_INSTALLED
    });
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    let flags = [
        "--devices",
        "8",
        "--duration",
        "4s",
        "--rate",
        "6",
        // Mail planned late in the hold waits for a worker longer than the drain.
        "--drain",
        "500ms",
        "--grace",
        "1s",
    ];
    let (result, report) = run_devices_any(&server.args(&flags), &output);
    let stderr = String::from_utf8_lossy(&result.stderr);
    let counters = &report.counters;
    eprintln!(
        "1 worker, 8 devices: {} requests waited; sent {}, delivered {}, lost {}, Pings died {:?}; {stderr}",
        server.shared.queued.load(Ordering::Relaxed),
        counters.notifications_sent,
        counters.notifications_delivered,
        counters.notifications_lost,
        counters.pings_died
    );
    assert!(
        server.shared.queued.load(Ordering::Relaxed) > 0,
        "requests waited in line"
    );
    assert!(
        report.counters.notifications_lost > 0,
        "{:?}",
        report.counters
    );
    // Some mail may still find a worker (exit 1, the threshold named) or none at all
    // (exit 2, saying so): either way the run fails and says why.
    match result.status.code() {
        Some(1) => assert!(
            stderr.contains("threshold failed: lost_notifications count==0 (observed "),
            "{stderr}"
        ),
        Some(2) => assert!(
            stderr.contains("none of 24 planned notifications reached its device"),
            "{stderr}"
        ),
        other => panic!("exit {other:?}: {stderr}"),
    }
}

#[test]
fn the_bundled_server_under_sogos_path_works_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = format!(
        "name = \"under-a-path\"\noutput = \"out\"\n[server]\npath = \"{SOGO_PATH}\"\n\
         [devices]\ncount = 100\n[stages]\nhold = \"3s\"\ndrain = \"2s\"\n\
         [injector]\nrate = 30\n[thresholds]\nlost_notifications = [\"count==0\"]\n"
    );
    let (code, output, result) = crate::run::run_scenario(dir.path(), &scenario);
    assert_eq!(code, Some(0), "{output}");
    let counters = &result.fleet.counters;
    assert_eq!(result.fleet.devices_bootstrapped, 100);
    assert!(counters.notifications_sent >= 60, "{counters:?}");
    assert_eq!(
        counters.notifications_delivered,
        counters.notifications_sent
    );
    assert!(counters.errors.is_empty(), "{:?}", counters.errors);
    // Every request went to the path: a POST anywhere else is 404 there.
    assert!(!counters.http_status.contains_key("404"), "{counters:?}");
}

#[test]
fn serve_under_a_path_answers_there_and_404_elsewhere_in_both_engines() {
    for engine in crate::eas_client::ENGINES {
        let server = crate::eas_client::Server::start(engine, &["--path", SOGO_PATH]);
        let mut client = server.client("user1", "dev1");
        let query = "Cmd=FolderSync&User=user1&DeviceId=dev1&DeviceType=SmartPhone";
        let body = pingfleet::eas::commands::folder_sync::FolderSyncRequest {
            sync_key: "0".into(),
        };
        let body = pingfleet::eas::WbxmlBody::encode(&body);
        client.send_post(&format!("{SOGO_PATH}?{query}"), &body, true);
        assert_eq!(client.read_response().status, 200, "{engine}");
        client.send_post(
            &format!("/Microsoft-Server-ActiveSync?{query}"),
            &body,
            true,
        );
        let elsewhere = client.read_response();
        assert_eq!(elsewhere.status, 404, "{engine}");
        let text = String::from_utf8_lossy(&elsewhere.body);
        assert!(text.contains(SOGO_PATH), "{engine}: {text}");
    }
}
