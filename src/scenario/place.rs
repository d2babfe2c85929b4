//! Where a scenario's error points: a key's first assignment or a profile entry's
//! header, turned into the file's line and column.

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
