//! Backpressure: a full mailbox refuses, memory stays bounded, and a failing actor
//! is cut off by its circuit breaker until it recovers.

use anthill_tests::Node;
use std::time::Duration;

#[tokio::test]
async fn a_full_mailbox_refuses_with_overload_and_memory_stays_bounded() -> anyhow::Result<()> {
    // Two actors of one module busy at once (slow spins, fast floods): give
    // the module two cores' share even on a two-core box.
    let node = Node::start_with_config("[limits]\nmodule_concurrency = 2\n").await?;
    let admin = node.admin();
    admin
        .deploy("probe", "probe", "kind=keyed&mailbox=16&deadline_ms=5000")
        .await?;
    admin.call_text("probe/slow", "ping").await?;
    let before = node.rss_kib()?;
    // slow is busy for a while; meanwhile fast floods it with 100k sends of 1 KiB-ish.
    let busy = {
        let admin = admin.clone();
        tokio::spawn(async move { admin.call_text("probe/slow", "busy 1500").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let outcome = admin
        .call_text("probe/fast", "flood probe/slow 100000")
        .await?;
    let (sent, overloaded) = outcome
        .strip_prefix("sent=")
        .and_then(|r| r.split_once(" overloaded="))
        .map(|(s, o)| (s.parse::<u32>().unwrap(), o.parse::<u32>().unwrap()))
        .unwrap();
    // `busy` runs on the admin request's task (slow was idle), so slow's own
    // task takes the first send out of the mailbox and waits for the actor's
    // lock with it: 16 queued plus that one.
    assert!(sent <= 17, "{sent} sends fit a 16-message mailbox");
    assert_eq!(sent + overloaded, 100_000);
    // An admin call to the full mailbox fails fast too.
    let started = std::time::Instant::now();
    let (status, body) = admin.call("probe/slow", b"ping").await?;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("overloaded"));
    assert!(started.elapsed() < Duration::from_millis(500));
    busy.await??;
    let after = node.rss_kib()?;
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    let refused = admin
        .metric("anthill_overloads_total", "module=\"probe\"")
        .await?
        + admin
            .metric("anthill_rate_limited_total", "module=\"probe\"")
            .await?;
    // Every refusal is counted: the flood's and the admin call's.
    assert_eq!(refused, f64::from(overloaded) + 1.0);
    Ok(())
}

#[tokio::test]
async fn the_circuit_opens_after_repeated_traps_and_closes_after_a_good_probe() -> anyhow::Result<()>
{
    let node =
        Node::start_with_config("[admission]\nbreaker_failures = 3\nbreaker_backoff_ms = 500\n")
            .await?;
    let admin = node.admin();
    // A trap is immediate; the long deadline keeps a loaded box (the whole
    // suite on two cores) from turning the first call into a deadline.
    admin
        .deploy("misbehave", "misbehave", "deadline_ms=5000")
        .await?;
    for _ in 0..3 {
        let (status, _) = admin.call("misbehave", b"trap").await?;
        assert_eq!(status, 502);
    }
    // Open: refused without running the module.
    let (status, body) = admin.call("misbehave", b"ok").await?;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("circuit open after 3 consecutive failures"),
        "{body}"
    );
    let (_, actors) = admin.get_json("/v1/actors?module=misbehave").await?;
    assert_eq!(actors[0]["actors"][0]["circuit_open"], true);
    assert_eq!(
        admin
            .metric("anthill_circuit_opens_total", "module=\"misbehave\"")
            .await?,
        1.0
    );
    // After the backoff a probe goes through; it succeeds, the circuit closes.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(admin.call_text("misbehave", "ok").await?, "ok");
    assert_eq!(admin.call_text("misbehave", "ok").await?, "ok");
    Ok(())
}
