//! Players over the browser transports, spoken as a page would: WebSocket at
//! `/ws` on the web port and WebTransport (HTTP/3) on the player UDP port,
//! the same frames as `anthill/1`. Origins outside the allowed list are refused
//! on both; the self-signed certificate is one browsers can pin.

use anthill_protocol::wire::{self, FrameReader};
use anthill_protocol::{Auth, Frame};
use anthill_tests::Node;
use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use std::sync::atomic::Ordering;
use std::time::Duration;

async fn node() -> anyhow::Result<Node> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    admin
        .deploy("arena", "arena", "kind=keyed&players=open")
        .await?;
    Ok(node)
}

fn hello(device: &str) -> Frame {
    Frame::Hello {
        version: wire::VERSION,
        auth: Auth::Device { id: device.into() },
        last_push: 0,
    }
}

/// The frames of one WebSocket binary message (one or more, length-prefixed).
fn frames_of(message: &[u8]) -> anyhow::Result<Vec<Frame>> {
    let mut reader = FrameReader::new(1 << 20);
    reader.push(message);
    let mut out = Vec::new();
    while let Some(f) = reader.next_frame()? {
        out.push(f);
    }
    Ok(out)
}

type Ws = yawc::TcpWebSocket;

async fn ws_next(ws: &mut Ws, want: impl Fn(&Frame) -> bool) -> anyhow::Result<Frame> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no matching frame within 10 s")?
            .context("the WebSocket closed")?;
        if m.opcode() != yawc::frame::OpCode::Binary {
            continue;
        }
        for f in frames_of(m.payload())? {
            if want(&f) {
                return Ok(f);
            }
        }
    }
}

#[tokio::test]
async fn websocket_carries_login_requests_and_room_state() -> anyhow::Result<()> {
    let node = node().await?;
    let web = node.web.context("the node reports no web port")?;
    let url = format!("ws://{web}/ws").parse()?;
    let mut ws: Ws = yawc::WebSocket::connect(url)
        .with_options(yawc::Options::default().with_low_latency_compression())
        .await
        .context("WebSocket to /ws")?;
    let send = |f: &Frame| yawc::frame::Frame::binary(wire::encode_prefixed(f));
    ws.send(send(&hello("ws-device"))).await?;
    let Frame::Welcome { player, .. } = ws_next(&mut ws, |_| true).await? else {
        bail!("the first frame is not Welcome");
    };
    assert_eq!(player, anthill_gateway_device_id("ws-device"));
    ws.send(send(&Frame::Request {
        id: 1,
        target: "echo".into(),
        payload: b"over websocket".to_vec(),
    }))
    .await?;
    let reply = ws_next(&mut ws, |f| matches!(f, Frame::Reply { id: 1, .. })).await?;
    assert_eq!(
        reply,
        Frame::Reply {
            id: 1,
            payload: b"over websocket".to_vec()
        }
    );
    // A room's state (a datagram on QUIC) rides the socket; acks go back on it.
    ws.send(send(&Frame::Join {
        id: 2,
        room: "arena/ws".into(),
    }))
    .await?;
    let Frame::Joined { room, .. } =
        ws_next(&mut ws, |f| matches!(f, Frame::Joined { .. })).await?
    else {
        unreachable!()
    };
    let mut ticks = Vec::new();
    while ticks.len() < 5 {
        match ws_next(&mut ws, |f| {
            matches!(f, Frame::Snapshot { .. } | Frame::Delta { .. })
        })
        .await?
        {
            Frame::Snapshot {
                room: r,
                tick,
                entities,
            } => {
                assert_eq!(r, room);
                assert!(
                    !entities.is_empty(),
                    "the arena has pickups and this player"
                );
                ticks.push((tick, false));
                ws.send(send(&Frame::Ack { room, tick })).await?;
            }
            Frame::Delta {
                room: r,
                tick,
                base,
                ..
            } => {
                assert_eq!(r, room);
                assert!(
                    ticks.iter().any(|(t, _)| *t == base),
                    "a delta against an acked tick"
                );
                ticks.push((tick, true));
                ws.send(send(&Frame::Ack { room, tick })).await?;
            }
            _ => unreachable!(),
        }
    }
    assert!(
        ticks.iter().any(|(_, delta)| *delta),
        "after acks the node sends deltas: {ticks:?}"
    );
    let metrics = node.admin().metrics().await?;
    assert!(
        metrics.contains("anthill_player_connections_accepted_total{transport=\"websocket\"} 1"),
        "the connection is counted as a WebSocket one"
    );
    Ok(())
}

