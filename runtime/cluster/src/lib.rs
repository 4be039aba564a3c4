//! # anthill-cluster: nodes joined through NATS JetStream
//!
//! A node started with `--cluster` joins through NATS (an existing
//! distributed engine: its KV buckets, object store and Raft replication, not
//! a home-made protocol). This crate owns:
//!
//! - joining ([`join`]): connect with the operator's credentials and TLS,
//!   refuse servers older than 2.12 or without JetStream, open the buckets;
//! - membership ([`membership`]): heartbeats, the node list and each node's
//!   state, the node's own health as NATS sees it;
//! - the replicated registry ([`registry`]): deploy once, every node fetches,
//!   precompiles and serves; swaps, canaries, rollbacks and undeploys follow;
//! - placement ([`placement`]): one live actor per address, partitions
//!   claimed by compare-and-set, taken over from dead nodes;
//! - replicated snapshots ([`snapshots`]): actor state in JetStream, fenced
//!   by compare-and-set, so another node can take an actor over;
//! - pub/sub across nodes (`events`, `event_log`): every event in one
//!   replicated stream, which is also the at-least-once log; cursors and
//!   dead letters replicated beside it;
//! - rooms across nodes (`rooms`): a player joins a room through any node;
//!   the owner sends each node with members the room's state once a tick
//!   and its pushes, and the members follow the room when it moves;
//! - sessions across nodes (`sessions`): one token key for every node and a
//!   record of which node holds each session, so a player resumes anywhere;
//! - [`ClusterControl`]: the admin API made cluster-wide for module changes.
//!
//! Must not know: the gateway or any player transport. The node binary composes it
//! over the actor runtime and the admin control plane; without `--cluster`
//! nothing here runs.

#![warn(missing_docs, unreachable_pub)]

mod control;
mod event_log;
mod events;
pub mod join;
mod latest;
pub mod membership;
mod metrics;
mod outbox;
pub mod partitioned;
pub mod placement;
pub mod registry;
mod rooms;
mod sessions;
mod settings;
pub mod snapshots;
mod tenants;

mod wire;

pub use control::ClusterControl;
pub use settings::ClusterSettings;

use anthill_actors::Runtime;
use anthill_admin::ControlPlane;
use join::Nats;
use membership::{Beat, Membership};
use registry::RegistrySync;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a node could not join, or lost touch with, the cluster. Each names
/// the fix.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The cluster settings are unusable.
    #[error("cluster settings: {0}")]
    Config(String),
    /// No NATS server answered.
    #[error(
        "cannot connect to NATS at {servers}: {detail} (is nats-server running with JetStream, and are --cluster, the credentials and TLS settings right?)"
    )]
    Connect {
        /// The servers tried.
        servers: String,
        /// The client's error.
        detail: String,
    },
    /// The server is older than the cluster needs.
    #[error(
        "NATS server {server} is version {version}; the cluster needs nats-server 2.12 or newer (per-key TTLs, message schedules, and 2.9's compare-and-set lets several racers win): upgrade it"
    )]
    ServerTooOld {
        /// The server's name.
        server: String,
        /// Its version.
        version: String,
    },
    /// JetStream is off for the server or the account.
    #[error(
        "NATS server {server} has no JetStream for this account ({detail}): start nats-server with -js (or `jetstream {{}}` in its config) and enable it for the account"
    )]
    NoJetStream {
        /// The server's name.
        server: String,
        /// What the server said.
        detail: String,
    },
    /// A bucket cannot be created or opened.
    #[error(
        "cannot open the cluster's bucket {bucket}: {detail} (a bucket of that name with another configuration, or too few JetStream servers for the replicas asked)"
    )]
    Bucket {
        /// The bucket.
        bucket: String,
        /// What JetStream said.
        detail: String,
    },
    /// Another live node goes by this name.
    #[error(
        "node name `{node}` is taken by a live node (admin {admin}, last heartbeat {age_ms} ms ago): give this node another --node"
    )]
    NameInUse {
        /// The name.
        node: String,
        /// The other node's admin API.
        admin: String,
        /// How old its last beat is.
        age_ms: u64,
    },
    /// NATS did not answer in time.
    #[error("NATS unavailable: {0}")]
    Unavailable(String),
}

