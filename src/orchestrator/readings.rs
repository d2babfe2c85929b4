//! Memory readings of a run: the server's, the workers' and the kernel's before any
//! device connects (the baseline) and once every device is parked (the plateau), and
//! memory per parked connection from the two, measured only over a fleet that formed.

use super::children::RoleProcess;
use super::roles::{heap_of_all, ServerProcess};
use super::server_gauge::ServerGauge;
use crate::fleet::report::WorkerReport;
use crate::measure::heap::HeapReading;
use crate::measure::procfs;
use crate::results::run::{Memory, MEASURED_PLATEAU_SHARE};
use crate::scenario::resolve::ResolvedScenario;
use crate::scenario::FirewallMode;

/// Every process's RSS, or `None` if one of them cannot be read (a sum missing a
/// process would be a figure nobody measured).
fn rss_of_each(pids: impl Iterator<Item = u32>) -> Option<Vec<u64>> {
    pids.map(|pid| procfs::rss_bytes(Some(pid))).collect()
}

/// Readings before any device connects.
pub(super) struct Baseline {
    pub(super) server_rss: Option<u64>,
    pub(super) server_heap: Option<HeapReading>,
    pub(super) slab: Option<u64>,
}

impl Baseline {
    pub(super) fn read(server: &ServerGauge, servers: &[ServerProcess]) -> Self {
        Self {
            server_rss: server.memory_each().map(|each| each.iter().sum()),
            server_heap: heap_of_all(servers),
            slab: procfs::kernel_slab_bytes(),
        }
    }
}

/// Readings once every device is parked.
pub(super) struct Plateau {
    pub(super) parked: u64,
    pub(super) server_rss: Option<Vec<u64>>,
    pub(super) server_heap: Option<HeapReading>,
    pub(super) worker_rss: Option<u64>,
    pub(super) slab: Option<u64>,
    pub(super) tcp_buffers: Option<u64>,
}

impl Plateau {
    pub(super) fn read(
        parked: u64,
        (server, servers): (&ServerGauge, &[ServerProcess]),
        workers: &[RoleProcess],
    ) -> Self {
        Self {
            parked,
            server_rss: server.memory_each(),
            server_heap: heap_of_all(servers),
            worker_rss: rss_of_each(workers.iter().map(RoleProcess::pid))
                .map(|each| each.iter().sum()),
            slab: procfs::kernel_slab_bytes(),
            tcp_buffers: procfs::tcp_sockstat().map(|tcp| tcp.buffer_bytes),
        }
    }
}

/// How many devices were planned and how many sockets on this machine each one's
/// connection takes (see [`Memory::sockets_per_device`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct FleetShape {
    pub(super) planned: u64,
    pub(super) sockets_per_device: u32,
}

impl FleetShape {
    pub(super) fn of(plan: &ResolvedScenario) -> Self {
        let scenario = &plan.scenario;
        let sockets_per_device = match (&scenario.target, &scenario.firewall) {
            (Some(_), _) => 1,
            (None, Some(firewall)) if firewall.mode == FirewallMode::Proxy => 4,
            (None, _) => 2,
        };
        Self {
            planned: scenario.devices.count as u64,
            sockets_per_device,
        }
    }
}

