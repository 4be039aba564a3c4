//! Connection state machines. The node drives a [`ServerConn`] per connection
//! and a client drives a [`ClientSession`]; both only turn frames into events
//! and events into frames, so their rules are tested without sockets.

use crate::sync::{Applied, EntityMap, Mirror};
use crate::wire::{Auth, ErrorCode, Frame, VERSION};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a client holds a room-state ack before sending it, when it
/// defers acks ([`ClientSession::set_ack_delay`]): QUIC's default
/// `max_ack_delay`. The state's datagram is ack-eliciting, so the client's
/// QUIC stack acknowledges it about this long after it arrived; a state ack
/// sent then shares that packet. And the node, which must itself acknowledge
/// the state ack within its own 25 ms, receives it in the second half of a
/// 20 Hz tick, so its QUIC ACK rides on the next state instead of a packet
/// of its own. The ack still reaches the node before the next tick, so
/// deltas are built on the same baseline as with an immediate ack.
pub const ACK_DELAY: Duration = Duration::from_millis(25);

/// What a client asked for, once the server checked it may ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Hello {
        auth: Auth,
        last_push: u64,
    },
    Request {
        id: u32,
        target: String,
        payload: Vec<u8>,
    },
    Join {
        id: u32,
        room: String,
    },
    Leave {
        id: u32,
        room: u32,
    },
    Ack {
        room: u32,
        tick: u64,
    },
    Ping {
        nonce: u64,
    },
}

/// A protocol violation: answer with this error frame and close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub code: ErrorCode,
    pub message: String,
}

impl Violation {
    fn new(code: ErrorCode, message: impl Into<String>) -> Violation {
        Violation {
            code,
            message: message.into(),
        }
    }

    /// The connection-level error frame for this violation.
    pub fn frame(&self) -> Frame {
        Frame::Error {
            id: 0,
            code: self.code,
            message: self.message.clone(),
        }
    }
}

/// The server's view of one connection: `Hello` first and once, client frames
/// only, a version it speaks.
#[derive(Debug, Default)]
pub struct ServerConn {
    greeted: bool,
}

impl ServerConn {
    pub fn new() -> ServerConn {
        ServerConn::default()
    }

    /// Whether the client has sent its `Hello`.
    pub fn greeted(&self) -> bool {
        self.greeted
    }

    pub fn on_frame(&mut self, frame: Frame) -> Result<Inbound, Violation> {
        if !frame.is_client_frame() {
            return Err(Violation::new(
                ErrorCode::BadFrame,
                "a server frame was sent by the client",
            ));
        }
        match (self.greeted, frame) {
            (
                false,
                Frame::Hello {
                    version,
                    auth,
                    last_push,
                },
            ) => {
                if version != VERSION {
                    return Err(Violation::new(
                        ErrorCode::UnsupportedVersion,
                        format!("this node speaks protocol version {VERSION}, not {version}"),
                    ));
                }
                self.greeted = true;
                Ok(Inbound::Hello { auth, last_push })
            }
            (false, _) => Err(Violation::new(
                ErrorCode::BadFrame,
                "the first frame must be Hello",
            )),
            (true, Frame::Hello { .. }) => Err(Violation::new(
                ErrorCode::BadFrame,
                "Hello was already sent",
            )),
            (
                true,
                Frame::Request {
                    id,
                    target,
                    payload,
                },
            ) => Ok(Inbound::Request {
                id,
                target,
                payload,
            }),
            (true, Frame::Join { id, room }) => Ok(Inbound::Join { id, room }),
            (true, Frame::Leave { id, room }) => Ok(Inbound::Leave { id, room }),
            (true, Frame::Ack { room, tick }) => Ok(Inbound::Ack { room, tick }),
            (true, Frame::Ping { nonce }) => Ok(Inbound::Ping { nonce }),
            (true, _) => unreachable!("server frames are refused above"),
        }
    }
}

/// What a client learns from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    Welcome {
        player: u64,
        resumed: bool,
    },
    Reply {
        id: u32,
        payload: Vec<u8>,
    },
    Failed {
        id: u32,
        code: ErrorCode,
        message: String,
    },
    /// The connection was refused or ended by the server.
    Closed {
        code: ErrorCode,
        message: String,
    },
    Push {
        payload: Vec<u8>,
        reliable: bool,
    },
    Joined {
        id: u32,
        room: u32,
        name: String,
    },
    Left {
        room: u32,
    },
    /// The mirror of `room` advanced to `tick`.
    State {
        room: u32,
        tick: u64,
    },
    Pong {
        nonce: u64,
    },
}

