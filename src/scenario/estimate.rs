//! How long a plan should take on this kind of machine: the ramp at the rate devices
//! can be started (the scenario's `connect_rate`, or what two cores manage, whichever
//! is lower, never past `ramp_timeout`), the hold, the drain, and the start and stop
//! around them; a sweep's rounds and an engines comparison's two runs multiply it.
//! A capacity search adds its steps and variants add up. An estimate for `--plan`
//! and `pingfleet scenarios`, printed as "about".

use std::time::Duration;

use super::resolve::{Overrides, ResolvedScenario};
use super::variants::variant_text;

/// TLS devices two cores park a second, server and devices on the same machine, each
/// with a full handshake and its bootstrap (40,000 paced at 2,500/s parked at about
/// 2,400/s on both cores).
const TLS_RAMP_PER_S: f64 = 2_000.0;
/// The same at a million devices, 56 partitions and 56 workers sharing the cores
/// (1,000,000 parked in 639 s: docs/measurements.md); between the two fleet sizes the
/// rate is taken on the line joining them.
const TLS_RAMP_PER_S_AT_A_MILLION: f64 = 1_565.0;
/// The fleet sizes those two rates were measured at.
const TLS_RAMP_MEASURED_AT: (f64, f64) = (40_000.0, 1_000_000.0);
/// Plain devices two cores park a second (a million plain devices: ~3,700/s).
const PLAIN_RAMP_PER_S: f64 = 3_700.0;
/// Starting and stopping a measurement: the loopback floor, servers starting, workers
/// writing their documents.
const START_AND_STOP: Duration = Duration::from_secs(3);
/// A drain without a firewall ends when the last notification arrives: about a second.
const QUICK_DRAIN: Duration = Duration::from_secs(1);

/// How long one measurement of `plan` should take, start to stop.
pub(crate) fn measurement(plan: &ResolvedScenario) -> Duration {
    let scenario = &plan.scenario;
    let devices = scenario.devices.count as f64;
    let machine_rate = match scenario.server.tls {
        true => tls_ramp_per_s(devices),
        false => PLAIN_RAMP_PER_S,
    };
    let rate = match scenario.devices.connect_rate {
        rate if rate > 0.0 => rate.min(machine_rate),
        _ => machine_rate,
    };
    let paced = Duration::from_secs_f64(devices / rate);
    let ramp = paced
        .max(bootstrap_bound(plan))
        .min(scenario.stages.ramp_timeout.0);
    let drain = match scenario.firewall {
        Some(_) => scenario.stages.drain.0,
        None => scenario.stages.drain.0.min(QUICK_DRAIN),
    };
    START_AND_STOP + ramp + scenario.stages.hold.0 + drain
}

/// Round trips of a device's bootstrap over its network: TCP's handshake, TLS's, then
/// OPTIONS, FolderSync, the Syncs and the first Ping each one (`pingfleet run mobile`
/// parked 2,000 devices over LTE, Wi-Fi and 3G in about 20 s against 15 s from this).
const BOOTSTRAP_ROUND_TRIPS: f64 = 6.0;

/// The ramp over emulated networks: each worker bootstraps at most
/// `max_bootstrapping` devices at once, each for its network's round trips, so the
/// fleet's bootstrap time (each kind's share of the devices times its round trips)
/// over the slots of every worker bounds the ramp from below. Zero without networks.
fn bootstrap_bound(plan: &ResolvedScenario) -> Duration {
    let scenario = &plan.scenario;
    let devices = &scenario.devices;
    let round_trip = |name: &str| {
        scenario
            .network_profile(name)
            .map_or(0.0, |profile| profile.round_trip().as_secs_f64())
    };
    let kinds: Vec<(f64, f64)> = match devices.profiles.as_slice() {
        [] => vec![(1.0, round_trip(&devices.network))],
        profiles => profiles
            .iter()
            .map(|profile| {
                let network = profile.network.as_deref().unwrap_or(&devices.network);
                (f64::from(profile.weight.max(1)), round_trip(network))
            })
            .collect(),
    };
    let total_weight: f64 = kinds.iter().map(|(weight, _)| weight).sum();
    let mean_round_trip: f64 = kinds
        .iter()
        .map(|(weight, rtt)| weight / total_weight * rtt)
        .sum();
    let slots = (devices.max_bootstrapping * plan.workers as usize).max(1) as f64;
    let seconds = devices.count as f64 * BOOTSTRAP_ROUND_TRIPS * mean_round_trip / slots;
    Duration::from_secs_f64(seconds)
}

/// TLS devices parked a second at a fleet of `devices`, on the line between the two
/// measured fleet sizes (and flat beyond them).
fn tls_ramp_per_s(devices: f64) -> f64 {
    let (small, large) = TLS_RAMP_MEASURED_AT;
    let share = ((devices - small) / (large - small)).clamp(0.0, 1.0);
    TLS_RAMP_PER_S + share * (TLS_RAMP_PER_S_AT_A_MILLION - TLS_RAMP_PER_S)
}

/// How long the whole run should take: every measurement it makes (a sweep's rounds
/// of cells measured at once, or one per engine compared).
pub(crate) fn wall_time(plan: &ResolvedScenario) -> Duration {
    let one = measurement(plan);
    let measurements = match &plan.scenario.sweep {
        Some(sweep) => sweep.cells().len().div_ceil(sweep.parallel.max(1)),
        None => plan.servers_measured().len().max(1),
    };
    one * measurements as u32
}

