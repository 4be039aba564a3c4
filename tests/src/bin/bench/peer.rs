//! `peer`: the arena on Anthill and on a Node.js peer, Colyseus 0.18
//! (tests/peer/, pinned by scripts/toolchains/colyseus's lockfile), side by
//! side in the same run, interleaved round by round: Anthill over QUIC with
//! `anthill bot --swarm`, Colyseus over plain WebSocket and over wss (TLS 1.3,
//! for fairness with QUIC's encryption) with a Colyseus SDK load generator.
//! Each run starts a fresh server. Per run: server CPU per player-second,
//! load-generator cores, payload bytes and state messages per player per
//! second, tick p99, request p99; then medians and the ratios. CPU and bytes
//! are taken over each run's steady part (see [`Window`]).

use super::transports::{in_round_order, loopback_bytes, loopback_packets, median};
use super::{emit, histogram_quantile, note};
use anthill_tests::{Admin, Node, anthill_bin, process_cpu_seconds, workspace_root};
use anyhow::Context;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SYSTEMS: [&str; 3] = ["anthill-quic", "colyseus-ws", "colyseus-wss"];

/// Installs the pinned Colyseus (once) and returns its node runner.
fn toolchain() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let status = Command::new(root.join("scripts/peer-toolchain.sh"))
        .status()
        .context("running scripts/peer-toolchain.sh")?;
    anyhow::ensure!(
        status.success(),
        "scripts/peer-toolchain.sh failed ({status}): the peer bench needs Node.js and Colyseus from npm"
    );
    Ok(root.join("target/toolchains/colyseus/run"))
}

/// A self-signed certificate for 127.0.0.1, as PEM files in `dir`, and the
/// certificate's path (the load generator trusts it).
fn certificate(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
    let (cert, private) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, key.cert.pem())?;
    std::fs::write(&private, key.signing_key.serialize_pem())?;
    Ok((cert, private))
}

/// What a run cost over its steady part: from three seconds after the last
/// player was due to connect (1,000 a second) to a second before the end,
/// so the handshakes of the ramp (costlier for QUIC and TLS than for plain
/// TCP) weigh on no system's figure.
struct Window {
    secs: f64,
    server_cpu: f64,
    load_cpu: f64,
    loopback: u64,
    packets: u64,
    /// Anthill only: state frame bytes the node sent (deltas and
    /// snapshots, `anthill_sync_bytes_total`).
    state_bytes: Option<f64>,
}

/// State frame bytes an Anthill node has sent so far.
async fn sync_bytes(admin: &Admin) -> anyhow::Result<f64> {
    Ok(admin
        .metric("anthill_sync_bytes_total", "kind=\"delta\"")
        .await?
        + admin
            .metric("anthill_sync_bytes_total", "kind=\"snapshot\"")
            .await?)
}

async fn steady_window(
    server: u32,
    load: u32,
    players: usize,
    seconds: u64,
    node: Option<&Admin>,
) -> anyhow::Result<Window> {
    let from = players as f64 / 1000.0 + 3.0;
    let to = seconds as f64 - 1.0;
    anyhow::ensure!(
        to - from >= 2.0,
        "{seconds} s is too short a run for {players} players"
    );
    let sample = || -> anyhow::Result<(Instant, f64, f64, u64, u64)> {
        Ok((
            Instant::now(),
            process_cpu_seconds(server).context("the server is gone")?,
            process_cpu_seconds(load).context("the load generator is gone")?,
            loopback_bytes()?,
            loopback_packets()?,
        ))
    };
    tokio::time::sleep(Duration::from_secs_f64(from)).await;
    let a = sample()?;
    let state_a = match node {
        Some(admin) => Some(sync_bytes(admin).await?),
        None => None,
    };
    tokio::time::sleep(Duration::from_secs_f64(to - from)).await;
    let b = sample()?;
    let state_bytes = match (node, state_a) {
        (Some(admin), Some(a)) => Some(sync_bytes(admin).await? - a),
        _ => None,
    };
    Ok(Window {
        secs: (b.0 - a.0).as_secs_f64(),
        server_cpu: b.1 - a.1,
        load_cpu: b.2 - a.2,
        loopback: b.3 - a.3,
        packets: b.4 - a.4,
        state_bytes,
    })
}

