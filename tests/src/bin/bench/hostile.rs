//! `hostile`: the latency of an unrelated module's calls while hostile modules
//! saturate the node (100 actors looping in `init`, kept at 100 in flight, and
//! 32 callers hitting fresh keys whose `init` traps), against the same calls on
//! the same node idle, in the same run. Goal: p99 within 3× idle.

use super::{emit, note};
use anthill_tests::Admin;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `calls` echo calls, one every 5 ms: (p50, p99) in ms.
async fn echo_latency(admin: &Admin, calls: usize) -> anyhow::Result<(f64, f64)> {
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let reply = admin.call_text("echo", "ping").await?;
        anyhow::ensure!(reply == "ping", "echo answered {reply}");
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Ok((at(0.5), at(0.99)))
}

/// What attacks: looping inits (100 lanes), trapping fresh keys (32 lanes).
#[derive(Clone, Copy)]
struct Attack {
    loops: bool,
    traps: bool,
}

impl Attack {
    fn name(self) -> &'static str {
        match (self.loops, self.traps) {
            (true, true) => "both",
            (true, false) => "loops",
            _ => "traps",
        }
    }
}

/// Keeps the node under attack until `stop`; returns how many hostile calls
/// were made.
fn attack(admin: &Admin, stop: Arc<AtomicBool>, kind: Attack) -> Vec<tokio::task::JoinHandle<u64>> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let lanes = (0..132u64).filter(|&l| if l < 100 { kind.loops } else { kind.traps });
    for lane in lanes {
        let (admin, stop, next) = (admin.clone(), stop.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut made = 0;
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let target = if lane < 100 {
                    format!("looper/loop-{i}")
                } else {
                    format!("trapper/trap-{i}")
                };
                let _ = admin.call(&target, b"count").await;
                made += 1;
            }
            made
        }));
    }
    tasks
}

pub(crate) async fn hostile(quick: bool) -> anyhow::Result<()> {
    let calls = if quick { 200 } else { 600 };
    let node = anthill_tests::node_with_hostile_neighbours().await?;
    let admin = node.admin();
    echo_latency(&admin, 20).await?;
    // Interleaved: idle, then each attack, twice over.
    let kinds = [
        Attack {
            loops: true,
            traps: true,
        },
        Attack {
            loops: true,
            traps: false,
        },
        Attack {
            loops: false,
            traps: true,
        },
    ];
    let mut idle = Vec::new();
    let mut attacked: Vec<Vec<(f64, f64)>> = vec![Vec::new(); kinds.len()];
    for round in 0..2 {
        note(&format!(
            "hostile round {}: {calls} echo calls on an idle node",
            round + 1
        ));
        idle.push(echo_latency(&admin, calls).await?);
        for (i, kind) in kinds.iter().enumerate() {
            note(&format!(
                "hostile round {}: {calls} echo calls under attack ({})",
                round + 1,
                kind.name()
            ));
            let stop = Arc::new(AtomicBool::new(false));
            let tasks = attack(&admin, stop.clone(), *kind);
            tokio::time::sleep(Duration::from_millis(300)).await;
            attacked[i].push(echo_latency(&admin, calls).await?);
            stop.store(true, Ordering::Relaxed);
            let mut hostile_calls = 0;
            for t in tasks {
                hostile_calls += t.await?;
            }
            note(&format!("  {hostile_calls} hostile calls made"));
            // Let queued looping inits drain before the next phase.
            if kind.loops {
                tokio::time::sleep(Duration::from_secs(6)).await;
            }
        }
    }
    let worst = |v: &[(f64, f64)]| v.iter().map(|x| x.1).fold(0.0, f64::max);
    let idle_p99 = worst(&idle);
    for (kind, phases) in kinds.iter().zip(&attacked) {
        let ratio = worst(phases) / idle_p99.max(0.001);
        emit(json!({
            "bench": "hostile-neighbour",
            "attack": kind.name(),
            "calls_per_phase": calls,
            "idle_p50_ms": idle.iter().map(|x| x.0).collect::<Vec<_>>(),
            "idle_p99_ms": idle.iter().map(|x| x.1).collect::<Vec<_>>(),
            "attacked_p50_ms": phases.iter().map(|x| x.0).collect::<Vec<_>>(),
            "attacked_p99_ms": phases.iter().map(|x| x.1).collect::<Vec<_>>(),
            "p99_ratio": ratio,
            "goal_ratio": 3.0,
            "met": ratio <= 3.0,
        }));
    }
    Ok(())
}
