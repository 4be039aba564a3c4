//! `just demo` (scripts/demo.sh), small: it must still show what it says it
//! shows. A redeploy that became a no-op once stopped the demo's hot swap
//! unnoticed.

use anthill_tests::{anthill_bin, printed, workspace_root};
use std::process::Command;

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
