//! The TLS session tickets a worker's devices keep, so that a device reconnecting
//! resumes its TLS session (one round trip, no certificate, no signature) instead of a
//! full handshake, as phones do.
//!
//! One store serves every resuming device of a worker and holds at most one ticket per
//! such device: a reconnecting device takes a ticket, and its handshake leaves a fresh
//! one. That is as many tickets, and as much memory, as phones each keeping their own;
//! which device presents which ticket does not matter to a server whose tickets are
//! stateless (the server seals the session in the ticket). rustls' own in-memory store
//! keeps 8 tickets per server name, which would let only 8 of thousands of devices
//! resume after a flush.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::{ClientConfig, NamedGroup};
use rustls_pki_types::ServerName;

/// Most server names a store keeps tickets for: a fleet talks to one server, or to the
/// few a redirect names; a hostile server cannot make it grow by naming more.
const MAX_SERVER_NAMES: usize = 16;

/// Most targets whose tickets a worker keeps apart: as many as a run may start
/// partitions (`scenario::resolve::MAX_PROCESSES`; a million devices spread every
/// worker over 56), a bound a hostile server's redirects cannot push further; devices
/// sent to further targets make full handshakes there.
const MAX_TICKET_TARGETS: usize = 256;

/// A worker's TLS client configurations. A device that resumes uses, per target (a
/// ticket is sealed by the server process that issued it, and partitions of one host
/// differ only by port, which a store does not see), one of two configurations over
/// that target's [`TicketStore`]: on its first connection there one that keeps the
/// ticket it is given but takes none (a phone new to a server has none), and after that
/// one that takes a ticket too. A device that never resumes uses a third, without
/// tickets.
#[derive(Debug)]
pub struct TlsClients {
    base: Arc<ClientConfig>,
    /// Tickets each store keeps at most: the worker's resuming devices.
    capacity: usize,
    /// By target index, made on first use.
    by_target: Vec<Option<TargetConfigs>>,
    full: Arc<ClientConfig>,
}

/// The two configurations over one target's tickets.
#[derive(Debug, Clone)]
struct TargetConfigs {
    first: Arc<ClientConfig>,
    returning: Arc<ClientConfig>,
}

/// Which connection of a device this is, as far as its ticket goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketUse {
    /// The device does not resume.
    Never,
    /// Its first connection to this target: it has no ticket yet.
    First,
    /// It has connected to this target before and holds a ticket from it.
    Returning,
}

impl TlsClients {
    /// From one configuration (trust, key exchange), for `resuming_devices` devices that
    /// resume.
    pub fn new(base: &ClientConfig, resuming_devices: usize) -> Self {
        let mut full = base.clone();
        full.resumption = Resumption::disabled();
        Self {
            base: Arc::new(base.clone()),
            capacity: resuming_devices,
            by_target: Vec::new(),
            full: Arc::new(full),
        }
    }

    /// The configuration for a connection to the worker's target number `target`.
    pub fn for_connection(&mut self, target: usize, tickets: TicketUse) -> Arc<ClientConfig> {
        if tickets == TicketUse::Never || target >= MAX_TICKET_TARGETS {
            return self.full.clone();
        }
        if self.by_target.len() <= target {
            self.by_target.resize(target + 1, None);
        }
        let (base, capacity) = (&self.base, self.capacity);
        let configs = self.by_target[target].get_or_insert_with(|| {
            let store = Arc::new(TicketStore::new(capacity));
            let with = |resumption: Resumption| {
                let mut config = (**base).clone();
                config.resumption = resumption;
                Arc::new(config)
            };
            TargetConfigs {
                first: with(Resumption::store(Arc::new(KeepOnly(store.clone())))),
                returning: with(Resumption::store(store)),
            }
        });
        match tickets {
            TicketUse::First => configs.first.clone(),
            _ => configs.returning.clone(),
        }
    }
}

/// A store seen by a device new to a server: what it is given is kept, nothing is taken.
#[derive(Debug)]
struct KeepOnly(Arc<TicketStore>);

