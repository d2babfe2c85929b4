//! `pingfleet run --plan`: the resolved plan, printed without starting anything: every
//! process with its role and count, the device kinds, the stages and the expected wall
//! time, the memory estimate against what the machine has, and where the results go.
//! Also `pingfleet scenarios`, the shipped scenarios with what each answers.

use std::fmt::Write as _;

use crate::fleet::injector::PatternKind;
use crate::fleet::profile::{Profile, ProfileMix};
use crate::scenario::catalog::SHIPPED;
use crate::scenario::estimate;
use crate::scenario::link_level::LinkLevel;
use crate::scenario::resolve::{MachineLimits, MemoryEstimate, Overrides, ResolvedScenario};
use crate::scenario::FirewallMode;
use crate::units;

/// The plan as text, one fact a line; `overrides` resolve each step or variant as the
/// run will.
pub fn describe(plan: &ResolvedScenario, file: &str, overrides: &Overrides) -> String {
    let scenario = &plan.scenario;
    let mut text = String::new();
    let mut line = |line: String| {
        let _ = writeln!(text, "{line}");
    };
    line(format!(
        "plan of {} from {file} (seed {}){}",
        scenario.name,
        scenario.seed,
        match plan.overrides.as_slice() {
            [] => String::new(),
            given => format!(", with {}", given.join(" ")),
        }
    ));
    for process in processes(plan) {
        line(format!("  process  {process}"));
    }
    let kinds = device_kinds(plan);
    line(format!(
        "  devices  {} {} ({})",
        scenario.devices.count,
        if scenario.server.tls { "TLS" } else { "plain" },
        kinds
    ));
    for stage in stages(plan) {
        line(format!("  stage    {stage}"));
    }
    line(format!("  time     {}", time_words(plan, overrides)));
    line(format!("  memory   {}", memory(plan)));
    for (metric, conditions) in &scenario.thresholds {
        let conditions: Vec<&str> = conditions
            .iter()
            .map(|condition| condition.0.text.as_str())
            .collect();
        line(format!(
            "  judge    {} {}",
            metric.name(),
            conditions.join(", ")
        ));
    }
    let kind = if scenario.sweep.is_some() {
        "sweep-"
    } else {
        ""
    };
    line(format!(
        "  results  {}/{kind}{}-<UTC time>.json{}{}",
        scenario.output,
        scenario.name,
        match (&scenario.sweep, &scenario.capacity) {
            (Some(_), _) => String::new(),
            (None, Some(_)) => ", and each step's result beside it".to_owned(),
            (None, None) => " and .hlog beside it".to_owned(),
        },
        match scenario.report {
            true => ", and its page of plots (.html)",
            false => "",
        }
    ));
    text
}

/// The whole run's expected time: every step of a search, every variant, every round
/// of a sweep, both engines.
fn time_words(plan: &ResolvedScenario, overrides: &Overrides) -> String {
    let whole = estimate::whole_time(plan, overrides);
    let span = |duration| humantime::format_duration(rounded(duration)).to_string();
    let scenario = &plan.scenario;
    if scenario.capacity.is_some() {
        let bisect = match whole.bisect.is_zero() {
            true => String::new(),
            false => format!(
                ", and up to {} more for its bisection steps",
                span(whole.bisect)
            ),
        };
        return format!(
            "about {} for all {} steps, at most: the search stops at the first that fails \
             ({} the first step{bisect}; estimated for this machine)",
            span(whole.all),
            whole.parts,
            span(whole.one)
        );
    }
    if !scenario.variants.is_empty() {
        return format!(
            "about {} for all {} variants ({} the first; estimated for this machine)",
            span(whole.all),
            whole.parts,
            span(whole.one)
        );
    }
    match &scenario.sweep {
        Some(sweep) => format!(
            "about {} for all {} cells, {} at once ({} a round; estimated for this machine)",
            span(whole.all),
            sweep.cells().len(),
            sweep.parallel,
            span(whole.one)
        ),
        None => format!("about {} (estimated for this machine)", span(whole.all)),
    }
}

