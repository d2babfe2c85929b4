//! The report's view of a run's reverse proxy (its result's `proxy`): which proxy and
//! release, where TLS ended and which timeout cuts a parked Ping; every directive and
//! where its value came from; the proxies' memory over the run, by generation, with a
//! reload marked; the parked Pings the path cut, by how (the result's `network`); and
//! the reload's bound, how long the old workers stayed and what both generations held.
//! A run without `proxy` has no such view. The figures are `crate::results::proxy`'s;
//! this module only lays them out.

use std::time::Duration;

use super::page::{escape, named, table, with_unit, Figure, Section};
use super::plots::{self, LineChart, Series, Style};
use super::run_views::Labelled;
use super::ticks::Unit;
use crate::proxy::config::{Directive, DirectiveSource, ProxyTls};
use crate::results::network::NetworkFigures;
use crate::results::proxy::{ProcessMemory, ProxyFigures, ProxyMemoryFigures, ReloadFigures};

/// The reverse proxy of a run; `None` when the run had none.
pub(crate) fn proxy(run: &Labelled<'_>) -> anyhow::Result<Option<Section>> {
    let Some(proxy) = &run.result.proxy else {
        return Ok(None);
    };
    let (and, reload) = match proxy.reload {
        Some(_) => ("", ", and a reload with the fleet parked"),
        None => ("and ", ""),
    };
    let what = format!(
        "The real reverse proxy the devices reached each server partition through: how it was set, its processes' memory over the run (apart from the server's), {and}the parked Pings the path cut{reload}."
    );
    let title = format!("Reverse proxy: {} {}", proxy.kind.title(), proxy.version);
    let mut section = Section::new("proxy", &title, &what);
    section.figures = figures(proxy);
    section.body = format!(
        "{}<h3>Directives: each value and where it came from</h3>{}\
         <h3>Memory of the proxies' processes</h3>{}{}\
         <h3>Parked Pings the path cut</h3>{}",
        heading(proxy),
        directives_table(&proxy.directives),
        memory_plot(proxy)?,
        memory_words(&proxy.memory, run.result.time_scale),
        cut_pings(run.result.network.as_ref()),
    );
    if let Some(reload) = &proxy.reload {
        section.body.push_str("<h3>The reload</h3>");
        section.body.push_str(&reload_words(reload));
    }
    Ok(Some(section))
}

/// A span in seconds in words: `6.5 s` under a minute, `1h 5m` from one up.
fn seconds(value: f64) -> String {
    match value {
        value if value >= 60.0 => {
            humantime::format_duration(Duration::from_secs(value.round() as u64)).to_string()
        }
        value => Unit::Seconds.tick(value),
    }
}

/// What the proxy was: its release against the one pingfleet was checked with, where
/// TLS ended, and the timeout that cuts a parked Ping.
fn heading(proxy: &ProxyFigures) -> String {
    let (title, version, expected) = (
        proxy.kind.title(),
        escape(&proxy.version),
        escape(&proxy.expected_release),
    );
    let release = match proxy.as_expected() {
        true => format!(
            "<p data-release=\"expected\">{title} {version}, the release pingfleet was checked with ({expected}).</p>"
        ),
        false => format!(
            "<p class=\"fail\" data-release=\"unexpected\">{title} {version} is not the release pingfleet was checked with ({expected}): the defaults below are {expected}'s, and this release's may differ.</p>"
        ),
    };
    let tls = match proxy.tls {
        ProxyTls::Terminate => "TLS ends at the proxy: devices speak TLS to it, it speaks plain HTTP to the server.",
        ProxyTls::Passthrough => "TLS passes through the proxy: the server holds the certificate, and only the proxy's idle timeouts apply.",
    };
    let cut = match proxy.cut_after_s {
        Some(after) => format!(
            "A parked Ping the server has not answered is cut by <code>{}</code> after {} (real-world time).",
            escape(&proxy.cut_by),
            named("proxy.cut_after_s", after, &seconds(after)),
        ),
        None => format!(
            "Nothing cuts a parked Ping: <code>{}</code> is unset.",
            escape(&proxy.cut_by)
        ),
    };
    let own = proxy.own_config.as_deref().map_or_else(String::new, |path| {
        format!(
            " Its configuration was the user's own ({}); the table lists what pingfleet would have set.",
            escape(path)
        )
    });
    format!(
        "{release}<p>{} before the server partitions. {tls} {cut}{own}</p>",
        match proxy.proxies {
            1 => "One proxy".to_owned(),
            proxies => format!("{proxies} proxies, one"),
        }
    )
}

