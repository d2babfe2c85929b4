//! Hex dumps of WBXML the way people and the protocol document write them: byte pairs
//! separated by spaces or newlines, optionally `0x`-prefixed, with runs of text written as
//! C-style quoted strings (`03 "Inbox" 00`). Reading reports the line and column of the
//! first thing that is neither.

/// A hex dump that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hex at line {line}, column {column}: {problem}")]
pub struct HexError {
    pub line: usize,
    pub column: usize,
    pub problem: HexProblem,
}

/// What is wrong at a [`HexError`]'s place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HexProblem {
    #[error("a byte needs two hex digits")]
    OneDigit,
    #[error("unexpected {0:?}")]
    Unexpected(char),
    /// A backslash before this character (a space when the text ends there).
    #[error("unknown escape \\{0}")]
    UnknownEscape(char),
    #[error("unterminated quoted string")]
    Unterminated,
}

/// Reads a hex dump into bytes.
pub fn parse(text: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, ch)) = chars.next() {
        let fail = |problem: HexProblem| error_at(text, at, problem);
        match ch {
            c if c.is_whitespace() || c == ',' => {}
            '"' => read_quoted(&mut chars, &mut out).map_err(fail)?,
            '0' if chars
                .peek()
                .is_some_and(|(_, next)| *next == 'x' || *next == 'X') =>
            {
                chars.next();
            }
            c if c.is_ascii_hexdigit() => {
                let (_, low) = chars
                    .next()
                    .filter(|(_, low)| low.is_ascii_hexdigit())
                    .ok_or_else(|| fail(HexProblem::OneDigit))?;
                let high = c.to_digit(16).unwrap_or_default();
                let low = low.to_digit(16).unwrap_or_default();
                out.push((high * 16 + low) as u8);
            }
            other => return Err(fail(HexProblem::Unexpected(other))),
        }
    }
    Ok(out)
}

fn read_quoted(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    out: &mut Vec<u8>,
) -> Result<(), HexProblem> {
    let mut buffer = [0u8; 4];
    while let Some((_, ch)) = chars.next() {
        let ch = match ch {
            '"' => return Ok(()),
            '\\' => match chars.next().map(|(_, escaped)| escaped) {
                Some('n') => '\n',
                Some('t') => '\t',
                Some('0') => '\0',
                Some(escaped @ ('"' | '\\')) => escaped,
                other => return Err(HexProblem::UnknownEscape(other.unwrap_or(' '))),
            },
            ch => ch,
        };
        out.extend_from_slice(ch.encode_utf8(&mut buffer).as_bytes());
    }
    Err(HexProblem::Unterminated)
}

fn error_at(text: &str, at: usize, problem: HexProblem) -> HexError {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    HexError {
        line,
        column,
        problem,
    }
}

/// Writes bytes as upper-case hex pairs, 16 to a line.
pub fn format(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|byte| format!("{byte:02X}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pairs_prefixes_and_quoted_strings() {
        let text = "03 01 6a 00\n0x45 03 \"\\\"Bob\\\" <b>\" 00 01";
        let mut expected = vec![3, 1, 0x6A, 0, 0x45, 3];
        expected.extend_from_slice(b"\"Bob\" <b>");
        expected.extend_from_slice(&[0, 1]);
        assert_eq!(parse(text), Ok(expected));
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = parse("03 01\n6A zz").unwrap_err();
        assert_eq!((err.line, err.column), (2, 4));
        assert_eq!(err.problem, HexProblem::Unexpected('z'));
        assert!(err.to_string().ends_with("unexpected 'z'"), "{err}");
        let cases = [
            ("0", HexProblem::OneDigit, "a byte needs two hex digits"),
            (
                "\"open",
                HexProblem::Unterminated,
                "unterminated quoted string",
            ),
            (
                "\"a\\q\"",
                HexProblem::UnknownEscape('q'),
                "unknown escape \\q",
            ),
        ];
        for (text, problem, words) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.problem, problem, "{text}");
            assert!(err.to_string().ends_with(words), "{err}");
        }
    }

    #[test]
    fn formats_sixteen_to_a_line() {
        let bytes: Vec<u8> = (0..18).collect();
        assert_eq!(
            format(&bytes),
            "00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F\n10 11"
        );
    }
}
