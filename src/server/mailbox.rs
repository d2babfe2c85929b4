//! The embedded mailbox of one user: a realistic folder hierarchy, the items that change
//! notifications add, and the per-device sync state (sync keys and how far each device
//! has synced each folder).
//!
//! Whether a device has unseen changes is derived, never stored apart: a folder has
//! changes for a device when its newest item is newer than what that device last synced.
//! So a change that arrives while no Ping is parked is still there for the next Ping, and
//! a Ping is answered with Status 2 only when the following Sync really returns items.

use std::collections::VecDeque;

use crate::eas::commands::folder_sync::{folder_type, Folder};

/// The standard hierarchy every mailbox starts with: (ServerId, name, type, Ping class).
/// Ids follow the alphabetical order of the names, so the Inbox is `5` as in the
/// protocol document's examples.
pub(crate) const STANDARD_FOLDERS: [(&str, &str, u32, &str); 9] = [
    ("1", "Calendar", folder_type::CALENDAR, "Calendar"),
    ("2", "Contacts", folder_type::CONTACTS, "Contacts"),
    ("3", "Deleted Items", folder_type::DELETED_ITEMS, "Email"),
    ("4", "Drafts", folder_type::DRAFTS, "Email"),
    ("5", "Inbox", folder_type::INBOX, "Email"),
    ("6", "Notes", folder_type::NOTES, "Notes"),
    ("7", "Outbox", folder_type::OUTBOX, "Email"),
    ("8", "Sent Items", folder_type::SENT_ITEMS, "Email"),
    ("9", "Tasks", folder_type::TASKS, "Tasks"),
];

/// Ids of folders added by hierarchy notifications start here.
const FIRST_USER_FOLDER_ID: u32 = 100;

/// Folders a hierarchy change may add to one mailbox; beyond, changes are refused (and
/// counted), so a folder's index never wraps onto another folder.
pub(crate) const MAX_USER_FOLDERS: usize = 1000;

/// Items kept per folder; older ones are dropped (a device that falls this far behind
/// gets the newest ones).
pub(crate) const MAX_ITEMS_PER_FOLDER: usize = 256;

/// A folder's index in a mailbox (standard folders first, then user folders).
pub(crate) type FolderIndex = u16;

/// One mail item, as much as a Sync response needs to describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Position in the folder, from 1; also the item's ServerId suffix.
    pub seq: u64,
    pub size_bytes: u32,
    /// The notification's own `seq`, echoed in the subject for the device.
    pub notify_seq: Option<u64>,
}

#[derive(Debug, Default)]
struct FolderItems {
    /// The seq of the newest item ever added (0 when none).
    newest_seq: u64,
    items: VecDeque<Item>,
}

#[derive(Debug)]
struct UserFolder {
    id: String,
    name: String,
    /// The hierarchy version that added it.
    created_version: u32,
}

/// One user's folders and items.
#[derive(Debug, Default)]
pub struct Mailbox {
    folders: Vec<FolderItems>,
    user_folders: Vec<UserFolder>,
    /// Bumped by every hierarchy change; FolderSync keys are this plus one.
    hierarchy_version: u32,
}