/// The per-actor records that follow their partition (see [`partitioned`]).
#[derive(Clone)]
pub(crate) struct Records {
    pub(crate) timers: Arc<partitioned::PartitionedRecords>,
    pub(crate) subscriptions: Arc<partitioned::PartitionedRecords>,
    /// At-least-once cursors, with the log they point into.
    pub(crate) log: Arc<event_log::StreamLog>,
}

/// Where a node can be reached, for the others' node lists.
#[derive(Debug, Clone, Default)]
pub struct NodeAddrs {
    /// Its admin API (`http://…`).
    pub admin: String,
    /// Its player (QUIC) address.
    pub players: Option<String>,
    /// Its web port.
    pub web: Option<String>,
}

/// This node's load, read at each heartbeat.
pub type LoadProbe = Box<dyn Fn() -> (usize, usize) + Send + Sync>;

/// A connection to the cluster, before the node starts serving.
pub struct Joined {
    settings: ClusterSettings,
    nats: Nats,
    incarnation: u64,
    lease: Arc<membership::Lease>,
    peers: Arc<membership::Peers>,
    replication: Arc<snapshots::Replication>,
    records: Records,
    events: Option<Arc<events::EventFanout>>,
    placement: Option<placement::ClusterPlacement>,
    rooms: Option<Arc<rooms::Rooms>>,
    metrics: Option<metrics::ClusterMetrics>,
    /// The key every node signs session tokens with.
    session_key: Vec<u8>,
}

/// What the player side of a node is in a cluster (see [`Joined::player_side`]).
pub struct PlayerSide {
    /// Where actors publish room state: local members and other nodes'.
    pub rooms: Arc<dyn anthill_core::RoomSink>,
    /// Where actors push to players: here or through their node.
    pub players: Arc<dyn anthill_core::Players>,
    /// The key every node of the cluster signs session tokens with.
    pub session_key: Vec<u8>,
    /// Where sessions are recorded, so a player resumes on any node.
    pub sessions: Arc<dyn anthill_core::SessionDirectory>,
}

/// Joins the cluster the settings name: connect, check the server, open the
/// buckets. Nothing is announced until [`Joined::start`].
pub async fn join(settings: ClusterSettings) -> Result<Joined, ClusterError> {
    settings.validate().map_err(ClusterError::Config)?;
    let nats = join::join(&settings).await?;
    let lease = Arc::new(membership::Lease::new(&settings));
    let peers = Arc::new(membership::Peers::new(&settings));
    let session_key = sessions::signing_key(&nats.sessions).await?;
    let records = Records {
        timers: Arc::new(partitioned::PartitionedRecords::new(nats.timers.clone())),
        subscriptions: Arc::new(partitioned::PartitionedRecords::new(
            nats.subscriptions.clone(),
        )),
        log: Arc::new(event_log::StreamLog::new(
            &settings.name,
            nats.events.clone(),
            Arc::new(partitioned::PartitionedRecords::new(nats.cursors.clone())),
            nats.dead_letters.clone(),
        )),
    };
    Ok(Joined {
        settings,
        nats,
        incarnation: anthill_core::now_ms(),
        lease,
        peers,
        replication: snapshots::Replication::new(),
        records,
        events: None,
        placement: None,
        rooms: None,
        metrics: None,
        session_key,
    })
}

impl Joined {
    /// What the connected NATS server says of itself.
    pub fn server(&self) -> &str {
        &self.nats.server
    }

