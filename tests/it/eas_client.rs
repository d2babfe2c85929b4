//! Test fixtures for the reference server: start `pingfleet serve` as a real process on
//! ports it picks itself, and a small blocking EAS client (plain or TLS) to talk to it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use pingfleet::eas::WbxmlBody;
use pingfleet::server::launch::ServeArgs;
use pingfleet::server::process::ServerHandle;

pub(crate) const ENGINES: [&str; 2] = ["lean", "hyper"];
pub(crate) const PASSWORD: &str = "pingfleet";

/// A running `pingfleet serve`.
pub(crate) struct Server {
    handle: ServerHandle,
    pub http: SocketAddr,
    pub notify: SocketAddr,
    pub cert: Option<PathBuf>,
}

impl Server {
    /// Starts a server on 127.0.0.1 port 0 with 100 synthetic users and the extra flags.
    pub(crate) fn start(engine: &str, extra: &[&str]) -> Server {
        Self::start_at(engine, "127.0.0.1:0", "127.0.0.1:0", extra)
    }

    /// Starts a server on the given HTTP and notification addresses.
    pub(crate) fn start_at(engine: &str, listen: &str, notify: &str, extra: &[&str]) -> Server {
        Self::start_full(engine, (listen, notify), 100, extra)
    }

    /// Starts a server on 127.0.0.1 port 0 with `users` synthetic users.
    pub(crate) fn start_with_users(engine: &str, users: usize, extra: &[&str]) -> Server {
        Self::start_full(engine, ("127.0.0.1:0", "127.0.0.1:0"), users, extra)
    }

    fn start_full(
        engine: &str,
        (listen, notify): (&str, &str),
        users: usize,
        extra: &[&str],
    ) -> Server {
        let users = users.to_string();
        let argv: Vec<String> = [
            "serve",
            "--engine",
            engine,
            "--listen",
            listen,
            "--notify",
            notify,
            "--metrics",
            "127.0.0.1:0",
            "--users",
            &users,
        ]
        .iter()
        .chain(extra)
        .map(|arg| arg.to_string())
        .collect();
        let args: ServeArgs = pingfleet::argv::parse(&argv).expect("serve flags");
        let handle = ServerHandle::spawn(
            Path::new(env!("CARGO_BIN_EXE_pingfleet")),
            &args,
            Stdio::inherit(),
            Duration::from_secs(30),
        )
        .expect("start pingfleet serve");
        let ready = handle.ready.clone();
        Server {
            handle,
            http: ready.http[0],
            notify: ready.notify,
            cert: ready.tls_cert,
        }
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.handle.pid()
    }

    /// A client for `user` on device `device`.
    pub(crate) fn client(&self, user: &str, device: &str) -> Client {
        Client::connect(self, user, device)
    }

