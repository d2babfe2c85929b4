//! Ping: answer at once when the request is wrong or a monitored folder already has
//! changes, otherwise park until a change, the heartbeat, or a newer Ping.

use std::sync::Arc;

use super::{Outcome, Request};
use crate::eas::commands::ping::{PingRequest, PingResponse};
use crate::eas::WbxmlBody;
use crate::server::mailbox::FolderIndex;
use crate::server::parking::{new_slot, ParkedPing};
use crate::server::state::PartitionConfig;
use crate::server::store::{device_mut, PingCache, UserState, Wake};

/// What the store said about a Ping.
enum Decision {
    Answer(PingResponse),
    Park {
        receiver: tokio::sync::oneshot::Receiver<Wake>,
        heartbeat_s: u32,
        generation: u64,
        user: Arc<str>,
        device: Arc<str>,
    },
}

pub fn handle(request: &Request, body: &[u8]) -> Outcome {
    let ping = match PingRequest::from_body(body) {
        Ok(ping) => ping,
        Err(_) => return answer(request, PingResponse::SyntaxError),
    };
    let state = request.state;
    let generation = state.next_generation();
    let decision = state.store.with_user(request.user, |user| {
        decide(user, request.device_id(), ping, &state.config, generation)
    });
    match decision {
        Decision::Answer(response) => answer(request, response),
        Decision::Park {
            receiver,
            heartbeat_s,
            generation,
            user,
            device,
        } => Outcome::Park(ParkedPing::new(
            state.clone(),
            user,
            device,
            generation,
            receiver,
            heartbeat_s,
            request.accepts_gzip,
        )),
    }
}

fn answer(request: &Request, response: PingResponse) -> Outcome {
    request.state.metrics.count_ping_status(response.status());
    request.respond(response.encode())
}

