//! A node: the engine, the store, the router and the admin API, started together
//! and stopped together. [`RunningNode::start`] is what `anthill serve` runs and
//! what in-process tests start.

use crate::admin;
use crate::config::{Config, ConfigError};
use crate::engine::{Engine, EngineError};
use crate::events::Events;
use crate::gateway::{Gateway, GatewayError, GatewayInfo};
use crate::metrics::Metrics;
use crate::module;
use crate::router::Router;
use crate::store::{Store, StoreError};
use crate::sync::Sync;
use crate::tenants::Tenants;
use crate::timers::Timers;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The shared parts of a running node. Everything that needs to reach another
/// part holds an `Arc<Node>`.
pub struct Node {
    pub config: Config,
    pub engine: Engine,
    pub store: Store,
    pub metrics: Metrics,
    pub router: Router,
    pub events: Events,
    pub timers: Timers,
    pub gateway: Gateway,
    pub sync: Sync,
    pub tenants: Tenants,
    pub(crate) deploy_lock: tokio::sync::Mutex<()>,
    /// Wakes the reaper when an activation found the pool full.
    pub(crate) capacity_wanted: tokio::sync::Notify,
    next_actor: AtomicU64,
}

impl Node {
    pub(crate) fn next_actor_id(&self) -> u64 {
        self.next_actor.fetch_add(1, Ordering::Relaxed)
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Token(#[from] admin::TokenError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(
        "cannot listen for the admin API on {addr}: {source} (is another node running? pick another with --admin)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A started node: its addresses, and the way to stop it.
pub struct RunningNode {
    pub node: Arc<Node>,
    pub admin_addr: SocketAddr,
    pub token: String,
    /// Where the token came from, for the start banner.
    pub token_source: admin::TokenSource,
    pub reloaded: Vec<String>,
    /// The player endpoint, when the gateway is enabled.
    pub gateway: Option<GatewayInfo>,
    gateway_task: Option<tokio::task::JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    admin_task: tokio::task::JoinHandle<()>,
    timer_task: tokio::task::JoinHandle<()>,
    reaper_task: tokio::task::JoinHandle<()>,
}

impl RunningNode {
    /// Opens the data dir, reloads the deployed modules and starts the admin API.
    pub async fn start(config: Config) -> Result<RunningNode, StartError> {
        config.validate()?;
        let store = Store::open(&config.data)?;
        let (token, token_source) = admin::load_token(&config)?;
        std::fs::create_dir_all(config.cache_dir()).map_err(|source| StoreError::Io {
            doing: format!(
                "creating the compile cache {}",
                config.cache_dir().display()
            ),
            source,
        })?;
        let engine = Engine::new(&config.limits, config.cache_dir())?;
        let metrics = Metrics::new();
        let events = Events::new(config.events.clone(), metrics.registry());
        let gateway = Gateway::new(config.gateway.clone(), metrics.registry());
        let sync = Sync::new(metrics.registry());
        let tenants = Tenants::load(&store, metrics.registry())?;
        let node = Arc::new(Node {
            tenants,
            engine,
            store,
            metrics,
            router: Router::new(),
            events,
            timers: Timers::new(),
            gateway,
            sync,
            deploy_lock: tokio::sync::Mutex::new(()),
            capacity_wanted: tokio::sync::Notify::new(),
            next_actor: AtomicU64::new(1),
            config,
        });
        let reloaded = module::load_all(&node).await?;
        let subscriptions = Events::start(&node)?;
        let timers = node.timers.load(&node)?;
        let timer_task = tokio::spawn(Timers::run(node.clone()));
        let reaper_task = tokio::spawn(crate::actor::run_reaper(node.clone()));
        tracing::info!(
            modules = reloaded.len(),
            subscriptions,
            timers,
            "state reloaded"
        );
        let (gateway, gateway_task) = if node.config.gateway.enabled {
            let (info, task) = Gateway::start(&node, node.config.quic)?;
            let _ = std::fs::write(
                node.config.data.join("quic.addr"),
                format!("{}\n", info.addr),
            );
            let _ = std::fs::write(
                node.config.data.join("gateway.fingerprint"),
                format!("{}\n", info.fingerprint),
            );
            (Some(info), Some(task))
        } else {
            (None, None)
        };

        let listener = tokio::net::TcpListener::bind(node.config.admin)
            .await
            .map_err(|source| StartError::Bind {
                addr: node.config.admin,
                source,
            })?;
        let admin_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: node.config.admin,
            source,
        })?;
        // Lets the CLI on this machine find the node without flags.
        let _ = std::fs::write(
            node.config.data.join("admin.addr"),
            format!("http://{admin_addr}\n"),
        );
        let (shutdown, mut stopped) = watch::channel(false);
        let app = admin::router(node.clone(), token.clone());
        let admin_task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "admin API stopped");
            }
        });
        Ok(RunningNode {
            node,
            admin_addr,
            token,
            token_source,
            reloaded,
            gateway,
            gateway_task,
            shutdown,
            admin_task,
            timer_task,
            reaper_task,
        })
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.node.config.data.clone()
    }

    /// Graceful stop: the admin API stops taking requests, every live actor
    /// finishes its queue and writes its snapshot, and the store is flushed.
    pub async fn shutdown(self) -> Result<usize, StoreError> {
        let _ = self.shutdown.send(true);
        let _ = self.admin_task.await;
        // No new work from timers or event deliveries while actors stop.
        self.timer_task.abort();
        self.reaper_task.abort();
        self.node.gateway.stop();
        if let Some(t) = self.gateway_task {
            t.abort();
        }
        self.node.events.stop();
        let mut stopped = 0;
        for module in self.node.router.modules() {
            let handles = module.actors.handles();
            stopped += handles.len();
            futures::future::join_all(handles.iter().map(|h| h.stop(true))).await;
        }
        self.node.store.flush().await?;
        Ok(stopped)
    }
}
