//! The typed seam between `pingfleet run` and its children: a child's flags are the
//! same clap structs its own command line parses (`ServeArgs`, `DevicesArgs`), turned
//! back into an argument vector here. Nothing spells a flag by hand: each field is
//! written under the long flag clap gives it, so a new flag crosses the seam without
//! anyone remembering to pass it (the round-trip tests beside each struct check that
//! parsing the vector gives the value back).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// `subcommand` followed by the flags that reproduce `args`: `--flag=value` for each
/// set value (repeated for lists; the `=` form keeps a value that starts with `-` a
/// value), `--flag` alone for a true switch (or a false one that clears a setting,
/// `--no-tls-resumption`), nothing for an unset option or a false switch. Values are written as serde writes them (durations
/// through `humantime_serde`, enums by their clap names, nested tables as JSON).
pub fn to_argv<T: clap::Args + Serialize>(
    subcommand: &str,
    args: &T,
) -> anyhow::Result<Vec<String>> {
    let command = T::augment_args(clap::Command::new("pingfleet"));
    let fields = serde_json::to_value(args)?;
    let mut argv = vec![subcommand.to_owned()];
    for arg in command.get_arguments() {
        let Some(value) = fields.get(arg.get_id().as_str()) else {
            continue;
        };
        let Some(long) = arg.get_long() else {
            anyhow::bail!("{subcommand}: argument {} has no long flag", arg.get_id());
        };
        let flag = format!("--{long}");
        // A switch that clears a setting (`--no-tls-resumption`) is written when it is off.
        let clears = matches!(arg.get_action(), clap::ArgAction::SetFalse);
        match value {
            Value::Bool(on) if clears => {
                if !on {
                    argv.push(flag);
                }
            }
            Value::Null | Value::Bool(false) => {}
            Value::Bool(true) => argv.push(flag),
            Value::Array(items) => {
                for item in items {
                    argv.push(format!("{flag}={}", text(item)?));
                }
            }
            other => argv.push(format!("{flag}={}", text(other)?)),
        }
    }
    Ok(argv)
}

/// A flag's value that is not what the flag takes: the text, and what it should be.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("{text:?} is not a duration of 0 seconds or more")]
    NegativeSeconds { text: String },
    #[error("{text:?} is not a duration like 30s, 1.5 or 500ms: {source}")]
    Duration {
        text: String,
        source: humantime::DurationError,
    },
    #[error("{text:?} is not an RFC 3339 time like 2026-12-01T10:00:00Z: {source}")]
    WallClock {
        text: String,
        source: humantime::TimestampError,
    },
}

/// A wall-clock instant as flags take it: RFC 3339 (`2026-12-01T10:00:00Z`).
pub fn wall_clock(text: &str) -> Result<std::time::SystemTime, ValueError> {
    humantime::parse_rfc3339_weak(text).map_err(|source| ValueError::WallClock {
        text: text.to_owned(),
        source,
    })
}

/// Parses `argv` (a subcommand and its flags, as [`to_argv`] writes them) into `T`.
pub fn parse<T: clap::Args + clap::FromArgMatches>(argv: &[String]) -> Result<T, clap::Error> {
    let command = T::augment_args(clap::Command::new("pingfleet").no_binary_name(true));
    let matches = command.try_get_matches_from(argv.iter().skip(1))?;
    T::from_arg_matches(&matches)
}

/// Parses a subcommand's `flags` alone (no subcommand word before them), as the unit
/// tests of each role's settings do.
#[cfg(test)]
pub fn parse_flags<T: clap::Args + clap::FromArgMatches>(flags: &[&str]) -> Result<T, clap::Error> {
    let words: Vec<String> = std::iter::once("-")
        .chain(flags.iter().copied())
        .map(str::to_owned)
        .collect();
    parse(&words)
}

/// A value as one argument: strings as they are, numbers in Rust's notation, tables
/// as JSON.
fn text(value: &Value) -> anyhow::Result<String> {
    Ok(match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Object(_) => serde_json::to_string(value)?,
        other => anyhow::bail!("no flag form for {other}"),
    })
}

/// Parses a duration flag: `90` or `1.5` (seconds), or `1s 500ms`, `2m`, `480s`.
pub fn duration(text: &str) -> Result<Duration, ValueError> {
    let trimmed = text.trim();
    if let Ok(seconds) = trimmed.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|_| ValueError::NegativeSeconds {
            text: text.to_owned(),
        });
    }
    humantime::parse_duration(trimmed).map_err(|source| ValueError::Duration {
        text: text.to_owned(),
        source,
    })
}

/// Why a count on the command line (`--devices`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a count: write a whole number, 1 or more, e.g. {example}")]
pub struct CountError {
    text: String,
    example: usize,
}

impl CountError {
    /// A count that would have been read: the number given made whole and positive.
    pub fn suggestion(&self) -> String {
        self.example.to_string()
    }
}

/// A count of 1 or more (`--devices 500`).
pub fn count(text: &str) -> Result<usize, CountError> {
    let trimmed = text.trim();
    match trimmed.parse::<usize>() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(CountError {
            text: trimmed.to_owned(),
            example: trimmed
                .parse::<f64>()
                .ok()
                .filter(|value| value.is_finite() && value.abs() >= 1.0)
                .map_or(200, |value| value.abs().round() as usize),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_seconds_or_units() {
        assert_eq!(duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("1s 500ms"), Ok(Duration::from_millis(1500)));
        assert!(duration("-1s").is_err());
        let negative = ValueError::NegativeSeconds { text: "-1".into() };
        assert_eq!(duration("-1"), Err(negative));
        let soon = duration("soon").unwrap_err();
        assert!(matches!(soon, ValueError::Duration { .. }), "{soon:?}");
        assert!(soon
            .to_string()
            .starts_with("\"soon\" is not a duration like 30s"));
        let when = wall_clock("tomorrow").unwrap_err();
        assert!(matches!(when, ValueError::WallClock { .. }), "{when:?}");
    }

    #[test]
    fn counts_are_whole_and_positive_with_an_example_that_is() {
        assert_eq!(count("500"), Ok(500));
        let negative = count("-5").unwrap_err();
        assert_eq!(negative.suggestion(), "5");
        assert_eq!(
            negative.to_string(),
            "\"-5\" is not a count: write a whole number, 1 or more, e.g. 5"
        );
        assert_eq!(count("2.6").unwrap_err().suggestion(), "3");
        assert_eq!(count("0").unwrap_err().suggestion(), "200");
        assert_eq!(count("many").unwrap_err().suggestion(), "200");
    }
}
