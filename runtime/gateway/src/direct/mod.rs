//! The player port's own QUIC endpoint: native clients' connections driven
//! through `quinn-proto` by one task (sans-IO; a task of the node's runtime,
//! or with `gateway.quic_thread` on a thread of its own, `anthill-quic`),
//! instead of quinn's task per connection. The task owns the UDP socket; each pass reads every datagram waiting, handles the connections'
//! timers, and drives every connection something happened to (a packet, a
//! state datagram a room queued, a frame for the control stream), then sends
//! what they have in one go. A room's tick thus costs one wake-up of this
//! task, not one per member. Connections' own tasks run on the node's
//! runtime ([`Direct::new`]'s `tasks`).
//!
//! Datagrams for quinn's endpoint (browsers' WebTransport, clients that do
//! not tag their first packet, see [`route`]) are handed to it through
//! [`shared_socket`]: both endpoints share the port.

mod batch;
mod inbox;
pub(crate) mod route;
mod serve;
pub(crate) mod shared_socket;
mod slots;
mod wheel;

use crate::Gateway;
use crate::connection::Datagrams;
use bytes::{Bytes, BytesMut};
use inbox::Inbox;
use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use quinn_proto::{
    ConnectionHandle, DatagramEvent, Dir, EndpointConfig, Event, ServerConfig, StreamEvent,
    StreamId, VarInt,
};
use route::{CidKey, Route};
use std::io::IoSliceMut;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::io::Interest;
use tokio::sync::Notify;

/// Datagrams read per `recvmmsg`.
const RECV_BATCH: usize = quinn::udp::BATCH_SIZE;
/// Bytes per receive buffer (a GRO batch of one sender's datagrams fits).
const RECV_CHUNK: usize = 64 << 10;
/// Receive batches handled under one lock before connections are driven.
const BATCHES_PER_PASS: usize = 4;
/// State datagrams queued for the driver at most (a few seconds of 1,000
/// players at 20 Hz).
const MAX_QUEUED: usize = 1 << 16;
/// How often a connection's largest datagram is read again.
const MAX_DATAGRAM_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// The port's socket, shared by both endpoints.
#[derive(Debug)]
pub(crate) struct Io {
    /// Registered for reading only ([`crate::udp`]): sends never wait on
    /// readiness here (see [`Io::try_send`]).
    socket: crate::udp::ReadingSocket,
    state: UdpSocketState,
    /// Bound to one IPv4 address on Linux: plain packets go out in one
    /// `sendmmsg` a pass ([`batch`]), with the source the bind gives them.
    batch: bool,
    /// Bound to a wildcard address: replies must say their source address.
    wildcard: bool,
}

impl Io {
    /// Sends now or not at all: a full kernel buffer drops the packet, which
    /// QUIC's loss recovery resends.
    fn try_send(&self, t: &Transmit<'_>) -> std::io::Result<()> {
        self.state.send(self.socket.get_ref().into(), t)
    }
}

/// One connection of the endpoint.
struct Conn {
    quic: quinn_proto::Connection,
    /// Unique for the node's run: a handle is reused once its connection is
    /// drained, and a stale [`DirectLink`] must not reach the next one.
    id: u64,
    inbox: Arc<Inbox>,
    control: Option<StreamId>,
    /// The control stream may have bytes to read.
    readable: bool,
    /// The earliest of this connection's entries in the timer heap. A
    /// deadline that moves later keeps it (the entry fires early and is
    /// re-armed); only an earlier one adds an entry, so the heap does not
    /// grow with every packet.
    armed: Option<Instant>,
    /// In the list of connections to drive this pass.
    queued: bool,
    /// Its task has been started (the handshake completed).
    served: bool,
    /// Once the connection has a session, its datagrams are handled by the
    /// driver (after the pass, outside the lock) instead of its task.
    datagrams: Option<Arc<Datagrams>>,
    /// The largest datagram the path takes, as its [`DirectLink`]s read it.
    max_datagram: Arc<AtomicUsize>,
    /// When `max_datagram` was last read from the connection (the path's
    /// MTU grows as quinn-proto discovers it).
    max_datagram_at: Instant,
}

