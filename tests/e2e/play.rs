//! The browser arena (`/play`) in headless Chromium (tests/browser/play.cjs),
//! against a node with bots playing: over WebTransport (with a hot swap of
//! `arena` while the page plays), over WebSocket forced by the URL, and the
//! SDK refused from a page of another origin on both transports. What the
//! page saw is checked here against the node; screenshots land in
//! target/screenshots.

use anthill_tests::{Node, anthill_bin, browser_runner, guest, workspace_root};
use anyhow::Context as _;
use std::process::{Child, Command, Stdio};

/// A node with the lobby and arena, and `players` bots in its rooms.
async fn arena_with_bots(players: u32) -> anyhow::Result<(Node, Child)> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("lobby", "lobby", "").await?;
    admin.deploy("arena", "arena", "kind=keyed").await?;
    let bots = Command::new(anthill_bin())
        .args(["bot", "--scenario", "arena", "--duration", "120"])
        .args(["--players", &players.to_string()])
        .arg("--data")
        .arg(&node.data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting anthill bot")?;
    let admin = node.admin();
    anthill_tests::eventually(
        std::time::Duration::from_secs(20),
        "the bots in a room",
        || async {
            let rooms = admin.call_text("lobby", "rooms").await?;
            Ok(rooms.contains("\"r1\"").then_some(()))
        },
    )
    .await?;
    Ok((node, bots))
}

/// Runs play.cjs in `mode`; its findings.
async fn play(node: &Node, mode: &str) -> anyhow::Result<serde_json::Value> {
    let run = browser_runner()?;
    let shots = workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&shots)?;
    let web = format!(
        "http://{}",
        node.web.context("the node reports no web port")?
    );
    let (admin, token, mode) = (node.admin_url.clone(), node.token.clone(), mode.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(run)
            .arg(workspace_root().join("tests/browser/play.cjs"))
            .env("MODE", mode)
            .env("ANTHILL_WEB", web)
            .env("ANTHILL_ADMIN", admin)
            .env("ANTHILL_TOKEN", token)
            .env("COMPONENT", guest("arena"))
            .env("SHOTS", shots)
            .output()
    })
    .await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "the arena page in Chromium failed:\n{}\n{stdout}\nnode output (last lines):\n{}",
        String::from_utf8_lossy(&out.stderr),
        last_lines(&node.output(), 30)
    );
    serde_json::from_str(
        stdout
            .lines()
            .last()
            .context("play.cjs printed its findings")?,
    )
    .context("play.cjs findings")
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn screenshot(name: &str) -> anyhow::Result<()> {
    let shot = workspace_root().join(format!("target/screenshots/{name}.png"));
    let size = std::fs::metadata(&shot)
        .with_context(|| format!("screenshot {}", shot.display()))?
        .len();
    anyhow::ensure!(size > 1000, "{} is not an image", shot.display());
    Ok(())
}

/// What the page saw of the room, checked against the node's own count.
async fn check_played(node: &Node, findings: &serde_json::Value) -> anyhow::Result<()> {
    assert!(findings["ticks"].as_u64().unwrap_or(0) >= 20, "{findings}");
    assert!(
        findings["entities"].as_u64().unwrap_or(0) >= 64 + 2,
        "64 pickups, the page's player and bots: {findings}"
    );
    let (from, to) = (&findings["moved"]["from"], &findings["moved"]["to"]);
    let (from_x, to_x) = (from["x"].as_f64(), to["x"].as_f64());
    let moved = match findings["moved"]["dir"].as_str() {
        Some("right") => to_x > from_x,
        Some("left") => to_x < from_x && to_x.is_some(),
        _ => false,
    };
    assert!(moved, "moved the way the page pressed: {findings}");
    let room = findings["room"].as_str().context("the page's room")?;
    let players: u32 = node.admin().call_text(room, "players").await?.parse()?;
    assert!(players >= 2, "the page and bots share {room}: {players}");
    assert_eq!(findings["hud"]["status"], "connected", "{findings}");
    assert!(
        findings["hud"]["rtt"]
            .as_str()
            .is_some_and(|r| r.ends_with(" ms")),
        "the page shows its round-trip time: {findings}"
    );
    Ok(())
}

#[tokio::test]
async fn the_arena_page_plays_over_webtransport_through_a_hot_swap() -> anyhow::Result<()> {
    let (node, mut bots) = arena_with_bots(6).await?;
    let findings = play(&node, "webtransport").await;
    let _ = bots.kill();
    let findings = findings?;
    assert_eq!(findings["transport"], "webtransport", "{findings}");
    assert_eq!(findings["hud"]["transport"], "webtransport");
    check_played(&node, &findings).await?;
    // The swap happened under the page, and the page never noticed.
    assert_eq!(findings["swap"]["version"], 2, "{findings}");
    assert_eq!(findings["afterSwap"]["disconnects"], 0, "{findings}");
    assert_eq!(findings["afterSwap"]["connected"], true);
    assert!(findings["afterSwap"]["ticks"].as_u64().unwrap_or(0) >= 30);
    let (_, arena) = node.admin().get_json("/v1/modules/arena").await?;
    assert_eq!(arena["version"], 2, "{arena}");
    let accepted = node
        .admin()
        .metric(
            "anthill_player_connections_accepted_total",
            "transport=\"webtransport\"",
        )
        .await?;
    assert!(accepted >= 1.0, "the node counted the page's session");
    screenshot("play-webtransport")?;
    screenshot("play-after-swap")
}

#[tokio::test]
async fn the_arena_page_plays_over_websocket_when_the_url_asks() -> anyhow::Result<()> {
    let (node, mut bots) = arena_with_bots(4).await?;
    let findings = play(&node, "websocket").await;
    let _ = bots.kill();
    let findings = findings?;
    assert_eq!(findings["transport"], "websocket", "{findings}");
    assert_eq!(findings["hud"]["transport"], "websocket");
    assert_eq!(findings["disconnects"], 0, "{findings}");
    check_played(&node, &findings).await?;
    let accepted = node
        .admin()
        .metric(
            "anthill_player_connections_accepted_total",
            "transport=\"websocket\"",
        )
        .await?;
    assert!(accepted >= 1.0, "the node counted the page's socket");
    screenshot("play-websocket")
}

#[tokio::test]
async fn a_page_of_another_origin_is_refused_on_both_transports() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let findings = play(&node, "foreign").await?;
    for transport in ["webtransport", "websocket"] {
        let attempt = &findings["attempts"][transport];
        assert_eq!(attempt["connected"], false, "{transport}: {findings}");
        assert_eq!(attempt["kind"], "Connect", "{transport}: {findings}");
    }
    // The node refused them for their origin (and says which, in its log).
    let refused = node
        .admin()
        .metric(
            "anthill_player_connections_refused_total",
            "reason=\"origin\"",
        )
        .await?;
    assert!(refused >= 2.0, "both refused for their origin: {refused}");
    let origin = findings["origin"].as_str().context("the foreign origin")?;
    let log = node.output();
    assert!(
        log.contains("is not allowed to connect") && log.contains(origin),
        "the node names the refused origin: {log}"
    );
    Ok(())
}
