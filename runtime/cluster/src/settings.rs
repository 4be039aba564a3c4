//! `[cluster]`: how a node joins a cluster. With no servers the node runs
//! alone on sled and nothing here is used.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The cluster section of the node's config file (and `--cluster`, `--node`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// NATS servers to join through, e.g. `["nats://127.0.0.1:4222"]`. Empty:
    /// this node runs alone (the default).
    pub servers: Vec<String>,
    /// This node's name, unique in the cluster (`--node`).
    pub node: Option<String>,
    /// The cluster's name: several clusters may share one NATS account when
    /// their names differ (it prefixes every bucket).
    pub name: String,
    /// A NATS credentials file (`.creds`: JWT and nkey seed).
    pub credentials: Option<PathBuf>,
    /// CA certificate (PEM) to verify the NATS servers with; setting it
    /// requires TLS.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), for NATS servers that verify clients.
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    pub tls_key: Option<PathBuf>,
    /// JetStream replicas of the cluster's buckets [default: 3 when the NATS
    /// servers form a cluster, else 1].
    pub replicas: Option<usize>,
    /// How often the node says it is alive.
    pub heartbeat_ms: u64,
    /// Silent this long: suspect.
    pub suspect_after_ms: u64,
    /// Silent this long: dead, its actors belong elsewhere.
    pub dead_after_ms: u64,
    /// How long a deploy, swap or undeploy waits for the other nodes to
    /// report before answering with the ones still pending.
    pub rollout_timeout_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            servers: Vec::new(),
            node: None,
            name: "anthill".into(),
            credentials: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            replicas: None,
            heartbeat_ms: 500,
            suspect_after_ms: 1_500,
            dead_after_ms: 2_500,
            rollout_timeout_ms: 30_000,
        }
    }
}

impl ClusterSettings {
    /// Whether the node joins a cluster.
    pub fn enabled(&self) -> bool {
        !self.servers.is_empty()
    }

    /// Cross-field rules, checked at start.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        match &self.node {
            None => {
                return Err(
                    "a clustered node needs a name: add --node NAME (or `node` under [cluster])"
                        .into(),
                );
            }
            Some(n) if !valid_name(n) => {
                return Err(format!(
                    "node name `{n}`: use 1 to 64 characters from a-z, A-Z, 0-9, `-` and `_`"
                ));
            }
            Some(_) => {}
        }
        if !valid_name(&self.name) {
            return Err(format!(
                "cluster name `{}`: use 1 to 64 characters from a-z, A-Z, 0-9, `-` and `_`",
                self.name
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("[cluster] tls_cert and tls_key go together".into());
        }
        if self.heartbeat_ms == 0
            || self.suspect_after_ms <= self.heartbeat_ms
            || self.dead_after_ms < self.suspect_after_ms + self.heartbeat_ms
        {
            // Another node takes over after dead_after_ms; the owner's lease
            // (suspect_after_ms) must run out a beat before that.
            return Err(format!(
                "[cluster] needs 0 < heartbeat_ms ({}) < suspect_after_ms ({}) and dead_after_ms ({}) at least suspect_after_ms + heartbeat_ms",
                self.heartbeat_ms, self.suspect_after_ms, self.dead_after_ms
            ));
        }
        if self.replicas.is_some_and(|r| r == 0 || r > 5) {
            return Err("[cluster] replicas must be between 1 and 5".into());
        }
        Ok(())
    }

    /// The node's name (validated: present when enabled).
    pub fn node_name(&self) -> &str {
        self.node.as_deref().unwrap_or("")
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
