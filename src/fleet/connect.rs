//! Opening a device's connection: a non-blocking connect, from a loopback source address
//! of its own when the target is on loopback.
//!
//! Linux picks the local port of a plain `connect()` by walking the ephemeral range for
//! a 4-tuple nobody holds; with ~170,000 loopback connections that walk took the workers'
//! whole CPU (`__inet_hash_connect`) and the ramp stalled. Binding each group of devices
//! to its own source address (127.1.x.1: every 127/8 address is local) first gives every
//! group a port range of its own, so the kernel finds a port at once.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use nix::sys::socket::sockopt;
use socket2::{Domain, Protocol, Socket, Type};

use super::args::NetworkSubnet;

/// Devices of one worker sharing a loopback source address: well under the ~28,000
/// ephemeral ports of one source and destination.
const DEVICES_PER_SOURCE: usize = 4096;

/// The source address of device `device` of worker `shard` for a loopback target.
pub(crate) fn loopback_source(shard: u32, device: usize) -> Ipv4Addr {
    let worker = 1 + (shard % 254) as u8;
    let group = ((device / DEVICES_PER_SOURCE) % 256) as u8;
    Ipv4Addr::new(127, worker, group, 1)
}

/// Where one worker's connections come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sources {
    shard: u32,
    listed: Vec<Ipv4Addr>,
    /// Each emulated network's subnet: its devices connect from there.
    networks: Vec<NetworkSubnet>,
}

/// The hosts of a network's subnet devices take in turn (.10 to .73, as the run's
/// device namespace has them).
const NETWORK_HOSTS: std::ops::RangeInclusive<u32> = 10..=73;

impl Sources {
    /// The sources of worker `shard`: the `listed` addresses (`--source-address`), or
    /// if none, loopback ones of its own for loopback targets.
    pub(crate) fn new(shard: u32, listed: Vec<Ipv4Addr>, networks: Vec<NetworkSubnet>) -> Self {
        Self {
            shard,
            listed,
            networks,
        }
    }

    /// Whether any network is emulated (its devices' paths are worth reading).
    pub(crate) fn emulated(&self) -> bool {
        !self.networks.is_empty()
    }

    /// The address device `device` of `network` connects to `target` from: its
    /// network's subnet when it is emulated, else the listed ones in turn
    /// (offset by the shard, so the workers together spread evenly), else a loopback
    /// source for a loopback target, else the kernel's choice (`None`).
    pub(crate) fn of_device(
        &self,
        target: IpAddr,
        device: usize,
        network: &str,
    ) -> Option<Ipv4Addr> {
        let turn = device + self.shard as usize;
        if let Some(emulated) = self.networks.iter().find(|n| n.network == network) {
            let hosts = NETWORK_HOSTS.count();
            return Some(
                emulated
                    .subnet
                    .host(*NETWORK_HOSTS.start() + (turn % hosts) as u32),
            );
        }
        if !self.listed.is_empty() {
            let turn = (device + self.shard as usize) % self.listed.len();
            return Some(self.listed[turn]);
        }
        target
            .is_loopback()
            .then(|| loopback_source(self.shard, device))
    }
}

/// Starts connecting to `target` (from `source` when given); the connection completes
/// when the socket turns writable.
pub(crate) fn open(
    target: SocketAddr,
    source: Option<Ipv4Addr>,
) -> io::Result<mio::net::TcpStream> {
    let domain = Domain::for_address(target);
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    if let Some(source) = source.filter(|_| target.is_ipv4()) {
        // The port is chosen at connect time, unique per source and destination, not
        // reserved for the address alone by bind(): one address then serves every
        // destination, and the ports the last run left in TIME_WAIT do not run it dry.
        nix::sys::socket::setsockopt(&socket, sockopt::IpBindAddressNoPort, &true)
            .map_err(io::Error::from)?;
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
    fn listed_sources_are_taken_in_turn_and_loopback_ones_otherwise() {
        let listed = vec![Ipv4Addr::new(198, 18, 0, 10), Ipv4Addr::new(198, 18, 0, 11)];
        let remote: IpAddr = Ipv4Addr::new(198, 18, 1, 2).into();
        let lte = NetworkSubnet {
            network: "lte".to_owned(),
            subnet: "198.18.16.0/24".parse().unwrap(),
        };
        let sources = Sources::new(1, listed.clone(), vec![lte]);
        assert_eq!(sources.of_device(remote, 0, "none"), Some(listed[1]));
        assert_eq!(sources.of_device(remote, 1, "none"), Some(listed[0]));
        assert_eq!(
            sources.of_device(Ipv4Addr::LOCALHOST.into(), 2, "none"),
            Some(listed[1])
        );
        // A network's devices take its subnet's hosts .10 to .73 in turn.
        assert_eq!(
            sources.of_device(remote, 0, "lte"),
            Some(Ipv4Addr::new(198, 18, 16, 11))
        );
        assert_eq!(
            sources.of_device(remote, 63, "lte"),
            Some(Ipv4Addr::new(198, 18, 16, 10))
        );
        let unlisted = Sources::new(3, Vec::new(), Vec::new());
        assert_eq!(unlisted.of_device(remote, 5000, "none"), None);
        assert_eq!(
            unlisted.of_device(Ipv4Addr::LOCALHOST.into(), 5000, "none"),
            Some(loopback_source(3, 5000))
        );
    }

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
