//! `just cluster-demo`, small: it must still show what it says it shows.

use anthill_tests::{anthill_bin, printed};
use std::process::Command;

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
