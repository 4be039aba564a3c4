//! Frames and their encoding.
//!
//! A frame is `bincode 2` with the *standard* configuration: little endian,
//! variable-length integers (`< 251` in one byte; then a marker byte 251/252/253
//! followed by a u16/u32/u64), enums as a varint variant index, byte strings
//! and UTF-8 strings as varint length + bytes, `Option` as a 0/1 byte.
//!
//! On the control stream each frame is preceded by its length as a u32 little
//! endian; a datagram holds exactly one frame with no prefix. Decoding is
//! strict: a frame must be exactly as long as it says, lengths may not exceed
//! the frame size limit (so a hostile length cannot make us allocate), strings
//! must be UTF-8, and unknown variants are errors — never panics.

use bincode::{Decode, Encode};

/// Protocol version spoken by this crate; sent in `Hello` and `Welcome`.
pub const VERSION: u16 = 1;

/// QUIC ALPN of the protocol.
pub const ALPN: &[u8] = b"anthill/1";

/// What ends the destination connection ID of a native client's first
/// packet (`NATIVE_CID_LEN` bytes, random before this suffix). A node sends
/// such connections to the endpoint it drives itself, the cheaper one per
/// packet; any other first packet (a browser's, a third-party client's)
/// reaches the same protocol through the node's general QUIC endpoint.
pub const NATIVE_CID_SUFFIX: [u8; 4] = *b"ant1";

/// The length of a native client's first destination connection ID.
pub const NATIVE_CID_LEN: usize = 20;

/// No frame is ever larger than this, in either direction.
pub const MAX_FRAME: usize = 1 << 20;

/// Default limit on frames a client may send (a node may configure it).
pub const DEFAULT_MAX_CLIENT_FRAME: usize = 64 << 10;

/// One entity of a room's synced state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct Entity {
    pub id: u64,
    pub state: Vec<u8>,
}

/// How a player proves who it is in `Hello`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Auth {
    /// Device login: the node derives a stable player id from the device id.
    Device { id: String },
    /// Resume a session with the token a `Welcome` gave.
    Resume { token: String },
    /// Login handled by the node's configured login module (the bytes go to it).
    Custom { payload: Vec<u8> },
}

/// Why something failed, in an `Error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum ErrorCode {
    /// 0: the peer sent a frame that does not decode or is not allowed now.
    BadFrame,
    /// 1: `Hello.version` is not supported.
    UnsupportedVersion,
    /// 2: authentication refused.
    Unauthorized,
    /// 3: the session token has expired (log in again).
    TokenExpired,
    /// 4: too many requests; slow down.
    RateLimited,
    /// 5: no such module, room or player.
    NotFound,
    /// 6: the module refused (its own words in `message`).
    Rejected,
    /// 7: no reply in time.
    Timeout,
    /// 8: the target or the node is over capacity.
    Overloaded,
    /// 9: the module failed (trap, deadline, memory) or the node did.
    Internal,
    /// 10: a frame or payload over the size limit.
    TooLarge,
    /// 11: the request names a room this player is not in.
    NotInRoom,
    /// 12: players may not do this with that module (it is closed to players,
    /// or opens only actors that already exist).
    Forbidden,
}

