//! Sync: key 0 starts a folder over, a current key returns the items added since (in
//! pages of WindowSize with MoreAvailable), the previous key is accepted once for a
//! retry, anything else is Status 3. Items are written as the minimal Email of the
//! protocol document, with the body truncated as the device's BodyPreference asks.

use super::{Outcome, Request};
use crate::eas::commands::sync::{
    status, Body, Email, SyncCollectionRequest, SyncCollectionResponse, SyncCommand, SyncRequest,
    SyncResponse,
};
use crate::eas::{ProtocolVersion, WbxmlBody};
use crate::server::mailbox::{Item, KeyCheck};
use crate::server::store::{device_mut, UserState};

const DEFAULT_WINDOW_SIZE: usize = 100;
const MAX_WINDOW_SIZE: usize = 512;
/// BodyPreference Type values.
const BODY_PLAIN: u32 = 1;
const BODY_HTML: u32 = 2;

pub fn handle(request: &Request, body: &[u8]) -> Outcome {
    let top_level = |status| {
        SyncResponse {
            status: Some(status),
            collections: Vec::new(),
        }
        .encode()
    };
    if let Some(gate) = request.provision_gate(top_level) {
        return gate;
    }
    if body.is_empty() {
        return request.respond(top_level(status::INCOMPLETE_REQUEST));
    }
    let Ok(sync) = SyncRequest::decode(body) else {
        return request.respond(top_level(status::PROTOCOL_ERROR));
    };
    let collections = request.state.store.with_user(request.user, |user| {
        sync.collections
            .iter()
            .map(|collection| sync_collection(user, request, collection))
            .collect()
    });
    let response = SyncResponse {
        status: None,
        collections,
    };
    request.respond(response.encode())
}

/// One collection, under the user's shard lock.
fn sync_collection(
    user: &mut UserState,
    request: &Request,
    collection: &SyncCollectionRequest,
) -> SyncCollectionResponse {
    let mut response = SyncCollectionResponse {
        sync_key: collection.sync_key.clone(),
        collection_id: collection.collection_id.clone(),
        status: status::OK,
        more_available: false,
        commands: Vec::new(),
    };
    let UserState {
        mailbox, devices, ..
    } = user;
    let Some(folder) = mailbox.folder_index(&collection.collection_id) else {
        response.status = status::HIERARCHY_CHANGED;
        return response;
    };
    let state = device_mut(devices, request.device_id()).folder_sync(folder);
    let check = state.check(collection.sync_key.trim());
    let preference = body_preference(collection);
    let (mut items, mut more) = match check {
        KeyCheck::Invalid => {
            response.status = status::INVALID_SYNC_KEY;
            response.sync_key = "0".into();
            return response;
        }
        KeyCheck::Initial => (Vec::new(), false),
        KeyCheck::Current { synced_seq } | KeyCheck::Retry { synced_seq } => {
            if collection.get_changes == Some(false) {
                (Vec::new(), false)
            } else {
                let window = collection.window_size.map_or(DEFAULT_WINDOW_SIZE, |size| {
                    (size as usize).clamp(1, MAX_WINDOW_SIZE)
                });
                mailbox.items_after(folder, synced_seq, window)
            }
        }
    };
    if keep_within_response_limit(&mut items, preference) {
        more = true;
    }
    let synced_seq = match (check, items.last()) {
        (_, Some(last)) => last.seq,
        (KeyCheck::Current { synced_seq } | KeyCheck::Retry { synced_seq }, None) => synced_seq,
        _ => 0,
    };
    response.sync_key = state.advance(check, synced_seq).to_string();
    response.more_available = more;
    response.commands = items
        .iter()
        .map(|item| SyncCommand::Add {
            server_id: format!("{}:{}", collection.collection_id, item.seq),
            email: email_for(item, request, preference),
        })
        .collect();
    response
}

