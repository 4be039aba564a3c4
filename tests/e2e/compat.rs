//! A data dir written by an older node opens and serves on this one: the
//! on-disk format (sled trees, bincode snapshots, JSON module and tenant
//! records) is a contract with operators, whatever the code's structure.

use anthill_tests::{Admin, Node, eventually, guest, workspace_root};
use std::time::Duration;

/// The tenant token the fixture's node printed when `studio` was created (a
/// token of a test database, stored there as a sha256).
const STUDIO_TOKEN: &str = "tenant-studio-54d284b623ef6c3b3b8c6c4574f04cf7eea80692f6f90179";

#[tokio::test]
async fn a_data_dir_from_before_the_split_opens_and_serves() -> anyhow::Result<()> {
    let fixture = workspace_root().join("tests/data/data-dir-v0.1");
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("db"))?;
    for f in ["conf", "db"] {
        std::fs::copy(fixture.join("db").join(f), dir.path().join("db").join(f))?;
    }
    std::fs::create_dir_all(dir.path().join("components"))?;
    for (module, sha) in [
        (
            "counter",
            "0d31f5d3971cff0cc356d9d9bc2e4e0c4fe9f1dbf8b602ac5f2f7dbf06a45f42",
        ),
        (
            "probe",
            "9838de08776176e0c00ce5482676d2f834d5c55818b50eeca23f527a311691cd",
        ),
    ] {
        std::fs::copy(
            guest(module),
            dir.path().join("components").join(format!("{sha}.wasm")),
        )?;
    }

    let node = Node::start_in(dir.path(), &[]).await?;
    assert!(
        node.output().contains("modules: counter, probe (reloaded)"),
        "{}",
        node.output()
    );
    let admin = node.admin();
    // Snapshots: the counters kept their values.
    assert_eq!(admin.call_text("counter/alice", "get").await?, "3");
    assert_eq!(admin.call_text("counter/bob", "get").await?, "1");
    // Module records: settings and tenant came back.
    let (_, counter) = admin.get_json("/v1/modules/counter").await?;
    assert_eq!(counter["settings"]["kind"], "keyed");
    assert_eq!(counter["settings"]["durability"], "every-message");
    let (_, probe) = admin.get_json("/v1/modules/probe").await?;
    assert_eq!(probe["tenant"], "studio");
    assert_eq!(probe["settings"]["players"], "open");
    // Subscriptions and timers: the durable subscription and the timer.
    let (_, subs) = admin.get_json("/v1/subscriptions").await?;
    assert!(
        subs.as_array()
            .is_some_and(|s| s.iter().any(|s| s["topic"] == "news"
                && s["subscriber"] == "probe/p1"
                && s["delivery"] == "at-least-once")),
        "{subs}"
    );
    // The timer was stored due an hour after the fixture was written: it
    // is reloaded, and has fired by now (once), or is still scheduled.
    eventually(Duration::from_secs(10), "the stored timer", || async {
        let (_, info) = admin.get_json("/v1/node").await?;
        let state = admin.probe_state("probe/p1").await?;
        let fired = state["fired"]
            .as_array()
            .is_some_and(|f| f.iter().any(|t| t[0] == "later"));
        Ok((info["timers"] == 1 || (fired && info["timers"] == 0)).then_some(()))
    })
    .await?;
    // Tenant records: the tenant's token still opens its own view.
    let studio = Admin::new(&admin.base, STUDIO_TOKEN);
    let (status, mods) = studio.get_json("/v1/modules").await?;
    assert_eq!(status, 200, "{mods}");
    let names: Vec<_> = mods
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].clone())
        .collect();
    assert_eq!(names, ["probe"]);
    // And it keeps working: a write, read back.
    assert_eq!(admin.call_text("counter/alice", "incr").await?, "4");
    node.stop()?;
    Ok(())
}
