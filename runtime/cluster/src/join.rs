//! Joining NATS: connect with the operator's credentials and TLS, refuse a
//! server that cannot carry the cluster (older than 2.12, or without
//! JetStream), and open the cluster's buckets with their final configuration.

use crate::ClusterError;
use crate::settings::ClusterSettings;
use async_nats::jetstream::{self, kv, object_store};
use std::time::Duration;

/// The oldest nats-server the cluster runs on: per-key TTLs need 2.11 and
/// message schedules 2.12; 2.9's clustered compare-and-set let several racers
/// win (nats-server #4320).
pub const MIN_SERVER: (u64, u64) = (2, 12);

/// How long a NATS request or JetStream acknowledgement may take before the
/// node gives up and retries (or reports it).
const NATS_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an event waits in the cluster's stream for a node that is down.
const EVENTS_KEPT: Duration = Duration::from_secs(24 * 3600);

/// How long a session record outlives its last change.
const SESSIONS_KEPT: Duration = Duration::from_secs(25 * 3600);

/// How long a dead node's last heartbeat stays listed.
const DEAD_NODES_KEPT: Duration = Duration::from_secs(120);

/// A connection to the cluster's NATS and its buckets.
#[derive(Clone)]
pub struct Nats {
    /// The core NATS client.
    pub client: async_nats::Client,
    /// JetStream on it.
    pub js: jetstream::Context,
    /// Heartbeats, by node name.
    pub nodes: kv::Store,
    /// Module records, by module name.
    pub modules: kv::Store,
    /// Partition claims, by partition (`p0`…).
    pub partitions: kv::Store,
    /// Tenant records, by tenant name.
    pub tenants: kv::Store,
    /// Actor snapshots, by module and key (see [`crate::snapshots`]).
    pub snapshots: kv::Store,
    /// Durable timers, by partition, actor and tag (see [`crate::partitioned`]).
    pub timers: kv::Store,
    /// Subscriptions, by partition, actor and topic (see [`crate::partitioned`]).
    pub subscriptions: kv::Store,
    /// At-least-once cursors, by partition, actor and topic (see
    /// [`crate::event_log`]).
    pub cursors: kv::Store,
    /// Dead letters, by id (see [`crate::event_log`]).
    pub dead_letters: kv::Store,
    /// Players' sessions, by player (see [`crate::sessions`]), and the
    /// key that signs session tokens on every node.
    pub sessions: kv::Store,
    /// Events published on every node (see [`crate::events`]).
    pub events: jetstream::stream::Stream,
    /// Uploaded components, by sha256.
    pub components: object_store::ObjectStore,
    /// What the connected server said of itself, for the start banner.
    pub server: String,
    /// Replicas of every bucket.
    pub replicas: usize,
}

