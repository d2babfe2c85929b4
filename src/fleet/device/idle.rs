//! A device that does not push, between its syncs: a scheduled one waits for its next
//! sync, an SMS-woken one for its next text, each with nothing in flight; then it syncs
//! (every pushed folder, or the texted one) and rests again.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Action, Device, State};
use crate::fleet::delivery::{Delivery, SyncConnection};
use crate::fleet::stats::FleetStats;

impl Device {
    /// Where the device rests once its folders are synced: a parked Ping if it pushes,
    /// idle otherwise.
    pub(super) fn rest_state(&self) -> State {
        match self.profile.delivery() {
            Delivery::Push => State::Parked,
            Delivery::Scheduled { .. } | Delivery::Sms => State::Idle,
        }
    }

    /// What the engine does with the idle device: when to wake it, and whether its
    /// connection stays open meanwhile.
    pub(super) fn idle_action(&mut self, now: Instant) -> Action {
        match self.profile.delivery() {
            Delivery::Scheduled {
                interval,
                connection,
            } => {
                let next = *self.next_sync.get_or_insert(now + interval);
                Action::Idle {
                    until: Some(next),
                    keep_connection: connection == SyncConnection::Kept,
                }
            }
            Delivery::Sms => Action::Idle {
                until: self.texts.iter().min().copied(),
                keep_connection: false,
            },
            // A pushing device is never idle; if asked, it parks.
            Delivery::Push => {
                self.state = State::Parked;
                Action::Reconnect { at: now }
            }
        }
    }

    /// Whether the device learns of mail by SMS (the engine asks the gateway for it).
    pub(crate) fn learns_by_text(&self) -> bool {
        self.profile.delivery() == Delivery::Sms
    }

    /// The idle device's time has come: its scheduled sync, or a text.
    pub(crate) fn on_idle_timer(&mut self, now: Instant, stats: &mut FleetStats) -> Action {
        if self.state != State::Idle {
            return self.request(now, stats);
        }
        match self.profile.delivery() {
            Delivery::Scheduled { interval, .. } => {
                // The next sync keeps to the schedule, whatever this one takes.
                let due = self.next_sync.unwrap_or(now);
                if now < due {
                    return self.idle_action(now);
                }
                self.next_sync = Some(due + interval);
                self.sync_now((0..self.folders.len()).collect(), now, stats)
            }
            Delivery::Sms => {
                let before = self.texts.len();
                self.texts.retain(|at| *at > now);
                if self.texts.len() == before {
                    return self.idle_action(now);
                }
                // AUTD's text names no folder: the phone syncs the notified one.
                self.sync_now(VecDeque::from([0]), now, stats)
            }
            Delivery::Push => self.idle_action(now),
        }
    }

    /// The gateway sends a text for notification `seq` that arrives `at` (`None`: it
    /// lost it, and the mail waits for a later text's sync). An idle device is told
    /// when to wake; one in the middle of a sync takes it up when it rests.
    pub(crate) fn text_for(&mut self, seq: u64, at: Option<Instant>) -> Option<Action> {
        let Some(at) = at else {
            if let Some(pending) = self.pending.iter_mut().find(|p| p.seq == seq) {
                pending.text_lost = true;
            }
            return None;
        };
        self.texts.push(at);
        (self.state == State::Idle).then(|| Action::Idle {
            until: self.texts.iter().min().copied(),
            keep_connection: false,
        })
    }

