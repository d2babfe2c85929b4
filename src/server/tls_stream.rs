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
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::tls_session::{Step, TlsSession, Want};

/// Bytes read from the socket in one go.
const READ_CHUNK: usize = 4096;

/// A server-side TLS connection over a TCP stream.
pub(crate) struct LeanTlsStream {
    tcp: TcpStream,
    session: TlsSession<UnbufferedServerConnection>,
}

impl super::lean::OverTcp for LeanTlsStream {
    fn tcp(&self) -> &TcpStream {
        &self.tcp
    }
}

impl LeanTlsStream {
    /// Runs the server handshake.
    pub(crate) async fn accept(
        tcp: TcpStream,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<Self> {
        let hand_over = config.enable_secret_extraction;
        let session = TlsSession::start(|| UnbufferedServerConnection::new(config), hand_over)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        let mut stream = Self { tcp, session };
        poll_fn(|cx| stream.poll_handshake(cx)).await?;
        Ok(stream)
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let step = self.session.step(Want::Read)?;
            // Whatever the step encoded goes out before waiting for the peer's answer.
            ready!(self.poll_send(cx))?;
            match step {
                Step::NeedInput if self.session.is_handshaking() => {
                    if ready!(self.poll_receive(cx))? == 0 {
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
                Step::Closed => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                _ => return Poll::Ready(Ok(())),
            }
        }
    }

    /// Reads what the socket has into the session; 0 at end of stream.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            match self.tcp.try_read(&mut chunk) {
                Ok(read) => {
                    self.session.received(&chunk[..read]);
                    return Poll::Ready(Ok(read));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }

    /// Sends everything the session has encrypted.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.session.outgoing().is_empty() {
            let sent = ready!(Pin::new(&mut self.tcp).poll_write(cx, self.session.outgoing()))?;
            if sent == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.session.sent(sent);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for LeanTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.session.has_plaintext() {
                let read = this.session.read_plaintext(buf.initialize_unfilled());
                buf.advance(read);
                return Poll::Ready(Ok(()));
            }
            let step = this.session.step(Want::Read)?;
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
        if this.session.is_closed() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        match this.session.step(Want::Write(data))? {
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
        if !this.session.is_closed() {
            this.session.set_closed();
            if matches!(this.session.step(Want::Close), Ok(Step::CloseQueued)) {
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
        let config = crate::tls::Identity::self_signed(&cert, &[])
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
            assert_eq!(
                tls.session.buffered_capacity(),
                0,
                "an idle session holds no buffer"
            );
            tls.write_all(&vec![7u8; 40_000]).await.unwrap();
            tls.flush().await.unwrap();
            assert_eq!(
                tls.session.buffered_capacity(),
                0,
                "the write buffer is freed once sent"
            );
            let mut rest = Vec::new();
            tls.read_to_end(&mut rest).await.unwrap();
            rest
        });
        let client_config =
            crate::tls::client_config_trusting(&cert, crate::tls::KeyExchange::Hybrid).unwrap();
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
