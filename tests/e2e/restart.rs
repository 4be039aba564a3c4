//! A restarted node comes back with its modules, from the compile cache.

use anthill_tests::Node;

#[tokio::test]
async fn modules_survive_a_restart_and_reload_precompiled() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // A cache of its own: this test counts compiles.
    let cache = dir.path().join("cache");
    let args = ["--cache", cache.to_str().unwrap()];
    let node = Node::start_in(dir.path(), &args).await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    admin.deploy("counter", "counter", "kind=keyed").await?;
    for _ in 0..3 {
        admin.call_text("counter/a", "incr").await?;
    }
    assert_eq!(
        admin.metric("anthill_component_compiles_total", "").await?,
        2.0
    );
    let output = node.stop()?;
    assert!(
        output.contains("stopped (1 live actors stopped, their state saved)"),
        "{output}"
    );

    let node = Node::start_in(dir.path(), &args).await?;
    let admin = node.admin();
    assert!(
        node.output().contains("modules: counter, echo (reloaded)"),
        "{}",
        node.output()
    );
    assert_eq!(admin.module_names().await?, ["counter", "echo"]);
    assert_eq!(admin.call_text("echo", "back").await?, "back");
    // Graceful stop snapshotted the counter.
    assert_eq!(admin.call_text("counter/a", "get").await?, "3");
    // Nothing was recompiled: both came from the cache.
    assert_eq!(
        admin.metric("anthill_component_compiles_total", "").await?,
        0.0
    );
    assert_eq!(
        admin
            .metric("anthill_component_cache_hits_total", "")
            .await?,
        2.0
    );

    // Deploying the same bytes again also hits the cache.
    admin.deploy("echo2", "echo", "").await?;
    assert_eq!(
        admin.metric("anthill_component_compiles_total", "").await?,
        0.0
    );
    Ok(())
}
