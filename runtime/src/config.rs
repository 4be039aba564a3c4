//! The node's configuration file: the sections each part owns (`[limits]`
//! from anthill-core, `[actors]`, `[admission]`, `[events]` and `[logs]` from
//! anthill-actors, `[gateway]` from anthill-gateway, `[cluster]` from anthill-cluster,
//! `[traces]` from the
//! node's telemetry), composed with the
//! node's own addresses, read from an optional TOML file and then overridden
//! by command-line flags.

use crate::telemetry::TraceSettings;
use anthill_actors::events::EventSettings;
use anthill_actors::logs::LogSettings;
use anthill_actors::router::AdmissionSettings;
use anthill_actors::{ActorSettings, RuntimeConfig};
use anthill_cluster::ClusterSettings;
use anthill_core::Limits;
use anthill_gateway::GatewaySettings;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything `anthill serve` can be told. Defaults are safe for a public host:
/// the admin API binds loopback only and every guest call is bounded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// Where the module registry, snapshots, compile cache and token live.
    pub data: PathBuf,
    /// Precompiled components [default: DATA/cache]. Several nodes of the same
    /// build may share one.
    pub cache: Option<PathBuf>,
    /// Admin HTTP API address. Loopback unless an operator says otherwise.
    pub admin: SocketAddr,
    /// Player QUIC address (the gateway): `anthill/1` and WebTransport.
    pub quic: SocketAddr,
    /// Web port: WebSocket players at `/ws` and the browser arena at `/play`.
    pub web: SocketAddr,
    /// Admin token. When unset: `ANTHILL_TOKEN`, else `DATA/admin.token`
    /// (generated on first start, mode 0600).
    pub admin_token: Option<String>,
    /// Read-only token for `GET /metrics`. When unset: `ANTHILL_METRICS_TOKEN`,
    /// else `DATA/metrics.token` (generated on first start, mode 0600).
    pub metrics_token: Option<String>,
    pub limits: Limits,
    pub actors: ActorSettings,
    /// Inbound rate limit and circuit breaker per actor.
    pub admission: AdmissionSettings,
    pub events: EventSettings,
    /// Guest output kept and let through per module.
    pub logs: LogSettings,
    pub gateway: GatewaySettings,
    /// OpenTelemetry export.
    pub traces: TraceSettings,
    /// Joining a cluster through NATS JetStream (off unless servers are set).
    pub cluster: ClusterSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("./anthill-data"),
            cache: None,
            admin: SocketAddr::from(([127, 0, 0, 1], 7350)),
            quic: SocketAddr::from(([127, 0, 0, 1], 7351)),
            web: SocketAddr::from(([127, 0, 0, 1], 7352)),
            admin_token: None,
            metrics_token: None,
            limits: Limits::default(),
            actors: ActorSettings::default(),
            admission: AdmissionSettings::default(),
            events: EventSettings::default(),
            logs: LogSettings::default(),
            gateway: GatewaySettings::default(),
            traces: TraceSettings::default(),
            cluster: ClusterSettings::default(),
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML config file; missing fields keep their defaults.
    pub(crate) fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Checks cross-field rules so a bad config fails at start, not at first use.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.runtime().validate().map_err(ConfigError::Invalid)?;
        self.cluster.validate().map_err(ConfigError::Invalid)
    }

    /// The compile cache directory.
    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.cache
            .clone()
            .unwrap_or_else(|| self.data.join("cache"))
    }

    /// The actor runtime's sections.
    pub(crate) fn runtime(&self) -> RuntimeConfig {
        RuntimeConfig {
            limits: self.limits.clone(),
            actors: self.actors.clone(),
            admission: self.admission.clone(),
            events: self.events.clone(),
            logs: self.logs.clone(),
            shared_cache: !self.cache_dir().starts_with(&self.data),
        }
    }
}
