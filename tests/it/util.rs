//! Shared fixtures: the protocol document's worked examples shipped in `tests/vectors/`,
//! and a `pingfleet devices` worker run to its document.

use std::path::{Path, PathBuf};

/// Every worked hex example of the protocol document, by file stem.
pub(crate) const VECTORS: &[&str] = &[
    "ping-request",
    "ping-response-status1",
    "ping-response-status2",
    "ping-response-status5",
    "foldersync-request",
    "foldersync-response",
    "sync-request-initial",
    "sync-request",
    "sync-response",
    "provision-request-phase1",
];

pub(crate) fn vector_path(name: &str, extension: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(format!("{name}.{extension}"))
}

/// The bytes of a vector's hex dump.
pub(crate) fn vector_bytes(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(vector_path(name, "hex")).expect("vector file");
    pingfleet::eas::hex::parse(&text).expect("vector hex")
}

/// The XML `pingfleet wbxml decode` must print for a vector.
pub(crate) fn vector_xml(name: &str) -> String {
    std::fs::read_to_string(vector_path(name, "xml")).expect("vector xml")
}

/// Removes `xmlns="...:"` declarations, to compare with XML written without namespaces.
pub(crate) fn strip_namespaces(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find(" xmlns=\"") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 8..];
        rest = after.find('"').map_or("", |end| &after[end + 1..]);
    }
    out.push_str(rest);
    out
}

/// Asserts that a worker sent at least `at_least` notifications and that every one was
/// delivered and none lost (`what` names the case in the failure).
pub(crate) fn assert_every_notification_delivered(
    counters: &pingfleet::fleet::stats::Counters,
    at_least: u64,
    what: &str,
) {
    assert!(
        counters.notifications_sent >= at_least,
        "{what}: {counters:?}"
    );
    assert_eq!(counters.notifications_lost, 0, "{what}: {counters:?}");
    assert_eq!(
        counters.notifications_delivered, counters.notifications_sent,
        "{what}"
    );
}

/// Runs `pingfleet devices` (under `wrapper`, e.g. `ip netns exec NS`, when given) against
/// `server` with `flags` besides its target and notification address, and returns the
/// worker's document (written into `dir`) once it exits successfully.
pub(crate) fn devices_report(
    wrapper: &[String],
    server: &pingfleet::server::process::ServerHandle,
    flags: &[&str],
    dir: &std::path::Path,
) -> pingfleet::fleet::report::WorkerReport {
    let exe = env!("CARGO_BIN_EXE_pingfleet").to_owned();
    let argv: Vec<String> = wrapper.iter().cloned().chain([exe]).collect();
    let output = dir.join("worker.json");
    let result = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .arg("devices")
        .args(["--target", &format!("http://{}", server.http())])
        .args(["--notify", &server.notify().to_string()])
        .args(flags)
        .arg("--output")
        .arg(&output)
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(result.status.success(), "{result:?}");
    serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap()
}

/// The machine, shared among tests that run at once: a test that keeps it busy for tens
/// of seconds (whole runs, a browser) holds it for reading; a test whose figures need it
/// quiet (the packet capture's, compared within 10%) holds it for writing, so it never
/// runs beside them.
pub(crate) static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Holds the machine beside other busy tests.
pub(crate) fn busy_machine() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Holds the machine alone among the busy tests.
pub(crate) fn quiet_machine() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The result file a run printed on its `results: ` line (under `dir`), checked against
/// `schemas/<schema>` and read.
pub(crate) fn checked_result<T: serde::de::DeserializeOwned>(
    dir: &Path,
    printed: &str,
    schema: &str,
) -> T {
    let path = printed
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("results: "))
        .unwrap_or_else(|| panic!("no results line: {printed}"));
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(path)).unwrap()).unwrap();
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(schema);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    serde_json::from_value(value).unwrap()
}

/// Held by every test that builds network namespaces: a process names its namespaces
/// and its management link by its pid, so one test's path at a time.
pub(crate) static NAMESPACES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes [`NAMESPACES`] (a test that failed while holding it does not poison the rest).
pub(crate) fn namespaces_lock() -> std::sync::MutexGuard<'static, ()> {
    NAMESPACES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