impl ClientSessionStore for KeepOnly {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.0.set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.0.kx_hint(server_name)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.0.set_tls12_session(server_name, value);
    }

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        None
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {}

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.0.insert_tls13_ticket(server_name, value);
    }

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        None
    }
}

/// The tickets of a worker's resuming devices (see the module header).
#[derive(Debug)]
pub struct TicketStore {
    /// At most this many TLS 1.3 tickets per server name (the resuming devices).
    capacity: usize,
    /// By server name (a few: a list is quicker than a map).
    by_server: Mutex<Vec<(ServerName<'static>, ServerTickets)>>,
}

/// What is kept for one server name.
#[derive(Debug, Default)]
struct ServerTickets {
    kx_hint: Option<NamedGroup>,
    /// Oldest first.
    tls13: VecDeque<Tls13ClientSessionValue>,
    tls12: Option<Tls12ClientSessionValue>,
}

impl TicketStore {
    /// A store for `devices` resuming devices.
    pub fn new(devices: usize) -> Self {
        Self {
            capacity: devices.max(1),
            by_server: Mutex::new(Vec::new()),
        }
    }

    /// Runs `change` on the entry for `name`, made if there is room for another name.
    fn with_entry(&self, name: ServerName<'static>, change: impl FnOnce(&mut ServerTickets)) {
        let mut by_server = self.by_server.lock().unwrap_or_else(|e| e.into_inner());
        match by_server.iter().position(|(known, _)| *known == name) {
            Some(index) => change(&mut by_server[index].1),
            None if by_server.len() < MAX_SERVER_NAMES => {
                let mut entry = ServerTickets::default();
                change(&mut entry);
                by_server.push((name, entry));
            }
            None => {}
        }
    }

    /// Runs `read` on the entry for `name`, if there is one.
    fn read<T>(
        &self,
        name: &ServerName<'_>,
        read: impl FnOnce(&mut ServerTickets) -> Option<T>,
    ) -> Option<T> {
        let mut by_server = self.by_server.lock().unwrap_or_else(|e| e.into_inner());
        let (_, entry) = by_server.iter_mut().find(|(known, _)| known == name)?;
        read(entry)
    }

