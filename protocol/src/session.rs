//! Connection state machines. The node drives a [`ServerConn`] per connection
//! and a client drives a [`ClientSession`]; both only turn frames into events
//! and events into frames, so their rules are tested without sockets.

use crate::sync::{Applied, EntityMap, Mirror};
use crate::wire::{Auth, ErrorCode, Frame, VERSION};
use std::collections::HashMap;

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
}

impl ClientSession {
    pub fn new() -> ClientSession {
        ClientSession::default()
    }

    /// Acknowledge one applied state in `n` (snapshots always). Each ack is
    /// a datagram the node receives and its QUIC stack acknowledges with a
    /// packet of its own; acking every second state halves both, and the
    /// next delta is built on a baseline a tick older (moving entities are in
    /// it either way, so it hardly grows).
    pub fn set_ack_every(&mut self, n: u32) {
        self.ack_every = n;
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
    /// to send back (an `Ack` after applied state).
    pub fn on_frame(&mut self, frame: Frame) -> (Option<ClientEvent>, Option<Frame>) {
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
                Self::applied(room, r, applied, 1)
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
                Self::applied(room, r, applied, self.ack_every.max(1))
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
    ) -> (Option<ClientEvent>, Option<Frame>) {
        match a {
            Applied::Now(tick) => {
                r.unacked += 1;
                let ack = (r.unacked >= ack_every).then(|| {
                    r.unacked = 0;
                    Frame::Ack { room, tick }
                });
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

    #[test]
    fn with_ack_every_two_a_snapshot_is_acked_at_once_and_then_every_second_delta() {
        let mut c = ClientSession::new();
        c.set_ack_every(2);
        let (id, _) = c.join("arena/a");
        c.on_frame(Frame::Joined {
            id,
            room: 5,
            name: "arena/a".into(),
        });
        let entity = |x: u8| crate::Entity {
            id: 1,
            state: vec![x],
        };
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
