//! `transports`: the arena played over each player transport in the same run
//! (`anthill/1` QUIC, WebTransport, WebSocket), interleaved round by round on
//! fresh nodes, then the request → reply time a browser sees (headless
//! Chromium and the TypeScript SDK, over WebTransport and WebSocket). Goals:
//! WebSocket within 1.5× the wire bytes of datagrams; browser request → reply
//! p50 ≤ 1 ms over WebTransport. `acks` compares clients acknowledging every
//! room state against one in two.

use super::{arena_bot, emit, histogram_quantile, note};
use anthill_tests::{Node, browser_runner, workspace_root};
use anyhow::Context;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Command;

const TRANSPORTS: [&str; 3] = ["quic", "webtransport", "websocket"];

/// The median; of an even count, the mean of the middle two (two rounds
/// give their mean, not the larger).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The variants of an interleaved comparison in the order round `round`
/// (from 1) runs them: as listed in odd rounds, reversed in even ones. On
/// this box the later run of a back-to-back pair is the slower one whatever
/// it runs (measured: +7–12% node CPU), and a fixed order would hand that to
/// the same variant every round.
pub(crate) fn in_round_order<T: Copy>(variants: &[T], round: usize) -> Vec<T> {
    let mut order = variants.to_vec();
    if round.is_multiple_of(2) {
        order.reverse();
    }
    order
}

/// Bytes sent over the loopback interface so far (`/proc/net/dev`): every
/// packet with its IP, UDP or TCP header, and the pure TCP acks a client's
/// own byte count cannot see. Only the bot and the node talk during a run.
pub(crate) fn loopback_bytes() -> anyhow::Result<u64> {
    loopback_counter(1, "rx_bytes")
}

/// Packets sent over the loopback interface so far (`/proc/net/dev`): each
/// UDP datagram once, whichever side sent it, and every TCP segment.
pub(crate) fn loopback_packets() -> anyhow::Result<u64> {
    loopback_counter(2, "rx_packets")
}

fn loopback_counter(column: usize, name: &str) -> anyhow::Result<u64> {
    let dev = std::fs::read_to_string("/proc/net/dev").context("reading /proc/net/dev")?;
    let line = dev
        .lines()
        .find(|l| l.trim_start().starts_with("lo:"))
        .context("no loopback interface in /proc/net/dev")?;
    // "lo: rx_bytes rx_packets … tx_bytes …": on lo what is sent is received.
    line.split_whitespace()
        .nth(column)
        .with_context(|| format!("no lo {name}"))?
        .parse()
        .with_context(|| format!("lo {name} is not a number"))
}

/// One arena run over `transport` on a fresh node (`extra` bot flags): the
/// bot's summary plus the node's CPU per player-second and tick quantiles.
async fn arena_over(
    transport: &str,
    players: usize,
    seconds: u64,
    extra: &[&str],
) -> anyhow::Result<Value> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("lobby", "lobby", "").await?;
    admin.deploy("arena", "arena", "kind=keyed").await?;
    // From /proc (10 ms ticks), not the node's `process_cpu_seconds_total`:
    // the prometheus crate's process collector counts whole seconds, which
    // at 300 players for 15 s is a step of 213 µs per player-second.
    let node_cpu = || anthill_tests::process_cpu_seconds(node.pid()).context("the node is gone");
    let cpu_before = node_cpu()?;
    let lo_before = loopback_bytes()?;
    let mut args = vec!["--transport", transport];
    args.extend_from_slice(extra);
    let s = arena_bot(&node, players, seconds, &args)?;
    let lo = loopback_bytes()? - lo_before;
    let metrics = admin.metrics().await?;
    let cpu = node_cpu()? - cpu_before;
    let tick = |q| {
        histogram_quantile(&metrics, "anthill_tick_seconds", "module=\"arena\"", q)
            .map(|s| s * 1000.0)
    };
    let secs = s["seconds"].as_f64().unwrap_or(seconds as f64);
    let connected = s["connected"].as_f64().unwrap_or(0.0).max(1.0);
    node.stop()?;
    Ok(json!({
        "bench": "arena-transport", "transport": transport, "players": players,
        "connected": s["connected"], "errors": s["errors"],
        "wire_bytes_per_player_per_sec": s["wire_bytes_per_player_per_sec"],
        "payload_bytes_per_player_per_sec": s["bytes_per_player_per_sec"],
        "loopback_bytes_per_player_per_sec": lo as f64 / secs / connected,
        "node_cpu_us_per_player_sec": cpu * 1e6 / secs / connected,
        "node_cores": cpu / secs,
        "request_p50_ms": s["p50_ms"], "request_p99_ms": s["p99_ms"],
        "tick_p50_ms_le": tick(0.5), "tick_p99_ms_le": tick(0.99),
        "states_per_player_per_sec": s["states_per_player_per_sec"],
        "load_generator": s["engine"],
        "load_generator_cores": s["cpu_seconds"].as_f64().map(|c| c / secs),
    }))
}

