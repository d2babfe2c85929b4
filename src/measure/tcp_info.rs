//! What a TCP socket's own kernel knows of its path (`TCP_INFO`): the smoothed round
//! trip and its variation, and the segments it retransmitted. The devices read it to
//! check an emulated network against its setting and to count what loss cost TCP.

// nix's getsockopt for a struct reads the kernel's `tcp_info` into a `MaybeUninit`;
// the unsafe code is the macro's, for exactly that read.
#![allow(unsafe_code)]

use std::os::fd::AsFd;

use nix::{getsockopt_impl, sockopt_impl};

sockopt_impl!(
    /// `TCP_INFO`: the kernel's account of a TCP connection.
    TcpInfo,
    GetOnly,
    libc::IPPROTO_TCP,
    libc::TCP_INFO,
    libc::tcp_info
);

/// The figures of `TCP_INFO` pingfleet reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpPath {
    /// The smoothed round trip, microseconds.
    pub rtt_us: u32,
    pub rttvar_us: u32,
    /// Segments retransmitted over the connection's life.
    pub total_retrans: u32,
}

/// The path of the connection `socket`, `None` when the kernel does not say.
pub fn read(socket: &impl AsFd) -> Option<TcpPath> {
    let info = nix::sys::socket::getsockopt(socket, TcpInfo).ok()?;
    Some(TcpPath {
        rtt_us: info.tcpi_rtt,
        rttvar_us: info.tcpi_rttvar,
        total_retrans: info.tcpi_total_retrans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_connection_has_a_short_round_trip_and_no_retransmissions() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let path = read(&client).unwrap();
        assert!(path.rtt_us > 0 && path.rtt_us < 100_000, "{path:?}");
        assert_eq!(path.total_retrans, 0);
        assert!(read(&server).is_some());
        assert!(read(&std::fs::File::open("/dev/null").unwrap()).is_none());
    }
}
