//! The reference server as a device sees it: a real `pingfleet serve` process per test on
//! ports it picked, driven over real sockets. Every behaviour is checked on both engines.

use std::time::{Duration, Instant};

use pingfleet::eas::commands::folder_sync::{FolderSyncRequest, FolderSyncResponse};
use pingfleet::eas::commands::ping::{PingFolder, PingRequest, PingResponse};
use pingfleet::eas::commands::provision::{PolicyRequest, ProvisionRequest, ProvisionResponse};
use pingfleet::eas::commands::settings::{DeviceInformation, SettingsRequest, SettingsResponse};
use pingfleet::eas::commands::sync::{
    SyncCollectionRequest, SyncCommand, SyncRequest, SyncResponse,
};
use pingfleet::eas::request::{Base64Fields, Command, EasQuery, QueryForm};
use pingfleet::eas::{ProtocolVersion, WbxmlBody};

use crate::eas_client::{Client, Server, ENGINES, PASSWORD};

const PARKED: &str = "pingfleet_parked_pings";
const SECOND: Duration = Duration::from_secs(1);

fn ping(interval: Option<u32>, folders: &[&str]) -> Vec<u8> {
    PingRequest {
        heartbeat_interval_s: interval,
        folders: folders
            .iter()
            .map(|id| PingFolder::new(*id, "Email"))
            .collect(),
    }
    .encode()
}

fn sync_request(key: &str, folder: &str) -> Vec<u8> {
    SyncRequest {
        collections: vec![SyncCollectionRequest {
            sync_key: key.into(),
            collection_id: folder.into(),
            get_changes: (key != "0").then_some(true),
            window_size: Some(2),
            ..SyncCollectionRequest::default()
        }],
    }
    .encode()
}

/// FolderSync from 0 and the Inbox's first Sync; returns the Inbox sync key.
fn bootstrap(client: &mut Client) -> String {
    let body = FolderSyncRequest {
        sync_key: "0".into(),
    }
    .encode();
    let folders: FolderSyncResponse = client.post("FolderSync", &body).eas();
    assert_eq!((folders.status, folders.changes.len()), (1, 9));
    let sync: SyncResponse = client.post("Sync", &sync_request("0", "5")).eas();
    let collection = &sync.collections[0];
    assert_eq!(collection.status, 1);
    assert!(collection.commands.is_empty());
    collection.sync_key.clone()
}

/// Sends a Ping and returns the response on another thread's schedule.
fn ping_in_background(
    mut client: Client,
    body: Vec<u8>,
) -> std::thread::JoinHandle<(PingResponse, Duration)> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let response: PingResponse = client.post("Ping", &body).eas();
        (response, started.elapsed())
    })
}

#[test]
fn the_whole_device_bootstrap() {
    for engine in ENGINES {
        let server = Server::start(engine, &[]);
        let mut client = server.client("user1", "dev1");
        let options = client.options();
        assert_eq!(options.status, 200, "{engine}");
        assert!(options
            .header("MS-ASProtocolVersions")
            .unwrap()
            .contains("14.1"));
        assert!(options
            .header("MS-ASProtocolCommands")
            .unwrap()
            .contains("Ping"));
        assert!(options.header("MS-Server-ActiveSync").is_some());

        let phase_one = ProvisionRequest {
            device_information: Some(DeviceInformation {
                model: Some("test".into()),
                ..DeviceInformation::default()
            }),
            policy: Some(PolicyRequest::phase_one()),
            remote_wipe_status: None,
        };
        let first: ProvisionResponse = client.post("Provision", &phase_one.encode()).eas();
        let policy = first.policy.unwrap();
        assert_eq!(
            (first.status, policy.status, first.device_information_status),
            (1, 1, Some(1))
        );
        assert!(policy.document.is_some_and(|doc| !doc.is_empty()));
        let temporary = policy.policy_key.unwrap();
        let phase_two = ProvisionRequest {
            policy: Some(PolicyRequest::acknowledge(temporary.clone())),
            ..ProvisionRequest::default()
        };
        let second: ProvisionResponse = client.post("Provision", &phase_two.encode()).eas();
        let final_key = second.policy.unwrap().policy_key.unwrap();
        assert_ne!(final_key, temporary, "{engine}");
        client.policy_key = Some(final_key);

        let settings = SettingsRequest {
            device_information: DeviceInformation::default(),
        };
        let answer: SettingsResponse = client.post("Settings", &settings.encode()).eas();
        assert_eq!(answer.status, 1);

        let key = bootstrap(&mut client);
        server.notify("user=user1 folder=5 count=3 size=300 seq=41");
        assert!(server.wait_metric("pingfleet_notifications_applied_total", 1.0, 5 * SECOND));
        let page: SyncResponse = client.post("Sync", &sync_request(&key, "5")).eas();
        let collection = &page.collections[0];
        assert!(collection.more_available, "{engine}: window 2 of 3 items");
        assert_eq!(collection.commands.len(), 2);
        let SyncCommand::Add { server_id, email } = &collection.commands[0] else {
            panic!("{engine}: expected an Add");
        };
        assert_eq!(server_id, "5:1");
        assert_eq!(email.subject.as_deref(), Some("pingfleet seq=41"));
        assert_eq!(email.body.as_ref().unwrap().estimated_data_size, Some(300));
        assert!(
            email.conversation_id.is_some(),
            "14.1 items carry a ConversationId"
        );
        let rest: SyncResponse = client
            .post("Sync", &sync_request(&collection.sync_key, "5"))
            .eas();
        assert_eq!(rest.collections[0].commands.len(), 1);
        assert!(!rest.collections[0].more_available);
    }
}