/// The key figures: memory per parked connection and the cutting timeout.
fn figures(proxy: &ProxyFigures) -> Vec<Figure> {
    let memory = &proxy.memory;
    let per = [
        (
            "proxy.pss_per_parked_connection_bytes",
            "proxy PSS per parked connection",
            memory.pss_per_parked_connection_bytes,
        ),
        (
            "proxy.rss_per_parked_connection_bytes",
            "proxy RSS per parked connection",
            memory.rss_per_parked_connection_bytes,
        ),
    ];
    per.into_iter()
        .filter_map(|(key, words, value)| Some(Figure::new(key, words, value?, "B")))
        .collect()
}

/// Where a directive's value came from, in words.
fn source_words(source: DirectiveSource) -> &'static str {
    match source {
        DirectiveSource::Default => "the proxy's default",
        DirectiveSource::Scenario => "the scenario",
        DirectiveSource::Sized => "set by the run",
        DirectiveSource::Unset => "unset",
    }
}

fn directives_table(directives: &[Directive]) -> String {
    let rows: Vec<Vec<String>> = directives
        .iter()
        .map(|directive| {
            let value = match directive.value.as_str() {
                "" => "unset".to_owned(),
                value => format!("<code>{}</code>", escape(value)),
            };
            vec![
                format!("<code>{}</code>", escape(&directive.name)),
                value,
                source_words(directive.source).to_owned(),
            ]
        })
        .collect();
    table(&["directive", "value", "from"], &rows)
}

/// The name of generation `index`'s line.
fn generation_name(index: usize, reloaded: bool) -> String {
    match (index, reloaded) {
        (0, false) => "workers".to_owned(),
        (0, true) => "workers before the reload".to_owned(),
        (1, true) => "workers after the reload".to_owned(),
        (index, _) => format!("workers of generation {index}"),
    }
}

/// The proxies' proportional memory second by second: the masters, and the workers of
/// each generation; the reload marked.
fn memory_plot(proxy: &ProxyFigures) -> anyhow::Result<String> {
    if proxy.series.len() < 2 {
        return Ok("<p class=\"muted\">Too few readings to draw.</p>".to_owned());
    }
    let pss = |memory: &ProcessMemory| memory.pss_bytes as f64;
    let generations = proxy
        .series
        .iter()
        .map(|point| point.generations.len())
        .max()
        .unwrap_or(0);
    let mut series = vec![Series::new(
        "masters",
        Style::Line,
        proxy
            .series
            .iter()
            .map(|point| (point.t_s, pss(&point.masters)))
            .collect(),
    )];
    for index in 0..generations {
        let points = proxy.series.iter().filter_map(|point| {
            let generation = point.generations.get(index)?;
            Some((point.t_s, pss(generation)))
        });
        // Purple, then green: never the orange beside the reload mark's red.
        let colour = [3, 2][index % 2];
        series.push(
            Series::new(
                generation_name(index, proxy.reload.is_some()),
                Style::Line,
                points.collect(),
            )
            .in_colour(colour),
        );
    }
    let marks: Vec<(f64, String)> = proxy
        .reload
        .iter()
        .map(|reload| (reload.at_s, "reload".to_owned()))
        .collect();
    let mut chart = LineChart::new(
        ("since the run started", Unit::Seconds),
        ("proportional memory (PSS)", Unit::Bytes),
        &series,
    );
    chart.marks = &marks;
    plots::lines(&chart)
}

/// The plateau's parked Pings and what each cost the proxies' processes; with the
/// run's time compressed, which clock the plot's is.
fn memory_words(memory: &ProxyMemoryFigures, time_scale: f64) -> String {
    let clock = match time_scale {
        1.0 => String::new(),
        scale => format!(
            "<p class=\"muted\">The plot's seconds are the run's own, its time compressed {}x; spans in words are real-world.</p>",
            Unit::Count.tick(scale)
        ),
    };
    let per =
        |value: Option<f64>| value.map_or_else(|| "not measured".to_owned(), |v| with_unit(v, "B"));
    let before = format!(
        "{} PSS, {} RSS in {} processes",
        with_unit(memory.before.pss_bytes as f64, "B"),
        with_unit(memory.before.rss_bytes as f64, "B"),
        memory.before.processes
    );
    format!(
        "{clock}<p>Before any device: {before}. At the plateau, with {} Pings parked, each parked connection cost the proxies' processes {} PSS ({} RSS); its kernel sockets are the kernel's figure.</p>",
        named("proxy.memory.parked", memory.parked as f64, &with_unit(memory.parked as f64, "")),
        per(memory.pss_per_parked_connection_bytes),
        per(memory.rss_per_parked_connection_bytes),
    )
}

