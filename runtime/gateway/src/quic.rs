//! The UDP player endpoint's connections: the TLS handshake picks the
//! protocol by ALPN (`anthill/1` raw QUIC here, `h3` to [`webtransport`]), and
//! the raw QUIC transport itself (one client-opened bidirectional control
//! stream, QUIC datagrams).
//!
//! [`webtransport`]: crate::webtransport

use crate::Gateway;
use crate::connection::{self, HELLO_TIMEOUT, Input, Source};
use crate::link::{Carrier, Link, OUTBOUND_QUEUE};
use crate::outbox::{OutboxReceiver, outbox};
use anthill_protocol::wire;
use std::sync::Arc;
use std::time::Duration;

/// Completes the handshake of an accepted connection attempt and serves it
/// with the protocol its ALPN names.
///
/// The returned future is the task that holds each connection for its whole
/// life, so its size is memory per player: `incoming` (384 bytes) is turned
/// into a `Connecting` before the future is made rather than kept in it, and
/// WebTransport's much larger session future is boxed, paid only by
/// browsers (3,096 → about 1,100 bytes per raw QUIC connection).
pub(crate) fn serve_incoming(
    gw: Arc<Gateway>,
    incoming: quinn::Incoming,
) -> impl Future<Output = ()> + Send + 'static {
    let accepted = incoming.accept();
    async move {
        match accepted {
            Ok(connecting) => serve_connecting(gw, connecting).await,
            Err(e) => {
                tracing::debug!(error = %e, "player handshake failed");
                gw.metrics.refused.with_label_values(&["handshake"]).inc();
            }
        }
    }
}

async fn serve_connecting(gw: Arc<Gateway>, mut connecting: quinn::Connecting) {
    let alpn = connecting.handshake_data().await.ok().and_then(|h| {
        h.downcast::<quinn::crypto::rustls::HandshakeData>()
            .ok()
            .and_then(|h| h.protocol)
    });
    match alpn.as_deref() {
        Some(wire::ALPN) => serve_quic(gw, connecting).await,
        Some(crate::webtransport::ALPN) => {
            Box::pin(crate::webtransport::serve(gw, connecting)).await
        }
        _ => {
            // rustls refuses an unknown ALPN itself; this is a failed handshake.
            gw.metrics.refused.with_label_values(&["handshake"]).inc();
        }
    }
}

async fn serve_quic(gw: Arc<Gateway>, connecting: quinn::Connecting) {
    let conn = match connecting.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "player handshake failed");
            gw.metrics.refused.with_label_values(&["handshake"]).inc();
            return;
        }
    };
    // The endpoint allows the streams HTTP/3 needs; `anthill/1` uses one.
    conn.set_max_concurrent_uni_streams(0u32.into());
    conn.set_max_concurrent_bi_streams(1u32.into());
    let (send, recv) = match tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await {
        Ok(Ok(s)) => s,
        _ => {
            conn.close(1u32.into(), b"no control stream");
            return;
        }
    };
    let (out, out_rx) = outbox(OUTBOUND_QUEUE);
    let writer = spawn_stream_writer(send, |s| s, out_rx);
    let link = Link {
        transport: Carrier::Quic(conn.clone()),
        out,
    };
    let mut source = QuicSource {
        recv,
        conn: conn.clone(),
    };
    connection::serve(gw, link, &mut source).await;
    // Let queued frames (a final error) reach the client before closing.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    conn.close(0u32.into(), b"bye");
}

/// Writes a control stream's queued frames in order. When every sender is
/// gone the stream is finished, and the task waits for the client to read to
/// the end: the last frames (a closing error) must arrive before the
/// connection closes. `quic` reaches the QUIC stream inside `stream` (a
/// WebTransport stream wraps one).
pub(crate) fn spawn_stream_writer<S: Send + 'static>(
    mut stream: S,
    quic: fn(&mut S) -> &mut quinn::SendStream,
    mut out_rx: OutboxReceiver,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(b) = out_rx.recv().await {
            if quic(&mut stream).write_all(&b).await.is_err() {
                return;
            }
        }
        let s = quic(&mut stream);
        let _ = s.finish();
        let _ = s.stopped().await;
    })
}

struct QuicSource {
    recv: quinn::RecvStream,
    conn: quinn::Connection,
}

impl Source for QuicSource {
    async fn next(&mut self) -> Option<Input> {
        tokio::select! {
            chunk = self.recv.read_chunk(64 << 10, true) => match chunk {
                Ok(Some(c)) => Some(Input::Stream(c.bytes)),
                _ => None,
            },
            d = self.conn.read_datagram() => d.ok().map(Input::Datagram),
        }
    }
}