/// Connects, checks the server, and opens (or creates) the buckets.
pub async fn join(settings: &ClusterSettings) -> Result<Nats, ClusterError> {
    let servers = settings.servers.join(",");
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("anthill node {}", settings.node_name()))
        .connection_timeout(Duration::from_secs(5))
        // Reconnect forever, quickly: a NATS server's failover takes seconds
        // and the node must be back as soon as one answers.
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((attempts as u64 * 100).min(1_000))
        })
        // A read sent to a stream whose leader just died waits this long
        // rather than the client's 10 s: the caller retries sooner, so a NATS
        // server's failover stalls the node for about as long as it takes.
        // (Forwarded calls set their own timeout per request.)
        .request_timeout(Some(NATS_TIMEOUT));
    if let Some(creds) = &settings.credentials {
        options = options.credentials_file(creds).await.map_err(|e| {
            ClusterError::Config(format!(
                "cannot read the NATS credentials file {}: {e}",
                creds.display()
            ))
        })?;
    }
    if let Some(ca) = &settings.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    let client = options
        .connect(settings.servers.as_slice())
        .await
        .map_err(|e| ClusterError::Connect {
            servers: servers.clone(),
            detail: e.to_string(),
        })?;
    let info = client.server_info();
    let version = parse_version(&info.version);
    if version.is_none_or(|(major, minor)| (major, minor) < MIN_SERVER) {
        return Err(ClusterError::ServerTooOld {
            server: info.server_name.clone(),
            version: info.version.clone(),
        });
    }
    let mut js = jetstream::new(client.clone());
    js.set_timeout(NATS_TIMEOUT);
    if !info.jetstream {
        return Err(ClusterError::NoJetStream {
            server: info.server_name.clone(),
            detail: "the server does not offer JetStream".into(),
        });
    }
    js.query_account()
        .await
        .map_err(|e| ClusterError::NoJetStream {
            server: info.server_name.clone(),
            detail: e.to_string(),
        })?;
    let replicas = settings
        .replicas
        .unwrap_or(if info.cluster.is_some() { 3 } else { 1 });
    let prefix = &settings.name;
    let open = |name: &str, description: &str| {
        bucket(
            &js,
            kv::Config {
                bucket: format!("{prefix}-{name}"),
                description: format!("anthill: {description}"),
                history: 1,
                num_replicas: replicas,
                ..Default::default()
            },
        )
    };
    let nodes = bucket(
        &js,
        kv::Config {
            bucket: format!("{prefix}-nodes"),
            description: "anthill: node heartbeats".into(),
            history: 1,
            max_age: DEAD_NODES_KEPT,
            num_replicas: replicas,
            ..Default::default()
        },
    )
    .await?;
    let modules = open("modules", "module records (the cluster's registry)").await?;
    let tenants = open(
        "tenants",
        "tenant records (quotas, token hashes, reach rules)",
    )
    .await?;
    let partitions = open("partitions", "which node owns each partition of the actors").await?;
    let snapshots = open(
        "snapshots",
        "actor snapshots, replicated so another node can take over",
    )
    .await?;
    let timers = open(
        "timers",
        "durable actor timers, adopted by whoever owns the partition",
    )
    .await?;
    let subscriptions = open(
        "subscriptions",
        "actors' subscriptions, adopted by whoever owns the partition",
    )
    .await?;
    let cursors = open(
        "cursors",
        "where each at-least-once subscriber is in its topic, adopted with its partition",
    )
    .await?;
    let dead_letters = open(
        "dead-letters",
        "events that exhausted their delivery attempts, by id",
    )
    .await?;
    let sessions = bucket(
        &js,
        kv::Config {
            bucket: format!("{prefix}-sessions"),
            description: "anthill: which node holds each player's session, and its rooms".into(),
            history: 1,
            // A session lives a day at most (gateway.session_ttl_s); records
            // of sessions nobody ended go with it.
            max_age: SESSIONS_KEPT,
            num_replicas: replicas,
            ..Default::default()
        },
    )
    .await?;
    let name = format!("{prefix}-events");
    let events = while_forming(&name, || {
        js.get_or_create_stream(jetstream::stream::Config {
            name: name.clone(),
            description: Some(
                "anthill: events published on each node, for the others' subscribers".into(),
            ),
            subjects: vec![format!("{prefix}.events.>")],
            num_replicas: replicas,
            max_age: EVENTS_KEPT,
            ..Default::default()
        })
    })
    .await?;
    let name = format!("{prefix}-components");
    let components = while_forming(&name, || {
        js.create_object_store(object_store::Config {
            bucket: name.clone(),
            description: Some("anthill: uploaded components, by sha256".into()),
            num_replicas: replicas,
            ..Default::default()
        })
    })
    .await?;
    // A bucket just created has no stream leader for a moment (reads answer
    // "no responders"): wait until each one answers.
    for kv in [
        &nodes,
        &modules,
        &tenants,
        &partitions,
        &snapshots,
        &timers,
        &subscriptions,
        &cursors,
        &dead_letters,
        &sessions,
    ] {
        ready(kv).await?;
    }
    Ok(Nats {
        client,
        js,
        nodes,
        modules,
        tenants,
        partitions,
        snapshots,
        timers,
        subscriptions,
        cursors,
        dead_letters,
        sessions,
        events,
        components,
        server: format!(
            "{} v{} ({} replicas)",
            info.server_name, info.version, replicas
        ),
        replicas,
    })
}

