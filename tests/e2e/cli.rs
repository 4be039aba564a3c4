//! The `anthill` CLI against a running node, as an operator uses it.

use anthill_tests::{Node, anthill_bin, guest};
use std::process::Command;

/// Runs `cmd`: (success, stdout, stderr).
fn outcome(cmd: &mut Command) -> anyhow::Result<(bool, String, String)> {
    let out = cmd.output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn anthill(node: &Node, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    node.cli(args)
}

#[tokio::test]
async fn deploy_list_call_undeploy_from_the_cli() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let counter = guest("counter");
    let (ok, out, err) = anthill(
        &node,
        &["deploy", "counter", counter.to_str().unwrap(), "--keyed"],
    )?;
    assert!(ok, "{err}");
    assert!(out.contains("deployed counter v1 (keyed"), "{out}");
    assert!(
        err.contains("deploying counter"),
        "progress is shown: {err}"
    );

    let (ok, out, _) = anthill(&node, &["call", "counter/alice", "incr"])?;
    assert!(ok);
    assert_eq!(out, "1");

    let payload = tempfile::NamedTempFile::new()?;
    std::fs::write(payload.path(), "incr")?;
    let (ok, out, _) = anthill(
        &node,
        &[
            "call",
            "counter/alice",
            &format!("@{}", payload.path().display()),
        ],
    )?;
    assert!(ok);
    assert_eq!(out, "2");

    let (ok, out, _) = anthill(&node, &["modules", "--json"])?;
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(list[0]["name"], "counter");
    assert_eq!(list[0]["kind"], "keyed");
    assert_eq!(list[0]["live_actors"], 1);

    let (ok, out, _) = anthill(&node, &["modules"])?;
    assert!(
        ok && out.contains("counter") && out.contains("keyed"),
        "{out}"
    );

    // Errors carry the API's explanation and a failing exit status.
    let (ok, _, err) = anthill(&node, &["call", "nosuch", "x"])?;
    assert!(!ok);
    assert!(err.contains("`nosuch` is not deployed"), "{err}");
    let (ok, _, err) = Command::new(anthill_bin())
        .args(["modules", "--admin", &node.admin_url, "--token", "wrong"])
        .output()
        .map(|o| {
            (
                o.status.success(),
                (),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })?;
    assert!(!ok);
    assert!(err.contains("unauthorized"), "{err}");

    let (ok, out, _) = anthill(&node, &["undeploy", "counter", "--yes"])?;
    assert!(ok, "{out}");
    let (ok, out, _) = anthill(&node, &["modules"])?;
    assert!(ok && out.contains("no modules deployed"), "{out}");
    Ok(())
}

#[tokio::test]
async fn the_cli_finds_a_local_node_through_its_data_dir() -> anyhow::Result<()> {
    let node = Node::start().await?;
    node.admin().deploy("echo", "echo", "").await?;
    let out = Command::new(anthill_bin())
        .args(["call", "echo", "found you", "--data"])
        .arg(&node.data)
        .env_remove("ANTHILL_TOKEN")
        .env_remove("ANTHILL_ADMIN")
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "found you");
    Ok(())
}

