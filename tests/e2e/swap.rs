//! Hot swap by reinstantiation: state carried, nothing lost, atomic failure,
//! canary, promote, rollback.

use anthill_tests::{Admin, Node, eventually};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// (version, value) of a counter reply: `v2:7` or `7`.
fn parse(reply: &str) -> (u32, u64) {
    match reply.strip_prefix("v2:") {
        Some(v) => (2, v.parse().expect("v2 value")),
        None => (1, reply.parse().expect("v1 value")),
    }
}

/// The same stable hash the node uses for canary buckets (FNV-1a % 100).
fn bucket(key: &str) -> u8 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % 100) as u8
}

async fn deploy_file(
    admin: &Admin,
    module: &str,
    query: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    admin
        .deploy_bytes(
            "counter",
            std::fs::read(anthill_tests::guest(module))?,
            query,
        )
        .await
}

struct Reply {
    key: usize,
    sent_at: Instant,
    answered_at: Instant,
    version: u32,
    value: u64,
}

#[tokio::test]
async fn ten_swaps_under_load_lose_nothing() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("counter", "counter", "kind=keyed").await?;
    const KEYS: usize = 200;
    const CALLERS: usize = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..CALLERS)
        .map(|c| {
            let admin = admin.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut replies = Vec::new();
                let mut i = c * 37;
                while !stop.load(Ordering::Relaxed) {
                    let key = i % KEYS;
                    i += 1;
                    let sent_at = Instant::now();
                    let (status, body) = admin.call(&format!("counter/k{key}"), b"incr").await?;
                    let body = String::from_utf8_lossy(&body).into_owned();
                    anyhow::ensure!(
                        status == 200,
                        "caller {c}: counter/k{key} incr failed: {status} {body}"
                    );
                    let (version, value) = parse(&body);
                    replies.push(Reply {
                        key,
                        sent_at,
                        answered_at: Instant::now(),
                        version,
                        value,
                    });
                }
                Ok::<_, anyhow::Error>(replies)
            })
        })
        .collect();

    // (swap finished at, version now serving, next swap started at)
    let mut swaps: Vec<(Instant, u32)> = Vec::new();
    let mut starts: Vec<Instant> = Vec::new();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for round in 0..10 {
        let (module, version) = if round % 2 == 0 {
            ("counter-v2", 2)
        } else {
            ("counter", 1)
        };
        starts.push(Instant::now());
        let (status, body) = deploy_file(&admin, module, "").await?;
        assert_eq!(status, 200, "swap {round}: {body}");
        assert!(
            body["swap"]["actors"].as_u64().unwrap() > 0,
            "swap {round} moved no actor: {body}"
        );
        swaps.push((Instant::now(), version));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for c in callers {
        all.push(c.await??);
    }

    // Every acknowledged increment counted exactly once.
    let mut tally = vec![0u64; KEYS];
    for replies in &all {
        for r in replies {
            tally[r.key] += 1;
        }
    }
    for (key, count) in tally.iter().enumerate() {
        let (version, value) = parse(&admin.call_text(&format!("counter/k{key}"), "get").await?);
        assert_eq!(version, 1, "the last swap went back to counter");
        assert_eq!(
            value, *count,
            "counter/k{key}: {count} acknowledged increments, value {value}"
        );
    }
    // Per caller and key, replies increase strictly.
    for (c, replies) in all.iter().enumerate() {
        let mut last: HashMap<usize, u64> = HashMap::new();
        for r in replies {
            if let Some(prev) = last.insert(r.key, r.value) {
                assert!(
                    r.value > prev,
                    "caller {c}, k{}: {} after {prev}",
                    r.key,
                    r.value
                );
            }
        }
    }
    // A call made wholly after a swap completed and before the next began is
    // answered by the new version. (A call sent just before the next swap may
    // wait in the mailbox through it and rightly be answered by the version
    // after: the window is sent-after-done to answered-before-next-start.)
    let mut checked = 0;
    for (i, (done, version)) in swaps.iter().enumerate() {
        let next_start = starts.get(i + 1).copied();
        for r in all.iter().flatten() {
            if r.sent_at > *done && next_start.is_none_or(|n| r.answered_at < n) {
                assert_eq!(
                    r.version,
                    *version,
                    "a call to counter/k{} sent {:?} after swap {i} completed was answered by v{} \
                     (value {}); node log:\n{}",
                    r.key,
                    r.sent_at - *done,
                    r.version,
                    r.value,
                    node.output()
                );
                checked += 1;
            }
        }
    }
    let total: usize = all.iter().map(Vec::len).sum();
    assert!(
        checked > 100,
        "only {checked} of {total} replies fell between swaps"
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_restore_rolls_the_swap_back() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("counter", "counter", "kind=keyed").await?;
    for i in 0..20 {
        for _ in 0..=i % 3 {
            admin.call_text(&format!("counter/k{i}"), "incr").await?;
        }
    }
    let (status, body) = deploy_file(&admin, "counter-badrestore", "").await?;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "swap-failed");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("failed at counter/k"),
        "names the actor: {detail}"
    );
    assert!(
        detail.contains("cannot read snapshots written by version 1"),
        "gives the error: {detail}"
    );

    let (_, info) = admin.get_json("/v1/modules/counter").await?;
    assert_eq!(info["version"], 1);
    assert_eq!(info["actors_per_version"], serde_json::json!({ "1": 20 }));
    assert!(info["canary"].is_null());
    for i in 0..20 {
        assert_eq!(
            admin.call_text(&format!("counter/k{i}"), "get").await?,
            (i % 3 + 1).to_string()
        );
    }
    // New keys still activate on the old version.
    assert_eq!(admin.call_text("counter/new", "incr").await?, "1");
    // And a good version still deploys afterwards.
    let (status, body) = deploy_file(&admin, "counter-v2", "").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(admin.call_text("counter/k2", "get").await?, "v2:3");
    Ok(())
}

