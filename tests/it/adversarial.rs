//! The server attacked on purpose while a small fleet is parked on it and notified: each
//! probe of the hardening issue (hostile datagrams, bodies from nobody, ghost users,
//! lenient framing, folder and device floods, dripped bodies) against both engines. For
//! each: the answer it must get, the server still serving, its memory under a stated
//! bound, and the fleet losing no notification.

use std::io::Write as _;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pingfleet::eas::commands::folder_sync::{FolderSyncRequest, FolderSyncResponse};
use pingfleet::eas::commands::sync::{SyncCollectionRequest, SyncRequest, SyncResponse};
use pingfleet::eas::headers::BasicCredentials;
use pingfleet::eas::WbxmlBody;
use pingfleet::fleet::report::WorkerReport;
use pingfleet::measure::procfs;

use crate::eas_client::{Server, ENGINES, PASSWORD};
use crate::util::assert_every_notification_delivered;

/// What the server's resident memory may grow by over the whole attack.
const RSS_BOUND_BYTES: u64 = 64 * 1024 * 1024;
/// Devices parked during the attack (users user0 ... user19; the probes use others).
const FLEET: usize = 20;

/// A worker of `FLEET` devices with notifications flowing for the attack's duration.
fn start_fleet(server: &Server, output: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .args(["devices", "--target", &format!("http://{}", server.http)])
        .args(["--notify", &server.notify.to_string()])
        .args(["--devices", &FLEET.to_string(), "--heartbeat", "2"])
        .args(["--duration", "8s", "--rate", "20", "--drain", "5s"])
        .arg("--output")
        .arg(output)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the fleet")
}

fn authorization(user: &str) -> String {
    BasicCredentials::new(user, PASSWORD).to_header()
}

/// Sends a raw request on a fresh connection and returns the status of the answer.
fn status_of(server: &Server, raw: &str) -> u16 {
    let mut client = server.client("user90", "adv");
    client.send_raw(raw.as_bytes());
    client.read_response().status
}

/// A Sync of `folder` for `user` after FolderSync and the initial Sync: its collection
/// status (12: the folder is not in the hierarchy).
fn sync_status(server: &Server, user: &str, folder: &str) -> u32 {
    let mut client = server.client(user, "adv-sync");
    let folders = FolderSyncRequest {
        sync_key: "0".into(),
    }
    .encode();
    let listed: FolderSyncResponse = client.post("FolderSync", &folders).eas();
    assert_eq!(listed.status, 1);
    let request = |key: &str| {
        SyncRequest {
            collections: vec![SyncCollectionRequest {
                sync_key: key.into(),
                collection_id: folder.into(),
                get_changes: (key != "0").then_some(true),
                ..SyncCollectionRequest::default()
            }],
        }
        .encode()
    };
    let first: SyncResponse = client.post("Sync", &request("0")).eas();
    let collection = &first.collections[0];
    if collection.status != 1 {
        return collection.status;
    }
    let key = collection.sync_key.clone();
    let second: SyncResponse = client.post("Sync", &request(&key)).eas();
    second.collections[0].status
}

fn probe_hostile_datagrams(server: &Server) {
    let malformed = "pingfleet_notifications_malformed_total";
    let before = server.metric(malformed);
    // An item of 4 GiB once made the next Sync abort the server.
    server.notify("user=user60 folder=5 size=4294967295");
    // A datagram over the limit is refused whole, not cut and applied.
    server.notify(&format!("user=user60 folder=5 seq=1{}", " ".repeat(2100)));
    assert!(server.wait_metric_at_least(malformed, before + 2.0, Duration::from_secs(5)));
    assert_eq!(
        sync_status(server, "user60", "5"),
        1,
        "the Inbox still syncs"
    );
    // Ghost users: a sign or leading zeros name nobody.
    let unknown = "pingfleet_notifications_unknown_user_total";
    let before = server.metric(unknown);
    server.notify("user=user+0000060 folder=5");
    assert!(server.wait_metric_at_least(unknown, before + 1.0, Duration::from_secs(5)));
}

fn probe_folder_flood(server: &Server) {
    // 1,000 folders is the bound; the 1,001st change is refused, and no id aliases.
    for _ in 0..1_001 {
        server.notify("user=user61 folder=5 kind=hierarchy");
    }
    let over = "pingfleet_notifications_over_limit_total";
    assert!(
        server.wait_metric_at_least(over, 1.0, Duration::from_secs(10)),
        "{over}"
    );
    // Folder 65627 once landed on folder 1 (the Calendar) when ids wrapped.
    assert_eq!(sync_status(server, "user61", "65627"), 12);
    assert_eq!(
        sync_status(server, "user61", "1099"),
        1,
        "the last folder syncs"
    );
}

fn probe_bodies_from_nobody(server: &Server, engine: &str) {
    // 200 heads announcing 4 MiB bodies without credentials: each refused on its head.
    let mut streams = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(server.http).unwrap();
        let head = "POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=x&DeviceId=d&DeviceType=t \
                    HTTP/1.1\r\nHost: x\r\nContent-Length: 4194304\r\n\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&[0u8; 65536]).unwrap_or_default();
        streams.push(stream);
    }
    let mut client = server.client("user90", "adv");
    let head = "POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=x&DeviceId=d&DeviceType=t \
                HTTP/1.1\r\nHost: x\r\nContent-Length: 4194304\r\n\r\n";
    client.send_raw(head.as_bytes());
    assert_eq!(client.read_response().status, 401, "{engine}");
    drop(streams);
}

