//! The fleet settings' tests: a file and the flags read alike, defaults written once,
//! every check named.

use super::*;
use crate::fleet::heartbeat::PlanError;

/// The flags alone, parsed as `pingfleet devices` parses them.
fn flags(argv: &[&str]) -> Result<FleetConfig, clap::Error> {
    crate::argv::parse_flags(argv)
}

#[test]
fn a_file_and_the_flags_default_alike() {
    let from_file: FleetConfig = toml::from_str("").unwrap();
    assert_eq!(from_file, FleetConfig::default());
    assert_eq!(flags(&[]).unwrap(), FleetConfig::default());
}

#[test]
fn a_file_and_the_flags_read_alike() {
    let from_file: FleetConfig = toml::from_str(
        "count = 50\nheartbeat = \"90\"\nfolders = [\"calendar\"]\nprovision = true\n\
         tls_resumption = false\nconnect_rate = 20.0\nmax_bootstrapping = 8\n",
    )
    .unwrap();
    let from_flags = flags(&[
        "--devices",
        "50",
        "--heartbeat",
        "1m 30s",
        "--folder",
        "calendar",
        "--provision",
        "--no-tls-resumption",
        "--connect-rate",
        "20",
        "--max-bootstrapping",
        "8",
    ])
    .unwrap();
    assert_eq!(from_file, from_flags);
    assert_eq!(from_file.heartbeat.0, Duration::from_secs(90));
}

#[test]
fn one_check_names_the_key_and_the_flag() {
    let none = FleetConfig {
        count: 0,
        ..FleetConfig::default()
    };
    let err = none.check().unwrap_err();
    assert_eq!(err.key, "count");
    assert_eq!(
        err.for_flag(),
        "--devices: devices.count must be at least 1, e.g. count = 100 (--devices 100)"
    );
    let upside_down = FleetConfig {
        heartbeat_strategy: HeartbeatStrategy::Adaptive,
        heartbeat_min: Span::from_secs(600),
        heartbeat_max: Span::from_secs(300),
        ..FleetConfig::default()
    };
    assert_eq!(upside_down.check().unwrap_err().key, "heartbeat_strategy");
    for bound in [0, 100_001] {
        let unbounded = FleetConfig {
            max_bootstrapping: bound,
            ..FleetConfig::default()
        };
        let err = unbounded.check().unwrap_err();
        assert_eq!(
            err.for_flag(),
            "--max-bootstrapping: devices.max_bootstrapping must be 1 to 100000"
        );
    }
    assert!(FleetConfig::default().check().is_ok());
}

/// A profile entry as a file writes it.
fn entry(text: &str) -> ProfileSpec {
    toml::from_str(text).unwrap()
}

#[test]
fn an_entry_that_cannot_run_says_which_and_why() {
    let zero = entry("name = \"x\"\nweight = 0\n").check().unwrap_err();
    assert_eq!(zero, ProfileError::ZeroWeight { name: "x".into() });
    assert_eq!(zero.to_string(), "profile \"x\": weight must be at least 1");
    let upside_down = entry(
        "name = \"y\"\nheartbeat_strategy = \"adaptive\"\nheartbeat_min = \"20m\"\nheartbeat_max = \"10m\"\n",
    );
    assert!(matches!(
        upside_down.check(),
        Err(ProfileError::Heartbeat {
            error: PlanError::MinOutOfRange,
            ..
        })
    ));
    let empty = entry("name = \"z\"\nfolders = []\n").check().unwrap_err();
    assert_eq!(empty, ProfileError::NoFolders { name: "z".into() });
    assert_eq!(
        entry("name = \"ok\"\nsync_interval = \"1h\"\n").check(),
        Ok(())
    );
}
