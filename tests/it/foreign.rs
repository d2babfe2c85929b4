//! The fleet against servers that are not `pingfleet serve`: a fake EAS server that
//! behaves as Z-Push and Exchange do where ours does not. Every device gets its own
//! random folder ids (8 hex digits, as Z-Push gives them) and a Sync on an id it does
//! not know is Status 12; optionally every response carries `Connection: close`, the
//! server speaks only up to 14.0, or the hierarchy changes under the devices a number of
//! times. Wake-ups come from pingfleet's own datagrams, naming the folder by the id the
//! device was given, or, as on a real server, from mail that turns up in the users'
//! Maildirs (whoever put it there: an IMAP server, an SMTP server, an MDA).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pingfleet::eas::commands::folder_sync::{
    folder_type, Folder, FolderChange, FolderSyncRequest, FolderSyncResponse,
};
use pingfleet::eas::commands::ping::{PingRequest, PingResponse};
use pingfleet::eas::commands::provision::{PolicyResponse, ProvisionResponse, POLICY_TYPE_WBXML};
use pingfleet::eas::commands::sync::{
    Email, SyncCollectionResponse, SyncCommand, SyncRequest, SyncResponse,
};
use pingfleet::eas::headers::BasicCredentials;
use pingfleet::eas::request::EasQuery;
use pingfleet::eas::WbxmlBody;
use pingfleet::notification::{seq_in_subject, subject_for_seq, Notification};

use crate::fleet::{run_devices, run_devices_any};

/// How the fake departs from `pingfleet serve`.
#[derive(Debug, Clone, Copy, Default)]
struct Quirks {
    /// `Connection: close` on every response, and the connection closed after it.
    close_every_response: bool,
    /// Offer versions up to 14.0 only, and say so in `MS-Server-ActiveSync`.
    only_14_0: bool,
    /// The hierarchy changes (every folder gets a new id) on each of a device's first
    /// this many Syncs, answered Status 12; `u32::MAX` for always.
    hierarchy_changes: u32,
    /// Refuse (401) any password but `secret-` and the user name; otherwise anyone in.
    passwords: bool,
}

/// What the fake knows of one device.
#[derive(Debug, Default)]
struct DeviceState {
    /// Bumped by each hierarchy change; part of every folder id.
    generation: u32,
    /// Syncs answered Status 12 so far.
    changes_made: u32,
}

/// A mail waiting for its device: the folder id the notification named (or
/// [`INBOX`] for mail found in a Maildir) and its seq.
type Waiting = Vec<(String, u64)>;

/// How mail found in a Maildir names its folder: whatever id the device has for its
/// Inbox.
const INBOX: &str = "@inbox";

#[derive(Default)]
struct Shared {
    devices: Mutex<HashMap<String, DeviceState>>,
    /// Mail waiting per user, and a condition parked Pings wait on.
    mail: Mutex<HashMap<String, Waiting>>,
    arrived: Condvar,
    stop: AtomicBool,
    requests: AtomicU32,
}

/// The fake, running on ports picked at start.
pub(crate) struct ForeignServer {
    http: SocketAddr,
    notify: SocketAddr,
    shared: Arc<Shared>,
}

impl ForeignServer {
    pub(crate) fn plain() -> Self {
        Self::start(Quirks::default())
    }

    fn start(quirks: Quirks) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let server = Self {
            http: listener.local_addr().unwrap(),
            notify: udp.local_addr().unwrap(),
            shared: Arc::new(Shared::default()),
        };
        let shared = server.shared.clone();
        thread::spawn(move || receive_notifications(&udp, &shared));
        let shared = server.shared.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                if shared.stop.load(Ordering::Relaxed) {
                    break;
                }
                let shared = shared.clone();
                thread::spawn(move || serve_connection(stream, &shared, quirks));
            }
        });
        server
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = self.target_args();
        args.extend(["--notify".to_owned(), self.notify.to_string()]);
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args
    }

    /// `--target` for this server, without a notification address.
    pub(crate) fn target_args(&self) -> Vec<String> {
        vec!["--target".to_owned(), format!("http://{}", self.http)]
    }

    /// Takes mail that turns up in any Maildir under `root` (its `new/` or `cur/`) as
    /// a change in the Inbox of the user its `To:` names (`user0@localhost`: user0).
    pub(crate) fn watch_maildirs(&self, root: &Path) {
        let shared = self.shared.clone();
        let root = root.to_owned();
        thread::spawn(move || {
            let mut seen = HashSet::new();
            while !shared.stop.load(Ordering::Relaxed) {
                for (user, seq) in new_mail(&root, &mut seen) {
                    let mut mail = shared.mail.lock().unwrap();
                    mail.entry(user).or_default().push((INBOX.to_owned(), seq));
                    shared.arrived.notify_all();
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
    }
}

impl Drop for ForeignServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.arrived.notify_all();
        // Wakes the accept loop so it sees the stop.
        let _ = TcpStream::connect(self.http);
    }
}

/// `(user, seq)` of every message under `root` not in `seen` (by its unique name, the
/// part before `:`, which stays when a server moves it from `new/` to `cur/`).
fn new_mail(root: &Path, seen: &mut HashSet<String>) -> Vec<(String, u64)> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let in_mail_dir = dir.ends_with("new") || dir.ends_with("cur");
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let unique = name.split(':').next().unwrap_or_default().to_owned();
            if !in_mail_dir || seen.contains(&unique) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let header = |field: &str| {
                text.lines()
                    .take_while(|line| !line.is_empty())
                    .find_map(|line| line.strip_prefix(field).map(str::trim).map(str::to_owned))
            };
            let user = header("To:").and_then(|to| {
                let to = to.trim_start_matches('<').trim_end_matches('>');
                to.split('@').next().map(str::to_owned)
            });
            let seq = header("Subject:").as_deref().and_then(seq_in_subject);
            if let (Some(user), Some(seq)) = (user, seq) {
                seen.insert(unique);
                found.push((user, seq));
            }
        }
    }
    found
}

