//! `anthill-bench cluster`, players: forwarding against redirecting. Arena
//! rooms live on n2; the same players play them connected to n1 (forwarded:
//! requests cross to n2 over NATS, and n2 sends n1 each room's state once a
//! tick for n1's gateway to diff) and connected to n2 itself (redirected:
//! what a player has after it resumes on the room's node). The modes
//! alternate on the same sessions, each switch a resume on the other node,
//! whose time is the redirect's one-time cost. Per mode: request round trip
//! (`pos`, one every 100 ms per player), state messages and wire bytes per
//! player-second, loopback bytes (QUIC, NATS and its routes), and CPU of
//! the nodes and of the nats-servers per player-second.

use super::{emit, note};
use anthill_client::{Client, Trust};
use anthill_tests::Node;
use anthill_tests::nats::NatsCluster;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const ROOMS: usize = 4;

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

/// Bytes that crossed the loopback interface so far (`/proc/net/dev`).
fn loopback_bytes() -> anyhow::Result<u64> {
    let dev = std::fs::read_to_string("/proc/net/dev")?;
    let line = dev
        .lines()
        .find(|l| l.trim_start().starts_with("lo:"))
        .ok_or_else(|| anyhow::anyhow!("no loopback interface"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("no lo rx_bytes"))?
        .parse()?)
}

struct Player {
    client: Client,
    room: String,
}