    /// Starts syncing `folders` (indices): the device learnt of its mail now.
    fn sync_now(
        &mut self,
        folders: VecDeque<usize>,
        now: Instant,
        stats: &mut FleetStats,
    ) -> Action {
        let named: Vec<usize> = folders.iter().copied().collect();
        self.woken(&named, now, stats);
        self.to_sync = folders;
        self.state = State::ExpectSync;
        self.request(now, stats)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{ok, parked_device, sent, sync_answer_in};
    use super::*;
    use crate::eas::commands::sync::SyncRequest;
    use crate::eas::WbxmlBody;
    use crate::fleet::delivery::DeliveryMode;
    use crate::fleet::profile::Profile;

    fn profile(mode: DeliveryMode) -> Profile {
        Profile::default().with(|s| {
            s.delivery = mode;
            s.sync_interval = crate::units::Span::from_secs(60);
            s.min_sync_interval = crate::units::Span::from_secs(300);
        })
    }

    /// The Sync the action sends: its folder and whether it asks for changes.
    fn sync_of(action: &Action) -> (String, bool) {
        let (command, body, _) = sent(action);
        assert_eq!(command, "Sync");
        let request = SyncRequest::decode(&body).unwrap();
        let collection = &request.collections[0];
        (
            collection.collection_id.clone(),
            collection.get_changes == Some(true),
        )
    }

    #[test]
    fn a_scheduled_device_syncs_at_its_interval_and_never_sooner_than_its_minimum() {
        let (now, mut stats) = (Instant::now(), FleetStats::default());
        let (mut device, action) = parked_device(profile(DeliveryMode::Scheduled), &mut stats, now);
        let five = Duration::from_secs(300);
        // Asked for 60 s, the device keeps to its 5-minute minimum; no Ping is sent.
        let idle = Action::Idle {
            until: Some(now + five),
            keep_connection: false,
        };
        assert_eq!(action, idle);
        assert!(!stats.counters.requests.contains_key("Ping"));
        device.notified_folder_planned(1, now + Duration::from_secs(100), false);
        // Woken early, it waits on.
        assert_eq!(
            device.on_idle_timer(now + Duration::from_secs(299), &mut stats),
            idle
        );
        let action = device.on_idle_timer(now + five, &mut stats);
        assert_eq!(sync_of(&action), ("5".into(), true));
        let answer = sync_answer_in("5", "9", false, &[1]);
        let action = device.on_response(answer, now + five, &mut stats);
        assert_eq!(
            action,
            Action::Idle {
                until: Some(now + 2 * five),
                keep_connection: false
            }
        );
        // The mail waited for the sync: 200 s.
        assert_eq!(stats.mail_on_device.histogram().len(), 1);
        let waited = stats.mail_on_device.histogram().max();
        assert!((199_000_000..=201_000_000).contains(&waited), "{waited}");
        assert_eq!(stats.counters.notifications_on_time, 1);
        // Bootstrap and the sync 5 minutes later: two sessions of the radio.
        assert_eq!(stats.counters.radio_sessions, 2);
    }

    #[test]
    fn a_kept_connection_stays_open_between_syncs_and_a_cut_waits_for_the_next() {
        let (now, mut stats) = (Instant::now(), FleetStats::default());
        let kept =
            profile(DeliveryMode::Scheduled).with(|s| s.sync_connection = SyncConnection::Kept);
        let (mut device, action) = parked_device(kept, &mut stats, now);
        let next = Action::Idle {
            until: Some(now + Duration::from_secs(300)),
            keep_connection: true,
        };
        assert_eq!(action, next);
        // The server closes the idle connection: no backoff, no reconnect counted;
        // the next sync opens another.
        let later = now + Duration::from_secs(120);
        assert_eq!(device.on_disconnect(later, &mut stats, None), next);
        assert_eq!(stats.counters.reconnects, 0);
        assert_eq!(device.state(), State::Idle);
    }

    #[test]
    fn an_sms_device_connects_only_after_a_text_and_syncs_the_folder() {
        let (now, mut stats) = (Instant::now(), FleetStats::default());
        let (mut device, action) = parked_device(profile(DeliveryMode::Sms), &mut stats, now);
        let waiting = Action::Idle {
            until: None,
            keep_connection: false,
        };
        assert_eq!(action, waiting);
        assert!(device.learns_by_text());
        let planned = now + Duration::from_secs(60);
        let texted = planned + Duration::from_secs(10);
        device.notified_folder_planned(1, planned, false);
        let told = Action::Idle {
            until: Some(texted),
            keep_connection: false,
        };
        assert_eq!(device.text_for(1, Some(texted)), Some(told.clone()));
        assert_eq!(device.on_idle_timer(planned, &mut stats), told);
        let action = device.on_idle_timer(texted, &mut stats);
        assert_eq!(sync_of(&action), ("5".into(), true));
        let action = device.on_response(sync_answer_in("5", "9", false, &[1]), texted, &mut stats);
        assert_eq!(action, waiting);
        assert_eq!(stats.counters.notifications_on_time, 1);
        assert_eq!(stats.mail_on_device.histogram().max() / 1_000_000, 10);
    }

    #[test]
    fn a_lost_text_leaves_the_mail_waiting_late_or_lost() {
        let (now, mut stats) = (Instant::now(), FleetStats::default());
        let (mut device, _) = parked_device(profile(DeliveryMode::Sms), &mut stats, now);
        // Lost, and nothing else comes: lost once the gateway's longest delay is past.
        device.notified_folder_planned(1, now, false);
        assert_eq!(device.text_for(1, None), None);
        let window = Duration::from_secs(600);
        let before = now + window - Duration::from_millis(1);
        device.expire_lost(Some(before), Duration::ZERO, &mut stats);
        assert_eq!(stats.counters.notifications_lost, 0);
        device.expire_lost(
            Some(now + window + Duration::from_secs(1)),
            Duration::ZERO,
            &mut stats,
        );
        assert_eq!(stats.counters.notifications_lost, 1);
        // Lost, then a later mail's text brings both: the first late, the second on time.
        let later = now + Duration::from_secs(700);
        device.notified_folder_planned(2, later, false);
        assert_eq!(device.text_for(2, None), None);
        device.notified_folder_planned(3, later + Duration::from_secs(5), false);
        let texted = later + Duration::from_secs(20);
        device.text_for(3, Some(texted));
        device.on_idle_timer(texted, &mut stats);
        device.on_response(ok(Vec::new()), texted, &mut stats);
        assert_eq!(stats.counters.notifications_late, 1);
        assert_eq!(stats.counters.notifications_on_time, 1);
    }
}
