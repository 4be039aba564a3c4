//! A player's session: who the player is, its current connection (if any), the
//! rooms it is in, and the reliable pushes kept for replay. A session outlives
//! its connection by the resume grace period.

use super::link::{Carrier, Link};
use super::sync::Path;
use anthill_core::{Address, KeptPushes};
use anthill_protocol::{Frame, wire};
use bytes::Bytes;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

struct Inner {
    link: Option<Link>,
    epoch: u64,
    /// Shared, so that an ack (ten a second per player) finds its room
    /// without copying the address's strings.
    rooms: FxHashMap<u32, Arc<Address>>,
    outbox: VecDeque<(u64, Bytes)>,
    next_seq: u64,
    tokens: f64,
    refilled: Instant,
}

/// A player's session: it outlives connections for the resume grace.
pub struct Session {
    /// The player.
    pub player: u64,
    /// Unique per session (a new login makes a new one).
    pub id: u64,
    inner: Mutex<Inner>,
}

impl Session {
    pub(crate) fn new(player: u64, id: u64, burst: f64) -> Session {
        Session {
            player,
            id,
            inner: Mutex::new(Inner {
                link: None,
                epoch: 0,
                rooms: FxHashMap::default(),
                outbox: VecDeque::new(),
                next_seq: 0,
                tokens: burst,
                refilled: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("session poisoned")
    }

    /// Whether a connection is attached.
    pub fn is_connected(&self) -> bool {
        self.lock().link.is_some()
    }

    /// Makes `link` the session's connection (closing an older one); returns its
    /// epoch, to recognise its own detach later.
    pub(crate) fn attach(&self, link: Link) -> u64 {
        let mut inner = self.lock();
        if let Some(old) = inner.link.replace(link) {
            old.close(3, "replaced by a newer connection of the same session");
        }
        inner.epoch += 1;
        inner.epoch
    }

    /// This session was replaced by a new login: close its connection.
    pub(crate) fn attach_closed(&self) {
        if let Some(old) = self.lock().link.take() {
            old.close(4, "logged in again elsewhere");
        }
    }

    /// Closes the current connection, if any (the session stays).
    pub(crate) fn close_link(&self, code: u32, reason: &'static str) {
        if let Some(l) = self.lock().link.clone() {
            l.close(code, reason);
        }
    }

    /// The connection of `epoch` ended; true if it was still the current one.
    pub(crate) fn detach(&self, epoch: u64) -> bool {
        let mut inner = self.lock();
        if inner.epoch == epoch && inner.link.is_some() {
            inner.link = None;
            return true;
        }
        false
    }

    /// Whether the session is still without a connection since `epoch` ended.
    pub(crate) fn still_detached(&self, epoch: u64) -> bool {
        let inner = self.lock();
        inner.epoch == epoch && inner.link.is_none()
    }

    /// Re-sends the kept reliable pushes the client has not seen, in order.
    pub(crate) fn replay_after(&self, last_seen: u64) -> usize {
        let inner = self.lock();
        let Some(link) = inner.link.clone() else {
            return 0;
        };
        let mut n = 0;
        for (seq, bytes) in inner.outbox.iter() {
            if *seq > last_seen {
                if !link.send_bytes(bytes.clone()) {
                    break;
                }
                n += 1;
            }
        }
        n
    }

    /// A session taken over from another node: the client has seen pushes up
    /// to `last_seen` there, and `kept` are the ones the old node still held
    /// after that (numbered there, sent again on resume); numbering
    /// continues after both.
    pub(crate) fn continue_pushes_after(&self, last_seen: u64, kept: KeptPushes) {
        let mut inner = self.lock();
        inner.next_seq = inner.next_seq.max(last_seen);
        for (seq, frame) in kept {
            if seq > inner.next_seq {
                inner.next_seq = seq;
                inner.outbox.push_back((seq, Bytes::from(frame)));
            }
        }
    }

    /// The reliable pushes kept after `last_seen`, for the node the session
    /// moves to.
    pub(crate) fn kept_after(&self, last_seen: u64) -> KeptPushes {
        self.lock()
            .outbox
            .iter()
            .filter(|(seq, _)| *seq > last_seen)
            .map(|(seq, frame)| (*seq, frame.to_vec()))
            .collect()
    }

    pub(crate) fn push_reliable(&self, payload: Vec<u8>, backlog: usize) -> &'static str {
        let mut inner = self.lock();
        inner.next_seq += 1;
        let seq = inner.next_seq;
        let bytes = Bytes::from(wire::encode_prefixed(&Frame::Push { seq, payload }));
        inner.outbox.push_back((seq, bytes.clone()));
        while inner.outbox.len() > backlog {
            inner.outbox.pop_front();
        }
        match &inner.link {
            Some(link) if link.send_bytes(bytes) => "sent",
            Some(_) => "kept",
            None => "kept",
        }
    }

    pub(crate) fn push_unreliable(&self, payload: Vec<u8>) -> &'static str {
        let link = self.lock().link.clone();
        let bytes = Bytes::from(wire::encode(&Frame::Push { seq: 0, payload }));
        match link {
            Some(l) if l.datagram(&bytes) => "sent",
            Some(l) if !l.has_datagrams() && l.stream_lossy(&bytes) => "sent",
            _ => "dropped",
        }
    }

    /// A state frame: a datagram if it fits, else the control stream (without
    /// closing a slow connection: a lost state frame is repaired by the next).
    pub(crate) fn send_state(&self, frame: &Bytes) -> Path {
        let inner = self.lock();
        let Some(link) = inner.link.as_ref() else {
            return Path::Dropped;
        };
        if let Carrier::Direct(direct) = &link.transport {
            // A push onto the endpoint's queue, which waits on nothing: done
            // under this lock, nothing is cloned (a clone counted the
            // endpoint's one shared `Arc` in and out, per member per tick,
            // from both workers).
            if direct.datagram(frame) {
                return Path::Datagram;
            }
        } else {
            // Other transports' datagrams take their connection's lock: not
            // under this one. The transport alone: cloning the whole link
            // would also count a sender of its control-stream queue in and
            // out.
            let transport = link.transport.clone();
            drop(inner);
            if transport.datagram(frame) {
                return Path::Datagram;
            }
            return match self.lock().link.clone() {
                Some(link) if link.stream_lossy(frame) => Path::Stream,
                _ => Path::Dropped,
            };
        }
        if link.stream_lossy(frame) {
            Path::Stream
        } else {
            Path::Dropped
        }
    }

    /// Takes one request token from the player's bucket.
    pub(crate) fn take_request_token(&self, rate: f64, burst: f64) -> bool {
        let mut inner = self.lock();
        let now = Instant::now();
        let elapsed = now.duration_since(inner.refilled).as_secs_f64();
        inner.tokens = (inner.tokens + elapsed * rate).min(burst);
        inner.refilled = now;
        if inner.tokens >= 1.0 {
            inner.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub(crate) fn add_room(&self, handle: u32, room: Address) {
        self.lock().rooms.insert(handle, Arc::new(room));
    }

    pub(crate) fn remove_room(&self, handle: u32) -> Option<Address> {
        self.lock().rooms.remove(&handle).map(Arc::unwrap_or_clone)
    }

    pub(crate) fn room(&self, handle: u32) -> Option<Arc<Address>> {
        self.lock().rooms.get(&handle).cloned()
    }

    pub(crate) fn rooms(&self) -> Vec<(u32, Address)> {
        self.lock()
            .rooms
            .iter()
            .map(|(h, a)| (*h, Address::clone(a)))
            .collect()
    }

    pub(crate) fn take_rooms(&self) -> Vec<Address> {
        self.lock()
            .rooms
            .drain()
            .map(|(_, a)| Arc::unwrap_or_clone(a))
            .collect()
    }
}
