//! Players on any node of a cluster (real nats-server and anthill processes,
//! real QUIC clients on loopback): players connected to one node join rooms
//! living on another, play there (requests, pushes, state deltas), leave, and
//! follow their room when its node is killed.

use anthill_client::Client;
use anthill_tests::nats::NatsCluster;
use anthill_tests::{Node, until_ok};
use std::time::Duration;

/// A key of `arena` whose room lives on `node`.
async fn room_living_on(node: &Node, prefix: &str) -> anyhow::Result<String> {
    let keys = node
        .admin()
        .keys_living_here("arena", prefix, "players", 1)
        .await?;
    Ok(keys.into_iter().next().expect("one key"))
}

/// Waits until `node` serves `module` (a deploy made elsewhere reached it).
async fn served(node: &Node, module: &str) -> anyhow::Result<()> {
    until_ok(
        Duration::from_secs(15),
        "the module served there",
        || async {
            let (status, _) = node
                .admin()
                .get_json(&format!("/v1/modules/{module}"))
                .await?;
            anyhow::ensure!(status == 200, "{module}: not yet: {status}");
            Ok(())
        },
    )
    .await
}

/// One nats-server and three nodes serving `lobby` and `arena` (open to
/// players, every join snapshotted before it is acknowledged, so a room
/// that comes back knows its players).
async fn arena_cluster() -> anyhow::Result<(NatsCluster, [Node; 3])> {
    let nats = NatsCluster::start(1).await?;
    let nodes = Node::start_cluster_of(&nats, 3).await?;
    let nodes: [Node; 3] = nodes.try_into().map_err(|_| anyhow::anyhow!("3 nodes"))?;
    nodes[0]
        .admin()
        .deploy(
            "arena",
            "arena",
            "kind=keyed&players=open&durability=every-message",
        )
        .await?;
    nodes[0].admin().deploy("lobby", "lobby", "").await?;
    for n in &nodes[1..] {
        served(n, "arena").await?;
    }
    Ok((nats, nodes))
}

/// An arena entity's position (x, y in tenths of a unit, i16 LE each).
fn position(state: &[u8]) -> Option<(i16, i16)> {
    let b: [u8; 4] = state.get(..4)?.try_into().ok()?;
    Some((
        i16::from_le_bytes([b[0], b[1]]),
        i16::from_le_bytes([b[2], b[3]]),
    ))
}

/// The slot the arena pushed to the player when it joined.
async fn slot_of(client: &Client) -> anyhow::Result<u64> {
    let push = client
        .next_push(Duration::from_secs(10))
        .await
        .ok_or_else(|| anyhow::anyhow!("no `slot N` push after the join"))?;
    let text = String::from_utf8(push.payload)?;
    anyhow::ensure!(push.reliable, "the slot push is reliable");
    Ok(text
        .strip_prefix("slot ")
        .ok_or_else(|| anyhow::anyhow!("a push that is not a slot: {text}"))?
        .parse()?)
}

