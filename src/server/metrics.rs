//! The server's counters and its wake path's histograms, and the Prometheus text
//! endpoint (`/metrics`, served by hyper) that exposes them.
//!
//! Counters are relaxed atomics: each is independent and read only for reporting.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::wake_path::{WakePath, WakeStage};
use crate::eas::request::Command;
use crate::measure::heap::HeapReading;

/// Ping statuses counted one by one; anything else lands in the last slot.
const PING_STATUSES: usize = 9;
/// Commands counted one by one (by base64 code); unknown ones land in the last slot.
const COMMAND_SLOTS: usize = 24;

/// Every counter the server keeps.
#[derive(Debug)]
pub struct Metrics {
    pub connections_open: AtomicI64,
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub accept_errors: AtomicU64,
    pub tls_handshake_errors: AtomicU64,
    pub parked: AtomicI64,
    pub parked_released_on_disconnect: AtomicU64,
    pub requests: [AtomicU64; COMMAND_SLOTS],
    pub options_requests: AtomicU64,
    pub http_errors: AtomicU64,
    pub pings_by_status: [AtomicU64; PING_STATUSES + 1],
    pub notifications_received: AtomicU64,
    pub notifications_malformed: AtomicU64,
    pub notifications_unknown_user: AtomicU64,
    pub notifications_other_partition: AtomicU64,
    pub notifications_unknown_folder: AtomicU64,
    pub notifications_applied: AtomicU64,
    /// Changes refused because the mailbox is at a limit (folders per user).
    pub notifications_over_limit: AtomicU64,
    /// Requests refused for their device: a DeviceId too long, or a new device for a
    /// user who has the most devices the server keeps.
    pub devices_refused: AtomicU64,
    /// Requests refused with 503 because the server-wide body budget was spent.
    pub bodies_refused: AtomicU64,
    pub wakeups: AtomicU64,
    /// Times the notification listener's guard thread found the runtime behind and
    /// read the socket itself.
    pub notify_guard_takeovers: AtomicU64,
    /// Each wake's path through the server, stage by stage.
    pub wake_path: WakePath,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            connections_open: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            tls_handshake_errors: AtomicU64::new(0),
            parked: AtomicI64::new(0),
            parked_released_on_disconnect: AtomicU64::new(0),
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            options_requests: AtomicU64::new(0),
            http_errors: AtomicU64::new(0),
            pings_by_status: std::array::from_fn(|_| AtomicU64::new(0)),
            notifications_received: AtomicU64::new(0),
            notifications_malformed: AtomicU64::new(0),
            notifications_unknown_user: AtomicU64::new(0),
            notifications_other_partition: AtomicU64::new(0),
            notifications_unknown_folder: AtomicU64::new(0),
            notifications_applied: AtomicU64::new(0),
            notifications_over_limit: AtomicU64::new(0),
            devices_refused: AtomicU64::new(0),
            bodies_refused: AtomicU64::new(0),
            wakeups: AtomicU64::new(0),
            notify_guard_takeovers: AtomicU64::new(0),
            wake_path: WakePath::default(),
        }
    }
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn count_command(&self, command: &Command) {
        let slot = command.code().map_or(COMMAND_SLOTS - 1, |code| {
            usize::from(code).min(COMMAND_SLOTS - 1)
        });
        bump(&self.requests[slot]);
    }

    pub fn count_ping_status(&self, status: u32) {
        let slot = (status as usize).min(PING_STATUSES);
        bump(&self.pings_by_status[slot]);
    }

    /// The gauges kept as atomics: name, help, value.
    fn gauges(&self) -> [(&'static str, &'static str, &AtomicI64); 2] {
        [
            (
                "connections_open",
                "Open client connections.",
                &self.connections_open,
            ),
            ("parked_pings", "Ping requests parked now.", &self.parked),
        ]
    }

    /// The counters of connections and requests: name, help, value.
    fn request_counters(&self) -> [(&'static str, &'static str, &AtomicU64); 7] {
        [
            (
                "connections_total",
                "Accepted client connections.",
                &self.connections_total,
            ),
            (
                "connections_refused_total",
                "Connections refused at the connection limit.",
                &self.connections_refused,
            ),
            (
                "accept_errors_total",
                "accept() failures (EMFILE and others).",
                &self.accept_errors,
            ),
            (
                "tls_handshake_errors_total",
                "Failed TLS handshakes.",
                &self.tls_handshake_errors,
            ),
            (
                "parked_released_on_disconnect_total",
                "Parked Pings released because the client went away.",
                &self.parked_released_on_disconnect,
            ),
            (
                "http_errors_total",
                "Requests answered with HTTP 4xx/5xx.",
                &self.http_errors,
            ),
            (
                "options_requests_total",
                "OPTIONS requests.",
                &self.options_requests,
            ),
        ]
    }

    /// The counters of notifications and of what was refused: name, help, value.
    fn notification_counters(&self) -> [(&'static str, &'static str, &AtomicU64); 11] {
        [
            (
                "notifications_received_total",
                "Change datagrams read.",
                &self.notifications_received,
            ),
            (
                "notifications_malformed_total",
                "Change datagrams that were not valid.",
                &self.notifications_malformed,
            ),
            (
                "notifications_unknown_user_total",
                "Change datagrams for users that do not exist.",
                &self.notifications_unknown_user,
            ),
            (
                "notifications_other_partition_total",
                "Change datagrams for users of another partition.",
                &self.notifications_other_partition,
            ),
            (
                "notifications_unknown_folder_total",
                "Change datagrams for folders that do not exist.",
                &self.notifications_unknown_folder,
            ),
            (
                "notifications_applied_total",
                "Changes applied to the mailbox store.",
                &self.notifications_applied,
            ),
            (
                "notifications_over_limit_total",
                "Changes refused because the mailbox is at a limit (folders per user).",
                &self.notifications_over_limit,
            ),
            (
                "devices_refused_total",
                "Requests refused for their device: DeviceId too long, or too many devices.",
                &self.devices_refused,
            ),
            (
                "bodies_refused_total",
                "Requests refused (503) because the server-wide body budget was spent.",
                &self.bodies_refused,
            ),
            (
                "wakeups_total",
                "Parked Pings woken by a change.",
                &self.wakeups,
            ),
            (
                "notify_guard_takeovers_total",
                "Times the notification guard thread found the socket unread for 2 ms and read it itself.",
                &self.notify_guard_takeovers,
            ),
        ]
    }

    /// The Prometheus text exposition of every counter, plus the process RSS and the
    /// kernel's drops on the notification socket when they can be read.
    pub fn render(&self, extra: &ExtraGauges) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP pingfleet_{name} {help}\n# TYPE pingfleet_{name} {kind}"
            );
            let _ = writeln!(out, "pingfleet_{name} {value}");
        };
        for (name, help, value) in self.gauges() {
            metric(
                name,
                "gauge",
                help,
                value.load(Ordering::Relaxed).to_string(),
            );
        }
        let counters = self.request_counters().into_iter();
        for (name, help, value) in counters.chain(self.notification_counters()) {
            metric(
                name,
                "counter",
                help,
                value.load(Ordering::Relaxed).to_string(),
            );
        }
        if let Some(rss) = extra.rss_bytes {
            metric(
                "resident_memory_bytes",
                "gauge",
                "Resident set size of this process.",
                rss.to_string(),
            );
        }
        metric(
            "heap_bytes",
            "gauge",
            "Heap bytes allocated and not freed by this process.",
            extra.heap.live_bytes.to_string(),
        );
        if let Some(drops) = extra.notify_socket_drops {
            metric(
                "notify_socket_drops_total",
                "counter",
                "Datagrams the kernel dropped on the notification socket.",
                drops.to_string(),
            );
        }
        self.render_labelled(&mut out);
        render_heap_parts(&extra.heap, &mut out);
        self.render_wake_histogram(&mut out);
        self.wake_path.render(&mut out);
        out
    }

    fn render_labelled(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP pingfleet_requests_total EAS requests by command.\n# TYPE pingfleet_requests_total counter");
        for (slot, counter) in self.requests.iter().enumerate() {
            let count = counter.load(Ordering::Relaxed);
            if count > 0 {
                let command = if slot == COMMAND_SLOTS - 1 {
                    "other".to_owned()
                } else {
                    Command::from_code(slot as u8).name().to_owned()
                };
                let _ = writeln!(
                    out,
                    "pingfleet_requests_total{{command=\"{command}\"}} {count}"
                );
            }
        }
        let _ = writeln!(out, "# HELP pingfleet_pings_total Ping responses by Status.\n# TYPE pingfleet_pings_total counter");
        for (status, counter) in self.pings_by_status.iter().enumerate().skip(1) {
            let label = if status == PING_STATUSES {
                "other".to_owned()
            } else {
                status.to_string()
            };
            let count = counter.load(Ordering::Relaxed);
            let _ = writeln!(out, "pingfleet_pings_total{{status=\"{label}\"}} {count}");
        }
    }

    fn render_wake_histogram(&self, out: &mut String) {
        let total = self.wake_path.histogram(WakeStage::Total);
        let histogram = total.histogram();
        let _ = writeln!(out, "# HELP pingfleet_wake_latency_microseconds Datagram received by the kernel to Ping response sent by the kernel (handed to it, where the engine reads no transmit stamp).\n# TYPE pingfleet_wake_latency_microseconds summary");
        for quantile in [0.5, 0.9, 0.99, 0.999] {
            let value = histogram.value_at_quantile(quantile);
            let _ = writeln!(
                out,
                "pingfleet_wake_latency_microseconds{{quantile=\"{quantile}\"}} {value}"
            );
        }
        let _ = writeln!(
            out,
            "pingfleet_wake_latency_microseconds_count {}",
            histogram.len()
        );
        let sum = histogram.mean() * histogram.len() as f64;
        let _ = writeln!(out, "pingfleet_wake_latency_microseconds_sum {sum:.0}");
    }
}