#[test]
fn a_parked_ping_wakes_on_a_notification() {
    for engine in ENGINES {
        let server = Server::start(engine, &[]);
        let mut client = server.client("user2", "dev2");
        bootstrap(&mut client);
        let waiting = ping_in_background(client, ping(Some(600), &["5"]));
        assert!(
            server.wait_metric(PARKED, 1.0, 5 * SECOND),
            "{engine}: not parked"
        );
        server.notify("user=user2 folder=5");
        let (response, _) = waiting.join().unwrap();
        assert_eq!(
            response,
            PingResponse::Changes {
                folders: vec!["5".into()]
            },
            "{engine}"
        );
        assert!(server.wait_metric(PARKED, 0.0, 5 * SECOND));
        assert_eq!(server.metric("pingfleet_wakeups_total"), 1.0);
        assert_eq!(
            server.metric("pingfleet_wake_latency_microseconds_count"),
            1.0
        );
    }
}

#[test]
fn heartbeat_expiry_then_the_empty_ping_reuses_the_cache() {
    for engine in ENGINES {
        let server = Server::start(engine, &["--min-heartbeat", "1"]);
        let mut client = server.client("user3", "dev3");
        bootstrap(&mut client);
        let started = Instant::now();
        let expired: PingResponse = client.post("Ping", &ping(Some(1), &["5"])).eas();
        assert_eq!(expired, PingResponse::Expired, "{engine}");
        assert!(
            started.elapsed() >= SECOND,
            "{engine}: answered before the heartbeat"
        );
        let waiting = ping_in_background(client, Vec::new());
        assert!(
            server.wait_metric(PARKED, 1.0, 5 * SECOND),
            "{engine}: empty Ping not parked"
        );
        server.notify("user=user3 folder=5");
        let (response, _) = waiting.join().unwrap();
        assert_eq!(
            response,
            PingResponse::Changes {
                folders: vec!["5".into()]
            }
        );
    }
}

#[test]
fn every_immediate_ping_status() {
    for engine in ENGINES {
        let server = Server::start(engine, &["--max-folders", "2"]);
        let mut fresh = server.client("user4", "dev4");
        let status3: PingResponse = fresh.post("Ping", b"").eas();
        assert_eq!(status3, PingResponse::MissingParameters, "{engine}");
        let status7: PingResponse = fresh.post("Ping", &ping(Some(600), &["5"])).eas();
        assert_eq!(
            status7,
            PingResponse::FolderSyncRequired,
            "{engine}: never folder-synced"
        );
        bootstrap(&mut fresh);
        let status4: PingResponse = fresh.post("Ping", b"\x03\x01\x6a\x00\x45\x03").eas();
        assert_eq!(status4, PingResponse::SyntaxError);
        let status5: PingResponse = fresh.post("Ping", &ping(Some(10), &["5"])).eas();
        assert_eq!(
            status5,
            PingResponse::IntervalOutOfRange {
                heartbeat_interval_s: 60
            }
        );
        let status5_high: PingResponse = fresh.post("Ping", &ping(Some(9999), &["5"])).eas();
        assert_eq!(
            status5_high,
            PingResponse::IntervalOutOfRange {
                heartbeat_interval_s: 3540
            }
        );
        let status6: PingResponse = fresh.post("Ping", &ping(Some(600), &["5", "1", "2"])).eas();
        assert_eq!(status6, PingResponse::TooManyFolders { max_folders: 2 });
        let unknown: PingResponse = fresh.post("Ping", &ping(Some(600), &["999"])).eas();
        assert_eq!(unknown, PingResponse::FolderSyncRequired);
    }
}

