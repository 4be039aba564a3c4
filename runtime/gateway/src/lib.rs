//! # anthill-gateway: players over QUIC, and room state sync
//!
//! The player gateway: QUIC (quinn) with ALPN `anthill/1`. One control stream
//! per connection carries length-prefixed frames (requests, replies, reliable
//! pushes, joins); QUIC datagrams carry room state, unreliable pushes and acks.
//! The protocol rules themselves live in the sans-IO `anthill-protocol` crate;
//! this crate owns sockets, TLS, sessions, limits and room sync ([`sync`]).
//!
//! It reaches actors only through [`Dispatch`] and is reached by them through
//! [`RoomSink`] and [`Players`], which [`Gateway`] implements. Must not know:
//! the router, modules, the engine, the store, the admin API.

#![warn(missing_docs, unreachable_pub)]

mod connection;
mod direct;
mod link;
pub mod origin;
mod outbox;
mod quic;
mod session;
mod socket;
pub mod sync;
pub mod tls;
pub mod token;
pub mod udp;
pub mod websocket;
mod webtransport;

pub use origin::Origins;
pub use session::Session;

use anthill_core::metrics::{counter, counter_vec, gauge};
use anthill_core::{
    Address, CallError, Channel, Dispatch, KeptPushes, Players, RoomSink, SessionDirectory,
    SessionHost, SyncedState,
};
use anthill_protocol::Frame;
use anthill_protocol::wire;
use bytes::Bytes;
use prometheus::{IntCounter, IntCounterVec, IntGauge};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// `[gateway]` in the config. Safe by default: bounded everything, address
/// validation on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Serve players at all.
    pub enabled: bool,
    /// PEM certificate chain and key; a self-signed pair is generated in the
    /// data dir when unset.
    pub cert: Option<PathBuf>,
    /// See `cert`.
    pub key: Option<PathBuf>,
    /// Connections held at once; more are refused.
    pub max_connections: usize,
    /// Handshakes in progress at once (quinn `max_incoming`).
    pub max_incoming: usize,
    /// Kernel receive and send buffers of the player port's UDP socket. A
    /// tick sends a datagram to every member of every room at once, and
    /// the players' acks come back together: with Linux's default (208
    /// KiB, ~10 ms of 1,000 arena players) packets were dropped whenever
    /// the endpoint's task waited for a core. Linux caps it at
    /// `net.core.rmem_max` / `wmem_max` (a warning at start says so).
    pub socket_buffer_bytes: usize,
    /// Serve native clients (those that tag their first packet, as Anthill's
    /// client and bots do) on the endpoint the gateway drives itself: one
    /// task for all their connections, a pass per burst of packets. Off,
    /// they share quinn's endpoint (a task per connection) with browsers.
    pub direct_endpoint: bool,
    /// Run that endpoint on a thread of its own (`anthill-quic`) instead of
    /// as a task of the node's runtime. For nodes whose players are native
    /// clients: a room's tick or a packet then wakes that thread alone, not
    /// a worker that wakes the other to steal the pass, so requests wait
    /// less when the node is saturated (echo p50 10-13 ms against 20-33)
    /// and an arena player costs a few percent less. Off by default:
    /// WebTransport players cost ~20% more with it, their packets crossing
    /// from that thread to quinn's endpoint on the workers (docs/perf.md).
    pub quic_thread: bool,
    /// How long a player's QUIC stack may hold its ACKs, asked of every
    /// client that speaks QUIC's ACK frequency extension (quinn-based ones
    /// do; 0: not asked, QUIC's 25 ms). A room's state datagram every 50 ms
    /// is ack-eliciting, so at 25 ms a player sends an ACK after every
    /// state; held 200 ms (and up to `player_ack_packets`), it rides on the
    /// player's state ack, sent every fourth state (held 25 ms: 175 ms after
    /// the first state it covers): a fifth of the packets a player sent,
    /// ~30% of the node's CPU per arena player (docs/perf.md). The price: a
    /// lost reliable packet (a reply, a push) with nothing sent after it is
    /// noticed up to this long later (two packets after it, such as the
    /// next states, make the player acknowledge at once).
    /// Needs the patched quinn-proto in `third_party/`.
    pub player_ack_delay_ms: u64,
    /// How many ack-eliciting packets a player's QUIC may receive without
    /// acknowledging them, asked with `player_ack_delay_ms`: the states
    /// between two of the player's state acks (4 for Anthill's clients,
    /// which ack every fourth), so the ACK rides on the state ack instead of
    /// a packet of its own.
    pub player_ack_packets: u32,
    /// Make new clients prove their address with a QUIC Retry first (stops
    /// spoofed-source floods at the cost of one round trip).
    pub retry: bool,
    /// Largest frame a client may send.
    pub max_frame_bytes: usize,
    /// A connection silent this long is closed (clients ping to stay).
    pub idle_timeout_ms: u64,
    /// How long a disconnected session waits to be resumed before its player
    /// leaves its rooms.
    pub resume_grace_ms: u64,
    /// Lifetime of a session token.
    pub session_ttl_s: u64,
    /// Requests per second per player, and the burst above it.
    pub requests_per_sec: f64,
    /// See `requests_per_sec`.
    pub request_burst: f64,
    /// Reliable pushes kept per session for replay on resume.
    pub push_backlog: usize,
    /// Delegate logins (`Auth::Custom`) to this module: it gets the payload and
    /// answers a player id (decimal) or refuses.
    pub login_module: Option<String>,
    /// Send deltas against acknowledged baselines (false: a full snapshot
    /// every tick, the baseline benchmarks compare against).
    pub sync_deltas: bool,
    /// Web pages (origins such as `https://game.example`) allowed to open
    /// WebTransport and WebSocket sessions, besides the node's own web port;
    /// `"*"` allows any.
    pub allowed_origins: Vec<String>,
    /// Offer permessage-deflate on WebSocket connections.
    pub websocket_compression: bool,
    /// Lifetime of the self-signed certificate (browsers accept at most 14
    /// days); it is renewed in its last quarter without dropping anyone.
    pub self_signed_lifetime_s: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            enabled: true,
            cert: None,
            key: None,
            max_connections: 25_000,
            max_incoming: 1_024,
            socket_buffer_bytes: 4 << 20,
            direct_endpoint: true,
            quic_thread: false,
            player_ack_delay_ms: 200,
            player_ack_packets: 4,
            retry: true,
            max_frame_bytes: wire::DEFAULT_MAX_CLIENT_FRAME,
            idle_timeout_ms: 30_000,
            resume_grace_ms: 30_000,
            session_ttl_s: 24 * 3600,
            requests_per_sec: 100.0,
            request_burst: 200.0,
            push_backlog: 256,
            login_module: None,
            sync_deltas: true,
            allowed_origins: Vec::new(),
            websocket_compression: true,
            self_signed_lifetime_s: 13 * 24 * 3600,
        }
    }
}

