//! The device side of HTTP/1.1, sans-IO: request bytes out, response bytes in.
//! Responses are framed as RFC 9112 section 6.3 has it, as real servers send them:
//! `Transfer-Encoding: chunked` (trailers skipped), `Content-Length`, or the body runs
//! until the server closes the connection; 1xx interim responses are skipped, and a
//! gzip or deflate body (an empty one included) is inflated before the device sees it.

use std::io::Read as _;
use std::time::Instant;

use crate::eas::headers::{
    CONTENT_TYPE_WBXML, MS_AS_PROTOCOL_COMMANDS, MS_AS_PROTOCOL_VERSIONS, MS_SERVER_ACTIVESYNC,
    X_MS_LOCATION,
};

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
    /// `MS-ASProtocolCommands` (OPTIONS).
    pub protocol_commands: Option<String>,
    /// `MS-Server-ActiveSync`: the server's own version.
    pub server_version: Option<String>,
    /// `Content-Type` as sent (`text/html` is a login page, not EAS).
    pub content_type: Option<String>,
    /// The server will close the connection after this response.
    pub closes: bool,
    /// Bytes this response took on the wire, head included.
    pub wire_bytes: usize,
    /// When its last bytes reached this host (the kernel's receive stamp of the read
    /// that completed it), once a connection has read it; latencies end here, so the
    /// worker's own delay in reading is not the server's.
    pub arrived_at: Option<Instant>,
}

/// A response that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed response head: {0}")]
    Malformed(String),
    #[error("malformed chunked body: {0}")]
    BadChunk(&'static str),
    #[error("response head over {MAX_HEAD_BYTES} bytes or body over {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("{0} body cannot be inflated")]
    BadEncoding(&'static str),
    #[error("the connection closed inside a response")]
    Truncated,
}

/// How a response's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    /// The body runs until the server closes the connection.
    UntilClose,
}

/// How a response's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Deflate,
}

/// A parsed head: the response so far, how its body is framed and coded, its length.
struct Head {
    response: HttpResponse,
    framing: Framing,
    coding: Coding,
    len: usize,
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

    /// The next complete response, if one is buffered. `closed`: the server has closed
    /// the connection, so a body framed by the close is complete (and any other
    /// unfinished response is truncated).
    pub fn next_response(&mut self, closed: bool) -> Result<Option<HttpResponse>, HttpError> {
        loop {
            let Some(head) = self.parse_head()? else {
                return match closed && !self.buffer.is_empty() {
                    true => Err(HttpError::Truncated),
                    false => Ok(None),
                };
            };
            // 1xx responses are interim: the real one follows.
            if (100..200).contains(&head.response.status) {
                self.buffer.drain(..head.len);
                continue;
            }
            return self.take_body(head, closed);
        }
    }