#[test]
fn a_hierarchy_change_answers_the_parked_ping_with_7() {
    for engine in ENGINES {
        let server = Server::start(engine, &[]);
        let mut client = server.client("user5", "dev5");
        bootstrap(&mut client);
        let waiting = ping_in_background(client, ping(Some(600), &["5"]));
        assert!(server.wait_metric(PARKED, 1.0, 5 * SECOND));
        server.notify("user=user5 folder=5 kind=hierarchy");
        let (response, _) = waiting.join().unwrap();
        assert_eq!(response, PingResponse::FolderSyncRequired, "{engine}");
        let mut again = server.client("user5", "dev5");
        let incremental: FolderSyncResponse = again
            .post(
                "FolderSync",
                &FolderSyncRequest {
                    sync_key: "1".into(),
                }
                .encode(),
            )
            .eas();
        assert_eq!(
            (incremental.status, incremental.changes.len()),
            (1, 1),
            "{engine}"
        );
        let stale: FolderSyncResponse = again
            .post(
                "FolderSync",
                &FolderSyncRequest {
                    sync_key: "9".into(),
                }
                .encode(),
            )
            .eas();
        assert_eq!(stale.status, 9, "{engine}: an unknown key is Status 9");
    }
}

#[test]
fn a_newer_ping_ends_the_older_one() {
    for engine in ENGINES {
        let server = Server::start(engine, &[]);
        let mut first = server.client("user6", "dev6");
        bootstrap(&mut first);
        let older = ping_in_background(first, ping(Some(600), &["5"]));
        assert!(server.wait_metric(PARKED, 1.0, 5 * SECOND));
        let newer = ping_in_background(server.client("user6", "dev6"), ping(Some(600), &["5"]));
        let (response, waited) = older.join().unwrap();
        assert_eq!(response, PingResponse::Expired, "{engine}");
        assert!(waited < Duration::from_secs(30));
        assert!(server.wait_metric(PARKED, 1.0, 5 * SECOND));
        server.notify("user=user6 folder=5");
        assert_eq!(
            newer.join().unwrap().0,
            PingResponse::Changes {
                folders: vec!["5".into()]
            }
        );
    }
}

#[test]
fn a_change_between_pings_is_not_lost() {
    for engine in ENGINES {
        let server = Server::start(engine, &[]);
        let mut client = server.client("user7", "dev7");
        let key = bootstrap(&mut client);
        server.notify("user=user7 folder=5 seq=5");
        assert!(server.wait_metric("pingfleet_notifications_applied_total", 1.0, 5 * SECOND));
        let started = Instant::now();
        let response: PingResponse = client.post("Ping", &ping(Some(600), &["5"])).eas();
        assert_eq!(
            response,
            PingResponse::Changes {
                folders: vec!["5".into()]
            },
            "{engine}"
        );
        assert!(started.elapsed() < 5 * SECOND);
        let synced: SyncResponse = client.post("Sync", &sync_request(&key, "5")).eas();
        assert_eq!(
            synced.collections[0].commands.len(),
            1,
            "{engine}: Status 2 promised an item"
        );
    }
}

