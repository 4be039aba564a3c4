//! What modules print reaches operators: stdout and stderr of Rust, JavaScript
//! and Python guests (and `host.log`) in `anthill logs`, followed with `-f`,
//! rate-limited with the drops counted.

use anthill_tests::{Node, anthill_bin, eventually};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const ROOMY: &str = "kind=keyed&deadline_ms=2000";

#[tokio::test]
async fn rust_js_and_python_output_appears_in_anthill_logs() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    // Roomy deadlines: the first call activates each actor, and under the
    // full suite's load a 100 ms first print once ran out.
    admin.deploy("probe", "probe", ROOMY).await?;
    admin.deploy("counter-js", "counter-js", ROOMY).await?;
    admin.deploy("counter-py", "counter-py", ROOMY).await?;

    admin.call_text("probe/p1", "print hello from rust").await?;
    admin
        .call_text("probe/p1", "eprint trouble in rust")
        .await?;
    for module in ["counter-js", "counter-py"] {
        admin.call_text(&format!("{module}/k1"), "incr").await?;
        let (status, _) = admin.call(&format!("{module}/k1"), b"bogus").await?;
        assert_eq!(status, 422);
    }

    let (ok, out, err) = node.cli(&["logs"])?;
    assert!(ok, "{err}");
    for expected in [
        "probe/p1 v1 stdout: hello from rust",
        "probe/p1 v1 stderr: trouble in rust",
        "counter-js/k1 v1 stdout: counter-js k1 started",
        "counter-js/k1 v1 stderr: counter-js: unknown command `bogus`",
        "counter-py/k1 v1 stdout: counter-py k1 started",
        "counter-py/k1 v1 stderr: counter-py: unknown command `bogus`",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }

    // One module, one key, as JSON lines.
    let (ok, out, err) = node.cli(&["logs", "probe/p1", "--json"])?;
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines
            .iter()
            .all(|l| l["module"] == "probe" && l["key"] == "p1")
    );
    assert_eq!(lines[0]["stream"], "stdout");

    // --since: nothing was written in the future.
    let (ok, out, _) = node.cli(&["logs", "probe", "--since", "0s"])?;
    assert!(ok);
    assert!(!out.contains("hello from rust"), "{out}");

    // The node's own log carries them too, tagged with module and key.
    let log = node.output();
    assert!(
        log.contains("hello from rust") && log.contains("counter-py k1 started"),
        "{log}"
    );

    // Undeploy forgets the module's lines.
    node.cli(&["undeploy", "counter-js", "--yes"])?;
    let (_, out, _) = node.cli(&["logs"])?;
    assert!(!out.contains("counter-js"), "{out}");
    Ok(())
}

#[tokio::test]
async fn logs_follow_prints_lines_as_they_are_written() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    // A deadline of 2 s, not the default 100 ms: this test is about the
    // follower, and on a CI box busy compiling guests a call to a fresh
    // actor once took longer than 100 ms and was stopped.
    admin
        .deploy("probe", "probe", "kind=keyed&deadline_ms=2000")
        .await?;
    let mut follower = Command::new(anthill_bin())
        .args(["logs", "-f", "probe", "--admin", &node.admin_url])
        .env("ANTHILL_TOKEN", &node.token)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = follower.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The follower is waiting at the node: each new line arrives at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    admin.call_text("probe/a", "print first").await?;
    admin.call_text("probe/b", "print second").await?;
    let got: Result<Vec<String>, _> = (0..2)
        .map(|_| rx.recv_timeout(Duration::from_secs(15)))
        .collect();
    // Stopped before any assertion, so a failure leaves no follower behind.
    let _ = follower.kill();
    let _ = follower.wait();
    let got = got?;
    assert!(got[0].ends_with("probe/a v1 stdout: first"), "{got:?}");
    assert!(got[1].ends_with("probe/b v1 stdout: second"), "{got:?}");
    Ok(())
}

#[tokio::test]
async fn a_flood_is_rate_limited_and_counted() -> anyhow::Result<()> {
    let node = Node::start_with_config("[logs]\nlines_per_second = 50\nburst = 100\n").await?;
    let admin = node.admin();
    // 2,000 prints in one call: under a loaded suite on 2 cores that can
    // take longer than the default 100 ms deadline, which is not under test.
    admin
        .deploy("probe", "probe", "kind=keyed&deadline_ms=5000")
        .await?;
    admin.call_text("probe/f", "spew 2000").await?;
    let dropped = admin
        .metric("anthill_guest_log_lines_dropped_total", "module=\"probe\"")
        .await?;
    assert!(
        (1800.0..=1900.0).contains(&dropped),
        "≈1,900 of 2,000 lines dropped, not {dropped}"
    );
    let kept = admin
        .metric(
            "anthill_guest_log_lines_total",
            "module=\"probe\",stream=\"stdout\"",
        )
        .await?;
    assert_eq!(kept + dropped, 2000.0, "every line is kept or counted");
    // The next line that gets through says how many were lost before it.
    let marker = eventually(Duration::from_secs(10), "the drop marker", || async {
        admin.call_text("probe/f", "print after the flood").await?;
        let (_, out, _) = node.cli(&["logs", "probe", "--json"])?;
        Ok(out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["stream"] == "dropped"))
    })
    .await?;
    let text = marker["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("lines dropped") && text.contains("logs.lines_per_second = 50"),
        "{text}"
    );
    // The node is fine: the flood cost the module its lines, nothing else.
    assert_eq!(
        admin.call_text("probe/g", "print still here").await?,
        "printed"
    );
    Ok(())
}
