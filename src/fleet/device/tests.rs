//! The device state machine's tests: each exchange driven by hand, without sockets or a
//! runtime.

use super::*;
use crate::eas::commands::folder_sync::{
    Folder, FolderChange, FolderSyncRequest, FolderSyncResponse,
};
use crate::eas::commands::ping::{PingFolder, PingRequest, PingResponse};
use crate::eas::commands::provision::{
    PolicyResponse, ProvisionRequest, ProvisionResponse, POLICY_TYPE_WBXML,
};
use crate::eas::commands::sync::{
    Email, SyncCollectionResponse, SyncCommand, SyncRequest, SyncResponse,
};
use crate::eas::request::{Command, EasQuery, ACTIVESYNC_PATH};

/// Where the devices of these tests send (host, path): the standard path.
const ENDPOINT: (&str, &str) = ("h", ACTIVESYNC_PATH);
use crate::eas::WbxmlBody;

/// A request the device sent: its command and body.
pub(super) fn sent(action: &Action) -> (String, Vec<u8>, Instant) {
    let Action::Send { bytes, deadline } = action else {
        panic!("expected a Send, got {action:?}");
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head) = request.parse(bytes).unwrap() else {
        panic!("incomplete request");
    };
    let path = request.path.unwrap();
    let command = path
        .split("Cmd=")
        .nth(1)
        .map_or("Options".to_owned(), |rest| {
            rest.split('&').next().unwrap().to_owned()
        });
    (command, bytes[head..].to_vec(), *deadline)
}

pub(super) fn ok(body: Vec<u8>) -> HttpResponse {
    HttpResponse {
        status: 200,
        body,
        ..HttpResponse::default()
    }
}

fn provision_answer(key: &str) -> HttpResponse {
    ok(ProvisionResponse {
        status: 1,
        device_information_status: None,
        policy: Some(PolicyResponse {
            policy_type: POLICY_TYPE_WBXML.into(),
            status: 1,
            policy_key: Some(key.into()),
            document: None,
        }),
        remote_wipe: false,
    }
    .encode())
}

fn sync_answer(key: &str, more: bool, seqs: &[u64]) -> HttpResponse {
    sync_answer_in("5", key, more, seqs)
}

pub(super) fn sync_answer_in(folder: &str, key: &str, more: bool, seqs: &[u64]) -> HttpResponse {
    let commands = seqs
        .iter()
        .map(|seq| SyncCommand::Add {
            server_id: format!("5:{seq}"),
            email: Email {
                subject: Some(format!("pingfleet seq={seq}")),
                ..Email::default()
            },
        })
        .collect();
    ok(SyncResponse {
        status: None,
        collections: vec![SyncCollectionResponse {
            sync_key: key.into(),
            collection_id: folder.into(),
            status: 1,
            more_available: more,
            commands,
        }],
    }
    .encode())
}

/// A full FolderSync response listing `(id, type)` folders.
fn hierarchy(folders: &[(&str, u32)]) -> FolderSyncResponse {
    FolderSyncResponse {
        status: 1,
        sync_key: Some("1".into()),
        changes: folders
            .iter()
            .map(|(id, folder_type)| {
                FolderChange::Add(Folder {
                    server_id: (*id).into(),
                    parent_id: "0".into(),
                    display_name: (*id).into(),
                    folder_type: *folder_type,
                })
            })
            .collect(),
    }
}

/// A device bootstrapped without Provision up to its FolderSync request.
fn at_folder_sync(profile: Profile, stats: &mut FleetStats, now: Instant) -> Device {
    let profile = profile.with(|s| s.provision = false);
    let mut device = Device::new("user1", "pw", ENDPOINT, Arc::new(profile), 1, 1);
    device.start(now, stats);
    let options = HttpResponse {
        status: 200,
        protocol_versions: Some("14.1".into()),
        ..HttpResponse::default()
    };
    assert_eq!(
        sent(&device.on_response(options, now, stats)).0,
        "FolderSync"
    );
    device
}

#[test]
fn the_inbox_is_found_by_type_in_a_hierarchy_of_random_ids() {
    let now = Instant::now();
    let mut stats = FleetStats::default();
    let mut device = at_folder_sync(Profile::default(), &mut stats, now);
    let folders = hierarchy(&[("0c5a3f1e", 3), ("dc2914e4", 2)]);
    let (command, body, _) = sent(&device.on_response(ok(folders.encode()), now, &mut stats));
    assert_eq!(command, "Sync");
    let sync = SyncRequest::decode(&body).unwrap();
    assert_eq!(sync.collections[0].collection_id, "dc2914e4");
    assert_eq!(device.notified_folder(), "dc2914e4");
    // The OPTIONS answer named versions but neither the server nor its commands.
    assert_eq!(stats.counters.advertised_versions["14.1"], 1);
    assert_eq!(stats.counters.server_versions["(not sent)"], 1);
    assert_eq!(stats.counters.advertised_commands["(not sent)"], 1);
    assert_eq!(device.setback(), None);
}

