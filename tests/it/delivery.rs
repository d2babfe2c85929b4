//! Push, scheduled sync and SMS against the bundled server, as `pingfleet run` runs
//! `[[variants]]`: three real runs of one fleet and one stream of mail, compressed,
//! then the side-by-side result file checked against its schema, each variant's
//! accounting and costs read back, and its page opened in headless Chromium.

use std::path::Path;
use std::process::Command;

use pingfleet::fleet::histogram::HistogramName;
use pingfleet::results::variants::VariantsResult;

const MODES: &str = r#"name = "modes"
seed = 9
time_scale = 60
output = "out"
report = true
[server]
engine = "lean"
tls = true
partitions = 1
min_heartbeat = "1m"
[devices]
count = 60
workers = 1
heartbeat = "4m"
[stages]
ramp_timeout = "20s"
hold = "6m"
drain = "6m"
[injector]
pattern = "poisson"
per_user_per_hour = 20
[[variants]]
name = "push"
[[variants]]
name = "sync-5m"
[variants.devices]
delivery = "scheduled"
sync_interval = "5m"
[[variants]]
name = "sms"
[variants.devices]
delivery = "sms"
sms_loss = "0%"
"#;

/// The result file, read and checked against `schemas/variants.schema.json`.
fn the_variants_result(dir: &Path, printed: &str) -> VariantsResult {
    crate::util::checked_result(dir, printed, "variants.schema.json")
}

#[test]
fn push_scheduled_and_sms_runs_side_by_side_with_their_costs() {
    let _busy = crate::util::busy_machine();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("modes.toml");
    std::fs::write(&file, MODES).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .current_dir(dir.path())
        .args(["run", file.to_str().unwrap()])
        .output()
        .unwrap();
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(printed.contains("mail ok/late/lost"), "{printed}");
    let result = the_variants_result(dir.path(), &printed);
    let names: Vec<&str> = result.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["push", "sync-5m", "sms"]);
    let figure = |variant: usize, key: &str| {
        result.variants[variant].figures[key].unwrap_or_else(|| panic!("{key} not measured"))
    };
    for variant in &result.variants {
        assert!(variant.complete, "{:?}", variant.failures);
        // The same mail in every variant, every mail accounted for.
        assert_eq!(variant.mail_planned, result.variants[0].mail_planned);
        assert!(variant.mail_planned > 20, "{}", variant.mail_planned);
        assert!(variant.closes, "{variant:?}");
        assert_eq!(variant.mail_lost, 0, "{variant:?}");
    }
    // Push brings mail in well under a second; a 5-minute schedule takes minutes on
    // average (real-world time), SMS its gateway's seconds.
    assert!(figure(0, "mail_p50_s") < 1.0, "{result:?}");
    assert!(figure(1, "mail_p50_s") > 30.0, "{result:?}");
    assert!(figure(2, "mail_p50_s") > 1.0, "{result:?}");
    // Only the SMS variant sends texts; every variant's radio spent something.
    assert_eq!(figure(0, "sms"), 0.0);
    assert!(figure(2, "sms") > 0.0);
    for variant in 0..3 {
        assert!(figure(variant, "joules") > 0.0);
        assert!(figure(variant, "data_sessions") > 0.0);
    }
    // A sync every 5 minutes opens a connection each time; push keeps its own.
    assert!(figure(1, "connections") > 10.0 * figure(0, "connections").max(0.1));
    assert_eq!(
        result.variants[1].ratios["connections"].is_some(),
        figure(0, "connections") > 0.0
    );
    // The page of the variants opens in a browser with its plots and the file's figures.
    let page = printed
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("report: "))
        .unwrap_or_else(|| panic!("no report line: {printed}"));
    let seen = crate::report::open_in_browser(&dir.path().join(page));
    for (index, variant) in result.variants.iter().enumerate() {
        let shown = crate::report::figure(&seen, &format!("variants.{}.joules", variant.name));
        assert!((shown - figure(index, "joules")).abs() < 1e-6 * shown.max(1.0));
    }
    // Each variant's own run is there, with its own summary, and beside its measured
    // mail on device the modelled one with the radio's paging and promotion, never
    // below it (every delivery waits for the radio or finds it up).
    for variant in &result.variants {
        let file = variant.result_file.as_ref().unwrap();
        assert!(dir.path().join(file).exists(), "{file}");
        let Ok(pingfleet::results::Document::Run(run)) =
            pingfleet::results::read(&dir.path().join(file))
        else {
            panic!("{file} is no run's result");
        };
        let measured = run.summary_of(HistogramName::MailOnDeviceWorld).unwrap();
        let modelled = run
            .summary_of(HistogramName::MailOnDeviceWithRadio)
            .unwrap_or_else(|| panic!("{}: no modelled mail on device", variant.name));
        assert_eq!(modelled.count, measured.count, "{}", variant.name);
        assert!(modelled.p50_us >= measured.p50_us, "{}", variant.name);
        assert!(modelled.max_us >= measured.max_us, "{}", variant.name);
    }
    // Push's mail finds an idle radio most of the time at this rate (a mail every 3
    // minutes against an 11.8 s tail): its modelled p50 carries a promotion at least.
    let push_run = |key: HistogramName| {
        let file = result.variants[0].result_file.as_ref().unwrap();
        let Ok(pingfleet::results::Document::Run(run)) =
            pingfleet::results::read(&dir.path().join(file))
        else {
            panic!("no run");
        };
        run.summary_of(key).unwrap().p50_us
    };
    let added =
        push_run(HistogramName::MailOnDeviceWithRadio) - push_run(HistogramName::MailOnDeviceWorld);
    assert!(added >= 250_000, "{added} us added at p50");
    // The SMS variant says what 1% and 5% gateway losses would do, modelled.
    assert_eq!(result.variants[2].sms_at_loss_modelled.len(), 2);
    assert!(result.variants[0].sms_at_loss_modelled.is_empty());
    assert!(
        printed.contains("sms at other gateway losses (modelled"),
        "{printed}"
    );
}
