//! Tenants: a tenant's token sees and changes only its own modules, its
//! actors reach another tenant's only where the operator allowed it, and its
//! quotas (actors, storage, message rate) refuse work past them.

use anthill_tests::{Admin, Node};
use serde_json::{Value, json};

/// Creates a tenant through the API; returns an admin client with its token.
async fn tenant(admin: &Admin, name: &str, quotas: Value) -> anyhow::Result<Admin> {
    let resp = admin
        .http
        .post(admin.url("/v1/tenants"))
        .bearer_auth(&admin.token)
        .json(&json!({ "name": name, "quotas": quotas }))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await?;
    anyhow::ensure!(status == 201, "creating tenant {name}: {status} {body}");
    let token = body["token"].as_str().expect("a token").to_owned();
    Ok(Admin::new(&admin.base, &token))
}

async fn status_of(admin: &Admin, method: reqwest::Method, path: &str) -> anyhow::Result<u16> {
    Ok(admin
        .http
        .request(method, admin.url(path))
        .bearer_auth(&admin.token)
        .send()
        .await?
        .status()
        .as_u16())
}

#[tokio::test]
async fn a_tenant_token_sees_and_changes_only_its_own_modules() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let operator = node.admin();
    operator.deploy("echo", "echo", "").await?;
    let acme = tenant(&operator, "acme", json!({})).await?;
    let blue = tenant(&operator, "blue", json!({})).await?;
    acme.deploy("counter", "counter", "kind=keyed").await?;
    assert_eq!(acme.call_text("counter/a", "incr").await?, "1");

    assert_eq!(acme.module_names().await?, vec!["counter".to_owned()]);
    assert!(blue.module_names().await?.is_empty());
    let mut all = operator.module_names().await?;
    all.sort();
    assert_eq!(all, vec!["counter".to_owned(), "echo".to_owned()]);
    let (_, info) = operator.get_json("/v1/modules/counter").await?;
    assert_eq!(info["tenant"], "acme");
    assert_eq!(
        operator
            .metric(
                "anthill_module_tenant",
                "module=\"counter\",tenant=\"acme\""
            )
            .await?,
        1.0
    );
    assert_eq!(
        operator
            .metric("anthill_tenant_live_actors", "tenant=\"acme\"")
            .await?,
        1.0
    );

    // Another tenant's module does not exist for blue, whatever it tries.
    use reqwest::Method;
    assert_eq!(
        status_of(&blue, Method::GET, "/v1/modules/counter").await?,
        404
    );
    assert_eq!(
        status_of(&blue, Method::DELETE, "/v1/modules/counter").await?,
        404
    );
    assert_eq!(
        status_of(&blue, Method::POST, "/v1/modules/counter/rollback").await?,
        404
    );
    let (status, _) = blue.call("counter/a", b"incr").await?;
    assert_eq!(status, 404);
    assert_eq!(
        status_of(&blue, Method::GET, "/v1/modules/echo").await?,
        404
    );
    let bytes = std::fs::read(anthill_tests::guest("counter-v2"))?;
    let (status, body) = blue.deploy_bytes("counter", bytes, "").await?;
    assert_eq!(
        (status, &body["error"]),
        (409, &json!("name-taken")),
        "{body}"
    );
    // Operator routes are the operator's.
    for path in [
        "/metrics",
        "/v1/node",
        "/v1/tenants",
        "/v1/dead-letters",
        "/v1/subscriptions",
    ] {
        assert_eq!(status_of(&blue, Method::GET, path).await?, 403, "{path}");
    }
    let (status, own) = blue.get_json("/v1/tenant").await?;
    assert_eq!((status, &own["name"]), (200, &json!("blue")));
    // The operator's view of every tenant, with usage.
    let (_, tenants) = operator.get_json("/v1/tenants").await?;
    let names: Vec<_> = tenants
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, vec!["acme", "blue", "default"]);
    assert_eq!(tenants[0]["usage"]["live_actors"], 1);
    // A tenant that owns modules cannot be removed; its counter is untouched.
    assert_eq!(
        status_of(&operator, Method::DELETE, "/v1/tenants/acme").await?,
        409
    );
    assert_eq!(acme.call_text("counter/a", "incr").await?, "2");
    // A wrong token is still refused.
    let stranger = Admin::new(&operator.base, "tenant-acme-guess");
    assert_eq!(status_of(&stranger, Method::GET, "/v1/modules").await?, 401);
    Ok(())
}

