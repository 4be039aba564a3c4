//! Actor snapshots in the cluster: replicated in a JetStream KV bucket
//! (`NAME-snapshots`, with the cluster's replicas), so that when a node dies
//! another one reactivates its actors from their last durable snapshot. The
//! node's sled store stays underneath as a cache and keeps the local registry
//! copy; the store's other seams are implemented here over the cluster's
//! buckets (timers, subscriptions, the at-least-once log: see
//! [`crate::partitioned`] and [`crate::event_log`]).
//!
//! Fencing: every write is a compare-and-set at the revision this node last
//! read or wrote for that actor. A node that activates an actor it has no
//! revision for reads the snapshot from the stream leader and rewrites it at
//! that revision (an empty marker when there is none) before using it: from
//! then on a write from any earlier owner — a paused node resuming, a node
//! that was cut off — is refused by JetStream, and that copy is evicted. A
//! write is also refused locally once placement says the actor's partition is
//! not this node's.

use crate::Records;
use crate::metrics::ClusterMetrics;
use crate::placement::partition;
use anthill_actors::Runtime;
use anthill_core::{Address, Placement};
use anthill_store::{
    CursorRecord, DeadLetter, Snapshot, SnapshotPut, Store, StoreError, SubscriptionRecord,
    TimerRecord,
};
use async_nats::jetstream::kv;
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tokio::sync::{mpsc, watch};

/// Writes to NATS in flight at once, across actors.
const IN_FLIGHT: usize = 128;

/// Actors whose revision this node remembers before it forgets the idle ones.
const REMEMBERED: usize = 200_000;

type ActorKey = (String, String);

/// What this node knows of one actor's replicated snapshot.
#[derive(Debug, Default)]
struct Known {
    /// The revision this node last read (and fenced) or wrote. `None` while
    /// the first write this node made is the only one: never happens, as an
    /// actor is read before it writes.
    revision: Option<u64>,
    /// A snapshot is stored (not only the fencing marker).
    present: bool,
    /// The sequence of this node's last queued write for it.
    last_put: u64,
    /// Which read made this entry. A copy of the actor that is being
    /// evicted can still queue a write after a newer copy read (and fenced)
    /// the actor again; such a write carries the older generation and is
    /// refused here rather than land on the newer copy's revision.
    generation: u64,
}

enum Op {
    Put(bytes::Bytes),
    Delete,
}

struct Write {
    actor: ActorKey,
    seq: u64,
    generation: u64,
    op: Op,
}

/// Why a write did not land.
enum Refusal {
    /// JetStream (or this node) refused it: the copy stops.
    Fenced(String),
    /// A newer copy of the actor on this node read it again since: the
    /// write was from a copy on its way out; only its waiter hears of it.
    Stale,
}

/// State shared by the store, its writer task and placement.
pub(crate) struct Replication {
    known: Mutex<HashMap<ActorKey, Known>>,
    /// Writes NATS refused, by actor: the latest sequence refused, and why.
    refused: Mutex<HashMap<ActorKey, (u64, String)>>,
    /// Writes of copies on their way out, refused here (see
    /// [`Known::generation`]), until their waiter hears of it.
    stale: Mutex<std::collections::HashSet<u64>>,
    queued: AtomicU64,
    generations: AtomicU64,
    committed: watch::Sender<u64>,
    placement: OnceLock<Arc<dyn Placement>>,
    runtime: OnceLock<Weak<Runtime>>,
    metrics: OnceLock<ClusterMetrics>,
}

impl Replication {
    pub(crate) fn new() -> Arc<Replication> {
        Arc::new(Replication {
            known: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            stale: Mutex::new(std::collections::HashSet::new()),
            queued: AtomicU64::new(0),
            generations: AtomicU64::new(0),
            committed: watch::Sender::new(0),
            placement: OnceLock::new(),
            runtime: OnceLock::new(),
            metrics: OnceLock::new(),
        })
    }

    /// Placement and the runtime, once they exist.
    pub(crate) fn attach(
        &self,
        placement: Arc<dyn Placement>,
        runtime: &Arc<Runtime>,
        metrics: ClusterMetrics,
    ) {
        let _ = self.placement.set(placement);
        let _ = self.runtime.set(Arc::downgrade(runtime));
        let _ = self.metrics.set(metrics);
    }

    /// The partition left this node: what it knew of its actors is stale.
    pub(crate) fn forget_partition(&self, p: u32) {
        self.known
            .lock()
            .expect("snapshot revisions")
            .retain(|(m, k), _| partition(&Address::new(m.as_str(), k.as_str())) != p);
    }

