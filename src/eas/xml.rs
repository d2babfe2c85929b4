//! The readable XML view of EAS WBXML, for people: `pingfleet wbxml decode` prints it,
//! `pingfleet wbxml encode` reads it back.
//!
//! Each code page is an XML default namespace named like libwbxml names it (`Ping:`,
//! `AirSyncBase:`), declared on the root and wherever the page changes, so the output
//! reads like `wbxml2xml -l ACTIVESYNC` and the two tools can exchange documents. Binary
//! opaque content (see [`BASE64_ELEMENTS`]) is shown in base64.

use base64::Engine as _;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use super::codepages::{self, BASE64_ELEMENTS};
use super::wbxml::{Element, Node, Tag, MAX_DEPTH};

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How to lay out the XML text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One element per line, indented by two spaces a level.
    Indented,
    /// Everything on one line.
    Compact,
}

/// An XML document that does not describe EAS WBXML, with its line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid EAS XML at line {line}, column {column}: {problem}")]
pub struct XmlError {
    pub line: usize,
    pub column: usize,
    pub problem: XmlProblem,
}

/// What is wrong at an [`XmlError`]'s place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlProblem {
    /// Not well-formed XML, in the XML reader's words.
    #[error("{0}")]
    Syntax(String),
    #[error("<{0}> nests deeper than {MAX_DEPTH}")]
    TooDeep(String),
    #[error("<{0}> has no code-page namespace; declare one such as xmlns=\"Ping:\"")]
    NoNamespace(String),
    #[error("namespace \"{0}\" is not an EAS code page")]
    NotACodePage(String),
    #[error("<{name}> is not an element of code page {page}")]
    NotAnElement { name: String, page: String },
    #[error("unexpected end tag")]
    UnexpectedEnd,
    #[error("text outside the root element")]
    TextOutsideRoot,
    #[error("the document ends before its root element")]
    NoRoot,
    #[error("content after the root element")]
    AfterRoot,
    #[error("<{name}> holds binary data and needs base64: {error}")]
    NotBase64 {
        name: String,
        error: base64::DecodeError,
    },
}

/// The document type libwbxml writes and needs to recognise EAS XML.
pub const DOCTYPE: &str =
    "<!DOCTYPE ActiveSync PUBLIC \"-//MICROSOFT//DTD ActiveSync//EN\" \"http://www.microsoft.com/\">";

/// Renders a document as XML, with the XML declaration and the ActiveSync DOCTYPE.
pub fn to_xml(root: &Element, layout: Layout) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    newline(&mut out, layout, 0);
    out.push_str(DOCTYPE);
    newline(&mut out, layout, 0);
    write_element(&mut out, root, None, layout, 0);
    if layout == Layout::Indented {
        out.push('\n');
    }
    out
}

fn newline(out: &mut String, layout: Layout, depth: usize) {
    if layout == Layout::Indented {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    }
}

fn write_element(
    out: &mut String,
    element: &Element,
    parent_page: Option<u8>,
    layout: Layout,
    depth: usize,
) {
    let name = codepages::tag_name(element.tag);
    out.push('<');
    out.push_str(&name);
    if parent_page != Some(element.tag.page) {
        out.push_str(" xmlns=\"");
        out.push_str(&codepages::namespace_name(element.tag.page));
        out.push_str(":\"");
    }
    if element.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    let only_elements = element
        .children
        .iter()
        .all(|node| matches!(node, Node::Element(_)));
    for node in &element.children {
        match node {
            Node::Element(child) => {
                let child_layout = if only_elements {
                    layout
                } else {
                    Layout::Compact
                };
                newline(out, child_layout, depth + 1);
                write_element(out, child, Some(element.tag.page), child_layout, depth + 1);
            }
            Node::Text(text) => out.push_str(&quick_xml::escape::escape(text.as_str())),
            Node::Opaque(bytes) => out.push_str(&opaque_text(element.tag, bytes)),
        }
    }
    if only_elements {
        newline(out, layout, depth);
    }
    out.push_str("</");
    out.push_str(&name);
    out.push('>');
}

/// Opaque bytes as text: base64 for binary elements or bytes that are not UTF-8.
fn opaque_text(tag: Tag, bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !BASE64_ELEMENTS.contains(&tag) => quick_xml::escape::escape(text).into_owned(),
        _ => BASE64.encode(bytes),
    }
}

