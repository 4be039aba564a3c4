//! The hostile fixture (`misbehave`): each attack loses its own call and nothing
//! else.

use anthill_tests::Node;
use std::time::{Duration, Instant};

/// A node with `echo`, and `misbehave` under a call deadline of
/// `deadline_ms` (tight only where the test is about the deadline: on a
/// saturated box a first call, activation included, has outrun 100 ms).
async fn node_with_misbehave(deadline_ms: u64) -> anyhow::Result<Node> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    admin
        .deploy(
            "misbehave",
            "misbehave",
            &format!("deadline_ms={deadline_ms}"),
        )
        .await?;
    Ok(node)
}

#[tokio::test]
async fn an_infinite_loop_hits_the_deadline_while_others_keep_answering() -> anyhow::Result<()> {
    let node = node_with_misbehave(100).await?;
    let admin = node.admin();
    // Warm both actors so the timing below measures the call, not activation.
    assert_eq!(admin.call_text("misbehave", "ok").await?, "ok");
    assert_eq!(admin.call_text("echo", "warm").await?, "warm");

    let looping = {
        let admin = admin.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = admin.call("misbehave", b"loop").await;
            (started.elapsed(), outcome)
        })
    };
    // While it spins, echo answers.
    let mut answered_during = 0;
    let started = Instant::now();
    while !looping.is_finished() && started.elapsed() < Duration::from_secs(5) {
        assert_eq!(admin.call_text("echo", "still here").await?, "still here");
        answered_during += 1;
    }
    let (elapsed, outcome) = looping.await?;
    let (status, body) = outcome?;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 504, "{body}");
    assert!(
        body.contains("deadline-exceeded") && body.contains("100 ms"),
        "{body}"
    );
    assert!(
        elapsed < Duration::from_millis(300),
        "the loop was stopped after {elapsed:?}, over 3x the 100 ms deadline"
    );
    assert!(
        answered_during > 0,
        "echo never answered while misbehave looped"
    );

    // After: echo fine, and misbehave itself recovers on a fresh instance.
    assert_eq!(admin.call_text("echo", "after").await?, "after");
    assert_eq!(admin.call_text("misbehave", "ok").await?, "ok");
    assert!(
        admin
            .metric("anthill_interrupts_total", "module=\"misbehave\"")
            .await?
            >= 1.0
    );
    Ok(())
}

#[tokio::test]
async fn a_trap_fails_its_call_and_the_next_call_works() -> anyhow::Result<()> {
    let node = node_with_misbehave(10_000).await?;
    let admin = node.admin();
    let (status, body) = admin.call("misbehave", b"trap").await?;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("\"trapped\""), "{body}");
    // The guest's panic message reaches the caller.
    assert!(body.contains("misbehave was asked to trap"), "{body}");
    assert_eq!(admin.call_text("misbehave", "ok").await?, "ok");
    assert_eq!(admin.call_text("echo", "fine").await?, "fine");
    assert_eq!(
        admin
            .metric("anthill_traps_total", "module=\"misbehave\"")
            .await?,
        1.0
    );
    Ok(())
}

#[tokio::test]
async fn unbounded_allocation_stops_at_the_memory_cap_and_rss_stays_bounded() -> anyhow::Result<()>
{
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    admin
        .deploy("misbehave", "misbehave", "memory_mb=64&deadline_ms=5000")
        .await?;
    assert_eq!(admin.call_text("misbehave", "ok").await?, "ok");
    let before = node.rss_kib()?;
    for round in 0..3 {
        let (status, body) = admin.call("misbehave", b"oom").await?;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 502, "round {round}: {body}");
        assert!(
            body.contains("out-of-memory") && body.contains("64 MiB"),
            "{body}"
        );
    }
    let after = node.rss_kib()?;
    // Three rounds each grew an actor to 64 MiB; none of it may stay resident.
    assert!(
        after < before + 48 * 1024,
        "RSS grew from {before} KiB to {after} KiB after three out-of-memory rounds"
    );
    assert_eq!(admin.call_text("misbehave", "ok").await?, "ok");
    assert_eq!(admin.call_text("echo", "fine").await?, "fine");
    assert_eq!(
        admin
            .metric("anthill_out_of_memory_total", "module=\"misbehave\"")
            .await?,
        3.0
    );
    Ok(())
}

#[tokio::test]
async fn a_huge_payload_to_the_host_is_refused_without_harm() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    // Filling 40 MiB takes the guest a while on a loaded machine: not the point here.
    admin
        .deploy("misbehave", "misbehave", "deadline_ms=5000")
        .await?;
    let (status, body) = admin.call("misbehave", b"bigcall").await?;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("exceeds the 1048576-byte limit"), "{body}");
    assert_eq!(admin.call_text("echo", "fine").await?, "fine");
    assert_eq!(admin.call_text("misbehave", "ok").await?, "ok");
    // The 8 MiB log line was cut, not written whole.
    let out = node.output();
    assert!(
        out.contains("more bytes cut"),
        "the oversized log line was not truncated"
    );
    assert!(
        out.len() < 1 << 20,
        "the node wrote {} bytes of output",
        out.len()
    );
    Ok(())
}

/// Voluntary context switches so far of the node's thread named `name`.
fn thread_switches(node: &Node, name: &str) -> anyhow::Result<u64> {
    for t in std::fs::read_dir(format!("/proc/{}/task", node.pid()))? {
        let dir = t?.path();
        if std::fs::read_to_string(dir.join("comm"))?.trim() != name {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status"))?;
        return status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no switch count for {name}: {status}"));
    }
    anyhow::bail!("the node has no thread named {name}")
}

/// The epoch thread advances the epoch only while guest calls are in
/// flight: on an idle node it sleeps (it woke ~900 times a second when it
/// ticked regardless), and a call that loops after the idle spell wakes it
/// and is still stopped at its deadline.
#[tokio::test]
async fn an_idle_node_lets_its_epoch_thread_sleep_and_a_loop_still_hits_its_deadline()
-> anyhow::Result<()> {
    let node = node_with_misbehave(100).await?;
    let admin = node.admin();
    assert_eq!(admin.call_text("misbehave", "ok").await?, "ok");
    // Past the 100 ms of idle ticks after which the thread parks.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = thread_switches(&node, "anthill-epoch")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = thread_switches(&node, "anthill-epoch")? - before;
    assert!(
        idle < 50,
        "the epoch thread woke {idle} times in a second with no guest call in flight"
    );
    let started = Instant::now();
    let (status, body) = admin.call("misbehave", b"loop").await?;
    let elapsed = started.elapsed();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("deadline-exceeded"), "{body}");
    assert!(
        elapsed < Duration::from_secs(3),
        "the loop was stopped after {elapsed:?} (deadline 100 ms)"
    );
    assert_eq!(admin.call_text("misbehave", "ok").await?, "ok");
    Ok(())
}