struct Inner {
    endpoint: quinn_proto::Endpoint,
    server_config: Arc<ServerConfig>,
    conns: slots::Slots<Conn>,
    dirty: Vec<ConnectionHandle>,
    timers: wheel::Wheel<ConnectionHandle>,
    /// Timer entries due this pass (kept for its allocation).
    due: Vec<(Instant, ConnectionHandle)>,
    /// The node is stopping: no new connections; the driver ends once the
    /// open ones have sent their close.
    stopping: bool,
}

impl Inner {
    fn touch(&mut self, ch: ConnectionHandle) {
        if let Some(c) = self.conns.get_mut(ch)
            && !c.queued
        {
            c.queued = true;
            self.dirty.push(ch);
        }
    }

    /// The connection `link` names, if it is still that one.
    fn conn(&mut self, link: &DirectLink) -> Option<&mut Conn> {
        self.conns.get_mut(link.ch).filter(|c| c.id == link.id)
    }
}

/// Packets built this pass, sent once the lock is released; and the
/// datagrams received for connections whose handler runs then too.
#[derive(Default)]
struct Outgoing {
    buf: Vec<u8>,
    packets: Vec<(quinn_proto::Transmit, usize)>,
    received: Vec<(Arc<Datagrams>, Bytes)>,
    /// Where quinn-proto builds one transmit (it must start empty).
    scratch: Vec<u8>,
}

impl Outgoing {
    /// Keeps the transmit just built in `scratch`.
    fn keep(&mut self, t: quinn_proto::Transmit) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&self.scratch[..t.size]);
        self.packets.push((t, at));
    }

    fn send(&mut self, io: &Io) {
        let mut plain = Vec::new();
        for (t, at) in self.packets.drain(..) {
            if let (true, None, None, std::net::SocketAddr::V4(to)) =
                (io.batch, t.segment_size, t.src_ip, t.destination)
            {
                // Unmarked, or marked as the socket marks every packet.
                if t.ecn.is_none_or(|e| e as u32 == batch::DEFAULT_TOS) {
                    plain.push(batch::Plain {
                        to,
                        data: &self.buf[at..at + t.size],
                    });
                    continue;
                }
            }
            let transmit = Transmit {
                destination: t.destination,
                ecn: t
                    .ecn
                    .and_then(|e| quinn::udp::EcnCodepoint::from_bits(e as u8)),
                contents: &self.buf[at..at + t.size],
                segment_size: t.segment_size,
                src_ip: t.src_ip,
            };
            if let Err(e) = io.try_send(&transmit) {
                tracing::trace!(error = %e, "player packet not sent");
            }
        }
        #[cfg(target_os = "linux")]
        if !plain.is_empty() {
            use std::os::fd::AsFd;
            batch::send(io.socket.as_fd(), &plain);
        }
        drop(plain);
        self.buf.clear();
    }
}

/// The endpoint (see the module doc).
pub(crate) struct Direct {
    inner: Mutex<Inner>,
    /// Wakes the driver: a connection has something to send.
    wake: Notify,
    /// State datagrams rooms queued since the driver's last pass. Rooms
    /// tick on the node's workers; a lock of their own, held for a push,
    /// keeps a tick from waiting on a pass of the driver (which holds
    /// `inner` for the whole pass, and may be preempted holding it).
    queued: Mutex<Vec<Queued>>,
    io: Arc<Io>,
    key: CidKey,
    /// Native clients are served here (off: everything goes to quinn's).
    enabled: bool,
    next_id: AtomicU64,
    for_quinn: Arc<shared_socket::SharedSocket>,
    /// `anthill_player_direct_connections`.
    open: prometheus::IntGauge,
    /// The node's runtime, where connections' tasks run (the driver may
    /// run on a thread of its own).
    tasks: tokio::runtime::Handle,
}

