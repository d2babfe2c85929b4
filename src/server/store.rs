//! The partition's in-memory state: every user's mailbox and the state of each of their
//! devices (policy keys, hierarchy and folder sync keys, the cached Ping, the parked
//! Ping's wake-up slot), sharded by user.
//!
//! Each shard is a `std::sync::Mutex`, not a tokio one: no `.await` happens while one is
//! held, and every critical section is a few map look-ups, so a blocking lock is the
//! cheapest choice; sharding keeps the two runtime threads from queueing on one lock.

use super::wake_path::WakeTrace;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::mailbox::{FolderIndex, FolderSyncState, Mailbox};

const SHARDS: usize = 64;

/// Why a parked Ping is being answered early.
#[derive(Debug)]
pub enum Wake {
    /// Monitored folders changed. Boxed: every parked Ping's channel has room for a
    /// `Wake`, so its largest variant is paid for by every parked connection.
    Changes(Box<Changes>),
    /// The folder hierarchy changed: answer Status 7.
    HierarchyChanged,
    /// A newer Ping from the same device took over: answer Status 1.
    Superseded,
    /// The server is shutting down: answer Status 1.
    Shutdown,
}

/// The folders a change woke a Ping for; `trace` says when the datagram arrived and was
/// read, and when this wake was signalled.
#[derive(Debug)]
pub struct Changes {
    pub folders: Vec<String>,
    pub trace: WakeTrace,
}

/// The wake-up slot of a parked Ping. `generation` tells a stale slot from a newer one.
#[derive(Debug)]
pub struct ParkedSlot {
    pub generation: u64,
    pub waker: oneshot::Sender<Wake>,
}

/// What a device's last full Ping asked for, reused by later empty or partial Pings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingCache {
    pub interval_s: Option<u32>,
    pub folders: Box<[FolderIndex]>,
}

/// Everything the server remembers about one device.
#[derive(Debug)]
pub struct DeviceState {
    pub id: Arc<str>,
    /// The final policy key after Provision phase 2 (0: not provisioned).
    pub policy_key: u32,
    /// The temporary key handed out by phase 1 (0: none outstanding).
    pub pending_policy_key: u32,
    /// The FolderSync key this device holds (hierarchy version + 1; 0: never synced).
    pub hierarchy_key: u32,
    pub sync: Vec<FolderSyncState>,
    pub ping: Option<PingCache>,
    pub parked: Option<ParkedSlot>,
}

impl DeviceState {
    fn new(id: &str) -> Self {
        Self {
            id: id.into(),
            policy_key: 0,
            pending_policy_key: 0,
            hierarchy_key: 0,
            sync: Vec::new(),
            ping: None,
            parked: None,
        }
    }

    /// The sync state of a folder, created at key 0 on first use.
    pub fn folder_sync(&mut self, folder: FolderIndex) -> &mut FolderSyncState {
        let position = match self.sync.iter().position(|state| state.folder == folder) {
            Some(position) => position,
            None => {
                // Most devices sync one or two folders: grow one slot at a time rather
                // than by Vec's default of four.
                self.sync.reserve_exact(1);
                self.sync.push(FolderSyncState::new(folder));
                self.sync.len() - 1
            }
        };
        &mut self.sync[position]
    }

    /// How far this device has synced a folder (0 when never).
    pub fn synced_seq(&self, folder: FolderIndex) -> u64 {
        self.sync
            .iter()
            .find(|state| state.folder == folder)
            .map_or(0, |state| state.synced_seq)
    }
}

impl DeviceState {
    /// The given folders that hold items this device has not synced, as ids.
    pub fn changed_folders(&self, mailbox: &Mailbox, folders: &[FolderIndex]) -> Vec<String> {
        folders
            .iter()
            .filter(|folder| mailbox.newest_seq(**folder) > self.synced_seq(**folder))
            .map(|folder| mailbox.folder_id(*folder).to_owned())
            .collect()
    }