#[test]
fn what_servers_say_of_themselves_is_counted_within_bounds() {
    let mut stats = FleetStats::default();
    for index in 0..40 {
        let mut device = Device::new("u", "pw", ENDPOINT, Arc::new(Profile::default()), 1, 1);
        device.start(Instant::now(), &mut stats);
        let options = HttpResponse {
            status: 200,
            protocol_versions: Some("14.0,14.1".into()),
            server_version: Some(format!("14.00.{index}-{}", "9".repeat(500))),
            protocol_commands: Some("Sync,Ping".into()),
            ..HttpResponse::default()
        };
        device.on_response(options, Instant::now(), &mut stats);
    }
    let seen = &stats.counters.server_versions;
    assert_eq!(seen.len(), crate::fleet::stats::MAX_SEEN_VALUES + 1);
    assert_eq!(seen["(other values)"], 40 - 16);
    assert!(seen.keys().all(|value| value.len() <= 120));
    assert_eq!(stats.counters.advertised_commands["Sync,Ping"], 40);
    assert_eq!(stats.counters.http_status_by_command["Options 200"], 40);
}

#[test]
fn repeated_resyncs_are_counted_and_back_off_longer_each_time() {
    let now = Instant::now();
    let mut stats = FleetStats::default();
    let mut device = at_folder_sync(Profile::default(), &mut stats, now);
    let folders = ok(hierarchy(&[("5", 2)]).encode());
    let changed = ok(SyncResponse {
        status: Some(12),
        collections: Vec::new(),
    }
    .encode());
    let mut waits = Vec::new();
    let mut action = device.on_response(folders.clone(), now, &mut stats);
    for _ in 0..5 {
        // The device syncs, the server says the hierarchy changed ...
        assert_eq!(sent(&action).0, "Sync");
        action = device.on_response(changed.clone(), now, &mut stats);
        // ... and the device asks for the hierarchy again: at once the first time,
        // after a wait each time after.
        if let Action::Reconnect { at } = action {
            waits.push(at - now);
            action = device.on_reconnected(now, &mut stats);
        }
        assert_eq!(sent(&action).0, "FolderSync");
        action = device.on_response(folders.clone(), now, &mut stats);
    }
    assert_eq!(stats.counters.resyncs["Sync status 12"], 5);
    assert_eq!(device.setback(), Some("Sync status 12"));
    assert_eq!(stats.counters.http_status_by_command["Sync 200"], 5);
    assert_eq!(stats.counters.http_status_by_command["FolderSync 200"], 6);
    assert_eq!(waits.len(), 4, "{waits:?}");
    assert!(waits[0] >= Duration::from_millis(500), "{waits:?}");
    assert!(waits[3] >= Duration::from_secs(4), "{waits:?}");
    assert!(stats.counters.errors.is_empty());
}

#[test]
fn a_pushed_folder_the_server_lacks_stops_the_device_with_an_error() {
    let now = Instant::now();
    let mut stats = FleetStats::default();
    let profile = Profile::default().with(|s| s.folders = vec!["5".into()]);
    let mut device = at_folder_sync(profile, &mut stats, now);
    let folders = hierarchy(&[("dc2914e4", 2)]);
    let action = device.on_response(ok(folders.encode()), now, &mut stats);
    assert_eq!(action, Action::Stop);
    assert_eq!(device.state(), State::Stopped);
    assert_eq!(stats.counters.devices_stopped, 1);
    assert_eq!(
        stats.counters.errors["pushed folder \"5\" is not in the server's hierarchy"],
        1
    );
}

fn ping_answer(response: PingResponse) -> HttpResponse {
    ok(response.encode())
}

/// A device driven through the whole bootstrap to its first parked Ping.
pub(super) fn parked_device(
    profile: Profile,
    stats: &mut FleetStats,
    now: Instant,
) -> (Device, Action) {
    // Provisioning before being asked, as some clients do: the whole bootstrap.
    let profile = profile.with(|s| s.provision = true);
    let mut device = Device::new("user1", "pw", ENDPOINT, Arc::new(profile), 7, 1);
    let action = device.start(now, stats);
    assert_eq!(sent(&action).0, "Options");
    let options = HttpResponse {
        status: 200,
        protocol_versions: Some("12.1,14.0,14.1,16.0,16.1".into()),
        ..HttpResponse::default()
    };
    let action = device.on_response(options, now, stats);
    assert_eq!(sent(&action).0, "Provision");
    let action = device.on_response(provision_answer("111"), now, stats);
    let (command, body, _) = sent(&action);
    assert_eq!(command, "Provision");
    let ack = ProvisionRequest::decode(&body).unwrap().policy.unwrap();
    assert_eq!(ack.policy_key.as_deref(), Some("111"));
    let action = device.on_response(provision_answer("222"), now, stats);
    assert_eq!(sent(&action).0, "FolderSync");
    let folders = hierarchy(&[("5", 2), ("1", 8)]);
    let mut action = device.on_response(ok(folders.encode()), now, stats);
    let (command, body, _) = sent(&action);
    assert_eq!(command, "Sync");
    assert_eq!(
        SyncRequest::decode(&body).unwrap().collections[0].sync_key,
        "0"
    );
    let mut key = 1;
    while device.state() == State::ExpectSync {
        let (command, body, _) = sent(&action);
        assert_eq!(
            command, "Sync",
            "key 0 is followed by a Sync with the new key"
        );
        let request = SyncRequest::decode(&body).unwrap();
        let folder = request.collections[0].collection_id.clone();
        action = device.on_response(
            sync_answer_in(&folder, &key.to_string(), false, &[]),
            now,
            stats,
        );
        key += 1;
    }
    // Parked, or (a device that does not push) idle.
    assert_eq!(device.state(), device.rest_state());
    (device, action)
}

