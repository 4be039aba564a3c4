//! Timers and ticks: on time, repeating, durable across passivation and restart.

use anthill_tests::{Node, eventually};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn fired(state: &serde_json::Value) -> Vec<(String, u64)> {
    state["fired"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| (f[0].as_str().unwrap().to_owned(), f[1].as_u64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn timers_fire_on_time_and_repeat() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("probe", "probe", "kind=keyed").await?;
    let set_at = now_ms();
    admin.call_text("probe/t", "timer once 300 once").await?;
    admin.call_text("probe/t", "timer beat 100 repeat").await?;
    let state = eventually(Duration::from_secs(10), "timers", || async {
        let s = admin.probe_state("probe/t").await?;
        let f = fired(&s);
        let beats = f.iter().filter(|(t, _)| t == "beat").count();
        Ok((f.iter().any(|(t, _)| t == "once") && beats >= 5).then_some(s))
    })
    .await?;
    let f = fired(&state);
    let once_at = f.iter().find(|(t, _)| t == "once").unwrap().1;
    // Never early; late only by scheduling noise (generous: a loaded 2-core box).
    assert!(
        once_at >= set_at + 300,
        "fired {} ms after being set",
        once_at - set_at
    );
    assert!(
        once_at < set_at + 300 + 1500,
        "fired {} ms after being set",
        once_at - set_at
    );
    assert_eq!(
        f.iter().filter(|(t, _)| t == "once").count(),
        1,
        "a one-shot fires once"
    );
    admin.call_text("probe/t", "cancel beat").await?;
    let beats = fired(&admin.probe_state("probe/t").await?).len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after = fired(&admin.probe_state("probe/t").await?).len();
    assert!(
        after <= beats + 1,
        "a cancelled timer kept firing ({beats} → {after})"
    );
    Ok(())
}

#[tokio::test]
async fn ticks_run_at_the_requested_rate() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("probe", "probe", "kind=keyed").await?;
    admin.call_text("probe/room", "tick 20").await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let ticks = admin.probe_state("probe/room").await?["ticks"]
        .as_u64()
        .unwrap();
    assert!(
        (10..=25).contains(&ticks),
        "{ticks} ticks in a second at 20 Hz"
    );
    admin.call_text("probe/room", "tick 0").await?;
    let stopped = admin.probe_state("probe/room").await?["ticks"]
        .as_u64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = admin.probe_state("probe/room").await?["ticks"]
        .as_u64()
        .unwrap();
    assert!(later <= stopped + 1, "ticks continued after tick 0");
    Ok(())
}

#[tokio::test]
async fn timers_wake_passivated_actors_and_survive_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::start_in(dir.path(), &[]).await?;
    let admin = node.admin();
    admin
        .deploy(
            "probe",
            "probe",
            "kind=keyed&durability=every-message&idle_timeout_ms=200",
        )
        .await?;
    admin
        .call_text("probe/sleeper", "timer wake 800 once")
        .await?;
    admin
        .call_text("probe/restarted", "timer later 2500 once")
        .await?;
    // Both passivate while waiting.
    eventually(Duration::from_secs(5), "passivation", || async {
        let live = admin
            .metric("anthill_live_actors", "module=\"probe\"")
            .await?;
        Ok((live == 0.0).then_some(()))
    })
    .await?;
    // The due timer reactivates its actor.
    eventually(
        Duration::from_secs(5),
        "the timer to wake the actor",
        || async {
            let s = admin.probe_state("probe/sleeper").await?;
            Ok((fired(&s).len() == 1).then_some(()))
        },
    )
    .await?;
    // The other is still pending across a crash.
    node.kill9();
    let node = Node::start_in(dir.path(), &[]).await?;
    let admin = node.admin();
    let f = eventually(
        Duration::from_secs(10),
        "the durable timer after restart",
        || async {
            let s = admin.probe_state("probe/restarted").await?;
            let f = fired(&s);
            Ok((!f.is_empty()).then_some(f))
        },
    )
    .await?;
    assert_eq!(f[0].0, "later");
    Ok(())
}

#[tokio::test]
async fn a_call_run_inline_starts_the_ticks() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("probe", "probe", "kind=keyed").await?;
    // Live and idle first, so `tick` runs on the operator's request task and
    // the actor's own task must learn of the new rate from it.
    admin.call_text("probe/room", "hello").await?;
    admin.call_text("probe/room", "tick 50").await?;
    let ticks = anthill_tests::eventually(Duration::from_secs(5), "ticks at 50 Hz", || async {
        let ticks = admin.probe_state("probe/room").await?["ticks"]
            .as_u64()
            .unwrap_or(0);
        Ok((ticks >= 10).then_some(ticks))
    })
    .await?;
    assert!(ticks >= 10);
    Ok(())
}
