//! WebSocket at `/ws` on the node's web port, for clients without
//! WebTransport. Each binary message carries one or more control-stream
//! frames (`[u32 length][frame]`, exactly the stream encoding): the writer
//! puts everything queued at the moment it writes into one message, so a
//! tick's state frame and pushes share a message. What would be a datagram
//! rides the same queue and is dropped rather than queued when the player is
//! behind. permessage-deflate is offered (yawc, no context takeover, deflate
//! state pooled across connections so an idle socket stays small).

use crate::Gateway;
use crate::connection::{self, Input, Source};
use crate::link::{Carrier, Link, OUTBOUND_QUEUE};
use crate::outbox::{OutboxReceiver, outbox};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use yawc::frame::{Frame, OpCode};

/// The path of the WebSocket endpoint on the web port.
pub const PATH: &str = "/ws";

/// A message is at most this large when batching (a single larger frame is
/// still sent whole).
const BATCH_BYTES: usize = 64 << 10;

type Closing = watch::Receiver<Option<(u16, &'static str)>>;

/// The WebSocket route, for the node to mount on its web port.
pub fn router(gw: Arc<Gateway>) -> axum::Router {
    axum::Router::new()
        .route(PATH, axum::routing::get(upgrade))
        .with_state(gw)
}

fn options(gw: &Gateway) -> yawc::Options {
    let limit = gw.settings.max_frame_bytes + 4;
    let base = yawc::Options::default()
        .with_limits(limit.max(1 << 16), 4 * limit.max(1 << 16))
        .with_no_delay()
        .with_read_buffer_capacity(2048)
        .with_write_buffer_capacity(2048);
    if !gw.settings.websocket_compression {
        return base;
    }
    base.with_low_latency_compression()
        .server_no_context_takeover()
        .client_no_context_takeover()
        .with_deflate_pool(gw.deflate_pool.clone())
        .with_compression_threshold(128)
}

async fn upgrade(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    ws: yawc::IncomingUpgrade,
) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if let Err(refusal) = gw.origins().check(origin) {
        tracing::info!(?origin, "WebSocket refused: {refusal}");
        gw.metrics.refused.with_label_values(&["origin"]).inc();
        return (StatusCode::FORBIDDEN, refusal.to_string()).into_response();
    }
    if gw.metrics.connections.get() as usize >= gw.settings.max_connections {
        gw.metrics
            .refused
            .with_label_values(&["max-connections"])
            .inc();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "this node holds its maximum of player connections; try another node or later",
        )
            .into_response();
    }
    let (response, fut) = match ws.upgrade(options(&gw)) {
        Ok(r) => r,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("WebSocket upgrade: {e}")).into_response();
        }
    };
    tokio::spawn(async move {
        match fut.await {
            Ok(ws) => serve(gw, ws).await,
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
    response.map(axum::body::Body::new)
}

async fn serve(gw: Arc<Gateway>, ws: yawc::HttpWebSocket) {
    let (mut sink, stream) = ws.split();
    let (closing_tx, closing) = watch::channel(None);
    let (out, mut out_rx) = outbox(OUTBOUND_QUEUE);
    let mut close_signal = closing.clone();
    let peer_closed = Arc::new(AtomicBool::new(false));
    let peer_closed_seen = peer_closed.clone();
    let writer = tokio::spawn(async move {
        // Once every link is gone the signal can no longer come; the queue
        // still drains (a final error frame) before the close.
        let mut watching = true;
        let code = loop {
            tokio::select! {
                b = out_rx.recv() => {
                    let Some(first) = b else { break None };
                    let message = batch(first, &mut out_rx);
                    if sink.send(Frame::binary(message)).await.is_err() {
                        return;
                    }
                }
                changed = close_signal.changed(), if watching => {
                    if changed.is_err() { watching = false; continue; }
                    if let Some(c) = *close_signal.borrow() { break Some(c); }
                }
            }
        };
        // Exactly one Close leaves, whoever began: browsers fail a connection
        // that receives two ("Close received after close"). yawc queues the
        // answer to a player's Close and sends it with the next frame, and its
        // `close()` sends a Close of its own; so after a player's Close only
        // `close()`, and when we begin, ours with its code and then a flush.
        if peer_closed_seen.load(Ordering::Acquire) {
            let _ = sink.close().await;
        } else {
            let (code, reason) = code.unwrap_or((1000, "bye"));
            let _ = sink
                .send(Frame::close(yawc::close::CloseCode::from(code), reason))
                .await;
            let _ = sink.flush().await;
        }
    });
    let link = Link {
        transport: Carrier::WebSocket(closing_tx),
        out,
    };
    let mut source = WebSocketSource {
        stream,
        closing,
        idle: Duration::from_millis(gw.settings.idle_timeout_ms),
        gw: gw.clone(),
        peer_closed,
    };
    connection::serve(gw, link, &mut source).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

/// `first` and whatever else is queued now, up to [`BATCH_BYTES`].
fn batch(first: Bytes, queue: &mut OutboxReceiver) -> Bytes {
    anthill_protocol::wire::coalesce(first, BATCH_BYTES, || queue.try_recv())
}

struct WebSocketSource {
    stream: futures::stream::SplitStream<yawc::HttpWebSocket>,
    closing: Closing,
    idle: Duration,
    gw: Arc<Gateway>,
    /// Set when the player sent Close: the writer then must not send ours.
    peer_closed: Arc<AtomicBool>,
}

impl Source for WebSocketSource {
    async fn next(&mut self) -> Option<Input> {
        loop {
            tokio::select! {
                frame = tokio::time::timeout(self.idle, self.stream.next()) => {
                    let frame = match frame {
                        Ok(Some(f)) => f,
                        // Silent past the idle timeout, or gone.
                        _ => return None,
                    };
                    match frame.opcode() {
                        OpCode::Binary => return Some(Input::Stream(frame.into_payload())),
                        OpCode::Text => {
                            self.gw.metrics.bad_input.with_label_values(&["websocket-text"]).inc();
                            return None;
                        }
                        OpCode::Close => {
                            self.peer_closed.store(true, Ordering::Release);
                            return None;
                        }
                        _ => continue,
                    }
                }
                _ = self.closing.changed() => return None,
            }
        }
    }
}
