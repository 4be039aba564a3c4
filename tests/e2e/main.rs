//! End-to-end tests: each starts real `anthill` nodes on loopback ports with a
//! temporary data dir and drives them through the admin API, the CLI and (for
//! players) QUIC, as a user would.

mod auth;
mod backpressure;
mod cli;
mod compat;
mod console;
mod dashboard;
mod demo;
mod deploy;
mod endpoints;
mod events;
mod full_disk;
mod hostile;
mod isolation;
mod languages;
mod lifecycle;
mod logs;
mod metrics;
mod play;
mod players;
mod restart;
mod routing;
mod swap;
mod tenants;
mod timers;
mod tls;
mod traces;
mod tutorial;
mod typescript_sdk;
mod upload;
mod web_transports;