    /// Takes the parked Ping's slot if it belongs to `generation`.
    pub fn take_parked(&mut self, generation: u64) -> Option<ParkedSlot> {
        match &self.parked {
            Some(slot) if slot.generation == generation => self.parked.take(),
            _ => None,
        }
    }
}

/// One user's mailbox and devices.
#[derive(Debug)]
pub struct UserState {
    /// The user name, shared with the parked Pings that must find this user again.
    pub name: Arc<str>,
    pub mailbox: Mailbox,
    pub devices: Vec<DeviceState>,
}

impl UserState {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            mailbox: Mailbox::new(),
            devices: Vec::new(),
        }
    }

    /// The device's state, created on first contact.
    pub fn device(&mut self, id: &str) -> &mut DeviceState {
        device_mut(&mut self.devices, id)
    }

    /// The device's state if it has been seen.
    pub fn existing_device(&mut self, id: &str) -> Option<&mut DeviceState> {
        self.devices.iter_mut().find(|device| &*device.id == id)
    }
}

/// The device with this id in a list, created on first contact. A free function so
/// callers can hold the mailbox and a device at the same time.
pub(crate) fn device_mut<'a>(devices: &'a mut Vec<DeviceState>, id: &str) -> &'a mut DeviceState {
    let position = match devices.iter().position(|device| &*device.id == id) {
        Some(position) => position,
        None => {
            // Most users have one device: no room reserved for four.
            devices.reserve_exact(1);
            devices.push(DeviceState::new(id));
            devices.len() - 1
        }
    };
    &mut devices[position]
}

/// One lock's worth of users.
type Shard = Mutex<HashMap<Arc<str>, UserState>>;

/// All users of the partition.
#[derive(Debug)]
pub struct Store {
    shards: Box<[Shard]>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl Store {
    /// Runs `f` on a user's state (created empty on first use) under its shard lock.
    pub fn with_user<R>(&self, user: &str, f: impl FnOnce(&mut UserState) -> R) -> R {
        let shard = &self.shards[shard_of(user)];
        // A panic elsewhere cannot leave a user half-updated in a way that matters more
        // than losing the whole partition, so a poisoned lock is still used.
        let mut users = shard.lock().unwrap_or_else(PoisonError::into_inner);
        match users.get_mut(user) {
            Some(state) => f(state),
            None => {
                let state = UserState::new(user);
                f(users.entry(state.name.clone()).or_insert(state))
            }
        }
    }

    /// Runs `f` on every user, one shard at a time.
    pub fn for_each_user(&self, mut f: impl FnMut(&mut UserState)) {
        for shard in self.shards.iter() {
            let mut users = shard.lock().unwrap_or_else(PoisonError::into_inner);
            users.values_mut().for_each(&mut f);
        }
    }
}

fn shard_of(user: &str) -> usize {
    let hash = user.bytes().fold(0u32, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(u32::from(byte))
    });
    hash as usize % SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_devices_are_created_on_first_use() {
        let store = Store::default();
        store.with_user("u1", |user| {
            user.device("d1").policy_key = 7;
        });
        let key = store.with_user("u1", |user| user.device("d1").policy_key);
        assert_eq!(key, 7);
        let devices = store.with_user("u1", |user| user.devices.len());
        assert_eq!(devices, 1);
        let mut users = 0;
        store.for_each_user(|_| users += 1);
        assert_eq!(users, 1);
    }

    #[test]
    fn changes_are_what_the_device_has_not_synced() {
        let store = Store::default();
        store.with_user("u1", |user| {
            let inbox = user.mailbox.folder_index("5").unwrap();
            user.mailbox.add_items(inbox, 2, 10, None);
            let device = user.device("d1");
            let state = device.folder_sync(inbox);
            let from = state.check("0");
            state.advance(from, 1);
            let changed = user.devices[0].changed_folders(&user.mailbox, &[inbox]);
            assert_eq!(changed, vec!["5".to_owned()]);
            user.devices[0].folder_sync(inbox).synced_seq = 2;
            assert!(user.devices[0]
                .changed_folders(&user.mailbox, &[inbox])
                .is_empty());
        });
    }
}
