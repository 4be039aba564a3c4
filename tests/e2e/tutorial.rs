//! docs/tutorial.md, followed literally: its room module (the first Rust
//! block) built from an `anthill new` project, deployed as `arena` beside the
//! sample lobby, played by bots, hot-swapped with the tutorial's edit while
//! they play, and its log read back. The tutorial cannot rot unnoticed.

use anthill_tests::{Node, anthill_bin, build_rust_project, workspace_root};
use anyhow::Context as _;
use std::process::Command;

/// The fenced ```rust blocks of the tutorial, in order.
fn rust_blocks(doc: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```rust") => current = Some(String::new()),
            (Some(_), "```") => blocks.push(current.take().expect("in a block")),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn bot(node: &Node, players: &str, seconds: &str) -> Command {
    let mut cmd = Command::new(anthill_bin());
    cmd.args(["bot", "--scenario", "arena", "--players", players])
        .args(["--duration", seconds, "--json", "--data"])
        .arg(&node.data);
    cmd
}

#[tokio::test]
async fn the_tutorial_room_builds_plays_swaps_and_logs() -> anyhow::Result<()> {
    let doc = std::fs::read_to_string(workspace_root().join("docs/tutorial.md"))?;
    let blocks = rust_blocks(&doc);
    anyhow::ensure!(blocks.len() >= 2, "the tutorial has its two Rust blocks");
    let (room, edit) = (&blocks[0], blocks[1].trim_end());

    let dir = tempfile::tempdir()?;
    let out = Command::new(anthill_bin())
        .args(["new", "--lang", "rust", "tag-room", "--dir"])
        .arg(dir.path())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "anthill new: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let project = dir.path().join("tag-room");
    std::fs::write(project.join("src/lib.rs"), room)?;
    let v1 = std::fs::read(build_rust_project(&project, "tag_room")?)
        .context("the tutorial's room, built")?;

    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("lobby", "lobby", "").await?;
    let (status, body) = admin
        .deploy_bytes("arena", v1, "kind=keyed&players=existing")
        .await?;
    anyhow::ensure!(status == 201, "deploy the room: {status} {body}");

    // Bots play for 8 s; the swap lands in the middle.
    let players = tokio::task::spawn_blocking({
        let mut cmd = bot(&node, "20", "8");
        move || cmd.output()
    });
    anthill_tests::eventually(
        std::time::Duration::from_secs(10),
        "20 players in r1",
        || async {
            Ok(
                (admin.call_text("arena/r1", "players").await.ok().as_deref() == Some("20"))
                    .then_some(()),
            )
        },
    )
    .await?;

    // Step 6: faster players and a line printed on restore.
    let faster = room.replace("const SPEED: f32 = 20.0;", "const SPEED: f32 = 40.0;");
    anyhow::ensure!(
        faster != *room,
        "the tutorial's SPEED line is where step 6 says"
    );
    let (first, last) = edit
        .lines()
        .map(str::trim)
        .fold((None, None), |(f, _), l| (f.or(Some(l)), Some(l)));
    let anchor = format!(
        "        {}\n        Ok(())",
        first.context("the edit's first line")?
    );
    anyhow::ensure!(
        faster.contains(&anchor) && last == Some("Ok(())"),
        "step 6's edit goes after `{anchor}`"
    );
    let v2_source = faster.replacen(&anchor, edit, 1);
    std::fs::write(project.join("src/lib.rs"), v2_source)?;
    let v2 = std::fs::read(build_rust_project(&project, "tag_room")?)?;
    let (status, body) = admin
        .deploy_bytes("arena", v2, "kind=keyed&players=existing")
        .await?;
    assert_eq!(status, 200, "a hot swap: {body}");

    let out = players.await??;
    let summary: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .context("the bot's summary")?,
    )?;
    assert!(out.status.success(), "the bots: {summary}");
    assert_eq!(summary["connected"], 20, "{summary}");
    assert_eq!(summary["errors"], 0, "no player saw the swap: {summary}");

    let (ok, logs, err) = node.cli(&["logs", "arena", "-n", "100"])?;
    assert!(ok, "{err}");
    assert!(logs.contains("room r1 opened"), "{logs}");
    assert!(
        logs.contains("r1 restored 20 players from version 1"),
        "the swap restored every player:\n{logs}"
    );
    Ok(())
}
