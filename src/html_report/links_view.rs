//! The report's view of a run's emulated networks (its result's `links`): each
//! network's setting, what the link emulator counted on it (packets each way, what it
//! dropped and why), the round trip the devices' kernels measured beside the one set,
//! and what the emulator cost. Settings and measurements sit in separate tables and
//! say which they are. A run without `links` has no such view. The figures themselves
//! are `crate::results::links`'; this module only lays them out.

use super::bars;
use super::page::{escape, named, table, with_unit, Figure, Section};
use super::plots::{Series, Style};
use super::run_views::Labelled;
use super::ticks::{grouped, Unit};
use crate::link::profile::NetworkProfile;
use crate::measure::latency::LatencySummary;
use crate::results::links::{LinkFigures, NetworkFigure};

/// The emulated networks of a run; `None` when the run had none.
pub(crate) fn links(run: &Labelled<'_>) -> anyhow::Result<Option<Section>> {
    let Some(links) = &run.result.links else {
        return Ok(None);
    };
    let mut section = Section::new(
        "links",
        "Emulated networks",
        "Each phone connection crossed a link with its network's delay, jitter, loss, rates and outages. The first table is what each network was set to; the others are what the run measured: packets the link emulator counted and dropped, and the round trip the devices' own kernels measured (TCP_INFO).",
    );
    section.figures = figures(links);
    section.body = format!(
        "<h3>Set: each network's profile</h3>{}\
         <h3>Measured: what each network carried and dropped</h3>{}{}\
         <h3>Round trip: set against measured</h3>{}",
        settings_table(&links.networks),
        counts_table(&links.networks),
        dropped_bars(&links.networks)?,
        round_trip_table(links),
    );
    Ok(Some(section))
}

/// The run-wide measured figures: the kernels' round trip, retransmissions, the
/// emulator's packets and cost.
fn figures(links: &LinkFigures) -> Vec<Figure> {
    let mut figures = Vec::new();
    if let Some(rtt) = &links.path_rtt {
        for (p, us) in [("p50", rtt.p50_us), ("p99", rtt.p99_us)] {
            figures.push(Figure::new(
                format!("links.path_rtt.{p}_ms"),
                format!("round trip measured {p}"),
                us as f64 / 1000.0,
                "ms",
            ));
        }
    }
    let optional = [
        (
            "links.rtt_p50_over_set",
            "its p50 over the round trip set",
            links.rtt_p50_over_set,
            "x",
        ),
        (
            "links.retransmits_per_device_hour",
            "TCP segments retransmitted per device-hour",
            links.retransmits_per_device_hour,
            "",
        ),
        (
            "links.emulator_cores_per_kpps",
            "emulator CPU per 1,000 packets a second, of a core",
            links.emulator_cores_per_kpps,
            "%",
        ),
    ];
    for (key, words, value, unit) in optional {
        if let Some(value) = value {
            figures.push(Figure::new(key, words, value, unit));
        }
    }
    figures.push(Figure::new(
        "links.packets",
        "packets through the emulator",
        links.packets as f64,
        "",
    ));
    figures.push(Figure::new(
        "links.peak_held",
        "most held at once",
        links.peak_held as f64,
        "",
    ));
    figures.push(Figure::new(
        "links.write_errors",
        "written back but refused by the kernel",
        links.write_errors as f64,
        "",
    ));
    figures
}

/// One row of a network's setting.
fn setting_row(name: &str, profile: &NetworkProfile) -> Vec<String> {
    let round_trip_ms = profile.round_trip().as_millis();
    let loss = profile.loss.fraction();
    let loss_words = match profile.loss_burst {
        burst if burst > 1.0 => format!("{} (bursts of {burst})", profile.loss),
        _ => profile.loss.to_string(),
    };
    let outages = match profile.outage_every {
        Some(every) => format!("{} every {every}", profile.outage_for),
        None => "none".to_owned(),
    };
    let [down, up] = profile.capacity_words();
    vec![
        escape(name),
        named(
            &format!("links.{name}.set.round_trip_ms"),
            round_trip_ms as f64,
            &format!("{round_trip_ms} ms"),
        ),
        format!("+-{} ms", profile.jitter.0.as_millis()),
        named(&format!("links.{name}.set.loss"), loss, &loss_words),
        escape(&down),
        escape(&up),
        escape(&outages),
        with_unit(profile.queue as f64, "B"),
    ]
}

fn settings_table(networks: &[NetworkFigure]) -> String {
    let rows: Vec<Vec<String>> = networks
        .iter()
        .map(|network| setting_row(&network.name, &network.profile))
        .collect();
    table(
        &[
            "network",
            "round trip",
            "jitter",
            "loss each way",
            "down",
            "up",
            "outages",
            "buffer each way",
        ],
        &rows,
    )
}

