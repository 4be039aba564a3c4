//! The player port's two QUIC endpoints: native clients (which tag their
//! first packet) on the one the gateway drives itself, everyone else on
//! quinn's, both speaking `anthill/1` on the same port.

use anthill_protocol::Frame;
use anthill_protocol::wire::{self, Auth, FrameReader, MAX_FRAME};
use anthill_tests::{Node, eventually};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;

/// A client that speaks `anthill/1` over quinn with quinn's own kind of
/// first connection ID (20 bytes, no native suffix), as a third-party
/// client written from docs/protocol.md would: it logs in and asks `echo`.
async fn untagged_echo(node: &Node, device: &str, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut config = anthill_client::quic_client_config(&anthill_client::Trust::Fingerprint(
        node.fingerprint.clone(),
    ))?;
    config.initial_dst_cid_provider(Arc::new(|| quinn::ConnectionId::new(&[0x5a; 20])));
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    endpoint.set_default_client_config(config);
    let conn = endpoint
        .connect(node.quic.context("no player port")?, "localhost")?
        .await
        .context("an untagged client's handshake")?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let hello = Frame::Hello {
        version: wire::VERSION,
        auth: Auth::Device { id: device.into() },
        last_push: 0,
    };
    send.write_all(&wire::encode_prefixed(&hello)).await?;
    let request = Frame::Request {
        id: 1,
        target: "echo".into(),
        payload: payload.to_vec(),
    };
    send.write_all(&wire::encode_prefixed(&request)).await?;
    let mut reader = FrameReader::new(MAX_FRAME);
    let reply = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            while let Some(frame) = reader.next_frame()? {
                match frame {
                    Frame::Reply { id: 1, payload } => return anyhow::Ok(payload),
                    Frame::Error { message, .. } => anyhow::bail!("refused: {message}"),
                    _ => {}
                }
            }
            let chunk = recv
                .read_chunk(64 << 10, true)
                .await?
                .context("the node ended the stream")?;
            reader.push(&chunk.bytes);
        }
    })
    .await
    .context("no reply within 10 s")??;
    conn.close(0u32.into(), b"done");
    Ok(reply)
}

async fn direct_connections(node: &Node) -> anyhow::Result<f64> {
    node.admin()
        .metric("anthill_player_direct_connections", "")
        .await
}

#[tokio::test]
async fn native_and_untagged_clients_share_the_player_port() -> anyhow::Result<()> {
    let node = Node::start_deployed(&[("echo", "echo", "")]).await?;
    let native = node.player().await?;
    native.login_device("native").await?;
    assert_eq!(native.request("echo", b"tagged".to_vec()).await?, b"tagged");
    // The native client is on the direct endpoint.
    eventually(Duration::from_secs(5), "one direct connection", || async {
        Ok((direct_connections(&node).await? == 1.0).then_some(()))
    })
    .await?;
    // A client that does not tag its first packet is served as well, by
    // quinn's endpoint: the direct one still holds only the native client.
    assert_eq!(untagged_echo(&node, "untagged", b"plain").await?, b"plain");
    assert_eq!(direct_connections(&node).await?, 1.0);
    assert_eq!(
        node.admin()
            .metric(
                "anthill_player_connections_accepted_total",
                "transport=\"quic\""
            )
            .await?,
        2.0
    );
    // The native client is unaffected by the other one.
    assert_eq!(native.request("echo", b"still".to_vec()).await?, b"still");
    Ok(())
}

#[tokio::test]
async fn with_the_direct_endpoint_off_native_clients_use_quinns() -> anyhow::Result<()> {
    let node = Node::start_with_config("[gateway]\ndirect_endpoint = false\n").await?;
    node.admin().deploy("echo", "echo", "").await?;
    let native = node.player().await?;
    native.login_device("native").await?;
    assert_eq!(
        native.request("echo", b"via quinn".to_vec()).await?,
        b"via quinn"
    );
    assert_eq!(direct_connections(&node).await?, 0.0);
    assert_eq!(untagged_echo(&node, "untagged", b"plain").await?, b"plain");
    Ok(())
}

