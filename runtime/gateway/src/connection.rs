//! One player connection, whatever its transport: the control stream
//! (length-prefixed frames both ways), datagrams (acks in; state and
//! unreliable pushes out), login or resume, and the dispatch of requests and
//! joins to modules. Every protocol rule is
//! checked by `anthill_protocol::session::ServerConn`; a violation gets an error
//! frame and the connection closes, nothing else is affected.

use super::link::{Carrier, Link};
use super::session::Session;
use super::token::{Claims, TokenError};
use super::{close_frame, device_player_id};
use crate::Gateway;
use anthill_core::{Address, CallError, Sender, now_ms};
use anthill_protocol::session::{Inbound, ServerConn};
use anthill_protocol::wire::{self, FrameReader};
use anthill_protocol::{Auth, ErrorCode, Frame};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// How long a client has to open its control stream and say hello.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

fn error_code(e: &CallError) -> ErrorCode {
    match e {
        CallError::ModuleNotFound(_) | CallError::NotFound(_) => ErrorCode::NotFound,
        CallError::Rejected(_) | CallError::Cycle(_) | CallError::BadRequest(_) => {
            ErrorCode::Rejected
        }
        CallError::Timeout { .. } | CallError::DeadlineExceeded { .. } => ErrorCode::Timeout,
        CallError::Overloaded(_) | CallError::Quota(_) | CallError::Unavailable(_) => {
            ErrorCode::Overloaded
        }
        CallError::TooLarge { .. } => ErrorCode::TooLarge,
        CallError::Forbidden(_) => ErrorCode::Forbidden,
        CallError::Unsupported(_)
        | CallError::Trapped { .. }
        | CallError::OutOfMemory { .. }
        | CallError::LimitReached { .. }
        | CallError::Storage { .. }
        | CallError::Internal(_) => ErrorCode::Internal,
    }
}

fn failed(id: u32, e: &CallError) -> Frame {
    Frame::Error {
        id,
        code: error_code(e),
        message: e.to_string(),
    }
}

/// Counts open connections for as long as it lives.
struct Counted<'a>(&'a prometheus::IntGauge);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What a transport read from its player.
pub(crate) enum Input {
    /// Bytes of the control stream (any split: frames are reassembled here).
    Stream(Bytes),
    /// One datagram (one frame, no length prefix).
    Datagram(Bytes),
}

/// A transport's read side. `next` must be cancel-safe: it races the hello
/// deadline.
pub(crate) trait Source: Send {
    /// The next input, or `None` when the connection ended.
    fn next(&mut self) -> impl Future<Output = Option<Input>> + Send;

    /// The connection has a session: from now on its datagrams may be
    /// handed to `datagrams` where they arrive instead of coming through
    /// `next` (a transport that can do so saves a wake-up of the
    /// connection's task per ack).
    fn deliver_datagrams(&mut self, _datagrams: Arc<Datagrams>) {}
}

/// A connection's datagrams once it has a session: acks and pings, which
/// need no more of the connection than these.
/// (Not the whole [`Link`]: its control-stream queue ends when the
/// connection's task lets go of it.)
pub(crate) struct Datagrams {
    gw: Arc<Gateway>,
    transport: Carrier,
    session: Arc<Session>,
}

impl Datagrams {
    pub(crate) fn handle(&self, bytes: &[u8]) {
        on_datagram(&self.gw, &self.transport, Some(&self.session), bytes);
    }
}

fn on_ack(gw: &Gateway, session: &Session, room: u32, tick: u64) {
    if let Some(address) = session.room(room) {
        gw.sync.ack(&address, session.player, tick);
    }
}

fn on_datagram(gw: &Gateway, transport: &Carrier, session: Option<&Arc<Session>>, bytes: &[u8]) {
    match wire::decode(bytes, gw.settings.max_frame_bytes) {
        Ok(Frame::Ack { room, tick }) => {
            if let Some(session) = session {
                on_ack(gw, session, room, tick);
            }
        }
        Ok(Frame::Ping { nonce }) => {
            let _ = transport.datagram(&Bytes::from(wire::encode(&Frame::Pong { nonce })));
        }
        Ok(_) => gw
            .metrics
            .bad_input
            .with_label_values(&["datagram-kind"])
            .inc(),
        Err(_) => gw.metrics.bad_input.with_label_values(&["datagram"]).inc(),
    }
}

