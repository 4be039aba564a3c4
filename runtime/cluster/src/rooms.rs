//! Rooms whose players are connected to other nodes. A player joins a room
//! through whichever node it is connected to; the room lives on its
//! partition's owner, whose `on-join` decides (the join is forwarded like a
//! call). The owner then keeps, per room, which members are connected to
//! which other node, and at each tick sends each such node the room's
//! entities once. That node's own gateway diffs them against each of its
//! players' acknowledged baselines, so acks never cross nodes, a player's
//! deltas and datagram-or-stream choice are the same as on one node, and a
//! room costs one message per tick per node with members, whatever the
//! number of players there. Pushes to a player connected elsewhere take the
//! same ordered queue, so a push and the states around it arrive in the
//! order the room made them.
//!
//! The connecting node remembers the rooms it joined elsewhere (its visits)
//! and attaches their members again every [`REATTACH`]: after the owner
//! dies, the first attach to reach the new owner activates the room there
//! from its replicated snapshot, and state flows again. Members nobody
//! attached for the players' resume grace (their node died, and they did
//! not resume on another node in time) leave the room, with `on-leave`, as a
//! player whose connection dropped does on one node.

use crate::metrics::ClusterMetrics;
use crate::outbox::Outbox;
use anthill_core::{
    Address, CallError, Channel, KeptPushes, Players, RoomSink, SessionHost, SyncedState,
};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// How often a node attaches its players to the rooms other nodes own.
pub(crate) const REATTACH: Duration = Duration::from_secs(1);

/// A remote member nobody attached for this long has left (its node died),
/// until the gateway says its resume grace.
const MEMBER_EXPIRY: Duration = Duration::from_secs(30);

/// Frames queued for one node before more are dropped (state is
/// superseded by the next tick; a dropped push is counted and logged).
const QUEUE: usize = 4_096;

const STATE: u8 = 1;
const PUSH: u8 = 2;
const RELEASE: u8 = 3;
const END: u8 = 4;

/// How long a node taking a session over waits for its old node's answer.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(1);

/// The subject `node` reads room states, pushes and releases on.
fn players_subject(cluster: &str, node: &str) -> String {
    format!("{cluster}.node.{node}.players")
}

/// The local player side: the gateway, when this node serves players.
struct Local {
    rooms: Arc<dyn RoomSink>,
    players: Arc<dyn Players>,
    sessions: Arc<dyn SessionHost>,
}

struct Member {
    node: String,
    seen: Instant,
}

/// This node's rooms with members elsewhere, and its players' rooms
/// elsewhere.
pub(crate) struct Rooms {
    cluster: String,
    me: String,
    client: async_nats::Client,
    metrics: ClusterMetrics,
    local: OnceLock<Local>,
    /// Rooms owned here → member → the node it is connected to.
    members: Mutex<HashMap<Address, HashMap<u64, Member>>>,
    /// Rooms owned elsewhere → the players connected here who joined them.
    visits: Mutex<HashMap<Address, HashSet<u64>>>,
    /// One ordered publisher per destination node.
    outbox: Outbox,
    /// How long a remote member stays without being attached (ms).
    member_expiry_ms: AtomicU64,
    /// Where players' sessions are recorded (`NAME-sessions`), for pushes
    /// to players who are in no room here.
    sessions: async_nats::jetstream::kv::Store,
    /// Pushes waiting for their player's node to be looked up, in order.
    lookups: Mutex<HashMap<u64, Vec<Bytes>>>,
    /// Players' nodes looked up lately.
    player_nodes: Mutex<HashMap<u64, (String, Instant)>>,
    /// Players whose session moved from here to another node, and when:
    /// pushes still sent here (by nodes whose lookup is not fresh yet)
    /// follow them there.
    moved: Mutex<HashMap<u64, (String, Instant)>>,
    this: Weak<Rooms>,
}

impl Rooms {
    pub(crate) fn new(
        cluster: &str,
        me: &str,
        client: async_nats::Client,
        sessions: async_nats::jetstream::kv::Store,
        metrics: ClusterMetrics,
    ) -> Arc<Rooms> {
        let prefix = cluster.to_owned();
        let outbox = Outbox::new(
            client.clone(),
            move |node| players_subject(&prefix, node),
            QUEUE,
            "a room state or push",
        );
        Arc::new_cyclic(|this| Rooms {
            cluster: cluster.to_owned(),
            me: me.to_owned(),
            client,
            metrics,
            local: OnceLock::new(),
            members: Mutex::new(HashMap::new()),
            visits: Mutex::new(HashMap::new()),
            outbox,
            member_expiry_ms: AtomicU64::new(MEMBER_EXPIRY.as_millis() as u64),
            sessions,
            lookups: Mutex::new(HashMap::new()),
            player_nodes: Mutex::new(HashMap::new()),
            moved: Mutex::new(HashMap::new()),
            this: this.clone(),
        })
    }

