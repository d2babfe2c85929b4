//! `pingfleet firewall`: the userspace middlebox as a process of its own, between
//! devices and server, and what it reports: flows, what its idle timeout did, the bytes
//! it forwarded, its own memory per flow and the delay it adds. SIGUSR1 flushes every
//! flow at once (a NAT that restarts); SIGTERM or Ctrl-C stops it with its report.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::config::FirewallConfig;
use super::proxy::{self, IdleAction, Proxy, Rules};
use super::stream_link::StreamLink;
use crate::argv;
use crate::measure::latency::LatencySummary;
use crate::measure::procfs;

/// Flags of `pingfleet firewall`.
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Serialize)]
pub struct FirewallArgs {
    /// Address devices connect to (repeatable; the n-th forwards to the n-th --upstream).
    #[arg(long = "listen", value_name = "ADDR", required = true)]
    pub listen: Vec<SocketAddr>,
    /// The server address each --listen forwards to.
    #[arg(long = "upstream", value_name = "ADDR", required = true)]
    pub upstream: Vec<SocketAddr>,
    /// The firewall's own settings: idle timeout, action, jitter, flow table (the same
    /// as a scenario's `[firewall]`).
    #[command(flatten)]
    #[serde(flatten)]
    pub firewall: FirewallConfig,
    /// The stream-level link on the relays: a delay and a rate each way (none given: a
    /// plain relay).
    #[command(flatten)]
    #[serde(flatten)]
    pub link: StreamLink,
    /// Seeds the timeout jitter.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the final report (JSON) here as well as on stdout.
    #[arg(long, value_name = "PATH")]
    pub report: Option<std::path::PathBuf>,
}

impl FirewallArgs {
    /// One listener forwarding to `upstream` under `firewall`'s rules.
    pub fn forwarding(listen: SocketAddr, upstream: SocketAddr, firewall: FirewallConfig) -> Self {
        Self {
            listen: vec![listen],
            upstream: vec![upstream],
            firewall,
            link: StreamLink::default(),
            seed: 1,
            report: None,
        }
    }

    /// `firewall` and the flags that give these values back.
    pub fn to_argv(&self) -> anyhow::Result<Vec<String>> {
        argv::to_argv("firewall", self)
    }
}

/// The line printed once every listener accepts connections.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FirewallReady {
    pub ready: bool,
    pub pid: u32,
    pub listen: Vec<SocketAddr>,
}

/// What the middlebox reports when it stops.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FirewallReport {
    pub action: IdleAction,
    pub idle_timeout_s: f64,
    pub flows_opened: u64,
    pub flows_closed: u64,
    pub upstream_refused: u64,
    pub idle_expired: u64,
    pub evicted: u64,
    /// Flows dropped by a flush (SIGUSR1: every flow at once, with the action).
    #[serde(default)]
    pub flushed: u64,
    /// Device connections it could not accept (out of descriptors); above 0, the
    /// middlebox was the bottleneck.
    #[serde(default)]
    pub accept_failed: u64,
    pub bytes_to_server: u64,
    pub bytes_to_device: u64,
    pub bytes_dropped: u64,
    /// The most flows open at once.
    pub peak_flows: u64,
    /// The middlebox's own memory per flow: RSS above its start-up RSS over the flows
    /// open, at the busiest of its twice-a-second readings; `null` when no reading saw
    /// a flow.
    pub bytes_per_flow: Option<f64>,
    /// Read-to-written time of each forwarded chunk: the delay the middlebox adds
    /// (with a stream-level link, beyond the instant the link had the chunk due).
    pub forwarding: LatencySummary,
    /// The stream-level link it applied; `null` for a plain relay.
    #[serde(default)]
    pub link: Option<StreamLink>,
}

