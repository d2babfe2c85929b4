//! The path between devices and server in network namespaces: the devices' and the
//! server's namespaces, and between them the link emulator's (a TUN every TCP packet
//! crosses, read by `pingfleet link`), the kernel's own firewall, or both, joined by
//! veth pairs, addresses from the benchmarking range 198.18.0.0/15.
//!
//! The firewall is nftables masquerade on a router with a forward chain that lets
//! through established flows and new SYNs from the device side only. Its conntrack
//! keeps an established TCP flow `idle timeout` seconds
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

/// What stands between the devices and the server: a link namespace whose TUN the
/// link emulator (`pingfleet link`) reads, the kernel's firewall, or both (the link
/// nearer the devices, as a phone's radio is nearer it than the carrier's NAT).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Path {
    /// The established-flow timeout of the firewall, when there is one.
    pub firewall: Option<Duration>,
    /// How many network profiles the link emulates (0: no link namespace); each has
    /// its subnet of device addresses ([`network_subnet`]).
    pub networks: usize,
}

/// The namespaces and what joins them.
#[derive(Debug)]
pub struct Topology {
    pub devices: String,
    /// The link emulator's namespace, when the path has one.
    pub link: Option<String>,
    /// The firewall's namespace, when the path has one.
    pub router: Option<String>,
    pub server: String,
}

/// The TUN device in the link namespace that every TCP packet between devices and
/// server crosses (`pingfleet link --tun`).
pub const LINK_TUN: &str = "pflink0";
/// Packets the kernel holds for the emulator to read (the TUN's `txqueuelen`).
const TUN_QUEUE: &str = "65536";
/// The subnet between the link and the firewall when the path has both.
const LINK_ROUTER_NET: [&str; 2] = ["198.18.2.1", "198.18.2.2"];
/// Where the networks' device subnets start (198.18.16.0/24, 198.18.17.0/24, ...).
const FIRST_NETWORK_OCTET: u8 = 16;
/// Every network subnet together, as the routes back to the devices name them.
const NETWORK_SUBNETS: &str = "198.18.16.0/20";

/// The device addresses of network profile `index` (its link's route claims them).
pub fn network_subnet(index: usize) -> String {
    format!("198.18.{}.0/24", usize::from(FIRST_NETWORK_OCTET) + index)
}

/// The addresses devices of network profile `index` connect from, in turn.
pub fn network_sources(index: usize) -> Vec<std::net::Ipv4Addr> {
    let third = FIRST_NETWORK_OCTET + index as u8;
    DEVICE_SOURCES
        .map(|last| std::net::Ipv4Addr::new(198, 18, third, last))
        .collect()
}

impl Topology {
    /// Builds the namespaces of `path` (a firewall needs a timeout of at least 1 s,
    /// rounded up to whole seconds). Without root it says so.
    pub fn create(path: Path) -> anyhow::Result<Self> {
        if !rustix::process::geteuid().is_root() {
            anyhow::bail!("network namespaces need root (firewall mode netns, network profiles); run as root, or use firewall mode \"proxy\" without networks");
        }
        if path.networks > 16 {
            anyhow::bail!(
                "at most 16 network profiles in one run ({} named)",
                path.networks
            );
        }
        remove_stale();
        let id = format!("{PREFIX}{}", std::process::id());
        let topology = Self {
            devices: format!("{id}-dev"),
            link: (path.networks > 0).then(|| format!("{id}-lnk")),
            router: path.firewall.map(|_| format!("{id}-rtr")),
            server: format!("{id}-srv"),
        };
        // Dropped (and so removed) if any step fails.
        topology.build(path)?;
        Ok(topology)
    }

    /// The firewall alone, with an established-flow timeout of `idle_timeout`.
    pub fn firewall(idle_timeout: Duration) -> anyhow::Result<Self> {
        Self::create(Path {
            firewall: Some(idle_timeout),
            networks: 0,
        })
    }

