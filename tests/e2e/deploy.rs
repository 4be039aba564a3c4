//! Deploying and calling modules.

use anthill_tests::Node;

#[tokio::test]
async fn echo_replies_with_the_payload() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    let body = admin.deploy("echo", "echo", "kind=singleton").await?;
    assert_eq!(body["name"], "echo");
    assert_eq!(body["version"], 1);
    assert_eq!(body["sha256"].as_str().map(str::len), Some(64));

    assert_eq!(
        admin.call_text("echo", "hello, anthill").await?,
        "hello, anthill"
    );
    // Any bytes, not only text.
    let payload: Vec<u8> = (0..=255u8).collect();
    let (status, reply) = admin.call("echo", &payload).await?;
    assert_eq!(status, 200);
    assert_eq!(reply, payload);
    Ok(())
}

#[tokio::test]
async fn counter_keeps_a_value_per_key() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("counter", "counter", "kind=keyed").await?;
    for expected in 1..=3 {
        assert_eq!(
            admin.call_text("counter/alice", "incr").await?,
            expected.to_string()
        );
    }
    assert_eq!(admin.call_text("counter/bob", "incr").await?, "1");
    assert_eq!(admin.call_text("counter/alice", "get").await?, "3");
    assert_eq!(admin.call_text("counter/bob", "get").await?, "1");
    assert_eq!(admin.call_text("counter/carol", "get").await?, "0");

    // The module's own refusal comes back as 422 with its words.
    let (status, body) = admin.call("counter/alice", b"decr").await?;
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("`incr` and `get`"));

    let (_, actors) = admin.get_json("/v1/actors?module=counter").await?;
    let keys: Vec<&str> = actors[0]["actors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["key"].as_str())
        .collect();
    assert_eq!(keys, ["alice", "bob", "carol"]);
    Ok(())
}

#[tokio::test]
async fn addressing_errors_are_clear() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("counter", "counter", "kind=keyed").await?;
    admin.deploy("echo", "echo", "").await?;

    let (status, body) = admin.call("nosuch", b"x").await?;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("`nosuch` is not deployed"));

    let (status, body) = admin.call("counter", b"incr").await?;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("counter/KEY"));

    let (status, _) = admin.call("echo/some-key", b"x").await?;
    assert_eq!(status, 400);

    let (status, body) = admin
        .deploy_bytes("Bad Name", std::fs::read(anthill_tests::guest("echo"))?, "")
        .await?;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid-name");
    Ok(())
}

#[tokio::test]
async fn undeploy_removes_the_module_and_its_state() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("counter", "counter", "kind=keyed").await?;
    admin.call_text("counter/a", "incr").await?;
    let (status, body) = admin.delete("/v1/modules/counter").await?;
    assert_eq!(status, 204, "{body}");
    assert!(admin.module_names().await?.is_empty());
    assert_eq!(admin.call("counter/a", b"get").await?.0, 404);

    // Deployed again, it starts from scratch.
    admin.deploy("counter", "counter", "kind=keyed").await?;
    assert_eq!(admin.call_text("counter/a", "get").await?, "0");
    Ok(())
}

#[tokio::test]
async fn dropped_versions_and_undeployed_modules_leave_no_files_behind() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let cache = data.join("cache");
    // The node's own compile cache (inside its data dir), so it may prune it.
    let node =
        anthill_tests::Node::start_in(&data, &["--cache", cache.to_str().expect("utf-8")]).await?;
    let admin = node.admin();
    let files = |dir: &std::path::Path, ext: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(ext))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let sha_of = |body: &serde_json::Value| body["sha256"].as_str().unwrap_or_default().to_owned();

    // Seven alternating deploys: six distinct components would pile up; only
    // the five kept versions' two components may stay.
    let mut shas = Vec::new();
    for i in 0..7u8 {
        // A distinct component each time: `counter` with a custom section appended.
        let mut bytes = std::fs::read(anthill_tests::guest("counter"))?;
        bytes.extend_from_slice(&[0, 7, 5, b'n', b'o', b'n', b'c', b'e', i]);
        let (status, body) = admin.deploy_bytes("counter", bytes, "kind=keyed").await?;
        assert!(status == 200 || status == 201, "{body}");
        shas.push(sha_of(&body));
        assert_eq!(
            admin.call_text("counter/k", "incr").await?,
            (i + 1).to_string()
        );
    }
    let (_, info) = admin.get_json("/v1/modules/counter").await?;
    let kept: Vec<String> = info["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["sha256"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(kept.len(), 5, "{info}");
    let mut want: Vec<String> = kept.iter().map(|s| format!("{s}.wasm")).collect();
    want.sort();
    assert_eq!(files(&data.join("components"), ".wasm"), want);
    for dropped in &shas[..2] {
        assert!(
            !files(&cache, ".cwasm")
                .iter()
                .any(|f| f.starts_with(dropped.as_str())),
            "the precompiled artifact of dropped {dropped} is gone"
        );
    }
    // Rolling back to a kept version still works (its component is there).
    let to = &info["versions"][0]["version"];
    let (status, body) = admin
        .post(&format!("/v1/modules/counter/rollback?to={to}"))
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(admin.call_text("counter/k", "get").await?, "7");

    let (status, body) = admin.delete("/v1/modules/counter").await?;
    assert_eq!(status, 204, "{body}");
    assert!(files(&data.join("components"), ".wasm").is_empty());
    assert!(files(&cache, ".cwasm").is_empty());
    Ok(())
}

#[tokio::test]
async fn redeploying_the_running_component_is_a_no_op_that_says_so() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("counter", "counter", "kind=keyed").await?;
    assert_eq!(admin.call_text("counter/a", "incr").await?, "1");
    let again = admin.deploy("counter", "counter", "kind=keyed").await?;
    assert_eq!(again["unchanged"], true, "{again}");
    assert_eq!(again["version"], 1, "no new version: {again}");
    assert!(again["swap"].is_null(), "no swap: {again}");
    let (_, module) = admin.get_json("/v1/modules/counter").await?;
    assert_eq!(module["versions"].as_array().map(Vec::len), Some(1));
    // The CLI says so in words.
    let counter = anthill_tests::guest("counter");
    let (ok, out, err) = node.cli(&["deploy", "counter", counter.to_str().unwrap(), "--keyed"])?;
    assert!(ok, "{err}");
    assert!(out.contains("nothing changed"), "{out}");
    // New settings, or --force, do make a version (and swap the live actor).
    let changed = admin
        .deploy("counter", "counter", "kind=keyed&mailbox=64")
        .await?;
    assert_eq!(
        (changed["version"].as_u64(), changed["unchanged"].as_bool()),
        (Some(2), Some(false))
    );
    let forced = admin.deploy("counter", "counter", "force=true").await?;
    assert_eq!(forced["version"], 3, "{forced}");
    assert_eq!(forced["swap"]["actors"], 1, "{forced}");
    assert_eq!(
        admin.call_text("counter/a", "get").await?,
        "1",
        "state carried"
    );
    Ok(())
}
