//! The Sync command (MS-ASCMD 2.2.1.21), the subset a mail device needs: request
//! collections with SyncKey, GetChanges, WindowSize and body preferences; responses with
//! MoreAvailable and Add/Change/Delete commands carrying Email items.

use super::{
    optional_flag, optional_number, optional_text, push_flag, required_number, required_text,
    ModelError, WbxmlBody,
};
use crate::eas::codepages::{airsync, airsyncbase, email, email2};
use crate::eas::wbxml::{Element, Tag};

/// Sync Status values (collection level, and top level for 4, 12, 13...).
pub mod status {
    pub const OK: u32 = 1;
    pub const INVALID_SYNC_KEY: u32 = 3;
    pub const PROTOCOL_ERROR: u32 = 4;
    pub const SERVER_ERROR: u32 = 5;
    pub const OBJECT_NOT_FOUND: u32 = 8;
    pub const HIERARCHY_CHANGED: u32 = 12;
    pub const INCOMPLETE_REQUEST: u32 = 13;
}

/// `Sync{Collections{Collection*}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncRequest {
    pub collections: Vec<SyncCollectionRequest>,
}

/// One collection of a Sync request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncCollectionRequest {
    /// `Email`, sent only before 12.1.
    pub class: Option<String>,
    pub sync_key: String,
    pub collection_id: String,
    pub deletes_as_moves: Option<bool>,
    /// `Some(true)` is written as the empty `<GetChanges/>`.
    pub get_changes: Option<bool>,
    pub window_size: Option<u32>,
    pub options: Option<SyncOptions>,
}

/// `Options{FilterType, BodyPreference*}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncOptions {
    pub filter_type: Option<u32>,
    pub body_preferences: Vec<BodyPreference>,
}

/// `airsyncbase:BodyPreference{Type, TruncationSize, AllOrNone}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPreference {
    /// 1 plain text, 2 HTML, 3 RTF, 4 MIME.
    pub body_type: u32,
    pub truncation_size: Option<u32>,
    pub all_or_none: Option<bool>,
}

impl WbxmlBody for SyncRequest {
    const ROOT: Tag = airsync::SYNC;

    fn to_element(&self) -> Element {
        let collections = self
            .collections
            .iter()
            .map(SyncCollectionRequest::to_element);
        Element::new(airsync::SYNC).child(collections_element(collections))
    }

    fn from_root(root: &Element) -> Result<Self, ModelError> {
        Ok(Self {
            collections: read_collections(root, SyncCollectionRequest::from_element)?,
        })
    }
}

/// `Collections{Collection*}` around collection elements.
fn collections_element(collections: impl Iterator<Item = Element>) -> Element {
    let mut list = Element::new(airsync::COLLECTIONS);
    collections.for_each(|collection| list.push(collection));
    list
}

/// Reads every `Collections/Collection` of a Sync body.
fn read_collections<T>(
    root: &Element,
    read: impl Fn(&Element) -> Result<T, ModelError>,
) -> Result<Vec<T>, ModelError> {
    root.find(airsync::COLLECTIONS)
        .into_iter()
        .flat_map(|list| list.find_all(airsync::COLLECTION))
        .map(read)
        .collect()
}

impl SyncCollectionRequest {
    fn to_element(&self) -> Element {
        let mut element = Element::new(airsync::COLLECTION)
            .optional_text(airsync::CLASS, self.class.as_deref())
            .child(Element::with_text(
                airsync::SYNC_KEY,
                self.sync_key.as_str(),
            ))
            .child(Element::with_text(
                airsync::COLLECTION_ID,
                self.collection_id.as_str(),
            ));
        push_flag(
            &mut element,
            airsync::DELETES_AS_MOVES,
            self.deletes_as_moves,
        );
        match self.get_changes {
            Some(true) => element.push(Element::new(airsync::GET_CHANGES)),
            Some(false) => element.push(Element::with_text(airsync::GET_CHANGES, "0")),
            None => {}
        }
        let window_size = self.window_size.map(|size| size.to_string());
        element = element.optional_text(airsync::WINDOW_SIZE, window_size);
        if let Some(options) = &self.options {
            element.push(options.to_element());
        }
        element
    }

