//! [`ClusterControl`]: the admin API of a clustered node. It is the node's
//! own control plane with the module changes made cluster-wide: each reads
//! the registry's record, changes this node (validated, compiled, swapped,
//! as alone), publishes the new record by compare-and-set, and waits for the
//! other nodes to report that they followed. Everything else is this node's.

use crate::Cluster;
use crate::registry::Listed;
use anthill_actors::actor::ActorInfo;
use anthill_actors::logs::{LogPage, LogQuery};
use anthill_actors::module::{DeployError, DeployRequest, Deployed, ModuleInfo, SwapSummary};
use anthill_actors::tenants::{Quotas, TenantError, TenantInfo};
use anthill_admin::{ControlPlane, SubscriptionInfo};
use anthill_core::cluster::{NodeState, NodeStatus, Rollout};
use anthill_core::{Address, CallError, Limits};
use anthill_store::{DeadLetter, StoreError};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A node's control plane, cluster-wide for module changes.
pub struct ClusterControl {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) node: Arc<dyn ControlPlane>,
}

/// What a module change on this node did, for [`ClusterControl::change`].
enum Change<T> {
    /// The registry must now hold this node's record of the module.
    Publish(T),
    /// Nothing changed; the registry already holds it.
    Unchanged(T),
}

impl ClusterControl {
    /// Runs `local` on this node between reading and publishing the
    /// registry's record of `name`, then waits for the rollout.
    async fn change<T, F>(&self, name: &str, local: F) -> Result<(T, Rollout), DeployError>
    where
        F: AsyncFnOnce() -> Result<Change<T>, DeployError>,
    {
        let registry = &self.cluster.registry;
        let guard = registry.change_lock().await;
        let listed = registry
            .listed(name)
            .await
            .map_err(|e| DeployError::ClusterUnavailable(e.to_string()))?;
        // Start from the cluster's record: this node may lag behind it.
        registry.apply(name, &listed).await?;
        let (value, revision) = match local().await? {
            Change::Unchanged(v) => (v, listed_revision(&listed)),
            Change::Publish(v) => {
                let record = self.cluster.runtime.router.module(name).map(|m| m.record());
                let published = async {
                    if let Some(r) = &record {
                        let mut versions = vec![r.active];
                        versions.extend(r.canary.map(|c| c.version));
                        for v in versions.iter().filter_map(|v| r.version(*v)) {
                            registry.put_component(&v.sha256).await?;
                        }
                    }
                    registry.publish(name, record.as_ref(), &listed).await
                }
                .await;
                match published {
                    Ok(rev) => (v, rev),
                    Err(e) => {
                        // Back to what the cluster holds (or held, when NATS
                        // cannot say): the registry is the truth.
                        let now = registry.listed(name).await.unwrap_or(listed);
                        if let Err(undo) = registry.apply(name, &now).await {
                            tracing::error!(module = name, error = %undo, "cannot return to the cluster's record after a refused change; the registry sync retries");
                        }
                        return Err(e);
                    }
                }
            }
        };
        drop(guard);
        let rollout = self.cluster.rollout(name, revision).await;
        Ok((value, rollout))
    }
}

impl ClusterControl {
    /// Publishes tenant records after a change made on this node. The admin
    /// API's tenant calls are synchronous: this waits on the publish from
    /// the handler's worker thread (`block_in_place`), a few milliseconds.
    fn publish_tenants(&self, names: &[&str]) -> Result<(), TenantError> {
        let tenants = self.cluster.tenants.clone();
        let published = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                for n in names {
                    tenants.publish(n).await?;
                }
                Ok::<_, TenantError>(())
            })
        });
        if let Err(e) = &published {
            tracing::warn!(error = %e, "a tenant change did not reach the cluster");
        }
        published
    }
}

fn listed_revision(l: &Listed) -> u64 {
    match l {
        Listed::Present(_, r) | Listed::Removed(r) => *r,
        Listed::Unknown => 0,
    }
}

