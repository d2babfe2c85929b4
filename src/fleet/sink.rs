//! Where the injector puts each planned change. Against `pingfleet serve` it is a
//! datagram on the server's notify port (`--notify`); against any other EAS server it is
//! a real mail in the user's real mailbox (`--inject URL`), which the server then finds
//! the way it finds any mail.
//!
//! A datagram leaves from the injector thread itself. A mail takes round trips, so it is
//! handed to a pool of sender threads (a user's changes always to the same one, so they
//! arrive in order over its open sessions); a sender records the injector's lag when the
//! mail store has accepted the mail.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use percent_encoding::percent_decode_str;

use super::mail::{Change, Deliverer, MailStore};
use super::stats::{tally, tally_seen, FleetStats};
use crate::notification::Notification;
use crate::partition::partition_of;

/// Changes queued for one sender thread; beyond, a change is counted as an error (and
/// its device will count it lost) rather than queued without bound.
pub const SENDER_QUEUE: usize = 4096;
/// Mailbox an `imap://` URL without a path appends to.
const DEFAULT_MAILBOX: &str = "INBOX";
/// Domain an `smtp://` URL without `?domain=` gives users without an address.
const DEFAULT_DOMAIN: &str = "localhost";

/// An `--inject` URL that names no mail store: the URL and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--inject {url:?}: {problem}")]
pub struct InjectUrlError {
    pub url: String,
    pub problem: InjectUrlProblem,
}

/// What is wrong with an `--inject` URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectUrlProblem {
    #[error("the server needs a port, e.g. 127.0.0.1:143")]
    NoPort,
    #[error("{0:?} is not a port")]
    BadPort(String),
    #[error("the server needs a host")]
    NoHost,
    #[error("unknown parameter {0:?} (known: domain)")]
    UnknownParameter(String),
    #[error("a Maildir is an absolute path, e.g. maildir:/srv/mail/{{user}}/Maildir")]
    RelativeMaildir,
    #[error("unbalanced quotes")]
    UnbalancedQuotes,
    #[error("exec: needs a command")]
    NoCommand,
    #[error("expected imap://HOST:PORT, smtp://HOST:PORT, maildir:/PATH or exec:COMMAND")]
    UnknownScheme,
}

/// An `--inject` URL: `imap://[LOGIN[:PASSWORD]@]HOST:PORT[/MAILBOX]`,
/// `smtp://HOST:PORT[?domain=DOMAIN]`, `maildir:PATH`, `exec:COMMAND ARGS`. `{user}`
/// in a login, mailbox or path, and `{user}`, `{folder}`, `{seq}` in a command, are
/// replaced per change.
pub fn parse_inject_url(url: &str) -> Result<MailStore, InjectUrlError> {
    let problem = |problem| InjectUrlError {
        url: url.to_owned(),
        problem,
    };
    if let Some(rest) = url.strip_prefix("imap://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (host, port) = host_and_port(host_port).map_err(problem)?;
        let decode = |text: &str| percent_decode_str(text).decode_utf8_lossy().into_owned();
        let (login, password) = match userinfo.map(|info| info.split_once(':')) {
            None => (None, None),
            Some(None) => (userinfo.map(decode), None),
            Some(Some((login, password))) => (Some(decode(login)), Some(decode(password))),
        };
        let mailbox = match path.is_empty() {
            true => DEFAULT_MAILBOX.to_owned(),
            false => decode(path),
        };
        return Ok(MailStore::Imap {
            host,
            port,
            login,
            password,
            mailbox,
        });
    }
    if let Some(rest) = url.strip_prefix("smtp://") {
        let (host_port, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (host, port) = host_and_port(host_port.trim_end_matches('/')).map_err(problem)?;
        let mut domain = DEFAULT_DOMAIN.to_owned();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "domain" => domain = value.into_owned(),
                other => {
                    return Err(problem(InjectUrlProblem::UnknownParameter(
                        other.to_owned(),
                    )))
                }
            }
        }
        return Ok(MailStore::Smtp { host, port, domain });
    }
    if let Some(path) = url.strip_prefix("maildir:") {
        if !path.starts_with('/') {
            return Err(problem(InjectUrlProblem::RelativeMaildir));
        }
        return Ok(MailStore::Maildir {
            path: path.to_owned(),
        });
    }
    if let Some(command) = url.strip_prefix("exec:") {
        let argv =
            shlex::split(command).ok_or_else(|| problem(InjectUrlProblem::UnbalancedQuotes))?;
        if argv.is_empty() {
            return Err(problem(InjectUrlProblem::NoCommand));
        }
        return Ok(MailStore::Exec { argv });
    }
    Err(problem(InjectUrlProblem::UnknownScheme))
}