    fn from_element(element: &Element) -> Result<Self, ModelError> {
        Ok(Self {
            class: optional_text(element, airsync::CLASS),
            sync_key: required_text(element, airsync::SYNC_KEY)?,
            collection_id: required_text(element, airsync::COLLECTION_ID)?,
            deletes_as_moves: optional_flag(element, airsync::DELETES_AS_MOVES)?,
            get_changes: optional_flag(element, airsync::GET_CHANGES)?,
            window_size: optional_number(element, airsync::WINDOW_SIZE)?,
            options: element
                .find(airsync::OPTIONS)
                .map(SyncOptions::from_element)
                .transpose()?,
        })
    }
}

impl SyncOptions {
    fn to_element(&self) -> Element {
        let filter_type = self.filter_type.map(|value| value.to_string());
        let mut element =
            Element::new(airsync::OPTIONS).optional_text(airsync::FILTER_TYPE, filter_type);
        for preference in &self.body_preferences {
            let mut child = Element::new(airsyncbase::BODY_PREFERENCE)
                .child(Element::with_text(
                    airsyncbase::TYPE,
                    preference.body_type.to_string(),
                ))
                .optional_text(
                    airsyncbase::TRUNCATION_SIZE,
                    preference.truncation_size.map(|size| size.to_string()),
                );
            push_flag(&mut child, airsyncbase::ALL_OR_NONE, preference.all_or_none);
            element.push(child);
        }
        element
    }

    fn from_element(element: &Element) -> Result<Self, ModelError> {
        let body_preferences = element
            .find_all(airsyncbase::BODY_PREFERENCE)
            .map(|preference| {
                Ok(BodyPreference {
                    body_type: required_number(preference, airsyncbase::TYPE)?,
                    truncation_size: optional_number(preference, airsyncbase::TRUNCATION_SIZE)?,
                    all_or_none: optional_flag(preference, airsyncbase::ALL_OR_NONE)?,
                })
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(Self {
            filter_type: optional_number(element, airsync::FILTER_TYPE)?,
            body_preferences,
        })
    }
}

/// A Sync response: a top-level Status alone (4, 12, 13...) or collections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncResponse {
    pub status: Option<u32>,
    pub collections: Vec<SyncCollectionResponse>,
}

/// One collection of a Sync response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncCollectionResponse {
    pub sync_key: String,
    pub collection_id: String,
    pub status: u32,
    pub more_available: bool,
    pub commands: Vec<SyncCommand>,
}

/// A server-to-client change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncCommand {
    Add { server_id: String, email: Email },
    Change { server_id: String, email: Email },
    Delete { server_id: String },
}

/// The Email fields of MS-ASEMAIL a reference server sends (protocol doc section 4.6),
/// written in the order Exchange writes them. Every field is optional so that a
/// `Change` can carry only what changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Email {
    pub to: Option<String>,
    pub cc: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    /// `YYYY-MM-DDTHH:MM:SS.sssZ`.
    pub date_received: Option<String>,
    pub display_to: Option<String>,
    pub thread_topic: Option<String>,
    pub importance: Option<u32>,
    pub read: Option<bool>,
    pub body: Option<Body>,
    pub message_class: Option<String>,
    /// 14.0+: email2:ConversationId, opaque.
    pub conversation_id: Option<Vec<u8>>,
}

/// `airsyncbase:Body{Type, EstimatedDataSize, Truncated, Data}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Body {
    pub body_type: u32,
    pub estimated_data_size: Option<u64>,
    pub truncated: Option<bool>,
    pub data: Option<String>,
}

impl WbxmlBody for SyncResponse {
    const ROOT: Tag = airsync::SYNC;

