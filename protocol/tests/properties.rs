//! Property tests of the wire format and of state sync over a lossy link.

use anthill_protocol::session::{ClientEvent, ClientSession};
use anthill_protocol::sync::{EntityMap, PackedState, RoomHistory};
use anthill_protocol::wire::{self, FrameReader, MAX_FRAME};
use anthill_protocol::{Auth, Entity, ErrorCode, Frame};
use proptest::prelude::*;

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..64)
}

fn entity() -> impl Strategy<Value = Entity> {
    (any::<u64>(), bytes()).prop_map(|(id, state)| Entity { id, state })
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        ".{0,24}".prop_map(|id| Auth::Device { id }),
        ".{0,24}".prop_map(|token| Auth::Resume { token }),
        bytes().prop_map(|payload| Auth::Custom { payload }),
    ]
}

fn code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::BadFrame),
        Just(ErrorCode::UnsupportedVersion),
        Just(ErrorCode::Unauthorized),
        Just(ErrorCode::TokenExpired),
        Just(ErrorCode::RateLimited),
        Just(ErrorCode::NotFound),
        Just(ErrorCode::Rejected),
        Just(ErrorCode::Timeout),
        Just(ErrorCode::Overloaded),
        Just(ErrorCode::Internal),
        Just(ErrorCode::TooLarge),
        Just(ErrorCode::NotInRoom),
        Just(ErrorCode::Forbidden),
    ]
}

/// Every frame variant, with arbitrary contents.
fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u16>(), auth(), any::<u64>()).prop_map(|(version, auth, last_push)| Frame::Hello {
            version,
            auth,
            last_push
        }),
        (any::<u32>(), ".{0,16}", bytes()).prop_map(|(id, target, payload)| Frame::Request {
            id,
            target,
            payload
        }),
        (any::<u32>(), ".{0,16}").prop_map(|(id, room)| Frame::Join { id, room }),
        (any::<u32>(), any::<u32>()).prop_map(|(id, room)| Frame::Leave { id, room }),
        (any::<u32>(), any::<u64>()).prop_map(|(room, tick)| Frame::Ack { room, tick }),
        any::<u64>().prop_map(|nonce| Frame::Ping { nonce }),
        (
            any::<u16>(),
            any::<u64>(),
            ".{0,24}",
            any::<u64>(),
            any::<bool>()
        )
            .prop_map(
                |(version, player, token, expires_at_ms, resumed)| Frame::Welcome {
                    version,
                    player,
                    token,
                    expires_at_ms,
                    resumed
                }
            ),
        (any::<u32>(), bytes()).prop_map(|(id, payload)| Frame::Reply { id, payload }),
        (any::<u32>(), code(), ".{0,24}").prop_map(|(id, code, message)| Frame::Error {
            id,
            code,
            message
        }),
        (any::<u64>(), bytes()).prop_map(|(seq, payload)| Frame::Push { seq, payload }),
        (any::<u32>(), any::<u32>(), ".{0,16}").prop_map(|(id, room, name)| Frame::Joined {
            id,
            room,
            name
        }),
        any::<u32>().prop_map(|room| Frame::Left { room }),
        (
            any::<u32>(),
            any::<u64>(),
            proptest::collection::vec(entity(), 0..8)
        )
            .prop_map(|(room, tick, entities)| Frame::Snapshot {
                room,
                tick,
                entities
            }),
        (
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            proptest::collection::vec(entity(), 0..8),
            proptest::collection::vec(any::<u64>(), 0..8)
        )
            .prop_map(|(room, tick, base, changed, removed)| Frame::Delta {
                room,
                tick,
                base,
                changed,
                removed
            }),
        any::<u64>().prop_map(|nonce| Frame::Pong { nonce }),
    ]
}

