//! Every worked hex example of `shared/docs/eas-protocol.md`, in both directions: the
//! typed model encodes to exactly those bytes, the bytes decode to the model, and the XML
//! view matches the XML the document shows.

use pingfleet::eas::codepages::provision as prov;
use pingfleet::eas::commands::folder_sync::{
    Folder, FolderChange, FolderSyncRequest, FolderSyncResponse,
};
use pingfleet::eas::commands::ping::{PingFolder, PingRequest, PingResponse};
use pingfleet::eas::commands::provision::{PolicyRequest, ProvisionRequest};
use pingfleet::eas::commands::sync::{
    Body, BodyPreference, Email, SyncCollectionRequest, SyncCollectionResponse, SyncCommand,
    SyncOptions, SyncRequest, SyncResponse,
};
use pingfleet::eas::request::{Base64Fields, Command, EasQuery, QueryForm};
use pingfleet::eas::{wbxml, xml, ProtocolVersion, WbxmlBody};

use crate::util::{strip_namespaces, vector_bytes};

/// Checks both directions for one model and its vector.
fn both_directions<T: WbxmlBody + PartialEq + std::fmt::Debug>(name: &str, model: T) {
    let bytes = vector_bytes(name);
    assert_eq!(model.encode(), bytes, "{name}: encoding differs");
    assert_eq!(T::decode(&bytes), Ok(model), "{name}: decoding differs");
}

/// The compact XML of a vector without namespaces, as the document writes it.
fn plain_xml(name: &str) -> String {
    let tree = wbxml::decode(&vector_bytes(name)).unwrap();
    let text = strip_namespaces(&xml::to_xml(&tree, xml::Layout::Compact));
    let prolog = format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>{}", xml::DOCTYPE);
    text.trim_start_matches(&prolog).to_owned()
}

#[test]
fn ping_request() {
    both_directions(
        "ping-request",
        PingRequest {
            heartbeat_interval_s: Some(480),
            folders: vec![PingFolder::new("5", "Email")],
        },
    );
    assert_eq!(vector_bytes("ping-request").len(), 33);
    assert_eq!(
        plain_xml("ping-request"),
        "<Ping><HeartbeatInterval>480</HeartbeatInterval><Folders><Folder><Id>5</Id>\
         <Class>Email</Class></Folder></Folders></Ping>"
    );
}

#[test]
fn ping_responses() {
    both_directions(
        "ping-response-status2",
        PingResponse::Changes {
            folders: vec!["5".into()],
        },
    );
    assert_eq!(
        plain_xml("ping-response-status2"),
        "<Ping><Status>2</Status><Folders><Folder>5</Folder></Folders></Ping>"
    );
    both_directions("ping-response-status1", PingResponse::Expired);
    assert_eq!(
        plain_xml("ping-response-status1"),
        "<Ping><Status>1</Status></Ping>"
    );
    both_directions(
        "ping-response-status5",
        PingResponse::IntervalOutOfRange {
            heartbeat_interval_s: 3540,
        },
    );
    assert_eq!(
        plain_xml("ping-response-status5"),
        "<Ping><Status>5</Status><HeartbeatInterval>3540</HeartbeatInterval></Ping>"
    );
}

#[test]
fn folder_sync() {
    both_directions(
        "foldersync-request",
        FolderSyncRequest {
            sync_key: "0".into(),
        },
    );
    both_directions(
        "foldersync-response",
        FolderSyncResponse {
            status: 1,
            sync_key: Some("1".into()),
            changes: vec![FolderChange::Add(Folder {
                server_id: "5".into(),
                parent_id: "0".into(),
                display_name: "Inbox".into(),
                folder_type: 2,
            })],
        },
    );
    assert_eq!(
        plain_xml("foldersync-response"),
        "<FolderSync><Status>1</Status><SyncKey>1</SyncKey><Changes><Count>1</Count><Add>\
         <ServerId>5</ServerId><ParentId>0</ParentId><DisplayName>Inbox</DisplayName>\
         <Type>2</Type></Add></Changes></FolderSync>"
    );
}

