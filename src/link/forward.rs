//! The forwarder's bookkeeping, without I/O: which phone's link each packet crosses
//! (by the phone's address in a route's subnet), what that link does to it, the
//! packets held until their time, and what was counted per route.
//!
//! A link is kept per phone connection (address and port), so each device has its own
//! queue, losses and outages, as each phone has its own radio link. Packets that no
//! route claims (the notifications' datagrams, anything not TCP) pass at once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::packet::{tcp_segment, Subnet};
use super::profile::NetworkProfile;
use super::shaper::{Direction, DropCause, Link, Verdict};
use super::trace::LinkTraces;

/// The phones of one subnet and the profile their links follow.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRoute {
    pub subnet: Subnet,
    /// The profile's name, as the scenario and the report say it.
    pub name: String,
    pub profile: NetworkProfile,
}

/// What crossed one route's links.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct RouteCounts {
    pub packets_up: u64,
    pub packets_down: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Packets dropped by the loss chain, by an outage, by a full buffer.
    pub dropped_loss: u64,
    pub dropped_outage: u64,
    pub dropped_queue: u64,
    /// Phone connections that had a link.
    pub links_opened: u64,
}

/// A packet held until it leaves its link.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    at: Instant,
    order: u64,
    packet: Vec<u8>,
}

/// One phone connection's link and when it was last used.
#[derive(Debug)]
struct PhoneLink {
    link: Link,
    last_used: Instant,
}

/// A link unused this long is forgotten (a parked Ping is silent for its heartbeat,
/// at most about an hour).
const FORGET_AFTER: Duration = Duration::from_secs(2 * 3600);

/// Every route, every phone's link and every packet held.
#[derive(Debug)]
pub struct Forwarder {
    routes: Vec<LinkRoute>,
    /// Each route's delivery traces, read once, shared by its links.
    traces: Vec<LinkTraces>,
    counts: Vec<RouteCounts>,
    links: HashMap<(Ipv4Addr, u16), PhoneLink>,
    held: BinaryHeap<Reverse<Held>>,
    order: u64,
    seed: u64,
    /// Packets no route claimed, passed at once.
    pub passed: u64,
    /// The most packets held at once.
    pub peak_held: usize,
}

impl Forwarder {
    /// The forwarder of `routes`, each with its profile's delivery traces.
    pub fn new(routes: Vec<(LinkRoute, LinkTraces)>, seed: u64) -> Self {
        let (routes, traces): (Vec<_>, Vec<_>) = routes.into_iter().unzip();
        Self {
            counts: vec![RouteCounts::default(); routes.len()],
            routes,
            traces,
            links: HashMap::new(),
            held: BinaryHeap::new(),
            order: 0,
            seed,
            passed: 0,
            peak_held: 0,
        }
    }

    pub fn routes(&self) -> &[LinkRoute] {
        &self.routes
    }

    pub fn counts(&self) -> &[RouteCounts] {
        &self.counts
    }

    /// A packet read at `now`: returned to be sent at once when no route claims it,
    /// else held until its link lets it go (or dropped, and counted).
    pub fn admit(&mut self, packet: Vec<u8>, now: Instant) -> Option<Vec<u8>> {
        let Some((key, route, direction, reset)) = self.claim(&packet) else {
            self.passed += 1;
            return Some(packet);
        };
        let seed = self.seed ^ (u64::from(u32::from(key.0)) << 16 | u64::from(key.1));
        let profile = &self.routes[route].profile;
        let counts = &mut self.counts[route];
        let phone = self.links.entry(key).or_insert_with(|| {
            counts.links_opened += 1;
            PhoneLink {
                link: Link::new(profile, seed, now),
                last_used: now,
            }
        });
        phone.last_used = now;
        let bytes = packet.len();
        match direction {
            Direction::Up => (counts.packets_up += 1, counts.bytes_up += bytes as u64),
            Direction::Down => (counts.packets_down += 1, counts.bytes_down += bytes as u64),
        };
        let traces = &self.traces[route];
        let verdict = phone.link.admit(profile, traces, direction, bytes, now);
        if reset {
            self.links.remove(&key);
        }
        match verdict {
            Verdict::Deliver(at) => self.hold(at, packet),
            Verdict::Drop(DropCause::Loss) => counts.dropped_loss += 1,
            Verdict::Drop(DropCause::Outage) => counts.dropped_outage += 1,
            Verdict::Drop(DropCause::Queue) => counts.dropped_queue += 1,
        }
        None
    }

