//! # anthill-client: a player's connection to an Anthill node
//!
//! ```no_run
//! # async fn demo() -> Result<(), anthill_client::ClientError> {
//! use anthill_client::{Client, Trust};
//! let client = Client::connect("127.0.0.1:7351".parse().unwrap(), Trust::Fingerprint("ab12…".into())).await?;
//! let player = client.login_device("my-device-id").await?;
//! let reply = client.request("echo", b"hello".to_vec()).await?;
//! let room = client.join("arena/room-1").await?;
//! if let Some((tick, entities)) = client.room_state(room) { /* render */ }
//! # Ok(()) }
//! ```
//!
//! The protocol rules are `anthill-protocol`'s; this crate adds the transports
//! (QUIC with quinn, and the browsers' two, WebTransport and WebSocket, for
//! engines and load tests of those paths), certificate pinning, request/reply
//! matching, a mirror of each joined room's state (acknowledged as applied,
//! one state in [`DEFAULT_ACK_EVERY`], each ack held [`ACK_DELAY`] so it
//! shares a packet with QUIC's own), and automatic resume: when the
//! connection drops, the client reconnects with its session token, keeps its
//! rooms, and receives the reliable pushes it missed.

mod tls;
mod transport;

pub use anthill_protocol::session::ACK_DELAY;
pub use anthill_protocol::sync::EntityMap;
pub use anthill_protocol::{ErrorCode, Frame};
pub use transport::{Transport, quic_client_config, webtransport_endpoint};

use anthill_protocol::Auth;
use anthill_protocol::session::{ClientEvent, ClientSession};
use anthill_protocol::wire::{self, FrameReader, MAX_FRAME};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use transport::{Conn, Dialer, Input};

/// How the client trusts the node's certificate.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Accept exactly the certificate with this SHA-256 (hex), as printed by
    /// `anthill serve` (self-signed node certificates).
    Fingerprint(String),
    /// Verify the chain against these PEM root certificates.
    CaPem(Vec<u8>),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("the node closed the session: {code:?}: {message}")]
    Closed { code: ErrorCode, message: String },
    #[error("{code:?}: {message}")]
    Failed { code: ErrorCode, message: String },
    #[error("the connection was lost")]
    ConnectionLost,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("not logged in")]
    NotLoggedIn,
}

impl ClientError {
    /// The protocol error code, when the node sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Closed { code, .. } | ClientError::Failed { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A push from a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub payload: Vec<u8>,
    pub reliable: bool,
}

/// What the client received, for bots and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    pub datagrams_in: AtomicU64,
    pub datagram_bytes_in: AtomicU64,
    pub stream_bytes_in: AtomicU64,
    pub state_frames: AtomicU64,
    pub datagrams_dropped_on_purpose: AtomicU64,
    pub resumes: AtomicU64,
}

type Reply = oneshot::Sender<Result<Vec<u8>, ClientError>>;
type JoinReply = oneshot::Sender<Result<u32, ClientError>>;
type Welcome = oneshot::Sender<Result<(u64, bool), ClientError>>;

#[derive(Clone)]
struct Link {
    conn: Conn,
    out: mpsc::Sender<Bytes>,
    generation: u64,
}

/// Room states acknowledged: one in this many. Each ack is a packet the
/// node receives; one in 4, with the node asking QUIC to hold its ACKs for
/// as many states (`gateway.player_ack_packets`), makes a player send ~6
/// packets a second instead of ~11 at one in 2, for deltas built on a
/// baseline a few ticks older (moving entities are in them either way): the
/// node's CPU per arena player 12% down at 1,000 players (docs/perf.md).
pub const DEFAULT_ACK_EVERY: u32 = 4;

#[derive(Default)]
struct State {
    session: ClientSession,
    link: Option<Link>,
    generation: u64,
    replies: HashMap<u32, Reply>,
    joins: HashMap<u32, JoinReply>,
    welcome: Option<Welcome>,
    closed: Option<ClientError>,
}

