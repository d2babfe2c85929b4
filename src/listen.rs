//! Listening TCP sockets for the server and the firewall, with a backlog (4,096) that
//! holds a reconnect storm's SYNs until they are accepted: with a short one (tokio's
//! own, bounded further by the kernel) the overflow is dropped, each device waits out
//! SYN retransmits of 1, 3, 7 s, and a storm turns into timeouts and retries.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// Connections waiting to be accepted, at most (the kernel caps it at `somaxconn`).
const BACKLOG: i32 = 4096;

/// A non-blocking listener on `addr` (tokio's; call within a runtime).
pub(crate) fn listen_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}
