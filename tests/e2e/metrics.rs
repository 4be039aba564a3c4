//! `/metrics` is valid Prometheus text with the per-module series operators need.

use anthill_tests::Node;
use anyhow::Context as _;

#[tokio::test]
async fn metrics_parse_as_prometheus_text() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    for _ in 0..5 {
        admin.call_text("echo", "m").await?;
    }
    let text = admin.metrics().await?;
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))?;
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get("module") == Some("echo"))
            .map(|s| s.value.clone())
    };
    // init + 5 messages.
    match value("anthill_calls_total") {
        Some(prometheus_parse::Value::Counter(v)) => assert!(v >= 6.0, "calls {v}"),
        other => panic!("anthill_calls_total: {other:?}"),
    }
    match value("anthill_live_actors") {
        Some(prometheus_parse::Value::Gauge(v)) => assert_eq!(v, 1.0),
        other => panic!("anthill_live_actors: {other:?}"),
    }
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "anthill_call_duration_seconds"
                && s.labels.get("module") == Some("echo")),
        "no latency histogram for echo"
    );
    for family in [
        "anthill_traps_total",
        "anthill_interrupts_total",
        "anthill_out_of_memory_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} counter")),
            "{family} missing"
        );
    }
    Ok(())
}

/// One sample's value, or an error naming the series.
fn sample(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    module: Option<&str>,
) -> anyhow::Result<f64> {
    let s = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && module.is_none_or(|m| s.labels.get("module") == Some(m)))
        .ok_or_else(|| anyhow::anyhow!("no series {name} (module {module:?}) in /metrics"))?;
    Ok(match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => anyhow::bail!("{name} is not a counter or gauge"),
    })
}

fn parse(text: &str) -> anyhow::Result<prometheus_parse::Scrape> {
    Ok(prometheus_parse::Scrape::parse(
        text.lines().map(|l| Ok(l.to_owned())),
    )?)
}

#[tokio::test]
async fn process_build_guest_and_backlog_series_are_there_and_leave_with_their_module()
-> anyhow::Result<()> {
    // The subscriber's first failure is retried only after a minute: its
    // cursor stays on that event, so everything published after waits.
    let node =
        Node::start_with_config("[events]\nmax_attempts = 100\nretry_base_ms = 60000\n").await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    admin.deploy("probe", "probe", "kind=keyed").await?;
    for _ in 0..5 {
        admin.call_text("echo", "m").await?;
    }
    admin.call_text("probe/sub", "subscribe scores alo").await?;
    admin.call_text("probe/sub", "fail 1000").await?;
    for i in 0..3 {
        admin
            .call_text("probe/pub", &format!("publish scores e{i}"))
            .await?;
    }
    let text = admin.metrics().await?;
    let scrape = parse(&text)?;

    assert!(sample(&scrape, "process_resident_memory_bytes", None)? > 1e6);
    assert!(sample(&scrape, "process_open_fds", None)? > 0.0);
    // Whole seconds: a node this young may not have used one yet.
    assert!(sample(&scrape, "process_cpu_seconds_total", None)? >= 0.0);
    let info = scrape
        .samples
        .iter()
        .find(|s| s.metric == "anthill_build_info")
        .context("anthill_build_info")?;
    assert_eq!(
        info.labels.get("version"),
        Some(env!("CARGO_PKG_VERSION")),
        "the node and the tests are one workspace version"
    );
    assert!(sample(&scrape, "anthill_store_bytes", None)? > 0.0);
    assert!(sample(&scrape, "anthill_guest_cpu_seconds_total", Some("echo"))? > 0.0);
    let memory = sample(&scrape, "anthill_guest_memory_bytes", Some("echo"))?;
    assert!(
        memory >= 65536.0,
        "one live echo holds at least a wasm page: {memory}"
    );
    assert_eq!(sample(&scrape, "anthill_mailbox_depth", Some("echo"))?, 0.0);
    assert_eq!(sample(&scrape, "anthill_event_backlog", Some("echo"))?, 0.0);
    assert_eq!(
        sample(&scrape, "anthill_event_backlog", Some("probe"))?,
        3.0,
        "three events wait behind the failed one"
    );
    assert_eq!(sample(&scrape, "anthill_dead_letters", Some("probe"))?, 0.0);

    let (status, body) = admin.delete("/v1/modules/probe").await?;
    anyhow::ensure!(status == 200 || status == 204, "undeploy: {status} {body}");
    let scrape = parse(&admin.metrics().await?)?;
    let left: Vec<&str> = scrape
        .samples
        .iter()
        .filter(|s| s.labels.get("module") == Some("probe"))
        .map(|s| s.metric.as_str())
        .collect();
    assert!(left.is_empty(), "series of an undeployed module: {left:?}");
    assert!(sample(&scrape, "anthill_calls_total", Some("echo"))? >= 6.0);
    Ok(())
}
