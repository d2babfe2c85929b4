//! The `pingfleet wbxml` tools: turn a captured EAS body into readable XML and back, for
//! people debugging a device or a server. Reading files and printing are left to
//! `main.rs`; this module only converts and explains what is wrong with bad input.

use crate::eas::{hex, wbxml, xml};

/// Input the `wbxml` tools cannot convert, with where it went wrong.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Hex(#[from] hex::HexError),
    #[error(transparent)]
    Wbxml(#[from] wbxml::WbxmlError),
    #[error(transparent)]
    Xml(#[from] xml::XmlError),
    #[error("the input is not UTF-8 text (at byte {0}); XML and hex input must be text")]
    NotText(usize),
    #[error("the input is empty")]
    Empty,
}

/// How the WBXML side is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryForm {
    /// Raw bytes.
    Raw,
    /// A hex dump (see [`crate::eas::hex`]).
    Hex,
}

/// WBXML (raw or hex) to XML text.
pub fn decode_to_xml(
    input: &[u8],
    form: BinaryForm,
    layout: xml::Layout,
) -> Result<String, InspectError> {
    let bytes = match form {
        BinaryForm::Raw => input.to_vec(),
        BinaryForm::Hex => hex::parse(as_text(input)?)?,
    };
    if bytes.is_empty() {
        return Err(InspectError::Empty);
    }
    Ok(xml::to_xml(&wbxml::decode(&bytes)?, layout))
}

/// XML text to WBXML (raw bytes, or a hex dump with a trailing newline).
pub fn encode_from_xml(input: &[u8], form: BinaryForm) -> Result<Vec<u8>, InspectError> {
    let root = xml::from_xml(as_text(input)?)?;
    let bytes = wbxml::encode(&root);
    Ok(match form {
        BinaryForm::Raw => bytes,
        BinaryForm::Hex => format!("{}\n", hex::format(&bytes)).into_bytes(),
    })
}

fn as_text(input: &[u8]) -> Result<&str, InspectError> {
    std::str::from_utf8(input).map_err(|err| InspectError::NotText(err.valid_up_to()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_in_xml_out_and_back() {
        let hex_text = b"03 01 6A 00 00 0D 45 47 03 31 00 01 01";
        let text = decode_to_xml(hex_text, BinaryForm::Hex, xml::Layout::Compact).unwrap();
        assert!(text.ends_with("<Ping xmlns=\"Ping:\"><Status>1</Status></Ping>"));
        let back = encode_from_xml(text.as_bytes(), BinaryForm::Hex).unwrap();
        assert_eq!(back, b"03 01 6A 00 00 0D 45 47 03 31 00 01 01\n");
    }

    #[test]
    fn bad_input_is_explained() {
        let err = decode_to_xml(b"", BinaryForm::Raw, xml::Layout::Compact).unwrap_err();
        assert!(matches!(err, InspectError::Empty));
        let err = decode_to_xml(b"\x03\x01\x6a", BinaryForm::Raw, xml::Layout::Compact);
        assert!(err.unwrap_err().to_string().contains("byte 3"));
        let err = encode_from_xml(b"<a>\xff</a>", BinaryForm::Raw).unwrap_err();
        assert!(matches!(err, InspectError::NotText(3)));
    }
}
