//! The Ping command (MS-ASCMD 2.2.1.13): the request a device parks at the server, and
//! every response status 1-8 plus the common status codes of 14.0+.
//!
//! An empty-body Ping (no WBXML at all) is not a [`PingRequest`]: use
//! [`PingRequest::from_body`], which returns `None` for it, so the caller reuses the cached
//! interval and folders.

use super::{
    optional_number, optional_text, required, required_number, required_text, ModelError, WbxmlBody,
};
use crate::eas::codepages::ping;
use crate::eas::wbxml::{Element, Tag};

/// A Ping request. At least one of the two fields is present on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PingRequest {
    pub heartbeat_interval_s: Option<u32>,
    pub folders: Vec<PingFolder>,
}

/// One folder a device asks to be told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingFolder {
    /// The folder's FolderSync ServerId.
    pub id: String,
    /// Its content class: `Email`, `Calendar`, `Contacts`, `Tasks`, `Notes`.
    pub class: String,
}

impl PingFolder {
    pub fn new(id: impl Into<String>, class: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            class: class.into(),
        }
    }
}

impl PingRequest {
    /// Reads a request body: `None` for the empty-body Ping.
    pub fn from_body(body: &[u8]) -> Result<Option<Self>, ModelError> {
        if body.is_empty() {
            return Ok(None);
        }
        Self::decode(body).map(Some)
    }
}

impl WbxmlBody for PingRequest {
    const ROOT: Tag = ping::PING;

    fn to_element(&self) -> Element {
        let mut root = Element::new(ping::PING).optional_text(
            ping::HEARTBEAT_INTERVAL,
            self.heartbeat_interval_s.map(|s| s.to_string()),
        );
        if !self.folders.is_empty() {
            let mut folders = Element::new(ping::FOLDERS);
            for folder in &self.folders {
                folders.push(
                    Element::new(ping::FOLDER)
                        .child(Element::with_text(ping::ID, folder.id.as_str()))
                        .child(Element::with_text(ping::CLASS, folder.class.as_str())),
                );
            }
            root.push(folders);
        }
        root
    }

    fn from_root(root: &Element) -> Result<Self, ModelError> {
        let heartbeat_interval_s = optional_number(root, ping::HEARTBEAT_INTERVAL)?;
        let folders = match root.find(ping::FOLDERS) {
            Some(folders) => folders
                .find_all(ping::FOLDER)
                .map(|folder| {
                    Ok(PingFolder {
                        id: required_text(folder, ping::ID)?,
                        class: optional_text(folder, ping::CLASS).unwrap_or_default(),
                    })
                })
                .collect::<Result<Vec<_>, ModelError>>()?,
            None => Vec::new(),
        };
        if heartbeat_interval_s.is_none() && root.find(ping::FOLDERS).is_none() {
            return Err(ModelError::Invalid(
                "a <Ping> body needs <HeartbeatInterval> or <Folders>".into(),
            ));
        }
        Ok(Self {
            heartbeat_interval_s,
            folders,
        })
    }
}

/// Ping Status values (MS-ASCMD 2.2.3.177.10).
pub mod status {
    pub const EXPIRED: u32 = 1;
    pub const CHANGES: u32 = 2;
    pub const MISSING_PARAMETERS: u32 = 3;
    pub const SYNTAX_ERROR: u32 = 4;
    pub const INTERVAL_OUT_OF_RANGE: u32 = 5;
    pub const TOO_MANY_FOLDERS: u32 = 6;
    pub const FOLDER_SYNC_REQUIRED: u32 = 7;
    pub const SERVER_ERROR: u32 = 8;
}

/// A Ping response, one variant per status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingResponse {
    /// 1: the heartbeat ended with no change.
    Expired,
    /// 2: these monitored folders changed.
    Changes { folders: Vec<String> },
    /// 3: an empty Ping with nothing cached; send the full request.
    MissingParameters,
    /// 4: the request could not be read.
    SyntaxError,
    /// 5: the interval is out of range; this is the nearest allowed value.
    IntervalOutOfRange { heartbeat_interval_s: u32 },
    /// 6: too many folders; this is the limit.
    TooManyFolders { max_folders: u32 },
    /// 7: the folder hierarchy changed or a folder is unknown; FolderSync first.
    FolderSyncRequired,
    /// 8: a transient server error; ping again.
    ServerError,
    /// A common status code of 14.0+ (for example 111, 142, 144) or another value.
    Other { status: u32 },
}

