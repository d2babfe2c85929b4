//! The UDP change-notification listener: reads datagrams in batches, applies each
//! well-formed change to the mailbox store first and then wakes the parked Pings it
//! concerns. Malformed datagrams,
//! unknown users, other partitions' users and unknown folders are counted and ignored;
//! nothing here can panic on input.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::metrics::bump;
use super::state::ServerState;
use super::store::{Changes, Wake};
use super::wake_path::WakeTrace;
use crate::kernel_stamp;
use crate::notification::{ChangeKind, Notification, MAX_DATAGRAM_BYTES};

/// What became of one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Stored; this many parked Pings were woken.
    Stored {
        woken: usize,
    },
    UnknownUser,
    OtherPartition,
    UnknownFolder,
    /// The user has the most folders a mailbox keeps: the hierarchy change is refused.
    FolderLimit,
}

/// Datagrams read with one system call (`recvmmsg`).
const BATCH: usize = 32;
/// Batches read before the listener lets the runtime's other tasks run: a flood is read
/// 2,048 datagrams at a time, and connections still get their turn between.
const BATCHES_PER_TURN: usize = 64;

/// Reads datagrams, a batch at a time, until shutdown, with a [`guard`] thread that
/// takes over whenever the runtime leaves the socket unread.
pub(crate) async fn listen(socket: UdpSocket, state: Arc<ServerState>) {
    let socket = Arc::new(socket);
    let guarded = (socket.clone(), state.clone());
    let _ = std::thread::Builder::new()
        .name("notify-guard".into())
        .spawn(move || guard(&guarded.0, &guarded.1));
    // One byte more than a datagram may have, so a longer one is seen, not cut.
    let mut batch = kernel_stamp::Batch::new(BATCH, MAX_DATAGRAM_BYTES + 1);
    let mut valid = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            ready = socket.readable() => if ready.is_err() { continue },
        }
        let mut batches = 0;
        while batches < BATCHES_PER_TURN {
            match socket.try_io(Interest::READABLE, || batch.read(&*socket)) {
                Ok(_) => apply_batch(&state, &batch, &mut valid),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                // An error the socket reported (and has now cleared): read on.
                Err(_) => {}
            }
            batches += 1;
        }
        if batches == BATCHES_PER_TURN {
            tokio::task::yield_now().await;
        }
    }
}

/// How often the guard looks at the socket, and how old the datagram at the head of its
/// queue must be for the guard to read: the runtime reads within a fraction of a
/// millisecond unless every one of its threads is busy with something else (a flood of
/// handshakes, say), and then the guard drains the socket itself.
const GUARD_PERIOD: Duration = Duration::from_millis(10);
const STARVED_AFTER: Duration = Duration::from_millis(20);

/// The listener's safety net, on a thread of its own: nothing the runtime does can keep
/// datagrams in the socket long enough to be dropped. It only peeks while the runtime
/// keeps up (one system call a millisecond), so wakes keep the runtime's short path
/// (the listener and the parked Ping on one thread); when the head of the queue has
/// waited `STARVED_AFTER`, it reads and applies batches until the socket is empty.
fn guard(socket: &UdpSocket, state: &ServerState) {
    let mut batch = kernel_stamp::Batch::new(BATCH, MAX_DATAGRAM_BYTES + 1);
    let mut valid = Vec::with_capacity(BATCH);
    while !state.shutdown.is_cancelled() {
        std::thread::sleep(GUARD_PERIOD);
        let starved = kernel_stamp::oldest_queued(socket)
            .is_some_and(|oldest| oldest.elapsed() >= STARVED_AFTER);
        if !starved {
            continue;
        }
        bump(&state.metrics.notify_guard_takeovers);
        while batch.read(socket).is_ok_and(|read| read > 0) {
            apply_batch(state, &batch, &mut valid);
        }
    }
}

