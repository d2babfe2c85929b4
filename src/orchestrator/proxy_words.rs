//! The reverse proxy in words: the lines a summary prints of a run's `proxy` (which
//! proxy and whether it is the release the defaults were checked with, the timeout
//! that cuts a parked Ping, every directive and where its value came from, the memory
//! a parked connection costs it, and a reload).

use crate::proxy::config::{DirectiveSource, ProxyTls};
use crate::results::proxy::{ProcessMemory, ProxyFigures, ReloadFigures};
use crate::units::bytes;

/// Below this many parked Pings a proxy's growth is mostly its fixed cost.
const FEW_PARKED: u64 = 10_000;

/// The summary's lines of the proxies.
/// `time_scale`: the run's compressed time (the directives are as the proxy ran them).
pub(crate) fn lines(proxy: &ProxyFigures, time_scale: f64) -> Vec<String> {
    let mut lines = vec![
        identity_line(proxy),
        directives_line(proxy, time_scale),
        memory_line(proxy),
    ];
    lines.extend(proxy.reload.as_ref().map(reload_line));
    lines
}

/// Which proxy, its version against the release checked, where TLS ends, and the cut.
fn identity_line(proxy: &ProxyFigures) -> String {
    let checked = match proxy.as_expected() {
        true => format!(
            "the release pingfleet was checked with, {}",
            proxy.expected_release
        ),
        false => format!(
            "NOT the release pingfleet was checked with ({}): its defaults may differ from \
             those listed",
            proxy.expected_release
        ),
    };
    let tls = match proxy.tls {
        ProxyTls::Terminate => "TLS terminated at the proxy, plain HTTP to the server",
        ProxyTls::Passthrough => "TLS passed through to the server",
    };
    let cut = match proxy.cut_after_s {
        Some(seconds) => format!(
            "a parked Ping is cut by its {} after {seconds:.0} s",
            proxy.cut_by
        ),
        None => format!("nothing cuts a parked Ping ({} unset)", proxy.cut_by),
    };
    let own = proxy.own_config.as_ref().map_or(String::new(), |path| {
        format!(", configuration {path} (the user's own)")
    });
    let before = match proxy.proxies {
        1 => "before the server".to_owned(),
        many => format!("one before each of {many} partitions"),
    };
    format!(
        "proxy: {} {} ({checked}) {before}, {tls}{own}; {cut}",
        proxy.kind.title(),
        proxy.version,
    )
}

/// Every directive, its value and where it came from.
fn directives_line(proxy: &ProxyFigures, time_scale: f64) -> String {
    let said: Vec<String> = proxy
        .directives
        .iter()
        .map(|directive| {
            let source = match directive.source {
                DirectiveSource::Default => "default",
                DirectiveSource::Scenario => "scenario",
                DirectiveSource::Sized => "set by the run",
                DirectiveSource::Unset => return format!("{} unset", directive.name),
            };
            format!("{} {} ({source})", directive.name, directive.value)
        })
        .collect();
    let compressed = match time_scale == 1.0 {
        true => String::new(),
        false => format!(" (as the proxy ran them: time compressed {time_scale}x)"),
    };
    format!("proxy directives{compressed}: {}", said.join(", "))
}

/// The memory a parked connection costs the proxy's processes.
fn memory_line(proxy: &ProxyFigures) -> String {
    let memory = &proxy.memory;
    match (memory.at_plateau, memory.pss_per_parked_connection_bytes) {
        (Some(at_plateau), Some(pss)) => format!(
            "proxy memory (its processes, apart from the server's): PSS {} before any device, \
             {} with {} parked: {} per parked connection (RSS {}){}",
            bytes(memory.before.pss_bytes as f64),
            bytes(at_plateau.pss_bytes as f64),
            memory.parked,
            bytes(pss),
            memory
                .rss_per_parked_connection_bytes
                .map_or("not measured".to_owned(), bytes),
            match memory.parked < FEW_PARKED {
                true => "; at this few devices mostly the proxy's fixed cost",
                false => "",
            }
        ),
        _ => format!(
            "proxy memory: PSS {} before any device; per parked connection not measured (the \
             fleet never parked)",
            bytes(memory.before.pss_bytes as f64)
        ),
    }
}

/// How long the old workers stayed after the reload, and the memory of both.
fn reload_line(reload: &ReloadFigures) -> String {
    let bound = match reload.bound.value.is_empty() {
        true => format!(
            "{} unset: nothing bounds the old workers",
            reload.bound.name
        ),
        false => format!("{} {}", reload.bound.name, reload.bound.value),
    };
    let stay = match reload.old_gone_after_s {
        Some(seconds) => format!("old workers gone {seconds:.1} s after it"),
        None => format!(
            "{} old worker processes still there when the run ended",
            reload.old_at_end
        ),
    };
    format!(
        "proxy reload at {:.1} s ({bound}): {stay}; PSS {} before, peak {}",
        reload.at_s,
        pss(reload.before),
        pss(reload.peak)
    )
}

fn pss(memory: ProcessMemory) -> String {
    format!(
        "{} in {} processes",
        bytes(memory.pss_bytes as f64),
        memory.processes
    )
}