#[test]
fn gzip_bad_auth_base64_and_http_errors() {
    for engine in ENGINES {
        let server = Server::start(engine, &[]);
        let mut client = server.client("user8", "dev8");
        client.accept_gzip = true;
        let body = FolderSyncRequest {
            sync_key: "0".into(),
        }
        .encode();
        let response = client.post("FolderSync", &body);
        assert_eq!(
            response.header("Content-Encoding"),
            Some("gzip"),
            "{engine}"
        );
        assert!(response.raw_body_len < response.body.len());
        assert_eq!(response.eas::<FolderSyncResponse>().changes.len(), 9);

        let mut intruder = server.client("user8", "dev8");
        intruder.password = "wrong".into();
        let denied = intruder.post("FolderSync", &body);
        assert_eq!(denied.status, 401, "{engine}");
        assert!(denied
            .header("WWW-Authenticate")
            .unwrap()
            .starts_with("Basic"));

        let mut base64 = server.client("user8", "dev8");
        let query = EasQuery {
            command: Command::FolderSync,
            user: Some("user8".into()),
            device_id: "dev8".into(),
            device_type: "SmartPhone".into(),
            params: Vec::new(),
            form: QueryForm::Base64(Base64Fields {
                version: ProtocolVersion::V14_1,
                locale: 0x0409,
                policy_key: None,
            }),
        };
        base64.send_post(&query.to_target().unwrap(), &body, false);
        assert_eq!(
            base64.read_response().eas::<FolderSyncResponse>().status,
            1,
            "{engine}"
        );

        let garbage: FolderSyncResponse = client.post("FolderSync", b"not wbxml").eas();
        assert_eq!(garbage.status, 10, "{engine}: malformed FolderSync");
        assert_eq!(client.post("MoveItems", &body).status, 501);
        client.send_post("/owa?Cmd=Ping", b"", true);
        assert_eq!(client.read_response().status, 404);
        // A body from nobody is refused on its head, whatever its size, unread.
        let head = "POST /Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=a&DeviceType=b \
                    HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n";
        let mut anonymous = server.client("user8", "dev8");
        anonymous.send_raw(format!("{head}\r\n").as_bytes());
        assert_eq!(
            anonymous.read_response().status,
            401,
            "{engine}: no credentials"
        );
        let mut huge = server.client("user8", "dev8");
        let credentials = pingfleet::eas::headers::BasicCredentials::new("user8", PASSWORD);
        let authorized = format!("{head}Authorization: {}\r\n\r\n", credentials.to_header());
        huge.send_raw(authorized.as_bytes());
        assert_eq!(huge.read_response().status, 413, "{engine}: oversized body");
    }
}

#[test]
fn a_slow_head_is_cut_off() {
    for engine in ENGINES {
        let server = Server::start(engine, &["--head-timeout", "1s"]);
        let mut client = server.client("user9", "dev9");
        client.send_raw(b"POST /Microsoft-Server-ActiveSync?Cmd=Ping HTTP/1.1\r\nHost: x\r\n");
        let started = Instant::now();
        let answer = client.try_read_response();
        assert!(
            started.elapsed() < 5 * SECOND,
            "{engine}: slow head kept open"
        );
        if let Some(response) = answer {
            assert_eq!(response.status, 408, "{engine}");
        }
    }
}

#[test]
fn a_client_that_vanishes_while_parked() {
    for engine in ENGINES {
        let server = Server::start(engine, &[]);
        let mut client = server.client("user10", "dev10");
        bootstrap(&mut client);
        client.send_post(
            "/Microsoft-Server-ActiveSync?Cmd=Ping&User=user10&DeviceId=dev10&DeviceType=SP",
            &ping(Some(600), &["5"]),
            true,
        );
        assert!(server.wait_metric(PARKED, 1.0, 5 * SECOND));
        drop(client);
        // Both engines see the FIN: lean through its one-byte read, hyper 1.x by
        // dropping the service future when its connection reads EOF.
        assert!(
            server.wait_metric(PARKED, 0.0, SECOND),
            "{engine}: a vanished client's Ping must be released within 1 s"
        );
        assert_eq!(
            server.metric("pingfleet_parked_released_on_disconnect_total"),
            1.0
        );
    }
}

#[test]
fn graceful_shutdown_answers_parked_pings() {
    for engine in ENGINES {
        let server = Server::start(engine, &[]);
        let mut client = server.client("user11", "dev11");
        bootstrap(&mut client);
        let waiting = ping_in_background(client, ping(Some(600), &["5"]));
        assert!(server.wait_metric(PARKED, 1.0, 5 * SECOND));
        let status = server.terminate(Duration::from_secs(8));
        assert!(
            status.is_some_and(|status| status.success()),
            "{engine}: {status:?}"
        );
        assert_eq!(waiting.join().unwrap().0, PingResponse::Expired, "{engine}");
    }
}