/// The gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The certificate or key.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The TLS or QUIC configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// The player address is taken or not allowed.
    #[error("cannot listen for players on {addr}: {source} (pick another with --quic)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The session key cannot be read or created.
    #[error("cannot read or create the session key {path}: {source}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What the start banner prints.
#[derive(Debug, Clone)]
pub struct GatewayInfo {
    /// Where players connect.
    pub addr: SocketAddr,
    /// The certificate's SHA-256, for pinning.
    pub fingerprint: String,
    /// Where the certificate came from.
    pub cert_source: String,
}

/// The certificate players see now, for pages that pin it.
#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    /// SHA-256 of the DER certificate, hex.
    pub sha256: String,
    /// When it expires (Unix ms), if known.
    pub expires_at_ms: Option<u64>,
    /// Generated and rotated by the node (pin it), or the operator's (a CA's:
    /// browsers need no pin).
    pub self_signed: bool,
}

struct GatewayMetrics {
    connections: IntGauge,
    direct: IntGauge,
    accepted: IntCounterVec,
    sessions: IntGauge,
    refused: IntCounterVec,
    frames_in: IntCounterVec,
    bad_input: IntCounterVec,
    rate_limited: IntCounter,
    pushes: IntCounterVec,
}

/// Registers a collector the gateway also keeps.
struct ArcCollector(Arc<socket::PortDrops>);

impl prometheus::core::Collector for ArcCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.0.collect()
    }
}

