//! Membership: every node puts a heartbeat under its name in the cluster's
//! `nodes` bucket; anyone lists the bucket and judges each node by the age
//! of its last beat. A node that cannot get its beat accepted knows it is cut
//! off, and says so on `/healthz`.

use crate::ClusterError;
use crate::join::Nats;
use crate::settings::ClusterSettings;
use anthill_core::cluster::{NodeState, NodeStatus, ServedVersions};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A version a node serves, and the registry revision it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    /// The versions.
    #[serde(flatten)]
    pub versions: ServedVersions,
    /// The registry revision this node converged to.
    pub revision: u64,
}

/// A module a node could not bring to the registry's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The registry revision it failed on.
    pub revision: u64,
    /// Why.
    pub error: String,
}

/// One heartbeat: what a node says of itself, twice a second by default.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Beat {
    /// The node's name.
    pub name: String,
    /// Which start of the node this is (wall-clock ms at start): tells a
    /// restarted node from a second node taking the same name.
    pub incarnation: u64,
    /// Its admin API.
    pub admin: String,
    /// Its player (QUIC) address.
    pub players_addr: Option<String>,
    /// Its web port.
    pub web_addr: Option<String>,
    /// Live actors.
    pub live_actors: usize,
    /// Connected players.
    pub players: usize,
    /// Stopping on purpose.
    pub draining: bool,
    /// When the beat was sent (wall-clock ms).
    pub at_ms: u64,
    /// Registry revisions applied, by module (including removals: a module
    /// absent from `modules` with a revision here was undeployed at it).
    pub applied: BTreeMap<String, u64>,
    /// Modules served.
    pub modules: BTreeMap<String, Served>,
    /// Modules it could not converge.
    pub failed: BTreeMap<String, Failure>,
}

/// Whether this node is still in touch with the cluster: NATS accepted one of
/// its beats within `suspect_after_ms` (a monotonic clock, so a paused process
/// finds its lease expired when it resumes). Without it the node serves no
/// actor: it stops acknowledging rather than diverging.
///
/// The lease runs from when the accepted beat was *sent*, not when its answer
/// came, and another node takes over only after `dead_after_ms` without a
/// beat, which validation keeps longer than the lease by at least a beat: the
/// owner stops before anyone else starts.
pub struct Lease {
    last_ok: Mutex<Option<Instant>>,
    limit: Duration,
    /// Counts the times the lease expired and was won back: the node's view
    /// of the cluster from before is stale (see [`Lease::lapses`]).
    lapses: tokio::sync::watch::Sender<u64>,
}

impl Lease {
    pub(crate) fn new(settings: &ClusterSettings) -> Lease {
        Lease {
            last_ok: Mutex::new(None),
            limit: Duration::from_millis(settings.suspect_after_ms),
            lapses: tokio::sync::watch::Sender::new(0),
        }
    }

    /// A beat sent at `sent` was accepted.
    fn renewed(&self, sent: Instant) {
        let mut last = self.last_ok.lock().expect("lease clock");
        let lapsed = last.is_some_and(|t| t.elapsed() > self.limit);
        if last.is_none_or(|t| t < sent) {
            *last = Some(sent);
        }
        drop(last);
        if lapsed {
            self.lapses.send_modify(|n| *n += 1);
        }
    }

    /// How long since the last accepted beat; `None` before the first.
    pub fn age(&self) -> Option<Duration> {
        self.last_ok
            .lock()
            .expect("lease clock")
            .map(|t| t.elapsed())
    }

    /// Whether the lease holds now.
    pub fn holds(&self) -> bool {
        self.age().is_some_and(|a| a <= self.limit)
    }

    /// How many times the lease expired and came back.
    pub fn lapses(&self) -> u64 {
        *self.lapses.borrow()
    }

    /// Resolves at each lapse won back.
    pub(crate) fn watch_lapses(&self) -> tokio::sync::watch::Receiver<u64> {
        self.lapses.subscribe()
    }
}

/// This node's side of membership.
pub struct Membership {
    nats: Nats,
    settings: ClusterSettings,
    /// When NATS last accepted a beat.
    lease: std::sync::Arc<Lease>,
    metrics: Option<crate::metrics::ClusterMetrics>,
    draining: AtomicBool,
    cut_off: AtomicBool,
}

impl Membership {
    pub(crate) fn new(
        nats: Nats,
        settings: ClusterSettings,
        lease: std::sync::Arc<Lease>,
        metrics: Option<crate::metrics::ClusterMetrics>,
    ) -> Membership {
        Membership {
            nats,
            settings,
            lease,
            metrics,
            draining: AtomicBool::new(false),
            cut_off: AtomicBool::new(false),
        }
    }