/// The arena over every transport, `rounds` times interleaved, then one line
/// of medians and the ratios against QUIC.
pub(crate) async fn arena(players: usize, seconds: u64, rounds: usize) -> anyhow::Result<()> {
    let mut runs: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for round in 1..=rounds {
        for t in in_round_order(&TRANSPORTS, round) {
            note(&format!(
                "transports: round {round}/{rounds}, arena over {t}, {players} players, {seconds}s"
            ));
            let r = arena_over(t, players, seconds, &[]).await?;
            emit(r.clone());
            runs.entry(t).or_default().push(r);
        }
    }
    let med =
        |t: &str, field: &str| median(runs[t].iter().filter_map(|r| r[field].as_f64()).collect());
    let mut summary = json!({"bench": "arena-transports", "players": players, "rounds": rounds});
    for t in TRANSPORTS {
        summary[t] = json!({
            "wire_bytes_per_player_per_sec": med(t, "wire_bytes_per_player_per_sec"),
            "loopback_bytes_per_player_per_sec": med(t, "loopback_bytes_per_player_per_sec"),
            "node_cpu_us_per_player_sec": med(t, "node_cpu_us_per_player_sec"),
            "request_p50_ms": med(t, "request_p50_ms"),
        });
    }
    let ratio = |t: &str, field: &str| med(t, field) / med("quic", field);
    summary["websocket_wire_bytes_vs_quic"] =
        json!(ratio("websocket", "wire_bytes_per_player_per_sec"));
    summary["webtransport_wire_bytes_vs_quic"] =
        json!(ratio("webtransport", "wire_bytes_per_player_per_sec"));
    summary["websocket_loopback_bytes_vs_quic"] =
        json!(ratio("websocket", "loopback_bytes_per_player_per_sec"));
    summary["websocket_cpu_vs_quic"] = json!(ratio("websocket", "node_cpu_us_per_player_sec"));
    summary["webtransport_cpu_vs_quic"] =
        json!(ratio("webtransport", "node_cpu_us_per_player_sec"));
    summary["goal_websocket_bytes_within_1_5x"] =
        json!(ratio("websocket", "wire_bytes_per_player_per_sec") <= 1.5);
    emit(summary);
    Ok(())
}

/// How players acknowledge room states, as `anthill bot` flags: one state
/// in N, sent with the state or held 25 ms (the clients' default, so the ack
/// shares a packet with QUIC's own ACK and the node's ACK of it rides on the
/// next state).
const ACKING: [(&str, &str, &str); 5] = [
    ("every_1_now", "1", "0"),
    ("every_2_now", "2", "0"),
    ("every_1_held", "1", "25"),
    ("every_2_held", "2", "25"),
    ("every_4_held", "4", "25"),
];

