//! Caps on what one module, actor or request may use: the `[limits]` section
//! of the node's config, read by the engine (deadlines, memory, the instance
//! pool), the actors (timers, subscriptions, snapshots), the gateway and the
//! admin API (message and upload sizes). Every limit names what it protects.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Caps on what one module, actor or request may use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Default per-call deadline of guest code: stops infinite loops.
    pub deadline_ms: u64,
    /// Default linear-memory cap per actor: stops unbounded allocation.
    pub memory_mb: u32,
    /// The largest memory cap a module may ask for; sizes the instance pool.
    pub max_memory_mb: u32,
    /// Live actors the instance pool holds at once: bounds host memory. Each
    /// live actor also takes about four kernel memory mappings (its linear
    /// memory and its async stack), and Linux allows 65530 per process by
    /// default (vm.max_map_count). Near this limit the least recently used idle
    /// actors are passivated to make room.
    pub max_actors: u32,
    /// Largest component upload: bounds admin-request memory.
    pub upload_limit_mb: u32,
    /// Largest message a module may send or a player may request: bounds
    /// per-message copies.
    pub max_message_bytes: usize,
    /// Default timeout of an admin or player request to a module.
    pub call_timeout_ms: u64,
    /// Longest timeout a guest `call` may ask for.
    pub max_call_timeout_ms: u64,
    /// Largest snapshot an actor may export: bounds the database and the
    /// memory of every write (a module returning 60 MiB per message would fill
    /// the disk). Over it, that snapshot fails and the previous one stays.
    pub max_snapshot_bytes: usize,
    /// WASI resources (pollables, streams, ...) one actor may hold at once:
    /// each costs host memory outside the guest's memory cap (~250 bytes), so
    /// an actor that never drops them would otherwise grow the node without
    /// bound.
    pub max_host_handles: usize,
    /// Timers one actor may hold: bounds the schedule and the store.
    pub max_timers_per_actor: usize,
    /// Topics one actor may subscribe to: bounds fan-out tables and cursors.
    pub max_subscriptions_per_actor: usize,
    /// Guest calls of one module that execute at once (the rest wait their
    /// turn, outside the deadline): a module whose actors all loop cannot
    /// take every worker thread from the others. 0 = the node's cores less
    /// one (at least 1).
    pub module_concurrency: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline_ms: 100,
            memory_mb: 64,
            max_memory_mb: 256,
            max_actors: 12_000,
            upload_limit_mb: 64,
            max_message_bytes: 1 << 20,
            call_timeout_ms: 5_000,
            max_call_timeout_ms: 30_000,
            max_snapshot_bytes: 4 << 20,
            max_host_handles: 256,
            max_timers_per_actor: 64,
            max_subscriptions_per_actor: 64,
            module_concurrency: 0,
        }
    }
}

impl Limits {
    /// Checks the rules between fields, naming the key to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.memory_mb == 0 || self.memory_mb > self.max_memory_mb {
            return Err(format!(
                "limits.memory_mb ({}) must be between 1 and limits.max_memory_mb ({})",
                self.memory_mb, self.max_memory_mb
            ));
        }
        if self.deadline_ms == 0 {
            return Err("limits.deadline_ms must be > 0".into());
        }
        if self.max_actors == 0 {
            return Err("limits.max_actors must be > 0".into());
        }
        if self.max_host_handles < 16 {
            return Err(
                "limits.max_host_handles must be at least 16 (a guest's standard streams take a few)".into(),
            );
        }
        if self.max_snapshot_bytes == 0 {
            return Err("limits.max_snapshot_bytes must be > 0".into());
        }
        Ok(())
    }

    /// Guest calls of one module that may execute at once.
    pub fn module_concurrency(&self) -> usize {
        match self.module_concurrency {
            // All cores but one: whatever one module does, a core is left
            // for the node's I/O and the other modules.
            0 => {
                std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
            }
            n => n,
        }
    }

    /// Default timeout of an admin or player request to a module.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }
}
