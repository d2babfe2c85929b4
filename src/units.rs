//! One convention for units, in and out. In: a share (a tolerance, a jitter, a part of
//! the fleet) is written as a percentage with its `%` sign everywhere, on the command
//! line and in scenario files alike (`5%`); a bare number is refused, since `0.05`
//! could mean 5% or 0.05%. A duration ([`Span`]) is `30s`, `1500ms`, `8m` or a bare
//! number of seconds, on the command line and in files alike. Out:
//! latencies and sizes are printed with their unit (`1.32 ms`, `6.4 KiB`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A share of something, written `5%` and held as a fraction (0.05).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Share(f64);

impl Share {
    /// The share as a fraction: 5% is 0.05.
    pub fn fraction(self) -> f64 {
        self.0
    }

    /// The share of `fraction` (0.05 is 5%).
    pub fn of_fraction(fraction: f64) -> Self {
        Self(fraction)
    }

    /// `percent` percent.
    pub const fn from_percent(percent: f64) -> Self {
        Self(percent / 100.0)
    }

    /// The share in percent: 5% is 5.0.
    pub fn percent(self) -> f64 {
        self.0 * 100.0
    }
}

/// Why a share could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShareError {
    /// A bare number: `suggestion` reads it as the likelier of a percent or a
    /// fraction, `other` as the other one.
    #[error(
        "{text:?} has no % sign: write it with one, e.g. {suggestion} ({other}; a bare \
         number could be a fraction or a percent)"
    )]
    NoPercentSign {
        text: String,
        suggestion: String,
        other: String,
    },
    #[error("{0:?} is not a percentage like 5% or 0.5%")]
    NotAPercentage(String),
    #[error("{0:?}: a share is 0% or more, e.g. 5%")]
    Negative(String),
}

impl ShareError {
    /// A value that would have been read, when there is one to suggest.
    pub fn suggestion(&self) -> Option<&str> {
        match self {
            Self::NoPercentSign { suggestion, .. } => Some(suggestion),
            Self::NotAPercentage(_) | Self::Negative(_) => None,
        }
    }

    /// A bare `value`: 1 or more is likelier a percent (`5` is 5%), below 1 a
    /// fraction (`0.05` is 5%).
    fn bare(text: &str, value: f64) -> Self {
        let (as_percent, as_fraction) = (
            format!("{}%", trim_float(value)),
            format!("{}%", trim_float(value * 100.0)),
        );
        let (suggestion, other) = match value >= 1.0 {
            true => (
                as_percent,
                format!("{as_fraction} if {text} was a fraction"),
            ),
            false => (as_fraction, format!("{as_percent} if {text} was a percent")),
        };
        Self::NoPercentSign {
            text: text.to_owned(),
            suggestion,
            other,
        }
    }
}

impl FromStr for Share {
    type Err = ShareError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let Some(number) = trimmed.strip_suffix('%') else {
            return Err(match trimmed.parse::<f64>() {
                Ok(value) if value.is_finite() && value >= 0.0 => ShareError::bare(trimmed, value),
                Ok(_) => ShareError::Negative(trimmed.to_owned()),
                Err(_) => ShareError::NotAPercentage(trimmed.to_owned()),
            });
        };
        let percent: f64 = number
            .trim()
            .parse()
            .map_err(|_| ShareError::NotAPercentage(trimmed.to_owned()))?;
        if !percent.is_finite() || percent < 0.0 {
            return Err(ShareError::Negative(trimmed.to_owned()));
        }
        Ok(Self(percent / 100.0))
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", trim_float(self.percent()))
    }
}

impl serde::Serialize for Share {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Share {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShareVisitor;
        impl serde::de::Visitor<'_> for ShareVisitor {
            type Value = Share;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage as a string, like \"5%\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Share, E> {
                text.parse().map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Share, E> {
                let text = trim_float(value);
                Err(E::custom(match ShareError::bare(&text, value.abs()) {
                    ShareError::NoPercentSign {
                        suggestion, other, ..
                    } => format!(
                        "{text} has no % sign: write a share as a percentage in quotes, e.g. \
                         \"{suggestion}\" ({other}; a bare number could be a fraction or a percent)"
                    ),
                    other => other.to_string(),
                }))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Share, E> {
                self.visit_f64(value as f64)
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Share, E> {
                self.visit_f64(value as f64)
            }
        }
        deserializer.deserialize_any(ShareVisitor)
    }
}

#[cfg(test)]
impl schemars::JsonSchema for Share {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Share".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": "^[0-9.]+%$"})
    }
}

#[cfg(test)]
impl schemars::JsonSchema for Span {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Span".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string"})
    }
}

/// A duration as people write one: `30s`, `1500ms`, `1h 30m`, or a number of seconds
/// (`90`, `1.5`); written back as `humantime` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Span(pub Duration);

impl Span {
    pub const fn from_secs(seconds: u64) -> Self {
        Self(Duration::from_secs(seconds))
    }
}

