//! `anthill-bench`: end-to-end benchmark scenarios against the real `anthill`
//! binary, each printing one JSON line per result on stdout (progress on
//! stderr). `just bench` runs them all; figures go to docs/perf.md. Every
//! comparison is made within the same run (this machine is shared and noisy).
//!
//! ```text
//! anthill-bench [routes] [send] [events] [snapshots] [swap] [echo] [arena] [transports] [acks]
//!               [browser] [idle] [languages] [hostile] [cluster] [cluster-players] [peer]
//!               [--quick] [--arena-players=N] [--peer-players=N,M]
//! ```

mod cluster;
mod cluster_players;
mod hostile;
mod peer;
mod routing;
mod transports;

use anthill_tests::{Node, anthill_bin, guest};
use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn emit(v: Value) {
    println!("{v}");
}

fn note(s: &str) {
    eprintln!("[bench] {s}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let wanted: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let all = wanted.is_empty();
    let run = |name: &str| all || wanted.contains(&name);
    if run("routes") {
        routing::routes(quick);
    }
    if run("send") {
        routing::send(quick).await?;
    }
    if run("events") {
        routing::events(quick).await?;
    }
    if run("snapshots") {
        routing::snapshots(quick).await?;
    }
    if run("swap") {
        swap(if quick { 200 } else { 1000 }).await?;
    }
    if run("echo") {
        echo(if quick { 200 } else { 1000 }, if quick { 8 } else { 15 }).await?;
    }
    if run("arena") {
        // `--arena-players=N` to find where this box saturates.
        let players = args
            .iter()
            .find_map(|a| {
                a.strip_prefix("--arena-players=")
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(if quick { 300 } else { 2000 });
        arena(players, if quick { 10 } else { 20 }).await?;
    }
    if run("transports") {
        transports::arena(300, if quick { 8 } else { 15 }, if quick { 1 } else { 3 }).await?;
        for t in ["quic", "webtransport", "websocket"] {
            idle(if quick { 500 } else { 2000 }, t).await?;
        }
    }
    if run("acks") {
        transports::acks(
            if quick { 300 } else { 1000 },
            if quick { 8 } else { 15 },
            if quick { 1 } else { 2 },
        )
        .await?;
    }
    if run("browser") {
        transports::browser(if quick { 300 } else { 1000 }).await?;
    }
    if run("idle") {
        idle(if quick { 2000 } else { 20_000 }, "quic").await?;
    }
    if run("languages") {
        languages().await?;
    }
    if run("hostile") {
        hostile::hostile(quick).await?;
    }
    if run("cluster") {
        cluster::cluster(quick).await?;
    }
    if run("peer") {
        // `--peer-players=N,M` for other sizes than 1,000 and 2,000.
        let sizes: Vec<usize> = args
            .iter()
            .find_map(|a| a.strip_prefix("--peer-players="))
            .map(|l| l.split(',').filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_else(|| if quick { vec![300] } else { vec![1000, 2000] });
        peer::peer(
            &sizes,
            if quick { 8 } else { 20 },
            if quick { 1 } else { 3 },
        )
        .await?;
    }
    // Part of `cluster`; alone, on a cluster of its own.
    if !all && wanted.contains(&"cluster-players") {
        cluster_players::alone(quick).await?;
    }
    Ok(())
}

/// Activates `n` counter actors over the admin API.
async fn activate(admin: &anthill_tests::Admin, n: usize) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<String>> = futures::stream::iter(0..n)
        .map(|i| {
            let admin = admin.clone();
            async move { admin.call_text(&format!("counter/k{i}"), "incr").await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(())
}

async fn swap(actors: usize) -> anyhow::Result<()> {
    note(&format!("swap: {actors} live actors, counter ⇄ counter-v2"));
    // Both versions precompiled (a swap deploys a component compiled before it starts).
    let node = Node::start_deployed(&[
        ("counter", "counter", "kind=keyed"),
        ("warm", "counter-v2", "kind=keyed"),
    ])
    .await?;
    let admin = node.admin();
    activate(&admin, actors).await?;
    let v2 = std::fs::read(guest("counter-v2"))?;
    let v1 = std::fs::read(guest("counter"))?;
    let (status, body) = admin.deploy_bytes("counter", v2, "").await?;
    anyhow::ensure!(status == 200, "swap: {body}");
    emit(
        json!({"bench": "swap", "load": "idle", "actors": body["swap"]["actors"], "duration_ms": body["swap"]["duration_ms"],
        "stall_p50_ms": body["swap"]["p50_stall_ms"], "stall_p99_ms": body["swap"]["p99_stall_ms"], "stall_max_ms": body["swap"]["max_stall_ms"]}),
    );

    // The same with four callers incrementing across every key meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|c| {
            let (admin, stop) = (admin.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = c * 251;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = admin
                        .call(&format!("counter/k{}", i % actors), b"incr")
                        .await?;
                    anyhow::ensure!(status == 200, "call failed during the swap: {status}");
                    i += 1;
                    n += 1;
                }
                Ok::<_, anyhow::Error>(n)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = admin.deploy_bytes("counter", v1, "").await?;
    anyhow::ensure!(status == 200, "swap under load: {body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut calls = 0;
    for c in callers {
        calls += c.await??;
    }
    emit(
        json!({"bench": "swap", "load": "4 callers", "actors": body["swap"]["actors"], "duration_ms": body["swap"]["duration_ms"],
        "stall_p50_ms": body["swap"]["p50_stall_ms"], "stall_p99_ms": body["swap"]["p99_stall_ms"], "stall_max_ms": body["swap"]["max_stall_ms"],
        "calls_during": calls, "failed_calls": 0}),
    );
    Ok(())
}

/// Runs `anthill bot` against a node and returns its JSON summary.
fn bot(node: &Node, args: &[&str]) -> anyhow::Result<Value> {
    let out = Command::new(anthill_bin())
        .arg("bot")
        .args(["--data"])
        .arg(&node.data)
        .args(args)
        // Past capacity some requests time out: that is what is measured.
        .args(["--json", "--allow-errors"])
        .output()
        .context("running anthill bot")?;
    // Past capacity some players never connect: the bot exits non-zero but
    // its summary counts them (`connected`), which is what is measured.
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("")).with_context(|| {
        format!(
            "bot failed ({}): {}{text}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `anthill bot --scenario arena` with `players` for `seconds` (plus `extra`).
fn arena_bot(node: &Node, players: usize, seconds: u64, extra: &[&str]) -> anyhow::Result<Value> {
    let (players, seconds) = (players.to_string(), seconds.to_string());
    let mut args = vec![
        "--scenario",
        "arena",
        "--players",
        &players,
        "--duration",
        &seconds,
        "--connect-rate",
        "1000",
    ];
    args.extend_from_slice(extra);
    bot(node, &args)
}

async fn echo(players: usize, seconds: u64) -> anyhow::Result<()> {
    let node = Node::start_deployed(&[("echo", "echo", "")]).await?;
    // A moderate load, then past what this box's two cores (shared by the bots
    // and the node) can carry.
    for rate in ["10", "25", "30"] {
        note(&format!(
            "echo: {players} players × {rate} req/s for {seconds}s"
        ));
        let s = bot(
            &node,
            &[
                "--scenario",
                "echo",
                "--players",
                &players.to_string(),
                "--duration",
                &seconds.to_string(),
                "--rate",
                rate,
                "--connect-rate",
                "1000",
                // Many players per task: the load generator leaves the node room.
                "--swarm",
            ],
        )?;
        emit(
            json!({"bench": "echo-rpc", "load_generator_cores": s["cpu_seconds"].as_f64().map(|c| c / seconds as f64), "players": players, "offered_per_player": rate, "rpc_per_sec": s["requests_per_sec"],
            "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"], "errors": s["errors"]}),
        );
    }
    Ok(())
}

/// A quantile of a Prometheus histogram, as the upper bound of its bucket (in
/// the JSON, `null` means beyond the last finite bucket).
fn histogram_quantile(text: &str, name: &str, labels: &str, q: f64) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&format!("{name}_bucket{{")) else {
            continue;
        };
        if !rest.contains(labels) {
            continue;
        }
        // `le` is the last label (and "module=" also ends in `le=`).
        let le = rest.rsplit("le=\"").next()?.split('"').next()?;
        let count: f64 = rest.rsplit(' ').next()?.parse().ok()?;
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().ok()?
        };
        buckets.push((le, count));
    }
    let total = buckets.last()?.1;
    buckets
        .iter()
        .find(|(_, c)| *c >= total * q)
        .map(|(le, _)| *le)
}

async fn arena(players: usize, seconds: u64) -> anyhow::Result<()> {
    for deltas in [true, false] {
        note(&format!(
            "arena: {players} players, 20 Hz, deltas {deltas}, {seconds}s"
        ));
        let node = Node::start_with_config(&format!("[gateway]\nsync_deltas = {deltas}\n")).await?;
        let admin = node.admin();
        admin.deploy("lobby", "lobby", "").await?;
        admin.deploy("arena", "arena", "kind=keyed").await?;
        let s = arena_bot(&node, players, seconds, &[])?;
        let metrics = admin.metrics().await?;
        let q = |q| {
            histogram_quantile(&metrics, "anthill_tick_seconds", "module=\"arena\"", q)
                .map(|s| s * 1000.0)
        };
        let (tick_p50, tick_p99) = (q(0.5), q(0.99));
        emit(
            json!({"bench": "arena", "players": players, "deltas": deltas, "tick_p50_ms_le": tick_p50, "tick_p99_ms_le": tick_p99,
            "bytes_per_player_per_sec": s["bytes_per_player_per_sec"], "datagrams_per_sec": s["datagrams_per_sec"],
            "connected": s["connected"], "errors": s["errors"]}),
        );
    }
    Ok(())
}

/// Node memory per connected, idle player over `transport`.
async fn idle(players: usize, transport: &str) -> anyhow::Result<()> {
    note(&format!(
        "idle: {players} connected players doing nothing, over {transport}"
    ));
    let node = Node::start_with_config(
        "[gateway]\nmax_connections = 30000\nmax_incoming = 4096\nretry = false\n",
    )
    .await?;
    let admin = node.admin();
    let before = node.rss_kib()?;
    let hold = (players as u64 / 1000 + 25).to_string();
    let mut bot = Command::new(anthill_bin())
        .args(["bot", "--data"])
        .arg(&node.data)
        .args([
            "--scenario",
            "idle",
            "--transport",
            transport,
            "--players",
            &players.to_string(),
            "--duration",
            &hold,
            "--connect-rate",
            "1500",
            "--quiet",
            "--json",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let started = Instant::now();
    let mut peak = (0.0, 0u64);
    while started.elapsed() < Duration::from_secs(hold.parse::<u64>()? - 3) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let conns = admin.metric("anthill_player_connections", "").await?;
        if conns > peak.0 {
            peak = (conns, node.rss_kib()?);
        }
        if conns as usize >= players {
            tokio::time::sleep(Duration::from_secs(2)).await;
            peak = (
                admin.metric("anthill_player_connections", "").await?,
                node.rss_kib()?,
            );
            break;
        }
    }
    let _ = bot.kill();
    let _ = bot.wait();
    let (conns, rss) = peak;
    emit(
        json!({"bench": "idle-connections", "transport": transport, "target": players, "connected": conns, "rss_before_kib": before, "rss_kib": rss,
        "kib_per_connection": if conns > 0.0 { (rss.saturating_sub(before)) as f64 / conns } else { 0.0 }}),
    );
    Ok(())
}

async fn languages() -> anyhow::Result<()> {
    note(
        "languages: size, compile, activation and call per language (counter in Rust, JS, Python)",
    );
    // A cache of its own: compile times are what this measures.
    let dir = tempfile::tempdir()?;
    let cache = dir.path().join("cache");
    let node = Node::start_in(
        &dir.path().join("data"),
        &["--cache", cache.to_str().unwrap()],
    )
    .await?;
    let admin = node.admin();
    for (lang, module) in [
        ("rust", "counter"),
        ("js", "counter-js"),
        ("python", "counter-py"),
    ] {
        let bytes = std::fs::read(guest(module))?;
        let size = bytes.len();
        let (status, body) = admin
            .deploy_bytes(module, bytes, "kind=keyed&deadline_ms=5000")
            .await?;
        anyhow::ensure!(status == 201, "{module}: {body}");
        // Activation: the first call to a new key minus a call to a live one.
        let mut first = Vec::new();
        let mut warm = Vec::new();
        for i in 0..20 {
            let t = Instant::now();
            admin.call_text(&format!("{module}/a{i}"), "get").await?;
            first.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            admin.call_text(&format!("{module}/a{i}"), "get").await?;
            warm.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        first.sort_by(f64::total_cmp);
        warm.sort_by(f64::total_cmp);
        emit(
            json!({"bench": "language", "lang": lang, "component_bytes": size, "compile_ms": body["compile_ms"],
            "activation_ms_p50": first[10] - warm[10], "admin_call_ms_p50": warm[10]}),
        );
    }
    // Reload from the precompiled cache.
    node.stop()?;
    let t = Instant::now();
    let node = Node::start_in(
        &dir.path().join("data"),
        &["--cache", cache.to_str().unwrap()],
    )
    .await?;
    emit(
        json!({"bench": "restart-with-js-and-python", "ready_ms": t.elapsed().as_secs_f64() * 1000.0,
        "compiles": node.admin().metric("anthill_component_compiles_total", "").await?}),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantiles_come_from_the_buckets() {
        let text = "anthill_tick_seconds_bucket{module=\"arena\",le=\"0.001\"} 50\nanthill_tick_seconds_bucket{module=\"arena\",le=\"0.01\"} 99\nanthill_tick_seconds_bucket{module=\"arena\",le=\"+Inf\"} 100\n";
        assert_eq!(
            super::histogram_quantile(text, "anthill_tick_seconds", "module=\"arena\"", 0.5),
            Some(0.001)
        );
        assert_eq!(
            super::histogram_quantile(text, "anthill_tick_seconds", "module=\"arena\"", 0.99),
            Some(0.01)
        );
    }
}