/// The parked Pings that died, by how the device found out, and how the mail ended.
fn cut_pings(network: Option<&NetworkFigures>) -> String {
    let Some(network) = network else {
        return "<p class=\"muted\">The devices' account of the path was not measured.</p>"
            .to_owned();
    };
    let count = |key: &str, value: u64| {
        named(
            &format!("proxy.{key}"),
            value as f64,
            &with_unit(value as f64, ""),
        )
    };
    let rows = vec![
        vec![
            "a 504 from the proxy (its read timeout)".to_owned(),
            count("pings_died_by_gateway", network.pings_died_by_gateway),
        ],
        vec![
            "closed by the other end (an old worker leaving)".to_owned(),
            count("pings_died_by_close", network.pings_died_by_close),
        ],
        vec![
            "a reset".to_owned(),
            count("pings_died_by_reset", network.pings_died_by_reset),
        ],
        vec![
            "the device's deadline (nothing came back)".to_owned(),
            count("pings_died_by_deadline", network.pings_died_by_deadline),
        ],
    ];
    let mail = format!(
        "<p>Mail: {} sent, {} on time, {} late (delivered through a Ping sent after one died), {} lost.</p>",
        count("mail_sent", network.sent),
        count("mail_on_time", network.on_time),
        count("mail_late", network.late),
        count("mail_lost", network.lost),
    );
    format!("{}{mail}", table(&["Pings that died of", "count"], &rows))
}

/// Memory of a set of processes in words.
fn memory_text(memory: &ProcessMemory) -> String {
    format!(
        "{} PSS ({} RSS) in {} processes",
        with_unit(memory.pss_bytes as f64, "B"),
        with_unit(memory.rss_bytes as f64, "B"),
        memory.processes
    )
}