impl FromStr for Span {
    type Err = crate::argv::ValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        crate::argv::duration(text).map(Span)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl serde::Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Span {
    /// `"8m"`, `"1500ms"`, `"30"`, or a bare whole number of seconds (`hold = 30`), as
    /// the flags take them.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpanVisitor;
        impl serde::de::Visitor<'_> for SpanVisitor {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like \"30s\", \"8m\" or \"1500ms\", or whole seconds")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Span, E> {
                text.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, seconds: u64) -> Result<Span, E> {
                Ok(Span::from_secs(seconds))
            }
            fn visit_i64<E: serde::de::Error>(self, seconds: i64) -> Result<Span, E> {
                u64::try_from(seconds).map(Span::from_secs).map_err(|_| {
                    E::custom(format!(
                        "{seconds}: a duration is not negative, e.g. \"{}s\"",
                        seconds.unsigned_abs()
                    ))
                })
            }
        }
        deserializer.deserialize_any(SpanVisitor)
    }
}

/// A float without trailing zeros: 5, 0.5, 12.25.
fn trim_float(value: f64) -> String {
    let text = format!("{value:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A latency in microseconds with its unit: `850 us`, `1.32 ms`, `2.50 s`.
pub fn micros(us: f64) -> String {
    match us {
        us if us < 1_000.0 => format!("{us:.0} us"),
        us if us < 1_000_000.0 => format!("{:.2} ms", us / 1e3),
        us => format!("{:.2} s", us / 1e6),
    }
}

/// A size in bytes with its unit: `850 B`, `6.4 KiB`, `1.2 MiB`, `2.3 GiB`.
pub fn bytes(bytes: f64) -> String {
    const KIB: f64 = 1024.0;
    if bytes < 0.0 {
        return format!("-{}", self::bytes(-bytes));
    }
    match bytes {
        b if b < KIB => format!("{b:.0} B"),
        b if b < KIB * KIB => format!("{:.1} KiB", b / KIB),
        b if b < KIB * KIB * KIB => format!("{:.1} MiB", b / (KIB * KIB)),
        b => format!("{:.2} GiB", b / (KIB * KIB * KIB)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_need_their_percent_sign() {
        assert_eq!("5%".parse::<Share>().unwrap().fraction(), 0.05);
        assert_eq!(" 0.5 % ".parse::<Share>().unwrap().fraction(), 0.005);
        assert_eq!("5%".parse::<Share>().unwrap().to_string(), "5%");
        let bare = "0.05".parse::<Share>().unwrap_err().to_string();
        assert!(
            bare.contains("no % sign") && bare.contains("e.g. 5%"),
            "{bare}"
        );
        // A bare 5 is likelier five percent than five hundred.
        let five = "5".parse::<Share>().unwrap_err();
        assert_eq!(five.suggestion(), Some("5%"));
        assert!(
            five.to_string().contains("500% if 5 was a fraction"),
            "{five}"
        );
        assert_eq!(
            "0.05".parse::<Share>().unwrap_err().suggestion(),
            Some("5%")
        );
        assert!("-1%".parse::<Share>().is_err());
        assert!("five%".parse::<Share>().is_err());
    }

    #[test]
    fn shares_in_files_are_strings_with_a_percent_sign() {
        #[derive(serde::Deserialize)]
        struct File {
            memory: Share,
        }
        let read: File = toml::from_str("memory = \"5%\"").unwrap();
        assert_eq!(read.memory.fraction(), 0.05);
        let bare = toml::from_str::<File>("memory = 0.05")
            .err()
            .unwrap()
            .to_string();
        assert!(bare.contains("\"5%\""), "{bare}");
        assert_eq!(serde_json::to_string(&read.memory).unwrap(), "\"5%\"");
    }

    #[test]
    fn spans_read_and_print_as_people_write_them() {
        assert_eq!(
            "1500ms".parse::<Span>().unwrap().0,
            Duration::from_millis(1500)
        );
        assert_eq!("90".parse::<Span>().unwrap().0, Duration::from_secs(90));
        assert_eq!(Span::from_secs(480).to_string(), "8m");
        let err = "5 minuets".parse::<Span>().unwrap_err().to_string();
        assert!(err.contains("not a duration"), "{err}");
    }

    #[test]
    fn spans_in_files_are_strings_or_whole_seconds() {
        #[derive(serde::Deserialize)]
        struct Table {
            hold: Span,
        }
        let read = |text: &str| toml::from_str::<Table>(text).map(|table| table.hold.0);
        assert_eq!(read("hold = \"8m\"").unwrap(), Duration::from_secs(480));
        assert_eq!(read("hold = 30").unwrap(), Duration::from_secs(30));
        let negative = read("hold = -5").unwrap_err().to_string();
        assert!(negative.contains("not negative, e.g. \"5s\""), "{negative}");
        let float = read("hold = 1.5").unwrap_err().to_string();
        assert!(float.contains("a duration like \"30s\""), "{float}");
    }

    #[test]
    fn figures_print_with_their_unit() {
        assert_eq!(micros(850.0), "850 us");
        assert_eq!(micros(1322.0), "1.32 ms");
        assert_eq!(micros(2_500_000.0), "2.50 s");
        assert_eq!(bytes(850.0), "850 B");
        assert_eq!(bytes(6553.6), "6.4 KiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.00 GiB");
    }
}