proptest! {
    #[test]
    fn every_frame_round_trips(f in frame()) {
        let bytes = wire::encode(&f);
        prop_assert_eq!(wire::decode(&bytes, MAX_FRAME), Ok(f.clone()));
        let mut r = FrameReader::new(MAX_FRAME);
        r.push(&wire::encode_prefixed(&f));
        prop_assert_eq!(r.next_frame(), Ok(Some(f)));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = wire::decode(&data, 4096);
        let mut r = FrameReader::new(4096);
        r.push(&data);
        while let Ok(Some(_)) = r.next_frame() {}
    }

    #[test]
    fn a_truncated_frame_is_an_error_not_a_panic(f in frame(), cut in 0usize..64) {
        let bytes = wire::encode(&f);
        if cut < bytes.len() {
            prop_assert!(wire::decode(&bytes[..cut], MAX_FRAME).is_err());
        }
    }
}

/// A room that changes a little every tick, a client behind a link that drops
/// a share of datagrams (state frames and acks alike): the client's mirror ends
/// exactly equal to the room's state, and deltas cost far less than snapshots.
#[test]
fn a_lossy_link_converges_to_the_rooms_state() {
    for loss in [0.0, 0.1, 0.3, 0.6] {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut room = RoomHistory::new();
        let mut state: EntityMap = (0..200u64).map(|i| (i, vec![0u8; 8])).collect();
        let mut client = ClientSession::new();
        client.on_frame(Frame::Welcome {
            version: 1,
            player: 1,
            token: "t".into(),
            expires_at_ms: 0,
            resumed: false,
        });
        client.on_frame(Frame::Joined {
            id: 1,
            room: 0,
            name: "arena/r".into(),
        });
        let mut acked: Option<u64> = None;
        let (mut delta_bytes, mut deltas, mut snapshot_bytes, mut snapshots) =
            (0usize, 0usize, 0usize, 0usize);
        for tick in 1..=400u64 {
            // 5% of entities change; sometimes one appears or goes.
            for _ in 0..10 {
                let id = rand() % 200;
                if let Some(s) = state.get_mut(&id) {
                    s[0] = s[0].wrapping_add(1);
                }
            }
            if tick % 17 == 0 {
                state.insert(1000 + tick, vec![1; 8]);
            }
            if tick % 23 == 0 {
                let gone = *state.keys().next().unwrap();
                state.remove(&gone);
            }
            room.push(
                tick,
                PackedState::new(
                    state
                        .iter()
                        .map(|(id, s)| Entity {
                            id: *id,
                            state: s.clone(),
                        })
                        .collect(),
                ),
            );
            let Some(frame) = room.frame_for(0, acked) else {
                continue;
            };
            let size = wire::encode(&frame).len();
            match frame {
                Frame::Delta { .. } => {
                    delta_bytes += size;
                    deltas += 1;
                }
                _ => {
                    snapshot_bytes += size;
                    snapshots += 1;
                }
            }
            let lost = (rand() % 1000) as f64 / 1000.0 < loss;
            if lost {
                continue;
            }
            let (event, ack) = client.on_frame(frame);
            if let (Some(ClientEvent::State { .. }), Some(Frame::Ack { tick, .. })) = (event, ack) {
                let ack_lost = (rand() % 1000) as f64 / 1000.0 < loss;
                if !ack_lost {
                    acked = Some(acked.map_or(tick, |a: u64| a.max(tick)));
                }
            }
        }
        // Quiet period: the link recovers, no more changes.
        for _ in 0..3 {
            if let Some(frame) = room.frame_for(0, acked)
                && let (_, Some(Frame::Ack { tick, .. })) = client.on_frame(frame)
            {
                acked = Some(tick);
            }
        }
        let (tick, mirror) = client.room_state(0).expect("the client has state");
        assert_eq!(tick, 400, "loss {loss}");
        assert_eq!(
            mirror, &state,
            "loss {loss}: the mirror differs from the room"
        );
        // With most acks lost, deltas grow against older bases; below 30% loss they
        // stay a fraction of a snapshot.
        if loss <= 0.3 && deltas > 0 && snapshots > 0 {
            let avg_delta = delta_bytes / deltas;
            let avg_snapshot = snapshot_bytes / snapshots;
            assert!(
                avg_delta * 5 < avg_snapshot,
                "loss {loss}: delta {avg_delta} B vs snapshot {avg_snapshot} B"
            );
        }
    }
}