/// Everything that travels between a player and a node.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Frame {
    // ---- client → server ----------------------------------------------------
    /// 0: first frame of every connection. `last_push` is the highest reliable
    /// push sequence the client has seen (0 if none), for resume.
    Hello {
        version: u16,
        auth: Auth,
        last_push: u64,
    },
    /// 1: a message for `module` or `module/key`; answered by `Reply` or `Error`
    /// with the same id.
    Request {
        id: u32,
        target: String,
        payload: Vec<u8>,
    },
    /// 2: join a room (`module/key`); answered by `Joined` or `Error`.
    Join { id: u32, room: String },
    /// 3: leave a room (by the handle `Joined` gave); answered by `Left`.
    Leave { id: u32, room: u32 },
    /// 4: the client applied room state `tick` (sent as a datagram).
    Ack { room: u32, tick: u64 },
    /// 5: liveness and round-trip time.
    Ping { nonce: u64 },

    // ---- server → client ----------------------------------------------------
    /// 6: the session is open (`resumed`: an earlier one continues).
    Welcome {
        version: u16,
        player: u64,
        token: String,
        expires_at_ms: u64,
        resumed: bool,
    },
    /// 7: the module's reply to `Request id`.
    Reply { id: u32, payload: Vec<u8> },
    /// 8: request `id` failed (id 0: the connection; it is closed after).
    Error {
        id: u32,
        code: ErrorCode,
        message: String,
    },
    /// 9: a module's push. `seq` > 0: reliable, in order, replayed on resume;
    /// `seq` = 0: unreliable (a datagram, may be lost).
    Push { seq: u64, payload: Vec<u8> },
    /// 10: joined `name` (request `id`); `room` is its handle in later frames.
    Joined { id: u32, room: u32, name: String },
    /// 11: no longer in `room` (asked for, or the room let the player go).
    Left { room: u32 },
    /// 12: the whole state of `room` at `tick`.
    Snapshot {
        room: u32,
        tick: u64,
        entities: Vec<Entity>,
    },
    /// 13: the state of `room` at `tick`, as changes against the state at
    /// `base` (a tick the client acknowledged).
    Delta {
        room: u32,
        tick: u64,
        base: u64,
        changed: Vec<Entity>,
        removed: Vec<u64>,
    },
    /// 14: answer to `Ping`.
    Pong { nonce: u64 },
}

impl Frame {
    /// Whether a client may send this frame.
    pub fn is_client_frame(&self) -> bool {
        matches!(
            self,
            Frame::Hello { .. }
                | Frame::Request { .. }
                | Frame::Join { .. }
                | Frame::Leave { .. }
                | Frame::Ack { .. }
                | Frame::Ping { .. }
        )
    }
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The length prefix or the frame exceeds the limit.
    TooLarge { size: usize, limit: usize },
    /// The bytes do not decode as a frame (the reason is bincode's).
    Malformed(String),
    /// The frame decoded but did not use all its bytes.
    TrailingBytes(usize),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooLarge { size, limit } => {
                write!(f, "frame of {size} bytes exceeds the {limit}-byte limit")
            }
            DecodeError::Malformed(why) => write!(f, "malformed frame: {why}"),
            DecodeError::TrailingBytes(n) => write!(f, "malformed frame: {n} trailing bytes"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_FRAME>,
> {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Encodes a frame (without length prefix): a datagram, or the body of a
/// stream frame.
pub fn encode(frame: &Frame) -> Vec<u8> {
    bincode::encode_to_vec(frame, bincode::config::standard()).expect("frames encode into a Vec")
}

/// Encodes a frame with its u32 length prefix, for the control stream.
pub fn encode_prefixed(frame: &Frame) -> Vec<u8> {
    let body = encode(frame);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// One message of queued control-stream bytes, for transports without
/// datagrams (WebSocket): `first` and whatever `more` yields right now, while
/// the message is under `max` bytes. `first` alone is returned as is, uncopied.
pub fn coalesce<T: AsRef<[u8]> + From<Vec<u8>>>(
    first: T,
    max: usize,
    mut more: impl FnMut() -> Option<T>,
) -> T {
    if first.as_ref().len() >= max {
        return first;
    }
    let Some(second) = more() else {
        return first;
    };
    let mut m = Vec::with_capacity(max.min(first.as_ref().len() + second.as_ref().len() * 4));
    m.extend_from_slice(first.as_ref());
    m.extend_from_slice(second.as_ref());
    while m.len() < max {
        match more() {
            Some(b) => m.extend_from_slice(b.as_ref()),
            None => break,
        }
    }
    T::from(m)
}

/// Decodes exactly one frame from `bytes` (a datagram, or a stream frame body),
/// refusing anything over `limit` bytes.
pub fn decode(bytes: &[u8], limit: usize) -> Result<Frame, DecodeError> {
    let limit = limit.min(MAX_FRAME);
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let (frame, used) = bincode::decode_from_slice(bytes, config())
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - used));
    }
    Ok(frame)
}

/// Reassembles length-prefixed frames from a byte stream, however it is cut.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    limit: usize,
}

