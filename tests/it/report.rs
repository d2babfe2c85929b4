//! The HTML reports as a person sees them: the pages of a real smoke run, of a small
//! firewall sweep and of a comparison with a baseline are opened in headless Chromium;
//! every plot must have a size, nothing may be fetched or logged to the console, and the
//! key figures the browser shows must equal the result files'.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use pingfleet::fleet::histogram::HistogramName::WakeupLatency;
use pingfleet::results::run::RunResult;
use pingfleet::results::sweep::SweepResult;

/// Measures the page once loaded and writes what it found into the DOM, which
/// `--dump-dom` prints: each `<svg>`'s rendered size, each key figure's value, and the
/// resources the page fetched. Added to a copy of the page, for the test only: the
/// page itself has no script.
const MEASURE: &str = r#"<script>
window.addEventListener('load', () => {
  const plots = [...document.querySelectorAll('svg')].map(svg => {
    const box = svg.getBoundingClientRect();
    return [box.width, box.height];
  });
  const figures = {};
  document.querySelectorAll('[data-figure]').forEach(e => { figures[e.dataset.figure] = e.dataset.value; });
  const fetched = performance.getEntriesByType('resource').map(entry => entry.name);
  const out = document.createElement('pre');
  out.id = 'measured';
  out.textContent = JSON.stringify({ plots, figures, fetched });
  document.body.appendChild(out);
});
</script>"#;

fn chromium() -> &'static str {
    let found = Command::new("chromium").arg("--version").output();
    assert!(
        found.is_ok_and(|output| output.status.success()),
        "this test needs Chromium: apt-get install chromium (.ci/run installs it)"
    );
    "chromium"
}

const HEADLESS: [&str; 4] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
];

/// What the browser saw of a page.
#[derive(serde::Deserialize, Debug)]
pub(crate) struct Seen {
    plots: Vec<(f64, f64)>,
    figures: BTreeMap<String, String>,
    fetched: Vec<String>,
}

/// Opens `page` in headless Chromium and returns what it rendered; fails on any console
/// message.
pub(crate) fn open_in_browser(page: &Path) -> Seen {
    let html = std::fs::read_to_string(page).unwrap();
    assert!(!html.contains("<script"), "the page itself needs no script");
    let measured = page.with_extension("measured.html");
    std::fs::write(
        &measured,
        html.replace("</body>", &format!("{MEASURE}</body>")),
    )
    .unwrap();
    let output = Command::new(chromium())
        .args(HEADLESS)
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
        .arg(format!("file://{}", measured.display()))
        .output()
        .unwrap();
    let (dom, log) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "chromium failed: {log}");
    let console: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(":CONSOLE"))
        .collect();
    assert!(
        console.is_empty(),
        "{}: console said {console:?}",
        page.display()
    );
    let start = dom.find("<pre id=\"measured\">").expect("the page loaded") + 19;
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let seen: Seen = serde_json::from_str(&text).unwrap();
    assert!(
        seen.fetched.is_empty(),
        "the page fetched {:?}",
        seen.fetched
    );
    assert!(!seen.plots.is_empty(), "{}: no plot", page.display());
    for (width, height) in &seen.plots {
        assert!(
            *width > 100.0 && *height > 50.0,
            "{}: a plot of {width}x{height}",
            page.display()
        );
    }
    seen
}

/// Runs `pingfleet` in `dir`; its standard output (the command must succeed).
fn pingfleet(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "pingfleet {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The path a run printed after `what: `.
fn printed(stdout: &str, what: &str) -> PathBuf {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(what))
        .unwrap_or_else(|| panic!("no {what} line in {stdout}"));
    PathBuf::from(line.trim())
}

/// The wake-up percentile `p` (`p99`) a run printed: the number after it on the
/// `wakeup_latency_us` line of its summary.
fn printed_percentile(stdout: &str, p: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("wakeup_latency_us"))
        .unwrap_or_else(|| panic!("no wake-up line in {stdout}"));
    let mut words = line.split_whitespace();
    words.find(|word| *word == p);
    let number = words.next().unwrap_or_else(|| panic!("no {p} in {line}"));
    number.replace(',', "").parse().unwrap()
}

pub(crate) fn figure(seen: &Seen, key: &str) -> f64 {
    let value = seen
        .figures
        .get(key)
        .unwrap_or_else(|| panic!("no figure {key}: {seen:?}"));
    value.parse().unwrap()
}

