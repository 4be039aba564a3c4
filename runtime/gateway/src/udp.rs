//! UDP sockets registered with tokio's reactor for reading only, for the
//! player port and the swarm load generator, which send without waiting
//! (a full buffer drops the packet and QUIC resends it).
//!
//! Why not `tokio::net::UdpSocket`: it registers for writing too, and the
//! kernel then runs the reactor's wake-up callback for every packet it
//! frees (on loopback, for every packet sent), which wakes a parked worker
//! after every send burst only to find nothing waiting to write. At 1,000
//! arena players that was more than half of the node's context switches.

use std::net::UdpSocket;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A non-blocking UDP socket whose readiness for reading is tracked.
pub type ReadingSocket = AsyncFd<UdpSocket>;

/// Registers `socket` (made non-blocking) for reading only. Must be called
/// within a tokio runtime.
pub fn register_for_reading(socket: UdpSocket) -> std::io::Result<ReadingSocket> {
    socket.set_nonblocking(true)?;
    #[allow(unsafe_code)]
    // SAFETY: `UdpSocket` owns its file descriptor, which stays open and
    // names the same socket until the `AsyncFd` (which owns the `UdpSocket`)
    // is dropped or gives it back; nothing else closes it.
    let registered = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) };
    registered.map_err(std::io::Error::from)
}
