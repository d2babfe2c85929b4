//! Once-a-second readings of every process of a run (resident memory and the CPU it
//! used since the previous reading) and of the kernel's socket memory (slab and
//! `/proc/net/sockstat`), the raw material of the timeline and of the self-check.

use std::time::Instant;

use crate::measure::procfs;
use crate::results::timeline::{KernelPoint, ProcessPoint, Role};

/// A process the sampler follows.
struct Followed {
    name: String,
    role: Role,
    pid: u32,
    cpu_seconds: Option<f64>,
}

/// Reads every followed process each time [`Sampler::sample`] is called.
pub(crate) struct Sampler {
    followed: Vec<Followed>,
    last: Instant,
    /// The machine's (busy, total) CPU ticks at the previous reading.
    machine_ticks: Option<(u64, u64)>,
    cores: usize,
}

impl Sampler {
    pub(crate) fn new(processes: impl IntoIterator<Item = (String, Role, u32)>) -> Self {
        let followed = processes
            .into_iter()
            .map(|(name, role, pid)| Followed {
                cpu_seconds: procfs::cpu_seconds(Some(pid)),
                name,
                role,
                pid,
            })
            .collect();
        Self {
            followed,
            last: Instant::now(),
            machine_ticks: procfs::machine_cpu_ticks(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// Every followed process now, with the cores it used since the previous call.
    pub(crate) fn sample(&mut self) -> (Vec<ProcessPoint>, KernelPoint) {
        let now = Instant::now();
        let interval = (now - self.last).as_secs_f64();
        self.last = now;
        let processes = self
            .followed
            .iter_mut()
            .map(|process| {
                let cpu = procfs::cpu_seconds(Some(process.pid));
                let cpu_cores = cpu
                    .zip(process.cpu_seconds)
                    .filter(|_| interval > 0.0)
                    .map(|(now, before)| (now - before).max(0.0) / interval);
                process.cpu_seconds = cpu.or(process.cpu_seconds);
                ProcessPoint {
                    name: process.name.clone(),
                    role: process.role,
                    rss_bytes: procfs::rss_bytes(Some(process.pid)),
                    cpu_cores,
                }
            })
            .collect();
        let kernel = KernelPoint {
            slab_bytes: procfs::kernel_slab_bytes(),
            tcp: procfs::tcp_sockstat(),
            machine_busy_cores: self.machine_busy_cores(),
        };
        (processes, kernel)
    }

    /// Cores the machine was busy since the previous reading.
    fn machine_busy_cores(&mut self) -> Option<f64> {
        let now = procfs::machine_cpu_ticks();
        let before = self.machine_ticks;
        self.machine_ticks = now.or(before);
        let ((busy, total), (busy_before, total_before)) = now.zip(before)?;
        let elapsed = total.checked_sub(total_before).filter(|ticks| *ticks > 0)?;
        let busy = busy.saturating_sub(busy_before) as f64 / elapsed as f64;
        Some(busy * self.cores as f64)
    }
}

/// The sum of `rss_bytes` of the processes of one role.
pub(crate) fn rss_of(points: &[ProcessPoint], role: Role) -> u64 {
    points
        .iter()
        .filter(|point| point.role == role)
        .filter_map(|point| point.rss_bytes)
        .sum()
}

/// The sum of `cpu_cores` of the processes of one role.
pub(crate) fn cores_of(points: &[ProcessPoint], role: Role) -> f64 {
    points
        .iter()
        .filter(|point| point.role == role)
        .filter_map(|point| point.cpu_cores)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_a_busy_process_and_sums_by_role() {
        let me = std::process::id();
        let mut sampler = Sampler::new([
            ("me".to_owned(), Role::Worker, me),
            ("gone".to_owned(), Role::Server, u32::MAX),
        ]);
        let spin_until = Instant::now() + std::time::Duration::from_millis(300);
        let mut spins = 0u64;
        while Instant::now() < spin_until {
            spins = std::hint::black_box(spins + 1);
        }
        let (points, kernel) = sampler.sample();
        assert!(points[0].rss_bytes.is_some_and(|rss| rss > 0));
        assert!(points[0].cpu_cores.is_some_and(|cores| cores > 0.0));
        assert_eq!(points[1].rss_bytes, None);
        assert_eq!(points[1].cpu_cores, None);
        assert_eq!(rss_of(&points, Role::Worker), points[0].rss_bytes.unwrap());
        assert_eq!(rss_of(&points, Role::Server), 0);
        assert!(cores_of(&points, Role::Worker) > 0.0);
        assert!(kernel.tcp.is_some());
        assert!(kernel
            .machine_busy_cores
            .is_some_and(|cores| (0.0..=2.0 * sampler.cores as f64).contains(&cores)));
    }
}
