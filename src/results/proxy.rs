//! What the reverse proxy before each partition was and did: its version against the
//! one pingfleet was checked with, every directive it ran with and where each value
//! came from, the timeout that cuts a parked Ping, its processes' memory per parked
//! connection (apart from the server's), and a reload: how long the old workers stayed
//! and what both generations held meanwhile.

use crate::proxy::config::{Directive, ProxyKind, ProxyTls};

/// Memory of a set of processes, read from `/proc`: proportional (shared pages split
/// among the processes that map them) and resident.
pub use crate::proxy::memory::MemoryFigures as ProcessMemory;

/// The `proxy` key of a result file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ProxyFigures {
    pub kind: ProxyKind,
    /// The version the binary reported (`1.22.1`), and the release pingfleet's defaults
    /// and findings were checked against (`1.22`).
    pub version: String,
    pub expected_release: String,
    pub tls: ProxyTls,
    /// Proxies run: one before each partition.
    pub proxies: u32,
    /// A user's own configuration file, when one was used (its directives are then the
    /// user's, and `directives` lists what pingfleet would have set).
    pub own_config: Option<String>,
    /// Every directive of one proxy, its value and where it came from.
    pub directives: Vec<Directive>,
    /// The shortest of the proxy's timeouts that cuts a parked Ping the server has not
    /// answered, and its length in real-world seconds (`null`: none is set).
    pub cut_by: String,
    pub cut_after_s: Option<f64>,
    pub memory: ProxyMemoryFigures,
    /// The reload (`proxy.reload_at`), when there was one.
    pub reload: Option<ReloadFigures>,
    /// Every proxy's processes, second by second.
    pub series: Vec<ProxyPoint>,
}

impl ProxyFigures {
    /// Whether the binary is the release the defaults were checked against.
    pub fn as_expected(&self) -> bool {
        self.version == self.expected_release
            || self
                .version
                .starts_with(&format!("{}.", self.expected_release))
    }
}

/// The proxies' memory before any device and with the fleet parked.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ProxyMemoryFigures {
    /// Every proxy's processes, added up, once they listened.
    pub before: ProcessMemory,
    /// The same at the plateau, and the Pings parked then.
    pub at_plateau: Option<ProcessMemory>,
    pub parked: u64,
    /// (at the plateau - before) / parked: what a parked connection costs the proxy's
    /// processes (its kernel sockets are the kernel's figure).
    pub pss_per_parked_connection_bytes: Option<f64>,
    pub rss_per_parked_connection_bytes: Option<f64>,
}

impl ProxyMemoryFigures {
    /// The figures from the readings before and at the plateau.
    pub fn of(before: ProcessMemory, at_plateau: Option<(ProcessMemory, u64)>) -> Self {
        let per = |after: u64, before: u64, parked: u64| {
            (parked > 0).then(|| (after as f64 - before as f64) / parked as f64)
        };
        let parked = at_plateau.map_or(0, |(_, parked)| parked);
        Self {
            before,
            at_plateau: at_plateau.map(|(memory, _)| memory),
            parked,
            pss_per_parked_connection_bytes: at_plateau
                .and_then(|(after, parked)| per(after.pss_bytes, before.pss_bytes, parked)),
            rss_per_parked_connection_bytes: at_plateau
                .and_then(|(after, parked)| per(after.rss_bytes, before.rss_bytes, parked)),
        }
    }
}

/// The proxies' processes at one second: the masters, and the workers of each
/// generation (0 before the reload, 1 after), added up over the proxies.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ProxyPoint {
    pub t_s: f64,
    pub masters: ProcessMemory,
    pub generations: Vec<ProcessMemory>,
}

impl ProxyPoint {
    /// Every process at this second.
    pub fn total(&self) -> ProcessMemory {
        self.generations
            .iter()
            .fold(self.masters, |sum, generation| sum.plus(*generation))
    }
}

/// A reload with the fleet parked.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ReloadFigures {
    /// Seconds since the start of the run.
    pub at_s: f64,
    /// What bounds the old workers' stay (`worker_shutdown_timeout`, `hard-stop-after`),
    /// unset when nothing does.
    pub bound: Directive,
    /// From the reload until the last old worker exited, real-world seconds; `null`
    /// when some were still there at the run's end (`old_at_end` of them).
    pub old_gone_after_s: Option<f64>,
    pub old_at_end: u32,
    /// Every proxy process just before the reload, and the most at any second after.
    pub before: ProcessMemory,
    pub peak: ProcessMemory,
}

impl ReloadFigures {
    /// The reload's figures from the series: `at_s` the reload, `scale` the run's
    /// compressed time (durations are reported in real-world seconds).
    pub fn of(series: &[ProxyPoint], at_s: f64, bound: Directive, scale: f64) -> Option<Self> {
        let before = series.iter().rev().find(|point| point.t_s <= at_s)?.total();
        let after: Vec<&ProxyPoint> = series.iter().filter(|point| point.t_s > at_s).collect();
        let old = |point: &ProxyPoint| point.generations.first().map_or(0, |g| g.processes);
        let gone = after.iter().find(|point| old(point) == 0);
        let old_at_end = after.last().map_or(0, |point| old(point));
        let peak = after
            .iter()
            .map(|point| point.total())
            .max_by_key(|memory| memory.pss_bytes)
            .unwrap_or(before);
        Some(Self {
            at_s,
            bound,
            old_gone_after_s: gone.map(|point| (point.t_s - at_s) * scale),
            old_at_end,
            before,
            peak,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::config::DirectiveSource;

    fn memory(pss_mib: u64, processes: u32) -> ProcessMemory {
        ProcessMemory {
            pss_bytes: pss_mib << 20,
            rss_bytes: (pss_mib + 1) << 20,
            processes,
        }
    }

    fn point(t_s: f64, old: ProcessMemory, new: Option<ProcessMemory>) -> ProxyPoint {
        ProxyPoint {
            t_s,
            masters: memory(1, 1),
            generations: std::iter::once(old).chain(new).collect(),
        }
    }

    #[test]
    fn a_parked_connection_costs_the_growth_over_the_parked() {
        let figures = ProxyMemoryFigures::of(memory(2, 2), Some((memory(12, 2), 1024)));
        assert_eq!(figures.pss_per_parked_connection_bytes, Some(10240.0));
        assert_eq!(figures.rss_per_parked_connection_bytes, Some(10240.0));
        assert_eq!(
            ProxyMemoryFigures::of(memory(2, 2), None).pss_per_parked_connection_bytes,
            None
        );
    }

    #[test]
    fn a_reload_is_timed_until_the_old_generation_is_gone() {
        let bound = Directive {
            name: "worker_shutdown_timeout".into(),
            value: "30s".into(),
            source: DirectiveSource::Scenario,
        };
        let series = vec![
            point(10.0, memory(40, 1), None),
            point(11.0, memory(40, 1), Some(memory(3, 1))),
            point(12.0, memory(30, 1), Some(memory(20, 1))),
            point(13.0, memory(0, 0), Some(memory(41, 1))),
        ];
        let reload = ReloadFigures::of(&series, 10.5, bound.clone(), 60.0).unwrap();
        assert_eq!(reload.before.pss_bytes, 41 << 20);
        assert_eq!(reload.peak.pss_bytes, 51 << 20);
        assert_eq!(reload.old_gone_after_s, Some(150.0));
        assert_eq!(reload.old_at_end, 0);
        let lingering = ReloadFigures::of(&series[..3], 10.5, bound, 1.0).unwrap();
        assert_eq!(lingering.old_gone_after_s, None);
        assert_eq!(lingering.old_at_end, 1);
    }
}
