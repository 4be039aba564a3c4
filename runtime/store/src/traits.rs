//! The persistence seams: what the rest of the runtime asks of a store,
//! trait by concern. [`crate::Store`] (sled) implements them all; a
//! replicated store (the cluster's) implements the same traits, and callers,
//! which hold an `Arc<dyn Persistence>`, do not change.

use crate::{CursorRecord, DeadLetter, Snapshot, StoreError, SubscriptionRecord, TimerRecord};
use futures::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};
use std::path::PathBuf;

/// Making writes durable, and whether the store still can.
pub trait Durability: Send + Sync {
    /// Makes every write made before this call durable (fsync). Concurrent
    /// callers are group-committed: one flush serves all who queued behind it.
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// `Err` with the reason once an I/O error has stopped the database.
    fn health(&self) -> Result<(), String>;

    /// Flushes to disk run by [`Store::flush`] so far (fewer than its callers
    /// under load: that is the group commit).
    fn flushes(&self) -> u64;

    /// Bytes the database takes on disk (snapshots, events, timers, registry;
    /// not the uploaded components). 0 when the store cannot tell.
    fn disk_bytes(&self) -> u64;
}

/// Modules, their uploaded components, and tenants: the node's registry.
pub trait Registry: Send + Sync {
    /// Writes a module's registry record (JSON: readable, and new fields can be
    /// added with defaults).
    fn put_module_json(&self, name: &str, record: Vec<u8>) -> Result<(), StoreError>;

    /// Removes a module's registry record.
    fn remove_module(&self, name: &str) -> Result<(), StoreError>;

    /// Every module record (JSON), in name order.
    fn modules_json(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Where an uploaded component is kept.
    fn component_path(&self, sha256: &str) -> PathBuf;

    /// Keeps an uploaded component, written atomically (temp file + rename).
    fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError>;

    fn read_component(&self, sha256: &str) -> Result<Vec<u8>, StoreError>;

    /// Deletes the uploaded components whose sha256 is not in `keep`; returns
    /// the sha256s removed. Files that are not components are left alone.
    fn prune_components(
        &self,
        keep: &std::collections::HashSet<String>,
    ) -> Result<Vec<String>, StoreError>;

    /// Deletes every timer and subscription of a module (on undeploy).
    fn remove_module_state(&self, module: &str) -> Result<(), StoreError>;

    /// Writes a tenant's record.
    fn put_tenant_json(&self, name: &str, record: Vec<u8>) -> Result<(), StoreError>;

    /// Removes a tenant's record.
    fn remove_tenant(&self, name: &str) -> Result<(), StoreError>;

    /// Every tenant record (JSON), in name order.
    fn tenants_json(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}

/// What [`SnapshotStore::put_snapshot`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPut {
    /// Bytes the module's stored state grew by (negative if it shrank).
    pub grew: i64,
    /// This write, for [`SnapshotStore::commit_snapshot`]: the commit of one
    /// write, not of whatever the actor's key last received (two copies of
    /// an actor can overlap on a node while one is being evicted).
    pub ticket: u64,
}

/// Actor snapshots, by module and key.
pub trait SnapshotStore: Send + Sync {
    /// Stores an actor's snapshot (replacing the previous one); returns how
    /// many bytes the module's stored state grew by (negative if it shrank)
    /// and the ticket [`SnapshotStore::commit_snapshot`] waits on.
    fn put_snapshot(
        &self,
        module: &str,
        key: &str,
        snap: &Snapshot,
    ) -> Result<SnapshotPut, StoreError>;

    /// Waits until the write `ticket` names is durable: on disk for the
    /// embedded store (a group-committed flush), on its replicas for a
    /// replicated one, which also refuses here a write that another node,
    /// or a newer copy of the actor, fenced off. An acknowledgement that
    /// promises the state is stored waits for this.
    fn commit_snapshot<'a>(
        &'a self,
        module: &'a str,
        key: &'a str,
        ticket: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The last snapshot of an actor. A snapshot whose checksum does not match is
    /// an error: it is reported, never silently used.
    fn get_snapshot(&self, module: &str, key: &str) -> Result<Option<Snapshot>, StoreError>;

    /// Whether an actor has a stored snapshot (it existed before).
    fn has_snapshot(&self, module: &str, key: &str) -> Result<bool, StoreError>;

    /// Deletes an actor's snapshot.
    fn remove_snapshot(&self, module: &str, key: &str) -> Result<(), StoreError>;

    /// Deletes every snapshot of a module (on undeploy).
    fn remove_snapshots(&self, module: &str) -> Result<usize, StoreError>;

    /// Keys of every stored snapshot of a module.
    fn snapshot_keys(&self, module: &str) -> Result<Vec<String>, StoreError>;