fn host_and_port(text: &str) -> Result<(String, u16), InjectUrlProblem> {
    let (host, port) = text.rsplit_once(':').ok_or(InjectUrlProblem::NoPort)?;
    let port = port
        .parse()
        .map_err(|_| InjectUrlProblem::BadPort(port.to_owned()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(InjectUrlProblem::NoHost);
    }
    Ok((host.to_owned(), port))
}

/// The `--inject` value as given, checked.
pub fn check_inject_url(url: &str) -> Result<String, InjectUrlError> {
    parse_inject_url(url).map(|_| url.to_owned())
}

/// Where the injector's changes go, one destination per server partition (a user's
/// partition picks it, as the server's own partitioning does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destinations {
    /// pingfleet datagrams to each partition's notify port.
    Datagrams(Vec<SocketAddr>),
    /// Mail into each partition's mail store, over this many sender threads.
    Mail {
        stores: Vec<MailStore>,
        senders: usize,
    },
}

/// What a device's changes need beyond its user and folder: its password (for an IMAP
/// login as the user) and its address (for SMTP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    pub password: String,
    pub address: Option<String>,
}

/// One change as the injector plans it, borrowed from its tables.
#[derive(Debug, Clone, Copy)]
pub struct PlannedChange<'a> {
    pub user: &'a str,
    pub folder: &'a str,
    pub account: Option<&'a Account>,
    pub seq: u64,
    /// The instant it was planned for (latency counts from it).
    pub at: Instant,
}

/// A change ready to leave at its planned instant `at`.
#[derive(Debug)]
pub enum Prepared {
    Datagram {
        bytes: Vec<u8>,
        to: SocketAddr,
        at: Instant,
    },
    Mail {
        change: Change,
        at: Instant,
    },
}

/// The injector's open outlet: a UDP socket, or the mail sender threads.
#[derive(Debug)]
pub enum Outlet {
    Datagrams {
        socket: UdpSocket,
        partitions: Vec<SocketAddr>,
        /// A loopback socket connected to itself, for [`Outlet::warm_up`].
        warm: UdpSocket,
    },
    Mail(MailSenders),
}

impl Outlet {
    /// Opens the outlet. Mail senders start at once and log in for `users` (user and
    /// account of each device) while the fleet ramps up, so the hold's first changes do
    /// not wait for logins.
    pub fn open(
        destinations: Destinations,
        users: Vec<(String, Account)>,
    ) -> std::io::Result<Self> {
        Ok(match destinations {
            Destinations::Datagrams(partitions) => {
                let socket = UdpSocket::bind("0.0.0.0:0")?;
                crate::kernel_stamp::stamp_transmits(&socket, true)?;
                let warm = UdpSocket::bind("127.0.0.1:0")?;
                warm.connect(warm.local_addr()?)?;
                warm.set_nonblocking(true)?;
                Self::Datagrams {
                    socket,
                    partitions,
                    warm,
                }
            }
            Destinations::Mail { stores, senders } => {
                Self::Mail(MailSenders::start(stores, senders, SENDER_QUEUE, users))
            }
        })
    }

    /// Whether [`Outlet::send`] tells when each change left (datagrams do; a mail's
    /// departure is its store's business).
    pub fn stamps_departures(&self) -> bool {
        matches!(self, Self::Datagrams { .. })
    }

    /// Runs the send path once through the kernel with a byte to the outlet's own
    /// loopback socket (which takes back the one before), so that the next change
    /// leaves as fast as a warm path allows. Mail has nothing to warm.
    pub fn warm_up(&self) {
        if let Self::Datagrams { socket, warm, .. } = self {
            let mut byte = [0u8; 1];
            while warm.recv(&mut byte).is_ok() {}
            if let Ok(to) = warm.local_addr() {
                let _ = socket.send_to(&byte, to);
            }
        }
    }