#[test]
fn bootstrap_ends_in_a_full_ping_with_the_heartbeat_deadline() {
    let mut stats = FleetStats::default();
    let now = Instant::now();
    let (device, action) = parked_device(Profile::default(), &mut stats, now);
    let (command, body, deadline) = sent(&action);
    assert_eq!(command, "Ping");
    let ping = PingRequest::decode(&body).unwrap();
    assert_eq!(ping.heartbeat_interval_s, Some(480));
    assert_eq!(ping.folders, vec![PingFolder::new("5", "Email")]);
    assert_eq!(deadline, now + Duration::from_secs(485));
    assert_eq!(device.heartbeat(), Duration::from_secs(480));
    assert_eq!(stats.counters.requests["Provision"], 2);
}

#[test]
fn ping_statuses() {
    let now = Instant::now();
    let mut stats = FleetStats::default();
    let profile = Profile::default().with(|s| s.empty_reping = true);
    let (mut device, _) = parked_device(profile, &mut stats, now);
    // 1: ping again; the server has it cached, so the body is empty.
    let (command, body, _) =
        sent(&device.on_response(ping_answer(PingResponse::Expired), now, &mut stats));
    assert_eq!((command.as_str(), body.len()), ("Ping", 0));
    // 3: the full body again.
    let action = device.on_response(
        ping_answer(PingResponse::MissingParameters),
        now,
        &mut stats,
    );
    assert!(PingRequest::decode(&sent(&action).1).is_ok());
    // 5: adopt the server's interval.
    let answer = PingResponse::IntervalOutOfRange {
        heartbeat_interval_s: 60,
    };
    let action = device.on_response(ping_answer(answer), now, &mut stats);
    assert_eq!(
        PingRequest::decode(&sent(&action).1)
            .unwrap()
            .heartbeat_interval_s,
        Some(60)
    );
    // 7: FolderSync with the current key.
    let action = device.on_response(
        ping_answer(PingResponse::FolderSyncRequired),
        now,
        &mut stats,
    );
    let (command, body, _) = sent(&action);
    assert_eq!(command, "FolderSync");
    assert_eq!(FolderSyncRequest::decode(&body).unwrap().sync_key, "1");
    let unchanged = FolderSyncResponse {
        status: 1,
        sync_key: Some("2".into()),
        changes: Vec::new(),
    };
    assert_eq!(
        sent(&device.on_response(ok(unchanged.encode()), now, &mut stats)).0,
        "Ping"
    );
    // 8 and common codes: back off.
    let action = device.on_response(ping_answer(PingResponse::ServerError), now, &mut stats);
    assert!(matches!(action, Action::Reconnect { at } if at > now));
    assert_eq!(sent(&device.on_reconnected(now, &mut stats)).0, "Ping");
    assert_eq!(stats.counters.ping_status["1"], 1);
    assert_eq!(stats.counters.errors["Ping server error"], 1);
}

#[test]
fn http_statuses() {
    let now = Instant::now();
    let mut stats = FleetStats::default();
    let (mut device, _) = parked_device(Profile::default(), &mut stats, now);
    let busy = HttpResponse {
        status: 503,
        retry_after_s: Some(30),
        ..HttpResponse::default()
    };
    assert_eq!(
        device.on_response(busy, now, &mut stats),
        Action::Reconnect {
            at: now + Duration::from_secs(30)
        }
    );
    let moved = HttpResponse {
        status: 451,
        location: Some("https://b/x".into()),
        ..HttpResponse::default()
    };
    assert_eq!(
        device.on_response(moved, now, &mut stats),
        Action::Redirect {
            location: "https://b/x".into(),
            at: now
        }
    );
    let provision = HttpResponse {
        status: 449,
        ..HttpResponse::default()
    };
    assert_eq!(
        sent(&device.on_response(provision, now, &mut stats)).0,
        "Provision"
    );
    let refused = HttpResponse {
        status: 401,
        ..HttpResponse::default()
    };
    assert_eq!(device.on_response(refused, now, &mut stats), Action::Stop);
    assert_eq!(device.state(), State::Stopped);
    assert_eq!(stats.counters.devices_stopped, 1);
}

