//! Deploy, undeploy, and reload at start. A deploy is all or nothing: the
//! component is validated and compiled before anything changes, and the registry
//! record is written only once the new version is live.

use super::swap::{SwapSummary, switch};
use super::{
    CanaryRecord, Kind, LoadedVersion, Module, ModuleRecord, ModuleSettings, Routing,
    SettingsRequest, VersionRecord,
};
use crate::Runtime;
use anthill_core::CallError;
use anthill_core::DEFAULT_TENANT;
use anthill_core::now_ms;
use anthill_engine::ComponentError;
use anthill_store::StoreError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Versions kept per module for rollback.
pub(crate) const KEEP_VERSIONS: usize = 5;

/// A component upload.
pub struct DeployRequest {
    /// The module's name.
    pub name: String,
    /// Settings asked for (unset: the current or default value).
    pub settings: SettingsRequest,
    /// The component.
    pub bytes: bytes::Bytes,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployed {
    /// The module's name.
    pub name: String,
    /// The version this deploy created.
    pub version: u32,
    /// The component's sha256, hex.
    pub sha256: String,
    /// The component's size in bytes.
    pub size: u64,
    /// Its placement kind.
    pub kind: Kind,
    /// Compile time, or cache load time when `cached`.
    pub compile_ms: f64,
    /// Loaded from the precompiled cache.
    pub cached: bool,
    /// Present when the deploy replaced a running version.
    pub swap: Option<SwapSummary>,
    /// The component and settings were those of the running version: nothing
    /// changed (`version` is the running one). `force=true` redeploys anyway.
    #[serde(default)]
    pub unchanged: bool,
    /// In a cluster: which other nodes serve the new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<anthill_core::cluster::Rollout>,
}

/// Why a deploy, swap or undeploy was refused; each names the fix.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(
        "invalid module name `{0}`: use 1 to 64 characters from a-z, 0-9, `-` and `_`, starting with a letter or digit"
    )]
    /// The name is not a valid module name.
    InvalidName(String),
    /// The upload is not an acceptable component.
    #[error(transparent)]
    Component(#[from] ComponentError),
    /// A setting is out of range.
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error(
        "module `{name}` is {existing}; to deploy it as {requested}, run `anthill undeploy {name}` first"
    )]
    /// A new version may not change the placement kind.
    KindChange {
        /// The module.
        name: String,
        /// Its kind now.
        existing: Kind,
        /// The kind asked for.
        requested: Kind,
    },
    /// No module of that name is deployed.
    #[error("module `{0}` is not deployed")]
    NotFound(String),
    /// Promote without a canary in progress.
    #[error("module `{0}` has no canary in progress")]
    NoCanary(String),
    /// Rollback with no earlier version kept.
    #[error("module `{0}` has no earlier version to roll back to")]
    NoPreviousVersion(String),
    /// Rollback to a version that is not kept.
    #[error("module `{name}` has no version {version} (kept: {kept:?})")]
    UnknownVersion {
        /// The module.
        name: String,
        /// The version asked for.
        version: u32,
        /// The versions kept.
        kept: Vec<u32>,
    },
    #[error(
        "module `{name}` has a canary of version {version} in progress: `anthill promote {name}` or `anthill rollback {name}` first"
    )]
    /// A new deploy while a canary is in progress.
    CanaryInProgress {
        /// The module.
        name: String,
        /// The canary's version.
        version: u32,
    },
    /// A canary percentage outside 1..=99.
    #[error("canary percentage {0} must be between 1 and 99")]
    CanaryPercent(u8),
    #[error(
        "swap of `{module}` to version {version} failed at {actor}: {error}; every actor is back on its previous version"
    )]
    /// An actor refused the new version (its restore failed); every actor was rolled back.
    SwapFailed {
        /// The module.
        module: String,
        /// The version refused.
        version: u32,
        /// The actor that refused it.
        actor: String,
        /// Why.
        error: CallError,
    },
    /// The tenant asked for does not exist.
    #[error("tenant `{0}` does not exist (create it with `anthill tenants create {0}`)")]
    UnknownTenant(String),
    #[error("module `{name}` belongs to another tenant: pick another name")]
    /// Another tenant owns a module of that name.
    NameTaken {
        /// The module.
        name: String,
    },
    #[error(
        "module `{name}` belongs to tenant `{owner}`; a module cannot change tenants (undeploy it first)"
    )]
    /// A new version may not move a module to another tenant.
    TenantChange {
        /// The module.
        name: String,
        /// The tenant that owns it.
        owner: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fault of the node.
    #[error("internal error: {0}")]
    Internal(String),
    #[error(
        "module `{name}` changed on another node while this change ran ({detail}); this node follows the cluster's version: look at `anthill modules` and retry"
    )]
    /// In a cluster: another node changed the module first.
    ClusterConflict {
        /// The module.
        name: String,
        /// What moved.
        detail: String,
    },
    /// In a cluster: NATS did not take the change.
    #[error(
        "the cluster did not take the change ({0}); this node keeps the cluster's version: check that NATS is reachable (/healthz) and retry"
    )]
    ClusterUnavailable(String),
}

