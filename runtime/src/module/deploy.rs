//! Deploy, swap, undeploy, and reload at start. A deploy is all or nothing: the
//! component is validated and compiled before anything changes, and the registry
//! record is written only once the new version is live.

use super::{
    Kind, LoadedVersion, Module, ModuleRecord, ModuleSettings, SettingsRequest, VersionRecord,
};
use crate::actor::{CallError, Control};
use crate::engine::{ComponentError, component_header};
use crate::node::{Node, now_ms};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Versions kept per module for rollback.
pub(crate) const KEEP_VERSIONS: usize = 5;

/// A component upload.
pub struct DeployRequest {
    pub name: String,
    pub settings: SettingsRequest,
    pub bytes: bytes::Bytes,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployed {
    pub name: String,
    pub version: u32,
    pub sha256: String,
    pub size: u64,
    pub kind: Kind,
    /// Compile time, or cache load time when `cached`.
    pub compile_ms: f64,
    pub cached: bool,
    /// Present when the deploy replaced a running version.
    pub swap: Option<SwapSummary>,
}

/// What swapping the live actors to a new version did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwapSummary {
    pub from_version: u32,
    pub to_version: u32,
    pub actors: usize,
    pub duration_ms: f64,
    pub max_stall_ms: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(
        "invalid module name `{0}`: use 1 to 64 characters from a-z, 0-9, `-` and `_`, starting with a letter or digit"
    )]
    InvalidName(String),
    #[error(transparent)]
    Component(#[from] ComponentError),
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error(
        "module `{name}` is {existing}; to deploy it as {requested}, run `anthill undeploy {name}` first"
    )]
    KindChange {
        name: String,
        existing: Kind,
        requested: Kind,
    },
    #[error("module `{0}` is not deployed")]
    NotFound(String),
    #[error("swap of `{module}` to version {version} failed at {actor}: {error}")]
    SwapFailed {
        module: String,
        version: u32,
        actor: String,
        error: CallError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

fn validate_name(name: &str) -> Result<(), DeployError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(DeployError::InvalidName(name.to_owned()))
    }
}

fn resolve_settings(
    node: &Node,
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
async fn load_version(
    node: &Arc<Node>,
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
pub async fn deploy(node: &Arc<Node>, req: DeployRequest) -> Result<Deployed, DeployError> {
    validate_name(&req.name)?;
    component_header(&req.bytes)?;
    let _serial = node.deploy_lock.lock().await;
    let existing = node.router.module(&req.name);
    let base = existing.as_ref().map(|m| m.record());
    let settings = resolve_settings(
        node,
        &req.name,
        base.as_ref().map(|r| &r.settings),
        &req.settings,
    )?;
    let sha256 = hex::encode(Sha256::digest(&req.bytes));
    let size = req.bytes.len() as u64;
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
            let record = ModuleRecord {
                settings: settings.clone(),
                versions: vec![vr],
                active: version,
            };
            node.store.put_module(&req.name, &record)?;
            let module = Module::new(
                req.name.clone(),
                record,
                loaded,
                node.metrics.module(&req.name),
            );
            node.router.install(Arc::new(module));
            None
        }
        Some(module) => {
            let mut record = base.expect("existing module has a record");
            record.settings = settings.clone();
            record.versions.push(vr);
            let excess = record.versions.len().saturating_sub(KEEP_VERSIONS);
            record.versions.drain(..excess);
            let from = record.active;
            record.active = version;
            // New settings (deadline, memory cap...) apply to the new instances.
            let previous = module.record();
            module.set_record(record.clone());
            let summary = match swap_all(&module, loaded, from).await {
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
    Ok(Deployed {
        name: req.name,
        version,
        sha256,
        size,
        kind: settings.kind,
        compile_ms,
        cached,
        swap,
    })
}

/// Switches a module to `to` and swaps every live actor to it concurrently.
async fn swap_all(
    module: &Arc<Module>,
    to: Arc<LoadedVersion>,
    from: u32,
) -> Result<SwapSummary, DeployError> {
    let started = Instant::now();
    let handles = module
        .actors
        .handles_after(|| module.set_current(to.clone()));
    let waits = handles.iter().map(|h| {
        let (done, wait) = tokio::sync::oneshot::channel();
        let sent = h
            .control
            .send(Control::Swap {
                to: to.clone(),
                done,
            })
            .is_ok();
        let key = h.status.key.clone();
        async move {
            if !sent {
                // The actor already exited: its successor activates on `to`.
                return (key, Ok(Duration::ZERO));
            }
            match wait.await {
                Ok(Ok(report)) => (key, Ok(report.stall)),
                Ok(Err(e)) => (key, Err(e)),
                Err(_) => (key, Ok(Duration::ZERO)),
            }
        }
    });
    let results = futures::future::join_all(waits).await;
    let mut max_stall = Duration::ZERO;
    for (key, r) in &results {
        match r {
            Ok(stall) => max_stall = max_stall.max(*stall),
            Err(e) => {
                return Err(DeployError::SwapFailed {
                    module: module.name.clone(),
                    version: to.version,
                    actor: crate::router::Address::new(module.name.clone(), key.clone())
                        .to_string(),
                    error: e.clone(),
                });
            }
        }
    }
    let summary = SwapSummary {
        from_version: from,
        to_version: to.version,
        actors: results.len(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        max_stall_ms: max_stall.as_secs_f64() * 1000.0,
    };
    tracing::info!(module = %module.name, from, to = to.version, sha256 = %to.sha256, actors = summary.actors, duration_ms = summary.duration_ms, max_stall_ms = summary.max_stall_ms, "swapped");
    Ok(summary)
}

/// Removes a module: its actors stop, its snapshots are deleted.
pub async fn undeploy(node: &Arc<Node>, name: &str) -> Result<(), DeployError> {
    let _serial = node.deploy_lock.lock().await;
    let module = node
        .router
        .uninstall(name)
        .ok_or_else(|| DeployError::NotFound(name.to_owned()))?;
    node.events.remove_module(name);
    node.timers.remove_module(name);
    let stops = module.actors.handles();
    futures::future::join_all(stops.iter().map(|h| h.stop(false))).await;
    node.store.remove_module(name)?;
    node.store.remove_module_state(name)?;
    let removed = node.store.remove_snapshots(name)?;
    tracing::info!(module = name, snapshots = removed, "undeployed");
    Ok(())
}

/// Reloads every module in the registry (at start). Precompiled components come
/// from the cache, so this takes milliseconds. A module that cannot be loaded is
/// reported and skipped; the others still start.
pub async fn load_all(node: &Arc<Node>) -> Result<Vec<String>, StoreError> {
    let mut loaded = Vec::new();
    for (name, record) in node.store.modules::<ModuleRecord>()? {
        let Some(vr) = record.version(record.active).cloned() else {
            tracing::error!(module = %name, active = record.active, "registry names an active version it does not list; skipping");
            continue;
        };
        let bytes = match node.store.read_component(&vr.sha256) {
            Ok(b) => bytes::Bytes::from(b),
            Err(e) => {
                tracing::error!(module = %name, error = %e, "cannot reload module; skipping");
                continue;
            }
        };
        match load_version(node, vr.version, &vr.sha256, bytes).await {
            Ok((version, ms, cached)) => {
                let module = Module::new(name.clone(), record, version, node.metrics.module(&name));
                node.router.install(Arc::new(module));
                tracing::info!(module = %name, version = vr.version, cached, load_ms = ms, "reloaded");
                loaded.push(name);
            }
            Err(e) => tracing::error!(module = %name, error = %e, "cannot reload module; skipping"),
        }
    }
    Ok(loaded)
}
