//! Failover in the cluster, with real nats-server and anthill processes on
//! loopback: a node killed with -9 under load, a node paused past its lease
//! (SIGSTOP) and resumed, and a NATS server killed under load. Every test
//! counts what the clients were told against what the cluster stored, with
//! `every-message` counters: an acknowledged increment must be stored, and
//! nothing beyond what was sent.

use anthill_tests::nats::NatsCluster;
use anthill_tests::{Admin, Node, eventually};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const EVERY_MESSAGE: &str = "kind=keyed&durability=every-message";

/// What one client saw of each key: increments sent, and the values the
/// acknowledged ones replied.
#[derive(Default)]
struct Tally {
    sent: BTreeMap<String, u64>,
    acked: BTreeMap<String, Vec<u64>>,
    /// When each key was first acknowledged after `since` (if set).
    back_after: BTreeMap<String, Duration>,
}

/// A client incrementing `keys` round-robin through `admin` until `stop`.
fn client(
    admin: Admin,
    keys: Vec<String>,
    stop: Arc<AtomicBool>,
    since: Arc<std::sync::Mutex<Option<Instant>>>,
) -> tokio::task::JoinHandle<anyhow::Result<Tally>> {
    tokio::spawn(async move {
        let mut t = Tally::default();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let key = &keys[i % keys.len()];
            i += 1;
            *t.sent.entry(key.clone()).or_default() += 1;
            let (status, body) = admin.call(&format!("counter/{key}"), b"incr").await?;
            if status == 200 {
                let value: u64 = String::from_utf8_lossy(&body).parse()?;
                t.acked.entry(key.clone()).or_default().push(value);
                if let Some(at) = *since.lock().expect("kill time") {
                    t.back_after.entry(key.clone()).or_insert(at.elapsed());
                }
            } else {
                // Refused while its owner moves: named, never silent.
                let text = String::from_utf8_lossy(&body);
                anyhow::ensure!(
                    (500..600).contains(&status) && !text.is_empty(),
                    "{key}: {status} {text}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(t)
    })
}

/// Checks every key against what the clients saw: each acknowledged value
/// was handed out once (no lost update, no second live copy), the stored
/// value covers every acknowledgement and exceeds nothing sent.
async fn check_stored(admin: &Admin, tallies: &[Tally]) -> anyhow::Result<u64> {
    let mut keys: Vec<&String> = tallies.iter().flat_map(|t| t.sent.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut total = 0;
    for key in keys {
        let sent: u64 = tallies.iter().filter_map(|t| t.sent.get(key)).sum();
        let mut acked: Vec<u64> = tallies
            .iter()
            .filter_map(|t| t.acked.get(key))
            .flatten()
            .copied()
            .collect();
        acked.sort();
        let n = acked.len();
        let twice: Vec<u64> = acked
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        acked.dedup();
        assert!(
            twice.is_empty(),
            "{key}: values acknowledged twice: {twice:?} (of {n} acknowledged, up to {:?})",
            acked.last()
        );
        // Read once the cluster has settled (a node may still be catching
        // up after a failover: it answers 503 until then).
        let stored: u64 = eventually(Duration::from_secs(30), "the stored value", || async {
            let (status, body) = admin.call(&format!("counter/{key}"), b"get").await?;
            Ok((status == 200).then(|| String::from_utf8_lossy(&body).into_owned()))
        })
        .await?
        .parse()?;
        let highest = acked.last().copied().unwrap_or(0);
        assert!(
            stored >= highest && stored >= n as u64,
            "{key}: {n} increments acknowledged (up to {highest}) but {stored} stored"
        );
        assert!(
            stored <= sent,
            "{key}: {stored} stored but only {sent} sent"
        );
        total += n as u64;
    }
    Ok(total)
}

async fn takeovers(nodes: &[&Node]) -> anyhow::Result<f64> {
    let mut n = 0.0;
    for node in nodes {
        n += node
            .admin()
            .metric("anthill_cluster_takeovers_total", "")
            .await?;
    }
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_actors_come_back_elsewhere_with_every_acknowledged_increment()
-> anyhow::Result<()> {
    let nats = NatsCluster::start(3).await?;
    let dir = tempfile::tempdir()?;
    let args = ["--cluster", &nats.urls(), "--node", "n1"];
    let n1 = Node::start_in(&dir.path().join("n1"), &args).await?;
    let n2 = Node::start_clustered(&nats, "n2").await?;
    let n3 = Node::start_clustered(&nats, "n3").await?;
    n1.admin()
        .deploy("counter", "counter", EVERY_MESSAGE)
        .await?;
    // Six keys living on n1, each incremented once through it (a partition
    // nobody holds goes to the node a hash prefers: not all keys touched
    // through n1 stay there).
    let mut keys = n1
        .admin()
        .keys_living_here("counter", "k", "incr", 6)
        .await?;
    keys.sort();

    let stop = Arc::new(AtomicBool::new(false));
    let killed_at = Arc::new(std::sync::Mutex::new(None));
    let clients: Vec<_> = [&n2, &n2, &n3]
        .iter()
        .map(|n| client(n.admin(), keys.clone(), stop.clone(), killed_at.clone()))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let data = n1.kill9();
    *killed_at.lock().expect("kill time") = Some(Instant::now());
    // Load goes on until every key answered again (or long past the goal).
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut live = n2.admin().live_keys("counter").await?;
        live.extend(n3.admin().live_keys("counter").await?);
        if keys.iter().all(|k| live.contains(k)) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut tallies = Vec::new();
    for c in clients {
        tallies.push(c.await??);
    }
    for k in &keys {
        let back = tallies.iter().filter_map(|t| t.back_after.get(k)).min();
        assert!(
            back.is_some(),
            "{k} never answered after its node was killed"
        );
        println!("{k}: answered {:?} after the kill", back.expect("checked"));
    }
    // The first increments (through n1, before the load) count as acked.
    let first = Tally {
        sent: keys.iter().map(|k| (k.clone(), 1)).collect(),
        acked: keys.iter().map(|k| (k.clone(), vec![1])).collect(),
        ..Default::default()
    };
    tallies.push(first);
    let acked = check_stored(&n2.admin(), &tallies).await?;
    assert!(acked > 50, "the load ran: {acked} acknowledged increments");
    assert!(
        takeovers(&[&n2, &n3]).await? >= 1.0,
        "a partition was taken over"
    );
    let mut live: Vec<String> = n2.admin().live_keys("counter").await?;
    live.extend(n3.admin().live_keys("counter").await?);
    // (The keys found living elsewhere while looking for n1's are live too.)
    live.retain(|k| keys.contains(k));
    live.sort();
    assert_eq!(live, keys, "each key live once, on the survivors");

    // n1, restarted on its data, finds its partitions owned elsewhere and
    // reaches the actors there: the values continue.
    let n1 = Node::start_in(&data, &args).await?;
    let k0 = format!("counter/{}", keys[0]);
    let before: u64 = n2.admin().call_text(&k0, "get").await?.parse()?;
    let reply = eventually(Duration::from_secs(10), "a key through n1", || async {
        let (status, body) = n1.admin().call(&k0, b"incr").await?;
        Ok((status == 200).then(|| String::from_utf8_lossy(&body).into_owned()))
    })
    .await?;
    assert_eq!(reply, (before + 1).to_string());
    assert_eq!(n1.admin().live_keys("counter").await?, Vec::<String>::new());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_loses_its_actors_and_writes_nothing_stale_when_it_resumes()
-> anyhow::Result<()> {
    let nats = NatsCluster::start(1).await?;
    let n1 = Node::start_clustered(&nats, "n1").await?;
    let n2 = Node::start_clustered(&nats, "n2").await?;
    n1.admin()
        .deploy("counter", "counter", EVERY_MESSAGE)
        .await?;
    // A key living on n1 (read once to place it).
    let p = n1
        .admin()
        .keys_living_here("counter", "p", "get", 1)
        .await?;
    let p = format!("counter/{}", p[0]);
    for i in 1..=3 {
        assert_eq!(n1.admin().call_text(&p, "incr").await?, i.to_string());
    }
    let mut acked = 3;

    n1.pause()?;
    let paused = Instant::now();
    // Calls made to the paused node itself wait in its sockets and are
    // handled when it resumes: by then its lease has run out.
    let stuck: Vec<_> = (0..5)
        .map(|_| {
            let (admin, p) = (n1.admin(), p.clone());
            tokio::spawn(async move { admin.call(&p, b"incr").await })
        })
        .collect();
    // n2 takes the actor over once n1 has been silent for dead_after_ms.
    // An attempt that fails meanwhile may or may not have been applied (a
    // NATS write whose acknowledgement timed out under load), as documented.
    let unknown = std::sync::atomic::AtomicU64::new(0);
    let first = eventually(Duration::from_secs(20), "counter/p through n2", || async {
        let (status, body) = n2.admin().call(&p, b"incr").await?;
        if status != 200 {
            unknown.fetch_add(1, Ordering::Relaxed);
        }
        Ok((status == 200).then(|| String::from_utf8_lossy(&body).into_owned()))
    })
    .await?;
    println!("n2 answered {:?} after the pause", paused.elapsed());
    let first: u64 = first.parse()?;
    let unknown = unknown.load(Ordering::Relaxed);
    // Every value acknowledged, to check that none was handed out twice.
    let mut values: Vec<u64> = (1..=acked).collect();
    let before = acked;
    acked = first;
    values.push(first);
    for _ in 0..5 {
        let reply: u64 = n2.admin().call_text(&p, "incr").await?.parse()?;
        acked += 1;
        assert_eq!(reply, acked);
        values.push(reply);
    }
    assert_eq!(
        n2.admin().live_keys("counter").await?,
        [&p["counter/".len()..]]
    );

    n1.resume()?;
    for s in stuck {
        let (status, body) = s.await??;
        let text = String::from_utf8_lossy(&body);
        match status {
            // Forwarded to the new owner once n1 had caught up, or handled
            // by n1 just before the pause took hold (its write reached NATS
            // before n2 took over; acknowledged when n1 resumed).
            200 => {
                let value: u64 = text.parse()?;
                values.push(value);
                acked = acked.max(value);
            }
            503 => assert!(
                text.contains("NATS")
                    || text.contains("catching up")
                    || text.contains("owns it now"),
                "the refusal names the cause: {text}"
            ),
            other => panic!("a call to the resumed node: {other} {text}"),
        }
    }
    let n = values.len();
    values.sort();
    values.dedup();
    assert_eq!(
        values.len(),
        n,
        "a value was acknowledged twice: {values:?}"
    );
    // n2 went on from the last write that landed: the acknowledged ones,
    // and attempts that failed but may have been applied.
    let landed_before = values.iter().filter(|v| **v < first).count() as u64;
    assert!(
        first > before && first <= landed_before + 1 + unknown,
        "the value continues from the last acknowledged write: {first} after {landed_before} acknowledged below it and {unknown} failed attempts"
    );
    // n1 rejoins: alive again, its stale copy gone, and nothing it had in
    // memory landed over n2's writes.
    eventually(
        Duration::from_secs(10),
        "n1 alive and its copy evicted",
        || async {
            let (_, body) = n2.admin().get_json("/v1/cluster/nodes").await?;
            let alive = body["nodes"].as_array().is_some_and(|ns| {
                ns.iter()
                    .any(|n| n["name"] == "n1" && n["state"] == "alive")
            });
            let evicted = n1.admin().live_keys("counter").await?.is_empty();
            Ok((alive && evicted).then_some(()))
        },
    )
    .await?;
    // Evicted when it heard its partition moved, or when its first write
    // after the pause was refused: whichever came first.
    let a1 = n1.admin();
    let stopped = a1.metric("anthill_cluster_evictions_total", "").await?
        + a1.metric("anthill_cluster_snapshot_refusals_total", "")
            .await?;
    assert!(stopped >= 1.0, "n1 stopped its copy");
    for n in [&n1, &n2] {
        assert_eq!(
            n.admin().call_text(&p, "get").await?,
            acked.to_string(),
            "every acknowledged increment, and nothing else"
        );
    }
    // And n1 serves again, through the new owner.
    assert_eq!(
        n1.admin().call_text(&p, "incr").await?,
        (acked + 1).to_string()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_one_of_three_nats_servers_under_load_loses_no_acknowledged_write()
-> anyhow::Result<()> {
    let mut nats = NatsCluster::start(3).await?;
    let nodes = Node::start_cluster_of(&nats, 3).await?;
    nodes[0]
        .admin()
        .deploy("counter", "counter", EVERY_MESSAGE)
        .await?;
    let keys: Vec<String> = (0..12).map(|k| format!("n{k}")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let since = Arc::new(std::sync::Mutex::new(None));
    let clients: Vec<_> = nodes
        .iter()
        .map(|n| client(n.admin(), keys.clone(), stop.clone(), since.clone()))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    nats.kill9(0);
    let killed = Instant::now();
    *since.lock().expect("kill time") = Some(killed);
    // Writes stall for NATS's own failover (new stream leaders), then go on.
    let probe = nodes[1].admin();
    let resumed = eventually(
        Duration::from_secs(30),
        "an increment after the NATS server died",
        || async {
            let (status, _) = probe.call("counter/probe", b"incr").await?;
            Ok((status == 200).then(|| killed.elapsed()))
        },
    )
    .await?;
    println!("writes resumed {resumed:?} after a NATS server was killed");
    // Load goes on past any node's catching up after the failover.
    tokio::time::sleep(Duration::from_secs(12).saturating_sub(killed.elapsed())).await;
    stop.store(true, Ordering::Relaxed);
    let mut tallies = Vec::new();
    for c in clients {
        tallies.push(c.await??);
    }
    let after: usize = tallies.iter().map(|t| t.back_after.len()).sum();
    assert!(
        after > 0,
        "the clients' writes went on after the NATS server died"
    );
    let acked = check_stored(&nodes[1].admin(), &tallies).await?;
    assert!(acked > 50, "the load ran: {acked} acknowledged increments");
    Ok(())
}

fn fired_tags(state: &serde_json::Value) -> Vec<String> {
    state["fired"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f[0].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_timer_fires_once_on_another_node_after_its_owner_dies() -> anyhow::Result<()> {
    let nats = NatsCluster::start(1).await?;
    let n1 = Node::start_clustered(&nats, "n1").await?;
    let n2 = Node::start_clustered(&nats, "n2").await?;
    n1.admin().deploy("probe", "probe", EVERY_MESSAGE).await?;
    // n1 owns two actors and schedules their timers; nobody calls them
    // again until long after the timers were due.
    let keys = n1
        .admin()
        .keys_living_here("probe", "t", "state", 2)
        .await?;
    let (t, other) = (&keys[0], &keys[1]);
    n1.admin()
        .call_text(&format!("probe/{t}"), "timer wake 3500 once")
        .await?;
    n1.admin()
        .call_text(&format!("probe/{other}"), "timer soon 200 once")
        .await?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _ = n1.kill9();
    // Detection (2.5 s), the takeover nobody asked for, then the timer.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        n2.admin().live_keys("probe").await?.contains(t),
        "n2 took the partition over and the timer activated the actor there"
    );
    let state = n2.admin().probe_state(&format!("probe/{t}")).await?;
    assert_eq!(
        fired_tags(&state),
        ["wake"],
        "fired once, after the owner died: {state}"
    );
    // A timer that fired before the death does not fire again.
    let other = n2.admin().probe_state(&format!("probe/{other}")).await?;
    assert_eq!(fired_tags(&other), ["soon"], "{other}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_follows_its_actor_when_the_owner_dies_and_misses_nothing_published_meanwhile()
-> anyhow::Result<()> {
    let nats = NatsCluster::start(1).await?;
    let n1 = Node::start_clustered(&nats, "n1").await?;
    let n2 = Node::start_clustered(&nats, "n2").await?;
    n1.admin().deploy("probe", "probe", EVERY_MESSAGE).await?;
    eventually(Duration::from_secs(10), "n2 serving probe", || async {
        let (status, _) = n2.admin().get_json("/v1/modules/probe").await?;
        Ok((status == 200).then_some(()))
    })
    .await?;
    let listener = n1
        .admin()
        .keys_living_here("probe", "listener", "state", 1)
        .await?;
    let listener = format!("probe/{}", listener[0]);
    n1.admin()
        .call_text(&listener, "subscribe news alo")
        .await?;
    // A publisher that lives on n2.
    let publisher = n2
        .admin()
        .keys_living_here("probe", "pub", "state", 1)
        .await?;
    let publisher = format!("probe/{}", publisher[0]);
    n2.admin()
        .call_text(&publisher, "publish news before")
        .await?;
    let events = |state: serde_json::Value| -> Vec<String> {
        state["events"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    eventually(Duration::from_secs(10), "the first event on n1", || async {
        let got = events(n1.admin().probe_state(&listener).await?);
        Ok((got == ["news:before"]).then_some(()))
    })
    .await?;
    // The cursor past `before` reaches NATS in the background, within
    // milliseconds; were it lost, `before` would come again (at least once).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let _ = n1.kill9();
    // Published while the owner is dead and nobody serves the subscription:
    // the cluster's log keeps it for whoever takes the listener over.
    n2.admin()
        .call_text(&publisher, "publish news during")
        .await?;
    // n2 takes the partition over by itself (no message asks for it) and
    // serves the listener's subscription from then on.
    eventually(
        Duration::from_secs(15),
        "the partition taken over",
        || async {
            let taken = n2
                .admin()
                .metric("anthill_cluster_takeovers_total", "")
                .await?;
            Ok((taken >= 1.0).then_some(()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    n2.admin()
        .call_text(&publisher, "publish news after")
        .await?;
    let got = eventually(
        Duration::from_secs(10),
        "the event after the death",
        || async {
            let got = events(n2.admin().probe_state(&listener).await?);
            Ok((got.len() >= 3).then_some(got))
        },
    )
    .await?;
    assert_eq!(
        got,
        ["news:before", "news:during", "news:after"],
        "the state, the subscription and its place in the log moved"
    );
    Ok(())
}
