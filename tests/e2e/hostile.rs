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
