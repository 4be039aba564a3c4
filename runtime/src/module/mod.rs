//! Modules: named, versioned deployments of components, with their placement kind
//! and settings. This folder owns the registry (persisted in the store), deploy,
//! swap and undeploy.

mod deploy;

pub use deploy::{DeployError, DeployRequest, Deployed, SwapSummary, deploy, load_all, undeploy};

use crate::host::{ActorCtx, BindingsPre};
use crate::metrics::ModuleMetrics;
use crate::router::ActorTable;
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// Placement of a module's actors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Exactly one actor (key ""): a global service.
    Singleton,
    /// One actor per key, created on its first message, passivated when idle.
    Keyed,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Singleton => "singleton",
            Kind::Keyed => "keyed",
        })
    }
}

/// When an actor's state reaches the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// On an interval, at passivation and at graceful shutdown.
    #[default]
    Interval,
    /// After every message, committed to disk before the reply is released: an
    /// acknowledged message is never lost.
    EveryMessage,
}

/// A module's settings, chosen at deploy (defaults from the node config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleSettings {
    pub kind: Kind,
    pub deadline_ms: u64,
    pub memory_mb: u32,
    #[serde(default)]
    pub durability: Durability,
    pub idle_timeout_ms: u64,
    pub snapshot_interval_ms: u64,
    pub mailbox: usize,
}

/// Settings asked for in a deploy; unset fields keep the module's current value
/// (or the node default for a new module).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SettingsRequest {
    pub kind: Option<Kind>,
    pub deadline_ms: Option<u64>,
    pub memory_mb: Option<u32>,
    pub durability: Option<Durability>,
    pub idle_timeout_ms: Option<u64>,
    pub snapshot_interval_ms: Option<u64>,
    pub mailbox: Option<usize>,
}

/// One deployed version, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: u32,
    pub sha256: String,
    pub size: u64,
    pub deployed_at_ms: u64,
}

/// A module's registry entry, as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleRecord {
    pub settings: ModuleSettings,
    /// Oldest first; the last few are kept for rollback.
    pub versions: Vec<VersionRecord>,
    /// The version actors run.
    pub active: u32,
}

impl ModuleRecord {
    pub fn version(&self, v: u32) -> Option<&VersionRecord> {
        self.versions.iter().find(|r| r.version == v)
    }

    pub fn latest(&self) -> u32 {
        self.versions.iter().map(|v| v.version).max().unwrap_or(0)
    }
}

/// A version compiled and linked, ready to instantiate.
pub struct LoadedVersion {
    pub version: u32,
    pub sha256: String,
    pub pre: BindingsPre<ActorCtx>,
}

/// A deployed module at run time.
pub struct Module {
    pub name: String,
    settings: ArcSwap<ModuleSettings>,
    current: ArcSwap<LoadedVersion>,
    pub(crate) actors: ActorTable,
    pub metrics: ModuleMetrics,
    record: Mutex<ModuleRecord>,
}

/// What `GET /v1/modules/{name}` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleInfo {
    pub name: String,
    pub kind: Kind,
    pub version: u32,
    pub sha256: String,
    pub size: u64,
    pub deployed_at_ms: u64,
    pub live_actors: usize,
    pub settings: ModuleSettings,
    pub versions: Vec<VersionRecord>,
}

impl Module {
    pub(crate) fn new(
        name: String,
        record: ModuleRecord,
        current: Arc<LoadedVersion>,
        metrics: ModuleMetrics,
    ) -> Module {
        Module {
            name,
            settings: ArcSwap::from_pointee(record.settings.clone()),
            current: ArcSwap::new(current),
            actors: ActorTable::default(),
            metrics,
            record: Mutex::new(record),
        }
    }

    pub fn settings(&self) -> Arc<ModuleSettings> {
        self.settings.load_full()
    }

    /// The version new activations run.
    pub fn current(&self) -> Arc<LoadedVersion> {
        self.current.load_full()
    }

    pub fn record(&self) -> ModuleRecord {
        self.record.lock().expect("module record poisoned").clone()
    }

    pub(crate) fn set_record(&self, record: ModuleRecord) {
        self.settings.store(Arc::new(record.settings.clone()));
        *self.record.lock().expect("module record poisoned") = record;
    }

    pub(crate) fn set_current(&self, v: Arc<LoadedVersion>) {
        self.current.store(v);
    }

    pub fn info(&self) -> ModuleInfo {
        let record = self.record();
        let current = self.current();
        let vr = record.version(current.version).cloned();
        ModuleInfo {
            name: self.name.clone(),
            kind: record.settings.kind,
            version: current.version,
            sha256: current.sha256.clone(),
            size: vr.as_ref().map(|v| v.size).unwrap_or(0),
            deployed_at_ms: vr.as_ref().map(|v| v.deployed_at_ms).unwrap_or(0),
            live_actors: self.actors.len(),
            settings: record.settings.clone(),
            versions: record.versions.clone(),
        }
    }

    /// Live actors of this module.
    pub fn actors(&self) -> Vec<crate::actor::ActorInfo> {
        let mut v: Vec<_> = self.actors.handles().iter().map(|h| h.info()).collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }
}
