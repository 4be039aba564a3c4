//! Actor lifecycle: activation, passivation, snapshots, restarts and crashes.

use anthill_tests::{Node, eventually};
use futures::StreamExt;
use std::time::Duration;

#[tokio::test]
async fn ten_thousand_actors_passivate_and_come_back_intact() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin
        .deploy("counter", "counter", "kind=keyed&idle_timeout_ms=1500")
        .await?;
    const N: usize = 10_000;
    // Every key once; every tenth key twice more: values 1 or 3.
    let calls = (0..N)
        .map(|i| (i, 1))
        .chain((0..N).step_by(10).map(|i| (i, 2)));
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(calls)
        .map(|(i, n)| {
            let admin = admin.clone();
            async move {
                for _ in 0..n {
                    admin.call_text(&format!("counter/k{i}"), "incr").await?;
                }
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r?;
    }
    assert!(
        admin
            .metric("anthill_activations_total", "module=\"counter\"")
            .await?
            >= N as f64
    );

    // Idle: all of them passivate (snapshot, drop the instance).
    eventually(
        Duration::from_secs(60),
        "every counter to passivate",
        || async {
            let live = admin
                .metric("anthill_live_actors", "module=\"counter\"")
                .await?;
            Ok((live == 0.0).then_some(()))
        },
    )
    .await?;
    assert!(
        admin
            .metric("anthill_passivations_total", "module=\"counter\"")
            .await?
            >= N as f64
    );

    // Reactivated by the next message, each with its own value.
    let values: Vec<anyhow::Result<(usize, String)>> = futures::stream::iter(0..N)
        .map(|i| {
            let admin = admin.clone();
            async move { Ok((i, admin.call_text(&format!("counter/k{i}"), "get").await?)) }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for v in values {
        let (i, value) = v?;
        let want = if i % 10 == 0 { "3" } else { "1" };
        assert_eq!(value, want, "counter/k{i}");
    }
    Ok(())
}

#[tokio::test]
async fn a_graceful_restart_keeps_every_value() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::start_in(dir.path(), &[]).await?;
    let admin = node.admin();
    // Interval durability with a long interval: only the shutdown snapshot saves.
    admin
        .deploy(
            "counter",
            "counter",
            "kind=keyed&snapshot_interval_ms=3600000",
        )
        .await?;
    for i in 0..200 {
        for _ in 0..(i % 5 + 1) {
            admin.call_text(&format!("counter/{i}"), "incr").await?;
        }
    }
    node.stop()?;
    let node = Node::start_in(dir.path(), &[]).await?;
    let admin = node.admin();
    for i in 0..200 {
        assert_eq!(
            admin.call_text(&format!("counter/{i}"), "get").await?,
            (i % 5 + 1).to_string()
        );
    }
    Ok(())
}

#[tokio::test]
async fn every_message_durability_survives_kill_9() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut acked: u64 = 0;
    const KILLS: usize = 20;
    for round in 0..KILLS {
        let node = Node::start_in(dir.path(), &[]).await?;
        let admin = node.admin();
        if round == 0 {
            admin
                .deploy("counter", "counter", "kind=keyed&durability=every-message")
                .await?;
        }
        let value: u64 = admin.call_text("counter/k", "get").await?.parse()?;
        assert!(
            value >= acked,
            "round {round}: {acked} increments were acknowledged but the counter restarted at {value}"
        );
        // At most the one increment in flight at the kill may have landed unacked.
        assert!(
            value <= acked + 1,
            "round {round}: value {value} is ahead of {acked} acks by more than one"
        );
        acked = value;
        // A stream of increments, killed at a random-ish moment in the middle.
        let stream = {
            let admin = admin.clone();
            tokio::spawn(async move {
                let mut acks = 0u64;
                loop {
                    match admin.call("counter/k", b"incr").await {
                        Ok((200, body)) => {
                            let v: u64 = String::from_utf8_lossy(&body).parse().unwrap_or(0);
                            acks = acks.max(v);
                        }
                        _ => return acks,
                    }
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(150 + (round as u64 * 37) % 200)).await;
        node.kill9();
        let last = stream.await?;
        assert!(last >= acked, "increments went backwards");
        acked = last;
    }
    let node = Node::start_in(dir.path(), &[]).await?;
    let value: u64 = node.admin().call_text("counter/k", "get").await?.parse()?;
    assert!(
        value >= acked && value <= acked + 1,
        "final {value}, acked {acked}"
    );
    assert!(
        acked > KILLS as u64,
        "the stream made progress ({acked} increments)"
    );
    Ok(())
}

#[tokio::test]
async fn a_corrupt_snapshot_is_reported_not_used() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::start_in(dir.path(), &[]).await?;
    let admin = node.admin();
    admin.deploy("counter", "counter", "kind=keyed").await?;
    for _ in 0..5 {
        admin.call_text("counter/x", "incr").await?;
    }
    admin.call_text("counter/y", "incr").await?;
    node.stop()?;
    // Damage x's stored snapshot as a bad disk would: flip one byte of its state.
    {
        let db = sled::open(dir.path().join("db"))?;
        let tree = db.open_tree("snapshots")?;
        let mut bytes = tree
            .get(b"counter\0x")?
            .expect("x was snapshotted at shutdown")
            .to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        tree.insert(b"counter\0x", bytes)?;
        db.flush()?;
    }
    let node = Node::start_in(dir.path(), &[]).await?;
    let admin = node.admin();
    let (status, body) = admin.call("counter/x", b"get").await?;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("counter/x") && body.contains("checksum mismatch"),
        "{body}"
    );
    assert!(body.contains("refusing to activate"), "{body}");
    // Only x is affected.
    assert_eq!(admin.call_text("counter/y", "get").await?, "1");
    Ok(())
}

#[tokio::test]
async fn near_capacity_the_least_recently_used_actors_make_room() -> anyhow::Result<()> {
    let node = Node::start_with_config("[limits]\nmax_actors = 100\n").await?;
    let admin = node.admin();
    admin.deploy("counter", "counter", "kind=keyed").await?;
    // Three times the capacity, with the default (one minute) idle timeout: only
    // pressure passivation can make room.
    for i in 0..300 {
        let mut tries = 0;
        loop {
            let (status, body) = admin.call(&format!("counter/k{i}"), b"incr").await?;
            if status == 200 {
                break;
            }
            // At the very edge an activation may be refused as overloaded (503)
            // until the reaper's next round; it must never be anything else.
            assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
            tries += 1;
            assert!(tries < 100, "counter/k{i} never found room");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Never above the pool, and back under the high-water mark once calm.
    eventually(
        Duration::from_secs(5),
        "live actors under 90% of capacity",
        || async {
            let live = admin
                .metric("anthill_live_actors", "module=\"counter\"")
                .await?;
            assert!(live <= 100.0, "{live} live actors with max_actors = 100");
            Ok((live <= 90.0).then_some(()))
        },
    )
    .await?;
    // The passivated ones kept their state.
    for i in 0..300 {
        assert_eq!(
            admin.call_text(&format!("counter/k{i}"), "get").await?,
            "1",
            "counter/k{i}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn kill_9_under_concurrent_writers_keeps_acknowledged_le_stored_le_sent_for_every_key()
-> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    const KEYS: usize = 8;
    const WRITERS_PER_KEY: usize = 2;
    const KILLS: usize = 8;
    let dir = tempfile::tempdir()?;
    // Per key: increments sent (a request left this process) and acknowledged
    // (answered 200), summed over every round.
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let check = |admin: anthill_tests::Admin, round: usize| {
        let (sent, acked) = (sent.clone(), acked.clone());
        async move {
            for k in 0..KEYS {
                let stored: u64 = admin
                    .call_text(&format!("counter/k{k}"), "get")
                    .await?
                    .parse()?;
                let (a, s) = (
                    acked[k].load(Ordering::SeqCst),
                    sent[k].load(Ordering::SeqCst),
                );
                anyhow::ensure!(
                    a <= stored && stored <= s,
                    "round {round}, key k{k}: acknowledged {a}, stored {stored}, sent {s}"
                );
            }
            Ok::<_, anyhow::Error>(())
        }
    };
    for round in 0..KILLS {
        let node = Node::start_in(dir.path(), &[]).await?;
        let admin = node.admin();
        if round == 0 {
            admin
                .deploy("counter", "counter", "kind=keyed&durability=every-message")
                .await?;
        }
        // Every key is rechecked after every restart.
        check(admin.clone(), round).await?;
        let writers: Vec<_> = (0..KEYS * WRITERS_PER_KEY)
            .map(|w| {
                let (admin, sent, acked) = (admin.clone(), sent.clone(), acked.clone());
                let k = w % KEYS;
                tokio::spawn(async move {
                    loop {
                        sent[k].fetch_add(1, Ordering::SeqCst);
                        match admin.call(&format!("counter/k{k}"), b"incr").await {
                            Ok((200, _)) => {
                                acked[k].fetch_add(1, Ordering::SeqCst);
                            }
                            _ => return,
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200 + (round as u64 * 53) % 250)).await;
        node.kill9();
        for w in writers {
            w.await?;
        }
    }
    let node = Node::start_in(dir.path(), &[]).await?;
    check(node.admin(), KILLS).await?;
    let total: u64 = acked.iter().map(|a| a.load(Ordering::SeqCst)).sum();
    assert!(
        total > (KILLS * KEYS) as u64,
        "the writers made progress ({total} acknowledged increments)"
    );
    Ok(())
}
