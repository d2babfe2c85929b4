//! A run's self-check as its result file holds it, and its verdict in words: did the
//! hold measure the server, or the generator, the host or our own fleet?
//! (`orchestrator::self_check` reads the run and reaches the verdict.)

/// The verdict and the readings behind it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SelfCheck {
    /// A device worker was busy, or its event loop or injector fell behind: latencies
    /// include the generator's own delays.
    pub generator_saturated: bool,
    /// The injector's own lag was over its limit: latencies from the plan include it,
    /// those from the datagram's departure do not.
    #[serde(default)]
    pub injector_late: bool,
    /// A worker was busy or its event loop fell behind: every latency the devices
    /// measured includes their delays.
    #[serde(default)]
    pub devices_late: bool,
    /// The machine was busy on nearly all cores: server and generator competed for them
    /// (with each other, or with whatever else ran).
    pub machine_saturated: bool,
    /// Why, in words; empty when neither.
    pub reasons: Vec<String>,
    /// Seconds of the hold the check saw.
    pub hold_seconds_sampled: usize,
    /// The busiest worker's CPU in its busiest second of the hold (cores).
    pub busiest_worker_cores: Option<f64>,
    /// The machine's busy cores (every process, and the kernel) in the busiest second
    /// of the hold, and how many cores it has.
    pub busiest_second_cores: Option<f64>,
    pub machine_cores: usize,
    pub event_loop_lag_p99_us: Option<u64>,
    pub injector_lag_p99_us: Option<u64>,
    /// The injector's lag against its precision limits, in words (`null` without
    /// datagrams sent).
    #[serde(default)]
    pub injector_precision: Option<String>,
    /// What the hold measured besides the server, if anything.
    #[serde(default)]
    pub cause: Cause,
    /// Our processes (server and workers) in the hold's busiest second for them (cores).
    #[serde(default)]
    pub our_busiest_second_cores: Option<f64>,
    /// The loopback floor's p99.9 during the hold (us): the host's own stalls.
    #[serde(default)]
    pub floor_p999_us: Option<u64>,
}

/// What a hold measured besides the server: one cause, the first that applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Nothing: the latencies are the server's (and the loopback's).
    #[default]
    Clear,
    /// The host stalled: the generator was late at the same time as the floor's own
    /// tail, or the machine was busy, while our processes used little CPU. Work not
    /// ours: a comparison takes it as inconclusive, never as failed.
    HostStalled,
    /// Our injector or device workers fell behind: a worker used its core, or they were
    /// late while the host was not.
    GeneratorBehind,
    /// The server and the workers together used nearly every core: they competed.
    OwnFleetBusy,
}

impl Cause {
    /// The cause in a few words, for a line that names it beside others.
    pub fn words(self) -> &'static str {
        match self {
            Cause::Clear => "nothing",
            Cause::HostStalled => "the machine stalled or was busy with work not ours",
            Cause::GeneratorBehind => "the generator fell behind",
            Cause::OwnFleetBusy => "the machine was busy with our own fleet",
        }
    }
}

impl SelfCheck {
    /// The verdict in one line, with what to do next.
    pub fn verdict(&self) -> String {
        let cores = |value: Option<f64>| value.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
        let (ours, all) = (cores(self.our_busiest_second_cores), self.machine_cores);
        match self.cause {
            Cause::Clear => "clear: the generator kept up and the machine was not busy".to_owned(),
            Cause::HostStalled if self.machine_saturated => format!(
                "INCONCLUSIVE, the machine was busy with work not ours: {} of {all} cores \
                 in a second of the hold while our processes used at most {ours}; the \
                 latencies measure the host, not the server. Run again when nothing else \
                 runs (`compare` counts this run as inconclusive, not failed)",
                cores(self.busiest_second_cores)
            ),
            Cause::HostStalled => format!(
                "INCONCLUSIVE, the machine stalled: the loopback floor's own p99.9 was {} us \
                 while the generator was late, and our processes used at most {ours} of \
                 {all} cores; the latencies measure the host, not the server. Run again \
                 on a quieter machine (`compare` counts this run as inconclusive, not failed)",
                self.floor_p999_us
                    .map_or("n/a".to_owned(), |us| us.to_string())
            ),
            Cause::GeneratorBehind => format!(
                "GENERATOR SATURATED: our injector or device workers fell behind (busiest \
                 worker {} of a core, our processes at most {ours} of {all} cores); the \
                 latencies include the generator's own delays. Give it more workers \
                 (--workers N) or run fewer devices or a lower notification rate",
                cores(self.busiest_worker_cores)
            ),
            Cause::OwnFleetBusy => format!(
                "MACHINE BUSY WITH OUR OWN FLEET: the run's own processes (server, workers \
                 and any proxies) together used {ours} of {all} cores, so they competed for \
                 them. Run fewer devices or a \
                 lower rate, or the workers on another machine (pingfleet devices --target URL)"
            ),
        }
    }
}
