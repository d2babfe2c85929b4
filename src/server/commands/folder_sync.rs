//! FolderSync: the whole hierarchy from key 0, the folders added since a key after that,
//! Status 9 for a key this server never issued.

use super::{Outcome, Request};
use crate::eas::commands::folder_sync::{
    status, FolderChange, FolderSyncRequest, FolderSyncResponse,
};
use crate::eas::WbxmlBody;
use crate::server::store::device_mut;

pub fn handle(request: &Request, body: &[u8]) -> Outcome {
    let fail = |status| FolderSyncResponse::failed(status).encode();
    if let Some(gate) = request.provision_gate(fail) {
        return gate;
    }
    let Ok(folder_sync) = FolderSyncRequest::decode(body) else {
        return request.respond(fail(status::MALFORMED_REQUEST));
    };
    let response = request.state.store.with_user(request.user, |user| {
        let mailbox = &user.mailbox;
        let current_key = mailbox.hierarchy_version() + 1;
        let changes: Vec<FolderChange> = match folder_sync.sync_key.trim() {
            "0" => mailbox
                .all_folders()
                .into_iter()
                .map(FolderChange::Add)
                .collect(),
            key => match key.parse::<u32>() {
                Ok(key) if (1..=current_key).contains(&key) => mailbox
                    .user_folders_since(key - 1)
                    .map(FolderChange::Add)
                    .collect(),
                _ => return FolderSyncResponse::failed(status::INVALID_SYNC_KEY),
            },
        };
        device_mut(&mut user.devices, request.device_id()).hierarchy_key = current_key;
        FolderSyncResponse {
            status: status::OK,
            sync_key: Some(current_key.to_string()),
            changes,
        }
    });
    request.respond(response.encode())
}