/// Parses the XML view back into a document.
///
/// Every element needs a code-page namespace, declared on it or inherited (`xmlns="Ping:"`
/// or a prefix such as `xmlns:email="Email:"`); whitespace between elements is ignored;
/// comments, the XML declaration and the DOCTYPE are skipped.
pub fn from_xml(text: &str) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let position = reader.buffer_position() as usize;
        let fail = |problem: XmlProblem| error_at(text, position, problem);
        let (namespace, event) = match reader.read_resolved_event() {
            Ok(resolved) => resolved,
            Err(err) => {
                let at = reader.error_position() as usize;
                return Err(error_at(text, at, XmlProblem::Syntax(err.to_string())));
            }
        };
        match event {
            Event::Start(start) | Event::Empty(start) if stack.len() >= MAX_DEPTH => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                return Err(fail(XmlProblem::TooDeep(name)));
            }
            Event::Start(start) => {
                let tag = resolve_tag(&namespace, start.local_name().as_ref()).map_err(fail)?;
                stack.push(Element::new(tag));
            }
            Event::Empty(start) => {
                let tag = resolve_tag(&namespace, start.local_name().as_ref()).map_err(fail)?;
                if let Some(root) = attach(&mut stack, Element::new(tag)) {
                    return finish(text, &mut reader, root);
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| fail(XmlProblem::UnexpectedEnd))?;
                let element = decode_base64_content(element).map_err(fail)?;
                if let Some(root) = attach(&mut stack, element) {
                    return finish(text, &mut reader, root);
                }
            }
            Event::Text(content) => {
                let content = content
                    .unescape()
                    .map_err(|err| fail(XmlProblem::Syntax(err.to_string())))?;
                push_text(&mut stack, &content).map_err(fail)?;
            }
            Event::CData(content) => {
                let content = String::from_utf8_lossy(&content).into_owned();
                push_text(&mut stack, &content).map_err(fail)?;
            }
            Event::Eof => return Err(fail(XmlProblem::NoRoot)),
            Event::Comment(_) | Event::Decl(_) | Event::DocType(_) | Event::PI(_) => {}
        }
    }
}

fn error_at(text: &str, position: usize, problem: XmlProblem) -> XmlError {
    let before = &text.as_bytes()[..position.min(text.len())];
    let line = before.iter().filter(|byte| **byte == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|byte| *byte == b'\n')
        .map_or(0, |at| at + 1);
    XmlError {
        line,
        column: position.min(text.len()) - line_start + 1,
        problem,
    }
}

fn resolve_tag(namespace: &ResolveResult, local_name: &[u8]) -> Result<Tag, XmlProblem> {
    let name = String::from_utf8_lossy(local_name);
    let ResolveResult::Bound(namespace) = namespace else {
        return Err(XmlProblem::NoNamespace(name.into_owned()));
    };
    let namespace = String::from_utf8_lossy(namespace.as_ref());
    let page_name = namespace.strip_suffix(':').unwrap_or(&namespace);
    let page = codepages::page_by_namespace(page_name)
        .ok_or_else(|| XmlProblem::NotACodePage(namespace.to_string()))?;
    codepages::lookup(page, &name).ok_or_else(|| XmlProblem::NotAnElement {
        name: name.into_owned(),
        page: page_name.to_owned(),
    })
}

/// Adds a finished element to its parent; returns it when it is the root.
fn attach(stack: &mut [Element], element: Element) -> Option<Element> {
    match stack.last_mut() {
        Some(parent) => {
            parent.push(element);
            None
        }
        None => Some(element),
    }
}

fn push_text(stack: &mut [Element], content: &str) -> Result<(), XmlProblem> {
    let Some(parent) = stack.last_mut() else {
        return if content.trim().is_empty() {
            Ok(())
        } else {
            Err(XmlProblem::TextOutsideRoot)
        };
    };
    if content.trim().is_empty() && parent.elements().next().is_some() {
        return Ok(());
    }
    match parent.children.last_mut() {
        Some(Node::Text(existing)) => existing.push_str(content),
        _ => parent.children.push(Node::Text(content.to_owned())),
    }
    Ok(())
}

/// Drops layout whitespace around child elements and turns base64 text of binary
/// elements into opaque bytes.
fn decode_base64_content(mut element: Element) -> Result<Element, XmlProblem> {
    if element.elements().next().is_some() {
        element
            .children
            .retain(|node| !matches!(node, Node::Text(text) if text.trim().is_empty()));
    }
    if BASE64_ELEMENTS.contains(&element.tag) {
        if let Some(text) = element.text() {
            let bytes = BASE64
                .decode(text.trim())
                .map_err(|error| XmlProblem::NotBase64 {
                    name: codepages::tag_name(element.tag),
                    error,
                })?;
            element.children = vec![Node::Opaque(bytes)];
        }
    }
    Ok(element)
}