#[test]
fn reports_open_in_a_browser_with_every_plot_and_the_result_files_figures() {
    let _busy = crate::util::busy_machine();
    let dir = tempfile::tempdir().unwrap();
    let smoke = ["run", "smoke", "--devices", "100", "--duration", "3s"];
    let first = pingfleet(dir.path(), &[&smoke[..], &["--report"]].concat());
    let (result_path, page) = (
        dir.path().join(printed(&first, "results: ")),
        dir.path().join(printed(&first, "report: ")),
    );
    let result: RunResult = serde_json::from_slice(&std::fs::read(&result_path).unwrap()).unwrap();
    let seen = open_in_browser(&page);
    // Percentiles and memory as the result file has them.
    for (name, doc) in &result.fleet.histograms {
        for (p, value) in [("p50", doc.summary.p50_us), ("p99", doc.summary.p99_us)] {
            if let Some(shown) = seen.figures.get(&format!("{}.{p}", name.key())) {
                assert_eq!(shown.parse::<u64>().unwrap(), value, "{name} {p}");
            }
        }
    }
    assert_eq!(
        figure(&seen, "wakeup_latency_us.p99"),
        result.fleet.histograms[&pingfleet::fleet::histogram::HistogramName::WakeupLatency]
            .summary
            .p99_us as f64
    );
    let memory = &result.memory;
    assert_eq!(
        figure(&seen, "memory.server_bytes_per_parked"),
        memory.server_bytes_per_parked.unwrap().round()
    );
    assert_eq!(figure(&seen, "parked.peak"), 100.0);
    assert_eq!(
        seen.figures["self_check.saturated"],
        (result.self_check.generator_saturated || result.self_check.machine_saturated).to_string()
    );
    // The fleet's memory on a scale of its own, the machine's kernel slab apart; ticks
    // in units, never `10000.0`.
    let html = std::fs::read_to_string(&page).unwrap();
    let plots: Vec<&str> = html.split("<svg").skip(1).collect();
    let fleet_memory = plots
        .iter()
        .find(|svg| svg.contains("resident memory of the fleet"))
        .expect("a plot of the fleet's memory");
    assert!(
        !fleet_memory.contains("kernel slab"),
        "the slab flattens it"
    );
    assert!(plots
        .iter()
        .any(|svg| svg.contains("kernel slab of the machine")));
    let texts: Vec<&str> = html.lines().map(str::trim).collect();
    let bare = texts
        .iter()
        .find(|text| text.parse::<f64>().is_ok_and(|value| value >= 1000.0));
    assert_eq!(
        bare, None,
        "a tick without its unit or its thousands grouped"
    );
    assert!(texts
        .iter()
        .any(|text| text.ends_with(" us") || text.ends_with(" ms")));
    assert!(texts.iter().any(|text| text.ends_with(" MiB")));
    // Spectrum, six timeline plots and the memory bars at least.
    assert!(seen.plots.len() >= 7, "{} plots", seen.plots.len());

    // A second run, compared with the first as a baseline.
    let second = pingfleet(dir.path(), &smoke);
    let current = dir.path().join(printed(&second, "results: "));
    let compared = dir.path().join("compare.html");
    let args = [
        "report",
        "--baseline",
        result_path.to_str().unwrap(),
        current.to_str().unwrap(),
        "-o",
        compared.to_str().unwrap(),
    ];
    pingfleet(dir.path(), &args);
    let seen = open_in_browser(&compared);
    let verdicts = Command::new(env!("CARGO_BIN_EXE_pingfleet"))
        .args([
            "compare",
            "--json",
            result_path.to_str().unwrap(),
            current.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let verdicts: serde_json::Value = serde_json::from_slice(&verdicts.stdout).unwrap();
    assert_eq!(
        figure(&seen, "compare.regressions"),
        verdicts["regressions"].as_f64().unwrap()
    );
    assert!(
        seen.figures.contains_key("1.wakeup_latency_us.p50"),
        "both spectra: {seen:?}"
    );
    // Each latency in the verdict table is the figure beside the plot, the one the run
    // printed and the one `compare` gives, on either side.
    let current_result: RunResult =
        serde_json::from_slice(&std::fs::read(&current).unwrap()).unwrap();
    for (side, run, printed_by, plot_prefix) in [
        ("baseline", &result, &first, ""),
        ("current", &current_result, &second, "1."),
    ] {
        let summary = run.summary_of(WakeupLatency).unwrap();
        for (p, value) in [("p50", summary.p50_us), ("p99", summary.p99_us)] {
            let value = value as f64;
            let name = format!("wakeup_{p}_us");
            let table = figure(&seen, &format!("compare.{name}.{side}"));
            let beside_plot = figure(&seen, &format!("{plot_prefix}wakeup_latency_us.{p}"));
            assert_eq!((table, beside_plot), (value, value), "{side} {p}");
            assert_eq!(printed_percentile(printed_by, p), value, "{side} {p}");
            let compared = verdicts["figures"]
                .as_array()
                .unwrap()
                .iter()
                .find(|row| row["figure"] == name.as_str())
                .unwrap_or_else(|| panic!("no {name} in {verdicts}"));
            assert_eq!(compared[side].as_f64(), Some(value), "{side} {p}");
        }
    }

    // A small sweep writes its page itself.
    let sweep = pingfleet(
        dir.path(),
        &[
            "run",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/scenarios/tiny-sweep.toml"
            ),
        ],
    );
    let sweep_result: SweepResult = serde_json::from_slice(
        &std::fs::read(dir.path().join(printed(&sweep, "results: "))).unwrap(),
    )
    .unwrap();
    let seen = open_in_browser(&dir.path().join(printed(&sweep, "report: ")));
    assert_eq!(
        figure(&seen, "sweep.cells"),
        sweep_result.cells.len() as f64
    );
    assert_eq!(
        seen.plots.len(),
        3,
        "one heatmap per measure of the one strategy"
    );

    // And a person's view of the smoke run: a screenshot with something on it.
    let shot = dir.path().join("smoke.png");
    let output = Command::new(chromium())
        .args(HEADLESS)
        .args([
            "--window-size=960,2400",
            &format!("--screenshot={}", shot.display()),
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 20_000,
        "an empty screenshot"
    );
}
