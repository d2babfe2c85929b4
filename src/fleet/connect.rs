//! Opening a device's connection: a non-blocking connect, from a loopback source address
//! of its own when the target is on loopback.
//!
//! Linux picks the local port of a plain `connect()` by walking the ephemeral range for
//! a 4-tuple nobody holds; with ~170,000 loopback connections that walk took the workers'
//! whole CPU (`__inet_hash_connect`) and the ramp stalled. Binding each group of devices
//! to its own source address (127.1.x.1: every 127/8 address is local) first gives every
//! group a port range of its own, so the kernel finds a port at once.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

/// Devices of one worker sharing a source address: well under the ~14,000 ports the
/// kernel hands out to one address through `bind()`.
const DEVICES_PER_SOURCE: usize = 4096;

/// The source address of device `device` of worker `shard` for a loopback target.
pub fn loopback_source(shard: u32, device: usize) -> Ipv4Addr {
    let worker = 1 + (shard % 254) as u8;
    let group = ((device / DEVICES_PER_SOURCE) % 256) as u8;
    Ipv4Addr::new(127, worker, group, 1)
}

/// Starts connecting to `target` (from `source` when given); the connection completes
/// when the socket turns writable.
pub fn open(target: SocketAddr, source: Option<Ipv4Addr>) -> io::Result<mio::net::TcpStream> {
    let domain = Domain::for_address(target);
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    if let Some(source) = source.filter(|_| target.is_ipv4()) {
        socket.bind(&SocketAddr::from((source, 0)).into())?;
    }
    // Reads then carry the kernel's receive stamp; without it they are timed when read.
    let _ = crate::kernel_stamp::enable(&socket);
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
        Err(err) => return Err(err),
    }
    Ok(mio::net::TcpStream::from_std(socket.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn connects_from_the_chosen_loopback_source() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let source = loopback_source(3, 5000);
        assert_eq!(source, Ipv4Addr::new(127, 4, 1, 1));
        let _stream = open(listener.local_addr().unwrap(), Some(source)).unwrap();
        let (mut accepted, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), source);
        let _ = accepted.set_nonblocking(true);
        let _ = accepted.read(&mut [0u8; 1]);
        // Without a source the kernel picks one as usual.
        let _plain = open(listener.local_addr().unwrap(), None).unwrap();
        assert_eq!(listener.accept().unwrap().1.ip(), Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn groups_of_devices_share_a_source() {
        assert_eq!(
            loopback_source(0, 0),
            loopback_source(0, DEVICES_PER_SOURCE - 1)
        );
        assert_ne!(
            loopback_source(0, 0),
            loopback_source(0, DEVICES_PER_SOURCE)
        );
        assert_ne!(loopback_source(0, 0), loopback_source(1, 0));
    }
}
