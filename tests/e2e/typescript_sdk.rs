//! The TypeScript client SDK (clients/typescript): its checked-in build is
//! what its pinned compiler makes of its source (so the node, which serves
//! that build to pages, never ships a stale SDK), and its own tests
//! (node's test runner) pass against a real node over WebSocket.

use anthill_tests::{Node, workspace_root};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned compiler (installed by scripts/typescript-toolchain.sh, quick
/// when it is there) and the node wrapper beside it.
fn typescript_toolchain() -> anyhow::Result<(PathBuf, PathBuf)> {
    let root = workspace_root();
    let out = Command::new(root.join("scripts/typescript-toolchain.sh"))
        .output()
        .context("running scripts/typescript-toolchain.sh")?;
    anyhow::ensure!(
        out.status.success(),
        "scripts/typescript-toolchain.sh failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tools = root.join("target/toolchains/typescript");
    Ok((tools.join("node_modules/.bin/tsc"), tools.join("run")))
}

fn files(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, std::fs::read_to_string(&path)?));
    }
    out.sort();
    Ok(out)
}

#[test]
fn the_checked_in_sdk_build_is_what_tsc_makes_of_its_source() -> anyhow::Result<()> {
    let (tsc, _) = typescript_toolchain()?;
    let sdk = workspace_root().join("clients/typescript");
    let fresh = tempfile::tempdir()?;
    let out = Command::new(&tsc)
        .arg("-p")
        .arg(&sdk)
        .arg("--outDir")
        .arg(fresh.path())
        .output()
        .with_context(|| format!("running {}", tsc.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "tsc rejects clients/typescript/src:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let built = files(fresh.path())?;
    let committed = files(&sdk.join("dist"))?;
    let names = |v: &[(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&committed),
        names(&built),
        "clients/typescript/dist has other files than tsc builds: rebuild it (cd clients/typescript && npx tsc -p .)"
    );
    for ((name, ours), (_, theirs)) in committed.iter().zip(&built) {
        assert!(
            ours == theirs,
            "clients/typescript/dist/{name} is stale: rebuild it (cd clients/typescript && npx tsc -p .) and commit it"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_sdk_tests_pass_against_a_real_node_over_websocket() -> anyhow::Result<()> {
    let (_, node_js) = typescript_toolchain()?;
    // echo as the login module: the payload is the player id it "verified".
    let node = Node::start_with_config("[gateway]\nlogin_module = \"echo\"\n").await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    admin
        .deploy("counter", "counter", "kind=keyed&players=open")
        .await?;
    admin.deploy("misbehave", "misbehave", "").await?;
    admin
        .deploy("arena", "arena", "kind=keyed&players=open")
        .await?;
    let web = node.web.context("the node reports no web port")?;
    let sdk = workspace_root().join("clients/typescript");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(node_js)
            .args(["--experimental-websocket", "--test", "--test-reporter=spec"])
            .arg("test/")
            .current_dir(sdk)
            .env("ANTHILL_WEB", format!("http://{web}"))
            .output()
    })
    .await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "the SDK's tests failed against the node:\n{stdout}\n{}\nnode output:\n{}",
        String::from_utf8_lossy(&out.stderr),
        node.output()
    );
    // The runner's summary: every test ran, none was skipped.
    let count = |what: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim_start_matches(['ℹ', ' ']).strip_prefix(what))
            .and_then(|n| n.trim().parse::<u32>().ok())
    };
    assert_eq!(count("fail"), Some(0), "{stdout}");
    assert_eq!(count("skipped"), Some(0), "{stdout}");
    assert!(count("pass").is_some_and(|n| n >= 11), "{stdout}");
    Ok(())
}