/// The live heap by the part of pingfleet that allocated it (see `measure::heap`).
fn render_heap_parts(heap: &HeapReading, out: &mut String) {
    let _ = writeln!(out, "# HELP pingfleet_heap_part_bytes Heap bytes allocated and not freed, by the part of pingfleet that allocated them.\n# TYPE pingfleet_heap_part_bytes gauge");
    for (part, bytes) in &heap.parts {
        let _ = writeln!(out, "pingfleet_heap_part_bytes{{part=\"{part}\"}} {bytes}");
    }
}

/// Readings taken when `/metrics` is scraped rather than counted as events happen.
#[derive(Debug, Default, Clone)]
pub struct ExtraGauges {
    pub rss_bytes: Option<u64>,
    /// The live heap (see `measure::heap`).
    pub heap: HeapReading,
    pub notify_socket_drops: Option<u64>,
}

/// The path of the wake path's histograms (a `WakePathReading` in JSON), beside
/// `/metrics`.
pub(crate) const WAKE_PATH: &str = "/wake-path";

/// Serves `/metrics` (and `/wake-path`) on a listener until `shutdown` fires.
pub(crate) async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    gauges: impl Fn() -> ExtraGauges + Send + Sync + 'static,
    shutdown: CancellationToken,
) {
    let gauges = Arc::new(gauges);
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        let gauges = gauges.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                let response =
                    match request.uri().path() {
                        "/metrics" => hyper::Response::builder()
                            .header("Content-Type", "text/plain; version=0.0.4")
                            .body(Full::new(Bytes::from(metrics.render(&gauges())))),
                        WAKE_PATH => hyper::Response::builder()
                            .header("Content-Type", "application/json")
                            .body(Full::new(Bytes::from(
                                serde_json::to_string(&metrics.wake_path.reading())
                                    .unwrap_or_default(),
                            ))),
                        _ => hyper::Response::builder().status(404).body(Full::new(
                            Bytes::from_static(b"try /metrics or /wake-path\n"),
                        )),
                    };
                async move { response }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_labels_and_quantiles() {
        let metrics = Metrics::default();
        metrics.count_command(&Command::Ping);
        metrics.count_command(&Command::Other("Bogus".into()));
        metrics.count_ping_status(2);
        metrics.count_ping_status(142);
        let at = std::time::Instant::now();
        let woken = crate::server::wake_path::WokenPing {
            trace: crate::server::wake_path::WakeTrace {
                received: at,
                read: at,
                signalled: at,
            },
            ran: at,
            encoded: at,
        };
        metrics
            .wake_path
            .record(&woken, at + Duration::from_micros(250), None);
        let text = metrics.render(&ExtraGauges {
            rss_bytes: Some(1024),
            heap: HeapReading {
                live_bytes: 512,
                parts: [("tls".to_owned(), 12), ("connections".to_owned(), 500)]
                    .into_iter()
                    .collect(),
            },
            notify_socket_drops: None,
        });
        assert!(
            text.contains("pingfleet_requests_total{command=\"Ping\"} 1"),
            "{text}"
        );
        assert!(text.contains("pingfleet_requests_total{command=\"other\"} 1"));
        assert!(text.contains("pingfleet_pings_total{status=\"2\"} 1"));
        assert!(text.contains("pingfleet_pings_total{status=\"other\"} 1"));
        assert!(text.contains("pingfleet_resident_memory_bytes 1024"));
        assert!(text.contains("pingfleet_heap_bytes 512"));
        assert!(text.contains("pingfleet_heap_part_bytes{part=\"tls\"} 12"));
        assert!(text.contains("pingfleet_heap_part_bytes{part=\"connections\"} 500"));
        assert!(!text.contains("notify_socket_drops"));
        assert!(text.contains("pingfleet_wake_latency_microseconds{quantile=\"0.99\"} 250"));
        assert!(text.contains("pingfleet_wake_latency_microseconds_count 1"));
    }
}
