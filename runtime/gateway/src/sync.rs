//! Room state sync. A room actor calls `set-synced-state`; each such publication
//! is a tick of that room. At each tick every member gets the frame that brings
//! its last acknowledged state to the new one (a delta, or a snapshot when the
//! member has no baseline the room still holds), as a datagram when it fits the
//! path MTU, else on its control stream. Members with the same baseline share
//! one encoding. Nothing here waits on a player: a full send buffer drops the
//! frame, and the member catches up from its last ack.

use crate::Gateway;
use anthill_core::metrics::{counter, counter_vec};
use anthill_core::{Address, SyncedState};
use anthill_protocol::sync::{PackedState, RoomHistory};
use anthill_protocol::wire;
use bytes::Bytes;
use prometheus::{IntCounter, IntCounterVec};
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex};

/// A room's handle in frames: a hash of its address, so every node of a
/// cluster gives a room the same handle and a session resumed on another
/// node keeps its handles (never 0).
pub fn room_handle(room: &Address) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in room.module.bytes().chain([b'/']).chain(room.key.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

struct RoomInner {
    history: RoomHistory,
    tick: u64,
    /// Member player id → last tick it acknowledged. (Fx: ids are the
    /// node's, hashed on every ack and tick; SipHash was a cost there.)
    members: FxHashMap<u64, Option<u64>>,
}

/// The sync state of one room.
pub struct RoomSync {
    /// The room's handle in frames (the same for every member).
    pub id: u32,
    inner: Mutex<RoomInner>,
}

/// Every room's sync state.
pub struct Sync {
    /// (Fx: a member's ack looks its room up here, thousands of times a
    /// second; rooms are named by modules, not by players' packets.)
    rooms: Mutex<FxHashMap<Address, Arc<RoomSync>>>,
    ticks: IntCounter,
    bytes: IntCounterVec,
    frames: IntCounterVec,
}

impl Sync {
    /// No rooms yet, reporting to `registry`.
    pub fn new(registry: &prometheus::Registry) -> Sync {
        let ticks = counter(
            registry,
            "anthill_sync_ticks_total",
            "Room state publications.",
        );
        let bytes = counter_vec(
            registry,
            "anthill_sync_bytes_total",
            "State bytes sent to players, by frame kind.",
            &["kind"],
        );
        let frames = counter_vec(
            registry,
            "anthill_sync_frames_total",
            "State frames sent to players, by kind and path.",
            &["kind", "path"],
        );
        Sync {
            rooms: Mutex::new(FxHashMap::default()),
            ticks,
            bytes,
            frames,
        }
    }

    fn room(&self, address: &Address) -> Arc<RoomSync> {
        let mut rooms = self.rooms.lock().expect("sync poisoned");
        rooms
            .entry(address.clone())
            .or_insert_with(|| {
                Arc::new(RoomSync {
                    id: room_handle(address),
                    inner: Mutex::new(RoomInner {
                        history: RoomHistory::new(),
                        tick: 0,
                        members: FxHashMap::default(),
                    }),
                })
            })
            .clone()
    }

    fn existing(&self, address: &Address) -> Option<Arc<RoomSync>> {
        self.rooms
            .lock()
            .expect("sync poisoned")
            .get(address)
            .cloned()
    }

    /// Adds a member (with no baseline: its first frame is a snapshot); returns
    /// the room's handle.
    pub fn add_member(&self, address: &Address, player: u64) -> u32 {
        let room = self.room(address);
        room.inner
            .lock()
            .expect("room poisoned")
            .members
            .insert(player, None);
        room.id
    }

    /// `player` left the room.
    pub fn remove_member(&self, address: &Address, player: u64) {
        if let Some(room) = self.existing(address) {
            room.inner
                .lock()
                .expect("room poisoned")
                .members
                .remove(&player);
        }
    }

    /// The member applied `tick`.
    pub fn ack(&self, address: &Address, player: u64, tick: u64) {
        if let Some(room) = self.existing(address) {
            let mut inner = room.inner.lock().expect("room poisoned");
            if let Some(acked) = inner.members.get_mut(&player) {
                *acked = Some(acked.map_or(tick, |a| a.max(tick)));
            }
        }
    }

    /// Forgets a member's baseline (after a reconnect): its next frame is a
    /// snapshot.
    pub fn reset(&self, address: &Address, player: u64) {
        let Some(room) = self.existing(address) else {
            return;
        };
        if let Some(acked) = room
            .inner
            .lock()
            .expect("room poisoned")
            .members
            .get_mut(&player)
        {
            *acked = None;
        }
    }

    /// Players in the rooms of `module`, summed.
    pub fn members_in_module(&self, module: &str) -> usize {
        let rooms: Vec<_> = self
            .rooms
            .lock()
            .expect("sync poisoned")
            .iter()
            .filter(|(a, _)| a.module == module)
            .map(|(_, r)| r.clone())
            .collect();
        rooms
            .iter()
            .map(|room| room.inner.lock().expect("room poisoned").members.len())
            .sum()
    }

    /// Whether any player is in the room.
    pub fn has_members(&self, address: &Address) -> bool {
        self.existing(address)
            .is_some_and(|r| !r.inner.lock().expect("room poisoned").members.is_empty())
    }

    /// Members of a room (for operators and tests).
    pub fn members(&self, address: &Address) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .existing(address)
            .map(|r| {
                r.inner
                    .lock()
                    .expect("room poisoned")
                    .members
                    .keys()
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// A new state of the room: the next tick, sent to every member.
    pub fn publish(&self, gateway: &Gateway, address: &Address, state: SyncedState) {
        let deltas = gateway.settings.sync_deltas;
        let room = self.room(address);
        let mut inner = room.inner.lock().expect("room poisoned");
        inner.tick += 1;
        let tick = inner.tick;
        let (ids, ends, bytes) = state.into_parts();
        // `SyncedState` holds its parts to the same rule, so they fit.
        let packed = PackedState::from_parts(ids, ends, bytes).unwrap_or_default();
        inner.history.push(tick, packed);
        self.ticks.inc();
        // One encoding per distinct baseline.
        let mut encoded: FxHashMap<Option<u64>, Option<(Bytes, Kind)>> = FxHashMap::default();
        let members: Vec<(u64, Option<u64>)> = inner
            .members
            .iter()
            .map(|(p, a)| (*p, if deltas { *a } else { None }))
            .collect();
        // The members' sessions in one look-up of the node's table, and the
        // metrics counted once a tick: per member, both were locks and
        // hashes on the path every state takes.
        let sessions = gateway.sessions_of(members.iter().map(|(p, _)| *p));
        let mut sent = Sent::default();
        for ((_, acked), session) in members.into_iter().zip(sessions) {
            let frame = encoded.entry(acked).or_insert_with(|| {
                inner.history.frame_for(room.id, acked).map(|f| {
                    let kind = if matches!(f, anthill_protocol::Frame::Delta { .. }) {
                        Kind::Delta
                    } else {
                        Kind::Snapshot
                    };
                    (Bytes::from(wire::encode(&f)), kind)
                })
            });
            if let Some((bytes, kind)) = frame {
                let path = match &session {
                    Some(s) => s.send_state(bytes),
                    None => Path::Dropped,
                };
                sent.add(*kind, path, bytes.len());
            }
        }
        drop(inner);
        self.count(&sent);
    }

    fn count(&self, sent: &Sent) {
        for kind in [Kind::Delta, Kind::Snapshot] {
            let bytes = sent.bytes[kind as usize];
            if bytes > 0 {
                self.bytes
                    .with_label_values(&[kind.name()])
                    .inc_by(bytes as u64);
            }
            for path in [Path::Datagram, Path::Stream, Path::Dropped] {
                let n = sent.frames[kind as usize][path as usize];
                if n > 0 {
                    self.frames
                        .with_label_values(&[kind.name(), path.name()])
                        .inc_by(n);
                }
            }
        }
    }

    /// Sends a member the room's current state now (after a join or a resume).
    pub fn send_current(&self, gateway: &Gateway, address: &Address, player: u64) {
        let Some(room) = self.existing(address) else {
            return;
        };
        let inner = room.inner.lock().expect("room poisoned");
        if let Some(f) = inner.history.frame_for(room.id, None) {
            let bytes = Bytes::from(wire::encode(&f));
            let path = gateway.send_state(player, &bytes);
            let mut sent = Sent::default();
            sent.add(Kind::Snapshot, path, bytes.len());
            drop(inner);
            self.count(&sent);
        }
    }

    /// Drops the sync state of a module's rooms (on undeploy).
    pub fn remove_module(&self, module: &str) {
        self.rooms
            .lock()
            .expect("sync poisoned")
            .retain(|a, _| a.module != module);
    }
}

/// What a state frame is.
#[derive(Clone, Copy)]
enum Kind {
    Delta = 0,
    Snapshot = 1,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Delta => "delta",
            Kind::Snapshot => "snapshot",
        }
    }
}

/// How a state frame left (the `path` label of `anthill_sync_frames_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    Datagram = 0,
    Stream = 1,
    /// No link, or its queue was full: the member catches up from its ack.
    Dropped = 2,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Datagram => "datagram",
            Path::Stream => "stream",
            Path::Dropped => "dropped",
        }
    }
}

/// A tick's frames and bytes, counted into the metrics once.
#[derive(Default)]
struct Sent {
    bytes: [usize; 2],
    frames: [[u64; 3]; 2],
}

impl Sent {
    fn add(&mut self, kind: Kind, path: Path, bytes: usize) {
        self.bytes[kind as usize] += bytes;
        self.frames[kind as usize][path as usize] += 1;
    }
}
