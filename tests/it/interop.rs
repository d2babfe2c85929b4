//! Interop with an independent EAS WBXML implementation: Debian's libwbxml2-utils
//! (`wbxml2xml -l ACTIVESYNC`, `xml2wbxml`). What we encode, it must decode to the same
//! document; what it encodes, we must decode to the same document.
//!
//! Outside CI a machine without the tools skips these tests with a note; under `CI=true`
//! a missing tool fails them, so the check can never silently vanish.

use std::path::Path;
use std::process::Command;

use pingfleet::eas::codepages::provision as prov;
use pingfleet::eas::commands::folder_sync::{status, Folder, FolderChange, FolderSyncResponse};
use pingfleet::eas::commands::ping::{PingFolder, PingRequest, PingResponse};
use pingfleet::eas::commands::provision::{PolicyResponse, ProvisionResponse, POLICY_TYPE_WBXML};
use pingfleet::eas::commands::settings::{DeviceInformation, SettingsRequest};
use pingfleet::eas::commands::sync::{
    Body, Email, SyncCollectionResponse, SyncCommand, SyncResponse,
};
use pingfleet::eas::wbxml::{self, Element};
use pingfleet::eas::{xml, WbxmlBody};

use crate::util::{vector_bytes, VECTORS};

/// Whether libwbxml's tools are installed; panics under CI when they are not.
pub(crate) fn tools_available() -> bool {
    let found = Command::new("wbxml2xml").arg("-h").output().is_ok()
        && Command::new("xml2wbxml").arg("-h").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "libwbxml2-utils (wbxml2xml, xml2wbxml) is required under CI"
        );
        eprintln!("skipping libwbxml interop: install libwbxml2-utils to run it");
    }
    found
}

fn run(tool: &str, args: &[&str]) {
    let output = Command::new(tool).args(args).output().expect(tool);
    assert!(output.status.success(), "{tool} {args:?}: {output:?}");
}

/// libwbxml's decoding of our bytes, read back through our XML parser.
pub(crate) fn libwbxml_decode(dir: &Path, bytes: &[u8]) -> Element {
    let input = dir.join("in.wbxml");
    let output = dir.join("out.xml");
    std::fs::write(&input, bytes).unwrap();
    run(
        "wbxml2xml",
        &[
            "-l",
            "ACTIVESYNC",
            "-m",
            "0",
            "-o",
            output.to_str().unwrap(),
            input.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&output).unwrap();
    xml::from_xml(&text).unwrap_or_else(|err| panic!("{err}\n{text}"))
}

/// libwbxml's encoding of our XML, read back through our decoder.
fn libwbxml_encode(dir: &Path, tree: &Element) -> Element {
    let input = dir.join("in.xml");
    let output = dir.join("out.wbxml");
    std::fs::write(&input, xml::to_xml(tree, xml::Layout::Indented)).unwrap();
    run(
        "xml2wbxml",
        &["-o", output.to_str().unwrap(), input.to_str().unwrap()],
    );
    wbxml::decode(&std::fs::read(&output).unwrap()).expect("our decoder reads libwbxml output")
}

/// Documents beyond the protocol document's examples: every command model with its
/// optional parts, several code-page switches, escapes and opaque data.
fn generated_documents() -> Vec<Element> {
    let email = Email {
        to: Some("Zoë <zoe@example.com>".into()),
        cc: Some("a&b@example.com".into()),
        from: Some("bob@example.com".into()),
        subject: Some("Quarterly <numbers> & \"more\"".into()),
        date_received: Some("2026-11-25T08:00:00.000Z".into()),
        thread_topic: Some("Quarterly".into()),
        importance: Some(2),
        read: Some(true),
        body: Some(Body {
            body_type: 2,
            estimated_data_size: Some(20_000),
            truncated: Some(true),
            data: Some("<p>first 200 bytes</p>".into()),
        }),
        message_class: Some("IPM.Note".into()),
        conversation_id: Some((0u8..16).collect()),
        ..Email::default()
    };
    vec![
        PingRequest {
            heartbeat_interval_s: None,
            folders: vec![
                PingFolder::new("5", "Email"),
                PingFolder::new("8", "Calendar"),
            ],
        }
        .to_element(),
        PingResponse::TooManyFolders { max_folders: 200 }.to_element(),
        FolderSyncResponse {
            status: status::OK,
            sync_key: Some("{5b1f}3".into()),
            changes: vec![
                FolderChange::Update(Folder {
                    server_id: "12".into(),
                    parent_id: "5".into(),
                    display_name: "Projets été".into(),
                    folder_type: 12,
                }),
                FolderChange::Delete {
                    server_id: "13".into(),
                },
            ],
        }
        .to_element(),
        SyncResponse {
            status: None,
            collections: vec![SyncCollectionResponse {
                sync_key: "7".into(),
                collection_id: "5".into(),
                status: 1,
                more_available: true,
                commands: vec![
                    SyncCommand::Add {
                        server_id: "5:9".into(),
                        email,
                    },
                    SyncCommand::Delete {
                        server_id: "5:1".into(),
                    },
                ],
            }],
        }
        .to_element(),
        ProvisionResponse {
            status: 1,
            device_information_status: Some(1),
            policy: Some(PolicyResponse {
                policy_type: POLICY_TYPE_WBXML.into(),
                status: 1,
                policy_key: Some("1307199584".into()),
                document: Some(vec![
                    (prov::DEVICE_PASSWORD_ENABLED, "0".into()),
                    (prov::MAX_ATTACHMENT_SIZE, "10485760".into()),
                ]),
            }),
            remote_wipe: true,
        }
        .to_element(),
        SettingsRequest {
            device_information: DeviceInformation {
                model: Some("Pixel 8".into()),
                imei: Some("356938035643809".into()),
                os: Some("Android 14".into()),
                user_agent: Some("Android/14-EAS-2.0".into()),
                ..DeviceInformation::default()
            },
        }
        .to_element(),
    ]
}

fn all_documents() -> Vec<Element> {
    let mut documents: Vec<Element> = VECTORS
        .iter()
        .map(|name| wbxml::decode(&vector_bytes(name)).unwrap())
        .collect();
    documents.extend(generated_documents());
    documents
}

#[test]
fn libwbxml_decodes_what_we_encode() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for document in all_documents() {
        let theirs = libwbxml_decode(dir.path(), &wbxml::encode(&document));
        assert_eq!(theirs, document);
    }
}

#[test]
fn we_decode_what_libwbxml_encodes() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for document in all_documents() {
        assert_eq!(libwbxml_encode(dir.path(), &document), document);
    }
}