    /// Sends a notification datagram.
    pub(crate) fn notify(&self, text: &str) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.send_to(text.as_bytes(), self.notify).unwrap();
    }

    /// The value of a metric line (exact name with labels), 0 when absent.
    pub(crate) fn metric(&self, name: &str) -> f64 {
        self.handle.metric(name).expect("the server's /metrics")
    }

    /// Polls a metric until it equals `value`; false after `timeout`.
    pub(crate) fn wait_metric(&self, name: &str, value: f64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.metric(name) == value {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Polls a counter until it reaches at least `value`; false after `timeout`.
    pub(crate) fn wait_metric_at_least(&self, name: &str, value: f64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.metric(name) >= value {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends SIGTERM and waits for the exit (`None`: it had to be killed).
    pub(crate) fn terminate(mut self, timeout: Duration) -> Option<ExitStatus> {
        self.handle.terminate(timeout)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.handle.child.kill();
        let _ = self.handle.child.wait();
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// An HTTP response as the client read it (body un-gzipped).
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub raw_body_len: usize,
}

impl HttpResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Decodes the body as a command response.
    pub(crate) fn eas<T: WbxmlBody>(&self) -> T {
        T::decode(&self.body).unwrap_or_else(|err| panic!("{err}: {self:?}"))
    }
}

/// A blocking EAS client on one keep-alive connection.
pub(crate) struct Client {
    stream: Box<dyn Stream>,
    pub user: String,
    pub password: String,
    pub device: String,
    pub version: String,
    pub policy_key: Option<String>,
    pub accept_gzip: bool,
}

impl Client {
    pub(crate) fn connect(server: &Server, user: &str, device: &str) -> Client {
        let tcp = TcpStream::connect(server.http).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        tcp.set_nodelay(true).unwrap();
        let stream: Box<dyn Stream> = match &server.cert {
            None => Box::new(tcp),
            Some(cert) => {
                let config: Arc<rustls::ClientConfig> = pingfleet::tls::client_config_trusting(
                    cert,
                    pingfleet::tls::KeyExchange::Hybrid,
                )
                .unwrap();
                let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
                let connection = rustls::ClientConnection::new(config, name).unwrap();
                Box::new(rustls::StreamOwned::new(connection, tcp))
            }
        };
        Client {
            stream,
            user: user.to_owned(),
            password: PASSWORD.to_owned(),
            device: device.to_owned(),
            version: "14.1".to_owned(),
            policy_key: None,
            accept_gzip: false,
        }
    }

    fn authorization(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// Sends raw bytes.
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
        self.stream.flush().unwrap();
    }

    /// POSTs a command with the plain query.
    pub(crate) fn post(&mut self, command: &str, body: &[u8]) -> HttpResponse {
        let target = format!(
            "/Microsoft-Server-ActiveSync?Cmd={command}&User={}&DeviceId={}&DeviceType=SmartPhone",
            self.user, self.device
        );
        self.send_post(&target, body, true);
        self.read_response()
    }

    /// Writes a POST without reading the answer.
    pub(crate) fn send_post(&mut self, target: &str, body: &[u8], with_version: bool) {
        let mut head = format!(
            "POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\
             Content-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: {}\r\n",
            self.authorization(),
            body.len()
        );
        if with_version {
            head.push_str(&format!("MS-ASProtocolVersion: {}\r\n", self.version));
        }
        if let Some(key) = &self.policy_key {
            head.push_str(&format!("X-MS-PolicyKey: {key}\r\n"));
        }
        if self.accept_gzip {
            head.push_str("Accept-Encoding: gzip\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes);
    }

    pub(crate) fn options(&mut self) -> HttpResponse {
        let head = format!(
            "OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Authorization: {}\r\n\r\n",
            self.authorization()
        );
        self.send_raw(head.as_bytes());
        self.read_response()
    }

    /// Reads one response; panics on a closed connection.
    pub(crate) fn read_response(&mut self) -> HttpResponse {
        self.try_read_response().expect("a response")
    }

    /// Reads one response, or `None` when the connection closed first.
    pub(crate) fn try_read_response(&mut self) -> Option<HttpResponse> {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) = response.parse(&buffer).unwrap() {
                let headers: Vec<(String, String)> = response
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let status = response.code.unwrap();
                let length: usize = headers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, value)| value.parse().unwrap());
                while buffer.len() < head_len + length {
                    let read = self.stream.read(&mut chunk).ok()?;
                    if read == 0 {
                        return None;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                }
                let raw = buffer[head_len..head_len + length].to_vec();
                let gzipped = headers.iter().any(|(name, value)| {
                    name.eq_ignore_ascii_case("content-encoding") && value == "gzip"
                });
                let body = if gzipped {
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(&raw[..])
                        .read_to_end(&mut out)
                        .unwrap();
                    out
                } else {
                    raw.clone()
                };
                return Some(HttpResponse {
                    status,
                    headers,
                    body,
                    raw_body_len: raw.len(),
                });
            }
            let read = self.stream.read(&mut chunk).ok()?;
            if read == 0 {
                return None;
            }
            buffer.extend_from_slice(&chunk[..read]);
        }
    }
}