/// Body bytes one Sync response carries at most; the items past it wait for the next
/// Sync (MoreAvailable). One item always goes, and no item is over
/// [`crate::notification::MAX_ITEM_BYTES`].
pub const MAX_RESPONSE_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Drops the items past [`MAX_RESPONSE_BODY_BYTES`] (after the first); true if any was.
fn keep_within_response_limit(items: &mut Vec<Item>, preference: (u32, Option<u32>)) -> bool {
    let mut total = 0usize;
    let keep = items
        .iter()
        .take_while(|item| {
            total += shown_bytes(item, preference.1);
            total <= MAX_RESPONSE_BODY_BYTES
        })
        .count()
        .max(1);
    let dropped = keep < items.len();
    items.truncate(keep);
    dropped
}

/// The body bytes an item is sent with, truncated as the device asked.
fn shown_bytes(item: &Item, truncation: Option<u32>) -> usize {
    let size = item.size_bytes as usize;
    truncation.map_or(size, |limit| size.min(limit as usize))
}

/// The body type and truncation the device asked for (plain text, untruncated, if none).
fn body_preference(collection: &SyncCollectionRequest) -> (u32, Option<u32>) {
    collection
        .options
        .as_ref()
        .and_then(|options| options.body_preferences.first())
        .map_or((BODY_PLAIN, None), |preference| {
            let body_type = if preference.body_type == BODY_HTML {
                BODY_HTML
            } else {
                BODY_PLAIN
            };
            (body_type, preference.truncation_size)
        })
}

/// The Email an item becomes: section 4.6's minimal fields, ConversationId from 14.0.
fn email_for(item: &Item, request: &Request, preference: (u32, Option<u32>)) -> Email {
    let (body_type, truncation) = preference;
    let size = item.size_bytes as usize;
    let shown = shown_bytes(item, truncation);
    let subject = match item.notify_seq {
        Some(seq) => crate::notification::subject_for_seq(seq),
        None => format!("pingfleet item {}", item.seq),
    };
    Email {
        to: Some(format!(
            "{} <{}@pingfleet.test>",
            request.user, request.user
        )),
        from: Some("pingfleet injector <injector@pingfleet.test>".into()),
        subject: Some(subject.clone()),
        date_received: Some(
            humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        ),
        display_to: Some(request.user.to_owned()),
        thread_topic: Some(subject),
        importance: Some(1),
        read: Some(false),
        body: Some(Body {
            body_type,
            estimated_data_size: Some(size as u64),
            truncated: Some(shown < size),
            data: Some(body_text(shown)),
        }),
        message_class: Some("IPM.Note".into()),
        conversation_id: (request.version >= ProtocolVersion::V14_0)
            .then(|| item.seq.to_be_bytes().repeat(2)),
        ..Email::default()
    }
}

/// `len` bytes of readable filler text.
fn body_text(len: usize) -> String {
    const FILLER: &str = "Push mail from pingfleet. ";
    FILLER.chars().cycle().take(len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_carries_at_most_its_byte_limit_and_always_one_item() {
        let item = |seq, size_bytes| Item {
            seq,
            size_bytes,
            notify_seq: None,
        };
        let big = crate::notification::MAX_ITEM_BYTES;
        let mut items: Vec<Item> = (1..=5).map(|seq| item(seq, big)).collect();
        assert!(keep_within_response_limit(&mut items, (1, None)));
        assert_eq!(items.len(), MAX_RESPONSE_BODY_BYTES / big as usize);
        // Truncated bodies count as what is sent.
        let mut items: Vec<Item> = (1..=5).map(|seq| item(seq, big)).collect();
        assert!(!keep_within_response_limit(&mut items, (1, Some(1024))));
        assert_eq!(items.len(), 5);
        let mut one = vec![item(1, u32::MAX)];
        assert!(!keep_within_response_limit(&mut one, (1, None)));
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn filler_has_the_exact_length() {
        assert_eq!(body_text(0), "");
        assert_eq!(body_text(30).len(), 30);
        assert!(body_text(30).starts_with("Push mail"));
    }
}
