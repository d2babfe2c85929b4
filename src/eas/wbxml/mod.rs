//! WBXML as EAS uses it (MS-ASWBXML): the element tree every command model is built
//! from, and the binary codec for it.
//!
//! The tree is deliberately small: elements named by `(code page, token)`, inline text and
//! opaque bytes. Attributes, entities and processing instructions are not used by EAS and
//! are refused by the decoder. Token names live in [`crate::eas::codepages`].

mod decode;
mod encode;

pub use decode::{decode, WbxmlError, WbxmlErrorKind, MAX_DEPTH};
pub use encode::encode;

/// The four header bytes every EAS body starts with: WBXML 1.3, public id 1 (unknown),
/// charset 106 (UTF-8), an empty string table.
pub const EAS_HEADER: [u8; 4] = [0x03, 0x01, 0x6A, 0x00];

/// Global tokens of WBXML 1.3 that EAS uses or that the decoder must recognise.
pub(crate) mod token {
    pub(crate) const SWITCH_PAGE: u8 = 0x00;
    pub(crate) const END: u8 = 0x01;
    pub(crate) const ENTITY: u8 = 0x02;
    pub(crate) const STR_I: u8 = 0x03;
    pub(crate) const STR_T: u8 = 0x83;
    pub(crate) const OPAQUE: u8 = 0xC3;
    pub(crate) const CONTENT_FLAG: u8 = 0x40;
    pub(crate) const ATTRIBUTE_FLAG: u8 = 0x80;
    pub(crate) const TAG_MASK: u8 = 0x3F;
}

/// An element name: a code page and a token (5..=0x3F) on that page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    pub page: u8,
    pub token: u8,
}

impl Tag {
    pub const fn new(page: u8, token: u8) -> Self {
        Self { page, token }
    }
}

/// One piece of an element's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
    Opaque(Vec<u8>),
}

/// A WBXML element and its content, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub tag: Tag,
    pub children: Vec<Node>,
}

impl Element {
    /// An element with no content (`<GetChanges/>`).
    pub fn new(tag: Tag) -> Self {
        Self {
            tag,
            children: Vec::new(),
        }
    }

    /// An element holding one inline string.
    pub fn with_text(tag: Tag, text: impl Into<String>) -> Self {
        Self {
            tag,
            children: vec![Node::Text(text.into())],
        }
    }

    /// An element holding opaque bytes.
    pub fn with_opaque(tag: Tag, bytes: Vec<u8>) -> Self {
        Self {
            tag,
            children: vec![Node::Opaque(bytes)],
        }
    }

    /// Appends a child element (builder style).
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Appends a text child element when `text` is present (builder style).
    pub fn optional_text(self, tag: Tag, text: Option<impl Into<String>>) -> Self {
        match text {
            Some(text) => self.child(Element::with_text(tag, text)),
            None => self,
        }
    }

    /// Appends a child element.
    pub fn push(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    /// The child elements, skipping text and opaque content.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            _ => None,
        })
    }

    /// The first child element with this tag.
    pub fn find(&self, tag: Tag) -> Option<&Element> {
        self.elements().find(|element| element.tag == tag)
    }

    /// Every child element with this tag.
    pub fn find_all(&self, tag: Tag) -> impl Iterator<Item = &Element> {
        self.elements().filter(move |element| element.tag == tag)
    }

    /// The element's text: inline strings concatenated, opaque bytes read as UTF-8.
    /// `None` when the content is not text (it holds elements, or invalid UTF-8).
    pub fn text(&self) -> Option<String> {
        let mut out = String::new();
        for node in &self.children {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Opaque(bytes) => out.push_str(std::str::from_utf8(bytes).ok()?),
                Node::Element(_) => return None,
            }
        }
        Some(out)
    }

    /// The element's opaque or text content as raw bytes.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for node in &self.children {
            match node {
                Node::Text(text) => out.extend_from_slice(text.as_bytes()),
                Node::Opaque(bytes) => out.extend_from_slice(bytes),
                Node::Element(_) => return None,
            }
        }
        Some(out)
    }

    /// Whether the element has no content at all (`<MoreAvailable/>`).
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }
}
