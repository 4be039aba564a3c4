//! The admin API is closed without the token, and the token is kept private.

use anthill_tests::Node;
use std::os::unix::fs::PermissionsExt;

#[tokio::test]
async fn every_route_but_healthz_needs_the_token() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    let http = reqwest::Client::new();
    let routes: &[(reqwest::Method, &str)] = &[
        (reqwest::Method::GET, "/metrics"),
        (reqwest::Method::GET, "/v1/modules"),
        (reqwest::Method::GET, "/v1/modules/echo"),
        (reqwest::Method::PUT, "/v1/modules/echo"),
        (reqwest::Method::DELETE, "/v1/modules/echo"),
        (reqwest::Method::POST, "/v1/modules/echo/call"),
        (reqwest::Method::GET, "/v1/actors"),
    ];
    for (method, path) in routes {
        let none = http.request(method.clone(), admin.url(path)).send().await?;
        assert_eq!(
            none.status().as_u16(),
            401,
            "{method} {path} without a token"
        );
        let body: serde_json::Value = none.json().await?;
        assert_eq!(body["error"], "unauthorized");
        let wrong = http
            .request(method.clone(), admin.url(path))
            .bearer_auth("not-the-token")
            .send()
            .await?;
        assert_eq!(
            wrong.status().as_u16(),
            401,
            "{method} {path} with a wrong token"
        );
    }
    let health = http.get(admin.url("/healthz")).send().await?;
    assert_eq!(health.status().as_u16(), 200);
    // Nothing was changed by the refused requests.
    assert_eq!(admin.module_names().await?, ["echo"]);
    assert_eq!(admin.call_text("echo", "x").await?, "x");
    Ok(())
}

#[tokio::test]
async fn the_generated_token_is_private_and_the_api_is_on_loopback() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::start_in(dir.path(), &[]).await?;
    let path = node.data.join("admin.token");
    let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "admin.token has mode {mode:o}");
    assert_eq!(node.token.len(), 64, "a 256-bit hex token");
    assert!(
        node.admin_url.starts_with("http://127.0.0.1:"),
        "{}",
        node.admin_url
    );
    assert!(
        node.output().contains("generated into"),
        "the banner says where the token is"
    );

    // A token file others can read is refused at start, with the fix.
    let data = node.kill9();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    let err = match Node::start_in(&data, &[]).await {
        Ok(_) => anyhow::bail!("a world-readable token file was accepted"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("chmod 600"), "{err}");
    Ok(())
}
