//! Players over QUIC: login, requests, pushes, resume, rooms, state sync, limits,
//! hostile input.

use anthill_client::{ClientError, ErrorCode};
use anthill_tests::{Node, eventually};
use std::time::Duration;

async fn node_with(config: &str) -> anyhow::Result<Node> {
    let node = Node::start_with_config(config).await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    admin
        .deploy("probe", "probe", "kind=keyed&players=open")
        .await?;
    admin
        .deploy("arena", "arena", "kind=keyed&players=open")
        .await?;
    admin.deploy("lobby", "lobby", "").await?;
    Ok(node)
}

/// The synced entities a probe room holds (its `entities` command), as a
/// client's mirror keeps them.
async fn probe_entities(
    admin: &anthill_tests::Admin,
    room: &str,
) -> anyhow::Result<std::collections::BTreeMap<u64, Vec<u8>>> {
    let by_name: std::collections::BTreeMap<String, Vec<u8>> =
        serde_json::from_str(&admin.call_text(room, "entities").await?)?;
    by_name
        .into_iter()
        .map(|(k, v)| Ok((k.parse()?, v)))
        .collect()
}

#[tokio::test]
async fn login_request_and_push() -> anyhow::Result<()> {
    let node = node_with("").await?;
    let client = node.player().await?;
    let player = client.login_device("device-1").await?;
    assert!(player > 0);
    // The same device is the same player next time.
    let again = node.player().await?;
    assert_eq!(again.login_device("device-1").await?, player);

    let client = node.player().await?;
    let player = client.login_device("device-2").await?;
    assert_eq!(
        client.request("echo", b"over quic".to_vec()).await?,
        b"over quic"
    );
    // The module sees the player as the sender.
    client.request("probe/who", b"hello".to_vec()).await?;
    let state = node.admin().probe_state("probe/who").await?;
    assert_eq!(state["received"][0], format!("player:{player} hello"));
    // Pushes: back to the sender, and from anywhere by player id.
    client
        .request("probe/p", b"pushback first".to_vec())
        .await?;
    node.admin()
        .call_text("probe/p", &format!("push {player} reliable second"))
        .await?;
    let a = client
        .next_push(Duration::from_secs(5))
        .await
        .expect("first push");
    let b = client
        .next_push(Duration::from_secs(5))
        .await
        .expect("second push");
    assert_eq!((a.payload.as_slice(), a.reliable), (&b"first"[..], true));
    assert_eq!(b.payload, b"second");
    // Errors come back typed.
    let err = client.request("nosuch", vec![]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
    let err = client
        .request("probe/p", b"call nosuch 100 x".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    Ok(())
}

#[tokio::test]
async fn wrong_and_expired_tokens_are_refused() -> anyhow::Result<()> {
    let node = node_with("[gateway]\nsession_ttl_s = 1\n").await?;
    let forger = node.player().await?;
    let err = forger.login_resume("1.2.3.deadbeef").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{err}");

    let client = node.player().await?;
    client.set_auto_resume(false);
    client.login_device("device-t").await?;
    let (token, _) = client.token().expect("a token");
    // A tampered token does not verify.
    let last = if token.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{last}", &token[..token.len() - 1]);
    let other = node.player().await?;
    let err = other.login_resume(&tampered).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{err}");
    // The real one works now, and not after it expires.
    let fresh = node.player().await?;
    assert!(fresh.login_resume(&token).await?.1, "resumed");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let late = node.player().await?;
    let err = late.login_resume(&token).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::TokenExpired), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_resume_keeps_rooms_and_delivers_queued_pushes_in_order() -> anyhow::Result<()> {
    let node = node_with("").await?;
    let admin = node.admin();
    let client = node.player().await?;
    let player = client.login_device("resumer").await?;
    let room = client.join("arena/resume").await?;
    let slot = client
        .next_push(Duration::from_secs(5))
        .await
        .expect("the arena tells the slot");
    assert_eq!(slot.payload, b"slot 0");
    eventually(Duration::from_secs(5), "room state", || async {
        Ok(client.room_state(room).map(|_| ()))
    })
    .await?;
    // The network drops; meanwhile modules push.
    client.set_auto_resume(false);
    client.simulate_network_loss();
    eventually(Duration::from_secs(5), "the disconnect", || async {
        Ok((!client.is_connected()).then_some(()))
    })
    .await?;
    for i in 0..3 {
        admin
            .call_text("probe/p", &format!("push {player} reliable queued-{i}"))
            .await?;
    }
    assert!(client.resume().await?, "the session was resumed");
    for i in 0..3 {
        let p = client
            .next_push(Duration::from_secs(5))
            .await
            .expect("queued push");
        assert_eq!(p.payload, format!("queued-{i}").into_bytes());
    }
    // Still in the room: state keeps flowing, the arena still counts the player.
    let (before, _) = client.room_state(room).expect("state");
    eventually(
        Duration::from_secs(5),
        "fresh state after resume",
        || async {
            Ok(client
                .room_state(room)
                .filter(|(t, _)| *t > before + 5)
                .map(|_| ()))
        },
    )
    .await?;
    assert_eq!(admin.call_text("arena/resume", "players").await?, "1");
    // The arena told the player its entity id (its slot) when it joined; that
    // entity is in the mirrored state.
    assert!(
        client.room_state(room).unwrap().1.contains_key(&0),
        "slot 0 is the only player"
    );
    Ok(())
}

#[tokio::test]
async fn after_the_grace_period_the_player_leaves_its_rooms() -> anyhow::Result<()> {
    let node = node_with("[gateway]\nresume_grace_ms = 400\n").await?;
    let admin = node.admin();
    let client = node.player().await?;
    let player = client.login_device("leaver").await?;
    client.join("probe/room").await?;
    client.join("arena/grace").await?;
    assert_eq!(admin.call_text("arena/grace", "players").await?, "1");
    client.set_auto_resume(false);
    client.simulate_network_loss();
    // Within the grace: still a member.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(admin.call_text("arena/grace", "players").await?, "1");
    eventually(Duration::from_secs(5), "on-leave", || async {
        let s = admin.probe_state("probe/room").await?;
        Ok((s["left"] == serde_json::json!([player])).then_some(()))
    })
    .await?;
    assert_eq!(admin.call_text("arena/grace", "players").await?, "0");
    // The session is over: its token cannot resume it.
    let err = client.resume().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_lossy_client_mirror_converges_and_deltas_are_small() -> anyhow::Result<()> {
    let node = node_with("").await?;
    let admin = node.admin();
    let client = node.player().await?;
    client.login_device("lossy").await?;
    client.set_datagram_loss(0.3);
    let room = client.join("probe/sync").await?;
    for _ in 0..150 {
        admin.call_text("probe/sync", "churn 4").await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Quiet: no more changes; a few more ticks let the client catch up.
    client.set_datagram_loss(0.0);
    let truth = probe_entities(&admin, "probe/sync").await?;
    let mirror = eventually(
        Duration::from_secs(10),
        "the mirror to converge",
        || async {
            admin.call_text("probe/sync", "churn 0").await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(client
                .room_state(room)
                .filter(|(_, m)| *m == truth)
                .map(|(_, m)| m))
        },
    )
    .await?;
    assert_eq!(mirror.len(), truth.len());
    assert!(
        client
            .stats()
            .datagrams_dropped_on_purpose
            .load(std::sync::atomic::Ordering::Relaxed)
            > 10
    );

    let frames = |kind: &str| {
        let admin = admin.clone();
        let kind = kind.to_owned();
        async move {
            let mut n = 0.0;
            for path in ["datagram", "stream"] {
                n += admin
                    .metric(
                        "anthill_sync_frames_total",
                        &format!("kind=\"{kind}\",path=\"{path}\""),
                    )
                    .await?;
            }
            let bytes = admin
                .metric("anthill_sync_bytes_total", &format!("kind=\"{kind}\""))
                .await?;
            Ok::<_, anyhow::Error>((n, bytes))
        }
    };
    let (deltas, delta_bytes) = frames("delta").await?;
    let (snapshots, snapshot_bytes) = frames("snapshot").await?;
    assert!(
        deltas > 100.0 && snapshots >= 1.0,
        "{deltas} deltas, {snapshots} snapshots"
    );
    let (avg_delta, avg_snapshot) = (delta_bytes / deltas, snapshot_bytes / snapshots);
    assert!(
        avg_delta * 5.0 < avg_snapshot,
        "delta {avg_delta:.0} B vs snapshot {avg_snapshot:.0} B"
    );
    Ok(())
}

/// A room that publishes packed (`set-synced-state-packed`, entities out of
/// id order) reaches its players as one publishing a list does, the two
/// calls mixed; parts that do not fit together are refused naming why, and
/// the room keeps the state it had.
#[tokio::test]
async fn a_packed_state_reaches_players_and_parts_that_do_not_fit_are_refused() -> anyhow::Result<()>
{
    let node = node_with("").await?;
    let admin = node.admin();
    let client = node.player().await?;
    client.login_device("packed").await?;
    let room = client.join("probe/packed").await?;
    let converged = |step: &'static str| {
        let (admin, client) = (admin.clone(), &client);
        async move {
            let truth = probe_entities(&admin, "probe/packed").await?;
            eventually(Duration::from_secs(10), step, || async {
                Ok(client
                    .room_state(room)
                    .filter(|(_, m)| *m == truth)
                    .map(|(_, m)| m.len()))
            })
            .await
        }
    };
    for step in ["churn 40", "packed 40", "churn 7", "packed 300", "packed 0"] {
        let reply = admin.call_text("probe/packed", step).await?;
        assert!(reply.contains("entities"), "{step}: {reply}");
        let n = converged("the mirror to hold the published entities").await?;
        assert!(n >= 190, "{step}: {n} entities");
    }

    let (status, body) = admin.call("probe/packed", b"packed-bad").await?;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("2 ids but 1 ends") && body.contains("one end per entity"),
        "{body}"
    );
    // Nothing changed, and the room still publishes.
    converged("the mirror to keep the last good state").await?;
    admin.call_text("probe/packed", "packed 5").await?;
    converged("the mirror to follow the next packed state").await?;
    Ok(())
}

#[tokio::test]
async fn a_stalled_client_does_not_slow_others_or_grow_memory() -> anyhow::Result<()> {
    let node = node_with("").await?;
    let admin = node.admin();
    // A room with a big state (2000 entities: snapshots go over the stream).
    let healthy = node.player().await?;
    healthy.login_device("healthy").await?;
    let frozen = node.player().await?;
    frozen.login_device("frozen").await?;
    let room_h = healthy.join("arena/stall").await?;
    let big_h = healthy.join("probe/big").await?;
    frozen.join("arena/stall").await?;
    frozen.join("probe/big").await?;
    frozen.stall();
    let before_rss = node.rss_kib()?;
    // Big states (2000 entities, tens of KiB: they go over the control stream)
    // pile up for the frozen player while the arena ticks at 20 Hz.
    let (t0, _) = healthy
        .room_state(room_h)
        .unwrap_or((0, Default::default()));
    let started = std::time::Instant::now();
    for _ in 0..60 {
        admin.call_text("probe/big", "churn 2000").await?;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (big_tick, big_state) = healthy
        .room_state(big_h)
        .expect("the healthy player got the big room");
    assert!(
        big_tick >= 55,
        "the healthy player saw {big_tick} of 60 big states"
    );
    assert_eq!(
        big_state.len(),
        200 + big_state.keys().filter(|k| **k >= 200).count()
    );
    let (t1, _) = healthy
        .room_state(room_h)
        .expect("healthy player has state");
    let rate = (t1 - t0) as f64 / started.elapsed().as_secs_f64();
    assert!(
        rate > 12.0,
        "the healthy player got {rate:.1} ticks/s from a 20 Hz room"
    );
    let after_rss = node.rss_kib()?;
    assert!(
        after_rss < before_rss + 40 * 1024,
        "RSS {before_rss} → {after_rss} KiB with a frozen client"
    );
    Ok(())
}

#[tokio::test]
async fn the_rate_limit_answers_with_an_error_frame() -> anyhow::Result<()> {
    let node = node_with("[gateway]\nrequests_per_sec = 20.0\nrequest_burst = 10.0\n").await?;
    let client = node.player().await?;
    client.login_device("greedy").await?;
    let results = futures::future::join_all((0..40).map(|i| {
        let c = client.clone();
        async move { c.request("echo", format!("{i}").into_bytes()).await }
    }))
    .await;
    let limited = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(ClientError::Failed {
                    code: ErrorCode::RateLimited,
                    ..
                })
            )
        })
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(limited >= 20, "{limited} of 40 rate limited");
    assert!(ok >= 10, "the burst went through ({ok})");
    assert_eq!(limited + ok, 40);
    // The connection stays usable once the bucket refills.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.request("echo", b"later".to_vec()).await?, b"later");
    Ok(())
}