    /// The node's store in the cluster: actor snapshots go to JetStream
    /// (replicated, fenced), the rest stays in `local`, which also caches
    /// snapshots. `max_snapshot_bytes` is checked against what NATS carries.
    pub fn store(
        &self,
        local: Arc<anthill_store::Store>,
        max_snapshot_bytes: usize,
    ) -> Arc<dyn anthill_store::Persistence> {
        let carried = self.nats.client.server_info().max_payload;
        if carried < max_snapshot_bytes + 1024 {
            tracing::warn!(
                nats_max_payload = carried,
                max_snapshot_bytes,
                "NATS carries messages of up to {carried} bytes: a larger snapshot is refused (raise max_payload in nats-server, or lower limits.max_snapshot_bytes)"
            );
        }
        Arc::new(snapshots::ReplicatedStore::new(
            local,
            self.nats.snapshots.clone(),
            self.replication.clone(),
            self.records.clone(),
        ))
    }

    /// Places `runtime`'s actors across the cluster: from now on a message
    /// for an actor another node owns goes there. Call before any traffic.
    pub fn place(&mut self, runtime: &Arc<Runtime>, registry: &prometheus::Registry) {
        let metrics = metrics::ClusterMetrics::new(registry);
        let rooms = rooms::Rooms::new(
            &self.settings.name,
            self.settings.node_name(),
            self.nats.client.clone(),
            self.nats.sessions.clone(),
            metrics.clone(),
        );
        let standing = placement::Standing {
            cluster: self.settings.name.clone(),
            node: self.settings.node_name().to_owned(),
            incarnation: self.incarnation,
            lease: self.lease.clone(),
            peers: self.peers.clone(),
            replication: self.replication.clone(),
            records: self.records.clone(),
            rooms: rooms.clone(),
            heartbeat: Duration::from_millis(self.settings.heartbeat_ms),
        };
        let placement =
            placement::ClusterPlacement::new(self.nats.clone(), standing, metrics.clone(), runtime);
        let seam: Arc<dyn anthill_core::Placement> = Arc::new(placement.clone_handle());
        self.replication
            .attach(seam.clone(), runtime, metrics.clone());
        runtime.attach_placement(seam);
        let fanout = Arc::new(events::EventFanout::new(
            self.nats.clone(),
            &self.settings.name,
            self.settings.node_name(),
        ));
        runtime.attach_event_bus(fanout.clone());
        self.events = Some(fanout);
        self.placement = Some(placement);
        self.rooms = Some(rooms);
        self.metrics = Some(metrics);
    }

    /// The player side in a cluster: rooms and pushes reach players
    /// connected to this node's gateway (`rooms`, `players`) and, through the
    /// nodes they are connected to, players elsewhere; sessions (held by
    /// `sessions`) are recorded so that a player resumes on any node, and a
    /// player whose node died stays in its rooms for `resume_grace`. Call
    /// after [`Joined::place`]; `None` before it.
    pub fn player_side(
        &self,
        rooms: Arc<dyn anthill_core::RoomSink>,
        players: Arc<dyn anthill_core::Players>,
        sessions: Arc<dyn anthill_core::SessionHost>,
        resume_grace: Duration,
    ) -> Option<PlayerSide> {
        let (remote, placement) = (self.rooms.as_ref()?, self.placement.as_ref()?);
        remote.attach_local(rooms, players, sessions, resume_grace);
        let book = sessions::SessionBook::new(
            self.nats.sessions.clone(),
            self.settings.node_name(),
            remote.clone(),
            placement.clone_handle(),
        );
        Some(PlayerSide {
            rooms: remote.clone(),
            players: remote.clone(),
            session_key: self.session_key.clone(),
            sessions: book,
        })
    }

