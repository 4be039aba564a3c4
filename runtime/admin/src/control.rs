//! [`ControlPlane`]: everything the admin API asks of a node. The handlers
//! translate HTTP to these calls and back, nothing more; [`NodeControl`]
//! implements it over one node's actor runtime, a test implements it with a
//! fake, and a cluster will implement it by acting on every node.
//!
//! [`NodeControl`]: crate::NodeControl

use anthill_actors::actor::ActorInfo;
use anthill_actors::logs::{LogPage, LogQuery};
use anthill_actors::module::{DeployError, DeployRequest, Deployed, ModuleInfo, SwapSummary};
use anthill_actors::tenants::{Quotas, TenantError, TenantInfo};
use anthill_core::cluster::{NodeStatus, Rollout};
use anthill_core::{Address, CallError, Limits};
use anthill_store::{DeadLetter, StoreError};
use futures::future::BoxFuture;
use std::time::Duration;

/// A subscription, as `GET /v1/subscriptions` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubscriptionInfo {
    /// The topic as its subscriber named it.
    pub topic: String,
    /// The subscriber's tenant.
    pub tenant: String,
    /// The subscribing actor.
    pub subscriber: String,
    /// `at-least-once` or `at-most-once`.
    pub delivery: &'static str,
}

/// The operations of the admin API.
pub trait ControlPlane: Send + Sync {
    /// The node's limits (upload size, message size, timeouts).
    fn limits(&self) -> &Limits;
    /// `GET /v1/node`: version, counts, limits.
    fn node_info(&self) -> serde_json::Value;
    /// The metrics in the Prometheus text format.
    fn metrics(&self) -> String;
    /// `Err` with the reason once the store has stopped.
    fn health(&self) -> Result<(), String>;

    /// Every deployed module.
    fn modules(&self) -> Vec<ModuleInfo>;
    /// One deployed module.
    fn module(&self, name: &str) -> Option<ModuleInfo>;
    /// Deploys a new module or a new version (a hot swap).
    fn deploy(&self, req: DeployRequest) -> BoxFuture<'_, Result<Deployed, DeployError>>;
    /// Stops a module's actors and deletes it and its state; in a cluster,
    /// where the other nodes stand.
    fn undeploy<'a>(&'a self, name: &'a str)
    -> BoxFuture<'a, Result<Option<Rollout>, DeployError>>;
    /// Moves every key to the canary version.
    fn promote<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<SwapSummary, DeployError>>;
    /// Back to the previous version (or `to`).
    fn rollback<'a>(
        &'a self,
        name: &'a str,
        to: Option<u32>,
    ) -> BoxFuture<'a, Result<SwapSummary, DeployError>>;
    /// An operator's call to an actor.
    fn call(
        &self,
        to: Address,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<u8>, CallError>>;
    /// The live actors of a module.
    fn actors(&self, module: &str) -> Vec<ActorInfo>;
    /// Kept guest output that `query` selects, of the modules in `only` (all
    /// when `None`); when nothing matches, waits up to `wait` for new lines.
    fn logs(
        &self,
        query: LogQuery,
        only: Option<Vec<String>>,
        wait: Duration,
    ) -> BoxFuture<'_, LogPage>;

    /// Every subscription.
    fn subscriptions(&self) -> Vec<SubscriptionInfo>;
    /// Events that failed every delivery attempt.
    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;
    /// Delivers a dead letter again.
    fn replay_dead_letter(&self, id: u64) -> BoxFuture<'_, Result<(), CallError>>;
    /// Drops a dead letter; false if there was none.
    fn discard_dead_letter(&self, id: u64) -> Result<bool, StoreError>;

    /// The tenant whose token this is.
    fn tenant_by_token(&self, token: &str) -> Option<String>;
    /// One tenant with its usage.
    fn tenant(&self, name: &str) -> Option<TenantInfo>;
    /// Every tenant.
    fn tenants(&self) -> Vec<TenantInfo>;
    /// A new tenant and its token (shown once).
    fn create_tenant(
        &self,
        name: &str,
        quotas: Quotas,
    ) -> Result<(TenantInfo, String), TenantError>;
    /// Replaces a tenant's quotas.
    fn set_quotas(&self, name: &str, quotas: Quotas) -> Result<TenantInfo, TenantError>;
    /// Lets `name`'s actors reach `to`'s (or stops it).
    fn allow(&self, name: &str, to: &str, allowed: bool) -> Result<TenantInfo, TenantError>;
    /// Removes a tenant that owns no module.
    fn remove_tenant(&self, name: &str) -> Result<(), TenantError>;

    /// Every node of the cluster, as the cluster's membership sees them;
    /// `None` when this node runs alone.
    fn cluster_nodes(&self) -> BoxFuture<'_, Option<Result<Vec<NodeStatus>, String>>> {
        Box::pin(async { None })
    }
}
