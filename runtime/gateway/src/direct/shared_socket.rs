//! quinn's side of the shared player port: an [`AsyncUdpSocket`] that
//! receives the datagrams the direct endpoint's driver routed to quinn and
//! sends straight through the port's socket.

use super::Io;
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use std::collections::VecDeque;
use std::io::IoSliceMut;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Datagrams waiting for quinn's endpoint; more are dropped, as a full
/// socket buffer would.
const QUEUED: usize = 4096;

struct Received {
    meta: RecvMeta,
    data: Vec<u8>,
}

#[derive(Default)]
struct Queue {
    datagrams: VecDeque<Received>,
    waker: Option<Waker>,
}

/// See the module doc.
pub(crate) struct SharedSocket {
    io: Arc<Io>,
    queue: Mutex<Queue>,
    /// The kernel refused a send: quinn's connections wait [`FULL_RETRY`].
    full: AtomicBool,
}

impl std::fmt::Debug for SharedSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSocket")
            .field("io", &self.io)
            .finish()
    }
}

impl SharedSocket {
    pub(super) fn new(io: Arc<Io>) -> SharedSocket {
        SharedSocket {
            io,
            queue: Mutex::new(Queue::default()),
            full: AtomicBool::new(false),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A datagram for quinn's endpoint; it is woken by [`Self::flush`].
    pub(super) fn deliver(&self, meta: &RecvMeta, data: &[u8]) {
        let mut q = self.queue();
        if q.datagrams.len() >= QUEUED {
            return;
        }
        q.datagrams.push_back(Received {
            meta: RecvMeta {
                len: data.len(),
                stride: data.len(),
                ..*meta
            },
            data: data.to_vec(),
        });
    }

    /// Wakes quinn's endpoint once for what a pass delivered (not once per
    /// datagram).
    pub(super) fn flush(&self) {
        let mut q = self.queue();
        if q.datagrams.is_empty() {
            return;
        }
        if let Some(w) = q.waker.take() {
            drop(q);
            w.wake();
        }
    }
}

impl AsyncUdpSocket for SharedSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable {
            socket: self,
            wait: None,
        })
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> std::io::Result<()> {
        let sent = self.io.try_send(transmit);
        if sent
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock)
        {
            self.full.store(true, Ordering::Relaxed);
        }
        sent
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<std::io::Result<usize>> {
        let mut q = self.queue();
        let mut n = 0;
        while n < bufs.len().min(meta.len()) {
            let Some(d) = q.datagrams.front() else {
                break;
            };
            if d.data.len() > bufs[n].len() {
                // Larger than quinn's buffer: it could not be a valid packet.
                q.datagrams.pop_front();
                continue;
            }
            let d = q.datagrams.pop_front().expect("just peeked");
            bufs[n][..d.data.len()].copy_from_slice(&d.data);
            meta[n] = d.meta;
            n += 1;
        }
        if n > 0 {
            return Poll::Ready(Ok(n));
        }
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.io.socket.get_ref().local_addr()
    }

    fn may_fragment(&self) -> bool {
        self.io.state.may_fragment()
    }

    fn max_transmit_segments(&self) -> usize {
        self.io.state.max_gso_segments()
    }
}

/// How long a connection of quinn's waits before it tries a full socket
/// again.
const FULL_RETRY: std::time::Duration = std::time::Duration::from_millis(1);

/// Waits for the port's socket to take packets again. The socket is not
/// registered for writing (see [`Io`]'s `socket`), so a send the kernel
/// refused is retried after [`FULL_RETRY`]; until one is refused, the socket
/// counts as writable. A UDP socket's buffer fills only when the interface
/// cannot keep up, so this is rare and short.
struct Writable {
    socket: Arc<SharedSocket>,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl std::fmt::Debug for Writable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writable")
    }
}

impl UdpPoller for Writable {
    fn poll_writable(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.wait.is_none() && !this.socket.full.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        let wait = this
            .wait
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(FULL_RETRY)));
        if wait.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.wait = None;
        this.socket.full.store(false, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}
