//! Where a scenario's error points: a key's first assignment or a profile entry's
//! header, turned into the file's line and column; and serde's words for a number of
//! the wrong kind said as the key, what it takes and a value that would do.

use super::ScenarioError;

/// Where a semantic error points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// The first line assigning this key.
    Key(&'static str),
    /// The header of the n-th `[[devices.profiles]]` entry.
    Profile(usize),
}

impl Place {
    /// The error at this place of `text`.
    pub(crate) fn error_in(self, text: &str, file: &str, message: String) -> ScenarioError {
        let offset = match self {
            Place::Key(key) => find_key(text, key),
            Place::Profile(index) => find_profile_entry(text, index),
        };
        error_at(text, file, offset.unwrap_or(0), message)
    }
}

/// The error at byte `offset` of `text`, with its line and column.
pub(crate) fn error_at(text: &str, file: &str, offset: usize, message: String) -> ScenarioError {
    let before = &text[..offset.min(text.len())];
    ScenarioError {
        file: file.to_owned(),
        line: before.matches('\n').count() + 1,
        column: before
            .rsplit('\n')
            .next()
            .map_or(0, |last| last.chars().count())
            + 1,
        message,
    }
}

/// `message` (serde's, for the value at byte `offset` of `text`) in a scenario
/// writer's words: an unknown key with the known key it most resembles; a number of the
/// wrong kind, or text, for a count (`expected usize`): the key as written, and the same
/// key with a value that works.
pub(crate) fn plain_words(text: &str, offset: usize, message: &str) -> String {
    if let Some(words) = unknown_key(message) {
        return words;
    }
    let unsigned = ["usize", "u64", "u32", "u16", "u8"];
    if !unsigned
        .iter()
        .any(|kind| message.ends_with(&format!("expected {kind}")))
    {
        return message.to_owned();
    }
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |at| at + 1);
    let end = text[offset..]
        .find('\n')
        .map_or(text.len(), |at| offset + at);
    let line = text[start..end].split('#').next().unwrap_or_default();
    let Some((key, value)) = line.split_once('=') else {
        return message.to_owned();
    };
    let (key, value) = (key.trim(), value.trim());
    let example = value
        .parse::<f64>()
        .ok()
        .filter(|number| number.is_finite())
        .map_or(1.0, |number| number.abs().round().max(1.0));
    format!("{key} = {value}: write a whole number, not negative, e.g. {key} = {example}")
}

/// serde's `unknown field `x`, expected one of `a`, `b``, said as an unknown key, the
/// known key it most resembles, and the keys there are.
fn unknown_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let closest = known
        .iter()
        .map(|candidate| (strsim::levenshtein(key, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min();
    let hint = closest.map_or(String::new(), |(_, candidate)| {
        format!(" (did you mean `{candidate}`?)")
    });
    Some(format!(
        "unknown key `{key}`{hint}; the keys here are {} (docs/scenarios.md)",
        known.join(", ")
    ))
}

/// The byte offset of the header of the `index`-th `[[devices.profiles]]` entry.
fn find_profile_entry(text: &str, index: usize) -> Option<usize> {
    let mut offset = 0;
    let mut seen = 0;
    for line in text.split_inclusive('\n') {
        let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.starts_with("[[devices.profiles]]") {
            if seen == index {
                return Some(offset);
            }
            seen += 1;
        }
        offset += line.len();
    }
    None
}

/// The byte offset of the first line that assigns `key`.
fn find_key(text: &str, key: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(offset + line.len() - trimmed.len());
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::Scenario;

    #[test]
    fn a_negative_count_names_its_key_and_a_value_that_works() {
        let text = "name = \"t\"\n[devices]\ncount = -3  # three\n";
        let err = Scenario::parse(text, "t.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.toml:3:9: count = -3: write a whole number, not negative, e.g. count = 3"
        );
        let fraction = text.replace("-3  # three", "2.5");
        let err = Scenario::parse(&fraction, "t.toml").unwrap_err();
        assert!(err.message.ends_with("e.g. count = 3"), "{err}");
        let text = text.replace("count = -3  # three", "count = \"many\"");
        let err = Scenario::parse(&text, "t.toml").unwrap_err();
        assert_eq!(
            err.message,
            "count = \"many\": write a whole number, not negative, e.g. count = 1"
        );
    }

    #[test]
    fn an_unknown_key_names_the_key_it_resembles_and_the_keys_there_are() {
        let text = "name = \"t\"\n[devices]\nhartbeat = \"8m\"\n";
        let err = Scenario::parse(text, "t.toml").unwrap_err();
        assert!(err.to_string().starts_with("t.toml:3:1: unknown key `hartbeat` (did you mean `heartbeat`?); the keys here are "), "{err}");
        assert!(err.message.contains("heartbeat_jitter"), "{err}");
        let far = Scenario::parse(&text.replace("hartbeat", "colour"), "t.toml").unwrap_err();
        assert!(!far.message.contains("did you mean"), "{far}");
    }
}