/// Kills a load generator whose run failed (nothing outlives the bench),
/// passing the failure on.
fn stopped(mut child: std::process::Child, e: anyhow::Error) -> anyhow::Error {
    let _ = child.kill();
    let _ = child.wait();
    e
}

/// The last line a load generator printed, as JSON.
fn summary(out: &std::process::Output, what: &str) -> anyhow::Result<Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("")).with_context(|| {
        format!(
            "{what} failed ({}): {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The figures every run reports, from its window and its load generator.
fn figures(system: &str, players: usize, w: &Window, s: &Value) -> Value {
    let connected = s["connected"].as_f64().unwrap_or(0.0).max(1.0);
    json!({
        "bench": "arena-peer", "system": system, "players": players,
        "connected": s["connected"], "errors": s["errors"],
        "node_cpu_us_per_player_sec": w.server_cpu * 1e6 / w.secs / connected,
        "node_cores": w.server_cpu / w.secs,
        "load_generator_cores": w.load_cpu / w.secs,
        "loopback_bytes_per_player_per_sec": w.loopback as f64 / w.secs / connected,
        // Both directions: each datagram or segment once, whoever sent it.
        "loopback_packets_per_player_per_sec": w.packets as f64 / w.secs / connected,
        // What the state frames weigh once the ramp is over (Anthill only).
        "steady_state_bytes_per_player_per_sec": w.state_bytes.map(|b| b / w.secs / connected),
        "payload_bytes_per_player_per_sec": s["bytes_per_player_per_sec"],
        "states_per_player_per_sec": s["steady_states_per_player_per_sec"],
        // A server that sends fewer states does less: the cost of one.
        "node_cpu_us_per_state": s["steady_states_per_player_per_sec"]
            .as_f64()
            .map(|r| w.server_cpu * 1e6 / w.secs / connected / r),
        "request_p50_ms": s["p50_ms"], "request_p99_ms": s["p99_ms"],
    })
}

/// One arena run on a fresh node, played by `anthill bot --swarm` (with
/// `extra` bot flags).
pub(crate) async fn anthill_over(
    players: usize,
    seconds: u64,
    extra: &[&str],
) -> anyhow::Result<Value> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("lobby", "lobby", "").await?;
    admin.deploy("arena", "arena", "kind=keyed").await?;
    let bot = Command::new(anthill_bin())
        .args(["bot", "--data"])
        .arg(&node.data)
        .args(["--scenario", "arena", "--swarm", "--connect-rate", "1000"])
        .args(["--players", &players.to_string()])
        .args(["--duration", &seconds.to_string()])
        .args(["--json", "--allow-errors"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting anthill bot")?;
    let w = match steady_window(node.pid(), bot.id(), players, seconds, Some(&admin)).await {
        Ok(w) => w,
        Err(e) => return Err(stopped(bot, e)),
    };
    let out = bot.wait_with_output()?;
    let s = summary(&out, "anthill bot")?;
    let metrics = admin.metrics().await?;
    let tick = |q| {
        histogram_quantile(&metrics, "anthill_tick_seconds", "module=\"arena\"", q)
            .map(|s| s * 1000.0)
    };
    node.stop()?;
    let mut r = figures("anthill-quic", players, &w, &s);
    // The node's histogram: the upper bound of the bucket holding p99.
    r["tick_p99_ms"] = json!(tick(0.99));
    r["tick_p99_is_bucket_bound"] = json!(true);
    Ok(r)
}

/// One arena run on a fresh Colyseus server (`tls`: wss with these PEM files).
async fn colyseus_over(
    run: &Path,
    tls: Option<&(PathBuf, PathBuf)>,
    players: usize,
    seconds: u64,
) -> anyhow::Result<Value> {
    let root = workspace_root();
    let mut cmd = Command::new(run);
    cmd.arg(root.join("tests/peer/colyseus-arena.cjs"))
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((cert, key)) = tls {
        cmd.env("TLS_CERT", cert).env("TLS_KEY", key);
    }
    let mut server = cmd
        .spawn()
        .context("starting tests/peer/colyseus-arena.cjs")?;
    let mut out = BufReader::new(server.stdout.take().context("server stdout")?);
    let mut line = String::new();
    let port = loop {
        line.clear();
        if out.read_line(&mut line)? == 0 {
            let mut err = String::new();
            let _ = server.kill();
            server.stderr.take().map(|mut e| e.read_to_string(&mut err));
            anyhow::bail!("the Colyseus server did not start: {err}");
        }
        if let Some(p) = line.trim().strip_prefix("listening ") {
            break p.parse::<u16>().context("the Colyseus server's port")?;
        }
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let mut bots = Command::new(run);
    bots.arg(root.join("tests/peer/colyseus-bots.cjs"))
        .env("URL", format!("{scheme}://127.0.0.1:{port}"))
        .env("PLAYERS", players.to_string())
        .env("SECONDS", seconds.to_string())
        .env("CONNECT_RATE", "1000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((cert, _)) = tls {
        bots.env("NODE_EXTRA_CA_CERTS", cert);
    }
    let bots = bots
        .spawn()
        .context("starting tests/peer/colyseus-bots.cjs")?;
    let w = match steady_window(server.id(), bots.id(), players, seconds, None).await {
        Ok(w) => w,
        Err(e) => {
            let _ = server.kill();
            let _ = server.wait();
            return Err(stopped(bots, e));
        }
    };
    let s = summary(&bots.wait_with_output()?, "the Colyseus load generator")?;
    // SIGTERM: the server prints its tick statistics and exits.
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()?;
    let mut rest = String::new();
    out.read_to_string(&mut rest)?;
    server.wait()?;
    let ticks: Value = rest
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    let mut r = figures(&format!("colyseus-{scheme}"), players, &w, &s);
    r["tick_p99_ms"] = ticks["tick_p99_ms"].clone();
    Ok(r)
}

/// Every system `rounds` times at each size, interleaved; one line per run,
/// then per size one line of medians and ratios.
pub(crate) async fn peer(sizes: &[usize], seconds: u64, rounds: usize) -> anyhow::Result<()> {
    let run = toolchain()?;
    let dir = tempfile::tempdir()?;
    let tls = certificate(dir.path())?;
    for &players in sizes {
        let mut runs: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for round in 1..=rounds {
            for system in in_round_order(&SYSTEMS, round) {
                note(&format!(
                    "peer: round {round}/{rounds}, arena on {system}, {players} players, {seconds}s"
                ));
                let r = match system {
                    "anthill-quic" => anthill_over(players, seconds, &[]).await?,
                    "colyseus-ws" => colyseus_over(&run, None, players, seconds).await?,
                    _ => colyseus_over(&run, Some(&tls), players, seconds).await?,
                };
                emit(r.clone());
                runs.entry(system).or_default().push(r);
            }
        }
        let med = |s: &str, field: &str| {
            median(runs[s].iter().filter_map(|r| r[field].as_f64()).collect())
        };
        let mut summary =
            json!({"bench": "arena-peer-summary", "players": players, "rounds": rounds});
        for s in SYSTEMS {
            summary[s] = json!({
                "node_cpu_us_per_player_sec": med(s, "node_cpu_us_per_player_sec"),
                "node_cpu_us_per_state": med(s, "node_cpu_us_per_state"),
                "node_cores": med(s, "node_cores"),
                "load_generator_cores": med(s, "load_generator_cores"),
                "connected": med(s, "connected"),
                "states_per_player_per_sec": med(s, "states_per_player_per_sec"),
                "payload_bytes_per_player_per_sec": med(s, "payload_bytes_per_player_per_sec"),
                "loopback_bytes_per_player_per_sec": med(s, "loopback_bytes_per_player_per_sec"),
                "request_p50_ms": med(s, "request_p50_ms"),
                "request_p99_ms": med(s, "request_p99_ms"),
                "tick_p99_ms": med(s, "tick_p99_ms"),
            });
        }
        let cpu = |s: &str| med(s, "node_cpu_us_per_player_sec");
        summary["anthill_cpu_vs_colyseus_ws"] = json!(cpu("anthill-quic") / cpu("colyseus-ws"));
        summary["anthill_cpu_vs_colyseus_wss"] = json!(cpu("anthill-quic") / cpu("colyseus-wss"));
        summary["goal_cpu_at_most_colyseus_ws"] = json!(cpu("anthill-quic") <= cpu("colyseus-ws"));
        summary["goal_cpu_at_most_half_colyseus_wss"] =
            json!(cpu("anthill-quic") <= 0.5 * cpu("colyseus-wss"));
        emit(summary);
    }
    Ok(())
}
