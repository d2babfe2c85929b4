//! `--inject` into real mail servers: a throwaway dovecot (Debian's `dovecot-imapd`, as
//! `.ci/run` installs it) on a loopback port for `imap://`, `maildir:` and `exec:` (its
//! own MDA, dovecot-lda), and aiosmtpd (PyPI) for `smtp://`. The EAS side is the fake
//! foreign server, which finds each mail in the users' Maildirs as a Z-Push IMAP
//! back-end would and wakes the device; every message is then read back from the mail
//! server itself.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pingfleet::fleet::report::WorkerReport;
use pingfleet::notification::seq_in_subject;

use crate::fake_eas::ForeignServer;
use crate::fleet::run_devices;

/// Users of the test mail store, as the worker names them (`--devices 4`).
pub(crate) const USERS: [&str; 4] = ["user0", "user1", "user2", "user3"];
pub(crate) const PASSWORD: &str = "pingfleet";

/// A port free at the time of asking (the server binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `port` accepts connections.
fn wait_for(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A dovecot of its own: config, users, Maildirs and sockets in a temporary directory.
pub(crate) struct Dovecot {
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    child: Child,
}

impl Dovecot {
    pub(crate) fn start() -> Self {
        let dovecot = Path::new("/usr/sbin/dovecot");
        assert!(
            dovecot.exists(),
            "dovecot is not installed: apt-get install dovecot-imapd (.ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        // The mail processes run as the dovecot user (dovecot refuses root).
        Command::new("chown")
            .args(["dovecot:dovecot", &root.join("mail").display().to_string()])
            .status()
            .unwrap();
        let users: String = USERS
            .iter()
            .map(|user| format!("{user}:{{PLAIN}}{PASSWORD}\n"))
            .collect();
        std::fs::write(root.join("passwd"), users).unwrap();
        std::fs::write(root.join("masters"), "admin:{PLAIN}secret\n").unwrap();
        let port = free_port();
        std::fs::write(root.join("dovecot.conf"), config(root, port)).unwrap();
        let mut child = Command::new(dovecot)
            .args(["-F", "-c"])
            .arg(root.join("dovecot.conf"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(port, "dovecot", &mut child);
        let server = Self { dir, port, child };
        // A login makes each user's Maildir, owned by the mail user.
        for user in USERS {
            server.subjects(user);
        }
        server
    }

    pub(crate) fn mail_root(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    /// The seqs of the `pingfleet seq=N` messages in `user`'s INBOX, read over IMAP.
    fn subjects(&self, user: &str) -> Vec<u64> {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut client = imap::Client::new(stream);
        client.read_greeting().unwrap();
        let mut session = client
            .login(user, PASSWORD)
            .map_err(|(err, _)| err)
            .unwrap();
        let mailbox = session.select("INBOX").unwrap();
        let mut seqs = Vec::new();
        if mailbox.exists > 0 {
            let fetches = session.fetch("1:*", "ENVELOPE").unwrap();
            for fetch in fetches.iter() {
                let subject = fetch
                    .envelope()
                    .and_then(|envelope| envelope.subject.as_ref())
                    .map(|subject| String::from_utf8_lossy(subject).into_owned())
                    .unwrap_or_default();
                seqs.extend(seq_in_subject(&subject));
            }
        }
        session.logout().unwrap();
        seqs
    }

    /// Every user's seqs, sorted.
    pub(crate) fn all_subjects(&self) -> Vec<u64> {
        let mut seqs: Vec<u64> = USERS.iter().flat_map(|user| self.subjects(user)).collect();
        seqs.sort_unstable();
        seqs
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM: the master stops its children before it exits.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn config(root: &Path, port: u16) -> String {
    let root = root.display();
    format!(
        r#"base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = *
mail_location = maildir:{root}/mail/%u/Maildir
mail_uid = dovecot
mail_gid = dovecot
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = {root}/masters
  master = yes
}}
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = static
  args = home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"#
    )
}

/// Four devices against the fake, their changes injected with `inject` at 10 a second
/// for 2 s; the worker must succeed.
fn inject_with(server: &ForeignServer, inject: &str) -> WorkerReport {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    let mut args = server.target_args();
    args.extend(
        [
            "--inject",
            inject,
            "--devices",
            "4",
            "--duration",
            "2s",
            "--rate",
            "10",
            "--drain",
            "10s",
        ]
        .map(str::to_owned),
    );
    run_devices(&args, &output).1
}

/// Every planned change was accepted by the mail store, reached its device, and is in
/// the store exactly once.
fn assert_every_change_stored_and_delivered(report: &WorkerReport, stored: &[u64], case: &str) {
    let counters = &report.counters;
    assert!(counters.errors.is_empty(), "{case}: {:?}", counters.errors);
    assert_eq!(
        counters.notifications_sent, report.fleet_digest.planned_notifications,
        "{case}"
    );
    assert!(counters.notifications_sent >= 15, "{case}: {counters:?}");
    assert_eq!(
        counters.notifications_delivered, counters.notifications_sent,
        "{case}"
    );
    let expected: Vec<u64> = (0..counters.notifications_sent).collect();
    assert_eq!(stored, expected, "{case}: every seq stored once");
    // The injector's lag is the mail store's round trip, measured for each change.
    let lag = &report.histograms["injector_lag_us"].summary;
    assert_eq!(lag.count, counters.notifications_sent, "{case}");
}

#[test]
fn imap_appends_reach_dovecot_and_the_devices_as_the_user_and_as_a_master_user() {
    for login in ["", "{user}*admin:secret@"] {
        let dovecot = Dovecot::start();
        let server = ForeignServer::plain();
        server.watch_maildirs(&dovecot.mail_root());
        let url = format!("imap://{login}127.0.0.1:{}", dovecot.port);
        let report = inject_with(&server, &url);
        assert_every_change_stored_and_delivered(&report, &dovecot.all_subjects(), &url);
    }
}

#[test]
fn maildir_and_exec_deliveries_are_what_dovecot_serves() {
    let dovecot = Dovecot::start();
    let server = ForeignServer::plain();
    server.watch_maildirs(&dovecot.mail_root());
    let maildir = format!("maildir:{}/{{user}}/Maildir", dovecot.mail_root().display());
    let report = inject_with(&server, &maildir);
    assert_every_change_stored_and_delivered(&report, &dovecot.all_subjects(), &maildir);

    // dovecot's own MDA, given each message on stdin.
    let dovecot = Dovecot::start();
    let server = ForeignServer::plain();
    server.watch_maildirs(&dovecot.mail_root());
    let lda = format!(
        "exec:/usr/lib/dovecot/dovecot-lda -c {} -d {{user}}",
        dovecot.config_path().display()
    );
    let report = inject_with(&server, &lda);
    assert_every_change_stored_and_delivered(&report, &dovecot.all_subjects(), &lda);
}

#[test]
fn smtp_deliveries_reach_an_smtp_server_with_each_users_address() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("smtp");
    let port = free_port();
    let mut smtpd = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m aiosmtpd (pip install aiosmtpd; .ci/run does)");
    wait_for(port, "aiosmtpd", &mut smtpd);
    let server = ForeignServer::plain();
    server.watch_maildirs(&maildir);
    let url = format!("smtp://127.0.0.1:{port}?domain=localhost");
    let report = inject_with(&server, &url);
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(maildir.join("new")).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        assert!(
            USERS
                .iter()
                .any(|user| text.contains(&format!("To: {user}@localhost"))),
            "{text}"
        );
        stored.extend(text.lines().find_map(seq_in_subject));
    }
    stored.sort_unstable();
    let _ = smtpd.kill();
    let _ = smtpd.wait();
    assert_every_change_stored_and_delivered(&report, &stored, &url);
}

#[test]
fn a_refused_imap_login_is_counted_and_fails_the_worker() {
    let dovecot = Dovecot::start();
    let server = ForeignServer::plain();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("worker.json");
    let mut args = server.target_args();
    let url = format!("imap://{{user}}*admin:wrong@127.0.0.1:{}", dovecot.port);
    args.extend(
        [
            "--inject",
            &url,
            "--devices",
            "2",
            "--duration",
            "1s",
            "--rate",
            "4",
            "--drain",
            "2s",
        ]
        .map(str::to_owned),
    );
    let (result, report) = crate::fleet::run_devices_any(&args, &output);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    let refused: u64 = report
        .counters
        .errors
        .iter()
        .filter(|(kind, _)| kind.starts_with("injector: IMAP login as \"user"))
        .map(|(_, count)| count)
        .sum();
    assert_eq!(
        refused, report.fleet_digest.planned_notifications,
        "{:?}",
        report.counters.errors
    );
    assert_eq!(report.counters.notifications_sent, 0);
    assert!(dovecot.all_subjects().is_empty());
}