/// Only whitespace and comments may follow the root element.
fn finish(text: &str, reader: &mut NsReader<&[u8]>, root: Element) -> Result<Element, XmlError> {
    loop {
        let position = reader.buffer_position() as usize;
        match reader.read_event() {
            Ok(Event::Eof) => return Ok(root),
            Ok(Event::Text(content)) if content.iter().all(u8::is_ascii_whitespace) => {}
            Ok(Event::Comment(_)) => {}
            Ok(_) => return Err(error_at(text, position, XmlProblem::AfterRoot)),
            Err(err) => {
                let problem = XmlProblem::Syntax(err.to_string());
                return Err(error_at(text, position, problem));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::codepages::{airsync, airsyncbase, email2, ping};
    use super::*;

    fn sample() -> Element {
        Element::new(airsync::SYNC)
            .child(Element::with_text(airsync::SYNC_KEY, "a<b"))
            .child(Element::new(airsync::GET_CHANGES))
            .child(
                Element::new(airsyncbase::BODY_PREFERENCE)
                    .child(Element::with_text(airsyncbase::TYPE, "1")),
            )
            .child(Element::with_opaque(email2::CONVERSATION_ID, vec![0, 1, 2]))
    }

    #[test]
    fn both_layouts_round_trip() {
        for layout in [Layout::Indented, Layout::Compact] {
            let xml = to_xml(&sample(), layout);
            assert_eq!(from_xml(&xml).unwrap(), sample(), "{xml}");
        }
    }

    #[test]
    fn namespaces_are_declared_where_the_page_changes() {
        let xml = to_xml(&sample(), Layout::Compact);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><!DOCTYPE ActiveSync PUBLIC \
             \"-//MICROSOFT//DTD ActiveSync//EN\" \"http://www.microsoft.com/\"><Sync xmlns=\"AirSync:\">\
             <SyncKey>a&lt;b</SyncKey><GetChanges/>\
             <BodyPreference xmlns=\"AirSyncBase:\"><Type>1</Type></BodyPreference>\
             <ConversationId xmlns=\"Email2:\">AAEC</ConversationId></Sync>"
        );
    }

    #[test]
    fn prefixed_namespaces_are_accepted() {
        let xml =
            r#"<p:Ping xmlns:p="Ping:"><p:HeartbeatInterval>480</p:HeartbeatInterval></p:Ping>"#;
        let expected =
            Element::new(ping::PING).child(Element::with_text(ping::HEARTBEAT_INTERVAL, "480"));
        assert_eq!(from_xml(xml).unwrap(), expected);
    }

    #[test]
    fn errors_name_the_line_and_what_is_wrong() {
        let err = from_xml("<Ping xmlns=\"Ping:\">\n  <Nope/>\n</Ping>").unwrap_err();
        assert_eq!((err.line, err.column), (2, 3));
        let not_an_element = XmlProblem::NotAnElement {
            name: "Nope".into(),
            page: "Ping".into(),
        };
        assert_eq!(err.problem, not_an_element);
        assert!(err
            .to_string()
            .ends_with("<Nope> is not an element of code page Ping"));
        let cases = [
            (
                "<Ping>",
                XmlProblem::NoNamespace("Ping".into()),
                "no code-page namespace",
            ),
            (
                "<Ping xmlns=\"Pong:\"/>",
                XmlProblem::NotACodePage("Pong:".into()),
                "not an EAS code page",
            ),
            ("<Ping xmlns=\"Ping:\">", XmlProblem::NoRoot, "ends before"),
            (
                "<Ping xmlns=\"Ping:\"/><Ping xmlns=\"Ping:\"/>",
                XmlProblem::AfterRoot,
                "after the root",
            ),
            (
                "text<Ping xmlns=\"Ping:\"/>",
                XmlProblem::TextOutsideRoot,
                "text outside",
            ),
        ];
        for (xml, problem, words) in cases {
            let err = from_xml(xml).unwrap_err();
            assert_eq!(err.problem, problem, "{xml}");
            assert!(err.to_string().contains(words), "{err}");
        }
        let bad = "<ConversationId xmlns=\"Email2:\">not base64!</ConversationId>";
        let err = from_xml(bad).unwrap_err();
        assert!(
            matches!(&err.problem, XmlProblem::NotBase64 { name, .. } if name == "ConversationId")
        );
        assert!(
            err.to_string()
                .contains("holds binary data and needs base64"),
            "{err}"
        );
    }
}
