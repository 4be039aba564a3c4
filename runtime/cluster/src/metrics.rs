//! The cluster's series on the node's `/metrics` (registered only when the
//! node joins a cluster).

use anthill_core::metrics::{counter, counter_vec, gauge};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

/// What the cluster part of a node counts.
#[derive(Clone)]
pub(crate) struct ClusterMetrics {
    /// Messages this node forwarded to an actor's owner, by `call`/`send`.
    pub(crate) forwarded: IntCounterVec,
    /// Messages other nodes forwarded here, by `call`/`send`.
    pub(crate) received: IntCounterVec,
    /// Partitions this node claimed.
    pub(crate) claims: IntCounter,
    /// Partitions this node owns now.
    pub(crate) partitions_owned: IntGauge,
    /// Heartbeats NATS did not take.
    pub(crate) heartbeat_failures: IntCounter,
    /// 1 while NATS takes this node's heartbeats (it serves), else 0.
    pub(crate) in_touch: IntGauge,
    /// Partitions taken over from a dead node.
    pub(crate) takeovers: IntCounter,
    /// Local actors dropped because their partition moved away.
    pub(crate) evictions: IntCounter,
    /// Snapshot writes the replicated store refused (fenced or failed).
    pub(crate) snapshot_refusals: IntCounter,
    /// Room state, pushes and session releases for players on other nodes,
    /// by kind (`state`/`push`/`release`) and outcome (`sent`, `received`,
    /// `dropped`).
    pub(crate) player_frames: IntCounterVec,
    /// Members of rooms here who are connected to other nodes.
    pub(crate) remote_members: IntGauge,
}

impl ClusterMetrics {
    pub(crate) fn new(registry: &Registry) -> ClusterMetrics {
        ClusterMetrics {
            forwarded: counter_vec(
                registry,
                "anthill_cluster_forwarded_total",
                "Messages forwarded to the node that owns the actor",
                &["kind"],
            ),
            received: counter_vec(
                registry,
                "anthill_cluster_received_total",
                "Messages other nodes forwarded to actors this node owns",
                &["kind"],
            ),
            claims: counter(
                registry,
                "anthill_cluster_claims_total",
                "Partitions this node claimed by compare-and-set",
            ),
            partitions_owned: gauge(
                registry,
                "anthill_cluster_partitions_owned",
                "Partitions this node owns",
            ),
            heartbeat_failures: counter(
                registry,
                "anthill_cluster_heartbeat_failures_total",
                "Heartbeats NATS did not take",
            ),
            in_touch: gauge(
                registry,
                "anthill_cluster_in_touch",
                "1 while NATS takes this node's heartbeats and it serves actors, else 0",
            ),
            takeovers: counter(
                registry,
                "anthill_cluster_takeovers_total",
                "Partitions this node took over from a dead node by compare-and-set",
            ),
            evictions: counter(
                registry,
                "anthill_cluster_evictions_total",
                "Live actors dropped unsaved because another node owns their partition now",
            ),
            snapshot_refusals: counter(
                registry,
                "anthill_cluster_snapshot_refusals_total",
                "Snapshot writes the replicated store refused (fenced by another owner, or NATS failed)",
            ),
            player_frames: counter_vec(
                registry,
                "anthill_cluster_player_frames_total",
                "Room state, pushes and session releases for players connected to other nodes, by kind (state, push, release) and outcome (sent, received, dropped)",
                &["kind", "outcome"],
            ),
            remote_members: gauge(
                registry,
                "anthill_cluster_remote_members",
                "Members of rooms this node owns who are connected to other nodes",
            ),
        }
    }
}
