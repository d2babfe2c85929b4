//! Round-trip properties of the command models and the request line (proptest): any
//! model encodes to WBXML that decodes to the same model, and its XML view and the
//! WBXML it describes agree.

use pingfleet::eas::commands::folder_sync::{Folder, FolderChange, FolderSyncResponse};
use pingfleet::eas::commands::ping::{PingFolder, PingRequest, PingResponse};
use pingfleet::eas::commands::sync::{
    Body, BodyPreference, Email, SyncCollectionRequest, SyncCollectionResponse, SyncCommand,
    SyncOptions, SyncRequest, SyncResponse,
};
use pingfleet::eas::request::{Base64Fields, Command, EasQuery, QueryForm};
use pingfleet::eas::{wbxml, xml, ProtocolVersion, WbxmlBody};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Text an EAS field can hold: any non-NUL characters, including markup and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{1,24}"
}

fn id() -> impl Strategy<Value = String> {
    "[0-9A-Za-z:{}-]{1,12}"
}

fn ping_request() -> impl Strategy<Value = PingRequest> {
    (option::of(1u32..4000), vec((id(), text()), 0..5))
        .prop_filter("a Ping body needs one field", |(hb, folders)| {
            hb.is_some() || !folders.is_empty()
        })
        .prop_map(|(heartbeat_interval_s, folders)| PingRequest {
            heartbeat_interval_s,
            folders: folders
                .into_iter()
                .map(|(id, class)| PingFolder::new(id, class))
                .collect(),
        })
}

fn ping_response() -> impl Strategy<Value = PingResponse> {
    prop_oneof![
        Just(PingResponse::Expired),
        vec(id(), 1..6).prop_map(|folders| PingResponse::Changes { folders }),
        Just(PingResponse::MissingParameters),
        Just(PingResponse::SyntaxError),
        any::<u32>().prop_map(|s| PingResponse::IntervalOutOfRange {
            heartbeat_interval_s: s
        }),
        any::<u32>().prop_map(|max_folders| PingResponse::TooManyFolders { max_folders }),
        Just(PingResponse::FolderSyncRequired),
        Just(PingResponse::ServerError),
        (100u32..200).prop_map(|status| PingResponse::Other { status }),
    ]
}

fn folder() -> impl Strategy<Value = Folder> {
    (id(), id(), text(), 1u32..20).prop_map(|(server_id, parent_id, display_name, folder_type)| {
        Folder {
            server_id,
            parent_id,
            display_name,
            folder_type,
        }
    })
}

fn folder_sync_response() -> impl Strategy<Value = FolderSyncResponse> {
    let change = prop_oneof![
        folder().prop_map(FolderChange::Add),
        folder().prop_map(FolderChange::Update),
        id().prop_map(|server_id| FolderChange::Delete { server_id }),
    ];
    (id(), vec(change, 0..6)).prop_map(|(key, changes)| FolderSyncResponse {
        status: 1,
        sync_key: Some(key),
        changes,
    })
}

fn sync_request() -> impl Strategy<Value = SyncRequest> {
    let preference = (1u32..5, option::of(any::<u32>()), option::of(any::<bool>())).prop_map(
        |(body_type, truncation_size, all_or_none)| BodyPreference {
            body_type,
            truncation_size,
            all_or_none,
        },
    );
    let options =
        (option::of(0u32..9), vec(preference, 0..3)).prop_map(|(filter_type, body_preferences)| {
            SyncOptions {
                filter_type,
                body_preferences,
            }
        });
    let collection = (
        option::of(Just("Email".to_owned())),
        id(),
        id(),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(1u32..512),
        option::of(options),
    )
        .prop_map(
            |(
                class,
                sync_key,
                collection_id,
                deletes_as_moves,
                get_changes,
                window_size,
                options,
            )| {
                SyncCollectionRequest {
                    class,
                    sync_key,
                    collection_id,
                    deletes_as_moves,
                    get_changes,
                    window_size,
                    options,
                }
            },
        );
    vec(collection, 0..4).prop_map(|collections| SyncRequest { collections })
}