struct Inner {
    /// Replaced when the client moves to another node.
    dialer: Mutex<Dialer>,
    state: Mutex<State>,
    /// Wire bytes of the connections closed so far.
    wire_bytes_before: AtomicU64,
    pushes: mpsc::UnboundedSender<Push>,
    pushes_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Push>>,
    state_changed: Notify,
    auto_resume: AtomicBool,
    /// Share of incoming datagrams to drop, in millionths (a lossy-link knob
    /// for tests and bots).
    drop_ppm: AtomicU64,
    rng: AtomicU64,
    stalled: AtomicBool,
    stats: Stats,
}

/// A player connection. Cheap to clone; all clones share one session.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// How long a request or a join waits for its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client-side QUIC endpoint (one UDP socket) that many [`Client`]s can share
/// (bots and load tests open thousands of connections).
pub fn endpoint() -> Result<quinn::Endpoint, ClientError> {
    quinn::Endpoint::client("0.0.0.0:0".parse().expect("valid"))
        .map_err(|e| ClientError::Connect(e.to_string()))
}

impl Client {
    /// Connects to a node (QUIC, ALPN `anthill/1`) and opens the control stream.
    pub async fn connect(addr: SocketAddr, trust: Trust) -> Result<Client, ClientError> {
        let bind: SocketAddr = if addr.is_ipv6() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        }
        .parse()
        .expect("valid");
        let endpoint =
            quinn::Endpoint::client(bind).map_err(|e| ClientError::Connect(e.to_string()))?;
        Client::connect_via(endpoint, addr, trust).await
    }

    /// Connects through an existing endpoint (see [`endpoint`]).
    pub async fn connect_via(
        endpoint: quinn::Endpoint,
        addr: SocketAddr,
        trust: Trust,
    ) -> Result<Client, ClientError> {
        Client::open(Dialer::quic(endpoint, addr, &trust)?).await
    }

    /// Connects over WebTransport (HTTP/3) to the player port at `addr`,
    /// through a shared endpoint (see [`webtransport_endpoint`]), as a browser
    /// would.
    pub async fn connect_webtransport(
        endpoint: Arc<wtransport::Endpoint<wtransport::endpoint::endpoint_side::Client>>,
        addr: SocketAddr,
    ) -> Result<Client, ClientError> {
        Client::open(Dialer::webtransport(endpoint, addr)?).await
    }

    /// Connects over WebSocket to the node's web port at `web` (`/ws`):
    /// `ws://` without `trust`, `wss://` trusting the node's certificate so.
    pub async fn connect_websocket(
        web: SocketAddr,
        trust: Option<Trust>,
    ) -> Result<Client, ClientError> {
        Client::open(Dialer::websocket(web, trust.as_ref())?).await
    }

    async fn open(dialer: Dialer) -> Result<Client, ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = State::default();
        state.session.set_ack_every(DEFAULT_ACK_EVERY);
        state.session.set_ack_delay(ACK_DELAY);
        let inner = Arc::new(Inner {
            dialer: Mutex::new(dialer),
            state: Mutex::new(state),
            wire_bytes_before: AtomicU64::new(0),
            pushes: tx,
            pushes_rx: tokio::sync::Mutex::new(rx),
            state_changed: Notify::new(),
            auto_resume: AtomicBool::new(true),
            drop_ppm: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            rng: AtomicU64::new(0x9e37_79b9_7f4a_7c15 ^ rand_seed()),
            stats: Stats::default(),
        });
        Inner::open(&inner).await?;
        Ok(Client { inner })
    }

    /// The transport this client uses.
    pub fn transport(&self) -> Transport {
        self.inner
            .dialer
            .lock()
            .expect("dialer poisoned")
            .transport()
    }

    /// Bytes the wire carried to this client so far, over every connection
    /// of the session: UDP payloads for QUIC and WebTransport, TCP payload
    /// for WebSocket (after compression and framing).
    pub fn wire_bytes_in(&self) -> u64 {
        let live = self
            .inner
            .state
            .lock()
            .expect("client poisoned")
            .link
            .as_ref()
            .map_or(0, |l| l.conn.wire_bytes_in());
        self.inner.wire_bytes_before.load(Ordering::Relaxed) + live
    }

    /// Logs in with a device id (the node derives a stable player id).
    pub async fn login_device(&self, device: &str) -> Result<u64, ClientError> {
        self.hello(Auth::Device {
            id: device.to_owned(),
        })
        .await
        .map(|(p, _)| p)
    }

    /// Logs in through the node's login module.
    pub async fn login_custom(&self, payload: Vec<u8>) -> Result<u64, ClientError> {
        self.hello(Auth::Custom { payload }).await.map(|(p, _)| p)
    }

    async fn hello(&self, auth: Auth) -> Result<(u64, bool), ClientError> {
        let (tx, rx) = oneshot::channel();
        let (frame, link) = {
            let mut st = self.inner.state.lock().expect("client poisoned");
            st.welcome = Some(tx);
            (st.session.hello(auth), st.link.clone())
        };
        let link = link.ok_or(ClientError::ConnectionLost)?;
        send(&link, &frame)?;
        wait(rx).await
    }

    /// The player id, once logged in.
    pub fn player(&self) -> Option<u64> {
        self.inner
            .state
            .lock()
            .expect("client poisoned")
            .session
            .player()
    }

    /// The session token (to resume from another process) and its expiry.
    pub fn token(&self) -> Option<(String, u64)> {
        let st = self.inner.state.lock().expect("client poisoned");
        st.session.token().map(|(t, e)| (t.to_owned(), e))
    }

    /// Sends a message to `module` or `module/key` and waits for the reply.
    pub async fn request(&self, target: &str, payload: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let (tx, rx) = oneshot::channel();
        let (frame, link) = {
            let mut st = self.inner.state.lock().expect("client poisoned");
            if st.session.player().is_none() {
                return Err(ClientError::NotLoggedIn);
            }
            let (id, frame) = st.session.request(target, payload);
            st.replies.insert(id, tx);
            (frame, st.link.clone())
        };
        send(&link.ok_or(ClientError::ConnectionLost)?, &frame)?;
        wait(rx).await
    }

    /// Joins a room (`module/key`); returns its handle.
    pub async fn join(&self, room: &str) -> Result<u32, ClientError> {
        let (tx, rx) = oneshot::channel();
        let (frame, link) = {
            let mut st = self.inner.state.lock().expect("client poisoned");
            let (id, frame) = st.session.join(room);
            st.joins.insert(id, tx);
            (frame, st.link.clone())
        };
        send(&link.ok_or(ClientError::ConnectionLost)?, &frame)?;
        wait(rx).await
    }

    /// Leaves a room.
    pub fn leave(&self, room: u32) -> Result<(), ClientError> {
        let (frame, link) = {
            let mut st = self.inner.state.lock().expect("client poisoned");
            (st.session.leave(room).1, st.link.clone())
        };
        send(&link.ok_or(ClientError::ConnectionLost)?, &frame)
    }

    /// The mirrored state of a joined room and its tick.
    pub fn room_state(&self, room: u32) -> Option<(u64, EntityMap)> {
        let st = self.inner.state.lock().expect("client poisoned");
        st.session.room_state(room).map(|(t, m)| (t, m.clone()))
    }

    /// Waits until some room state changes (or `timeout`).
    pub async fn state_changed(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.inner.state_changed.notified())
            .await
            .is_ok()
    }

    /// The next push from a module (waits up to `timeout`).
    pub async fn next_push(&self, timeout: Duration) -> Option<Push> {
        let mut rx = self.inner.pushes_rx.lock().await;
        tokio::time::timeout(timeout, rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Resumes a session with a token saved earlier (another process, an app
    /// restart): the node keeps the session for its resume grace period.
    pub async fn login_resume(&self, token: &str) -> Result<(u64, bool), ClientError> {
        self.hello(Auth::Resume {
            token: token.to_owned(),
        })
        .await
    }

    /// Resume automatically after a lost connection (default: on).
    pub fn set_auto_resume(&self, on: bool) {
        self.inner.auto_resume.store(on, Ordering::Relaxed);
    }

    /// Acknowledge one room state in `n` (default [`DEFAULT_ACK_EVERY`];
    /// snapshots always; 1 acks every state).
    pub fn set_ack_every(&self, n: u32) {
        self.inner
            .state
            .lock()
            .expect("client poisoned")
            .session
            .set_ack_every(n);
    }

    /// Hold each room state's ack this long (default [`ACK_DELAY`]; zero
    /// sends it with the state). See [`ACK_DELAY`] for why waiting is cheaper.
    pub fn set_ack_delay(&self, delay: Duration) {
        self.inner
            .state
            .lock()
            .expect("client poisoned")
            .session
            .set_ack_delay(delay);
    }

    /// Drops this share (0.0..1.0) of incoming datagrams, as a lossy link would.
    pub fn set_datagram_loss(&self, share: f64) {
        self.inner.drop_ppm.store(
            (share.clamp(0.0, 1.0) * 1_000_000.0) as u64,
            Ordering::Relaxed,
        );
    }

    /// Drops the connection without telling the node (a network failure); with
    /// auto-resume on, the client reconnects.
    pub fn simulate_network_loss(&self) {
        let link = self
            .inner
            .state
            .lock()
            .expect("client poisoned")
            .link
            .clone();
        if let Some(l) = link {
            l.conn.close(b"simulated loss");
        }
    }

    /// Test knob: stop reading from the node (a frozen client), to check that
    /// the node neither waits for it nor buffers for it without bound.
    #[doc(hidden)]
    pub fn stall(&self) {
        self.inner.stalled.store(true, Ordering::Relaxed);
    }

    /// Test knob: write raw bytes on the control stream (junk frames).
    #[doc(hidden)]
    pub fn send_raw(&self, bytes: Vec<u8>) -> Result<(), ClientError> {
        let link = self
            .inner
            .state
            .lock()
            .expect("client poisoned")
            .link
            .clone();
        link.ok_or(ClientError::ConnectionLost)?
            .out
            .try_send(Bytes::from(bytes))
            .map_err(|_| ClientError::ConnectionLost)
    }

    /// From now on connects to the node at `addr` (another node of the same
    /// cluster: its session, rooms and mirrors carry over on the next
    /// resume). QUIC clients only.
    pub fn move_to(&self, addr: SocketAddr, trust: Trust) -> Result<(), ClientError> {
        let mut dialer = self.inner.dialer.lock().expect("dialer poisoned");
        *dialer = dialer.moved_to(addr, &trust)?;
        Ok(())
    }

    /// Reconnects and resumes the session now.
    pub async fn resume(&self) -> Result<bool, ClientError> {
        Inner::resume(&self.inner).await
    }

    /// Closes the connection for good.
    pub fn close(&self) {
        self.inner.auto_resume.store(false, Ordering::Relaxed);
        let link = self
            .inner
            .state
            .lock()
            .expect("client poisoned")
            .link
            .take();
        if let Some(l) = link {
            l.conn.close(b"bye");
        }
    }

    /// Whether the client has a live connection now.
    pub fn is_connected(&self) -> bool {
        self.inner
            .state
            .lock()
            .expect("client poisoned")
            .link
            .is_some()
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Why the node closed the session, if it did.
    pub fn closed_reason(&self) -> Option<ClientError> {
        self.inner
            .state
            .lock()
            .expect("client poisoned")
            .closed
            .clone()
    }
}

/// A different seed per client of this process (the lossy-link knob's generator).
fn rand_seed() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(0x9e37_79b9, Ordering::Relaxed)
}

fn send(link: &Link, frame: &Frame) -> Result<(), ClientError> {
    link.out
        .try_send(Bytes::from(wire::encode_prefixed(frame)))
        .map_err(|_| ClientError::ConnectionLost)
}

async fn wait<T>(rx: oneshot::Receiver<Result<T, ClientError>>) -> Result<T, ClientError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(ClientError::ConnectionLost),
        Err(_) => Err(ClientError::Timeout(REQUEST_TIMEOUT)),
    }
}