#[tokio::test]
async fn calls_sends_and_events_across_tenants_are_refused_unless_allowed() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let operator = node.admin();
    let acme = tenant(&operator, "acme", json!({})).await?;
    let blue = tenant(&operator, "blue", json!({})).await?;
    acme.deploy("probe-a", "probe", "kind=keyed&deadline_ms=2000")
        .await?;
    blue.deploy("probe-b", "probe", "kind=keyed&deadline_ms=2000")
        .await?;

    let (status, body) = acme.call("probe-a/x", b"call probe-b/y 1000 hello").await?;
    let body = String::from_utf8_lossy(&body);
    assert_ne!(status, 200, "{body}");
    assert!(
        body.contains("may not reach") && body.contains("anthill tenants allow acme blue"),
        "{body}"
    );
    // Events stay inside a tenant: blue's subscriber never hears acme's topic.
    assert_eq!(
        blue.call_text("probe-b/y", "subscribe scores amo").await?,
        "subscribed"
    );
    assert_eq!(
        acme.call_text("probe-a/x", "publish scores 1-0").await?,
        "published"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(blue.probe_state("probe-b/y").await?["events"], json!([]));

    // The operator allows acme → blue (one way).
    let (status, _) = operator.post("/v1/tenants/acme/allow?to=blue").await?;
    assert_eq!(status, 200);
    assert_eq!(
        acme.call_text("probe-a/x", "call probe-b/y 1000 hello")
            .await?,
        "hello"
    );
    assert_eq!(
        acme.call_text("probe-a/x", "publish scores 2-0").await?,
        "published"
    );
    anthill_tests::eventually(
        std::time::Duration::from_secs(5),
        "blue hears acme's event",
        || {
            let blue = blue.clone();
            async move {
                let s = blue.probe_state("probe-b/y").await?;
                Ok(s["events"].as_array().filter(|e| !e.is_empty()).cloned())
            }
        },
    )
    .await?;
    // Still not the other way.
    let (status, body) = blue.call("probe-b/y", b"call probe-a/x 1000 back").await?;
    assert_ne!(status, 200, "{}", String::from_utf8_lossy(&body));
    Ok(())
}

#[tokio::test]
async fn tenant_quotas_refuse_actors_storage_and_message_rate_past_them() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let operator = node.admin();
    let small = tenant(&operator, "small", json!({ "max_actors": 3 })).await?;
    small.deploy("counter", "counter", "kind=keyed").await?;
    for k in ["a", "b", "c"] {
        assert_eq!(small.call_text(&format!("counter/{k}"), "incr").await?, "1");
    }
    let (status, body) = small.call("counter/d", b"incr").await?;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("max_actors") && body.contains("small"),
        "{body}"
    );
    // Live actors keep working.
    assert_eq!(small.call_text("counter/a", "incr").await?, "2");

    let disk = tenant(&operator, "disk", json!({ "max_storage_mb": 1 })).await?;
    disk.deploy("hoard", "hoard", "kind=keyed&durability=every-message")
        .await?;
    assert_eq!(disk.call_text("hoard/one", "grow 600000").await?, "grown");
    let (status, body) = disk.call("hoard/two", b"grow 600000").await?;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("max_storage_mb"), "{body}");
    // Undeploy gives the storage back.
    let (status, _) = disk.delete("/v1/modules/hoard").await?;
    assert_eq!(status, 204);
    let (_, own) = disk.get_json("/v1/tenant").await?;
    assert_eq!(own["usage"]["storage_bytes"], 0, "{own}");

    let slow = tenant(&operator, "slow", json!({ "messages_per_sec": 20 })).await?;
    slow.deploy("counter-slow", "counter", "kind=keyed").await?;
    let started = std::time::Instant::now();
    let calls = (0..100).map(|_| {
        let slow = slow.clone();
        async move { slow.call("counter-slow/k", b"incr").await }
    });
    let mut refused = 0;
    for outcome in futures::future::join_all(calls).await {
        let (status, body) = outcome?;
        if status == 429 {
            assert!(String::from_utf8_lossy(&body).contains("messages_per_sec"));
            refused += 1;
        }
    }
    // A burst of one second's worth, then 20 a second: however slow this
    // machine is, no more than that got through.
    let admitted = 100 - refused;
    let allowed = 20.0 + 20.0 * started.elapsed().as_secs_f64() + 1.0;
    assert!(
        refused > 0 && f64::from(admitted) <= allowed,
        "{admitted} of 100 calls admitted at 20/s within {:?} (at most {allowed:.0})",
        started.elapsed()
    );
    assert!(
        operator
            .metric(
                "anthill_tenant_refusals_total",
                "quota=\"messages_per_sec\",tenant=\"slow\""
            )
            .await?
            >= f64::from(refused)
    );
    Ok(())
}

#[tokio::test]
async fn a_tenant_player_quota_refuses_joins_past_it() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let operator = node.admin();
    let rooms = tenant(&operator, "rooms", json!({ "max_players": 1 })).await?;
    rooms
        .deploy("arena-t", "arena", "kind=keyed&players=open")
        .await?;
    let first = node.player().await?;
    first.login_device("first").await?;
    first.join("arena-t/r1").await?;
    let second = node.player().await?;
    second.login_device("second").await?;
    let err = second.join("arena-t/r1").await.unwrap_err();
    assert!(err.to_string().contains("max_players"), "{err}");
    let (_, own) = rooms.get_json("/v1/tenant").await?;
    assert_eq!(own["usage"]["players"], 1, "{own}");
    Ok(())
}
