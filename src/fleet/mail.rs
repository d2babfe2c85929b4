//! Real changes in real mail stores: the message the injector puts in a user's Inbox
//! (its subject carries `pingfleet seq=N`, so the device that syncs it knows which
//! planned change it is), and the four ways to put it there: IMAP APPEND, SMTP
//! delivery, a file in a Maildir's `new/`, or a command given the message on stdin.
//!
//! One [`Deliverer`] belongs to one sender thread and keeps its connections open: an
//! IMAP session per login (at most [`MAX_IMAP_SESSIONS`], the least recently used one
//! logged out beyond), one pooled SMTP transport shared by every thread.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, SmtpTransport, Transport as _};

use crate::notification::subject_for_seq;

/// Open IMAP sessions one sender thread keeps.
pub const MAX_IMAP_SESSIONS: usize = 128;
/// The longest a connection to a mail server may take to answer, and an `exec:`
/// command to finish.
pub const MAIL_TIMEOUT: Duration = Duration::from_secs(30);
/// The sender every injected message comes from.
const FROM: &str = "pingfleet <pingfleet@localhost>";

/// One change to put in a mailbox: whose, which folder the device pushes (for `exec:`),
/// and its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub user: String,
    pub password: String,
    /// The user's mail address, from the credentials file; else the user name if it is
    /// one, else `user@localhost`.
    pub address: Option<String>,
    pub folder: String,
    pub seq: u64,
}

impl Change {
    /// The address mail for this user goes to.
    pub fn recipient(&self, domain: &str) -> String {
        match (&self.address, self.user.contains('@')) {
            (Some(address), _) => address.clone(),
            (None, true) => self.user.clone(),
            (None, false) => format!("{}@{domain}", self.user),
        }
    }

    /// The RFC 5322 message: From, To, Subject (`pingfleet seq=N`), Date, Message-ID.
    pub fn message(&self, to: &str) -> anyhow::Result<Vec<u8>> {
        let from: Mailbox = FROM.parse().expect("a valid mailbox");
        // A user name that is no address (`CORP\alice`) still gets its mail: the To
        // header is only for show in IMAP, Maildir and exec deliveries.
        let to: Mailbox = to
            .parse()
            .unwrap_or_else(|_| "pingfleet-device@localhost".parse().expect("valid"));
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(subject_for_seq(self.seq))
            .message_id(None)
            .header(ContentType::TEXT_PLAIN)
            .body(format!(
                "Injected by pingfleet for {} (change {}).\r\n",
                self.user, self.seq
            ))
            .context("cannot build the message")?;
        Ok(message.formatted())
    }
}

/// Where a mail goes, as `--inject` names it (see [`super::sink::InjectTarget`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailStore {
    /// IMAP APPEND on `host:port`, logging in as `login` (with `{user}` replaced; the
    /// device's own user when `None`) with `password` (the device's when `None`).
    Imap {
        host: String,
        port: u16,
        login: Option<String>,
        password: Option<String>,
        mailbox: String,
    },
    /// SMTP to `host:port`, to the user's address (`user@domain` when it has none).
    Smtp {
        host: String,
        port: u16,
        domain: String,
    },
    /// A file in `new/` of this Maildir (with `{user}` replaced).
    Maildir { path: String },
    /// This program with these arguments (with `{user}`, `{folder}`, `{seq}` replaced),
    /// given the message on stdin.
    Exec { argv: Vec<String> },
}

/// Replaces `{user}`, `{folder}` and `{seq}` in `template`.
fn fill(template: &str, change: &Change) -> String {
    template
        .replace("{user}", &change.user)
        .replace("{folder}", &change.folder)
        .replace("{seq}", &change.seq.to_string())
}

/// One sender thread's connections to the mail stores.
pub struct Deliverer {
    imap: HashMap<String, (imap::Session<TcpStream>, Instant)>,
    smtp: HashMap<(String, u16), SmtpTransport>,
    maildir_counter: u64,
}

impl Deliverer {
    /// A deliverer that shares `smtp` transports (pooled, one per server) with others.
    pub fn new(smtp: HashMap<(String, u16), SmtpTransport>) -> Self {
        Self {
            imap: HashMap::new(),
            smtp,
            maildir_counter: 0,
        }
    }

    /// One SMTP transport per server in `stores`, each with a pool of up to
    /// `connections` connections, for every sender thread to share.
    pub fn smtp_transports(
        stores: &[MailStore],
        connections: u32,
    ) -> HashMap<(String, u16), SmtpTransport> {
        stores
            .iter()
            .filter_map(|store| match store {
                MailStore::Smtp { host, port, .. } => Some((host.clone(), *port)),
                _ => None,
            })
            .map(|(host, port)| {
                let transport = SmtpTransport::builder_dangerous(&host)
                    .port(port)
                    .timeout(Some(MAIL_TIMEOUT))
                    .pool_config(PoolConfig::new().max_size(connections.max(1)))
                    .build();
                ((host, port), transport)
            })
            .collect()
    }