/// Parses a batch and applies its well-formed changes, before anything else is done
/// with the rest (which are only counted): garbage in a flood costs a valid change
/// no more than its parsing.
fn apply_batch(
    state: &ServerState,
    batch: &kernel_stamp::Batch,
    valid: &mut Vec<(Notification, Instant)>,
) {
    // The wake latency starts when the kernel received each datagram.
    let read = Instant::now();
    valid.clear();
    for (bytes, received) in batch.datagrams() {
        bump(&state.metrics.notifications_received);
        match Notification::parse(bytes) {
            Ok(notification) => valid.push((notification, received)),
            Err(_) => bump(&state.metrics.notifications_malformed),
        }
    }
    for (notification, received) in valid.drain(..) {
        let arrival = WakeTrace {
            received,
            read,
            signalled: read,
        };
        apply(state, &notification, arrival);
    }
}

/// Applies one change and wakes the Pings that monitor the folder. `arrival` says when
/// the datagram was received and read (its `signalled` is set per wake).
pub(crate) fn apply(
    state: &ServerState,
    notification: &Notification,
    arrival: WakeTrace,
) -> Applied {
    let metrics = &state.metrics;
    if !state.config.users.exists(&notification.user) {
        bump(&metrics.notifications_unknown_user);
        return Applied::UnknownUser;
    }
    if !state.config.partition.owns(&notification.user) {
        bump(&metrics.notifications_other_partition);
        return Applied::OtherPartition;
    }
    let applied = state.store.with_user(&notification.user, |user| {
        let mailbox = &mut user.mailbox;
        let mut woken = 0;
        match notification.kind {
            ChangeKind::NewItem => {
                let Some(folder) = mailbox.folder_index(&notification.folder) else {
                    return Applied::UnknownFolder;
                };
                mailbox.add_items(
                    folder,
                    notification.count,
                    notification.size_bytes,
                    notification.seq,
                );
                for device in &mut user.devices {
                    let Some(cache) = &device.ping else { continue };
                    if device.parked.is_none() || !cache.folders.contains(&folder) {
                        continue;
                    }
                    let folders = device.changed_folders(mailbox, &cache.folders);
                    if let Some(slot) = device.parked.take() {
                        let wake = Wake::Changes(Box::new(Changes {
                            folders,
                            trace: WakeTrace {
                                signalled: Instant::now(),
                                ..arrival
                            },
                        }));
                        woken += usize::from(slot.waker.send(wake).is_ok());
                    }
                }
            }
            ChangeKind::Hierarchy => {
                if mailbox.add_folder().is_none() {
                    return Applied::FolderLimit;
                }
                for device in &mut user.devices {
                    if let Some(slot) = device.parked.take() {
                        woken += usize::from(slot.waker.send(Wake::HierarchyChanged).is_ok());
                    }
                }
            }
        }
        Applied::Stored { woken }
    });
    match applied {
        Applied::Stored { woken } => {
            bump(&metrics.notifications_applied);
            metrics
                .wakeups
                .fetch_add(woken as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Applied::UnknownFolder => bump(&metrics.notifications_unknown_folder),
        Applied::FolderLimit => bump(&metrics.notifications_over_limit),
        Applied::UnknownUser | Applied::OtherPartition => {}
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Partition;
    use crate::server::parking::new_slot;
    use crate::server::state::PartitionConfig;
    use crate::server::store::PingCache;
    use crate::server::users::Users;
    use tokio_util::sync::CancellationToken;

    fn arrival() -> WakeTrace {
        let now = Instant::now();
        WakeTrace {
            received: now,
            read: now,
            signalled: now,
        }
    }

    fn state(partition: Partition) -> Arc<ServerState> {
        let mut config = PartitionConfig::new(Users::Synthetic {
            prefix: "user".into(),
            count: 100,
            password: "pw".into(),
        });
        config.partition = partition;
        ServerState::new(config, CancellationToken::new())
    }

    /// Parks a Ping of `user`'s device `d` on folder 5; its wake comes on the receiver.
    fn park(state: &ServerState, user: &str) -> tokio::sync::oneshot::Receiver<Wake> {
        state.store.with_user(user, |user| {
            let inbox = user.mailbox.folder_index("5").unwrap();
            let device = user.device("d");
            device.ping = Some(PingCache {
                interval_s: Some(600),
                folders: vec![inbox].into(),
            });
            let (slot, receiver) = new_slot(1);
            device.parked = Some(slot);
            receiver
        })
    }

    #[test]
    fn a_change_is_stored_before_the_parked_ping_is_woken() {
        let state = state(Partition::WHOLE);
        let mut receiver = park(&state, "user1");
        let applied = apply(&state, &Notification::new_item("user1", "5"), arrival());
        assert_eq!(applied, Applied::Stored { woken: 1 });
        match receiver.try_recv() {
            Ok(Wake::Changes(changes)) => assert_eq!(changes.folders, vec!["5".to_owned()]),
            other => panic!("expected a change wake, got {other:?}"),
        }
        let newest = state.store.with_user("user1", |user| {
            let inbox = user.mailbox.folder_index("5").unwrap();
            user.mailbox.newest_seq(inbox)
        });
        assert_eq!(newest, 1);
    }

    #[test]
    fn unparked_devices_keep_the_change_for_later() {
        let state = state(Partition::WHOLE);
        let applied = apply(&state, &Notification::new_item("user2", "5"), arrival());
        assert_eq!(applied, Applied::Stored { woken: 0 });
        let changed = state.store.with_user("user2", |user| {
            let inbox = user.mailbox.folder_index("5").unwrap();
            let UserState {
                mailbox, devices, ..
            } = user;
            crate::server::store::device_mut(devices, "d").changed_folders(mailbox, &[inbox])
        });
        assert_eq!(changed, vec!["5".to_owned()]);
    }

    #[test]
    fn bad_targets_are_counted_not_applied() {
        let state = state(Partition { index: 0, count: 2 });
        let now = arrival();
        assert_eq!(
            apply(&state, &Notification::new_item("nobody", "5"), now),
            Applied::UnknownUser
        );
        let foreign = (0..100)
            .map(|index| format!("user{index}"))
            .find(|user| !state.config.partition.owns(user))
            .unwrap();
        let local = (0..100)
            .map(|index| format!("user{index}"))
            .find(|user| state.config.partition.owns(user))
            .unwrap();
        assert_eq!(
            apply(&state, &Notification::new_item(foreign, "5"), now),
            Applied::OtherPartition
        );
        assert_eq!(
            apply(&state, &Notification::new_item(local, "77"), now),
            Applied::UnknownFolder
        );
        let metrics = &state.metrics;
        use std::sync::atomic::Ordering::Relaxed;
        assert_eq!(metrics.notifications_unknown_user.load(Relaxed), 1);
        assert_eq!(metrics.notifications_other_partition.load(Relaxed), 1);
        assert_eq!(metrics.notifications_unknown_folder.load(Relaxed), 1);
    }

    use crate::server::store::UserState;

    #[tokio::test]
    async fn the_guard_applies_what_the_runtime_leaves_unread() {
        let state = state(Partition::WHOLE);
        let mut receiver = park(&state, "user1");
        // No listener runs: only the guard can read what arrives.
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        kernel_stamp::enable(&*socket).unwrap();
        let guarded = (socket.clone(), state.clone());
        let guarding = std::thread::spawn(move || guard(&guarded.0, &guarded.1));
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let datagram = Notification::new_item("user1", "5").to_string();
        sender
            .send_to(datagram.as_bytes(), socket.local_addr().unwrap())
            .unwrap();
        let woken = tokio::time::timeout(Duration::from_secs(5), &mut receiver).await;
        state.shutdown.cancel();
        guarding.join().unwrap();
        match woken {
            Ok(Ok(Wake::Changes(changes))) => assert_eq!(changes.folders, ["5"]),
            other => panic!("the guard did not wake the parked Ping: {other:?}"),
        }
        let takeovers = state
            .metrics
            .notify_guard_takeovers
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(takeovers, 1);
    }
}