impl FrameReader {
    /// A reader refusing frames over `limit` bytes.
    pub fn new(limit: usize) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            limit: limit.min(MAX_FRAME),
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed. After an
    /// error the stream is unusable (the framing is lost): close it.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > self.limit {
            return Err(DecodeError::TooLarge {
                size: len,
                limit: self.limit,
            });
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let frame = decode(&self.buf[4..4 + len], self.limit);
        self.buf.drain(..4 + len);
        frame.map(Some)
    }

    /// Bytes buffered but not yet a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// One fuzz input: whatever the bytes are, decoding must not panic, and a frame
/// that decodes must re-encode to bytes that decode to the same frame. Shared
/// by the cargo-fuzz target (`protocol/fuzz`) and the test that replays its
/// corpus.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    if let Ok(frame) = decode(data, MAX_FRAME) {
        let again = decode(&encode(&frame), MAX_FRAME).expect("a decoded frame re-encodes");
        assert_eq!(again, frame);
    }
    let mut reader = FrameReader::new(DEFAULT_MAX_CLIENT_FRAME);
    reader.push(data);
    while let Ok(Some(_)) = reader.next_frame() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesce_joins_what_is_queued_up_to_the_cap_and_keeps_the_rest() {
        let mut queue: std::collections::VecDeque<Vec<u8>> =
            [vec![2; 3], vec![3; 3], vec![4; 3]].into();
        let m = coalesce(vec![1; 3], 8, || queue.pop_front());
        // 3 + 3 + 3 bytes: the cap stops taking once reached, not mid-frame.
        assert_eq!(m, [1, 1, 1, 2, 2, 2, 3, 3, 3]);
        assert_eq!(queue, [vec![4; 3]]);
        let alone = coalesce(vec![9], 8, || None);
        assert_eq!(alone, [9]);
    }

    #[test]
    fn a_hello_is_a_few_bytes_as_documented() {
        let f = Frame::Hello {
            version: 1,
            auth: Auth::Device { id: "ab".into() },
            last_push: 0,
        };
        // variant 0, version 1, Auth::Device (0), "ab" (len 2), last_push 0
        assert_eq!(encode(&f), vec![0, 1, 0, 2, b'a', b'b', 0]);
        assert_eq!(decode(&encode(&f), 64).unwrap(), f);
    }

    #[test]
    fn varints_use_the_documented_markers() {
        let f = Frame::Ping { nonce: 300 };
        // 300 > 250: marker 251 then u16 LE.
        assert_eq!(encode(&f), vec![5, 251, 0x2c, 0x01]);
    }

    #[test]
    fn a_hostile_length_is_refused_without_allocating() {
        // Request, id 1, target "", payload claiming 2^60 bytes.
        let mut bytes = vec![1, 1, 0, 253];
        bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(matches!(
            decode(&bytes, DEFAULT_MAX_CLIENT_FRAME),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn trailing_bytes_and_oversize_frames_are_errors() {
        let mut bytes = encode(&Frame::Ping { nonce: 1 });
        bytes.push(0);
        assert_eq!(decode(&bytes, 64), Err(DecodeError::TrailingBytes(1)));
        let big = encode(&Frame::Push {
            seq: 1,
            payload: vec![0; 100],
        });
        assert!(matches!(
            decode(&big, 50),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn the_reader_reassembles_frames_cut_anywhere() {
        let frames = vec![
            Frame::Ping { nonce: 7 },
            Frame::Request {
                id: 3,
                target: "echo".into(),
                payload: b"hi".to_vec(),
            },
            Frame::Pong { nonce: 9 },
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(encode_prefixed).collect();
        for cut in 1..bytes.len() {
            let mut r = FrameReader::new(1024);
            let mut got = Vec::new();
            for chunk in bytes.chunks(cut) {
                r.push(chunk);
                while let Some(f) = r.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "cut every {cut} bytes");
            assert_eq!(r.buffered(), 0);
        }
    }

    #[test]
    fn the_reader_refuses_an_oversize_length_prefix() {
        let mut r = FrameReader::new(1024);
        r.push(&(4096u32).to_le_bytes());
        assert!(matches!(
            r.next_frame(),
            Err(DecodeError::TooLarge { size: 4096, .. })
        ));
    }
}
