//! `/metrics` is valid Prometheus text with the per-module series operators need.

use anthill_tests::Node;

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
