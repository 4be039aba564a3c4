//! The cluster's end-to-end tests: real nats-server processes (the pinned
//! binary) and `anthill` nodes on loopback. A test binary of their own, so
//! they run after the single-node tests rather than beside them: each starts
//! several nodes and NATS servers, and on 2 cores their load would skew the
//! single-node tests that bound latencies.

mod demo;
mod failover;
mod nodes;
mod players;