    fn to_element(&self) -> Element {
        let status = self.status.map(|status| status.to_string());
        let mut root = Element::new(airsync::SYNC).optional_text(airsync::STATUS, status);
        if !self.collections.is_empty() {
            let collections = self
                .collections
                .iter()
                .map(SyncCollectionResponse::to_element);
            root.push(collections_element(collections));
        }
        root
    }

    fn from_root(root: &Element) -> Result<Self, ModelError> {
        Ok(Self {
            status: optional_number(root, airsync::STATUS)?,
            collections: read_collections(root, SyncCollectionResponse::from_element)?,
        })
    }
}

impl SyncCollectionResponse {
    /// `MoreAvailable` goes before `Commands`, as Z-Push writes it.
    fn to_element(&self) -> Element {
        let mut element = Element::new(airsync::COLLECTION)
            .child(Element::with_text(
                airsync::SYNC_KEY,
                self.sync_key.as_str(),
            ))
            .child(Element::with_text(
                airsync::COLLECTION_ID,
                self.collection_id.as_str(),
            ))
            .child(Element::with_text(airsync::STATUS, self.status.to_string()));
        if self.more_available {
            element.push(Element::new(airsync::MORE_AVAILABLE));
        }
        if !self.commands.is_empty() {
            let mut commands = Element::new(airsync::COMMANDS);
            for command in &self.commands {
                commands.push(command.to_element());
            }
            element.push(commands);
        }
        element
    }

    fn from_element(element: &Element) -> Result<Self, ModelError> {
        let commands = element
            .find(airsync::COMMANDS)
            .into_iter()
            .flat_map(Element::elements)
            .filter_map(|command| SyncCommand::from_element(command).transpose())
            .collect::<Result<_, _>>()?;
        Ok(Self {
            sync_key: optional_text(element, airsync::SYNC_KEY).unwrap_or_default(),
            collection_id: required_text(element, airsync::COLLECTION_ID)?,
            status: required_number(element, airsync::STATUS)?,
            more_available: element.find(airsync::MORE_AVAILABLE).is_some(),
            commands,
        })
    }
}

impl SyncCommand {
    fn to_element(&self) -> Element {
        let (tag, server_id, email) = match self {
            Self::Add { server_id, email } => (airsync::ADD, server_id, Some(email)),
            Self::Change { server_id, email } => (airsync::CHANGE, server_id, Some(email)),
            Self::Delete { server_id } => (airsync::DELETE, server_id, None),
        };
        let mut element =
            Element::new(tag).child(Element::with_text(airsync::SERVER_ID, server_id.as_str()));
        if let Some(email) = email {
            element.push(email.to_element());
        }
        element
    }

    /// `None` for a command kind this model does not carry (SoftDelete, Fetch).
    fn from_element(element: &Element) -> Result<Option<Self>, ModelError> {
        let email = || -> Result<Email, ModelError> {
            element
                .find(airsync::APPLICATION_DATA)
                .map(Email::from_element)
                .unwrap_or_else(|| Ok(Email::default()))
        };
        let server_id = || required_text(element, airsync::SERVER_ID);
        Ok(Some(match element.tag {
            airsync::ADD => Self::Add {
                server_id: server_id()?,
                email: email()?,
            },
            airsync::CHANGE => Self::Change {
                server_id: server_id()?,
                email: email()?,
            },
            airsync::DELETE => Self::Delete {
                server_id: server_id()?,
            },
            _ => return Ok(None),
        }))
    }
}

impl Email {
    fn to_element(&self) -> Element {
        let number = |value: Option<u32>| value.map(|value| value.to_string());
        let mut element = Element::new(airsync::APPLICATION_DATA)
            .optional_text(email::TO, self.to.as_deref())
            .optional_text(email::CC, self.cc.as_deref())
            .optional_text(email::FROM, self.from.as_deref())
            .optional_text(email::SUBJECT, self.subject.as_deref())
            .optional_text(email::DATE_RECEIVED, self.date_received.as_deref())
            .optional_text(email::DISPLAY_TO, self.display_to.as_deref())
            .optional_text(email::THREAD_TOPIC, self.thread_topic.as_deref())
            .optional_text(email::IMPORTANCE, number(self.importance));
        push_flag(&mut element, email::READ, self.read);
        if let Some(body) = &self.body {
            element.push(body.to_element());
        }
        element = element.optional_text(email::MESSAGE_CLASS, self.message_class.as_deref());
        if let Some(id) = &self.conversation_id {
            element.push(Element::with_opaque(email2::CONVERSATION_ID, id.clone()));
        }
        element
    }