#[test]
fn coalesced_notifications_each_count_from_their_own_plan() {
    let start = Instant::now();
    let mut stats = FleetStats::default();
    let (mut device, _) = parked_device(Profile::default(), &mut stats, start);
    device.notification_planned(1, "5", start);
    device.notification_planned(2, "5", start + Duration::from_millis(5));
    device.notification_planned(3, "1", start);
    let woken_at = start + Duration::from_millis(10);
    let changes = PingResponse::Changes {
        folders: vec!["5".into()],
    };
    let action = device.on_response(ping_answer(changes), woken_at, &mut stats);
    assert_eq!(sent(&action).0, "Sync", "sync exactly the listed folder");
    assert_eq!(stats.counters.notifications_delivered, 2);
    assert_eq!(stats.wakeup.summary().count, 2);
    assert_eq!(stats.wakeup.histogram().max(), 10_007);
    let synced_at = woken_at + Duration::from_millis(2);
    let action = device.on_response(sync_answer("3", false, &[1, 2]), synced_at, &mut stats);
    assert_eq!(sent(&action).0, "Ping");
    assert_eq!(stats.mail_on_device.summary().count, 2);
    assert_eq!(
        device.undelivered(),
        0,
        "folder 1 is not pushed, so seq 3 was never pending"
    );
}

#[test]
fn a_wake_up_counts_from_its_departure_whichever_is_known_first() {
    let start = Instant::now();
    let mut stats = FleetStats::default();
    let (mut device, _) = parked_device(Profile::default(), &mut stats, start);
    let ms = Duration::from_millis;
    // Known before, as usual: planned at 0, handed to the engine early, left at 3.
    device.notification_planned(1, "5", start);
    device.notification_departed(1, start + ms(3), &mut stats);
    // A wake-up before a notification's plan is not its own.
    device.notification_planned(2, "5", start + ms(50));
    let changes = || PingResponse::Changes {
        folders: vec!["5".into()],
    };
    device.on_response(ping_answer(changes()), start + ms(10), &mut stats);
    assert_eq!(stats.wakeup.histogram().max(), 10_007);
    assert_eq!(stats.wakeup_from_departure.histogram().max(), 7_003);
    assert_eq!(device.undelivered(), 1, "seq 2 is still to come");
    // Known after the wake-up (the injector was slow to say): recorded then.
    device.on_response(sync_answer("3", false, &[1]), start + ms(12), &mut stats);
    device.on_response(ping_answer(changes()), start + ms(60), &mut stats);
    assert_eq!(stats.wakeup_from_departure.summary().count, 1);
    device.notification_departed(2, start + ms(55), &mut stats);
    assert_eq!(stats.wakeup_from_departure.summary().count, 2);
    assert_eq!(stats.wakeup_from_departure.histogram().min(), 5_000);
    // Unknown notifications are ignored.
    device.notification_departed(99, start, &mut stats);
    assert_eq!(stats.wakeup_from_departure.summary().count, 2);
}

#[test]
fn no_policy_for_this_client_is_carried_on_without_a_key() {
    let now = Instant::now();
    let mut stats = FleetStats::default();
    // A profile that provisions before being asked (SOGo never asks).
    let profile = Profile::default().with(|s| s.provision = true);
    let mut device = Device::new(
        "user1",
        "pw",
        ("h:20000", "/SOGo/Microsoft-Server-ActiveSync"),
        Arc::new(profile),
        7,
        1,
    );
    let Action::Send { bytes, .. } = device.start(now, &mut stats) else {
        panic!("OPTIONS first");
    };
    assert!(bytes.starts_with(b"OPTIONS /SOGo/Microsoft-Server-ActiveSync HTTP/1.1\r\n"));
    let options = HttpResponse {
        status: 200,
        protocol_versions: Some("2.5,12.0,12.1,14.0,14.1".into()),
        ..HttpResponse::default()
    };
    let action = device.on_response(options, now, &mut stats);
    assert_eq!(sent(&action).0, "Provision");
    let no_policy = ok(ProvisionResponse {
        status: 1,
        device_information_status: None,
        policy: Some(PolicyResponse {
            policy_type: POLICY_TYPE_WBXML.into(),
            status: 2,
            policy_key: None,
            document: None,
        }),
        remote_wipe: false,
    }
    .encode());
    let action = device.on_response(no_policy, now, &mut stats);
    let Action::Send { bytes, .. } = &action else {
        panic!("{action:?}");
    };
    let text = String::from_utf8_lossy(bytes);
    assert!(
        text.starts_with("POST /SOGo/Microsoft-Server-ActiveSync?Cmd=FolderSync&"),
        "{text}"
    );
    assert!(!text.contains("X-MS-PolicyKey"), "{text}");
    assert_eq!(stats.counters.provisioned_without_policy, 1);
    assert!(
        stats.counters.errors.is_empty(),
        "{:?}",
        stats.counters.errors
    );
}

#[test]
fn a_login_page_is_not_eas_and_the_device_stops() {
    let now = Instant::now();
    let mut stats = FleetStats::default();
    let mut device = Device::new("u", "pw", ENDPOINT, Arc::new(Profile::default()), 1, 1);
    device.start(now, &mut stats);
    let html = HttpResponse {
        status: 200,
        content_type: Some("text/html; charset=utf-8".into()),
        ..HttpResponse::default()
    };
    assert!(matches!(
        device.on_response(html, now, &mut stats),
        Action::Stop
    ));
    let error = stats.counters.errors.keys().next().unwrap();
    assert!(
        error.starts_with("not an EAS server: OPTIONS answered with text/html"),
        "{error}"
    );
}

