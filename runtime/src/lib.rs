//! # Anthill: a game server runtime for WebAssembly components
//!
//! A node runs business modules as sandboxed Wasm components (the contract is
//! `wit/anthill.wit`), routes messages between them and to players, keeps actor
//! state in sled, and hot-swaps modules without dropping anyone.
//!
//! The crate is split by concern, each folder owning its types:
//!
//! - [`engine`]: wasmtime engine, linker, limits, precompiled-component cache;
//! - [`host`]: the host imports a module may call (`log`, `send`, `call`, ...);
//! - [`actor`]: mailbox, lifecycle (activate, passivate), snapshot/restore;
//! - [`router`]: address → actor resolution and message delivery;
//! - [`module`]: registry of modules and versions; deploy, undeploy;
//! - [`events`]: pub/sub with at-most-once and at-least-once delivery;
//! - [`timers`]: durable actor timers;
//! - [`gateway`]: players over QUIC: sessions, requests, pushes, joins;
//! - [`sync`]: room state to players as deltas against acknowledged baselines;
//! - [`store`]: sled persistence (modules, snapshots, events, timers);
//! - [`admin`]: the authenticated HTTP API, `/metrics`, `/healthz`;
//! - [`metrics`]: the Prometheus registry every part reports to;
//! - [`node`]: wires the parts together and runs them;
//! - [`cli`]: the `anthill` command line.

pub mod actor;
pub mod admin;
pub mod cli;
pub mod config;
pub mod engine;
pub mod events;
pub mod gateway;
pub mod host;
pub mod metrics;
pub mod module;
pub mod node;
pub mod router;
pub mod store;
pub mod sync;
pub mod tenants;
pub mod timers;

pub use config::Config;
pub use node::{Node, RunningNode};
