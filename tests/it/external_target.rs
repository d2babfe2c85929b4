//! `pingfleet run` with a `[target]` table: no bundled server, the fleet against an EAS
//! server of someone else's, its changes put in a real mail store, and the server's
//! memory read only where the scenario names it.

use crate::eas_client::Server;
use crate::fake_eas::ForeignServer;
use crate::mail_injection::{Dovecot, PASSWORD, USERS};
use crate::run::run_scenario as run;

#[test]
fn a_target_scenario_drives_a_foreign_server_with_mail_put_in_dovecot() {
    let dovecot = Dovecot::start();
    let server = ForeignServer::plain();
    server.watch_maildirs(&dovecot.mail_root());
    let dir = tempfile::tempdir().unwrap();
    let credentials: String = USERS
        .iter()
        .map(|user| format!("{user}:{PASSWORD}:{user}@localhost\n"))
        .collect();
    std::fs::write(dir.path().join("users.txt"), credentials).unwrap();
    let scenario = format!(
        r#"name = "external"
output = "out"
[target]
url = "{url}"
credentials = "users.txt"
inject = ["imap://127.0.0.1:{port}"]
[devices]
count = 4
device_id_prefix = "lab"
[stages]
hold = "3s"
drain = "10s"
[injector]
rate = 5
[thresholds]
lost_notifications = ["count==0"]
"#,
        url = server.target_args()[1],
        port = dovecot.port,
    );
    let (code, output, result) = run(dir.path(), &scenario);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(result.engine, None);
    assert_eq!(
        result.target.as_deref(),
        Some(server.target_args()[1].as_str())
    );
    assert_eq!(result.partitions, 0);
    // Nothing named to read: not measured, not zero.
    assert_eq!(result.memory.server_bytes_per_parked, None);
    assert!(result
        .server_measured_from
        .as_deref()
        .unwrap()
        .starts_with("not measured"));
    assert!(
        output.contains("server user space not measured"),
        "{output}"
    );
    let counters = &result.fleet.counters;
    assert!(counters.notifications_sent >= 10, "{counters:?}");
    assert_eq!(
        counters.notifications_delivered,
        counters.notifications_sent
    );
    assert_eq!(counters.server_versions["16.1"], 4);
    assert_eq!(
        dovecot.all_subjects().len() as u64,
        counters.notifications_sent
    );
}

#[test]
fn a_named_server_process_has_its_memory_per_parked_connection_read() {
    let server = Server::start("lean", &[]);
    let dir = tempfile::tempdir().unwrap();
    let scenario = format!(
        r#"name = "external-pid"
output = "out"
[target]
url = "http://{http}"
server_pid = [{pid}]
[devices]
count = 50
[stages]
hold = "2s"
[injector]
rate = 0
"#,
        http = server.http,
        pid = server.pid(),
    );
    let (code, output, result) = run(dir.path(), &scenario);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(
        result.server_measured_from.as_deref(),
        Some(format!("RSS of process {}", server.pid()).as_str())
    );
    assert_eq!(result.memory.parked_at_plateau, Some(50));
    let per_parked = result.memory.server_bytes_per_parked.expect("measured");
    assert!(per_parked > 0.0, "{per_parked}");
    let names: Vec<&str> = result.timeline[0]
        .processes
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        names,
        [format!("server-pid-{}", server.pid()).as_str(), "worker-0"]
    );
    assert!(result.cpu_seconds_servers.is_some());
}
