//! `pingfleet devices` as its own command (by hand, or a shard merged later): the
//! worker runs, then its own report is judged by its `--threshold` conditions (lost
//! notifications and errors at zero unless told otherwise), as `run` judges a whole
//! fleet, and one that fails exits 1 naming it.

use std::collections::BTreeMap;

use serde::de::IntoDeserializer as _;
use serde::Deserialize as _;

use super::summary::print_verdicts;
use super::thresholds::judge_report;
use crate::fleet::args::{DevicesArgs, DEFAULT_THRESHOLDS, NO_THRESHOLDS};
use crate::results::run::Memory;
use crate::scenario::threshold::{Condition, Misfit, ThresholdError};
use crate::scenario::{ConditionText, Metric};

/// Conditions by metric, as a scenario's `[thresholds]` holds them.
type Thresholds = BTreeMap<Metric, Vec<ConditionText>>;

/// Runs the worker and judges it; the exit code (0 passed, 1 a threshold failed).
pub fn devices(args: DevicesArgs) -> anyhow::Result<u8> {
    let thresholds = parse_thresholds(&args.thresholds)?;
    let report = crate::fleet::launch::devices(args)?;
    let verdicts = judge_report(&thresholds, &report, &Memory::default(), true);
    print_verdicts(&verdicts);
    let failed: Vec<String> = verdicts
        .iter()
        .filter(|verdict| !verdict.passed)
        .map(|verdict| {
            let observed = verdict.observed_words();
            format!(
                "{} {} (observed {observed})",
                verdict.metric, verdict.condition
            )
        })
        .collect();
    if failed.is_empty() {
        return Ok(0);
    }
    eprintln!("pingfleet devices: threshold failed: {}", failed.join(", "));
    Ok(1)
}

/// `--threshold` values (`METRIC:CONDITION`; none given: the defaults; `none`: nothing).
fn parse_thresholds(texts: &[String]) -> anyhow::Result<Thresholds> {
    let texts: Vec<&str> = match texts {
        [] => DEFAULT_THRESHOLDS.to_vec(),
        [none] if none == NO_THRESHOLDS => Vec::new(),
        texts => texts.iter().map(String::as_str).collect(),
    };
    let mut thresholds = Thresholds::new();
    for text in texts {
        let (metric, condition) = parse_threshold(text)?;
        thresholds.entry(metric).or_default().push(condition);
    }
    Ok(thresholds)
}

/// A `--threshold` value that does not hold, and why.
#[derive(Debug, thiserror::Error)]
#[error("--threshold {text:?}: {why}")]
pub struct ThresholdFlagError {
    pub text: String,
    pub why: ThresholdFlagProblem,
}

/// What is wrong with a `--threshold` value.
#[derive(Debug, thiserror::Error)]
pub enum ThresholdFlagProblem {
    #[error("write METRIC:CONDITION, e.g. lost_notifications:count==0")]
    NoColon,
    #[error(transparent)]
    Metric(#[from] serde::de::value::Error),
    #[error(transparent)]
    Condition(#[from] ThresholdError),
    #[error(transparent)]
    Misfit(#[from] Misfit),
}

fn parse_threshold(text: &str) -> Result<(Metric, ConditionText), ThresholdFlagError> {
    let parsed = || -> Result<_, ThresholdFlagProblem> {
        let (name, condition) = text.split_once(':').ok_or(ThresholdFlagProblem::NoColon)?;
        let names: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            name.trim().into_deserializer();
        let metric = Metric::deserialize(names)?;
        let condition = Condition::parse(condition)?;
        condition.fits(metric.kind())?;
        Ok((metric, ConditionText(condition)))
    };
    parsed().map_err(|why| ThresholdFlagError {
        text: text.to_owned(),
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_default_to_nothing_lost_and_no_errors() {
        let defaults = parse_thresholds(&[]).unwrap();
        assert_eq!(
            defaults.keys().copied().collect::<Vec<_>>(),
            [Metric::LostNotifications, Metric::Errors]
        );
        assert!(parse_thresholds(&[NO_THRESHOLDS.into()])
            .unwrap()
            .is_empty());
        let own = parse_thresholds(&["wakeup_latency:p(99)<100ms".into()]).unwrap();
        assert_eq!(own[&Metric::WakeupLatency][0].0.value, 100_000.0);
    }

    #[test]
    fn a_bad_threshold_names_the_flag_and_why() {
        assert!(matches!(
            parse_threshold("lost_notifications").map_err(|err| err.why),
            Err(ThresholdFlagProblem::NoColon)
        ));
        assert!(matches!(
            parse_threshold("errors:p(99)<1ms").map_err(|err| err.why),
            Err(ThresholdFlagProblem::Misfit(_))
        ));
        for (bad, why) in [
            ("lost_notifications", "METRIC:CONDITION"),
            ("latency:p(99)<1ms", "unknown variant"),
            ("errors:p(99)<1ms", "errors"),
            ("wakeup_latency:p(99)<<1ms", ""),
        ] {
            let typed = parse_threshold(bad).unwrap_err();
            assert_eq!(typed.text, bad);
            let err = parse_thresholds(&[bad.into()]).unwrap_err().to_string();
            assert!(err.starts_with(&format!("--threshold {bad:?}: ")), "{err}");
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
