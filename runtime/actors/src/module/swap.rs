//! Switching a module's live actors between versions: the deploy of a new
//! version, a canary, its promotion, a rollback. Each actor swaps on its own at
//! its next message boundary (snapshot, instantiate, restore, resume), so no
//! actor waits for another. If any actor's `restore` refuses its state, every
//! actor that already moved is moved back, carrying its state the same way (or
//! its pre-swap snapshot if the old version refuses the newer state), and the
//! routing goes back: every actor ends on one version.

use super::deploy::{DeployError, load_version};
use super::{CanaryRecord, LoadedVersion, Module, Routing, SwapProgress};
use crate::Runtime;
use crate::actor::{ActorHandle, Control, SwapReport};
use anthill_core::Address;
use anthill_core::CallError;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What a swap did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwapSummary {
    /// The version actors ran.
    pub from_version: u32,
    /// The version they run now.
    pub to_version: u32,
    /// Live actors moved.
    pub actors: usize,
    /// The whole swap.
    pub duration_ms: f64,
    /// The longest an actor stopped taking messages.
    pub max_stall_ms: f64,
    /// The median stall.
    pub p50_stall_ms: f64,
    /// The 99th-percentile stall.
    pub p99_stall_ms: f64,
    /// The canary split after the swap, if any.
    pub canary: Option<CanaryRecord>,
    /// In a cluster: which other nodes made the same switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<anthill_core::cluster::Rollout>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn swap_one(
    h: &ActorHandle,
    to: Arc<LoadedVersion>,
    fallback: Option<(Vec<u8>, u32)>,
) -> Result<SwapReport, CallError> {
    let (done, wait) = tokio::sync::oneshot::channel();
    if h.control
        .send(Control::Swap { to, fallback, done })
        .is_err()
    {
        // The actor already exited; its successor activates on the new routing.
        return Ok(SwapReport {
            stall: Duration::ZERO,
            carried: None,
        });
    }
    wait.await.unwrap_or(Ok(SwapReport {
        stall: Duration::ZERO,
        carried: None,
    }))
}

/// Installs `next` routing and moves every live actor to the version it names
/// for its key. On any refusal, moves everyone back and returns the error.
pub(super) async fn switch(
    module: &Arc<Module>,
    next: Routing,
) -> Result<SwapSummary, DeployError> {
    let started = Instant::now();
    let previous = module.routing();
    let from_version = previous.stable.version;
    let to_version = next
        .canary
        .as_ref()
        .map(|(v, _)| v.version)
        .unwrap_or(next.stable.version);
    let handles = module
        .actors
        .handles_after(|| module.set_routing(next.clone()));
    let targets: Vec<(ActorHandle, Arc<LoadedVersion>)> = handles
        .into_iter()
        .filter_map(|h| {
            let want = next.version_for(&h.status.key).clone();
            (h.status.version.load(Ordering::Relaxed) != want.version).then_some((h, want))
        })
        .collect();
    *module.progress.lock().expect("progress poisoned") = Some(SwapProgress {
        to_version,
        total: targets.len(),
        ..Default::default()
    });
    let outcomes = futures::future::join_all(targets.iter().map(|(h, to)| {
        let module = module.clone();
        async move {
            let r = swap_one(h, to.clone(), None).await;
            if let Some(p) = module.progress.lock().expect("progress poisoned").as_mut() {
                p.done += 1;
                p.failed += usize::from(r.is_err());
            }
            r
        }
    }))
    .await;
    *module.progress.lock().expect("progress poisoned") = None;

    let failure = targets
        .iter()
        .zip(&outcomes)
        .find_map(|((h, _), r)| r.as_ref().err().map(|e| (h.status.key.clone(), e.clone())));
    if let Some((key, error)) = failure {
        roll_back(module, &previous, &targets, &outcomes).await;
        return Err(DeployError::SwapFailed {
            module: module.name.clone(),
            version: to_version,
            actor: Address::new(module.name.clone(), key).to_string(),
            error,
        });
    }

    let mut stalls: Vec<Duration> = outcomes
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|r| r.stall))
        .collect();
    stalls.sort();
    for s in &stalls {
        module.metrics.swap_stall_seconds.observe(s.as_secs_f64());
    }
    let duration = started.elapsed();
    module.metrics.swap_seconds.observe(duration.as_secs_f64());
    let summary = SwapSummary {
        from_version,
        to_version,
        actors: stalls.len(),
        duration_ms: duration.as_secs_f64() * 1000.0,
        max_stall_ms: stalls
            .last()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0),
        p50_stall_ms: percentile(&stalls, 0.5),
        p99_stall_ms: percentile(&stalls, 0.99),
        canary: next.canary.as_ref().map(|(v, p)| CanaryRecord {
            version: v.version,
            percent: *p,
        }),
        rollout: None,
    };
    tracing::info!(
        module = %module.name,
        from = from_version,
        from_sha256 = %previous.stable.sha256,
        to = to_version,
        to_sha256 = %next.canary.as_ref().map(|(v, _)| &v.sha256).unwrap_or(&next.stable.sha256),
        actors = summary.actors,
        duration_ms = summary.duration_ms,
        max_stall_ms = summary.max_stall_ms,
        "swapped"
    );
    Ok(summary)
}

