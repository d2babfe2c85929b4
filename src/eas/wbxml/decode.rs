//! The WBXML decoder: bytes to an [`Element`] tree, or a typed error naming the byte
//! offset. It never panics and never recurses (an explicit stack bounded by
//! [`MAX_DEPTH`]), so any input a socket or a fuzzer hands it is safe.

use super::{token, Element, Node, Tag};

/// The deepest element nesting accepted. EAS documents nest about 8 deep (a Sync
/// response with an Email body); 32 leaves room for every real command.
pub const MAX_DEPTH: usize = 32;

/// Charset 106 is UTF-8 (IANA MIBenum); 0 means "unknown" and is read as UTF-8 too.
const UTF8_MIB: u32 = 106;

/// A decoding failure and where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid WBXML at byte {offset}: {kind}")]
pub struct WbxmlError {
    /// Offset of the byte that could not be read, from the start of the input.
    pub offset: usize,
    pub kind: WbxmlErrorKind,
}

/// What was wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WbxmlErrorKind {
    #[error("input ends too early")]
    Truncated,
    #[error("WBXML version byte {0:#04x} is not 1.0 to 1.3")]
    UnsupportedVersion(u8),
    #[error("charset {0} is not UTF-8 (106)")]
    UnsupportedCharset(u32),
    #[error("multi-byte integer does not fit in 32 bits")]
    IntegerOverflow,
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("string table reference {0} is outside the string table")]
    BadStringTableReference(u32),
    #[error("global token {0:#04x} is not used by EAS")]
    UnsupportedToken(u8),
    #[error("tag {0:#04x} carries attributes, which EAS never uses")]
    AttributesNotSupported(u8),
    #[error("END with no open element")]
    UnbalancedEnd,
    #[error("text outside the root element")]
    ContentOutsideRoot,
    #[error("data after the root element ended")]
    TrailingData,
    #[error("no root element")]
    NoRootElement,
    #[error("elements nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("entity {0:#x} is not a non-NUL Unicode scalar value")]
    BadEntity(u32),
}

/// Decodes one EAS WBXML document.
///
/// Accepts the header EAS writes (`03 01 6A 00`) and the general WBXML 1.x header
/// (a public id given as a string-table index, a string table), a body that starts with
/// or without `SWITCH_PAGE 0`, inline strings, string-table strings, opaque data and
/// character entities.
pub fn decode(input: &[u8]) -> Result<Element, WbxmlError> {
    let mut reader = Reader { input, pos: 0 };
    let string_table = reader.header()?;
    Parser {
        reader,
        string_table,
        page: 0,
        stack: Vec::new(),
    }
    .body()
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, kind: WbxmlErrorKind) -> WbxmlError {
        WbxmlError {
            offset: self.pos,
            kind,
        }
    }

    fn byte(&mut self) -> Result<u8, WbxmlError> {
        let byte = *self
            .input
            .get(self.pos)
            .ok_or_else(|| self.error(WbxmlErrorKind::Truncated))?;
        self.pos += 1;
        Ok(byte)
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// mb_u_int32: 7 bits a byte, most significant group first, high bit on all but the last.
    fn mb_u_int32(&mut self) -> Result<u32, WbxmlError> {
        let start = self.pos;
        let mut value: u32 = 0;
        for _ in 0..5 {
            let byte = self.byte()?;
            if value > (u32::MAX >> 7) {
                return Err(WbxmlError {
                    offset: start,
                    kind: WbxmlErrorKind::IntegerOverflow,
                });
            }
            value = (value << 7) | u32::from(byte & 0x7F);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WbxmlError {
            offset: start,
            kind: WbxmlErrorKind::IntegerOverflow,
        })
    }

    fn slice(&mut self, len: usize) -> Result<&'a [u8], WbxmlError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.input.len())
            .ok_or_else(|| self.error(WbxmlErrorKind::Truncated))?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// A NUL-terminated UTF-8 string (STR_I).
    fn inline_string(&mut self) -> Result<String, WbxmlError> {
        let start = self.pos;
        let rest = &self.input[self.pos..];
        let len = rest
            .iter()
            .position(|byte| *byte == 0)
            .ok_or_else(|| self.error(WbxmlErrorKind::Truncated))?;
        let text = std::str::from_utf8(&rest[..len]).map_err(|_| WbxmlError {
            offset: start,
            kind: WbxmlErrorKind::InvalidUtf8,
        })?;
        self.pos += len + 1;
        Ok(text.to_owned())
    }

    /// Version, public id, charset and string table. Returns the string table.
    fn header(&mut self) -> Result<&'a [u8], WbxmlError> {
        let version = self.byte()?;
        if !(0x00..=0x03).contains(&version) {
            self.pos -= 1;
            return Err(self.error(WbxmlErrorKind::UnsupportedVersion(version)));
        }
        if self.mb_u_int32()? == 0 {
            // Public id given as an index into the string table; EAS ignores it.
            self.mb_u_int32()?;
        }
        let charset_at = self.pos;
        let charset = self.mb_u_int32()?;
        if charset != UTF8_MIB && charset != 0 {
            return Err(WbxmlError {
                offset: charset_at,
                kind: WbxmlErrorKind::UnsupportedCharset(charset),
            });
        }
        let table_len = self.mb_u_int32()? as usize;
        self.slice(table_len)
    }
}

