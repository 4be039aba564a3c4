//! WebTransport (HTTP/3, ALPN `h3`) on the player endpoint: a browser's
//! session carries the same frames as `anthill/1`. The client opens one
//! bidirectional stream, the control stream; room state, unreliable pushes
//! and acks are WebTransport datagrams (capped at what browsers accept, larger
//! frames take the stream). The page's Origin is checked before the session
//! is accepted.

use crate::Gateway;
use crate::connection::{self, HELLO_TIMEOUT, Input, Source};
use crate::link::{Carrier, Link, OUTBOUND_QUEUE};
use std::sync::Arc;
use std::time::Duration;

/// The ALPN of HTTP/3, which WebTransport rides.
pub(crate) const ALPN: &[u8] = b"h3";

pub(crate) async fn serve(gw: Arc<Gateway>, connecting: quinn::Connecting) {
    let request =
        match wtransport::endpoint::IncomingSessionFuture::with_quic_connecting(connecting).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "WebTransport session setup failed");
                gw.metrics.refused.with_label_values(&["handshake"]).inc();
                return;
            }
        };
    if let Err(refusal) = gw.origins().check(request.origin()) {
        tracing::info!(origin = ?request.origin(), "WebTransport session refused: {refusal}");
        gw.metrics.refused.with_label_values(&["origin"]).inc();
        request.forbidden().await;
        return;
    }
    let conn = match request.accept().await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "WebTransport session accept failed");
            return;
        }
    };
    let (send, recv) = match tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await {
        Ok(Ok(s)) => s,
        _ => {
            conn.close(1u32.into(), b"no control stream");
            return;
        }
    };
    let (out, out_rx) = crate::outbox::outbox(OUTBOUND_QUEUE);
    let writer = crate::quic::spawn_stream_writer(send, |s| s.quic_stream_mut(), out_rx);
    let link = Link {
        transport: Carrier::WebTransport(conn.clone()),
        out,
    };
    let mut source = WebTransportSource {
        recv,
        conn: conn.clone(),
    };
    connection::serve(gw, link, &mut source).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    conn.close(0u32.into(), b"bye");
}

struct WebTransportSource {
    recv: wtransport::RecvStream,
    conn: wtransport::Connection,
}

impl Source for WebTransportSource {
    async fn next(&mut self) -> Option<Input> {
        tokio::select! {
            chunk = self.recv.quic_stream_mut().read_chunk(64 << 10, true) => match chunk {
                Ok(Some(c)) => Some(Input::Stream(c.bytes)),
                _ => None,
            },
            d = self.conn.receive_datagram() => d.ok().map(|d| Input::Datagram(d.payload())),
        }
    }
}