fn validate_name(name: &str) -> Result<(), DeployError> {
    if anthill_core::module::is_module_name(name) {
        Ok(())
    } else {
        Err(DeployError::InvalidName(name.to_owned()))
    }
}

fn resolve_settings(
    node: &Runtime,
    name: &str,
    base: Option<&ModuleSettings>,
    req: &SettingsRequest,
) -> Result<ModuleSettings, DeployError> {
    let cfg = &node.config;
    let defaults = ModuleSettings {
        kind: Kind::Singleton,
        deadline_ms: cfg.limits.deadline_ms,
        memory_mb: cfg.limits.memory_mb,
        durability: Default::default(),
        idle_timeout_ms: cfg.actors.idle_timeout_ms,
        snapshot_interval_ms: cfg.actors.snapshot_interval_ms,
        mailbox: cfg.actors.mailbox,
        players: Default::default(),
    };
    let base = base.cloned().unwrap_or(defaults);
    if let Some(kind) = req.kind
        && kind != base.kind
        && node.router.module(name).is_some()
    {
        return Err(DeployError::KindChange {
            name: name.to_owned(),
            existing: base.kind,
            requested: kind,
        });
    }
    let s = ModuleSettings {
        kind: req.kind.unwrap_or(base.kind),
        deadline_ms: req.deadline_ms.unwrap_or(base.deadline_ms),
        memory_mb: req.memory_mb.unwrap_or(base.memory_mb),
        durability: req.durability.unwrap_or(base.durability),
        idle_timeout_ms: req.idle_timeout_ms.unwrap_or(base.idle_timeout_ms),
        snapshot_interval_ms: req
            .snapshot_interval_ms
            .unwrap_or(base.snapshot_interval_ms),
        mailbox: req.mailbox.unwrap_or(base.mailbox),
        players: req.players.unwrap_or(base.players),
    };
    if s.deadline_ms == 0 || s.deadline_ms > 60_000 {
        return Err(DeployError::Settings(format!(
            "deadline_ms {} must be between 1 and 60000",
            s.deadline_ms
        )));
    }
    if s.memory_mb == 0 || s.memory_mb > cfg.limits.max_memory_mb {
        return Err(DeployError::Settings(format!(
            "memory_mb {} must be between 1 and the node's limits.max_memory_mb ({})",
            s.memory_mb, cfg.limits.max_memory_mb
        )));
    }
    if s.mailbox == 0 || s.mailbox > 1_000_000 {
        return Err(DeployError::Settings(format!(
            "mailbox {} must be between 1 and 1000000",
            s.mailbox
        )));
    }
    if s.idle_timeout_ms == 0 || s.snapshot_interval_ms == 0 {
        return Err(DeployError::Settings(
            "idle_timeout_ms and snapshot_interval_ms must be > 0".into(),
        ));
    }
    Ok(s)
}

