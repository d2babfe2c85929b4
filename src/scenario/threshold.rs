//! Thresholds in a small k6-like language: each metric of a scenario gets a list of
//! conditions such as `p(99)<1ms`, `max<2KiB` or `count==0`, judged pass or fail
//! against a run's results.

use std::fmt;

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

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    Equal,
    NotEqual,
}

/// One condition: `aggregate comparison value` (value in microseconds for durations,
/// bytes for sizes, plain numbers otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub aggregate: Aggregate,
    pub comparison: Comparison,
    pub value: f64,
    pub text: String,
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
            ("<=", Comparison::LessEqual),
            (">=", Comparison::GreaterEqual),
            ("==", Comparison::Equal),
            ("!=", Comparison::NotEqual),
            ("<", Comparison::Less),
            (">", Comparison::Greater),
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
        Ok(Self {
            aggregate,
            comparison,
            value: parse_value(right)
                .ok_or_else(|| fail(&format!("cannot read the value {right:?}")))?,
            text: text.to_owned(),
        })
    }

    /// Whether `observed` (in the same units as `value`) satisfies the condition.
    pub fn holds(&self, observed: f64) -> bool {
        match self.comparison {
            Comparison::Less => observed < self.value,
            Comparison::LessEqual => observed <= self.value,
            Comparison::Greater => observed > self.value,
            Comparison::GreaterEqual => observed >= self.value,
            Comparison::Equal => observed == self.value,
            Comparison::NotEqual => observed != self.value,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A number with an optional unit: durations become microseconds, sizes bytes.
fn parse_value(text: &str) -> Option<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "" => 1.0,
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "B" => 1.0,
        "KB" | "kB" => 1e3,
        "KiB" => 1024.0,
        "MB" => 1e6,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "%" => 0.01,
        _ => return None,
    };
    Some(number * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_k6_forms() {
        let p99 = Condition::parse("p(99)<1ms").unwrap();
        assert_eq!(p99.aggregate, Aggregate::Percentile(99.0));
        assert_eq!((p99.comparison, p99.value), (Comparison::Less, 1000.0));
        assert!(p99.holds(999.0) && !p99.holds(1000.0));
        let bytes = Condition::parse("max < 2KiB").unwrap();
        assert_eq!((bytes.aggregate, bytes.value), (Aggregate::Max, 2048.0));
        let count = Condition::parse("count==0").unwrap();
        assert_eq!(
            (count.aggregate, count.comparison),
            (Aggregate::Count, Comparison::Equal)
        );
        assert!(Condition::parse("p(99.9)<=250us").unwrap().holds(250.0));
        assert_eq!(Condition::parse("rate<1%").unwrap().value, 0.01);
        assert_eq!(Condition::parse("avg>=1.5s").unwrap().value, 1.5e6);
    }

    #[test]
    fn explains_bad_conditions() {
        for bad in ["p(99)", "p(101)<1ms", "median<1ms", "max<2 parsecs", "<1"] {
            let err = Condition::parse(bad).unwrap_err();
            assert!(err.to_string().contains("write it like"), "{err}");
        }
    }
}
