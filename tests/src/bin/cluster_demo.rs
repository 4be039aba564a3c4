//! `just cluster-demo`: three nats-servers (JetStream, R3) and three nodes on
//! loopback, the samples deployed once through n1, arena bots spread over
//! all three gateways, and the node holding the most rooms killed with -9
//! mid-game. A line a second says where the rooms live and how many players
//! each node holds; after the kill, where each of its rooms went and how long
//! it was unavailable; at the
//! end, each gateway's bot summary. Every bot knows the other two gateways
//! (`anthill bot --fallback`), so the killed node's players resume their
//! sessions on the others once their requests time out (10 s), as real
//! clients would.
//!
//! `CLUSTER_DEMO_PLAYERS` (per node, default 60) and `CLUSTER_DEMO_SECONDS`
//! (default 36; the kill comes a third of the way) size it.

use anthill_tests::nats::NatsCluster;
use anthill_tests::{Admin, Node, anthill_bin};
use anyhow::Context;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn step(s: &str) {
    println!("\n\x1b[1m== {s}\x1b[0m");
}

/// Room key → the node it is live on.
async fn rooms_by_node(nodes: &[(&str, Admin)]) -> BTreeMap<String, String> {
    let mut rooms = BTreeMap::new();
    for (name, admin) in nodes {
        if let Ok(keys) = admin.live_keys("arena").await {
            for k in keys {
                rooms.insert(k, (*name).to_owned());
            }
        }
    }
    rooms
}

