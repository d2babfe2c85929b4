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
    /// Devices woken by SMS: what other gateway losses would do, modelled from this
    /// run's texts (see [`sms_at_losses`]); empty for the other variants.
    #[serde(default)]
    pub sms_at_loss_modelled: Vec<SmsAtLoss>,
}

/// The gateway losses the SMS sensitivity is modelled at: the default's 1%, and 5%
/// (Meng et al., "Analysis of the Reliability of a Nationwide Short Message Service",
/// INFOCOM 2007, measured delivery failures up to 5.1% in normal operation).
pub const SMS_SENSITIVITY_LOSSES: [f64; 2] = [0.01, 0.05];

/// An SMS variant at another gateway loss, modelled (not measured).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SmsAtLoss {
    /// The share of texts lost (0.05 is 5%).
    pub loss: f64,
    /// Texts lost per device-hour: the run's texts per device-hour at this loss.
    pub texts_lost_per_hour: f64,
    /// The share of the mail that comes late or is lost.
    pub mail_late_or_lost: f64,
}

/// An SMS variant at each of [`SMS_SENSITIVITY_LOSSES`], modelled from what it measured:
/// its texts per device-hour stay as they were (a lost text is still sent), and each
/// lost text leaves as much mail late or lost as the run's lost texts did (its mail
/// waits for a later text's sync, or is lost): the measured share of mail late or lost,
/// scaled by the loss over the run's own. Nothing for a variant that sent no texts.
pub fn sms_at_losses(
    texts_per_hour: f64,
    texts_lost_per_hour: f64,
    mail_planned: u64,
    mail_late_or_lost: u64,
) -> Vec<SmsAtLoss> {
    if texts_per_hour <= 0.0 || mail_planned == 0 {
        return Vec::new();
    }
    let run_loss = texts_lost_per_hour / texts_per_hour;
    let measured = mail_late_or_lost as f64 / mail_planned as f64;
    // With no text lost in the run, each lost text is taken to hold back one mail.
    let per_loss = match run_loss > 0.0 {
        true => measured / run_loss,
        false => 1.0,
    };
    SMS_SENSITIVITY_LOSSES
        .iter()
        .map(|&loss| SmsAtLoss {
            loss,
            texts_lost_per_hour: texts_per_hour * loss,
            mail_late_or_lost: (per_loss * loss).min(1.0),
        })
        .collect()
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

/// The wake-up latency (notification sent to Ping answer read), in milliseconds.
fn wakeup_ms(
    result: &RunResult,
    quantile: fn(&crate::measure::latency::LatencySummary) -> u64,
) -> Option<f64> {
    let summary = result.summary_of(HistogramName::WakeupLatency)?;
    Some(quantile(&summary) as f64 / 1e3)
}

fn cost(result: &RunResult, figure: fn(&DeviceHourCost) -> f64) -> Option<f64> {
    result.cost_per_device_hour.as_ref().map(figure)
}

/// The table's columns, in order.
pub const COLUMNS: [Column; 18] = [
    Column {
        key: "wakeup_p50_ms",
        heading: "wake-up p50 ms",
        figure: |r| wakeup_ms(r, |s| s.p50_us),
        seconds: false,
    },
    Column {
        key: "wakeup_p99_ms",
        heading: "wake-up p99 ms",
        figure: |r| wakeup_ms(r, |s| s.p99_us),
        seconds: false,
    },
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
        key: "pings_cut_by_gateway",
        heading: "Pings cut 5xx",
        figure: |r| Some(r.network.as_ref()?.pings_died_by_gateway as f64),
        seconds: false,
    },
    Column {
        key: "proxy_pss_per_parked",
        heading: "proxy B/parked",
        figure: |r| r.proxy.as_ref()?.memory.pss_per_parked_connection_bytes,
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
mod tests {
    use super::*;

    #[test]
    fn the_sms_sensitivity_scales_the_runs_own_losses() {
        // A run at 1% lost 0.06 of 6 texts a device-hour and 460 of 45,219 mails came
        // late or were lost (1.0173%): 1.0173% per 1% of loss. At 5%: 0.30 texts lost a
        // device-hour, 5 x 1.0173% = 5.0864% of the mail.
        let at = sms_at_losses(6.0, 0.06, 45_219, 460);
        assert_eq!(at.len(), 2);
        assert!((at[0].texts_lost_per_hour - 0.06).abs() < 1e-12);
        assert!((at[0].mail_late_or_lost - 460.0 / 45_219.0).abs() < 1e-12);
        assert!((at[1].texts_lost_per_hour - 0.30).abs() < 1e-12);
        assert!((at[1].mail_late_or_lost - 5.0 * 460.0 / 45_219.0).abs() < 1e-12);
        // No text lost in the run: a lost text holds back one mail.
        assert!((sms_at_losses(6.0, 0.0, 100, 0)[1].mail_late_or_lost - 0.05).abs() < 1e-12);
        assert!(sms_at_losses(0.0, 0.0, 100, 0).is_empty());
    }
}

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
