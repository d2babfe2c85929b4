//! The proxy's processes and their memory: the master and every descendant found in
//! `/proc`, and their proportional (PSS) and resident (RSS) memory, the master apart and
//! the workers by generation (the workers before a reload, those after). A process that
//! vanishes between two readings is skipped, never an error: workers come and go.

use std::collections::HashMap;

use crate::measure::procfs;

/// One process of the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyProcessInfo {
    pub pid: u32,
    pub parent: u32,
    /// When it started, in clock ticks since boot (field 22 of `/proc/PID/stat`): with
    /// the pid, names one process even if the pid is reused.
    pub started_ticks: u64,
}

/// The master and every descendant, the master first (empty when the master is gone).
pub fn processes_of(master: u32) -> Vec<ProxyProcessInfo> {
    let all = all_processes();
    let Some(first) = all.iter().find(|info| info.pid == master) else {
        return Vec::new();
    };
    let mut children: HashMap<u32, Vec<ProxyProcessInfo>> = HashMap::new();
    for info in &all {
        children.entry(info.parent).or_default().push(*info);
    }
    let mut found = vec![*first];
    let mut next = 0;
    while let Some(parent) = found.get(next).map(|info| info.pid) {
        found.extend(children.get(&parent).into_iter().flatten().copied());
        next += 1;
    }
    found
}

/// Whether `info`'s process is still running (the same pid and start, not a zombie).
pub fn is_alive(info: &ProxyProcessInfo) -> bool {
    read_stat(info.pid)
        .is_some_and(|now| now.info.started_ticks == info.started_ticks && !now.zombie)
}

/// A process as `/proc/PID/stat` tells it.
struct Stat {
    info: ProxyProcessInfo,
    zombie: bool,
}

fn all_processes() -> Vec<ProxyProcessInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_stat)
        .filter(|stat| !stat.zombie)
        .map(|stat| stat.info)
        .collect()
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

/// Parses `/proc/PID/stat`: the command name (field 2) may hold spaces and
/// parentheses, so the fields are counted after its last `)`: state (3), parent (4),
/// ..., start time (22).
fn parse_stat(pid: u32, text: &str) -> Option<Stat> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        info: ProxyProcessInfo {
            pid,
            parent: fields.get(1)?.parse().ok()?,
            started_ticks: fields.get(19)?.parse().ok()?,
        },
        zombie: matches!(*fields.first()?, "Z" | "X"),
    })
}

/// Memory of a set of processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct MemoryFigures {
    /// Proportional set size: shared pages divided among the processes sharing them.
    pub pss_bytes: u64,
    /// Resident set size: shared pages counted in every process (an upper bound).
    pub rss_bytes: u64,
    /// Processes read.
    pub processes: u32,
}

impl MemoryFigures {
    /// One process's figures, `None` when it is gone.
    fn of(pid: u32) -> Option<Self> {
        Some(Self {
            pss_bytes: procfs::pss_bytes(pid)?,
            rss_bytes: procfs::rss_bytes(Some(pid))?,
            processes: 1,
        })
    }

    /// Both added up.
    pub fn plus(self, other: Self) -> Self {
        Self {
            pss_bytes: self.pss_bytes + other.pss_bytes,
            rss_bytes: self.rss_bytes + other.rss_bytes,
            processes: self.processes + other.processes,
        }
    }

    fn add(&mut self, other: Self) {
        *self = self.plus(other);
    }
}

/// One reading of the proxy's processes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProxySample {
    pub master: MemoryFigures,
    /// One per generation of workers, oldest first; a generation whose every process is
    /// gone has `processes == 0`.
    pub generations: Vec<MemoryFigures>,
}

impl ProxySample {
    /// The master and every generation together.
    pub fn total(&self) -> MemoryFigures {
        let mut total = self.master;
        for generation in &self.generations {
            total.add(*generation);
        }
        total
    }
}

/// The workers of a proxy by generation: generation 0 is the workers the first
/// [`Generations::observe`] sees; after [`Generations::mark_reload`], workers not seen
/// before belong to the next one. The master (which keeps its pid across reloads:
/// nginx's re-reads its file, HAProxy's re-executes itself) is counted apart.
#[derive(Debug)]
pub struct Generations {
    master: u32,
    /// Each worker seen, by (pid, start), with its generation.
    seen: HashMap<(u32, u64), usize>,
    current: usize,
}

impl Generations {
    pub fn new(master: u32) -> Self {
        Self {
            master,
            seen: HashMap::new(),
            current: 0,
        }
    }

    /// The proxy was told to reload: workers first seen from now on are the next
    /// generation's.
    pub fn mark_reload(&mut self) {
        self.current += 1;
    }

