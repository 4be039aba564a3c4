//! The three ways a client reaches a node, reduced to what a session needs:
//! a queue of bytes for the control stream (written by a task), a way to send
//! one frame unreliably, what arrives ([`Input`]), closing, and the bytes the
//! wire carried in. QUIC with ALPN `anthill/1` (what games use), WebTransport
//! (HTTP/3 on the same UDP port) and WebSocket (the web port's `/ws`) carry
//! the same frames; docs/protocol.md says what maps to what. The session
//! above (lib.rs) does not know which it has.

use crate::{ClientError, Trust, tls};
use anthill_protocol::Frame;
use anthill_protocol::wire;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};

/// Which transport a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// QUIC, ALPN `anthill/1`: reliable control stream and datagrams.
    Quic,
    /// WebTransport over HTTP/3 on the player port: the browsers' UDP path.
    WebTransport,
    /// WebSocket on the web port: for networks and platforms without UDP.
    WebSocket,
}

impl Transport {
    /// The name in metrics and the docs.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Quic => "quic",
            Transport::WebTransport => "webtransport",
            Transport::WebSocket => "websocket",
        }
    }
}

type WtEndpoint = wtransport::Endpoint<wtransport::endpoint::endpoint_side::Client>;

/// The QUIC client configuration a player connection uses (ALPN `anthill/1`,
/// the node's certificate checked as `trust` says, keep-alives every 5 s):
/// for clients that drive `quinn-proto` themselves, as `anthill bot`'s swarm
/// does.
pub fn quic_client_config(trust: &Trust) -> Result<quinn::ClientConfig, ClientError> {
    let crypto = tls::client_config(trust, wire::ALPN).map_err(ClientError::Connect)?;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(crypto)
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    // Tagged as a native client's, so that the node serves the connection
    // on the endpoint it drives itself (docs/protocol.md).
    config.initial_dst_cid_provider(Arc::new(native_initial_cid));
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(Duration::from_secs(5)))
        .datagram_receive_buffer_size(Some(1 << 20));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// A first destination connection ID: random, then
/// [`wire::NATIVE_CID_SUFFIX`].
fn native_initial_cid() -> quinn::ConnectionId {
    let mut cid = [0u8; wire::NATIVE_CID_LEN];
    let random = wire::NATIVE_CID_LEN - wire::NATIVE_CID_SUFFIX.len();
    rand::fill(&mut cid[..random]);
    cid[random..].copy_from_slice(&wire::NATIVE_CID_SUFFIX);
    quinn::ConnectionId::new(&cid)
}

/// How to open a new connection to the node (again, on resume).
#[derive(Clone)]
pub(crate) enum Dialer {
    Quic {
        endpoint: quinn::Endpoint,
        config: quinn::ClientConfig,
        addr: SocketAddr,
    },
    WebTransport {
        endpoint: Arc<WtEndpoint>,
        url: String,
    },
    WebSocket {
        /// `ws://` or `wss://` `HOST:PORT/ws`.
        url: String,
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsConnector>,
    },
}

/// How much the control stream may queue before the client counts as gone.
const OUTBOUND: usize = 4096;
/// A WebSocket message the client writes holds at most this (several frames
/// queued at once go in one message).
const BATCH_BYTES: usize = 16 << 10;

impl Dialer {
    /// The same transport to another node at `addr` (QUIC only; browser
    /// transports are dialed by URL).
    pub(crate) fn moved_to(&self, addr: SocketAddr, trust: &Trust) -> Result<Dialer, ClientError> {
        match self {
            Dialer::Quic { endpoint, .. } => Dialer::quic(endpoint.clone(), addr, trust),
            _ => Err(ClientError::Connect(
                "moving to another node is for QUIC clients".into(),
            )),
        }
    }

    pub(crate) fn quic(
        endpoint: quinn::Endpoint,
        addr: SocketAddr,
        trust: &Trust,
    ) -> Result<Dialer, ClientError> {
        Ok(Dialer::Quic {
            endpoint,
            config: quic_client_config(trust)?,
            addr,
        })
    }

    pub(crate) fn webtransport(
        endpoint: Arc<WtEndpoint>,
        addr: SocketAddr,
    ) -> Result<Dialer, ClientError> {
        Ok(Dialer::WebTransport {
            endpoint,
            url: format!("https://{addr}/"),
        })
    }

    pub(crate) fn websocket(
        addr: SocketAddr,
        trust: Option<&Trust>,
    ) -> Result<Dialer, ClientError> {
        let tls = match trust {
            None => None,
            Some(t) => Some(tokio_rustls::TlsConnector::from(Arc::new(
                tls::client_config(t, b"http/1.1").map_err(ClientError::Connect)?,
            ))),
        };
        let scheme = if tls.is_some() { "wss" } else { "ws" };
        Ok(Dialer::WebSocket {
            url: format!("{scheme}://localhost:{}/ws", addr.port()),
            addr,
            tls,
        })
    }