#[tokio::test]
async fn canary_promote_and_rollback_from_the_cli() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let (v1, v2) = (guest("counter"), guest("counter-v2"));
    let (ok, _, err) = anthill(
        &node,
        &["deploy", "counter", v1.to_str().unwrap(), "--keyed"],
    )?;
    assert!(ok, "{err}");
    for k in 0..20 {
        anthill(&node, &["call", &format!("counter/k{k}"), "incr"])?;
    }
    let (ok, out, err) = anthill(
        &node,
        &[
            "deploy",
            "counter",
            v2.to_str().unwrap(),
            "--keyed",
            "--canary",
            "50",
        ],
    )?;
    assert!(ok, "{err}");
    assert!(out.contains("deployed counter v2"), "{out}");
    assert!(out.contains("canary: v2 serves 50% of keys"), "{out}");
    assert!(
        out.contains("stall per actor p50"),
        "the swap summary is printed: {out}"
    );
    // The module list shows the canary, not only `--json`.
    let (ok, out, _) = anthill(&node, &["modules"])?;
    assert!(ok && out.contains("CANARY"), "{out}");
    assert!(out.contains("v2 on 50% of keys"), "{out}");

    let (ok, out, err) = anthill(&node, &["promote", "counter"])?;
    assert!(ok, "{err}");
    assert!(
        out.contains("promoted counter: v2 now serves every key"),
        "{out}"
    );
    let (_, out, _) = anthill(&node, &["call", "counter/k3", "get"])?;
    assert_eq!(out, "v2:1");

    let (ok, out, err) = anthill(&node, &["rollback", "counter"])?;
    assert!(ok, "{err}");
    assert!(out.contains("rolled back counter to v1"), "{out}");
    let (_, out, _) = anthill(&node, &["call", "counter/k3", "get"])?;
    assert_eq!(out, "1");

    let (ok, _, err) = anthill(&node, &["promote", "counter"])?;
    assert!(!ok);
    assert!(err.contains("no canary in progress"), "{err}");
    let (ok, _, err) = anthill(&node, &["rollback", "counter", "--to", "9"])?;
    assert!(!ok);
    assert!(err.contains("no version 9"), "{err}");
    Ok(())
}

#[tokio::test]
async fn tenants_from_the_cli_create_deploy_allow_and_remove() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let (ok, out, err) = anthill(&node, &["tenants", "create", "acme", "--max-actors", "5"])?;
    assert!(ok, "{err}");
    let token = out
        .lines()
        .find_map(|l| {
            l.split("token (shown once; give it to the tenant): ")
                .nth(1)
        })
        .expect("the token is printed")
        .trim()
        .to_owned();
    assert!(out.contains("max_actors=5"), "{out}");
    // The tenant's own token deploys into its tenant and sees only that.
    let counter = guest("counter");
    let out = Command::new(anthill_bin())
        .args(["deploy", "counter", counter.to_str().unwrap(), "--keyed"])
        .args(["--admin", &node.admin_url, "--token", &token])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, out, _) = anthill(&node, &["tenants", "allow", "acme", "default"])?;
    assert!(ok);
    assert!(
        out.contains("reaches: default") && out.contains("modules: counter"),
        "{out}"
    );
    let (ok, _, err) = anthill(&node, &["tenants", "remove", "acme"])?;
    assert!(!ok && err.contains("still owns modules"), "{err}");
    let (ok, _, err) = anthill(&node, &["undeploy", "counter", "--yes"])?;
    assert!(ok, "{err}");
    let (ok, out, err) = anthill(&node, &["tenants", "remove", "acme"])?;
    assert!(ok && out.contains("removed"), "{err}");
    let (_, out, _) = anthill(&node, &["tenants"])?;
    assert!(!out.contains("acme") && out.contains("default"), "{out}");
    Ok(())
}

/// Runs the CLI from `dir` with no flags or environment pointing at a node.
fn anthill_in(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    outcome(
        Command::new(anthill_bin())
            .args(args)
            .current_dir(dir)
            .env_remove("ANTHILL_TOKEN")
            .env_remove("ANTHILL_ADMIN")
            .env_remove("ANTHILL_DATA"),
    )
}

#[tokio::test]
async fn the_cli_finds_the_node_from_a_subdirectory_or_anthill_data() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let node = Node::start_in(&root.path().join("anthill-data"), &[]).await?;
    node.admin().deploy("echo", "echo", "").await?;
    // A module project beside the node, as `anthill new` makes one.
    let project = root.path().join("my-room").join("src");
    std::fs::create_dir_all(&project)?;
    let (ok, out, err) = anthill_in(&project, &["call", "echo", "from below"])?;
    assert!(ok, "{err}");
    assert_eq!(out, "from below");
    // From anywhere else, ANTHILL_DATA names it.
    let elsewhere = tempfile::tempdir()?;
    let out = Command::new(anthill_bin())
        .args(["call", "echo", "by env"])
        .current_dir(elsewhere.path())
        .env_remove("ANTHILL_TOKEN")
        .env_remove("ANTHILL_ADMIN")
        .env("ANTHILL_DATA", &node.data)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "by env");
    // And with nothing to find, the error says how to point at a node.
    let (ok, _, err) = anthill_in(elsewhere.path(), &["modules"])?;
    assert!(!ok);
    assert!(err.contains("ANTHILL_DATA"), "{err}");
    Ok(())
}

