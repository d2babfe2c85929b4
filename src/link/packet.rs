//! Reading just enough of an IP packet to tell whose link it crosses: its version,
//! protocol, addresses and TCP ports. Anything it cannot read is passed on untouched.

use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 subnet, written `198.18.16.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn contains(self, addr: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        u32::from(addr) & mask == u32::from(self.addr) & mask
    }

    /// The `index`-th address of the subnet (the network's own address is index 0).
    pub fn host(self, index: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr).saturating_add(index))
    }
}

impl FromStr for Subnet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let wrong = || format!("`{text}` is not a subnet: write e.g. 198.18.16.0/24");
        let (addr, prefix) = text.split_once('/').ok_or_else(wrong)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| wrong())?;
        let prefix: u8 = prefix.parse().map_err(|_| wrong())?;
        if prefix > 32 {
            return Err(wrong());
        }
        Ok(Self { addr, prefix })
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// What the forwarder needs of a packet: a TCP segment's endpoints and whether it
/// resets the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub source: (Ipv4Addr, u16),
    pub destination: (Ipv4Addr, u16),
    pub reset: bool,
}

const TCP: u8 = 6;
const RST: u8 = 0x04;

/// The TCP segment an IPv4 packet carries; `None` for anything else (other protocols,
/// IPv6, fragments after the first, a packet too short to read).
pub fn tcp_segment(packet: &[u8]) -> Option<Segment> {
    let first = *packet.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let header = usize::from(first & 0x0f) * 4;
    let fragment_offset = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]) & 0x1fff;
    if header < 20 || *packet.get(9)? != TCP || fragment_offset != 0 {
        return None;
    }
    let tcp = packet.get(header..header + 14)?;
    let addr =
        |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
    Some(Segment {
        source: (addr(12), u16::from_be_bytes([tcp[0], tcp[1]])),
        destination: (addr(16), u16::from_be_bytes([tcp[2], tcp[3]])),
        reset: tcp[13] & RST != 0,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An IPv4 TCP packet from `source` to `destination` with `flags` and `payload`
    /// bytes of data (checksums are not read).
    pub(crate) fn tcp_packet(
        source: (Ipv4Addr, u16),
        destination: (Ipv4Addr, u16),
        flags: u8,
        payload: usize,
    ) -> Vec<u8> {
        let total = 40 + payload;
        let mut packet = vec![0u8; total];
        packet[0] = 0x45;
        packet[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        packet[8] = 64;
        packet[9] = TCP;
        packet[12..16].copy_from_slice(&source.0.octets());
        packet[16..20].copy_from_slice(&destination.0.octets());
        packet[20..22].copy_from_slice(&source.1.to_be_bytes());
        packet[22..24].copy_from_slice(&destination.1.to_be_bytes());
        packet[32] = 0x50;
        packet[33] = flags;
        packet
    }

    #[test]
    fn a_tcp_segment_is_read_and_anything_else_is_not() {
        let phone = (Ipv4Addr::new(198, 18, 16, 10), 40000);
        let server = (Ipv4Addr::new(198, 18, 1, 2), 443);
        let packet = tcp_packet(phone, server, RST, 0);
        let segment = tcp_segment(&packet).unwrap();
        assert_eq!(
            (segment.source, segment.destination, segment.reset),
            (phone, server, true)
        );
        let mut udp = packet.clone();
        udp[9] = 17;
        assert_eq!(tcp_segment(&udp), None);
        let mut fragment = packet.clone();
        fragment[7] = 1;
        assert_eq!(tcp_segment(&fragment), None);
        assert_eq!(tcp_segment(&packet[..30]), None);
        assert_eq!(tcp_segment(&[0x60; 60]), None);
        assert_eq!(tcp_segment(&[]), None);
    }

    #[test]
    fn subnets_read_and_hold_their_addresses() {
        let subnet: Subnet = "198.18.16.0/24".parse().unwrap();
        assert!(subnet.contains(Ipv4Addr::new(198, 18, 16, 200)));
        assert!(!subnet.contains(Ipv4Addr::new(198, 18, 17, 1)));
        assert_eq!(subnet.host(10), Ipv4Addr::new(198, 18, 16, 10));
        assert_eq!(subnet.to_string(), "198.18.16.0/24");
        assert!("198.18.16.0".parse::<Subnet>().is_err());
        assert!("198.18.16.0/33".parse::<Subnet>().is_err());
        assert!("0.0.0.0/0"
            .parse::<Subnet>()
            .unwrap()
            .contains(Ipv4Addr::LOCALHOST));
    }
}