struct Parser<'a> {
    reader: Reader<'a>,
    string_table: &'a [u8],
    page: u8,
    /// Open elements, innermost last.
    stack: Vec<Element>,
}

impl<'a> Parser<'a> {
    fn body(mut self) -> Result<Element, WbxmlError> {
        while let Some(byte) = self.reader.peek() {
            let at = self.reader.pos;
            self.reader.pos += 1;
            match byte {
                token::SWITCH_PAGE => self.page = self.reader.byte()?,
                token::END => {
                    let done = self.stack.pop().ok_or(WbxmlError {
                        offset: at,
                        kind: WbxmlErrorKind::UnbalancedEnd,
                    })?;
                    if let Some(root) = self.close(done) {
                        return self.finish(root);
                    }
                }
                token::STR_I => {
                    let text = self.reader.inline_string()?;
                    self.content(at, Node::Text(text))?;
                }
                token::STR_T => {
                    let text = self.table_string()?;
                    self.content(at, Node::Text(text))?;
                }
                token::OPAQUE => {
                    let len = self.reader.mb_u_int32()? as usize;
                    let bytes = self.reader.slice(len)?.to_vec();
                    self.content(at, Node::Opaque(bytes))?;
                }
                token::ENTITY => {
                    let code = self.reader.mb_u_int32()?;
                    let ch = char::from_u32(code)
                        .filter(|ch| *ch != '\0')
                        .ok_or(WbxmlError {
                            offset: at,
                            kind: WbxmlErrorKind::BadEntity(code),
                        })?;
                    self.content(at, Node::Text(ch.to_string()))?;
                }
                tag_byte if tag_byte & token::TAG_MASK >= 0x05 => {
                    if let Some(root) = self.open(at, tag_byte)? {
                        return self.finish(root);
                    }
                }
                other => {
                    return Err(WbxmlError {
                        offset: at,
                        kind: WbxmlErrorKind::UnsupportedToken(other),
                    })
                }
            }
        }
        Err(self.reader.error(if self.stack.is_empty() {
            WbxmlErrorKind::NoRootElement
        } else {
            WbxmlErrorKind::Truncated
        }))
    }

    /// Handles a tag byte. Returns the finished root when an empty root element closes
    /// the document at once.
    fn open(&mut self, at: usize, tag_byte: u8) -> Result<Option<Element>, WbxmlError> {
        if tag_byte & token::ATTRIBUTE_FLAG != 0 {
            return Err(WbxmlError {
                offset: at,
                kind: WbxmlErrorKind::AttributesNotSupported(tag_byte),
            });
        }
        let element = Element::new(Tag::new(self.page, tag_byte & token::TAG_MASK));
        if tag_byte & token::CONTENT_FLAG == 0 {
            return Ok(self.close(element));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(WbxmlError {
                offset: at,
                kind: WbxmlErrorKind::TooDeep,
            });
        }
        self.stack.push(element);
        Ok(None)
    }

    /// Attaches a finished element to its parent, or returns it when it is the root.
    fn close(&mut self, element: Element) -> Option<Element> {
        match self.stack.last_mut() {
            Some(parent) => {
                parent.children.push(Node::Element(element));
                None
            }
            None => Some(element),
        }
    }

    /// Adds content to the open element. Adjacent strings (STR_I then STR_T, as
    /// encoders with a string table write them) join into one text node.
    fn content(&mut self, at: usize, node: Node) -> Result<(), WbxmlError> {
        let parent = self.stack.last_mut().ok_or(WbxmlError {
            offset: at,
            kind: WbxmlErrorKind::ContentOutsideRoot,
        })?;
        match (parent.children.last_mut(), node) {
            (Some(Node::Text(existing)), Node::Text(more)) => existing.push_str(&more),
            (_, node) => parent.children.push(node),
        }
        Ok(())
    }