    /// Refuses to join under a name a live node of another incarnation holds.
    pub(crate) async fn claim(&self, incarnation: u64) -> Result<(), ClusterError> {
        let name = self.settings.node_name();
        let entry = crate::latest::latest(&self.nats.nodes, name)
            .await
            .map_err(|e| ClusterError::Unavailable(format!("reading node `{name}`: {e}")))?;
        let Some(value) = entry.as_ref().and_then(|e| e.present()) else {
            return Ok(());
        };
        let Ok(beat) = serde_json::from_slice::<Beat>(value) else {
            return Ok(());
        };
        let age = anthill_core::now_ms().saturating_sub(beat.at_ms);
        if beat.incarnation != incarnation && !beat.draining && age < self.settings.dead_after_ms {
            return Err(ClusterError::NameInUse {
                node: name.to_owned(),
                admin: beat.admin,
                age_ms: age,
            });
        }
        Ok(())
    }

    /// Puts one beat; remembers whether NATS took it.
    pub(crate) async fn beat(&self, mut beat: Beat) -> Result<(), ClusterError> {
        beat.draining = self.draining.load(Ordering::Relaxed);
        beat.at_ms = anthill_core::now_ms();
        let body = serde_json::to_vec(&beat).expect("a beat serializes");
        let sent = Instant::now();
        let timeout = Duration::from_millis(self.settings.suspect_after_ms);
        let put = tokio::time::timeout(timeout, self.nats.nodes.put(&beat.name, body.into())).await;
        match put {
            Ok(Ok(_)) => {
                self.lease.renewed(sent);
                if let Some(m) = &self.metrics {
                    m.in_touch.set(1);
                }
                if self.cut_off.swap(false, Ordering::Relaxed) {
                    tracing::info!("NATS takes heartbeats again");
                }
                Ok(())
            }
            Ok(Err(e)) => Err(self.missed(e.to_string())),
            Err(_) => Err(self.missed(format!("no answer within {} ms", timeout.as_millis()))),
        }
    }

    fn missed(&self, detail: String) -> ClusterError {
        if let Some(m) = &self.metrics {
            m.heartbeat_failures.inc();
            m.in_touch.set(i64::from(self.lease.holds()));
        }
        if !self.cut_off.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %detail, "NATS did not take this node's heartbeat");
        }
        ClusterError::Unavailable(format!("heartbeat not accepted: {detail}"))
    }

    /// `Err` once no beat has been accepted for longer than a node may stay
    /// silent before the others suspect it.
    pub fn health(&self) -> Result<(), String> {
        match self.lease.age() {
            _ if self.lease.holds() => Ok(()),
            Some(age) => Err(format!(
                "cluster: NATS has not accepted a heartbeat from this node for {:.1} s (servers {}); it serves no actors until it can, and the other nodes treat it as suspect, then dead",
                age.as_secs_f64(),
                self.settings.servers.join(",")
            )),
            None => Err("cluster: no heartbeat accepted yet".into()),
        }
    }

    /// From now on the node says it is draining.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Removes this node's record: it left on purpose.
    pub(crate) async fn leave(&self) {
        let name = self.settings.node_name();
        if let Err(e) = self.nats.nodes.delete(name).await {
            tracing::warn!(error = %e, "could not remove this node from the cluster's list");
        }
    }

    /// Every node's last beat, with how it looks now.
    pub async fn beats(&self) -> Result<Vec<(Beat, NodeState, u64)>, ClusterError> {
        let unavailable = |e: String| ClusterError::Unavailable(format!("listing nodes: {e}"));
        let mut keys = self
            .nats
            .nodes
            .keys()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let mut names = Vec::new();
        while let Some(k) = keys.next().await {
            names.push(k.map_err(|e| unavailable(e.to_string()))?);
        }
        let now = anthill_core::now_ms();
        let mut out = Vec::new();
        for name in names {
            let latest = crate::latest::latest(&self.nats.nodes, &name)
                .await
                .map_err(unavailable)?;
            let Some(value) = latest.as_ref().and_then(|l| l.present()) else {
                continue;
            };
            let Ok(beat) = serde_json::from_slice::<Beat>(value) else {
                tracing::warn!(node = %name, "a heartbeat that does not decode; skipped");
                continue;
            };
            let age = now.saturating_sub(beat.at_ms);
            let state = if age >= self.settings.dead_after_ms {
                NodeState::Dead
            } else if beat.draining {
                NodeState::Draining
            } else if age >= self.settings.suspect_after_ms {
                NodeState::Suspect
            } else {
                NodeState::Alive
            };
            out.push((beat, state, age));
        }
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(out)
    }

    /// Every node, as the admin API lists them.
    pub async fn nodes(&self) -> Result<Vec<NodeStatus>, ClusterError> {
        Ok(self
            .beats()
            .await?
            .into_iter()
            .map(|(b, state, age)| NodeStatus {
                name: b.name,
                state,
                admin: b.admin,
                players_addr: b.players_addr,
                web_addr: b.web_addr,
                live_actors: b.live_actors,
                players: b.players,
                last_beat_ms_ago: age,
                modules: b
                    .modules
                    .into_iter()
                    .map(|(k, s)| (k, s.versions))
                    .collect(),
                failed: b.failed.into_iter().map(|(k, f)| (k, f.error)).collect(),
            })
            .collect())
    }
}

