//! How long a plan should take on this kind of machine: the ramp at the rate devices
//! can be started (the scenario's `connect_rate`, or what two cores manage, whichever
//! is lower, never past `ramp_timeout`), the hold, the drain, and the start and stop
//! around them; a sweep's rounds and an engines comparison's two runs multiply it.
//! An estimate for `--plan` and `pingfleet scenarios`, printed as "about".

use std::time::Duration;

use super::resolve::ResolvedScenario;

/// TLS devices two cores park a second, server and devices on the same machine, each
/// with a full handshake and its bootstrap (40,000 paced at 2,500/s parked at about
/// 2,400/s on both cores).
const TLS_RAMP_PER_S: f64 = 2_000.0;
/// Plain devices two cores park a second (a million plain devices: ~3,700/s).
const PLAIN_RAMP_PER_S: f64 = 3_700.0;
/// Starting and stopping a measurement: the loopback floor, servers starting, workers
/// writing their documents.
const START_AND_STOP: Duration = Duration::from_secs(3);
/// A drain without a firewall ends when the last notification arrives: about a second.
const QUICK_DRAIN: Duration = Duration::from_secs(1);

/// How long one measurement of `plan` should take, start to stop.
pub fn measurement(plan: &ResolvedScenario) -> Duration {
    let scenario = &plan.scenario;
    let devices = scenario.devices.count as f64;
    let machine_rate = match scenario.server.tls {
        true => TLS_RAMP_PER_S,
        false => PLAIN_RAMP_PER_S,
    };
    let rate = match scenario.devices.connect_rate {
        rate if rate > 0.0 => rate.min(machine_rate),
        _ => machine_rate,
    };
    let ramp = Duration::from_secs_f64(devices / rate).min(scenario.stages.ramp_timeout.0);
    let drain = match scenario.firewall {
        Some(_) => scenario.stages.drain.0,
        None => scenario.stages.drain.0.min(QUICK_DRAIN),
    };
    START_AND_STOP + ramp + scenario.stages.hold.0 + drain
}

/// How long the whole run should take: every measurement it makes (a sweep's rounds
/// of cells measured at once, or one per engine compared).
pub fn wall_time(plan: &ResolvedScenario) -> Duration {
    let one = measurement(plan);
    let measurements = match &plan.scenario.sweep {
        Some(sweep) => sweep.cells().len().div_ceil(sweep.parallel.max(1)),
        None => plan.servers_measured().len().max(1),
    };
    one * measurements as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::resolve::{MachineLimits, Overrides};

    fn plan(text: &str) -> ResolvedScenario {
        let limits = MachineLimits {
            fd_limit: 20_000,
            memory_available_bytes: Some(24 << 30),
        };
        ResolvedScenario::resolve(text, "t.toml", &Overrides::default(), limits).unwrap()
    }

    #[test]
    fn ramp_hold_and_drain_add_up() {
        // 10,000 TLS devices at 2,000/s: 5 s of ramp, 30 s of hold, 1 s of drain.
        let tls = plan(
            "name = \"t\"\n[server]\ntls = true\n[devices]\ncount = 10000\n\
             [stages]\nhold = \"30s\"\n",
        );
        assert_eq!(measurement(&tls), Duration::from_secs(3 + 5 + 30 + 1));
        // A slower connect rate paces the ramp; the ramp timeout caps it.
        let paced = plan(
            "name = \"t\"\n[devices]\ncount = 1000\nconnect_rate = 100\n\
             [stages]\nhold = \"5s\"\nramp_timeout = \"4s\"\n",
        );
        assert_eq!(measurement(&paced), Duration::from_secs(3 + 4 + 5 + 1));
        // Two engines, two measurements.
        let engines = plan(
            "name = \"t\"\n[server]\ncompare_engines = true\n[devices]\ncount = 370\n\
             [stages]\nhold = \"5s\"\n",
        );
        assert_eq!(wall_time(&engines), measurement(&engines) * 2);
    }
}