    /// Where this node's gateway is: the sinks that see local players, and
    /// what holds their sessions; `resume_grace` is how long a player who
    /// lost its node has to resume on another before it leaves its rooms.
    pub(crate) fn attach_local(
        &self,
        rooms: Arc<dyn RoomSink>,
        players: Arc<dyn Players>,
        sessions: Arc<dyn SessionHost>,
        resume_grace: Duration,
    ) {
        self.member_expiry_ms
            .store(resume_grace.as_millis() as u64, Ordering::Relaxed);
        let _ = self.local.set(Local {
            rooms,
            players,
            sessions,
        });
    }

    /// `player` resumed `session` here: `node`, which held it, lets go of it
    /// (without leaving its rooms). Sent on the same ordered queue as state
    /// and pushes, so it lands after what was already on its way there.
    /// Tells `node` that `player`'s `session` resumed here, its client
    /// having seen reliable pushes up to `last_push`: that node lets go of
    /// it and answers with the pushes it kept after that one (none when it
    /// does not answer within a second: it is dead, or the session ended).
    pub(crate) async fn release_elsewhere(
        &self,
        node: &str,
        player: u64,
        session: u64,
        last_push: u64,
    ) -> KeptPushes {
        let frame = encode_release(player, session, last_push, &self.me);
        let asked = self.client.send_request(
            self.subject(node),
            async_nats::Request::new()
                .payload(frame)
                .timeout(Some(RELEASE_TIMEOUT)),
        );
        let (outcome, kept) = match asked.await {
            Ok(reply) => match decode_kept(&reply.payload) {
                Some(kept) => ("sent", kept),
                None => {
                    tracing::warn!(
                        player,
                        node,
                        "a released session's pushes that do not decode; dropped"
                    );
                    ("sent", Vec::new())
                }
            },
            Err(e) => {
                tracing::debug!(player, node, error = %e, "the session's old node did not answer; its kept pushes stay there");
                ("unanswered", Vec::new())
            }
        };
        self.metrics
            .player_frames
            .with_label_values(&["release", outcome])
            .inc();
        kept
    }

    /// Tells `node` that `player` logged in again here: its `session` ends
    /// there (connection closed, rooms left). Resolves once NATS has the
    /// frame, so it is on its way before the new session's first request.
    pub(crate) async fn end_elsewhere(&self, node: &str, player: u64, session: u64) {
        let frame = encode_end(player, session);
        let sent = async {
            self.client
                .publish(self.subject(node), frame)
                .await
                .map_err(|e| e.to_string())?;
            self.client.flush().await.map_err(|e| e.to_string())
        };
        let outcome = match sent.await {
            Ok(()) => "sent",
            Err(e) => {
                tracing::warn!(player, node, error = %e, "the end of a session replaced by a new login did not reach its node; it ends after its resume grace");
                "dropped"
            }
        };
        self.metrics
            .player_frames
            .with_label_values(&["end", outcome])
            .inc();
    }

    /// Whether a leave of `player` from `room` sent by `origin` comes from a
    /// session that was replaced: the player is in the room through another
    /// node, or through a session on this one.
    pub(crate) fn stale_leave(&self, room: &Address, origin: &str, player: u64) -> bool {
        if origin == self.me {
            return false;
        }
        let elsewhere = self
            .members
            .lock()
            .expect("room members")
            .get(room)
            .and_then(|m| m.get(&player))
            .is_some_and(|m| m.node != origin);
        elsewhere
            || self
                .local
                .get()
                .is_some_and(|l| l.sessions.in_room(player, room))
    }

    /// The subject `node` reads room state and pushes on.
    pub(crate) fn subject(&self, node: &str) -> String {
        players_subject(&self.cluster, node)
    }

    fn set_gauge(&self, members: &HashMap<Address, HashMap<u64, Member>>) {
        let n: usize = members.values().map(HashMap::len).sum();
        self.metrics.remote_members.set(n as i64);
    }