#[tokio::test]
async fn junk_udp_and_junk_frames_do_not_hurt_the_node() -> anyhow::Result<()> {
    let node = node_with("").await?;
    let addr = node.quic.expect("gateway");
    // Junk datagrams at the QUIC port.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let mut x = 0x1234_5678u64;
    for len in [1usize, 20, 1200, 1500, 64] {
        for _ in 0..50 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            socket.send_to(&bytes, addr)?;
        }
    }
    // Junk on a control stream: the node answers with an error and closes it.
    let junk = node.player().await?;
    junk.set_auto_resume(false);
    junk.send_raw(vec![0xff; 64])?;
    eventually(
        Duration::from_secs(5),
        "the junk connection to close",
        || async { Ok((!junk.is_connected()).then_some(())) },
    )
    .await?;
    // Frames out of order: a request before Hello.
    let early = node.player().await?;
    let err = early.request("echo", vec![]).await.unwrap_err();
    assert!(matches!(err, ClientError::NotLoggedIn), "{err}");
    let rude = node.player().await?;
    rude.send_raw(anthill_protocol::wire::encode_prefixed(
        &anthill_protocol::Frame::Ping { nonce: 1 },
    ))?;
    eventually(
        Duration::from_secs(5),
        "the rude connection to close",
        || async { Ok((!rude.is_connected()).then_some(())) },
    )
    .await?;
    // An oversize length prefix.
    let big = node.player().await?;
    big.send_raw((10u32 << 20).to_le_bytes().to_vec())?;
    eventually(
        Duration::from_secs(5),
        "the oversize connection to close",
        || async { Ok((!big.is_connected()).then_some(())) },
    )
    .await?;
    // Everyone else is fine.
    let fine = node.player().await?;
    fine.login_device("fine").await?;
    assert_eq!(fine.request("echo", b"ok".to_vec()).await?, b"ok");
    assert!(
        node.admin()
            .metric("anthill_player_bad_input_total", "what=\"stream-frame\"")
            .await?
            >= 1.0
    );
    Ok(())
}

