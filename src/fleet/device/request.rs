//! The requests a device sends: the command for its state, its WBXML body, and the
//! HTTP request around it (request line from the protocol core, percent-encoded).

use std::time::{Duration, Instant};

use super::{Action, Device, State, WINDOW_SIZE};
use crate::eas::commands::folder_sync::FolderSyncRequest;
use crate::eas::commands::ping::{PingFolder, PingRequest};
use crate::eas::commands::provision::{PolicyRequest, ProvisionRequest};
use crate::eas::commands::sync::{SyncCollectionRequest, SyncRequest};
use crate::eas::headers::{MS_AS_PROTOCOL_VERSION, X_MS_POLICY_KEY};
use crate::eas::request::{Command, EasQuery};
use crate::eas::WbxmlBody;
use crate::fleet::http::HttpRequest;
use crate::fleet::radio::Direction;
use crate::fleet::stats::{tally, FleetStats};

impl Device {
    /// The heartbeat as the Ping carries it: whole seconds (MS-ASCMD), rounded up.
    fn heartbeat_on_wire_s(&self) -> u32 {
        u32::try_from(self.heartbeat().as_millis().div_ceil(1000)).unwrap_or(u32::MAX)
    }

    /// The request for the current state.
    pub(super) fn request(&mut self, now: Instant, stats: &mut FleetStats) -> Action {
        let timeout = self.profile.request_timeout;
        let (command, body, timeout) = match self.state {
            State::ExpectOptions => (None, Vec::new(), timeout),
            State::ExpectPolicy => {
                let request = ProvisionRequest {
                    policy: Some(PolicyRequest::phase_one()),
                    ..ProvisionRequest::default()
                };
                (Some(Command::Provision), request.encode(), timeout)
            }
            State::ExpectPolicyAck => {
                let key = self.policy_key.clone().unwrap_or_default();
                let request = ProvisionRequest {
                    policy: Some(PolicyRequest::acknowledge(key)),
                    ..ProvisionRequest::default()
                };
                (Some(Command::Provision), request.encode(), timeout)
            }
            State::ExpectFolderSync => {
                let request = FolderSyncRequest {
                    sync_key: self.folder_key.clone(),
                };
                (Some(Command::FolderSync), request.encode(), timeout)
            }
            State::ExpectSync => (Some(Command::Sync), self.sync_body(), timeout),
            State::Parked => {
                // The server holds the Ping for the heartbeat on the wire (whole
                // seconds, rounded up), so the deadline counts from that.
                let on_wire = Duration::from_secs(u64::from(self.heartbeat_on_wire_s()));
                let timeout = on_wire + self.profile.read_margin;
                self.ping_sent_at = Some(now);
                (Some(Command::Ping), self.ping_body(), timeout)
            }
            State::Idle => return self.idle_action(now),
            State::Stopped => return Action::Stop,
        };
        let bytes = self.encode(command.as_ref(), &body);
        tally(&mut stats.counters.requests, self.state.command_name());
        self.radio_packet(now, Direction::Up, stats);
        // A parked Ping's answer comes when the server has something (or its
        // heartbeat ends): a wait, not an exchange.
        self.exchange_started(self.state != State::Parked);
        Action::Send {
            bytes,
            deadline: now + timeout,
        }
    }

    fn sync_body(&self) -> Vec<u8> {
        let folder = self
            .to_sync
            .front()
            .map_or(&self.folders[0], |index| &self.folders[*index]);
        let initial = folder.key == "0";
        SyncRequest {
            collections: vec![SyncCollectionRequest {
                sync_key: folder.key.clone(),
                collection_id: folder.id.clone(),
                get_changes: (!initial).then_some(true),
                window_size: (!initial).then_some(WINDOW_SIZE),
                ..SyncCollectionRequest::default()
            }],
        }
        .encode()
    }

    fn ping_body(&mut self) -> Vec<u8> {
        if self.profile.settings.empty_reping && self.ping_cached {
            return Vec::new();
        }
        let folders = self
            .folders
            .iter()
            .take(self.ping_folder_limit)
            .map(|folder| PingFolder::new(folder.id.as_str(), folder.class))
            .collect();
        PingRequest {
            heartbeat_interval_s: Some(self.heartbeat_on_wire_s()),
            folders,
        }
        .encode()
    }

    /// The request bytes of `command` (`None`: OPTIONS) with `body`; the request line
    /// comes from the protocol core, percent-encoded.
    fn encode(&self, command: Option<&Command>, body: &[u8]) -> Vec<u8> {
        let query = command.and_then(|command| {
            EasQuery::plain(
                command.clone(),
                self.user.as_str(),
                self.device_id.as_str(),
                self.profile.settings.device_type.as_str(),
            )
            .to_query()
            .ok()
        });
        let target = match query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        };
        let is_ping = command == Some(&Command::Ping);
        let version = self.version.as_str();
        let mut headers = vec![(MS_AS_PROTOCOL_VERSION, version)];
        // Like AOSP, no policy key on Ping.
        if let (Some(key), false) = (&self.policy_key, is_ping) {
            headers.push((X_MS_POLICY_KEY, key.as_str()));
        }
        HttpRequest {
            method: if command.is_some() { "POST" } else { "OPTIONS" },
            target: &target,
            host: &self.host,
            authorization: &self.authorization,
            user_agent: &self.profile.settings.user_agent,
            headers: &headers,
            body,
            close: is_ping && self.profile.settings.close_per_ping,
        }
        .encode()
    }
}
