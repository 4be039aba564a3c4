//! The `anthill:module/host` imports. Each one checks sizes first (a guest may
//! hand over anything its memory holds), then delegates to the [`ActorHost`].
//!
//! [`ActorHost`]: crate::ActorHost

use super::bindings::anthill::module::{host, types};
use super::ctx::ActorCtx;
use super::output::{GuestLine, OutputStream, cut_line};
use crate::wit::{self, IntoGuest};
use anthill_core::{CallError, SyncedState};
use std::time::Duration;
use types::{ActorRef, Channel, Delivery, Entity, Error, LogLevel};

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
            .into_guest());
        }
        Ok(())
    }

    /// A room's synced state of `entities` holding `state_bytes` in all:
    /// within the message size (16 bytes counted per entity for its id and
    /// length) and the entity limit.
    fn check_synced_state(&self, entities: usize, state_bytes: usize) -> Result<(), Error> {
        self.check_size(
            "synced state",
            state_bytes.saturating_add(entities.saturating_mul(16)),
        )?;
        if entities > MAX_SYNCED_ENTITIES {
            return Err(Error::Rejected(format!(
                "{entities} entities exceed the {MAX_SYNCED_ENTITIES}-entity limit of a room's synced state"
            )));
        }
        Ok(())
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
        let level = match level {
            LogLevel::Trace => tracing::Level::TRACE,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        };
        self.host.output(GuestLine {
            actor: self.address.clone(),
            version: self.version,
            stream: OutputStream::Log(level),
            text: cut_line(message),
        });
        Ok(())
    }

    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(anthill_core::now_ms())
    }

    async fn self_ref(&mut self) -> wasmtime::Result<ActorRef> {
        Ok(wit::actor_ref(&self.address))
    }

    async fn send(&mut self, to: ActorRef, message: Vec<u8>) -> HostResult<()> {
        if let Err(e) = self.check_size("message", message.len()) {
            return Ok(Err(e));
        }
        // Delivery never waits (a full mailbox is an immediate error): no need
        // to give the CPU share back.
        let outcome = self
            .host
            .send(&self.address, wit::address(to), message)
            .await;
        Ok(outcome.map_err(|e| e.into_guest()))
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
        let to = wit::address(to);
        let timeout =
            Duration::from_millis(u64::from(timeout_ms)).min(self.limits.max_call_timeout);
        let chain = self.chain.push(self.address.clone());
        self.wait_begin();
        let outcome = self
            .host
            .call(&self.address, to, message, timeout, chain)
            .await;
        self.wait_end();
        Ok(outcome.map_err(|e| e.into_guest()))
    }

    async fn publish(&mut self, topic: String, event: Vec<u8>) -> HostResult<()> {
        if let Err(e) = self
            .check_size("event", event.len())
            .and_then(|()| Self::check_topic(&topic))
        {
            return Ok(Err(e));
        }
        self.wait_begin();
        let outcome = self.host.publish(&self.address, topic, event).await;
        self.wait_end();
        Ok(outcome.map_err(|e| e.into_guest()))
    }

    async fn subscribe(&mut self, topic: String, delivery: Delivery) -> HostResult<()> {
        if let Err(e) = Self::check_topic(&topic) {
            return Ok(Err(e));
        }
        let durable = matches!(delivery, Delivery::AtLeastOnce);
        let outcome = self.host.subscribe(&self.address, &topic, durable);
        Ok(outcome.map_err(|e| e.into_guest()))
    }

    async fn unsubscribe(&mut self, topic: String) -> HostResult<()> {
        let outcome = self.host.unsubscribe(&self.address, &topic);
        Ok(outcome.map_err(|e| e.into_guest()))
    }

    async fn push(&mut self, player: u64, ch: Channel, message: Vec<u8>) -> HostResult<()> {
        if let Err(e) = self.check_size("push", message.len()) {
            return Ok(Err(e));
        }
        Ok(self
            .host
            .push(player, wit::channel(ch), message)
            .map_err(|e| e.into_guest()))
    }

    async fn set_synced_state(&mut self, entities: Vec<Entity>) -> HostResult<()> {
        let state_bytes = entities.iter().map(|e| e.state.len()).sum();
        if let Err(e) = self.check_synced_state(entities.len(), state_bytes) {
            return Ok(Err(e));
        }
        self.effects.synced_state = Some(
            entities
                .into_iter()
                .map(|e| anthill_core::Entity {
                    id: e.id,
                    state: e.state,
                })
                .collect(),
        );
        Ok(Ok(()))
    }

    async fn set_synced_state_packed(
        &mut self,
        ids: Vec<u64>,
        ends: Vec<u32>,
        states: Vec<u8>,
    ) -> HostResult<()> {
        if let Err(e) = self.check_synced_state(ids.len(), states.len()) {
            return Ok(Err(e));
        }
        match SyncedState::from_parts(ids, ends, states) {
            Ok(state) => {
                self.effects.synced_state = Some(state);
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(Error::Rejected(format!("synced state not set: {e}")))),
        }
    }

    async fn set_timer(&mut self, tag: String, delay_ms: u32, repeat: bool) -> HostResult<()> {
        let outcome = self
            .host
            .set_timer(&self.address, &tag, u64::from(delay_ms), repeat);
        Ok(outcome.map_err(|e| e.into_guest()))
    }

    async fn cancel_timer(&mut self, tag: String) -> HostResult<()> {
        let outcome = self.host.cancel_timer(&self.address, &tag);
        Ok(outcome.map_err(|e| e.into_guest()))
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