/// Compiles (or loads from the cache) and links a component, off the async
/// threads: Cranelift can take seconds for a large component.
pub(super) async fn load_version(
    node: &Arc<Runtime>,
    version: u32,
    sha256: &str,
    bytes: bytes::Bytes,
) -> Result<(Arc<LoadedVersion>, f64, bool), DeployError> {
    let n = node.clone();
    let sha = sha256.to_owned();
    let compiled = tokio::task::spawn_blocking(move || n.engine.compile(&sha, &bytes))
        .await
        .map_err(|e| DeployError::Internal(format!("compile task failed: {e}")))??;
    if compiled.cached {
        node.metrics.compile_cache_hits.inc();
    } else {
        node.metrics.compiles.inc();
        node.metrics
            .compile_seconds
            .observe(compiled.elapsed.as_secs_f64());
    }
    let pre = node.engine.prepare(&compiled.component)?;
    Ok((
        Arc::new(LoadedVersion {
            version,
            sha256: sha256.to_owned(),
            pre,
        }),
        compiled.elapsed.as_secs_f64() * 1000.0,
        compiled.cached,
    ))
}

/// Deploys a component under a name: a new module, or a new version of an
/// existing one whose live actors are swapped to it with their state.
pub async fn deploy(node: &Arc<Runtime>, req: DeployRequest) -> Result<Deployed, DeployError> {
    validate_name(&req.name)?;
    let _serial = node.deploy_lock.lock().await;
    let existing = node.router.module(&req.name);
    let base = existing.as_ref().map(|m| m.record());
    let tenant = match (&base, &req.settings.tenant) {
        (Some(record), Some(wanted)) if &record.tenant != wanted => {
            // A tenant's token never learns who owns a name it cannot use.
            return Err(
                if node.tenants.get(wanted).is_some_and(|t| !t.is_default()) {
                    DeployError::NameTaken {
                        name: req.name.clone(),
                    }
                } else {
                    DeployError::TenantChange {
                        name: req.name.clone(),
                        owner: record.tenant.clone(),
                    }
                },
            );
        }
        (Some(record), _) => record.tenant.clone(),
        (None, wanted) => {
            let name = wanted.clone().unwrap_or_else(|| DEFAULT_TENANT.to_owned());
            if node.tenants.get(&name).is_none() {
                return Err(DeployError::UnknownTenant(name));
            }
            name
        }
    };
    let settings = resolve_settings(
        node,
        &req.name,
        base.as_ref().map(|r| &r.settings),
        &req.settings,
    )?;
    let sha256 = hex::encode(Sha256::digest(&req.bytes));
    let size = req.bytes.len() as u64;
    if let (Some(_), Some(record)) = (&existing, &base)
        && req.settings.force != Some(true)
        && req.settings.canary.is_none()
        && record.canary.is_none()
        && record.settings == settings
        && record
            .versions
            .iter()
            .any(|v| v.version == record.active && v.sha256 == sha256)
    {
        tracing::info!(module = %req.name, version = record.active, %sha256, "redeploy of the running component: nothing to do");
        return Ok(Deployed {
            name: req.name,
            version: record.active,
            sha256,
            size,
            kind: settings.kind,
            compile_ms: 0.0,
            cached: true,
            swap: None,
            unchanged: true,
            rollout: None,
        });
    }
    let version = base.as_ref().map(|r| r.latest() + 1).unwrap_or(1);
    let (loaded, compile_ms, cached) =
        load_version(node, version, &sha256, req.bytes.clone()).await?;
    node.store.put_component(&sha256, &req.bytes)?;

    let vr = VersionRecord {
        version,
        sha256: sha256.clone(),
        size,
        deployed_at_ms: now_ms(),
    };
    let swap = match existing {
        None => {
            if req.settings.canary.is_some() {
                return Err(DeployError::Settings(format!(
                    "`{}` is not deployed yet: a canary needs a running version to compare with",
                    req.name
                )));
            }
            let record = ModuleRecord {
                settings: settings.clone(),
                versions: vec![vr],
                active: version,
                canary: None,
                tenant: tenant.clone(),
            };
            node.store.put_module(&req.name, &record)?;
            let routing = Routing {
                stable: loaded,
                canary: None,
            };
            let module = Module::new(
                req.name.clone(),
                record,
                routing,
                node.metrics.module(&req.name),
                gates(node, &tenant, 0),
            );
            node.router.install(Arc::new(module));
            None
        }
        Some(module) => {
            let mut record = base.expect("existing module has a record");
            let routing = module.routing();
            if let Some((c, _)) = &routing.canary {
                return Err(DeployError::CanaryInProgress {
                    name: req.name.clone(),
                    version: c.version,
                });
            }
            let next = match req.settings.canary {
                Some(pct) if pct == 0 || pct >= 100 => return Err(DeployError::CanaryPercent(pct)),
                Some(pct) => {
                    record.canary = Some(CanaryRecord {
                        version,
                        percent: pct,
                    });
                    Routing {
                        stable: routing.stable.clone(),
                        canary: Some((loaded, pct)),
                    }
                }
                None => {
                    record.active = version;
                    Routing {
                        stable: loaded,
                        canary: None,
                    }
                }
            };
            record.settings = settings.clone();
            record.versions.push(vr);
            // Keep the last few versions (and always the stable one).
            while record.versions.len() > KEEP_VERSIONS {
                let Some(pos) = record
                    .versions
                    .iter()
                    .position(|v| v.version != record.active)
                else {
                    break;
                };
                record.versions.remove(pos);
            }
            // New settings (deadline, memory cap...) apply to the new instances.
            let previous = module.record();
            module.set_record(record.clone());
            let summary = match switch(&module, next).await {
                Ok(s) => s,
                Err(e) => {
                    module.set_record(previous);
                    return Err(e);
                }
            };
            node.store.put_module(&req.name, &record)?;
            Some(summary)
        }
    };
    node.metrics.deploys.with_label_values(&["ok"]).inc();
    tracing::info!(module = %req.name, version, %sha256, size, cached, compile_ms, "deployed");
    prune_components(node);
    Ok(Deployed {
        name: req.name,
        version,
        sha256,
        size,
        kind: settings.kind,
        compile_ms,
        cached,
        swap,
        unchanged: false,
        rollout: None,
    })
}

