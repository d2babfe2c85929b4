//! Fuzzes the WBXML decoder and everything that reads its tree: the XML view and every
//! command model. Properties: no panic; a decoded tree re-encodes to bytes that decode to
//! the same tree; the XML view of a tree parses back to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pingfleet::eas::commands::{
    folder_sync::{FolderSyncRequest, FolderSyncResponse},
    ping::{PingRequest, PingResponse},
    provision::{ProvisionRequest, ProvisionResponse},
    settings::{SettingsRequest, SettingsResponse},
    sync::{SyncRequest, SyncResponse},
};
use pingfleet::eas::{wbxml, xml, WbxmlBody};

fuzz_target!(|data: &[u8]| {
    let Ok(tree) = wbxml::decode(data) else {
        return;
    };
    let again = wbxml::decode(&wbxml::encode(&tree)).expect("re-encoded tree decodes");
    assert_eq!(again, tree);
    let _ = xml::from_xml(&xml::to_xml(&tree, xml::Layout::Compact));
    let _ = PingRequest::from_element(&tree);
    let _ = PingResponse::from_element(&tree);
    let _ = FolderSyncRequest::from_element(&tree);
    let _ = FolderSyncResponse::from_element(&tree);
    let _ = SyncRequest::from_element(&tree);
    let _ = SyncResponse::from_element(&tree);
    let _ = ProvisionRequest::from_element(&tree);
    let _ = ProvisionResponse::from_element(&tree);
    let _ = SettingsRequest::from_element(&tree);
    let _ = SettingsResponse::from_element(&tree);
});
