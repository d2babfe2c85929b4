//! The emulated networks in words: the lines a summary prints of a run's `links`
//! (each network's setting and what it dropped, the round trip the devices' kernels
//! measured against the one set, TCP's retransmissions, the emulator's own cost), and
//! the level the network was made at when it was not the packets'.

use crate::results::links::LinkFigures;
use crate::scenario::link_level::LinkLevel;
use crate::units::micros;

/// The summary's line of a network made on the middlebox's relays (no root), saying
/// what that cannot emulate; `None` at the packet level (its lines are [`lines`]).
pub(crate) fn level_line(level: Option<LinkLevel>) -> Option<String> {
    match level? {
        LinkLevel::Stream => Some(format!("emulated network: {}", LinkLevel::Stream.words())),
        LinkLevel::Packet => None,
    }
}

/// The summary's lines of the emulated networks.
pub(crate) fn lines(links: &LinkFigures) -> Vec<String> {
    let mut lines = Vec::new();
    for network in &links.networks {
        let counts = &network.counts;
        lines.push(format!(
            "network {}: {} | {} packets up, {} down, {} dropped (loss {}, outage {}, buffer {})",
            network.name,
            network.setting,
            counts.packets_up,
            counts.packets_down,
            network
                .dropped_share()
                .map_or("none".to_owned(), |share| format!("{:.2}%", share * 100.0)),
            counts.dropped_loss,
            counts.dropped_outage,
            counts.dropped_queue,
        ));
    }
    let measured = match (links.path_rtt, links.rtt_p50_over_set) {
        (Some(rtt), Some(ratio)) => format!(
            "round trip measured by the devices' kernels (TCP_INFO): p50 {} ({:.2}x the one set), p99 {}",
            micros(rtt.p50_us as f64),
            ratio,
            micros(rtt.p99_us as f64)
        ),
        (Some(rtt), None) => format!(
            "round trip measured by the devices' kernels (TCP_INFO), every network together: p50 {}, p99 {}",
            micros(rtt.p50_us as f64),
            micros(rtt.p99_us as f64)
        ),
        (None, _) => "round trip measured by the devices' kernels: not measured (no response read)"
            .to_owned(),
    };
    lines.push(measured);
    if let Some(handshake) = links.handshake_rtt {
        let ratio = links
            .handshake_p50_over_set
            .map_or(String::new(), |ratio| format!(" ({ratio:.2}x the one set)"));
        lines.push(format!(
            "TCP handshake timed by the devices (one round trip, no delayed ACK): p50 {}{ratio}, p99 {}",
            micros(handshake.p50_us as f64),
            micros(handshake.p99_us as f64)
        ));
    }
    let retransmits = links
        .retransmits_per_device_hour
        .map_or("not measured".to_owned(), |per| format!("{per:.2}"));
    let cost = links
        .emulator_cores_per_kpps
        .map_or("not measured".to_owned(), |cores| {
            format!("{cores:.4} cores")
        });
    lines.push(format!(
        "the devices' kernels retransmitted {retransmits} TCP segments per device-hour of the run; the emulator carried {} packets (at most {} held at once) and used {cost} per 1,000 packets a second",
        links.packets, links.peak_held
    ));
    if links.write_errors > 0 {
        lines.push(format!(
            "the kernel refused {} packets the emulator wrote back: lost on the path, beyond the profiles' losses",
            links.write_errors
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::forward::RouteCounts;
    use crate::link::profile::NetworkProfile;
    use crate::measure::latency::LatencySummary;
    use crate::results::links::NetworkFigure;

    #[test]
    fn a_stream_level_run_says_what_it_cannot_emulate() {
        let line = level_line(Some(LinkLevel::Stream)).unwrap();
        assert!(line.contains("stream level (no root)"), "{line}");
        assert!(line.contains("not emulated: packet loss"), "{line}");
        assert!(level_line(Some(LinkLevel::Packet)).is_none());
        assert!(level_line(None).is_none());
    }

    #[test]
    fn a_network_says_its_setting_its_drops_and_the_round_trip_against_it() {
        let links = LinkFigures {
            networks: vec![NetworkFigure {
                name: "lte".to_owned(),
                setting: NetworkProfile::lte().words(),
                profile: NetworkProfile::lte(),
                counts: RouteCounts {
                    packets_up: 150,
                    packets_down: 50,
                    dropped_loss: 1,
                    ..RouteCounts::default()
                },
            }],
            path_rtt: Some(LatencySummary {
                count: 3,
                p50_us: 71_000,
                p99_us: 90_000,
                ..LatencySummary::default()
            }),
            rtt_p50_over_set: Some(71.0 / 70.0),
            handshake_rtt: None,
            handshake_p50_over_set: None,
            retransmits_per_device_hour: Some(2.5),
            packets: 200,
            emulator_cores_per_kpps: Some(0.0123),
            emulator_cpu_seconds: Some(0.1),
            peak_held: 9,
            write_errors: 0,
        };
        let lines = lines(&links);
        assert!(
            lines[0].starts_with("network lte: 70 ms round trip"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0]
                .ends_with("150 packets up, 50 down, 0.50% dropped (loss 1, outage 0, buffer 0)"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("p50 71.00 ms (1.01x the one set)"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains("2.50 TCP segments per device-hour"),
            "{}",
            lines[2]
        );
        assert!(
            lines[2].ends_with("used 0.0123 cores per 1,000 packets a second"),
            "{}",
            lines[2]
        );
    }
}
