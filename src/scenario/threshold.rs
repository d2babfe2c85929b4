//! Thresholds in a small k6-like language: each metric of a scenario gets a list of
//! conditions such as `p(99)<1ms`, `max<2KiB` or `count==0`, judged pass or fail
//! against a run's results.

use std::fmt;

use serde::de::Error as _;
use serde::Deserialize;

/// What is taken of a metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregate {
    /// A percentile, 0-100.
    Percentile(f64),
    Avg,
    Min,
    Max,
    Count,
    /// A share, 0-1 (e.g. of notifications lost).
    Rate,
}

/// How an observed figure must stand to a condition's value: `<`, `<=`, `>`, `>=`, `==`, `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    Equal,
    NotEqual,
}

/// What a value's unit says it measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// No unit: a count, a share from 0 to 1, or (for sizes) bytes.
    None,
    /// `us`, `ms`, `s`: microseconds.
    Duration,
    /// `B`, `KB`, `KiB`, `MB`, `MiB`, `GiB`: bytes.
    Size,
    /// `%`: a share.
    Percent,
}

/// One condition: `aggregate comparison value` (value in microseconds for durations,
/// bytes for sizes, plain numbers otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub aggregate: Aggregate,
    pub comparison: Operator,
    pub value: f64,
    pub unit: Unit,
    pub text: String,
}

/// A condition that cannot judge its metric: its text, the metric's kind, and whether
/// only its value (negative) is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misfit {
    pub condition: String,
    pub kind: MetricKind,
    pub negative: bool,
}

impl std::error::Error for Misfit {}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wanted = match self.kind {
            MetricKind::Latency => "p(N), avg, min or max with a duration (p(99)<5ms), or count",
            MetricKind::Bytes => "max, min or avg with a size (max<2KiB)",
            MetricKind::Count => "count with a number (count==0)",
            MetricKind::CountOrRate => "count with a number (count==0), or rate (rate<1%)",
        };
        let why = match self.negative {
            true => "a negative value",
            false => "this form",
        };
        write!(
            f,
            "{:?} cannot judge this metric ({why}); it takes {wanted}",
            self.condition
        )
    }
}

/// What a metric is, and so which conditions can judge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A latency histogram: `p(N)`, `avg`, `min`, `max` with a duration unit, or
    /// `count` (of samples).
    Latency,
    /// One figure in bytes: `max`, `min` or `avg` (all that figure), in bytes or a
    /// size unit.
    Bytes,
    /// A count of events: `count` with a plain number.
    Count,
    /// Events that can also be a share of their chances: `count`, or `rate` as a
    /// fraction or `%`.
    CountOrRate,
}

/// Why a condition cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("threshold {text:?}: {reason}; write it like \"p(99)<1ms\", \"max<2KiB\" or \"count==0\"")]
pub struct ThresholdError {
    pub text: String,
    pub reason: String,
}

