//! A node: the store, the engine, the actor runtime, the gateway and the
//! admin API, wired together through their seams, started together and
//! stopped together. [`RunningNode::start`] is what `anthill serve` runs.

use crate::config::{Config, ConfigError};
use anthill_actors::{Runtime, RuntimeDispatch, Started};
use anthill_admin::NodeControl;
use anthill_engine::{Engine, EngineError};
use anthill_gateway::{Gateway, GatewayError, GatewayInfo};
use anthill_store::{Store, StoreError};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Token(#[from] anthill_admin::TokenError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Cluster(#[from] anthill_cluster::ClusterError),
    #[error(
        "cannot listen for browsers on {addr}: {source} (is another node running? pick another with --web)"
    )]
    BindWeb {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "cannot listen for the admin API on {addr}: {source} (is another node running? pick another with --admin)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A started node: its addresses, and the way to stop it.
pub(crate) struct RunningNode {
    pub admin_addr: SocketAddr,
    /// Where the token came from, for the start banner.
    pub token_source: anthill_admin::TokenSource,
    /// The scrape token came from the config, not DATA/metrics.token.
    pub scrape_token_configured: bool,
    pub reloaded: Vec<String>,
    /// The player endpoint, when the gateway is enabled.
    pub gateway: Option<GatewayInfo>,
    /// The web port (WebSocket and `/play`), when the gateway is enabled.
    pub web_addr: Option<SocketAddr>,
    /// Whether the web port speaks TLS (the operator's certificate).
    pub web_tls: bool,
    /// The cluster this node joined, when started with `--cluster`.
    pub cluster: Option<(Arc<anthill_cluster::Cluster>, String)>,
    runtime: Started,
    player_side: Option<(Arc<Gateway>, tokio::task::JoinHandle<()>)>,
    shutdown: watch::Sender<bool>,
    admin_task: tokio::task::JoinHandle<()>,
}

impl RunningNode {
    /// Opens the data dir, reloads the deployed modules, and starts the
    /// gateway and the admin API.
    pub(crate) async fn start(config: Config) -> Result<RunningNode, StartError> {
        config.validate()?;
        // Join first: a node that cannot reach its cluster must not start
        // serving on its own.
        let mut joined = match config.cluster.enabled() {
            true => Some(anthill_cluster::join(config.cluster.clone()).await?),
            false => None,
        };
        let local = Arc::new(Store::open(&config.data)?);
        let store: Arc<dyn anthill_store::Persistence> = match &joined {
            Some(j) => j.store(local, config.limits.max_snapshot_bytes),
            None => local,
        };
        let (token, token_source) =
            anthill_admin::load_token(config.admin_token.as_deref(), &config.data)?;
        let (scrape_token, scrape_source) =
            anthill_admin::load_scrape_token(config.metrics_token.as_deref(), &config.data)?;
        std::fs::create_dir_all(config.cache_dir()).map_err(|source| StoreError::Io {
            doing: format!(
                "creating the compile cache {}",
                config.cache_dir().display()
            ),
            source,
        })?;
        let engine = Engine::new(&config.limits, config.cache_dir())?;
        let registry = prometheus::Registry::new();
        crate::process_metrics::register(&registry);
        let runtime = Runtime::new(config.runtime(), engine, store, &registry)?;
        if let Some(j) = &mut joined {
            j.place(&runtime, &registry);
        }
        // The player side exists before modules reload: their rooms may
        // publish state as soon as they activate.
        let gateway = config
            .gateway
            .enabled
            .then(|| Gateway::new(config.gateway.clone(), &registry));
        if let Some(gw) = &gateway {
            match joined.as_ref().and_then(|j| {
                j.player_side(
                    gw.clone(),
                    gw.clone(),
                    gw.clone(),
                    std::time::Duration::from_millis(config.gateway.resume_grace_ms),
                )
            }) {
                Some(side) => {
                    gw.join_cluster(&side.session_key, side.sessions);
                    runtime.attach(side.rooms, side.players);
                }
                None => runtime.attach(gw.clone(), gw.clone()),
            }
        }
        let started = runtime.start().await?;
        let (info, player_side) = match gateway {
            Some(gw) => {
                let (info, task) =
                    gw.start(config.quic, &config.data, RuntimeDispatch::new(&runtime))?;
                let _ = std::fs::write(config.data.join("quic.addr"), format!("{}\n", info.addr));
                (Some(info), Some((gw, task)))
            }
            None => (None, None),
        };

        let listener = tokio::net::TcpListener::bind(config.admin)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.admin,
                source,
            })?;
        let admin_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.admin,
            source,
        })?;
        // Lets the CLI on this machine find the node without flags.
        let _ = std::fs::write(
            config.data.join("admin.addr"),
            format!("http://{admin_addr}\n"),
        );
        let (shutdown, mut stopped) = watch::channel(false);
        let mut web_tls = false;
        let web_addr = match (&player_side, &info) {
            (Some((gw, _)), Some(info)) => {
                let web = tokio::net::TcpListener::bind(config.web)
                    .await
                    .map_err(|source| StartError::BindWeb {
                        addr: config.web,
                        source,
                    })?;
                let addr = web.local_addr().map_err(|source| StartError::BindWeb {
                    addr: config.web,
                    source,
                })?;
                let tls = gw.web_tls();
                web_tls = tls.is_some();
                gw.allow_web_port(addr, tls.is_some());
                let _ = std::fs::write(config.data.join("web.addr"), format!("{addr}\n"));
                let app = crate::web::router(gw.clone(), info.addr);
                tokio::spawn(crate::web::serve(web, app, tls, stopped.clone()));
                Some(addr)
            }
            _ => None,
        };
        let tokens = anthill_admin::AdminTokens {
            operator: token,
            scrape: Some(scrape_token),
        };
        let mut control: Arc<dyn anthill_admin::ControlPlane> =
            NodeControl::new(runtime.clone(), registry);
        let cluster = match joined {
            None => None,
            Some(joined) => {
                let server = joined.server().to_owned();
                let addrs = anthill_cluster::NodeAddrs {
                    admin: format!("http://{admin_addr}"),
                    players: info.as_ref().map(|i| i.addr.to_string()),
                    web: web_addr.map(|w| w.to_string()),
                };
                let probe_runtime = runtime.clone();
                let probe_gateway = player_side.as_ref().map(|(gw, _)| gw.clone());
                let load: anthill_cluster::LoadProbe = Box::new(move || {
                    let actors = probe_runtime
                        .router
                        .modules()
                        .iter()
                        .map(|m| m.live_actors())
                        .sum();
                    let players = probe_gateway.as_ref().map(|g| g.counts().1).unwrap_or(0);
                    (actors, players)
                });
                let cluster = joined.start(runtime.clone(), addrs, load).await?;
                control = cluster.control(control);
                Some((cluster, server))
            }
        };
        let app = anthill_admin::router(control, tokens);
        let admin_task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "admin API stopped");
            }
        });
        Ok(RunningNode {
            admin_addr,
            token_source,
            scrape_token_configured: matches!(scrape_source, anthill_admin::TokenSource::Config),
            reloaded: started.reloaded.clone(),
            gateway: info,
            web_addr,
            web_tls,
            cluster,
            runtime: started,
            player_side,
            shutdown,
            admin_task,
        })
    }

    /// Graceful stop: the admin API stops taking requests, every live actor
    /// finishes its queue and writes its snapshot, and the store is flushed.
    pub(crate) async fn shutdown(mut self) -> Result<usize, StoreError> {
        let _ = self.shutdown.send(true);
        let _ = self.admin_task.await;
        if let Some((cluster, _)) = &self.cluster {
            cluster.drain().await;
        }
        // No new work from timers or event deliveries while actors stop.
        self.runtime.stop_background();
        if let Some((gw, task)) = self.player_side.take() {
            gw.stop();
            task.abort();
        }
        let stopped = self.runtime.runtime.stop_actors().await;
        if let Some((cluster, _)) = &self.cluster {
            cluster.leave().await;
        }
        stopped
    }
}