fn email() -> impl Strategy<Value = Email> {
    let body = (
        1u32..5,
        option::of(any::<u64>()),
        option::of(any::<bool>()),
        option::of(text()),
    )
        .prop_map(|(body_type, estimated_data_size, truncated, data)| Body {
            body_type,
            estimated_data_size,
            truncated,
            data,
        });
    (
        (
            option::of(text()),
            option::of(text()),
            option::of(text()),
            option::of(text()),
        ),
        (
            option::of(text()),
            option::of(0u32..3),
            option::of(any::<bool>()),
        ),
        (
            option::of(body),
            option::of(text()),
            option::of(vec(any::<u8>(), 1..20)),
        ),
    )
        .prop_map(
            |(
                (to, from, subject, date_received),
                (thread_topic, importance, read),
                (body, message_class, conversation_id),
            )| Email {
                to,
                from,
                subject,
                date_received,
                thread_topic,
                importance,
                read,
                body,
                message_class,
                conversation_id,
                ..Email::default()
            },
        )
}

fn sync_response() -> impl Strategy<Value = SyncResponse> {
    let command = prop_oneof![
        (id(), email()).prop_map(|(server_id, email)| SyncCommand::Add { server_id, email }),
        (id(), email()).prop_map(|(server_id, email)| SyncCommand::Change { server_id, email }),
        id().prop_map(|server_id| SyncCommand::Delete { server_id }),
    ];
    let collection = (id(), id(), 1u32..17, any::<bool>(), vec(command, 0..4)).prop_map(
        |(sync_key, collection_id, status, more_available, commands)| SyncCollectionResponse {
            sync_key,
            collection_id,
            status,
            more_available,
            commands,
        },
    );
    (option::of(1u32..17), vec(collection, 0..3)).prop_map(|(status, collections)| SyncResponse {
        status,
        collections,
    })
}

/// The model survives WBXML, and the WBXML survives the XML view.
fn check<T: WbxmlBody + PartialEq + std::fmt::Debug>(model: T) -> Result<(), TestCaseError> {
    let bytes = model.encode();
    prop_assert_eq!(T::decode(&bytes)?, model);
    let tree = wbxml::decode(&bytes)?;
    let via_xml = xml::from_xml(&xml::to_xml(&tree, xml::Layout::Indented))
        .map_err(|err| TestCaseError::fail(err.to_string()))?;
    prop_assert_eq!(wbxml::encode(&via_xml), bytes);
    Ok(())
}

proptest! {
    #[test]
    fn ping_requests_round_trip(model in ping_request()) { check(model)?; }

    #[test]
    fn ping_responses_round_trip(model in ping_response()) { check(model)?; }

    #[test]
    fn folder_sync_responses_round_trip(model in folder_sync_response()) { check(model)?; }

    #[test]
    fn sync_requests_round_trip(model in sync_request()) { check(model)?; }

    #[test]
    fn sync_responses_round_trip(model in sync_response()) { check(model)?; }

    #[test]
    fn request_lines_round_trip(
        command_code in 0u8..23,
        user in option::of("[^\u{0}]{1,20}"),
        device_id in "[0-9A-Za-z]{1,32}",
        device_type in "[A-Za-z]{1,16}",
        item in option::of("[0-9:]{1,10}"),
        base64 in option::of((3usize..7, any::<u16>(), option::of(any::<u32>()))),
    ) {
        let mut query = EasQuery {
            command: Command::from_code(command_code),
            user,
            device_id,
            device_type,
            params: item.map(|item| vec![("ItemId".to_owned(), item)]).unwrap_or_default(),
            form: QueryForm::Plain,
        };
        if let Some((version, locale, policy_key)) = base64 {
            let version = ProtocolVersion::ALL[version - 1].max(ProtocolVersion::V12_1);
            query.form = QueryForm::Base64(Base64Fields { version, locale, policy_key });
        }
        let target = query.to_target().map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(EasQuery::parse_target(&target), Ok(query));
    }
}