#[tokio::test]
async fn players_stay_connected_through_a_hot_swap() -> anyhow::Result<()> {
    // The player sends as fast as it can; lift the per-player rate limit.
    let node =
        node_with("[gateway]\nrequests_per_sec = 100000.0\nrequest_burst = 100000.0\n").await?;
    let admin = node.admin();
    admin
        .deploy("counter", "counter", "kind=keyed&players=open")
        .await?;
    let client = node.player().await?;
    client.set_auto_resume(false);
    client.login_device("swapper").await?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let player = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let mut replies = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client.request("counter/p", b"incr".to_vec()).await?;
                replies.push(String::from_utf8(r)?);
            }
            Ok::<_, anyhow::Error>(replies)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = admin
        .deploy_bytes(
            "counter",
            std::fs::read(anthill_tests::guest("counter-v2"))?,
            "",
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let replies = player.await??;
    // Every request answered; values continue across the swap; v2 answers after it.
    let values: Vec<u64> = replies
        .iter()
        .map(|r| r.trim_start_matches("v2:").parse().unwrap())
        .collect();
    assert_eq!(values, (1..=values.len() as u64).collect::<Vec<_>>());
    assert!(
        replies.first().is_some_and(|r| !r.starts_with("v2:")),
        "{replies:?}"
    );
    assert!(
        replies.last().is_some_and(|r| r.starts_with("v2:")),
        "{replies:?}"
    );
    assert!(client.is_connected(), "the swap did not drop the player");
    assert_eq!(
        client
            .stats()
            .resumes
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    Ok(())
}

#[tokio::test]
async fn a_login_module_decides_who_the_player_is() -> anyhow::Result<()> {
    // echo as the login module: the payload is the player id it "verified".
    let node = node_with("[gateway]\nlogin_module = \"echo\"\n").await?;
    let client = node.player().await?;
    assert_eq!(client.login_custom(b"4242".to_vec()).await?, 4242);
    assert_eq!(client.request("echo", b"hi".to_vec()).await?, b"hi");
    let refused = node.player().await?;
    let err = refused
        .login_custom(b"not-a-player".to_vec())
        .await
        .unwrap_err();
    assert!(err.code().is_some(), "{err}");
    // Without a login module, custom logins are refused with the reason.
    let plain = node_with("").await?;
    let c = plain.player().await?;
    let err = c.login_custom(b"1".to_vec()).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_socket_buffer_the_kernel_caps_is_named_at_start_and_players_still_play()
-> anyhow::Result<()> {
    let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")?
        .trim()
        .parse()?;
    // Past what the kernel grants (root could raise rmem_max this far; then
    // there is nothing to warn about and nothing to test here).
    let asked = rmem_max.saturating_mul(4).max(1 << 20);
    let node = node_with(&format!("[gateway]\nsocket_buffer_bytes = {asked}\n")).await?;
    let client = node.player().await?;
    client.login_device("buffered").await?;
    assert_eq!(client.request("echo", b"hi".to_vec()).await?, b"hi");
    let output = node.stop()?;
    assert!(
        output.contains("gateway.socket_buffer_bytes") && output.contains("net.core.rmem_max"),
        "no warning naming the setting and the sysctl: {output}"
    );
    // The default asks for 4 MiB: a node warns only when the kernel caps it.
    let plain = node_with("").await?;
    let output = plain.stop()?;
    assert_eq!(
        output.contains("gateway.socket_buffer_bytes"),
        rmem_max < 4 << 20,
        "rmem_max {rmem_max}: {output}"
    );
    Ok(())
}

#[tokio::test]
async fn packets_the_kernel_drops_on_the_player_port_are_counted() -> anyhow::Result<()> {
    // The smallest buffer the kernel allows, and a node that reads nothing.
    let node = Node::start_with_config("[gateway]\nsocket_buffer_bytes = 4096\n").await?;
    let admin = node.admin();
    let idle = admin.metrics().await?;
    assert!(
        idle.contains("anthill_player_port_drops_total 0"),
        "an idle port drops nothing, and says so: {idle}"
    );
    let port = node.quic.expect("the node serves players");
    node.pause()?;
    let flood = std::net::UdpSocket::bind("127.0.0.1:0")?;
    for _ in 0..2_000 {
        flood.send_to(&[0u8; 1200], port)?;
    }
    node.resume()?;
    let dropped = eventually(Duration::from_secs(10), "drops counted", || async {
        let n = admin.metric("anthill_player_port_drops_total", "").await?;
        Ok((n > 0.0).then_some(n))
    })
    .await?;
    // Some fit in the buffer; the rest were dropped, and no more than sent.
    assert!(dropped <= 2_000.0, "{dropped} drops of 2,000 packets");
    // The node still serves players.
    let client = node.player().await?;
    client.login_device("after-the-flood").await?;
    Ok(())
}