impl Direct {
    /// Takes the bound `socket`; [`Direct::quinn_socket`] is quinn's side.
    pub(crate) fn new(
        socket: std::net::UdpSocket,
        server_config: ServerConfig,
        enabled: bool,
        open: prometheus::IntGauge,
        tasks: tokio::runtime::Handle,
    ) -> std::io::Result<Arc<Direct>> {
        let local = socket.local_addr()?;
        let batch = cfg!(target_os = "linux") && local.is_ipv4() && !local.ip().is_unspecified();
        if batch {
            socket2::SockRef::from(&socket).set_tos_v4(batch::DEFAULT_TOS)?;
        }
        let state = UdpSocketState::new((&socket).into())?;
        let io = Arc::new(Io {
            socket: crate::udp::register_for_reading(socket)?,
            state,
            batch,
            wildcard: local.ip().is_unspecified(),
        });
        let key = CidKey::new();
        let server_config = Arc::new(server_config);
        let endpoint = quinn_proto::Endpoint::new(
            Arc::new(endpoint_config(&key, Route::Direct)),
            Some(server_config.clone()),
            !io.state.may_fragment(),
            None,
        );
        Ok(Arc::new(Direct {
            inner: Mutex::new(Inner {
                endpoint,
                server_config,
                conns: slots::Slots::new(),
                dirty: Vec::new(),
                timers: wheel::Wheel::new(Instant::now()),
                due: Vec::new(),
                stopping: false,
            }),
            wake: Notify::new(),
            queued: Mutex::new(Vec::new()),
            for_quinn: Arc::new(shared_socket::SharedSocket::new(io.clone())),
            io,
            key,
            enabled,
            next_id: AtomicU64::new(1),
            open,
            tasks,
        }))
    }

    /// The socket quinn's endpoint reads its datagrams from.
    pub(crate) fn quinn_socket(&self) -> Arc<shared_socket::SharedSocket> {
        self.for_quinn.clone()
    }

    /// The configuration quinn's endpoint needs to share the port.
    pub(crate) fn quinn_endpoint_config(&self) -> EndpointConfig {
        endpoint_config(&self.key, Route::Quinn)
    }

    /// A renewed certificate, for new connections.
    pub(crate) fn set_server_config(&self, config: ServerConfig) {
        let mut inner = self.lock();
        let config = Arc::new(config);
        inner.server_config = config.clone();
        inner.endpoint.set_server_config(Some(config));
    }

    /// Closes every connection (the node is stopping).
    pub(crate) fn close_all(&self, reason: &'static [u8]) {
        let mut inner = self.lock();
        inner.stopping = true;
        let now = Instant::now();
        let handles = inner.conns.handles();
        for ch in handles {
            if let Some(c) = inner.conns.get_mut(ch) {
                c.quic
                    .close(now, VarInt::from_u32(0), Bytes::from_static(reason));
            }
            inner.touch(ch);
        }
        drop(inner);
        self.wake.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change under this lock leaves the connections valid.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves the port until the runtime stops.
    pub(crate) async fn run(self: Arc<Direct>, gw: Arc<Gateway>) {
        let mut bufs = vec![0u8; RECV_BATCH * RECV_CHUNK];
        let mut meta = [RecvMeta::default(); RECV_BATCH];
        let mut out = Outgoing::default();
        let mut queued = Vec::new();
        let sleep = tokio::time::sleep(std::time::Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let (more, next, done) = {
                let mut batches = 0;
                let mut more = true;
                let mut inner = self.lock();
                self.take_queued(&mut inner, &mut queued);
                while more && batches < BATCHES_PER_PASS {
                    batches += 1;
                    let mut slices: Vec<IoSliceMut<'_>> =
                        bufs.chunks_mut(RECV_CHUNK).map(IoSliceMut::new).collect();
                    let received = self.io.socket.try_io(Interest::READABLE, |socket| {
                        self.io.state.recv(socket.into(), &mut slices, &mut meta)
                    });
                    let n = match received {
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            more = false;
                            0
                        }
                        Err(e) => {
                            // ICMP errors surface here on some systems; the
                            // socket stays usable, and its readiness brings
                            // the driver back for what is waiting.
                            tracing::debug!(error = %e, "player port receive error");
                            more = false;
                            0
                        }
                    };
                    for (m, slice) in meta.iter().zip(slices.iter()).take(n) {
                        let stride = m.stride.max(1);
                        for d in slice[..m.len].chunks(stride) {
                            self.on_datagram(&gw, &mut inner, now, m, d, &mut out);
                        }
                    }
                }
                self.on_timers(&mut inner, now);
                self.drive_dirty(&gw, &mut inner, now, &mut out);
                let done = inner.stopping && inner.conns.is_empty();
                let next = inner.timers.next();
                (more, next, done)
            };
            out.send(&self.io);
            self.for_quinn.flush();
            for (handler, d) in out.received.drain(..) {
                handler.handle(&d);
            }
            if done {
                return;
            }
            if more {
                // Datagrams are still waiting: read on, after letting other
                // tasks run.
                tokio::task::yield_now().await;
                continue;
            }
            if next != armed {
                armed = next;
                let at = next.unwrap_or_else(|| now + std::time::Duration::from_secs(3600));
                sleep.as_mut().reset(at.into());
            }
            tokio::select! {
                r = self.io.socket.readable() => {
                    // The guard is dropped with the readiness kept: the
                    // next receive clears it when the socket runs dry.
                    if let Err(e) = r {
                        tracing::error!(error = %e, "the player port failed");
                        return;
                    }
                }
                _ = self.wake.notified() => {}
                _ = &mut sleep => armed = None,
            }
        }
    }

