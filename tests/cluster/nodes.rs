//! The cluster on NATS JetStream, with real nats-server processes (the pinned
//! binary) on loopback: joining and its refusals, membership as every node
//! sees it, and the replicated registry (deploy once, every node serves it;
//! swaps, canaries, promotes, rollbacks and undeploys follow everywhere).

use anthill_tests::nats::NatsCluster;
use anthill_tests::{Node, eventually};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

async fn clustered(nats: &NatsCluster, name: &str) -> anyhow::Result<Node> {
    Node::start_clustered(nats, name).await
}

/// Nodes n1, n2 and n3 on `nats`.
async fn three(nats: &NatsCluster) -> anyhow::Result<[Node; 3]> {
    let nodes = Node::start_cluster_of(nats, 3).await?;
    nodes.try_into().map_err(|_| anyhow::anyhow!("three nodes"))
}

/// The error a node prints when it refuses to start.
async fn refusal(extra: &[&str]) -> String {
    match Node::start_with(extra).await {
        Ok(node) => panic!("the node started:\n{}", node.output()),
        Err(e) => format!("{e:#}"),
    }
}

async fn nodes_seen_by(node: &Node) -> anyhow::Result<Vec<Value>> {
    let (status, body) = node.admin().get_json("/v1/cluster/nodes").await?;
    anyhow::ensure!(status == 200, "GET /v1/cluster/nodes: {status} {body}");
    Ok(body["nodes"].as_array().cloned().unwrap_or_default())
}

fn state_of(nodes: &[Value], name: &str) -> Option<String> {
    nodes
        .iter()
        .find(|n| n["name"] == name)
        .and_then(|n| n["state"].as_str().map(str::to_owned))
}

/// Live actors of `module` on `node`, by key.
async fn live_keys(node: &Node, module: &str) -> anyhow::Result<Vec<String>> {
    node.admin().live_keys(module).await
}

/// (stable version, canary version) of `module` on `node`; None if absent.
async fn served(node: &Node, module: &str) -> anyhow::Result<Option<(u64, Option<u64>)>> {
    let (status, body) = node
        .admin()
        .get_json(&format!("/v1/modules/{module}"))
        .await?;
    Ok(match status {
        404 => None,
        200 => Some((
            body["version"].as_u64().expect("a version"),
            body["canary"]["version"].as_u64(),
        )),
        other => anyhow::bail!("GET /v1/modules/{module}: {other} {body}"),
    })
}

#[tokio::test]
async fn a_lone_node_has_no_cluster() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let (status, body) = node.admin().get_json("/v1/cluster/nodes").await?;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not-clustered");
    assert!(body["detail"].as_str().unwrap().contains("--cluster"));
    let (ok, _, err) = node.cli(&["nodes"])?;
    assert!(!ok && err.contains("not-clustered"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_node_refuses_nats_without_jetstream() -> anyhow::Result<()> {
    let nats = NatsCluster::without_jetstream().await?;
    let err = refusal(&["--cluster", &nats.urls(), "--node", "n1"]).await;
    assert!(
        err.contains("no JetStream") && err.contains("-js"),
        "the refusal names JetStream and the fix: {err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_node_refuses_unreachable_nats_and_a_missing_name() -> anyhow::Result<()> {
    let port = anthill_tests::nats::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let err = refusal(&["--cluster", &url, "--node", "n1"]).await;
    assert!(
        err.contains("cannot connect to NATS") && err.contains(&url),
        "{err}"
    );
    let err = refusal(&["--cluster", &url]).await;
    assert!(err.contains("--node"), "{err}");
    Ok(())
}

/// A server that speaks just enough of the NATS protocol to say it is 2.9.10.
/// (Multi-threaded: starting a node blocks the test's thread while it waits
/// for the banner, and the fake server must answer meanwhile.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_nats_server_older_than_2_12() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("nats://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let info = json!({
                    "server_id": "OLD", "server_name": "old-nats", "version": "2.9.10",
                    "proto": 1, "headers": true, "max_payload": 1048576, "jetstream": true,
                    "host": "127.0.0.1", "port": 4222,
                });
                let _ = write.write_all(format!("INFO {info}\r\n").as_bytes()).await;
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.starts_with("PING") {
                        let _ = write.write_all(b"PONG\r\n").await;
                    }
                }
            });
        }
    });
    let err = refusal(&["--cluster", &url, "--node", "n1"]).await;
    assert!(
        err.contains("2.9.10") && err.contains("2.12 or newer"),
        "the refusal names the version and the minimum: {err}"
    );
    Ok(())
}

