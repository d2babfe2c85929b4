//! A fake EAS server that behaves as other implementations do where `pingfleet serve`
//! does not. Every device gets its own random folder ids (8 hex digits, as Z-Push gives
//! them) and a Sync on an id it does not know is Status 12; optionally every response
//! carries `Connection: close`, the server speaks only up to 14.0, or the hierarchy
//! changes under the devices a number of times. In SOGo's modes it serves EAS under a
//! prefix (HTML elsewhere), answers Provision "no policy for this client", wakes each
//! device's next Ping after a Sync for nothing, serves with a fixed pool of workers (a
//! parked Ping holds one), and holds a heartbeat above its maximum for the maximum
//! before answering Status 5. Wake-ups come from pingfleet's own datagrams, naming the
//! folder by the id the device was given, or, as on a real server, from mail that turns
//! up in the users' Maildirs (whoever put it there: an IMAP server, an SMTP server, an
//! MDA).

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
use pingfleet::eas::request::{EasQuery, ACTIVESYNC_PATH};
use pingfleet::eas::WbxmlBody;
use pingfleet::notification::{seq_in_subject, subject_for_seq, Notification};

/// How the fake departs from `pingfleet serve`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Quirks {
    /// `Connection: close` on every response, and the connection closed after it.
    pub(crate) close_every_response: bool,
    /// Offer versions up to 14.0 only, and say so in `MS-Server-ActiveSync`.
    pub(crate) only_14_0: bool,
    /// The hierarchy changes (every folder gets a new id) on each of a device's first
    /// this many Syncs, answered Status 12; `u32::MAX` for always.
    pub(crate) hierarchy_changes: u32,
    /// Refuse (401) any password but `secret-` and the user name; otherwise anyone in.
    pub(crate) passwords: bool,
    /// SOGo's ways.
    pub(crate) sogo: Sogo,
}

/// Where SOGo departs from Z-Push and Exchange (each measured against SOGo 5.8).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sogo {
    /// EAS only under [`SOGO_PATH`]; any other path gets the login page (HTML).
    pub(crate) prefix: bool,
    /// Provision answered Status 1 with Policy Status 2, no key, no document.
    pub(crate) no_policy: bool,
    /// A device's next Ping after a Sync that brought something (and after its first)
    /// answered Status 2 at once, for nothing.
    pub(crate) empty_wake_after_sync: bool,
    /// Requests are answered by this many workers at most (0: one per connection); the
    /// rest wait in line, and a parked Ping holds its worker for its whole heartbeat.
    pub(crate) workers: usize,
    /// A heartbeat above this is held for this many seconds, then answered Status 5
    /// with it (0: no maximum).
    pub(crate) max_heartbeat_s: u32,
}

/// Where SOGo serves EAS.
pub(crate) const SOGO_PATH: &str = "/SOGo/Microsoft-Server-ActiveSync";

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
pub(crate) struct Shared {
    devices: Mutex<HashMap<String, DeviceState>>,
    /// Devices whose next Ping is woken for nothing (SOGo, after a Sync): by DeviceId,
    /// the folder synced.
    woken_for_nothing: Mutex<HashMap<String, String>>,
    /// Workers busy (SOGo's pool), and a condition to wait for one on.
    busy_workers: Mutex<usize>,
    worker_freed: Condvar,
    /// Devices woken for nothing whose Sync has not come yet.
    awaiting_sync: Mutex<HashSet<String>>,
    /// Pings the fake woke for nothing and whose Sync then brought nothing (an empty
    /// wake, as the fleet counts them), and all its Status 2 answers.
    pub(crate) empty_wakes_given: AtomicU32,
    pub(crate) changes_given: AtomicU32,
    /// Requests that waited for a worker.
    pub(crate) queued: AtomicU32,
    /// Mail waiting per user, and a condition parked Pings wait on.
    mail: Mutex<HashMap<String, Waiting>>,
    arrived: Condvar,
    stop: AtomicBool,
    pub(crate) requests: AtomicU32,
}

/// The fake, running on ports picked at start.
pub(crate) struct ForeignServer {
    http: SocketAddr,
    notify: SocketAddr,
    pub(crate) shared: Arc<Shared>,
    /// The path a client must be given (SOGo's prefix, or none).
    path: &'static str,
}

impl ForeignServer {
    pub(crate) fn plain() -> Self {
        Self::start(Quirks::default())
    }

    pub(crate) fn start(quirks: Quirks) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let server = Self {
            http: listener.local_addr().unwrap(),
            notify: udp.local_addr().unwrap(),
            shared: Arc::new(Shared::default()),
            path: if quirks.sogo.prefix { SOGO_PATH } else { "" },
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

    pub(crate) fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = self.target_args();
        args.extend(["--notify".to_owned(), self.notify.to_string()]);
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args
    }

