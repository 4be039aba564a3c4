//! The Grafana dashboard and docs/operations.md against what a node serves:
//! every series the dashboard queries exists in `/metrics` after a little of
//! everything (calls, errors, a swap, a room with a player, events), every
//! family `/metrics` serves is documented, and every admin route is too.

use anthill_tests::{Node, eventually};
use anyhow::Context as _;
use std::collections::BTreeSet;
use std::time::Duration;

fn repo_file(path: &str) -> anyhow::Result<String> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&full).with_context(|| format!("reading {}", full.display()))
}

/// Metric names in a PromQL expression (`anthill_…` and `process_…`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts = |p: &str| expr[i..].starts_with(p);
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary && (starts("anthill_") || starts("process_")) {
            let end = expr[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(expr.len(), |n| i + n);
            out.push(expr[i..end].to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "query", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// `# TYPE` families in a scrape.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_dashboard_and_the_docs_match_what_metrics_serves() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    admin
        .deploy("arena", "arena", "kind=keyed&players=open")
        .await?;
    admin.deploy("counter", "counter", "kind=keyed").await?;
    admin.deploy("probe", "probe", "kind=keyed").await?;
    // A trap is immediate; the long deadline keeps a loaded box (the whole
    // suite on two cores) from turning the first call into a deadline.
    admin
        .deploy("misbehave", "misbehave", "deadline_ms=5000")
        .await?;
    admin.call_text("echo", "hello").await?;
    let (status, _) = admin.call("misbehave", b"trap").await?;
    assert_eq!(status, 502, "a trap for the errors and faults panels");
    admin.call_text("counter/a", "incr").await?;
    let (status, body) = admin
        .deploy_bytes(
            "counter",
            std::fs::read(anthill_tests::guest("counter-v2"))?,
            "",
        )
        .await?;
    assert_eq!(status, 200, "a swap for the swap panel: {body}");
    admin.call_text("probe/sub", "subscribe scores alo").await?;
    admin.call_text("probe/pub", "publish scores goal").await?;
    let client = node.player().await?;
    client.login_device("dashboard").await?;
    let room = client.join("arena/dash").await?;
    eventually(Duration::from_secs(5), "room state", || async {
        Ok(client.room_state(room).map(|_| ()))
    })
    .await?;

    let served = families(&admin.metrics().await?);
    let dashboard: serde_json::Value =
        serde_json::from_str(&repo_file("docs/grafana/anthill.json")?)
            .context("docs/grafana/anthill.json is JSON")?;
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(
        queries.len() >= 20,
        "the dashboard has its queries: {}",
        queries.len()
    );
    let mut missing = BTreeSet::new();
    for q in &queries {
        for name in metric_names(q) {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| served.contains(*f)))
                .unwrap_or(&name);
            if !served.contains(family) {
                missing.insert(name.clone());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the dashboard queries series /metrics does not serve: {missing:?}"
    );

    let docs = repo_file("docs/operations.md")?;
    let undocumented: Vec<&String> = served
        .iter()
        .filter(|f| !docs.contains(&format!("`{f}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "families /metrics serves that docs/operations.md does not list: {undocumented:?}"
    );
    Ok(())
}

#[test]
fn every_admin_route_is_documented() -> anyhow::Result<()> {
    let docs = repo_file("docs/operations.md")?;
    let mut routes = Vec::new();
    for file in [
        "runtime/admin/src/lib.rs",
        "runtime/admin/src/tenants.rs",
        "runtime/admin/src/console.rs",
    ] {
        let src = repo_file(file)?;
        for piece in src.split(".route(").skip(1) {
            let path = piece
                .trim_start()
                .strip_prefix('"')
                .and_then(|p| p.split('"').next())
                .context("a route's path")?;
            routes.push(path.to_owned());
        }
    }
    assert!(routes.len() >= 15, "found the routes: {routes:?}");
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| !docs.contains(&format!(" {r}")) && !docs.contains(&format!(" {r}?")))
        .collect();
    assert!(
        missing.is_empty(),
        "routes docs/operations.md does not mention: {missing:?}"
    );
    Ok(())
}
