//! The kernel's own firewall (network namespaces, nftables, conntrack; needs root, as
//! CI runs): a parked Ping whose flow the router forgot is found dead only at the
//! device's deadline, never by a reset, and its mail arrives late, not lost; a
//! heartbeat within the timeout loses nothing and is never late.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use pingfleet::firewall::netns::{Topology, SERVER_ADDR};
use pingfleet::fleet::report::WorkerReport;
use pingfleet::server::launch::ServeArgs;
use pingfleet::server::process::ServerHandle;

const EXE: &str = env!("CARGO_BIN_EXE_pingfleet");

/// 3 devices in the device namespace with heartbeat `heartbeat`, injecting at 0.5/s
/// for 15 s (rarely enough that flows go idle between notifications).
fn devices(topology: &Topology, server: &ServerHandle, heartbeat: &str) -> WorkerReport {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--devices",
        "3",
        "--heartbeat",
        heartbeat,
        "--duration",
        "15s",
        "--rate",
        "0.5",
        "--drain",
        "20s",
        // Pings that die behind the firewall are errors on purpose; mail must not be
        // lost.
        "--threshold",
        "lost_notifications:count==0",
    ];
    let wrapper = Topology::exec_in(&topology.devices);
    crate::util::devices_report(&wrapper, server, &flags, dir.path())
}

#[test]
fn the_kernels_firewall_drops_idle_flows_silently() {
    let _namespaces = crate::util::namespaces_lock();
    let topology = Topology::firewall(Duration::from_secs(2))
        .unwrap_or_else(|err| panic!("{err:#} (CI runs as root; install nftables, conntrack)"));
    let listen = format!("{SERVER_ADDR}:0");
    let argv: Vec<String> = [
        "serve",
        "--listen",
        &listen,
        "--notify",
        &listen,
        "--users",
        "10",
        "--min-heartbeat",
        "1",
    ]
    .map(str::to_owned)
    .to_vec();
    let args: ServeArgs = pingfleet::argv::parse(&argv).unwrap();
    let mut server = ServerHandle::spawn_within(
        &Topology::exec_in(&topology.server),
        Path::new(EXE),
        &args,
        Stdio::inherit(),
        Duration::from_secs(30),
    )
    .unwrap();

    // Heartbeat 4 s past a 2 s conntrack timeout: every parked Ping dies, and the
    // device learns it only at its deadline (4 s + 5 s): no reset reaches it.
    let behind = devices(&topology, &server, "4");
    let counters = &behind.counters;
    assert!(counters.pings_died["deadline"] >= 3, "{counters:?}");
    assert!(!counters.pings_died.contains_key("reset"), "{counters:?}");
    assert!(counters.notifications_late > 0, "{counters:?}");
    assert_eq!(counters.notifications_lost, 0);
    assert_eq!(
        counters.notifications_on_time + counters.notifications_late,
        counters.notifications_sent
    );
    let unreachable = &behind.histograms["unreachable_us"].summary;
    assert!(unreachable.p50_us >= 9_000_000, "{unreachable:?}");

    // Heartbeat 1 s: the flows never idle long enough.
    let within = devices(&topology, &server, "1");
    let counters = &within.counters;
    assert!(counters.pings_died.is_empty(), "{counters:?}");
    assert_eq!(counters.notifications_on_time, counters.notifications_sent);
    assert!(counters.notifications_sent > 0);
    server.terminate(Duration::from_secs(5));
    drop(topology);
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let pid = std::process::id().to_string();
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&format!("pf{pid}-")),
        "the namespaces are gone"
    );
}

/// A scenario putting the kernel's firewall before two partitions.
const NETNS_SCENARIO: &str = r#"name = "netns-run"
output = "out"
[server]
partitions = 2
min_heartbeat = "1s"
[devices]
count = 20
heartbeat = "4s"
[stages]
hold = "12s"
drain = "20s"
[injector]
pattern = "fixed"
rate = 1
[firewall]
mode = "netns"
idle_timeout = "2s"
"#;

#[test]
fn a_run_behind_the_kernels_firewall_reports_late_mail_and_leaves_no_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("netns.toml");
    std::fs::write(&scenario, NETNS_SCENARIO).unwrap();
    let child = Command::new(EXE)
        .current_dir(dir.path())
        .arg("run")
        .arg(&scenario)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let run_pid = child.id();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let path = crate::run::the_result_file(dir.path());
    crate::run::assert_matches_the_schema(&path);
    let result: pingfleet::results::run::RunResult =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let network = result.network.unwrap();
    assert!(network.pings_died_by_deadline >= 20, "{network:?}");
    assert_eq!(network.pings_died_by_reset, 0);
    assert!(network.late > 0 && network.lost == 0, "{network:?}");
    assert!(network.accounting_closes);
    assert!(
        stdout.contains("kernel firewall (network namespaces"),
        "{stdout}"
    );
    // The run made its namespaces under its own pid, and removed them.
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout);
    assert!(!left.contains(&format!("pf{run_pid}-")), "{left}");
}

#[test]
fn without_root_the_netns_mode_says_so_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("netns.toml");
    std::fs::write(&scenario, NETNS_SCENARIO).unwrap();
    // A copy of the binary where nobody can run it (the checkout may sit under a
    // directory only root enters), in a directory nobody can write.
    let exe = dir.path().join("pingfleet");
    std::fs::copy(EXE, &exe).unwrap();
    Command::new("chmod")
        .args(["-R", "a+rwx"])
        .arg(dir.path())
        .status()
        .unwrap();
    let output = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(&exe)
        .arg("run")
        .arg(&scenario)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("network namespaces need root (firewall mode netns"),
        "{stderr}"
    );
}