    /// The phone connection, route and direction of a packet one route claims.
    fn claim(&self, packet: &[u8]) -> Option<((Ipv4Addr, u16), usize, Direction, bool)> {
        let segment = tcp_segment(packet)?;
        self.routes.iter().enumerate().find_map(|(index, route)| {
            if route.subnet.contains(segment.source.0) {
                Some((segment.source, index, Direction::Up, segment.reset))
            } else if route.subnet.contains(segment.destination.0) {
                Some((segment.destination, index, Direction::Down, segment.reset))
            } else {
                None
            }
        })
    }

    fn hold(&mut self, at: Instant, packet: Vec<u8>) {
        self.order += 1;
        self.held.push(Reverse(Held {
            at,
            order: self.order,
            packet,
        }));
        self.peak_held = self.peak_held.max(self.held.len());
    }

    /// When the next held packet leaves its link.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.peek().map(|held| held.0.at)
    }

    /// The next held packet whose time has come by `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_due()? > now {
            return None;
        }
        self.held.pop().map(|held| held.0.packet)
    }

    /// Forgets the links unused for two hours.
    pub fn forget_idle(&mut self, now: Instant) {
        self.links
            .retain(|_, phone| now.saturating_duration_since(phone.last_used) < FORGET_AFTER);
    }

    /// Phone connections with a link now.
    pub fn links(&self) -> usize {
        self.links.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::packet::tests::tcp_packet;
    use crate::units::Span;

    fn route(subnet: &str, delay_ms: u64) -> (LinkRoute, LinkTraces) {
        let route = LinkRoute {
            subnet: subnet.parse().unwrap(),
            name: format!("{delay_ms}ms"),
            profile: NetworkProfile {
                delay: Span(Duration::from_millis(delay_ms)),
                ..NetworkProfile::default()
            },
        };
        (route, LinkTraces::default())
    }

    #[test]
    fn each_route_delays_its_own_phones_both_ways_and_others_pass() {
        let start = Instant::now();
        let mut forwarder = Forwarder::new(
            vec![route("198.18.16.0/24", 35), route("198.18.17.0/24", 100)],
            1,
        );
        let server = (Ipv4Addr::new(198, 18, 1, 2), 443);
        let lte = (Ipv4Addr::new(198, 18, 16, 10), 40000);
        let umts = (Ipv4Addr::new(198, 18, 17, 10), 40000);
        assert!(forwarder
            .admit(tcp_packet(lte, server, 0x02, 0), start)
            .is_none());
        assert!(forwarder
            .admit(tcp_packet(server, umts, 0x12, 0), start)
            .is_none());
        let stranger = (Ipv4Addr::new(10, 0, 0, 1), 1);
        assert!(forwarder
            .admit(tcp_packet(stranger, server, 0x02, 0), start)
            .is_some());
        assert_eq!(forwarder.passed, 1);
        assert_eq!(
            forwarder.next_due(),
            Some(start + Duration::from_millis(35))
        );
        assert!(forwarder
            .pop_due(start + Duration::from_millis(34))
            .is_none());
        let first = forwarder
            .pop_due(start + Duration::from_millis(35))
            .unwrap();
        assert_eq!(tcp_segment(&first).unwrap().source, lte);
        let second = forwarder
            .pop_due(start + Duration::from_millis(100))
            .unwrap();
        assert_eq!(tcp_segment(&second).unwrap().destination, umts);
        assert_eq!(forwarder.counts()[0].packets_up, 1);
        assert_eq!(forwarder.counts()[1].packets_down, 1);
        assert_eq!(forwarder.links(), 2);
    }

    #[test]
    fn a_reset_ends_the_link_and_idle_links_are_forgotten() {
        let start = Instant::now();
        let mut forwarder = Forwarder::new(vec![route("198.18.16.0/24", 35)], 1);
        let server = (Ipv4Addr::new(198, 18, 1, 2), 443);
        let phone = (Ipv4Addr::new(198, 18, 16, 10), 40000);
        let other = (Ipv4Addr::new(198, 18, 16, 11), 40000);
        forwarder.admit(tcp_packet(phone, server, 0x02, 0), start);
        forwarder.admit(tcp_packet(other, server, 0x02, 0), start);
        assert_eq!(forwarder.links(), 2);
        forwarder.admit(tcp_packet(server, phone, 0x04, 0), start);
        assert_eq!(forwarder.links(), 1);
        assert_eq!(forwarder.counts()[0].links_opened, 2);
        forwarder.forget_idle(start + FORGET_AFTER);
        assert_eq!(forwarder.links(), 0);
    }
}