    fn owns(&self, module: &str, key: &str) -> bool {
        self.placement
            .get()
            .is_some_and(|p| p.is_here(&Address::new(module, key)))
    }

    /// Remembers that write `seq` of `actor` did not land, for its waiter
    /// (and any earlier one).
    fn note_refused(&self, actor: &ActorKey, seq: u64, why: &str) {
        let mut refused = self.refused.lock().expect("refused writes");
        if refused.len() > REMEMBERED {
            refused.clear();
        }
        let entry = refused
            .entry(actor.clone())
            .or_insert_with(|| (seq, why.to_owned()));
        if seq >= entry.0 {
            *entry = (seq, why.to_owned());
        }
    }

    /// Write `seq` came from a copy on its way out and was not sent.
    fn note_stale(&self, seq: u64) {
        if let Some(m) = self.metrics.get() {
            m.snapshot_refusals.inc();
        }
        let mut stale = self.stale.lock().expect("stale writes");
        if stale.len() > REMEMBERED {
            stale.clear();
        }
        stale.insert(seq);
    }

    fn refuse(&self, actor: &ActorKey, seq: u64, why: String) {
        tracing::warn!(actor = %format!("{}/{}", actor.0, actor.1), error = %why, "snapshot write refused; this copy of the actor stops");
        if let Some(m) = self.metrics.get() {
            m.snapshot_refusals.inc();
        }
        self.known.lock().expect("snapshot revisions").remove(actor);
        self.note_refused(actor, seq, &why);
        // The copy here ran ahead of what NATS holds (or belongs elsewhere):
        // drop it, so its next message reactivates it from NATS.
        if let Some(runtime) = self.runtime.get().and_then(Weak::upgrade) {
            let address = Address::new(actor.0.as_str(), actor.1.as_str());
            tokio::spawn(async move {
                runtime
                    .evict_actors(
                        &|a| *a == address,
                        &format!("its snapshot was refused: {why}"),
                    )
                    .await;
            });
        }
    }
}

/// The store a clustered node runs on.
pub(crate) struct ReplicatedStore {
    local: Arc<Store>,
    kv: kv::Store,
    records: Records,
    shared: Arc<Replication>,
    writes: mpsc::UnboundedSender<Write>,
}

/// The bucket key of an actor: `MODULE.k` + the key in hex (actor keys are
/// free text; KV keys are not).
fn kv_key(module: &str, key: &str) -> String {
    format!("{module}.k{}", hex::encode(key.as_bytes()))
}

fn replicated(doing: String, detail: impl ToString) -> StoreError {
    StoreError::Replicated {
        doing,
        detail: detail.to_string(),
    }
}

/// Runs `f` to completion from synchronous store code on a runtime thread.
fn block_on<F: std::future::Future>(doing: &str, f: F) -> Result<F::Output, StoreError> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| h.block_on(f)))
        }
        _ => Err(replicated(
            doing.to_owned(),
            "the replicated store runs on tokio's multi-thread runtime only",
        )),
    }
}

impl ReplicatedStore {
    /// The store over `local`, writing snapshots to `kv`. Starts its writer.
    pub(crate) fn new(
        local: Arc<Store>,
        kv: kv::Store,
        shared: Arc<Replication>,
        records: Records,
    ) -> ReplicatedStore {
        let (writes, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_all(kv.clone(), shared.clone(), queue));
        ReplicatedStore {
            local,
            kv,
            records,
            shared,
            writes,
        }
    }