/// The player side of a node.
pub struct Gateway {
    /// Its config section.
    pub settings: GatewaySettings,
    /// Room state sync.
    pub sync: sync::Sync,
    dispatch: OnceLock<Arc<dyn Dispatch>>,
    /// By player id (Fx: ids come from the node's logins, and every member
    /// of every ticking room is looked up here; SipHash was a cost).
    sessions: Mutex<rustc_hash::FxHashMap<u64, Arc<Session>>>,
    key: OnceLock<token::TokenKey>,
    /// In a cluster: where sessions are known, for resumes on any node.
    directory: OnceLock<Arc<dyn SessionDirectory>>,
    next_session: AtomicU64,
    endpoint: OnceLock<quinn::Endpoint>,
    direct: OnceLock<Arc<direct::Direct>>,
    /// TLS for the web port, when the operator gave a certificate.
    web_tls: OnceLock<Arc<rustls::ServerConfig>>,
    certificate: Mutex<Option<Certificate>>,
    origins: Mutex<Origins>,
    deflate_pool: yawc::DeflatePool,
    metrics: GatewayMetrics,
    port_drops: Arc<socket::PortDrops>,
}

impl Gateway {
    /// The gateway's state, reporting to `registry`; it serves players once
    /// [`Gateway::start`]ed.
    pub fn new(settings: GatewaySettings, registry: &prometheus::Registry) -> Arc<Gateway> {
        let r = registry;
        let metrics = GatewayMetrics {
            connections: gauge(r, "anthill_player_connections", "Open player connections."),
            direct: gauge(
                r,
                "anthill_player_direct_connections",
                "QUIC connections on the endpoint the gateway drives itself (native clients), handshakes included.",
            ),
            accepted: counter_vec(
                r,
                "anthill_player_connections_accepted_total",
                "Player connections set up, by transport (quic, webtransport, websocket).",
                &["transport"],
            ),
            sessions: gauge(
                r,
                "anthill_player_sessions",
                "Player sessions (connected or within the resume grace).",
            ),
            refused: counter_vec(
                r,
                "anthill_player_connections_refused_total",
                "Connections refused, by reason.",
                &["reason"],
            ),
            frames_in: counter_vec(
                r,
                "anthill_player_frames_total",
                "Frames received from players, by kind.",
                &["kind"],
            ),
            bad_input: counter_vec(
                r,
                "anthill_player_bad_input_total",
                "Undecodable or misplaced player input.",
                &["what"],
            ),
            rate_limited: counter(
                r,
                "anthill_player_rate_limited_total",
                "Player requests refused by the rate limit.",
            ),
            pushes: counter_vec(
                r,
                "anthill_player_pushes_total",
                "Pushes to players, by channel and outcome.",
                &["channel", "outcome"],
            ),
        };
        let origins = Origins::new(&settings.allowed_origins);
        let port_drops = Arc::new(socket::PortDrops::new());
        // A registry that already has it (a second gateway on one registry,
        // in tests) keeps counting the first one's port.
        let _ = r.register(Box::new(ArcCollector(port_drops.clone())));
        Arc::new(Gateway {
            certificate: Mutex::new(None),
            origins: Mutex::new(origins),
            // Sized for the messages compressed at one moment (about the
            // worker threads), not for the connections.
            deflate_pool: yawc::DeflatePool::new(16),
            settings,
            sync: sync::Sync::new(registry),
            dispatch: OnceLock::new(),
            web_tls: OnceLock::new(),
            sessions: Mutex::new(rustc_hash::FxHashMap::default()),
            key: OnceLock::new(),
            directory: OnceLock::new(),
            next_session: AtomicU64::new(1),
            endpoint: OnceLock::new(),
            direct: OnceLock::new(),
            metrics,
            port_drops,
        })
    }

    fn dispatch(&self) -> &dyn Dispatch {
        self.dispatch
            .get()
            .expect("the gateway is started before connections exist")
            .as_ref()
    }

    /// Makes this gateway one of a cluster's (call before
    /// [`Gateway::start`]): tokens are signed with the cluster's `key`, and
    /// sessions are recorded in `directory`, so a player resumes on any node.
    pub fn join_cluster(&self, key: &[u8], directory: Arc<dyn SessionDirectory>) {
        let _ = self.key.set(token::TokenKey::from_bytes(key));
        let _ = self.directory.set(directory);
    }

    fn directory(&self) -> Option<&Arc<dyn SessionDirectory>> {
        self.directory.get()
    }

    /// Records where `session` is and which rooms it is in (in a cluster).
    pub(crate) fn record_session(&self, session: &Session) {
        if let Some(d) = self.directory() {
            d.hold(session.player, session.id, session.rooms());
        }
    }