/// Serves one connection whose transport is up and whose control stream is
/// open: the protocol until either side ends it, then the resume grace. The
/// caller then lets its writer drain and closes the transport.
pub(crate) async fn serve<S: Source>(gw: Arc<Gateway>, link: Link, source: &mut S) {
    gw.metrics.connections.inc();
    gw.metrics
        .accepted
        .with_label_values(&[link.transport.name()])
        .inc();
    let _counted = Counted(&gw.metrics.connections);
    let mut c = Conn {
        gw: gw.clone(),
        link,
        state: ServerConn::new(),
        session: None,
    };
    c.run(source).await;
    if let Some((session, epoch)) = c.session.take()
        && session.detach(epoch)
    {
        start_grace(gw.clone(), session, epoch);
    }
}

/// After the resume grace, a still-disconnected session ends: its player leaves
/// every room (the rooms get `on-leave`).
fn start_grace(gw: Arc<Gateway>, session: Arc<Session>, epoch: u64) {
    let grace = Duration::from_millis(gw.settings.resume_grace_ms);
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        if session.still_detached(epoch) && gw.remove_exact(&session) {
            end_session(&gw, &session);
            if let Some(d) = gw.directory() {
                d.end(session.player, session.id);
            }
            tracing::debug!(
                player = session.player,
                "session ended after the resume grace"
            );
        }
    });
}

/// The player leaves every room of a session that is over.
pub(crate) fn end_session(gw: &Gateway, session: &Session) {
    for room in session.take_rooms() {
        leave_room(gw, &room, session.player);
    }
}

fn leave_room(gw: &Gateway, room: &Address, player: u64) {
    gw.sync.remove_member(room, player);
    gw.dispatch().leave(room, player);
}

struct Conn {
    gw: Arc<Gateway>,
    link: Link,
    state: ServerConn,
    session: Option<(Arc<Session>, u64)>,
}

impl Conn {
    fn refuse(&self, code: ErrorCode, message: impl Into<String>) {
        let message = message.into();
        self.link.send(&close_frame(code, message.clone()));
        tracing::debug!(?code, %message, "player connection refused");
    }

