//! What a device makes of each answer to its bootstrap and its Pings: OPTIONS'
//! versions and commands, Provision's policy key, FolderSync's hierarchy (the pushed
//! folders found by type), Sync's items (notifications delivered), and every Ping
//! status.

use std::time::{Duration, Instant};

use super::{folders, Device, Next, State, NOT_SENT};
use crate::eas::commands::folder_sync::{Folder, FolderChange, FolderSyncResponse};
use crate::eas::commands::ping::PingResponse;
use crate::eas::commands::provision::ProvisionResponse;
use crate::eas::commands::sync::{SyncCommand, SyncResponse};
use crate::eas::request::Command;
use crate::eas::{ProtocolVersion, WbxmlBody};
use crate::fleet::errors::DeviceError;
use crate::fleet::http::HttpResponse;
use crate::fleet::stats::{tally, tally_seen, FleetStats};
use crate::notification;

/// Policy Status 2: "there is no policy for this client".
const NO_POLICY: u32 = 2;

impl Device {
    pub(super) fn options_answered(
        &mut self,
        response: &HttpResponse,
        stats: &mut FleetStats,
    ) -> Result<Next, DeviceError> {
        let counters = &mut stats.counters;
        let said = [
            (&mut counters.server_versions, &response.server_version),
            (
                &mut counters.advertised_versions,
                &response.protocol_versions,
            ),
            (
                &mut counters.advertised_commands,
                &response.protocol_commands,
            ),
        ];
        for (tally, value) in said {
            tally_seen(tally, value.as_deref().unwrap_or(NOT_SENT));
        }
        let content_type = response.content_type.as_deref().unwrap_or_default();
        let text = content_type
            .get(..5)
            .is_some_and(|kind| kind.eq_ignore_ascii_case("text/"));
        if response.protocol_versions.is_none() && text {
            let essence = content_type.split(';').next().unwrap_or_default();
            return Err(DeviceError::NotEas(essence.trim().to_ascii_lowercase()));
        }
        let offered: Vec<ProtocolVersion> = response
            .protocol_versions
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter_map(|version| version.parse().ok())
            .collect();
        self.version = if offered.contains(&self.profile.settings.protocol_version) {
            self.profile.settings.protocol_version
        } else {
            offered
                .into_iter()
                .filter(|version| *version <= self.profile.settings.protocol_version)
                .max()
                .ok_or(DeviceError::NoCommonVersion)?
        };
        tally(
            &mut stats.counters.negotiated_versions,
            self.version.as_str(),
        );
        self.state = if self.profile.settings.provision {
            State::ExpectPolicy
        } else {
            State::ExpectFolderSync
        };
        Ok(Next::Request)
    }

    /// A Provision answered: the policy key to acknowledge (or, acknowledged, to use),
    /// or Policy Status 2, "no policy for this client" (MS-ASPROV), with which a phone
    /// carries on without a key, as SOGo has every client do.
    pub(super) fn provision_answered(
        &mut self,
        body: &[u8],
        stats: &mut FleetStats,
    ) -> Result<Next, DeviceError> {
        let response = ProvisionResponse::decode(body)
            .map_err(|_| DeviceError::Undecodable(Some(Command::Provision)))?;
        let policy = response.policy.filter(|_| response.status == 1);
        if policy
            .as_ref()
            .is_some_and(|policy| policy.status == NO_POLICY)
        {
            stats.counters.provisioned_without_policy += 1;
            self.policy_key = None;
            self.state = State::ExpectFolderSync;
            return Ok(Next::Request);
        }
        let key = policy
            .filter(|policy| policy.status == 1)
            .and_then(|policy| policy.policy_key)
            .ok_or(DeviceError::ProvisionRefused)?;
        if self.state == State::ExpectPolicy {
            self.policy_key = Some(key);
            self.state = State::ExpectPolicyAck;
        } else {
            self.policy_key = Some(key);
            self.state = State::ExpectFolderSync;
        }
        Ok(Next::Request)
    }

    pub(super) fn folder_sync_answered(
        &mut self,
        body: &[u8],
        stats: &mut FleetStats,
    ) -> Result<Next, DeviceError> {
        let response = FolderSyncResponse::decode(body)
            .map_err(|_| DeviceError::Undecodable(Some(Command::FolderSync)))?;
        match response.status {
            1 => {}
            9 => {
                self.folder_key = "0".into();
                self.folders
                    .iter_mut()
                    .for_each(|folder| folder.key = "0".into());
                return Ok(self.resync("FolderSync status 9", stats));
            }
            142 | 144 => {
                self.state = State::ExpectPolicy;
                return Ok(Next::Request);
            }
            _ => return Ok(Next::Backoff(DeviceError::Failed(Command::FolderSync))),
        }
        let added: Vec<&Folder> = response
            .changes
            .iter()
            .filter_map(|change| match change {
                FolderChange::Add(folder) | FolderChange::Update(folder) => Some(folder),
                _ => None,
            })
            .collect();
        if self.folder_key == "0" {
            // The whole hierarchy: every pushed folder must be in it.
            folders::resolve(&mut self.folders, &added).map_err(DeviceError::FolderMissing)?;
        } else {
            folders::update_classes(&mut self.folders, &added);
        }
        self.folder_key = response.sync_key.unwrap_or_else(|| "0".into());
        self.to_sync = (0..self.folders.len())
            .filter(|index| self.folders[*index].key == "0")
            .collect();
        self.state = if self.to_sync.is_empty() {
            self.rest_state()
        } else {
            State::ExpectSync
        };
        self.ping_cached = false;
        Ok(Next::Request)
    }