/// One row of what a network's links carried, as the emulator counted it.
fn counts_row(network: &NetworkFigure) -> Vec<String> {
    let counts = &network.counts;
    let key = |what: &str| format!("links.{}.{what}", network.name);
    let count = |what: &str, value: u64| named(&key(what), value as f64, &grouped(value as i64));
    let share = network.dropped_share();
    vec![
        escape(&network.name),
        count("links_opened", counts.links_opened),
        count("packets_up", counts.packets_up),
        count("packets_down", counts.packets_down),
        with_unit(counts.bytes_up as f64, "B"),
        with_unit(counts.bytes_down as f64, "B"),
        share.map_or_else(
            || "nothing given".to_owned(),
            |share| {
                let words = format!("{:.2}%", share * 100.0);
                named(&key("dropped_share"), share, &words)
            },
        ),
        count("dropped_loss", counts.dropped_loss),
        count("dropped_outage", counts.dropped_outage),
        count("dropped_queue", counts.dropped_queue),
    ]
}

fn counts_table(networks: &[NetworkFigure]) -> String {
    let rows: Vec<Vec<String>> = networks.iter().map(counts_row).collect();
    table(
        &[
            "network",
            "links opened",
            "packets up",
            "packets down",
            "bytes up",
            "bytes down",
            "dropped",
            "by loss",
            "by outage",
            "by full buffer",
        ],
        &rows,
    )
}

/// Each network's dropped packets over those it was given, stacked by cause.
fn dropped_bars(networks: &[NetworkFigure]) -> anyhow::Result<String> {
    let names: Vec<String> = networks
        .iter()
        .map(|network| network.name.clone())
        .collect();
    let part = |name: &str, dropped: fn(&NetworkFigure) -> u64| {
        let points = networks.iter().enumerate().map(|(bar, network)| {
            let given = network.counts.packets_up + network.counts.packets_down;
            let share = match given {
                0 => 0.0,
                given => dropped(network) as f64 / given as f64,
            };
            (bar as f64, share)
        });
        Series::new(name, Style::Line, points.collect())
    };
    let parts = [
        part("lost (the loss setting)", |n| n.counts.dropped_loss),
        part("in an outage", |n| n.counts.dropped_outage),
        part("a full buffer", |n| n.counts.dropped_queue),
    ];
    bars::stacked_bars(&names, &parts, ("packets dropped, measured", Unit::Share))
}