#[tokio::test]
async fn bot_exits_non_zero_when_players_fail() -> anyhow::Result<()> {
    // Nobody listens on this port.
    let free = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
    let out = Command::new(anthill_bin())
        .args([
            "bot",
            "--addr",
            &free.to_string(),
            "--fingerprint",
            &"0".repeat(64),
        ])
        .args(["--players", "2", "--duration", "2", "--quiet"])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "no player connected, yet exit 0: {err}"
    );
    assert!(err.contains("2 of 2 players never connected"), "{err}");

    // A node without the modules the scenario plays.
    let node = Node::start().await?;
    let out = Command::new(anthill_bin())
        .args(["bot", "--data"])
        .arg(&node.data)
        .args([
            "--scenario",
            "arena",
            "--players",
            "3",
            "--duration",
            "2",
            "--quiet",
        ])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "every join failed, yet exit 0: {err}"
    );
    assert!(err.contains("needs `lobby` and `arena` deployed"), "{err}");
    Ok(())
}

#[tokio::test]
async fn the_swarm_plays_the_arena_as_clients_do_and_names_what_fails() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("lobby", "lobby", "").await?;
    admin.deploy("arena", "arena", "kind=keyed").await?;
    // 60 players in 2 shards (256 each is the cap, so 300 would be 2 too):
    // every one logs in, is placed, joins, moves and mirrors its room.
    let s = node.bot_summary(&[
        "--scenario",
        "arena",
        "--swarm",
        "--players",
        "60",
        "--duration",
        "4",
        "--move-share",
        "0.5",
    ])?;
    assert_eq!(s["engine"], "swarm", "{s}");
    assert_eq!(s["connected"], 60, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
    // The lobby's answers plus moves and stops.
    assert!(s["requests"].as_u64() >= Some(60), "{s}");
    // Rooms tick at 20 Hz: a player that mirrors its room applies most of
    // them (the first second is spent connecting).
    assert!(
        s["steady_states_per_player_per_sec"].as_f64() > Some(10.0),
        "{s}"
    );
    assert!(s["cpu_seconds"].as_f64().is_some(), "{s}");
    // The node saw them as players in rooms of 50: the first is full.
    assert_eq!(admin.call_text("arena/r1", "players").await?, "50");
    assert_eq!(admin.call_text("arena/r2", "players").await?, "10");

    // A node without the scenario's modules: every player fails to get a
    // room and the exit status and message say which modules to deploy.
    let bare = Node::start().await?;
    let out = Command::new(anthill_bin())
        .args(["bot", "--data"])
        .arg(&bare.data)
        .args(["--scenario", "arena", "--swarm", "--players", "3"])
        .args(["--duration", "2", "--quiet"])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "every find failed, yet exit 0: {err}"
    );
    assert!(err.contains("needs `lobby` and `arena` deployed"), "{err}");

    // Nobody listening: nobody connects, and the bot says so.
    let free = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
    let out = Command::new(anthill_bin())
        .args(["bot", "--swarm", "--addr", &free.to_string()])
        .args(["--fingerprint", &"0".repeat(64)])
        .args(["--players", "2", "--duration", "2", "--quiet"])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("2 of 2 players never connected"), "{err}");
    Ok(())
}

#[tokio::test]
async fn the_node_logs_json_lines_when_asked_and_no_colours_into_a_pipe() -> anyhow::Result<()> {
    let node = Node::start_with(&["--log-format", "json"]).await?;
    node.admin().deploy("echo", "echo", "").await?;
    let output = node.stop()?;
    let logs: Vec<serde_json::Value> = output
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert!(
        logs.iter()
            .any(|l| l["fields"]["message"] == "state reloaded" && l["level"] == "INFO"),
        "{output}"
    );
    let text = Node::start().await?;
    let output = text.stop()?;
    assert!(output.contains("state reloaded"), "{output}");
    assert!(
        !output.contains('\u{1b}'),
        "escape codes in a pipe: {output:?}"
    );
    Ok(())
}

