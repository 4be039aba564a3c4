//! The runtime as actors' host imports see it ([`ActorHost`]): sends and
//! calls through the router, tenant-scoped topics through events, timers,
//! pushes through the players seam.

use crate::Runtime;
use crate::tenants::Tenant;
use anthill_core::trace::TARGET;
use anthill_core::{Address, CallChain, CallError, Channel, Sender};
use anthill_engine::{ActorHost, GuestLine};
use futures::future::BoxFuture;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tracing::Instrument;

/// Held by every actor's store; weak, so live actors do not keep a stopped
/// runtime alive.
pub(crate) struct RuntimeHost(pub(crate) Weak<Runtime>);

fn stopping() -> CallError {
    CallError::Internal("the node is stopping".into())
}

impl RuntimeHost {
    fn runtime(&self) -> Result<Arc<Runtime>, CallError> {
        self.0.upgrade().ok_or_else(stopping)
    }
}

impl Runtime {
    /// The tenant of `actor`'s module (`default` if it was just undeployed).
    fn tenant_of(&self, actor: &Address) -> Arc<Tenant> {
        self.router
            .module(&actor.module)
            .map(|m| m.tenant.clone())
            .unwrap_or_else(|| self.tenants.default_tenant())
    }
}

impl ActorHost for RuntimeHost {
    fn send(
        &self,
        actor: &Address,
        to: Address,
        message: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), CallError>> {
        let span = tracing::trace_span!(target: TARGET, "send", from = %actor, to = %to);
        let from = Sender::Actor(actor.clone());
        let node = self.runtime();
        Box::pin(
            async move {
                let node = node?;
                node.router.send(&node, &to, from, message).await
            }
            .instrument(span),
        )
    }

    fn call(
        &self,
        actor: &Address,
        to: Address,
        message: Vec<u8>,
        timeout: Duration,
        chain: CallChain,
    ) -> BoxFuture<'static, Result<Vec<u8>, CallError>> {
        let span = tracing::trace_span!(target: TARGET, "call", from = %actor, to = %to);
        let from = Sender::Actor(actor.clone());
        let node = self.runtime();
        Box::pin(
            async move {
                let node = node?;
                node.router
                    .call(&node, &to, from, message, timeout, chain)
                    .await
            }
            .instrument(span),
        )
    }

    fn publish(
        &self,
        actor: &Address,
        topic: String,
        event: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), CallError>> {
        let span = tracing::trace_span!(target: TARGET, "publish", from = %actor, topic = %topic);
        let actor = actor.clone();
        let node = self.runtime();
        Box::pin(
            async move {
                let node = node?;
                // The tenant's own subscribers, and those of tenants it may reach.
                let tenant = node.tenant_of(&actor);
                let scopes = std::iter::once(tenant.name.clone()).chain(tenant.reached());
                for scope in scopes {
                    let scoped = Tenant::scoped_topic(&scope, &topic);
                    node.events.publish(&node, &scoped, event.clone()).await?;
                }
                Ok(())
            }
            .instrument(span),
        )
    }

    fn subscribe(&self, actor: &Address, topic: &str, durable: bool) -> Result<(), CallError> {
        let node = self.runtime()?;
        let scoped = Tenant::scoped_topic(&node.tenant_of(actor).name, topic);
        node.events.subscribe(&node, actor, &scoped, durable)
    }

    fn unsubscribe(&self, actor: &Address, topic: &str) -> Result<(), CallError> {
        let node = self.runtime()?;
        let scoped = Tenant::scoped_topic(&node.tenant_of(actor).name, topic);
        node.events.unsubscribe(&node, actor, &scoped)
    }

    fn push(&self, player: u64, channel: Channel, message: Vec<u8>) -> Result<(), CallError> {
        self.runtime()?.players().push(player, channel, message)
    }

    fn set_timer(
        &self,
        actor: &Address,
        tag: &str,
        delay_ms: u64,
        repeat: bool,
    ) -> Result<(), CallError> {
        let node = self.runtime()?;
        node.timers.set(&node, actor, tag, delay_ms, repeat)
    }

    fn cancel_timer(&self, actor: &Address, tag: &str) -> Result<(), CallError> {
        let node = self.runtime()?;
        node.timers.cancel(&node, actor, tag)
    }

    fn output(&self, line: GuestLine) {
        if let Some(node) = self.0.upgrade() {
            node.logs.record(line);
        }
    }
}
