//! The kernel's own firewall between devices and server: three network namespaces
//! (devices, router, server) joined by veth pairs, addresses from the benchmarking range
//! 198.18.0.0/15, and on the router nftables masquerade with a forward chain that lets
//! through established flows and new SYNs from the device side only. The router's
//! conntrack keeps an established TCP flow `idle timeout` seconds
//! (`nf_conntrack_tcp_timeout_established`), and with `nf_conntrack_tcp_loose = 0` a
//! packet of a forgotten flow is not picked up again: it is dropped, without a reset
//! either way, exactly as a carrier NAT drops it.
//!
//! Everything is removed when the [`Topology`] is dropped (a run's normal end, its
//! failure, Ctrl-C); namespaces left by a process that was killed are removed by the
//! next one that starts. Needs root.

use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;

/// Names of this run's namespaces start with this and the pid of the process that
/// made them.
const PREFIX: &str = "pf";
/// The device side's address, the router's two, the server's.
pub const DEVICE_ADDR: &str = "198.18.0.2";
/// More addresses of the device side, for devices to connect from in turn: from one
/// address every connect searches one nearly full ephemeral port space (at 100,000
/// devices half the machine went to the kernel's port search).
pub const DEVICE_SOURCES: std::ops::RangeInclusive<u8> = 10..=73;
const ROUTER_DEVICE_SIDE: &str = "198.18.0.1";
const ROUTER_SERVER_SIDE: &str = "198.18.1.1";
pub const SERVER_ADDR: &str = crate::tls::NETNS_SERVER_ADDR;
/// A management link from the starting namespace to the server's, outside the
/// firewall: the orchestrator reads the server's /metrics over it.
const MANAGEMENT_ROOT_SIDE: &str = "198.19.0.1";
pub const MANAGEMENT_SERVER_SIDE: &str = "198.19.0.2";

/// The device side's addresses for devices to connect from ([`DEVICE_SOURCES`]).
pub fn device_sources() -> Vec<std::net::Ipv4Addr> {
    DEVICE_SOURCES
        .map(|last| std::net::Ipv4Addr::new(198, 18, 0, last))
        .collect()
}

/// Three namespaces and the firewall between them.
#[derive(Debug)]
pub struct Topology {
    pub devices: String,
    pub router: String,
    pub server: String,
}

impl Topology {
    /// Builds the topology with an established-flow timeout of `idle_timeout` (whole
    /// seconds, rounded up, at least 1). Without root it says so.
    pub fn create(idle_timeout: Duration) -> anyhow::Result<Self> {
        if !rustix::process::geteuid().is_root() {
            anyhow::bail!("firewall mode netns needs root (network namespaces and nftables); use mode = \"proxy\" without it");
        }
        remove_stale();
        let id = format!("{PREFIX}{}", std::process::id());
        let topology = Self {
            devices: format!("{id}-dev"),
            router: format!("{id}-rtr"),
            server: format!("{id}-srv"),
        };
        // Dropped (and so removed) if any step fails.
        topology.build(idle_timeout)?;
        Ok(topology)
    }

    fn build(&self, idle_timeout: Duration) -> anyhow::Result<()> {
        self.build_links()?;
        self.build_management_link()?;
        self.build_routing(idle_timeout)
    }