    /// [`Gateway::record_session`], waiting (2 s at most: a slow cluster
    /// store delays a login, it does not stop it) until the cluster knows
    /// the session is here. Before the player is welcomed: a push sent by
    /// another node the moment the player's client sees it is in must find
    /// this node.
    pub(crate) async fn record_session_now(&self, session: &Session) {
        if let Some(d) = self.directory() {
            let written = d.hold_now(session.player, session.id, session.rooms());
            if tokio::time::timeout(Duration::from_secs(2), written)
                .await
                .is_err()
            {
                tracing::warn!(
                    player = session.player,
                    "the session record took over 2 s to write; welcoming the player anyway"
                );
            }
        }
    }

    fn key(&self) -> &token::TokenKey {
        self.key
            .get()
            .expect("the gateway is started before sessions exist")
    }

    /// Binds the QUIC endpoint on `addr` and accepts players until the node
    /// stops, reaching actors through `dispatch`. The session key and the
    /// self-signed certificate (without an operator's) live in `data`.
    pub fn start(
        self: &Arc<Gateway>,
        addr: SocketAddr,
        data: &Path,
        dispatch: Arc<dyn Dispatch>,
    ) -> Result<(GatewayInfo, tokio::task::JoinHandle<()>), GatewayError> {
        let gw = self;
        let _ = gw.dispatch.set(dispatch);
        let s = &gw.settings;
        if gw.key.get().is_none() {
            let key_path = data.join("session.key");
            let key =
                token::TokenKey::load_or_create(&key_path).map_err(|source| GatewayError::Key {
                    path: key_path.clone(),
                    source,
                })?;
            let _ = gw.key.set(key);
        }
        let lifetime = Duration::from_secs(s.self_signed_lifetime_s.max(20));
        let identity = match (&s.cert, &s.key) {
            (Some(c), Some(k)) => tls::load(c, k)?,
            _ => tls::self_signed(data, lifetime, false)?,
        };
        let socket = socket::player_socket(addr, s.socket_buffer_bytes)
            .map_err(|source| GatewayError::Bind { addr, source })?;
        // One port, two endpoints: native clients on the one the gateway
        // drives, everything else (WebTransport) on quinn's. On a thread of
        // its own, the driver's socket is registered with that thread's
        // reactor, and connections' tasks still run on the node's runtime.
        let driver_rt = if s.quic_thread {
            Some(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| GatewayError::Bind { addr, source })?,
            )
        } else {
            None
        };
        let tasks = tokio::runtime::Handle::current();
        let direct = {
            let _enter = driver_rt.as_ref().map(|rt| rt.enter());
            direct::Direct::new(
                socket,
                server_config(s, &identity)?,
                s.direct_endpoint,
                gw.metrics.direct.clone(),
                tasks,
            )
        }
        .map_err(|source| GatewayError::Bind { addr, source })?;
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            direct.quinn_endpoint_config(),
            Some(server_config(s, &identity)?),
            direct.quinn_socket(),
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| GatewayError::Bind { addr, source })?;
        let local = endpoint
            .local_addr()
            .map_err(|source| GatewayError::Bind { addr, source })?;
        gw.port_drops.watch(local.port());
        gw.set_certificate(&identity, data);
        if !identity.self_signed {
            let _ = gw.web_tls.set(web_server_config(&identity)?);
        }
        if identity.self_signed {
            tokio::spawn(rotate_certificate(
                gw.clone(),
                endpoint.clone(),
                direct.clone(),
                data.to_owned(),
                lifetime,
                identity.validity,
            ));
        }
        let _ = gw.endpoint.set(endpoint.clone());
        let _ = gw.direct.set(direct.clone());
        // It ends by itself once `stop` closed its connections.
        match driver_rt {
            Some(rt) => {
                let (d, g) = (direct.clone(), gw.clone());
                std::thread::Builder::new()
                    .name("anthill-quic".into())
                    .spawn(move || rt.block_on(d.run(g)))
                    .map_err(|source| GatewayError::Bind { addr, source })?;
            }
            None => {
                tokio::spawn(direct.clone().run(gw.clone()));
            }
        }
        let gw2 = gw.clone();
        let task = tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let gw = &gw2;
                if gw.metrics.connections.get() as usize >= gw.settings.max_connections {
                    gw.metrics
                        .refused
                        .with_label_values(&["max-connections"])
                        .inc();
                    incoming.refuse();
                    continue;
                }
                if gw.settings.retry && !incoming.remote_address_validated() && incoming.may_retry()
                {
                    let _ = incoming.retry();
                    continue;
                }
                tokio::spawn(quic::serve_incoming(gw2.clone(), incoming));
            }
        });
        Ok((
            GatewayInfo {
                addr: local,
                fingerprint: identity.fingerprint,
                cert_source: identity.source,
            },
            task,
        ))
    }

    /// The certificate players see now (it changes when the node renews its
    /// self-signed one).
    pub fn certificate(&self) -> Option<Certificate> {
        self.certificate
            .lock()
            .expect("certificate poisoned")
            .clone()
    }

    fn set_certificate(&self, identity: &tls::Identity, data: &Path) {
        let cert = Certificate {
            sha256: identity.fingerprint.clone(),
            expires_at_ms: identity.validity.map(|v| v.not_after_ms),
            self_signed: identity.self_signed,
        };
        // Native clients (bots, tests) read the pin from the data dir.
        if let Err(e) = std::fs::write(
            data.join("gateway.fingerprint"),
            format!("{}\n", cert.sha256),
        ) {
            tracing::warn!(error = %e, "cannot write the certificate fingerprint to the data dir");
        }
        *self.certificate.lock().expect("certificate poisoned") = Some(cert);
    }

    /// The origins allowed to open browser sessions.
    pub fn origins(&self) -> Origins {
        self.origins.lock().expect("origins poisoned").clone()
    }

    /// TLS for the web port (`wss://`, `https://…/play`) with the operator's
    /// certificate; `None` with the node's own self-signed one, which browsers
    /// accept only pinned over WebTransport, so the web port stays plain HTTP
    /// (fine on loopback, where a page is a secure context anyway).
    pub fn web_tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.web_tls.get().cloned()
    }

    /// Allows pages served by the node's web port at `addr`.
    pub fn allow_web_port(&self, addr: SocketAddr, tls: bool) {
        let mut o = self.origins.lock().expect("origins poisoned");
        *o = o.clone().with_web_port(addr, tls);
    }

    /// Stops accepting and closes every connection.
    pub fn stop(&self) {
        if let Some(e) = self.endpoint.get() {
            e.close(0u32.into(), b"node stopping");
        }
        if let Some(d) = self.direct.get() {
            d.close_all(b"node stopping");
        }
        // WebSocket connections are not the endpoint's.
        let sessions: Vec<_> = self
            .sessions
            .lock()
            .expect("sessions poisoned")
            .values()
            .cloned()
            .collect();
        for s in sessions {
            s.close_link(0, "node stopping");
        }
    }

    fn session(&self, player: u64) -> Option<Arc<Session>> {
        self.sessions
            .lock()
            .expect("sessions poisoned")
            .get(&player)
            .cloned()
    }

    /// Whether `player` has a session (connected or within the resume grace).
    pub fn has_session(&self, player: u64) -> bool {
        self.session(player).is_some()
    }

    /// Sessions and connected players, for operators.
    pub fn counts(&self) -> (usize, usize) {
        let sessions = self.sessions.lock().expect("sessions poisoned");
        let connected = sessions.values().filter(|s| s.is_connected()).count();
        (sessions.len(), connected)
    }

    /// A module's push to a player. Reliable pushes are kept (bounded) for
    /// replay when the player resumes; unreliable ones go out as datagrams now
    /// or not at all.
    pub fn push(&self, player: u64, channel: Channel, payload: Vec<u8>) -> Result<(), CallError> {
        let session = self
            .session(player)
            .ok_or_else(|| CallError::NotFound(format!("player {player} has no session")))?;
        let label = match channel {
            Channel::Reliable => "reliable",
            Channel::Unreliable => "unreliable",
        };
        let outcome = match channel {
            Channel::Reliable => session.push_reliable(payload, self.settings.push_backlog),
            Channel::Unreliable => session.push_unreliable(payload),
        };
        self.metrics
            .pushes
            .with_label_values(&[label, outcome])
            .inc();
        Ok(())
    }

    /// Sends an encoded state frame to a player: as a datagram when it fits,
    /// else on the control stream; dropped if the player is gone or behind.
    /// Returns the path taken, for metrics.
    pub(crate) fn send_state(&self, player: u64, frame: &Bytes) -> sync::Path {
        match self.session(player) {
            Some(s) => s.send_state(frame),
            None => sync::Path::Dropped,
        }
    }

    /// The sessions of `players`, in order, under one lock of the table.
    pub(crate) fn sessions_of(
        &self,
        players: impl Iterator<Item = u64>,
    ) -> Vec<Option<Arc<Session>>> {
        let sessions = self.sessions.lock().expect("sessions poisoned");
        players.map(|p| sessions.get(&p).cloned()).collect()
    }

    fn remove_session(&self, player: u64, id: u64) -> Option<Arc<Session>> {
        let mut sessions = self.sessions.lock().expect("sessions poisoned");
        if sessions.get(&player).is_some_and(|s| s.id == id) {
            let s = sessions.remove(&player);
            self.metrics.sessions.set(sessions.len() as i64);
            return s;
        }
        None
    }

    /// Removes `session` itself, not another session under the same id: a
    /// session released to another node and then taken back is a new
    /// object here, which the old one's resume grace must not end.
    fn remove_exact(&self, session: &Arc<Session>) -> bool {
        let mut sessions = self.sessions.lock().expect("sessions poisoned");
        if sessions
            .get(&session.player)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            sessions.remove(&session.player);
            self.metrics.sessions.set(sessions.len() as i64);
            return true;
        }
        false
    }

    fn insert_session(&self, s: Arc<Session>) -> Option<Arc<Session>> {
        let mut sessions = self.sessions.lock().expect("sessions poisoned");
        let old = sessions.insert(s.player, s);
        self.metrics.sessions.set(sessions.len() as i64);
        old
    }

    fn new_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed) ^ (rand::random::<u64>() << 20)
    }
}