    async fn run<S: Source>(&mut self, source: &mut S) {
        let max_frame = self.gw.settings.max_frame_bytes;
        let mut reader = FrameReader::new(max_frame);
        let hello_deadline = tokio::time::sleep(HELLO_TIMEOUT);
        tokio::pin!(hello_deadline);
        loop {
            tokio::select! {
                input = source.next() => match input {
                None => return,
                Some(Input::Datagram(bytes)) => self.on_datagram(&bytes),
                Some(Input::Stream(chunk)) => {
                    reader.push(&chunk);
                    loop {
                        match reader.next_frame() {
                            Ok(Some(frame)) => {
                                let had_session = self.session.is_some();
                                // Boxed: handling a frame (a login through a
                                // module, a request) needs a large future only
                                // for a moment; inline, every idle connection
                                // would carry its size.
                                if !Box::pin(self.on_frame(frame)).await {
                                    return;
                                }
                                if let (false, Some(session)) = (had_session, self.player()) {
                                    source.deliver_datagrams(Arc::new(Datagrams {
                                        gw: self.gw.clone(),
                                        transport: self.link.transport.clone(),
                                        session: session.clone(),
                                    }));
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                self.gw.metrics.bad_input.with_label_values(&["stream-frame"]).inc();
                                let code = if matches!(e, wire::DecodeError::TooLarge { .. }) { ErrorCode::TooLarge } else { ErrorCode::BadFrame };
                                self.refuse(code, e.to_string());
                                return;
                            }
                        }
                    }
                }
                },
                _ = &mut hello_deadline, if !self.state.greeted() => {
                    self.refuse(ErrorCode::BadFrame, "no Hello within 10 s");
                    return;
                }
            }
        }
    }

    fn player(&self) -> Option<&Arc<Session>> {
        self.session.as_ref().map(|(s, _)| s)
    }

    fn on_datagram(&self, bytes: &[u8]) {
        on_datagram(&self.gw, &self.link.transport, self.player(), bytes);
    }

    /// Handles one stream frame; false to close the connection.
    async fn on_frame(&mut self, frame: Frame) -> bool {
        let gw = &self.gw;
        let inbound = match self.state.on_frame(frame) {
            Ok(i) => i,
            Err(v) => {
                gw.metrics.bad_input.with_label_values(&["protocol"]).inc();
                self.refuse(v.code, v.message);
                return false;
            }
        };
        let kind = match &inbound {
            Inbound::Hello { .. } => "hello",
            Inbound::Request { .. } => "request",
            Inbound::Join { .. } => "join",
            Inbound::Leave { .. } => "leave",
            Inbound::Ack { .. } => "ack",
            Inbound::Ping { .. } => "ping",
        };
        gw.metrics.frames_in.with_label_values(&[kind]).inc();
        match inbound {
            Inbound::Hello { auth, last_push } => self.hello(auth, last_push).await,
            Inbound::Request {
                id,
                target,
                payload,
            } => {
                self.request(id, target, payload);
                true
            }
            Inbound::Join { id, room } => {
                self.join(id, room);
                true
            }
            Inbound::Leave { id: _, room } => {
                if let Some(session) = self.player()
                    && let Some(address) = session.remove_room(room)
                {
                    leave_room(&self.gw, &address, session.player);
                    self.gw.record_session(session);
                }
                self.link.send(&Frame::Left { room });
                true
            }
            Inbound::Ack { room, tick } => {
                if let Some(session) = self.player() {
                    on_ack(&self.gw, session, room, tick);
                }
                true
            }
            Inbound::Ping { nonce } => {
                self.link.send(&Frame::Pong { nonce });
                true
            }
        }
    }

    async fn hello(&mut self, auth: Auth, last_push: u64) -> bool {
        let gw = self.gw.clone();
        let ttl_ms = gw.settings.session_ttl_s * 1000;
        let (session, resumed) = match auth {
            Auth::Resume { token } => {
                let claims = match gw.key().verify(&token, now_ms()) {
                    Ok(c) => c,
                    Err(TokenError::Expired) => {
                        self.refuse(
                            ErrorCode::TokenExpired,
                            "session token expired; log in again",
                        );
                        return false;
                    }
                    Err(e) => {
                        self.refuse(ErrorCode::Unauthorized, e.to_string());
                        return false;
                    }
                };
                let here = gw.session(claims.player).filter(|s| s.id == claims.session);
                let found = match here {
                    Some(s) => Some(s),
                    None => match self.take_over(claims, last_push).await {
                        Ok(s) => s,
                        Err(e) => {
                            self.refuse(
                                ErrorCode::Overloaded,
                                format!("cannot resume the session now: {e}; retry"),
                            );
                            return false;
                        }
                    },
                };
                match found {
                    Some(s) => (s, true),
                    None => {
                        self.refuse(
                            ErrorCode::Unauthorized,
                            "the session has ended (resume grace passed); log in again",
                        );
                        return false;
                    }
                }
            }
            Auth::Device { id } => {
                if id.is_empty() || id.len() > 256 {
                    self.refuse(ErrorCode::Unauthorized, "a device id is 1 to 256 bytes");
                    return false;
                }
                (self.new_session(device_player_id(&id)).await, false)
            }
            Auth::Custom { payload } => {
                let Some(module) = gw.settings.login_module.clone() else {
                    self.refuse(
                        ErrorCode::Unauthorized,
                        "this node has no login module: use device login",
                    );
                    return false;
                };
                let reply = gw
                    .dispatch()
                    .request(Address::new(module, ""), Sender::System, payload)
                    .await;
                let player = match reply.map(|r| String::from_utf8_lossy(&r).trim().parse::<u64>())
                {
                    Ok(Ok(p)) if p > 0 => p,
                    Ok(_) => {
                        self.refuse(
                            ErrorCode::Internal,
                            "the login module answered something other than a player id",
                        );
                        return false;
                    }
                    Err(e) => {
                        self.refuse(ErrorCode::Unauthorized, format!("login refused: {e}"));
                        return false;
                    }
                };
                (self.new_session(player).await, false)
            }
        };
        let epoch = session.attach(self.link.clone());
        let claims = Claims {
            player: session.player,
            session: session.id,
            expires_at_ms: now_ms() + ttl_ms,
        };
        self.link.send(&Frame::Welcome {
            version: wire::VERSION,
            player: session.player,
            token: gw.key().sign(claims),
            expires_at_ms: claims.expires_at_ms,
            resumed,
        });
        if resumed {
            let replayed = session.replay_after(last_push);
            for (_, room) in session.rooms() {
                gw.sync.reset(&room, session.player);
                gw.sync.send_current(&gw, &room, session.player);
            }
            tracing::debug!(player = session.player, replayed, "session resumed");
        }
        self.session = Some((session, epoch));
        true
    }

    /// A fresh session for `player`, replacing (and ending) any earlier one.
    async fn new_session(&self, player: u64) -> Arc<Session> {
        let gw = &self.gw;
        let session = Arc::new(Session::new(
            player,
            gw.new_session_id(),
            gw.settings.request_burst,
        ));
        if let Some(old) = gw.insert_session(session.clone()) {
            old.attach_closed();
            end_session(&self.gw, &old);
        }
        if let Some(d) = gw.directory() {
            d.login(player, session.id).await;
        }
        gw.record_session_now(&session).await;
        session
    }

    /// A session another node held (in a cluster): recreated here with its
    /// rooms, which send their state here from now on. `None` if it ended.
    async fn take_over(
        &self,
        claims: Claims,
        last_push: u64,
    ) -> Result<Option<Arc<Session>>, CallError> {
        let gw = &self.gw;
        let Some(directory) = gw.directory().cloned() else {
            return Ok(None);
        };
        let Some(handed) = directory
            .take_over(claims.player, claims.session, last_push)
            .await?
        else {
            return Ok(None);
        };
        let session = Arc::new(Session::new(
            claims.player,
            claims.session,
            gw.settings.request_burst,
        ));
        // What the old node kept is replayed after the welcome, as on a
        // resume where the session stayed.
        session.continue_pushes_after(last_push, handed.pushes);
        for (handle, room) in handed.rooms {
            let here = gw.sync.add_member(&room, claims.player);
            if here != handle {
                tracing::warn!(%room, "a room's handle differs between nodes; the player rejoins it");
                continue;
            }
            session.add_room(handle, room);
        }
        if let Some(old) = gw.insert_session(session.clone()) {
            old.attach_closed();
            end_session(gw, &old);
        }
        // Pushes from other nodes must find it here once the player is
        // welcomed back.
        gw.record_session_now(&session).await;
        tracing::debug!(
            player = claims.player,
            "session taken over from another node"
        );
        Ok(Some(session))
    }

    fn request(&self, id: u32, target: String, payload: Vec<u8>) {
        let gw = self.gw.clone();
        let Some(session) = self.player().cloned() else {
            return;
        };
        if !session.take_request_token(gw.settings.requests_per_sec, gw.settings.request_burst) {
            gw.metrics.rate_limited.inc();
            self.link.send(&Frame::Error {
                id,
                code: ErrorCode::RateLimited,
                message: format!(
                    "over {} requests per second; slow down",
                    gw.settings.requests_per_sec
                ),
            });
            return;
        }
        let link = self.link.clone();
        tokio::spawn(async move {
            let outcome = gw
                .dispatch()
                .request(
                    Address::parse(&target),
                    Sender::Player(session.player),
                    payload,
                )
                .await;
            link.send(&match outcome {
                Ok(payload) => Frame::Reply { id, payload },
                Err(e) => failed(id, &e),
            });
        });
    }

    fn join(&self, id: u32, room: String) {
        let gw = self.gw.clone();
        let Some(session) = self.player().cloned() else {
            return;
        };
        let link = self.link.clone();
        tokio::spawn(async move {
            let address = Address::parse(&room);
            match gw.dispatch().join(address.clone(), session.player).await {
                Ok(()) => {
                    let handle = gw.sync.add_member(&address, session.player);
                    session.add_room(handle, address.clone());
                    gw.record_session(&session);
                    link.send(&Frame::Joined {
                        id,
                        room: handle,
                        name: address.to_string(),
                    });
                    gw.sync.send_current(&gw, &address, session.player);
                }
                Err(e) => {
                    link.send(&failed(id, &e));
                }
            }
        });
    }
}