#[test]
fn a_wake_for_nothing_is_an_empty_wake_of_its_kind() {
    let start = Instant::now();
    let mut stats = FleetStats::default();
    let profile = Profile {
        kind: "iphone".into(),
        ..Profile::default()
    };
    let (mut device, _) = parked_device(profile, &mut stats, start);
    let changes = || {
        ping_answer(PingResponse::Changes {
            folders: vec!["5".into()],
        })
    };
    let ms = Duration::from_millis;
    // Woken with nothing planned, and the Sync brings nothing: empty.
    device.on_response(changes(), start + ms(1), &mut stats);
    device.on_response(sync_answer("3", false, &[]), start + ms(2), &mut stats);
    assert_eq!(stats.counters.empty_wakes["iphone"], 1);
    // Woken with nothing planned, but the Sync brings an item: not empty.
    device.on_response(changes(), start + ms(3), &mut stats);
    device.on_response(sync_answer("4", false, &[77]), start + ms(4), &mut stats);
    // Woken for a planned change whose item does not come labelled: not empty.
    device.notification_planned(1, "5", start + ms(4));
    device.on_response(changes(), start + ms(5), &mut stats);
    device.on_response(sync_answer("5", false, &[]), start + ms(6), &mut stats);
    assert_eq!(stats.counters.empty_wakes["iphone"], 1);
    assert_eq!(stats.counters.notifications_delivered, 1);
}

#[test]
fn a_datagram_is_woken_only_after_its_departure_even_when_told_late() {
    let start = Instant::now();
    let mut stats = FleetStats::default();
    let (mut device, _) = parked_device(Profile::default(), &mut stats, start);
    let ms = Duration::from_millis;
    let changes = || {
        ping_answer(PingResponse::Changes {
            folders: vec!["5".into()],
        })
    };
    // Planned at 0; a Ping answered at 1 ms before its datagram left is not its.
    device.notified_folder_planned(1, start, true);
    device.on_response(changes(), start + ms(1), &mut stats);
    assert_eq!(stats.counters.notifications_delivered, 0);
    device.on_response(sync_answer("3", false, &[]), start + ms(2), &mut stats);
    device.notification_departed(1, start + ms(3), &mut stats);
    assert_eq!(stats.counters.notifications_delivered, 0);
    // Answered at 5 ms: seq 1 (left at 3 ms) is woken; seq 2, told only then that
    // it left at 4 ms, too.
    device.notified_folder_planned(2, start + ms(4), true);
    device.on_response(changes(), start + ms(5), &mut stats);
    assert_eq!(stats.counters.notifications_delivered, 1);
    device.notification_departed(2, start + ms(4), &mut stats);
    assert_eq!(stats.counters.notifications_delivered, 2);
    let (wakeup, departure) = (
        stats.wakeup.histogram(),
        stats.wakeup_from_departure.histogram(),
    );
    // (Within the histograms' resolution.)
    assert_eq!(wakeup.min(), 1_000);
    assert!(wakeup.max().abs_diff(5_000) < 10, "{}", wakeup.max());
    assert_eq!((departure.min(), departure.max()), (1_000, 2_000));
}

#[test]
fn a_change_while_not_parked_is_delivered_by_the_next_sync() {
    let start = Instant::now();
    let mut stats = FleetStats::default();
    let (mut device, _) = parked_device(Profile::default(), &mut stats, start);
    // Status 2 for another change; while the device syncs, a new notification is sent.
    device.notification_planned(1, "5", start);
    let changes = PingResponse::Changes {
        folders: vec!["5".into()],
    };
    device.on_response(
        ping_answer(changes),
        start + Duration::from_millis(1),
        &mut stats,
    );
    device.notification_planned(2, "5", start + Duration::from_millis(2));
    let synced_at = start + Duration::from_millis(3);
    device.on_response(sync_answer("3", false, &[1, 2]), synced_at, &mut stats);
    assert_eq!(
        stats.counters.notifications_delivered, 2,
        "the unparked change counts as delivered"
    );
    assert_eq!(stats.mail_on_device.summary().count, 2);
    assert_eq!(device.outstanding(), 0);
}

#[test]
fn syntax_errors_back_off_and_too_many_folders_shrink_the_ping() {
    let now = Instant::now();
    let mut stats = FleetStats::default();
    let profile = Profile::default().with(|s| s.folders = vec!["5".into(), "1".into()]);
    let (mut device, _) = parked_device(profile, &mut stats, now);
    let action = device.on_response(ping_answer(PingResponse::SyntaxError), now, &mut stats);
    assert!(matches!(action, Action::Reconnect { .. }));
    assert_eq!(stats.counters.errors["Ping syntax error"], 1);
    let answer = PingResponse::TooManyFolders { max_folders: 1 };
    let (_, body, _) = sent(&device.on_response(ping_answer(answer), now, &mut stats));
    assert_eq!(PingRequest::decode(&body).unwrap().folders.len(), 1);
}

