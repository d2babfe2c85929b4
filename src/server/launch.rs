//! `pingfleet serve`: its flags, and turning them into a running partition: raise the
//! open-file limit, bind, set up TLS, print one JSON "ready" line on standard output
//! (what tests and the orchestrator wait for), run until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::config::ServerConfig;
use super::http::{ResponseFraming, ResponseStyle};
use super::run::{run, Sockets, TlsConfig};
use super::state::{Engine, HttpLimits, PartitionConfig, ServerState};
use super::users::Users;
use crate::argv;
use crate::measure::heap::{self, HeapPart};
use crate::partition::Partition;
use crate::tls::Identity;

/// Flags of `pingfleet serve`; `pingfleet run` starts its partitions from values of this
/// type (see [`ServeArgs::to_argv`]).
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Serialize)]
pub struct ServeArgs {
    /// Address to accept EAS connections on (repeatable).
    #[arg(long = "listen", value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: Vec<SocketAddr>,
    /// The server's own settings: engine, TLS, heartbeat bounds (the same as a
    /// scenario's `[server]`).
    #[command(flatten)]
    #[serde(flatten)]
    pub server: ServerConfig,
    /// PEM certificate chain to serve (with --key).
    #[arg(long, value_name = "PATH", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "PATH", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Where to write a generated certificate (default: a file in the temp directory;
    /// the ready line names it).
    #[arg(long, value_name = "PATH")]
    pub cert_out: Option<PathBuf>,
    /// UDP address for change notifications from the mailbox back-end.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2883")]
    pub notify: SocketAddr,
    /// Address for the Prometheus /metrics endpoint (off when not given).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Number of synthetic users: PREFIX0 ... PREFIX{N-1}.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub users: u64,
    /// Name prefix of synthetic users.
    #[arg(long, default_value = "user")]
    pub user_prefix: String,
    /// Password of every synthetic user.
    #[arg(long, default_value = "pingfleet")]
    pub password: String,
    /// Read users from a file of `user:password` lines instead of making synthetic ones.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["users", "user_prefix", "password"])]
    pub users_file: Option<PathBuf>,
    /// Most folders one Ping may monitor (more get Status 6).
    #[arg(long, value_name = "N", default_value_t = 300)]
    pub max_folders: u32,
    /// Serve partition i of K: only users whose name hashes to i.
    #[arg(long, value_name = "i/K", default_value = "0/1")]
    pub partition: Partition,
    /// EAS URL of each partition, in index order, for 451 redirects (repeatable).
    #[arg(long = "partition-url", value_name = "URL")]
    pub partition_urls: Vec<String>,
    /// Demand a provisioned policy key on FolderSync and Sync (449 up to 12.1,
    /// Status 142/144 from 14.0).
    #[arg(long)]
    pub require_provision: bool,
    /// Most open client connections; more are answered 503 (default: the open-file
    /// limit minus a reserve).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Time allowed from a request's first byte to the end of its head (and for a TLS
    /// handshake), e.g. 10s.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub head_timeout: Duration,
    /// Time allowed from the end of a request's head to the end of its body.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Time a keep-alive connection may sit with no request.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = argv::duration)]
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How the lean engine frames response bodies: `length` (Content-Length), or as
    /// other servers do, to test clients against them: `chunked`, or `close` (no length,
    /// the connection closes after each response, as Z-Push does above 1 MiB).
    #[arg(long, value_enum, default_value_t = ResponseFraming::Length)]
    pub response_framing: ResponseFraming,
    /// Gzip every response body, empty ones included, whatever the client asked (as
    /// PHP's zlib.output_compression does); to test clients against such servers.
    #[arg(long)]
    pub gzip_everything: bool,
    /// Runtime worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// File descriptors kept back from --max-connections for listeners, files and sockets
/// opened by the server itself.
const FD_RESERVE: u64 = 100;

impl ServeArgs {
    /// The flags' defaults, as `pingfleet serve` alone would run.
    pub fn defaults() -> Self {
        argv::parse(&["serve".to_owned()]).expect("serve needs no flag")
    }