/// A span of the compressed run in real-world time, and the run's own when they differ:
/// `10m (10s at time_scale 60)`.
fn real_world(plan: &ResolvedScenario, compressed: std::time::Duration) -> String {
    let scale = plan.scenario.time_scale;
    let span = |duration| humantime::format_duration(duration).to_string();
    match scale == 1.0 {
        true => span(compressed),
        false => format!(
            "{} ({} at time_scale {scale})",
            span(rounded(compressed.mul_f64(scale))),
            span(compressed)
        ),
    }
}

/// Whole seconds: an estimate has no milliseconds.
fn rounded(duration: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_secs(duration.as_secs_f64().round() as u64)
}

/// The reverse proxies: which, where TLS ends, and the timeout that cuts a parked Ping.
fn proxy_line(plan: &ResolvedScenario, proxy: &crate::proxy::config::ProxyConfig) -> String {
    let (cut_by, cut_after) = proxy.ping_cutting_timeout();
    let cut = match cut_after.0 == std::time::Duration::MAX {
        true => format!("nothing cuts a parked Ping ({cut_by} unset)"),
        false => format!(
            "a parked Ping is cut by its {cut_by} after {}",
            real_world(plan, cut_after.0)
        ),
    };
    format!(
        "{} x reverse proxy ({} {}, TLS {}), one before each partition: {cut}",
        plan.partitions,
        proxy.kind().title(),
        proxy.kind().expected_release(),
        match proxy.tls {
            crate::proxy::config::ProxyTls::Terminate => "terminated at the proxy",
            crate::proxy::config::ProxyTls::Passthrough => "passed through",
        },
    )
}

/// Each role, how many processes of it, and where they are.
fn processes(plan: &ResolvedScenario) -> Vec<String> {
    let scenario = &plan.scenario;
    let mut processes = Vec::new();
    match &scenario.target {
        Some(target) => processes.push(format!("server: none of ours, the target {}", target.url)),
        None => processes.push(format!(
            "{} x server partition (pingfleet serve, {} engine{}){}",
            plan.partitions,
            plan.engines
                .iter()
                .map(|engine| engine.name())
                .collect::<Vec<_>>()
                .join(" then "),
            if plan.engines.len() > 1 { "s" } else { "" },
            match (plan.in_namespaces(), plan.partitions > 1) {
                (true, _) => format!(
                    ", in the server's network namespace on {}",
                    crate::firewall::netns::SERVER_ADDR
                ),
                (false, true) => format!(", on 127.0.0.1 to 127.0.0.{}", plan.partitions.min(32)),
                (false, false) => ", on 127.0.0.1".to_owned(),
            }
        )),
    }
    if let Some(firewall) = &scenario.firewall {
        processes.push(match firewall.mode {
            FirewallMode::Proxy => format!(
                "{} x firewall (pingfleet firewall: a flow idle for {} is {}), one before each partition",
                plan.partitions,
                real_world(plan, firewall.idle_timeout.0),
                firewall.action.words()
            ),
            FirewallMode::Netns => format!(
                "kernel firewall: network namespaces, nftables and conntrack ({} idle; needs root)",
                real_world(plan, firewall.idle_timeout.0)
            ),
        });
    }
    if let Some(proxy) = &scenario.proxy {
        processes.push(proxy_line(plan, proxy));
    }
    let networks = scenario.networks_in_use();
    if !networks.is_empty() {
        let each: Vec<String> = networks
            .iter()
            .filter_map(|name| {
                let profile = scenario.network_profile(name)?;
                Some(format!("{name}: {}", profile.words()))
            })
            .collect();
        processes.push(match plan.link_level {
            Some(LinkLevel::Stream) => format!(
                "link emulator: {}; {} x pingfleet firewall, one before each partition{}: {}",
                LinkLevel::Stream.words(),
                plan.partitions,
                match scenario.firewall {
                    Some(_) => " (the firewall above)",
                    None => ", a plain relay (no idle action)",
                },
                each.join("; ")
            ),
            _ => format!(
                "link emulator: {}, a link per phone: {}",
                LinkLevel::Packet.words(),
                each.join("; ")
            ),
        });
    }
    processes.push(format!(
        "{} x device worker (pingfleet devices), about {} devices each",
        plan.workers,
        scenario
            .devices
            .count
            .div_ceil(plan.workers.max(1) as usize)
    ));
    processes
}