    fn build(&self, path: Path) -> anyhow::Result<()> {
        self.build_links(path.networks)?;
        self.build_management_link()?;
        if let Some(link) = &self.link {
            build_link_hop(link, self.router.is_some())?;
        }
        if let (Some(router), Some(timeout)) = (&self.router, path.firewall) {
            build_router_hop(router, self.link.is_some(), timeout)?;
        }
        route_add(&self.devices, &["default", "via", ROUTER_DEVICE_SIDE])?;
        route_add(&self.server, &["default", "via", ROUTER_SERVER_SIDE])
    }

    /// The hops between devices and server, nearest the devices first.
    fn hops(&self) -> Vec<&String> {
        self.link.iter().chain(self.router.iter()).collect()
    }

    /// The namespaces joined by veth pairs through the hops, with their addresses (the
    /// devices' many sources among them). The first hop's device side is always
    /// 198.18.0.1 and the last hop's server side 198.18.1.1.
    fn build_links(&self, networks: usize) -> anyhow::Result<()> {
        let (dev, srv) = (&self.devices, &self.server);
        let hops = self.hops();
        for ns in [dev, srv].into_iter().chain(hops.iter().copied()) {
            run("ip", &["netns", "add", ns])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        let (first, last) = (hops[0], hops[hops.len() - 1]);
        veth(first, "dev0", dev, "eth0")?;
        veth(last, "srv0", srv, "eth0")?;
        address(dev, "eth0", DEVICE_ADDR)?;
        address(first, "dev0", ROUTER_DEVICE_SIDE)?;
        address(last, "srv0", ROUTER_SERVER_SIDE)?;
        address(srv, "eth0", SERVER_ADDR)?;
        if let [link, router] = hops[..] {
            veth(link, "srv0", router, "dev0")?;
            address(link, "srv0", LINK_ROUTER_NET[0])?;
            address(router, "dev0", LINK_ROUTER_NET[1])?;
        }
        let sources = device_sources()
            .into_iter()
            .chain((0..networks).flat_map(network_sources));
        for source in sources {
            let addr = format!("{source}/24");
            run("ip", &["-n", dev, "addr", "add", &addr, "dev", "eth0"])?;
        }
        Ok(())
    }

    /// The link from the root namespace to the server's, outside the path, that
    /// `/metrics` is read over.
    fn build_management_link(&self) -> anyhow::Result<()> {
        let srv = &self.server;
        let management = self.management_link();
        let root_side = format!("{MANAGEMENT_ROOT_SIDE}/30");
        let server_side = format!("{MANAGEMENT_SERVER_SIDE}/30");
        run(
            "ip",
            &[
                "link",
                "add",
                &management,
                "type",
                "veth",
                "peer",
                "name",
                "mgmt0",
                "netns",
                srv,
            ],
        )?;
        run("ip", &["addr", "add", &root_side, "dev", &management])?;
        run("ip", &["link", "set", &management, "up"])?;
        run(
            "ip",
            &["-n", srv, "addr", "add", &server_side, "dev", "mgmt0"],
        )?;
        run("ip", &["-n", srv, "link", "set", "mgmt0", "up"])?;
        Ok(())
    }

    /// The management link's name in the starting namespace.
    fn management_link(&self) -> String {
        format!("{}m", self.server.trim_end_matches("-srv"))
    }

    /// `ip netns exec NS`: what runs a command inside namespace `ns`.
    pub fn exec_in(ns: &str) -> Vec<String> {
        ["ip", "netns", "exec", ns].map(str::to_owned).to_vec()
    }

    /// Forgets every flow at once (`conntrack -F` on the router): a NAT flushed.
    pub fn flush(&self) -> anyhow::Result<()> {
        let Some(router) = &self.router else {
            anyhow::bail!("the path has no firewall to flush");
        };
        run("ip", &["netns", "exec", router, "conntrack", "-F"])
    }
}

/// The link namespace: forwarding, and every TCP packet that arrives from either side
/// routed into [`LINK_TUN`], whose reader (the emulator) writes it back after its
/// delay; a packet written back arrives from the TUN and takes the main table on.
fn build_link_hop(link: &str, before_router: bool) -> anyhow::Result<()> {
    run(
        "ip",
        &["-n", link, "tuntap", "add", "dev", LINK_TUN, "mode", "tun"],
    )?;
    // The kernel queues packets for the emulator to read up to this many; a ramp's
    // burst beyond the default 500 was dropped before the emulator saw it (SYNs
    // resent a second later).
    run(
        "ip",
        &[
            "-n",
            link,
            "link",
            "set",
            LINK_TUN,
            "txqueuelen",
            TUN_QUEUE,
            "up",
        ],
    )?;
    sysctl(
        link,
        &[
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ],
    )?;
    for iface in ["dev0", "srv0", LINK_TUN] {
        sysctl(link, &[&format!("net.ipv4.conf.{iface}.rp_filter=0")])?;
    }
    for (iface, pref) in [("dev0", "100"), ("srv0", "101")] {
        run(
            "ip",
            &[
                "-n", link, "rule", "add", "iif", iface, "ipproto", "tcp", "lookup", "100", "pref",
                pref,
            ],
        )?;
    }
    route_add(link, &["default", "dev", LINK_TUN, "table", "100"])?;
    route_add(link, &[NETWORK_SUBNETS, "via", DEVICE_ADDR])?;
    if before_router {
        route_add(link, &["default", "via", LINK_ROUTER_NET[1]])?;
    }
    Ok(())
}

/// The firewall's namespace: forwarding, conntrack's idle timeout, and the nftables
/// rules that drop a forgotten flow's packets. Behind a link, the devices are one hop
/// further and routed through it.
fn build_router_hop(router: &str, behind_link: bool, idle_timeout: Duration) -> anyhow::Result<()> {
    if behind_link {
        for subnet in ["198.18.0.0/24", NETWORK_SUBNETS] {
            route_add(router, &[subnet, "via", LINK_ROUTER_NET[0]])?;
        }
    }
    let seconds = idle_timeout.as_secs_f64().ceil().max(1.0) as u64;
    sysctl(
        router,
        &[
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
            router,
            "nft",
            "-f",
            &rules.path().display().to_string(),
        ],
    )
}

/// `ip -n NS route add ROUTE...`: a route in namespace `ns`.
fn route_add(ns: &str, route: &[&str]) -> anyhow::Result<()> {
    run("ip", &[&["-n", ns, "route", "add"], route].concat())
}

/// A veth pair: `a_name` in namespace `a`, `b_name` in `b`.
fn veth(a: &str, a_name: &str, b: &str, b_name: &str) -> anyhow::Result<()> {
    run(
        "ip",
        &[
            "-n", a, "link", "add", a_name, "type", "veth", "peer", "name", b_name, "netns", b,
        ],
    )
}

/// `addr/24` on `link` in `ns`, and the link up.
fn address(ns: &str, link: &str, addr: &str) -> anyhow::Result<()> {
    run(
        "ip",
        &["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", link],
    )?;
    run("ip", &["-n", ns, "link", "set", link, "up"])
}

fn sysctl(ns: &str, settings: &[&str]) -> anyhow::Result<()> {
    let mut args = vec!["netns", "exec", ns, "sysctl", "-q", "-w"];
    args.extend_from_slice(settings);
    run("ip", &args)
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Removed at once: a namespace's own links go with it only some time later,
        // and the next path of this process would find the name taken.
        let _ = Command::new("ip")
            .args(["link", "del", &self.management_link()])
            .output();
        let hops = self.link.iter().chain(self.router.iter());
        for ns in [&self.devices, &self.server].into_iter().chain(hops) {
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