    /// The three namespaces joined by veth pairs through the router, with their
    /// addresses (the devices' many sources among them).
    fn build_links(&self) -> anyhow::Result<()> {
        let (dev, rtr, srv) = (&self.devices, &self.router, &self.server);
        for ns in [dev, rtr, srv] {
            run("ip", &["netns", "add", ns])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        run(
            "ip",
            &[
                "-n", rtr, "link", "add", "dev0", "type", "veth", "peer", "name", "eth0", "netns",
                dev,
            ],
        )?;
        run(
            "ip",
            &[
                "-n", rtr, "link", "add", "srv0", "type", "veth", "peer", "name", "eth0", "netns",
                srv,
            ],
        )?;
        for (ns, link, addr) in [
            (dev, "eth0", DEVICE_ADDR),
            (rtr, "dev0", ROUTER_DEVICE_SIDE),
            (rtr, "srv0", ROUTER_SERVER_SIDE),
            (srv, "eth0", SERVER_ADDR),
        ] {
            run(
                "ip",
                &["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", link],
            )?;
            run("ip", &["-n", ns, "link", "set", link, "up"])?;
        }
        for source in device_sources() {
            let addr = format!("{source}/24");
            run("ip", &["-n", dev, "addr", "add", &addr, "dev", "eth0"])?;
        }
        Ok(())
    }

    /// The link from the root namespace to the server's, outside the firewall, that
    /// `/metrics` is read over.
    fn build_management_link(&self) -> anyhow::Result<()> {
        let srv = &self.server;
        let management = format!("{}m", self.server.trim_end_matches("-srv"));
        let root_side = format!("{MANAGEMENT_ROOT_SIDE}/30");
        let server_side = format!("{MANAGEMENT_SERVER_SIDE}/30");
        let veth = [
            "link",
            "add",
            &management,
            "type",
            "veth",
            "peer",
            "name",
            "mgmt0",
        ];
        run("ip", &[&veth[..], &["netns", srv]].concat())?;
        run("ip", &["addr", "add", &root_side, "dev", &management])?;
        run("ip", &["link", "set", &management, "up"])?;
        run(
            "ip",
            &["-n", srv, "addr", "add", &server_side, "dev", "mgmt0"],
        )?;
        run("ip", &["-n", srv, "link", "set", "mgmt0", "up"])?;
        Ok(())
    }

    /// Routes through the router, forwarding, conntrack's idle timeout and the
    /// nftables rules that drop a forgotten flow's packets.
    fn build_routing(&self, idle_timeout: Duration) -> anyhow::Result<()> {
        let (dev, rtr, srv) = (&self.devices, &self.router, &self.server);
        run(
            "ip",
            &[
                "-n",
                dev,
                "route",
                "add",
                "default",
                "via",
                ROUTER_DEVICE_SIDE,
            ],
        )?;
        run(
            "ip",
            &[
                "-n",
                srv,
                "route",
                "add",
                "default",
                "via",
                ROUTER_SERVER_SIDE,
            ],
        )?;
        let seconds = idle_timeout.as_secs_f64().ceil().max(1.0) as u64;
        run(
            "ip",
            &[
                "netns",
                "exec",
                rtr,
                "sysctl",
                "-q",
                "-w",
                "net.ipv4.ip_forward=1",
                &format!("net.netfilter.nf_conntrack_tcp_timeout_established={seconds}"),
                "net.netfilter.nf_conntrack_tcp_loose=0",
            ],
        )?;
        let rules = tempfile::NamedTempFile::new()?;
        std::fs::write(rules.path(), NFT_RULES)?;
        run(
            "ip",
            &[
                "netns",
                "exec",
                rtr,
                "nft",
                "-f",
                &rules.path().display().to_string(),
            ],
        )?;
        Ok(())
    }

    /// `ip netns exec NS`: what runs a command inside namespace `ns`.
    pub fn exec_in(ns: &str) -> Vec<String> {
        ["ip", "netns", "exec", ns].map(str::to_owned).to_vec()
    }

    /// Forgets every flow at once (`conntrack -F` on the router): a NAT flushed.
    pub fn flush(&self) -> anyhow::Result<()> {
        run("ip", &["netns", "exec", &self.router, "conntrack", "-F"])
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.devices, &self.router, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// The router's rules: masquerade toward the server, forward only established flows
/// and new connections from the device side (TCP SYNs, UDP notifications).
const NFT_RULES: &str = r#"table inet pingfleet {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "dev0" ct state new tcp flags & (fin|syn|rst|ack) == syn accept
    iifname "dev0" ct state new meta l4proto udp accept
  }
  chain postrouting {
    type nat hook postrouting priority 100;
    oifname "srv0" masquerade
  }
}
"#;

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program} (install iproute2, nftables, conntrack)"))?;
    if !output.status.success() {
        anyhow::bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Removes namespaces a killed run left (`pf<pid>-...` whose pid is gone).
fn remove_stale() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}
