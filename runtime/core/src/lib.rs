//! # anthill-core: the runtime's vocabulary and its seams
//!
//! Owns the types every other part names: [`Address`] and [`CallChain`],
//! [`CallError`] (one error from the router through the actor to the caller),
//! [`Sender`] and [`Channel`], a room's [`SyncedState`], module kinds, settings and registry records
//! ([`module`]), trace context carried in messages ([`trace`]), and the
//! traits the parts meet through ([`RoomSink`], [`Players`], [`Dispatch`]).
//!
//! Must not know: wasmtime, sled, sockets, or any other Anthill crate. Time
//! is passed in ([`now_ms`] is the one clock read, for callers to use).

#![warn(missing_docs, unreachable_pub)]

mod address;
pub mod cluster;
mod error;
mod limits;
pub mod metrics;
pub mod module;
mod seams;
mod sender;
mod synced_state;
mod time;
pub mod trace;

pub use address::{Address, CallChain};
pub use error::CallError;
pub use limits::Limits;
pub use seams::{
    Dispatch, EventBus, HandedOver, KeptPushes, Placement, Players, RoomSink, SessionDirectory,
    SessionHost, SessionRooms,
};
pub use sender::{Channel, Sender};
pub use synced_state::{Entity, SyncedState, SyncedStateError};
pub use time::now_ms;

/// The tenant every node has, without quotas; modules from before tenants
/// belong to it.
pub const DEFAULT_TENANT: &str = "default";