/// Checks the Ping against the device's cache and the mailbox, then answers or parks.
/// Runs under the user's shard lock.
fn decide(
    user: &mut UserState,
    device_id: &str,
    ping: Option<PingRequest>,
    config: &PartitionConfig,
    generation: u64,
) -> Decision {
    let UserState {
        name,
        mailbox,
        devices,
    } = user;
    let device = device_mut(devices, device_id);
    let cache = device.ping.as_ref();
    let (interval_s, folder_ids) = match &ping {
        None => (cache.and_then(|cache| cache.interval_s), None),
        Some(ping) => (
            ping.heartbeat_interval_s
                .or(cache.and_then(|cache| cache.interval_s)),
            (!ping.folders.is_empty()).then_some(&ping.folders),
        ),
    };
    let folders: Box<[FolderIndex]> = match folder_ids {
        Some(requested) => {
            if requested.len() > config.max_folders as usize {
                return Decision::Answer(PingResponse::TooManyFolders {
                    max_folders: config.max_folders,
                });
            }
            let indices: Option<Box<[FolderIndex]>> = requested
                .iter()
                .map(|folder| mailbox.folder_index(&folder.id))
                .collect();
            match indices {
                Some(indices) => indices,
                None => return Decision::Answer(PingResponse::FolderSyncRequired),
            }
        }
        None => match cache {
            Some(cache) if !cache.folders.is_empty() => cache.folders.clone(),
            _ => return Decision::Answer(PingResponse::MissingParameters),
        },
    };
    let Some(interval_s) = interval_s else {
        return Decision::Answer(PingResponse::MissingParameters);
    };
    if interval_s < config.min_heartbeat_s || interval_s > config.max_heartbeat_s {
        let bound = interval_s.clamp(config.min_heartbeat_s, config.max_heartbeat_s);
        return Decision::Answer(PingResponse::IntervalOutOfRange {
            heartbeat_interval_s: bound,
        });
    }
    if device.hierarchy_key != mailbox.hierarchy_version() + 1 {
        return Decision::Answer(PingResponse::FolderSyncRequired);
    }
    if let Some(older) = device.parked.take() {
        let _ = older.waker.send(Wake::Superseded);
    }
    let changed = device.changed_folders(mailbox, &folders);
    device.ping = Some(PingCache {
        interval_s: Some(interval_s),
        folders,
    });
    if !changed.is_empty() {
        return Decision::Answer(PingResponse::Changes { folders: changed });
    }
    let (slot, receiver) = new_slot(generation);
    device.parked = Some(slot);
    Decision::Park {
        receiver,
        heartbeat_s: interval_s,
        generation,
        user: name.clone(),
        device: device.id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eas::commands::ping::PingFolder;
    use crate::server::users::Users;

    fn config() -> PartitionConfig {
        PartitionConfig::new(Users::Listed(Default::default()))
    }

    fn ping(interval: Option<u32>, folders: &[&str]) -> Option<PingRequest> {
        Some(PingRequest {
            heartbeat_interval_s: interval,
            folders: folders
                .iter()
                .map(|id| PingFolder::new(*id, "Email"))
                .collect(),
        })
    }

    fn folder_synced_user() -> UserState {
        let mut user = UserState::new("u");
        user.device("d").hierarchy_key = 1;
        user
    }

    fn answer_of(decision: Decision) -> PingResponse {
        match decision {
            Decision::Answer(response) => response,
            Decision::Park { .. } => panic!("expected an answer, got a park"),
        }
    }

    #[test]
    fn statuses_for_bad_requests() {
        let config = config();
        let mut user = folder_synced_user();
        let empty = decide(&mut user, "d", None, &config, 1);
        assert_eq!(answer_of(empty), PingResponse::MissingParameters);
        let no_interval = decide(&mut user, "d", ping(None, &["5"]), &config, 1);
        assert_eq!(answer_of(no_interval), PingResponse::MissingParameters);
        let low = decide(&mut user, "d", ping(Some(10), &["5"]), &config, 1);
        assert_eq!(
            answer_of(low),
            PingResponse::IntervalOutOfRange {
                heartbeat_interval_s: 60
            }
        );
        let high = decide(&mut user, "d", ping(Some(4000), &["5"]), &config, 1);
        assert_eq!(
            answer_of(high),
            PingResponse::IntervalOutOfRange {
                heartbeat_interval_s: 3540
            }
        );
        let unknown = decide(&mut user, "d", ping(Some(600), &["77"]), &config, 1);
        assert_eq!(answer_of(unknown), PingResponse::FolderSyncRequired);
        let mut small = config.clone();
        small.max_folders = 1;
        let many = decide(&mut user, "d", ping(Some(600), &["5", "1"]), &small, 1);
        assert_eq!(
            answer_of(many),
            PingResponse::TooManyFolders { max_folders: 1 }
        );
    }

    #[test]
    fn a_device_that_never_folder_synced_must_do_so() {
        let mut user = UserState::new("u");
        let decision = decide(&mut user, "d", ping(Some(600), &["5"]), &config(), 1);
        assert_eq!(answer_of(decision), PingResponse::FolderSyncRequired);
    }

    #[test]
    fn parks_then_reuses_the_cache_and_supersedes() {
        let config = config();
        let mut user = folder_synced_user();
        let Decision::Park {
            mut receiver,
            heartbeat_s,
            ..
        } = decide(&mut user, "d", ping(Some(600), &["5"]), &config, 1)
        else {
            panic!("expected a park");
        };
        assert_eq!(heartbeat_s, 600);
        let Decision::Park {
            heartbeat_s,
            generation,
            ..
        } = decide(&mut user, "d", None, &config, 2)
        else {
            panic!("an empty Ping with a cache parks too");
        };
        assert_eq!((heartbeat_s, generation), (600, 2));
        assert!(matches!(receiver.try_recv(), Ok(Wake::Superseded)));
    }

    #[test]
    fn a_change_waiting_in_the_mailbox_answers_at_once() {
        let config = config();
        let mut user = folder_synced_user();
        let inbox = user.mailbox.folder_index("5").unwrap();
        user.mailbox.add_items(inbox, 1, 10, None);
        let decision = decide(&mut user, "d", ping(Some(600), &["5", "1"]), &config, 1);
        assert_eq!(
            answer_of(decision),
            PingResponse::Changes {
                folders: vec!["5".into()]
            }
        );
    }
}
