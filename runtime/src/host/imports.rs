//! The `anthill:module/host` imports. Each one checks sizes first (a guest may
//! hand over anything its memory holds), then delegates to the part of the node
//! that owns the operation.

use super::bindings::anthill::module::{host, types};
use super::ctx::ActorCtx;
use crate::actor::CallError;
use crate::router::Address;
use crate::tenants::Tenant;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use types::{ActorRef, Channel, Delivery, Entity, Error, LogLevel, Sender};

/// Longest log line kept; the rest is cut (a guest may log megabytes).
const MAX_LOG_LINE: usize = 4096;

/// Entities in one room's synced state: bounds the per-tick diff work.
const MAX_SYNCED_ENTITIES: usize = 10_000;

type HostResult<T> = wasmtime::Result<Result<T, Error>>;

impl types::Host for ActorCtx {}

impl ActorCtx {
    fn check_size(&self, what: &str, len: usize) -> Result<(), Error> {
        let limit = self.limits.max_message_bytes;
        if len > limit {
            return Err(CallError::TooLarge {
                what: what.to_owned(),
                size: len,
                limit,
            }
            .to_wit());
        }
        Ok(())
    }

    fn sender(&self) -> Sender {
        Sender::Actor(self.address.to_wit())
    }

    /// The tenant of this actor's module (`default` if it was just undeployed).
    fn tenant(&self) -> Arc<Tenant> {
        self.node
            .router
            .module(&self.address.module)
            .map(|m| m.tenant.clone())
            .unwrap_or_else(|| self.node.tenants.default_tenant())
    }

    /// A topic as the guest names it: tenants' topics are scoped with a
    /// control character, so guests may not use those.
    fn check_topic(topic: &str) -> Result<(), Error> {
        if topic.chars().any(char::is_control) {
            return Err(Error::Rejected(
                "topic names may not contain control characters".into(),
            ));
        }
        Ok(())
    }
}

impl host::Host for ActorCtx {
    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            let dropped = message.len() - cut;
            message.truncate(cut);
            message.push_str(&format!("… ({dropped} more bytes cut)"));
        }
        let module = self.address.module.as_str();
        let key = self.address.key.as_str();
        match level {
            LogLevel::Trace => tracing::trace!(target: "anthill::guest", module, key, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "anthill::guest", module, key, "{message}"),
            LogLevel::Info => tracing::info!(target: "anthill::guest", module, key, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "anthill::guest", module, key, "{message}"),
            LogLevel::Error => tracing::error!(target: "anthill::guest", module, key, "{message}"),
        }
        Ok(())
    }

    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0))
    }

    async fn self_ref(&mut self) -> wasmtime::Result<ActorRef> {
        Ok(self.address.to_wit())
    }

    async fn send(&mut self, to: ActorRef, message: Vec<u8>) -> HostResult<()> {
        if let Err(e) = self.check_size("message", message.len()) {
            return Ok(Err(e));
        }
        let to = Address::from_wit(to);
        let from = self.sender();
        // Delivery never waits (a full mailbox is an immediate error): no need
        // to give the CPU share back.
        let outcome = self.node.router.send(&self.node, &to, from, message).await;
        Ok(outcome.map_err(|e| e.to_wit()))
    }

    async fn call(
        &mut self,
        to: ActorRef,
        message: Vec<u8>,
        timeout_ms: u32,
    ) -> HostResult<Vec<u8>> {
        if let Err(e) = self.check_size("message", message.len()) {
            return Ok(Err(e));
        }
        let to = Address::from_wit(to);
        let timeout =
            Duration::from_millis(u64::from(timeout_ms)).min(self.limits.max_call_timeout);
        let chain = self.chain.push(self.address.clone());
        let from = self.sender();
        self.wait_begin();
        let outcome = self
            .node
            .router
            .call(&self.node, &to, from, message, timeout, chain)
            .await;
        self.wait_end();
        Ok(outcome.map_err(|e| e.to_wit()))
    }

    async fn publish(&mut self, topic: String, event: Vec<u8>) -> HostResult<()> {
        if let Err(e) = self
            .check_size("event", event.len())
            .and_then(|()| Self::check_topic(&topic))
        {
            return Ok(Err(e));
        }
        // The tenant's own subscribers, and those of tenants it may reach.
        let tenant = self.tenant();
        let scopes = std::iter::once(tenant.name.clone()).chain(tenant.reached());
        self.wait_begin();
        let mut outcome = Ok(());
        for scope in scopes {
            let scoped = Tenant::scoped_topic(&scope, &topic);
            outcome = self
                .node
                .events
                .publish(&self.node, &scoped, event.clone())
                .await;
            if outcome.is_err() {
                break;
            }
        }
        self.wait_end();
        Ok(outcome.map_err(|e| e.to_wit()))
    }

    async fn subscribe(&mut self, topic: String, delivery: Delivery) -> HostResult<()> {
        if let Err(e) = Self::check_topic(&topic) {
            return Ok(Err(e));
        }
        let durable = matches!(delivery, Delivery::AtLeastOnce);
        let scoped = Tenant::scoped_topic(&self.tenant().name, &topic);
        let outcome = self
            .node
            .events
            .subscribe(&self.node, &self.address, &scoped, durable);
        Ok(outcome.map_err(|e| e.to_wit()))
    }

    async fn unsubscribe(&mut self, topic: String) -> HostResult<()> {
        let scoped = Tenant::scoped_topic(&self.tenant().name, &topic);
        let outcome = self
            .node
            .events
            .unsubscribe(&self.node, &self.address, &scoped);
        Ok(outcome.map_err(|e| e.to_wit()))
    }

    async fn push(&mut self, player: u64, ch: Channel, message: Vec<u8>) -> HostResult<()> {
        if let Err(e) = self.check_size("push", message.len()) {
            return Ok(Err(e));
        }
        Ok(self
            .node
            .gateway
            .push(player, ch, message)
            .map_err(|e| e.to_wit()))
    }

    async fn set_synced_state(&mut self, entities: Vec<Entity>) -> HostResult<()> {
        let size: usize = entities.iter().map(|e| e.state.len() + 16).sum();
        if let Err(e) = self.check_size("synced state", size) {
            return Ok(Err(e));
        }
        if entities.len() > MAX_SYNCED_ENTITIES {
            return Ok(Err(Error::Rejected(format!(
                "{} entities exceed the {MAX_SYNCED_ENTITIES}-entity limit of a room's synced state",
                entities.len()
            ))));
        }
        self.effects.synced_state = Some(
            entities
                .into_iter()
                .map(|e| anthill_protocol::Entity {
                    id: e.id,
                    state: e.state,
                })
                .collect(),
        );
        Ok(Ok(()))
    }

    async fn set_timer(&mut self, tag: String, delay_ms: u32, repeat: bool) -> HostResult<()> {
        let outcome =
            self.node
                .timers
                .set(&self.node, &self.address, &tag, u64::from(delay_ms), repeat);
        Ok(outcome.map_err(|e| e.to_wit()))
    }

    async fn cancel_timer(&mut self, tag: String) -> HostResult<()> {
        let outcome = self.node.timers.cancel(&self.node, &self.address, &tag);
        Ok(outcome.map_err(|e| e.to_wit()))
    }

    async fn set_tick_rate(&mut self, hz: u32) -> HostResult<()> {
        if hz > 1000 {
            return Ok(Err(Error::Rejected(format!(
                "tick rate {hz} Hz is above the 1000 Hz maximum"
            ))));
        }
        self.effects.tick_hz = Some(hz);
        Ok(Ok(()))
    }
}