/// The round trip each network was set to beside what the devices' kernels measured:
/// their samples are not kept per network, so with several networks the measured row
/// is every network's together and no ratio to one setting is given.
fn round_trip_table(links: &LinkFigures) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let measured = |rtt: &LatencySummary| {
        [rtt.p50_us, rtt.p90_us, rtt.p99_us]
            .map(|us| crate::units::micros(us as f64))
            .to_vec()
    };
    let ratio = match (links.rtt_p50_over_set, links.networks.len()) {
        (Some(ratio), _) => format!("{ratio:.2}x"),
        (None, 2..) => "not given: several settings".to_owned(),
        (None, _) => "not measured".to_owned(),
    };
    match (&links.networks[..], &links.path_rtt) {
        ([only], Some(rtt)) => {
            let mut row = vec![
                escape(&only.name),
                format!("{} ms", only.profile.round_trip().as_millis()),
            ];
            row.extend(measured(rtt));
            row.push(ratio);
            rows.push(row);
        }
        (networks, rtt) => {
            for network in networks {
                let set = format!("{} ms", network.profile.round_trip().as_millis());
                let mut row = vec![escape(&network.name), set];
                row.extend(["".to_owned(), "".to_owned(), "".to_owned(), "".to_owned()]);
                rows.push(row);
            }
            let mut row = vec!["every network together".to_owned(), "".to_owned()];
            match rtt {
                Some(rtt) => row.extend(measured(rtt)),
                None => row.extend(["not measured".to_owned(), "".to_owned(), "".to_owned()]),
            }
            row.push(ratio);
            rows.push(row);
        }
    }
    let note = "<p class=\"muted\">Set: the profile's one-way delay twice. Measured: the smoothed round trip of each device's connection (TCP_INFO), read by the device at each response; it holds the path plus the kernels' delayed ACKs, so it reads above the setting when requests wait on the server (docs/network.md).</p>";
    format!(
        "{}{note}",
        table(
            &[
                "network",
                "set",
                "measured p50",
                "measured p90",
                "measured p99",
                "measured p50 over set"
            ],
            &rows
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::forward::RouteCounts;
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

    fn network(name: &str, profile: NetworkProfile, counts: RouteCounts) -> NetworkFigure {
        NetworkFigure {
            name: name.to_owned(),
            setting: profile.words(),
            profile,
            counts,
        }
    }

    /// Two networks with counts no other figure of the page shares.
    fn two_networks() -> LinkFigures {
        let lte = RouteCounts {
            packets_up: 17_203,
            packets_down: 20_091,
            bytes_up: 5_843_423,
            bytes_down: 5_276_262,
            dropped_loss: 171,
            dropped_outage: 7,
            dropped_queue: 3,
            links_opened: 979,
        };
        let umts = RouteCounts {
            packets_up: 7_231,
            packets_down: 8_533,
            dropped_loss: 115,
            dropped_outage: 2,
            links_opened: 411,
            ..RouteCounts::default()
        };
        LinkFigures {
            networks: vec![
                network("lte", NetworkProfile::lte(), lte),
                network("3g", NetworkProfile::shipped("3g").unwrap(), umts),
            ],
            path_rtt: Some(LatencySummary {
                count: 17_115,
                p50_us: 73_535,
                p90_us: 214_911,
                p99_us: 230_911,
                p999_us: 998_911,
                max_us: 2_129_919,
            }),
            rtt_p50_over_set: None,
            handshake_rtt: None,
            handshake_p50_over_set: None,
            retransmits_per_device_hour: Some(3.9),
            packets: 53_058,
            emulator_cores_per_kpps: Some(0.0537),
            emulator_cpu_seconds: Some(4.12),
            peak_held: 1_665,
            write_errors: 13,
        }
    }

    fn page_of(result: RunResult) -> String {
        super::super::page_of(&[("run".to_owned(), Document::Run(Box::new(result)))]).unwrap()
    }

    /// The `data-value` of the page's element named `key`.
    fn value_of(html: &str, key: &str) -> Option<f64> {
        let at = html.find(&format!("data-figure=\"{key}\" data-value=\""))?;
        let rest = &html[at..];
        let start = rest.find("data-value=\"")? + "data-value=\"".len();
        let end = start + rest[start..].find('"')?;
        rest[start..end].parse().ok()
    }

    #[test]
    fn each_networks_row_reads_the_results_own_figures() {
        let links = two_networks();
        let mut result = smoke();
        result.links = Some(links.clone());
        let html = page_of(result);
        assert!(html.contains("<section id=\"links\">"));
        for network in &links.networks {
            let counts = &network.counts;
            let value = |what: &str| value_of(&html, &format!("links.{}.{what}", network.name));
            assert_eq!(value("packets_up"), Some(counts.packets_up as f64));
            assert_eq!(value("packets_down"), Some(counts.packets_down as f64));
            assert_eq!(value("links_opened"), Some(counts.links_opened as f64));
            assert_eq!(value("dropped_loss"), Some(counts.dropped_loss as f64));
            assert_eq!(value("dropped_outage"), Some(counts.dropped_outage as f64));
            assert_eq!(value("dropped_queue"), Some(counts.dropped_queue as f64));
            assert_eq!(value("dropped_share"), network.dropped_share());
            let set = network.profile.round_trip().as_millis() as f64;
            assert_eq!(value("set.round_trip_ms"), Some(set));
            assert_eq!(value("set.loss"), Some(network.profile.loss.fraction()));
        }
        // lte: 181 of 37,294 packets dropped, in words as the row shows it.
        assert!(html.contains(">0.49%</span>"), "lte's dropped share");
        assert!(html.contains(">17,203</span>") && html.contains(">8,533</span>"));
        let rtt = links.path_rtt.unwrap();
        assert_eq!(
            value_of(&html, "links.path_rtt.p50_ms"),
            Some(rtt.p50_us as f64 / 1000.0)
        );
        assert_eq!(value_of(&html, "links.packets"), Some(53_058.0));
        assert_eq!(value_of(&html, "links.write_errors"), Some(13.0));
        assert_eq!(
            value_of(&html, "links.retransmits_per_device_hour"),
            Some(3.9)
        );
        // Two settings: the measured round trip is every network's, with no ratio.
        assert!(html.contains("every network together") && html.contains("not given: several"));
        assert!(html.contains("Set: each network") && html.contains("Measured: what each"));
    }

    #[test]
    fn one_network_reads_its_measured_round_trip_against_its_setting() {
        let mut links = two_networks();
        links.networks.truncate(1);
        links.rtt_p50_over_set = Some(1.05);
        let lte = &mut links.networks[0].profile;
        (lte.down, lte.down_trace) = (None, Some("traces/Verizon-LTE-short.down".into()));
        let mut result = smoke();
        result.links = Some(links);
        let html = page_of(result);
        assert_eq!(value_of(&html, "links.rtt_p50_over_set"), Some(1.05));
        assert!(html.contains("<td class=\"num\">1.05x</td>"));
        assert!(!html.contains("every network together"));
        assert!(html.contains(">trace traces/Verizon-LTE-short.down</td>"));
    }

    #[test]
    fn a_run_without_emulated_networks_has_no_such_view() {
        let result = smoke();
        assert!(result.links.is_none(), "the example ran over loopback");
        let html = page_of(result);
        assert!(!html.contains("id=\"links\"") && !html.contains("data-figure=\"links."));
    }
}