/// Removes a module: its actors stop, its snapshots are deleted.
/// A module's share of the node, from the node's limits and its tenant.
fn gates(node: &Runtime, tenant: &str, stored_bytes: i64) -> super::ModuleGates {
    let tenant = node.tenants.get(tenant).unwrap_or_else(|| {
        tracing::error!(
            tenant,
            "a module names a tenant that does not exist; it runs as the default tenant's"
        );
        node.tenants.default_tenant()
    });
    super::ModuleGates {
        concurrency: node.config.module_concurrency(),
        admission: node.config.admission.clone(),
        tenant,
        stored_bytes,
    }
}

/// Stops a module's actors and deletes it, its state, timers and subscriptions.
pub async fn undeploy(node: &Arc<Runtime>, name: &str) -> Result<(), DeployError> {
    let _serial = node.deploy_lock.lock().await;
    let module = node
        .router
        .uninstall(name)
        .ok_or_else(|| DeployError::NotFound(name.to_owned()))?;
    node.events.remove_module(name);
    node.timers.remove_module(name);
    node.rooms().remove_module(name);
    let stops = module.actors.handles();
    futures::future::join_all(stops.iter().map(|h| h.stop(false))).await;
    node.store.remove_module(name)?;
    node.store.remove_module_state(name)?;
    let removed = node.store.remove_snapshots(name)?;
    module.leave_tenant();
    node.logs.remove_module(name);
    node.metrics.forget(name);
    // Make the removal durable now: sled frees the space (large snapshots
    // are files of their own) once the removal is on disk.
    node.store.flush().await?;
    tracing::info!(module = name, snapshots = removed, "undeployed");
    prune_components(node);
    Ok(())
}

