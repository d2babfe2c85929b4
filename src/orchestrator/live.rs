//! The live view of a run: a progress bar on a terminal, a plain status line every few
//! seconds otherwise (logs, CI).

use std::time::{Duration, Instant};

use crate::results::timeline::TimelinePoint;

/// Progress while the run goes on: a live bar on a terminal, a plain status line every
/// few seconds otherwise (logs, CI).
pub(crate) struct LiveView {
    bar: Option<indicatif::ProgressBar>,
    last_line: std::cell::Cell<Option<Instant>>,
    /// Shows nothing (one of several runs going on at once).
    silent: bool,
}

impl LiveView {
    const LINE_EVERY: Duration = Duration::from_secs(5);

    pub(crate) fn new(devices: u64) -> Self {
        let bar = std::io::IsTerminal::is_terminal(&std::io::stdout()).then(|| {
            let bar = indicatif::ProgressBar::new(devices);
            let style = indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} parked  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self {
            bar,
            last_line: std::cell::Cell::new(None),
            silent: false,
        }
    }

    /// A view that shows nothing.
    pub(crate) fn silent() -> Self {
        Self {
            bar: None,
            last_line: std::cell::Cell::new(None),
            silent: true,
        }
    }

    /// Shows the latest reading: parked devices (the bar), then notifications sent,
    /// Pings woken, notifications delivered and lost, the running wake-up p99, memory
    /// and CPU.
    pub(crate) fn show(&self, elapsed: Duration, point: &TimelinePoint) {
        if self.silent {
            return;
        }
        let fleet = &point.fleet;
        let message = format!(
            "{}  notified {}  woken {}  delivered {}  lost {}  wake-up p99 {} us (worst worker)  RSS {}+{} MiB  CPU {:.2} cores",
            point.stage,
            fleet.notified,
            point.wakeups,
            fleet.delivered,
            fleet.lost,
            fleet.wakeup_p99_us,
            point.server_rss_bytes >> 20,
            point.worker_rss_bytes >> 20,
            point.our_cpu_cores(),
        );
        let parked = point.parked;
        match &self.bar {
            Some(bar) => {
                bar.set_position(parked);
                bar.set_message(message);
            }
            None => {
                let due = self
                    .last_line
                    .get()
                    .is_none_or(|last| last.elapsed() >= Self::LINE_EVERY);
                if due {
                    self.last_line.set(Some(Instant::now()));
                    println!(
                        "t={:>5.1}s parked {parked:>6}  {message}",
                        elapsed.as_secs_f64()
                    );
                }
            }
        }
    }

    pub(crate) fn note(&self, text: &str) {
        if self.silent {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
