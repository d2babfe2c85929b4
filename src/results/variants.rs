//! A variants result file (schema `pingfleet.variants/1`): each variant's mail and what
//! it cost, every figure beside its ratio to the first variant, and the columns of the
//! table they are shown in. (`orchestrator::variants` runs the variants.)

use std::collections::BTreeMap;

use crate::fleet::histogram::HistogramName;
use crate::results::run::{DeviceHourCost, RunResult};

/// The `schema` of a variants result file.
pub const SCHEMA: &str = "pingfleet.variants/1";

/// What one variant measured.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct VariantResult {
    pub name: String,
    /// The variant's own result file.
    pub result_file: Option<String>,
    pub complete: bool,
    pub failures: Vec<String>,
    /// Every threshold of the scenario held in this variant's run.
    pub passed: bool,
    pub devices: usize,
    /// Mail planned, and what became of it: on time, late (after a Ping died or a
    /// text was lost), lost; `closes` when every planned mail is one of them.
    pub mail_planned: u64,
    pub mail_on_time: u64,
    pub mail_late: u64,
    pub mail_lost: u64,
    pub closes: bool,
    /// Each column of the table (see [`COLUMNS`]): its figure, and its ratio to the
    /// first variant's (`null` when either is not measured or the first is 0).
    pub figures: BTreeMap<String, Option<f64>>,
    pub ratios: BTreeMap<String, Option<f64>>,
}

/// A variants result file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct VariantsResult {
    pub schema: String,
    pub tool_version: String,
    pub scenario: String,
    pub scenario_text: String,
    pub time_scale: f64,
    pub variants: Vec<VariantResult>,
}

/// One column of the table: its key in the result, its heading, and its figure.
pub struct Column {
    pub key: &'static str,
    pub heading: &'static str,
    pub figure: fn(&RunResult) -> Option<f64>,
    /// The figure is a time in seconds (printed with its unit, `344us` to `29.9min`).
    pub seconds: bool,
}

/// Mail on the device in real-world seconds (a compressed run's waits scaled back).
fn mail_s(
    result: &RunResult,
    quantile: fn(&crate::measure::latency::LatencySummary) -> u64,
) -> Option<f64> {
    let summary = result.summary_of(HistogramName::MailOnDeviceWorld)?;
    Some(quantile(&summary) as f64 / 1e6)
}

fn cost(result: &RunResult, figure: fn(&DeviceHourCost) -> f64) -> Option<f64> {
    result.cost_per_device_hour.as_ref().map(figure)
}

/// The table's columns, in order.
pub const COLUMNS: [Column; 14] = [
    Column {
        key: "mail_p50_s",
        heading: "mail p50",
        figure: |r| mail_s(r, |s| s.p50_us),
        seconds: true,
    },
    Column {
        key: "mail_p99_s",
        heading: "mail p99",
        figure: |r| mail_s(r, |s| s.p99_us),
        seconds: true,
    },
    Column {
        key: "mail_max_s",
        heading: "mail max",
        figure: |r| mail_s(r, |s| s.max_us),
        seconds: true,
    },
    Column {
        key: "lost",
        heading: "lost",
        figure: |r| Some(r.fleet.counters.notifications_lost as f64),
        seconds: false,
    },
    Column {
        key: "requests",
        heading: "requests/h",
        figure: |r| cost(r, |c| c.requests),
        seconds: false,
    },
    Column {
        key: "bytes",
        heading: "bytes/h",
        figure: |r| cost(r, |c| c.bytes),
        seconds: false,
    },
    Column {
        key: "connections",
        heading: "connections/h",
        figure: |r| cost(r, |c| c.connections),
        seconds: false,
    },
    Column {
        key: "full_handshakes",
        heading: "full TLS/h",
        figure: |r| cost(r, |c| c.tls_handshakes - c.tls_resumed),
        seconds: false,
    },
    Column {
        key: "data_sessions",
        heading: "sessions/h",
        figure: |r| cost(r, |c| c.data_sessions),
        seconds: false,
    },
    Column {
        key: "sms",
        heading: "SMS/h",
        figure: |r| cost(r, |c| c.sms_sent),
        seconds: false,
    },
    Column {
        key: "sms_lost",
        heading: "SMS lost/h",
        figure: |r| cost(r, |c| c.sms_lost),
        seconds: false,
    },
    Column {
        key: "radio_s",
        heading: "radio s/h",
        figure: |r| cost(r, |c| c.radio_active_s),
        seconds: false,
    },
    Column {
        key: "joules",
        heading: "J/h",
        figure: |r| cost(r, |c| c.radio_joules),
        seconds: false,
    },
    Column {
        key: "battery_pct_day",
        heading: "battery %/day",
        figure: |r| cost(r, |c| c.battery_share_per_day * 100.0),
        seconds: false,
    },
];

#[cfg(test)]
mod schema_tests {
    #[test]
    fn the_committed_variants_schema_matches_the_types() {
        crate::results::schema_tests::assert_committed(
            schemars::schema_for!(super::VariantsResult),
            "variants.schema.json",
        );
    }
}