    /// Makes `change` ready to leave (the datagram formatted, or the mail written), so
    /// that at its instant only the send itself is left.
    pub fn prepare(&self, change: &PlannedChange<'_>) -> Prepared {
        match self {
            Self::Datagrams { partitions, .. } => {
                let partition = partition_of(change.user, partitions.len() as u32) as usize;
                let mut notification = Notification::new_item(change.user, change.folder);
                notification.seq = Some(change.seq);
                Prepared::Datagram {
                    bytes: notification.to_string().into_bytes(),
                    to: partitions[partition],
                    at: change.at,
                }
            }
            // Only a mail needs the account, and its own copy for the sender thread.
            Self::Mail(_) => {
                let account = change.account.cloned().unwrap_or_default();
                Prepared::Mail {
                    change: Change {
                        user: change.user.to_owned(),
                        password: account.password,
                        address: account.address,
                        folder: change.folder.to_owned(),
                        seq: change.seq,
                    },
                    at: change.at,
                }
            }
        }
    }

    /// Sends changes prepared for the same instant, or already late: datagrams with one
    /// system call (`sendmmsg`). A datagram is counted (sent, lag) here, and the instant
    /// each left is returned, in order; a mail is counted by its sender thread once it
    /// is accepted, and has no instant here.
    pub fn send_all(&self, batch: Vec<Prepared>, stats: &mut FleetStats) -> Vec<Option<Instant>> {
        match self {
            Self::Datagrams { socket, .. } => send_datagrams(socket, &batch, stats),
            Self::Mail(senders) => batch
                .into_iter()
                .map(|prepared| {
                    if let Prepared::Mail { change, at } = prepared {
                        senders.submit(change, at, stats);
                    }
                    None
                })
                .collect(),
        }
    }

    /// Whether the outlet has finished preparing (every mail sender has logged in for
    /// its users); a datagram outlet always has.
    pub fn is_ready(&self) -> bool {
        match self {
            Self::Datagrams { .. } => true,
            Self::Mail(senders) => senders.preparing.load(Ordering::Relaxed) == 0,
        }
    }

    /// Waits for the senders to finish their queues; their counts join `stats`.
    pub fn close(self, stats: &mut FleetStats) {
        if let Self::Mail(senders) = self {
            for sent in senders.join() {
                stats.counters.add(&sent.counters);
                stats.injector_lag.merge(&sent.injector_lag);
                stats.intervals.intervals.extend(sent.intervals.intervals);
            }
        }
    }
}

/// A change for a sender thread.
struct Job {
    store: usize,
    change: Change,
    planned_at: Instant,
}

/// The pool of mail sender threads.
#[derive(Debug)]
pub struct MailSenders {
    stores: usize,
    /// Sender threads still preparing.
    preparing: Arc<AtomicUsize>,
    queues: Vec<SyncSender<Job>>,
    threads: Vec<JoinHandle<FleetStats>>,
}

impl MailSenders {
    /// `senders` threads, each with a queue of `capacity` changes, each first
    /// preparing for the `users` whose changes it will deliver.
    fn start(
        stores: Vec<MailStore>,
        senders: usize,
        capacity: usize,
        users: Vec<(String, Account)>,
    ) -> Self {
        let senders = senders.max(1);
        let smtp = Deliverer::smtp_transports(&stores, senders as u32);
        let mut queues = Vec::with_capacity(senders);
        let mut threads = Vec::with_capacity(senders);
        let preparing = Arc::new(AtomicUsize::new(senders));
        let mut warm: Vec<Vec<(String, Account)>> = vec![Vec::new(); senders];
        for (user, account) in users {
            warm[partition_of(&user, senders as u32) as usize].push((user, account));
        }
        for warm in warm {
            let (queue, jobs) = mpsc::sync_channel::<Job>(capacity);
            let stores = stores.clone();
            let mut deliverer = Deliverer::new(smtp.clone());
            queues.push(queue);
            let preparing = preparing.clone();
            threads.push(std::thread::spawn(move || {
                for (user, account) in warm {
                    let store = &stores[partition_of(&user, stores.len() as u32) as usize];
                    let change = Change {
                        user,
                        password: account.password,
                        address: account.address,
                        folder: String::new(),
                        seq: 0,
                    };
                    deliverer.prepare(store, &change);
                }
                preparing.fetch_sub(1, Ordering::Relaxed);
                let mut stats = FleetStats::default();
                for job in jobs {
                    match deliverer.deliver(&stores[job.store], &job.change) {
                        Ok(()) => {
                            stats.counters.notifications_sent += 1;
                            let lag = Instant::now().saturating_duration_since(job.planned_at);
                            stats.record_injector_lag(lag);
                        }
                        Err(err) => {
                            tally_seen(&mut stats.counters.errors, &format!("injector: {err:#}"));
                        }
                    }
                }
                deliverer.close();
                stats.intervals.close();
                stats
            }));
        }
        Self {
            stores: stores.len(),
            preparing,
            queues,
            threads,
        }
    }