/// The arena over QUIC (`anthill bot --swarm`, steady window as `peer`
/// measures it) under each way of acking in [`ACKING`], interleaved on
/// fresh nodes: what an ack costs the node, in CPU and in packets.
pub(crate) async fn acks(players: usize, seconds: u64, rounds: usize) -> anyhow::Result<()> {
    let mut runs: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for round in 1..=rounds {
        for (name, every, delay) in in_round_order(&ACKING, round) {
            note(&format!(
                "acks: round {round}/{rounds}, {players} players acking one state in {every}, \
                 held {delay} ms, {seconds}s"
            ));
            let flags = ["--ack-every", every, "--ack-delay-ms", delay];
            let mut r = super::peer::anthill_over(players, seconds, &flags).await?;
            r["bench"] = json!("arena-acks");
            r["acking"] = json!(name);
            emit(r.clone());
            runs.entry(name).or_default().push(r);
        }
    }
    let med =
        |e: &str, field: &str| median(runs[e].iter().filter_map(|r| r[field].as_f64()).collect());
    let mut summary = json!({"bench": "arena-acks-summary", "players": players, "rounds": rounds});
    for (name, _, _) in ACKING {
        summary[name] = json!({
            "node_cpu_us_per_player_sec": med(name, "node_cpu_us_per_player_sec"),
            "loopback_packets_per_player_per_sec": med(name, "loopback_packets_per_player_per_sec"),
            "payload_bytes_per_player_per_sec": med(name, "payload_bytes_per_player_per_sec"),
            "steady_state_bytes_per_player_per_sec": med(name, "steady_state_bytes_per_player_per_sec"),
            "loopback_bytes_per_player_per_sec": med(name, "loopback_bytes_per_player_per_sec"),
            "states_per_player_per_sec": med(name, "states_per_player_per_sec"),
            "load_generator_cores": med(name, "load_generator_cores"),
        });
    }
    let cpu = |e: &str| med(e, "node_cpu_us_per_player_sec");
    summary["cpu_every_2_vs_1_now"] = json!(cpu("every_2_now") / cpu("every_1_now"));
    summary["cpu_held_vs_now_every_2"] = json!(cpu("every_2_held") / cpu("every_2_now"));
    summary["cpu_held_vs_now_every_1"] = json!(cpu("every_1_held") / cpu("every_1_now"));
    emit(summary);
    Ok(())
}

/// Request → reply as a page sees it: headless Chromium, the TypeScript SDK,
/// `requests` sequential echo requests per transport.
pub(crate) async fn browser(requests: usize) -> anyhow::Result<()> {
    let runner = browser_runner()?;
    // Back to back, a page sends more than the default 100 requests/s.
    let node = Node::start_with_config(
        "[gateway]\nrequests_per_sec = 100000.0\nrequest_burst = 100000.0\n",
    )
    .await?;
    node.admin().deploy("echo", "echo", "").await?;
    let web = node.web.context("the node reports no web port")?;
    note(&format!(
        "transports: browser request → reply, {requests} echo requests per transport in Chromium"
    ));
    let out = Command::new(&runner)
        .arg(workspace_root().join("tests/browser/request-bench.cjs"))
        .env("ANTHILL_WEB", format!("http://{web}"))
        .env("REQUESTS", requests.to_string())
        .output()
        .context("running tests/browser/request-bench.cjs")?;
    anyhow::ensure!(
        out.status.success(),
        "the browser request bench failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    node.stop()?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut v: Value = serde_json::from_str(line)
            .with_context(|| format!("request-bench.cjs printed {line}"))?;
        if v["transport"] == "webtransport" && v["pace_ms"] != 0 {
            v["goal_p50_within_1ms"] = json!(v["p50_ms"].as_f64().is_some_and(|p| p <= 1.0));
        }
        emit(v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{in_round_order, median};

    #[test]
    fn rounds_alternate_the_order_of_the_variants() {
        let v = ["a", "b", "c"];
        assert_eq!(in_round_order(&v, 1), ["a", "b", "c"]);
        assert_eq!(in_round_order(&v, 2), ["c", "b", "a"]);
        assert_eq!(in_round_order(&v, 3), ["a", "b", "c"]);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![700.0, 660.0]), 680.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
