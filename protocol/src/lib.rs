//! # anthill-protocol: how players talk to an Anthill node
//!
//! Sans IO, like `quinn-proto`: no sockets, no clocks, no tasks. Bytes and
//! frames go in, frames and bytes come out, so every rule here is tested
//! deterministically and the same code runs in the node and in clients.
//!
//! - [`wire`]: the frames, their encoding (bincode 2, varint, little endian), the
//!   length-prefixed framing of the control stream, and strict decoding;
//! - [`sync`]: room state as entity maps, deltas against acknowledged
//!   baselines, the server's per-room history and the client's mirror;
//! - [`session`]: the connection state machines (handshake, requests, resume,
//!   acks) for both ends.
//!
//! Transport (documented byte by byte in `docs/protocol.md`): QUIC with ALPN
//! [`wire::ALPN`]; one bidirectional stream opened by the client carries
//! length-prefixed frames both ways; state sync, unreliable pushes and acks ride
//! QUIC datagrams, one frame per datagram.

pub mod session;
pub mod sync;
pub mod wire;

pub use wire::{Auth, DecodeError, Entity, ErrorCode, Frame};