/// Runs `pingfleet firewall` until SIGINT or SIGTERM.
pub fn firewall(args: FirewallArgs) -> anyhow::Result<()> {
    if args.listen.len() != args.upstream.len() {
        anyhow::bail!(
            "{} --listen but {} --upstream: each listener forwards to one upstream",
            args.listen.len(),
            args.upstream.len()
        );
    }
    args.firewall
        .check()
        .and_then(|()| args.link.check())
        .map_err(|err| anyhow::anyhow!("{}", err.for_flag()))?;
    rlimit::increase_nofile_limit(u64::MAX).ok();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: FirewallArgs) -> anyhow::Result<()> {
    let firewall = &args.firewall;
    let rules = Rules {
        idle_timeout: firewall.idle_timeout.0,
        jitter: firewall.jitter.fraction(),
        action: firewall.action,
        flow_table: firewall.flow_table,
        link: args.link,
    };
    let proxy = Arc::new(Proxy::default());
    let mut bound = Vec::new();
    for (index, (listen, upstream)) in args.listen.iter().zip(&args.upstream).enumerate() {
        let listener = crate::listen::listen_tcp(*listen)
            .with_context(|| format!("cannot listen on {listen}"))?;
        bound.push(listener.local_addr()?);
        let seed = crate::seeds::derive(args.seed, crate::seeds::Stream::Firewall, index as u64);
        tokio::spawn(proxy::serve(
            listener,
            *upstream,
            rules,
            proxy.clone(),
            seed,
        ));
    }
    let ready = FirewallReady {
        ready: true,
        pid: std::process::id(),
        listen: bound,
    };
    println!("{}", serde_json::to_string(&ready)?);
    let rss_at_start = procfs::rss_bytes(None);
    let mut peak = (0u64, rss_at_start);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut flush = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = flush.recv() => proxy.flush(),
            _ = tick.tick() => {
                let flows = proxy.flows_active() as u64;
                if flows > peak.0 {
                    peak = (flows, procfs::rss_bytes(None));
                }
            }
        }
    }
    let report = report(&args, &proxy, peak, rss_at_start);
    let json = serde_json::to_string(&report)?;
    if let Some(path) = &args.report {
        std::fs::write(path, &json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // Whoever started it may have stopped reading stdout after the ready line.
    let _ = writeln!(std::io::stdout(), "{json}");
    Ok(())
}

fn report(
    args: &FirewallArgs,
    proxy: &Proxy,
    (sampled_flows, rss_at_peak): (u64, Option<u64>),
    rss_at_start: Option<u64>,
) -> FirewallReport {
    let counters = &proxy.counters;
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    FirewallReport {
        action: args.firewall.action,
        idle_timeout_s: args.firewall.idle_timeout.0.as_secs_f64(),
        flows_opened: load(&counters.flows_opened),
        flows_closed: load(&counters.flows_closed),
        upstream_refused: load(&counters.upstream_refused),
        idle_expired: load(&counters.idle_expired),
        evicted: load(&counters.evicted),
        flushed: load(&counters.flushed),
        accept_failed: load(&counters.accept_failed),
        bytes_to_server: load(&counters.bytes_to_server),
        bytes_to_device: load(&counters.bytes_to_device),
        bytes_dropped: load(&counters.bytes_dropped),
        peak_flows: load(&counters.peak_flows),
        bytes_per_flow: rss_at_peak
            .zip(rss_at_start)
            .filter(|_| sampled_flows > 0)
            .map(|(peak, start)| peak.saturating_sub(start) as f64 / sampled_flows as f64),
        forwarding: proxy.forwarding().summary(),
        link: args.link.is_set().then_some(args.link),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firewall_args_cross_the_seam_unchanged() {
        let firewall = FirewallConfig {
            idle_timeout: crate::units::Span(std::time::Duration::from_millis(1500)),
            action: IdleAction::Half,
            jitter: crate::units::Share::of_fraction(0.05),
            flow_table: Some(1000),
            ..FirewallConfig::default()
        };
        let mut args = FirewallArgs::forwarding(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:8080".parse().unwrap(),
            firewall,
        );
        args.link = StreamLink {
            link_delay: crate::units::Span(std::time::Duration::from_millis(35)),
            link_down: Some(13e6),
            link_up: None,
        };
        args.seed = 7;
        args.report = Some("/tmp/a b.json".into());
        let argv = args.to_argv().unwrap();
        let parsed: FirewallArgs = argv::parse(&argv).unwrap();
        assert_eq!(parsed, args);
    }
}