impl Condition {
    pub fn parse(text: &str) -> Result<Self, ThresholdError> {
        let fail = |reason: &str| ThresholdError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let operators = [
            ("<=", Operator::LessEqual),
            (">=", Operator::GreaterEqual),
            ("==", Operator::Equal),
            ("!=", Operator::NotEqual),
            ("<", Operator::Less),
            (">", Operator::Greater),
        ];
        let (at, operator, comparison) = operators
            .iter()
            .filter_map(|(operator, comparison)| {
                compact
                    .find(operator)
                    .map(|at| (at, *operator, *comparison))
            })
            .min_by_key(|(at, operator, _)| (*at, std::cmp::Reverse(operator.len())))
            .ok_or_else(|| fail("no comparison (<, <=, >, >=, ==, !=)"))?;
        let (left, right) = (&compact[..at], &compact[at + operator.len()..]);
        let aggregate = match left {
            "avg" => Aggregate::Avg,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            "count" => Aggregate::Count,
            "rate" => Aggregate::Rate,
            _ => {
                let percentile = left
                    .strip_prefix("p(")
                    .and_then(|rest| rest.strip_suffix(')'))
                    .and_then(|number| number.parse::<f64>().ok())
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| {
                        fail(&format!(
                            "unknown aggregate {left:?} (p(N), avg, min, max, count, rate)"
                        ))
                    })?;
                Aggregate::Percentile(percentile)
            }
        };
        let (value, unit) =
            parse_value(right).ok_or_else(|| fail(&format!("cannot read the value {right:?}")))?;
        if !value.is_finite() {
            return Err(fail(&format!("the value {right:?} is not a finite number")));
        }
        Ok(Self {
            aggregate,
            comparison,
            value,
            unit,
            text: text.to_owned(),
        })
    }

    /// Whether this condition can judge a metric of `kind`; why not, if it cannot.
    pub fn fits(&self, kind: MetricKind) -> Result<(), Misfit> {
        use Aggregate::{Avg, Count, Max, Min, Percentile, Rate};
        let fits = match (kind, self.aggregate) {
            (MetricKind::Latency, Count) => self.unit == Unit::None,
            (MetricKind::Latency, Percentile(_) | Avg | Min | Max) => self.unit == Unit::Duration,
            (MetricKind::Bytes, Avg | Min | Max) => matches!(self.unit, Unit::None | Unit::Size),
            (MetricKind::Count | MetricKind::CountOrRate, Count) => self.unit == Unit::None,
            (MetricKind::CountOrRate, Rate) => matches!(self.unit, Unit::None | Unit::Percent),
            _ => false,
        };
        let negative = self.value < 0.0;
        match fits && !negative {
            true => Ok(()),
            false => Err(Misfit {
                condition: self.text.clone(),
                kind,
                negative,
            }),
        }
    }

    /// Whether `observed` (in the same units as `value`) satisfies the condition.
    pub fn holds(&self, observed: f64) -> bool {
        match self.comparison {
            Operator::Less => observed < self.value,
            Operator::LessEqual => observed <= self.value,
            Operator::Greater => observed > self.value,
            Operator::GreaterEqual => observed >= self.value,
            Operator::Equal => observed == self.value,
            Operator::NotEqual => observed != self.value,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A number with an optional unit: durations become microseconds, sizes bytes.
fn parse_value(text: &str) -> Option<(f64, Unit)> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let (scale, kind) = match unit {
        "" => (1.0, Unit::None),
        "us" | "µs" => (1.0, Unit::Duration),
        "ms" => (1e3, Unit::Duration),
        "s" => (1e6, Unit::Duration),
        "B" => (1.0, Unit::Size),
        "KB" | "kB" => (1e3, Unit::Size),
        "KiB" => (1024.0, Unit::Size),
        "MB" => (1e6, Unit::Size),
        "MiB" => (1024.0 * 1024.0, Unit::Size),
        "GiB" => (1024.0 * 1024.0 * 1024.0, Unit::Size),
        "%" => (0.01, Unit::Percent),
        _ => return None,
    };
    Some((number * scale, kind))
}

/// Metrics thresholds can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    WakeupLatency,
    MailOnDeviceLatency,
    InjectorLag,
    EventLoopLag,
    LostNotifications,
    Errors,
    ServerBytesPerParked,
    DeviceBytesPerParked,
}

impl Metric {
    /// What the metric is, and so which conditions can judge it.
    pub fn kind(self) -> MetricKind {
        match self {
            Self::WakeupLatency
            | Self::MailOnDeviceLatency
            | Self::InjectorLag
            | Self::EventLoopLag => MetricKind::Latency,
            Self::LostNotifications => MetricKind::CountOrRate,
            Self::Errors => MetricKind::Count,
            Self::ServerBytesPerParked | Self::DeviceBytesPerParked => MetricKind::Bytes,
        }
    }

