//! The HTTP shapes both connection engines hand to the EAS handler and get back: the
//! request head fields EAS cares about, and a complete response. The lean engine reads
//! and writes these itself; the hyper engine converts from and to hyper's types.

use std::io::Write as _;

use crate::eas::headers::{CONTENT_TYPE_WBXML, MS_SERVER_ACTIVESYNC};

/// The request method, as far as EAS distinguishes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Options,
    Post,
    Other(String),
}

impl Method {
    pub fn parse(method: &str) -> Self {
        match method {
            "OPTIONS" => Self::Options,
            "POST" => Self::Post,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// How the lean engine frames its response bodies. pingfleet sends `Content-Length`;
/// other servers send chunked bodies (behind many proxies) or end the body by closing
/// the connection (Z-Push above 1 MiB). The others exist to test clients against them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ResponseFraming {
    #[default]
    Length,
    Chunked,
    /// No length: the connection closes after each response.
    Close,
}

/// How the lean engine writes responses: their framing, and whether every body is
/// gzip-compressed (as PHP's `zlib.output_compression` does, empty bodies included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseStyle {
    pub framing: ResponseFraming,
    pub gzip_everything: bool,
}

/// The parts of a request head the EAS handler reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    pub target: String,
    pub authorization: Option<String>,
    pub protocol_version: Option<String>,
    pub policy_key: Option<String>,
    pub accepts_gzip: bool,
}

impl RequestHead {
    /// A head with only method and target set.
    pub fn new(method: Method, target: impl Into<String>) -> Self {
        Self {
            method,
            target: target.into(),
            authorization: None,
            protocol_version: None,
            policy_key: None,
            accepts_gzip: false,
        }
    }

    /// Records one header, if EAS cares about it (names compare without case).
    pub fn set_header(&mut self, name: &str, value: &str) {
        let value = value.trim();
        if name.eq_ignore_ascii_case("authorization") {
            self.authorization = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case(crate::eas::headers::MS_AS_PROTOCOL_VERSION) {
            self.protocol_version = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case(crate::eas::headers::X_MS_POLICY_KEY) {
            self.policy_key = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("accept-encoding") {
            self.accepts_gzip = value
                .split(',')
                .any(|coding| coding.trim().split(';').next() == Some("gzip"));
        }
    }
}

/// A complete response. `Content-Length` is always derived from the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header (builder style).
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A plain-text error body, for people reading a failed request.
    pub fn text(status: u16, message: &str) -> Self {
        let mut response = Self::new(status).header("Content-Type", "text/plain; charset=utf-8");
        response.body = format!("{message}\n").into_bytes();
        response
    }

    /// A header's value, if present.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// The reason phrase of a status code pingfleet sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        449 => "Retry With",
        451 => "Redirect",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// The version this server announces in `MS-Server-ActiveSync`.
pub const SERVER_VERSION: &str = "16.1";

/// Bodies smaller than this are not worth compressing (a Ping response is 13-20 bytes).
pub const GZIP_MIN_BYTES: usize = 256;

/// A 200 response with a WBXML body, gzip-compressed when the client accepts it and the
/// body is large enough to gain from it.
pub fn eas_response(body: Vec<u8>, accepts_gzip: bool) -> Response {
    let mut response = Response::new(200)
        .header("Content-Type", CONTENT_TYPE_WBXML)
        .header(MS_SERVER_ACTIVESYNC, SERVER_VERSION);
    if accepts_gzip && body.len() >= GZIP_MIN_BYTES {
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 2),
            flate2::Compression::fast(),
        );
        if encoder.write_all(&body).is_ok() {
            if let Ok(compressed) = encoder.finish() {
                response.body = compressed;
                return response.header("Content-Encoding", "gzip");
            }
        }
    }
    response.body = body;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;
    #[test]
    fn large_bodies_are_gzipped_when_accepted() {
        let body = vec![b'a'; 1000];
        let plain = eas_response(body.clone(), false);
        assert_eq!(plain.body, body);
        assert_eq!(plain.header_value("Content-Encoding"), None);
        let small = eas_response(vec![1, 2, 3], true);
        assert_eq!(small.header_value("Content-Encoding"), None);
        let gzipped = eas_response(body.clone(), true);
        assert_eq!(gzipped.header_value("Content-Encoding"), Some("gzip"));
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gzipped.body[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, body);
    }

    #[test]
    fn headers_are_read_without_case() {
        let mut head = RequestHead::new(Method::Post, "/");
        head.set_header("ms-asprotocolversion", " 14.1 ");
        head.set_header("X-MS-POLICYKEY", "7");
        head.set_header("Accept-Encoding", "deflate, gzip;q=1.0");
        head.set_header("User-Agent", "x");
        assert_eq!(head.protocol_version.as_deref(), Some("14.1"));
        assert_eq!(head.policy_key.as_deref(), Some("7"));
        assert!(head.accepts_gzip);
        head.set_header("accept-encoding", "gzipped");
        assert!(!head.accepts_gzip);
    }
}