#[tokio::test]
async fn every_node_lists_every_node_and_a_killed_one_goes_suspect_then_dead() -> anyhow::Result<()>
{
    let nats = NatsCluster::start(3).await?;
    // A wide suspect window (1.5 s to 6 s of silence), so that a poll slowed
    // by a loaded machine still sees it.
    const SLOW_DEATH: &str = "[cluster]\ndead_after_ms = 6000\n";
    let n1 = Node::start_clustered_with_config(&nats, "n1", SLOW_DEATH).await?;
    let n2 = Node::start_clustered_with_config(&nats, "n2", SLOW_DEATH).await?;
    let n3 = Node::start_clustered_with_config(&nats, "n3", SLOW_DEATH).await?;
    for seen_by in [&n1, &n2, &n3] {
        let nodes = eventually(Duration::from_secs(10), "three alive nodes", || async {
            let nodes = nodes_seen_by(seen_by).await?;
            let alive = nodes.iter().filter(|n| n["state"] == "alive").count();
            Ok((alive == 3).then_some(nodes))
        })
        .await?;
        for (node, name) in [(&n1, "n1"), (&n2, "n2"), (&n3, "n3")] {
            let entry = nodes.iter().find(|n| n["name"] == name).expect("listed");
            assert_eq!(entry["admin"], node.admin_url.as_str());
            assert_eq!(
                entry["players_addr"],
                node.quic.expect("a gateway").to_string().as_str()
            );
        }
    }
    // The CLI shows the same list.
    let (ok, out, err) = n2.cli(&["nodes"])?;
    assert!(ok, "{err}");
    for name in ["n1", "n2", "n3"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(name) && l.contains("alive")),
            "{out}"
        );
    }
    // A second node may not take a live node's name.
    let err = refusal(&["--cluster", &nats.urls(), "--node", "n2"]).await;
    assert!(err.contains("`n2` is taken by a live node"), "{err}");

    let _ = n3.kill9();
    eventually(Duration::from_secs(5), "n3 suspect", || async {
        Ok(
            (state_of(&nodes_seen_by(&n1).await?, "n3").as_deref() == Some("suspect"))
                .then_some(()),
        )
    })
    .await?;
    eventually(Duration::from_secs(15), "n3 dead", || async {
        Ok((state_of(&nodes_seen_by(&n2).await?, "n3").as_deref() == Some("dead")).then_some(()))
    })
    .await?;
    // A node that stops on purpose leaves the list.
    n2.stop()?;
    eventually(Duration::from_secs(5), "n2 gone", || async {
        Ok(state_of(&nodes_seen_by(&n1).await?, "n2")
            .is_none()
            .then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_deploy_on_one_node_is_served_everywhere_and_every_change_follows() -> anyhow::Result<()>
{
    let nats = NatsCluster::start(3).await?;
    let [n1, n2, n3] = three(&nats).await?;
    let nodes = [&n1, &n2, &n3];

    let body = n1
        .admin()
        .deploy("counter", "counter", "kind=keyed")
        .await?;
    let mut ready: Vec<String> = serde_json::from_value(body["rollout"]["ready"].clone())?;
    ready.sort();
    assert_eq!(ready, ["n1", "n2", "n3"], "the deploy answer: {body}");
    // One actor behind every node: its value continues whichever node is asked.
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(served(n, "counter").await?, Some((1, None)));
        assert_eq!(
            n.admin().call_text("counter/a", "incr").await?,
            (i + 1).to_string()
        );
    }

    // A hot swap made on n2 moves every node, state carried on each.
    let body = n2.admin().deploy("counter", "counter-v2", "").await?;
    assert_eq!(
        body["rollout"]["ready"].as_array().map(Vec::len),
        Some(3),
        "{body}"
    );
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(served(n, "counter").await?, Some((2, None)));
        assert_eq!(
            n.admin().call_text("counter/a", "incr").await?,
            format!("v2:{}", i + 4)
        );
    }

    // A canary from n3: every node routes the same keys to it.
    n3.admin().deploy("counter", "counter", "canary=40").await?;
    for n in nodes {
        assert_eq!(served(n, "counter").await?, Some((2, Some(3))));
    }
    let mut canary_keys = Vec::new();
    for n in nodes {
        let mut on_canary = Vec::new();
        for k in 0..40 {
            let reply = n
                .admin()
                .call_text(&format!("counter/k{k}"), "incr")
                .await?;
            if !reply.starts_with("v2:") {
                on_canary.push(k);
            }
        }
        canary_keys.push(on_canary);
    }
    assert!(!canary_keys[0].is_empty(), "some keys run the canary");
    assert_eq!(
        canary_keys[0], canary_keys[1],
        "n1 and n2 agree on canary keys"
    );
    assert_eq!(
        canary_keys[0], canary_keys[2],
        "n1 and n3 agree on canary keys"
    );

    // Promote on n1, roll back on n2: every node follows each.
    let (status, body) = n1.admin().post("/v1/modules/counter/promote").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["rollout"]["ready"].as_array().map(Vec::len),
        Some(3),
        "{body}"
    );
    for n in nodes {
        assert_eq!(served(n, "counter").await?, Some((3, None)));
    }
    let (status, body) = n2.admin().post("/v1/modules/counter/rollback").await?;
    assert_eq!(status, 200, "{body}");
    for n in nodes {
        assert_eq!(served(n, "counter").await?, Some((2, None)));
    }

    // A node that joins later serves what is deployed from its first request.
    let n4 = clustered(&nats, "n4").await?;
    assert_eq!(served(&n4, "counter").await?, Some((2, None)));
    assert!(
        n4.admin()
            .call_text("counter/z", "incr")
            .await?
            .starts_with("v2:")
    );

    // Undeploy from n3: gone everywhere, and the answer says so.
    let (status, body) = n3.admin().delete("/v1/modules/counter").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["rollout"]["ready"].as_array().map(Vec::len),
        Some(4),
        "{body}"
    );
    for n in [&n1, &n2, &n3, &n4] {
        assert_eq!(served(n, "counter").await?, None);
    }
    Ok(())
}