    /// `serve` and the flags that give these values back.
    pub fn to_argv(&self) -> anyhow::Result<Vec<String>> {
        argv::to_argv("serve", self)
    }
}

/// The JSON line `serve` prints once it accepts connections: what the orchestrator,
/// the tests and the benches read from a starting server (see [`super::handle`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerReady {
    pub ready: bool,
    pub pid: u32,
    pub engine: Engine,
    pub partition: String,
    /// The EAS listeners, in the order of --listen.
    pub http: Vec<SocketAddr>,
    pub notify: SocketAddr,
    pub metrics: Option<SocketAddr>,
    /// The certificate served (generated or given), for clients to trust.
    pub tls_cert: Option<PathBuf>,
    pub fd_limit: u64,
    pub max_connections: usize,
    pub notify_recv_buffer: Option<usize>,
}

/// Runs `pingfleet serve` to completion.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if !crate::lifeline::bind_to_parent() {
        anyhow::bail!("the run that started this process has ended");
    }
    let fd_limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let config = config_from(&args, fd_limit)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    // What the runtime's threads allocate serves connections (see `measure::heap`).
    runtime.on_thread_start(|| heap::set_thread_part(HeapPart::Connections));
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let sockets = Sockets::bind(&args.listen, args.notify, args.metrics)
            .context("cannot bind the server's sockets")?;
        let (tls, tls_cert) = tls_setup(&args)?;
        let ready = ServerReady {
            ready: true,
            pid: std::process::id(),
            engine: config.engine,
            partition: config.partition.to_string(),
            http: sockets
                .http
                .iter()
                .filter_map(|l| l.local_addr().ok())
                .collect(),
            notify: sockets.notify.local_addr()?,
            metrics: sockets.metrics.as_ref().and_then(|l| l.local_addr().ok()),
            tls_cert,
            fd_limit,
            max_connections: config.max_connections,
            notify_recv_buffer: sockets.notify_recv_buffer(),
        };
        println!("{}", serde_json::to_string(&ready)?);
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        run(ServerState::new(config, shutdown), sockets, tls).await;
        Ok(())
    })
}

fn config_from(args: &ServeArgs, fd_limit: u64) -> anyhow::Result<PartitionConfig> {
    args.server
        .check()
        .map_err(|err| anyhow::anyhow!("{}", err.for_flag()))?;
    if !args.partition_urls.is_empty() && args.partition_urls.len() != args.partition.count as usize
    {
        anyhow::bail!(
            "--partition-url was given {} times; partition {} needs one URL per partition",
            args.partition_urls.len(),
            args.partition
        );
    }
    let users = match &args.users_file {
        Some(path) => Users::from_file(path)?,
        None => Users::Synthetic {
            prefix: args.user_prefix.clone(),
            count: args.users,
            password: args.password.clone(),
        },
    };
    let styled = args.response_framing != ResponseFraming::Length || args.gzip_everything;
    if styled && args.server.engine == Engine::Hyper {
        anyhow::bail!(
            "--response-framing and --gzip-everything are served by the lean engine only"
        );
    }
    let mut config = PartitionConfig::new(users);
    config.response_style = ResponseStyle {
        framing: args.response_framing,
        gzip_everything: args.gzip_everything,
    };
    config.engine = args.server.engine;
    (config.min_heartbeat_s, config.max_heartbeat_s) = args.server.heartbeat_bounds_s();
    config.max_folders = args.max_folders;
    config.partition = args.partition;
    config.partition_urls = args.partition_urls.clone();
    config.require_provision = args.require_provision;
    config.path = args.server.path.clone();
    config.max_connections = args
        .max_connections
        .unwrap_or(fd_limit.saturating_sub(FD_RESERVE).max(1) as usize);
    config.limits = HttpLimits {
        head_timeout: args.head_timeout,
        body_timeout: args.body_timeout,
        idle_timeout: args.idle_timeout,
        ..HttpLimits::default()
    };
    Ok(config)
}

fn tls_setup(args: &ServeArgs) -> anyhow::Result<(Option<TlsConfig>, Option<PathBuf>)> {
    let (identity, cert_path) = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => (Identity::from_pem_files(cert, key)?, cert.clone()),
        _ if args.server.tls => {
            let path = args
                .cert_out
                .clone()
                .map_or_else(crate::tls::default_cert_path, Ok)
                .context("cannot make a directory for the certificate")?;
            let listening: Vec<std::net::IpAddr> =
                args.listen.iter().map(std::net::SocketAddr::ip).collect();
            (Identity::self_signed(&path, &listening)?, path)
        }
        _ => return Ok((None, None)),
    };
    Ok((Some(identity.server_config()?), Some(cert_path)))
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match terminate.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
    shutdown.cancel();
}