/// Players connected to each node, as the cluster's node list says.
async fn players_by_node(admin: &Admin) -> String {
    let Ok((_, body)) = admin.get_json("/v1/cluster/nodes").await else {
        return "?".into();
    };
    body["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            format!(
                "{} {} ({})",
                n["name"].as_str().unwrap_or("?"),
                n["players"],
                n["state"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn count_by_node(rooms: &BTreeMap<String, String>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in rooms.values() {
        *counts.entry(n).or_default() += 1;
    }
    counts
        .iter()
        .map(|(n, c)| format!("{n} {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let per_node = env_or("CLUSTER_DEMO_PLAYERS", 60);
    let seconds = env_or("CLUSTER_DEMO_SECONDS", 36).max(12);
    step("3 nats-servers (JetStream, R3) and 3 nodes on loopback");
    let nats = NatsCluster::start(3).await?;
    println!("NATS: {}", nats.urls());
    let nodes = Node::start_cluster_of(&nats, 3).await?;
    let [n1, n2, n3]: [Node; 3] = nodes
        .try_into()
        .map_err(|_| anyhow::anyhow!("three nodes"))?;
    for (name, n) in [("n1", &n1), ("n2", &n2), ("n3", &n3)] {
        println!(
            "{name}: admin {} · players quic://{}",
            n.admin_url,
            n.quic.context("a gateway")?
        );
    }

    step("deploy lobby and arena once, through n1");
    n1.admin().deploy("lobby", "lobby", "").await?;
    n1.admin()
        .deploy("arena", "arena", "kind=keyed&snapshot_interval_ms=500")
        .await?;
    for (name, n) in [("n2", &n2), ("n3", &n3)] {
        let since = Instant::now();
        loop {
            let (status, _) = n.admin().get_json("/v1/modules/arena").await?;
            if status == 200 {
                println!("{name} serves arena ({} ms)", since.elapsed().as_millis());
                break;
            }
            anyhow::ensure!(
                since.elapsed() < Duration::from_secs(30),
                "{name} did not serve arena"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    step(&format!(
        "{per_node} arena bots on each gateway for {seconds} s; the node with most rooms is killed with -9 at {} s",
        seconds / 3
    ));
    let mut bots = Vec::new();
    let gateways = [("n1", &n1), ("n2", &n2), ("n3", &n3)];
    for (name, n) in gateways {
        let fallbacks = gateways
            .iter()
            .filter(|(other, _)| *other != name)
            .filter_map(|(_, o)| Some(format!("{}={}", o.quic?, o.fingerprint)));
        let child = Command::new(anthill_bin())
            .args(["bot", "--scenario", "arena", "--json", "--quiet"])
            .args(["--players", &per_node.to_string()])
            .args(["--duration", &seconds.to_string()])
            .args(["--addr", &n.quic.context("a gateway")?.to_string()])
            .args(["--fingerprint", &n.fingerprint])
            .args(fallbacks.flat_map(|f| ["--fallback".to_owned(), f]))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting anthill bot")?;
        bots.push((name, child));
    }
    let mut nodes = [("n1", Some(n1)), ("n2", Some(n2)), ("n3", Some(n3))];
    let live = |nodes: &[(&'static str, Option<Node>)]| -> Vec<(&'static str, Admin)> {
        nodes
            .iter()
            .filter_map(|(name, n)| n.as_ref().map(|n| (*name, n.admin())))
            .collect()
    };
    let started = Instant::now();
    let kill_at = Duration::from_secs(seconds / 3);
    let mut last_line = Instant::now() - Duration::from_secs(1);
    let mut before = BTreeMap::new();
    while started.elapsed() < kill_at {
        if last_line.elapsed() >= Duration::from_secs(1) {
            last_line = Instant::now();
            let all = live(&nodes);
            before = rooms_by_node(&all).await;
            println!(
                "[{:>3}s] rooms: {} · players: {}",
                started.elapsed().as_secs(),
                count_by_node(&before),
                players_by_node(&all[0].1).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The node holding the most rooms dies (the last of equals).
    let victim = nodes
        .iter()
        .map(|(name, _)| *name)
        .max_by_key(|name| before.values().filter(|n| n == name).count())
        .expect("three nodes");
    let on_victim: Vec<String> = before
        .iter()
        .filter(|(_, n)| *n == victim)
        .map(|(k, _)| k.clone())
        .collect();
    step(&format!(
        "kill -9 {victim} (it holds {} of {} rooms)",
        on_victim.len(),
        before.len()
    ));
    for (name, node) in nodes.iter_mut() {
        if *name == victim
            && let Some(n) = node.take()
        {
            let _ = n.kill9();
        }
    }
    let survivors = live(&nodes);
    let killed = Instant::now();
    let mut moved: BTreeMap<String, (String, Duration)> = BTreeMap::new();
    let end = started + Duration::from_secs(seconds);
    while Instant::now() < end {
        let now = rooms_by_node(&survivors).await;
        for k in &on_victim {
            if let Some(node) = now.get(k)
                && !moved.contains_key(k)
            {
                moved.insert(k.clone(), (node.clone(), killed.elapsed()));
                println!(
                    "  arena/{k}: {victim} → {node}, unavailable {:.2} s",
                    killed.elapsed().as_secs_f64()
                );
            }
        }
        if last_line.elapsed() >= Duration::from_secs(1) {
            last_line = Instant::now();
            println!(
                "[{:>3}s] rooms: {} · players: {}",
                started.elapsed().as_secs(),
                count_by_node(&now),
                players_by_node(&survivors[0].1).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    step("summary");
    let mut times: Vec<f64> = moved.values().map(|(_, d)| d.as_secs_f64()).collect();
    times.sort_by(f64::total_cmp);
    if let (Some(first), Some(last)) = (times.first(), times.last()) {
        println!(
            "{} of {victim}'s {} rooms came back on the survivors: unavailable {:.2}–{:.2} s after the kill (detection is dead_after_ms, 2.5 s by default)",
            moved.len(),
            on_victim.len(),
            first,
            last
        );
    }
    for k in on_victim.iter().filter(|k| !moved.contains_key(*k)) {
        println!("  arena/{k}: not live again yet (no member left to attach it)");
    }
    for (name, child) in bots {
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
        match summary {
            Some(s) => {
                println!(
                    "bots on {name}: {} of {} connected, {:.0} requests/s, p99 {:.1} ms, {:.0} state datagrams/s, {} errors, {} resumed on another node{}",
                    s["connected"],
                    s["players"],
                    s["requests_per_sec"].as_f64().unwrap_or(0.0),
                    s["p99_ms"].as_f64().unwrap_or(0.0),
                    s["datagrams_per_sec"].as_f64().unwrap_or(0.0),
                    s["errors"],
                    s["moved"],
                    if name == victim {
                        " (their node was killed: each request in flight timed out, then the bot resumed elsewhere)"
                    } else {
                        ""
                    }
                );
                for e in s["error_samples"].as_array().into_iter().flatten().take(3) {
                    println!("  e.g. {}", e.as_str().unwrap_or("?"));
                }
            }
            None => println!(
                "bots on {name}: no summary ({})",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ),
        }
    }
    Ok(())
}
