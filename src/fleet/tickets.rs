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

/// A worker's TLS client configurations: one for the devices that resume, sharing a
/// [`TicketStore`], and one for those that never do.
#[derive(Debug, Clone)]
pub struct TlsClients {
    resuming: Arc<ClientConfig>,
    full: Arc<ClientConfig>,
}

impl TlsClients {
    /// From one configuration (trust, key exchange), for `resuming_devices` devices that
    /// resume.
    pub fn new(base: &ClientConfig, resuming_devices: usize) -> Self {
        let mut resuming = base.clone();
        resuming.resumption = Resumption::store(Arc::new(TicketStore::new(resuming_devices)));
        let mut full = base.clone();
        full.resumption = Resumption::disabled();
        Self {
            resuming: Arc::new(resuming),
            full: Arc::new(full),
        }
    }

    /// The configuration for a device that resumes or not.
    pub fn for_device(&self, resumption: bool) -> &Arc<ClientConfig> {
        match resumption {
            true => &self.resuming,
            false => &self.full,
        }
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
        let mut server_config = (*crate::tls::Identity::self_signed(&cert)
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