    fn from_element(element: &Element) -> Result<Self, ModelError> {
        Ok(Self {
            to: optional_text(element, email::TO),
            cc: optional_text(element, email::CC),
            from: optional_text(element, email::FROM),
            subject: optional_text(element, email::SUBJECT),
            date_received: optional_text(element, email::DATE_RECEIVED),
            display_to: optional_text(element, email::DISPLAY_TO),
            thread_topic: optional_text(element, email::THREAD_TOPIC),
            importance: optional_number(element, email::IMPORTANCE)?,
            read: optional_flag(element, email::READ)?,
            body: element
                .find(airsyncbase::BODY)
                .map(Body::from_element)
                .transpose()?,
            message_class: optional_text(element, email::MESSAGE_CLASS),
            conversation_id: element
                .find(email2::CONVERSATION_ID)
                .and_then(Element::bytes),
        })
    }
}

impl Body {
    fn to_element(&self) -> Element {
        let size = self.estimated_data_size.map(|size| size.to_string());
        let mut element = Element::new(airsyncbase::BODY)
            .child(Element::with_text(
                airsyncbase::TYPE,
                self.body_type.to_string(),
            ))
            .optional_text(airsyncbase::ESTIMATED_DATA_SIZE, size);
        push_flag(&mut element, airsyncbase::TRUNCATED, self.truncated);
        element.optional_text(airsyncbase::DATA, self.data.as_deref())
    }

    fn from_element(element: &Element) -> Result<Self, ModelError> {
        Ok(Self {
            body_type: required_number(element, airsyncbase::TYPE)?,
            estimated_data_size: optional_number(element, airsyncbase::ESTIMATED_DATA_SIZE)?,
            truncated: optional_flag(element, airsyncbase::TRUNCATED)?,
            data: optional_text(element, airsyncbase::DATA),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_commands_and_fields_are_skipped() {
        let root = Element::new(airsync::SYNC).child(
            Element::new(airsync::COLLECTIONS).child(
                Element::new(airsync::COLLECTION)
                    .child(Element::with_text(airsync::SYNC_KEY, "3"))
                    .child(Element::with_text(airsync::COLLECTION_ID, "5"))
                    .child(Element::with_text(airsync::STATUS, "1"))
                    .child(
                        Element::new(airsync::COMMANDS)
                            .child(
                                Element::new(airsync::SOFT_DELETE)
                                    .child(Element::with_text(airsync::SERVER_ID, "5:9")),
                            )
                            .child(
                                Element::new(airsync::ADD)
                                    .child(Element::with_text(airsync::SERVER_ID, "5:1"))
                                    .child(
                                        Element::new(airsync::APPLICATION_DATA)
                                            .child(Element::with_text(email::SUBJECT, "Hi"))
                                            .child(Element::with_text(
                                                email::INTERNET_CPID,
                                                "65001",
                                            )),
                                    ),
                            ),
                    ),
            ),
        );
        let response = SyncResponse::from_element(&root).unwrap();
        let commands = &response.collections[0].commands;
        assert_eq!(commands.len(), 1);
        let SyncCommand::Add { server_id, email } = &commands[0] else {
            panic!("expected an Add, got {commands:?}");
        };
        assert_eq!(server_id, "5:1");
        assert_eq!(email.subject.as_deref(), Some("Hi"));
    }

    #[test]
    fn top_level_status_alone() {
        let response = SyncResponse {
            status: Some(status::INCOMPLETE_REQUEST),
            collections: Vec::new(),
        };
        assert_eq!(SyncResponse::decode(&response.encode()), Ok(response));
    }
}