/// What this node last saw of every other node's heartbeat, kept current by
/// a watch on the `nodes` bucket: placement asks it, without a round trip,
/// whether a partition's owner is gone.
pub(crate) struct Peers {
    /// By node: (incarnation, beat sent at, player address).
    #[allow(clippy::type_complexity)]
    beats: std::sync::RwLock<std::collections::HashMap<String, (u64, u64, Option<String>)>>,
    /// Nothing is judged gone before the first full listing.
    loaded: AtomicBool,
    dead_after_ms: u64,
    /// How long after its last accepted beat a node may still serve, plus a
    /// beat of margin for clocks.
    serves_for_ms: u64,
}

impl Peers {
    pub(crate) fn new(settings: &ClusterSettings) -> Peers {
        Peers {
            beats: Default::default(),
            loaded: AtomicBool::new(false),
            dead_after_ms: settings.dead_after_ms,
            serves_for_ms: settings.suspect_after_ms + settings.heartbeat_ms,
        }
    }

    /// The nodes beating now (this one included), in name order.
    pub(crate) fn alive(&self) -> Vec<String> {
        let now = anthill_core::now_ms();
        let beats = self.beats.read().expect("peer beats");
        let mut names: Vec<String> = beats
            .iter()
            .filter(|(_, (_, at, _))| now.saturating_sub(*at) < self.dead_after_ms)
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }

    /// Whether `node` may still have been serving at `at_ms` (wall clock): a
    /// message sent to it later than its lease could not have been handled.
    pub(crate) fn could_serve_at(&self, node: &str, at_ms: u64) -> bool {
        let beats = self.beats.read().expect("peer beats");
        beats
            .get(node)
            .is_none_or(|(_, last, _)| at_ms <= last + self.serves_for_ms)
    }

    /// Where `node`'s players connect, from its last beat.
    pub(crate) fn players_addr(&self, node: &str) -> Option<String> {
        let beats = self.beats.read().expect("peer beats");
        beats.get(node).and_then(|(_, _, addr)| addr.clone())
    }

    /// Why the node start `incarnation` of `node` is gone, if it is: it left
    /// (its record is deleted), restarted (another incarnation beats), or has
    /// been silent for `dead_after_ms`.
    /// Which start of `node` beats now.
    pub(crate) fn incarnation(&self, node: &str) -> Option<u64> {
        self.beats
            .read()
            .expect("peer beats")
            .get(node)
            .map(|(inc, _, _)| *inc)
    }

    pub(crate) fn gone(&self, node: &str, incarnation: u64) -> Option<String> {
        if !self.loaded.load(Ordering::Acquire) {
            return None;
        }
        let beats = self.beats.read().expect("peer beats");
        match beats.get(node) {
            None => Some(format!("node {node} left the cluster")),
            Some((inc, _, _)) if *inc != incarnation => {
                Some(format!("node {node} restarted since it claimed"))
            }
            Some((_, at, _)) => {
                let silent = anthill_core::now_ms().saturating_sub(*at);
                (silent >= self.dead_after_ms)
                    .then(|| format!("node {node} is dead (silent for {silent} ms)"))
            }
        }
    }

    fn seen(&self, key: &str, value: &[u8], deleted: bool) {
        let mut beats = self.beats.write().expect("peer beats");
        if deleted {
            beats.remove(key);
        } else if let Ok(b) = serde_json::from_slice::<Beat>(value)
            // The watch replays what the listing may already have bettered.
            && beats.get(&b.name).is_none_or(|(_, at, _)| *at <= b.at_ms)
        {
            beats.insert(b.name, (b.incarnation, b.at_ms, b.players_addr));
        }
    }

    /// Every beat in the bucket now.
    async fn list(&self, nats: &Nats) -> Result<(), String> {
        let mut keys = nats.nodes.keys().await.map_err(|e| e.to_string())?;
        let mut names = Vec::new();
        while let Some(k) = keys.next().await {
            names.push(k.map_err(|e| e.to_string())?);
        }
        for name in names {
            let latest = crate::latest::latest(&nats.nodes, &name).await?;
            if let Some(value) = latest.as_ref().and_then(|l| l.present()) {
                self.seen(&name, value, false);
            }
        }
        Ok(())
    }

    /// Lists the `nodes` bucket, then follows its changes for as long as the
    /// node runs. Only after a full listing is any node judged gone.
    pub(crate) async fn follow(self: std::sync::Arc<Self>, nats: Nats) {
        loop {
            let watch = match nats.nodes.watch_all().await {
                Ok(watch) => watch,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch node heartbeats; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            // Listed after the watch began, so no change falls in between.
            if let Err(e) = self.list(&nats).await {
                tracing::warn!(error = %e, "cannot list node heartbeats; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            self.loaded.store(true, Ordering::Release);
            let mut watch = watch;
            while let Some(Ok(entry)) = watch.next().await {
                let deleted = !matches!(entry.operation, async_nats::jetstream::kv::Operation::Put);
                self.seen(&entry.key, &entry.value, deleted);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