    /// Claims the node's name, converges the node's modules to the cluster's
    /// registry, and starts the heartbeat and the registry sync.
    pub async fn start(
        self,
        runtime: Arc<Runtime>,
        addrs: NodeAddrs,
        load: LoadProbe,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let incarnation = self.incarnation;
        let membership = Arc::new(Membership::new(
            self.nats.clone(),
            self.settings.clone(),
            self.lease.clone(),
            self.metrics.clone(),
        ));
        membership.claim(incarnation).await?;
        let tenants = Arc::new(tenants::TenantSync::new(self.nats.clone(), runtime.clone()));
        let registry = Arc::new(RegistrySync::new(
            self.nats.clone(),
            runtime.clone(),
            tenants.clone(),
        ));
        let cluster = Arc::new(Cluster {
            settings: self.settings,
            nats: self.nats,
            membership,
            registry,
            tenants,
            runtime,
            addrs,
            load,
            incarnation,
            placement: self.placement.as_ref().map(|p| p.clone_handle()),
            tasks: Mutex::new(Vec::new()),
        });
        // Serve the cluster's tenants and modules from the first request on.
        cluster.tenants.start().await?;
        cluster.registry.sync_all().await?;
        cluster.membership.beat(cluster.beat()).await?;
        let beating = cluster.clone();
        let every = Duration::from_millis(cluster.settings.heartbeat_ms);
        let beats = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // A missed beat is logged once and shows on /healthz.
                let _ = beating.membership.beat(beating.beat()).await;
            }
        });
        let sync = tokio::spawn(cluster.registry.clone().run());
        let mut tasks = vec![beats, sync, tokio::spawn(cluster.tenants.clone().run())];
        tasks.push(tokio::spawn(
            self.peers.clone().follow(cluster.nats.clone()),
        ));
        if let Some(fanout) = self.events {
            if let Err(e) = fanout.open().await {
                tracing::warn!(error = %e, "this node's event consumer is not open yet; retrying");
            }
            tasks.push(tokio::spawn(
                fanout.follow(Arc::downgrade(&cluster.runtime)),
            ));
        }
        if let Some(rooms) = self.rooms {
            tasks.push(rooms.serve().await?);
        }
        if let Some(placement) = self.placement {
            tasks.push(tokio::spawn(placement.clone_handle().reattach_rooms()));
            tasks.push(tokio::spawn(placement.clone_handle().follow_lapses()));
            tasks.push(tokio::spawn(placement.clone_handle().take_over_the_dead()));
            tasks.push(placement.serve().await?);
            tasks.push(tokio::spawn(placement.follow_claims()));
        }
        cluster.tasks.lock().expect("cluster tasks").extend(tasks);
        Ok(cluster)
    }
}

/// A node's membership of the cluster, running.
pub struct Cluster {
    settings: ClusterSettings,
    nats: Nats,
    membership: Arc<Membership>,
    registry: Arc<RegistrySync>,
    tenants: Arc<tenants::TenantSync>,
    runtime: Arc<Runtime>,
    addrs: NodeAddrs,
    load: LoadProbe,
    incarnation: u64,
    placement: Option<placement::ClusterPlacement>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Cluster {
    fn beat(&self) -> Beat {
        let (live_actors, players) = (self.load)();
        let (applied, modules, failed) = self.registry.served();
        Beat {
            name: self.settings.node_name().to_owned(),
            incarnation: self.incarnation,
            admin: self.addrs.admin.clone(),
            players_addr: self.addrs.players.clone(),
            web_addr: self.addrs.web.clone(),
            live_actors,
            players,
            draining: false,
            at_ms: 0,
            applied,
            modules,
            failed,
        }
    }

    /// The admin control plane of this node, cluster-wide for module changes.
    pub fn control(self: &Arc<Self>, node: Arc<dyn ControlPlane>) -> Arc<dyn ControlPlane> {
        Arc::new(ClusterControl {
            cluster: self.clone(),
            node,
        })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        self.settings.node_name()
    }

    /// Stopping: from now on this node says it is draining.
    pub async fn drain(&self) {
        self.membership.drain();
        let _ = self.membership.beat(self.beat()).await;
    }

    /// Stopped (its actors' snapshots written): give up its partitions, stop
    /// beating and following the registry, and leave the list.
    pub async fn leave(&self) {
        if let Some(p) = &self.placement {
            p.release().await;
        }
        for t in self.tasks.lock().expect("cluster tasks").drain(..) {
            t.abort();
        }
        self.membership.leave().await;
    }
}
