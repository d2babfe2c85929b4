//! The injector on its own: how close to each planned instant it sends (its lag, plan to
//! the datagram's transmit stamp) and what keeping the schedule costs its thread, at
//! 100, 1,000 and 10,000 datagrams a second (fixed, then Poisson, whose instants fall
//! together now and then and leave with one `sendmmsg`), into a loopback socket that a
//! thread drains. No server and no devices: this is the generator's own floor, the part
//! of a run's wake-up that is pingfleet's.
//!
//! Run: `cargo bench --bench injector` (about 40 seconds). Printed, one line per rate.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingfleet::fleet::injector::{InjectorConfig, InjectorThread, Pattern, Schedule};
use pingfleet::fleet::sink::{Destinations, Outlet};
use pingfleet::partition::Partition;

const DEVICES: usize = 1_000;

fn main() {
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind the sink");
    sink.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let to = sink.local_addr().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let drained = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 256];
            let mut count = 0u64;
            while !done.load(Ordering::Relaxed) {
                if sink.recv(&mut buffer).is_ok() {
                    count += 1;
                }
            }
            count
        })
    };
    let users: Vec<(String, String)> = (0..DEVICES)
        .map(|i| (format!("user{i}"), "5".to_owned()))
        .collect();
    let mut sent = 0;
    for (rate, seconds) in [(100.0, 10), (1_000.0, 5), (10_000.0, 5)] {
        for poisson in [false, true] {
            let pattern = match poisson {
                false => Pattern::Fixed { rate_per_s: rate },
                true => Pattern::Poisson { rate_per_s: rate },
            };
            let config = InjectorConfig {
                schedule: Schedule::new(pattern, DEVICES, 7, Partition::WHOLE),
                outlet: Outlet::open(Destinations::Datagrams(vec![to]), Vec::new()).unwrap(),
                accounts: Vec::new(),
                start_after: Duration::ZERO,
            };
            let from = Instant::now() + Duration::from_millis(50);
            let until = from + Duration::from_secs(seconds);
            let stop = Arc::new(AtomicBool::new(false));
            let thread = InjectorThread::start(config, users.clone(), from, until, stop);
            let (stats, _) = thread.join();
            let lag = stats.injector_lag.summary();
            let counters = &stats.counters;
            let cpu = counters.injector_cpu_us as f64 / counters.injector_span_us.max(1) as f64;
            sent += counters.notifications_sent;
            println!(
                "injector {rate:>6}/s {:<7} sent {:>6}  lag p50 {:>4} us  p99 {:>5} us  p99.9 {:>5} us  max {:>6} us  thread CPU {:>5.1}% of a core",
                if poisson { "poisson" } else { "fixed" },
                counters.notifications_sent,
                lag.p50_us,
                lag.p99_us,
                lag.p999_us,
                lag.max_us,
                cpu * 100.0
            );
        }
    }
    done.store(true, Ordering::Relaxed);
    let received = drained.join().unwrap();
    println!("datagrams sent {sent}, received by the sink {received}");
}