#[test]
fn sync_requests() {
    let initial = SyncCollectionRequest {
        sync_key: "0".into(),
        collection_id: "5".into(),
        ..SyncCollectionRequest::default()
    };
    both_directions(
        "sync-request-initial",
        SyncRequest {
            collections: vec![initial],
        },
    );
    assert_eq!(
        plain_xml("sync-request-initial"),
        "<Sync><Collections><Collection><SyncKey>0</SyncKey><CollectionId>5</CollectionId>\
         </Collection></Collections></Sync>"
    );
    let with_options = SyncCollectionRequest {
        sync_key: "1".into(),
        collection_id: "5".into(),
        get_changes: Some(true),
        window_size: Some(25),
        options: Some(SyncOptions {
            filter_type: Some(3),
            body_preferences: vec![BodyPreference {
                body_type: 1,
                truncation_size: Some(32768),
                all_or_none: None,
            }],
        }),
        ..SyncCollectionRequest::default()
    };
    both_directions(
        "sync-request",
        SyncRequest {
            collections: vec![with_options],
        },
    );
}

#[test]
fn sync_response_with_one_email() {
    let email = Email {
        to: Some("\"Bob\" <bob@example.com>".into()),
        from: Some("\"Alice\" <alice@example.com>".into()),
        subject: Some("Hi".into()),
        date_received: Some("2024-01-02T03:04:05.000Z".into()),
        display_to: Some("Bob".into()),
        importance: Some(1),
        read: Some(false),
        body: Some(Body {
            body_type: 1,
            estimated_data_size: Some(5),
            truncated: Some(false),
            data: Some("Hello".into()),
        }),
        message_class: Some("IPM.Note".into()),
        ..Email::default()
    };
    both_directions(
        "sync-response",
        SyncResponse {
            status: None,
            collections: vec![SyncCollectionResponse {
                sync_key: "2".into(),
                collection_id: "5".into(),
                status: 1,
                more_available: false,
                commands: vec![SyncCommand::Add {
                    server_id: "5:1".into(),
                    email,
                }],
            }],
        },
    );
    assert_eq!(vector_bytes("sync-response").len(), 191);
}

#[test]
fn provision_phase_one() {
    both_directions(
        "provision-request-phase1",
        ProvisionRequest {
            policy: Some(PolicyRequest::phase_one()),
            ..ProvisionRequest::default()
        },
    );
    let tree = wbxml::decode(&vector_bytes("provision-request-phase1")).unwrap();
    assert_eq!(tree.tag, prov::PROVISION);
}

#[test]
fn base64_query_examples() {
    // MS example: version 14.0, Sync, en-US, DeviceId "v140Device", no policy key.
    let sync = EasQuery::parse("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l").unwrap();
    let expected = EasQuery {
        command: Command::Sync,
        user: None,
        device_id: "v140Device".into(),
        device_type: "SmartPhone".into(),
        params: Vec::new(),
        form: QueryForm::Base64(Base64Fields {
            version: ProtocolVersion::V14_0,
            locale: 0x0409,
            policy_key: None,
        }),
    };
    assert_eq!(sync, expected);
    assert_eq!(
        sync.to_query().unwrap(),
        "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"
    );

    // The document's Ping example: 14.1, ABC123, PolicyKey 1234567890, User jdoe.
    let ping_query = "jRIJBAZBQkMxMjME0gKWSQpTbWFydFBob25lCARqZG9l";
    let ping =
        EasQuery::parse_target(&format!("/Microsoft-Server-ActiveSync?{ping_query}")).unwrap();
    assert_eq!(ping.command, Command::Ping);
    assert_eq!(ping.user.as_deref(), Some("jdoe"));
    assert_eq!(ping.device_id, "ABC123");
    assert_eq!(
        ping.form,
        QueryForm::Base64(Base64Fields {
            version: ProtocolVersion::V14_1,
            locale: 0x0409,
            policy_key: Some(1_234_567_890),
        })
    );
    assert_eq!(ping.to_query().unwrap(), ping_query);
}

#[test]
fn plain_query_example() {
    let target =
        "/Microsoft-Server-ActiveSync?Cmd=Ping&User=jdoe&DeviceId=ABC123&DeviceType=SmartPhone";
    let query = EasQuery::parse_target(target).unwrap();
    assert_eq!(
        query,
        EasQuery::plain(Command::Ping, "jdoe", "ABC123", "SmartPhone")
    );
    assert_eq!(query.to_target().unwrap(), target);
}