    /// TLS 1.3 tickets held, over every server name.
    #[cfg(test)]
    fn held(&self) -> usize {
        let by_server = self.by_server.lock().unwrap();
        by_server.iter().map(|(_, entry)| entry.tls13.len()).sum()
    }
}

impl ClientSessionStore for TicketStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.with_entry(server_name, |entry| entry.kx_hint = Some(group));
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.read(server_name, |entry| entry.kx_hint)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.with_entry(server_name, |entry| entry.tls12 = Some(value));
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.read(server_name, |entry| entry.tls12.clone())
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.read(server_name, |entry| entry.tls12.take());
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        let capacity = self.capacity;
        self.with_entry(server_name, |entry| {
            if entry.tls13.len() >= capacity {
                entry.tls13.pop_front();
            }
            entry.tls13.push_back(value);
        });
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        // The newest: the likeliest to be within its lifetime.
        self.read(server_name, |entry| entry.tls13.pop_back())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one handshake in memory (buffered connections) until both sides are done
    /// and the server's tickets have reached the client.
    fn pump(
        client_config: Arc<rustls::ClientConfig>,
        server_config: Arc<rustls::ServerConfig>,
    ) -> rustls::HandshakeKind {
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = rustls::ClientConnection::new(client_config, name).unwrap();
        let mut server = rustls::ServerConnection::new(server_config).unwrap();
        for _ in 0..10 {
            let mut bytes = Vec::new();
            client.write_tls(&mut bytes).unwrap();
            server.read_tls(&mut &bytes[..]).unwrap();
            server.process_new_packets().unwrap();
            let mut bytes = Vec::new();
            server.write_tls(&mut bytes).unwrap();
            client.read_tls(&mut &bytes[..]).unwrap();
            client.process_new_packets().unwrap();
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
        client.handshake_kind().unwrap()
    }

    /// A client resuming through `store`, and a server issuing `tickets` stateless
    /// tickets a handshake, trusting each other.
    fn pair(
        store: &Arc<TicketStore>,
        tickets: usize,
    ) -> (Arc<rustls::ClientConfig>, Arc<rustls::ServerConfig>) {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let mut server_config = (*crate::tls::Identity::self_signed(&cert, &[])
            .unwrap()
            .server_config()
            .unwrap())
        .clone();
        server_config.send_tls13_tickets = tickets;
        let mut client_config =
            (*crate::tls::client_config_trusting(&cert, crate::tls::KeyExchange::X25519).unwrap())
                .clone();
        client_config.resumption = rustls::client::Resumption::store(store.clone());
        (Arc::new(client_config), Arc::new(server_config))
    }

    #[test]
    fn a_second_connection_resumes_with_the_ticket_of_the_first() {
        let store = Arc::new(TicketStore::new(4));
        let (client, server) = pair(&store, 1);
        assert_eq!(
            pump(client.clone(), server.clone()),
            rustls::HandshakeKind::Full
        );
        assert_eq!(store.held(), 1);
        assert_eq!(pump(client, server), rustls::HandshakeKind::Resumed);
        assert_eq!(store.held(), 1, "the ticket used was taken, a new one left");
    }

    #[test]
    fn a_store_holds_at_most_one_ticket_per_device() {
        let store = Arc::new(TicketStore::new(2));
        let (client, server) = pair(&store, 5);
        assert_eq!(pump(client, server), rustls::HandshakeKind::Full);
        assert_eq!(store.held(), 2, "5 tickets came, 2 devices keep 2");
    }

    #[test]
    fn each_target_has_its_own_tickets_and_devices_that_do_not_resume_none() {
        let base = crate::tls::client_config_insecure(crate::tls::KeyExchange::X25519).unwrap();
        let mut clients = TlsClients::new(&base, 10);
        let returning = clients.for_connection(0, TicketUse::Returning);
        assert!(Arc::ptr_eq(
            &returning,
            &clients.for_connection(0, TicketUse::Returning)
        ));
        assert!(!Arc::ptr_eq(
            &returning,
            &clients.for_connection(0, TicketUse::First)
        ));
        assert!(!Arc::ptr_eq(
            &returning,
            &clients.for_connection(1, TicketUse::Returning)
        ));
        let full = clients.for_connection(0, TicketUse::Never);
        assert!(!Arc::ptr_eq(&full, &returning));
        assert!(Arc::ptr_eq(
            &full,
            &clients.for_connection(3, TicketUse::Never)
        ));
        let far = clients.for_connection(MAX_TICKET_TARGETS, TicketUse::Returning);
        assert!(Arc::ptr_eq(&full, &far));
    }

    #[test]
    fn a_device_new_to_a_server_leaves_its_ticket_and_takes_none() {
        let store = Arc::new(TicketStore::new(4));
        let (returning, server) = pair(&store, 1);
        let mut first = (*returning).clone();
        first.resumption = Resumption::store(Arc::new(KeepOnly(store.clone())));
        let first = Arc::new(first);
        assert_eq!(
            pump(first.clone(), server.clone()),
            rustls::HandshakeKind::Full
        );
        assert_eq!(pump(first, server.clone()), rustls::HandshakeKind::Full);
        assert_eq!(store.held(), 2, "two new devices, two tickets kept");
        assert_eq!(pump(returning, server), rustls::HandshakeKind::Resumed);
        assert_eq!(store.held(), 2);
    }

    #[test]
    fn a_store_keeps_a_bounded_number_of_server_names() {
        let store = TicketStore::new(8);
        for n in 0..(MAX_SERVER_NAMES + 5) {
            let name = ServerName::try_from(format!("host{n}.example")).unwrap();
            store.set_kx_hint(name, NamedGroup::X25519);
        }
        assert_eq!(store.by_server.lock().unwrap().len(), MAX_SERVER_NAMES);
        let late = ServerName::try_from("host20.example").unwrap();
        assert_eq!(store.kx_hint(&late), None);
    }
}
