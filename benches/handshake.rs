//! What a TLS handshake costs each end, by key exchange and certificate: full and
//! resumed handshakes between pingfleet's own server and device sessions
//! (`TlsSession`, the same code the lean engine and the workers run), in memory on one
//! thread, so the figures are CPU alone: no sockets, no kernel, no other process. Each
//! end's share is the time spent in its own steps; "one core, both ends" is how many
//! handshakes a core makes playing both (on this machine the server and the devices
//! share two cores). A handshake here is the whole exchange up to the first request
//! and answer (so the server's session ticket is sent and kept).
//!
//! Run: `cargo bench --bench handshake` (about 30 seconds). `HANDSHAKES=2000` sets how
//! many of each are timed. Results are printed as a table and written to
//! `target/handshake-bench.json`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pingfleet::fleet::tickets::{TicketUse, TlsClients};
use pingfleet::tls::{client_config_trusting, CertificateKey, Identity, KeyExchange};
use pingfleet::tls_session::{Step, TlsSession, Unbuffered, Want};
use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;

/// Time spent in each end's steps.
#[derive(Default, Clone, Copy)]
struct Spent {
    server: Duration,
    client: Duration,
}

fn timed<R>(spent: &mut Duration, work: impl FnOnce() -> R) -> R {
    let started = Instant::now();
    let result = work();
    *spent += started.elapsed();
    result
}

fn pass<A: Unbuffered, B: Unbuffered>(from: &mut TlsSession<A>, to: &mut TlsSession<B>) {
    let bytes = from.outgoing().to_vec();
    from.sent(bytes.len());
    to.received(&bytes);
}

/// One handshake and one request and answer; panics if it does not complete.
fn handshake(
    server_config: &Arc<rustls::ServerConfig>,
    client_config: Arc<rustls::ClientConfig>,
    spent: &mut Spent,
) -> bool {
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut client = timed(&mut spent.client, || {
        TlsSession::start(
            || UnbufferedClientConnection::new(client_config, name),
            true,
        )
    })
    .unwrap();
    let mut server = timed(&mut spent.server, || {
        TlsSession::start(
            || UnbufferedServerConnection::new(server_config.clone()),
            true,
        )
    })
    .unwrap();
    while client.is_handshaking() || server.is_handshaking() {
        timed(&mut spent.client, || client.step(Want::Read)).unwrap();
        pass(&mut client, &mut server);
        timed(&mut spent.server, || server.step(Want::Read)).unwrap();
        pass(&mut server, &mut client);
    }
    let step = timed(&mut spent.client, || client.step(Want::Write(b"POST")));
    assert_eq!(step.unwrap(), Step::Written);
    pass(&mut client, &mut server);
    timed(&mut spent.server, || {
        assert_eq!(server.step(Want::Read).unwrap(), Step::Data);
        server.drain_plaintext(|_| {});
        server.step(Want::Write(b"200")).unwrap()
    });
    pass(&mut server, &mut client);
    timed(&mut spent.client, || client.step(Want::Read)).unwrap();
    client.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
}

struct Row {
    key_exchange: &'static str,
    certificate: &'static str,
    resumed: bool,
    server_per_s: f64,
    client_per_s: f64,
    both_per_s: f64,
}

fn measure(key_exchange: KeyExchange, key: CertificateKey, count: u32) -> [Row; 2] {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let server_config = Identity::self_signed_with(&cert, &[], key)
        .unwrap()
        .server_config()
        .unwrap();
    let base = client_config_trusting(&cert, key_exchange).unwrap();
    let mut clients = TlsClients::new(&base, count as usize + 1);
    let mut rows = Vec::new();
    for resumed in [false, true] {
        let mut spent = Spent::default();
        // A first round untimed: tickets for the resumed round, warm caches for both.
        for _ in 0..count.min(200) {
            handshake(
                &server_config,
                clients.for_connection(0, TicketUse::First),
                &mut Spent::default(),
            );
        }
        let tickets = if resumed {
            TicketUse::Returning
        } else {
            TicketUse::Never
        };
        for _ in 0..count {
            if resumed {
                // Each resumed handshake leaves a fresh ticket for the next.
                handshake(
                    &server_config,
                    clients.for_connection(0, TicketUse::First),
                    &mut Spent::default(),
                );
            }
            let was_resumed = handshake(
                &server_config,
                clients.for_connection(0, tickets),
                &mut spent,
            );
            assert_eq!(was_resumed, resumed);
        }
        let per_s = |spent: Duration| f64::from(count) / spent.as_secs_f64();
        rows.push(Row {
            key_exchange: key_exchange.name(),
            certificate: match key {
                CertificateKey::EcdsaP256 => "ecdsa-p256",
                CertificateKey::Ed25519 => "ed25519",
            },
            resumed,
            server_per_s: per_s(spent.server),
            client_per_s: per_s(spent.client),
            both_per_s: per_s(spent.server + spent.client),
        });
    }
    rows.try_into().ok().unwrap()
}

fn main() {
    let count: u32 = std::env::var("HANDSHAKES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(2_000);
    println!("TLS handshakes a second on one core, by end (in memory, {count} of each)");
    println!(
        "{:<8} {:<11} {:<8} {:>12} {:>12} {:>16}",
        "kx", "certificate", "kind", "server only", "device only", "one core, both"
    );
    let mut json = Vec::new();
    for key_exchange in [KeyExchange::Hybrid, KeyExchange::X25519] {
        for key in [CertificateKey::EcdsaP256, CertificateKey::Ed25519] {
            for row in measure(key_exchange, key, count) {
                let kind = if row.resumed { "resumed" } else { "full" };
                println!(
                    "{:<8} {:<11} {:<8} {:>12.0} {:>12.0} {:>16.0}",
                    row.key_exchange,
                    row.certificate,
                    kind,
                    row.server_per_s,
                    row.client_per_s,
                    row.both_per_s
                );
                json.push(serde_json::json!({
                    "key_exchange": row.key_exchange,
                    "certificate": row.certificate,
                    "kind": kind,
                    "server_per_s": row.server_per_s.round(),
                    "device_per_s": row.client_per_s.round(),
                    "one_core_both_ends_per_s": row.both_per_s.round(),
                }));
            }
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/handshake-bench.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!("written to {}", path.display());
}
