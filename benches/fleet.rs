//! Device-worker cost: user-space bytes per parked device (the least-squares slope of
//! the worker's RSS over N = 1k, 5k and 15k, plain and TLS), how fast one worker
//! bootstraps and parks its devices, and its own event-loop lag with 15k parked and
//! 1,000 notifications/s. The server (`pingfleet serve`, lean) runs in its own process.
//!
//! Run: `cargo bench --bench fleet` (about 2 minutes). `FLEET_COUNTS=1000,2000` narrows
//! a run. Results are printed and written to `target/fleet-bench.json`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use pingfleet::fleet::args::DevicesArgs;
use pingfleet::fleet::report::WorkerReport;
use pingfleet::server::launch::ServeArgs;
use pingfleet::server::process::ServerHandle;
use pingfleet::tls::KeyExchange;

struct Server {
    handle: ServerHandle,
}

impl Server {
    fn start(tls: bool, users: usize) -> Self {
        let mut args = ServeArgs::defaults();
        args.listen = vec!["127.0.0.1:0".parse().unwrap()];
        args.notify = "127.0.0.1:0".parse().unwrap();
        args.users = users as u64;
        args.server.min_heartbeat = pingfleet::units::Span::from_secs(1);
        args.server.tls = tls;
        let exe = Path::new(env!("CARGO_BIN_EXE_pingfleet"));
        let handle = ServerHandle::spawn(exe, &args, Stdio::inherit(), Duration::from_secs(30))
            .expect("start server");
        Self { handle }
    }

    fn worker(
        &self,
        devices: usize,
        duration: Duration,
        rate: f64,
        heartbeat: u32,
        key_exchange: KeyExchange,
    ) -> WorkerReport {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("worker.json");
        let ready = &self.handle.ready;
        let scheme = if ready.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        let mut args = DevicesArgs::for_targets(vec![format!("{scheme}://{}", ready.http[0])]);
        args.notify = vec![ready.notify];
        args.fleet.count = devices;
        args.schedule.rate = rate;
        args.fleet.heartbeat = pingfleet::units::Span(Duration::from_secs(u64::from(heartbeat)));
        args.fleet.provision = false;
        args.stages.hold = pingfleet::units::Span(duration);
        args.fleet.connect_rate = 20_000.0;
        args.tls_key_exchange = key_exchange;
        args.ca = ready.tls_cert.clone();
        args.output = Some(output.clone());
        let status = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
            .args(args.to_argv().expect("worker flags"))
            .stdout(Stdio::null())
            .status()
            .expect("run worker");
        assert!(status.success(), "worker failed");
        serde_json::from_slice(&std::fs::read(&output).unwrap()).expect("worker JSON")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.terminate(Duration::from_secs(5));
    }
}

#[derive(serde::Serialize)]
struct Row {
    tls: bool,
    key_exchange: &'static str,
    rss_points: Vec<(usize, u64)>,
    bytes_per_parked_device: f64,
    bootstrap_per_s_at_max: f64,
    loop_lag_p50_us: u64,
    loop_lag_p99_us: u64,
    wakeup_p50_us: u64,
    wakeup_p99_us: u64,
    notifications_sent: u64,
    notifications_delivered: u64,
    notifications_lost: u64,
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let counts: Vec<usize> = std::env::var("FLEET_COUNTS")
        .unwrap_or_else(|_| "1000,5000,15000".into())
        .split(',')
        .map(|count| count.trim().parse().expect("FLEET_COUNTS: numbers"))
        .collect();
    let max = *counts.iter().max().unwrap();
    let mut rows = Vec::new();
    for (tls, key_exchange) in [
        (false, KeyExchange::Hybrid),
        (true, KeyExchange::Hybrid),
        (true, KeyExchange::X25519),
    ] {
        let server = Server::start(tls, max);
        let mut points = Vec::new();
        let mut bootstrap_rate = 0.0;
        for &count in &counts {
            let report = server.worker(count, Duration::from_secs(2), 0.0, 3000, key_exchange);
            assert_eq!(
                report.devices_bootstrapped, count,
                "not every device bootstrapped"
            );
            points.push((count, report.rss_bytes.expect("worker RSS")));
            bootstrap_rate = count as f64 / report.bootstrap_all_s.expect("all bootstrapped");
        }
        let fit: Vec<(f64, f64)> = points
            .iter()
            .map(|(n, rss)| (*n as f64, *rss as f64))
            .collect();
        let loaded = server.worker(max, Duration::from_secs(10), 1000.0, 3000, key_exchange);
        let histogram = |name: &str| loaded.histograms[name].summary;
        let row = Row {
            tls,
            key_exchange: if tls { key_exchange.name() } else { "" },
            bytes_per_parked_device: pingfleet::measure::least_squares_slope(&fit),
            rss_points: points,
            bootstrap_per_s_at_max: bootstrap_rate,
            loop_lag_p50_us: histogram("event_loop_lag_us").p50_us,
            loop_lag_p99_us: histogram("event_loop_lag_us").p99_us,
            wakeup_p50_us: histogram("wakeup_latency_us").p50_us,
            wakeup_p99_us: histogram("wakeup_latency_us").p99_us,
            notifications_sent: loaded.counters.notifications_sent,
            notifications_delivered: loaded.counters.notifications_delivered,
            notifications_lost: loaded.counters.notifications_lost,
        };
        println!(
            "{:5} {:6} bytes/device {:>6.0}  bootstrap {:>6.0}/s  loop lag p50/p99 {}/{} us  wakeup p50/p99 {}/{} us  notifications {}/{} lost {}",
            if tls { "tls" } else { "plain" },
            row.key_exchange,
            row.bytes_per_parked_device,
            row.bootstrap_per_s_at_max,
            row.loop_lag_p50_us,
            row.loop_lag_p99_us,
            row.wakeup_p50_us,
            row.wakeup_p99_us,
            row.notifications_delivered,
            row.notifications_sent,
            row.notifications_lost,
        );
        rows.push(row);
    }
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../fleet-bench.json");
    std::fs::write(&path, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    println!("written to {}", path.display());
}
