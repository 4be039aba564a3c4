//! A full disk under a running node: durable writes fail with a clear error
//! (507, the error names the disk and the fix), nothing acknowledged is taken
//! back, a guest's durable subscribe and set-timer fail as `disk-full` too,
//! `/healthz` says why, and everything that needs no disk keeps working.
//! The node runs on a real tmpfs of its own, filled for real.

use anthill_tests::Node;
use std::io::Write;

#[tokio::test]
async fn a_full_disk_fails_durable_writes_clearly_and_nothing_else() -> anyhow::Result<()> {
    let node = Node::start_on_small_disk(24).await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    admin
        .deploy("ledger", "counter", "kind=keyed&durability=every-message")
        .await?;
    admin.deploy("scores", "counter", "kind=keyed").await?;
    admin.deploy("probe", "probe", "kind=keyed").await?;
    admin.call_text("probe/p", "tick 0").await?;
    for _ in 0..3 {
        admin.call_text("ledger/a", "incr").await?;
        admin.call_text("scores/a", "incr").await?;
    }

    // Fill the node's disk.
    let mut filler = std::fs::File::create(node.data.join("filler"))?;
    let chunk = vec![0u8; 1 << 20];
    while filler.write_all(&chunk).is_ok() {}
    drop(filler);

    // sled writes into log segments it already holds until it needs a new
    // one; keep acknowledging increments until the disk refuses one.
    let mut acknowledged = 0;
    let refusal = loop {
        let (status, body) = admin
            .call(&format!("ledger/k{acknowledged}"), b"incr")
            .await?;
        if status != 200 {
            break (status, String::from_utf8_lossy(&body).into_owned());
        }
        acknowledged += 1;
        anyhow::ensure!(acknowledged < 20_000, "24 MiB never filled up");
    };
    let (status, body) = refusal;
    assert_eq!(status, 507, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(body["error"], "disk-full", "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("disk is full") && detail.contains("restart the node"),
        "the error names the problem and the fix: {detail}"
    );

    // Subscriptions and timers are durable too: a guest's `subscribe` and
    // `set-timer` fail as `disk-full`, through the guest, not as `internal`.
    for command in ["subscribe news alo", "timer later 60000 once"] {
        let (status, body) = admin.call("probe/p", command.as_bytes()).await?;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 507, "{command}: {text}");
        let body: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(body["error"], "disk-full", "{command}: {body}");
    }

    // Health says why, without a token.
    let health = reqwest::get(format!("{}/healthz", admin.base)).await?;
    assert_eq!(health.status().as_u16(), 503);
    let health: serde_json::Value = health.json().await?;
    assert_eq!(health["error"], "store-stopped", "{health}");

    // Nothing else is lost: stateless calls, in-memory state of interval
    // actors, the admin API.
    assert_eq!(admin.call_text("echo", "still here").await?, "still here");
    assert_eq!(admin.call_text("scores/a", "incr").await?, "4");
    assert_eq!(admin.call_text("scores/a", "get").await?, "4");
    let mut names = admin.module_names().await?;
    names.sort();
    assert_eq!(names, ["echo", "ledger", "probe", "scores"]);
    assert!(
        node.output()
            .contains("the database stopped after an I/O error")
    );
    Ok(())
}
