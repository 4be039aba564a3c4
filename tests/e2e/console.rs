//! The web console in headless Chromium (tests/browser/console.cjs): log in,
//! see the node, start a canary, roll it back; the node's state is checked
//! here through the API after the page has acted. Screenshots land in
//! target/screenshots.

use anthill_tests::{Node, browser_runner, guest, workspace_root};
use anyhow::Context as _;
use std::process::Command;

#[tokio::test]
async fn the_console_logs_in_starts_a_canary_and_rolls_it_back() -> anyhow::Result<()> {
    let run = browser_runner()?;
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("counter", "counter", "kind=keyed").await?;
    // The print's deadline is not what this test checks: under the full
    // suite (Chromium, clusters) a 100 ms first call once ran out.
    admin
        .deploy("probe", "probe", "kind=keyed&deadline_ms=2000")
        .await?;
    for key in ["a", "b", "c"] {
        admin.call_text(&format!("counter/{key}"), "incr").await?;
    }
    admin.call_text("probe/p", "print hello-console").await?;

    let shots = workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&shots)?;
    let out = tokio::task::spawn_blocking({
        let (url, token, shots) = (node.admin_url.clone(), node.token.clone(), shots.clone());
        move || {
            Command::new(run)
                .arg(workspace_root().join("tests/browser/console.cjs"))
                .env("ANTHILL_URL", url)
                .env("ANTHILL_TOKEN", token)
                .env("COMPONENT", guest("counter-v2"))
                .env("SHOTS", shots)
                .output()
        }
    })
    .await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(
        out.status.success(),
        "the console test in Chromium failed:\n{stderr}\n{stdout}"
    );
    let findings: serde_json::Value = serde_json::from_str(
        stdout
            .lines()
            .last()
            .context("the console test printed its findings")?,
    )?;
    assert_eq!(findings["canary"]["percent"], 30, "{findings}");
    assert_eq!(findings["canary"]["version"], 2, "{findings}");
    assert_eq!(findings["rolledBack"], true);
    assert!(
        findings["summary"]
            .as_str()
            .is_some_and(|s| s.contains("2 modules")),
        "{findings}"
    );

    // What the page did, as the node tells it.
    let (status, counter) = admin.get_json("/v1/modules/counter").await?;
    assert_eq!(status, 200);
    assert!(counter["canary"].is_null(), "rolled back: {counter}");
    assert_eq!(counter["version"], 1, "every key back on v1: {counter}");
    let kept: Vec<u64> = counter["versions"]
        .as_array()
        .context("versions")?
        .iter()
        .filter_map(|v| v["version"].as_u64())
        .collect();
    assert!(
        kept.contains(&2),
        "the canary's version was uploaded: {counter}"
    );
    assert_eq!(admin.call_text("counter/a", "get").await?, "1");
    for name in ["modules", "canary", "rolled-back"] {
        let shot = shots.join(format!("console-{name}.png"));
        let size = std::fs::metadata(&shot)
            .with_context(|| format!("screenshot {}", shot.display()))?
            .len();
        assert!(size > 1000, "{} is an image", shot.display());
    }
    Ok(())
}
