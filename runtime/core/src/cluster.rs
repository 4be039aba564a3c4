//! What a cluster says about its nodes and about a rollout: the types the
//! admin API and the CLI show, so that neither needs to know how the cluster
//! keeps them (NATS, in anthill-cluster).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a node looks to the others, from the age of its last heartbeat and
/// what it said in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Beating on time.
    Alive,
    /// Missed a few beats: maybe paused or cut off; not yet given up on.
    Suspect,
    /// Stopping on purpose: finishing its actors, taking no new ones.
    Draining,
    /// Silent past the dead threshold (or killed): its actors belong elsewhere.
    Dead,
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeState::Alive => "alive",
            NodeState::Suspect => "suspect",
            NodeState::Draining => "draining",
            NodeState::Dead => "dead",
        })
    }
}

/// Which versions of a module a node serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedVersions {
    /// The stable version.
    pub active: u32,
    /// The canary version, if one is in progress.
    pub canary: Option<u32>,
}

/// One node of the cluster, as `GET /v1/cluster/nodes` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Its `--node` name.
    pub name: String,
    /// Alive, suspect, draining or dead.
    pub state: NodeState,
    /// Its admin API, e.g. `http://127.0.0.1:7350`.
    pub admin: String,
    /// Its player (QUIC) address, when it has a gateway.
    pub players_addr: Option<String>,
    /// Its web port (WebSocket, `/play`), when it has one.
    pub web_addr: Option<String>,
    /// Live actors on it.
    pub live_actors: usize,
    /// Players connected to its gateway.
    pub players: usize,
    /// Milliseconds since its last heartbeat, by the reader's clock.
    pub last_beat_ms_ago: u64,
    /// Modules it serves, by name.
    pub modules: BTreeMap<String, ServedVersions>,
    /// Modules it could not bring to the cluster's record, with why.
    pub failed: BTreeMap<String, String>,
}

/// Where a deploy, swap or undeploy made on one node stands on the others.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rollout {
    /// Nodes serving the new versions (or, for an undeploy, without the module).
    pub ready: Vec<String>,
    /// Nodes that could not, with their error.
    pub failed: BTreeMap<String, String>,
    /// Live nodes that had not reported either way when the wait ended.
    pub pending: Vec<String>,
}