/// The node's fingerprint (hex SHA-256) as a WebTransport certificate hash.
fn pin(fingerprint: &str) -> anyhow::Result<wtransport::tls::Sha256Digest> {
    let bytes: [u8; 32] = hex::decode(fingerprint)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("a SHA-256 is 32 bytes"))?;
    Ok(bytes.into())
}

fn anthill_gateway_device_id(device: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(device.as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes")).max(1)
}

#[tokio::test]
async fn a_page_from_another_origin_is_refused_on_both_transports() -> anyhow::Result<()> {
    let node = node().await?;
    let web = node.web.context("no web port")?;
    let upgrade = |origin: &str| {
        reqwest::Client::new()
            .get(format!("http://{web}/ws"))
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("origin", origin.to_owned())
            .send()
    };
    let refused = upgrade("http://localhost:1").await?;
    assert_eq!(refused.status(), 403);
    let why = refused.text().await?;
    assert!(
        why.contains("http://localhost:1") && why.contains("allowed_origins"),
        "the refusal names the origin and the setting: {why}"
    );

    let quic = node.quic.context("no player port")?;
    let connect = |origin: String| {
        let fingerprint = node.fingerprint.clone();
        async move {
            let hash = pin(&fingerprint)?;
            let config = wtransport::ClientConfig::builder()
                .with_bind_default()
                .with_server_certificate_hashes([hash])
                .build();
            let options = wtransport::endpoint::ConnectOptions::builder(format!("https://{quic}/"))
                .add_header("origin", origin)
                .build();
            anyhow::Ok(wtransport::Endpoint::client(config)?.connect(options).await)
        }
    };
    let refused = connect("http://localhost:1".into()).await?;
    assert!(
        matches!(
            refused,
            Err(wtransport::error::ConnectingError::SessionRejected)
        ),
        "a WebTransport session from another origin is rejected: {:?}",
        refused.err()
    );
    let own = connect(format!("http://{web}")).await?;
    assert!(
        own.is_ok(),
        "the node's own web origin is allowed: {:?}",
        own.err()
    );
    let metrics = node.admin().metrics().await?;
    assert!(
        metrics.contains("anthill_player_connections_refused_total{reason=\"origin\"} 2"),
        "both refusals are counted"
    );
    Ok(())
}

#[tokio::test]
async fn webtransport_session_pinned_by_certificate_hash_plays() -> anyhow::Result<()> {
    let node = node().await?;
    let quic = node.quic.context("no player port")?;
    // wtransport applies the browsers' rule to pinned certificates (ECDSA
    // P-256, valid at most 14 days): connecting proves the node's qualifies.
    let hash = pin(&node.fingerprint)?;
    let config = wtransport::ClientConfig::builder()
        .with_bind_default()
        .with_server_certificate_hashes([hash])
        .build();
    let conn = wtransport::Endpoint::client(config)?
        .connect(format!("https://{quic}/"))
        .await
        .context("WebTransport to the player port")?;
    let (mut send, mut recv) = conn.open_bi().await?.await?;
    send.write_all(&wire::encode_prefixed(&hello("wt-device")))
        .await?;
    send.write_all(&wire::encode_prefixed(&Frame::Request {
        id: 1,
        target: "echo".into(),
        payload: b"over webtransport".to_vec(),
    }))
    .await?;
    send.write_all(&wire::encode_prefixed(&Frame::Join {
        id: 2,
        room: "arena/wt".into(),
    }))
    .await?;
    let mut reader = FrameReader::new(1 << 20);
    let mut buf = vec![0u8; 64 << 10];
    let (mut welcome, mut reply, mut joined) = (false, false, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(welcome && reply && joined) {
        let n = tokio::time::timeout_at(deadline, recv.read(&mut buf))
            .await
            .context("Welcome, Reply and Joined within 10 s")??
            .context("the control stream ended")?;
        reader.push(&buf[..n]);
        while let Some(f) = reader.next_frame()? {
            match f {
                Frame::Welcome { .. } => welcome = true,
                Frame::Reply { id: 1, payload } => {
                    assert_eq!(payload, b"over webtransport");
                    reply = true;
                }
                Frame::Joined { id: 2, .. } => joined = true,
                // State frames may come on the stream before the datagrams.
                _ => {}
            }
        }
    }
    // Room state comes as WebTransport datagrams.
    let mut states = 0;
    while states < 3 {
        let d = tokio::time::timeout_at(deadline, conn.receive_datagram())
            .await
            .context("room state datagrams within 10 s")??;
        assert!(
            d.payload().len() <= 1_200,
            "datagrams fit a browser's limit"
        );
        match wire::decode(&d.payload(), 1 << 20)? {
            Frame::Snapshot { .. } | Frame::Delta { .. } => states += 1,
            other => bail!("unexpected datagram {other:?}"),
        }
    }
    let metrics = node.admin().metrics().await?;
    assert!(
        metrics.contains("anthill_player_connections_accepted_total{transport=\"webtransport\"} 1"),
        "the session is counted as WebTransport"
    );
    Ok(())
}

#[tokio::test]
async fn the_self_signed_certificate_is_renewed_without_dropping_players() -> anyhow::Result<()> {
    // A 20 s certificate is renewed after 15 s (its last quarter).
    let node = Node::start_with_config("[gateway]\nself_signed_lifetime_s = 20\n").await?;
    node.admin().deploy("echo", "echo", "").await?;
    let web = node.web.context("no web port")?;
    let connect_json = || async {
        let v: serde_json::Value = reqwest::get(format!("http://{web}/play/connect.json"))
            .await?
            .json()
            .await?;
        anyhow::Ok(v)
    };
    let before = connect_json().await?;
    assert_eq!(before["certificate_sha256"], node.fingerprint.as_str());
    let expires = before["certificate_expires_at_ms"]
        .as_u64()
        .context("an expiry")?;
    let now = anthill_core_now_ms();
    assert!(
        expires > now && expires <= now + 21_000,
        "valid for the configured 20 s: expires in {} ms",
        expires.saturating_sub(now)
    );
    let player = node.player().await?;
    player.login_device("through-rotation").await?;
    let renewed =
        anthill_tests::eventually(Duration::from_secs(30), "a renewed certificate", || async {
            let fp = std::fs::read_to_string(node.data.join("gateway.fingerprint"))?
                .trim()
                .to_owned();
            Ok((fp != node.fingerprint).then_some(fp))
        })
        .await?;
    assert_eq!(
        connect_json().await?["certificate_sha256"],
        renewed.as_str()
    );
    // The player connected before the renewal is still on, and served.
    assert_eq!(
        player.request("echo", b"still here".to_vec()).await?,
        b"still here"
    );
    // New connections get the new certificate: the old pin no longer matches.
    let addr = node.quic.context("no player port")?;
    let fresh =
        anthill_client::Client::connect(addr, anthill_client::Trust::Fingerprint(renewed)).await?;
    fresh.login_device("after-rotation").await?;
    let stale = anthill_client::Client::connect(
        addr,
        anthill_client::Trust::Fingerprint(node.fingerprint.clone()),
    )
    .await;
    let stale_login = match stale {
        Ok(c) => c.login_device("stale-pin").await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(
        stale_login.is_err(),
        "a client pinning the old certificate is refused"
    );
    Ok(())
}

fn anthill_core_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// A room's state reaches `client` (its mirror fills within 10 s).
async fn room_fills(client: &anthill_client::Client, room: u32) -> anyhow::Result<usize> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((_, entities)) = client.room_state(room)
            && !entities.is_empty()
        {
            return Ok(entities.len());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no room state within 10 s over {}",
            client.transport().name()
        );
        client.state_changed(Duration::from_millis(200)).await;
    }
}

/// The Rust client speaks both browser transports with the same API: login,
/// a request, a room's mirror, a resume after the connection drops; and
/// `anthill bot --transport` plays the arena over each with no error.
#[tokio::test]
async fn the_rust_client_and_the_bot_play_over_both_browser_transports() -> anyhow::Result<()> {
    use anthill_client::{Client, Transport, Trust};
    let node = node().await?;
    node.admin().deploy("lobby", "lobby", "").await?;
    let web = node.web.context("no web port")?;
    let quic = node.quic.context("no player port")?;
    let endpoint =
        anthill_client::webtransport_endpoint(&Trust::Fingerprint(node.fingerprint.clone()))?;
    for (client, transport) in [
        (
            Client::connect_websocket(web, None).await?,
            Transport::WebSocket,
        ),
        (
            Client::connect_webtransport(endpoint.clone(), quic).await?,
            Transport::WebTransport,
        ),
    ] {
        let name = transport.name();
        assert_eq!(client.transport(), transport);
        let player = client.login_device(&format!("rust-{name}")).await?;
        assert_eq!(
            client.request("echo", name.as_bytes().to_vec()).await?,
            name.as_bytes(),
            "echo over {name}"
        );
        let room = client.join(&format!("arena/rust-{name}")).await?;
        room_fills(&client, room).await?;
        // A dropped connection: the client resumes as the same player and the
        // room's state comes again.
        client.set_auto_resume(false);
        client.simulate_network_loss();
        anthill_tests::eventually(Duration::from_secs(5), "the disconnect", || async {
            Ok((!client.is_connected()).then_some(()))
        })
        .await?;
        anyhow::ensure!(
            client.resume().await?,
            "over {name} the session was not resumed"
        );
        assert_eq!(
            client.player(),
            Some(player),
            "same player after resume over {name}"
        );
        let frames = client.stats().state_frames.load(Ordering::Relaxed);
        anthill_tests::eventually(
            Duration::from_secs(5),
            "room state after the resume",
            || async {
                Ok(
                    (client.stats().state_frames.load(Ordering::Relaxed) > frames + 5)
                        .then_some(()),
                )
            },
        )
        .await
        .with_context(|| format!("over {name}"))?;
        assert!(
            client.wire_bytes_in() > 0,
            "no wire bytes counted over {name}"
        );
        client.close();
    }

    for transport in ["websocket", "webtransport"] {
        let out = std::process::Command::new(anthill_tests::anthill_bin())
            .args(["bot", "--data"])
            .arg(&node.data)
            .args(["--scenario", "arena", "--transport", transport])
            .args(["--players", "4", "--duration", "3", "--json"])
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "bot over {transport} failed: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))?;
        assert_eq!(s["transport"], transport);
        assert_eq!(s["connected"], 4, "{s}");
        assert_eq!(s["errors"], 0, "{s}");
        // 4 players in rooms at 20 Hz: state flowed (hundreds of bytes a second each).
        assert!(
            s["bytes_per_player_per_sec"].as_f64().unwrap_or(0.0) > 100.0,
            "little room state over {transport}: {s}"
        );
    }
    let metrics = node.admin().metrics().await?;
    for transport in ["websocket", "webtransport"] {
        let accepted = metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "anthill_player_connections_accepted_total{{transport=\"{transport}\"}} "
                ))
            })
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        assert!(
            accepted >= 6.0,
            "{transport}: {accepted} connections accepted, want ≥ 6"
        );
    }
    Ok(())
}