    fn submit(&self, change: Change, planned_at: Instant, stats: &mut FleetStats) {
        let store = partition_of(&change.user, self.stores as u32) as usize;
        let sender = partition_of(&change.user, self.queues.len() as u32) as usize;
        let job = Job {
            store,
            change,
            planned_at,
        };
        match self.queues[sender].try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tally(&mut stats.counters.errors, "injector: mail queue full");
            }
            Err(TrySendError::Disconnected(_)) => {
                tally(&mut stats.counters.errors, "injector: mail sender ended");
            }
        }
    }

    fn join(self) -> Vec<FleetStats> {
        drop(self.queues);
        self.threads
            .into_iter()
            .map(|thread| {
                thread.join().unwrap_or_else(|_| {
                    let mut stats = FleetStats::default();
                    tally(&mut stats.counters.errors, "injector: mail sender panicked");
                    stats
                })
            })
            .collect()
    }
}

/// A prepared datagram's bytes, destination and planned instant.
fn datagram(prepared: &Prepared) -> Option<(&[u8], SocketAddr, Instant)> {
    match prepared {
        Prepared::Datagram { bytes, to, at } => Some((bytes, *to, *at)),
        Prepared::Mail { .. } => None,
    }
}

/// Sends the prepared datagrams from `socket`, with one `sendmmsg` when there are
/// several (each one it did not take is sent alone; nothing is allocated before a lone
/// datagram leaves), counts them, and records each one's lag from its plan to its
/// transmit stamp (or, without a stamp, to when it was handed to the kernel). Returns
/// when each left.
fn send_datagrams(
    socket: &UdpSocket,
    batch: &[Prepared],
    stats: &mut FleetStats,
) -> Vec<Option<Instant>> {
    let sending_at = Instant::now();
    let taken = match batch.len() {
        0 | 1 => 0,
        _ => send_many(socket, batch).unwrap_or(0),
    };
    let mut sent = vec![true; taken];
    for prepared in &batch[taken..] {
        let alone =
            datagram(prepared).is_some_and(|(bytes, to, _)| socket.send_to(bytes, to).is_ok());
        sent.push(alone);
    }
    let stamps = crate::kernel_stamp::sent_each(socket, sending_at, batch.len());
    sent.iter()
        .zip(stamps)
        .zip(batch)
        .map(|((sent, stamp), prepared)| {
            let planned = datagram(prepared).map(|(_, _, at)| at).filter(|_| *sent);
            let Some(planned) = planned else {
                tally(&mut stats.counters.errors, "notification send failed");
                return None;
            };
            stats.counters.notifications_sent += 1;
            let left = stamp.unwrap_or(sending_at);
            stats.record_injector_lag(left.saturating_duration_since(planned));
            Some(left)
        })
        .collect()
}

