//! `anthill bot --swarm`: a load generator that costs less than the node it
//! loads. Each shard is one task that owns one UDP socket and up to
//! [`PER_SHARD`] players' QUIC connections, driven through `quinn-proto`
//! directly (sans-IO): a batch of received packets is handled in one pass,
//! the connections it touched send what they have in that same pass, and one
//! timer per shard (the earliest deadline of its players) stands in for the
//! tasks, channels and timers that [`anthill_client::Client`] keeps per
//! player. The players speak the protocol through the same
//! [`ClientSession`] as that client (login, requests, joins, room mirrors
//! with their acks), so the node cannot tell the two apart; what the swarm
//! leaves out is what a load generator does not need (resume, fallbacks, the
//! browser transports).

use super::bot::{Scenario, Totals};
use anthill_gateway::udp::{ReadingSocket, register_for_reading};
use anthill_protocol::session::{ClientEvent, ClientSession};
use anthill_protocol::wire::{self, Auth, FrameReader, MAX_FRAME};
use bytes::{Bytes, BytesMut};
use quinn_proto::{
    ClientConfig, Connection, ConnectionHandle, DatagramEvent, Dir, Endpoint, EndpointConfig,
    Event, StreamEvent, StreamId,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::sync::watch;

/// Players per shard (one task, one socket).
pub(super) const PER_SHARD: usize = 256;
/// A request with no answer after this counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What every player of a swarm does.
#[derive(Clone)]
pub(super) struct Plan {
    pub(super) addr: SocketAddr,
    pub(super) config: ClientConfig,
    pub(super) scenario: Scenario,
    pub(super) payload: usize,
    pub(super) move_share: f64,
    /// Echo: requests per second per player (0: back to back).
    pub(super) rate: f64,
    pub(super) ack_every: u32,
    /// How long a state's ack is held (see `anthill_protocol::session::ACK_DELAY`).
    pub(super) ack_delay: Duration,
    pub(super) run_id: u32,
    pub(super) stop_at: Option<Instant>,
}

/// Runs `players` players in shards of [`PER_SHARD`], the `i`-th starting
/// `gap × i` after `start`, until `stop` turns true (then every connection
/// is closed).
pub(super) async fn run(
    plan: Plan,
    players: usize,
    gap: Duration,
    totals: Arc<Totals>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let shards = players.div_ceil(PER_SHARD).max(1);
    let mut tasks = Vec::new();
    for s in 0..shards {
        // Loopback to a node on loopback (the tests', the benches').
        let bind = match (plan.addr.is_ipv6(), plan.addr.ip().is_loopback()) {
            (false, true) => "127.0.0.1:0",
            (true, true) => "[::1]:0",
            (false, false) => "0.0.0.0:0",
            (true, false) => "[::]:0",
        };
        // The kernel's default buffers, as each real player has: when a
        // shard falls behind, its oldest states are dropped rather than
        // queued (bigger buffers made every player apply stale states and
        // ack late, so deltas grew by half).
        let socket = register_for_reading(std::net::UdpSocket::bind(bind)?)?;
        let mine: Vec<Player> = (s..players)
            .step_by(shards)
            .map(|i| Player::new(i, start + gap * i as u32, &plan))
            .collect();
        let shard = Shard {
            plan: plan.clone(),
            socket,
            endpoint: Endpoint::new(Arc::new(EndpointConfig::default()), None, false, None),
            players: mine,
            by_handle: HashMap::new(),
            totals: totals.clone(),
        };
        tasks.push(tokio::spawn(shard.run(stop.clone())));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Where a player is in its scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Not dialed yet (its start time has not come).
    Waiting,
    /// Handshaking, then logging in.
    Connecting,
    /// Asked the lobby for a room.
    Finding,
    Joining,
    Playing,
    /// Failed or closed: nothing more to do.
    Gone,
}

struct Player {
    i: usize,
    start_at: Instant,
    conn: Option<(ConnectionHandle, Connection)>,
    session: ClientSession,
    stream: Option<StreamId>,
    reader: FrameReader,
    /// Control-stream bytes not taken by the stream yet (flow control).
    outbox: Vec<u8>,
    step: Step,
    /// When the scenario acts next.
    next_at: Option<Instant>,
    /// The request in flight: its id and when it left.
    pending: Option<(u32, Instant)>,
    room: String,
    rng: u64,
    moving: bool,
}

impl Player {
    fn new(i: usize, start_at: Instant, plan: &Plan) -> Player {
        let mut session = ClientSession::new();
        session.set_ack_every(plan.ack_every);
        session.set_ack_delay(plan.ack_delay);
        Player {
            i,
            start_at,
            conn: None,
            session,
            stream: None,
            reader: FrameReader::new(MAX_FRAME),
            outbox: Vec::new(),
            step: Step::Waiting,
            next_at: None,
            pending: None,
            room: String::new(),
            rng: (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            moving: false,
        }
    }

    /// The same xorshift and pattern as `anthill bot`'s task per player.
    fn next(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 10_000) as f64 / 10_000.0
    }

    /// The earliest moment this player needs the shard's attention.
    fn deadline(&mut self) -> Option<Instant> {
        let mut at = match self.step {
            Step::Waiting => return Some(self.start_at),
            Step::Gone => return None,
            _ => self.next_at,
        };
        if let Some((_, sent)) = self.pending {
            at = Some(at.map_or(sent + REQUEST_TIMEOUT, |a| a.min(sent + REQUEST_TIMEOUT)));
        }
        let quic = self.conn.as_mut().and_then(|(_, c)| c.poll_timeout());
        for t in [quic, self.session.ack_deadline()].into_iter().flatten() {
            at = Some(at.map_or(t, |a| a.min(t)));
        }
        at
    }

    fn send_frame(&mut self, frame: &anthill_protocol::Frame) {
        self.outbox.extend_from_slice(&wire::encode_prefixed(frame));
    }

    fn request(&mut self, target: &str, payload: Vec<u8>, now: Instant) {
        let (id, frame) = self.session.request(target, payload);
        self.send_frame(&frame);
        self.pending = Some((id, now));
        // The reply schedules what comes next.
        self.next_at = None;
    }

    fn gone(&mut self, totals: &Totals, why: impl std::fmt::Display) {
        if self.step != Step::Gone {
            totals.error(format!("bot {}: {why}", self.i));
            self.step = Step::Gone;
            self.pending = None;
            self.next_at = None;
        }
    }

    /// A frame from the node, through the session.
    fn on_frame(
        &mut self,
        frame: anthill_protocol::Frame,
        plan: &Plan,
        totals: &Totals,
        now: Instant,
    ) {
        let is_state = matches!(
            frame,
            anthill_protocol::Frame::Snapshot { .. } | anthill_protocol::Frame::Delta { .. }
        );
        let (event, reply) = self.session.on_frame_at(frame, now);
        if let (Some(ack), Some((_, conn))) = (reply, self.conn.as_mut()) {
            // Acks ride datagrams, as the client's do.
            let _ = conn.datagrams().send(Bytes::from(wire::encode(&ack)), true);
        }
        if is_state {
            totals.states.fetch_add(1, Ordering::Relaxed);
        }
        let answered = |p: &mut Player, id: u32| match p.pending {
            Some((want, sent)) if want == id => {
                p.pending = None;
                Some(sent)
            }
            _ => None,
        };
        match event {
            Some(ClientEvent::Welcome { .. }) => {
                totals.connected.fetch_add(1, Ordering::Relaxed);
                match plan.scenario {
                    Scenario::Arena => {
                        self.request("lobby", b"find".to_vec(), now);
                        self.step = Step::Finding;
                    }
                    Scenario::Echo => {
                        self.step = Step::Playing;
                        self.next_at = Some(now);
                    }
                    Scenario::Idle => self.step = Step::Playing,
                }
            }
            Some(ClientEvent::Reply { id, payload }) => {
                let Some(sent) = answered(self, id) else {
                    return;
                };
                match self.step {
                    Step::Finding => totals.record_find(sent),
                    _ => totals.record(sent),
                }
                match self.step {
                    Step::Finding => match String::from_utf8(payload) {
                        Ok(room) => {
                            let (_, frame) = self.session.join(&room);
                            self.send_frame(&frame);
                            self.room = room;
                            self.step = Step::Joining;
                        }
                        Err(_) => {
                            self.gone(totals, "the lobby answered a room name that is not UTF-8")
                        }
                    },
                    Step::Playing => self.schedule(plan, sent, now),
                    _ => {}
                }
            }
            Some(ClientEvent::Failed { id, code, message }) => {
                let sent = answered(self, id);
                match self.step {
                    Step::Finding | Step::Joining => {
                        self.gone(totals, format!("{code:?}: {message}"))
                    }
                    _ => {
                        totals.error(format!("bot {}: {code:?}: {message}", self.i));
                        if let Some(sent) = sent {
                            self.schedule(plan, sent, now);
                        }
                    }
                }
            }
            Some(ClientEvent::Joined { .. }) => {
                self.step = Step::Playing;
                self.schedule(plan, now, now);
            }
            Some(ClientEvent::Closed { code, message }) => {
                self.gone(totals, format!("closed by the node: {code:?}: {message}"))
            }
            _ => {}
        }
    }

    /// When to act next, after the request sent at `sent` (or a decision).
    fn schedule(&mut self, plan: &Plan, sent: Instant, now: Instant) {
        self.next_at = Some(match plan.scenario {
            Scenario::Arena => now + Duration::from_millis(500 + (self.next() * 1000.0) as u64),
            Scenario::Echo if plan.rate > 0.0 => {
                (sent + Duration::from_secs_f64(1.0 / plan.rate)).max(now)
            }
            _ => now,
        });
    }

    /// The scenario's action, when its time has come.
    fn act(&mut self, plan: &Plan, now: Instant) {
        if self.step != Step::Playing || self.pending.is_some() {
            return;
        }
        if self.next_at.is_none_or(|t| t > now) {
            return;
        }
        if plan.stop_at.is_some_and(|s| now >= s) {
            self.next_at = None;
            return;
        }
        match plan.scenario {
            Scenario::Echo => self.request("echo", vec![b'x'; plan.payload], now),
            Scenario::Arena => {
                let want = self.next() < plan.move_share;
                let cmd = if want {
                    format!(
                        "move {:.0} {:.0}",
                        self.next() * 200.0 - 100.0,
                        self.next() * 200.0 - 100.0
                    )
                } else if self.moving {
                    "stop".to_owned()
                } else {
                    self.schedule(plan, now, now);
                    return;
                };
                self.moving = want;
                let room = std::mem::take(&mut self.room);
                self.request(&room, cmd.into_bytes(), now);
                self.room = room;
            }
            Scenario::Idle => self.next_at = None,
        }
    }
}

struct Shard {
    plan: Plan,
    /// Registered for reading only ([`anthill_gateway::udp`]).
    socket: ReadingSocket,
    endpoint: Endpoint,
    players: Vec<Player>,
    by_handle: HashMap<ConnectionHandle, usize>,
    totals: Arc<Totals>,
}

impl Shard {
    async fn run(mut self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 64 << 10];
        let mut out = Vec::with_capacity(1500);
        let mut touched = vec![false; self.players.len()];
        // Each player's deadline as of its last drive (a connection's timers
        // change only when it is driven, and packets drive it).
        let mut due: Vec<Option<Instant>> = self.players.iter_mut().map(|p| p.deadline()).collect();
        let mut todo: Vec<usize> = Vec::new();
        loop {
            // Everyone whose deadline has come, plus those packets reached.
            let now = Instant::now();
            let mut wake: Option<Instant> = None;
            for (i, d) in due.iter().enumerate() {
                match *d {
                    Some(t) if t <= now && !touched[i] => {
                        touched[i] = true;
                        todo.push(i);
                    }
                    Some(t) if t <= now => {}
                    Some(t) => wake = Some(wake.map_or(t, |w| w.min(t))),
                    None => {}
                }
            }
            for i in todo.drain(..) {
                touched[i] = false;
                self.drive(i, now, &mut out);
                due[i] = self.players[i].deadline();
                if let Some(t) = due[i] {
                    wake = Some(wake.map_or(t, |w| w.min(t)));
                }
            }
            let sleep =
                tokio::time::sleep_until(wake.unwrap_or(now + Duration::from_secs(1)).into());
            tokio::select! {
                r = self.socket.readable() => drop(r?),
                _ = sleep => continue,
                _ = stop.changed() => {
                    self.close_all(&mut out);
                    return Ok(());
                }
            }
            // Every packet waiting, in one pass.
            let now = Instant::now();
            loop {
                let (n, from) = match self
                    .socket
                    .try_io(Interest::READABLE, |s| s.recv_from(&mut buf))
                {
                    Ok(x) => x,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                };
                self.totals.wire_in.fetch_add(n as u64, Ordering::Relaxed);
                self.totals.packets_in.fetch_add(1, Ordering::Relaxed);
                out.clear();
                match self.endpoint.handle(
                    now,
                    from,
                    None,
                    None,
                    BytesMut::from(&buf[..n]),
                    &mut out,
                ) {
                    Some(DatagramEvent::ConnectionEvent(ch, ev)) => {
                        if let Some(&i) = self.by_handle.get(&ch) {
                            if let Some((_, c)) = self.players[i].conn.as_mut() {
                                c.handle_event(ev);
                            }
                            if !touched[i] {
                                touched[i] = true;
                                todo.push(i);
                            }
                        }
                    }
                    Some(DatagramEvent::Response(t)) => {
                        send(&self.socket, &self.totals, &out[..t.size], t.destination);
                    }
                    Some(DatagramEvent::NewConnection(_)) | None => {}
                }
            }
        }
    }

    /// Everything one player has to do now: dial, timers, what arrived, the
    /// scenario's next step, and the packets that makes.
    fn drive(&mut self, i: usize, now: Instant, out: &mut Vec<u8>) {
        let plan = &self.plan;
        let totals = &*self.totals;
        let p = &mut self.players[i];
        if p.step == Step::Waiting {
            if now < p.start_at {
                return;
            }
            match self
                .endpoint
                .connect(now, plan.config.clone(), plan.addr, "localhost")
            {
                Ok((ch, conn)) => {
                    self.by_handle.insert(ch, i);
                    p.conn = Some((ch, conn));
                    p.step = Step::Connecting;
                }
                Err(e) => p.gone(totals, format!("cannot dial {}: {e}", plan.addr)),
            }
        }
        let Some((_, conn)) = p.conn.as_mut() else {
            return;
        };
        if conn.poll_timeout().is_some_and(|t| t <= now) {
            conn.handle_timeout(now);
        }
        let mut frames = Vec::new();
        while let Some(ev) = conn.poll() {
            match ev {
                Event::ConnectionLost { reason } => {
                    let why = format!("connection lost: {reason}");
                    frames.clear();
                    p.pending = None;
                    if p.step != Step::Gone {
                        totals.error(format!("bot {}: {why}", p.i));
                        p.step = Step::Gone;
                        p.next_at = None;
                    }
                }
                Event::Stream(StreamEvent::Readable { id }) => {
                    if let Ok(mut chunks) = conn.recv_stream(id).read(true) {
                        while let Ok(Some(c)) = chunks.next(usize::MAX) {
                            totals
                                .bytes_in
                                .fetch_add(c.bytes.len() as u64, Ordering::Relaxed);
                            p.reader.push(&c.bytes);
                        }
                        let _ = chunks.finalize();
                    }
                    loop {
                        match p.reader.next_frame() {
                            Ok(Some(f)) => frames.push(f),
                            Ok(None) => break,
                            Err(e) => {
                                conn.close(now, 0u32.into(), Bytes::from_static(b"bad frame"));
                                totals.error(format!("bot {}: bad frame from the node: {e}", p.i));
                                break;
                            }
                        }
                    }
                }
                Event::DatagramReceived => {
                    while let Some(d) = conn.datagrams().recv() {
                        totals.datagrams_in.fetch_add(1, Ordering::Relaxed);
                        totals.bytes_in.fetch_add(d.len() as u64, Ordering::Relaxed);
                        if let Ok(f) = wire::decode(&d, MAX_FRAME) {
                            frames.push(f);
                        }
                    }
                }
                _ => {}
            }
        }
        // The control stream, once the handshake is done and the node lets
        // us open one (its stream credit can come after `Connected`).
        if p.stream.is_none()
            && p.step == Step::Connecting
            && !conn.is_handshaking()
            && let Some(id) = conn.streams().open(Dir::Bi)
        {
            p.stream = Some(id);
            let hello = p.session.hello(Auth::Device {
                id: format!("bot-{:08x}-{}", plan.run_id, p.i),
            });
            p.outbox.extend_from_slice(&wire::encode_prefixed(&hello));
        }
        for f in frames {
            p.on_frame(f, plan, totals, now);
        }
        if let Some((_, sent)) = p.pending
            && now.duration_since(sent) >= REQUEST_TIMEOUT
        {
            p.pending = None;
            totals.error(format!(
                "bot {}: no answer in {} s",
                p.i,
                REQUEST_TIMEOUT.as_secs()
            ));
            p.schedule(plan, sent, now);
        }
        p.act(plan, now);
        let Some((ch, conn)) = p.conn.as_mut() else {
            return;
        };
        // Held acks whose time has come: in the same packet as the QUIC ACK
        // that the same deadline (25 ms after the state) brings out.
        while let Some(ack) = p.session.poll_ack(now) {
            let _ = conn.datagrams().send(Bytes::from(wire::encode(&ack)), true);
        }
        if let (Some(id), false) = (p.stream, p.outbox.is_empty())
            && let Ok(n) = conn.send_stream(id).write(&p.outbox)
        {
            p.outbox.drain(..n);
        }
        while let Some(ev) = conn.poll_endpoint_events() {
            if let Some(back) = self.endpoint.handle_event(*ch, ev) {
                conn.handle_event(back);
            }
        }
        loop {
            out.clear();
            let Some(t) = conn.poll_transmit(now, 1, out) else {
                break;
            };
            send(&self.socket, &self.totals, &out[..t.size], t.destination);
        }
        if conn.is_drained() {
            self.by_handle.remove(ch);
            p.conn = None;
        }
    }

    /// Closes every connection (the run is over) and sends the close packets;
    /// players that never got to play are counted by where they stopped.
    fn close_all(&mut self, out: &mut Vec<u8>) {
        let now = Instant::now();
        let mut stuck: HashMap<&'static str, usize> = HashMap::new();
        for p in &self.players {
            let at = match p.step {
                Step::Waiting => "not dialed yet",
                Step::Connecting if p.stream.is_none() => "handshaking",
                Step::Connecting => "logging in",
                Step::Finding => "waiting for the lobby",
                Step::Joining => "joining a room",
                Step::Playing | Step::Gone => continue,
            };
            *stuck.entry(at).or_default() += 1;
        }
        for (at, n) in stuck {
            self.totals
                .error(format!("{n} players were still {at} when the run ended"));
        }
        for p in &mut self.players {
            if let Some((_, conn)) = p.conn.as_mut() {
                conn.close(now, 0u32.into(), Bytes::from_static(b"bot done"));
                loop {
                    out.clear();
                    let Some(t) = conn.poll_transmit(now, 1, out) else {
                        break;
                    };
                    send(&self.socket, &self.totals, &out[..t.size], t.destination);
                }
            }
        }
    }
}

/// Sends now or never: a full socket buffer drops the packet, and QUIC
/// resends it.
fn send(socket: &ReadingSocket, totals: &Totals, packet: &[u8], to: SocketAddr) {
    totals.packets_out.fetch_add(1, Ordering::Relaxed);
    let _ = socket.get_ref().send_to(packet, to);
}