#[derive(Debug, Clone)]
struct RoomMirror {
    name: String,
    mirror: Mirror,
    /// States applied since the last ack.
    unacked: u32,
    /// A deferred ack: the newest tick to acknowledge, and when to send it.
    held: Option<(u64, Instant)>,
}

/// A client's session: ids for requests, the session token for resume, the
/// last reliable push seen (duplicates after a resume are dropped), and a
/// mirror of each joined room's state.
#[derive(Debug, Default, Clone)]
pub struct ClientSession {
    next_id: u32,
    player: Option<u64>,
    token: Option<String>,
    expires_at_ms: u64,
    last_push: u64,
    rooms: HashMap<u32, RoomMirror>,
    /// Ack one applied state in this many (0 and 1: every one).
    ack_every: u32,
    /// How long a delta's ack is held back (zero: sent with the state).
    ack_delay: Duration,
}

impl ClientSession {
    pub fn new() -> ClientSession {
        ClientSession::default()
    }

    /// Acknowledge one applied state in `n` (snapshots always). Each ack is
    /// a datagram the node receives; acking fewer sends fewer, and the next
    /// delta is built on an older baseline (moving entities are in it either
    /// way, so it hardly grows).
    pub fn set_ack_every(&mut self, n: u32) {
        self.ack_every = n;
    }

    /// Hold each delta's ack back for `delay` (typically [`ACK_DELAY`])
    /// instead of returning it from [`ClientSession::on_frame_at`]; the
    /// driver sends what [`ClientSession::poll_ack`] gives once
    /// [`ClientSession::ack_deadline`] has come. A newer state replaces the
    /// held tick without moving the deadline, so acks still leave at least
    /// once per `delay`. Snapshot acks are never held: until the node hears
    /// one, every frame it sends is a snapshot.
    pub fn set_ack_delay(&mut self, delay: Duration) {
        self.ack_delay = delay;
    }

    /// When the earliest held ack is due.
    pub fn ack_deadline(&self) -> Option<Instant> {
        self.rooms
            .values()
            .filter_map(|r| r.held.map(|h| h.1))
            .min()
    }

    /// A held ack whose time has come, if any (call until `None`).
    pub fn poll_ack(&mut self, now: Instant) -> Option<Frame> {
        self.rooms.iter_mut().find_map(|(&room, r)| match r.held {
            Some((tick, due)) if due <= now => {
                r.held = None;
                Some(Frame::Ack { room, tick })
            }
            _ => None,
        })
    }

    pub fn player(&self) -> Option<u64> {
        self.player
    }

    /// The token to resume this session with, and when it expires.
    pub fn token(&self) -> Option<(&str, u64)> {
        self.token.as_deref().map(|t| (t, self.expires_at_ms))
    }

