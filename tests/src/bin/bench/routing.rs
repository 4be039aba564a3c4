//! Benchmarks of the routing issue: route lookups against a locked baseline,
//! actor → actor `send` into a Wasm actor, at-least-once publish → deliver, and
//! snapshot commits with and without group commit. One JSON line per result.

use crate::{emit, note};
use anthill_actors::router::ActorTable;
use anthill_store::{Durability, Snapshot, SnapshotStore, Store};
use anthill_tests::Node;
use arc_swap::ArcSwap;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const ROUTES: usize = 100_000;

/// Two readers look up random routes among 100k while a writer changes the
/// table ten times a second; returns (lookups/s, p99 ns of a timed lookup).
fn lookups(
    keys: &[String],
    read: impl Fn(&str) -> Option<u64> + Sync,
    write: impl Fn(u64) + Sync,
    run_for: Duration,
) -> (f64, u64) {
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let samples = std::sync::Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for reader in 0..2u64 {
            let (stop, total, samples, read, keys) = (&stop, &total, &samples, &read, keys);
            s.spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ reader;
                let mut n = 0u64;
                let mut mine = Vec::with_capacity(1 << 20);
                while !stop.load(Ordering::Relaxed) {
                    for i in 0..1024 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let key = &keys[(x % keys.len() as u64) as usize];
                        // One lookup in 16 is timed (the clock costs about as
                        // much as the lookup; both tables pay it alike).
                        if i % 16 == 0 {
                            let t = Instant::now();
                            std::hint::black_box(read(key));
                            mine.push(t.elapsed().as_nanos() as u64);
                        } else {
                            std::hint::black_box(read(key));
                        }
                    }
                    n += 1024;
                }
                total.fetch_add(n, Ordering::Relaxed);
                samples.lock().unwrap().extend(mine);
            });
        }
        let (stop, write) = (&stop, &write);
        s.spawn(move || {
            let mut n = 0;
            while started.elapsed() < run_for {
                std::thread::sleep(Duration::from_millis(100));
                write(n);
                n += 1;
            }
            stop.store(true, Ordering::Relaxed);
        });
    });
    let secs = started.elapsed().as_secs_f64();
    let mut samples = samples.into_inner().unwrap();
    samples.sort_unstable();
    let p99 = samples
        .get(samples.len() * 99 / 100)
        .copied()
        .unwrap_or_default();
    (total.load(Ordering::Relaxed) as f64 / secs, p99)
}

/// The node's route table (`ArcSwap` over a persistent map, the writer copies
/// and swaps) against an `RwLock<HashMap>`, same keys, same load.
pub(crate) fn routes(quick: bool) {
    let run_for = Duration::from_secs(if quick { 2 } else { 5 });
    note(&format!(
        "routes: {ROUTES} routes, 2 readers, a writer 10×/s, {}s per table",
        run_for.as_secs()
    ));
    let keys: Vec<String> = (0..ROUTES).map(|i| format!("arena/room-{i}")).collect();

    let table = ActorTable::<u64>::default();
    let table_update_ns = AtomicU64::new(0);
    for (i, k) in keys.iter().enumerate() {
        table.get_or_activate(k, |_| i as u64);
    }
    let (lf_rate, lf_p99) = lookups(
        &keys,
        |k| table.get(k),
        |n| {
            // An activation: the writer builds the next table and swaps it in.
            let t = Instant::now();
            table.get_or_activate(&format!("new-{n}"), |_| n);
            table_update_ns.fetch_max(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        },
        run_for,
    );

    let locked: RwLock<HashMap<String, u64>> = RwLock::new(
        keys.iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as u64))
            .collect(),
    );
    let (rw_rate, rw_p99) = lookups(
        &keys,
        |k| locked.read().unwrap().get(k).copied(),
        |n| {
            locked.write().unwrap().insert(format!("new-{n}"), n);
        },
        run_for,
    );

    // The seed's design: a plain map behind arc-swap, copied whole by every
    // update. Fastest to read; each update costs a copy of all routes.
    let whole: ArcSwap<HashMap<String, u64>> = ArcSwap::from_pointee(
        keys.iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as u64))
            .collect(),
    );
    let copy_ns = AtomicU64::new(0);
    let (cw_rate, cw_p99) = lookups(
        &keys,
        |k| whole.load().get(k).copied(),
        |n| {
            let t = Instant::now();
            let mut next = HashMap::clone(&whole.load());
            next.insert(format!("new-{n}"), n);
            whole.store(Arc::new(next));
            copy_ns.fetch_max(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        },
        run_for,
    );
    for (table, rate, p99) in [
        ("arc-swap persistent map (node)", lf_rate, lf_p99),
        ("RwLock<HashMap> (baseline)", rw_rate, rw_p99),
        ("arc-swap HashMap copied whole per update", cw_rate, cw_p99),
    ] {
        emit(
            json!({"bench": "routes", "table": table, "routes": ROUTES, "readers": 2,
            "writer_swaps_per_sec": 10, "lookups_per_sec": rate.round(), "timed_lookup_p99_ns": p99,
            "vs_rwlock": (rate / rw_rate * 100.0).round() / 100.0}),
        );
    }
    emit(json!({"bench": "routes", "update_max_ms": {
        "arc-swap persistent map (node)": table_update_ns.load(Ordering::Relaxed) as f64 / 1e6,
        "arc-swap HashMap copied whole per update": copy_ns.load(Ordering::Relaxed) as f64 / 1e6}}));
}