#[test]
fn a_ping_that_dies_makes_its_mail_late_and_an_adaptive_device_fall_back() {
    let start = Instant::now();
    let mut stats = FleetStats::default();
    let profile = Profile::default()
        .with(|s| s.heartbeat_strategy = crate::fleet::heartbeat::HeartbeatStrategy::Adaptive);
    let (mut device, _) = parked_device(profile, &mut stats, start);
    assert_eq!(device.heartbeat(), Duration::from_secs(480));
    // 480 s held: raise to 540.
    let at = start + Duration::from_secs(480);
    let action = device.on_response(ping_answer(PingResponse::Expired), at, &mut stats);
    assert_eq!(sent(&action).0, "Ping");
    assert_eq!(device.heartbeat(), Duration::from_secs(540));
    // Mail is planned while the 540 s Ping is parked, but the path has dropped the
    // flow: the device learns only at its deadline, and falls back to 480.
    device.notification_planned(1, "5", at + Duration::from_secs(100));
    let deadline = at + Duration::from_secs(545);
    let action = device.on_disconnect(deadline, &mut stats, Some(DeviceError::DeadlinePassed));
    assert!(matches!(action, Action::Reconnect { .. }));
    assert_eq!(stats.counters.pings_died["deadline"], 1);
    assert_eq!(device.heartbeat(), Duration::from_secs(480));
    assert_eq!(device.heartbeat_state().settled_at(), Some(deadline));
    // The next Ping (on a new connection) is answered at once with the change.
    let again = deadline + Duration::from_secs(1);
    assert_eq!(sent(&device.on_reconnected(again, &mut stats)).0, "Ping");
    let changes = PingResponse::Changes {
        folders: vec!["5".into()],
    };
    let woken = again + Duration::from_millis(5);
    device.on_response(ping_answer(changes), woken, &mut stats);
    assert_eq!(stats.counters.notifications_late, 1);
    assert_eq!(stats.counters.notifications_on_time, 0);
    // Unreachable from the dead Ping's sending to the sending of the one answered.
    let unreachable = stats.unreachable.summary();
    assert_eq!(unreachable.count, 1);
    let expected = (again - at).as_micros() as u64;
    assert!(
        unreachable.max_us.abs_diff(expected) < expected / 500,
        "{unreachable:?}"
    );
    // A reset is a death too; a close by the device's own side (churn) is not.
    let (mut other, _) = parked_device(Profile::default(), &mut stats, start);
    other.on_disconnect(start, &mut stats, Some(DeviceError::ConnectionReset));
    assert_eq!(stats.counters.pings_died["reset"], 1);
    assert!(!stats.counters.errors.contains_key("connection reset"));
    let (mut churned, _) = parked_device(Profile::default(), &mut stats, start);
    churned.on_disconnect(start, &mut stats, None);
    assert_eq!(stats.counters.pings_died.values().sum::<u64>(), 2);
}

#[test]
fn a_gateways_504_and_a_close_by_the_other_end_kill_a_parked_ping() {
    let start = Instant::now();
    let mut stats = FleetStats::default();
    let (mut device, _) = parked_device(Profile::default(), &mut stats, start);
    device.notification_planned(1, "5", start + Duration::from_secs(30));
    // nginx's default read timeout answers the parked Ping with a 504 after 60 s: the
    // device pings again at once, on the same connection.
    let cut = start + Duration::from_secs(60);
    let gateway = HttpResponse {
        status: 504,
        ..HttpResponse::default()
    };
    let again = device.on_response(gateway, cut, &mut stats);
    assert_eq!(sent(&again).0, "Ping");
    assert_eq!(stats.counters.pings_died["http 504"], 1);
    assert!(
        stats.counters.errors.is_empty(),
        "{:?}",
        stats.counters.errors
    );
    let changes = PingResponse::Changes {
        folders: vec!["5".into()],
    };
    device.on_response(
        ping_answer(changes),
        cut + Duration::from_millis(5),
        &mut stats,
    );
    assert_eq!(
        stats.counters.notifications_late, 1,
        "mail after the cut is late"
    );
    // An old worker shutting down closes the parked Ping's connection: a death, not
    // an error, and the phone reconnects at once.
    let (mut closed, _) = parked_device(Profile::default(), &mut stats, start);
    let action = closed.on_disconnect(start, &mut stats, Some(DeviceError::ClosedByPeer));
    assert!(
        matches!(action, Action::Reconnect { at } if at == start),
        "{action:?}"
    );
    assert_eq!(stats.counters.pings_died["closed"], 1);
    assert!(
        stats.counters.errors.is_empty(),
        "{:?}",
        stats.counters.errors
    );
    // A 502 at once (the upstream refused) is an error with a back-off, not a death;
    // one after the Ping was parked (an old worker's hard stop) is a death.
    let (mut refused, _) = parked_device(Profile::default(), &mut stats, start);
    let bad = || HttpResponse {
        status: 502,
        ..HttpResponse::default()
    };
    let action = refused.on_response(bad(), start, &mut stats);
    assert!(
        matches!(action, Action::Reconnect { at } if at > start),
        "{action:?}"
    );
    assert_eq!(stats.counters.errors["http 502 from a gateway"], 1);
    let (mut stopped, _) = parked_device(Profile::default(), &mut stats, start);
    let later = start + Duration::from_secs(5);
    assert_eq!(
        sent(&stopped.on_response(bad(), later, &mut stats)).0,
        "Ping"
    );
    assert_eq!(stats.counters.pings_died["http 502"], 1);
}

