//! The WBXML encoder: an [`Element`] tree to the bytes EAS clients and servers send.
//!
//! It writes the EAS header, emits SWITCH_PAGE only when the code page changes (so a
//! document on page 0 has no leading `00 00`, as Z-Push and Android write), writes an
//! element without content as the bare token, and strings as STR_I. A string holding a
//! NUL byte cannot be an inline string, so it goes out as OPAQUE instead.

use super::{token, Element, Node, EAS_HEADER};

/// Encodes a document, header included.
pub fn encode(root: &Element) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&EAS_HEADER);
    let mut page = 0u8;
    write_element(&mut out, &mut page, root);
    out
}

/// Writes one element. Recursion depth is the tree's depth, which is bounded by whoever
/// built the tree (the decoder caps it at [`super::MAX_DEPTH`]).
fn write_element(out: &mut Vec<u8>, page: &mut u8, element: &Element) {
    if element.tag.page != *page {
        out.extend_from_slice(&[token::SWITCH_PAGE, element.tag.page]);
        *page = element.tag.page;
    }
    let tag_byte = element.tag.token & token::TAG_MASK;
    if element.children.is_empty() {
        out.push(tag_byte);
        return;
    }
    out.push(tag_byte | token::CONTENT_FLAG);
    for node in &element.children {
        match node {
            Node::Element(child) => write_element(out, page, child),
            Node::Text(text) if !text.as_bytes().contains(&0) => {
                out.push(token::STR_I);
                out.extend_from_slice(text.as_bytes());
                out.push(0);
            }
            Node::Text(text) => write_opaque(out, text.as_bytes()),
            Node::Opaque(bytes) => write_opaque(out, bytes),
        }
    }
    out.push(token::END);
}

fn write_opaque(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(token::OPAQUE);
    write_mb_u_int32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

/// mb_u_int32: 7 bits a byte, most significant group first.
fn write_mb_u_int32(out: &mut Vec<u8>, value: u32) {
    let mut groups = [0u8; 5];
    let mut count = 0;
    let mut rest = value;
    loop {
        groups[count] = (rest & 0x7F) as u8;
        count += 1;
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    for index in (0..count).rev() {
        let continuation = if index > 0 { 0x80 } else { 0 };
        out.push(groups[index] | continuation);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode, Tag};
    use super::*;

    #[test]
    fn multi_byte_integers_follow_the_spec_examples() {
        for (value, bytes) in [
            (0u32, vec![0x00]),
            (127, vec![0x7F]),
            (128, vec![0x81, 0x00]),
            (300, vec![0x82, 0x2C]),
        ] {
            let mut out = Vec::new();
            write_mb_u_int32(&mut out, value);
            assert_eq!(out, bytes, "{value}");
        }
    }

    #[test]
    fn switches_page_only_on_change_and_empty_elements_are_bare() {
        let root = Element::new(Tag::new(0, 0x05))
            .child(Element::new(Tag::new(0, 0x13)))
            .child(Element::with_text(Tag::new(0x11, 0x06), "1"))
            .child(Element::new(Tag::new(0x11, 0x0D)));
        let bytes = encode(&root);
        assert_eq!(
            bytes,
            [3, 1, 0x6A, 0, 0x45, 0x13, 0, 0x11, 0x46, 3, b'1', 0, 1, 0x0D, 1]
        );
        assert_eq!(decode(&bytes).unwrap(), root);
    }

    #[test]
    fn text_with_nul_becomes_opaque() {
        let root = Element::with_text(Tag::new(0, 0x05), "a\0b");
        let bytes = encode(&root);
        assert_eq!(&bytes[4..], &[0x45, 0xC3, 3, b'a', 0, b'b', 1]);
        assert_eq!(decode(&bytes).unwrap().bytes().unwrap(), b"a\0b");
    }
}