#[tokio::test]
async fn undeploy_asks_first_and_json_makes_errors_json() -> anyhow::Result<()> {
    let node = Node::start().await?;
    node.admin()
        .deploy("counter", "counter", "kind=keyed")
        .await?;
    // Not a terminal and no --yes: refused, nothing deleted.
    let (ok, _, err) = anthill(&node, &["undeploy", "counter"])?;
    assert!(!ok && err.contains("pass --yes"), "{err}");
    assert_eq!(node.admin().module_names().await?, vec!["counter"]);

    // --json: an API error is the API's {error, detail} on stderr.
    let (ok, out, err) = anthill(&node, &["call", "nosuch", "x", "--json"])?;
    assert!(!ok && out.is_empty());
    let body: serde_json::Value = serde_json::from_str(err.trim())?;
    assert_eq!(body["error"], "not-found", "{body}");
    assert_eq!(body["status"], 404);
    assert!(
        body["detail"].as_str().unwrap().contains("nosuch"),
        "{body}"
    );
    // …and so is a local failure.
    let (ok, _, err) = anthill(&node, &["deploy", "x", "/nonexistent.wasm", "--json"])?;
    assert!(!ok);
    let body: serde_json::Value = serde_json::from_str(err.trim())?;
    assert_eq!(body["error"], "cli");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("/nonexistent.wasm"),
        "{body}"
    );
    Ok(())
}

#[test]
fn completions_are_generated_for_each_shell() -> anyhow::Result<()> {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(anthill_bin())
            .args(["completions", shell])
            .output()?;
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("anthill") && script.contains("undeploy") && script.contains("logs"),
            "{shell}: {script:.200}"
        );
    }
    Ok(())
}

#[test]
fn new_names_its_language_and_agrees_with_deploy_on_names() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (ok, out, err) = anthill_in(dir.path(), &["new", "--lang", "js", "room-1"])?;
    assert!(ok, "{err}");
    assert!(out.contains("(JavaScript)"), "{out}");
    // Deploy accepts a leading digit; so does `new`, except where Cargo cannot.
    let (ok, _, err) = anthill_in(dir.path(), &["new", "--lang", "python", "9lives"])?;
    assert!(ok, "{err}");
    let (ok, _, err) = anthill_in(dir.path(), &["new", "--lang", "rust", "9lives-rs"])?;
    assert!(!ok && err.contains("Cargo"), "{err}");
    let (ok, _, err) = anthill_in(dir.path(), &["new", "Bad.Name"])?;
    assert!(!ok && err.contains("1 to 64 characters"), "{err}");
    let (ok, help, _) = anthill_in(dir.path(), &["new", "--help"])?;
    assert!(ok);
    assert_eq!(help.matches("[default: .]").count(), 1, "{help}");
    Ok(())
}

#[tokio::test]
async fn bot_reaches_a_node_bound_to_every_address_through_loopback() -> anyhow::Result<()> {
    let node = Node::start_deployed(&[("echo", "echo", "")]).await?;
    let port = node.quic.expect("a player port").port();
    // What a node started with `--quic 0.0.0.0:PORT` writes in its data dir.
    let data = tempfile::tempdir()?;
    std::fs::write(data.path().join("quic.addr"), format!("0.0.0.0:{port}\n"))?;
    std::fs::write(
        data.path().join("gateway.fingerprint"),
        format!("{}\n", node.fingerprint),
    )?;
    let (ok, out, err) = outcome(
        Command::new(anthill_bin())
            .args(["bot", "--data"])
            .arg(data.path())
            .args(["--scenario", "echo", "--swarm", "--players", "3"])
            .args(["--duration", "2", "--rate", "5", "--json", "--quiet"]),
    )?;
    assert!(ok, "the bot could not reach 0.0.0.0:{port}: {out}{err}");
    let s: serde_json::Value = serde_json::from_str(out.trim())?;
    assert_eq!(s["connected"], 3, "{s}");
    Ok(())
}
