//! The change-notification datagram: one UDP datagram per mailbox change, a line of
//! UTF-8 `key=value` fields, sent by the mailbox back-end (pingfleet's injector, or
//! `pingfleet notify`, or any UDP tool) to the front-end that parks the user's Pings.
//!
//! ```text
//! user=user17 folder=5 kind=new count=1 size=2048 seq=42
//! ```
//!
//! `user` and `folder` are required; `kind` is `new` (default: new mail in the folder) or
//! `hierarchy` (the folder list changed); `count` items (default 1) of `size` bytes;
//! `seq` is the sender's own sequence number, carried into the new item's subject so a
//! device can tell which notification a synced item answers.

use std::fmt;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// New items arrived in the folder.
    NewItem,
    /// The folder hierarchy changed (a folder was added).
    Hierarchy,
}

/// One change notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub user: String,
    pub folder: String,
    pub kind: ChangeKind,
    pub count: u32,
    pub size_bytes: u32,
    pub seq: Option<u64>,
}

/// The largest `count` one datagram may ask for, so a typo cannot flood a mailbox.
pub const MAX_COUNT: u32 = 10_000;
/// The largest item a datagram may ask for (`size`): larger ones are refused, never
/// stored or sent.
pub const MAX_ITEM_BYTES: u32 = 4 * 1024 * 1024;
/// The longest datagram read; a longer one is refused whole, not cut and applied.
pub const MAX_DATAGRAM_BYTES: usize = 2048;
/// The item size used when a datagram names none.
pub const DEFAULT_SIZE_BYTES: u32 = 2048;

/// Why a datagram is not a notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("the datagram is not UTF-8")]
    NotText,
    #[error("field {0:?} is not key=value")]
    NotKeyValue(String),
    #[error("unknown field {0:?} (known: user, folder, kind, count, size, seq)")]
    UnknownField(String),
    #[error("field {field} has invalid value {value:?}: {expected}")]
    BadValue {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("the required field {0} is missing")]
    Missing(&'static str),
    #[error("the datagram is longer than {MAX_DATAGRAM_BYTES} bytes")]
    TooLong,
}

impl Notification {
    /// A new-item notification for one item of the default size.
    pub fn new_item(user: impl Into<String>, folder: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            folder: folder.into(),
            kind: ChangeKind::NewItem,
            count: 1,
            size_bytes: DEFAULT_SIZE_BYTES,
            seq: None,
        }
    }

    /// Parses one datagram. A trailing newline is allowed.
    pub fn parse(datagram: &[u8]) -> Result<Self, NotificationError> {
        if datagram.len() > MAX_DATAGRAM_BYTES {
            return Err(NotificationError::TooLong);
        }
        let text = std::str::from_utf8(datagram).map_err(|_| NotificationError::NotText)?;
        let mut user = None;
        let mut folder = None;
        let mut notification = Self::new_item(String::new(), String::new());
        for field in text.split_ascii_whitespace() {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| NotificationError::NotKeyValue(field.to_owned()))?;
            let bad = |field: &'static str, expected: &'static str| NotificationError::BadValue {
                field,
                value: value.to_owned(),
                expected,
            };
            match key {
                "user" if !value.is_empty() => user = Some(value.to_owned()),
                "user" => return Err(bad("user", "a user name")),
                "folder" if !value.is_empty() => folder = Some(value.to_owned()),
                "folder" => return Err(bad("folder", "a folder id")),
                "kind" => {
                    notification.kind = match value {
                        "new" => ChangeKind::NewItem,
                        "hierarchy" => ChangeKind::Hierarchy,
                        _ => return Err(bad("kind", "new or hierarchy")),
                    }
                }
                "count" => {
                    notification.count = value
                        .parse()
                        .ok()
                        .filter(|count| (1..=MAX_COUNT).contains(count))
                        .ok_or_else(|| bad("count", "a number from 1 to 10000"))?
                }
                "size" => {
                    notification.size_bytes = value
                        .parse()
                        .ok()
                        .filter(|size| *size <= MAX_ITEM_BYTES)
                        .ok_or_else(|| bad("size", "a byte count up to 4194304"))?
                }
                "seq" => {
                    notification.seq = Some(
                        value
                            .parse()
                            .map_err(|_| bad("seq", "an unsigned number"))?,
                    )
                }
                other => return Err(NotificationError::UnknownField(other.to_owned())),
            }
        }
        notification.user = user.ok_or(NotificationError::Missing("user"))?;
        notification.folder = folder.ok_or(NotificationError::Missing("folder"))?;
        Ok(notification)
    }
}

/// What precedes a notification's sequence number in the subject of the item it puts
/// in a mailbox; a device matches the item to the notification by it.
const SUBJECT_TAG: &str = "pingfleet seq=";

/// The subject of the item notification `seq` delivers.
pub fn subject_for_seq(seq: u64) -> String {
    format!("{SUBJECT_TAG}{seq}")
}

/// The sequence number a subject carries (anywhere in it, so a mail server's own
/// prefixes do not hide it), if any.
pub fn seq_in_subject(subject: &str) -> Option<u64> {
    let after = &subject[subject.find(SUBJECT_TAG)? + SUBJECT_TAG.len()..];
    let digits = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    after[..digits].parse().ok()
}