fn probe_lenient_framing(server: &Server, engine: &str) {
    // A head no HTTP parser accepts: 400, counted by both engines (once the counts of
    // the probes before have settled).
    let errors = "pingfleet_http_errors_total";
    let mut before = server.metric(errors);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = server.metric(errors);
        if now == before {
            break;
        }
        before = now;
    }
    let malformed = "POST /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost x\r\n\r\n";
    assert_eq!(status_of(server, malformed), 400, "{engine}");
    assert!(
        server.wait_metric(errors, before + 1.0, Duration::from_secs(5)),
        "{engine}: {errors}"
    );
    let auth = authorization("user90");
    let target = "/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=user90&DeviceId=d&DeviceType=t";
    for lengths in [
        "Content-Length: +13\r\n",
        "Content-Length: 0\r\nContent-Length: 13\r\n",
    ] {
        let raw = format!(
            "POST {target} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
             MS-ASProtocolVersion: 14.1\r\n{lengths}\r\n0123456789abc"
        );
        assert_eq!(status_of(server, &raw), 400, "{engine}: {lengths:?}");
    }
}

fn probe_device_flood(server: &Server, engine: &str) {
    let body = FolderSyncRequest {
        sync_key: "0".into(),
    }
    .encode();
    for index in 0..100 {
        let mut client = server.client("user62", &format!("flood{index}"));
        assert_eq!(client.post("FolderSync", &body).status, 200);
    }
    let mut one_more = server.client("user62", "flood100");
    assert_eq!(one_more.post("FolderSync", &body).status, 403, "{engine}");
    let mut known = server.client("user62", "flood7");
    assert_eq!(known.post("FolderSync", &body).status, 200, "{engine}");
    let mut long_id = server.client("user63", &"x".repeat(65));
    assert_eq!(long_id.post("FolderSync", &body).status, 400, "{engine}");
}

/// A body sent one byte a segment: the server keeps the bytes, not a read buffer per
/// byte (hyper's collected frames once kept ~4 KB per byte received).
fn probe_byte_by_byte_body(server: &Server, engine: &str) {
    const BYTES: usize = 4000;
    let auth = authorization("user90");
    let target = "/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=user90&DeviceId=d&DeviceType=t";
    let mut stream = TcpStream::connect(server.http).unwrap();
    stream.set_nodelay(true).unwrap();
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
         MS-ASProtocolVersion: 14.1\r\nContent-Length: {BYTES}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let before = procfs::rss_bytes(Some(server.pid())).unwrap();
    let mut peak = before;
    let mut sent = 0;
    for index in 0..BYTES {
        // The body timeout may cut a slow drip; the memory it took is what counts.
        if stream.write_all(b"x").is_err() {
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_micros(100));
        if index % 500 == 0 {
            peak = peak.max(procfs::rss_bytes(Some(server.pid())).unwrap());
        }
    }
    let grown = peak.saturating_sub(before);
    assert!(sent >= 1000, "{engine}: cut after {sent} bytes");
    assert!(
        grown < 8 << 20,
        "{engine}: {grown} bytes for {sent} bytes sent one by one"
    );
}

fn probe_dripped_body(server: &Server, engine: &str) {
    let auth = authorization("user90");
    let target = "/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=user90&DeviceId=d&DeviceType=t";
    let mut client = server.client("user90", "drip");
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
         MS-ASProtocolVersion: 14.1\r\nContent-Length: 100\r\n\r\nx"
    );
    client.send_raw(head.as_bytes());
    let started = Instant::now();
    assert_eq!(client.read_response().status, 408, "{engine}");
    assert!(started.elapsed() < Duration::from_secs(5), "{engine}");
}

#[test]
fn every_probe_is_answered_and_the_fleet_loses_nothing() {
    for engine in ENGINES {
        let server = Server::start(engine, &["--min-heartbeat", "1", "--body-timeout", "1s"]);
        let rss_before = procfs::rss_bytes(Some(server.pid())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("fleet.json");
        let mut fleet = start_fleet(&server, &output);
        assert!(
            server.wait_metric(
                "pingfleet_parked_pings",
                FLEET as f64,
                Duration::from_secs(10)
            ),
            "{engine}: the fleet did not park"
        );
        probe_hostile_datagrams(&server);
        probe_folder_flood(&server);
        probe_bodies_from_nobody(&server, engine);
        probe_lenient_framing(&server, engine);
        probe_device_flood(&server, engine);
        probe_byte_by_byte_body(&server, engine);
        probe_dripped_body(&server, engine);
        let rss_after = procfs::rss_bytes(Some(server.pid())).unwrap();
        assert!(
            rss_after < rss_before + RSS_BOUND_BYTES,
            "{engine}: RSS {rss_before} -> {rss_after}"
        );
        assert!(
            fleet.wait().unwrap().success(),
            "{engine}: the fleet failed"
        );
        let report: WorkerReport =
            serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
        let counters = &report.counters;
        assert_every_notification_delivered(counters, 100, engine);
        println!(
            "{engine}: 7 probes, server RSS {} -> {} MiB, notifications sent {} delivered {} lost {}",
            rss_before >> 20,
            rss_after >> 20,
            counters.notifications_sent,
            counters.notifications_delivered,
            counters.notifications_lost
        );
        // Still serving after all of it.
        let mut client = server.client("user91", "after");
        assert_eq!(client.options().status, 200, "{engine}");
    }
}
