//! Typed EAS command bodies, for both directions: what a device sends and what a server
//! answers. Each model converts to and from the WBXML [`Element`] tree; the
//! [`WbxmlBody`] trait adds the byte-level `encode`/`decode` on top.
//!
//! Decoders are lenient the way real clients are: unknown child elements are skipped, so
//! a field a newer server adds does not break an older device. Missing required elements
//! and unreadable values are errors naming the element.

pub mod folder_sync;
pub mod ping;
pub mod provision;
pub mod settings;
pub mod sync;

use super::codepages;
use super::wbxml::{self, Element, Tag, WbxmlError};

/// Why a WBXML body is not the command it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Wbxml(#[from] WbxmlError),
    #[error("expected root element <{expected}>, found <{found}>")]
    WrongRoot { expected: String, found: String },
    #[error("<{parent}> lacks the required <{missing}>")]
    Missing { parent: String, missing: String },
    #[error("<{element}> holds {value:?}, which is not {expected}")]
    BadValue {
        element: String,
        value: String,
        expected: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
}

/// A command body that travels as WBXML.
pub trait WbxmlBody: Sized {
    /// The root element tag of this body.
    const ROOT: Tag;

    /// Builds the element tree.
    fn to_element(&self) -> Element;

    /// Reads the element tree; the root tag has already been checked.
    fn from_root(root: &Element) -> Result<Self, ModelError>;

    /// Encodes the body, WBXML header included.
    fn encode(&self) -> Vec<u8> {
        wbxml::encode(&self.to_element())
    }

    /// Reads a tree, checking its root tag.
    fn from_element(root: &Element) -> Result<Self, ModelError> {
        if root.tag != Self::ROOT {
            return Err(ModelError::WrongRoot {
                expected: codepages::tag_name(Self::ROOT),
                found: codepages::tag_name(root.tag),
            });
        }
        Self::from_root(root)
    }

    /// Decodes WBXML bytes.
    fn decode(bytes: &[u8]) -> Result<Self, ModelError> {
        Self::from_element(&wbxml::decode(bytes)?)
    }
}

/// The text of a required child element.
fn required_text(parent: &Element, tag: Tag) -> Result<String, ModelError> {
    let child = required(parent, tag)?;
    child.text().ok_or_else(|| ModelError::BadValue {
        element: codepages::tag_name(tag),
        value: "nested elements".into(),
        expected: "text",
    })
}

/// A required child element.
fn required(parent: &Element, tag: Tag) -> Result<&Element, ModelError> {
    parent.find(tag).ok_or_else(|| ModelError::Missing {
        parent: codepages::tag_name(parent.tag),
        missing: codepages::tag_name(tag),
    })
}

/// The text of an optional child element.
fn optional_text(parent: &Element, tag: Tag) -> Option<String> {
    parent.find(tag).and_then(Element::text)
}

/// A required child element holding an unsigned number.
fn required_number<T: std::str::FromStr>(parent: &Element, tag: Tag) -> Result<T, ModelError> {
    parse_number(tag, &required_text(parent, tag)?)
}

/// An optional child element holding an unsigned number.
fn optional_number<T: std::str::FromStr>(
    parent: &Element,
    tag: Tag,
) -> Result<Option<T>, ModelError> {
    optional_text(parent, tag)
        .map(|text| parse_number(tag, &text))
        .transpose()
}

fn parse_number<T: std::str::FromStr>(tag: Tag, text: &str) -> Result<T, ModelError> {
    text.trim().parse().map_err(|_| ModelError::BadValue {
        element: codepages::tag_name(tag),
        value: text.to_owned(),
        expected: "a number",
    })
}

/// An optional boolean element: `<X/>` or `<X>1</X>` is true, `<X>0</X>` false.
fn optional_flag(parent: &Element, tag: Tag) -> Result<Option<bool>, ModelError> {
    let Some(element) = parent.find(tag) else {
        return Ok(None);
    };
    match element.text().as_deref().map(str::trim) {
        Some("") | Some("1") => Ok(Some(true)),
        Some("0") => Ok(Some(false)),
        other => Err(ModelError::BadValue {
            element: codepages::tag_name(tag),
            value: other.unwrap_or("nested elements").to_owned(),
            expected: "0 or 1",
        }),
    }
}

/// Appends `<tag>0|1</tag>` when the flag is set.
fn push_flag(parent: &mut Element, tag: Tag, value: Option<bool>) {
    if let Some(value) = value {
        parent.push(Element::with_text(tag, if value { "1" } else { "0" }));
    }
}

#[cfg(test)]
mod tests {
    use super::ping::PingRequest;
    use super::*;

    #[test]
    fn wrong_root_is_named() {
        let bytes = wbxml::encode(&Element::new(codepages::airsync::SYNC));
        let err = PingRequest::decode(&bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected root element <Ping>, found <Sync>"
        );
    }

    #[test]
    fn flags_accept_empty_and_numeric_forms() {
        let tag = codepages::airsync::GET_CHANGES;
        let parent = |child: Element| Element::new(codepages::airsync::COLLECTION).child(child);
        assert_eq!(
            optional_flag(&parent(Element::new(tag)), tag),
            Ok(Some(true))
        );
        let zero = parent(Element::with_text(tag, "0"));
        assert_eq!(optional_flag(&zero, tag), Ok(Some(false)));
        let bad = parent(Element::with_text(tag, "yes"));
        assert!(optional_flag(&bad, tag).is_err());
        let none = Element::new(codepages::airsync::COLLECTION);
        assert_eq!(optional_flag(&none, tag), Ok(None));
    }
}