/// The keys of `kv` that `keep` selects (a listing of the whole bucket:
/// for rare operations such as an undeploy or a partition's claim).
pub(crate) async fn keys_where(
    kv: &kv::Store,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<String>, String> {
    use futures::StreamExt;
    let mut keys = kv.keys().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(k) = keys.next().await {
        let k = k.map_err(|e| e.to_string())?;
        if keep(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

/// Creating an existing bucket with the same configuration opens it; a
/// different configuration is an error that names the bucket.
async fn bucket(js: &jetstream::Context, config: kv::Config) -> Result<kv::Store, ClusterError> {
    let name = config.bucket.clone();
    while_forming(&name, || js.create_key_value(config.clone())).await
}

/// How long a node waits for a JetStream cluster that is still forming.
const FORMING: Duration = Duration::from_secs(15);

/// Creates (or opens) bucket `name` with `create`, retrying for up to
/// [`FORMING`] while JetStream says it has too few peers to place it (the
/// servers of a cluster that has just started take a few seconds to know
/// each other, seen when nodes start right after their NATS servers) or does
/// not answer in time (its meta leader busy placing other streams, seen in
/// the cluster tests on a loaded box). Creating is idempotent: a retry of a
/// create that did land opens the bucket.
async fn while_forming<T, E, F, Fut>(name: &str, mut create: F) -> Result<T, ClusterError>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = std::time::Instant::now() + FORMING;
    let mut logged = false;
    loop {
        match create().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let detail = e.to_string();
                let forming = detail.contains("no suitable peers")
                    || detail.contains("insufficient resources")
                    || detail.contains("timed out");
                if !forming || std::time::Instant::now() > deadline {
                    return Err(ClusterError::Bucket {
                        bucket: name.to_owned(),
                        detail,
                    });
                }
                if !logged {
                    tracing::info!(bucket = name, error = %detail, "the JetStream cluster is still forming; retrying for up to {} s", FORMING.as_secs());
                    logged = true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Waits up to 15 s for a bucket to answer reads.
async fn ready(kv: &kv::Store) -> Result<(), ClusterError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match kv.get("ready-probe").await {
            Ok(_) => return Ok(()),
            Err(e) if std::time::Instant::now() > deadline => {
                return Err(ClusterError::Bucket {
                    bucket: kv.name.clone(),
                    detail: format!("it does not answer reads after 15 s: {e}"),
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// `2.15.1` → `(2, 15)`; `None` when the server reports something else.
fn parse_version(v: &str) -> Option<(u64, u64)> {
    let mut parts = v.trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.split('-').next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_below_2_12_are_refused_and_others_parse() {
        assert_eq!(parse_version("2.15.1"), Some((2, 15)));
        assert_eq!(parse_version("v2.12.0-RC.1"), Some((2, 12)));
        assert!(parse_version("2.9.10").unwrap() < MIN_SERVER);
        assert!(parse_version("2.11.9").unwrap() < MIN_SERVER);
        assert!(parse_version("3.0.0").unwrap() >= MIN_SERVER);
        assert_eq!(parse_version("nats"), None);
    }

    #[tokio::test]
    async fn a_bucket_is_retried_while_jetstream_times_out_and_a_conflict_is_not() {
        let tries = std::cell::Cell::new(0);
        let opened = while_forming("b", || {
            tries.set(tries.get() + 1);
            let n = tries.get();
            async move {
                if n < 3 {
                    Err("timed out: jetstream request timed out")
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert!(matches!(opened, Ok(3)), "{opened:?}");

        tries.set(0);
        let refused = while_forming("b", || {
            tries.set(tries.get() + 1);
            async { Err::<(), _>("stream name already in use with a different configuration") }
        })
        .await;
        assert_eq!(tries.get(), 1, "a conflict is not retried");
        let Err(ClusterError::Bucket { bucket, detail }) = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(bucket, "b");
        assert!(detail.contains("different configuration"), "{detail}");
    }
}
