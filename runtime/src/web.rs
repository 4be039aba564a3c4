//! The node's web port: WebSocket players at `/ws` (the gateway's route), and
//! `/play/connect.json`, which tells a page how to reach the node over
//! WebTransport: the player port and the certificate hash to pin while the
//! node uses its own short-lived certificate. (The browser arena page and the
//! TypeScript SDK that will live under `/play` are not written yet.)

use anthill_gateway::Gateway;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;

/// Everything a page needs to connect.
#[derive(Serialize)]
struct Connect {
    /// The UDP player port (WebTransport at `https://HOST:PORT/`).
    quic_port: u16,
    /// SHA-256 (hex) of the certificate to pin with
    /// `serverCertificateHashes`, when it is the node's own.
    certificate_sha256: Option<String>,
    certificate_expires_at_ms: Option<u64>,
    /// The WebSocket path on this port.
    websocket_path: &'static str,
}

#[derive(Clone)]
struct Web {
    gateway: Arc<Gateway>,
    quic: SocketAddr,
}

/// The web port's routes.
pub(crate) fn router(gateway: Arc<Gateway>, quic: SocketAddr) -> axum::Router {
    let play = axum::Router::new()
        .route("/play/connect.json", get(connect))
        .with_state(Web {
            gateway: gateway.clone(),
            quic,
        });
    anthill_gateway::websocket::router(gateway).merge(play)
}

async fn connect(State(web): State<Web>) -> impl IntoResponse {
    let cert = web.gateway.certificate();
    let own = cert.as_ref().is_some_and(|c| c.self_signed);
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(Connect {
            quic_port: web.quic.port(),
            certificate_sha256: cert.as_ref().filter(|_| own).map(|c| c.sha256.clone()),
            certificate_expires_at_ms: cert.and_then(|c| c.expires_at_ms),
            websocket_path: anthill_gateway::websocket::PATH,
        }),
    )
}
