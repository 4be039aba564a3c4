//! One live actor per address, cluster-wide. Every actor falls in one of
//! [`PARTITIONS`] partitions (a hash of module and key); each partition has
//! one owner, named by a claim record in the `partitions` bucket that only
//! compare-and-set writes (create when nobody holds it; update at the last
//! revision for a restarted owner). The node that first needs a partition
//! nobody holds claims it; the others read the claim and forward to the owner
//! over NATS request/reply, so 1,000 racing first messages activate each
//! actor exactly once.
//!
//! Claims are sticky while the owner lives. An owner that is gone — silent
//! for `dead_after_ms`, restarted, or left — loses a partition to the first
//! node that needs it: that node replaces the claim by compare-and-set at the
//! revision it read (so one node wins), and the actors reactivate there from
//! their replicated snapshots (see [`crate::snapshots`]). The old owner's
//! lease ran out a beat before anyone could take over; when it hears of the
//! new claim it evicts its copies, and any write they still attempt is
//! refused by the snapshot's compare-and-set.

use crate::event_log::ReplicatedCursor;
use crate::join::Nats;
use crate::membership::{Lease, Peers};
use crate::metrics::ClusterMetrics;
use crate::rooms::Rooms;
use crate::snapshots::Replication;
use crate::wire::{self, Forwarded, Op};
use anthill_actors::Runtime;
use anthill_actors::actor::Envelope;
use anthill_core::{Address, CallChain, CallError, Placement, Sender};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

/// Partitions of the actor space. Fixed for the life of a cluster: every node
/// must hash an address to the same partition.
pub const PARTITIONS: u32 = 64;

/// Sends queued for one node before further sends to it are refused.
const SEND_QUEUE: usize = 16_384;

/// Highest-random-weight of `node` for partition `p`: the live node with the
/// highest takes over a dead owner's partition.
fn rendezvous(p: u32, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(p);
    for b in node.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h.wrapping_mul(0xff51_afd7_ed55_8ccd)
}

/// The subject `node` reads forwarded messages on.
fn deliver_subject(cluster: &str, node: &str) -> String {
    format!("{cluster}.node.{node}.deliver")
}

/// The partition of the actor at `to` (FNV-1a of module and key).
pub fn partition(to: &Address) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in to.module.bytes().chain([0]).chain(to.key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % u64::from(PARTITIONS)) as u32
}

/// A claim record: who owns the partition, and which start of that node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claim {
    node: String,
    incarnation: u64,
}

/// The placement of one node.
pub(crate) struct ClusterPlacement(Arc<Inner>);

struct Inner {
    nats: Nats,
    /// Without it, this node serves no actor.
    lease: Arc<Lease>,
    /// The lease lapses this node has recovered from: while the lease's
    /// count is ahead, what the table says of this node is unverified.
    epoch: AtomicU64,
    /// Who is alive, for taking over a dead owner's partitions.
    peers: Arc<Peers>,
    /// The replicated snapshots' revisions, forgotten with a partition.
    replication: Arc<Replication>,
    records: crate::Records,
    /// Rooms with members on other nodes, and rooms elsewhere with members
    /// here.
    rooms: Arc<Rooms>,
    heartbeat: Duration,
    metrics: ClusterMetrics,
    cluster: String,
    me: Claim,
    /// What this node knows of each partition's owner.
    table: RwLock<Vec<Option<Claim>>>,
    runtime: Weak<Runtime>,
    /// One ordered queue of sends per destination node: NATS keeps the order
    /// of one connection's publishes, so sends keep theirs.
    sends: crate::outbox::Outbox,
}

