//! `just demo` (scripts/demo.sh) and `just cluster-demo`, small: each must
//! still show what it says it shows. A redeploy that became a no-op once
//! stopped the demo's hot swap unnoticed.

use anthill_tests::{anthill_bin, workspace_root};
use std::process::{Command, Output};

/// What a demo printed, stdout then stderr.
fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn the_demo_swaps_arena_under_bots_and_stops_gracefully() -> anyhow::Result<()> {
    // The script runs target/release/anthill: the binary the tests built.
    anyhow::ensure!(anthill_bin().exists(), "the anthill binary is built");
    let out = tokio::task::spawn_blocking(|| {
        Command::new(workspace_root().join("scripts/demo.sh"))
            .env("DEMO_PLAYERS", "10")
            .env("DEMO_SECONDS", "4")
            .output()
    })
    .await??;
    let text = printed(&out);
    // The demo keeps its data dir for the user; the test does not.
    if let Some(dir) = text
        .lines()
        .find_map(|l| l.strip_prefix("data dir kept at "))
        .and_then(|rest| rest.split(' ').next())
    {
        let _ = std::fs::remove_dir_all(dir);
    }
    assert!(out.status.success(), "the demo failed:\n{text}");
    assert!(
        text.contains("deployed arena v2") && text.contains("v1 → v2"),
        "the demo hot-swaps arena:\n{text}"
    );
    assert!(
        text.contains("10 players (10 connected)") && text.contains(" 0 errors"),
        "every bot played through the swap:\n{text}"
    );
    assert!(text.contains("/console (token: "), "{text}");
    assert!(
        text.contains("play the arena in a browser beside the bots: http://127.0.0.1:")
            && text.contains("/play"),
        "the demo prints the page's URL:\n{text}"
    );
    assert!(
        text.contains("live actors stopped, their state saved"),
        "{text}"
    );
    Ok(())
}

/// `just cluster-demo`, small: three nats-servers and three nodes, the
/// busiest node killed mid-game; its rooms must come back on the survivors
/// and its bots must resume their sessions there.
#[tokio::test]
async fn the_cluster_demo_brings_the_killed_nodes_rooms_and_players_back() -> anyhow::Result<()> {
    anyhow::ensure!(anthill_bin().exists(), "the anthill binary is built");
    let out = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_anthill-cluster-demo"))
            .env("CLUSTER_DEMO_PLAYERS", "8")
            .env("CLUSTER_DEMO_SECONDS", "24")
            .output()
    })
    .await??;
    let text = printed(&out);
    assert!(out.status.success(), "the cluster demo failed:\n{text}");
    assert!(
        text.contains("rooms came back on the survivors: unavailable"),
        "the killed node's rooms came back:\n{text}"
    );
    assert!(
        !text.contains("not live again yet"),
        "every room came back:\n{text}"
    );
    let victims = text
        .lines()
        .find(|l| l.contains("(their node was killed"))
        .ok_or_else(|| anyhow::anyhow!("no summary of the killed node's bots:\n{text}"))?;
    let resumed: u64 = victims
        .split(", ")
        .find_map(|part| part.split_once(" resumed on another node"))
        .ok_or_else(|| anyhow::anyhow!("no resume count in: {victims}"))?
        .0
        .parse()?;
    assert!(
        resumed >= 1 && victims.contains("8 of 8 connected"),
        "the killed node's bots resumed on the others: {victims}"
    );
    Ok(())
}