/// Puts back `previous` routing and returns every actor to the version it names,
/// including actors activated on the new version during the attempt.
async fn roll_back(
    module: &Arc<Module>,
    previous: &Arc<Routing>,
    attempted: &[(ActorHandle, Arc<LoadedVersion>)],
    outcomes: &[Result<SwapReport, CallError>],
) {
    let handles = module
        .actors
        .handles_after(|| module.set_routing((**previous).clone()));
    let moves = handles.into_iter().filter_map(|h| {
        let want = previous.version_for(&h.status.key).clone();
        if h.status.version.load(Ordering::Relaxed) == want.version {
            return None;
        }
        let fallback = attempted
            .iter()
            .zip(outcomes)
            .find(|((a, _), _)| a.id == h.id)
            .and_then(|(_, r)| r.as_ref().ok().and_then(|r| r.carried.clone()));
        Some((h, want, fallback))
    });
    let results = futures::future::join_all(moves.map(|(h, want, fallback)| async move {
        let r = swap_one(&h, want, fallback).await;
        (h.status.key.clone(), r)
    }))
    .await;
    for (key, r) in results {
        if let Err(e) = r {
            tracing::error!(module = %module.name, %key, error = %e, "could not move an actor back during a rollback; it stays on the new version");
        }
    }
    tracing::warn!(module = %module.name, version = previous.stable.version, "swap rolled back");
}

/// The deployed module `name`.
fn deployed(node: &Runtime, name: &str) -> Result<Arc<Module>, DeployError> {
    node.router
        .module(name)
        .ok_or_else(|| DeployError::NotFound(name.to_owned()))
}

/// Completes a canary: its version becomes the stable one for every key.
pub async fn promote(node: &Arc<Runtime>, name: &str) -> Result<SwapSummary, DeployError> {
    let _serial = node.deploy_lock.lock().await;
    let module = deployed(node, name)?;
    let routing = module.routing();
    let Some((canary, _)) = routing.canary.clone() else {
        return Err(DeployError::NoCanary(name.to_owned()));
    };
    settle_on(node, &module, canary).await
}

/// Goes back: ends a canary (its keys return to the stable version), or moves
/// the whole module to `to` (default: the version before the stable one),
/// carrying state.
pub async fn rollback(
    node: &Arc<Runtime>,
    name: &str,
    to: Option<u32>,
) -> Result<SwapSummary, DeployError> {
    let _serial = node.deploy_lock.lock().await;
    let module = deployed(node, name)?;
    let routing = module.routing();
    let record = module.record();
    let target = match (to, &routing.canary) {
        (None, Some(_)) => routing.stable.clone(),
        _ => {
            let wanted = match to {
                Some(v) => v,
                None => record
                    .versions
                    .iter()
                    .map(|v| v.version)
                    .filter(|v| *v < routing.stable.version)
                    .max()
                    .ok_or_else(|| DeployError::NoPreviousVersion(name.to_owned()))?,
            };
            let vr =
                record
                    .version(wanted)
                    .cloned()
                    .ok_or_else(|| DeployError::UnknownVersion {
                        name: name.to_owned(),
                        version: wanted,
                        kept: record.versions.iter().map(|v| v.version).collect(),
                    })?;
            if vr.version == routing.stable.version {
                routing.stable.clone()
            } else {
                let bytes = bytes::Bytes::from(node.store.read_component(&vr.sha256)?);
                load_version(node, vr.version, &vr.sha256, bytes).await?.0
            }
        }
    };
    settle_on(node, &module, target).await
}

/// The shared end of promote and rollback: every key moves to `target`
/// (carrying state), the canary ends, and the registry says so.
async fn settle_on(
    node: &Runtime,
    module: &Arc<Module>,
    target: Arc<LoadedVersion>,
) -> Result<SwapSummary, DeployError> {
    let summary = switch(
        module,
        Routing {
            stable: target.clone(),
            canary: None,
        },
    )
    .await?;
    let mut record = module.record();
    record.active = target.version;
    record.canary = None;
    node.store.put_module(&module.name, &record)?;
    module.set_record(record);
    Ok(summary)
}