/// The device kinds and how many of each, exactly as the run will pick them.
fn device_kinds(plan: &ResolvedScenario) -> String {
    let scenario = &plan.scenario;
    let mix = ProfileMix::new(
        &Profile::default(),
        &scenario.devices.profiles,
        scenario.seed,
    );
    if mix.len() <= 1 {
        return "one kind".to_owned();
    }
    let mut counts = vec![0usize; mix.len()];
    for index in 0..scenario.devices.count {
        counts[mix.pick(index)] += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(entry, count)| format!("{} {count}", mix.spec(entry).name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The stages in order, with what happens in each.
fn stages(plan: &ResolvedScenario) -> Vec<String> {
    let scenario = &plan.scenario;
    let stages = &scenario.stages;
    let span = |duration| humantime::format_duration(duration).to_string();
    let injector = &scenario.injector;
    let mut lines = vec![format!(
        "ramp up to {} (devices started at up to {}/s, at most {} a worker between start \
         and first Ping), until every device has parked",
        span(stages.ramp_timeout.0),
        scenario.devices.connect_rate,
        scenario.devices.max_bootstrapping
    )];
    let notifications = match (injector.pattern, injector.rate) {
        (PatternKind::Burst, _) => format!(
            "a burst: {} of the devices notified within {}",
            injector.burst_share, injector.burst_window
        ),
        (pattern, rate) if rate > 0.0 => format!(
            "{} notifications at {}{}, about {:.0} in all",
            format!("{pattern:?}").to_lowercase(),
            match scenario.time_scale {
                1.0 => format!("{}/s", (rate * 100.0).round() / 100.0),
                scale => format!(
                    "{}/s ({}/s at time_scale {scale})",
                    (rate / scale * 1e4).round() / 1e4,
                    (rate * 100.0).round() / 100.0
                ),
            },
            injector
                .per_user_per_hour
                .map_or(String::new(), |per_hour| format!(
                    " ({per_hour} a user an hour)"
                )),
            rate * stages.hold.0.as_secs_f64()
        ),
        _ => "no notifications".to_owned(),
    };
    lines.push(format!(
        "hold {}: {notifications}, heartbeats of {}",
        real_world(plan, stages.hold.0),
        real_world(plan, scenario.devices.heartbeat.0)
    ));
    if let Some(flush) = scenario.firewall.as_ref().and_then(|f| f.flush_at) {
        lines.push(format!("flush every flow {} into the hold", span(flush.0)));
    }
    if let Some(reload) = scenario.proxy.as_ref().and_then(|proxy| proxy.reload_at) {
        lines.push(format!(
            "reload every proxy {} into the hold, the fleet parked",
            real_world(plan, reload.0)
        ));
    }
    lines.push(format!(
        "drain up to {}: every notification arrives or is counted lost",
        real_world(plan, stages.drain.0)
    ));
    if let Some(sweep) = &scenario.sweep {
        let axis = |spans: &[crate::units::Span]| {
            let spans: Vec<String> = spans.iter().map(|s| span(s.0)).collect();
            spans.join(", ")
        };
        let strategies: Vec<String> = sweep
            .heartbeat_strategy
            .iter()
            .map(|strategy| format!("{strategy:?}").to_lowercase())
            .collect();
        lines.push(format!(
            "sweep of {} cells, {} at once, in real-world time: heartbeat {} x firewall idle \
             timeout {} x heartbeat strategy {} (each cell replaces the heartbeat and idle \
             timeout above)",
            sweep.cells().len(),
            sweep.parallel,
            axis(&sweep.heartbeat),
            axis(&sweep.idle_timeout),
            strategies.join(", ")
        ));
    }
    if let Some(capacity) = &scenario.capacity {
        let steps: Vec<String> = capacity.steps().iter().map(usize::to_string).collect();
        lines.push(format!(
            "capacity search: steps of {} devices, each a run as above with the rate scaled to its devices; stops at the first step that fails its thresholds or would not fit in memory{} (the memory above is the first step's)",
            steps.join(", "),
            match capacity.bisect {
                0 => String::new(),
                n => format!(", then {n} more halving the gap between the largest that held and the smallest that failed"),
            }
        ));
    }
    if !scenario.variants.is_empty() {
        let variants: Vec<String> = scenario
            .variants
            .iter()
            .map(|variant| {
                let changes: Vec<String> = variant
                    .changes
                    .iter()
                    .map(|(key, value)| format!("{key} {}", value.to_string().trim()))
                    .collect();
                match changes.is_empty() {
                    true => format!("{} (as above)", variant.name),
                    false => format!("{} ({})", variant.name, changes.join(", ")),
                }
            })
            .collect();
        lines.push(format!(
            "variants: {}; each a run of its own, one after another, then side by side",
            variants.join("; ")
        ));
    }
    lines
}

/// The memory estimate against what the machine has.
fn memory(plan: &ResolvedScenario) -> String {
    let estimate = MemoryEstimate::of(&plan.scenario, plan.partitions + plan.workers);
    let available = plan
        .limits
        .memory_available_bytes
        .map_or("unknown".to_owned(), |bytes| units::bytes(bytes as f64));
    format!(
        "about {} ({} per {} device as last measured, and {} process{}) of {available} available",
        units::bytes(estimate.needed_bytes as f64),
        units::bytes(estimate.per_device_bytes as f64),
        estimate.kind,
        estimate.processes,
        if estimate.processes == 1 { "" } else { "es" }
    )
}

/// The shipped scenarios, one line each: name, expected time here, the question.
pub fn list_shipped() -> String {
    let limits = MachineLimits::read();
    let mut text = String::new();
    for shipped in SHIPPED {
        let time =
            ResolvedScenario::resolve(shipped.text, shipped.name, &Overrides::default(), limits)
                .map_or("-".to_owned(), |plan| {
                    let whole = estimate::whole_time(&plan, &Overrides::default());
                    format!("~{}", humantime::format_duration(rounded(whole.all)))
                });
        let _ = writeln!(
            text,
            "{:<16} {:>10}  {}",
            shipped.name, time, shipped.question
        );
    }
    text.push_str(
        "\nRun one by name (`pingfleet run smoke`), preview it (`pingfleet run smoke --plan`), \
         or copy scenarios/NAME.toml and edit it.\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_has_a_plan() {
        let limits = MachineLimits {
            fd_limit: 20_000,
            memory_available_bytes: Some(24 << 30),
            is_root: true,
        };
        for shipped in SHIPPED {
            let plan = ResolvedScenario::resolve(
                shipped.text,
                shipped.name,
                &Overrides::default(),
                limits,
            )
            .unwrap_or_else(|err| panic!("{}: {err}", shipped.name));
            let text = describe(&plan, shipped.name, &Overrides::default());
            assert!(text.contains("device worker"), "{text}");
            assert!(text.contains("about"), "{text}");
            assert!(
                text.contains(&format!("{}-<UTC time>.json", shipped.name)),
                "{text}"
            );
        }
    }

    fn shipped_plan(name: &str) -> ResolvedScenario {
        let limits = MachineLimits {
            fd_limit: 20_000,
            memory_available_bytes: Some(24 << 30),
            is_root: true,
        };
        let shipped = crate::scenario::catalog::shipped(name).unwrap();
        ResolvedScenario::resolve(shipped.text, name, &Overrides::default(), limits).unwrap()
    }

    #[test]
    fn searches_and_variants_give_their_whole_time() {
        let search = shipped_plan("capacity-search");
        let whole = estimate::whole_time(&search, &Overrides::default());
        assert!(whole.parts > 1 && whole.all > whole.one * 2, "{whole:?}");
        let text = describe(&search, "capacity-search", &Overrides::default());
        let all = humantime::format_duration(rounded(whole.all)).to_string();
        assert!(
            text.contains(&format!(
                "time     about {all} for all {} steps",
                whole.parts
            )),
            "{text}"
        );
        assert!(
            list_shipped().contains(&format!("~{all} ")),
            "{}",
            list_shipped()
        );
        let variants = shipped_plan("push-vs-poll");
        let text = describe(&variants, "push-vs-poll", &Overrides::default());
        let count = variants.scenario.variants.len();
        assert!(
            text.contains(&format!("for all {count} variants")),
            "{text}"
        );
        // Both write a page of plots (`report = true`), and their plans say so.
        assert!(text.contains("its page of plots (.html)"), "{text}");
        let smoke = describe(&shipped_plan("smoke"), "smoke", &Overrides::default());
        assert!(!smoke.contains(".html"), "{smoke}");
    }

    #[test]
    fn the_plan_says_at_which_level_the_network_is_made() {
        let text = "name = \"t\"\n[devices]\ncount = 10\nnetwork = \"lte\"\n";
        let plan = |is_root| {
            let limits = MachineLimits {
                fd_limit: 20_000,
                memory_available_bytes: None,
                is_root,
            };
            let plan =
                ResolvedScenario::resolve(text, "t.toml", &Overrides::default(), limits).unwrap();
            describe(&plan, "t", &Overrides::default())
        };
        let stream = plan(false);
        assert!(
            stream.contains(crate::scenario::link_level::STREAM_WORDS),
            "{stream}"
        );
        assert!(
            stream.contains("a plain relay (no idle action)"),
            "{stream}"
        );
        let packet = plan(true);
        assert!(
            packet.contains("link emulator: packet level (root)"),
            "{packet}"
        );
        assert!(!packet.contains("stream level"), "{packet}");
    }

    #[test]
    fn the_sweep_plan_is_in_real_world_time_with_its_grid() {
        let sweep = shipped_plan("firewall-sweep");
        let text = describe(&sweep, "firewall-sweep", &Overrides::default());
        assert!(
            text.contains("a flow idle for 10m (10s at time_scale 60) is black-holed"),
            "{text}"
        );
        assert!(
            text.contains("heartbeats of 8m (8s at time_scale 60)"),
            "{text}"
        );
        assert!(
            text.contains(
                "heartbeat 8m, 15m, 28m, 59m x firewall idle timeout 5m, 10m, 30m, 1h x \
                 heartbeat strategy fixed, adaptive"
            ),
            "{text}"
        );
        assert!(text.contains("for all 32 cells, 8 at once"), "{text}");
        assert!(
            text.contains("poisson notifications at 0.05/s (3/s at time_scale 60)"),
            "{text}"
        );
    }

    #[test]
    fn the_kinds_are_counted_as_the_run_picks_them() {
        let limits = MachineLimits {
            fd_limit: 20_000,
            memory_available_bytes: None,
            is_root: true,
        };
        let smoke = crate::scenario::catalog::shipped("smoke").unwrap();
        let plan =
            ResolvedScenario::resolve(smoke.text, "smoke", &Overrides::default(), limits).unwrap();
        let kinds = device_kinds(&plan);
        let total: usize = kinds
            .split(", ")
            .map(|kind| kind.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
            .sum();
        assert_eq!(total, plan.scenario.devices.count, "{kinds}");
        assert!(memory(&plan).ends_with("of unknown available"));
    }
}
