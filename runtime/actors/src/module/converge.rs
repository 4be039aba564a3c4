//! Bringing a module to a registry record decided elsewhere: what a node of a
//! cluster does when another node deployed, swapped, canaried, promoted,
//! rolled back or undeployed it. The record is the truth; this node's live
//! actors move to the versions it names (the same swap as a local deploy, so
//! state and queued messages carry over), fetching components it lacks from a
//! [`ComponentSource`].

use super::deploy::{DeployError, install_recorded, load_recorded, prune_components, undeploy};
use super::swap::{SwapSummary, switch};
use super::{ModuleRecord, Routing};
use crate::Runtime;
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Where a node finds an uploaded component it does not hold (a cluster's
/// object store).
pub trait ComponentSource: Send + Sync {
    /// The component whose sha256 (hex) is `sha256`.
    fn fetch<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>>;
}

/// What [`converge`] changed.
#[derive(Debug)]
pub enum Converged {
    /// The module already matched the record.
    Unchanged,
    /// The module was new here: installed at the record's versions.
    Installed,
    /// Live actors moved to the record's versions.
    Swapped(SwapSummary),
    /// Only settings or kept versions changed.
    Updated,
    /// The record is gone: the module was undeployed here.
    Removed,
}

/// Makes this node's module `name` match `want` (`None`: undeployed).
pub async fn converge(
    node: &Arc<Runtime>,
    name: &str,
    want: Option<ModuleRecord>,
    source: &dyn ComponentSource,
) -> Result<Converged, DeployError> {
    let Some(want) = want else {
        return match node.router.module(name) {
            Some(_) => undeploy(node, name).await.map(|()| Converged::Removed),
            None => Ok(Converged::Unchanged),
        };
    };
    if let Some(m) = node.router.module(name)
        && m.record().settings.kind != want.settings.kind
    {
        // A kind cannot change in place: the cluster undeployed and
        // redeployed it while this node was away.
        undeploy(node, name).await?;
    }
    let _serial = node.deploy_lock.lock().await;
    let existing = node.router.module(name);
    if existing.as_ref().is_some_and(|m| m.record() == want) {
        return Ok(Converged::Unchanged);
    }
    if node.tenants.get(&want.tenant).is_none() {
        return Err(DeployError::UnknownTenant(want.tenant.clone()));
    }
    let mut needed = vec![want.active];
    needed.extend(want.canary.map(|c| c.version));
    for v in &needed {
        let Some(vr) = want.version(*v) else {
            return Err(DeployError::UnknownVersion {
                name: name.to_owned(),
                version: *v,
                kept: want.versions.iter().map(|v| v.version).collect(),
            });
        };
        if !node.store.component_path(&vr.sha256).exists() {
            let bytes = source.fetch(&vr.sha256).await.map_err(|e| {
                DeployError::Internal(format!(
                    "cannot fetch component {} of `{name}` version {v}: {e}",
                    vr.sha256
                ))
            })?;
            let got = hex::encode(Sha256::digest(&bytes));
            if got != vr.sha256 {
                return Err(DeployError::Internal(format!(
                    "component of `{name}` version {v} fetched with sha256 {got}, expected {}",
                    vr.sha256
                )));
            }
            node.store.put_component(&vr.sha256, &bytes)?;
        }
    }
    let stable = load_recorded(node, name, &want, want.active).await?;
    let canary = match want.canary {
        Some(c) => Some((
            load_recorded(node, name, &want, c.version).await?,
            c.percent,
        )),
        None => None,
    };
    let next = Routing { stable, canary };
    let (active, canary_version) = (want.active, want.canary.map(|c| c.version));
    let outcome = match existing {
        None => {
            node.store.put_module(name, &want)?;
            install_recorded(node, name, want, next)?;
            Converged::Installed
        }
        Some(module) => {
            let now = module.routing();
            let same_routing = now.stable.version == next.stable.version
                && now.canary.as_ref().map(|(v, p)| (v.version, *p))
                    == next.canary.as_ref().map(|(v, p)| (v.version, *p));
            let previous = module.record();
            module.set_record(want.clone());
            let outcome = if same_routing {
                Converged::Updated
            } else {
                match switch(&module, next).await {
                    Ok(s) => Converged::Swapped(s),
                    Err(e) => {
                        module.set_record(previous);
                        return Err(e);
                    }
                }
            };
            node.store.put_module(name, &want)?;
            outcome
        }
    };
    tracing::info!(module = name, active, canary = ?canary_version, outcome = ?outcome, "converged to the cluster's record");
    prune_components(node);
    Ok(outcome)
}