    /// Reads an actor's snapshot from the stream leader and rewrites it at
    /// the revision read: the fence. Returns the value (empty: none) and the
    /// revision now held.
    async fn read_and_fence(&self, key: &str) -> Result<(bytes::Bytes, u64), String> {
        let mut last = String::new();
        for _ in 0..5 {
            let (value, revision) = match crate::latest::latest(&self.kv, key).await? {
                // A delete marker's value is already empty.
                Some(m) => (m.value, m.revision),
                None => (bytes::Bytes::new(), 0),
            };
            match self.kv.update(key, value.clone(), revision).await {
                Ok(fenced) => return Ok((value, fenced)),
                // Another node wrote in between: read again.
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!("its record kept changing under this node ({last})"))
    }

    /// Reads without fencing (for a question, not an activation).
    async fn read(&self, key: &str) -> Result<bool, String> {
        Ok(crate::latest::latest(&self.kv, key)
            .await?
            .and_then(|m| m.present().map(|v| !v.is_empty()))
            .unwrap_or(false))
    }

    fn queue(&self, actor: ActorKey, op: Op) -> Result<u64, StoreError> {
        // Numbered and sent under one lock, so writes reach the writer in
        // the order of their numbers: `committed` passing a number then
        // means every write up to it was applied (or refused). Numbered
        // apart, a later write could be committed first and let an earlier
        // one's waiter acknowledge a write not yet sent (seen under load).
        let mut known = self.shared.known.lock().expect("snapshot revisions");
        let entry = known
            .get_mut(&actor)
            .filter(|k| k.revision.is_some())
            .ok_or_else(|| {
                replicated(
                    format!("saving the snapshot of {}/{}", actor.0, actor.1),
                    "this node no longer holds the actor's revision (its partition moved, or an earlier write was refused): the copy here stops and the actor reactivates from the replicated snapshot",
                )
            })?;
        let seq = self.shared.queued.fetch_add(1, Ordering::Relaxed) + 1;
        entry.last_put = seq;
        if let Op::Put(_) = op {
            entry.present = true;
        }
        let generation = entry.generation;
        self.writes
            .send(Write {
                actor,
                seq,
                generation,
                op,
            })
            .map_err(|_| replicated("saving a snapshot".into(), "the node is stopping"))?;
        drop(known);
        Ok(seq)
    }
}

/// The writer: takes what is queued, keeps the last write of each actor,
/// sends them concurrently, then marks them committed (a group commit over
/// NATS, as the sled store does over fsync).
async fn write_all(
    kv: kv::Store,
    shared: Arc<Replication>,
    mut queue: mpsc::UnboundedReceiver<Write>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch: HashMap<ActorKey, Write> = HashMap::new();
        let mut top = first.seq;
        batch.insert(first.actor.clone(), first);
        while batch.len() < 4096 {
            let Ok(w) = queue.try_recv() else { break };
            top = top.max(w.seq);
            // A later write of the same copy carries the earlier one's
            // state forward; one of another copy does not.
            if let Some(replaced) = batch.insert(w.actor.clone(), w)
                && batch[&replaced.actor].generation != replaced.generation
            {
                shared.note_stale(replaced.seq);
            }
        }
        futures::stream::iter(batch.into_values())
            .for_each_concurrent(IN_FLIGHT, |w| {
                let (kv, shared) = (kv.clone(), shared.clone());
                async move {
                    match apply(&kv, &shared, &w).await {
                        Ok(()) => {}
                        Err(Refusal::Fenced(why)) => shared.refuse(&w.actor, w.seq, why),
                        Err(Refusal::Stale) => shared.note_stale(w.seq),
                    }
                }
            })
            .await;
        shared.committed.send_modify(|c| *c = (*c).max(top));
    }
}

/// What the waiter of a write from a copy on its way out hears.
const STALE: &str = "a newer copy of the actor read its snapshot again before this write left (this copy was being evicted)";

async fn apply(kv: &kv::Store, shared: &Replication, w: &Write) -> Result<(), Refusal> {
    let (module, key) = (&w.actor.0, &w.actor.1);
    let revision = match shared
        .known
        .lock()
        .expect("snapshot revisions")
        .get(&w.actor)
    {
        Some(k) if k.generation != w.generation => return Err(Refusal::Stale),
        Some(Known {
            revision: Some(r), ..
        }) => *r,
        _ => {
            return Err(Refusal::Fenced(
                "its partition moved away from this node before the write left".into(),
            ));
        }
    };
    let bucket_key = kv_key(module, key);
    match &w.op {
        Op::Put(bytes) => {
            let written = kv
                .update(&bucket_key, bytes.clone(), revision)
                .await
                .map_err(|e| {
                    Refusal::Fenced(format!("JetStream refused it at revision {revision} ({e}): another node owns the actor now, or NATS is unavailable"))
                })?;
            if let Some(k) = shared
                .known
                .lock()
                .expect("snapshot revisions")
                .get_mut(&w.actor)
                .filter(|k| k.generation == w.generation)
            {
                k.revision = Some(written);
            }
        }
        Op::Delete => {
            kv.delete_expect_revision(&bucket_key, Some(revision))
                .await
                .map_err(|e| Refusal::Fenced(format!("JetStream refused the removal ({e})")))?;
            // The marker's revision is not returned: read again next time.
            let mut known = shared.known.lock().expect("snapshot revisions");
            if known
                .get(&w.actor)
                .is_some_and(|k| k.generation == w.generation)
            {
                known.remove(&w.actor);
            }
        }
    }
    Ok(())
}