/// The reload: what bounds the old workers, how long they stayed, both generations'
/// memory.
fn reload_words(reload: &ReloadFigures) -> String {
    let bound = match reload.bound.value.as_str() {
        "" => format!(
            "<code>{}</code> unset: nothing bounds the old workers",
            escape(&reload.bound.name)
        ),
        value => format!(
            "<code>{}</code> {} ({})",
            escape(&reload.bound.name),
            escape(value),
            source_words(reload.bound.source)
        ),
    };
    let stayed = match reload.old_gone_after_s {
        Some(after) => format!(
            "The old generation was gone {} after the reload (real-world time).",
            named("proxy.reload.old_gone_after_s", after, &seconds(after))
        ),
        None => format!(
            "The old generation was still there when the run ended: {} processes.",
            named(
                "proxy.reload.old_at_end",
                f64::from(reload.old_at_end),
                &reload.old_at_end.to_string()
            )
        ),
    };
    format!(
        "<p>Reloaded {} into the run (the plot's clock), with the fleet parked. Its bound: {bound}. {stayed}</p>\
         <p>Every proxy process just before the reload: {}; the most after it: {}.</p>",
        named("proxy.reload.at_s", reload.at_s, &seconds(reload.at_s)),
        named(
            "proxy.reload.before_pss_bytes",
            reload.before.pss_bytes as f64,
            &memory_text(&reload.before)
        ),
        named(
            "proxy.reload.peak_pss_bytes",
            reload.peak.pss_bytes as f64,
            &memory_text(&reload.peak)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::stats::Tally;
    use crate::measure::latency::LatencySummary;
    use crate::proxy::config::ProxyKind;
    use crate::results::proxy::ProxyPoint;
    use crate::results::run::RunResult;
    use crate::results::Document;

    fn smoke() -> RunResult {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/smoke.json");
        let Ok(Document::Run(result)) = crate::results::read(&path) else {
            panic!("a run's result");
        };
        *result
    }

    fn memory(pss_mib: u64, processes: u32) -> ProcessMemory {
        ProcessMemory {
            pss_bytes: pss_mib << 20,
            rss_bytes: (pss_mib + 2) << 20,
            processes,
        }
    }

    fn directive(name: &str, value: &str, source: DirectiveSource) -> Directive {
        Directive {
            name: name.to_owned(),
            value: value.to_owned(),
            source,
        }
    }

    /// Twelve seconds of two proxies: the old generation alone, then (after a reload
    /// at 6.5 s, when `reload_at` is given) both until the old one leaves at 10 s.
    fn nginx(reload_at: Option<f64>, bound: Directive) -> ProxyFigures {
        let series: Vec<ProxyPoint> = (0..=12u32)
            .map(|second| {
                let t_s = f64::from(second);
                let reloaded = reload_at.is_some_and(|at| t_s > at);
                let old = match (reloaded, second) {
                    (true, 10..) => memory(0, 0),
                    _ => memory(3 + u64::from(second.min(6)) * 7, 2),
                };
                let new = reloaded.then(|| memory(3 + u64::from(second - 6) * 5, 2));
                ProxyPoint {
                    t_s,
                    masters: memory(1, 2),
                    generations: std::iter::once(old).chain(new).collect(),
                }
            })
            .collect();
        let reload = reload_at.and_then(|at| ReloadFigures::of(&series, at, bound, 60.0));
        ProxyFigures {
            kind: ProxyKind::Nginx,
            version: "1.22.1".into(),
            expected_release: "1.22".into(),
            tls: ProxyTls::Terminate,
            proxies: 2,
            own_config: None,
            directives: vec![
                directive("proxy_read_timeout", "65s", DirectiveSource::Scenario),
                directive("keepalive_timeout", "75s", DirectiveSource::Default),
                directive("worker_connections", "4160", DirectiveSource::Sized),
                directive("worker_shutdown_timeout", "", DirectiveSource::Unset),
            ],
            cut_by: "proxy_read_timeout".into(),
            cut_after_s: Some(3900.0),
            memory: ProxyMemoryFigures::of(series[0].total(), Some((series[6].total(), 2_011))),
            reload,
            series,
        }
    }

    fn network() -> NetworkFigures {
        NetworkFigures {
            firewall: None,
            sent: 4_127,
            on_time: 3_902,
            late: 219,
            lost: 6,
            accounting_closes: true,
            pings_died_by_deadline: 3,
            pings_died_by_reset: 5,
            pings_died_by_gateway: 1_931,
            pings_died_by_close: 487,
            unreachable: LatencySummary::default(),
            staleness: None,
            heartbeat_at_end: Tally::new(),
            heartbeat_settled: LatencySummary::default(),
            flush: None,
        }
    }

    /// The proxy's section of the page of `result`.
    fn section_of(result: RunResult) -> String {
        let html =
            super::super::page_of(&[("run".to_owned(), Document::Run(Box::new(result)))]).unwrap();
        let start = html
            .find("<section id=\"proxy\">")
            .expect("a proxy section");
        let end = start + html[start..].find("</section>").unwrap();
        html[start..end].to_owned()
    }

    /// The `data-value` of the element named `key`.
    fn value_of(html: &str, key: &str) -> Option<f64> {
        let marker = format!("data-figure=\"{key}\" data-value=\"");
        let start = html.find(&marker)? + marker.len();
        let end = start + html[start..].find('"')?;
        html[start..end].parse().ok()
    }

    #[test]
    fn a_proxy_with_a_reload_shows_its_directives_both_generations_and_the_reload() {
        let bound = directive("worker_shutdown_timeout", "30s", DirectiveSource::Scenario);
        let proxy = nginx(Some(6.5), bound);
        let mut result = smoke();
        (result.proxy, result.network) = (Some(proxy.clone()), Some(network()));
        result.time_scale = 60.0;
        let html = section_of(result);
        assert!(
            html.contains("<h2>Reverse proxy: nginx 1.22.1</h2>"),
            "{html}"
        );
        assert!(html.contains("data-release=\"expected\""));
        assert!(html.contains("the release pingfleet was checked with (1.22)"));
        assert!(html.contains("TLS ends at the proxy"));
        assert!(html.contains("cut by <code>proxy_read_timeout</code>"));
        assert!(
            html.contains(">1h 5m</span> (real-world time)"),
            "3900 s in words"
        );
        assert!(
            html.contains("time compressed 60x"),
            "which clock the plot's is"
        );
        assert_eq!(value_of(&html, "proxy.cut_after_s"), proxy.cut_after_s);
        for directive in &proxy.directives {
            assert!(html.contains(&format!("<td><code>{}</code></td>", directive.name)));
        }
        for from in [
            "the scenario",
            "the proxy's default",
            "set by the run",
            "unset",
        ] {
            assert!(html.contains(&format!("<td>{from}</td>")), "{from}");
        }
        // One plot: the masters and two generations, the reload a red mark.
        assert_eq!(html.matches("<svg").count(), 1);
        for line in [
            "masters",
            "workers before the reload",
            "workers after the reload",
        ] {
            assert!(html.contains(line), "{line}");
        }
        assert!(html.contains("stroke=\"#C80000\""), "the reload's mark");
        let memory = &proxy.memory;
        assert_eq!(
            value_of(&html, "proxy.pss_per_parked_connection_bytes"),
            memory.pss_per_parked_connection_bytes
        );
        assert_eq!(
            value_of(&html, "proxy.rss_per_parked_connection_bytes"),
            memory.rss_per_parked_connection_bytes
        );
        assert_eq!(
            value_of(&html, "proxy.memory.parked"),
            Some(memory.parked as f64)
        );
        let network = network();
        for (key, value) in [
            ("pings_died_by_gateway", network.pings_died_by_gateway),
            ("pings_died_by_close", network.pings_died_by_close),
            ("pings_died_by_reset", network.pings_died_by_reset),
            ("pings_died_by_deadline", network.pings_died_by_deadline),
            ("mail_on_time", network.on_time),
            ("mail_late", network.late),
            ("mail_lost", network.lost),
        ] {
            assert_eq!(
                value_of(&html, &format!("proxy.{key}")),
                Some(value as f64),
                "{key}"
            );
        }
        let reload = proxy.reload.unwrap();
        assert!(html.contains("<code>worker_shutdown_timeout</code> 30s (the scenario)"));
        assert_eq!(
            value_of(&html, "proxy.reload.old_gone_after_s"),
            reload.old_gone_after_s
        );
        assert_eq!(
            value_of(&html, "proxy.reload.peak_pss_bytes"),
            Some(reload.peak.pss_bytes as f64)
        );
        assert_eq!(
            value_of(&html, "proxy.reload.before_pss_bytes"),
            Some(reload.before.pss_bytes as f64)
        );
    }

    #[test]
    fn a_proxy_without_a_reload_says_nothing_of_reloads() {
        let mut result = smoke();
        let bound = directive("worker_shutdown_timeout", "", DirectiveSource::Unset);
        result.proxy = Some(nginx(None, bound));
        let html = section_of(result);
        assert!(!html.to_lowercase().contains("reload"), "{html}");
        assert!(!html.contains("compressed"), "a run in real time");
        assert!(!html.contains("#C80000"), "no mark");
        assert!(html.contains("masters") && html.contains("workers"));
        assert!(
            html.contains("not measured"),
            "no account of the devices' path"
        );
    }

    #[test]
    fn a_release_other_than_the_one_checked_is_said() {
        let mut proxy = nginx(None, directive("x", "", DirectiveSource::Unset));
        proxy.version = "1.24.0".into();
        assert!(!proxy.as_expected());
        let mut result = smoke();
        result.proxy = Some(proxy);
        let html = section_of(result);
        assert!(html.contains("data-release=\"unexpected\""));
        assert!(html.contains("nginx 1.24.0 is not the release pingfleet was checked with (1.22)"));
    }

    #[test]
    fn an_unbounded_reload_whose_old_workers_outlive_the_run_says_both() {
        let bound = directive("worker_shutdown_timeout", "", DirectiveSource::Unset);
        let mut proxy = nginx(Some(6.5), bound);
        proxy.series.truncate(9);
        let reload = ReloadFigures::of(&proxy.series, 6.5, proxy.reload.unwrap().bound, 60.0);
        proxy.reload = reload;
        proxy.cut_after_s = None;
        let mut result = smoke();
        result.proxy = Some(proxy.clone());
        let html = section_of(result);
        assert!(html.contains(
            "<code>worker_shutdown_timeout</code> unset: nothing bounds the old workers"
        ));
        assert!(html.contains("still there when the run ended"));
        let old = proxy.reload.unwrap().old_at_end;
        assert!(old > 0);
        assert_eq!(
            value_of(&html, "proxy.reload.old_at_end"),
            Some(f64::from(old))
        );
        assert!(html.contains("Nothing cuts a parked Ping"));
    }

    #[test]
    fn a_run_without_a_proxy_has_no_such_view() {
        let result = smoke();
        assert!(result.proxy.is_none(), "the example had no proxy");
        let html =
            super::super::page_of(&[("run".to_owned(), Document::Run(Box::new(result)))]).unwrap();
        assert!(!html.contains("id=\"proxy\"") && !html.contains("data-figure=\"proxy."));
    }
}