    /// Puts `change` into `store`; the error says what refused it.
    pub fn deliver(&mut self, store: &MailStore, change: &Change) -> anyhow::Result<()> {
        match store {
            MailStore::Imap {
                host,
                port,
                login,
                password,
                mailbox,
            } => {
                let login = login
                    .as_deref()
                    .map_or(change.user.clone(), |l| fill(l, change));
                let password = password.as_deref().unwrap_or(&change.password);
                let mailbox = fill(mailbox, change);
                let message = change.message(&change.recipient("localhost"))?;
                self.append(host, *port, &login, password, &mailbox, &message)
            }
            MailStore::Smtp { host, port, domain } => {
                let to = change.recipient(domain);
                let message = change.message(&to)?;
                let address: Address = to
                    .parse()
                    .with_context(|| format!("{to:?} is not a mail address"))?;
                let from: Address = "pingfleet@localhost".parse().expect("valid");
                let envelope = Envelope::new(Some(from), vec![address])?;
                let transport = self
                    .smtp
                    .get(&(host.clone(), *port))
                    .context("no SMTP transport")?;
                transport.send_raw(&envelope, &message)?;
                Ok(())
            }
            MailStore::Maildir { path } => {
                // A user name is a path component here: none may climb out of the tree.
                if change.user.contains('/') || change.user == ".." || change.user.is_empty() {
                    anyhow::bail!("user {:?} cannot name a Maildir", change.user);
                }
                let message = change.message(&change.recipient("localhost"))?;
                self.maildir_counter += 1;
                write_to_maildir(
                    &PathBuf::from(fill(path, change)),
                    &message,
                    self.maildir_counter,
                )
            }
            MailStore::Exec { argv } => {
                let message = change.message(&change.recipient("localhost"))?;
                let argv: Vec<String> = argv.iter().map(|word| fill(word, change)).collect();
                run_with_stdin(&argv, &message)
            }
        }
    }

    /// Opens what delivering to `user` in `store` will need (an IMAP session), so the
    /// first change for the user does not wait for a login. Only while there is room:
    /// sessions are not evicted for a change that may never come.
    pub fn prepare(&mut self, store: &MailStore, change: &Change) {
        let MailStore::Imap {
            host,
            port,
            login,
            password,
            ..
        } = store
        else {
            return;
        };
        let login = login
            .as_deref()
            .map_or(change.user.clone(), |l| fill(l, change));
        let key = format!("{login}@{host}:{port}");
        if self.imap.len() >= MAX_IMAP_SESSIONS || self.imap.contains_key(&key) {
            return;
        }
        let password = password.as_deref().unwrap_or(&change.password);
        // A refused login is counted when a change is delivered, not here.
        if let Ok(session) = imap_login(host, *port, &login, password) {
            self.imap.insert(key, (session, Instant::now()));
        }
    }

    /// APPENDs `message` over the session of `login`, opening it if needed; a session
    /// that fails is dropped, and the append tried once more on a new one.
    fn append(
        &mut self,
        host: &str,
        port: u16,
        login: &str,
        password: &str,
        mailbox: &str,
        message: &[u8],
    ) -> anyhow::Result<()> {
        let key = format!("{login}@{host}:{port}");
        for attempt in 0..2 {
            if !self.imap.contains_key(&key) {
                let session = imap_login(host, port, login, password)?;
                self.make_room();
                self.imap.insert(key.clone(), (session, Instant::now()));
            }
            let (session, used) = self.imap.get_mut(&key).expect("inserted above");
            *used = Instant::now();
            match session.append(mailbox, message).finish() {
                Ok(_) => return Ok(()),
                Err(err @ imap::Error::No(_)) => {
                    return Err(anyhow::anyhow!("IMAP APPEND to {mailbox:?} refused: {err}"))
                }
                Err(err) if attempt == 1 => return Err(err.into()),
                Err(_) => {
                    self.imap.remove(&key);
                }
            }
        }
        unreachable!("the second attempt returns")
    }

    /// Logs out the least recently used session when the table is full.
    fn make_room(&mut self) {
        if self.imap.len() < MAX_IMAP_SESSIONS {
            return;
        }
        let oldest = self
            .imap
            .iter()
            .min_by_key(|(_, (_, used))| *used)
            .map(|(key, _)| key.clone());
        if let Some((mut session, _)) = oldest.and_then(|key| self.imap.remove(&key)) {
            let _ = session.logout();
        }
    }

    /// Logs every IMAP session out.
    pub fn close(&mut self) {
        for (_, (mut session, _)) in self.imap.drain() {
            let _ = session.logout();
        }
    }
}