impl Inner {
    /// A new QUIC connection and control stream, with its reader and writer.
    /// (Boxed: `open` → reader → reconnect → `open` is a cycle of futures.)
    fn open(
        this: &Arc<Inner>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Link, ClientError>> + Send + '_>>
    {
        Box::pin(Inner::open_inner(this))
    }

    async fn open_inner(this: &Arc<Inner>) -> Result<Link, ClientError> {
        let dialer = this.dialer.lock().expect("dialer poisoned").clone();
        let (conn, out, source) = dialer.open().await?;
        let link = {
            let mut st = this.state.lock().expect("client poisoned");
            st.generation += 1;
            let link = Link {
                conn: conn.clone(),
                out,
                generation: st.generation,
            };
            st.link = Some(link.clone());
            link
        };
        tokio::spawn(Inner::read_loop(this.clone(), link.clone(), source));
        Ok(link)
    }

    async fn resume(this: &Arc<Inner>) -> Result<bool, ClientError> {
        let hello = this
            .state
            .lock()
            .expect("client poisoned")
            .session
            .resume_hello()
            .ok_or(ClientError::NotLoggedIn)?;
        let link = Inner::open(this).await?;
        let (tx, rx) = oneshot::channel();
        this.state.lock().expect("client poisoned").welcome = Some(tx);
        send(&link, &hello)?;
        let (_, resumed) = wait(rx).await?;
        this.stats.resumes.fetch_add(1, Ordering::Relaxed);
        Ok(resumed)
    }

    fn lossy_drop(&self) -> bool {
        let ppm = self.drop_ppm.load(Ordering::Relaxed);
        if ppm == 0 {
            return false;
        }
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        x % 1_000_000 < ppm
    }

    async fn read_loop(this: Arc<Inner>, link: Link, mut source: transport::Source) {
        let mut reader = FrameReader::new(MAX_FRAME);
        loop {
            if this.stalled.load(Ordering::Relaxed) {
                // Frozen: read nothing more, keep the connection open.
                link.conn.closed().await;
                break;
            }
            let ack_due = this
                .state
                .lock()
                .expect("client poisoned")
                .session
                .ack_deadline();
            let input = match ack_due {
                None => source.next().await,
                Some(due) => tokio::select! {
                    input = source.next() => input,
                    () = tokio::time::sleep_until(due.into()) => {
                        this.send_due_acks(&link);
                        continue;
                    }
                },
            };
            let Some(input) = input else {
                break;
            };
            match input {
                Input::Stream(bytes) | Input::Message(bytes) => {
                    this.stats
                        .stream_bytes_in
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    reader.push(&bytes);
                    let mut bad = false;
                    loop {
                        match reader.next_frame() {
                            Ok(Some(f)) => this.on_frame(f, &link),
                            Ok(None) => break,
                            Err(_) => {
                                bad = true;
                                break;
                            }
                        }
                    }
                    // A WebSocket message holds whole frames only.
                    if bad || (matches!(link.conn, Conn::WebSocket { .. }) && reader.buffered() > 0)
                    {
                        link.conn.close(b"bad frame from the node");
                        break;
                    }
                }
                Input::Datagram(bytes) => {
                    if this.lossy_drop() {
                        this.stats
                            .datagrams_dropped_on_purpose
                            .fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    this.stats.datagrams_in.fetch_add(1, Ordering::Relaxed);
                    this.stats
                        .datagram_bytes_in
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    if let Ok(f) = wire::decode(&bytes, MAX_FRAME) {
                        this.on_frame(f, &link);
                    }
                }
            }
        }
        this.wire_bytes_before
            .fetch_add(link.conn.wire_bytes_in(), Ordering::Relaxed);
        Inner::on_disconnect(&this, link.generation).await;
    }

    /// Sends the held acks whose time has come.
    fn send_due_acks(&self, link: &Link) {
        let now = std::time::Instant::now();
        let mut st = self.state.lock().expect("client poisoned");
        while let Some(ack) = st.session.poll_ack(now) {
            link.conn.send_unreliable(&ack);
        }
    }

    fn on_frame(&self, frame: Frame, link: &Link) {
        let is_state = matches!(frame, Frame::Snapshot { .. } | Frame::Delta { .. });
        let mut st = self.state.lock().expect("client poisoned");
        let (event, reply) = st.session.on_frame(frame);
        if let Some(ack) = reply {
            // Acks ride datagrams: a lost ack only makes the next delta larger.
            link.conn.send_unreliable(&ack);
        }
        if is_state {
            self.stats.state_frames.fetch_add(1, Ordering::Relaxed);
        }
        match event {
            Some(ClientEvent::Welcome { player, resumed }) => {
                st.closed = None;
                if let Some(w) = st.welcome.take() {
                    let _ = w.send(Ok((player, resumed)));
                }
            }
            Some(ClientEvent::Reply { id, payload }) => {
                if let Some(r) = st.replies.remove(&id) {
                    let _ = r.send(Ok(payload));
                }
            }
            Some(ClientEvent::Failed { id, code, message }) => {
                let e = ClientError::Failed { code, message };
                if let Some(r) = st.replies.remove(&id) {
                    let _ = r.send(Err(e));
                } else if let Some(j) = st.joins.remove(&id) {
                    let _ = j.send(Err(e));
                }
            }
            Some(ClientEvent::Closed { code, message }) => {
                let e = ClientError::Closed { code, message };
                st.closed = Some(e.clone());
                if let Some(w) = st.welcome.take() {
                    let _ = w.send(Err(e.clone()));
                }
                for (_, r) in st.replies.drain() {
                    let _ = r.send(Err(e.clone()));
                }
                for (_, j) in st.joins.drain() {
                    let _ = j.send(Err(e.clone()));
                }
                self.auto_resume.store(false, Ordering::Relaxed);
            }
            Some(ClientEvent::Push { payload, reliable }) => {
                let _ = self.pushes.send(Push { payload, reliable });
            }
            Some(ClientEvent::Joined { id, room, .. }) => {
                if let Some(j) = st.joins.remove(&id) {
                    let _ = j.send(Ok(room));
                }
            }
            Some(ClientEvent::State { .. }) => {
                drop(st);
                self.state_changed.notify_waiters();
            }
            Some(ClientEvent::Left { .. }) | Some(ClientEvent::Pong { .. }) | None => {}
        }
    }

    async fn on_disconnect(this: &Arc<Inner>, generation: u64) {
        let resume = {
            let mut st = this.state.lock().expect("client poisoned");
            if st.generation != generation {
                return; // an older connection; a newer one is in place
            }
            st.link = None;
            for (_, r) in st.replies.drain() {
                let _ = r.send(Err(ClientError::ConnectionLost));
            }
            for (_, j) in st.joins.drain() {
                let _ = j.send(Err(ClientError::ConnectionLost));
            }
            this.auto_resume.load(Ordering::Relaxed)
                && st.session.token().is_some()
                && st.closed.is_none()
        };
        if !resume {
            return;
        }
        let this = this.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(50);
            for _ in 0..40 {
                tokio::time::sleep(delay).await;
                if !this.auto_resume.load(Ordering::Relaxed) {
                    return;
                }
                match Inner::resume(&this).await {
                    Ok(_) => return,
                    Err(ClientError::Closed { .. }) => return,
                    Err(_) => delay = (delay * 2).min(Duration::from_secs(2)),
                }
            }
        });
    }
}