impl anthill_store::Durability for ReplicatedStore {
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let target = self.shared.queued.load(Ordering::Relaxed);
            let mut committed = self.shared.committed.subscribe();
            committed
                .wait_for(|c| *c >= target)
                .await
                .map_err(|_| replicated("flushing snapshots".into(), "the writer stopped"))?;
            self.local.flush().await
        })
    }

    fn health(&self) -> Result<(), String> {
        self.local.health()
    }

    fn flushes(&self) -> u64 {
        self.local.flushes()
    }

    fn disk_bytes(&self) -> u64 {
        self.local.disk_bytes()
    }
}

impl anthill_store::SnapshotStore for ReplicatedStore {
    fn put_snapshot(
        &self,
        module: &str,
        key: &str,
        snap: &Snapshot,
    ) -> Result<SnapshotPut, StoreError> {
        if !self.shared.owns(module, key) {
            return Err(replicated(
                format!("saving the snapshot of {module}/{key}"),
                "this node does not own the actor's partition now (another node took it over, or the node lost touch with NATS): the write is refused and the copy here stops",
            ));
        }
        let bytes = bytes::Bytes::from(snap.encode());
        let ticket = self.queue((module.to_owned(), key.to_owned()), Op::Put(bytes))?;
        // The cache keeps the tenant's storage count; NATS is the truth.
        let grew = self.local.put_snapshot(module, key, snap)?.grew;
        Ok(SnapshotPut { grew, ticket })
    }

    fn commit_snapshot<'a>(
        &'a self,
        module: &'a str,
        key: &'a str,
        ticket: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let actor = (module.to_owned(), key.to_owned());
            let mut committed = self.shared.committed.subscribe();
            committed
                .wait_for(|c| *c >= ticket)
                .await
                .map_err(|_| replicated("committing a snapshot".into(), "the writer stopped"))?;
            let doing = || format!("saving the snapshot of {module}/{key}");
            if self
                .shared
                .stale
                .lock()
                .expect("stale writes")
                .remove(&ticket)
            {
                return Err(replicated(doing(), STALE));
            }
            // Kept, not taken: another copy's waiter may need it too. A
            // refusal of a later write fails an earlier one that may have
            // landed: "may or may not have been applied", never the reverse.
            let refused = self
                .shared
                .refused
                .lock()
                .expect("refused writes")
                .get(&actor)
                .cloned();
            match refused {
                Some((at, why)) if at >= ticket => Err(replicated(doing(), why)),
                _ => Ok(()),
            }
        })
    }

    fn get_snapshot(&self, module: &str, key: &str) -> Result<Option<Snapshot>, StoreError> {
        let actor = (module.to_owned(), key.to_owned());
        let cached = self
            .shared
            .known
            .lock()
            .expect("snapshot revisions")
            .get(&actor)
            .is_some_and(|k| k.revision.is_some());
        if cached {
            return self.local.get_snapshot(module, key);
        }
        let doing = format!("reading the snapshot of {module}/{key}");
        let bucket_key = kv_key(module, key);
        let (value, revision) = block_on(&doing, self.read_and_fence(&bucket_key))?
            .map_err(|e| replicated(doing.clone(), e))?;
        let snap = if value.is_empty() {
            self.local.remove_snapshot(module, key)?;
            None
        } else {
            let snap = Snapshot::decode(&value).map_err(|detail| StoreError::Corrupt {
                tree: "snapshots (replicated)",
                key: format!("{module}/{key}"),
                detail,
            })?;
            self.local.put_snapshot(module, key, &snap)?;
            Some(snap)
        };
        let mut known = self.shared.known.lock().expect("snapshot revisions");
        if known.len() >= REMEMBERED {
            known.retain(|_, k| k.last_put > self.shared.committed.borrow().to_owned());
        }
        known.insert(
            actor,
            Known {
                revision: Some(revision),
                present: snap.is_some(),
                last_put: 0,
                generation: self.shared.generations.fetch_add(1, Ordering::Relaxed) + 1,
            },
        );
        Ok(snap)
    }

    fn has_snapshot(&self, module: &str, key: &str) -> Result<bool, StoreError> {
        let actor = (module.to_owned(), key.to_owned());
        if let Some(k) = self
            .shared
            .known
            .lock()
            .expect("snapshot revisions")
            .get(&actor)
            .filter(|k| k.revision.is_some())
        {
            return Ok(k.present);
        }
        let doing = format!("reading the snapshot of {module}/{key}");
        block_on(&doing, self.read(&kv_key(module, key)))?.map_err(|e| replicated(doing, e))
    }

    fn remove_snapshot(&self, module: &str, key: &str) -> Result<(), StoreError> {
        self.queue((module.to_owned(), key.to_owned()), Op::Delete)?;
        self.local.remove_snapshot(module, key)
    }

    fn remove_snapshots(&self, module: &str) -> Result<usize, StoreError> {
        let removed = self.local.remove_snapshots(module)?;
        self.shared
            .known
            .lock()
            .expect("snapshot revisions")
            .retain(|(m, _), _| m != module);
        let doing = format!("removing the snapshots of {module}");
        let prefix = format!("{module}.");
        let purge = async {
            let mine = crate::join::keys_where(&self.kv, |k| k.starts_with(&prefix)).await?;
            for k in &mine {
                self.kv.purge(k).await.map_err(|e| e.to_string())?;
            }
            Ok::<usize, String>(mine.len())
        };
        let purged = block_on(&doing, purge)?.map_err(|e| replicated(doing, e))?;
        Ok(removed.max(purged))
    }

    fn snapshot_keys(&self, module: &str) -> Result<Vec<String>, StoreError> {
        self.local.snapshot_keys(module)
    }

    fn snapshot_bytes(&self, module: &str) -> Result<u64, StoreError> {
        self.local.snapshot_bytes(module)
    }
}