/// Every player resumes its session on `node`; the resume times, in ms.
async fn move_all(players: &[Player], node: &Node) -> anyhow::Result<Vec<f64>> {
    let addr = node.quic.ok_or_else(|| anyhow::anyhow!("no gateway"))?;
    let mut times = Vec::with_capacity(players.len());
    for p in players {
        p.client
            .move_to(addr, Trust::Fingerprint(node.fingerprint.clone()))?;
        let t = Instant::now();
        anyhow::ensure!(p.client.resume().await?, "a session did not resume");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(times)
}

/// One measured stretch in the current mode.
async fn measure(
    players: &[Player],
    nodes: [&Node; 2],
    nats: &NatsCluster,
    secs: u64,
) -> anyhow::Result<Value> {
    let cpu = |n: &Node| anthill_tests::process_cpu_seconds(n.pid()).unwrap_or(0.0);
    let (cpu1, cpu2, cpu_nats) = (cpu(nodes[0]), cpu(nodes[1]), nats.cpu_seconds());
    let lo = loopback_bytes()?;
    let frames: u64 = players
        .iter()
        .map(|p| p.client.stats().state_frames.load(Ordering::Relaxed))
        .sum();
    let wire: u64 = players.iter().map(|p| p.client.wire_bytes_in()).sum();
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let per_player = futures::future::join_all(players.iter().map(|p| async move {
        let mut rtts = Vec::new();
        let mut errors = 0u64;
        let mut next = Instant::now();
        while Instant::now() < until {
            let t = Instant::now();
            match p.client.request(&p.room, b"pos".to_vec()).await {
                Ok(_) => rtts.push(t.elapsed().as_secs_f64() * 1000.0),
                Err(_) => errors += 1,
            }
            next += Duration::from_millis(100);
            tokio::time::sleep_until(next.into()).await;
        }
        (rtts, errors)
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let player_secs = elapsed * players.len() as f64;
    let mut rtts: Vec<f64> = per_player.iter().flat_map(|(r, _)| r.clone()).collect();
    rtts.sort_by(f64::total_cmp);
    let errors: u64 = per_player.iter().map(|(_, e)| e).sum();
    let frames = players
        .iter()
        .map(|p| p.client.stats().state_frames.load(Ordering::Relaxed))
        .sum::<u64>()
        - frames;
    let wire = players
        .iter()
        .map(|p| p.client.wire_bytes_in())
        .sum::<u64>()
        - wire;
    let (d1, d2, dn) = (
        cpu(nodes[0]) - cpu1,
        cpu(nodes[1]) - cpu2,
        nats.cpu_seconds() - cpu_nats,
    );
    Ok(json!({
        "request_p50_ms": quantile(&rtts, 0.5), "request_p99_ms": quantile(&rtts, 0.99),
        "requests": rtts.len(), "errors": errors,
        "state_messages_per_player_per_sec": frames as f64 / player_secs,
        "wire_bytes_in_per_player_per_sec": wire as f64 / player_secs,
        "loopback_bytes_per_player_per_sec": (loopback_bytes()? - lo) as f64 / player_secs,
        "n1_cpu_us_per_player_sec": d1 * 1e6 / player_secs,
        "n2_cpu_us_per_player_sec": d2 * 1e6 / player_secs,
        "nats_cpu_us_per_player_sec": dn * 1e6 / player_secs,
        "total_cpu_us_per_player_sec": (d1 + d2 + dn) * 1e6 / player_secs,
    }))
}

/// `anthill-bench cluster-players`: the comparison alone, on 3
/// nats-servers (R3) and 2 nodes.
pub(super) async fn alone(quick: bool) -> anyhow::Result<()> {
    note("cluster players: 3 nats-servers (JetStream, R3) and 2 nodes on loopback");
    let nats = NatsCluster::start(3).await?;
    let n1 = Node::start_clustered(&nats, "n1").await?;
    let n2 = Node::start_clustered(&nats, "n2").await?;
    players(&n1, &n2, &nats, quick).await
}

/// Forwarding against redirecting, `rounds` times interleaved.
pub(super) async fn players(
    n1: &Node,
    n2: &Node,
    nats: &NatsCluster,
    quick: bool,
) -> anyhow::Result<()> {
    let (count, secs, rounds) = if quick { (20, 3, 1) } else { (60, 8, 3) };
    n1.admin().deploy("lobby", "lobby", "").await?;
    n1.admin()
        .deploy("arena", "arena", "kind=keyed&players=open")
        .await?;
    let since = Instant::now();
    while n2.admin().get_json("/v1/modules/arena").await?.0 != 200 {
        anyhow::ensure!(
            since.elapsed() < Duration::from_secs(30),
            "n2 does not serve arena"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rooms = n2
        .admin()
        .keys_living_here("arena", "bench", "players", ROOMS)
        .await?;
    note(&format!(
        "cluster players: {count} players in {ROOMS} arena rooms on n2, connected to n1 (forwarded) or to n2 (redirected), {rounds} round(s) of {secs} s each"
    ));
    let mut players = Vec::with_capacity(count);
    for i in 0..count {
        let client = n1.player().await?;
        client.login_device(&format!("bench-player-{i}")).await?;
        client.set_auto_resume(false);
        let room = format!("arena/{}", rooms[i % ROOMS]);
        client.join(&room).await?;
        players.push(Player { client, room });
    }
    let mut results: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut resumes = Vec::new();
    for round in 0..rounds {
        for (mode, node) in [("forwarded", n1), ("redirected", n2)] {
            if round > 0 || mode == "redirected" {
                resumes.extend(move_all(&players, node).await?);
            }
            // Let each room settle into the mode (first full states sent).
            tokio::time::sleep(Duration::from_millis(500)).await;
            let r = measure(&players, [n1, n2], nats, secs).await?;
            note(&format!(
                "cluster players: {mode}, round {}: {r}",
                round + 1
            ));
            results.entry(mode).or_default().push(r);
        }
    }
    let med = |mode: &str, field: &str| {
        median(
            results[mode]
                .iter()
                .filter_map(|r| r[field].as_f64())
                .collect(),
        )
    };
    let fields = [
        "request_p50_ms",
        "request_p99_ms",
        "state_messages_per_player_per_sec",
        "wire_bytes_in_per_player_per_sec",
        "loopback_bytes_per_player_per_sec",
        "n1_cpu_us_per_player_sec",
        "n2_cpu_us_per_player_sec",
        "nats_cpu_us_per_player_sec",
        "total_cpu_us_per_player_sec",
    ];
    for mode in ["forwarded", "redirected"] {
        let mut line = json!({"bench": "cluster-players", "mode": mode, "players": count, "rooms": ROOMS,
            "rounds": rounds, "errors": results[mode].iter().filter_map(|r| r["errors"].as_u64()).sum::<u64>()});
        for f in fields {
            line[f] = json!(med(mode, f));
        }
        emit(line);
    }
    resumes.sort_by(f64::total_cmp);
    let ratio = |f: &str| med("forwarded", f) / med("redirected", f);
    emit(
        json!({"bench": "cluster-players", "forwarded_over_redirected": {
        "request_p50": ratio("request_p50_ms"), "request_p99": ratio("request_p99_ms"),
        "loopback_bytes": ratio("loopback_bytes_per_player_per_sec"),
        "total_cpu": ratio("total_cpu_us_per_player_sec"),
        "state_messages": ratio("state_messages_per_player_per_sec")},
        "redirect_resume_p50_ms": quantile(&resumes, 0.5), "redirect_resume_p99_ms": quantile(&resumes, 0.99),
        "resumes": resumes.len()}),
    );
    for p in &players {
        p.client.close();
    }
    Ok(())
}
