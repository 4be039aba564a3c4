//! The node's side of one player connection, whatever carries it: raw QUIC
//! (`anthill/1`), WebTransport, or WebSocket. Sessions and room sync write
//! through a [`Link`] and never see the transport: the control-stream bytes go
//! through one bounded queue (written by the transport's own writer task), and
//! unreliable frames go as datagrams where the transport has them.

use crate::outbox::{OutboxSender, Refused};
use anthill_protocol::{Frame, wire};
use bytes::Bytes;
use tokio::sync::watch;

/// Frames waiting to be written to one connection's control stream. A player
/// that lets it fill is too slow to serve reliably: its connection is closed
/// (the session stays, and can be resumed).
pub(crate) const OUTBOUND_QUEUE: usize = 1024;

/// What carries a connection.
#[derive(Clone)]
pub(crate) enum Carrier {
    /// QUIC with ALPN `anthill/1` on quinn's endpoint (clients that did not
    /// tag their first packet).
    Quic(quinn::Connection),
    /// QUIC with ALPN `anthill/1` on the endpoint the gateway drives itself
    /// (native clients).
    Direct(crate::direct::DirectLink),
    /// A WebTransport session (HTTP/3, ALPN `h3`) on the same endpoint.
    WebTransport(wtransport::Connection),
    /// A WebSocket on the web port: no datagrams; closing is a signal to its
    /// writer task, which owns the socket.
    WebSocket(watch::Sender<Option<(u16, &'static str)>>),
}

impl Carrier {
    /// See [`Link::datagram`].
    pub(crate) fn datagram(&self, frame: &Bytes) -> bool {
        match self {
            Carrier::Quic(c) => match c.max_datagram_size() {
                Some(max) if frame.len() <= max => c.send_datagram(frame.clone()).is_ok(),
                _ => false,
            },
            Carrier::Direct(c) => c.datagram(frame),
            Carrier::WebTransport(c) => match c.max_datagram_size() {
                Some(max) if frame.len() <= max.min(BROWSER_DATAGRAM) => {
                    c.send_datagram(frame.clone()).is_ok()
                }
                _ => false,
            },
            Carrier::WebSocket(_) => false,
        }
    }

    /// The label in metrics and logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Carrier::Quic(_) | Carrier::Direct(_) => "quic",
            Carrier::WebTransport(_) => "webtransport",
            Carrier::WebSocket(_) => "websocket",
        }
    }
}

/// One connection of a session.
#[derive(Clone)]
pub(crate) struct Link {
    pub transport: Carrier,
    pub out: OutboxSender,
}

impl Link {
    /// Closes the connection with an application code and reason.
    pub(crate) fn close(&self, code: u32, reason: &'static str) {
        match &self.transport {
            Carrier::Quic(c) => c.close(code.into(), reason.as_bytes()),
            Carrier::Direct(c) => c.close(code, reason),
            Carrier::WebTransport(c) => c.close(code.into(), reason.as_bytes()),
            // 4000–4999 is the application range of WebSocket close codes.
            Carrier::WebSocket(w) => {
                let _ = w.send(Some((4000 + code.min(999) as u16, reason)));
            }
        }
    }

    /// Queues a frame on the control stream; false (and the connection closed)
    /// if the player is not keeping up.
    pub(crate) fn send(&self, frame: &Frame) -> bool {
        self.send_bytes(Bytes::from(wire::encode_prefixed(frame)))
    }

    pub(crate) fn send_bytes(&self, prefixed: Bytes) -> bool {
        match self.out.try_send(prefixed) {
            Ok(()) => true,
            Err(Refused::Full) => {
                self.close(2, "too slow: control stream backlog full");
                false
            }
            Err(Refused::Closed) => false,
        }
    }

    /// Sends an unprefixed frame as a datagram if the transport has them and
    /// it fits the path; never waits.
    pub(crate) fn datagram(&self, frame: &Bytes) -> bool {
        self.transport.datagram(frame)
    }

    /// Whether the transport has datagrams at all (WebSocket has not: what
    /// would be a datagram rides the stream, dropped rather than queued when
    /// the player is behind).
    pub(crate) fn has_datagrams(&self) -> bool {
        !matches!(self.transport, Carrier::WebSocket(_))
    }

    /// Queues an unprefixed frame on the control stream without closing a
    /// slow connection (a lost state frame is repaired by the next); false if
    /// it was dropped.
    pub(crate) fn stream_lossy(&self, frame: &Bytes) -> bool {
        let mut prefixed = Vec::with_capacity(frame.len() + 4);
        prefixed.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        prefixed.extend_from_slice(frame);
        self.out.try_send(Bytes::from(prefixed)).is_ok()
    }
}

/// The largest datagram sent to a browser: Chromium drops larger ones
/// silently even when the QUIC path would carry them (measured ~1,421 bytes
/// arriving; 1,200 leaves room on real paths).
const BROWSER_DATAGRAM: usize = 1_200;