    /// Bytes of every stored snapshot of a module (their encoded size).
    fn snapshot_bytes(&self, module: &str) -> Result<u64, StoreError>;
}

/// Pub/sub state: subscriptions, the at-least-once event log and its cursors, dead letters.
pub trait EventLog: Send + Sync {
    fn put_subscription(&self, s: &SubscriptionRecord) -> Result<(), StoreError>;

    fn remove_subscription(&self, topic: &str, module: &str, key: &str) -> Result<(), StoreError>;

    fn subscriptions(&self) -> Result<Vec<SubscriptionRecord>, StoreError>;

    /// Where a subscription to `topic` made now starts: at or below the
    /// position of the next event appended to it.
    fn log_end(&self, topic: &str) -> Result<u64, StoreError>;

    /// Appends `event` to `topic`'s log at the next position. The caller
    /// serializes appends (a reader never passes an event still being
    /// written). A store whose log is written elsewhere (a cluster's stream,
    /// written by the event bus before local delivery) has nothing to do.
    fn append_event(&self, topic: &str, event: &[u8]) -> Result<(), StoreError>;

    /// Up to `limit` events of `topic` from sequence `from` on, in order.
    fn events_from(
        &self,
        topic: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;

    /// Deletes a topic's events below `seq` (every subscriber is past them).
    fn trim_events(&self, topic: &str, below: u64) -> Result<usize, StoreError>;

    /// Events of `topic` waiting from `from` on, counted up to `cap`: cheap
    /// enough for every scrape of `/metrics`.
    fn backlog(&self, topic: &str, from: u64, cap: usize) -> Result<usize, StoreError> {
        self.events_from(topic, from, cap).map(|e| e.len())
    }

    fn put_cursor(
        &self,
        topic: &str,
        module: &str,
        key: &str,
        c: CursorRecord,
    ) -> Result<(), StoreError>;

    fn cursor(
        &self,
        topic: &str,
        module: &str,
        key: &str,
    ) -> Result<Option<CursorRecord>, StoreError>;

    /// The id of a new dead letter: `topic`'s event at `seq` that `module`/`key`
    /// did not take.
    fn dead_letter_id(
        &self,
        topic: &str,
        module: &str,
        key: &str,
        seq: u64,
    ) -> Result<u64, StoreError>;

    fn put_dead_letter(&self, d: &DeadLetter) -> Result<(), StoreError>;

    fn dead_letter(&self, id: u64) -> Result<Option<DeadLetter>, StoreError>;

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;

    fn remove_dead_letter(&self, id: u64) -> Result<bool, StoreError>;
}

/// Durable actor timers.
pub trait TimerStore: Send + Sync {
    fn put_timer(&self, t: &TimerRecord) -> Result<(), StoreError>;

    fn remove_timer(&self, module: &str, key: &str, tag: &str) -> Result<(), StoreError>;

    fn timers(&self) -> Result<Vec<TimerRecord>, StoreError>;
}

/// Every persistence concern at once: what a node holds as its store.
pub trait Persistence: Durability + Registry + SnapshotStore + EventLog + TimerStore {}

impl<T: Durability + Registry + SnapshotStore + EventLog + TimerStore> Persistence for T {}

fn json_records<T: DeserializeOwned>(
    tree: &'static str,
    raw: Vec<(String, Vec<u8>)>,
) -> Result<Vec<(String, T)>, StoreError> {
    raw.into_iter()
        .map(|(name, bytes)| {
            let record = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                tree,
                key: name.clone(),
                detail: e.to_string(),
            })?;
            Ok((name, record))
        })
        .collect()
}

impl dyn Persistence + '_ {
    /// Writes a module's registry record as JSON (readable; new fields can be
    /// added with defaults).
    pub fn put_module<T: Serialize>(&self, name: &str, record: &T) -> Result<(), StoreError> {
        self.put_module_json(
            name,
            serde_json::to_vec(record).expect("records are plain data"),
        )
    }

    /// Every module record, in name order. An unreadable record is an error,
    /// not silently skipped.
    pub fn modules<T: DeserializeOwned>(&self) -> Result<Vec<(String, T)>, StoreError> {
        json_records("modules", self.modules_json()?)
    }

    /// Writes a tenant's record as JSON.
    pub fn put_tenant<T: Serialize>(&self, name: &str, record: &T) -> Result<(), StoreError> {
        self.put_tenant_json(
            name,
            serde_json::to_vec(record).expect("records are plain data"),
        )
    }

    /// Every tenant record, in name order.
    pub fn tenants<T: DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        Ok(json_records("tenants", self.tenants_json()?)?
            .into_iter()
            .map(|(_, t)| t)
            .collect())
    }
}
