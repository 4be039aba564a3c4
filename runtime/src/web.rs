//! The node's web port: WebSocket players at `/ws` (the gateway's route) and
//! the pages and scripts under `/play` (the play module's), composed here.

use anthill_gateway::Gateway;
use std::net::SocketAddr;
use std::sync::Arc;

/// The web port's routes.
pub(crate) fn router(gateway: Arc<Gateway>, quic: SocketAddr) -> axum::Router {
    anthill_gateway::websocket::router(gateway.clone()).merge(crate::play::router(gateway, quic))
}