    fn parse_head(&self) -> Result<Option<Head>, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let len = match parsed.parse(&self.buffer) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if self.buffer.len() > MAX_HEAD_BYTES => {
                return Err(HttpError::TooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(err) => return Err(HttpError::Malformed(err.to_string())),
        };
        let status = parsed.code.unwrap_or(0);
        let mut response = HttpResponse {
            status,
            closes: parsed.version == Some(0),
            ..HttpResponse::default()
        };
        let mut length = None;
        let mut chunked = false;
        let mut coding = Coding::Identity;
        for header in parsed.headers.iter() {
            let value = String::from_utf8_lossy(header.value).trim().to_owned();
            let name = header.name;
            if name.eq_ignore_ascii_case("content-length") {
                let parsed = value
                    .parse::<usize>()
                    .map_err(|_| HttpError::Malformed(format!("Content-Length {value:?}")))?;
                if length.replace(parsed).is_some_and(|seen| seen != parsed) {
                    return Err(HttpError::Malformed("two Content-Lengths".into()));
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                response.closes = value
                    .split(',')
                    .any(|option| option.trim().eq_ignore_ascii_case("close"));
            } else if name.eq_ignore_ascii_case("content-encoding") {
                coding = match value.to_ascii_lowercase().as_str() {
                    "gzip" | "x-gzip" => Coding::Gzip,
                    "deflate" => Coding::Deflate,
                    _ => Coding::Identity,
                };
            } else if name.eq_ignore_ascii_case("retry-after") {
                response.retry_after_s = value.parse().ok();
            } else if name.eq_ignore_ascii_case(X_MS_LOCATION) {
                response.location = Some(value);
            } else if name.eq_ignore_ascii_case(MS_AS_PROTOCOL_VERSIONS) {
                response.protocol_versions = Some(value);
            } else if name.eq_ignore_ascii_case(MS_AS_PROTOCOL_COMMANDS) {
                response.protocol_commands = Some(value);
            } else if name.eq_ignore_ascii_case(MS_SERVER_ACTIVESYNC) {
                response.server_version = Some(value);
            } else if name.eq_ignore_ascii_case("content-type") {
                response.content_type = Some(value);
            }
        }
        let framing = match (chunked, length) {
            // Chunked wins over a Content-Length (RFC 9112 section 6.3).
            (true, _) => Framing::Chunked,
            _ if status == 204 || status == 304 || (100..200).contains(&status) => {
                Framing::Length(0)
            }
            (false, Some(length)) => Framing::Length(length),
            (false, None) => Framing::UntilClose,
        };
        if framing == Framing::UntilClose {
            response.closes = true;
        }
        Ok(Some(Head {
            response,
            framing,
            coding,
            len,
        }))
    }

    /// The response once its whole body is buffered.
    fn take_body(&mut self, head: Head, closed: bool) -> Result<Option<HttpResponse>, HttpError> {
        let body_bytes = &self.buffer[head.len..];
        let (raw, consumed) = match head.framing {
            Framing::Length(length) if length > MAX_BODY_BYTES => return Err(HttpError::TooLarge),
            Framing::Length(length) if body_bytes.len() < length => {
                return match closed {
                    true => Err(HttpError::Truncated),
                    false => Ok(None),
                }
            }
            Framing::Length(length) => (body_bytes[..length].to_vec(), length),
            Framing::Chunked => match dechunk(body_bytes)? {
                Some(done) => done,
                None if closed => return Err(HttpError::Truncated),
                None => return Ok(None),
            },
            Framing::UntilClose if body_bytes.len() > MAX_BODY_BYTES => {
                return Err(HttpError::TooLarge)
            }
            Framing::UntilClose if !closed => return Ok(None),
            Framing::UntilClose => (body_bytes.to_vec(), body_bytes.len()),
        };
        let mut response = head.response;
        response.body = decode(&raw, head.coding)?;
        response.wire_bytes = head.len + consumed;
        self.buffer.drain(..head.len + consumed);
        if self.buffer.is_empty() {
            self.buffer = Vec::new();
        }
        Ok(Some(response))
    }
}

/// A chunked body's data and the bytes it took (trailers included), or `None` while it
/// is incomplete.
fn dechunk(mut bytes: &[u8]) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    let total = bytes.len();
    let mut data = Vec::new();
    loop {
        let Some(line_end) = find_crlf(bytes) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&bytes[..line_end])
            .map_err(|_| HttpError::BadChunk("size line is not text"))?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::BadChunk("chunk size is not hexadecimal"))?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(end) = find_crlf(bytes) else {
                    return Ok(None);
                };
                bytes = &bytes[end + 2..];
                if end == 0 {
                    return Ok(Some((data, total - bytes.len())));
                }
            }
        }
        if data.len() + size > MAX_BODY_BYTES {
            return Err(HttpError::TooLarge);
        }
        if bytes.len() < size + 2 {
            return Ok(None);
        }
        if &bytes[size..size + 2] != b"\r\n" {
            return Err(HttpError::BadChunk("chunk data is not followed by CRLF"));
        }
        data.extend_from_slice(&bytes[..size]);
        bytes = &bytes[size + 2..];
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|pair| pair == b"\r\n")
}

/// The body as the device reads it. An empty body stays empty whatever its coding (a
/// server compressing every response may send `Content-Encoding: gzip` with nothing).
fn decode(raw: &[u8], coding: Coding) -> Result<Vec<u8>, HttpError> {
    if raw.is_empty() || coding == Coding::Identity {
        return Ok(raw.to_vec());
    }
    let mut out = Vec::new();
    // The bufread decoders read the slice in place (the read ones would add a 32 KiB
    // buffer to every response).
    let limit = MAX_BODY_BYTES as u64 + 1;
    let read = match coding {
        Coding::Gzip => flate2::bufread::GzDecoder::new(raw)
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|_| HttpError::BadEncoding("gzip")),
        // HTTP's "deflate" is zlib-wrapped; some servers send it raw.
        _ => flate2::bufread::ZlibDecoder::new(raw)
            .take(limit)
            .read_to_end(&mut out)
            .or_else(|_| {
                out.clear();
                flate2::bufread::DeflateDecoder::new(raw)
                    .take(limit)
                    .read_to_end(&mut out)
            })
            .map_err(|_| HttpError::BadEncoding("deflate")),
    };
    read?;
    if out.len() > MAX_BODY_BYTES {
        return Err(HttpError::TooLarge);
    }
    Ok(out)
}