impl Mailbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of a folder id, standard or added.
    pub fn folder_index(&self, id: &str) -> Option<FolderIndex> {
        if let Some(index) = STANDARD_FOLDERS.iter().position(|(known, ..)| *known == id) {
            return Some(index as FolderIndex);
        }
        let user = self
            .user_folders
            .iter()
            .position(|folder| folder.id == id)?;
        Some((STANDARD_FOLDERS.len() + user) as FolderIndex)
    }

    /// The ServerId of a folder index.
    pub fn folder_id(&self, index: FolderIndex) -> &str {
        let index = usize::from(index);
        match STANDARD_FOLDERS.get(index) {
            Some((id, ..)) => id,
            None => &self.user_folders[index - STANDARD_FOLDERS.len()].id,
        }
    }

    pub fn hierarchy_version(&self) -> u32 {
        self.hierarchy_version
    }

    /// Adds `count` items to a folder and returns the newest seq.
    pub fn add_items(
        &mut self,
        index: FolderIndex,
        count: u32,
        size_bytes: u32,
        notify_seq: Option<u64>,
    ) -> u64 {
        let index = usize::from(index);
        if self.folders.len() <= index {
            self.folders.resize_with(index + 1, FolderItems::default);
        }
        let folder = &mut self.folders[index];
        for _ in 0..count {
            folder.newest_seq += 1;
            if folder.items.len() == MAX_ITEMS_PER_FOLDER {
                folder.items.pop_front();
            }
            folder.items.push_back(Item {
                seq: folder.newest_seq,
                size_bytes,
                notify_seq,
            });
        }
        folder.newest_seq
    }

    /// Adds a mail folder (a hierarchy change) and returns its id; `None` when the
    /// mailbox has [`MAX_USER_FOLDERS`] already.
    pub fn add_folder(&mut self) -> Option<String> {
        if self.user_folders.len() >= MAX_USER_FOLDERS {
            return None;
        }
        self.hierarchy_version += 1;
        let number = self.user_folders.len() as u32;
        let id = (FIRST_USER_FOLDER_ID + number).to_string();
        self.user_folders.push(UserFolder {
            id: id.clone(),
            name: format!("Folder {number}"),
            created_version: self.hierarchy_version,
        });
        Some(id)
    }

    /// The newest item seq of a folder (0 when empty).
    pub fn newest_seq(&self, index: FolderIndex) -> u64 {
        self.folders
            .get(usize::from(index))
            .map_or(0, |folder| folder.newest_seq)
    }

    /// Up to `limit` items newer than `after`, oldest first, and whether more remain.
    pub fn items_after(&self, index: FolderIndex, after: u64, limit: usize) -> (Vec<Item>, bool) {
        let Some(folder) = self.folders.get(usize::from(index)) else {
            return (Vec::new(), false);
        };
        let mut newer = folder.items.iter().filter(|item| item.seq > after);
        let items: Vec<Item> = newer.by_ref().take(limit).cloned().collect();
        (items, newer.next().is_some())
    }

    /// Every folder, as FolderSync from key 0 lists it.
    pub fn all_folders(&self) -> Vec<Folder> {
        let standard = STANDARD_FOLDERS.iter().map(|(id, name, kind, _)| Folder {
            server_id: (*id).into(),
            parent_id: "0".into(),
            display_name: (*name).into(),
            folder_type: *kind,
        });
        standard.chain(self.user_folders_since(0)).collect()
    }

    /// Folders added after hierarchy version `version`.
    pub fn user_folders_since(&self, version: u32) -> impl Iterator<Item = Folder> + '_ {
        self.user_folders
            .iter()
            .filter(move |folder| folder.created_version > version)
            .map(|folder| Folder {
                server_id: folder.id.clone(),
                parent_id: "0".into(),
                display_name: folder.name.clone(),
                folder_type: folder_type::USER_MAIL,
            })
    }
}

/// How far one device has synced one folder, and the key that proves it.
///
/// Keys are decimal numbers issued per device and folder. The previous key is accepted
/// once more, so a device whose response was lost can retry and get the same items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderSyncState {
    pub folder: FolderIndex,
    pub key: u32,
    /// Items up to this seq are on the device once it holds `key`.
    pub synced_seq: u64,
    /// The key before `key` and what it had synced, while a retry is still allowed.
    pub previous: Option<(u32, u64)>,
}

/// What a Sync request's key means for a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// Key 0: start over.
    Initial,
    /// The current key: continue from this seq.
    Current { synced_seq: u64 },
    /// The previous key, once: replay from this seq.
    Retry { synced_seq: u64 },
    /// Unknown: the device must start over (Sync Status 3).
    Invalid,
}

impl FolderSyncState {
    pub fn new(folder: FolderIndex) -> Self {
        Self {
            folder,
            key: 0,
            synced_seq: 0,
            previous: None,
        }
    }

    /// Classifies a key a device sent.
    pub fn check(&self, key: &str) -> KeyCheck {
        if key == "0" {
            return KeyCheck::Initial;
        }
        let Ok(number) = key.parse::<u32>() else {
            return KeyCheck::Invalid;
        };
        match self.previous {
            _ if self.key != 0 && number == self.key => KeyCheck::Current {
                synced_seq: self.synced_seq,
            },
            Some((previous, synced_seq)) if previous == number => KeyCheck::Retry { synced_seq },
            _ => KeyCheck::Invalid,
        }
    }