/// A WebSocket upgraded by hand on a raw TCP stream, to see every frame the
/// node sends (client libraries hide a second Close).
async fn raw_websocket(web: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(web).await?;
    tcp.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {web}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .as_bytes(),
    )
    .await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        anyhow::ensure!(
            tcp.read(&mut b).await? == 1,
            "the upgrade answer ended early"
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    anyhow::ensure!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
    Ok(tcp)
}

/// A masked client frame (`opcode`, short payload).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// The opcodes of every frame the node sends until it closes the TCP stream.
async fn opcodes_until_eof(mut tcp: tokio::net::TcpStream) -> anyhow::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut bytes))
        .await
        .context("the node did not close the TCP connection within 10 s")??;
    let (mut ops, mut at) = (Vec::new(), 0);
    while at + 2 <= bytes.len() {
        ops.push(bytes[at] & 0x0f);
        let (len, header) = match bytes[at + 1] & 0x7f {
            126 => (
                u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize,
                4,
            ),
            127 => (
                u64::from_be_bytes(bytes[at + 2..at + 10].try_into()?) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        at += header + len;
    }
    Ok(ops)
}

/// The closing handshake is one Close each way, whoever starts it: browsers
/// fail a connection that receives a second ("Close received after close").
#[tokio::test]
async fn a_websocket_close_is_answered_once_and_sent_once() -> anyhow::Result<()> {
    let node = node().await?;
    let web = node.web.context("no web port")?;
    const CLOSE: u8 = 0x8;

    // The player closes: the node answers with one Close, then ends the stream.
    let mut tcp = raw_websocket(web).await?;
    tokio::io::AsyncWriteExt::write_all(&mut tcp, &client_frame(CLOSE, &1000u16.to_be_bytes()))
        .await?;
    let ops = opcodes_until_eof(tcp).await?;
    assert_eq!(
        ops.iter().filter(|&&o| o == CLOSE).count(),
        1,
        "frames after the player's Close: {ops:?}"
    );

    // The node closes (a text message is not the protocol): one Close.
    let mut tcp = raw_websocket(web).await?;
    tokio::io::AsyncWriteExt::write_all(&mut tcp, &client_frame(0x1, b"hello")).await?;
    let ops = opcodes_until_eof(tcp).await?;
    assert_eq!(
        ops.iter().filter(|&&o| o == CLOSE).count(),
        1,
        "frames the node sent when closing: {ops:?}"
    );
    Ok(())
}