/// Memory per parked connection from the baseline and plateau readings; per-parked
/// figures only when the plateau held [`MEASURED_PLATEAU_SHARE`] of the planned devices.
pub(super) fn memory(
    baseline: &Baseline,
    plateau: Option<&Plateau>,
    fleet: &WorkerReport,
    shape: FleetShape,
) -> Memory {
    let plateau = plateau.filter(|plateau| plateau.parked > 0);
    let too_few =
        plateau.filter(|p| (p.parked as f64) < MEASURED_PLATEAU_SHARE * shape.planned as f64);
    let not_measured_why = too_few.map(|p| {
        format!(
            "the plateau held {} of {} planned devices (under {:.0}%)",
            p.parked,
            shape.planned,
            MEASURED_PLATEAU_SHARE * 100.0
        )
    });
    let per_parked = |bytes: u64| {
        plateau
            .filter(|_| too_few.is_none())
            .map(|p| bytes as f64 / p.parked as f64)
    };
    let server_plateau = plateau
        .and_then(|p| p.server_rss.as_ref())
        .map(|each| each.iter().sum::<u64>());
    let worker_baseline = fleet.rss_before_devices_bytes;
    let server_heap = plateau.and_then(|p| p.server_heap.as_ref());
    let device_heap = fleet
        .heap_before_devices
        .as_ref()
        .zip(fleet.heap_at_hold.as_ref());
    // The parked count per-parked figures divide by, where they are measured.
    let measured_count = plateau.filter(|_| too_few.is_none()).map(|p| p.parked);
    let worker_plateau = plateau.and_then(|p| p.worker_rss);
    Memory {
        server_rss_baseline_bytes: baseline.server_rss,
        server_rss_plateau_bytes: server_plateau,
        server_rss_plateau_by_partition: plateau
            .and_then(|p| p.server_rss.clone())
            .unwrap_or_default(),
        parked_at_plateau: plateau.map(|p| p.parked),
        server_bytes_per_parked: server_plateau
            .zip(baseline.server_rss)
            .and_then(|(rss, before)| per_parked(rss.saturating_sub(before))),
        server_heap_baseline_bytes: baseline.server_heap.as_ref().map(|h| h.live_bytes),
        server_heap_plateau_bytes: server_heap.map(|h| h.live_bytes),
        server_heap_bytes_per_parked: server_heap.zip(baseline.server_heap.as_ref()).and_then(
            |(heap, before)| per_parked(heap.live_bytes.saturating_sub(before.live_bytes)),
        ),
        server_heap_parts_per_parked: server_heap
            .zip(baseline.server_heap.as_ref())
            .zip(measured_count)
            .map(|((heap, before), parked)| heap.growth_per(before, parked))
            .unwrap_or_default(),
        worker_rss_baseline_bytes: worker_baseline,
        worker_rss_plateau_bytes: worker_plateau,
        device_bytes_per_device: worker_baseline
            .zip(worker_plateau)
            .and_then(|(before, after)| per_parked(after.saturating_sub(before))),
        device_heap_bytes_per_device: device_heap.and_then(|(before, at_hold)| {
            per_parked(at_hold.live_bytes.saturating_sub(before.live_bytes))
        }),
        device_heap_parts_per_device: device_heap
            .zip(measured_count)
            .map(|((before, at_hold), parked)| at_hold.growth_per(before, parked))
            .unwrap_or_default(),
        kernel_slab_bytes_per_connection: baseline
            .slab
            .zip(plateau.and_then(|p| p.slab))
            .and_then(|(before, after)| per_parked(after.saturating_sub(before))),
        kernel_tcp_buffer_bytes_at_plateau: plateau.and_then(|p| p.tcp_buffers),
        sockets_per_device: shape.sockets_per_device,
        not_measured_why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> WorkerReport {
        let mut fleet: WorkerReport =
            serde_json::from_str(include_str!("testdata/worker.json")).expect("test document");
        fleet.heap_before_devices = Some(HeapReading {
            live_bytes: 4_000_000,
            parts: [("devices".to_owned(), 3_000_000)].into_iter().collect(),
        });
        fleet.heap_at_hold = Some(HeapReading {
            live_bytes: 5_500_000,
            parts: [("devices".to_owned(), 4_500_000)].into_iter().collect(),
        });
        fleet
    }

    /// A heap of `live_bytes`, `tls` of them TLS and the rest connections.
    fn heap(live_bytes: u64, tls: i64) -> HeapReading {
        HeapReading {
            live_bytes,
            parts: [
                ("tls".to_owned(), tls),
                ("connections".to_owned(), live_bytes as i64 - tls),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn memory_per_parked_connection_from_baseline_and_plateau() {
        let mut fleet = fleet();
        fleet.rss_before_devices_bytes = Some(10_000_000);
        let baseline = Baseline {
            server_rss: Some(5_000_000),
            server_heap: Some(heap(1_000_000, 200_000)),
            slab: Some(100_000_000),
        };
        let plateau = Plateau {
            parked: 1_000,
            server_rss: Some(vec![4_000_000, 4_000_000]),
            server_heap: Some(heap(3_500_000, 700_000)),
            worker_rss: Some(12_000_000),
            slab: Some(110_000_000),
            tcp_buffers: Some(4096),
        };
        let shape = FleetShape {
            planned: 1_000,
            sockets_per_device: 2,
        };
        let read = memory(&baseline, Some(&plateau), &fleet, shape);
        assert_eq!(read.server_bytes_per_parked, Some(3_000.0));
        assert_eq!(read.server_heap_bytes_per_parked, Some(2_500.0));
        assert_eq!(read.server_heap_parts_per_parked["tls"], 500.0);
        assert_eq!(read.server_heap_parts_per_parked["connections"], 2_000.0);
        assert_eq!(read.device_heap_bytes_per_device, Some(1_500.0));
        assert_eq!(read.device_heap_parts_per_device["devices"], 1_500.0);
        assert_eq!(read.device_bytes_per_device, Some(2_000.0));
        assert_eq!(read.kernel_slab_bytes_per_connection, Some(10_000.0));
        assert_eq!(read.server_rss_plateau_by_partition, [4_000_000, 4_000_000]);

        // A partition whose RSS could not be read: no server figure at all.
        let unread = Plateau {
            server_rss: None,
            server_heap: None,
            ..plateau
        };
        let read = memory(&baseline, Some(&unread), &fleet, shape);
        assert_eq!(read.server_bytes_per_parked, None);
        assert_eq!(read.server_heap_bytes_per_parked, None);
        assert!(read.server_rss_plateau_by_partition.is_empty());
        assert_eq!(read.device_bytes_per_device, Some(2_000.0));
        // Nothing parked: nothing per parked connection.
        assert_eq!(
            memory(&baseline, None, &fleet, shape).server_bytes_per_parked,
            None
        );
        // A plateau of 210 devices of 20,000 planned: readings kept, no per-parked
        // figure, and the reason given.
        let few = Plateau {
            parked: 210,
            ..unread
        };
        let planned = FleetShape {
            planned: 20_000,
            ..shape
        };
        let read = memory(&baseline, Some(&few), &fleet, planned);
        assert_eq!(read.device_bytes_per_device, None);
        assert_eq!(read.kernel_slab_bytes_per_connection, None);
        assert_eq!(read.parked_at_plateau, Some(210));
        assert_eq!(
            read.not_measured_why.as_deref(),
            Some("the plateau held 210 of 20000 planned devices (under 90%)")
        );
        // 90% is enough.
        let most = Plateau {
            parked: 18_000,
            ..few
        };
        let read = memory(&baseline, Some(&most), &fleet, planned);
        assert!(read.device_bytes_per_device.is_some());
        assert_eq!(read.not_measured_why, None);
    }
}
