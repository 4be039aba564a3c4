//! Tenants, cluster-wide: each tenant's record (quotas, token hash, reach
//! rules) in the `tenants` bucket. A change on any node is made there first,
//! then published; every node lists the bucket every second and converges,
//! and a module's convergence first fetches its tenant, so a deploy for a
//! tenant just created elsewhere does not fail for want of it.

use crate::join::Nats;
use anthill_actors::Runtime;
use anthill_actors::tenants::{TenantError, TenantRecord};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// How often every node lists the tenants again.
const RELIST: Duration = Duration::from_secs(1);

/// This node's side of the tenants bucket.
pub(crate) struct TenantSync {
    nats: Nats,
    runtime: Arc<Runtime>,
}

/// The bucket's record of a tenant.
enum Listed {
    Present(TenantRecord),
    Removed,
    Unknown,
}

impl TenantSync {
    pub(crate) fn new(nats: Nats, runtime: Arc<Runtime>) -> TenantSync {
        TenantSync { nats, runtime }
    }

    /// The bucket's record of `name`, read from the stream's leader (a
    /// follower may answer with an older record, or none).
    async fn listed(&self, name: &str) -> Result<Listed, String> {
        Ok(
            match crate::latest::latest(&self.nats.tenants, name).await? {
                None => Listed::Unknown,
                Some(l) => match l.present() {
                    None => Listed::Removed,
                    Some(value) => Listed::Present(
                        serde_json::from_slice(value)
                            .map_err(|e| format!("a record that does not decode: {e}"))?,
                    ),
                },
            },
        )
    }

    /// Publishes this node's record of `name` (its removal when it has none).
    pub(crate) async fn publish(&self, name: &str) -> Result<(), TenantError> {
        let record = self
            .runtime
            .tenants
            .records()
            .into_iter()
            .find(|r| r.name == name);
        let kv = &self.nats.tenants;
        let done = match record {
            Some(r) => kv
                .put(
                    name,
                    serde_json::to_vec(&r).expect("a record serializes").into(),
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => kv.delete(name).await.map_err(|e| e.to_string()),
        };
        done.map_err(|e| {
            TenantError::ClusterUnavailable(format!("publishing tenant `{name}`: {e}"))
        })
    }

    /// Makes this node's tenant `name` match the bucket.
    pub(crate) async fn follow(&self, name: &str) -> Result<(), String> {
        let store = self.runtime.store.as_ref();
        let want = match self.listed(name).await? {
            Listed::Present(r) => Some(r),
            Listed::Removed => None,
            // The cluster never had it: bring this node's (the first node of
            // a cluster brings its tenants).
            Listed::Unknown => {
                if self.runtime.tenants.get(name).is_some() {
                    self.publish(name).await.map_err(|e| e.to_string())?;
                }
                return Ok(());
            }
        };
        match self.runtime.tenants.converge(store, name, want) {
            Ok(true) => {
                tracing::info!(
                    tenant = name,
                    "followed the cluster's record of this tenant"
                );
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn sync_all(&self) -> Result<(), String> {
        let mut names = std::collections::BTreeSet::new();
        let mut keys = self.nats.tenants.keys().await.map_err(|e| e.to_string())?;
        while let Some(k) = keys.next().await {
            names.insert(k.map_err(|e| e.to_string())?);
        }
        for r in self.runtime.tenants.records() {
            // The default tenant is published only once it has rules.
            if r.name != anthill_core::DEFAULT_TENANT || !r.may_reach.is_empty() {
                names.insert(r.name);
            }
        }
        for name in names {
            if let Err(e) = self.follow(&name).await {
                tracing::warn!(tenant = %name, error = %e, "cannot follow the cluster's record of this tenant");
            }
        }
        Ok(())
    }

    /// Lists and follows every tenant once, then every second until aborted.
    pub(crate) async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(RELIST);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.sync_all().await {
                tracing::warn!(error = %e, "cannot list the cluster's tenants");
            }
        }
    }

    /// The first pass, before the node serves.
    pub(crate) async fn start(&self) -> Result<(), crate::ClusterError> {
        self.sync_all()
            .await
            .map_err(crate::ClusterError::Unavailable)
    }
}
