//! The lean connection engine: pingfleet's own HTTP/1.1 layer on tokio. It reads the
//! head with httparse into a buffer that is freed between requests, reads
//! Content-Length bodies, keeps connections alive, refuses pipelining by answering the
//! first request and closing, and, while a Ping is parked, holds no buffer at all and
//! notices the client going away (a one-byte read that returns EOF).

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::admission::admit;
use super::commands::Outcome;
use super::handler;
use super::http::{reason, Method, RequestHead, Response, ResponseFraming, ResponseStyle};
use super::parking::ParkedPing;
use super::state::{HttpLimits, ServerState};
use crate::kernel_stamp;

const MAX_HEADERS: usize = 48;
const READ_CHUNK: usize = 2048;

/// Serves HTTP/1.1 requests on one connection (plain or TLS) until it closes.
///
/// Reading, handling and answering a request run in a boxed future that is freed when
/// the request is done; only the parked wait lives in this function's own state, so a
/// parked connection holds the socket, the Ping and its timer, and nothing else.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + OverTcp + Unpin>(
    mut io: S,
    state: Arc<ServerState>,
) {
    let mut buffer = Vec::new();
    loop {
        let (parked, keep_alive) = match Box::pin(serve_request(&mut io, &mut buffer, &state)).await
        {
            Step::Continue => continue,
            Step::Close => return,
            Step::Park { parked, keep_alive } => (parked, keep_alive),
        };
        let Some(reply) = parked.wait(client_gone(&mut io)).await else {
            return;
        };
        let (written, sent) = Box::pin(finish(
            &mut io,
            &reply.response,
            keep_alive,
            &state,
            reply.woken.is_some(),
        ))
        .await;
        if let (Some(woken), Some(sent)) = (reply.woken, sent) {
            state
                .metrics
                .wake_path
                .record(&woken, sent.handed, sent.transmitted);
        }
        if !written {
            return;
        }
    }
}

/// What is left to do after a request.
enum Step {
    Continue,
    Close,
    Park {
        parked: ParkedPing,
        keep_alive: bool,
    },
}

/// Reads one request and answers it, unless it is a Ping to park.
async fn serve_request<S: AsyncRead + AsyncWrite + OverTcp + Unpin>(
    io: &mut S,
    buffer: &mut Vec<u8>,
    state: &Arc<ServerState>,
) -> Step {
    let request = match read_request(io, buffer, state).await {
        Ok(Some(request)) => request,
        Ok(None) => return Step::Close,
        Err(response) => {
            bump_error(state);
            let _ = write_response(io, &response, false, state.config.response_style).await;
            return Step::Close;
        }
    };
    let keep_alive = request.keep_alive && !request.pipelined;
    let outcome = handler::handle(state, &request.head, &request.user, &request.body);
    drop(request);
    if buffer.is_empty() {
        // Nothing of the next request has arrived: give the memory back.
        *buffer = Vec::new();
    }
    match outcome {
        Outcome::Park(parked) => Step::Park { parked, keep_alive },
        Outcome::Respond(response) if finish(io, &response, keep_alive, state, false).await.0 => {
            Step::Continue
        }
        Outcome::Respond(_) => Step::Close,
    }
}

/// When a response was sent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    /// Its bytes, ready, were handed to the connection.
    handed: std::time::Instant,
    /// The kernel's transmit stamp of its last bytes, when asked for and given.
    transmitted: Option<std::time::Instant>,
}

/// Writes the response (closing when the connection ends with it): whether the
/// connection goes on, and, if the response was written, when it was sent (with
/// `stamp`, the end of a wake-up, the transmit stamp too).
async fn finish<S: AsyncWrite + OverTcp + Unpin>(
    io: &mut S,
    response: &Response,
    keep_alive: bool,
    state: &ServerState,
    stamp: bool,
) -> (bool, Option<Sent>) {
    let style = state.config.response_style;
    // A body framed by the close leaves nothing to keep alive.
    let keep_alive = keep_alive && style.framing != ResponseFraming::Close;
    let stamping = stamp && kernel_stamp::stamp_transmits(io.tcp(), true).is_ok();
    let Ok(handed) = write_response(io, response, keep_alive, style).await else {
        return (false, None);
    };
    let mut transmitted = None;
    if stamping {
        transmitted = kernel_stamp::sent_at(io.tcp(), handed);
        let _ = kernel_stamp::stamp_transmits(io.tcp(), false);
    }
    if !keep_alive {
        let _ = io.shutdown().await;
    }
    (
        keep_alive,
        Some(Sent {
            handed,
            transmitted,
        }),
    )
}

/// A connection over a TCP socket, whose transmit stamps the wake path reads.
pub trait OverTcp {
    fn tcp(&self) -> &TcpStream;
}

impl OverTcp for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl OverTcp for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

fn bump_error(state: &ServerState) {
    super::metrics::bump(&state.metrics.http_errors);
}