#[test]
fn partitions_redirect_and_provisioning_is_enforced() {
    for engine in ENGINES {
        let server = Server::start(
            engine,
            &[
                "--partition",
                "0/2",
                "--partition-url",
                "https://a/Microsoft-Server-ActiveSync",
                "--partition-url",
                "https://b/Microsoft-Server-ActiveSync",
                "--require-provision",
            ],
        );
        let foreign = (0..100)
            .map(|index| format!("user{index}"))
            .find(|user| pingfleet::partition::partition_of(user, 2) == 1)
            .unwrap();
        let local = (0..100)
            .map(|index| format!("user{index}"))
            .find(|user| pingfleet::partition::partition_of(user, 2) == 0)
            .unwrap();
        let mut elsewhere = server.client(&foreign, "d");
        let redirect = elsewhere.post(
            "FolderSync",
            &FolderSyncRequest {
                sync_key: "0".into(),
            }
            .encode(),
        );
        assert_eq!(redirect.status, 451, "{engine}");
        assert_eq!(
            redirect.header("X-MS-Location"),
            Some("https://b/Microsoft-Server-ActiveSync")
        );

        let body = FolderSyncRequest {
            sync_key: "0".into(),
        }
        .encode();
        let mut unprovisioned = server.client(&local, "d");
        let status: FolderSyncResponse = unprovisioned.post("FolderSync", &body).eas();
        assert_eq!(status.status, 142, "{engine}: 14.1 gets Status 142");
        unprovisioned.policy_key = Some("12345".into());
        let stale: FolderSyncResponse = unprovisioned.post("FolderSync", &body).eas();
        assert_eq!(stale.status, 144, "{engine}: a wrong key gets Status 144");
        unprovisioned.version = "12.1".into();
        assert_eq!(
            unprovisioned.post("FolderSync", &body).status,
            449,
            "{engine}"
        );
    }
}

#[test]
fn tls_bootstrap_and_wake_on_both_engines() {
    for engine in ENGINES {
        let server = Server::start(engine, &["--tls"]);
        assert!(server.cert.is_some());
        let mut client = server.client("user12", "dev12");
        bootstrap(&mut client);
        let waiting = ping_in_background(client, ping(Some(600), &["5"]));
        assert!(server.wait_metric(PARKED, 1.0, 5 * SECOND), "{engine}");
        server.notify("user=user12 folder=5");
        assert_eq!(
            waiting.join().unwrap().0,
            PingResponse::Changes {
                folders: vec!["5".into()]
            }
        );
    }
}

#[test]
fn bad_notifications_are_counted_and_harmless() {
    let server = Server::start("lean", &["--max-connections", "1"]);
    for datagram in [
        "garbage",
        "user=user1",
        "user=nobody folder=5",
        "user=user1 folder=77",
        "\u{0}",
    ] {
        server.notify(datagram);
    }
    assert!(server.wait_metric("pingfleet_notifications_received_total", 5.0, 5 * SECOND));
    assert_eq!(
        server.metric("pingfleet_notifications_malformed_total"),
        3.0
    );
    assert_eq!(
        server.metric("pingfleet_notifications_unknown_user_total"),
        1.0
    );
    assert_eq!(
        server.metric("pingfleet_notifications_unknown_folder_total"),
        1.0
    );
    let mut first = server.client("user1", "d");
    assert_eq!(first.options().status, 200, "the server survived");
    let mut second = server.client("user1", "d");
    let refused = second.try_read_response().expect("a 503");
    assert_eq!(refused.status, 503);
    assert!(refused.header("Retry-After").is_some());
}

#[test]
fn server_responses_decode_with_libwbxml() {
    if !crate::interop::tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for engine in ENGINES {
        let server = Server::start(engine, &[]);
        let mut client = server.client("user13", "dev13");
        let mut bodies = Vec::new();
        let folders = client.post(
            "FolderSync",
            &FolderSyncRequest {
                sync_key: "0".into(),
            }
            .encode(),
        );
        bodies.push(folders.body);
        let first = client.post("Sync", &sync_request("0", "5"));
        let key = first.eas::<SyncResponse>().collections[0].sync_key.clone();
        bodies.push(first.body);
        server.notify("user=user13 folder=5 count=2 seq=9");
        assert!(server.wait_metric("pingfleet_notifications_applied_total", 1.0, 5 * SECOND));
        bodies.push(client.post("Ping", &ping(Some(600), &["5"])).body);
        bodies.push(client.post("Sync", &sync_request(&key, "5")).body);
        let phase_one = ProvisionRequest {
            policy: Some(PolicyRequest::phase_one()),
            ..ProvisionRequest::default()
        };
        bodies.push(client.post("Provision", &phase_one.encode()).body);
        for body in bodies {
            let ours = pingfleet::eas::wbxml::decode(&body).unwrap();
            assert_eq!(
                crate::interop::libwbxml_decode(dir.path(), &body),
                ours,
                "{engine}"
            );
        }
    }
}
