//! Server memory per parked Ping and server-side wake latency, per engine, plain and
//! TLS: starts `pingfleet serve` as a separate process, parks N = 1k, 5k and 15k Pings
//! from this process over loopback, reads the server's RSS at each plateau, and reports
//! bytes per parked Ping as the least-squares slope of RSS over N (fixed overhead drops
//! out). Then, with 15k parked, it sends 1,000 notifications/s for 5 s and reads the
//! server's wake histogram (datagram read to response written) from /metrics, beside
//! the same wake-ups timed on this side (datagram sent to Status 2 read), which puts
//! both engines on the same clock.
//!
//! Run: `cargo bench --bench park` (about 3 minutes). `PARK_COUNTS=1000,2000` and
//! `PARK_ENGINES=lean` narrow a run. Results are printed as a table and written to
//! `target/park-bench.json`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pingfleet::eas::commands::folder_sync::FolderSyncRequest;
use pingfleet::eas::commands::ping::{PingFolder, PingRequest, PingResponse};
use pingfleet::eas::commands::sync::{SyncCollectionRequest, SyncRequest, SyncResponse};
use pingfleet::eas::WbxmlBody;
use pingfleet::measure::procfs;
use pingfleet::server::launch::ServeArgs;
use pingfleet::server::process::ServerHandle;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const HEARTBEAT_S: u32 = 3000;
const CONNECT_CONCURRENCY: usize = 256;
const NOTIFY_RATE: u64 = 1000;
const NOTIFY_SECONDS: u64 = 5;

struct ServerProcess {
    handle: ServerHandle,
    http: SocketAddr,
    notify: SocketAddr,
    cert: Option<PathBuf>,
}

impl ServerProcess {
    fn start(engine: &str, tls: bool, users: usize) -> Self {
        let mut argv = vec!["serve".to_owned(), format!("--engine={engine}")];
        argv.extend(["--listen=127.0.0.1:0", "--notify=127.0.0.1:0"].map(String::from));
        argv.extend([
            "--metrics=127.0.0.1:0".to_owned(),
            format!("--users={users}"),
        ]);
        if tls {
            argv.push("--tls".into());
        }
        let args: ServeArgs = pingfleet::argv::parse(&argv).expect("serve flags");
        let exe = Path::new(env!("CARGO_BIN_EXE_pingfleet"));
        let handle = ServerHandle::spawn(exe, &args, Stdio::inherit(), Duration::from_secs(30))
            .expect("start server");
        Self {
            http: handle.http(),
            notify: handle.notify(),
            cert: handle.ready.tls_cert.clone(),
            handle,
        }
    }

    fn rss(&self) -> u64 {
        procfs::rss_bytes(Some(self.handle.pid())).expect("server RSS")
    }

