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
    // The node answers from the headers, before the body is sent (a client that
    // keeps writing sees the connection close, as with any HTTP server).
    let (status, body) =
        raw_put_headers(&admin.base, &admin.token, "/v1/modules/big", 2 << 20).await?;
    assert_eq!(status, 413, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body)?;
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

/// Sends only the request head of a PUT with `Content-Length: len` and reads the
/// answer.
async fn raw_put_headers(
    base: &str,
    token: &str,
    path: &str,
    len: usize,
) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await??;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status line in {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[tokio::test]
async fn a_full_disk_refuses_the_upload_with_507_and_loses_nothing() -> anyhow::Result<()> {
    use sha2::Digest;
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    let before = admin.module_names().await?;
    // The node writes an upload to `components/SHA.tmp-PID`, then renames it.
    // Point that name at /dev/full: the kernel answers the write with ENOSPC,
    // exactly as a full disk does, for this file only.
    let bytes = std::fs::read(guest("counter"))?;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let tmp = node
        .data
        .join("components")
        .join(format!("{sha}.tmp-{}", node.pid()));
    std::os::unix::fs::symlink("/dev/full", &tmp)?;

    let (status, body) = admin
        .deploy_bytes("counter", bytes.clone(), "kind=keyed")
        .await?;
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"], "disk-full", "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("disk is full") && detail.contains("nothing was changed"),
        "{detail}"
    );
    assert_eq!(
        admin.module_names().await?,
        before,
        "no half-deployed module"
    );
    assert_eq!(admin.call_text("echo", "still here").await?, "still here");

    // Space freed (the node removed its temp file): the same upload works.
    assert!(!tmp.exists(), "the failed temp file was cleaned up");
    let (status, body) = admin.deploy_bytes("counter", bytes, "kind=keyed").await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(admin.call_text("counter/a", "incr").await?, "1");
    Ok(())
}