/// Deletes uploaded components that no kept version of any module references
/// (versions past the last few, undeployed modules, failed swaps), and their
/// precompiled artifacts when the compile cache is this node's own, inside its
/// data dir (a cache shared with other nodes is theirs too). Runs under the deploy lock, so no
/// upload is in flight. A failure is logged: it only costs disk space.
pub(super) fn prune_components(node: &Runtime) {
    let referenced = node.store.modules::<ModuleRecord>().map(|records| {
        records
            .into_iter()
            .flat_map(|(_, r)| r.versions.into_iter().map(|v| v.sha256))
            .collect::<std::collections::HashSet<_>>()
    });
    match referenced.and_then(|keep| node.store.prune_components(&keep)) {
        Ok(removed) => {
            for sha256 in removed {
                if !node.config.shared_cache {
                    node.engine.forget_compiled(&sha256);
                }
                tracing::info!(%sha256, "removed a component no module version uses");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot prune unused components"),
    }
}

pub(super) async fn load_recorded(
    node: &Arc<Runtime>,
    name: &str,
    record: &ModuleRecord,
    version: u32,
) -> Result<Arc<LoadedVersion>, DeployError> {
    let vr = record
        .version(version)
        .ok_or_else(|| DeployError::UnknownVersion {
            name: name.to_owned(),
            version,
            kept: record.versions.iter().map(|v| v.version).collect(),
        })?;
    let bytes = bytes::Bytes::from(node.store.read_component(&vr.sha256)?);
    Ok(load_version(node, vr.version, &vr.sha256, bytes).await?.0)
}

/// Reloads every module in the registry (at start). Precompiled components come
/// from the cache, so this takes milliseconds. A module that cannot be loaded is
/// reported and skipped; the others still start.
pub async fn load_all(node: &Arc<Runtime>) -> Result<Vec<String>, StoreError> {
    let mut loaded = Vec::new();
    for (name, record) in node.store.modules::<ModuleRecord>()? {
        let stable = match load_recorded(node, &name, &record, record.active).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(module = %name, error = %e, "cannot reload module; skipping");
                continue;
            }
        };
        let canary = match record.canary {
            None => None,
            Some(c) => match load_recorded(node, &name, &record, c.version).await {
                Ok(v) => Some((v, c.percent)),
                Err(e) => {
                    tracing::error!(module = %name, error = %e, "cannot reload the canary version; serving every key from the stable one");
                    None
                }
            },
        };
        let version = stable.version;
        install_recorded(node, &name, record, Routing { stable, canary })?;
        tracing::info!(module = %name, version, "reloaded");
        loaded.push(name);
    }
    Ok(loaded)
}

/// Installs a module from its registry record, already loaded: at start, and
/// when another node of a cluster deployed it.
pub(super) fn install_recorded(
    node: &Runtime,
    name: &str,
    record: ModuleRecord,
    routing: Routing,
) -> Result<(), StoreError> {
    // Storage is counted for tenants with quotas: the default has none.
    let stored = if record.tenant == DEFAULT_TENANT {
        0
    } else {
        node.store.snapshot_bytes(name)? as i64
    };
    let tenant = record.tenant.clone();
    let module = Module::new(
        name.to_owned(),
        record,
        routing,
        node.metrics.module(name),
        gates(node, &tenant, stored),
    );
    node.router.install(Arc::new(module));
    Ok(())
}
