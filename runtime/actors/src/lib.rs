//! # anthill-actors: actors, routing, modules, events, timers, tenants
//!
//! Owns the actor side of a node ([`Runtime`]): each actor's mailbox and
//! lifecycle ([`actor`]), address → actor routing with admission control
//! ([`router`]), the module registry with deploy, swap and undeploy
//! ([`module`]), pub/sub ([`events`]), durable timers ([`timers`]), tenants
//! and their quotas ([`tenants`]), what guests print ([`logs`]) and their
//! metrics ([`metrics`]).
//!
//! Guest code runs in anthill-engine behind [`anthill_engine::ActorHost`]
//! (implemented here); state persists through anthill-store's traits. Players
//! and rooms are reached only through the [`anthill_core::Players`] and
//! [`anthill_core::RoomSink`] seams, and transports reach actors through
//! [`RuntimeDispatch`]. Must not know: sockets, the gateway, the admin API.

#![warn(missing_docs, unreachable_pub)]

pub mod actor;
mod config;
mod dispatch;
pub mod events;
mod host;
pub mod logs;
pub mod metrics;
pub mod module;
pub mod router;
mod runtime;
pub mod tenants;
pub mod timers;

pub use config::{ActorSettings, RuntimeConfig};
pub use dispatch::RuntimeDispatch;
pub use runtime::{Runtime, Started};