/// Actor → actor `send` into a Rust Wasm actor: `probe` actors flood `counter`
/// actors with `incr` (one sender per core), until the counters have counted
/// every accepted message.
pub(crate) async fn send(quick: bool) -> anyhow::Result<()> {
    let target: u64 = if quick { 200_000 } else { 1_000_000 };
    const PAIRS: usize = 2;
    const BATCH: u32 = 5000;
    note(&format!(
        "send: {PAIRS} probe actors send `incr` to {PAIRS} counter actors, {target} messages"
    ));
    let node = Node::start_deployed(&[
        ("probe", "probe", "kind=keyed"),
        ("counter", "counter", "kind=keyed&mailbox=65536"),
    ])
    .await?;
    let admin = node.admin();
    for p in 0..PAIRS {
        admin.call_text(&format!("counter/sink-{p}"), "get").await?;
        admin.call_text(&format!("probe/src-{p}"), "state").await?;
    }
    let started = Instant::now();
    let senders: Vec<_> = (0..PAIRS)
        .map(|p| {
            let admin = admin.clone();
            tokio::spawn(async move {
                let (mut sent, mut overloaded) = (0u64, 0u64);
                while sent < target / PAIRS as u64 {
                    let r = admin
                        .call_text(
                            &format!("probe/src-{p}"),
                            &format!("flood counter/sink-{p} {BATCH} incr"),
                        )
                        .await?;
                    let field = |name: &str| -> u64 {
                        r.split(' ')
                            .find_map(|w| w.strip_prefix(name))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0)
                    };
                    sent += field("sent=");
                    overloaded += field("overloaded=");
                }
                Ok::<_, anyhow::Error>((sent, overloaded))
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for s in senders {
        let (sent, overloaded) = s.await??;
        accepted.push(sent);
        refused += overloaded;
    }
    for (p, want) in accepted.iter().enumerate() {
        loop {
            let got: u64 = admin
                .call_text(&format!("counter/sink-{p}"), "get")
                .await?
                .parse()?;
            if got >= *want {
                anyhow::ensure!(got == *want, "sink-{p} counted {got}, {want} were sent");
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let delivered: u64 = accepted.iter().sum();
    emit(
        json!({"bench": "send", "pairs": PAIRS, "delivered": delivered, "refused_overloaded": refused,
        "seconds": (secs * 1000.0).round() / 1000.0, "messages_per_sec": (delivered as f64 / secs).round()}),
    );
    Ok(())
}

/// At-least-once publish → deliver: `chat` rooms publish `chat.message` (each
/// publish is on disk before it returns), `chat-log` consumes it. One publisher,
/// then many at once (whose fsyncs the group commit shares).
pub(crate) async fn events(quick: bool) -> anyhow::Result<()> {
    let run_for = Duration::from_secs(if quick { 3 } else { 8 });
    let node =
        Node::start_deployed(&[("chat", "chat", "kind=keyed"), ("chat-log", "chat-log", "")])
            .await?;
    let admin = node.admin();
    admin.call_text("chat-log", "stats").await?;
    let mut base = 0u64;
    for publishers in [1usize, 32] {
        note(&format!(
            "events: {publishers} rooms publish at-least-once for {}s",
            run_for.as_secs()
        ));
        for r in 0..publishers {
            admin
                .call_text(&format!("chat/p{publishers}-r{r}"), "join bench")
                .await?;
        }
        let started = Instant::now();
        let rooms: Vec<_> = (0..publishers)
            .map(|r| {
                let admin = admin.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while started.elapsed() < run_for {
                        admin
                            .call_text(&format!("chat/p{publishers}-r{r}"), "say bench hello")
                            .await?;
                        n += 1;
                    }
                    Ok::<_, anyhow::Error>(n)
                })
            })
            .collect();
        let mut published = 0;
        for r in rooms {
            published += r.await??;
        }
        let publish_secs = started.elapsed().as_secs_f64();
        let want = base + published;
        let delivered_at = loop {
            let stats: serde_json::Value =
                serde_json::from_str(&admin.call_text("chat-log", "stats").await?)?;
            let got = stats["messages"].as_u64().unwrap_or(0);
            if got >= want {
                anyhow::ensure!(got == want, "chat-log counted {got}, {want} were published");
                break started.elapsed().as_secs_f64();
            }
            anyhow::ensure!(
                started.elapsed() < run_for * 10,
                "chat-log has {got} of {want} events"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        base = want;
        emit(
            json!({"bench": "events", "delivery": "at-least-once", "publishers": publishers, "published": published,
            "published_per_sec": (published as f64 / publish_secs).round(),
            "delivered_per_sec": (published as f64 / delivered_at).round(),
            "drain_after_last_publish_ms": ((delivered_at - publish_secs) * 1000.0).round()}),
        );
    }
    Ok(())
}

/// Durable snapshot commits of 1 KiB: each committer writes its actor's
/// snapshot and waits for it to be on disk, one committer then 64 at once.
pub(crate) async fn snapshots(quick: bool) -> anyhow::Result<()> {
    let run_for = Duration::from_secs(if quick { 2 } else { 5 });
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let state = vec![0x5a; 1024];
    let mut sequential = 0.0;
    for committers in [1usize, 64] {
        note(&format!(
            "snapshots: {committers} committers × 1 KiB for {}s",
            run_for.as_secs()
        ));
        let flushes_before = store.flushes();
        let started = Instant::now();
        let tasks: Vec<_> = (0..committers)
            .map(|c| {
                let (store, state) = (store.clone(), state.clone());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while started.elapsed() < run_for {
                        let snap = Snapshot {
                            version: 1,
                            taken_at_ms: n,
                            state: state.clone(),
                        };
                        store.put_snapshot("bench", &format!("actor-{c}"), &snap)?;
                        store.flush().await?;
                        n += 1;
                    }
                    Ok::<_, anyhow::Error>(n)
                })
            })
            .collect();
        let mut commits = 0;
        for t in tasks {
            commits += t.await??;
        }
        let rate = commits as f64 / started.elapsed().as_secs_f64();
        if committers == 1 {
            sequential = rate;
        }
        let flushes = store.flushes() - flushes_before;
        emit(
            json!({"bench": "snapshot-commits", "snapshot_bytes": 1024, "committers": committers,
            "commits_per_sec": rate.round(), "flushes": flushes,
            "commits_per_flush": ((commits as f64 / flushes.max(1) as f64) * 10.0).round() / 10.0,
            "vs_one_committer": ((rate / sequential) * 100.0).round() / 100.0}),
        );
    }
    Ok(())
}