/// Who this node is, and what says whether it may serve: its lease, what it
/// sees of the others, and the replicated snapshots it fences.
pub(crate) struct Standing {
    /// The cluster's name (the subject prefix).
    pub(crate) cluster: String,
    /// This node's name.
    pub(crate) node: String,
    /// This start of it.
    pub(crate) incarnation: u64,
    pub(crate) lease: Arc<Lease>,
    pub(crate) peers: Arc<Peers>,
    pub(crate) replication: Arc<Replication>,
    /// The partitions' timers and subscriptions, adopted with each claim.
    pub(crate) records: crate::Records,
    pub(crate) rooms: Arc<Rooms>,
    /// How often to look for dead owners' partitions.
    pub(crate) heartbeat: Duration,
}

impl ClusterPlacement {
    pub(crate) fn new(
        nats: Nats,
        standing: Standing,
        metrics: ClusterMetrics,
        runtime: &Arc<Runtime>,
    ) -> ClusterPlacement {
        let Standing {
            cluster,
            node,
            incarnation,
            lease,
            peers,
            replication,
            records,
            rooms,
            heartbeat,
        } = standing;
        let prefix = cluster.clone();
        let sends = crate::outbox::Outbox::new(
            nats.client.clone(),
            move |node| deliver_subject(&prefix, node),
            SEND_QUEUE,
            "a send",
        );
        ClusterPlacement(Arc::new(Inner {
            nats,
            epoch: AtomicU64::new(lease.lapses()),
            lease,
            peers,
            replication,
            records,
            rooms,
            heartbeat,
            metrics,
            cluster,
            me: Claim { node, incarnation },
            table: RwLock::new(vec![None; PARTITIONS as usize]),
            runtime: Arc::downgrade(runtime),
            sends,
        }))
    }