impl anthill_store::Registry for ReplicatedStore {
    fn put_module_json(&self, name: &str, record: Vec<u8>) -> Result<(), StoreError> {
        self.local.put_module_json(name, record)
    }

    fn remove_module(&self, name: &str) -> Result<(), StoreError> {
        self.local.remove_module(name)
    }

    fn modules_json(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.local.modules_json()
    }

    fn component_path(&self, sha256: &str) -> PathBuf {
        self.local.component_path(sha256)
    }

    fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.local.put_component(sha256, bytes)
    }

    fn read_component(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        self.local.read_component(sha256)
    }

    fn prune_components(
        &self,
        keep: &std::collections::HashSet<String>,
    ) -> Result<Vec<String>, StoreError> {
        self.local.prune_components(keep)
    }

    fn remove_module_state(&self, module: &str) -> Result<(), StoreError> {
        self.local.remove_module_state(module)?;
        let doing = format!("removing the timers of {module}");
        let purge = async {
            self.records.timers.remove_module(module).await?;
            self.records.log.cursors.remove_module(module).await?;
            self.records.subscriptions.remove_module(module).await
        };
        block_on(&doing, purge)?.map_err(|e| replicated(doing, e))
    }

    fn put_tenant_json(&self, name: &str, record: Vec<u8>) -> Result<(), StoreError> {
        self.local.put_tenant_json(name, record)
    }

    fn remove_tenant(&self, name: &str) -> Result<(), StoreError> {
        self.local.remove_tenant(name)
    }

    fn tenants_json(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.local.tenants_json()
    }
}

/// Subscriptions and at-least-once cursors live in the cluster's buckets
/// and follow their actor's partition (see [`crate::partitioned`]); the log
/// is the cluster's event stream and dead letters have a bucket of their own
/// (see [`crate::event_log`]). The node's sled keeps a copy of the cursors
/// of the subscriptions it serves, which its delivery workers read.
impl anthill_store::EventLog for ReplicatedStore {
    fn put_subscription(&self, s: &SubscriptionRecord) -> Result<(), StoreError> {
        if !self.shared.owns(&s.module, &s.key) {
            return Err(replicated(
                format!(
                    "saving the subscription of {}/{} to {}",
                    s.module, s.key, s.topic
                ),
                "this node does not own the actor's partition now",
            ));
        }
        self.records
            .subscriptions
            .put(&s.module, &s.key, &s.topic, s)
    }

    fn remove_subscription(&self, topic: &str, module: &str, key: &str) -> Result<(), StoreError> {
        self.local.remove_subscription(topic, module, key)?;
        self.records.log.cursors.remove(module, key, topic)?;
        self.records.subscriptions.remove(module, key, topic)
    }

    /// None at start: a node serves the subscriptions of each partition it
    /// claims, when it claims it.
    fn subscriptions(&self) -> Result<Vec<SubscriptionRecord>, StoreError> {
        Ok(Vec::new())
    }

