//! The node's web port: WebSocket players at `/ws` (the gateway's route) and
//! the pages and scripts under `/play` (the play module's), composed here and
//! served as plain HTTP, or over TLS (`https://`, `wss://`) when the operator
//! gave the gateway a certificate.

use anthill_gateway::Gateway;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The web port's routes.
pub(crate) fn router(gateway: Arc<Gateway>, quic: SocketAddr) -> axum::Router {
    anthill_gateway::websocket::router(gateway.clone()).merge(crate::play::router(gateway, quic))
}

/// A TLS handshake that takes longer is dropped (a slow or idle client).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stopped` turns true: over TLS with
/// `tls`, else plain HTTP.
pub(crate) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    mut stopped: watch::Receiver<bool>,
) {
    let Some(tls) = tls else {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "web port stopped");
        }
        return;
    };
    // axum::serve takes only plain listeners: accept, handshake, and hand
    // each TLS stream to hyper (with upgrades, for WebSocket).
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "web port: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = async { let _ = stopped.wait_for(|s| *s).await; } => return,
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "web port: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = TowerToHyperService::new(app);
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}