    /// A player connected to `node` joins (or is about to join) `room`.
    pub(crate) fn joined(&self, room: &Address, node: &str, player: u64) {
        if node.is_empty() {
            return;
        }
        if node == self.me {
            // The player is in the room through a session here now: what
            // another node said of it is stale (its expiry must not make
            // the player leave).
            self.left(room, player);
            return;
        }
        let mut members = self.members.lock().expect("room members");
        members.entry(room.clone()).or_default().insert(
            player,
            Member {
                node: node.to_owned(),
                seen: Instant::now(),
            },
        );
        self.set_gauge(&members);
    }

    /// A remote member left `room`.
    pub(crate) fn left(&self, room: &Address, player: u64) {
        let mut members = self.members.lock().expect("room members");
        if let Some(m) = members.get_mut(room) {
            m.remove(&player);
            if m.is_empty() {
                members.remove(room);
            }
        }
        self.set_gauge(&members);
    }

    /// `node` says these players of its are still in `room`.
    pub(crate) fn attached(&self, room: &Address, node: &str, players: &[u64]) {
        for p in players {
            self.joined(room, node, *p);
        }
    }

    /// How long a remote member stays in a room without being attached.
    pub(crate) fn member_expiry(&self) -> Duration {
        Duration::from_millis(self.member_expiry_ms.load(Ordering::Relaxed))
    }

    /// Removes and returns the remote members nobody attached for
    /// [`Rooms::member_expiry`].
    pub(crate) fn expired(&self) -> Vec<(Address, u64)> {
        let expiry = self.member_expiry();
        let mut members = self.members.lock().expect("room members");
        let mut gone = Vec::new();
        for (room, m) in members.iter_mut() {
            m.retain(|p, member| {
                let keep = member.seen.elapsed() < expiry;
                if !keep {
                    gone.push((room.clone(), *p));
                }
                keep
            });
        }
        members.retain(|_, m| !m.is_empty());
        self.set_gauge(&members);
        gone
    }

    /// The rooms of actors that matched `which` moved away: their new owner
    /// hears of their members from the members' nodes.
    pub(crate) fn forget(&self, which: &dyn Fn(&Address) -> bool) {
        let mut members = self.members.lock().expect("room members");
        members.retain(|room, _| !which(room));
        self.set_gauge(&members);
    }

    /// The node `player` is connected to, if it is a remote member here.
    fn node_of(&self, player: u64) -> Option<String> {
        let members = self.members.lock().expect("room members");
        members
            .values()
            .find_map(|m| m.get(&player).map(|m| m.node.clone()))
    }

    /// A player connected here joined `room`, which another node owns.
    pub(crate) fn visit(&self, room: &Address, player: u64) {
        self.visits
            .lock()
            .expect("room visits")
            .entry(room.clone())
            .or_default()
            .insert(player);
    }

    /// A player connected here left `room`.
    pub(crate) fn unvisit(&self, room: &Address, player: u64) {
        let mut visits = self.visits.lock().expect("room visits");
        if let Some(v) = visits.get_mut(room) {
            v.remove(&player);
            if v.is_empty() {
                visits.remove(room);
            }
        }
    }

    /// `room` is owned here now: its members here are plain local members.
    pub(crate) fn settle(&self, room: &Address) {
        self.visits.lock().expect("room visits").remove(room);
    }

    /// The rooms elsewhere that players connected here are in.
    pub(crate) fn visits(&self) -> Vec<(Address, Vec<u64>)> {
        self.visits
            .lock()
            .expect("room visits")
            .iter()
            .map(|(r, p)| (r.clone(), p.iter().copied().collect()))
            .collect()
    }

    fn send(&self, node: &str, kind: &'static str, frame: Bytes) -> bool {
        let sent = self.outbox.send(node, frame);
        let outcome = if sent { "sent" } else { "dropped" };
        self.metrics
            .player_frames
            .with_label_values(&[kind, outcome])
            .inc();
        sent
    }

    /// Reads what other nodes send this node's players, on a task of its own.
    pub(crate) async fn serve(
        self: Arc<Self>,
    ) -> Result<tokio::task::JoinHandle<()>, crate::ClusterError> {
        use futures::StreamExt;
        let subject = self.subject(&self.me);
        let mut incoming = self.client.subscribe(subject.clone()).await.map_err(|e| {
            crate::ClusterError::Unavailable(format!("subscribing to {subject}: {e}"))
        })?;
        Ok(tokio::spawn(async move {
            while let Some(msg) = incoming.next().await {
                if let Some(answer) = self.receive(&msg.payload)
                    && let Some(reply) = msg.reply
                    && let Err(e) = self.client.publish(reply, answer).await
                {
                    tracing::debug!(error = %e, "an answer to another node was not published");
                }
            }
        }))
    }