    pub(crate) fn transport(&self) -> Transport {
        match self {
            Dialer::Quic { .. } => Transport::Quic,
            Dialer::WebTransport { .. } => Transport::WebTransport,
            Dialer::WebSocket { .. } => Transport::WebSocket,
        }
    }

    /// A new connection: its handle, the control-stream queue (a writer task
    /// drains it) and what it receives.
    pub(crate) async fn open(&self) -> Result<(Conn, mpsc::Sender<Bytes>, Source), ClientError> {
        let connect = |e: &dyn std::fmt::Display| ClientError::Connect(e.to_string());
        let (out, mut out_rx) = mpsc::channel::<Bytes>(OUTBOUND);
        match self {
            Dialer::Quic {
                endpoint,
                config,
                addr,
            } => {
                let conn = endpoint
                    .connect_with(config.clone(), *addr, "localhost")
                    .map_err(|e| connect(&e))?
                    .await
                    .map_err(|e| connect(&e))?;
                let (mut send, recv) = conn.open_bi().await.map_err(|e| connect(&e))?;
                tokio::spawn(async move {
                    while let Some(b) = out_rx.recv().await {
                        if send.write_all(&b).await.is_err() {
                            break;
                        }
                    }
                });
                Ok((Conn::Quic(conn.clone()), out, Source::Quic { conn, recv }))
            }
            Dialer::WebTransport { endpoint, url } => {
                // wtransport 0.7's server now and then closes a session setup
                // with H3_FRAME_UNEXPECTED when many arrive at once (about 1
                // in 300 at 1,000 connects/s here); a second attempt gets in.
                let mut attempt = 0;
                let conn = loop {
                    attempt += 1;
                    match endpoint.connect(url.as_str()).await {
                        Ok(c) => break c,
                        Err(wtransport::error::ConnectingError::ConnectionError(_))
                            if attempt < 3 =>
                        {
                            tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                        }
                        Err(e) => return Err(connect(&e)),
                    }
                };
                let (mut send, recv) = conn
                    .open_bi()
                    .await
                    .map_err(|e| connect(&e))?
                    .await
                    .map_err(|e| connect(&e))?;
                tokio::spawn(async move {
                    while let Some(b) = out_rx.recv().await {
                        if send.write_all(&b).await.is_err() {
                            break;
                        }
                    }
                });
                Ok((
                    Conn::WebTransport(conn.clone()),
                    out,
                    Source::WebTransport {
                        conn,
                        recv,
                        buf: vec![0; 64 << 10],
                    },
                ))
            }
            Dialer::WebSocket { url, addr, tls } => {
                let wire_in = Arc::new(AtomicU64::new(0));
                let tcp = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| ClientError::Connect(format!("{url}: {e}")))?;
                let _ = tcp.set_nodelay(true);
                let counted = Counted {
                    inner: tcp,
                    read: wire_in.clone(),
                };
                let io: Box<dyn Io> = match tls {
                    None => Box::new(counted),
                    Some(c) => {
                        let name = rustls::pki_types::ServerName::try_from("localhost")
                            .expect("a valid name");
                        Box::new(
                            c.connect(name, counted)
                                .await
                                .map_err(|e| ClientError::Connect(format!("{url}: TLS: {e}")))?,
                        )
                    }
                };
                let ws = yawc::WebSocket::handshake(
                    url.parse().map_err(|e| connect(&e))?,
                    io,
                    yawc::Options::default().with_low_latency_compression(),
                )
                .await
                .map_err(|e| ClientError::Connect(format!("{url}: {e}")))?;
                let (mut sink, stream) = ws.split();
                let (close, mut closing) = watch::channel(false);
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            b = out_rx.recv() => {
                                let Some(first) = b else { break };
                                let message = batch(first, &mut out_rx);
                                if sink.send(yawc::frame::Frame::binary(message)).await.is_err() {
                                    return;
                                }
                            }
                            changed = closing.changed() => {
                                if changed.is_err() || *closing.borrow() { break; }
                            }
                        }
                    }
                    let _ = sink
                        .send(yawc::frame::Frame::close(
                            yawc::close::CloseCode::Normal,
                            "bye",
                        ))
                        .await;
                    // Not `close()`, which would send a second Close.
                    let _ = sink.flush().await;
                });
                let close = Arc::new(close);
                Ok((
                    Conn::WebSocket {
                        out: out.clone(),
                        close: close.clone(),
                        wire_in,
                    },
                    out,
                    Source::WebSocket {
                        stream,
                        closed: close.subscribe(),
                    },
                ))
            }
        }
    }
}

/// `first` and whatever else is queued now, up to [`BATCH_BYTES`].
fn batch(first: Bytes, queue: &mut mpsc::Receiver<Bytes>) -> Bytes {
    anthill_protocol::wire::coalesce(first, BATCH_BYTES, || queue.try_recv().ok())
}

/// A live connection's handle.
#[derive(Clone)]
pub(crate) enum Conn {
    Quic(quinn::Connection),
    WebTransport(wtransport::Connection),
    WebSocket {
        out: mpsc::Sender<Bytes>,
        close: Arc<watch::Sender<bool>>,
        wire_in: Arc<AtomicU64>,
    },
}