impl fmt::Display for Notification {
    /// The datagram text, without a trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user={} folder={}", self.user, self.folder)?;
        if self.kind == ChangeKind::Hierarchy {
            f.write_str(" kind=hierarchy")?;
        }
        if self.count != 1 {
            write!(f, " count={}", self.count)?;
        }
        if self.size_bytes != DEFAULT_SIZE_BYTES {
            write!(f, " size={}", self.size_bytes)?;
        }
        if let Some(seq) = self.seq {
            write!(f, " seq={seq}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_carry_the_sequence_number() {
        assert_eq!(seq_in_subject(&subject_for_seq(42)), Some(42));
        assert_eq!(seq_in_subject("Fwd: pingfleet seq=7 (resent)"), Some(7));
        assert_eq!(seq_in_subject("pingfleet item 3"), None);
        assert_eq!(seq_in_subject("pingfleet seq="), None);
        assert_eq!(
            seq_in_subject("pingfleet seq=99999999999999999999999"),
            None
        );
    }

    #[test]
    fn full_and_minimal_forms() {
        let full = Notification::parse(b"user=u1 folder=5 kind=new count=3 size=100 seq=9\n");
        assert_eq!(
            full,
            Ok(Notification {
                user: "u1".into(),
                folder: "5".into(),
                kind: ChangeKind::NewItem,
                count: 3,
                size_bytes: 100,
                seq: Some(9),
            })
        );
        let minimal = Notification::parse(b"folder=5 user=u1").unwrap();
        assert_eq!(minimal, Notification::new_item("u1", "5"));
    }

    #[test]
    fn display_round_trips() {
        let mut notification = Notification::new_item("user7", "5");
        notification.kind = ChangeKind::Hierarchy;
        notification.seq = Some(12);
        notification.count = 2;
        let text = notification.to_string();
        assert_eq!(text, "user=user7 folder=5 kind=hierarchy count=2 seq=12");
        assert_eq!(Notification::parse(text.as_bytes()), Ok(notification));
    }

    #[test]
    fn malformed_datagrams_are_explained() {
        let cases: &[(&[u8], NotificationError)] = &[
            (b"\xff", NotificationError::NotText),
            (
                b"user=u folder",
                NotificationError::NotKeyValue("folder".into()),
            ),
            (
                b"user=u folder=5 x=1",
                NotificationError::UnknownField("x".into()),
            ),
            (b"folder=5", NotificationError::Missing("user")),
            (b"user=u", NotificationError::Missing("folder")),
            (b"", NotificationError::Missing("user")),
        ];
        for (datagram, expected) in cases {
            assert_eq!(Notification::parse(datagram).as_ref(), Err(expected));
        }
        assert!(Notification::parse(b"user=u folder=5 count=0").is_err());
        // Sizes past the item limit, and datagrams past the length limit, are refused
        // whole (a datagram was once cut to 2,048 bytes and applied without its tail).
        assert!(Notification::parse(b"user=u folder=5 size=4194304").is_ok());
        assert!(Notification::parse(b"user=u folder=5 size=4194305").is_err());
        assert!(Notification::parse(b"user=u folder=5 size=4294967295").is_err());
        let long = format!("user=u folder=5 seq=1{}", " ".repeat(MAX_DATAGRAM_BYTES));
        assert_eq!(
            Notification::parse(long.as_bytes()),
            Err(NotificationError::TooLong)
        );
        assert!(Notification::parse(b"user=u folder=5 kind=moved").is_err());
        assert!(Notification::parse(b"user= folder=5").is_err());
    }
}

/// Flags of `pingfleet notify`.
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyArgs {
    /// The server partition's UDP notification address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2883")]
    pub to: std::net::SocketAddr,
    /// The user whose mailbox changed.
    #[arg(long)]
    pub user: String,
    /// The folder id that changed (the Inbox of the bundled server is 5).
    #[arg(long, default_value = "5")]
    pub folder: String,
    /// How many new items.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_COUNT)))]
    pub count: u32,
    /// Size of each new item in bytes.
    #[arg(long, default_value_t = DEFAULT_SIZE_BYTES)]
    pub size: u32,
    /// Report a folder-hierarchy change instead of new items.
    #[arg(long)]
    pub hierarchy: bool,
    /// Sequence number to carry into the item's subject.
    #[arg(long)]
    pub seq: Option<u64>,
}

/// Sends the datagram `pingfleet notify` describes and returns its text.
pub fn send(args: &NotifyArgs) -> anyhow::Result<String> {
    let notification = Notification {
        user: args.user.clone(),
        folder: args.folder.clone(),
        kind: if args.hierarchy {
            ChangeKind::Hierarchy
        } else {
            ChangeKind::NewItem
        },
        count: args.count,
        size_bytes: args.size,
        seq: args.seq,
    };
    let text = notification.to_string();
    let bind: std::net::SocketAddr = if args.to.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(bind)?;
    socket
        .send_to(text.as_bytes(), args.to)
        .map_err(|err| anyhow::anyhow!("cannot send to {}: {err}", args.to))?;
    Ok(text)
}