/// The mailbox back-end: each datagram is a mail for its user, in the folder it names.
fn receive_notifications(udp: &UdpSocket, shared: &Shared) {
    let mut buffer = [0u8; 2048];
    while !shared.stop.load(Ordering::Relaxed) {
        let Ok(len) = udp.recv(&mut buffer) else {
            continue;
        };
        let Ok(notification) = Notification::parse(&buffer[..len]) else {
            continue;
        };
        let seq = notification.seq.unwrap_or(0);
        let mut mail = shared.mail.lock().unwrap();
        mail.entry(notification.user)
            .or_default()
            .push((notification.folder, seq));
        shared.arrived.notify_all();
    }
}

/// A request as the fake needs it.
struct Request {
    query: EasQuery,
    is_options: bool,
    /// The Basic credentials, if any.
    credentials: Option<BasicCredentials>,
    body: Vec<u8>,
}

/// With passwords checked, the fake's users are any name with the password `secret-`
/// and the name.
fn authorized(request: &Request, quirks: Quirks) -> bool {
    request.credentials.as_ref().is_some_and(|basic| {
        !quirks.passwords || basic.password == format!("secret-{}", basic.user)
    })
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut length = 0;
    let mut credentials = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok().filter(|n| *n > 0)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            } else if name.eq_ignore_ascii_case("authorization") {
                credentials = BasicCredentials::from_header(value).ok();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let is_options = method == "OPTIONS";
    let query = match is_options {
        true => EasQuery::parse("Cmd=Options&User=x&DeviceId=x&DeviceType=x").ok()?,
        false => EasQuery::parse_target(&target).ok()?,
    };
    Some(Request {
        query,
        is_options,
        credentials,
        body,
    })
}

fn serve_connection(stream: TcpStream, shared: &Shared, quirks: Quirks) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        shared.requests.fetch_add(1, Ordering::Relaxed);
        let ((headers, body), status) = match authorized(&request, quirks) {
            true => (answer(&request, shared, quirks), "200 OK"),
            false => ((Vec::new(), Vec::new()), "401 Unauthorized"),
        };
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if quirks.close_every_response {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend(body);
        if writer.write_all(&bytes).is_err() || quirks.close_every_response {
            break;
        }
    }
}

/// The folder ids device `device_id` is given in hierarchy `generation`: 8 hex digits
/// from both, so no two devices (or generations) share an id.
fn folder_id(device_id: &str, generation: u32, standard_id: u32) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in device_id.bytes().chain(generation.to_le_bytes()) {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    format!(
        "{:08x}",
        hash.wrapping_add(standard_id.wrapping_mul(0x9e37_79b9))
    )
}

/// Where the Inbox is in [`HIERARCHY`].
const INBOX_INDEX: usize = 2;

const HIERARCHY: [(u32, &str, u32); 5] = [
    (1, "Calendar", folder_type::CALENDAR),
    (2, "Contacts", folder_type::CONTACTS),
    (5, "Inbox", folder_type::INBOX),
    (8, "Sent Items", folder_type::SENT_ITEMS),
    (9, "Tasks", folder_type::TASKS),
];

