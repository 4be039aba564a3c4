//! Bad uploads are refused with a status and a message that say what is wrong,
//! and change nothing.

use anthill_tests::{Node, guest};

#[tokio::test]
async fn bad_components_are_refused_and_change_nothing() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    let before = admin.module_names().await?;

    // Garbage.
    let (status, body) = admin
        .deploy_bytes("junk", b"this is not wasm at all".to_vec(), "")
        .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "not-a-component");
    assert_eq!(admin.module_names().await?, before);

    // A core module, not a component.
    let core = b"\0asm\x01\0\0\0".to_vec();
    let (status, body) = admin.deploy_bytes("core", core, "").await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("core wasm module"),
        "{body}"
    );

    // A component header with a broken body.
    let mut broken = std::fs::read(guest("echo"))?;
    broken.truncate(broken.len() / 2);
    let (status, body) = admin.deploy_bytes("broken", broken, "").await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid-component");

    // A valid component of another world: a plain WASI command.
    let (status, body) = admin
        .deploy_bytes("command", std::fs::read(guest("hello-command"))?, "")
        .await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "wrong-world");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("missing export `anthill:module/actor@0.1.0`"),
        "{detail}"
    );
    assert!(
        detail.contains("wasi:cli/run"),
        "should say what it exports instead: {detail}"
    );

    // Redeploying echo over itself with junk leaves the running version alone.
    let (status, _) = admin.deploy_bytes("echo", b"junk".to_vec(), "").await?;
    assert_eq!(status, 400);
    assert_eq!(admin.call_text("echo", "still v1").await?, "still v1");
    let (_, info) = admin.get_json("/v1/modules/echo").await?;
    assert_eq!(info["version"], 1);

    assert_eq!(admin.module_names().await?, before);
    Ok(())
}

#[tokio::test]
async fn an_upload_over_the_limit_gets_413() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("anthill.toml");
    std::fs::write(&config, "[limits]\nupload_limit_mb = 1\n")?;
    let node = Node::start_with(&["--config", config.to_str().unwrap()]).await?;
    let admin = node.admin();
    let mut big = std::fs::read(guest("echo"))?;
    big.resize(2 << 20, 0);
    let (status, body) = admin.deploy_bytes("big", big, "").await?;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "too-large");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("1 MiB upload limit"),
        "{body}"
    );
    assert!(admin.module_names().await?.is_empty());
    // The limit is on the upload, not a general refusal: a small one works.
    admin.deploy("echo", "echo", "").await?;
    Ok(())
}

#[tokio::test]
async fn settings_out_of_range_are_refused() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    let bytes = std::fs::read(guest("echo"))?;
    let (status, body) = admin
        .deploy_bytes("echo", bytes.clone(), "memory_mb=100000")
        .await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("max_memory_mb"),
        "{body}"
    );
    let (status, _) = admin
        .deploy_bytes("echo", bytes.clone(), "kind=sideways")
        .await?;
    assert_eq!(status, 400);
    admin.deploy("echo", "echo", "kind=singleton").await?;
    let (status, body) = admin.deploy_bytes("echo", bytes, "kind=keyed").await?;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("anthill undeploy echo"),
        "{body}"
    );
    Ok(())
}