    /// `--target` for this server, without a notification address.
    pub(crate) fn target_args(&self) -> Vec<String> {
        vec![
            "--target".to_owned(),
            format!("http://{}{}", self.http, self.path),
        ]
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
        self.shared.worker_freed.notify_all();
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
    /// `None`: not the EAS path (SOGo answers its login page there).
    query: Option<EasQuery>,
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

fn read_request(reader: &mut BufReader<TcpStream>, quirks: Quirks) -> Option<Request> {
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
    let path = match quirks.sogo.prefix {
        true => SOGO_PATH,
        false => ACTIVESYNC_PATH,
    };
    let on_path = target.split('?').next() == Some(path);
    let query = match (is_options, on_path) {
        (_, false) => None,
        (true, true) => EasQuery::parse("Cmd=Options&User=x&DeviceId=x&DeviceType=x").ok(),
        (false, true) => EasQuery::parse_target_under(&target, path).ok(),
    };
    Some(Request {
        query,
        is_options,
        credentials,
        body,
    })
}

/// What SOGo answers anywhere but its EAS path: its login page.
const LOGIN_PAGE: &str =
    "<!DOCTYPE html><html><head><title>SOGo</title></head><body>Log in</body></html>";

fn serve_connection(stream: TcpStream, shared: &Shared, quirks: Quirks) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader, quirks) {
        shared.requests.fetch_add(1, Ordering::Relaxed);
        let (content_type, (headers, body), status) = match &request.query {
            None => (
                "text/html; charset=utf-8",
                (Vec::new(), LOGIN_PAGE.as_bytes().to_vec()),
                "200 OK",
            ),
            Some(query) if authorized(&request, quirks) => {
                let _worker = Worker::take(shared, quirks.sogo.workers);
                (
                    "application/vnd.ms-sync.wbxml",
                    answer(&request, query, shared, quirks),
                    "200 OK",
                )
            }
            Some(_) => (
                "application/vnd.ms-sync.wbxml",
                (Vec::new(), Vec::new()),
                "401 Unauthorized",
            ),
        };
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
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

/// One of SOGo's workers, held while a request is answered (a parked Ping holds it for
/// its whole heartbeat); with a pool of `pool`, a request waits in line for one.
struct Worker<'a> {
    shared: Option<&'a Shared>,
}

impl<'a> Worker<'a> {
    fn take(shared: &'a Shared, pool: usize) -> Self {
        if pool == 0 {
            return Self { shared: None };
        }
        let mut busy = shared.busy_workers.lock().unwrap();
        if *busy >= pool {
            shared.queued.fetch_add(1, Ordering::Relaxed);
        }
        while *busy >= pool && !shared.stop.load(Ordering::Relaxed) {
            busy = shared.worker_freed.wait(busy).unwrap();
        }
        *busy += 1;
        Self {
            shared: Some(shared),
        }
    }
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared {
            *shared.busy_workers.lock().unwrap() -= 1;
            shared.worker_freed.notify_one();
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
    query: &EasQuery,
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
    let device_id = query.device_id.clone();
    let user = query.user.clone().unwrap_or_default();
    let generation = {
        let mut devices = shared.devices.lock().unwrap();
        devices.entry(device_id.clone()).or_default().generation
    };
    let ids: Vec<String> = HIERARCHY
        .iter()
        .map(|(id, _, _)| folder_id(&device_id, generation, *id))
        .collect();
    let body = match query.command.name() {
        "Provision" => provision(quirks.sogo.no_policy),
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
        "Ping" => ping(request, shared, quirks.sogo, (&device_id, &user), &ids),
        _ => Vec::new(),
    };
    (vec![server], body)
}

/// A policy key to acknowledge, or (SOGo) Policy Status 2: "no policy for this client".
fn provision(no_policy: bool) -> Vec<u8> {
    ProvisionResponse {
        status: 1,
        device_information_status: None,
        policy: Some(PolicyResponse {
            policy_type: POLICY_TYPE_WBXML.into(),
            status: if no_policy { 2 } else { 1 },
            policy_key: (!no_policy).then(|| "1307199584".into()),
            document: None,
        }),
        remote_wipe: false,
    }
    .encode()
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
    let after_empty_wake = shared.awaiting_sync.lock().unwrap().remove(device_id);
    if after_empty_wake && delivered.is_empty() {
        shared.empty_wakes_given.fetch_add(1, Ordering::Relaxed);
    }
    let first_content = collection.sync_key == "1";
    if quirks.sogo.empty_wake_after_sync && (first_content || !delivered.is_empty()) {
        // SOGo compares the SyncKey it stored with a folder tag of another form, so
        // after a Sync that brought something (the first one too) the next Ping finds
        // the folder "changed".
        let mut woken = shared.woken_for_nothing.lock().unwrap();
        woken.insert(device_id.to_owned(), collection.collection_id.clone());
    }
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

/// Parks until mail for one of the Ping's folders arrives or the heartbeat ends; in
/// SOGo's modes, first answers for nothing after a Sync, and holds a heartbeat above
/// its maximum for the maximum, then says Status 5.
fn ping(
    request: &Request,
    shared: &Shared,
    sogo: Sogo,
    (device_id, user): (&str, &str),
    ids: &[String],
) -> Vec<u8> {
    let ping = PingRequest::from_body(&request.body).ok().flatten();
    let asked = ping
        .as_ref()
        .and_then(|ping| ping.heartbeat_interval_s)
        .unwrap_or(480);
    if let Some(folder) = shared.woken_for_nothing.lock().unwrap().remove(device_id) {
        shared
            .awaiting_sync
            .lock()
            .unwrap()
            .insert(device_id.to_owned());
        shared.changes_given.fetch_add(1, Ordering::Relaxed);
        return PingResponse::Changes {
            folders: vec![folder],
        }
        .encode();
    }
    let too_long = sogo.max_heartbeat_s > 0 && asked > sogo.max_heartbeat_s;
    let heartbeat = match too_long {
        true => sogo.max_heartbeat_s,
        false => asked,
    };
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
        if !changed.is_empty() && !too_long {
            let mut folders = changed;
            folders.sort();
            folders.dedup();
            shared.changes_given.fetch_add(1, Ordering::Relaxed);
            return PingResponse::Changes { folders }.encode();
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || shared.stop.load(Ordering::Relaxed) {
            return match too_long {
                true => PingResponse::IntervalOutOfRange {
                    heartbeat_interval_s: sogo.max_heartbeat_s,
                },
                false => PingResponse::Expired,
            }
            .encode();
        }
        mail = shared.arrived.wait_timeout(mail, left).unwrap().0;
    }
}