impl PingResponse {
    /// The numeric Status value.
    pub fn status(&self) -> u32 {
        match self {
            Self::Expired => status::EXPIRED,
            Self::Changes { .. } => status::CHANGES,
            Self::MissingParameters => status::MISSING_PARAMETERS,
            Self::SyntaxError => status::SYNTAX_ERROR,
            Self::IntervalOutOfRange { .. } => status::INTERVAL_OUT_OF_RANGE,
            Self::TooManyFolders { .. } => status::TOO_MANY_FOLDERS,
            Self::FolderSyncRequired => status::FOLDER_SYNC_REQUIRED,
            Self::ServerError => status::SERVER_ERROR,
            Self::Other { status } => *status,
        }
    }
}

impl WbxmlBody for PingResponse {
    const ROOT: Tag = ping::PING;

    fn to_element(&self) -> Element {
        let mut root = Element::new(ping::PING)
            .child(Element::with_text(ping::STATUS, self.status().to_string()));
        match self {
            Self::Changes { folders } => {
                let mut list = Element::new(ping::FOLDERS);
                for id in folders {
                    list.push(Element::with_text(ping::FOLDER, id.as_str()));
                }
                root.push(list);
            }
            Self::IntervalOutOfRange {
                heartbeat_interval_s,
            } => root.push(Element::with_text(
                ping::HEARTBEAT_INTERVAL,
                heartbeat_interval_s.to_string(),
            )),
            Self::TooManyFolders { max_folders } => root.push(Element::with_text(
                ping::MAX_FOLDERS,
                max_folders.to_string(),
            )),
            _ => {}
        }
        root
    }

    /// Rejects what Android's parser rejects: a Status 2 with no folder, a 5 with no
    /// interval, a 6 with no MaxFolders.
    fn from_root(root: &Element) -> Result<Self, ModelError> {
        let status = required_number(root, ping::STATUS)?;
        Ok(match status {
            status::EXPIRED => Self::Expired,
            status::CHANGES => {
                let folders: Vec<String> = required(root, ping::FOLDERS)?
                    .find_all(ping::FOLDER)
                    .filter_map(Element::text)
                    .collect();
                if folders.is_empty() {
                    return Err(ModelError::Invalid(
                        "Ping Status 2 lists no changed folder".into(),
                    ));
                }
                Self::Changes { folders }
            }
            status::MISSING_PARAMETERS => Self::MissingParameters,
            status::SYNTAX_ERROR => Self::SyntaxError,
            status::INTERVAL_OUT_OF_RANGE => Self::IntervalOutOfRange {
                heartbeat_interval_s: required_number(root, ping::HEARTBEAT_INTERVAL)?,
            },
            status::TOO_MANY_FOLDERS => Self::TooManyFolders {
                max_folders: required_number(root, ping::MAX_FOLDERS)?,
            },
            status::FOLDER_SYNC_REQUIRED => Self::FolderSyncRequired,
            status::SERVER_ERROR => Self::ServerError,
            status => Self::Other { status },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_is_the_cached_ping() {
        assert_eq!(PingRequest::from_body(b""), Ok(None));
    }

    #[test]
    fn a_ping_element_with_neither_field_is_refused() {
        let bytes = crate::eas::wbxml::encode(&Element::new(ping::PING));
        assert!(matches!(
            PingRequest::decode(&bytes),
            Err(ModelError::Invalid(_))
        ));
    }

    #[test]
    fn responses_missing_their_companion_element_are_refused() {
        for status in ["2", "5", "6"] {
            let root = Element::new(ping::PING).child(Element::with_text(ping::STATUS, status));
            let bytes = crate::eas::wbxml::encode(&root);
            assert!(PingResponse::decode(&bytes).is_err(), "status {status}");
        }
    }

    #[test]
    fn every_status_round_trips() {
        let all = [
            PingResponse::Expired,
            PingResponse::Changes {
                folders: vec!["5".into(), "9".into()],
            },
            PingResponse::MissingParameters,
            PingResponse::SyntaxError,
            PingResponse::IntervalOutOfRange {
                heartbeat_interval_s: 60,
            },
            PingResponse::TooManyFolders { max_folders: 300 },
            PingResponse::FolderSyncRequired,
            PingResponse::ServerError,
            PingResponse::Other { status: 142 },
        ];
        for response in all {
            assert_eq!(PingResponse::decode(&response.encode()), Ok(response));
        }
    }
}