    fn log_end(&self, topic: &str) -> Result<u64, StoreError> {
        let doing = format!("finding the end of the cluster's log of {topic}");
        block_on(&doing, self.records.log.end())?.map_err(|e| replicated(doing, e))
    }

    /// The event bus wrote it to the cluster's stream before delivering.
    fn append_event(&self, _topic: &str, _event: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }

    fn events_from(
        &self,
        topic: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let doing = format!("reading the cluster's log of {topic}");
        block_on(&doing, self.records.log.read(topic, from, limit))?
            .map_err(|e| replicated(doing, e))
    }

    /// The stream drops events by age (a day), not by delivery.
    fn trim_events(&self, _topic: &str, _below: u64) -> Result<usize, StoreError> {
        Ok(0)
    }

    /// 1 when anything waits: counting a stream subject's events past a
    /// sequence would cost a read each.
    fn backlog(&self, topic: &str, from: u64, _cap: usize) -> Result<usize, StoreError> {
        let doing = format!("checking the cluster's log of {topic}");
        block_on(&doing, self.records.log.waiting(topic, from))?
            .map(usize::from)
            .map_err(|e| replicated(doing, e))
    }

    fn put_cursor(
        &self,
        topic: &str,
        module: &str,
        key: &str,
        c: CursorRecord,
    ) -> Result<(), StoreError> {
        if !self.shared.owns(module, key) {
            return Err(replicated(
                format!("saving the cursor of {module}/{key} in {topic}"),
                "this node does not own the actor's partition now",
            ));
        }
        self.local.put_cursor(topic, module, key, c)?;
        let replicated = crate::event_log::ReplicatedCursor {
            topic: topic.to_owned(),
            module: module.to_owned(),
            key: key.to_owned(),
            next: c.next,
            attempts: c.attempts,
        };
        self.records
            .log
            .cursors
            .put(module, key, topic, &replicated)
    }

    fn cursor(
        &self,
        topic: &str,
        module: &str,
        key: &str,
    ) -> Result<Option<CursorRecord>, StoreError> {
        self.local.cursor(topic, module, key)
    }

    fn dead_letter_id(
        &self,
        topic: &str,
        module: &str,
        key: &str,
        seq: u64,
    ) -> Result<u64, StoreError> {
        Ok(crate::event_log::dead_letter_id(topic, module, key, seq))
    }

    fn put_dead_letter(&self, d: &DeadLetter) -> Result<(), StoreError> {
        let doing = format!("saving dead letter {} in the cluster", d.id);
        block_on(&doing, self.records.log.put_dead_letter(d))?.map_err(|e| replicated(doing, e))
    }

    fn dead_letter(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        let doing = format!("reading dead letter {id} from the cluster");
        block_on(&doing, self.records.log.dead_letter(id))?.map_err(|e| replicated(doing, e))
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let doing = "listing the cluster's dead letters".to_owned();
        block_on(&doing, self.records.log.dead_letters())?.map_err(|e| replicated(doing, e))
    }

    fn remove_dead_letter(&self, id: u64) -> Result<bool, StoreError> {
        let doing = format!("removing dead letter {id} from the cluster");
        block_on(&doing, self.records.log.remove_dead_letter(id))?.map_err(|e| replicated(doing, e))
    }
}

/// Durable timers live in the cluster's bucket (see [`crate::timers`]); the
/// owner of a partition schedules its actors' timers.
impl anthill_store::TimerStore for ReplicatedStore {
    fn put_timer(&self, t: &TimerRecord) -> Result<(), StoreError> {
        if !self.shared.owns(&t.module, &t.key) {
            return Err(replicated(
                format!("saving timer {} of {}/{}", t.tag, t.module, t.key),
                "this node does not own the actor's partition now",
            ));
        }
        self.records.timers.put(&t.module, &t.key, &t.tag, t)
    }

    fn remove_timer(&self, module: &str, key: &str, tag: &str) -> Result<(), StoreError> {
        self.records.timers.remove(module, key, tag)
    }

    /// None at start: a node schedules the timers of each partition it
    /// claims, when it claims it.
    fn timers(&self) -> Result<Vec<TimerRecord>, StoreError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_keys_are_valid_for_any_actor_key() {
        assert_eq!(kv_key("counter", ""), "counter.k");
        assert_eq!(kv_key("room", "a b/ü"), "room.k6120622fc3bc");
        // Distinct actor keys stay distinct.
        assert_ne!(kv_key("m", "ab"), kv_key("m", "a.b"));
    }
}
