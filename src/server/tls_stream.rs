//! TLS for the lean engine on rustls' unbuffered API: the stream owns its buffers and
//! frees each one the moment it is empty, so a connection whose Ping is parked holds
//! the TLS session state and no buffer at all (a buffered `rustls::ServerConnection`
//! keeps its read and write buffers for the life of the connection).
//!
//! It implements tokio's `AsyncRead`/`AsyncWrite`, so the HTTP layer is the same for
//! plain and TLS connections.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes read from the socket in one go.
const READ_CHUNK: usize = 4096;

/// A server-side TLS connection over a TCP stream.
pub struct LeanTlsStream {
    tcp: TcpStream,
    conn: UnbufferedServerConnection,
    /// Received TLS bytes not yet processed.
    incoming: Vec<u8>,
    /// Decrypted application data not yet read, from `plaintext_pos`.
    plaintext: Vec<u8>,
    plaintext_pos: usize,
    /// Encrypted bytes not yet sent, from `outgoing_pos`.
    outgoing: Vec<u8>,
    outgoing_pos: usize,
    peer_closed: bool,
    closed: bool,
}

/// What processing the received records led to.
enum Step {
    /// Application data is ready to read.
    Data,
    /// More bytes from the peer are needed.
    NeedInput,
    /// The caller's bytes were encrypted into the outgoing buffer.
    Written,
    /// A close_notify was queued.
    CloseQueued,
    /// The peer closed (or the session ended).
    Closed,
}

/// What the caller wants from one round of processing.
#[derive(Clone, Copy)]
enum Want<'a> {
    Read,
    Write(&'a [u8]),
    Close,
}

fn tls_error(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

impl LeanTlsStream {
    /// Runs the server handshake.
    pub async fn accept(tcp: TcpStream, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
        let mut stream = Self {
            tcp,
            conn,
            incoming: Vec::new(),
            plaintext: Vec::new(),
            plaintext_pos: 0,
            outgoing: Vec::new(),
            outgoing_pos: 0,
            peer_closed: false,
            closed: false,
        };
        poll_fn(|cx| stream.poll_handshake(cx)).await?;
        Ok(stream)
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let step = self.step(Want::Read)?;
            // Whatever the step encoded goes out before waiting for the peer's answer.
            ready!(self.poll_send(cx))?;
            match step {
                Step::NeedInput if self.conn.is_handshaking() => {
                    if ready!(self.poll_receive(cx))? == 0 {
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
                Step::Closed => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                _ => return Poll::Ready(Ok(())),
            }
        }
    }

    /// Processes received records until the state machine needs something from us.
    fn step(&mut self, want: Want<'_>) -> io::Result<Step> {
        loop {
            let UnbufferedStatus { mut discard, state } =
                self.conn.process_tls_records(&mut self.incoming);
            let outcome = match state.map_err(tls_error)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(tls_error)?;
                        discard += record.discard;
                        self.plaintext.extend_from_slice(record.payload);
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    append(&mut self.outgoing, |out| {
                        encode.encode(out).map_err(|err| match err {
                            EncodeError::InsufficientSize(size) => Ok(size.required_size),
                            other => Err(io::Error::new(io::ErrorKind::InvalidData, other)),
                        })
                    })?;
                    None
                }
                // The encoded bytes are in `outgoing`, sent before anything else.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Step::NeedInput),
                ConnectionState::WriteTraffic(mut traffic) => Some(match want {
                    Want::Write(data) => {
                        append(&mut self.outgoing, |out| {
                            traffic.encrypt(data, out).map_err(encrypt_error)
                        })?;
                        Step::Written
                    }
                    Want::Close => {
                        append(&mut self.outgoing, |out| {
                            traffic.queue_close_notify(out).map_err(encrypt_error)
                        })?;
                        Step::CloseQueued
                    }
                    Want::Read if self.plaintext_pos < self.plaintext.len() => Step::Data,
                    Want::Read if self.peer_closed => Step::Closed,
                    Want::Read => Step::NeedInput,
                }),
                ConnectionState::PeerClosed => {
                    self.peer_closed = true;
                    None
                }
                ConnectionState::Closed => {
                    self.peer_closed = true;
                    self.closed = true;
                    Some(Step::Closed)
                }
                // Early data is off in our server configuration, so nothing else comes.
                _ => return Err(io::Error::other("unexpected TLS connection state")),
            };
            if discard > 0 {
                self.incoming.drain(..discard);
            }
            if self.incoming.is_empty() && self.incoming.capacity() > 0 {
                self.incoming = Vec::new();
            }
            if let Some(step) = outcome {
                return Ok(step);
            }
        }
    }

    /// Reads what the socket has into `incoming`; 0 at end of stream.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            match self.tcp.try_read(&mut chunk) {
                Ok(read) => {
                    self.incoming.extend_from_slice(&chunk[..read]);
                    return Poll::Ready(Ok(read));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }

    /// Sends everything in `outgoing`, then frees it.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.outgoing_pos < self.outgoing.len() {
            let sent = ready!(
                Pin::new(&mut self.tcp).poll_write(cx, &self.outgoing[self.outgoing_pos..])
            )?;
            if sent == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.outgoing_pos += sent;
        }
        self.outgoing = Vec::new();
        self.outgoing_pos = 0;
        Poll::Ready(Ok(()))
    }
}