/// A replica that lags answers a KV `get` (a direct get) with what it
/// holds. Here that replica is made to order: the registry's stream has one
/// replica, and a mirror of it on another server holds none of its records
/// and serves direct gets. A node connected to that server only is answered
/// by the mirror, its server's only member of the direct-get group. Were the
/// records a node follows read with a direct get, it would find `counter`
/// never deployed and not serve it (or, serving it, undeploy it at its next
/// listing: a cluster demo once lost `arena` on a node that way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_replica_never_makes_a_node_drop_a_module_it_serves() -> anyhow::Result<()> {
    use async_nats::jetstream::{self, stream};
    let nats = NatsCluster::start(3).await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("anthill.toml");
    std::fs::write(&config, "[cluster]\nreplicas = 1\n")?;
    let config = config.to_str().expect("a utf-8 path");
    let n1 = Node::start_with(&[
        "--config",
        config,
        "--cluster",
        &nats.urls(),
        "--node",
        "n1",
    ])
    .await?;
    // Four modules: a node lists each every 5 s, so each listing is four
    // direct gets a stale answer could mislead.
    let modules = ["counter", "counter-b", "counter-c", "counter-d"];
    for m in modules {
        n1.admin().deploy(m, "counter", "kind=keyed").await?;
    }

    // The mirror, on a server other than the stream's: created again until
    // NATS places it there (its placement is NATS's choice).
    let js = jetstream::new(async_nats::connect(nats.url(0)).await?);
    let leader_of = async |name: &str| -> anyhow::Result<String> {
        let mut s = js.get_stream(name).await?;
        let info = s.info().await?;
        info.cluster
            .as_ref()
            .and_then(|c| c.leader.clone())
            .ok_or_else(|| anyhow::anyhow!("stream {name} has no leader"))
    };
    let records_on = leader_of("KV_anthill-modules").await?;
    let mut mirror_on = records_on.clone();
    for _ in 0..20 {
        let _ = js.delete_stream("lagging-modules").await;
        js.create_stream(stream::Config {
            name: "lagging-modules".into(),
            mirror: Some(stream::Source {
                name: "KV_anthill-modules".into(),
                filter_subject: Some("$KV.anthill-modules.lag-probe".into()),
                ..Default::default()
            }),
            mirror_direct: true,
            allow_direct: true,
            num_replicas: 1,
            ..Default::default()
        })
        .await?;
        mirror_on = leader_of("lagging-modules").await?;
        if mirror_on != records_on {
            break;
        }
    }
    anyhow::ensure!(
        mirror_on != records_on,
        "NATS kept placing the mirror beside the records ({records_on})"
    );
    // A mirror serves direct gets once it has caught up with its source,
    // so it is given one record to catch up with.
    let registry = js.get_key_value("anthill-modules").await?;
    registry.put("lag-probe", "not a module".into()).await?;
    registry.delete("lag-probe").await?;
    let server: usize = mirror_on.trim_start_matches('n').parse()?;
    let there = jetstream::new(async_nats::connect(nats.url(server)).await?)
        .get_key_value("anthill-modules")
        .await?;
    // The premise: through that server, a direct get at times finds no
    // `counter` (the mirror shares the group with the stream's replica).
    // It answers once it has caught up with the probe.
    let (mut stale, mut asked) = (0, 0);
    while stale < 3 && asked < 300 {
        asked += 1;
        if there.get("counter").await?.is_none() {
            stale += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        stale >= 3,
        "direct gets through {mirror_on} found `counter` {asked} times: the test shows nothing"
    );

    let n2 = Node::start_with(&[
        "--config",
        config,
        "--cluster",
        &nats.url(server),
        "--node",
        "n2",
    ])
    .await?;
    // Every node lists the registry every 5 s: two listings, and more.
    let until = std::time::Instant::now() + Duration::from_secs(12);
    while std::time::Instant::now() < until {
        for m in modules {
            assert_eq!(
                served(&n2, m).await?,
                Some((1, None)),
                "node n2 (joined through NATS server {mirror_on}, whose direct gets can be stale) does not serve `{m}`"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(n2.admin().call_text("counter/a", "incr").await?, "1");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_made_on_one_node_hold_on_every_node() -> anyhow::Result<()> {
    let nats = NatsCluster::start(1).await?;
    let n1 = clustered(&nats, "n1").await?;
    let n2 = clustered(&nats, "n2").await?;
    let resp = n1
        .admin()
        .http
        .post(n1.admin().url("/v1/tenants"))
        .bearer_auth(&n1.token)
        .json(&json!({ "name": "acme", "quotas": {} }))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 201);
    let token = resp.json::<Value>().await?["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    // The tenant's token works on n2 as well, and sees only its own.
    let acme_on_n2 = anthill_tests::Admin::new(&n2.admin_url, &token);
    let (status, body) = eventually(Duration::from_secs(5), "acme on n2", || async {
        let (status, body) = acme_on_n2.get_json("/v1/tenant").await?;
        Ok((status == 200).then_some((status, body)))
    })
    .await?;
    assert_eq!(
        (status, body["name"].as_str()),
        (200, Some("acme")),
        "{body}"
    );
    // Its module, deployed through n1, runs on both nodes under it.
    let body = n1.admin().deploy("echo", "echo", "tenant=acme").await?;
    let mut ready: Vec<String> = serde_json::from_value(body["rollout"]["ready"].clone())?;
    ready.sort();
    assert_eq!(ready, ["n1", "n2"], "{body}");
    let (_, info) = n2.admin().get_json("/v1/modules/echo").await?;
    assert_eq!(info["tenant"], "acme");
    assert_eq!(acme_on_n2.call_text("echo", "hi").await?, "hi");
    // A quota set on n2 holds on n1.
    let resp = n2
        .admin()
        .http
        .put(n2.admin().url("/v1/tenants/acme/quotas"))
        .bearer_auth(&n2.token)
        .json(&json!({ "max_actors": 7 }))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().await?);
    eventually(Duration::from_secs(5), "the quota on n1", || async {
        let (_, t) = n1.admin().get_json("/v1/tenants/acme").await?;
        Ok((t["quotas"]["max_actors"] == 7).then_some(()))
    })
    .await?;
    // Removed on n2 (after its module): gone on n1, its token refused there.
    let (status, _) = n2.admin().delete("/v1/modules/echo").await?;
    assert_eq!(status, 200);
    let (status, body) = n2.admin().delete("/v1/tenants/acme").await?;
    assert!(status == 204 || status == 200, "{status} {body}");
    eventually(Duration::from_secs(5), "acme gone from n1", || async {
        let (status, _) = n1.admin().get_json("/v1/tenants/acme").await?;
        Ok((status == 404).then_some(()))
    })
    .await?;
    let acme_on_n1 = anthill_tests::Admin::new(&n1.admin_url, &token);
    let (status, _) = acme_on_n1.get_json("/v1/tenant").await?;
    assert_eq!(status, 401);
    Ok(())
}

#[tokio::test]
async fn one_keyed_actor_answers_through_every_node_and_its_value_continues() -> anyhow::Result<()>
{
    let nats = NatsCluster::start(3).await?;
    let [n1, n2, n3] = three(&nats).await?;
    let nodes = [&n1, &n2, &n3];
    n1.admin()
        .deploy("counter", "counter", "kind=keyed")
        .await?;
    for i in 0..30 {
        let reply = nodes[i % 3]
            .admin()
            .call_text("counter/alice", "incr")
            .await?;
        assert_eq!(
            reply,
            (i + 1).to_string(),
            "call {i} through n{}",
            i % 3 + 1
        );
    }
    let mut live = Vec::new();
    for n in nodes {
        live.extend(live_keys(n, "counter").await?);
    }
    assert_eq!(live, ["alice"], "one live actor in the whole cluster");
    // Its owner served the twenty calls the two other nodes forwarded.
    let mut owner = None;
    for (i, n) in nodes.iter().enumerate() {
        if live_keys(n, "counter").await? == ["alice"] {
            owner = Some(i);
        }
    }
    let owner = owner.expect("one node holds alice");
    for (i, n) in nodes.iter().enumerate() {
        let forwarded = n
            .admin()
            .metric("anthill_cluster_forwarded_total", "kind=\"call\"")
            .await?;
        if i != owner {
            assert!(forwarded >= 10.0, "n{} forwarded {forwarded} calls", i + 1);
        }
    }
    let received = nodes[owner]
        .admin()
        .metric("anthill_cluster_received_total", "kind=\"call\"")
        .await?;
    assert!(
        received >= 20.0,
        "n{} received {received} forwarded calls",
        owner + 1
    );
    assert!(
        nodes[owner]
            .admin()
            .metric("anthill_cluster_partitions_owned", "")
            .await?
            >= 1.0
    );
    assert_eq!(
        n1.admin().metric("anthill_cluster_in_touch", "").await?,
        1.0
    );
    // Errors keep their kind across nodes: the module's refusal is still 422.
    for n in nodes {
        let (status, body) = n.admin().call("counter/alice", b"decr").await?;
        assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_first_messages_activate_each_key_exactly_once() -> anyhow::Result<()> {
    let nats = NatsCluster::start(3).await?;
    let [n1, n2, n3] = three(&nats).await?;
    let admins = [n1.admin(), n2.admin(), n3.admin()];
    admins[0].deploy("counter", "counter", "kind=keyed").await?;
    const KEYS: usize = 100;
    const PER_KEY: usize = 10;
    // 1,000 first messages at once, each key's ten spread over all three nodes.
    let calls = (0..KEYS * PER_KEY).map(|i| {
        let admin = admins[i % 3].clone();
        let key = format!("counter/race{}", i % KEYS);
        async move { admin.call(&key, b"incr").await }
    });
    let outcomes = futures::future::join_all(calls).await;
    let mut failed = Vec::new();
    for o in outcomes {
        let (status, body) = o?;
        if status != 200 {
            failed.push(format!("{status} {}", String::from_utf8_lossy(&body)));
        }
    }
    assert!(
        failed.is_empty(),
        "{} calls failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    // Two activations of a key would each count part of its ten.
    for k in 0..KEYS {
        let value = admins[k % 3]
            .call_text(&format!("counter/race{k}"), "get")
            .await?;
        assert_eq!(value, PER_KEY.to_string(), "race{k}");
    }
    let mut live = Vec::new();
    for n in [&n1, &n2, &n3] {
        live.extend(live_keys(n, "counter").await?);
    }
    live.sort();
    let before = live.len();
    live.dedup();
    assert_eq!(before, live.len(), "no key is live on two nodes");
    assert_eq!(live.len(), KEYS, "every key live exactly once");
    Ok(())
}

#[tokio::test]
async fn a_node_cut_off_from_nats_stops_serving_until_it_is_back() -> anyhow::Result<()> {
    let mut nats = NatsCluster::start(1).await?;
    let n1 = clustered(&nats, "n1").await?;
    let admin = n1.admin();
    admin.deploy("counter", "counter", "kind=keyed").await?;
    assert_eq!(admin.call_text("counter/x", "incr").await?, "1");
    let health = || async {
        let r = admin.http.get(admin.url("/healthz")).send().await?;
        anyhow::Ok((r.status().as_u16(), r.text().await?))
    };
    assert_eq!(health().await?.0, 200);

    nats.kill9(0);
    let (_, why) = eventually(Duration::from_secs(10), "/healthz failing", || async {
        let (status, text) = health().await?;
        Ok((status == 503).then_some(((), text)))
    })
    .await?;
    assert!(why.contains("NATS has not accepted a heartbeat"), "{why}");
    // It stops acknowledging rather than serving on alone.
    let (status, body) = admin.call("counter/x", b"incr").await?;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("has not reached NATS"), "{text}");

    nats.restart(0).await?;
    let reply = eventually(
        Duration::from_secs(20),
        "counter/x served again",
        || async {
            let (status, body) = admin.call("counter/x", b"incr").await?;
            Ok((status == 200).then(|| String::from_utf8_lossy(&body).into_owned()))
        },
    )
    .await?;
    assert_eq!(reply, "2", "nothing was counted while it was cut off");
    assert_eq!(health().await?.0, 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_wide_hot_swap_under_load_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let nats = NatsCluster::start(3).await?;
    let [n1, n2, n3] = three(&nats).await?;
    let nodes = [&n1, &n2, &n3];
    n1.admin()
        .deploy("counter", "counter", "kind=keyed")
        .await?;
    const KEYS: usize = 60;
    let stop = Arc::new(AtomicBool::new(false));
    // One caller per node, each over every key: most calls cross nodes.
    let callers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(c, n)| {
            let (admin, stop) = (n.admin(), stop.clone());
            tokio::spawn(async move {
                let mut acked = vec![0u64; KEYS];
                let mut i = c * 17;
                while !stop.load(Ordering::Relaxed) {
                    let key = i % KEYS;
                    i += 1;
                    let (status, body) = admin.call(&format!("counter/k{key}"), b"incr").await?;
                    anyhow::ensure!(
                        status == 200,
                        "caller {c}: counter/k{key}: {status} {}",
                        String::from_utf8_lossy(&body)
                    );
                    acked[key] += 1;
                }
                Ok::<_, anyhow::Error>(acked)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = n2.admin().deploy("counter", "counter-v2", "").await?;
    assert_eq!(
        body["rollout"]["ready"].as_array().map(Vec::len),
        Some(3),
        "{body}"
    );
    for n in nodes {
        assert_eq!(
            served(n, "counter").await?,
            Some((2, None)),
            "every node on v2"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = n3.admin().post("/v1/modules/counter/rollback").await?;
    assert_eq!(status, 200, "{body}");
    for n in nodes {
        assert_eq!(
            served(n, "counter").await?,
            Some((1, None)),
            "every node back on v1"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut tally = vec![0u64; KEYS];
    for c in callers {
        for (k, n) in c.await??.into_iter().enumerate() {
            tally[k] += n;
        }
    }
    assert!(
        tally.iter().sum::<u64>() > KEYS as u64,
        "the load ran: {tally:?}"
    );
    for (k, count) in tally.iter().enumerate() {
        let value = nodes[k % 3]
            .admin()
            .call_text(&format!("counter/k{k}"), "get")
            .await?;
        assert_eq!(
            value,
            count.to_string(),
            "counter/k{k}: {count} acknowledged increments"
        );
    }
    Ok(())
}

/// A key of `module` that lives on `node`: touched through it, then checked.
async fn key_living_on(node: &Node, module: &str, prefix: &str) -> anyhow::Result<String> {
    let keys = node
        .admin()
        .keys_living_here(module, prefix, "state", 1)
        .await?;
    Ok(keys.into_iter().next().expect("one key"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_on_one_node_reach_subscribers_on_another() -> anyhow::Result<()> {
    let nats = NatsCluster::start(1).await?;
    let n1 = clustered(&nats, "n1").await?;
    let n2 = clustered(&nats, "n2").await?;
    n1.admin().deploy("probe", "probe", "kind=keyed").await?;
    eventually(Duration::from_secs(10), "n2 serving probe", || async {
        Ok(served(&n2, "probe").await?.map(|_| ()))
    })
    .await?;
    // Subscribers on n2, a publisher on n1.
    let alo = key_living_on(&n2, "probe", "alo").await?;
    let amo = key_living_on(&n2, "probe", "amo").await?;
    let publisher = key_living_on(&n1, "probe", "pub").await?;
    let a2 = n2.admin();
    a2.call_text(&format!("probe/{alo}"), "subscribe news alo")
        .await?;
    a2.call_text(&format!("probe/{amo}"), "subscribe news amo")
        .await?;
    for i in 0..5 {
        n1.admin()
            .call_text(&format!("probe/{publisher}"), &format!("publish news e{i}"))
            .await?;
    }
    let want: Vec<String> = (0..5).map(|i| format!("news:e{i}")).collect();
    for key in [&alo, &amo] {
        let got = eventually(Duration::from_secs(10), "the events on n2", || async {
            let state = a2.probe_state(&format!("probe/{key}")).await?;
            let events: Vec<String> = state["events"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            Ok((events.len() >= want.len()).then_some(events))
        })
        .await?;
        assert_eq!(got, want, "probe/{key}: each event once, in order");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_kept_by_the_cluster_and_listed_from_any_node() -> anyhow::Result<()> {
    const FAST_RETRIES: &str = "[events]\nmax_attempts = 3\nretry_base_ms = 50\n";
    let nats = NatsCluster::start(1).await?;
    let n1 = Node::start_clustered_with_config(&nats, "n1", FAST_RETRIES).await?;
    let n2 = Node::start_clustered_with_config(&nats, "n2", FAST_RETRIES).await?;
    n1.admin().deploy("probe", "probe", "kind=keyed").await?;
    eventually(Duration::from_secs(10), "n2 serving probe", || async {
        Ok(served(&n2, "probe").await?.map(|_| ()))
    })
    .await?;
    // A subscriber on n2 that refuses every event, a publisher on n1.
    let sub = format!("probe/{}", key_living_on(&n2, "probe", "sub").await?);
    let publisher = format!("probe/{}", key_living_on(&n1, "probe", "pub").await?);
    let (a1, a2) = (n1.admin(), n2.admin());
    a2.call_text(&sub, "subscribe scores alo").await?;
    a2.call_text(&sub, "fail 1000").await?;
    a1.call_text(&publisher, "publish scores lost-goal").await?;

    // n1 holds neither the subscriber nor its log, and lists the letter.
    let letters = eventually(Duration::from_secs(10), "a dead letter on n1", || async {
        let (_, l) = a1.get_json("/v1/dead-letters").await?;
        Ok((l.as_array().map(Vec::len) == Some(1)).then_some(l))
    })
    .await?;
    let letter = &letters[0];
    assert_eq!(letter["topic"], "scores");
    assert_eq!(letter["subscriber"], sub.as_str());
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["text"], "lost-goal");
    let id = letter["id"].as_u64().expect("a numeric id");
    let (_, on_n2) = a2.get_json("/v1/dead-letters").await?;
    assert_eq!(on_n2, letters, "every node lists the same letters");

    // Only the subscriber's owner replays; another node says which it is.
    let (status, body) = a1.post(&format!("/v1/dead-letters/{id}/replay")).await?;
    assert_eq!(status, 503, "{body}");
    assert!(body.to_string().contains("node n2"), "{body}");
    a2.call_text(&sub, "fail 0").await?;
    let (status, body) = a2.post(&format!("/v1/dead-letters/{id}/replay")).await?;
    assert_eq!(status, 200, "{body}");
    let state = a2.probe_state(&sub).await?;
    assert_eq!(state["events"], json!(["scores:lost-goal"]));
    let (_, l) = a1.get_json("/v1/dead-letters").await?;
    assert_eq!(l, json!([]), "replayed, so gone for every node");
    Ok(())
}