    fn table_string(&mut self) -> Result<String, WbxmlError> {
        let at = self.reader.pos;
        let index = self.reader.mb_u_int32()?;
        let bad_reference = WbxmlError {
            offset: at,
            kind: WbxmlErrorKind::BadStringTableReference(index),
        };
        let rest = self
            .string_table
            .get(index as usize..)
            .ok_or(bad_reference.clone())?;
        let len = rest.iter().position(|b| *b == 0).ok_or(bad_reference)?;
        std::str::from_utf8(&rest[..len])
            .map(str::to_owned)
            .map_err(|_| WbxmlError {
                offset: at,
                kind: WbxmlErrorKind::InvalidUtf8,
            })
    }

    /// The root closed: only trailing SWITCH_PAGEs (which some encoders leave) may follow.
    fn finish(mut self, root: Element) -> Result<Element, WbxmlError> {
        while let Some(byte) = self.reader.peek() {
            if byte != token::SWITCH_PAGE {
                return Err(self.reader.error(WbxmlErrorKind::TrailingData));
            }
            self.reader.pos += 1;
            self.reader.byte()?;
        }
        Ok(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .map(|pair| u8::from_str_radix(pair, 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_with_and_without_leading_switch_page_zero() {
        let bare = decode(&hex("03 01 6A 00 45 13 01")).unwrap();
        let switched = decode(&hex("03 01 6A 00 00 00 45 13 01")).unwrap();
        assert_eq!(bare, switched);
        assert_eq!(bare.tag, Tag::new(0, 5));
        assert_eq!(
            bare.children,
            vec![Node::Element(Element::new(Tag::new(0, 0x13)))]
        );
    }

    #[test]
    fn multi_byte_integers_follow_the_spec_examples() {
        for (bytes, value) in [("7F", 127u32), ("81 00", 128), ("82 2C", 300)] {
            let data = hex(bytes);
            let mut reader = Reader {
                input: &data,
                pos: 0,
            };
            assert_eq!(reader.mb_u_int32().unwrap(), value);
        }
        let data = hex("FF FF FF FF 7F");
        let mut reader = Reader {
            input: &data,
            pos: 0,
        };
        assert_eq!(
            reader.mb_u_int32().unwrap_err().kind,
            WbxmlErrorKind::IntegerOverflow
        );
    }

    #[test]
    fn reads_the_general_header_with_a_string_table() {
        // What xml2wbxml writes: public id as string-table index 0, a 3-byte table.
        let doc = decode(&hex("03 00 00 6A 03 61 62 00 45 83 00 03 63 00 01")).unwrap();
        assert_eq!(doc.children, vec![Node::Text("abc".into())]);
    }

    #[test]
    fn errors_name_the_offset() {
        let err = decode(&hex("03 01 6A 00 45 03 61 62")).unwrap_err();
        assert_eq!(err.kind, WbxmlErrorKind::Truncated);
        assert_eq!(err.offset, 6);
        let err = decode(&hex("03 01 6A 00 45 01 01")).unwrap_err();
        assert_eq!((err.offset, err.kind), (6, WbxmlErrorKind::TrailingData));
        let err = decode(&hex("03 01 6A 00 01")).unwrap_err();
        assert_eq!((err.offset, err.kind), (4, WbxmlErrorKind::UnbalancedEnd));
        let err = decode(&hex("03 01 04 00 45 01")).unwrap_err();
        assert_eq!(err.kind, WbxmlErrorKind::UnsupportedCharset(4));
        let err = decode(&hex("03 01 6A 00 C5 01")).unwrap_err();
        assert_eq!(err.kind, WbxmlErrorKind::AttributesNotSupported(0xC5));
        assert_eq!(decode(&[]).unwrap_err().kind, WbxmlErrorKind::Truncated);
        let err = decode(&hex("03 01 6A 00")).unwrap_err();
        assert_eq!(err.kind, WbxmlErrorKind::NoRootElement);
    }

    #[test]
    fn nesting_is_bounded() {
        let mut data = hex("03 01 6A 00");
        data.extend(std::iter::repeat_n(0x45, MAX_DEPTH + 1));
        let err = decode(&data).unwrap_err();
        assert_eq!(err.kind, WbxmlErrorKind::TooDeep);
        assert_eq!(err.offset, 4 + MAX_DEPTH);
    }

    #[test]
    fn opaque_and_entities_are_content() {
        let doc = decode(&hex("03 01 6A 00 45 C3 02 00 FF 02 41 01")).unwrap();
        assert_eq!(
            doc.children,
            vec![Node::Opaque(vec![0x00, 0xFF]), Node::Text("A".into())]
        );
        // A NUL entity could not be written back as an inline string.
        let err = decode(&hex("03 01 6A 00 45 02 00 01")).unwrap_err();
        assert_eq!((err.offset, err.kind), (5, WbxmlErrorKind::BadEntity(0)));
    }
}
