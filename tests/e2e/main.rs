//! End-to-end tests: each starts real `anthill` nodes on loopback ports with a
//! temporary data dir and drives them through the admin API, the CLI and (for
//! players) QUIC, as a user would.

mod auth;
mod cli;
mod deploy;
mod hostile;
mod metrics;
mod restart;
mod upload;