    /// Hands the datagrams rooms queued to their connections.
    fn take_queued(&self, inner: &mut Inner, spare: &mut Vec<Queued>) {
        std::mem::swap(
            spare,
            &mut *self.queued.lock().unwrap_or_else(|e| e.into_inner()),
        );
        for q in spare.drain(..) {
            let Some(c) = inner.conns.get_mut(q.ch).filter(|c| c.id == q.id) else {
                continue;
            };
            // Refused only if the path shrank since the link read its size:
            // the frame is lost, as a datagram may be, and the member
            // catches up from its last ack.
            if c.quic.datagrams().send(q.frame, true).is_ok() {
                inner.touch(q.ch);
            }
        }
    }

    fn on_datagram(
        self: &Arc<Self>,
        gw: &Arc<Gateway>,
        inner: &mut Inner,
        now: Instant,
        meta: &RecvMeta,
        data: &[u8],
        out: &mut Outgoing,
    ) {
        if route::route(data, &self.key, self.enabled) == Route::Quinn {
            self.for_quinn.deliver(meta, data);
            return;
        }
        out.scratch.clear();
        let ecn = meta
            .ecn
            .and_then(|e| quinn_proto::EcnCodepoint::from_bits(e as u8));
        let event = inner.endpoint.handle(
            now,
            meta.addr,
            // The packet's own destination is the reply's source only on
            // a wildcard bind; otherwise the bind decides (and the reply
            // may go in the batch).
            meta.dst_ip.filter(|_| self.io.wildcard),
            ecn,
            BytesMut::from(data),
            &mut out.scratch,
        );
        match event {
            Some(DatagramEvent::ConnectionEvent(ch, ev)) => {
                if let Some(c) = inner.conns.get_mut(ch) {
                    c.quic.handle_event(ev);
                    inner.touch(ch);
                }
            }
            Some(DatagramEvent::Response(t)) => out.keep(t),
            Some(DatagramEvent::NewConnection(incoming)) => {
                self.on_incoming(gw, inner, now, incoming, out)
            }
            None => {}
        }
    }