/// Completes when the client closes, errs, or sends anything while its Ping is parked
/// (a request pipelined behind a parked Ping is refused by closing).
async fn client_gone<S: AsyncRead + Unpin>(io: &mut S) {
    let mut byte = [0u8; 1];
    let _ = io.read(&mut byte).await;
}

/// One request read off the connection.
struct ReadRequest {
    head: RequestHead,
    /// Who sent it, admitted on the head.
    user: String,
    body: Vec<u8>,
    keep_alive: bool,
    /// Bytes of another request followed this one without waiting for the response.
    pipelined: bool,
}

/// The head fields the engine itself needs, beyond what the handler reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    pub content_length: usize,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

/// Reads one request. `Ok(None)`: the connection closed (or went idle too long, or the
/// server is stopping) between requests. `Err`: a response to send before closing.
async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    buffer: &mut Vec<u8>,
    state: &ServerState,
) -> Result<Option<ReadRequest>, Response> {
    let limits = &state.config.limits;
    let (head, framing, head_len) = match read_head(io, buffer, state).await? {
        Some(parsed) => parsed,
        None => return Ok(None),
    };
    // Credentials and the body budget are checked on the head: a body from nobody, or
    // one the server has no room for, is never read.
    let admitted = admit(state, &head, framing.content_length)?;
    buffer.drain(..head_len);
    if framing.expect_continue && buffer.len() < framing.content_length {
        io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .map_err(|_| Response::new(400))?;
        io.flush().await.map_err(|_| Response::new(400))?;
    }
    let deadline = Instant::now() + limits.body_timeout;
    while buffer.len() < framing.content_length {
        match read_more(io, buffer, deadline).await {
            Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                return Err(Response::text(408, "the request body took too long"))
            }
            Ok(0) | Err(_) => return Err(Response::text(400, "the body ended early")),
            Ok(_) => {}
        }
    }
    let body: Vec<u8> = buffer.drain(..framing.content_length).collect();
    drop(admitted.permit);
    Ok(Some(ReadRequest {
        head,
        user: admitted.user,
        body,
        keep_alive: framing.keep_alive,
        pipelined: !buffer.is_empty(),
    }))
}

/// Reads until a whole head is buffered and parses it.
async fn read_head<S: AsyncRead + Unpin>(
    io: &mut S,
    buffer: &mut Vec<u8>,
    state: &ServerState,
) -> Result<Option<(RequestHead, Framing, usize)>, Response> {
    let limits: &HttpLimits = &state.config.limits;
    let mut deadline = Instant::now() + limits.idle_timeout;
    let mut started = !buffer.is_empty();
    if started {
        deadline = Instant::now() + limits.head_timeout;
    }
    loop {
        if started {
            if let Some(parsed) = parse_head(buffer)? {
                return Ok(Some(parsed));
            }
            if buffer.len() >= limits.max_head_bytes {
                return Err(Response::text(
                    400,
                    &format!(
                        "request heads are limited to {} bytes",
                        limits.max_head_bytes
                    ),
                ));
            }
        }
        let read = tokio::select! {
            () = state.shutdown.cancelled(), if !started => return Ok(None),
            read = read_more(io, buffer, deadline) => read,
        };
        match read {
            Ok(0) if !started => return Ok(None),
            Ok(0) => {
                return Err(Response::text(
                    400,
                    "the connection closed inside a request head",
                ))
            }
            Ok(_) if !started => {
                started = true;
                deadline = Instant::now() + limits.head_timeout;
            }
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::TimedOut && started => {
                return Err(Response::text(408, "the request head took too long"))
            }
            Err(_) => return Ok(None),
        }
    }
}

/// Reads what is available into the buffer, failing with `TimedOut` at the deadline.
async fn read_more<S: AsyncRead + Unpin>(
    io: &mut S,
    buffer: &mut Vec<u8>,
    deadline: Instant,
) -> io::Result<usize> {
    buffer.reserve(READ_CHUNK);
    match tokio::time::timeout_at(deadline, io.read_buf(buffer)).await {
        Ok(read) => read,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// Parses a complete head, or returns `Ok(None)` when more bytes are needed; `Err` is
/// the response to send before closing. Public for the fuzz target.
pub fn parse_head(buffer: &[u8]) -> Result<Option<(RequestHead, Framing, usize)>, Response> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(buffer) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(err) => {
            return Err(Response::text(
                400,
                &format!("malformed request head: {err}"),
            ))
        }
    };
    let method = Method::parse(request.method.unwrap_or_default());
    let mut head = RequestHead::new(method, request.path.unwrap_or_default());
    let http11 = request.version == Some(1);
    let mut framing = Framing {
        content_length: 0,
        keep_alive: http11,
        expect_continue: false,
    };
    let mut seen_length = None;
    for header in request.headers.iter() {
        let value = std::str::from_utf8(header.value)
            .map_err(|_| Response::text(400, &format!("header {} is not text", header.name)))?;
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let length = content_length(value)?;
            if seen_length
                .replace(length)
                .is_some_and(|seen| seen != length)
            {
                return Err(Response::text(
                    400,
                    "Content-Length is given twice, differently",
                ));
            }
            framing.content_length = length;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Response::text(
                411,
                "send the body with Content-Length; chunked requests are not accepted",
            ));
        } else if name.eq_ignore_ascii_case("connection") {
            let value = value.to_ascii_lowercase();
            if value.contains("close") {
                framing.keep_alive = false;
            } else if value.contains("keep-alive") {
                framing.keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case("expect") {
            framing.expect_continue = value.trim().eq_ignore_ascii_case("100-continue");
        } else {
            head.set_header(name, value);
        }
    }
    Ok(Some((head, framing, head_len)))
}

