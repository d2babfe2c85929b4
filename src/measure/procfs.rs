//! Readings from Linux `/proc`: resident and proportional memory of a process, CPU time,
//! the kernel's drop counter of a UDP socket, slab and socket counters.

/// The resident set size of a process in bytes (`VmRSS` of `/proc/PID/status`), or of
/// this process when `pid` is `None`.
pub fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    parse_vm_rss(&std::fs::read_to_string(path).ok()?)
}

/// The proportional set size of a process in bytes (`Pss:` of `/proc/PID/smaps_rollup`):
/// its resident pages, each shared one divided by the processes sharing it, so the
/// figures of a master and its workers add up to what they hold together.
pub fn pss_bytes(pid: u32) -> Option<u64> {
    parse_pss(&std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?)
}

fn parse_pss(rollup: &str) -> Option<u64> {
    let line = rollup.lines().find(|line| line.starts_with("Pss:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Datagrams the kernel dropped on the UDP socket bound to `port` (IPv4 or IPv6), from
/// the last column of `/proc/net/udp`.
pub fn udp_drops(port: u16) -> Option<u64> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .find_map(|table| parse_udp_drops(&table, port))
}

fn parse_udp_drops(table: &str, port: u16) -> Option<u64> {
    let wanted = format!(":{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local = fields.get(1)?;
        if local.ends_with(&wanted) {
            fields.last()?.parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        assert_eq!(
            parse_vm_rss("Name:\tx\nVmRSS:\t  2048 kB\n"),
            Some(2 * 1024 * 1024)
        );
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(rss_bytes(None).is_some_and(|rss| rss > 0));
    }

    #[test]
    fn reads_pss_from_smaps_rollup() {
        let rollup = "55d0c000-7ffd0000 ---p 00000000 00:00 0  [rollup]\n\
                      Rss:                3072 kB\n\
                      Pss:                1234 kB\n\
                      Pss_Anon:            512 kB\n";
        assert_eq!(parse_pss(rollup), Some(1234 * 1024));
        assert_eq!(parse_pss("Rss: 3 kB\n"), None);
        assert!(pss_bytes(std::process::id()).is_some_and(|pss| pss > 0));
    }

    #[test]
    fn reads_udp_drops_for_a_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                     1: 0100007F:0B43 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1234 2 0000000000000000 17\n";
        assert_eq!(parse_udp_drops(table, 2883), Some(17));
        assert_eq!(parse_udp_drops(table, 2884), None);
    }
}

/// CPU time (user + system) a process has used, in seconds, from `/proc/PID/stat`
/// (clock ticks of 1/100 s, Linux's USER_HZ).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    parse_cpu_seconds(&std::fs::read_to_string(path).ok()?)
}

fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name may hold spaces; the fields after its closing parenthesis are
    // state (3), ..., utime (14), stime (15).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((user + system) as f64 / 100.0)
}

#[cfg(test)]
mod cpu_tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks() {
        let stat = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
        assert_eq!(parse_cpu_seconds(stat), Some(3.0));
        assert!(cpu_seconds(None).is_some());
    }
}

/// The kernel's slab memory in bytes (`Slab:` of `/proc/meminfo`): where socket, inode
/// and connection-tracking objects live.
pub fn kernel_slab_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo_kib(&meminfo, "Slab:").map(|kib| kib * 1024)
}

/// Memory the kernel says it can give new work without swapping (`MemAvailable:`).
pub fn memory_available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo_kib(&meminfo, "MemAvailable:").map(|kib| kib * 1024)
}

fn parse_meminfo_kib(meminfo: &str, key: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod slab_tests {
    use super::*;

    #[test]
    fn reads_slab_from_meminfo() {
        assert_eq!(
            parse_meminfo_kib("MemTotal: 10 kB\nSlab:   2048 kB\n", "Slab:"),
            Some(2048)
        );
        assert!(kernel_slab_bytes().is_some_and(|bytes| bytes > 0));
    }
}

/// The kernel's TCP socket counters of `/proc/net/sockstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct TcpSockstat {
    /// TCP sockets in use (every open connection end and listener).
    pub in_use: u64,
    /// Memory the kernel accounts to TCP socket buffers, in bytes (pages of 4 KiB).
    pub buffer_bytes: u64,
}

/// The machine's TCP socket counters.
pub fn tcp_sockstat() -> Option<TcpSockstat> {
    parse_tcp_sockstat(&std::fs::read_to_string("/proc/net/sockstat").ok()?)
}

fn parse_tcp_sockstat(sockstat: &str) -> Option<TcpSockstat> {
    let fields: Vec<&str> = sockstat
        .lines()
        .find(|line| line.starts_with("TCP:"))?
        .split_whitespace()
        .collect();
    let value = |key: &str| -> Option<u64> {
        let at = fields.iter().position(|field| *field == key)?;
        fields.get(at + 1)?.parse().ok()
    };
    Some(TcpSockstat {
        in_use: value("inuse")?,
        buffer_bytes: value("mem")? * 4096,
    })
}

#[cfg(test)]
mod sockstat_tests {
    use super::*;

    #[test]
    fn reads_tcp_sockstat() {
        let text =
            "sockets: used 9\nTCP: inuse 12 orphan 0 tw 3 alloc 14 mem 5\nUDP: inuse 0 mem 0\n";
        assert_eq!(
            parse_tcp_sockstat(text),
            Some(TcpSockstat {
                in_use: 12,
                buffer_bytes: 5 * 4096
            })
        );
        assert_eq!(parse_tcp_sockstat("UDP: inuse 0 mem 0\n"), None);
    }
}

/// The machine's CPU time from the first line of `/proc/stat`, in clock ticks: (busy,
/// total), busy being everything but idle and iowait.
pub fn machine_cpu_ticks() -> Option<(u64, u64)> {
    parse_machine_cpu_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn parse_machine_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((total - idle, total))
}

#[cfg(test)]
mod machine_cpu_tests {
    use super::*;

    #[test]
    fn reads_busy_and_total_ticks() {
        let stat = "cpu  100 5 50 800 10 0 5 30 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_machine_cpu_ticks(stat), Some((190, 1000)));
        assert_eq!(parse_machine_cpu_ticks("intr 1 2\n"), None);
        assert!(machine_cpu_ticks().is_some_and(|(busy, total)| busy <= total));
    }
}
