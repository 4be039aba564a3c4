//! The node's configuration: one struct, read from an optional TOML file and then
//! overridden by command-line flags. Every limit says what it protects against.

use crate::events::EventSettings;
use crate::gateway::GatewaySettings;
use crate::router::AdmissionSettings;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything `anthill serve` can be told. Defaults are safe for a public host:
/// the admin API binds loopback only and every guest call is bounded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the module registry, snapshots, compile cache and token live.
    pub data: PathBuf,
    /// Precompiled components [default: DATA/cache]. Several nodes of the same
    /// build may share one.
    pub cache: Option<PathBuf>,
    /// Admin HTTP API address. Loopback unless an operator says otherwise.
    pub admin: SocketAddr,
    /// Player QUIC address (the gateway).
    pub quic: SocketAddr,
    /// Admin token. When unset: `ANTHILL_TOKEN`, else `DATA/admin.token`
    /// (generated on first start, mode 0600).
    pub admin_token: Option<String>,
    pub limits: Limits,
    pub actors: ActorSettings,
    /// Inbound rate limit and circuit breaker per actor.
    pub admission: AdmissionSettings,
    pub events: EventSettings,
    pub gateway: GatewaySettings,
}

/// Caps on what one module, actor or request may use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Default per-call deadline of guest code: stops infinite loops.
    pub deadline_ms: u64,
    /// Default linear-memory cap per actor: stops unbounded allocation.
    pub memory_mb: u32,
    /// The largest memory cap a module may ask for; sizes the instance pool.
    pub max_memory_mb: u32,
    /// Live actors the instance pool holds at once: bounds host memory. Each
    /// live actor also takes about four kernel memory mappings (its linear
    /// memory and its async stack), and Linux allows 65530 per process by
    /// default (vm.max_map_count). Near this limit the least recently used idle
    /// actors are passivated to make room.
    pub max_actors: u32,
    /// Largest component upload: bounds admin-request memory.
    pub upload_limit_mb: u32,
    /// Largest message a module may send or a player may request: bounds
    /// per-message copies.
    pub max_message_bytes: usize,
    /// Default timeout of an admin or player request to a module.
    pub call_timeout_ms: u64,
    /// Longest timeout a guest `call` may ask for.
    pub max_call_timeout_ms: u64,
    /// Largest snapshot an actor may export: bounds the database and the
    /// memory of every write (a module returning 60 MiB per message would fill
    /// the disk). Over it, that snapshot fails and the previous one stays.
    pub max_snapshot_bytes: usize,
    /// WASI resources (pollables, streams, ...) one actor may hold at once:
    /// each costs host memory outside the guest's memory cap (~250 bytes), so
    /// an actor that never drops them would otherwise grow the node without
    /// bound.
    pub max_host_handles: usize,
    /// Timers one actor may hold: bounds the schedule and the store.
    pub max_timers_per_actor: usize,
    /// Topics one actor may subscribe to: bounds fan-out tables and cursors.
    pub max_subscriptions_per_actor: usize,
    /// Guest calls of one module that execute at once (the rest wait their
    /// turn, outside the deadline): a module whose actors all loop cannot
    /// take every worker thread from the others. 0 = the node's cores less
    /// one (at least 1).
    pub module_concurrency: usize,
}

/// Defaults for actor lifecycle; a module may override them at deploy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActorSettings {
    /// Messages an actor's mailbox holds before senders get an overload error.
    pub mailbox: usize,
    /// A keyed actor idle this long is snapshotted and dropped.
    pub idle_timeout_ms: u64,
    /// A live actor with unsaved changes is snapshotted this often.
    pub snapshot_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("./anthill-data"),
            cache: None,
            admin: SocketAddr::from(([127, 0, 0, 1], 7350)),
            quic: SocketAddr::from(([127, 0, 0, 1], 7351)),
            admin_token: None,
            limits: Limits::default(),
            actors: ActorSettings::default(),
            admission: AdmissionSettings::default(),
            events: EventSettings::default(),
            gateway: GatewaySettings::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline_ms: 100,
            memory_mb: 64,
            max_memory_mb: 256,
            max_actors: 12_000,
            upload_limit_mb: 64,
            max_message_bytes: 1 << 20,
            call_timeout_ms: 5_000,
            max_call_timeout_ms: 30_000,
            max_snapshot_bytes: 4 << 20,
            max_host_handles: 256,
            max_timers_per_actor: 64,
            max_subscriptions_per_actor: 64,
            module_concurrency: 0,
        }
    }
}

impl Default for ActorSettings {
    fn default() -> Self {
        ActorSettings {
            mailbox: 1024,
            idle_timeout_ms: 60_000,
            snapshot_interval_ms: 5_000,
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
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
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
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
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if l.memory_mb == 0 || l.memory_mb > l.max_memory_mb {
            return Err(ConfigError::Invalid(format!(
                "limits.memory_mb ({}) must be between 1 and limits.max_memory_mb ({})",
                l.memory_mb, l.max_memory_mb
            )));
        }
        if l.deadline_ms == 0 {
            return Err(ConfigError::Invalid(
                "limits.deadline_ms must be > 0".into(),
            ));
        }
        if l.max_actors == 0 {
            return Err(ConfigError::Invalid("limits.max_actors must be > 0".into()));
        }
        if l.max_host_handles < 16 {
            return Err(ConfigError::Invalid(
                "limits.max_host_handles must be at least 16 (a guest's standard streams take a few)".into(),
            ));
        }
        if l.max_snapshot_bytes == 0 {
            return Err(ConfigError::Invalid(
                "limits.max_snapshot_bytes must be > 0".into(),
            ));
        }
        if self.actors.mailbox == 0 {
            return Err(ConfigError::Invalid("actors.mailbox must be > 0".into()));
        }
        Ok(())
    }

    /// The compile cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache
            .clone()
            .unwrap_or_else(|| self.data.join("cache"))
    }

    /// Guest calls of one module that may execute at once.
    pub fn module_concurrency(&self) -> usize {
        match self.limits.module_concurrency {
            // All cores but one: whatever one module does, a core is left
            // for the node's I/O and the other modules.
            0 => {
                std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
            }
            n => n,
        }
    }

    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.call_timeout_ms)
    }
}
