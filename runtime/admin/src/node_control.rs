//! [`NodeControl`]: the control plane of one node, over its actor runtime
//! and its metrics registry.

use crate::control::{ControlPlane, SubscriptionInfo};
use anthill_actors::Runtime;
use anthill_actors::actor::ActorInfo;
use anthill_actors::logs::{LogPage, LogQuery};
use anthill_actors::module::{self, DeployError, DeployRequest, Deployed, ModuleInfo, SwapSummary};
use anthill_actors::tenants::{Quotas, Tenant, TenantError, TenantInfo, Tenants};
use anthill_core::{Address, CallChain, CallError, Limits, Sender, now_ms};
use anthill_store::{DeadLetter, StoreError};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// One node's control plane.
pub struct NodeControl {
    runtime: Arc<Runtime>,
    registry: prometheus::Registry,
}

impl NodeControl {
    /// Controls `runtime`; `/metrics` renders `registry` (every part's series).
    pub fn new(runtime: Arc<Runtime>, registry: prometheus::Registry) -> Arc<NodeControl> {
        Arc::new(NodeControl { runtime, registry })
    }

    fn info(&self, tenant: &Tenant) -> TenantInfo {
        let modules: Vec<_> = self
            .runtime
            .router
            .modules()
            .into_iter()
            .filter(|m| m.tenant.name == tenant.name)
            .collect();
        let players = modules
            .iter()
            .map(|m| self.runtime.rooms().members_in_module(&m.name) as u64)
            .sum();
        Tenants::info(
            tenant,
            modules.iter().map(|m| m.name.clone()).collect(),
            players,
        )
    }
}

impl ControlPlane for NodeControl {
    fn limits(&self) -> &Limits {
        &self.runtime.config.limits
    }