#[test]
fn a_ping_killed_by_a_flush_is_not_an_idle_drop() {
    let start = Instant::now();
    let mut stats = FleetStats::default();
    let (mut device, _) = parked_device(Profile::default(), &mut stats, start);
    // The Ping was sent at `start`; the path is flushed 100 s later, and the device
    // hears of it by a reset a moment after.
    let flush = start + Duration::from_secs(100);
    device.path_flushed(flush);
    let reset = flush + Duration::from_millis(10);
    device.on_disconnect(reset, &mut stats, Some(DeviceError::ConnectionReset));
    let again = flush + Duration::from_secs(2);
    assert_eq!(sent(&device.on_reconnected(again, &mut stats)).0, "Ping");
    let answered = again + Duration::from_secs(480);
    device.on_response(ping_answer(PingResponse::Expired), answered, &mut stats);
    // Not an idle drop: the engine times the flush's cut-off (re-parking), and
    // `unreachable` (less the idle timeout) stays the idle drops'.
    assert_eq!(stats.unreachable.summary().count, 0);
    // A later idle death of a Ping sent after the flush is measured as before.
    let died = answered + Duration::from_secs(500);
    device.on_disconnect(died, &mut stats, Some(DeviceError::DeadlinePassed));
    let back = died + Duration::from_secs(1);
    device.on_reconnected(back, &mut stats);
    device.on_response(
        ping_answer(PingResponse::Expired),
        back + Duration::from_secs(480),
        &mut stats,
    );
    let unreachable = stats.unreachable.summary();
    assert_eq!(unreachable.count, 1);
    assert!(unreachable.max_us > 500_000_000, "{unreachable:?}");
}

#[test]
fn undelivered_notifications_are_lost_after_heartbeat_and_grace() {
    let start = Instant::now();
    let mut stats = FleetStats::default();
    let (mut device, _) = parked_device(Profile::default(), &mut stats, start);
    device.notification_planned(1, "5", start);
    let grace = Duration::from_secs(10);
    device.expire_lost(Some(start + Duration::from_secs(489)), grace, &mut stats);
    assert_eq!(stats.counters.notifications_lost, 0);
    device.expire_lost(Some(start + Duration::from_secs(491)), grace, &mut stats);
    assert_eq!(stats.counters.notifications_lost, 1);
    device.notification_planned(2, "5", start);
    device.expire_lost(None, grace, &mut stats);
    assert_eq!(
        stats.counters.notifications_lost, 2,
        "the end of the drain counts the rest"
    );
}

#[test]
fn reconnect_backoff_grows_with_jitter_and_is_capped() {
    let now = Instant::now();
    let mut stats = FleetStats::default();
    let (mut device, _) = parked_device(Profile::default(), &mut stats, now);
    let mut delays = Vec::new();
    for _ in 0..10 {
        let Action::Reconnect { at } = device.on_disconnect(now, &mut stats, None) else {
            panic!("expected a reconnect");
        };
        delays.push(at - now);
    }
    assert!(delays[0] >= Duration::from_millis(500) && delays[0] <= Duration::from_secs(1));
    assert!(delays[3] >= Duration::from_secs(4) && delays[3] <= Duration::from_secs(8));
    assert!(delays.iter().all(|delay| *delay <= Duration::from_secs(60)));
    assert_eq!(stats.counters.reconnects, 10);
    assert_eq!(sent(&device.on_reconnected(now, &mut stats)).0, "Ping");
}

#[test]
fn ping_per_connection_and_jittered_heartbeats() {
    let now = Instant::now();
    let mut stats = FleetStats::default();
    let profile = Profile::default().with(|s| {
        s.close_per_ping = true;
        s.heartbeat_jitter = crate::units::Span(Duration::from_secs(30));
    });
    let (device, action) = parked_device(profile.clone(), &mut stats, now);
    let Action::Send { bytes, .. } = action else {
        panic!()
    };
    assert!(String::from_utf8_lossy(&bytes).contains("Connection: close"));
    let window = Duration::from_secs(450)..=Duration::from_secs(510);
    assert!(window.contains(&device.heartbeat()));
    let other = Device::new("user2", "pw", ENDPOINT, Arc::new(profile.clone()), 8, 1);
    let again = Device::new("user1", "pw", ENDPOINT, Arc::new(profile.clone()), 7, 1);
    assert_eq!(
        again.heartbeat(),
        device.heartbeat(),
        "the same index and run seed make the same device"
    );
    assert_eq!(again.device_id(), device.device_id());
    assert!(window.contains(&other.heartbeat()));
    // The DeviceId does not depend on the run's seed; the jitter does.
    let reseeded = Device::new("user1", "pw", ENDPOINT, Arc::new(profile), 7, 2);
    assert_eq!(reseeded.device_id(), device.device_id());
    assert_ne!(device_id("pf", "user1", 7), device_id("pf", "user1", 8));
    let labelled = Profile::default().with(|s| s.device_id_prefix = "labA".into());
    let other_fleet = Device::new("user1", "pw", ENDPOINT, Arc::new(labelled), 7, 1);
    assert_eq!(
        other_fleet.device_id(),
        format!("labA{}", &device.device_id()[2..])
    );
}

