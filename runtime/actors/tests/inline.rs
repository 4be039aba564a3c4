//! Calls that run on the caller's task (actor/inline.rs), on a current-thread
//! runtime: there no other task runs until the test's own task waits, so
//! whether a call needed the actor's task, and whether it overtook a message
//! queued before it, is deterministic. Needs `target/modules/probe.wasm`
//! (`just build-modules`; `just test` does it).

use anthill_actors::module::{DeployRequest, SettingsRequest};
use anthill_actors::{Runtime, RuntimeConfig};
use anthill_core::module::Kind;
use anthill_core::{Address, CallChain, Sender};
use anyhow::Context;
use futures::FutureExt;
use std::sync::Arc;
use std::time::Duration;

async fn node_with_probe(dir: &std::path::Path) -> anyhow::Result<Arc<Runtime>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/modules/probe.wasm"
    );
    let bytes =
        std::fs::read(path).with_context(|| format!("{path} (run `just build-modules`)"))?;
    let config = RuntimeConfig {
        limits: anthill_core::Limits {
            max_actors: 64,
            ..anthill_core::Limits::default()
        },
        ..RuntimeConfig::default()
    };
    let engine = anthill_engine::Engine::new(&config.limits, dir.join("cache"))?;
    let store = Arc::new(anthill_store::Store::open(dir)?);
    let runtime = Runtime::new(config, engine, store, &prometheus::Registry::new())?;
    runtime.start().await?;
    anthill_actors::module::deploy(
        &runtime,
        DeployRequest {
            name: "probe".into(),
            settings: SettingsRequest {
                kind: Some(Kind::Keyed),
                ..SettingsRequest::default()
            },
            bytes: bytes.into(),
        },
    )
    .await?;
    Ok(runtime)
}

async fn call(node: &Arc<Runtime>, to: &Address, text: &str) -> anyhow::Result<String> {
    let reply = node
        .router
        .call(
            node,
            to,
            Sender::Admin,
            text.as_bytes().to_vec(),
            Duration::from_secs(5),
            CallChain::default(),
        )
        .await?;
    Ok(String::from_utf8(reply)?)
}

#[tokio::test]
async fn a_call_to_an_idle_actor_needs_no_other_task() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = node_with_probe(dir.path()).await?;
    let b = Address::new("probe", "b");
    // The first call waits for the activation, which the actor's task runs.
    assert!(call(&node, &b, "hello").now_or_never().is_none());
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Idle now: the call completes in its first poll, on this task.
    let reply = call(&node, &b, "again")
        .now_or_never()
        .context("a call to an idle actor waited for another task")??;
    assert_eq!(reply, "again");
    Ok(())
}

#[tokio::test]
async fn a_call_never_overtakes_a_message_queued_before_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = node_with_probe(dir.path()).await?;
    let b = Address::new("probe", "b");
    call(&node, &b, "hello").await?;
    let from_a = Sender::Actor(Address::new("probe", "a"));
    for i in 0..3 {
        // Queued in b's mailbox; b's task cannot run before this task waits.
        node.router
            .send(&node, &b, from_a.clone(), format!("m{i}").into_bytes())
            .await?;
        let state: serde_json::Value = serde_json::from_str(&call(&node, &b, "state").await?)?;
        assert_eq!(
            state["received"].as_array().and_then(|r| r.last()),
            Some(&serde_json::json!(format!("actor:probe/a m{i}"))),
            "the call answered before the send queued ahead of it: {state}"
        );
    }
    Ok(())
}