impl Conn {
    /// Sends `frame` unreliably: a datagram, or over WebSocket a message
    /// dropped rather than queued when the socket is behind.
    pub(crate) fn send_unreliable(&self, frame: &Frame) {
        match self {
            Conn::Quic(c) => {
                let _ = c.send_datagram(Bytes::from(wire::encode(frame)));
            }
            Conn::WebTransport(c) => {
                let _ = c.send_datagram(wire::encode(frame));
            }
            Conn::WebSocket { out, .. } => {
                let _ = out.try_send(Bytes::from(wire::encode_prefixed(frame)));
            }
        }
    }

    pub(crate) fn close(&self, reason: &[u8]) {
        match self {
            Conn::Quic(c) => c.close(0u32.into(), reason),
            Conn::WebTransport(c) => c.close(0u32.into(), reason),
            Conn::WebSocket { close, .. } => {
                let _ = close.send(true);
            }
        }
    }

    /// Resolves once the connection is gone.
    pub(crate) async fn closed(&self) {
        match self {
            Conn::Quic(c) => {
                c.closed().await;
            }
            Conn::WebTransport(c) => {
                c.closed().await;
            }
            Conn::WebSocket { close, .. } => {
                let mut rx = close.subscribe();
                let _ = rx.wait_for(|c| *c).await;
            }
        }
    }

    /// Bytes the wire carried in: UDP payloads (QUIC, WebTransport) or TCP
    /// payload (WebSocket, compressed and framed as sent).
    pub(crate) fn wire_bytes_in(&self) -> u64 {
        match self {
            Conn::Quic(c) => c.stats().udp_rx.bytes,
            Conn::WebTransport(c) => c.quic_connection().stats().udp_rx.bytes,
            Conn::WebSocket { wire_in, .. } => wire_in.load(Ordering::Relaxed),
        }
    }
}

/// What a connection received.
pub(crate) enum Input {
    /// Bytes of the control stream (frames cut anywhere).
    Stream(Bytes),
    /// A WebSocket message: whole frames, length-prefixed.
    Message(Bytes),
    /// One frame, no prefix.
    Datagram(Bytes),
}

/// The receiving half of a connection.
pub(crate) enum Source {
    Quic {
        conn: quinn::Connection,
        recv: quinn::RecvStream,
    },
    WebTransport {
        conn: wtransport::Connection,
        recv: wtransport::RecvStream,
        buf: Vec<u8>,
    },
    WebSocket {
        stream: futures::stream::SplitStream<yawc::WebSocket<Box<dyn Io>>>,
        closed: watch::Receiver<bool>,
    },
}

impl Source {
    /// The next input; `None` once the connection is gone.
    pub(crate) async fn next(&mut self) -> Option<Input> {
        match self {
            Source::Quic { conn, recv } => tokio::select! {
                chunk = recv.read_chunk(64 << 10, true) => match chunk {
                    Ok(Some(c)) => Some(Input::Stream(c.bytes)),
                    _ => None,
                },
                d = conn.read_datagram() => d.ok().map(Input::Datagram),
            },
            Source::WebTransport { conn, recv, buf } => tokio::select! {
                n = recv.read(buf) => match n {
                    Ok(Some(n)) => Some(Input::Stream(Bytes::copy_from_slice(&buf[..n]))),
                    _ => None,
                },
                d = conn.receive_datagram() => d.ok().map(|d| Input::Datagram(d.payload())),
            },
            Source::WebSocket { stream, closed } => loop {
                tokio::select! {
                    m = stream.next() => {
                        let m = m?;
                        match m.opcode() {
                            yawc::frame::OpCode::Binary => return Some(Input::Message(m.into_payload())),
                            yawc::frame::OpCode::Close => return None,
                            yawc::frame::OpCode::Text => return None,
                            _ => continue,
                        }
                    }
                    _ = closed.wait_for(|c| *c) => return None,
                }
            },
        }
    }
}

/// What a WebSocket runs over: TCP, or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A TCP stream that counts the bytes read from it.
struct Counted {
    inner: tokio::net::TcpStream,
    read: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A WebTransport client endpoint (one UDP socket) that many clients can
/// share, trusting the node as `trust` says.
pub fn webtransport_endpoint(trust: &Trust) -> Result<Arc<WtEndpoint>, ClientError> {
    let tls = tls::client_config(trust, b"h3").map_err(ClientError::Connect)?;
    let mut transport = wtransport::config::QuicTransportConfig::default();
    transport
        .keep_alive_interval(Some(Duration::from_secs(5)))
        .datagram_receive_buffer_size(Some(1 << 20));
    let config = wtransport::ClientConfig::builder()
        .with_bind_default()
        .with_custom_tls_and_transport(tls, transport)
        .build();
    wtransport::Endpoint::client(config)
        .map(Arc::new)
        .map_err(|e| ClientError::Connect(e.to_string()))
}
