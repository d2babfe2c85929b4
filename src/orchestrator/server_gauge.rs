//! Where a run reads the server's memory and CPU: the bundled partitions' processes, an
//! external server's processes (`target.server_pid`) or its cgroup
//! (`target.server_cgroup`), or nowhere: an external server the run may not read is
//! "not measured", never a figure of zero.

use std::path::PathBuf;

use crate::measure::procfs;
use crate::scenario::TargetSection;

/// What of the server a run can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerGauge {
    /// These processes' RSS and CPU time (the bundled partitions, or `server_pid`).
    Processes(Vec<u32>),
    /// A cgroup v2 directory: `memory.current` and `cpu.stat`.
    Cgroup(PathBuf),
    /// An external server with nothing named to read.
    NotMeasured,
}

impl ServerGauge {
    /// The gauge an external target names.
    pub(crate) fn of_target(target: &TargetSection) -> Self {
        if let Some(cgroup) = &target.server_cgroup {
            let path = PathBuf::from(cgroup);
            return Self::Cgroup(match path.is_absolute() {
                true => path,
                false => PathBuf::from("/sys/fs/cgroup").join(path),
            });
        }
        match target.server_pid.is_empty() {
            true => Self::NotMeasured,
            false => Self::Processes(target.server_pid.clone()),
        }
    }

    /// The memory of each process (or of the cgroup, as one figure); `None` when not
    /// measured or when one of them cannot be read (a sum missing a process would be a
    /// figure nobody measured).
    pub(crate) fn memory_each(&self) -> Option<Vec<u64>> {
        match self {
            Self::Processes(pids) => pids
                .iter()
                .map(|pid| procfs::rss_bytes(Some(*pid)))
                .collect(),
            Self::Cgroup(dir) => {
                let text = std::fs::read_to_string(dir.join("memory.current")).ok()?;
                Some(vec![text.trim().parse().ok()?])
            }
            Self::NotMeasured => None,
        }
    }

    /// CPU seconds used so far.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        match self {
            Self::Processes(pids) => pids.iter().map(|pid| procfs::cpu_seconds(Some(*pid))).sum(),
            Self::Cgroup(dir) => {
                let text = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
                let line = text.lines().find(|line| line.starts_with("usage_usec "))?;
                let usec: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(usec as f64 / 1e6)
            }
            Self::NotMeasured => None,
        }
    }

    /// What the result file says was read.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Processes(pids) => {
                let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
                format!("RSS of process {}", pids.join(", "))
            }
            Self::Cgroup(dir) => format!("memory.current of cgroup {}", dir.display()),
            Self::NotMeasured => {
                "not measured (name target.server_pid or target.server_cgroup)".to_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(pids: Vec<u32>, cgroup: Option<&str>) -> TargetSection {
        TargetSection {
            url: "http://127.0.0.1:1".into(),
            credentials: None,
            inject: Vec::new(),
            ca: None,
            insecure: false,
            server_pid: pids,
            server_cgroup: cgroup.map(str::to_owned),
        }
    }

    #[test]
    fn an_external_server_is_read_only_where_the_scenario_says() {
        let unnamed = ServerGauge::of_target(&target(Vec::new(), None));
        assert_eq!(unnamed, ServerGauge::NotMeasured);
        assert_eq!(unnamed.memory_each(), None);
        assert_eq!(unnamed.cpu_seconds(), None);
        assert!(unnamed.describe().starts_with("not measured"));

        let me = ServerGauge::of_target(&target(vec![std::process::id()], None));
        let memory = me.memory_each().unwrap();
        assert!(memory[0] > 1 << 20, "{memory:?}");
        assert!(me.cpu_seconds().is_some());

        let gone = ServerGauge::Processes(vec![std::process::id(), u32::MAX]);
        assert_eq!(
            gone.memory_each(),
            None,
            "a process that is gone is no figure"
        );

        let cgroup = ServerGauge::of_target(&target(Vec::new(), Some("system.slice/x")));
        assert_eq!(
            cgroup,
            ServerGauge::Cgroup("/sys/fs/cgroup/system.slice/x".into())
        );
    }

    #[test]
    fn a_cgroup_is_read_from_its_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("memory.current"), "123456789\n").unwrap();
        std::fs::write(
            dir.path().join("cpu.stat"),
            "usage_usec 2500000\nuser_usec 1\n",
        )
        .unwrap();
        let gauge = ServerGauge::Cgroup(dir.path().to_owned());
        assert_eq!(gauge.memory_each(), Some(vec![123_456_789]));
        assert_eq!(gauge.cpu_seconds(), Some(2.5));
    }
}
