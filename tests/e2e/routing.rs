//! Calls and sends between modules, timeouts, and call cycles; calls from
//! outside any guest that run on the caller's task when the actor is idle.

use anthill_tests::Node;

async fn node() -> anyhow::Result<Node> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("chat", "chat", "kind=keyed").await?;
    admin.deploy("chat-log", "chat-log", "").await?;
    admin
        .deploy("probe", "probe", "kind=keyed&deadline_ms=2000")
        .await?;
    Ok(node)
}

#[tokio::test]
async fn samples_call_and_send_each_other() -> anyhow::Result<()> {
    let node = node().await?;
    let admin = node.admin();
    // chat-log subscribes when it activates; the presence `send` of a join does
    // not wait for that, so a `say` right after could publish before anyone
    // listens. A call waits for the activation.
    admin.call_text("chat-log", "stats").await?;
    // join sends presence to chat-log (send); say publishes; history calls chat-log.
    assert_eq!(
        admin.call_text("chat/lobby", "join ana").await?,
        "ok 1 members"
    );
    assert_eq!(
        admin.call_text("chat/lobby", "join bo").await?,
        "ok 2 members"
    );
    admin.call_text("chat/lobby", "say ana hello there").await?;
    admin.call_text("chat/lobby", "say bo hi ana").await?;
    let history = anthill_tests::eventually(
        std::time::Duration::from_secs(5),
        "chat history",
        || async {
            let h: serde_json::Value =
                serde_json::from_str(&admin.call_text("chat/lobby", "history").await?)?;
            Ok((h.as_array().map(Vec::len) == Some(2)).then_some(h))
        },
    )
    .await?;
    assert_eq!(history[0]["user"], "ana");
    assert_eq!(history[0]["text"], "hello there");
    assert_eq!(history[1]["text"], "hi ana");
    let stats: serde_json::Value =
        serde_json::from_str(&admin.call_text("chat-log", "stats").await?)?;
    assert_eq!(stats["joins"], 2, "presence arrived by send: {stats}");

    // A module's refusal travels back typed through a call.
    let (status, body) = admin.call("chat/lobby", b"say carol who am i").await?;
    assert_eq!(status, 422);
    assert!(String::from_utf8_lossy(&body).contains("carol is not in room lobby"));

    // Send: order is kept per sender and receiver.
    for i in 0..20 {
        admin
            .call_text("probe/a", &format!("send probe/b m{i}"))
            .await?;
    }
    let state =
        anthill_tests::eventually(std::time::Duration::from_secs(5), "20 sends", || async {
            let s = admin.probe_state("probe/b").await?;
            Ok((s["received"].as_array().map(Vec::len) == Some(20)).then_some(s))
        })
        .await?;
    let got: Vec<&str> = state["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..20).map(|i| format!("actor:probe/a m{i}")).collect();
    assert_eq!(got, want);
    Ok(())
}

#[tokio::test]
async fn a_call_that_gets_no_reply_in_time_times_out() -> anyhow::Result<()> {
    let node = node().await?;
    let admin = node.admin();
    // b spins 1.5 s; a gives it 200 ms.
    let started = std::time::Instant::now();
    let (status, body) = admin.call("probe/a", b"call probe/b 200 busy 1500").await?;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("timeout"), "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1400),
        "a waited for b to finish"
    );
    // With enough time the same call works.
    assert_eq!(
        admin
            .call_text("probe/a", "call probe/b 5000 busy 10")
            .await?,
        "done"
    );
    // A call to nothing is `not-found`.
    let (status, body) = admin.call("probe/a", b"call nosuch 200 hi").await?;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    Ok(())
}

#[tokio::test]
async fn a_call_cycle_fails_at_once_and_names_the_cycle() -> anyhow::Result<()> {
    let node = node().await?;
    let admin = node.admin();
    // a → b → a while a waits: refused immediately, not after a timeout.
    let started = std::time::Instant::now();
    let (status, body) = admin
        .call("probe/a", b"call probe/b 10000 call probe/a 10000 state")
        .await?;
    let body = String::from_utf8_lossy(&body);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "the cycle waited"
    );
    // b's refusal comes back up through a as what it is: a cycle (508), not
    // a module's own rejection.
    assert_eq!(status, 508, "{body}");
    assert!(body.contains("\"call-cycle\""), "{body}");
    assert!(
        body.contains("call cycle: probe/a → probe/b → probe/a"),
        "{body}"
    );
    // Longer cycles too, and a self-call.
    let (_, body) = admin
        .call(
            "probe/a",
            b"call probe/b 10000 call probe/c 10000 call probe/a 10000 x",
        )
        .await?;
    assert!(String::from_utf8_lossy(&body).contains("probe/a → probe/b → probe/c → probe/a"));
    let (_, body) = admin.call("probe/a", b"call probe/a 10000 x").await?;
    assert!(String::from_utf8_lossy(&body).contains("call cycle: probe/a → probe/a"));
    // Everyone is still responsive.
    assert_eq!(admin.call_text("probe/a", "ping").await?, "ping");
    assert_eq!(admin.call_text("probe/b", "ping").await?, "ping");
    Ok(())
}

/// The `received` list of a probe's state.
async fn received(admin: &anthill_tests::Admin, target: &str) -> anyhow::Result<Vec<String>> {
    Ok(admin.probe_state(target).await?["received"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect())
}

#[tokio::test]
async fn an_inline_call_outlives_a_caller_that_gave_up() -> anyhow::Result<()> {
    let node = node().await?;
    let admin = node.admin();
    admin.call_text("probe/a", "hello").await?;
    // a is idle, so this call starts on the admin request's task; it waits
    // on b (busy 400 ms), the operator gives up after 100 ms.
    let started = std::time::Instant::now();
    let (status, body) = admin
        .call_within("probe/a", b"call probe/b 5000 busy 400", 100)
        .await?;
    assert_eq!(status, 504, "{}", String::from_utf8_lossy(&body));
    assert!(started.elapsed() < std::time::Duration::from_millis(390));
    // The guest call was not dropped half-run: it finished on its own task,
    // a is the same instance with its state, and nothing trapped.
    assert_eq!(admin.call_text("probe/a", "after").await?, "after");
    assert_eq!(
        received(&admin, "probe/a").await?,
        ["admin hello", "admin after"]
    );
    assert_eq!(
        admin
            .metric("anthill_traps_total", "module=\"probe\"")
            .await?,
        0.0
    );
    Ok(())
}
