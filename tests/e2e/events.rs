//! Pub/sub: at-most-once and at-least-once delivery, retries, restarts, dead
//! letters.

use anthill_tests::{Node, eventually};
use std::time::Duration;

const FAST_RETRIES: &str = "[events]\nmax_attempts = 3\nretry_base_ms = 50\n";

fn events(state: &serde_json::Value) -> Vec<String> {
    state["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn at_least_once_retries_until_the_subscriber_succeeds() -> anyhow::Result<()> {
    let node = Node::start_with_config(FAST_RETRIES).await?;
    let admin = node.admin();
    admin.deploy("probe", "probe", "kind=keyed").await?;
    admin.call_text("probe/sub", "subscribe scores alo").await?;
    admin.call_text("probe/sub", "fail 2").await?;
    admin.call_text("probe/pub", "publish scores goal").await?;
    let state = eventually(Duration::from_secs(10), "the third attempt", || async {
        let s = admin.probe_state("probe/sub").await?;
        Ok((!events(&s).is_empty()).then_some(s))
    })
    .await?;
    assert_eq!(events(&state), ["scores:goal"]);
    assert_eq!(
        state["failed_deliveries"], 2,
        "delivered on the third attempt"
    );
    // Later events keep their order.
    for i in 0..10 {
        admin
            .call_text("probe/pub", &format!("publish scores e{i}"))
            .await?;
    }
    let state = eventually(Duration::from_secs(10), "ten more", || async {
        let s = admin.probe_state("probe/sub").await?;
        Ok((events(&s).len() == 11).then_some(s))
    })
    .await?;
    let want: Vec<String> = std::iter::once("scores:goal".to_owned())
        .chain((0..10).map(|i| format!("scores:e{i}")))
        .collect();
    assert_eq!(events(&state), want);
    Ok(())
}

#[tokio::test]
async fn at_least_once_delivery_survives_a_restart_between_attempts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("anthill.toml");
    // Slow retries: time to kill the node between attempts.
    std::fs::write(
        &config,
        "[events]\nmax_attempts = 5\nretry_base_ms = 1500\n",
    )?;
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let node = Node::start_in(&data, &args).await?;
    let admin = node.admin();
    admin
        .deploy("probe", "probe", "kind=keyed&durability=every-message")
        .await?;
    admin.call_text("probe/sub", "subscribe scores alo").await?;
    admin.call_text("probe/sub", "fail 2").await?;
    admin
        .call_text("probe/pub", "publish scores before-crash")
        .await?;
    eventually(
        Duration::from_secs(5),
        "the first failed attempt",
        || async {
            let s = admin.probe_state("probe/sub").await?;
            Ok((s["failed_deliveries"] == 1).then_some(()))
        },
    )
    .await?;
    node.kill9();

    let node = Node::start_in(&data, &args).await?;
    let admin = node.admin();
    let state = eventually(
        Duration::from_secs(20),
        "delivery after the restart",
        || async {
            let s = admin.probe_state("probe/sub").await?;
            Ok((!events(&s).is_empty()).then_some(s))
        },
    )
    .await?;
    assert_eq!(events(&state), ["scores:before-crash"]);
    assert_eq!(state["failed_deliveries"], 2);
    Ok(())
}

#[tokio::test]
async fn exhausted_events_are_dead_lettered_and_can_be_replayed() -> anyhow::Result<()> {
    let node = Node::start_with_config(FAST_RETRIES).await?;
    let admin = node.admin();
    admin.deploy("probe", "probe", "kind=keyed").await?;
    admin.call_text("probe/sub", "subscribe scores alo").await?;
    admin.call_text("probe/sub", "fail 1000").await?;
    admin
        .call_text("probe/pub", "publish scores lost-goal")
        .await?;
    let letters = eventually(Duration::from_secs(10), "a dead letter", || async {
        let (_, l) = admin.get_json("/v1/dead-letters").await?;
        Ok((l.as_array().map(Vec::len) == Some(1)).then_some(l))
    })
    .await?;
    let letter = &letters[0];
    assert_eq!(
        admin
            .metric("anthill_dead_letters", "module=\"probe\"")
            .await?,
        1.0
    );
    assert_eq!(letter["topic"], "scores");
    assert_eq!(letter["subscriber"], "probe/sub");
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["text"], "lost-goal");
    assert!(
        letter["last_error"]
            .as_str()
            .unwrap()
            .contains("probe told to fail")
    );
    let id = letter["id"].as_u64().unwrap();
    // Delivery moved on: later events are not stuck behind the dead one.
    admin.call_text("probe/sub", "fail 0").await?;
    admin.call_text("probe/pub", "publish scores next").await?;
    eventually(Duration::from_secs(10), "the next event", || async {
        let s = admin.probe_state("probe/sub").await?;
        Ok((events(&s) == ["scores:next"]).then_some(()))
    })
    .await?;
    // Replay: delivered, and off the list.
    let (status, body) = admin.post(&format!("/v1/dead-letters/{id}/replay")).await?;
    assert_eq!(status, 200, "{body}");
    let s = admin.probe_state("probe/sub").await?;
    assert_eq!(events(&s), ["scores:next", "scores:lost-goal"]);
    let (_, l) = admin.get_json("/v1/dead-letters").await?;
    assert_eq!(l.as_array().map(Vec::len), Some(0));
    assert_eq!(
        admin
            .metric("anthill_dead_letters", "module=\"probe\"")
            .await?,
        0.0
    );
    Ok(())
}

#[tokio::test]
async fn at_most_once_is_delivered_once_and_not_retried() -> anyhow::Result<()> {
    let node = Node::start_with_config(FAST_RETRIES).await?;
    let admin = node.admin();
    admin.deploy("probe", "probe", "kind=keyed").await?;
    admin.call_text("probe/a", "subscribe news amo").await?;
    admin.call_text("probe/b", "subscribe news amo").await?;
    admin.call_text("probe/b", "fail 1").await?;
    admin.call_text("probe/pub", "publish news first").await?;
    admin.call_text("probe/pub", "publish news second").await?;
    eventually(Duration::from_secs(5), "both subscribers", || async {
        let a = events(&admin.probe_state("probe/a").await?);
        let b = admin.probe_state("probe/b").await?;
        Ok((a.len() == 2 && b["failed_deliveries"] == 1 && events(&b).len() == 1).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // b failed "first": it is gone, not retried.
    assert_eq!(
        events(&admin.probe_state("probe/b").await?),
        ["news:second"]
    );
    assert_eq!(
        events(&admin.probe_state("probe/a").await?),
        ["news:first", "news:second"]
    );
    // Unsubscribed actors get nothing more.
    admin.call_text("probe/a", "unsubscribe news").await?;
    admin.call_text("probe/pub", "publish news third").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(events(&admin.probe_state("probe/a").await?).len(), 2);
    Ok(())
}