    fn node_info(&self) -> serde_json::Value {
        let node = &self.runtime;
        let c = &node.config;
        let modules = node.router.modules();
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "modules": modules.len(),
            "live_actors": modules.iter().map(|m| m.live_actors()).sum::<usize>(),
            "timers": node.timers.len(),
            "limits": {
                "upload_limit_bytes": (c.limits.upload_limit_mb as u64) << 20,
                "max_message_bytes": c.limits.max_message_bytes,
                "deadline_ms": c.limits.deadline_ms,
                "memory_mb": c.limits.memory_mb,
                "max_memory_mb": c.limits.max_memory_mb,
                "max_actors": c.limits.max_actors,
                "max_snapshot_bytes": c.limits.max_snapshot_bytes,
                "max_host_handles": c.limits.max_host_handles,
                "module_concurrency": c.module_concurrency(),
            },
        })
    }

    fn metrics(&self) -> String {
        self.runtime.publish_gauges();
        anthill_core::metrics::render(&self.registry)
    }

    fn health(&self) -> Result<(), String> {
        self.runtime.store.health()
    }

    fn modules(&self) -> Vec<ModuleInfo> {
        self.runtime
            .router
            .modules()
            .iter()
            .map(|m| m.info())
            .collect()
    }

    fn module(&self, name: &str) -> Option<ModuleInfo> {
        self.runtime.router.module(name).map(|m| m.info())
    }

    fn deploy(&self, req: DeployRequest) -> BoxFuture<'_, Result<Deployed, DeployError>> {
        Box::pin(async move {
            module::deploy(&self.runtime, req).await.inspect_err(|_| {
                self.runtime
                    .metrics
                    .deploys
                    .with_label_values(&["refused"])
                    .inc();
            })
        })
    }

    fn undeploy<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<anthill_core::cluster::Rollout>, DeployError>> {
        Box::pin(async move { module::undeploy(&self.runtime, name).await.map(|()| None) })
    }

    fn promote<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<SwapSummary, DeployError>> {
        Box::pin(module::promote(&self.runtime, name))
    }

    fn rollback<'a>(
        &'a self,
        name: &'a str,
        to: Option<u32>,
    ) -> BoxFuture<'a, Result<SwapSummary, DeployError>> {
        Box::pin(module::rollback(&self.runtime, name, to))
    }

    fn call(
        &self,
        to: Address,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<u8>, CallError>> {
        let span =
            tracing::trace_span!(target: anthill_core::trace::TARGET, "admin.call", to = %to);
        Box::pin(tracing::Instrument::instrument(
            async move {
                self.runtime
                    .router
                    .call(
                        &self.runtime,
                        &to,
                        Sender::Admin,
                        payload,
                        timeout,
                        CallChain::default(),
                    )
                    .await
            },
            span,
        ))
    }

    fn actors(&self, module: &str) -> Vec<ActorInfo> {
        self.runtime
            .router
            .module(module)
            .map(|m| m.actors())
            .unwrap_or_default()
    }

    fn logs(
        &self,
        query: LogQuery,
        only: Option<Vec<String>>,
        wait: Duration,
    ) -> BoxFuture<'_, LogPage> {
        Box::pin(async move {
            let visible = move |m: &str| {
                only.as_ref()
                    .is_none_or(|names| names.iter().any(|n| n == m))
            };
            self.runtime.logs.follow(&query, &visible, wait).await
        })
    }

    fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        self.runtime
            .events
            .subscriptions()
            .into_iter()
            .map(|(stored, address, durable)| {
                let (tenant, topic) = Tenant::unscope_topic(&stored);
                SubscriptionInfo {
                    topic: topic.to_owned(),
                    tenant: tenant.to_owned(),
                    subscriber: address.to_string(),
                    delivery: if durable {
                        "at-least-once"
                    } else {
                        "at-most-once"
                    },
                }
            })
            .collect()
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.runtime.events.dead_letters(&self.runtime)
    }

    fn replay_dead_letter(&self, id: u64) -> BoxFuture<'_, Result<(), CallError>> {
        Box::pin(self.runtime.events.replay(&self.runtime, id))
    }

    fn discard_dead_letter(&self, id: u64) -> Result<bool, StoreError> {
        self.runtime.events.discard(&self.runtime, id)
    }

    fn tenant_by_token(&self, token: &str) -> Option<String> {
        self.runtime.tenants.by_token(token).map(|t| t.name.clone())
    }

    fn tenant(&self, name: &str) -> Option<TenantInfo> {
        self.runtime.tenants.get(name).map(|t| self.info(&t))
    }

    fn tenants(&self) -> Vec<TenantInfo> {
        self.runtime
            .tenants
            .list()
            .iter()
            .map(|t| self.info(t))
            .collect()
    }

    fn create_tenant(
        &self,
        name: &str,
        quotas: Quotas,
    ) -> Result<(TenantInfo, String), TenantError> {
        let (t, token) =
            self.runtime
                .tenants
                .create(self.runtime.store.as_ref(), name, quotas, now_ms())?;
        Ok((self.info(&t), token))
    }

    fn set_quotas(&self, name: &str, quotas: Quotas) -> Result<TenantInfo, TenantError> {
        let t = self
            .runtime
            .tenants
            .set_quotas(self.runtime.store.as_ref(), name, quotas)?;
        Ok(self.info(&t))
    }

    fn allow(&self, name: &str, to: &str, allowed: bool) -> Result<TenantInfo, TenantError> {
        let t = self
            .runtime
            .tenants
            .allow(self.runtime.store.as_ref(), name, to, allowed)?;
        Ok(self.info(&t))
    }

    fn remove_tenant(&self, name: &str) -> Result<(), TenantError> {
        let owned: Vec<_> = self
            .runtime
            .router
            .modules()
            .into_iter()
            .filter(|m| m.tenant.name == name)
            .map(|m| m.name.clone())
            .collect();
        self.runtime
            .tenants
            .remove(self.runtime.store.as_ref(), name, owned)
    }
}
