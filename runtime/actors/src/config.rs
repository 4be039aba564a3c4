//! The actors' sections of the node's config: `[limits]` (shared, from
//! anthill-core), `[actors]`, `[admission]` and `[events]`. The binary
//! composes them with the other parts' sections into one file.

use crate::events::EventSettings;
use crate::logs::LogSettings;
use crate::router::AdmissionSettings;
use anthill_core::Limits;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the actor runtime is told.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Caps on modules, actors and requests.
    pub limits: Limits,
    /// Actor lifecycle defaults.
    pub actors: ActorSettings,
    /// Inbound rate limit and circuit breaker per actor.
    pub admission: AdmissionSettings,
    /// At-least-once delivery retries.
    pub events: EventSettings,
    /// Guest output: ring size and rate limit per module.
    pub logs: LogSettings,
    /// The compile cache is shared with other nodes (it is outside the data
    /// dir): artifacts are never deleted from it.
    pub shared_cache: bool,
}

impl RuntimeConfig {
    /// Guest calls of one module that may execute at once.
    pub fn module_concurrency(&self) -> usize {
        self.limits.module_concurrency()
    }

    /// Default timeout of an admin or player request to a module.
    pub fn call_timeout(&self) -> Duration {
        self.limits.call_timeout()
    }

    /// Checks the rules between fields, naming the key to fix.
    pub fn validate(&self) -> Result<(), String> {
        self.limits.validate()?;
        self.logs.validate()?;
        if self.actors.mailbox == 0 {
            return Err("actors.mailbox must be > 0".into());
        }
        Ok(())
    }
}

/// Defaults for actor lifecycle; a module may override them at deploy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActorSettings {
    /// Messages an actor's mailbox holds before senders get an overload error.
    pub mailbox: usize,
    /// A keyed actor idle this long is snapshotted and dropped.
    pub idle_timeout_ms: u64,
    /// A live actor with unsaved changes is snapshotted this often.
    pub snapshot_interval_ms: u64,
}

impl Default for ActorSettings {
    fn default() -> Self {
        ActorSettings {
            mailbox: 1024,
            idle_timeout_ms: 60_000,
            snapshot_interval_ms: 5_000,
        }
    }
}