/// One `sendmmsg` of the prepared datagrams: how many of them the kernel took.
fn send_many(socket: &UdpSocket, batch: &[Prepared]) -> std::io::Result<usize> {
    use nix::sys::socket::{sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    let datagrams: Vec<(&[u8], SocketAddr, Instant)> = batch.iter().filter_map(datagram).collect();
    let slices: Vec<[IoSlice<'_>; 1]> = datagrams
        .iter()
        .map(|(bytes, _, _)| [IoSlice::new(bytes)])
        .collect();
    let addresses: Vec<Option<SockaddrStorage>> = datagrams
        .iter()
        .map(|(_, to, _)| Some(SockaddrStorage::from(*to)))
        .collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(datagrams.len(), None);
    let results = sendmmsg(
        socket.as_raw_fd(),
        &mut headers,
        &slices,
        &addresses,
        [],
        MsgFlags::empty(),
    )?;
    Ok(results.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_due_together_leave_with_one_call_in_order_and_each_is_counted() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let to = server.local_addr().unwrap();
        let outlet = Outlet::open(Destinations::Datagrams(vec![to]), Vec::new()).unwrap();
        let planned = Instant::now();
        let batch: Vec<Prepared> = (0..5)
            .map(|seq| {
                let mut notification = Notification::new_item("u", "5");
                notification.seq = Some(seq);
                Prepared::Datagram {
                    bytes: notification.to_string().into_bytes(),
                    to,
                    at: planned,
                }
            })
            .collect();
        let mut stats = FleetStats::default();
        let left = outlet.send_all(batch, &mut stats);
        assert_eq!(left.len(), 5);
        assert!(left.iter().all(|at| at.is_some_and(|at| at >= planned)));
        assert_eq!(stats.counters.notifications_sent, 5);
        assert_eq!(stats.injector_lag.histogram().len(), 5);
        let mut buffer = [0u8; 64];
        for seq in 0..5 {
            let len = server.recv(&mut buffer).unwrap();
            let notification = Notification::parse(&buffer[..len]).unwrap();
            assert_eq!(notification.seq, Some(seq), "datagram {seq} out of order");
        }
        // One system call took them all (none was left to be sent alone).
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let three: Vec<Prepared> = (0..3)
            .map(|_| Prepared::Datagram {
                bytes: b"x".to_vec(),
                to,
                at: planned,
            })
            .collect();
        assert_eq!(send_many(&socket, &three).unwrap(), 3);
    }

    #[test]
    fn inject_urls() {
        assert_eq!(
            parse_inject_url("imap://127.0.0.1:1143").unwrap(),
            MailStore::Imap {
                host: "127.0.0.1".into(),
                port: 1143,
                login: None,
                password: None,
                mailbox: "INBOX".into(),
            }
        );
        assert_eq!(
            parse_inject_url("imap://%7Buser%7D*admin:s%40cret@mail.example:143/Shared%2Fx")
                .unwrap(),
            MailStore::Imap {
                host: "mail.example".into(),
                port: 143,
                login: Some("{user}*admin".into()),
                password: Some("s@cret".into()),
                mailbox: "Shared/x".into(),
            }
        );
        assert_eq!(
            parse_inject_url("smtp://[::1]:25?domain=corp.example").unwrap(),
            MailStore::Smtp {
                host: "::1".into(),
                port: 25,
                domain: "corp.example".into(),
            }
        );
        assert_eq!(
            parse_inject_url("exec:/usr/lib/dovecot/dovecot-lda -d '{user}' -m INBOX").unwrap(),
            MailStore::Exec {
                argv: [
                    "/usr/lib/dovecot/dovecot-lda",
                    "-d",
                    "{user}",
                    "-m",
                    "INBOX"
                ]
                .map(String::from)
                .to_vec(),
            }
        );
        for (bad, why) in [
            ("imap://host", "needs a port"),
            ("imap://host:x", "not a port"),
            ("smtp://h:25?dom=x", "unknown parameter"),
            ("maildir:relative/path", "absolute path"),
            ("exec:", "needs a command"),
            ("exec:echo 'oops", "unbalanced quotes"),
            ("pop3://h:110", "expected imap://"),
        ] {
            assert_eq!(check_inject_url(bad).unwrap_err().url, bad);
            if bad == "imap://host" {
                let problem = check_inject_url(bad).unwrap_err().problem;
                assert_eq!(problem, InjectUrlProblem::NoPort);
            }
            let error = check_inject_url(bad).unwrap_err().to_string();
            assert!(error.contains(why) && error.contains(bad), "{bad}: {error}");
        }
    }

    #[test]
    fn a_full_sender_queue_is_counted_not_grown() {
        // A command that never ends keeps the only sender busy.
        let dir = tempfile::tempdir().unwrap();
        let block = dir.path().join("block");
        let senders = MailSenders::start(
            vec![MailStore::Exec {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    format!("while [ ! -e {} ]; do sleep 0.01; done", block.display()),
                ],
            }],
            1,
            4,
            Vec::new(),
        );
        let mut stats = FleetStats::default();
        let change = |seq| Change {
            user: "alice".into(),
            password: String::new(),
            address: None,
            folder: "5".into(),
            seq,
        };
        for seq in 0..20 {
            senders.submit(change(seq), Instant::now(), &mut stats);
        }
        // One in the sender's hands, four queued: the rest refused and counted.
        let refused = stats.counters.errors["injector: mail queue full"];
        assert!((15..=16).contains(&refused), "{refused}");
        std::fs::write(&block, b"").unwrap();
        let sent: u64 = senders
            .join()
            .iter()
            .map(|s| s.counters.notifications_sent)
            .sum();
        assert_eq!(sent + refused, 20);
    }
}