    /// One metric from /metrics (a blocking read; the bench can spare the thread).
    async fn metric(&self, name: &str) -> f64 {
        self.handle.metric(name).expect("the server's /metrics")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.handle.terminate(Duration::from_secs(5));
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One simulated device: bootstrap, then Ping; on Status 2 sync the Inbox and Ping again.
/// Send instants of notifications not yet seen by their device, by device index, and
/// the device-side wake latencies (notification sent to Status 2 read).
#[derive(Default)]
struct WakeClock {
    sent: Mutex<HashMap<usize, Instant>>,
    latency_us: Mutex<Option<hdrhistogram::Histogram<u64>>>,
}

impl WakeClock {
    fn sent(&self, index: usize, at: Instant) {
        self.sent.lock().unwrap().entry(index).or_insert(at);
    }

    fn woken(&self, index: usize) {
        if let Some(sent) = self.sent.lock().unwrap().remove(&index) {
            let micros = sent.elapsed().as_micros() as u64;
            let mut histogram = self.latency_us.lock().unwrap();
            histogram
                .get_or_insert_with(|| hdrhistogram::Histogram::new(3).unwrap())
                .saturating_record(micros.max(1));
        }
    }
}

async fn device(
    index: usize,
    server: SocketAddr,
    tls: Option<tokio_rustls::TlsConnector>,
    permits: Arc<Semaphore>,
    parked: Arc<AtomicU64>,
    clock: Arc<WakeClock>,
) {
    let permit = permits.acquire_owned().await.unwrap();
    let tcp = TcpStream::connect(server).await.expect("connect");
    tcp.set_nodelay(true).unwrap();
    let mut io: Box<dyn Io> = match tls {
        None => Box::new(tcp),
        Some(connector) => {
            let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
            Box::new(connector.connect(name, tcp).await.expect("TLS handshake"))
        }
    };
    let user = format!("user{index}");
    let mut buffer = Vec::new();
    let folder_sync = FolderSyncRequest {
        sync_key: "0".into(),
    }
    .encode();
    exchange(&mut io, &mut buffer, &user, "FolderSync", &folder_sync).await;
    let mut key = sync(&mut io, &mut buffer, &user, "0").await;
    let ping = PingRequest {
        heartbeat_interval_s: Some(HEARTBEAT_S),
        folders: vec![PingFolder::new("5", "Email")],
    }
    .encode();
    drop(permit);
    loop {
        send(&mut io, &user, "Ping", &ping).await;
        parked.fetch_add(1, Ordering::Relaxed);
        let body = read_response(&mut io, &mut buffer).await;
        parked.fetch_sub(1, Ordering::Relaxed);
        match PingResponse::decode(&body) {
            Ok(PingResponse::Changes { .. }) => {
                clock.woken(index);
                key = sync(&mut io, &mut buffer, &user, &key).await;
            }
            Ok(_) => {}
            Err(err) => panic!("bad Ping response: {err}"),
        }
    }
}

async fn sync(io: &mut Box<dyn Io>, buffer: &mut Vec<u8>, user: &str, key: &str) -> String {
    let request = SyncRequest {
        collections: vec![SyncCollectionRequest {
            sync_key: key.into(),
            collection_id: "5".into(),
            window_size: Some(100),
            ..SyncCollectionRequest::default()
        }],
    };
    let body = exchange(io, buffer, user, "Sync", &request.encode()).await;
    let response = SyncResponse::decode(&body).expect("Sync response");
    response.collections[0].sync_key.clone()
}

async fn exchange(
    io: &mut Box<dyn Io>,
    buffer: &mut Vec<u8>,
    user: &str,
    command: &str,
    body: &[u8],
) -> Vec<u8> {
    send(io, user, command, body).await;
    read_response(io, buffer).await
}

async fn send(io: &mut Box<dyn Io>, user: &str, command: &str, body: &[u8]) {
    let head = format!(
        "POST /Microsoft-Server-ActiveSync?Cmd={command}&User={user}&DeviceId=dev{user}&DeviceType=Bench HTTP/1.1\r\n\
         Host: 127.0.0.1\r\nAuthorization: {}\r\nMS-ASProtocolVersion: 14.1\r\n\
         Content-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: {}\r\n\r\n",
        pingfleet::eas::headers::BasicCredentials::new(user, "pingfleet").to_header(),
        body.len()
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    io.write_all(&bytes).await.expect("write");
    io.flush().await.expect("flush");
}

async fn read_response(io: &mut Box<dyn Io>, buffer: &mut Vec<u8>) -> Vec<u8> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = response.parse(buffer).expect("HTTP head") {
            assert_eq!(response.code, Some(200), "HTTP status");
            let length: usize = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map_or(0, |h| {
                    std::str::from_utf8(h.value).unwrap().parse().unwrap()
                });
            if buffer.len() >= head_len + length {
                let body = buffer[head_len..head_len + length].to_vec();
                buffer.drain(..head_len + length);
                buffer.shrink_to_fit();
                return body;
            }
        }
        let mut chunk = [0u8; 4096];
        let read = io.read(&mut chunk).await.expect("read");
        assert!(read > 0, "server closed the connection");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// RSS once the server has `target` parked and its RSS has settled.
async fn plateau(server: &ServerProcess, parked: &AtomicU64, target: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(300);
    while (server.metric("pingfleet_parked_pings").await as u64) < target
        || parked.load(Ordering::Relaxed) < target
    {
        assert!(Instant::now() < deadline, "could not park {target}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut previous = server.rss();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = server.rss();
        if now.abs_diff(previous) < 64 * 1024 {
            return now;
        }
        previous = now;
    }
}

#[derive(serde::Serialize)]
struct Row {
    engine: String,
    tls: bool,
    rss_points: Vec<(u64, u64)>,
    bytes_per_parked: f64,
    park_rate_per_s: f64,
    wake_p50_us: f64,
    wake_p99_us: f64,
    wake_p999_us: f64,
    device_wake_p50_us: u64,
    device_wake_p99_us: u64,
    device_wake_p999_us: u64,
    wakeups: f64,
    notifications_sent: u64,
}

async fn measure(engine: &str, tls: bool, counts: &[u64]) -> Row {
    let total = *counts.last().unwrap();
    let server = ServerProcess::start(engine, tls, total as usize);
    let connector = server.cert.as_ref().map(|cert| {
        let config = pingfleet::tls::client_config_trusting(
            cert.as_ref(),
            pingfleet::tls::KeyExchange::Hybrid,
        )
        .unwrap();
        tokio_rustls::TlsConnector::from(config)
    });
    let permits = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let parked = Arc::new(AtomicU64::new(0));
    let clock = Arc::new(WakeClock::default());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut points = vec![(0, server.rss())];
    let mut started = 0u64;
    let park_start = Instant::now();
    let mut devices = Vec::new();
    for &count in counts {
        while started < count {
            devices.push(tokio::spawn(device(
                started as usize,
                server.http,
                connector.clone(),
                permits.clone(),
                parked.clone(),
                clock.clone(),
            )));
            started += 1;
        }
        points.push((count, plateau(&server, &parked, count).await));
    }
    let park_rate = total as f64 / park_start.elapsed().as_secs_f64();
    let fit: Vec<(f64, f64)> = points[1..]
        .iter()
        .map(|(n, rss)| (*n as f64, *rss as f64))
        .collect();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let interval = Duration::from_micros(1_000_000 / NOTIFY_RATE);
    let mut next = Instant::now();
    let sent = NOTIFY_RATE * NOTIFY_SECONDS;
    for seq in 0..sent {
        let user = (seq * 7919) % total;
        let datagram = format!("user=user{user} folder=5 seq={seq}");
        clock.sent(user as usize, Instant::now());
        socket.send_to(datagram.as_bytes(), server.notify).unwrap();
        next += interval;
        tokio::time::sleep_until(next.into()).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let device_histogram = clock
        .latency_us
        .lock()
        .unwrap()
        .take()
        .expect("wakes were seen");
    let quantile = |q: &str| format!("pingfleet_wake_latency_microseconds{{quantile=\"{q}\"}}");
    let row = Row {
        engine: engine.into(),
        tls,
        bytes_per_parked: pingfleet::measure::least_squares_slope(&fit),
        rss_points: points,
        park_rate_per_s: park_rate,
        wake_p50_us: server.metric(&quantile("0.5")).await,
        wake_p99_us: server.metric(&quantile("0.99")).await,
        wake_p999_us: server.metric(&quantile("0.999")).await,
        device_wake_p50_us: device_histogram.value_at_quantile(0.5),
        device_wake_p99_us: device_histogram.value_at_quantile(0.99),
        device_wake_p999_us: device_histogram.value_at_quantile(0.999),
        wakeups: server.metric("pingfleet_wakeups_total").await,
        notifications_sent: sent,
    };
    for device in devices {
        device.abort();
    }
    row
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let counts: Vec<u64> = std::env::var("PARK_COUNTS")
        .unwrap_or_else(|_| "1000,5000,15000".into())
        .split(',')
        .map(|count| count.trim().parse().expect("PARK_COUNTS: numbers"))
        .collect();
    let engines = std::env::var("PARK_ENGINES").unwrap_or_else(|_| "lean,hyper".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for engine in engines.split(',') {
        for tls in [false, true] {
            let row = runtime.block_on(measure(engine, tls, &counts));
            println!(
                "{:5} {:5} bytes/parked {:>6.0}  park {:>5.0}/s  server wake p50/p99/p99.9 {}/{}/{} us  device wake {}/{}/{} us  wakeups {}/{}",
                row.engine,
                if row.tls { "tls" } else { "plain" },
                row.bytes_per_parked,
                row.park_rate_per_s,
                row.wake_p50_us,
                row.wake_p99_us,
                row.wake_p999_us,
                row.device_wake_p50_us,
                row.device_wake_p99_us,
                row.device_wake_p999_us,
                row.wakeups,
                row.notifications_sent,
            );
            rows.push(row);
        }
    }
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../park-bench.json");
    std::fs::write(&path, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    println!("written to {}", path.display());
}