    fn on_incoming(
        &self,
        gw: &Arc<Gateway>,
        inner: &mut Inner,
        now: Instant,
        incoming: quinn_proto::Incoming,
        out: &mut Outgoing,
    ) {
        out.scratch.clear();
        if inner.stopping {
            let t = inner.endpoint.refuse(incoming, &mut out.scratch);
            return out.keep(t);
        }
        if gw.metrics.connections.get() as usize >= gw.settings.max_connections {
            gw.metrics
                .refused
                .with_label_values(&["max-connections"])
                .inc();
            let t = inner.endpoint.refuse(incoming, &mut out.scratch);
            return out.keep(t);
        }
        if gw.settings.retry && !incoming.remote_address_validated() && incoming.may_retry() {
            match inner.endpoint.retry(incoming, &mut out.scratch) {
                Ok(t) => out.keep(t),
                Err(e) => inner.endpoint.ignore(e.into_incoming()),
            }
            return;
        }
        let config = inner.server_config.clone();
        match inner
            .endpoint
            .accept(incoming, now, &mut out.scratch, Some(config))
        {
            Ok((ch, quic)) => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                inner.conns.insert(
                    ch,
                    Conn {
                        quic,
                        id,
                        inbox: Arc::new(Inbox::default()),
                        control: None,
                        readable: false,
                        armed: None,
                        queued: false,
                        served: false,
                        datagrams: None,
                        max_datagram: Arc::new(AtomicUsize::new(0)),
                        max_datagram_at: now,
                    },
                );
                self.open.inc();
                inner.touch(ch);
            }
            Err(e) => {
                tracing::debug!(error = %e.cause, "player handshake refused");
                gw.metrics.refused.with_label_values(&["handshake"]).inc();
                if let Some(t) = e.response {
                    out.keep(t);
                }
            }
        }
    }

    fn on_timers(&self, inner: &mut Inner, now: Instant) {
        let mut due = std::mem::take(&mut inner.due);
        inner.timers.expire(now, &mut due);
        for (t, ch) in due.drain(..) {
            let Some(c) = inner.conns.get_mut(ch) else {
                continue;
            };
            if c.armed != Some(t) {
                continue;
            }
            c.armed = None;
            match c.quic.poll_timeout() {
                Some(d) if d <= now => {
                    c.quic.handle_timeout(now);
                    // Driving re-arms the timer at the next deadline.
                    inner.touch(ch);
                }
                // The deadline moved on since this entry was made: re-arm
                // without driving the connection (nothing is due).
                Some(d) => {
                    c.armed = Some(d);
                    inner.timers.insert(d, ch);
                }
                None => {}
            }
        }
        inner.due = due;
    }

    fn drive_dirty(
        self: &Arc<Self>,
        gw: &Arc<Gateway>,
        inner: &mut Inner,
        now: Instant,
        out: &mut Outgoing,
    ) {
        let mut i = 0;
        // Driving one connection can touch none other, but the list is
        // read by index so the borrow of `inner` stays short.
        while i < inner.dirty.len() {
            let ch = inner.dirty[i];
            i += 1;
            self.drive(gw, inner, ch, now, out);
        }
        inner.dirty.clear();
    }

    /// Everything one connection has to do now.
    fn drive(
        self: &Arc<Self>,
        gw: &Arc<Gateway>,
        inner: &mut Inner,
        ch: ConnectionHandle,
        now: Instant,
        out: &mut Outgoing,
    ) {
        let Inner {
            endpoint,
            conns,
            timers,
            ..
        } = inner;
        let Some(c) = conns.get_mut(ch) else {
            return;
        };
        c.queued = false;
        while let Some(ev) = c.quic.poll() {
            match ev {
                Event::Connected => self.on_connected(gw, ch, c),
                Event::ConnectionLost { reason } => {
                    if !c.served {
                        tracing::debug!(error = %reason, "player handshake failed");
                        gw.metrics.refused.with_label_values(&["handshake"]).inc();
                    }
                    c.inbox.close();
                }
                Event::Stream(StreamEvent::Opened { dir: Dir::Bi }) => {
                    if c.control.is_none()
                        && let Some(id) = c.quic.streams().accept(Dir::Bi)
                    {
                        c.control = Some(id);
                        c.readable = true;
                        c.inbox.control_opened();
                    }
                }
                Event::Stream(StreamEvent::Readable { .. }) => c.readable = true,
                Event::Stream(StreamEvent::Writable { .. }) => c.inbox.stream_writable(),
                Event::Stream(StreamEvent::Finished { .. } | StreamEvent::Stopped { .. }) => {
                    c.inbox.stream_finished()
                }
                Event::DatagramReceived => {
                    while let Some(d) = c.quic.datagrams().recv() {
                        match &c.datagrams {
                            Some(h) => out.received.push((h.clone(), d)),
                            None => {
                                c.inbox.push_datagram(d);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(id) = c.control
            && c.readable
        {
            c.readable = !read_control(c, id);
        }
        while let Some(ev) = c.quic.poll_endpoint_events() {
            if let Some(back) = endpoint.handle_event(ch, ev) {
                c.quic.handle_event(back);
            }
        }
        let segments = self.io.state.max_gso_segments();
        loop {
            out.scratch.clear();
            let Some(t) = c.quic.poll_transmit(now, segments, &mut out.scratch) else {
                break;
            };
            out.keep(t);
        }
        if c.served && now.duration_since(c.max_datagram_at) >= MAX_DATAGRAM_REFRESH {
            c.max_datagram_at = now;
            c.max_datagram.store(
                c.quic.datagrams().max_size().unwrap_or(0),
                Ordering::Relaxed,
            );
        }
        if c.quic.is_drained() {
            // Its links' frames go the stream way now (and find it gone).
            c.max_datagram.store(0, Ordering::Relaxed);
            c.inbox.close();
            conns.remove(ch);
            self.open.dec();
            return;
        }
        if let Some(t) = c.quic.poll_timeout()
            && c.armed.is_none_or(|a| t < a)
        {
            c.armed = Some(t);
            timers.insert(t, ch);
        }
    }

    /// The handshake is done: a native client's connection gets its task.
    fn on_connected(self: &Arc<Self>, gw: &Arc<Gateway>, ch: ConnectionHandle, c: &mut Conn) {
        let alpn = c
            .quic
            .crypto_session()
            .handshake_data()
            .and_then(|h| {
                h.downcast::<quinn_proto::crypto::rustls::HandshakeData>()
                    .ok()
            })
            .and_then(|h| h.protocol);
        if alpn.as_deref() != Some(anthill_protocol::wire::ALPN) {
            // WebTransport comes through quinn's endpoint; a client that
            // tagged its first packet must speak `anthill/1`. (Counted as a
            // refused handshake when the connection is lost.)
            c.quic.close(
                Instant::now(),
                VarInt::from_u32(1),
                Bytes::from_static(b"a tagged connection must use ALPN anthill/1"),
            );
            return;
        }
        c.quic
            .set_max_concurrent_streams(Dir::Uni, VarInt::from_u32(0));
        c.quic
            .set_max_concurrent_streams(Dir::Bi, VarInt::from_u32(1));
        c.served = true;
        c.max_datagram.store(
            c.quic.datagrams().max_size().unwrap_or(0),
            Ordering::Relaxed,
        );
        let link = DirectLink {
            direct: self.clone(),
            ch,
            id: c.id,
            max_datagram: c.max_datagram.clone(),
        };
        self.tasks
            .spawn(serve::serve(gw.clone(), link, c.inbox.clone()));
    }
}

/// Reads what the control stream has, as far as the connection's task has
/// room for; true if it read all there was.
fn read_control(c: &mut Conn, id: StreamId) -> bool {
    let room = c.inbox.stream_room();
    if room == 0 {
        return false;
    }
    let mut stream = c.quic.recv_stream(id);
    let Ok(mut chunks) = stream.read(true) else {
        return true;
    };
    let mut left = room;
    while left > 0 {
        match chunks.next(left) {
            Ok(Some(chunk)) => {
                left -= chunk.bytes.len();
                c.inbox.push_stream(chunk.bytes);
            }
            Ok(None) => {
                // The client finished its side: the connection's task sees
                // the end of input.
                c.inbox.end_input();
                break;
            }
            Err(_) => break,
        }
    }
    // Frees flow-control credit; whether to send it is up to quinn-proto.
    let _ = chunks.finalize();
    left > 0
}

fn endpoint_config(key: &CidKey, route: Route) -> EndpointConfig {
    let mut config = EndpointConfig::default();
    let key = key.clone();
    config.cid_generator(move || Box::new(key.generator(route)));
    config
}

thread_local! {
    /// While a [`WakeHold`] lives on this thread: the endpoint it holds and
    /// the state datagrams queued for it meanwhile (pushed onto its queue
    /// under one lock, and the driver woken once, when the hold ends).
    static HELD: std::cell::RefCell<Held> = const {
        std::cell::RefCell::new(Held { direct: std::ptr::null(), queued: Vec::new() })
    };
}

/// What a [`WakeHold`] holds back (see `HELD`).
struct Held {
    /// The endpoint held (null: none). A pointer, compared only: the
    /// hold's `Arc` keeps it alive while it is set.
    direct: *const Direct,
    queued: Vec<Queued>,
}

/// Holds back the driver's wake-ups and queue pushes on this thread while
/// it lives: a room's tick queues a datagram for each member, then hands
/// them over under one lock and wakes the driver once. Holds nest; the
/// outermost hands over.
pub(crate) struct WakeHold {
    direct: Arc<Direct>,
    outermost: bool,
}

impl Direct {
    pub(crate) fn hold_wakeups(self: &Arc<Self>) -> WakeHold {
        let outermost = HELD.with(|h| {
            let mut h = h.borrow_mut();
            if h.direct.is_null() {
                h.direct = Arc::as_ptr(self);
                true
            } else {
                false
            }
        });
        WakeHold {
            direct: self.clone(),
            outermost,
        }
    }

    /// Queues a state datagram for the driver's next pass (at most
    /// `MAX_QUEUED`: a driver that stopped passing drops states here, as
    /// quinn-proto would drop the oldest).
    fn queue(&self, q: Queued) {
        let q = HELD.with(|h| {
            let mut h = h.borrow_mut();
            if std::ptr::eq(h.direct, self) {
                h.queued.push(q);
                None
            } else {
                Some(q)
            }
        });
        if let Some(q) = q {
            self.push_queued(std::iter::once(q));
            self.wake.notify_one();
        }
    }

    fn push_queued(&self, items: impl Iterator<Item = Queued>) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        let room = MAX_QUEUED.saturating_sub(queued.len());
        queued.extend(items.take(room));
    }
}

impl Drop for WakeHold {
    fn drop(&mut self) {
        if !self.outermost {
            return;
        }
        let mut queued = HELD.with(|h| {
            let mut h = h.borrow_mut();
            h.direct = std::ptr::null();
            std::mem::take(&mut h.queued)
        });
        if queued.is_empty() {
            return;
        }
        self.direct.push_queued(queued.drain(..));
        // The buffer goes back for the next hold on this thread.
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if h.queued.capacity() < queued.capacity() {
                h.queued = queued;
            }
        });
        self.direct.wake.notify_one();
    }
}

/// A connection of the direct endpoint, as a [`crate::link::Link`] holds it.
#[derive(Clone)]
pub(crate) struct DirectLink {
    direct: Arc<Direct>,
    ch: ConnectionHandle,
    id: u64,
    /// The largest datagram the path takes (0: none), kept by the driver.
    max_datagram: Arc<AtomicUsize>,
}

/// A state datagram on its way to a connection.
struct Queued {
    ch: ConnectionHandle,
    id: u64,
    frame: Bytes,
}

impl DirectLink {
    /// Queues a datagram if it fits the path; never waits, and never waits
    /// for the driver's pass (see [`Direct`]'s `queued`).
    pub(crate) fn datagram(&self, frame: &Bytes) -> bool {
        if frame.len() > self.max_datagram.load(Ordering::Relaxed) {
            return false;
        }
        self.direct.queue(Queued {
            ch: self.ch,
            id: self.id,
            frame: frame.clone(),
        });
        true
    }

    pub(crate) fn close(&self, code: u32, reason: &'static str) {
        let mut inner = self.direct.lock();
        if let Some(c) = inner.conn(self) {
            c.quic.close(
                Instant::now(),
                VarInt::from_u32(code),
                Bytes::from_static(reason.as_bytes()),
            );
            inner.touch(self.ch);
        }
        drop(inner);
        self.direct.wake.notify_one();
    }

    /// Writes what the control stream takes of `data` now: the bytes taken
    /// (0 when flow control holds it), or `Err` when the stream is gone.
    fn write(&self, data: &[u8]) -> Result<usize, ()> {
        let mut inner = self.direct.lock();
        let Some(c) = inner.conn(self) else {
            return Err(());
        };
        let Some(id) = c.control else {
            return Err(());
        };
        let n = match c.quic.send_stream(id).write(data) {
            Ok(n) => n,
            Err(quinn_proto::WriteError::Blocked) => 0,
            Err(_) => return Err(()),
        };
        if n > 0 {
            inner.touch(self.ch);
        }
        drop(inner);
        if n > 0 {
            self.direct.wake.notify_one();
        }
        Ok(n)
    }

    /// Ends the control stream after what was written.
    fn finish(&self) {
        let mut inner = self.direct.lock();
        if let Some(c) = inner.conn(self)
            && let Some(id) = c.control
        {
            let _ = c.quic.send_stream(id).finish();
            inner.touch(self.ch);
        }
        drop(inner);
        self.direct.wake.notify_one();
    }

    /// The connection has a session: the driver handles its datagrams.
    fn deliver_datagrams(&self, handler: Arc<Datagrams>) {
        let mut inner = self.direct.lock();
        if let Some(c) = inner.conn(self) {
            c.datagrams = Some(handler);
        }
    }

    /// The connection's task has room again: read the stream on.
    fn resume_read(&self) {
        let mut inner = self.direct.lock();
        if let Some(c) = inner.conn(self) {
            c.readable = true;
            inner.touch(self.ch);
        }
        drop(inner);
        self.direct.wake.notify_one();
    }
}