    /// A frame from another node for players connected here, and what to
    /// answer (a release's kept pushes).
    fn receive(&self, frame: &[u8]) -> Option<Bytes> {
        let local = self.local.get()?;
        match decode(frame) {
            Some(Incoming::State { room, state }) => {
                self.metrics
                    .player_frames
                    .with_label_values(&["state", "received"])
                    .inc();
                local.rooms.publish(&room, state);
            }
            Some(Incoming::Push {
                player,
                channel,
                payload,
            }) => {
                self.metrics
                    .player_frames
                    .with_label_values(&["push", "received"])
                    .inc();
                // A copy of the payload only for a player who moved away.
                let outcome = match self.moved_to(player) {
                    None => local.players.push(player, channel, payload),
                    Some(node) => match local.players.push(player, channel, payload.clone()) {
                        Err(CallError::NotFound(_)) => {
                            self.send(&node, "push", encode_push(player, channel, &payload));
                            Ok(())
                        }
                        other => other,
                    },
                };
                if let Err(e) = outcome {
                    tracing::debug!(player, error = %e, "a push from another node found no session here");
                }
            }
            Some(Incoming::Release {
                player,
                session,
                last_push,
                taker,
            }) => {
                self.metrics
                    .player_frames
                    .with_label_values(&["release", "received"])
                    .inc();
                let (rooms, kept) = local.sessions.release(player, session, last_push);
                for room in &rooms {
                    self.unvisit(room, player);
                }
                if !taker.is_empty() {
                    let mut moved = self.moved.lock().expect("moved players");
                    let expiry = self.member_expiry();
                    moved.retain(|_, (_, at)| at.elapsed() < expiry);
                    moved.insert(player, (taker, Instant::now()));
                }
                return Some(encode_kept(&kept));
            }
            Some(Incoming::End { player, session }) => {
                self.metrics
                    .player_frames
                    .with_label_values(&["end", "received"])
                    .inc();
                local.sessions.end(player, session);
            }
            None => tracing::warn!("a room frame from another node that does not decode; dropped"),
        }
        None
    }

    /// The node `player`'s session moved to from here lately, if it did.
    fn moved_to(&self, player: u64) -> Option<String> {
        let moved = self.moved.lock().expect("moved players");
        moved
            .get(&player)
            .filter(|(_, at)| at.elapsed() < self.member_expiry())
            .map(|(node, _)| node.clone())
    }
}

impl RoomSink for Rooms {
    fn publish(&self, room: &Address, state: SyncedState) {
        let nodes: HashSet<String> = self
            .members
            .lock()
            .expect("room members")
            .get(room)
            .map(|m| m.values().map(|m| m.node.clone()).collect())
            .unwrap_or_default();
        if !nodes.is_empty() {
            let frame = encode_state(room, &state);
            for node in &nodes {
                self.send(node, "state", frame.clone());
            }
        }
        if let Some(local) = self.local.get() {
            local.rooms.publish(room, state);
        }
    }

    fn has_members(&self, room: &Address) -> bool {
        self.local.get().is_some_and(|l| l.rooms.has_members(room))
            || self
                .members
                .lock()
                .expect("room members")
                .get(room)
                .is_some_and(|m| !m.is_empty())
    }

    fn members_in_module(&self, module: &str) -> usize {
        let remote: usize = self
            .members
            .lock()
            .expect("room members")
            .iter()
            .filter(|(r, _)| r.module == module)
            .map(|(_, m)| m.len())
            .sum();
        remote
            + self
                .local
                .get()
                .map_or(0, |l| l.rooms.members_in_module(module))
    }

    fn remove_module(&self, module: &str) {
        self.forget(&|a| a.module == module);
        self.visits
            .lock()
            .expect("room visits")
            .retain(|a, _| a.module != module);
        if let Some(local) = self.local.get() {
            local.rooms.remove_module(module);
        }
    }
}

/// How long a player's node, once looked up, is trusted for pushes.
const PLAYER_NODE_KEPT: Duration = Duration::from_secs(1);

impl Rooms {
    fn push_to(&self, node: &str, player: u64, channel: Channel, frame: Bytes) {
        if !self.send(node, "push", frame) && channel == Channel::Reliable {
            tracing::warn!(
                player,
                node,
                "a reliable push to a player on another node was dropped: that node's queue is full"
            );
        }
    }

