//! The server's park, wake and heartbeat paths in-process: `server::run` on listeners
//! the test binds (port 0), a tokio runtime with paused time, so an hour-long heartbeat
//! expires in milliseconds of real time. Both engines. The process-level tests in
//! `server.rs` keep the CLI and the real clock covered.

use std::net::SocketAddr;
use std::time::Duration;

use pingfleet::eas::commands::folder_sync::{FolderSyncRequest, FolderSyncResponse};
use pingfleet::eas::commands::ping::{PingFolder, PingRequest, PingResponse};
use pingfleet::eas::headers::{BasicCredentials, MS_AS_PROTOCOL_VERSION};
use pingfleet::eas::request::{Command, EasQuery};
use pingfleet::eas::WbxmlBody;
use pingfleet::fleet::http::{HttpRequest, HttpResponse, ResponseReader};
use pingfleet::server::run::{run, Sockets};
use pingfleet::server::state::{Engine, PartitionConfig, ServerState};
use pingfleet::server::users::Users;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const HOUR: Duration = Duration::from_secs(3600);

/// A partition running in this test's runtime.
struct InProcess {
    http: SocketAddr,
    notify: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl InProcess {
    async fn start(engine: Engine) -> Self {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let sockets = Sockets::bind(&[loopback], loopback, None).unwrap();
        let http = sockets.http[0].local_addr().unwrap();
        let notify = sockets.notify.local_addr().unwrap();
        let mut config = PartitionConfig::new(Users::Synthetic {
            prefix: "user".into(),
            count: 10,
            password: "pw".into(),
        });
        config.engine = engine;
        config.min_heartbeat_s = 1;
        config.limits.idle_timeout = 2 * HOUR;
        let shutdown = CancellationToken::new();
        let state = ServerState::new(config, shutdown.clone());
        let task = tokio::spawn(run(state, sockets, None));
        Self {
            http,
            notify,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

/// One device's connection.
struct Device {
    stream: TcpStream,
    reader: ResponseReader,
    user: String,
}

impl Device {
    async fn connect(server: &InProcess, user: &str) -> Self {
        Self {
            stream: TcpStream::connect(server.http).await.unwrap(),
            reader: ResponseReader::default(),
            user: user.to_owned(),
        }
    }

    async fn send(&mut self, command: Command, body: &[u8]) {
        let target = EasQuery::plain(command, self.user.as_str(), "dev1", "SmartPhone")
            .to_target()
            .unwrap();
        let authorization = BasicCredentials::new(&self.user, "pw").to_header();
        let bytes = HttpRequest {
            method: "POST",
            target: &target,
            host: "127.0.0.1",
            authorization: &authorization,
            user_agent: "test",
            headers: &[(MS_AS_PROTOCOL_VERSION, "14.1")],
            body,
            close: false,
        }
        .encode();
        self.stream.write_all(&bytes).await.unwrap();
    }

    async fn response(&mut self) -> HttpResponse {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(response) = self.reader.next_response(false).unwrap() {
                return response;
            }
            let read = self.stream.read(&mut chunk).await.unwrap();
            assert!(
                read > 0,
                "the server closed the connection of {}",
                self.user
            );
            self.reader.feed(&chunk[..read]);
        }
    }

    async fn folder_sync(&mut self) {
        let body = FolderSyncRequest {
            sync_key: "0".into(),
        }
        .encode();
        self.send(Command::FolderSync, &body).await;
        let response = self.response().await;
        assert_eq!(response.status, 200);
        assert_eq!(
            FolderSyncResponse::decode(&response.body).unwrap().status,
            1
        );
    }

    async fn ping(&mut self, heartbeat: Duration) {
        let body = PingRequest {
            heartbeat_interval_s: Some(heartbeat.as_secs() as u32),
            folders: vec![PingFolder::new("5", "Email")],
        }
        .encode();
        self.send(Command::Ping, &body).await;
    }

    async fn ping_response(&mut self) -> PingResponse {
        let response = self.response().await;
        assert_eq!(response.status, 200);
        PingResponse::decode(&response.body).unwrap()
    }
}

const ENGINES: [Engine; 2] = [Engine::Lean, Engine::Hyper];

#[tokio::test(start_paused = true)]
async fn an_hour_long_heartbeat_expires_in_paused_time() {
    for engine in ENGINES {
        let server = InProcess::start(engine).await;
        let mut device = Device::connect(&server, "user1").await;
        device.folder_sync().await;
        let heartbeat = Duration::from_secs(3540);
        let started = tokio::time::Instant::now();
        device.ping(heartbeat).await;
        assert_eq!(
            device.ping_response().await,
            PingResponse::Expired,
            "{engine:?}"
        );
        let waited = started.elapsed();
        assert!(
            waited >= heartbeat && waited < heartbeat + Duration::from_secs(2),
            "{engine:?}: answered after {waited:?}"
        );
        server.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_notification_wakes_the_parked_ping_before_its_heartbeat() {
    for engine in ENGINES {
        let server = InProcess::start(engine).await;
        let mut device = Device::connect(&server, "user2").await;
        device.folder_sync().await;
        let started = tokio::time::Instant::now();
        device.ping(Duration::from_secs(1800)).await;
        // Ten virtual minutes parked, then the mailbox back-end's datagram.
        tokio::time::sleep(Duration::from_secs(600)).await;
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        udp.send_to(b"user=user2 folder=5", server.notify)
            .await
            .unwrap();
        assert_eq!(
            device.ping_response().await,
            PingResponse::Changes {
                folders: vec!["5".into()]
            },
            "{engine:?}"
        );
        let waited = started.elapsed();
        assert!(
            (Duration::from_secs(600)..Duration::from_secs(1800)).contains(&waited),
            "{engine:?}: woken after {waited:?}"
        );
        server.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_change_while_not_parked_answers_the_next_ping_at_once() {
    for engine in ENGINES {
        let server = InProcess::start(engine).await;
        let mut device = Device::connect(&server, &format!("user{}", 3 + engine as usize)).await;
        device.folder_sync().await;
        device.ping(Duration::from_secs(60)).await;
        assert_eq!(device.ping_response().await, PingResponse::Expired);
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        udp.send_to(
            format!("user={} folder=5", device.user).as_bytes(),
            server.notify,
        )
        .await
        .unwrap();
        // Let the server read the datagram before the next Ping arrives.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = tokio::time::Instant::now();
        device.ping(Duration::from_secs(60)).await;
        assert_eq!(
            device.ping_response().await,
            PingResponse::Changes {
                folders: vec!["5".into()]
            },
            "{engine:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1), "{engine:?}");
        server.stop().await;
    }
}

/// The lean engine keeps an idle keep-alive connection for the idle timeout. (hyper's
/// own header-read timer starts as soon as it waits for the next head, so the hyper
/// engine closes an idle connection after the head timeout; see the README.)
#[tokio::test(start_paused = true)]
async fn an_idle_connection_lasts_the_idle_timeout_not_the_head_timeout() {
    for engine in [Engine::Lean] {
        let server = InProcess::start(engine).await;
        let mut device = Device::connect(&server, "user5").await;
        device.folder_sync().await;
        // Well past the head timeout (10 s), well within the idle timeout (2 h).
        tokio::time::sleep(Duration::from_secs(600)).await;
        device.folder_sync().await;
        server.stop().await;
    }
}