#[test]
fn the_request_line_is_percent_encoded_by_the_protocol_core() {
    let profile = Arc::new(Profile::default().with(|s| s.provision = false));
    let mut device = Device::new("CORP\\alice smith", "pw", ENDPOINT, profile, 3, 1);
    let mut stats = FleetStats::default();
    let now = Instant::now();
    device.start(now, &mut stats);
    let options = HttpResponse {
        status: 200,
        protocol_versions: Some("14.1".into()),
        ..HttpResponse::default()
    };
    let Action::Send { bytes, .. } = device.on_response(options, now, &mut stats) else {
        panic!("expected FolderSync")
    };
    let line = String::from_utf8_lossy(&bytes);
    let line = line.lines().next().unwrap();
    let target = line.split(' ').nth(1).unwrap();
    assert!(target.contains("User=CORP%5Calice+smith"), "{line}");
    let query = EasQuery::parse_target(target).unwrap();
    assert_eq!(query.user.as_deref(), Some("CORP\\alice smith"));
    assert_eq!(query.command, Command::FolderSync);
    assert_eq!(query.device_id, device.device_id());
    assert_eq!(stats.counters.negotiated_versions["14.1"], 1);
}

#[test]
fn the_version_settled_on_is_counted_not_the_one_asked_for() {
    let profile =
        Arc::new(Profile::default().with(|s| s.protocol_version = ProtocolVersion::V16_1));
    let mut device = Device::new("user1", "pw", ENDPOINT, profile, 1, 1);
    let mut stats = FleetStats::default();
    let now = Instant::now();
    device.start(now, &mut stats);
    let options = HttpResponse {
        status: 200,
        protocol_versions: Some("2.5,12.1,14.0".into()),
        ..HttpResponse::default()
    };
    device.on_response(options, now, &mut stats);
    let counted: Vec<_> = stats.counters.negotiated_versions.keys().collect();
    assert_eq!(counted, ["14.0"]);
}

#[test]
fn a_fractional_heartbeat_is_kept_and_rounded_up_on_the_wire() {
    let profile =
        Profile::default().with(|s| s.heartbeat = crate::units::Span(Duration::from_millis(1500)));
    let mut stats = FleetStats::default();
    let now = Instant::now();
    let (device, action) = parked_device(profile, &mut stats, now);
    assert_eq!(device.heartbeat(), Duration::from_millis(1500));
    let (_, body, deadline) = sent(&action);
    let ping = PingRequest::decode(&body).unwrap();
    assert_eq!(ping.heartbeat_interval_s, Some(2));
    // The server holds it 2 s: the deadline counts from what went on the wire.
    assert_eq!(
        deadline - now,
        Duration::from_secs(2) + Profile::default().read_margin
    );
}

#[test]
fn mail_on_device_with_the_radio_adds_its_wake_up_only_when_the_radio_was_idle() {
    let start = Instant::now();
    let mut stats = FleetStats::default();
    let (mut device, _) = parked_device(Profile::default(), &mut stats, start);
    let at = |ms: u64| start + Duration::from_millis(ms);
    let deliver = |device: &mut Device, stats: &mut FleetStats, seq: u64, ms: u64| {
        device.notification_planned(seq, "5", at(ms));
        let changes = PingResponse::Changes {
            folders: vec!["5".into()],
        };
        device.on_response(ping_answer(changes), at(ms + 10), stats);
        device.on_response(sync_answer("3", false, &[seq]), at(ms + 12), stats);
    };
    // 100 s after parking the LTE radio is idle (its tail ended at 11.8 s): the Ping's
    // answer waited for a paging occasion (0 to 1.28 s) and the 0.2601 s promotion, on
    // top of the 12 ms measured.
    deliver(&mut device, &mut stats, 1, 100_000);
    let measured = stats.mail_on_device_world.histogram().max();
    let modelled = stats.mail_on_device_with_radio.histogram().max();
    let added = modelled.saturating_sub(measured);
    assert!((11_000..=13_000).contains(&measured), "{measured}");
    assert!((259_000..=1_541_000).contains(&added), "{added} us added");
    // 5 s later the radio is still in its tail: nothing is added.
    deliver(&mut device, &mut stats, 2, 105_000);
    assert_eq!(stats.mail_on_device_with_radio.summary().count, 2);
    let fastest = stats.mail_on_device_with_radio.histogram().min();
    assert!((11_000..=13_000).contains(&fastest), "{fastest}");
}