    fn next_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }

    /// The first frame of a new session.
    pub fn hello(&self, auth: Auth) -> Frame {
        Frame::Hello {
            version: VERSION,
            auth,
            last_push: self.last_push,
        }
    }

    /// The first frame of a reconnection, if there is a session to resume.
    pub fn resume_hello(&self) -> Option<Frame> {
        self.token
            .as_ref()
            .map(|t| self.hello(Auth::Resume { token: t.clone() }))
    }

    pub fn request(&mut self, target: &str, payload: Vec<u8>) -> (u32, Frame) {
        let id = self.next_id();
        (
            id,
            Frame::Request {
                id,
                target: target.to_owned(),
                payload,
            },
        )
    }

    pub fn join(&mut self, room: &str) -> (u32, Frame) {
        let id = self.next_id();
        (
            id,
            Frame::Join {
                id,
                room: room.to_owned(),
            },
        )
    }

    pub fn leave(&mut self, room: u32) -> (u32, Frame) {
        let id = self.next_id();
        (id, Frame::Leave { id, room })
    }

    /// The mirrored state of a joined room.
    pub fn room_state(&self, room: u32) -> Option<(u64, &EntityMap)> {
        self.rooms.get(&room).and_then(|r| r.mirror.current())
    }

    /// The handle of a joined room by name.
    pub fn room_handle(&self, name: &str) -> Option<u32> {
        self.rooms
            .iter()
            .find(|(_, r)| r.name == name)
            .map(|(h, _)| *h)
    }

    /// Handles a frame from the server: the event it means (if any) and a frame
    /// to send back now (an `Ack` after applied state, unless it is held).
    pub fn on_frame(&mut self, frame: Frame) -> (Option<ClientEvent>, Option<Frame>) {
        self.on_frame_at(frame, Instant::now())
    }

    /// [`ClientSession::on_frame`] at `now` (what a held ack's deadline
    /// counts from).
    pub fn on_frame_at(
        &mut self,
        frame: Frame,
        now: Instant,
    ) -> (Option<ClientEvent>, Option<Frame>) {
        match frame {
            Frame::Welcome {
                player,
                token,
                expires_at_ms,
                resumed,
                ..
            } => {
                self.player = Some(player);
                self.token = Some(token);
                self.expires_at_ms = expires_at_ms;
                if !resumed {
                    self.rooms.clear();
                    self.last_push = 0;
                }
                (Some(ClientEvent::Welcome { player, resumed }), None)
            }
            Frame::Reply { id, payload } => (Some(ClientEvent::Reply { id, payload }), None),
            Frame::Error {
                id: 0,
                code,
                message,
            } => (Some(ClientEvent::Closed { code, message }), None),
            Frame::Error { id, code, message } => {
                (Some(ClientEvent::Failed { id, code, message }), None)
            }
            Frame::Push { seq: 0, payload } => (
                Some(ClientEvent::Push {
                    payload,
                    reliable: false,
                }),
                None,
            ),
            Frame::Push { seq, payload } => {
                if seq <= self.last_push {
                    return (None, None); // replayed after a resume: already seen
                }
                self.last_push = seq;
                (
                    Some(ClientEvent::Push {
                        payload,
                        reliable: true,
                    }),
                    None,
                )
            }
            Frame::Joined { id, room, name } => {
                self.rooms.insert(
                    room,
                    RoomMirror {
                        name: name.clone(),
                        mirror: Mirror::new(),
                        unacked: 0,
                        held: None,
                    },
                );
                (Some(ClientEvent::Joined { id, room, name }), None)
            }
            Frame::Left { room } => {
                self.rooms.remove(&room);
                (Some(ClientEvent::Left { room }), None)
            }
            Frame::Snapshot {
                room,
                tick,
                entities,
            } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return (None, None);
                };
                let applied = r.mirror.on_snapshot(tick, &entities);
                // A snapshot is acked at once: until then every frame is one.
                Self::applied(room, r, applied, 1, None)
            }
            Frame::Delta {
                room,
                tick,
                base,
                changed,
                removed,
            } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return (None, None);
                };
                let applied = r.mirror.on_delta(tick, base, &changed, &removed);
                let hold = (!self.ack_delay.is_zero()).then(|| now + self.ack_delay);
                Self::applied(room, r, applied, self.ack_every.max(1), hold)
            }
            Frame::Pong { nonce } => (Some(ClientEvent::Pong { nonce }), None),
            // Client frames from the server: ignore rather than trust.
            _ => (None, None),
        }
    }

    fn applied(
        room: u32,
        r: &mut RoomMirror,
        a: Applied,
        ack_every: u32,
        hold_until: Option<Instant>,
    ) -> (Option<ClientEvent>, Option<Frame>) {
        match a {
            Applied::Now(tick) => {
                r.unacked += 1;
                let mut ack = None;
                if r.unacked >= ack_every {
                    r.unacked = 0;
                    match hold_until {
                        Some(due) => {
                            r.held = Some((tick, r.held.map_or(due, |(_, first)| first)));
                        }
                        None => {
                            // This ack covers any held one.
                            r.held = None;
                            ack = Some(Frame::Ack { room, tick });
                        }
                    }
                }
                (Some(ClientEvent::State { room, tick }), ack)
            }
            Applied::Stale | Applied::MissingBase => (None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_insists_on_hello_first_and_once() {
        let mut s = ServerConn::new();
        let err = s.on_frame(Frame::Ping { nonce: 1 }).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadFrame);
        let err = s
            .on_frame(Frame::Hello {
                version: 99,
                auth: Auth::Device { id: "d".into() },
                last_push: 0,
            })
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::UnsupportedVersion);
        assert!(
            s.on_frame(Frame::Hello {
                version: VERSION,
                auth: Auth::Device { id: "d".into() },
                last_push: 0
            })
            .is_ok()
        );
        assert_eq!(
            s.on_frame(Frame::Ping { nonce: 2 }).unwrap(),
            Inbound::Ping { nonce: 2 }
        );
        assert!(
            s.on_frame(Frame::Hello {
                version: VERSION,
                auth: Auth::Device { id: "d".into() },
                last_push: 0
            })
            .is_err()
        );
        assert!(
            s.on_frame(Frame::Pong { nonce: 1 }).is_err(),
            "server frames are refused"
        );
    }

    /// `c` joined `arena/a`, handle 5.
    fn in_room_5(c: &mut ClientSession) {
        let (id, _) = c.join("arena/a");
        c.on_frame(Frame::Joined {
            id,
            room: 5,
            name: "arena/a".into(),
        });
    }

    /// Entity 1 with state `[x]`.
    fn entity(x: u8) -> crate::Entity {
        crate::Entity {
            id: 1,
            state: vec![x],
        }
    }

    #[test]
    fn with_ack_every_two_a_snapshot_is_acked_at_once_and_then_every_second_delta() {
        let mut c = ClientSession::new();
        c.set_ack_every(2);
        in_room_5(&mut c);
        let snapshot = c.on_frame(Frame::Snapshot {
            room: 5,
            tick: 10,
            entities: vec![entity(0)],
        });
        assert_eq!(snapshot.1, Some(Frame::Ack { room: 5, tick: 10 }));
        let acks: Vec<Option<Frame>> = (11..=14)
            .map(|tick| {
                let (event, ack) = c.on_frame(Frame::Delta {
                    room: 5,
                    tick,
                    base: 10,
                    changed: vec![entity(tick as u8)],
                    removed: vec![],
                });
                assert!(matches!(event, Some(ClientEvent::State { tick: t, .. }) if t == tick));
                ack
            })
            .collect();
        assert_eq!(
            acks,
            [
                None,
                Some(Frame::Ack { room: 5, tick: 12 }),
                None,
                Some(Frame::Ack { room: 5, tick: 14 })
            ]
        );
    }

    #[test]
    fn held_acks_leave_after_the_delay_with_the_newest_tick_and_snapshots_never_wait() {
        let mut c = ClientSession::new();
        c.set_ack_delay(Duration::from_millis(25));
        in_room_5(&mut c);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let (_, ack) = c.on_frame_at(
            Frame::Snapshot {
                room: 5,
                tick: 10,
                entities: vec![entity(0)],
            },
            t0,
        );
        assert_eq!(ack, Some(Frame::Ack { room: 5, tick: 10 }));
        assert_eq!(c.ack_deadline(), None);
        let delta = |tick| Frame::Delta {
            room: 5,
            tick,
            base: 10,
            changed: vec![entity(tick as u8)],
            removed: vec![],
        };
        assert_eq!(c.on_frame_at(delta(11), ms(50)).1, None);
        assert_eq!(c.ack_deadline(), Some(ms(75)));
        assert_eq!(c.poll_ack(ms(74)), None);
        // A newer state before the deadline: its tick, the first deadline.
        assert_eq!(c.on_frame_at(delta(12), ms(60)).1, None);
        assert_eq!(c.ack_deadline(), Some(ms(75)));
        assert_eq!(c.poll_ack(ms(75)), Some(Frame::Ack { room: 5, tick: 12 }));
        assert_eq!(c.poll_ack(ms(75)), None);
        assert_eq!(c.ack_deadline(), None);
        // A snapshot while an ack is held: acked at once, nothing left held.
        c.on_frame_at(delta(13), ms(100));
        let (_, ack) = c.on_frame_at(
            Frame::Snapshot {
                room: 5,
                tick: 14,
                entities: vec![entity(1)],
            },
            ms(101),
        );
        assert_eq!(ack, Some(Frame::Ack { room: 5, tick: 14 }));
        assert_eq!(c.ack_deadline(), None);
        // Leaving the room drops its held ack.
        c.on_frame_at(
            Frame::Delta {
                room: 5,
                tick: 15,
                base: 14,
                changed: vec![entity(2)],
                removed: vec![],
            },
            ms(150),
        );
        assert_eq!(c.ack_deadline(), Some(ms(175)));
        c.on_frame(Frame::Left { room: 5 });
        assert_eq!(c.ack_deadline(), None);
        assert_eq!(c.poll_ack(ms(1_000)), None);
    }

    #[test]
    fn replayed_reliable_pushes_are_dropped_after_a_resume() {
        let mut c = ClientSession::new();
        let welcome = |resumed| Frame::Welcome {
            version: 1,
            player: 7,
            token: "t".into(),
            expires_at_ms: 0,
            resumed,
        };
        c.on_frame(welcome(false));
        for seq in 1..=3 {
            let (e, _) = c.on_frame(Frame::Push {
                seq,
                payload: vec![seq as u8],
            });
            assert!(matches!(e, Some(ClientEvent::Push { reliable: true, .. })));
        }
        assert!(matches!(
            c.resume_hello(),
            Some(Frame::Hello {
                last_push: 3,
                auth: Auth::Resume { .. },
                ..
            })
        ));
        c.on_frame(welcome(true));
        assert_eq!(
            c.on_frame(Frame::Push {
                seq: 3,
                payload: vec![3]
            })
            .0,
            None
        );
        assert!(
            c.on_frame(Frame::Push {
                seq: 4,
                payload: vec![4]
            })
            .0
            .is_some()
        );
    }
}
