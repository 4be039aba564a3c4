//! What the web port serves to pages: the browser arena at `/play`, the
//! TypeScript SDK's build at `/play/sdk/*.js` (compiled into the binary from
//! clients/typescript/dist, so a page needs no CDN), and
//! `/play/connect.json`, which tells a page how to reach the node over
//! WebTransport: the player port and the certificate hash to pin while the
//! node uses its own short-lived certificate. The SDK and connect.json are
//! readable from any origin (they are public; who may *connect* is the
//! gateway's origin check).

use anthill_gateway::Gateway;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;

const PAGE: &str = include_str!("play/index.html");
const APP: &str = include_str!("play/app.js");

/// The SDK's modules, as tsc built them.
const SDK: &[(&str, &str)] = &[
    (
        "index.js",
        include_str!("../../clients/typescript/dist/index.js"),
    ),
    (
        "client.js",
        include_str!("../../clients/typescript/dist/client.js"),
    ),
    (
        "link.js",
        include_str!("../../clients/typescript/dist/link.js"),
    ),
    (
        "mirror.js",
        include_str!("../../clients/typescript/dist/mirror.js"),
    ),
    (
        "wire.js",
        include_str!("../../clients/typescript/dist/wire.js"),
    ),
];

/// Everything a page needs to connect.
#[derive(Serialize)]
struct Connect {
    /// The UDP player port (WebTransport at `https://HOST:PORT/`).
    quic_port: u16,
    /// SHA-256 (hex) of the certificate to pin with
    /// `serverCertificateHashes`, when it is the node's own.
    certificate_sha256: Option<String>,
    certificate_expires_at_ms: Option<u64>,
    /// The WebSocket path on the web port.
    websocket_path: &'static str,
}

#[derive(Clone)]
struct Play {
    gateway: Arc<Gateway>,
    quic: SocketAddr,
}

/// The `/play` routes.
pub(crate) fn router(gateway: Arc<Gateway>, quic: SocketAddr) -> axum::Router {
    axum::Router::new()
        .route("/play", get(|| async { Html(PAGE) }))
        .route("/play/", get(|| async { Html(PAGE) }))
        .route("/play/app.js", get(|| async { script(APP) }))
        .route("/play/sdk/{file}", get(sdk))
        .route("/play/connect.json", get(connect))
        .with_state(Play { gateway, quic })
}

fn script(body: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn sdk(Path(file): Path<String>) -> Response {
    match SDK.iter().find(|(name, _)| *name == file) {
        Some((_, body)) => script(body),
        None => (
            StatusCode::NOT_FOUND,
            format!(
                "no SDK module {file}: the SDK is {}",
                SDK.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        )
            .into_response(),
    }
}

async fn connect(State(play): State<Play>) -> impl IntoResponse {
    let cert = play.gateway.certificate();
    let own = cert.as_ref().is_some_and(|c| c.self_signed);
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        Json(Connect {
            quic_port: play.quic.port(),
            certificate_sha256: cert.as_ref().filter(|_| own).map(|c| c.sha256.clone()),
            certificate_expires_at_ms: cert.and_then(|c| c.expires_at_ms),
            websocket_path: anthill_gateway::websocket::PATH,
        }),
    )
}