    /// A push to a player who is neither here nor in a room here: sent to
    /// the node `NAME-sessions` names, looked up once for the pushes that
    /// queue behind the lookup, so they keep their order.
    fn push_elsewhere(&self, player: u64, channel: Channel, frame: Bytes) {
        let cached = self
            .player_nodes
            .lock()
            .expect("player nodes")
            .get(&player)
            .filter(|(_, at)| at.elapsed() < PLAYER_NODE_KEPT)
            .map(|(node, _)| node.clone());
        let mut lookups = self.lookups.lock().expect("push lookups");
        if let Some(pending) = lookups.get_mut(&player) {
            pending.push(frame);
            return;
        }
        if let Some(node) = cached {
            drop(lookups);
            return self.push_to(&node, player, channel, frame);
        }
        lookups.insert(player, vec![frame]);
        drop(lookups);
        let Some(this) = self.this.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            let found = crate::sessions::node_of(&this.sessions, player).await;
            let pending = this
                .lookups
                .lock()
                .expect("push lookups")
                .remove(&player)
                .unwrap_or_default();
            match found {
                Ok(Some(node)) if node != this.me => {
                    this.player_nodes
                        .lock()
                        .expect("player nodes")
                        .insert(player, (node.clone(), Instant::now()));
                    for frame in pending {
                        this.push_to(&node, player, channel, frame);
                    }
                }
                outcome => {
                    this.metrics
                        .player_frames
                        .with_label_values(&["push", "dropped"])
                        .inc_by(pending.len() as u64);
                    tracing::debug!(
                        player,
                        ?outcome,
                        "a push to a player with no session on another node was dropped"
                    );
                }
            }
        });
    }
}

impl Players for Rooms {
    fn push(&self, player: u64, channel: Channel, message: Vec<u8>) -> Result<(), CallError> {
        let local = match self.local.get() {
            Some(l) => l.players.push(player, channel, message.clone()),
            None => Err(CallError::NotFound(format!(
                "player {player} has no session"
            ))),
        };
        match local {
            Err(CallError::NotFound(_)) => {
                let frame = encode_push(player, channel, &message);
                match self.node_of(player) {
                    Some(node) => self.push_to(&node, player, channel, frame),
                    None => self.push_elsewhere(player, channel, frame),
                }
                Ok(())
            }
            other => other,
        }
    }
}

enum Incoming {
    State {
        room: Address,
        state: SyncedState,
    },
    Push {
        player: u64,
        channel: Channel,
        payload: Vec<u8>,
    },
    Release {
        player: u64,
        session: u64,
        last_push: u64,
        /// The node the session resumed on.
        taker: String,
    },
    End {
        player: u64,
        session: u64,
    },
}

/// `[1][u16 address length][address][u32 count]([u64 id][u32 length][state])*`
fn encode_state(room: &Address, state: &SyncedState) -> Bytes {
    let name = room.to_string();
    let size = 12 * state.len() + state.state_bytes();
    let mut b = BytesMut::with_capacity(7 + name.len() + size);
    b.put_u8(STATE);
    b.put_u16(name.len() as u16);
    b.put_slice(name.as_bytes());
    b.put_u32(state.len() as u32);
    for (id, bytes) in state.iter() {
        b.put_u64(id);
        b.put_u32(bytes.len() as u32);
        b.put_slice(bytes);
    }
    b.freeze()
}

/// `[2][u64 player][u8 reliable][payload]`
fn encode_push(player: u64, channel: Channel, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(10 + payload.len());
    b.put_u8(PUSH);
    b.put_u64(player);
    b.put_u8(u8::from(channel == Channel::Reliable));
    b.put_slice(payload);
    b.freeze()
}

/// `[3][u64 player][u64 session][u64 last push seen][taker node]`
fn encode_release(player: u64, session: u64, last_push: u64, taker: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(25 + taker.len());
    b.put_u8(RELEASE);
    b.put_u64(player);
    b.put_u64(session);
    b.put_u64(last_push);
    b.put_slice(taker.as_bytes());
    b.freeze()
}

/// A release's answer: `[u32 count]([u64 seq][u32 length][frame])*`
fn encode_kept(kept: &KeptPushes) -> Bytes {
    let size: usize = kept.iter().map(|(_, f)| 12 + f.len()).sum();
    let mut b = BytesMut::with_capacity(4 + size);
    b.put_u32(kept.len() as u32);
    for (seq, frame) in kept {
        b.put_u64(*seq);
        b.put_u32(frame.len() as u32);
        b.put_slice(frame);
    }
    b.freeze()
}

