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
        }
    }
}