/// One request to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest<'a> {
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

impl HttpRequest<'_> {
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
                while let Some(response) = reader.next_response(false).unwrap() {
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
        let response = reader.next_response(false).unwrap().unwrap();
        assert_eq!(response.body, b"hello");
        assert_eq!(response.location.as_deref(), Some("https://b/x"));
        assert_eq!(response.wire_bytes, wire.len());
    }

    /// Feeds `wire` in two parts split at every point; the responses read, then at the
    /// close.
    fn read_split_anywhere(wire: &[u8], closes_after: bool) -> Vec<HttpResponse> {
        let mut first = None;
        for split in 0..=wire.len() {
            let mut reader = ResponseReader::default();
            let mut seen = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                reader.feed(part);
                while let Some(response) = reader.next_response(false).unwrap() {
                    seen.push(response);
                }
            }
            if closes_after {
                seen.extend(reader.next_response(true).unwrap());
            }
            assert!(!reader.has_partial(), "split at {split}");
            match &first {
                None => first = Some(seen),
                Some(first) => assert_eq!(first, &seen, "split at {split}"),
            }
        }
        first.unwrap_or_default()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn reads_chunked_bodies_with_extensions_and_trailers() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                     3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: y\r\n\r\n\
                     HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz";
        let seen = read_split_anywhere(wire, false);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].body, b"abc0123456789abcdef");
        assert_eq!(seen[1].body, b"z");
        let mut reader = ResponseReader::default();
        reader.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        assert!(matches!(
            reader.next_response(false),
            Err(HttpError::BadChunk(_))
        ));
    }

    #[test]
    fn reads_a_body_that_ends_with_the_connection() {
        let big = vec![b'm'; 1_500_000];
        let mut wire =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n\r\n".to_vec();
        wire.extend_from_slice(&big);
        let mut reader = ResponseReader::default();
        reader.feed(&wire);
        assert_eq!(
            reader.next_response(false).unwrap(),
            None,
            "not before the close"
        );
        let response = reader.next_response(true).unwrap().unwrap();
        assert_eq!(response.body, big);
        assert!(response.closes);
        // A Content-Length body cut by the close is an error, not a short body.
        let mut cut = ResponseReader::default();
        cut.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        assert_eq!(cut.next_response(true), Err(HttpError::Truncated));
    }

    #[test]
    fn inflates_any_coded_body_the_empty_one_included() {
        let zipped = gzip(b"wbxml");
        let mut wire = format!(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\
             Content-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\
             Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            zipped.len()
        )
        .into_bytes();
        wire.extend_from_slice(&zipped);
        wire.extend_from_slice(b"\r\n0\r\n\r\n");
        let mut deflated = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        deflated.write_all(b"zlib").unwrap();
        let deflated = deflated.finish().unwrap();
        wire.extend_from_slice(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: {}\r\n\r\n",
                deflated.len()
            )
            .as_bytes(),
        );
        wire.extend_from_slice(&deflated);
        let seen = read_split_anywhere(&wire, false);
        let bodies: Vec<&[u8]> = seen.iter().map(|r| r.body.as_slice()).collect();
        assert_eq!(bodies, [&b""[..], b"wbxml", b"zlib"]);
        let mut bad = ResponseReader::default();
        bad.feed(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc");
        assert_eq!(
            bad.next_response(false),
            Err(HttpError::BadEncoding("gzip"))
        );
    }

    #[test]
    fn refuses_bodies_over_the_limit() {
        let mut reader = ResponseReader::default();
        reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n");
        assert_eq!(reader.next_response(false), Err(HttpError::TooLarge));
        let mut chunked = ResponseReader::default();
        chunked.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFF\r\n");
        assert_eq!(chunked.next_response(false), Err(HttpError::TooLarge));
    }

    #[test]
    fn rejects_garbage() {
        let mut reader = ResponseReader::default();
        reader.feed(b"garbage\r\n\r\n");
        assert!(matches!(
            reader.next_response(false),
            Err(HttpError::Malformed(_))
        ));
    }

    #[test]
    fn encodes_a_post() {
        let request = HttpRequest {
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
