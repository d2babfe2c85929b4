//! What a run prints when it ends: the figures, every threshold marked pass or fail,
//! and the engines side by side.

use std::fmt::Write as _;
use std::path::Path;

use crate::fleet::radio::RadioKind;
use crate::fleet::report::HistogramName;
use crate::results::network::{FlushFigures, NetworkFigures};
use crate::results::run::{DeviceHourCost, EngineComparison, RunResult, ThresholdVerdict};
use crate::results::self_check::Cause;
use crate::scenario::FirewallMode;
use crate::server::wake_path::WakeStage;
use serde::de::value::{Error as ValueError, StrDeserializer};

/// The run's summary as it is printed when the run ends.
/// Appends a line (of `format!` arguments) to a summary being written.
macro_rules! say {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

pub fn summary_text(result: &RunResult, path: &Path) -> String {
    let mut out = String::new();
    let out = &mut out;
    let fleet = &result.fleet;
    let counters = &fleet.counters;
    say!(out);
    say!(out,
        "devices {} bootstrapped {} | notifications sent {} delivered {} lost {}{} | requests {} errors {} | reconnects {} (churn drops {})",
        fleet.devices,
        fleet.devices_bootstrapped,
        counters.notifications_sent,
        counters.notifications_delivered,
        counters.notifications_lost,
        match counters.notifications_unfinished_at_stop {
            0 => String::new(),
            n => format!(" unfinished at the stop {n}"),
        },
        counters.requests.values().sum::<u64>(),
        counters.errors.values().sum::<u64>(),
        counters.reconnects,
        counters.churn_drops
    );
    if let [_, _, ..] = fleet.profiles.as_slice() {
        let mix: Vec<String> = fleet
            .profiles
            .iter()
            .map(|profile| format!("{} {}", profile.name, profile.devices))
            .collect();
        say!(out, "device kinds: {}", mix.join(", "));
    }
    for name in [
        HistogramName::WakeupLatency,
        HistogramName::WakeupFromDeparture,
        HistogramName::InjectorLag,
        HistogramName::MailOnDeviceLatency,
        HistogramName::MailOnDeviceWorld,
        HistogramName::EventLoopLag,
    ] {
        // In real time the world's figure is the measured one.
        let compressed = result.time_scale != 1.0;
        if name == HistogramName::MailOnDeviceWorld && !compressed {
            continue;
        }
        if let Some(doc) = fleet.histograms.get(&name) {
            let s = doc.summary;
            say!(
                out,
                "{:<26} p50 {:>7} us  p90 {:>7} us  p99 {:>7} us  p99.9 {:>7} us  max {:>8} us",
                name.key(),
                s.p50_us,
                s.p90_us,
                s.p99_us,
                s.p999_us,
                s.max_us
            );
        }
    }
    write_floor(out, result);
    write_wake_split(out, result);
    write_memory(out, result);
    if let Some(cost) = &result.cost_per_device_hour {
        say!(out,
            "per device-hour of the hold: {:.1} requests ({:.1} Pings), {:.0} bytes, {:.2} connections, {:.2} TLS handshakes ({:.2} resumed)",
            cost.requests, cost.ping_requests, cost.bytes, cost.connections, cost.tls_handshakes, cost.tls_resumed
        );
        let mail = radio_mail(result);
        say!(out, "{}", radio_line(cost, hold_real_s(result), mail));
        write_empty_wakes(out, result, cost);
    }
    write_network(out, result);
    let proxy_lines = result.proxy.iter();
    for line in proxy_lines.flat_map(|proxy| super::proxy_words::lines(proxy, result.time_scale)) {
        say!(out, "{line}");
    }
    for line in result.links.iter().flat_map(super::link_words::lines) {
        say!(out, "{line}");
    }
    if let Some(line) = super::link_words::level_line(result.link_level) {
        say!(out, "{line}");
    }
    write_self_check(out, result);
    write_verdicts(out, &result.thresholds);
    for failure in &result.failures {
        say!(out, "[INCOMPLETE] {failure}");
    }
    say!(out, "results: {}", path.display());
    std::mem::take(out)
}

/// Each threshold's verdict, one line each: `[PASS] errors count==0 (observed 0)`.
pub fn print_verdicts(verdicts: &[ThresholdVerdict]) {
    let mut out = String::new();
    write_verdicts(&mut out, verdicts);
    print!("{out}");
}

/// Each threshold's verdict, one line each.
fn write_verdicts(out: &mut String, verdicts: &[ThresholdVerdict]) {
    for verdict in verdicts {
        say!(
            out,
            "[{}] {} {} (observed {})",
            match (verdict.judged, verdict.passed, verdict.inconclusive) {
                (false, _, _) => "NOT JUDGED",
                (true, true, _) => "PASS",
                (true, false, true) => "INCONCLUSIVE",
                (true, false, false) => "FAIL",
            },
            verdict.metric,
            verdict.condition,
            verdict.observed_words()
        );
    }
}

fn write_network(out: &mut String, result: &RunResult) {
    let Some(network) = &result.network else {
        return;
    };
    write_firewall(out, network);
    say!(out,
        "mail: sent {} = on time {} + late {} + lost {}{} | Pings died: {} by deadline, {} by reset, {} answered 502/504 by a proxy, {} closed by the other end",
        network.sent,
        network.on_time,
        network.late,
        network.lost,
        if network.accounting_closes { "" } else { " (DOES NOT CLOSE)" },
        network.pings_died_by_deadline,
        network.pings_died_by_reset,
        network.pings_died_by_gateway,
        network.pings_died_by_close,
    );
    if let Some(staleness) = &network.staleness {
        if staleness.count > 0 {
            say!(
                out,
                "staleness (drop to next working Ping): p50 {:.1} s, p99 {:.1} s, max {:.1} s",
                staleness.p50_us as f64 / 1e6,
                staleness.p99_us as f64 / 1e6,
                staleness.max_us as f64 / 1e6
            );
        }
    }
    if let Some(flush) = &network.flush {
        write_flush(out, flush);
    }
    if !network.heartbeat_at_end.is_empty() {
        say!(
            out,
            "heartbeats at the end: {:?}; adaptive devices settled by p50 {:.1} s, max {:.1} s",
            network.heartbeat_at_end,
            network.heartbeat_settled.p50_us as f64 / 1e6,
            network.heartbeat_settled.max_us as f64 / 1e6
        );
    }
}

/// What the firewall did, by its own account (the middlebox), or how it works (netns).
fn write_firewall(out: &mut String, network: &NetworkFigures) {
    if let Some(firewall) = network
        .firewall
        .as_ref()
        .filter(|f| f.mode == FirewallMode::Netns)
    {
        say!(out,
            "kernel firewall (network namespaces, conntrack forgets a flow after {} s idle and drops its packets): what it did is seen by the devices",
            firewall.idle_timeout_s
        );
    } else if let Some(firewall) = &network.firewall {
        say!(out,
            "firewall (the userspace middlebox: a flow idle for {} s is {}): {} flows, {} idle expiries, {} evictions, {} refused, peak {} flows, {} bytes/flow, adds p50 {} us p99 {} us",
            firewall.idle_timeout_s,
            firewall.action.words(),
            firewall.flows_opened,
            firewall.idle_expired,
            firewall.evicted,
            firewall.refused,
            firewall.peak_flows,
            firewall.bytes_per_flow.map_or("n/a".to_owned(), |b| format!("{b:.0}")),
            firewall.forwarding_p50_us,
            firewall.forwarding_p99_us,
        );
    }
}

/// The flush and the reconnect storm after it.
fn write_flush(out: &mut String, flush: &FlushFigures) {
    say!(out,
            "flush at t={}: {} of {} parked devices pinged again on a new connection; 50% by {:.1} s, 90% by {:.1} s, 99% by {:.1} s, the last at {:.1} s",
            flush.at_s.map_or("?".to_owned(), |t| format!("{t:.1}s")),
            flush.reparked,
            flush.parked,
            flush.repark.p50_us as f64 / 1e6,
            flush.repark.p90_us as f64 / 1e6,
            flush.repark.p99_us as f64 / 1e6,
            flush.repark.max_us as f64 / 1e6,
        );
    let storm = &flush.storm;
    say!(out,
            "the storm: {} connections, {} full and {} resumed TLS handshakes; at the peak {}/s connections, {}/s full, {}/s resumed, {}/s parked again",
            storm.connects,
            storm.full_handshakes,
            storm.resumed_handshakes,
            storm.peak_connects_per_s,
            storm.peak_full_handshakes_per_s,
            storm.peak_resumed_handshakes_per_s,
            storm.peak_reparks_per_s,
        );
}

/// A radio figure per device-hour needs a hold of this many of the radio's tails
/// (each exchange keeps the radio up for one): a shorter hold shows a few wakes, not a
/// phone's hour.
const RADIO_HOLD_TAILS: f64 = 10.0;
/// A radio up this share of the hour never rested: its device's exchanges came faster
/// than its tail (a load test's rate, not a phone's mail), and its battery figure says
/// nothing of a phone.
const RADIO_NEVER_RESTED: f64 = 0.95;

/// The hold's length in real-world seconds (a compressed run's hold stands for more).
fn hold_real_s(result: &RunResult) -> f64 {
    result
        .fleet
        .stages
        .iter()
        .find(|stage| stage.name == crate::phase::Phase::Hold)
        .map_or(0.0, |hold| hold.duration_s * result.time_scale)
}

/// Mail on device with the radio (modelled) and as measured, in real-world time: the
/// p50 and p99 of each, in microseconds.
type RadioMail = ((u64, u64), (u64, u64));

fn radio_mail(result: &RunResult) -> Option<RadioMail> {
    let quantiles = |name| {
        result
            .summary_of(name)
            .map(|summary| (summary.p50_us, summary.p99_us))
    };
    quantiles(HistogramName::MailOnDeviceWithRadio).zip(quantiles(HistogramName::MailOnDeviceWorld))
}

/// The radio's cost per device-hour, where the hold (real-world seconds) and the mail
/// rate make it a phone's (with mail on device with the radio's own delays, modelled,
/// beside the measured figure); else why not.
fn radio_line(cost: &DeviceHourCost, hold_s: f64, mail: Option<RadioMail>) -> String {
    use serde::Deserialize as _;
    let kind =
        RadioKind::deserialize(StrDeserializer::<ValueError>::new(&cost.radio)).unwrap_or_default();
    let tail_s: f64 = kind
        .model()
        .tail
        .iter()
        .map(|t| t.timer.as_secs_f64())
        .sum();
    let needed_s = RADIO_HOLD_TAILS * tail_s;
    if hold_s < needed_s {
        return format!(
            "radio: not meaningful for a hold of {hold_s:.0} s (a device-hour figure needs \
             {RADIO_HOLD_TAILS:.0} of the {} radio's {tail_s:.1} s tails, a hold of {:.0} s or more)",
            cost.radio,
            needed_s.ceil()
        );
    }
    if cost.radio_active_s >= RADIO_NEVER_RESTED * 3600.0 {
        return format!(
            "radio: not meaningful at this mail rate: the {} radio was up {:.0} s of each \
             device-hour, it never rested (a load test's rate, not a phone's mail)",
            cost.radio, cost.radio_active_s
        );
    }
    format!(
        "radio ({} model, driven by the devices' own traffic; modelled, not measured) per device-hour: {:.0} s up, {:.1} J, {:.2} data sessions; {:.2}% of a {} Wh battery a day{}",
        cost.radio,
        cost.radio_active_s,
        cost.radio_joules,
        cost.data_sessions,
        cost.battery_share_per_day * 100.0,
        cost.battery_wh,
        match cost.sms_sent > 0.0 {
            true => format!("; {:.2} texts ({:.3} lost)", cost.sms_sent, cost.sms_lost),
            false => String::new(),
        },
    ) + &mail.map_or(String::new(), |((p50, p99), (measured_p50, measured_p99))| {
        format!(
            "; mail on device with the radio's paging and promotion (modelled) p50 {} p99 {}, \
             measured without them p50 {} p99 {}",
            seconds(p50),
            seconds(p99),
            seconds(measured_p50),
            seconds(measured_p99)
        )
    })
}

/// Microseconds as seconds, to the millisecond.
fn seconds(us: u64) -> String {
    format!("{:.3} s", us as f64 / 1e6)
}

/// The wake-up latency over the loopback floor measured during the hold (or before the
/// run when there was no hold), unless that floor is unusable as a denominator.
fn write_floor(out: &mut String, result: &RunResult) {
    let Some(wakeup) = result.fleet.histograms.get(&HistogramName::WakeupLatency) else {
        return;
    };
    if result.link_level.is_some() {
        say!(
            out,
            "loopback floor: not a denominator here (the wake-up crosses the emulated networks below)"
        );
        return;
    }
    let (floor, when) = match &result.floor {
        Some(floor) if !floor.usable => {
            let why = floor.why.as_deref().unwrap_or("");
            say!(
                out,
                "loopback floor during the hold: unusable as a ratio ({why})"
            );
            return;
        }
        Some(floor) => (floor.during_hold, "during the hold"),
        None => match result.calibration {
            Some(floor) => (floor, "before the run"),
            None => return,
        },
    };
    let wakeup = wakeup.summary;
    if wakeup.count == 0 {
        return;
    }
    let over = |us: u64, floor_us: u64| us as f64 / floor_us.max(1) as f64;
    let departure = result
        .fleet
        .histograms
        .get(&HistogramName::WakeupFromDeparture)
        .map(|doc| doc.summary)
        .filter(|summary| summary.count > 0)
        .map_or(String::new(), |from| {
            format!(
                "; from the datagram's departure (the injector's lag left out) p50 {:.1}x, p99 {:.1}x",
                over(from.p50_us, floor.p50_us),
                over(from.p99_us, floor.p99_us)
            )
        });
    say!(
        out,
        "wake-up p50 is {:.1}x the loopback floor {when} ({} us), p99 {:.1}x ({} us){departure}",
        over(wakeup.p50_us, floor.p50_us),
        floor.p50_us,
        over(wakeup.p99_us, floor.p99_us),
        floor.p99_us
    );
}

/// The wake-up's median split into the generator's share (plan to the datagram's
/// departure), the server's (its kernel receiving the datagram to its kernel sending
/// the response, stage by stage) and the rest (the loopback and the device reading the
/// response). Medians of parts do not add up exactly to the median of the whole.
fn write_wake_split(out: &mut String, result: &RunResult) {
    let p50 = |name| result.summary_of(name).map(|summary| summary.p50_us);
    let (Some(wakeup), Some(generator)) = (
        p50(HistogramName::WakeupLatency),
        p50(HistogramName::InjectorLag),
    ) else {
        return;
    };
    let Some(path) = &result.server_wake_path else {
        let why = match (&result.target, result.complete) {
            (Some(_), _) => "not measured (an external server)",
            (None, false) => "not read (the run was stopped before its servers were asked)",
            (None, true) => "not read (the servers did not answer)",
        };
        say!(
            out,
            "wake-up p50 {wakeup} us: generator {generator} us; the server's share {why}"
        );
        return;
    };
    let Some(server) = path.0.get(WakeStage::Total.key()).map(|total| total.p50_us) else {
        return;
    };
    let stages: Vec<String> = WakeStage::ALL
        .iter()
        .filter(|stage| **stage != WakeStage::Total)
        .filter_map(|stage| {
            let figure = path.0.get(stage.key())?;
            Some(format!("{} {}", stage.key(), figure.p50_us))
        })
        .collect();
    let rest = wakeup.saturating_sub(generator + server);
    let path = match result.link_level {
        Some(_) => "the emulated network",
        None => "loopback",
    };
    say!(out,
        "wake-up p50 {wakeup} us = generator {generator} us + server {server} us ({}) + {path} and device ~{rest} us",
        stages.join(", ")
    );
}

/// The server's wakes for nothing, when it made any: in all, per device-hour, by kind.
fn write_empty_wakes(out: &mut String, result: &RunResult, cost: &DeviceHourCost) {
    let counters = &result.fleet.counters;
    let count: u64 = counters.empty_wakes.values().sum();
    if count == 0 {
        return;
    }
    let kinds: Vec<String> = cost
        .empty_wakes_by_kind
        .iter()
        .map(|(kind, rate)| format!("{kind} {rate:.1}"))
        .collect();
    say!(out,
        "empty wakes: {count} Pings answered with changes that brought nothing ({:.1} per device-hour; by kind {}) of {} Ping status 2",
        cost.empty_wakes,
        kinds.join(", "),
        counters.ping_status.get("2").copied().unwrap_or(0)
    );
}

/// Where one side's user space per parked connection goes: its live heap by part, and
/// what RSS holds besides (the allocator's own and what C libraries allocate).
fn heap_breakdown(
    rss: Option<f64>,
    heap: Option<f64>,
    parts: &std::collections::BTreeMap<String, f64>,
) -> Option<String> {
    let heap = heap?;
    let mut shown: Vec<(&String, &f64)> = parts.iter().collect();
    shown.sort_by(|a, b| b.1.total_cmp(a.1));
    let parts: Vec<String> = shown
        .iter()
        .map(|(part, bytes)| format!("{part} {bytes:.0}"))
        .collect();
    let besides = rss.map_or(String::new(), |rss| match rss >= heap {
        true => format!(
            " + {:.0} bytes beside the heap (allocator, C libraries)",
            rss - heap
        ),
        // Pages of large allocations that were never written are not resident.
        false => format!(
            "; RSS {:.0} bytes below it (allocated pages never touched)",
            heap - rss
        ),
    });
    Some(format!(
        "heap {heap:.0} bytes ({}){besides}",
        parts.join(", ")
    ))
}

/// Fewer parked connections than this, and a figure per connection is mostly the
/// processes' fixed growth (pages first touched, buffers, the allocator's arenas)
/// spread over them: the cost of one more connection is the slope across fleet sizes.
const SLOPE_MIN_DEVICES: u64 = 10_000;

/// What a figure per connection at `parked` devices is, when the fleet is too small
/// for it to be the cost of one more.
fn small_fleet_caveat(parked: u64) -> Option<String> {
    (parked < SLOPE_MIN_DEVICES).then(|| {
        format!(
            "at {parked} devices these are mostly fixed cost spread over few connections, \
             not what one more connection costs: that slope needs {SLOPE_MIN_DEVICES} \
             devices or more (pingfleet run capacity-search fits it across fleet sizes)"
        )
    })
}

fn write_memory(out: &mut String, result: &RunResult) {
    let memory = &result.memory;
    let figure =
        |value: Option<f64>| value.map_or("not measured".to_owned(), |v| format!("{v:.0} bytes"));
    let sockets = match memory.sockets_per_device {
        1 => "the device's socket only; the server is elsewhere".to_owned(),
        2 => "both loopback ends".to_owned(),
        n => format!("all {n} sockets of a device's path"),
    };
    say!(out,
        "memory per parked connection{}: server user space {}, device user space {}, kernel slab {} ({sockets})",
        memory.parked_at_plateau.map_or(String::new(), |parked| format!(" at {parked} devices")),
        figure(memory.server_bytes_per_parked),
        figure(memory.device_bytes_per_device),
        figure(memory.kernel_slab_bytes_per_connection),
    );
    if let Some(caveat) = memory.parked_at_plateau.and_then(small_fleet_caveat) {
        say!(out, "  {caveat}");
    }
    if result.self_check.cause == Cause::HostStalled
        && memory.kernel_slab_bytes_per_connection.is_some()
    {
        say!(
            out,
            "  the kernel slab is the whole machine's, and work not ours ran beside this run \
             (see the self-check): its figure may hold that work's slab too"
        );
    }
    if let Some(why) = &memory.not_measured_why {
        say!(out, "  not measured: {why}");
    }
    for (side, rss, heap, parts) in [
        (
            "server",
            memory.server_bytes_per_parked,
            memory.server_heap_bytes_per_parked,
            &memory.server_heap_parts_per_parked,
        ),
        (
            "devices",
            memory.device_bytes_per_device,
            memory.device_heap_bytes_per_device,
            &memory.device_heap_parts_per_device,
        ),
    ] {
        if let Some(line) = heap_breakdown(rss, heap, parts) {
            say!(out, "  {side}: {line}");
        }
    }
    if let Some(target) = &result.target {
        let counters = &result.fleet.counters;
        say!(out,
            "external server {target}: server figures from {}; it said MS-Server-ActiveSync {:?}, versions {:?}; devices settled on {:?}",
            result.server_measured_from.as_deref().unwrap_or("nothing"),
            counters.server_versions,
            counters.advertised_versions,
            counters.negotiated_versions,
        );
    }
}

fn write_self_check(out: &mut String, result: &RunResult) {
    let check = &result.self_check;
    let cores = |value: Option<f64>| value.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
    say!(out, "self-check: {}", check.verdict());
    say!(out,
        "  busiest worker {} of a core, busiest second {} of {} cores (ours {}), {} s of hold sampled",
        cores(check.busiest_worker_cores),
        cores(check.busiest_second_cores),
        check.machine_cores,
        cores(check.our_busiest_second_cores),
        check.hold_seconds_sampled
    );
    for reason in &check.reasons {
        say!(out, "  - {reason}");
    }
    if let Some(precision) = &check.injector_precision {
        say!(out, "  {precision}");
    }
}

/// The engines side by side, printed.
pub fn print_comparison(comparison: &EngineComparison) {
    let mut out = String::new();
    let out = &mut out;
    let figure = |value: Option<f64>, unit: &str| {
        value.map_or("n/a".to_owned(), |value| format!("{value:.0} {unit}"))
    };
    say!(out);
    say!(
        out,
        "{:<8} {:>24} {:>18} {:>18}",
        "engine",
        "server bytes per parked",
        "wake-up p99",
        "device bytes/device"
    );
    for side in [&comparison.lean, &comparison.hyper] {
        say!(
            out,
            "{:<8} {:>24} {:>18} {:>18}",
            side.engine
                .map_or("external", crate::server::state::Engine::name),
            figure(side.server_bytes_per_parked, "B"),
            figure(side.wakeup_p99_us, "us"),
            figure(side.device_bytes_per_device, "B")
        );
    }
    let ratio = |value: Option<f64>| value.map_or("n/a".to_owned(), |value| format!("{value:.2}x"));
    say!(
        out,
        "hyper / lean: memory per parked Ping {}, wake-up p99 {}",
        ratio(comparison.memory_ratio),
        ratio(comparison.wakeup_p99_ratio)
    );
    print!("{out}");
}

#[cfg(test)]
mod tests {
    use super::{
        heap_breakdown, radio_line, small_fleet_caveat, summary_text, Cause, DeviceHourCost, Path,
    };

    fn cost(radio_active_s: f64) -> DeviceHourCost {
        serde_json::from_value(serde_json::json!({
            "requests": 10.0, "ping_requests": 5.0, "bytes": 1000.0, "connections": 1.0,
            "tls_handshakes": 0.0, "radio": "lte", "battery_wh": 11.1,
            "radio_active_s": radio_active_s, "radio_joules": 50.0, "data_sessions": 2.0,
            "battery_share_per_day": 0.03
        }))
        .expect("a cost")
    }

    #[test]
    fn the_radio_is_said_only_where_hold_and_mail_rate_make_it_a_phones() {
        let short = radio_line(&cost(3600.0), 5.0, None);
        assert!(
            short.starts_with("radio: not meaningful for a hold of 5 s"),
            "{short}"
        );
        assert!(!short.contains('%'), "no battery share beside it: {short}");
        let busy = radio_line(&cost(3500.0), 7_200.0, None);
        assert!(
            busy.starts_with("radio: not meaningful at this mail rate"),
            "{busy}"
        );
        let mail = Some(((700_000, 1_600_000), (1_000, 3_000)));
        let phone = radio_line(&cost(300.0), 7_200.0, mail);
        assert!(
            phone.starts_with("radio (lte model, driven by the devices' own traffic; modelled, not measured) per device-hour: 300 s up"),
            "{phone}"
        );
        assert!(
            phone.contains("3.00% of a 11.1 Wh battery a day"),
            "{phone}"
        );
        assert!(
            phone.ends_with(
                "; mail on device with the radio's paging and promotion (modelled) p50 \
                 0.700 s p99 1.600 s, measured without them p50 0.001 s p99 0.003 s"
            ),
            "{phone}"
        );
    }

    #[test]
    fn memory_at_a_small_fleet_is_said_to_be_mostly_fixed_cost() {
        let small = small_fleet_caveat(200).expect("200 devices is small");
        assert!(
            small.starts_with("at 200 devices these are mostly fixed cost"),
            "{small}"
        );
        assert!(small.contains("capacity-search"), "{small}");
        assert_eq!(small_fleet_caveat(100_000), None);
    }

    #[test]
    fn a_kernel_slab_read_beside_work_not_ours_says_so() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/smoke.json");
        let Ok(crate::results::Document::Run(mut result)) = crate::results::read(&path) else {
            panic!("a run's result");
        };
        let caveat = "the kernel slab is the whole machine's";
        assert_eq!(result.self_check.cause, Cause::Clear);
        assert!(!summary_text(&result, &path).contains(caveat));
        result.self_check.cause = Cause::HostStalled;
        assert!(summary_text(&result, &path).contains(caveat));
    }

    #[test]
    fn the_heap_line_gives_its_parts_and_what_rss_holds_beside_or_below_it() {
        let parts = [("tls".to_owned(), 300.0), ("devices".to_owned(), 1500.0)].into();
        assert_eq!(
            heap_breakdown(Some(2300.0), Some(1800.0), &parts).unwrap(),
            "heap 1800 bytes (devices 1500, tls 300) + 500 bytes beside the heap \
             (allocator, C libraries)"
        );
        assert_eq!(
            heap_breakdown(Some(1500.0), Some(1800.0), &parts).unwrap(),
            "heap 1800 bytes (devices 1500, tls 300); RSS 300 bytes below it (allocated \
             pages never touched)"
        );
        assert_eq!(heap_breakdown(Some(1500.0), None, &parts), None);
    }
}