#[tokio::test]
async fn a_canary_splits_keys_by_hash_then_promotes_or_rolls_back() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("counter", "counter", "kind=keyed").await?;
    const N: usize = 1000;
    for i in 0..N {
        admin.call_text(&format!("counter/k{i}"), "incr").await?;
    }
    let (status, body) = deploy_file(&admin, "counter-v2", "canary=25").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["swap"]["canary"]["percent"], 25);
    let mut on_v2 = 0;
    for i in 0..N {
        let key = format!("k{i}");
        let (version, value) = parse(&admin.call_text(&format!("counter/{key}"), "get").await?);
        assert_eq!(value, 1, "{key} kept its state");
        assert_eq!(
            version == 2,
            bucket(&key) < 25,
            "{key} is on the wrong side of the split"
        );
        on_v2 += usize::from(version == 2);
    }
    assert!(
        (200..=300).contains(&on_v2),
        "{on_v2} of {N} keys on the canary"
    );
    // New keys follow the split too.
    assert_eq!(
        parse(&admin.call_text("counter/fresh", "incr").await?).0 == 2,
        bucket("fresh") < 25
    );
    let (_, info) = admin.get_json("/v1/modules/counter").await?;
    assert_eq!(info["canary"]["version"], 2);
    assert_eq!(info["version"], 1);

    // A second deploy during a canary is refused.
    let (status, _) = deploy_file(&admin, "counter", "").await?;
    assert_eq!(status, 409);

    // Promote: every key on v2, state kept.
    let (status, body) = admin.post("/v1/modules/counter/promote").await?;
    assert_eq!(status, 200, "{body}");
    for i in (0..N).step_by(7) {
        assert_eq!(
            admin.call_text(&format!("counter/k{i}"), "get").await?,
            "v2:1"
        );
    }
    // Rollback: back to v1 everywhere, state kept.
    let (status, body) = admin.post("/v1/modules/counter/rollback").await?;
    assert_eq!(status, 200, "{body}");
    for i in (0..N).step_by(7) {
        assert_eq!(
            admin.call_text(&format!("counter/k{i}"), "incr").await?,
            "2"
        );
    }
    let (_, info) = admin.get_json("/v1/modules/counter").await?;
    assert_eq!(info["version"], 1);

    // A canary rolled back: its keys return to the stable version with their state.
    let (status, _) = deploy_file(&admin, "counter-v2", "canary=50").await?;
    assert_eq!(status, 200);
    let (status, body) = admin.post("/v1/modules/counter/rollback").await?;
    assert_eq!(status, 200, "{body}");
    for i in (0..N).step_by(7) {
        assert_eq!(admin.call_text(&format!("counter/k{i}"), "get").await?, "2");
    }
    Ok(())
}

#[tokio::test]
async fn a_passivated_actor_restores_with_the_version_that_wrote_its_state() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin
        .deploy("counter", "counter", "kind=keyed&idle_timeout_ms=200")
        .await?;
    for _ in 0..3 {
        admin.call_text("counter/sleepy", "incr").await?;
    }
    eventually(Duration::from_secs(5), "passivation", || async {
        Ok((admin
            .metric("anthill_live_actors", "module=\"counter\"")
            .await?
            == 0.0)
            .then_some(()))
    })
    .await?;
    let (status, body) = deploy_file(&admin, "counter-v2", "").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["swap"]["actors"], 0, "nothing live to swap");
    assert_eq!(
        admin.call_text("counter/sleepy", "from").await?,
        "v2:from=1"
    );
    assert_eq!(admin.call_text("counter/sleepy", "get").await?, "v2:3");
    Ok(())
}

#[tokio::test]
async fn a_restart_after_a_swap_comes_back_on_the_new_version() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::start_in(dir.path(), &[]).await?;
    let admin = node.admin();
    admin.deploy("counter", "counter", "kind=keyed").await?;
    admin.call_text("counter/a", "incr").await?;
    let (status, _) = deploy_file(&admin, "counter-v2", "").await?;
    assert_eq!(status, 200);
    assert_eq!(admin.call_text("counter/a", "incr").await?, "v2:2");
    node.stop()?;
    let node = Node::start_in(dir.path(), &[]).await?;
    let admin = node.admin();
    assert_eq!(admin.call_text("counter/a", "incr").await?, "v2:3");
    assert_eq!(admin.call_text("counter/a", "from").await?, "v2:from=2");
    let (_, info) = admin.get_json("/v1/modules/counter").await?;
    assert_eq!(info["version"], 2);
    assert_eq!(info["versions"].as_array().unwrap().len(), 2);
    // And can roll back to v1 explicitly.
    let (status, body) = admin.post("/v1/modules/counter/rollback?to=1").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(admin.call_text("counter/a", "get").await?, "3");
    Ok(())
}
