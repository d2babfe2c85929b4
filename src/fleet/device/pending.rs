//! The notifications planned for a device and not yet on it: when each was planned,
//! whether a Ping has woken the device for it, and the latencies recorded when it
//! arrives or is given up as lost (and, modelled beside them, mail on device with the
//! radio's own delay).

use std::time::{Duration, Instant};

use super::{Device, State};
use crate::fleet::delivery::Delivery;
use crate::fleet::stats::FleetStats;

/// A change notification planned for this device's user, not yet seen by the device.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pending {
    pub(super) seq: u64,
    pub(super) folder: usize,
    pub(super) planned: Instant,
    /// The planned instant on the device's own clock, in simulated seconds.
    pub(super) planned_sim_s: f64,
    /// When its datagram left the injector (its transmit stamp), once the engine knows.
    pub(super) departed: Option<Instant>,
    /// Its departure will be known (a datagram): no wake-up before it is its own. A
    /// mail's is not (the mail store's delivery is the server's business).
    pub(super) awaits_departure: bool,
    /// When a Ping response (or a Sync, without one) woke the device for it.
    pub(super) woken_at: Option<Instant>,
    /// The device's dead Pings when the notification was planned: more at delivery
    /// means it arrived late, through a Ping sent after one died.
    pub(super) dead_pings_at_plan: u64,
    /// The SMS gateway lost its text: if it arrives, it came late, by a later text.
    pub(super) text_lost: bool,
}

impl Device {
    /// A notification for this device's user was planned for `planned`, for any of its
    /// pushed folders (the injector notifies the first, [`Device::notified_folder_planned`];
    /// the tests plan for the others too, to see notifications of several folders meet).
    #[cfg(test)]
    pub(crate) fn notification_planned(&mut self, seq: u64, folder: &str, planned: Instant) {
        if let Some(folder) = self.folders.iter().position(|pushed| pushed.id == folder) {
            self.plan(seq, folder, planned, false);
        }
    }

    /// A notification for [`Device::notified_folder`] was planned for `planned`; with
    /// `stamped`, its datagram's departure will be told (and a wake-up before it is not
    /// its own).
    pub(crate) fn notified_folder_planned(&mut self, seq: u64, planned: Instant, stamped: bool) {
        // `folders` follows the profile's order, so the notified folder is the first.
        self.plan(seq, 0, planned, stamped);
    }

    fn plan(&mut self, seq: u64, folder: usize, planned: Instant, awaits_departure: bool) {
        if self.state == State::Parked && self.ping_sent_at.is_some() {
            // From its mail's arrival the parked Ping's answer is the server's to give
            // at once: an exchange (a Ping that dies instead is a wait again).
            self.mail_for_parked_ping(planned);
        }
        self.pending.push(Pending {
            seq,
            folder,
            planned,
            planned_sim_s: self.simulated_time(planned),
            departed: None,
            awaits_departure,
            woken_at: None,
            dead_pings_at_plan: self.dead_pings,
            text_lost: false,
        });
    }

    /// The longest a notification may wait for this device by its way of learning of
    /// mail: a heartbeat, a sync interval, or the SMS gateway's longest delay.
    fn delivery_window(&self) -> Duration {
        match self.profile.delivery() {
            Delivery::Push => self.heartbeat(),
            Delivery::Scheduled { interval, .. } => interval,
            Delivery::Sms => self.profile.settings.sms_delay_max.0,
        }
    }

    /// Counts as lost every notification not delivered by `planned + window + grace`
    /// (the window: [`Device::delivery_window`]), or every one still pending when `now`
    /// is `None`, at the end of the drain.
    pub(crate) fn expire_lost(
        &mut self,
        now: Option<Instant>,
        grace: Duration,
        stats: &mut FleetStats,
    ) {
        let window = self.delivery_window() + grace;
        let before = self.pending.len();
        self.pending.retain(|pending| {
            pending.woken_at.is_some() || now.is_some_and(|now| now < pending.planned + window)
        });
        stats.counters.notifications_lost += (before - self.pending.len()) as u64;
    }