fn imap_login(
    host: &str,
    port: u16,
    login: &str,
    password: &str,
) -> anyhow::Result<imap::Session<TcpStream>> {
    let stream = TcpStream::connect((host, port))
        .with_context(|| format!("cannot connect to IMAP {host}:{port}"))?;
    stream.set_read_timeout(Some(MAIL_TIMEOUT))?;
    stream.set_write_timeout(Some(MAIL_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut client = imap::Client::new(stream);
    client.read_greeting()?;
    client
        .login(login, password)
        .map_err(|(err, _)| anyhow::anyhow!("IMAP login as {login:?} refused: {err}"))
}

/// Writes `message` as an MDA does: into `tmp/` under a unique name, then renamed into
/// `new/` (the directories made if missing).
fn write_to_maildir(maildir: &std::path::Path, message: &[u8], counter: u64) -> anyhow::Result<()> {
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub))
            .with_context(|| format!("cannot make {}", maildir.join(sub).display()))?;
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    let name = format!(
        "{}.M{}P{}T{thread}Q{counter}.pingfleet",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id()
    );
    let staged = maildir.join("tmp").join(&name);
    std::fs::write(&staged, message)
        .with_context(|| format!("cannot write {}", staged.display()))?;
    std::fs::rename(&staged, maildir.join("new").join(&name))
        .with_context(|| format!("cannot move {name} into new/"))?;
    Ok(())
}

/// Runs `argv` with `input` on stdin, killed after [`MAIL_TIMEOUT`].
fn run_with_stdin(argv: &[String], input: &[u8]) -> anyhow::Result<()> {
    let (program, args) = argv.split_first().context("exec: needs a command")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input still runs.
        let _ = stdin.write_all(input);
    }
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use std::io::Read as _;
                let _ = pipe.by_ref().take(512).read_to_string(&mut stderr);
            }
            anyhow::bail!("{program} exited with {status}: {}", stderr.trim());
        }
        if started.elapsed() > MAIL_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("{program} took over {MAIL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(user: &str) -> Change {
        Change {
            user: user.into(),
            password: "pw".into(),
            address: None,
            folder: "dc2914e4".into(),
            seq: 42,
        }
    }

    #[test]
    fn the_message_carries_the_seq_in_its_subject() {
        let message = change("alice").message("alice@example.org").unwrap();
        let text = String::from_utf8(message).unwrap();
        assert!(text.contains("Subject: pingfleet seq=42\r\n"), "{text}");
        assert!(text.contains("To: alice@example.org\r\n"), "{text}");
        assert!(text.contains("Message-ID: <"), "{text}");
        assert!(text.contains("Date: "), "{text}");
        // A user name that is no address still gets a message.
        let odd = change("CORP\\alice").message("CORP\\alice@localhost");
        assert!(odd.is_ok());
    }

    #[test]
    fn the_recipient_is_the_address_column_else_the_user_else_user_at_domain() {
        let mut with_address = change("alice");
        with_address.address = Some("a.smith@corp.example".into());
        assert_eq!(with_address.recipient("x"), "a.smith@corp.example");
        assert_eq!(
            change("bob@corp.example").recipient("x"),
            "bob@corp.example"
        );
        assert_eq!(
            change("carol").recipient("corp.example"),
            "carol@corp.example"
        );
    }

    #[test]
    fn templates_take_user_folder_and_seq() {
        assert_eq!(
            fill("/srv/{user}/Maildir/{folder}/{seq}", &change("alice")),
            "/srv/alice/Maildir/dc2914e4/42"
        );
    }

    #[test]
    fn a_maildir_delivery_lands_in_new_and_exec_gets_the_message_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let store = MailStore::Maildir {
            path: format!("{}/{{user}}/Maildir", dir.path().display()),
        };
        let mut deliverer = Deliverer::new(HashMap::new());
        deliverer.deliver(&store, &change("alice")).unwrap();
        deliverer.deliver(&store, &change("alice")).unwrap();
        let new = dir.path().join("alice/Maildir/new");
        let files: Vec<_> = std::fs::read_dir(&new).unwrap().collect();
        assert_eq!(files.len(), 2, "two distinct names");
        assert_eq!(
            std::fs::read_dir(dir.path().join("alice/Maildir/tmp"))
                .unwrap()
                .count(),
            0
        );
        let error = deliverer.deliver(&store, &change("../../etc")).unwrap_err();
        assert!(
            error.to_string().contains("cannot name a Maildir"),
            "{error}"
        );
        let copy = dir.path().join("copy-{seq}.eml");
        let exec = MailStore::Exec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "cat > \"$0\"".into(),
                copy.display().to_string(),
            ],
        };
        deliverer.deliver(&exec, &change("alice")).unwrap();
        let copied = std::fs::read_to_string(dir.path().join("copy-42.eml")).unwrap();
        assert!(copied.contains("Subject: pingfleet seq=42"));
        let failing = MailStore::Exec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo no such user >&2; exit 67".into(),
            ],
        };
        let error = deliverer.deliver(&failing, &change("alice")).unwrap_err();
        assert!(error.to_string().contains("no such user"), "{error}");
    }
}