impl Cluster {
    /// Waits until every live node has followed the registry to `revision`
    /// for `name`, or failed to, or the rollout timeout passes.
    pub(crate) async fn rollout(&self, name: &str, revision: u64) -> Rollout {
        let deadline = Instant::now() + Duration::from_millis(self.settings.rollout_timeout_ms);
        loop {
            let mut rollout = Rollout::default();
            match self.membership.beats().await {
                Ok(beats) => {
                    for (beat, state, _) in beats {
                        if matches!(state, NodeState::Dead | NodeState::Draining) {
                            continue;
                        }
                        if let Some(f) = beat.failed.get(name).filter(|f| f.revision >= revision) {
                            rollout.failed.insert(beat.name, f.error.clone());
                        } else if beat.applied.get(name).is_some_and(|r| *r >= revision)
                            || (revision == 0 && !beat.modules.contains_key(name))
                        {
                            rollout.ready.push(beat.name);
                        } else {
                            rollout.pending.push(beat.name);
                        }
                    }
                }
                Err(e) => {
                    rollout
                        .failed
                        .insert("(cluster)".into(), format!("cannot list nodes: {e}"));
                }
            }
            if rollout.pending.is_empty() || Instant::now() >= deadline {
                return rollout;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl ControlPlane for ClusterControl {
    fn limits(&self) -> &Limits {
        self.node.limits()
    }
    fn node_info(&self) -> serde_json::Value {
        let mut info = self.node.node_info();
        info["cluster"] = serde_json::json!({
            "node": self.cluster.settings.node_name(),
            "name": self.cluster.settings.name,
            "nats": self.cluster.nats.server,
        });
        info
    }
    fn metrics(&self) -> String {
        self.node.metrics()
    }
    fn health(&self) -> Result<(), String> {
        self.node.health()?;
        self.cluster.membership.health()
    }
    fn modules(&self) -> Vec<ModuleInfo> {
        self.node.modules()
    }
    fn module(&self, name: &str) -> Option<ModuleInfo> {
        self.node.module(name)
    }
    fn deploy(&self, req: DeployRequest) -> BoxFuture<'_, Result<Deployed, DeployError>> {
        Box::pin(async move {
            let name = req.name.clone();
            let (mut deployed, rollout) = self
                .change(&name, async || {
                    let d = self.node.deploy(req).await?;
                    Ok(if d.unchanged {
                        Change::Unchanged(d)
                    } else {
                        Change::Publish(d)
                    })
                })
                .await?;
            deployed.rollout = Some(rollout);
            Ok(deployed)
        })
    }
    fn undeploy<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Rollout>, DeployError>> {
        Box::pin(async move {
            let ((), rollout) = self
                .change(name, async || {
                    self.node.undeploy(name).await?;
                    Ok(Change::Publish(()))
                })
                .await?;
            Ok(Some(rollout))
        })
    }
    fn promote<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<SwapSummary, DeployError>> {
        Box::pin(async move {
            let (mut s, rollout) = self
                .change(name, async || {
                    Ok(Change::Publish(self.node.promote(name).await?))
                })
                .await?;
            s.rollout = Some(rollout);
            Ok(s)
        })
    }
    fn rollback<'a>(
        &'a self,
        name: &'a str,
        to: Option<u32>,
    ) -> BoxFuture<'a, Result<SwapSummary, DeployError>> {
        Box::pin(async move {
            let (mut s, rollout) = self
                .change(name, async || {
                    Ok(Change::Publish(self.node.rollback(name, to).await?))
                })
                .await?;
            s.rollout = Some(rollout);
            Ok(s)
        })
    }
    fn call(
        &self,
        to: Address,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<u8>, CallError>> {
        self.node.call(to, payload, timeout)
    }
    fn actors(&self, module: &str) -> Vec<ActorInfo> {
        self.node.actors(module)
    }
    fn logs(
        &self,
        query: LogQuery,
        only: Option<Vec<String>>,
        wait: Duration,
    ) -> BoxFuture<'_, LogPage> {
        self.node.logs(query, only, wait)
    }
    fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        self.node.subscriptions()
    }
    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.node.dead_letters()
    }
    fn replay_dead_letter(&self, id: u64) -> BoxFuture<'_, Result<(), CallError>> {
        self.node.replay_dead_letter(id)
    }
    fn discard_dead_letter(&self, id: u64) -> Result<bool, StoreError> {
        self.node.discard_dead_letter(id)
    }
    fn tenant_by_token(&self, token: &str) -> Option<String> {
        self.node.tenant_by_token(token)
    }
    fn tenant(&self, name: &str) -> Option<TenantInfo> {
        self.node.tenant(name)
    }
    fn tenants(&self) -> Vec<TenantInfo> {
        self.node.tenants()
    }
    fn create_tenant(
        &self,
        name: &str,
        quotas: Quotas,
    ) -> Result<(TenantInfo, String), TenantError> {
        let created = self.node.create_tenant(name, quotas)?;
        self.publish_tenants(&[name])?;
        Ok(created)
    }
    fn set_quotas(&self, name: &str, quotas: Quotas) -> Result<TenantInfo, TenantError> {
        let info = self.node.set_quotas(name, quotas)?;
        self.publish_tenants(&[name])?;
        Ok(info)
    }
    fn allow(&self, name: &str, to: &str, allowed: bool) -> Result<TenantInfo, TenantError> {
        let info = self.node.allow(name, to, allowed)?;
        self.publish_tenants(&[name])?;
        Ok(info)
    }
    fn remove_tenant(&self, name: &str) -> Result<(), TenantError> {
        self.node.remove_tenant(name)?;
        // Removing it also took it out of the others' reach rules.
        let mut names: Vec<String> = self.node.tenants().into_iter().map(|t| t.name).collect();
        names.push(name.to_owned());
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.publish_tenants(&names)
    }
    fn cluster_nodes(&self) -> BoxFuture<'_, Option<Result<Vec<NodeStatus>, String>>> {
        Box::pin(async move {
            Some(
                self.cluster
                    .membership
                    .nodes()
                    .await
                    .map_err(|e| e.to_string()),
            )
        })
    }
}