/// A Content-Length value as RFC 9112 (section 6.3) has it: decimal digits only, no
/// sign, nothing else (`+13` and `1 3` are 400, as hyper answers them).
fn content_length(value: &str) -> Result<usize, Response> {
    let digits = value.trim_matches([' ', '\t']);
    let valid = !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit());
    valid
        .then(|| digits.parse().ok())
        .flatten()
        .ok_or_else(|| Response::text(400, "Content-Length is not a decimal number"))
}

/// Writes a response in one piece; the instant its bytes, ready, were handed to the
/// connection (with TLS: to be encrypted and sent).
async fn write_response<S: AsyncWrite + Unpin>(
    io: &mut S,
    response: &Response,
    keep_alive: bool,
    style: ResponseStyle,
) -> io::Result<std::time::Instant> {
    let bytes = response_bytes(response, keep_alive, style);
    let handed_at = std::time::Instant::now();
    io.write_all(&bytes).await?;
    io.flush().await?;
    Ok(handed_at)
}

/// A response's bytes: `Content-Length` (or chunked, or framed by the close, as `style`
/// asks), `Connection: close` when the connection ends after it.
fn response_bytes(response: &Response, keep_alive: bool, style: ResponseStyle) -> Vec<u8> {
    let gzipped;
    let mut body = response.body.as_slice();
    let compress = style.gzip_everything && response.header_value("Content-Encoding").is_none();
    if compress {
        gzipped = gzip(body);
        body = &gzipped;
    }
    let mut out = Vec::with_capacity(192 + body.len());
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            response.status,
            reason(response.status)
        )
        .as_bytes(),
    );
    for (name, value) in &response.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if compress {
        out.extend_from_slice(b"Content-Encoding: gzip\r\n");
    }
    match style.framing {
        ResponseFraming::Length => {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes())
        }
        ResponseFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        ResponseFraming::Close => {}
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    match style.framing {
        ResponseFraming::Chunked if !body.is_empty() => {
            out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n0\r\n\r\n");
        }
        ResponseFraming::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
        _ => out.extend_from_slice(body),
    }
    out
}

fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into memory cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::http::ResponseReader;

    #[test]
    fn responses_in_every_framing_read_back_the_same() {
        let response = Response::new(200).header("X-A", "b".to_owned());
        for framing in [
            ResponseFraming::Length,
            ResponseFraming::Chunked,
            ResponseFraming::Close,
        ] {
            for gzip_everything in [false, true] {
                for body in [&b""[..], b"\x03\x01\x6a\x00"] {
                    let mut response = response.clone();
                    response.body = body.to_vec();
                    let style = ResponseStyle {
                        framing,
                        gzip_everything,
                    };
                    let keep_alive = framing != ResponseFraming::Close;
                    let mut reader = ResponseReader::default();
                    reader.feed(&response_bytes(&response, keep_alive, style));
                    let closed = !keep_alive;
                    let read = reader.next_response(closed).unwrap().unwrap();
                    assert_eq!(read.body, body, "{style:?}");
                    assert_eq!(read.closes, closed, "{style:?}");
                }
            }
        }
    }

    #[test]
    fn parses_a_head_and_its_framing() {
        let raw = b"POST /Microsoft-Server-ActiveSync?Cmd=Ping HTTP/1.1\r\nHost: x\r\n\
                    Content-Length: 13\r\nConnection: close\r\nMS-ASProtocolVersion: 14.1\r\n\r\nbody";
        let (head, framing, len) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.method, Method::Post);
        assert_eq!(head.protocol_version.as_deref(), Some("14.1"));
        assert_eq!(framing.content_length, 13);
        assert!(!framing.keep_alive);
        assert_eq!(&raw[len..], b"body");
        assert!(parse_head(b"POST / HTTP/1.1\r\nHost").unwrap().is_none());
    }

    #[test]
    fn refuses_what_it_does_not_frame() {
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse_head(chunked).err().unwrap().status, 411);
        let bad_length = b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n";
        assert_eq!(parse_head(bad_length).err().unwrap().status, 400);
        assert_eq!(
            parse_head(b"\x01\x02 / HTTP/1.1\r\n\r\n")
                .err()
                .unwrap()
                .status,
            400
        );
        let http10 = b"GET / HTTP/1.0\r\n\r\n";
        assert!(!parse_head(http10).unwrap().unwrap().1.keep_alive);
    }
}
