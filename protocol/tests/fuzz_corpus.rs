//! Replays the fuzz corpus (protocol/fuzz/corpus/decode) through the fuzz
//! target's body, so past findings stay fixed without nightly or libFuzzer.

use anthill_protocol::wire::{self, Frame};
use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode")
}

#[test]
fn the_fuzz_corpus_replays_without_panics() {
    let mut n = 0;
    for entry in std::fs::read_dir(corpus()).expect("the corpus directory exists") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| wire::fuzz_one(&data));
        assert!(outcome.is_ok(), "{} panics the decoder", path.display());
        n += 1;
    }
    assert!(n >= 10, "only {n} corpus inputs");
}

/// Regenerates the seed inputs: `cargo test -p anthill-protocol --test
/// fuzz_corpus -- --ignored`.
#[test]
#[ignore]
fn write_seed_corpus() {
    use anthill_protocol::{Auth, Entity, ErrorCode};
    let frames = [
        Frame::Hello {
            version: 1,
            auth: Auth::Device {
                id: "device-1".into(),
            },
            last_push: 0,
        },
        Frame::Hello {
            version: 1,
            auth: Auth::Resume {
                token: "abc.def".into(),
            },
            last_push: 42,
        },
        Frame::Request {
            id: 1,
            target: "echo".into(),
            payload: b"hello".to_vec(),
        },
        Frame::Join {
            id: 2,
            room: "arena/r1".into(),
        },
        Frame::Leave { id: 3, room: 1 },
        Frame::Ack { room: 1, tick: 300 },
        Frame::Ping { nonce: u64::MAX },
        Frame::Error {
            id: 0,
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
        },
        Frame::Snapshot {
            room: 1,
            tick: 7,
            entities: vec![Entity {
                id: 1,
                state: vec![1, 2, 3, 4],
            }],
        },
        Frame::Delta {
            room: 1,
            tick: 8,
            base: 7,
            changed: vec![Entity {
                id: 2,
                state: vec![9],
            }],
            removed: vec![1],
        },
    ];
    for (i, f) in frames.iter().enumerate() {
        std::fs::write(corpus().join(format!("seed-{i:02}")), wire::encode(f)).unwrap();
        std::fs::write(
            corpus().join(format!("seed-{i:02}-prefixed")),
            wire::encode_prefixed(f),
        )
        .unwrap();
    }
    // Hostile shapes: a huge length claim, a bad variant, a lying prefix.
    let mut huge = vec![1, 1, 0, 253];
    huge.extend_from_slice(&(1u64 << 62).to_le_bytes());
    std::fs::write(corpus().join("hostile-huge-length"), huge).unwrap();
    std::fs::write(corpus().join("hostile-bad-variant"), [200u8, 0, 0]).unwrap();
    std::fs::write(corpus().join("hostile-prefix"), [0xff, 0xff, 0xff, 0x7f, 0]).unwrap();
    std::fs::write(corpus().join("hostile-bad-utf8"), [2, 1, 2, 0xc3, 0x28]).unwrap();
}