    /// Issues the next key after the device was sent items up to `synced_seq`, having
    /// started from `from` (the state the key it sent stood for).
    pub fn advance(&mut self, from: KeyCheck, synced_seq: u64) -> u32 {
        self.previous = match from {
            KeyCheck::Current { synced_seq } => Some((self.key, synced_seq)),
            _ => None,
        };
        self.key = self.key.wrapping_add(1).max(1);
        self.synced_seq = synced_seq;
        self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbox_is_folder_5() {
        let mailbox = Mailbox::new();
        let inbox = mailbox.folder_index("5").unwrap();
        assert_eq!(STANDARD_FOLDERS[usize::from(inbox)].1, "Inbox");
        assert_eq!(mailbox.folder_id(inbox), "5");
        assert_eq!(mailbox.all_folders().len(), 9);
        assert_eq!(mailbox.folder_index("99"), None);
    }

    #[test]
    fn items_page_and_old_ones_are_dropped() {
        let mut mailbox = Mailbox::new();
        let inbox = mailbox.folder_index("5").unwrap();
        assert_eq!(mailbox.add_items(inbox, 3, 100, Some(7)), 3);
        let (items, more) = mailbox.items_after(inbox, 0, 2);
        assert_eq!(items.iter().map(|i| i.seq).collect::<Vec<_>>(), [1, 2]);
        assert!(more);
        let (items, more) = mailbox.items_after(inbox, 2, 2);
        assert_eq!((items.len(), more), (1, false));
        mailbox.add_items(inbox, MAX_ITEMS_PER_FOLDER as u32, 1, None);
        let (items, _) = mailbox.items_after(inbox, 0, usize::MAX);
        assert_eq!(items.len(), MAX_ITEMS_PER_FOLDER);
        assert_eq!(items[0].seq, 4);
    }

    #[test]
    fn hierarchy_changes_add_folders_by_version() {
        let mut mailbox = Mailbox::new();
        let id = mailbox.add_folder().unwrap();
        assert_eq!(id, "100");
        assert_eq!(mailbox.hierarchy_version(), 1);
        assert_eq!(mailbox.folder_index("100"), Some(9));
        assert_eq!(mailbox.user_folders_since(0).count(), 1);
        assert_eq!(mailbox.user_folders_since(1).count(), 0);
        assert_eq!(mailbox.all_folders().len(), 10);
    }

    #[test]
    fn folders_are_bounded_and_never_alias() {
        let mut mailbox = Mailbox::new();
        for _ in 0..MAX_USER_FOLDERS {
            assert!(mailbox.add_folder().is_some());
        }
        assert_eq!(mailbox.add_folder(), None);
        let last = (99 + MAX_USER_FOLDERS).to_string();
        let index = mailbox.folder_index(&last).unwrap();
        assert_eq!(mailbox.folder_id(index), last);
        assert_eq!(
            mailbox.folder_index(&(100 + MAX_USER_FOLDERS).to_string()),
            None
        );
        // Every index names its own folder: none wraps onto a standard one.
        assert!(STANDARD_FOLDERS.len() + MAX_USER_FOLDERS <= usize::from(FolderIndex::MAX));
    }

    #[test]
    fn sync_keys_advance_and_allow_one_retry() {
        let mut state = FolderSyncState::new(4);
        assert_eq!(state.check("1"), KeyCheck::Invalid);
        let first = state.advance(state.check("0"), 0);
        assert_eq!(first, 1);
        let from = state.check("1");
        assert_eq!(from, KeyCheck::Current { synced_seq: 0 });
        assert_eq!(state.advance(from, 5), 2);
        // The response carrying key 2 was lost: key 1 still works, once.
        let retry = state.check("1");
        assert_eq!(retry, KeyCheck::Retry { synced_seq: 0 });
        assert_eq!(state.advance(retry, 5), 3);
        assert_eq!(state.check("1"), KeyCheck::Invalid);
        assert_eq!(state.check("2"), KeyCheck::Invalid);
        assert_eq!(state.check("3"), KeyCheck::Current { synced_seq: 5 });
        assert_eq!(state.check("x"), KeyCheck::Invalid);
    }
}