fn answer(
    request: &Request,
    shared: &Shared,
    quirks: Quirks,
) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let versions = match quirks.only_14_0 {
        true => ("14.0", "2.5,12.0,12.1,14.0"),
        false => ("16.1", "2.5,12.0,12.1,14.0,14.1,16.0,16.1"),
    };
    let server = ("MS-Server-ActiveSync", versions.0.to_owned());
    if request.is_options {
        let headers = vec![
            server,
            ("MS-ASProtocolVersions", versions.1.to_owned()),
            (
                "MS-ASProtocolCommands",
                "FolderSync,Sync,Ping,Provision".to_owned(),
            ),
        ];
        return (headers, Vec::new());
    }
    let device_id = request.query.device_id.clone();
    let user = request.query.user.clone().unwrap_or_default();
    let generation = {
        let mut devices = shared.devices.lock().unwrap();
        devices.entry(device_id.clone()).or_default().generation
    };
    let ids: Vec<String> = HIERARCHY
        .iter()
        .map(|(id, _, _)| folder_id(&device_id, generation, *id))
        .collect();
    let body = match request.query.command.name() {
        "Provision" => ProvisionResponse {
            status: 1,
            device_information_status: None,
            policy: Some(PolicyResponse {
                policy_type: POLICY_TYPE_WBXML.into(),
                status: 1,
                policy_key: Some("1307199584".into()),
                document: None,
            }),
            remote_wipe: false,
        }
        .encode(),
        "FolderSync" if stale_folder_key(request, generation) => {
            FolderSyncResponse::failed(9).encode()
        }
        "FolderSync" => FolderSyncResponse {
            status: 1,
            sync_key: Some(format!("{}", generation + 1)),
            changes: HIERARCHY
                .iter()
                .zip(&ids)
                .map(|((_, name, kind), id)| {
                    FolderChange::Add(Folder {
                        server_id: id.clone(),
                        parent_id: "0".into(),
                        display_name: (*name).into(),
                        folder_type: *kind,
                    })
                })
                .collect(),
        }
        .encode(),
        "Sync" => sync(request, shared, quirks, &device_id, &user, &ids),
        "Ping" => ping(request, shared, &user, &ids),
        _ => Vec::new(),
    };
    (vec![server], body)
}

/// A FolderSync from a key other than 0 and the current one: Status 9, as Z-Push says
/// when the hierarchy changed under the device.
fn stale_folder_key(request: &Request, generation: u32) -> bool {
    let key = FolderSyncRequest::decode(&request.body).map_or_else(|_| "0".into(), |r| r.sync_key);
    key != "0" && key != (generation + 1).to_string()
}

fn sync(
    request: &Request,
    shared: &Shared,
    quirks: Quirks,
    device_id: &str,
    user: &str,
    ids: &[String],
) -> Vec<u8> {
    let Ok(sync) = SyncRequest::decode(&request.body) else {
        return Vec::new();
    };
    let collection = &sync.collections[0];
    let hierarchy_changed = {
        let mut devices = shared.devices.lock().unwrap();
        let state = devices.get_mut(device_id).unwrap();
        let change = state.changes_made < quirks.hierarchy_changes;
        if change {
            state.changes_made += 1;
            state.generation += 1;
        }
        change
    };
    if hierarchy_changed || !ids.contains(&collection.collection_id) {
        return SyncResponse {
            status: Some(12),
            collections: Vec::new(),
        }
        .encode();
    }
    let delivered: Vec<u64> = {
        let mut mail = shared.mail.lock().unwrap();
        let waiting = mail.entry(user.to_owned()).or_default();
        let (mine, rest) = waiting
            .drain(..)
            .partition(|(folder, _)| id_of(folder, ids) == collection.collection_id);
        *waiting = rest;
        mine.into_iter().map(|(_, seq)| seq).collect()
    };
    let key: u64 = collection.sync_key.parse().unwrap_or(0) + 1;
    SyncResponse {
        status: None,
        collections: vec![SyncCollectionResponse {
            sync_key: key.to_string(),
            collection_id: collection.collection_id.clone(),
            status: 1,
            more_available: false,
            commands: delivered
                .iter()
                .map(|seq| SyncCommand::Add {
                    server_id: format!("{}:{seq}", collection.collection_id),
                    email: Email {
                        subject: Some(subject_for_seq(*seq)),
                        ..Email::default()
                    },
                })
                .collect(),
        }],
    }
    .encode()
}

/// The device's id for a folder a waiting mail names.
fn id_of<'a>(folder: &'a str, ids: &'a [String]) -> &'a str {
    match folder {
        INBOX => &ids[INBOX_INDEX],
        id => id,
    }
}

/// Parks until mail for one of the Ping's folders arrives or the heartbeat ends.
fn ping(request: &Request, shared: &Shared, user: &str, ids: &[String]) -> Vec<u8> {
    let ping = PingRequest::from_body(&request.body).ok().flatten();
    let heartbeat = ping
        .as_ref()
        .and_then(|ping| ping.heartbeat_interval_s)
        .unwrap_or(480);
    let until = Instant::now() + Duration::from_secs(u64::from(heartbeat));
    let mut mail = shared.mail.lock().unwrap();
    loop {
        let changed: Vec<String> = mail
            .get(user)
            .into_iter()
            .flatten()
            .map(|(folder, _)| id_of(folder, ids).to_owned())
            .filter(|folder| ids.contains(folder))
            .collect();
        if !changed.is_empty() {
            let mut folders = changed;
            folders.sort();
            folders.dedup();
            return PingResponse::Changes { folders }.encode();
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || shared.stop.load(Ordering::Relaxed) {
            return PingResponse::Expired.encode();
        }
        mail = shared.arrived.wait_timeout(mail, left).unwrap().0;
    }
}

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