    /// An observed value of this metric with its unit: latencies in `us`/`ms`/`s`,
    /// sizes in `B`/`KiB`, rates in `%`, counts as whole numbers.
    pub fn show(self, aggregate: Aggregate, value: f64) -> String {
        match (self.kind(), aggregate) {
            (_, Aggregate::Count) => format!("{value:.0}"),
            (_, Aggregate::Rate) => format!("{}", crate::units::Share::of_fraction(value)),
            (MetricKind::Latency, _) => crate::units::micros(value),
            (MetricKind::Bytes, _) => crate::units::bytes(value),
            _ => format!("{value:.0}"),
        }
    }

    /// The name as scenario files write it.
    pub fn name(self) -> &'static str {
        match self {
            Self::WakeupLatency => "wakeup_latency",
            Self::MailOnDeviceLatency => "mail_on_device_latency",
            Self::InjectorLag => "injector_lag",
            Self::EventLoopLag => "event_loop_lag",
            Self::LostNotifications => "lost_notifications",
            Self::Errors => "errors",
            Self::ServerBytesPerParked => "server_bytes_per_parked",
            Self::DeviceBytesPerParked => "device_bytes_per_parked",
        }
    }
}

/// A threshold condition, checked when the file is read.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionText(pub Condition);

impl<'de> Deserialize<'de> for ConditionText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Condition::parse(&text)
            .map(ConditionText)
            .map_err(|err| D::Error::custom(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_k6_forms() {
        let p99 = Condition::parse("p(99)<1ms").unwrap();
        assert_eq!(p99.aggregate, Aggregate::Percentile(99.0));
        assert_eq!((p99.comparison, p99.value), (Operator::Less, 1000.0));
        assert!(p99.holds(999.0) && !p99.holds(1000.0));
        let bytes = Condition::parse("max < 2KiB").unwrap();
        assert_eq!((bytes.aggregate, bytes.value), (Aggregate::Max, 2048.0));
        let count = Condition::parse("count==0").unwrap();
        assert_eq!(
            (count.aggregate, count.comparison),
            (Aggregate::Count, Operator::Equal)
        );
        assert!(Condition::parse("p(99.9)<=250us").unwrap().holds(250.0));
        assert_eq!(Condition::parse("rate<1%").unwrap().value, 0.01);
        assert_eq!(Condition::parse("avg>=1.5s").unwrap().value, 1.5e6);
    }

    #[test]
    fn each_metric_kind_takes_only_its_own_forms() {
        let fits = |text: &str, kind| Condition::parse(text).unwrap().fits(kind);
        for (text, kind) in [
            ("p(99)<1ms", MetricKind::Latency),
            ("count>10", MetricKind::Latency),
            ("max<2KiB", MetricKind::Bytes),
            ("avg<=9000", MetricKind::Bytes),
            ("count==0", MetricKind::Count),
            ("rate<0.1", MetricKind::CountOrRate),
            ("rate<1%", MetricKind::CountOrRate),
        ] {
            assert_eq!(fits(text, kind), Ok(()), "{text}");
        }
        for (text, kind) in [
            ("p(99)<1ms", MetricKind::CountOrRate),
            ("avg<1ms", MetricKind::Count),
            ("max<1ms", MetricKind::Bytes),
            ("max<2KiB", MetricKind::Latency),
            ("p(99)<1000", MetricKind::Latency),
            ("rate<0.1", MetricKind::Latency),
            ("rate<0.1", MetricKind::Count),
            ("count<5ms", MetricKind::Count),
            ("max<-1B", MetricKind::Bytes),
        ] {
            let misfit = fits(text, kind).expect_err(text);
            assert_eq!((misfit.kind, misfit.negative), (kind, text.contains('-')));
            let why = misfit.to_string();
            assert!(why.contains("cannot judge this metric"), "{why}");
        }
        assert!(Condition::parse("p(99)<1e400ms").is_err());
    }

    #[test]
    fn explains_bad_conditions() {
        for bad in ["p(99)", "p(101)<1ms", "median<1ms", "max<2 parsecs", "<1"] {
            let err = Condition::parse(bad).unwrap_err();
            assert!(err.to_string().contains("write it like"), "{err}");
        }
    }
}
