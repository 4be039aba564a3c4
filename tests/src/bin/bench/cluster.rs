//! `anthill-bench cluster`: the cost of crossing nodes, in one run on real
//! nats-servers (three, JetStream R3) and real nodes. Calls go through the
//! admin API of one node, to actors it owns (local) and to actors another
//! node owns (remote, forwarded over NATS request/reply), interleaved, so the
//! difference is the cross-node hop; then the activation race; then players
//! forwarded to a room's node against players redirected to it
//! (`cluster_players`); then failover: a node holding `every-message` actors killed with -9, or
//! paused with SIGSTOP, and the time until each of its actors answers
//! through the surviving node, over repeated trials.

use super::{emit, note};
use anthill_tests::Admin;
use anthill_tests::Node;
use anthill_tests::nats::NatsCluster;
use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};

async fn clustered(nats: &NatsCluster, name: &str) -> anyhow::Result<Node> {
    Node::start_clustered(nats, name).await
}

async fn live_keys(node: &Node) -> anyhow::Result<Vec<String>> {
    node.admin().live_keys("counter").await
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn throughput(admin: &Admin, keys: &[String], seconds: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let done: usize = futures::stream::iter(0..32)
        .map(|w| {
            let (admin, keys) = (admin.clone(), keys.to_vec());
            async move {
                let mut n = 0usize;
                while Instant::now() < until {
                    let key = &keys[(w + n) % keys.len()];
                    if admin
                        .call_text(&format!("counter/{key}"), "get")
                        .await
                        .is_ok()
                    {
                        n += 1;
                    }
                }
                n
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum();
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

pub(super) async fn cluster(quick: bool) -> anyhow::Result<()> {
    note("cluster: 3 nats-servers (JetStream, R3) and 3 nodes on loopback");
    let nats = NatsCluster::start(3).await?;
    let n1 = clustered(&nats, "n1").await?;
    let n2 = clustered(&nats, "n2").await?;
    let n3 = clustered(&nats, "n3").await?;
    let a1 = n1.admin();
    a1.deploy("counter", "counter", "kind=keyed").await?;
    // n2 touches its keys first and claims their partitions; n1 then touches
    // its own. Which node holds which key is read back, not assumed.
    for i in 0..64 {
        n2.admin()
            .call_text(&format!("counter/r{i}"), "incr")
            .await?;
    }
    for i in 0..64 {
        a1.call_text(&format!("counter/l{i}"), "incr").await?;
    }
    let local = live_keys(&n1).await?;
    let remote = live_keys(&n2).await?;
    anyhow::ensure!(
        !local.is_empty() && !remote.is_empty(),
        "keys on both nodes"
    );
    let calls = if quick { 500 } else { 3000 };
    note(&format!(
        "cluster: {calls} sequential calls through n1 to its own actors and to n2's, interleaved"
    ));
    let (mut lat_local, mut lat_remote) = (Vec::new(), Vec::new());
    for i in 0..calls {
        for (keys, out) in [(&local, &mut lat_local), (&remote, &mut lat_remote)] {
            let key = &keys[i % keys.len()];
            let t = Instant::now();
            a1.call_text(&format!("counter/{key}"), "get").await?;
            out.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let secs = if quick { 2 } else { 5 };
    let tp_local = throughput(&a1, &local, secs).await?;
    let tp_remote = throughput(&a1, &remote, secs).await?;
    for v in [&mut lat_local, &mut lat_remote] {
        v.sort_by(f64::total_cmp);
    }
    let (l50, r50) = (quantile(&lat_local, 0.5), quantile(&lat_remote, 0.5));
    for (path, lat, tp) in [
        ("local", &lat_local, tp_local),
        ("remote", &lat_remote, tp_remote),
    ] {
        emit(
            json!({"bench": "cluster-call", "path": path, "via": "admin API of n1",
            "p50_ms": quantile(lat, 0.5), "p99_ms": quantile(lat, 0.99), "calls_per_sec_32_callers": tp}),
        );
    }
    emit(
        json!({"bench": "cluster-call", "cross_node_hop_p50_ms": r50 - l50,
        "remote_over_local_p50": r50 / l50, "remote_over_local_throughput": tp_remote / tp_local}),
    );

    let keys = 100;
    let per_key = 10;
    note(&format!(
        "cluster: activation race, {} first messages to {keys} new keys over 3 nodes",
        keys * per_key
    ));
    let admins = [a1.clone(), n2.admin(), n3.admin()];
    let started = Instant::now();
    let outcomes = futures::future::join_all((0..keys * per_key).map(|i| {
        let admin = admins[i % 3].clone();
        async move {
            admin
                .call(&format!("counter/race{}", i % keys), b"incr")
                .await
        }
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let failed = outcomes
        .iter()
        .filter(|o| !matches!(o, Ok((200, _))))
        .count();
    let mut live = Vec::new();
    for n in [&n1, &n2, &n3] {
        live.extend(
            live_keys(n)
                .await?
                .into_iter()
                .filter(|k| k.starts_with("race")),
        );
    }
    let total = live.len();
    live.sort();
    live.dedup();
    emit(
        json!({"bench": "cluster-activation-race", "messages": keys * per_key, "keys": keys,
        "seconds": elapsed, "messages_per_sec": (keys * per_key) as f64 / elapsed, "failed": failed,
        "activations": total, "double_activations": total - live.len()}),
    );
    super::cluster_players::players(&n1, &n2, &nats, quick).await?;
    drop((n1, n2, n3));
    failover(&nats, quick).await
}

/// How the owner is lost in a failover trial.
#[derive(Clone, Copy)]
enum Loss {
    Kill9,
    Pause,
}

/// A node of cluster `cluster` (its own buckets: every trial starts with
/// no claims).
async fn trial_node(nats: &NatsCluster, cluster: &str, node: &str) -> anyhow::Result<Node> {
    let servers: Vec<String> = nats.urls().split(',').map(|u| format!("{u:?}")).collect();
    Node::start_with_config(&format!(
        "[cluster]\nservers = [{}]\nname = \"{cluster}\"\nnode = \"{node}\"\n",
        servers.join(", ")
    ))
    .await
}

/// One trial: the victim owns `KEYS` actors, is lost, and the survivor
/// calls each until it answers. Milliseconds from the loss to each answer.
async fn trial(nats: &NatsCluster, n: usize, loss: Loss) -> anyhow::Result<Vec<f64>> {
    const KEYS: usize = 8;
    let cluster = format!("failover{n}");
    let victim = trial_node(nats, &cluster, "victim").await?;
    let survivor = trial_node(nats, &cluster, "survivor").await?;
    victim
        .admin()
        .deploy("counter", "counter", "kind=keyed&durability=every-message")
        .await?;
    // Keys the victim owns (a partition nobody holds goes to the node a
    // hash prefers, so not every key touched through the victim stays).
    let keys = victim
        .admin()
        .keys_living_here("counter", "k", "incr", KEYS)
        .await?;
    let lost = Instant::now();
    match loss {
        Loss::Kill9 => drop(victim.kill9()),
        Loss::Pause => victim.pause()?,
    }
    let admin = survivor.admin();
    let answered = futures::future::join_all(keys.iter().map(|k| {
        let admin = admin.clone();
        async move {
            let deadline = lost + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok((200, _)) = admin.call(&format!("counter/{k}"), b"incr").await {
                    return Ok(lost.elapsed().as_secs_f64() * 1000.0);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::bail!("counter/{k} did not answer within 30 s of the loss")
        }
    }))
    .await;
    answered.into_iter().collect()
}

/// Failover over `trials` trials of each kind of loss.
async fn failover(nats: &NatsCluster, quick: bool) -> anyhow::Result<()> {
    let trials = if quick { 3 } else { 10 };
    for (loss, name) in [(Loss::Kill9, "kill-9"), (Loss::Pause, "sigstop")] {
        note(&format!(
            "cluster: failover after {name}, {trials} trials of 8 every-message actors (a fresh pair of nodes each)"
        ));
        let mut all = Vec::new();
        for t in 0..trials {
            let n = match loss {
                Loss::Kill9 => t,
                Loss::Pause => 100 + t,
            };
            let times = trial(nats, n, loss).await?;
            let worst = times.iter().copied().fold(0.0, f64::max);
            note(&format!(
                "  trial {}: every actor answered within {worst:.0} ms",
                t + 1
            ));
            all.extend(times);
        }
        all.sort_by(f64::total_cmp);
        emit(
            json!({"bench": "cluster-failover", "loss": name, "trials": trials,
            "actors": all.len(), "p50_ms": quantile(&all, 0.5), "max_ms": all[all.len() - 1],
            "dead_after_ms": 2500}),
        );
    }
    Ok(())
}