/// Names of the node's threads.
fn thread_names(node: &Node) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{}/task", node.pid()))? {
        names.push(
            std::fs::read_to_string(t?.path().join("comm"))?
                .trim()
                .to_owned(),
        );
    }
    Ok(names)
}

#[tokio::test]
async fn on_a_thread_of_its_own_the_direct_endpoint_serves_both_kinds_of_client()
-> anyhow::Result<()> {
    let node = Node::start_with_config("[gateway]\nquic_thread = true\n").await?;
    node.admin().deploy("echo", "echo", "").await?;
    assert!(
        thread_names(&node)?.iter().any(|n| n == "anthill-quic"),
        "no anthill-quic thread: {:?}",
        thread_names(&node)?
    );
    let native = node.player().await?;
    native.login_device("native").await?;
    assert_eq!(native.request("echo", b"thread".to_vec()).await?, b"thread");
    assert_eq!(direct_connections(&node).await?, 1.0);
    // Packets for quinn's endpoint cross from that thread and back.
    assert_eq!(
        untagged_echo(&node, "untagged", b"crossed").await?,
        b"crossed"
    );
    assert_eq!(native.request("echo", b"still".to_vec()).await?, b"still");
    // And the node stops cleanly: the thread ends once its connections close.
    node.stop()?;
    Ok(())
}

#[tokio::test]
async fn by_default_the_direct_endpoint_is_a_task_of_the_runtime() -> anyhow::Result<()> {
    let node = Node::start_deployed(&[("echo", "echo", "")]).await?;
    let native = node.player().await?;
    native.login_device("native").await?;
    assert_eq!(native.request("echo", b"task".to_vec()).await?, b"task");
    assert!(!thread_names(&node)?.iter().any(|n| n == "anthill-quic"));
    Ok(())
}

/// Packets an arena player of the swarm sent a second, on a node with this
/// gateway config (20 players, 6 s, handshakes included).
async fn player_packets_per_sec(config: &str) -> anyhow::Result<f64> {
    let node = Node::start_with_config(config).await?;
    node.admin().deploy("lobby", "lobby", "").await?;
    node.admin().deploy("arena", "arena", "kind=keyed").await?;
    let s = node.bot_summary(&[
        "--scenario",
        "arena",
        "--swarm",
        "--players",
        "20",
        "--duration",
        "6",
    ])?;
    anyhow::ensure!(
        s["steady_states_per_player_per_sec"].as_f64() > Some(15.0),
        "the players kept up with their rooms: {s}"
    );
    s["packets_out_per_player_per_sec"]
        .as_f64()
        .with_context(|| format!("no packet count: {s}"))
}

/// A room's state every 50 ms is ack-eliciting: at QUIC's own 25 ms ACK
/// delay a player sends an ACK after every state. The node asks players to
/// hold ACKs 200 ms or 4 packets (`gateway.player_ack_delay_ms`,
/// `player_ack_packets`), so each rides on the player's state ack, sent
/// every fourth state; with a 3-packet allowance the fourth state forces an
/// ACK of its own just before the state ack goes.
#[tokio::test]
async fn players_hold_their_acks_as_long_as_the_node_asks() -> anyhow::Result<()> {
    let held = player_packets_per_sec("[gateway]\n").await?;
    let three = player_packets_per_sec("[gateway]\nplayer_ack_packets = 3\n").await?;
    let every_state = player_packets_per_sec("[gateway]\nplayer_ack_delay_ms = 0\n").await?;
    eprintln!("player packets/s: held {held:.1}, 3 allowed {three:.1}, not held {every_state:.1}");
    assert!(
        held < 9.0 && three > 9.5 && every_state > 17.0,
        "packets a player sent a second: {held:.1} held, {three:.1} with 3 packets allowed, \
         {every_state:.1} at QUIC's default"
    );
    // A delay that would hide a lost reply for seconds is refused.
    let refused = match Node::start_with_config("[gateway]\nplayer_ack_delay_ms = 5000\n").await {
        Ok(node) => panic!("the node started:\n{}", node.output()),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        refused.contains("gateway.player_ack_delay_ms = 5000 is above 1000"),
        "{refused}"
    );
    Ok(())
}
