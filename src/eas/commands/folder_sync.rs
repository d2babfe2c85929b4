//! The FolderSync command (MS-ASCMD 2.2.1.5): the folder hierarchy from key `0`, and
//! incremental changes after that.

use super::{optional_text, required_number, required_text, ModelError, WbxmlBody};
use crate::eas::codepages::folder_hierarchy as fh;
use crate::eas::wbxml::{Element, Tag};

/// FolderSync Status values.
pub mod status {
    pub const OK: u32 = 1;
    pub const SERVER_ERROR: u32 = 6;
    pub const INVALID_SYNC_KEY: u32 = 9;
    pub const MALFORMED_REQUEST: u32 = 10;
}

/// Folder Type values used by the reference mailbox (ZP `zpushdefs.php` = AOSP `Eas.java`).
pub mod folder_type {
    pub const USER_GENERIC: u32 = 1;
    pub const INBOX: u32 = 2;
    pub const DRAFTS: u32 = 3;
    pub const DELETED_ITEMS: u32 = 4;
    pub const SENT_ITEMS: u32 = 5;
    pub const OUTBOX: u32 = 6;
    pub const TASKS: u32 = 7;
    pub const CALENDAR: u32 = 8;
    pub const CONTACTS: u32 = 9;
    pub const NOTES: u32 = 10;
    pub const USER_MAIL: u32 = 12;
}

/// `FolderSync{SyncKey}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderSyncRequest {
    pub sync_key: String,
}

impl WbxmlBody for FolderSyncRequest {
    const ROOT: Tag = fh::FOLDER_SYNC;

    fn to_element(&self) -> Element {
        Element::new(fh::FOLDER_SYNC)
            .child(Element::with_text(fh::SYNC_KEY, self.sync_key.as_str()))
    }

    fn from_root(root: &Element) -> Result<Self, ModelError> {
        Ok(Self {
            sync_key: required_text(root, fh::SYNC_KEY)?,
        })
    }
}

/// A folder as FolderSync describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub server_id: String,
    /// `0` for a top-level folder.
    pub parent_id: String,
    pub display_name: String,
    pub folder_type: u32,
}

/// One hierarchy change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderChange {
    Add(Folder),
    Update(Folder),
    Delete { server_id: String },
}

/// `FolderSync{Status, SyncKey, Changes{Count, Add|Update|Delete*}}`. A response with a
/// failing status carries only the Status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderSyncResponse {
    pub status: u32,
    pub sync_key: Option<String>,
    pub changes: Vec<FolderChange>,
}

impl FolderSyncResponse {
    /// A response carrying only a failing status.
    pub fn failed(status: u32) -> Self {
        Self {
            status,
            sync_key: None,
            changes: Vec::new(),
        }
    }
}

fn folder_element(tag: Tag, folder: &Folder) -> Element {
    Element::new(tag)
        .child(Element::with_text(fh::SERVER_ID, folder.server_id.as_str()))
        .child(Element::with_text(fh::PARENT_ID, folder.parent_id.as_str()))
        .child(Element::with_text(
            fh::DISPLAY_NAME,
            folder.display_name.as_str(),
        ))
        .child(Element::with_text(fh::TYPE, folder.folder_type.to_string()))
}

fn read_folder(element: &Element) -> Result<Folder, ModelError> {
    Ok(Folder {
        server_id: required_text(element, fh::SERVER_ID)?,
        parent_id: optional_text(element, fh::PARENT_ID).unwrap_or_else(|| "0".into()),
        display_name: optional_text(element, fh::DISPLAY_NAME).unwrap_or_default(),
        folder_type: required_number(element, fh::TYPE)?,
    })
}

impl WbxmlBody for FolderSyncResponse {
    const ROOT: Tag = fh::FOLDER_SYNC;

    fn to_element(&self) -> Element {
        let mut root = Element::new(fh::FOLDER_SYNC)
            .child(Element::with_text(fh::STATUS, self.status.to_string()));
        let Some(sync_key) = &self.sync_key else {
            return root;
        };
        root.push(Element::with_text(fh::SYNC_KEY, sync_key.as_str()));
        let mut changes = Element::new(fh::CHANGES).child(Element::with_text(
            fh::COUNT,
            self.changes.len().to_string(),
        ));
        for change in &self.changes {
            changes.push(match change {
                FolderChange::Add(folder) => folder_element(fh::ADD, folder),
                FolderChange::Update(folder) => folder_element(fh::UPDATE, folder),
                FolderChange::Delete { server_id } => Element::new(fh::DELETE)
                    .child(Element::with_text(fh::SERVER_ID, server_id.as_str())),
            });
        }
        root.push(changes);
        root
    }

    fn from_root(root: &Element) -> Result<Self, ModelError> {
        let mut changes = Vec::new();
        for element in root
            .find(fh::CHANGES)
            .into_iter()
            .flat_map(Element::elements)
        {
            match element.tag {
                fh::ADD => changes.push(FolderChange::Add(read_folder(element)?)),
                fh::UPDATE => changes.push(FolderChange::Update(read_folder(element)?)),
                fh::DELETE => changes.push(FolderChange::Delete {
                    server_id: required_text(element, fh::SERVER_ID)?,
                }),
                _ => {}
            }
        }
        Ok(Self {
            status: required_number(root, fh::STATUS)?,
            sync_key: optional_text(root, fh::SYNC_KEY),
            changes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_of_every_kind_round_trip() {
        let folder = |id: &str| Folder {
            server_id: id.into(),
            parent_id: "0".into(),
            display_name: format!("Folder {id}"),
            folder_type: folder_type::USER_MAIL,
        };
        let response = FolderSyncResponse {
            status: status::OK,
            sync_key: Some("7".into()),
            changes: vec![
                FolderChange::Add(folder("20")),
                FolderChange::Update(folder("21")),
                FolderChange::Delete {
                    server_id: "22".into(),
                },
            ],
        };
        assert_eq!(FolderSyncResponse::decode(&response.encode()), Ok(response));
    }

    #[test]
    fn a_failing_status_carries_nothing_else() {
        let response = FolderSyncResponse::failed(status::INVALID_SYNC_KEY);
        let element = response.to_element();
        assert_eq!(element.elements().count(), 1);
        assert_eq!(FolderSyncResponse::decode(&response.encode()), Ok(response));
    }
}