fn decode_kept(bytes: &[u8]) -> Option<KeptPushes> {
    let mut r = Reader(bytes);
    let count = r.u32()? as usize;
    if count > r.0.len() / 12 {
        return None;
    }
    let mut kept = Vec::with_capacity(count);
    for _ in 0..count {
        let seq = r.u64()?;
        let len = r.u32()? as usize;
        kept.push((seq, r.take(len)?.to_vec()));
    }
    r.0.is_empty().then_some(kept)
}

/// `[4][u64 player][u64 session]`
fn encode_end(player: u64, session: u64) -> Bytes {
    let mut b = BytesMut::with_capacity(17);
    b.put_u8(END);
    b.put_u64(player);
    b.put_u64(session);
    b.freeze()
}

/// Reads big-endian fields off the front of a frame.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

fn decode(frame: &[u8]) -> Option<Incoming> {
    let mut r = Reader(frame);
    match r.u8()? {
        STATE => {
            let len = r.u16()? as usize;
            let room = Address::parse(std::str::from_utf8(r.take(len)?).ok()?);
            let count = r.u32()? as usize;
            // Each entity takes at least 12 bytes: a count beyond that is a
            // corrupt frame, not an allocation to make.
            if count > r.0.len() / 12 {
                return None;
            }
            let mut state = SyncedState::default();
            for _ in 0..count {
                let id = r.u64()?;
                let len = r.u32()? as usize;
                state.push(id, r.take(len)?);
            }
            r.0.is_empty().then_some(Incoming::State { room, state })
        }
        PUSH => {
            let player = r.u64()?;
            let channel = match r.u8()? {
                1 => Channel::Reliable,
                _ => Channel::Unreliable,
            };
            Some(Incoming::Push {
                player,
                channel,
                payload: r.0.to_vec(),
            })
        }
        RELEASE => {
            let player = r.u64()?;
            let session = r.u64()?;
            let last_push = r.u64()?;
            let taker = std::str::from_utf8(r.0).ok()?.to_owned();
            Some(Incoming::Release {
                player,
                session,
                last_push,
                taker,
            })
        }
        END => {
            let player = r.u64()?;
            let session = r.u64()?;
            r.0.is_empty().then_some(Incoming::End { player, session })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_pushes_cross_nodes_intact() {
        let room = Address::parse("arena/r/1");
        let mut state = SyncedState::default();
        state.push(3, &[1, 2, 3, 4]);
        state.push(100, &[]);
        let frame = encode_state(&room, &state);
        match decode(&frame) {
            Some(Incoming::State { room: r, state: s }) => {
                assert_eq!(r, room);
                assert_eq!(s, state);
            }
            _ => panic!("a state frame decodes as one"),
        }
        // Truncated or padded frames are refused, not misread.
        assert!(decode(&frame[..frame.len() - 1]).is_none());
        let mut padded = frame.to_vec();
        padded.push(0);
        assert!(decode(&padded).is_none());
        // A count no frame of this size can hold is refused before allocating.
        let mut huge = frame[..frame.len() - 28].to_vec();
        let at = 3 + room.to_string().len();
        huge[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&huge).is_none());

        match decode(&encode_push(9, Channel::Reliable, b"slot 4")) {
            Some(Incoming::Push {
                player,
                channel,
                payload,
            }) => {
                assert_eq!((player, channel), (9, Channel::Reliable));
                assert_eq!(payload, b"slot 4");
            }
            _ => panic!("a push frame decodes as one"),
        }
        match decode(&encode_end(9, 77)) {
            Some(Incoming::End { player, session }) => assert_eq!((player, session), (9, 77)),
            _ => panic!("an end frame decodes as one"),
        }
        let kept = vec![(4, b"four".to_vec()), (5, Vec::new())];
        assert_eq!(decode_kept(&encode_kept(&kept)), Some(kept));
        assert_eq!(decode_kept(&encode_kept(&Vec::new())), Some(Vec::new()));
        assert_eq!(decode_kept(&[0, 0, 0, 9]), None);
        match decode(&encode_release(9, 77, 3, "n2")) {
            Some(Incoming::Release {
                player,
                session,
                last_push,
                taker,
            }) => assert_eq!(
                (player, session, last_push, taker.as_str()),
                (9, 77, 3, "n2")
            ),
            _ => panic!("a release frame decodes as one"),
        }
        assert!(decode(&encode_release(9, 77, 3, "n2")[..16]).is_none());
        assert!(decode(&[9]).is_none());
    }
}