    /// The generation of each worker seen before.
    pub fn generation_count(&self) -> usize {
        self.current + 1
    }

    /// Reads every process of the proxy now.
    pub fn observe(&mut self) -> ProxySample {
        let mut sample = ProxySample {
            master: MemoryFigures::default(),
            generations: vec![MemoryFigures::default(); self.current + 1],
        };
        for (info, generation) in self.assign(&processes_of(self.master)) {
            let Some(figures) = MemoryFigures::of(info.pid) else {
                continue;
            };
            match generation {
                None => sample.master = figures,
                Some(generation) => sample.generations[generation].add(figures),
            }
        }
        sample
    }

    /// Each process with its generation (`None`: the master).
    fn assign(&mut self, processes: &[ProxyProcessInfo]) -> Vec<(ProxyProcessInfo, Option<usize>)> {
        processes
            .iter()
            .map(|info| {
                let generation = (info.pid != self.master).then(|| {
                    *self
                        .seen
                        .entry((info.pid, info.started_ticks))
                        .or_insert(self.current)
                });
                (*info, generation)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let text = "4242 (nginx: worker (x) y) S 4200 4200 4200 0 -1 4194624 \
                    1 0 0 0 0 0 0 0 20 0 1 0 987654 10000000 300 18446744073709551615";
        let stat = parse_stat(4242, text).unwrap();
        assert_eq!(
            stat.info,
            ProxyProcessInfo {
                pid: 4242,
                parent: 4200,
                started_ticks: 987_654
            }
        );
        assert!(!stat.zombie);
        let zombie = "7 (sh) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        assert!(parse_stat(7, zombie).unwrap().zombie);
        assert!(parse_stat(7, "7 (sh) S 1").is_none());
    }

    #[test]
    fn a_child_tree_is_found_master_first() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 5 & sleep 5"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let master = child.id();
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut tree = processes_of(master);
        while tree.len() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            tree = processes_of(master);
        }
        let _ = child.kill();
        let _ = child.wait();
        for info in tree.iter().skip(1) {
            if let Some(pid) = rustix::process::Pid::from_raw(info.pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        assert_eq!(tree.len(), 3, "sh and its two sleeps: {tree:?}");
        assert_eq!(tree[0].pid, master);
        assert!(tree[1..].iter().all(|info| info.parent == master));
        assert!(processes_of(u32::MAX).is_empty());
    }

    fn process(pid: u32, started_ticks: u64) -> ProxyProcessInfo {
        ProxyProcessInfo {
            pid,
            parent: 10,
            started_ticks,
        }
    }

    #[test]
    fn workers_first_seen_after_a_reload_are_the_next_generation() {
        let mut generations = Generations::new(10);
        let master = ProxyProcessInfo {
            pid: 10,
            parent: 1,
            started_ticks: 5,
        };
        let first = generations.assign(&[master, process(11, 6), process(12, 6)]);
        let numbers: Vec<_> = first.iter().map(|(_, generation)| *generation).collect();
        assert_eq!(numbers, [None, Some(0), Some(0)]);
        generations.mark_reload();
        // 12 exited and its pid went to a new worker: a new start time, a new process.
        let second =
            generations.assign(&[master, process(11, 6), process(12, 90), process(13, 90)]);
        let numbers: Vec<_> = second.iter().map(|(_, generation)| *generation).collect();
        assert_eq!(numbers, [None, Some(0), Some(1), Some(1)]);
        assert_eq!(generations.generation_count(), 2);
    }

    #[test]
    fn a_real_tree_is_measured_master_apart() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 5 & sleep 5 & wait"])
            .spawn()
            .unwrap();
        let mut generations = Generations::new(child.id());
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut sample = generations.observe();
        while sample.generations[0].processes < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            sample = generations.observe();
        }
        let sleeps: Vec<u32> = processes_of(child.id())
            .iter()
            .skip(1)
            .map(|info| info.pid)
            .collect();
        let _ = child.kill();
        let _ = child.wait();
        for pid in sleeps
            .iter()
            .filter_map(|pid| rustix::process::Pid::from_raw(*pid as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        assert_eq!(sample.master.processes, 1);
        assert!(sample.master.pss_bytes > 0);
        assert!(sample.master.rss_bytes >= sample.master.pss_bytes);
        assert_eq!(sample.generations.len(), 1);
        assert_eq!(sample.generations[0].processes, 2, "{sample:?}");
        assert_eq!(sample.total().processes, 3);
        assert_eq!(
            sample.total().rss_bytes,
            sample.master.rss_bytes + sample.generations[0].rss_bytes
        );
        let gone = generations.observe();
        assert_eq!(gone.total(), MemoryFigures::default());
    }
}