/// Moves the player at `slot` away from the nearer side edge and waits until
/// every client's mirror of the room shows it moving that way (state deltas
/// that crossed nodes).
async fn move_and_watch(
    clients: &[(Client, u32, u64)],
    mover: usize,
    room_name: &str,
    what: &str,
) -> anyhow::Result<()> {
    let (c, room, slot) = &clients[mover];
    let slot = *slot;
    let from_x = position(&c.room_state(*room).expect("state").1[&slot])
        .expect("a position")
        .0;
    let dir: i16 = if from_x > 5_000 { -1 } else { 1 };
    let order = format!("move {} 0", 100 * dir);
    // The first try may meet the room between owners.
    until_ok(Duration::from_secs(20), "a move accepted", || async {
        c.request(room_name, order.clone().into_bytes()).await?;
        Ok(())
    })
    .await?;
    until_ok(Duration::from_secs(20), what, || async {
        for (c, room, _) in clients {
            let (_, state) = c
                .room_state(*room)
                .ok_or_else(|| anyhow::anyhow!("no state of the room yet"))?;
            let x = state
                .get(&slot)
                .and_then(|s| position(s))
                .ok_or_else(|| anyhow::anyhow!("slot {slot} not in the state"))?
                .0;
            anyhow::ensure!(
                (x - from_x) * dir > 20,
                "slot {slot} at x={x}, not moved from {from_x}"
            );
        }
        Ok(())
    })
    .await?;
    c.request(room_name, b"stop".to_vec()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_on_one_node_play_in_a_room_on_another_and_follow_it_through_a_kill()
-> anyhow::Result<()> {
    let (_nats, [n1, n2, n3]) = arena_cluster().await?;
    let key = room_living_on(&n2, "far").await?;
    let room_name = format!("arena/{key}");

    // Four players connected to n1 join the room that lives on n2.
    let mut clients = Vec::new();
    for i in 0..4 {
        let c = n1.player().await?;
        c.login_device(&format!("visitor-{i}")).await?;
        let room = c.join(&room_name).await?;
        let slot = slot_of(&c).await?;
        clients.push((c, room, slot));
    }
    assert_eq!(
        n2.admin().call_text(&room_name, "players").await?,
        "4",
        "on-join ran on the room's node for each player"
    );
    assert!(
        !n1.admin().live_keys("arena").await?.contains(&key),
        "no second copy of the room on the players' node"
    );
    // Each receives the whole room (4 players, 64 pickups) and its deltas.
    until_ok(
        Duration::from_secs(10),
        "the room's state on n1",
        || async {
            for (c, room, _) in &clients {
                let n = c.room_state(*room).map_or(0, |(_, s)| s.len());
                anyhow::ensure!(n == 68, "{n} entities mirrored");
            }
            Ok(())
        },
    )
    .await?;
    move_and_watch(&clients, 0, &room_name, "the mover's deltas").await?;

    // One leaves: the room on n2 hears it.
    let (leaver, leaver_room, _) = clients.pop().expect("four");
    leaver.leave(leaver_room)?;
    until_ok(Duration::from_secs(10), "the leave reaches n2", || async {
        let n = n2.admin().call_text(&room_name, "players").await?;
        anyhow::ensure!(n == "3", "{n} players");
        Ok(())
    })
    .await?;

    // The room's node dies. The room comes back on a survivor and its
    // members on n1 receive its state again.
    let _ = n2.kill9();
    let back = until_ok(
        Duration::from_secs(30),
        "the room back on a survivor",
        || async {
            for n in [&n1, &n3] {
                if n.admin().live_keys("arena").await?.contains(&key) {
                    return Ok(());
                }
            }
            anyhow::bail!("not live on n1 or n3 yet")
        },
    );
    back.await?;
    // The restored room knows the player: its move is accepted and every
    // member sees it.
    move_and_watch(&clients, 1, &room_name, "deltas after the kill").await?;
    let mut live_on = Vec::new();
    for (name, n) in [("n1", &n1), ("n3", &n3)] {
        if n.admin().live_keys("arena").await?.contains(&key) {
            live_on.push(name);
        }
    }
    assert_eq!(live_on.len(), 1, "one live copy of the room: {live_on:?}");
    let survivor = if live_on[0] == "n1" { &n1 } else { &n3 };
    assert_eq!(
        survivor.admin().call_text(&room_name, "players").await?,
        "3",
        "the room came back with its three members"
    );
    Ok(())
}

/// Players each node counts as connected, by node name (from `node`'s list).
async fn players_by_node(node: &Node) -> anyhow::Result<std::collections::HashMap<String, u64>> {
    let (_, body) = node.admin().get_json("/v1/cluster/nodes").await?;
    Ok(body["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| Some((n["name"].as_str()?.to_owned(), n["players"].as_u64()?)))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumes_on_another_node_with_its_rooms_even_after_its_node_is_killed()
-> anyhow::Result<()> {
    let (_nats, [n1, n2, n3]) = arena_cluster().await?;
    let key = room_living_on(&n2, "roam").await?;
    let room_name = format!("arena/{key}");

    // Two players on n1 in the room on n2.
    let mut clients = Vec::new();
    for i in 0..2 {
        let c = n1.player().await?;
        c.login_device(&format!("roamer-{i}")).await?;
        c.set_auto_resume(false);
        let room = c.join(&room_name).await?;
        let slot = slot_of(&c).await?;
        clients.push((c, room, slot));
    }
    until_ok(
        Duration::from_secs(10),
        "the room's state on n1",
        || async {
            for (c, room, _) in &clients {
                anyhow::ensure!(c.room_state(*room).is_some(), "no state yet");
            }
            Ok(())
        },
    )
    .await?;
    let token_before = clients[0].0.token().expect("logged in").0;

    // The first moves to n3 while n1 is alive: its session (same player,
    // same rooms, same handles) continues there and n1 lets go of it.
    let n3_addr = n3.quic.expect("n3 has a gateway");
    clients[0].0.move_to(
        n3_addr,
        anthill_client::Trust::Fingerprint(n3.fingerprint.clone()),
    )?;
    assert!(
        clients[0].0.resume().await?,
        "n3 resumed the session n1 held (one token key for the cluster)"
    );
    until_ok(
        Duration::from_secs(10),
        "n1 releases the session",
        || async {
            let players = players_by_node(&n2).await?;
            anyhow::ensure!(
                players.get("n1") == Some(&1) && players.get("n3") == Some(&1),
                "players by node: {players:?}"
            );
            Ok(())
        },
    )
    .await?;
    // Its mirror keeps following the room, and its requests reach it.
    move_and_watch(&clients, 1, &room_name, "deltas on n3 after the move").await?;
    move_and_watch(&clients, 0, &room_name, "the moved player's own moves").await?;
    assert_eq!(
        n2.admin().call_text(&room_name, "players").await?,
        "2",
        "moving nodes is not leaving the room"
    );

    // n3 dies with the session on it: the player resumes on n1, whose node
    // record said n3, and is in its room again.
    let _ = n3.kill9();
    let n1_addr = n1.quic.expect("n1 has a gateway");
    clients[0].0.move_to(
        n1_addr,
        anthill_client::Trust::Fingerprint(n1.fingerprint.clone()),
    )?;
    let resumed = until_ok(Duration::from_secs(15), "a resume on n1", || async {
        anyhow::ensure!(clients[0].0.resume().await?, "resumed as a fresh session");
        Ok(())
    });
    resumed.await?;
    move_and_watch(&clients, 0, &room_name, "moves after n3 died").await?;
    assert_eq!(
        n2.admin().call_text(&room_name, "players").await?,
        "2",
        "the room kept both players through its member's node dying"
    );
    // A token from before any move still names the same player and session
    // (it verifies on every node); a made-up session does not resume.
    let stranger = n2.player().await?;
    let err = stranger
        .login_resume(&format!("{token_before}x"))
        .await
        .expect_err("a tampered token is refused");
    assert!(
        err.to_string().contains("token") || err.to_string().contains("Unauthorized"),
        "{err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_taken_back_is_not_ended_by_the_grace_of_its_released_copy() -> anyhow::Result<()>
{
    // A short resume grace, so the released copy's grace runs out in the test.
    let grace = "[gateway]\nresume_grace_ms = 1500\n";
    let nats = NatsCluster::start(1).await?;
    let n1 = Node::start_clustered_with_config(&nats, "n1", grace).await?;
    let n2 = Node::start_clustered_with_config(&nats, "n2", grace).await?;
    n1.admin()
        .deploy("arena", "arena", "kind=keyed&players=open")
        .await?;
    served(&n2, "arena").await?;
    let key = room_living_on(&n2, "back").await?;
    let room_name = format!("arena/{key}");
    let c = n1.player().await?;
    c.login_device("boomerang").await?;
    c.set_auto_resume(false);
    let room = c.join(&room_name).await?;
    let to = |n: &Node| -> anyhow::Result<()> {
        c.move_to(
            n.quic.expect("a gateway"),
            anthill_client::Trust::Fingerprint(n.fingerprint.clone()),
        )?;
        Ok(())
    };
    // n1 → n2 → n1 within the grace: n1 released the session, then took it
    // back as a new session object.
    to(&n2)?;
    assert!(c.resume().await?);
    to(&n1)?;
    assert!(c.resume().await?);
    // Past the grace of the copy n1 released: the session n1 holds now is
    // still in its room, and its state still comes.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(
        n2.admin().call_text(&room_name, "players").await?,
        "1",
        "the player is still in its room"
    );
    let before = c.room_state(room).map(|(tick, _)| tick).unwrap_or(0);
    until_ok(Duration::from_secs(5), "new room states", || async {
        let now = c.room_state(room).map(|(tick, _)| tick).unwrap_or(0);
        anyhow::ensure!(now > before, "tick {now}, was {before}");
        Ok(())
    })
    .await?;
    // And its record still says where it is: it resumes on n2 again.
    to(&n2)?;
    assert!(c.resume().await?, "the session still exists cluster-wide");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_pushes_to_a_player_connected_to_another_node_in_order() -> anyhow::Result<()> {
    let nats = NatsCluster::start(1).await?;
    let n1 = Node::start_clustered(&nats, "n1").await?;
    let n2 = Node::start_clustered(&nats, "n2").await?;
    n1.admin().deploy("probe", "probe", "kind=keyed").await?;
    served(&n2, "probe").await?;
    // An actor on n1, in no room with the player, which is on n2.
    let sender = n1
        .admin()
        .keys_living_here("probe", "pusher", "state", 1)
        .await?;
    let sender = format!("probe/{}", sender[0]);
    let c = n2.player().await?;
    let player = c.login_device("far-listener").await?;
    for word in ["one", "two", "three"] {
        n1.admin()
            .call_text(&sender, &format!("push {player} reliable {word}"))
            .await?;
    }
    let mut got = Vec::new();
    while got.len() < 3 {
        let push = c
            .next_push(Duration::from_secs(10))
            .await
            .ok_or_else(|| anyhow::anyhow!("pushes so far: {got:?}"))?;
        got.push(String::from_utf8(push.payload)?);
    }
    assert_eq!(got, ["one", "two", "three"], "each push, in order");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_login_on_another_node_ends_the_session_held_elsewhere() -> anyhow::Result<()> {
    let (_nats, [n1, n2, n3]) = arena_cluster().await?;
    let key = room_living_on(&n2, "relog").await?;
    let room_name = format!("arena/{key}");
    let old = n1.player().await?;
    old.login_device("relogger").await?;
    old.set_auto_resume(false);
    old.join(&room_name).await?;
    assert_eq!(n2.admin().call_text(&room_name, "players").await?, "1");

    // The same player logs in anew on n3 (another device, the same
    // account) and goes straight back into the room.
    let new = n3.player().await?;
    new.login_device("relogger").await?;
    assert_eq!(new.player(), old.player(), "one player, two logins");
    let room = new.join(&room_name).await?;
    until_ok(
        Duration::from_secs(10),
        "n1 ends the old session",
        || async {
            anyhow::ensure!(!old.is_connected(), "the old connection is open");
            let players = players_by_node(&n2).await?;
            anyhow::ensure!(
                players.get("n1") == Some(&0) && players.get("n3") == Some(&1),
                "players by node: {players:?}"
            );
            Ok(())
        },
    )
    .await?;
    // The old session's leave, however late, does not take the player
    // out: it is in the room through n3, and its state keeps coming.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        n2.admin().call_text(&room_name, "players").await?,
        "1",
        "in the room once, through its new session"
    );
    until_ok(Duration::from_secs(10), "state on n3", || async {
        anyhow::ensure!(new.room_state(room).is_some(), "no state yet");
        Ok(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliable_pushes_kept_for_a_player_follow_its_session_to_another_node() -> anyhow::Result<()>
{
    let nats = NatsCluster::start(1).await?;
    let nodes = Node::start_cluster_of(&nats, 3).await?;
    let (n1, n2, n3) = (&nodes[0], &nodes[1], &nodes[2]);
    n1.admin().deploy("probe", "probe", "kind=keyed").await?;
    served(n2, "probe").await?;
    served(n3, "probe").await?;
    // The pushing actor lives on n3; the player connects to n1.
    let sender = n3
        .admin()
        .keys_living_here("probe", "pusher", "state", 1)
        .await?;
    let sender = format!("probe/{}", sender[0]);
    let c = n1.player().await?;
    let player = c.login_device("wanderer").await?;
    c.set_auto_resume(false);
    let push = |word: &'static str| {
        let (admin, sender) = (n3.admin(), sender.clone());
        async move {
            admin
                .call_text(&sender, &format!("push {player} reliable {word}"))
                .await
        }
    };
    let next = || async {
        let p = c
            .next_push(Duration::from_secs(10))
            .await
            .ok_or_else(|| anyhow::anyhow!("no push within 10 s"))?;
        anyhow::Ok(String::from_utf8(p.payload)?)
    };
    push("before").await?;
    assert_eq!(next().await?, "before");

    // The connection drops; n1 keeps the session and what is pushed to it.
    c.simulate_network_loss();
    until_ok(Duration::from_secs(10), "the connection gone", || async {
        anyhow::ensure!(!c.is_connected(), "still connected");
        Ok(())
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    push("kept-1").await?;
    push("kept-2").await?;

    // It resumes on n2: n1 hands over what it kept, then pushes go to n2.
    let n2_addr = n2.quic.expect("n2 has a gateway");
    c.move_to(
        n2_addr,
        anthill_client::Trust::Fingerprint(n2.fingerprint.clone()),
    )?;
    assert!(c.resume().await?, "n2 resumed the session n1 held");
    push("after").await?;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next().await?);
    }
    assert_eq!(
        got,
        ["kept-1", "kept-2", "after"],
        "the pushes kept on n1, then the next, in order and once"
    );
    Ok(())
}