    /// The run was stopped early at `now`: what is past its deadline is lost, what is
    /// still within it is counted unfinished (the stop, not the server, ended it).
    pub(crate) fn abandon_at_stop(
        &mut self,
        now: Instant,
        grace: Duration,
        stats: &mut FleetStats,
    ) {
        self.expire_lost(Some(now), grace, stats);
        let before = self.pending.len();
        self.pending.retain(|pending| pending.woken_at.is_some());
        stats.counters.notifications_unfinished_at_stop += (before - self.pending.len()) as u64;
    }

    /// Notifications planned for this device whose item has not reached it yet.
    pub(crate) fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// Notifications planned for this device and not yet woken.
    pub(crate) fn undelivered(&self) -> usize {
        self.pending
            .iter()
            .filter(|pending| pending.woken_at.is_none())
            .count()
    }

    /// The datagram of notification `seq` left the injector `at`: the wake-up from
    /// there is recorded now if the device was already woken, or when it is.
    pub(crate) fn notification_departed(&mut self, seq: u64, at: Instant, stats: &mut FleetStats) {
        let dead_pings = self.dead_pings;
        let Some(pending) = self.pending.iter_mut().find(|pending| pending.seq == seq) else {
            return;
        };
        pending.departed = Some(at);
        if let Some(woken_at) = pending.woken_at {
            stats.record_wakeup_from_departure(woken_at.saturating_duration_since(at));
            return;
        }
        // Told of the departure only after a Ping answered for its folder (the injector
        // was slow to say): that answer was its wake-up.
        let Some((answered, folders)) = &self.last_changes else {
            return;
        };
        if at <= *answered && folders.contains(&pending.folder) {
            wake(dead_pings, pending, *answered, stats);
            self.wake_unexplained = false;
        }
    }

    pub(super) fn item_arrived(&mut self, seq: u64, now: Instant, stats: &mut FleetStats) {
        if let Some(position) = self.pending.iter().position(|pending| pending.seq == seq) {
            let mut pending = self.pending.swap_remove(position);
            if pending.woken_at.is_none() {
                // Delivered by a Sync without a wake-up (a change before the Ping).
                wake(self.dead_pings, &mut pending, now, stats);
            }
            stats.record_mail_on_device(now - pending.planned);
            let world_s = (self.simulated_time(now) - pending.planned_sim_s).max(0.0);
            stats
                .mail_on_device_world
                .record(Duration::from_secs_f64(world_s));
            // Modelled beside the measured figure, never into it.
            let radio_s = self.radio_delay_for(pending.planned_sim_s);
            stats
                .mail_on_device_with_radio
                .record(Duration::from_secs_f64(world_s + radio_s));
        }
    }

    /// Records a wake-up for every pending notification of the `named` folders (their
    /// indices), each from its own planned instant (coalesced notifications all count);
    /// how many it woke.
    pub(super) fn woken(&mut self, named: &[usize], now: Instant, stats: &mut FleetStats) -> usize {
        let dead_pings = self.dead_pings;
        let mut woken = 0;
        for pending in self.pending.iter_mut().filter(|pending| {
            let sent = match pending.awaits_departure {
                true => pending.departed.is_some_and(|departed| departed <= now),
                false => pending.planned <= now,
            };
            pending.woken_at.is_none() && sent && named.contains(&pending.folder)
        }) {
            wake(dead_pings, pending, now, stats);
            woken += 1;
        }
        woken
    }
}

/// `pending` reached the device at `now`: delivered, on time or late, and its wake-up
/// recorded from its plan (and from its datagram's departure, if known yet).
fn wake(dead_pings: u64, pending: &mut Pending, now: Instant, stats: &mut FleetStats) {
    pending.woken_at = Some(now);
    stats.counters.notifications_delivered += 1;
    count_timeliness(dead_pings, pending, stats);
    stats.record_wakeup(now - pending.planned);
    if let Some(departed) = pending.departed {
        stats.record_wakeup_from_departure(now.saturating_duration_since(departed));
    }
}

/// Counts a delivered notification as on time, or late when a Ping of its device died
/// (`dead_pings` now) after it was planned.
fn count_timeliness(dead_pings: u64, pending: &Pending, stats: &mut FleetStats) {
    match pending.text_lost || dead_pings > pending.dead_pings_at_plan {
        true => stats.counters.notifications_late += 1,
        false => stats.counters.notifications_on_time += 1,
    }
}