fn encrypt_error(err: EncryptError) -> Result<usize, io::Error> {
    match err {
        EncryptError::InsufficientSize(size) => Ok(size.required_size),
        other => Err(io::Error::new(io::ErrorKind::InvalidData, other)),
    }
}

/// Appends what `write` produces to `out`, growing it when `write` reports (as
/// `Err(Ok(size))`) that it needs `size` bytes.
fn append(
    out: &mut Vec<u8>,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Result<usize, io::Error>>,
) -> io::Result<()> {
    let used = out.len();
    let written = match write(&mut out[used..]) {
        Ok(written) => written,
        Err(Ok(required)) => {
            out.resize(used + required, 0);
            write(&mut out[used..]).map_err(|err| match err {
                Ok(_) => io::Error::other("TLS output did not fit the size it asked for"),
                Err(err) => err,
            })?
        }
        Err(Err(err)) => return Err(err),
    };
    out.truncate(used + written);
    Ok(())
}

impl AsyncRead for LeanTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.plaintext_pos < this.plaintext.len() {
                let available = &this.plaintext[this.plaintext_pos..];
                let take = available.len().min(buf.remaining());
                buf.put_slice(&available[..take]);
                this.plaintext_pos += take;
                if this.plaintext_pos == this.plaintext.len() {
                    this.plaintext = Vec::new();
                    this.plaintext_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let step = this.step(Want::Read)?;
            ready!(this.poll_send(cx))?;
            match step {
                Step::Data => continue,
                Step::Closed => return Poll::Ready(Ok(())),
                _ => {
                    if ready!(this.poll_receive(cx))? == 0 {
                        // End of stream without close_notify: treated as end of data.
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        }
    }
}

impl AsyncWrite for LeanTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        if this.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        match this.step(Want::Write(data))? {
            Step::Written => {
                // Start sending now; what does not go out yet is sent by the next call.
                if let Poll::Ready(Err(err)) = this.poll_send(cx) {
                    return Poll::Ready(Err(err));
                }
                Poll::Ready(Ok(data.len()))
            }
            _ => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        if !this.closed {
            this.closed = true;
            if matches!(this.step(Want::Close), Ok(Step::CloseQueued)) {
                ready!(this.poll_send(cx))?;
            }
        }
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A real handshake and an exchange in both directions with a stock rustls client,
    /// then a clean close.
    #[tokio::test]
    async fn talks_to_a_stock_rustls_client() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let config = crate::tls::Identity::self_signed(&cert)
            .unwrap()
            .server_config()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = LeanTlsStream::accept(tcp, config).await.expect("handshake");
            let mut request = vec![0u8; 5];
            tls.read_exact(&mut request).await.unwrap();
            assert_eq!(&request, b"hello");
            assert!(tls.incoming.capacity() == 0 && tls.plaintext.capacity() == 0);
            tls.write_all(&vec![7u8; 40_000]).await.unwrap();
            tls.flush().await.unwrap();
            assert_eq!(
                tls.outgoing.capacity(),
                0,
                "the write buffer is freed once sent"
            );
            let mut rest = Vec::new();
            tls.read_to_end(&mut rest).await.unwrap();
            rest
        });
        let client_config = crate::tls::client_config_trusting(&cert).unwrap();
        let connector = tokio_rustls::TlsConnector::from(client_config);
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut client = connector.connect(name, tcp).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut response = vec![0u8; 40_000];
        client.read_exact(&mut response).await.unwrap();
        assert!(response.iter().all(|byte| *byte == 7));
        client.write_all(b"bye").await.unwrap();
        client.shutdown().await.unwrap();
        assert_eq!(server.await.unwrap(), b"bye");
    }
}
