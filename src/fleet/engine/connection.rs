//! A device's connection in the engine: the device's actions applied (send, connect,
//! close, reconnect later), socket events served, responses handed to the device, and
//! what it has to send written out.

use std::time::Instant;

use mio::{Interest, Token};

use super::FleetEngine;
use crate::fleet::conn::{Conn, Cut};
use crate::fleet::device::{Action, State};
use crate::fleet::errors::DeviceError;
use crate::fleet::target::Target;
use crate::fleet::tickets::TicketUse;

impl FleetEngine {
    pub(super) fn apply(&mut self, token: usize, action: Action, now: Instant) {
        match action {
            Action::Send { bytes, deadline } => {
                self.timers.set(token, deadline);
                self.note_repark(token);
                if self.slots[token].device.state() == State::Parked {
                    self.note_bootstrapped(token, now);
                }
                let slot = &mut self.slots[token];
                slot.outbox = bytes;
                if slot.conn.is_none() {
                    self.connect(token, now);
                } else if let Err(cut) = self.flush_outbox(token) {
                    self.cut(token, cut, now);
                }
            }
            Action::Reconnect { at } => {
                self.close(token);
                self.timers.set(token, at);
            }
            Action::Idle {
                until,
                keep_connection,
            } => {
                self.note_bootstrapped(token, now);
                if !keep_connection {
                    self.close(token);
                }
                match until {
                    Some(at) => self.timers.set(token, at),
                    None => self.timers.cancel(token),
                }
            }
            Action::Redirect { location, at } => {
                self.close(token);
                match Target::parse(&location) {
                    Ok(target) => {
                        let index = match self
                            .config
                            .targets
                            .iter()
                            .position(|known| known.addr == target.addr)
                        {
                            Some(index) => index,
                            None => {
                                self.config.targets.push(target);
                                self.config.targets.len() - 1
                            }
                        };
                        self.slots[token].target = index;
                    }
                    Err(_) => DeviceError::BadRedirectLocation.count(&mut self.stats.counters),
                }
                self.timers.set(token, at);
            }
            Action::Stop => {
                self.close(token);
                self.timers.cancel(token);
                if !self.slots[token].stopped {
                    self.slots[token].stopped = true;
                    self.stopped += 1;
                }
            }
        }
    }

    /// The device has finished its bootstrap: it sent its first Ping, or (not pushing)
    /// rests for the first time.
    fn note_bootstrapped(&mut self, token: usize, now: Instant) {
        let devices = self.slots.len();
        let slot = &mut self.slots[token];
        if !slot.bootstrapped {
            slot.bootstrapped = true;
            self.bootstrapped += 1;
            if self.bootstrapped == devices {
                self.bootstrap_all = Some(now - self.started_at);
            }
        }
    }

    pub(super) fn connect(&mut self, token: usize, now: Instant) {
        let slot = &mut self.slots[token];
        let tickets = match (slot.device.tls_resumption(), slot.last_target) {
            (false, _) => TicketUse::Never,
            (true, Some(last)) if last == slot.target => TicketUse::Returning,
            (true, _) => TicketUse::First,
        };
        slot.last_target = Some(slot.target);
        let slot = &self.slots[token];
        let tls = self
            .config
            .tls
            .as_mut()
            .map(|tls| tls.for_connection(slot.target, tickets));
        let target = &self.config.targets[slot.target];
        let opened = Conn::open(
            target,
            tls.as_ref(),
            (&self.config.sources, token, slot.device.network()),
            self.stats.counters.connections_opened,
            now,
        );
        let mut conn = match opened {
            Ok(conn) => conn,
            Err(error) => return self.cut(token, Cut(Some(error)), now),
        };
        if let Err(err) = self.poll.registry().register(
            &mut conn.stream,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            return self.cut(token, DeviceError::Register(err.kind()).into(), now);
        }
        self.stats.counters.connections_opened += 1;
        self.stats.after_flush.connected(now);
        self.slots[token].conn = Some(conn);
    }

    /// The connection failed: count why, close it and let the device decide.
    pub(super) fn cut(&mut self, token: usize, cut: Cut, now: Instant) {
        self.close(token);
        let device = &mut self.slots[token].device;
        let action = device.on_disconnect(now, &mut self.stats, cut.0);
        self.apply(token, action, now);
    }

    pub(super) fn close(&mut self, token: usize) {
        if let Some(mut conn) = self.slots[token].conn.take() {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }

    /// A socket event for `token`: the one place an I/O outcome is applied.
    pub(super) fn ready(&mut self, token: usize, readable: bool, now: Instant) {
        if let Err(cut) = self.serve_event(token, readable, now) {
            self.cut(token, cut, now);
        }
    }

    /// Finishes a connect, hands complete responses to the device, writes its requests.
    pub(super) fn serve_event(
        &mut self,
        token: usize,
        readable: bool,
        now: Instant,
    ) -> Result<(), Cut> {
        let Some(conn) = self
            .slots
            .get_mut(token)
            .and_then(|slot| slot.conn.as_mut())
        else {
            return Ok(());
        };
        if conn.connecting() && !conn.finish_connect(now, &mut self.stats)? {
            return Ok(());
        }
        if readable {
            let serial = conn.serial;
            let open = conn.read_available(now, &mut self.stats)?;
            self.deliver_responses(token, now, (!open).then_some(serial))?;
            let slot = &self.slots[token];
            if slot.conn.as_ref().is_none_or(|conn| conn.serial != serial) {
                // The device's answer closed this connection (it may be on a new one).
                return Ok(());
            }
            if !open {
                return Err(DeviceError::ClosedByPeer.into());
            }
        }
        self.flush_outbox(token)
    }

    /// Hands every complete response read to the device; `closed`: the serial of the
    /// connection the server has closed, if it has.
    pub(super) fn deliver_responses(
        &mut self,
        token: usize,
        now: Instant,
        closed: Option<u64>,
    ) -> Result<(), Cut> {
        loop {
            let Some(conn) = self.slots[token].conn.as_mut() else {
                return Ok(());
            };
            // Only the connection that was read can have closed.
            let closed = closed == Some(conn.serial);
            let Some(response) = conn.next_response(closed)? else {
                return Ok(());
            };
            if self.config.sources.emulated() {
                conn.read_path(&mut self.stats);
            }
            if response.closes {
                self.close(token);
            }
            self.timers.cancel(token);
            let action = self.slots[token]
                .device
                .on_response(response, now, &mut self.stats);
            self.apply(token, action, now);
        }
    }

    /// Moves the device's outbox into its connection and writes.
    pub(super) fn flush_outbox(&mut self, token: usize) -> Result<(), Cut> {
        let slot = &mut self.slots[token];
        let Some(conn) = slot.conn.as_mut() else {
            return Ok(());
        };
        conn.flush(&mut slot.outbox, &mut self.stats)?;
        if slot.repark_queued && slot.outbox.is_empty() && conn.written_all() {
            // The device's Ping after a flush is on the wire: parked again.
            slot.repark_queued = false;
            if let Some(flushed_at) = self.flushed_at {
                self.stats.counters.flush_reparked += 1;
                self.stats.repark.record(flushed_at.elapsed());
            }
        }
        Ok(())
    }
}