/// The web port's TLS for `identity`: HTTP/1.1 only (a WebSocket upgrade is
/// an HTTP/1.1 request), TLS 1.2 and 1.3.
fn web_server_config(identity: &tls::Identity) -> Result<Arc<rustls::ServerConfig>, GatewayError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| GatewayError::Config(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(identity.chain.clone(), identity.key.clone_key())
    .map_err(|e| GatewayError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The endpoint's QUIC and TLS configuration for `identity`: ALPN
/// `anthill/1` and `h3` (WebTransport), TLS 1.3 only.
fn server_config(
    s: &GatewaySettings,
    identity: &tls::Identity,
) -> Result<quinn::ServerConfig, GatewayError> {
    let mut crypto = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(|e| GatewayError::Config(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(identity.chain.clone(), identity.key.clone_key())
    .map_err(|e| GatewayError::Config(e.to_string()))?;
    crypto.alpn_protocols = vec![wire::ALPN.to_vec(), webtransport::ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(crypto)
        .map_err(|e| GatewayError::Config(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(Duration::from_millis(s.idle_timeout_ms))
                .map_err(|e| GatewayError::Config(e.to_string()))?,
        ))
        // HTTP/3 needs a few streams (its control and QPACK streams, the
        // CONNECT, the session's control stream); an `anthill/1` connection
        // is lowered to the one control stream once its ALPN is known.
        .max_concurrent_bidi_streams(4u32.into())
        .max_concurrent_uni_streams(4u32.into())
        // Small windows: a player's stream carries requests, not bulk data,
        // and memory per idle connection must stay small.
        .stream_receive_window((256u32 << 10).into())
        .receive_window((512u32 << 10).into())
        .send_window(1 << 20)
        .datagram_receive_buffer_size(Some(64 << 10))
        .datagram_send_buffer_size(256 << 10);
    if s.player_ack_delay_ms > MAX_PLAYER_ACK_DELAY_MS {
        return Err(GatewayError::Config(format!(
            "gateway.player_ack_delay_ms = {} is above {MAX_PLAYER_ACK_DELAY_MS}: a lost reply or push would wait that long to be noticed; use 0-{MAX_PLAYER_ACK_DELAY_MS} (200 suits 20 Hz rooms)",
            s.player_ack_delay_ms
        )));
    }
    if s.player_ack_delay_ms > 0 {
        let mut acks = quinn::AckFrequencyConfig::default();
        acks.max_ack_delay(Some(Duration::from_millis(s.player_ack_delay_ms)))
            // The states before a player's next state ack must not force
            // an ACK before that ack carries one.
            .ack_eliciting_threshold(s.player_ack_packets.into());
        transport.ack_frequency_config(Some(acks));
    }
    server.transport_config(Arc::new(transport));
    server.max_incoming(s.max_incoming);
    Ok(server)
}

/// The longest ACK delay a node may ask of players.
const MAX_PLAYER_ACK_DELAY_MS: u64 = 1_000;

/// Renews the self-signed certificate in its last quarter of life. New
/// connections get the new one; open connections keep theirs (a TLS
/// certificate is checked at the handshake only), so no player is dropped.
async fn rotate_certificate(
    gw: Arc<Gateway>,
    endpoint: quinn::Endpoint,
    direct: Arc<direct::Direct>,
    data: PathBuf,
    lifetime: Duration,
    mut validity: Option<tls::Validity>,
) {
    loop {
        let renew_at_ms = validity.map_or(0, |v| {
            v.not_after_ms
                .saturating_sub(lifetime.as_millis() as u64 / 4)
        });
        let wait = renew_at_ms.saturating_sub(anthill_core::now_ms());
        tokio::time::sleep(Duration::from_millis(wait.max(1_000))).await;
        let renewed = tls::self_signed(&data, lifetime, true).and_then(|id| {
            let config = server_config(&gw.settings, &id)
                .map_err(|e| tls::TlsError::Generate(e.to_string()))?;
            let for_direct = server_config(&gw.settings, &id)
                .map_err(|e| tls::TlsError::Generate(e.to_string()))?;
            Ok((id, config, for_direct))
        });
        match renewed {
            Ok((id, config, for_direct)) => {
                endpoint.set_server_config(Some(config));
                direct.set_server_config(for_direct);
                gw.set_certificate(&id, &data);
                validity = id.validity;
                tracing::info!(
                    sha256 = %id.fingerprint,
                    "renewed the self-signed player certificate"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot renew the self-signed player certificate; retrying in a minute");
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        }
    }
}

/// The player id of a device id: stable, so a device is the same player across
/// sessions and nodes (the first 8 bytes of its SHA-256, never 0).
pub fn device_player_id(device: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(device.as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes")).max(1)
}

/// The frame used to tell a client why its connection is closing.
pub(crate) fn close_frame(code: anthill_protocol::ErrorCode, message: impl Into<String>) -> Frame {
    Frame::Error {
        id: 0,
        code,
        message: message.into(),
    }
}

impl RoomSink for Gateway {
    fn publish(&self, room: &Address, state: SyncedState) {
        // One wake-up of the direct endpoint for the whole room, not one
        // per member.
        let _held = self.direct.get().map(|d| d.hold_wakeups());
        self.sync.publish(self, room, state);
    }

    fn has_members(&self, room: &Address) -> bool {
        self.sync.has_members(room)
    }

    fn members_in_module(&self, module: &str) -> usize {
        self.sync.members_in_module(module)
    }

    fn remove_module(&self, module: &str) {
        self.sync.remove_module(module);
    }
}

impl SessionHost for Gateway {
    fn release(&self, player: u64, session: u64, last_push: u64) -> (Vec<Address>, KeptPushes) {
        let Some(s) = self.remove_session(player, session) else {
            return (Vec::new(), Vec::new());
        };
        s.close_link(5, "the session resumed on another node");
        let rooms = s.take_rooms();
        for room in &rooms {
            self.sync.remove_member(room, player);
        }
        let kept = s.kept_after(last_push);
        tracing::debug!(
            player,
            kept = kept.len(),
            "session resumed on another node; released here"
        );
        (rooms, kept)
    }

    fn end(&self, player: u64, session: u64) {
        let Some(s) = self.remove_session(player, session) else {
            return;
        };
        s.attach_closed();
        connection::end_session(self, &s);
        tracing::debug!(
            player,
            "logged in again on another node; session ended here"
        );
    }

    fn in_room(&self, player: u64, room: &Address) -> bool {
        self.session(player)
            .is_some_and(|s| s.rooms().iter().any(|(_, r)| r == room))
    }
}

impl Players for Gateway {
    fn push(&self, player: u64, channel: Channel, message: Vec<u8>) -> Result<(), CallError> {
        Gateway::push(self, player, channel, message)
    }
}
