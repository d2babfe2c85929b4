//! The device side of HTTP/1.1, sans-IO: request bytes out, response bytes in. Bodies
//! are framed by Content-Length; a gzip body is inflated before the device sees it.

use std::io::Read as _;

use crate::eas::headers::{CONTENT_TYPE_WBXML, X_MS_LOCATION};

/// The largest response head and body a device accepts.
const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
const MAX_HEADERS: usize = 48;

/// A response as a device needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Retry-After` in seconds (503).
    pub retry_after_s: Option<u64>,
    /// `X-MS-Location` (451).
    pub location: Option<String>,
    /// `MS-ASProtocolVersions` (OPTIONS).
    pub protocol_versions: Option<String>,
    /// The server will close the connection after this response.
    pub closes: bool,
    /// Bytes this response took on the wire, head included.
    pub wire_bytes: usize,
}

/// A response that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed response head: {0}")]
    Malformed(String),
    #[error("response head or body too large")]
    TooLarge,
    #[error("gzip body cannot be inflated")]
    BadGzip,
}

/// Accumulates response bytes and yields complete responses.
#[derive(Debug, Default)]
pub struct ResponseReader {
    buffer: Vec<u8>,
}

impl ResponseReader {
    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Whether bytes of an unfinished response are buffered.
    pub fn has_partial(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// The next complete response, if one is buffered.
    pub fn next_response(&mut self) -> Result<Option<HttpResponse>, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let head_len = match parsed.parse(&self.buffer) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if self.buffer.len() > MAX_HEAD_BYTES => {
                return Err(HttpError::TooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(err) => return Err(HttpError::Malformed(err.to_string())),
        };
        let mut response = HttpResponse {
            status: parsed.code.unwrap_or(0),
            closes: parsed.version == Some(0),
            ..HttpResponse::default()
        };
        let mut length = 0usize;
        let mut gzip = false;
        for header in parsed.headers.iter() {
            let value = String::from_utf8_lossy(header.value).trim().to_owned();
            let name = header.name;
            if name.eq_ignore_ascii_case("content-length") {
                length = value
                    .parse()
                    .map_err(|_| HttpError::Malformed("Content-Length".into()))?;
            } else if name.eq_ignore_ascii_case("connection") {
                response.closes = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("content-encoding") {
                gzip = value.eq_ignore_ascii_case("gzip");
            } else if name.eq_ignore_ascii_case("retry-after") {
                response.retry_after_s = value.parse().ok();
            } else if name.eq_ignore_ascii_case(X_MS_LOCATION) {
                response.location = Some(value);
            } else if name.eq_ignore_ascii_case("ms-asprotocolversions") {
                response.protocol_versions = Some(value);
            }
        }
        if length > MAX_BODY_BYTES {
            return Err(HttpError::TooLarge);
        }
        if self.buffer.len() < head_len + length {
            return Ok(None);
        }
        let raw = &self.buffer[head_len..head_len + length];
        response.body = if gzip { inflate(raw)? } else { raw.to_vec() };
        response.wire_bytes = head_len + length;
        self.buffer.drain(..head_len + length);
        if self.buffer.is_empty() {
            self.buffer = Vec::new();
        }
        Ok(Some(response))
    }
}

fn inflate(raw: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    // The bufread decoder reads the slice in place (the read one would add a 32 KiB buffer
    // to every response).
    flate2::bufread::GzDecoder::new(raw)
        .take(MAX_BODY_BYTES as u64)
        .read_to_end(&mut out)
        .map_err(|_| HttpError::BadGzip)?;
    Ok(out)
}

/// One request to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub host: &'a str,
    pub authorization: &'a str,
    pub user_agent: &'a str,
    /// `(name, value)` pairs beyond the standard ones.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub close: bool,
}

impl Request<'_> {
    /// The request's bytes: head and body.
    pub fn encode(&self) -> Vec<u8> {
        use std::fmt::Write as _;
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "{} {} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nUser-Agent: {}\r\nAccept-Encoding: gzip\r\n",
            self.method, self.target, self.host, self.authorization, self.user_agent
        );
        for (name, value) in self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if self.method == "POST" {
            let _ = write!(
                head,
                "Content-Type: {CONTENT_TYPE_WBXML}\r\nContent-Length: {}\r\n",
                self.body.len()
            );
        }
        if self.close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn reads_responses_split_anywhere_and_back_to_back() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 503 Busy\r\nRetry-After: 30\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        for split in 0..wire.len() {
            let mut reader = ResponseReader::default();
            let mut seen = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                reader.feed(part);
                while let Some(response) = reader.next_response().unwrap() {
                    seen.push(response);
                }
            }
            assert_eq!(seen.len(), 2, "split at {split}");
            assert_eq!(seen[0].body, b"abc");
            assert_eq!(
                (seen[1].status, seen[1].retry_after_s, seen[1].closes),
                (503, Some(30), true)
            );
            assert!(!reader.has_partial());
        }
    }

    #[test]
    fn inflates_gzip_and_reads_eas_headers() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"hello").unwrap();
        let body = encoder.finish().unwrap();
        let mut wire = format!(
            "HTTP/1.1 451 Redirect\r\nContent-Encoding: gzip\r\nX-MS-Location: https://b/x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        wire.extend_from_slice(&body);
        let mut reader = ResponseReader::default();
        reader.feed(&wire);
        let response = reader.next_response().unwrap().unwrap();
        assert_eq!(response.body, b"hello");
        assert_eq!(response.location.as_deref(), Some("https://b/x"));
        assert_eq!(response.wire_bytes, wire.len());
    }

    #[test]
    fn rejects_garbage() {
        let mut reader = ResponseReader::default();
        reader.feed(b"garbage\r\n\r\n");
        assert!(matches!(
            reader.next_response(),
            Err(HttpError::Malformed(_))
        ));
    }

    #[test]
    fn encodes_a_post() {
        let request = Request {
            method: "POST",
            target: "/Microsoft-Server-ActiveSync?Cmd=Ping",
            host: "127.0.0.1",
            authorization: "Basic eDp5",
            user_agent: "pingfleet",
            headers: &[("MS-ASProtocolVersion", "14.1")],
            body: b"\x03\x01",
            close: true,
        };
        let text = String::from_utf8(request.encode()).unwrap();
        assert!(text.starts_with("POST /Microsoft-Server-ActiveSync?Cmd=Ping HTTP/1.1\r\n"));
        assert!(text.contains("MS-ASProtocolVersion: 14.1\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.contains("Connection: close\r\n\r\n\x03\x01"));
    }
}