    pub(super) fn sync_answered(
        &mut self,
        body: &[u8],
        arrived: Instant,
        stats: &mut FleetStats,
    ) -> Result<Next, DeviceError> {
        let response = SyncResponse::decode(body)
            .map_err(|_| DeviceError::Undecodable(Some(Command::Sync)))?;
        match response.status {
            None | Some(1) => {}
            Some(142 | 144) => {
                self.state = State::ExpectPolicy;
                return Ok(Next::Request);
            }
            Some(12) => {
                self.state = State::ExpectFolderSync;
                return Ok(self.resync("Sync status 12", stats));
            }
            Some(_) => return Ok(Next::Backoff(DeviceError::Failed(Command::Sync))),
        }
        let index = *self.to_sync.front().ok_or(DeviceError::SyncMismatch)?;
        let collection = response
            .collections
            .iter()
            .find(|collection| collection.collection_id == self.folders[index].id)
            .ok_or(DeviceError::SyncMismatch)?;
        match collection.status {
            1 => {}
            3 => {
                self.folders[index].key = "0".into();
                return Ok(self.resync("Sync status 3", stats));
            }
            12 => {
                self.state = State::ExpectFolderSync;
                return Ok(self.resync("Sync status 12", stats));
            }
            _ => return Ok(Next::Backoff(DeviceError::SyncCollectionFailed)),
        }
        let was_initial = self.folders[index].key == "0";
        self.folders[index].key = collection.sync_key.clone();
        if !collection.commands.is_empty() {
            self.wake_unexplained = false;
        }
        for command in &collection.commands {
            if let SyncCommand::Add { email, .. } = command {
                let seq = email
                    .subject
                    .as_deref()
                    .and_then(notification::seq_in_subject);
                if let Some(seq) = seq {
                    self.labels_items = true;
                    self.item_arrived(seq, arrived, stats);
                }
            }
        }
        if !was_initial && !collection.more_available {
            self.to_sync.pop_front();
            // Woken notifications are delivered once their folder is synced, on a
            // server that does not label items; one that does brings each later if
            // not now (its change reached the store after this Sync was answered).
            if !self.labels_items {
                self.pending
                    .retain(|pending| !(pending.woken_at.is_some() && pending.folder == index));
            }
        }
        if self.to_sync.is_empty() {
            self.state = self.rest_state();
            if std::mem::take(&mut self.wake_unexplained) {
                tally(&mut stats.counters.empty_wakes, &self.profile.kind);
            }
        }
        Ok(Next::Request)
    }

    pub(super) fn ping_answered(
        &mut self,
        body: &[u8],
        arrived: Instant,
        stats: &mut FleetStats,
    ) -> Result<Next, DeviceError> {
        let response = PingResponse::decode(body)
            .map_err(|_| DeviceError::Undecodable(Some(Command::Ping)))?;
        tally(
            &mut stats.counters.ping_status,
            response.status().to_string(),
        );
        if matches!(
            response,
            PingResponse::Expired | PingResponse::Changes { .. }
        ) {
            // The device was parked: whatever resyncs came before are behind it.
            self.resyncs_in_a_row = 0;
            if let (Some(since), Some(sent)) = (self.unreachable_since, self.ping_sent_at) {
                // The first Ping answered since one died: reachable again from its
                // sending. A flush's cut-offs are timed by the engine (re-parking on a
                // new connection), from the flush itself.
                if !self.unreachable_by_flush {
                    stats
                        .unreachable
                        .record(sent.saturating_duration_since(since));
                }
                self.unreachable_since = None;
            }
        }
        self.ping_sent_at = None;
        match response {
            PingResponse::Expired => {
                self.ping_cached = true;
                self.heartbeat.held();
            }
            PingResponse::Changes { folders } => {
                self.ping_cached = true;
                let named: Vec<usize> = (0..self.folders.len())
                    .filter(|index| folders.contains(&self.folders[*index].id))
                    .collect();
                self.wake_unexplained = self.woken(&named, arrived, stats) == 0;
                self.to_sync = named.iter().copied().collect();
                self.last_changes = Some((arrived, named));
                if !self.to_sync.is_empty() {
                    self.state = State::ExpectSync;
                }
            }
            PingResponse::MissingParameters => self.ping_cached = false,
            PingResponse::SyntaxError => {
                self.ping_cached = false;
                return Ok(Next::Backoff(DeviceError::PingSyntaxError));
            }
            PingResponse::IntervalOutOfRange {
                heartbeat_interval_s,
            } => {
                self.heartbeat
                    .bounded_by_server(Duration::from_secs(u64::from(heartbeat_interval_s)));
                self.ping_cached = false;
            }
            PingResponse::TooManyFolders { max_folders } => {
                self.ping_folder_limit = (max_folders as usize).max(1);
                self.ping_cached = false;
            }
            PingResponse::FolderSyncRequired => {
                self.ping_cached = false;
                self.state = State::ExpectFolderSync;
                return Ok(self.resync("Ping status 7", stats));
            }
            PingResponse::ServerError => return Ok(Next::Backoff(DeviceError::PingServerError)),
            PingResponse::Other { .. } => return Ok(Next::Backoff(DeviceError::PingStatusOver100)),
        }
        Ok(Next::Request)
    }
}