/// How long a whole run should take: one measurement, and every measurement of a
/// capacity search or of the variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WholeTime {
    /// One measurement of the plan (a search's first step, one variant).
    pub one: Duration,
    /// Every measurement: all the steps (a search stops at the first that fails, so at
    /// most this), all the variants, a sweep's rounds, both engines.
    pub all: Duration,
    /// The measurements counted in `all` when there are several kinds of them (steps
    /// or variants); 1 otherwise.
    pub parts: usize,
    /// A search's bisection steps after its first failure, at most this long together.
    pub bisect: Duration,
}

/// The whole run's time for `plan`, resolved with `overrides` (each step and variant
/// is resolved as the run will resolve it).
pub(crate) fn whole_time(plan: &ResolvedScenario, overrides: &Overrides) -> WholeTime {
    let one = wall_time(plan);
    let scenario = &plan.scenario;
    let resolve = |text: &str, overrides: &Overrides| {
        ResolvedScenario::resolve(text, &scenario.name, overrides, plan.limits).ok()
    };
    if let Some(capacity) = &scenario.capacity {
        // A step that does not resolve (it would not fit) is where the search stops.
        let steps: Vec<Duration> = capacity
            .steps()
            .into_iter()
            .map_while(|devices| {
                let step = Overrides {
                    devices: Some(devices),
                    ..overrides.clone()
                };
                resolve(&plan.text, &step).map(|step| wall_time(&step))
            })
            .collect();
        let largest = steps.last().copied().unwrap_or(one);
        return WholeTime {
            one: steps.first().copied().unwrap_or(one),
            all: steps.iter().sum(),
            parts: steps.len(),
            bisect: largest * capacity.bisect,
        };
    }
    if !scenario.variants.is_empty() {
        let variants: Vec<Duration> = scenario
            .variants
            .iter()
            .map(|variant| {
                variant_text(&plan.text, variant)
                    .ok()
                    .and_then(|text| resolve(&text, overrides))
                    .map_or(one, |variant| wall_time(&variant))
            })
            .collect();
        return WholeTime {
            one: variants.first().copied().unwrap_or(one),
            all: variants.iter().sum(),
            parts: variants.len(),
            bisect: Duration::ZERO,
        };
    }
    WholeTime {
        one: measurement(plan),
        all: one,
        parts: 1,
        bisect: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::resolve::{MachineLimits, Overrides};

    fn plan(text: &str) -> ResolvedScenario {
        let limits = MachineLimits {
            fd_limit: 20_000,
            memory_available_bytes: Some(24 << 30),
            is_root: true,
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

    #[test]
    fn over_a_network_the_ramp_waits_for_the_bootstraps_round_trips() {
        // 2,000 devices on a 200 ms path, 64 bootstrapping at once in one worker:
        // 2,000 x 6 x 0.2 s / 64 = 37.5 s, not the 1 s a 2,000/s pace would give.
        let slow = plan(
            "name = \"t\"\n[devices]\ncount = 2000\nconnect_rate = 2000\nnetwork = \"3g\"\n\
             [stages]\nhold = \"5s\"\nramp_timeout = \"5m\"\n",
        );
        assert_eq!(bootstrap_bound(&slow), Duration::from_secs_f64(37.5));
        let loopback = plan("name = \"t\"\n[devices]\ncount = 2000\n");
        assert_eq!(bootstrap_bound(&loopback), Duration::ZERO);
    }

    #[test]
    fn a_large_tls_fleet_parks_at_the_rate_measured_at_its_size() {
        assert_eq!(tls_ramp_per_s(10_000.0), TLS_RAMP_PER_S);
        assert_eq!(tls_ramp_per_s(1_000_000.0), TLS_RAMP_PER_S_AT_A_MILLION);
        assert_eq!(tls_ramp_per_s(4_000_000.0), TLS_RAMP_PER_S_AT_A_MILLION);
        let halfway = tls_ramp_per_s(520_000.0);
        assert!((halfway - (TLS_RAMP_PER_S + TLS_RAMP_PER_S_AT_A_MILLION) / 2.0).abs() < 1e-9);
        // A million TLS devices at up to 2,000/s: the ramp takes 639 s, as measured.
        let million = plan(
            "name = \"t\"\n[server]\ntls = true\n[devices]\ncount = 1000000\n\
             connect_rate = 2000\n[stages]\nramp_timeout = \"900s\"\nhold = \"60s\"\n",
        );
        let ramp = measurement(&million) - Duration::from_secs(3 + 60 + 1);
        assert_eq!(ramp.as_secs(), 638);
    }

    #[test]
    fn a_search_counts_every_step_and_variants_add_up() {
        let search = plan(
            "name = \"t\"\n[devices]\ncount = 370\n[stages]\nhold = \"5s\"\n\
             [capacity]\nsteps = [370, 3700, 37000]\nbisect = 2\n",
        );
        let whole = whole_time(&search, &Overrides::default());
        assert_eq!(whole.parts, 3);
        // 3 s to start and stop, 5 s of hold, 1 s of drain, and 0.1, 1 and 10 s of ramp.
        let step = |ramp_ms: u64| Duration::from_millis(9_000 + ramp_ms);
        assert_eq!(whole.one, step(100));
        assert_eq!(whole.all, step(100) + step(1_000) + step(10_000));
        assert_eq!(whole.bisect, step(10_000) * 2);
        let variants = plan(
            "name = \"t\"\n[devices]\ncount = 370\n[stages]\nhold = \"5s\"\n\
             [[variants]]\nname = \"short\"\n[[variants]]\nname = \"long\"\n\
             stages = { hold = \"65s\" }\n",
        );
        let whole = whole_time(&variants, &Overrides::default());
        assert_eq!((whole.parts, whole.one), (2, measurement(&variants)));
        assert_eq!(
            whole.all,
            measurement(&variants) * 2 + Duration::from_secs(60)
        );
    }
}