    /// Serves what other nodes forward here, on a task of its own.
    pub(crate) async fn serve(&self) -> Result<tokio::task::JoinHandle<()>, crate::ClusterError> {
        let subject = self.0.subject(&self.0.me.node);
        let mut incoming = self
            .0
            .nats
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|e| {
                crate::ClusterError::Unavailable(format!("subscribing to {subject}: {e}"))
            })?;
        let inner = self.0.clone();
        Ok(tokio::spawn(async move {
            while let Some(msg) = incoming.next().await {
                inner.clone().receive(msg).await;
            }
        }))
    }

    /// Follows claim changes (an owner restarted, a claim moved), so the
    /// table does not route to a stale owner for longer than one try.
    pub(crate) async fn follow_claims(self) {
        loop {
            match self.0.nats.partitions.watch_all().await {
                Ok(mut watch) => {
                    while let Some(Ok(entry)) = watch.next().await {
                        let Some(p) = entry
                            .key
                            .strip_prefix("p")
                            .and_then(|n| n.parse::<u32>().ok())
                            .filter(|p| *p < PARTITIONS)
                        else {
                            continue;
                        };
                        self.0
                            .set(p, serde_json::from_slice::<Claim>(&entry.value).ok());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot watch partition claims; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// After a lapse of the lease (the node was paused or cut off past it),
    /// another node may have taken any of this node's partitions: until each
    /// claim is read again from the stream leader, none counts as here. A
    /// partition taken over evicts its copies here (see `Inner::set`); the
    /// others keep their live actors, whose next snapshot write is still
    /// checked by compare-and-set.
    pub(crate) async fn follow_lapses(self) {
        let mut lapses = self.0.lease.watch_lapses();
        while lapses.changed().await.is_ok() {
            let lapse = *lapses.borrow_and_update();
            let mine: Vec<u32> = {
                let mut table = self.0.table.write().expect("placement table");
                (0..PARTITIONS)
                    .filter(|p| {
                        let c = &mut table[*p as usize];
                        let was = c.as_ref() == Some(&self.0.me);
                        if was {
                            *c = None;
                        }
                        was
                    })
                    .collect()
            };
            tracing::warn!(
                lapse,
                partitions = mine.len(),
                "this node's lease lapsed (paused or cut off from NATS): reading its claims again before serving"
            );
            for p in mine {
                while let Err(e) = self.0.resolve(p).await {
                    tracing::debug!(partition = p, error = %e, "claim not read yet; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            self.0.epoch.store(lapse, Ordering::Release);
        }
    }

    /// Takes over the partitions of dead owners without waiting for a
    /// message (a room that only ticks, an actor with only a timer due): each
    /// beat, every partition whose owner is gone is claimed by the live node
    /// that a hash of the partition and the node names prefers, so the
    /// survivors share them.
    pub(crate) async fn take_over_the_dead(self) {
        let mut tick = tokio::time::interval(self.0.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !(self.0.lease.holds() && self.0.current()) {
                continue;
            }
            let alive = self.0.peers.alive();
            for p in 0..PARTITIONS {
                let Some(owner) = self.0.known(p) else {
                    continue;
                };
                if owner == self.0.me || self.0.gone(&owner).is_none() {
                    continue;
                }
                let preferred = alive
                    .iter()
                    .filter(|n| **n != owner.node)
                    .max_by_key(|n| rendezvous(p, n));
                if preferred == Some(&self.0.me.node)
                    && let Err(e) = self.0.resolve(p).await
                {
                    tracing::debug!(partition = p, error = %e, "takeover not done yet");
                }
            }
        }
    }

    /// Every [`crate::rooms::REATTACH`]: tells the owners of the rooms that
    /// players connected here are in that they still are (after an owner
    /// died, this activates the room at the new owner), wakes such rooms
    /// that came to live here, and lets the remote members nobody attached
    /// for a while leave the rooms owned here.
    pub(crate) async fn reattach_rooms(self) {
        let mut tick = tokio::time::interval(crate::rooms::REATTACH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(runtime) = self.0.runtime.upgrade() else {
                return;
            };
            for (room, players) in self.0.rooms.visits() {
                if self.0.is_here(&room) {
                    self.0.rooms.settle(&room);
                    if let Err(e) = runtime.router.deliver_here(&runtime, &room, Envelope::Wake) {
                        tracing::warn!(%room, error = %e, "a room that moved here with players in it did not activate");
                    }
                    continue;
                }
                self.0.attach(room, players);
            }
            for (room, player) in self.0.rooms.expired() {
                if self.0.is_here(&room) {
                    tracing::info!(%room, player, "a member on another node was not attached for {} s (the resume grace): it leaves the room", self.0.rooms.member_expiry().as_secs());
                    let _ =
                        runtime
                            .router
                            .deliver_here(&runtime, &room, Envelope::Leave { player });
                }
            }
        }
    }

    /// A session resumed here (taken over from another node) is in `room`:
    /// its state and pushes come here from now on. A room owned here needs
    /// nothing more (the gateway made the player a local member); one owned
    /// elsewhere is visited, and its owner told at once rather than at the
    /// next [`crate::rooms::REATTACH`].
    pub(crate) fn attach_now(&self, room: &Address, player: u64) {
        if self.0.is_here(room) {
            return;
        }
        self.0.rooms.visit(room, player);
        self.0.attach(room.clone(), vec![player]);
    }

    /// Gives up this node's claims (a graceful stop, after its snapshots are
    /// written): the next node to need each partition claims it at once,
    /// instead of waiting for this one to be judged dead.
    pub(crate) async fn release(&self) {
        let kv = &self.0.nats.partitions;
        let mine: Vec<u32> = (0..PARTITIONS)
            .filter(|p| self.0.known(*p).as_ref() == Some(&self.0.me))
            .collect();
        for p in mine {
            let key = format!("p{p}");
            let Ok(Some(m)) = crate::latest::latest(kv, &key).await else {
                continue;
            };
            if m.present()
                .and_then(|v| serde_json::from_slice::<Claim>(v).ok())
                .as_ref()
                == Some(&self.0.me)
                && let Err(e) = kv.delete_expect_revision(&key, Some(m.revision)).await
            {
                tracing::debug!(partition = p, error = %e, "claim not released");
            }
        }
    }

    pub(crate) fn clone_handle(&self) -> ClusterPlacement {
        ClusterPlacement(self.0.clone())
    }

    /// Whether this node owns `to`'s partition, claiming it if nobody does.
    async fn owns(&self, to: &Address) -> Result<bool, CallError> {
        Ok(self.0.resolve(partition(to)).await? == self.0.me)
    }
}

impl Inner {
    /// Refuses to serve once NATS stopped taking this node's beats: another
    /// node may be about to own its actors.
    fn check_lease(&self) -> Result<(), CallError> {
        if self.lease.holds() && self.current() {
            return Ok(());
        }
        if self.lease.holds() {
            return Err(CallError::Unavailable(
                "this node is catching up after losing touch with the cluster; retry".into(),
            ));
        }
        Err(CallError::Unavailable(match self.lease.age() {
            Some(age) => format!(
                "this node has not reached NATS for {:.1} s: it serves no actors until it can (see /healthz)",
                age.as_secs_f64()
            ),
            None => "this node has not joined the cluster yet".into(),
        }))
    }

    /// No lapse of the lease is still being recovered from.
    fn current(&self) -> bool {
        self.epoch.load(Ordering::Acquire) == self.lease.lapses()
    }

    /// Why the claim's node no longer holds it, if it does not.
    fn gone(&self, c: &Claim) -> Option<String> {
        self.peers.gone(&c.node, c.incarnation)
    }

    fn subject(&self, node: &str) -> String {
        deliver_subject(&self.cluster, node)
    }

    /// Queues a one-way message to `node`, in the caller's order.
    fn queue_send(&self, node: &str, f: &Forwarded) -> Result<Vec<u8>, CallError> {
        if self.sends.send(node, f.encode()) {
            return Ok(Vec::new());
        }
        Err(CallError::Overloaded(format!(
            "{SEND_QUEUE} sends to node {node} are waiting to leave"
        )))
    }

    fn known(&self, p: u32) -> Option<Claim> {
        self.table.read().expect("placement table")[p as usize].clone()
    }

    fn set(&self, p: u32, claim: Option<Claim>) {
        let mut table = self.table.write().expect("placement table");
        let moved_away =
            claim.as_ref().is_some_and(|c| *c != self.me) && table[p as usize] != claim;
        table[p as usize] = claim.clone();
        let owned = table
            .iter()
            .filter(|c| c.as_ref() == Some(&self.me))
            .count();
        self.metrics.partitions_owned.set(owned as i64);
        drop(table);
        if moved_away {
            self.lost(p, claim.map(|c| c.node).unwrap_or_default());
        }
    }

    /// This node just claimed `p`: schedule its actors' timers and serve
    /// their subscriptions here.
    fn adopt_records(&self, p: u32) {
        let (Some(runtime), records) = (self.runtime.upgrade(), self.records.clone()) else {
            return;
        };
        tokio::spawn(async move {
            for attempt in 0..10 {
                let read = async {
                    let timers = records.timers.of_partition(p).await?;
                    let subscriptions = records.subscriptions.of_partition(p).await?;
                    let cursors = records
                        .log
                        .cursors
                        .of_partition::<ReplicatedCursor>(p)
                        .await?;
                    Ok::<_, String>((timers, subscriptions, cursors))
                };
                match read.await {
                    Ok((timers, subscriptions, cursors)) => {
                        // Where the last owner's deliveries got to: the
                        // subscriptions resume there, not at the next event.
                        for c in cursors {
                            if let Err(e) =
                                runtime
                                    .store
                                    .put_cursor(&c.topic, &c.module, &c.key, c.record())
                            {
                                tracing::warn!(partition = p, topic = %c.topic, subscriber = %format!("{}/{}", c.module, c.key), error = %e, "cannot take over a delivery cursor; the subscription starts at the next event");
                            }
                        }
                        let t = runtime.timers.adopt(timers);
                        let s = runtime.events.adopt(&runtime, subscriptions);
                        if t + s > 0 {
                            tracing::info!(
                                partition = p,
                                timers = t,
                                subscriptions = s,
                                "adopted the partition's timers and subscriptions"
                            );
                        }
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(partition = p, attempt, error = %e, "cannot read the partition's timers and subscriptions; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
    }

    /// Partition `p` is `owner`'s: what this node knew of its actors is
    /// stale, and any copies still live here stop, unsaved; their timers
    /// are the new owner's to fire.
    fn lost(&self, p: u32, owner: String) {
        self.replication.forget_partition(p);
        let Some(runtime) = self.runtime.upgrade() else {
            return;
        };
        runtime.timers.forget(&|a| partition(a) == p);
        runtime.events.forget(&|a| partition(a) == p);
        self.rooms.forget(&|a| partition(a) == p);
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let reason = format!("node {owner} owns it now; retry there");
            let n = runtime.evict_actors(&|a| partition(a) == p, &reason).await;
            if n > 0 {
                tracing::info!(
                    partition = p,
                    owner,
                    actors = n,
                    "partition moved away; its actors here stopped"
                );
                metrics.evictions.inc_by(n as u64);
            }
        });
    }

    /// The owner of partition `p`: known, read from the stream leader (a KV
    /// `get` may be answered stale by a follower), or claimed by this node.
    /// Where partition `p`, which nobody holds, should live: the live node
    /// a hash of the partition and node names prefers (the same choice on
    /// every node, as for takeovers), so that first claims spread over the
    /// cluster instead of piling on whichever node touched them first.
    /// `None` when that is this node.
    fn preferred(&self, p: u32) -> Option<Claim> {
        let alive = self.peers.alive();
        let node = alive.iter().max_by_key(|n| rendezvous(p, n))?;
        if *node == self.me.node {
            return None;
        }
        Some(Claim {
            node: node.clone(),
            incarnation: self.peers.incarnation(node)?,
        })
    }

    /// The owner of `p`, claiming it for this node if nobody holds it.
    async fn resolve(&self, p: u32) -> Result<Claim, CallError> {
        self.resolve_or_prefer(p, false).await
    }

    /// The owner of `p`; when nobody holds it and `prefer`, the node it
    /// should live on ([`Inner::preferred`]), unclaimed: a message sent
    /// there makes that node claim it.
    async fn resolve_or_prefer(&self, p: u32, prefer: bool) -> Result<Claim, CallError> {
        // A claim of this node's earlier start is reclaimed below, not used.
        if let Some(c) = self.known(p)
            && (c == self.me || (c.node != self.me.node && self.gone(&c).is_none()))
        {
            return Ok(c);
        }
        let kv = &self.nats.partitions;
        let key = format!("p{p}");
        let unavailable = |e: String| {
            CallError::Unavailable(format!(
                "cannot read the owner of partition {p} from NATS: {e}"
            ))
        };
        let mine = serde_json::to_vec(&self.me).expect("a claim serializes");
        for _ in 0..5 {
            // The revision to replace: a live claim's, or a released one's.
            let mut released = 0;
            let current = match crate::latest::latest(kv, &key).await.map_err(unavailable)? {
                Some(m) => match m.present().map(|v| serde_json::from_slice::<Claim>(v)) {
                    Some(Ok(c)) => Some((c, m.revision)),
                    _ => {
                        released = m.revision;
                        None
                    }
                },
                None => None,
            };
            if current.is_none()
                && prefer
                && let Some(there) = self.preferred(p)
            {
                return Ok(there);
            }
            // A partition nobody ever held has no timers or subscriptions to
            // adopt (only an owner makes them).
            let first_ever = current.is_none() && released == 0;
            let claimed = match current {
                Some((c, revision)) if c != self.me && c.node != self.me.node => {
                    let Some(why) = self.gone(&c) else {
                        self.set(p, Some(c.clone()));
                        return Ok(c);
                    };
                    // Its owner is gone: take it over, if no one else has.
                    match kv.update(&key, mine.clone().into(), revision).await {
                        Ok(_) => {
                            tracing::info!(partition = p, from = %c.node, reason = %why, "took over partition");
                            self.metrics.takeovers.inc();
                            true
                        }
                        Err(e) => {
                            tracing::debug!(partition = p, error = %e, "takeover refused");
                            false
                        }
                    }
                }
                Some((c, _)) if c == self.me => {
                    self.set(p, Some(c.clone()));
                    return Ok(c);
                }
                // This node's earlier start owned it: its state is here.
                // A refused write lost the race (the client reports some
                // races as "wrong last sequence" of another kind): read the
                // winner's claim on the next round.
                Some((_, revision)) => match kv.update(&key, mine.clone().into(), revision).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::debug!(partition = p, kind = ?e.kind(), error = %e, "claim refused");
                        false
                    }
                },
                None => match kv.update(&key, mine.clone().into(), released).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::debug!(partition = p, kind = ?e.kind(), error = %e, "claim refused");
                        false
                    }
                },
            };
            if claimed {
                self.set(p, Some(self.me.clone()));
                if !first_ever {
                    self.adopt_records(p);
                }
                self.metrics.claims.inc();
                tracing::debug!(partition = p, "claimed");
                return Ok(self.me.clone());
            }
        }
        Err(CallError::Overloaded(format!(
            "partition {p}: its claim kept moving; retry"
        )))
    }

    async fn deliver_here(
        &self,
        mut f: Forwarded,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        self.check_lease()?;
        let runtime = self
            .runtime
            .upgrade()
            .ok_or_else(|| CallError::Internal("the node is stopping".into()))?;
        let to = f.header.to.clone();
        let origin = f.header.origin.clone();
        match std::mem::take(&mut f.header.op) {
            Op::Message => {}
            Op::Join { player } => {
                // Recorded first: `on-join` may push to the player already.
                self.rooms.joined(&to, &origin, player);
                let joined = runtime
                    .router
                    .ask_here(&runtime, &to, timeout, |reply| Envelope::Join {
                        player,
                        reply,
                    })
                    .await;
                if joined.is_err() {
                    self.rooms.left(&to, player);
                }
                return joined.map(|()| Vec::new());
            }
            Op::Leave { player } => {
                // A session replaced by a new login elsewhere leaves late:
                // the player is in the room through its new session.
                if self.rooms.stale_leave(&to, &origin, player) {
                    tracing::debug!(room = %to, player, from = %origin, "a leave from a replaced session; ignored");
                    return Ok(Vec::new());
                }
                self.rooms.left(&to, player);
                return runtime
                    .router
                    .deliver_here(&runtime, &to, Envelope::Leave { player })
                    .map(|()| Vec::new());
            }
            Op::Attach { players } => {
                self.rooms.attached(&to, &origin, &players);
                return runtime
                    .router
                    .deliver_here(&runtime, &to, Envelope::Wake)
                    .map(|()| Vec::new());
            }
        }
        let from = f.from();
        if f.header.reply {
            let chain = f.chain();
            runtime
                .router
                .call_here(&runtime, &f.header.to, from, f.payload, timeout, chain)
                .await
        } else {
            runtime
                .router
                .send_here(&runtime, &f.header.to, from, f.payload)
                .map(|()| Vec::new())
        }
    }

    /// One forwarded message, here.
    async fn receive(self: Arc<Self>, msg: async_nats::Message) {
        let Some(f) = Forwarded::decode(&msg.payload) else {
            tracing::warn!("a forwarded message that does not decode; dropped");
            return;
        };
        let p = partition(&f.header.to);
        let reply_to = msg.reply.clone();
        let owner = match self.known(p) {
            Some(c) => Ok(c),
            None => self.resolve(p).await,
        };
        if !owner.is_ok_and(|c| c == self.me) {
            if let Some(r) = reply_to {
                let _ = self.nats.client.publish(r, wire::not_owner()).await;
            }
            return;
        }
        let timeout = Duration::from_millis(f.header.timeout_ms.max(1));
        let kind = if reply_to.is_some() { "call" } else { "send" };
        self.metrics.received.with_label_values(&[kind]).inc();
        match reply_to {
            // Calls run concurrently; sends are handed over in arrival order.
            Some(r) => {
                tokio::spawn(async move {
                    let outcome = self.deliver_here(f, timeout).await;
                    let _ = self
                        .nats
                        .client
                        .publish(r, wire::encode_reply(&outcome))
                        .await;
                });
            }
            None => {
                if let Err(e) = self.deliver_here(f, timeout).await {
                    tracing::debug!(error = %e, "a send forwarded here was refused");
                }
            }
        }
    }

    /// Tells `room`'s owner that `players`, connected here, are in it (and
    /// wakes it there); a lost attach is retried by the next reattach.
    fn attach(self: &Arc<Self>, room: Address, players: Vec<u64>) {
        let f = Forwarded::room(room.clone(), Op::Attach { players }, &self.me.node, 2_000);
        let sent = self.send(f, Duration::from_secs(2));
        tokio::spawn(async move {
            if let Err(e) = sent.await {
                tracing::debug!(%room, error = %e, "players not attached to their room on another node yet");
            }
        });
    }

    fn is_here(&self, to: &Address) -> bool {
        self.lease.holds()
            && self.current()
            && self.known(partition(to)).is_some_and(|c| c == self.me)
    }

    /// A one-way message to `f`'s actor: queued now, in the caller's order,
    /// when its owner is known; else once the owner is resolved.
    fn send(
        self: &Arc<Self>,
        f: Forwarded,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, CallError>> {
        if let Some(owner) = self.known(partition(&f.header.to))
            && owner != self.me
        {
            self.metrics.forwarded.with_label_values(&["send"]).inc();
            let outcome = self.queue_send(&owner.node, &f);
            return Box::pin(async move { outcome });
        }
        Box::pin(self.clone().forward(f, timeout))
    }

    /// Resolves once the claim's node is judged gone (checked every 100 ms).
    async fn gone_while_waiting(&self, c: &Claim) -> String {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(why) = self.gone(c) {
                return why;
            }
        }
    }

    async fn forward(
        self: Arc<Self>,
        f: Forwarded,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let p = partition(&f.header.to);
        let deadline = Instant::now() + timeout;
        let mut last_error = String::new();
        // The first attempt sends a partition nobody holds to the node it
        // should live on; if that fails, this node claims it.
        let mut prefer = true;
        loop {
            let owner = self.resolve_or_prefer(p, prefer).await?;
            prefer = false;
            if owner == self.me {
                let left = deadline.saturating_duration_since(Instant::now());
                return self.deliver_here(f, left).await;
            }
            let kind = if f.header.reply { "call" } else { "send" };
            self.metrics.forwarded.with_label_values(&[kind]).inc();
            if !f.header.reply {
                return self.queue_send(&owner.node, &f);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let sent_at = anthill_core::now_ms();
            let request = self.nats.client.send_request(
                self.subject(&owner.node),
                async_nats::Request::new()
                    .payload(f.encode())
                    // The deadline below answers first, as a timeout.
                    .timeout(Some(left + Duration::from_millis(100))),
            );
            let answer = tokio::select! {
                answer = tokio::time::timeout(left, request) => Some(answer),
                why = self.gone_while_waiting(&owner) => {
                    self.set(p, None);
                    // A call sent after the owner's lease ran out was never
                    // handled: send it again, to whoever takes over. Before
                    // that, the dead node may have applied it: say so
                    // rather than apply it twice.
                    if self.peers.could_serve_at(&owner.node, sent_at) {
                        return Err(CallError::Unavailable(format!(
                            "{}: {why} with this call in flight; it may or may not have been applied (the actor is taken over now: retry if that is safe)",
                            f.header.to
                        )));
                    }
                    last_error = why;
                    None
                }
            };
            match answer {
                // Gone, and the call never reached it: retry below.
                None => {}
                Some(Ok(Ok(answer))) => match wire::decode_reply(&answer.payload) {
                    Some(outcome) => return outcome,
                    // Its claim moved: read it again.
                    None => {
                        self.set(p, None);
                        last_error = format!("node {} no longer owns it", owner.node);
                    }
                },
                Some(Ok(Err(e))) if e.kind() != async_nats::RequestErrorKind::NoResponders => {
                    // Not known to be unheard: it may have been handled.
                    return Err(CallError::Unavailable(format!(
                        "{}: the request to node {} failed ({e}); it may or may not have been applied",
                        f.header.to, owner.node
                    )));
                }
                Some(Ok(Err(e))) => {
                    // No responders: the owner is down or restarting. Re-read
                    // the claim in case it moved, until the deadline.
                    self.set(p, None);
                    last_error = format!("node {} does not answer ({e})", owner.node);
                }
                Some(Err(_)) => {
                    return Err(CallError::Timeout {
                        to: f.header.to.to_string(),
                        ms: timeout.as_millis() as u64,
                    });
                }
            }
            if Instant::now() + Duration::from_millis(50) >= deadline {
                return Err(CallError::Unavailable(format!(
                    "{} lives on another node of the cluster (partition {p}) and cannot be reached: {last_error}; another node takes it over once that one has been silent for dead_after_ms",
                    f.header.to
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Placement for ClusterPlacement {
    fn is_here(&self, to: &Address) -> bool {
        self.0.is_here(to)
    }

    fn locate(&self, to: &Address) -> BoxFuture<'static, Result<bool, CallError>> {
        let me = self.clone_handle();
        let to = to.clone();
        Box::pin(async move {
            me.0.check_lease()?;
            me.owns(&to).await
        })
    }

    fn owner(&self, to: &Address) -> Option<(String, Option<String>)> {
        let c = self.0.known(partition(to)).filter(|c| *c != self.0.me)?;
        let players = self.0.peers.players_addr(&c.node);
        Some((c.node, players))
    }

    fn forward(
        &self,
        to: Address,
        from: Sender,
        payload: Vec<u8>,
        chain: CallChain,
        wants_reply: bool,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, CallError>> {
        let f = Forwarded::new(
            to,
            from,
            &chain,
            wants_reply,
            timeout.as_millis() as u64,
            payload,
        );
        if wants_reply {
            return Box::pin(self.0.clone().forward(f, timeout));
        }
        self.0.send(f, timeout)
    }

    fn join(
        &self,
        to: Address,
        player: u64,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<(), CallError>> {
        let inner = self.0.clone();
        Box::pin(async move {
            let f = Forwarded::room(
                to.clone(),
                Op::Join { player },
                &inner.me.node,
                timeout.as_millis() as u64,
            );
            inner.clone().forward(f, timeout).await?;
            if !inner.is_here(&to) {
                inner.rooms.visit(&to, player);
            }
            Ok(())
        })
    }

    fn leave(&self, to: Address, player: u64) {
        self.0.rooms.unvisit(&to, player);
        let f = Forwarded::room(to.clone(), Op::Leave { player }, &self.0.me.node, 2_000);
        let sent = self.0.send(f, Duration::from_secs(2));
        tokio::spawn(async move {
            if let Err(e) = sent.await {
                tracing::debug!(room = %to, player, error = %e, "a leave for a room on another node was lost");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_spread_keys_and_are_stable() {
        let mut seen = std::collections::HashSet::new();
        for k in 0..1000 {
            let p = partition(&Address::new("counter", format!("k{k}")));
            assert!(p < PARTITIONS);
            seen.insert(p);
        }
        assert_eq!(
            seen.len(),
            PARTITIONS as usize,
            "1,000 keys reach every partition"
        );
        // The module is part of the hash, and the same address always lands
        // in the same partition (every node must agree).
        assert_eq!(
            partition(&Address::new("a", "x")),
            partition(&Address::new("a", "x"))
        );
    }
}
