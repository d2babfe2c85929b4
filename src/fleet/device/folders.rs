//! The folders a device pushes, as a phone finds them: named by kind (`inbox`,
//! `calendar`, `contacts`, `tasks`) and looked up by folder type in the full FolderSync
//! the device receives (a real server gives each device its own ids), or given by id.
//! A pushed folder the hierarchy lacks is an error the device stops on, not a loop.

use crate::eas::commands::folder_sync::{folder_type, Folder};
use crate::fleet::errors::MissingFolder;

/// A kind of folder a device can push without knowing its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FolderKind {
    Inbox,
    Calendar,
    Contacts,
    Tasks,
}

impl FolderKind {
    fn named(spec: &str) -> Option<Self> {
        match spec.to_ascii_lowercase().as_str() {
            "inbox" => Some(Self::Inbox),
            "calendar" => Some(Self::Calendar),
            "contacts" => Some(Self::Contacts),
            "tasks" => Some(Self::Tasks),
            _ => None,
        }
    }

    fn folder_type(self) -> u32 {
        match self {
            Self::Inbox => folder_type::INBOX,
            Self::Calendar => folder_type::CALENDAR,
            Self::Contacts => folder_type::CONTACTS,
            Self::Tasks => folder_type::TASKS,
        }
    }
}

/// The Ping class of a folder type (MS-ASCMD: Email, Calendar, Contacts, Tasks).
fn class_of(folder_type: u32) -> &'static str {
    match folder_type {
        8 | 13 => "Calendar",
        9 | 14 => "Contacts",
        7 | 15 => "Tasks",
        _ => "Email",
    }
}

/// A pushed folder and how far the device has synced it.
#[derive(Debug, Clone)]
pub(super) struct PushedFolder {
    /// As the profile names it: a kind or an id.
    pub(super) spec: String,
    kind: Option<FolderKind>,
    /// The server's id; empty until a named folder is found.
    pub(super) id: String,
    pub(super) class: &'static str,
    pub(super) key: String,
}

impl PushedFolder {
    pub(super) fn new(spec: &str) -> Self {
        let kind = FolderKind::named(spec);
        Self {
            spec: spec.to_owned(),
            kind,
            id: if kind.is_some() {
                String::new()
            } else {
                spec.to_owned()
            },
            class: "Email",
            key: "0".into(),
        }
    }

    fn matches(&self, folder: &Folder) -> bool {
        match self.kind {
            Some(kind) => folder.folder_type == kind.folder_type(),
            None => folder.server_id == self.id,
        }
    }
}

/// Finds every pushed folder in a full hierarchy (FolderSync from key 0): its id and
/// class. A folder whose id changed starts its sync over. The first pushed folder the
/// hierarchy lacks is the error.
pub(super) fn resolve(
    pushed: &mut [PushedFolder],
    hierarchy: &[&Folder],
) -> Result<(), MissingFolder> {
    for folder in pushed.iter_mut() {
        let Some(found) = hierarchy.iter().find(|candidate| folder.matches(candidate)) else {
            return Err(MissingFolder {
                spec: folder.spec.clone(),
            });
        };
        if folder.id != found.server_id {
            folder.id = found.server_id.clone();
            folder.key = "0".into();
        }
        folder.class = class_of(found.folder_type);
    }
    Ok(())
}

/// Updates the classes of pushed folders an incremental FolderSync lists again.
pub(super) fn update_classes(pushed: &mut [PushedFolder], changed: &[&Folder]) {
    for folder in pushed.iter_mut() {
        if let Some(found) = changed
            .iter()
            .find(|candidate| candidate.server_id == folder.id)
        {
            folder.class = class_of(found.folder_type);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(id: &str, folder_type: u32) -> Folder {
        Folder {
            server_id: id.into(),
            parent_id: "0".into(),
            display_name: id.into(),
            folder_type,
        }
    }

    #[test]
    fn named_folders_are_found_by_type_and_ids_by_id() {
        // A server that gives every device its own random ids.
        let hierarchy = [
            folder("dc2914e4", folder_type::INBOX),
            folder("a1b2c3d4", folder_type::CALENDAR),
            folder("5", folder_type::DRAFTS),
        ];
        let listed: Vec<&Folder> = hierarchy.iter().collect();
        let mut pushed = vec![PushedFolder::new("inbox"), PushedFolder::new("Calendar")];
        resolve(&mut pushed, &listed).unwrap();
        assert_eq!(
            (pushed[0].id.as_str(), pushed[0].class),
            ("dc2914e4", "Email")
        );
        assert_eq!(
            (pushed[1].id.as_str(), pushed[1].class),
            ("a1b2c3d4", "Calendar")
        );
        let mut by_id = vec![PushedFolder::new("5")];
        resolve(&mut by_id, &listed).unwrap();
        assert_eq!(by_id[0].id, "5");
        // pingfleet's own Inbox id on a server that has none such: reported, not looped.
        let elsewhere = [folder("dc2914e4", folder_type::INBOX)];
        let listed: Vec<&Folder> = elsewhere.iter().collect();
        let mut stale = vec![PushedFolder::new("5")];
        let missing = resolve(&mut stale, &listed).unwrap_err();
        assert_eq!(missing.spec, "5");
        assert_eq!(
            missing.to_string(),
            "pushed folder \"5\" is not in the server's hierarchy"
        );
        let mut tasks = vec![PushedFolder::new("tasks")];
        assert_eq!(resolve(&mut tasks, &listed).unwrap_err().spec, "tasks");
    }
}
