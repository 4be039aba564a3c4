//! `anthill serve`: runs a node until SIGINT/SIGTERM, then stops it gracefully
//! (every live actor snapshotted).

use crate::config::Config;
use crate::node::RunningNode;
use crate::telemetry::{self, LogFormat};
use anthill_admin::TokenSource;
use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub(super) struct ServeArgs {
    /// TOML config file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data dir (module registry, snapshots, compile cache, token) [default: ./anthill-data]
    #[arg(long)]
    data: Option<PathBuf>,
    /// Precompiled-component cache [default: DATA/cache]
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Admin API address [default: 127.0.0.1:7350]
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// Player QUIC address [default: 127.0.0.1:7351]
    #[arg(long)]
    quic: Option<SocketAddr>,
    /// Web port for browsers: WebSocket at /ws, the arena page at /play
    /// [default: 127.0.0.1:7352]
    #[arg(long)]
    web: Option<SocketAddr>,
    /// Admin token (else the config's, else DATA/admin.token)
    #[arg(long, env = "ANTHILL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read-only token for GET /metrics (else the config's, else
    /// DATA/metrics.token)
    #[arg(long, env = "ANTHILL_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Join a cluster through these NATS servers (comma-separated), e.g.
    /// nats://127.0.0.1:4222 (else the config's `[cluster] servers`; none:
    /// this node runs alone)
    #[arg(long, value_delimiter = ',')]
    cluster: Vec<String>,
    /// This node's name in the cluster (else the config's `[cluster] node`)
    #[arg(long)]
    node: Option<String>,
    /// Log filter, e.g. `info,anthill=debug` (or RUST_LOG)
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
    /// Log lines as `text` (coloured only on a terminal) or `json` (one
    /// object per line, for log shippers)
    #[arg(long, env = "ANTHILL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Export traces to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318
    /// (else the config's `[traces] otlp_endpoint`)
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
}

pub(super) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(e) = args.otlp_endpoint {
        config.traces.otlp_endpoint = Some(e).filter(|e| !e.is_empty());
    }
    let telemetry = telemetry::init(&args.log, args.log_format, &config.traces)?;
    if let Some(d) = args.data {
        config.data = d;
    }
    if let Some(c) = args.cache {
        config.cache = Some(c);
    }
    if let Some(a) = args.admin {
        config.admin = a;
    }
    if let Some(q) = args.quic {
        config.quic = q;
    }
    if let Some(w) = args.web {
        config.web = w;
    }
    if let Some(t) = args.token {
        config.admin_token = Some(t);
    }
    if let Some(t) = args.metrics_token {
        config.metrics_token = Some(t);
    }
    if !args.cluster.is_empty() {
        config.cluster.servers = args.cluster;
    }
    if let Some(n) = args.node {
        config.cluster.node = Some(n);
    }
    let data = config.data.clone();
    let running = RunningNode::start(config)
        .await
        .with_context(|| format!("starting the node with data dir {}", data.display()))?;

    let token = match &running.token_source {
        TokenSource::Config => "from config / ANTHILL_TOKEN".to_owned(),
        TokenSource::File {
            path,
            generated: true,
        } => format!("generated into {} (0600)", path.display()),
        TokenSource::File { path, .. } => format!("in {}", path.display()),
    };
    println!("anthill {} node ready", env!("CARGO_PKG_VERSION"));
    println!("admin api: http://{}", running.admin_addr);
    println!("admin token: {token}");
    println!(
        "metrics: http://{}/metrics (read-only scrape token: {})",
        running.admin_addr,
        if running.scrape_token_configured {
            "from config / ANTHILL_METRICS_TOKEN".to_owned()
        } else {
            data.join("metrics.token").display().to_string()
        }
    );
    match &running.gateway {
        Some(g) => println!(
            "players: quic://{} (alpn anthill/1, certificate sha256 {}, {})",
            g.addr, g.fingerprint, g.cert_source
        ),
        None => println!("players: gateway disabled"),
    }
    if let Some(w) = &running.web_addr {
        if running.web_tls {
            println!(
                "browsers: https://{w}/play (WebSocket wss://{w}/ws; WebTransport on the player port, with the same certificate)"
            );
        } else {
            println!(
                "browsers: http://{w}/play (WebSocket ws://{w}/ws; WebTransport on the player port, certificate hash at http://{w}/play/connect.json)"
            );
        }
    }
    if let Some((cluster, server)) = &running.cluster {
        println!("cluster: node {} via NATS {server}", cluster.node());
    }
    if let Some(to) = &telemetry.traces_to {
        println!("traces: OTLP/HTTP to {to}");
    }
    println!("data dir: {}", data.display());
    if running.reloaded.is_empty() {
        println!("modules: none deployed yet (anthill deploy NAME FILE.wasm)");
    } else {
        println!("modules: {} (reloaded)", running.reloaded.join(", "));
    }

    wait_for_signal().await;
    println!("stopping: snapshotting live actors…");
    let stopped = running
        .shutdown()
        .await
        .context("flushing the store at shutdown")?;
    println!("stopped ({stopped} live actors stopped, their state saved)");
    telemetry.shutdown();
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
